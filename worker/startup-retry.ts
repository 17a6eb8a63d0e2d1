/**
 * A worker that starts while PostgreSQL or Temporal is restarting should wait for it, not exit: retries `connect`
 * with backoff (1 s doubling to 10 s) until `timeoutMs`, saying what it waits for.
 */
export async function waitForDependency<T>(what: string, connect: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1000; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      return await connect();
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      if (Date.now() + delay > deadline) throw new Error(`${what} still unavailable after ${timeoutMs} ms: ${reason}`);
      console.warn(`[batchkeeper] waiting for ${what} (${reason}); retrying in ${delay / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
