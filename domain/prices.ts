/**
 * Token prices for cost reporting: list prices per million tokens by provider and model, with the batch discount
 * applied (providers bill batches at about half price). Configured on the worker; no built-in table, because
 * prices change and a stale one would mislead.
 *
 * A request costs (input - cached - cacheWrite) x input + cached x cachedInput + cacheWrite x cacheWrite
 * + (output - reasoning) x output + reasoning x reasoning, per million tokens; a price not given falls back to the
 * input price (cached input, cache writes) or the output price (reasoning: billed as output unless priced apart).
 */
export interface ModelPrice {
  inputPerMTokUsd: number;
  outputPerMTokUsd: number;
  /** Input tokens read from the prompt cache (OpenAI/xAI cached input, Anthropic cache reads, Gemini cached content). */
  cachedInputPerMTokUsd?: number;
  /** Input tokens written to the prompt cache (Anthropic cache writes). */
  cacheWritePerMTokUsd?: number;
  /** Reasoning output tokens, when priced apart from other output. */
  reasoningPerMTokUsd?: number;
}

/** A ModelPrice with the discount applied and every rate resolved. */
export type ResolvedPrice = Required<ModelPrice>;

export interface PriceTable {
  /** Multiplier applied to list prices for batch use. Default 0.5. */
  batchDiscount?: number;
  models: Record<string, Record<string, ModelPrice>>;
}

export function priceFor(table: PriceTable | undefined, provider: string, model: string): ResolvedPrice | null {
  const price = table?.models[provider]?.[model];
  if (!price) return null;
  const discount = table?.batchDiscount ?? 0.5;
  return {
    inputPerMTokUsd: price.inputPerMTokUsd * discount,
    outputPerMTokUsd: price.outputPerMTokUsd * discount,
    cachedInputPerMTokUsd: (price.cachedInputPerMTokUsd ?? price.inputPerMTokUsd) * discount,
    cacheWritePerMTokUsd: (price.cacheWritePerMTokUsd ?? price.inputPerMTokUsd) * discount,
    reasoningPerMTokUsd: (price.reasoningPerMTokUsd ?? price.outputPerMTokUsd) * discount,
  };
}
