//! What a WebSocket client may send: typing, presence, cursor acknowledgements, and the chat
//! frames (`send`, `feedback`, `cancel`) that do what their REST routes do, through the same
//! services, so authorization, validation, idempotency and limits are the same code path.
//! Each chat frame is answered with an `ack`; a refused frame of any kind too, and the socket
//! stays open (a client's mistake in one frame should not cost it its stream).

use skein_domain::entities::{Created, Session};
use skein_shared::api_key::ApiScope;
use skein_shared::assistant::FeedbackRequest;
use skein_shared::event::{ClientFrame, Event, EventBody, FrameAck, SendFrame};
use skein_shared::thread::{CreateRootRequest, ReplyRequest, ViaKind};
use skein_shared::{ErrorCode, Problem};

use crate::AppState;
use crate::auth::{may_ask, via_of};
use crate::error::ApiError;
use crate::{rate_limits, scopes};
use skein_domain::rate::Place;
use skein_shared::ConversationId;
use skein_shared::limits::RouteClass;

/// What to do after a client frame.
pub(super) enum Outcome {
    Nothing,
    /// The client has processed everything up to this cursor.
    Cursor(String),
    /// Send this `ack` frame.
    Reply(String),
}

pub(super) async fn handle(state: &AppState, caller: &Session, text: &str) -> Outcome {
    if let Err(refused) = crate::input::check_json(text.as_bytes()) {
        let problem: Problem = *ApiError::from(refused).0;
        return reply(FrameAck { status: problem.status, problem: Some(problem), ..FrameAck::default() });
    }
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(e) => {
            let problem = ApiError::new(ErrorCode::MalformedJson, "The frame is not a client frame")
                .with_detail(format!("unreadable frame: {e}"));
            return reply(FrameAck { status: 400, problem: Some(*problem.0), ..FrameAck::default() });
        }
    };
    let request_id = match &frame {
        ClientFrame::Send(send) => send.request_id.clone(),
        ClientFrame::Feedback { request_id, .. } | ClientFrame::Cancel { request_id, .. } => request_id.clone(),
        _ => None,
    };
    let client_msg_id = match &frame {
        ClientFrame::Send(send) => send.client_msg_id.clone(),
        _ => None,
    };
    match run(state, caller, frame).await {
        Ok(Done::Quietly) => Outcome::Nothing,
        Ok(Done::Cursor(cursor)) => Outcome::Cursor(cursor),
        Ok(Done::Acked(ack)) => reply(FrameAck { request_id, client_msg_id, ..*ack }),
        Err(e) => {
            let problem: Problem = *e.0;
            reply(FrameAck {
                request_id,
                client_msg_id,
                status: problem.status,
                problem: Some(problem),
                ..FrameAck::default()
            })
        }
    }
}

enum Done {
    Quietly,
    Cursor(String),
    Acked(Box<FrameAck>),
}

async fn run(state: &AppState, caller: &Session, frame: ClientFrame) -> Result<Done, ApiError> {
    let user = caller.user.id;
    let needs = |scope| caller.api_key.as_ref().map_or(Ok(()), |grant| scopes::demand(grant, scope));
    if let Some((class, place)) = frame_class(&frame) {
        rate_limits::count_frame(state, caller, class, place).await?;
    }
    match frame {
        ClientFrame::Typing { conversation_id, root_id, typing } => {
            needs(ApiScope::Write)?;
            state.services.typing(user, conversation_id, root_id, typing).await?;
            Ok(Done::Quietly)
        }
        ClientFrame::Presence { away } => {
            needs(ApiScope::Write)?;
            state.services.heartbeat(user, away).await?;
            Ok(Done::Quietly)
        }
        ClientFrame::Ack { cursor } => match skein_domain::cursor::EventCursor::decode(&cursor) {
            Some(_) => Ok(Done::Cursor(cursor)),
            None => Err(ApiError::new(ErrorCode::BadRequest, "The cursor is not one of this server's")),
        },
        ClientFrame::Send(send) => {
            needs(ApiScope::Write)?;
            if send.generate {
                needs(ApiScope::Assistant)?;
            }
            send_message(state, caller, send).await.map(|ack| Done::Acked(Box::new(ack)))
        }
        ClientFrame::Feedback { message_id, rating, reason, comment, .. } => {
            needs(ApiScope::Assistant)?;
            let feedback = rating.map(|rating| FeedbackRequest { rating, reason, comment });
            state.services.set_feedback(user, message_id, feedback).await?;
            Ok(Done::Acked(Box::new(FrameAck { status: 200, message_id: Some(message_id), ..FrameAck::default() })))
        }
        ClientFrame::Cancel { message_id, .. } => {
            needs(ApiScope::Assistant)?;
            let message = state.services.cancel_generation(user, message_id).await?;
            Ok(Done::Acked(Box::new(FrameAck { status: 200, message_id: Some(message.id), ..FrameAck::default() })))
        }
    }
}

/// The class a frame is counted in, as its REST route is (a cursor acknowledgement is not).
fn frame_class(frame: &ClientFrame) -> Option<(RouteClass, Place)> {
    let conversation = |id: Option<ConversationId>| id.map_or(Place::Nowhere, Place::Conversation);
    Some(match frame {
        ClientFrame::Typing { conversation_id, .. } => (RouteClass::Typing, Place::Conversation(*conversation_id)),
        ClientFrame::Presence { .. } => (RouteClass::Presence, Place::Nowhere),
        ClientFrame::Ack { .. } => return None,
        ClientFrame::Send(send) => match send.parent_id {
            Some(parent) => (RouteClass::Post, Place::Message(parent)),
            None => (RouteClass::Post, conversation(send.conversation_id)),
        },
        ClientFrame::Feedback { message_id, .. } => (RouteClass::React, Place::Message(*message_id)),
        ClientFrame::Cancel { message_id, .. } => (RouteClass::Write, Place::Message(*message_id)),
    })
}

/// A root or a reply, as the REST routes post them.
async fn send_message(state: &AppState, caller: &Session, send: SendFrame) -> Result<FrameAck, ApiError> {
    let (user, via) = (caller.user.id, via_of(caller, ViaKind::Session));
    let stored = match (send.root, send.parent_id, send.conversation_id) {
        (true, None, Some(conversation)) => {
            let req = CreateRootRequest {
                content: send.content,
                title: send.title,
                tags: send.tags,
                client_msg_id: send.client_msg_id,
                settings: None,
            };
            state.services.create_root(user, via, may_ask(caller), conversation, req).await?.map(|m| (m, None))
        }
        (false, Some(parent), conversation) => {
            if let Some(conversation) = conversation {
                // A reply lands in its parent's conversation: one named otherwise is a mistake.
                let parent = state.services.message_detail(user, parent).await?;
                if parent.message.conversation_id != conversation {
                    return Err(skein_domain::DomainError::NotFound.into());
                }
            }
            let req =
                ReplyRequest { content: send.content, client_msg_id: send.client_msg_id, generate: send.generate };
            let stored = state.services.reply(user, via, may_ask(caller), parent, req).await?;
            stored.map(|r| (r.message, r.assistant_message.map(|a| a.id)))
        }
        (true, _, _) => {
            return Err(frame_field("conversation_id", "a root needs `conversation_id` and no `parent_id`"));
        }
        (false, None, _) => {
            return Err(frame_field("parent_id", "give `parent_id`, or `root: true` to start a thread"));
        }
    };
    let (status, (message, assistant)) = match stored {
        Created::New(v) => (201, v),
        Created::Existing(v) => (200, v),
    };
    Ok(FrameAck { status, message_id: Some(message.id), assistant_message_id: assistant, ..FrameAck::default() })
}

fn frame_field(field: &str, message: &str) -> ApiError {
    skein_domain::DomainError::field(field, "required", message).into()
}

fn reply(ack: FrameAck) -> Outcome {
    let event = Event::live(EventBody::Ack(ack), time::OffsetDateTime::now_utc());
    Outcome::Reply(serde_json::to_string(&event).unwrap_or_default())
}
