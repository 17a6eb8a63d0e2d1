/**
 * One long-running child process of the cluster (a Temporal service host, the UI server): started with a fixed
 * command line, environment and ports, so that it can be SIGKILLed and started again as the same cluster member.
 * Output goes to a log file of its own; a short tail is kept for error messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { tcpOpen, waitForPortFree } from '../dev/dev-server';

export interface ManagedProcessSpec {
  /** Unique within the cluster, e.g. 'history-2'. */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Every port the process binds on 127.0.0.1 (for restarts: wait until the old process let go of them). */
  ports: Record<string, number>;
  /** Ready once this port accepts connections. */
  readyPort: number;
  logFile: string;
}

export interface ProcessInfo {
  name: string;
  pid: number | undefined;
  running: boolean;
  ports: Record<string, number>;
  starts: number;
  logFile: string;
}

const TAIL_LINES = 60;
const STOP_GRACE_MS = 10_000;

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private readonly log: WriteStream;
  private readonly tail: string[] = [];
  private starts = 0;

  constructor(readonly spec: ManagedProcessSpec) {
    this.log = createWriteStream(spec.logFile, { flags: 'a' });
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return Boolean(this.child && this.child.exitCode === null && this.child.signalCode === null);
  }

  info(): ProcessInfo {
    return { name: this.name, pid: this.pid, running: this.running, ports: this.spec.ports, starts: this.starts, logFile: this.spec.logFile };
  }

  /** Starts the process and resolves once its ready port accepts connections; rejects if it exits first. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.child!.pid})`);
    for (const port of Object.values(this.spec.ports)) await waitForPortFree(port, 15_000);
    this.record(`\n=== ${new Date().toISOString()} start ${this.spec.command} ${this.spec.args.join(' ')}\n`);
    const child = spawn(this.spec.command, this.spec.args, { cwd: this.spec.cwd, env: this.spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.starts += 1;
    child.stdout!.on('data', (chunk: Buffer) => this.record(chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => this.record(chunk.toString('utf8')));
    // Never leave a cluster member behind when the parent exits without stopping it.
    const exitHook = () => { try { child.kill('SIGTERM'); } catch { /* gone */ } };
    process.once('exit', exitHook);
    let exited: string | undefined;
    child.once('error', (error) => { exited = `could not be run: ${error.message}`; });
    child.once('exit', (code, signal) => {
      process.removeListener('exit', exitHook);
      exited ??= `exited with ${code ?? signal}`;
      this.record(`=== ${new Date().toISOString()} ${this.name} ${exited}\n`);
    });

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`${this.name} ${exited} before it was ready. Last output (${this.spec.logFile}):\n${this.logTail()}`);
      if (await tcpOpen('127.0.0.1', this.spec.readyPort, 1000)) return;
      if (Date.now() > deadline) {
        await this.stop('SIGKILL');
        throw new Error(`${this.name} did not open port ${this.spec.readyPort} within ${timeoutMs / 1000}s. Last output:\n${this.logTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** SIGTERM (graceful; SIGKILL after 10 s) or SIGKILL (a crash). Resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.kill(signal);
    const escalate = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, STOP_GRACE_MS);
    await closed;
    clearTimeout(escalate);
  }

  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await this.start();
  }

  /** Stops the process and closes its log. */
  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((resolve) => this.log.end(resolve));
  }

  logTail(lines = 30): string {
    return this.tail.slice(-lines).join('\n') || '(no output)';
  }

  private record(text: string): void {
    if (!this.log.writableEnded) this.log.write(text);
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      this.tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
    }
  }
}
