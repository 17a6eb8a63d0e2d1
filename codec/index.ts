export { AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, PayloadDecryptionError } from './aes-gcm-codec';
export { startCodecServer, DEFAULT_ALLOWED_ORIGINS, type CodecServer, type CodecServerOptions } from './codec-server';
export { encryptingDataConverter, FAILURE_CONVERTER_PATH } from './data-converter';
export { CODEC_KEYS_ENV, CodecConfigError, keyring, newCodecKeyEntry, parseCodecKeys, type CodecKey, type CodecKeyring } from './keys';
