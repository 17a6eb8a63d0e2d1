/** The stock worker (worker/main.ts) as its own process, configured only through the environment like a deployment. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { TEST_API_KEY, type TestEnvironment } from './environment';

const ROOT = path.resolve(__dirname, '..', '..');
const WORKER_MAIN = path.join(ROOT, 'worker', 'main.ts');

export interface StockWorker {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** The variables that point the stock worker at a test environment (its database, task queue and fake provider). */
export function stockWorkerEnv(env: TestEnvironment, variables: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: env.databaseUrl,
    TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS,
    BATCHKEEPER_TASK_QUEUE: env.taskQueue,
    OPENAI_API_KEY: TEST_API_KEY,
    OPENAI_BASE_URL: env.fake.openaiBaseUrl,
    ANTHROPIC_API_KEY: TEST_API_KEY,
    ANTHROPIC_BASE_URL: env.fake.anthropicBaseUrl,
    ...variables,
  };
}

function spawnWorker(variables: Record<string, string | undefined>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], { cwd: ROOT, env: variables, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { child, output: () => output };
}

/** Starts the stock worker and resolves once it polls its task queue. */
export async function startStockWorker(variables: Record<string, string | undefined>): Promise<StockWorker> {
  const { child, output } = spawnWorker(variables);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker did not start within 90 s:\n${output().slice(-3000)}`)), 90_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited with ${code}:\n${output().slice(-3000)}`));
    });
  });
  return {
    child,
    output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs the stock worker until it exits by itself (a start that must fail); resolves with its exit code and output. */
export async function runStockWorkerToExit(variables: Record<string, string | undefined>, giveUpMs = 60_000): Promise<{ code: number | null; output: string }> {
  const { child, output } = spawnWorker(variables);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker was still running after ${giveUpMs / 1000} s:\n${output().slice(-2000)}`));
    }, giveUpMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output() });
    });
  });
}
