/**
 * The configuration module (config/variables.ts, config/load.ts): every variable is declared once with its type and
 * documented in the README's table, wrong values are refused naming the variable and what it must be (secrets never
 * echoed), and the values reach what they configure.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../config/load';
import { VARIABLES } from '../config/variables';
import { ProviderError } from '../providers/errors';
import { createProviders } from '../providers/registry';

const README = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

describe('declared once, documented once', () => {
  test("the README's configuration table lists exactly the declared variables, with their defaults", () => {
    const section = README.slice(README.indexOf('## Configuration'));
    const rows = [...section.slice(0, section.indexOf('\n## ', 5)).matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|/gm)];
    const documented = rows.map((row) => row[1]);
    assert.deepEqual([...documented].sort(), Object.keys(VARIABLES).sort());
    for (const [name, defaultText] of rows.map((row) => [row[1]!, row[2]!.trim()])) {
      const spec = VARIABLES[name as keyof typeof VARIABLES];
      const declared = 'default' in spec ? `\`${spec.default}\`` : '';
      assert.equal(defaultText, declared, `${name}'s default in the README`);
    }
  });

  test('no product code reads an environment variable outside config/', () => {
    const offenders: string[] = [];
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: path.join(__dirname, '..'), encoding: 'utf8' }).split('\n')
      .filter((file) => /^(activities|cli|client|codec|db|domain|providers|testing|worker|workflows|bin)\//.test(file));
    for (const file of files) {
      const source = readFileSync(path.join(__dirname, '..', file), 'utf8');
      // Passing the environment on (loadConfig(process.env, ...)) is fine; reading one variable by name is not.
      if (/process\.env\.[A-Z_]|process\.env\[|\benv\.[A-Z][A-Z0-9_]+|\benv\[['"][A-Z]/.test(source)) offenders.push(file);
    }
    assert.deepEqual(offenders, []);
  });
});

describe('wrong values', () => {
  test('every problem is named with the variable and what it must be', () => {
    try {
      loadConfig({
        DATABASE_URL: 'postgres://u:pw@h/db', BATCHKEEPER_PG_POOL_MAX: 'ten', BATCHKEEPER_PG_SCHEMA: 'Bad-Schema', BATCHKEEPER_RETRY_DEFAULTS: '{"maximumAttempts":0}',
        BATCHKEEPER_OPENAI_COMPATIBLE: '[{"name":"groq","baseURL":"nope","apiKeyEnv":"GROQ_KEY"}]', BATCHKEEPER_PROVIDER_TIMEOUT_MS: '5',
        BATCHKEEPER_TASK_QUEUE: 'has space',
      });
      assert.fail('loadConfig accepted wrong values');
    } catch (caught) {
      assert.ok(caught instanceof ConfigError);
      assert.deepEqual(caught.problems.map((problem) => problem.split(' ')[0]).sort(), [
        'BATCHKEEPER_OPENAI_COMPATIBLE', 'BATCHKEEPER_PG_POOL_MAX', 'BATCHKEEPER_PG_SCHEMA', 'BATCHKEEPER_PROVIDER_TIMEOUT_MS',
        'BATCHKEEPER_RETRY_DEFAULTS', 'BATCHKEEPER_TASK_QUEUE',
      ]);
      assert.match(caught.message, /BATCHKEEPER_PG_POOL_MAX must be a whole number from 1 to 1000 \(got "ten"\)/);
      assert.match(caught.message, /BATCHKEEPER_RETRY_DEFAULTS maximumAttempts must be an integer from 1 to 1000/);
      assert.match(caught.message, /BATCHKEEPER_OPENAI_COMPATIBLE 0\.baseURL: /);
    }
  });

  test('a secret is never echoed: a key or URL with a bad value is named without its value', () => {
    try {
      loadConfig({ DATABASE_URL: 'secret-password-in-url', BATCHKEEPER_CODEC_KEYS: 'k1:not base64 secret!!' }, ['database', 'codec']);
      assert.fail('accepted');
    } catch (caught) {
      assert.ok(caught instanceof ConfigError);
      assert.match(caught.message, /DATABASE_URL must be a postgres:\/\/ URL/);
      assert.match(caught.message, /BATCHKEEPER_CODEC_KEYS codec key k1 is not base64/);
      assert.doesNotMatch(caught.message, /secret-password|secret!!/);
    }
  });

  test('a process loads only its groups: the CLI is not stopped by a wrong worker setting', () => {
    const env = { DATABASE_URL: 'postgres://localhost/x', BATCHKEEPER_PRICES: 'not json' };
    assert.equal(loadConfig(env, ['database']).database.url, 'postgres://localhost/x');
    assert.throws(() => loadConfig(env, ['worker']), /BATCHKEEPER_PRICES must be JSON/);
    assert.throws(() => loadConfig({}, ['database']), /DATABASE_URL is not set/);
  });

  test('defaults when nothing is set', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://localhost/x' }, ['database', 'worker', 'cli']);
    assert.deepEqual(config.database, { url: 'postgres://localhost/x', schema: 'batchkeeper', poolMax: 10, preparedStatements: true });
    assert.equal(config.worker.startupTimeoutMs, 120_000);
    assert.equal(config.worker.installSchedules, false);
    assert.equal(config.worker.prices, undefined);
    assert.deepEqual(config.cli, { operator: undefined, debug: false });
  });
});

describe('BATCHKEEPER_PROVIDER_TIMEOUT_MS reaches every provider', () => {
  let server: Server;
  let base: string;
  const sockets = new Set<Socket>();
  before(async () => {
    // Accepts every connection and never answers: only a client-side timeout ends a call.
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });

  test('openai, anthropic, gemini, xai and an OpenAI-compatible endpoint time out at the configured 300 ms', { timeout: 60_000 }, async () => {
    const { providers } = loadConfig({
      BATCHKEEPER_PROVIDER_TIMEOUT_MS: '300',
      OPENAI_API_KEY: 'k', OPENAI_BASE_URL: `${base}/v1`, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: base,
      GEMINI_API_KEY: 'k', GEMINI_BASE_URL: base, XAI_API_KEY: 'k', XAI_BASE_URL: `${base}/v1`,
      ACME_KEY: 'k', BATCHKEEPER_OPENAI_COMPATIBLE: JSON.stringify([{ name: 'acme', baseURL: `${base}/v1`, apiKeyEnv: 'ACME_KEY' }]),
    }, ['providers']);
    const adapters = createProviders({ ...providers, openai: { ...providers.openai!, maxRetries: 0 }, anthropic: { ...providers.anthropic!, maxRetries: 0 },
      gemini: { ...providers.gemini!, maxRetries: 0 }, xai: { ...providers.xai!, maxRetries: 0 },
      openaiCompatible: providers.openaiCompatible!.map((entry) => ({ ...entry, maxRetries: 0 })) });
    assert.deepEqual([...adapters.keys()].sort(), ['acme', 'anthropic', 'gemini', 'openai', 'xai']);
    // With the SDKs' 60 s default the five calls would take minutes (the test's timeout fails them); at 300 ms each
    // gives up within a second or two.
    for (const [name, adapter] of adapters) {
      const failure = await adapter.getStatus(name === 'gemini' ? 'batches/batch_1' : 'batch_1').then(() => undefined, (error: unknown) => error);
      assert.ok(failure instanceof ProviderError, `${name}: ${String(failure)}`);
      assert.equal(failure.details.retryable, true, `${name}: a timeout is retryable`);
    }
  });
});
