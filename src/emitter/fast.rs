//! The emit fast path: a typed event, an [`Actors`](super::Actors) strategy, and only
//! pooled (or same-runtime dedicated), non-once subscriptions with mailboxes typed for the
//! event (the common case of a typed actor system). It skips the type-erased carrier of
//! the general path: one snapshot read (the guard is held only across pushes, which run no
//! user code but a by-value subscription's `Clone`), one push and one `fetch_add` per
//! subscription, the event moved into the only mailbox or shared behind one `Arc` (the last
//! push takes the `Arc` itself), or, for subscriptions made with `by_value()`, cloned (the
//! last recipient gets the original). Anything else (debug, an `emit_and_wait` chain, `Any`
//! subscriptions, once, `CpuBound`, another runtime's dedicated thread, a full mailbox)
//! returns the event to the general path, which handles it identically: the fast path is an
//! optimisation, never a different semantics.
//!
//! What the fast path needs of a key's subscriptions is resolved once into a [`Route`] and
//! kept in the registry entry beside the list (built by the first fast emit after the list
//! changed): the typed mailbox of each (a sender of its own, so that an emit never reads
//! the mailbox's memory, which the runner writes), its clone function, capacity and
//! metadata flag. An emit then reads only the route and each subscription's `pending` line.

use std::any::{Any, TypeId};

use super::{Delivery, Emitter};
use crate::actor::Shared;
use crate::carrier::has_chain;
use crate::error::EmitError;
use crate::event::{Extra, Payload, Stamp, TypedMsg};
use crate::linker::registry::TypedEntry;
use crate::subscription::{MailboxCore, SubArc, Subscription, count_pushed};
use crate::sync::{Arc, MailboxSender, Ordering};

/// A type-erased [`Route`], as the registry keeps it.
#[cfg(not(loom))]
pub(crate) type AnyRoute = Arc<dyn Any + Send + Sync>;

/// A batch's fast-path result: `Ok` with the emit's own result, or the slots back, all
/// still `Some`, for the general path.
pub(crate) type FastBatch<T> = Result<Result<Delivery, EmitError<Vec<T>>>, Vec<Option<T>>>;

/// One typed key's subscriptions, resolved for the fast path.
pub(crate) struct Route<T> {
    /// The runtime of the dedicated subscriptions among the targets (their shutdown gate is
    /// the emitter's only when the emitter runs on the same runtime); `None`: all pooled.
    pinned: Option<u64>,
    /// Every target takes events by value.
    by_value: bool,
    targets: Box<[Target<T>]>,
}

struct Target<T> {
    sub: SubArc,
    tx: MailboxSender<TypedMsg<T>>,
    cloner: Option<fn(&T) -> T>,
    capacity: usize,
    wants_meta: bool,
}

impl<T> Target<T> {
    /// A soft bound, as documented for concurrent producers.
    #[inline]
    fn has_room(&self) -> bool {
        self.sub.common.pending.load(Ordering::Relaxed) < self.capacity
    }

    /// Room for `n` more (soft, as for one).
    #[inline]
    fn has_room_for(&self, n: usize) -> bool {
        self.sub
            .common
            .pending
            .load(Ordering::Relaxed)
            .saturating_add(n)
            <= self.capacity
    }

    /// Whether its messages carry metadata.
    #[inline]
    fn wants_meta(&self) -> bool {
        self.wants_meta || crate::stats::recording()
    }

    /// Pushes one message without counting it; `stamp` is the emission's metadata, kept
    /// only if this subscription wants it.
    #[inline]
    fn push_uncounted(&self, payload: Payload<T>, stamp: &mut Stamp) {
        let meta = if self.wants_meta() {
            Some(stamp.get())
        } else {
            None
        };
        self.tx.push(TypedMsg {
            payload,
            extra: Extra::of(meta, None),
        });
    }

    /// Pushes and counts one message; true if the caller must schedule the subscription.
    #[inline]
    fn push(&self, payload: Payload<T>, stamp: &mut Stamp) -> bool {
        self.push_uncounted(payload, stamp);
        count_pushed(&self.sub.common, 1)
    }

    /// Pushes every payload (with its event's stamp, when `stamps` has them), then counts them with one
    /// `fetch_add` and schedules the subscription if that moved it from idle. What was
    /// pushed is counted even if the iterator panics (a user `Clone`): a pushed message
    /// that is never counted would be run in place of a later one, and the last one left
    /// in the mailbox forever.
    #[inline]
    fn push_all(
        &self,
        shared: &Shared,
        payloads: impl Iterator<Item = Payload<T>>,
        stamps: &mut [Stamp],
    ) {
        struct Count<'a, T> {
            target: &'a Target<T>,
            shared: &'a Shared,
            pushed: usize,
        }
        impl<T> Drop for Count<'_, T> {
            fn drop(&mut self) {
                if self.pushed != 0 && count_pushed(&self.target.sub.common, self.pushed) {
                    self.target.schedule(self.shared);
                }
            }
        }
        let mut count = Count {
            target: self,
            shared,
            pushed: 0,
        };
        for (index, payload) in payloads.enumerate() {
            match stamps.get_mut(index) {
                Some(stamp) => self.push_uncounted(payload, stamp),
                None => self.push_uncounted(payload, &mut Stamp::default()),
            }
            count.pushed += 1;
        }
    }

    #[inline]
    fn schedule(&self, shared: &Shared) {
        match &self.sub.common.home {
            Some(home) => home.schedule(&self.sub),
            None => shared.schedule(self.sub.clone()),
        }
    }
}

impl<T: Send + Sync + 'static> Route<T> {
    /// `None` when some subscription does not qualify (the key then always takes the
    /// general path, until its list changes).
    fn build(subs: &[Subscription]) -> Option<Self> {
        // Every subscription qualifies before any channel is made (a mailbox makes its
        // channel on first use, and a list that takes the general path must not make them
        // all at once).
        let mut pinned = None;
        let mut cores = Vec::with_capacity(subs.len());
        for sub in subs {
            let common = sub.common();
            if common.once || common.cpu.is_some() {
                return None;
            }
            if let Some(home) = &common.home {
                match pinned {
                    None => pinned = Some(home.runtime.id),
                    Some(id) if id == home.runtime.id => {}
                    Some(_) => return None,
                }
            }
            let core = sub
                .inner
                .core
                .as_any()
                .downcast_ref::<MailboxCore<TypedMsg<T>>>()?;
            cores.push((sub, core));
        }
        if cores.is_empty() {
            // The registry removes a key whose list empties; if that ever changes, the
            // general path handles it.
            return None;
        }
        let targets: Box<[Target<T>]> = cores
            .into_iter()
            .map(|(sub, core)| Target {
                sub: sub.inner.clone(),
                tx: core.sender(),
                cloner: core.cloner(),
                capacity: sub.common().capacity,
                wants_meta: sub.common().wants_meta,
            })
            .collect();
        Some(Route {
            pinned,
            by_value: targets.iter().all(|target| target.cloner.is_some()),
            targets,
        })
    }

    /// Sends `event` along the route from an emit admitted through `shared`'s gate:
    /// `Err(event)` (nothing pushed) when it must take the general path.
    #[inline]
    pub(crate) fn send(
        &self,
        shared: &Shared,
        event: T,
    ) -> Result<Result<Delivery, EmitError<T>>, T> {
        if self.pinned.is_some_and(|id| id != shared.id) {
            return Err(event);
        }
        match &self.targets[..] {
            [target] => {
                if !target.has_room() {
                    return Err(event);
                }
                if target.push(Payload::Owned(event), &mut Stamp::default()) {
                    target.schedule(shared);
                }
            }
            targets => {
                let stamp = &mut Stamp::default();
                // Every one with room before anything is pushed.
                if !targets.iter().all(Target::has_room) {
                    return Err(event);
                }
                let (last, others) = targets.split_last().expect("a route is never empty");
                if self.by_value {
                    // Clones for all but the last, which gets the original.
                    for target in others {
                        let clone = target.cloner.expect("every target takes values");
                        if target.push(Payload::Owned(clone(&event)), stamp) {
                            target.schedule(shared);
                        }
                    }
                    if last.push(Payload::Owned(event), stamp) {
                        last.schedule(shared);
                    }
                } else {
                    let event = Arc::new(event);
                    for target in others {
                        let payload = match target.cloner {
                            Some(clone) => Payload::Owned(clone(&event)),
                            None => Payload::Shared(event.clone()),
                        };
                        if target.push(payload, stamp) {
                            target.schedule(shared);
                        }
                    }
                    if last.push(Payload::Shared(event), stamp) {
                        last.schedule(shared);
                    }
                }
            }
        }
        Ok(Ok(Delivery {
            delivered: self.targets.len(),
            refused: Vec::new(),
        }))
    }
}

impl<T: Send + Sync + 'static> Route<T> {
    /// [`send`](Self::send) for a batch (`emit_batch`): every event to every target, in
    /// order, with one count per target. `slots` are all `Some`; they come back untouched
    /// (`Err`) when the batch must take the general path.
    pub(crate) fn send_batch(&self, shared: &Shared, slots: Vec<Option<T>>) -> FastBatch<T> {
        if self.pinned.is_some_and(|id| id != shared.id) {
            return Err(slots);
        }
        let n = slots.len();
        if !self.targets.iter().all(|target| target.has_room_for(n)) {
            return Err(slots);
        }
        // One stamp per event, shared by every target, when any wants metadata.
        let mut stamps: Vec<Stamp> = if self.targets.iter().any(Target::wants_meta) {
            std::iter::repeat_with(Stamp::default).take(n).collect()
        } else {
            Vec::new()
        };
        let (last, others) = self.targets.split_last().expect("a route is never empty");
        if self.by_value || others.is_empty() {
            for target in others {
                let clone = target.cloner.expect("every target takes values");
                target.push_all(
                    shared,
                    slots
                        .iter()
                        .flatten()
                        .map(|event| Payload::Owned(clone(event))),
                    &mut stamps,
                );
            }
            let events = slots.into_iter().flatten();
            last.push_all(shared, events.map(Payload::Owned), &mut stamps);
        } else {
            let events: Vec<Arc<T>> = slots.into_iter().flatten().map(Arc::new).collect();
            for target in others {
                target.push_all(
                    shared,
                    events.iter().map(|event| match target.cloner {
                        Some(clone) => Payload::Owned(clone(event)),
                        None => Payload::Shared(event.clone()),
                    }),
                    &mut stamps,
                );
            }
            last.push_all(shared, events.into_iter().map(Payload::Shared), &mut stamps);
        }
        Ok(Ok(Delivery {
            delivered: n * self.targets.len(),
            refused: Vec::new(),
        }))
    }
}

/// Calls `f` with the route of `entry` for `T` (`None`: the key takes the general path).
#[inline]
pub(crate) fn with_route<T: Send + Sync + 'static, R>(
    entry: &TypedEntry,
    f: impl FnOnce(Option<&Route<T>>) -> R,
) -> R {
    #[cfg(not(loom))]
    {
        f(any_route::<T>(entry).and_then(|route| route.downcast_ref::<Route<T>>()))
    }
    // Under loom the route is rebuilt for every emit: no cache hides an interleaving.
    #[cfg(loom)]
    {
        f(Route::<T>::build(&entry.subs).as_ref())
    }
}

/// The type-erased route of `entry`, built on first use.
#[cfg(not(loom))]
#[inline]
pub(crate) fn any_route<T: Send + Sync + 'static>(entry: &TypedEntry) -> Option<&AnyRoute> {
    entry
        .route
        .get_or_init(|| Route::<T>::build(&entry.subs).map(|route| Arc::new(route) as AnyRoute))
        .as_ref()
}

impl Emitter {
    /// Whether an emit of this emitter may take the fast path now; the runtime whose gate
    /// it must enter.
    #[inline]
    pub(super) fn fast_shared(&self) -> Option<&Arc<Shared>> {
        let shared = self.fast.as_ref()?;
        if self.linker.inner.hooks.debug_enabled(self.debug) || has_chain() {
            return None;
        }
        Some(shared)
    }

    /// `Ok(result)` when the fast path applied; `Err(event)` to take the general path.
    #[inline]
    pub(super) fn emit_fast<T: Send + Sync + 'static>(
        &self,
        event: T,
    ) -> Result<Result<Delivery, EmitError<T>>, T> {
        self.via_route(event, EmitError::Shutdown, Route::send)
    }

    /// The fast path of `emit_batch` (`slots` all `Some`); `Err(slots)`, untouched, to
    /// take the general path.
    pub(super) fn emit_batch_fast<T: Send + Sync + 'static>(
        &self,
        slots: Vec<Option<T>>,
    ) -> FastBatch<T> {
        self.via_route(
            slots,
            |slots| EmitError::Shutdown(slots.into_iter().flatten().collect()),
            Route::send_batch,
        )
    }

    /// Sends `what` (an event of type `T`, or a batch of them) along `T`'s route, inside
    /// the runtime's gate; `Err(what)` when the fast path does not apply.
    #[inline]
    fn via_route<T: Send + Sync + 'static, P, E>(
        &self,
        what: P,
        shutdown: impl FnOnce(P) -> E,
        send: impl FnOnce(&Route<T>, &Shared, P) -> Result<Result<Delivery, E>, P>,
    ) -> Result<Result<Delivery, E>, P> {
        let Some(shared) = self.fast_shared() else {
            return Err(what);
        };
        let Ok(_entered) = shared.admit() else {
            return Ok(Err(shutdown(what)));
        };
        let snapshot = self.linker.inner.snapshot.load();
        if !snapshot.any().is_empty() {
            return Err(what);
        }
        let Some(entry) = snapshot.typed_entry(TypeId::of::<T>()) else {
            return Err(what);
        };
        with_route(entry, |route| match route {
            Some(route) => send(route, shared, what),
            None => Err(what),
        })
    }
}
