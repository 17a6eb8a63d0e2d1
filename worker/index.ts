/** `batchkeeper/worker`: what an app's worker process needs to run batchkeeper with its own handlers. */
export { bundleWorkflows, createBatchkeeperWorker, type BatchkeeperWorkerOptions } from './create-worker';
export { exampleHandlers, exampleJobExecutors } from './example-handlers';
export { METRIC_BUCKETS, METRIC_NAMES, meteredSteps } from './metrics';
export { installWorkerRuntime, type RuntimeSettings } from './runtime';
export { startStateGauges } from './state-gauges';
export { startTracing, type Tracing } from './tracing';
export { logRecord, workerLogger, type LogFormat } from './logging';
export {
  OPENAI_WEBHOOK_PATH, startWebhookServer, type WebhookLogRecord, type WebhookServer, type WebhookServerCounts, type WebhookServerOptions,
} from '../client/webhook-server';
export type { StepMetrics } from '../activities/step-metrics';
export type {
  BatchFailureContext, BatchHandler, BatchHandlerContext, BatchHandlerRegistry, JobContext, JobExecutor, JobExecutorRegistry,
} from '../activities/handlers';
export { createProviders, type ProvidersConfig } from '../providers/registry';
export { AnthropicBatchProvider, type AnthropicProviderOptions } from '../providers/anthropic';
export { GeminiBatchProvider, type GeminiProviderOptions } from '../providers/gemini';
export { OpenAIBatchProvider, type OpenAIProviderOptions } from '../providers/openai';
export { OpenAICompatibleBatchProvider, type OpenAICompatibleOptions } from '../providers/openai-compatible';
export { XAIBatchProvider, type XAIProviderOptions } from '../providers/xai';
export { ProviderError } from '../providers/errors';
export type {
  BatchProvider, ProviderRequest, ProviderResultLine, ProviderStatusReport, SubmitInput, SubmitResult, TokenUsage,
} from '../providers/types';
