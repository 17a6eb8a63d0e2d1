/** The chaos soak's report: a table on stdout and chaos/results/latest.json (plus a timestamped copy). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './disruptions';
import type { ChaosResult } from './options';

export const RESULTS_DIR = path.join(PROJECT_ROOT, 'tools', 'chaos', 'results');

/** Metrics that must be zero. */
const INVARIANTS = ['lost', 'duplicateProviderBatches', 'duplicateHandlerEffects', 'stalled', 'deadLetterMismatches'] as const;

export function formatTable(result: ChaosResult): string {
  const details = result.details as Record<string, any>;
  const rows: [string, string, string][] = [
    ['batches', String(result.batches), ''],
    ['jobs', String(result.jobs), ''],
    ['workerKills', String(result.workerKills), 'SIGKILL'],
    ['serverRestarts', String(result.serverRestarts), 'Temporal server processes: the dev server on its state file, or cluster hosts'],
    ['postgresRestarts', String(result.postgresRestarts), ''],
    ['faultsInjected', String(result.faultsInjected),
      `provider ${details.faults?.provider ?? '?'}, malformed lines ${details.faults?.malformedLines ?? '?'}, missing lines ${details.faults?.missingLines ?? '?'}`],
    ...INVARIANTS.map((key): [string, string, string] => [key, String(result[key]), result[key] === 0 ? 'ok' : 'FAIL']),
    ['durationSeconds', String(result.durationSeconds), ''],
  ];
  const width = [Math.max(6, ...rows.map((row) => row[0].length)), Math.max(5, ...rows.map((row) => row[1].length))];
  const line = `+${'-'.repeat(width[0]! + 2)}+${'-'.repeat(width[1]! + 2)}+`;
  const out = [line, `| ${'metric'.padEnd(width[0]!)} | ${'value'.padStart(width[1]!)} |`, line];
  for (const [name, value, note] of rows) out.push(`| ${name.padEnd(width[0]!)} | ${value.padStart(width[1]!)} |${note ? ` ${note}` : ''}`);
  out.push(line);
  const terminal = details.terminal;
  if (terminal) {
    out.push(`finished: ${terminal.batchesEnded} batches ended, ${terminal.batchesDiscarded} discarded, ${terminal.batchesOther} other; ` +
      `${terminal.jobsSucceeded} jobs succeeded, ${terminal.jobsDiscarded} discarded, ${terminal.jobsOther} other`);
  }
  if (details.waiting) {
    out.push(`still running, legitimately: ${details.waiting.parked} parked on a dead letter, ${details.waiting.pendingActivity} waiting on an activity ` +
      `(${details.waiting.pendingActivityOnKilledWorker} of them started on a SIGKILLed worker), ${details.waiting.pendingTimer} on a poll timer`);
  }
  if (details.deadLetters) {
    const letters = details.deadLetters;
    out.push(`dead letters: ${letters.total} recorded, ${letters.requeued} requeued, ${letters.discarded} discarded, ${letters.open} open ` +
      `(PostgreSQL ${letters.checkedInPostgres} vs Temporal ${letters.checkedInTemporal} parked)`);
  }
  out.push(`workers: ${details.workers?.starts ?? '?'} starts, ${details.workers?.crashes ?? '?'} crashes; provider batches created ${details.providerBatches ?? '?'}; ` +
    `job re-executions (at-least-once) ${details.jobReexecutions ?? '?'}; lost request results ${details.lostRequests ?? '?'}`);
  for (const [label, key] of [['unexpected dead letters', 'unexpectedDeadLetters'], ['waiting', 'waitingExamples'], ['anomalies', 'anomalies']] as const) {
    const list = details[key] as string[] | undefined;
    if (list?.length) out.push(`${label}:`, ...list.slice(0, 10).map((entry) => `  - ${entry}`));
  }
  out.push(result.passed ? 'PASSED: every invariant holds' : `FAILED:\n${result.failures.map((failure) => `  - ${failure}`).join('\n')}`);
  return out.join('\n');
}

/** Writes the results (default chaos/results/latest.json) and returns the path. */
export function writeResults(result: ChaosResult, file = path.join(RESULTS_DIR, 'latest.json')): string {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return path.resolve(file);
}
