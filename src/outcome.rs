//! What `emit_and_wait` reports: each subscription's outcome.

use std::fmt;

use crate::emitter::Delivery;
use crate::error::Refusal;
use crate::subscription::SubscriptionId;

/// How one subscription's invocation of an emission ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler returned `()` or `Ok`.
    Succeeded,
    /// The handler returned `Err` (its `Display`; the error itself went to the failure
    /// callback).
    Failed(String),
    /// The handler panicked (the panic's message).
    Panicked(String),
    /// The subscription refused the event (full mailbox, shutdown, …).
    Refused(Refusal),
    /// Queued, but never run: discarded after an unsubscribe, or left at a shutdown's
    /// deadline (the dead-letter hook has it, with the reason).
    NotRun,
}

impl Outcome {
    /// Whether the handler ran and succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("succeeded"),
            Outcome::Failed(error) => write!(f, "failed: {error}"),
            Outcome::Panicked(message) => write!(f, "panicked: {message}"),
            Outcome::Refused(refusal) => write!(f, "refused: {refusal:?}"),
            Outcome::NotRun => f.write_str("not run"),
        }
    }
}

/// The result of [`Emitter::emit_and_wait`](crate::Emitter::emit_and_wait): every handler
/// of the emission, and of every emission they made, has finished.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Completed {
    pub(crate) delivery: Delivery,
    pub(crate) outcomes: Vec<(SubscriptionId, Outcome)>,
}

impl Completed {
    /// One outcome per subscription the emission reached (refusals included), in
    /// subscription order.
    pub fn outcomes(&self) -> &[(SubscriptionId, Outcome)] {
        &self.outcomes
    }

    /// The outcome of one subscription, if the emission reached it.
    pub fn outcome(&self, sub: SubscriptionId) -> Option<&Outcome> {
        self.outcomes
            .iter()
            .find(|(id, _)| *id == sub)
            .map(|(_, outcome)| outcome)
    }

    /// Whether every subscription ran and succeeded (true when there were none).
    pub fn all_succeeded(&self) -> bool {
        self.outcomes
            .iter()
            .all(|(_, outcome)| outcome.is_success())
    }

    /// How the emission was delivered (as [`Emitter::emit`](crate::Emitter::emit) returns
    /// it).
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }
}
