//! The emission side of a delivery: one event on its way to the matching subscriptions,
//! moved into the only recipient or shared behind one `Arc`.

use std::any::Any;
use std::time::Instant;

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::event::{EventId, EventKey, MsgMeta, TypeKey};
use crate::outcome::Outcome;
use crate::subscription::SubscriptionId;
use crate::sync::{Arc, AtomicUsize, Condvar, Mutex, Ordering, thread_local};

/// The in-flight counter of a wait: an inline emit waiting for the invocations it queued
/// on dedicated threads, or an `emit_and_wait` waiting for its whole chain.
///
/// The rule (DESIGN.md "The actor protocol"): a message's count is added *before* the
/// message is pushed (so a runner can never release a count that was not added yet) and
/// released when the message is dropped, after its handler, its callbacks and its payload's
/// drop. A handler running a message of a chained group holds that message's count while
/// it emits, and its emits join the group: the counter cannot read 0 while any part of the
/// chain is queued or running.
pub(crate) struct Group {
    inflight: AtomicUsize,
    lock: Mutex<()>,
    zero: Condvar,
    outcomes: Mutex<Vec<(SubscriptionId, Outcome)>>,
}

impl Group {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inflight: AtomicUsize::new(0),
            lock: Mutex::new(()),
            zero: Condvar::new(),
            outcomes: Mutex::new(Vec::new()),
        })
    }

    /// Counts one message, before it is pushed.
    pub(crate) fn add(&self) {
        // AcqRel on one word: loom models read-modify-writes exactly.
        self.inflight.fetch_add(1, Ordering::AcqRel);
    }

    /// Releases one message's count; the release that reaches 0 wakes the waiter.
    fn release(&self) {
        // AcqRel: everything the message's handler did happens-before a waiter that sees 0.
        if self.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Taken after the decrement: a waiter is either before its check (it will read
            // 0) or inside `wait` (and gets this notification).
            let _lock = self.lock.lock();
            self.zero.notify_all();
        }
    }

    /// Waits until every counted message was released.
    pub(crate) fn wait(&self) {
        let mut lock = self.lock.lock();
        while self.inflight.load(Ordering::Acquire) != 0 {
            lock = self
                .zero
                .wait_timeout(lock, std::time::Duration::from_millis(100));
        }
    }

    /// Records the outcome of one of the emission's own deliveries.
    pub(crate) fn record(&self, sub: SubscriptionId, outcome: Outcome) {
        self.outcomes.lock().push((sub, outcome));
    }

    /// The recorded outcomes (taken once the wait is over).
    pub(crate) fn take_outcomes(&self) -> Vec<(SubscriptionId, Outcome)> {
        std::mem::take(&mut *self.outcomes.lock())
    }
}

// The chained group of the handler running on this thread (or of the `emit_and_wait` in
// progress on it): every emission made here joins it. loom's `thread_local!` takes no
// `const` blocks.
#[cfg(not(loom))]
thread_local! {
    static CHAIN: RefCell<Option<Arc<Group>>> = const { RefCell::new(None) };
}
#[cfg(loom)]
thread_local! {
    static CHAIN: RefCell<Option<Arc<Group>>> = RefCell::new(None);
}

/// The chained group emissions made on this thread join, if any.
#[inline]
pub(crate) fn current_chain() -> Option<Arc<Group>> {
    CHAIN.with(|chain| chain.borrow().clone())
}

/// Whether an `emit_and_wait` chain is in progress on this thread.
#[inline]
pub(crate) fn has_chain() -> bool {
    CHAIN.with(|chain| chain.borrow().is_some())
}

/// Makes `group` this thread's chain for as long as it lives, then restores the previous
/// one.
pub(crate) struct ChainScope {
    previous: Option<Arc<Group>>,
    _not_send: PhantomData<*const ()>,
}

impl ChainScope {
    pub(crate) fn enter(group: Arc<Group>) -> Self {
        let previous = CHAIN.with(|chain| chain.borrow_mut().replace(group));
        Self {
            previous,
            _not_send: PhantomData,
        }
    }
}

impl Drop for ChainScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ours = CHAIN.with(|chain| std::mem::replace(&mut *chain.borrow_mut(), previous));
    }
}

/// A queued message's counts in the groups waiting for it, released when the message is
/// dropped: after its invocation, or when it is discarded or dead-lettered instead.
pub(crate) struct Completion {
    /// An inline emit waiting for this (dedicated) invocation.
    wait: Option<Arc<Group>>,
    /// The `emit_and_wait` chain this message belongs to.
    chain: Option<Arc<Group>>,
    /// The subscription it is queued for.
    sub: SubscriptionId,
    /// One of the chain's own deliveries (not a nested emit): its outcome is recorded.
    direct: bool,
    recorded: bool,
}

impl Completion {
    /// A count held in `chain` until dropped (work done outside any mailbox, such as a
    /// rayon job, that an `emit_and_wait` waits for).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn hold(chain: Arc<Group>) -> Self {
        chain.add();
        Self {
            wait: None,
            chain: Some(chain),
            sub: SubscriptionId::NONE,
            direct: false,
            recorded: false,
        }
    }

    /// The chained group whose emits the handler joins while it runs this message.
    pub(crate) fn chain(&self) -> Option<&Arc<Group>> {
        self.chain.as_ref()
    }

    /// Records the invocation's outcome, for one of the chain's own deliveries.
    pub(crate) fn record(&mut self, outcome: impl FnOnce() -> Outcome) {
        if let (Some(chain), true) = (&self.chain, self.direct) {
            chain.record(self.sub, outcome());
            self.recorded = true;
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(|| Outcome::NotRun);
        }
        if let Some(chain) = &self.chain {
            chain.release();
        }
        if let Some(wait) = &self.wait {
            wait.release();
        }
    }
}

/// An event in the emitter's hands: `Option<T>` behind a trait object, so that the
/// (object-safe) strategy and the subscriptions can move it without knowing `T`.
pub(crate) trait Slot: Send {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn payload(&self) -> Option<&(dyn Any + Send + Sync)>;
    fn type_name(&self) -> &'static str;
    fn take_box(&mut self) -> Option<Box<dyn Any + Send + Sync>>;
    fn take_arc(&mut self) -> Option<Arc<dyn Any + Send + Sync>>;
    fn take_slot(&mut self) -> Option<Box<dyn Slot>>;
    /// Drops the event, if still here.
    fn clear(&mut self);
    /// Puts an event back from a shared `Arc` that nobody else holds, or gives it back.
    fn restore(
        &mut self,
        shared: Arc<dyn Any + Send + Sync>,
    ) -> Result<(), Arc<dyn Any + Send + Sync>>;
}

impl<T: Send + Sync + 'static> Slot for Option<T> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn payload(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.as_ref().map(|value| value as &(dyn Any + Send + Sync))
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn take_box(&mut self) -> Option<Box<dyn Any + Send + Sync>> {
        self.take()
            .map(|value| Box::new(value) as Box<dyn Any + Send + Sync>)
    }
    fn take_arc(&mut self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.take()
            .map(|value| Arc::new(value) as Arc<dyn Any + Send + Sync>)
    }
    fn clear(&mut self) {
        *self = None;
    }
    fn take_slot(&mut self) -> Option<Box<dyn Slot>> {
        self.take()
            .map(|value| Box::new(Some(value)) as Box<dyn Slot>)
    }
    fn restore(
        &mut self,
        shared: Arc<dyn Any + Send + Sync>,
    ) -> Result<(), Arc<dyn Any + Send + Sync>> {
        let typed = shared.downcast::<T>()?;
        match Arc::try_unwrap(typed) {
            Ok(value) => {
                *self = Some(value);
                Ok(())
            }
            Err(typed) => Err(typed),
        }
    }
}

/// The key an event is emitted under. A name is borrowed from the caller; its `Arc<str>`
/// is taken from the registry entry when there is one (no allocation), else made once.
#[derive(Clone, Debug)]
pub(crate) enum EmitKey<'a> {
    Type(TypeKey),
    Named(&'a str, Option<Arc<str>>),
}

impl EmitKey<'_> {
    pub(crate) fn make_key(&mut self) -> EventKey {
        match self {
            EmitKey::Type(key) => EventKey::Type(*key),
            EmitKey::Named(name, arc) => {
                EventKey::Named(arc.get_or_insert_with(|| Arc::from(*name)).clone())
            }
        }
    }
}

/// One event on its way to its subscriptions.
pub(crate) struct Carrier<'a> {
    pub(crate) slot: &'a mut dyn Slot,
    pub(crate) shared: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) key: EmitKey<'a>,
    meta: Option<MsgMeta>,
    key_cache: Option<EventKey>,
    /// Set while delivering to a recipient whose invocation the emit waits for.
    pub(crate) wait_for_it: bool,
    /// The group of an inline emit's waits for dedicated invocations.
    pub(crate) latch: Option<Arc<Group>>,
    /// The `emit_and_wait` chain this emission joins (its own, or its handler's).
    pub(crate) chain: Option<Arc<Group>>,
    /// This emission is the chain's own (its deliveries' outcomes are recorded).
    pub(crate) direct: bool,
    /// The subscription the message being built is for.
    pub(crate) recipient: SubscriptionId,
}

impl<'a> Carrier<'a> {
    pub(crate) fn new(slot: &'a mut dyn Slot, key: EmitKey<'a>) -> Self {
        Self {
            slot,
            shared: None,
            key,
            meta: None,
            key_cache: None,
            wait_for_it: false,
            latch: None,
            chain: current_chain(),
            direct: false,
            recipient: SubscriptionId::NONE,
        }
    }

    /// Moves the event behind one `Arc`, for several recipients.
    pub(crate) fn share(&mut self) {
        if self.shared.is_none() {
            self.shared = self.slot.take_arc();
        }
    }

    /// The shared event: a clone, or for the last recipient the `Arc` itself (so that the
    /// emitter never holds the last reference).
    pub(crate) fn take_shared(&mut self, last: bool) -> Option<Arc<dyn Any + Send + Sync>> {
        if last {
            self.shared.take()
        } else {
            self.shared.clone()
        }
    }

    /// Puts a shared event back into the slot if no subscription kept a reference.
    pub(crate) fn unshare(&mut self) {
        if let Some(shared) = self.shared.take() {
            if let Err(shared) = self.slot.restore(shared) {
                self.shared = Some(shared);
            }
        }
    }

    /// The event's type name.
    pub(crate) fn type_name(&self) -> &'static str {
        self.slot.type_name()
    }

    /// The emission's id and instant, made once per emission, on first demand.
    pub(crate) fn meta(&mut self) -> MsgMeta {
        *self.meta.get_or_insert_with(|| MsgMeta {
            id: EventId::next(),
            at: Instant::now(),
        })
    }

    /// The counts of the message being built in the groups that wait for it, added before
    /// the message is pushed.
    pub(crate) fn completion(&mut self) -> Option<Box<Completion>> {
        let wait = if self.wait_for_it {
            Some(self.latch.get_or_insert_with(Group::new).clone())
        } else {
            None
        };
        if wait.is_none() && self.chain.is_none() {
            return None;
        }
        if let Some(wait) = &wait {
            wait.add();
        }
        // Mutant: the chain's count is added after the push is published (see
        // `Carrier::published`), so a runner may release it before it was added.
        #[cfg(not(ventus_mutant = "inflight_after_push"))]
        if let Some(chain) = &self.chain {
            chain.add();
        }
        Some(Box::new(Completion {
            wait,
            chain: self.chain.clone(),
            sub: self.recipient,
            direct: self.direct,
            recorded: false,
        }))
    }

    /// Called right after a message built from this carrier was pushed and counted in the
    /// subscription's pending counter (where a runner may take it at once).
    #[inline]
    pub(crate) fn published(&self) {
        #[cfg(ventus_mutant = "inflight_after_push")]
        if let Some(chain) = &self.chain {
            crate::sync::yield_now();
            chain.add();
        }
    }

    /// The chained group a run of the emission's first (borrowed) delivery records into.
    pub(crate) fn direct_chain(&self) -> Option<Arc<Group>> {
        if self.direct {
            self.chain.clone()
        } else {
            None
        }
    }

    /// Makes the event's `EventKey` once per emission (dynamic subscriptions need it).
    pub(crate) fn cache_key(&mut self) {
        if self.key_cache.is_none() {
            self.key_cache = Some(self.key.make_key());
        }
    }

    pub(crate) fn cached_key(&self) -> Option<&EventKey> {
        self.key_cache.as_ref()
    }
}
