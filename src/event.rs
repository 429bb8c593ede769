//! Event keys, the dynamic event view handed to `Any` and multi-key handlers, event
//! metadata, and the internal message types that travel through mailboxes.

use std::any::{Any, TypeId};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use crate::sync::Arc;

/// The identity of a Rust type used as an event: its `TypeId`, plus its name for display.
///
/// Equality and hashing use the `TypeId` alone: the name is only for humans (two types
/// with the same name in different modules are different events).
#[derive(Clone, Copy)]
pub struct TypeKey {
    id: TypeId,
    name: &'static str,
}

impl TypeKey {
    /// The key of `T`.
    pub fn of<T: ?Sized + 'static>() -> Self {
        Self {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }

    /// The `TypeId` this key matches.
    pub fn id(&self) -> TypeId {
        self.id
    }

    /// The type's name, as `std::any::type_name` gives it (for display only).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl PartialEq for TypeKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for TypeKey {}
impl Hash for TypeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}
impl fmt::Debug for TypeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// What a subscription listens to.
///
/// - `Type`: every emission of exactly this Rust type (matched by `TypeId`; no
///   inheritance, no name collisions).
/// - `Named`: every emission under this name, whatever its payload type. Names are
///   non-empty; `"ellipsis"` is an ordinary name (Pyventus makes it the wildcard).
/// - `Any`: every emission of the linker, typed or named.
///
/// # Examples
///
/// ```
/// use ventus::EventKey;
///
/// struct Tick;
/// assert_eq!(EventKey::of::<Tick>(), EventKey::of::<Tick>());
/// assert_ne!(EventKey::of::<Tick>(), EventKey::of::<u32>());
/// assert_eq!(EventKey::named("login").name(), Some("login"));
/// assert!(EventKey::Any.is_any());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EventKey {
    /// A Rust type, matched by `TypeId`.
    Type(TypeKey),
    /// A string name.
    Named(Arc<str>),
    /// Every emission of the linker.
    Any,
}

impl EventKey {
    /// The key of the Rust type `T`.
    pub fn of<T: 'static>() -> Self {
        EventKey::Type(TypeKey::of::<T>())
    }

    /// A named key. An empty name is accepted here and refused where it is used
    /// (`SubscribeError::EmptyName`, `EmitError::EmptyName`).
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        EventKey::Named(name.into())
    }

    /// The name of a `Named` key.
    pub fn name(&self) -> Option<&str> {
        match self {
            EventKey::Named(name) => Some(name),
            _ => None,
        }
    }

    /// The `TypeId` of a `Type` key.
    pub fn type_id(&self) -> Option<TypeId> {
        match self {
            EventKey::Type(key) => Some(key.id),
            _ => None,
        }
    }

    /// Whether this is the `Any` key.
    pub fn is_any(&self) -> bool {
        matches!(self, EventKey::Any)
    }
}

impl fmt::Debug for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKey::Type(key) => write!(f, "Type({})", key.name),
            EventKey::Named(name) => write!(f, "Named({name:?})"),
            EventKey::Any => f.write_str("Any"),
        }
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKey::Type(key) => f.write_str(key.name),
            EventKey::Named(name) => write!(f, "{name:?}"),
            EventKey::Any => f.write_str("*"),
        }
    }
}

impl From<&str> for EventKey {
    fn from(name: &str) -> Self {
        EventKey::named(name)
    }
}

impl From<String> for EventKey {
    fn from(name: String) -> Self {
        EventKey::named(name)
    }
}

/// The id of one emission: unique within the process, allocated per thread without any
/// shared counter (the thread's index in the high 24 bits, a per-thread sequence below).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EventId(pub u64);

impl EventId {
    pub(crate) fn next() -> Self {
        use crate::sync::statics::{AtomicU64, Ordering};
        use std::cell::Cell;
        static THREADS: AtomicU64 = AtomicU64::new(1);
        std::thread_local! {
            static NEXT: Cell<u64> = const { Cell::new(0) };
        }
        NEXT.with(|next| {
            let mut value = next.get();
            if value == 0 || value & 0xff_ffff_ffff == 0 {
                // First use on this thread, or the sequence wrapped: take a fresh prefix.
                // Relaxed: the counter only has to hand out distinct values.
                let thread = THREADS.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
                value = thread << 40;
            }
            next.set(value + 1);
            EventId(value + 1)
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// What a handler registered with `call_with_meta` learns about the event it runs for.
#[derive(Clone, Debug)]
pub struct EventMeta {
    /// The emission's id (shared by every subscription that receives it).
    pub id: EventId,
    /// The key the event was emitted under.
    pub key: EventKey,
    /// When `emit` was called.
    pub emitted_at: Instant,
}

/// An event seen through its key: what `Any` and multi-key handlers receive.
///
/// # Examples
///
/// ```
/// use ventus::{Emitter, Linker};
///
/// let linker = Linker::new();
/// let _sub = linker
///     .on_any()
///     .call(|event: &ventus::Event<'_>| {
///         if let Some(n) = event.downcast_ref::<u32>() {
///             println!("{} carried {n}", event.key());
///         }
///     })
///     .unwrap();
/// Emitter::inline(&linker).emit(7u32).unwrap();
/// ```
pub struct Event<'a> {
    pub(crate) key: &'a EventKey,
    pub(crate) payload: &'a (dyn Any + Send + Sync),
    pub(crate) type_name: &'static str,
}

impl<'a> Event<'a> {
    /// The key this emission was made under (a typed key for `emit`, a name for
    /// `emit_named`; never `Any`).
    pub fn key(&self) -> &'a EventKey {
        self.key
    }

    /// The payload, if it is a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&'a T> {
        self.payload.downcast_ref::<T>()
    }

    /// Whether the payload is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.payload.is::<T>()
    }

    /// The payload's type name, as `std::any::type_name` gave it at emit (display only).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The payload as `&dyn Any`.
    pub fn payload(&self) -> &'a (dyn Any + Send + Sync) {
        self.payload
    }
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("key", self.key)
            .field("type", &self.type_name)
            .finish()
    }
}

/// Per-message metadata, only filled when the receiving subscription asked for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MsgMeta {
    pub(crate) id: EventId,
    pub(crate) at: Instant,
}

/// One event's metadata, made on first need and shared by every subscription it goes to
/// (one id and one instant per emission, whichever path delivers it).
#[derive(Default)]
pub(crate) struct Stamp(Option<MsgMeta>);

impl Stamp {
    #[inline]
    pub(crate) fn get(&mut self) -> MsgMeta {
        *self.0.get_or_insert_with(|| MsgMeta {
            id: EventId::next(),
            at: Instant::now(),
        })
    }
}

/// A payload in a typed mailbox: moved in (one recipient) or shared.
pub(crate) enum Payload<T> {
    Owned(T),
    Shared(Arc<T>),
}

impl<T> Payload<T> {
    pub(crate) fn get(&self) -> &T {
        match self {
            Payload::Owned(value) => value,
            Payload::Shared(value) => value,
        }
    }
}

/// A type-erased payload.
pub(crate) enum DynPayload {
    Boxed(Box<dyn Any + Send + Sync>),
    Shared(Arc<dyn Any + Send + Sync>),
}

impl DynPayload {
    pub(crate) fn get(&self) -> &(dyn Any + Send + Sync) {
        match self {
            DynPayload::Boxed(value) => &**value,
            DynPayload::Shared(value) => &**value,
        }
    }
}

/// A message in a typed mailbox.
pub(crate) struct TypedMsg<T> {
    pub(crate) payload: Payload<T>,
    /// What few messages carry, in one box: a `TypedMsg<u64>` is then 24 bytes, and a
    /// crossbeam block of 31 of them (1,000 bytes) fits glibc's per-thread cache (1,032
    /// bytes at most), so the mailbox's block churn takes no arena lock.
    pub(crate) extra: Option<Box<Extra>>,
}

/// A typed message's rare parts.
pub(crate) struct Extra {
    pub(crate) meta: Option<MsgMeta>,
    /// The counts of the waits this message is part of, released when it is dropped,
    /// after its invocation.
    pub(crate) done: Option<Box<crate::carrier::Completion>>,
}

impl Extra {
    /// `None` when there is nothing to carry (no allocation).
    #[inline]
    pub(crate) fn of(
        meta: Option<MsgMeta>,
        done: Option<Box<crate::carrier::Completion>>,
    ) -> Option<Box<Self>> {
        (meta.is_some() || done.is_some()).then(|| Box::new(Extra { meta, done }))
    }
}

/// A message in a dynamic (named, `Any` or multi-key) mailbox: one box, so that a
/// mailbox's crossbeam block of 31 slots is 504 bytes instead of 3,232 (a subscription
/// that handled one event and went idle keeps its block). The dynamic path boxes its
/// payload anyway; this is a second small allocation per delivery.
pub(crate) struct Envelope(pub(crate) Box<EnvelopeBody>);

/// What an [`Envelope`] carries.
pub(crate) struct EnvelopeBody {
    pub(crate) key: EventKey,
    pub(crate) type_name: &'static str,
    pub(crate) payload: DynPayload,
    pub(crate) meta: Option<MsgMeta>,
    /// The counts of the waits this message is part of, released when it is dropped,
    /// after its invocation (boxed: most messages have none).
    pub(crate) done: Option<Box<crate::carrier::Completion>>,
}
