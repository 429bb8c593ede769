//! The consumer side: a thread that reads the stream through a consumer group and emits
//! each entry into a local linker with `emit_and_wait`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::redis::Value;
use ::redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};

use crate::emitter::Emitter;
use crate::event::{DynPayload, EventKey};
use crate::hooks::{DeadLetter, DeadLetterReason, DeadPayload};
use crate::outcome::Completed;

use super::config::{NoSubscribers, RedisConfig};
use super::trim::trim_below_pending;
use super::wire::{FORMAT, Local, Wire};

const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// The `dead_reason` of an entry moved to the dead-letter stream because its local
/// handlers kept failing.
pub const REASON_FAILED: &str = "handler failed";
/// The `dead_reason` of an entry that could not be decoded (the same words as
/// [`DeadLetterReason::UndecodableRemoteEntry`]).
pub const REASON_UNDECODABLE: &str = "undecodable remote entry";
/// The `dead_reason` of an entry that no local subscription took, under
/// [`NoSubscribers::DeadLetter`].
pub const REASON_NO_SUBSCRIBER: &str = "no local subscriber";

/// An entry the reader could not decode, as the local dead-letter hook receives it (the
/// [`DeadLetter`]'s payload, with reason
/// [`DeadLetterReason::UndecodableRemoteEntry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The stream it was read from.
    pub stream: String,
    /// Its stream id.
    pub id: String,
    /// Its fields, as stored.
    pub fields: Vec<(String, Vec<u8>)>,
    /// Why it could not be decoded.
    pub reason: String,
}

/// What a [`Reader`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderStats {
    /// Entries received: new ones, its own pending ones re-read, and claimed ones.
    pub read: u64,
    /// Entries acknowledged after every local handler succeeded.
    pub acked: u64,
    /// Failed attempts: a handler failed or panicked, or a subscription refused the event.
    pub failed: u64,
    /// Entries moved to the dead-letter stream, for any reason.
    pub dead_lettered: u64,
    /// Entries that could not be decoded (also in `dead_lettered`).
    pub undecodable: u64,
    /// Entries with no local subscriber (acknowledged or dead-lettered, by policy).
    pub no_subscribers: u64,
    /// Entries claimed from idle consumers with `XAUTOCLAIM`.
    pub claimed: u64,
    /// Reconnections after a lost connection.
    pub reconnects: u64,
    /// Errors from Redis (connecting or a command), each followed by a reconnection.
    pub errors: u64,
    /// Entries deleted by the reader's opt-in trimming.
    pub trimmed: u64,
}

#[derive(Default)]
struct Counters {
    read: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    undecodable: AtomicU64,
    no_subscribers: AtomicU64,
    claimed: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
    trimmed: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    // Relaxed: statistics.
    counter.fetch_add(n, Ordering::Relaxed);
}

type ErrorHook = Arc<dyn Fn(&str, &::redis::RedisError) + Send + Sync>;

struct Shared {
    stop: AtomicBool,
    connected: AtomicBool,
    counters: Counters,
}

/// Builds a [`Reader`]; from [`Reader::builder`].
pub struct ReaderBuilder {
    config: RedisConfig,
    wire: Wire,
    emitter: Emitter,
    on_error: Option<ErrorHook>,
}

impl fmt::Debug for ReaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderBuilder")
            .field("config", &self.config)
            .field("wire", &self.wire)
            .field("emitter", &self.emitter)
            .finish_non_exhaustive()
    }
}

impl ReaderBuilder {
    /// Where Redis errors go (each is followed by a reconnection with backoff): `hook`
    /// receives the consumer name and the error. The default prints one line on stderr.
    pub fn on_error(
        mut self,
        hook: impl Fn(&str, &::redis::RedisError) + Send + Sync + 'static,
    ) -> Self {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// Starts the reader's thread. It connects (retrying with backoff while the server is
    /// unreachable), creates the group if needed, and starts reading.
    ///
    /// # Errors
    ///
    /// The OS's error when the thread does not start.
    pub fn start(self) -> std::io::Result<Reader> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let consumer = self.config.consumer.clone();
        let worker = Worker {
            dead_stream: self.config.dead_letter_stream_name(),
            config: self.config,
            wire: self.wire,
            emitter: self.emitter,
            on_error: self.on_error,
            shared: shared.clone(),
            to_ack: Vec::new(),
            pel_due: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("ventus-redis-{consumer}"))
            .spawn(move || worker.run())?;
        Ok(Reader {
            shared,
            thread: Some(thread),
            consumer,
        })
    }
}

/// Reads a stream through a consumer group on its own thread and emits every entry into
/// a local linker with `emit_and_wait`; acknowledges (`XACK`) an entry only when every
/// local handler of it succeeded.
///
/// - New entries come from `XREADGROUP … BLOCK`; at start and after every reconnection the
///   reader first re-reads its own pending entries (those a previous run of the same
///   consumer name read and did not acknowledge).
/// - A failed entry (a handler returned `Err` or panicked, or a subscription refused it)
///   stays pending and is re-read after [`retry_delay`](RedisConfig::retry_delay); its
///   attempts are Redis's delivery count. At [`max_attempts`](RedisConfig::max_attempts)
///   it is moved to the dead-letter stream and acknowledged, in one `MULTI`. A retry
///   emits the event again to every local subscription, the ones that succeeded
///   included, so **handlers must be idempotent** (at-least-once asks that anyway: a crash
///   between the handlers and the `XACK` redelivers the entry).
/// - An entry that cannot be decoded goes to the dead-letter stream at once (reason
///   `undecodable remote entry`) and to the linker's dead-letter hook as a
///   [`RemoteEntry`].
/// - An entry no local subscription takes: see [`NoSubscribers`] (acknowledged by
///   default).
/// - Entries pending on other consumers for longer than
///   [`claim_idle`](RedisConfig::claim_idle) are claimed with `XAUTOCLAIM` (Redis ≥ 6.2)
///   and handled here.
/// - A lost connection (server restart, network) is retried with a backoff from 50 ms
///   doubling up to [`backoff_max`](RedisConfig::backoff_max); nothing unacknowledged is
///   lost, since it stays pending in the group (with `appendonly yes` on the server).
///
/// Each dead-letter entry holds the original fields plus `dead_reason`, `dead_detail`,
/// `dead_entry` (the original id), `dead_stream`, `dead_group`, `dead_consumer` and
/// `dead_attempts`.
///
/// Entries are handled one at a time, in order. Dropping the reader stops it, as
/// [`stop`](Self::stop) does; a shut-down local runtime stops it too (see
/// [`is_running`](Self::is_running)).
pub struct Reader {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    consumer: String,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("consumer", &self.consumer)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A builder for a reader of `config`'s stream and group, decoding with `wire` and
    /// emitting through `emitter` (inline, actors, …: `emit_and_wait` waits for every
    /// handler whatever the strategy).
    pub fn builder(config: &RedisConfig, wire: &Wire, emitter: &Emitter) -> ReaderBuilder {
        ReaderBuilder {
            config: config.clone(),
            wire: wire.clone(),
            emitter: emitter.clone(),
            on_error: None,
        }
    }

    /// Starts a reader with the default error hook.
    ///
    /// # Errors
    ///
    /// The OS's error when the thread does not start.
    pub fn start(config: &RedisConfig, wire: &Wire, emitter: &Emitter) -> std::io::Result<Self> {
        Self::builder(config, wire, emitter).start()
    }

    /// The consumer name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Whether its thread still runs: it stops on [`stop`](Self::stop), and by itself
    /// when the local runtime behind its emitter is shut down (`emit_and_wait` answers
    /// `Shutdown`; the entry in hand stays pending).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Whether it holds a working connection right now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// The counters.
    pub fn stats(&self) -> ReaderStats {
        let c = &self.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReaderStats {
            read: get(&c.read),
            acked: get(&c.acked),
            failed: get(&c.failed),
            dead_lettered: get(&c.dead_lettered),
            undecodable: get(&c.undecodable),
            no_subscribers: get(&c.no_subscribers),
            claimed: get(&c.claimed),
            reconnects: get(&c.reconnects),
            errors: get(&c.errors),
            trimmed: get(&c.trimmed),
        }
    }

    /// Stops reading and joins the thread: returns after the entry being handled (and the
    /// pending acknowledgements, if the server is reachable) is done, at the latest after
    /// one block time. Entries read and not yet handled stay pending for this consumer
    /// name (or another consumer's `XAUTOCLAIM`).
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

enum Flow {
    Continue,
    /// The local runtime is shut down: stop reading (what was read stays pending).
    Stop,
}

struct Worker {
    config: RedisConfig,
    dead_stream: String,
    wire: Wire,
    emitter: Emitter,
    on_error: Option<ErrorHook>,
    shared: Arc<Shared>,
    /// Ids handled successfully, acknowledged at the end of each batch.
    to_ack: Vec<String>,
    /// When to re-read this consumer's own pending entries (a failed entry's retry).
    pel_due: Option<Instant>,
}

impl Worker {
    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn report(&self, error: &::redis::RedisError) {
        add(&self.counters().errors, 1);
        match &self.on_error {
            Some(hook) => hook(&self.config.consumer, error),
            None => eprintln!(
                "ventus redis reader [{}]: {error}; reconnecting",
                self.config.consumer
            ),
        }
    }

    /// Sleeps up to `d`, waking early on stop.
    fn pause(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while !self.stopped() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    fn run(mut self) {
        let mut conn: Option<::redis::Connection> = None;
        let mut backoff = MIN_BACKOFF;
        let mut connected_before = false;
        let now = Instant::now();
        let mut claim_due = now;
        let mut trim_due = self.config.trim_every.map(|every| now + every);
        while !self.stopped() {
            let c = match &mut conn {
                Some(c) => c,
                None => match self.open() {
                    Ok(c) => {
                        if connected_before {
                            add(&self.counters().reconnects, 1);
                        }
                        connected_before = true;
                        self.shared.connected.store(true, Ordering::Relaxed);
                        backoff = MIN_BACKOFF;
                        // Our own pending entries first: a previous run's, or this run's
                        // before the connection was lost.
                        self.pel_due = Some(Instant::now());
                        conn.insert(c)
                    }
                    Err(error) => {
                        self.report(&error);
                        self.pause(backoff);
                        backoff = (backoff * 2).min(self.config.backoff_max);
                        continue;
                    }
                },
            };
            let result = self.step(c, &mut claim_due, &mut trim_due);
            let result = result.and_then(|flow| self.flush_acks(c).map(|()| flow));
            match result {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break,
                Err(error) => {
                    // Unacknowledged ids stay pending: handled again after reconnecting.
                    self.to_ack.clear();
                    self.shared.connected.store(false, Ordering::Relaxed);
                    conn = None;
                    self.report(&error);
                    self.pause(backoff);
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
            }
        }
        if let Some(c) = &mut conn {
            let _ = self.flush_acks(c);
        }
        self.shared.connected.store(false, Ordering::Relaxed);
    }

    fn open(&self) -> ::redis::RedisResult<::redis::Connection> {
        let mut conn = self.config.connect()?;
        let created: ::redis::RedisResult<()> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(&self.config.start_id)
            .arg("MKSTREAM")
            .query(&mut conn);
        match created {
            Err(error) if error.code() != Some("BUSYGROUP") => Err(error),
            _ => Ok(conn),
        }
    }

    fn claim_interval(&self) -> Duration {
        (self.config.claim_idle / 2).clamp(Duration::from_millis(10), Duration::from_secs(10))
    }

    fn step(
        &mut self,
        c: &mut ::redis::Connection,
        claim_due: &mut Instant,
        trim_due: &mut Option<Instant>,
    ) -> ::redis::RedisResult<Flow> {
        let now = Instant::now();
        if self.pel_due.is_some_and(|due| due <= now) {
            self.pel_due = None;
            if let Flow::Stop = self.own_pending(c)? {
                return Ok(Flow::Stop);
            }
        }
        if *claim_due <= now {
            if let Flow::Stop = self.claim(c)? {
                return Ok(Flow::Stop);
            }
            *claim_due = Instant::now() + self.claim_interval();
        }
        if let (Some(due), Some(every)) = (*trim_due, self.config.trim_every) {
            if due <= now {
                let report = trim_below_pending(c, &self.config.stream)?;
                add(&self.counters().trimmed, report.trimmed);
                *trim_due = Some(Instant::now() + every);
            }
        }
        if self.stopped() {
            return Ok(Flow::Continue);
        }
        // Block no longer than the next scheduled pass (and at least 1 ms: 0 is forever).
        let now = Instant::now();
        let mut block = self.config.block;
        for due in [self.pel_due, Some(*claim_due), *trim_due]
            .into_iter()
            .flatten()
        {
            block = block.min(due.saturating_duration_since(now));
        }
        let block_ms = block.as_millis().clamp(1, u64::MAX as u128) as u64;
        let reply: Option<StreamReadReply> = ::redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg("COUNT")
            .arg(self.config.batch)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.config.stream)
            .arg(">")
            .query(c)?;
        let entries = entries_of(reply);
        add(&self.counters().read, entries.len() as u64);
        for entry in entries {
            if self.stopped() {
                break;
            }
            if let Flow::Stop = self.process(c, entry, 1)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// Re-reads this consumer's pending entries (each read increments its delivery count).
    fn own_pending(&mut self, c: &mut ::redis::Connection) -> ::redis::RedisResult<Flow> {
        let mut cursor = String::from("0");
        while !self.stopped() {
            let reply: Option<StreamReadReply> = ::redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg("COUNT")
                .arg(self.config.batch)
                .arg("STREAMS")
                .arg(&self.config.stream)
                .arg(&cursor)
                .query(c)?;
            let entries = entries_of(reply);
            let Some(last) = entries.last() else {
                break;
            };
            cursor.clone_from(&last.id);
            add(&self.counters().read, entries.len() as u64);
            if let Flow::Stop = self.process_counted(c, entries)? {
                return Ok(Flow::Stop);
            }
            self.flush_acks(c)?;
        }
        Ok(Flow::Continue)
    }

    /// Claims entries idle on any consumer of the group for longer than `claim_idle`.
    fn claim(&mut self, c: &mut ::redis::Connection) -> ::redis::RedisResult<Flow> {
        let idle_ms = self.config.claim_idle.as_millis().min(u64::MAX as u128) as u64;
        let mut cursor = String::from("0-0");
        while !self.stopped() {
            let reply: StreamAutoClaimReply = ::redis::cmd("XAUTOCLAIM")
                .arg(&self.config.stream)
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg(idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(self.config.batch)
                .query(c)?;
            let entries = reply.claimed;
            add(&self.counters().claimed, entries.len() as u64);
            add(&self.counters().read, entries.len() as u64);
            if !entries.is_empty() {
                if let Flow::Stop = self.process_counted(c, entries)? {
                    return Ok(Flow::Stop);
                }
                self.flush_acks(c)?;
            }
            if reply.next_stream_id == "0-0" || reply.next_stream_id.is_empty() {
                break;
            }
            cursor = reply.next_stream_id;
        }
        Ok(Flow::Continue)
    }

    /// Processes entries that were delivered before, with their delivery counts.
    fn process_counted(
        &mut self,
        c: &mut ::redis::Connection,
        entries: Vec<StreamId>,
    ) -> ::redis::RedisResult<Flow> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Flow::Continue);
        };
        let pending: StreamPendingCountReply = ::redis::cmd("XPENDING")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len())
            .arg(&self.config.consumer)
            .query(c)?;
        let mut counts: HashMap<String, usize> = pending
            .ids
            .into_iter()
            .map(|p| (p.id, p.times_delivered))
            .collect();
        // Other pending entries of this consumer inside the range may have used up the
        // count: ask for the missing ones one by one.
        for entry in &entries {
            if !counts.contains_key(&entry.id) {
                let one: StreamPendingCountReply = ::redis::cmd("XPENDING")
                    .arg(&self.config.stream)
                    .arg(&self.config.group)
                    .arg(&entry.id)
                    .arg(&entry.id)
                    .arg(1)
                    .query(c)?;
                if let Some(p) = one.ids.into_iter().next() {
                    counts.insert(p.id, p.times_delivered);
                }
            }
        }
        for entry in entries {
            if self.stopped() {
                break;
            }
            let attempts = counts.get(&entry.id).copied().unwrap_or(1);
            if let Flow::Stop = self.process(c, entry, attempts)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    fn flush_acks(&mut self, c: &mut ::redis::Connection) -> ::redis::RedisResult<()> {
        if self.to_ack.is_empty() {
            return Ok(());
        }
        let _: u64 = ::redis::cmd("XACK")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(&self.to_ack)
            .query(c)?;
        add(&self.counters().acked, self.to_ack.len() as u64);
        self.to_ack.clear();
        Ok(())
    }

    fn process(
        &mut self,
        c: &mut ::redis::Connection,
        entry: StreamId,
        attempts: usize,
    ) -> ::redis::RedisResult<Flow> {
        let decoded = decode_fields(&entry);
        let (wire_name, data, name) = match decoded {
            Ok(parts) => parts,
            Err(why) => {
                self.undecodable(c, &entry, attempts, why)?;
                return Ok(Flow::Continue);
            }
        };
        match self
            .wire
            .deliver(&wire_name, &data, name.as_deref(), &self.emitter)
        {
            Err(why) => self.undecodable(c, &entry, attempts, why)?,
            Ok(Local::Shutdown) => return Ok(Flow::Stop),
            Ok(Local::Refused(why)) => self.failed(c, &entry, attempts, why)?,
            Ok(Local::Completed(completed)) if completed.outcomes().is_empty() => {
                add(&self.counters().no_subscribers, 1);
                match self.config.no_subscribers {
                    NoSubscribers::DeadLetter => self.dead_letter(
                        c,
                        &entry,
                        attempts,
                        REASON_NO_SUBSCRIBER,
                        &format!("no local subscription for `{wire_name}`"),
                    )?,
                    _ => self.to_ack.push(entry.id),
                }
            }
            Ok(Local::Completed(completed)) if completed.all_succeeded() => {
                self.to_ack.push(entry.id);
            }
            Ok(Local::Completed(completed)) => {
                self.failed(c, &entry, attempts, describe(&completed))?;
            }
        }
        Ok(Flow::Continue)
    }

    fn failed(
        &mut self,
        c: &mut ::redis::Connection,
        entry: &StreamId,
        attempts: usize,
        why: String,
    ) -> ::redis::RedisResult<()> {
        add(&self.counters().failed, 1);
        if attempts >= self.config.max_attempts as usize {
            self.dead_letter(c, entry, attempts, REASON_FAILED, &why)
        } else {
            // Left pending: re-read after the retry delay (or claimed by another consumer
            // if this one dies).
            let due = Instant::now() + self.config.retry_delay;
            self.pel_due = Some(self.pel_due.map_or(due, |d| d.min(due)));
            Ok(())
        }
    }

    fn undecodable(
        &mut self,
        c: &mut ::redis::Connection,
        entry: &StreamId,
        attempts: usize,
        why: String,
    ) -> ::redis::RedisResult<()> {
        self.dead_letter(c, entry, attempts, REASON_UNDECODABLE, &why)?;
        add(&self.counters().undecodable, 1);
        let key = match entry.get::<String>("name") {
            Some(name) => EventKey::named(name),
            None => EventKey::named(
                entry
                    .get::<String>("type")
                    .unwrap_or_else(|| self.config.stream.clone()),
            ),
        };
        let hooks = &self.emitter.linker().inner.hooks;
        hooks.dead_letter(
            || DeadLetter {
                key,
                subscription: None,
                reason: DeadLetterReason::UndecodableRemoteEntry,
                payload: Some(DeadPayload(DynPayload::Boxed(Box::new(RemoteEntry {
                    stream: self.config.stream.clone(),
                    id: entry.id.clone(),
                    fields: fields_of(entry),
                    reason: why,
                })))),
            },
            DeadLetterReason::UndecodableRemoteEntry,
        );
        Ok(())
    }

    /// Appends the entry to the dead-letter stream and acknowledges it, atomically.
    fn dead_letter(
        &mut self,
        c: &mut ::redis::Connection,
        entry: &StreamId,
        attempts: usize,
        reason: &str,
        detail: &str,
    ) -> ::redis::RedisResult<()> {
        let mut xadd = ::redis::cmd("XADD");
        xadd.arg(&self.dead_stream).arg("*");
        for (field, value) in fields_of(entry) {
            xadd.arg(field).arg(value);
        }
        xadd.arg("dead_reason")
            .arg(reason)
            .arg("dead_detail")
            .arg(detail)
            .arg("dead_entry")
            .arg(&entry.id)
            .arg("dead_stream")
            .arg(&self.config.stream)
            .arg("dead_group")
            .arg(&self.config.group)
            .arg("dead_consumer")
            .arg(&self.config.consumer)
            .arg("dead_attempts")
            .arg(attempts);
        let mut xack = ::redis::cmd("XACK");
        xack.arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(&entry.id);
        ::redis::pipe()
            .atomic()
            .add_command(xadd)
            .ignore()
            .add_command(xack)
            .ignore()
            .query::<()>(c)?;
        add(&self.counters().dead_lettered, 1);
        Ok(())
    }
}

fn entries_of(reply: Option<StreamReadReply>) -> Vec<StreamId> {
    reply
        .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
        .unwrap_or_default()
}

fn bytes_of(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(text) => Some(text.clone().into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn fields_of(entry: &StreamId) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = entry
        .map
        .iter()
        .filter_map(|(field, value)| Some((field.clone(), bytes_of(value)?)))
        .collect();
    fields.sort();
    fields
}

/// The wire name, the payload bytes and the event name (for named events).
type Parts = (String, Vec<u8>, Option<String>);

fn decode_fields(entry: &StreamId) -> Result<Parts, String> {
    if entry.map.is_empty() {
        return Err("the entry has no fields (deleted from the stream while pending?)".into());
    }
    let text = |field: &str| -> Result<Option<String>, String> {
        match entry.map.get(field) {
            None => Ok(None),
            Some(value) => {
                let bytes =
                    bytes_of(value).ok_or_else(|| format!("field `{field}` is not a string"))?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| format!("field `{field}` is not UTF-8"))
            }
        }
    };
    let wire_name = text("type")?.ok_or("missing field `type`")?;
    match text("format")?.as_deref() {
        Some(FORMAT) => {}
        Some(other) => return Err(format!("unknown format `{other}` (expected `{FORMAT}`)")),
        None => return Err("missing field `format`".into()),
    }
    let data = entry
        .map
        .get("data")
        .and_then(bytes_of)
        .ok_or("missing field `data`")?;
    let name = text("name")?;
    if name.as_deref() == Some("") {
        return Err("empty event name".into());
    }
    Ok((wire_name, data, name))
}

fn describe(completed: &Completed) -> String {
    let failures: Vec<String> = completed
        .outcomes()
        .iter()
        .filter(|(_, outcome)| !outcome.is_success())
        .map(|(id, outcome)| format!("subscription {id}: {outcome}"))
        .collect();
    failures.join("; ")
}
