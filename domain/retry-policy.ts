import type { BatchStep, JobStep, RetrySettings } from './types';

/**
 * Retry settings per step: global defaults, then per-step defaults, then per-handler or per-job-type overrides, then
 * the per-batch or per-job override the caller stored. Resolved once in an activity so the workflow records them.
 */
export interface RetryConfig {
  defaults?: Partial<RetrySettings>;
  steps?: Partial<Record<BatchStep | JobStep, Partial<RetrySettings>>>;
  /** Overrides for every step of batches with this completion handler. */
  handlers?: Record<string, Partial<RetrySettings>>;
  /** Overrides for jobs of this type. */
  jobTypes?: Record<string, Partial<RetrySettings>>;
}

export const DEFAULT_RETRY: RetrySettings = {
  maximumAttempts: 10,
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 5 * 60_000,
};

/** A poll that fails only delays the next one, so polls tolerate a longer provider outage (about 1.5 h) first. */
const STEP_DEFAULTS: Partial<Record<BatchStep | JobStep, Partial<RetrySettings>>> = {
  poll: { maximumAttempts: 25 },
};

export function resolveRetry(
  config: RetryConfig,
  step: BatchStep | JobStep,
  scope: { handlerName?: string | null; jobType?: string },
  override?: Partial<RetrySettings> | null,
): RetrySettings {
  return {
    ...DEFAULT_RETRY,
    ...STEP_DEFAULTS[step],
    ...config.defaults,
    ...config.steps?.[step],
    ...(scope.handlerName ? config.handlers?.[scope.handlerName] : undefined),
    ...(scope.jobType ? config.jobTypes?.[scope.jobType] : undefined),
    ...override,
  };
}

/** Rejects settings Temporal would refuse, naming the field. */
export function validateRetrySettings(settings: Partial<RetrySettings>, where: string): void {
  const check = (field: keyof RetrySettings, ok: (value: number) => boolean, rule: string) => {
    const value = settings[field];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
      throw new TypeError(`${where}.${field} must be ${rule} (got ${JSON.stringify(value)})`);
    }
  };
  check('maximumAttempts', (v) => Number.isInteger(v) && v >= 1 && v <= 1000, 'an integer from 1 to 1000');
  check('initialIntervalMs', (v) => v >= 1 && v <= 86_400_000, 'between 1 ms and 24 h');
  check('backoffCoefficient', (v) => v >= 1 && v <= 100, 'between 1 and 100');
  check('maximumIntervalMs', (v) => v >= 1 && v <= 86_400_000, 'between 1 ms and 24 h');
  const unknown = Object.keys(settings).filter(
    (key) => !['maximumAttempts', 'initialIntervalMs', 'backoffCoefficient', 'maximumIntervalMs'].includes(key),
  );
  if (unknown.length) throw new TypeError(`${where} has unknown field(s): ${unknown.join(', ')}`);
}
