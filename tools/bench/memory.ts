/**
 * Worker memory, read from the kernel for the worker subprocess (Linux /proc): resident set size now (VmRSS) and its
 * peak (VmHWM, which `clear_refs` can reset so a peak can be taken over one phase). The 10,000-open-batches figure is
 * taken during the timeliness run (timeliness.ts), which is where that many batches are open.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const KB = 1024;

export interface RssReading {
  rssMb: number;
  /** Peak RSS since start or since the last resetPeakRss. */
  peakMb: number;
}

export function readRss(pid: number): RssReading {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / KB;
    return { rssMb: field('VmRSS'), peakMb: field('VmHWM') };
  } catch {
    return { rssMb: NaN, peakMb: NaN };
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs). Returns false where that is not possible. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples a process's RSS every `everyMs`, keeping the maximum (a cross-check of VmHWM) and a short series. */
export class RssSampler {
  private timer?: NodeJS.Timeout;
  maxMb = 0;
  readonly series: { at: number; rssMb: number }[] = [];

  constructor(private readonly pid: number, private readonly everyMs = 50) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }

  sample(): number {
    const { rssMb } = readRss(this.pid);
    if (Number.isFinite(rssMb)) {
      this.maxMb = Math.max(this.maxMb, rssMb);
      this.series.push({ at: Date.now(), rssMb });
    }
    return rssMb;
  }

  /** Median of the samples taken since `sinceMs`. */
  medianSince(sinceMs: number): number {
    const values = this.series.filter((sample) => sample.at >= sinceMs).map((sample) => sample.rssMb).sort((a, b) => a - b);
    return values.length ? values[Math.floor(values.length / 2)] : NaN;
  }
}

/**
 * The worker's memory with many batches open: RSS when idle after start, then the median and peak RSS over the
 * steady window of the timeliness run (all batches submitted, all polling). `workerRssMbAt10k` is the peak.
 */
export function summariseOpenBatchesMemory(options: { idleMb: number; sampler: RssSampler; windowStart: number; openBatches: number }) {
  const windowSamples = options.sampler.series.filter((sample) => sample.at >= options.windowStart);
  const peak = windowSamples.reduce((max, sample) => Math.max(max, sample.rssMb), 0);
  return {
    workerRssMbAt10k: round1(peak),
    memory: {
      openBatches: options.openBatches,
      idleRssMb: round1(options.idleMb),
      medianRssMbInWindow: round1(options.sampler.medianSince(options.windowStart)),
      peakRssMbInWindow: round1(peak),
      peakRssMbWholeRun: round1(options.sampler.maxMb),
      perOpenBatchKb: round1(((peak - options.idleMb) * 1024) / Math.max(options.openBatches, 1)),
    },
  };
}

export function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU seconds per process, to show where a phase's time went (worker, Temporal server, PostgreSQL, the bench itself).

const CLOCK_TICKS = 100;

function procStat(pid: number): { ppid: number; self: number; children: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return {
      ppid: Number(fields[1]),
      self: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
      children: (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS,
    };
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process and its descendants, including children that have exited and were waited for. */
export function treeCpuSeconds(rootPid: number): number {
  const all = new Map<number, { ppid: number; self: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat) all.set(Number(name), stat);
  }
  const root = procStat(rootPid);
  if (!root) return NaN;
  let total = root.self + root.children;
  const queue = [rootPid];
  while (queue.length) {
    const parent = queue.pop()!;
    for (const [pid, stat] of all) {
      if (stat.ppid !== parent) continue;
      total += stat.self;
      queue.push(pid);
    }
  }
  return total;
}

export function postmasterPid(dataDir: string | undefined): number | undefined {
  if (!dataDir) return undefined;
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Machine-wide busy and total CPU seconds since boot (/proc/stat), for the share the whole machine was busy. */
function machineCpu(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0) / CLOCK_TICKS;
    const idle = (fields[3] + fields[4]) / CLOCK_TICKS;
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/** CPU seconds per thread name (comm) of one process: main JS thread, workflow thread, Rust core, libuv, GC. */
export function threadCpuSeconds(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        // The main JS thread and a worker thread (the workflow thread) share the comm 'node': the main one is the pid.
        const name = tid === String(pid) ? 'main' : text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')).replace(/\d+$/, '#');
        const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
        byName[name] = (byName[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return byName;
}

/** CPU seconds used by each named process tree between start() and stop(). */
export class CpuMeter {
  private readonly before = new Map<string, number>();
  private driverBefore = process.cpuUsage();
  private machineBefore = machineCpu();

  private threadsBefore: Record<string, number> = {};

  constructor(private readonly pids: Record<string, number | undefined>, private readonly threadsOf?: number) {}

  /** CPU seconds per thread name of `threadsOf` since start(). */
  threads(): Record<string, number> {
    if (!this.threadsOf) return {};
    const now = threadCpuSeconds(this.threadsOf);
    return Object.fromEntries(Object.entries(now).map(([name, seconds]) => [name, round1(seconds - (this.threadsBefore[name] ?? 0))])
      .filter(([, seconds]) => (seconds as number) > 0));
  }

  start(): this {
    if (this.threadsOf) this.threadsBefore = threadCpuSeconds(this.threadsOf);
    for (const [name, pid] of Object.entries(this.pids)) if (pid) this.before.set(name, treeCpuSeconds(pid));
    this.driverBefore = process.cpuUsage();
    this.machineBefore = machineCpu();
    return this;
  }

  stop(): Record<string, number> {
    const used: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      if (pid && this.before.has(name)) used[name] = round1(treeCpuSeconds(pid) - this.before.get(name)!);
    }
    const driver = process.cpuUsage(this.driverBefore);
    used.benchAndFake = round1((driver.user + driver.system) / 1e6);
    const machine = machineCpu();
    const ours = Object.values(used).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    used.machineBusy = round1(machine.busy - this.machineBefore.busy);
    used.machineOthers = round1(used.machineBusy - ours);
    used.machineIdle = round1(machine.total - this.machineBefore.total - used.machineBusy);
    return used;
  }
}
