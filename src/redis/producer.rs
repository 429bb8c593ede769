//! The producer side: `XADD` of registered events, as a typed emitter and as a
//! [`Strategy`].

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::emitter::{Delivery, Emission, Strategy};
use crate::error::DispatchError;

use super::config::{RedisConfig, nonce};
use super::trim::{TrimReport, trim_below_pending};
use super::wire::{FORMAT, Wire};

/// Why an event was not appended to the stream. Every variant gives the event back, and
/// `Debug` works without `T: Debug`.
#[non_exhaustive]
pub enum RemoteEmitError<T> {
    /// `T` is not registered in the [`Wire`].
    Unregistered(T),
    /// The event did not serialize (the serializer's message).
    Encode(T, String),
    /// The server refused the `XADD` or could not be reached (after one reconnection).
    Server(T, ::redis::RedisError),
}

impl<T> RemoteEmitError<T> {
    /// The event, given back.
    pub fn into_inner(self) -> T {
        match self {
            RemoteEmitError::Unregistered(event)
            | RemoteEmitError::Encode(event, _)
            | RemoteEmitError::Server(event, _) => event,
        }
    }

    /// The event, by reference.
    pub fn event(&self) -> &T {
        match self {
            RemoteEmitError::Unregistered(event)
            | RemoteEmitError::Encode(event, _)
            | RemoteEmitError::Server(event, _) => event,
        }
    }
}

impl<T> fmt::Debug for RemoteEmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteEmitError::Unregistered(_) => f
                .debug_tuple("Unregistered")
                .field(&std::any::type_name::<T>())
                .finish(),
            RemoteEmitError::Encode(_, why) => f.debug_tuple("Encode").field(why).finish(),
            RemoteEmitError::Server(_, error) => f.debug_tuple("Server").field(error).finish(),
        }
    }
}

impl<T> fmt::Display for RemoteEmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteEmitError::Unregistered(_) => write!(
                f,
                "{} is not registered in the bridge's wire registry",
                std::any::type_name::<T>()
            ),
            RemoteEmitError::Encode(_, why) => write!(f, "the event did not serialize: {why}"),
            RemoteEmitError::Server(_, error) => write!(f, "XADD failed: {error}"),
        }
    }
}

impl<T> std::error::Error for RemoteEmitError<T> {}

/// Why the [`RedisStrategy`] refused an emission, kept for the emitting thread (see
/// [`RedisStrategy::take_last_error`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum StrategyError {
    /// The payload's type is not registered in the [`Wire`].
    Unregistered(&'static str),
    /// The payload did not serialize.
    Encode(String),
    /// The server refused the `XADD` or could not be reached.
    Server(::redis::RedisError),
}

impl fmt::Display for StrategyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrategyError::Unregistered(type_name) => {
                write!(f, "{type_name} is not registered in the wire registry")
            }
            StrategyError::Encode(why) => write!(f, "the event did not serialize: {why}"),
            StrategyError::Server(error) => write!(f, "XADD failed: {error}"),
        }
    }
}

impl std::error::Error for StrategyError {}

thread_local! {
    static LAST_ERROR: RefCell<Option<StrategyError>> = const { RefCell::new(None) };
}

pub(crate) enum AppendError {
    Unregistered,
    Encode(String),
    Server(::redis::RedisError),
}

struct Producer {
    config: RedisConfig,
    wire: Wire,
    conn: Mutex<Option<::redis::Connection>>,
    nonce: u64,
    seq: AtomicU64,
}

/// Appends registered events to the configured stream (`XADD`): the producer side of the
/// bridge. A cheap `Clone` handle; clones share one connection (behind a mutex), opened
/// on first use and reopened once when a command finds it broken.
///
/// Each entry has the fields `type` (the wire name), `format` (`msgpack`), `data` (the
/// MessagePack payload), `id` (an id unique to this emit call, kept when the emitter
/// itself retries the `XADD` after reconnecting, so a reader can deduplicate on it) and,
/// for named events, `name`. A caller that emits again after an error makes a new call
/// and a new id: deduplicate such retries on a key of the event itself.
///
/// # Examples
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use ventus::redis::{RedisConfig, RedisEmitter, Wire};
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced {
///     id: u64,
/// }
///
/// let mut wire = Wire::new();
/// wire.register::<OrderPlaced>("orders.placed").unwrap();
/// let config = RedisConfig::from_url("redis://127.0.0.1:6379/0?stream=orders").unwrap();
/// let producer = RedisEmitter::new(&config, &wire);
/// let entry_id = producer.emit(OrderPlaced { id: 7 }).unwrap();
/// println!("appended as {entry_id}");
/// ```
#[derive(Clone)]
pub struct RedisEmitter {
    inner: Arc<Producer>,
}

impl fmt::Debug for RedisEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEmitter")
            .field("config", &self.inner.config)
            .field("wire", &self.inner.wire)
            .finish_non_exhaustive()
    }
}

impl RedisEmitter {
    /// A producer for `config`'s stream, encoding the types registered in `wire` (copied:
    /// registrations made later are not seen). Does not connect yet.
    pub fn new(config: &RedisConfig, wire: &Wire) -> Self {
        Self {
            inner: Arc::new(Producer {
                config: config.clone(),
                wire: wire.clone(),
                conn: Mutex::new(None),
                nonce: nonce(),
                seq: AtomicU64::new(0),
            }),
        }
    }

    /// Appends `event` to the stream; returns the entry's stream id.
    ///
    /// # Errors
    ///
    /// A [`RemoteEmitError`] holding the event: `T` is not registered, does not serialize,
    /// or the server refused the `XADD` (or stayed unreachable after one reconnection).
    pub fn emit<T: Send + Sync + 'static>(&self, event: T) -> Result<String, RemoteEmitError<T>> {
        self.emit_inner(None, event)
    }

    /// Appends `payload` under the event name `name` (readers emit it with
    /// `emit_named_and_wait`); `T` must still be registered, for its encoding.
    ///
    /// # Errors
    ///
    /// As for [`emit`](Self::emit).
    pub fn emit_named<T: Send + Sync + 'static>(
        &self,
        name: &str,
        payload: T,
    ) -> Result<String, RemoteEmitError<T>> {
        self.emit_inner(Some(name), payload)
    }

    fn emit_inner<T: Send + Sync + 'static>(
        &self,
        name: Option<&str>,
        event: T,
    ) -> Result<String, RemoteEmitError<T>> {
        match self.append(&event, name) {
            Ok(id) => Ok(id),
            Err(AppendError::Unregistered) => Err(RemoteEmitError::Unregistered(event)),
            Err(AppendError::Encode(why)) => Err(RemoteEmitError::Encode(event, why)),
            Err(AppendError::Server(error)) => Err(RemoteEmitError::Server(event, error)),
        }
    }

    /// A [`Strategy`] that appends through this producer, for an
    /// [`Emitter`](crate::Emitter) whose events should leave the process.
    pub fn strategy(&self) -> RedisStrategy {
        RedisStrategy {
            producer: self.clone(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The wire registry.
    pub fn wire(&self) -> &Wire {
        &self.inner.wire
    }

    /// Trims the stream below the oldest entry that any consumer group still needs (see
    /// [`trim_below_pending`]).
    ///
    /// # Errors
    ///
    /// The server's error.
    pub fn trim(&self) -> Result<TrimReport, ::redis::RedisError> {
        let stream = self.inner.config.stream.clone();
        self.with_conn(|conn| trim_below_pending(conn, &stream))
    }

    pub(crate) fn append(
        &self,
        payload: &(dyn Any + Send + Sync),
        name: Option<&str>,
    ) -> Result<String, AppendError> {
        let (wire_name, bytes) = match self.inner.wire.encode_dyn(payload) {
            None => return Err(AppendError::Unregistered),
            Some(Err(why)) => return Err(AppendError::Encode(why)),
            Some(Ok(encoded)) => encoded,
        };
        // Relaxed: only uniqueness matters.
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let event_id = format!("{:016x}-{seq}", self.inner.nonce);
        let mut cmd = ::redis::cmd("XADD");
        cmd.arg(&self.inner.config.stream)
            .arg("*")
            .arg("type")
            .arg(wire_name)
            .arg("format")
            .arg(FORMAT)
            .arg("id")
            .arg(&event_id)
            .arg("data")
            .arg(bytes);
        if let Some(name) = name {
            cmd.arg("name").arg(name);
        }
        self.with_conn(|conn| cmd.query::<String>(conn))
            .map_err(AppendError::Server)
    }

    /// Runs `f` on the shared connection, reconnecting once if the connection is broken.
    fn with_conn<R>(
        &self,
        mut f: impl FnMut(&mut ::redis::Connection) -> ::redis::RedisResult<R>,
    ) -> ::redis::RedisResult<R> {
        let mut guard = self
            .inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut fresh = false;
        loop {
            if guard.is_none() {
                *guard = Some(self.inner.config.connect()?);
                fresh = true;
            }
            let conn = guard.as_mut().expect("connected above");
            match f(conn) {
                Ok(value) => return Ok(value),
                Err(error) if is_connection_error(&error) => {
                    *guard = None;
                    if fresh {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Whether `error` means the connection is unusable (reconnect), rather than a refusal of
/// one command.
pub(crate) fn is_connection_error(error: &::redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(error.code(), Some("LOADING" | "MASTERDOWN" | "TRYAGAIN"))
}

/// A [`Strategy`] that sends every emission to a Redis stream (`XADD`) instead of running
/// local handlers: `Emitter::new(&linker, producer.strategy())`.
///
/// It reads the payload without taking it and never delivers locally, so it never claims a
/// local once subscription. A successful `XADD` is `Ok` with `delivered == 1` (the stream
/// took it). The [`Strategy`] contract only has [`DispatchError`] to report a refusal, so
/// the event comes back as [`EmitError::Full`](crate::EmitError::Full) (type not
/// registered, or it did not serialize) or
/// [`EmitError::Shutdown`](crate::EmitError::Shutdown) (the server refused or is
/// unreachable), and the precise reason waits in [`take_last_error`](Self::take_last_error)
/// on the emitting thread. [`RedisEmitter::emit`] returns the typed
/// [`RemoteEmitError`] directly.
#[derive(Clone, Debug)]
pub struct RedisStrategy {
    producer: RedisEmitter,
}

impl RedisStrategy {
    /// The reason of the last emission this thread made through a `RedisStrategy` that
    /// failed (taken: a second call returns `None`).
    pub fn take_last_error() -> Option<StrategyError> {
        LAST_ERROR.with(|last| last.borrow_mut().take())
    }

    /// The producer behind it.
    pub fn producer(&self) -> &RedisEmitter {
        &self.producer
    }
}

impl Strategy for RedisStrategy {
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
        let Some(payload) = emission.payload() else {
            return Ok(Delivery::default());
        };
        let key = emission.key();
        let name = key.name();
        let (error, dispatch) = match self.producer.append(payload, name) {
            Ok(_) => {
                return Ok(Delivery {
                    delivered: 1,
                    refused: Vec::new(),
                });
            }
            Err(AppendError::Unregistered) => (
                StrategyError::Unregistered(emission.type_name()),
                DispatchError::Full,
            ),
            Err(AppendError::Encode(why)) => (StrategyError::Encode(why), DispatchError::Full),
            Err(AppendError::Server(error)) => {
                (StrategyError::Server(error), DispatchError::Shutdown)
            }
        };
        LAST_ERROR.with(|last| *last.borrow_mut() = Some(error));
        Err(dispatch)
    }
}
