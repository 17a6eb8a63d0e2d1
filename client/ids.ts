import { ValidationError } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks an id before it reaches SQL or Temporal: a malformed one is refused as such (a well-formed id that names
 * nothing is the caller's NotFoundError to raise).
 */
export function requireUuid(kind: string, id: unknown): string {
  if (typeof id !== 'string' || !UUID.test(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.slice(0, 80)) : String(id);
    throw new ValidationError(`${kind.replace(/ (\w)/g, (_, letter: string) => letter.toUpperCase())}Id`, `${shown} is not a well-formed ${kind} id (a UUID such as 2f1c8a4e-9b7d-4c3e-8a5f-0d6e7b1c2a90)`);
  }
  return id.toLowerCase();
}
