/**
 * AES-256-GCM payload codec: every payload Temporal stores (workflow and activity arguments and results, signal,
 * query and update arguments, memos, heartbeat details, current details) is serialised as a whole Payload proto and
 * encrypted, so the server and its database hold only ciphertext. Metadata of an encrypted payload:
 * `encoding: binary/encrypted` and `encryption-key-id: <id>`; data: 12-byte IV, ciphertext, 16-byte tag. The key id
 * is authenticated too (additional data), so a payload cannot be replayed under another key's name.
 *
 * Search attributes are not payloads and are never encrypted: keep them to ids, statuses and names.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { CodecKeyring } from './keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A payload that cannot be decrypted: names the key id and the cause, never key or plaintext. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeyring) {}

  /** Id of the key new payloads are encrypted with. */
  get activeKeyId(): string {
    return this.keys.active.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  /** Decrypts encrypted payloads with the key they name; anything else passes through unchanged. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  encrypt(payload: Payload): Payload {
    const { id, key } = this.keys.active;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(encoder.encode(id));
    const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      metadata: { encoding: encoder.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: encoder.encode(id) },
      data: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]),
    };
  }

  decrypt(payload: Payload): Payload {
    const encoding = payload.metadata?.encoding;
    if (!encoding || decoder.decode(encoding) !== ENCRYPTED_ENCODING) return payload;
    const rawKeyId = payload.metadata?.[KEY_ID_METADATA];
    if (!rawKeyId) throw new PayloadDecryptionError(`encrypted payload has no ${KEY_ID_METADATA} metadata`);
    const keyId = decoder.decode(rawKeyId);
    const entry = this.keys.byId.get(keyId);
    if (!entry) {
      throw new PayloadDecryptionError(
        `payload was encrypted with key ${JSON.stringify(keyId.slice(0, 64))}, which is not among the configured codec keys (${[...this.keys.byId.keys()].join(', ')})`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`encrypted payload (key ${keyId}) is too short`);
    const decipher = createDecipheriv('aes-256-gcm', entry.key, data.subarray(0, IV_BYTES));
    decipher.setAAD(encoder.encode(keyId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(`encrypted payload failed authentication with key ${keyId} (wrong key or tampered data)`);
    }
    return temporal.api.common.v1.Payload.decode(plaintext);
  }
}
