//! Changing the routes of a running nexus: from other threads through a [`Registrar`]
//! (a command queue into the loop, applied between events, the caller waiting for the
//! answer), and from the loop's own handlers through [`Context`] (applied after the
//! current event, refusals to the error hook).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::RangeInclusive;

use super::event::{EventType, NexusEvent};
use super::routing::{Filter, Handler, RegisterError, Router};
use super::{Context, NexusError, STARTING, STOPPED, Shared};
use crate::sync::statics::{AtomicU8, AtomicU64, Ordering};
use crate::sync::{Arc, Condvar, Mutex};

/// A change to a routing table, run by the loop.
pub(crate) type Change = Box<dyn FnOnce(&mut Router) -> Result<(), RegisterError> + Send>;

/// The changes sent to one nexus from other threads, waiting for its loop.
pub(crate) struct Commands {
    /// `None` once the loop finished: nothing is applied any more.
    queue: Mutex<Option<Vec<Change>>>,
    /// Set after a change is queued (the loop's cheap check once per pass).
    queued: AtomicU8,
    /// The thread that last drove the loop (`run`, `turn`), as a hash of its id; 0: none.
    driver: AtomicU64,
}

impl Commands {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(Some(Vec::new())),
            queued: AtomicU8::new(0),
            driver: AtomicU64::new(0),
        }
    }

    /// The loop: records the thread that drives it.
    pub(crate) fn driven_here(&self) {
        // Relaxed: read only by this thread's own later calls (the deadlock check) or as
        // a hint by others.
        self.driver.store(current_thread(), Ordering::Relaxed);
    }

    /// The loop: applies the queued changes (their answers go to the waiting callers).
    pub(crate) fn apply(&self, router: &mut Router) {
        // Acquire: pairs with `send`'s Release, so the queued change is seen under the lock.
        if self.queued.swap(0, Ordering::Acquire) == 0 {
            return;
        }
        let changes = self.queue.lock().as_mut().map(std::mem::take);
        for change in changes.into_iter().flatten() {
            // The answer is the change's own business (`Answer`).
            let _ = change(router);
        }
    }

    /// The loop finished: later sends are refused, and the changes still queued are
    /// dropped here, outside the lock (their callers get [`RegisterError::Stopped`]).
    pub(crate) fn close(&self) {
        let left = self.queue.lock().take();
        drop(left);
    }

    /// Whether a change waits (the loop's spin before parking reads this).
    pub(crate) fn has_queued(&self) -> bool {
        self.queued.load(Ordering::Relaxed) != 0
    }

    fn send(&self, change: Change) -> Result<(), Change> {
        {
            let mut queue = self.queue.lock();
            match queue.as_mut() {
                Some(queue) => queue.push(change),
                None => return Err(change),
            }
        }
        // Release: the loop's Acquire swap sees the change queued.
        self.queued.store(1, Ordering::Release);
        Ok(())
    }
}

/// A hash of the current thread's id (never 0).
fn current_thread() -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    crate::sync::thread::current().id().hash(&mut hasher);
    hasher.finish().max(1)
}

/// Where the loop puts the answer to one change, and the condvar the caller waits on.
type AnswerSlot = Arc<(Mutex<Option<Result<(), RegisterError>>>, Condvar)>;

/// The answer to one change: the caller waits on it; dropped unanswered (the loop stopped
/// first), it answers [`RegisterError::Stopped`].
struct Answer {
    slot: AnswerSlot,
}

impl Answer {
    fn give(&self, result: Result<(), RegisterError>) {
        let (slot, cond) = &*self.slot;
        let mut slot = slot.lock();
        if slot.is_none() {
            *slot = Some(result);
        }
        drop(slot);
        cond.notify_all();
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.give(Err(RegisterError::Stopped));
    }
}

/// Adds routes to a nexus that is running, from any thread other than the loop's (a
/// cheap `Clone`; [`Nexus::registrar`](crate::Nexus::registrar),
/// [`NexusHandle::registrar`](crate::NexusHandle::registrar)).
///
/// Each call queues the change for the loop, wakes it, and waits until the loop has
/// applied it between two events (every event dispatched after the call returns `Ok`
/// sees the new route; events already dispatched did not) and answers. The same rules as
/// on the [`Nexus`](crate::Nexus) hold: one handler per type, one default, ranges that do
/// not overlap.
///
/// # Errors
///
/// Every method returns the [`RegisterError`] of the registration, or
/// [`RegisterError::Stopped`] (the nexus stopped before applying it: the handler was
/// dropped), [`RegisterError::NotStarted`] (the nexus has not started: register on the
/// `Nexus` itself, or start it first), [`RegisterError::WouldDeadlock`] (called on the
/// thread that drives the loop, e.g. from a handler: use the [`Context`] methods there).
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use ventus::{Nexus, NexusEvent};
///
/// let nexus = Nexus::new().unwrap();
/// let producer = nexus.producer();
/// let handle = nexus.start().unwrap();
/// let (tx, rx) = mpsc::channel();
/// handle
///     .registrar()
///     .on(5, move |event, _| tx.send(*event.payload_ref::<u64>().unwrap()).unwrap())
///     .unwrap();
/// producer.push(NexusEvent::new(1, 5, 42u64)).unwrap();
/// assert_eq!(rx.recv().unwrap(), 42);
/// handle.stop();
/// handle.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Registrar {
    shared: Arc<Shared>,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar").finish_non_exhaustive()
    }
}

impl Registrar {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Registers the one handler (a closure) for `event_type`.
    ///
    /// # Errors
    ///
    /// As for [`Nexus::on`](crate::Nexus::on), and the ones in the type's docs.
    pub fn on(
        &self,
        event_type: impl Into<EventType>,
        handler: impl FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), RegisterError> {
        self.add_handler(event_type, handler)
    }

    /// Registers the one handler for the Rust type `T`.
    ///
    /// # Errors
    ///
    /// As for [`on`](Self::on).
    pub fn on_typed<T: 'static>(
        &self,
        handler: impl FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), RegisterError> {
        self.add_handler(EventType::of::<T>(), handler)
    }

    /// Registers a handler object (a [`Fanout`](crate::Fanout), a
    /// [`Discarder`](crate::Discarder), a [`Boundary`](crate::Boundary), a
    /// [`Forwarder`](crate::Forwarder), or yours) for `event_type`.
    ///
    /// # Errors
    ///
    /// As for [`on`](Self::on).
    pub fn add_handler(
        &self,
        event_type: impl Into<EventType>,
        handler: impl Handler,
    ) -> Result<(), RegisterError> {
        let event_type = event_type.into();
        let handler: Box<dyn Handler> = Box::new(handler);
        self.submit(Box::new(move |router| {
            router.add_handler(event_type, handler)
        }))
    }

    /// Registers a handler for a range of integer types.
    ///
    /// # Errors
    ///
    /// As for [`Nexus::add_range_handler`](crate::Nexus::add_range_handler), and the ones
    /// in the type's docs.
    pub fn add_range_handler(
        &self,
        range: RangeInclusive<i64>,
        handler: impl Handler,
    ) -> Result<(), RegisterError> {
        let handler: Box<dyn Handler> = Box::new(handler);
        self.submit(Box::new(move |router| router.add_range(range, handler)))
    }

    /// Adds a filter after the existing ones.
    ///
    /// # Errors
    ///
    /// Only the ones in the type's docs.
    pub fn add_filter(
        &self,
        filter: impl FnMut(&NexusEvent, &mut Context<'_>) -> bool + Send + 'static,
    ) -> Result<(), RegisterError> {
        self.add_filter_object(filter)
    }

    /// Adds a filter object after the existing filters.
    ///
    /// # Errors
    ///
    /// Only the ones in the type's docs.
    pub fn add_filter_object(&self, filter: impl Filter) -> Result<(), RegisterError> {
        let filter: Box<dyn Filter> = Box::new(filter);
        self.submit(Box::new(move |router| {
            router.add_filter(filter);
            Ok(())
        }))
    }

    /// Sets the default handler (a closure).
    ///
    /// # Errors
    ///
    /// [`RegisterError::DuplicateDefault`], and the ones in the type's docs.
    pub fn set_default(
        &self,
        handler: impl FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), RegisterError> {
        self.set_default_handler(handler)
    }

    /// Sets a default handler object.
    ///
    /// # Errors
    ///
    /// [`RegisterError::DuplicateDefault`], and the ones in the type's docs.
    pub fn set_default_handler(&self, handler: impl Handler) -> Result<(), RegisterError> {
        let handler: Box<dyn Handler> = Box::new(handler);
        self.submit(Box::new(move |router| router.set_default(handler)))
    }

    fn submit(&self, change: Change) -> Result<(), RegisterError> {
        let shared = &self.shared;
        // Relaxed: a stop racing this is caught by the queue's close (the answer is then
        // `Stopped`); the state only picks the early refusals.
        match shared.state.load(Ordering::Relaxed) {
            STOPPED => return Err(RegisterError::Stopped),
            super::READY => return Err(RegisterError::NotStarted),
            STARTING | super::LOOPING => {}
            _ => return Err(RegisterError::Stopped),
        }
        if shared.commands.driver.load(Ordering::Relaxed) == current_thread() {
            return Err(RegisterError::WouldDeadlock);
        }
        let slot: AnswerSlot = Arc::new((Mutex::new(None), Condvar::new()));
        let answer = Answer { slot: slot.clone() };
        let queued = shared.commands.send(Box::new(move |router| {
            let result = change(router);
            answer.give(result.clone());
            result
        }));
        if let Err(change) = queued {
            // Dropped here, outside the lock: its answer says `Stopped`.
            drop(change);
        } else {
            shared.inbox.wake();
        }
        let (lock, cond) = &*slot;
        let mut answered = lock.lock();
        loop {
            if let Some(result) = answered.take() {
                return result;
            }
            answered = cond.wait(answered);
        }
    }
}

/// A change queued by a handler, applied after its event.
pub(crate) type LocalChange = Box<dyn FnOnce(&mut Router) -> Result<(), RegisterError> + Send>;

impl Context<'_> {
    /// Registers the one handler (a closure) for `event_type`, applied after the current
    /// event (before the next one). A refusal goes to the error hook as
    /// [`NexusError::Register`].
    pub fn on(
        &mut self,
        event_type: impl Into<EventType>,
        handler: impl FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
    ) {
        self.add_handler(event_type, handler);
    }

    /// Registers a handler object for `event_type`, applied after the current event. A
    /// refusal goes to the error hook as [`NexusError::Register`].
    pub fn add_handler(&mut self, event_type: impl Into<EventType>, handler: impl Handler) {
        let event_type = event_type.into();
        let handler: Box<dyn Handler> = Box::new(handler);
        self.core.changes.push(Box::new(move |router| {
            router.add_handler(event_type, handler)
        }));
    }

    /// Adds a filter after the existing ones, applied after the current event.
    pub fn add_filter(
        &mut self,
        filter: impl FnMut(&NexusEvent, &mut Context<'_>) -> bool + Send + 'static,
    ) {
        let filter: Box<dyn Filter> = Box::new(filter);
        self.core.changes.push(Box::new(move |router| {
            router.add_filter(filter);
            Ok(())
        }));
    }

    /// Sets the default handler, applied after the current event. A refusal goes to the
    /// error hook as [`NexusError::Register`].
    pub fn set_default(&mut self, handler: impl Handler) {
        let handler: Box<dyn Handler> = Box::new(handler);
        self.core
            .changes
            .push(Box::new(move |router| router.set_default(handler)));
    }
}

/// Applies the changes queued by handlers; refusals become errors to report.
pub(crate) fn apply_local(
    changes: &mut Vec<LocalChange>,
    router: &mut Router,
    errors: &mut Vec<NexusError>,
) {
    for change in changes.drain(..) {
        if let Err(error) = change(router) {
            errors.push(NexusError::Register(error));
        }
    }
}
