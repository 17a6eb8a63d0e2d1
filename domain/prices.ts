/**
 * Token prices for cost reporting: list prices per million tokens by provider and model, with the batch discount
 * applied (providers bill batches at about half price). Configured on the worker; no built-in table, because
 * prices change and a stale one would mislead.
 */
export interface ModelPrice {
  inputPerMTokUsd: number;
  outputPerMTokUsd: number;
}

export interface PriceTable {
  /** Multiplier applied to list prices for batch use. Default 0.5. */
  batchDiscount?: number;
  models: Record<string, Record<string, ModelPrice>>;
}

export function priceFor(table: PriceTable | undefined, provider: string, model: string): ModelPrice | null {
  const price = table?.models[provider]?.[model];
  if (!price) return null;
  const discount = table?.batchDiscount ?? 0.5;
  return { inputPerMTokUsd: price.inputPerMTokUsd * discount, outputPerMTokUsd: price.outputPerMTokUsd * discount };
}
