/**
 * Prompt-token estimates for admission control. OpenAI model families are counted with a maintained tokenizer
 * (`gpt-tokenizer`, pure JavaScript: o200k_base for gpt-4o, gpt-4.1, gpt-5 and the o-series, cl100k_base for gpt-4
 * and gpt-3.5), over the text a request sends (message contents, input, prompt, instructions, system, tools) plus
 * OpenAI's chat framing (3 tokens per message, 3 per reply). No maintained JavaScript tokenizer exists for the
 * other families (Anthropic offers a count API, Gemini a countTokens call, both network round trips per request),
 * so they are estimated at one token per 4 characters of the request body's JSON: above the real count for
 * English text, which is the safe side for a queue limit.
 */
import type { Queryable } from '../db/queryable';
import { roundParamsPage } from '../db/requests-store';

export type Estimator = 'o200k_base' | 'cl100k_base' | 'chars/4';

const O200K = /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o|gpt-oss|ft:gpt-4o|ft:gpt-4\.1)/i;
const CL100K = /^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada-002|ft:gpt-3\.5|ft:gpt-4)/i;

/** The estimator used for a model: a tokenizer for OpenAI families (any provider serving them), else chars/4. */
export function estimatorFor(model: string): Estimator {
  if (O200K.test(model)) return 'o200k_base';
  if (CL100K.test(model)) return 'cl100k_base';
  return 'chars/4';
}

type CountTokens = (text: string) => number;
const tokenizers = new Map<Estimator, CountTokens>();

/** Loaded on first use (the encodings are a few MB of JavaScript each). */
function tokenizer(estimator: Exclude<Estimator, 'chars/4'>): CountTokens {
  let count = tokenizers.get(estimator);
  if (!count) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded = estimator === 'o200k_base' ? require('gpt-tokenizer/encoding/o200k_base') : require('gpt-tokenizer/encoding/cl100k_base');
    count = (text: string) => loaded.countTokens(text) as number;
    tokenizers.set(estimator, count);
  }
  return count;
}

const TEXT_FIELDS = ['messages', 'input', 'prompt', 'instructions', 'system', 'tools', 'contents'];
const PER_MESSAGE = 3;
const PER_REPLY = 3;

function collectText(value: unknown, into: string[]): void {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) for (const item of value) collectText(item, into);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) collectText(item, into);
}

/** Estimated prompt tokens of one request body (the provider-native params, without the model). */
export function estimateRequestTokens(estimator: Estimator, params: Record<string, unknown>, paramsJson?: string): number {
  if (estimator === 'chars/4') return Math.ceil((paramsJson ?? JSON.stringify(params)).length / 4);
  const count = tokenizer(estimator);
  const texts: string[] = [];
  for (const field of TEXT_FIELDS) if (params[field] !== undefined) collectText(params[field], texts);
  let tokens = texts.reduce((sum, text) => sum + count(text), 0);
  if (Array.isArray(params.messages)) tokens += params.messages.length * PER_MESSAGE + PER_REPLY;
  return tokens;
}

const PAGE = 1000;

/** Estimated prompt tokens of every request of the round, read page by page (`progress` after each page). */
export async function estimateRoundTokens(
  db: Queryable, batchId: string, round: number, model: string, progress?: (requests: number) => void,
): Promise<{ tokens: number; requests: number; estimator: Estimator }> {
  const estimator = estimatorFor(model);
  let tokens = 0;
  let requests = 0;
  for (let after = -1; ;) {
    const page = await roundParamsPage(db, batchId, round, after, PAGE);
    for (const row of page) {
      tokens += estimateRequestTokens(estimator, estimator === 'chars/4' ? {} : JSON.parse(row.paramsJson), row.paramsJson);
      requests += 1;
    }
    progress?.(requests);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.position;
  }
  return { tokens, requests, estimator };
}
