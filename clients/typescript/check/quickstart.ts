// The README's TypeScript quick start, type-checked against the package (`npm run check`).
import { createSkeinClient, createThread, openEventStream, registerAccount } from '../src/index.js';

const anonymous = createSkeinClient({ baseUrl: 'http://127.0.0.1:8080' });
const { data: auth } = await registerAccount({ client: anonymous, body: { email: 'ann@example.com', password: 'correct horse battery', display_name: 'Ann' } });
const client = createSkeinClient({ baseUrl: 'http://127.0.0.1:8080', token: auth.token });
for await (const event of await openEventStream(client)) if (event.type === 'thread.new') console.log(event.data.title);

// What generators used to get wrong: path parameters that exist, and per-resource member types.
await createThread({ client, path: { conversation_id: '01JD3Q7ZK6Y1V8W9X0A2B3C4D5' }, body: { content: 'hi' } });
