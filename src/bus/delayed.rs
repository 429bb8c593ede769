//! `DelayedEventBus`: a bus whose `apply` runs nothing, so that the code that publishes
//! and "applies" can be handed a bus whose side effects someone else runs later.

use std::fmt;

use super::EventBus;
use super::deferred::Deferred;
use super::outcome::ApplyOutcome;

/// Wraps a bus so that [`apply`](EventBus::apply) runs nothing: it moves the inner bus's
/// collected calls aside (the seed's `DelayedEventBus`). They run, in order and exactly
/// once, with [`apply_without_delay`](Self::apply_without_delay), together with whatever
/// was published since.
///
/// `apply(commit)` ignores `commit` (the later `apply_without_delay` decides) and returns
/// an empty outcome (`Default`: nothing ran). `apply_without_delay(commit)` returns what
/// the inner bus's `apply(commit)` would have returned for all of them at once.
///
/// Dropping it with calls still aside reports them as unapplied, exactly as the inner bus
/// would have (its hook, or dead letters for an
/// [`EmitOnCommitBus`](super::EmitOnCommitBus)).
///
/// # Examples
///
/// ```
/// use ventus::bus::{CustomEventBus, DelayedEventBus, EventBus};
///
/// fn process(bus: &mut impl EventBus<Event = u32>, n: u32) {
///     bus.publish(n);
///     let _ = bus.apply(true); // the process believes it applied its work
/// }
///
/// let mut bus = DelayedEventBus::new(CustomEventBus::new(|n: &u32, _commit: bool| {
///     println!("side effect {n}")
/// }));
/// process(&mut bus, 1);
/// process(&mut bus, 2);
/// bus.publish(3);
/// assert_eq!(bus.len(), 3); // nothing ran yet
///
/// let applied = bus.apply_without_delay(true);
/// assert_eq!(applied.events, [1, 2, 3]);
/// assert!(bus.is_empty());
/// ```
pub struct DelayedEventBus<B: EventBus> {
    inner: B,
    pending: Vec<Deferred<B::Event, B::Applied>>,
}

impl<B: EventBus> DelayedEventBus<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    /// The inner bus (which holds what was published since the last `apply`).
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// How many calls `apply` moved aside so far.
    pub fn delayed(&self) -> usize {
        self.pending.len()
    }

    /// Runs everything: the calls moved aside by every `apply` so far, then what was
    /// published since, in publication order, each exactly once, with `commit`.
    ///
    /// Returns what the inner bus's `apply(commit)` would have returned for all of them.
    pub fn apply_without_delay(&mut self, commit: bool) -> B::Applied {
        let mut calls = std::mem::take(&mut self.pending);
        calls.extend(self.inner.collect());
        run_all(calls, commit)
    }
}

/// Runs calls in order, merging their outcomes.
pub(crate) fn run_all<T, A: ApplyOutcome>(calls: Vec<Deferred<T, A>>, commit: bool) -> A {
    let mut outcome = A::default();
    for call in calls {
        outcome.merge(call.run(commit));
    }
    outcome
}

impl<B: EventBus> EventBus for DelayedEventBus<B> {
    type Event = B::Event;
    type Applied = B::Applied;

    fn publish(&mut self, event: B::Event) {
        self.inner.publish(event);
    }

    /// Runs nothing: moves the inner bus's calls aside, and returns an empty outcome.
    fn apply(&mut self, _commit: bool) -> B::Applied {
        let calls = self.inner.collect();
        self.pending.extend(calls);
        B::Applied::default()
    }

    /// Everything not run yet: the calls moved aside, then the inner bus's.
    fn collect(&mut self) -> Vec<Deferred<B::Event, B::Applied>> {
        let mut calls = std::mem::take(&mut self.pending);
        calls.extend(self.inner.collect());
        calls
    }

    fn len(&self) -> usize {
        self.pending.len() + self.inner.len()
    }
}

impl<B: EventBus> fmt::Debug for DelayedEventBus<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedEventBus")
            .field("inner", &std::any::type_name::<B>())
            .field("published", &self.inner.len())
            .field("delayed", &self.pending.len())
            .finish()
    }
}
