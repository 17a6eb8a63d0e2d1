import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

const COPY_BLOCK_CHARS = 64 * 1024;

/**
 * One COPY … FROM STDIN on a client inside the caller's transaction (its rows land with the transaction or not at
 * all), fed text-format lines in ~64 KB blocks: one CopyData message per line costs both ends more than the rows
 * themselves. `write` waits when PostgreSQL is behind, so memory stays flat. The statement text comes from the
 * store modules (db/), never from input.
 */
export class CopyWriter {
  private readonly stream: ReturnType<typeof copyFrom>;
  private failure: Error | null = null;
  private buffered = '';
  private readonly done: Promise<void>;

  constructor(client: ClientBase, statement: string) {
    const stream = client.query(copyFrom(statement));
    this.stream = stream;
    this.done = new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', (error: Error) => {
        this.failure = error;
        reject(error);
      });
    });
    this.done.catch(() => undefined);
  }

  /**
   * Queues one line (without its newline). Returns a promise only when a block went out and PostgreSQL is behind:
   * await it then (a promise per row would cost more than the row).
   */
  write(line: string): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    this.buffered += `${line}\n`;
    return this.buffered.length >= COPY_BLOCK_CHARS ? this.flush() : undefined;
  }

  async end(): Promise<void> {
    await this.flush();
    this.stream.end();
    await this.done;
  }

  /**
   * Cancels the COPY (PostgreSQL discards its rows) and waits until the connection can take the ROLLBACK; call it
   * when the lines fail mid-way (a cut download), or the client would stay in COPY mode.
   */
  async abort(reason: Error): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy(reason);
    await finished(this.stream).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.buffered) return;
    const block = this.buffered;
    this.buffered = '';
    if (!this.stream.write(block)) {
      await Promise.race([once(this.stream, 'drain'), this.done]);
      if (this.failure) throw this.failure;
    }
  }
}

/** COPY text format: \N is null; backslash, tab, newline and carriage return are escaped (one pass). */
export function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIAL_ALL, (char) => COPY_ESCAPES[char]!) : value;
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
