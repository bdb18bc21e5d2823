//! The Server-Sent Events framing, written into the description of every `text/event-stream`
//! response (OpenAPI 3.1 has no field for it), from the values the handlers use.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::RefOr;

use crate::routes::streams::{KEEP_ALIVE_MAX_SECS, RETRY};

/// What `id:` carries, per stream operation.
const IDS: &[(&str, &str)] = &[
    (
        "stream_events",
        "the event's `cursor`, on logged events only (live-only ones such as `typing.update` have no `id:`)",
    ),
    (
        "stream_conversation",
        "the event's `cursor`, on logged events only (live-only ones such as `typing.update` have no `id:`)",
    ),
    ("stream_answer", "the number of characters of the answer the client has after this event"),
];

/// Appends the framing to each SSE response; returns the operations that stream events but
/// are missing from [`IDS`] (a test keeps it empty).
pub(super) fn describe(doc: &mut Document) -> Vec<String> {
    let mut unknown = Vec::new();
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get].into_iter().flatten() {
            let id = op.operation_id.clone().unwrap_or_default();
            for response in op.responses.responses.values_mut() {
                let RefOr::T(response) = response else { continue };
                if !response.content.contains_key("text/event-stream") {
                    continue;
                }
                let Some((_, ids)) = IDS.iter().find(|(name, _)| *name == id) else {
                    unknown.push(id.clone());
                    continue;
                };
                let retry = match id.as_str() {
                    "stream_answer" => String::new(),
                    _ => format!(
                        " The stream opens with `retry: {}` (milliseconds to wait before reconnecting).",
                        RETRY.as_millis()
                    ),
                };
                response.description.push_str(&format!(
                    "\n\nFraming (Server-Sent Events, UTF-8): each event is `event: <type>` (the `Event`'s \
                     `type`), `id: <id>`, and `data: <the Event as one line of JSON>`, ended by a blank \
                     line. `id:` is {ids}. To resume after a cut, send the last `id:` received as \
                     `Last-Event-ID` (browsers' `EventSource` does): nothing is missed or repeated. \
                     Lines starting with `:` are keep-alive comments, at most {KEEP_ALIVE_MAX_SECS} s \
                     apart when nothing else is sent (`realtime.keep_alive_secs`); ignore them.{retry}"
                ));
            }
        }
    }
    unknown
}
