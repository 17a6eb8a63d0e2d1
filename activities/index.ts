import { createAdmitBatch } from './admit-batch';
import { createCancelAtProvider } from './cancel-at-provider';
import { createCompleteStragglers } from './complete-stragglers';
import { countedProvider } from './counted-provider';
import type { ActivityDeps } from './deps';
import { createDeleteProviderFiles } from './delete-provider-files';
import { createDispatchHandler } from './dispatch-handler';
import { createExecuteJob } from './execute-job';
import { createFetchResults } from './fetch-results';
import { createLoadBatchPlan } from './load-batch-plan';
import { createLoadJobPlan } from './load-job-plan';
import { createNotifyDiscarded } from './notify-discarded';
import { createPlanResubmission } from './plan-resubmission';
import { createPollBatch } from './poll-batch';
import { createPollUntilChange } from './poll-until-change';
import { createRecordDeadLetter } from './record-dead-letter';
import { createRecordDeadline } from './record-deadline';
import { createRequeueRefusedBatch } from './requeue-refused-batch';
import { createResolveDeadLetterRecord } from './resolve-dead-letter';
import { NO_METRICS } from './step-metrics';
import { createSubmitBatch } from './submit-batch';
import { createSweepOrphans } from './sweep-orphans';
import { createWithdrawAdmission } from './withdraw-admission';

/**
 * All activities of the worker, built from their dependencies; each lives in the file named after it. With metrics,
 * every provider call is counted on the way.
 */
export function createActivities(given: ActivityDeps) {
  const metrics = given.metrics ?? NO_METRICS;
  const providers = given.metrics
    ? new Map([...given.providers].map(([name, provider]) => [name, countedProvider(provider, metrics)]))
    : given.providers;
  const deps: ActivityDeps = { ...given, providers, metrics };
  return {
    loadBatchPlan: createLoadBatchPlan(deps),
    admitBatch: createAdmitBatch(deps),
    requeueRefusedBatch: createRequeueRefusedBatch(deps),
    withdrawAdmission: createWithdrawAdmission(deps),
    submitBatch: createSubmitBatch(deps),
    pollBatch: createPollBatch(deps),
    pollUntilChange: createPollUntilChange(deps),
    cancelAtProvider: createCancelAtProvider(deps),
    fetchResults: createFetchResults(deps),
    planResubmission: createPlanResubmission(deps),
    completeStragglers: createCompleteStragglers(deps),
    dispatchHandler: createDispatchHandler(deps),
    deleteProviderFiles: createDeleteProviderFiles(deps),
    recordDeadline: createRecordDeadline(deps),
    recordDeadLetter: createRecordDeadLetter(deps),
    resolveDeadLetterRecord: createResolveDeadLetterRecord(deps),
    notifyDiscarded: createNotifyDiscarded(deps),
    loadJobPlan: createLoadJobPlan(deps),
    executeJob: createExecuteJob(deps),
    sweepOrphans: createSweepOrphans(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './deps';
export type { BatchHandler, BatchHandlerContext, BatchHandlerRegistry, JobExecutor, JobExecutorRegistry } from './handlers';
export type { AdmissionDecision } from './admission';
export type { StatusView } from './status-view';
export type { PollUntilChangeResult } from './poll-until-change';
export { NO_METRICS, type StepMetrics } from './step-metrics';
export type { SweepResult } from './sweep-orphans';
