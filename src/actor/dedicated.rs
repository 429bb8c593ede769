//! Dedicated threads: one subscription, one thread, whatever the emitter.
//!
//! An emitter that moves the subscription's pending counter from 0 counts the run on the
//! runtime, raises `scheduled` and unparks the thread; the thread runs until the counter is
//! back at 0, then reports the run finished. `std::thread::park`'s token makes a wake-up
//! sent before the thread parks return at once, so none is lost.
//!
//! Exit (after `unsubscribe`, or at shutdown): the thread raises `exited` and then re-reads
//! the pending counter with a read-modify-write; an emitter that moves the counter from 0
//! reads `exited` after its own read-modify-write on the counter. Either the thread sees
//! the event (and stays), or the emitter sees `exited` (and discards the event itself as a
//! dead letter): no event is stranded on a thread that is gone.

use std::time::Duration;

use crate::actor::{Shared, Spin};
use crate::hooks::DeadLetterReason;
use crate::subscription::{ACTIVE, CLAIMED, SubArc};
use crate::sync::statics::OnceLock;
use crate::sync::{Arc, AtomicBool, Backoff, Ordering, thread};

/// Wakes a dedicated thread.
#[derive(Default)]
pub(crate) struct Waker {
    thread: OnceLock<thread::Thread>,
    scheduled: AtomicBool,
    exited: AtomicBool,
}

impl Waker {
    pub(crate) fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// A subscription's dedicated home.
pub(crate) struct Dedicated {
    pub(crate) waker: Arc<Waker>,
    pub(crate) runtime: Arc<Shared>,
    pub(crate) spin: Spin,
}

impl Dedicated {
    pub(crate) fn new(runtime: Arc<Shared>, spin: Spin) -> Self {
        let waker = Arc::new(Waker::default());
        runtime.register_dedicated(&waker);
        Self {
            waker,
            runtime,
            spin,
        }
    }

    /// Called by the emitter that moved the pending counter from 0.
    pub(crate) fn schedule(&self, sub: &SubArc) {
        // Acquire: pairs with the thread's release of `exited` (see the module docs; the
        // emitter's fetch_add on `pending` came first).
        if self.waker.exited.load(Ordering::Acquire) {
            // The thread is gone: this emitter owns the run; discard what is queued.
            let reason = if sub.common.state.load(Ordering::Acquire) == ACTIVE {
                DeadLetterReason::LeftAtShutdown
            } else {
                DeadLetterReason::DiscardedAfterUnsubscribe
            };
            sub.core.abandon(&sub.common, reason);
            return;
        }
        self.runtime.begin();
        // Release: the run is counted before the thread can finish it.
        self.waker.scheduled.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Starts the thread.
    pub(crate) fn start(&self, sub: SubArc) -> Result<(), super::SpawnError> {
        let waker = self.waker.clone();
        let runtime = self.runtime.clone();
        let spin = self.spin;
        let name = format!("dedicated-{}", sub.common.id.get());
        self.runtime
            .spawn(&name, move || run(sub, waker, runtime, spin))
    }
}

fn run(sub: SubArc, waker: Arc<Waker>, runtime: Arc<Shared>, spin: Spin) {
    let _ = waker.thread.set(thread::current());
    let common = &sub.common;
    let backoff = Backoff::new();
    let mut idle_since: Option<std::time::Instant> = None;
    loop {
        // AcqRel: acquires the emitter's count of the run (and its push).
        if waker.scheduled.swap(false, Ordering::AcqRel) {
            if runtime.abandoning() {
                sub.core.abandon(common, DeadLetterReason::LeftAtShutdown);
            } else {
                while sub
                    .core
                    .run_batch(common, runtime.batch, &runtime.abandon, Duration::ZERO)
                {
                }
            }
            runtime.finished();
            backoff.reset();
            idle_since = None;
            continue;
        }
        let state = common.state.load(Ordering::Acquire);
        let done = state != ACTIVE && !(state == CLAIMED && common.invocations() == 0);
        if done || runtime.is_stopping() {
            // AcqRel read-modify-write: pairs with the emitter's read of `exited` after its
            // own read-modify-write on `pending`.
            waker.exited.swap(true, Ordering::AcqRel);
            // A read-modify-write: the latest value of `pending` (see the module docs).
            let idle = common.pending.fetch_add(0, Ordering::AcqRel) == 0
                && !waker.scheduled.load(Ordering::Acquire);
            if idle {
                break;
            }
            waker.exited.swap(false, Ordering::AcqRel);
        }
        if cfg!(loom) {
            // loom has no clock, and its park token is lost when an unpark arrives while
            // the thread is blocked on a lock (std keeps it): under loom the idle wait is a
            // yield, which the model schedules like any other thread switch.
            crate::sync::yield_now();
            continue;
        }
        match spin {
            Spin::Forever => std::hint::spin_loop(),
            Spin::Backoff => {
                // Poll at a short fixed interval first (cheap wake-ups for request/reply
                // traffic), then back off, then park.
                let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() < runtime.poll {
                    std::hint::spin_loop();
                } else if backoff.is_completed() {
                    // Bounded even without a wake-up: shutdown and unsubscribe re-check.
                    thread::park_timeout(Duration::from_millis(100));
                } else {
                    backoff.snooze();
                }
            }
        }
    }
    drop(waker);
    crate::actor::drop_caught(sub);
}
