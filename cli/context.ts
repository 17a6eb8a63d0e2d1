/**
 * Connections of one CLI run, made from the environment only when a command needs them (so --help and usage errors
 * connect to nothing): the database, Temporal, codec and provider-name settings of config/variables.ts. close()
 * releases everything.
 */
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { BatchkeeperAdmin } from '../client/admin';
import { BatchkeeperClient } from '../client/batchkeeper-client';
import { UnavailableError } from '../client/errors';
import { encryptingDataConverter } from '../codec/data-converter';
import { loadConfig, secretValues, type TemporalConfig, type WebhooksConfig } from '../config/load';
import { createPool } from '../db/pool';

export { ConfigError } from '../config/load';

export interface CliContext {
  readonly taskQueue: string;
  /** stdout, for output written as it is produced. */
  readonly stream: NodeJS.WritableStream;
  /** A progress line on stderr (stdout stays the command's output, JSON with --json). */
  progress(line: string): void;
  /** BATCHKEEPER_OPERATOR: recorded with dead-letter decisions. */
  readonly operator?: string;
  temporal(): Promise<Client>;
  pool(): Pool;
  client(): Promise<BatchkeeperClient>;
  /** `{ temporal: false }` for commands that only read PostgreSQL: Temporal is then not contacted. */
  admin(options?: { temporal?: boolean }): Promise<BatchkeeperAdmin>;
  /** The webhook endpoint's settings (BATCHKEEPER_OPENAI_WEBHOOK_SECRET, _WEBHOOK_HOST, _PORT, _TOLERANCE_S). */
  webhooks(): WebhooksConfig;
  close(): Promise<void>;
  /** Removes secrets (API key, database password) from text about to be printed. */
  redact(text: string): string;
  /** The error as the operator should see it: a failed connection to PostgreSQL says so, and where. */
  explain(error: unknown): unknown;
}

export function createCliContext(
  env: NodeJS.ProcessEnv = process.env,
  io: { stream: NodeJS.WritableStream; progress(line: string): void } = { stream: process.stdout, progress: (line) => process.stderr.write(`${line}\n`) },
): CliContext {
  let settings: TemporalConfig | undefined;
  let settingsError: unknown;
  try {
    settings = loadConfig(env, ['temporal']).temporal;
  } catch (error) {
    settingsError = error;
  }
  const taskQueue = settings?.taskQueue ?? 'batchkeeper';
  const secrets = [settings?.connectionOptions.apiKey, ...secretValues(env).flatMap((value) => [value, ...urlPassword(value)])]
    .filter((secret): secret is string => typeof secret === 'string' && secret.length >= 3);
  const operator = cliSettings(env)?.operator;

  let pool: Pool | undefined;
  let connection: Connection | undefined;
  let temporal: Client | undefined;
  let connected: Promise<void> | undefined;

  /** The Temporal client; connects on first use unless `connect` is false (for commands that may never call it). */
  async function temporalClient(connect = true): Promise<Client> {
    if (!settings) throw settingsError;
    if (!connection || !temporal) {
      // BATCHKEEPER_CODEC_KEYS: the same payload encryption as the worker (jobs start, updates carry arguments).
      const { keys } = loadConfig(env, ['codec']).codec;
      const dataConverter = keys ? encryptingDataConverter(keys) : undefined;
      const { address, tls, metadata, apiKey } = settings.connectionOptions;
      connection = Connection.lazy({ address, tls, metadata, apiKey, connectTimeout: '10s' });
      temporal = new Client({ connection, namespace: settings.namespace, dataConverter });
    }
    if (connect) {
      const open = connection;
      connected ??= open.ensureConnected().catch((error: Error) => {
        throw new UnavailableError('Temporal', settings!.connectionOptions.address ?? 'localhost:7233', error.message.split('\n')[0]!);
      });
      await connected;
    }
    return temporal;
  }

  const context: CliContext = {
    taskQueue,
    operator,
    stream: io.stream,
    progress: io.progress,
    pool() {
      if (!pool) {
        const { database } = loadConfig(env, ['database']);
        pool = createPool(database.url, {
          schema: database.schema, preparedStatements: database.preparedStatements, max: 4, idleTimeoutMillis: 1000, connectionTimeoutMillis: 10_000,
        });
      }
      return pool;
    },
    temporal: () => temporalClient(),
    async client() {
      const { providers } = loadConfig(env, ['providers']);
      return new BatchkeeperClient({ client: await temporalClient(), pool: context.pool(), taskQueue, providerLimits: providers.limits });
    },
    async admin(options = {}) {
      return new BatchkeeperAdmin(await temporalClient(options.temporal !== false), context.pool());
    },
    webhooks: () => loadConfig(env, ['webhooks']).webhooks,
    async close() {
      const open = connection;
      connection = undefined;
      await Promise.allSettled([open?.close(), pool?.end()]);
      pool = undefined;
    },
    redact(text: string) {
      return secrets.reduce((out, secret) => out.split(secret).join('***'), text);
    },
    explain(error: unknown) {
      const reason = connectionFailure(error);
      return pool && reason ? new UnavailableError('PostgreSQL', databaseAddress(env), reason) : error;
    },
  };
  return context;
}

/** The CLI settings, or none when they are wrong (a wrong BATCHKEEPER_OPERATOR or _DEBUG is not worth refusing a command for). */
export function cliSettings(env: NodeJS.ProcessEnv): { operator?: string; debug: boolean } | undefined {
  try {
    return loadConfig(env, ['cli']).cli;
  } catch {
    return undefined;
  }
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN', '57P03']);

/** Why a database connection failed (pg's own errors, node's socket errors), or undefined for any other error. */
function connectionFailure(error: unknown): string | undefined {
  const errors = error instanceof AggregateError ? [error, ...error.errors] : [error];
  for (const candidate of errors) {
    const { code, message } = (candidate ?? {}) as { code?: string; message?: string };
    if (code && CONNECTION_CODES.has(code)) return code === '57P03' ? 'the database is starting up' : code;
    if (message && /^(Connection terminated|timeout expired|connection timeout)/i.test(message)) return message.split('\n')[0];
  }
  return undefined;
}

/** host:port of DATABASE_URL, for saying where the database was not reached (never its credentials). */
function databaseAddress(env: NodeJS.ProcessEnv): string {
  try {
    const url = new URL(loadConfig(env, ['database']).database.url);
    return `${url.hostname || 'localhost'}:${url.port || '5432'}`;
  } catch {
    return 'DATABASE_URL';
  }
}

/** The password of a URL (postgres://user:password@...), as written and decoded. */
function urlPassword(url: string): string[] {
  try {
    const raw = new URL(url).password;
    return raw ? [raw, decodeURIComponent(raw)] : [];
  } catch {
    return [];
  }
}
