/** The side-by-side tables of `peers` and `faults` (details.peers, details.faults) for latest.md and the README. */
/** One system's figures in details.peers.systems (peers/measure.ts fills them). */
export interface SystemFigures {
  batchesPerSecond: number | null;
  cpuMsPerBatch: Record<string, number> | null;
  cpuMsPerBatchTotal: number | null;
  statusCallsPerBatch: number | null;
  pollLatenessP50Ms: number | null;
  pollLatenessP99Ms: number | null;
  workerRssMbOpen: number | null;
  backendRssMbOpen?: number | null;
  completionToHandlerP50Ms: number | null;
  completionToHandlerP99Ms: number | null;
}

const fmt = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined ? '–' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function formatPeersMarkdown(details: Record<string, unknown>): string {
  const lines: string[] = [];
  const peers = details.peers as { systems: Record<string, SystemFigures>; ratios: Record<string, Record<string, number | null>>; throughputScale: number;
    details: Record<string, { throughput: { batches: number }; open: { inFlight: number; pollIntervalMs: number; scale: number } }>; errors: string[] } | undefined;
  const overhead = details.overhead as { batches?: number } | undefined;
  if (peers) {
    const names = ['ours', ...Object.keys(peers.ratios)];
    const anyPeer = Object.values(peers.details)[0];
    const batches = anyPeer?.throughput.batches ?? overhead?.batches;
    const open = anyPeer?.open;
    const cell = (name: string, get: (figures: SystemFigures) => string) => (peers.systems[name] ? get(peers.systems[name]) : '–');
    const ratio = (key: string) => Object.keys(peers.ratios).map((peer) => fmt(peers.ratios[peer][key], 2));
    const row = (label: string, get: (figures: SystemFigures) => string, key: string) =>
      `| ${label} | ${names.map((name) => cell(name, get)).join(' | ')} | ${ratio(key).join(' | ')} |`;
    const cpu = (figures: SystemFigures) => `${fmt(figures.cpuMsPerBatchTotal, 1)} (${Object.entries(figures.cpuMsPerBatch ?? {}).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ')})`;
    lines.push(
      '',
      `Side by side: the seed's poll chain and sweeps on pg-boss and BullMQ (tools/bench/peers), same work, same run` +
        `${batches ? ` (${batches} concurrent batches` : ''}${open ? `; ${open.inFlight} open batches polling every ${open.pollIntervalMs / 1000} s` : ''}${batches ? ')' : ''}.`,
      '',
      `| measure | ${names.join(' | ')} | ${Object.keys(peers.ratios).map((peer) => `ours / ${peer}`).join(' | ')} |`,
      `|---|${names.map(() => '---').join('|')}|${Object.keys(peers.ratios).map(() => '---').join('|')}|`,
      row('completed batches per second', (f) => fmt(f.batchesPerSecond, 2), 'batchesPerSecond'),
      row('CPU ms per batch (by process)', cpu, 'cpuMsPerBatchTotal'),
      row('provider status calls per batch', (f) => fmt(f.statusCallsPerBatch, 2), 'statusCallsPerBatch'),
      row('poll lateness p50, ms', (f) => fmt(f.pollLatenessP50Ms), 'pollLatenessP50Ms'),
      row('poll lateness p99, ms', (f) => fmt(f.pollLatenessP99Ms), 'pollLatenessP99Ms'),
      row('worker RSS with the open batches, MB', (f) => `${fmt(f.workerRssMbOpen)}${f.backendRssMbOpen ? ` (+ Redis ${fmt(f.backendRssMbOpen, 1)})` : ''}`, 'workerRssMbOpen'),
      row('provider finished → handler p50 (p99), ms', (f) => `${fmt(f.completionToHandlerP50Ms)} (${fmt(f.completionToHandlerP99Ms)})`, 'completionToHandlerP50Ms'),
    );
    if (peers.errors.length) lines.push('', `Peers: ${peers.errors.join('; ')}`);
  }
  const faults = details.faults as { systems: Record<string, Record<string, any>>; scale: number; batchesPerSystem: number; runSeconds: number;
    counters: Record<string, number>; outages: { what: string; seconds: number }[]; errors: string[] } | undefined;
  if (faults) {
    lines.push(
      '',
      `The same faults for all three (${faults.batchesPerSystem} batches each, time scale 1/${faults.scale}; ${faults.counters.workerKills} worker SIGKILLs in all, ` +
        `${faults.counters.redisRestarts} Redis restart without persistence, ${faults.counters.postgresRestarts} PostgreSQL restart, ` +
        `${faults.outages.filter((o) => o.what === 'drain').map((o) => `a drain of every worker for ${fmt(o.seconds)} s`).join('')}, provider 429/5xx at 10%; ${fmt(faults.runSeconds)} s):`,
      '',
      '| system | lost | stalled past schedule | longest stall, s | results discarded at expiry | duplicate provider batches | duplicate handler effects |',
      '|---|---|---|---|---|---|---|',
      ...Object.entries(faults.systems).map(([name, f]) =>
        `| ${name} | ${f.lost}${f.neverSubmitted ? ` (${f.neverSubmitted} never submitted)` : ''} | ${f.stalled} | ${fmt(f.stalledWaitedMs.max / 1000, 1)} | ${f.discardedAtExpiry} | ${f.duplicateProviderBatches} | ${f.duplicateHandlerEffects} |`),
    );
    if (faults.errors.length) lines.push('', `Faults: ${faults.errors.join('; ')}`);
  }
  return lines.join('\n');
}
