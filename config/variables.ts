/**
 * Every environment variable batchkeeper reads, with its type, default and meaning: the one place they are declared.
 * config/load.ts parses them with these schemas; the README's configuration table lists exactly these (a test checks).
 * Empty values count as unset.
 */
import { z } from 'zod';
import { parseCodecKeys } from '../codec/keys';
import { validateRetrySettings } from '../domain/retry-policy';
import { DEFAULT_ADMISSION, type AdmissionConfig } from '../domain/admission';
import type { PriceTable } from '../domain/prices';
import type { RetrySettings } from '../domain/types';

/** Which processes read a variable; each loads only the groups it needs, so the CLI never fails on worker settings. */
export type ConfigGroup = 'database' | 'temporal' | 'providers' | 'worker' | 'codec' | 'codecServer' | 'cli' | 'webhooks';

/** The groups a worker process reads (worker/main.ts; docker-compose.yml passes each of their variables on). */
export const WORKER_CONFIG_GROUPS = ['database', 'temporal', 'providers', 'worker', 'codec'] as const satisfies readonly ConfigGroup[];

export interface VariableSpec {
  group: ConfigGroup;
  /** Parses the raw text; a failure's message says what the value must be. */
  schema: z.ZodType;
  /** The default as the README shows it; absent when unset means "off" or "none". */
  default?: string;
  description: string;
  /** Never echoed in an error message. */
  secret?: boolean;
}

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().trim().regex(/^-?\d+$/, `must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`)
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const flag = z.enum(['0', '1'], { error: 'must be 0 or 1' }).transform((value) => value === '1');

const text = z.string();

const url = (what: string) => z.string().trim().refine((value) => {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}, `must be ${what}`);

function json<T>(shape: z.ZodType<T>, example: string) {
  return z.string().transform((raw, ctx): T => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be JSON, e.g. ${example}` });
      return z.NEVER;
    }
    const result = shape.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      ctx.addIssue({ code: 'custom', message: `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message} (e.g. ${example})` });
      return z.NEVER;
    }
    return result.data;
  });
}

const price = z.object({
  inputPerMTokUsd: z.number().min(0),
  outputPerMTokUsd: z.number().min(0),
  cachedInputPerMTokUsd: z.number().min(0).optional(),
  cacheWritePerMTokUsd: z.number().min(0).optional(),
  reasoningPerMTokUsd: z.number().min(0).optional(),
}).strict();
const priceTable: z.ZodType<PriceTable> = z.object({
  batchDiscount: z.number().min(0).max(1).optional(),
  models: z.record(z.string(), z.record(z.string(), price)),
}).strict();

const positive = z.number().int().positive();
const admissionBudget = z.object({ maxEnqueuedTokens: positive.optional(), maxRequests: positive.optional(), maxOpenBatches: positive.optional() }).strict()
  .refine((budget) => Object.keys(budget).length > 0, 'a budget needs maxEnqueuedTokens, maxRequests or maxOpenBatches');
const admission: z.ZodType<AdmissionConfig> = z.object({
  budgets: z.record(z.string().min(1), z.record(z.string().min(1), admissionBudget)),
  recheckMs: z.number().int().min(100).max(3_600_000).optional(),
  queueLimitBackoff: z.object({ initialMs: z.number().int().min(100), maxMs: z.number().int().min(100) }).strict()
    .refine((backoff) => backoff.maxMs >= backoff.initialMs, 'maxMs must be at least initialMs').optional(),
}).strict().transform((value) => ({
  budgets: value.budgets,
  recheckMs: value.recheckMs ?? DEFAULT_ADMISSION.recheckMs,
  queueLimitBackoff: value.queueLimitBackoff ?? DEFAULT_ADMISSION.queueLimitBackoff,
})) as unknown as z.ZodType<AdmissionConfig>;

const retrySettings = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  try {
    validateRetrySettings(value as Partial<RetrySettings>, 'retry');
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message.replace(/^retry\.?/, '') });
  }
}) as unknown as z.ZodType<Partial<RetrySettings>>;

const openaiCompatibleEntry = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,39}$/, 'must be a lower-case registry name'),
  baseURL: z.url(),
  apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must name an environment variable'),
  apiVersion: z.string().optional(),
  endpoint: z.string().optional(),
  completionWindow: z.string().optional(),
  deleteFiles: z.boolean().optional(),
  fileExpirySeconds: z.number().int().min(3600).max(2_592_000).optional(),
}).strict();
export type OpenAICompatibleEntry = z.infer<typeof openaiCompatibleEntry>;

const codecKeys = z.string().transform((raw, ctx) => {
  try {
    return parseCodecKeys(raw);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const list = z.string().transform((raw) => raw.split(',').map((item) => item.trim()).filter(Boolean));

const schemaName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a PostgreSQL schema name of a-z, 0-9 and _ (at most 63)');

const providerKey = (provider: string) => ({ group: 'providers' as const, schema: text, secret: true, description: `API key of ${provider}; the provider is configured when it is set.` });
const providerUrl = (provider: string, example: string) => ({
  group: 'providers' as const, schema: url('a URL'), description: `Base URL of ${provider}'s API (default the public endpoint; e.g. ${example} for a proxy or the fake provider).`,
});

export const VARIABLES = {
  DATABASE_URL: { group: 'database', schema: url('a postgres:// URL'), secret: true, description: 'PostgreSQL of batchkeeper (and of the handlers\' `context.db`). Required by the worker and the CLI.' },
  BATCHKEEPER_PG_SCHEMA: { group: 'database', schema: schemaName, default: 'batchkeeper', description: 'PostgreSQL schema that holds every batchkeeper table, apart from the app\'s own tables.' },
  BATCHKEEPER_PG_POOL_MAX: { group: 'database', schema: integer(1, 1000), default: '10', description: 'PostgreSQL connections of one process.' },
  BATCHKEEPER_PG_PREPARED_STATEMENTS: { group: 'database', schema: flag, default: '1', description: 'Run parameterised statements as prepared statements; 0 behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21).' },

  TEMPORAL_ADDRESS: { group: 'temporal', schema: text, default: 'localhost:7233', description: 'Temporal frontend (read by `@temporalio/envconfig`, with TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE).' },
  TEMPORAL_NAMESPACE: { group: 'temporal', schema: text, default: 'default', description: 'Temporal namespace.' },
  TEMPORAL_API_KEY: { group: 'temporal', schema: text, secret: true, description: 'Temporal Cloud (or proxy) API key; implies TLS.' },
  BATCHKEEPER_TASK_QUEUE: { group: 'temporal', schema: z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'must be 1-200 characters of [A-Za-z0-9_.:-]'), default: 'batchkeeper', description: 'Task queue the worker polls and the client starts workflows on.' },

  OPENAI_API_KEY: providerKey('OpenAI'),
  OPENAI_BASE_URL: providerUrl('OpenAI', 'http://127.0.0.1:4010/v1'),
  ANTHROPIC_API_KEY: providerKey('Anthropic'),
  ANTHROPIC_BASE_URL: providerUrl('Anthropic', 'http://127.0.0.1:4010'),
  GEMINI_API_KEY: providerKey('Google Gemini'),
  GEMINI_BASE_URL: providerUrl('Gemini', 'http://127.0.0.1:4010'),
  XAI_API_KEY: providerKey('xAI'),
  XAI_BASE_URL: providerUrl('xAI', 'http://127.0.0.1:4010/v1'),
  BATCHKEEPER_OPENAI_COMPATIBLE: {
    group: 'providers', schema: json(z.array(openaiCompatibleEntry), '[{"name":"groq","baseURL":"https://api.groq.com/openai/v1","apiKeyEnv":"GROQ_API_KEY"}]'),
    description: 'OpenAI-compatible batch APIs, each under its own name: a JSON array of {name, baseURL, apiKeyEnv, apiVersion?, endpoint?, completionWindow?, deleteFiles?, fileExpirySeconds?}; the key is read from the variable apiKeyEnv names, and an entry whose key is unset is skipped.',
  },
  BATCHKEEPER_PROVIDER_TIMEOUT_MS: { group: 'providers', schema: integer(100, 600_000), default: '60000', description: 'Per-request timeout of every provider call (headers; result downloads stream past it).' },
  BATCHKEEPER_DELETE_PROVIDER_FILES: { group: 'providers', schema: flag, default: '1', description: 'Delete a batch\'s files at the provider (input, output and error files of OpenAI, xAI, Gemini) once its results are stored and its handler ran; 0 keeps them (an OpenAI-compatible entry\'s deleteFiles overrides it).' },
  BATCHKEEPER_PROVIDER_FILE_EXPIRY_S: { group: 'providers', schema: integer(0, 2_592_000), default: '604800', description: 'OpenAI `expires_after` of uploaded input files and `output_expires_after` of output and error files, in seconds (3600 to 2592000); 0 sends none. OpenAI-compatible entries send it only with their own fileExpirySeconds.' },

  BATCHKEEPER_HANDLERS_MODULE: { group: 'worker', schema: text, description: 'Module (path) exporting `handlers` and/or `jobExecutors` that the stock worker registers beside its examples.' },
  BATCHKEEPER_PRICES: {
    group: 'worker', schema: json(priceTable, '{"batchDiscount":0.5,"models":{"openai":{"gpt-4o-mini":{"inputPerMTokUsd":0.15,"outputPerMTokUsd":0.6}}}}'),
    description: 'Token list prices per million tokens by provider and model (JSON) for `cost_usd`: `inputPerMTokUsd`, `outputPerMTokUsd`, optional `cachedInputPerMTokUsd`, `cacheWritePerMTokUsd`, `reasoningPerMTokUsd` (else input and output prices); the batch discount (default 0.5) is applied.',
  },
  BATCHKEEPER_RETRY_DEFAULTS: {
    group: 'worker', schema: json(retrySettings, '{"maximumAttempts":10,"initialIntervalMs":1000,"backoffCoefficient":2,"maximumIntervalMs":300000}'),
    description: 'Retry settings (JSON) for every step, over the built-in defaults (10 attempts, 1 s doubling to 5 min; polls 25).',
  },
  BATCHKEEPER_ADMISSION: {
    group: 'worker', schema: json(admission, '{"budgets":{"openai":{"gpt-4o-mini":{"maxEnqueuedTokens":2000000}},"anthropic":{"*":{"maxRequests":100000}}},"recheckMs":30000,"queueLimitBackoff":{"initialMs":60000,"maxMs":1800000}}'),
    description: 'Admission control (JSON): budgets per provider and model (`*`: one budget for all models of the provider) of maxEnqueuedTokens, maxRequests and maxOpenBatches; a batch over budget waits `queued` and is submitted when capacity frees, oldest first. recheckMs (default 30000) and queueLimitBackoff (default 60 s doubling to 30 min, after a provider refused a batch for a full queue). Unset: no budgets (queue-limit refusals still back off). Give every worker the same value.',
  },
  BATCHKEEPER_RETENTION_DAYS: { group: 'worker', schema: integer(0, 36_500), default: '0', description: 'Drop request and result bodies of batches whose handler ran more than this many days ago (rows, statuses, try counts, tokens, costs and events are kept); applied by the hourly sweep. 0: keep bodies forever.' },
  BATCHKEEPER_INSTALL_SCHEDULES: { group: 'worker', schema: flag, default: '0', description: 'Install (or update) the hourly recovery sweep schedule when the worker starts.' },
  BATCHKEEPER_STARTUP_TIMEOUT_MS: { group: 'worker', schema: integer(0, 86_400_000), default: '120000', description: 'How long a starting worker waits for PostgreSQL and Temporal before it exits.' },
  BATCHKEEPER_MAX_CONCURRENT_ACTIVITIES: { group: 'worker', schema: integer(1, 10_000), default: '100', description: 'Activities one worker runs at once.' },
  BATCHKEEPER_MAX_CONCURRENT_WORKFLOW_TASKS: { group: 'worker', schema: integer(2, 10_000), default: 'the SDK\'s (40)', description: 'Workflow tasks one worker runs at once.' },
  BATCHKEEPER_MAX_CACHED_WORKFLOWS: { group: 'worker', schema: integer(0, 10_000_000), default: 'the SDK\'s (from the heap size)', description: 'Workflows kept in the worker\'s cache (see worker sizing).' },
  BATCHKEEPER_METRICS_ADDRESS: {
    group: 'worker', schema: z.string().regex(/^[\w.-]+:\d{1,5}$|^\[[0-9a-f:]+\]:\d{1,5}$/i, 'must be host:port, e.g. 127.0.0.1:9464'),
    description: 'Serve Prometheus metrics (the Temporal SDK\'s and batchkeeper\'s, see Metrics) at http://host:port/metrics. Unset: no endpoint.',
  },
  BATCHKEEPER_LOG_FORMAT: { group: 'worker', schema: z.enum(['json', 'text'], { error: 'must be json or text' }), default: 'json', description: 'Worker log lines: one JSON object each (with batchId or jobId, step and attempt), or the SDK\'s text.' },
  BATCHKEEPER_LOG_LEVEL: { group: 'worker', schema: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'], { error: 'must be TRACE, DEBUG, INFO, WARN or ERROR' }), default: 'INFO', description: 'Lowest level of the worker\'s log lines (the SDK core\'s own lines are forwarded from WARN up, or from this level when it is DEBUG or TRACE).' },
  BATCHKEEPER_OTLP_TRACES_URL: {
    group: 'worker', schema: url('an OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces'),
    description: 'Trace workflows and activities with OpenTelemetry through Temporal\'s interceptors, exported to this OTLP/HTTP endpoint (needs the optional @temporalio/interceptors-opentelemetry and @opentelemetry packages). Unset: no tracing.',
  },

  BATCHKEEPER_CODEC_KEYS: {
    group: 'codec', schema: codecKeys, secret: true,
    description: 'Payload encryption keys `keyId:base64key[,oldId:base64key]`, newest first (32 bytes each); set the same value on the worker, the client, the CLI and the codec server. Unset: payloads are not encrypted.',
  },
  BATCHKEEPER_CODEC_PORT: { group: 'codecServer', schema: integer(0, 65_535), default: '8888', description: 'Port of the codec server (`npm run codec-server`, `node dist/bin/codec-server.js`).' },
  BATCHKEEPER_CODEC_HOST: { group: 'codecServer', schema: text, default: '127.0.0.1', description: 'Address the codec server binds; keep it private (whoever reaches /decode reads payloads).' },
  BATCHKEEPER_CODEC_CORS_ORIGINS: { group: 'codecServer', schema: list, default: 'Temporal Web on localhost:8233 and :8080', description: 'Comma-separated Temporal Web origins allowed to call the codec server.' },
  BATCHKEEPER_CODEC_AUTH_TOKEN: { group: 'codecServer', schema: text, secret: true, description: 'When set, callers of the codec server must send `Authorization: Bearer <token>`.' },
  BATCHKEEPER_CODEC_NAMESPACES: { group: 'codecServer', schema: list, description: 'When set, the comma-separated namespaces the codec server serves.' },

  BATCHKEEPER_OPENAI_WEBHOOK_SECRET: {
    group: 'webhooks', schema: z.string().trim().regex(/^whsec_[A-Za-z0-9+/]{16,}={0,2}$/, 'must be the signing secret OpenAI shows for the endpoint: whsec_ followed by base64'), secret: true,
    description: 'Signing secret of the OpenAI webhook endpoint (`batchkeeper webhooks serve`); events are verified with it through the openai SDK. Required by that command.',
  },
  BATCHKEEPER_WEBHOOK_HOST: { group: 'webhooks', schema: text, default: '127.0.0.1', description: 'Address the webhook endpoint binds; put a TLS-terminating proxy in front of it to take OpenAI\'s calls.' },
  BATCHKEEPER_WEBHOOK_PORT: { group: 'webhooks', schema: integer(0, 65_535), default: '8787', description: 'Port of the webhook endpoint (POST /webhooks/openai).' },
  BATCHKEEPER_WEBHOOK_TOLERANCE_S: { group: 'webhooks', schema: integer(1, 3600), default: '300', description: 'How far (seconds) a webhook\'s signed timestamp may be from now; older or newer deliveries are refused as stale.' },

  BATCHKEEPER_OPERATOR: { group: 'cli', schema: text, description: 'Name recorded with dead-letter decisions made through the CLI.' },
  BATCHKEEPER_DEBUG: { group: 'cli', schema: flag, default: '0', description: 'Print the stack trace of unexpected CLI errors.' },
} satisfies Record<string, VariableSpec>;

export type VariableName = keyof typeof VARIABLES;
