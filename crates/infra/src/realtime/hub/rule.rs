//! Who may see an event: the live side of the one delivery rule (the replay side is the SQL
//! of `store/read.rs`; the realtime tests run the same random histories through both).
//!
//! A user sees a conversation's logged event if one of their membership spans of the
//! conversation covers the event's position, or the event is `open` (its conversation was
//! workspace-visible when it was written), one of their workspace spans covers it and no
//! departure from the conversation does (a departure covers what comes after the leaving
//! event, up to their joining again). An event with an audience goes to that user only; a
//! workspace-level event (no conversation) only to the all-conversations stream. Live-only
//! events (typing, presence, deltas) go to whoever sees the conversation now: a span of it,
//! or of its workspace when it is open and they have not left it, that has not ended.
//!
//! Pure: no I/O, no clock, no channel.

use skein_domain::cursor::EventCursor;
use skein_shared::conversation::Visibility;
use skein_shared::event::EventBody;
use skein_shared::{ConversationId, UserId, WorkspaceId};

use crate::store::read::{LoggedEvent, Span, SpanOf};
use skein_domain::entities::FeedScope;

/// A subscriber as the rule sees it.
#[derive(Clone, Debug)]
pub(super) struct Viewer {
    pub user: UserId,
    pub scope: FeedScope,
    /// Membership spans by conversation, and non-guest workspace membership spans, sorted
    /// by what they are of. (A sorted vector rather than a map: a few entries per
    /// connection, and ten thousand idle connections must stay small.)
    pub spans: Vec<(SpanOf, Span)>,
}

/// The spans of one thing, in a sorted span list.
fn spans_of(spans: &[(SpanOf, Span)], of: SpanOf) -> impl Iterator<Item = &Span> {
    let start = spans.partition_point(|(o, _)| *o < of);
    spans[start..].iter().take_while(move |(o, _)| *o == of).map(|(_, span)| span)
}

pub(super) fn covers(spans: &[(SpanOf, Span)], of: SpanOf, at: EventCursor) -> bool {
    spans_of(spans, of).any(|s| s.contains(at))
}

fn open_now(spans: &[(SpanOf, Span)], of: SpanOf) -> bool {
    spans_of(spans, of).any(|s| s.until.is_none())
}

/// Open events of the conversation at `at` are held back: the user had left it (the leaving
/// event itself still reaches them).
fn departed(spans: &[(SpanOf, Span)], conversation: ConversationId, at: EventCursor) -> bool {
    spans_of(spans, SpanOf::Departure(conversation)).any(|s| s.contains(at) && at != s.from)
}

/// Whether spans of `of` matter to a stream of `scope`.
pub(super) fn relevant(scope: FeedScope, of: SpanOf) -> bool {
    match (scope, of) {
        (FeedScope::Member, _) => true,
        (FeedScope::Conversation { id, .. }, SpanOf::Conversation(c) | SpanOf::Departure(c)) => c == id,
        (FeedScope::Conversation { workspace, .. }, SpanOf::Workspace(w)) => w == workspace,
    }
}

/// The event that makes a workspace-visible conversation private.
pub(super) fn closes_to_workspace(body: &EventBody) -> bool {
    matches!(body, EventBody::ConversationUpdated(c) if c.visibility != Visibility::Workspace)
}

impl Viewer {
    pub fn new(user: UserId, scope: FeedScope, mut spans: Vec<(SpanOf, Span)>) -> Self {
        spans.retain(|(of, _)| relevant(scope, *of));
        spans.sort_by_key(|(of, span)| (*of, span.from));
        Self { user, scope, spans }
    }

    pub fn wants(&self, conversation: ConversationId) -> bool {
        match self.scope {
            FeedScope::Member => true,
            FeedScope::Conversation { id, .. } => id == conversation,
        }
    }

    pub fn may_see(&self, event: &LoggedEvent) -> bool {
        if event.audience.is_some_and(|a| a != self.user) {
            return false;
        }
        let Some(conversation) = event.conversation_id else {
            // The user's own workspace-level events: on the all-conversations stream.
            return self.scope == FeedScope::Member;
        };
        self.wants(conversation)
            && (covers(&self.spans, SpanOf::Conversation(conversation), event.cursor)
                || event.open
                    && covers(&self.spans, SpanOf::Workspace(event.workspace_id), event.cursor)
                    && !departed(&self.spans, conversation, event.cursor))
    }

    /// Sees the conversation now (for live-only events); `open_to` is its workspace when it
    /// is workspace-visible.
    pub fn present_in(&self, conversation: ConversationId, open_to: Option<WorkspaceId>) -> bool {
        self.wants(conversation)
            && (open_now(&self.spans, SpanOf::Conversation(conversation))
                || open_to.is_some_and(|w| {
                    open_now(&self.spans, SpanOf::Workspace(w))
                        && !open_now(&self.spans, SpanOf::Departure(conversation))
                }))
    }

    /// A per-conversation stream that can no longer see its conversation: it ends.
    pub fn lost_its_conversation(&self) -> bool {
        match self.scope {
            FeedScope::Member => false,
            FeedScope::Conversation { id, workspace, open } => !self.present_in(id, open.then_some(workspace)),
        }
    }

    /// Registers a span change at `at` (an event just read): opened when `open`, else closed.
    /// Idempotent: a change the loaded spans already hold changes nothing.
    pub fn reconcile(&mut self, of: SpanOf, at: EventCursor, open: bool) {
        if !open {
            for (_, span) in self.spans.iter_mut().filter(|(o, s)| *o == of && s.until.is_none() && s.from <= at) {
                span.until = Some(at);
            }
        } else if !covers(&self.spans, of, at) {
            let at_end = self.spans.partition_point(|(o, _)| *o <= of);
            self.spans.insert(at_end, (of, Span { from: at, until: None }));
        }
    }
}

#[cfg(test)]
mod tests {
    use skein_shared::event::{Event, MembershipChange, MembershipChanged};

    use super::*;

    fn at(id: i64) -> EventCursor {
        EventCursor { tx: 1, id }
    }

    fn event(conversation: Option<ConversationId>, workspace: WorkspaceId, id: i64, open: bool) -> LoggedEvent {
        let body = EventBody::MembershipChanged(MembershipChanged {
            user_id: UserId::generate(),
            change: MembershipChange::RoleChanged,
            role: None,
        });
        LoggedEvent {
            cursor: at(id),
            conversation_id: conversation,
            workspace_id: workspace,
            open,
            audience: None,
            event: Event::live(body, time::OffsetDateTime::UNIX_EPOCH),
        }
    }

    #[test]
    fn a_member_sees_what_their_spans_cover_and_open_events_of_their_workspace() {
        let (c, other, ws) = (ConversationId::generate(), ConversationId::generate(), WorkspaceId::generate());
        let member = Viewer::new(
            UserId::generate(),
            FeedScope::Member,
            vec![
                (SpanOf::Conversation(c), Span { from: at(10), until: Some(at(20)) }),
                (SpanOf::Workspace(ws), Span { from: at(30), until: None }),
            ],
        );
        assert!(!member.may_see(&event(Some(c), ws, 9, false)), "before joining");
        assert!(member.may_see(&event(Some(c), ws, 10, false)), "the joining event");
        assert!(member.may_see(&event(Some(c), ws, 20, false)), "the leaving event");
        assert!(!member.may_see(&event(Some(c), ws, 21, false)), "after leaving");
        assert!(!member.may_see(&event(Some(other), ws, 25, true)), "open, before the workspace span");
        assert!(member.may_see(&event(Some(other), ws, 31, true)), "open, in the workspace span");
        assert!(!member.may_see(&event(Some(other), ws, 31, false)), "private, not a member");
        assert!(!member.may_see(&event(Some(c), WorkspaceId::generate(), 31, true)), "another workspace");
        assert!(member.present_in(other, Some(ws)), "an open conversation of their workspace, now");
        assert!(!member.present_in(c, None), "left");
    }

    #[test]
    fn a_departure_holds_back_open_events_after_the_leaving_one_until_the_return() {
        let (c, ws) = (ConversationId::generate(), WorkspaceId::generate());
        let mut viewer = Viewer::new(
            UserId::generate(),
            FeedScope::Member,
            vec![(SpanOf::Workspace(ws), Span { from: at(1), until: None })],
        );
        assert!(viewer.may_see(&event(Some(c), ws, 5, true)) && viewer.present_in(c, Some(ws)));
        viewer.reconcile(SpanOf::Departure(c), at(10), true);
        assert!(viewer.may_see(&event(Some(c), ws, 10, true)), "the leaving event");
        assert!(!viewer.may_see(&event(Some(c), ws, 11, true)), "after leaving");
        assert!(!viewer.present_in(c, Some(ws)), "gone from its live events");
        assert!(viewer.may_see(&event(Some(ConversationId::generate()), ws, 11, true)), "other open conversations");
        viewer.reconcile(SpanOf::Departure(c), at(20), false);
        viewer.reconcile(SpanOf::Conversation(c), at(20), true);
        assert!(viewer.may_see(&event(Some(c), ws, 20, true)), "the joining event, as a member");
        assert!(viewer.may_see(&event(Some(c), ws, 21, true)) && viewer.present_in(c, Some(ws)));
        viewer.reconcile(SpanOf::Conversation(c), at(30), false);
        viewer.reconcile(SpanOf::Departure(c), at(30), true);
        assert!(!viewer.may_see(&event(Some(c), ws, 31, true)), "left again");
        assert!(viewer.may_see(&event(Some(c), ws, 25, true)), "between the departures");
        assert!(!viewer.may_see(&event(Some(c), ws, 15, true)), "during the first");
    }

    #[test]
    fn audiences_and_workspace_level_events_reach_only_their_streams() {
        let (c, ws) = (ConversationId::generate(), WorkspaceId::generate());
        let user = UserId::generate();
        let spans = vec![(SpanOf::Conversation(c), Span { from: at(1), until: None })];
        let all = Viewer::new(user, FeedScope::Member, spans.clone());
        let one = Viewer::new(user, FeedScope::Conversation { id: c, workspace: ws, open: false }, spans);
        let mut to_other = event(Some(c), ws, 5, false);
        to_other.audience = Some(UserId::generate());
        assert!(!all.may_see(&to_other) && !one.may_see(&to_other));
        let mut own = event(None, ws, 6, false);
        own.audience = Some(user);
        assert!(all.may_see(&own), "the all-conversations stream");
        assert!(!one.may_see(&own), "not a per-conversation stream");
        assert!(!one.may_see(&event(Some(ConversationId::generate()), ws, 7, true)), "another conversation");
    }

    #[test]
    fn reconcile_opens_and_closes_once_and_ends_a_stream_that_lost_its_conversation() {
        let (c, ws) = (ConversationId::generate(), WorkspaceId::generate());
        let mut viewer =
            Viewer::new(UserId::generate(), FeedScope::Conversation { id: c, workspace: ws, open: false }, vec![]);
        assert!(viewer.lost_its_conversation());
        viewer.reconcile(SpanOf::Conversation(c), at(5), true);
        viewer.reconcile(SpanOf::Conversation(c), at(6), true);
        assert_eq!(viewer.spans.len(), 1, "opening an open span changes nothing");
        assert!(!viewer.lost_its_conversation());
        viewer.reconcile(SpanOf::Conversation(c), at(9), false);
        viewer.reconcile(SpanOf::Conversation(c), at(12), false);
        assert_eq!(viewer.spans[0].1, Span { from: at(5), until: Some(at(9)) }, "closed at the first close");
        assert!(viewer.may_see(&event(Some(c), ws, 9, false)) && !viewer.may_see(&event(Some(c), ws, 10, false)));
        assert!(viewer.lost_its_conversation());
        viewer.reconcile(SpanOf::Conversation(c), at(15), true);
        assert!(viewer.may_see(&event(Some(c), ws, 15, false)) && !viewer.may_see(&event(Some(c), ws, 12, false)));
    }
}
