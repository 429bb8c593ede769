//! The std / loom facade.
//!
//! Every atomic, `Arc`, lock, thread-local and snapshot cell used by ventus's protocols
//! comes through this module, so that `RUSTFLAGS="--cfg loom"` swaps them all for loom's
//! model-checked versions (the layout of tokio's `src/loom/`). Under `cfg(loom)` the
//! snapshot cell and the mailbox are stand-ins built on loom's own primitives with the same
//! contract as the real ones (`arc_swap::ArcSwap`, a crossbeam unbounded channel) and never
//! a stronger one: the protocols above them only push, pop and read-modify-write.

// Reference counts are not part of any ventus protocol (they only keep data alive), so `Arc`
// is std's under loom too; loom models the atomics and locks the data holds.
pub(crate) use std::sync::{Arc, Weak};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};

/// Process-wide statics (the global debug flag, id counters that are not part of a
/// protocol). loom objects cannot live in statics, so these are std's under loom too.
pub(crate) mod statics {
    pub(crate) use std::sync::OnceLock;
    pub(crate) use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
}
#[cfg(loom)]
pub(crate) use loom::thread_local;

/// A mutex that ignores poisoning: ventus never holds one of its locks while user code
/// runs, so a poisoned lock only means a panic inside ventus's own bookkeeping, whose
/// state is still consistent at every unlock.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: std::sync::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: std::sync::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poison)) => Some(poison.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// Yields to the scheduler (to loom's under `cfg(loom)`, so that spin loops are modelled).
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// The copy-on-write snapshot cell: `arc_swap::ArcSwap` (a lock-free load) or, under loom,
/// a loom mutex around an `Arc` (same contract: `load` sees the latest `swap`).
pub(crate) struct SnapshotCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<Arc<T>>,
}

impl<T> SnapshotCell<T> {
    /// The `ArcSwap` itself, for an `arc_swap::Cache` kept by an emitting handle.
    #[cfg(not(loom))]
    pub(crate) fn arc_swap(&self) -> &arc_swap::ArcSwap<T> {
        &self.inner
    }

    pub(crate) fn new(value: Arc<T>) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: arc_swap::ArcSwap::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    /// A short-lived view of the current snapshot. Never hold it while running user code
    /// (arc-swap has 8 fast slots per thread): clone what is needed out of it.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<T>> {
        self.inner.load()
    }

    #[cfg(loom)]
    pub(crate) fn load(&self) -> Arc<T> {
        self.inner.lock().unwrap().clone()
    }

    /// Replaces the snapshot and returns the old one, which the caller drops only after it
    /// released its own locks (dropping it may drop user closures).
    pub(crate) fn swap(&self, value: Arc<T>) -> Arc<T> {
        #[cfg(not(loom))]
        {
            self.inner.swap(value)
        }
        #[cfg(loom)]
        {
            std::mem::replace(&mut *self.inner.lock().unwrap(), value)
        }
    }
}

impl<T> std::fmt::Debug for SnapshotCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCell")
    }
}

/// A subscription's mailbox: an unbounded MPSC queue whose length is tracked by the
/// subscription's `pending` counter, not by the queue (see `src/actor/README.md`). Only
/// `push` and `pop` are offered: the protocol must not ask the queue whether it is empty.
pub(crate) struct Mailbox<T> {
    /// Made on the first push: a subscription that never receives anything costs no
    /// channel (about 500 bytes of crossbeam's counters and wakers).
    #[cfg(not(loom))]
    chan: std::sync::OnceLock<(crossbeam_channel::Sender<T>, crossbeam_channel::Receiver<T>)>,
    #[cfg(loom)]
    queue: Arc<loom::sync::Mutex<std::collections::VecDeque<T>>>,
}

/// A handle that pushes into a [`Mailbox`] without touching the mailbox's own memory (the
/// emit fast path keeps one per subscription in its route: the runner writes the lines
/// around the mailbox, and every read of them from an emitter would be a cache miss).
pub(crate) struct MailboxSender<T> {
    #[cfg(not(loom))]
    tx: crossbeam_channel::Sender<T>,
    #[cfg(loom)]
    queue: Arc<loom::sync::Mutex<std::collections::VecDeque<T>>>,
}

impl<T> MailboxSender<T> {
    #[inline]
    pub(crate) fn push(&self, value: T) {
        #[cfg(not(loom))]
        {
            // The mailbox holds the receiver for as long as it lives, and the route holding
            // this sender holds the subscription: never disconnected.
            let _ = self.tx.send(value);
        }
        #[cfg(loom)]
        {
            self.queue.lock().unwrap().push_back(value);
        }
    }
}

impl<T> Mailbox<T> {
    /// A pushing handle (makes the channel if no push did yet).
    pub(crate) fn sender(&self) -> MailboxSender<T> {
        #[cfg(not(loom))]
        {
            MailboxSender {
                tx: self
                    .chan
                    .get_or_init(crossbeam_channel::unbounded)
                    .0
                    .clone(),
            }
        }
        #[cfg(loom)]
        {
            MailboxSender {
                queue: self.queue.clone(),
            }
        }
    }

    pub(crate) fn new() -> Self {
        #[cfg(not(loom))]
        {
            Self {
                chan: std::sync::OnceLock::new(),
            }
        }
        #[cfg(loom)]
        {
            Self {
                queue: Arc::new(loom::sync::Mutex::new(std::collections::VecDeque::new())),
            }
        }
    }

    #[inline]
    pub(crate) fn push(&self, value: T) {
        #[cfg(not(loom))]
        {
            let (tx, _) = self.chan.get_or_init(crossbeam_channel::unbounded);
            // Both ends live in `self`, so the channel cannot be disconnected.
            let _ = tx.send(value);
        }
        #[cfg(loom)]
        {
            self.queue.lock().unwrap().push_back(value);
        }
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        #[cfg(not(loom))]
        {
            // A runner pops only what was counted, so the channel exists by then (the
            // pusher made it before its counting `fetch_add`, which the runner acquired).
            self.chan.get()?.1.try_recv().ok()
        }
        #[cfg(loom)]
        {
            self.queue.lock().unwrap().pop_front()
        }
    }
}

impl<T> std::fmt::Debug for Mailbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailbox")
    }
}

/// Bounded spinning: `crossbeam_utils::Backoff`, or under loom a yield to the model's
/// scheduler on every turn (a model must see every spin as a yield).
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    #[cfg(not(loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn reset(&self) {
        #[cfg(not(loom))]
        self.inner.reset();
    }

    pub(crate) fn snooze(&self) {
        #[cfg(not(loom))]
        self.inner.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }

    /// Whether spinning has stopped paying off; the caller should block instead.
    pub(crate) fn is_completed(&self) -> bool {
        #[cfg(not(loom))]
        {
            self.inner.is_completed()
        }
        #[cfg(loom)]
        {
            false
        }
    }
}

/// A condition variable for the facade's [`Mutex`].
#[derive(Debug, Default)]
pub(crate) struct Condvar {
    #[cfg(not(loom))]
    inner: std::sync::Condvar,
    #[cfg(loom)]
    inner: loom::sync::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner
            .wait(guard)
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Waits at most `timeout` (loom has no clock: there it waits like `wait`).
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        #[cfg(not(loom))]
        {
            match self.inner.wait_timeout(guard, timeout) {
                Ok((guard, _)) => guard,
                Err(poison) => poison.into_inner().0,
            }
        }
        #[cfg(loom)]
        {
            let _ = timeout;
            self.wait(guard)
        }
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

/// Threads: std's, or loom's modelled ones.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{JoinHandle, Thread, current};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{JoinHandle, Thread, current};

    /// Spawns a named thread (names and stack sizes are ignored under loom).
    pub(crate) fn spawn<F>(
        name: String,
        stack_size: Option<usize>,
        body: F,
    ) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        #[cfg(not(loom))]
        {
            let mut builder = std::thread::Builder::new().name(name);
            if let Some(size) = stack_size {
                builder = builder.stack_size(size);
            }
            builder.spawn(body)
        }
        #[cfg(loom)]
        {
            let _ = (name, stack_size);
            Ok(loom::thread::spawn(body))
        }
    }

    /// Whether the thread has finished (under loom: always treated as finished, so that
    /// it is joined; loom has no clock for a grace period anyway).
    pub(crate) fn is_finished(handle: &JoinHandle<()>) -> bool {
        #[cfg(not(loom))]
        {
            handle.is_finished()
        }
        #[cfg(loom)]
        {
            let _ = handle;
            true
        }
    }

    /// Parks for at most `timeout` (a plain park under loom, which has no clock).
    pub(crate) fn park_timeout(timeout: std::time::Duration) {
        #[cfg(not(loom))]
        std::thread::park_timeout(timeout);
        #[cfg(loom)]
        {
            let _ = timeout;
            loom::thread::park();
        }
    }
}

/// The worker pool's run queue: a crossbeam unbounded MPMC channel whose blocking `recv`
/// parks an idle worker and whose `send` wakes one; under loom, a loom mutex-and-condvar
/// queue with the same contract (a send wakes a blocked receiver; no lost wake-ups).
pub(crate) struct RunQueue<T> {
    #[cfg(not(loom))]
    tx: crossbeam_channel::Sender<T>,
    #[cfg(not(loom))]
    rx: crossbeam_channel::Receiver<T>,
    #[cfg(loom)]
    queue: loom::sync::Mutex<std::collections::VecDeque<T>>,
    #[cfg(loom)]
    ready: loom::sync::Condvar,
}

impl<T> RunQueue<T> {
    pub(crate) fn new() -> Self {
        #[cfg(not(loom))]
        {
            let (tx, rx) = crossbeam_channel::unbounded();
            Self { tx, rx }
        }
        #[cfg(loom)]
        {
            Self {
                queue: loom::sync::Mutex::new(std::collections::VecDeque::new()),
                ready: loom::sync::Condvar::new(),
            }
        }
    }

    pub(crate) fn send(&self, value: T) {
        #[cfg(not(loom))]
        {
            // Both ends live in `self`: never disconnected.
            let _ = self.tx.send(value);
        }
        #[cfg(loom)]
        {
            self.queue.lock().unwrap().push_back(value);
            self.ready.notify_one();
        }
    }

    /// Blocks until a value arrives.
    pub(crate) fn recv(&self) -> T {
        #[cfg(not(loom))]
        {
            self.rx.recv().expect("both ends live in the queue")
        }
        #[cfg(loom)]
        {
            let mut queue = self.queue.lock().unwrap();
            loop {
                if let Some(value) = queue.pop_front() {
                    return value;
                }
                queue = self.ready.wait(queue).unwrap();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        #[cfg(not(loom))]
        {
            self.rx.len()
        }
        #[cfg(loom)]
        {
            self.queue.lock().unwrap().len()
        }
    }
}

impl<T> std::fmt::Debug for RunQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunQueue")
    }
}

/// The nexus's wake-up: `mio::Waker` (one per `Poll`) or, under loom, a stand-in that
/// coalesces exactly as mio's does and is never stronger: any number of `wake`s before a
/// `wait` make that one `wait` return, and then they are spent. Under loom the loop's
/// `wait` stands for its `Poll::poll`.
pub(crate) struct LoopWaker {
    #[cfg(not(loom))]
    inner: mio::Waker,
    #[cfg(loom)]
    woken: loom::sync::Mutex<bool>,
    #[cfg(loom)]
    cond: loom::sync::Condvar,
}

impl LoopWaker {
    /// A waker registered with `registry` under `token` (under loom both are ignored).
    #[cfg(not(loom))]
    pub(crate) fn new(registry: &mio::Registry, token: mio::Token) -> std::io::Result<Self> {
        Ok(Self {
            inner: mio::Waker::new(registry, token)?,
        })
    }

    /// A waker registered with `registry` under `token` (under loom both are ignored).
    #[cfg(loom)]
    pub(crate) fn new(registry: &mio::Registry, token: mio::Token) -> std::io::Result<Self> {
        let _ = (registry, token);
        Ok(Self::stand_in())
    }

    /// The loom stand-in, with no poll behind it.
    #[cfg(loom)]
    pub(crate) fn stand_in() -> Self {
        Self {
            woken: loom::sync::Mutex::new(false),
            cond: loom::sync::Condvar::new(),
        }
    }

    /// Makes the loop's current or next wait return. Wakes are not counted.
    pub(crate) fn wake(&self) {
        #[cfg(not(loom))]
        {
            // An eventfd write; it fails only if the poll is gone, and then nobody waits.
            let _ = self.inner.wake();
        }
        #[cfg(loom)]
        {
            *self.woken.lock().unwrap() = true;
            self.cond.notify_one();
        }
    }

    /// Under loom: blocks until a wake arrives, then spends every wake so far.
    #[cfg(loom)]
    pub(crate) fn wait(&self) {
        let mut woken = self.woken.lock().unwrap();
        while !*woken {
            woken = self.cond.wait(woken).unwrap();
        }
        *woken = false;
    }
}

impl std::fmt::Debug for LoopWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopWaker")
    }
}
