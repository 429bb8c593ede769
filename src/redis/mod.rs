//! A bridge to Redis Streams (feature `redis`): events leave the process with `XADD`, and
//! come back into local actors through a consumer group, at least once.
//!
//! ventus does not grow a network layer of its own: across processes and machines it
//! leans on Redis Streams, whose consumer groups give acknowledgement, redelivery and
//! fan-out.
//!
//! - [`Wire`]: the event types that cross the bridge, registered up front under stable
//!   wire names (never `std::any::type_name`).
//! - [`RedisEmitter`]: `emit` appends to the stream and returns the entry id, or a typed
//!   [`RemoteEmitError`] holding the event (type not registered, server refused).
//!   [`RedisEmitter::strategy`] gives a [`Strategy`](crate::Strategy) for an ordinary
//!   [`Emitter`](crate::Emitter); it never claims local once subscriptions.
//! - [`Reader`]: `XREADGROUP … BLOCK` on its own thread, each entry emitted into a local
//!   linker with [`Emitter::emit_and_wait`](crate::Emitter::emit_and_wait), `XACK` only
//!   when every local handler succeeded; retries up to a limit, then a dead-letter stream;
//!   `XAUTOCLAIM` of entries idle on crashed consumers; reconnection with backoff.
//! - [`trim_below_pending`]: opt-in trimming by `MINID` that never deletes an entry a
//!   group still needs.
//! - [`RedisConfig`]: all of it configured from a URL.
//!
//! # The payload format: MessagePack
//!
//! Payloads are MessagePack (`rmp-serde`), structs encoded as maps keyed by field name.
//! A stream is a meeting point: the services that read it are not always Rust (a Python
//! worker with `redis-py` and `msgpack`, a Go service, `redis-cli` while debugging), and
//! MessagePack is read everywhere, where postcard is a Rust-only format whose bytes only
//! the same Rust struct definition can decode. Field names also let a struct evolve (a new
//! field with `#[serde(default)]` still reads old entries), which matters for entries that
//! outlive a deployment. The cost, a few bytes per field name, is small beside Redis's own
//! per-entry overhead. Every entry says `format = msgpack`, so another format can be added
//! later without guessing.
//!
//! # Semantics
//!
//! - **At least once.** An entry is acknowledged after every local handler of it (and of
//!   the emissions they made) finished successfully. A crash or a lost connection before
//!   the `XACK` redelivers it, so handlers must be idempotent; entries carry an `id` field
//!   (unique per emit call, kept when the emitter retries the `XADD` after reconnecting)
//!   to deduplicate on. An `XADD` whose reply was lost in a crash may have been applied:
//!   a caller that emits again appends a second entry, under a new id.
//! - **Retries** emit the event again to every local subscription, including those that
//!   succeeded the first time (ventus has no way to aim an emission at a subset): again,
//!   handlers must be idempotent. The attempt count is Redis's delivery count, so it
//!   survives restarts and counts deliveries on other consumers.
//! - **Zero local subscribers**: the entry is acknowledged and counted
//!   ([`NoSubscribers::Ack`], the default, matching a local emit with no subscribers),
//!   or moved to the dead-letter stream ([`NoSubscribers::DeadLetter`]).
//! - **Undecodable entries** (unknown wire name, missing field, bytes that do not parse)
//!   go to the dead-letter stream at once, and to the linker's dead-letter hook with
//!   reason [`DeadLetterReason::UndecodableRemoteEntry`](crate::DeadLetterReason).
//! - **Durability** is the server's: run it with `--appendonly yes` (and
//!   `--appendfsync always` for no loss at all on a crash of the server).
//! - **Trimming** is opt-in, by `MINID` below the oldest entry any group still needs.
//!   `MAXLEN ~` is not offered: it deletes entries by count, pending or not, and breaks
//!   at-least-once without a word.
//!
//! # Examples
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use ventus::redis::{Reader, RedisConfig, RedisEmitter, Wire};
//! use ventus::{Emitter, Linker};
//!
//! #[derive(Serialize, Deserialize)]
//! struct OrderPlaced {
//!     id: u64,
//! }
//!
//! let mut wire = Wire::new();
//! wire.register::<OrderPlaced>("orders.placed").unwrap();
//! let config = RedisConfig::from_url("redis://127.0.0.1:6379/0?stream=orders&group=billing")
//!     .unwrap();
//!
//! // The consuming process: subscribe first, then start the reader.
//! let linker = Linker::new();
//! let _sub = linker
//!     .on::<OrderPlaced>()
//!     .call(|order: &OrderPlaced| println!("bill order {}", order.id))
//!     .unwrap();
//! let reader = Reader::start(&config, &wire, &Emitter::inline(&linker)).unwrap();
//!
//! // The producing process.
//! let producer = RedisEmitter::new(&config, &wire);
//! producer.emit(OrderPlaced { id: 7 }).unwrap();
//! # reader.stop();
//! ```

mod config;
mod producer;
mod reader;
mod trim;
mod wire;

pub use config::{ConfigError, NoSubscribers, RedisConfig};
pub use producer::{RedisEmitter, RedisStrategy, RemoteEmitError, StrategyError};
pub use reader::{
    REASON_FAILED, REASON_NO_SUBSCRIBER, REASON_UNDECODABLE, Reader, ReaderBuilder, ReaderStats,
    RemoteEntry,
};
pub use trim::{TrimReport, trim_below_pending};
pub use wire::{FORMAT, Wire, WireError};

/// The `redis` crate the bridge is built on (for its `RedisError`, and for connections of
/// your own, e.g. for [`trim_below_pending`]).
pub use ::redis as client;
