/**
 * Fault injection: which call fails, and how. Deterministic faults ("the next N calls to route X") are consumed in
 * order; rate faults fire with a probability drawn from a seeded PRNG, so a soak run is reproducible.
 */
import { seededRng, type Rng } from './random';

/**
 * - http_error: a provider-shaped JSON error (default 503) with optional retry-after headers
 * - html: a non-JSON HTML error page (default 502), as a proxy or load balancer would send
 * - reset: the socket is destroyed before the request is processed (nothing is created)
 * - drop_response: the request IS processed, then the socket is destroyed (a create whose response was lost)
 * - truncate: the response starts, then the connection dies after `afterLines` result lines (or half a JSON body)
 * - latency: only the delay, then normal processing
 */
export type FaultKind = 'http_error' | 'html' | 'reset' | 'drop_response' | 'truncate' | 'latency';

export interface FaultSpec {
  /** Route name ('openai.batches.retrieve'), a group ('openai.*', 'anthropic.batches.*') or '*'. */
  route: string;
  kind?: FaultKind;
  /** HTTP status for http_error (default 503) and html (default 502), e.g. 429, 500, 503, 529. */
  status?: number;
  retryAfterSeconds?: number;
  retryAfterMs?: number;
  /** Sent as `x-should-retry`; false stops the SDK's own retries so the error surfaces at once. */
  shouldRetry?: boolean;
  /** Delay before the fault (or, for `latency`, before normal processing). */
  latencyMs?: number;
  /** Custom JSON error body for http_error (default: the provider's error shape). */
  body?: unknown;
  /** Only calls about this provider batch id. */
  batchId?: string;
  /** injectFault: how many matching calls fail (default 1). */
  count?: number;
  /** truncate: result lines sent before the connection dies (default 1). */
  afterLines?: number;
}

export interface FaultRule extends Omit<FaultSpec, 'count'> {
  /** Probability per matching call, 0..1. */
  rate: number;
}

export interface FaultRatesSpec {
  seed?: number;
  rules: FaultRule[];
}

export interface FaultsDescription {
  pending: FaultSpec[];
  rates: FaultRule[];
  fired: number;
}

export function routeMatches(pattern: string, route: string): boolean {
  if (pattern === '*' || pattern === route) return true;
  return pattern.endsWith('.*') && route.startsWith(pattern.slice(0, -1));
}

export class FaultInjector {
  private pending: FaultSpec[] = [];
  private rates: FaultRule[] = [];
  private rng: Rng;
  private fired = 0;

  constructor(private readonly seed = 1) {
    this.rng = seededRng(seed);
  }

  inject(specs: FaultSpec | FaultSpec[]): void {
    for (const spec of Array.isArray(specs) ? specs : [specs]) this.pending.push({ ...spec, count: spec.count ?? 1 });
  }

  setRates(spec: FaultRatesSpec): void {
    this.rates = [...spec.rules];
    this.rng = seededRng(spec.seed ?? this.seed);
  }

  clear(): void {
    this.pending = [];
    this.rates = [];
    this.rng = seededRng(this.seed);
  }

  /** The fault for this call, if any; deterministic faults win over rates. */
  decide(route: string, batchId: string | undefined): FaultSpec | undefined {
    const applies = (spec: FaultSpec) => routeMatches(spec.route, route) && (spec.batchId === undefined || spec.batchId === batchId);
    const index = this.pending.findIndex(applies);
    if (index !== -1) {
      const spec = this.pending[index]!;
      if (spec.count === undefined || spec.count <= 1) this.pending.splice(index, 1);
      else this.pending[index] = { ...spec, count: spec.count - 1 };
      this.fired++;
      return spec;
    }
    for (const rule of this.rates) {
      // Draw only for matching rules so one route's traffic does not shift another's schedule.
      if (applies(rule) && this.rng() < rule.rate) {
        this.fired++;
        return rule;
      }
    }
    return undefined;
  }

  describe(): FaultsDescription {
    return { pending: this.pending.map((spec) => ({ ...spec })), rates: [...this.rates], fired: this.fired };
  }
}
