import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client, type ClientPlugin } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkerPlugin, type WorkflowBundle, type WorkflowBundleOption } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createActivities } from '../activities';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import type { StepMetrics } from '../activities/step-metrics';
import { FAILURE_CONVERTER_PATH } from '../codec/data-converter';
import { checkoutBundle, RUNNING_FROM_SOURCE } from './checkout-bundle';
import type { AdmissionConfig } from '../domain/admission';
import type { PriceTable } from '../domain/prices';
import type { RetryConfig } from '../domain/retry-policy';
import type { BatchProvider } from '../providers/types';

export const WORKFLOWS_PATH = require.resolve('../workflows');

/**
 * Workflow bundles built with the package (tools/scripts/build.ts): one with Temporal's default failure converter,
 * one with the codec's (failures encoded as payloads, for encryption). A checkout has none and bundles at start (once
 * per state of its sources, worker/checkout-bundle.ts).
 */
export const PREBUILT_BUNDLES = {
  plain: path.join(__dirname, '..', 'workflow-bundle.js'),
  encodedFailures: path.join(__dirname, '..', 'workflow-bundle-encoded-failures.js'),
};

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
  /** Admission budgets per provider and model (`BATCHKEEPER_ADMISSION`, domain/admission.ts); none by default. */
  admission?: AdmissionConfig;
  /** The sweep drops request and result bodies of batches whose handler ran this many days ago; 0 or unset: never. */
  retentionDays?: number;
  /** The workflow code; default the bundle shipped with the package (or, in a checkout, one built at start). */
  workflowBundle?: WorkflowBundleOption;
  maxConcurrentActivityTaskExecutions?: number;
  maxCachedWorkflows?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  identity?: string;
  /**
   * Payload codec and failure converter (e.g. `encryptingDataConverter(keys)` from codec/ for AES-GCM encryption).
   * The client that starts workflows must use the same one.
   */
  dataConverter?: DataConverter;
  /** Where the steps report batchkeeper's metrics: `meteredSteps(Runtime.instance().metricMeter)` (worker/metrics.ts). */
  metrics?: StepMetrics;
  /**
   * Worker plugins, e.g. tracing's (worker/tracing.ts). Plugins that add workflow interceptors need them compiled
   * into the workflow code, so with plugins and no `workflowBundle` the workflows are bundled at start; plugins that
   * are also client plugins go to the client the activities use.
   */
  plugins?: Array<WorkerPlugin & Partial<ClientPlugin>>;
}

/** Wires activities (built from their dependencies) and the workflow code into one worker. */
export async function createBatchkeeperWorker(options: BatchkeeperWorkerOptions): Promise<Worker> {
  const namespace = options.namespace ?? 'default';
  const plugins = options.plugins ?? [];
  const clientPlugins = plugins.filter((plugin): plugin is WorkerPlugin & ClientPlugin => typeof plugin.configureClient === 'function');
  const workflowCode = options.workflowBundle
    ? { workflowBundle: options.workflowBundle }
    : plugins.length ? { workflowsPath: WORKFLOWS_PATH } : { workflowBundle: await defaultWorkflowBundle(options.dataConverter) };
  return Worker.create({
    connection: options.connection,
    namespace,
    taskQueue: options.taskQueue,
    ...(options.identity ? { identity: options.identity } : {}),
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
    ...workflowCode,
    ...(plugins.length ? { plugins } : {}),
    activities: createActivities({
      pool: options.pool,
      providers: options.providers,
      handlers: options.handlers,
      jobExecutors: options.jobExecutors,
      retry: options.retry,
      prices: options.prices,
      admission: options.admission,
      retentionDays: options.retentionDays,
      metrics: options.metrics,
      temporal: new Client({ connection: options.connection, namespace, dataConverter: options.dataConverter, plugins: clientPlugins }),
      taskQueue: options.taskQueue,
    }),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 100,
    maxCachedWorkflows: options.maxCachedWorkflows,
    maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTaskExecutions,
  });
}

/**
 * The prebuilt bundle that matches the data converter (the failure converter is compiled into workflow code), or a
 * fresh bundle when none matches: a checkout, or custom converters.
 */
async function defaultWorkflowBundle(dataConverter: DataConverter | undefined): Promise<WorkflowBundleOption> {
  if (!dataConverter?.payloadConverterPath) {
    const failureConverter = dataConverter?.failureConverterPath;
    const prebuilt = !failureConverter ? PREBUILT_BUNDLES.plain : failureConverter === FAILURE_CONVERTER_PATH ? PREBUILT_BUNDLES.encodedFailures : undefined;
    if (prebuilt && existsSync(prebuilt)) return { codePath: prebuilt };
  }
  return bundleWorkflows(dataConverter);
}

/** The workflow code as a bundle; from a checkout, built once per state of the sources (worker/checkout-bundle.ts). */
export async function bundleWorkflows(dataConverter?: Pick<DataConverter, 'failureConverterPath' | 'payloadConverterPath'>): Promise<WorkflowBundle> {
  const build = () => bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: dataConverter?.failureConverterPath,
    payloadConverterPath: dataConverter?.payloadConverterPath,
    logger: quietBundlerLogger,
  });
  // An app's payload converter is its own code, outside what the cache key covers.
  return RUNNING_FROM_SOURCE && !dataConverter?.payloadConverterPath ? checkoutBundle(dataConverter?.failureConverterPath, build) : build();
}

const quietBundlerLogger = {
  log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined,
  warn: (message: string) => console.warn(message), error: (message: string) => console.error(message),
};
