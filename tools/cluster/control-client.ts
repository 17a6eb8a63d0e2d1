/** Client of control-server.ts: crash and restart cluster members from another process (the cluster tests). */
import type { ProcessInfo } from './managed-process';

export interface ClusterControl {
  members(): Promise<ProcessInfo[]>;
  /** SIGKILL by default: the host dies as in a crash. */
  kill(name: string, signal?: 'SIGKILL' | 'SIGTERM'): Promise<ProcessInfo>;
  /** Starts the member again on its ports; resolves once it accepts connections. */
  start(name: string): Promise<ProcessInfo>;
}

export function clusterControl(url: string): ClusterControl {
  const call = async <T>(method: 'GET' | 'POST', path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`, { method });
    const body = await response.json() as T & { error?: string };
    if (!response.ok) throw new Error(`cluster control ${method} ${path}: ${body.error ?? response.status}`);
    return body;
  };
  return {
    members: () => call('GET', '/members'),
    kill: (name, signal = 'SIGKILL') => call('POST', `/members/${name}/kill?signal=${signal}`),
    start: (name) => call('POST', `/members/${name}/start`),
  };
}
