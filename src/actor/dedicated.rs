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
    /// Under loom: a wake-up token behind a mutex and condvar, with `park`'s semantics (a
    /// wake before the wait makes the wait return at once; no more than one token is
    /// kept). loom's own park loses the token when the unpark arrives while the thread is
    /// blocked on a lock, and a yield loop instead overflows loom's histories.
    #[cfg(loom)]
    token: (crate::sync::Mutex<bool>, crate::sync::Condvar),
}

impl Waker {
    pub(crate) fn wake(&self) {
        #[cfg(loom)]
        {
            *self.token.0.lock() = true;
            self.token.1.notify_all();
        }
        #[cfg(not(loom))]
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// Under loom: waits for a wake-up token and consumes it.
    #[cfg(loom)]
    fn wait(&self) {
        let mut token = self.token.0.lock();
        while !*token {
            token = self.token.1.wait(token);
        }
        *token = false;
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

/// Sets `flag` to `value` with a read-modify-write (AcqRel), as a compare-exchange: only
/// this thread writes the flag. (A compare-exchange rather than `swap`: loom 0.7.2 was seen
/// to let an unconditional read-modify-write of an `AtomicBool` read a stale value, which
/// deadlocked a correct model; `loom-tests/README.md` has the minimal case.)
fn raise(flag: &AtomicBool, value: bool) {
    let _ = flag.compare_exchange(!value, value, Ordering::AcqRel, Ordering::Acquire);
}

fn run(sub: SubArc, waker: Arc<Waker>, runtime: Arc<Shared>, spin: Spin) {
    let _ = waker.thread.set(thread::current());
    let common = &sub.common;
    let backoff = Backoff::new();
    let mut idle_since: Option<std::time::Instant> = None;
    // Spin-wait rounds not yet added to the runtime's count.
    let mut spins = 0u64;
    loop {
        // A load first: a failed compare-exchange still takes the line from the emitter
        // that is about to set the flag (polling with it cost every emit a cache miss). A
        // stale `false` only means another turn: the flag stays set until taken here.
        // AcqRel: acquires the emitter's count of the run (and its push).
        if waker.scheduled.load(Ordering::Relaxed)
            && waker
                .scheduled
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            if runtime.abandoning() {
                sub.core.abandon(common, DeadLetterReason::LeftAtShutdown);
            } else {
                while sub.core.run_batch(common, &runtime, Duration::ZERO) {}
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
            #[cfg(not(ventus_mutant = "dedicated_exit_load"))]
            let idle = {
                raise(&waker.exited, true);
                // A read-modify-write: the latest value of `pending` (see the module docs).
                common.pending.fetch_add(0, Ordering::AcqRel) == 0
                    && !waker.scheduled.load(Ordering::Acquire)
            };
            // Mutant: "idle?" decided by a load of `pending` before `exited` is raised, so
            // an emitter that counts its event in between sees the thread still there and
            // only wakes it, and the thread leaves with the event queued.
            #[cfg(ventus_mutant = "dedicated_exit_load")]
            let idle = {
                let idle = common.pending.load(Ordering::Acquire) == 0
                    && !waker.scheduled.load(Ordering::Acquire);
                crate::sync::yield_now();
                raise(&waker.exited, true);
                idle
            };
            if idle {
                break;
            }
            raise(&waker.exited, false);
        }
        #[cfg(loom)]
        {
            // loom has no clock: the idle wait is the token wait (see `Waker::token`).
            waker.wait();
            continue;
        }
        // Published when the thread parks or leaves, and every 2^16 rounds: never on the
        // way from a run back to polling, where a request/reply round trip waits.
        spins += 1;
        if spins == 1 << 16 {
            runtime.count_spins(std::mem::take(&mut spins));
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
                    runtime.count_spins(std::mem::take(&mut spins));
                    // Bounded even without a wake-up: shutdown and unsubscribe re-check.
                    thread::park_timeout(Duration::from_millis(100));
                } else {
                    backoff.snooze();
                }
            }
        }
    }
    runtime.count_spins(spins);
    drop(waker);
    crate::actor::drop_caught(sub);
}
