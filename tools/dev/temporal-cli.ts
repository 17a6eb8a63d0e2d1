/**
 * Finds (or builds once) the Temporal CLI binary whose `server start-dev` is our local Temporal server.
 *
 * Order: $TEMPORAL_CLI_PATH → `temporal` on PATH → the cached or freshly built
 * `go install github.com/temporalio/cli/cmd/temporal@<ver>` (tools/dev/go-tool.ts: project `.cache/temporal-cli/<ver>/`,
 * then the per-user cache, then a build).
 *
 * Why build: no Temporal server binary is on npm or in Debian, and @temporalio/testing's own download needs
 * temporal.download, which is unreachable on our machines. v1.5.1 is the newest tag `go install pkg@version` accepts
 * (v1.6.0+ use a replace directive). It embeds Temporal Server 1.29.1 and UI 2.42.1.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { findOnPath, isExecutableFile, resolveGoTool, type GoTool, type ResolveGoToolOptions } from './go-tool';

export { isExecutableFile } from './go-tool';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

export const TEMPORAL_CLI_TOOL: GoTool = {
  name: 'temporal-cli',
  title: 'Temporal CLI',
  version: TEMPORAL_CLI_VERSION,
  packages: [{ path: TEMPORAL_CLI_MODULE, binary: 'temporal' }],
  buildNotice: 'Its `server start-dev` is the local Temporal server that tests and `npm start` use. The first build ' +
    'downloads ~2 GB of Go modules and compiles Temporal Server + UI: expect 2-5 minutes.',
  alternative: 'set TEMPORAL_CLI_PATH to an existing Temporal CLI binary (any >= 1.0), or put `temporal` on PATH',
  versionArgs: ['--version'],
};

export type TemporalCliSource = 'env' | 'path' | 'cache' | 'built';

export type ResolveTemporalCliOptions = ResolveGoToolOptions;

export interface ResolvedTemporalCli {
  path: string;
  source: TemporalCliSource;
}

const BINARY_NAME = process.platform === 'win32' ? 'temporal.exe' : 'temporal';

export async function resolveTemporalCli(opts: ResolveTemporalCliOptions = {}): Promise<ResolvedTemporalCli> {
  const env = opts.env ?? process.env;

  // 1. Explicit override.
  const fromEnv = env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    const p = path.resolve(fromEnv);
    if (!existsSync(p)) {
      throw new Error(`TEMPORAL_CLI_PATH is set to ${fromEnv}, but that file does not exist. ` +
        'Point it at a Temporal CLI binary (`temporal`), or unset it to use the one on PATH or the cached/built one.');
    }
    if (!(await isExecutableFile(p))) {
      throw new Error(`TEMPORAL_CLI_PATH is set to ${fromEnv}, but that is not an executable file (chmod +x it?).`);
    }
    return { path: p, source: 'env' };
  }

  // 2. `temporal` on PATH.
  const onPath = await findOnPath(BINARY_NAME, env.PATH ?? '');
  if (onPath) return { path: onPath, source: 'path' };

  // 3. Cached, else built.
  const resolved = await resolveGoTool(TEMPORAL_CLI_TOOL, {
    ...opts,
    onProgress: opts.onProgress ?? ((msg: string) => process.stderr.write(`[temporal-cli] ${msg}\n`)),
  });
  return { path: resolved.binaries.temporal!, source: resolved.source };
}
