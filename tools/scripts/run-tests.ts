/**
 * `npm test`: two phases, each on real servers started once for it; every test file clones a database from a
 * migrated template.
 *   1. test/*.test.ts against one Temporal dev server and one PostgreSQL;
 *   2. test/cluster/*.test.ts against a Temporal cluster (tools/cluster: PostgreSQL persistence, SQL visibility, two
 *      history and two matching hosts); the fault test, which kills hosts, starts a cluster of its own.
 * Pass file names to run a subset (each goes to its phase): npm test -- test/batch-lifecycle.test.ts
 * `npm run test:cluster` (--cluster-only) runs phase 2 alone.
 */
import { spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { migrateDatabase } from '../../db/migrate';
import { startCluster, databaseNames } from '../cluster/cluster';
import { createDatabase, databaseUrlWithName, dropDatabase } from '../dev/postgres';
import { DATA_DIR, PROJECT_ROOT, startLocalStack } from '../dev/stack';

const CLUSTER_DIR = path.join('test', 'cluster');

function testFiles(dir: string): string[] {
  return readdirSync(path.join(PROJECT_ROOT, dir)).filter((file) => file.endsWith('.test.ts')).sort().map((file) => path.join(dir, file));
}

/** Runs node's test runner over the files with the servers' addresses in the environment; resolves to its exit code. */
async function runFiles(files: string[], adminUrl: string, env: NodeJS.ProcessEnv): Promise<number> {
  const template = `bk_template_${process.pid}`;
  try {
    await dropDatabase(adminUrl, template).catch(() => undefined);
    await createDatabase(adminUrl, template);
    await migrateDatabase(databaseUrlWithName(adminUrl, template));
    return await new Promise<number>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, ...files],
        {
          cwd: PROJECT_ROOT,
          stdio: 'inherit',
          env: { ...process.env, ...env, BATCHKEEPER_TEST_PG_ADMIN_URL: adminUrl, BATCHKEEPER_TEST_TEMPLATE_DB: template },
        },
      );
      child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    });
  } finally {
    await dropDatabase(adminUrl, template).catch(() => undefined);
  }
}

async function devServerPhase(files: string[]): Promise<number> {
  // A data folder per run, so concurrent runs (and helpers' runs) never share an embedded PostgreSQL.
  const name = `test/run-${process.pid}`;
  const stack = await startLocalStack({ name, uiPort: undefined, postgresFlags: ['-c', 'fsync=off', '-c', 'max_connections=300'] });
  try {
    return await runFiles(files, stack.postgres.adminUrl, {
      BATCHKEEPER_TEST_TEMPORAL_ADDRESS: stack.temporal.address,
      BATCHKEEPER_TEST_TEMPORAL_UI: stack.temporal.uiUrl ?? '',
      TEMPORAL_CLI_PATH: stack.temporalCliPath,
    });
  } finally {
    await stack.stop();
    rmSync(path.join(DATA_DIR, name), { recursive: true, force: true });
  }
}

async function clusterPhase(files: string[]): Promise<number> {
  const name = `test/cluster-${process.pid}`;
  const useDatabaseUrl = Boolean(process.env.DATABASE_URL);
  // On a shared PostgreSQL (DATABASE_URL), Temporal's databases of this run get names of their own.
  const databases = useDatabaseUrl ? databaseNames(`bk_test_cluster_${process.pid}`) : undefined;
  const cluster = await startCluster({ name, useDatabaseUrl, databases, log: (message) => console.log(`[test cluster] ${message}`) });
  try {
    return await runFiles(files, cluster.postgres.adminUrl, { BATCHKEEPER_TEST_TEMPORAL_ADDRESS: cluster.address });
  } finally {
    await cluster.stop();
    if (databases) for (const database of Object.values(databases)) await dropDatabase(cluster.postgres.adminUrl, database).catch(() => undefined);
    rmSync(path.join(DATA_DIR, name), { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const requested = args.filter((arg) => !arg.startsWith('--'));
  const inCluster = (file: string) => path.normalize(file).startsWith(CLUSTER_DIR + path.sep);
  const clusterOnly = args.includes('--cluster-only');
  const phase1 = clusterOnly ? [] : requested.length ? requested.filter((file) => !inCluster(file)) : testFiles('test');
  const phase2 = requested.length ? requested.filter(inCluster) : testFiles(CLUSTER_DIR);

  let code = 0;
  for (const [label, files, run] of [['dev server', phase1, devServerPhase], ['cluster', phase2, clusterPhase]] as const) {
    if (!files.length) continue;
    const started = Date.now();
    console.log(`[test] ${label} phase: ${files.length} test files`);
    const phaseCode = await run(files);
    console.log(`[test] ${label} phase finished in ${((Date.now() - started) / 1000).toFixed(1)} s (exit ${phaseCode})`);
    code ||= phaseCode;
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
