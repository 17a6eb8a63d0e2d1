/**
 * The stock worker process: configuration from the environment, migrations applied, example handlers registered.
 * Apps with their own handlers write a file like this one that passes them to createBatchkeeperWorker.
 */
import path from 'node:path';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { dataConverterFromEnv } from '../codec/data-converter';
import { databaseUrlFromEnv, temporalSettingsFromEnv } from '../config/env';
import { migrateDatabase } from '../db/migrate';
import { createPool } from '../db/pool';
import { createProviders, providersConfigFromEnv } from '../providers/registry';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { validateRetrySettings, type RetryConfig } from '../domain/retry-policy';
import { installSweepSchedule } from '../client/schedules';
import { priceTableFromEnv } from '../domain/prices';
import { createBatchkeeperWorker } from './create-worker';
import { waitForDependency } from './startup-retry';
import { exampleHandlers, exampleJobExecutors } from './example-handlers';

/** BATCHKEEPER_HANDLERS_MODULE may name a module exporting `handlers` and/or `jobExecutors` to add. */
function loadHandlers(): { handlers: BatchHandlerRegistry; jobExecutors: JobExecutorRegistry } {
  const modulePath = process.env.BATCHKEEPER_HANDLERS_MODULE;
  if (!modulePath) return { handlers: exampleHandlers, jobExecutors: exampleJobExecutors };
  const loaded = require(path.resolve(modulePath)) as { handlers?: BatchHandlerRegistry; jobExecutors?: JobExecutorRegistry };
  return {
    handlers: { ...exampleHandlers, ...loaded.handlers },
    jobExecutors: { ...exampleJobExecutors, ...loaded.jobExecutors },
  };
}

/**
 * BATCHKEEPER_RETRY_DEFAULTS: optional JSON retry defaults for every step, e.g.
 * `{"maximumAttempts":30,"initialIntervalMs":200,"backoffCoefficient":2,"maximumIntervalMs":5000}` (chaos runs).
 */
function retryConfigFromEnv(): RetryConfig | undefined {
  const raw = process.env.BATCHKEEPER_RETRY_DEFAULTS;
  if (!raw) return undefined;
  const defaults = JSON.parse(raw) as RetryConfig['defaults'];
  validateRetrySettings(defaults ?? {}, 'BATCHKEEPER_RETRY_DEFAULTS');
  return { defaults };
}

/** BATCHKEEPER_PROVIDER_TIMEOUT_MS: optional per-request provider timeout (default 60 s), e.g. shorter for chaos runs. */
function providersFromEnv() {
  const config = providersConfigFromEnv();
  const timeoutMs = Number(process.env.BATCHKEEPER_PROVIDER_TIMEOUT_MS || 0);
  if (timeoutMs > 0) for (const options of [config.openai, config.anthropic]) if (options) options.timeoutMs = timeoutMs;
  return createProviders(config);
}

/**
 * Worker tuning (all optional; unset keeps the defaults): BATCHKEEPER_MAX_CONCURRENT_ACTIVITIES (100),
 * BATCHKEEPER_MAX_CONCURRENT_WORKFLOW_TASKS (the SDK's 40), BATCHKEEPER_MAX_CACHED_WORKFLOWS (the SDK's, from the heap
 * size), BATCHKEEPER_PG_POOL_MAX (PostgreSQL connections of the worker, 10), BATCHKEEPER_PG_PREPARED_STATEMENTS (1; 0
 * behind a pooler that cannot keep prepared statements).
 */
function workerTuningFromEnv(env: NodeJS.ProcessEnv = process.env) {
  const int = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer of at least ${min}`);
    return value;
  };
  const flag = (name: string): boolean | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    if (raw !== '0' && raw !== '1') throw new Error(`${name} must be 0 or 1`);
    return raw === '1';
  };
  return {
    maxConcurrentActivityTaskExecutions: int('BATCHKEEPER_MAX_CONCURRENT_ACTIVITIES', 1),
    maxConcurrentWorkflowTaskExecutions: int('BATCHKEEPER_MAX_CONCURRENT_WORKFLOW_TASKS', 2),
    maxCachedWorkflows: int('BATCHKEEPER_MAX_CACHED_WORKFLOWS', 0),
    pgPoolMax: int('BATCHKEEPER_PG_POOL_MAX', 1),
    pgPreparedStatements: flag('BATCHKEEPER_PG_PREPARED_STATEMENTS'),
  };
}

async function main(): Promise<void> {
  const databaseUrl = databaseUrlFromEnv();
  const startupTimeoutMs = Number(process.env.BATCHKEEPER_STARTUP_TIMEOUT_MS || 120_000);
  await waitForDependency('PostgreSQL', () => migrateDatabase(databaseUrl), startupTimeoutMs);
  const { pgPoolMax, pgPreparedStatements, ...tuning } = workerTuningFromEnv();
  const pool = createPool(databaseUrl, { ...(pgPoolMax ? { max: pgPoolMax } : {}), preparedStatements: pgPreparedStatements });
  const temporal = temporalSettingsFromEnv();
  const dataConverter = dataConverterFromEnv(); // BATCHKEEPER_CODEC_KEYS: payload encryption, off when unset
  const connection = await waitForDependency('Temporal', () => NativeConnection.connect(temporal.connectionOptions), startupTimeoutMs);
  try {
    const { handlers, jobExecutors } = loadHandlers();
    const worker = await createBatchkeeperWorker({
      connection,
      namespace: temporal.namespace,
      taskQueue: temporal.taskQueue,
      pool,
      providers: providersFromEnv(),
      handlers,
      jobExecutors,
      retry: retryConfigFromEnv(),
      ...tuning,
      dataConverter,
    });
    if (process.env.BATCHKEEPER_INSTALL_SCHEDULES === '1') {
      const client = new Client({ connection, namespace: temporal.namespace, dataConverter });
      const { scheduleId, created } = await installSweepSchedule(client, { taskQueue: temporal.taskQueue });
      console.log(`[batchkeeper] sweep schedule ${scheduleId} ${created ? 'installed' : 'up to date'}`);
    }
    console.log(`[batchkeeper] worker polling task queue '${temporal.taskQueue}' on ${temporal.connectionOptions.address}`);
    if (process.send) process.send({ ready: true });
    await worker.run();
  } finally {
    await connection.close();
    await pool.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
