/**
 * The codec server Temporal Web (and `temporal workflow show --codec-endpoint`) calls to show encrypted payloads to
 * operators: `POST /decode` and `POST /encode` with `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`,
 * CORS for the UI's origin (headers x-namespace, content-type, authorization). Point the UI at it with
 * `temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888` or TEMPORAL_CODEC_ENDPOINT for the UI image.
 *
 * Who may read: with `authToken` set, requests must carry `Authorization: Bearer <token>` (the UI forwards the
 * user's access token with TEMPORAL_CODEC_PASS_ACCESS_TOKEN); with `namespaces` set, only those namespaces are
 * served. Bind it to a private address: anyone who can call /decode reads the payloads.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Default 0 (a free port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Origins allowed by CORS, e.g. ['http://localhost:8233']; '*' allows any (without credentials). */
  allowedOrigins?: readonly string[];
  /** When set, every /encode and /decode call needs `Authorization: Bearer <authToken>`. */
  authToken?: string;
  /** When set, only these namespaces (the x-namespace header) are served. */
  namespaces?: readonly string[];
  /** Largest request body accepted. Default 16 MiB. */
  maxBodyBytes?: number;
}

export interface CodecServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Origins of Temporal Web on its usual ports (dev server 8233, compose UI 8080). */
export const DEFAULT_ALLOWED_ORIGINS = ['http://localhost:8233', 'http://127.0.0.1:8233', 'http://localhost:8080', 'http://127.0.0.1:8080'];

const ALLOWED_HEADERS = 'x-namespace, content-type, authorization';

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  const server = createServer((req, res) => {
    handle(req, res, options).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 400;
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent) send(res, status, { error: message });
      else res.destroy();
    });
  });
  await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, options: CodecServerOptions): Promise<void> {
  applyCors(req, res, options.allowedOrigins ?? DEFAULT_ALLOWED_ORIGINS);
  const path = new URL(req.url ?? '/', 'http://codec.invalid').pathname.replace(/\/+$/, '');
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { 'access-control-max-age': '600' });
    res.end();
    return;
  }
  if (req.method === 'GET' && (path === '' || path === '/health')) {
    send(res, 200, { ok: true });
    return;
  }
  const operation = path === '/encode' ? 'encode' : path === '/decode' ? 'decode' : undefined;
  if (!operation) throw new HttpError(404, `no route ${req.method} ${path || '/'}: use POST /encode or POST /decode`);
  if (req.method !== 'POST') throw new HttpError(405, `${path} takes POST`);
  authorise(req, options);
  const body = await readJson(req, options.maxBodyBytes ?? 16 * 1024 * 1024);
  const payloads = parsePayloads(body);
  const out = operation === 'encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
  send(res, 200, { payloads: out.map(payloadToJson) });
}

function applyCors(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): void {
  const origin = req.headers.origin;
  if (!origin) return;
  if (allowed.includes(origin)) {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('vary', 'Origin');
  } else if (allowed.includes('*')) {
    res.setHeader('access-control-allow-origin', '*');
  } else {
    return; // no CORS headers: the browser refuses the response
  }
  res.setHeader('access-control-allow-methods', 'POST, OPTIONS');
  res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
}

function authorise(req: IncomingMessage, options: CodecServerOptions): void {
  if (options.authToken) {
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() ?? '';
    const a = Buffer.from(presented);
    const b = Buffer.from(options.authToken);
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw new HttpError(401, 'missing or wrong bearer token');
  }
  if (options.namespaces) {
    const namespace = req.headers['x-namespace'];
    if (typeof namespace !== 'string' || !options.namespaces.includes(namespace)) {
      throw new HttpError(403, `namespace ${JSON.stringify(namespace ?? null)} is not served by this codec server`);
    }
  }
}

async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
}

/** Proto-JSON payloads (bytes as base64) to Payload objects. */
function parsePayloads(body: unknown): Payload[] {
  const list = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) throw new HttpError(400, 'body must be {"payloads": [...]}');
  return list.map((item, index) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new HttpError(400, `payloads[${index}] must be an object`);
    const { metadata, data } = item as { metadata?: unknown; data?: unknown };
    if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Object.values(metadata).some((v) => typeof v !== 'string'))) {
      throw new HttpError(400, `payloads[${index}].metadata must map names to base64 strings`);
    }
    if (data !== undefined && typeof data !== 'string') throw new HttpError(400, `payloads[${index}].data must be a base64 string`);
    return temporal.api.common.v1.Payload.fromObject(item);
  });
}

function payloadToJson(payload: Payload): Record<string, unknown> {
  return temporal.api.common.v1.Payload.toObject(temporal.api.common.v1.Payload.fromObject(payload), { bytes: String });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) });
  res.end(data);
}
