import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';

/**
 * Handlers the stock worker registers, for the demo and for trying the platform out. Apps register their own by
 * calling createBatchkeeperWorker with their handlers (see README).
 */
export const exampleHandlers: BatchHandlerRegistry = {
  /** Prints counts only: bodies never go to logs. */
  'log-summary': {
    async onComplete({ batch, outcome, summary }) {
      console.log(
        `[batchkeeper] batch ${batch.id} ${outcome}: ${summary.succeeded} succeeded, ${summary.errored} errored, ` +
          `${summary.expired} expired, ${summary.canceled} canceled, ${summary.missing} missing`,
      );
    },
    async onFailure({ batch, deadLetter }) {
      console.log(`[batchkeeper] batch ${batch.id} discarded after ${deadLetter.step} failed: ${deadLetter.errorClass}`);
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
