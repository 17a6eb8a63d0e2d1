/** Typed errors of the client API: each names its cause so callers (and the CLI) can react precisely. */

export class BatchkeeperError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input was rejected before anything was written. `field` names the offending input (e.g. "requests[3].customId"). */
export class ValidationError extends BatchkeeperError {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`, 'invalid_input');
  }
}

export class NotFoundError extends BatchkeeperError {
  constructor(readonly kind: string, readonly id: string) {
    super(`${kind} ${JSON.stringify(id)} does not exist`, 'not_found');
  }
}

/** The action does not apply to the subject in its current state; nothing was changed. */
export class NotApplicableError extends BatchkeeperError {
  constructor(message: string) {
    super(message, 'not_applicable');
  }
}

/** The idempotency key was used before for different input. */
export class IdempotencyConflictError extends BatchkeeperError {
  constructor(readonly idempotencyKey: string, detail: string) {
    super(`idempotency key ${JSON.stringify(idempotencyKey)} was already used for a different submission (${detail})`, 'idempotency_conflict');
  }
}

/** A service batchkeeper needs could not be reached; `service` and `where` name it. Nothing was changed. */
export class UnavailableError extends BatchkeeperError {
  constructor(readonly service: 'PostgreSQL' | 'Temporal', readonly where: string, reason: string) {
    super(`cannot reach ${service} at ${where}: ${reason}`, 'unavailable');
  }
}

/** A wait ended before the batch or job did; it goes on. */
export class WaitTimeoutError extends BatchkeeperError {
  constructor(readonly what: string, readonly timeoutMs: number) {
    super(`${what} is still running after ${timeoutMs} ms of waiting`, 'timeout');
  }
}
