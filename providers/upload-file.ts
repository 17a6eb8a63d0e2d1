/**
 * A batch input file for an upload, written to a temporary file as its chunks are produced and handed to the SDKs as
 * a File backed by that file on disk (fs.openAsBlob): the multipart upload reads it in chunks while it sends, so a
 * 200 MB batch never sits in the worker's memory, neither as one string nor as an array of chunks. Every chunk has
 * been produced (and so every request checked) before the upload starts: invalid input still fails without an
 * orphan upload at the provider. A retried upload reads the same file again.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, openAsBlob } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Files of a worker killed mid-upload are removed by the next upload on the machine once they are this old. */
const STALE_MS = 24 * 3_600_000;

export function uploadDirectory(): string {
  return path.join(os.tmpdir(), 'batchkeeper-uploads');
}

/** Writes the chunks to a temporary file, runs `upload` with it as a File, and removes the file afterwards. */
export async function withUploadFile<T>(
  chunks: AsyncIterable<string>, name: string, upload: (file: File) => Promise<T>, type = 'application/jsonl',
): Promise<T> {
  const directory = uploadDirectory();
  await mkdir(directory, { recursive: true, mode: 0o700 });
  await removeStaleFiles(directory);
  const filePath = path.join(directory, `${randomUUID()}.jsonl`);
  const dispose = () => rm(filePath, { force: true });
  try {
    const out = createWriteStream(filePath, { mode: 0o600 });
    const closed = once(out, 'close');
    let failed: Error | undefined;
    out.on('error', (error) => { failed = error; });
    try {
      for await (const chunk of chunks) {
        if (failed) throw failed;
        if (!out.write(chunk)) await once(out, 'drain');
      }
    } finally {
      out.end();
      await closed;
    }
    if (failed) throw failed;
    const blob = await openAsBlob(filePath, { type });
    return await upload(new File([blob], name, { type }));
  } finally {
    await dispose();
  }
}

async function removeStaleFiles(directory: string): Promise<void> {
  const names = await readdir(directory).catch(() => [] as string[]);
  const now = Date.now();
  await Promise.all(names.map(async (name) => {
    const filePath = path.join(directory, name);
    const info = await stat(filePath).catch(() => undefined);
    if (info && now - info.mtimeMs > STALE_MS) await rm(filePath, { force: true });
  }));
}
