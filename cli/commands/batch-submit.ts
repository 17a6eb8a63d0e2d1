/** `batchkeeper batches submit --file requests.jsonl`: a batch from a JSONL file, one request per line. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ValidationError } from '../../client/errors';
import type { SubmitBatchInput } from '../../client/validate-batch';
import { flag, parseDuration, positiveInt, str, UsageError, type CommandSpec } from '../command';
import type { CliContext } from '../context';
import { waitAndDescribe } from './batch-wait';

type Request = SubmitBatchInput['requests'][number];

/**
 * One line: `{"customId": "...", "params": {...}}`, or a line of an OpenAI batch input file
 * (`{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`), whose body's model must
 * be the batch's. Blank lines are skipped. Returns the requests and the file line of each.
 */
async function readRequests(file: string, model: string): Promise<{ requests: Request[]; lines: number[] }> {
  const requests: Request[] = [];
  const lines: number[] = [];
  const stream = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (error) {
    throw new ValidationError('--file', `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let lineNumber = 0;
  for await (const text of createInterface({ input: stream, crlfDelay: Infinity })) {
    lineNumber += 1;
    if (!text.trim()) continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(text);
    } catch {
      throw new ValidationError(`--file line ${lineNumber}`, 'is not JSON'); // the parser's message would quote the line
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new ValidationError(`--file line ${lineNumber}`, 'must be a JSON object with customId and params (or custom_id and body)');
    }
    if ('custom_id' in record || 'body' in record) {
      const body = record.body as Record<string, unknown> | undefined;
      if (body && typeof body === 'object' && 'model' in body) {
        if (body.model !== model) throw new ValidationError(`--file line ${lineNumber}`, `body.model ${JSON.stringify(body.model)} is not the batch model ${JSON.stringify(model)}`);
        delete body.model;
      }
      requests.push({ customId: record.custom_id as string, params: body as Record<string, unknown> });
    } else {
      requests.push({ customId: record.customId as string, params: record.params as Record<string, unknown> });
    }
    lines.push(lineNumber);
  }
  return { requests, lines };
}

/** A request's validation error names the file line it came from. */
function onFileLine(error: unknown, lines: number[]): unknown {
  if (!(error instanceof ValidationError)) return error;
  const match = /^requests\[(\d+)\](.*)$/.exec(error.field);
  if (!match) return error;
  const line = lines[Number(match[1])];
  return new ValidationError(`--file line ${line}${match[2] ? ` (${match[2].replace(/^\./, '')})` : ''}`, error.message.slice(error.field.length + 2));
}

function jsonObject(field: string, raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    throw new ValidationError(field, 'is not valid JSON');
  }
}

export const submit: CommandSpec = {
  name: 'submit',
  summary: 'submit a batch from a JSONL file (one {customId, params} per line, or an OpenAI batch input file)',
  options: {
    file: { type: 'string', value: 'FILE', description: 'the requests, one JSON object per line (required)' },
    provider: { type: 'string', value: 'P', description: 'provider (required): openai, anthropic, gemini, xai, ...' },
    model: { type: 'string', value: 'M', description: 'model of every request (required)' },
    handler: { type: 'string', value: 'H', description: 'completion handler registered on the worker' },
    'idempotency-key': { type: 'string', value: 'K', description: 'submitting again with this key returns the same batch' },
    metadata: { type: 'string', value: 'JSON', description: 'small JSON object for the handler (at most 16 KB)' },
    'poll-schedule': { type: 'string', value: 'LIST', description: 'delays between polls, e.g. 60s,2m,5m (the last repeats)' },
    'max-age': { type: 'string', value: 'DURATION', description: 'deadline from submission (default 26h)' },
    'max-request-attempts': { type: 'string', value: 'N', description: 'submissions per request for retryable failures (1-10)' },
    wait: { type: 'boolean', description: 'wait for the batch to finish and print its outcome' },
    timeout: { type: 'string', value: 'DURATION', description: 'with --wait: give up waiting after this long (exit 4)' },
  },
  notes: 'Example: batchkeeper batches submit --file reviews.jsonl --provider openai --model gpt-4o-mini --handler summarise-reviews --wait',
  async run(ctx: CliContext, _args, values) {
    const file = str(values, 'file');
    const provider = str(values, 'provider');
    const model = str(values, 'model');
    if (!file || !provider || !model) throw new UsageError('--file, --provider and --model are required');
    const schedule = str(values, 'poll-schedule');
    const maxAge = str(values, 'max-age');
    const timeout = str(values, 'timeout');
    const input: SubmitBatchInput = {
      provider, model, requests: [],
      handler: str(values, 'handler'),
      idempotencyKey: str(values, 'idempotency-key'),
      metadata: jsonObject('--metadata', str(values, 'metadata')),
      pollScheduleMs: schedule === undefined ? undefined : schedule.split(',').map((entry) => parseDuration('--poll-schedule', entry)),
      maxAgeMs: maxAge === undefined ? undefined : parseDuration('--max-age', maxAge),
      maxRequestAttempts: positiveInt(values, 'max-request-attempts', 10),
    };
    const timeoutMs = timeout === undefined ? undefined : parseDuration('--timeout', timeout);
    const { requests, lines } = await readRequests(file, model);
    const client = await ctx.client();
    const submitted = await client.submitBatch({ ...input, requests }).catch((error: unknown) => {
      throw onFileLine(error, lines);
    });
    const summary = { ...submitted, requests: requests.length };
    if (!flag(values, 'wait')) {
      return {
        json: summary,
        human: () => `${submitted.created ? 'submitted' : 'found existing'} batch ${submitted.batchId} with ${requests.length} requests (workflow ${submitted.workflowId})`,
      };
    }
    ctx.progress(`submitted batch ${submitted.batchId} (${requests.length} requests); waiting for it to finish...`);
    return waitAndDescribe(client, submitted.batchId, timeoutMs, summary);
  },
};
