// The official `openai` npm package against Skein's OpenAI-compatible endpoint. `cargo xtask
// test` starts `skein-live` and sets SKEIN_URL and SKEIN_LLM_STATS.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, test } from 'node:test';

import OpenAI from 'openai';

const base = process.env.SKEIN_URL;
const statsUrl = process.env.SKEIN_LLM_STATS;
if (!base || !statsUrl) throw new Error('SKEIN_URL and SKEIN_LLM_STATS are not set: run it with `cargo xtask test`');

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const stats = async () => (await fetch(statsUrl)).json();

let f;
before(async () => {
  const reg = await api('POST', '/api/auth/register', undefined, {
    email: `node-${randomUUID()}@example.com`, password: 'correct horse battery', display_name: 'Node',
  });
  const person = reg.token;
  const ws = (await api('POST', '/api/workspaces', person, { name: 'Node' })).id;
  const assistant = `Helper-${randomUUID().slice(0, 6)}`;
  await api('POST', `/api/workspaces/${ws}/assistants`, person, { name: assistant, provider: 'fake', model: 'tokens-5' });
  const conversation = (await api('POST', '/api/conversations', person, { workspace_id: ws, kind: 'channel', title: 'node' })).id;
  const key = await api('POST', `/api/workspaces/${ws}/api-keys`, person, { name: 'node-bot', scopes: ['read', 'write', 'assistant'], conversation_ids: [conversation] });
  f = { person, assistant, conversation, key, client: new OpenAI({ baseURL: `${base}/v1`, apiKey: key.secret, maxRetries: 0 }) };
});

test('models, a plain completion and a streamed one', async () => {
  const ids = [];
  for await (const model of f.client.models.list()) ids.push(model.id);
  assert.ok(ids.includes(f.assistant) && ids.includes('fake/tokens-5'), ids.join(', '));
  const done = await f.client.chat.completions.create({ model: 'fake/tokens-2', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(done.choices[0].message.content, 't0 t1 ');
  const stream = await f.client.chat.completions.create({
    model: f.assistant, messages: [{ role: 'user', content: 'hi' }], stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 't0 t1 t2 t3 t4 ');
});

test('aborting a stream stops the provider', async () => {
  const aborted = (await stats()).aborted;
  const stream = await f.client.chat.completions.create({
    model: 'fake/tokens-500-every-20', messages: [{ role: 'user', content: 'long' }], stream: true,
  });
  let seen = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content) seen += 1;
    if (seen === 3) break; // breaking out aborts the request
  }
  const deadline = Date.now() + 10_000;
  while ((await stats()).aborted === aborted) {
    assert.ok(Date.now() < deadline, 'the provider was not stopped');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

test('a bad key is an AuthenticationError', async () => {
  const stranger = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk_skein_not-a-key', maxRetries: 0 });
  await assert.rejects(
    stranger.chat.completions.create({ model: f.assistant, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key',
  );
});

test('a thread-bound call lands in the thread', async () => {
  const root = (await api('POST', `/api/threads/${f.conversation}/root`, f.person, { content: 'ask' })).id;
  const stream = await f.client.chat.completions.create({
    model: f.assistant, messages: [{ role: 'user', content: 'from node' }], stream: true, metadata: { skein_thread: root },
  });
  let text = '';
  let exchange;
  for await (const chunk of stream) {
    exchange ??= chunk.skein;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, 't0 t1 t2 t3 t4 ');
  const tree = (await api('GET', `/api/threads/${root}/tree`, f.person)).data;
  const asked = tree.find((n) => n.id === exchange.message_id);
  const answer = tree.find((n) => n.id === exchange.answer_id);
  assert.deepEqual([asked.content, asked.via], ['from node', { kind: 'openai', api_key_id: f.key.id }]);
  assert.equal(answer.parent_id, asked.id);
  assert.equal(answer.content, 't0 t1 t2 t3 t4 ');
});
