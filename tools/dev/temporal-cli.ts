/**
 * Finds (or builds once) the Temporal CLI binary whose `server start-dev` is our local Temporal server.
 *
 * Order: $TEMPORAL_CLI_PATH → `temporal` on PATH → <project>/.cache/temporal-cli/<ver>/temporal →
 * per-user cache ${XDG_CACHE_HOME:-~/.cache}/batchkeeper/temporal-cli/<ver>/temporal (copied into the project cache) →
 * `go install github.com/temporalio/cli/cmd/temporal@<ver>` into the project cache (then copied to the per-user cache).
 *
 * Why build: no Temporal server binary is on npm or in Debian, and @temporalio/testing's own download needs
 * temporal.download, which is unreachable on our machines. v1.5.1 is the newest tag `go install pkg@version` accepts
 * (v1.6.0+ use a replace directive). It embeds Temporal Server 1.29.1 and UI 2.42.1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants as fsConstants, createWriteStream, existsSync, unlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

export type TemporalCliSource = 'env' | 'path' | 'cache' | 'built';

export interface ResolveTemporalCliOptions {
  /** Progress lines (cache copies, build progress). Default: written to stderr with a `[temporal-cli]` prefix. */
  onProgress?: (msg: string) => void;
  /** Environment to read TEMPORAL_CLI_PATH, PATH, XDG_CACHE_HOME, HOME from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Project root holding `.cache/`. Default: the directory above tools/. */
  projectRoot?: string;
  /** Give up on a build after this long. Default 30 min. */
  buildTimeoutMs?: number;
}

export interface ResolvedTemporalCli {
  path: string;
  source: TemporalCliSource;
}

const BINARY_NAME = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
const PROGRESS_EVERY_MS = 15_000;
/** A lock older than this is considered abandoned even if its pid is alive (pid reuse). */
const STALE_LOCK_MS = 60 * 60_000;

export function defaultProjectRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** `<project>/.cache/temporal-cli/<ver>/temporal` */
export function projectCachePath(projectRoot = defaultProjectRoot()): string {
  return path.join(projectRoot, '.cache', 'temporal-cli', TEMPORAL_CLI_VERSION, BINARY_NAME);
}

/** `${XDG_CACHE_HOME:-~/.cache}/batchkeeper/temporal-cli/<ver>/temporal` */
export function userCachePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)
    ? env.XDG_CACHE_HOME
    : path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'batchkeeper', 'temporal-cli', TEMPORAL_CLI_VERSION, BINARY_NAME);
}

export async function resolveTemporalCli(opts: ResolveTemporalCliOptions = {}): Promise<ResolvedTemporalCli> {
  const env = opts.env ?? process.env;
  const progress = opts.onProgress ?? ((msg: string) => process.stderr.write(`[temporal-cli] ${msg}\n`));
  const projectRoot = opts.projectRoot ?? defaultProjectRoot();

  // 1. Explicit override.
  const fromEnv = env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    const p = path.resolve(fromEnv);
    if (!existsSync(p)) {
      throw new Error(`TEMPORAL_CLI_PATH is set to ${fromEnv}, but that file does not exist. ` +
        'Point it at a Temporal CLI binary (`temporal`), or unset it to use the one on PATH or the cached/built one.');
    }
    if (!(await isExecutableFile(p))) {
      throw new Error(`TEMPORAL_CLI_PATH is set to ${fromEnv}, but that is not an executable file (chmod +x it?).`);
    }
    return { path: p, source: 'env' };
  }

  // 2. `temporal` on PATH.
  const onPath = await findOnPath(BINARY_NAME, env.PATH ?? '');
  if (onPath) return { path: onPath, source: 'path' };

  // 3. Project cache.
  const projectBin = projectCachePath(projectRoot);
  if (await isExecutableFile(projectBin)) return { path: projectBin, source: 'cache' };

  // 4. Per-user cache → copy into the project cache.
  const userBin = userCachePath(env);
  if (await isExecutableFile(userBin)) {
    progress(`using cached Temporal CLI ${TEMPORAL_CLI_VERSION} from ${userBin}; copying it to ${projectBin}`);
    await installFile(userBin, projectBin);
    return { path: projectBin, source: 'cache' };
  }

  // 5. Build (one process at a time per project cache).
  const versionDir = path.dirname(projectBin);
  await fs.mkdir(versionDir, { recursive: true });
  const lockPath = path.join(versionDir, '.build.lock');
  const release = await acquireLock(lockPath, progress);
  try {
    // Another process may have finished the build (or seeded a cache) while we waited for the lock.
    if (await isExecutableFile(projectBin)) return { path: projectBin, source: 'cache' };
    if (await isExecutableFile(userBin)) {
      await installFile(userBin, projectBin);
      return { path: projectBin, source: 'cache' };
    }
    await buildTemporalCli({ env, versionDir, target: projectBin, progress, timeoutMs: opts.buildTimeoutMs ?? 30 * 60_000 });
  } finally {
    await release();
  }
  try {
    await installFile(projectBin, userBin);
    progress(`also cached at ${userBin} so other clones on this machine skip the build`);
  } catch (err) {
    progress(`note: could not copy the binary to the per-user cache ${userBin}: ${(err as Error).message}`);
  }
  return { path: projectBin, source: 'built' };
}

// ---------------------------------------------------------------------------------------------------------------
// build

interface BuildParams {
  env: NodeJS.ProcessEnv;
  versionDir: string;
  target: string;
  progress: (msg: string) => void;
  timeoutMs: number;
}

async function buildTemporalCli({ env, versionDir, target, progress, timeoutMs }: BuildParams): Promise<void> {
  const go = await findGo(env);
  if (!go) {
    throw new Error([
      `No Temporal CLI found and Go is not installed, so it cannot be built. Looked for:`,
      `  - $TEMPORAL_CLI_PATH (unset)`,
      `  - \`temporal\` on PATH`,
      `  - ${target}`,
      `  - ${userCachePath(env)}`,
      `Fix one of:`,
      `  - set TEMPORAL_CLI_PATH=/path/to/temporal (any Temporal CLI >= 1.0; e.g. from https://temporal.io/setup or \`brew install temporal\`)`,
      `  - put \`temporal\` on PATH`,
      `  - install Go >= 1.25 (https://go.dev/dl/) and re-run: it builds \`go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\` once (a few minutes) and caches it`,
    ].join('\n'));
  }
  const goVersion = spawnSync(go, ['version'], { encoding: 'utf8', env }).stdout?.trim() || 'unknown go version';
  const staging = path.join(versionDir, `.build-${process.pid}`);
  await fs.rm(staging, { recursive: true, force: true });
  await fs.mkdir(staging, { recursive: true });
  const logPath = path.join(versionDir, 'build.log');
  const log = createWriteStream(logPath, { flags: 'w' });

  progress(
    `No Temporal CLI found (TEMPORAL_CLI_PATH unset, no \`temporal\` on PATH, no cached binary). ` +
    `Building it from source: \`go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\` with ${goVersion} (${go}). ` +
    `Its \`server start-dev\` is the local Temporal server that tests and \`npm start\` use. ` +
    `The first build downloads ~2 GB of Go modules and compiles Temporal Server + UI: expect 2-5 minutes. ` +
    `It happens once per machine (cached in ${path.dirname(target)} and ${path.dirname(userCachePath(env))}). ` +
    `Build log: ${logPath}. To skip it, set TEMPORAL_CLI_PATH to an existing binary.`,
  );

  const started = Date.now();
  let lastLine = '';
  const child = spawn(go, ['install', '-v', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
    cwd: versionDir,
    env: { ...env, GOBIN: staging },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const onData = (chunk: Buffer) => {
    log.write(chunk);
    const lines = chunk.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines.length) lastLine = lines[lines.length - 1]!;
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const ticker = setInterval(() => {
    const phase = lastLine.startsWith('go: downloading') ? 'downloading Go modules' : 'compiling';
    progress(`still building Temporal CLI ${TEMPORAL_CLI_VERSION}: ${formatElapsed(Date.now() - started)} elapsed, ` +
      `${phase}${lastLine ? ` (last: ${truncate(lastLine, 100)})` : ''}`);
  }, PROGRESS_EVERY_MS);
  ticker.unref();
  const killTimer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  killTimer.unref();

  let exit: { code: number | null; signal: NodeJS.Signals | null };
  try {
    exit = await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
  } finally {
    clearInterval(ticker);
    clearTimeout(killTimer);
    await new Promise<void>((resolve) => log.end(resolve));
  }

  const built = path.join(staging, BINARY_NAME);
  if (exit.code !== 0 || !(await isExecutableFile(built))) {
    await fs.rm(staging, { recursive: true, force: true });
    const tail = await tailFile(logPath, 25);
    const timedOut = Date.now() - started >= timeoutMs;
    throw new Error(
      `Building the Temporal CLI failed (${timedOut ? `timed out after ${formatElapsed(timeoutMs)}` : `exit code ${exit.code ?? exit.signal}`}): ` +
      `go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}. It needs Go >= 1.25 and access to the Go module proxy. ` +
      `Alternatively set TEMPORAL_CLI_PATH to an existing binary. Full log: ${logPath}. Last lines:\n${tail}`,
    );
  }
  const check = spawnSync(built, ['--version'], { encoding: 'utf8' });
  if (check.status !== 0) {
    await fs.rm(staging, { recursive: true, force: true });
    throw new Error(`The freshly built Temporal CLI does not run (\`${built} --version\` → ${check.status}): ${check.stderr}`);
  }
  await fs.rename(built, target);
  await fs.rm(staging, { recursive: true, force: true });
  progress(`built ${check.stdout.trim()} in ${formatElapsed(Date.now() - started)} → ${target}`);
}

async function findGo(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const exe = process.platform === 'win32' ? 'go.exe' : 'go';
  const onPath = await findOnPath(exe, env.PATH ?? '');
  if (onPath) return onPath;
  // Common install locations that are not always on a non-login shell's PATH.
  const candidates = [
    env.GOROOT ? path.join(env.GOROOT, 'bin', exe) : '',
    '/usr/local/go/bin/go',
    path.join(env.HOME || os.homedir(), 'go', 'bin', exe),
    path.join(env.HOME || os.homedir(), 'sdk', 'go', 'bin', exe),
  ].filter(Boolean);
  for (const c of candidates) if (await isExecutableFile(c)) return c;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// lock

interface LockInfo { pid: number; host: string; startedAt: number }

/** Exclusive lock file (O_EXCL). Waits for a live holder; breaks a lock whose holder is gone. Returns the release fn. */
async function acquireLock(lockPath: string, progress: (msg: string) => void): Promise<() => Promise<void>> {
  const waitStarted = Date.now();
  let lastReport = 0;
  for (;;) {
    try {
      const fh = await fs.open(lockPath, 'wx');
      const info: LockInfo = { pid: process.pid, host: os.hostname(), startedAt: Date.now() };
      await fh.writeFile(JSON.stringify(info));
      await fh.close();
      const onExit = () => { try { unlinkSync(lockPath); } catch { /* already gone */ } };
      process.once('exit', onExit);
      return async () => {
        process.removeListener('exit', onExit);
        await fs.rm(lockPath, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readLock(lockPath);
    if (holder === 'gone') continue; // released between our open() and read: try again right away
    if (!holder || isStale(holder)) {
      progress(`removing abandoned build lock ${lockPath}${holder ? ` (pid ${holder.pid} is gone)` : ''}`);
      await fs.rm(lockPath, { force: true });
      continue;
    }
    const now = Date.now();
    if (now - lastReport >= PROGRESS_EVERY_MS) {
      lastReport = now;
      progress(`another process (pid ${holder.pid}) is building the Temporal CLI; waiting for it ` +
        `(${formatElapsed(now - waitStarted)} so far, its build started ${formatElapsed(now - holder.startedAt)} ago)`);
    }
    await sleep(1000);
  }
}

async function readLock(lockPath: string): Promise<LockInfo | 'gone' | undefined> {
  let text: string;
  try {
    text = await fs.readFile(lockPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as LockInfo;
    if (typeof parsed.pid === 'number' && typeof parsed.startedAt === 'number') return parsed;
  } catch { /* half-written or garbage */ }
  // Half-written lock: its writer is between open() and write(). Give it a few seconds before calling it abandoned.
  try {
    const st = await fs.stat(lockPath);
    if (Date.now() - st.mtimeMs < 10_000) return { pid: 0, host: os.hostname(), startedAt: st.mtimeMs };
  } catch {
    return 'gone';
  }
  return undefined;
}

function isStale(info: LockInfo): boolean {
  if (Date.now() - info.startedAt > STALE_LOCK_MS) return true;
  if (info.pid === 0) return false;
  if (info.host && info.host !== os.hostname()) return false; // shared filesystem: only the age check applies
  return !pidAlive(info.pid);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

export async function isExecutableFile(p: string): Promise<boolean> {
  try {
    const st = await fs.stat(p);
    if (!st.isFile()) return false;
    await fs.access(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(name: string, pathVar: string): Promise<string | undefined> {
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Copy src to dest atomically (temp file + rename), preferring a hard link when both are on one filesystem. */
async function installFile(src: string, dest: string): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  try {
    try {
      await fs.link(src, tmp);
    } catch {
      await fs.copyFile(src, tmp);
    }
    await fs.chmod(tmp, 0o755);
    await fs.rename(tmp, dest);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

async function tailFile(p: string, lines: number): Promise<string> {
  try {
    const text = await fs.readFile(p, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
