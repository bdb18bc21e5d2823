//! Event streams that survive dropped connections: each reconnect sends the `id:` of the last
//! frame delivered as `Last-Event-ID`, so the caller sees every event once, in order.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use skein_shared::event::{Event, EventBody};

use crate::sse::SseParser;
use crate::{Client, Error, Result, checked};

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Reconnection gives up after this many attempts in a row that fail to connect.
const MAX_ATTEMPTS: u32 = 8;
/// Before the server has said (`retry:`), wait this long between attempts.
const DEFAULT_RETRY: Duration = Duration::from_millis(500);
/// Never wait longer than this between attempts, whatever the backoff says.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// A stream of [`Event`]s from one SSE endpoint. Call [`EventStream::next`] in a loop.
pub struct EventStream {
    client: Client,
    path: String,
    last_event_id: Option<String>,
    body: Option<Body>,
    parser: SseParser,
    ready: VecDeque<Event>,
    /// Answer streams end after `message.done`; the others never end by themselves.
    ends_after_done: bool,
    finished: bool,
    connections: u32,
}

impl EventStream {
    /// Opens the first connection: a refusal (401, 404) is the caller's error at once, and
    /// a stream without a cursor starts now, not at the first `next`.
    pub(crate) async fn open(
        client: Client,
        path: String,
        after: Option<String>,
        ends_after_done: bool,
    ) -> Result<Self> {
        let mut stream = Self {
            client,
            path,
            last_event_id: after,
            body: None,
            parser: SseParser::default(),
            ready: VecDeque::new(),
            ends_after_done,
            finished: false,
            connections: 0,
        };
        stream.connect().await?;
        Ok(stream)
    }

    /// The next event; `None` once the stream has ended (an answer's `message.done`, or a
    /// terminal `error` event). Dropped connections are reopened from the last event
    /// delivered; an error is returned only when the server refuses the stream (e.g. 401,
    /// 404) or it cannot be reached after several attempts.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        let mut failures = 0;
        loop {
            if let Some(event) = self.ready.pop_front() {
                let terminal = matches!(event.body, EventBody::Error(_))
                    || (self.ends_after_done && matches!(event.body, EventBody::MessageDone(_)));
                self.finished |= terminal;
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                match self.connect().await {
                    Ok(()) => failures = 0,
                    Err(error @ Error::Api { .. }) => {
                        self.finished = true;
                        return Some(Err(error));
                    }
                    Err(error) => {
                        failures += 1;
                        if failures >= MAX_ATTEMPTS {
                            self.finished = true;
                            return Some(Err(error));
                        }
                        tokio::time::sleep(self.backoff(failures)).await;
                    }
                }
                continue;
            };
            match body.next().await {
                Some(Ok(bytes)) => {
                    for frame in self.parser.feed(bytes.as_ref()) {
                        match serde_json::from_str::<Event>(&frame.data) {
                            Ok(event) => {
                                if frame.id.is_some() {
                                    self.last_event_id = frame.id;
                                }
                                self.ready.push_back(event);
                            }
                            Err(e) => {
                                self.finished = true;
                                return Some(Err(Error::Unexpected { status: 200, reason: e.to_string() }));
                            }
                        }
                    }
                }
                // The connection ended or broke: reopen it after the server's retry delay.
                Some(Err(_)) | None => {
                    self.disconnect();
                    tokio::time::sleep(self.backoff(0)).await;
                }
            }
        }
    }

    /// The `id:` of the last event delivered: where a new stream would resume.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Connections opened so far (1 + reconnects).
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Drops the connection now; the next [`EventStream::next`] reopens it where it left off.
    pub fn disconnect(&mut self) {
        self.body = None;
        // A frame cut in half is sent again in full after the resume.
        self.parser.discard_partial();
    }

    async fn connect(&mut self) -> Result<()> {
        let mut request = self.client.request(reqwest::Method::GET, &self.path).header("accept", "text/event-stream");
        if let Some(id) = &self.last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = checked(request.send().await?).await?;
        self.connections += 1;
        self.body = Some(Box::pin(response.bytes_stream()));
        Ok(())
    }

    fn backoff(&self, failures: u32) -> Duration {
        let base = self.parser.retry_ms.map_or(DEFAULT_RETRY, Duration::from_millis);
        base.saturating_mul(1 << failures.min(5)).min(MAX_RETRY)
    }
}
