/**
 * A Prometheus server (Debian's `prometheus`; BATCHKEEPER_PROMETHEUS_PATH for another binary) that scrapes the given
 * worker metrics endpoints every second, with its data in a directory of its own, and answers PromQL queries.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../dev/dev-server';
import { ManagedProcess } from './managed-process';

export const PROMETHEUS_BINARY = process.env.BATCHKEEPER_PROMETHEUS_PATH || '/usr/bin/prometheus';
export const WORKERS_JOB = 'batchkeeper-workers';

export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export interface Prometheus {
  url: string;
  /** An instant query's vector. */
  query(promql: string): Promise<PromSample[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(options: { targets: string[]; dir: string }): Promise<Prometheus> {
  mkdirSync(options.dir, { recursive: true });
  const configFile = path.join(options.dir, 'prometheus.yml');
  // JSON is YAML: no YAML library needed.
  writeFileSync(configFile, JSON.stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: [{ job_name: WORKERS_JOB, static_configs: [{ targets: options.targets }] }],
  }, null, 2));
  const port = await freePort();
  const server = new ManagedProcess({
    name: 'prometheus',
    command: PROMETHEUS_BINARY,
    args: [
      `--config.file=${configFile}`, `--storage.tsdb.path=${path.join(options.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
    ],
    env: { PATH: process.env.PATH },
    ports: { http: port },
    readyPort: port,
    logFile: path.join(options.dir, 'prometheus.log'),
  });
  await server.start();
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async query(promql) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await response.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== 'success') throw new Error(`Prometheus refused ${promql}: ${body.error}`);
      return body.data!.result.map((row) => ({ metric: row.metric, value: Number(row.value[1]) }));
    },
    stop: () => server.close(),
  };
}
