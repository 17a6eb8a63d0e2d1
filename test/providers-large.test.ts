/**
 * 100,000-result batches stream with flat memory. The fake runs as a separate process (through its CLI) so the
 * RSS measured here is the adapter's alone.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AnthropicBatchProvider } from '../providers/anthropic';
import { OpenAIBatchProvider } from '../providers/openai';
import type { BatchProvider } from '../providers/types';
import { API_KEY, waitForTerminal } from './providers-support';

const COUNT = 100_000;
const MB = 1024 * 1024;

let child: ChildProcess;
let url: string;

before(async () => {
  child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'testing', 'fake-provider', 'main.ts'), '--port', '0', '--processing-ms', '200'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline !== -1) resolve(buffered.slice(0, newline).trim());
    });
    child.once('exit', (code) => reject(new Error(`fake provider exited with ${code}`)));
  });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

after(async () => {
  child.kill('SIGTERM');
  if (child.exitCode === null) await once(child, 'exit');
});

async function* manyRequests() {
  for (let i = 0; i < COUNT; i++) {
    yield { customId: `r-${i}`, params: { max_tokens: 16, messages: [{ role: 'user', content: `question number ${i}` }] } };
  }
}

for (const name of ['openai', 'anthropic'] as const) {
  test(`${name}: ${COUNT} results stream without loading the file`, { timeout: 120_000 }, async (t) => {
    const provider: BatchProvider =
      name === 'openai'
        ? new OpenAIBatchProvider({ apiKey: API_KEY, baseURL: `${url}/v1`, maxRetries: 0 })
        : new AnthropicBatchProvider({ apiKey: API_KEY, baseURL: url, maxRetries: 0 });
    const { providerBatchId } = await provider.submit({ batchId: `bk-large-${name}`, model: 'm', requests: manyRequests() });
    const report = await waitForTerminal(provider, providerBatchId, 60_000);
    assert.equal(report.counts.succeeded, COUNT);

    const baseline = process.memoryUsage();
    let peak = baseline.rss;
    let peakHeap = baseline.heapUsed;
    let lines = 0;
    const started = Date.now();
    let largestBlock = 0;
    for await (const block of provider.streamResults(providerBatchId)) {
      for (const line of block) assert.equal(line.kind, 'succeeded');
      largestBlock = Math.max(largestBlock, block.length);
      const before = lines;
      lines += block.length;
      if (Math.floor(lines / 5_000) > Math.floor(before / 5_000)) {
        const usage = process.memoryUsage();
        peak = Math.max(peak, usage.rss);
        peakHeap = Math.max(peakHeap, usage.heapUsed);
      }
    }
    // Blocks follow the download's chunks: the file is never held whole.
    assert.ok(largestBlock < COUNT / 10, `largest block ${largestBlock} lines`);
    // RSS includes garbage the GC has not collected yet; heapUsed is reported alongside for context.
    const growthMb = (peak - baseline.rss) / MB;
    const mb = (bytes: number) => Math.round(bytes / MB);
    t.diagnostic(
      `${name}: ${lines} lines in ${Date.now() - started} ms; rss ${mb(baseline.rss)} → peak ${mb(peak)} MB (+${growthMb.toFixed(1)}); heapUsed ${mb(baseline.heapUsed)} → peak ${mb(peakHeap)} MB`,
    );
    assert.equal(lines, COUNT);
    assert.ok(growthMb < 300, `rss grew ${growthMb.toFixed(1)} MB`);

    const counters = (await (await fetch(`${url}/_control/batches/${providerBatchId}`)).json()) as { counters: { results: number } };
    assert.equal(counters.counters.results, 1);
  });
}
