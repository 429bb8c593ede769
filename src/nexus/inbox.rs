//! The inbox: the bounded queue that producers push into, and the one word that decides
//! when the loop must be woken (see `README.md`, "The parked flag").
//!
//! The queue is a `VecDeque` behind a mutex that the loop takes once per batch, not once
//! per event: it swaps the whole queue out (`Taken`) and dispatches from its own copy, so
//! the loop pays no atomic operation per event and a producer's lock is uncontended but
//! for that swap.

// `pub` so that the loom model can drive the protocol itself (re-exported only under
// `cfg(loom)`, hidden).
#![cfg_attr(not(loom), allow(unreachable_pub))]
use std::collections::VecDeque;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicUsize, LoopWaker, Mutex, Ordering};

/// What a drain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// More events were counted than this drain took: drain again before parking.
    More,
    /// The count went to zero with this drain. The loop may spin a little (checking
    /// [`Inbox::has_pending`]), then [`Inbox::try_park`]s before it blocks.
    Empty,
}

/// The parked flag: the top bit of `pending`, set by the loop only when it is about to
/// block (and nothing is counted), cleared by the one producer that wakes it or by the
/// loop once its wait returned.
const PARKED: usize = 1 << (usize::BITS - 1);

/// The inbox of one nexus. `pending` holds the count of events pushed and not yet taken by
/// the loop, and the parked flag (its top bit). The producer whose increment finds the flag
/// set clears it and wakes the loop, and only that one; every decision is a
/// read-modify-write of this one word, never a plain load that skips the wake-up (the
/// table in `README.md`).
pub struct Inbox<T> {
    /// On a cache line of its own: the loop's spin before parking reads `pending`, and
    /// must not pull the line producers lock and push on.
    queue: CachePadded<Mutex<Queue<T>>>,
    capacity: usize,
    pending: CachePadded<AtomicUsize>,
    waker: LoopWaker,
}

struct Queue<T> {
    items: VecDeque<T>,
    /// Events the loop took and has not dispatched yet (they count against the capacity).
    held: usize,
}

/// The loop's side of the inbox: the events it took and has not handed out yet. Owned by
/// the loop (no lock).
#[derive(Debug)]
pub struct Taken<T> {
    items: VecDeque<T>,
    /// What the inbox's `held` says about `items` (reset when `items` runs dry).
    held: usize,
}

impl<T> Default for Taken<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            held: 0,
        }
    }
}

impl<T> std::fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("capacity", &self.capacity)
            .field("pending", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T> Inbox<T> {
    pub(crate) fn new(capacity: usize, waker: LoopWaker) -> Self {
        Self {
            queue: CachePadded::new(Mutex::new(Queue {
                // A first stretch reserved, so a burst does not start with regrowths.
                items: VecDeque::with_capacity(capacity.clamp(1, 1024)),
                held: 0,
            })),
            capacity: capacity.max(1),
            pending: CachePadded::new(AtomicUsize::new(0)),
            waker,
        }
    }

    /// An inbox whose waker is loom's stand-in (for the loom model).
    #[cfg(loom)]
    pub fn for_model(capacity: usize) -> Self {
        Self::new(capacity, LoopWaker::stand_in())
    }

    /// Pushes `value`; wakes the loop when this push found it parked.
    ///
    /// # Errors
    ///
    /// The value, when the queue is full (the policy: refuse, never block).
    #[inline]
    pub fn push(&self, value: T) -> Result<(), T> {
        {
            let mut queue = self.queue.lock();
            if queue.items.len() + queue.held >= self.capacity {
                return Err(value);
            }
            queue.items.push_back(value);
        }
        #[cfg(not(ventus_mutant = "nexus_plain_load_wake"))]
        {
            // AcqRel: Release publishes the push to the loop that takes this count (its
            // Acquire load in `drain`); Acquire orders this read after the loop's `try_park`,
            // so either the flag is seen here or the loop's compare-exchange sees the count.
            if self.pending.fetch_add(1, Ordering::AcqRel) & PARKED != 0 {
                self.unpark();
            }
        }
        #[cfg(ventus_mutant = "nexus_plain_load_wake")]
        {
            // Broken on purpose: decides "the loop is awake" with a plain load before the
            // increment; the loop can park between the two.
            let before = self.pending.load(Ordering::Acquire);
            self.pending.fetch_add(1, Ordering::AcqRel);
            if before & PARKED != 0 {
                self.unpark();
            }
        }
        Ok(())
    }

    /// Clears the parked flag; the one that cleared it wakes the loop (several producers
    /// may see the flag: one `eventfd` write).
    #[cold]
    fn unpark(&self) {
        // AcqRel: one read-modify-write decides who wakes; the wake is the edge to the loop.
        if self.pending.fetch_and(!PARKED, Ordering::AcqRel) & PARKED != 0 {
            self.waker.wake();
        }
    }

    /// Hands at most `max` events to `each`: first those the loop took earlier
    /// (`taken`); when there are none, it takes every counted event from the queue (they
    /// are there: each was pushed before it was counted) in one swap and releases them from
    /// the count. (`refill`, `batch` and `settle` in one call.)
    pub fn drain(&self, taken: &mut Taken<T>, max: usize, mut each: impl FnMut(T)) -> Drained {
        self.refill(taken);
        for value in Self::batch(taken, max) {
            each(value);
        }
        self.settle(taken)
    }

    /// When the loop holds no taken events: takes every counted event from the queue in
    /// one swap (they are there: each was pushed before it was counted) and releases them
    /// from the count.
    pub fn refill(&self, taken: &mut Taken<T>) {
        if !taken.items.is_empty() {
            return;
        }
        // Acquire: pairs with the producers' AcqRel increments, so the `n` pushes counted
        // here are in the queue for the swap below.
        let n = self.pending.load(Ordering::Acquire) & !PARKED;
        if n == 0 {
            return;
        }
        {
            let mut queue = self.queue.lock();
            if queue.items.len() == n {
                std::mem::swap(&mut queue.items, &mut taken.items);
            } else {
                // Pushed and not counted yet: they stay (the count would go below zero if
                // the loop took them now).
                let k = n.min(queue.items.len());
                taken.items.extend(queue.items.drain(..k));
            }
            queue.held = taken.items.len();
            taken.held = queue.held;
        }
        // AcqRel: Release orders the swap before a later `try_park` / producer; Acquire
        // sees the pushes of producers counted meanwhile.
        self.pending.fetch_sub(taken.items.len(), Ordering::AcqRel);
    }

    /// The next at most `max` (at least 1) taken events, in push order.
    pub fn batch(taken: &mut Taken<T>, max: usize) -> std::collections::vec_deque::Drain<'_, T> {
        let k = max.max(1).min(taken.items.len());
        taken.items.drain(..k)
    }

    /// After a batch: `More` if taken events are left or more were counted; else `Empty`
    /// (and the taken events no longer count against the capacity).
    pub fn settle(&self, taken: &mut Taken<T>) -> Drained {
        if !taken.items.is_empty() || self.has_pending() {
            return Drained::More;
        }
        self.release_held(taken);
        Drained::Empty
    }

    /// The taken events not handed out yet, in push order (to check their priorities).
    pub(crate) fn peek(taken: &Taken<T>, max: usize) -> impl Iterator<Item = &T> {
        taken.items.iter().take(max.max(1))
    }

    /// The loop handed out everything it took: they no longer count against the capacity.
    fn release_held(&self, taken: &mut Taken<T>) {
        if taken.held != 0 {
            taken.held = 0;
            self.queue.lock().held = 0;
        }
    }

    /// Whether events are counted and not taken (the loop's spin before parking reads
    /// this; parking itself is decided by [`try_park`](Self::try_park)).
    #[inline]
    pub fn has_pending(&self) -> bool {
        // Acquire: a `true` is followed by a drain, whose own Acquire load counts.
        self.pending.load(Ordering::Acquire) & !PARKED != 0
    }

    /// The loop is about to block: sets the parked flag if nothing is counted. `true`: it
    /// may block, the next push wakes it. `false`: something was counted, drain instead.
    pub fn try_park(&self) -> bool {
        // AcqRel on success: the producer's increment that follows sees the flag (both are
        // read-modify-writes of this word, so one of them comes first). Acquire on failure:
        // the counted pushes are visible to the drain that follows.
        self.pending
            .compare_exchange(0, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The loop's wait returned (a wake, a socket, a timer): clears the parked flag if no
    /// producer did. A producer that cleared it has woken the loop (or will): that wake
    /// makes one later wait return at once, which is harmless.
    pub fn unparked(&self) {
        // AcqRel: a read-modify-write, so a producer's increment either came before (and
        // it cleared the flag and woke) or comes after (and sees no flag: no wake needed).
        self.pending.fetch_and(!PARKED, Ordering::AcqRel);
    }

    /// Events pushed and not yet taken (a statistic).
    pub(crate) fn len(&self) -> usize {
        self.pending.load(Ordering::Relaxed) & !PARKED
    }

    /// Wakes the loop unconditionally (commands, stop).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Under loom: a wake for another reason than a push (a stop, a timer change).
    #[cfg(loom)]
    pub fn wake_for_model(&self) {
        self.waker.wake();
    }

    /// Under loom: the loop's blocking wait (its `Poll::poll`).
    #[cfg(loom)]
    pub fn park(&self) {
        self.waker.wait();
    }
}
