// The official Anthropic Node SDK, unmodified, against a live `dsv4 serve` started by
// tests/scripts/anthropic_clients.sh. Environment: DSV4_ROOT_URL (http://host:port; the SDK
// adds /v1/messages), DSV4_API_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitForRunning } from './server_gauges.mjs';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.DSV4_ROOT_URL;
const apiKey = process.env.DSV4_API_KEY;
assert.ok(baseURL && apiKey, 'DSV4_ROOT_URL and DSV4_API_KEY must be set');
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const model = 'dsv4-demo';
const greedy = { temperature: 0 };
const noThinking = { thinking: { type: 'disabled' } };

const weatherTool = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};


test('a message and its stream give the same greedy answer', async () => {
  const params = {
    model, max_tokens: 12, messages: [{ role: 'user', content: 'def fibonacci(n):' }], thinking: { type: 'adaptive' }, ...greedy,
  };
  const full = await client.messages.create(params);
  assert.equal(full.type, 'message');
  assert.equal(full.role, 'assistant');
  assert.equal(full.model, model);
  assert.match(full.id, /^msg_/);
  assert.equal(full.stop_reason, 'max_tokens');
  assert.equal(full.stop_sequence, null);
  assert.equal(full.usage.output_tokens, 12);
  assert.ok(full.usage.input_tokens + full.usage.cache_read_input_tokens > 3);
  // Thinking asked for: the answer opens with a thinking block.
  assert.equal(full.content[0].type, 'thinking');

  const stream = client.messages.stream(params);
  const events = [];
  stream.on('streamEvent', (e) => events.push(e.type));
  const streamed = await stream.finalMessage();
  assert.deepEqual(streamed.content, full.content);
  assert.equal(streamed.stop_reason, full.stop_reason);
  assert.equal(streamed.usage.output_tokens, 12);
  assert.equal(events[0], 'message_start');
  assert.equal(events.at(-1), 'message_stop');
  assert.equal(events.at(-2), 'message_delta');
  assert.ok(events.includes('content_block_start') && events.includes('content_block_delta') && events.includes('content_block_stop'));
});

test('thinking off gives text only; a thinking budget ends the reasoning', async () => {
  const messages = [{ role: 'user', content: 'class Stack:' }];
  const off = await client.messages.create({ model, max_tokens: 8, messages, ...noThinking, ...greedy });
  assert.deepEqual(off.content.map((b) => b.type), ['text']);
  assert.equal(typeof off.content[0].text, 'string');
  // The demo model never closes its reasoning by itself; the budget closes it after 4 tokens.
  const on = await client.messages.create({
    model, max_tokens: 12, messages, thinking: { type: 'enabled', budget_tokens: 4 }, ...greedy,
  });
  assert.deepEqual(on.content.map((b) => b.type), ['thinking', 'text']);
  assert.ok(on.content[0].thinking.length > 0);
  assert.ok(on.content[1].text.length > 0);
});

test('system prompts: a string, text blocks, and count_tokens', async () => {
  const messages = [{ role: 'user', content: 'import os' }];
  const params = { model, max_tokens: 2, messages, ...noThinking, ...greedy };
  const inputOf = (m) => m.usage.input_tokens + m.usage.cache_read_input_tokens;
  const bare = await client.messages.create(params);
  const withSystem = await client.messages.create({ ...params, system: 'You write Python.\n\nBe brief.' });
  assert.ok(inputOf(withSystem) > inputOf(bare));
  const blocks = await client.messages.create({
    ...params, system: [{ type: 'text', text: 'You write Python.' }, { type: 'text', text: 'Be brief.' }],
  });
  assert.equal(inputOf(blocks), inputOf(withSystem));
  const counted = await client.messages.countTokens({ model, messages, system: 'You write Python.\n\nBe brief.', ...noThinking });
  assert.equal(counted.input_tokens, inputOf(withSystem));
});

test('tool use round trip: tool_use in the history, tool_result back', async () => {
  const messages = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '{"temp_c": 21}' }] },
  ];
  const params = { model, max_tokens: 8, tools: [weatherTool], ...noThinking, ...greedy };
  const r = await client.messages.create({ ...params, messages });
  assert.ok(['end_turn', 'max_tokens', 'tool_use'].includes(r.stop_reason));
  for (const b of r.content) if (b.type === 'tool_use') assert.equal(typeof b.input, 'object');
  // The tool call and its result made it into the prompt.
  const shorter = await client.messages.countTokens({ model, messages: messages.slice(0, 1), tools: [weatherTool], ...noThinking });
  const full = await client.messages.countTokens({ model, messages, tools: [weatherTool], ...noThinking });
  assert.ok(full.input_tokens > shorter.input_tokens + 10);
  assert.equal(r.usage.input_tokens + r.usage.cache_read_input_tokens, full.input_tokens);
  // Streaming with tools works through the SDK's stream reader too.
  const s = await client.messages.stream({ ...params, messages }).finalMessage();
  assert.ok(s.stop_reason);
});

test('tool_choice tool opens a call of that tool', async () => {
  // The demo model was trained on Python only: it never writes a DSML tool call itself, and it
  // cannot finish one that is opened for it. What the test can see is the opening the server
  // forced: a tool_use block of that name, or (when the model's continuation is not DSML, as
  // here) the raw call text, which the parser returns as text.
  const params = { model, max_tokens: 48, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool], ...noThinking, ...greedy };
  const calls = (m) => m.content.some((b) => (b.type === 'tool_use' && b.name === 'get_weather') ||
    (b.type === 'text' && b.text.startsWith('\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">')));
  const auto = await client.messages.create(params);
  assert.ok(!calls(auto), 'the demo model does not call tools by itself');
  const forced = await client.messages.create({ ...params, tool_choice: { type: 'tool', name: 'get_weather' } });
  assert.ok(calls(forced), JSON.stringify(forced.content));
  const any = await client.messages.create({ ...params, tool_choice: { type: 'any' } });
  assert.ok(any.content.some((b) => b.type === 'tool_use' || b.text.startsWith('\n\n<｜DSML｜tool_calls>\n')), JSON.stringify(any.content));
});

test('stop_sequences end the answer with stop_reason stop_sequence', async () => {
  const params = { model, max_tokens: 16, messages: [{ role: 'user', content: 'def add(a, b):' }], ...noThinking, ...greedy };
  const free = await client.messages.create(params);
  const text = free.content[0].text;
  assert.ok(text.length > 6, text);
  const stop = text.slice(3, 6);
  const r = await client.messages.create({ ...params, stop_sequences: [stop] });
  assert.equal(r.stop_reason, 'stop_sequence');
  assert.equal(r.stop_sequence, stop);
  assert.equal(r.content[0].text, text.slice(0, text.indexOf(stop)));
});

test('authentication: x-api-key, Bearer, and rejection', async () => {
  const bad = new Anthropic({ baseURL, apiKey: 'not-the-key', maxRetries: 0 });
  await assert.rejects(
    bad.messages.create({ model, max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && e.error?.error?.type === 'authentication_error',
  );
  const bearer = new Anthropic({ baseURL, apiKey: null, authToken: apiKey, maxRetries: 0 });
  const r = await bearer.messages.create({ model, max_tokens: 1, messages: [{ role: 'user', content: 'x' }], ...noThinking });
  assert.equal(r.usage.output_tokens, 1);
});

test('bad input gets 400 / 404 with Anthropic error bodies', async () => {
  const isInvalid = (pattern) => (e) =>
    e instanceof Anthropic.BadRequestError && e.error?.type === 'error' && e.error?.error?.type === 'invalid_request_error' &&
    pattern.test(e.message);
  await assert.rejects(client.messages.create({ model, messages: [{ role: 'user', content: 'x' }] }), isInvalid(/max_tokens/));
  await assert.rejects(
    client.messages.create({ model, max_tokens: 4, messages: [{ role: 'tool', content: 'x' }] }), isInvalid(/role/));
  await assert.rejects(
    client.messages.create({ model, max_tokens: 4, messages: [{ role: 'user', content: 'x' }], temprature: 1 }),
    isInvalid(/temprature: Extra inputs are not permitted/));
  await assert.rejects(
    client.messages.create({ model, max_tokens: 4, messages: [{ role: 'user', content: 'x' }], temperature: 5 }), isInvalid(/temperature/));
  await assert.rejects(
    client.messages.create({
      model, max_tokens: 4, messages: [{ role: 'user', content: 'x' }], tools: [weatherTool], tool_choice: { type: 'tool', name: 'nope' },
    }),
    isInvalid(/nope/));
  await assert.rejects(
    client.messages.create({ model: 'claude-no-such-model', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.error?.error?.type === 'not_found_error' && /claude-no-such-model/.test(e.message),
  );
  // The server runs with --ctx 2048: a longer prompt is refused, not truncated.
  await assert.rejects(
    client.messages.create({ model, max_tokens: 4, messages: [{ role: 'user', content: 'x = 1\n'.repeat(2000) }] }),
    isInvalid(/context/));
});

test('a non-streaming client that hangs up frees its sequence', async () => {
  const controller = new AbortController();
  const pending = client.messages.create(
    { model, max_tokens: 2000, messages: [{ role: 'user', content: 'def long_function():' }], ...noThinking, ...greedy },
    { signal: controller.signal },
  );
  const headers = { 'x-api-key': apiKey };
  assert.equal(await waitForRunning(baseURL, headers, 1, 100, 20), 1, 'the request did not start');
  controller.abort();
  await assert.rejects(pending, (e) => e instanceof Anthropic.APIUserAbortError);
  const running = await waitForRunning(baseURL, headers, 0, 50, 20);
  assert.equal(running, 0, 'the abandoned request still holds its sequence');
  // The slot serves the next request. (anthropic_clients.sh also checks that the audit log
  // recorded the abandoned request as cancelled, with far fewer than 2000 tokens.)
  const r = await client.messages.create({ model, max_tokens: 2, messages: [{ role: 'user', content: 'x' }], ...noThinking });
  assert.equal(r.usage.output_tokens, 2);
});
