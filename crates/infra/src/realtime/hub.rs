//! The per-instance fan-out: one task tails the event log in order and hands each event to
//! the local subscribers allowed to see it.
//!
//! The hub is an actor: it alone owns the subscriber tables, so registering a subscriber,
//! dispatching an event and applying a membership change never interleave. A subscriber is
//! registered at the hub's current position and its membership spans are loaded at that
//! moment, so every later event is judged against complete spans; spans are keyed by event
//! position, so applying a membership event the load had already seen changes nothing.
//!
//! Each subscriber has a bounded queue. A subscriber whose queue is full is dropped and
//! flagged as cut off: it never slows the hub, the writers or anyone else.
//!
//! What one pass of the hub has for a subscriber (the events of a commit, the deltas that
//! arrived together) is handed over as one batch before the hub next waits: its connection
//! wakes once and writes the batch in one go, so frames need no Nagle's algorithm to share
//! packets, and no frame waits for a later one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use skein_domain::cursor::EventCursor;
use skein_shared::assistant::{MessageDelta, MessageDone};
use skein_shared::conversation::Visibility;
use skein_shared::event::{EventBody, MembershipChange};
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};
use tokio::sync::{Notify, mpsc, oneshot};

use super::live::{Touched, new_message_by};
use crate::store::PgPool;
use crate::store::read::{self, LoggedEvent, Span, SpanOf};

pub use super::live::{Batch, Delivered, Delivery, Ephemeral, Routed};

/// What a subscriber follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every conversation the user can see: as a member, or as a (non-guest) member of the
    /// workspace of a workspace-visible conversation.
    Member,
    /// One conversation, with its workspace and whether it is workspace-visible as the
    /// stream opens (later events of the conversation update that).
    Conversation { id: ConversationId, workspace: WorkspaceId, open: bool },
}

#[derive(Clone, Copy, Debug)]
pub struct HubConfig {
    /// Deliveries a subscriber may have queued before it is cut off.
    pub buffer: usize,
    /// Read the log at least this often even without a wake-up.
    pub poll_interval: Duration,
    /// Events per log read.
    pub batch: i64,
}

/// A registered subscriber's end.
pub struct Subscription {
    pub deliveries: mpsc::Receiver<Batch>,
    /// Deliveries handed over and not yet taken (the receiver subtracts what it takes).
    pub queued: Arc<AtomicUsize>,
    /// The hub's position at registration: live deliveries all come after it.
    pub position: EventCursor,
    /// Set when the hub dropped this subscriber for being too slow.
    pub cut_off: Arc<AtomicBool>,
    _registration: Registration,
}

/// Unregisters the subscriber when its connection goes away.
struct Registration {
    id: u64,
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe(self.id));
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the event hub has stopped")]
pub struct HubStopped;

/// A handle to the hub task.
#[derive(Clone)]
pub struct Hub {
    commands: mpsc::UnboundedSender<Command>,
    ephemerals: mpsc::UnboundedSender<Routed>,
    /// Presence changes, to be routed off the hub's task.
    presence: mpsc::UnboundedSender<Box<Ephemeral>>,
}

enum Command {
    Subscribe {
        user: UserId,
        scope: Scope,
        after: Option<EventCursor>,
        reply: oneshot::Sender<Subscription>,
    },
    Unsubscribe(u64),
    /// A live-only event for one user's connections that follow the conversation.
    ToUser {
        user: UserId,
        conversation: ConversationId,
        delivery: Delivery,
    },
    /// Counts that a replay may have changed: for the unread notifier.
    Touched(Vec<Touched>),
    Shutdown,
}

impl Hub {
    /// Starts the hub at the log's newest readable event; `wake` is signalled after commits.
    /// New messages delivered to members are reported to `touched` (the unread notifier).
    pub async fn start(
        pool: PgPool,
        wake: Arc<Notify>,
        config: HubConfig,
        touched: mpsc::UnboundedSender<Touched>,
    ) -> Result<Self, crate::store::SetupError> {
        let mut conn = pool.get().await.map_err(|e| crate::store::SetupError::Start(format!("the event hub: {e}")))?;
        let position = read::bounds(&mut conn)
            .await
            .map_err(|e| crate::store::SetupError::Start(format!("the event hub: {e}")))?
            .readable;
        drop(conn);
        let (commands, rx) = mpsc::unbounded_channel();
        let (ephemerals, ephemeral_rx) = mpsc::unbounded_channel();
        let (presence, presence_rx) = mpsc::unbounded_channel();
        tokio::spawn(super::recipients::run(pool.clone(), presence_rx, ephemerals.clone()));
        let actor = Actor {
            ephemerals: ephemeral_rx,
            deferred: VecDeque::new(),
            outbox: Outbox::default(),
            answers: AnswerStreams::default(),
            pool,
            config,
            position,
            next_id: 0,
            subs: HashMap::new(),
            by_span: HashMap::new(),
            by_user: HashMap::new(),
            commands: commands.clone(),
            touched,
        };
        tokio::spawn(actor.run(rx, wake));
        Ok(Self { commands, ephemerals, presence })
    }

    /// Registers a subscriber. Live deliveries skip everything at or before `after`.
    pub async fn subscribe(
        &self,
        user: UserId,
        scope: Scope,
        after: Option<EventCursor>,
    ) -> Result<Subscription, HubStopped> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Subscribe { user, scope, after, reply }).map_err(|_| HubStopped)?;
        rx.await.map_err(|_| HubStopped)
    }

    /// Hands a live-only event to local subscribers.
    pub fn ephemeral(&self, event: Ephemeral) {
        let event = Box::new(event);
        match event.conversation_id {
            Some(conversation) => {
                let _ = self.ephemerals.send(Routed { event, conversations: vec![conversation] });
            }
            None => {
                let _ = self.presence.send(event);
            }
        }
    }

    /// Hands a live-only event to the user's connections that follow the conversation.
    pub fn send_to_user(&self, user: UserId, conversation: ConversationId, delivery: Delivery) {
        let _ = self.commands.send(Command::ToUser { user, conversation, delivery });
    }

    /// Reports members whose unread counts a replay may have changed.
    pub fn touched(&self, pairs: Vec<Touched>) {
        if !pairs.is_empty() {
            let _ = self.commands.send(Command::Touched(pairs));
        }
    }

    /// Ends every subscription (their streams finish) and stops the hub.
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

struct Subscriber {
    user: UserId,
    scope: Scope,
    /// Membership spans by conversation, and non-guest workspace membership spans, sorted
    /// by what they are of. (A sorted vector rather than a map: a few entries per
    /// connection, and ten thousand idle connections must stay small.)
    spans: Vec<(SpanOf, Span)>,
    /// Deliver only events after this.
    after: EventCursor,
    tx: mpsc::Sender<Batch>,
    queued: Arc<AtomicUsize>,
    cut_off: Arc<AtomicBool>,
}

/// The spans of one thing, in a sorted span list.
fn spans_of(spans: &[(SpanOf, Span)], of: SpanOf) -> impl Iterator<Item = &Span> {
    let start = spans.partition_point(|(o, _)| *o < of);
    spans[start..].iter().take_while(move |(o, _)| *o == of).map(|(_, span)| span)
}

fn covers(spans: &[(SpanOf, Span)], of: SpanOf, at: EventCursor) -> bool {
    spans_of(spans, of).any(|s| s.contains(at))
}

fn open_now(spans: &[(SpanOf, Span)], of: SpanOf) -> bool {
    spans_of(spans, of).any(|s| s.until.is_none())
}

impl Subscriber {
    fn wants(&self, conversation: ConversationId) -> bool {
        match self.scope {
            Scope::Member => true,
            Scope::Conversation { id, .. } => id == conversation,
        }
    }

    fn may_see(&self, event: &LoggedEvent) -> bool {
        if event.audience.is_some_and(|a| a != self.user) {
            return false;
        }
        let Some(conversation) = event.conversation_id else {
            // The user's own workspace-level events: on the all-conversations stream.
            return self.scope == Scope::Member;
        };
        self.wants(conversation)
            && (covers(&self.spans, SpanOf::Conversation(conversation), event.cursor)
                || event.open && covers(&self.spans, SpanOf::Workspace(event.workspace_id), event.cursor))
    }

    /// Sees the conversation now (for live-only events); `open_to` is its workspace when it
    /// is workspace-visible.
    fn present_in(&self, conversation: ConversationId, open_to: Option<WorkspaceId>) -> bool {
        self.wants(conversation)
            && (open_now(&self.spans, SpanOf::Conversation(conversation))
                || open_to.is_some_and(|w| open_now(&self.spans, SpanOf::Workspace(w))))
    }

    /// A per-conversation stream that can no longer see its conversation: it ends.
    fn lost_its_conversation(&self) -> bool {
        match self.scope {
            Scope::Member => false,
            Scope::Conversation { id, workspace, open } => !self.present_in(id, open.then_some(workspace)),
        }
    }

    /// Registers a span change at `at` (an event just read): opened when `open`, else closed.
    fn reconcile(&mut self, of: SpanOf, at: EventCursor, open: bool) {
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

struct Actor {
    pool: PgPool,
    config: HubConfig,
    /// The last event dispatched.
    position: EventCursor,
    next_id: u64,
    subs: HashMap<u64, Subscriber>,
    /// Routing: who may receive events of a conversation (members and per-conversation
    /// streams), of a workspace's workspace-visible conversations, and of a user.
    by_span: HashMap<SpanOf, HashSet<u64>>,
    by_user: HashMap<UserId, HashSet<u64>>,
    commands: mpsc::UnboundedSender<Command>,
    touched: mpsc::UnboundedSender<Touched>,
    /// Live-only events, apart from the commands so that the log reader can take those
    /// sent before a commit it just read (see `take_ephemerals`).
    ephemerals: mpsc::UnboundedReceiver<Routed>,
    /// Live-only events in arrival order, waiting for the logged event they must follow.
    deferred: VecDeque<(Instant, Option<EventCursor>, Routed)>,
    /// This pass's deliveries by subscriber, handed over by `flush` before the hub waits.
    outbox: Outbox,
    /// Answers streaming: where their deltas dispatched so far end, and those that ended.
    answers: AnswerStreams,
}

/// A `message.done` waits at most this long for the deltas it follows (they cross instances
/// by the bus, the done by the log) before it goes out without them.
const DONE_WAITS_AT_MOST: Duration = Duration::from_millis(500);
/// How soon the log is read again while a `message.done` waits for its deltas.
const DONE_RECHECK: Duration = Duration::from_millis(2);
/// Ended answers remembered, so that a delta arriving after its answer's end is dropped.
const ENDED_REMEMBERED: usize = 16_384;

/// What the hub knows of streaming answers' deltas, so that every subscriber gets an
/// answer's deltas before its `message.done` and none after.
#[derive(Default)]
struct AnswerStreams {
    /// Where each streaming answer's dispatched deltas end (characters).
    relayed: HashMap<MessageId, u32>,
    ended: HashSet<MessageId>,
    ended_order: VecDeque<MessageId>,
    /// The `message.done` being held, and since when.
    holding: Option<(MessageId, Instant)>,
}

impl AnswerStreams {
    /// Records a delta about to be dispatched; false if its answer has already ended.
    fn delta(&mut self, delta: &MessageDelta) -> bool {
        if self.ended.contains(&delta.message_id) {
            return false;
        }
        let end = delta.offset + delta.delta.chars().count() as u32;
        let relayed = self.relayed.entry(delta.message_id).or_default();
        *relayed = (*relayed).max(end);
        true
    }

    /// Whether the `message.done` must wait for deltas still on their way: this hub has seen
    /// the answer's deltas, they stop short of its length, and it has not waited too long.
    fn must_wait(&mut self, done: &MessageDone) -> bool {
        let short = self.relayed.get(&done.message_id).is_some_and(|end| *end < done.length);
        if !short {
            return false;
        }
        let since = match self.holding {
            Some((id, since)) if id == done.message_id => since,
            _ => self.holding.insert((done.message_id, Instant::now())).1,
        };
        since.elapsed() < DONE_WAITS_AT_MOST
    }

    /// The answer's `message.done` is being dispatched.
    fn ended(&mut self, message: MessageId) {
        self.relayed.remove(&message);
        self.holding = None;
        if self.ended.insert(message) {
            self.ended_order.push_back(message);
            if self.ended_order.len() > ENDED_REMEMBERED
                && let Some(oldest) = self.ended_order.pop_front()
            {
                self.ended.remove(&oldest);
            }
        }
    }
}

/// A live-only event waits at most this long for the logged event it must follow.
const DEFER_AT_MOST: Duration = Duration::from_secs(5);

/// Subscribe requests waiting for their spans.
type PendingSubscribe = (UserId, Scope, Option<EventCursor>, oneshot::Sender<Subscription>);

impl Actor {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, wake: Arc<Notify>) {
        let mut retry: Option<Duration> = None;
        // When to read the log without a wake-up: a deadline, so that a steady flow of live
        // events (assistant deltas) neither postpones it nor causes reads of its own.
        let mut read_at = tokio::time::Instant::now();
        loop {
            let (first, read_log) = tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => (Some(command), true),
                    None => break,
                },
                Some(e) = self.ephemerals.recv() => {
                    self.defer(e);
                    (None, false)
                }
                _ = wake.notified() => (None, true),
                _ = tokio::time::sleep_until(read_at) => (None, true),
            };
            // Take every queued command at once, so that many subscribers cost one span query.
            let mut pending = Vec::new();
            let queued = first.into_iter().chain(std::iter::from_fn(|| commands.try_recv().ok()));
            let mut stop = false;
            for command in queued {
                match command {
                    Command::Subscribe { user, scope, after, reply } => pending.push((user, scope, after, reply)),
                    Command::Unsubscribe(id) => self.remove(id),
                    Command::ToUser { user, conversation, delivery } => {
                        self.deliver_to_user(user, conversation, &delivery)
                    }
                    Command::Touched(pairs) => {
                        for pair in pairs {
                            let _ = self.touched.send(pair);
                        }
                    }
                    Command::Shutdown => stop = true,
                }
            }
            if stop {
                self.flush();
                break;
            }
            // Subscribers are registered before the log is read again: they miss nothing.
            if !pending.is_empty() {
                self.flush();
                self.register(pending).await;
            }
            self.take_ephemerals();
            self.dispatch_ready(self.position);
            if read_log {
                retry = self.tail(retry).await;
                read_at = tokio::time::Instant::now() + retry.unwrap_or(self.config.poll_interval);
            }
            self.flush();
        }
        tracing::info!(subscribers = self.subs.len(), "event hub stopped");
    }

    /// Reads and dispatches everything readable. Returns when to read again if earlier than
    /// the poll interval: soon when a running transaction holds later events back.
    async fn tail(&mut self, previous: Option<Duration>) -> Option<Duration> {
        loop {
            self.flush();
            let mut conn = match self.pool.get().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "event hub cannot get a connection");
                    return Some(Duration::from_millis(500));
                }
            };
            let tail = match read::tail(&mut conn, self.position, self.config.batch).await {
                Ok(tail) => tail,
                Err(e) => {
                    tracing::warn!(error = %e, "event hub cannot read the log");
                    return Some(Duration::from_millis(500));
                }
            };
            drop(conn);
            // Live events sent before these commits are queued by now: each goes out right
            // after the logged event it follows (deltas after their `message.created`, before
            // their `message.done`).
            self.take_ephemerals();
            for event in &tail.events {
                if let EventBody::MessageDone(done) = &event.event.body {
                    if self.answers.must_wait(done) {
                        // Read again from just before it, soon: its deltas arrive meanwhile.
                        return Some(DONE_RECHECK);
                    }
                    self.answers.ended(done.message_id);
                }
                self.dispatch(event);
                self.position = event.cursor;
                self.dispatch_ready(event.cursor);
            }
            self.position = tail.position;
            self.dispatch_ready(self.position);
            if tail.full {
                continue;
            }
            return tail.blocked.then(|| {
                let last = previous.unwrap_or(Duration::ZERO);
                (last * 2).clamp(Duration::from_millis(1), Duration::from_millis(50))
            });
        }
    }

    async fn register(&mut self, pending: Vec<PendingSubscribe>) {
        let users: Vec<UserId> = pending.iter().map(|p| p.0).collect::<HashSet<_>>().into_iter().collect();
        let loaded = match self.pool.get().await {
            Ok(mut conn) => read::spans(&mut conn, &users).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let spans = match loaded {
            Ok(spans) => spans,
            Err(e) => {
                // Dropping the replies tells the callers to answer 503.
                tracing::warn!(error = %e, "cannot load membership spans");
                return;
            }
        };
        for (user, scope, after, reply) in pending {
            // Each batch holds at least one delivery: the count, not the channel, fills first.
            let (tx, rx) = mpsc::channel(self.config.buffer.max(1));
            let mut sub = Subscriber {
                user,
                scope,
                spans: Vec::new(),
                after: after.unwrap_or_default().max(self.position),
                tx,
                queued: Arc::new(AtomicUsize::new(0)),
                cut_off: Arc::new(AtomicBool::new(false)),
            };
            let relevant = |of: &SpanOf| match (scope, of) {
                (Scope::Member, _) => true,
                (Scope::Conversation { id, .. }, SpanOf::Conversation(c)) => *c == id,
                (Scope::Conversation { workspace, .. }, SpanOf::Workspace(w)) => *w == workspace,
            };
            sub.spans.extend(spans.iter().filter(|(u, of, _)| *u == user && relevant(of)).map(|(_, of, s)| (*of, *s)));
            sub.spans.sort_by_key(|(of, span)| (*of, span.from));
            let id = self.next_id;
            self.next_id += 1;
            let subscription = Subscription {
                deliveries: rx,
                queued: sub.queued.clone(),
                position: self.position,
                cut_off: sub.cut_off.clone(),
                _registration: Registration { id, commands: self.commands.clone() },
            };
            if reply.send(subscription).is_err() {
                continue;
            }
            // Routed by what may still have events for them.
            for (of, span) in &sub.spans {
                if matches!(scope, Scope::Member) && span.until.is_none_or(|u| u > self.position) {
                    self.by_span.entry(*of).or_default().insert(id);
                }
            }
            if let Scope::Conversation { id: conversation, .. } = scope {
                // A per-conversation stream is routed by its conversation alone.
                self.by_span.entry(SpanOf::Conversation(conversation)).or_default().insert(id);
            }
            self.by_user.entry(user).or_default().insert(id);
            self.subs.insert(id, sub);
        }
    }

    fn unroute(&mut self, of: SpanOf, id: u64) {
        if let Some(set) = self.by_span.get_mut(&of) {
            set.remove(&id);
            if set.is_empty() {
                self.by_span.remove(&of);
            }
        }
    }

    /// Ends a subscriber, after handing over what this pass has for it.
    fn remove(&mut self, id: u64) {
        if let (Some(batch), Some(sub)) = (self.outbox.0.remove(&id), self.subs.get(&id)) {
            hand_over(sub, batch, self.config.buffer);
        }
        let Some(sub) = self.subs.remove(&id) else { return };
        for of in sub.spans.iter().map(|(of, _)| *of).chain(match sub.scope {
            Scope::Conversation { id, .. } => Some(SpanOf::Conversation(id)),
            Scope::Member => None,
        }) {
            self.unroute(of, id);
        }
        if let Some(set) = self.by_user.get_mut(&sub.user) {
            set.remove(&id);
            if set.is_empty() {
                self.by_user.remove(&sub.user);
            }
        }
    }

    /// Who may receive the event: routed by its conversation, its workspace (when open), or
    /// its audience (workspace-level events), without repeats.
    fn candidates(&self, event: &LoggedEvent) -> Vec<u64> {
        let mut routes: Vec<&HashSet<u64>> = Vec::with_capacity(2);
        match event.conversation_id {
            Some(c) => {
                routes.extend(self.by_span.get(&SpanOf::Conversation(c)));
                if event.open {
                    routes.extend(self.by_span.get(&SpanOf::Workspace(event.workspace_id)));
                }
            }
            None => routes.extend(event.audience.and_then(|u| self.by_user.get(&u))),
        }
        match routes.as_slice() {
            [] => Vec::new(),
            [only] => only.iter().copied().collect(),
            _ => routes.into_iter().flatten().copied().collect::<HashSet<_>>().into_iter().collect(),
        }
    }

    fn dispatch(&mut self, event: &LoggedEvent) {
        let at = event.cursor;
        let left = self.apply_membership(event);
        let candidates = self.candidates(event);
        if candidates.is_empty() {
            return;
        }
        let delivery = Arc::new(Delivered::logged(event));
        let closes = event.open && closes_to_workspace(&event.event.body);
        let author = new_message_by(&event.event.body);
        let mut ended = Vec::new();
        let mut touched = HashSet::new();
        for id in candidates {
            let Some(sub) = self.subs.get_mut(&id) else { continue };
            if let (Scope::Conversation { open, .. }, Some(_)) = (&mut sub.scope, event.conversation_id) {
                // Per-conversation streams track their conversation's visibility.
                *open = event.open && !closes;
            }
            if at <= sub.after || !sub.may_see(event) {
                continue;
            }
            self.outbox.push(id, &delivery);
            if sub.lost_its_conversation() {
                ended.push(id);
            }
            if let (Some(author), Some(c)) = (author, event.conversation_id)
                && author != Some(sub.user)
                && covers(&sub.spans, SpanOf::Conversation(c), at)
                && touched.insert(sub.user)
            {
                let _ = self.touched.send((sub.user, c));
            }
        }
        for id in ended {
            self.remove(id);
        }
        // Members who left get nothing more of the conversation: stop routing it to them.
        for id in left {
            if let Some(c) = event.conversation_id {
                self.unroute(SpanOf::Conversation(c), id);
            }
        }
    }

    /// Opens or closes the affected user's spans at this event, before it is delivered, and
    /// routes or unroutes their subscribers to match. Returns the all-conversations
    /// subscribers that left the event's conversation: they are unrouted after it is delivered.
    fn apply_membership(&mut self, event: &LoggedEvent) -> Vec<u64> {
        let (user, of, open) = match (&event.event.body, event.conversation_id) {
            (EventBody::MembershipChanged(change), Some(c)) => {
                if change.change == MembershipChange::RoleChanged {
                    return Vec::new();
                }
                (change.user_id, SpanOf::Conversation(c), !change.change.ends_membership())
            }
            (EventBody::WorkspaceMembershipChanged(change), _) => {
                (change.user_id, SpanOf::Workspace(change.workspace_id), change.sees_open_conversations())
            }
            _ => return Vec::new(),
        };
        let Some(ids) = self.by_user.get(&user) else { return Vec::new() };
        let mut route = Vec::new();
        let mut left = Vec::new();
        let mut ended = Vec::new();
        for id in ids {
            let Some(sub) = self.subs.get_mut(id) else { continue };
            let relevant = match (sub.scope, of) {
                (Scope::Member, _) => true,
                (Scope::Conversation { id, .. }, SpanOf::Conversation(c)) => c == id,
                (Scope::Conversation { workspace, .. }, SpanOf::Workspace(w)) => w == workspace,
            };
            if !relevant {
                continue;
            }
            sub.reconcile(of, event.cursor, open);
            match sub.scope {
                Scope::Member => route.push((*id, open)),
                // Its conversation's events are still delivered up to the membership event;
                // a workspace-level event is not on this stream, so the stream ends now.
                Scope::Conversation { .. } if matches!(of, SpanOf::Workspace(_)) && sub.lost_its_conversation() => {
                    ended.push(*id)
                }
                Scope::Conversation { .. } => {}
            }
        }
        for (id, open) in route {
            if open {
                self.by_span.entry(of).or_default().insert(id);
            } else if matches!(of, SpanOf::Workspace(_)) {
                // Later events of the workspace are all after the span's end.
                self.unroute(of, id);
            } else {
                // The membership event itself is still theirs.
                left.push(id);
            }
        }
        for id in ended {
            self.remove(id);
        }
        left
    }

    fn deliver_to_user(&mut self, user: UserId, conversation: ConversationId, delivery: &Delivery) {
        for id in self.by_user.get(&user).into_iter().flatten() {
            if self.subs.get(id).is_some_and(|sub| sub.wants(conversation)) {
                self.outbox.push(*id, delivery);
            }
        }
    }

    /// Hands every subscriber what this pass has for it; ends those gone or too slow.
    fn flush(&mut self) {
        let mut dropped = Vec::new();
        for (id, batch) in self.outbox.0.drain() {
            if let Some(sub) = self.subs.get(&id)
                && !hand_over(sub, batch, self.config.buffer)
            {
                dropped.push(id);
            }
        }
        for id in dropped {
            self.remove(id);
        }
    }

    fn defer(&mut self, routed: Routed) {
        let after = routed.event.after_event;
        self.deferred.push_back((Instant::now(), after, routed));
    }

    fn take_ephemerals(&mut self) {
        while let Ok(e) = self.ephemerals.try_recv() {
            self.defer(e);
        }
    }

    /// Dispatches, in arrival order, the waiting live events that may go now: those that
    /// follow no logged event after `at` (or have waited too long). The others stay, in
    /// order; an answer's deltas all follow the same event, so they stay or go together and
    /// one answer waiting for its `message.created` never holds back another's deltas.
    fn dispatch_ready(&mut self, at: EventCursor) {
        let ready = |(since, after, _): &(Instant, Option<EventCursor>, Routed)| {
            after.is_none_or(|after| after <= at) || since.elapsed() >= DEFER_AT_MOST
        };
        if !self.deferred.iter().any(ready) {
            return;
        }
        let (go, stay): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.deferred).into_iter().partition(ready);
        self.deferred = stay;
        for (_, _, routed) in go {
            self.dispatch_ephemeral(routed);
        }
    }

    fn dispatch_ephemeral(&mut self, Routed { event: ephemeral, conversations }: Routed) {
        if let EventBody::MessageDelta(delta) = &ephemeral.event.body
            && !self.answers.delta(delta)
        {
            return;
        }
        let delivery = Arc::new(Delivered::new(None, &ephemeral.event));
        let open_to = ephemeral.open_to;
        let mut seen = HashSet::new();
        for conversation in conversations {
            let routes = [Some(SpanOf::Conversation(conversation)), open_to.map(SpanOf::Workspace)];
            for id in routes.into_iter().flatten().filter_map(|of| self.by_span.get(&of)).flatten() {
                let Some(sub) = self.subs.get(id) else { continue };
                if (sub.user == ephemeral.user_id && !ephemeral.to_self)
                    || !sub.present_in(conversation, open_to)
                    || !seen.insert(*id)
                {
                    continue;
                }
                self.outbox.push(*id, &delivery);
            }
        }
    }
}

/// The event that makes a workspace-visible conversation private.
fn closes_to_workspace(body: &EventBody) -> bool {
    matches!(body, EventBody::ConversationUpdated(c) if c.visibility != Visibility::Workspace)
}

/// Deliveries gathered during one pass, by subscriber.
#[derive(Default)]
struct Outbox(HashMap<u64, Batch>);

impl Outbox {
    fn push(&mut self, subscriber: u64, delivery: &Delivery) {
        self.0.entry(subscriber).or_default().push(delivery.clone());
    }
}

/// Queues the batch; false when the subscriber is gone or too slow: more than `buffer`
/// deliveries waiting (then flagged).
fn hand_over(sub: &Subscriber, batch: Batch, buffer: usize) -> bool {
    let n = batch.len();
    if sub.queued.fetch_add(n, Ordering::AcqRel) + n > buffer {
        sub.cut_off.store(true, Ordering::Release);
        return false;
    }
    match sub.tx.try_send(batch) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            sub.cut_off.store(true, Ordering::Release);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
