/**
 * The main suite's batch lifecycle file, run again against the cluster: OpenAI and Anthropic batches through the real
 * adapters and the fake provider, per-request failures, a provider-side failure, idempotent submission and a
 * non-retryable error, the same assertions, but on PostgreSQL persistence and SQL visibility with the workflows'
 * shards on two history hosts and their task queues on two matching hosts.
 */
import '../batch-lifecycle.test';
