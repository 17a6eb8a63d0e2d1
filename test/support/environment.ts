/**
 * Per-test-file environment on the real stack that scripts/run-tests.ts started: a fresh PostgreSQL database cloned
 * from the migrated template, a Temporal client, a fake provider driven through the real SDK adapters, and a worker
 * on a task queue of its own.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, type Worker, type WorkflowBundle } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../../activities/handlers';
import type { AdmissionConfig } from '../../domain/admission';
import type { PriceTable } from '../../domain/prices';
import type { RetryConfig } from '../../domain/retry-policy';
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import { createPool } from '../../db/pool';
import { Client as PgClient } from 'pg';
import { databaseUrlWithName, dropDatabase, quoteIdent } from '../../tools/dev/postgres';
import { startFakeProvider, type FakeProvider } from '../../testing/fake-provider/server';
import { createProviders, type ProvidersConfig } from '../../providers/registry';
import { bundleWorkflows, createBatchkeeperWorker } from '../../worker/create-worker';

export const TEST_API_KEY = 'sk-test-batchkeeper-secret-key';

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run tests through \`npm test\`, which starts Temporal and PostgreSQL`);
  return value;
}

let runtimeInstalled = false;
let bundlePromise: Promise<WorkflowBundle> | undefined;

/** The workflow bundle is built once per test process. */
export function sharedWorkflowBundle(): Promise<WorkflowBundle> {
  bundlePromise ??= bundleWorkflows();
  return bundlePromise;
}

/** CREATE DATABASE ... TEMPLATE, retried while another clone briefly holds the template. */
async function cloneTemplate(adminUrl: string, template: string, name: string): Promise<void> {
  const admin = new PgClient({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await admin.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(template)}`);
        return;
      } catch (error) {
        if (attempt >= 20 || !/being accessed by other users/.test(String(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } finally {
    await admin.end();
  }
}

export interface TestEnvironment {
  pool: Pool;
  databaseUrl: string;
  temporal: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  taskQueue: string;
  fake: FakeProvider;
  client: BatchkeeperClient;
  worker?: Worker;
  /** Starts a worker with the environment's settings (done by default). */
  startWorker(): Promise<Worker>;
  stopWorker(): Promise<void>;
  teardown(): Promise<void>;
}

export interface TestEnvironmentOptions {
  handlers?: BatchHandlerRegistry;
  jobExecutors?: JobExecutorRegistry;
  retry?: RetryConfig;
  prices?: PriceTable;
  /** Admission budgets of the worker (BATCHKEEPER_ADMISSION). */
  admission?: AdmissionConfig;
  /** BATCHKEEPER_RETENTION_DAYS of the worker's sweep. */
  retentionDays?: number;
  startWorker?: boolean;
  fakeProcessingMs?: number;
  /** More providers (Gemini, xAI, OpenAI-compatible...) beside openai and anthropic, pointed at this fake. */
  extraProviders?: (fake: FakeProvider) => ProvidersConfig;
  /** Temporal namespace of the client and the worker (it must exist). Default 'default'. */
  namespace?: string;
}

export async function createTestEnvironment(options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const adminUrl = requiredEnv('BATCHKEEPER_TEST_PG_ADMIN_URL');
  const template = requiredEnv('BATCHKEEPER_TEST_TEMPLATE_DB');
  const address = requiredEnv('BATCHKEEPER_TEST_TEMPORAL_ADDRESS');
  const databaseName = `bk_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  await cloneTemplate(adminUrl, template, databaseName);
  const databaseUrl = databaseUrlWithName(adminUrl, databaseName);
  const pool = createPool(databaseUrl);
  const connection = await Connection.connect({ address });
  const temporal = new Client({ connection, namespace: options.namespace });
  const nativeConnection = await NativeConnection.connect({ address });
  const fake = await startFakeProvider({ processingMs: options.fakeProcessingMs ?? 300 });
  const taskQueue = `test-${randomUUID()}`;
  const providers = createProviders({
    openai: { apiKey: TEST_API_KEY, baseURL: fake.openaiBaseUrl, maxRetries: 0 },
    anthropic: { apiKey: TEST_API_KEY, baseURL: fake.anthropicBaseUrl, maxRetries: 0 },
    ...options.extraProviders?.(fake),
  });
  const client = new BatchkeeperClient({ client: temporal, pool, taskQueue });

  let running: Promise<void> | undefined;
  const env: TestEnvironment = {
    pool, databaseUrl, temporal, connection, nativeConnection, taskQueue, fake, client,
    async startWorker() {
      const worker = await createBatchkeeperWorker({
        connection: nativeConnection,
        namespace: options.namespace,
        taskQueue,
        pool,
        providers,
        handlers: options.handlers ?? {},
        jobExecutors: options.jobExecutors,
        retry: options.retry,
        prices: options.prices,
        admission: options.admission,
        retentionDays: options.retentionDays,
        workflowBundle: await sharedWorkflowBundle(),
      });
      env.worker = worker;
      running = worker.run();
      return worker;
    },
    async stopWorker() {
      if (!env.worker) return;
      env.worker.shutdown();
      await running;
      env.worker = undefined;
    },
    async teardown() {
      await env.stopWorker().catch(() => undefined);
      await fake.close();
      await nativeConnection.close();
      await connection.close();
      await pool.end();
      await dropDatabase(adminUrl, databaseName).catch(() => undefined);
    },
  };
  if (options.startWorker !== false) await env.startWorker();
  return env;
}

/** A short schedule so tests finish in seconds: the same code path as production, compressed. */
export const FAST_SCHEDULE_MS = [200, 300, 500];

/** Makes `count` chat requests with ids prefix-0..n. */
export function chatRequests(count: number, prefix = 'req') {
  return Array.from({ length: count }, (_, index) => ({
    customId: `${prefix}-${index}`,
    params: { max_tokens: 32, messages: [{ role: 'user', content: `Say hello number ${index}` }] },
  }));
}
