//! Transactional event buses: collect side effects during a unit of work, then apply them
//! all at once with a commit flag (the seed's `shared.event_bus` package).
//!
//! | bus | its events | `apply(commit)` returns |
//! |---|---|---|
//! | [`BasicEventBus`] | [`Committable`] functions `FnOnce(bool)` | [`Report`] |
//! | [`CustomEventBus`] | any `T`, applied by your [`ApplyEvent`] | [`Applied<T>`]: the events and a report |
//! | [`SharedContextBus`] | [`SideEffect`]s sharing one [`SharedContext`] | [`ContextReport`] |
//! | [`EmitOnCommitBus`] | any `T`, emitted through an [`Emitter`](crate::Emitter) | [`Emitted<T>`] |
//! | [`DelayedEventBus`] | the inner bus's | nothing ran: an empty outcome |
//! | [`MultiEventBus`] | other buses ([`AnyBus`]) | [`MultiReport`]: one report per bus |
//!
//! Where applying only borrows the events, `apply` gives them back; where it consumes them
//! (a `FnOnce`, an event moved into `emit`), it returns a count and the failures.
//! [`EventBusOrchestrator`] is the write-only view of a multi-bus, and
//! [`use_orchestrator_or_create`] the "join the caller's unit of work, or run my own"
//! pattern.
//!
//! # One rule for failures, panics and drops
//!
//! For every bus kind:
//!
//! - **`apply` runs every side effect, in publication order, exactly once, even after one
//!   fails or panics.** An `Err` or a panic (caught) is recorded, with the side effect's
//!   position, in what `apply` returns ([`Report::failures`]); `apply` itself never
//!   panics, never stops early, and always leaves the bus empty (nothing is retried).
//!   The only exception is structural: a [`SharedContextBus`] whose context cannot be
//!   opened runs none of them and reports each as [`SideEffectError::NoContext`]; and it
//!   tells its context to commit only if every side effect succeeded.
//! - **A bus dropped with side effects it never applied reports them, never silently.** An
//!   [`EmitOnCommitBus`] reports each unemitted event as a dead letter of its emitter's
//!   linker ([`DeadLetterReason::BusDroppedUnapplied`](crate::DeadLetterReason), with the
//!   payload, counted in [`Linker::dead_letter_counts`](crate::Linker::dead_letter_counts)).
//!   Every other bus calls its [`UnappliedHook`] once with the count, whose default prints
//!   one line on stderr (set your own with `on_unapplied`). Deferred calls
//!   ([`EventBus::collect`]) dropped without running are reported the same way, so a
//!   [`DelayedEventBus`] or a [`MultiEventBus`] dropped unapplied reports through the buses
//!   it holds. [`Deferred::into_event`] is the one explicit, silent way out.
//!
//! Under `panic = "abort"` panics cannot be caught and none of this holds for them.
//!
//! # In memory
//!
//! Every bus lives in the process. [`EmitOnCommitBus`] in particular is an in-memory
//! outbox: a crash between the commit of your store and the emit loses its events. Durable
//! hand-off will go through ventus's planned Redis bridge.
//!
//! # Examples
//!
//! A unit of work with an audit log and an email, committed or rolled back together:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use ventus::bus::{BasicEventBus, CustomEventBus, EventBus, MultiEventBus};
//!
//! let audit_log = Arc::new(Mutex::new(Vec::new()));
//! let log = audit_log.clone();
//!
//! let mut unit = MultiEventBus::new();
//! let audit = unit.wrap(CustomEventBus::new(move |line: &String, commit: bool| {
//!     if commit {
//!         log.lock().unwrap().push(line.clone());
//!     }
//! }));
//! let emails = unit.wrap(BasicEventBus::new());
//!
//! audit.publish("order 7 placed".to_owned());
//! emails.publish_fn(|commit| if commit { println!("email sent") });
//!
//! let report = unit.apply(true);
//! assert!(report.is_ok());
//! assert_eq!(*audit_log.lock().unwrap(), ["order 7 placed"]);
//! ```
//!
//! See `src/bus/README.md` for the design notes.

mod basic;
mod custom;
mod deferred;
mod delayed;
mod emit_on_commit;
mod multi;
mod outcome;
mod shared_context;

pub use basic::{BasicEventBus, Committable};
pub use custom::{ApplyEvent, CustomEventBus};
pub use deferred::{Deferred, Unapplied, UnappliedHook};
pub use delayed::DelayedEventBus;
pub use emit_on_commit::{EmitOnCommitBus, EmitOutcome, Emitted};
pub use multi::{
    AnyBus, BusReport, CommitStep, EventBusOrchestrator, MultiEventBus, MultiReport, Wrapped,
    use_orchestrator_or_create,
};
pub use outcome::{Applied, ApplyOutcome, Report, SideEffectError, SideEffectFailure};
pub use shared_context::{ContextEnd, ContextReport, SharedContext, SharedContextBus, SideEffect};

/// A bus: collect events (side effects to perform) over a unit of work with
/// [`publish`](Self::publish), then perform them all at once with
/// [`apply`](Self::apply)`(commit)`.
///
/// Buses are `Send` and used through `&mut self`; a [`Wrapped`] handle from a
/// [`MultiEventBus`] is the thread-shared form. The module docs state the rule every bus
/// follows for failures, panics and drops.
///
/// A bus has one event type, an associated type (so that [`DelayedEventBus<B>`] can name
/// it): write `impl EventBus<Event = Order>` where DESIGN.md wrote `EventBus<Order>`.
///
/// # Examples
///
/// Code written against the trait works with any bus, including one whose `apply` is
/// delayed until a larger unit of work commits:
///
/// ```
/// use ventus::bus::{CustomEventBus, EventBus, MultiEventBus};
///
/// fn record_payment(bus: &mut impl EventBus<Event = u64>, cents: u64) -> usize {
///     bus.publish(cents);
///     bus.apply(true).into_report().ran
/// }
///
/// // On its own, the payment's side effect runs at once.
/// let mut direct = CustomEventBus::new(|cents: &u64, _commit: bool| println!("paid {cents}"));
/// assert_eq!(record_payment(&mut direct, 250), 1);
///
/// // Wrapped in a unit of work, it waits for the unit's apply.
/// use ventus::bus::ApplyOutcome;
/// let mut unit = MultiEventBus::new();
/// let mut wrapped = unit.wrap(CustomEventBus::new(|cents: &u64, _commit: bool| println!("paid {cents}")));
/// assert_eq!(record_payment(&mut wrapped, 250), 0);
/// assert_eq!(unit.apply(true).ran(), 1);
/// ```
pub trait EventBus: Send {
    /// What is published: a side effect, or the data a side effect is made from.
    type Event: Send + 'static;

    /// What [`apply`](Self::apply) returns.
    type Applied: ApplyOutcome;

    /// Adds one event, after those published before.
    fn publish(&mut self, event: Self::Event);

    /// Adds events, in order.
    fn publish_all<I>(&mut self, events: I)
    where
        I: IntoIterator<Item = Self::Event>,
        Self: Sized,
    {
        for event in events {
            self.publish(event);
        }
    }

    /// Applies every event published so far, in publication order, with `commit`; clears
    /// the bus; returns what was applied (see the table in the module docs).
    ///
    /// Some buses apply later, not now ([`DelayedEventBus`], a [`Wrapped`] handle): do not
    /// assume that the side effects ran when this returns.
    fn apply(&mut self, commit: bool) -> Self::Applied;

    /// Takes every event out as a [`Deferred`] call, to apply later with
    /// [`Deferred::run`]; clears the bus. Prefer [`apply`](Self::apply): this is the
    /// building block of [`DelayedEventBus`].
    fn collect(&mut self) -> Vec<Deferred<Self::Event, Self::Applied>>;

    /// How many events are waiting.
    fn len(&self) -> usize;

    /// Whether no event is waiting.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
