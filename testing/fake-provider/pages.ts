/** Token pagination as Gemini and xAI do it: an opaque token for the next offset, absent on the last page. */

export interface TokenPage<T> {
  items: T[];
  /** Absent on the last page. */
  next?: string;
}

export function tokenPage<T>(all: readonly T[], token: string | null, size: string | null, limits: { size: number; max: number }): TokenPage<T> {
  const offset = token ? Number(Buffer.from(token, 'base64url').toString('utf8')) || 0 : 0;
  const limit = Math.min(limits.max, Math.max(1, Number(size) || limits.size));
  const items = all.slice(offset, offset + limit);
  const end = offset + items.length;
  return end < all.length && items.length > 0 ? { items, next: Buffer.from(String(end)).toString('base64url') } : { items };
}
