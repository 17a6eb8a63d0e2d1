/**
 * Gauges of what PostgreSQL holds, read every `intervalMs`: batches by provider and status, open dead letters by step.
 * Every worker process reports the same totals (take `max` across instances, not `sum`). Every known status and step
 * is set each time, zero included, so a count that drops to nothing shows as 0 rather than its last value.
 */
import type { MetricMeter } from '@temporalio/common';
import type { Pool } from 'pg';
import { BATCH_STATUSES } from '../domain/statuses';
import type { StepName } from '../domain/types';
import { countBatchesByProviderAndStatus } from '../db/batches-store';
import { countOpenDeadLettersByStep } from '../db/dead-letters-store';
import { METRIC_NAMES } from './metrics';

const STEPS: StepName[] = ['submit', 'poll', 'cancel', 'fetch_results', 'dispatch_handler', 'delete_files', 'execute', 'notify_failure'];

export function startStateGauges(pool: Pool, meter: MetricMeter, options: { providers: string[]; intervalMs?: number }): { stop(): void } {
  const batches = meter.createGauge(METRIC_NAMES.batches, 'int', '1', 'batches in PostgreSQL by provider and status');
  const deadLetters = meter.createGauge(METRIC_NAMES.openDeadLetters, 'int', '1', 'open dead letters in PostgreSQL by step');
  const seenProviders = new Set(options.providers);
  const read = async () => {
    const counts = await countBatchesByProviderAndStatus(pool);
    for (const { provider } of counts) seenProviders.add(provider);
    for (const provider of seenProviders) {
      for (const status of BATCH_STATUSES) {
        batches.set(counts.find((row) => row.provider === provider && row.status === status)?.count ?? 0, { provider, status });
      }
    }
    const letters = await countOpenDeadLettersByStep(pool);
    for (const step of STEPS) deadLetters.set(letters[step] ?? 0, { step });
  };
  // A failed read (PostgreSQL restarting) leaves the last values; the next one catches up.
  const tick = () => void read().catch(() => undefined);
  tick();
  const timer = setInterval(tick, options.intervalMs ?? 15_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
