/**
 * Large batch submit: one OpenAI batch of N requests (50,000 by default) of about `requestBytes` each (4 KB), from
 * the app's `submitBatch` call to every provider batch created (batches.submitted_at, written once all parts have a
 * provider id). Rows per second = N / that time, split into the client's part (validation and the insert, until
 * submitBatch returns) and the worker's (the submit step: requests paged out of PostgreSQL, the JSONL upload, the
 * create call). The worker's peak RSS growth over the whole submit is read from the kernel (VmHWM reset before, plus
 * 20 ms sampling): a flat figure means the upload was streamed, not built as one string or buffer of the whole file.
 *
 * The floor (copy-floor.ts): PostgreSQL's own COPY of the same rows (batch_id, custom_id, position, params) into a
 * scratch table shaped like batch_requests, the fastest of COPY_RUNS runs.
 */
import { randomUUID } from 'node:crypto';
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import type { SubmitBatchInput } from '../../client/validate-batch';
import { copyText } from '../../db/copy-writer';
import { sleep, type BenchContext, type WorkerProcess } from './context';
import { fastestCopy } from './copy-floor';
import { round1 } from './memory';
import { meterPhase } from './phase-meter';
import { round2, type BenchDetails } from './report';

const COPY_RUNS = 3;

export async function runLargeSubmit(ctx: BenchContext, worker: WorkerProcess, details: BenchDetails) {
  const { requests: count, requestBytes } = ctx.preset.largeSubmit;
  const requests = largeRequests(count, requestBytes);
  const client = new BatchkeeperClient({ client: ctx.temporal, pool: ctx.pool, taskQueue: ctx.taskQueue });
  // The provider batch never finishes during the measurement: only the path to "created" is timed.
  ctx.fake.configure({ batchRules: [...ctx.fake.state().config.batchRules, { match: { provider: 'openai' }, processingMs: 3_600_000, times: 1 }] });
  await ctx.pool.query('CHECKPOINT');
  await sleep(1000);

  const meter = meterPhase(worker, ctx.stack.postgres.dataDir);
  const t0 = Date.now();
  const { batchId, workflowId } = await client.submitBatch({ provider: 'openai', model: 'gpt-4o-mini', requests, pollScheduleMs: [600_000] });
  const clientSeconds = (Date.now() - t0) / 1000;
  ctx.log(`submitBatch returned after ${clientSeconds.toFixed(1)}s (validation and insert of ${count} requests); waiting for the provider batches`);
  let lastLog = Date.now();
  let submittedAt: Date | null = null;
  while (!submittedAt) {
    const { rows } = await ctx.pool.query('SELECT submitted_at FROM batches WHERE id = $1', [batchId]);
    submittedAt = rows[0]?.submitted_at ?? null;
    if (Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      ctx.log(`submit: ${((Date.now() - t0) / 1000).toFixed(0)}s, worker RSS ${worker.rss().rssMb.toFixed(0)} MB`);
    }
    if (Date.now() - t0 > 900_000) throw new Error(`large batch ${batchId} not submitted after 15 minutes`);
    if (!submittedAt) await sleep(20);
  }
  const { baselineMb: baseline, peakMb: peak, cpuSeconds } = meter.stop();
  const totalSeconds = (submittedAt.getTime() - t0) / 1000;
  const { rows: parts } = await ctx.pool.query(
    'SELECT count(*) AS parts, sum(request_count) AS requests FROM provider_batches WHERE batch_id = $1 AND provider_batch_id IS NOT NULL', [batchId],
  );
  if (Number(parts[0].requests) !== count) throw new Error(`only ${parts[0].requests}/${count} requests in created provider batches`);
  const requestsMb = requests.reduce((sum, request) => sum + JSON.stringify(request.params).length, 0) / 1e6;
  const submitRowsPerSec = Math.round(count / totalSeconds);
  ctx.log(`submit: ${count} requests in ${totalSeconds.toFixed(2)}s = ${submitRowsPerSec} rows/s (client ${clientSeconds.toFixed(2)}s, ` +
    `worker ${(totalSeconds - clientSeconds).toFixed(2)}s), ${parts[0].parts} provider batch(es), ${requestsMb.toFixed(1)} MB of request bodies; ` +
    `worker RSS ${baseline.toFixed(0)} → peak ${peak.toFixed(0)} MB`);
  await ctx.temporal.workflow.getHandle(workflowId).terminate('bench: large submit measured');

  const copy = await copyFloor(ctx, requests);
  ctx.log(`COPY: ${copy.rows} rows in ${copy.seconds.toFixed(2)}s = ${copy.rowsPerSec} rows/s (${(copy.bytes / 1e6).toFixed(1)} MB of COPY text; ` +
    `fastest of ${COPY_RUNS}: ${copy.runSeconds.map((seconds) => seconds.toFixed(2)).join(', ')} s)`);
  details.largeSubmit = {
    requests: count,
    requestBytes,
    providerBatches: Number(parts[0].parts),
    requestBodiesMb: round1(requestsMb),
    totalSeconds: round2(totalSeconds),
    clientSeconds: round2(clientSeconds),
    workerSeconds: round2(totalSeconds - clientSeconds),
    copySeconds: round2(copy.seconds),
    copyRunSeconds: copy.runSeconds.map(round2),
    workerRssBaselineMb: round1(baseline),
    workerRssPeakMb: round1(peak),
    cpuSeconds,
  };
  return {
    submitRowsPerSec,
    submitCopyRowsPerSec: copy.rowsPerSec,
    submitRatio: round2(submitRowsPerSec / copy.rowsPerSec),
    submitPeakRssMb: round1(peak - baseline),
  };
}

/**
 * Chat requests padded to about `bytes` of JSON each, with varied text (PostgreSQL compresses repeated text). Each
 * text is joined from its words in one go, a flat string as an app's parsed input is: built with += it would be a
 * rope that V8 flattens on first serialisation, which cost submitBatch's validation 3-4 s of the 50,000 that an app
 * would not pay.
 */
function largeRequests(count: number, bytes: number): SubmitBatchInput['requests'] {
  const words = ['batch', 'provider', 'result', 'review', 'summary', 'customer', 'order', 'shipping', 'quality', 'price'];
  return Array.from({ length: count }, (_, index) => {
    const parts = [`Request ${index}: `];
    let length = parts[0].length;
    let seed = index * 2_654_435_761;
    while (length < bytes - 120) {
      seed = (seed * 1_103_515_245 + 12_345) >>> 0;
      const word = `${words[seed % words.length]}${seed % 997} `;
      parts.push(word);
      length += word.length;
    }
    return { customId: `large-${index}`, params: { max_tokens: 64, messages: [{ role: 'user', content: parts.join('') }] } };
  });
}

function copyFloor(ctx: BenchContext, requests: SubmitBatchInput['requests']) {
  const batchId = randomUUID();
  const chunks = requests.map((request, position) =>
    Buffer.from(`${batchId}\t${copyText(request.customId)}\t${position}\t${copyText(JSON.stringify(request.params))}\n`));
  return fastestCopy(ctx.pool, { like: 'batch_requests', columns: 'batch_id, custom_id, position, params', chunks, runs: COPY_RUNS });
}
