/**
 * Handlers for the observability tests (BATCHKEEPER_HANDLERS_MODULE of a stock worker): a completion handler that
 * takes a known time, so its duration histogram can be checked, and a job that always fails, so it is dead-lettered.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../../activities/handlers';

export const HANDLER_MS = 250;

export const handlers: BatchHandlerRegistry = {
  'take-a-moment': {
    async onComplete() {
      await sleep(HANDLER_MS);
    },
  },
};

export const jobExecutors: JobExecutorRegistry = {
  'always-fails': {
    async execute() {
      throw new Error('the downstream store is unavailable');
    },
  },
};
