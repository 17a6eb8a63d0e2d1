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
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { BATCH_WORKFLOW_TYPE } from '../../domain/workflow-ids';
import { batchStartOptions } from '../../domain/workflow-start';
import { insertBatch, type BatchRecord, type NewBatch } from '../../db/batches-store';
import { migrateDatabase } from '../../db/migrate';
import { createPool, inTransaction } from '../../db/pool';
import { createDatabase, databaseUrlWithName, dropDatabase } from '../dev/postgres';
import { DATA_DIR, startLocalStack } from '../dev/stack';
import { startFakeProvider } from '../../testing/fake-provider/server';
import { runHistory } from './history';
import { runIngest } from './ingest';
import { runLargeSubmit } from './large-submit';
import { runReplayCost } from './replay-cost';
import { readRss, resetPeakRss } from './memory';
import { runFloorWorkerProcess, runOverhead } from './overhead';
import * as report from './report';
import type { BenchResults } from './report';
import { runPollNow, runTimeliness } from './timeliness';
import { runFaults } from './peers/faults';
import { runPeers } from './peers/measure';
import { mapLimit, sleep, type BenchContext, type WorkerProcess } from './context';
import {
  API_KEY, BENCH_DIR, optionsFromArgs, PROJECT_ROOT, TEMPORAL_DYNAMIC_CONFIG, USAGE, type BenchOptions, type MeasurementName, type WorkerTuning,
} from './presets';

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
    await run('submit', async () => {
      Object.assign(results, await runLargeSubmit(ctx, worker ?? await freshWorker('ours-submit'), results.details));
    });
    await run('replay', async () => {
      Object.assign(results, await runReplayCost(ctx, results.details));
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
    // The seed's design on pg-boss and BullMQ beside ours' figures above (tools/bench/peers).
    await run('peers', async () => {
      results.errors.push(...(await runPeers(ctx, results.details, results)).errors);
    });
    await run('faults', async () => {
      results.errors.push(...(await runFaults(ctx, results.details)).errors);
    });

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
    outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, endpoint: null, round: 1, maxRequestAttempts: batch.maxRequestAttempts ?? 1,
    costUsd: null, deadLetteredRequests: 0, stragglers: null,
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
