/**
 * Static checks of docker-compose.yml (there is no Docker engine on our machines): services, wiring, ports, the
 * worker's addresses and environment, the search attributes the init service registers, the codec server, health
 * checks, the Temporal server's config files (shared with `npm run cluster`, which test/cluster/ runs live), and the
 * worker image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { VARIABLES, WORKER_CONFIG_GROUPS } from '../config/variables';
import { ALL_SEARCH_ATTRIBUTES, searchAttributeFlags } from '../domain/search-attributes';
import { memberEnv, sharedServerEnv, type Member } from '../tools/cluster/topology';

const root = path.resolve(__dirname, '..');
const composePath = path.join(root, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: (string | number | { target: number; published?: number | string; host_ip?: string; protocol?: string })[];
  healthcheck?: { test?: string | string[] };
}
interface Compose { services: Record<string, Service & { configs?: { source: string; target: string }[]; restart?: string }>; configs?: Record<string, { file?: string }> }

const compose = parse(readFileSync(composePath, 'utf8')) as Compose;
const services = compose.services;

/** Compose-style interpolation (variables unset unless given): ${X:-default} → default, ${X:?err} → '', $$ → $. */
function interpolate(s: string, vars: Record<string, string> = {}): string {
  return s
    .replace(/\$\$/g, '\u0000')
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}/g, (_m, name: string, kind?: string, def?: string) =>
      vars[name] ?? (kind === '-' ? def ?? '' : ''))
    .replace(/\u0000/g, '$');
}

function env(service: Service): Record<string, string> {
  const out: Record<string, string> = {};
  const e = service.environment ?? {};
  if (Array.isArray(e)) {
    for (const kv of e) {
      const i = kv.indexOf('=');
      out[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : interpolate(kv.slice(i + 1));
    }
  } else {
    for (const [k, v] of Object.entries(e)) out[k] = v === null ? '' : interpolate(String(v));
  }
  return out;
}

function rawEnv(service: Service, name: string): string | undefined {
  const e = service.environment ?? {};
  if (Array.isArray(e)) return e.find((kv) => kv.startsWith(`${name}=`))?.slice(name.length + 1);
  const v = e[name];
  return v === undefined || v === null ? undefined : String(v);
}

function script(service: Service): string {
  const parts = [service.entrypoint, service.command].flatMap((p) => (p === undefined ? [] : Array.isArray(p) ? p : [p]));
  return interpolate(parts.join('\n'));
}

function dependsOn(service: Service): Record<string, string | undefined> {
  const d = service.depends_on ?? [];
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, undefined]));
  return Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v?.condition]));
}

interface PortMapping { hostIp: string; published?: number; target: number; protocol: string }

function ports(service: Service, vars: Record<string, string> = {}): PortMapping[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p === 'object') {
      return { hostIp: p.host_ip ?? '0.0.0.0', published: p.published === undefined ? undefined : Number(interpolate(String(p.published), vars)), target: p.target, protocol: p.protocol ?? 'tcp' };
    }
    let [spec, protocol = 'tcp'] = interpolate(String(p), vars).split('/') as [string, string?];
    const parts = spec.split(':');
    if (parts.length === 1) return { hostIp: '0.0.0.0', target: Number(parts[0]), protocol };
    if (parts.length === 2) return { hostIp: '0.0.0.0', published: Number(parts[0]), target: Number(parts[1]), protocol };
    return { hostIp: parts[0]!, published: Number(parts[1]), target: Number(parts[2]), protocol };
  });
}

function serviceByImage(prefix: string): [string, Service][] {
  return Object.entries(services).filter(([, s]) => (s.image ?? '').startsWith(prefix));
}

function temporalService(): string {
  const found = serviceByImage('temporalio/server').concat(serviceByImage('temporalio/auto-setup'));
  assert.equal(found.length, 1, 'exactly one Temporal server service (temporalio/server or temporalio/auto-setup)');
  return found[0]![0];
}

function initService(): [string, Service] {
  const found = Object.entries(services).filter(([, s]) => /search-attribute create/.test(script(s)));
  assert.equal(found.length, 1, 'exactly one service registers search attributes');
  return found[0]!;
}

function parseHostPort(address: string): { host: string; port: number } {
  const m = /^([^:/]+):(\d+)$/.exec(address);
  assert.ok(m, `host:port expected, got ${address}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** The container port the Temporal frontend listens on: its published target, or its healthcheck port. */
function temporalContainerPort(name: string): number {
  const s = services[name]!;
  const targets = ports(s).map((p) => p.target);
  if (targets.length) return targets.includes(7233) ? 7233 : targets[0]!;
  const hc = [s.healthcheck?.test ?? []].flat().join(' ');
  return Number(/(\d{4,5})/.exec(hc)?.[1] ?? 7233);
}

test('required services exist', () => {
  for (const name of ['postgresql', 'temporal-ui', 'codec-server', 'worker']) assert.ok(services[name], `service ${name}`);
  temporalService();
  initService();
  const [pgName, pg] = serviceByImage('postgres:')[0] ?? [];
  assert.equal(pgName, 'postgresql');
  assert.match(pg!.image!, /^postgres:16/);
  assert.match([pg!.healthcheck?.test ?? []].flat().join(' '), /pg_isready/, 'postgresql has a pg_isready healthcheck');
  assert.match(services['temporal-ui']!.image ?? '', /^temporalio\/ui:/);
});

test('every depends_on target exists, and start order is gated on health / completion', () => {
  for (const [name, s] of Object.entries(services)) {
    for (const [dep, condition] of Object.entries(dependsOn(s))) {
      assert.ok(services[dep], `${name} depends on missing service ${dep}`);
      if (condition !== undefined) {
        assert.ok(['service_started', 'service_healthy', 'service_completed_successfully'].includes(condition), `${name} → ${dep}: ${condition}`);
      }
      if (condition === 'service_healthy') assert.ok(services[dep]!.healthcheck, `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
    }
  }
  const temporal = temporalService();
  const workerDeps = dependsOn(services.worker!);
  assert.ok(workerDeps[temporal] === 'service_healthy' || Object.keys(workerDeps).some((d) => dependsOn(services[d]!)[temporal] === 'service_healthy'),
    'worker waits (directly or through the init service) for a healthy Temporal');
  assert.equal(workerDeps[initService()[0]], 'service_completed_successfully', 'worker starts after search attributes are registered');
  assert.equal(workerDeps.postgresql, 'service_healthy', 'worker waits for a healthy PostgreSQL');
  // Temporal itself must not start before its schema exists (admin-tools one-shot, or auto-setup doing it itself).
  if ((services[temporal]!.image ?? '').startsWith('temporalio/server')) {
    const schemaDeps = Object.entries(dependsOn(services[temporal]!)).filter(([d, c]) => c === 'service_completed_successfully' && /temporal-sql-tool/.test(script(services[d]!)));
    assert.equal(schemaDeps.length, 1, 'temporal waits for a schema-setup one-shot (temporal-sql-tool)');
    const [schemaSvc] = schemaDeps[0]!;
    assert.equal(dependsOn(services[schemaSvc]!).postgresql, 'service_healthy');
    for (const db of ['temporal', 'temporal_visibility']) assert.match(script(services[schemaSvc]!), new RegExp(`update-schema -d /etc/temporal/schema/postgresql/v12/${db === 'temporal' ? 'temporal' : 'visibility'}/versioned`));
  }
});

test('published host ports do not collide', () => {
  const seen = new Map<string, string>();
  for (const [name, s] of Object.entries(services)) {
    for (const p of ports(s)) {
      if (p.published === undefined) continue;
      assert.ok(Number.isInteger(p.published) && p.published > 0 && p.published < 65536, `${name}: bad port ${p.published}`);
      // 0.0.0.0 binds every interface, so it collides with any host_ip on the same port.
      for (const [key, other] of seen) {
        const [ip, port, proto] = key.split('|');
        if (Number(port) === p.published && proto === p.protocol && (ip === p.hostIp || ip === '0.0.0.0' || p.hostIp === '0.0.0.0')) {
          assert.fail(`host port ${p.published}/${p.protocol} published by both ${other} and ${name}`);
        }
      }
      seen.set(`${p.hostIp}|${p.published}|${p.protocol}`, name);
    }
  }
  assert.ok(seen.size >= 2, 'at least Temporal gRPC and the UI are published');
  const ui = ports(services['temporal-ui']!);
  assert.ok(ui.some((p) => p.published === 8080 && p.target === 8080), 'UI on 8080');
});

test("worker's TEMPORAL_ADDRESS points at the temporal service and its container port", () => {
  const temporal = temporalService();
  const e = env(services.worker!);
  const { host, port } = parseHostPort(e.TEMPORAL_ADDRESS ?? '');
  assert.equal(host, temporal);
  assert.equal(port, temporalContainerPort(temporal));
  assert.equal(e.TEMPORAL_NAMESPACE, 'default');
  assert.equal(e.BATCHKEEPER_TASK_QUEUE, 'batchkeeper');
});

test("the UI's TEMPORAL_ADDRESS points at temporal", () => {
  const temporal = temporalService();
  const { host, port } = parseHostPort(env(services['temporal-ui']!).TEMPORAL_ADDRESS ?? '');
  assert.equal(host, temporal);
  assert.equal(port, temporalContainerPort(temporal));
});

test("worker's DATABASE_URL targets the postgres service with a role/database that is created there, separate from Temporal's", () => {
  const url = new URL(env(services.worker!).DATABASE_URL ?? '');
  assert.match(url.protocol, /^postgres(ql)?:$/);
  assert.equal(url.hostname, 'postgresql');
  assert.equal(Number(url.port || 5432), 5432);
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const db = decodeURIComponent(url.pathname.slice(1));
  assert.ok(user && password && db, 'user, password and database are all set');
  assert.ok(!['temporal', 'temporal_visibility', 'postgres'].includes(db), `app database must be separate from Temporal's, got ${db}`);

  const pgEnv = env(services.postgresql!);
  if (pgEnv.POSTGRES_USER === user && (pgEnv.POSTGRES_DB ?? user) === db) {
    assert.equal(pgEnv.POSTGRES_PASSWORD, password, 'password matches POSTGRES_PASSWORD');
    return;
  }
  // Otherwise a one-shot against the postgres service must create that role and database.
  const creators = Object.entries(services).filter(([, s]) => new RegExp(`CREATE DATABASE ${db}\\b`).test(script(s)));
  assert.equal(creators.length, 1, `one service creates database ${db}`);
  const [creatorName, creator] = creators[0]!;
  const sql = script(creator);
  assert.match(sql, new RegExp(`CREATE ROLE ${user}\\b[^\\n]*LOGIN`), `creates login role ${user}`);
  assert.match(sql, new RegExp(`CREATE DATABASE ${db} OWNER ${user}\\b`), `${db} is owned by ${user}`);
  assert.match(sql, new RegExp(`ALTER ROLE ${user} LOGIN PASSWORD`), `sets ${user}'s password`);
  const ce = env(creator);
  assert.equal(ce.PGHOST, 'postgresql', `${creatorName} talks to the postgres service`);
  assert.equal(ce.PGPASSWORD, pgEnv.POSTGRES_PASSWORD, `${creatorName} logs in as the postgres superuser`);
  assert.equal(ce.PGUSER, pgEnv.POSTGRES_USER);
  // The password it sets comes from the same variable (and default) as the worker's URL.
  const pwVar = /app_password="\$([A-Z_]+)"/.exec(sql)?.[1];
  assert.ok(pwVar, 'password passed to psql from an environment variable');
  assert.equal(ce[pwVar], password, `${pwVar} matches the password in DATABASE_URL`);
  assert.equal(rawEnv(creator, pwVar)?.match(/\$\{(\w+)/)?.[1], /:\$\{(\w+)/.exec(rawEnv(services.worker!, 'DATABASE_URL') ?? '')?.[1],
    'worker URL and init read the password from the same variable');
  assert.equal(dependsOn(services.worker!)[creatorName], 'service_completed_successfully', `worker waits for ${creatorName}`);
});

test('the init service registers every search attribute in domain/search-attributes.ts with the right type', () => {
  const [name, init] = initService();
  const sh = script(init);
  const registered = new Map<string, string>();
  for (const m of sh.matchAll(/search-attribute create\b([^\n]*)/g)) {
    const args = m[1]!;
    const names = [...args.matchAll(/--name[ =]"?([A-Za-z0-9_]+)"?/g)].map((x) => x[1]!);
    const types = [...args.matchAll(/--type[ =]"?([A-Za-z]+)"?/g)].map((x) => x[1]!);
    assert.equal(names.length, types.length, `${name}: --name/--type pairs in: ${args}`);
    names.forEach((n, i) => registered.set(n, types[i]!));
  }
  const expected = searchAttributeFlags().map((f) => f.split('=') as [string, string]);
  assert.equal(expected.length, ALL_SEARCH_ATTRIBUTES.length);
  for (const [saName, saType] of expected) {
    assert.equal(registered.get(saName), saType, `${saName} registered as ${saType}`);
  }
  assert.equal(env(init).TEMPORAL_ADDRESS?.split(':')[0], temporalService(), 'init talks to the temporal service');
  assert.equal(dependsOn(init)[temporalService()], 'service_healthy');
});

test('worker image: Dockerfile in the build context, Debian-based node 20 (not Alpine), runs the packaged worker', () => {
  const w = services.worker!;
  assert.ok(w.build, 'worker is built from this repository');
  const build = typeof w.build === 'string' ? { context: w.build } : w.build;
  const context = path.resolve(root, build.context ?? '.');
  const dockerfile = path.join(context, build.dockerfile ?? 'Dockerfile');
  assert.ok(existsSync(dockerfile), `${dockerfile} exists`);
  const text = readFileSync(dockerfile, 'utf8');
  const froms = [...text.matchAll(/^\s*FROM\s+(\S+)/gim)].map((m) => m[1]!);
  assert.ok(froms.length > 0, 'has a FROM');
  for (const f of froms) assert.doesNotMatch(f, /alpine/i, `${f}: Temporal's core-bridge has no musl build`);
  assert.match(froms[froms.length - 1]!, /^node:20[.-]/, 'final stage is node 20');
  assert.match(text, /^\s*RUN\s+npm ci\b/m, 'installs with npm ci');
  assert.match(text, /^\s*RUN\s+npm pack\b/m, 'builds the package as apps get it');
  const cmd = /^\s*CMD\s+(.+)$/m.exec(text)?.[1] ?? '';
  assert.match(cmd, /"node", "dist\/worker\/main\.js"/, 'image CMD runs the built stock worker with plain node');
  assert.doesNotMatch(text, /\btsx\b/, 'no TypeScript runner in the image');
  if (w.command !== undefined) assert.match(script(w), /dist\/worker\/main\.js/, 'compose command runs the built worker');

  const ignore = readFileSync(path.join(context, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const entry of ['node_modules', 'dist', '.data', '.cache', 'test-output']) assert.ok(ignore.includes(entry), `.dockerignore lists ${entry}`);
});

/** Set by compose to a fixed value rather than passed through (with the value each must have). */
const WORKER_FIXED: Record<string, string> = { BATCHKEEPER_TASK_QUEUE: 'batchkeeper', BATCHKEEPER_INSTALL_SCHEDULES: '1' };
/** Passed through from the host with a default of compose's own (the value each defaults to). */
const WORKER_DEFAULTED: Record<string, string> = { BATCHKEEPER_METRICS_ADDRESS: '0.0.0.0:9464' };

/**
 * Every variable the stock worker reads: those config/variables.ts declares for the groups worker/main.ts loads,
 * except DATABASE_URL and the Temporal address and namespace, which compose sets to its own services.
 */
function workerVariables(): string[] {
  const groups = new Set<string>(WORKER_CONFIG_GROUPS);
  return Object.entries(VARIABLES).filter(([, spec]) => groups.has(spec.group)).map(([name]) => name)
    .filter((name) => !['DATABASE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY'].includes(name)).sort();
}

test('the worker gets every variable the stock worker reads: provider keys and base URLs, prices, encryption, tuning', () => {
  const worker = services.worker!;
  const names = workerVariables();
  for (const key of ['OPENAI_API_KEY', 'ANTHROPIC_BASE_URL', 'GEMINI_API_KEY', 'XAI_BASE_URL', 'BATCHKEEPER_OPENAI_COMPATIBLE',
    'BATCHKEEPER_PRICES', 'BATCHKEEPER_CODEC_KEYS', 'BATCHKEEPER_INSTALL_SCHEDULES', 'BATCHKEEPER_MAX_CACHED_WORKFLOWS']) {
    assert.ok(names.includes(key), `the source scan finds ${key}`);
  }
  for (const name of names) {
    const raw = rawEnv(worker, name);
    assert.ok(raw !== undefined, `worker environment lacks ${name}`);
    if (WORKER_FIXED[name] !== undefined) assert.equal(env(worker)[name], WORKER_FIXED[name], `${name} is ${WORKER_FIXED[name]}`);
    else if (name === 'BATCHKEEPER_CODEC_KEYS') assert.match(raw, /^\$\{BATCHKEEPER_CODEC_KEYS:\?/, 'the codec keys are required');
    else if (WORKER_DEFAULTED[name] !== undefined) assert.equal(raw, `\${${name}:-${WORKER_DEFAULTED[name]}}`, `${name} defaults to ${WORKER_DEFAULTED[name]}`);
    else assert.equal(raw, `\${${name}:-}`, `${name} is passed through from the host, empty when unset`);
  }
});

test("the worker's Prometheus endpoint listens in its container on the port compose publishes on loopback", () => {
  const worker = services.worker!;
  const address = interpolate(rawEnv(worker, 'BATCHKEEPER_METRICS_ADDRESS')!, {});
  const [host, port] = address.split(':');
  assert.equal(host, '0.0.0.0', 'reachable from outside the container (the publish below keeps it on the host\'s loopback)');
  const published = ports(worker).find((mapping) => mapping.target === Number(port));
  assert.ok(published, `the worker publishes its metrics port ${port}`);
  assert.equal(published.hostIp, '127.0.0.1');
});

test('every published port is bound to 127.0.0.1 unless BATCHKEEPER_PUBLISH_IP names another interface', () => {
  for (const [name, service] of Object.entries(services)) {
    for (const [index, mapping] of ports(service).entries()) {
      assert.equal(mapping.hostIp, '127.0.0.1', `${name}: port ${mapping.target} published on ${mapping.hostIp}`);
      assert.equal(ports(service, { BATCHKEEPER_PUBLISH_IP: '10.0.0.5' })[index]!.hostIp, '10.0.0.5', `${name}: BATCHKEEPER_PUBLISH_IP moves port ${mapping.target}`);
    }
  }
  assert.ok(ports(services[temporalService()]!).some((p) => p.target === 7233), 'Temporal gRPC is published (on loopback)');
});

test('every long-running service has a health check', () => {
  for (const [name, service] of Object.entries(services)) {
    const oneShot = /^on-failure/.test(service.restart ?? '');
    if (!oneShot) assert.ok(service.healthcheck?.test, `${name} runs on (restart ${service.restart ?? 'no'}) but has no healthcheck`);
  }
});

test('the codec server decodes for Temporal Web: same keys as the worker, loopback port, the UI points the browser at it', () => {
  const codec = services['codec-server'];
  assert.ok(codec, 'a codec-server service');
  assert.deepEqual(codec.command, ['node', 'dist/bin/codec-server.js']);
  assert.equal(codec.image, services.worker!.image, 'same image as the worker');
  assert.equal(rawEnv(codec, 'BATCHKEEPER_CODEC_KEYS'), rawEnv(services.worker!, 'BATCHKEEPER_CODEC_KEYS'), 'same keys as the worker');
  const codecEnv = env(codec);
  assert.equal(codecEnv.BATCHKEEPER_CODEC_HOST, '0.0.0.0', 'listens on the container network (published on loopback only)');
  const [published] = ports(codec);
  assert.equal(published?.target, Number(codecEnv.BATCHKEEPER_CODEC_PORT), 'publishes the port it listens on');
  // The UI hands the endpoint to the browser, which reaches the codec server through its published port.
  const endpoint = new URL(env(services['temporal-ui']!).TEMPORAL_CODEC_ENDPOINT ?? '');
  assert.ok(['localhost', '127.0.0.1'].includes(endpoint.hostname), `TEMPORAL_CODEC_ENDPOINT ${endpoint} is the host's address`);
  assert.equal(Number(endpoint.port), published?.published, 'TEMPORAL_CODEC_ENDPOINT names the published codec port');
  const uiPort = ports(services['temporal-ui']!).find((p) => p.target === 8080)?.published;
  const origins = (codecEnv.BATCHKEEPER_CODEC_CORS_ORIGINS ?? '').split(',');
  assert.ok(origins.includes(`http://localhost:${uiPort}`), `the codec server answers CORS for the UI's origin (${origins.join(', ')})`);
  assert.match([codec.healthcheck?.test ?? []].flat().join(' '), new RegExp(`:${codecEnv.BATCHKEEPER_CODEC_PORT}/health`), 'health check on /health');
});

/** `env "NAME"` references of a Go-template config (sprig); required: neither defaulted nor guarded by `if env`. */
function templateVariables(text: string): { all: Set<string>; required: Set<string> } {
  const names = (pattern: RegExp) => new Set([...text.matchAll(pattern)].map((m) => m[1]!));
  const all = names(/env "([A-Z0-9_]+)"/g);
  const optional = new Set([...names(/default "[^"]*" \(env "([A-Z0-9_]+)"\)/g), ...names(/\bif env "([A-Z0-9_]+)"/g)]);
  return { all, required: new Set([...all].filter((name) => !optional.has(name))) };
}

/** Read by the server binary itself rather than by the config template. */
const SERVER_BINARY_VARIABLES = ['TEMPORAL_SERVER_CONFIG_FILE_PATH', 'TEMPORAL_ALLOW_NO_AUTH', 'TEMPORAL_VERSION_CHECK_DISABLED'];

test('the Temporal server runs deploy/temporal/config.yaml and dynamicconfig.yaml, configured by the variables that template reads', () => {
  const name = temporalService();
  const temporal = services[name]!;
  const e = env(temporal);
  const mounted = new Map((temporal.configs ?? []).map((c) => [c.target, compose.configs?.[c.source]?.file]));
  assert.equal(mounted.get(e.TEMPORAL_SERVER_CONFIG_FILE_PATH ?? ''), './deploy/temporal/config.yaml', 'server config file mounted where TEMPORAL_SERVER_CONFIG_FILE_PATH points');
  assert.equal(mounted.get(e.DYNAMIC_CONFIG_FILE_PATH ?? ''), './deploy/temporal/dynamicconfig.yaml', 'dynamic config mounted where DYNAMIC_CONFIG_FILE_PATH points');
  const template = readFileSync(path.join(root, 'deploy', 'temporal', 'config.yaml'), 'utf8');
  assert.match(template.slice(0, 1024), /^# enable-template/m, 'the server renders the file as a template');
  const { all, required } = templateVariables(template);
  for (const variable of required) assert.ok(e[variable], `compose sets ${variable}, which the template reads without a default`);
  for (const variable of Object.keys(e)) {
    assert.ok(all.has(variable) || SERVER_BINARY_VARIABLES.includes(variable), `compose sets ${variable}, which neither the template nor the server reads`);
  }
  assert.equal(e.DB, 'postgres12');

  // The native cluster (tools/cluster/topology.ts) configures its processes through the same names.
  const member = (service: Member['service']): Member => ({ name: service, service, grpcPort: 1, membershipPort: 2, httpPort: 3 });
  const endpoint = { host: '127.0.0.1', port: 5432, user: 'u', password: 'p' };
  const native = {
    ...sharedServerEnv({ endpoint, databases: { temporal: 't', visibility: 'v' }, numHistoryShards: 4, logLevel: 'warn', maxConnsPerProcess: 10 }, member('frontend')),
    ...memberEnv(member('history')), ...memberEnv(member('matching')), ...memberEnv(member('worker')),
  };
  for (const variable of Object.keys(native)) assert.ok(all.has(variable), `the native cluster sets ${variable}, which the template does not read`);
  for (const variable of required) assert.ok(native[variable as keyof typeof native], `the native cluster sets ${variable}`);
});

test('no dev-only dynamic config: the flag upstream says must never be on in production is absent', () => {
  const dynamic = parse(readFileSync(path.join(root, 'deploy', 'temporal', 'dynamicconfig.yaml'), 'utf8')) as Record<string, { value: unknown }[]>;
  assert.ok(!('system.forceSearchAttributesCacheRefreshOnRead' in dynamic), 'system.forceSearchAttributesCacheRefreshOnRead is for tests only');
  assert.equal(dynamic['limit.maxIDLength']?.[0]?.value, 255);
  assert.ok(!/content:/.test(readFileSync(composePath, 'utf8')), 'no inline dynamic config in compose: the file is shared with the native cluster');
});

test('the init service waits until a query on every search attribute is accepted', () => {
  const [, init] = initService();
  const waits = /until temporal workflow count[^\n]*--query "([^"]+)"/.exec(script(init));
  assert.ok(waits, 'a retry loop around temporal workflow count');
  for (const key of ALL_SEARCH_ATTRIBUTES) assert.match(waits[1]!, new RegExp(`\\b${key.name}\\b`), `the query uses ${key.name}`);
});
