/**
 * `npm run bench [-- options]`: batchkeeper's benchmark against the real Temporal dev server, PostgreSQL and the fake
 * provider. Writes bench/results/latest.json and bench/results/latest.md (and a timestamped copy of each).
 *
 *   npm run bench -- --quick        # scaled down, under 3 minutes, headless
 *   npm run bench                   # the full sizes of the issue (1,000 / 10,080 polls / 10,000 in flight / 100,000 lines)
 *   npm run bench -- --only overhead,ingest --batches 500
 *
 * Measurements (one file each): overhead.ts (ours vs a floor workflow, provider efficiency), history.ts (events per
 * poll, a simulated 7-day batch), timeliness.ts (poll lateness with many batches in flight, poll-now to handler),
 * ingest.ts (a 100,000-line results file vs PostgreSQL's COPY), memory.ts (worker RSS). report.ts writes the results.
 *
 * `bench/main.ts --floor-worker` is the floor worker process (started by the bench itself, see overhead.ts).
 *
 * Analysis only (environment): BENCH_PROFILE_DIR=dir writes V8 CPU profiles of the worker processes;
 * BENCH_WORKER_NODE_ARGS='--perf-basic-prof' passes node flags to them (e.g. for Linux perf);
 * BENCH_PG_STATEMENTS=file.json writes pg_stat_statements (calls, execution and planning ms) of the overhead rounds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { BATCH_WORKFLOW_TYPE, batchStartOptions } from '../../domain/workflow-start';
import { insertBatch, type BatchRecord, type NewBatch } from '../../db/batches-store';
import { migrateDatabase } from '../../db/migrate';
import { createPool, inTransaction } from '../../db/pool';
import { createDatabase, databaseUrlWithName, dropDatabase } from '../dev/postgres';
import { DATA_DIR, startLocalStack, type LocalStack } from '../dev/stack';
import { startFakeProvider, type FakeProvider } from '../../testing/fake-provider/server';
import { runHistory } from './history';
import { runIngest } from './ingest';
import { readRss, resetPeakRss, type RssReading } from './memory';
import { runFloorWorkerProcess, runOverhead } from './overhead';
import * as report from './report';
import type { BenchResults } from './report';
import { runPollNow, runTimeliness } from './timeliness';

export const BENCH_DIR = __dirname;
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const API_KEY = 'sk-bench-not-a-real-key';
/**
 * Dev-server settings for the bench. The dev server runs a single history shard, so two per-shard defaults that a
 * production cluster spreads over hundreds of shards would dominate a compressed run: every new timer is floored to
 * now + 1 s (timerProcessorMaxTimeShift), which turns sub-second schedules into 1 s ones, and the timer and transfer
 * queues are read at most 20 times a second, which adds ~40 ms to every task dispatch. Both ours and the floor run on
 * this server.
 */
export const TEMPORAL_DYNAMIC_CONFIG = [
  'history.timerProcessorMaxTimeShift="10ms"',
  'history.timerProcessorMaxPollRPS=1000',
  'history.transferProcessorMaxPollRPS=1000',
];

// ---------------------------------------------------------------------------------------------------------------
// Presets

export type MeasurementName = 'overhead' | 'history' | 'pollnow' | 'ingest' | 'timeliness';
export const MEASUREMENTS: MeasurementName[] = ['overhead', 'history', 'pollnow', 'ingest', 'timeliness'];

export interface Preset {
  name: 'default' | 'quick';
  /** Folder under .data/ (PostgreSQL cluster kept between runs; a fresh database each run). */
  dataName: string;
  ui: boolean;
  overhead: {
    batches: number;
    /** Ours then floor, this many times; the best throughput of each is kept. */
    rounds: number;
    requestsPerBatch: number;
    pollScheduleMs: number[];
    /** Fake provider processing time per batch. */
    processingMs: number;
    warmupBatches: number;
    /** Histories fetched for events per poll and history size. */
    historySample: number;
    /** Before each round, wait for the timeout timers of the one before to fire (bench/overhead.ts); off in --quick. */
    awaitTimerTails: boolean;
  };
  history: { polls: number; pollIntervalMs: number };
  pollNow: { trials: number; requests: number };
  ingest: { lines: number; lineBytes: number };
  timeliness: { inFlight: number; pollIntervalMs: number; windowMs: number; sampleWorkflows: number };
}

export const DEFAULT_PRESET: Preset = {
  name: 'default',
  dataName: 'bench',
  ui: true,
  overhead: {
    batches: 1000, rounds: 2, requestsPerBatch: 4, pollScheduleMs: [200, 300, 500], processingMs: 3000, warmupBatches: 50, historySample: 100,
    awaitTimerTails: true,
  },
  history: { polls: 10_080, pollIntervalMs: 1 },
  pollNow: { trials: 11, requests: 1000 },
  ingest: { lines: 100_000, lineBytes: 1048 },
  timeliness: { inFlight: 10_000, pollIntervalMs: 300_000, windowMs: 300_000, sampleWorkflows: 600 },
};

export const QUICK_PRESET: Preset = {
  name: 'quick',
  dataName: 'bench-quick',
  ui: false,
  overhead: { ...DEFAULT_PRESET.overhead, batches: 200, rounds: 1, warmupBatches: 20, historySample: 40, awaitTimerTails: false },
  history: { polls: 1000, pollIntervalMs: 1 },
  pollNow: { trials: 5, requests: 1000 },
  ingest: { lines: 25_000, lineBytes: 1048 },
  timeliness: { inFlight: 600, pollIntervalMs: 20_000, windowMs: 20_000, sampleWorkflows: 300 },
};

/** Worker tuning passed to both worker processes (ours and the floor's) through the environment. */
export interface WorkerTuning {
  maxCachedWorkflows?: number;
  maxConcurrentActivities?: number;
  maxConcurrentWorkflowTasks?: number;
  pgPoolMax?: number;
}

export interface BenchOptions {
  preset: Preset;
  only: MeasurementName[];
  tuning: WorkerTuning;
  output?: string;
}

const USAGE = `npm run bench -- [options]

Presets
  --quick                 scaled down (200 batches, 1,000 polls, 600 in flight, 25,000 lines), headless, under 3 minutes
  (default)               1,000 batches, a full 10,080-poll 7-day batch, 10,000 in flight, 100,000 lines (~100 MB), Temporal Web on

Sizes
  --batches N             overhead: concurrent batches (ours and floor)      --rounds N   overhead rounds (best kept)
  --history-polls N       polls of the simulated 7-day batch
  --in-flight N           timeliness/memory: batches in flight on one worker  --poll-interval D  their poll interval (e.g. 60s)
  --window D              timeliness: measurement window after the ramp
  --trials N              poll-now-to-handler trials                          --ingest-lines N   results file lines

Worker tuning (env of both worker processes; unset = the stock worker's defaults)
  --max-cached N  --max-activities N  --max-workflow-tasks N  --pg-pool N

Other
  --only LIST             comma-separated subset of: ${MEASUREMENTS.join(', ')}
  --ui / --no-ui          Temporal Web on (port + 1000)
  --output FILE           default bench/results/latest.json (the markdown table goes beside it)
`;

export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new Error(`bad duration ${JSON.stringify(text)} (use e.g. 90s, 2m, 1500ms)`);
  return Math.round(Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h']);
}

export function optionsFromArgs(argv: string[]): BenchOptions {
  const intFlags = ['batches', 'rounds', 'history-polls', 'in-flight', 'trials', 'ingest-lines', 'max-cached', 'max-activities',
    'max-workflow-tasks', 'pg-pool'];
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ui: { type: 'boolean' },
      'no-ui': { type: 'boolean' },
      only: { type: 'string' },
      output: { type: 'string' },
      'poll-interval': { type: 'string' },
      window: { type: 'string' },
      ...Object.fromEntries(intFlags.map((flag) => [flag, { type: 'string' as const }])),
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const base = values.quick ? QUICK_PRESET : DEFAULT_PRESET;
  const preset: Preset = structuredClone(base);
  const int = (flag: string, min: number): number | undefined => {
    const raw = (values as Record<string, unknown>)[flag];
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${flag} must be an integer of at least ${min}`);
    return value;
  };
  preset.overhead.batches = int('batches', 1) ?? preset.overhead.batches;
  preset.overhead.rounds = int('rounds', 1) ?? preset.overhead.rounds;
  preset.history.polls = int('history-polls', 2) ?? preset.history.polls;
  preset.timeliness.inFlight = int('in-flight', 1) ?? preset.timeliness.inFlight;
  preset.pollNow.trials = int('trials', 1) ?? preset.pollNow.trials;
  preset.ingest.lines = int('ingest-lines', 1) ?? preset.ingest.lines;
  if (values['poll-interval']) preset.timeliness.pollIntervalMs = parseDuration(values['poll-interval']);
  if (values.window) preset.timeliness.windowMs = parseDuration(values.window);
  if (values.ui) preset.ui = true;
  if (values['no-ui']) preset.ui = false;
  const only = values.only
    ? values.only.split(',').map((name) => name.trim()).filter(Boolean)
    : MEASUREMENTS;
  for (const name of only) if (!MEASUREMENTS.includes(name as MeasurementName)) throw new Error(`--only: unknown measurement ${name}`);
  return {
    preset,
    only: only as MeasurementName[],
    tuning: {
      maxCachedWorkflows: int('max-cached', 0),
      maxConcurrentActivities: int('max-activities', 1),
      maxConcurrentWorkflowTasks: int('max-workflow-tasks', 2),
      pgPoolMax: int('pg-pool', 1),
    },
    output: values.output,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The shared context every measurement receives

export interface WorkerProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  readyAt: number;
  rss(): RssReading;
  /** Resets the kernel's peak-RSS mark (VmHWM) of the process. */
  resetPeak(): void;
  stop(): Promise<void>;
}

export interface BenchContext {
  options: BenchOptions;
  preset: Preset;
  log(message: string): void;
  stack: LocalStack;
  databaseUrl: string;
  pool: Pool;
  connection: Connection;
  temporal: Client;
  fake: FakeProvider;
  taskQueue: string;
  floorTaskQueue: string;
  /** Where worker logs go. */
  dataDir: string;
  /** Starts the stock worker (worker/main.ts) as a subprocess with the run's tuning (`overrides` win); resolves once it polls. */
  startWorker(name: string, overrides?: WorkerTuning): Promise<WorkerProcess>;
  /** Starts the floor worker (bench/floor-workflows.ts, no-op activities) with the same tuning. */
  startFloorWorker(name: string): Promise<WorkerProcess>;
  /** Inserts batches through db/batches-store insertBatch (the client's own insert), `concurrency` at a time. */
  insertBatches(batches: NewBatch[], onProgress?: (done: number) => void): Promise<BatchRecord[]>;
  /** Starts the batch workflows (client/start-options batchStartOptions), `concurrency` at a time. */
  startBatchWorkflows(
    batches: BatchRecord[],
    args?: (batch: BatchRecord) => Record<string, unknown>,
    onProgress?: (done: number) => void,
    pacing?: { startAt(index: number): number },
  ): Promise<void>;
  /** Temporal Web link of a workflow, when the UI is on. */
  webLink(workflowId: string): string | undefined;
}

/** A NewBatch for the bench: small chat requests, no handler unless given. */
export function benchBatch(options: {
  provider?: 'openai' | 'anthropic';
  requests: number;
  pollScheduleMs: number[];
  maxAgeMs?: number;
  handler?: string | null;
  label: string;
}): NewBatch {
  const id = randomUUID();
  return {
    id,
    idempotencyKey: `bench-${options.label}-${id}`,
    workflowId: `batch-${id}`,
    provider: options.provider ?? 'openai',
    model: options.provider === 'anthropic' ? 'claude-3-5-haiku-latest' : 'gpt-4o-mini',
    handlerName: options.handler ?? null,
    metadata: { bench: options.label },
    pollScheduleMs: options.pollScheduleMs,
    maxAgeMs: options.maxAgeMs ?? 7 * 24 * 3_600_000,
    requests: Array.from({ length: options.requests }, (_, index) => ({
      customId: `r-${index}`,
      params: { max_tokens: 64, messages: [{ role: 'user', content: `Benchmark question number ${index}` }] },
    })),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs fn over items with at most `limit` in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      results[index] = await fn(items[index], index);
    }
  });
  await Promise.all(lanes);
  return results;
}

function tuningEnv(tuning: WorkerTuning): Record<string, string> {
  const env: Record<string, string> = {};
  if (tuning.maxCachedWorkflows !== undefined) env.BATCHKEEPER_MAX_CACHED_WORKFLOWS = String(tuning.maxCachedWorkflows);
  if (tuning.maxConcurrentActivities !== undefined) env.BATCHKEEPER_MAX_CONCURRENT_ACTIVITIES = String(tuning.maxConcurrentActivities);
  if (tuning.maxConcurrentWorkflowTasks !== undefined) env.BATCHKEEPER_MAX_CONCURRENT_WORKFLOW_TASKS = String(tuning.maxConcurrentWorkflowTasks);
  if (tuning.pgPoolMax !== undefined) env.BATCHKEEPER_PG_POOL_MAX = String(tuning.pgPoolMax);
  return env;
}

async function spawnWorker(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logStream: WriteStream,
  log: (message: string) => void,
  timeoutMs = 180_000,
): Promise<WorkerProcess> {
  const profileDir = process.env.BENCH_PROFILE_DIR; // CPU profiles of the worker processes (analysis only)
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
  const extraNodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, ...extraNodeArgs, '--import', 'tsx', ...args], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env,
  });
  const tag = (line: string) => `[${name} ${child.pid}] ${line}\n`;
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) logStream.write(tag(line));
  };
  child.stdout!.on('data', forward);
  child.stderr!.on('data', forward);
  let exited = false;
  child.once('exit', (code, signal) => {
    exited = true;
    logStream.write(tag(`exited (${code ?? signal})`));
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs / 1000}s`)), timeoutMs);
    child.on('message', (message: { ready?: boolean }) => {
      if (message?.ready) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready; see the worker log`));
    });
  });
  const pid = child.pid!;
  log(`${name} worker ready (pid ${pid}, ${readRss(pid).rssMb.toFixed(0)} MB RSS)`);
  return {
    name,
    pid,
    child,
    readyAt: Date.now(),
    rss: () => readRss(pid),
    resetPeak: () => resetPeakRss(pid),
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 15_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The run

export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const started = Date.now();
  const log = (message: string) => console.log(`[bench +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
  const { preset } = options;

  const dataDir = path.join(DATA_DIR, preset.dataName);
  mkdirSync(dataDir, { recursive: true });
  rmSync(path.join(dataDir, 'temporal.log'), { force: true });
  const workerLog = createWriteStream(path.join(dataDir, 'workers.log'), { flags: 'w' });
  const machineBefore = report.machineInfo();
  log(`preset ${preset.name}; measurements: ${options.only.join(', ')}; ${machineBefore.cpus} CPUs (${machineBefore.cpuModel}), load ${machineBefore.loadAverage.join(' ')}`);

  const stack = await startLocalStack({
    name: preset.dataName,
    uiPort: preset.ui ? undefined : false,
    postgresFlags: [
      '-c', 'max_connections=300',
      ...(process.env.BENCH_PG_STATEMENTS ? ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track_planning=on'] : []),
    ],
    extraTemporalArgs: TEMPORAL_DYNAMIC_CONFIG.flatMap((value) => ['--dynamic-config-value', value]),
    onProgress: (message) => log(`stack: ${message}`),
  });
  const cleanups: (() => Promise<unknown>)[] = [async () => stack.stop()];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((error) => log(`cleanup: ${(error as Error).message}`));
  };
  try {
    const databaseName = 'bk_bench';
    await dropDatabase(stack.postgres.adminUrl, databaseName).catch(() => undefined);
    await createDatabase(stack.postgres.adminUrl, databaseName);
    const databaseUrl = databaseUrlWithName(stack.postgres.adminUrl, databaseName);
    await migrateDatabase(databaseUrl);
    const pool = createPool(databaseUrl, { max: 20 });
    cleanups.push(() => pool.end());
    const connection = await Connection.connect({ address: stack.temporal.address });
    cleanups.push(() => connection.close());
    const temporal = new Client({ connection });
    const fake = await startFakeProvider({ processingMs: preset.overhead.processingMs });
    cleanups.push(() => fake.close());
    log(`fake provider at ${fake.url}; database ${databaseName}`);
    if (stack.temporal.uiUrl) log(`Temporal Web: ${stack.temporal.uiUrl}/namespaces/default/workflows`);

    const taskQueue = 'bench';
    const floorTaskQueue = 'bench-floor';
    const baseEnv: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: stack.temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      OPENAI_API_KEY: API_KEY,
      OPENAI_BASE_URL: fake.openaiBaseUrl,
      ANTHROPIC_API_KEY: API_KEY,
      ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
      ...tuningEnv(options.tuning),
    };
    const workers = new Set<WorkerProcess>();
    cleanups.push(async () => Promise.all([...workers].map((worker) => worker.stop())));
    const track = (worker: WorkerProcess) => {
      workers.add(worker);
      worker.child.once('exit', () => workers.delete(worker));
      return worker;
    };

    const ctx: BenchContext = {
      options,
      preset,
      log,
      stack,
      databaseUrl,
      pool,
      connection,
      temporal,
      fake,
      taskQueue,
      floorTaskQueue,
      dataDir,
      startWorker: async (name, overrides = {}) =>
        track(await spawnWorker(name, [path.join(PROJECT_ROOT, 'worker', 'main.ts')],
          { ...baseEnv, ...tuningEnv(overrides), BATCHKEEPER_TASK_QUEUE: taskQueue }, workerLog, log)),
      startFloorWorker: async (name) =>
        track(await spawnWorker(name, [path.join(BENCH_DIR, 'main.ts'), '--floor-worker'], { ...baseEnv, BENCH_FLOOR_TASK_QUEUE: floorTaskQueue }, workerLog, log)),
      async insertBatches(batches, onProgress) {
        let done = 0;
        await mapLimit(batches, 8, async (batch) => {
          await inTransaction(pool, (db) => insertBatch(db, batch));
          done += 1;
          if (onProgress && done % 500 === 0) onProgress(done);
        });
        return batches.map(toRecord);
      },
      async startBatchWorkflows(batches, args, onProgress, pacing) {
        let done = 0;
        await mapLimit(batches, 48, async (batch, index) => {
          const wait = pacing ? pacing.startAt(index) - Date.now() : 0;
          if (wait > 0) await sleep(wait);
          await temporal.workflow.start(BATCH_WORKFLOW_TYPE, {
            ...batchStartOptions(batch, taskQueue),
            args: [{ batchId: batch.id, ...(args ? args(batch) : {}) }],
          });
          done += 1;
          if (onProgress && done % 500 === 0) onProgress(done);
        });
      },
      webLink: (workflowId) =>
        stack.temporal.uiUrl ? `${stack.temporal.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}` : undefined,
    };

    const results = report.emptyResults(preset, options, machineBefore);
    results.machine.postgres = String((await pool.query('SHOW server_version')).rows[0].server_version);
    results.machine.temporalCli = /v\d+\.\d+\.\d+/.exec(stack.temporalCliPath)?.[0] ?? path.basename(stack.temporalCliPath);
    results.details.temporalDynamicConfig = TEMPORAL_DYNAMIC_CONFIG;
    const run = async (name: MeasurementName, fn: () => Promise<void>) => {
      if (!options.only.includes(name)) return;
      const at = Date.now();
      log(`=== ${name} ===`);
      try {
        await fn();
      } catch (error) {
        log(`${name} FAILED: ${(error as Error).stack ?? error}`);
        results.errors.push(`${name}: ${(error as Error).message}`);
      }
      results.details.durationsSeconds[name] = Math.round((Date.now() - at) / 100) / 10;
    };

    // Overhead and history share one worker; poll-now and ingest another; the 10,000-in-flight run gets a fresh one.
    let worker: WorkerProcess | undefined;
    const freshWorker = async (name: string) => {
      await worker?.stop();
      worker = await ctx.startWorker(name);
      return worker;
    };
    if (options.only.includes('overhead') || options.only.includes('history')) await freshWorker('ours');
    await run('overhead', async () => {
      Object.assign(results, await runOverhead(ctx, worker!, results.details));
    });
    await run('history', async () => {
      Object.assign(results, await runHistory(ctx, results.details));
    });
    if (options.only.includes('pollnow') || options.only.includes('ingest')) await freshWorker('ours-2');
    await run('pollnow', async () => {
      Object.assign(results, await runPollNow(ctx, results.details));
    });
    await run('ingest', async () => {
      Object.assign(results, await runIngest(ctx, worker!, results.details));
    });
    await run('timeliness', async () => {
      await worker?.stop();
      // A worker serving many long-lived batches should keep them all in its workflow cache: a miss replays the
      // history on every timer. The SDK's default cache is sized from the heap (about 2,300 on a 4 GB heap).
      const maxCachedWorkflows = options.tuning.maxCachedWorkflows ?? Math.ceil(preset.timeliness.inFlight * 1.1);
      results.details.timelinessWorkerTuning = { maxCachedWorkflows };
      worker = await ctx.startWorker('ours-10k', { maxCachedWorkflows });
      Object.assign(results, await runTimeliness(ctx, worker, results.details));
    });
    await worker?.stop();

    results.machine = { ...results.machine, loadAverageAfter: report.machineInfo().loadAverage };
    results.details.totalSeconds = Math.round((Date.now() - started) / 1000);
    const written = report.writeResults(results, options.output);
    console.log(`\n${report.formatMarkdown(results)}`);
    log(`results written to ${written.json} and ${written.markdown}; worker logs in ${path.join(dataDir, 'workers.log')}`);
    return results;
  } finally {
    await cleanup();
    workerLog.end();
  }
}

function toRecord(batch: NewBatch): BatchRecord {
  return {
    id: batch.id, idempotencyKey: batch.idempotencyKey, workflowId: batch.workflowId, provider: batch.provider, model: batch.model,
    status: 'pending', providerBatchId: null, providerStatus: null, handlerName: batch.handlerName, metadata: batch.metadata,
    requestCount: batch.requests.length, requestCounts: {}, pollScheduleMs: batch.pollScheduleMs, maxAgeMs: batch.maxAgeMs,
    pollCount: 0, lastPolledAt: null, nextPollAt: null, createdAt: new Date(), submittedAt: null, deadlineAt: null, endedAt: null,
    resultsFetchedAt: null, handlerDispatchedAt: null, failedAt: null, failureCode: null, failureMessage: null, inputTokens: 0,
    outputTokens: 0, round: 1, maxRequestAttempts: batch.maxRequestAttempts ?? 1, costUsd: null, deadLetteredRequests: 0,
  };
}

async function main(): Promise<number> {
  if (process.argv.includes('--floor-worker')) {
    await runFloorWorkerProcess();
    return 0;
  }
  let options: BenchOptions;
  try {
    options = optionsFromArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const results = await runBench(options);
  return results.errors.length ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error('[bench] the run itself failed:', error);
      process.exit(1);
    },
  );
}
