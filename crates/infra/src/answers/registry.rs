//! The generations running on this instance: their live state (content so far, followers),
//! how to stop them, and the ends their runners could not write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use skein_domain::ports::AnswerPiece;
use skein_shared::MessageId;
use skein_shared::assistant::MessageDone;
use tokio::sync::{Notify, broadcast};

use crate::store::answers::Finish;
use crate::store::job::Job;

/// A running generation's shared state: the content so far and its followers, under one lock
/// so that a new follower gets the content and every later piece, nothing twice.
pub struct Live {
    pub content: String,
    pub chars: u32,
    pub done: Option<MessageDone>,
    pub followers: broadcast::Sender<AnswerPiece>,
}

impl Live {
    /// The content so far, and the pieces after it (or the end, if it has ended).
    pub fn follow(&self) -> (String, Option<MessageDone>, broadcast::Receiver<AnswerPiece>) {
        (self.content.clone(), self.done.clone(), self.followers.subscribe())
    }
}

pub struct Running {
    pub live: Arc<Mutex<Live>>,
    pub cancel: Arc<Notify>,
}

/// The generations running on this instance.
#[derive(Clone, Default)]
pub struct Registry {
    running: Arc<Mutex<HashMap<MessageId, Running>>>,
    /// Ends whose runner could not write them: the instance's recovery writes them (see
    /// `Llm::recover`), so no answer stays `streaming` with nobody left to end it.
    unsaved: Arc<Mutex<Vec<Unsaved>>>,
    /// Wakes recovery when an end is handed to it.
    pub unsaved_waiting: Arc<Notify>,
}

/// An end its runner could not write.
pub struct Unsaved {
    pub job: Job,
    pub finish: Finish,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live state of a generation running here.
    pub fn live(&self, message: MessageId) -> Option<Arc<Mutex<Live>>> {
        self.lock().get(&message).map(|r| r.live.clone())
    }

    /// Stops a generation running here; false if it does not run here.
    pub fn cancel(&self, message: MessageId) -> bool {
        self.lock().get(&message).map(|r| r.cancel.notify_one()).is_some()
    }

    /// Stops every generation running here.
    pub fn cancel_all(&self) {
        for running in self.lock().values() {
            running.cancel.notify_one();
        }
    }

    /// The generations running here.
    pub fn ids(&self) -> Vec<MessageId> {
        self.lock().keys().copied().collect()
    }

    /// Starts tracking a generation running here.
    pub fn insert(&self, message: MessageId, running: Running) {
        self.lock().insert(message, running);
    }

    pub fn remove(&self, message: MessageId) {
        self.lock().remove(&message);
    }

    /// Hands an end its runner could not write to the instance's recovery.
    pub fn hand_to_recovery(&self, end: Unsaved) {
        self.unsaved.lock().unwrap_or_else(|e| e.into_inner()).push(end);
        self.unsaved_waiting.notify_one();
    }

    /// Takes the ends waiting for recovery (what cannot be written yet goes back with
    /// [`Registry::hand_back`]).
    pub fn take_unsaved(&self) -> Vec<Unsaved> {
        std::mem::take(&mut *self.unsaved.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn hand_back(&self, ends: Vec<Unsaved>) {
        self.unsaved.lock().unwrap_or_else(|e| e.into_inner()).extend(ends);
    }
}

pub fn lock_live(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}
