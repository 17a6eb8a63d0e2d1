/**
 * The bench's results: bench/results/latest.json (stable top-level keys, see RESULT_KEYS) and latest.md (the table
 * for the README), plus a timestamped copy of each. Also the small statistics helpers the measurements share.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions, Preset, WorkerTuning } from './presets';
import { formatPeersMarkdown } from './peers/table';

export const RESULT_KEYS = [
  'overheadRatio', 'extraStatusCalls', 'eventsPerPoll', 'maxHistoryEvents', 'pollLatenessP50Ms', 'pollLatenessP99Ms',
  'pollNowToHandlerP50Ms', 'ingestRowsPerSec', 'copyRowsPerSec', 'ingestRatio', 'ingestPeakRssMb', 'workerRssMbAt10k',
  'submitRowsPerSec', 'submitCopyRowsPerSec', 'submitRatio', 'submitPeakRssMb', 'replayMsPerMissAtMaxPolls',
] as const;
export type ResultKey = (typeof RESULT_KEYS)[number];

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memoryGb: number;
  os: string;
  node: string;
  loadAverage: number[];
  loadAverageAfter?: number[];
  postgres?: string;
  temporalCli?: string;
  note: string;
}

export interface BenchDetails {
  historyCandidates: { source: string; maxEvents: number }[];
  durationsSeconds: Record<string, number>;
  totalSeconds?: number;
  [section: string]: unknown;
}

export type BenchResults = Record<ResultKey, number | null> & {
  machine: MachineInfo;
  timestamp: string;
  preset: Preset;
  tuning: WorkerTuning;
  targets: Partial<Record<ResultKey, { target: string; met: boolean | null }>>;
  details: BenchDetails;
  errors: string[];
};

/**
 * Targets of the issues; keys without one are reported for information. overheadRatio (ours against no-op
 * activities) is information since issue 17: it prices work the floor does not do at all; the peers' table compares.
 */
const TARGETS: Partial<Record<ResultKey, { text: string; check: (value: number) => boolean }>> = {
  extraStatusCalls: { text: '= 0', check: (value) => value === 0 },
  eventsPerPoll: { text: '≤ 11', check: (value) => value <= 11 },
  maxHistoryEvents: { text: '≤ 10,000', check: (value) => value <= 10_000 },
  pollLatenessP99Ms: { text: '≤ 2,000 ms', check: (value) => value <= 2000 },
  pollNowToHandlerP50Ms: { text: '≤ 1,000 ms', check: (value) => value <= 1000 },
  ingestRatio: { text: '≥ 0.8', check: (value) => value >= 0.8 },
  ingestPeakRssMb: { text: '≤ 150 MB', check: (value) => value <= 150 },
  submitRatio: { text: '≥ 0.5', check: (value) => value >= 0.5 },
  submitPeakRssMb: { text: '≤ 150 MB', check: (value) => value <= 150 },
};

export function machineInfo(): Omit<MachineInfo, 'note'> & { note: string } {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cpus: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverage: os.loadavg().map((value) => Math.round(value * 100) / 100),
    note: 'shared machine: other engineers ran tests at the same time; compare ratios, not absolute times',
  };
}

export function emptyResults(preset: Preset, options: BenchOptions, machine: MachineInfo): BenchResults {
  const results = Object.fromEntries(RESULT_KEYS.map((key) => [key, null])) as Record<ResultKey, number | null>;
  return {
    ...results,
    machine,
    timestamp: new Date().toISOString(),
    preset,
    tuning: options.tuning,
    targets: {},
    details: { historyCandidates: [], durationsSeconds: {} },
    errors: [],
  };
}

/** Fills what is derived from several measurements and evaluates the targets. */
export function finalise(results: BenchResults): BenchResults {
  if (results.details.historyCandidates.length) {
    results.maxHistoryEvents = Math.max(...results.details.historyCandidates.map((candidate) => candidate.maxEvents));
  }
  for (const key of RESULT_KEYS) {
    const target = TARGETS[key];
    if (!target) continue;
    const value = results[key];
    results.targets[key] = { target: target.text, met: value === null ? null : target.check(value) };
  }
  return results;
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sortedValues: number[], q: number): number {
  if (sortedValues.length === 0) return NaN;
  const rank = Math.ceil((q / 100) * sortedValues.length);
  return sortedValues[Math.min(sortedValues.length - 1, Math.max(0, rank - 1))];
}

export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

const LABELS: Record<ResultKey, string> = {
  overheadRatio: 'Orchestration overhead: ours / floor throughput (`overheadRatio`)',
  extraStatusCalls: 'Status calls beyond the schedule\'s minimum (`extraStatusCalls`)',
  eventsPerPoll: 'History events per poll (`eventsPerPoll`)',
  maxHistoryEvents: 'Largest history of any run (`maxHistoryEvents`)',
  pollLatenessP50Ms: 'Poll lateness p50 (`pollLatenessP50Ms`)',
  pollLatenessP99Ms: 'Poll lateness p99 (`pollLatenessP99Ms`)',
  pollNowToHandlerP50Ms: 'pollNow → handler p50, 1,000-request batch (`pollNowToHandlerP50Ms`)',
  ingestRowsPerSec: 'Results ingest, rows/s (`ingestRowsPerSec`)',
  copyRowsPerSec: 'PostgreSQL COPY of the same rows, rows/s (`copyRowsPerSec`)',
  ingestRatio: 'Ingest / COPY (`ingestRatio`)',
  ingestPeakRssMb: 'Worker peak RSS growth during the ingest (`ingestPeakRssMb`)',
  workerRssMbAt10k: 'Worker RSS with the in-flight batches open (`workerRssMbAt10k`)',
  submitRowsPerSec: 'Large batch, submitBatch → provider batches created, rows/s (`submitRowsPerSec`)',
  submitCopyRowsPerSec: 'PostgreSQL COPY of the same request rows, rows/s (`submitCopyRowsPerSec`)',
  submitRatio: 'Large submit / COPY (`submitRatio`)',
  submitPeakRssMb: 'Worker peak RSS growth during the large submit (`submitPeakRssMb`)',
  replayMsPerMissAtMaxPolls: 'Replay of a batch history on a workflow-cache miss (`replayMsPerMissAtMaxPolls`)',
};

const UNITS: Partial<Record<ResultKey, string>> = {
  pollLatenessP50Ms: ' ms', pollLatenessP99Ms: ' ms', pollNowToHandlerP50Ms: ' ms', ingestPeakRssMb: ' MB', workerRssMbAt10k: ' MB',
  submitPeakRssMb: ' MB', replayMsPerMissAtMaxPolls: ' ms',
};

function formatValue(key: ResultKey, value: number | null): string {
  if (value === null) return 'not measured';
  return `${value.toLocaleString('en-US', { maximumFractionDigits: 2 })}${UNITS[key] ?? ''}`;
}

/** worker/Temporal/PostgreSQL/fake CPU ms per batch. */
function cpuLine(perBatch: Record<string, number>): string {
  return `${perBatch.worker}/${perBatch.temporal}/${perBatch.postgres}/${perBatch.benchAndFake}`;
}

function context(results: BenchResults, key: ResultKey): string {
  const d = results.details as Record<string, any>;
  switch (key) {
    case 'overheadRatio':
      if (d.overhead && d.overhead.floorBestBatchesPerSecond === null) return `${d.overhead.batches} concurrent batches, ours ${d.overhead.oursBestBatchesPerSecond} batches/s; no floor run`;
      return d.overhead ? `${d.overhead.batches} concurrent batches, ${d.overhead.oursBestBatchesPerSecond} vs ${d.overhead.floorBestBatchesPerSecond} batches/s` +
        (d.overhead.cpuMsPerBatch ? `; CPU ms/batch ${cpuLine(d.overhead.cpuMsPerBatch.ours)} vs ${cpuLine(d.overhead.cpuMsPerBatch.floor)}` : '') : '';
    case 'extraStatusCalls':
      return d.providerEfficiency
        ? `${d.providerEfficiency.statusCallsPerBatch} status calls/batch (min ${d.providerEfficiency.minimumStatusCallsPerBatch}); ${d.providerEfficiency.providerBatchesPerBatch} provider batches/batch`
        : '';
    case 'eventsPerPoll':
    case 'maxHistoryEvents':
      return d.history
        ? `${d.history.simulatedPolls.toLocaleString('en-US')}-poll batch (${d.history.simulatedDays} days at 1/min): ${d.history.runs} runs`
        : '';
    case 'pollLatenessP50Ms':
    case 'pollLatenessP99Ms':
    case 'workerRssMbAt10k':
      return d.timeliness
        ? `${d.timeliness.inFlight.toLocaleString('en-US')} in flight, ${d.timeliness.pollIntervalMs / 1000}s interval (${d.timeliness.pollsNeededPerSecond} polls/s)`
        : '';
    case 'pollNowToHandlerP50Ms':
      return d.pollNow ? `${d.pollNow.trials} trials` : '';
    case 'ingestRowsPerSec':
    case 'copyRowsPerSec':
    case 'ingestRatio':
    case 'ingestPeakRssMb':
      return d.ingest ? `${d.ingest.lines.toLocaleString('en-US')} lines, ${d.ingest.resultsFileMb} MB` : '';
    case 'submitRowsPerSec':
    case 'submitCopyRowsPerSec':
    case 'submitRatio':
    case 'submitPeakRssMb':
      return d.largeSubmit
        ? `${d.largeSubmit.requests.toLocaleString('en-US')} requests, ${d.largeSubmit.requestBodiesMb} MB, ${d.largeSubmit.providerBatches} provider batches; client ${d.largeSubmit.clientSeconds} s + worker ${d.largeSubmit.workerSeconds} s`
        : '';
    case 'replayMsPerMissAtMaxPolls':
      return d.replayCost
        ? d.replayCost.rows.map((row: { polls: number; events: number; replayMs: number }) => `${row.polls} polls (${row.events} events) ${row.replayMs} ms`).join('; ')
        : '';
    default:
      return '';
  }
}

export function formatMarkdown(results: BenchResults): string {
  const m = results.machine;
  const date = results.timestamp.slice(0, 10);
  const lines = [
    `Benchmark \`npm run bench${results.preset.name === 'quick' ? ' -- --quick' : ''}\`, ${date}, ${m.cpus} vCPU ${m.cpuModel}, ${m.memoryGb} GB, ` +
      `${m.os}, Node ${m.node}${m.postgres ? `, PostgreSQL ${m.postgres}` : ''}${m.temporalCli ? `, Temporal CLI ${m.temporalCli}` : ''} ` +
      `(shared: load ${m.loadAverage.join('/')} at start).`,
    '',
    '| measure | value | target | met | conditions |',
    '|---|---|---|---|---|',
  ];
  for (const key of RESULT_KEYS) {
    const target = results.targets[key];
    const met = target?.met === undefined || target?.met === null ? '' : target.met ? 'yes' : '**no**';
    lines.push(`| ${LABELS[key]} | ${formatValue(key, results[key])} | ${target?.target ?? ''} | ${met} | ${context(results, key)} |`);
  }
  const peers = formatPeersMarkdown(results.details);
  if (peers) lines.push(peers);
  if (results.errors.length) lines.push('', `Errors: ${results.errors.join('; ')}`);
  return lines.join('\n');
}

export function writeResults(results: BenchResults, output?: string): { json: string; markdown: string } {
  finalise(results);
  const json = path.resolve(output ?? path.join(__dirname, 'results', 'latest.json'));
  const dir = path.dirname(json);
  mkdirSync(dir, { recursive: true });
  const markdown = json.replace(/\.json$/, '') + '.md';
  const text = `${JSON.stringify(results, null, 2)}\n`;
  const table = `${formatMarkdown(results)}\n`;
  writeFileSync(json, text);
  writeFileSync(markdown, table);
  const stamp = results.timestamp.replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${results.preset.name}-${stamp}.json`), text);
  writeFileSync(path.join(dir, `${results.preset.name}-${stamp}.md`), table);
  return { json, markdown };
}
