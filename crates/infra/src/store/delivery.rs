//! Events as streams send them: serialised once for every subscriber, with the cursor that
//! is their SSE `id:`. (Here, below the runtime, because the store hands feeds of them to the
//! domain; the hub and the replay both make them.)

use std::sync::Arc;

use bytestring::ByteString;
use skein_domain::cursor::EventCursor;
use skein_shared::event::Event;

use super::read::LoggedEvent;

/// One event, serialised once for every subscriber that receives it: its text and cursor are
/// shared (cloning them is a reference count), so a delivery costs no copy per subscriber
/// until its frame is written.
#[derive(Debug)]
pub struct Delivered {
    /// The cursor as clients see it (the SSE `id:`); `None` for live-only events.
    pub id: Option<ByteString>,
    pub kind: &'static str,
    pub json: ByteString,
}

impl Delivered {
    pub fn new(cursor: Option<EventCursor>, event: &Event) -> Self {
        // Serialising our own types cannot fail; an empty object keeps the stream going if it did.
        let json = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
        Self { id: cursor.map(|c| c.encode().into()), kind: event.body.kind(), json: json.into() }
    }

    pub fn logged(event: &LoggedEvent) -> Self {
        Self::new(Some(event.cursor), &event.event)
    }
}

pub type Delivery = Arc<Delivered>;

/// One client's stream of deliveries (the domain's `EventFeeds::Feed`).
pub type DeliveryStream = futures_util::stream::BoxStream<'static, Delivery>;
