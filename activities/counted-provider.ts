import { ProviderError } from '../providers/errors';
import type { BatchProvider } from '../providers/types';
import type { StepMetrics } from './step-metrics';

/** The outcome label of one call: `ok`, the HTTP status of a provider error, its code, or the error's name. */
function outcomeOf(error: unknown): string {
  if (error instanceof ProviderError) return String(error.details.httpStatus ?? error.details.code);
  return error instanceof Error ? error.name : 'error';
}

async function* countedStream<T>(stream: AsyncIterable<T>, done: (outcome: string) => void): AsyncGenerator<T> {
  try {
    yield* stream;
    done('ok');
  } catch (error) {
    done(outcomeOf(error));
    throw error;
  }
}

/**
 * The provider with every call of its adapter counted by operation and outcome: a promise when it settles, a stream
 * of results when it ends. Every method of the interface is covered as it is, whatever methods it has.
 */
export function countedProvider(provider: BatchProvider, metrics: StepMetrics): BatchProvider {
  return new Proxy(provider, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      const done = (outcome: string) => metrics.providerCall(target.name, property, outcome);
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        if (result instanceof Promise) {
          return result.then((settled) => {
            done('ok');
            return settled;
          }, (error: unknown) => {
            done(outcomeOf(error));
            throw error;
          });
        }
        if (result && typeof result === 'object' && Symbol.asyncIterator in result) return countedStream(result as AsyncIterable<unknown>, done);
        return result;
      };
    },
  });
}
