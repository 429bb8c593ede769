//! Subscriptions: the handler with its workflow (success and failure callbacks), its
//! mailbox, its state word (once claimed, unsubscribed) and its pending counter.
//!
//! The scheduling protocol (who runs a subscription, and when) is written down in
//! `src/actor/README.md`; this file holds the pieces it moves.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::actor::Dedicated;
use crate::carrier::{Carrier, ChainScope, Completion, Group};
use crate::error::{Failure, Refusal, WouldDeadlock};
use crate::event::{
    DynPayload, Envelope, EnvelopeBody, EventKey, EventMeta, MsgMeta, Payload, TypeKey, TypedMsg,
};
use crate::hooks::{DeadLetter, DeadLetterReason, DeadPayload, ErrorReport, Hooks, panic_message};
use crate::linker::LinkerInner;
use crate::outcome::Outcome;
use crate::sync::{
    Arc, AtomicU8, AtomicU64, AtomicUsize, Backoff, Mailbox, Mutex, Ordering, Weak, thread_local,
};

/// A subscription's id: unique within its linker, increasing in subscription order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SubscriptionId(pub(crate) u64);

impl SubscriptionId {
    /// No subscription (ids start at 1).
    pub(crate) const NONE: SubscriptionId = SubscriptionId(0);

    /// The number behind the id.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What an emit does when a subscription's mailbox is full.
///
/// The bound is soft: it is checked before the push, so concurrent emitters may overshoot
/// it by at most their number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// Wait for room (the default). An emit from inside a handler never waits: there it is
    /// refused with [`Refusal::Full`], so handlers that emit to each other cannot deadlock.
    /// `try_emit` never waits either.
    #[default]
    Block,
    /// Drop the new event for this subscription: counted, reported as a dead letter, and
    /// listed as [`Refusal::Dropped`] in the emit's result.
    DropNewest,
    /// Refuse the event for this subscription: [`Refusal::Full`] in the emit's result.
    Fail,
}

/// What happens to a subscription whose handler panicked (after the panic went to its
/// failure callback).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnPanic {
    /// Keep the subscription (the default).
    #[default]
    Continue,
    /// Unsubscribe it: queued events are discarded as dead letters.
    Unsubscribe,
}

/// The default mailbox capacity (a bound on queued events, not a preallocation).
pub const DEFAULT_CAPACITY: usize = 4096;

// The state word. A once subscription moves from ACTIVE to CLAIMED (by the first emission
// that reaches it) or to UNSUBSCRIBED (by `unsubscribe`), never both: each move is one
// compare-exchange from ACTIVE.
pub(crate) const ACTIVE: u8 = 0;
pub(crate) const CLAIMED: u8 = 1;
pub(crate) const UNSUBSCRIBED: u8 = 2;

/// Per-subscription counters. Each is written by one thread at a time (the runner, which
/// the pending counter makes exclusive), except `refused` and `dropped`, which emitters
/// write on the (rare) refusal path.
#[derive(Default)]
pub(crate) struct SubStats {
    invoked: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    callback_panics: AtomicU64,
    discarded: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
}

/// A single-writer increment: a load and a store, no read-modify-write (the runner is
/// exclusive, and the pending counter orders one runner before the next).
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// A snapshot of a subscription's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionStats {
    /// Invocations of the handler.
    pub invoked: u64,
    /// Invocations that succeeded.
    pub succeeded: u64,
    /// Invocations that returned `Err` (or met a payload mismatch).
    pub failed: u64,
    /// Invocations that panicked.
    pub panicked: u64,
    /// Success or failure callbacks that panicked (caught, and sent to the error hook).
    pub callback_panics: u64,
    /// Queued events discarded because the subscription was unsubscribed first.
    pub discarded: u64,
    /// Emissions refused with [`Refusal::Full`].
    pub refused: u64,
    /// Emissions dropped by [`Policy::DropNewest`].
    pub dropped: u64,
    /// Events pending now: queued, plus those of the batch being run (the mailbox bound
    /// counts the same).
    pub queued: usize,
    /// Events accepted into the mailbox so far: invoked, discarded or still queued.
    pub delivered: u64,
    /// The most events seen pending when a run started (the mailbox's high-water mark, as
    /// the runner samples it).
    pub high_water: usize,
    /// This subscription's dead letters, by reason.
    pub dead_letters: crate::DeadLetterCounts,
}

/// The parts of a subscription that do not depend on its event type.
///
/// The fields are in `repr(C)` order on purpose: `pending` first, written by every
/// emitter; then at least 64 bytes of fields that never change after subscribe; then what
/// the runner reads or writes for every message (`state`, the counters). So `pending`
/// never shares a cache line with the runner's hot fields, whatever the allocation's
/// alignment, without padding every subscription to a line of its own (a test checks the
/// distances).
#[repr(C)]
pub(crate) struct SubCommon {
    /// Events pushed and not yet run: decides who runs the subscription (see
    /// `src/actor/README.md`).
    pub(crate) pending: AtomicUsize,
    pub(crate) id: SubscriptionId,
    pub(crate) capacity: usize,
    pub(crate) linker: Weak<LinkerInner>,
    pub(crate) hooks: Arc<Hooks>,
    /// A dedicated thread, or `None`: the emitter's strategy decides where it runs.
    pub(crate) home: Option<Dedicated>,
    /// The runtime whose rayon pool runs a `CpuBound` subscription.
    pub(crate) cpu: Option<Arc<crate::actor::Shared>>,
    /// Opt-in latency histograms, recorded by the runner once per batch.
    pub(crate) hist: Option<Box<Mutex<crate::stats::LatencyStats>>>,
    pub(crate) once: bool,
    pub(crate) policy: Policy,
    pub(crate) wants_meta: bool,
    pub(crate) on_panic: OnPanic,
    /// ACTIVE, CLAIMED or UNSUBSCRIBED.
    pub(crate) state: AtomicU8,
    pub(crate) stats: SubStats,
    /// The most events seen pending at the start of a run (written by the runner only).
    pub(crate) high_water: AtomicUsize,
    /// Dead letters of this subscription, by reason (rare: a read-modify-write is fine;
    /// allocated on the first, which most subscriptions never have).
    pub(crate) dead: std::sync::OnceLock<Box<[AtomicU64; crate::hooks::REASONS]>>,
}

impl SubCommon {
    /// Invocations started or discarded so far.
    pub(crate) fn invocations(&self) -> u64 {
        self.stats.invoked.load(Ordering::Relaxed) + self.stats.discarded.load(Ordering::Relaxed)
    }

    /// Whether its messages must carry metadata: it asked for it (event metadata or
    /// histograms), or a runtime aggregates histograms.
    #[inline]
    pub(crate) fn wants_meta(&self) -> bool {
        self.wants_meta || crate::stats::recording()
    }

    /// Whether the subscription still takes events (not claimed, not unsubscribed).
    pub(crate) fn is_live(&self) -> bool {
        self.state.load(Ordering::Acquire) == ACTIVE
    }

    /// Claims a once subscription: true for exactly one caller, and never after a
    /// successful `unsubscribe`.
    pub(crate) fn claim(&self) -> bool {
        // AcqRel: the winner's claim is ordered against `unsubscribe`'s compare-exchange on
        // the same word (exactly one of them succeeds).
        #[cfg(not(ventus_mutant = "once_claim_load_store"))]
        {
            self.state
                .compare_exchange(ACTIVE, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }
        // Mutant: a check-then-store claim, which two emitters can both win.
        #[cfg(ventus_mutant = "once_claim_load_store")]
        {
            if self.state.load(Ordering::Acquire) == ACTIVE {
                crate::sync::yield_now();
                self.state.store(CLAIMED, Ordering::Release);
                true
            } else {
                false
            }
        }
    }

    /// Marks the subscription unsubscribed: true if this call did it.
    pub(crate) fn mark_unsubscribed(&self) -> bool {
        // AcqRel: pairs with `claim` (one of the two wins) and with the runner's
        // read-modify-write before each invocation (an invocation that starts after this
        // sees UNSUBSCRIBED).
        self.state
            .compare_exchange(ACTIVE, UNSUBSCRIBED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Marks the subscription unsubscribed (true if this call did it) and wakes its
    /// dedicated thread, if any, so that it can exit.
    pub(crate) fn retire(&self) -> bool {
        let retired = self.mark_unsubscribed();
        if retired {
            if let Some(home) = &self.home {
                home.waker.wake();
            }
        }
        retired
    }

    /// Called by the runner right before an invocation: false if the subscription was
    /// unsubscribed, and then the invocation must not start.
    #[inline]
    fn may_start(&self) -> bool {
        // A read-modify-write, not a load: it reads the latest value in the word's
        // modification order, so an `unsubscribe` that returned before this point is seen.
        #[cfg(not(ventus_mutant = "unsubscribe_unchecked"))]
        {
            self.state.fetch_or(0, Ordering::Acquire) != UNSUBSCRIBED
        }
        // Mutant: the runner never re-checks, so queued events run after unsubscribe.
        #[cfg(ventus_mutant = "unsubscribe_unchecked")]
        {
            true
        }
    }

    fn dead_letter(
        &self,
        key: impl FnOnce() -> EventKey,
        payload: Option<DynPayload>,
        reason: DeadLetterReason,
    ) {
        let id = self.id;
        self.dead.get_or_init(Default::default)[reason.index()].fetch_add(1, Ordering::Relaxed);
        self.hooks.dead_letter(
            || DeadLetter {
                key: key(),
                subscription: Some(id),
                reason,
                payload: payload.map(DeadPayload),
            },
            reason,
        );
    }

    /// Reports a refusal of one delivery: counted, and a dead letter for drops and for
    /// refused once claims (a refused `Full` of a regular subscription is reported in the
    /// emit's result only).
    pub(crate) fn refused(&self, refusal: Refusal, key: impl FnOnce() -> EventKey) {
        match refusal {
            Refusal::Full | Refusal::Shutdown => self.stats.refused.fetch_add(1, Ordering::Relaxed),
            Refusal::Dropped => self.stats.dropped.fetch_add(1, Ordering::Relaxed),
        };
        let reason = if self.once {
            Some(DeadLetterReason::RefusedOnceClaim)
        } else if refusal == Refusal::Dropped {
            Some(DeadLetterReason::Dropped)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.dead_letter(key, None, reason);
        }
    }
}

impl fmt::Debug for SubCommon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("once", &self.once)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What happened in one invocation, as the workflow closure reports it.
pub(crate) enum Step {
    Succeeded,
    SuccessPanicked(String),
    Failed(Failure),
}

impl Step {
    /// The outcome `emit_and_wait` reports for it.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Step::Succeeded | Step::SuccessPanicked(_) => Outcome::Succeeded,
            Step::Failed(Failure::Panic(message)) => Outcome::Panicked(message.clone()),
            Step::Failed(Failure::Handler(error)) => Outcome::Failed(error.to_string()),
            Step::Failed(failure) => Outcome::Failed(failure.to_string()),
        }
    }
}

/// A failure callback: the subscription's own, or the linker's default.
pub(crate) enum FailureCallback {
    Own(Box<dyn FnMut(Failure) + Send>),
    Default(Arc<dyn Fn(Failure) + Send + Sync>),
}

/// Runs one handler result through the workflow: `Ok` to the success callback (whose
/// panic is caught and reported), `Err` and panics out as a `Failure`.
pub(crate) fn workflow<V: 'static>(
    outcome: std::thread::Result<Result<V, crate::error::BoxError>>,
    success: &mut Option<Box<dyn FnMut(V) + Send>>,
) -> Step {
    match outcome {
        Ok(Ok(value)) => {
            let Some(callback) = success else {
                return Step::Succeeded;
            };
            let result = catch_unwind(AssertUnwindSafe(|| callback(value)));
            match result {
                Ok(()) => Step::Succeeded,
                Err(panic) => Step::SuccessPanicked(caught_message(panic)),
            }
        }
        Ok(Err(error)) => Step::Failed(Failure::Handler(error)),
        Err(panic) => Step::Failed(Failure::Panic(caught_message(panic))),
    }
}

type RunFn<M> = Box<dyn for<'a> FnMut(<M as Message>::Ref<'a>) -> Step + Send>;

/// The handler side of a subscription, locked by its runner for the length of a drain:
/// the actor's running state, the one lock held while user code runs.
pub(crate) struct RunState<M: Message> {
    pub(crate) run: RunFn<M>,
    pub(crate) on_failure: Option<FailureCallback>,
}

/// A typed event as its handler sees it.
pub(crate) struct TypedRef<'a, T> {
    pub(crate) value: &'a T,
    pub(crate) meta: Option<MsgMeta>,
}

/// A dynamic event as its handler sees it.
pub(crate) struct EnvRef<'a> {
    pub(crate) key: &'a EventKey,
    pub(crate) type_name: &'static str,
    pub(crate) payload: &'a (dyn std::any::Any + Send + Sync),
    pub(crate) meta: Option<MsgMeta>,
}

/// A message a mailbox can hold, and the borrowed view its handler runs on.
pub(crate) trait Message: Send + Sized + 'static {
    type Ref<'a>;
    /// The view of a queued message.
    fn view(&self) -> Self::Ref<'_>;
    /// The key of a view.
    fn ref_key(view: &Self::Ref<'_>) -> EventKey;
    /// The view of the event still in the emitter's hands (the inline fast path runs on it
    /// without moving or sharing it).
    fn borrow<'c>(carrier: &'c mut Carrier<'_>, meta: bool) -> Option<Self::Ref<'c>>;
    /// Takes the event out of the carrier to queue it: moved for the last recipient when
    /// nobody shares it yet, else shared behind one `Arc`.
    fn build(carrier: &mut Carrier<'_>, last: bool, meta: bool) -> Option<Self>;
    /// The key and payload, for a dead letter.
    fn into_dead(self, wants_payload: bool) -> (EventKey, Option<DynPayload>);
    /// Takes the message's completion (released after the invocation and the drop).
    fn take_done(&mut self) -> Option<Box<Completion>>;

    /// Whether dropping a message may run user code (and so panic).
    fn drop_may_panic() -> bool {
        true
    }
    /// When it was emitted, if the message carries its metadata.
    fn emitted_at(&self) -> Option<std::time::Instant>;
    /// When a view's event was emitted, if it carries its metadata.
    fn view_emitted_at(view: &Self::Ref<'_>) -> Option<std::time::Instant>;
    /// The payload type a batch item must have (`Some` for typed mailboxes only).
    fn batch_type() -> Option<std::any::TypeId> {
        None
    }
    /// A message from one batch item: an `Option<T>` (moved) or an `Option<Arc<T>>`
    /// (shared), taken out of `item`.
    fn from_item(item: &mut dyn std::any::Any, meta: Option<MsgMeta>) -> Option<Self> {
        let _ = (item, meta);
        None
    }
}

/// The events of a batch as one mailbox takes them, type-erased: item `i` is an
/// `Option<T>` or an `Option<Arc<T>>` that the mailbox takes.
pub(crate) trait BatchItems {
    fn len(&self) -> usize;
    fn item(&mut self, index: usize) -> &mut dyn std::any::Any;
}

impl<T: Send + Sync + 'static> Message for TypedMsg<T> {
    type Ref<'a> = TypedRef<'a, T>;

    fn view(&self) -> TypedRef<'_, T> {
        TypedRef {
            value: self.payload.get(),
            meta: self.extra.as_ref().and_then(|extra| extra.meta),
        }
    }

    fn ref_key(_view: &TypedRef<'_, T>) -> EventKey {
        EventKey::of::<T>()
    }

    fn borrow<'c>(carrier: &'c mut Carrier<'_>, meta: bool) -> Option<TypedRef<'c, T>> {
        let meta = if meta { Some(carrier.meta()) } else { None };
        let value = match &carrier.shared {
            Some(shared) => shared.downcast_ref::<T>()?,
            None => carrier.slot.payload()?.downcast_ref::<T>()?,
        };
        Some(TypedRef { value, meta })
    }

    fn build(carrier: &mut Carrier<'_>, last: bool, meta: bool) -> Option<Self> {
        let payload = if last && carrier.shared.is_none() {
            Payload::Owned(
                carrier
                    .slot
                    .as_any_mut()
                    .downcast_mut::<Option<T>>()?
                    .take()?,
            )
        } else {
            carrier.share();
            Payload::Shared(carrier.take_shared(last)?.downcast::<T>().ok()?)
        };
        let meta = meta.then(|| carrier.meta());
        let done = carrier.completion();
        Some(TypedMsg {
            payload,
            extra: crate::event::Extra::of(meta, done),
        })
    }

    fn into_dead(self, wants_payload: bool) -> (EventKey, Option<DynPayload>) {
        let payload = wants_payload.then(|| match self.payload {
            Payload::Owned(value) => DynPayload::Boxed(Box::new(value)),
            Payload::Shared(value) => DynPayload::Shared(value),
        });
        (EventKey::of::<T>(), payload)
    }

    fn take_done(&mut self) -> Option<Box<Completion>> {
        self.extra.as_mut()?.done.take()
    }

    #[inline]
    fn drop_may_panic() -> bool {
        // The rest of a typed message is ventus's own (metadata, the completion).
        std::mem::needs_drop::<T>()
    }

    fn emitted_at(&self) -> Option<std::time::Instant> {
        self.extra.as_ref()?.meta.map(|meta| meta.at)
    }

    fn view_emitted_at(view: &TypedRef<'_, T>) -> Option<std::time::Instant> {
        view.meta.map(|meta| meta.at)
    }

    fn batch_type() -> Option<std::any::TypeId> {
        Some(std::any::TypeId::of::<T>())
    }

    fn from_item(item: &mut dyn std::any::Any, meta: Option<MsgMeta>) -> Option<Self> {
        let payload = if let Some(owned) = item.downcast_mut::<Option<T>>() {
            Payload::Owned(owned.take()?)
        } else {
            Payload::Shared(item.downcast_mut::<Option<Arc<T>>>()?.take()?)
        };
        Some(TypedMsg {
            payload,
            extra: crate::event::Extra::of(meta, None),
        })
    }
}

impl Message for Envelope {
    type Ref<'a> = EnvRef<'a>;

    fn view(&self) -> EnvRef<'_> {
        EnvRef {
            key: &self.0.key,
            type_name: self.0.type_name,
            payload: self.0.payload.get(),
            meta: self.0.meta,
        }
    }

    fn ref_key(view: &EnvRef<'_>) -> EventKey {
        view.key.clone()
    }

    fn borrow<'c>(carrier: &'c mut Carrier<'_>, meta: bool) -> Option<EnvRef<'c>> {
        let meta = if meta { Some(carrier.meta()) } else { None };
        carrier.cache_key();
        let carrier = &*carrier;
        let payload = match &carrier.shared {
            Some(shared) => &**shared,
            None => carrier.slot.payload()?,
        };
        Some(EnvRef {
            key: carrier.cached_key()?,
            type_name: carrier.type_name(),
            payload,
            meta,
        })
    }

    fn build(carrier: &mut Carrier<'_>, last: bool, meta: bool) -> Option<Self> {
        let type_name = carrier.type_name();
        let payload = if last && carrier.shared.is_none() {
            DynPayload::Boxed(carrier.slot.take_box()?)
        } else {
            carrier.share();
            DynPayload::Shared(carrier.take_shared(last)?)
        };
        let meta = meta.then(|| carrier.meta());
        carrier.cache_key();
        let done = carrier.completion();
        Some(Envelope(Box::new(EnvelopeBody {
            done,
            key: carrier.cached_key()?.clone(),
            type_name,
            payload,
            meta,
        })))
    }

    fn into_dead(self, wants_payload: bool) -> (EventKey, Option<DynPayload>) {
        let body = *self.0;
        (body.key, wants_payload.then_some(body.payload))
    }

    fn take_done(&mut self) -> Option<Box<Completion>> {
        self.0.done.take()
    }

    fn emitted_at(&self) -> Option<std::time::Instant> {
        self.0.meta.map(|meta| meta.at)
    }

    fn view_emitted_at(view: &EnvRef<'_>) -> Option<std::time::Instant> {
        view.meta.map(|meta| meta.at)
    }
}

/// How a delivery may behave when the mailbox is full.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeliverCtx {
    /// The emit comes from inside a handler, or is a `try_emit`: it must not wait.
    pub(crate) no_wait: bool,
}

/// The type-dependent half of a subscription, behind a trait object.
pub(crate) trait Core: Send + Sync + 'static {
    /// Delivers the event in the carrier. Under the inline strategy the caller runs the
    /// handler itself when the subscription is idle.
    fn deliver(
        &self,
        common: &SubCommon,
        carrier: &mut Carrier<'_>,
        last: bool,
        ctx: DeliverCtx,
    ) -> Result<(), Refusal>;

    /// Queues the event (capacity and policy checked). `Ok(true)`: this call moved
    /// `pending` from 0, so the caller must schedule the subscription.
    fn enqueue(
        &self,
        common: &SubCommon,
        carrier: &mut Carrier<'_>,
        last: bool,
        ctx: DeliverCtx,
    ) -> Result<bool, Refusal>;

    /// The payload type this mailbox takes batches of, if it takes them.
    fn batch_type(&self) -> Option<std::any::TypeId>;

    /// The core as `Any`, for the typed fast path (a `MailboxCore<TypedMsg<T>>`).
    fn as_any(&self) -> &dyn std::any::Any;

    /// Pushes every item of a batch, then counts them with one `fetch_add`. The caller
    /// checked the type and the room. `true`: this call moved `pending` from 0, so the
    /// caller must schedule the subscription.
    fn push_batch(
        &self,
        common: &SubCommon,
        items: &mut dyn BatchItems,
        stamps: &mut [crate::event::Stamp],
    ) -> bool;

    /// Runs at most `runtime.batch` queued events on one of `runtime`'s threads (the
    /// caller owns the run). `true`: more remain and the caller must run or reschedule it
    /// again. Once the runtime abandons, the events not started yet become dead letters
    /// (`LeftAtShutdown`) instead. Having run everything counted, it lingers up to
    /// `linger` for more before it releases the subscription (counted in the runtime's
    /// spins).
    fn run_batch(
        &self,
        common: &SubCommon,
        runtime: &crate::actor::Shared,
        linger: std::time::Duration,
    ) -> bool;

    /// Dead-letters everything queued until the subscription is idle (the caller owns the
    /// run).
    fn abandon(&self, common: &SubCommon, reason: DeadLetterReason);

    /// Waits until no invocation is running.
    fn wait_not_running(&self);

    /// Whether no invocation is running (never waits).
    fn try_wait_not_running(&self) -> bool;
}

/// Buffers a run's timings and records them into the subscription's histograms under one
/// lock per `CAPACITY` invocations (and at the end of the run): no lock is held while user
/// code runs.
pub(crate) struct Recorder<'s> {
    /// The subscription's own histograms, if it has them.
    hist: Option<&'s Mutex<crate::stats::LatencyStats>>,
    /// The running runtime's aggregate, if it keeps one.
    runtime: Option<&'s Mutex<crate::stats::LatencyStats>>,
    buf: [(std::time::Duration, std::time::Duration); Recorder::CAPACITY],
    len: usize,
}

impl<'s> Recorder<'s> {
    const CAPACITY: usize = 64;

    fn new(
        common: &'s SubCommon,
        runtime: Option<&'s Mutex<crate::stats::LatencyStats>>,
    ) -> Option<Self> {
        let hist = common.hist.as_deref();
        (hist.is_some() || runtime.is_some()).then(|| Recorder {
            hist,
            runtime,
            buf: [(std::time::Duration::ZERO, std::time::Duration::ZERO); Self::CAPACITY],
            len: 0,
        })
    }

    /// Records an invocation that started at `started` (if recording) of an event emitted
    /// at `emitted` (if known), ending now.
    fn timed(
        recorder: &mut Option<Self>,
        started: Option<std::time::Instant>,
        emitted: Option<std::time::Instant>,
    ) {
        if let (Some(recorder), Some(started)) = (recorder.as_mut(), started) {
            let queueing = emitted
                .map(|at| started.saturating_duration_since(at))
                .unwrap_or_default();
            recorder.push(queueing, started.elapsed());
        }
    }

    fn push(&mut self, queueing: std::time::Duration, service: std::time::Duration) {
        if self.len == Self::CAPACITY {
            self.flush();
        }
        self.buf[self.len] = (queueing, service);
        self.len += 1;
    }

    fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        for hist in [self.hist, self.runtime].into_iter().flatten() {
            let mut hist = hist.lock();
            for (queueing, service) in &self.buf[..self.len] {
                hist.record(*queueing, *service);
            }
        }
        self.len = 0;
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Notes the pending count a run starts with (the runner is the only writer).
#[inline]
fn note_high_water(common: &SubCommon, pending: usize) {
    if pending > common.high_water.load(Ordering::Relaxed) {
        common.high_water.store(pending, Ordering::Relaxed);
    }
}

/// Counts `n` (at least 1) pushed messages; true if this call moved `pending` from 0 (the
/// caller must then schedule or run the subscription).
#[inline]
pub(crate) fn count_pushed(common: &SubCommon, n: usize) -> bool {
    // AcqRel: the pushes before it are released to whoever runs the subscription; if we
    // moved the counter from 0, the caller is that runner (the previous one has finished).
    #[cfg(not(ventus_mutant = "enqueue_plain_load"))]
    let owner = common.pending.fetch_add(n, Ordering::AcqRel) == 0;
    // Mutant: "is it idle?" decided by a plain load before the increment, so a runner
    // that releases in between strands the event.
    #[cfg(ventus_mutant = "enqueue_plain_load")]
    let owner = {
        let idle = common.pending.load(Ordering::Acquire) == 0;
        crate::sync::yield_now();
        common.pending.fetch_add(n, Ordering::AcqRel);
        idle
    };
    owner
}

/// The runner's release: gives back `done` events; returns how many are still pending
/// (0: the subscription went idle, and the next emitter to count one owns it).
#[inline]
fn release(common: &SubCommon, done: usize) -> usize {
    // AcqRel: releases the work done to the next runner; acquires the pushes counted by
    // emitters since the last look.
    #[cfg(not(ventus_mutant = "pending_load_store"))]
    let before = common.pending.fetch_sub(done, Ordering::AcqRel);
    // Mutant: a load and a store instead of one read-modify-write, so an emitter's
    // increment in between is lost (its event stranded).
    #[cfg(ventus_mutant = "pending_load_store")]
    let before = {
        let before = common.pending.load(Ordering::Acquire);
        crate::sync::yield_now();
        common.pending.store(before - done, Ordering::Release);
        before
    };
    before - done
}

impl<T: Send + Sync + 'static> MailboxCore<TypedMsg<T>> {
    /// A handle that pushes into this mailbox (for the fast path's route).
    pub(crate) fn sender(&self) -> crate::sync::MailboxSender<TypedMsg<T>> {
        self.mailbox.sender()
    }

    /// The clone function of a subscription that takes events by value.
    #[inline]
    pub(crate) fn cloner(&self) -> Option<fn(&T) -> T> {
        self.by_value
            .as_ref()
            .and_then(|clone| clone.downcast_ref::<fn(&T) -> T>())
            .copied()
    }
}

/// A mailbox of `M` and the handler that drains it.
pub(crate) struct MailboxCore<M: Message> {
    mailbox: Mailbox<M>,
    run: Mutex<RunState<M>>,
    /// A typed subscription's `fn(&T) -> T` when it takes events by value.
    by_value: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl<M: Message> MailboxCore<M> {
    pub(crate) fn new(run: RunState<M>) -> Self {
        Self {
            mailbox: Mailbox::new(),
            run: Mutex::new(run),
            by_value: None,
        }
    }

    /// Runs the subscription on this thread: the caller moved `pending` away from 0, so it
    /// is the one runner. `first` is an event in hand that was counted but not pushed.
    fn run_owned(&self, common: &SubCommon, first: Option<M::Ref<'_>>, record: Option<&Group>) {
        let mut state = self.run.lock();
        let _running = Running::enter(common.id);
        // Not a runtime's thread (an inline drain): the subscription's histograms only.
        let mut recorder = Recorder::new(common, None);
        let mut done = 0usize;
        if let Some(view) = first {
            if common.may_start() {
                let started = recorder.as_ref().map(|_| std::time::Instant::now());
                let emitted = M::view_emitted_at(&view);
                let step = run_caught(&mut state.run, view);
                Recorder::timed(&mut recorder, started, emitted);
                if let Some(group) = record {
                    group.record(common.id, step.outcome());
                }
                finish(common, &mut state.on_failure, step);
            } else {
                // Unsubscribed since the emitter looked: the emitter keeps the event (it may
                // go to other subscriptions), so the dead letter carries no payload.
                bump(&common.stats.discarded);
                let key = M::ref_key(&view);
                common.dead_letter(|| key, None, DeadLetterReason::DiscardedAfterUnsubscribe);
                if let Some(group) = record {
                    group.record(common.id, Outcome::NotRun);
                }
            }
            done = 1;
        }
        loop {
            let queued = if done == 0 {
                // Acquire: every push counted so far is visible.
                common.pending.load(Ordering::Acquire)
            } else {
                match release(common, done) {
                    0 => break,
                    queued => queued,
                }
            };
            // Exactly `queued` messages: each was pushed before it was counted.
            done = self.run_queued(common, &mut state, queued, &mut recorder);
            if done == 0 {
                // Unreachable under the protocol; never spin on it.
                sync_yield();
            }
        }
    }

    /// Pops up to `count` messages and sends them to the dead letters; returns how many it
    /// popped.
    fn dead_letter_queued(
        &self,
        common: &SubCommon,
        count: usize,
        reason: DeadLetterReason,
    ) -> usize {
        let wants = common.hooks.wants_dead_letters();
        let mut done = 0;
        for _ in 0..count {
            let Some(message) = self.mailbox.pop() else {
                break;
            };
            done += 1;
            let result = catch_unwind(AssertUnwindSafe(|| {
                let (key, payload) = message.into_dead(wants);
                common.dead_letter(|| key, payload, reason);
            }));
            if let Err(panic) = result {
                common.hooks.error(ErrorReport::PayloadDropPanicked {
                    subscription: Some(common.id),
                    message: panic_message(&*panic),
                });
            }
        }
        done
    }

    /// Pops and runs up to `count` messages; returns how many it popped.
    fn run_queued(
        &self,
        common: &SubCommon,
        state: &mut RunState<M>,
        count: usize,
        recorder: &mut Option<Recorder<'_>>,
    ) -> usize {
        note_high_water(common, count);
        let mut done = 0;
        for _ in 0..count {
            match self.mailbox.pop() {
                Some(message) => {
                    self.invoke(common, state, message, recorder);
                    done += 1;
                }
                None => {
                    debug_assert!(false, "a counted message was not in the mailbox");
                    break;
                }
            }
        }
        done
    }

    fn invoke(
        &self,
        common: &SubCommon,
        state: &mut RunState<M>,
        mut message: M,
        recorder: &mut Option<Recorder<'_>>,
    ) {
        // Released last: after the handler, its callbacks and the payload's drop.
        let mut done = message.take_done();
        if !common.may_start() {
            bump(&common.stats.discarded);
            let wants = common.hooks.wants_dead_letters();
            let result = catch_unwind(AssertUnwindSafe(|| {
                let (key, payload) = message.into_dead(wants);
                common.dead_letter(|| key, payload, DeadLetterReason::DiscardedAfterUnsubscribe);
            }));
            if let Err(panic) = result {
                common.hooks.error(ErrorReport::PayloadDropPanicked {
                    subscription: Some(common.id),
                    message: panic_message(&*panic),
                });
            }
            return;
        }
        // The handler's emits join the chain this message belongs to.
        let _chain = done
            .as_ref()
            .and_then(|done| done.chain())
            .map(|chain| ChainScope::enter(chain.clone()));
        let started = recorder.as_ref().map(|_| std::time::Instant::now());
        let step = run_caught(&mut state.run, message.view());
        if let Some(started) = started {
            Recorder::timed(recorder, Some(started), message.emitted_at());
        }
        if !M::drop_may_panic() {
            drop(message);
        } else if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(message))) {
            // A payload's Drop may panic: never let it unwind through the runner.
            common.hooks.error(ErrorReport::PayloadDropPanicked {
                subscription: Some(common.id),
                message: panic_message(&*panic),
            });
        }
        if let Some(done) = &mut done {
            done.record(|| step.outcome());
        }
        finish(common, &mut state.on_failure, step);
        drop(_chain);
        drop(done);
    }
}

/// Runs the workflow closure. It catches the handler's panics itself; this catches what
/// escapes around it (a success value or a panic payload whose `Drop` panics), so that no
/// unwind ever crosses the pending-counter protocol.
fn run_caught<M: Message>(run: &mut RunFn<M>, view: M::Ref<'_>) -> Step {
    match catch_unwind(AssertUnwindSafe(|| run(view))) {
        Ok(step) => step,
        Err(panic) => Step::Failed(Failure::Panic(caught_message(panic))),
    }
}

/// A panic's message; a payload whose own `Drop` panics is leaked rather than unwound.
pub(crate) fn caught_message(panic: Box<dyn std::any::Any + Send>) -> String {
    let message = panic_message(&*panic);
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
        std::mem::forget(again);
    }
    message
}

/// Counts an invocation's outcome and runs the failure side of the workflow; nothing in it
/// unwinds into the runner.
#[inline]
fn finish(common: &SubCommon, on_failure: &mut Option<FailureCallback>, step: Step) {
    if let Step::Succeeded = step {
        // The common case, which runs no callback: nothing to catch.
        bump(&common.stats.invoked);
        bump(&common.stats.succeeded);
        return;
    }
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| finish_inner(common, on_failure, step))) {
        let message = caught_message(panic);
        eprintln!(
            "ventus: subscription {}: a callback or hook panicked: {message}",
            common.id
        );
    }
}

fn finish_inner(common: &SubCommon, on_failure: &mut Option<FailureCallback>, step: Step) {
    bump(&common.stats.invoked);
    match step {
        Step::Succeeded => bump(&common.stats.succeeded),
        Step::SuccessPanicked(message) => {
            bump(&common.stats.succeeded);
            bump(&common.stats.callback_panics);
            common.hooks.error(ErrorReport::CallbackPanicked {
                subscription: common.id,
                callback: "success",
                message,
            });
        }
        Step::Failed(failure) => {
            if matches!(failure, Failure::Panic(_)) {
                bump(&common.stats.panicked);
                if common.on_panic == OnPanic::Unsubscribe && common.retire() {
                    if let Some(linker) = common.linker.upgrade() {
                        linker.unregister(&[common.id], "its handler panicked");
                    }
                }
            } else {
                bump(&common.stats.failed);
            }
            let result = match on_failure {
                Some(FailureCallback::Own(callback)) => {
                    catch_unwind(AssertUnwindSafe(|| callback(failure)))
                }
                Some(FailureCallback::Default(callback)) => {
                    catch_unwind(AssertUnwindSafe(|| callback(failure)))
                }
                None => {
                    common.hooks.error(ErrorReport::UnhandledFailure {
                        subscription: common.id,
                        failure,
                    });
                    Ok(())
                }
            };
            if let Err(panic) = result {
                bump(&common.stats.callback_panics);
                common.hooks.error(ErrorReport::CallbackPanicked {
                    subscription: common.id,
                    callback: "failure",
                    message: caught_message(panic),
                });
            }
        }
    }
}

fn sync_yield() {
    crate::sync::yield_now();
}

impl<M: Message> Core for MailboxCore<M> {
    fn deliver(
        &self,
        common: &SubCommon,
        carrier: &mut Carrier<'_>,
        last: bool,
        ctx: DeliverCtx,
    ) -> Result<(), Refusal> {
        // Idle: run it here, without touching the mailbox. Acquire: the previous runner's
        // releasing fetch_sub (and everything its handler did) happens-before this run.
        if common
            .pending
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let record = carrier.direct_chain();
            match M::borrow(carrier, common.wants_meta()) {
                Some(view) => self.run_owned(common, Some(view), record.as_deref()),
                None => {
                    // No event to run (the emission was emptied): give the count back, and
                    // run what others queued meanwhile.
                    if release(common, 1) != 0 {
                        self.run_owned(common, None, None);
                    }
                }
            }
            return Ok(());
        }
        // Busy (on another thread, or on this stack): queue behind the current runner.
        if self.enqueue(common, carrier, last, ctx)? {
            self.run_owned(common, None, None);
        }
        Ok(())
    }

    fn enqueue(
        &self,
        common: &SubCommon,
        carrier: &mut Carrier<'_>,
        last: bool,
        ctx: DeliverCtx,
    ) -> Result<bool, Refusal> {
        let backoff = Backoff::new();
        loop {
            let queued = common.pending.load(Ordering::Relaxed);
            if queued < common.capacity {
                break;
            }
            match common.policy {
                Policy::Fail => return Err(Refusal::Full),
                Policy::DropNewest => return Err(Refusal::Dropped),
                Policy::Block if ctx.no_wait => return Err(Refusal::Full),
                Policy::Block => {
                    if backoff.is_completed() {
                        crate::sync::thread::park_timeout(std::time::Duration::from_micros(50));
                    } else {
                        backoff.snooze();
                    }
                }
            }
        }
        carrier.recipient = common.id;
        let Some(message) = M::build(carrier, last, common.wants_meta()) else {
            return Ok(false);
        };
        self.mailbox.push(message);
        let owner = count_pushed(common, 1);
        carrier.published();
        Ok(owner)
    }

    fn batch_type(&self) -> Option<std::any::TypeId> {
        M::batch_type()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn push_batch(
        &self,
        common: &SubCommon,
        items: &mut dyn BatchItems,
        stamps: &mut [crate::event::Stamp],
    ) -> bool {
        let mut pushed = 0;
        for index in 0..items.len() {
            let meta = common.wants_meta().then(|| match stamps.get_mut(index) {
                Some(stamp) => stamp.get(),
                None => crate::event::Stamp::default().get(),
            });
            if let Some(message) = M::from_item(items.item(index), meta) {
                self.mailbox.push(message);
                pushed += 1;
            }
        }
        // One count for the whole batch.
        pushed != 0 && count_pushed(common, pushed)
    }

    fn run_batch(
        &self,
        common: &SubCommon,
        runtime: &crate::actor::Shared,
        linger: std::time::Duration,
    ) -> bool {
        let abandon = &runtime.abandon;
        let mut state = self.run.lock();
        let _running = Running::enter(common.id);
        let mut recorder = Recorder::new(common, runtime.latency());
        let max = runtime.batch.max(1);
        let mut spins = 0u64;
        // Acquire: every push counted so far is visible.
        let pending = common.pending.load(Ordering::Acquire);
        note_high_water(common, pending);
        let mut limit = pending.min(max);
        let mut done = 0;
        let mut lingering: Option<std::time::Instant> = None;
        loop {
            while done < limit {
                if abandon.load(Ordering::Acquire) {
                    done += self.dead_letter_queued(
                        common,
                        limit - done,
                        DeadLetterReason::LeftAtShutdown,
                    );
                    runtime.count_spins(spins);
                    return release(common, done) != 0;
                }
                let Some(message) = self.mailbox.pop() else {
                    debug_assert!(false, "a counted message was not in the mailbox");
                    runtime.count_spins(spins);
                    return release(common, done) != 0;
                };
                self.invoke(common, &mut state, message, &mut recorder);
                done += 1;
            }
            if done >= max || linger.is_zero() {
                break;
            }
            // Drained what was counted: linger briefly before the releasing fetch_sub, so
            // that the next emit finds the subscription running and pays no schedule.
            let pending = common.pending.load(Ordering::Acquire);
            note_high_water(common, pending);
            if pending > done {
                limit = pending.min(max);
                lingering = None;
                continue;
            }
            let since = *lingering.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= linger || abandon.load(Ordering::Relaxed) {
                break;
            }
            spins += 1;
            // Read the clock, and `pending`, every 64 spins only: each load of `pending`
            // pulls its line away from the emitters, whose next `fetch_add` must pull it
            // back (measured: 16 spins between loads cost the emitter about 30% more).
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        }
        runtime.count_spins(spins);
        release(common, done) != 0
    }

    fn abandon(&self, common: &SubCommon, reason: DeadLetterReason) {
        let _state = self.run.lock();
        let mut queued = common.pending.load(Ordering::Acquire);
        while queued != 0 {
            let done = self.dead_letter_queued(common, queued, reason);
            queued = release(common, done);
        }
    }

    fn wait_not_running(&self) {
        drop(self.run.lock());
    }

    fn try_wait_not_running(&self) -> bool {
        self.run.try_lock().is_some()
    }
}

/// A subscription's shared state: the common part and its typed core.
pub(crate) struct SubInner<C: ?Sized> {
    pub(crate) common: SubCommon,
    pub(crate) core: C,
}

pub(crate) type SubArc = Arc<SubInner<dyn Core>>;

// The subscriptions whose runner is on this thread's stack, innermost last, and the
// inline emissions nested on it. (loom's `thread_local!` takes no `const` blocks.)
#[cfg(not(loom))]
thread_local! {
    static RUNNING: RefCell<Vec<SubscriptionId>> = const { RefCell::new(Vec::new()) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}
#[cfg(loom)]
thread_local! {
    static RUNNING: RefCell<Vec<SubscriptionId>> = RefCell::new(Vec::new());
    static DEPTH: Cell<u32> = Cell::new(0);
}

/// Marks a subscription as running on this thread for as long as it lives.
struct Running(PhantomData<*const ()>);

impl Running {
    fn enter(id: SubscriptionId) -> Self {
        RUNNING.with(|running| running.borrow_mut().push(id));
        Running(PhantomData)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|running| {
            running.borrow_mut().pop();
        });
    }
}

/// Whether the subscription's handler is running on this thread's stack.
pub(crate) fn running_here(id: SubscriptionId) -> bool {
    RUNNING.with(|running| running.borrow().contains(&id))
}

/// Whether this thread is inside any handler.
pub(crate) fn in_handler() -> bool {
    RUNNING.with(|running| !running.borrow().is_empty())
}

/// The nesting limit of inline emissions.
pub const MAX_DEPTH: u32 = 64;

/// Counts one level of inline nesting for as long as it lives.
pub(crate) struct Depth(PhantomData<*const ()>);

impl Depth {
    /// Enters one level, or `None` past the limit.
    pub(crate) fn enter() -> Option<(Self, u32)> {
        DEPTH.with(|depth| {
            let current = depth.get();
            if current >= MAX_DEPTH {
                None
            } else {
                depth.set(current + 1);
                Some((Depth(PhantomData), current))
            }
        })
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get() - 1));
    }
}

/// A handle to one subscription: a handler linked to one or more event keys.
///
/// Cheap to clone; every clone is the same subscription. Dropping handles does not
/// unsubscribe (use [`guard`](Subscription::guard) for that).
///
/// # Examples
///
/// ```
/// use ventus::{Emitter, Linker};
///
/// struct Ping;
/// let linker = Linker::new();
/// let sub = linker.on::<Ping>().call(|_: &Ping| println!("ping")).unwrap();
/// let emitter = Emitter::inline(&linker);
/// emitter.emit(Ping).unwrap();
/// assert!(sub.unsubscribe());
/// assert!(!sub.unsubscribe());
/// assert_eq!(emitter.emit(Ping).unwrap().delivered, 0);
/// ```
#[derive(Clone)]
pub struct Subscription {
    pub(crate) inner: SubArc,
}

impl Subscription {
    pub(crate) fn common(&self) -> &SubCommon {
        &self.inner.common
    }

    /// The subscription's id.
    pub fn id(&self) -> SubscriptionId {
        self.inner.common.id
    }

    /// Whether this is a once subscription.
    pub fn is_once(&self) -> bool {
        self.inner.common.once
    }

    /// Whether it still receives events: not unsubscribed, not removed, and (for a once
    /// subscription) not yet claimed.
    pub fn is_active(&self) -> bool {
        self.inner.common.is_live()
    }

    /// The keys it is linked to now (empty once it is gone from its linker).
    pub fn events(&self) -> Vec<EventKey> {
        match self.inner.common.linker.upgrade() {
            Some(linker) => linker.events_of(self.id()),
            None => Vec::new(),
        }
    }

    /// Removes the subscription from its linker. `true` the first time; `false` after that,
    /// once it was removed another way, or once its once-event was claimed.
    ///
    /// After it returns `true`, no invocation of the handler starts: events still queued
    /// for it are discarded, counted, and reported as dead letters. An invocation already
    /// running may finish; [`unsubscribe_and_wait`](Self::unsubscribe_and_wait) waits for
    /// it too.
    pub fn unsubscribe(&self) -> bool {
        let common = &self.inner.common;
        if !common.mark_unsubscribed() {
            return false;
        }
        if let Some(linker) = common.linker.upgrade() {
            linker.unregister(&[self.id()], "unsubscribe");
        }
        if let Some(home) = &common.home {
            // Let a dedicated thread notice and exit.
            home.waker.wake();
        }
        true
    }

    /// [`unsubscribe`](Self::unsubscribe), then waits until no invocation of the handler is
    /// running.
    ///
    /// # Errors
    ///
    /// [`WouldDeadlock`] when called from the subscription's own handler (it would wait
    /// for itself; the subscription is not unsubscribed then), or from another
    /// subscription's handler while this one is running (two handlers waiting on each other
    /// would deadlock; the subscription *is* unsubscribed then, only the wait is refused).
    pub fn unsubscribe_and_wait(&self) -> Result<bool, WouldDeadlock> {
        if running_here(self.id()) {
            return Err(WouldDeadlock);
        }
        let removed = self.unsubscribe();
        if in_handler() {
            // From another subscription's handler: never block on a running one (two
            // handlers waiting on each other would deadlock). It is unsubscribed either way.
            return if self.inner.core.try_wait_not_running() {
                Ok(removed)
            } else {
                Err(WouldDeadlock)
            };
        }
        self.inner.core.wait_not_running();
        Ok(removed)
    }

    /// A guard that unsubscribes when dropped.
    #[must_use = "dropping the guard unsubscribes at once"]
    pub fn guard(&self) -> SubscriptionGuard {
        SubscriptionGuard {
            subscription: Some(self.clone()),
        }
    }

    /// The subscription's counters.
    pub fn stats(&self) -> SubscriptionStats {
        let stats = &self.inner.common.stats;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SubscriptionStats {
            invoked: get(&stats.invoked),
            succeeded: get(&stats.succeeded),
            failed: get(&stats.failed),
            panicked: get(&stats.panicked),
            callback_panics: get(&stats.callback_panics),
            discarded: get(&stats.discarded),
            refused: get(&stats.refused),
            dropped: get(&stats.dropped),
            queued: self.inner.common.pending.load(Ordering::Relaxed),
            delivered: get(&stats.invoked)
                + get(&stats.discarded)
                + self.inner.common.pending.load(Ordering::Relaxed) as u64,
            high_water: self.inner.common.high_water.load(Ordering::Relaxed),
            dead_letters: self
                .inner
                .common
                .dead
                .get()
                .map(|dead| crate::DeadLetterCounts::of(dead))
                .unwrap_or_default(),
        }
    }

    /// A copy of the subscription's latency histograms (queueing and service time, in
    /// nanoseconds), if it keeps them ([`SubscribeBuilder::histograms`]). Waits at most for
    /// the runner to finish recording its current batch.
    ///
    /// [`SubscribeBuilder::histograms`]: crate::SubscribeBuilder::histograms
    pub fn latency(&self) -> Option<crate::LatencyStats> {
        self.inner
            .common
            .hist
            .as_ref()
            .map(|hist| hist.lock().clone())
    }
}

impl PartialEq for Subscription {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
impl Eq for Subscription {}
impl std::hash::Hash for Subscription {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner.common, f)
    }
}

/// Unsubscribes its subscription when dropped. Made by [`Subscription::guard`].
#[derive(Debug)]
pub struct SubscriptionGuard {
    subscription: Option<Subscription>,
}

impl SubscriptionGuard {
    /// The guarded subscription.
    pub fn subscription(&self) -> &Subscription {
        self.subscription
            .as_ref()
            .expect("a guard holds its subscription until dropped or disarmed")
    }

    /// Gives the subscription back without unsubscribing it.
    pub fn disarm(mut self) -> Subscription {
        self.subscription
            .take()
            .expect("a guard holds its subscription until dropped or disarmed")
    }
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        if let Some(subscription) = self.subscription.take() {
            subscription.unsubscribe();
        }
    }
}

/// Builds the subscription's shared state.
pub(crate) fn new_typed<T: Send + Sync + 'static>(
    common: SubCommon,
    by_value: Option<fn(&T) -> T>,
    run: RunState<TypedMsg<T>>,
) -> SubArc {
    let mut core = MailboxCore::new(run);
    core.by_value = by_value.map(|clone| Box::new(clone) as Box<dyn std::any::Any + Send + Sync>);
    Arc::new(SubInner { common, core })
}

/// Builds a dynamic (named, `Any` or multi-key) subscription's shared state.
pub(crate) fn new_dynamic(common: SubCommon, run: RunState<Envelope>) -> SubArc {
    Arc::new(SubInner {
        common,
        core: MailboxCore::new(run),
    })
}

/// The metadata of a typed message.
pub(crate) fn typed_meta<T: 'static>(meta: Option<MsgMeta>) -> Option<EventMeta> {
    meta.map(|meta| EventMeta {
        id: meta.id,
        key: EventKey::Type(TypeKey::of::<T>()),
        emitted_at: meta.at,
    })
}

/// The metadata of a dynamic event.
pub(crate) fn envelope_meta(event: &EnvRef<'_>) -> Option<EventMeta> {
    event.meta.map(|meta| EventMeta {
        id: meta.id,
        key: event.key.clone(),
        emitted_at: meta.at,
    })
}

#[cfg(test)]
mod layout {
    use super::SubCommon;
    use std::mem::offset_of;

    /// `pending`, which every emitter writes, is at least a cache line away from what the
    /// runner touches for every message.
    #[test]
    fn pending_is_a_line_away_from_the_runners_fields() {
        let pending = offset_of!(SubCommon, pending);
        for (name, offset) in [
            ("state", offset_of!(SubCommon, state)),
            ("stats", offset_of!(SubCommon, stats)),
            ("high_water", offset_of!(SubCommon, high_water)),
        ] {
            assert!(
                offset >= pending + 64,
                "{name} at {offset}, pending at {pending}"
            );
        }
    }
}
