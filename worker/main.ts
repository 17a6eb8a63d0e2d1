/**
 * The stock worker process: configuration from the environment, migrations applied, example handlers registered.
 * Apps with their own handlers write a file like this one that passes them to createBatchkeeperWorker.
 */
import path from 'node:path';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { databaseUrlFromEnv, temporalSettingsFromEnv } from '../config/env';
import { migrateDatabase } from '../db/migrate';
import { createPool } from '../db/pool';
import { createProviders, providersConfigFromEnv } from '../providers/registry';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { installSweepSchedule } from '../client/schedules';
import { createBatchkeeperWorker } from './create-worker';
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

async function main(): Promise<void> {
  const databaseUrl = databaseUrlFromEnv();
  await migrateDatabase(databaseUrl);
  const pool = createPool(databaseUrl);
  const temporal = temporalSettingsFromEnv();
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  try {
    const { handlers, jobExecutors } = loadHandlers();
    const worker = await createBatchkeeperWorker({
      connection,
      namespace: temporal.namespace,
      taskQueue: temporal.taskQueue,
      pool,
      providers: createProviders(providersConfigFromEnv()),
      handlers,
      jobExecutors,
    });
    if (process.env.BATCHKEEPER_INSTALL_SCHEDULES === '1') {
      const client = new Client({ connection, namespace: temporal.namespace });
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
