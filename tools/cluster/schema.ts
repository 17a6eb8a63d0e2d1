/**
 * Temporal's own databases on PostgreSQL, set up with its SQL tool exactly as docker-compose.yml's `temporal-schema`
 * one-shot does it: create (an existing database is fine), setup-schema -v 0.0 (the version tables only), then
 * update-schema through every versioned step (a no-op once up to date). Plugin postgres12.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface SqlEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface TemporalDatabases {
  /** Persistence (default store). */
  temporal: string;
  /** SQL visibility. */
  visibility: string;
}

interface ToolRun { code: number | null; output: string }

function runSqlTool(sqlTool: string, endpoint: SqlEndpoint, args: string[]): Promise<ToolRun> {
  const common = ['--plugin', 'postgres12', '--ep', endpoint.host, '-p', String(endpoint.port), '-u', endpoint.user];
  return new Promise((resolve, reject) => {
    // The password goes through the environment (SQL_PASSWORD), not the command line other users can read.
    const child = spawn(sqlTool, [...common, ...args], { env: { ...process.env, SQL_PASSWORD: endpoint.password }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

export async function setupTemporalSchema(options: {
  sqlTool: string;
  /** schema/postgresql/v12 of the server module. */
  schemaDir: string;
  endpoint: SqlEndpoint;
  databases: TemporalDatabases;
  log: (message: string) => void;
}): Promise<void> {
  const { sqlTool, endpoint, log } = options;
  const steps: [string, string][] = [[options.databases.temporal, 'temporal'], [options.databases.visibility, 'visibility']];
  for (const [database, schema] of steps) {
    const created = await runSqlTool(sqlTool, endpoint, ['--db', database, 'create']);
    if (created.code !== 0 && !/already exists/i.test(created.output)) throw toolError(`create database ${database}`, created);
    const setup = await runSqlTool(sqlTool, endpoint, ['--db', database, 'setup-schema', '-v', '0.0']);
    if (setup.code !== 0) throw toolError(`setup-schema of ${database}`, setup);
    const update = await runSqlTool(sqlTool, endpoint, ['--db', database, 'update-schema', '-d', path.join(options.schemaDir, schema, 'versioned')]);
    if (update.code !== 0) throw toolError(`update-schema of ${database}`, update);
    const reached = [...update.output.matchAll(/Schema updated from \S+ to (\S+)/g)].pop()?.[1];
    log(`database ${database}: ${schema} schema ${reached ? `updated to ${reached}` : 'already up to date'}`);
  }
}

function toolError(what: string, run: ToolRun): Error {
  const lines = run.output.trim().split('\n').filter((line) => /error|fail|fatal/i.test(line)).slice(-5);
  return new Error(`Temporal SQL tool: ${what} failed (exit ${run.code}):\n${(lines.length ? lines : run.output.trim().split('\n').slice(-10)).join('\n')}`);
}
