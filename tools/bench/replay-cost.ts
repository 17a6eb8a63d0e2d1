/**
 * Replay cost: what a workflow-cache miss costs the worker. A worker whose cache is smaller than its open batches
 * replays a batch's whole history (of its current run) on each poll that finds it evicted, so the cost of a miss
 * grows with the polls of the run. One batch polls `polls` times on a compressed schedule against a provider batch
 * that never finishes; its history is cut after the k-th poll for each k of `atPolls`, and each prefix is replayed
 * with Worker.runReplayHistory on the stock bundle `trials` times (median). That is the worker's CPU per miss; the
 * history fetch from the server comes on top.
 */
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { bundleWorkflows } from '../../worker/create-worker';
import { benchBatch, sleep, type BenchContext } from './context';
import { round2, type BenchDetails } from './report';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const TRIALS = 5;

export async function runReplayCost(ctx: BenchContext, details: BenchDetails) {
  const { atPolls } = ctx.preset.replayCost;
  const polls = Math.max(...atPolls);
  // A schedule with an entry per poll keeps every poll on a workflow timer (the repeating last entry would run on
  // activity retries and write no history per poll): the cost of a miss for the timer part of a schedule, and for
  // runs recorded before polls moved to retries.
  const [batch] = await ctx.insertBatches([benchBatch({ requests: 1, pollScheduleMs: Array.from({ length: polls + 1 }, () => 20), label: 'replay-cost' })]);
  ctx.fake.configure({ batchRules: [...ctx.fake.state().config.batchRules, { match: { batchkeeperBatchId: batch.id }, processingMs: 3_600_000, times: 1 }] });
  await ctx.startBatchWorkflows([batch]);
  const handle = ctx.temporal.workflow.getHandle(batch.workflowId);
  const started = Date.now();
  let events: HistoryEvent[] = [];
  for (let lastLog = started; ; await sleep(500)) {
    events = (await handle.fetchHistory()).events ?? [];
    const done = pollsCompleted(events);
    if (done >= polls) break;
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      ctx.log(`replay cost: ${done}/${polls} polls in the history (${events.length} events)`);
    }
    if (Date.now() - started > 600_000) throw new Error(`replay-cost batch made ${done}/${polls} polls in 10 minutes`);
  }
  await handle.terminate('bench: replay cost history recorded');
  const bundle = await bundleWorkflows();
  const rows: { polls: number; events: number; replayMs: number }[] = [];
  for (const k of atPolls) {
    const prefix = prefixAfterPoll(events, k);
    const times: number[] = [];
    for (let trial = 0; trial < TRIALS; trial += 1) {
      const t0 = process.hrtime.bigint();
      await Worker.runReplayHistory({ workflowBundle: bundle }, { events: prefix }, batch.workflowId);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    rows.push({ polls: k, events: prefix.length, replayMs: round2(times[Math.floor(times.length / 2)]) });
    ctx.log(`replay cost: ${k} polls (${prefix.length} events) replays in ${rows[rows.length - 1].replayMs} ms (median of ${TRIALS})`);
  }
  details.replayCost = { trials: TRIALS, rows };
  const last = rows[rows.length - 1];
  return { replayMsPerMissAtMaxPolls: last.replayMs };
}

/** Positions of the ActivityTaskCompleted events of pollBatch, in order. */
function pollCompletions(events: HistoryEvent[]): number[] {
  const pollSchedules = new Set<string>();
  const completions: number[] = [];
  events.forEach((event, index) => {
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'pollBatch') pollSchedules.add(String(event.eventId));
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed && pollSchedules.has(String(completed.scheduledEventId))) completions.push(index);
  });
  return completions;
}

function pollsCompleted(events: HistoryEvent[]): number {
  return pollCompletions(events).length;
}

/** The history up to the workflow task completed after the k-th poll's completion (a point a cached run sleeps at). */
function prefixAfterPoll(events: HistoryEvent[], k: number): HistoryEvent[] {
  const kth = pollCompletions(events)[k - 1];
  if (kth === undefined) throw new Error(`the history has fewer than ${k} polls`);
  for (let index = kth + 1; index < events.length; index += 1) {
    if (events[index].workflowTaskCompletedEventAttributes) return events.slice(0, index + 1);
  }
  throw new Error(`no workflow task completed after poll ${k}`);
}
