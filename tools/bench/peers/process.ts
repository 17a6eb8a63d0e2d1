/**
 * Running a peer from the bench or a test: its PostgreSQL schema (batchkeeper's migrations + the peer's table), its
 * worker processes (peers/worker.ts), the app side that creates batches and hands them to the peer, and the
 * counts its workers keep.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Pool } from 'pg';
import { insertBatch, type NewBatch } from '../../../db/batches-store';
import { migrateDatabase } from '../../../db/migrate';
import { createPool, inTransaction } from '../../../db/pool';
import { createPeerTables, insertPeerBatch, type ChainStats, type PeerTiming } from './chain';
import { bullMqPeerClient } from './bullmq';
import { createEffectsTable } from './effects';
import { pgBossPeerClient } from './pgboss';

export type PeerName = 'pg-boss' | 'bullmq';
export const PEERS: PeerName[] = ['pg-boss', 'bullmq'];

const WORKER_MAIN = path.join(__dirname, 'worker.ts');
const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

export interface PeerSetup {
  peer: PeerName;
  databaseUrl: string;
  /** The peer's PostgreSQL schema, e.g. peer_pgboss. */
  schema: string;
  /** pg-boss's job schema. */
  bossSchema: string;
  redisUrl: string;
  /** BullMQ key prefix. */
  prefix: string;
  timing: PeerTiming;
  concurrency?: number;
  /** Provider variables (OPENAI_API_KEY, OPENAI_BASE_URL, ...) for the workers. */
  providerEnv: Record<string, string>;
  /** Name recorded with each handler effect (public.bench_effects.system). */
  system: string;
}

export function defaultSetup(peer: PeerName, base: Omit<PeerSetup, 'peer' | 'schema' | 'bossSchema' | 'prefix' | 'system'> & { tag?: string }): PeerSetup {
  const tag = base.tag ?? '';
  const short = peer === 'pg-boss' ? 'pgboss' : 'bullmq';
  return { ...base, peer, schema: `peer_${short}${tag}`, bossSchema: `pgboss_jobs${tag}`, prefix: `peer${tag}`, system: `${peer}${tag}` };
}

/** batchkeeper's tables in the peer's schema, the peer's own table, the shared effects table; a pool on that schema. */
export async function preparePeerDatabase(setup: PeerSetup): Promise<Pool> {
  await migrateDatabase(setup.databaseUrl, { schema: setup.schema });
  const pool = createPool(setup.databaseUrl, { schema: setup.schema, max: 8 });
  pool.on('error', () => undefined);
  await createPeerTables(pool);
  await createEffectsTable(pool);
  return pool;
}

/** The app's side: batches and their requests stored (the same insert batchkeeper's client makes), plus the peer's row. */
export async function insertPeerBatches(pool: Pool, batches: NewBatch[]): Promise<void> {
  for (const batch of batches) {
    await inTransaction(pool, async (db) => {
      await insertBatch(db, batch);
      await insertPeerBatch(db, batch.id);
    });
  }
}

export interface PeerClient {
  enqueueSubmit(batchIds: string[]): Promise<void>;
  enqueuePolls(jobs: { batchId: string; attempt: number; delayMs: number }[]): Promise<void>;
  deletePollJobs(batchId: string): Promise<number>;
  close(): Promise<void>;
}

export async function openPeerClient(setup: PeerSetup): Promise<PeerClient> {
  return setup.peer === 'pg-boss'
    ? pgBossPeerClient({ databaseUrl: setup.databaseUrl, bossSchema: setup.bossSchema, failureDetectionScale: setup.timing.failureDetectionScale })
    : bullMqPeerClient({ redisUrl: setup.redisUrl, prefix: setup.prefix });
}

export type StatsSnapshot = ReturnType<ChainStats['snapshot']>;

export class PeerProcess {
  private exited = false;
  private constructor(readonly name: string, readonly child: ChildProcess) {
    child.once('exit', () => {
      this.exited = true;
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return !this.exited;
  }

  static async spawn(setup: PeerSetup, name: string, onLine: (line: string) => void = () => undefined, timeoutMs = 60_000): Promise<PeerProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        ...setup.providerEnv,
        BENCH_PEER: setup.peer,
        DATABASE_URL: setup.databaseUrl,
        BENCH_PEER_SCHEMA: setup.schema,
        BENCH_PEER_BOSS_SCHEMA: setup.bossSchema,
        BENCH_PEER_REDIS_URL: setup.redisUrl,
        BENCH_PEER_PREFIX: setup.prefix,
        BENCH_PEER_TIMING: JSON.stringify(setup.timing),
        BENCH_PEER_CONCURRENCY: String(setup.concurrency ?? 50),
        BENCH_EFFECTS_SYSTEM: setup.system,
      },
    });
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) onLine(`[${name} ${child.pid}] ${line}`);
    };
    child.stdout!.on('data', forward);
    child.stderr!.on('data', forward);
    const worker = new PeerProcess(name, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs / 1000}s`)), timeoutMs);
      child.on('message', (message: { ready?: boolean }) => {
        if (message?.ready) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready`));
      });
    });
    return worker;
  }

  async stats(): Promise<StatsSnapshot> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not answer for its stats`)), 10_000);
      const onMessage = (message: { stats?: StatsSnapshot }) => {
        if (!message?.stats) return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolve(message.stats);
      };
      this.child.on('message', onMessage);
      this.child.send({ stats: true });
    });
  }

  resetStats(): void {
    this.child.send({ resetStats: true });
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), 15_000);
    await gone;
    clearTimeout(timer);
  }
}
