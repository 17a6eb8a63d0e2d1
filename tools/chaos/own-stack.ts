/**
 * The chaos soak's own servers, so that restarting them disturbs nobody else: a Temporal dev server with its state
 * in a file and an embedded PostgreSQL under the run's folder, and their restarts as the run's disruptions
 * (Temporal alternately SIGKILLed and SIGTERMed, PostgreSQL stopped for a while), interleaved.
 */
import path from 'node:path';
import { searchAttributeFlags } from '../../domain/search-attributes';
import { startDevServer } from '../dev/dev-server';
import { startPostgres } from '../dev/postgres';
import { resolveTemporalCli } from '../dev/temporal-cli';
import { InfraDisruptor, type ChaosStack, type Disruption, type DisruptionCounters } from './disruptions';
import { TASK_QUEUE, type ChaosOptions } from './options';

export async function startOwnStack(
  options: ChaosOptions,
  dir: string,
  ctx: { counters: DisruptionCounters; log: (message: string) => void; elapsedSeconds: () => number },
): Promise<ChaosStack> {
  const { log } = ctx;
  const cli = await resolveTemporalCli({ onProgress: (message) => log(message) });
  const postgresFlags = ['-c', 'max_connections=200'];
  const postgres = await startPostgres({ dataDir: path.join(dir, 'postgres'), env: {}, postgresFlags, onProgress: () => undefined });
  log(`embedded PostgreSQL on port ${postgres.port}`);
  const temporal = await startDevServer({
    binaryPath: cli.path,
    dbFile: path.join(dir, 'temporal.db'),
    uiPort: options.ui ? undefined : false,
    searchAttributes: searchAttributeFlags(),
    logFile: path.join(dir, 'temporal.log'),
  }).catch(async (error) => {
    await postgres.stop();
    throw error;
  });
  log(`Temporal dev server at ${temporal.address} (state in ${path.join(dir, 'temporal.db')})`);
  if (temporal.uiUrl) log(`Temporal Web: ${temporal.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(`TaskQueue="${TASK_QUEUE}"`)}`);
  const infra = new InfraDisruptor(temporal, postgres, { counters: ctx.counters, progress: log, elapsedSeconds: ctx.elapsedSeconds, postgresFlags });

  const disruptions: Disruption[] = [];
  for (let s = 0, p = 0; s < options.serverRestarts || p < options.postgresRestarts;) {
    if (s < options.serverRestarts) {
      const signal = s % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      disruptions.push({ kind: 'temporal', run: () => infra.restartTemporal(signal) });
      s += 1;
    }
    if (p < options.postgresRestarts) {
      disruptions.push({ kind: 'postgres', run: () => infra.restartPostgres(options.postgresDownMs) });
      p += 1;
    }
  }
  return {
    temporalAddress: temporal.address,
    namespace: 'default',
    databaseUrl: postgres.url,
    disruptions,
    async stop() {
      await temporal.stop();
      await infra.currentPostgres.stop();
    },
  };
}
