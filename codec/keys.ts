/**
 * Encryption keys of the payload codec, from the environment:
 *
 *   BATCHKEEPER_CODEC_KEYS='2026-11:<base64 32 bytes>,2026-05:<base64 32 bytes>'
 *
 * The first key is the active one (new payloads are encrypted with it); the others only decrypt, so payloads written
 * before a key rotation stay readable. Key ids travel in each payload's metadata; key material never leaves this
 * module and never appears in an error message.
 */

import { randomBytes } from 'node:crypto';

export interface CodecKey {
  id: string;
  /** 32 bytes: AES-256-GCM. */
  key: Buffer;
}

export interface CodecKeyring {
  /** Encrypts new payloads. */
  active: CodecKey;
  /** Every key by id, the active one included. */
  byId: ReadonlyMap<string, CodecKey>;
}

export const CODEC_KEYS_ENV = 'BATCHKEEPER_CODEC_KEYS';
const KEY_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const KEY_BYTES = 32;

/** Unusable codec configuration; the message names the entry, never the key. */
export class CodecConfigError extends Error {
  override readonly name = 'CodecConfigError';
}

export function keyring(keys: CodecKey[]): CodecKeyring {
  if (keys.length === 0) throw new CodecConfigError('at least one codec key is required');
  const byId = new Map<string, CodecKey>();
  for (const entry of keys) {
    if (!KEY_ID_PATTERN.test(entry.id)) throw new CodecConfigError(`codec key id ${JSON.stringify(entry.id.slice(0, 80))} must be 1-64 characters of [A-Za-z0-9_.-]`);
    if (entry.key.length !== KEY_BYTES) throw new CodecConfigError(`codec key ${entry.id} must be ${KEY_BYTES} bytes (AES-256), got ${entry.key.length}`);
    if (byId.has(entry.id)) throw new CodecConfigError(`codec key id ${entry.id} is listed twice`);
    byId.set(entry.id, entry);
  }
  return { active: keys[0]!, byId };
}

/** Parses `id:base64,id:base64` (whitespace around entries is ignored); the first entry is the active key. */
export function parseCodecKeys(text: string): CodecKeyring {
  const entries = text.split(',').map((entry) => entry.trim()).filter(Boolean);
  const keys = entries.map((entry, index) => {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new CodecConfigError(`${CODEC_KEYS_ENV} entry ${index + 1} must look like keyId:base64key`);
    const id = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1).trim();
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) throw new CodecConfigError(`codec key ${id} is not base64`);
    return { id, key: Buffer.from(encoded, 'base64') };
  });
  return keyring(keys);
}

/** A fresh random key entry, `id:base64`, for BATCHKEEPER_CODEC_KEYS. */
export function newCodecKeyEntry(id: string): string {
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}
