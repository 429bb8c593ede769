//! The wire registry: which Rust types cross the bridge, under which stable names, and how
//! their payloads are encoded (MessagePack through `rmp-serde`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::emitter::Emitter;
use crate::error::EmitError;
use crate::outcome::Completed;

/// The value of every entry's `format` field: MessagePack, structs as maps keyed by field
/// name (`rmp_serde::to_vec_named`), so that readers in other languages and later versions
/// of a struct (new `#[serde(default)]` fields) can decode it.
pub const FORMAT: &str = "msgpack";

/// Why a type could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The wire name is empty.
    EmptyName,
    /// The wire name is already taken by another type.
    NameTaken {
        /// The name.
        name: String,
        /// The type that holds it.
        by: &'static str,
    },
    /// The type is already registered under another name.
    TypeRegistered {
        /// The type.
        type_name: &'static str,
        /// Its wire name.
        name: String,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::EmptyName => f.write_str("a wire name cannot be empty"),
            WireError::NameTaken { name, by } => {
                write!(f, "the wire name `{name}` is already registered for {by}")
            }
            WireError::TypeRegistered { type_name, name } => {
                write!(f, "{type_name} is already registered as `{name}`")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// What a local emission of a decoded entry gave.
pub(crate) enum Local {
    /// `emit_and_wait` returned: every handler of the emission (and of its chain) finished.
    Completed(Completed),
    /// The local runtime is shutting down: the entry stays pending.
    Shutdown,
    /// No local subscription took it (`Full`, `TooDeep`, …): a failed attempt.
    Refused(String),
}

type Encode = fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>, String>;
type Deliver = fn(&[u8], Option<&str>, &Emitter) -> Result<Local, String>;

#[derive(Clone)]
struct Entry {
    name: Arc<str>,
    type_name: &'static str,
    encode: Encode,
    deliver: Deliver,
}

/// The registry of event types that cross the bridge, each under a stable wire name.
///
/// Register every type up front, give the same registry (names and types) to producers and
/// readers, and keep the names stable: they are the contract between processes, not
/// `std::any::type_name` (which changes with a module move or a compiler release). A type
/// is encoded as MessagePack ([`FORMAT`]).
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use ventus::redis::Wire;
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced {
///     id: u64,
/// }
///
/// let mut wire = Wire::new();
/// wire.register::<OrderPlaced>("orders.placed").unwrap();
/// assert_eq!(wire.name_of::<OrderPlaced>(), Some("orders.placed"));
/// assert!(wire.register::<OrderPlaced>("orders.other").is_err());
/// ```
#[derive(Clone, Default)]
pub struct Wire {
    by_type: HashMap<TypeId, Entry>,
    by_name: HashMap<Arc<str>, TypeId>,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self
            .by_type
            .values()
            .map(|e| (&*e.name, e.type_name))
            .collect();
        names.sort_unstable();
        f.debug_struct("Wire").field("types", &names).finish()
    }
}

impl Wire {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `T` under `name`.
    ///
    /// # Errors
    ///
    /// [`WireError`] for an empty name, a name already taken, or a type already
    /// registered (under any name).
    pub fn register<T>(&mut self, name: &str) -> Result<&mut Self, WireError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        if name.is_empty() {
            return Err(WireError::EmptyName);
        }
        if let Some(entry) = self.by_type.get(&TypeId::of::<T>()) {
            return Err(WireError::TypeRegistered {
                type_name: entry.type_name,
                name: entry.name.to_string(),
            });
        }
        if let Some(other) = self.by_name.get(name) {
            return Err(WireError::NameTaken {
                name: name.to_owned(),
                by: self.by_type[other].type_name,
            });
        }
        let name: Arc<str> = name.into();
        self.by_name.insert(name.clone(), TypeId::of::<T>());
        self.by_type.insert(
            TypeId::of::<T>(),
            Entry {
                name,
                type_name: std::any::type_name::<T>(),
                encode: encode::<T>,
                deliver: deliver::<T>,
            },
        );
        Ok(self)
    }

    /// The wire name of `T`, if registered.
    pub fn name_of<T: 'static>(&self) -> Option<&str> {
        self.by_type.get(&TypeId::of::<T>()).map(|e| &*e.name)
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The registered wire names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(|n| &**n).collect();
        names.sort_unstable();
        names
    }

    /// Encodes `event` as it would go on the wire: its wire name and its MessagePack bytes
    /// (`None` when `T` is not registered).
    ///
    /// # Errors
    ///
    /// The serializer's message when `event` does not serialize.
    pub fn encode<T: Send + Sync + 'static>(
        &self,
        event: &T,
    ) -> Option<Result<(&str, Vec<u8>), String>> {
        self.encode_dyn(event)
    }

    pub(crate) fn encode_dyn(
        &self,
        payload: &(dyn Any + Send + Sync),
    ) -> Option<Result<(&str, Vec<u8>), String>> {
        let entry = self.by_type.get(&(*payload).type_id())?;
        Some((entry.encode)(payload).map(|bytes| (&*entry.name, bytes)))
    }

    /// Decodes `bytes` as the type registered under `name` and emits it into the emitter's
    /// linker with `emit_and_wait` (under `event_name` when given, else by type).
    /// `Err` is why the entry is undecodable.
    pub(crate) fn deliver(
        &self,
        name: &str,
        bytes: &[u8],
        event_name: Option<&str>,
        emitter: &Emitter,
    ) -> Result<Local, String> {
        let Some(type_id) = self.by_name.get(name) else {
            return Err(format!("unknown wire name `{name}`"));
        };
        (self.by_type[type_id].deliver)(bytes, event_name, emitter)
    }
}

fn encode<T: Serialize + 'static>(payload: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, String> {
    let event = payload
        .downcast_ref::<T>()
        .ok_or_else(|| format!("payload is not a {}", std::any::type_name::<T>()))?;
    rmp_serde::to_vec_named(event).map_err(|e| e.to_string())
}

fn deliver<T: DeserializeOwned + Send + Sync + 'static>(
    bytes: &[u8],
    event_name: Option<&str>,
    emitter: &Emitter,
) -> Result<Local, String> {
    let event: T = rmp_serde::from_slice(bytes).map_err(|e| {
        format!(
            "MessagePack payload does not decode as {}: {e}",
            std::any::type_name::<T>()
        )
    })?;
    let result = match event_name {
        Some(name) => emitter.emit_named_and_wait(name, event),
        None => emitter.emit_and_wait(event),
    };
    Ok(match result {
        Ok(completed) => Local::Completed(completed),
        Err(EmitError::Shutdown(_)) => Local::Shutdown,
        Err(error) => Local::Refused(error.to_string()),
    })
}
