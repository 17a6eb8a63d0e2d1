/** The bench's presets, options and their command-line parsing (tools/bench/main.ts runs them). */
import path from 'node:path';
import { parseArgs } from 'node:util';

export const BENCH_DIR = __dirname;
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const API_KEY = 'sk-bench-not-a-real-key';
/**
 * Dev-server settings for the bench. The dev server runs a single history shard, so two per-shard defaults that a
 * production cluster spreads over hundreds of shards would dominate a compressed run: every new timer is floored to
 * now + 1 s (timerProcessorMaxTimeShift), which turns sub-second schedules into 1 s ones, and the timer and transfer
 * queues are read at most 20 times a second, which adds ~40 ms to every task dispatch. Both ours and the floor run on
 * this server.
 */
export const TEMPORAL_DYNAMIC_CONFIG = [
  'history.timerProcessorMaxTimeShift="10ms"',
  'history.timerProcessorMaxPollRPS=1000',
  'history.transferProcessorMaxPollRPS=1000',
];


// ---------------------------------------------------------------------------------------------------------------
// Presets

export type MeasurementName = 'overhead' | 'history' | 'pollnow' | 'ingest' | 'submit' | 'replay' | 'timeliness' | 'peers' | 'faults';
/** `peers` and `faults` (tools/bench/peers) compare with ours' figures of overhead and timeliness from the same run. */
export const MEASUREMENTS: MeasurementName[] = ['overhead', 'history', 'pollnow', 'ingest', 'submit', 'replay', 'timeliness', 'peers', 'faults'];

export interface Preset {
  name: 'default' | 'quick';
  /** Folder under .data/ (PostgreSQL cluster kept between runs; a fresh database each run). */
  dataName: string;
  ui: boolean;
  overhead: {
    batches: number;
    /** Ours then floor, this many times; the best throughput of each is kept. */
    rounds: number;
    requestsPerBatch: number;
    pollScheduleMs: number[];
    /** Fake provider processing time per batch. */
    processingMs: number;
    warmupBatches: number;
    /** Histories fetched for events per poll and history size. */
    historySample: number;
    /** Before each round, wait for the timeout timers of the one before to fire (bench/overhead.ts); off in --quick. */
    awaitTimerTails: boolean;
    /** Run the no-op floor too (overheadRatio, information only since issue 17); off in --quick. */
    floor: boolean;
  };
  history: { polls: number; pollIntervalMs: number };
  pollNow: { trials: number; requests: number };
  ingest: { lines: number; lineBytes: number };
  /** One batch of this many requests of about requestBytes each, from submitBatch to provider batches created. */
  largeSubmit: { requests: number; requestBytes: number };
  /** Replay time of a batch's history cut after each of these polls (the cost of a workflow-cache miss). */
  replayCost: { atPolls: number[] };
  timeliness: { inFlight: number; pollIntervalMs: number; windowMs: number; sampleWorkflows: number };
  /** The fault run of ours and the peers (tools/bench/peers/faults.ts): its size and timeline, from its start. */
  faults: FaultPlan;
}

export interface FaultPlan {
  batchesPerSystem: number;
  /** The run ends once every handler ran, or this long after the faults (sooner when only lost batches are left). */
  settleMs: number;
  /** How long each provider batch takes. */
  processingMs: number;
  submitOverMs: number;
  /** Provider 429/5xx until then; worker kills until 5 s before. */
  faultsUntilMs: number;
  killFromMs: number;
  killEveryMs: number;
  restartDelayMs: [number, number];
  redisRestartAtMs: number;
  postgresRestartAtMs: number;
  postgresDownMs: number;
  drainAtMs: number;
  /** Longer than the chain's resume grace at the fault scale (10 s). */
  drainForMs: number;
}

export const DEFAULT_PRESET: Preset = {
  name: 'default',
  dataName: 'bench',
  ui: true,
  overhead: {
    batches: 1000, rounds: 2, requestsPerBatch: 4, pollScheduleMs: [200, 300, 500], processingMs: 3000, warmupBatches: 50, historySample: 100,
    awaitTimerTails: true, floor: true,
  },
  history: { polls: 10_080, pollIntervalMs: 1 },
  pollNow: { trials: 11, requests: 1000 },
  ingest: { lines: 100_000, lineBytes: 1048 },
  largeSubmit: { requests: 50_000, requestBytes: 4096 },
  // 48 polls: a day at the default schedule's 30-minute interval; 360: near Temporal's continue-as-new suggestion.
  replayCost: { atPolls: [1, 10, 48, 100, 200, 360] },
  timeliness: { inFlight: 10_000, pollIntervalMs: 300_000, windowMs: 300_000, sampleWorkflows: 600 },
  faults: {
    batchesPerSystem: 100, settleMs: 300_000, processingMs: 30_000, submitOverMs: 10_000, faultsUntilMs: 70_000, killFromMs: 5_000,
    killEveryMs: 8_000, restartDelayMs: [1000, 3000], redisRestartAtMs: 25_000, postgresRestartAtMs: 35_000, postgresDownMs: 3_000,
    drainAtMs: 48_000, drainForMs: 15_000,
  },
};

export const QUICK_PRESET: Preset = {
  name: 'quick',
  dataName: 'bench-quick',
  ui: false,
  overhead: { ...DEFAULT_PRESET.overhead, batches: 40, rounds: 1, warmupBatches: 5, historySample: 30, awaitTimerTails: false, floor: false },
  history: { polls: 300, pollIntervalMs: 1 },
  pollNow: { trials: 3, requests: 1000 },
  ingest: { lines: 10_000, lineBytes: 1048 },
  largeSubmit: { requests: 2_000, requestBytes: 4096 },
  replayCost: { atPolls: [1, 10, 30] },
  timeliness: { inFlight: 90, pollIntervalMs: 3_000, windowMs: 3_000, sampleWorkflows: 90 },
  // The default's faults in half the time: provider batches of 15 s, every fault inside the first 30 s, the drain
  // still longer than the grace.
  faults: {
    batchesPerSystem: 20, settleMs: 90_000, processingMs: 15_000, submitOverMs: 3_000, faultsUntilMs: 30_000, killFromMs: 3_000,
    killEveryMs: 7_000, restartDelayMs: [1000, 3000], redisRestartAtMs: 6_000, postgresRestartAtMs: 9_000, postgresDownMs: 3_000,
    drainAtMs: 14_000, drainForMs: 12_000,
  },
};

/** Worker tuning passed to both worker processes (ours and the floor's) through the environment. */
export interface WorkerTuning {
  maxCachedWorkflows?: number;
  maxConcurrentActivities?: number;
  maxConcurrentWorkflowTasks?: number;
  pgPoolMax?: number;
}

export interface BenchOptions {
  preset: Preset;
  only: MeasurementName[];
  tuning: WorkerTuning;
  output?: string;
}

export const USAGE = `npm run bench -- [options]

Presets
  --quick                 scaled down (40 batches and no floor, 300 polls, 90 in flight at 3 s, 10,000 lines, faults in 30 s), headless, about 3 minutes
  (default)               1,000 batches, a full 10,080-poll 7-day batch, 10,000 in flight, 100,000 lines (~100 MB), Temporal Web on

Sizes
  --batches N             overhead: concurrent batches (ours and floor)      --rounds N   overhead rounds (best kept)
  --history-polls N       polls of the simulated 7-day batch
  --in-flight N           timeliness/memory: batches in flight on one worker  --poll-interval D  their poll interval (e.g. 60s)
  --window D              timeliness: measurement window after the ramp
  --trials N              poll-now-to-handler trials                          --ingest-lines N   results file lines
  --submit-requests N     large submit: requests of about 4 KB in one batch

Worker tuning (env of both worker processes; unset = the stock worker's defaults)
  --max-cached N  --max-activities N  --max-workflow-tasks N  --pg-pool N

Other
  --only LIST             comma-separated subset of: ${MEASUREMENTS.join(', ')}
  --ui / --no-ui          Temporal Web on (port + 1000)
  --output FILE           default bench/results/latest.json (the markdown table goes beside it)
`;

export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new Error(`bad duration ${JSON.stringify(text)} (use e.g. 90s, 2m, 1500ms)`);
  return Math.round(Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h']);
}

export function optionsFromArgs(argv: string[]): BenchOptions {
  const intFlags = ['batches', 'rounds', 'history-polls', 'in-flight', 'trials', 'ingest-lines', 'submit-requests', 'max-cached', 'max-activities',
    'max-workflow-tasks', 'pg-pool'];
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ui: { type: 'boolean' },
      'no-ui': { type: 'boolean' },
      only: { type: 'string' },
      output: { type: 'string' },
      'poll-interval': { type: 'string' },
      window: { type: 'string' },
      ...Object.fromEntries(intFlags.map((flag) => [flag, { type: 'string' as const }])),
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const base = values.quick ? QUICK_PRESET : DEFAULT_PRESET;
  const preset: Preset = structuredClone(base);
  const int = (flag: string, min: number): number | undefined => {
    const raw = (values as Record<string, unknown>)[flag];
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${flag} must be an integer of at least ${min}`);
    return value;
  };
  preset.overhead.batches = int('batches', 1) ?? preset.overhead.batches;
  preset.overhead.rounds = int('rounds', 1) ?? preset.overhead.rounds;
  preset.history.polls = int('history-polls', 2) ?? preset.history.polls;
  preset.timeliness.inFlight = int('in-flight', 1) ?? preset.timeliness.inFlight;
  preset.pollNow.trials = int('trials', 1) ?? preset.pollNow.trials;
  preset.ingest.lines = int('ingest-lines', 1) ?? preset.ingest.lines;
  preset.largeSubmit.requests = int('submit-requests', 1) ?? preset.largeSubmit.requests;
  if (values['poll-interval']) preset.timeliness.pollIntervalMs = parseDuration(values['poll-interval']);
  if (values.window) preset.timeliness.windowMs = parseDuration(values.window);
  if (values.ui) preset.ui = true;
  if (values['no-ui']) preset.ui = false;
  const only = values.only
    ? values.only.split(',').map((name) => name.trim()).filter(Boolean)
    : MEASUREMENTS;
  for (const name of only) if (!MEASUREMENTS.includes(name as MeasurementName)) throw new Error(`--only: unknown measurement ${name}`);
  return {
    preset,
    only: only as MeasurementName[],
    tuning: {
      maxCachedWorkflows: int('max-cached', 0),
      maxConcurrentActivities: int('max-activities', 1),
      maxConcurrentWorkflowTasks: int('max-workflow-tasks', 2),
      pgPoolMax: int('pg-pool', 1),
    },
    output: values.output,
  };
}
