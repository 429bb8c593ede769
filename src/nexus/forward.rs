//! Forwarding nexus events into ventus emitters (so that timers and sockets drive actors).

use std::fmt;
use std::marker::PhantomData;

use super::event::NexusEvent;
use super::routing::Handler;
use super::{Context, NexusError};
use crate::hooks::{DeadLetterReason, DeadPayload};
use crate::{EmitError, Emitter, EventKey};

/// What a [`Forwarder`] does when the emitter refuses an event as full (`try_emit` never
/// blocks, so a full mailbox never stalls the loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Hand the payload to the nexus's dead letters ([`DeadLetterReason::Dropped`]).
    DeadLetter,
    /// Keep the event and try again on the next pass (at most `retries` times, then a dead
    /// letter). The loop waits at most 1 ms between passes while retries are pending.
    Retry {
        /// How many passes to retry for.
        retries: u32,
    },
}

/// A handler that moves each event's payload (a `T`) into an [`Emitter`] with
/// [`Emitter::try_emit`]. A payload that is not a `T` is reported
/// ([`NexusError::PayloadMismatch`]); an emitter that is shutting down, or refuses for
/// another reason, turns the payload into a dead letter; a full one follows the
/// [`Overflow`] policy.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ventus::{Emitter, Forwarder, Inline, Linker, Nexus, NexusEvent, Overflow};
///
/// let linker = Linker::new();
/// let got = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
/// let g = got.clone();
/// let _sub = linker.on::<u64>().call(move |n: &u64| { g.store(*n, std::sync::atomic::Ordering::Relaxed); }).unwrap();
/// let mut nexus = Nexus::new().unwrap();
/// nexus.add_handler(1, Forwarder::<u64>::new(Emitter::new(&linker, Inline), Overflow::DeadLetter)).unwrap();
/// nexus.producer().push(NexusEvent::new(1, 1, 42u64)).unwrap();
/// nexus.turn(Some(Duration::ZERO)).unwrap();
/// assert_eq!(got.load(std::sync::atomic::Ordering::Relaxed), 42);
/// ```
pub struct Forwarder<T> {
    emitter: Emitter,
    overflow: Overflow,
    attempts: std::collections::HashMap<u64, u32>,
    _payload: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Forwarder<T> {
    /// A forwarder into `emitter` with the `overflow` policy.
    pub fn new(emitter: Emitter, overflow: Overflow) -> Self {
        Self {
            emitter,
            overflow,
            attempts: std::collections::HashMap::new(),
            _payload: PhantomData,
        }
    }
}

impl<T: Send + Sync + 'static> Handler for Forwarder<T> {
    fn handle(&mut self, event: NexusEvent, cx: &mut Context<'_>) {
        let (id, event_type, priority) = (event.id(), event.event_type().clone(), event.priority());
        let payload = match event.into_payload::<T>() {
            Ok(payload) => payload,
            Err(event) => {
                cx.report(NexusError::PayloadMismatch {
                    expected: std::any::type_name::<T>(),
                    event,
                });
                return;
            }
        };
        let dead = |cx: &mut Context<'_>, payload: T| {
            cx.dead_letter(
                DeadLetterReason::Dropped,
                EventKey::of::<T>(),
                Some(DeadPayload(crate::event::DynPayload::Boxed(Box::new(
                    payload,
                )))),
            );
        };
        match self.emitter.try_emit(payload) {
            Ok(_) => {
                self.attempts.remove(&id);
            }
            Err(EmitError::Full(payload)) => match self.overflow {
                Overflow::DeadLetter => dead(cx, payload),
                Overflow::Retry { retries } => {
                    let tried = self.attempts.entry(id).or_insert(0);
                    *tried += 1;
                    if *tried > retries {
                        self.attempts.remove(&id);
                        dead(cx, payload);
                    } else {
                        cx.defer(NexusEvent::new(id, event_type, payload).with_priority(priority));
                    }
                }
            },
            Err(other) => {
                self.attempts.remove(&id);
                dead(cx, other.into_inner());
            }
        }
    }
}

impl<T> fmt::Debug for Forwarder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("emitter", &self.emitter)
            .field("overflow", &self.overflow)
            .finish()
    }
}
