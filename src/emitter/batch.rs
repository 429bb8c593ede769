//! Batches: [`Emitter::emit_batch`](crate::Emitter::emit_batch) and the [`Batch`] a
//! strategy receives.
//!
//! The actor strategy's fast path reads the snapshot once for the whole batch, pushes every
//! event into each matching mailbox and counts them with one `fetch_add` per mailbox (one
//! schedule at most): the per-event costs left are the pushes themselves. It applies when
//! every matching subscription is a live, non-once, pooled subscription with a mailbox
//! typed for the event and room for the whole batch; otherwise each event goes its own way,
//! exactly as `emit` would send it.

use std::any::{Any, TypeId};
use std::fmt;

use super::{Delivery, Emission, Merge};
use crate::actor::{self, Runtime};
use crate::carrier::{Carrier, EmitKey, Slot, current_chain};
use crate::error::DispatchError;
use crate::event::TypeKey;
use crate::linker::Linker;
use crate::subscription::{BatchItems, Subscription};
use crate::sync::Arc;

/// The events of a batch, type-erased.
pub(crate) trait BatchSlots {
    fn len(&self) -> usize;
    fn slot(&mut self, index: usize) -> &mut dyn Slot;
    /// Every slot at once (disjoint borrows, for parallel delivery).
    #[cfg_attr(loom, allow(dead_code))]
    fn slots_mut(&mut self) -> Vec<&mut dyn Slot>;
    fn payload_type(&self) -> TypeId;
    /// The events, moved into the one recipient.
    fn owned(&mut self) -> &mut dyn BatchItems;
    /// The events, each moved behind one `Arc`, for several recipients.
    fn share(&mut self) -> Box<dyn SharedItems + '_>;
}

/// A batch shared by several recipients: clones of each `Arc`, the last recipient taking
/// the `Arc`s themselves (the emitter never holds the last reference).
pub(crate) trait SharedItems {
    fn for_recipient(&mut self, last: bool) -> &mut dyn BatchItems;
}

impl<T: Send + Sync + 'static> BatchItems for Vec<Option<T>> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn item(&mut self, index: usize) -> &mut dyn Any {
        &mut self[index]
    }
}

impl<T: Send + Sync + 'static> BatchSlots for Vec<Option<T>> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn slot(&mut self, index: usize) -> &mut dyn Slot {
        &mut self[index]
    }
    fn slots_mut(&mut self) -> Vec<&mut dyn Slot> {
        self.iter_mut().map(|slot| slot as &mut dyn Slot).collect()
    }
    fn payload_type(&self) -> TypeId {
        TypeId::of::<T>()
    }
    fn owned(&mut self) -> &mut dyn BatchItems {
        self
    }
    fn share(&mut self) -> Box<dyn SharedItems + '_> {
        let arcs = self
            .iter_mut()
            .map(|slot| slot.take().map(Arc::new))
            .collect();
        Box::new(Shared::<T> {
            arcs,
            scratch: None,
            last: false,
        })
    }
}

struct Shared<T> {
    arcs: Vec<Option<Arc<T>>>,
    scratch: Option<Arc<T>>,
    last: bool,
}

impl<T: Send + Sync + 'static> SharedItems for Shared<T> {
    fn for_recipient(&mut self, last: bool) -> &mut dyn BatchItems {
        self.last = last;
        self
    }
}

impl<T: Send + Sync + 'static> BatchItems for Shared<T> {
    fn len(&self) -> usize {
        self.arcs.len()
    }
    fn item(&mut self, index: usize) -> &mut dyn Any {
        if self.last {
            &mut self.arcs[index]
        } else {
            self.scratch = self.arcs[index].clone();
            &mut self.scratch
        }
    }
}

/// A batch of events of one type, as a [`Strategy`](crate::Strategy) sees it.
pub struct Batch<'a> {
    pub(super) linker: &'a Linker,
    pub(super) slots: &'a mut dyn BatchSlots,
    pub(super) key: TypeKey,
    pub(super) no_wait: bool,
    pub(super) debug: bool,
    /// Events every subscription refused (they go back to the caller).
    pub(super) refused: Vec<usize>,
    pub(super) error: Option<DispatchError>,
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("linker", &self.linker.name())
            .field("key", &self.key)
            .field("len", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Batch<'_> {
    /// The linker the batch is emitted in.
    pub fn linker(&self) -> &Linker {
        self.linker
    }

    /// How many events the batch holds (taken or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    /// Handles the events one by one, as single emissions (each event's refusal is kept,
    /// and the event goes back to the caller). Returns the deliveries summed.
    pub fn each(
        &mut self,
        mut dispatch: impl FnMut(&mut Emission<'_>) -> Result<Delivery, DispatchError>,
    ) -> Delivery {
        let mut total = Delivery::default();
        for index in 0..self.slots.len() {
            let mut emission = Emission {
                linker: self.linker,
                carrier: Carrier::new(self.slots.slot(index), EmitKey::Type(self.key)),
                no_wait: self.no_wait,
                debug: self.debug,
                target: None,
            };
            match dispatch(&mut emission) {
                Ok(delivery) => total.absorb(delivery),
                Err(error) => {
                    self.refused.push(index);
                    self.error.get_or_insert(error);
                }
            }
        }
        total
    }

    /// Delivers every event on this thread, as [`Emission::deliver_inline`] does.
    pub fn deliver_inline(&mut self) -> Delivery {
        self.each(|emission| emission.deliver_inline())
    }

    /// Queues the batch on `runtime`: one snapshot read, and where every matching
    /// subscription is a pooled one typed for the events with room for all of them, one
    /// push per event and one count per mailbox; otherwise event by event.
    ///
    /// # Errors
    ///
    /// [`DispatchError::Shutdown`] when the runtime refuses external emits (every event
    /// stays in the batch).
    pub fn deliver_to(&mut self, runtime: &Runtime) -> Result<Delivery, DispatchError> {
        let shared = runtime.shared();
        let Ok(_entered) = shared.admit() else {
            return Err(DispatchError::Shutdown);
        };
        if let Some(delivery) = self.fast(shared) {
            return Ok(delivery);
        }
        Ok(self.each(|emission| emission.deliver(Some(shared))))
    }

    /// The fast path, or `None` when some event must go its own way.
    fn fast(&mut self, pool: &Arc<actor::Shared>) -> Option<Delivery> {
        if self.debug || current_chain().is_some() {
            return None;
        }
        let count = self.slots.len();
        let (keyed, any) = {
            let snapshot = self.linker.inner.snapshot.load();
            let keyed = snapshot.typed(self.key.id()).cloned();
            let any = snapshot.any();
            let any = (!any.is_empty()).then(|| any.clone());
            (keyed, any)
        };
        let keyed = keyed.as_deref().unwrap_or(&[]);
        let any = any.as_deref().unwrap_or(&[]);
        let payload = self.slots.payload_type();
        let mut targets: Vec<&Subscription> = Vec::new();
        for sub in (Merge { a: keyed, b: any }) {
            let common = sub.common();
            if !common.is_live() {
                continue;
            }
            let fits = !common.once
                && common.home.is_none()
                && common.cpu.is_none()
                && sub.inner.core.batch_type() == Some(payload)
                && common
                    .pending
                    .load(crate::sync::Ordering::Relaxed)
                    .saturating_add(count)
                    <= common.capacity;
            if !fits {
                return None;
            }
            targets.push(sub);
        }
        let mut delivery = Delivery::default();
        // One stamp per event, shared by every subscription, when any wants metadata.
        let mut stamps: Vec<crate::event::Stamp> =
            if targets.iter().any(|sub| sub.common().wants_meta()) {
                std::iter::repeat_with(Default::default)
                    .take(count)
                    .collect()
            } else {
                Vec::new()
            };
        match targets.as_slice() {
            [] => {}
            [sub] => {
                if sub
                    .inner
                    .core
                    .push_batch(sub.common(), self.slots.owned(), &mut stamps)
                {
                    pool.schedule(sub.inner.clone());
                }
                delivery.delivered = count;
            }
            subs => {
                let mut shared = self.slots.share();
                let last = subs.len() - 1;
                for (index, sub) in subs.iter().enumerate() {
                    let items = shared.for_recipient(index == last);
                    if sub.inner.core.push_batch(sub.common(), items, &mut stamps) {
                        pool.schedule(sub.inner.clone());
                    }
                }
                delivery.delivered = count * subs.len();
            }
        }
        Some(delivery)
    }
}
