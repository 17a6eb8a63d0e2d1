/**
 * Runs `temporal server start-dev` as a child process: a real single-process Temporal server (SQLite persistence,
 * advanced visibility, optional UI) for `npm start`, tests and chaos tests (restart on the same port and db file).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';

export interface DevServerOptions {
  /** Temporal CLI binary (see resolveTemporalCli). */
  binaryPath: string;
  /** SQLite file to persist state across restarts. Default: in-memory (state is lost on stop/restart). */
  dbFile?: string;
  /** gRPC port. Default: a free port. */
  port?: number;
  /** UI port; `false` runs headless. Default: port + 1000. */
  uiPort?: number | false;
  /** Default 'default'. */
  namespace?: string;
  /** `Name=Type` pairs, e.g. searchAttributeFlags() from common/search-attributes.ts. */
  searchAttributes?: string[];
  /** Appended to the command line, e.g. ['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=40']. */
  extraArgs?: string[];
  /** Server stdout/stderr are appended here (besides an in-memory tail used in error messages). */
  logFile?: string;
  /** Codec server URL for the UI (--ui-codec-endpoint). */
  codecEndpoint?: string;
  /** Readiness budget per start. Default 60 s. */
  startTimeoutMs?: number;
}

export interface DevServer {
  /** '127.0.0.1:PORT' */
  readonly address: string;
  /** 'http://127.0.0.1:UIPORT' unless headless. */
  readonly uiUrl?: string;
  readonly port: number;
  readonly uiPort?: number;
  readonly namespace: string;
  readonly dbFile?: string;
  /** pid of the current server process (changes on restart). */
  readonly pid: number;
  /** SIGTERM, then SIGKILL after 10 s. Idempotent. `{signal: 'SIGKILL'}` simulates a crash. */
  stop(opts?: StopOptions): Promise<void>;
  /** Stop, then start again on the same ports and db file (an in-memory server comes back empty). */
  restart(opts?: StopOptions): Promise<void>;
  /** Last lines of server output. */
  logTail(lines?: number): string;
}

export interface StopOptions {
  /** Default 'SIGTERM' (graceful, SIGKILL after 10 s). 'SIGKILL' = crash, for chaos tests. */
  signal?: NodeJS.Signals;
}

const LOG_TAIL_LINES = 200;
const STOP_GRACE_MS = 10_000;

export function devServerArgs(o: {
  port: number; uiPort?: number; namespace: string; dbFile?: string; searchAttributes?: string[];
  codecEndpoint?: string; extraArgs?: string[];
}): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(o.port)];
  if (o.uiPort !== undefined) args.push('--ui-port', String(o.uiPort));
  else args.push('--headless');
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  args.push('--namespace', o.namespace, '--log-level', 'warn');
  for (const kv of [
    'frontend.enableUpdateWorkflowExecution=true',
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
    // Offline machines: don't call home for the version check (the SDK's own test server does the same).
    'frontend.enableServerVersionCheck=false',
  ]) args.push('--dynamic-config-value', kv);
  for (const sa of o.searchAttributes ?? []) args.push('--search-attribute', sa);
  if (o.codecEndpoint) args.push('--ui-codec-endpoint', o.codecEndpoint);
  args.push(...(o.extraArgs ?? []));
  return args;
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const namespace = opts.namespace ?? 'default';
  const dbFile = opts.dbFile ? path.resolve(opts.dbFile) : undefined;
  if (dbFile) await fs.mkdir(path.dirname(dbFile), { recursive: true });
  const logTail: string[] = [];
  let logStream: WriteStream | undefined;
  if (opts.logFile) {
    await fs.mkdir(path.dirname(path.resolve(opts.logFile)), { recursive: true });
    logStream = createWriteStream(opts.logFile, { flags: 'a' });
  }
  const record = (text: string) => {
    if (logStream && !logStream.writableEnded) logStream.write(text);
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      logTail.push(line);
      if (logTail.length > LOG_TAIL_LINES) logTail.shift();
    }
  };
  const tail = (n = 40) => logTail.slice(-n).join('\n');

  const autoPort = opts.port === undefined;
  let port = opts.port ?? 0;
  let uiPort: number | undefined;
  let child: ChildProcess | undefined;

  const choosePorts = async () => {
    if (autoPort) {
      const picked = await freePortPair(opts.uiPort === undefined);
      port = picked;
    }
    uiPort = opts.uiPort === false ? undefined : opts.uiPort ?? port + 1000;
  };

  const launch = async (): Promise<void> => {
    const args = devServerArgs({ port, uiPort, namespace, dbFile, searchAttributes: opts.searchAttributes,
      codecEndpoint: opts.codecEndpoint, extraArgs: opts.extraArgs });
    record(`\n=== ${new Date().toISOString()} ${opts.binaryPath} ${args.join(' ')}\n`);
    const proc = spawn(opts.binaryPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout!.on('data', (b: Buffer) => record(b.toString('utf8')));
    proc.stderr!.on('data', (b: Buffer) => record(b.toString('utf8')));
    // Don't leave a server running if the parent exits without calling stop().
    const exitHook = () => { try { proc.kill('SIGTERM'); } catch { /* gone */ } };
    process.once('exit', exitHook);
    proc.once('exit', () => process.removeListener('exit', exitHook));
    await waitUntilReady({
      proc, address: `127.0.0.1:${port}`, namespace, searchAttributes: opts.searchAttributes ?? [],
      timeoutMs: opts.startTimeoutMs ?? 60_000, tail, spawnError: spawnErrorOf(proc),
    });
  };

  const start = async (): Promise<void> => {
    // With an auto-picked port, another process may grab it between our probe and the server's bind: retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await launch();
        return;
      } catch (err) {
        await kill();
        const busy = /address already in use|bind: /i.test(tail(20));
        if (autoPort && busy && attempt < 3) {
          await choosePorts();
          continue;
        }
        throw err;
      }
    }
  };

  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const proc = child;
    if (!proc || proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    // 'close' = exited and its stdout/stderr drained (so no output lands after stop()).
    const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } }, STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    await Promise.race([closed, sleep(2000)]);
  };

  try {
    await choosePorts();
    if (!autoPort) await assertPortFree(port, 'port');
    if (uiPort !== undefined && (opts.uiPort !== undefined || !autoPort)) await assertPortFree(uiPort, 'uiPort');
    await start();
  } catch (err) {
    logStream?.end();
    throw err;
  }

  let stopped = false;
  const server: DevServer = {
    get address() { return `127.0.0.1:${port}`; },
    get uiUrl() { return uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`; },
    get port() { return port; },
    get uiPort() { return uiPort; },
    namespace,
    dbFile,
    get pid() { return child?.pid ?? -1; },
    async stop(stopOpts?: StopOptions) {
      stopped = true;
      await kill(stopOpts?.signal);
      if (logStream) {
        const s = logStream;
        logStream = undefined;
        await new Promise<void>((resolve) => s.end(resolve));
      }
    },
    async restart(stopOpts?: StopOptions) {
      if (stopped) throw new Error('dev server was stopped; start a new one instead of restart()');
      await kill(stopOpts?.signal);
      await waitForPortFree(port, 10_000);
      if (uiPort !== undefined) await waitForPortFree(uiPort, 10_000);
      await launch().catch(async (err) => { await kill(); throw err; });
    },
    logTail: (n?: number) => tail(n ?? LOG_TAIL_LINES),
  };
  return server;
}

// ---------------------------------------------------------------------------------------------------------------

interface ReadyParams {
  proc: ChildProcess;
  address: string;
  namespace: string;
  searchAttributes: string[];
  timeoutMs: number;
  tail: (n?: number) => string;
  spawnError: Promise<Error>;
}

/**
 * Ready = the gRPC port accepts TCP, a Connection's getSystemInfo succeeds, the namespace exists and every requested
 * search attribute is registered (start-dev registers them after the frontend is up).
 */
async function waitUntilReady(p: ReadyParams): Promise<void> {
  const started = Date.now();
  const deadline = started + p.timeoutMs;
  const [host, portStr] = p.address.split(':') as [string, string];
  let lastError = 'not started';
  let exited: string | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => { exited = `exited with ${code ?? signal}`; };
  p.proc.once('exit', onExit);
  let spawnFailure: Error | undefined;
  void p.spawnError.then((e) => { spawnFailure = e; });
  const wanted = p.searchAttributes.map((s) => s.split('=')[0]!);

  const fail = (why: string) => new Error(
    `Temporal dev server at ${p.address} did not become ready: ${why} ` +
    `(after ${((Date.now() - started) / 1000).toFixed(1)}s). Last server output:\n${p.tail(40) || '(none)'}`,
  );

  try {
    while (Date.now() < deadline) {
      if (spawnFailure) throw fail(`could not run the binary: ${spawnFailure.message}`);
      if (exited) throw fail(`the server process ${exited}`);
      if (!(await tcpOpen(host, Number(portStr), 1000))) {
        lastError = 'gRPC port not accepting connections yet';
        await sleep(100);
        continue;
      }
      let connection: Connection | undefined;
      try {
        connection = await Connection.connect({ address: p.address, connectTimeout: 3000 });
        const conn = connection;
        const within = <T>(fn: () => Promise<T>) => conn.withDeadline(Date.now() + 5000, fn);
        await within(() => conn.workflowService.getSystemInfo({}));
        await within(() => conn.workflowService.describeNamespace({ namespace: p.namespace }));
        if (wanted.length) {
          const res = await within(() => conn.operatorService.listSearchAttributes({ namespace: p.namespace }));
          const have = new Set(Object.keys(res.customAttributes ?? {}));
          const missing = wanted.filter((n) => !have.has(n));
          if (missing.length) throw new Error(`search attributes not registered yet: ${missing.join(', ')}`);
        }
        return;
      } catch (err) {
        lastError = (err as Error).message;
        await sleep(200);
      } finally {
        await connection?.close().catch(() => undefined);
      }
    }
    throw fail(`timed out after ${p.timeoutMs / 1000}s; last error: ${lastError}`);
  } finally {
    p.proc.removeListener('exit', onExit);
  }
}

function spawnErrorOf(proc: ChildProcess): Promise<Error> {
  return new Promise((resolve) => proc.once('error', resolve));
}

export function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ host, port });
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Binds port 0 on 127.0.0.1 and returns the port the OS picked. */
export function freePort(): Promise<number> {
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

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port whose +1000 neighbour (the default UI port) is free too, when withUi. */
async function freePortPair(withUi: boolean): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (!withUi) return p;
    if (p + 1000 <= 65535 && (await portFree(p + 1000))) return p;
  }
  throw new Error('could not find a free port pair (port, port+1000) for the Temporal dev server');
}

async function assertPortFree(port: number, what: string): Promise<void> {
  if (!(await portFree(port))) {
    throw new Error(`Temporal dev server ${what} ${port} on 127.0.0.1 is already in use ` +
      '(another dev server still running?). Pick another port or leave it unset for a free one.');
  }
}

export async function waitForPortFree(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portFree(port)) return;
    await sleep(100);
  }
  throw new Error(`port ${port} is still in use ${timeoutMs / 1000}s after stopping the process that had it; cannot restart on it`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
