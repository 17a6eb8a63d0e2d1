/**
 * `batchkeeper`: what app code needs to submit and watch batches and jobs, and to act on them as an operator. Loads
 * neither the worker's native bridge nor the provider SDKs (those come with `batchkeeper/worker`).
 */
export { BatchkeeperClient, type BatchDetails, type BatchkeeperClientOptions, type StartedJob, type SubmittedBatch } from './batchkeeper-client';
export {
  BatchkeeperAdmin, type BulkOptions, type BulkResult, type ConsistencyReport, type DeadLetterDecision, type WorkflowSummary,
} from './admin';
export {
  BatchkeeperError, IdempotencyConflictError, NotApplicableError, NotFoundError, UnavailableError, ValidationError, WaitTimeoutError,
} from './errors';
export { installSweepSchedule, SWEEP_SCHEDULE_ID } from './schedules';
export type { SubmitBatchInput } from './validate-batch';
export type { StartJobInput } from './validate-job';
export { buildVisibilityQuery, type WorkflowFilter } from './visibility-query';

export { ConfigError, loadConfig, type BatchkeeperConfig, type DatabaseConfig, type TemporalConfig } from '../config/load';
export { VARIABLES as CONFIG_VARIABLES } from '../config/variables';
export { encryptingDataConverter } from '../codec/data-converter';
export { newCodecKeyEntry, parseCodecKeys, type CodecKeyring } from '../codec/keys';
export { migrateDatabase } from '../db/migrate';
export { createPool, inTransaction, type PoolOptions } from '../db/pool';
export { DEFAULT_SCHEMA } from '../db/schema';
export type { BatchRecord } from '../db/batches-store';
export type { DeadLetterFilter, DeadLetterRecord } from '../db/dead-letters-store';
export type { EventRecord } from '../db/events-store';
export type { FailedWorkFilter, FailedWorkRecord } from '../db/failed-work-store';
export type { JobRecord } from '../db/jobs-store';
export type { RequestRecord } from '../db/requests-store';
export type { StepAttemptRecord } from '../db/steps-store';

export { DEFAULT_MAX_AGE_MS, DEFAULT_POLL_SCHEDULE_MS } from '../domain/poll-schedule';
export type { ModelPrice, PriceTable } from '../domain/prices';
export { KNOWN_PROVIDER_LIMITS, MAX_LOGICAL_REQUESTS, providerLimitsTable, type ProviderLimits, type ProviderLimitsTable } from '../domain/provider-limits';
export { DEFAULT_RETRY, type RetryConfig } from '../domain/retry-policy';
export * as searchAttributes from '../domain/search-attributes';
export {
  BATCH_STATUSES, JOB_STATUSES, REQUEST_STATUSES, TERMINAL_BATCH_STATUSES, isTerminalBatchStatus,
  type BatchOutcome, type BatchStatus, type JobStatus, type RequestStatus,
} from '../domain/statuses';
export type {
  BatchStep, BatchWorkflowState, DeadLetterInfo, JobStep, JobWorkflowState, RequestCounts, ResultSummary, RetrySettings,
  StepName, SubjectKind,
} from '../domain/types';
export { BATCH_WORKFLOW_TYPE, JOB_WORKFLOW_TYPE, SWEEP_WORKFLOW_TYPE, batchWorkflowId, jobWorkflowId } from '../domain/workflow-ids';
