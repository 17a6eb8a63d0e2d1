/**
 * The Temporal connection is configured through @temporalio/envconfig: TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS* and TEMPORAL_PROFILE with a config TOML reach the connection options of the worker
 * (NativeConnection), the app's client (Connection) and the CLI. No real TLS server is needed: a plaintext HTTP/2
 * listener records the gRPC headers (the API key as `authorization: Bearer ...`) and a raw TCP listener records the
 * TLS ClientHello (its SNI is TEMPORAL_TLS_SERVER_NAME).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp2Server, type IncomingHttpHeaders } from 'node:http2';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createCliContext } from '../cli/context';
import { loadConfig } from '../config/load';

const temporalSettingsFromEnv = (env: Record<string, string | undefined>) => loadConfig(env, ['temporal']).temporal;

const API_KEY = 'tmprl-api-key-for-config-test-7f3a';
let dir: string;

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'bk-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const filePath = path.join(dir, name);
  writeFileSync(filePath, content);
  return filePath;
}

/** No config file on this machine may leak into the expectations. */
const isolated = (env: Record<string, string>) => ({ TEMPORAL_CONFIG_FILE: path.join(dir, 'absent.toml'), ...env });

describe('Temporal settings (config/load.ts)', () => {
  test('defaults: localhost:7233, namespace default, task queue batchkeeper, no TLS, no API key', () => {
    const settings = temporalSettingsFromEnv(isolated({}));
    assert.equal(settings.connectionOptions.address, 'localhost:7233');
    assert.equal(settings.namespace, 'default');
    assert.equal(settings.taskQueue, 'batchkeeper');
    assert.equal(settings.connectionOptions.apiKey, undefined);
    assert.ok(!settings.connectionOptions.tls);
  });

  test('address, namespace and task queue from the environment', () => {
    const settings = temporalSettingsFromEnv(isolated({
      TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'billing', BATCHKEEPER_TASK_QUEUE: 'bk-billing',
    }));
    assert.equal(settings.connectionOptions.address, 'temporal.internal:7233');
    assert.equal(settings.namespace, 'billing');
    assert.equal(settings.taskQueue, 'bk-billing');
  });

  test('TEMPORAL_API_KEY sets the API key and turns TLS on (Temporal Cloud); TEMPORAL_TLS=false turns it off again', () => {
    const cloud = temporalSettingsFromEnv(isolated({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: API_KEY }));
    assert.equal(cloud.connectionOptions.apiKey, API_KEY);
    assert.equal(cloud.connectionOptions.tls, true);
    const proxied = temporalSettingsFromEnv(isolated({ TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' }));
    assert.equal(proxied.connectionOptions.apiKey, API_KEY);
    assert.equal(proxied.connectionOptions.tls, false);
  });

  test('TEMPORAL_TLS=true alone turns TLS on with the system roots', () => {
    const tls = temporalSettingsFromEnv(isolated({ TEMPORAL_TLS: 'true' })).connectionOptions.tls;
    assert.ok(tls === true || (typeof tls === 'object' && tls !== null && !tls.serverRootCACertificate && !tls.clientCertPair), `TLS on (${JSON.stringify(tls)})`);
  });

  test('TEMPORAL_TLS_* paths: server CA, client certificate pair (mTLS) and server name reach the TLS options', () => {
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nca-bytes\n-----END CERTIFICATE-----\n');
    const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\nclient-bytes\n-----END CERTIFICATE-----\n');
    const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nkey-bytes\n-----END PRIVATE KEY-----\n');
    const settings = temporalSettingsFromEnv(isolated({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal.example',
    }));
    const tls = settings.connectionOptions.tls;
    assert.ok(tls && typeof tls === 'object', 'TLS options object');
    assert.equal(tls.serverNameOverride, 'temporal.internal.example');
    assert.match(Buffer.from(tls.serverRootCACertificate!).toString(), /ca-bytes/);
    assert.match(Buffer.from(tls.clientCertPair!.crt).toString(), /client-bytes/);
    assert.match(Buffer.from(tls.clientCertPair!.key).toString(), /key-bytes/);
  });

  test('TEMPORAL_TLS_*_DATA: certificates given inline', () => {
    const settings = temporalSettingsFromEnv(isolated({
      TEMPORAL_TLS_CLIENT_CERT_DATA: 'inline-cert', TEMPORAL_TLS_CLIENT_KEY_DATA: 'inline-key', TEMPORAL_TLS_SERVER_CA_CERT_DATA: 'inline-ca',
    }));
    const tls = settings.connectionOptions.tls;
    assert.ok(tls && typeof tls === 'object');
    assert.equal(Buffer.from(tls.clientCertPair!.crt).toString(), 'inline-cert');
    assert.equal(Buffer.from(tls.clientCertPair!.key).toString(), 'inline-key');
    assert.equal(Buffer.from(tls.serverRootCACertificate!).toString(), 'inline-ca');
  });

  test('TEMPORAL_PROFILE reads a profile from the config TOML; environment variables win over it', () => {
    const toml = file('temporal.toml', [
      '[profile.prod]', 'address = "prod.tmprl.example:7233"', 'namespace = "prod-ns"', `api_key = "${API_KEY}"`,
      '[profile.prod.tls]', 'server_name = "prod.tmprl.example"', '',
    ].join('\n'));
    const fromProfile = temporalSettingsFromEnv({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' });
    assert.equal(fromProfile.connectionOptions.address, 'prod.tmprl.example:7233');
    assert.equal(fromProfile.namespace, 'prod-ns');
    assert.equal(fromProfile.connectionOptions.apiKey, API_KEY);
    assert.equal((fromProfile.connectionOptions.tls as { serverNameOverride?: string }).serverNameOverride, 'prod.tmprl.example');
    const overridden = temporalSettingsFromEnv({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'staging' });
    assert.equal(overridden.namespace, 'staging');
  });

  test('TEMPORAL_GRPC_META_* become gRPC metadata', () => {
    const settings = temporalSettingsFromEnv(isolated({ TEMPORAL_GRPC_META_X_TENANT: 'acme' }));
    assert.deepEqual(settings.connectionOptions.metadata, { 'x-tenant': 'acme' });
  });
});

// ---- On the wire ----

interface Listener {
  address: string;
  close(): Promise<void>;
}

/** A plaintext HTTP/2 endpoint that records the headers of every gRPC call and answers UNIMPLEMENTED. */
async function grpcHeaderRecorder(seen: IncomingHttpHeaders[]): Promise<Listener> {
  const server = createHttp2Server();
  server.on('stream', (stream, headers) => {
    seen.push(headers);
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '12', 'grpc-message': 'recorder' }));
    stream.end();
  });
  server.on('sessionError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A TCP endpoint that records the first bytes each client sends (a TLS ClientHello) and hangs up. */
async function helloRecorder(hellos: Buffer[]): Promise<Listener> {
  const server: Server = createTcpServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (chunk) => {
      hellos.push(chunk);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Connecting fails against the recorders; only what reached them matters. */
async function attempt(connect: () => Promise<{ close(): Promise<void> }>): Promise<void> {
  try {
    const connection = await connect();
    await connection.close();
  } catch {
    // expected
  }
}

/**
 * Starts a connection attempt that would keep retrying until its connect timeout, waits until the recorder saw what
 * it needed, then closes it.
 */
async function attemptUntil(start: () => { pending: Promise<unknown>; close(): Promise<unknown> }, seen: () => boolean): Promise<void> {
  const { pending, close } = start();
  // Not awaited: closing does not cut short a connect that is waiting for readiness; it gives up at its own timeout.
  pending.catch(() => undefined);
  const deadline = Date.now() + 10_000;
  while (!seen() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  await close().catch(() => undefined);
}

/** An app's client: a lazy Connection (what Connection.connect does, minus waiting for the connect timeout). */
function clientAttempt(options: Parameters<typeof Connection.lazy>[0]) {
  const connection = Connection.lazy({ ...options, connectTimeout: '2s' });
  return { pending: connection.ensureConnected(), close: () => connection.close() };
}

function cliAttempt(env: NodeJS.ProcessEnv) {
  const cli = createCliContext(env);
  return { pending: cli.temporal(), close: () => cli.close() };
}

describe('the settings reach the connections', () => {
  test('the API key and metadata go out as gRPC headers from the worker, the client and the CLI', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const recorder = await grpcHeaderRecorder(seen);
    try {
      const env = isolated({
        TEMPORAL_ADDRESS: recorder.address, TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false', TEMPORAL_GRPC_META_X_TENANT: 'acme',
      });
      const settings = temporalSettingsFromEnv(env);
      const who = (headers: IncomingHttpHeaders) => String(headers['user-agent'] ?? '');

      await attempt(() => NativeConnection.connect(settings.connectionOptions)); // what worker/main.ts does
      const fromWorker = seen.filter((headers) => headers.authorization === `Bearer ${API_KEY}`);
      assert.ok(fromWorker.length > 0, `worker connection sent the API key (saw ${seen.map(who).join(', ') || 'nothing'})`);
      assert.equal(fromWorker[0]!['x-tenant'], 'acme');

      seen.length = 0;
      const withKey = () => seen.some((headers) => headers.authorization === `Bearer ${API_KEY}` && headers['x-tenant'] === 'acme');
      await attemptUntil(() => clientAttempt(settings.connectionOptions), withKey); // an app's client
      assert.ok(withKey(), 'client connection sent the API key and metadata');

      seen.length = 0;
      await attemptUntil(() => cliAttempt(env), withKey);
      assert.ok(withKey(), 'CLI connection sent the API key and metadata');
      assert.equal(createCliContext(env).redact(`key ${API_KEY}`), 'key ***', 'the CLI redacts the API key from what it prints');
    } finally {
      await recorder.close();
    }
  });

  test('TLS settings: the worker, the client and the CLI open TLS with TEMPORAL_TLS_SERVER_NAME as SNI', async () => {
    const hellos: Buffer[] = [];
    const recorder = await helloRecorder(hellos);
    const serverName = 'temporal.tls-check.example';
    const isTlsHelloFor = (hello: Buffer) => hello[0] === 0x16 && hello.includes(Buffer.from(serverName));
    try {
      const env = isolated({ TEMPORAL_ADDRESS: recorder.address, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_NAME: serverName });
      const settings = temporalSettingsFromEnv(env);

      await attempt(() => NativeConnection.connect(settings.connectionOptions));
      assert.ok(hellos.some(isTlsHelloFor), 'worker connection sent a TLS ClientHello naming the server');

      hellos.length = 0;
      await attemptUntil(() => clientAttempt(settings.connectionOptions), () => hellos.some(isTlsHelloFor));
      assert.ok(hellos.some(isTlsHelloFor), 'client connection sent a TLS ClientHello naming the server');

      hellos.length = 0;
      await attemptUntil(() => cliAttempt(env), () => hellos.some(isTlsHelloFor));
      assert.ok(hellos.some(isTlsHelloFor), 'CLI connection sent a TLS ClientHello naming the server');
    } finally {
      await recorder.close();
    }
  });
});
