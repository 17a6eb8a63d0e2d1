/**
 * What the activities report as metrics (worker/metrics.ts records them on the Temporal Runtime's meter, exported with
 * the SDK's own metrics on the worker's Prometheus endpoint). Only names, statuses and numbers: never ids or bodies.
 */
export interface StepMetrics {
  /** A scheduled poll ran this long after the time the previous poll planned for it. */
  pollLateness(provider: string, lateMs: number): void;
  /** One call of a provider adapter; `outcome` is `ok`, the HTTP status of a failure, or its error code. */
  providerCall(provider: string, operation: string, outcome: string): void;
  /** Request outcomes stored from a provider's results (or for requests without a line). */
  resultsIngested(provider: string, status: string, count: number): void;
  /** How long a completion handler ran, and whether it succeeded. */
  handlerDuration(handler: string, outcome: 'ok' | 'failed', ms: number): void;
}

export const NO_METRICS: StepMetrics = {
  pollLateness: () => undefined,
  providerCall: () => undefined,
  resultsIngested: () => undefined,
  handlerDuration: () => undefined,
};
