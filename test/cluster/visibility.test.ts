/**
 * SQL visibility answers every query batchkeeper gives operators: each saved query of the README's Temporal Web
 * table, and every `batchkeeper batches|jobs list|count` filter through the real CLI, returns exactly the workflow
 * runs it should, in a namespace holding only a known population (test/support/visibility-population.ts). What each
 * run is comes from Temporal's record of the run itself and from PostgreSQL; visibility, written separately by the
 * history hosts into PostgreSQL, must agree. The sweep Schedule is installed and triggered there too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freshNamespace, clusterAddress } from '../support/cluster';
import { runCli } from '../support/run-cli';
import { savedQueries, withCutoff } from '../support/saved-queries';
import { buildPopulation, type Population, type Run } from '../support/visibility-population';
import { waitFor } from '../support/wait';

let population: Population;

before(async () => {
  population = await buildPopulation(await freshNamespace('bk-visibility'));
});
after(async () => population?.env.teardown());

const key = (run: { workflowId: string; runId: string }) => `${run.workflowId} ${run.runId}`;
const keys = (runs: { workflowId: string; runId: string }[]) => [...new Set(runs.map(key))].sort();

/** Visibility is written after the run's own state: compare until they agree, then once more for the message. */
async function expectEventually(what: string, actual: () => Promise<string[]>, expected: string[]): Promise<void> {
  assert.ok(expected.length > 0, `${what}: the population has workflows this must find`);
  let last: string[] = [];
  await waitFor(async () => {
    last = await actual();
    return JSON.stringify(last) === JSON.stringify(expected);
  }, 15_000, what).catch(() => undefined);
  assert.deepEqual(last, expected, what);
}

// ---------------------------------------------------------------------------------------------------------------
// The README's saved queries

/** The example date of "overdue batches" becomes a cutoff between the population's 26-hour and 7-day deadlines. */
const CUTOFF = new Date(Date.now() + 2 * 86_400_000);

/** What each saved query promises, by its README label, over the runs as Temporal and PostgreSQL record them. */
const PROMISES: Record<string, (run: Run) => boolean> = {
  'dead-lettered batches': (run) => run.kind === 'batch' && run.deadLettered === true,
  'all dead-lettered work': (run) => run.deadLettered === true,
  'dead-lettered at the handler': (run) => run.deadLettered === true && run.failedStep === 'dispatch_handler',
  'running OpenAI batches': (run) => run.kind === 'batch' && run.provider === 'openai' && run.executionStatus === 'Running',
  'overdue batches': (run) => run.kind === 'batch' && run.executionStatus === 'Running' && run.deadline !== undefined && run.deadline < CUTOFF,
  'expired or failed batches': (run) => run.kind === 'batch' && ['expired', 'failed'].includes(run.status ?? ''),
  // PostgreSQL's step_attempts is the try count of record: a job that needed retries took more than one attempt.
  'jobs that needed retries': (run) => run.kind === 'job' && (run.executeAttempts ?? 0) > 1,
  'sweep runs': (run) => run.type === 'sweepWorkflow',
};

describe('saved queries of the README, verbatim', () => {
  const rows = savedQueries();
  test('the README table lists saved queries, each with a promise this file checks', () => {
    assert.ok(rows.length >= 8, `found ${rows.length} saved queries`);
    for (const { what } of rows) assert.ok(PROMISES[what], `no expectation for the saved query "${what}": add one to PROMISES`);
  });
  for (const { what, query } of rows) {
    test(`${what}: ${query}`, async () => {
      const promise = PROMISES[what];
      assert.ok(promise, `no expectation for "${what}"`);
      const text = withCutoff(query, CUTOFF);
      const temporal = population.env.temporal;
      await expectEventually(text, async () => {
        const found: { workflowId: string; runId: string }[] = [];
        for await (const info of temporal.workflow.list({ query: text })) found.push(info);
        return keys(found);
      }, keys(population.runs.filter(promise)));
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The CLI's list and count filters

function cliEnv(): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    TEMPORAL_ADDRESS: clusterAddress(),
    TEMPORAL_NAMESPACE: population.namespace,
    DATABASE_URL: population.env.databaseUrl,
    BATCHKEEPER_TASK_QUEUE: population.env.taskQueue,
  };
}

async function cliJson<T>(args: string[]): Promise<T> {
  const run = await runCli([...args, '--json'], cliEnv());
  assert.equal(run.code, 0, `batchkeeper ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

interface Filter {
  /** `<midpoint>` stands for the population's midpoint, known only once it is built. */
  flags: string[];
  matches: (run: Run) => boolean;
}

const MIDPOINT = '<midpoint>';

/** Each option of `list` and `count` alone, plus one combination; the task queue is BATCHKEEPER_TASK_QUEUE unless --all-task-queues. */
function filters(kind: 'batch' | 'job'): Filter[] {
  const common: Filter[] = [
    { flags: [], matches: () => true },
    { flags: ['--dead-lettered'], matches: (run) => run.deadLettered === true },
    { flags: ['--execution-status', 'Running'], matches: (run) => run.executionStatus === 'Running' },
    { flags: ['--execution-status', 'Completed'], matches: (run) => run.executionStatus === 'Completed' },
    { flags: ['--since', MIDPOINT], matches: (run) => run.startTime > population.midpoint },
    { flags: ['--until', MIDPOINT], matches: (run) => run.startTime < population.midpoint },
  ];
  if (kind === 'job') {
    return [
      ...common,
      { flags: ['--status', 'succeeded'], matches: (run) => run.status === 'succeeded' },
      { flags: ['--type', 'retry-twice'], matches: (run) => run.handler === 'retry-twice' },
    ];
  }
  return [
    ...common,
    { flags: ['--execution-status', 'Terminated'], matches: (run) => run.executionStatus === 'Terminated' },
    ...['in_progress', 'ended', 'failed', 'expired'].map((status) => ({ flags: ['--status', status], matches: (run: Run) => run.status === status })),
    { flags: ['--provider', 'anthropic'], matches: (run) => run.provider === 'anthropic' },
    { flags: ['--handler', 'broken'], matches: (run) => run.handler === 'broken' },
    { flags: ['--status', 'in_progress', '--provider', 'openai'], matches: (run) => run.status === 'in_progress' && run.provider === 'openai' },
  ];
}

function runsOf(kind: 'batch' | 'job', allTaskQueues = false): Run[] {
  return population.runs.filter((run) => run.kind === kind && (allTaskQueues || run.taskQueue === population.env.taskQueue));
}

for (const [group, kind] of [['batches', 'batch'], ['jobs', 'job']] as const) {
  describe(`batchkeeper ${group} list / count`, () => {
    for (const filter of filters(kind)) {
      test(`${group} list ${filter.flags.join(' ') || '(no filter)'} and count give exactly the matching runs`, async () => {
        const flags = filter.flags.map((flag) => (flag === MIDPOINT ? population.midpoint.toISOString() : flag));
        const expected = keys(runsOf(kind).filter(filter.matches));
        await expectEventually(`${group} list ${flags.join(' ')}`, async () => keys((await cliJson<{ items: Run[] }>([group, 'list', ...flags])).items), expected);
        const counted = await cliJson<{ count: number }>([group, 'count', ...flags]);
        assert.equal(counted.count, expected.length, `${group} count ${flags.join(' ')}`);
      });
    }

    test(`${group} list --all-task-queues also finds the runs of other task queues; --limit cuts the list`, async () => {
      const all = keys(runsOf(kind, true));
      await expectEventually(`${group} list --all-task-queues`, async () => keys((await cliJson<{ items: Run[] }>([group, 'list', '--all-task-queues'])).items), all);
      const limited = (await cliJson<{ items: Run[] }>([group, 'list', '--limit', '2'])).items;
      assert.equal(limited.length, 2);
      for (const run of limited) assert.ok(all.includes(key(run)), `${key(run)} is one of ours`);
    });

    for (const [groupBy, field] of [['execution-status', 'executionStatus'], ['status', 'status']] as const) {
      test(`${group} count --group-by ${groupBy}: one count per value`, async () => {
        const expected = new Map<string, number>();
        for (const run of runsOf(kind)) expected.set(run[field] ?? '', (expected.get(run[field] ?? '') ?? 0) + 1);
        const result = await cliJson<{ count: number; groups: { value: string; count: number }[] }>([group, 'count', '--group-by', groupBy]);
        assert.equal(result.count, runsOf(kind).length);
        // ExecutionStatus groups come back as the enum's upper-case names on the wire; compare case-blind.
        const normalise = (value: string) => value.toLowerCase().replace(/_/g, '');
        assert.deepEqual(
          Object.fromEntries(result.groups.map((g) => [normalise(g.value), g.count]).sort()),
          Object.fromEntries([...expected].map(([value, count]) => [normalise(value), count]).sort()),
        );
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The sweep Schedule

test('the sweep Schedule, installed and triggered, restarted exactly the batch whose workflow was terminated', async () => {
  const { sweep, recovered, env } = population;
  assert.equal(sweep.result.recovered, 1, `sweep result: ${JSON.stringify(sweep.result)}`);
  assert.equal(sweep.result.failed, 0);
  const runs = population.runs.filter((run) => run.workflowId === recovered.workflowId);
  assert.deepEqual(runs.map((run) => run.executionStatus).sort(), ['Running', 'Terminated']);
  assert.ok(runs.some((run) => run.runId === recovered.terminatedRunId && run.executionStatus === 'Terminated'));
  const description = await env.temporal.schedule.getHandle('batchkeeper-sweep').describe();
  assert.ok(description.info.recentActions.some((action) => action.action.workflow.workflowId === sweep.workflowId));
});
