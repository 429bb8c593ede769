//! `MultiEventBus` (several buses applied as one unit of work), its write-only view
//! `EventBusOrchestrator`, the shared handles it hands out, and the seed's
//! `use_orchestrator_or_create_multi_event_bus`.

use std::any::{Any, type_name};
use std::fmt;

use super::EventBus;
use super::basic::{BasicEventBus, Committable};
use super::deferred::Deferred;
use super::delayed::{DelayedEventBus, run_all};
use super::outcome::{ApplyOutcome, Report, SideEffectFailure};
use crate::handler::HandlerResult;
use crate::sync::{Arc, Mutex};

/// The buses registered in one multi-bus, in wrap order.
type Registry = Mutex<Vec<AnyBus>>;

/// A wrapped bus as a multi-bus sees it, whatever its event type.
trait ErasedBus: Send + Sync {
    /// Takes every call not run yet out of the bus (under its lock, released on return).
    fn take(&self) -> Box<dyn TakenCalls>;
    fn len(&self) -> usize;
    fn name(&self) -> &'static str;
}

impl<B: EventBus + 'static> ErasedBus for Mutex<DelayedEventBus<B>> {
    fn take(&self) -> Box<dyn TakenCalls> {
        let calls = self.lock().collect();
        Box::new(Taken::<B> { calls })
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn name(&self) -> &'static str {
        type_name::<B>()
    }
}

/// Calls taken out of a wrapped bus, to run without holding its lock.
struct Taken<B: EventBus> {
    calls: Vec<Deferred<B::Event, B::Applied>>,
}

trait TakenCalls: Send {
    fn run(self: Box<Self>, commit: bool) -> Box<dyn AnyApplied>;
}

impl<B: EventBus + 'static> TakenCalls for Taken<B> {
    fn run(self: Box<Self>, commit: bool) -> Box<dyn AnyApplied> {
        Box::new(run_all(self.calls, commit))
    }
}

/// A bus's outcome, whatever its type.
trait AnyApplied: Send {
    fn into_report(self: Box<Self>) -> Report;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<A: ApplyOutcome> AnyApplied for A {
    fn into_report(self: Box<Self>) -> Report {
        (*self).into_report()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A bus registered in a [`MultiEventBus`], whatever its event type: the multi-bus's own
/// event type. [`MultiEventBus::wrap`] makes one for you; publishing an `AnyBus` registers
/// an existing [`Wrapped`] handle (`AnyBus::from(handle)`) in one more multi-bus.
#[derive(Clone)]
pub struct AnyBus {
    bus: Arc<dyn ErasedBus>,
}

impl AnyBus {
    /// How many side effects it holds, not run yet.
    pub fn len(&self) -> usize {
        self.bus.len()
    }

    /// Whether it holds no side effect.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wrapped bus's type name.
    pub fn bus(&self) -> &'static str {
        self.bus.name()
    }

    fn apply_now(&self, commit: bool) -> Box<dyn AnyApplied> {
        self.bus.take().run(commit)
    }
}

impl fmt::Debug for AnyBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyBus").field(&self.bus()).finish()
    }
}

impl<B: EventBus + 'static> From<Wrapped<B>> for AnyBus {
    fn from(handle: Wrapped<B>) -> Self {
        AnyBus { bus: handle.bus }
    }
}

/// A shared handle to a bus registered in a [`MultiEventBus`]: publish to it from any
/// thread; its `apply` is delayed (it runs nothing, see [`DelayedEventBus`]); only the
/// multi-bus runs its side effects.
///
/// Clones share the bus. `publish` and `apply` run the inner bus's own bookkeeping
/// (`publish`, `collect`) under the handle's lock; side effects never run under it.
///
/// Dropping the last handle (and the multi-bus's registration) with side effects not run
/// reports them as the inner bus does.
pub struct Wrapped<B: EventBus> {
    bus: Arc<Mutex<DelayedEventBus<B>>>,
}

impl<B: EventBus> Clone for Wrapped<B> {
    fn clone(&self) -> Self {
        Self {
            bus: self.bus.clone(),
        }
    }
}

impl<B: EventBus + 'static> Wrapped<B> {
    /// Publishes one event (through `&self`: the handle is shared).
    pub fn publish(&self, event: B::Event) {
        self.bus.lock().publish(event);
    }

    /// Publishes events in order.
    pub fn publish_all(&self, events: impl IntoIterator<Item = B::Event>) {
        let mut bus = self.bus.lock();
        for event in events {
            bus.publish(event);
        }
    }

    /// How many side effects it holds, not run yet.
    pub fn len(&self) -> usize {
        self.bus.lock().len()
    }

    /// Whether it holds no side effect.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Wrapped<MultiEventBus> {
    /// The orchestrator of a wrapped multi-bus, to register buses in it (nesting).
    pub fn orchestrator(&self) -> EventBusOrchestrator {
        self.bus.lock().inner().orchestrator()
    }
}

impl<B: EventBus + 'static> EventBus for Wrapped<B> {
    type Event = B::Event;
    type Applied = B::Applied;

    fn publish(&mut self, event: B::Event) {
        Wrapped::publish(self, event);
    }

    /// Runs nothing (see [`DelayedEventBus`]): the multi-bus runs them.
    fn apply(&mut self, commit: bool) -> B::Applied {
        self.bus.lock().apply(commit)
    }

    /// Takes the side effects out of the unit of work: the multi-bus will not run them.
    fn collect(&mut self) -> Vec<Deferred<B::Event, B::Applied>> {
        self.bus.lock().collect()
    }

    fn len(&self) -> usize {
        Wrapped::len(self)
    }
}

impl<B: EventBus> fmt::Debug for Wrapped<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Wrapped").field(&type_name::<B>()).finish()
    }
}

fn register<B: EventBus + 'static>(registry: &Registry, bus: B) -> Wrapped<B> {
    let handle = Wrapped {
        bus: Arc::new(Mutex::new(DelayedEventBus::new(bus))),
    };
    let any = AnyBus {
        bus: handle.bus.clone(),
    };
    registry.lock().push(any);
    handle
}

/// The write-only view of a [`MultiEventBus`]: it registers buses ([`wrap`](Self::wrap))
/// and cannot apply anything. Hand it to code that should add side effects to your unit of
/// work without being able to run the whole unit (the seed's `EventBusOrchestrator`).
///
/// Cheap to clone, `Send + Sync`. A bus wrapped after the multi-bus was dropped is never
/// applied: it is reported as unapplied when its last handle goes.
///
/// # Examples
///
/// ```
/// use ventus::bus::{BasicEventBus, EventBus, EventBusOrchestrator, MultiEventBus};
///
/// fn notify(orchestrator: &EventBusOrchestrator) {
///     let emails = orchestrator.wrap(BasicEventBus::new());
///     emails.publish_fn(|commit| println!("send the email: {commit}"));
/// }
///
/// let mut unit = MultiEventBus::new();
/// notify(&unit.orchestrator());
/// let report = unit.apply(true);
/// assert_eq!(report.ran(), 1);
/// ```
#[derive(Clone)]
pub struct EventBusOrchestrator {
    registry: Arc<Registry>,
}

impl EventBusOrchestrator {
    /// Registers `bus` in the multi-bus and returns the handle to publish to (the seed's
    /// `wrap`: a delayed bus).
    pub fn wrap<B: EventBus + 'static>(&self, bus: B) -> Wrapped<B> {
        register(&self.registry, bus)
    }
}

impl fmt::Debug for EventBusOrchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBusOrchestrator")
            .field("registered", &self.registry.lock().len())
            .finish()
    }
}

impl Wrapped<BasicEventBus> {
    /// Publishes a closure to a wrapped [`BasicEventBus`].
    pub fn publish_fn<F, R>(&self, side_effect: F)
    where
        F: FnOnce(bool) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.bus.lock().publish(Committable::new(side_effect));
    }
}

/// A bus of buses: one unit of work whose side effects live in several buses of any
/// kinds, applied together (the seed's `MultiEventBus`).
///
/// [`wrap`](Self::wrap) registers a bus and returns the [`Wrapped`] handle to publish to;
/// [`orchestrator`](Self::orchestrator) gives the write-only view to hand to other code.
/// `apply(commit)` applies every registered bus, in wrap order (each bus's side effects in
/// publication order), with `commit`, and returns one [`Report`] per bus
/// ([`MultiReport`]); [`apply_and_get_applied_events`](Self::apply_and_get_applied_events)
/// returns each bus's own outcome instead. Either empties the multi-bus; a bus wrapped
/// while it applies (from a side effect) waits for the next apply.
///
/// It is itself a bus (its events are [`AnyBus`]es), so it nests: wrap a `MultiEventBus`
/// in another orchestrator and register buses in it through
/// [`Wrapped::<MultiEventBus>::orchestrator`](Wrapped::orchestrator).
///
/// # Examples
///
/// ```
/// use ventus::bus::{BasicEventBus, CustomEventBus, EventBus, MultiEventBus};
///
/// let mut unit = MultiEventBus::new();
/// let audit = unit.wrap(CustomEventBus::new(|line: &String, _commit: bool| println!("{line}")));
/// let emails = unit.wrap(BasicEventBus::new());
/// audit.publish("order 7 placed".to_owned());
/// emails.publish_fn(|commit| assert!(commit));
///
/// let report = unit.apply(true);
/// assert!(report.is_ok());
/// assert_eq!(report.ran(), 2);
/// assert!(unit.is_empty());
/// ```
pub struct MultiEventBus {
    registry: Arc<Registry>,
}

impl Default for MultiEventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MultiEventBus {
    /// An empty multi-bus.
    pub fn new() -> Self {
        Self {
            registry: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Its write-only view (clones share the registry).
    pub fn orchestrator(&self) -> EventBusOrchestrator {
        EventBusOrchestrator {
            registry: self.registry.clone(),
        }
    }

    /// Registers `bus` and returns the handle to publish to.
    pub fn wrap<B: EventBus + 'static>(&self, bus: B) -> Wrapped<B> {
        register(&self.registry, bus)
    }

    /// How many side effects the registered buses hold, not run yet.
    pub fn side_effects(&self) -> usize {
        self.registry.lock().iter().map(AnyBus::len).sum()
    }

    /// Applies every registered bus as [`apply`](EventBus::apply) does, and returns each
    /// bus's own outcome (what its `apply` would have returned: for example
    /// [`Applied<T>`](super::Applied) with its events), in wrap order, to downcast.
    pub fn apply_and_get_applied_events(&mut self, commit: bool) -> Vec<Box<dyn Any + Send>> {
        let buses = std::mem::take(&mut *self.registry.lock());
        buses
            .into_iter()
            .map(|bus| bus.apply_now(commit).into_any())
            .collect()
    }
}

impl EventBus for MultiEventBus {
    type Event = AnyBus;
    type Applied = MultiReport;

    fn publish(&mut self, bus: AnyBus) {
        self.registry.lock().push(bus);
    }

    fn apply(&mut self, commit: bool) -> MultiReport {
        let buses = std::mem::take(&mut *self.registry.lock());
        MultiReport {
            buses: buses
                .into_iter()
                .map(|bus| BusReport {
                    bus: bus.bus(),
                    report: bus.apply_now(commit).into_report(),
                })
                .collect(),
        }
    }

    fn collect(&mut self) -> Vec<Deferred<AnyBus, MultiReport>> {
        let buses = std::mem::take(&mut *self.registry.lock());
        // A bus dropped unrun reports its own side effects when its last handle goes.
        Deferred::batch_with(
            "MultiEventBus",
            buses,
            |bus: AnyBus, commit| MultiReport {
                buses: vec![BusReport {
                    bus: bus.bus(),
                    report: bus.apply_now(commit).into_report(),
                }],
            },
            drop,
            None,
        )
    }

    /// How many buses are registered.
    fn len(&self) -> usize {
        self.registry.lock().len()
    }
}

impl fmt::Debug for MultiEventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiEventBus")
            .field("registered", &self.registry.lock().len())
            .finish()
    }
}

/// What [`MultiEventBus::apply`](EventBus::apply) returns: one [`Report`] per bus, in wrap
/// order.
#[derive(Debug, Default)]
#[must_use = "failed side effects are reported here"]
pub struct MultiReport {
    /// The buses, in wrap order.
    pub buses: Vec<BusReport>,
}

/// The report of one bus of a [`MultiEventBus`].
#[derive(Debug)]
pub struct BusReport {
    /// The bus's type name.
    pub bus: &'static str,
    /// Its side effects.
    pub report: Report,
}

impl MultiReport {
    /// Whether every side effect of every bus succeeded.
    pub fn is_ok(&self) -> bool {
        self.buses.iter().all(|bus| bus.report.is_ok())
    }

    /// How many side effects ran, over all buses.
    pub fn ran(&self) -> usize {
        self.buses.iter().map(|bus| bus.report.ran).sum()
    }

    /// Every failure, with the type name of its bus.
    pub fn failures(&self) -> impl Iterator<Item = (&'static str, &SideEffectFailure)> + '_ {
        self.buses
            .iter()
            .flat_map(|bus| bus.report.failures.iter().map(move |f| (bus.bus, f)))
    }
}

impl ApplyOutcome for MultiReport {
    fn merge(&mut self, later: Self) {
        self.buses.extend(later.buses);
    }

    /// One report for all buses, failures indexed across them in apply order.
    fn into_report(self) -> Report {
        let mut report = Report::default();
        for bus in self.buses {
            report.merge(bus.report);
        }
        report
    }
}

/// What [`use_orchestrator_or_create`] hands its closure with the orchestrator: the step
/// that applies the unit of work, if the closure owns it.
#[derive(Debug)]
#[must_use = "dropping the commit step drops its side effects (reported as unapplied)"]
pub struct CommitStep {
    bus: Option<MultiEventBus>,
    commit: bool,
}

impl CommitStep {
    /// Whether this step applies the unit of work (no orchestrator was given, so a fresh
    /// multi-bus was made); `false` when the caller's orchestrator owns it.
    pub fn owns_unit(&self) -> bool {
        self.bus.is_some()
    }

    /// The seed's `commit_and_execute_side_effects()`: applies the fresh multi-bus with
    /// the commit flag given to [`use_orchestrator_or_create`] and returns its report; with
    /// the caller's orchestrator, does nothing and returns `None` (the caller applies).
    pub fn commit_and_execute(self) -> Option<MultiReport> {
        let commit = self.commit;
        self.bus.map(|mut bus| bus.apply(commit))
    }
}

/// Runs `work` with an orchestrator to register its buses in (the seed's
/// `use_orchestrator_or_create_multi_event_bus`).
///
/// - With `Some(orchestrator)`: the work registers into the caller's unit of work, and the
///   [`CommitStep`] does nothing (the caller applies it, with its own commit flag).
/// - With `None`: a fresh [`MultiEventBus`] is made; the work registers into it, and the
///   `CommitStep` applies it with `commit`.
///
/// Nothing is applied implicitly: work that returns without calling
/// [`CommitStep::commit_and_execute`] (an early return, a `?`) drops the fresh multi-bus,
/// and its side effects are reported as unapplied.
///
/// # Examples
///
/// ```
/// use ventus::bus::{BasicEventBus, EventBusOrchestrator, MultiEventBus, use_orchestrator_or_create};
///
/// fn place_order(orchestrator: Option<&EventBusOrchestrator>, commit: bool) -> usize {
///     use_orchestrator_or_create(orchestrator, commit, |orchestrator, step| {
///         let emails = orchestrator.wrap(BasicEventBus::new());
///         emails.publish_fn(|commit| println!("confirmation email, commit={commit}"));
///         step.commit_and_execute().map_or(0, |report| report.ran())
///     })
/// }
///
/// // Alone: the function applies its own side effects.
/// assert_eq!(place_order(None, true), 1);
///
/// // Inside a larger unit of work: the caller applies them.
/// let mut unit = MultiEventBus::new();
/// assert_eq!(place_order(Some(&unit.orchestrator()), true), 0);
/// assert_eq!(unit.side_effects(), 1);
/// # let _ = ventus::bus::EventBus::apply(&mut unit, true);
/// ```
pub fn use_orchestrator_or_create<R>(
    orchestrator: Option<&EventBusOrchestrator>,
    commit: bool,
    work: impl FnOnce(&EventBusOrchestrator, CommitStep) -> R,
) -> R {
    match orchestrator {
        Some(orchestrator) => work(orchestrator, CommitStep { bus: None, commit }),
        None => {
            let bus = MultiEventBus::new();
            let orchestrator = bus.orchestrator();
            work(
                &orchestrator,
                CommitStep {
                    bus: Some(bus),
                    commit,
                },
            )
        }
    }
}
