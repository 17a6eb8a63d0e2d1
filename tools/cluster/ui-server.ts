/**
 * Temporal Web for the native cluster: the UI server rendering the same config template as the temporalio/ui image
 * (the module's config/docker.yaml), from the same variables docker-compose.yml's `temporal-ui` service sets
 * (TEMPORAL_ADDRESS, TEMPORAL_UI_PORT, TEMPORAL_CODEC_ENDPOINT, ...). That template binds every interface; a base.yaml
 * beside it, which the UI server reads first, pins the listener to 127.0.0.1: the UI has no authentication.
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../dev/dev-server';
import type { UiBinaries } from './binaries';
import { ManagedProcess } from './managed-process';

export interface UiServer {
  url: string;
  process: ManagedProcess;
}

export async function startUiServer(options: {
  binaries: UiBinaries;
  /** Folder for its config and log. */
  dir: string;
  temporalAddress: string;
  namespace: string;
  codecEndpoint?: string;
  port?: number;
}): Promise<UiServer> {
  const configDir = path.join(options.dir, 'config');
  await fs.mkdir(configDir, { recursive: true });
  await fs.writeFile(path.join(configDir, 'base.yaml'), 'host: 127.0.0.1\n');
  await fs.copyFile(options.binaries.configTemplate, path.join(configDir, 'docker.yaml'));
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const ui = new ManagedProcess({
    name: 'ui',
    command: options.binaries.server,
    args: ['--root', options.dir, '--config', 'config', '--env', 'docker', 'start'],
    env: {
      PATH: process.env.PATH,
      TEMPORAL_ADDRESS: options.temporalAddress,
      TEMPORAL_UI_PORT: String(port),
      TEMPORAL_DEFAULT_NAMESPACE: options.namespace,
      TEMPORAL_CORS_ORIGINS: url,
      ...(options.codecEndpoint ? { TEMPORAL_CODEC_ENDPOINT: options.codecEndpoint } : {}),
      // Offline machines: no call home for a newer version.
      TEMPORAL_NOTIFY_ON_NEW_VERSION: 'false',
    },
    ports: { http: port },
    readyPort: port,
    logFile: path.join(options.dir, 'ui.log'),
  });
  await ui.start();
  return { url, process: ui };
}
