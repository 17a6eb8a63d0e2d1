/**
 * Measurement `faults`: the same faults for ours and the two peers at once, on the same work, then the same counts.
 *
 * Servers of its own that it may restart: an embedded PostgreSQL (ours' tables and each peer's schema, pg-boss's
 * jobs; restarted with the chaos harness's InfraDisruptor) and a Redis without persistence for BullMQ (peers/redis.ts).
 * Ours runs on the bench's Temporal dev server (not restarted here: the chaos soak restarts it) with two stock worker
 * processes (the chaos harness's WorkerFleet, handler from peers/effects.ts); each peer with two worker processes.
 *
 * Time scale FAULT_SCALE (30): the seed's schedule 60 s, 2 m, 5 m, 10 m, 30 m → 2, 4, 10, 20, 60 s; POLL_GRACE and the
 * resume sweep's period 5 min → 10 s; the expire sweep hourly → 2 min; max age 26 h → 52 min; the same schedule and
 * max age for ours' batches. The timeline is the preset's (`faults`, presets.ts); by default provider batches take
 * 30 s (15 min), submissions over the first 10 s; provider 429/5xx at random until 70 s; a random worker of each
 * system SIGKILLed every 8 s (restarted 1-3 s later) except during the drain; Redis SIGKILLed and restarted empty at
 * 25 s; PostgreSQL stopped for 3 s at 35 s; every worker of every system stopped (SIGTERM) at 48 s for 15 s, longer
 * than the grace; then nothing until every batch has run its handler, `settleMs` after the faults, or (ours done)
 * three resume periods without any handler running. `--quick` runs the same faults in half the time (15 s batches,
 * faults until 30 s, a 12 s drain). The queues' own failure
 * detection is compressed by the scale (floored at 5 s: pg-boss's job expiry 30 s, BullMQ's lock and stalled check
 * 5 s); ours' Temporal timeouts are not.
 *
 * Counts per system: lost (handler never ran by the end), stalled past their schedule (handler ran later than the
 * provider's finish + the schedule's gap at that age + POLL_GRACE + the time PostgreSQL was down or no worker ran; the
 * lost count among them), how long each stalled batch waited, results discarded at expiry (requests stored without
 * their result although the provider produced it), duplicate provider batches (the fake's creates per batch beyond
 * one), duplicate handler effects (public.bench_effects.effects beyond one).
 */
import path from 'node:path';
import type { Pool } from 'pg';
import { insertBatch, type NewBatch } from '../../../db/batches-store';
import { migrateDatabase } from '../../../db/migrate';
import { createPool, inTransaction } from '../../../db/pool';
import { BATCH_WORKFLOW_TYPE } from '../../../domain/workflow-ids';
import { batchStartOptions } from '../../../domain/workflow-start';
import { seededRng } from '../../../testing/fake-provider/random';
import { InfraDisruptor, WorkerFleet, type DisruptionCounters } from '../../chaos/disruptions';
import { createDatabase, databaseUrlWithName, dropDatabase, startPostgres } from '../../dev/postgres';
import { benchBatch, sleep, type BenchContext } from '../context';
import { API_KEY } from '../presets';
import { round2, type BenchDetails } from '../report';
import { scaledTiming, type PeerTiming } from './chain';
import { createEffectsTable, EFFECT_HANDLER } from './effects';
import { defaultSetup, insertPeerBatches, openPeerClient, PEERS, PeerProcess, preparePeerDatabase, type PeerClient, type PeerName, type PeerSetup } from './process';
import { startBenchRedis, type BenchRedis } from './redis';

export const FAULT_SCALE = 30;
const TASK_QUEUE = 'bench-faults';

interface Outage { from: number; to: number; what: string }

/** Two peer worker processes, each restarted after a kill. */
class PeerFleet {
  private slots: (PeerProcess | undefined)[] = [];
  private stopped = false;
  constructor(private readonly setup: PeerSetup, private readonly count: number, private readonly ctx: BenchContext, private readonly counters: DisruptionCounters) {}

  async startAll(): Promise<void> {
    this.stopped = false;
    this.slots = await Promise.all(Array.from({ length: this.count }, (_, index) => this.spawn(index)));
  }

  private spawn(index: number): Promise<PeerProcess> {
    return PeerProcess.spawn(this.setup, `${this.setup.peer}-f${index}`, (line) => {
      if (/error|failed/i.test(line) && !/duplicate key|failed \(attempt|job .* failed/i.test(line)) this.ctx.log(line.slice(0, 240));
    }, 120_000);
  }

  killRandom(rng: () => number, delayMs: [number, number]): void {
    const running = this.slots.map((slot, index) => ({ slot, index })).filter(({ slot }) => slot?.running);
    if (!running.length) return;
    const { slot, index } = running[Math.floor(rng() * running.length)]!;
    slot!.kill();
    this.counters.workerKills += 1;
    this.slots[index] = undefined;
    const delay = Math.round(delayMs[0] + rng() * (delayMs[1] - delayMs[0]));
    this.restartLater(index, delay);
  }

  /** As a supervisor would: again 2 s later when the start fails (PostgreSQL or Redis down). */
  private restartLater(index: number, delayMs: number): void {
    setTimeout(() => {
      if (this.stopped) return;
      this.spawn(index).then((worker) => {
        if (this.stopped) void worker.stop();
        else this.slots[index] = worker;
      }, (error) => {
        this.ctx.log(`${this.setup.peer} worker ${index} did not start (${(error as Error).message}); again in 2 s`);
        this.restartLater(index, 2000);
      });
    }, delayMs);
  }

  async stopAll(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.slots.map((slot) => slot?.stop()));
    this.slots = [];
  }
}

interface SystemRun {
  name: string;
  /** public.bench_effects.system of its handler effects. */
  effectsSystem: string;
  schema: string;
  batches: NewBatch[];
  pool: Pool;
  client?: PeerClient;
}

/** The seed's gaps (its first entry used twice), the one in force when a batch of age `ageMs` is next polled. */
export function seedGapAt(schedule: number[], ageMs: number): number {
  const gaps = [schedule[0], ...schedule];
  let elapsed = 0;
  for (let index = 0; ; index += 1) {
    const gap = gaps[Math.min(index, gaps.length - 1)];
    elapsed += gap;
    if (elapsed >= ageMs) return gap;
  }
}

function overlap(from: number, to: number, outages: Outage[]): number {
  return outages.reduce((sum, outage) => sum + Math.max(0, Math.min(to, outage.to) - Math.max(from, outage.from)), 0);
}

export async function runFaults(ctx: BenchContext, details: BenchDetails) {
  const plan = ctx.preset.faults;
  const timing: PeerTiming = scaledTiming(FAULT_SCALE, { failureDetectionScale: FAULT_SCALE });
  const started = Date.now();
  const elapsedSeconds = () => Math.round((Date.now() - started) / 100) / 10;
  const counters: DisruptionCounters = { workerKills: 0, workerStarts: 0, workerCrashes: 0, serverRestarts: 0, postgresRestarts: 0, timeline: [] };
  const cleanups: (() => Promise<unknown>)[] = [];
  const outages: Outage[] = [];
  const log = (message: string) => ctx.log(`faults +${elapsedSeconds().toFixed(1)}s: ${message}`);
  const errors: string[] = [];
  try {
    const postgresFlags = ['-c', 'max_connections=300'];
    const pg = await startPostgres({ dataDir: path.join(ctx.dataDir, 'faults-postgres'), env: {}, postgresFlags });
    const infra = new InfraDisruptor(ctx.stack.temporal, pg, { counters, progress: log, elapsedSeconds, postgresFlags });
    cleanups.push(() => infra.currentPostgres.stop());
    await dropDatabase(pg.adminUrl, 'bk_faults').catch(() => undefined);
    await createDatabase(pg.adminUrl, 'bk_faults');
    const databaseUrl = databaseUrlWithName(pg.adminUrl, 'bk_faults');
    await migrateDatabase(databaseUrl);
    const oursPool = createPool(databaseUrl, { max: 8, connectionTimeoutMillis: 5000 });
    oursPool.on('error', () => undefined);
    cleanups.push(() => oursPool.end());
    await createEffectsTable(oursPool);

    let redis: BenchRedis | undefined;
    try {
      redis = await startBenchRedis(log);
      cleanups.push(() => redis!.stop());
    } catch (error) {
      errors.push(`bullmq: ${(error as Error).message}`);
      log(`BullMQ peer ABSENT: ${(error as Error).message}`);
    }

    const providerEnv = { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: ctx.fake.openaiBaseUrl };
    ctx.fake.configure({ processingMs: plan.processingMs });
    const batchFor = (label: string) => benchBatch({ requests: 4, pollScheduleMs: timing.pollScheduleMs, maxAgeMs: timing.maxAgeMs, handler: EFFECT_HANDLER, label });

    // --- ours: two stock workers on their own task queue -----------------------------------------------------
    const oursEnv: NodeJS.ProcessEnv = { ...process.env, ...providerEnv, DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: ctx.stack.temporal.address,
      TEMPORAL_NAMESPACE: 'default', BATCHKEEPER_TASK_QUEUE: TASK_QUEUE, BATCHKEEPER_HANDLERS_MODULE: path.join(__dirname, 'effects.ts'),
      BENCH_EFFECTS_SYSTEM: 'ours' };
    const rng = seededRng(17);
    const newFleet = () => new WorkerFleet({ count: 2, env: oursEnv, logFile: path.join(ctx.dataDir, 'faults-workers.log'), counters, rng,
      restartDelayMs: plan.restartDelayMs, progress: (message) => log(`ours ${message}`), elapsedSeconds });
    let oursFleet = newFleet();
    await oursFleet.startAll();
    cleanups.push(() => oursFleet.stopAll());

    // --- the peers: two workers each ------------------------------------------------------------------------------
    const systems: SystemRun[] = [{ name: 'ours', effectsSystem: 'ours', schema: 'batchkeeper', batches: [], pool: oursPool }];
    const fleets = new Map<PeerName, PeerFleet>();
    for (const peer of PEERS) {
      if (peer === 'bullmq' && !redis) continue;
      const setup = defaultSetup(peer, { databaseUrl, redisUrl: redis?.url ?? '', timing, concurrency: 50, providerEnv, tag: '_faults' });
      const pool = await preparePeerDatabase(setup);
      cleanups.push(() => pool.end());
      const client = await openPeerClient(setup);
      cleanups.push(() => client.close().catch(() => undefined));
      const fleet = new PeerFleet(setup, 2, ctx, counters);
      await fleet.startAll();
      cleanups.push(() => fleet.stopAll());
      fleets.set(peer, fleet);
      systems.push({ name: peer, effectsSystem: setup.system, schema: setup.schema, batches: [], pool, client });
    }
    for (const system of systems) system.batches = Array.from({ length: plan.batchesPerSystem }, () => batchFor(`faults-${system.name}`));
    log(`${plan.batchesPerSystem} batches for each of ${systems.map((system) => system.name).join(', ')}; scale ${FAULT_SCALE} ` +
      `(schedule ${timing.pollScheduleMs.join('/')} ms, grace ${timing.pollGraceMs} ms, resume every ${timing.resumeEveryMs} ms, expire every ${timing.expireEveryMs} ms, max age ${timing.maxAgeMs} ms)`);

    // --- faults ---------------------------------------------------------------------------------------------------------
    const t0 = Date.now();
    ctx.fake.setFaultRates({ seed: 17, rules: [
      { route: '*', kind: 'http_error', status: 429, retryAfterMs: 300, rate: 0.05 },
      { route: '*', kind: 'http_error', status: 503, retryAfterMs: 200, rate: 0.03 },
      { route: '*', kind: 'http_error', status: 500, rate: 0.02 },
    ] });
    let draining = false;
    const submitting = (async () => {
      const total = plan.batchesPerSystem;
      for (let index = 0; index < total; index += 1) {
        await sleep(Math.max(0, t0 + (index * plan.submitOverMs) / total - Date.now()));
        await Promise.all(systems.map(async (system) => {
          const batch = system.batches[index];
          if (system.client) {
            await insertPeerBatches(system.pool, [batch]);
            await system.client.enqueueSubmit([batch.id]);
          } else {
            await inTransaction(system.pool, (db) => insertBatch(db, batch));
            await ctx.temporal.workflow.start(BATCH_WORKFLOW_TYPE, batchStartOptions({ ...batch, status: 'pending', requestCount: batch.requests.length }, TASK_QUEUE));
          }
        }));
      }
      log('all batches submitted');
    })();
    const kills = (async () => {
      await sleep(plan.killFromMs);
      while (Date.now() - t0 < plan.faultsUntilMs - 5000) {
        if (!draining) {
          oursFleet.killRandom();
          for (const fleet of fleets.values()) fleet.killRandom(rng, plan.restartDelayMs);
        }
        await sleep(plan.killEveryMs);
      }
    })();
    const at = (ms: number) => sleep(Math.max(0, t0 + ms - Date.now()));
    const disruptions = (async () => {
      await submitting;
      if (redis?.restart) {
        await at(plan.redisRestartAtMs);
        log('Redis SIGKILLed; restarting it empty (no persistence)');
        await redis.restart();
        counters.serverRestarts += 1;
        log('Redis back');
      }
      await at(plan.postgresRestartAtMs);
      const down = Date.now();
      await infra.restartPostgres(plan.postgresDownMs);
      counters.postgresRestarts += 1;
      outages.push({ from: down, to: Date.now(), what: 'postgres' });
      await at(plan.drainAtMs);
      draining = true;
      const drainFrom = Date.now();
      log(`drain: every worker of every system stopped for ${plan.drainForMs / 1000}s`);
      await Promise.all([oursFleet.stopAll(), ...[...fleets.values()].map((fleet) => fleet.stopAll())]);
      await sleep(plan.drainForMs);
      oursFleet = newFleet();
      await Promise.all([oursFleet.startAll(), ...[...fleets.values()].map((fleet) => fleet.startAll())]);
      outages.push({ from: drainFrom, to: Date.now(), what: 'drain' });
      draining = false;
      log('drain over: workers back');
      await at(plan.faultsUntilMs);
      ctx.fake.clearFaults();
      log('faults over');
    })();
    await Promise.all([submitting, kills, disruptions]);

    // --- settle: until every handler ran, or the cap ----------------------------------------------------------------
    const dispatchedCount = async (system: SystemRun) => {
      const table = system.client ? 'peer_batches' : 'batches';
      const column = system.client ? 'batch_id' : 'id';
      const { rows } = await system.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} = ANY($1::uuid[]) AND handler_dispatched_at IS NOT NULL`,
        [system.batches.map((batch) => batch.id)]);
      return rows[0].n as number;
    };
    const faultsOver = Date.now();
    let lastProgressAt = faultsOver;
    let lastCounts = '';
    for (;;) {
      const counts = await Promise.all(systems.map((system) => dispatchedCount(system).catch(() => -1)));
      if (counts.every((count) => count === plan.batchesPerSystem)) break;
      if (counts.join() !== lastCounts) {
        lastCounts = counts.join();
        lastProgressAt = Date.now();
      }
      if (Date.now() - faultsOver > plan.settleMs) {
        log(`${plan.settleMs / 1000}s after the faults: the run ends`);
        break;
      }
      // Ours done, and no system moved for three of the chain's resume periods: what is left will not come back.
      const idleMs = 3 * timing.resumeEveryMs;
      if (counts[0] === plan.batchesPerSystem && Date.now() - lastProgressAt > idleMs) {
        log(`no handler ran for ${idleMs / 1000}s (three resume periods) with ours done: the run ends`);
        break;
      }
      log(`dispatched: ${systems.map((system, index) => `${system.name} ${counts[index]}/${plan.batchesPerSystem}`).join(', ')}`);
      await sleep(5000);
    }
    const runEnd = Date.now();
    const figures: Record<string, unknown> = {};
    for (const system of systems) figures[system.name] = await countSystem(ctx, system, timing, outages, runEnd);
    details.faults = {
      scale: FAULT_SCALE,
      timing,
      providerProcessingMs: plan.processingMs,
      plan,
      batchesPerSystem: plan.batchesPerSystem,
      counters: { workerKills: counters.workerKills, workerStarts: counters.workerStarts, redisRestarts: redis?.restart ? 1 : 0, postgresRestarts: counters.postgresRestarts },
      outages: outages.map((outage) => ({ what: outage.what, fromSeconds: round2((outage.from - t0) / 1000), seconds: round2((outage.to - outage.from) / 1000) })),
      runSeconds: round2((runEnd - t0) / 1000),
      settleSeconds: round2((runEnd - faultsOver) / 1000),
      systems: figures,
      timeline: counters.timeline,
      errors,
      definition: 'stalled: handler ran (or the run ended) later than provider finish + the seed schedule\'s gap at that age + POLL_GRACE + outage time (PostgreSQL down, drain) in between; lost are counted among them. ' +
        'discardedAtExpiry: requests stored without their result although the fake produced it. Ours is not restarted on Temporal here (the chaos soak does that).',
    };
    for (const [name, value] of Object.entries(figures)) log(`${name}: ${JSON.stringify(value)}`);
    return { errors };
  } finally {
    ctx.fake.clearFaults();
    for (const fn of cleanups.reverse()) await fn().catch((error) => ctx.log(`faults cleanup: ${(error as Error).message}`));
  }
}

async function countSystem(ctx: BenchContext, system: SystemRun, timing: PeerTiming, outages: Outage[], runEnd: number) {
  const ids = system.batches.map((batch) => batch.id);
  const peer = Boolean(system.client);
  const { rows } = await system.pool.query<{ id: string; dispatched: Date | null; parts: string[] | null; succeeded: number; requests: number }>(
    `SELECT b.id, ${peer ? 'pb.handler_dispatched_at' : 'b.handler_dispatched_at'} AS dispatched,
            (SELECT array_agg(p.provider_batch_id) FILTER (WHERE p.provider_batch_id IS NOT NULL) FROM provider_batches p WHERE p.batch_id = b.id) AS parts,
            (SELECT count(*)::int FROM request_outcomes o WHERE o.batch_id = b.id AND o.status = 'succeeded') AS succeeded,
            b.request_count AS requests
       FROM batches b ${peer ? 'JOIN peer_batches pb ON pb.batch_id = b.id' : ''}
      WHERE b.id = ANY($1::uuid[])`,
    [ids],
  );
  const { rows: effects } = await system.pool.query<{ batch_id: string; effects: number }>(
    'SELECT batch_id, effects FROM public.bench_effects WHERE system = $1 AND batch_id = ANY($2::uuid[])', [system.effectsSystem, ids]);
  const created = new Map<string, { id: string; createdAt: string }[]>();
  for (const info of ctx.fake.createdBatches()) {
    const tag = info.batchkeeperBatchId?.split('.')[0];
    if (tag && ids.includes(tag)) created.set(tag, [...(created.get(tag) ?? []), { id: info.id, createdAt: info.createdAt }]);
  }
  let lost = 0;
  let discardedAtExpiry = 0;
  const waitedMs: number[] = [];
  for (const row of rows) {
    if (!row.dispatched) lost += 1;
    // Every provider batch the fake created for it (also one whose id the system never stored).
    const providerIds = [...new Set([...(row.parts ?? []), ...(created.get(row.id) ?? []).map((info) => info.id)])];
    const stored = new Set(row.parts ?? []);
    let finishedAt = 0;
    let createdAt = Infinity;
    let completed = stored.size > 0;
    for (const id of providerIds) {
      const batch = ctx.fake.batch(id);
      if (!batch) continue;
      const created_ = Date.parse(batch.timeline.createdAt);
      createdAt = Math.min(createdAt, created_);
      finishedAt = Math.max(finishedAt, created_ + batch.timeline.processingMs);
      if (stored.has(id) && batch.phase !== 'completed') completed = false;
    }
    if (row.dispatched && completed) discardedAtExpiry += Math.max(0, row.requests - row.succeeded);
    if (!finishedAt || finishedAt > runEnd) continue;
    const end = row.dispatched?.getTime() ?? runEnd;
    const allowed = seedGapAt(timing.pollScheduleMs, finishedAt - createdAt) + timing.pollGraceMs;
    const waited = end - finishedAt - overlap(finishedAt, end, outages);
    if (waited > allowed) waitedMs.push(Math.round(waited));
  }
  const providerCreates = [...created.values()].reduce((sum, list) => sum + list.length, 0);
  waitedMs.sort((a, b) => a - b);
  return {
    batches: ids.length,
    dispatched: rows.filter((row) => row.dispatched).length,
    lost,
    stalled: waitedMs.length,
    stalledWaitedMs: { max: waitedMs.length ? waitedMs[waitedMs.length - 1] : 0, median: waitedMs.length ? waitedMs[Math.floor(waitedMs.length / 2)] : 0, all: waitedMs },
    discardedAtExpiry,
    duplicateProviderBatches: providerCreates - created.size,
    neverSubmitted: ids.length - created.size,
    duplicateHandlerEffects: effects.reduce((sum, row) => sum + Math.max(0, row.effects - 1), 0),
    handlerEffects: effects.length,
  };
}

