/** Seeded randomness so fault rates and result order are reproducible from a seed. */
import { createHash } from 'node:crypto';

export type Rng = () => number;

/** mulberry32: tiny, fast, good enough for test schedules. Returns floats in [0, 1). */
export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed derived from a string (e.g. a batch id). */
export function seedFrom(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0);
}

/** Fisher–Yates permutation of 0..n-1 in a typed array (flat memory for 100k+ entries). */
export function permutation(n: number, rng: Rng): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}

export function shortHash(text: string, length = 16): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
