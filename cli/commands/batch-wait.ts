/** `batchkeeper batches wait <batchId>`: block until the batch's workflow has finished, then print its outcome. */
import type { BatchkeeperClient } from '../../client/batchkeeper-client';
import { requireUuid } from '../../client/ids';
import { parseDuration, str, type CommandOutput, type CommandSpec } from '../command';

export async function waitAndDescribe(
  client: BatchkeeperClient, batchId: string, timeoutMs: number | undefined, extra: Record<string, unknown> = {},
): Promise<CommandOutput> {
  const batch = await client.waitForBatch(batchId, { timeoutMs });
  return {
    json: { ...extra, batchId, status: batch.status, requestCounts: batch.requestCounts, costUsd: batch.costUsd, handlerDispatchedAt: batch.handlerDispatchedAt },
    human: () => `batch ${batchId} ${batch.status}: ${Object.entries(batch.requestCounts).map(([key, value]) => `${key} ${value}`).join(', ') || 'no counts'}` +
      `${batch.handlerDispatchedAt ? `; handler ran at ${batch.handlerDispatchedAt.toISOString()}` : ''}`,
  };
}

export const wait: CommandSpec = {
  name: 'wait',
  summary: 'wait until the batch has finished (following continue-as-new), then print its outcome',
  args: ['batchId'],
  options: { timeout: { type: 'string', value: 'DURATION', description: 'give up waiting after this long (exit 4; the batch goes on)' } },
  async run(ctx, [batchId], values) {
    requireUuid('batch', batchId);
    const timeout = str(values, 'timeout');
    return waitAndDescribe(await ctx.client(), batchId, timeout === undefined ? undefined : parseDuration('--timeout', timeout));
  },
};
