import { appendEvent } from '../db/events-store';
import { batchLookup, batchSubject } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { refreshParts } from './refresh-parts';
import type { StatusView } from './status-view';
import { trackStep } from './step-tracking';

/** Asks the provider to cancel every unfinished part; they settle to terminal statuses that later polls pick up. */
export function createCancelAtProvider(deps: ActivityDeps) {
  const lookup = batchLookup(deps);
  return async function cancelAtProvider(input: { batchId: string; reason: string }): Promise<StatusView> {
    return trackStep(deps.pool, batchSubject(input.batchId), 'cancel', async (attempt) => {
      const { batch, parts } = await lookup.batchWithParts(input.batchId);
      const provider = lookup.provider(batch);
      const view = await refreshParts(deps.pool, batch, parts, null, (id) => provider.cancel(id));
      await appendEvent(deps.pool, 'batch', batch.id, 'cancel_requested', { detail: { reason: input.reason } });
      return { ...view, attempt };
    });
  };
}
