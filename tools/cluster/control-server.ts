/**
 * The cluster's member processes over HTTP on 127.0.0.1, so that a test file (another process than the one that
 * started the cluster) or an operator trying things by hand can crash a host and bring it back:
 *   GET  /members                   every member: name, pid, running, ports, starts
 *   POST /members/<name>/kill       SIGKILL (a crash); ?signal=SIGTERM for a graceful stop
 *   POST /members/<name>/start      start it again on the same ports
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ManagedProcess } from './managed-process';

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

const SIGNALS: readonly string[] = ['SIGKILL', 'SIGTERM', 'SIGINT'];

export async function startControlServer(members: readonly ManagedProcess[]): Promise<ControlServer> {
  const server = http.createServer((request, response) => {
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    const url = new URL(request.url ?? '/', 'http://control');
    if (request.method === 'GET' && url.pathname === '/members') return reply(200, members.map((member) => member.info()));
    const match = /^\/members\/([\w-]+)\/(kill|start)$/.exec(url.pathname);
    const member = match && members.find((candidate) => candidate.name === match[1]);
    if (request.method !== 'POST' || !match) return reply(404, { error: 'GET /members, POST /members/<name>/kill|start' });
    if (!member) return reply(404, { error: `no member ${match[1]}` });
    const signal = url.searchParams.get('signal') ?? 'SIGKILL';
    if (!SIGNALS.includes(signal)) return reply(400, { error: `signal must be one of ${SIGNALS.join(', ')}` });
    const action = match[2] === 'kill' ? member.stop(signal as NodeJS.Signals) : member.start();
    action.then(() => reply(200, member.info()), (error: Error) => reply(500, { error: error.message }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
