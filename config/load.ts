/**
 * Configuration from the environment, parsed once with the schemas of config/variables.ts. A wrong value fails at
 * start with every bad variable named and what it must be; secrets are never echoed.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { CodecKeyring } from '../codec/keys';
import type { AdmissionConfig } from '../domain/admission';
import type { PriceTable } from '../domain/prices';
import { providerLimitsTable, type ProviderLimitsTable } from '../domain/provider-limits';
import type { RetryConfig } from '../domain/retry-policy';
import type { ProvidersConfig } from '../providers/registry';
import { VARIABLES, type ConfigGroup, type OpenAICompatibleEntry, type VariableName } from './variables';

/** Missing or unusable configuration. `problems` holds one line per bad variable. */
export class ConfigError extends Error {
  readonly code = 'config';
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0]! : `configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export interface DatabaseConfig {
  url: string;
  schema: string;
  poolMax: number;
  preparedStatements: boolean;
}

export interface TemporalConfig {
  connectionOptions: NativeConnectionOptions;
  namespace: string;
  taskQueue: string;
}

export interface WorkerConfig {
  handlersModule?: string;
  prices?: PriceTable;
  /** Days after its handler ran that a batch's bodies are dropped by the sweep; 0 = never. */
  retentionDays: number;
  retry?: RetryConfig;
  admission?: AdmissionConfig;
  installSchedules: boolean;
  startupTimeoutMs: number;
  maxConcurrentActivityTaskExecutions: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  maxCachedWorkflows?: number;
  metricsAddress?: string;
  logFormat: 'json' | 'text';
  logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  otlpTracesUrl?: string;
}

export interface CodecServerConfig {
  port: number;
  host: string;
  allowedOrigins?: string[];
  authToken?: string;
  namespaces?: string[];
}

export interface WebhooksConfig {
  /** Undefined when BATCHKEEPER_OPENAI_WEBHOOK_SECRET is unset (the webhook command then refuses to start). */
  openaiSecret?: string;
  host: string;
  port: number;
  toleranceSeconds: number;
}

export interface CliConfig {
  operator?: string;
  debug: boolean;
}

export interface BatchkeeperConfig {
  database: DatabaseConfig;
  temporal: TemporalConfig;
  /** For createProviders(); `limits` is the table the client validates submissions against. */
  providers: ProvidersConfig & { limits: ProviderLimitsTable };
  worker: WorkerConfig;
  /** Undefined when payload encryption is off. */
  codec: { keys?: CodecKeyring };
  codecServer: CodecServerConfig;
  cli: CliConfig;
  webhooks: WebhooksConfig;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The raw values of the secret variables that are set (API keys, the database URL, codec keys, and the keys of
 * OpenAI-compatible endpoints), valid or not, for redacting them from anything printed.
 */
export function secretValues(env: Env): string[] {
  const names = Object.entries(VARIABLES).filter(([, spec]) => 'secret' in spec && spec.secret).map(([name]) => name);
  try {
    const entries = JSON.parse(env.BATCHKEEPER_OPENAI_COMPATIBLE ?? '[]') as { apiKeyEnv?: unknown }[];
    if (Array.isArray(entries)) for (const entry of entries) if (typeof entry?.apiKeyEnv === 'string') names.push(entry.apiKeyEnv);
  } catch {
    // not JSON: it names no key variable
  }
  return names.map((name) => env[name]).filter((value): value is string => Boolean(value));
}

/** Reads the variables of `groups` (all by default), collecting every problem before it throws. */
export function loadConfig<G extends ConfigGroup>(env: Env = process.env, groups?: readonly G[]): Pick<BatchkeeperConfig, G> {
  const wanted = new Set<ConfigGroup>(groups ?? (['database', 'temporal', 'providers', 'worker', 'codec', 'codecServer', 'cli', 'webhooks'] as const));
  const problems: string[] = [];
  const values = new Map<VariableName, unknown>();
  for (const [name, spec] of Object.entries(VARIABLES) as [VariableName, (typeof VARIABLES)[VariableName]][]) {
    if (!wanted.has(spec.group)) continue;
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) values.set(name, parsed.data);
    else problems.push(`${name} ${parsed.error.issues[0]?.message ?? 'is invalid'}${'secret' in spec && spec.secret ? '' : ` (got ${JSON.stringify(raw.slice(0, 80))})`}`);
  }
  const get = <N extends VariableName>(name: N) => values.get(name) as Parsed<N> | undefined;

  const config: Partial<BatchkeeperConfig> = {};
  if (wanted.has('database')) {
    const url = get('DATABASE_URL');
    if (!url && !problems.some((problem) => problem.startsWith('DATABASE_URL'))) {
      problems.push('DATABASE_URL is not set: point it at the PostgreSQL database batchkeeper uses');
    }
    config.database = {
      url: url ?? '',
      schema: get('BATCHKEEPER_PG_SCHEMA') ?? 'batchkeeper',
      poolMax: get('BATCHKEEPER_PG_POOL_MAX') ?? 10,
      preparedStatements: get('BATCHKEEPER_PG_PREPARED_STATEMENTS') ?? true,
    };
  }
  if (wanted.has('temporal')) {
    try {
      const connect = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
      config.temporal = {
        // envconfig sets `address: undefined` when nothing names one, which a plain spread would copy over the default.
        connectionOptions: { ...connect.connectionOptions, address: connect.connectionOptions.address ?? 'localhost:7233' },
        namespace: connect.namespace ?? 'default',
        taskQueue: get('BATCHKEEPER_TASK_QUEUE') ?? 'batchkeeper',
      };
    } catch (error) {
      problems.push(`Temporal connection settings (TEMPORAL_*): ${(error as Error).message}`);
    }
  }
  if (wanted.has('providers')) config.providers = providersConfig(env, get, problems);
  if (wanted.has('worker')) {
    const retryDefaults = get('BATCHKEEPER_RETRY_DEFAULTS');
    config.worker = {
      handlersModule: get('BATCHKEEPER_HANDLERS_MODULE'),
      prices: get('BATCHKEEPER_PRICES'),
      retentionDays: get('BATCHKEEPER_RETENTION_DAYS') ?? 0,
      retry: retryDefaults ? { defaults: retryDefaults } : undefined,
      admission: get('BATCHKEEPER_ADMISSION'),
      installSchedules: get('BATCHKEEPER_INSTALL_SCHEDULES') ?? false,
      startupTimeoutMs: get('BATCHKEEPER_STARTUP_TIMEOUT_MS') ?? 120_000,
      maxConcurrentActivityTaskExecutions: get('BATCHKEEPER_MAX_CONCURRENT_ACTIVITIES') ?? 100,
      maxConcurrentWorkflowTaskExecutions: get('BATCHKEEPER_MAX_CONCURRENT_WORKFLOW_TASKS'),
      maxCachedWorkflows: get('BATCHKEEPER_MAX_CACHED_WORKFLOWS'),
      metricsAddress: get('BATCHKEEPER_METRICS_ADDRESS'),
      logFormat: get('BATCHKEEPER_LOG_FORMAT') ?? 'json',
      logLevel: get('BATCHKEEPER_LOG_LEVEL') ?? 'INFO',
      otlpTracesUrl: get('BATCHKEEPER_OTLP_TRACES_URL'),
    };
  }
  if (wanted.has('codec')) config.codec = { keys: get('BATCHKEEPER_CODEC_KEYS') };
  if (wanted.has('codecServer')) {
    config.codecServer = {
      port: get('BATCHKEEPER_CODEC_PORT') ?? 8888,
      host: get('BATCHKEEPER_CODEC_HOST') ?? '127.0.0.1',
      allowedOrigins: get('BATCHKEEPER_CODEC_CORS_ORIGINS'),
      authToken: get('BATCHKEEPER_CODEC_AUTH_TOKEN'),
      namespaces: get('BATCHKEEPER_CODEC_NAMESPACES'),
    };
  }
  if (wanted.has('cli')) config.cli = { operator: get('BATCHKEEPER_OPERATOR'), debug: get('BATCHKEEPER_DEBUG') ?? false };
  if (wanted.has('webhooks')) {
    config.webhooks = {
      openaiSecret: get('BATCHKEEPER_OPENAI_WEBHOOK_SECRET'),
      host: get('BATCHKEEPER_WEBHOOK_HOST') ?? '127.0.0.1',
      port: get('BATCHKEEPER_WEBHOOK_PORT') ?? 8787,
      toleranceSeconds: get('BATCHKEEPER_WEBHOOK_TOLERANCE_S') ?? 300,
    };
  }
  if (problems.length) throw new ConfigError(problems);
  return config as Pick<BatchkeeperConfig, G>;
}

type Parsed<N extends VariableName> = ReturnType<(typeof VARIABLES)[N]['schema']['parse']>;

/** A provider is configured when its API key is set; every one takes the same timeout. */
function providersConfig(
  env: Env,
  get: <N extends VariableName>(name: N) => Parsed<N> | undefined,
  problems: string[],
): ProvidersConfig & { limits: ProviderLimitsTable } {
  const timeoutMs = get('BATCHKEEPER_PROVIDER_TIMEOUT_MS');
  // Only settings that differ from the adapters' defaults (deletion on, OpenAI's 7-day expiry) are passed on.
  const keepFiles = get('BATCHKEEPER_DELETE_PROVIDER_FILES') === false ? { deleteFiles: false } : {};
  const expiry = get('BATCHKEEPER_PROVIDER_FILE_EXPIRY_S');
  if (expiry !== undefined && expiry > 0 && expiry < 3600) {
    problems.push(`BATCHKEEPER_PROVIDER_FILE_EXPIRY_S must be 0 or from 3600 to 2592000 (got ${expiry})`);
  }
  const keyed = (apiKey: string | undefined, baseURL: string | undefined) =>
    apiKey ? { apiKey, ...(baseURL ? { baseURL } : {}), ...(timeoutMs ? { timeoutMs } : {}), ...keepFiles } : undefined;
  const config: ProvidersConfig = {};
  const openaiKeyed = keyed(get('OPENAI_API_KEY'), get('OPENAI_BASE_URL'));
  const openai = openaiKeyed && expiry !== undefined ? { ...openaiKeyed, fileExpirySeconds: expiry } : openaiKeyed;
  const anthropic = keyed(get('ANTHROPIC_API_KEY'), get('ANTHROPIC_BASE_URL'));
  const gemini = keyed(get('GEMINI_API_KEY'), get('GEMINI_BASE_URL'));
  const xai = keyed(get('XAI_API_KEY'), get('XAI_BASE_URL'));
  if (openai) config.openai = openai;
  if (anthropic) config.anthropic = anthropic;
  if (gemini) config.gemini = gemini;
  if (xai) config.xai = xai;
  const entries: OpenAICompatibleEntry[] = get('BATCHKEEPER_OPENAI_COMPATIBLE') ?? [];
  const compatible = entries.flatMap(({ apiKeyEnv, ...entry }) => {
    const apiKey = env[apiKeyEnv];
    return apiKey ? [{ ...keepFiles, ...entry, apiKey, ...(timeoutMs ? { timeoutMs } : {}) }] : [];
  });
  const names = entries.map((entry) => entry.name);
  const repeated = names.find((name, index) => names.indexOf(name) !== index);
  if (repeated) problems.push(`BATCHKEEPER_OPENAI_COMPATIBLE names ${JSON.stringify(repeated)} twice`);
  if (compatible.length) config.openaiCompatible = compatible;
  // Every named endpoint is a provider the client may submit to, configured on this process or not.
  return { ...config, limits: providerLimitsTable(Object.fromEntries(names.map((name) => [name, undefined]))) };
}
