/**
 * The synchronous endpoints batchkeeper's straggler fallback calls through the official SDKs: OpenAI
 * `POST /v1/chat/completions` (`client.chat.completions.create`) and Anthropic `POST /v1/messages`
 * (`client.messages.create`). Each answers at once with a deterministic reply to the request's last message (so a
 * test can tell which request an answer belongs to); faults apply by route name as on every other route, and the
 * route counters show how many calls came (and how fast).
 */
import { randomBytes } from 'node:crypto';
import { messageObject } from './anthropic-format';
import { fakeReply } from './replies';
import { FakeHttpError, json, type Route } from './router';
import type { FakeState } from './state';

/** The text of the last message, the key the stand-in reply echoes ("Fake reply to <text>."). */
function lastMessageText(body: Record<string, unknown>): string {
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  const content = messages[messages.length - 1]?.content;
  if (typeof content === 'string') return content.slice(0, 200);
  if (Array.isArray(content)) return content.map((block) => (typeof block?.text === 'string' ? block.text : '')).join(' ').slice(0, 200);
  return '';
}

async function requestBody(ctx: { json(): Promise<unknown> }): Promise<Record<string, unknown>> {
  const body = await ctx.json();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FakeHttpError(400, 'invalid_request_error', 'The body must be a JSON object.');
  const record = body as Record<string, unknown>;
  if (typeof record.model !== 'string') throw new FakeHttpError(400, 'invalid_request_error', 'model: field required');
  if (!Array.isArray(record.messages) || record.messages.length === 0) throw new FakeHttpError(400, 'invalid_request_error', 'messages: field required');
  return record;
}

export function syncRoutes(_state: FakeState): Route[] {
  return [
    {
      name: 'openai.chat.completions.create',
      provider: 'openai',
      method: 'POST',
      pattern: /^\/v1\/chat\/completions$/,
      async handle(ctx) {
        const body = await requestBody(ctx);
        const reply = fakeReply(JSON.stringify(lastMessageText(body)), body);
        return json({
          id: `chatcmpl-${randomBytes(12).toString('hex')}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: reply.text, refusal: null }, finish_reason: 'stop', logprobs: null }],
          usage: { prompt_tokens: reply.inputTokens, completion_tokens: reply.outputTokens, total_tokens: reply.inputTokens + reply.outputTokens },
        });
      },
    },
    {
      name: 'anthropic.messages.create',
      provider: 'anthropic',
      method: 'POST',
      pattern: /^\/v1\/messages$/,
      async handle(ctx) {
        const body = await requestBody(ctx);
        const reply = fakeReply(JSON.stringify(lastMessageText(body)), body);
        return json(messageObject(`msg_${randomBytes(12).toString('hex')}`, body.model, reply));
      },
    },
  ];
}
