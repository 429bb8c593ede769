//! The nexus: one thread owns a `mio::Poll`; events reach it from producers, pull
//! sources, timers and sockets, and leave through filters and handlers (async_nexus's
//! `AsyncEventNexus`, on mio, without an async runtime). The design and the parked-flag
//! protocol are in `README.md` next to this file.

mod boundary;
mod deadline;
mod event;
mod forward;
mod inbox;
mod producer;
mod registrar;
mod routing;
mod source;
mod timer;

pub use boundary::Boundary;
pub use event::{EventFactory, EventType, EventTypeError, IdChoice, NexusEvent};
pub use forward::{Forwarder, Overflow};
#[cfg(loom)]
pub use inbox::{Drained, Inbox, Taken};
pub use producer::{Producer, PushError};
pub use registrar::Registrar;
pub use routing::{Discarder, Fanout, Filter, Handler, RegisterError};
pub use source::{Accepted, Converter, Datagram, SocketConverter, SourceId};
pub use timer::{
    Clock, ManualClock, MissedTicks, SystemClock, Timer, TimerError, TimerHandle, TimerKind,
};

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::hooks::{DeadLetter, DeadLetterCounts, DeadLetterReason, Hooks};
use crate::sync::statics::{AtomicU8, Ordering};
use crate::sync::{Arc, LoopWaker, Mutex};
use inbox::Inbox as InboxImpl;
use routing::{Route, Router};
use source::Sources;
use timer::Timers;

const WAKER: Token = Token(usize::MAX);
const DEADLINE: Token = Token(usize::MAX - 1);

/// Events taken from the inbox per pass (wakes coalesce: the loop drains in batches of
/// this size until the count reaches zero).
pub const DEFAULT_NEXUS_BATCH: usize = 256;
/// The inbox's default capacity.
pub const DEFAULT_NEXUS_CAPACITY: usize = 65_536;
/// The largest inbox capacity: the inbox's buffers grow up to the capacity (and keep
/// their size), so a capacity near `usize::MAX` could abort on allocation; larger
/// requests are lowered to this (at most 2 × 64 MiB of 64-byte events).
const MAX_NEXUS_CAPACITY: usize = 1 << 20;
/// The shortest timer interval a nexus schedules by default (so that an ongoing 1 ns timer
/// cannot starve the loop).
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_micros(50);

/// The last stretch before a timer deadline that the loop waits by polling without a
/// timeout and yielding, instead of sleeping in `epoll_wait` (whose timeout mio rounds up
/// to whole milliseconds). Bounded: at most this long, once per deadline.
const SPIN_WINDOW: Duration = Duration::from_millis(1);

/// While busy, the loop polls its sources' readiness once every this many passes.
const POLL_EVERY: u32 = 8;

/// With a timerfd (Linux), the loop sleeps until this long before a timer deadline and
/// spins (bounded) only for the rest.
const PRECISE_WINDOW: Duration = Duration::from_micros(200);

/// The lifecycle of a nexus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NexusState {
    /// Built, not running yet.
    Ready,
    /// Starting its sources.
    Starting,
    /// Running its loop.
    Looping,
    /// Stopped: it refuses pushes and cannot run again.
    Stopped,
}

const READY: u8 = 0;
const STARTING: u8 = 1;
const LOOPING: u8 = 2;
const STOPPED: u8 = 3;

fn state_of(code: u8) -> NexusState {
    match code {
        READY => NexusState::Ready,
        STARTING => NexusState::Starting,
        LOOPING => NexusState::Looping,
        _ => NexusState::Stopped,
    }
}

/// Something that went wrong inside a nexus, where no caller can be told: sent to the
/// nexus's error hook (default: one line on stderr). Variants that hold an event give it
/// to the hook.
#[non_exhaustive]
pub enum NexusError {
    /// No filter consumed the event, and there is no handler for its type and no default
    /// handler (also counted as a [`DeadLetterReason::UnhandledInNexus`] dead letter).
    Unhandled(NexusEvent),
    /// A [`Fanout`] with no handlers was given an event.
    EmptyFanout(NexusEvent),
    /// A handler expected another payload type.
    PayloadMismatch {
        /// The payload type it expected.
        expected: &'static str,
        /// The event.
        event: NexusEvent,
    },
    /// A handler or filter panicked (caught; the loop goes on). The event was dropped.
    HandlerPanicked {
        /// The event's id.
        id: u64,
        /// The event's type.
        event_type: EventType,
        /// The panic message.
        message: String,
    },
    /// A [`Boundary`] could not pass the event on (the other nexus is full or stopped).
    Refused(NexusEvent),
    /// A source failed (a socket error other than `WouldBlock`).
    Source {
        /// The source.
        source: SourceId,
        /// The error.
        error: io::Error,
    },
    /// A pull source's thread did not finish within the bound after `close()` (left
    /// running, detached).
    SourceNotClosed {
        /// The source.
        source: SourceId,
    },
    /// An error a handler reported through [`Context::report`].
    Handler(crate::BoxError),
    /// A timer's event function ([`Timer::with_event`], [`Timer::with_payload`])
    /// panicked (caught; that tick was skipped, the timer goes on).
    TimerPanicked {
        /// The timer's event type.
        event_type: EventType,
        /// The tick's value.
        value: u64,
        /// The panic message.
        message: String,
    },
    /// A registration made while the loop runs ([`Context::add_handler`] and friends)
    /// was refused.
    Register(RegisterError),
}

impl fmt::Debug for NexusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NexusError::Unhandled(e) => f.debug_tuple("Unhandled").field(e).finish(),
            NexusError::EmptyFanout(e) => f.debug_tuple("EmptyFanout").field(e).finish(),
            NexusError::PayloadMismatch { expected, event } => f
                .debug_struct("PayloadMismatch")
                .field("expected", expected)
                .field("event", event)
                .finish(),
            NexusError::HandlerPanicked {
                id,
                event_type,
                message,
            } => f
                .debug_struct("HandlerPanicked")
                .field("id", id)
                .field("event_type", event_type)
                .field("message", message)
                .finish(),
            NexusError::Refused(e) => f.debug_tuple("Refused").field(e).finish(),
            NexusError::Source { source, error } => f
                .debug_struct("Source")
                .field("source", source)
                .field("error", error)
                .finish(),
            NexusError::SourceNotClosed { source } => f
                .debug_struct("SourceNotClosed")
                .field("source", source)
                .finish(),
            NexusError::Handler(e) => f.debug_tuple("Handler").field(e).finish(),
            NexusError::TimerPanicked {
                event_type,
                value,
                message,
            } => f
                .debug_struct("TimerPanicked")
                .field("event_type", event_type)
                .field("value", value)
                .field("message", message)
                .finish(),
            NexusError::Register(e) => f.debug_tuple("Register").field(e).finish(),
        }
    }
}

impl fmt::Display for NexusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NexusError::Unhandled(e) => write!(
                f,
                "No available event handler for event with ID={} and type={}",
                e.id(),
                e.event_type()
            ),
            NexusError::EmptyFanout(e) => {
                write!(f, "fanout has no handlers (event {})", e.id())
            }
            NexusError::PayloadMismatch { expected, event } => write!(
                f,
                "event {} carries a {}, the handler expected a {expected}",
                event.id(),
                event.payload_type_name()
            ),
            NexusError::HandlerPanicked {
                id,
                event_type,
                message,
            } => write!(
                f,
                "handler for event {id} (type {event_type}) panicked: {message}"
            ),
            NexusError::Refused(e) => write!(f, "event {} could not be passed on", e.id()),
            NexusError::Source { source, error } => write!(f, "source {source:?}: {error}"),
            NexusError::SourceNotClosed { source } => {
                write!(f, "source {source:?} did not finish after close()")
            }
            NexusError::Handler(e) => write!(f, "handler error: {e}"),
            NexusError::TimerPanicked {
                event_type,
                value,
                message,
            } => write!(
                f,
                "the event function of a timer of type {event_type} panicked at value {value}: {message}"
            ),
            NexusError::Register(e) => write!(f, "registration refused: {e}"),
        }
    }
}

impl std::error::Error for NexusError {}

/// Why a nexus cannot run (async_nexus's `LoopStopped`, `InvalidLoopState`).
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// It was stopped; a nexus runs once.
    Stopped,
    /// Polling failed.
    Io(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Stopped => f.write_str("the nexus is stopped"),
            RunError::Io(e) => write!(f, "polling failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Why [`Nexus::start`] refused (the nexus comes back).
#[non_exhaustive]
pub enum StartError {
    /// It was stopped; a nexus runs once.
    Stopped(Box<Nexus>),
    /// The thread could not be spawned.
    Spawn(io::Error, Box<Nexus>),
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Stopped(_) => f.write_str("Stopped(..)"),
            StartError::Spawn(e, _) => write!(f, "Spawn({e:?}, ..)"),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Stopped(_) => f.write_str("the nexus is stopped"),
            StartError::Spawn(e, _) => write!(f, "could not spawn the nexus thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

type ErrorHook = Arc<dyn Fn(NexusError) + Send + Sync>;

/// What producers, timer handles and stoppers share with the loop.
pub(crate) struct Shared {
    inbox: InboxImpl<NexusEvent>,
    state: AtomicU8,
    stop_requested: crate::sync::statics::AtomicU8,
    timers_dirty: crate::sync::statics::AtomicU8,
    commands: registrar::Commands,
    pub(crate) factory: EventFactory,
    hooks: Hooks,
}

impl Shared {
    pub(crate) fn push(&self, event: NexusEvent) -> Result<(), PushError> {
        // Relaxed: a push that races the stop is either drained by the loop's final pass
        // or, if it lands after it, dead-lettered when the inbox is dropped (README).
        if self.state.load(Ordering::Relaxed) == STOPPED {
            return Err(PushError::Stopped(event));
        }
        self.inbox.push(event).map_err(PushError::Full)
    }

    fn request_stop(&self) -> bool {
        let was = self.state.load(Ordering::Relaxed);
        // Relaxed: the wake below is the edge; the loop reads the flag after its poll.
        let first = self.stop_requested.swap(1, Ordering::Relaxed) == 0;
        self.inbox.wake();
        first && was != STOPPED
    }

    fn dead_letter(&self, reason: DeadLetterReason, event: &NexusEvent) {
        let key = crate::EventKey::named(event.event_type().to_string());
        self.hooks.dead_letter(
            || DeadLetter {
                key,
                subscription: None,
                reason,
                payload: None,
            },
            reason,
        );
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Events pushed after the loop's final drain: never dispatched, so dead letters.
        let mut left = Vec::new();
        let mut taken = inbox::Taken::default();
        while self.inbox.drain(&mut taken, usize::MAX, |e| left.push(e)) == inbox::Drained::More {}
        for event in left {
            self.dead_letter(DeadLetterReason::LeftAtShutdown, &event);
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("state", &state_of(self.state.load(Ordering::Relaxed)))
            .field("queued", &self.inbox.len())
            .finish()
    }
}

/// Stops a nexus from any thread (a cheap `Clone`).
#[derive(Clone, Debug)]
pub struct Stopper {
    shared: Arc<Shared>,
}

impl Stopper {
    /// Asks the loop to stop; whether this was the first request for a nexus that had
    /// not stopped. The loop finishes its pass, dispatches what is queued, and stops.
    pub fn stop(&self) -> bool {
        self.shared.request_stop()
    }

    /// The nexus's state.
    pub fn state(&self) -> NexusState {
        state_of(self.shared.state.load(Ordering::Relaxed))
    }
}

/// The loop's own state, lent to handlers through [`Context`].
pub(crate) struct Core {
    shared: Arc<Shared>,
    secondary: VecDeque<NexusEvent>,
    deferred: Vec<NexusEvent>,
    errors: Vec<NexusError>,
    changes: Vec<registrar::LocalChange>,
    timers: Timers,
    now: Instant,
    min_interval: Duration,
}

/// What a handler can do besides handling: queue secondary events, report errors, add
/// timers, stop the nexus.
pub struct Context<'a> {
    core: &'a mut Core,
}

impl Context<'_> {
    /// Queues a secondary event: dispatched after the current event, FIFO, within this
    /// pass (at most a bounded number per pass; the rest in the next one). Never blocks.
    pub fn push(&mut self, event: NexusEvent) {
        self.core.secondary.push_back(event);
    }

    /// Queues an event for the next pass (a forwarder's retry).
    pub fn defer(&mut self, event: NexusEvent) {
        self.core.deferred.push(event);
    }

    /// Sends an error to the nexus's error hook (after the current event).
    pub fn report(&mut self, error: NexusError) {
        self.core.errors.push(error);
    }

    /// The nexus's event factory.
    pub fn factory(&self) -> &EventFactory {
        &self.core.shared.factory
    }

    /// The nexus's next id.
    pub fn next_id(&self) -> u64 {
        self.core.shared.factory.next_id()
    }

    /// The loop's clock reading for this pass.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// Adds and (unless paused) starts a timer now.
    pub fn add_timer(&mut self, timer: Timer) -> TimerHandle {
        let handle = timer_handle(&self.core.shared, self.core.timers.add(timer));
        self.core
            .timers
            .arm_started(self.core.now, self.core.min_interval);
        handle
    }

    /// Asks the nexus to stop after this pass.
    pub fn stop(&mut self) {
        self.core.shared.request_stop();
    }

    pub(crate) fn dead_letter(
        &mut self,
        reason: DeadLetterReason,
        key: crate::EventKey,
        payload: Option<crate::hooks::DeadPayload>,
    ) {
        self.core.shared.hooks.dead_letter(
            || DeadLetter {
                key,
                subscription: None,
                reason,
                payload,
            },
            reason,
        );
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("secondary", &self.core.secondary.len())
            .finish_non_exhaustive()
    }
}

fn timer_handle(shared: &Arc<Shared>, control: Arc<timer::TimerControl>) -> TimerHandle {
    let weak = Arc::downgrade(shared);
    TimerHandle {
        control,
        start: Arc::new(move |_id| {
            if let Some(shared) = weak.upgrade() {
                // Relaxed: the wake is the edge.
                shared.timers_dirty.store(1, Ordering::Relaxed);
                shared.inbox.wake();
            }
        }),
    }
}

/// Counters of one nexus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NexusStats {
    /// Events dispatched (secondary ones included).
    pub dispatched: u64,
    /// Events no route consumed.
    pub unhandled: u64,
    /// Loop passes.
    pub passes: u64,
    /// Times the loop blocked in `poll` with the inbox parked.
    pub parks: u64,
}

/// Builds a [`Nexus`].
pub struct NexusBuilder {
    name: String,
    capacity: usize,
    batch: usize,
    secondary_per_pass: usize,
    min_interval: Duration,
    clock: Arc<dyn Clock>,
    error_hook: Option<ErrorHook>,
    dead_letter: Option<crate::hooks::DeadLetterHook>,
}

impl NexusBuilder {
    /// Its name, in reports.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The inbox's capacity (default [`DEFAULT_NEXUS_CAPACITY`]; at least 1, at most
    /// 2<sup>20</sup> = 1,048,576: the inbox's buffers grow up to it, so larger values are
    /// lowered to that, and 0 is raised to 1): how many pushed events may wait that the
    /// loop has not dispatched yet (those it took for its current batches included). A full
    /// inbox refuses pushes with [`PushError::Full`], never blocks.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.clamp(1, MAX_NEXUS_CAPACITY);
        self
    }

    /// Events taken per batch from the inbox, and per source per pass (default
    /// [`DEFAULT_NEXUS_BATCH`]).
    #[must_use]
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Secondary events dispatched per pass at most (default 1024); the rest wait for the
    /// next pass, so a handler that queues forever cannot starve the sources.
    #[must_use]
    pub fn secondary_per_pass(mut self, limit: usize) -> Self {
        self.secondary_per_pass = limit.max(1);
        self
    }

    /// The shortest timer interval (default [`DEFAULT_MIN_INTERVAL`]).
    #[must_use]
    pub fn min_interval(mut self, min: Duration) -> Self {
        self.min_interval = min;
        self
    }

    /// The clock for timers (default [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Receives every [`NexusError`] (default: one line on stderr).
    #[must_use]
    pub fn on_error(mut self, hook: impl Fn(NexusError) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }

    /// Receives every dead letter (they are counted either way).
    #[must_use]
    pub fn on_dead_letter(mut self, hook: impl Fn(DeadLetter) + Send + Sync + 'static) -> Self {
        self.dead_letter = Some(Arc::new(hook));
        self
    }

    /// Builds it.
    ///
    /// # Errors
    ///
    /// The OS refused a poll or its waker.
    pub fn build(self) -> io::Result<Nexus> {
        let poll = Poll::new()?;
        let waker = LoopWaker::new(poll.registry(), WAKER)?;
        // Only a real-time clock has deadlines worth a precise wait.
        let deadline_timer = if self.clock.is_real_time() {
            deadline::DeadlineTimer::new(poll.registry(), DEADLINE)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            inbox: InboxImpl::new(self.capacity, waker),
            state: AtomicU8::new(READY),
            stop_requested: crate::sync::statics::AtomicU8::new(0),
            timers_dirty: crate::sync::statics::AtomicU8::new(0),
            commands: registrar::Commands::new(),
            factory: EventFactory::new(),
            hooks: Hooks::new(
                self.name.as_str().into(),
                None,
                self.dead_letter,
                None,
                None,
            ),
        });
        let weak = Arc::downgrade(&shared);
        self.clock.on_advance(Arc::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.inbox.wake();
            }
        }));
        let now = self.clock.now();
        Ok(Nexus {
            core: Core {
                shared: shared.clone(),
                secondary: VecDeque::new(),
                deferred: Vec::new(),
                errors: Vec::new(),
                changes: Vec::new(),
                timers: Timers::default(),
                now,
                min_interval: self.min_interval,
            },
            shared,
            poll,
            events: Events::with_capacity(256),
            router: Router::default(),
            sources: Sources::default(),
            clock: self.clock,
            error_hook: self.error_hook,
            name: self.name,
            batch: self.batch,
            secondary_per_pass: self.secondary_per_pass,
            inbox_more: true,
            unpolled: 0,
            deadline_timer,
            taken: inbox::Taken::default(),
            pass: Vec::new(),
            stats: NexusStats::default(),
        })
    }
}

impl fmt::Debug for NexusBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NexusBuilder")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// An event loop that multiplexes producers, pull sources, timers and sockets, and routes
/// each event through filters, the handler for its type and the default handler.
///
/// Register everything, then [`run`](Self::run) it on this thread,
/// [`start`](Self::start) it on its own, or drive it pass by pass with
/// [`turn`](Self::turn) (tests). An event nothing consumes goes to the error hook as
/// [`NexusError::Unhandled`] (with the event) and is counted as a dead letter.
///
/// At stop the loop dispatches every event already in its inbox and every queued
/// secondary event (they are drained, not dropped); an event pushed concurrently with the
/// stop that lands after that final drain is counted as a
/// [`DeadLetterReason::LeftAtShutdown`] dead letter when the inbox is dropped.
/// Dropping a nexus stops it and closes every source.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ventus::{Nexus, NexusEvent, Timer};
///
/// let mut nexus = Nexus::new().unwrap();
/// nexus.add_filter(|event, _| event.event_type() == &ventus::EventType::Int(2)); // consumes type 2
/// nexus.on(1, |event, cx| {
///     let count: u64 = *event.payload_ref().unwrap();
///     if count == 3 { cx.stop(); }
/// }).unwrap();
/// nexus.add_timer(Timer::new(Duration::from_millis(1), ventus::TimerKind::CountUp, 3, 1).unwrap());
/// let handle = nexus.start().unwrap();
/// let nexus = handle.join().unwrap();
/// assert!(nexus.stats().dispatched >= 3);
/// ```
pub struct Nexus {
    shared: Arc<Shared>,
    core: Core,
    poll: Poll,
    events: Events,
    router: Router,
    sources: Sources,
    clock: Arc<dyn Clock>,
    error_hook: Option<ErrorHook>,
    name: String,
    batch: usize,
    secondary_per_pass: usize,
    inbox_more: bool,
    /// Busy passes since the last poll.
    unpolled: u32,
    deadline_timer: Option<deadline::DeadlineTimer>,
    taken: inbox::Taken<NexusEvent>,
    pass: Vec<NexusEvent>,
    stats: NexusStats,
}

impl Nexus {
    /// A nexus with the defaults.
    ///
    /// # Errors
    ///
    /// The OS refused a poll or its waker.
    pub fn new() -> io::Result<Self> {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> NexusBuilder {
        NexusBuilder {
            name: "nexus".into(),
            capacity: DEFAULT_NEXUS_CAPACITY,
            batch: DEFAULT_NEXUS_BATCH,
            secondary_per_pass: 1024,
            min_interval: DEFAULT_MIN_INTERVAL,
            clock: Arc::new(SystemClock),
            error_hook: None,
            dead_letter: None,
        }
    }

    /// Its event factory (ids, events), shareable with any thread.
    pub fn factory(&self) -> EventFactory {
        self.shared.factory.clone()
    }

    /// The next id (thread-safe, monotonic per nexus).
    pub fn next_id(&self) -> u64 {
        self.shared.factory.next_id()
    }

    /// An event with the next id.
    ///
    /// # Errors
    ///
    /// [`EventTypeError`] for an invalid type.
    pub fn create_event<T: Send + 'static>(
        &self,
        payload: T,
        event_type: impl Into<EventType>,
    ) -> Result<NexusEvent, EventTypeError> {
        self.shared.factory.create_event(payload, event_type)
    }

    /// Adds a filter (run in registration order; `true` consumes the event).
    pub fn add_filter(
        &mut self,
        filter: impl FnMut(&NexusEvent, &mut Context<'_>) -> bool + Send + 'static,
    ) {
        self.router.add_filter(Box::new(filter));
    }

    /// Adds a filter object.
    pub fn add_filter_object(&mut self, filter: impl Filter) {
        self.router.add_filter(Box::new(filter));
    }

    /// Registers the one handler (a closure) for `event_type`.
    ///
    /// # Errors
    ///
    /// [`RegisterError::Duplicate`] if the type has one; [`RegisterError::InvalidType`].
    pub fn on(
        &mut self,
        event_type: impl Into<EventType>,
        handler: impl FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), RegisterError> {
        self.router
            .add_handler(event_type.into(), Box::new(handler))
    }

    /// Registers the one handler for the Rust type `T` (events made by
    /// [`NexusEvent::typed`] or [`EventFactory::create_typed`]).
    ///
    /// # Errors
    ///
    /// [`RegisterError::Duplicate`].
    pub fn on_typed<T: 'static>(
        &mut self,
        handler: impl FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), RegisterError> {
        self.router
            .add_handler(EventType::of::<T>(), Box::new(handler))
    }

    /// Registers a handler object (a [`Fanout`], [`Discarder`], [`Boundary`],
    /// [`Forwarder`] or yours) for `event_type`.
    ///
    /// # Errors
    ///
    /// As for [`on`](Self::on).
    pub fn add_handler(
        &mut self,
        event_type: impl Into<EventType>,
        handler: impl Handler,
    ) -> Result<(), RegisterError> {
        self.router
            .add_handler(event_type.into(), Box::new(handler))
    }

    /// Registers a handler for a range of integer types (async_nexus's docs' footnote);
    /// a handler for the exact type wins over a range.
    ///
    /// # Errors
    ///
    /// [`RegisterError::BadRange`] for an empty range or one that overlaps another.
    pub fn add_range_handler(
        &mut self,
        range: RangeInclusive<i64>,
        handler: impl Handler,
    ) -> Result<(), RegisterError> {
        self.router.add_range(range, Box::new(handler))
    }

    /// Sets the default handler (for events no other route consumed).
    ///
    /// # Errors
    ///
    /// [`RegisterError::DuplicateDefault`].
    pub fn set_default(
        &mut self,
        handler: impl FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), RegisterError> {
        self.router.set_default(Box::new(handler))
    }

    /// Sets a default handler object.
    ///
    /// # Errors
    ///
    /// [`RegisterError::DuplicateDefault`].
    pub fn set_default_handler(&mut self, handler: impl Handler) -> Result<(), RegisterError> {
        self.router.set_default(Box::new(handler))
    }

    /// A new producer that feeds this nexus.
    pub fn producer(&self) -> Producer {
        let producer = Producer::new();
        producer.register(self.shared.clone());
        producer
    }

    /// Makes `producer` feed this nexus too (one producer can feed several).
    pub fn add_producer(&mut self, producer: &Producer) {
        producer.register(self.shared.clone());
    }

    /// Adds a timer: it starts with the loop (or at once if the loop runs), unless
    /// [`Timer::paused`].
    pub fn add_timer(&mut self, timer: Timer) -> TimerHandle {
        let handle = timer_handle(&self.shared, self.core.timers.add(timer));
        if self.state() == NexusState::Looping {
            self.core
                .timers
                .arm_started(self.clock.now(), self.core.min_interval);
        }
        handle
    }

    /// A handle that adds routes (handlers, filters, the default) to this nexus from
    /// other threads while it runs (see [`Registrar`]).
    pub fn registrar(&self) -> Registrar {
        Registrar::new(self.shared.clone())
    }

    /// A handle that stops this nexus from any thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            shared: self.shared.clone(),
        }
    }

    /// The state.
    pub fn state(&self) -> NexusState {
        state_of(self.shared.state.load(Ordering::Relaxed))
    }

    /// The counters.
    pub fn stats(&self) -> NexusStats {
        self.stats
    }

    /// Dead letters counted so far, by reason.
    pub fn dead_letter_counts(&self) -> DeadLetterCounts {
        self.shared.hooks.dead_letter_counts()
    }

    /// Runs the loop on this thread until stopped ([`Stopper::stop`],
    /// [`Context::stop`]). Running with only timers or producers is fine.
    ///
    /// # Errors
    ///
    /// [`RunError::Stopped`] if it already stopped; [`RunError::Io`] if polling fails.
    pub fn run(&mut self) -> Result<(), RunError> {
        self.begin()?;
        loop {
            if self.stop_requested() {
                self.finish();
                return Ok(());
            }
            if let Err(error) = self.pass(true, None) {
                self.finish();
                return Err(RunError::Io(error));
            }
        }
    }

    /// Runs one pass: waits at most `timeout` (`None`: until something happens) for
    /// something to do, then dispatches what is ready. Starts the nexus on the first call;
    /// stops it if a stop was requested. Returns how many events it dispatched.
    ///
    /// # Errors
    ///
    /// As for [`run`](Self::run).
    pub fn turn(&mut self, timeout: Option<Duration>) -> Result<usize, RunError> {
        self.begin()?;
        let before = self.stats.dispatched;
        if self.stop_requested() {
            self.finish();
            return Ok((self.stats.dispatched - before) as usize);
        }
        self.pass(true, timeout).map_err(RunError::Io)?;
        if self.stop_requested() {
            self.finish();
        }
        Ok((self.stats.dispatched - before) as usize)
    }

    /// Runs the loop on a thread of its own.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the nexus if it is stopped or the thread cannot be spawned.
    pub fn start(self) -> Result<NexusHandle, StartError> {
        if self.state() == NexusState::Stopped {
            return Err(StartError::Stopped(Box::new(self)));
        }
        let stopper = self.stopper();
        // Starting from now: a `Registrar` call made right after `start` returns waits for
        // the loop instead of answering `NotStarted`.
        let before = self.shared.state.swap(STARTING, Ordering::Relaxed);
        let slot: Arc<Mutex<Option<Nexus>>> = Arc::new(Mutex::new(None));
        let cell = Arc::new(Mutex::new(Some(self)));
        let (out, input) = (slot.clone(), cell.clone());
        let name = format!("ventus-nexus-{}", stopper.shared.hooks.name);
        let spawned = crate::sync::thread::spawn(name, None, move || {
            let taken = input.lock().take();
            if let Some(mut nexus) = taken {
                let result = nexus.run();
                if let Err(error) = result {
                    nexus.report(NexusError::Handler(Box::new(error)));
                }
                *out.lock() = Some(nexus);
            }
        });
        match spawned {
            Ok(thread) => Ok(NexusHandle {
                stopper,
                thread: Some(thread),
                slot,
            }),
            Err(error) => {
                let nexus = cell.lock().take().expect("the thread never ran");
                nexus.shared.state.store(before, Ordering::Relaxed);
                Err(StartError::Spawn(error, Box::new(nexus)))
            }
        }
    }

    fn stop_requested(&self) -> bool {
        self.shared.stop_requested.load(Ordering::Relaxed) != 0
    }

    fn begin(&mut self) -> Result<(), RunError> {
        self.shared.commands.driven_here();
        match self.shared.state.load(Ordering::Relaxed) {
            STOPPED => Err(RunError::Stopped),
            LOOPING => Ok(()),
            _ => {
                self.shared.state.store(STARTING, Ordering::Relaxed);
                self.core.now = self.clock.now();
                self.core
                    .timers
                    .arm_started(self.core.now, self.core.min_interval);
                let mut errors = Vec::new();
                self.sources
                    .start(&self.shared, self.poll.registry(), &mut errors);
                for error in errors {
                    self.report(error);
                }
                self.shared.state.store(LOOPING, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    fn finish(&mut self) {
        if self.shared.state.swap(STOPPED, Ordering::SeqCst) == STOPPED {
            return;
        }
        // Changes sent before the stop apply to the final drain; later ones are refused.
        self.shared.commands.apply(&mut self.router);
        // Drain what is queued (bounded: a handler that queues forever is cut off).
        self.core.timers.clear();
        let mut rounds = 0;
        loop {
            let pass = &mut self.pass;
            let more = self
                .shared
                .inbox
                .drain(&mut self.taken, usize::MAX, |e| pass.push(e))
                == inbox::Drained::More;
            self.pass.append(&mut self.core.deferred);
            let idle = self.pass.is_empty() && self.core.secondary.is_empty() && !more;
            if idle || rounds > 1024 {
                break;
            }
            self.dispatch_pass();
            rounds += 1;
        }
        for event in self.core.secondary.drain(..).chain(self.pass.drain(..)) {
            self.shared
                .dead_letter(DeadLetterReason::LeftAtShutdown, &event);
        }
        self.shared.commands.close();
        let mut errors = Vec::new();
        self.sources.close(self.poll.registry(), &mut errors);
        for error in errors {
            self.report(error);
        }
    }

    fn report(&self, error: NexusError) {
        report_to(self.error_hook.as_ref(), &self.name, error);
    }

    /// One pass: wait, collect, dispatch.
    fn pass(&mut self, may_block: bool, limit: Option<Duration>) -> io::Result<()> {
        self.stats.passes += 1;
        let busy = self.inbox_more
            || !self.core.secondary.is_empty()
            || self.sources.busy()
            || self.shared.timers_dirty.load(Ordering::Relaxed) != 0;
        let deferred = !self.core.deferred.is_empty();
        let deadline = self.core.timers.next_deadline();
        let spin = limit != Some(Duration::ZERO);
        if busy || !may_block {
            // Busy: the sources' readiness is collected every few passes, not every pass
            // (an `epoll_wait` costs more than a batch's worth of dispatch; sockets
            // already on the ready list and timers are served every pass regardless).
            self.unpolled += 1;
            if self.unpolled >= POLL_EVERY || !may_block {
                self.poll_once(Some(Duration::ZERO))?;
            }
        } else if spin && self.spin_for_work() {
            self.poll_once(Some(Duration::ZERO))?;
        } else if self.shared.inbox.try_park() {
            // Parked: the next push wakes the loop (README, "The parked flag").
            self.stats.parks += 1;
            let mut timeout = limit;
            if deferred {
                let retry = Duration::from_millis(1);
                timeout = Some(timeout.map_or(retry, |t| t.min(retry)));
            }
            let waited = self.wait(deadline, timeout);
            self.shared.inbox.unparked();
            waited?;
        } else {
            // Counted between the spin and the park: drain it.
            self.poll_once(Some(Duration::ZERO))?;
        }
        self.core.now = self.clock.now();
        self.shared.commands.apply(&mut self.router);
        if self.shared.timers_dirty.swap(0, Ordering::Relaxed) != 0 {
            self.core
                .timers
                .arm_started(self.core.now, self.core.min_interval);
        }
        // Collect this pass's events: timers, sockets and iterators, the inbox, retries.
        let now = self.core.now;
        let batch = self.batch;
        let mut timer_errors = Vec::new();
        self.core.timers.fire(
            now,
            batch,
            &self.shared.factory,
            &mut self.pass,
            &mut timer_errors,
        );
        for error in timer_errors {
            self.report(error);
        }
        let mut errors = Vec::new();
        self.sources
            .collect(&self.shared.factory, batch, &mut self.pass, &mut errors);
        for error in errors {
            self.report(error);
        }
        self.shared.inbox.refill(&mut self.taken);
        let direct = self.pass.is_empty()
            && self.core.deferred.is_empty()
            && InboxImpl::peek(&self.taken, batch).is_sorted_by_key(|e| e.priority());
        if direct {
            // Only inbox events, already in priority order: dispatched straight from the
            // inbox's batch, with no copy into the pass.
            let Nexus {
                router,
                core,
                stats,
                error_hook,
                name,
                taken,
                secondary_per_pass,
                ..
            } = self;
            dispatch_run(
                router,
                core,
                stats,
                error_hook.as_ref(),
                name,
                *secondary_per_pass,
                InboxImpl::batch(taken, batch),
            );
        } else {
            self.pass.extend(InboxImpl::batch(&mut self.taken, batch));
            self.pass.append(&mut self.core.deferred);
            self.dispatch_pass();
        }
        self.inbox_more = self.shared.inbox.settle(&mut self.taken) == inbox::Drained::More;
        Ok(())
    }

    /// Before parking, spins briefly (bounded: `Backoff`, as crossbeam's `recv` does) for
    /// a push, a stop or a timer change, so that a producer that keeps up with the loop
    /// finds it awake and pays no `eventfd` write, and the loop no `epoll_wait` that
    /// blocks. `true`: something arrived.
    fn spin_for_work(&self) -> bool {
        let backoff = crate::sync::Backoff::new();
        loop {
            if self.shared.inbox.has_pending()
                || self.stop_requested()
                || self.shared.commands.has_queued()
                || self.shared.timers_dirty.load(Ordering::Relaxed) != 0
            {
                return true;
            }
            if backoff.is_completed() {
                return false;
            }
            backoff.snooze();
        }
    }

    /// Dispatches the pass (sorted by priority) and the secondary events its handlers
    /// queue: after each event, the secondary events queued so far, FIFO, within the pass's
    /// budget. One `catch_unwind` covers the whole run; after a panic the run resumes with
    /// the next event.
    fn dispatch_pass(&mut self) {
        // Lower priority first; stable, so FIFO among equals.
        if !self.pass.is_sorted_by_key(NexusEvent::priority) {
            self.pass.sort_by_key(NexusEvent::priority);
        }
        // Taken and given back, so the pass's buffer keeps its capacity.
        let mut events = std::mem::take(&mut self.pass);
        let Nexus {
            router,
            core,
            stats,
            error_hook,
            name,
            secondary_per_pass,
            ..
        } = self;
        dispatch_run(
            router,
            core,
            stats,
            error_hook.as_ref(),
            name,
            *secondary_per_pass,
            events.drain(..),
        );
        // Handlers never add to the pass (they queue secondary or deferred events).
        debug_assert!(self.pass.is_empty());
        self.pass = events;
    }

    fn poll_once(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.unpolled = 0;
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            match event.token() {
                WAKER => {}
                DEADLINE => {
                    if let Some(timer) = &mut self.deadline_timer {
                        timer.fired();
                    }
                }
                token => self.sources.mark_ready(token),
            }
        }
        Ok(())
    }

    /// Blocks until woken, until `limit`, or until the timer deadline (precisely: a
    /// timerfd armed for it on Linux; elsewhere mio's millisecond timeout for the bulk,
    /// then a bounded yield-and-poll for the last stretch).
    fn wait(&mut self, deadline: Option<Instant>, limit: Option<Duration>) -> io::Result<()> {
        let limit_at = limit.and_then(|l| Instant::now().checked_add(l));
        let Some(deadline) = deadline.filter(|_| self.clock.is_real_time()) else {
            // No timer, or a manual clock (which wakes the loop when it is advanced).
            return self.poll_once(limit);
        };
        let until = match limit_at {
            Some(at) if at < deadline => return self.poll_once(limit),
            _ => deadline,
        };
        let remaining = until.saturating_duration_since(self.clock.now());
        if remaining.is_zero() {
            return self.poll_once(Some(Duration::ZERO));
        }
        // A timerfd armed for a little before the deadline: `epoll_wait` returns then (to
        // the microsecond, not mio's millisecond), and the loop spins the rest (a waking
        // vCPU or a busy machine can take tens of microseconds to run it again).
        let mut slept = false;
        let early = until.checked_sub(PRECISE_WINDOW);
        if let (Some(timer), Some(early)) = (&mut self.deadline_timer, early) {
            if remaining > PRECISE_WINDOW && timer.arm(early).is_ok() {
                self.poll_once(limit)?;
                let woken = self.events.iter().any(|e| e.token() != DEADLINE);
                // Early: a stale expiry, or another wake; the next pass waits again.
                if woken || self.clock.now() < early {
                    return Ok(());
                }
                slept = true;
            }
        }
        if !slept && remaining > SPIN_WINDOW + Duration::from_millis(1) {
            let sleep = remaining - SPIN_WINDOW;
            // Whole milliseconds, rounded down: mio would round up.
            let sleep = Duration::from_millis(u64::try_from(sleep.as_millis()).unwrap_or(u64::MAX));
            self.poll_once(Some(sleep))?;
            if !self.events.is_empty() {
                return Ok(());
            }
        }
        // The last stretch: bounded by the deadline (at most PRECISE_WINDOW with a
        // timerfd, ~2 ms without). With a timerfd it never yields the CPU (a yield on a
        // busy machine can cost a whole time slice, milliseconds); without one it yields
        // once spinning stops paying off.
        let short = self.deadline_timer.is_some() && remaining <= PRECISE_WINDOW || slept;
        let backoff = crate::sync::Backoff::new();
        loop {
            self.poll_once(Some(Duration::ZERO))?;
            if !self.events.is_empty() || self.clock.now() >= until {
                return Ok(());
            }
            if short {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            } else if !backoff.is_completed() {
                backoff.snooze();
            } else {
                crate::sync::yield_now();
            }
        }
    }
}

/// Sends `error` to the hook (a panicking hook is caught and reported on stderr), or to
/// stderr when there is none.
fn report_to(hook: Option<&ErrorHook>, name: &str, error: NexusError) {
    match hook {
        Some(hook) => {
            let hook = hook.clone();
            if let Err(panic) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || hook(error)))
            {
                eprintln!(
                    "ventus nexus [{name}]: the error hook panicked: {}",
                    crate::hooks::panic_message(&*panic)
                );
            }
        }
        None => eprintln!("ventus nexus [{name}]: {error}"),
    }
}

/// Dispatches `primary` (in order) and the secondary events its handlers queue: after
/// each event, the secondary events queued so far, FIFO, within `budget`. One
/// `catch_unwind` covers the whole run; after a panic it is reported and the run resumes
/// with the next event.
fn dispatch_run(
    router: &mut Router,
    core: &mut Core,
    stats: &mut NexusStats,
    hook: Option<&ErrorHook>,
    name: &str,
    budget: usize,
    primary: impl Iterator<Item = NexusEvent>,
) {
    let mut run = Run {
        primary,
        budget,
        after_primary: false,
        current: None,
    };
    loop {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run.dispatch(router, core, stats, hook, name);
        }));
        let Err(panic) = outcome else {
            return;
        };
        let message = crate::hooks::panic_message(&*panic);
        drop(panic);
        if let Some((id, event_type)) = run.current.take() {
            core.errors.push(NexusError::HandlerPanicked {
                id,
                event_type,
                message,
            });
        }
        for error in std::mem::take(&mut core.errors) {
            report_to(hook, name, error);
        }
    }
}

/// The dispatch of one pass, resumable after a panic.
struct Run<I> {
    primary: I,
    budget: usize,
    /// Whether a primary event was dispatched: secondary events left from an earlier pass
    /// wait for the first one, as the ones queued by a handler wait for its event.
    after_primary: bool,
    /// The event being routed (its id and type), for the report if its handler panics.
    current: Option<(u64, EventType)>,
}

impl<I: Iterator<Item = NexusEvent>> Run<I> {
    fn next_secondary(&mut self, core: &mut Core) -> Option<NexusEvent> {
        if self.budget == 0 {
            return None;
        }
        let next = core.secondary.pop_front()?;
        self.budget -= 1;
        Some(next)
    }

    fn dispatch(
        &mut self,
        router: &mut Router,
        core: &mut Core,
        stats: &mut NexusStats,
        hook: Option<&ErrorHook>,
        name: &str,
    ) {
        loop {
            let secondary = if self.after_primary {
                self.next_secondary(core)
            } else {
                None
            };
            let event = match secondary {
                Some(event) => event,
                None => match self.primary.next() {
                    Some(event) => {
                        self.after_primary = true;
                        event
                    }
                    None => match self.next_secondary(core) {
                        Some(event) => event,
                        None => return,
                    },
                },
            };
            stats.dispatched += 1;
            self.current = Some((event.id(), event.event_type().clone()));
            if let Some(handler) = router.cached(event.event_type()) {
                handler.handle(event, &mut Context { core });
            } else if let Route::Unhandled(event) = router.route(event, &mut Context { core }) {
                stats.unhandled += 1;
                core.shared
                    .dead_letter(DeadLetterReason::UnhandledInNexus, &event);
                core.errors.push(NexusError::Unhandled(event));
            }
            if !core.changes.is_empty() {
                registrar::apply_local(&mut core.changes, router, &mut core.errors);
            }
            if !core.errors.is_empty() {
                for error in std::mem::take(&mut core.errors) {
                    report_to(hook, name, error);
                }
            }
        }
    }
}

impl Drop for Nexus {
    fn drop(&mut self) {
        self.shared.stop_requested.store(1, Ordering::Relaxed);
        self.finish();
    }
}

impl fmt::Debug for Nexus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nexus")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("router", &self.router)
            .field("timers", &self.core.timers.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// A nexus running on its own thread ([`Nexus::start`]).
pub struct NexusHandle {
    stopper: Stopper,
    thread: Option<crate::sync::thread::JoinHandle<()>>,
    slot: Arc<Mutex<Option<Nexus>>>,
}

/// The nexus thread panicked.
#[derive(Debug)]
pub struct JoinError;

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the nexus thread panicked")
    }
}

impl std::error::Error for JoinError {}

impl NexusHandle {
    /// Asks the loop to stop; whether it was running and this was the first request.
    pub fn stop(&self) -> bool {
        self.stopper.stop()
    }

    /// A stopper for other threads.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Adds routes (handlers, filters, the default) to the running nexus: each call
    /// returns once the loop applied it (see [`Registrar`]).
    pub fn registrar(&self) -> Registrar {
        Registrar::new(self.stopper.shared.clone())
    }

    /// Waits for the loop to stop (it does not ask it to: call [`stop`](Self::stop)
    /// first, or let a handler stop it) and gives the nexus back, stopped.
    ///
    /// # Errors
    ///
    /// [`JoinError`] if the loop thread panicked.
    pub fn join(mut self) -> Result<Nexus, JoinError> {
        if let Some(thread) = self.thread.take() {
            thread.join().map_err(|_| JoinError)?;
        }
        self.slot.lock().take().ok_or(JoinError)
    }
}

impl Drop for NexusHandle {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stopper.stop();
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for NexusHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NexusHandle")
            .field("state", &self.stopper.state())
            .finish()
    }
}
