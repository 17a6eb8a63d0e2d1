/**
 * Timeliness.
 *
 * Poll lateness: N batches (10,000 by default) in flight on one fresh worker, each polling every `pollIntervalMs`
 * against a provider batch that never finishes, their workflows started evenly over one interval (the steady state of
 * that many open batches). Once all are open, a window of `windowMs` is measured: for a random sample of the batches,
 * each status read the fake provider received that was due inside the window (the read before it + the interval) is
 * late by the time between; a read due but not made by the end counts as late by the time since it was due. That is
 * the same measure whether polls run on workflow timers or on activity retries (the steady interval, where no
 * history event marks a poll); where the histories hold timer polls, their lateness is split into timer lag (server),
 * workflow-task lag and activity-queue lag. Worker memory with that many open batches is sampled during the same
 * window (memory.ts).
 *
 * Poll-now to handler: a 1,000-request batch whose provider batch has finished waits 10 minutes for its next poll; pollNow
 * (BatchkeeperClient.pollNow, the operator's path) is sent and the time until the handler's dispatch transaction
 * starts (batches.handler_dispatched_at) is taken; the median of several trials is reported.
 */
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import { inTransaction } from '../../db/pool';
import { asleepUntilNextPoll, benchBatch, mapLimit, sleep, type BenchContext, type WorkerProcess } from './context';
import { API_KEY } from './presets';
import { analyseHistory, type PollTiming } from './history';
import { RssSampler, summariseOpenBatchesMemory } from './memory';
import { percentile, round2, type BenchDetails } from './report';

export async function runPollNow(ctx: BenchContext, details: BenchDetails) {
  const { trials, requests } = ctx.preset.pollNow;
  const client = new BatchkeeperClient({ client: ctx.temporal, pool: ctx.pool, taskQueue: ctx.taskQueue });
  const samples: { totalMs: number; resultsStoredMs: number; fetchMs: number }[] = [];
  for (let trial = 1; trial <= trials; trial += 1) {
    const [batch] = await ctx.insertBatches([
      benchBatch({ requests, pollScheduleMs: [600_000], handler: 'log-summary', label: `poll-now-${trial}` }),
    ]);
    ctx.fake.configure({ batchRules: [...ctx.fake.state().config.batchRules, { match: { batchkeeperBatchId: batch.id }, processingMs: 200, times: 1 }] });
    await ctx.startBatchWorkflows([batch]);
    // Wait for: submitted, the provider batch finished, the workflow asleep until its poll 10 minutes on.
    let providerBatchId: string | null = null;
    for (let waited = 0; ; waited += 50) {
      if (waited > 60_000) throw new Error(`poll-now trial ${trial}: batch not submitted and asleep after 60s`);
      const { rows } = await ctx.pool.query('SELECT provider_batch_id FROM batches WHERE id = $1', [batch.id]);
      providerBatchId = rows[0]?.provider_batch_id ?? null;
      if (providerBatchId && ctx.fake.batch(providerBatchId)?.phase === 'completed') {
        if (await asleepUntilNextPoll(ctx.temporal, batch.workflowId)) break;
      }
      await sleep(50);
    }
    await sleep(200);
    const t0 = Date.now();
    await client.pollNow(batch.id);
    for (;;) {
      const { rows } = await ctx.pool.query(
        `SELECT handler_dispatched_at, results_fetched_at,
                (SELECT last_attempt_at FROM step_attempts WHERE subject_kind = 'batch' AND subject_id = $1 AND step = 'fetch_results') AS fetch_started
           FROM batches WHERE id = $1`,
        [batch.id],
      );
      const row = rows[0];
      if (row?.handler_dispatched_at) {
        samples.push({
          totalMs: row.handler_dispatched_at.getTime() - t0,
          resultsStoredMs: row.results_fetched_at.getTime() - t0,
          fetchMs: row.results_fetched_at.getTime() - row.fetch_started.getTime(),
        });
        break;
      }
      if (Date.now() - t0 > 60_000) throw new Error(`poll-now trial ${trial}: handler not dispatched 60s after pollNow`);
      await sleep(5);
    }
    const sample = samples[samples.length - 1];
    ctx.log(`poll-now trial ${trial}/${trials}: handler after ${sample.totalMs} ms (results stored after ${sample.resultsStoredMs} ms; fetch_results ${sample.fetchMs} ms)`);
    await ctx.temporal.workflow.getHandle(batch.workflowId).result();
  }
  const totals = samples.map((sample) => sample.totalMs).sort((a, b) => a - b);
  const pollNowToHandlerP50Ms = Math.round(percentile(totals, 50));
  details.pollNow = {
    trials,
    requestsPerBatch: requests,
    samplesMs: samples.map((sample) => sample.totalMs),
    p50Ms: pollNowToHandlerP50Ms,
    maxMs: Math.max(...totals),
    resultsStoredP50Ms: Math.round(percentile(samples.map((sample) => sample.resultsStoredMs).sort((a, b) => a - b), 50)),
    fetchResultsP50Ms: Math.round(percentile(samples.map((sample) => sample.fetchMs).sort((a, b) => a - b), 50)),
    measuredTo: 'batches.handler_dispatched_at (start of the dispatch transaction, just before onComplete runs)',
  };
  return { pollNowToHandlerP50Ms };
}

/**
 * Puts `count` batches in the state a submitted batch is in: a provider batch exists at the fake (Anthropic, created
 * through its HTTP API; it never finishes) and PostgreSQL holds the part and the batch as in progress, as
 * submitBatch would have left them. Their workflows then resume straight into polling, as they do when the sweep
 * restarts a workflow. (Submitting 10,000 batches through the workflows takes this machine over ten minutes.)
 */
async function presubmittedBatches(ctx: BenchContext, count: number, pollIntervalMs: number) {
  const batches = await ctx.insertBatches(
    Array.from({ length: count }, () => benchBatch({ provider: 'anthropic', requests: 1, pollScheduleMs: [pollIntervalMs], label: 'in-flight' })),
    (done) => ctx.log(`inserted ${done}/${count} batches`),
  );
  const providerIds = await mapLimit(batches, 16, async (batch, index) => {
    const response = await fetch(`${ctx.fake.anthropicBaseUrl}/v1/messages/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ requests: [{ custom_id: 'r-0', params: { model: batch.model, max_tokens: 64, messages: [{ role: 'user', content: 'Benchmark question number 0' }] } }] }),
    });
    if (!response.ok) throw new Error(`fake create: HTTP ${response.status}`);
    if ((index + 1) % 2000 === 0) ctx.log(`created ${index + 1}/${count} provider batches`);
    return ((await response.json()) as { id: string }).id;
  });
  const ids = batches.map((batch) => batch.id);
  await inTransaction(ctx.pool, async (db) => {
    await db.query(
      `UPDATE batch_requests SET provider_custom_id = custom_id, part = 0, attempts = 1 WHERE batch_id = ANY($1::uuid[])`, [ids],
    );
    await db.query(
      `INSERT INTO provider_batches (batch_id, round, part, tag, request_count, provider_batch_id, status, provider_status, request_counts, submitted_at)
       SELECT id, 1, 0, id::text, 1, pid, 'in_progress', 'in_progress', '{"total":1,"processing":1}'::jsonb, now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, pid)`,
      [ids, providerIds],
    );
    await db.query(
      `UPDATE batches b SET provider_batch_id = t.pid, status = 'in_progress', provider_status = 'in_progress',
              request_counts = '{"total":1,"processing":1}'::jsonb, submitted_at = now(),
              deadline_at = now() + make_interval(secs => max_age_ms / 1000.0), updated_at = now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, pid) WHERE b.id = t.id`,
      [ids, providerIds],
    );
  });
  return batches.map((batch, index) => ({ ...batch, status: 'in_progress' as const, providerBatchId: providerIds[index] }));
}

export async function runTimeliness(ctx: BenchContext, worker: WorkerProcess, details: BenchDetails) {
  const { inFlight, pollIntervalMs, windowMs, sampleWorkflows } = ctx.preset.timeliness;
  const idleMb = worker.rss().rssMb;
  const sampler = new RssSampler(worker.pid, 1000).start();
  ctx.fake.configure({ processingMs: 3650 * 24 * 3_600_000 }); // these provider batches never finish
  try {
    ctx.log(`${inFlight} submitted batches, each polling every ${pollIntervalMs / 1000}s (${(inFlight / (pollIntervalMs / 1000)).toFixed(0)} polls/s needed), on one worker`);
    const batches = await presubmittedBatches(ctx, inFlight, pollIntervalMs);
    // The starts are spread evenly over one poll interval, so the polls fall due at the steady rate that many open
    // batches make (N / interval per second). Starting them all at once would instead make every later round of
    // polls fall due in the same few seconds, which measures a burst, not batches in flight.
    const rampStart = Date.now();
    const perSecond = inFlight / (pollIntervalMs / 1000);
    ctx.log(`starting the ${inFlight} workflows evenly over ${pollIntervalMs / 1000}s (${perSecond.toFixed(1)}/s)`);
    const progress = setInterval(() => ctx.log(`ramp: workflows starting; worker RSS ${worker.rss().rssMb.toFixed(0)} MB`), 10_000);
    try {
      await ctx.startBatchWorkflows(batches, undefined, (done) => ctx.log(`started ${done}/${inFlight} workflows`), {
        startAt: (index) => rampStart + (index * pollIntervalMs) / inFlight,
      });
    } finally {
      clearInterval(progress);
    }
    const rampEnd = Date.now();
    const rampSeconds = (rampEnd - rampStart) / 1000;
    // From the second interval on: by then every batch made its first poll (the workflows' starts and first steps
    // are behind them), which is the steady state of that many open batches.
    const windowStart = Math.max(rampEnd, rampStart + 2 * pollIntervalMs);
    const windowEnd = windowStart + windowMs;
    ctx.log(`all ${inFlight} workflows started after ${rampSeconds.toFixed(0)}s; measuring the polls due from ` +
      `+${((windowStart - rampEnd) / 1000).toFixed(0)}s for ${windowMs / 1000}s`);
    const pollsAt = async () => Number((await ctx.pool.query(`SELECT sum(poll_count) AS n FROM batches WHERE metadata->>'bench' = 'in-flight'`)).rows[0].n ?? 0);
    while (Date.now() < windowStart) {
      await sleep(Math.min(10_000, Math.max(windowStart - Date.now(), 0)));
      if (Date.now() < windowStart) ctx.log(`waiting for the first polls: ${((windowStart - Date.now()) / 1000).toFixed(0)}s; worker RSS ${worker.rss().rssMb.toFixed(0)} MB`);
    }
    const pollsBefore = await pollsAt();
    while (Date.now() < windowEnd) {
      await sleep(Math.min(5000, Math.max(windowEnd - Date.now(), 0)));
      ctx.log(`window: ${((Date.now() - windowStart) / 1000).toFixed(0)}/${windowMs / 1000}s, ${(await pollsAt()) - pollsBefore} polls, worker RSS ${worker.rss().rssMb.toFixed(0)} MB`);
    }
    // Polls due at the end of the window get a few seconds to start before the histories are read.
    await sleep(3000);
    const pollsInWindow = (await pollsAt()) - pollsBefore;
    const memory = summariseOpenBatchesMemory({ idleMb, sampler, windowStart: rampEnd, openBatches: inFlight });

    // Lateness of the polls due inside the window, seen from the provider: each status read of a sampled batch that
    // was due in the window (the read before it + the interval) came this much after it was due. Polls on workflow
    // timers and polls on activity retries are measured alike; a due read not made by the end is late by at least
    // the time since it was due.
    const sample = [...batches].sort(() => Math.random() - 0.5).slice(0, sampleWorkflows);
    const startedAt = new Map(batches.map((batch, index) => [batch.id, rampStart + (index * pollIntervalMs) / inFlight]));
    const lateness: number[] = [];
    let notStarted = 0;
    const readAt = Date.now();
    for (const batch of sample) {
      const reads = ctx.fake.batch(batch.providerBatchId)?.statusReadAt ?? [];
      for (const [index, at] of reads.entries()) {
        // The first read is due one interval after the workflow's planned start.
        const dueAt = (index > 0 ? reads[index - 1] : startedAt.get(batch.id)!) + pollIntervalMs;
        if (dueAt >= windowStart && dueAt <= windowEnd) lateness.push(at - dueAt);
      }
      const lastDue = (reads.length > 0 ? reads[reads.length - 1] : startedAt.get(batch.id)!) + pollIntervalMs;
      if (lastDue >= windowStart && lastDue <= windowEnd && lastDue < readAt) {
        lateness.push(readAt - lastDue);
        notStarted += 1;
      }
    }
    // Where polls run on workflow timers, the histories split their lateness into its parts.
    const historyLateness: number[] = [];
    const timerLag: number[] = [];
    const taskLag: number[] = [];
    const activityLag: number[] = [];
    await mapLimit(sample, 8, async (batch) => {
      const fetchedAt = Date.now();
      const stats = analyseHistory(await ctx.temporal.workflow.getHandle(batch.workflowId).fetchHistory());
      const inWindow = (timing: Pick<PollTiming, 'scheduledAt'>) => timing.scheduledAt >= windowStart && timing.scheduledAt <= windowEnd;
      for (const timing of stats.pollTimings.filter(inWindow)) {
        historyLateness.push(timing.startedAt - timing.scheduledAt);
        timerLag.push(timing.timerFiredAt - timing.scheduledAt);
        taskLag.push(timing.activityScheduledAt - timing.timerFiredAt);
        activityLag.push(timing.startedAt - timing.activityScheduledAt);
      }
      if (stats.pendingPoll && inWindow(stats.pendingPoll) && stats.pendingPoll.scheduledAt < fetchedAt) {
        historyLateness.push(fetchedAt - stats.pendingPoll.scheduledAt);
      }
    });
    const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
    const p = (values: number[], q: number) => Math.round(percentile(sorted(values), q));
    const pollLatenessP50Ms = p(lateness, 50);
    const pollLatenessP99Ms = p(lateness, 99);
    const timeliness = {
      inFlight,
      pollIntervalMs,
      windowMs,
      rampSeconds: round2(rampSeconds),
      pollsNeededPerSecond: round2(inFlight / (pollIntervalMs / 1000)),
      pollsDonePerSecondInWindow: round2(pollsInWindow / (windowMs / 1000)),
      sampledWorkflows: sample.length,
      latenessSamples: lateness.length,
      pollsDueButNotStarted: notStarted,
      latenessMs: { p50: pollLatenessP50Ms, p90: p(lateness, 90), p99: pollLatenessP99Ms, max: Math.max(0, ...lateness) },
      measuredFrom: 'the fake provider: each status read against the read before it + the interval',
      pollsOnWorkflowTimers: historyLateness.length,
      timerPollLatenessMs: { p50: p(historyLateness, 50), p99: p(historyLateness, 99) },
      timerLagMs: { p50: p(timerLag, 50), p99: p(timerLag, 99) },
      workflowTaskLagMs: { p50: p(taskLag, 50), p99: p(taskLag, 99) },
      activityQueueLagMs: { p50: p(activityLag, 50), p99: p(activityLag, 99) },
      example: ctx.webLink(batches[0].workflowId) ?? batches[0].workflowId,
    };
    details.timeliness = timeliness;
    details.memory = memory.memory;
    ctx.log(`poll lateness p50 ${pollLatenessP50Ms} ms, p99 ${pollLatenessP99Ms} ms over ${lateness.length} polls ` +
      `(${timeliness.pollsDonePerSecondInWindow} polls/s done, ${timeliness.pollsNeededPerSecond} needed); ` +
      `worker RSS ${memory.workerRssMbAt10k} MB with ${inFlight} open (idle ${idleMb.toFixed(0)} MB)`);
    return { pollLatenessP50Ms, pollLatenessP99Ms, workerRssMbAt10k: memory.workerRssMbAt10k };
  } finally {
    sampler.stop();
  }
}
