/**
 * batchkeeper's own metrics on the Temporal Runtime's meter: exported with the SDK's metrics (temporal_*) on the
 * worker's Prometheus endpoint (BATCHKEEPER_METRICS_ADDRESS). The names below are what Prometheus shows.
 */
import type { MetricMeter } from '@temporalio/common';
import type { StepMetrics } from '../activities/step-metrics';

export const METRIC_NAMES = {
  pollLateness: 'batchkeeper_poll_lateness_ms',
  providerCalls: 'batchkeeper_provider_calls',
  resultsIngested: 'batchkeeper_results_ingested',
  handlerDuration: 'batchkeeper_handler_duration_ms',
  batches: 'batchkeeper_batches',
  openDeadLetters: 'batchkeeper_open_dead_letters',
} as const;

/** Bucket bounds (ms) of the histograms: a poll may be minutes late, a handler may run for minutes. */
export const METRIC_BUCKETS: Record<string, number[]> = {
  [METRIC_NAMES.pollLateness]: [100, 500, 1_000, 5_000, 15_000, 60_000, 300_000, 900_000, 3_600_000],
  [METRIC_NAMES.handlerDuration]: [10, 50, 100, 500, 1_000, 5_000, 30_000, 120_000, 600_000],
};

export function meteredSteps(meter: MetricMeter): StepMetrics {
  const lateness = meter.createHistogram(METRIC_NAMES.pollLateness, 'int', 'ms', 'how late a scheduled poll ran, against the time planned for it');
  const calls = meter.createCounter(METRIC_NAMES.providerCalls, '1', 'provider adapter calls by provider, operation and outcome (ok, HTTP status or error code)');
  const ingested = meter.createCounter(METRIC_NAMES.resultsIngested, '1', 'request outcomes stored from provider results, by provider and status');
  const handler = meter.createHistogram(METRIC_NAMES.handlerDuration, 'int', 'ms', 'completion handler run time by handler and outcome');
  return {
    pollLateness: (provider, lateMs) => lateness.record(Math.max(0, Math.round(lateMs)), { provider }),
    providerCall: (provider, operation, outcome) => calls.add(1, { provider, operation, outcome }),
    resultsIngested: (provider, status, count) => count > 0 && ingested.add(count, { provider, status }),
    handlerDuration: (name, outcome, ms) => handler.record(Math.max(0, Math.round(ms)), { handler: name, outcome }),
  };
}
