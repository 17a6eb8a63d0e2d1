/**
 * Batch input files are written to a temporary file and uploaded from disk (providers/upload-file.ts): the upload
 * sees every byte, never starts when a request fails validation, and no temporary file outlives it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { uploadDirectory, withUploadFile } from '../providers/upload-file';

// A temporary directory of this test file's own, so uploads of other test files running at once are not counted.
process.env.TMPDIR = mkdtempSync(path.join(os.tmpdir(), 'bk-upload-test-'));

const leftovers = () => (existsSync(uploadDirectory()) ? readdirSync(uploadDirectory()) : []);

async function* lines(count: number, failAt?: number): AsyncGenerator<string> {
  for (let index = 0; index < count; index += 1) {
    if (index === failAt) throw new Error(`request ${index} is invalid`);
    yield `{"custom_id":"r-${index}","body":{"text":"${'x'.repeat(100)}"}}\n`;
  }
}

test('the upload gets the whole file from disk and the temporary file is gone afterwards', async () => {
  const before = leftovers();
  const seen = await withUploadFile(lines(2000), 'batch.jsonl', async (file) => {
    assert.equal(file.name, 'batch.jsonl');
    assert.equal(file.type, 'application/jsonl');
    assert.equal(leftovers().length, before.length + 1, 'one temporary file while uploading');
    return file.text();
  });
  const received = seen.split('\n').filter(Boolean);
  assert.equal(received.length, 2000);
  assert.equal(received[1999], `{"custom_id":"r-1999","body":{"text":"${'x'.repeat(100)}"}}`);
  assert.deepEqual(leftovers(), before);
});

test('a request that fails while the file is written stops before any upload, leaving no file', async () => {
  const before = leftovers();
  let uploads = 0;
  await assert.rejects(withUploadFile(lines(50, 30), 'batch.jsonl', async () => { uploads += 1; }), /request 30 is invalid/);
  assert.equal(uploads, 0);
  assert.deepEqual(leftovers(), before);
});

test('a failed upload leaves no file', async () => {
  const before = leftovers();
  await assert.rejects(withUploadFile(lines(10), 'batch.jsonl', async () => { throw new Error('HTTP 500'); }), /HTTP 500/);
  assert.deepEqual(leftovers(), before);
});
