//! The shutdown gate: external emits enter and leave it on a per-thread stripe (no cache
//! line that every emitter writes); shutdown closes it and waits until every stripe is
//! empty, after which no external emit can be in the middle of a push.

use crossbeam_utils::CachePadded;

use crate::sync::statics::{AtomicU64 as StaticU64, Ordering as StaticOrdering};
use crate::sync::{AtomicBool, AtomicUsize, Backoff, Ordering, fence};

const STRIPES: usize = 16;

pub(crate) struct Gate {
    closed: AtomicBool,
    stripes: [CachePadded<AtomicUsize>; STRIPES],
}

/// This thread's stripe: threads take stripes round-robin on first use.
fn stripe_index() -> usize {
    static NEXT: StaticU64 = StaticU64::new(0);
    std::thread_local! {
        static STRIPE: usize = (NEXT.fetch_add(1, StaticOrdering::Relaxed) as usize) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

/// Inside the gate until dropped.
pub(crate) struct Entered<'g>(&'g AtomicUsize);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // Release: the emit's pushes and schedules happen-before the closer's wait ends.
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            closed: AtomicBool::new(false),
            stripes: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
        }
    }

    /// Enters, or `None` when the gate is closed.
    #[inline]
    pub(crate) fn enter(&self) -> Option<Entered<'_>> {
        let stripe = &*self.stripes[stripe_index()];
        stripe.fetch_add(1, Ordering::Relaxed);
        // SeqCst fence (Dekker with `close`): either the closer's fence comes first and we
        // see `closed`, or ours does and the closer sees our stripe non-zero and waits.
        #[cfg(not(ventus_mutant = "gate_no_fence"))]
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            stripe.fetch_sub(1, Ordering::Release);
            return None;
        }
        Some(Entered(stripe))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the gate without waiting for the emitters inside. True if this call closed it.
    pub(crate) fn close_nowait(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        fence(Ordering::SeqCst);
        first
    }

    /// Closes the gate and waits until no emitter is inside. True if this call closed it.
    pub(crate) fn close(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        // SeqCst fence: pairs with the one in `enter`.
        fence(Ordering::SeqCst);
        for stripe in &self.stripes {
            let backoff = Backoff::new();
            // Acquire: pairs with `Entered::drop`.
            while stripe.load(Ordering::Acquire) != 0 {
                if backoff.is_completed() {
                    crate::sync::yield_now();
                } else {
                    backoff.snooze();
                }
            }
        }
        first
    }
}
