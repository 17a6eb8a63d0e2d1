import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createActivities } from '../activities';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import type { PriceTable } from '../domain/prices';
import type { RetryConfig } from '../domain/retry-policy';
import type { BatchProvider } from '../providers/types';

export const WORKFLOWS_PATH = require.resolve('../workflows');

export interface BatchkeeperWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  pool: Pool;
  providers: Map<string, BatchProvider>;
  handlers: BatchHandlerRegistry;
  jobExecutors?: JobExecutorRegistry;
  retry?: RetryConfig;
  /** Token prices for cost reporting. */
  prices?: PriceTable;
  /** A prebuilt bundle (tests and benchmarks build it once); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkflowBundle;
  maxConcurrentActivityTaskExecutions?: number;
  maxCachedWorkflows?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  identity?: string;
  /**
   * Payload codec and failure converter (e.g. `dataConverterFromEnv()` from codec/ for AES-GCM encryption). The
   * client that starts workflows must use the same one.
   */
  dataConverter?: DataConverter;
}

/** Wires activities (built from their dependencies) and the workflow code into one worker. */
export async function createBatchkeeperWorker(options: BatchkeeperWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    ...(options.identity ? { identity: options.identity } : {}),
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({
      pool: options.pool,
      providers: options.providers,
      handlers: options.handlers,
      jobExecutors: options.jobExecutors,
      retry: options.retry,
      prices: options.prices,
      temporal: new Client({ connection: options.connection, namespace: options.namespace ?? 'default', dataConverter: options.dataConverter }),
      taskQueue: options.taskQueue,
    }),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 100,
    maxCachedWorkflows: options.maxCachedWorkflows,
    maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTaskExecutions,
  });
}

export async function bundleWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
}

const quietBundlerLogger = {
  log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined,
  warn: (message: string) => console.warn(message), error: (message: string) => console.error(message),
};
