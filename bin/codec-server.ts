/**
 * The codec server as a process (`npm run codec-server`, or `node dist/bin/codec-server.js` from the package), configured from the environment: BATCHKEEPER_CODEC_KEYS
 * (the same value as the worker's; required) and BATCHKEEPER_CODEC_PORT / _HOST / _CORS_ORIGINS / _AUTH_TOKEN /
 * _NAMESPACES (config/variables.ts). Then: temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888 (or
 * TEMPORAL_CODEC_ENDPOINT for the UI). `--new-key <id>` prints a fresh key entry instead.
 */
import { loadConfig } from '../config/load';
import { AesGcmPayloadCodec } from '../codec/aes-gcm-codec';
import { DEFAULT_ALLOWED_ORIGINS, startCodecServer } from '../codec/codec-server';
import { CODEC_KEYS_ENV, newCodecKeyEntry } from '../codec/keys';

async function main(): Promise<void> {
  const newKey = process.argv.indexOf('--new-key');
  if (newKey !== -1) {
    console.log(newCodecKeyEntry(process.argv[newKey + 1] ?? new Date().toISOString().slice(0, 7)));
    return;
  }
  const { codec, codecServer } = loadConfig(process.env, ['codec', 'codecServer']);
  if (!codec.keys) throw new Error(`${CODEC_KEYS_ENV} is not set: give keyId:base64key (32 bytes), newest first`);
  const server = await startCodecServer({
    codec: new AesGcmPayloadCodec(codec.keys),
    port: codecServer.port,
    host: codecServer.host,
    allowedOrigins: codecServer.allowedOrigins ?? DEFAULT_ALLOWED_ORIGINS,
    authToken: codecServer.authToken,
    namespaces: codecServer.namespaces,
  });
  console.log(`[batchkeeper] codec server on ${server.url} (active key ${codec.keys.active.id}, ${codec.keys.byId.size} key(s)); ` +
    `Temporal Web: --ui-codec-endpoint ${server.url}`);
  if (process.send) process.send({ ready: true, url: server.url });
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: Error) => {
  console.error(`[batchkeeper] codec server: ${error.message}`);
  process.exit(1);
});
