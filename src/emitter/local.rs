//! [`LocalEmitter`]: an emitting handle for one thread or one caller, which keeps the last
//! registry snapshot it read (an `arc_swap::Cache`) and the last route it took.

#[cfg(not(loom))]
use std::any::TypeId;
use std::fmt;

use super::{Delivery, EmitKey, Emitter};
use crate::error::EmitError;
use crate::event::TypeKey;

#[cfg(not(loom))]
use super::fast::{AnyRoute, Route, any_route};
#[cfg(not(loom))]
use crate::linker::LinkerInner;
#[cfg(not(loom))]
use crate::linker::registry::Snapshot;
#[cfg(not(loom))]
use crate::sync::Arc;

/// An emitting handle for one thread (or one caller): the same deliveries as its
/// [`Emitter`], and cheaper typed emits through an [`Actors`](crate::Actors) strategy.
///
/// [`Emitter::emit`] takes `&self`, so every call reads the registry snapshot anew
/// (`arc_swap`'s `load`, about 10 ns) and looks the event's type up in it. A
/// `LocalEmitter` takes `&mut self` and keeps what it read last: while no subscription has
/// changed, an emit of the same type as the previous one costs a pointer comparison
/// instead. Everything else (debug lines, `Any` subscriptions, once subscriptions, full
/// mailboxes, other strategies) behaves exactly as through the emitter.
///
/// The trade: the handle holds the last snapshot it read until its next emit or its drop,
/// so a subscription removed since then (and its handler's captures) is freed only then,
/// on the emitting thread (outside the shutdown gate). Make one per thread or per producer
/// loop (its methods take `&mut self`), rather than one per emit.
///
/// ```
/// use ventus::{Actors, Emitter, Linker, Runtime};
///
/// let runtime = Runtime::builder().workers(1).build()?;
/// let linker = Linker::builder().runtime(&runtime).build()?;
/// let _sub = linker.on::<u64>().call(|_: &u64| {})?;
/// let mut local = Emitter::new(&linker, Actors::new(&runtime)).local();
/// for tick in 0..1_000u64 {
///     local.emit(tick)?;
/// }
/// runtime.wait_idle()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LocalEmitter {
    emitter: Emitter,
    #[cfg(not(loom))]
    cache: arc_swap::Cache<Source, Arc<Snapshot>>,
    /// The route of the last typed emit: the type, the snapshot it was read from (held,
    /// so that no later snapshot can have its address), the route.
    #[cfg(not(loom))]
    last: Option<(TypeId, Arc<Snapshot>, AnyRoute)>,
}

/// The linker's snapshot cell, as `arc_swap::Cache` wants it.
#[cfg(not(loom))]
struct Source(Arc<LinkerInner>);

#[cfg(not(loom))]
impl std::ops::Deref for Source {
    type Target = arc_swap::ArcSwap<Snapshot>;

    fn deref(&self) -> &Self::Target {
        self.0.snapshot.arc_swap()
    }
}

impl fmt::Debug for LocalEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmitter")
            .field("emitter", &self.emitter)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// A [`LocalEmitter`] of this emitter: the same deliveries, cheaper repeated emits.
    pub fn local(&self) -> LocalEmitter {
        LocalEmitter {
            emitter: self.clone(),
            #[cfg(not(loom))]
            cache: arc_swap::Cache::new(Source(self.linker.inner.clone())),
            #[cfg(not(loom))]
            last: None,
        }
    }
}

impl LocalEmitter {
    /// The emitter this handle emits through.
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// [`Emitter::emit`].
    ///
    /// # Errors
    ///
    /// As for [`Emitter::emit`].
    pub fn emit<T: Send + Sync + 'static>(&mut self, event: T) -> Result<Delivery, EmitError<T>> {
        match self.emit_cached(event) {
            Ok(result) => result,
            Err(event) => {
                self.emitter
                    .dispatch(Some(event), EmitKey::Type(TypeKey::of::<T>()), false)
            }
        }
    }

    /// [`Emitter::try_emit`]: never blocks.
    ///
    /// # Errors
    ///
    /// As for [`Emitter::emit`].
    pub fn try_emit<T: Send + Sync + 'static>(
        &mut self,
        event: T,
    ) -> Result<Delivery, EmitError<T>> {
        // The fast path never waits: a full mailbox sends the event the general way.
        match self.emit_cached(event) {
            Ok(result) => result,
            Err(event) => {
                self.emitter
                    .dispatch(Some(event), EmitKey::Type(TypeKey::of::<T>()), true)
            }
        }
    }

    /// The fast path through the cached snapshot and route; `Err(event)` for the general
    /// path.
    #[cfg(not(loom))]
    #[inline]
    fn emit_cached<T: Send + Sync + 'static>(
        &mut self,
        event: T,
    ) -> Result<Result<Delivery, EmitError<T>>, T> {
        let Some(shared) = self.emitter.fast_shared() else {
            return Err(event);
        };
        // The snapshot and the route first, outside the gate: refreshing the cache may drop
        // an old snapshot, and with it the handlers of subscriptions removed since.
        let snapshot = self.cache.load();
        let id = TypeId::of::<T>();
        let fresh = match &self.last {
            Some((last_id, last, _)) => *last_id != id || !Arc::ptr_eq(last, snapshot),
            None => true,
        };
        if fresh {
            let route = if snapshot.any().is_empty() {
                snapshot.typed_entry(id).and_then(any_route::<T>).cloned()
            } else {
                None
            };
            // Kept only while it is the route of the current snapshot: no older snapshot is
            // held beyond the cache's.
            self.last = route.map(|route| (id, snapshot.clone(), route));
        }
        let Some((_, _, route)) = &self.last else {
            return Err(event);
        };
        let Some(route) = route.downcast_ref::<Route<T>>() else {
            return Err(event);
        };
        let Ok(_entered) = shared.admit() else {
            return Ok(Err(EmitError::Shutdown(event)));
        };
        route.send(shared, event)
    }

    #[cfg(loom)]
    fn emit_cached<T: Send + Sync + 'static>(
        &mut self,
        event: T,
    ) -> Result<Result<Delivery, EmitError<T>>, T> {
        self.emitter.emit_fast(event)
    }
}
