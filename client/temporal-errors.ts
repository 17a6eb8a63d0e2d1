import { WorkflowUpdateFailedError } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { NotApplicableError, NotFoundError } from './errors';

/**
 * Runs a signal/update/query against a workflow and turns Temporal's errors into the client's typed ones: a missing
 * workflow is NotFound, a rejected update (its validator said no) is NotApplicable with the workflow's reason.
 */
export async function withWorkflowErrors<T>(kind: string, id: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new NotFoundError(`${kind} workflow`, id);
    if (error instanceof WorkflowUpdateFailedError) {
      const reason = error.cause?.message ?? error.message;
      throw new NotApplicableError(`${kind} ${id}: ${reason}`);
    }
    const message = error instanceof Error ? error.message : String(error);
    if (/workflow execution already completed|not found/i.test(message)) {
      throw new NotApplicableError(`${kind} ${id}: its workflow is no longer running (${message})`);
    }
    throw error;
  }
}
