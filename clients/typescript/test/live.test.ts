// The package against the live server (`cargo xtask test` starts `skein-live` and sets
// SKEIN_URL): every call goes through @skein/client as an integrator's code would.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

import {
  type Client,
  type Event,
  SkeinError,
  createAssistant,
  createConversation,
  createReply,
  createSkeinClient,
  createThread,
  createWorkspace,
  generateAnswer,
  getCurrentUser,
  getThreadTree,
  listConversationMessages,
  logIn,
  openAnswerStream,
  openEventSocket,
  openEventStream,
  registerAccount,
} from '../src/index.js';

const baseUrl = process.env.SKEIN_URL;
if (!baseUrl) throw new Error('SKEIN_URL is not set: run the suite with `cargo xtask test`');
const PASSWORD = 'correct horse battery';

async function signUp(name: string): Promise<{ client: Client; userId: string; email: string }> {
  const email = `${name.toLowerCase()}-${randomUUID()}@example.com`;
  const anonymous = createSkeinClient({ baseUrl: baseUrl! });
  const { data } = await registerAccount({ client: anonymous, body: { email, password: PASSWORD, display_name: name } });
  return { client: createSkeinClient({ baseUrl: baseUrl!, token: data.token }), userId: data.user.id, email };
}

async function channel(client: Client): Promise<{ workspaceId: string; conversationId: string }> {
  const { data: workspace } = await createWorkspace({ client, body: { name: 'Acme' } });
  const { data: conversation } = await createConversation({
    client,
    body: { workspace_id: workspace.id, kind: 'channel', title: 'general' },
  });
  return { workspaceId: workspace.id, conversationId: conversation.id };
}

async function post(client: Client, conversationId: string, content: string): Promise<string> {
  const { data } = await createThread({ client, path: { conversation_id: conversationId }, body: { content } });
  return data.id;
}

/** The next event of `iterator`, failing after 15 s. */
async function next(iterator: AsyncIterator<Event>): Promise<Event> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no event within 15 s')), 15_000);
  });
  try {
    const result = await Promise.race([iterator.next(), timeout]);
    assert.equal(result.done, false, 'the stream ended');
    return result.value as Event;
  } finally {
    clearTimeout(timer);
  }
}

test('register, log in, and see who I am', async () => {
  const ann = await signUp('Ann');
  const { data: me } = await getCurrentUser({ client: ann.client });
  assert.equal(me.id, ann.userId);
  const { data: again } = await logIn({
    client: createSkeinClient({ baseUrl }),
    body: { email: ann.email, password: PASSWORD },
  });
  assert.equal(again.user.id, ann.userId);
});

test('a thread: root, replies at depth, the tree depth first, history paged back', async () => {
  const { client } = await signUp('Ann');
  const { conversationId } = await channel(client);
  const root = await post(client, conversationId, 'root');
  const reply = async (parent: string, content: string) =>
    (await createReply({ client, path: { message_id: parent }, body: { content } })).data;
  const a = await reply(root, 'a');
  const a1 = await reply(a.id, 'a1');
  const b = await reply(root, 'b');
  assert.equal(a1.depth, 2);
  assert.equal(a1.parent_id, a.id);

  const { data: tree } = await getThreadTree({ client, path: { root_id: root } });
  assert.deepEqual(
    tree.data.map((node) => node.id),
    [root, a.id, a1.id, b.id],
  );

  const newest = (await listConversationMessages({ client, path: { id: conversationId }, query: { limit: 3 } })).data;
  assert.ok(newest.page.prev, 'an older page exists');
  const older = (
    await listConversationMessages({ client, path: { id: conversationId }, query: { limit: 3, before: newest.page.prev } })
  ).data;
  assert.deepEqual(
    [...older.data, ...newest.data].map((message) => message.content),
    ['root', 'a', 'a1', 'b'],
  );
});

test('problems are thrown as SkeinError with the stable code', async () => {
  const ann = await signUp('Ann');
  const bob = await signUp('Bob');
  const { conversationId } = await channel(ann.client);
  await assert.rejects(post(bob.client, conversationId, 'hi'), (error: unknown) => {
    assert.ok(error instanceof SkeinError);
    assert.equal(error.status, 404);
    assert.equal(error.code, 'not_found');
    return true;
  });
  await assert.rejects(post(ann.client, conversationId, ''), (error: unknown) => {
    assert.ok(error instanceof SkeinError);
    assert.equal(error.code, 'validation_failed');
    assert.equal(error.fieldErrors[0]?.field, 'content');
    return true;
  });
  await assert.rejects(getCurrentUser({ client: createSkeinClient({ baseUrl }) }), { code: 'unauthenticated' });
});

test('an SSE stream cut three times resumes with no gap and no duplicate', async () => {
  const { client } = await signUp('Ann');
  const { conversationId } = await channel(client);
  const stream = await openEventStream(client, { conversationId });
  const events = stream[Symbol.asyncIterator]();
  const posted: string[] = [];
  const seen: string[] = [];
  const readUntil = async (count: number) => {
    while (seen.length < count) {
      const event = await next(events);
      if (event.type === 'thread.new') seen.push(event.data.root_id);
    }
  };
  // Each round: four posted, two read, the connection cut, two more posted while it is down
  // (only a resumed connection can bring those).
  for (let round = 0; round < 3; round += 1) {
    for (let i = 0; i < 4; i += 1) posted.push(await post(client, conversationId, `${round}.${i}`));
    await readUntil(posted.length - 2);
    stream.disconnect();
    for (let i = 4; i < 6; i += 1) posted.push(await post(client, conversationId, `${round}.${i}`));
  }
  await readUntil(posted.length);
  stream.close();
  assert.deepEqual(seen, posted);
  assert.equal(stream.connections, 4);
  assert.ok(stream.lastEventId);
});

test('a WebSocket cut mid-stream resumes after the last cursor', async () => {
  const { client } = await signUp('Ann');
  const { conversationId } = await channel(client);
  const socket = await openEventSocket(client, { conversationId });
  const events = socket[Symbol.asyncIterator]();
  const posted: string[] = [];
  for (let i = 0; i < 3; i += 1) posted.push(await post(client, conversationId, `before ${i}`));
  const seen: string[] = [];
  while (seen.length < 3) {
    const event = await next(events);
    if (event.type === 'thread.new') seen.push(event.data.root_id);
  }
  socket.disconnect();
  for (let i = 0; i < 3; i += 1) posted.push(await post(client, conversationId, `after ${i}`));
  while (seen.length < 6) {
    const event = await next(events);
    if (event.type === 'thread.new') seen.push(event.data.root_id);
  }
  socket.close();
  assert.deepEqual(seen, posted);
  assert.equal(socket.connections, 2);
});

test('an AI answer streams token by token from the fake provider', async () => {
  const { client } = await signUp('Ann');
  const { workspaceId, conversationId } = await channel(client);
  const { data: assistant } = await createAssistant({
    client,
    path: { id: workspaceId },
    body: { name: 'Helper', provider: 'fake' },
  });
  const root = await post(client, conversationId, 'question');
  const { data: answer } = await generateAnswer({
    client,
    path: { message_id: root },
    body: { assistant_id: assistant.id, model: 'tokens-6-every-20' },
  });
  assert.equal(answer.status, 'streaming');
  const stream = await openAnswerStream(client, answer.id);
  let content = '';
  let deltas = 0;
  let done: Extract<Event, { type: 'message.done' }>['data'] | undefined;
  for await (const event of stream) {
    if (event.type === 'message.delta') {
      assert.equal(event.data.offset, [...content].length, 'deltas are contiguous');
      content += event.data.delta;
      deltas += 1;
      if (stream.connections === 1 && content.length > 4) stream.disconnect();
    } else if (event.type === 'message.done') {
      done = event.data;
    }
  }
  assert.equal(content, 't0 t1 t2 t3 t4 t5 ');
  assert.equal(done?.status, 'complete');
  assert.equal(done?.length, [...content].length);
  assert.ok(deltas > 1, 'more than one delta');
  assert.equal(stream.connections, 2);
});
