/**
 * The local stack for real (no mocks): the Temporal CLI binary (built on first use), the dev server with a persisted
 * db file and our search attributes across stop/start and restart(), and the embedded PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { ALL_SEARCH_ATTRIBUTES, KIND, TRY_COUNT, searchAttributeFlags } from '../domain/search-attributes';
import { isExecutableFile, resolveTemporalCli } from '../tools/dev/temporal-cli';
import { startDevServer, type DevServer } from '../tools/dev/dev-server';
import { createDatabase, databaseUrlWithName, dropDatabase, hydrateSymlinks, startPostgres } from '../tools/dev/postgres';

async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  // As root the embedded PostgreSQL runs as OS user `postgres`, which must be able to enter this directory.
  await fs.chmod(dir, 0o755);
  return dir;
}

async function expectSearchAttributes(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const res = await connection.operatorService.listSearchAttributes({ namespace });
    const custom = res.customAttributes ?? {};
    for (const key of ALL_SEARCH_ATTRIBUTES) {
      assert.equal(custom[key.name], encodeSearchAttributeIndexedValueType(key.type), `${key.name} registered as ${key.type}`);
    }
  } finally {
    await connection.close();
  }
}

async function withClient<T>(server: DevServer, fn: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: server.address });
  try {
    return await fn(new Client({ connection, namespace: server.namespace }));
  } finally {
    await connection.close();
  }
}

let cliPath: string;

test('resolveTemporalCli returns an executable Temporal CLI', { timeout: 40 * 60_000 }, async (t) => {
  const started = Date.now();
  const cli = await resolveTemporalCli({ onProgress: (m) => t.diagnostic(m) });
  t.diagnostic(`temporal CLI: ${cli.path} (source ${cli.source}) in ${Date.now() - started} ms`);
  assert.ok(['env', 'path', 'cache', 'built'].includes(cli.source));
  assert.ok(await isExecutableFile(cli.path), `${cli.path} is executable`);
  const version = spawnSync(cli.path, ['--version'], { encoding: 'utf8' });
  assert.equal(version.status, 0, version.stderr);
  assert.match(version.stdout, /temporal version/);
  cliPath = cli.path;

  await assert.rejects(resolveTemporalCli({ env: { TEMPORAL_CLI_PATH: '/nonexistent/temporal' } }), /TEMPORAL_CLI_PATH.*does not exist/);
});

test('dev server: persisted db file, search attributes, stop + start again, restart()', { timeout: 5 * 60_000 }, async (t) => {
  assert.ok(cliPath, 'needs the CLI from the previous test');
  const dir = await tempDir('bk-devserver-');
  const dbFile = path.join(dir, 'temporal.db');
  const logFile = path.join(dir, 'server.log');
  const opts = { binaryPath: cliPath, dbFile, logFile, searchAttributes: searchAttributeFlags() };
  const workflowId = `dev-stack-${Date.now()}`;

  let started = Date.now();
  let server = await startDevServer(opts);
  t.diagnostic(`cold start (new db file): ${Date.now() - started} ms at ${server.address}, UI ${server.uiUrl}`);
  try {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.uiUrl, `http://127.0.0.1:${server.port + 1000}`);
    assert.ok(server.pid > 0);
    await expectSearchAttributes(server.address, server.namespace);
    const ui = await fetch(server.uiUrl!);
    assert.equal(ui.status, 200, 'UI answers');
    await ui.arrayBuffer();

    // A workflow with typed search attributes; nothing polls its task queue, so it stays running.
    await withClient(server, async (client) => {
      await client.workflow.start('noSuchWorkflow', {
        taskQueue: 'dev-stack-test-nobody-polls', workflowId,
        typedSearchAttributes: new TypedSearchAttributes([{ key: KIND, value: 'batch' }, { key: TRY_COUNT, value: 3 }]),
      });
    });
  } finally {
    started = Date.now();
    await server.stop();
    t.diagnostic(`stop: ${Date.now() - started} ms`);
  }

  // Same db file again, same --search-attribute flags for attributes that already exist.
  started = Date.now();
  server = await startDevServer(opts);
  t.diagnostic(`warm start (existing db file): ${Date.now() - started} ms`);
  try {
    await expectSearchAttributes(server.address, server.namespace);
    const check = () => withClient(server, async (client) => {
      const d = await client.workflow.getHandle(workflowId).describe();
      assert.equal(d.status.name, 'RUNNING');
      assert.equal(d.typedSearchAttributes.get(KIND), 'batch');
      assert.equal(d.typedSearchAttributes.get(TRY_COUNT), 3);
    });
    await check();

    const { port, pid } = server;
    started = Date.now();
    await server.restart();
    t.diagnostic(`restart(): ${Date.now() - started} ms`);
    assert.equal(server.port, port, 'same port after restart');
    assert.notEqual(server.pid, pid, 'new process');
    await check();

    started = Date.now();
    await server.restart({ signal: 'SIGKILL' }); // crash: SQLite state must survive
    t.diagnostic(`restart after SIGKILL: ${Date.now() - started} ms`);
    await check();
  } finally {
    await server.stop();
  }
  await server.stop(); // idempotent
  assert.match(await fs.readFile(logFile, 'utf8'), /start-dev/);
  await fs.rm(dir, { recursive: true, force: true });
});

test('dev server: failure to start reports the server output', { timeout: 60_000 }, async () => {
  assert.ok(cliPath, 'needs the CLI from the first test');
  await assert.rejects(
    startDevServer({ binaryPath: cliPath, uiPort: false, extraArgs: ['--no-such-flag'] }),
    (err: Error) => /did not become ready/.test(err.message) && /no-such-flag/.test(err.message),
  );
});

test('embedded PostgreSQL: first init, select 1, databases, warm restart, DATABASE_URL mode', { timeout: 3 * 60_000 }, async (t) => {
  const dir = await tempDir('bk-postgres-');
  const dataDir = path.join(dir, 'postgres');

  let started = Date.now();
  let pgh = await startPostgres({ dataDir, env: {}, onProgress: (m) => t.diagnostic(m) });
  t.diagnostic(`embedded PostgreSQL first init + start: ${Date.now() - started} ms`);
  try {
    assert.equal(pgh.embedded, true);
    assert.match(pgh.url, /^postgres:\/\/[^@]+@127\.0\.0\.1:\d+\/batchkeeper$/);
    const c = new pg.Client({ connectionString: pgh.url });
    await c.connect();
    try {
      assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    } finally {
      await c.end();
    }

    // Per-test databases, with a name that needs quoting.
    const name = `bk test "${process.pid}"`;
    await createDatabase(pgh.adminUrl, name);
    await assert.rejects(createDatabase(pgh.adminUrl, name), /already exists/);
    await createDatabase(pgh.adminUrl, name, { ifNotExists: true });
    const c2 = new pg.Client({ connectionString: databaseUrlWithName(pgh.url, name) });
    c2.on('error', () => undefined); // dropDatabase below terminates this session on purpose
    await c2.connect();
    assert.equal((await c2.query('select current_database() as db')).rows[0].db, name);
    await dropDatabase(pgh.adminUrl, name); // forces c2's session closed
    await c2.end().catch(() => undefined);
    await dropDatabase(pgh.adminUrl, name); // IF EXISTS

    // DATABASE_URL mode uses the given server as-is.
    const viaEnv = await startPostgres({ dataDir: path.join(dir, 'unused'), env: { DATABASE_URL: pgh.url } });
    assert.equal(viaEnv.embedded, false);
    assert.equal(viaEnv.url, pgh.url);
    await viaEnv.stop();
    await assert.rejects(
      startPostgres({ dataDir: path.join(dir, 'unused'), env: { DATABASE_URL: 'postgres://someone:s3cret-pw@127.0.0.1:1/nope' } }),
      (err: Error) => /DATABASE_URL/.test(err.message) && /someone/.test(err.message) && !/s3cret-pw/.test(err.message),
    );
  } finally {
    started = Date.now();
    await pgh.stop();
    t.diagnostic(`stop: ${Date.now() - started} ms`);
  }

  // Reuses the initialised data dir (and keeps the data).
  started = Date.now();
  pgh = await startPostgres({ dataDir, env: {} });
  t.diagnostic(`embedded PostgreSQL warm start: ${Date.now() - started} ms`);
  try {
    const c = new pg.Client({ connectionString: pgh.url });
    await c.connect();
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    await c.end();
  } finally {
    await pgh.stop();
  }
  await fs.rm(dir, { recursive: true, force: true });
});

test('embedded PostgreSQL: missing library symlinks (npm skipped postinstall) are recreated', async () => {
  const dir = await tempDir('bk-pgsymlinks-');
  await fs.mkdir(path.join(dir, 'native', 'lib'), { recursive: true });
  await fs.writeFile(path.join(dir, 'native', 'lib', 'libpq.so.5.18'), 'fake');
  await fs.writeFile(path.join(dir, 'native', 'pg-symlinks.json'), JSON.stringify([
    { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so.5' },
    { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so' },
  ]));
  assert.equal(await hydrateSymlinks(dir), 2);
  assert.equal(await fs.readlink(path.join(dir, 'native', 'lib', 'libpq.so.5')), 'libpq.so.5.18');
  assert.equal(await fs.readFile(path.join(dir, 'native', 'lib', 'libpq.so'), 'utf8'), 'fake');
  assert.equal(await hydrateSymlinks(dir), 0, 'idempotent');
  await fs.rm(dir, { recursive: true, force: true });
});
