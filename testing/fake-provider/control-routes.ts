/**
 * `/_control/*` JSON endpoints: the same control surface as the programmatic FakeProvider API, for other
 * processes (demo, worker subprocesses, chaos runs). No API key needed.
 */
import { fileLedger } from './file-ledger';
import { REQUEST_OUTCOMES, type FakeConfig, type OutcomeSpec } from './config';
import type { FaultInjector, FaultRatesSpec, FaultSpec } from './faults';
import { FakeHttpError, json, type Route } from './router';
import type { BatchPatch, FakeBatch, FakeState } from './state';

export interface BatchControl extends BatchPatch {
  /** Finish processing now. */
  complete?: boolean;
  /** Expire now, keeping what was processed. */
  expire?: boolean;
}

export function describeBatch(state: FakeState, batch: FakeBatch) {
  const current = state.snapshot(batch);
  return {
    id: batch.id,
    provider: batch.provider,
    endpoint: batch.endpoint,
    phase: current.phase,
    processed: current.processed,
    requestCount: batch.requests.length,
    fingerprint: batch.fingerprint,
    metadata: batch.metadata,
    timeline: { ...batch.timeline, createdAt: new Date(batch.timeline.createdAt).toISOString() },
    counters: { ...batch.counters },
    statusReadAt: [...batch.statusReadAt],
  };
}

export function describeState(state: FakeState, faults: FaultInjector) {
  return {
    config: state.config,
    faults: faults.describe(),
    routeCounts: state.routeCountsRecord(),
    batches: state.createdBatches().map((info) => describeBatch(state, state.getBatch(info.id)!)),
  };
}

export function applyBatchControl(state: FakeState, id: string, control: BatchControl): boolean {
  const { complete, expire, ...patch } = control;
  if (!state.updateBatch(id, patch)) return false;
  if (complete) state.completeNow(id);
  if (expire) state.expireNow(id);
  return true;
}

export function validateOutcomes(outcomes: unknown): Record<string, OutcomeSpec> {
  if (typeof outcomes !== 'object' || outcomes === null) throw badControl('outcomes must be an object of customId → outcome');
  for (const [customId, spec] of Object.entries(outcomes)) {
    const outcome = typeof spec === 'string' ? spec : (spec as { outcome?: unknown } | null)?.outcome;
    if (!REQUEST_OUTCOMES.includes(outcome as never)) throw badControl(`unknown outcome for ${customId}: ${String(outcome)}`);
  }
  return outcomes as Record<string, OutcomeSpec>;
}

export function controlRoutes(state: FakeState, faults: FaultInjector): Route[] {
  const control = (name: string, method: string, pattern: RegExp, handle: Route['handle']): Route => ({
    name: `control.${name}`,
    provider: 'control',
    method,
    pattern,
    handle,
  });
  return [
    control('state', 'GET', /^\/_control\/state$/, () => json(describeState(state, faults))),
    control('files', 'GET', /^\/_control\/files$/, () => json(fileLedger(state))),
    control('configure', 'POST', /^\/_control\/configure$/, async (ctx) => {
      state.configure(validateConfig(await ctx.json()));
      return json({ config: state.config });
    }),
    control('outcomes', 'POST', /^\/_control\/outcomes$/, async (ctx) => {
      const body = ((await ctx.json()) ?? {}) as { outcomes?: unknown; replace?: unknown };
      state.setOutcomes(validateOutcomes(body.outcomes), body.replace === true);
      return json({ ok: true });
    }),
    control('faults', 'POST', /^\/_control\/faults$/, async (ctx) => {
      const body = ((await ctx.json()) ?? {}) as { inject?: FaultSpec | FaultSpec[]; rates?: FaultRatesSpec; clear?: boolean };
      if (body.clear) faults.clear();
      if (body.inject) faults.inject(body.inject);
      if (body.rates) faults.setRates(body.rates);
      return json(faults.describe());
    }),
    control('reset', 'POST', /^\/_control\/reset$/, () => {
      state.reset();
      faults.clear();
      return json({ ok: true });
    }),
    control('batch', 'GET', /^\/_control\/batches\/(?<id>[^/]+)$/, ({ params }) => {
      const batch = state.getBatch(params.id!);
      if (!batch) throw new FakeHttpError(404, 'not_found', `unknown batch ${params.id}`);
      return json(describeBatch(state, batch));
    }),
    control('batch.update', 'POST', /^\/_control\/batches\/(?<id>[^/]+)$/, async ({ params, json: body }) => {
      if (!applyBatchControl(state, params.id!, ((await body()) ?? {}) as BatchControl)) {
        throw new FakeHttpError(404, 'not_found', `unknown batch ${params.id}`);
      }
      return json(describeBatch(state, state.getBatch(params.id!)!));
    }),
  ];
}

function validateConfig(body: unknown): Partial<FakeConfig> {
  if (typeof body !== 'object' || body === null) throw badControl('configure expects a JSON object');
  const config = body as Partial<FakeConfig>;
  for (const key of ['processingMs', 'cancelDelayMs'] as const) {
    if (config[key] !== undefined && !(typeof config[key] === 'number' && config[key]! >= 0)) throw badControl(`${key} must be a number >= 0`);
  }
  if (config.batchRules !== undefined && !Array.isArray(config.batchRules)) throw badControl('batchRules must be an array');
  if (config.queueLimits !== undefined && !Array.isArray(config.queueLimits)) throw badControl('queueLimits must be an array');
  for (const key of ['shuffleResults', 'keepResultFiles'] as const) {
    if (config[key] !== undefined && typeof config[key] !== 'boolean') throw badControl(`${key} must be true or false`);
  }
  return config;
}

function badControl(message: string): FakeHttpError {
  return new FakeHttpError(400, 'invalid_control_request', message);
}
