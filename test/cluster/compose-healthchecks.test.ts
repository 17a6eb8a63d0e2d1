/**
 * docker-compose.yml's health checks for our own services, run as written against live services here (compose
 * itself cannot run on these machines): the worker's passes only while a worker of this host polls its task queue,
 * the codec server's only while it answers /health.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { AesGcmPayloadCodec } from '../../codec/aes-gcm-codec';
import { startCodecServer } from '../../codec/codec-server';
import { newCodecKeyEntry, parseCodecKeys } from '../../codec/keys';
import { clusterAddress, freshNamespace } from '../support/cluster';
import { createTestEnvironment } from '../support/environment';

const ROOT = path.resolve(__dirname, '..', '..');
const services = (parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { healthcheck?: { test?: string[] } }> }).services;

/** Runs a `["CMD", ...]` health check as the container would, here; resolves to its exit code. */
function runHealthcheck(service: string, env: Record<string, string>, rewrite: (arg: string) => string = (arg) => arg): Promise<number | null> {
  const [form, command, ...args] = services[service]?.healthcheck?.test ?? [];
  assert.equal(form, 'CMD', `${service}: exec-form health check`);
  assert.equal(command, 'node', `${service}: checked with node, which the image has`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args.map(rewrite), { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}

test("the worker's health check passes while this host's worker polls its task queue, and fails before", async () => {
  const namespace = await freshNamespace('bk-healthcheck');
  const env = await createTestEnvironment({ namespace, startWorker: false });
  try {
    const checkEnv = { TEMPORAL_ADDRESS: clusterAddress(), TEMPORAL_NAMESPACE: namespace, BATCHKEEPER_TASK_QUEUE: env.taskQueue };
    assert.equal(await runHealthcheck('worker', checkEnv), 1, 'unhealthy: nobody polls the task queue');
    await env.startWorker();
    let code: number | null = null;
    // The frontend lists a poller once its first long poll reached a matching host.
    for (let attempt = 0; attempt < 20 && code !== 0; attempt += 1) {
      code = await runHealthcheck('worker', checkEnv);
      if (code !== 0) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.equal(code, 0, 'healthy: the worker of this host polls');
  } finally {
    await env.teardown();
  }
});

test("the codec server's health check passes against a running codec server", async () => {
  const server = await startCodecServer({ codec: new AesGcmPayloadCodec(parseCodecKeys(newCodecKeyEntry('hc'))), port: 0 });
  const port = new URL(server.url).port;
  // The compose check names the container port; here the server listens on a free one.
  const onThisPort = (arg: string) => arg.replace(':8888/', `:${port}/`);
  try {
    assert.equal(await runHealthcheck('codec-server', {}, onThisPort), 0);
  } finally {
    await server.close();
  }
  assert.equal(await runHealthcheck('codec-server', {}, onThisPort), 1, 'unhealthy once it is gone');
});
