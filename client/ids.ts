import { NotFoundError } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checks an id before it reaches SQL or Temporal, so an unknown or malformed id gets a clear error. */
export function requireUuid(kind: string, id: unknown): string {
  if (typeof id !== 'string' || !UUID.test(id)) throw new NotFoundError(kind, String(id));
  return id.toLowerCase();
}
