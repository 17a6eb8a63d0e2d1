/**
 * History cost: events per poll, and the largest history of any run, including a simulated 7-day batch polled every
 * minute (10,080 polls). Waiting 7 days is not an option, so that batch is inserted directly (db/batches-store
 * insertBatch, bypassing the client's 100 ms minimum) with a compressed poll interval, started with
 * client/start-options batchStartOptions, and the fake provider finishes it once the last poll is due. The workflow
 * must continue-as-new on Temporal's own suggestion (no continueAsNewAfterPolls); every run of the chain is fetched
 * and measured.
 */
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { BATCH_WORKFLOW_TYPE } from '../../domain/workflow-ids';
import { batchStartOptions } from '../../domain/workflow-start';
import { benchBatch, sleep, type BenchContext } from './context';
import { round2, type BenchDetails } from './report';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Temporal's defaults (dynamic config): continue-as-new suggested at 4Ki events; warning at 10Ki, hard limit 50Ki. */
export const TEMPORAL_LIMITS = { suggestContinueAsNewEvents: 4 * 1024, warnEvents: 10 * 1024, errorEvents: 50 * 1024, errorBytes: 50 * 1024 * 1024 };

export interface PollTiming {
  /** When the workflow meant to poll: its timer's start (workflow time) plus the timer's duration. */
  scheduledAt: number;
  timerFiredAt: number;
  activityScheduledAt: number;
  /** When the poll activity started on the worker. */
  startedAt: number;
}

export interface HistoryStats {
  events: number;
  bytes: number;
  polls: number;
  /** Events from one pollBatch schedule to the next. */
  eventsBetweenPolls: number[];
  continuedAsNewTo?: string;
  pollTimings: PollTiming[];
  /** The timer the workflow is waiting on (or that fired with its poll not started yet) when the history was read. */
  pendingPoll?: { scheduledAt: number };
}

const num = (value: unknown) => Number(value ?? 0);

export function analyseHistory(history: History): HistoryStats {
  const events: HistoryEvent[] = history.events ?? [];
  const byId = new Map<number, HistoryEvent>();
  const indexById = new Map<number, number>();
  events.forEach((event, index) => {
    byId.set(num(event.eventId), event);
    indexById.set(num(event.eventId), index);
  });
  const startedBySchedule = new Map<number, HistoryEvent>();
  for (const event of events) {
    const started = event.activityTaskStartedEventAttributes;
    if (started) startedBySchedule.set(num(started.scheduledEventId), event);
  }
  const pollIndices: number[] = [];
  const pollTimings: PollTiming[] = [];
  let lastTimerFired: HistoryEvent | undefined;
  events.forEach((event, index) => {
    if (event.timerFiredEventAttributes) lastTimerFired = event;
    if (event.activityTaskScheduledEventAttributes?.activityType?.name !== 'pollBatch') return;
    pollIndices.push(index);
    const fired = lastTimerFired;
    lastTimerFired = undefined;
    const started = startedBySchedule.get(num(event.eventId));
    if (!fired || !started) return; // a poll woken by pollNow, or one still running
    const timerStartedId = num(fired.timerFiredEventAttributes!.startedEventId);
    const timerStarted = byId.get(timerStartedId);
    const timerIndex = indexById.get(timerStartedId);
    if (!timerStarted?.timerStartedEventAttributes || timerIndex === undefined) return;
    // Workflow time when the timer was set is the start of the workflow task that set it.
    let taskStarted: HistoryEvent | undefined;
    for (let i = timerIndex - 1; i >= 0; i -= 1) {
      if (events[i].workflowTaskStartedEventAttributes) {
        taskStarted = events[i];
        break;
      }
    }
    if (!taskStarted) return;
    pollTimings.push({
      scheduledAt: tsToMs(taskStarted.eventTime) + tsToMs(timerStarted.timerStartedEventAttributes.startToFireTimeout),
      timerFiredAt: tsToMs(fired.eventTime),
      activityScheduledAt: tsToMs(event.eventTime),
      startedAt: tsToMs(started.eventTime),
    });
  });
  // A timer set after the last poll whose poll has not started yet: due at scheduledAt.
  let pendingPoll: HistoryStats['pendingPoll'];
  for (let i = events.length - 1; i >= 0; i -= 1) {
    const event = events[i];
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'pollBatch') break;
    if (event.timerStartedEventAttributes) {
      const canceled = events.slice(i + 1).some((later) => num(later.timerCanceledEventAttributes?.startedEventId) === num(event.eventId));
      let taskStarted: HistoryEvent | undefined;
      for (let j = i - 1; j >= 0; j -= 1) {
        if (events[j].workflowTaskStartedEventAttributes) {
          taskStarted = events[j];
          break;
        }
      }
      if (!canceled && taskStarted) {
        pendingPoll = { scheduledAt: tsToMs(taskStarted.eventTime) + tsToMs(event.timerStartedEventAttributes.startToFireTimeout) };
      }
      break;
    }
  }
  const last = events[events.length - 1];
  return {
    pendingPoll,
    events: events.length,
    bytes: temporal.api.history.v1.History.encode(history).finish().length,
    polls: pollIndices.length,
    eventsBetweenPolls: pollIndices.slice(1).map((index, i) => index - pollIndices[i]),
    continuedAsNewTo: last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined,
    pollTimings,
  };
}

/** Every run of a workflow's continue-as-new chain, first to last. */
export async function fetchRunChain(ctx: BenchContext, workflowId: string, firstRunId: string): Promise<(HistoryStats & { runId: string })[]> {
  const runs: (HistoryStats & { runId: string })[] = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const stats = analyseHistory(await ctx.temporal.workflow.getHandle(workflowId, runId).fetchHistory());
    runs.push({ ...stats, runId });
    runId = stats.continuedAsNewTo;
  }
  return runs;
}

export async function runHistory(ctx: BenchContext, details: BenchDetails) {
  const { polls: targetPolls, pollIntervalMs } = ctx.preset.history;
  const full = targetPolls >= 10_080;
  ctx.log(`simulated 7-day batch: ${targetPolls} polls (${full ? 'the full 7 days at 1-minute polls' : `scaled down from 10,080`}), ` +
    `compressed to a ${pollIntervalMs} ms poll interval`);
  const [batch] = await ctx.insertBatches([
    benchBatch({ requests: 1, pollScheduleMs: [pollIntervalMs], maxAgeMs: 30 * 24 * 3_600_000, label: 'seven-day' }),
  ]);
  // The provider batch never finishes by itself; it is completed below once the last poll is due.
  ctx.fake.configure({ batchRules: [...ctx.fake.state().config.batchRules, { match: { batchkeeperBatchId: batch.id }, processingMs: 3650 * 24 * 3_600_000, times: 1 }] });
  const handle = await ctx.temporal.workflow.start(BATCH_WORKFLOW_TYPE, { ...batchStartOptions(batch, ctx.taskQueue), args: [{ batchId: batch.id }] });
  const link = ctx.webLink(batch.workflowId);
  if (link) ctx.log(`follow it in Temporal Web: ${link}`);

  const started = Date.now();
  let lastLog = started;
  let completed = false;
  const done = handle.result();
  let finished = false;
  done.then(() => (finished = true), () => (finished = true));
  while (!finished) {
    const { rows } = await ctx.pool.query<{ poll_count: number; provider_batch_id: string | null }>(
      'SELECT poll_count, provider_batch_id FROM batches WHERE id = $1', [batch.id],
    );
    const polls = rows[0]?.poll_count ?? 0;
    if (!completed && polls >= targetPolls - 1 && rows[0]?.provider_batch_id) {
      completed = ctx.fake.completeNow(rows[0].provider_batch_id);
    }
    if (Date.now() - lastLog >= 5000) {
      lastLog = Date.now();
      const rate = polls / ((Date.now() - started) / 1000);
      ctx.log(`7-day batch: ${polls}/${targetPolls} polls (${rate.toFixed(0)}/s, ~${Math.max(0, (targetPolls - polls) / rate).toFixed(0)}s to go)`);
    }
    await sleep(completed ? 100 : 10);
  }
  await done;
  const seconds = (Date.now() - started) / 1000;
  const runs = await fetchRunChain(ctx, batch.workflowId, handle.firstExecutionRunId);
  // Polls on activity retries leave no event per poll: PostgreSQL's count is every poll made.
  const { rows: [final] } = await ctx.pool.query<{ poll_count: number }>('SELECT poll_count FROM batches WHERE id = $1', [batch.id]);
  const timerPolls = runs.reduce((sum, run) => sum + run.polls, 0);
  const totalPolls = Math.max(timerPolls, final?.poll_count ?? 0);
  const totalEvents = runs.reduce((sum, run) => sum + run.events, 0);
  const intervals = runs.flatMap((run) => run.eventsBetweenPolls);
  // Events between two timer polls where the history has them; else every event of the chain over every poll.
  const eventsPerPoll = intervals.length > 0
    ? round2(intervals.reduce((a, b) => a + b, 0) / intervals.length)
    : round2(totalEvents / Math.max(totalPolls, 1));
  const biggest = runs.reduce((max, run) => (run.events > max.events ? run : max), runs[0]);
  details.history = {
    simulatedPolls: totalPolls,
    targetPolls,
    fullSevenDays: full,
    simulatedDays: round2(totalPolls / (24 * 60)),
    pollIntervalMsCompressed: pollIntervalMs,
    seconds: round2(seconds),
    runs: runs.length,
    continueAsNew: runs.length - 1,
    eventsPerRun: runs.map((run) => run.events),
    pollsPerRun: runs.map((run) => run.polls),
    largestRunEvents: biggest.events,
    largestRunBytes: biggest.bytes,
    eventsPerPollSteady: eventsPerPoll,
    eventsPerPollAllIn: round2(totalEvents / Math.max(totalPolls, 1)),
    pollsOnWorkflowTimers: timerPolls,
    maxEventsBetweenPolls: intervals.length > 0 ? Math.max(...intervals) : 0,
    temporalLimits: TEMPORAL_LIMITS,
    shareOfEventLimit: round2(biggest.events / TEMPORAL_LIMITS.errorEvents),
    workflow: link ?? batch.workflowId,
  };
  details.historyCandidates.push({ source: 'simulated 7-day batch (largest run)', maxEvents: biggest.events });
  const maxHistoryEvents = Math.max(...details.historyCandidates.map((candidate) => candidate.maxEvents));
  ctx.log(`7-day batch: ${totalPolls} polls in ${seconds.toFixed(0)}s over ${runs.length} runs (${runs.length - 1} continue-as-new); ` +
    `largest run ${biggest.events} events / ${(biggest.bytes / 1024).toFixed(0)} KB; ${eventsPerPoll} events per poll`);
  return { eventsPerPoll, maxHistoryEvents };
}
