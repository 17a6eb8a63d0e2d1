/** Reading request bodies and writing replies, with backpressure so 100k-line results stream in flat memory. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Reply } from './router';

const MAX_BODY_BYTES = 512 * 1024 * 1024;
const WRITE_CHUNK_CHARS = 64 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface SendOptions {
  /** Stop after this many lines (or half a JSON body) and destroy the socket: a connection lost mid-download. */
  truncateAfterLines?: number;
}

export async function sendReply(res: ServerResponse, reply: Reply, options: SendOptions = {}): Promise<void> {
  const truncate = options.truncateAfterLines;
  if (reply.kind === 'lines') {
    res.writeHead(reply.status, { 'content-type': reply.contentType, ...reply.headers });
    await writeLines(res, reply.lines, truncate);
    return;
  }
  const [data, contentType] =
    reply.kind === 'json' ? [JSON.stringify(reply.body), 'application/json'] : [reply.data, reply.contentType];
  if (truncate !== undefined) {
    res.writeHead(reply.status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(data)), ...reply.headers });
    res.write(data.slice(0, Math.floor(data.length / 2)));
    setImmediate(() => res.socket?.destroy());
    return;
  }
  res.writeHead(reply.status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(data)), ...reply.headers });
  res.end(data);
}

async function writeLines(res: ServerResponse, lines: Iterable<string>, truncateAfter: number | undefined): Promise<void> {
  let buffer = '';
  let written = 0;
  for (const line of lines) {
    if (truncateAfter !== undefined && written >= truncateAfter) {
      if (buffer) res.write(buffer);
      setImmediate(() => res.socket?.destroy());
      return;
    }
    buffer += `${line}\n`;
    written++;
    if (buffer.length >= WRITE_CHUNK_CHARS) {
      const flushed = res.write(buffer);
      buffer = '';
      if (!flushed && !(await drained(res))) return;
    }
  }
  res.end(buffer);
}

/** Resolves true on 'drain', false if the client went away (so a dropped download does not hang the writer). */
function drained(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const done = (value: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(value);
    };
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}
