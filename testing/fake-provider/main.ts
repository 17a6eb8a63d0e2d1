/**
 * CLI entry: `tsx fake-provider/main.ts [--port 0] [--host 127.0.0.1] [--processing-ms 300] [--seed 1]`.
 * Prints the server URL as the first stdout line (for scripts to read), then serves until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startFakeProvider } from './server';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'processing-ms': { type: 'string' },
      seed: { type: 'string' },
    },
  });
  const number = (name: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`);
    return value;
  };
  const fake = await startFakeProvider({
    port: number('port', values.port),
    host: values.host,
    ...(values['processing-ms'] !== undefined ? { processingMs: number('processing-ms', values['processing-ms']) } : {}),
    ...(values.seed !== undefined ? { seed: number('seed', values.seed) } : {}),
  });
  process.stdout.write(`${fake.url}\n`);
  process.stderr.write(
    `fake provider: OpenAI baseURL ${fake.openaiBaseUrl}, Anthropic baseURL ${fake.anthropicBaseUrl}, Gemini baseUrl ${fake.geminiBaseUrl}, ` +
      `xAI baseURL ${fake.xaiBaseUrl}, Groq-style ${fake.compatibleBaseUrl('groq')}, control ${fake.url}/_control/state\n`,
  );
  const stop = () => {
    fake.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`fake provider failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
