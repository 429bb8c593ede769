//! The `Emitter` handle, the object-safe `Strategy` trait it dispatches through, and the
//! inline strategy.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::actor::{self, Runtime, current_runtime};
use crate::carrier::{Carrier, ChainScope, EmitKey, Group, Slot};
use crate::error::{AskError, DispatchError, EmitError, Refusal};
use crate::event::{EventKey, TypeKey};
use crate::hooks::{ErrorReport, panic_message};
use crate::linker::Linker;
use crate::outcome::{Completed, Outcome};
use crate::subscription::{DeliverCtx, Depth, Subscription, SubscriptionId, in_handler};
use crate::sync::Arc;

/// What one emission reached.
///
/// A partial delivery is `Ok` with `refused` non-empty: the event is shared by the
/// subscriptions that took it, so it cannot be given back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[must_use = "refusals are reported here"]
pub struct Delivery {
    /// How many subscriptions took the event (ran it, or queued it behind a running
    /// invocation).
    pub delivered: usize,
    /// The subscriptions that refused it, and why.
    pub refused: Vec<(SubscriptionId, Refusal)>,
}

impl Delivery {
    /// Whether no subscription refused the event.
    /// Adds another delivery's counts and refusals to this one.
    pub fn absorb(&mut self, other: Delivery) {
        self.delivered += other.delivered;
        self.refused.extend(other.refused);
    }

    /// Whether no subscription refused the event.
    pub fn is_complete(&self) -> bool {
        self.refused.is_empty()
    }
}

/// Where and when handlers run: the emitter's interchangeable part.
///
/// A strategy receives every emission as an [`Emission`] and decides what to do with it:
/// deliver it now ([`Emission::deliver_inline`]), keep it for later
/// ([`Emission::defer`]), or send it elsewhere (reading it with [`Emission::payload`]).
/// The once claim happens inside the delivery helpers, so a strategy that sends events
/// elsewhere never consumes local once subscriptions.
///
/// The trait is object safe: an [`Emitter`] holds an `Arc<dyn Strategy>`, so one function
/// can take an `Emitter` and the strategy can be swapped without touching subscriptions.
///
/// # Contract
///
/// On `Err`, the event must still be in the emission (it goes back to the caller inside
/// the [`EmitError`]). A strategy that took the event and then fails reports
/// `Ok(Delivery::default())` and says why through its own channel.
///
/// # Examples
///
/// A strategy that counts emissions and delivers inline:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use ventus::{Delivery, DispatchError, Emission, Emitter, Linker, Strategy};
///
/// #[derive(Debug, Default)]
/// struct Counting(AtomicUsize);
///
/// impl Strategy for Counting {
///     fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         emission.deliver_inline()
///     }
/// }
///
/// let linker = Linker::new();
/// let emitter = Emitter::new(&linker, Counting::default());
/// emitter.emit(1u8).unwrap();
/// ```
pub trait Strategy: Send + Sync + fmt::Debug + 'static {
    /// Handles one emission.
    ///
    /// # Errors
    ///
    /// A [`DispatchError`] when no subscription took the event; the event must still be in
    /// the emission.
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError>;

    /// Handles a batch of events of one type ([`Emitter::emit_batch`]). The default
    /// handles them one by one through [`dispatch`](Self::dispatch); strategies override it
    /// to amortise per-emit costs.
    ///
    /// # Errors
    ///
    /// A [`DispatchError`] when the whole batch was refused; every event must still be in
    /// the batch. Single events refused are kept by [`Batch::each`].
    fn dispatch_batch(&self, batch: &mut Batch<'_>) -> Result<Delivery, DispatchError> {
        Ok(batch.each(|emission| self.dispatch(emission)))
    }
}

/// The inline strategy: handlers run on the emitting thread, in subscription order, before
/// `emit` returns.
///
/// A handler that emits again nests depth-first; an emission that reaches a subscription
/// already running on this stack is queued and runs right after its current invocation,
/// before the outermost `emit` returns. Nesting past [`MAX_DEPTH`](crate::MAX_DEPTH) is
/// [`EmitError::TooDeep`]. A subscription runs one invocation at a time even when several
/// threads emit to it inline: a thread that finds it running elsewhere queues the event
/// for that runner and returns. Subscriptions with a dedicated placement run on their own
/// threads; an inline emit from outside any handler waits for those invocations too, so
/// it returns after every handler ran (from inside a handler it queues and returns, so two
/// dedicated handlers that emit to each other cannot wait on each other).
#[derive(Debug, Default, Clone, Copy)]
pub struct Inline;

impl Strategy for Inline {
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
        emission.deliver_inline()
    }

    fn dispatch_batch(&self, batch: &mut Batch<'_>) -> Result<Delivery, DispatchError> {
        Ok(batch.deliver_inline())
    }
}

/// The actor strategy: handlers run on a [`Runtime`]'s worker pool (subscriptions with a
/// dedicated placement on their own threads); `emit` returns once the event is queued.
///
/// A subscription still runs one invocation at a time, in emission order for each
/// emitting thread; different subscriptions run in parallel. An emit from a handler on a
/// runtime thread never waits: a full mailbox there is [`Refusal::Full`].
///
/// # Examples
///
/// ```
/// use ventus::{Actors, Emitter, Linker, Runtime};
///
/// let runtime = Runtime::builder().workers(2).build().unwrap();
/// let linker = Linker::new();
/// let _sub = linker.on::<String>().call(|s: &String| println!("{s}")).unwrap();
/// let emitter = Emitter::new(&linker, Actors::new(&runtime));
/// assert_eq!(emitter.emit(String::from("queued")).unwrap().delivered, 1);
/// runtime.wait_idle().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Actors {
    runtime: Runtime,
}

impl Actors {
    /// The actor strategy over `runtime`.
    pub fn new(runtime: &Runtime) -> Self {
        Self {
            runtime: runtime.clone(),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl Strategy for Actors {
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
        emission.deliver_to(&self.runtime)
    }

    fn dispatch_batch(&self, batch: &mut Batch<'_>) -> Result<Delivery, DispatchError> {
        batch.deliver_to(&self.runtime)
    }
}

mod batch;
mod fast;
mod local;
#[cfg(not(loom))]
pub(crate) use fast::AnyRoute;
pub use local::LocalEmitter;
#[cfg(not(loom))]
mod rayon;
pub use batch::Batch;
#[cfg(not(loom))]
pub use rayon::Rayon;

/// The runtime behind an [`Actors`] strategy, whose emits may take the fast path.
fn fast_path_of<S: Strategy>(strategy: &S) -> Option<Arc<actor::Shared>> {
    (strategy as &dyn Any)
        .downcast_ref::<Actors>()
        .map(|actors| actors.runtime.shared().clone())
}

/// The answer slot of an [`Emitter::ask`] request: the handler replies with
/// [`send`](Reply::send), through a shared reference (handlers see `&Request`).
pub struct Reply<R> {
    tx: crossbeam_channel::Sender<R>,
}

impl<R> Reply<R> {
    /// Sends the reply. `false` when it cannot arrive: already replied, or the asker gave
    /// up (timed out) and went away.
    pub fn send(&self, value: R) -> bool {
        self.tx.try_send(value).is_ok()
    }
}

impl<R> fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").finish_non_exhaustive()
    }
}

/// One emission, as a [`Strategy`] sees it.
pub struct Emission<'a> {
    linker: &'a Linker,
    carrier: Carrier<'a>,
    no_wait: bool,
    debug: bool,
    /// Only this subscription receives the event (`ask`).
    target: Option<SubscriptionId>,
}

impl fmt::Debug for Emission<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emission")
            .field("linker", &self.linker.name())
            .field("key", &self.key())
            .field("type", &self.type_name())
            .finish_non_exhaustive()
    }
}

/// Walks two id-sorted subscription lists in id order, yielding a subscription on both
/// once.
struct Merge<'s> {
    a: &'s [Subscription],
    b: &'s [Subscription],
}

impl<'s> Iterator for Merge<'s> {
    type Item = &'s Subscription;

    #[inline]
    fn next(&mut self) -> Option<&'s Subscription> {
        match (self.a.split_first(), self.b.split_first()) {
            (Some((x, a)), Some((y, b))) => {
                if x.id() < y.id() {
                    self.a = a;
                    Some(x)
                } else if y.id() < x.id() {
                    self.b = b;
                    Some(y)
                } else {
                    self.a = a;
                    self.b = b;
                    Some(x)
                }
            }
            (Some((x, a)), None) => {
                self.a = a;
                Some(x)
            }
            (None, Some((y, b))) => {
                self.b = b;
                Some(y)
            }
            (None, None) => None,
        }
    }
}

impl<'a> Emission<'a> {
    /// The linker the emission is made in.
    pub fn linker(&self) -> &'a Linker {
        self.linker
    }

    /// The key the event is emitted under.
    pub fn key(&self) -> EventKey {
        self.carrier.key.clone().make_key()
    }

    /// The payload's type name (display only).
    pub fn type_name(&self) -> &'static str {
        self.carrier.type_name()
    }

    /// The payload, while the emission still holds it.
    pub fn payload(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.carrier.slot.payload()
    }

    /// Whether this is a `try_emit` (which must never block).
    pub fn is_try(&self) -> bool {
        self.no_wait
    }

    /// The one subscription this emission is for (an [`Emitter::ask`]), if any; the
    /// delivery helpers skip every other subscription.
    pub fn target(&self) -> Option<SubscriptionId> {
        self.target
    }

    /// Delivers the event now, on this thread: the inline strategy's whole work, and the
    /// building block of others. Claims once subscriptions (removing each claimed one from
    /// the registry before running it), runs idle subscriptions here in subscription order,
    /// and queues the event behind subscriptions that are running elsewhere or further up
    /// this stack.
    ///
    /// # Errors
    ///
    /// [`DispatchError::TooDeep`] past the nesting limit; [`DispatchError::Full`] when
    /// every matching subscription refused the event (which then stays in the emission).
    pub fn deliver_inline(&mut self) -> Result<Delivery, DispatchError> {
        let Some((_depth, _level)) = Depth::enter() else {
            return Err(DispatchError::TooDeep);
        };
        self.deliver(None)
    }

    /// Delivers the event to the runtime: queues it in the mailbox of every matching
    /// subscription and schedules the idle ones on the worker pool (or wakes their
    /// dedicated threads); returns once queued. The [`Actors`] strategy's whole work.
    ///
    /// # Errors
    ///
    /// [`DispatchError::Shutdown`] when the runtime refuses external emits (emits made by
    /// the runtime's own handlers during a shutdown's drain are accepted);
    /// [`DispatchError::Full`] when every matching subscription refused the event.
    pub fn deliver_to(&mut self, runtime: &Runtime) -> Result<Delivery, DispatchError> {
        let shared = runtime.shared();
        let Ok(_entered) = shared.admit() else {
            return Err(DispatchError::Shutdown);
        };
        self.deliver(Some(shared))
    }

    fn deliver(&mut self, pool: Option<&Arc<actor::Shared>>) -> Result<Delivery, DispatchError> {
        if self.carrier.shared.is_none() && self.carrier.slot.payload().is_none() {
            // Already delivered or deferred: nothing to deliver (and no once claim).
            return Ok(Delivery::default());
        }
        let ctx = DeliverCtx {
            no_wait: self.no_wait || in_handler() || current_runtime() != 0,
        };
        let (keyed, any) = {
            let snapshot = self.linker.inner.snapshot.load();
            let keyed = match &mut self.carrier.key {
                EmitKey::Type(key) => snapshot.typed(key.id()).cloned(),
                EmitKey::Named(name, arc) => snapshot.named(name).map(|(stored, subs)| {
                    *arc = Some(stored.clone());
                    subs.clone()
                }),
            };
            let any = snapshot.any();
            let any = (!any.is_empty()).then(|| any.clone());
            (keyed, any)
            // The snapshot guard is dropped here, before any user code runs.
        };
        let keyed = keyed.as_deref().unwrap_or(&[]);
        let any = any.as_deref().unwrap_or(&[]);
        let target = self.target;
        let merge =
            || Merge { a: keyed, b: any }.filter(move |sub| target.is_none_or(|id| sub.id() == id));
        let candidates = merge().filter(|sub| sub.common().is_live()).count();
        if candidates == 0 {
            if self.debug {
                self.linker
                    .inner
                    .hooks
                    .debug_line(format_args!("no subscriptions for {}", self.key()));
            }
            return Ok(Delivery::default());
        }
        if self.debug {
            self.linker.inner.hooks.debug_line(format_args!(
                "emit {} to {candidates} subscription(s)",
                self.key()
            ));
        }
        let mut delivery = Delivery::default();
        let mut remaining = candidates;
        for sub in merge() {
            let common = sub.common();
            if common.once {
                if !common.claim() {
                    continue;
                }
                self.linker.inner.unregister(&[sub.id()], "once");
            } else if !common.is_live() {
                continue;
            }
            remaining = remaining.saturating_sub(1);
            let last = remaining == 0;
            let core = &sub.inner.core;
            let result = match (&common.home, pool) {
                (None, _) if common.cpu.is_some() => {
                    // Like a dedicated thread: the rayon pool's runtime guards the delivery.
                    let runtime = common.cpu.as_ref().expect("checked");
                    self.deliver_home(runtime, sub, last, ctx, pool.is_none(), || {
                        runtime.schedule_cpu(sub.inner.clone());
                    })
                }
                (Some(home), _) => {
                    // The dedicated thread's own runtime guards this delivery, whatever the
                    // strategy: once it is shut down, the event is refused, not queued.
                    self.deliver_home(&home.runtime, sub, last, ctx, pool.is_none(), || {
                        home.schedule(&sub.inner);
                    })
                }
                (None, None) => core.deliver(common, &mut self.carrier, last, ctx),
                (None, Some(pool)) => {
                    core.enqueue(common, &mut self.carrier, last, ctx)
                        .map(|owner| {
                            if owner {
                                pool.schedule(sub.inner.clone());
                            }
                        })
                }
            };
            match result {
                Ok(()) => delivery.delivered += 1,
                Err(refusal) => {
                    let key = self.carrier.key.clone();
                    common.refused(refusal, move || key.clone().make_key());
                    delivery.refused.push((sub.id(), refusal));
                }
            }
        }
        if let Some(latch) = self.carrier.latch.take() {
            latch.wait();
        }
        if delivery.delivered == 0 && !delivery.refused.is_empty() {
            self.carrier.unshare();
            if self.carrier.slot.payload().is_some() {
                let shutdown = delivery
                    .refused
                    .iter()
                    .all(|(_, refusal)| *refusal == Refusal::Shutdown);
                return Err(if shutdown {
                    DispatchError::Shutdown
                } else {
                    DispatchError::Full
                });
            }
        }
        // Handlers that ran on this stack borrowed the event; what is left is dropped here
        // (a panicking Drop must not unwind into the emitter).
        let shared = self.carrier.shared.take();
        let slot = &mut *self.carrier.slot;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || {
            drop(shared);
            slot.clear();
        })) {
            self.linker
                .inner
                .hooks
                .error(ErrorReport::PayloadDropPanicked {
                    subscription: None,
                    message: panic_message(&*panic),
                });
        }
        Ok(delivery)
    }

    /// How many live subscriptions match the emission now (a snapshot read; no claim).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn live_matches(&mut self) -> usize {
        let snapshot = self.linker.inner.snapshot.load();
        let keyed = match &self.carrier.key {
            EmitKey::Type(key) => snapshot.typed(key.id()),
            EmitKey::Named(name, _) => snapshot.named(name).map(|(_, subs)| subs),
        };
        let keyed = keyed.map(|subs| &subs[..]).unwrap_or(&[]);
        let target = self.target;
        Merge {
            a: keyed,
            b: snapshot.any(),
        }
        .filter(|sub| target.is_none_or(|id| sub.id() == id) && sub.common().is_live())
        .count()
    }

    /// Queues the event for a subscription that runs on `runtime`'s threads (dedicated or
    /// `CpuBound`) through that runtime's gate, and calls `schedule` if this emit moved
    /// its pending counter from 0. An inline emit from outside any handler returns after
    /// every handler ran, these included: it waits for this invocation.
    fn deliver_home(
        &mut self,
        runtime: &Arc<actor::Shared>,
        sub: &Subscription,
        last: bool,
        ctx: DeliverCtx,
        inline: bool,
        schedule: impl FnOnce(),
    ) -> Result<(), Refusal> {
        let Ok(entered) = runtime.admit() else {
            return Err(Refusal::Shutdown);
        };
        self.carrier.wait_for_it = inline && !ctx.no_wait;
        let result = sub
            .inner
            .core
            .enqueue(sub.common(), &mut self.carrier, last, ctx)
            .map(|owner| {
                if owner {
                    schedule();
                }
            });
        self.carrier.wait_for_it = false;
        drop(entered);
        result
    }

    /// Takes the event out of the emission, to be delivered later with
    /// [`DeferredEmission::deliver_inline`]; `None` if it was already taken.
    pub fn defer(&mut self) -> Option<DeferredEmission> {
        let slot = self.carrier.slot.take_slot()?;
        Some(DeferredEmission {
            linker: self.linker.clone(),
            key: self.carrier.key.clone().make_key(),
            slot,
            debug: self.debug,
            target: self.target,
            direct: false,
        })
    }
}

/// An emission taken out of its emit call, to be delivered later (a deferring strategy's
/// queue holds these). Dropping it drops the event.
pub struct DeferredEmission {
    linker: Linker,
    key: EventKey,
    slot: Box<dyn Slot>,
    debug: bool,
    target: Option<SubscriptionId>,
    /// Delivered for an `emit_and_wait` whose outcomes it records (the rayon strategy).
    direct: bool,
}

impl fmt::Debug for DeferredEmission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredEmission")
            .field("linker", &self.linker.name())
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl DeferredEmission {
    /// The key the event was emitted under.
    pub fn key(&self) -> &EventKey {
        &self.key
    }

    /// The linker it will be delivered in.
    pub fn linker(&self) -> &Linker {
        &self.linker
    }

    /// The payload.
    pub fn payload(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.slot.payload()
    }

    /// Takes the payload out, for a dead letter.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn into_payload(mut self) -> Option<crate::event::DynPayload> {
        self.slot.take_box().map(crate::event::DynPayload::Boxed)
    }

    /// Delivers it now, as [`Emission::deliver_inline`] does.
    ///
    /// # Errors
    ///
    /// As for [`Emission::deliver_inline`]; the deferred emission is given back with the
    /// error.
    #[allow(clippy::result_large_err)]
    pub fn deliver_inline(mut self) -> Result<Delivery, (DispatchError, DeferredEmission)> {
        let key = match &self.key {
            EventKey::Type(key) => EmitKey::Type(*key),
            EventKey::Named(name) => EmitKey::Named(name, Some(name.clone())),
            EventKey::Any => unreachable!("an emission is never made under Any"),
        };
        let mut carrier = Carrier::new(&mut *self.slot, key);
        carrier.direct = self.direct;
        let mut emission = Emission {
            linker: &self.linker,
            carrier,
            no_wait: false,
            debug: self.debug,
            target: self.target,
        };
        match emission.deliver_inline() {
            Ok(delivery) => Ok(delivery),
            Err(error) => Err((error, self)),
        }
    }
}

/// A cheap, cloneable handle that emits into one [`Linker`] through a [`Strategy`].
///
/// # Examples
///
/// ```
/// use ventus::{Emitter, Linker};
///
/// let linker = Linker::new();
/// let _sub = linker.on_named("greet").call(|name: &String| println!("hello {name}")).unwrap();
/// let emitter = Emitter::inline(&linker);
/// let delivery = emitter.emit_named("greet", String::from("ada")).unwrap();
/// assert_eq!(delivery.delivered, 1);
/// // No subscribers is not an error.
/// assert_eq!(emitter.emit(42u64).unwrap().delivered, 0);
/// ```
#[derive(Clone)]
pub struct Emitter {
    linker: Linker,
    strategy: Arc<dyn Strategy>,
    debug: Option<bool>,
    /// The runtime of an [`Actors`] strategy: its emits may take the typed fast path.
    fast: Option<Arc<actor::Shared>>,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("linker", &self.linker.name())
            .field("strategy", &self.strategy)
            .field("debug", &self.debug)
            .finish()
    }
}

impl Emitter {
    /// An emitter into `linker` through `strategy`.
    pub fn new(linker: &Linker, strategy: impl Strategy) -> Self {
        let fast = fast_path_of(&strategy);
        Self {
            fast,
            ..Self::with_strategy_arc(linker, Arc::new(strategy))
        }
    }

    /// An emitter into `linker` through a shared strategy.
    pub fn with_strategy_arc(linker: &Linker, strategy: Arc<dyn Strategy>) -> Self {
        Self {
            linker: linker.clone(),
            strategy,
            debug: None,
            fast: None,
        }
    }

    /// An emitter that runs handlers on the calling thread ([`Inline`]).
    pub fn inline(linker: &Linker) -> Self {
        Self::new(linker, Inline)
    }

    /// The same emitter with debug lines on or off, whatever the linker and global flags
    /// say.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
        self
    }

    /// The linker this emitter delivers in.
    pub fn linker(&self) -> &Linker {
        &self.linker
    }

    /// The strategy.
    pub fn strategy(&self) -> &Arc<dyn Strategy> {
        &self.strategy
    }

    /// An emitter into the same linker through another strategy (subscriptions are
    /// untouched).
    pub fn switch(&self, strategy: impl Strategy) -> Self {
        Self {
            linker: self.linker.clone(),
            fast: fast_path_of(&strategy),
            strategy: Arc::new(strategy),
            debug: self.debug,
        }
    }

    /// Emits `event` to every subscription of its type and to every `Any` subscription.
    ///
    /// # Errors
    ///
    /// An [`EmitError`] holding the event when no subscription took it: every one refused
    /// it (`Full`), nesting went too deep (`TooDeep`), or the strategy's runtime is
    /// shutting down (`Shutdown`). No subscribers is `Ok` with 0 delivered.
    pub fn emit<T: Send + Sync + 'static>(&self, event: T) -> Result<Delivery, EmitError<T>> {
        let event = match self.emit_fast(event) {
            Ok(result) => return result,
            Err(event) => event,
        };
        self.dispatch(Some(event), EmitKey::Type(TypeKey::of::<T>()), false)
    }

    /// Like [`emit`](Self::emit), but never blocks: a full mailbox is a refusal whatever
    /// its policy.
    ///
    /// # Errors
    ///
    /// As for [`emit`](Self::emit).
    pub fn try_emit<T: Send + Sync + 'static>(&self, event: T) -> Result<Delivery, EmitError<T>> {
        // The fast path never waits: a full mailbox sends the event the general way.
        let event = match self.emit_fast(event) {
            Ok(result) => return result,
            Err(event) => event,
        };
        self.dispatch(Some(event), EmitKey::Type(TypeKey::of::<T>()), true)
    }

    /// Emits `payload` under `name`, to every subscription of the name and every `Any`
    /// subscription.
    ///
    /// # Errors
    ///
    /// [`EmitError::EmptyName`] for an empty name, and as for [`emit`](Self::emit).
    pub fn emit_named<T: Send + Sync + 'static>(
        &self,
        name: &str,
        payload: T,
    ) -> Result<Delivery, EmitError<T>> {
        if name.is_empty() {
            return Err(EmitError::EmptyName(payload));
        }
        self.dispatch(Some(payload), EmitKey::Named(name, None), false)
    }

    /// Like [`emit_named`](Self::emit_named), but never blocks.
    ///
    /// # Errors
    ///
    /// As for [`emit_named`](Self::emit_named).
    pub fn try_emit_named<T: Send + Sync + 'static>(
        &self,
        name: &str,
        payload: T,
    ) -> Result<Delivery, EmitError<T>> {
        if name.is_empty() {
            return Err(EmitError::EmptyName(payload));
        }
        self.dispatch(Some(payload), EmitKey::Named(name, None), true)
    }

    /// Emits a batch of events of one type: with the actor strategy, one snapshot read
    /// and, per matching mailbox, one push per event and one count for the whole batch
    /// (see [`Batch::deliver_to`]); with the inline strategy, each event in turn; other
    /// strategies as their [`Strategy::dispatch_batch`] says. Per subscription, the events
    /// keep their order. `delivered` in the result sums over the events.
    ///
    /// # Errors
    ///
    /// An [`EmitError`] holding, in order, every event that no subscription took (refused
    /// by all: full, shutdown, too deep); the other events were delivered. Events with no
    /// subscriber are dropped, as with [`emit`](Self::emit).
    ///
    /// # Examples
    ///
    /// ```
    /// use ventus::{Actors, Emitter, Linker, Runtime};
    ///
    /// let runtime = Runtime::builder().workers(2).build().unwrap();
    /// let linker = Linker::new();
    /// let sum = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    /// let s = sum.clone();
    /// let _sub = linker
    ///     .on::<u64>()
    ///     .call(move |n: &u64| {
    ///         s.fetch_add(*n, std::sync::atomic::Ordering::Relaxed);
    ///     })
    ///     .unwrap();
    /// let emitter = Emitter::new(&linker, Actors::new(&runtime));
    /// assert_eq!(emitter.emit_batch(1..=100u64).unwrap().delivered, 100);
    /// runtime.wait_idle().unwrap();
    /// assert_eq!(sum.load(std::sync::atomic::Ordering::Relaxed), 5050);
    /// ```
    pub fn emit_batch<T: Send + Sync + 'static>(
        &self,
        events: impl IntoIterator<Item = T>,
    ) -> Result<Delivery, EmitError<Vec<T>>> {
        let slots: Vec<Option<T>> = events.into_iter().map(Some).collect();
        if slots.is_empty() {
            return Ok(Delivery::default());
        }
        let mut slots = match self.emit_batch_fast(slots) {
            Ok(result) => return result,
            Err(slots) => slots,
        };
        let debug = self.linker.inner.hooks.debug_enabled(self.debug);
        let mut batch = Batch {
            linker: &self.linker,
            slots: &mut slots,
            key: TypeKey::of::<T>(),
            no_wait: false,
            debug,
            refused: Vec::new(),
            error: None,
        };
        let result = self.strategy.dispatch_batch(&mut batch);
        let (refused, error) = (std::mem::take(&mut batch.refused), batch.error.take());
        drop(batch);
        let (returned, error) = match result {
            Ok(delivery) if refused.is_empty() => {
                // Events nobody subscribes to are dropped here (never unwinding).
                self.drop_untaken(Some(slots));
                return Ok(delivery);
            }
            Ok(_) => {
                let mut returned = Vec::with_capacity(refused.len());
                for index in refused {
                    returned.extend(slots[index].take());
                }
                (returned, error.unwrap_or(DispatchError::Full))
            }
            Err(error) => (slots.iter_mut().filter_map(Option::take).collect(), error),
        };
        self.drop_untaken(Some(slots));
        Err(match error {
            DispatchError::Shutdown => EmitError::Shutdown(returned),
            DispatchError::TooDeep => EmitError::TooDeep(returned),
            DispatchError::WouldDeadlock => EmitError::WouldDeadlock(returned),
            _ => EmitError::Full(returned),
        })
    }

    /// Emits `event` and waits until every handler of this emission, and of every
    /// emission those handlers made (through any emitter, while they ran), has finished:
    /// Pyventus's behaviour in a synchronous context, with no chained emission lost
    /// (Pyventus issue #34). Returns each reached subscription's [`Outcome`].
    ///
    /// Works with every strategy: inline handlers run on this thread; queued ones
    /// (actors, dedicated threads) are counted in an in-flight counter that each message
    /// adds to *before* it is pushed and releases after its handler, its callbacks and
    /// its payload's drop.
    ///
    /// A handler that waits for an event it caused itself to reach it again (a chain back
    /// into a subscription that is blocked in this call) waits forever: do not
    /// `emit_and_wait` a chain that comes back to the waiting handler.
    ///
    /// # Errors
    ///
    /// [`EmitError::WouldDeadlock`] on a runtime's pool worker (waiting there could hold
    /// the worker the chain needs; use [`emit`](Self::emit) from pooled handlers, or a
    /// `Dedicated` placement, which may block); otherwise as for [`emit`](Self::emit).
    ///
    /// # Examples
    ///
    /// ```
    /// use ventus::{Actors, Emitter, Linker, Outcome, Runtime};
    ///
    /// struct Order(u32);
    /// struct Shipped(u32);
    /// let runtime = Runtime::builder().workers(2).build().unwrap();
    /// let linker = Linker::new();
    /// let emitter = Emitter::new(&linker, Actors::new(&runtime));
    /// let shipped = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    /// let (inner, total) = (emitter.clone(), shipped.clone());
    /// let order = linker
    ///     .on::<Order>()
    ///     .call(move |order: &Order| {
    ///         let _ = inner.emit(Shipped(order.0)); // chained: waited for too
    ///     })
    ///     .unwrap();
    /// let _ship = linker
    ///     .on::<Shipped>()
    ///     .call(move |s: &Shipped| {
    ///         total.fetch_add(s.0, std::sync::atomic::Ordering::Relaxed);
    ///     })
    ///     .unwrap();
    /// let completed = emitter.emit_and_wait(Order(7)).unwrap();
    /// assert_eq!(completed.outcome(order.id()), Some(&Outcome::Succeeded));
    /// assert_eq!(shipped.load(std::sync::atomic::Ordering::Relaxed), 7);
    /// ```
    pub fn emit_and_wait<T: Send + Sync + 'static>(
        &self,
        event: T,
    ) -> Result<Completed, EmitError<T>> {
        self.dispatch_and_wait(Some(event), EmitKey::Type(TypeKey::of::<T>()))
    }

    /// [`emit_and_wait`](Self::emit_and_wait) for a named event.
    ///
    /// # Errors
    ///
    /// [`EmitError::EmptyName`] for an empty name, and as for
    /// [`emit_and_wait`](Self::emit_and_wait).
    pub fn emit_named_and_wait<T: Send + Sync + 'static>(
        &self,
        name: &str,
        payload: T,
    ) -> Result<Completed, EmitError<T>> {
        if name.is_empty() {
            return Err(EmitError::EmptyName(payload));
        }
        self.dispatch_and_wait(Some(payload), EmitKey::Named(name, None))
    }

    fn dispatch_and_wait<T: Send + Sync + 'static>(
        &self,
        mut slot: Option<T>,
        key: EmitKey<'_>,
    ) -> Result<Completed, EmitError<T>> {
        if crate::actor::on_pool_worker() {
            if let Some(event) = slot.take() {
                return Err(EmitError::WouldDeadlock(event));
            }
        }
        let group = Group::new();
        let scope = ChainScope::enter(group.clone());
        let result = self.dispatch_inner(slot, key, false, true, None);
        drop(scope);
        group.wait();
        let mut outcomes = group.take_outcomes();
        let delivery = result?;
        outcomes.extend(
            delivery
                .refused
                .iter()
                .map(|(id, refusal)| (*id, Outcome::Refused(*refusal))),
        );
        outcomes.sort_by_key(|(id, _)| *id);
        Ok(Completed { delivery, outcomes })
    }

    fn dispatch<T: Send + Sync + 'static>(
        &self,
        slot: Option<T>,
        key: EmitKey<'_>,
        no_wait: bool,
    ) -> Result<Delivery, EmitError<T>> {
        self.dispatch_inner(slot, key, no_wait, false, None)
    }

    /// Sends `request` to `subscription` alone and waits at most `timeout` for its reply:
    /// request/reply with one actor. `make` builds the request around a [`Reply`]; the
    /// handler answers with [`Reply::send`].
    ///
    /// # Errors
    ///
    /// [`AskError::NotLinked`] (with the request) when the subscription is not linked to
    /// the request's type or is gone; [`AskError::Emit`] when it refused the request (full
    /// mailbox, shutdown); [`AskError::WouldDeadlock`] on a pool worker (waiting there could
    /// hold the worker the reply needs); [`AskError::Timeout`]; [`AskError::NoReply`] when
    /// the request was dropped without a reply (the handler did not answer, failed,
    /// panicked, or the request was discarded).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ventus::{Actors, Emitter, Linker, Reply, Runtime};
    ///
    /// struct Price { symbol: &'static str, reply: Reply<u64> }
    /// let runtime = Runtime::builder().workers(1).build().unwrap();
    /// let linker = Linker::new();
    /// let quotes = linker
    ///     .on::<Price>()
    ///     .call(|ask: &Price| {
    ///         ask.reply.send(if ask.symbol == "ACME" { 42 } else { 0 });
    ///     })
    ///     .unwrap();
    /// let emitter = Emitter::new(&linker, Actors::new(&runtime));
    /// let price = emitter
    ///     .ask(&quotes, |reply| Price { symbol: "ACME", reply }, Duration::from_secs(5))
    ///     .unwrap();
    /// assert_eq!(price, 42);
    /// ```
    pub fn ask<Q: Send + Sync + 'static, R: Send + 'static>(
        &self,
        subscription: &Subscription,
        make: impl FnOnce(Reply<R>) -> Q,
        timeout: std::time::Duration,
    ) -> Result<R, AskError<Q>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let request = make(Reply { tx });
        if crate::actor::on_pool_worker() {
            return Err(AskError::WouldDeadlock(request));
        }
        let mut slot = Some(request);
        let delivery = self
            .dispatch_slot(
                &mut slot,
                EmitKey::Type(TypeKey::of::<Q>()),
                false,
                false,
                Some(subscription.id()),
            )
            .map_err(AskError::Emit)?;
        if delivery.delivered == 0 && delivery.refused.is_empty() {
            if let Some(request) = slot.take() {
                return Err(AskError::NotLinked(request));
            }
        }
        self.drop_untaken(slot);
        if delivery.delivered == 0 {
            // Refused, and the request is shared no more: nothing will reply.
            return Err(AskError::NoReply);
        }
        match rx.recv_timeout(timeout) {
            Ok(reply) => Ok(reply),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(AskError::Timeout),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(AskError::NoReply),
        }
    }

    fn dispatch_inner<T: Send + Sync + 'static>(
        &self,
        slot: Option<T>,
        key: EmitKey<'_>,
        no_wait: bool,
        direct: bool,
        target: Option<SubscriptionId>,
    ) -> Result<Delivery, EmitError<T>> {
        let mut slot = slot;
        let result = self.dispatch_slot(&mut slot, key, no_wait, direct, target);
        self.drop_untaken(slot);
        result
    }

    /// Drops an event nobody took; its Drop must not unwind into the caller of `emit`.
    fn drop_untaken<T>(&self, slot: Option<T>) {
        if slot.is_some() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(slot))) {
                self.linker
                    .inner
                    .hooks
                    .error(ErrorReport::PayloadDropPanicked {
                        subscription: None,
                        message: crate::subscription::caught_message(panic),
                    });
            }
        }
    }

    /// Dispatches the event in `slot`; an event nobody took stays there.
    fn dispatch_slot<T: Send + Sync + 'static>(
        &self,
        slot: &mut Option<T>,
        key: EmitKey<'_>,
        no_wait: bool,
        direct: bool,
        target: Option<SubscriptionId>,
    ) -> Result<Delivery, EmitError<T>> {
        let debug = self.linker.inner.hooks.debug_enabled(self.debug);
        let mut carrier = Carrier::new(slot, key);
        carrier.direct = direct;
        let mut emission = Emission {
            linker: &self.linker,
            carrier,
            no_wait,
            debug,
            target,
        };
        let result = self.strategy.dispatch(&mut emission);
        drop(emission);
        let slot = &mut *slot;
        match result {
            Ok(delivery) => Ok(delivery),
            Err(error) => match slot.take() {
                Some(event) => Err(match error {
                    DispatchError::Full => EmitError::Full(event),
                    DispatchError::Shutdown => EmitError::Shutdown(event),
                    DispatchError::TooDeep => EmitError::TooDeep(event),
                    DispatchError::WouldDeadlock => EmitError::WouldDeadlock(event),
                }),
                None => {
                    self.linker
                        .inner
                        .hooks
                        .error(ErrorReport::StrategyBrokeContract {
                            strategy: format!("{:?}", self.strategy),
                            error,
                        });
                    Ok(Delivery::default())
                }
            },
        }
    }
}
