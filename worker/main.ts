/**
 * The stock worker process (`node dist/worker/main.js`, the Docker image): configuration from the environment
 * (config/variables.ts), the Temporal Runtime with its logger and metrics endpoint, migrations applied, example
 * handlers registered plus those of BATCHKEEPER_HANDLERS_MODULE. Apps with their own handlers write a file like this
 * one that passes them to createBatchkeeperWorker.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { installSweepSchedule } from '../client/schedules';
import { encryptingDataConverter } from '../codec/data-converter';
import { loadConfig } from '../config/load';
import { WORKER_CONFIG_GROUPS } from '../config/variables';
import { migrateDatabase } from '../db/migrate';
import { createPool } from '../db/pool';
import { createProviders } from '../providers/registry';
import { createBatchkeeperWorker } from './create-worker';
import { exampleHandlers, exampleJobExecutors } from './example-handlers';
import { meteredSteps } from './metrics';
import { installWorkerRuntime } from './runtime';
import { startStateGauges } from './state-gauges';
import { startTracing, type Tracing } from './tracing';
import { waitForDependency } from './startup-retry';

/** The module may be CommonJS or ESM; it exports `handlers` and/or `jobExecutors`. */
async function loadHandlers(modulePath: string | undefined): Promise<{ handlers: BatchHandlerRegistry; jobExecutors: JobExecutorRegistry }> {
  if (!modulePath) return { handlers: exampleHandlers, jobExecutors: exampleJobExecutors };
  const loaded = (await import(pathToFileURL(path.resolve(modulePath)).href)) as {
    handlers?: BatchHandlerRegistry; jobExecutors?: JobExecutorRegistry; default?: { handlers?: BatchHandlerRegistry; jobExecutors?: JobExecutorRegistry };
  };
  const exported = loaded.handlers || loaded.jobExecutors ? loaded : loaded.default ?? {};
  if (!exported.handlers && !exported.jobExecutors) {
    throw new Error(`BATCHKEEPER_HANDLERS_MODULE ${modulePath} exports neither \`handlers\` nor \`jobExecutors\``);
  }
  return {
    handlers: { ...exampleHandlers, ...exported.handlers },
    jobExecutors: { ...exampleJobExecutors, ...exported.jobExecutors },
  };
}

async function main(): Promise<void> {
  const config = loadConfig(process.env, WORKER_CONFIG_GROUPS);
  const { database, temporal, worker: settings } = config;
  // Before any connection: the Runtime's logger and telemetry are fixed when it is created.
  const runtime = installWorkerRuntime(settings);
  const log = runtime.logger;
  const tracing: Tracing | undefined = settings.otlpTracesUrl ? await startTracing(settings.otlpTracesUrl) : undefined;
  await waitForDependency('PostgreSQL', () => migrateDatabase(database.url, { schema: database.schema }), settings.startupTimeoutMs);
  const pool = createPool(database.url, { max: database.poolMax, preparedStatements: database.preparedStatements, schema: database.schema });
  const dataConverter = config.codec.keys ? encryptingDataConverter(config.codec.keys) : undefined;
  const connection = await waitForDependency('Temporal', () => NativeConnection.connect(temporal.connectionOptions), settings.startupTimeoutMs);
  const providers = createProviders(config.providers);
  const gauges = settings.metricsAddress ? startStateGauges(pool, Runtime.instance().metricMeter, { providers: [...providers.keys()] }) : undefined;
  try {
    const { handlers, jobExecutors } = await loadHandlers(settings.handlersModule);
    const worker = await createBatchkeeperWorker({
      connection,
      namespace: temporal.namespace,
      taskQueue: temporal.taskQueue,
      pool,
      providers,
      handlers,
      jobExecutors,
      retry: settings.retry,
      prices: settings.prices,
      admission: settings.admission,
      retentionDays: settings.retentionDays,
      maxConcurrentActivityTaskExecutions: settings.maxConcurrentActivityTaskExecutions,
      maxConcurrentWorkflowTaskExecutions: settings.maxConcurrentWorkflowTaskExecutions,
      maxCachedWorkflows: settings.maxCachedWorkflows,
      dataConverter,
      metrics: settings.metricsAddress ? meteredSteps(Runtime.instance().metricMeter) : undefined,
      plugins: tracing ? [tracing.plugin] : undefined,
    });
    if (settings.installSchedules) {
      const client = new Client({ connection, namespace: temporal.namespace, dataConverter });
      const { scheduleId, created } = await installSweepSchedule(client, { taskQueue: temporal.taskQueue });
      log.info(`sweep schedule ${scheduleId} ${created ? 'installed' : 'up to date'}`, { scheduleId });
    }
    if (settings.metricsAddress) log.info(`metrics at http://${settings.metricsAddress}/metrics`);
    if (tracing) log.info(`traces sent to ${settings.otlpTracesUrl}`);
    log.info(`worker polling task queue '${temporal.taskQueue}' on ${temporal.connectionOptions.address}`, { taskQueue: temporal.taskQueue });
    if (process.send) process.send({ ready: true });
    await worker.run();
  } finally {
    gauges?.stop();
    await tracing?.shutdown();
    await connection.close();
    await pool.end();
  }
}

main().catch((error) => {
  console.error(error instanceof Error && error.name === 'ConfigError' ? `[batchkeeper] ${error.message}` : error);
  process.exit(1);
});
