/**
 * A Temporal cluster on loopback, the way users run one past a single machine: PostgreSQL persistence and SQL
 * visibility, each service in its own process (a frontend, history and matching hosts, the internal worker service)
 * sharing deploy/temporal/config.yaml and dynamicconfig.yaml with docker-compose.yml; the namespace with batchkeeper's
 * search attributes; optionally Temporal Web and stock batchkeeper worker processes. State lives under .data/<name>/.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { WorkerFleet, type DisruptionCounters } from '../chaos/disruptions';
import { startPostgres, type PostgresHandle } from '../dev/postgres';
import { DATA_DIR } from '../dev/stack';
import { resolveServerBinaries, resolveUiBinaries } from './binaries';
import { ManagedProcess } from './managed-process';
import { prepareNamespace } from './namespace';
import { setupTemporalSchema, type SqlEndpoint, type TemporalDatabases } from './schema';
import {
  memberEnv, memberPorts, planTopology, readyPort, SERVER_CONFIG_FILE, sharedServerEnv, type Member,
} from './topology';
import { startUiServer, type UiServer } from './ui-server';

export interface ClusterOptions {
  /** Folder under .data/ for logs, the UI config and the embedded PostgreSQL. */
  name: string;
  historyHosts?: number;
  matchingHosts?: number;
  numHistoryShards?: number;
  namespace?: string;
  /** PostgreSQL at DATABASE_URL (its server holds Temporal's databases too) instead of the embedded one. */
  useDatabaseUrl?: boolean;
  /** Temporal's database names. Default temporal / temporal_visibility (embedded), <name>_temporal[_visibility] (DATABASE_URL). */
  databases?: TemporalDatabases;
  ui?: boolean;
  codecEndpoint?: string;
  /** Stock worker processes (worker/main.ts) on `taskQueue`; default none. */
  workers?: number;
  taskQueue?: string;
  /** Added to the workers' environment (provider keys and base URLs, tuning). */
  workerEnv?: NodeJS.ProcessEnv;
  log?: (message: string) => void;
}

export interface Cluster {
  /** The frontend's gRPC address. */
  address: string;
  namespace: string;
  uiUrl?: string;
  postgres: PostgresHandle;
  databases: TemporalDatabases;
  dir: string;
  members: ManagedProcess[];
  member(name: string): ManagedProcess;
  workers?: WorkerFleet;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const started = Date.now();
  const log = options.log ?? ((message: string) => console.log(`[cluster] ${message}`));
  const since = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const dir = path.join(DATA_DIR, options.name);
  mkdirSync(dir, { recursive: true });
  const namespace = options.namespace ?? 'default';
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((error) => log(`while stopping: ${(error as Error).message}`));
  };

  try {
    log('locating the Temporal Server and SQL tool (the first build from source takes a few minutes)...');
    const binaries = await resolveServerBinaries({ onProgress: log });
    const ui = options.ui ? await resolveUiBinaries({ onProgress: log }) : undefined;

    const postgres = await startPostgres({
      dataDir: path.join(dir, 'postgres'),
      env: options.useDatabaseUrl ? process.env : {},
      // Each service process keeps its own connection pools.
      postgresFlags: ['-c', 'max_connections=300'],
      onProgress: log,
    });
    stops.push(() => postgres.stop());
    const endpoint = sqlEndpoint(postgres.adminUrl);
    const databases = options.databases
      ?? (postgres.embedded ? { temporal: 'temporal', visibility: 'temporal_visibility' } : databaseNames(options.name));
    await setupTemporalSchema({ sqlTool: binaries.sql, schemaDir: binaries.schemaDir, endpoint, databases, log });

    const topology = await planTopology({ historyHosts: options.historyHosts ?? 2, matchingHosts: options.matchingHosts ?? 2 });
    const shared = sharedServerEnv(
      { endpoint, databases, numHistoryShards: options.numHistoryShards ?? 4, logLevel: 'warn', maxConnsPerProcess: 10 },
      topology.frontend,
    );
    const members = topology.members.map((member) => serviceProcess(member, binaries.server, shared, dir));
    stops.push(() => Promise.all(members.map((member) => member.close())));
    log(`starting ${members.map((member) => member.name).join(', ')} (logs in ${dir})...`);
    // The first process on an empty database writes the cluster metadata; processes started alongside it race for
    // that write, and the losers exit ("SaveClusterMetadata encountered version mismatch"). So: one, then the rest.
    await members[0]!.start();
    await Promise.all(members.slice(1).map((member) => member.start()));
    const address = `127.0.0.1:${topology.frontend.grpcPort}`;
    log(`Temporal frontend at ${address} after ${since()}`);

    await prepareNamespace({ address, namespace, log });

    let uiServer: UiServer | undefined;
    if (ui) {
      uiServer = await startUiServer({ binaries: ui, dir: path.join(dir, 'ui'), temporalAddress: address, namespace, codecEndpoint: options.codecEndpoint });
      stops.push(() => uiServer!.process.close());
      log(`Temporal Web at ${uiServer.url}`);
    }

    let workers: WorkerFleet | undefined;
    if (options.workers) {
      workers = workerFleet(options, { address, namespace, databaseUrl: postgres.url, dir, log, started });
      stops.push(() => workers!.stopAll());
      await workers.startAll();
      log(`${options.workers} batchkeeper workers polling task queue '${options.taskQueue ?? 'batchkeeper'}'`);
    }
    log(`cluster ready in ${since()}`);

    return {
      address,
      namespace,
      uiUrl: uiServer?.url,
      postgres,
      databases,
      dir,
      members,
      member(name: string) {
        const found = members.find((member) => member.name === name);
        if (!found) throw new Error(`no cluster member ${name}; members: ${members.map((member) => member.name).join(', ')}`);
        return found;
      },
      workers,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function serviceProcess(member: Member, server: string, shared: Record<string, string>, dir: string): ManagedProcess {
  return new ManagedProcess({
    name: member.name,
    command: server,
    args: ['--config-file', SERVER_CONFIG_FILE, '--allow-no-auth', 'start', '--service', member.service],
    // Offline machines: the frontend would otherwise call home for the version check.
    env: { PATH: process.env.PATH, TEMPORAL_VERSION_CHECK_DISABLED: '1', ...shared, ...memberEnv(member) },
    ports: memberPorts(member),
    readyPort: readyPort(member),
    logFile: path.join(dir, `${member.name}.log`),
  });
}

function workerFleet(
  options: ClusterOptions,
  at: { address: string; namespace: string; databaseUrl: string; dir: string; log: (message: string) => void; started: number },
): WorkerFleet {
  const counters: DisruptionCounters = { workerKills: 0, workerStarts: 0, workerCrashes: 0, serverRestarts: 0, postgresRestarts: 0, timeline: [] };
  return new WorkerFleet({
    count: options.workers!,
    env: {
      ...process.env,
      ...options.workerEnv,
      DATABASE_URL: at.databaseUrl,
      TEMPORAL_ADDRESS: at.address,
      TEMPORAL_NAMESPACE: at.namespace,
      BATCHKEEPER_TASK_QUEUE: options.taskQueue ?? 'batchkeeper',
    },
    logFile: path.join(at.dir, 'workers.log'),
    counters,
    rng: Math.random,
    restartDelayMs: [1000, 1000],
    progress: at.log,
    elapsedSeconds: () => (Date.now() - at.started) / 1000,
  });
}

/** Host, port and credentials of a postgres:// URL, for the SQL tool and the server config. */
export function sqlEndpoint(url: string): SqlEndpoint {
  const parsed = new URL(url);
  return {
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

/** Database names on a shared PostgreSQL server: prefixed by the cluster's name so that two clusters never meet. */
export function databaseNames(name: string): TemporalDatabases {
  const prefix = name.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');
  return { temporal: `${prefix}_temporal`, visibility: `${prefix}_temporal_visibility` };
}
