//! Event domains: a handler in one nexus that pushes chosen types into another.

use std::fmt;

use super::event::NexusEvent;
use super::producer::{Producer, PushError};
use super::routing::Handler;
use super::{Context, Nexus, NexusError};

/// Forwards the events it handles from one nexus into another (async_nexus's
/// `AsyncEventBoundary`): register it as the handler of the chosen types in the first
/// nexus; only those types cross, which keeps the second nexus private. It pushes without
/// blocking, so two nexuses linked both ways cannot deadlock: an event the other side
/// refuses (full or stopped) goes to this nexus's error hook as [`NexusError::Refused`].
/// A cheap `Clone`, so one boundary can serve several types.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ventus::{Boundary, Nexus, NexusEvent};
///
/// let mut front = Nexus::new().unwrap();
/// let mut back = Nexus::new().unwrap();
/// let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let l = log.clone();
/// back.on("log", move |event, _| l.lock().unwrap().push(event.id())).unwrap();
/// front.add_handler("log", Boundary::new(&back)).unwrap();
/// front.producer().push(NexusEvent::new(9, "log", "hello")).unwrap();
/// front.turn(Some(Duration::ZERO)).unwrap();
/// back.turn(Some(Duration::ZERO)).unwrap();
/// assert_eq!(*log.lock().unwrap(), [9]);
/// ```
#[derive(Clone)]
pub struct Boundary {
    producer: Producer,
}

impl Boundary {
    /// A boundary into `target`.
    pub fn new(target: &Nexus) -> Self {
        Self {
            producer: target.producer(),
        }
    }

    /// A boundary through `producer` (which may feed several nexuses; then each gets the
    /// event only if its payload is `Clone` through [`Producer::emit`] — a boundary over
    /// several nexuses pushes to none and reports the event).
    pub fn from_producer(producer: Producer) -> Self {
        Self { producer }
    }
}

impl Handler for Boundary {
    fn handle(&mut self, event: NexusEvent, cx: &mut Context<'_>) {
        match self.producer.push(event) {
            Ok(()) => {}
            Err(
                PushError::Full(event)
                | PushError::Stopped(event)
                | PushError::NoNexus(event)
                | PushError::SeveralNexuses(event),
            ) => cx.report(NexusError::Refused(event)),
        }
    }
}

impl fmt::Debug for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Boundary")
            .field("producer", &self.producer)
            .finish()
    }
}
