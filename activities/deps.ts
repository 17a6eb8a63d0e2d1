import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { BatchProvider } from '../providers/types';
import type { BatchHandlerRegistry, JobExecutorRegistry } from './handlers';
import type { AdmissionConfig } from '../domain/admission';
import type { PriceTable } from '../domain/prices';
import type { RetryConfig } from '../domain/retry-policy';
import type { StepMetrics } from './step-metrics';

/** Everything activities need, passed in by the worker (the activities-dependency-injection pattern). */
export interface ActivityDeps {
  pool: Pool;
  providers: Map<string, BatchProvider>;
  handlers: BatchHandlerRegistry;
  jobExecutors?: JobExecutorRegistry;
  retry?: RetryConfig;
  /** For the sweep: it describes and restarts workflows. */
  temporal?: Client;
  taskQueue?: string;
  /** Token prices for cost reporting. */
  prices?: PriceTable;
  /** Admission budgets per provider and model (BATCHKEEPER_ADMISSION); none by default: every batch is admitted. */
  admission?: AdmissionConfig;
  /** For the sweep: drop bodies of batches whose handler ran this many days ago (0 or unset: never). */
  retentionDays?: number;
  /** Where the steps report metrics; none by default. */
  metrics?: StepMetrics;
}
