import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { batchStateQuery, pollNowSignal } from '../domain/definitions';
import { isTerminalBatchStatus } from '../domain/statuses';
import { startSubjectWorkflow } from '../domain/workflow-start';
import { getBatch, listUndispatchedBatchIds, purgeBodiesOlderThan } from '../db/batches-store';
import { appendEvent } from '../db/events-store';
import { getJob, listUnfinishedJobIds } from '../db/jobs-store';
import { releaseFinishedAdmissions } from './admission';
import type { ActivityDeps } from './deps';

/** Counts per outcome of one sweep; shown in Temporal Web as the sweep workflow's result. */
export interface SweepResult {
  checkedBatches: number;
  checkedJobs: number;
  /** Non-terminal batches whose workflow was closed or missing, restarted (they read the provider status first). */
  recovered: number;
  /** Of those, past their deadline: the restarted run expires them after a final status read. */
  recoveredPastDeadline: number;
  /** Terminal batches whose handler never ran, restarted to fetch results if needed and dispatch. */
  dispatched: number;
  /** Running batches past their deadline that were woken to expire now. */
  expiredNudged: number;
  jobsRecovered: number;
  /** Dead-lettered workflows are waiting for an operator and are left alone. */
  parked: number;
  /** Admission permits of rounds that were over but still held (their workflow gone before it released them). */
  permitsReleased?: number;
  failed: number;
  failures: { id: string; error: string }[];
  /** Batches whose request and result bodies retention dropped this run (BATCHKEEPER_RETENTION_DAYS). */
  bodiesPurged?: number;
}

/** Batches retention purges per statement; the sweep repeats until none is left. */
const PURGE_PAGE = 200;

/** How long past its deadline a running batch may go before the sweep wakes it. */
const DEADLINE_GRACE_MS = 60_000;

/**
 * The safety net behind the workflows, run by the schedule: recover, then expire. Each batch is handled on its own,
 * so one failure never stops the sweep.
 */
export function createSweepOrphans(deps: ActivityDeps) {
  const { pool } = deps;

  function requireTemporal(): { temporal: Client; taskQueue: string } {
    if (!deps.temporal || !deps.taskQueue) throw new Error('the sweep needs a Temporal client and task queue in the worker options');
    return { temporal: deps.temporal, taskQueue: deps.taskQueue };
  }

  async function workflowStatus(temporal: Client, workflowId: string): Promise<string> {
    try {
      return (await temporal.workflow.getHandle(workflowId).describe()).status.name;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return 'MISSING';
      throw error;
    }
  }

  return async function sweepOrphans(input: { limit?: number } = {}): Promise<SweepResult> {
    const { temporal, taskQueue } = requireTemporal();
    const limit = input.limit ?? 5000;
    const result: SweepResult = {
      checkedBatches: 0, checkedJobs: 0, recovered: 0, recoveredPastDeadline: 0, dispatched: 0, expiredNudged: 0,
      jobsRecovered: 0, parked: 0, failed: 0, failures: [],
    };
    try {
      const released = await releaseFinishedAdmissions(deps);
      if (released > 0) result.permitsReleased = released;
    } catch (error) {
      result.failed += 1;
      result.failures.push({ id: 'admissions', error: error instanceof Error ? error.message : String(error) });
    }
    for (const id of await listUndispatchedBatchIds(pool, limit)) {
      result.checkedBatches += 1;
      Context.current().heartbeat({ checkedBatches: result.checkedBatches });
      try {
        const batch = await getBatch(pool, id);
        if (!batch || batch.handlerDispatchedAt) continue;
        const status = await workflowStatus(temporal, batch.workflowId);
        const pastDeadline = batch.deadlineAt !== null && batch.deadlineAt.getTime() + DEADLINE_GRACE_MS < Date.now();
        if (status === 'RUNNING') {
          if (!pastDeadline || isTerminalBatchStatus(batch.status)) continue;
          const handle = temporal.workflow.getHandle(batch.workflowId);
          const state = await handle.query(batchStateQuery);
          if (state.deadLetter) {
            result.parked += 1;
            continue;
          }
          await handle.signal(pollNowSignal);
          await appendEvent(pool, 'batch', batch.id, 'sweep_expiry_nudged', {});
          result.expiredNudged += 1;
          continue;
        }
        if (!(await startSubjectWorkflow(temporal, { kind: 'batch', batch }, taskQueue, 'restart'))) continue; // another start won
        const outcome = isTerminalBatchStatus(batch.status) ? 'dispatched' : 'recovered';
        await appendEvent(pool, 'batch', batch.id, `sweep_${outcome}`, { detail: { previousWorkflowStatus: status, pastDeadline } });
        if (outcome === 'dispatched') result.dispatched += 1;
        else {
          result.recovered += 1;
          if (pastDeadline) result.recoveredPastDeadline += 1;
        }
      } catch (error) {
        result.failed += 1;
        result.failures.push({ id, error: error instanceof Error ? error.message : String(error) });
      }
    }
    for (const id of await listUnfinishedJobIds(pool, limit)) {
      result.checkedJobs += 1;
      try {
        const job = await getJob(pool, id);
        if (!job) continue;
        const status = await workflowStatus(temporal, job.workflowId);
        if (status === 'RUNNING') continue;
        if (await startSubjectWorkflow(temporal, { kind: 'job', job }, taskQueue, 'restart')) {
          result.jobsRecovered += 1;
          await appendEvent(pool, 'job', job.id, 'sweep_recovered', { detail: { previousWorkflowStatus: status } });
        }
      } catch (error) {
        result.failed += 1;
        result.failures.push({ id, error: error instanceof Error ? error.message : String(error) });
      }
    }
    result.failures = result.failures.slice(0, 50);
    if (deps.retentionDays && deps.retentionDays > 0) {
      result.bodiesPurged = 0;
      for (let purged = PURGE_PAGE; purged === PURGE_PAGE;) {
        purged = await purgeBodiesOlderThan(pool, deps.retentionDays, PURGE_PAGE);
        result.bodiesPurged += purged;
        Context.current().heartbeat({ bodiesPurged: result.bodiesPurged });
      }
    }
    return result;
  };
}
