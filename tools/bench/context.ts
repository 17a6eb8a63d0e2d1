/** What every measurement receives from the bench run (tools/bench/main.ts builds it), and small helpers they share. */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import type { BatchRecord, NewBatch } from '../../db/batches-store';
import type { FakeProvider } from '../../testing/fake-provider/server';
import type { LocalStack } from '../dev/stack';
import type { RssReading } from './memory';
import type { BenchOptions, Preset, WorkerTuning } from './presets';

// ---------------------------------------------------------------------------------------------------------------
// The shared context every measurement receives

export interface WorkerProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  readyAt: number;
  rss(): RssReading;
  /** Resets the kernel's peak-RSS mark (VmHWM) of the process. */
  resetPeak(): void;
  stop(): Promise<void>;
}

export interface BenchContext {
  options: BenchOptions;
  preset: Preset;
  log(message: string): void;
  stack: LocalStack;
  databaseUrl: string;
  pool: Pool;
  connection: Connection;
  temporal: Client;
  fake: FakeProvider;
  taskQueue: string;
  floorTaskQueue: string;
  /** Where worker logs go. */
  dataDir: string;
  /** Starts the stock worker (worker/main.ts) as a subprocess with the run's tuning (`overrides` win); resolves once it polls. */
  startWorker(name: string, overrides?: WorkerTuning): Promise<WorkerProcess>;
  /** Starts the floor worker (bench/floor-workflows.ts, no-op activities) with the same tuning. */
  startFloorWorker(name: string): Promise<WorkerProcess>;
  /** Inserts batches through db/batches-store insertBatch (the client's own insert), `concurrency` at a time. */
  insertBatches(batches: NewBatch[], onProgress?: (done: number) => void): Promise<BatchRecord[]>;
  /** Starts the batch workflows (client/start-options batchStartOptions), `concurrency` at a time. */
  startBatchWorkflows(
    batches: BatchRecord[],
    args?: (batch: BatchRecord) => Record<string, unknown>,
    onProgress?: (done: number) => void,
    pacing?: { startAt(index: number): number },
  ): Promise<void>;
  /** Temporal Web link of a workflow, when the UI is on. */
  webLink(workflowId: string): string | undefined;
}

/** A NewBatch for the bench: small chat requests, no handler unless given. */
export function benchBatch(options: {
  provider?: 'openai' | 'anthropic';
  requests: number;
  pollScheduleMs: number[];
  maxAgeMs?: number;
  handler?: string | null;
  label: string;
}): NewBatch {
  const id = randomUUID();
  return {
    id,
    idempotencyKey: `bench-${options.label}-${id}`,
    workflowId: `batch-${id}`,
    provider: options.provider ?? 'openai',
    model: options.provider === 'anthropic' ? 'claude-3-5-haiku-latest' : 'gpt-4o-mini',
    handlerName: options.handler ?? null,
    metadata: { bench: options.label },
    pollScheduleMs: options.pollScheduleMs,
    maxAgeMs: options.maxAgeMs ?? 7 * 24 * 3_600_000,
    requests: Array.from({ length: options.requests }, (_, index) => ({
      customId: `r-${index}`,
      params: { max_tokens: 64, messages: [{ role: 'user', content: `Benchmark question number ${index}` }] },
    })),
  };
}

/**
 * Whether a batch's workflow is asleep until its next poll: on a workflow timer (the schedule's one-off entries) or,
 * for the repeating last entry, in the poll loop's pending activity waiting for its next attempt (the first attempt
 * only schedules the first poll).
 */
export async function asleepUntilNextPoll(temporal: Client, workflowId: string): Promise<boolean> {
  const handle = temporal.workflow.getHandle(workflowId);
  const { raw } = await handle.describe();
  const pollLoop = raw.pendingActivities?.find((activity) => activity.activityType?.name === 'pollUntilChange');
  if (pollLoop) return (pollLoop.attempt ?? 0) >= 2;
  const { events } = await handle.fetchHistory();
  return Boolean(events?.[events.length - 1]?.timerStartedEventAttributes);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs fn over items with at most `limit` in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      results[index] = await fn(items[index], index);
    }
  });
  await Promise.all(lanes);
  return results;
}
