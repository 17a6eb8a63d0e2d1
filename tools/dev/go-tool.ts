/**
 * Go programs we build once from their module (`go install <package>@<version>`) and cache: the Temporal CLI (the dev
 * server), and the Temporal Server, its SQL schema tool and the UI server of `npm run cluster`. None of them is on npm
 * or in Debian, and these machines reach only the Go module proxy.
 *
 * Where a tool's binaries are looked for, in order:
 *   1. <project>/.cache/<tool>/<version>/ (BATCHKEEPER_CACHE_DIR replaces <project>/.cache, e.g. to try a fresh build);
 *   2. ${XDG_CACHE_HOME:-~/.cache}/batchkeeper/<tool>/<version>/, copied into the project cache;
 *   3. built with `go install` into the project cache (one build per cache folder at a time: a lock file; a progress
 *      line every 15 s), then copied to the per-user cache so other clones on the machine skip the build.
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants as fsConstants, createWriteStream, unlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export interface GoTool {
  /** Cache folder name, e.g. 'temporal-cli'. */
  name: string;
  /** For messages, e.g. 'Temporal CLI'. */
  title: string;
  version: string;
  /** Packages of one module at `version`, installed by one `go install`; each gives the binary named. */
  packages: { path: string; binary: string }[];
  /** Why it is built and how long that takes, for the notice before a build. */
  buildNotice: string;
  /** How to skip the build, for error messages. */
  alternative: string;
  /** Arguments that make a built binary print its version (a check that it runs). */
  versionArgs: string[];
}

export interface ResolveGoToolOptions {
  /** Progress lines (cache copies, build progress). Default: stderr with a `[<tool>]` prefix. */
  onProgress?: (msg: string) => void;
  /** Environment to read BATCHKEEPER_CACHE_DIR, XDG_CACHE_HOME, HOME, PATH, GO* from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Project root holding `.cache/`. Default: the directory above tools/. */
  projectRoot?: string;
  /** Give up on a build after this long. Default 30 min. */
  buildTimeoutMs?: number;
}

export interface ResolvedGoTool {
  /** Binary name → absolute path. */
  binaries: Record<string, string>;
  source: 'cache' | 'built';
}

const PROGRESS_EVERY_MS = 15_000;
/** A lock older than this is considered abandoned even if its pid is alive (pid reuse). */
const STALE_LOCK_MS = 60 * 60_000;
const EXE = process.platform === 'win32' ? '.exe' : '';

export function defaultProjectRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** `<project>/.cache/<tool>/<version>/` (or `$BATCHKEEPER_CACHE_DIR/<tool>/<version>/`). */
export function projectCacheDir(tool: GoTool, env: NodeJS.ProcessEnv = process.env, projectRoot = defaultProjectRoot()): string {
  const base = env.BATCHKEEPER_CACHE_DIR ? path.resolve(env.BATCHKEEPER_CACHE_DIR) : path.join(projectRoot, '.cache');
  return path.join(base, tool.name, tool.version);
}

/** `${XDG_CACHE_HOME:-~/.cache}/batchkeeper/<tool>/<version>/` */
export function userCacheDir(tool: GoTool, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)
    ? env.XDG_CACHE_HOME
    : path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'batchkeeper', tool.name, tool.version);
}

function binariesIn(dir: string, tool: GoTool): Record<string, string> {
  return Object.fromEntries(tool.packages.map(({ binary }) => [binary, path.join(dir, `${binary}${EXE}`)]));
}

async function complete(binaries: Record<string, string>): Promise<boolean> {
  for (const file of Object.values(binaries)) if (!(await isExecutableFile(file))) return false;
  return true;
}

async function copyAll(from: Record<string, string>, to: Record<string, string>): Promise<void> {
  for (const [name, file] of Object.entries(from)) await installFile(file, to[name]!);
}

export async function resolveGoTool(tool: GoTool, opts: ResolveGoToolOptions = {}): Promise<ResolvedGoTool> {
  const env = opts.env ?? process.env;
  const progress = opts.onProgress ?? ((msg: string) => process.stderr.write(`[${tool.name}] ${msg}\n`));
  const versionDir = projectCacheDir(tool, env, opts.projectRoot ?? defaultProjectRoot());
  const projectBins = binariesIn(versionDir, tool);
  const userDir = userCacheDir(tool, env);
  const userBins = binariesIn(userDir, tool);
  const fromCaches = async (): Promise<boolean> => {
    if (await complete(projectBins)) return true;
    if (!(await complete(userBins))) return false;
    progress(`using the cached ${tool.title} ${tool.version} from ${userDir}; copying it to ${versionDir}`);
    await copyAll(userBins, projectBins);
    return true;
  };

  if (await fromCaches()) return { binaries: projectBins, source: 'cache' };
  await fs.mkdir(versionDir, { recursive: true });
  const release = await acquireLock(path.join(versionDir, '.build.lock'), tool, progress);
  try {
    // Another process may have finished the build (or seeded a cache) while we waited for the lock.
    if (await fromCaches()) return { binaries: projectBins, source: 'cache' };
    await buildGoTool({ tool, env, versionDir, targets: projectBins, progress, timeoutMs: opts.buildTimeoutMs ?? 30 * 60_000 });
  } finally {
    await release();
  }
  try {
    await copyAll(projectBins, userBins);
    progress(`also cached in ${userDir} so other clones on this machine skip the build`);
  } catch (err) {
    progress(`note: could not copy the binaries to the per-user cache ${userDir}: ${(err as Error).message}`);
  }
  return { binaries: projectBins, source: 'built' };
}

/** `go mod download -json <module>@<version>`: the module's source folder in the Go module cache (downloaded if needed). */
export async function goModuleDir(module: string, version: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const go = await findGo(env);
  if (!go) throw new Error(`Go is needed to find the ${module}@${version} sources (go mod download): install Go >= 1.25`);
  const result = spawnSync(go, ['mod', 'download', '-json', `${module}@${version}`], { encoding: 'utf8', env, cwd: os.tmpdir() });
  const dir = result.status === 0 ? (JSON.parse(result.stdout) as { Dir?: string }).Dir : undefined;
  if (!dir) throw new Error(`go mod download ${module}@${version} failed (${result.status}): ${result.stderr || result.stdout}`);
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// build

interface BuildParams {
  tool: GoTool;
  env: NodeJS.ProcessEnv;
  versionDir: string;
  targets: Record<string, string>;
  progress: (msg: string) => void;
  timeoutMs: number;
}

async function buildGoTool({ tool, env, versionDir, targets, progress, timeoutMs }: BuildParams): Promise<void> {
  const specs = tool.packages.map(({ path: pkg }) => `${pkg}@${tool.version}`);
  const go = await findGo(env);
  if (!go) {
    throw new Error([
      `No cached ${tool.title} ${tool.version} and Go is not installed, so it cannot be built. Looked in:`,
      `  - ${versionDir}`,
      `  - ${userCacheDir(tool, env)}`,
      `Fix one of:`,
      `  - ${tool.alternative}`,
      `  - install Go >= 1.25 (https://go.dev/dl/) and re-run: it builds \`go install ${specs.join(' ')}\` once and caches it`,
    ].join('\n'));
  }
  const goVersion = spawnSync(go, ['version'], { encoding: 'utf8', env }).stdout?.trim() || 'unknown go version';
  const staging = path.join(versionDir, `.build-${process.pid}`);
  await fs.rm(staging, { recursive: true, force: true });
  await fs.mkdir(staging, { recursive: true });
  const logPath = path.join(versionDir, 'build.log');
  const log = createWriteStream(logPath, { flags: 'w' });

  progress(
    `No cached ${tool.title} ${tool.version}: building it from source with \`go install ${specs.join(' ')}\` ` +
    `(${goVersion}, ${go}). ${tool.buildNotice} It happens once per machine (cached in ${versionDir} and ` +
    `${userCacheDir(tool, env)}). Build log: ${logPath}. To skip it: ${tool.alternative}.`,
  );

  const started = Date.now();
  let lastLine = '';
  const child = spawn(go, ['install', '-v', ...specs], {
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
    progress(`still building ${tool.title} ${tool.version}: ${formatElapsed(Date.now() - started)} elapsed, ` +
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

  const built = binariesIn(staging, tool);
  if (exit.code !== 0 || !(await complete(built))) {
    await fs.rm(staging, { recursive: true, force: true });
    const tail = await tailFile(logPath, 25);
    const timedOut = Date.now() - started >= timeoutMs;
    throw new Error(
      `Building the ${tool.title} failed (${timedOut ? `timed out after ${formatElapsed(timeoutMs)}` : `exit code ${exit.code ?? exit.signal}`}): ` +
      `go install ${specs.join(' ')}. It needs Go >= 1.25 and access to the Go module proxy. ` +
      `Alternatively: ${tool.alternative}. Full log: ${logPath}. Last lines:\n${tail}`,
    );
  }
  const versions: string[] = [];
  for (const [name, file] of Object.entries(built)) {
    const check = spawnSync(file, tool.versionArgs, { encoding: 'utf8' });
    if (check.status !== 0) {
      await fs.rm(staging, { recursive: true, force: true });
      throw new Error(`The freshly built ${name} does not run (\`${file} ${tool.versionArgs.join(' ')}\` → ${check.status}): ${check.stderr}`);
    }
    versions.push(check.stdout.trim().split('\n')[0]!);
    await fs.rename(file, targets[name]!);
  }
  await fs.rm(staging, { recursive: true, force: true });
  progress(`built ${versions.join(', ')} in ${formatElapsed(Date.now() - started)} → ${versionDir}`);
}

async function findGo(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const exe = `go${EXE}`;
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
async function acquireLock(lockPath: string, tool: GoTool, progress: (msg: string) => void): Promise<() => Promise<void>> {
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
      progress(`another process (pid ${holder.pid}) is building the ${tool.title}; waiting for it ` +
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

export async function findOnPath(name: string, pathVar: string): Promise<string | undefined> {
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

export function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
