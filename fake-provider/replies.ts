/** Deterministic stand-in model output: the same request always gets the same text and token counts. */

export interface FakeReply {
  text: string;
  inputTokens: number;
  outputTokens: number;
}

export function fakeReply(customId: string, params: Record<string, unknown>): FakeReply {
  const text = `Fake reply to ${customId}.`;
  const promptChars = textLength([params.system, params.messages, params.input, params.prompt]);
  // ~4 characters per token, like the providers' rule of thumb; never 0 so usage sums are visible.
  return { text, inputTokens: Math.max(1, Math.ceil(promptChars / 4)), outputTokens: Math.ceil(text.length / 4) };
}

/** Total length of every string inside value (message contents, nested blocks...). */
function textLength(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length;
  if (depth > 8 || typeof value !== 'object' || value === null) return 0;
  let total = 0;
  for (const item of Array.isArray(value) ? value : Object.values(value)) total += textLength(item, depth + 1);
  return total;
}
