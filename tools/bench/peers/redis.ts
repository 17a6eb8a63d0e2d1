/**
 * The bench's own Redis for the BullMQ peer: `redis-server` from PATH on a free port, without persistence (`--save ''
 * --appendonly no`), so that the fault run can restart it and lose what it held, as the issue asks. Without the
 * binary, BENCH_REDIS_URL names a server to use (it is not restarted); with neither, the BullMQ peer is reported absent.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from '../../dev/dev-server';
import { checkRedis } from './bullmq';

export interface BenchRedis {
  url: string;
  /** The server's pid when the bench runs it. */
  pid(): number | undefined;
  /** Ours only: SIGKILL, then a fresh server on the same port (empty: no persistence). */
  restart?(): Promise<void>;
  stop(): Promise<void>;
}

export function redisServerPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() || undefined : undefined;
}

async function waitUp(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await checkRedis(url, 500);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export async function startBenchRedis(log: (message: string) => void): Promise<BenchRedis> {
  const binary = redisServerPath();
  if (!binary) {
    const url = process.env.BENCH_REDIS_URL;
    if (!url) throw new Error('Redis is absent: no redis-server on PATH and BENCH_REDIS_URL is not set, so the BullMQ peer cannot run (apt-get install redis-server)');
    await checkRedis(url);
    log(`BullMQ peer on ${url} (BENCH_REDIS_URL; no redis-server on PATH, so it is not restarted by the fault run)`);
    return { url, pid: () => undefined, stop: async () => undefined };
  }
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    await waitUp(url);
  };
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await gone;
  };
  await launch();
  log(`Redis for the BullMQ peer: ${binary} on port ${port}, no persistence (pid ${child!.pid})`);
  return {
    url,
    pid: () => child.pid,
    async restart() {
      await kill('SIGKILL');
      await launch();
    },
    stop: () => kill('SIGTERM'),
  };
}
