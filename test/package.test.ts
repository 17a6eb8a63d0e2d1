/**
 * batchkeeper as apps get it: `npm pack`, the tarball installed into fresh apps, plain `node` (no tsx). A client-only
 * app loads without the worker's native bridge or the provider SDKs; the example app (examples/reviews-app), once as
 * ESM and once as CommonJS, passes its own strict `tsc` against the shipped types and runs a batch end to end: its
 * worker's handler writes the app's own table, in a batchkeeper schema of its choosing.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createTestEnvironment, TEST_API_KEY, type TestEnvironment } from './support/environment';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const TSC = require.resolve('typescript/bin/tsc');
const LOCK = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')).packages as Record<string, { version: string }>;
/** The versions this checkout tests with, so the apps install what npm's cache already holds. */
const version = (name: string) => LOCK[`node_modules/${name}`]!.version;

let env: TestEnvironment;
let workDir: string;
let tarball: string;
const children: ChildProcess[] = [];

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
  workDir = mkdtempSync(path.join(tmpdir(), 'bk-package-'));
});
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await env?.teardown();
  rmSync(workDir, { recursive: true, force: true });
});

async function npmInstall(dir: string): Promise<void> {
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, maxBuffer: 1 << 24 });
}

async function installedMb(dir: string): Promise<number> {
  const { stdout } = await run('du', ['-sk', path.join(dir, 'node_modules')]);
  return Math.round(Number(stdout.split('\t')[0]) / 1024);
}

test('npm pack ships dist/ and migrations/ only, with the prebuilt workflow bundles', { timeout: 300_000 }, async () => {
  await run('npm', ['run', 'build'], { cwd: ROOT, maxBuffer: 1 << 26 });
  // The build ran above (prepack would run it again): only the file list on stdout.
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', workDir], { cwd: ROOT, maxBuffer: 1 << 26 });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(workDir, packed!.filename);
  const files = packed!.files.map((file) => file.path);
  const outside = files.filter((file) => !/^(dist|migrations)\//.test(file) && !['package.json', 'README.md'].includes(file));
  assert.deepEqual(outside, []);
  const tooling = files.filter((file) => /^dist\/(tools|test|examples)\//.test(file));
  assert.deepEqual(tooling, [], 'nothing of the tooling or the tests is compiled into dist/');
  for (const needed of ['dist/client/index.js', 'dist/client/index.d.ts', 'dist/worker/index.js', 'dist/testing/index.js',
    'dist/bin/batchkeeper.js', 'dist/workflow-bundle.js', 'dist/workflow-bundle-encoded-failures.js', 'migrations/1700000000001_initial.sql']) {
    assert.ok(files.includes(needed), `${needed} is in the package`);
  }
});

test('a client-only app loads batchkeeper (CommonJS and ESM) without the worker, its native bridge or a provider SDK', { timeout: 300_000 }, async () => {
  assert.ok(tarball, 'the package was packed');
  const app = path.join(workDir, 'client-only');
  cpSync(path.join(ROOT, 'examples', 'reviews-app'), app, { recursive: true, filter: (source) => !source.includes('node_modules') });
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'client-only', private: true, dependencies: { batchkeeper: `file:${tarball}` } }));
  await npmInstall(app);
  const probe = `const b = require('batchkeeper');
    const heavy = Object.keys(require.cache).filter((file) => /@temporalio[\\\\/](worker|core-bridge|workflow)|[\\\\/](openai|@anthropic-ai|@google)[\\\\/]/.test(file));
    console.log(JSON.stringify({ client: typeof b.BatchkeeperClient, admin: typeof b.BatchkeeperAdmin, heavy }));`;
  const cjs = JSON.parse((await run(process.execPath, ['-e', probe], { cwd: app })).stdout);
  assert.deepEqual(cjs, { client: 'function', admin: 'function', heavy: [] });
  const esm = (await run(process.execPath, ['--input-type=module', '-e',
    "import { BatchkeeperClient, ValidationError, loadConfig } from 'batchkeeper'; console.log([BatchkeeperClient, ValidationError, loadConfig].map((x) => typeof x).join(','))"],
  { cwd: app })).stdout.trim();
  assert.equal(esm, 'function,function,function');
  const { stdout: tree } = await run('npm', ['ls', '--all', '--parseable'], { cwd: app, maxBuffer: 1 << 24 }).catch((error) => error);
  assert.doesNotMatch(String(tree), /@temporalio[\\/]worker/, 'the optional worker peer is not installed');
  console.log(`[package] client-only app: ${await installedMb(app)} MB in node_modules`);
});

for (const format of ['module', 'commonjs'] as const) {
  describe(`the example app as ${format === 'module' ? 'ESM' : 'CommonJS'}`, () => {
    const app = () => path.join(workDir, `reviews-app-${format}`);

    test('installs from the tarball and passes its own strict tsc against the shipped types', { timeout: 300_000 }, async () => {
      assert.ok(tarball, 'the package was packed');
      cpSync(path.join(ROOT, 'examples', 'reviews-app'), app(), { recursive: true, filter: (source) => !/node_modules|[\\/]dist/.test(source) });
      const manifest = JSON.parse(readFileSync(path.join(app(), 'package.json'), 'utf8'));
      manifest.type = format;
      manifest.dependencies = {
        ...manifest.dependencies, batchkeeper: `file:${tarball}`, '@temporalio/client': version('@temporalio/client'),
        '@temporalio/worker': version('@temporalio/worker'), pg: version('pg'),
      };
      manifest.devDependencies = { '@types/node': version('@types/node'), '@types/pg': version('@types/pg') };
      writeFileSync(path.join(app(), 'package.json'), JSON.stringify(manifest, null, 2));
      await npmInstall(app());
      // skipLibCheck is off, so batchkeeper's .d.ts files are checked under the app's strict settings too. The
      // Temporal SDK's own .d.ts files do not pass that (an untyped `ms` import, a generic constraint); errors there
      // are not ours and are reported, not failed on. tsc still emits the app's JavaScript.
      const compiled = await run(process.execPath, [TSC, '-p', app()], { cwd: app() }).catch((error) => error);
      const errors = `${compiled.stdout ?? ''}`.split('\n').filter((line) => /: error TS\d+/.test(line));
      const thirdParty = errors.filter((line) => line.startsWith('node_modules/') && !line.startsWith('node_modules/batchkeeper/'));
      assert.deepEqual(errors.filter((line) => !thirdParty.includes(line)), [], 'no error in the app or in batchkeeper\'s types');
      if (thirdParty.length) console.log(`[package] ${thirdParty.length} errors inside other packages' .d.ts with skipLibCheck off: ${[...new Set(thirdParty.map((line) => line.split('(')[0]))].join(', ')}`);
      const emitted = readFileSync(path.join(app(), 'dist', 'submit.js'), 'utf8');
      assert.match(emitted, format === 'module' ? /^import /m : /require\("batchkeeper"\)/, `compiled as ${format}`);
      console.log(`[package] example app with the worker (${format}): ${await installedMb(app())} MB in node_modules`);
    });

    test('runs a batch with plain node: the handler writes the app\'s table in one transaction with the dispatch', { timeout: 300_000 }, async () => {
      const variables = {
        PATH: process.env.PATH, HOME: process.env.HOME,
        DATABASE_URL: env.databaseUrl, BATCHKEEPER_PG_SCHEMA: `reviews_${format}`,
        TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS, BATCHKEEPER_TASK_QUEUE: `${env.taskQueue}-${format}`,
        OPENAI_API_KEY: TEST_API_KEY, OPENAI_BASE_URL: env.fake.openaiBaseUrl,
      };
      const worker = spawn(process.execPath, ['dist/worker.js'], { cwd: app(), env: variables, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(worker);
      let workerOutput = '';
      worker.stdout!.on('data', (chunk) => (workerOutput += chunk));
      worker.stderr!.on('data', (chunk) => (workerOutput += chunk));
      await new Promise<void>((resolve, reject) => {
        worker.stdout!.on('data', () => workerOutput.includes('worker ready') && resolve());
        worker.once('exit', (code) => reject(new Error(`the app's worker exited (${code}):\n${workerOutput}`)));
      });
      const { stdout } = await run(process.execPath, ['dist/submit.js'], { cwd: app(), env: variables });
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as { batchId: string; status: string; summaries: { review_id: string; summary: string }[] };
      assert.equal(result.status, 'ended');
      assert.deepEqual(result.summaries.map((row) => row.review_id), ['review-1', 'review-2', 'review-3']);
      assert.ok(result.summaries.every((row) => row.summary.length > 0));
      // batchkeeper's rows are in the schema the app chose, its own table in public.
      const { rows } = await env.pool.query(`SELECT status FROM reviews_${format}.batches WHERE id = $1`, [result.batchId]);
      assert.deepEqual(rows, [{ status: 'ended' }]);
      const imports = await env.pool.query('SELECT count(*)::int AS n FROM public.review_imports WHERE batch_id = $1', [result.batchId]);
      assert.equal(imports.rows[0].n, 1, 'the app row committed with the batch');
      worker.kill('SIGTERM');
      await new Promise((resolve) => worker.once('exit', resolve));
    });
  });
}
