/**
 * What the chaos soak does to the system: worker processes SIGKILLed at random moments and started again, the
 * Temporal dev server restarted on its state file, PostgreSQL stopped and started again on the same port and data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { DevServer } from '../dev/dev-server';
import { startPostgres, type PostgresHandle } from '../dev/postgres';
import type { Rng } from '../../testing/fake-provider/random';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const WORKER_MAIN = path.join(PROJECT_ROOT, 'worker', 'main.ts');
const READY_MARK = 'worker polling task queue';

/** One disruption of the servers (not the workers): the run spreads them over its chaos phase, one at a time. */
export interface Disruption {
  /** What it restarts: counted as a Temporal server or a PostgreSQL restart. */
  kind: 'temporal' | 'postgres';
  /** Takes the server down and brings it back; resolves once it serves again. */
  run(): Promise<void>;
}

/** The servers a chaos run uses: its own (own-stack.ts) or a stack someone else started and stops (a cluster). */
export interface ChaosStack {
  temporalAddress: string;
  namespace: string;
  databaseUrl: string;
  disruptions: Disruption[];
  stop(): Promise<void>;
}

export interface DisruptionCounters {
  workerKills: number;
  workerStarts: number;
  /** Worker processes that exited without being killed by us (e.g. could not migrate while PostgreSQL was down). */
  workerCrashes: number;
  serverRestarts: number;
  postgresRestarts: number;
  /** What happened when, for the report. */
  timeline: { atSeconds: number; event: string }[];
}

interface WorkerSlot {
  index: number;
  child?: ChildProcess;
  /** The process we started last answered "polling". */
  ready: boolean;
  /** A restart is scheduled; no other kill or restart meanwhile. */
  restarting: boolean;
  killedByUs: Set<number>;
}

/**
 * N worker processes (`worker/main.ts`, configured only through the environment) on one task queue, each restarted
 * after it dies: after a kill by us after a random pause, after a crash after a short one.
 */
export class WorkerFleet {
  private readonly slots: WorkerSlot[];
  private readonly log: WriteStream;
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Every pid we SIGKILLed (worker identities are `pid@host`). */
  readonly killedPids = new Set<number>();

  constructor(
    private readonly options: {
      count: number;
      env: NodeJS.ProcessEnv;
      logFile: string;
      counters: DisruptionCounters;
      rng: Rng;
      restartDelayMs: [number, number];
      progress: (message: string) => void;
      elapsedSeconds: () => number;
    },
  ) {
    this.slots = Array.from({ length: options.count }, (_, index) => ({ index, ready: false, restarting: false, killedByUs: new Set<number>() }));
    this.log = createWriteStream(options.logFile, { flags: 'a' });
  }

  /** Starts every worker and waits until each polls its task queue. */
  async startAll(timeoutMs = 120_000): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.start(slot)));
    await this.waitReady(timeoutMs);
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.slots.every((slot) => slot.ready)) {
      if (Date.now() > deadline) throw new Error(`workers not ready after ${timeoutMs / 1000}s; see ${this.options.logFile}`);
      await sleep(200);
    }
  }

  get readyCount(): number {
    return this.slots.filter((slot) => slot.ready).length;
  }

  /** SIGKILLs one running worker chosen at random (none when every worker is down or restarting). */
  killRandom(): number | undefined {
    const candidates = this.slots.filter((slot) => slot.child && !slot.restarting && slot.child.exitCode === null && slot.child.signalCode === null);
    if (candidates.length === 0) return undefined;
    const slot = candidates[Math.floor(this.options.rng() * candidates.length)]!;
    const child = slot.child!;
    slot.killedByUs.add(child.pid!);
    this.killedPids.add(child.pid!);
    slot.restarting = true;
    slot.ready = false;
    child.kill('SIGKILL');
    this.options.counters.workerKills += 1;
    const [min, max] = this.options.restartDelayMs;
    const delay = Math.round(min + this.options.rng() * (max - min));
    this.event(`worker ${slot.index} (pid ${child.pid}) SIGKILLed; restart in ${(delay / 1000).toFixed(1)}s`);
    this.later(delay, () => {
      slot.restarting = false;
      void this.start(slot);
    });
    return slot.index;
  }

  private async start(slot: WorkerSlot): Promise<void> {
    if (this.stopping) return;
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.options.env,
    });
    slot.child = child;
    slot.ready = false;
    this.options.counters.workerStarts += 1;
    const tag = `[w${slot.index} ${child.pid}]`;
    let pending = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      this.log.write(text.split('\n').filter((line) => line).map((line) => `${new Date().toISOString()} ${tag} ${line}\n`).join(''));
      if (!slot.ready && slot.child === child) {
        pending = (pending + text).slice(-4000);
        if (pending.includes(READY_MARK)) {
          slot.ready = true;
          pending = '';
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      this.log.write(`${new Date().toISOString()} ${tag} exited (${code ?? signal})\n`);
      if (slot.child !== child) return;
      slot.ready = false;
      if (this.stopping || slot.killedByUs.has(child.pid!)) return;
      // Not our kill: a crash (e.g. PostgreSQL down while migrating at start). A supervisor would restart it.
      this.options.counters.workerCrashes += 1;
      this.event(`worker ${slot.index} (pid ${child.pid}) exited on its own (${code ?? signal}); restarting in 2s`);
      slot.restarting = true;
      this.later(2000, () => {
        slot.restarting = false;
        void this.start(slot);
      });
    });
  }

  /** SIGTERM (the worker shuts down gracefully), SIGKILL after a grace period. */
  async stopAll(graceMs = 3000): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.all(this.slots.map(async (slot) => {
      const child = slot.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }));
    await new Promise<void>((resolve) => this.log.end(resolve));
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private event(message: string): void {
    this.options.counters.timeline.push({ atSeconds: this.options.elapsedSeconds(), event: message });
    this.options.progress(message);
  }
}

/** Restarts of the two servers; one at a time. */
export class InfraDisruptor {
  constructor(
    private readonly temporal: DevServer,
    private postgres: PostgresHandle,
    private readonly options: {
      counters: DisruptionCounters;
      progress: (message: string) => void;
      elapsedSeconds: () => number;
      postgresFlags?: string[];
    },
  ) {}

  get currentPostgres(): PostgresHandle {
    return this.postgres;
  }

  /** Same port, same SQLite state file; SIGKILL simulates a crash, SIGTERM a deploy. */
  async restartTemporal(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const started = Date.now();
    this.event(`Temporal dev server restart (${signal}) begins`);
    await this.temporal.restart({ signal });
    this.event(`Temporal dev server back on ${this.temporal.address} after ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }

  /** Stops the embedded PostgreSQL (fast shutdown: every connection is cut), waits, starts it on the same port. */
  async restartPostgres(downMs: number): Promise<void> {
    const { port, dataDir } = this.postgres;
    if (!port || !dataDir) throw new Error('PostgreSQL restarts need the embedded server');
    const started = Date.now();
    this.event(`PostgreSQL restart begins (down for ${(downMs / 1000).toFixed(1)}s)`);
    await this.postgres.stop();
    await sleep(downMs);
    for (let attempt = 1; ; attempt += 1) {
      try {
        this.postgres = await startPostgres({ dataDir, port, env: {}, postgresFlags: this.options.postgresFlags });
        break;
      } catch (error) {
        if (attempt >= 5) throw error;
        this.options.progress(`PostgreSQL did not start (attempt ${attempt}): ${(error as Error).message.split('\n')[0]}; retrying`);
        await sleep(1000);
      }
    }
    this.event(`PostgreSQL back on port ${port} after ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }

  private event(message: string): void {
    this.options.counters.timeline.push({ atSeconds: this.options.elapsedSeconds(), event: message });
    this.options.progress(message);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
