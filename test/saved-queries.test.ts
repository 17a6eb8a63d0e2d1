/**
 * Every saved query in the README's Temporal Web table finds what its row says it finds: the workflows of this
 * file's task queue are put in each state the table names (and in states it must not find), then each query, exactly
 * as the README prints it (only the example deadline is now), runs against the dev server's visibility.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { SweepResult } from '../activities';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { SWEEP_WORKFLOW_TYPE } from '../domain/workflow-ids';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { savedQueries, withCutoff } from './support/saved-queries';
import { waitFor } from './support/wait';

const handlers: BatchHandlerRegistry = {
  fine: { async onComplete() {} },
  exploding: {
    async onComplete() {
      throw ApplicationFailure.nonRetryable('downstream store refused the summary', 'HandlerRefused');
    },
  },
};
const jobExecutors: JobExecutorRegistry = {
  flaky: {
    async execute(_input, { attempt }) {
      if (attempt < 3) throw new Error(`flaky dependency (attempt ${attempt})`);
      return { attempt };
    },
  },
  steady: { async execute() { return { ok: true }; } },
  broken: {
    async execute() {
      throw ApplicationFailure.nonRetryable('input refers to a deleted shard', 'BadJobInput');
    },
  },
};

let env: TestEnvironment;
/** Name of each workflow put in a state, by its role in the table. */
const made: Record<string, string> = {};

before(async () => {
  env = await createTestEnvironment({
    handlers, jobExecutors, retry: { defaults: { maximumAttempts: 5, initialIntervalMs: 50, maximumIntervalMs: 100 } },
  });
});
after(async () => env?.teardown());

interface BatchSpec { provider?: 'openai' | 'anthropic'; handler?: string; processingMs?: number; maxAgeMs?: number; rule?: Record<string, unknown> }

/** The fake's timing of each batch, by its first custom id: set for all before any is submitted. */
function providerRules(specs: Record<string, BatchSpec>): void {
  env.fake.configure({
    batchRules: Object.entries(specs).map(([role, spec]) => ({ match: { customId: `sq-${role}-0` }, processingMs: spec.processingMs ?? 200, ...spec.rule })),
  });
}

async function batch(role: string, options: BatchSpec) {
  const prefix = `sq-${role}`;
  const { workflowId } = await env.client.submitBatch({
    provider: options.provider ?? 'openai', model: 'model-x', requests: chatRequests(2, prefix), handler: options.handler ?? 'fine',
    pollScheduleMs: [250], maxAgeMs: options.maxAgeMs,
  });
  made[role] = workflowId;
  return workflowId;
}

test('each saved query of the README finds exactly the workflows its row describes', { timeout: 240_000 }, async () => {
  const queries = savedQueries();
  assert.equal(queries.length, 8, `the table has its eight rows (${queries.map((entry) => entry.what).join('; ')})`);

  // Parked at the handler (running, openai), a parked job, running batches of both providers, one past its deadline
  // (cancelled at the deadline, the provider takes long to settle), an expired and a failed one, an ended one, jobs
  // that succeeded at their third try and at their first, and a sweep run.
  const batches: Record<string, BatchSpec> = {
    'parked-at-handler': { handler: 'exploding' },
    'running-openai': { processingMs: 600_000 },
    'running-anthropic': { provider: 'anthropic', processingMs: 600_000 },
    overdue: { provider: 'anthropic', processingMs: 600_000, maxAgeMs: 1500, rule: { cancelDelayMs: 600_000 } },
    expired: { processingMs: 600_000, maxAgeMs: 1500, rule: { cancelDelayMs: 100 } },
    failed: { rule: { outcome: 'failed' } },
    ended: {},
  };
  providerRules(batches);
  for (const [role, spec] of Object.entries(batches)) await batch(role, spec);
  made['parked-job'] = (await env.client.startJob({ type: 'broken', input: {} })).workflowId;
  made['job-third-try'] = (await env.client.startJob({ type: 'flaky', input: {} })).workflowId;
  made['job-first-try'] = (await env.client.startJob({ type: 'steady', input: {} })).workflowId;
  made.sweep = `sweep-saved-queries-${env.taskQueue}`;
  await env.temporal.workflow.execute<(input: { limit?: number }) => Promise<SweepResult>>(SWEEP_WORKFLOW_TYPE, {
    taskQueue: env.taskQueue, workflowId: made.sweep, args: [{ limit: 0 }],
  });

  const expected: Record<string, string[]> = {
    'dead-lettered batches': ['parked-at-handler'],
    'all dead-lettered work': ['parked-at-handler', 'parked-job'],
    'dead-lettered at the handler': ['parked-at-handler'],
    // A batch parked on a dead letter is still a running workflow.
    'running OpenAI batches': ['parked-at-handler', 'running-openai'],
    'overdue batches': ['overdue'],
    'expired or failed batches': ['expired', 'failed'],
    'jobs that needed retries': ['job-third-try'],
    'sweep runs': ['sweep'],
  };
  assert.deepEqual(queries.map((entry) => entry.what).sort(), Object.keys(expected).sort(), 'every row has an expectation here');

  const byWorkflowId = new Map(Object.entries(made).map(([role, workflowId]) => [workflowId, role]));
  for (const { what, query } of queries) {
    // The README's example deadline stands for "now"; the task queue keeps other test files' workflows out.
    const asRun = `(${withCutoff(query, new Date())}) AND TaskQueue = '${env.taskQueue}'`;
    const want = [...expected[what]!].sort();
    let found: string[] = [];
    await waitFor(async () => {
      found = [];
      for await (const info of env.temporal.workflow.list({ query: asRun })) found.push(byWorkflowId.get(info.workflowId) ?? info.workflowId);
      found.sort();
      return JSON.stringify(found) === JSON.stringify(want) ? true : undefined;
    }, 60_000, `${what}: ${asRun} finds ${want.join(', ')}`).catch(() => undefined);
    assert.deepEqual(found, want, `${what}: ${asRun}`);
  }
});
