/** Settings read from the environment, in one place. Nothing here is logged: API keys stay out of logs. */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

export const DEFAULT_TASK_QUEUE = 'batchkeeper';

export interface TemporalSettings {
  connectionOptions: NativeConnectionOptions;
  namespace: string;
  taskQueue: string;
}

/**
 * Temporal connection from @temporalio/envconfig: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 * TEMPORAL_TLS_* and TEMPORAL_PROFILE / a config TOML, so TLS and API keys work without code changes.
 */
export function temporalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const config = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  return {
    // envconfig sets `address: undefined` when nothing names one, which a plain spread would copy over the default.
    connectionOptions: { ...config.connectionOptions, address: config.connectionOptions.address ?? 'localhost:7233' },
    namespace: config.namespace ?? 'default',
    taskQueue: env.BATCHKEEPER_TASK_QUEUE || DEFAULT_TASK_QUEUE,
  };
}

export function databaseUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const url = env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: point it at the batchkeeper PostgreSQL database');
  return url;
}
