/** The work a chaos run plans (tools/chaos/run.ts) and its end checks verify (tools/chaos/invariants.ts). */
import type { RequestOutcome } from '../../testing/fake-provider/config';
import type { ChaosJobInput } from './handlers';

export type PoisonPlan = 'requeue' | 'discard' | 'leave' | null;

export interface PlannedBatch {
  kind: 'batch';
  index: number;
  key: string;
  provider: 'openai' | 'anthropic';
  model: string;
  customIds: string[];
  /** Expected outcome per custom id (only the non-succeeded ones are listed). */
  outcomes: Record<string, RequestOutcome>;
  processingMs: number;
  poison: PoisonPlan;
  id?: string;
  acked: boolean;
}

export interface PlannedJob {
  kind: 'job';
  index: number;
  key: string;
  input: ChaosJobInput;
  poison: PoisonPlan;
  id?: string;
  acked: boolean;
}

export type PlannedItem = PlannedBatch | PlannedJob;
