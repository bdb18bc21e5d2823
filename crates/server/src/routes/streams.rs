//! Event streams: SSE for everything the caller follows or for one conversation, the same
//! over WebSocket, and the stream tokens for clients that cannot set headers.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, get, post, web};
use actix_web_lab::sse;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use skein_domain::entities::Session;
use skein_infra::store::delivery::{Delivery, DeliveryStream};
use skein_shared::api_key::ApiScope;
use skein_shared::event::{Event, EventBody, StreamError, StreamTokenResponse};
use skein_shared::{ConversationId, ErrorCode};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::ws_frames::{self, Outcome};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::stream_slots::StreamSlot;
use crate::{AppState, scopes};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_stream_token).service(stream_events).service(stream_conversation).service(connect_websocket);
}

/// How long a client waits before reconnecting (the SSE `retry:` field).
pub(crate) const RETRY: Duration = Duration::from_secs(2);

/// The longest gap between keep-alives (SSE comments, WebSocket pings) whatever
/// `realtime.keep_alive_secs` says: proxies commonly cut idle connections after 30 s or more.
pub(crate) const KEEP_ALIVE_MAX_SECS: u64 = 15;

/// The keep-alive interval of every stream.
pub(crate) fn keep_alive(state: &AppState) -> Duration {
    Duration::from_secs(state.streams.keep_alive_secs.clamp(1, KEEP_ALIVE_MAX_SECS))
}

#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Resume after this cursor (as `Last-Event-ID`, which wins when both are given).
    pub after: Option<String>,
    /// A token from `POST /api/stream/token`, for clients that cannot send headers.
    pub token: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsParams {
    /// Resume after this cursor.
    pub after: Option<String>,
    /// A token from `POST /api/stream/token` (browsers' WebSocket cannot send headers).
    pub token: Option<String>,
    /// Follow one conversation instead of every conversation the caller is a member of.
    pub conversation_id: Option<ConversationId>,
}

/// A token that opens streams (and nothing else) for the caller's session, for a few minutes.
#[utoipa::path(tag = "streams", responses((status = 200, description = "A stream token", body = StreamTokenResponse)))]
#[post("/stream/token")]
async fn create_stream_token(state: AppState, caller: Caller) -> ApiResult<web::Json<StreamTokenResponse>> {
    let ttl = time::Duration::seconds(state.streams.stream_token_ttl_secs as i64);
    Ok(web::Json(state.services.issue_stream_token(&caller.session, ttl).await?))
}

/// Every event of every conversation the caller is a member of, as Server-Sent Events.
///
/// `id:` is the event's cursor; reconnect with `Last-Event-ID` (or `?after=`) to receive
/// exactly what was missed. A cursor that cannot be resumed from gets a `resync` event
/// first. Keep-alive comments come at least every 15 s.
#[utoipa::path(tag = "streams", params(StreamParams, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor")),
    responses((status = 200, description = "An endless stream of events", body = Event, content_type = "text/event-stream")))]
#[get("/stream")]
async fn stream_events(
    req: HttpRequest,
    state: AppState,
    params: web::Query<StreamParams>,
) -> ApiResult<impl Responder> {
    let caller = stream_session(&req, &state, params.token.as_deref()).await?;
    sse_response(&state, &caller, None, resume_cursor(&req, params.after.as_deref())).await
}

/// One conversation's events, as Server-Sent Events (for bots and services).
#[utoipa::path(tag = "streams", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id"), StreamParams, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor")),
    responses((status = 200, description = "An endless stream of events", body = Event, content_type = "text/event-stream")))]
#[get("/conversations/{id}/stream")]
async fn stream_conversation(
    req: HttpRequest,
    state: AppState,
    id: web::Path<ConversationId>,
    params: web::Query<StreamParams>,
) -> ApiResult<impl Responder> {
    let caller = stream_session(&req, &state, params.token.as_deref()).await?;
    sse_response(&state, &caller, Some(id.into_inner()), resume_cursor(&req, params.after.as_deref())).await
}

/// The same events over a WebSocket (one JSON envelope per text frame). The client may send
/// `typing`, `presence` and `ack` (cursor) frames, and chat frames that do what their REST
/// routes do: `send` (a root or a reply), `feedback` and `cancel`, each answered by an `ack`
/// event with its `request_id` (and `client_msg_id`), the stored message's id, or a problem.
/// A refused or unreadable frame gets an `ack` with the problem; the socket stays open.
/// Browsers' `Origin` must be this server or allowed in the configuration. Resume with `?after=`.
#[utoipa::path(tag = "streams", params(WsParams), responses(
    (status = 101, description = "Switching to WebSocket; server frames are `Event`s, client frames `ClientFrame`s"),
))]
#[get("/ws")]
async fn connect_websocket(
    req: HttpRequest,
    body: web::Payload,
    state: AppState,
    params: web::Query<WsParams>,
) -> ApiResult<HttpResponse> {
    check_origin(&req, &state)?;
    let caller = stream_session(&req, &state, params.token.as_deref()).await?;
    let slot = state.stream_slots.take(caller.user.id)?;
    let feed = state.services.open_feed(caller.user.id, params.conversation_id, params.after.as_deref()).await?;
    let (response, session, messages) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("not a WebSocket handshake: {e}")))?;
    actix_web::rt::spawn(async move {
        websocket_session(state.clone(), caller, feed, session, messages).await;
        drop(slot);
    });
    Ok(response)
}

/// The feed as SSE, until it ends or the session that opened it does.
async fn sse_response(
    state: &AppState,
    caller: &Session,
    conversation: Option<ConversationId>,
    resume: Option<String>,
) -> ApiResult<impl Responder + use<>> {
    let slot = state.stream_slots.take(caller.user.id)?;
    let feed = state.services.open_feed(caller.user.id, conversation, resume.as_deref()).await?;
    let events =
        until_session_ends(feed.map(|delivery| sse_event(&delivery)), state.services.session_end(caller), slot);
    Ok(sse::Sse::from_stream(events).with_keep_alive(keep_alive(state)).with_retry_duration(RETRY))
}

/// The final event of a stream whose session ended: reconnecting with it is pointless.
pub(crate) fn session_ended_event() -> Event {
    let error = StreamError {
        code: ErrorCode::Unauthenticated,
        message: "the session ended (logged out, key revoked or expired): sign in again".into(),
        reason: None,
    };
    Event::live(EventBody::Error(error), time::OffsetDateTime::now_utc())
}

/// `events` until they end, or until the session ends: then a last `error` event says why.
/// The stream holds the user's `slot` for as long as it lives.
pub(crate) fn until_session_ends(
    events: impl futures_util::Stream<Item = sse::Event> + Unpin,
    end: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    slot: StreamSlot,
) -> impl futures_util::Stream<Item = Result<sse::Event, std::convert::Infallible>> {
    futures_util::stream::unfold(Some((events, end, slot)), |state| async move {
        let (mut events, mut end, slot) = state?;
        tokio::select! {
            event = events.next() => event.map(|e| (Ok(e), Some((events, end, slot)))),
            () = &mut end => {
                let event = session_ended_event();
                let data = sse::Data::new(serde_json::to_string(&event).unwrap_or_default()).event(event.body.kind());
                Some((Ok(sse::Event::Data(data)), None))
            }
        }
    })
}

fn sse_event(delivery: &Delivery) -> sse::Event {
    let data = sse::Data::new(delivery.json.clone()).event(delivery.kind);
    sse::Event::Data(match &delivery.id {
        Some(id) => data.id(id.clone()),
        None => data,
    })
}

/// `Last-Event-ID`, else `?after=`.
fn resume_cursor(req: &HttpRequest, after: Option<&str>) -> Option<String> {
    req.headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| after.map(str::to_owned))
        .filter(|c| !c.trim().is_empty())
}

/// The caller by session (header or cookie), else by stream token (an API key's needs
/// `read`, as its requests do).
pub(super) async fn stream_session(req: &HttpRequest, state: &AppState, token: Option<&str>) -> ApiResult<Session> {
    match Caller::extract(req).await {
        Ok(caller) => Ok(caller.session),
        // Only a missing or unknown session falls back to the token (not a refusal).
        Err(e) if e.0.code != ErrorCode::Unauthenticated => Err(e),
        Err(e) => match token {
            Some(token) => {
                let session = state.services.authenticate_stream_token(token).await?;
                if let Some(grant) = &session.api_key {
                    scopes::demand(grant, ApiScope::Read)?;
                }
                Ok(session)
            }
            None => Err(e),
        },
    }
}

/// Browsers send `Origin` on WebSocket handshakes; other sites must not ride a user's cookie.
fn check_origin(req: &HttpRequest, state: &AppState) -> ApiResult<()> {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    // Scheme and host: a page served over plain HTTP is not this HTTPS site's origin.
    let info = req.connection_info();
    let same_origin = origin == format!("{}://{}", info.scheme(), info.host());
    if same_origin || state.streams.allowed_origins.iter().any(|o| o == origin) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "This origin may not open a WebSocket here"))
    }
}

async fn websocket_session(
    state: AppState,
    caller: Session,
    mut feed: DeliveryStream,
    mut session: actix_ws::Session,
    messages: actix_ws::MessageStream,
) {
    let keep_alive = keep_alive(&state);
    let mut messages = messages.max_frame_size(64 * 1024).aggregate_continuations();
    let mut ping = tokio::time::interval(keep_alive);
    let mut last_heard = Instant::now();
    let mut acked: Option<String> = None;
    let session_end = state.services.session_end(&caller);
    tokio::pin!(session_end);
    let ended = loop {
        tokio::select! {
            () = &mut session_end => {
                let _ = session.text(serde_json::to_string(&session_ended_event()).unwrap_or_default()).await;
                break "session ended"
            }
            delivery = feed.next() => match delivery {
                Some(d) => if session.text(d.json.clone()).await.is_err() { break "client gone" },
                None => break "stream ended",
            },
            message = messages.next() => match message {
                Some(Ok(actix_ws::AggregatedMessage::Text(text))) => {
                    last_heard = Instant::now();
                    match ws_frames::handle(&state, &caller, &text).await {
                        Outcome::Cursor(cursor) => acked = Some(cursor),
                        Outcome::Nothing => {}
                        Outcome::Reply(ack) => if session.text(ack).await.is_err() { break "client gone" },
                    }
                }
                Some(Ok(actix_ws::AggregatedMessage::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if session.pong(&bytes).await.is_err() { break "client gone" }
                }
                Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => last_heard = Instant::now(),
                Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {}
                Some(Ok(actix_ws::AggregatedMessage::Close(_))) | Some(Err(_)) | None => break "client closed",
            },
            _ = ping.tick() => {
                // A client that answers nothing for three keep-alive periods is gone.
                if last_heard.elapsed() > keep_alive * 3 { break "client silent" }
                if session.ping(b"").await.is_err() { break "client gone" }
            }
        }
    };
    tracing::debug!(user = %caller.user.id, reason = ended, acked = acked.as_deref().unwrap_or("-"), "websocket closed");
    let _ = session.close(None).await;
}
