import { log } from '@temporalio/activity';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';

/**
 * Handlers the stock worker registers, for the demo and for trying the platform out. Apps register their own by
 * calling createBatchkeeperWorker with their handlers (see README).
 */
export const exampleHandlers: BatchHandlerRegistry = {
  /**
   * Logs counts only (bodies never go to logs), through the activity's logger: the worker's log format, with the
   * batch id and step on the line.
   */
  'log-summary': {
    async onComplete({ batch, outcome, summary }) {
      log.info(
        `batch ${batch.id} ${outcome}: ${summary.succeeded} succeeded, ${summary.errored} errored, ` +
          `${summary.expired} expired, ${summary.canceled} canceled, ${summary.missing} missing`,
        { outcome, ...summary },
      );
    },
    async onFailure({ batch, deadLetter }) {
      log.warn(`batch ${batch.id} discarded after ${deadLetter.step} failed: ${deadLetter.errorClass}`, { failedStep: deadLetter.step, errorClass: deadLetter.errorClass });
    },
  },
};

export const exampleJobExecutors: JobExecutorRegistry = {
  /** Echoes its input back as output; handy for checking a deployment end to end. */
  echo: {
    async execute(input) {
      return { echoed: input ?? null };
    },
  },
};
