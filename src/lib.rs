#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod actor;
pub mod bus;
mod carrier;
mod emitter;
mod error;
mod event;
mod handler;
mod hooks;
mod linker;
mod nexus;
mod outcome;
#[cfg(feature = "redis")]
pub mod redis;
mod stats;
mod subscription;
mod sync;

pub use actor::{
    DEFAULT_BATCH, DEFAULT_LINGER, DEFAULT_POLL, MAX_LINGER, MAX_POLL, Placement, Runtime,
    RuntimeBuilder, RuntimeStats, ShutdownReport, Spin, WorkGuard, shutdown_default,
};
#[cfg(not(loom))]
pub use emitter::Rayon;
pub use emitter::{
    Actors, Batch, DeferredEmission, Delivery, Emission, Emitter, Inline, LocalEmitter, Reply,
    Strategy,
};
pub use error::{
    AskError, BoxError, BuildError, DispatchError, EmitError, Failure, Refusal, SubscribeError,
    WouldDeadlock,
};
pub use event::{Event, EventId, EventKey, EventMeta, TypeKey};
pub use handler::{HandlerResult, NoArg, OnSuccess, WithValue};
pub use hooks::{
    DeadLetter, DeadLetterCounts, DeadLetterReason, DeadPayload, ErrorReport, global_debug,
    set_global_debug,
};
pub use linker::{
    DEFAULT_SHARDS, Dynamic, IntoSuccess, Linker, LinkerBuilder, Named, NoSuccess,
    SubscribeBuilder, SuccessCallback, Typed, WithSuccess,
};
pub use nexus::{
    Accepted, Boundary, Clock, Context, Converter, DEFAULT_MIN_INTERVAL, DEFAULT_NEXUS_BATCH,
    DEFAULT_NEXUS_CAPACITY, Datagram, Discarder, EventFactory, EventType, EventTypeError, Fanout,
    Filter, Forwarder, Handler, IdChoice, JoinError, ManualClock, MissedTicks, Nexus, NexusBuilder,
    NexusError, NexusEvent, NexusHandle, NexusState, NexusStats, Overflow, Producer, PushError,
    RegisterError, Registrar, RunError, SocketConverter, SourceId, StartError, Stopper,
    SystemClock, Timer, TimerError, TimerHandle, TimerKind,
};
#[cfg(loom)]
#[doc(hidden)]
pub use nexus::{Drained as NexusDrained, Inbox as NexusInbox, Taken as NexusTaken};
pub use outcome::{Completed, Outcome};
pub use stats::{LatencyStats, MAX_TRACKED_NANOS, write_hgrm};
pub use subscription::{
    DEFAULT_CAPACITY, MAX_DEPTH, OnPanic, Policy, Subscription, SubscriptionGuard, SubscriptionId,
    SubscriptionStats,
};
