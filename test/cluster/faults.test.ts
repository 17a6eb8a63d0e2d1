/**
 * The chaos soak (tools/chaos/run.ts, its invariants and recording handlers) against the cluster: three stock worker
 * processes on one task queue share batches and jobs while a history host and then a matching host are SIGKILLed
 * and started again, workers are SIGKILLed at random and the fake provider injects faults. Nothing may be lost,
 * created twice at the provider, handled twice or left stalled, and the work must really have been shared.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Disruption } from '../../tools/chaos/disruptions';
import { sleep } from '../../tools/chaos/disruptions';
import { formatTable } from '../../tools/chaos/report';
import { QUICK_PRESET, runChaos, type ChaosOptions } from '../../tools/chaos/run';
import { DATA_DIR } from '../../tools/dev/stack';
import type { ClusterControl } from '../../tools/cluster/control-client';
import { clusterAddress, testClusterControl } from '../support/cluster';
import { assertChaosInvariants } from '../support/chaos-invariants';
import { createScratchDatabase } from '../support/scratch-database';

/** How long a killed host stays down: long enough for the ring to notice and move its shards and partitions. */
const DOWN_MS = 8000;

function crash(control: ClusterControl, member: string, log: (message: string) => void): Disruption {
  return {
    kind: 'temporal',
    async run() {
      const before = (await control.members()).find((info) => info.name === member);
      log(`SIGKILL ${member} (pid ${before?.pid}); down for ${DOWN_MS / 1000}s`);
      await control.kill(member, 'SIGKILL');
      await sleep(DOWN_MS);
      const after = await control.start(member);
      log(`${member} back (pid ${after.pid})`);
    },
  };
}

test('a history host and a matching host crash and come back, workers are killed: lost 0, duplicates 0, stalled 0', { timeout: 600_000 }, async (t) => {
  const control = testClusterControl();
  const database = await createScratchDatabase('bk_cluster_chaos');
  const lines: string[] = [];
  const log = (message: string) => lines.push(message);
  try {
    const options: ChaosOptions = {
      ...QUICK_PRESET,
      name: 'test/cluster-chaos',
      batches: 30,
      jobs: 12,
      durationMs: 60_000,
      drainTimeoutMs: 60_000,
      workers: 3,
      maxInFlight: 15,
      killEveryMs: 20_000,
      seed: 15,
      log,
      stack: {
        temporalAddress: clusterAddress(),
        namespace: 'default',
        databaseUrl: database.url,
        disruptions: [crash(control, 'history-1', log), crash(control, 'matching-1', log)],
        stop: async () => undefined,
      },
    };
    const result = await runChaos(options);
    for (const line of lines.filter((text) => /SIGKILL|back \(pid|drain|settled after/.test(text))) t.diagnostic(line);
    for (const line of formatTable(result).split('\n')) t.diagnostic(line);

    assertChaosInvariants(result);
    assert.equal(result.serverRestarts, 2, 'history-1 and matching-1 were each killed and started again');
    assert.ok(result.workerKills >= 1, 'a worker was SIGKILLed');
    assert.ok(result.faultsInjected > 0, 'the provider injected faults');

    // Shared work: the three workers (and their restarts) each recorded handler effects.
    const { rows } = await database.pool.query(`SELECT count(DISTINCT pid)::int AS workers, count(*)::int AS effects FROM chaos_effects WHERE kind = 'complete'`);
    assert.ok(rows[0].workers >= 3, `completion effects came from ${rows[0].workers} worker processes (${rows[0].effects} effects)`);
    const members = await control.members();
    for (const name of ['history-1', 'matching-1']) assert.ok(members.find((member) => member.name === name)?.running, `${name} runs again`);
    rmSync(path.join(DATA_DIR, 'test', 'cluster-chaos'), { recursive: true, force: true });
  } finally {
    await database.drop();
  }
});
