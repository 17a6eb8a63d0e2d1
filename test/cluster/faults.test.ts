/**
 * The chaos soak (tools/chaos/run.ts, its invariants and recording handlers) on a cluster of its own (it kills
 * hosts, so it must not disturb the phase's shared cluster): three stock worker processes on one task queue share
 * batches and jobs while each history host and each matching host in turn is SIGKILLed and started again, workers
 * are SIGKILLed at random and the fake provider injects faults. Nothing may be lost, created twice at the provider,
 * handled twice or left stalled; the work must really have been shared; and Temporal's own tables must show the
 * failovers: the shards of a killed history host taken over by the other one, task queue partitions by the other
 * matching host, while the killed one was down.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Pool } from 'pg';
import { sleep, type Disruption } from '../../tools/chaos/disruptions';
import { formatTable } from '../../tools/chaos/report';
import { QUICK_PRESET, TASK_QUEUE, type ChaosOptions } from '../../tools/chaos/options';
import { runChaos } from '../../tools/chaos/run';
import { databaseNames, startCluster, type Cluster } from '../../tools/cluster/cluster';
import { shardOwnership, taskQueueRangeSum } from '../../tools/cluster/ownership';
import { createDatabase, databaseUrlWithName, dropDatabase } from '../../tools/dev/postgres';
import { DATA_DIR } from '../../tools/dev/stack';
import { assertChaosInvariants } from '../support/chaos-invariants';

/** How long a killed host stays down: the ring notices a dead member within seconds and hands its work over. */
const DOWN_MS = 10_000;

interface Failover {
  member: string;
  /** History: shards the host owned when killed. Matching: undefined (partitions record no owner). */
  ownedShards?: number;
  /** Seconds from the SIGKILL until another host had taken over (shards all owned elsewhere; a partition re-acquired). */
  takenOverAfterSeconds?: number;
}

/** SIGKILL a member, watch Temporal's tables for the takeover while it is down, start it again on its ports. */
function crash(cluster: Cluster, temporalDb: Pool, name: string, failovers: Failover[], log: (message: string) => void): Disruption {
  return {
    kind: 'temporal',
    async run() {
      const member = cluster.member(name);
      const address = `127.0.0.1:${member.spec.ports.grpc}`;
      const owned = name.startsWith('history') ? (await shardOwnership(temporalDb)).filter((shard) => shard.owner === address).map((shard) => shard.shardId) : undefined;
      const ranges = await taskQueueRangeSum(temporalDb, TASK_QUEUE);
      const failover: Failover = { member: name, ownedShards: owned?.length };
      log(`SIGKILL ${name} (pid ${member.pid}${owned ? `, owner of shards ${owned.join(', ') || 'none'}` : ''}); down for ${DOWN_MS / 1000}s`);
      const killedAt = Date.now();
      await member.stop('SIGKILL');
      const takenOver = async () => owned
        ? owned.length > 0 && (await shardOwnership(temporalDb)).every((shard) => !owned.includes(shard.shardId) || (shard.owner !== undefined && shard.owner !== address))
        : (await taskQueueRangeSum(temporalDb, TASK_QUEUE)) > ranges;
      while (Date.now() - killedAt < DOWN_MS) {
        if (failover.takenOverAfterSeconds === undefined && (await takenOver())) failover.takenOverAfterSeconds = (Date.now() - killedAt) / 1000;
        await sleep(250);
      }
      failovers.push(failover);
      await member.start();
      log(`${name} back (pid ${member.pid}); taken over after ${failover.takenOverAfterSeconds ?? '-'} s`);
    },
  };
}

test('each history and matching host crashes and comes back, workers are killed: lost 0, duplicates 0, stalled 0', { timeout: 600_000 }, async (t) => {
  const lines: string[] = [];
  const log = (message: string) => lines.push(message);
  const name = `test/cluster-faults-${process.pid}`;
  const useDatabaseUrl = Boolean(process.env.DATABASE_URL);
  const databases = useDatabaseUrl ? databaseNames(`bk_test_faults_${process.pid}`) : undefined;
  const cluster = await startCluster({ name, useDatabaseUrl, databases, log });
  // Temporal's own tables and the chaos handlers' app tables: plain connections, not batchkeeper's schema.
  const temporalDb = new Pool({ connectionString: databaseUrlWithName(cluster.postgres.adminUrl, cluster.databases.temporal), max: 2 });
  const appDatabase = `bk_cluster_chaos_${process.pid}`;
  await createDatabase(cluster.postgres.adminUrl, appDatabase);
  const appUrl = databaseUrlWithName(cluster.postgres.adminUrl, appDatabase);
  const failovers: Failover[] = [];
  let passed = false;
  try {
    const options: ChaosOptions = {
      ...QUICK_PRESET,
      name: `${name}/chaos`,
      batches: 30,
      jobs: 12,
      durationMs: 75_000,
      drainTimeoutMs: 60_000,
      workers: 3,
      maxInFlight: 15,
      killEveryMs: 20_000,
      seed: 15,
      log,
      stack: {
        temporalAddress: cluster.address,
        namespace: cluster.namespace,
        databaseUrl: appUrl,
        disruptions: ['history-1', 'matching-1', 'history-2', 'matching-2'].map((member) => crash(cluster, temporalDb, member, failovers, log)),
        stop: async () => undefined,
      },
    };
    const result = await runChaos(options);
    for (const line of lines.filter((text) => /SIGKILL|back \(pid|drain|settled after/.test(text))) t.diagnostic(line);
    for (const line of formatTable(result).split('\n')) t.diagnostic(line);

    assertChaosInvariants(result);
    assert.equal(result.serverRestarts, 4, 'each history and matching host was killed and started again');
    assert.ok(result.workerKills >= 1, 'a worker was SIGKILLed');
    assert.ok(result.faultsInjected > 0, 'the provider injected faults');

    // The failovers happened: a killed history host's shards went to the other one, and partitions moved.
    const history = failovers.filter((failover) => failover.member.startsWith('history') && failover.ownedShards);
    assert.ok(history.length >= 1, `a killed history host owned shards: ${JSON.stringify(failovers)}`);
    for (const failover of history) assert.ok(failover.takenOverAfterSeconds !== undefined, `${failover.member}'s shards were taken over while it was down`);
    assert.ok(failovers.some((failover) => failover.member.startsWith('matching') && failover.takenOverAfterSeconds !== undefined),
      `a matching host's task queue partitions were taken over while it was down: ${JSON.stringify(failovers)}`);

    // Shared work: the three workers (and their restarts) each recorded handler effects.
    const app = new Pool({ connectionString: appUrl, max: 1 });
    try {
      const { rows } = await app.query(`SELECT count(DISTINCT pid)::int AS workers, count(*)::int AS effects FROM chaos_effects WHERE kind = 'complete'`);
      assert.ok(rows[0].workers >= 3, `completion effects came from ${rows[0].workers} worker processes (${rows[0].effects} effects)`);
    } finally {
      await app.end();
    }
    for (const member of cluster.members) assert.ok(member.running, `${member.name} runs again`);
    t.diagnostic(`failovers: ${JSON.stringify(failovers)}`);
    passed = true;
  } finally {
    await temporalDb.end();
    // A failed run keeps the embedded cluster's folder (logs, and both databases inside its PostgreSQL) to look into.
    if (passed || useDatabaseUrl) await dropDatabase(cluster.postgres.adminUrl, appDatabase).catch(() => undefined);
    await cluster.stop();
    for (const database of Object.values(databases ?? {})) await dropDatabase(cluster.postgres.adminUrl, database).catch(() => undefined);
    if (passed) rmSync(path.join(DATA_DIR, name), { recursive: true, force: true });
  }
});
