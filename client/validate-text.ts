import { findUnstorableText, jsonForStorage } from '../domain/storable-text';
import { ValidationError } from './errors';

/**
 * Every string an app passes that ends up in PostgreSQL (text and jsonb columns, query parameters) goes through
 * here: text PostgreSQL cannot store is refused before anything is written, naming the field path.
 */
export function requireStorableText(value: unknown, field: string): void {
  const found = findUnstorableText(value, field);
  if (found) throw new ValidationError(found.path, found.problem);
}

/**
 * Checks a value bound for a jsonb column and returns its size as stored (UTF-8 bytes of its JSON). A value JSON
 * cannot carry (BigInt, a cycle) or holding text PostgreSQL cannot store is refused naming the field.
 */
export function requireStorableJson(value: unknown, field: string): number {
  return storableJson(value, field).bytes;
}

/** As requireStorableJson, with the JSON text itself, for a caller that stores it (serialised once). */
export function storableJson(value: unknown, field: string): { json: string; bytes: number } {
  let stored: ReturnType<typeof jsonForStorage>;
  try {
    stored = jsonForStorage(value, field);
  } catch {
    throw new ValidationError(field, 'must be JSON (no BigInt values or circular references)');
  }
  if (stored.unstorable) throw new ValidationError(stored.unstorable.path, stored.unstorable.problem);
  const json = stored.json ?? '';
  return { json, bytes: Buffer.byteLength(json, 'utf8') };
}
