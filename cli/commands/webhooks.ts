/** `batchkeeper webhooks serve`: the OpenAI webhook endpoint (client/webhook-server.ts) as a process of its own. */
import { ValidationError } from '../../client/errors';
import { startWebhookServer } from '../../client/webhook-server';
import { ConfigError } from '../../config/load';
import { str, type CommandGroup } from '../command';

function port(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65_535) throw new ValidationError('--port', `must be a port number from 0 to 65535 (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

export const webhooksGroup: CommandGroup = {
  name: 'webhooks',
  summary: 'the OpenAI webhook endpoint: batches wake at once when OpenAI says they ended',
  commands: [
    {
      name: 'serve',
      summary: 'serve POST /webhooks/openai until SIGINT or SIGTERM: verify each event, wake its batch',
      options: {
        host: { type: 'string', value: 'HOST', description: 'address to bind (default BATCHKEEPER_WEBHOOK_HOST, 127.0.0.1)' },
        port: { type: 'string', value: 'PORT', description: 'port (default BATCHKEEPER_WEBHOOK_PORT, 8787)' },
      },
      notes: [
        'Needs BATCHKEEPER_OPENAI_WEBHOOK_SECRET (the whsec_ signing secret OpenAI shows), DATABASE_URL and the Temporal settings.',
        'Point an OpenAI webhook endpoint (events batch.completed, batch.failed, batch.cancelled, batch.expired) at',
        'https://<public host>/webhooks/openai through a TLS proxy. Forged (401), stale (400) and replayed (409) deliveries',
        'are refused with a log line; one JSON log line per delivery on stderr.',
      ].join('\n'),
      async run(ctx, _args, values) {
        const settings = ctx.webhooks();
        if (!settings.openaiSecret) {
          throw new ConfigError(['BATCHKEEPER_OPENAI_WEBHOOK_SECRET is not set: give the signing secret (whsec_...) of the OpenAI webhook endpoint']);
        }
        const server = await startWebhookServer({
          pool: ctx.pool(),
          temporal: await ctx.temporal(),
          secret: settings.openaiSecret,
          host: str(values, 'host') ?? settings.host,
          port: port(str(values, 'port')) ?? settings.port,
          toleranceSeconds: settings.toleranceSeconds,
        });
        ctx.progress(JSON.stringify({ time: new Date().toISOString(), level: 'INFO', message: `webhooks: listening at ${server.webhookUrl}`, url: server.webhookUrl }));
        const signal = await new Promise<string>((resolve) => {
          process.once('SIGINT', () => resolve('SIGINT'));
          process.once('SIGTERM', () => resolve('SIGTERM'));
        });
        await server.close();
        const counts = server.counts();
        return {
          json: { stoppedBy: signal, url: server.webhookUrl, counts },
          human: () => `webhooks: stopped by ${signal}; ${Object.entries(counts).map(([key, value]) => `${key} ${value}`).join(', ')}`,
        };
      },
    },
  ],
};
