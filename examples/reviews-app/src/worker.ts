/** The app's worker process: batchkeeper's worker with the app's handler, configured from the environment. */
import { NativeConnection } from '@temporalio/worker';
import { createPool, loadConfig, migrateDatabase } from 'batchkeeper';
import { createBatchkeeperWorker, createProviders } from 'batchkeeper/worker';
import { handlers } from './handlers.js';

async function main(): Promise<void> {
  const { database, temporal, providers } = loadConfig(process.env, ['database', 'temporal', 'providers']);
  await migrateDatabase(database.url, { schema: database.schema });
  const pool = createPool(database.url, { schema: database.schema });
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  const worker = await createBatchkeeperWorker({
    connection, namespace: temporal.namespace, taskQueue: temporal.taskQueue, pool, providers: createProviders(providers), handlers,
  });
  process.once('SIGTERM', () => worker.shutdown());
  console.log(`worker ready on ${temporal.taskQueue}`);
  await worker.run();
  await connection.close();
  await pool.end();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
