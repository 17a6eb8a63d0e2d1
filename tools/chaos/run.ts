/**
 * The chaos soak, orchestrated: its own Temporal dev server (state in a file) and embedded PostgreSQL under
 * .data/<name>/ (own-stack.ts) or servers the caller started (a cluster), the fake provider in this process with
 * fault rates, worker processes, a paced mix of batches and generic jobs, disruptions while they are in flight, an
 * operator that resolves the dead letters it planted, a drain, then the end checks (chaos/invariants.ts) and the
 * report (chaos/report.ts).
 */
import { rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { BatchkeeperAdmin } from '../../client/admin';
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import { IdempotencyConflictError, NotApplicableError, ValidationError } from '../../client/errors';
import { listDeadLetters } from '../../db/dead-letters-store';
import { migrateDatabase } from '../../db/migrate';
import { createPool } from '../../db/pool';
import type { OutcomeSpec, RequestOutcome } from '../../testing/fake-provider/config';
import type { FaultRule } from '../../testing/fake-provider/faults';
import { seededRng, type Rng } from '../../testing/fake-provider/random';
import { startFakeProvider, type FakeProvider } from '../../testing/fake-provider/server';
import { PROJECT_ROOT, sleep, WorkerFleet, type ChaosStack, type Disruption, type DisruptionCounters } from './disruptions';
import { CHAOS_BATCH_HANDLER, CHAOS_JOB_TYPE, CHAOS_TABLES_DDL } from './handlers';
import { TASK_QUEUE, type ChaosOptions, type ChaosResult } from './options';
import type { PlannedItem, PoisonPlan } from './plan';
import { checkInvariants, classifyOpen, type InvariantReport } from './invariants';
import { startOwnStack } from './own-stack';

const API_KEY = 'sk-chaos-not-a-real-key';
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const started = Date.now();
  const elapsedSeconds = () => Math.round((Date.now() - started) / 100) / 10;
  const log = (message: string) => (options.log ?? console.log)(`[chaos +${elapsedSeconds().toFixed(1)}s] ${message}`);
  const rng = seededRng(options.seed);
  const dir = path.join(PROJECT_ROOT, '.data', options.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const counters: DisruptionCounters = { workerKills: 0, workerStarts: 0, workerCrashes: 0, serverRestarts: 0, postgresRestarts: 0, timeline: [] };
  const cleanups: (() => Promise<unknown>)[] = [];
  /** Ends the background loops (monitor, operator, disruptions), also when the run fails part-way. */
  const loops = { stop: false };
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((error) => log(`cleanup: ${(error as Error).message}`));
  };

  try {
    // --- the stack: our own servers (restarted as planned), or one the caller started ---------------------------
    log(`data in ${dir}`);
    const stack: ChaosStack = options.stack ?? await startOwnStack(options, dir, { counters, log, elapsedSeconds });
    if (!options.stack) cleanups.push(() => stack.stop());

    const { databaseUrl } = stack;
    await migrateDatabase(databaseUrl);
    const pool = createPool(databaseUrl, { max: 8, connectionTimeoutMillis: 5000 });
    cleanups.push(() => pool.end());
    for (const ddl of CHAOS_TABLES_DDL) await pool.query(ddl);

    const connection = await Connection.connect({ address: stack.temporalAddress });
    cleanups.push(() => connection.close());
    const temporalClient = new Client({ connection, namespace: stack.namespace });
    const client = new BatchkeeperClient({ client: temporalClient, pool, taskQueue: TASK_QUEUE });
    const admin = new BatchkeeperAdmin(temporalClient, pool);

    // --- the fake provider, with its fault rates -------------------------------------------------------------------
    const fake = await startFakeProvider({ seed: options.seed, processingMs: options.processingMs[0] });
    cleanups.push(() => fake.close());
    fake.setFaultRates({ seed: options.seed, rules: faultRules(options) });
    log(`fake provider at ${fake.url}; fault rules: ${faultRules(options).map((rule) => `${rule.route} ${rule.kind}${rule.status ? ` ${rule.status}` : ''} ${rule.rate}`).join('; ')}`);

    // --- workers ---------------------------------------------------------------------------------------------------
    const fleet = new WorkerFleet({
      count: options.workers,
      env: workerEnv(options, stack, fake),
      logFile: path.join(dir, 'workers.log'),
      counters,
      rng,
      restartDelayMs: options.workerRestartDelayMs,
      progress: log,
      elapsedSeconds,
    });
    cleanups.push(() => fleet.stopAll());
    log(`starting ${options.workers} worker processes (log: ${path.join(dir, 'workers.log')})`);
    await fleet.startAll();
    log('workers polling');

    // --- plan --------------------------------------------------------------------------------------------------------
    const items = planItems(options, rng);
    const planned = { malformedLines: 0, missingLines: 0 };
    const batchRules: { match: { customId: string }; processingMs: number }[] = [];
    for (const item of items) {
      if (item.kind !== 'batch') continue;
      for (const outcome of Object.values(item.outcomes)) {
        if (outcome === 'malformed') planned.malformedLines += 1;
        if (outcome === 'missing') planned.missingLines += 1;
      }
    }
    log(`plan: ${options.batches} batches (${items.filter((i) => i.kind === 'batch' && i.provider === 'openai').length} OpenAI), ` +
      `${options.jobs} jobs, ${items.filter((i) => i.poison).length} poisoned, ${planned.malformedLines} malformed and ` +
      `${planned.missingLines} missing result lines, over ${(options.durationMs / 1000).toFixed(0)}s`);

    // --- shared state of the loops -------------------------------------------------------------------------------------
    let chaosOver = false;
    let settled = 0;
    let openDeadLetters = 0;
    const unexpectedDeadLetters = new Map<string, string>();
    const resolved = new Set<string>();
    const bySubject = new Map<string, PlannedItem>();
    const submitErrors = { count: 0, last: '' };

    const giveUpAt = Date.now() + options.durationMs + options.drainTimeoutMs;
    const retrying = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      let delay = 250;
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await fn();
        } catch (error) {
          if (error instanceof ValidationError || error instanceof IdempotencyConflictError) throw error; // a bug here, not chaos
          submitErrors.count += 1;
          submitErrors.last = `${what}: ${(error as Error).message.split('\n')[0]}`;
          if (attempt === 3) log(`still retrying ${what}: ${submitErrors.last}`);
          if (loops.stop || Date.now() > giveUpAt) throw error;
          await sleep(delay);
          delay = Math.min(delay * 2, 3000);
        }
      }
    };

    // Monitor: how many planned items are settled (terminal, or parked on a dead letter).
    const monitor = (async () => {
      while (!loops.stop) {
        try {
          const { rows } = await pool.query(`SELECT
              (SELECT count(*)::int FROM batches WHERE handler_dispatched_at IS NOT NULL) AS batches_done,
              (SELECT count(*)::int FROM jobs WHERE status IN ('succeeded', 'discarded', 'failed')) AS jobs_done,
              (SELECT count(*)::int FROM dead_letters WHERE resolution IS NULL) AS open_dead_letters`);
          settled = rows[0].batches_done + rows[0].jobs_done + rows[0].open_dead_letters;
          openDeadLetters = rows[0].open_dead_letters;
        } catch {
          /* PostgreSQL down: keep the last numbers */
        }
        await sleep(1000);
      }
    })();

    // Operator: resolves the dead letters of poisoned items as planned; leaves any other one for the report.
    const operator = (async () => {
      while (!loops.stop) {
        try {
          for (const letter of await listDeadLetters(pool, { limit: 1000 })) {
            if (resolved.has(letter.id)) continue;
            const item = bySubject.get(letter.subjectId);
            if (!item?.poison) {
              if (!unexpectedDeadLetters.has(letter.id)) {
                unexpectedDeadLetters.set(letter.id, `${letter.subjectKind} ${letter.subjectId} ${letter.step}: ${letter.errorClass}: ${letter.errorMessage.slice(0, 200)}`);
                log(`unexpected dead letter: ${unexpectedDeadLetters.get(letter.id)}`);
              }
              continue;
            }
            if (item.poison === 'leave') continue;
            try {
              if (item.poison === 'requeue') {
                await pool.query('DELETE FROM public.chaos_poison WHERE idempotency_key = $1', [item.key]);
                await admin.requeueDeadLetter(letter.id, { resolvedBy: 'chaos-operator', note: 'poison removed' });
              } else {
                await admin.discardDeadLetter(letter.id, { resolvedBy: 'chaos-operator', note: 'planned discard' });
              }
              resolved.add(letter.id);
            } catch (error) {
              if (error instanceof NotApplicableError) resolved.add(letter.id);
              // anything else (Temporal or PostgreSQL down): try again next round
            }
          }
        } catch {
          /* PostgreSQL down */
        }
        await sleep(1500);
      }
    })();

    // Disruptions: server restarts spread over the chaos phase, one at a time; worker kills at random moments.
    const chaosStarted = Date.now();
    const infraLoop = (async () => {
      for (const [i, disruption] of stack.disruptions.entries()) {
        const at = chaosStarted + (options.durationMs * (i + 1)) / (stack.disruptions.length + 1);
        while (Date.now() < at && !loops.stop) await sleep(200);
        if (loops.stop) return;
        try {
          await disruption.run();
          counters[disruption.kind === 'temporal' ? 'serverRestarts' : 'postgresRestarts'] += 1;
        } catch (error) {
          log(`disruption failed: ${(error as Error).message}`);
          throw error;
        }
      }
    })();
    infraLoop.catch(() => undefined); // awaited below; this only keeps an early exit from reporting it as unhandled
    const killLoop = (async () => {
      while (!chaosOver && !loops.stop) {
        const pause = Math.min(Math.max(-Math.log(1 - rng()) * options.killEveryMs, options.killEveryMs / 4), options.killEveryMs * 2);
        const until = Date.now() + pause;
        while (Date.now() < until && !chaosOver && !loops.stop) await sleep(100);
        if (chaosOver || loops.stop) return;
        fleet.killRandom();
      }
    })();

    // Progress line every 10 s.
    let submittedCount = 0;
    const progress = setInterval(() => {
      const state = fake.state();
      log(`progress: submitted ${submittedCount}/${items.length}, settled ${settled} (open dead letters ${openDeadLetters}), ` +
        `workers up ${fleet.readyCount}/${options.workers}, kills ${counters.workerKills}, Temporal restarts ${counters.serverRestarts}, ` +
        `PostgreSQL restarts ${counters.postgresRestarts}, provider faults ${state.faults.fired}, provider batches ${state.batches.length}`);
    }, 10_000);
    cleanups.push(async () => clearInterval(progress));

    // --- submissions, paced over the chaos phase and capped in flight ------------------------------------------------
    const spacingMs = (options.durationMs * 0.85) / Math.max(items.length, 1);
    for (const [n, item] of items.entries()) {
      const due = chaosStarted + n * spacingMs;
      while (Date.now() < due || submittedCount - settled >= options.maxInFlight) {
        if (Date.now() > giveUpAt) throw new Error(`gave up submitting: ${submittedCount - settled} items in flight never settled`);
        await sleep(50);
      }
      if (item.poison) {
        await retrying(`poison ${item.key}`, () => pool.query('INSERT INTO public.chaos_poison (idempotency_key) VALUES ($1) ON CONFLICT DO NOTHING', [item.key]));
      }
      if (item.kind === 'batch') {
        for (const [customId, outcome] of Object.entries(item.outcomes)) fake.setOutcomes({ [customId]: outcome as OutcomeSpec });
        batchRules.push({ match: { customId: item.customIds[0]! }, processingMs: item.processingMs });
        fake.configure({ batchRules });
        const { batchId } = await retrying(`submit batch ${item.index}`, () => client.submitBatch({
          provider: item.provider,
          model: item.model,
          handler: CHAOS_BATCH_HANDLER,
          idempotencyKey: item.key,
          pollScheduleMs: options.pollScheduleMs,
          metadata: { chaosIndex: item.index },
          requests: item.customIds.map((customId, position) => ({
            customId,
            params: { max_tokens: 16, messages: [{ role: 'user', content: `chaos ${item.index}.${position}` }] },
          })),
        }));
        item.id = batchId;
      } else {
        const { jobId } = await retrying(`start job ${item.index}`, () => client.startJob({
          type: CHAOS_JOB_TYPE, input: item.input, idempotencyKey: item.key,
        }));
        item.id = jobId;
      }
      item.acked = true;
      bySubject.set(item.id, item);
      submittedCount += 1;
    }
    log(`all ${items.length} submitted`);
    while (Date.now() < chaosStarted + options.durationMs) await sleep(200);
    chaosOver = true;
    await killLoop;
    await infraLoop;
    log(`chaos phase over after ${((Date.now() - chaosStarted) / 1000).toFixed(0)}s; waiting for every worker to be up`);
    await fleet.waitReady(90_000);

    // --- drain -----------------------------------------------------------------------------------------------------
    const drainStarted = Date.now();
    let lastLog = 0;
    let lastLook = Date.now();
    while (settled < items.length && Date.now() - drainStarted < options.drainTimeoutMs) {
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`draining: ${items.length - settled} of ${items.length} not settled yet`);
      }
      if (!options.waitOutKilledActivities && Date.now() - lastLook > 5000) {
        lastLook = Date.now();
        const waits = await onlyKilledActivitiesLeft(pool, temporalClient, fleet.killedPids).catch(() => undefined);
        if (waits) {
          log(`drain ends early: the ${waits} unsettled item(s) wait on activities that were running on SIGKILLed workers ` +
            '(Temporal retries them after their timeouts)');
          break;
        }
      }
      await sleep(500);
    }
    await sleep(1500); // one more monitor and operator round
    log(settled >= items.length
      ? `all settled after ${((Date.now() - drainStarted) / 1000).toFixed(0)}s of drain`
      : `drain over after ${((Date.now() - drainStarted) / 1000).toFixed(0)}s: ${items.length - settled} not settled ` +
        '(each is checked for a pending activity, timer or dead letter)');
    loops.stop = true;
    await Promise.all([monitor, operator]);
    clearInterval(progress);

    // --- checks ------------------------------------------------------------------------------------------------------
    log('checking invariants against PostgreSQL, the provider and Temporal...');
    const invariants: InvariantReport = await checkInvariants({
      pool, temporal: temporalClient, admin, fake, items, taskQueue: TASK_QUEUE, killedPids: fleet.killedPids, log,
    });
    const providerFaults = fake.state().faults.fired;
    const faultsInjected = providerFaults + planned.malformedLines + planned.missingLines;
    const failures = [...invariants.failures];
    const plannedRestarts = (kind: Disruption['kind']) => stack.disruptions.filter((disruption) => disruption.kind === kind).length;
    if (counters.serverRestarts < plannedRestarts('temporal')) failures.push(`only ${counters.serverRestarts} Temporal restarts of ${plannedRestarts('temporal')}`);
    if (counters.postgresRestarts < plannedRestarts('postgres')) failures.push(`only ${counters.postgresRestarts} PostgreSQL restarts of ${plannedRestarts('postgres')}`);
    if (items.some((item) => !item.acked)) failures.push('not every item was submitted');

    const result: ChaosResult = {
      batches: options.batches,
      jobs: options.jobs,
      workerKills: counters.workerKills,
      serverRestarts: counters.serverRestarts,
      postgresRestarts: counters.postgresRestarts,
      faultsInjected,
      lost: invariants.lost,
      duplicateProviderBatches: invariants.duplicateProviderBatches,
      duplicateHandlerEffects: invariants.duplicateHandlerEffects,
      stalled: invariants.stalled,
      deadLetterMismatches: invariants.deadLetterMismatches,
      durationSeconds: Math.round((Date.now() - started) / 1000),
      passed: failures.length === 0,
      failures,
      details: {
        ...invariants.details,
        faults: { provider: providerFaults, malformedLines: planned.malformedLines, missingLines: planned.missingLines, rates: options.faults },
        workers: { count: options.workers, starts: counters.workerStarts, crashes: counters.workerCrashes },
        unexpectedDeadLetters: [...unexpectedDeadLetters.values()],
        clientRetries: submitErrors.count,
        providerRouteCounts: fake.routeCounts(),
        timeline: counters.timeline,
        options: { ...options, log: undefined, stack: undefined },
        dataDir: dir,
      },
    };
    return result;
  } finally {
    loops.stop = true;
    const stopping = Date.now();
    await cleanup();
    log(`stack stopped in ${((Date.now() - stopping) / 1000).toFixed(1)}s`);
  }
}

/**
 * The number of unsettled batches and jobs when every one of them waits on an activity that was running on a worker
 * we SIGKILLed (nothing changes before its timeout); undefined otherwise.
 */
async function onlyKilledActivitiesLeft(pool: Pool, temporal: Client, killedPids: ReadonlySet<number>): Promise<number | undefined> {
  const { rows } = await pool.query(`
    SELECT 'batch' AS kind, workflow_id FROM batches b WHERE handler_dispatched_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.subject_id = b.id AND d.resolution IS NULL)
    UNION ALL
    SELECT 'job', workflow_id FROM jobs j WHERE status NOT IN ('succeeded', 'discarded', 'failed')
       AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.subject_id = j.id AND d.resolution IS NULL)
    LIMIT 51`);
  if (rows.length === 0 || rows.length > 50) return undefined;
  for (const row of rows) {
    const state = await classifyOpen(temporal, row.kind, row.workflow_id, killedPids);
    if (state.state !== 'pending_activity' || !state.onKilledWorker) return undefined;
  }
  return rows.length;
}

/** Fault rules for the fake provider. Creates only get faults that leave nothing behind, except OpenAI's drop. */
export function faultRules(options: ChaosOptions): FaultRule[] {
  const f = options.faults;
  const reads = ['openai.batches.retrieve', 'openai.batches.list', 'openai.files.content', 'anthropic.batches.retrieve', 'anthropic.batches.results'];
  const rules: FaultRule[] = [
    { route: 'openai.batches.create', kind: 'drop_response', rate: f.dropCreate },
    { route: '*', kind: 'http_error', status: 429, retryAfterMs: 300, rate: f.http429 },
    { route: '*', kind: 'http_error', status: 503, retryAfterMs: 200, rate: f.http5xx / 2 },
    { route: '*', kind: 'http_error', status: 500, rate: f.http5xx / 4 },
    { route: '*', kind: 'http_error', status: 529, retryAfterMs: 500, rate: f.http5xx / 4 },
    { route: '*', kind: 'html', status: 502, rate: f.html },
    { route: '*', kind: 'reset', rate: f.reset },
    { route: 'openai.files.content', kind: 'truncate', afterLines: 1, rate: f.truncate },
    { route: 'anthropic.batches.results', kind: 'truncate', afterLines: 1, rate: f.truncate },
  ];
  // A read that answers only after the client gave up (a timeout); never on creates, where a late success would be
  // a second provider batch the retry could not see yet.
  for (const route of reads) rules.push({ route, kind: 'latency', latencyMs: options.providerTimeoutMs + 800, rate: f.timeout });
  return rules.filter((rule) => rule.rate > 0);
}

function workerEnv(options: ChaosOptions, stack: ChaosStack, fake: FakeProvider): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('TEMPORAL_') && !key.startsWith('BATCHKEEPER_') && !key.startsWith('OPENAI_') && !key.startsWith('ANTHROPIC_') && key !== 'DATABASE_URL') env[key] = value;
  }
  return {
    ...env,
    DATABASE_URL: stack.databaseUrl,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    TEMPORAL_NAMESPACE: stack.namespace,
    BATCHKEEPER_TASK_QUEUE: TASK_QUEUE,
    OPENAI_API_KEY: API_KEY,
    OPENAI_BASE_URL: fake.openaiBaseUrl,
    ANTHROPIC_API_KEY: API_KEY,
    ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
    BATCHKEEPER_HANDLERS_MODULE: path.join(PROJECT_ROOT, 'tools', 'chaos', 'handlers.ts'),
    BATCHKEEPER_RETRY_DEFAULTS: JSON.stringify({ maximumAttempts: 40, initialIntervalMs: 200, backoffCoefficient: 2, maximumIntervalMs: 4000 }),
    BATCHKEEPER_PROVIDER_TIMEOUT_MS: String(options.providerTimeoutMs),
    CHAOS_HANDLER_FAILURE_RATE: String(options.handlerFailureRate),
  };
}

function planItems(options: ChaosOptions, rng: Rng): PlannedItem[] {
  const between = ([min, max]: [number, number]) => Math.round(min + rng() * (max - min));
  const poisonPlans: PoisonPlan[] = ['requeue', 'discard', 'leave'];
  let poisoned = 0;
  const poison = (): PoisonPlan => (rng() < options.poisonRate ? poisonPlans[poisoned++ % 3]! : null);
  const items: PlannedItem[] = [];
  for (let index = 0; index < options.batches; index += 1) {
    const provider = rng() < 0.5 ? 'openai' : 'anthropic';
    const count = between(options.requestsPerBatch);
    const customIds = Array.from({ length: count }, (_, j) => `b${index}-r${j}`);
    const outcomes: Record<string, RequestOutcome> = {};
    for (const customId of customIds) {
      const roll = rng();
      if (roll < options.faults.malformedLine) outcomes[customId] = 'malformed';
      else if (roll < options.faults.malformedLine + options.faults.missingLine) outcomes[customId] = 'missing';
    }
    items.push({
      kind: 'batch', index, key: `chaos-batch-${index}`, provider, model: provider === 'openai' ? 'gpt-4o-mini' : 'claude-3-5-haiku-latest',
      customIds, outcomes, processingMs: between(options.processingMs), poison: poison(), acked: false,
    });
  }
  for (let index = 0; index < options.jobs; index += 1) {
    const roll = rng();
    items.push({
      kind: 'job', index, key: `chaos-job-${index}`,
      input: { index, failAttempts: roll < 0.5 ? 0 : roll < 0.8 ? 1 : 2, sleepMs: between([100, 1500]) },
      poison: poison(), acked: false,
    });
  }
  // Interleave batches and jobs (seeded shuffle).
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
