/**
 * The end checks of the chaos soak, from PostgreSQL, the fake provider's records and Temporal:
 *
 * - lost: a planned batch or job that was acknowledged but is not in PostgreSQL, whose workflow Temporal no longer
 *   knows, that is finished without its handler/executor effect, or whose stored per-request results (once fetched)
 *   differ from what the provider produced (succeeded stays succeeded, a malformed line is an errored request, a
 *   missing line missing);
 * - duplicateProviderBatches: provider batches beyond the first with the same fingerprint (model + sorted custom ids);
 * - duplicateHandlerEffects: completion/failure handler effects beyond one per batch (the effects table counts them);
 * - stalled: unfinished in PostgreSQL while its workflow is closed, or running with nothing pending (no activity, no
 *   poll timer, no workflow task, not parked on a dead letter), re-checked a few times before it counts;
 * - deadLetterMismatches: open dead letters in PostgreSQL vs workflows parked in Temporal (both directions).
 *
 * Everything else found (parked, waiting on an activity or timer, repeated job executions, odd statuses) is reported
 * in `details` without failing the run.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { BatchkeeperAdmin } from '../../client/admin';
import { batchStateQuery, jobStateQuery } from '../../domain/definitions';
import { listDeadLetters } from '../../db/dead-letters-store';
import type { FakeProvider } from '../../testing/fake-provider/server';
import { sleep } from './disruptions';
import type { PlannedItem } from './plan';

export interface InvariantReport {
  lost: number;
  duplicateProviderBatches: number;
  duplicateHandlerEffects: number;
  stalled: number;
  deadLetterMismatches: number;
  failures: string[];
  details: Record<string, unknown>;
}

export type OpenState =
  | { state: 'parked'; deadLetterId: string; step: string }
  | {
    state: 'pending_activity'; activity: string; attempt: number; activityState: string; lastFailure?: string; startedAt?: string;
    /** Started on a worker we SIGKILLed: Temporal retries it only after its start-to-close or heartbeat timeout. */
    onKilledWorker: boolean;
  }
  | { state: 'pending_timer'; nextPollAt: string }
  | { state: 'transient'; why: string }
  | { state: 'stalled'; why: string };

const EXPECTED_STATUS: Record<string, string> = { succeeded: 'succeeded', malformed: 'errored', missing: 'missing', errored: 'errored' };
const RECHECKS = 6;
const RECHECK_PAUSE_MS = 3000;
const OVERDUE_TIMER_MS = 30_000;

export interface InvariantContext {
  pool: Pool;
  temporal: Client;
  admin: BatchkeeperAdmin;
  fake: FakeProvider;
  items: PlannedItem[];
  taskQueue: string;
  /** pids of the worker processes we SIGKILLed. */
  killedPids: ReadonlySet<number>;
  log: (message: string) => void;
}

/** Why an item counts as stalled when its workflow closed after PostgreSQL was read (it may have finished since). */
const CLOSED_WHILE_UNFINISHED = 'unfinished in PostgreSQL but its workflow is';

/**
 * The checks read PostgreSQL once, then Temporal item by item; an item whose workflow finishes in between (an
 * activity of a killed worker retried during the checks) looks unfinished in PostgreSQL with a closed workflow. So
 * when that is seen, everything is checked again from a fresh read: a real mismatch is still there the second time.
 */
export async function checkInvariants(ctx: InvariantContext): Promise<InvariantReport> {
  const first = await checkOnce(ctx);
  const closed = (first.details.stalledItems as { why: string }[]).filter((item) => item.why.startsWith(CLOSED_WHILE_UNFINISHED));
  if (!closed.length) return first;
  ctx.log(`${closed.length} item(s) unfinished in PostgreSQL but with a closed workflow: checking everything again from a fresh read`);
  return checkOnce(ctx);
}

async function checkOnce(ctx: InvariantContext): Promise<InvariantReport> {
  const { pool, temporal, items, log } = ctx;
  const q = async <T extends Record<string, any>>(sql: string, params: unknown[] = []): Promise<T[]> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return (await pool.query(sql, params)).rows as T[];
      } catch (error) {
        if (attempt >= 10) throw error;
        await sleep(1000);
      }
    }
  };

  const batchRows = new Map((await q(`SELECT id, idempotency_key, workflow_id, status, provider, provider_batch_id, results_fetched_at,
      handler_dispatched_at, failure_code FROM batches`)).map((row) => [row.idempotency_key as string, row]));
  const requestRows = new Map<string, Map<string, { status: string; error_code: string | null }>>();
  for (const row of await q('SELECT batch_id, custom_id, status, error_code FROM request_outcomes')) {
    if (!requestRows.has(row.batch_id)) requestRows.set(row.batch_id, new Map());
    requestRows.get(row.batch_id)!.set(row.custom_id, { status: row.status, error_code: row.error_code });
  }
  const jobRows = new Map((await q('SELECT id, idempotency_key, workflow_id, status, failure_code FROM jobs')).map((row) => [row.idempotency_key as string, row]));
  const effects = new Map((await q('SELECT kind, subject_id, effects FROM public.chaos_effects')).map((row) => [`${row.kind}:${row.subject_id}`, row.effects as number]));
  const invocations = Object.fromEntries((await q('SELECT kind, count(*)::int AS n FROM public.chaos_invocations GROUP BY kind')).map((row) => [row.kind, row.n]));
  const openLetters = await listDeadLetters(pool, { limit: 10_000 });
  const allLetters = await listDeadLetters(pool, { limit: 10_000, includeResolved: true });

  const lost: { key: string; why: string }[] = [];
  const lostRequestExamples: string[] = [];
  let lostRequests = 0;
  const anomalies: string[] = [];
  const open: { item: PlannedItem; workflowId: string }[] = [];
  const terminalCounts = { batchesEnded: 0, batchesDiscarded: 0, batchesOther: 0, jobsSucceeded: 0, jobsDiscarded: 0, jobsOther: 0 };
  let jobReexecutions = 0;
  let duplicateHandlerEffects = 0;
  const duplicateEffectExamples: string[] = [];

  const describe = async (workflowId: string) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await temporal.workflow.getHandle(workflowId).describe();
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return undefined;
        if (attempt >= 5) throw error;
        await sleep(1000);
      }
    }
  };

  await forEachLimited(items, 6, async (item) => {
    if (item.kind === 'batch') {
      const row = batchRows.get(item.key);
      if (!row) {
        lost.push({ key: item.key, why: item.acked ? 'acknowledged but not in PostgreSQL' : 'never submitted' });
        return;
      }
      const description = await describe(row.workflow_id);
      if (!description) {
        lost.push({ key: item.key, why: `workflow ${row.workflow_id} unknown to Temporal (PostgreSQL status ${row.status})` });
        return;
      }
      const completeEffects = effects.get(`complete:${row.id}`) ?? 0;
      const failureEffects = effects.get(`failure:${row.id}`) ?? 0;
      const extra = Math.max(completeEffects - 1, 0) + Math.max(failureEffects - 1, 0) + (completeEffects && failureEffects ? 1 : 0);
      if (extra) {
        duplicateHandlerEffects += extra;
        duplicateEffectExamples.push(`batch ${row.id}: ${completeEffects} completion and ${failureEffects} failure effects`);
      }
      if (row.results_fetched_at) {
        // Whatever happens to the handler later, the stored results must be what the provider produced.
        const stored = requestRows.get(row.id) ?? new Map();
        let mismatched = 0;
        for (const customId of item.customIds) {
          const expected = EXPECTED_STATUS[item.outcomes[customId] ?? 'succeeded'];
          const actual = stored.get(customId);
          if (actual?.status !== expected) {
            mismatched += 1;
            if (lostRequestExamples.length < 20) lostRequestExamples.push(`${item.key}/${customId}: expected ${expected}, stored ${actual?.status ?? 'nothing'} (${actual?.error_code ?? ''})`);
          }
        }
        lostRequests += mismatched;
        if (mismatched) lost.push({ key: item.key, why: `${mismatched} request results differ from the provider's` });
      }
      if (!row.handler_dispatched_at) {
        open.push({ item, workflowId: row.workflow_id });
        return;
      }
      if (!['COMPLETED', 'RUNNING'].includes(description.status.name)) anomalies.push(`batch ${row.id} is finished but its workflow is ${description.status.name}`);
      const discarded = row.status === 'failed' && String(row.failure_code ?? '').startsWith('discarded_');
      if (discarded) {
        terminalCounts.batchesDiscarded += 1;
        if (!failureEffects) lost.push({ key: item.key, why: 'discarded but the failure handler left no effect' });
        if (item.poison !== 'discard') anomalies.push(`batch ${item.key} was discarded (plan: ${item.poison ?? 'none'})`);
        return;
      }
      if (row.status === 'ended') terminalCounts.batchesEnded += 1;
      else {
        terminalCounts.batchesOther += 1;
        anomalies.push(`batch ${item.key} ended as ${row.status} (${row.failure_code ?? ''})`);
      }
      if (item.poison === 'leave' || item.poison === 'discard') anomalies.push(`poisoned batch ${item.key} (plan ${item.poison}) completed its handler`);
      if (!completeEffects) lost.push({ key: item.key, why: 'handler dispatched but its effect is missing' });
      if (!row.results_fetched_at) lost.push({ key: item.key, why: `${row.status} without stored results` });
      return;
    }

    const row = jobRows.get(item.key);
    if (!row) {
      lost.push({ key: item.key, why: item.acked ? 'acknowledged but not in PostgreSQL' : 'never submitted' });
      return;
    }
    const description = await describe(row.workflow_id);
    if (!description) {
      lost.push({ key: item.key, why: `workflow ${row.workflow_id} unknown to Temporal (PostgreSQL status ${row.status})` });
      return;
    }
    const jobEffects = effects.get(`job:${row.id}`) ?? 0;
    const failureEffects = effects.get(`job_failure:${row.id}`) ?? 0;
    jobReexecutions += Math.max(jobEffects - 1, 0) + Math.max(failureEffects - 1, 0);
    if (row.status === 'succeeded') {
      terminalCounts.jobsSucceeded += 1;
      if (!jobEffects) lost.push({ key: item.key, why: 'succeeded but the executor effect is missing' });
      if (item.poison === 'leave' || item.poison === 'discard') anomalies.push(`poisoned job ${item.key} (plan ${item.poison}) succeeded`);
    } else if (row.status === 'discarded') {
      terminalCounts.jobsDiscarded += 1;
      if (!failureEffects) lost.push({ key: item.key, why: 'discarded but onFailure left no effect' });
      if (item.poison !== 'discard') anomalies.push(`job ${item.key} was discarded (plan: ${item.poison ?? 'none'})`);
    } else if (row.status === 'failed') {
      terminalCounts.jobsOther += 1;
      anomalies.push(`job ${item.key} failed (${row.failure_code ?? ''})`);
    } else {
      open.push({ item, workflowId: row.workflow_id });
      return;
    }
    if (!['COMPLETED', 'RUNNING'].includes(description.status.name)) anomalies.push(`job ${row.id} is finished but its workflow is ${description.status.name}`);
  });

  // Unfinished work: legitimately waiting (parked, activity, timer) or stalled; re-checked before it counts.
  const openStates = new Map<string, OpenState>();
  let toCheck = open;
  for (let round = 1; toCheck.length && round <= RECHECKS; round += 1) {
    await forEachLimited(toCheck, 6, async ({ item, workflowId }) => {
      openStates.set(item.key, await classifyOpen(temporal, item.kind, workflowId, ctx.killedPids));
    });
    toCheck = toCheck.filter(({ item }) => ['transient', 'stalled'].includes(openStates.get(item.key)!.state));
    if (toCheck.length && round < RECHECKS) {
      log(`${toCheck.length} unfinished item(s) with nothing pending; checking again in ${RECHECK_PAUSE_MS / 1000}s`);
      await sleep(RECHECK_PAUSE_MS);
    }
  }
  const stalled: { key: string; why: string }[] = [];
  const waiting = { parked: 0, pendingActivity: 0, pendingActivityOnKilledWorker: 0, pendingTimer: 0 };
  const waitingExamples: string[] = [];
  for (const { item } of open) {
    const state = openStates.get(item.key)!;
    if (state.state === 'stalled' || state.state === 'transient') stalled.push({ key: item.key, why: state.why });
    else if (state.state === 'parked') {
      waiting.parked += 1;
      if (item.poison !== 'leave') waitingExamples.push(`${item.key} parked on ${state.step} (plan ${item.poison ?? 'none'})`);
    } else if (state.state === 'pending_activity') {
      waiting.pendingActivity += 1;
      if (state.onKilledWorker) waiting.pendingActivityOnKilledWorker += 1;
      waitingExamples.push(`${item.key} waits on ${state.activity} attempt ${state.attempt} (${state.activityState}` +
        `${state.startedAt ? ` since ${state.startedAt}` : ''}${state.onKilledWorker ? ' on a SIGKILLed worker: retried after its timeout' : ''}` +
        `${state.lastFailure ? `; last failure: ${state.lastFailure}` : ''})`);
    } else {
      waiting.pendingTimer += 1;
      waitingExamples.push(`${item.key} polls again at ${state.nextPollAt}`);
    }
  }

  // Provider side: one provider batch per logical batch (per distinct set of custom ids).
  const created = ctx.fake.createdBatches();
  const byFingerprint = new Map<string, typeof created>();
  for (const batch of created) byFingerprint.set(batch.fingerprint, [...(byFingerprint.get(batch.fingerprint) ?? []), batch]);
  let duplicateProviderBatches = 0;
  const duplicateProviderExamples: string[] = [];
  for (const group of byFingerprint.values()) {
    if (group.length < 2) continue;
    duplicateProviderBatches += group.length - 1;
    duplicateProviderExamples.push(`${group[0]!.provider} ${group.map((batch) => `${batch.id} at ${batch.createdAt}`).join(', ')}` +
      `${group[0]!.batchkeeperBatchId ? ` (batch ${group[0]!.batchkeeperBatchId})` : ''}`);
  }
  const knownProviderIds = new Set(created.map((batch) => batch.id));
  const unknownProviderIds = [...batchRows.values()].filter((row) => row.provider_batch_id && !knownProviderIds.has(row.provider_batch_id)).length;
  if (unknownProviderIds) anomalies.push(`${unknownProviderIds} batches reference a provider batch the provider never created`);

  // Dead letters: PostgreSQL vs Temporal, with the library's check plus the parked states seen above.
  let consistency;
  for (let attempt = 1; ; attempt += 1) {
    try {
      consistency = await ctx.admin.checkDeadLetterConsistency({ taskQueue: ctx.taskQueue });
      break;
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(2000);
    }
  }
  const mismatchKeys = new Set(consistency.mismatches.map((mismatch) => mismatch.workflowId));
  const mismatchExamples = consistency.mismatches.map((mismatch) => `${mismatch.workflowId}: ${mismatch.problem}`);
  const openLetterIds = new Set(openLetters.map((letter) => letter.id));
  for (const { item, workflowId } of open) {
    const state = openStates.get(item.key)!;
    if (state.state === 'parked' && !openLetterIds.has(state.deadLetterId) && !mismatchKeys.has(workflowId)) {
      mismatchKeys.add(workflowId);
      mismatchExamples.push(`${workflowId}: parked on ${state.deadLetterId}, which is not open in PostgreSQL`);
    }
  }

  const failures: string[] = [];
  if (lost.length) failures.push(`lost: ${lost.length} (${lost.slice(0, 5).map((entry) => `${entry.key}: ${entry.why}`).join('; ')})`);
  if (duplicateProviderBatches) failures.push(`duplicate provider batches: ${duplicateProviderBatches} (${duplicateProviderExamples.slice(0, 3).join('; ')})`);
  if (duplicateHandlerEffects) failures.push(`duplicate handler effects: ${duplicateHandlerEffects} (${duplicateEffectExamples.slice(0, 3).join('; ')})`);
  if (stalled.length) failures.push(`stalled: ${stalled.length} (${stalled.slice(0, 5).map((entry) => `${entry.key}: ${entry.why}`).join('; ')})`);
  if (mismatchKeys.size) failures.push(`dead-letter mismatches: ${mismatchKeys.size} (${mismatchExamples.slice(0, 3).join('; ')})`);

  return {
    lost: lost.length,
    duplicateProviderBatches,
    duplicateHandlerEffects,
    stalled: stalled.length,
    deadLetterMismatches: mismatchKeys.size,
    failures,
    details: {
      terminal: terminalCounts,
      waiting,
      waitingExamples: waitingExamples.slice(0, 30),
      lostItems: lost.slice(0, 50),
      lostRequests,
      lostRequestExamples,
      stalledItems: stalled.slice(0, 50),
      duplicateProviderExamples: duplicateProviderExamples.slice(0, 20),
      duplicateEffectExamples: duplicateEffectExamples.slice(0, 20),
      deadLetterMismatchExamples: mismatchExamples.slice(0, 20),
      deadLetters: {
        open: openLetters.length,
        total: allLetters.length,
        requeued: allLetters.filter((letter) => letter.resolution === 'requeued').length,
        discarded: allLetters.filter((letter) => letter.resolution === 'discarded').length,
        checkedInPostgres: consistency.checkedInPostgres,
        checkedInTemporal: consistency.checkedInTemporal,
      },
      providerBatches: created.length,
      handlerInvocations: invocations,
      jobReexecutions,
      anomalies: anomalies.slice(0, 50),
    },
  };
}

const ACTIVITY_STATES: Record<number, string> = { 1: 'scheduled', 2: 'started', 3: 'cancel requested', 4: 'paused', 5: 'pause requested' };

/** Where an unfinished batch or job stands in Temporal: parked, waiting on an activity or a timer, or stalled. */
export async function classifyOpen(temporal: Client, kind: 'batch' | 'job', workflowId: string, killedPids: ReadonlySet<number>): Promise<OpenState> {
  const handle = temporal.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { state: 'stalled', why: 'unfinished in PostgreSQL, workflow unknown to Temporal' };
    return { state: 'transient', why: `describe failed: ${(error as Error).message}` };
  }
  if (description.status.name !== 'RUNNING') {
    return { state: 'stalled', why: `${CLOSED_WHILE_UNFINISHED} ${description.status.name}` };
  }
  let state: { phase: string; nextPollAt?: string; deadLetter?: { deadLetterId: string; step: string } };
  try {
    state = kind === 'batch' ? await handle.query(batchStateQuery) : await handle.query(jobStateQuery);
  } catch (error) {
    return { state: 'transient', why: `state query failed: ${(error as Error).message}` };
  }
  if (state.deadLetter) return { state: 'parked', deadLetterId: state.deadLetter.deadLetterId, step: state.deadLetter.step };
  const pending = description.raw.pendingActivities ?? [];
  if (pending.length) {
    const activity = pending[0]!;
    const seconds = activity.lastStartedTime?.seconds;
    const started = activity.state === 2;
    const workerPid = Number(/^(\d+)@/.exec(activity.lastWorkerIdentity ?? '')?.[1]);
    // Polls on activity retries: a next poll far in the past that never started is a stall, as a timer never fired.
    const nextAttempt = activity.nextAttemptScheduleTime?.seconds;
    if (!started && nextAttempt && Number(nextAttempt) * 1000 < Date.now() - OVERDUE_TIMER_MS) {
      return { state: 'stalled', why: `${activity.activityType?.name ?? 'activity'} attempt due at ${new Date(Number(nextAttempt) * 1000).toISOString()} never started` };
    }
    return {
      state: 'pending_activity',
      activity: activity.activityType?.name ?? '?',
      attempt: activity.attempt ?? 0,
      activityState: ACTIVITY_STATES[Number(activity.state)] ?? String(activity.state ?? ''),
      lastFailure: activity.lastFailure?.message ?? undefined,
      startedAt: started && seconds ? new Date(Number(seconds) * 1000).toISOString() : undefined,
      onKilledWorker: started && killedPids.has(workerPid),
    };
  }
  if (kind === 'batch' && state.phase === 'polling' && state.nextPollAt) {
    // A poll timer; one far in the past with nothing else pending would be a timer that never fired.
    if (Date.parse(state.nextPollAt) > Date.now() - OVERDUE_TIMER_MS) return { state: 'pending_timer', nextPollAt: state.nextPollAt };
    return { state: 'stalled', why: `poll timer due at ${state.nextPollAt} never fired` };
  }
  if (description.raw.pendingWorkflowTask) return { state: 'transient', why: `workflow task pending (phase ${state.phase})` };
  return { state: 'stalled', why: `running with nothing pending (phase ${state.phase})` };
}

async function forEachLimited<T>(values: T[], limit: number, fn: (value: T) => Promise<void>): Promise<void> {
  const queue = [...values];
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, async () => {
    for (let value = queue.shift(); value !== undefined; value = queue.shift()) await fn(value);
  }));
}
