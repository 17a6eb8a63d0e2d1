/**
 * `batchkeeper/testing`: the fake provider server (OpenAI, Anthropic, Gemini, xAI and OpenAI-compatible batch APIs)
 * that batchkeeper's own tests use, so apps can test their handlers end to end against it through the real adapters.
 */
export { startFakeProvider, type FakeProvider, type FakeProviderOptions } from './fake-provider/server';
export type { BatchRule, FakeConfig, OutcomeSpec, QueueLimit, RequestOutcome } from './fake-provider/config';
export type { FaultSpec, FaultRatesSpec } from './fake-provider/faults';
export { newWebhookSecret, signedWebhook, signWebhook, type WebhookDelivery, type WebhookTarget } from './fake-provider/webhooks';
