/**
 * Streaming JSONL line splitter shared by the adapters. Reads a byte stream chunk by chunk, so memory stays flat
 * no matter how large the results file is (only the current partial line is buffered).
 */

export interface JsonlLine {
  line: string;
  /** 1-based physical line number, blank lines included, so it matches what an operator sees in the file. */
  lineNumber: number;
}

interface ByteReader {
  read(): Promise<{ done: boolean; value?: Uint8Array | undefined }>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}

/** A web ReadableStream (fetch Response.body) or any async iterable of chunks (Node streams, generators). */
export type ByteSource = AsyncIterable<Uint8Array | string> | { getReader(): ByteReader };

/**
 * Yields the non-blank lines (without the trailing \n or \r\n) of each chunk as one block; blank lines are skipped
 * but still counted. Blocks, not single lines: an async step per line costs more than the line itself on large files.
 */
export async function* splitJsonlLines(source: ByteSource): AsyncGenerator<JsonlLine[]> {
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  let lineNumber = 0;
  for await (const chunk of chunksOf(source)) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    const block: JsonlLine[] = [];
    let start = 0;
    let newline: number;
    while ((newline = pending.indexOf('\n', start)) !== -1) {
      lineNumber++;
      const line = trimCarriageReturn(pending.slice(start, newline));
      start = newline + 1;
      if (line.trim() !== '') block.push({ line, lineNumber });
    }
    pending = pending.slice(start);
    if (block.length > 0) yield block;
  }
  pending += decoder.decode();
  if (pending.trim() !== '') yield [{ line: trimCarriageReturn(pending), lineNumber: lineNumber + 1 }];
}

function trimCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

async function* chunksOf(source: ByteSource): AsyncGenerator<Uint8Array | string> {
  if (!('getReader' in source)) {
    yield* source;
    return;
  }
  const reader = source.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value) yield value;
    }
    finished = true;
  } finally {
    // A consumer that stops early must not leave the HTTP body (and its connection) half-read.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
