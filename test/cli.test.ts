/**
 * The `batchkeeper` CLI run as a real subprocess (bin/batchkeeper.ts) against this file's test environment: dead
 * letters found, shown, requeued and discarded by an operator, visibility listing, failed work, schedules, errors.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, type TestEnvironment } from './support/environment';
import { runCli } from './support/run-cli';
import { waitFor } from './support/wait';


/** Flipped by the test to "deploy the fix" of the handler. */
let handlerFixed = false;
const failureCalls: string[] = [];

const handlers: BatchHandlerRegistry = {
  exploding: {
    async onComplete() {
      if (!handlerFixed) throw new Error('handler exploded: downstream store unavailable');
    },
    async onFailure({ batch }) {
      failureCalls.push(batch.id);
    },
  },
};

const jobExecutors: JobExecutorRegistry = {
  echo: { execute: async (input) => ({ echoed: input }) },
};

let env: TestEnvironment;
let batchA: string;
let batchB: string;
let batchC: string;
const scheduleId = `cli-sweep-${randomUUID()}`;

before(async () => {
  env = await createTestEnvironment({
    handlers,
    jobExecutors,
    retry: { defaults: { maximumAttempts: 2, initialIntervalMs: 100, maximumIntervalMs: 200 } },
  });
});
after(async () => {
  await env?.temporal.schedule.getHandle(scheduleId).delete().catch(() => undefined);
  await env?.teardown();
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, {
        ...process.env,
        DATABASE_URL: env.databaseUrl,
        TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS,
        TEMPORAL_NAMESPACE: 'default',
        BATCHKEEPER_TASK_QUEUE: env.taskQueue,
        BATCHKEEPER_OPERATOR: 'cli-test',
        ...extraEnv,
  });
}

/** Runs with --json, asserts exit 0 and returns the parsed output. */
async function cliJson(...args: string[]): Promise<any> {
  const result = await cli([...args, '--json']);
  assert.equal(result.code, 0, `batchkeeper ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

async function submit(prefix: string): Promise<string> {
  const { batchId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(3, prefix), handler: 'exploding', pollScheduleMs: FAST_SCHEDULE_MS,
  });
  return batchId;
}

const openDeadLetter = (batchId: string) =>
  waitFor(async () => (await env.client.getBatch(batchId)).deadLetter, 60_000, `dead letter of ${batchId}`);

test('--help for the tool, a group and a command; usage errors exit 2', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0);
  for (const group of ['batches', 'jobs', 'dead-letters', 'failed', 'schedules']) assert.match(top.stdout, new RegExp(`\\n  ${group} `));
  const group = await cli(['dead-letters', '--help']);
  assert.equal(group.code, 0);
  assert.match(group.stdout, /requeue-all/);
  const command = await cli(['dead-letters', 'requeue', '--help']);
  assert.equal(command.code, 0);
  assert.match(command.stdout, /--max-attempts N/);

  const unknownCommand = await cli(['batches', 'frobnicate']);
  assert.equal(unknownCommand.code, 2);
  assert.match(unknownCommand.stderr, /error: unknown command "batches frobnicate"/);
  const unknownFlag = await cli(['dead-letters', 'list', '--frob', '--json']);
  assert.equal(unknownFlag.code, 2);
  assert.deepEqual(JSON.parse(unknownFlag.stdout), { error: { code: 'usage', message: 'unknown option --frob' } });
  const missingArg = await cli(['batches', 'show']);
  assert.equal(missingArg.code, 2);
  assert.match(missingArg.stderr, /missing <batchId>/);
});

test('a batch whose handler keeps failing is dead-lettered and shown with its try count and error', async () => {
  [batchA, batchB, batchC] = await Promise.all([submit('cli-a'), submit('cli-b'), submit('cli-c')]);
  const [letterA] = await Promise.all([openDeadLetter(batchA), openDeadLetter(batchB), openDeadLetter(batchC)]);

  const { items } = await cliJson('dead-letters', 'list');
  const listed = items.find((item: any) => item.subjectId === batchA);
  assert.ok(listed, 'the dead letter is listed');
  assert.equal(listed.id, letterA.id);
  assert.equal(listed.tryCount, 2);
  assert.equal(listed.step, 'dispatch_handler');
  assert.equal(listed.typeOrHandler, 'exploding');
  assert.match(listed.errorMessage, /handler exploded/);
  const filtered = await cliJson('dead-letters', 'list', '--step', 'poll');
  assert.deepEqual(filtered.items, []);
  const table = await cli(['dead-letters', 'list', '--handler', 'exploding']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, new RegExp(`^${letterA.id} +batch +${batchA} +dispatch_handler +2 +Error: handler exploded`, 'm'));

  const shown = await cli(['batches', 'show', batchA]);
  assert.equal(shown.code, 0, shown.stderr);
  console.log(`--- batchkeeper batches show ${batchA} ---\n${shown.stdout}--- end ---`);
  assert.match(shown.stdout, new RegExp(`Dead letter ${letterA.id} \\(open since`));
  assert.match(shown.stdout, /step: +dispatch_handler/);
  assert.match(shown.stdout, /tries: +2/);
  assert.match(shown.stdout, /error: +Error: handler exploded: downstream store unavailable/);
  assert.match(shown.stdout, /live state: +phase dead_lettered/);
  assert.match(shown.stdout, /dispatch_handler +2 +2 +1 +failing +Error: handler exploded/);
  assert.match(shown.stdout, /dead_lettered/, 'the timeline shows the dead letter');
  assert.doesNotMatch(shown.stdout, /Say hello number/, 'request bodies are never printed');

  const json = await cliJson('batches', 'show', batchA);
  assert.equal(json.deadLetter.id, letterA.id);
  assert.equal(json.live.phase, 'dead_lettered');
  assert.equal(json.workflow.executionStatus, 'RUNNING');
  assert.equal(json.steps.find((step: any) => step.step === 'dispatch_handler').attempt, 2);
  assert.ok(json.timeline.some((event: any) => event.kind === 'dead_lettered'));

  const peeked = await cliJson('dead-letters', 'peek', '--handler', 'exploding');
  assert.ok([batchA, batchB, batchC].includes(peeked.deadLetter.subjectId));

  const check = await cli(['dead-letters', 'check', '--json']);
  assert.equal(check.code, 0, check.stdout);
  assert.equal(JSON.parse(check.stdout).consistent, true);
});

test('batches list --dead-lettered finds it through visibility; count groups by status', async () => {
  // Visibility trails the workflow by a moment: ask again until it shows.
  const listed = await waitFor(async () => {
    const { items } = await cliJson('batches', 'list', '--dead-lettered');
    return items.find((item: any) => item.id === batchA);
  }, 20_000, 'dead-lettered batch in visibility');
  assert.equal(listed.deadLettered, true);
  assert.equal(listed.handler, 'exploding');
  assert.equal(listed.executionStatus, 'RUNNING');
  const human = await cli(['batches', 'list', '--dead-lettered', '--handler', 'exploding']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`${batchA} .* yes +RUNNING`));
  const counted = await cliJson('batches', 'count', '--dead-lettered', '--group-by', 'execution-status');
  assert.ok(counted.count >= 2);
  assert.deepEqual(counted.groups, [{ value: 'Running', count: counted.count }]);
  // Temporal groups only by ExecutionStatus: per batchkeeper status the CLI counts each status on its own.
  const byStatus = await cliJson('batches', 'count', '--dead-lettered', '--group-by', 'status');
  assert.equal(byStatus.count, counted.count);
  assert.deepEqual(byStatus.groups, [{ value: 'ended', count: counted.count }], 'the parked batches ended at the provider');
});

test('failed --json lists the dead-lettered batches as failed work', async () => {
  const { items } = await cliJson('failed', '--kind', 'batch', '--dead-lettered');
  const ids = items.map((item: any) => item.subjectId);
  assert.ok(ids.includes(batchA) && ids.includes(batchB));
  const row = items.find((item: any) => item.subjectId === batchA);
  assert.equal(row.tryCount, 2);
  assert.equal(row.step, 'dispatch_handler');
  const human = await cli(['failed', '--handler', 'exploding']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`^batch +${batchA} +ended +exploding +dispatch_handler +2 +${row.deadLetterId} +Error: handler exploded`, 'm'));
});

test('dead-letters discard ends the batch failed; a second discard is refused', async () => {
  const letter = (await env.client.getBatch(batchB)).deadLetter!;
  const discarded = await cli(['dead-letters', 'discard', letter.id, '--note', 'bad batch']);
  assert.equal(discarded.code, 0, discarded.stderr);
  assert.match(discarded.stdout, new RegExp(`discarded dead letter ${letter.id}`));
  const batch = await env.client.waitForBatch(batchB, { timeoutMs: 30_000 });
  assert.equal(batch.status, 'failed');
  assert.deepEqual(failureCalls, [batchB], 'onFailure ran once');

  const again = await cli(['dead-letters', 'discard', letter.id]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already discarded/);
  const { items } = await cliJson('failed', '--kind', 'batch');
  assert.equal(items.find((item: any) => item.subjectId === batchB)?.status, 'failed');
});

test('batches requeue after the fix completes the batch', async () => {
  handlerFixed = true;
  const requeued = await cli(['batches', 'requeue', batchA, '--max-attempts', '3']);
  assert.equal(requeued.code, 0, requeued.stderr);
  assert.match(requeued.stdout, new RegExp(`requeued step dispatch_handler of batch ${batchA}`));
  const batch = await env.client.waitForBatch(batchA, { timeoutMs: 30_000 });
  assert.equal(batch.status, 'ended');
  assert.ok(batch.handlerDispatchedAt);

  const open = await cliJson('dead-letters', 'list');
  assert.equal(open.items.filter((item: any) => item.subjectId === batchA).length, 0);
  const history = await cliJson('dead-letters', 'list', '--include-resolved');
  const resolved = history.items.find((item: any) => item.subjectId === batchA);
  assert.equal(resolved.resolution, 'requeued');
  assert.equal(resolved.resolvedBy, 'cli-test');

  const again = await cli(['batches', 'requeue', batchA]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, new RegExp(`batch ${batchA} has no open dead letter`));

  const results = await cliJson('batches', 'results', batchA, '--limit', '2');
  assert.equal(results.items.length, 2);
  assert.equal(results.items[0].status, 'succeeded');
  assert.equal(results.next, 1);
  const check = await cliJson('dead-letters', 'check');
  assert.equal(check.consistent, true);
});

test('dead-letters check flags a dead letter whose workflow is gone (exit 1); bulk discard reports what failed', async () => {
  const workflowId = (await env.client.getBatch(batchC)).batch.workflowId;
  await env.temporal.workflow.getHandle(workflowId).terminate('simulated loss');
  const check = await cli(['dead-letters', 'check']);
  assert.equal(check.code, 1);
  assert.match(check.stdout, new RegExp(`${workflowId} .* workflow not running`));

  const dryRun = await cliJson('dead-letters', 'discard-all', '--handler', 'exploding', '--dry-run');
  assert.deepEqual(dryRun.items.map((item: any) => item.subjectId), [batchC]);
  const bulk = await cli(['dead-letters', 'discard-all', '--handler', 'exploding', '--json']);
  assert.equal(bulk.code, 1, 'a partly failed bulk action exits 1');
  const result = JSON.parse(bulk.stdout);
  assert.equal(result.matched, 1);
  assert.equal(result.failed.length, 1);
  assert.match(result.failed[0].error, new RegExp(batchC), 'the failure names the batch');
});

test('unknown and malformed ids, bad flags: exit 2 with a message naming the input', async () => {
  const unknownBatch = randomUUID();
  const show = await cli(['batches', 'show', unknownBatch, '--json']);
  assert.equal(show.code, 2);
  assert.match(show.stderr, new RegExp(`error: batch "${unknownBatch}" does not exist`));
  assert.equal(JSON.parse(show.stdout).error.code, 'not_found');

  const unknownLetter = randomUUID();
  const requeue = await cli(['dead-letters', 'requeue', unknownLetter]);
  assert.equal(requeue.code, 2);
  assert.match(requeue.stderr, new RegExp(`dead letter "${unknownLetter}" does not exist`));

  const malformed = await cli(['batches', 'show', 'not-a-batch-id', '--json']);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /batchId: "not-a-batch-id" is not a well-formed batch id/);
  assert.deepEqual(JSON.parse(malformed.stdout).error, {
    code: 'invalid_input', field: 'batchId', message: 'batchId: "not-a-batch-id" is not a well-formed batch id (a UUID such as 2f1c8a4e-9b7d-4c3e-8a5f-0d6e7b1c2a90)',
  });
  const malformedLetter = await cli(['dead-letters', 'discard', 'x'.repeat(8) + '-'.repeat(28)]);
  assert.equal(malformedLetter.code, 2);
  assert.match(malformedLetter.stderr, /deadLetterId: "x{8}-{28}" is not a well-formed dead letter id/);

  const badDuration = await cli(['batches', 'extend-deadline', batchA, '--by', 'soon', '--json']);
  assert.equal(badDuration.code, 2);
  assert.deepEqual(JSON.parse(badDuration.stdout).error.field, '--by');
  const finished = await cli(['batches', 'poll-now', batchA]);
  assert.equal(finished.code, 2, 'poll-now on a finished batch does not apply');
  assert.match(finished.stderr, /not running/);
  const unfiltered = await cli(['dead-letters', 'discard-all']);
  assert.equal(unfiltered.code, 2);
  assert.match(unfiltered.stderr, /needs at least one filter .* or --all/);
});

test('the database password is never printed', async () => {
  const url = new URL(env.databaseUrl);
  url.password = 'wrong-secret-pw-8271';
  const result = await cli(['dead-letters', 'list', '--json'], { DATABASE_URL: url.toString() });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: /);
  assert.doesNotMatch(result.stdout + result.stderr, /wrong-secret-pw-8271/);
});

test('jobs start, show without printing input or output', async () => {
  const started = await cliJson('jobs', 'start', 'echo', '--input', '{"secretInput":"do-not-print"}', '--idempotency-key', 'cli-job-1');
  assert.equal(started.created, true);
  const again = await cliJson('jobs', 'start', 'echo', '--input', '{"secretInput":"do-not-print"}', '--idempotency-key', 'cli-job-1');
  assert.equal(again.jobId, started.jobId);
  const job = await env.client.waitForJob(started.jobId, { timeoutMs: 30_000 });
  assert.equal(job.status, 'succeeded');
  const shown = await cli(['jobs', 'show', started.jobId]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /status: +succeeded/);
  assert.doesNotMatch(shown.stdout, /do-not-print/);
  const json = await cliJson('jobs', 'show', started.jobId);
  assert.ok(json.job.inputBytes > 0 && json.job.outputBytes > 0);
  assert.doesNotMatch(JSON.stringify(json), /do-not-print/);
  const badInput = await cli(['jobs', 'start', 'echo', '--input', '{not json']);
  assert.equal(badInput.code, 2);
  assert.doesNotMatch(badInput.stderr, /not json/);
});

test('schedules install is idempotent', async () => {
  const first = await cliJson('schedules', 'install', '--schedule-id', scheduleId, '--every', '1h', '--catchup-window', '10m');
  assert.equal(first.created, true);
  const second = await cli(['schedules', 'install', '--schedule-id', scheduleId, '--every', '2h']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, new RegExp(`updated schedule ${scheduleId}: sweep every 2h`));
  const description = await env.temporal.schedule.getHandle(scheduleId).describe();
  assert.equal(description.action.type, 'startWorkflow');
  assert.equal(description.action.type === 'startWorkflow' && description.action.taskQueue, env.taskQueue);
  assert.equal(Number((description.spec.intervals?.[0] as { every: number } | undefined)?.every), 2 * 3_600_000);
});
