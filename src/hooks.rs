//! What ventus reports on the side: dead letters, errors that have no other place to go,
//! and debug lines.

use std::any::Any;
use std::fmt;

use crate::error::Failure;
use crate::event::{DynPayload, EventKey};
use crate::subscription::SubscriptionId;
use crate::sync::statics::{AtomicU8, Ordering as StaticOrdering};
use crate::sync::{Arc, AtomicU64, Ordering};

/// Why an event was not handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// Dropped by a full mailbox whose policy is `DropNewest`.
    Dropped,
    /// A once subscription was claimed by an emission whose delivery was then refused.
    RefusedOnceClaim,
    /// Queued for a subscription that was unsubscribed before it ran.
    DiscardedAfterUnsubscribe,
    /// Published to an emit-on-commit bus (`bus::EmitOnCommitBus`) that was dropped before
    /// it was applied: the event was never emitted.
    BusDroppedUnapplied,
    /// Still queued when a runtime's `shutdown_timeout` gave up waiting, or pushed into a
    /// nexus that stopped before it could dispatch it.
    LeftAtShutdown,
    /// Reached a nexus and was consumed by no filter, no handler for its type and no
    /// default handler (the event itself went to the nexus's error hook).
    UnhandledInNexus,
    /// An entry read from a remote stream (the Redis bridge) that could not be decoded into
    /// a registered event: unknown wire name, missing field, or bytes that do not parse.
    UndecodableRemoteEntry,
}

impl DeadLetterReason {
    pub(crate) fn index(self) -> usize {
        match self {
            DeadLetterReason::Dropped => 0,
            DeadLetterReason::RefusedOnceClaim => 1,
            DeadLetterReason::DiscardedAfterUnsubscribe => 2,
            DeadLetterReason::BusDroppedUnapplied => 3,
            DeadLetterReason::LeftAtShutdown => 4,
            DeadLetterReason::UnhandledInNexus => 5,
            DeadLetterReason::UndecodableRemoteEntry => 6,
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadLetterReason::Dropped => "dropped",
            DeadLetterReason::RefusedOnceClaim => "refused once claim",
            DeadLetterReason::DiscardedAfterUnsubscribe => "discarded after unsubscribe",
            DeadLetterReason::BusDroppedUnapplied => "bus dropped unapplied",
            DeadLetterReason::LeftAtShutdown => "left at shutdown",
            DeadLetterReason::UnhandledInNexus => "unhandled in a nexus",
            DeadLetterReason::UndecodableRemoteEntry => "undecodable remote entry",
        })
    }
}

/// An event that was not handled, and why.
pub struct DeadLetter {
    /// The key it was emitted under.
    pub key: EventKey,
    /// The subscription it did not reach.
    pub subscription: Option<SubscriptionId>,
    /// Why.
    pub reason: DeadLetterReason,
    /// The payload, when ventus still held it (an event given back in an `Err` goes to the
    /// caller instead, and is `None` here).
    pub payload: Option<DeadPayload>,
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("key", &self.key)
            .field("subscription", &self.subscription)
            .field("reason", &self.reason)
            .field("payload", &self.payload.as_ref().map(|_| ".."))
            .finish()
    }
}

/// The payload of a dead letter.
pub struct DeadPayload(pub(crate) DynPayload);

impl DeadPayload {
    /// The payload, if it is a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.0.get().downcast_ref::<T>()
    }

    /// The payload as `&dyn Any`.
    pub fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self.0.get()
    }
}

impl fmt::Debug for DeadPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeadPayload(..)")
    }
}

/// How many dead letters a linker reported, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadLetterCounts {
    /// [`DeadLetterReason::Dropped`].
    pub dropped: u64,
    /// [`DeadLetterReason::RefusedOnceClaim`].
    pub refused_once_claim: u64,
    /// [`DeadLetterReason::DiscardedAfterUnsubscribe`].
    pub discarded_after_unsubscribe: u64,
    /// [`DeadLetterReason::BusDroppedUnapplied`].
    pub bus_dropped_unapplied: u64,
    /// [`DeadLetterReason::LeftAtShutdown`].
    pub left_at_shutdown: u64,
    /// [`DeadLetterReason::UnhandledInNexus`].
    pub unhandled_in_nexus: u64,
    /// [`DeadLetterReason::UndecodableRemoteEntry`].
    pub undecodable_remote_entry: u64,
}

/// How many dead-letter reasons there are (the length of a counter array).
pub(crate) const REASONS: usize = 7;

impl DeadLetterCounts {
    /// The counts of an array of counters indexed by reason.
    pub(crate) fn of(counters: &[AtomicU64; REASONS]) -> Self {
        let get = |reason: DeadLetterReason| counters[reason.index()].load(Ordering::Relaxed);
        DeadLetterCounts {
            dropped: get(DeadLetterReason::Dropped),
            refused_once_claim: get(DeadLetterReason::RefusedOnceClaim),
            discarded_after_unsubscribe: get(DeadLetterReason::DiscardedAfterUnsubscribe),
            bus_dropped_unapplied: get(DeadLetterReason::BusDroppedUnapplied),
            left_at_shutdown: get(DeadLetterReason::LeftAtShutdown),
            unhandled_in_nexus: get(DeadLetterReason::UnhandledInNexus),
            undecodable_remote_entry: get(DeadLetterReason::UndecodableRemoteEntry),
        }
    }

    /// All reasons added up.
    pub fn total(&self) -> u64 {
        self.dropped
            + self.refused_once_claim
            + self.discarded_after_unsubscribe
            + self.bus_dropped_unapplied
            + self.left_at_shutdown
            + self.unhandled_in_nexus
            + self.undecodable_remote_entry
    }
}

/// Something that went wrong where no caller can be told: sent to the linker's error hook.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorReport {
    /// A handler failed and its subscription has no failure callback (explicit or default).
    UnhandledFailure {
        /// The subscription.
        subscription: SubscriptionId,
        /// The failure.
        failure: Failure,
    },
    /// A success or failure callback panicked (caught; the emitter is never told).
    CallbackPanicked {
        /// The subscription.
        subscription: SubscriptionId,
        /// `"success"` or `"failure"`.
        callback: &'static str,
        /// The panic message.
        message: String,
    },
    /// A payload's `Drop` panicked after its handler ran (caught).
    PayloadDropPanicked {
        /// The subscription that ran last with it (`None`: the emitter dropped it).
        subscription: Option<SubscriptionId>,
        /// The panic message.
        message: String,
    },
    /// The dead-letter hook itself panicked (caught).
    DeadLetterHookPanicked {
        /// The panic message.
        message: String,
    },
    /// A strategy returned an error after taking the event, so it could not be given back.
    StrategyBrokeContract {
        /// The strategy's `Debug` form.
        strategy: String,
        /// The error it returned.
        error: crate::error::DispatchError,
    },
}

impl fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorReport::UnhandledFailure {
                subscription,
                failure,
            } => write!(f, "subscription {subscription}: {failure}"),
            ErrorReport::CallbackPanicked {
                subscription,
                callback,
                message,
            } => write!(
                f,
                "subscription {subscription}: {callback} callback panicked: {message}"
            ),
            ErrorReport::PayloadDropPanicked {
                subscription: Some(subscription),
                message,
            } => write!(
                f,
                "subscription {subscription}: a payload's Drop panicked: {message}"
            ),
            ErrorReport::PayloadDropPanicked {
                subscription: None,
                message,
            } => write!(f, "a payload's Drop panicked: {message}"),
            ErrorReport::DeadLetterHookPanicked { message } => {
                write!(f, "the dead-letter hook panicked: {message}")
            }
            ErrorReport::StrategyBrokeContract { strategy, error } => write!(
                f,
                "strategy {strategy} took an event and then failed ({error}): the event is lost"
            ),
        }
    }
}

pub(crate) type ErrorHook = Arc<dyn Fn(&str, &ErrorReport) + Send + Sync>;
pub(crate) type DeadLetterHook = Arc<dyn Fn(DeadLetter) + Send + Sync>;
pub(crate) type DebugSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The side channels of one linker, shared by its subscriptions (so that a subscription
/// can still report after its linker was dropped).
pub(crate) struct Hooks {
    pub(crate) name: Arc<str>,
    pub(crate) error: Option<ErrorHook>,
    pub(crate) dead_letter: Option<DeadLetterHook>,
    pub(crate) debug_sink: Option<DebugSink>,
    pub(crate) debug: Option<bool>,
    dead_counts: [AtomicU64; REASONS],
}

impl Hooks {
    pub(crate) fn new(
        name: Arc<str>,
        error: Option<ErrorHook>,
        dead_letter: Option<DeadLetterHook>,
        debug_sink: Option<DebugSink>,
        debug: Option<bool>,
    ) -> Self {
        Self {
            name,
            error,
            dead_letter,
            debug_sink,
            debug,
            dead_counts: [
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ],
        }
    }

    /// Reports an error: to the hook, or one line on stderr. Never unwinds (a report may
    /// hold user values whose `Display` or `Drop` panic).
    pub(crate) fn error(&self, report: ErrorReport) {
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.error_inner(report)));
        if let Err(panic) = result {
            let message = crate::subscription::caught_message(panic);
            eprintln!(
                "ventus [{}]: reporting an error panicked: {message}",
                self.name
            );
        }
    }

    fn error_inner(&self, report: ErrorReport) {
        match &self.error {
            Some(hook) => {
                let hook = hook.clone();
                let name = self.name.clone();
                // A panicking error hook has nowhere left to go: print it and move on.
                if let Err(panic) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&name, &report)))
                {
                    eprintln!(
                        "ventus [{}]: the error hook panicked ({}) on: {report}",
                        self.name,
                        panic_message(&*panic)
                    );
                }
            }
            None => eprintln!("ventus [{}]: {report}", self.name),
        }
    }

    /// Whether anyone wants dead-letter payloads (otherwise they are only counted).
    pub(crate) fn wants_dead_letters(&self) -> bool {
        self.dead_letter.is_some()
    }

    /// Counts a dead letter and hands it to the hook.
    pub(crate) fn dead_letter(
        &self,
        letter: impl FnOnce() -> DeadLetter,
        reason: DeadLetterReason,
    ) {
        // Relaxed: a statistic; dead letters are off the hot path.
        self.dead_counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = &self.dead_letter {
            let letter = letter();
            if let Err(panic) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(letter)))
            {
                self.error(ErrorReport::DeadLetterHookPanicked {
                    message: panic_message(&*panic),
                });
            }
        }
    }

    pub(crate) fn dead_letter_counts(&self) -> DeadLetterCounts {
        DeadLetterCounts::of(&self.dead_counts)
    }

    /// Whether debug lines are on for this linker (its own flag, else the global one).
    #[inline]
    pub(crate) fn debug_enabled(&self, emitter: Option<bool>) -> bool {
        match emitter.or(self.debug) {
            Some(on) => on,
            None => global_debug(),
        }
    }

    /// Writes one debug line to the sink.
    pub(crate) fn debug_line(&self, message: fmt::Arguments<'_>) {
        let message = message.to_string();
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &self.debug_sink {
                Some(sink) => sink(&self.name, &message),
                None => default_debug_sink(&self.name, &message),
            }));
        if let Err(panic) = result {
            let panic = crate::subscription::caught_message(panic);
            eprintln!("ventus [{}]: the debug sink panicked: {panic}", self.name);
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(not(feature = "tracing"))]
fn default_debug_sink(linker: &str, message: &str) {
    eprintln!("ventus [{linker}] {message}");
}

#[cfg(feature = "tracing")]
fn default_debug_sink(linker: &str, message: &str) {
    tracing::debug!(target: "ventus", linker, "{message}");
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

// 0: not read yet; 1: off; 2: on.
static GLOBAL_DEBUG: AtomicU8 = AtomicU8::new(0);

/// Turns global debug mode on or off, for every linker and emitter that has no flag of its
/// own. Its initial value is `VENTUS_DEBUG` (`1`, `true`, `yes` or `on` turn it on), read
/// once, on first use.
pub fn set_global_debug(on: bool) {
    // Relaxed: a flag with no data behind it.
    GLOBAL_DEBUG.store(if on { 2 } else { 1 }, StaticOrdering::Relaxed);
}

/// Whether global debug mode is on (see [`set_global_debug`]).
#[inline]
pub fn global_debug() -> bool {
    match GLOBAL_DEBUG.load(StaticOrdering::Relaxed) {
        0 => {
            let on = std::env::var("VENTUS_DEBUG").is_ok_and(|value| {
                matches!(
                    value.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            });
            // A concurrent `set_global_debug` wins over the environment.
            let _ = GLOBAL_DEBUG.compare_exchange(
                0,
                if on { 2 } else { 1 },
                StaticOrdering::Relaxed,
                StaticOrdering::Relaxed,
            );
            GLOBAL_DEBUG.load(StaticOrdering::Relaxed) == 2
        }
        value => value == 2,
    }
}
