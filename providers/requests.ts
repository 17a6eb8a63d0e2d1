/**
 * Walks the requests of a batch exactly once, rejecting what the provider would reject anyway (duplicate or
 * invalid custom ids, an empty batch) before anything is uploaded. Results are joined by custom id, so a
 * duplicate would make two requests indistinguishable. Also groups JSONL lines into upload-sized chunks.
 */
import { ProviderError } from './errors';
import type { ProviderRequest } from './types';

export async function* checkedRequests(
  provider: string,
  requests: AsyncIterable<ProviderRequest> | Iterable<ProviderRequest>,
  customIdPattern?: RegExp,
): AsyncGenerator<ProviderRequest> {
  const seen = new Set<string>();
  for await (const request of requests) {
    const id = request.customId;
    if (typeof id !== 'string' || id === '' || (customIdPattern && !customIdPattern.test(id))) {
      throw invalid(provider, 'invalid_custom_id', `custom id ${JSON.stringify(String(id).slice(0, 80))} is not accepted by ${provider}`);
    }
    if (seen.has(id)) throw invalid(provider, 'duplicate_custom_id', `custom id ${JSON.stringify(id)} appears twice`);
    seen.add(id);
    yield request;
  }
  if (seen.size === 0) throw invalid(provider, 'empty_batch', 'a batch needs at least one request');
}

function invalid(provider: string, code: string, detail: string): ProviderError {
  return new ProviderError(`${provider} submit: ${detail}`, { provider, code, retryable: false });
}

const JSONL_CHUNK_CHARS = 1 << 16;

/** JSONL text joined into ~64 KB chunks, so an upload is not assembled from 50,000 tiny parts. */
export async function* jsonlChunks(lines: AsyncIterable<string>): AsyncGenerator<string> {
  let chunk = '';
  for await (const line of lines) {
    chunk += `${line}\n`;
    if (chunk.length >= JSONL_CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}
