/**
 * `npm run chaos [-- options]`: the chaos soak. Exits 0 when every invariant holds, 1 when one fails, 2 on bad usage.
 *
 *   npm run chaos -- --quick                      # about 2.5 minutes; also runs inside `npm test`
 *   npm run chaos                                 # 500 batches + 150 jobs over 10 minutes, Temporal Web on
 *   npm run chaos -- --batches 800 --duration 15m --fault-scale 2
 */
import { parseArgs } from 'node:util';
import { formatTable, writeResults } from './report';
import { LONG_PRESET, QUICK_PRESET, type ChaosOptions, type FaultRates } from './options';
import { runChaos } from './run';

const RATE_FLAGS: Record<string, keyof FaultRates> = {
  'rate-429': 'http429',
  'rate-5xx': 'http5xx',
  'rate-html': 'html',
  'rate-reset': 'reset',
  'rate-timeout': 'timeout',
  'rate-drop-create': 'dropCreate',
  'rate-truncate': 'truncate',
  'rate-malformed': 'malformedLine',
  'rate-missing': 'missingLine',
};

const USAGE = `npm run chaos -- [options]

Presets
  --quick                 40 batches + 20 jobs, 70 s of chaos, 2 workers, headless (under 3 minutes in all)
  (default)               500 batches + 150 jobs over 10 minutes, Temporal Web on

Size and pacing
  --batches N  --jobs N   how many of each
  --duration D            chaos phase (submissions spread over it), e.g. 90s, 10m
  --drain D               longest wait afterwards for everything to settle
  --workers N             worker processes (default 2)
  --max-in-flight N       unsettled batches + jobs at once

Disruptions
  --kill-every D          mean pause between worker SIGKILLs
  --server-restarts N     Temporal dev server restarts (at least 2 by default)
  --postgres-restarts N   PostgreSQL restarts (default 1)

Faults (probabilities 0..1; --fault-scale multiplies every rate)
  ${Object.keys(RATE_FLAGS).map((flag) => `--${flag}`).join(' ')}
  --fault-scale F  --handler-failure-rate P  --poison-rate P

Other
  --seed N  --name NAME (folder under .data/)  --output FILE (default chaos/results/latest.json)
  --ui / --no-ui          Temporal Web on port+1000
`;

export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new Error(`bad duration ${JSON.stringify(text)} (use e.g. 90s, 10m, 1500ms)`);
  const value = Number(match[1]);
  return Math.round(value * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h']);
}

export function optionsFromArgs(argv: string[]): ChaosOptions {
  const numberFlags = ['batches', 'jobs', 'workers', 'max-in-flight', 'server-restarts', 'postgres-restarts', 'seed', 'fault-scale',
    'handler-failure-rate', 'poison-rate', ...Object.keys(RATE_FLAGS)];
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ui: { type: 'boolean' },
      'no-ui': { type: 'boolean' },
      duration: { type: 'string' },
      drain: { type: 'string' },
      'kill-every': { type: 'string' },
      name: { type: 'string' },
      output: { type: 'string' },
      ...Object.fromEntries(numberFlags.map((flag) => [flag, { type: 'string' as const }])),
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const base = values.quick ? QUICK_PRESET : LONG_PRESET;
  const options: ChaosOptions = { ...base, faults: { ...base.faults } };
  const num = (flag: string, min: number, max = Infinity): number | undefined => {
    const raw = (values as Record<string, unknown>)[flag];
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${flag} must be a number from ${min} to ${max}`);
    return value;
  };
  const int = (flag: string, min: number) => {
    const value = num(flag, min);
    if (value !== undefined && !Number.isInteger(value)) throw new Error(`--${flag} must be an integer`);
    return value;
  };
  options.batches = int('batches', 0) ?? options.batches;
  options.jobs = int('jobs', 0) ?? options.jobs;
  options.workers = int('workers', 1) ?? options.workers;
  options.maxInFlight = int('max-in-flight', 1) ?? options.maxInFlight;
  options.serverRestarts = int('server-restarts', 0) ?? options.serverRestarts;
  options.postgresRestarts = int('postgres-restarts', 0) ?? options.postgresRestarts;
  options.seed = int('seed', 0) ?? options.seed;
  options.handlerFailureRate = num('handler-failure-rate', 0, 0.9) ?? options.handlerFailureRate;
  options.poisonRate = num('poison-rate', 0, 1) ?? options.poisonRate;
  if (values.duration) options.durationMs = parseDuration(values.duration);
  if (values.drain) options.drainTimeoutMs = parseDuration(values.drain);
  if (values['kill-every']) options.killEveryMs = parseDuration(values['kill-every']);
  if (values.name) options.name = values.name;
  if (values.ui) options.ui = true;
  if (values['no-ui']) options.ui = false;
  const scale = num('fault-scale', 0, 20) ?? 1;
  for (const key of Object.keys(options.faults) as (keyof FaultRates)[]) options.faults[key] = Math.min(options.faults[key] * scale, 1);
  for (const [flag, key] of Object.entries(RATE_FLAGS)) options.faults[key] = num(flag, 0, 1) ?? options.faults[key];
  if (options.faults.malformedLine + options.faults.missingLine > 1) throw new Error('--rate-malformed + --rate-missing must be at most 1');
  if (values.output) options.resultsFile = values.output;
  if (options.durationMs < 10_000) throw new Error('--duration must be at least 10s');
  return options;
}

async function main(): Promise<number> {
  let options: ChaosOptions;
  try {
    options = optionsFromArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  console.log(`[chaos] ${options.batches} batches, ${options.jobs} jobs, ${(options.durationMs / 1000).toFixed(0)}s of chaos, ` +
    `${options.workers} workers, ${options.serverRestarts} Temporal and ${options.postgresRestarts} PostgreSQL restarts, seed ${options.seed}`);
  const result = await runChaos(options);
  console.log(`\n${formatTable(result)}`);
  console.log(`[chaos] results written to ${writeResults(result, options.resultsFile)}`);
  return result.passed ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error('[chaos] the run itself failed:', error);
      process.exit(1);
    },
  );
}
