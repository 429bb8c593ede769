//! `SharedContextBus`: every side effect of one apply runs with one shared context (for
//! example one database transaction), which is then told whether to commit (the seed's
//! `SharedSideEffectsEventBus` and its `SharedSideEffectContext`).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::EventBus;
use super::deferred::{Deferred, Unapplied, UnappliedHook};
use super::outcome::{ApplyOutcome, Report, SideEffectError, guarded};
use crate::error::BoxError;
use crate::handler::HandlerResult;
use crate::hooks::panic_message;
use crate::sync::{Arc, Mutex};

/// The context the side effects of one apply share: a transaction, a batch writer, a
/// connection. It is opened when the first side effect needs it and finished once, after
/// the last one.
pub trait SharedContext: Send + 'static {
    /// Ends the unit of work: commits when `commit`, else rolls back.
    ///
    /// # Errors
    ///
    /// Any error: it is recorded in the apply's [`ContextReport`].
    fn finish(self, commit: bool) -> Result<(), BoxError>;
}

type EffectFn<C> = Box<dyn FnOnce(&mut C) -> Result<(), BoxError> + Send>;

/// One side effect of a [`SharedContextBus`]: `FnOnce(&mut C) -> R`, `R` being `()` or
/// `Result<V, E>`.
pub struct SideEffect<C>(EffectFn<C>);

impl<C: 'static> SideEffect<C> {
    /// Wraps a side effect.
    pub fn new<F, R>(side_effect: F) -> Self
    where
        F: FnOnce(&mut C) -> R + Send + 'static,
        R: HandlerResult,
    {
        SideEffect(Box::new(move |context| {
            side_effect(context).into_result().map(|_value| ())
        }))
    }
}

impl<C> SideEffect<C> {
    fn call(self, context: &mut C) -> Result<(), SideEffectError> {
        guarded(move || (self.0)(context))
    }
}

impl<C> fmt::Debug for SideEffect<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SideEffect(..)")
    }
}

/// How one shared context ended.
#[derive(Debug)]
pub struct ContextEnd {
    /// What it was told: `true` only when the apply asked to commit and every side effect
    /// succeeded.
    pub commit: bool,
    /// Whether opening and finishing it succeeded (a failed open is `commit: false`).
    pub result: Result<(), SideEffectError>,
}

/// What a [`SharedContextBus`] returns from `apply`: its side effects' [`Report`], and how
/// each context it opened ended (one per apply; none when there was nothing to apply).
#[derive(Debug, Default)]
#[must_use = "failed side effects are reported here"]
pub struct ContextReport {
    /// The side effects.
    pub report: Report,
    /// The contexts, in the order they ended.
    pub contexts: Vec<ContextEnd>,
}

impl ContextReport {
    /// Whether every context committed successfully (`true` when none was needed).
    pub fn committed(&self) -> bool {
        self.contexts
            .iter()
            .all(|end| end.commit && end.result.is_ok())
    }
}

impl ApplyOutcome for ContextReport {
    fn merge(&mut self, later: Self) {
        self.report.merge(later.report);
        self.contexts.extend(later.contexts);
    }

    /// The side effects' report, followed by the failures of the contexts
    /// ([`SideEffectError::Context`]).
    fn into_report(self) -> Report {
        let mut report = self.report;
        for end in self.contexts {
            if let Err(error) = end.result {
                report.record_extra(SideEffectError::Context(Box::new(error)));
            }
        }
        report
    }
}

type OpenFn<C> = Arc<dyn Fn() -> Result<C, BoxError> + Send + Sync>;

fn open_context<C>(open: &OpenFn<C>) -> Result<C, SideEffectError> {
    match catch_unwind(AssertUnwindSafe(|| open())) {
        Ok(Ok(context)) => Ok(context),
        Ok(Err(error)) => Err(SideEffectError::Failed(error)),
        Err(panic) => Err(SideEffectError::Panicked(panic_message(&*panic))),
    }
}

/// A bus whose side effects of one apply all run with one shared context, which is then
/// told whether to commit.
///
/// `apply(commit)` opens a context (with the function given to [`new`](Self::new)), runs
/// every side effect in publication order with it, even after one failed or panicked, and
/// finishes it with `commit` **only if every side effect succeeded**, else with `false`
/// (a transaction is all or nothing). A rollback (`apply(false)`) still runs the side
/// effects inside the context, then rolls it back. If the context cannot be opened, no
/// side effect runs and each is reported as [`SideEffectError::NoContext`].
///
/// Collected calls ([`EventBus::collect`]) share one context per `collect`: opened by the
/// first call that runs, finished after the last one runs or is dropped (a dropped call
/// makes it roll back). Running calls of one batch on two threads at once is a misuse: the
/// second finds the context in use and reports `NoContext` instead of waiting.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ventus::bus::{EventBus, SharedContext, SharedContextBus};
/// use ventus::BoxError;
///
/// type Db = Arc<Mutex<Vec<String>>>;
///
/// struct Tx { db: Db, staged: Vec<String> }
///
/// impl SharedContext for Tx {
///     fn finish(self, commit: bool) -> Result<(), BoxError> {
///         if commit {
///             self.db.lock().unwrap().extend(self.staged);
///         }
///         Ok(())
///     }
/// }
///
/// let db = Db::default();
/// let handle = db.clone();
/// let mut bus = SharedContextBus::new(move || Tx { db: handle.clone(), staged: Vec::new() });
/// bus.publish_fn(|tx: &mut Tx| tx.staged.push("order 7".into()));
/// bus.publish_fn(|tx: &mut Tx| tx.staged.push("stock -1".into()));
///
/// let report = bus.apply(true);
/// assert!(report.committed());
/// assert_eq!(*db.lock().unwrap(), ["order 7", "stock -1"]);
/// ```
pub struct SharedContextBus<C> {
    open: OpenFn<C>,
    effects: Vec<SideEffect<C>>,
    hook: UnappliedHook,
}

impl<C: SharedContext> SharedContextBus<C> {
    /// A bus that opens each context with `open`.
    pub fn new(open: impl Fn() -> C + Send + Sync + 'static) -> Self {
        Self::with_opener(Arc::new(move || Ok(open())))
    }

    /// A bus whose contexts may fail to open.
    pub fn try_new<E>(open: impl Fn() -> Result<C, E> + Send + Sync + 'static) -> Self
    where
        E: Into<BoxError>,
    {
        Self::with_opener(Arc::new(move || open().map_err(Into::into)))
    }

    fn with_opener(open: OpenFn<C>) -> Self {
        Self {
            open,
            effects: Vec::new(),
            hook: UnappliedHook::default(),
        }
    }

    /// The same bus, reporting side effects dropped unapplied to `hook` instead of stderr.
    pub fn on_unapplied(mut self, hook: impl Fn(&Unapplied) + Send + Sync + 'static) -> Self {
        self.hook = UnappliedHook::new(hook);
        self
    }

    /// Publishes a closure as a [`SideEffect`].
    pub fn publish_fn<F, R>(&mut self, side_effect: F)
    where
        F: FnOnce(&mut C) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.effects.push(SideEffect::new(side_effect));
    }
}

impl<C: SharedContext> EventBus for SharedContextBus<C> {
    type Event = SideEffect<C>;
    type Applied = ContextReport;

    fn publish(&mut self, event: SideEffect<C>) {
        self.effects.push(event);
    }

    fn apply(&mut self, commit: bool) -> ContextReport {
        let effects = std::mem::take(&mut self.effects);
        let mut out = ContextReport::default();
        if effects.is_empty() {
            return out;
        }
        match open_context(&self.open) {
            Err(error) => {
                for _ in &effects {
                    out.report.record(Err(SideEffectError::NoContext));
                }
                out.contexts.push(ContextEnd {
                    commit: false,
                    result: Err(error),
                });
            }
            Ok(mut context) => {
                for effect in effects {
                    out.report.record(effect.call(&mut context));
                }
                let commit = commit && out.report.is_ok();
                out.contexts.push(ContextEnd {
                    commit,
                    result: guarded(|| context.finish(commit)),
                });
            }
        }
        out
    }

    fn collect(&mut self) -> Vec<Deferred<SideEffect<C>, ContextReport>> {
        let effects = std::mem::take(&mut self.effects);
        let state = Arc::new(Mutex::new(BatchState {
            phase: Phase::Fresh,
            remaining: effects.len(),
            commit: true,
        }));
        let open = self.open.clone();
        let run_state = state.clone();
        Deferred::batch_with(
            "SharedContextBus",
            effects,
            move |effect, commit| run_in_batch(&run_state, &open, effect, commit),
            move |effect| lost_in_batch(&state, effect),
            Some(self.hook.clone()),
        )
    }

    fn len(&self) -> usize {
        self.effects.len()
    }
}

impl<C> Drop for SharedContextBus<C> {
    fn drop(&mut self) {
        self.hook
            .report_count("SharedContextBus", self.effects.len());
    }
}

impl<C> fmt::Debug for SharedContextBus<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedContextBus")
            .field("side_effects", &self.effects.len())
            .finish_non_exhaustive()
    }
}

/// The shared context of the calls of one `collect`.
enum Phase<C> {
    /// Not opened yet.
    Fresh,
    /// Open, between two calls.
    Open(C),
    /// Taken out by a running call.
    InUse,
    /// Could not be opened.
    Failed,
    /// Finished.
    Finished,
}

struct BatchState<C> {
    phase: Phase<C>,
    /// Calls neither run nor dropped yet.
    remaining: usize,
    /// Whether every call so far was run with `commit` and succeeded.
    commit: bool,
}

enum Taken<C> {
    Context(C),
    MustOpen,
    Unavailable,
}

/// Runs one collected call. The batch's lock is never held while user code runs: the
/// context is taken out, used, and put back (or finished by the last call).
fn run_in_batch<C: SharedContext>(
    state: &Mutex<BatchState<C>>,
    open: &OpenFn<C>,
    effect: SideEffect<C>,
    commit: bool,
) -> ContextReport {
    let mut out = ContextReport::default();
    let taken = {
        let mut batch = state.lock();
        batch.remaining = batch.remaining.saturating_sub(1);
        batch.commit &= commit;
        match std::mem::replace(&mut batch.phase, Phase::InUse) {
            Phase::Fresh => Taken::MustOpen,
            Phase::Open(context) => Taken::Context(context),
            other => {
                batch.phase = other;
                batch.commit = false;
                Taken::Unavailable
            }
        }
    };
    let context = match taken {
        Taken::Context(context) => Some(context),
        Taken::MustOpen => match open_context(open) {
            Ok(context) => Some(context),
            Err(error) => {
                out.contexts.push(ContextEnd {
                    commit: false,
                    result: Err(error),
                });
                let mut batch = state.lock();
                batch.phase = Phase::Failed;
                batch.commit = false;
                None
            }
        },
        Taken::Unavailable => None,
    };
    let Some(mut context) = context else {
        out.report.record(Err(SideEffectError::NoContext));
        drop(effect);
        return out;
    };
    let result = effect.call(&mut context);
    let ok = result.is_ok();
    out.report.record(result);
    let mut batch = state.lock();
    batch.commit &= ok;
    if batch.remaining > 0 {
        batch.phase = Phase::Open(context);
        return out;
    }
    batch.phase = Phase::Finished;
    let commit = batch.commit;
    drop(batch);
    out.contexts.push(ContextEnd {
        commit,
        result: guarded(|| context.finish(commit)),
    });
    out
}

/// A collected call dropped without running: the batch can no longer commit; the last one
/// gone rolls an open context back.
fn lost_in_batch<C: SharedContext>(state: &Mutex<BatchState<C>>, effect: SideEffect<C>) {
    drop(effect);
    let context = {
        let mut batch = state.lock();
        batch.remaining = batch.remaining.saturating_sub(1);
        batch.commit = false;
        if batch.remaining > 0 {
            None
        } else {
            match std::mem::replace(&mut batch.phase, Phase::Finished) {
                Phase::Open(context) => Some(context),
                other => {
                    batch.phase = other;
                    None
                }
            }
        }
    };
    if let Some(context) = context {
        if let Err(error) = guarded(|| context.finish(false)) {
            eprintln!(
                "ventus: rolling back the shared context of dropped side effects failed: {error}"
            );
        }
    }
}
