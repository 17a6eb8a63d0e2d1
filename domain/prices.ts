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

/** BATCHKEEPER_PRICES='{"batchDiscount":0.5,"models":{"openai":{"gpt-4o-mini":{"inputPerMTokUsd":0.15,"outputPerMTokUsd":0.6}}}}' */
export function priceTableFromEnv(env: NodeJS.ProcessEnv = process.env): PriceTable | undefined {
  const raw = env.BATCHKEEPER_PRICES;
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as PriceTable;
    if (!parsed || typeof parsed !== 'object' || typeof parsed.models !== 'object') throw new Error('needs a "models" object');
    return parsed;
  } catch (error) {
    throw new Error(`BATCHKEEPER_PRICES is not a valid price table: ${(error as Error).message}`);
  }
}
