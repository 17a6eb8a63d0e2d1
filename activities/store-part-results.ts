import type { Pool } from 'pg';
import { appendEvent } from '../db/events-store';
import { inTransaction } from '../db/pool';
import { markPartResultsFetched, type ProviderBatchRecord } from '../db/provider-batches-store';
import { partPositions } from '../db/requests-store';
import { ResultsCopy, type StoredOutcome } from '../db/results-store';
import { jsonForStorage, storableDiagnostic } from '../domain/storable-text';
import type { ProviderResultLine, TokenUsage } from '../providers/types';

/** What one part's results held beyond one line per request; stored as a results_anomalies event when not all 0. */
export interface ResultAnomalies {
  /** Lines whose custom id was never submitted in this part. */
  unknownIds: number;
  /** Lines that could not be parsed (their request, when identifiable, is errored). */
  malformedLines: number;
  /** Further lines for a request that already has one (not stored). */
  duplicateLines: number;
}

/** What storing one part did: its anomalies and the outcomes stored, by request status. */
export interface PartIngest extends ResultAnomalies {
  outcomes: Record<string, number>;
}

/** A request of the part with no result line gets this outcome. */
export interface LeftoverOutcome {
  status: 'missing' | 'expired' | 'canceled';
  message: string;
}

/** Marks a provider id whose result is already stored in this part (a repeated line is not stored twice). */
const STORED = -1;
const HEARTBEAT_EVERY_LINES = 1000;

/**
 * Streams one part's result lines into request_results with COPY, then one `leftover` outcome for each of the part's
 * requests that had no line, in one transaction that also marks the part's results fetched: a part's outcomes land
 * all at once or not at all, and a retried attempt starts clean. Lines are joined to requests by provider-side id;
 * lines for ids never submitted and repeated lines are counted, not stored. Memory stays flat: lines arrive in
 * blocks and COPY waits when PostgreSQL is behind. `heartbeat` is called every thousand lines (the activity's
 * heartbeat, so a long ingest is not mistaken for a dead worker).
 */
export async function storePartResults(
  pool: Pool,
  part: ProviderBatchRecord,
  blocks: AsyncIterable<ProviderResultLine[]> | Iterable<ProviderResultLine[]>,
  leftover: LeftoverOutcome,
  heartbeat: (progress: { part: number; lines: number }) => void = () => undefined,
): Promise<PartIngest> {
  return inTransaction(pool, async (db) => {
    const positions = await partPositions(db, part);
    const copy = new ResultsCopy(db, part.batchId, part.round);
    const anomalies: ResultAnomalies = { unknownIds: 0, malformedLines: 0, duplicateLines: 0 };
    const outcomes: Record<string, number> = {};
    const stored = (status: string) => { outcomes[status] = (outcomes[status] ?? 0) + 1; };
    let seen = 0;
    try {
      for await (const block of blocks) {
        for (const line of block) {
          if (line.kind === 'malformed') anomalies.malformedLines += 1;
          const outcome = toStoredOutcome(line);
          if (!outcome) continue;
          const position = positions.get(outcome.customId);
          if (position === undefined) anomalies.unknownIds += 1;
          else if (position === STORED) anomalies.duplicateLines += 1;
          else {
            positions.set(outcome.customId, STORED);
            stored(outcome.status);
            const behind = copy.write(position, outcome);
            if (behind) await behind;
          }
        }
        const before = seen;
        seen += block.length;
        if (Math.floor(seen / HEARTBEAT_EVERY_LINES) > Math.floor(before / HEARTBEAT_EVERY_LINES)) {
          heartbeat({ part: part.part, lines: seen });
        }
      }
      const left = { status: leftover.status, errorCode: leftover.status, errorMessage: leftover.message, retryable: true };
      for (const position of positions.values()) {
        if (position === STORED) continue;
        stored(left.status);
        const behind = copy.write(position, left);
        if (behind) await behind;
      }
    } catch (error) {
      await copy.abort(error as Error);
      throw error;
    }
    await copy.end();
    await markPartResultsFetched(db, part);
    if (anomalies.unknownIds || anomalies.malformedLines || anomalies.duplicateLines) {
      await appendEvent(db, 'batch', part.batchId, 'results_anomalies', { detail: { part: part.part, ...anomalies } });
    }
    return { ...anomalies, outcomes };
  });
}

/**
 * One provider line to one stored outcome. A malformed line, or a result holding text PostgreSQL cannot store, fails
 * only the request it names; an error message holding such text is kept with U+FFFD in its place.
 */
function toStoredOutcome(line: ProviderResultLine): StoredOutcome | null {
  switch (line.kind) {
    case 'succeeded': {
      const tokens = storedTokens(line.usage);
      const { json, unstorable } = jsonForStorage(line.result, 'result');
      if (unstorable) {
        return {
          customId: line.customId, status: 'errored', errorCode: 'unstorable_result', retryable: true, ...tokens,
          errorMessage: `the provider's answer cannot be stored: ${unstorable.path} ${unstorable.problem}`,
        };
      }
      return { customId: line.customId, status: 'succeeded', resultJson: line.result === null ? undefined : json, ...tokens };
    }
    case 'malformed':
      return line.customId
        ? { customId: line.customId, status: 'errored', errorCode: 'malformed_result', errorMessage: line.errorMessage, retryable: true }
        : null;
    default:
      return {
        customId: line.customId, status: line.kind, errorCode: storableDiagnostic(line.errorCode),
        errorMessage: storableDiagnostic(line.errorMessage), retryable: line.retryable,
        ...storedTokens(line.usage),
      };
  }
}

function storedTokens(usage: TokenUsage | undefined): Pick<StoredOutcome, 'inputTokens' | 'outputTokens' | 'cachedInputTokens' | 'cacheWriteTokens' | 'reasoningTokens'> {
  return {
    inputTokens: usage?.inputTokens, outputTokens: usage?.outputTokens, cachedInputTokens: usage?.cachedInputTokens,
    cacheWriteTokens: usage?.cacheWriteTokens, reasoningTokens: usage?.reasoningTokens,
  };
}
