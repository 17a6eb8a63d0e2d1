import type { RetrySettings } from '../domain/types';
import { ValidationError } from './errors';
import { validateRetrySettings } from './validate-batch';
import { requireStorableJson, requireStorableText } from './validate-text';

/** What an app passes to startJob. */
export interface StartJobInput {
  type: string;
  /** Small JSON input (at most 16 KB), or a reference (inputRef) the executor resolves itself. */
  input?: unknown;
  inputRef?: string;
  idempotencyKey?: string;
  retry?: Partial<RetrySettings>;
}

const MAX_INPUT_BYTES = 16 * 1024;

/** Rejects a bad job before anything is written, naming the field. */
export function validateStartJob(input: StartJobInput): void {
  if (typeof input?.type !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(input.type)) {
    throw new ValidationError('type', 'must be a job type name of 1-100 characters of [A-Za-z0-9_.:-]');
  }
  if (input.input !== undefined && requireStorableJson(input.input, 'input') > MAX_INPUT_BYTES) {
    throw new ValidationError('input', 'must be at most 16 KB of JSON; pass larger inputs by reference (inputRef)');
  }
  if (input.inputRef !== undefined && (typeof input.inputRef !== 'string' || input.inputRef.length > 2000)) {
    throw new ValidationError('inputRef', 'must be a string of at most 2000 characters');
  }
  if (input.idempotencyKey !== undefined && (typeof input.idempotencyKey !== 'string' || !input.idempotencyKey || input.idempotencyKey.length > 200)) {
    throw new ValidationError('idempotencyKey', 'must be a string of 1-200 characters');
  }
  if (input.inputRef !== undefined) requireStorableText(input.inputRef, 'inputRef');
  if (input.idempotencyKey !== undefined) requireStorableText(input.idempotencyKey, 'idempotencyKey');
  if (input.retry !== undefined) validateRetrySettings(input.retry, 'retry');
}
