//! Routing: filters in order, the one handler for the type (or for a range of integer
//! types), the default handler; and the ready-made handlers `Fanout` and `Discarder`.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::RangeInclusive;

use super::event::{EventType, NexusEvent};
use super::{Context, NexusError};

/// A handler: takes each event of its type by value. Closures
/// `FnMut(NexusEvent, &mut Context<'_>)` are handlers; so are handler objects
/// ([`Fanout`], [`Discarder`], [`Boundary`](crate::Boundary),
/// [`Forwarder`](crate::Forwarder), or yours).
pub trait Handler: Send + 'static {
    /// Handles one event. Secondary events go through [`Context::push`]; failures through
    /// [`Context::report`].
    fn handle(&mut self, event: NexusEvent, cx: &mut Context<'_>);
}

impl<F> Handler for F
where
    F: FnMut(NexusEvent, &mut Context<'_>) + Send + 'static,
{
    fn handle(&mut self, event: NexusEvent, cx: &mut Context<'_>) {
        self(event, cx)
    }
}

/// A filter: runs before any handler, in registration order; `true` consumes the event.
pub trait Filter: Send + 'static {
    /// Whether this filter consumes `event`.
    fn filter(&mut self, event: &NexusEvent, cx: &mut Context<'_>) -> bool;
}

impl<F> Filter for F
where
    F: FnMut(&NexusEvent, &mut Context<'_>) -> bool + Send + 'static,
{
    fn filter(&mut self, event: &NexusEvent, cx: &mut Context<'_>) -> bool {
        self(event, cx)
    }
}

/// Refused registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A handler for this type is already present (one handler per type: use a
    /// [`Fanout`] for several).
    Duplicate(EventType),
    /// A default handler is already present.
    DuplicateDefault,
    /// This range overlaps a range already registered (or is empty).
    BadRange(i64, i64),
    /// The type is invalid (an empty string).
    InvalidType,
    /// The nexus stopped before the change was applied (a [`Registrar`](crate::Registrar)
    /// call; the handler was dropped).
    Stopped,
    /// The nexus has not started: a [`Registrar`](crate::Registrar) would wait for a loop
    /// that may never run; register on the [`Nexus`](crate::Nexus) itself.
    NotStarted,
    /// A [`Registrar`](crate::Registrar) was called on the thread that drives the loop
    /// (from a handler, or between `turn`s): it would wait for itself. Use the
    /// [`Context`] methods in a handler, the [`Nexus`](crate::Nexus) methods between turns.
    WouldDeadlock,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Duplicate(ty) => write!(f, "handler for type {ty} already present"),
            RegisterError::DuplicateDefault => f.write_str("default handler already present"),
            RegisterError::BadRange(start, end) => {
                write!(f, "range {start}..={end} is empty or overlaps another")
            }
            RegisterError::InvalidType => f.write_str("invalid event type (empty name)"),
            RegisterError::Stopped => f.write_str("the nexus stopped before the change"),
            RegisterError::NotStarted => {
                f.write_str("the nexus has not started: register on the Nexus itself")
            }
            RegisterError::WouldDeadlock => f.write_str(
                "called on the thread that drives the loop: use the Context (in a handler) \
                 or the Nexus (between turns)",
            ),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Runs its handlers one after another, in registration order, each with its own copy of
/// the event: the payload must be a `T: Clone` (cloned for all but the last handler, which
/// gets the original; wrap a large payload in an `Arc` to share it). A fanout with no
/// handlers reports [`NexusError::EmptyFanout`] at dispatch; a payload that is not a `T`
/// reports [`NexusError::PayloadMismatch`].
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ventus::{Fanout, Nexus, NexusEvent};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let mut fanout = Fanout::<String>::new();
/// for name in ["a", "b"] {
///     let seen = seen.clone();
///     fanout.register(move |event: NexusEvent, _: &mut ventus::Context<'_>| {
///         seen.lock().unwrap().push(format!("{name}:{}", event.payload_ref::<String>().unwrap()));
///     });
/// }
/// let mut nexus = Nexus::new().unwrap();
/// nexus.add_handler(7, fanout).unwrap();
/// nexus.producer().push(NexusEvent::new(1, 7, "x".to_string())).unwrap();
/// nexus.turn(Some(std::time::Duration::ZERO)).unwrap();
/// assert_eq!(*seen.lock().unwrap(), ["a:x", "b:x"]);
/// ```
pub struct Fanout<T> {
    handlers: Vec<(usize, Box<dyn Handler>)>,
    next: usize,
    _payload: std::marker::PhantomData<fn() -> T>,
}

impl<T: Clone + Send + 'static> Fanout<T> {
    /// An empty fanout.
    pub fn new() -> Self {
        Self {
            handlers: Vec::new(),
            next: 0,
            _payload: std::marker::PhantomData,
        }
    }

    /// Adds a handler at the end; returns its key for [`deregister`](Self::deregister).
    pub fn register(&mut self, handler: impl Handler) -> usize {
        let key = self.next;
        self.next += 1;
        self.handlers.push((key, Box::new(handler)));
        key
    }

    /// Removes a handler; `false` if the key is unknown.
    pub fn deregister(&mut self, key: usize) -> bool {
        let before = self.handlers.len();
        self.handlers.retain(|(k, _)| *k != key);
        self.handlers.len() != before
    }

    /// How many handlers it has.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

impl<T: Clone + Send + 'static> Default for Fanout<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Fanout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fanout")
            .field("handlers", &self.handlers.len())
            .finish()
    }
}

impl<T: Clone + Send + 'static> Handler for Fanout<T> {
    fn handle(&mut self, event: NexusEvent, cx: &mut Context<'_>) {
        if self.handlers.is_empty() {
            cx.report(NexusError::EmptyFanout(event));
            return;
        }
        let Some(payload) = event.payload_ref::<T>().cloned() else {
            cx.report(NexusError::PayloadMismatch {
                expected: std::any::type_name::<T>(),
                event,
            });
            return;
        };
        let last = self.handlers.len() - 1;
        let mut original = Some(event);
        let mut payload = Some(payload);
        for (index, (_, handler)) in self.handlers.iter_mut().enumerate() {
            let copy = if index == last {
                original
                    .take()
                    .expect("the last handler takes the original")
            } else {
                let template = original.as_ref().expect("kept until the last handler");
                let value = if index + 1 == last {
                    payload.take().expect("one clone left")
                } else {
                    payload.clone().expect("kept")
                };
                NexusEvent::new(template.id(), template.event_type().clone(), value)
                    .with_priority(template.priority())
            };
            handler.handle(copy, cx);
        }
    }
}

/// Swallows every event it is given (async_nexus's `EventDiscarder`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Discarder;

impl Handler for Discarder {
    fn handle(&mut self, event: NexusEvent, _cx: &mut Context<'_>) {
        drop(event);
    }
}

/// Where routing sent an event.
pub(crate) enum Route {
    Consumed,
    Unhandled(NexusEvent),
}

/// A cheap hasher for the routing table (a multiply-rotate over the words of the type;
/// the keys are registered by the program and few, so flooding is no concern, and SipHash
/// cost more than the rest of a dispatch).
#[derive(Default, Clone, Copy)]
pub(crate) struct TypeHasher(u64);

impl TypeHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for TypeHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_i64(&mut self, n: i64) {
        self.add(n as u64);
    }

    #[inline]
    fn write_isize(&mut self, n: isize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type TypeMap<V> = HashMap<EventType, V, BuildHasherDefault<TypeHasher>>;

/// The routing table of one nexus (owned by the loop thread: no locks).
#[derive(Default)]
pub(crate) struct Router {
    filters: Vec<Box<dyn Filter>>,
    handlers: Vec<Box<dyn Handler>>,
    index: TypeMap<usize>,
    /// The last type found in `index` and its handler: a run of events of one type costs
    /// one comparison each, not a hash lookup.
    last: Option<(EventType, usize)>,
    ranges: Vec<(RangeInclusive<i64>, Box<dyn Handler>)>,
    default: Option<Box<dyn Handler>>,
}

impl Router {
    pub(crate) fn add_filter(&mut self, filter: Box<dyn Filter>) {
        self.filters.push(filter);
    }

    pub(crate) fn add_handler(
        &mut self,
        event_type: EventType,
        handler: Box<dyn Handler>,
    ) -> Result<(), RegisterError> {
        if event_type.validate().is_err() {
            return Err(RegisterError::InvalidType);
        }
        if self.index.contains_key(&event_type) {
            return Err(RegisterError::Duplicate(event_type));
        }
        self.index.insert(event_type, self.handlers.len());
        self.handlers.push(handler);
        Ok(())
    }

    pub(crate) fn add_range(
        &mut self,
        range: RangeInclusive<i64>,
        handler: Box<dyn Handler>,
    ) -> Result<(), RegisterError> {
        let (start, end) = (*range.start(), *range.end());
        let overlaps = self
            .ranges
            .iter()
            .any(|(r, _)| start <= *r.end() && *r.start() <= end);
        if start > end || overlaps {
            return Err(RegisterError::BadRange(start, end));
        }
        self.ranges.push((range, handler));
        Ok(())
    }

    pub(crate) fn set_default(&mut self, handler: Box<dyn Handler>) -> Result<(), RegisterError> {
        if self.default.is_some() {
            return Err(RegisterError::DuplicateDefault);
        }
        self.default = Some(handler);
        Ok(())
    }

    /// The common case without a call of `route`: no filters, and the event's type is
    /// the one last found; its handler.
    #[inline(always)]
    pub(crate) fn cached(&mut self, event_type: &EventType) -> Option<&mut Box<dyn Handler>> {
        if !self.filters.is_empty() {
            return None;
        }
        match &self.last {
            Some((last, slot)) if last == event_type => self.handlers.get_mut(*slot),
            _ => None,
        }
    }

    /// Filters, then the type's handler, then a range's, then the default.
    pub(crate) fn route(&mut self, event: NexusEvent, cx: &mut Context<'_>) -> Route {
        for filter in &mut self.filters {
            if filter.filter(&event, cx) {
                return Route::Consumed;
            }
        }
        let found = match &self.last {
            Some((last, slot)) if last == event.event_type() => Some(*slot),
            _ => {
                let found = self.index.get(event.event_type()).copied();
                if let Some(slot) = found {
                    self.last = Some((event.event_type().clone(), slot));
                }
                found
            }
        };
        if let Some(handler) = found.and_then(|slot| self.handlers.get_mut(slot)) {
            handler.handle(event, cx);
            return Route::Consumed;
        }
        if let EventType::Int(n) = *event.event_type() {
            if let Some((_, handler)) = self.ranges.iter_mut().find(|(r, _)| r.contains(&n)) {
                handler.handle(event, cx);
                return Route::Consumed;
            }
        }
        match &mut self.default {
            Some(handler) => {
                handler.handle(event, cx);
                Route::Consumed
            }
            None => Route::Unhandled(event),
        }
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("filters", &self.filters.len())
            .field("handlers", &self.handlers.len())
            .field("ranges", &self.ranges.len())
            .field("default", &self.default.is_some())
            .finish()
    }
}
