// Event streams over fetch-based SSE that survive dropped connections: each reconnect sends
// the `id:` of the last frame delivered as `Last-Event-ID`, so every event arrives once, in
// order. (The generated `client.sse` helpers stop when the server ends a stream and retry
// refusals forever; these resume on any cut and end on a refusal.)
import type { Client } from './generated/client/index.js';
import { getAuthToken } from './generated/core/auth.gen.js';
import type { Event } from './generated/types.gen.js';
import { SkeinError, errorFrom } from './errors.js';
import { SseParser } from './sse.js';

export interface EventStreamOptions {
  /** Resume after this cursor; without it the stream starts when it connects. */
  after?: string;
  /** Ends the stream (as {@link EventStream.close}). */
  signal?: AbortSignal;
  /** Connection attempts in a row that may fail before the stream gives up (default 8). */
  maxAttempts?: number;
}

const DEFAULT_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/** The `Authorization` value the client's configuration gives, if any. */
export async function bearerOf(client: Client): Promise<string | undefined> {
  const { auth } = client.getConfig();
  return auth === undefined ? undefined : getAuthToken({ scheme: 'bearer', type: 'http' }, auth);
}

/** Iterate with `for await`; events are typed by `type`. */
export class EventStream implements AsyncIterable<Event> {
  /** The `id:` of the last event delivered: where a new stream would resume. */
  lastEventId: string | undefined;
  /** Connections opened so far (1 + reconnects). */
  connections = 0;
  private current: AbortController | undefined;
  private closed = new AbortController();
  /** The connection {@link EventStream.start} opened, until iteration takes it. */
  private opened: Response | undefined;

  constructor(
    private readonly client: Client,
    private readonly path: string,
    private readonly endsAfterDone: boolean,
    private readonly options: EventStreamOptions = {},
  ) {
    this.lastEventId = options.after;
    options.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  /**
   * Opens the first connection now: a refusal (401, 404) rejects here, and a stream
   * without `after` starts at this moment rather than at the first iteration.
   */
  async start(): Promise<this> {
    this.current = new AbortController();
    this.opened = await this.connect(this.current.signal);
    this.connections += 1;
    return this;
  }

  /** Drops the connection now; iteration goes on from where it was, on a new one. */
  disconnect(): void {
    this.current?.abort();
  }

  /** Ends the stream: iteration finishes. */
  close(): void {
    this.closed.abort();
    this.current?.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Event, void, undefined> {
    const parser = new SseParser();
    let failures = 0;
    const backoff = () => Math.min((parser.retryMs ?? DEFAULT_RETRY_MS) * 2 ** Math.min(failures, 5), MAX_RETRY_MS);
    while (!this.closed.signal.aborted) {
      const connection = this.opened ? this.current! : new AbortController();
      this.current = connection;
      let response: Response;
      try {
        response = this.opened ?? (await this.connect(connection.signal));
      } catch (error) {
        if (this.closed.signal.aborted) return;
        if (error instanceof SkeinError && error.status < 500 && error.status !== 429) throw error;
        failures += 1;
        if (failures >= (this.options.maxAttempts ?? 8)) throw error;
        await sleep(backoff(), this.closed.signal);
        continue;
      }
      if (this.opened) this.opened = undefined;
      else this.connections += 1;
      failures = 0;
      parser.discardPartial();
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const frame of parser.feed(value)) {
            const event = JSON.parse(frame.data) as Event;
            if (frame.id !== undefined) this.lastEventId = frame.id;
            yield event;
            if (event.type === 'error' || (this.endsAfterDone && event.type === 'message.done')) {
              this.close();
              return;
            }
          }
        }
      } catch {
        // The connection was cut (by the network, the server, or disconnect()): resume.
      } finally {
        connection.abort();
      }
      await sleep(parser.retryMs ?? DEFAULT_RETRY_MS, this.closed.signal);
    }
  }

  private async connect(signal: AbortSignal): Promise<Response> {
    const config = this.client.getConfig();
    const headers = new Headers({ accept: 'text/event-stream' });
    const authorization = await bearerOf(this.client);
    if (authorization) headers.set('authorization', authorization);
    if (this.lastEventId !== undefined) headers.set('last-event-id', this.lastEventId);
    const doFetch = config.fetch ?? globalThis.fetch;
    const init: RequestInit = { headers, signal, ...(config.credentials ? { credentials: config.credentials } : {}) };
    const response = await doFetch(`${config.baseUrl ?? ''}${this.path}`, init);
    if (!response.ok || !response.body) throw await errorFrom(response);
    return response;
  }
}

/**
 * Every event the caller may see (`GET /api/stream`), or one conversation's
 * (`GET /api/conversations/{id}/stream`), once connected. Endless: it reconnects by itself.
 */
export function openEventStream(
  client: Client,
  options: EventStreamOptions & { conversationId?: string } = {},
): Promise<EventStream> {
  const path = options.conversationId
    ? `/api/conversations/${encodeURIComponent(options.conversationId)}/stream`
    : '/api/stream';
  return new EventStream(client, path, false, options).start();
}

/** One assistant answer (`GET /api/messages/{id}/stream`): its deltas, then `message.done`, then the end. */
export function openAnswerStream(
  client: Client,
  messageId: string,
  options: EventStreamOptions = {},
): Promise<EventStream> {
  return new EventStream(client, `/api/messages/${encodeURIComponent(messageId)}/stream`, true, options).start();
}
