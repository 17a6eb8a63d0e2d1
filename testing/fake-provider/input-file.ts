/**
 * Uploaded batch input files (JSONL): parsed into requests once, stored with their bad lines, which fail the batch at
 * validation as on the real APIs. OpenAI and xAI lines are `{custom_id, url, body}`, Gemini's `{key, request}`.
 */
import { randomBytes } from 'node:crypto';
import { parseMultipart } from './multipart';
import { FakeHttpError, type RequestContext } from './router';
import type { FakeFile, FakeRequest, FakeState, ValidationError } from './state';

export interface LineFields {
  id: string;
  body: string;
}

export const OPENAI_LINE: LineFields = { id: 'custom_id', body: 'body' };

export interface ParsedInput {
  requests: FakeRequest[];
  urls: string[];
  model: string;
  errors: ValidationError[];
}

/** Stores an input file; `id` defaults to an OpenAI-style `file-…` id. */
export function storeInputFile(
  state: FakeState,
  input: {
    data: Buffer; filename: string; purpose: string; fields: LineFields; provider: string; id?: string;
    expiresAfter?: FakeFile['expiresAfter'];
  },
): FakeFile {
  const { requests, urls, model, errors } = parseInputJsonl(input.data, input.fields);
  const file: FakeFile = {
    id: input.id ?? `file-${randomBytes(12).toString('hex')}`,
    provider: input.provider,
    expiresAfter: input.expiresAfter ?? null,
    filename: input.filename,
    purpose: input.purpose,
    bytes: input.data.length,
    createdAt: Date.now(),
    content: input.data,
    requests,
    urls,
    model,
    parseErrors: errors,
  };
  state.addFile(file);
  return file;
}

/** A multipart upload's `file` part (OpenAI also insists on `purpose`; xAI sends the file alone). */
export function uploadedFilePart(
  ctx: RequestContext, body: Buffer, requirePurpose: boolean,
): { data: Buffer; filename: string; purpose: string; expiresAfter: FakeFile['expiresAfter'] } {
  const parts = parseMultipart(body, ctx.req.headers['content-type'] ?? '');
  const field = (name: string) => parts.find((part) => part.name === name)?.data.toString('utf8');
  const filePart = parts.find((part) => part.name === 'file');
  const purpose = parts.find((part) => part.name === 'purpose')?.data.toString('utf8');
  if (!filePart) throw new FakeHttpError(400, 'invalid_request_error', 'Missing required parameter: file.', 'missing_required_parameter');
  if (requirePurpose && !purpose) throw new FakeHttpError(400, 'invalid_request_error', 'Missing required parameter: purpose.', 'missing_required_parameter');
  return { data: filePart.data, filename: filePart.filename ?? 'upload.jsonl', purpose: purpose ?? 'batch', expiresAfter: expiresAfter(field) };
}

/** OpenAI's `expires_after[anchor]` + `expires_after[seconds]` form fields (3600 to 2592000 s after created_at). */
function expiresAfter(field: (name: string) => string | undefined): FakeFile['expiresAfter'] {
  const anchor = field('expires_after[anchor]');
  const seconds = field('expires_after[seconds]');
  if (anchor === undefined && seconds === undefined) return null;
  const value = Number(seconds);
  if (anchor !== 'created_at' || !Number.isInteger(value) || value < 3600 || value > 2_592_000) {
    throw new FakeHttpError(400, 'invalid_request_error', 'expires_after needs anchor created_at and seconds from 3600 to 2592000.', 'invalid_value');
  }
  return { anchor, seconds: value };
}

function parseInputJsonl(data: Buffer, fields: LineFields): ParsedInput {
  const requests: FakeRequest[] = [];
  const urls = new Set<string>();
  const errors: ValidationError[] = [];
  const seen = new Set<string>();
  let model = '';
  data
    .toString('utf8')
    .split('\n')
    .forEach((text, index) => {
      if (text.trim() === '') return;
      const line = index + 1;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        errors.push({ code: 'invalid_json_line', message: `Line ${line} is not valid JSON.`, line });
        return;
      }
      const customId = parsed[fields.id];
      const body = parsed[fields.body];
      if (typeof customId !== 'string' || !body || typeof body !== 'object') {
        errors.push({ code: 'invalid_request', message: `Line ${line} needs ${fields.id} and ${fields.body}.`, line });
        return;
      }
      if (seen.has(customId)) errors.push({ code: 'duplicate_custom_id', message: `Duplicate ${fields.id} '${customId}'.`, line });
      seen.add(customId);
      const { model: lineModel, ...params } = body as Record<string, unknown>;
      if (typeof lineModel === 'string') {
        if (model && lineModel !== model) errors.push({ code: 'mismatched_model', message: 'All lines must use the same model.', line });
        model ||= lineModel;
      }
      urls.add(typeof parsed.url === 'string' ? parsed.url : '');
      requests.push({ customId, params });
    });
  if (requests.length === 0 && errors.length === 0) errors.push({ code: 'empty_file', message: 'The input file is empty.', line: null });
  return { requests, urls: [...urls], model, errors };
}
