/**
 * Typed search attributes carried by batch and job workflows. Workflows upsert them, the client filters on them,
 * and the dev server registers them at start. SQL visibility allows 10 Keyword, 3 Bool, 3 Int, 3 Datetime per namespace.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** 'batch' or 'job'. */
export const KIND = defineSearchAttributeKey('BatchkeeperKind', SearchAttributeType.KEYWORD);
/** Batch status (pending, in_progress, ended, ...) or job status (running, succeeded, ...). */
export const STATUS = defineSearchAttributeKey('BatchkeeperStatus', SearchAttributeType.KEYWORD);
export const PROVIDER = defineSearchAttributeKey('BatchkeeperProvider', SearchAttributeType.KEYWORD);
/** Completion handler name for batches, job type for jobs. */
export const HANDLER = defineSearchAttributeKey('BatchkeeperHandler', SearchAttributeType.KEYWORD);
export const DEAD_LETTERED = defineSearchAttributeKey('BatchkeeperDeadLettered', SearchAttributeType.BOOL);
/** The step that is dead-lettered (submit, poll, fetch_results, dispatch_handler, execute). */
export const FAILED_STEP = defineSearchAttributeKey('BatchkeeperFailedStep', SearchAttributeType.KEYWORD);
export const DEADLINE = defineSearchAttributeKey('BatchkeeperDeadline', SearchAttributeType.DATETIME);
/** Attempts of the current (or dead-lettered) step. */
export const TRY_COUNT = defineSearchAttributeKey('BatchkeeperTryCount', SearchAttributeType.INT);

export const ALL_SEARCH_ATTRIBUTES = [KIND, STATUS, PROVIDER, HANDLER, DEAD_LETTERED, FAILED_STEP, DEADLINE, TRY_COUNT];

/** Dev-server flag form: Name=Type, as `temporal server start-dev --search-attribute` and `operator search-attribute create` take them. */
export function searchAttributeFlags(): string[] {
  const typeNames: Record<string, string> = {
    KEYWORD: 'Keyword', BOOL: 'Bool', DATETIME: 'Datetime', INT: 'Int', TEXT: 'Text', DOUBLE: 'Double', KEYWORD_LIST: 'KeywordList',
  };
  return ALL_SEARCH_ATTRIBUTES.map((key) => `${key.name}=${typeNames[key.type] ?? key.type}`);
}
