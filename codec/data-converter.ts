/**
 * The Temporal DataConverter with payload encryption, for the client and the worker alike (both must use the same
 * keys; config/ reads them from BATCHKEEPER_CODEC_KEYS).
 */
import type { DataConverter } from '@temporalio/common';
import { AesGcmPayloadCodec } from './aes-gcm-codec';
import type { CodecKeyring } from './keys';

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
