/**
 * Completion-to-handler latency with OpenAI webhooks against polling alone:
 *
 *   npx tsx tools/bench/webhook-latency.ts [--batches 8] [--interval-ms 10000] [--processing-ms 10250-19750]
 *
 * Starts a dev server and PostgreSQL (tools/dev/stack), the fake provider, a worker and the webhook endpoint
 * (client/webhook-server.ts) in this process. Runs `--batches` OpenAI batches of 3 requests twice, each batch ending
 * at a random time in the processing range: once with the fake sending signed webhooks (poll interval ten times the
 * given one, so only the webhook can wake them in time), once without webhooks on a poll schedule of
 * `--interval-ms`. For each batch: the time from the fake's end of the batch (its timeline's terminal time) to the
 * start of the completion handler. The processing range defaults to one interval after the first poll, so with
 * polling a batch waits uniformly between 0 and the interval (expected mean: half of it). Prints p50 / mean / max per mode and writes tools/bench/results/webhook-latency.json.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import { startWebhookServer } from '../../client/webhook-server';
import { migrateDatabase } from '../../db/migrate';
import { createPool } from '../../db/pool';
import { createProviders } from '../../providers/registry';
import { startFakeProvider } from '../../testing/fake-provider/server';
import { newWebhookSecret } from '../../testing/fake-provider/webhooks';
import { createBatchkeeperWorker } from '../../worker/create-worker';
import { createDatabase, databaseUrlWithName } from '../dev/postgres';
import { DATA_DIR, PROJECT_ROOT, startLocalStack } from '../dev/stack';

function arg(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1]! : fallback;
}

const BATCHES = Number(arg('batches', '8'));
const INTERVAL_MS = Number(arg('interval-ms', '10000'));
/** Batches end uniformly over one poll interval (after the first poll), so polling's wait is uniform in [0, interval]. */
const [MIN_PROCESSING_MS, MAX_PROCESSING_MS] = arg('processing-ms', `${INTERVAL_MS + 250}-${2 * INTERVAL_MS - 250}`).split('-').map(Number) as [number, number];

const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: sorted.length, p50: Math.round(at(0.5)), mean: Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length), max: Math.round(sorted[sorted.length - 1]!), min: Math.round(sorted[0]!) };
};

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const name = `bench/webhook-latency-${process.pid}`;
  const stack = await startLocalStack({ name, uiPort: false, onProgress: () => undefined });
  const handlerStarted = new Map<string, number>();
  try {
    const database = `bk_webhook_latency_${process.pid}`;
    await createDatabase(stack.postgres.adminUrl, database);
    const databaseUrl = databaseUrlWithName(stack.postgres.adminUrl, database);
    await migrateDatabase(databaseUrl);
    const pool = createPool(databaseUrl);
    const connection = await Connection.connect({ address: stack.temporal.address });
    const temporal = new Client({ connection });
    const nativeConnection = await NativeConnection.connect({ address: stack.temporal.address });
    const fake = await startFakeProvider({ processingMs: MAX_PROCESSING_MS });
    const taskQueue = `webhook-latency-${process.pid}`;
    const worker = await createBatchkeeperWorker({
      connection: nativeConnection, taskQueue, pool,
      providers: createProviders({ openai: { apiKey: 'sk-bench', baseURL: fake.openaiBaseUrl } }),
      handlers: { timed: { async onComplete({ batch }) { if (!handlerStarted.has(batch.id)) handlerStarted.set(batch.id, Date.now()); } } },
    });
    const running = worker.run();
    const secret = newWebhookSecret();
    const server = await startWebhookServer({ pool, temporal, secret, log: () => undefined });
    const client = new BatchkeeperClient({ client: temporal, pool, taskQueue });

    async function round(mode: 'webhooks' | 'polling'): Promise<number[]> {
      fake.configureWebhooks(mode === 'webhooks' ? { url: server.webhookUrl, secret } : null);
      const schedule = [mode === 'webhooks' ? INTERVAL_MS * 10 : INTERVAL_MS];
      const latencies: number[] = [];
      const batchIds: string[] = [];
      // Rules are matched by custom id when the provider batch is created: one rule per batch, all set up front.
      fake.configure({
        batchRules: Array.from({ length: BATCHES }, (_, index) => ({
          match: { customId: `${mode}-${index}-0` }, processingMs: Math.round(MIN_PROCESSING_MS + Math.random() * (MAX_PROCESSING_MS - MIN_PROCESSING_MS)), times: 1,
        })),
      });
      for (let index = 0; index < BATCHES; index += 1) {
        const requests = Array.from({ length: 3 }, (_, n) => ({ customId: `${mode}-${index}-${n}`, params: { max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } }));
        const { batchId } = await client.submitBatch({ provider: 'openai', model: 'model-x', requests, handler: 'timed', pollScheduleMs: schedule });
        batchIds.push(batchId);
      }
      for (const batchId of batchIds) {
        const batch = await client.waitForBatch(batchId, { timeoutMs: INTERVAL_MS * 20 + 120_000 });
        const described = fake.batch(batch.providerBatchId!);
        const endedAt = Date.parse(described!.timeline.createdAt) + described!.timeline.processingMs;
        latencies.push(handlerStarted.get(batchId)! - endedAt);
      }
      return latencies;
    }

    const webhooks = await round('webhooks');
    const polling = await round('polling');
    const result = {
      measuredAt: new Date().toISOString(), batches: BATCHES, pollIntervalMs: INTERVAL_MS, processingMs: [MIN_PROCESSING_MS, MAX_PROCESSING_MS],
      webhooks: summary(webhooks), polling: summary(polling), webhookDeliveries: fake.webhookDeliveries().length,
    };
    console.log(`completion → handler, ${BATCHES} batches each (ms):`);
    console.log(`  webhooks (poll interval ${INTERVAL_MS * 10} ms): p50 ${result.webhooks.p50}, mean ${result.webhooks.mean}, min ${result.webhooks.min}, max ${result.webhooks.max}`);
    console.log(`  polling every ${INTERVAL_MS} ms:            p50 ${result.polling.p50}, mean ${result.polling.mean}, min ${result.polling.min}, max ${result.polling.max}`);
    const out = path.join(PROJECT_ROOT, 'tools', 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'webhook-latency.json'), `${JSON.stringify(result, null, 2)}\n`);

    await server.close();
    worker.shutdown();
    await running;
    await fake.close();
    await nativeConnection.close();
    await connection.close();
    await pool.end();
  } finally {
    await stack.stop();
    rmSync(path.join(DATA_DIR, name), { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(error);
  process.exit(1);
});
