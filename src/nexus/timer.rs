//! Timers inside the loop: a heap keyed by (deadline, sequence), no thread per timer; and
//! the `Clock` they read.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::event::{EventFactory, EventType, NexusEvent};
use crate::sync::statics::{AtomicU8, Ordering};

/// A source of time for a nexus's timers.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Instant;

    /// Whether this clock follows real time (then the loop waits for deadlines precisely);
    /// a manual clock does not: the loop waits until it is advanced.
    fn is_real_time(&self) -> bool {
        true
    }

    /// Called once per nexus: `wake` wakes that nexus's loop (a manual clock calls it on
    /// every advance).
    fn on_advance(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        let _ = wake;
    }
}

/// The real clock: `Instant::now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to: timer tests are deterministic with it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ventus::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(3));
/// assert_eq!(clock.now() - start, Duration::from_secs(3));
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

#[derive(Default)]
struct ManualInner {
    offset: Duration,
    base: Option<Instant>,
    wakers: Vec<Arc<dyn Fn() + Send + Sync>>,
}

impl ManualClock {
    /// A clock standing still at an arbitrary instant.
    pub fn new() -> Self {
        let clock = Self::default();
        clock.lock().base = Some(Instant::now());
        clock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the clock forward (saturating: past the end of `Instant`'s range it stays at
    /// that end, never goes back) and wakes the nexuses that use it.
    pub fn advance(&self, by: Duration) {
        let wakers = {
            let mut inner = self.lock();
            inner.offset = inner.offset.saturating_add(by);
            inner.wakers.clone()
        };
        // Called without the lock held.
        for wake in wakers {
            wake();
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let inner = self.lock();
        let base = inner.base.unwrap_or_else(Instant::now);
        base.checked_add(inner.offset)
            .unwrap_or_else(|| latest_after(base, inner.offset))
    }

    fn is_real_time(&self) -> bool {
        false
    }

    fn on_advance(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.lock().wakers.push(wake);
    }
}

/// The latest instant `base + d` that can be represented, for a `d` up to `limit`: a
/// manual clock advanced past the end of `Instant`'s range stays at its end (it never
/// goes back). A binary search over whole nanoseconds, run only on overflow.
fn latest_after(base: Instant, limit: Duration) -> Instant {
    let (mut fits, mut overflows) = (0u128, limit.as_nanos());
    while overflows - fits > 1 {
        let mid = fits + (overflows - fits) / 2;
        if base.checked_add(from_nanos(mid)).is_some() {
            fits = mid;
        } else {
            overflows = mid;
        }
    }
    base.checked_add(from_nanos(fits)).unwrap_or(base)
}

fn from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("offset", &self.lock().offset)
            .finish()
    }
}

/// The kinds of async_nexus's timer, with its numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// Payloads 1, 2, …, count (`count > 0`).
    CountUp = 1,
    /// Payloads count-1, …, 1, 0 (`count > 0`).
    CountDown = 2,
    /// Payloads 1, 2, 3, … forever (`count == 0`).
    Ongoing = 3,
    /// One event with payload 1 (`count` 0 or 1).
    OneShot = 4,
}

impl TimerKind {
    /// The kind with async_nexus's code.
    ///
    /// # Errors
    ///
    /// [`TimerError::InvalidKind`].
    pub fn from_code(code: i64) -> Result<Self, TimerError> {
        match code {
            1 => Ok(TimerKind::CountUp),
            2 => Ok(TimerKind::CountDown),
            3 => Ok(TimerKind::Ongoing),
            4 => Ok(TimerKind::OneShot),
            other => Err(TimerError::InvalidKind(other)),
        }
    }
}

/// What a timer does about ticks it missed (the loop was busy, or the machine slept);
/// tokio's `MissedTickBehavior` is the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTicks {
    /// Fire every missed tick as soon as possible (bounded per pass), then resume the
    /// schedule. The default.
    #[default]
    Burst,
    /// Fire once now, drop the other missed ticks (their payload values are skipped), and
    /// resume at the next tick of the schedule that is still ahead.
    Skip,
}

/// Timer errors (async_nexus's `ValueError`s and `MultipleStart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerError {
    /// A count-down timer needs `count > 0` ("Countdown value invalid").
    InvalidCountdown,
    /// A count-up timer needs `count > 0` ("Countup value invalid").
    InvalidCountup,
    /// An ongoing timer takes no count ("Counter value supplied when irrelevant").
    CountIrrelevant,
    /// A one-shot timer takes a count of 0 or 1 ("Oneshot value invalid").
    InvalidOneshot,
    /// No timer kind has this code ("Invalid timer type N").
    InvalidKind(i64),
    /// The timer was already started.
    MultipleStart,
    /// The event type is invalid (an empty name).
    InvalidType,
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerError::InvalidCountdown => f.write_str("Countdown value invalid"),
            TimerError::InvalidCountup => f.write_str("Countup value invalid"),
            TimerError::CountIrrelevant => f.write_str("Counter value supplied when irrelevant"),
            TimerError::InvalidOneshot => f.write_str("Oneshot value invalid"),
            TimerError::InvalidKind(code) => write!(f, "Invalid timer type {code}"),
            TimerError::MultipleStart => f.write_str("timer already started"),
            TimerError::InvalidType => f.write_str("invalid event type (empty name)"),
        }
    }
}

impl std::error::Error for TimerError {}

/// A timer: emits events of one type into its nexus at `interval`, ticks scheduled from
/// its start time (tick n is due at `start + n × interval`, so intervals do not drift).
/// Its payload is a `u64` (the table in [`TimerKind`]); its id comes from the nexus.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ventus::{Timer, TimerError, TimerKind};
///
/// let timer = Timer::new(Duration::from_millis(1500), TimerKind::CountDown, 5, 98).unwrap();
/// assert_eq!(timer.kind(), TimerKind::CountDown);
/// assert_eq!(
///     Timer::new(Duration::from_secs(1), TimerKind::Ongoing, 3, 1).unwrap_err(),
///     TimerError::CountIrrelevant
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Timer {
    interval: Duration,
    kind: TimerKind,
    count: u64,
    event_type: EventType,
    priority: i32,
    missed: MissedTicks,
    paused: bool,
    maker: Option<EventMaker>,
}

/// The function that makes a timer's events (async_nexus's overridable `create_event`):
/// `(value, factory, the timer's type, its priority)`.
type MakeEvent = dyn FnMut(u64, &EventFactory, &EventType, i32) -> Option<NexusEvent> + Send;

/// A timer's event function, shared by the timer's clones (called by the loop only).
#[derive(Clone)]
struct EventMaker(Arc<Mutex<Box<MakeEvent>>>);

impl fmt::Debug for EventMaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventMaker(..)")
    }
}

impl EventMaker {
    fn make(
        &self,
        value: u64,
        factory: &EventFactory,
        event_type: &EventType,
        priority: i32,
    ) -> Option<NexusEvent> {
        let mut make = self.0.lock().unwrap_or_else(|p| p.into_inner());
        make(value, factory, event_type, priority)
    }
}

impl Timer {
    /// A timer of `kind` with async_nexus's count rules.
    ///
    /// # Errors
    ///
    /// [`TimerError`]: a count that does not fit the kind, or an empty type name.
    pub fn new(
        interval: Duration,
        kind: TimerKind,
        count: u64,
        event_type: impl Into<EventType>,
    ) -> Result<Self, TimerError> {
        match (kind, count) {
            (TimerKind::CountDown, 0) => return Err(TimerError::InvalidCountdown),
            (TimerKind::CountUp, 0) => return Err(TimerError::InvalidCountup),
            (TimerKind::Ongoing, c) if c != 0 => return Err(TimerError::CountIrrelevant),
            (TimerKind::OneShot, c) if c > 1 => return Err(TimerError::InvalidOneshot),
            _ => {}
        }
        let event_type = event_type.into();
        event_type.validate().map_err(|_| TimerError::InvalidType)?;
        Ok(Self {
            interval,
            kind,
            count,
            event_type,
            priority: 0,
            missed: MissedTicks::Burst,
            paused: false,
            maker: None,
        })
    }

    /// A one-shot timer (payload 1).
    ///
    /// # Errors
    ///
    /// [`TimerError::InvalidType`].
    pub fn one_shot(delay: Duration, event_type: impl Into<EventType>) -> Result<Self, TimerError> {
        Self::new(delay, TimerKind::OneShot, 0, event_type)
    }

    /// An ongoing timer (payloads 1, 2, 3, …).
    ///
    /// # Errors
    ///
    /// [`TimerError::InvalidType`].
    pub fn ongoing(
        interval: Duration,
        event_type: impl Into<EventType>,
    ) -> Result<Self, TimerError> {
        Self::new(interval, TimerKind::Ongoing, 0, event_type)
    }

    /// What to do about missed ticks (default [`MissedTicks::Burst`]).
    #[must_use]
    pub fn missed_ticks(mut self, missed: MissedTicks) -> Self {
        self.missed = missed;
        self
    }

    /// The priority of its events.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Overrides how each tick's event is made (async_nexus's overridable
    /// `create_event(value)`, which may return `None`): `make` gets the tick's value (the
    /// payload the table in [`TimerKind`] gives) and the nexus's factory, and returns the
    /// event to emit, or `None` to skip this tick. A skipped tick still counts: a count-down
    /// timer of 3 whose function skips the value 1 emits 2, then 0, then finishes. The
    /// event is emitted as returned (its id, type and priority are the function's choice).
    /// Clones of the timer share the function. A panic in it is caught and reported
    /// ([`NexusError::TimerPanicked`](crate::NexusError::TimerPanicked)); that tick is
    /// skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ventus::{Timer, TimerKind};
    ///
    /// // Every other tick, a String payload of type "even".
    /// let timer = Timer::new(Duration::from_millis(5), TimerKind::CountUp, 6, 1)
    ///     .unwrap()
    ///     .with_event(|value, factory| {
    ///         (value % 2 == 0).then(|| factory.create_event(format!("tick {value}"), "even").unwrap())
    ///     });
    /// # drop(timer);
    /// ```
    #[must_use]
    pub fn with_event(
        mut self,
        mut make: impl FnMut(u64, &EventFactory) -> Option<NexusEvent> + Send + 'static,
    ) -> Self {
        let make: Box<MakeEvent> = Box::new(move |value, factory, _, _| make(value, factory));
        self.maker = Some(EventMaker(Arc::new(Mutex::new(make))));
        self
    }

    /// Like [`with_event`](Self::with_event), for the payload only: `payload` maps the
    /// tick's value to the payload, or to `None` to skip the tick; the event has the
    /// timer's type and priority and the nexus's next id (taken only for the ticks that
    /// emit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ventus::Timer;
    ///
    /// // An ongoing timer that emits "ping" on every third tick only.
    /// let timer = Timer::ongoing(Duration::from_secs(1), "ping")
    ///     .unwrap()
    ///     .with_payload(|value| (value % 3 == 0).then_some("ping"));
    /// # drop(timer);
    /// ```
    #[must_use]
    pub fn with_payload<P: Send + 'static>(
        mut self,
        mut payload: impl FnMut(u64) -> Option<P> + Send + 'static,
    ) -> Self {
        let make: Box<MakeEvent> = Box::new(move |value, factory, event_type, priority| {
            let payload = payload(value)?;
            Some(
                NexusEvent::new(factory.next_id(), event_type.clone(), payload)
                    .with_priority(priority),
            )
        });
        self.maker = Some(EventMaker(Arc::new(Mutex::new(make))));
        self
    }

    /// Not started with the loop: [`TimerHandle::start`] starts it.
    #[must_use]
    pub fn paused(mut self) -> Self {
        self.paused = true;
        self
    }

    /// The kind.
    pub fn kind(&self) -> TimerKind {
        self.kind
    }

    /// The interval as given (the loop applies its minimum interval).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    fn ticks(&self) -> Option<u64> {
        match self.kind {
            TimerKind::CountUp | TimerKind::CountDown => Some(self.count),
            TimerKind::OneShot => Some(1),
            TimerKind::Ongoing => None,
        }
    }

    fn value(&self, tick: u64) -> u64 {
        match self.kind {
            TimerKind::CountUp | TimerKind::Ongoing => tick,
            TimerKind::CountDown => self.count - tick,
            TimerKind::OneShot => 1,
        }
    }
}

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;
const STOPPED: u8 = 3;

/// The state a [`TimerHandle`] shares with the loop.
#[derive(Debug)]
pub(crate) struct TimerControl {
    state: AtomicU8,
    pub(crate) id: u64,
}

/// Starts and stops one timer of a nexus, from any thread.
#[derive(Clone)]
pub struct TimerHandle {
    pub(crate) control: Arc<TimerControl>,
    pub(crate) start: Arc<dyn Fn(u64) + Send + Sync>,
}

impl TimerHandle {
    /// Starts a timer added with [`Timer::paused`]; its ticks count from now.
    ///
    /// # Errors
    ///
    /// [`TimerError::MultipleStart`] if it was already started (or stopped).
    pub fn start(&self) -> Result<(), TimerError> {
        // Relaxed: the loop learns of the start through the command queue's lock.
        self.control
            .state
            .compare_exchange(IDLE, RUNNING, Ordering::Relaxed, Ordering::Relaxed)
            .map_err(|_| TimerError::MultipleStart)?;
        (self.start)(self.control.id);
        Ok(())
    }

    /// Stops the timer; whether it was running (`false` if it had not started, had
    /// finished, or was already stopped). No tick fires after this returns unless the
    /// loop is already dispatching it.
    pub fn stop(&self) -> bool {
        // Relaxed: a flag the loop checks before each tick; no data is published.
        self.control.state.swap(STOPPED, Ordering::Relaxed) == RUNNING
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.control.state.load(Ordering::Relaxed) == RUNNING
    }

    /// Whether it fired its last tick.
    pub fn is_finished(&self) -> bool {
        self.control.state.load(Ordering::Relaxed) == FINISHED
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("id", &self.control.id)
            .field("running", &self.is_running())
            .finish()
    }
}

struct Armed {
    timer: Timer,
    control: Arc<TimerControl>,
    interval: Duration,
    start: Instant,
    /// The next tick (1-based).
    tick: u64,
}

/// `start + interval × n`, or `None` (never) when it overflows.
fn deadline(start: Instant, interval: Duration, n: u64) -> Option<Instant> {
    let nanos = interval.as_nanos().checked_mul(u128::from(n))?;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    let offset = Duration::new(secs, (nanos % 1_000_000_000) as u32);
    start.checked_add(offset)
}

/// The loop's timers.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    armed: std::collections::HashMap<u64, Armed>,
    waiting: std::collections::HashMap<u64, (Timer, Arc<TimerControl>)>,
    sequence: u64,
    next_id: u64,
}

impl Timers {
    /// Adds a timer; returns its control (RUNNING unless paused).
    pub(crate) fn add(&mut self, timer: Timer) -> Arc<TimerControl> {
        self.next_id += 1;
        let control = Arc::new(TimerControl {
            state: AtomicU8::new(if timer.is_paused() { IDLE } else { RUNNING }),
            id: self.next_id,
        });
        self.waiting.insert(self.next_id, (timer, control.clone()));
        control
    }

    /// Arms every waiting timer whose state is RUNNING, with `now` as its start time.
    pub(crate) fn arm_started(&mut self, now: Instant, min_interval: Duration) {
        let mut ready: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, (_, c))| c.state.load(Ordering::Relaxed) == RUNNING)
            .map(|(id, _)| *id)
            .collect();
        // In the order they were added: equal deadlines fire in that order.
        ready.sort_unstable();
        for id in ready {
            if let Some((timer, control)) = self.waiting.remove(&id) {
                let interval = timer.interval.max(min_interval);
                let armed = Armed {
                    timer,
                    control,
                    interval,
                    start: now,
                    tick: 1,
                };
                self.schedule(id, armed);
            }
        }
    }

    fn schedule(&mut self, id: u64, armed: Armed) {
        match deadline(armed.start, armed.interval, armed.tick) {
            Some(at) => {
                self.sequence += 1;
                self.heap.push(Reverse((at, self.sequence, id)));
                self.armed.insert(id, armed);
            }
            // Never due (Duration::MAX and friends): it stays running and never fires.
            None => {
                self.armed.insert(id, armed);
            }
        }
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Fires the due ticks, at most `max`, in (deadline, sequence) order.
    pub(crate) fn fire(
        &mut self,
        now: Instant,
        max: usize,
        factory: &EventFactory,
        out: &mut Vec<NexusEvent>,
        errors: &mut Vec<super::NexusError>,
    ) {
        let mut fired = 0;
        while fired < max {
            let Some(Reverse((at, _, id))) = self.heap.peek().copied() else {
                break;
            };
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(mut armed) = self.armed.remove(&id) else {
                continue;
            };
            if armed.control.state.load(Ordering::Relaxed) != RUNNING {
                continue;
            }
            let tick = armed.tick;
            let value = armed.timer.value(tick);
            let timer = &armed.timer;
            match &timer.maker {
                None => out.push(
                    NexusEvent::new(factory.next_id(), timer.event_type.clone(), value)
                        .with_priority(timer.priority),
                ),
                Some(maker) => {
                    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        maker.make(value, factory, &timer.event_type, timer.priority)
                    }));
                    match made {
                        Ok(Some(event)) => out.push(event),
                        // The function skipped this tick.
                        Ok(None) => {}
                        Err(panic) => errors.push(super::NexusError::TimerPanicked {
                            event_type: timer.event_type.clone(),
                            value,
                            message: crate::hooks::panic_message(&*panic),
                        }),
                    }
                }
            }
            fired += 1;
            let next = match armed.timer.missed {
                MissedTicks::Burst => tick.saturating_add(1),
                MissedTicks::Skip => {
                    let elapsed = now.saturating_duration_since(armed.start).as_nanos();
                    let per = armed.interval.as_nanos().max(1);
                    let behind = u64::try_from(elapsed / per).unwrap_or(u64::MAX);
                    behind.saturating_add(1).max(tick.saturating_add(1))
                }
            };
            if armed.timer.ticks().is_some_and(|total| next > total) {
                // Relaxed: a flag; CAS so that a concurrent stop() keeps its STOPPED.
                let _ = armed.control.state.compare_exchange(
                    RUNNING,
                    FINISHED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                continue;
            }
            armed.tick = next;
            self.schedule(id, armed);
        }
    }

    /// Stops every timer (the nexus stopped).
    pub(crate) fn clear(&mut self) {
        for armed in self.armed.values() {
            let _ = armed.control.state.compare_exchange(
                RUNNING,
                STOPPED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.armed.clear();
        self.heap.clear();
        self.waiting.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }
}
