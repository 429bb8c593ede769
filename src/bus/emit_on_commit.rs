//! `EmitOnCommitBus`: events published during a unit of work are emitted through a ventus
//! [`Emitter`] only when it commits (an in-memory outbox).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::EventBus;
use super::deferred::Deferred;
use super::outcome::{ApplyOutcome, Report, SideEffectError};
use crate::emitter::{Delivery, Emitter};
use crate::error::EmitError;
use crate::event::{DynPayload, EventKey};
use crate::hooks::{DeadLetter, DeadLetterReason, DeadPayload, Hooks, panic_message};
use crate::sync::Arc;

/// What happened to one event of an [`EmitOnCommitBus`].
#[non_exhaustive]
pub enum EmitOutcome<T> {
    /// Emitted on commit. Subscriptions that refused it are in `Delivery::refused` (a
    /// partial delivery).
    Emitted(Delivery),
    /// Emitted on commit, and no subscription took it: the error holds the event.
    NotEmitted(EmitError<T>),
    /// The emitter's strategy panicked (caught); the event is lost.
    Panicked(String),
    /// Not emitted: the unit of work rolled back (`apply(false)`). The event, given back.
    RolledBack(T),
}

impl<T> fmt::Debug for EmitOutcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitOutcome::Emitted(delivery) => f.debug_tuple("Emitted").field(delivery).finish(),
            EmitOutcome::NotEmitted(error) => f.debug_tuple("NotEmitted").field(error).finish(),
            EmitOutcome::Panicked(message) => f.debug_tuple("Panicked").field(message).finish(),
            EmitOutcome::RolledBack(_) => f.debug_tuple("RolledBack").field(&"..").finish(),
        }
    }
}

/// What an [`EmitOnCommitBus`] returns from `apply`: one [`EmitOutcome`] per event, in
/// publication order.
#[must_use = "refused emissions are reported here"]
pub struct Emitted<T> {
    /// One outcome per event, in publication order.
    pub outcomes: Vec<EmitOutcome<T>>,
}

impl<T> Emitted<T> {
    /// How many subscriptions took the events, over all emissions.
    pub fn delivered(&self) -> usize {
        self.outcomes
            .iter()
            .map(|outcome| match outcome {
                EmitOutcome::Emitted(delivery) => delivery.delivered,
                _ => 0,
            })
            .sum()
    }

    /// Whether every event was emitted and no subscription refused one.
    pub fn is_complete(&self) -> bool {
        self.outcomes.iter().all(
            |outcome| matches!(outcome, EmitOutcome::Emitted(delivery) if delivery.is_complete()),
        )
    }

    /// The events given back, in publication order: every rolled-back event, and every
    /// event that no subscription took.
    pub fn into_events(self) -> Vec<T> {
        self.outcomes
            .into_iter()
            .filter_map(|outcome| match outcome {
                EmitOutcome::RolledBack(event) => Some(event),
                EmitOutcome::NotEmitted(error) => Some(error.into_inner()),
                _ => None,
            })
            .collect()
    }
}

impl<T> Default for Emitted<T> {
    fn default() -> Self {
        Self {
            outcomes: Vec::new(),
        }
    }
}

impl<T> fmt::Debug for Emitted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitted")
            .field("outcomes", &self.outcomes)
            .finish()
    }
}

impl<T: Send + Sync + 'static> ApplyOutcome for Emitted<T> {
    fn merge(&mut self, later: Self) {
        self.outcomes.extend(later.outcomes);
    }

    /// `ran` counts the emissions made (rolled-back events are not); a refusal, an
    /// emission nobody took (the boxed [`EmitError`], with the event) and a panic are
    /// failures.
    fn into_report(self) -> Report {
        let mut report = Report::default();
        for outcome in self.outcomes {
            match outcome {
                EmitOutcome::Emitted(delivery) if delivery.is_complete() => report.record(Ok(())),
                EmitOutcome::Emitted(delivery) => {
                    report.record(Err(SideEffectError::Refused(delivery.refused)))
                }
                EmitOutcome::NotEmitted(error) => {
                    report.record(Err(SideEffectError::Failed(Box::new(error))))
                }
                EmitOutcome::Panicked(message) => {
                    report.record(Err(SideEffectError::Panicked(message)))
                }
                EmitOutcome::RolledBack(_) => {}
            }
        }
        report
    }
}

/// A transactional outbox in memory: events published during a unit of work are emitted
/// through an [`Emitter`], in publication order, only on `apply(true)`.
///
/// - `apply(true)` emits every event with [`Emitter::emit`], in order, even after one was
///   refused, and returns each [`EmitOutcome`] ([`Emitted`]): a partial refusal is in its
///   [`Delivery`], an emission no subscription took gives the event back in its
///   [`EmitError`]. Handler failures stay with the subscriptions' failure callbacks, as
///   for any emit.
/// - `apply(false)` emits nothing and gives the events back
///   ([`EmitOutcome::RolledBack`], [`Emitted::into_events`]).
/// - Dropped with events not applied (or a collected call dropped unrun), it reports each
///   event to its emitter's linker as a dead letter,
///   [`DeadLetterReason::BusDroppedUnapplied`], with the payload.
///
/// **In memory only.** The events live in this process until `apply(true)`: a crash
/// between the commit of your store and the emit loses them. Durable hand-off (the
/// transactional outbox proper) will go through ventus's planned Redis bridge.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ventus::bus::{EmitOnCommitBus, EventBus};
/// use ventus::{Emitter, Linker};
///
/// #[derive(Debug, PartialEq)]
/// struct OrderPlaced(u32);
///
/// let linker = Linker::new();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let _sub = linker
///     .on::<OrderPlaced>()
///     .call(move |order: &OrderPlaced| log.lock().unwrap().push(order.0))
///     .unwrap();
///
/// let mut outbox = EmitOnCommitBus::new(&Emitter::inline(&linker));
/// outbox.publish(OrderPlaced(1));
/// let rolled_back = outbox.apply(false);
/// assert_eq!(rolled_back.into_events(), [OrderPlaced(1)]);
/// assert!(seen.lock().unwrap().is_empty());
///
/// outbox.publish(OrderPlaced(2));
/// let emitted = outbox.apply(true);
/// assert!(emitted.is_complete());
/// assert_eq!(*seen.lock().unwrap(), [2]);
/// ```
pub struct EmitOnCommitBus<T: Send + Sync + 'static> {
    emitter: Emitter,
    events: Vec<T>,
}

impl<T: Send + Sync + 'static> EmitOnCommitBus<T> {
    /// An empty bus emitting through `emitter` (a clone of the handle is kept).
    pub fn new(emitter: &Emitter) -> Self {
        Self {
            emitter: emitter.clone(),
            events: Vec::new(),
        }
    }

    /// The emitter.
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// The events published so far, in order.
    pub fn events(&self) -> &[T] {
        &self.events
    }
}

fn outcome<T: Send + Sync + 'static>(emitter: &Emitter, event: T, commit: bool) -> EmitOutcome<T> {
    if !commit {
        return EmitOutcome::RolledBack(event);
    }
    match catch_unwind(AssertUnwindSafe(move || emitter.emit(event))) {
        Ok(Ok(delivery)) => EmitOutcome::Emitted(delivery),
        Ok(Err(error)) => EmitOutcome::NotEmitted(error),
        Err(panic) => EmitOutcome::Panicked(panic_message(&*panic)),
    }
}

fn dead_letter<T: Send + Sync + 'static>(hooks: &Hooks, event: T) {
    let reason = DeadLetterReason::BusDroppedUnapplied;
    hooks.dead_letter(
        move || DeadLetter {
            key: EventKey::of::<T>(),
            subscription: None,
            reason,
            payload: Some(DeadPayload(DynPayload::Boxed(Box::new(event)))),
        },
        reason,
    );
}

impl<T: Send + Sync + 'static> EventBus for EmitOnCommitBus<T> {
    type Event = T;
    type Applied = Emitted<T>;

    fn publish(&mut self, event: T) {
        self.events.push(event);
    }

    fn apply(&mut self, commit: bool) -> Emitted<T> {
        let events = std::mem::take(&mut self.events);
        Emitted {
            outcomes: events
                .into_iter()
                .map(|event| outcome(&self.emitter, event, commit))
                .collect(),
        }
    }

    fn collect(&mut self) -> Vec<Deferred<T, Emitted<T>>> {
        let emitter = self.emitter.clone();
        let hooks: Arc<Hooks> = self.emitter.linker().inner.hooks.clone();
        Deferred::batch_with(
            "EmitOnCommitBus",
            std::mem::take(&mut self.events),
            move |event, commit| Emitted {
                outcomes: vec![outcome(&emitter, event, commit)],
            },
            move |event| dead_letter(&hooks, event),
            None,
        )
    }

    fn len(&self) -> usize {
        self.events.len()
    }
}

impl<T: Send + Sync + 'static> Drop for EmitOnCommitBus<T> {
    fn drop(&mut self) {
        let hooks = &self.emitter.linker().inner.hooks;
        for event in std::mem::take(&mut self.events) {
            dead_letter(hooks, event);
        }
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for EmitOnCommitBus<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitOnCommitBus")
            .field("emitter", &self.emitter)
            .field("events", &self.events.len())
            .finish()
    }
}
