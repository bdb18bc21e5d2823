// @skein/client: the generated SDK (one function per operation, typed by the OpenAPI
// document) and the hand-written parts generation cannot do: a configured client that throws
// SkeinError, and event streams that resume from the last cursor over SSE and WebSocket.
export * from './generated/index.js';
export type { Client } from './generated/client/index.js';
export { createSkeinClient, type SkeinClientOptions } from './client.js';
export { SkeinError, isProblem } from './errors.js';
export { EventStream, openAnswerStream, openEventStream, type EventStreamOptions } from './events.js';
export { EventSocket, openEventSocket, type EventSocketOptions } from './websocket.js';
export { SseParser, type SseFrame } from './sse.js';
