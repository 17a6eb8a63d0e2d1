/**
 * What the native cluster runs, built once from the Go module proxy and cached like the Temporal CLI
 * (tools/dev/go-tool.ts): the Temporal Server and its SQL schema tool from go.temporal.io/server, and the Temporal UI
 * server. The schema files and the UI's config template come from the same module versions in the Go module cache.
 */
import path from 'node:path';
import { goModuleDir, resolveGoTool, type GoTool, type ResolveGoToolOptions } from '../dev/go-tool';

export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';
/** The server release the cluster runs (and docker-compose.yml's temporalio/server and admin-tools images). */
export const TEMPORAL_SERVER_VERSION = 'v1.30.3';
export const TEMPORAL_UI_MODULE = 'github.com/temporalio/ui-server/v2';
/** The UI server the Temporal CLI v1.5.1 embeds (its module, with the built UI assets, is already in the module cache). */
export const TEMPORAL_UI_VERSION = 'v2.42.1';

export const TEMPORAL_SERVER_TOOL: GoTool = {
  name: 'temporal-server',
  title: 'Temporal Server and SQL tool',
  version: TEMPORAL_SERVER_VERSION,
  packages: [
    { path: `${TEMPORAL_SERVER_MODULE}/cmd/server`, binary: 'server' },
    { path: `${TEMPORAL_SERVER_MODULE}/cmd/tools/sql`, binary: 'sql' },
  ],
  buildNotice: '`npm run cluster` and the cluster tests run these as separate frontend, history, matching and worker ' +
    'processes on PostgreSQL. Expect 5-10 minutes on 2 cores (9.5 minutes measured on a busy 2-core machine whose ' +
    'Go module cache already held the modules; downloading them adds to that).',
  alternative: `copy a server and a sql binary of ${TEMPORAL_SERVER_VERSION} into the cache folder named above`,
  versionArgs: ['--version'],
};

export const TEMPORAL_UI_TOOL: GoTool = {
  name: 'temporal-ui',
  title: 'Temporal UI server',
  version: TEMPORAL_UI_VERSION,
  packages: [{ path: `${TEMPORAL_UI_MODULE}/cmd/server`, binary: 'server' }],
  buildNotice: 'It serves Temporal Web for `npm run cluster`. Expect about a minute (55 s measured; its module holds ' +
    'the built UI assets, so no JavaScript build is needed).',
  alternative: 'run `npm run cluster -- --no-ui`',
  versionArgs: ['--version'],
};

export interface ServerBinaries {
  server: string;
  sql: string;
  /** schema/postgresql/v12 of the server module: temporal/versioned and visibility/versioned. */
  schemaDir: string;
}

export async function resolveServerBinaries(opts: ResolveGoToolOptions = {}): Promise<ServerBinaries> {
  const { binaries } = await resolveGoTool(TEMPORAL_SERVER_TOOL, opts);
  const moduleDir = await goModuleDir(TEMPORAL_SERVER_MODULE, TEMPORAL_SERVER_VERSION, opts.env);
  return { server: binaries.server!, sql: binaries.sql!, schemaDir: path.join(moduleDir, 'schema', 'postgresql', 'v12') };
}

export interface UiBinaries {
  server: string;
  /** config/docker.yaml of the UI module: the template the temporalio/ui image renders from TEMPORAL_* variables. */
  configTemplate: string;
}

export async function resolveUiBinaries(opts: ResolveGoToolOptions = {}): Promise<UiBinaries> {
  const { binaries } = await resolveGoTool(TEMPORAL_UI_TOOL, opts);
  const moduleDir = await goModuleDir(TEMPORAL_UI_MODULE, TEMPORAL_UI_VERSION, opts.env);
  return { server: binaries.server!, configTemplate: path.join(moduleDir, 'config', 'docker.yaml') };
}
