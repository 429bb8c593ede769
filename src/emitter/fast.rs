//! The emit fast path: a typed event, an [`Actors`](super::Actors) strategy, and only
//! pooled, non-once subscriptions with mailboxes typed for the event (the common case of
//! a typed actor system). It skips the type-erased carrier of the general path: one
//! snapshot read (the guard is held only across pushes, which run no user code), one push
//! and one `fetch_add` per subscription, the event moved into the only mailbox or shared
//! behind one `Arc` (the last push takes the `Arc` itself). Anything else (debug, an
//! `emit_and_wait` chain, `Any` subscriptions, once, dedicated, `CpuBound`, a full
//! mailbox) returns the event to the general path, which handles it identically to
//! before: the fast path is an optimisation, never a different semantics.

use super::{Delivery, Emitter};
use crate::actor::current_runtime;
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
        let _entered = match shared.gate.enter() {
            Some(entered) => Some(entered),
            None if current_runtime() == shared.id => None,
            None => return Ok(Err(EmitError::Shutdown(event))),
        };
        let snapshot = self.linker.inner.snapshot.load();
        if !snapshot.any().is_empty() {
            return Err(event);
        }
        let Some(subs) = snapshot.typed(std::any::TypeId::of::<T>()) else {
            return Err(event);
        };
        fn core<T: Send + Sync + 'static>(sub: &Subscription) -> Option<&MailboxCore<TypedMsg<T>>> {
            let common = sub.common();
            // No `is_live` check: the snapshot holds live subscriptions, and one unsubscribed
            // since is handled by its runner (the event is discarded, as on the general path).
            if common.once || common.home.is_some() || common.cpu.is_some() {
                return None;
            }
            sub.inner
                .core
                .as_any()
                .downcast_ref::<MailboxCore<TypedMsg<T>>>()
        }
        match &subs[..] {
            [sub] => {
                let Some(core) = core::<T>(sub) else {
                    return Err(event);
                };
                match core.push_fast(sub.common(), Payload::Owned(event), true) {
                    Ok(owner) => {
                        if owner {
                            shared.schedule(sub.inner.clone());
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
                    match core::<T>(sub) {
                        Some(_) if sub.common().has_room() => {}
                        _ => return Err(event),
                    }
                }
                let mut shared_event = Some(Arc::new(event));
                let last = subs.len() - 1;
                for (index, sub) in subs.iter().enumerate() {
                    let payload = if index == last {
                        shared_event.take()
                    } else {
                        shared_event.clone()
                    };
                    let Some(payload) = payload else { break };
                    let Some(core) = core::<T>(sub) else { continue };
                    if let Ok(true) = core.push_fast(sub.common(), Payload::Shared(payload), false)
                    {
                        shared.schedule(sub.inner.clone());
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
