//! `CustomEventBus`: the base for buses where you write only how one event is applied (the
//! seed's `AbstractEventBus` and its `_apply_event`).

use std::fmt;

use super::EventBus;
use super::deferred::{Deferred, Unapplied, UnappliedHook};
use super::outcome::{Applied, Report, guarded};
use crate::error::BoxError;
use crate::handler::HandlerResult;
use crate::sync::Arc;

/// How one event of a [`CustomEventBus`] is applied: the only thing a custom bus writes.
///
/// It borrows the event (the bus gives the events back from `apply`) and takes `&self`:
/// deferred calls share the applier with the bus, so state it changes lives behind its
/// own handle or lock. Closures `Fn(&T, bool) -> R` implement it, `R` being `()` or
/// `Result<V, E>`.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use ventus::bus::{ApplyEvent, CustomEventBus, EventBus};
/// use ventus::BoxError;
///
/// #[derive(Default)]
/// struct Ledger(Mutex<Vec<i64>>);
///
/// impl ApplyEvent<i64> for Ledger {
///     fn apply_event(&self, amount: &i64, commit: bool) -> Result<(), BoxError> {
///         if commit {
///             self.0.lock().unwrap().push(*amount);
///         }
///         Ok(())
///     }
/// }
///
/// let mut bus = CustomEventBus::new(Ledger::default());
/// bus.publish_all([10, -3]);
/// assert_eq!(bus.apply(true).events, [10, -3]);
/// assert_eq!(*bus.applier().0.lock().unwrap(), [10, -3]);
/// ```
pub trait ApplyEvent<T>: Send + Sync + 'static {
    /// Applies one event with the commit flag.
    ///
    /// # Errors
    ///
    /// Any error: it is recorded in the apply's [`Report`] and the next events still run.
    fn apply_event(&self, event: &T, commit: bool) -> Result<(), BoxError>;
}

impl<T, F, R> ApplyEvent<T> for F
where
    F: Fn(&T, bool) -> R + Send + Sync + 'static,
    R: HandlerResult,
{
    fn apply_event(&self, event: &T, commit: bool) -> Result<(), BoxError> {
        self(event, commit).into_result().map(|_value| ())
    }
}

/// A bus that stores its events and applies each with an [`ApplyEvent`]: a custom bus in
/// one function.
///
/// `apply(commit)` applies every event in publication order, even after one failed or
/// panicked, and returns them with the [`Report`] ([`Applied`]).
///
/// # Examples
///
/// ```
/// use ventus::bus::{CustomEventBus, EventBus};
///
/// let mut bus = CustomEventBus::new(|line: &String, commit: bool| {
///     if commit {
///         println!("{line}");
///     }
/// });
/// bus.publish("hello".to_owned());
/// let applied = bus.apply(true);
/// assert_eq!(applied.events, ["hello"]);
/// assert!(applied.report.is_ok());
/// ```
pub struct CustomEventBus<T, A> {
    events: Vec<T>,
    applier: Arc<A>,
    hook: UnappliedHook,
}

impl<T, A> CustomEventBus<T, A>
where
    T: Send + 'static,
    A: ApplyEvent<T>,
{
    /// An empty bus applying its events with `applier`.
    pub fn new(applier: A) -> Self {
        Self {
            events: Vec::new(),
            applier: Arc::new(applier),
            hook: UnappliedHook::default(),
        }
    }

    /// The same bus, reporting events dropped unapplied to `hook` instead of stderr.
    pub fn on_unapplied(mut self, hook: impl Fn(&Unapplied) + Send + Sync + 'static) -> Self {
        self.hook = UnappliedHook::new(hook);
        self
    }

    /// The applier.
    pub fn applier(&self) -> &A {
        &self.applier
    }

    /// The events published so far, in order.
    pub fn events(&self) -> &[T] {
        &self.events
    }
}

impl<T, A> EventBus for CustomEventBus<T, A>
where
    T: Send + 'static,
    A: ApplyEvent<T>,
{
    type Event = T;
    type Applied = Applied<T>;

    fn publish(&mut self, event: T) {
        self.events.push(event);
    }

    fn apply(&mut self, commit: bool) -> Applied<T> {
        let events = std::mem::take(&mut self.events);
        let mut report = Report::default();
        for event in &events {
            report.record(guarded(|| self.applier.apply_event(event, commit)));
        }
        Applied { events, report }
    }

    fn collect(&mut self) -> Vec<Deferred<T, Applied<T>>> {
        let applier = self.applier.clone();
        Deferred::batch(
            "CustomEventBus",
            std::mem::take(&mut self.events),
            move |event: T, commit| {
                let mut report = Report::default();
                report.record(guarded(|| applier.apply_event(&event, commit)));
                Applied {
                    events: vec![event],
                    report,
                }
            },
            self.hook.clone(),
        )
    }

    fn len(&self) -> usize {
        self.events.len()
    }
}

impl<T, A> Drop for CustomEventBus<T, A> {
    fn drop(&mut self) {
        self.hook.report_count("CustomEventBus", self.events.len());
    }
}

impl<T, A> fmt::Debug for CustomEventBus<T, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomEventBus")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}
