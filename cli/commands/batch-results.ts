/** `batchkeeper batches results <batchId>`: one page as a table, or every result exported as JSONL. */
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BatchkeeperClient } from '../../client/batchkeeper-client';
import { ValidationError } from '../../client/errors';
import { requireUuid } from '../../client/ids';
import { REQUEST_STATUSES, type RequestStatus } from '../../domain/statuses';
import { LIMIT_OPTION, oneOf, positiveInt, str, UsageError, type CommandOutput, type CommandSpec } from '../command';
import type { CliContext } from '../context';
import { table, truncate } from '../format';

const EXPORT_PAGE = 1000;

/** Every result of the batch in submission order, one JSON line each, page by page (flat memory, stdout's pace). */
async function exportResults(client: BatchkeeperClient, batchId: string, status: RequestStatus | undefined, sink: NodeJS.WritableStream): Promise<number> {
  let after: number | undefined;
  let written = 0;
  for (;;) {
    const page = await client.listResults(batchId, { after, limit: EXPORT_PAGE, status });
    for (const item of page.items) {
      if (!sink.write(`${JSON.stringify(item)}\n`)) await once(sink, 'drain');
      written += 1;
    }
    if (page.next === undefined) return written;
    after = page.next;
  }
}

/**
 * To a file: written beside it under a temporary name and renamed once complete, so a failed export leaves no half
 * file; an existing file is never overwritten.
 */
async function exportToFile(client: BatchkeeperClient, batchId: string, status: RequestStatus | undefined, file: string): Promise<number> {
  const partial = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.partial`);
  const out = createWriteStream(partial, { flags: 'wx' });
  await once(out, 'open').catch((error: NodeJS.ErrnoException) => {
    throw new ValidationError('--output', `cannot be written (${error.code ?? error.message})`);
  });
  try {
    const written = await exportResults(client, batchId, status, out);
    out.end();
    await once(out, 'finish');
    await rename(partial, file).catch((error: NodeJS.ErrnoException) => {
      throw new ValidationError('--output', `cannot be written (${error.code ?? error.message})`);
    });
    return written;
  } catch (error) {
    out.destroy();
    await rm(partial, { force: true });
    throw error;
  }
}

async function exportCommand(ctx: CliContext, batchId: string, status: RequestStatus | undefined, file: string | undefined): Promise<CommandOutput> {
  const client = await ctx.client();
  await client.getBatch(batchId); // an unknown batch is an error, not an empty export
  if (file === undefined) {
    const written = await exportResults(client, batchId, status, ctx.stream);
    ctx.progress(`exported ${written} results of batch ${batchId}`);
    return { json: { batchId, written }, human: () => '', streamed: true };
  }
  if (existsSync(file)) throw new ValidationError('--output', `${file} exists: choose another name`);
  const written = await exportToFile(client, batchId, status, file);
  return { json: { batchId, file, written }, human: () => `exported ${written} results of batch ${batchId} to ${file}` };
}

export const results: CommandSpec = {
  name: 'results',
  summary: 'per-request results in submission order: a page as a table, or all of them as JSONL (prints result bodies)',
  args: ['batchId'],
  options: {
    status: { type: 'string', value: 'S', description: `only requests in this status: ${REQUEST_STATUSES.join(', ')}` },
    format: { type: 'string', value: 'table|jsonl', description: 'table (one page, default) or jsonl (every result, streamed, one JSON object per line)' },
    output: { type: 'string', value: 'FILE', description: 'with --format jsonl: write to FILE (never overwritten) instead of stdout' },
    after: { type: 'string', value: 'POS', description: 'table: start after this position (the "next" of the previous page)' },
    ...LIMIT_OPTION,
  },
  async run(ctx, [batchId], values) {
    requireUuid('batch', batchId);
    const status = oneOf('--status', str(values, 'status'), REQUEST_STATUSES);
    const format = oneOf('--format', str(values, 'format'), ['table', 'jsonl'] as const) ?? 'table';
    const output = str(values, 'output');
    if (format === 'jsonl') {
      if (values.json && output === undefined) throw new UsageError('--format jsonl writes JSON lines to stdout: give --output FILE to use --json');
      return exportCommand(ctx, batchId, status, output);
    }
    if (output !== undefined) throw new UsageError('--output goes with --format jsonl');
    const afterRaw = str(values, 'after');
    const after = afterRaw === undefined ? undefined : afterRaw === '0' ? 0 : positiveInt(values, 'after', Number.MAX_SAFE_INTEGER);
    const limit = positiveInt(values, 'limit', 1000);
    const page = await (await ctx.client()).listResults(batchId, { status, after, limit });
    return {
      json: page,
      human: () => {
        if (!page.items.length) return 'no results match';
        const rows = table(
          ['POS', 'CUSTOM ID', 'STATUS', 'TOKENS', 'ERROR', 'RESULT'],
          page.items.map((item) => [
            String(item.position), item.customId, item.status,
            item.inputTokens === null ? '-' : `${item.inputTokens}/${item.outputTokens ?? 0}`,
            item.errorCode ? `${item.errorCode}${item.errorMessage ? `: ${truncate(item.errorMessage, 60)}` : ''}` : '-',
            item.result === null || item.result === undefined ? '-' : JSON.stringify(item.result),
          ]),
        );
        return page.next === undefined ? rows : `${rows}\nmore: --after ${page.next}`;
      },
    };
  },
};
