// The official OpenAI Node SDK's Responses API (client.responses.create), unmodified, against a
// live `dsv4 serve` started by tests/scripts/openai_clients.sh. Environment: DSV4_BASE_URL
// (…/v1), DSV4_API_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitForRunning } from './server_gauges.mjs';
import OpenAI from 'openai';

const baseURL = process.env.DSV4_BASE_URL;
const apiKey = process.env.DSV4_API_KEY;
assert.ok(baseURL && apiKey, 'DSV4_BASE_URL and DSV4_API_KEY must be set');
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const root = baseURL.replace(/\/v1$/, '');
const model = 'dsv4-demo';
const greedy = { temperature: 0 };

// Reads a stream to its end: the event types in order and the final response (from the
// terminal event), checking the sequence numbers on the way.
async function readStream(stream) {
  const types = [];
  let final = null;
  for await (const event of stream) {
    assert.equal(event.sequence_number, types.length);
    types.push(event.type);
    if (['response.completed', 'response.incomplete', 'response.failed'].includes(event.type)) final = event.response;
  }
  return { types, final };
}

// The texts of a response's output, without ids (each response numbers its own items).
const texts = (r) => r.output.map((item) => item.type === 'function_call'
  ? { type: item.type, name: item.name, arguments: item.arguments }
  : { type: item.type, text: (item.content ?? []).map((p) => p.text).join('') });


test('responses.create: a response and its stream agree', async () => {
  const params = { model, input: 'def fibonacci(n):', max_output_tokens: 12, ...greedy };
  const r = await client.responses.create(params);
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'incomplete');
  assert.equal(r.incomplete_details.reason, 'max_output_tokens');
  // Thinking is the default: the reasoning comes first, counted in reasoning_tokens.
  assert.equal(r.output[0].type, 'reasoning');
  assert.equal(r.output[0].content[0].type, 'reasoning_text');
  assert.equal(r.usage.output_tokens, 12);
  assert.ok(r.usage.output_tokens_details.reasoning_tokens > 0);
  assert.ok(r.usage.output_tokens_details.reasoning_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + 12);
  assert.equal(typeof r.output_text, 'string');

  const { types, final } = await readStream(await client.responses.create({ ...params, stream: true }));
  assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.output_item.added']);
  assert.equal(types.at(-1), 'response.incomplete');
  assert.ok(types.includes('response.reasoning_text.delta'));
  assert.deepEqual(texts(final), texts(r));
  assert.deepEqual(final.usage, r.usage);
});

test('reasoning.effort none: one message, and output_text is its text', async () => {
  const params = { model, input: 'class Stack:', instructions: 'Write Python.', max_output_tokens: 8, reasoning: { effort: 'none' }, ...greedy };
  const r = await client.responses.create(params);
  assert.equal(r.output.length, 1);
  assert.equal(r.output[0].type, 'message');
  assert.equal(r.output[0].role, 'assistant');
  assert.deepEqual(r.output[0].content[0].annotations, []);
  assert.equal(r.output_text, r.output[0].content[0].text);
  assert.equal(r.usage.output_tokens_details.reasoning_tokens, 0);
  assert.equal(r.instructions, 'Write Python.');
  const { types, final } = await readStream(await client.responses.create({ ...params, stream: true }));
  assert.deepEqual(types, [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    ...types.filter((t) => t === 'response.output_text.delta'),
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete',
  ]);
  assert.equal(final.output[0].content[0].text, r.output_text);
});

test('a function-tool round trip, by previous_response_id and by explicit items', async () => {
  const tools = [{
    type: 'function', name: 'get_weather', description: 'Weather for a city', strict: false,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  }];
  const base = { model, tools, max_output_tokens: 8, ...greedy };
  // A conversation in which the model called the tool and got its result.
  const input = [
    { role: 'user', content: 'Weather in Paris?' },
    { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris"}' },
    { type: 'function_call_output', call_id: 'call_1', output: '{"temp_c": 21}' },
  ];
  const first = await client.responses.create({ ...base, input });
  assert.ok(['completed', 'incomplete'].includes(first.status));
  assert.equal(first.tools[0].name, 'get_weather');
  for (const item of first.output.filter((i) => i.type === 'function_call')) JSON.parse(item.arguments);
  // The tool result is in the prompt: it is longer than the question alone.
  const shorter = await client.responses.create({ ...base, input: input.slice(0, 1), max_output_tokens: 1 });
  assert.ok(first.usage.input_tokens > shorter.usage.input_tokens + 10);

  // The next turn continues the stored response, whose prompt the prefix cache still holds.
  const next = { role: 'user', content: 'And in London?' };
  const byId = await client.responses.create({ ...base, previous_response_id: first.id, input: [next] });
  assert.equal(byId.previous_response_id, first.id);
  assert.ok(byId.usage.input_tokens > first.usage.input_tokens);
  assert.ok(byId.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens);
  // The same conversation sent item by item (the output items as the SDK returned them) is the
  // same prompt, and greedy decoding gives the same answer.
  const byItems = await client.responses.create({ ...base, input: [...input, ...first.output, next] });
  assert.equal(byItems.usage.input_tokens, byId.usage.input_tokens);
  assert.deepEqual(texts(byItems), texts(byId));
  // Streamed with tools through the SDK's stream reader too.
  const { final } = await readStream(await client.responses.create({ ...base, previous_response_id: first.id, input: [next], stream: true }));
  assert.deepEqual(texts(final), texts(byId));
});

test('refusals come back as OpenAI errors', async () => {
  await assert.rejects(
    client.responses.create({ model, input: 'x', tools: [{ type: 'web_search_preview' }] }),
    (e) => e instanceof OpenAI.BadRequestError && /web_search_preview/.test(e.message),
  );
  await assert.rejects(
    client.responses.create({ model, input: 'x', text: { format: { type: 'json_schema', name: 'x', schema: { type: 'integer', minimum: 0 } } } }),
    (e) => e.status === 400 && /unsupported keyword 'minimum'/.test(e.message),
  );
  await assert.rejects(
    client.responses.create({ model, input: 'x', previous_response_id: 'resp_unknown' }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'previous_response_not_found' && e.param === 'previous_response_id',
  );
  await assert.rejects(
    client.responses.create({ model: 'gpt-5', input: 'x' }),
    (e) => e instanceof OpenAI.NotFoundError && /gpt-5/.test(e.message),
  );
  await assert.rejects(
    client.responses.create({ model, input: 'x', reasoning: { effort: 'extreme' } }),
    (e) => e.status === 400 && /reasoning\.effort/.test(e.message),
  );
});

test('a client that disconnects mid-stream frees its sequence', async () => {
  const controller = new AbortController();
  const stream = await client.responses.create(
    { model, input: 'def long_function():', max_output_tokens: 400, stream: true, ...greedy },
    { signal: controller.signal },
  );
  let events = 0;
  try {
    for await (const _ of stream) {
      if (++events === 5) controller.abort();
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError');
  }
  assert.ok(events >= 5 && events < 200, `the stream stops after the abort (got ${events} events)`);
  const running = await waitForRunning(root, { Authorization: `Bearer ${apiKey}` }, 0, 100, 100);
  assert.equal(running, 0, 'the aborted request still holds a sequence');
});
