/**
 * Parses a provider results file into ProviderResultLines. A bad line must fail only its own request, so JSON
 * errors become `malformed` lines (with the custom id recovered from the raw text when possible) instead of
 * aborting the stream the way the SDKs' own JSONL decoders do. The id field is `custom_id` unless the provider names
 * it otherwise (Gemini: `key`).
 */
import { splitJsonlLines, type ByteSource } from './jsonl';
import { asRecord, str, type JsonRecord } from './normalise';
import type { ProviderResultLine } from './types';

/** Maps one parsed line that has a custom id; returns a `malformed` line for shapes it does not recognise. */
export type ResultLineMapper = (record: JsonRecord, customId: string, lineNumber: number) => ProviderResultLine;

/** Yields the parsed lines in blocks, one per block of raw lines (see splitJsonlLines). */
export async function* parseResultLines(
  source: ByteSource,
  mapLine: ResultLineMapper,
  idField = 'custom_id',
): AsyncGenerator<ProviderResultLine[]> {
  for await (const rawLines of splitJsonlLines(source)) {
    yield rawLines.map(({ line, lineNumber }) => parseResultLine(line, lineNumber, mapLine, idField));
  }
}

function parseResultLine(line: string, lineNumber: number, mapLine: ResultLineMapper, idField: string): ProviderResultLine {
  let record: JsonRecord | undefined;
  try {
    record = asRecord(JSON.parse(line));
  } catch {
    // The parser's message quotes the line itself (result bodies), so it is deliberately not kept.
    return malformedLine(line, lineNumber, 'line is not valid JSON', idField);
  }
  const customId = str(record?.[idField]);
  if (!record || customId === undefined) return malformedLine(line, lineNumber, `line has no ${idField}`, idField);
  return mapLine(record, customId, lineNumber);
}

export function malformedLine(line: string, lineNumber: number, errorMessage: string, idField = 'custom_id'): ProviderResultLine {
  const customId = recoverCustomId(line, idField);
  return { kind: 'malformed', ...(customId !== undefined ? { customId } : {}), lineNumber, errorMessage };
}

const idPatterns = new Map<string, RegExp>();

/** Best-effort custom id from a broken line, so the request it belongs to can still be failed (not lost). */
export function recoverCustomId(line: string, idField = 'custom_id'): string | undefined {
  let pattern = idPatterns.get(idField);
  if (!pattern) {
    pattern = new RegExp(`"${idField.replace(/\W/g, '\\$&')}"\\s*:\\s*("(?:[^"\\\\\\n]|\\\\.){1,256}")`);
    idPatterns.set(idField, pattern);
  }
  const quoted = pattern.exec(line)?.[1];
  if (quoted === undefined) return undefined;
  try {
    return str(JSON.parse(quoted));
  } catch {
    return undefined;
  }
}
