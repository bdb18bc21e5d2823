//! The hub's task: it alone owns the subscriber tables, reads the log, applies membership
//! changes to subscribers' spans and hands each event to those the rule (`rule.rs`) lets see it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use skein_domain::cursor::EventCursor;
use skein_shared::event::EventBody;
use skein_shared::{ConversationId, UserId};
use tokio::sync::{Notify, mpsc, oneshot};

use super::answers::{AnswerStreams, DONE_RECHECK};
use skein_domain::entities::FeedScope;

use super::protocol::{Command, HubConfig, Registration, Subscription};
use super::rule::{Viewer, closes_to_workspace, relevant};
use crate::realtime::live::{Batch, Delivered, Delivery, Routed, Touched, counted_message_by};
use crate::store::PgPool;
use crate::store::read::{self, LoggedEvent, SpanOf, moved_spans};

/// A registered subscriber: who it is and what it may see, and its queue.
struct Subscriber {
    viewer: Viewer,
    /// Deliver only events after this.
    after: EventCursor,
    tx: mpsc::Sender<Batch>,
    queued: Arc<AtomicUsize>,
    cut_off: Arc<AtomicBool>,
}

pub(super) struct Actor {
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

/// A live-only event waits at most this long for the logged event it must follow.
const DEFER_AT_MOST: Duration = Duration::from_secs(5);

/// Subscribe requests waiting for their spans.
type PendingSubscribe = (UserId, FeedScope, Option<EventCursor>, oneshot::Sender<Subscription>);

impl Actor {
    pub(super) fn new(
        pool: PgPool,
        config: HubConfig,
        position: EventCursor,
        commands: mpsc::UnboundedSender<Command>,
        ephemerals: mpsc::UnboundedReceiver<Routed>,
        touched: mpsc::UnboundedSender<Touched>,
    ) -> Self {
        Self {
            ephemerals,
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
            commands,
            touched,
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, wake: Arc<Notify>) {
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
            let spans = spans.iter().filter(|(u, _, _)| *u == user).map(|(_, of, s)| (*of, *s)).collect();
            let sub = Subscriber {
                viewer: Viewer::new(user, scope, spans),
                after: after.unwrap_or_default().max(self.position),
                tx,
                queued: Arc::new(AtomicUsize::new(0)),
                cut_off: Arc::new(AtomicBool::new(false)),
            };
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
            for (of, span) in &sub.viewer.spans {
                if matches!(scope, FeedScope::Member) && of.routes() && span.until.is_none_or(|u| u > self.position) {
                    self.by_span.entry(*of).or_default().insert(id);
                }
            }
            if let FeedScope::Conversation { id: conversation, .. } = scope {
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
        for of in sub.viewer.spans.iter().map(|(of, _)| *of).chain(match sub.viewer.scope {
            FeedScope::Conversation { id, .. } => Some(SpanOf::Conversation(id)),
            FeedScope::Member => None,
        }) {
            self.unroute(of, id);
        }
        if let Some(set) = self.by_user.get_mut(&sub.viewer.user) {
            set.remove(&id);
            if set.is_empty() {
                self.by_user.remove(&sub.viewer.user);
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
        let author = counted_message_by(&event.event.body);
        let mut ended = Vec::new();
        let mut touched = HashSet::new();
        for id in candidates {
            let Some(sub) = self.subs.get_mut(&id) else { continue };
            if let (FeedScope::Conversation { open, .. }, Some(_)) = (&mut sub.viewer.scope, event.conversation_id) {
                // Per-conversation streams track their conversation's visibility.
                *open = event.open && !closes;
            }
            if at <= sub.after || !sub.viewer.may_see(event) {
                continue;
            }
            self.outbox.push(id, &delivery);
            if sub.viewer.lost_its_conversation() {
                ended.push(id);
            }
            // Whoever sees it may keep a cursor there (implicit members too, once they read).
            if let (Some(author), Some(c)) = (author, event.conversation_id)
                && author != Some(sub.viewer.user)
                && touched.insert(sub.viewer.user)
            {
                let _ = self.touched.send((sub.viewer.user, c));
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
        let (user, moves): (UserId, Vec<(SpanOf, bool)>) = match (&event.event.body, event.conversation_id) {
            (EventBody::MembershipChanged(change), Some(c)) => {
                (change.user_id, moved_spans(c, change.change).collect())
            }
            (EventBody::WorkspaceMembershipChanged(change), _) => {
                (change.user_id, vec![(SpanOf::Workspace(change.workspace_id), change.sees_open_conversations())])
            }
            _ => return Vec::new(),
        };
        let Some(ids) = self.by_user.get(&user) else { return Vec::new() };
        let mut route = Vec::new();
        let mut left = Vec::new();
        let mut ended = Vec::new();
        for id in ids {
            let Some(sub) = self.subs.get_mut(id) else { continue };
            for &(of, open) in &moves {
                if !relevant(sub.viewer.scope, of) {
                    continue;
                }
                sub.viewer.reconcile(of, event.cursor, open);
                match sub.viewer.scope {
                    FeedScope::Member if of.routes() => route.push((*id, of, open)),
                    FeedScope::Member => {}
                    // Its conversation's events are still delivered up to the membership
                    // event; a workspace-level event is not on this stream, so it ends now.
                    FeedScope::Conversation { .. }
                        if matches!(of, SpanOf::Workspace(_)) && sub.viewer.lost_its_conversation() =>
                    {
                        ended.push(*id)
                    }
                    FeedScope::Conversation { .. } => {}
                }
            }
        }
        for (id, of, open) in route {
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
            if self.subs.get(id).is_some_and(|sub| sub.viewer.wants(conversation)) {
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
                if (sub.viewer.user == ephemeral.user_id && !ephemeral.to_self)
                    || !sub.viewer.present_in(conversation, open_to)
                    || !seen.insert(*id)
                {
                    continue;
                }
                self.outbox.push(*id, &delivery);
            }
        }
    }
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
