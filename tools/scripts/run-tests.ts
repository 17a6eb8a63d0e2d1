/**
 * `npm test`: starts one real Temporal dev server and one real PostgreSQL for the whole run, migrates a template
 * database that every test file clones, then runs node's test runner over test/**.test.ts.
 * Pass file names to run a subset: npm test -- test/batch-lifecycle.test.ts
 */
import { spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { migrateDatabase } from '../../db/migrate';
import { createDatabase, databaseUrlWithName, dropDatabase } from '../dev/postgres';
import { DATA_DIR, PROJECT_ROOT, startLocalStack } from '../dev/stack';

async function main(): Promise<number> {
  const started = Date.now();
  const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
  const files = requested.length
    ? requested
    : readdirSync(path.join(PROJECT_ROOT, 'test')).filter((file) => file.endsWith('.test.ts')).sort().map((file) => path.join('test', file));

  // A data folder per run, so concurrent runs (and helpers' runs) never share an embedded PostgreSQL.
  const name = `test/run-${process.pid}`;
  const stack = await startLocalStack({ name, uiPort: undefined, postgresFlags: ['-c', 'fsync=off', '-c', 'max_connections=300'] });
  const template = `bk_template_${process.pid}`;
  try {
    await dropDatabase(stack.postgres.adminUrl, template).catch(() => undefined);
    await createDatabase(stack.postgres.adminUrl, template);
    await migrateDatabase(databaseUrlWithName(stack.postgres.adminUrl, template));
    console.log(`[test] stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s; running ${files.length} test files`);

    const code = await new Promise<number>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, ...files],
        {
          cwd: PROJECT_ROOT,
          stdio: 'inherit',
          env: {
            ...process.env,
            BATCHKEEPER_TEST_TEMPORAL_ADDRESS: stack.temporal.address,
            BATCHKEEPER_TEST_TEMPORAL_UI: stack.temporal.uiUrl ?? '',
            BATCHKEEPER_TEST_PG_ADMIN_URL: stack.postgres.adminUrl,
            BATCHKEEPER_TEST_TEMPLATE_DB: template,
            TEMPORAL_CLI_PATH: stack.temporalCliPath,
          },
        },
      );
      child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    });
    console.log(`[test] finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return code;
  } finally {
    await dropDatabase(stack.postgres.adminUrl, template).catch(() => undefined);
    await stack.stop();
    rmSync(path.join(DATA_DIR, name), { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
