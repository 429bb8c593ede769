//! What applying a bus returns: the [`ApplyOutcome`] contract, the [`Report`] of every
//! bus whose side effects consume their events, [`Applied`] for buses that only borrow
//! them, and the failure types.

use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{BoxError, Refusal};
use crate::handler::HandlerResult;
use crate::hooks::panic_message;
use crate::subscription::SubscriptionId;

/// What [`EventBus::apply`](super::EventBus::apply) returns, for one bus kind.
///
/// `Default` is "nothing was applied" (what a [`DelayedEventBus`](super::DelayedEventBus)
/// returns from `apply`). [`merge`](Self::merge) appends the outcome of a later part of
/// the same apply, so that the deferred calls of a bus, run one by one, add up to what its
/// own `apply` would have returned. [`into_report`](Self::into_report) forgets the events
/// and keeps the count and the failures (what a [`MultiEventBus`](super::MultiEventBus)
/// keeps of each bus it applies).
pub trait ApplyOutcome: Default + Send + 'static {
    /// Appends `later`, the outcome of side effects that ran after those of `self`.
    fn merge(&mut self, later: Self);

    /// How many side effects ran, and which failed.
    fn into_report(self) -> Report;
}

/// How many side effects one apply ran, and which of them failed.
///
/// Every bus runs every side effect, in publication order, even after one failed or
/// panicked: `ran` counts them all, `failures` lists the ones that did not succeed, by
/// their position in the apply.
///
/// # Examples
///
/// ```
/// use ventus::bus::{BasicEventBus, EventBus, SideEffectError};
///
/// let mut bus = BasicEventBus::new();
/// bus.publish_fn(|_commit| Ok::<(), std::io::Error>(()));
/// bus.publish_fn(|_commit| Err::<(), _>(std::io::Error::other("disk full")));
/// bus.publish_fn(|_commit| {});
///
/// let report = bus.apply(true);
/// assert_eq!(report.ran, 3);
/// assert_eq!(report.succeeded(), 2);
/// assert_eq!(report.failures[0].index, 1);
/// assert!(matches!(report.failures[0].error, SideEffectError::Failed(_)));
/// ```
#[derive(Debug, Default)]
#[must_use = "failed side effects are reported here"]
pub struct Report {
    /// How many side effects the apply took, in order: each succeeded or has an entry in
    /// `failures` (one that could not run at all, [`SideEffectError::NoContext`], counts
    /// too).
    pub ran: usize,
    /// The side effects that did not succeed, in order; then any failure of a shared
    /// context ([`SideEffectError::Context`]).
    pub failures: Vec<SideEffectFailure>,
}

impl Report {
    /// Whether every side effect succeeded (and every shared context finished).
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// How many side effects succeeded.
    pub fn succeeded(&self) -> usize {
        let failed = self
            .failures
            .iter()
            .filter(|failure| !matches!(failure.error, SideEffectError::Context(_)))
            .count();
        self.ran.saturating_sub(failed)
    }

    /// Records one side effect that ran.
    pub(crate) fn record(&mut self, result: Result<(), SideEffectError>) {
        let index = self.ran;
        self.ran += 1;
        if let Err(error) = result {
            self.failures.push(SideEffectFailure { index, error });
        }
    }

    /// Records a failure that is not a side effect of its own (a shared context's), at the
    /// current position.
    pub(crate) fn record_extra(&mut self, error: SideEffectError) {
        self.failures.push(SideEffectFailure {
            index: self.ran,
            error,
        });
    }
}

impl ApplyOutcome for Report {
    fn merge(&mut self, later: Self) {
        let offset = self.ran;
        self.ran += later.ran;
        self.failures
            .extend(later.failures.into_iter().map(|mut failure| {
                failure.index += offset;
                failure
            }));
    }

    fn into_report(self) -> Report {
        self
    }
}

/// One side effect that did not succeed.
#[derive(Debug)]
pub struct SideEffectFailure {
    /// Its position among the side effects of the apply (0 for the first one that ran).
    pub index: usize,
    /// What went wrong.
    pub error: SideEffectError,
}

impl fmt::Display for SideEffectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "side effect #{}: {}", self.index, self.error)
    }
}

impl Error for SideEffectFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.error)
    }
}

/// Why one side effect did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SideEffectError {
    /// It returned `Err`. For an [`EmitOnCommitBus`](super::EmitOnCommitBus) that no
    /// subscription took, this is the boxed [`EmitError`](crate::EmitError), which holds
    /// the event.
    Failed(BoxError),
    /// It panicked (caught); the panic message.
    Panicked(String),
    /// An emission reached some subscriptions and these refused it.
    Refused(Vec<(SubscriptionId, Refusal)>),
    /// It did not run: its shared context could not be opened, or was in use by another
    /// thread (see [`SharedContextBus`](super::SharedContextBus)).
    NoContext,
    /// A shared context failed to open or to finish. It is not a side effect of its own:
    /// it is listed after the side effects, with `index` equal to `ran`.
    Context(Box<SideEffectError>),
}

impl fmt::Display for SideEffectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideEffectError::Failed(error) => write!(f, "failed: {error}"),
            SideEffectError::Panicked(message) => write!(f, "panicked: {message}"),
            SideEffectError::Refused(refused) => {
                write!(f, "refused by {} subscription(s)", refused.len())
            }
            SideEffectError::NoContext => f.write_str("not run: no shared context"),
            SideEffectError::Context(error) => write!(f, "shared context {error}"),
        }
    }
}

impl Error for SideEffectError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SideEffectError::Failed(error) => Some(&**error),
            SideEffectError::Context(error) => Some(&**error),
            _ => None,
        }
    }
}

/// What a bus whose side effects only borrow their events returns from `apply`: the
/// events, in publication order, and the [`Report`] of their side effects.
///
/// # Examples
///
/// ```
/// use ventus::bus::{CustomEventBus, EventBus};
///
/// let mut bus = CustomEventBus::new(|n: &u32, _commit: bool| {
///     if *n == 0 { Err("zero") } else { Ok(()) }
/// });
/// bus.publish_all([3, 0, 5]);
/// let applied = bus.apply(true);
/// assert_eq!(applied.events, [3, 0, 5]);
/// assert_eq!(applied.report.failures[0].index, 1);
/// ```
#[derive(Debug)]
#[must_use = "failed side effects are reported here"]
pub struct Applied<T> {
    /// Every event that was applied (successfully or not), in publication order.
    pub events: Vec<T>,
    /// The side effects' report; `report.failures[i].index` indexes `events`.
    pub report: Report,
}

impl<T> Default for Applied<T> {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            report: Report::default(),
        }
    }
}

impl<T: Send + 'static> ApplyOutcome for Applied<T> {
    fn merge(&mut self, later: Self) {
        self.events.extend(later.events);
        self.report.merge(later.report);
    }

    fn into_report(self) -> Report {
        self.report
    }
}

/// Runs one piece of user code, turning an `Err` or a panic into a [`SideEffectError`].
pub(crate) fn guarded<R: HandlerResult>(
    side_effect: impl FnOnce() -> R,
) -> Result<(), SideEffectError> {
    match catch_unwind(AssertUnwindSafe(side_effect)) {
        Ok(result) => result
            .into_result()
            .map(|_value| ())
            .map_err(SideEffectError::Failed),
        Err(panic) => Err(SideEffectError::Panicked(panic_message(&*panic))),
    }
}
