/**
 * The cluster's members and the environment each Temporal service process gets. The variable names are those of
 * deploy/temporal/config.yaml, the server config template docker-compose.yml's `temporal` service renders too: the
 * database settings are shared by every process, and each process gets the ports of its own service, all on
 * 127.0.0.1 (ringpop membership on loopback, one membership port per process).
 */
import path from 'node:path';
import { isFreePort } from '../scripts/ports';
import type { SqlEndpoint, TemporalDatabases } from './schema';

export type TemporalService = 'frontend' | 'history' | 'matching' | 'worker';

export const DEPLOY_DIR = path.resolve(__dirname, '..', '..', 'deploy', 'temporal');
export const SERVER_CONFIG_FILE = path.join(DEPLOY_DIR, 'config.yaml');
export const DYNAMIC_CONFIG_FILE = path.join(DEPLOY_DIR, 'dynamicconfig.yaml');

export interface Member {
  /** e.g. 'history-2' (the only one of its service: the service name). */
  name: string;
  service: TemporalService;
  grpcPort: number;
  membershipPort: number;
  /** Frontend only. */
  httpPort?: number;
}

export interface Topology {
  members: Member[];
  frontend: Member;
}

/**
 * Ports are drawn from here, not from the kernel's ephemeral range (32768 and up): the PostgreSQL schema keeps a
 * host's membership port in cluster_membership.rpc_port, a SMALLINT, and a host on a higher port dies at start
 * ("value is out of range for type smallint").
 */
const MEMBERSHIP_PORTS = { min: 20_000, max: 32_767 };

/** One frontend, `historyHosts` history and `matchingHosts` matching hosts, one internal worker service; free ports. */
export async function planTopology(options: { historyHosts: number; matchingHosts: number }): Promise<Topology> {
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const candidate = MEMBERSHIP_PORTS.min + Math.floor(Math.random() * (MEMBERSHIP_PORTS.max - MEMBERSHIP_PORTS.min));
      if (!taken.has(candidate) && (await isFreePort(candidate))) {
        taken.add(candidate);
        return candidate;
      }
    }
  };
  const member = async (service: TemporalService, index: number, count: number): Promise<Member> => ({
    name: count > 1 ? `${service}-${index + 1}` : service,
    service,
    grpcPort: await port(),
    membershipPort: await port(),
    ...(service === 'frontend' ? { httpPort: await port() } : {}),
  });
  const members: Member[] = [];
  const counts: [TemporalService, number][] = [['frontend', 1], ['history', options.historyHosts], ['matching', options.matchingHosts], ['worker', 1]];
  for (const [service, count] of counts) {
    for (let index = 0; index < count; index += 1) members.push(await member(service, index, count));
  }
  return { members, frontend: members[0]! };
}

export interface ServerSettings {
  endpoint: SqlEndpoint;
  databases: TemporalDatabases;
  numHistoryShards: number;
  logLevel: string;
  /** PostgreSQL connections per process (persistence; visibility gets half). */
  maxConnsPerProcess: number;
}

/** Variables every service process shares: database, shards, dynamic config, where the frontend is. */
export function sharedServerEnv(settings: ServerSettings, frontend: Member): Record<string, string> {
  const visibilityConns = String(Math.max(2, Math.floor(settings.maxConnsPerProcess / 2)));
  return {
    DB: 'postgres12',
    POSTGRES_SEEDS: settings.endpoint.host,
    DB_PORT: String(settings.endpoint.port),
    POSTGRES_USER: settings.endpoint.user,
    POSTGRES_PWD: settings.endpoint.password,
    DBNAME: settings.databases.temporal,
    VISIBILITY_DBNAME: settings.databases.visibility,
    NUM_HISTORY_SHARDS: String(settings.numHistoryShards),
    SQL_MAX_CONNS: String(settings.maxConnsPerProcess),
    SQL_MAX_IDLE_CONNS: String(settings.maxConnsPerProcess),
    SQL_VIS_MAX_CONNS: visibilityConns,
    SQL_VIS_MAX_IDLE_CONNS: visibilityConns,
    BIND_ON_IP: '127.0.0.1',
    LOG_LEVEL: settings.logLevel,
    DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG_FILE,
    // The worker service and the cluster metadata reach the frontend here.
    FRONTEND_GRPC_PORT: String(frontend.grpcPort),
    FRONTEND_HTTP_PORT: String(frontend.httpPort),
    FRONTEND_MEMBERSHIP_PORT: String(frontend.membershipPort),
  };
}

/** The member's own ports, under its service's variable names (HISTORY_GRPC_PORT, HISTORY_MEMBERSHIP_PORT, ...). */
export function memberEnv(member: Member): Record<string, string> {
  const prefix = member.service.toUpperCase();
  return { [`${prefix}_GRPC_PORT`]: String(member.grpcPort), [`${prefix}_MEMBERSHIP_PORT`]: String(member.membershipPort) };
}

/**
 * The port that accepts connections once the process is up: gRPC, except for the internal worker service, which
 * serves no gRPC and only joins the membership ring.
 */
export function readyPort(member: Member): number {
  return member.service === 'worker' ? member.membershipPort : member.grpcPort;
}

export function memberPorts(member: Member): Record<string, number> {
  return { grpc: member.grpcPort, membership: member.membershipPort, ...(member.httpPort ? { http: member.httpPort } : {}) };
}
