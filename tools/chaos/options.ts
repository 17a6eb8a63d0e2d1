/** What a chaos run is told (options, fault rates, presets) and what it reports (tools/chaos/run.ts runs it). */
import type { ChaosStack } from './disruptions';
export interface FaultRates {
  /** Per provider call: HTTP 429 with retry-after-ms. */
  http429: number;
  /** Per provider call: HTTP 500/502/503/529 with retry-after-ms. */
  http5xx: number;
  /** Per provider call: an HTML 502 page (a proxy's). */
  html: number;
  /** Per provider call: the connection is reset before the request is processed. */
  reset: number;
  /** Per read call (status, list, results): no answer before the client's timeout. */
  timeout: number;
  /** Per OpenAI batch create: processed, then the response is lost (recovered through metadata). */
  dropCreate: number;
  /** Per results download: the connection dies part-way. */
  truncate: number;
  /** Per request: a malformed result line. */
  malformedLine: number;
  /** Per request: no result line at all. */
  missingLine: number;
}

export interface ChaosOptions {
  /** Folder under .data/ (wiped at start). */
  name: string;
  batches: number;
  jobs: number;
  /** Chaos phase: submissions are spread over it and disruptions happen during it. */
  durationMs: number;
  /** Longest wait after the chaos phase for everything to settle. */
  drainTimeoutMs: number;
  /**
   * Keep draining while the only unsettled work is an activity that was running on a SIGKILLed worker: Temporal
   * retries it only after its start-to-close or heartbeat timeout (minutes). Off for --quick, which ends the drain.
   */
  waitOutKilledActivities: boolean;
  workers: number;
  /** At most this many batches and jobs unsettled at once (modest: the machine is shared). */
  maxInFlight: number;
  /** Mean pause between worker SIGKILLs (exponential, clamped to [mean/4, 2*mean]). */
  killEveryMs: number;
  /** Pause before a killed worker is started again. */
  workerRestartDelayMs: [number, number];
  serverRestarts: number;
  postgresRestarts: number;
  postgresDownMs: number;
  faults: FaultRates;
  /** Transient failures of the completion handler, per invocation. */
  handlerFailureRate: number;
  /** Share of batches and of jobs that fail for good (dead-lettered; then requeued, discarded or left parked). */
  poisonRate: number;
  requestsPerBatch: [number, number];
  processingMs: [number, number];
  pollScheduleMs: number[];
  providerTimeoutMs: number;
  seed: number;
  /** Temporal Web on (port + 1000). */
  ui: boolean;
  /**
   * Servers someone else started (a cluster), with their own disruptions; the run neither stops them nor restarts
   * anything else. Default: its own dev server and PostgreSQL, restarted serverRestarts and postgresRestarts times.
   */
  stack?: ChaosStack;
  resultsFile?: string;
  log?: (message: string) => void;
}

export const QUICK_PRESET: ChaosOptions = {
  name: 'chaos-quick',
  batches: 40,
  jobs: 20,
  durationMs: 70_000,
  drainTimeoutMs: 45_000,
  waitOutKilledActivities: false,
  workers: 2,
  maxInFlight: 20,
  killEveryMs: 12_000,
  workerRestartDelayMs: [500, 4000],
  serverRestarts: 2,
  postgresRestarts: 1,
  postgresDownMs: 3000,
  faults: {
    http429: 0.04, http5xx: 0.04, html: 0.01, reset: 0.03, timeout: 0.02, dropCreate: 0.15, truncate: 0.15,
    malformedLine: 0.05, missingLine: 0.05,
  },
  handlerFailureRate: 0.1,
  poisonRate: 0.08,
  requestsPerBatch: [1, 6],
  processingMs: [600, 4000],
  pollScheduleMs: [400, 800, 1500],
  providerTimeoutMs: 2000,
  seed: 1,
  ui: false,
};

export const LONG_PRESET: ChaosOptions = {
  ...QUICK_PRESET,
  name: 'chaos',
  batches: 500,
  jobs: 150,
  durationMs: 10 * 60_000,
  drainTimeoutMs: 20 * 60_000,
  waitOutKilledActivities: true,
  maxInFlight: 40,
  killEveryMs: 25_000,
  serverRestarts: 3,
  postgresRestarts: 1,
  postgresDownMs: 5000,
  requestsPerBatch: [1, 8],
  processingMs: [1000, 15_000],
  pollScheduleMs: [500, 1000, 2000, 4000],
  poisonRate: 0.05,
  ui: true,
};

export interface ChaosResult {
  batches: number;
  jobs: number;
  workerKills: number;
  serverRestarts: number;
  postgresRestarts: number;
  faultsInjected: number;
  lost: number;
  duplicateProviderBatches: number;
  duplicateHandlerEffects: number;
  stalled: number;
  deadLetterMismatches: number;
  durationSeconds: number;
  passed: boolean;
  failures: string[];
  details: Record<string, unknown>;
}

export const TASK_QUEUE = 'chaos';
