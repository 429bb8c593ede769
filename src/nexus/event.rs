//! Nexus events: an id, a type, a priority and a type-erased payload; and the factory that
//! numbers them.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::event::TypeKey;
use crate::sync::statics::{AtomicU64, Ordering};

/// The type of a nexus event, which decides its handler: an integer, a string, or a Rust
/// type (async_nexus's `NamedEvent` in role; here a handler registered for a Rust type
/// does match its events).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// An integer type (async_nexus's `int` types).
    Int(i64),
    /// A string type (never empty).
    Str(Arc<str>),
    /// A Rust type: [`NexusEvent::typed`] gives its payload's type.
    Rust(TypeKey),
}

impl EventType {
    /// The type of events whose payload is a `T`.
    pub fn of<T: 'static>() -> Self {
        EventType::Rust(TypeKey::of::<T>())
    }

    /// Checks the type: an empty string is refused.
    ///
    /// # Errors
    ///
    /// [`EventTypeError::EmptyName`].
    pub fn validate(&self) -> Result<(), EventTypeError> {
        match self {
            EventType::Str(name) if name.is_empty() => Err(EventTypeError::EmptyName),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventType::Int(n) => write!(f, "{n}"),
            EventType::Str(name) => write!(f, "{name:?}"),
            EventType::Rust(key) => f.write_str(key.name()),
        }
    }
}

impl From<i64> for EventType {
    fn from(n: i64) -> Self {
        EventType::Int(n)
    }
}

impl From<i32> for EventType {
    fn from(n: i32) -> Self {
        EventType::Int(n.into())
    }
}

impl From<&str> for EventType {
    fn from(name: &str) -> Self {
        EventType::Str(name.into())
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        EventType::Str(name.into())
    }
}

/// An invalid event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventTypeError {
    /// A string type must not be empty.
    EmptyName,
}

impl fmt::Display for EventTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventTypeError::EmptyName => f.write_str("an event type name must not be empty"),
        }
    }
}

impl std::error::Error for EventTypeError {}

/// How [`EventFactory::create_event_with`] picks an event's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdChoice {
    /// The factory's next id ([`EventFactory::next_id`]).
    Auto,
    /// A random id in `1..=u32::MAX` (ids can collide, as async_nexus's can).
    Random,
    /// This id, as given.
    Explicit(u64),
}

/// An event inside a nexus. Handlers take it by value, so a handler can move the payload
/// on (into an actor, say).
///
/// # Examples
///
/// ```
/// use ventus::{EventType, NexusEvent};
///
/// let event = NexusEvent::new(7, 99, "TEAPOT!").with_priority(-1);
/// assert_eq!(event.event_type(), &EventType::Int(99));
/// assert_eq!(event.payload_ref::<&str>(), Some(&"TEAPOT!"));
/// let typed = NexusEvent::typed(8, 5u32);
/// assert_eq!(typed.event_type(), &EventType::of::<u32>());
/// assert_eq!(typed.into_payload::<u32>().ok(), Some(5));
/// ```
pub struct NexusEvent {
    id: u64,
    event_type: EventType,
    priority: i32,
    payload: Payload,
}

/// A boxed payload that can name its type.
trait AnyPayload: Send + 'static {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn type_name(&self) -> &'static str;
}

impl<T: Send + 'static> AnyPayload for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A payload: the common small types are held inline (no allocation per event, and no
/// extra cache miss for the loop that reads it); any other type is boxed. Which variant
/// holds a payload is invisible to users: every accessor goes through `dyn Any`.
enum Payload {
    Unit(()),
    Bool(bool),
    U64(u64),
    I64(i64),
    U32(u32),
    I32(i32),
    Usize(usize),
    F64(f64),
    Static(&'static str),
    String(String),
    Boxed(Box<dyn AnyPayload>),
}

/// `Ok(value as T)` when `V` is `T` (no allocation, no unsafe code: through an `Option` in
/// a `dyn Any`), else `Err(value)`.
fn cast<V: 'static, T: 'static>(value: V) -> Result<T, V> {
    let mut slot = Some(value);
    if let Some(taken) = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
    {
        return Ok(taken);
    }
    match slot {
        Some(value) => Err(value),
        None => unreachable!("only taken when V is T"),
    }
}

impl Payload {
    #[inline]
    fn new<T: Send + 'static>(value: T) -> Self {
        // Each `cast` compares two constant `TypeId`s: the compiler keeps one branch.
        macro_rules! inline {
            ($value:ident, $($ty:ty => $variant:ident),*) => {
                $(
                    let $value = match cast::<T, $ty>($value) {
                        Ok(v) => return Payload::$variant(v),
                        Err(v) => v,
                    };
                )*
            };
        }
        inline!(value, () => Unit, bool => Bool, u64 => U64, i64 => I64, u32 => U32, i32 => I32,
            usize => Usize, f64 => F64, &'static str => Static, String => String);
        Payload::Boxed(Box::new(value))
    }

    /// The payload if it is a `T`. Each arm's cast is decided at compile time (the value's
    /// type is known there), so for an inline `T` this is one comparison of the variant.
    #[inline]
    fn get<T: 'static>(&self) -> Option<&T> {
        match self {
            Payload::Unit(v) => (v as &dyn Any).downcast_ref(),
            Payload::Bool(v) => (v as &dyn Any).downcast_ref(),
            Payload::U64(v) => (v as &dyn Any).downcast_ref(),
            Payload::I64(v) => (v as &dyn Any).downcast_ref(),
            Payload::U32(v) => (v as &dyn Any).downcast_ref(),
            Payload::I32(v) => (v as &dyn Any).downcast_ref(),
            Payload::Usize(v) => (v as &dyn Any).downcast_ref(),
            Payload::F64(v) => (v as &dyn Any).downcast_ref(),
            Payload::Static(v) => (v as &dyn Any).downcast_ref(),
            Payload::String(v) => (v as &dyn Any).downcast_ref(),
            Payload::Boxed(b) => (**b).as_any().downcast_ref(),
        }
    }

    #[inline]
    fn as_any(&self) -> &dyn Any {
        match self {
            Payload::Unit(v) => v,
            Payload::Bool(v) => v,
            Payload::U64(v) => v,
            Payload::I64(v) => v,
            Payload::U32(v) => v,
            Payload::I32(v) => v,
            Payload::Usize(v) => v,
            Payload::F64(v) => v,
            Payload::Static(v) => v,
            Payload::String(v) => v,
            Payload::Boxed(b) => (**b).as_any(),
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        match self {
            Payload::Unit(v) => v,
            Payload::Bool(v) => v,
            Payload::U64(v) => v,
            Payload::I64(v) => v,
            Payload::U32(v) => v,
            Payload::I32(v) => v,
            Payload::Usize(v) => v,
            Payload::F64(v) => v,
            Payload::Static(v) => v,
            Payload::String(v) => v,
            Payload::Boxed(b) => (**b).as_any_mut(),
        }
    }

    /// The payload as a `T`; the caller checked that it is one.
    fn take<T: 'static>(self) -> Option<T> {
        match self {
            Payload::Unit(v) => cast(v).ok(),
            Payload::Bool(v) => cast(v).ok(),
            Payload::U64(v) => cast(v).ok(),
            Payload::I64(v) => cast(v).ok(),
            Payload::U32(v) => cast(v).ok(),
            Payload::I32(v) => cast(v).ok(),
            Payload::Usize(v) => cast(v).ok(),
            Payload::F64(v) => cast(v).ok(),
            Payload::Static(v) => cast(v).ok(),
            Payload::String(v) => cast(v).ok(),
            Payload::Boxed(b) => b.into_any().downcast::<T>().ok().map(|b| *b),
        }
    }

    fn type_name(&self) -> &'static str {
        use std::any::type_name;
        match self {
            Payload::Unit(_) => type_name::<()>(),
            Payload::Bool(_) => type_name::<bool>(),
            Payload::U64(_) => type_name::<u64>(),
            Payload::I64(_) => type_name::<i64>(),
            Payload::U32(_) => type_name::<u32>(),
            Payload::I32(_) => type_name::<i32>(),
            Payload::Usize(_) => type_name::<usize>(),
            Payload::F64(_) => type_name::<f64>(),
            Payload::Static(_) => type_name::<&'static str>(),
            Payload::String(_) => type_name::<String>(),
            Payload::Boxed(b) => (**b).type_name(),
        }
    }
}

impl NexusEvent {
    /// An event of type `event_type` (not checked here: see
    /// [`EventFactory::create_event`]), priority 0.
    pub fn new<T: Send + 'static>(id: u64, event_type: impl Into<EventType>, payload: T) -> Self {
        Self {
            id,
            event_type: event_type.into(),
            priority: 0,
            payload: Payload::new(payload),
        }
    }

    /// An event whose type is its payload's Rust type.
    pub fn typed<T: Send + 'static>(id: u64, payload: T) -> Self {
        Self::new(id, EventType::of::<T>(), payload)
    }

    /// Sets the priority: lower runs first among the events ready in one pass.
    #[must_use]
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The type.
    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }

    /// The priority (lower first).
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// The payload's Rust type name.
    pub fn payload_type_name(&self) -> &'static str {
        self.payload.type_name()
    }

    /// Whether the payload is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.payload.as_any().is::<T>()
    }

    /// The payload, if it is a `T`.
    #[inline]
    pub fn payload_ref<T: 'static>(&self) -> Option<&T> {
        self.payload.get()
    }

    /// The payload, mutably, if it is a `T`.
    pub fn payload_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.payload.as_any_mut().downcast_mut()
    }

    /// Takes the payload out if it is a `T`.
    ///
    /// # Errors
    ///
    /// The event, unchanged, when its payload is not a `T`.
    pub fn into_payload<T: 'static>(self) -> Result<T, NexusEvent> {
        if !self.is::<T>() {
            return Err(self);
        }
        match self.payload.take::<T>() {
            Some(value) => Ok(value),
            None => unreachable!("checked with `is`"),
        }
    }

    /// Replaces the payload, keeping id, type and priority.
    pub fn map_payload<T: Send + 'static>(self, payload: T) -> NexusEvent {
        NexusEvent {
            id: self.id,
            event_type: self.event_type,
            priority: self.priority,
            payload: Payload::new(payload),
        }
    }
}

impl fmt::Debug for NexusEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NexusEvent")
            .field("id", &self.id)
            .field("type", &self.event_type)
            .field("priority", &self.priority)
            .field("payload", &self.payload.type_name())
            .finish()
    }
}

/// Numbers events for one nexus: a cheap `Clone` handle over one counter, usable from any
/// thread (async_nexus's `EventFactory`, made thread-safe).
///
/// # Examples
///
/// ```
/// use ventus::{IdChoice, Nexus};
///
/// let nexus = Nexus::new().unwrap();
/// let factory = nexus.factory();
/// assert_eq!(factory.next_id(), 1);
/// let event = factory.create_event("hi", 50).unwrap();
/// assert_eq!(event.id(), 2);
/// let explicit = factory.create_event_with("hi", 50, IdChoice::Explicit(1001)).unwrap();
/// assert_eq!(explicit.id(), 1001);
/// assert!(factory.create_event("hi", "").is_err());
/// ```
#[derive(Clone)]
pub struct EventFactory {
    next: Arc<AtomicU64>,
}

impl EventFactory {
    pub(crate) fn new() -> Self {
        Self {
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The next id: 1, 2, 3, … per nexus, monotonic across threads.
    pub fn next_id(&self) -> u64 {
        // Relaxed: uniqueness and monotonicity come from the read-modify-write itself.
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// An event with the next id and priority 0.
    ///
    /// # Errors
    ///
    /// [`EventTypeError`] for an invalid type (an empty string).
    pub fn create_event<T: Send + 'static>(
        &self,
        payload: T,
        event_type: impl Into<EventType>,
    ) -> Result<NexusEvent, EventTypeError> {
        self.create_event_with(payload, event_type, IdChoice::Auto)
    }

    /// An event whose id is chosen by `id`.
    ///
    /// # Errors
    ///
    /// [`EventTypeError`] for an invalid type (an empty string).
    pub fn create_event_with<T: Send + 'static>(
        &self,
        payload: T,
        event_type: impl Into<EventType>,
        id: IdChoice,
    ) -> Result<NexusEvent, EventTypeError> {
        let event_type = event_type.into();
        event_type.validate()?;
        let id = match id {
            IdChoice::Auto => self.next_id(),
            IdChoice::Random => random_id(),
            IdChoice::Explicit(id) => id,
        };
        Ok(NexusEvent::new(id, event_type, payload))
    }

    /// A typed event (its type is `T`) with the next id.
    pub fn create_typed<T: Send + 'static>(&self, payload: T) -> NexusEvent {
        NexusEvent::typed(self.next_id(), payload)
    }
}

impl fmt::Debug for EventFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFactory")
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // std's RandomState is seeded randomly per process and per instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    (hasher.finish() % u64::from(u32::MAX)) + 1
}
