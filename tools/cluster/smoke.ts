/**
 * The end-to-end check of `npm run cluster -- --once`: a batch and a generic job through the cluster's stock worker
 * processes; the batch found again through SQL visibility by its search attributes, and through Temporal Web's API.
 */
import { Client, Connection } from '@temporalio/client';
import { BatchkeeperAdmin } from '../../client/admin';
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import { createPool } from '../../db/pool';
import type { Cluster } from './cluster';

export async function runSmokeCheck(cluster: Cluster, taskQueue: string, log: (message: string) => void): Promise<void> {
  const pool = createPool(cluster.postgres.url, { max: 2 });
  const connection = await Connection.connect({ address: cluster.address });
  try {
    const temporal = new Client({ connection, namespace: cluster.namespace });
    const client = new BatchkeeperClient({ client: temporal, pool, taskQueue });
    const started = Date.now();
    const { batchId } = await client.submitBatch({
      provider: 'openai',
      model: 'gpt-4o-mini',
      handler: 'log-summary',
      pollScheduleMs: [500, 1000],
      requests: ['smoke-a', 'smoke-b'].map((customId) => ({ customId, params: { max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] } })),
    });
    const batch = await client.waitForBatch(batchId, { timeoutMs: 120_000 });
    if (batch.status !== 'ended' || !batch.handlerDispatchedAt) throw new Error(`smoke batch ${batchId} ended as ${batch.status}`);
    const { jobId } = await client.startJob({ type: 'echo', input: { smoke: true } });
    const job = await client.waitForJob(jobId, { timeoutMs: 60_000 });
    if (job.status !== 'succeeded') throw new Error(`smoke job ${jobId} ended as ${job.status}`);

    const admin = new BatchkeeperAdmin(temporal, pool);
    // Visibility is written after the workflow's own progress: give it a few seconds.
    for (let attempt = 1; ; attempt += 1) {
      const found = await admin.listWorkflows({ taskQueue, status: 'ended', kind: 'batch' }, 1000);
      if (found.some((summary) => summary.workflowId === batch.workflowId)) break;
      if (attempt === 50) throw new Error(`smoke batch ${batchId} is not found through SQL visibility (BatchkeeperStatus = 'ended')`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (cluster.uiUrl) {
      // Temporal Web's own API, as the browser calls it, answers from SQL visibility too.
      const query = encodeURIComponent(`WorkflowId = '${batch.workflowId}'`);
      const response = await fetch(`${cluster.uiUrl}/api/v1/namespaces/${cluster.namespace}/workflows?query=${query}`);
      const text = await response.text();
      if (!response.ok || !text.includes(batch.workflowId)) throw new Error(`Temporal Web does not list ${batch.workflowId}: ${response.status} ${text.slice(0, 200)}`);
    }
    log(`smoke check passed in ${((Date.now() - started) / 1000).toFixed(1)} s: batch ${batchId} ended and dispatched, ` +
      `job ${jobId} succeeded, both through the worker processes; the batch is found by its search attributes${cluster.uiUrl ? ' and in Temporal Web' : ''}`);
  } finally {
    await connection.close();
    await pool.end();
  }
}
