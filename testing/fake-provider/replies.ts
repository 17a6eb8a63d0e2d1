/** Deterministic stand-in model output: the same request always gets the same text and token counts. */

export interface FakeReply {
  text: string;
  /** Every input token, cached and cache-written ones included (each format reports them its provider's way). */
  inputTokens: number;
  /** Output tokens besides reasoning. */
  outputTokens: number;
  /** Input tokens read from the prompt cache: half the input when the request asks for caching, else 0. */
  cachedInputTokens: number;
  /** Input tokens written to the prompt cache (Anthropic reports them): a quarter of the input when caching, else 0. */
  cacheWriteTokens: number;
  /** Reasoning tokens: 7 when the request asks for reasoning or thinking, else 0. */
  reasoningTokens: number;
}

/** Fields that ask for prompt caching (OpenAI/xAI prompt_cache_key, Anthropic cache_control, Gemini cachedContent). */
const CACHE_HINT = /"(prompt_cache_key|cache_control|cachedContent)"/;
/** Fields that ask for reasoning (OpenAI reasoning_effort / Responses reasoning, Anthropic thinking, Gemini thinkingConfig). */
const REASONING_HINT = /"(reasoning_effort|reasoning|thinking|thinkingConfig)"/;
export const FAKE_REASONING_TOKENS = 7;

/** Characters appended to every reply text (0 by default): large result files for benchmarks (bench/ingest.ts). */
let replyPaddingChars = 0;
const PADDING_SENTENCE = 'The quick brown fox jumps over the lazy dog while the batch keeps its results in PostgreSQL. ';

/** Sets the padding of every later reply in this process; 0 turns it off. */
export function setReplyPadding(chars: number): void {
  if (!Number.isInteger(chars) || chars < 0) throw new Error('reply padding must be a non-negative integer');
  replyPaddingChars = chars;
}

export function fakeReply(customId: string, params: Record<string, unknown>): FakeReply {
  const base = `Fake reply to ${customId}.`;
  const text = replyPaddingChars > 0
    ? `${base} ${PADDING_SENTENCE.repeat(Math.ceil(replyPaddingChars / PADDING_SENTENCE.length)).slice(0, replyPaddingChars)}`
    : base;
  const promptChars = textLength([params.system, params.messages, params.input, params.prompt, params.systemInstruction, params.contents]);
  // ~4 characters per token, like the providers' rule of thumb; never 0 so usage sums are visible.
  const inputTokens = Math.max(1, Math.ceil(promptChars / 4));
  const json = JSON.stringify(params);
  const caching = CACHE_HINT.test(json);
  return {
    text, inputTokens, outputTokens: Math.ceil(text.length / 4),
    cachedInputTokens: caching ? Math.floor(inputTokens / 2) : 0,
    cacheWriteTokens: caching ? Math.floor(inputTokens / 4) : 0,
    reasoningTokens: REASONING_HINT.test(json) ? FAKE_REASONING_TOKENS : 0,
  };
}

/** Total length of every string inside value (message contents, nested blocks...). */
function textLength(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length;
  if (depth > 8 || typeof value !== 'object' || value === null) return 0;
  let total = 0;
  for (const item of Array.isArray(value) ? value : Object.values(value)) total += textLength(item, depth + 1);
  return total;
}
