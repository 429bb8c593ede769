//! Typed errors. Every error that can hold an event gives it back, and every `Debug` works
//! without `T: Debug`.

use std::error::Error;
use std::fmt;

/// A boxed error, as handlers' `Err` values are carried in [`Failure::Handler`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a subscription's handler did not succeed; given to its failure callback.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The handler returned `Err`.
    Handler(BoxError),
    /// The handler panicked; the panic message (or `"<non-string panic payload>"`).
    Panic(String),
    /// A named event carried a payload of another type than the handler takes.
    PayloadMismatch {
        /// The payload type the handler takes.
        expected: &'static str,
        /// The payload type that was emitted.
        found: &'static str,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Handler(error) => write!(f, "handler failed: {error}"),
            Failure::Panic(message) => write!(f, "handler panicked: {message}"),
            Failure::PayloadMismatch { expected, found } => {
                write!(f, "payload mismatch: expected {expected}, found {found}")
            }
        }
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Failure::Handler(error) => Some(&**error),
            _ => None,
        }
    }
}

/// Why a `subscribe` call registered nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// No keys were given.
    NoKeys,
    /// A named key was the empty string.
    EmptyName,
    /// The key already has `max` live subscriptions (all-or-nothing: nothing was
    /// registered for any key).
    TooManySubscribers {
        /// The key that is full.
        key: String,
        /// The linker's `max_subscribers`.
        max: usize,
    },
    /// A mailbox capacity of 0 was asked for.
    ZeroCapacity,
    /// A dedicated subscription's thread could not be started (the runtime is shut down,
    /// its `max_threads` is reached, or the OS refused).
    Spawn(String),
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::NoKeys => f.write_str("a subscription needs at least one event key"),
            SubscribeError::EmptyName => f.write_str("event names cannot be empty"),
            SubscribeError::TooManySubscribers { key, max } => write!(
                f,
                "the event {key} has reached the maximum number of subscribers ({max})"
            ),
            SubscribeError::ZeroCapacity => f.write_str("a mailbox capacity must be at least 1"),
            SubscribeError::Spawn(why) => write!(f, "the dedicated thread did not start: {why}"),
        }
    }
}

impl Error for SubscribeError {}

/// Why a builder refused its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_subscribers` must be at least 1.
    ZeroMaxSubscribers,
    /// A capacity must be at least 1.
    ZeroCapacity,
    /// The shard count must be at least 1.
    ZeroShards,
    /// A runtime needs at least 1 worker.
    ZeroWorkers,
    /// A runtime's batch must be at least 1.
    ZeroBatch,
    /// A runtime thread could not be started.
    Spawn(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroMaxSubscribers => f.write_str("max_subscribers must be at least 1"),
            BuildError::ZeroCapacity => f.write_str("capacity must be at least 1"),
            BuildError::ZeroShards => f.write_str("the registry needs at least 1 shard"),
            BuildError::ZeroWorkers => f.write_str("a runtime needs at least 1 worker"),
            BuildError::ZeroBatch => f.write_str("a runtime's batch must be at least 1"),
            BuildError::Spawn(why) => write!(f, "a runtime thread did not start: {why}"),
        }
    }
}

impl Error for BuildError {}

/// Why one subscription did not receive an emission that others may have received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The mailbox was full and the policy is `Fail`, the emit was a `try_emit`, or a
    /// `Block` emit came from inside a handler (which must not wait).
    Full,
    /// The mailbox was full and the policy is `DropNewest`: the event was dropped for this
    /// subscription (counted, and reported as a dead letter).
    Dropped,
    /// The subscription runs on a dedicated thread of a runtime that is shut down.
    Shutdown,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Full => f.write_str("mailbox full"),
            Refusal::Dropped => f.write_str("dropped (mailbox full)"),
            Refusal::Shutdown => f.write_str("its runtime is shut down"),
        }
    }
}

/// Why an emission reached no subscription. Every variant gives the event back.
#[non_exhaustive]
pub enum EmitError<T> {
    /// Every matching subscription refused the event: their mailboxes were full (each
    /// refusal is counted in the subscription's stats; `DropNewest` ones are also dead
    /// letters, without payload since the event comes back here).
    Full(T),
    /// The runtime behind the strategy is shutting down.
    Shutdown(T),
    /// Inline emissions nested deeper than the limit (64): a handler chain that would
    /// otherwise overflow the stack.
    TooDeep(T),
    /// `emit_named` was given an empty name.
    EmptyName(T),
    /// The emit would wait on the handler that is making it.
    WouldDeadlock(T),
}

impl<T> EmitError<T> {
    /// The event, given back.
    pub fn into_inner(self) -> T {
        match self {
            EmitError::Full(event)
            | EmitError::Shutdown(event)
            | EmitError::TooDeep(event)
            | EmitError::EmptyName(event)
            | EmitError::WouldDeadlock(event) => event,
        }
    }

    /// The event, by reference.
    pub fn event(&self) -> &T {
        match self {
            EmitError::Full(event)
            | EmitError::Shutdown(event)
            | EmitError::TooDeep(event)
            | EmitError::EmptyName(event)
            | EmitError::WouldDeadlock(event) => event,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            EmitError::Full(_) => "every subscription refused the event",
            EmitError::Shutdown(_) => "the runtime is shut down or shutting down",
            EmitError::TooDeep(_) => "inline emissions nested too deep",
            EmitError::EmptyName(_) => "event names cannot be empty",
            EmitError::WouldDeadlock(_) => "the emit would wait on its own handler",
        }
    }
}

impl<T> fmt::Debug for EmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            EmitError::Full(_) => "Full",
            EmitError::Shutdown(_) => "Shutdown",
            EmitError::TooDeep(_) => "TooDeep",
            EmitError::EmptyName(_) => "EmptyName",
            EmitError::WouldDeadlock(_) => "WouldDeadlock",
        };
        f.debug_tuple(name).field(&"..").finish()
    }
}

impl<T> fmt::Display for EmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl<T> Error for EmitError<T> {}

/// The payload-free form of [`EmitError`] that a [`Strategy`](crate::Strategy) returns;
/// the [`Emitter`](crate::Emitter) puts the event back in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchError {
    /// Every matching subscription refused the event.
    Full,
    /// The runtime is shutting down.
    Shutdown,
    /// Inline nesting past the limit.
    TooDeep,
    /// The emit would wait on its own handler.
    WouldDeadlock,
}

impl fmt::Display for DispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchError::Full => f.write_str("every subscription refused the event"),
            DispatchError::Shutdown => f.write_str("the runtime is shut down or shutting down"),
            DispatchError::TooDeep => f.write_str("inline emissions nested too deep"),
            DispatchError::WouldDeadlock => f.write_str("the emit would wait on its own handler"),
        }
    }
}

impl Error for DispatchError {}

/// A call would wait for the handler that is making it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldDeadlock;

impl fmt::Display for WouldDeadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the call would wait on the handler that is making it")
    }
}

impl Error for WouldDeadlock {}

/// Why an [`Emitter::ask`](crate::Emitter::ask) got no reply.
#[non_exhaustive]
pub enum AskError<Q> {
    /// The subscription is not linked to the request's type, or is gone: the request
    /// comes back.
    NotLinked(Q),
    /// The emit itself failed (full mailbox, shutdown, nesting too deep): the request
    /// comes back inside.
    Emit(EmitError<Q>),
    /// Asked from a runtime's pool worker, where waiting could hold the worker the reply
    /// needs: the request comes back.
    WouldDeadlock(Q),
    /// No reply within the timeout (the handler may still answer later; the reply is then
    /// dropped).
    Timeout,
    /// The request was dropped without a reply: the handler did not answer, failed or
    /// panicked, or the request was refused or discarded.
    NoReply,
}

impl<Q> fmt::Debug for AskError<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::NotLinked(_) => f.write_str("NotLinked(..)"),
            AskError::Emit(error) => f.debug_tuple("Emit").field(error).finish(),
            AskError::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
            AskError::Timeout => f.write_str("Timeout"),
            AskError::NoReply => f.write_str("NoReply"),
        }
    }
}

impl<Q> fmt::Display for AskError<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::NotLinked(_) => {
                f.write_str("the subscription is not linked to the request's type, or is gone")
            }
            AskError::Emit(error) => write!(f, "the request was not delivered: {error}"),
            AskError::WouldDeadlock(_) => {
                f.write_str("ask from a pool worker could wait on the worker the reply needs")
            }
            AskError::Timeout => f.write_str("no reply within the timeout"),
            AskError::NoReply => f.write_str("the request was dropped without a reply"),
        }
    }
}

impl<Q> Error for AskError<Q> {}
