/**
 * The Temporal Runtime of a worker process, installed once before any connection: its logger (JSON lines or the
 * SDK's text), the SDK core's own log lines forwarded to it, and the Prometheus endpoint that serves the SDK's
 * metrics and batchkeeper's (worker/metrics.ts).
 */
import { makeTelemetryFilterString, Runtime, type LogLevel } from '@temporalio/worker';
import { workerLogger, type LogFormat } from './logging';
import { METRIC_BUCKETS } from './metrics';

export interface RuntimeSettings {
  logFormat: LogFormat;
  logLevel: LogLevel;
  /** host:port of the Prometheus endpoint; none when undefined. */
  metricsAddress?: string;
}

const CORE_LEVEL: Record<LogLevel, LogLevel> = { TRACE: 'TRACE', DEBUG: 'DEBUG', INFO: 'WARN', WARN: 'WARN', ERROR: 'ERROR' };

export function installWorkerRuntime(settings: RuntimeSettings): Runtime {
  return Runtime.install({
    logger: workerLogger(settings.logFormat, settings.logLevel),
    telemetryOptions: {
      // Core's INFO lines are per-poll chatter; they are forwarded only when debugging.
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: CORE_LEVEL[settings.logLevel], other: 'ERROR' }) },
      ...(settings.metricsAddress ? { metrics: { prometheus: { bindAddress: settings.metricsAddress, histogramBucketOverrides: METRIC_BUCKETS } } } : {}),
    },
  });
}
