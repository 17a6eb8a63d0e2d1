/**
 * The codec server as a process, configured from the environment:
 *   BATCHKEEPER_CODEC_KEYS          keyId:base64key[,oldId:base64key...] (the same value as the worker's; required)
 *   BATCHKEEPER_CODEC_PORT          default 8888
 *   BATCHKEEPER_CODEC_HOST          default 127.0.0.1 (keep it private: whoever reaches /decode reads payloads)
 *   BATCHKEEPER_CODEC_CORS_ORIGINS  comma-separated Temporal Web origins (default localhost/127.0.0.1 on 8233 and 8080)
 *   BATCHKEEPER_CODEC_AUTH_TOKEN    when set, callers must send Authorization: Bearer <token>
 *   BATCHKEEPER_CODEC_NAMESPACES    when set, comma-separated namespaces served
 * Then: temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888 (or TEMPORAL_CODEC_ENDPOINT for the UI).
 * `npx tsx codec/main.ts --new-key <id>` prints a fresh key entry instead.
 */
import { AesGcmPayloadCodec } from './aes-gcm-codec';
import { startCodecServer, DEFAULT_ALLOWED_ORIGINS } from './codec-server';
import { CODEC_KEYS_ENV, codecKeysFromEnv, newCodecKeyEntry } from './keys';

const list = (value: string | undefined) => value?.split(',').map((item) => item.trim()).filter(Boolean);

async function main(): Promise<void> {
  const newKey = process.argv.indexOf('--new-key');
  if (newKey !== -1) {
    console.log(newCodecKeyEntry(process.argv[newKey + 1] ?? new Date().toISOString().slice(0, 7)));
    return;
  }
  const keys = codecKeysFromEnv();
  if (!keys) throw new Error(`${CODEC_KEYS_ENV} is not set: give keyId:base64key (32 bytes), newest first`);
  const server = await startCodecServer({
    codec: new AesGcmPayloadCodec(keys),
    port: Number(process.env.BATCHKEEPER_CODEC_PORT || 8888),
    host: process.env.BATCHKEEPER_CODEC_HOST || '127.0.0.1',
    allowedOrigins: list(process.env.BATCHKEEPER_CODEC_CORS_ORIGINS) ?? DEFAULT_ALLOWED_ORIGINS,
    authToken: process.env.BATCHKEEPER_CODEC_AUTH_TOKEN || undefined,
    namespaces: list(process.env.BATCHKEEPER_CODEC_NAMESPACES),
  });
  console.log(`[batchkeeper] codec server on ${server.url} (active key ${keys.active.id}, ${keys.byId.size} key(s)); ` +
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
