/**
 * The local stack shared by `npm start`, `npm test` and the chaos and bench scripts: a Temporal dev server (built
 * or found), PostgreSQL (DATABASE_URL or embedded), both under .data/.
 */
import path from 'node:path';
import { searchAttributeFlags } from '../../domain/search-attributes';
import { startDevServer, type DevServer } from './dev-server';
import { startPostgres, type PostgresHandle } from './postgres';
import { resolveTemporalCli } from './temporal-cli';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const DATA_DIR = path.join(PROJECT_ROOT, '.data');

export interface LocalStack {
  temporal: DevServer;
  postgres: PostgresHandle;
  temporalCliPath: string;
  stop(): Promise<void>;
}

export async function startLocalStack(options: {
  /** Sub-folder of .data/ for this use (start, test, chaos, bench). */
  name: string;
  /** Keep Temporal state in a file under .data/<name>/ (survives restarts); default in-memory. */
  persistTemporal?: boolean;
  uiPort?: number | false;
  temporalPort?: number;
  extraTemporalArgs?: string[];
  postgresFlags?: string[];
  onProgress?: (message: string) => void;
}): Promise<LocalStack> {
  const progress = options.onProgress ?? ((message: string) => console.log(`[stack] ${message}`));
  const dir = path.join(DATA_DIR, options.name);
  progress('locating the Temporal dev server binary (the first build from source takes a few minutes)...');
  const cli = await resolveTemporalCli({ onProgress: progress });
  progress(`Temporal CLI: ${cli.path} (${cli.source})`);
  progress('starting PostgreSQL...');
  const postgres = await startPostgres({ dataDir: path.join(dir, 'postgres'), onProgress: progress, postgresFlags: options.postgresFlags });
  progress(postgres.embedded ? `embedded PostgreSQL on port ${postgres.port}` : 'using DATABASE_URL');
  progress('starting the Temporal dev server...');
  let temporal: DevServer;
  try {
    temporal = await startDevServer({
      binaryPath: cli.path,
      dbFile: options.persistTemporal ? path.join(dir, 'temporal.db') : undefined,
      port: options.temporalPort,
      uiPort: options.uiPort,
      searchAttributes: searchAttributeFlags(),
      extraArgs: options.extraTemporalArgs,
      logFile: path.join(dir, 'temporal.log'),
    });
  } catch (error) {
    await postgres.stop();
    throw error;
  }
  progress(`Temporal at ${temporal.address}${temporal.uiUrl ? `, Temporal Web at ${temporal.uiUrl}` : ''}`);
  return {
    temporal,
    postgres,
    temporalCliPath: cli.path,
    async stop() {
      await temporal.stop().catch(() => undefined);
      await postgres.stop().catch(() => undefined);
    },
  };
}
