import { appendEvent } from '../db/events-store';
import { markPartFilesDeleted, partsWithFilesToDelete } from '../db/provider-batches-store';
import { isTerminalBatchStatus } from '../domain/statuses';
import { batchLookup, batchSubject } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { trackStep } from './step-tracking';

/**
 * Deletes the provider files (input, output, error) of every provider batch whose results are stored, part by part,
 * each part stamped as it is done (a provider_files_deleted event per attempt that deleted any): a retried attempt skips the parts already done, and a file the provider no longer
 * has counts as deleted. Runs after results are stored, so it never touches what the handler reads (PostgreSQL). A
 * provider without files (Anthropic) or with deletion turned off deletes nothing and stamps nothing.
 */
export function createDeleteProviderFiles(deps: ActivityDeps) {
  const { pool } = deps;
  const lookup = batchLookup(deps);
  return async function deleteProviderFiles(input: { batchId: string }): Promise<{ parts: number; deleted: number; attempt: number }> {
    return trackStep(pool, batchSubject(input.batchId), 'delete_files', async (attempt) => {
      const batch = await lookup.batch(input.batchId);
      const provider = lookup.provider(batch);
      if (!provider.deleteFiles) return { parts: 0, deleted: 0, attempt };
      let parts = 0;
      let deleted = 0;
      let failure: unknown;
      // Every part is tried even when one fails, so each attempt gets as far as the provider lets it.
      for (const part of await partsWithFilesToDelete(pool, batch.id)) {
        try {
          // The result files are known once a status read saw the part ended (a terminal status is never replaced).
          const resultFileIds = isTerminalBatchStatus(part.status) ? part.resultFileIds : null;
          const done = await provider.deleteFiles({ providerBatchId: part.providerBatchId!, inputFileId: part.inputFileId, resultFileIds });
          await markPartFilesDeleted(pool, part);
          parts += 1;
          deleted += done.deleted;
        } catch (error) {
          failure ??= error;
        }
      }
      if (parts > 0) await appendEvent(pool, 'batch', batch.id, 'provider_files_deleted', { detail: { parts, files: deleted } });
      if (failure !== undefined) throw failure;
      return { parts, deleted, attempt };
    });
  };
}
