/**
 * The benchmark's peers (tools/bench/peers): the seed's poll chain and sweeps on pg-boss and on BullMQ work against
 * the fake provider through batchkeeper's provider adapters, results ingest and handler contract; and the resume
 * sweep restarts a chain whose queued poll job was deleted. BullMQ needs Redis: the test starts its own redis-server
 * (from PATH, on a free port, no persistence) as the bench does, or uses BENCH_REDIS_URL when there is no binary;
 * with neither the BullMQ tests fail and say so.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Pool } from 'pg';
import { scaledTiming } from '../tools/bench/peers/chain';
import { EFFECT_HANDLER } from '../tools/bench/peers/effects';
import {
  defaultSetup, insertPeerBatches, openPeerClient, PEERS, PeerProcess, preparePeerDatabase, type PeerClient, type PeerSetup,
} from '../tools/bench/peers/process';
import { benchBatch } from '../tools/bench/context';
import { startBenchRedis, type BenchRedis } from '../tools/bench/peers/redis';
import { createTestEnvironment, TEST_API_KEY, type TestEnvironment } from './support/environment';
import { waitFor } from './support/wait';

/** The seed's schedule and sweeps at 1/300: 60 s → 200 ms, grace and resume period 5 min → 1 s. */
const TIMING = scaledTiming(300);

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({ startWorker: false, fakeProcessingMs: 300 });
});

after(async () => {
  await env?.teardown();
});

for (const peer of PEERS) {
  describe(peer, () => {
    let setup: PeerSetup;
    let pool: Pool | undefined;
    let client: PeerClient | undefined;
    let worker: PeerProcess | undefined;
    let redis: BenchRedis | undefined;
    const lines: string[] = [];

    before(async () => {
      if (peer === 'bullmq') redis = await startBenchRedis((line) => lines.push(line));
      setup = defaultSetup(peer, {
        databaseUrl: env.databaseUrl,
        redisUrl: redis?.url ?? '',
        timing: TIMING,
        concurrency: 10,
        providerEnv: { OPENAI_API_KEY: TEST_API_KEY, OPENAI_BASE_URL: env.fake.openaiBaseUrl },
        tag: `_${randomUUID().slice(0, 8)}`,
      });
      pool = await preparePeerDatabase(setup);
      client = await openPeerClient(setup);
      worker = await PeerProcess.spawn(setup, `${peer}-worker`, (line) => lines.push(line));
    });

    after(async () => {
      await worker?.stop();
      await client?.close();
      await pool?.end();
      await redis?.stop();
      if (process.exitCode) console.log(lines.slice(-40).join('\n'));
    });

    const effects = async () => (await pool!.query<{ batch_id: string; effects: number; succeeded: number; results_seen: number; outcome: string }>(
      'SELECT batch_id, effects, succeeded, results_seen, outcome FROM public.bench_effects WHERE system = $1', [setup.system])).rows;

    test(`a few batches complete through the ${peer} peer: provider batch created once, results stored, handler run once`, { timeout: 60_000 }, async () => {
      env.fake.configure({ processingMs: 300 });
      const batches = Array.from({ length: 3 }, () => benchBatch({ requests: 4, pollScheduleMs: TIMING.pollScheduleMs, handler: EFFECT_HANDLER, label: `peer-${peer}` }));
      await insertPeerBatches(pool!, batches);
      await client!.enqueueSubmit(batches.map((batch) => batch.id));
      const ids = batches.map((batch) => batch.id);
      await waitFor(async () => {
        const { rows } = await pool!.query('SELECT count(*)::int AS n FROM peer_batches WHERE batch_id = ANY($1::uuid[]) AND handler_dispatched_at IS NOT NULL', [ids]);
        return rows[0].n === ids.length;
      }, 40_000, `${peer}: every batch dispatched`);
      const byBatch = new Map((await effects()).map((row) => [row.batch_id, row]));
      for (const id of ids) {
        const effect = byBatch.get(id);
        assert.ok(effect, `batch ${id} has its handler effect`);
        assert.deepEqual([effect.effects, effect.outcome, effect.succeeded, effect.results_seen], [1, 'ended', 4, 4]);
      }
      const { rows } = await pool!.query(
        `SELECT status, count(*)::int AS n FROM request_outcomes WHERE batch_id = ANY($1::uuid[]) GROUP BY status`, [ids]);
      assert.deepEqual(rows, [{ status: 'succeeded', n: 12 }], 'every request has its stored result');
      const created = env.fake.createdBatches().filter((info) => ids.includes(info.batchkeeperBatchId ?? ''));
      assert.equal(created.length, 3, 'one provider batch per batch');
      const stats = await worker!.stats();
      assert.ok(stats.polls >= 3 && stats.statusReads >= 3, `the chain polled (${stats.polls} polls, ${stats.statusReads} status reads)`);
    });

    test(`the ${peer} resume sweep restarts a chain whose poll job was deleted`, { timeout: 60_000 }, async () => {
      // Long enough that the chain has reached its 1 s and 2 s delays when its job is deleted.
      env.fake.configure({ processingMs: 6000 });
      const batch = benchBatch({ requests: 2, pollScheduleMs: TIMING.pollScheduleMs, handler: EFFECT_HANDLER, label: `peer-${peer}-resume` });
      await insertPeerBatches(pool!, [batch]);
      worker!.resetStats();
      await client!.enqueueSubmit([batch.id]);
      await waitFor(async () => {
        const { rows } = await pool!.query('SELECT polls FROM peer_batches WHERE batch_id = $1', [batch.id]);
        return rows[0].polls >= 3;
      }, 20_000, `${peer}: the chain reached its third reschedule`);
      // The chain's one queued job, deleted as a queue-backend restart or an evicted job would lose it.
      const deleted = await waitFor(async () => (await client!.deletePollJobs(batch.id)) || undefined, 10_000, `${peer}: a queued poll job to delete`);
      assert.equal(deleted, 1);
      const { rows: [{ polls: pollsAtDelete }] } = await pool!.query('SELECT polls FROM peer_batches WHERE batch_id = $1', [batch.id]);
      await waitFor(async () => {
        const { rows } = await pool!.query('SELECT handler_dispatched_at FROM peer_batches WHERE batch_id = $1', [batch.id]);
        return rows[0].handler_dispatched_at !== null;
      }, 40_000, `${peer}: the batch dispatched after the sweep resumed it`);
      const stats = await worker!.stats();
      assert.ok(stats.resumed >= 1, `the resume sweep enqueued a poll (${stats.resumed})`);
      const { rows: [row] } = await pool!.query('SELECT polls, status FROM peer_batches WHERE batch_id = $1', [batch.id]);
      assert.equal(row.status, 'ended');
      assert.ok(row.polls >= pollsAtDelete, 'polls went on after the deletion');
      const effect = (await effects()).find((entry) => entry.batch_id === batch.id);
      assert.deepEqual([effect?.effects, effect?.succeeded], [1, 2]);
    });
  });
}
