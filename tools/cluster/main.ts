/**
 * `npm run cluster [-- options]`: a Temporal cluster on loopback (PostgreSQL persistence, SQL visibility, one process
 * per service host), Temporal Web, and stock batchkeeper workers on one task queue. Ctrl-C stops everything.
 */
import { parseArgs } from 'node:util';
import { startFakeProvider, type FakeProvider } from '../../testing/fake-provider/server';
import { resolveServerBinaries, resolveUiBinaries } from './binaries';
import { startCluster } from './cluster';
import { startControlServer } from './control-server';
import { runSmokeCheck } from './smoke';

const USAGE = `npm run cluster -- [options]

  --workers N            batchkeeper worker processes (worker/main.ts) on task queue 'batchkeeper' (default 3)
  --history-hosts N      history service processes (default 2)
  --matching-hosts N     matching service processes (default 2)
  --database-url         keep Temporal's and batchkeeper's data on the PostgreSQL at DATABASE_URL
                         (default: an embedded PostgreSQL under .data/<name>/postgres)
  --providers-from-env   the workers use the provider keys and base URLs of this environment
                         (default: the fake provider, no keys needed)
  --no-ui                no Temporal Web
  --once                 start, run a batch and a job through the workers, stop (exit 0 when all worked)
  --build-only           build (or find) the Temporal Server, SQL tool and UI server, then exit
  --name NAME            folder under .data/ (default cluster)
`;

const log = (message: string) => console.log(`[cluster] ${message}`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '3' },
      'history-hosts': { type: 'string', default: '2' },
      'matching-hosts': { type: 'string', default: '2' },
      'database-url': { type: 'boolean', default: false },
      'providers-from-env': { type: 'boolean', default: false },
      'no-ui': { type: 'boolean', default: false },
      once: { type: 'boolean', default: false },
      'build-only': { type: 'boolean', default: false },
      name: { type: 'string', default: 'cluster' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const count = (flag: 'workers' | 'history-hosts' | 'matching-hosts', min: number): number => {
    const value = Number(values[flag]);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${flag} must be a whole number of at least ${min}`);
    return value;
  };
  if (values['database-url'] && !process.env.DATABASE_URL) throw new Error('--database-url: DATABASE_URL is not set');

  if (values['build-only']) {
    const started = Date.now();
    const server = await resolveServerBinaries({ onProgress: log });
    const ui = values['no-ui'] ? undefined : await resolveUiBinaries({ onProgress: log });
    log(`server ${server.server}, SQL tool ${server.sql}${ui ? `, UI server ${ui.server}` : ''}; schema ${server.schemaDir}`);
    log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  }

  const taskQueue = 'batchkeeper';
  let fake: FakeProvider | undefined;
  if (!values['providers-from-env']) {
    fake = await startFakeProvider({ processingMs: 2000 });
    log(`fake provider (OpenAI and Anthropic batch APIs) at ${fake.url}`);
  }
  const cluster = await startCluster({
    name: values.name!,
    historyHosts: count('history-hosts', 1),
    matchingHosts: count('matching-hosts', 1),
    useDatabaseUrl: values['database-url'],
    ui: !values['no-ui'],
    workers: count('workers', 0),
    taskQueue,
    workerEnv: fake ? {
      OPENAI_API_KEY: 'fake-key', OPENAI_BASE_URL: fake.openaiBaseUrl, ANTHROPIC_API_KEY: 'fake-key', ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
    } : {},
    log,
  }).catch(async (error) => {
    await fake?.close();
    throw error;
  });
  const control = await startControlServer(cluster.members);
  const stop = async () => {
    log('stopping...');
    await control.close();
    await cluster.stop();
    await fake?.close();
    log('stopped');
  };

  try {
    console.log([
      '',
      `  Temporal frontend   ${cluster.address}   (TEMPORAL_ADDRESS=${cluster.address} TEMPORAL_NAMESPACE=${cluster.namespace})`,
      `  Temporal Web        ${cluster.uiUrl ?? '(off)'}`,
      `  PostgreSQL          ${cluster.postgres.embedded ? `embedded, port ${cluster.postgres.port}` : 'DATABASE_URL'}; Temporal's databases ${cluster.databases.temporal}, ${cluster.databases.visibility}`,
      `  batchkeeper DB      DATABASE_URL=${cluster.postgres.url}`,
      ...cluster.members.map((member) => `  ${member.name.padEnd(18)}  pid ${member.pid}, ${Object.entries(member.spec.ports).map(([kind, port]) => `${kind} ${port}`).join(', ')}`),
      `  workers             ${cluster.workers ? `${cluster.workers.readyCount} on task queue '${taskQueue}'` : 'none'}`,
      `  fault injection     curl -X POST ${control.url}/members/history-1/kill   (…/start to bring it back; GET ${control.url}/members)`,
      `  logs                ${cluster.dir}`,
      '',
    ].join('\n'));
    if (values.once) {
      if (cluster.workers && fake) await runSmokeCheck(cluster, taskQueue, log);
      else log('--once: no smoke check (it needs --workers > 0 and the fake provider)');
      await stop();
      return 0;
    }
    log('running; press Ctrl-C to stop');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await stop();
    return 0;
  } catch (error) {
    await stop();
    throw error;
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
