// The event stream over WebSocket (`GET /api/ws`), resumed after the last cursor received on
// every reconnect (`?after=`), plus the client frames (typing, presence, ack) it carries.
// Browsers' and Node's WebSocket cannot send headers, so each connection uses a fresh
// stream token from `POST /api/stream/token`.
import type { Client } from './generated/client/index.js';
import { createStreamToken } from './generated/sdk.gen.js';
import type { ClientFrame, Event } from './generated/types.gen.js';
import { SkeinError } from './errors.js';
import { sleep } from './events.js';

export interface EventSocketOptions {
  /** Resume after this cursor; without it the stream starts when it connects. */
  after?: string;
  /** Follow one conversation instead of all the caller's. */
  conversationId?: string;
  /** The WebSocket implementation (default `globalThis.WebSocket`). */
  WebSocket?: typeof WebSocket;
  /** Connection attempts in a row that may fail before the socket gives up (default 8). */
  maxAttempts?: number;
}

/** Close code the client uses for a deliberate cut that it will resume from. */
const RECONNECT = 4000;

type Waiter = { resolve: () => void };

/** Iterate with `for await`; {@link EventSocket.send} sends client frames. */
export class EventSocket implements AsyncIterable<Event> {
  /** The cursor of the last logged event received: where a reconnect resumes. */
  lastCursor: string | undefined;
  /** Connections opened so far (1 + reconnects). */
  connections = 0;
  private socket: WebSocket | undefined;
  private queue: Event[] = [];
  private failure: unknown;
  private waiter: Waiter | undefined;
  private closed = false;

  constructor(
    private readonly client: Client,
    private readonly options: EventSocketOptions = {},
  ) {
    this.lastCursor = options.after;
  }

  /** Opens the first connection; rejects when the server refuses it. */
  async start(): Promise<this> {
    await this.connect();
    return this;
  }

  /** Sends a frame; false when no connection is open at the moment (nothing is queued). */
  send(frame: ClientFrame): boolean {
    if (this.socket?.readyState !== 1) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Drops the connection now; iteration goes on from where it was, on a new one. */
  disconnect(): void {
    this.socket?.close(RECONNECT, 'reconnect');
  }

  /** Ends the stream: iteration finishes. */
  close(): void {
    this.closed = true;
    this.socket?.close(1000, 'closed');
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Event, void, undefined> {
    try {
      for (;;) {
        const event = this.queue.shift();
        if (event) {
          yield event;
          if (event.type === 'error') return;
          continue;
        }
        if (this.failure !== undefined) throw this.failure;
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.waiter = { resolve }));
      }
    } finally {
      this.close();
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve();
  }

  private async connect(): Promise<void> {
    const { data } = await createStreamToken({ client: this.client });
    const url = new URL('/api/ws', this.client.getConfig().baseUrl || globalThis.location?.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('token', data.token);
    if (this.lastCursor !== undefined) url.searchParams.set('after', this.lastCursor);
    if (this.options.conversationId) url.searchParams.set('conversation_id', this.options.conversationId);
    const Socket = this.options.WebSocket ?? globalThis.WebSocket;
    const socket = new Socket(url);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`WebSocket to ${url.origin} failed`));
    });
    this.socket = socket;
    this.connections += 1;
    socket.onerror = null;
    socket.onmessage = (message: MessageEvent) => {
      const event = JSON.parse(String(message.data)) as Event;
      if (event.cursor) this.lastCursor = event.cursor;
      this.queue.push(event);
      this.wake();
    };
    socket.onclose = () => {
      if (this.socket === socket) this.socket = undefined;
      if (!this.closed) void this.reconnect();
    };
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 1; !this.closed; attempt += 1) {
      try {
        await this.connect();
        return;
      } catch (error) {
        const refused = error instanceof SkeinError && error.status < 500 && error.status !== 429;
        if (refused || attempt >= (this.options.maxAttempts ?? 8)) {
          this.failure = error;
          this.wake();
          return;
        }
        await sleep(Math.min(250 * 2 ** attempt, 10_000));
      }
    }
  }
}

/** The caller's events over WebSocket, once connected. */
export function openEventSocket(client: Client, options: EventSocketOptions = {}): Promise<EventSocket> {
  return new EventSocket(client, options).start();
}
