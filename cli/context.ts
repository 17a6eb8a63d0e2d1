/**
 * Connections of one CLI run, made from the environment only when a command needs them (so --help and usage errors
 * connect to nothing): DATABASE_URL, TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY / TEMPORAL_TLS_* (via
 * @temporalio/envconfig), BATCHKEEPER_TASK_QUEUE. close() releases everything.
 */
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { BatchkeeperAdmin } from '../client/admin';
import { BatchkeeperClient } from '../client/batchkeeper-client';
import { dataConverterFromEnv } from '../codec/data-converter';
import { databaseUrlFromEnv, temporalSettingsFromEnv, type TemporalSettings } from '../config/env';
import { createPool } from '../db/pool';

/** Missing or unusable configuration: exit 2 with the reason. */
export class ConfigError extends Error {
  readonly code = 'config';
}

export interface CliContext {
  readonly taskQueue: string;
  temporal(): Promise<Client>;
  pool(): Pool;
  client(): Promise<BatchkeeperClient>;
  /** `{ temporal: false }` for commands that only read PostgreSQL: Temporal is then not contacted. */
  admin(options?: { temporal?: boolean }): Promise<BatchkeeperAdmin>;
  close(): Promise<void>;
  /** Removes secrets (API key, database password) from text about to be printed. */
  redact(text: string): string;
}

export function createCliContext(env: NodeJS.ProcessEnv = process.env): CliContext {
  let settings: TemporalSettings | undefined;
  let settingsError: unknown;
  try {
    settings = temporalSettingsFromEnv(env);
  } catch (error) {
    settingsError = error;
  }
  const taskQueue = settings?.taskQueue ?? (env.BATCHKEEPER_TASK_QUEUE || 'batchkeeper');
  const secrets = [env.TEMPORAL_API_KEY, settings?.connectionOptions.apiKey, ...databasePassword(env.DATABASE_URL)]
    .filter((secret): secret is string => typeof secret === 'string' && secret.length >= 3);

  let pool: Pool | undefined;
  let connection: Connection | undefined;
  let temporal: Client | undefined;
  let connected: Promise<void> | undefined;

  /** The Temporal client; connects on first use unless `connect` is false (for commands that may never call it). */
  async function temporalClient(connect = true): Promise<Client> {
    if (!settings) throw new ConfigError(`Temporal configuration: ${(settingsError as Error)?.message ?? settingsError}`);
    if (!connection || !temporal) {
      // BATCHKEEPER_CODEC_KEYS: the same payload encryption as the worker (jobs start, updates carry arguments).
      let dataConverter: ReturnType<typeof dataConverterFromEnv>;
      try {
        dataConverter = dataConverterFromEnv(env);
      } catch (error) {
        throw new ConfigError(`payload encryption: ${(error as Error).message}`);
      }
      const { address, tls, metadata, apiKey } = settings.connectionOptions;
      connection = Connection.lazy({ address, tls, metadata, apiKey, connectTimeout: '10s' });
      temporal = new Client({ connection, namespace: settings.namespace, dataConverter });
    }
    if (connect) {
      const open = connection;
      connected ??= open.ensureConnected().catch((error: Error) => {
        throw new Error(`cannot reach Temporal at ${settings!.connectionOptions.address}: ${error.message}`);
      });
      await connected;
    }
    return temporal;
  }

  const context: CliContext = {
    taskQueue,
    pool() {
      if (!pool) {
        let url: string;
        try {
          url = databaseUrlFromEnv(env);
        } catch (error) {
          throw new ConfigError((error as Error).message);
        }
        pool = createPool(url, { max: 4, idleTimeoutMillis: 1000, connectionTimeoutMillis: 10_000 });
      }
      return pool;
    },
    temporal: () => temporalClient(),
    async client() {
      return new BatchkeeperClient({ client: await temporalClient(), pool: context.pool(), taskQueue });
    },
    async admin(options = {}) {
      return new BatchkeeperAdmin(await temporalClient(options.temporal !== false), context.pool());
    },
    async close() {
      const open = connection;
      connection = undefined;
      await Promise.allSettled([open?.close(), pool?.end()]);
      pool = undefined;
    },
    redact(text: string) {
      return secrets.reduce((out, secret) => out.split(secret).join('***'), text);
    },
  };
  return context;
}

/** The password of a postgres:// URL, as written and decoded. */
function databasePassword(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const raw = new URL(url).password;
    return raw ? [raw, decodeURIComponent(raw)] : [];
  } catch {
    return [];
  }
}
