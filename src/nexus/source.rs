//! Sources: pull converters on their own threads, iterators, and sockets (any
//! `mio::event::Source` with a converter, edge-triggered, drained in bounded batches from
//! a ready list).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};

use super::event::{EventFactory, EventType, NexusEvent};
use super::{Nexus, NexusError, PushError, Shared};
use crate::hooks::{DeadLetterReason, panic_message};
use crate::sync::statics::{AtomicU8, Ordering};
use crate::sync::{Arc, Backoff};

/// Identifies a source of a nexus (in error reports and for removal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(pub(crate) u64);

/// How long closing a pull source waits for its thread before reporting it.
const CLOSE_BOUND: Duration = Duration::from_secs(1);

/// A pull source (async_nexus's `SimpleEventConverter`): `obtain_event` may block; it runs
/// on a thread of its own, and the events it returns are pushed into the nexus (waiting,
/// with bounded spinning then short sleeps, while the inbox is full). A panic in
/// `obtain_event` is caught: the source ends, and the panic is reported to the nexus's
/// error hook as [`NexusError::Source`] (an `io::Error` saying "the source panicked: …").
pub trait Converter: Send + 'static {
    /// The next event; `None` when there are no more (the source is then removed).
    fn obtain_event(&mut self, factory: &EventFactory) -> Option<NexusEvent>;

    /// A function that unblocks a pending `obtain_event` (called on close, from another
    /// thread); `None` if `obtain_event` never blocks for long.
    fn closer(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }
}

/// Turns readiness of a socket into events: called until it returns `WouldBlock` (then
/// the source is drained) or the per-pass batch is spent (then it stays on the ready list
/// and is revisited next pass). `Ok(None)`: read something that makes no event. Other
/// errors are reported ([`NexusError::Source`]) and end this readiness; so does a panic
/// (caught, and reported the same way as "the source panicked: …"). The same holds for an
/// iterator source whose `next` panics, which is then removed.
pub trait SocketConverter<S>: Send + 'static {
    /// Reads once from `source`.
    fn convert(&mut self, source: &mut S, factory: &EventFactory)
    -> io::Result<Option<NexusEvent>>;
}

impl<S, F> SocketConverter<S> for F
where
    F: FnMut(&mut S, &EventFactory) -> io::Result<Option<NexusEvent>> + Send + 'static,
{
    fn convert(
        &mut self,
        source: &mut S,
        factory: &EventFactory,
    ) -> io::Result<Option<NexusEvent>> {
        self(source, factory)
    }
}

/// The payload of the ready-made UDP source: one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Who sent it.
    pub from: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The payload of the ready-made TCP listener: an accepted connection (non-blocking; add
/// it to a nexus with [`Nexus::add_socket`] to read it).
#[derive(Debug)]
pub struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The peer.
    pub peer: SocketAddr,
}

trait ReadySource: Send {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()>;
    fn deregister(&mut self, registry: &Registry);
    /// Reads at most `max` times; `true` if drained (`WouldBlock` or an error).
    fn read(
        &mut self,
        factory: &EventFactory,
        max: usize,
        out: &mut Vec<NexusEvent>,
        errors: &mut Vec<io::Error>,
    ) -> bool;
}

struct Socket<S, C> {
    source: S,
    converter: C,
    interest: Interest,
}

impl<S: Source + Send + 'static, C: SocketConverter<S>> ReadySource for Socket<S, C> {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.source, token, self.interest)
    }

    fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.source);
    }

    fn read(
        &mut self,
        factory: &EventFactory,
        max: usize,
        out: &mut Vec<NexusEvent>,
        errors: &mut Vec<io::Error>,
    ) -> bool {
        for _ in 0..max {
            let converted = match catch_unwind(AssertUnwindSafe(|| {
                self.converter.convert(&mut self.source, factory)
            })) {
                Ok(converted) => converted,
                Err(panic) => {
                    errors.push(panicked(&*panic));
                    return true;
                }
            };
            match converted {
                Ok(Some(event)) => out.push(event),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    errors.push(e);
                    return true;
                }
            }
        }
        false
    }
}

/// A caught panic of a source, as the error it is reported with.
fn panicked(panic: &(dyn std::any::Any + Send)) -> io::Error {
    io::Error::other(format!("the source panicked: {}", panic_message(panic)))
}

struct SocketEntry {
    id: SourceId,
    source: Box<dyn ReadySource>,
    registered: bool,
    ready: bool,
}

struct PullEntry {
    id: SourceId,
    converter: Option<Box<dyn Converter>>,
    closer: Option<Box<dyn Fn() + Send + Sync>>,
    closed: Arc<AtomicU8>,
    /// A panic of `obtain_event`, caught on the source's thread, waiting to be reported
    /// by the loop.
    panicked: Arc<std::sync::Mutex<Option<io::Error>>>,
    thread: Option<crate::sync::thread::JoinHandle<()>>,
}

impl PullEntry {
    /// The panic its thread caught, if any, as the error to report (once).
    fn take_panic(&self) -> Option<NexusError> {
        let error = self
            .panicked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        Some(NexusError::Source {
            source: self.id,
            error,
        })
    }
}

/// The sources of one nexus (owned by the loop).
#[derive(Default)]
pub(crate) struct Sources {
    sockets: Vec<Option<SocketEntry>>,
    ready: VecDeque<usize>,
    iters: Vec<(SourceId, Box<dyn Iterator<Item = NexusEvent> + Send>)>,
    pulls: Vec<PullEntry>,
    next_id: u64,
    started: bool,
}

impl Sources {
    fn id(&mut self) -> SourceId {
        self.next_id += 1;
        SourceId(self.next_id)
    }

    /// Whether a source has work without waiting (not drained, or an iterator).
    pub(crate) fn busy(&self) -> bool {
        !self.ready.is_empty() || !self.iters.is_empty()
    }

    pub(crate) fn mark_ready(&mut self, token: Token) {
        if let Some(Some(entry)) = self.sockets.get_mut(token.0) {
            if !entry.ready {
                entry.ready = true;
                self.ready.push_back(token.0);
            }
        }
    }

    pub(crate) fn start(
        &mut self,
        shared: &Arc<Shared>,
        registry: &Registry,
        errors: &mut Vec<NexusError>,
    ) {
        self.started = true;
        for index in 0..self.sockets.len() {
            self.register_socket(index, registry, errors);
        }
        for index in 0..self.pulls.len() {
            self.spawn_pull(index, shared, errors);
        }
    }

    fn register_socket(&mut self, index: usize, registry: &Registry, errors: &mut Vec<NexusError>) {
        let Some(Some(entry)) = self.sockets.get_mut(index) else {
            return;
        };
        if entry.registered {
            return;
        }
        match entry.source.register(registry, Token(index)) {
            Ok(()) => {
                entry.registered = true;
                // Data may have arrived before registration: read it once (edge-triggered).
                entry.ready = true;
                self.ready.push_back(index);
            }
            Err(error) => errors.push(NexusError::Source {
                source: entry.id,
                error,
            }),
        }
    }

    fn spawn_pull(&mut self, index: usize, shared: &Arc<Shared>, errors: &mut Vec<NexusError>) {
        let entry = &mut self.pulls[index];
        let Some(mut converter) = entry.converter.take() else {
            return;
        };
        let closed = entry.closed.clone();
        let slot = entry.panicked.clone();
        let shared = shared.clone();
        let name = format!("ventus-nexus-source-{}", entry.id.0);
        let spawned = crate::sync::thread::spawn(name, None, move || {
            let factory = shared.factory.clone();
            // Relaxed: a flag; close() also calls the closer to unblock obtain_event.
            while closed.load(Ordering::Relaxed) == 0 {
                let obtained = catch_unwind(AssertUnwindSafe(|| converter.obtain_event(&factory)));
                let event = match obtained {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(panic) => {
                        // The loop reports it on its next pass (woken for it).
                        let error = panicked(&*panic);
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
                        shared.inbox.wake();
                        break;
                    }
                };
                push_waiting(&shared, &closed, event);
            }
        });
        match spawned {
            Ok(thread) => entry.thread = Some(thread),
            Err(error) => errors.push(NexusError::Source {
                source: entry.id,
                error,
            }),
        }
    }

    /// Collects this pass's events from ready sockets and iterators.
    pub(crate) fn collect(
        &mut self,
        factory: &EventFactory,
        batch: usize,
        out: &mut Vec<NexusEvent>,
        errors: &mut Vec<NexusError>,
    ) {
        // Each source on the ready list gets one bounded batch per pass, in turn.
        for _ in 0..self.ready.len() {
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            let Some(Some(entry)) = self.sockets.get_mut(index) else {
                continue;
            };
            let mut io_errors = Vec::new();
            let drained = entry.source.read(factory, batch, out, &mut io_errors);
            for error in io_errors {
                errors.push(NexusError::Source {
                    source: entry.id,
                    error,
                });
            }
            if drained {
                entry.ready = false;
            } else {
                self.ready.push_back(index);
            }
        }
        let mut index = 0;
        while index < self.iters.len() {
            let (id, iter) = &mut self.iters[index];
            let mut exhausted = false;
            for _ in 0..batch {
                match catch_unwind(AssertUnwindSafe(|| iter.next())) {
                    Ok(Some(event)) => out.push(event),
                    Ok(None) => {
                        exhausted = true;
                        break;
                    }
                    // A panicking iterator is in no known state: reported and removed.
                    Err(panic) => {
                        errors.push(NexusError::Source {
                            source: *id,
                            error: panicked(&*panic),
                        });
                        exhausted = true;
                        break;
                    }
                }
            }
            if exhausted {
                let removed = self.iters.remove(index);
                drop(removed);
            } else {
                index += 1;
            }
        }
        errors.extend(self.pulls.iter().filter_map(PullEntry::take_panic));
    }

    /// Closes every source: deregisters sockets, closes pull sources and joins their
    /// threads (bounded; a thread still running after the bound is reported).
    pub(crate) fn close(&mut self, registry: &Registry, errors: &mut Vec<NexusError>) {
        for entry in self.sockets.iter_mut().flatten() {
            if entry.registered {
                entry.source.deregister(registry);
            }
        }
        self.sockets.clear();
        self.ready.clear();
        self.iters.clear();
        for entry in &self.pulls {
            entry.closed.store(1, Ordering::Relaxed);
            if let Some(closer) = &entry.closer {
                closer();
            }
        }
        let start = Instant::now();
        for mut entry in self.pulls.drain(..) {
            let Some(thread) = entry.thread.take() else {
                continue;
            };
            while !crate::sync::thread::is_finished(&thread) && start.elapsed() < CLOSE_BOUND {
                std::thread::sleep(Duration::from_millis(1));
            }
            if crate::sync::thread::is_finished(&thread) {
                let _ = thread.join();
            } else {
                errors.push(NexusError::SourceNotClosed { source: entry.id });
            }
            // A panic caught since the last pass.
            errors.extend(entry.take_panic());
        }
    }
}

/// Pushes from a source thread, waiting while the inbox is full (bounded spin, then short
/// sleeps), until pushed, closed or stopped (then a dead letter).
fn push_waiting(shared: &Shared, closed: &AtomicU8, event: NexusEvent) {
    let backoff = Backoff::new();
    let mut event = event;
    loop {
        match shared.push(event) {
            Ok(()) => return,
            Err(PushError::Full(back)) if closed.load(Ordering::Relaxed) == 0 => {
                event = back;
                if backoff.is_completed() {
                    std::thread::sleep(Duration::from_micros(100));
                } else {
                    backoff.snooze();
                }
            }
            Err(refused) => {
                shared.dead_letter(DeadLetterReason::LeftAtShutdown, &refused.into_inner());
                return;
            }
        }
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("sockets", &self.sockets.iter().flatten().count())
            .field("ready", &self.ready.len())
            .field("iterators", &self.iters.len())
            .field("pull", &self.pulls.len())
            .finish()
    }
}

impl Nexus {
    /// Adds a pull source; its thread starts with the loop (or now, if the loop runs).
    pub fn add_converter(&mut self, converter: impl Converter) -> SourceId {
        let id = self.sources.id();
        let closer = converter.closer();
        self.sources.pulls.push(PullEntry {
            id,
            converter: Some(Box::new(converter)),
            closer,
            closed: Arc::new(AtomicU8::new(0)),
            panicked: Arc::new(std::sync::Mutex::new(None)),
            thread: None,
        });
        if self.sources.started {
            let mut errors = Vec::new();
            let index = self.sources.pulls.len() - 1;
            self.sources.spawn_pull(index, &self.shared, &mut errors);
            for error in errors {
                self.report(error);
            }
        }
        id
    }

    /// Adds an iterator source, read on the loop in bounded batches and removed when
    /// exhausted (its `next` must not block).
    pub fn add_iter(
        &mut self,
        events: impl IntoIterator<Item = NexusEvent, IntoIter: Send + 'static>,
    ) -> SourceId {
        let id = self.sources.id();
        self.sources.iters.push((id, Box::new(events.into_iter())));
        id
    }

    /// Adds a socket (any `mio::event::Source`) with its converter, called on readiness.
    pub fn add_socket<S: Source + Send + 'static>(
        &mut self,
        source: S,
        interest: Interest,
        converter: impl SocketConverter<S>,
    ) -> SourceId {
        let id = self.sources.id();
        let index = self.sources.sockets.len();
        self.sources.sockets.push(Some(SocketEntry {
            id,
            source: Box::new(Socket {
                source,
                converter,
                interest,
            }),
            registered: false,
            ready: false,
        }));
        if self.sources.started {
            let mut errors = Vec::new();
            self.sources
                .register_socket(index, self.poll.registry(), &mut errors);
            for error in errors {
                self.report(error);
            }
        }
        id
    }

    /// Adds a UDP socket: each datagram becomes an event of `event_type` with a
    /// [`Datagram`] payload.
    pub fn add_udp(&mut self, socket: UdpSocket, event_type: impl Into<EventType>) -> SourceId {
        let event_type = event_type.into();
        let mut buffer = vec![0u8; 65_536];
        self.add_socket(
            socket,
            Interest::READABLE,
            move |socket: &mut UdpSocket, factory: &EventFactory| {
                let (len, from) = socket.recv_from(&mut buffer)?;
                let datagram = Datagram {
                    from,
                    data: buffer[..len].to_vec(),
                };
                Ok(Some(NexusEvent::new(
                    factory.next_id(),
                    event_type.clone(),
                    datagram,
                )))
            },
        )
    }

    /// Adds a TCP listener: each accepted connection becomes an event of `event_type`
    /// with an [`Accepted`] payload.
    pub fn add_tcp_listener(
        &mut self,
        listener: TcpListener,
        event_type: impl Into<EventType>,
    ) -> SourceId {
        let event_type = event_type.into();
        self.add_socket(
            listener,
            Interest::READABLE,
            move |listener: &mut TcpListener, factory: &EventFactory| {
                let (stream, peer) = listener.accept()?;
                Ok(Some(NexusEvent::new(
                    factory.next_id(),
                    event_type.clone(),
                    Accepted { stream, peer },
                )))
            },
        )
    }

    /// Removes a source (closing a pull source, bounded); whether it was there.
    pub fn remove_source(&mut self, id: SourceId) -> bool {
        if let Some(slot) = self
            .sources
            .sockets
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|e| e.id == id))
        {
            if let Some(mut entry) = slot.take() {
                if entry.registered {
                    entry.source.deregister(self.poll.registry());
                }
            }
            return true;
        }
        if let Some(index) = self.sources.iters.iter().position(|(i, _)| *i == id) {
            drop(self.sources.iters.remove(index));
            return true;
        }
        if let Some(index) = self.sources.pulls.iter().position(|e| e.id == id) {
            let entry = self.sources.pulls.remove(index);
            let mut one = Sources {
                pulls: vec![entry],
                ..Sources::default()
            };
            let mut errors = Vec::new();
            one.close(self.poll.registry(), &mut errors);
            for error in errors {
                self.report(error);
            }
            return true;
        }
        false
    }
}
