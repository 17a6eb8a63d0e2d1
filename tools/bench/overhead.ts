/**
 * Orchestration overhead and provider efficiency.
 *
 * Ours: N batches (N concurrent) through the stock worker on a compressed poll schedule against the fake provider,
 * timed from the first workflow start to the last workflow result. Floor: N floorWorkflow runs (bench/floor-workflows)
 * on the same server, each with exactly the timers (same delays) and the number of activities its matching batch had,
 * activities doing nothing, on a worker process with the same tuning. overheadRatio = ours / floor throughput (the
 * best round of each).
 *
 * Provider efficiency, per batch: status reads the fake received vs the minimum the schedule allows (the polls needed
 * before the fake's processing time has passed, plus one read per provider batch to find its results), and provider
 * batches created per logical batch.
 */
import { writeFileSync } from 'node:fs';
import type { WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BatchRecord } from '../../db/batches-store';
import { BATCH_WORKFLOW_TYPE } from '../../domain/workflow-ids';
import { batchStartOptions } from '../../domain/workflow-start';
import { benchBatch, mapLimit, sleep, type BenchContext, type WorkerProcess } from './context';
import { analyseHistory, type HistoryStats } from './history';
import { CpuMeter, postmasterPid, treeCpuSeconds } from './memory';
import { percentile, round2, type BenchDetails } from './report';

/** A round starts once the Temporal server used under this much CPU over SETTLE_WINDOW_MS (or SETTLE_MAX_MS passed). */
const SETTLE_IDLE_CPU_SECONDS = 0.1;
const SETTLE_WINDOW_MS = 2000;
const SETTLE_MAX_MS = 150_000;
/**
 * How long after its last activity a round's timeout timers keep firing: ours, the bookkeeping activities' 1-minute
 * start-to-close (workflows/step-runner.ts; the steps' first timer is their 30 s heartbeat timeout); the floor, the
 * 30 s start-to-close of its no-ops (bench/floor-workflows.ts). A few seconds more for timer-queue lag.
 */
const TIMER_TAIL_MS = { ours: 65_000, floor: 35_000 };

/** When the timers of the rounds run so far are all due; the next round waits for it (unless the preset skips it). */
class RoundTails {
  private dueBy = 0;
  constructor(private readonly enabled: boolean) {}
  next(): number {
    return this.enabled ? this.dueBy : 0;
  }
  ended(kind: keyof typeof TIMER_TAIL_MS): void {
    this.dueBy = Date.now() + TIMER_TAIL_MS[kind];
  }
}

interface RoundResult {
  /** Seconds waited for the server to go idle before the round. */
  settleSeconds?: number;
  /** CPU seconds per process over the round. */
  cpuSeconds?: Record<string, number>;
  workerThreadsCpuSeconds?: Record<string, number>;
  batches: number;
  seconds: number;
  batchesPerSecond: number;
  startSeconds: number;
  p50CompletionSeconds: number;
}

/** Polls the schedule needs before a batch that finishes `processingMs` after creation is seen finished. */
export function minimumPolls(schedule: number[], processingMs: number): number {
  let elapsed = 0;
  for (let polls = 1; polls < 1_000_000; polls += 1) {
    elapsed += schedule[Math.min(polls - 1, schedule.length - 1)];
    if (elapsed >= processingMs) return polls;
  }
  return Infinity;
}

/**
 * Waits until the timers the previous round left behind have fired and the Temporal server is idle, so a round does
 * not pay for the tail of the one before it. Every activity leaves a timeout timer (ours: the 30 s heartbeat timeout
 * of a step, the 1-minute start-to-close of a bookkeeping activity; floor: its 30 s start-to-close) that fires after
 * the activity finished and costs the server a mutable-state load. Waiting for idleness alone was not enough: the
 * server went quiet between bursts of due timers, and the floor round after ours ran 20-25% slower than a second floor
 * round started later (two rounds of 400 batches, 14.9 vs 19.1 and 16.3 vs 19.0 batches/s).
 */
async function settle(ctx: BenchContext, label: string, timersDueBy: number): Promise<number> {
  const started = Date.now();
  if (timersDueBy > started) {
    ctx.log(`${label}: waiting ${((timersDueBy - started) / 1000).toFixed(0)} s for the previous round's timeout timers to fire`);
    await sleep(timersDueBy - started);
  }
  for (;;) {
    const before = treeCpuSeconds(ctx.stack.temporal.pid!);
    await sleep(SETTLE_WINDOW_MS);
    const used = treeCpuSeconds(ctx.stack.temporal.pid!) - before;
    const waited = Date.now() - started;
    if (used < SETTLE_IDLE_CPU_SECONDS || waited >= SETTLE_MAX_MS) {
      ctx.log(`${label}: Temporal server ${used < SETTLE_IDLE_CPU_SECONDS ? 'idle' : `still busy (${used.toFixed(2)} CPU-s per ${SETTLE_WINDOW_MS / 1000} s)`} after ${(waited / 1000).toFixed(0)} s`);
      return round2(waited / 1000);
    }
  }
}

/** BENCH_PG_STATEMENTS (analysis only): statement statistics of the measured rounds, from pg_stat_statements. */
async function resetStatementStats(ctx: BenchContext): Promise<void> {
  await ctx.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await ctx.pool.query('SELECT pg_stat_statements_reset()');
}

async function writeStatementStats(ctx: BenchContext, file: string): Promise<void> {
  const { rows } = await ctx.pool.query(
    `SELECT calls, round(total_exec_time::numeric, 1) AS exec_ms, round(total_plan_time::numeric, 1) AS plan_ms, rows,
            left(regexp_replace(query, '\\s+', ' ', 'g'), 300) AS query
       FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC`,
  );
  writeFileSync(file, JSON.stringify(rows, null, 1));
  ctx.log(`pg_stat_statements of the measured rounds written to ${file}`);
}

async function timeRun(
  ctx: BenchContext,
  label: string,
  count: number,
  start: (index: number) => Promise<WorkflowHandle>,
  tails: RoundTails,
  kind: keyof typeof TIMER_TAIL_MS,
  pids: Record<string, number | undefined> = {},
): Promise<RoundResult> {
  const settleSeconds = await settle(ctx, label, tails.next());
  const cpu = new CpuMeter({ ...pids, temporal: ctx.stack.temporal.pid, postgres: postmasterPid(ctx.stack.postgres.dataDir) }, pids.worker).start();
  const t0 = Date.now();
  const completions: number[] = [];
  let started = 0;
  let startedAt = t0;
  const progress = setInterval(() => ctx.log(`${label}: ${started}/${count} started, ${completions.length}/${count} completed`), 5000);
  try {
    const results: Promise<unknown>[] = [];
    await mapLimit(Array.from({ length: count }, (_, index) => index), 48, async (index) => {
      const handle = await start(index);
      started += 1;
      results.push(handle.result().then(() => completions.push(Date.now() - t0)));
    });
    startedAt = Date.now();
    await Promise.all(results);
  } finally {
    clearInterval(progress);
    tails.ended(kind);
  }
  const seconds = Math.max(...completions) / 1000;
  completions.sort((a, b) => a - b);
  const result = {
    settleSeconds,
    batches: count,
    seconds: round2(seconds),
    batchesPerSecond: round2(count / seconds),
    startSeconds: round2((startedAt - t0) / 1000),
    p50CompletionSeconds: round2(percentile(completions, 50) / 1000),
    cpuSeconds: cpu.stop(),
    workerThreadsCpuSeconds: cpu.threads(),
  };
  ctx.log(`${label}: ${count} done in ${result.seconds}s = ${result.batchesPerSecond} batches/s (starts took ${result.startSeconds}s); ` +
    `CPU s: ${Object.entries(result.cpuSeconds).map(([name, seconds]) => `${name} ${seconds}`).join(', ')}; ` +
    `worker threads: ${Object.entries(result.workerThreadsCpuSeconds).map(([name, seconds]) => `${name} ${seconds}`).join(', ')}`);
  return result;
}

async function runOurs(ctx: BenchContext, tails: RoundTails, label: string, count: number, pid?: number): Promise<{ round: RoundResult; batches: BatchRecord[] }> {
  const { overhead } = ctx.preset;
  const batches = await ctx.insertBatches(
    Array.from({ length: count }, () => benchBatch({ requests: overhead.requestsPerBatch, pollScheduleMs: overhead.pollScheduleMs, label })),
  );
  await sleep(500);
  const round = await timeRun(ctx, label, count, (index) =>
    ctx.temporal.workflow.start(BATCH_WORKFLOW_TYPE, { ...batchStartOptions(batches[index], ctx.taskQueue), args: [{ batchId: batches[index].id }] }),
  tails, 'ours', { worker: pid });
  return { round, batches };
}

async function runFloor(ctx: BenchContext, tails: RoundTails, label: string, polls: number[], pid?: number): Promise<RoundResult> {
  const schedule = ctx.preset.overhead.pollScheduleMs;
  const prefix = `floor-${label}-${Date.now()}`;
  return timeRun(ctx, label, polls.length, (index) =>
    ctx.temporal.workflow.start('floorWorkflow', {
      taskQueue: ctx.floorTaskQueue,
      workflowId: `${prefix}-${index}`,
      args: [{ polls: polls[index], pollScheduleMs: schedule }],
    }),
  tails, 'floor', { worker: pid });
}

export async function runOverhead(ctx: BenchContext, ours0: WorkerProcess, details: BenchDetails) {
  const { overhead } = ctx.preset;
  ctx.fake.configure({ processingMs: overhead.processingMs });
  const floorWorker = overhead.floor ? await ctx.startFloorWorker('floor') : undefined;
  const tails = new RoundTails(overhead.awaitTimerTails);
  try {
    // Warm-up: JIT, connections, workflow bundles, the server's task queues.
    ctx.log(`warm-up: ${overhead.warmupBatches} batches each`);
    const warm = await runOurs(ctx, tails, 'warm-up ours', overhead.warmupBatches, ours0.pid);
    if (floorWorker) await runFloor(ctx, tails, 'warm-up floor', warm.batches.map(() => 3), floorWorker.pid);

    const oursRounds: RoundResult[] = [];
    const floorRounds: RoundResult[] = [];
    const measured: BatchRecord[] = [];
    const statementsFile = process.env.BENCH_PG_STATEMENTS;
    if (statementsFile) await resetStatementStats(ctx);
    for (let round = 1; round <= overhead.rounds; round += 1) {
      ctx.log(`round ${round}/${overhead.rounds}: ours, ${overhead.batches} concurrent batches, schedule ${overhead.pollScheduleMs.join('/')} ms, provider processing ${overhead.processingMs} ms`);
      const ours = await runOurs(ctx, tails, `ours r${round}`, overhead.batches, ours0.pid);
      oursRounds.push(ours.round);
      measured.push(...ours.batches);
      const { rows } = await ctx.pool.query<{ id: string; poll_count: number }>(
        'SELECT id, poll_count FROM batches WHERE id = ANY($1::uuid[])', [ours.batches.map((batch) => batch.id)],
      );
      const pollsById = new Map(rows.map((row) => [row.id, row.poll_count]));
      const polls = ours.batches.map((batch) => pollsById.get(batch.id) ?? 0);
      if (!floorWorker) continue;
      ctx.log(`round ${round}/${overhead.rounds}: floor, the same ${polls.reduce((a, b) => a + b, 0)} timers and ${polls.reduce((a, b) => a + b + 5, 0)} no-op activities`);
      floorRounds.push(await runFloor(ctx, tails, `floor r${round}`, polls, floorWorker.pid));
    }
    if (statementsFile) await writeStatementStats(ctx, statementsFile);
    const best = (rounds: RoundResult[]) => (rounds.length ? Math.max(...rounds.map((round) => round.batchesPerSecond)) : null);
    const oursBest = best(oursRounds)!;
    const floorBest = best(floorRounds);
    const overheadRatio = floorBest === null ? null : round2(oursBest / floorBest);

    // Provider efficiency over every measured batch.
    const efficiency = await providerEfficiency(ctx, measured);
    // History shape of a sample of measured batches.
    const sample = measured.filter((_, index) => index % Math.max(1, Math.floor(measured.length / overhead.historySample)) === 0)
      .slice(0, overhead.historySample);
    const histories = await mapLimit(sample, 8, async (batch) =>
      analyseHistory(await ctx.temporal.workflow.getHandle(batch.workflowId).fetchHistory()),
    );
    const sampleStats = summariseHistories(histories);
    details.overhead = {
      batches: overhead.batches,
      rounds: overhead.rounds,
      pollScheduleMs: overhead.pollScheduleMs,
      providerProcessingMs: overhead.processingMs,
      timerTailsAwaited: overhead.awaitTimerTails,
      requestsPerBatch: overhead.requestsPerBatch,
      ours: oursRounds,
      floor: floorRounds,
      oursBestBatchesPerSecond: oursBest,
      floorBestBatchesPerSecond: floorBest,
      perRoundRatios: floorRounds.map((round, index) => round2(oursRounds[index].batchesPerSecond / round.batchesPerSecond)),
      cpuMsPerBatch: { ours: cpuMsPerBatch(oursRounds), floor: cpuMsPerBatch(floorRounds) },
      historySample: sampleStats,
      exampleWorkflow: ctx.webLink(measured[0].workflowId) ?? measured[0].workflowId,
    };
    details.providerEfficiency = efficiency;
    details.historyCandidates.push({ source: 'overhead batches (sample)', maxEvents: sampleStats.maxEvents });
    ctx.log(`${floorBest === null ? `ours ${oursBest} batches/s (no floor run)` : `overheadRatio ${overheadRatio} (ours ${oursBest} vs floor ${floorBest} batches/s)`}; ` +
      `status calls per batch ${efficiency.statusCallsPerBatch} (minimum ${efficiency.minimumStatusCallsPerBatch}), extra ${efficiency.extraStatusCalls}; ` +
      `provider batches per batch ${efficiency.providerBatchesPerBatch}`);
    return { overheadRatio, extraStatusCalls: efficiency.extraStatusCalls };
  } finally {
    await floorWorker?.stop();
  }
}

/** CPU milliseconds per batch of each measured process, over all rounds: steadier than throughput on a shared machine. */
export function cpuMsPerBatch(rounds: RoundResult[]): Record<string, number> {
  const batches = rounds.reduce((sum, round) => sum + round.batches, 0);
  const perBatch: Record<string, number> = {};
  for (const name of ['worker', 'temporal', 'postgres', 'benchAndFake']) {
    const seconds = rounds.reduce((sum, round) => sum + (round.cpuSeconds?.[name] ?? 0), 0);
    perBatch[name] = Math.round((seconds * 1000 / Math.max(batches, 1)) * 10) / 10;
  }
  return perBatch;
}

async function providerEfficiency(ctx: BenchContext, batches: BatchRecord[]) {
  const { overhead } = ctx.preset;
  const ids = batches.map((batch) => batch.id);
  const { rows } = await ctx.pool.query<{ id: string; poll_count: number; status: string; parts: string[] }>(
    `SELECT b.id, b.poll_count, b.status, array_agg(p.provider_batch_id) FILTER (WHERE p.provider_batch_id IS NOT NULL) AS parts
       FROM batches b LEFT JOIN provider_batches p ON p.batch_id = b.id
      WHERE b.id = ANY($1::uuid[]) GROUP BY b.id`,
    [ids],
  );
  const minPolls = minimumPolls(overhead.pollScheduleMs, overhead.processingMs);
  const created = new Map<string, number>();
  for (const info of ctx.fake.createdBatches()) {
    const tag = info.batchkeeperBatchId?.split('.')[0];
    if (tag) created.set(tag, (created.get(tag) ?? 0) + 1);
  }
  let statusCalls = 0;
  let minimum = 0;
  let extra = 0;
  let duplicateReads = 0;
  let excessPolls = 0;
  let providerBatches = 0;
  let polls = 0;
  const notEnded = rows.filter((row) => row.status !== 'ended').length;
  for (const row of rows) {
    const parts = row.parts ?? [];
    const reads = parts.reduce((sum, id) => sum + (ctx.fake.counters(id)?.retrieve ?? 0), 0);
    statusCalls += reads;
    polls += row.poll_count;
    minimum += minPolls + parts.length;
    const duplicate = Math.max(0, reads - (row.poll_count + parts.length));
    const excess = Math.max(0, row.poll_count - minPolls);
    duplicateReads += duplicate;
    excessPolls += excess;
    extra += duplicate + excess;
    providerBatches += created.get(row.id) ?? 0;
  }
  return {
    batches: rows.length,
    notEnded,
    statusCalls,
    statusCallsPerBatch: round2(statusCalls / rows.length),
    pollsPerBatch: round2(polls / rows.length),
    minimumPollsPerBatch: minPolls,
    minimumStatusCallsPerBatch: round2(minimum / rows.length),
    extraStatusCalls: extra,
    extraFromRereads: duplicateReads,
    extraFromExcessPolls: excessPolls,
    providerBatchesPerBatch: round2(providerBatches / rows.length),
    definition: 'minimum = polls the schedule needs before the provider finished + 1 status read per provider batch to locate its results; ' +
      'extra = reads beyond (polls made + 1 per provider batch) + polls beyond the minimum',
  };
}

export function summariseHistories(histories: HistoryStats[]) {
  const intervals = histories.flatMap((history) => history.eventsBetweenPolls);
  return {
    histories: histories.length,
    meanEvents: round2(histories.reduce((sum, history) => sum + history.events, 0) / Math.max(histories.length, 1)),
    maxEvents: Math.max(0, ...histories.map((history) => history.events)),
    meanPolls: round2(histories.reduce((sum, history) => sum + history.polls, 0) / Math.max(histories.length, 1)),
    eventsPerPoll: round2(intervals.reduce((a, b) => a + b, 0) / Math.max(intervals.length, 1)),
    maxEventsBetweenPolls: Math.max(0, ...intervals),
  };
}

/** The floor worker process (`bench/main.ts --floor-worker`): floor workflows and no-op activities, same tuning. */
export async function runFloorWorkerProcess(): Promise<void> {
  const env = process.env;
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  const num = (name: string) => (env[name] ? Number(env[name]) : undefined);
  try {
    const worker = await Worker.create({
      connection,
      namespace: env.TEMPORAL_NAMESPACE ?? 'default',
      taskQueue: env.BENCH_FLOOR_TASK_QUEUE ?? 'bench-floor',
      workflowsPath: require.resolve('./floor-workflows'),
      activities: { noop: async () => ({ ok: true as const }) },
      // The same settings as worker/create-worker.ts and worker/main.ts give the stock worker.
      maxConcurrentActivityTaskExecutions: num('BATCHKEEPER_MAX_CONCURRENT_ACTIVITIES') ?? 100,
      maxCachedWorkflows: num('BATCHKEEPER_MAX_CACHED_WORKFLOWS'),
      maxConcurrentWorkflowTaskExecutions: num('BATCHKEEPER_MAX_CONCURRENT_WORKFLOW_TASKS'),
    });
    if (process.send) process.send({ ready: true });
    await worker.run();
  } finally {
    await connection.close();
  }
}
