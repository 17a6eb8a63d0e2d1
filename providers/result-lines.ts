/**
 * Parses a provider results file into ProviderResultLines. A bad line must fail only its own request, so JSON
 * errors become `malformed` lines (with the custom id recovered from the raw text when possible) instead of
 * aborting the stream the way the SDKs' own JSONL decoders do.
 */
import { splitJsonlLines, type ByteSource } from './jsonl';
import { asRecord, str, type JsonRecord } from './normalise';
import type { ProviderResultLine } from './types';

/** Maps one parsed line that has a custom id; returns a `malformed` line for shapes it does not recognise. */
export type ResultLineMapper = (record: JsonRecord, customId: string, lineNumber: number) => ProviderResultLine;

export async function* parseResultLines(source: ByteSource, mapLine: ResultLineMapper): AsyncGenerator<ProviderResultLine> {
  for await (const { line, lineNumber } of splitJsonlLines(source)) {
    let record: JsonRecord | undefined;
    try {
      record = asRecord(JSON.parse(line));
    } catch {
      // The parser's message quotes the line itself (result bodies), so it is deliberately not kept.
      yield malformedLine(line, lineNumber, 'line is not valid JSON');
      continue;
    }
    const customId = str(record?.custom_id);
    if (!record || customId === undefined) {
      yield malformedLine(line, lineNumber, 'line has no custom_id');
      continue;
    }
    yield mapLine(record, customId, lineNumber);
  }
}

export function malformedLine(line: string, lineNumber: number, errorMessage: string): ProviderResultLine {
  const customId = recoverCustomId(line);
  return { kind: 'malformed', ...(customId !== undefined ? { customId } : {}), lineNumber, errorMessage };
}

const CUSTOM_ID_PATTERN = /"custom_id"\s*:\s*("(?:[^"\\\n]|\\.){1,256}")/;

/** Best-effort custom id from a broken line, so the request it belongs to can still be failed (not lost). */
export function recoverCustomId(line: string): string | undefined {
  const quoted = CUSTOM_ID_PATTERN.exec(line)?.[1];
  if (quoted === undefined) return undefined;
  try {
    return str(JSON.parse(quoted));
  } catch {
    return undefined;
  }
}
