/** Helpers both result-file writers share: the (shuffled) line order and the shape of a corrupted line. */
import { permutation, seededRng, seedFrom } from './random';

/** Request indices in the order their result lines are written; seeded by batch id so reruns match. */
export function resultOrder(batchId: string, count: number, shuffle: boolean): Iterable<number> {
  if (!shuffle) return Array.from({ length: count }, (_, i) => i);
  return permutation(count, seededRng(seedFrom(batchId)));
}

/**
 * A line cut off mid-object, the way a truncated write looks. It keeps the `"custom_id":"..."` prefix (Gemini:
 * `"key":"..."`) so a reader can still tell which request it belonged to.
 */
export function brokenLine(validJsonLine: string, customId: string, idField = 'custom_id'): string {
  const marker = `"${idField}":${JSON.stringify(customId)}`;
  const keepUntil = validJsonLine.indexOf(marker) + marker.length;
  // Dropping at least the closing brace guarantees the JSON is invalid.
  return validJsonLine.slice(0, Math.min(keepUntil + 24, validJsonLine.length - 1));
}
