/**
 * The commands Temporal Web's Current Details show for a dead-lettered batch and job run as an operator pastes them:
 * each is one complete line of its own code block, first in the details, and run in a shell (`npx batchkeeper`
 * resolving to this checkout's CLI) it resolves the dead letter.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { waitFor } from './support/wait';

const ROOT = path.resolve(__dirname, '..');
const gate = { handlerWorks: false };
const handlers: BatchHandlerRegistry = {
  gated: {
    async onComplete() {
      if (!gate.handlerWorks) throw ApplicationFailure.nonRetryable('the summaries table is locked', 'HandlerRefused');
    },
  },
};
const jobExecutors: JobExecutorRegistry = {
  broken: {
    async execute() {
      throw ApplicationFailure.nonRetryable('input refers to a deleted shard', 'BadJobInput');
    },
  },
};

let env: TestEnvironment;
let shimDir: string;

before(async () => {
  env = await createTestEnvironment({ handlers, jobExecutors });
  // `npx batchkeeper ...` as in an app that installed the package: here it runs the checkout's CLI.
  shimDir = mkdtempSync(path.join(tmpdir(), 'bk-npx-'));
  writeFileSync(path.join(shimDir, 'npx'), [
    '#!/usr/bin/env bash',
    '[ "$1" = batchkeeper ] || { echo "this npx knows only batchkeeper" >&2; exit 127; }',
    `shift; exec "${process.execPath}" --import tsx "${path.join(ROOT, 'bin', 'batchkeeper.ts')}" "$@"`,
    '',
  ].join('\n'));
  chmodSync(path.join(shimDir, 'npx'), 0o755);
});
after(async () => {
  rmSync(shimDir, { recursive: true, force: true });
  await env?.teardown();
});

/** The Current Details text of a running workflow, as Temporal Web reads it (the built-in metadata query). */
async function currentDetails(workflowId: string): Promise<string> {
  const metadata = await env.temporal.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

/** The code blocks of the details, as an operator selects and copies them. */
function codeBlocks(details: string): string[] {
  return [...details.matchAll(/```\n([\s\S]*?)\n```/g)].map((match) => match[1]!);
}

/** Runs a copied line in bash, as pasted into a terminal, against this file's environment. */
function paste(line: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', line], {
      cwd: ROOT,
      env: {
        PATH: `${shimDir}:${process.env.PATH}`, HOME: process.env.HOME, DATABASE_URL: env.databaseUrl,
        TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS, BATCHKEEPER_TASK_QUEUE: env.taskQueue, BATCHKEEPER_OPERATOR: 'pasted',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

function assertCommandsFirst(details: string, kind: 'batch' | 'job', id: string): { requeue: string; discard: string } {
  assert.match(details.split('\n')[0]!, /^\*\*DEAD-LETTERED\*\* at step /, 'the dead letter comes first');
  const blocks = codeBlocks(details);
  const group = kind === 'batch' ? 'batches' : 'jobs';
  assert.deepEqual(blocks, [`npx batchkeeper ${group} requeue ${id}`, `npx batchkeeper ${group} discard ${id}`], 'two one-line commands, requeue first');
  assert.ok(details.indexOf(blocks[1]!) < details.indexOf('**Status:**'), 'both commands come before the status lines');
  return { requeue: blocks[0]!, discard: blocks[1]! };
}

test("a dead-lettered batch: the requeue line of its details, pasted, runs the handler again and the batch completes", { timeout: 120_000 }, async () => {
  gate.handlerWorks = false;
  const { batchId, workflowId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(2, 'pasted'), handler: 'gated', pollScheduleMs: [200],
  });
  await waitFor(async () => (await env.client.getBatch(batchId)).deadLetter, 30_000, 'the dead letter');
  const details = await waitFor(async () => {
    const text = await currentDetails(workflowId);
    return text.startsWith('**DEAD-LETTERED**') ? text : undefined;
  }, 15_000, 'the details of the parked workflow');
  const { requeue } = assertCommandsFirst(details, 'batch', batchId);

  gate.handlerWorks = true;
  const run = await paste(requeue);
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, /requeued step dispatch_handler of batch/);
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  assert.ok(batch.handlerDispatchedAt, 'the handler ran after the requeue');
  assert.equal((await env.client.getBatch(batchId)).deadLetter, null, 'no open dead letter is left');
});

test("a dead-lettered job: the discard line of its details, pasted, ends the job as discarded", { timeout: 120_000 }, async () => {
  const { jobId, workflowId } = await env.client.startJob({ type: 'broken', input: { shard: 7 } });
  await waitFor(async () => (await env.client.getJob(jobId)).deadLetter, 30_000, 'the dead letter');
  const details = await waitFor(async () => {
    const text = await currentDetails(workflowId);
    return text.startsWith('**DEAD-LETTERED**') ? text : undefined;
  }, 15_000, 'the details of the parked workflow');
  const { discard } = assertCommandsFirst(details, 'job', jobId);

  const run = await paste(discard);
  assert.equal(run.code, 0, run.output);
  const job = await env.client.waitForJob(jobId, { timeoutMs: 30_000 });
  assert.equal(job.status, 'discarded');
  const { deadLetter } = await env.client.getJob(jobId);
  assert.equal(deadLetter, null);
});
