//! Push producers: any thread hands events to one or several nexuses.

use std::fmt;

use super::Shared;
use super::event::{EventType, NexusEvent};
use crate::sync::statics::{AtomicU64, OnceLock, Ordering};
use crate::sync::{Arc, Mutex, SnapshotCell};

/// Why a push was refused. Every variant gives the event back.
#[non_exhaustive]
pub enum PushError<T = NexusEvent> {
    /// The producer feeds no nexus.
    NoNexus(T),
    /// The nexus (or one of them, for [`Producer::emit`]) is stopped.
    Stopped(T),
    /// The nexus's inbox is full (the policy: refuse, never block; retry later).
    Full(T),
    /// [`Producer::push`] moves one event, so it needs exactly one nexus: use
    /// [`Producer::emit`] with a `Clone` payload for several.
    SeveralNexuses(T),
}

impl<T> PushError<T> {
    /// The event, given back.
    pub fn into_inner(self) -> T {
        match self {
            PushError::NoNexus(e)
            | PushError::Stopped(e)
            | PushError::Full(e)
            | PushError::SeveralNexuses(e) => e,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            PushError::NoNexus(_) => "no nexus registered with this producer",
            PushError::Stopped(_) => "the nexus is stopped",
            PushError::Full(_) => "the nexus's inbox is full",
            PushError::SeveralNexuses(_) => "push needs exactly one nexus; use emit",
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            PushError::NoNexus(_) => "NoNexus",
            PushError::Stopped(_) => "Stopped",
            PushError::Full(_) => "Full",
            PushError::SeveralNexuses(_) => "SeveralNexuses",
        };
        write!(f, "{name}(..)")
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl<T> std::error::Error for PushError<T> {}

/// A push source: hands events to the nexuses it is registered with, from any thread. It
/// wakes a loop only when that loop is parked (see the nexus's `README.md`). A cheap
/// `Clone` handle; the inbox it feeds is bounded, and a full inbox refuses the event
/// ([`PushError::Full`]) rather than blocking.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ventus::{Nexus, NexusEvent, Producer, PushError};
///
/// let producer = Producer::new();
/// assert!(matches!(producer.push(NexusEvent::new(1, 5, ())), Err(PushError::NoNexus(_))));
/// let mut nexus = Nexus::new().unwrap();
/// nexus.add_producer(&producer);
/// let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
/// let s = seen.clone();
/// nexus.on(5, move |event, _| { s.store(event.id(), std::sync::atomic::Ordering::Relaxed); }).unwrap();
/// producer.push(NexusEvent::new(42, 5, ())).unwrap();
/// nexus.turn(Some(Duration::ZERO)).unwrap();
/// assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 42);
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    /// How many nexuses it feeds; `first` is set before this leaves 0.
    count: AtomicU64,
    /// The first nexus, read by `push` without touching the snapshot.
    first: OnceLock<Arc<Shared>>,
    targets: SnapshotCell<Vec<Arc<Shared>>>,
    writer: Mutex<()>,
}

impl Default for Producer {
    fn default() -> Self {
        Self::new()
    }
}

impl Producer {
    /// A producer that feeds no nexus yet.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                count: AtomicU64::new(0),
                first: OnceLock::new(),
                targets: SnapshotCell::new(Arc::new(Vec::new())),
                writer: Mutex::new(()),
            }),
        }
    }

    pub(crate) fn register(&self, shared: Arc<Shared>) {
        let inner = &*self.inner;
        let writer = inner.writer.lock();
        let current = self.snapshot();
        if current.iter().any(|t| Arc::ptr_eq(t, &shared)) {
            return;
        }
        let mut next: Vec<Arc<Shared>> = current.to_vec();
        next.push(shared.clone());
        let count = next.len() as u64;
        let old = inner.targets.swap(Arc::new(next));
        let _ = inner.first.set(shared);
        // Release: a `push` that reads this count sees `first` set (its Acquire load).
        inner.count.store(count, Ordering::Release);
        drop(writer);
        drop(old);
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Shared>>> {
        let guard = self.inner.targets.load();
        Arc::clone(&guard)
    }

    /// How many nexuses it feeds.
    pub fn nexus_count(&self) -> usize {
        usize::try_from(self.inner.count.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// Pushes `event` into the one nexus this producer feeds.
    ///
    /// # Errors
    ///
    /// [`PushError`], with the event: no nexus, several, stopped, or full.
    #[inline]
    pub fn push(&self, event: NexusEvent) -> Result<(), PushError> {
        // Acquire: pairs with `register`'s Release store, so `first` is set when the count
        // says 1. No snapshot is loaded on this path.
        match self.inner.count.load(Ordering::Acquire) {
            0 => Err(PushError::NoNexus(event)),
            1 => match self.inner.first.get() {
                Some(one) => one.push(event),
                None => unreachable!("set before the count leaves 0"),
            },
            _ => Err(PushError::SeveralNexuses(event)),
        }
    }

    /// Creates one event per nexus (each numbered by its nexus, priority 0) carrying a
    /// clone of `payload`, and pushes it; returns how many nexuses took it.
    ///
    /// # Errors
    ///
    /// [`PushError`] with the payload when no nexus took it (the first refusal's kind).
    pub fn emit<T: Clone + Send + 'static>(
        &self,
        event_type: impl Into<EventType>,
        payload: T,
    ) -> Result<usize, PushError<T>> {
        let event_type = event_type.into();
        let targets = self.snapshot();
        let mut delivered = 0;
        let mut first_error: Option<PushError<()>> = None;
        for target in targets.iter() {
            let event = NexusEvent::new(
                target.factory.next_id(),
                event_type.clone(),
                payload.clone(),
            );
            if let Err(error) = target.push(event) {
                let kind = match error {
                    PushError::Full(_) => PushError::Full(()),
                    _ => PushError::Stopped(()),
                };
                first_error.get_or_insert(kind);
            } else {
                delivered += 1;
            }
        }
        if delivered > 0 {
            return Ok(delivered);
        }
        Err(match first_error {
            None => PushError::NoNexus(payload),
            Some(PushError::Full(())) => PushError::Full(payload),
            Some(_) => PushError::Stopped(payload),
        })
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("nexuses", &self.nexus_count())
            .finish()
    }
}
