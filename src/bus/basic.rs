//! `BasicEventBus`: each event is a committable function (the seed's
//! `CommittableFunction`).

use std::fmt;

use super::EventBus;
use super::deferred::{Deferred, UnappliedHook};
use super::outcome::{Report, SideEffectError, guarded};
use crate::error::BoxError;
use crate::handler::HandlerResult;

type CommitFn = Box<dyn FnOnce(bool) -> Result<(), BoxError> + Send>;

/// A side effect that takes only the commit flag: `FnOnce(bool) -> R`, where `R` is `()`
/// or `Result<V, E>` (as for handlers, [`HandlerResult`]).
///
/// # Examples
///
/// ```
/// use ventus::bus::Committable;
///
/// let call = Committable::new(|commit| if commit { Ok(()) } else { Err("rolled back") });
/// assert!(call.call(false).is_err());
/// ```
pub struct Committable(CommitFn);

impl Committable {
    /// Wraps a side effect.
    pub fn new<F, R>(side_effect: F) -> Self
    where
        F: FnOnce(bool) -> R + Send + 'static,
        R: HandlerResult,
    {
        Committable(Box::new(move |commit| {
            side_effect(commit).into_result().map(|_value| ())
        }))
    }

    /// Calls it with `commit`; an `Err` or a panic (caught) is the [`SideEffectError`].
    ///
    /// # Errors
    ///
    /// [`SideEffectError::Failed`] when it returned `Err`, [`SideEffectError::Panicked`]
    /// when it panicked.
    pub fn call(self, commit: bool) -> Result<(), SideEffectError> {
        guarded(move || (self.0)(commit))
    }
}

impl fmt::Debug for Committable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Committable(..)")
    }
}

/// The simplest bus: each event is a [`Committable`] side effect, called with the commit
/// flag on `apply` (the seed's `BasicEventBus`).
///
/// `apply(commit)` calls every side effect in publication order with `commit` (a rollback
/// still calls them, with `false`: each decides what a rollback means), even after one
/// failed or panicked, and returns their [`Report`].
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ventus::bus::{BasicEventBus, EventBus};
///
/// let sent = Arc::new(Mutex::new(Vec::new()));
/// let mut bus = BasicEventBus::new();
/// for to in ["ada", "grace"] {
///     let sent = sent.clone();
///     bus.publish_fn(move |commit| {
///         if commit {
///             sent.lock().unwrap().push(to);
///         }
///     });
/// }
/// assert!(sent.lock().unwrap().is_empty()); // nothing happens before apply
/// let report = bus.apply(true);
/// assert!(report.is_ok());
/// assert_eq!(*sent.lock().unwrap(), ["ada", "grace"]);
/// assert!(bus.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct BasicEventBus {
    events: Vec<Committable>,
    hook: UnappliedHook,
}

impl BasicEventBus {
    /// An empty bus that reports unapplied side effects on stderr when dropped.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same bus, reporting side effects dropped unapplied to `hook` instead of stderr.
    pub fn on_unapplied(
        mut self,
        hook: impl Fn(&super::Unapplied) + Send + Sync + 'static,
    ) -> Self {
        self.hook = UnappliedHook::new(hook);
        self
    }

    /// Publishes a closure as a [`Committable`].
    pub fn publish_fn<F, R>(&mut self, side_effect: F)
    where
        F: FnOnce(bool) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.events.push(Committable::new(side_effect));
    }
}

impl EventBus for BasicEventBus {
    type Event = Committable;
    type Applied = Report;

    fn publish(&mut self, event: Committable) {
        self.events.push(event);
    }

    fn apply(&mut self, commit: bool) -> Report {
        let mut report = Report::default();
        for event in std::mem::take(&mut self.events) {
            report.record(event.call(commit));
        }
        report
    }

    fn collect(&mut self) -> Vec<Deferred<Committable, Report>> {
        Deferred::batch(
            "BasicEventBus",
            std::mem::take(&mut self.events),
            |event: Committable, commit| {
                let mut report = Report::default();
                report.record(event.call(commit));
                report
            },
            self.hook.clone(),
        )
    }

    fn len(&self) -> usize {
        self.events.len()
    }
}

impl Drop for BasicEventBus {
    fn drop(&mut self) {
        self.hook.report_count("BasicEventBus", self.events.len());
    }
}
