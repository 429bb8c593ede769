//! The inbox: the bounded queue that producers push into, and the one word that decides
//! when the loop must be woken (see `README.md`, "The parked flag").

// `pub` so that the loom model can drive the protocol itself (re-exported only under
// `cfg(loom)`, hidden).
#![cfg_attr(not(loom), allow(unreachable_pub))]
use crate::sync::{AtomicUsize, BoundedQueue, LoopWaker, Ordering};

/// What a drain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// More events were counted than this drain took: drain again before parking.
    More,
    /// The count went to zero with this drain: the loop is parked, and the next producer
    /// (the one that moves the count from zero) wakes it.
    Parked,
}

/// The inbox of one nexus. `pending` counts the events pushed and not yet taken by the
/// loop; zero *is* the parked flag: the producer that moves it from zero wakes the loop,
/// and only that one (a read-modify-write, never a plain load that skips the wake-up).
#[derive(Debug)]
pub struct Inbox<T> {
    queue: BoundedQueue<T>,
    pending: AtomicUsize,
    waker: LoopWaker,
}

impl<T> Inbox<T> {
    pub(crate) fn new(capacity: usize, waker: LoopWaker) -> Self {
        Self {
            queue: BoundedQueue::new(capacity),
            pending: AtomicUsize::new(0),
            waker,
        }
    }

    /// An inbox whose waker is loom's stand-in (for the loom model).
    #[cfg(loom)]
    pub fn for_model(capacity: usize) -> Self {
        Self::new(capacity, LoopWaker::stand_in())
    }

    /// Pushes `value`; wakes the loop when this push moved the count from zero.
    ///
    /// # Errors
    ///
    /// The value, when the queue is full (the policy: refuse, never block).
    pub fn push(&self, value: T) -> Result<(), T> {
        self.queue.try_push(value)?;
        #[cfg(not(ventus_mutant = "nexus_plain_load_wake"))]
        {
            // AcqRel: Release publishes the push to the loop that takes this count;
            // Acquire orders this read after the loop's releasing `fetch_sub`, so a 0 here
            // means the loop has committed to park (or will find the count non-zero).
            if self.pending.fetch_add(1, Ordering::AcqRel) == 0 {
                self.waker.wake();
            }
        }
        #[cfg(ventus_mutant = "nexus_plain_load_wake")]
        {
            // Broken on purpose: decides "the loop is awake" with a plain load before the
            // increment; the loop can park between the two.
            let before = self.pending.load(Ordering::Acquire);
            self.pending.fetch_add(1, Ordering::AcqRel);
            if before == 0 {
                self.waker.wake();
            }
        }
        Ok(())
    }

    /// Takes at most `max` counted events (they are in the queue: each was pushed before
    /// it was counted) and hands them to `each`; then releases them from the count.
    pub fn drain(&self, max: usize, mut each: impl FnMut(T)) -> Drained {
        // Acquire: pairs with the producers' AcqRel increments, so the `n` pushes counted
        // here are visible to the pops below.
        let n = self.pending.load(Ordering::Acquire);
        let k = n.min(max.max(1));
        if k == 0 {
            return Drained::Parked;
        }
        let mut taken = 0;
        while taken < k {
            match self.queue.pop() {
                Some(value) => {
                    taken += 1;
                    each(value);
                }
                // Cannot happen (counted events are in the queue); never spin on it.
                None => break,
            }
        }
        // AcqRel: Release orders the pops before a producer's increment that sees zero;
        // Acquire sees the pushes of producers counted meanwhile. Returns the count before:
        // `taken` means nothing arrived and the loop is now parked.
        if self.pending.fetch_sub(taken, Ordering::AcqRel) == taken {
            Drained::Parked
        } else {
            Drained::More
        }
    }

    /// Events pushed and not yet taken (a statistic).
    pub(crate) fn len(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Wakes the loop unconditionally (commands, stop).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Under loom: the loop's park (its `Poll::poll`).
    #[cfg(loom)]
    pub fn park(&self) {
        self.waker.wait();
    }
}
