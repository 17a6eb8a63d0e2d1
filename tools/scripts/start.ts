/**
 * `npm start`: the whole stack on embedded defaults, then a demo batch.
 *   - a Temporal dev server with its state in .data/start/temporal.db, Temporal Web on its UI port
 *   - PostgreSQL from DATABASE_URL, else an embedded one under .data/start/postgres
 *   - the fake provider (no API keys needed), the worker, and a demo batch on a short poll schedule
 * It prints progress, the per-request summary and the Temporal Web link, then keeps running until Ctrl-C.
 * `npm start -- --once` exits right after the demo.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import { encryptingDataConverter } from '../../codec/data-converter';
import { loadConfig } from '../../config/load';
import { migrateDatabase } from '../../db/migrate';
import { createPool } from '../../db/pool';
import { startLocalStack } from '../dev/stack';
import { startFakeProvider } from '../../testing/fake-provider/server';
import { createProviders } from '../../providers/registry';
import { createBatchkeeperWorker } from '../../worker/create-worker';
import { exampleHandlers, exampleJobExecutors } from '../../worker/example-handlers';
import { isFreePort } from './ports';

const once = process.argv.includes('--once');
const log = (message: string) => console.log(`[start] ${message}`);

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const temporalPort = (await isFreePort(7233)) && (await isFreePort(8233)) ? 7233 : undefined;
  const stack = await startLocalStack({ name: 'start', persistTemporal: true, temporalPort, onProgress: log });
  const cleanups: (() => Promise<unknown>)[] = [() => stack.stop()];
  const shutdown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    log('applying database migrations...');
    await migrateDatabase(stack.postgres.url);
    const pool = createPool(stack.postgres.url);
    cleanups.push(() => pool.end());

    const fake = await startFakeProvider({ processingMs: 4000 });
    cleanups.push(() => fake.close());
    log(`fake provider (OpenAI and Anthropic batch APIs) at ${fake.url}`);

    // BATCHKEEPER_CODEC_KEYS set: payloads are encrypted by the worker and the client alike.
    const { keys } = loadConfig(process.env, ['codec']).codec;
    const dataConverter = keys ? encryptingDataConverter(keys) : undefined;
    const nativeConnection = await NativeConnection.connect({ address: stack.temporal.address });
    cleanups.push(() => nativeConnection.close());
    const taskQueue = 'batchkeeper';
    const worker = await createBatchkeeperWorker({
      connection: nativeConnection,
      taskQueue,
      pool,
      providers: createProviders({
        openai: { apiKey: 'demo-key', baseURL: fake.openaiBaseUrl },
        anthropic: { apiKey: 'demo-key', baseURL: fake.anthropicBaseUrl },
      }),
      handlers: exampleHandlers,
      jobExecutors: exampleJobExecutors,
      dataConverter,
    });
    const workerRun = worker.run();
    cleanups.push(async () => {
      worker.shutdown();
      await workerRun;
    });
    log(`worker polling task queue '${taskQueue}'`);

    const connection = await Connection.connect({ address: stack.temporal.address });
    cleanups.push(() => connection.close());
    const client = new BatchkeeperClient({ client: new Client({ connection, dataConverter }), pool, taskQueue });

    // One request of each interesting outcome, so the summary shows how per-request failures are kept apart.
    fake.setOutcomes({ 'demo-errored': 'errored', 'demo-expired': 'expired', 'demo-missing': 'missing' });
    const requests = ['demo-haiku', 'demo-limerick', 'demo-fact', 'demo-errored', 'demo-expired', 'demo-missing'].map((customId) => ({
      customId,
      params: { max_tokens: 64, messages: [{ role: 'user', content: `Write a ${customId.slice(5)} about durable workflows.` }] },
    }));
    const { batchId, workflowId } = await client.submitBatch({
      provider: 'openai',
      model: 'gpt-4o-mini',
      requests,
      handler: 'log-summary',
      metadata: { demo: true },
      pollScheduleMs: [1000, 2000],
    });
    const webLink = stack.temporal.uiUrl ? `${stack.temporal.uiUrl}/namespaces/default/workflows/${workflowId}` : '(headless)';
    log(`demo batch ${batchId} submitted; follow it in Temporal Web: ${webLink}`);

    let lastLine = '';
    const progress = setInterval(async () => {
      const state = await client.batchState(batchId).catch(() => undefined);
      if (!state) return;
      const line = `status ${state.status} (${state.phase}), polls ${state.pollCount}`;
      if (line !== lastLine) log(line);
      lastLine = line;
    }, 500);
    const batch = await client.waitForBatch(batchId, { timeoutMs: 120_000 }).finally(() => clearInterval(progress));

    const { items } = await client.listResults(batchId, { limit: 100 });
    console.log(`\nBatch ${batch.id}: ${batch.status}, ${batch.pollCount} polls, handler dispatched at ${batch.handlerDispatchedAt?.toISOString()}`);
    console.table(items.map((item) => ({
      customId: item.customId,
      status: item.status,
      tokens: item.inputTokens === null ? '' : `${item.inputTokens} in / ${item.outputTokens} out`,
      error: item.errorCode ? `${item.errorCode}${item.retryable ? ' (retryable)' : ''}` : '',
    })));
    const timeline = await client.getTimeline('batch', batchId);
    console.log(`Events in PostgreSQL: ${timeline.map((event) => event.kind).join(' → ')}`);
    console.log(`Temporal Web: ${webLink}\n`);

    if (once) {
      log('--once: shutting down');
      await shutdown();
      return;
    }
    log(`the stack keeps running: explore ${stack.temporal.uiUrl ?? 'Temporal'}; press Ctrl-C to stop`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log('stopping...');
    await shutdown();
  } catch (error) {
    await shutdown();
    throw error;
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
