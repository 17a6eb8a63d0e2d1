/** Measures the worker over one phase of a measurement: its RSS (peak mark reset, plus sampling) and CPU by process. */
import type { WorkerProcess } from './context';
import { CpuMeter, postmasterPid, RssSampler } from './memory';

export function meterPhase(worker: WorkerProcess, postgresDataDir: string | undefined) {
  const baselineMb = worker.rss().rssMb;
  worker.resetPeak();
  const sampler = new RssSampler(worker.pid, 20).start();
  const cpu = new CpuMeter({ worker: worker.pid, postgres: postmasterPid(postgresDataDir) }, worker.pid).start();
  return {
    baselineMb,
    stop() {
      sampler.stop();
      const cpuSeconds = cpu.stop();
      return { baselineMb, peakMb: Math.max(worker.rss().peakMb, sampler.maxMb), cpuSeconds, workerThreadsCpuSeconds: cpu.threads() };
    },
  };
}
