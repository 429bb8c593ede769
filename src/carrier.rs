//! The emission side of a delivery: one event on its way to the matching subscriptions,
//! moved into the only recipient or shared behind one `Arc`.

use std::any::Any;
use std::time::Instant;

use crate::event::{EventId, EventKey, MsgMeta, TypeKey};
use crate::sync::{Arc, Condvar, Mutex};

/// Counts the queued invocations an inline emit waits for (deliveries to dedicated
/// threads); each queued message holds one [`Completion`].
#[derive(Default)]
pub(crate) struct Latch {
    count: Mutex<usize>,
    zero: Condvar,
}

impl Latch {
    /// Waits until every completion was released.
    pub(crate) fn wait(&self) {
        let mut count = self.count.lock();
        while *count != 0 {
            count = self
                .zero
                .wait_timeout(count, std::time::Duration::from_millis(100));
        }
    }
}

/// Released when dropped: after the message's invocation, or when it is discarded or
/// dead-lettered instead.
pub(crate) struct Completion(Arc<Latch>);

impl Drop for Completion {
    fn drop(&mut self) {
        let mut count = self.0.count.lock();
        *count -= 1;
        if *count == 0 {
            self.0.zero.notify_all();
        }
    }
}

/// An event in the emitter's hands: `Option<T>` behind a trait object, so that the
/// (object-safe) strategy and the subscriptions can move it without knowing `T`.
pub(crate) trait Slot: Send {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn payload(&self) -> Option<&(dyn Any + Send + Sync)>;
    fn type_name(&self) -> &'static str;
    fn take_box(&mut self) -> Option<Box<dyn Any + Send + Sync>>;
    fn take_arc(&mut self) -> Option<Arc<dyn Any + Send + Sync>>;
    fn take_slot(&mut self) -> Option<Box<dyn Slot>>;
    /// Drops the event, if still here.
    fn clear(&mut self);
    /// Puts an event back from a shared `Arc` that nobody else holds, or gives it back.
    fn restore(
        &mut self,
        shared: Arc<dyn Any + Send + Sync>,
    ) -> Result<(), Arc<dyn Any + Send + Sync>>;
}

impl<T: Send + Sync + 'static> Slot for Option<T> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn payload(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.as_ref().map(|value| value as &(dyn Any + Send + Sync))
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn take_box(&mut self) -> Option<Box<dyn Any + Send + Sync>> {
        self.take()
            .map(|value| Box::new(value) as Box<dyn Any + Send + Sync>)
    }
    fn take_arc(&mut self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.take()
            .map(|value| Arc::new(value) as Arc<dyn Any + Send + Sync>)
    }
    fn clear(&mut self) {
        *self = None;
    }
    fn take_slot(&mut self) -> Option<Box<dyn Slot>> {
        self.take()
            .map(|value| Box::new(Some(value)) as Box<dyn Slot>)
    }
    fn restore(
        &mut self,
        shared: Arc<dyn Any + Send + Sync>,
    ) -> Result<(), Arc<dyn Any + Send + Sync>> {
        let typed = shared.downcast::<T>()?;
        match Arc::try_unwrap(typed) {
            Ok(value) => {
                *self = Some(value);
                Ok(())
            }
            Err(typed) => Err(typed),
        }
    }
}

/// The key an event is emitted under. A name is borrowed from the caller; its `Arc<str>`
/// is taken from the registry entry when there is one (no allocation), else made once.
#[derive(Clone, Debug)]
pub(crate) enum EmitKey<'a> {
    Type(TypeKey),
    Named(&'a str, Option<Arc<str>>),
}

impl EmitKey<'_> {
    pub(crate) fn make_key(&mut self) -> EventKey {
        match self {
            EmitKey::Type(key) => EventKey::Type(*key),
            EmitKey::Named(name, arc) => {
                EventKey::Named(arc.get_or_insert_with(|| Arc::from(*name)).clone())
            }
        }
    }
}

/// One event on its way to its subscriptions.
pub(crate) struct Carrier<'a> {
    pub(crate) slot: &'a mut dyn Slot,
    pub(crate) shared: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) key: EmitKey<'a>,
    meta: Option<MsgMeta>,
    key_cache: Option<EventKey>,
    /// Set while delivering to a recipient whose invocation the emit waits for.
    pub(crate) wait_for_it: bool,
    pub(crate) latch: Option<Arc<Latch>>,
}

impl<'a> Carrier<'a> {
    pub(crate) fn new(slot: &'a mut dyn Slot, key: EmitKey<'a>) -> Self {
        Self {
            slot,
            shared: None,
            key,
            meta: None,
            key_cache: None,
            wait_for_it: false,
            latch: None,
        }
    }

    /// Moves the event behind one `Arc`, for several recipients.
    pub(crate) fn share(&mut self) {
        if self.shared.is_none() {
            self.shared = self.slot.take_arc();
        }
    }

    /// The shared event: a clone, or for the last recipient the `Arc` itself (so that the
    /// emitter never holds the last reference).
    pub(crate) fn take_shared(&mut self, last: bool) -> Option<Arc<dyn Any + Send + Sync>> {
        if last {
            self.shared.take()
        } else {
            self.shared.clone()
        }
    }

    /// Puts a shared event back into the slot if no subscription kept a reference.
    pub(crate) fn unshare(&mut self) {
        if let Some(shared) = self.shared.take() {
            if let Err(shared) = self.slot.restore(shared) {
                self.shared = Some(shared);
            }
        }
    }

    /// The event's type name.
    pub(crate) fn type_name(&self) -> &'static str {
        self.slot.type_name()
    }

    /// The emission's id and instant, made once per emission, on first demand.
    pub(crate) fn meta(&mut self) -> MsgMeta {
        *self.meta.get_or_insert_with(|| MsgMeta {
            id: EventId::next(),
            at: Instant::now(),
        })
    }

    /// A completion for the message being built, if the emit waits for its invocation.
    pub(crate) fn completion(&mut self) -> Option<Completion> {
        if !self.wait_for_it {
            return None;
        }
        let latch = self.latch.get_or_insert_with(Default::default).clone();
        *latch.count.lock() += 1;
        Some(Completion(latch))
    }

    /// Makes the event's `EventKey` once per emission (dynamic subscriptions need it).
    pub(crate) fn cache_key(&mut self) {
        if self.key_cache.is_none() {
            self.key_cache = Some(self.key.make_key());
        }
    }

    pub(crate) fn cached_key(&self) -> Option<&EventKey> {
        self.key_cache.as_ref()
    }
}
