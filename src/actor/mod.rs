//! The actor runtime: a pool of worker threads and dedicated threads that run
//! subscriptions, scheduled by each subscription's pending counter (see `README.md` in this
//! folder for the protocol).

#[cfg(not(loom))]
mod cpu;
mod dedicated;
mod gate;

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

pub(crate) use dedicated::Dedicated;

use crate::error::{BuildError, WouldDeadlock};
use crate::hooks::{DeadLetterReason, panic_message};
use crate::subscription::SubArc;
use crate::sync::statics::{AtomicU64 as StaticU64, OnceLock, Ordering as StaticOrdering};
use crate::sync::{
    Arc, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering, RunQueue, fence, thread, thread_local,
};
use gate::Gate;

/// The default number of events a worker runs for one subscription before it gives the
/// others a turn.
pub const DEFAULT_BATCH: usize = 64;

/// The default [`RuntimeBuilder::linger`].
pub const DEFAULT_LINGER: Duration = Duration::from_micros(2);

/// The largest [`RuntimeBuilder::poll`] (longer values are clamped to it).
pub const MAX_POLL: Duration = Duration::from_millis(10);

/// The largest [`RuntimeBuilder::linger`] (longer values are clamped to it).
pub const MAX_LINGER: Duration = Duration::from_millis(1);

/// The default [`RuntimeBuilder::poll`].
pub const DEFAULT_POLL: Duration = Duration::from_micros(20);

/// Where a subscription's handler runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// Where the emitter's strategy says: the emitting thread for [`Inline`](crate::Inline),
    /// the runtime's worker pool for [`Actors`](crate::Actors).
    #[default]
    Default,
    /// On a thread of its own, whatever the emitter (the runtime's: the subscription's
    /// builder `runtime`, else the linker's, else the default runtime).
    Dedicated(Spin),
    /// On the runtime's own rayon pool, whatever the emitter: each run of the subscription
    /// (up to `batch` events) is one rayon job; one invocation at a time per subscription,
    /// different subscriptions in parallel. For CPU-bound handlers, which may use rayon's
    /// parallel iterators themselves. (Under loom, where rayon cannot run, the worker pool
    /// stands in.)
    CpuBound,
}

/// How a dedicated thread waits for work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Spin {
    /// Spin briefly with `crossbeam_utils::Backoff`, then park until an emit wakes it (the
    /// default: no CPU while idle; a wake-up costs a futex call, a few microseconds).
    #[default]
    Backoff,
    /// Never park: poll the pending counter forever (checking the shutdown flag every
    /// turn). The lowest latency, at the cost of one core kept at 100% for as long as the
    /// subscription lives.
    Forever,
}

// The id of the runtime whose worker or dedicated thread this is (0: none). loom's
// `thread_local!` takes no `const` blocks.
#[cfg(not(loom))]
thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}
#[cfg(loom)]
thread_local! {
    static CURRENT: Cell<u64> = Cell::new(0);
}

// Whether this thread is one of a runtime's pool workers (not a dedicated thread).
#[cfg(not(loom))]
thread_local! {
    static POOL_WORKER: Cell<bool> = const { Cell::new(false) };
}
#[cfg(loom)]
thread_local! {
    static POOL_WORKER: Cell<bool> = Cell::new(false);
}

/// Whether this thread is a pool worker: a wait here could hold the very worker that the
/// awaited handlers need (so `emit_and_wait` and `ask` refuse with `WouldDeadlock`).
pub(crate) fn on_pool_worker() -> bool {
    POOL_WORKER.with(Cell::get)
}

pub(crate) fn current_runtime() -> u64 {
    CURRENT.with(Cell::get)
}

fn set_pool_worker() {
    POOL_WORKER.with(|worker| worker.set(true));
}

fn set_current_runtime(id: u64) {
    CURRENT.with(|current| current.set(id));
}

pub(crate) enum Task {
    Run(SubArc),
    Stop,
}

/// What a runtime's threads share.
pub(crate) struct Shared {
    pub(crate) id: u64,
    name: String,
    workers: usize,
    pub(crate) batch: usize,
    default_capacity: usize,
    default_policy: crate::Policy,
    pub(crate) linger: Duration,
    pub(crate) poll: Duration,
    stack_size: Option<usize>,
    max_threads: usize,
    queue: RunQueue<Task>,
    pub(crate) gate: Gate,
    /// Scheduled runs not finished yet (pool and dedicated): 0 with the gate empty means
    /// quiescent.
    outstanding: AtomicUsize,
    idle_lock: Mutex<()>,
    idle: Condvar,
    /// Past a shutdown deadline: queued events become dead letters instead of running.
    pub(crate) abandon: AtomicBool,
    /// The threads have been told to stop.
    stopping: AtomicBool,
    /// Stop the threads when `outstanding` reaches 0 (a shutdown from a runtime thread).
    stop_when_idle: AtomicBool,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    live_threads: AtomicUsize,
    dedicated: Mutex<Vec<crate::sync::Weak<dedicated::Waker>>>,
    /// On lines of their own: every run writes them, and nothing an emitter touches
    /// (`outstanding`, the gate) should move with them.
    stats: crossbeam_utils::CachePadded<PoolStats>,
    /// ventus's own rayon pool, built on first use.
    #[cfg(not(loom))]
    cpu: std::sync::OnceLock<Option<Arc<rayon::ThreadPool>>>,
    #[cfg_attr(loom, allow(dead_code))]
    cpu_threads: usize,
    /// The aggregate histograms of everything this runtime's threads run
    /// ([`RuntimeBuilder::histograms`]).
    latency: Option<Box<crate::stats::RuntimeLatency>>,
}

#[derive(Default)]
struct PoolStats {
    runs: crate::sync::AtomicU64,
    reschedules: crate::sync::AtomicU64,
    busy_nanos: crate::sync::AtomicU64,
    parks: crate::sync::AtomicU64,
    spins: crate::sync::AtomicU64,
}

impl Shared {
    /// Lets an emit in: `Ok(Some(entered))` through the gate (left when dropped), `Ok(None)`
    /// for the runtime's own threads once the gate is closed (their emits are part of the
    /// drain), `Err(())` for an external emit after shutdown.
    #[inline]
    pub(crate) fn admit(&self) -> Result<Option<gate::Entered<'_>>, ()> {
        match self.gate.enter() {
            Some(entered) => Ok(Some(entered)),
            None if current_runtime() == self.id => Ok(None),
            None => Err(()),
        }
    }

    /// The aggregate histograms, if the runtime keeps them.
    #[inline]
    pub(crate) fn latency(&self) -> Option<&Mutex<crate::stats::LatencyStats>> {
        self.latency.as_deref().map(|latency| &latency.hist)
    }

    /// Adds a thread's spin-wait rounds (one read-modify-write per run, none when 0).
    #[inline]
    pub(crate) fn count_spins(&self, spins: u64) {
        if spins != 0 {
            self.stats.spins.fetch_add(spins, Ordering::Relaxed);
        }
    }

    /// Schedules a subscription whose pending counter this thread moved from 0.
    pub(crate) fn schedule(&self, sub: SubArc) {
        if self.is_stopping() {
            // The threads are stopping (a handler still running past a shutdown deadline
            // emitted): no worker will take a run now; dead-letter it here, never strand it.
            sub.core
                .abandon(&sub.common, DeadLetterReason::LeftAtShutdown);
            return;
        }
        // AcqRel: counted before it can run and finish (the decrement cannot overtake it).
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        self.queue.send(Task::Run(sub));
    }

    /// Under loom, where rayon cannot run, `CpuBound` subscriptions run on the pool.
    #[cfg(loom)]
    pub(crate) fn schedule_cpu(self: &Arc<Self>, sub: SubArc) {
        self.schedule(sub);
    }

    /// A scheduled run finished (the subscription went idle).
    pub(crate) fn finished(&self) {
        // AcqRel: the run's effects happen-before a waiter that sees 0.
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _lock = self.idle_lock.lock();
            self.idle.notify_all();
            drop(_lock);
            // SeqCst fence: pairs with the one in `detach` (Dekker): either this thread sees
            // the request to stop when idle, or `detach` sees `outstanding` at 0.
            fence(Ordering::SeqCst);
            if self.stop_when_idle.load(Ordering::Relaxed) {
                self.stop_threads();
            }
        }
    }

    /// Counts a run scheduled on a dedicated thread.
    pub(crate) fn begin(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn abandoning(&self) -> bool {
        self.abandon.load(Ordering::Acquire)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn quiescent(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) == 0
    }

    /// Tells every thread to stop (they exit after their current run).
    fn stop_threads(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(latency) = &self.latency {
            // Emitters need not timestamp messages for a runtime that is stopping.
            latency.stop();
        }
        for _ in 0..self.workers {
            self.queue.send(Task::Stop);
        }
        for waker in self
            .dedicated
            .lock()
            .iter()
            .filter_map(crate::sync::Weak::upgrade)
        {
            waker.wake();
        }
    }

    /// Waits until quiescent or until `deadline`; true if quiescent.
    fn wait_quiescent(&self, deadline: Option<Instant>) -> bool {
        let mut guard = self.idle_lock.lock();
        loop {
            if self.quiescent() {
                return true;
            }
            let slice = Duration::from_millis(10);
            let wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(slice),
                    _ => return self.quiescent(),
                },
                None => slice,
            };
            guard = self.idle.wait_timeout(guard, wait);
        }
    }

    pub(crate) fn spawn(
        self: &Arc<Self>,
        what: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), SpawnError> {
        if self.live_threads.fetch_add(1, Ordering::AcqRel) >= self.max_threads {
            self.live_threads.fetch_sub(1, Ordering::AcqRel);
            return Err(SpawnError::TooManyThreads(self.max_threads));
        }
        let shared = self.clone();
        let name = format!("{}-{what}", self.name);
        let handle = thread::spawn(name, self.stack_size, move || {
            set_current_runtime(shared.id);
            body();
            shared.live_threads.fetch_sub(1, Ordering::AcqRel);
        })
        .map_err(|error| {
            self.live_threads.fetch_sub(1, Ordering::AcqRel);
            SpawnError::Io(error.to_string())
        })?;
        self.threads.lock().push(handle);
        Ok(())
    }

    pub(crate) fn register_dedicated(&self, waker: &Arc<dedicated::Waker>) {
        let mut wakers = self.dedicated.lock();
        wakers.retain(|waker| waker.strong_count() > 0);
        wakers.push(Arc::downgrade(waker));
    }

    fn worker(self: &Arc<Self>) {
        set_pool_worker();
        loop {
            if self.queue.len() == 0 {
                // About to block on an empty run queue (a park in crossbeam's `recv`).
                self.stats.parks.fetch_add(1, Ordering::Relaxed);
            }
            match self.queue.recv() {
                Task::Stop => return,
                Task::Run(sub) => {
                    let more = if self.abandoning() {
                        sub.core
                            .abandon(&sub.common, DeadLetterReason::LeftAtShutdown);
                        false
                    } else {
                        self.stats.runs.fetch_add(1, Ordering::Relaxed);
                        let started = Instant::now();
                        let run = || sub.core.run_batch(&sub.common, self, self.linger);
                        let mut more = run();
                        // Give others a turn only when someone waits for one: a reschedule
                        // onto an empty queue would only wake another worker.
                        while more && self.queue.len() == 0 && !self.abandoning() {
                            more = run();
                        }
                        if more && self.abandoning() {
                            // Past a shutdown deadline the Stop tasks may already be queued:
                            // never reschedule behind them; dead-letter the rest here.
                            sub.core
                                .abandon(&sub.common, DeadLetterReason::LeftAtShutdown);
                            more = false;
                        }
                        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        self.stats.busy_nanos.fetch_add(busy, Ordering::Relaxed);
                        more
                    };
                    if more {
                        self.stats.reschedules.fetch_add(1, Ordering::Relaxed);
                        self.queue.send(Task::Run(sub));
                    } else {
                        // The last handle may drop user closures, whose Drop may panic.
                        drop_caught(sub);
                        self.finished();
                    }
                }
            }
        }
    }
}

pub(crate) fn drop_caught(sub: SubArc) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(sub))) {
        eprintln!(
            "ventus: a subscription's Drop panicked: {}",
            panic_message(&*panic)
        );
    }
}

/// Why a thread could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpawnError {
    TooManyThreads(usize),
    Io(String),
}

/// The handle whose last drop shuts the runtime down.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if current_runtime() == self.shared.id {
            // Dropped from one of its own threads: never join that thread. Close the gate
            // and let the last run to finish stop the threads.
            detach(&self.shared);
        } else {
            let _ = shutdown(&self.shared, None);
        }
    }
}

/// Shutdown from one of the runtime's own threads: close the gate without waiting for
/// anyone (an external emitter inside it may be waiting for this very thread), and let the
/// run that brings `outstanding` to 0 stop the threads. The pool and the dedicated threads
/// keep draining until then, so chains complete.
fn detach(shared: &Arc<Shared>) {
    shared.gate.close_nowait();
    shared.stop_when_idle.swap(true, Ordering::AcqRel);
    // SeqCst fence: pairs with the one in `finished`.
    fence(Ordering::SeqCst);
    if shared.quiescent() {
        shared.stop_threads();
    }
}

/// What a shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Every queued event was handled (false: the deadline passed and what was left went
    /// to the dead letters as `LeftAtShutdown`).
    pub drained: bool,
    /// Every thread was joined (false: a handler was still running at the deadline; its
    /// thread was left to finish on its own).
    pub joined: bool,
    /// This call did the shutdown (false: it had been shut down before).
    pub first: bool,
}

fn shutdown(shared: &Arc<Shared>, deadline: Option<Instant>) -> ShutdownReport {
    let first = shared.gate.close();
    let drained = shared.wait_quiescent(deadline);
    if !drained {
        // Past the deadline: dead-letter what is queued; give running handlers a moment.
        shared.abandon.store(true, Ordering::Release);
        shared.wait_quiescent(Some(Instant::now() + Duration::from_millis(100)));
    }
    shared.stopping.store(true, Ordering::Release);
    shared.stop_threads();
    let handles = std::mem::take(&mut *shared.threads.lock());
    let mut joined = true;
    // With a deadline, a thread still busy after a short grace (a handler that does not
    // return) is left to finish on its own rather than joined.
    let grace = deadline.map(|_| Instant::now() + Duration::from_millis(100));
    for handle in handles {
        if let Some(grace) = grace {
            let backoff = crate::sync::Backoff::new();
            while !thread::is_finished(&handle) && Instant::now() < grace {
                if backoff.is_completed() {
                    thread::park_timeout(Duration::from_millis(1));
                } else {
                    backoff.snooze();
                }
            }
            if !thread::is_finished(&handle) {
                joined = false;
                continue;
            }
        }
        if handle.join().is_err() {
            joined = false;
        }
    }
    ShutdownReport {
        drained,
        joined,
        first,
    }
}

/// The actor runtime: a worker pool and dedicated threads.
///
/// Cheap to clone. Dropping the last handle shuts it down (drains every queued event and
/// joins the threads; from one of its own threads it only closes the gate, and the
/// threads stop themselves once idle).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use ventus::{Actors, Emitter, Linker, Runtime};
///
/// let runtime = Runtime::builder().workers(2).build().unwrap();
/// let linker = Linker::new();
/// let sum = Arc::new(AtomicU64::new(0));
/// let s = sum.clone();
/// let _sub = linker.on::<u64>().call(move |n: &u64| { s.fetch_add(*n, Ordering::Relaxed); }).unwrap();
/// let emitter = Emitter::new(&linker, Actors::new(&runtime));
/// for n in 1..=100u64 {
///     emitter.emit(n).unwrap();
/// }
/// runtime.wait_idle().unwrap();
/// assert_eq!(sum.load(Ordering::Relaxed), 5050);
/// runtime.shutdown();
/// ```
#[derive(Clone)]
pub struct Runtime {
    owner: Arc<Owner>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.owner.shared;
        f.debug_struct("Runtime")
            .field("name", &shared.name)
            .field("workers", &shared.workers)
            .field("closed", &shared.gate.is_closed())
            .finish()
    }
}

impl Default for Runtime {
    /// The process-wide default runtime, started on first use (workers: the number of
    /// cores). It lives until the process ends: call [`shutdown_default`](crate::shutdown_default)
    /// before `main` returns to drain it.
    fn default() -> Self {
        default_runtime().clone()
    }
}

fn default_runtime() -> &'static Runtime {
    static DEFAULT: OnceLock<Runtime> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        Runtime::builder()
            .name("ventus-default")
            .build()
            .expect("the default runtime's configuration is valid")
    })
}

/// Drains and stops the default runtime (if it was started): every queued event is
/// handled and its threads are joined. Emits to it afterwards are refused with
/// `EmitError::Shutdown`.
pub fn shutdown_default() {
    // Only if someone started it: never start it just to stop it.
    if DEFAULT_STARTED.load(StaticOrdering::Acquire) != 0 {
        default_runtime().shutdown();
    }
}

static DEFAULT_STARTED: crate::sync::statics::AtomicU8 = crate::sync::statics::AtomicU8::new(0);

impl Runtime {
    /// A builder.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    /// The subscription defaults of linkers bound to this runtime.
    pub(crate) fn subscription_defaults(&self) -> (usize, crate::Policy) {
        let shared = &self.owner.shared;
        (shared.default_capacity, shared.default_policy)
    }

    /// The runtime's name (its threads are named `NAME-worker-N`, `NAME-dedicated-N`).
    pub fn name(&self) -> &str {
        &self.owner.shared.name
    }

    /// Refuses new external emits, handles every queued event (emits made by handlers
    /// during the drain are accepted, so chains complete), then stops and joins every
    /// thread. From one of the runtime's own threads it only closes the gate (a thread
    /// never joins itself) and the threads stop once idle.
    pub fn shutdown(&self) -> ShutdownReport {
        if current_runtime() == self.owner.shared.id {
            let first = !self.owner.shared.gate.is_closed();
            detach(&self.owner.shared);
            return ShutdownReport {
                drained: false,
                joined: false,
                first,
            };
        }
        shutdown(&self.owner.shared, None)
    }

    /// Like [`shutdown`](Self::shutdown), waiting at most `timeout` for the drain: what is
    /// still queued then is reported per subscription to the dead letters
    /// (`LeftAtShutdown`). `Duration::MAX` waits forever. Past the deadline it gives
    /// running handlers two short grace periods (100 ms each) to return before it stops
    /// waiting for their threads, so it returns within `timeout` + 200 ms.
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport {
        if current_runtime() == self.owner.shared.id {
            return self.shutdown();
        }
        shutdown(&self.owner.shared, Instant::now().checked_add(timeout))
    }

    /// Whether the runtime refuses external emits (shutting down or shut down).
    pub fn is_shutdown(&self) -> bool {
        self.owner.shared.gate.is_closed()
    }

    /// Counts work done outside the runtime's threads as outstanding until the guard is
    /// dropped, so that [`wait_idle`](Self::wait_idle) and [`shutdown`](Self::shutdown)
    /// wait for it: a custom strategy that defers emissions holds one per deferred
    /// emission (see `examples/custom_emitter.rs`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ventus::Runtime;
    ///
    /// let runtime = Runtime::builder().workers(1).build().unwrap();
    /// let guard = runtime.work_guard();
    /// assert_eq!(runtime.wait_idle_timeout(Duration::from_millis(10)), Ok(false));
    /// drop(guard);
    /// assert_eq!(runtime.wait_idle_timeout(Duration::from_secs(5)), Ok(true));
    /// ```
    pub fn work_guard(&self) -> WorkGuard {
        let shared = self.owner.shared.clone();
        shared.begin();
        WorkGuard { shared }
    }

    /// Waits until every scheduled run has finished (nested emits included).
    ///
    /// # Errors
    ///
    /// [`WouldDeadlock`] from one of the runtime's own threads (it would wait for itself).
    pub fn wait_idle(&self) -> Result<(), WouldDeadlock> {
        if current_runtime() == self.owner.shared.id {
            return Err(WouldDeadlock);
        }
        self.owner.shared.wait_quiescent(None);
        Ok(())
    }

    /// Like [`wait_idle`](Self::wait_idle), at most `timeout`; `Ok(true)` if idle.
    ///
    /// # Errors
    ///
    /// [`WouldDeadlock`] from one of the runtime's own threads.
    pub fn wait_idle_timeout(&self, timeout: Duration) -> Result<bool, WouldDeadlock> {
        if current_runtime() == self.owner.shared.id {
            return Err(WouldDeadlock);
        }
        Ok(self
            .owner
            .shared
            .wait_quiescent(Instant::now().checked_add(timeout)))
    }

    /// A snapshot of the runtime's counters.
    pub fn stats(&self) -> RuntimeStats {
        let shared = &self.owner.shared;
        RuntimeStats {
            workers: shared.workers,
            threads: shared.live_threads.load(Ordering::Relaxed),
            run_queue: shared.queue.len(),
            outstanding: shared.outstanding.load(Ordering::Relaxed),
            runs: shared.stats.runs.load(Ordering::Relaxed),
            reschedules: shared.stats.reschedules.load(Ordering::Relaxed),
            busy: Duration::from_nanos(shared.stats.busy_nanos.load(Ordering::Relaxed)),
            parks: shared.stats.parks.load(Ordering::Relaxed),
            spins: shared.stats.spins.load(Ordering::Relaxed),
        }
    }

    /// A copy of the runtime's aggregate latency histograms: every invocation its threads
    /// (pool workers, dedicated threads, its rayon pool) ran from their queues; `None`
    /// unless built with [`RuntimeBuilder::histograms`]. (An inline drain, where an inline
    /// emitter runs an idle pooled subscription on its own thread, is not the runtime's
    /// and is not in it.)
    ///
    /// ```
    /// use ventus::{Actors, Emitter, Linker, Runtime};
    ///
    /// let runtime = Runtime::builder().workers(1).histograms(true).build()?;
    /// let linker = Linker::new();
    /// let _sub = linker.on::<u32>().call(|_: &u32| {})?;
    /// let emitter = Emitter::new(&linker, Actors::new(&runtime));
    /// for n in 0..100u32 {
    ///     emitter.emit(n)?;
    /// }
    /// runtime.wait_idle()?;
    /// let latency = runtime.latency().expect("built with histograms");
    /// assert_eq!(latency.service.len(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn latency(&self) -> Option<crate::LatencyStats> {
        self.owner.shared.latency().map(|hist| hist.lock().clone())
    }
}

/// A runtime's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Worker threads in the pool.
    pub workers: usize,
    /// Threads alive (workers and dedicated).
    pub threads: usize,
    /// Subscriptions waiting in the run queue.
    pub run_queue: usize,
    /// Scheduled runs not finished.
    pub outstanding: usize,
    /// Batches run by the pool.
    pub runs: u64,
    /// Batches that left events behind and were rescheduled (a subscription gave others a
    /// turn).
    pub reschedules: u64,
    /// Time the pool's workers spent running batches (lingering included), summed.
    pub busy: Duration,
    /// Times a worker found the run queue empty and blocked on it.
    pub parks: u64,
    /// Spin-wait rounds: a pool worker lingering on a drained subscription (one round per
    /// look at its counter, about 64 pause instructions), a dedicated thread's idle loop
    /// (one per turn: a poll, a backoff snooze, a timed wake-up from parking, or a spin of
    /// `Spin::Forever`). Dedicated threads add theirs when they park, leave, or every
    /// 65,536 turns.
    pub spins: u64,
}

/// Outstanding work on a [`Runtime`] until dropped ([`Runtime::work_guard`]).
#[must_use = "the work counts as outstanding only while the guard lives"]
pub struct WorkGuard {
    shared: Arc<Shared>,
}

impl fmt::Debug for WorkGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkGuard")
            .field("runtime", &self.shared.name)
            .finish()
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        self.shared.finished();
    }
}

/// Configures a [`Runtime`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RuntimeBuilder {
    workers: Option<usize>,
    default_capacity: usize,
    default_policy: crate::Policy,
    batch: usize,
    linger: Duration,
    poll: Duration,
    name: String,
    stack_size: Option<usize>,
    max_threads: usize,
    cpu_threads: Option<usize>,
    histograms: bool,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self {
            workers: None,
            default_capacity: crate::DEFAULT_CAPACITY,
            default_policy: crate::Policy::Block,
            batch: DEFAULT_BATCH,
            linger: DEFAULT_LINGER,
            poll: DEFAULT_POLL,
            name: "ventus".into(),
            stack_size: None,
            max_threads: 4096,
            cpu_threads: None,
            histograms: false,
        }
    }
}

impl RuntimeBuilder {
    /// Worker threads in the pool (at least 1; default: the number of cores).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The mailbox capacity of subscriptions made in linkers bound to this runtime
    /// (`LinkerBuilder::runtime`) that set none themselves (at least 1; default
    /// [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY)).
    pub fn default_capacity(mut self, capacity: usize) -> Self {
        self.default_capacity = capacity;
        self
    }

    /// The full-mailbox policy of subscriptions made in linkers bound to this runtime that
    /// set none themselves (default `Block`).
    pub fn default_policy(mut self, policy: crate::Policy) -> Self {
        self.default_policy = policy;
        self
    }

    /// Events a worker runs for one subscription before giving others a turn (at least 1;
    /// default [`DEFAULT_BATCH`]).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// How long a pool worker that has run everything queued for a subscription keeps
    /// watching it before releasing it (default [`DEFAULT_LINGER`]). Lingering saves the
    /// next emit a schedule (a run-queue push and often a thread wake-up) at the cost of
    /// that much worker time per drain; `Duration::ZERO` turns it off; at most
    /// [`MAX_LINGER`].
    pub fn linger(mut self, linger: Duration) -> Self {
        // Bounded, so that a worker never holds a drained subscription for long.
        self.linger = linger.min(MAX_LINGER);
        self
    }

    /// How long an idle dedicated thread (`Spin::Backoff`) polls for work before backing
    /// off and parking (default [`DEFAULT_POLL`]; at most [`MAX_POLL`]). Polling keeps
    /// request/reply latency low at the cost of that much CPU after each burst.
    pub fn poll(mut self, poll: Duration) -> Self {
        // Bounded: an idle dedicated thread must park eventually (a `Duration::MAX` poll
        // would keep a core busy forever; `Spin::Forever` is the explicit way to do that).
        self.poll = poll.min(MAX_POLL);
        self
    }

    /// The prefix of the threads' names (default `"ventus"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The threads' stack size in bytes (default: std's).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// The most threads (workers and dedicated) the runtime may run at once (default
    /// 4096): a dedicated subscription past it is refused with
    /// [`SubscribeError::Spawn`](crate::SubscribeError::Spawn).
    pub fn max_threads(mut self, max: usize) -> Self {
        self.max_threads = max;
        self
    }

    /// Threads of the runtime's own rayon pool, which runs `CpuBound` subscriptions and
    /// the [`Rayon`](crate::Rayon) strategy's deliveries (default: as many as workers;
    /// 0 is taken as 1). The pool is built on first use; its threads do not count toward
    /// `max_threads`.
    pub fn cpu_threads(mut self, threads: usize) -> Self {
        self.cpu_threads = Some(threads.max(1));
        self
    }

    /// Aggregate latency histograms (queueing and service time, [`Runtime::latency`]) of
    /// every invocation the runtime's threads run from their run queue or dedicated loop,
    /// whatever the subscription (default off). The cost: two histograms for the runtime
    /// (about 60 KB), one lock of the runtime's histograms per 64 invocations and one at
    /// the end of each run (at low load, about one per invocation, shared by all the
    /// runtime's threads), and, from the start of such a runtime until its shutdown, an
    /// emit instant (and a small box) on every message of every emitter in the process,
    /// since an emitter cannot know which runtime will run it. For a few subscriptions,
    /// their own `histograms()` cost less.
    pub fn histograms(mut self, on: bool) -> Self {
        self.histograms = on;
        self
    }

    /// Starts the runtime.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWorkers`] / [`BuildError::ZeroBatch`]; [`BuildError::Spawn`] when
    /// a worker thread cannot be started (or `max_threads` is below `workers`).
    pub fn build(self) -> Result<Runtime, BuildError> {
        static IDS: StaticU64 = StaticU64::new(1);
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |cores| cores.get()));
        if workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.batch == 0 {
            return Err(BuildError::ZeroBatch);
        }
        if self.default_capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        let shared = Arc::new(Shared {
            id: IDS.fetch_add(1, StaticOrdering::Relaxed),
            name: self.name,
            workers,
            batch: self.batch,
            default_capacity: self.default_capacity,
            default_policy: self.default_policy,
            // loom has no clock: lingering and polling are real-time optimisations only.
            linger: if cfg!(loom) {
                Duration::ZERO
            } else {
                self.linger
            },
            poll: if cfg!(loom) {
                Duration::ZERO
            } else {
                self.poll
            },
            stack_size: self.stack_size,
            max_threads: self.max_threads,
            queue: RunQueue::new(),
            gate: Gate::new(),
            outstanding: AtomicUsize::new(0),
            idle_lock: Mutex::new(()),
            idle: Condvar::new(),
            abandon: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stop_when_idle: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            live_threads: AtomicUsize::new(0),
            dedicated: Mutex::new(Vec::new()),
            stats: Default::default(),
            latency: self
                .histograms
                .then(|| Box::new(crate::stats::RuntimeLatency::new())),
            #[cfg(not(loom))]
            cpu: std::sync::OnceLock::new(),
            cpu_threads: self.cpu_threads.unwrap_or(workers),
        });
        let owner = Arc::new(Owner {
            shared: shared.clone(),
        });
        for index in 0..workers {
            let worker = shared.clone();
            if let Err(error) = shared.spawn(&format!("worker-{index}"), move || worker.worker()) {
                // Dropping `owner` stops the workers already started.
                drop(owner);
                return Err(BuildError::Spawn(match error {
                    SpawnError::TooManyThreads(max) => {
                        format!("max_threads ({max}) is below workers")
                    }
                    SpawnError::Io(error) => error,
                }));
            }
        }
        if shared.name == "ventus-default" {
            DEFAULT_STARTED.store(1, StaticOrdering::Release);
        }
        Ok(Runtime { owner })
    }
}
