/**
 * The Temporal DataConverter with payload encryption, for the client and the worker alike (both must use the same
 * keys). Off unless BATCHKEEPER_CODEC_KEYS is set.
 */
import type { DataConverter } from '@temporalio/common';
import { AesGcmPayloadCodec } from './aes-gcm-codec';
import { codecKeysFromEnv, type CodecKeyring } from './keys';

export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

export interface EncryptingDataConverterOptions {
  /** Also encode failure messages and stack traces (default true). */
  encodeFailures?: boolean;
}

export function encryptingDataConverter(keys: CodecKeyring, options: EncryptingDataConverterOptions = {}): DataConverter {
  return {
    payloadCodecs: [new AesGcmPayloadCodec(keys)],
    ...(options.encodeFailures === false ? {} : { failureConverterPath: FAILURE_CONVERTER_PATH }),
  };
}

/**
 * The encrypting DataConverter when BATCHKEEPER_CODEC_KEYS is set, else undefined (Temporal's default converter).
 * Pass the result to `new Client({ dataConverter })` and `createBatchkeeperWorker({ dataConverter })`.
 */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const keys = codecKeysFromEnv(env);
  return keys ? encryptingDataConverter(keys) : undefined;
}
