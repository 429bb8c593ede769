//! The emit fast path: a typed event, an [`Actors`](super::Actors) strategy, and only
//! pooled, non-once subscriptions with mailboxes typed for the event (the common case of
//! a typed actor system). It skips the type-erased carrier of the general path: one
//! snapshot read (the guard is held only across pushes, which run no user code), one push
//! and one `fetch_add` per subscription, the event moved into the only mailbox or shared
//! behind one `Arc` (the last push takes the `Arc` itself), or, for subscriptions made with
//! `by_value()`, cloned (the last recipient gets the original). Anything else (debug, an
//! `emit_and_wait` chain, `Any` subscriptions, once, dedicated, `CpuBound`, a full
//! mailbox) returns the event to the general path, which handles it identically to
//! before: the fast path is an optimisation, never a different semantics.

use super::{Delivery, Emitter};
use crate::carrier::has_chain;
use crate::error::EmitError;
use crate::event::{Payload, TypedMsg};
use crate::subscription::{MailboxCore, Subscription};
use crate::sync::Arc;

impl Emitter {
    /// `Ok(result)` when the fast path applied; `Err(event)` to take the general path.
    #[inline]
    pub(super) fn emit_fast<T: Send + Sync + 'static>(
        &self,
        event: T,
    ) -> Result<Result<Delivery, EmitError<T>>, T> {
        let Some(shared) = &self.fast else {
            return Err(event);
        };
        if self.linker.inner.hooks.debug_enabled(self.debug) || has_chain() {
            return Err(event);
        }
        let Ok(_entered) = shared.admit() else {
            return Ok(Err(EmitError::Shutdown(event)));
        };
        let snapshot = self.linker.inner.snapshot.load();
        if !snapshot.any().is_empty() {
            return Err(event);
        }
        let Some(subs) = snapshot.typed(std::any::TypeId::of::<T>()) else {
            return Err(event);
        };
        // A dedicated subscription qualifies when its thread belongs to this runtime (the
        // gate entered above is then its gate too).
        fn core<'s, T: Send + Sync + 'static>(
            sub: &'s Subscription,
            shared: &Arc<crate::actor::Shared>,
        ) -> Option<&'s MailboxCore<TypedMsg<T>>> {
            if let Some(home) = &sub.common().home {
                if !Arc::ptr_eq(&home.runtime, shared) {
                    return None;
                }
            }
            typed_core::<T>(sub)
        }
        let schedule = |sub: &Subscription| match &sub.common().home {
            Some(home) => home.schedule(&sub.inner),
            None => shared.schedule(sub.inner.clone()),
        };
        fn typed_core<T: Send + Sync + 'static>(
            sub: &Subscription,
        ) -> Option<&MailboxCore<TypedMsg<T>>> {
            let common = sub.common();
            // No `is_live` check: the snapshot holds live subscriptions, and one unsubscribed
            // since is handled by its runner (the event is discarded, as on the general path).
            if common.once || common.cpu.is_some() {
                return None;
            }
            sub.inner
                .core
                .as_any()
                .downcast_ref::<MailboxCore<TypedMsg<T>>>()
        }
        match &subs[..] {
            // The registry removes a key whose list empties; the general path handles it
            // anyway if that ever changes.
            [] => Err(event),
            [sub] => {
                let Some(core) = core::<T>(sub, shared) else {
                    return Err(event);
                };
                match core.push_fast(sub.common(), Payload::Owned(event), true) {
                    Ok(owner) => {
                        if owner {
                            schedule(sub);
                        }
                        Ok(Ok(Delivery {
                            delivered: 1,
                            refused: Vec::new(),
                        }))
                    }
                    Err(Payload::Owned(event)) => Err(event),
                    Err(Payload::Shared(_)) => unreachable!("given back as it was given"),
                }
            }
            subs => {
                // Every one eligible, with room (a soft bound, as documented for
                // concurrent producers), before anything is pushed.
                for sub in subs {
                    match core::<T>(sub, shared) {
                        Some(_) if sub.common().has_room() => {}
                        _ => return Err(event),
                    }
                }
                let last = subs.len() - 1;
                if subs
                    .iter()
                    .all(|sub| core::<T>(sub, shared).is_some_and(|c| c.cloner().is_some()))
                {
                    // Every one takes events by value: clones for all but the last, which
                    // gets the original.
                    let mut event = Some(event);
                    for (index, sub) in subs.iter().enumerate() {
                        let Some(core) = core::<T>(sub, shared) else {
                            continue;
                        };
                        let value = match (index == last, &event, core.cloner()) {
                            (true, _, _) => event.take(),
                            (false, Some(original), Some(clone)) => Some(clone(original)),
                            _ => None,
                        };
                        let Some(value) = value else { break };
                        if let Ok(true) = core.push_fast(sub.common(), Payload::Owned(value), false)
                        {
                            schedule(sub);
                        }
                    }
                } else {
                    let mut shared_event = Some(Arc::new(event));
                    for (index, sub) in subs.iter().enumerate() {
                        let Some(core) = core::<T>(sub, shared) else {
                            continue;
                        };
                        let payload = match (&shared_event, core.cloner()) {
                            // By value, cloned out of the shared event.
                            (Some(arc), Some(clone)) if index != last => Payload::Owned(clone(arc)),
                            _ if index == last => match shared_event.take() {
                                Some(arc) => Payload::Shared(arc),
                                None => break,
                            },
                            (Some(arc), _) => Payload::Shared(arc.clone()),
                            (None, _) => break,
                        };
                        if let Ok(true) = core.push_fast(sub.common(), payload, false) {
                            schedule(sub);
                        }
                    }
                }
                Ok(Ok(Delivery {
                    delivered: subs.len(),
                    refused: Vec::new(),
                }))
            }
        }
    }
}
