/**
 * Results ingest: one Anthropic batch of N requests (100,000 by default: one provider batch, one results file of N
 * lines), the fake's replies padded so each line is about `lineBytes` (100,000 lines ≈ 100 MB). Once the provider
 * batch has finished, pollNow wakes the workflow and fetch_results streams the file into request_results (COPY, one transaction per part). Rows per
 * second = N / the fetch_results step's duration (step_attempts: attempt start to success). The worker's peak RSS
 * growth over that step is read from the kernel (VmHWM reset just before, plus 20 ms sampling).
 *
 * The floor: PostgreSQL's own COPY FROM STDIN of the same rows (exported back out of request_results) into a scratch
 * table of the same shape (LIKE request_results INCLUDING ALL), in the same database, right after; the fastest of
 * COPY_RUNS runs. Each run, and the measured ingest, starts after a CHECKPOINT: a checkpoint that the 110 MB written
 * just before sets off inside the timed COPY made it twice as slow in one full run (ratio 1.07).
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import { pollNowSignal } from '../../domain/definitions';
import { setReplyPadding } from '../../testing/fake-provider/replies';
import { asleepUntilNextPoll, benchBatch, sleep, type BenchContext, type WorkerProcess } from './context';
import { API_KEY } from './presets';
import { fastestCopy } from './copy-floor';
import { round1 } from './memory';
import { meterPhase } from './phase-meter';
import { round2, type BenchDetails } from './report';

/** Bytes of a succeeded Anthropic result line besides the reply text (measured on the fake's format). */
const LINE_OVERHEAD_BYTES = 390;

/** COPY floor runs; the fastest counts (a conservative floor for the ratio). */
const COPY_RUNS = 3;

const OUTCOME_COLUMNS = 'batch_id, round, position, status, result, error_code, error_message, retryable, input_tokens, output_tokens, completed_at';

export async function runIngest(ctx: BenchContext, worker: WorkerProcess, details: BenchDetails) {
  const { lines, lineBytes } = ctx.preset.ingest;
  setReplyPadding(Math.max(0, lineBytes - LINE_OVERHEAD_BYTES));
  try {
    ctx.log(`inserting one batch of ${lines} requests`);
    const [batch] = await ctx.insertBatches([
      benchBatch({ provider: 'anthropic', requests: lines, pollScheduleMs: [600_000], label: 'ingest' }),
    ]);
    // The fake keeps the file it renders for the sizing download below and serves that copy to the worker, as a
    // provider serves a stored file: rendering 100 MB is the stand-in's work, not ours, and would share our 2 cores.
    ctx.fake.configure({
      keepResultFiles: true,
      batchRules: [...ctx.fake.state().config.batchRules, { match: { provider: 'anthropic' }, processingMs: 500, times: 1 }],
    });
    await ctx.startBatchWorkflows([batch]);
    const submitStarted = Date.now();
    let providerBatchId: string | null = null;
    for (;;) {
      const { rows } = await ctx.pool.query('SELECT provider_batch_id FROM batches WHERE id = $1', [batch.id]);
      providerBatchId = rows[0]?.provider_batch_id ?? null;
      if (providerBatchId && ctx.fake.batch(providerBatchId)?.phase === 'completed') {
        if (await asleepUntilNextPoll(ctx.temporal, batch.workflowId)) break;
      }
      if (Date.now() - submitStarted > 300_000) throw new Error('ingest batch not submitted and finished after 5 minutes');
      await sleep(200);
    }
    ctx.log(`submitted (${((Date.now() - submitStarted) / 1000).toFixed(1)}s) and finished at the provider; reading the results file once to size it`);

    // The file itself: size, and how fast it can merely be downloaded and split into lines here.
    const download = await downloadOnly(`${ctx.fake.anthropicBaseUrl}/v1/messages/batches/${providerBatchId}/results`);
    ctx.log(`results file: ${download.lines} lines, ${(download.bytes / 1e6).toFixed(1)} MB (download alone ${download.rowsPerSec.toFixed(0)} lines/s)`);
    await ctx.pool.query('CHECKPOINT');
    await sleep(1000);

    // The measured ingest.
    const meter = meterPhase(worker, ctx.stack.postgres.dataDir);
    const t0 = Date.now();
    await ctx.temporal.workflow.getHandle(batch.workflowId).signal(pollNowSignal);
    let lastLog = t0;
    for (;;) {
      const { rows } = await ctx.pool.query(
        `SELECT succeeded_at FROM step_attempts WHERE subject_kind = 'batch' AND subject_id = $1 AND step = 'fetch_results'`, [batch.id],
      );
      if (rows[0]?.succeeded_at) break;
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        // The part's rows commit together at the end, so progress shows as the worker's memory and time only.
        ctx.log(`ingest: ${((Date.now() - t0) / 1000).toFixed(0)}s, worker RSS ${worker.rss().rssMb.toFixed(0)} MB`);
      }
      if (Date.now() - t0 > 600_000) throw new Error('results not stored 10 minutes after pollNow');
      await sleep(20);
    }
    const { baselineMb: baseline, peakMb: peak, cpuSeconds, workerThreadsCpuSeconds } = meter.stop();
    const { rows: steps } = await ctx.pool.query(
      `SELECT last_attempt_at, succeeded_at, total_attempts FROM step_attempts WHERE subject_kind = 'batch' AND subject_id = $1 AND step = 'fetch_results'`,
      [batch.id],
    );
    const ingestSeconds = (steps[0].succeeded_at.getTime() - steps[0].last_attempt_at.getTime()) / 1000;
    // request_results itself, not the request_outcomes view: moments after 100,000 rows land the planner has no
    // statistics for them, and one full run planned the view's join so badly that this check ran for minutes.
    const { rows: counted } = await ctx.pool.query(
      `SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded, count(*) AS total FROM request_results WHERE batch_id = $1 AND round = 1`,
      [batch.id],
    );
    if (Number(counted[0].succeeded) !== lines) throw new Error(`only ${counted[0].succeeded}/${lines} results stored as succeeded`);
    const ingestRowsPerSec = Math.round(lines / ingestSeconds);
    ctx.log(`ingest: ${lines} rows in ${ingestSeconds.toFixed(2)}s = ${ingestRowsPerSec} rows/s; worker RSS ${baseline.toFixed(0)} → peak ${peak.toFixed(0)} MB; ` +
      `CPU s: ${Object.entries(cpuSeconds).map(([name, seconds]) => `${name} ${seconds}`).join(', ')}`);
    await ctx.temporal.workflow.getHandle(batch.workflowId).result();

    // The floor: COPY of the same rows.
    const copy = await copyFloor(ctx, batch.id);
    ctx.log(`COPY: ${copy.rows} rows in ${copy.seconds.toFixed(2)}s = ${copy.rowsPerSec} rows/s (${(copy.bytes / 1e6).toFixed(1)} MB of COPY text; ` +
      `fastest of ${COPY_RUNS} runs: ${copy.runSeconds.map((seconds) => seconds.toFixed(2)).join(', ')} s)`);
    const ingestRatio = round2(ingestRowsPerSec / copy.rowsPerSec);
    const ingestPeakRssMb = round1(peak - baseline);
    details.ingest = {
      lines,
      provider: 'anthropic (one provider batch, one results file)',
      resultsFileMb: round1(download.bytes / 1e6),
      downloadOnlyRowsPerSec: Math.round(download.rowsPerSec),
      ingestSeconds: round2(ingestSeconds),
      fetchAttempts: steps[0].total_attempts,
      copySeconds: round2(copy.seconds),
      copyRunSeconds: copy.runSeconds.map(round2),
      copyBytesMb: round1(copy.bytes / 1e6),
      workerRssBaselineMb: round1(baseline),
      workerRssPeakMb: round1(peak),
      rssPeakSource: 'max(VmHWM after reset, 20 ms samples)',
      cpuSeconds,
      workerThreadsCpuSeconds,
    };
    return { ingestRowsPerSec, copyRowsPerSec: copy.rowsPerSec, ingestRatio, ingestPeakRssMb };
  } finally {
    setReplyPadding(0);
    ctx.fake.configure({ keepResultFiles: false });
  }
}

async function downloadOnly(url: string): Promise<{ bytes: number; lines: number; rowsPerSec: number }> {
  const started = Date.now();
  const response = await fetch(url, { headers: { 'x-api-key': API_KEY, 'anthropic-version': '2023-06-01' } });
  if (!response.ok || !response.body) throw new Error(`results download: HTTP ${response.status}`);
  let bytes = 0;
  let lines = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (let i = 0; i < chunk.length; i += 1) if (chunk[i] === 10) lines += 1;
  }
  return { bytes, lines, rowsPerSec: lines / ((Date.now() - started) / 1000) };
}

async function copyFloor(ctx: BenchContext, batchId: string) {
  // batchId is a uuid we generated; COPY takes no parameters.
  if (!/^[0-9a-f-]{36}$/.test(batchId)) throw new Error('unexpected batch id');
  const client = await ctx.pool.connect();
  const chunks: Buffer[] = [];
  try {
    await pipeline(
      client.query(copyTo(`COPY (SELECT ${OUTCOME_COLUMNS} FROM request_results WHERE batch_id = '${batchId}') TO STDOUT`)),
      new Writable({ write(chunk: Buffer, _encoding, done) { chunks.push(chunk); done(); } }),
    );
  } finally {
    client.release();
  }
  return fastestCopy(ctx.pool, { like: 'request_results', columns: OUTCOME_COLUMNS, chunks, runs: COPY_RUNS });
}
