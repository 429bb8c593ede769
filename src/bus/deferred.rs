//! Deferred calls (what `collect` takes out of a bus) and the report of side effects that
//! were dropped without being applied.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::hooks::panic_message;
use crate::sync::{Arc, AtomicUsize, Ordering};

/// Side effects that were dropped without being applied: what an [`UnappliedHook`]
/// receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unapplied {
    /// The bus kind they were published to (its type name).
    pub bus: &'static str,
    /// How many side effects were dropped.
    pub count: usize,
}

impl fmt::Display for Unapplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} dropped {} unapplied side effect(s)",
            self.bus, self.count
        )
    }
}

/// What a bus does when it is dropped with side effects it never applied: by default,
/// one line on stderr; or a function of yours ([`UnappliedHook::new`], set with each bus's
/// `on_unapplied`). Never silent, unless your hook chooses to be.
///
/// The [`EmitOnCommitBus`](super::EmitOnCommitBus) reports each unemitted event as a dead
/// letter of its emitter's linker instead.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ventus::bus::{BasicEventBus, EventBus};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let mut bus = BasicEventBus::new().on_unapplied(move |lost| log.lock().unwrap().push(lost.count));
/// bus.publish_fn(|_commit| {});
/// bus.publish_fn(|_commit| {});
/// drop(bus);
/// assert_eq!(*seen.lock().unwrap(), [2]);
/// ```
#[derive(Clone, Default)]
pub struct UnappliedHook {
    hook: Option<HookFn>,
}

type HookFn = Arc<dyn Fn(&Unapplied) + Send + Sync>;

impl UnappliedHook {
    /// A hook that calls `hook`.
    pub fn new(hook: impl Fn(&Unapplied) + Send + Sync + 'static) -> Self {
        Self {
            hook: Some(Arc::new(hook)),
        }
    }

    /// The default hook: one line on stderr.
    pub fn stderr() -> Self {
        Self::default()
    }

    /// Reports `unapplied` (a panic in the hook is caught and printed).
    pub(crate) fn report(&self, unapplied: &Unapplied) {
        match &self.hook {
            Some(hook) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook(unapplied))) {
                    eprintln!(
                        "ventus: the unapplied hook panicked ({}) on: {unapplied}",
                        panic_message(&*panic)
                    );
                }
            }
            None => eprintln!("ventus: {unapplied}"),
        }
    }

    /// Reports `count` side effects of `bus` if there are any.
    pub(crate) fn report_count(&self, bus: &'static str, count: usize) {
        if count > 0 {
            self.report(&Unapplied { bus, count });
        }
    }
}

impl fmt::Debug for UnappliedHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.hook.is_some() {
            "UnappliedHook(custom)"
        } else {
            "UnappliedHook(stderr)"
        })
    }
}

type RunFn<T, A> = Box<dyn Fn(T, bool) -> A + Send + Sync>;
type LostFn<T> = Box<dyn Fn(T) + Send + Sync>;

/// What the deferred calls of one `collect` share: how to run one, and what to do with one
/// that is dropped without running.
struct Batch<T, A> {
    bus: &'static str,
    run: RunFn<T, A>,
    lost: LostFn<T>,
    /// Reported once, when the last call of the batch is gone, if any was dropped unrun.
    hook: Option<UnappliedHook>,
    dropped: AtomicUsize,
}

impl<T, A> Drop for Batch<T, A> {
    fn drop(&mut self) {
        if let Some(hook) = &self.hook {
            // Relaxed: the last owner of the batch runs this drop, after every increment
            // (the `Arc` release/acquire on its count orders them).
            hook.report_count(self.bus, self.dropped.load(Ordering::Relaxed));
        }
    }
}

/// One side effect taken out of a bus by [`EventBus::collect`](super::EventBus::collect):
/// its event, and [`run`](Self::run) to apply it later.
///
/// `run(commit)` does what the bus's own `apply(commit)` would have done for this event,
/// and returns the same kind of outcome, so that outcomes [merge](super::ApplyOutcome) into
/// what the bus would have returned. Running it twice is impossible (it consumes the
/// call). Dropping it without running it reports the event as unapplied, as dropping the
/// bus would have; [`into_event`](Self::into_event) takes the event out instead, silently.
///
/// # Examples
///
/// ```
/// use ventus::bus::{ApplyOutcome, CustomEventBus, EventBus, Report};
///
/// let mut bus = CustomEventBus::new(|n: &u32, _commit: bool| println!("{n}"));
/// bus.publish_all([1, 2]);
/// let calls = bus.collect();
/// assert!(bus.is_empty());
/// assert_eq!(calls.iter().map(|call| *call.event()).collect::<Vec<_>>(), [1, 2]);
///
/// let mut report = Report::default();
/// for call in calls {
///     report.merge(call.run(true).into_report());
/// }
/// assert_eq!(report.ran, 2);
/// ```
pub struct Deferred<T, A> {
    // `None` only once `run`, `into_event` or `drop` took it: each of them consumes `self`.
    event: Option<T>,
    batch: Arc<Batch<T, A>>,
}

impl<T, A> Deferred<T, A>
where
    T: Send + 'static,
    A: 'static,
{
    /// The deferred calls of one `collect`, for a bus of your own: `run` applies one event;
    /// events dropped without running are reported to `hook` as one [`Unapplied`] (for
    /// `bus`), when the last call of the batch is gone.
    pub fn batch(
        bus: &'static str,
        events: impl IntoIterator<Item = T>,
        run: impl Fn(T, bool) -> A + Send + Sync + 'static,
        hook: UnappliedHook,
    ) -> Vec<Self> {
        Self::batch_with(bus, events, run, drop, Some(hook))
    }

    /// As [`batch`](Self::batch), with a function called on each event dropped unrun, and
    /// an optional count report.
    pub(crate) fn batch_with(
        bus: &'static str,
        events: impl IntoIterator<Item = T>,
        run: impl Fn(T, bool) -> A + Send + Sync + 'static,
        lost: impl Fn(T) + Send + Sync + 'static,
        hook: Option<UnappliedHook>,
    ) -> Vec<Self> {
        let batch = Arc::new(Batch {
            bus,
            run: Box::new(run),
            lost: Box::new(lost),
            hook,
            dropped: AtomicUsize::new(0),
        });
        events
            .into_iter()
            .map(|event| Deferred {
                event: Some(event),
                batch: batch.clone(),
            })
            .collect()
    }
}

impl<T, A> Deferred<T, A> {
    /// The event this call applies.
    pub fn event(&self) -> &T {
        match &self.event {
            Some(event) => event,
            // Only `run`, `into_event` and `drop` empty it, and each consumes `self`.
            None => unreachable!("a deferred call's event is taken only when it is consumed"),
        }
    }

    /// The bus kind it was collected from (its type name).
    pub fn bus(&self) -> &'static str {
        self.batch.bus
    }

    /// Applies the event with `commit`, as the bus's own `apply(commit)` would have.
    pub fn run(mut self, commit: bool) -> A {
        let event = self.take();
        (self.batch.run)(event, commit)
    }

    /// Takes the event out without applying it and without reporting it as unapplied.
    pub fn into_event(mut self) -> T {
        self.take()
    }

    fn take(&mut self) -> T {
        match self.event.take() {
            Some(event) => event,
            None => unreachable!("a deferred call's event is taken only when it is consumed"),
        }
    }
}

impl<T, A> Drop for Deferred<T, A> {
    fn drop(&mut self) {
        if let Some(event) = self.event.take() {
            // Relaxed: a count read by the batch's last owner (see `Batch::drop`).
            self.batch.dropped.fetch_add(1, Ordering::Relaxed);
            let lost = &self.batch.lost;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| lost(event))) {
                eprintln!(
                    "ventus: dropping an unapplied side effect of {} panicked: {}",
                    self.batch.bus,
                    panic_message(&*panic)
                );
            }
        }
    }
}

impl<T, A> fmt::Debug for Deferred<T, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deferred")
            .field("bus", &self.batch.bus)
            .finish_non_exhaustive()
    }
}
