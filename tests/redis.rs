//! The Redis Streams bridge against a real `redis-server` (never a mock).
//!
//! Needs `VENTUS_REDIS_URL` (e.g. `redis://127.0.0.1:6379/0`; `.ci/run` starts a server and
//! sets it). Without it every test fails with a message saying so, unless
//! `VENTUS_REDIS_SKIP=1` is set, which skips them explicitly. Each test uses its own
//! streams, so the tests run in parallel on one server. The restart test starts and
//! SIGKILLs its own `redis-server` (`REDIS_SERVER` names the binary, default
//! `redis-server` on the `PATH`) on another free port.
#![cfg(feature = "redis")]

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ventus::redis::client::{self, Connection};
use ventus::redis::{
    NoSubscribers, Reader, RedisConfig, RedisEmitter, RedisStrategy, RemoteEmitError, RemoteEntry,
    StrategyError, Wire, WireError,
};
use ventus::{Actors, DeadLetterReason, EmitError, Emitter, Linker, Runtime};

// ---------------------------------------------------------------------------------------
// Helpers

fn server_url() -> Option<String> {
    match std::env::var("VENTUS_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("VENTUS_REDIS_SKIP").is_ok_and(|v| v == "1") => {
            eprintln!("skipped: VENTUS_REDIS_SKIP=1 and no VENTUS_REDIS_URL");
            None
        }
        _ => panic!(
            "the Redis bridge tests need a running redis-server: set \
             VENTUS_REDIS_URL=redis://127.0.0.1:<port>/0 (`.ci/run` starts one), or \
             VENTUS_REDIS_SKIP=1 to skip them explicitly"
        ),
    }
}

macro_rules! url {
    () => {
        match server_url() {
            Some(url) => url,
            None => return,
        }
    };
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "ventus-test:{prefix}:{}:{nanos}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A configuration with short timings for tests.
fn test_config(url: &str, stream: &str) -> RedisConfig {
    RedisConfig::from_url(url)
        .unwrap()
        .stream(stream)
        .group("g")
        .consumer("c1")
        .block(Duration::from_millis(50))
        .retry_delay(Duration::from_millis(20))
        .claim_idle(Duration::from_secs(60))
        .backoff_max(Duration::from_millis(200))
}

fn raw(url: &str) -> Connection {
    client::Client::open(url).unwrap().get_connection().unwrap()
}

/// Polls `condition` until it holds, or panics after `limit` saying what it waited for.
fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pending(conn: &mut Connection, stream: &str, group: &str) -> usize {
    let reply: client::streams::StreamPendingReply = client::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(conn)
        .unwrap();
    reply.count()
}

fn xlen(conn: &mut Connection, stream: &str) -> usize {
    client::cmd("XLEN").arg(stream).query(conn).unwrap()
}

type Fields = HashMap<String, Vec<u8>>;

fn entries(conn: &mut Connection, stream: &str) -> Vec<(String, Fields)> {
    let reply: client::streams::StreamRangeReply = client::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let fields = entry
                .map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        client::from_redis_value_ref::<Vec<u8>>(v).unwrap(),
                    )
                })
                .collect();
            (entry.id, fields)
        })
        .collect()
}

fn text(fields: &Fields, name: &str) -> String {
    String::from_utf8(
        fields
            .get(name)
            .unwrap_or_else(|| panic!("no field {name}"))
            .clone(),
    )
    .unwrap()
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct Order {
    id: u64,
    item: String,
}

/// Handlers fail on it as told by the test.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct Flaky {
    id: u64,
    /// How many calls fail before one succeeds (`u32::MAX`: never succeeds).
    fail: u32,
    panic: bool,
}

#[derive(Debug, PartialEq, Eq)]
struct NotRegistered(u8);

fn wire() -> Wire {
    let mut wire = Wire::new();
    wire.register::<Order>("test.order")
        .unwrap()
        .register::<Flaky>("test.flaky")
        .unwrap();
    wire
}

fn order(id: u64) -> Order {
    Order {
        id,
        item: format!("item-{id}"),
    }
}

/// A linker whose handler failures are not printed (they are expected here).
fn quiet_linker() -> Linker {
    Linker::builder().error_hook(|_, _| {}).build().unwrap()
}

// ---------------------------------------------------------------------------------------
// Without a server

#[test]
fn config_from_url_and_builder() {
    let config = RedisConfig::from_url(
        "redis://127.0.0.1:6379/3?stream=s1&group=g1&consumer=c9&batch=7&block_ms=250\
         &claim_idle_ms=900&max_attempts=4&retry_delay_ms=30&dead_letter=dl&start=$\
         &trim_every_ms=1000",
    )
    .unwrap();
    assert_eq!(config.url(), "redis://127.0.0.1:6379/3");
    assert_eq!(config.stream_name(), "s1");
    assert_eq!(config.group_name(), "g1");
    assert_eq!(config.consumer_name(), "c9");
    assert_eq!(config.batch_size(), 7);
    assert_eq!(config.dead_letter_stream_name(), "dl");
    let plain = RedisConfig::from_url("redis://127.0.0.1:6379/0").unwrap();
    assert_eq!(plain.stream_name(), "ventus");
    assert_eq!(plain.dead_letter_stream_name(), "ventus:dead");
    assert!(plain.consumer_name().starts_with("ventus-"));
    assert!(matches!(
        RedisConfig::from_url("redis://127.0.0.1/0?colour=red"),
        Err(ventus::redis::ConfigError::UnknownParameter(p)) if p == "colour"
    ));
    assert!(matches!(
        RedisConfig::from_url("redis://127.0.0.1/0?batch=0"),
        Err(ventus::redis::ConfigError::BadValue { .. })
    ));
    assert!(matches!(
        RedisConfig::from_url("nope://x"),
        Err(ventus::redis::ConfigError::Url(_))
    ));
    // The password never shows in Debug.
    let secret = RedisConfig::from_url("redis://user:s3cr3t@127.0.0.1:6379/2").unwrap();
    assert!(!format!("{secret:?}").contains("s3cr3t"));
}

#[test]
fn wire_names_are_registered_once() {
    let mut wire = wire();
    assert_eq!(wire.name_of::<Order>(), Some("test.order"));
    assert_eq!(wire.names(), vec!["test.flaky", "test.order"]);
    assert!(matches!(
        wire.register::<Order>("test.order2"),
        Err(WireError::TypeRegistered { .. })
    ));
    assert!(matches!(
        wire.register::<u64>("test.order"),
        Err(WireError::NameTaken { .. })
    ));
    assert_eq!(wire.register::<u64>("").err(), Some(WireError::EmptyName));
    let (name, bytes) = wire.encode(&order(3)).unwrap().unwrap();
    assert_eq!(name, "test.order");
    // MessagePack with field names: other languages can read it.
    let back: Order = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, order(3));
    assert!(bytes.windows(4).any(|w| w == b"item"));
    assert!(wire.encode(&NotRegistered(1)).is_none());
}

#[test]
fn an_unreachable_server_is_a_typed_error_holding_the_event() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisConfig::from_url(&format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500));
    let producer = RedisEmitter::new(&config, &wire());
    match producer.emit(order(1)) {
        Err(RemoteEmitError::Server(event, error)) => {
            assert_eq!(event, order(1));
            assert!(
                error.is_io_error() || error.is_connection_refusal(),
                "{error}"
            );
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Producer

#[test]
fn emit_appends_registered_events_and_refuses_others_with_the_event() {
    let url = url!();
    let stream = unique("produce");
    let config = test_config(&url, &stream);
    let producer = RedisEmitter::new(&config, &wire());
    let mut conn = raw(&url);

    let id = producer.emit(order(1)).unwrap();
    let named = producer.emit_named("orders.special", order(2)).unwrap();
    let all = entries(&mut conn, &stream);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, id);
    assert_eq!(all[1].0, named);
    let fields = &all[0].1;
    assert_eq!(text(fields, "type"), "test.order");
    assert_eq!(text(fields, "format"), "msgpack");
    assert!(!text(fields, "id").is_empty());
    assert_ne!(text(fields, "id"), text(&all[1].1, "id"));
    let decoded: Order = rmp_serde::from_slice(&fields["data"]).unwrap();
    assert_eq!(decoded, order(1));
    assert!(!fields.contains_key("name"));
    assert_eq!(text(&all[1].1, "name"), "orders.special");

    // Not registered: a typed error holding the event, nothing appended.
    match producer.emit(NotRegistered(9)) {
        Err(RemoteEmitError::Unregistered(event)) => assert_eq!(event, NotRegistered(9)),
        other => panic!("expected Unregistered, got {other:?}"),
    }
    // Refused by the server: the key holds a string, not a stream.
    let wrong = unique("wrongtype");
    let _: () = client::cmd("SET")
        .arg(&wrong)
        .arg("x")
        .query(&mut conn)
        .unwrap();
    let refusing = RedisEmitter::new(&config.clone().stream(&wrong), &wire());
    match refusing.emit(order(5)) {
        Err(RemoteEmitError::Server(event, error)) => {
            assert_eq!(event, order(5));
            assert_eq!(error.code(), Some("WRONGTYPE"), "{error}");
        }
        other => panic!("expected a server refusal, got {other:?}"),
    }
    assert_eq!(xlen(&mut conn, &stream), 2);
}

#[test]
fn the_strategy_sends_to_the_stream_and_never_claims_local_once_subscriptions() {
    let url = url!();
    let stream = unique("strategy");
    let config = test_config(&url, &stream);
    let producer = RedisEmitter::new(&config, &wire());
    let linker = Linker::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let once = linker
        .on::<Order>()
        .once()
        .call(move |_: &Order| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, producer.strategy());
    let delivery = emitter.emit(order(1)).unwrap();
    assert_eq!(delivery.delivered, 1, "the stream took it");
    assert!(delivery.refused.is_empty());
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no local handler ran");
    assert!(
        linker.contains_subscription(&once),
        "the once subscription is not claimed"
    );
    let mut conn = raw(&url);
    assert_eq!(xlen(&mut conn, &stream), 1);

    // Through the Strategy contract, a refusal comes back as an EmitError holding the
    // event, and the precise reason waits on this thread.
    match emitter.emit(NotRegistered(3)) {
        Err(EmitError::Full(event)) => assert_eq!(event, NotRegistered(3)),
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(matches!(
        RedisStrategy::take_last_error(),
        Some(StrategyError::Unregistered(name)) if name.contains("NotRegistered")
    ));
    assert!(RedisStrategy::take_last_error().is_none());
    assert_eq!(xlen(&mut conn, &stream), 1);
}

// ---------------------------------------------------------------------------------------
// Reader

#[test]
fn entries_reach_local_handlers_and_are_acknowledged() {
    let url = url!();
    let stream = unique("roundtrip");
    let config = test_config(&url, &stream);
    let wire = wire();
    let producer = RedisEmitter::new(&config, &wire);
    // Emitted before the group exists: the group starts at 0, so they are read.
    for id in 0..3 {
        producer.emit(order(id)).unwrap();
    }
    producer.emit_named("orders.special", order(100)).unwrap();

    let linker = Linker::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let named = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let _typed = linker
        .on::<Order>()
        .call(move |o: &Order| log.lock().unwrap().push(o.clone()))
        .unwrap();
    let log = named.clone();
    let _named = linker
        .on_named("orders.special")
        .call(move |o: &Order| log.lock().unwrap().push(o.clone()))
        .unwrap();
    let reader = Reader::start(&config, &wire, &Emitter::inline(&linker)).unwrap();
    let mut conn = raw(&url);
    wait_until(
        Duration::from_secs(10),
        "3 typed + 1 named handled, all acked",
        || {
            seen.lock().unwrap().len() == 3
                && named.lock().unwrap().len() == 1
                && reader.stats().acked == 4
        },
    );
    assert_eq!(*seen.lock().unwrap(), vec![order(0), order(1), order(2)]);
    assert_eq!(*named.lock().unwrap(), vec![order(100)]);
    assert_eq!(pending(&mut conn, &stream, "g"), 0);

    // While it runs: new entries are handled as they come.
    producer.emit(order(3)).unwrap();
    wait_until(Duration::from_secs(10), "a fifth entry handled", || {
        reader.stats().acked == 5
    });
    assert_eq!(seen.lock().unwrap().last(), Some(&order(3)));
    assert_eq!(pending(&mut conn, &stream, "g"), 0);
    let stats = reader.stats();
    assert_eq!((stats.read, stats.failed, stats.dead_lettered), (5, 0, 0));
    reader.stop();
}

#[test]
fn failures_are_retried_then_dead_lettered() {
    let url = url!();
    let stream = unique("retry");
    let config = test_config(&url, &stream).max_attempts(3);
    let wire = wire();
    let producer = RedisEmitter::new(&config, &wire);
    let linker = quiet_linker();
    let calls: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let log = calls.clone();
    let _sub = linker
        .on::<Flaky>()
        .call(move |f: &Flaky| -> Result<(), std::io::Error> {
            let n = {
                let mut calls = log.lock().unwrap();
                let n = calls.entry(f.id).or_insert(0);
                *n += 1;
                *n
            };
            if n <= f.fail {
                if f.panic {
                    panic!("flaky {} panicked", f.id);
                }
                return Err(std::io::Error::other(format!("flaky {} failed", f.id)));
            }
            Ok(())
        })
        .unwrap();
    let always = producer
        .emit(Flaky {
            id: 1,
            fail: u32::MAX,
            panic: false,
        })
        .unwrap();
    producer
        .emit(Flaky {
            id: 2,
            fail: 2,
            panic: false,
        })
        .unwrap();
    let panics = producer
        .emit(Flaky {
            id: 3,
            fail: u32::MAX,
            panic: true,
        })
        .unwrap();
    let reader = Reader::start(&config, &wire, &Emitter::inline(&linker)).unwrap();
    let mut conn = raw(&url);
    let dead = config.dead_letter_stream_name();
    wait_until(
        Duration::from_secs(20),
        "2 dead letters, nothing pending",
        || xlen(&mut conn, &dead) == 2 && pending(&mut conn, &stream, "g") == 0,
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls[&1], 3, "max_attempts deliveries, then dead");
    assert_eq!(calls[&2], 3, "two failures, then success");
    assert_eq!(calls[&3], 3);
    let dead_entries = entries(&mut conn, &dead);
    let by_origin: HashMap<String, &Fields> = dead_entries
        .iter()
        .map(|(_, f)| (text(f, "dead_entry"), f))
        .collect();
    let failed = by_origin[&always];
    assert_eq!(text(failed, "dead_reason"), "handler failed");
    assert_eq!(text(failed, "dead_attempts"), "3");
    assert_eq!(text(failed, "dead_stream"), stream);
    assert_eq!(text(failed, "dead_group"), "g");
    assert_eq!(text(failed, "type"), "test.flaky");
    assert!(text(failed, "dead_detail").contains("flaky 1 failed"));
    let decoded: Flaky = rmp_serde::from_slice(&failed["data"]).unwrap();
    assert_eq!(decoded.id, 1);
    assert!(text(by_origin[&panics], "dead_detail").contains("flaky 3 panicked"));
    // The reader counts an ack or a dead letter when the server's reply arrives, after
    // the server state waited for above: wait for its counters too.
    wait_until(Duration::from_secs(10), "the reader's counters", || {
        let stats = reader.stats();
        stats.dead_lettered == 2 && stats.acked == 1
    });
    let stats = reader.stats();
    assert_eq!(stats.dead_lettered, 2);
    assert_eq!(stats.failed, 3 + 2 + 3, "failed attempts");
    assert_eq!(stats.acked, 1);
    reader.stop();
}

#[test]
fn undecodable_entries_go_to_the_dead_letter_stream_and_hook() {
    let url = url!();
    let stream = unique("poison");
    let config = test_config(&url, &stream);
    let wire = wire();
    let mut conn = raw(&url);
    let xadd = |conn: &mut Connection, fields: &[(&str, &[u8])]| -> String {
        let mut cmd = client::cmd("XADD");
        cmd.arg(&stream).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        cmd.query(conn).unwrap()
    };
    let bad_bytes = xadd(
        &mut conn,
        &[
            ("type", b"test.order"),
            ("format", b"msgpack"),
            ("data", &[0xc1, 0x00]),
        ],
    );
    let unknown = xadd(
        &mut conn,
        &[
            ("type", b"test.nobody"),
            ("format", b"msgpack"),
            ("data", &[0x80]),
        ],
    );
    let missing = xadd(&mut conn, &[("hello", b"world")]);
    let json = xadd(
        &mut conn,
        &[
            ("type", b"test.order"),
            ("format", b"json"),
            ("data", b"{}"),
        ],
    );
    let producer = RedisEmitter::new(&config, &wire);
    producer.emit(order(7)).unwrap();

    let letters: Arc<Mutex<Vec<(DeadLetterReason, RemoteEntry)>>> = Arc::default();
    let log = letters.clone();
    let linker = Linker::builder()
        .dead_letter_hook(move |letter| {
            let entry = letter
                .payload
                .as_ref()
                .and_then(|p| p.downcast_ref::<RemoteEntry>())
                .cloned()
                .expect("a RemoteEntry payload");
            log.lock().unwrap().push((letter.reason, entry));
        })
        .build()
        .unwrap();
    let good = Arc::new(Mutex::new(Vec::new()));
    let log = good.clone();
    let _sub = linker
        .on::<Order>()
        .call(move |o: &Order| log.lock().unwrap().push(o.clone()))
        .unwrap();
    let reader = Reader::start(&config, &wire, &Emitter::inline(&linker)).unwrap();
    let dead = config.dead_letter_stream_name();
    wait_until(
        Duration::from_secs(10),
        "4 dead letters and the good order",
        || xlen(&mut conn, &dead) == 4 && good.lock().unwrap().len() == 1,
    );
    wait_until(Duration::from_secs(10), "nothing pending", || {
        pending(&mut conn, &stream, "g") == 0
    });
    assert_eq!(*good.lock().unwrap(), vec![order(7)]);
    let dead_entries = entries(&mut conn, &dead);
    let origins: Vec<String> = dead_entries
        .iter()
        .map(|(_, f)| text(f, "dead_entry"))
        .collect();
    assert_eq!(
        origins,
        vec![
            bad_bytes.clone(),
            unknown.clone(),
            missing.clone(),
            json.clone()
        ]
    );
    for (_, fields) in &dead_entries {
        assert_eq!(text(fields, "dead_reason"), "undecodable remote entry");
        assert_eq!(
            text(fields, "dead_attempts"),
            "1",
            "no retry for undecodable entries"
        );
    }
    assert!(text(&dead_entries[1].1, "dead_detail").contains("test.nobody"));
    assert!(text(&dead_entries[2].1, "dead_detail").contains("type"));
    assert!(text(&dead_entries[3].1, "dead_detail").contains("json"));
    assert_eq!(
        text(&dead_entries[2].1, "hello"),
        "world",
        "original fields kept"
    );

    let letters = letters.lock().unwrap();
    assert_eq!(letters.len(), 4);
    assert!(
        letters
            .iter()
            .all(|(reason, _)| *reason == DeadLetterReason::UndecodableRemoteEntry)
    );
    assert_eq!(letters[0].1.id, bad_bytes);
    assert_eq!(letters[0].1.stream, stream);
    assert!(letters[0].1.reason.contains("MessagePack"));
    assert_eq!(linker.dead_letter_counts().undecodable_remote_entry, 4);
    wait_until(Duration::from_secs(10), "the reader's counters", || {
        let stats = reader.stats();
        (stats.undecodable, stats.dead_lettered, stats.acked) == (4, 4, 1)
    });
    reader.stop();
}

#[test]
fn entries_without_local_subscribers_are_acked_or_dead_lettered_by_policy() {
    let url = url!();
    let mut conn = raw(&url);
    let wire = wire();

    // Default: acknowledged, counted.
    let stream = unique("nosub-ack");
    let config = test_config(&url, &stream);
    RedisEmitter::new(&config, &wire).emit(order(1)).unwrap();
    let linker = Linker::new();
    let reader = Reader::start(&config, &wire, &Emitter::inline(&linker)).unwrap();
    wait_until(Duration::from_secs(10), "acked with no subscriber", || {
        reader.stats().acked == 1
    });
    assert_eq!(reader.stats().no_subscribers, 1);
    assert_eq!(pending(&mut conn, &stream, "g"), 0);
    assert_eq!(xlen(&mut conn, &config.dead_letter_stream_name()), 0);
    reader.stop();

    // Opt-in: dead-lettered.
    let stream = unique("nosub-dead");
    let config = test_config(&url, &stream).no_subscribers(NoSubscribers::DeadLetter);
    RedisEmitter::new(&config, &wire).emit(order(2)).unwrap();
    let reader = Reader::start(&config, &wire, &Emitter::inline(&linker)).unwrap();
    let dead = config.dead_letter_stream_name();
    wait_until(
        Duration::from_secs(10),
        "dead-lettered with no subscriber",
        || xlen(&mut conn, &dead) == 1,
    );
    assert_eq!(
        text(&entries(&mut conn, &dead)[0].1, "dead_reason"),
        "no local subscriber"
    );
    assert_eq!(pending(&mut conn, &stream, "g"), 0);
    assert_eq!(reader.stats().no_subscribers, 1);
    reader.stop();
}

/// One consumer "process": its own linker and runtime, recording what it handled.
struct Consumer {
    reader: Reader,
    runtime: Runtime,
    _sub: ventus::Subscription,
}

type Handled = Arc<Mutex<Vec<(String, u64)>>>;

fn consumer(config: &RedisConfig, name: &str, handled: &Handled) -> Consumer {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::new();
    let log = handled.clone();
    let who = name.to_owned();
    let sub = linker
        .on::<Order>()
        .call(move |o: &Order| log.lock().unwrap().push((who.clone(), o.id)))
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let reader = Reader::start(&config.clone().consumer(name), &wire(), &emitter).unwrap();
    Consumer {
        reader,
        runtime,
        _sub: sub,
    }
}

fn distinct(handled: &Handled) -> BTreeSet<u64> {
    handled.lock().unwrap().iter().map(|(_, id)| *id).collect()
}

#[test]
fn a_group_of_two_consumers_handles_every_event_at_least_once() {
    let url = url!();
    let stream = unique("group");
    let config = test_config(&url, &stream).batch(8);
    let handled: Handled = Arc::default();
    let a = consumer(&config, "a", &handled);
    let b = consumer(&config, "b", &handled);
    let producer = RedisEmitter::new(&config, &wire());
    const N: u64 = 400;
    for id in 0..N {
        producer.emit(order(id)).unwrap();
    }
    let mut conn = raw(&url);
    // The server's pending count drops when it executes the XACK; a reader counts its ack
    // when the reply arrives: wait for both.
    wait_until(
        Duration::from_secs(30),
        "every event handled and acknowledged, nothing pending",
        || {
            distinct(&handled).len() == N as usize
                && pending(&mut conn, &stream, "g") == 0
                && a.reader.stats().acked + b.reader.stats().acked
                    == handled.lock().unwrap().len() as u64
        },
    );
    let all = handled.lock().unwrap().clone();
    assert!(all.len() >= N as usize);
    assert_eq!(
        distinct(&handled),
        (0..N).collect::<BTreeSet<_>>(),
        "exact after dedup"
    );
    let by_a = all.iter().filter(|(who, _)| who == "a").count();
    let by_b = all.len() - by_a;
    eprintln!("consumer a handled {by_a}, consumer b handled {by_b} (of {N})");
    assert_eq!(
        a.reader.stats().acked + b.reader.stats().acked,
        all.len() as u64
    );
    for c in [a, b] {
        c.reader.stop();
        c.runtime.shutdown();
    }
}

#[test]
fn a_stopped_consumers_entries_are_claimed_by_another_after_the_idle_time() {
    let url = url!();
    let stream = unique("claim");
    let idle = Duration::from_millis(300);
    let config = test_config(&url, &stream).claim_idle(idle).max_attempts(5);
    let wire = wire();
    let producer = RedisEmitter::new(&config, &wire);
    let mut conn = raw(&url);

    // Consumer "doomed" reads every entry, fails each (so acknowledges none), and stops.
    let doomed_linker = quiet_linker();
    let doomed_calls = Arc::new(AtomicUsize::new(0));
    let calls = doomed_calls.clone();
    let _doomed_sub = doomed_linker
        .on::<Order>()
        .call(move |_: &Order| -> Result<(), std::io::Error> {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(std::io::Error::other("crashing"))
        })
        .unwrap();
    let doomed = Reader::start(
        &config
            .clone()
            .consumer("doomed")
            .retry_delay(Duration::from_secs(3600)),
        &wire,
        &Emitter::inline(&doomed_linker),
    )
    .unwrap();
    // Entries are delivered to doomed after this instant, so none can be claimed before
    // this instant plus the idle time.
    let emitted_at = Instant::now();
    for id in 0..5 {
        producer.emit(order(id)).unwrap();
    }
    wait_until(Duration::from_secs(10), "doomed read all 5", || {
        doomed_calls.load(Ordering::SeqCst) == 5
    });
    doomed.stop();
    assert_eq!(
        pending(&mut conn, &stream, "g"),
        5,
        "all left pending on doomed"
    );

    // A second consumer claims them once they were idle long enough, and handles them.
    let handled: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let log = handled.clone();
    let linker = Linker::new();
    let _sub = linker
        .on::<Order>()
        .call(move |o: &Order| log.lock().unwrap().push((o.id, Instant::now())))
        .unwrap();
    let survivor = Reader::start(
        &config.clone().consumer("survivor"),
        &wire,
        &Emitter::inline(&linker),
    )
    .unwrap();
    wait_until(
        Duration::from_secs(10),
        "claimed and handled, nothing pending",
        || handled.lock().unwrap().len() == 5 && pending(&mut conn, &stream, "g") == 0,
    );
    let handled = handled.lock().unwrap().clone();
    let ids: BTreeSet<u64> = handled.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..5).collect());
    for (id, at) in &handled {
        assert!(
            at.duration_since(emitted_at) >= idle,
            "entry {id} claimed before it was idle for {idle:?}"
        );
    }
    wait_until(Duration::from_secs(10), "the survivor's counters", || {
        let stats = survivor.stats();
        stats.claimed == 5 && stats.acked == 5
    });
    survivor.stop();
}

/// A `redis-server` of the test's own, on a free port, persisting to its own directory
/// with `appendonly yes` and `appendfsync always`; killed on drop.
struct OwnServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(unique("server").replace(':', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (set REDIS_SERVER?): {e}"));
        self.child = Some(child);
        let client = client::Client::open(self.url()).unwrap();
        wait_until(Duration::from_secs(20), "the server answers PING", || {
            client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| client::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_server_killed_and_restarted_loses_no_unacknowledged_work() {
    // Needs a redis-server binary, not the shared server: skipped with the others.
    let _ = url!();
    let mut server = OwnServer::start();
    let url = server.url();
    let stream = unique("restart");
    let config = test_config(&url, &stream)
        .batch(16)
        .connect_timeout(Duration::from_millis(300))
        .backoff_max(Duration::from_millis(100));
    let wire = wire();

    let handled: Arc<Mutex<Vec<u64>>> = Arc::default();
    let log = handled.clone();
    let linker = Linker::new();
    let _sub = linker
        .on::<Order>()
        .call(move |o: &Order| {
            // Slow enough that the kill lands mid-run.
            std::thread::sleep(Duration::from_micros(500));
            log.lock().unwrap().push(o.id);
        })
        .unwrap();
    let errors = Arc::new(AtomicUsize::new(0));
    let seen_errors = errors.clone();
    let reader = Reader::builder(&config, &wire, &Emitter::inline(&linker))
        .on_error(move |_, _| {
            seen_errors.fetch_add(1, Ordering::SeqCst);
        })
        .start()
        .unwrap();

    // The producer keeps going through the outage: an event whose XADD failed comes back
    // and is emitted again.
    const N: u64 = 1500;
    let producer = RedisEmitter::new(&config, &wire);
    let appended = Arc::new(AtomicU64::new(0));
    let count = appended.clone();
    let producing = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut retries = 0u64;
        for id in 0..N {
            let mut event = order(id);
            loop {
                match producer.emit(event) {
                    Ok(_) => break,
                    Err(error) => {
                        assert!(matches!(error, RemoteEmitError::Server(..)), "{error}");
                        assert!(Instant::now() < deadline, "the server never came back");
                        retries += 1;
                        event = error.into_inner();
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            count.fetch_add(1, Ordering::SeqCst);
        }
        retries
    });

    wait_until(
        Duration::from_secs(30),
        "a few hundred events handled",
        || handled.lock().unwrap().len() >= 300,
    );
    server.kill();
    let handled_at_kill = handled.lock().unwrap().len();
    server.spawn();

    let retries = producing.join().unwrap();
    let mut conn = raw(&url);
    wait_until(
        Duration::from_secs(60),
        "every event handled, nothing pending",
        || {
            handled
                .lock()
                .unwrap()
                .iter()
                .collect::<BTreeSet<_>>()
                .len()
                == N as usize
                && pending(&mut conn, &stream, "g") == 0
        },
    );
    let stats = reader.stats();
    eprintln!(
        "killed after {handled_at_kill} handled; producer retries {retries}; reader \
         reconnects {}, errors {}; handled {} for {N} events",
        stats.reconnects,
        stats.errors,
        handled.lock().unwrap().len()
    );
    assert!(handled_at_kill < N as usize, "the kill landed mid-run");
    assert!(stats.reconnects >= 1, "the reader reconnected");
    assert!(errors.load(Ordering::SeqCst) >= 1);
    assert_eq!(appended.load(Ordering::SeqCst), N);
    // Every appended entry survived. An XADD applied just before the kill whose reply was
    // lost is appended again by the test's retry (a second entry for the same order).
    let all = entries(&mut conn, &stream);
    assert!(all.len() >= N as usize);
    let orders: BTreeSet<u64> = all
        .iter()
        .map(|(_, f)| rmp_serde::from_slice::<Order>(&f["data"]).unwrap().id)
        .collect();
    assert_eq!(orders, (0..N).collect(), "exact after dedup by order id");
    reader.stop();
}

#[test]
fn minid_trimming_never_deletes_pending_or_undelivered_entries() {
    let url = url!();
    let stream = unique("trim");
    let config = test_config(&url, &stream);
    let producer = RedisEmitter::new(&config, &wire());
    let mut conn = raw(&url);

    // Nothing to trim: no stream, then a stream without groups.
    let report = producer.trim().unwrap();
    assert_eq!((report.min_id, report.trimmed), (None, 0));
    let ids: Vec<String> = (0..10).map(|i| producer.emit(order(i)).unwrap()).collect();
    let report = producer.trim().unwrap();
    assert_eq!((report.min_id, report.trimmed), (None, 0));
    assert_eq!(xlen(&mut conn, &stream), 10);

    let read = |conn: &mut Connection, group: &str, count: usize| -> Vec<String> {
        let reply: client::streams::StreamReadReply = client::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg("c")
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query(conn)
            .unwrap();
        reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .map(|e| e.id)
            .collect()
    };
    let ack = |conn: &mut Connection, group: &str, ids: &[String]| {
        let _: u64 = client::cmd("XACK")
            .arg(&stream)
            .arg(group)
            .arg(ids)
            .query(conn)
            .unwrap();
    };
    for group in ["g1", "g2"] {
        let _: () = client::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg(group)
            .arg("0")
            .query(&mut conn)
            .unwrap();
    }
    // g1: read all, acknowledge the first 5: entries 5..10 pending.
    let got = read(&mut conn, "g1", 10);
    assert_eq!(got, ids);
    ack(&mut conn, "g1", &ids[..5]);
    // g2: read 3, acknowledge them: nothing pending, 3..10 not delivered yet.
    assert_eq!(read(&mut conn, "g2", 3), ids[..3]);
    ack(&mut conn, "g2", &ids[..3]);

    // Bound: g2's last delivered entry (2) is below g1's oldest pending one (5).
    let report = producer.trim().unwrap();
    assert_eq!(report.min_id.as_deref(), Some(ids[2].as_str()));
    assert_eq!(report.trimmed, 2);
    assert_eq!(
        entries(&mut conn, &stream)
            .into_iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        ids[2..]
    );

    // g2 catches up: now g1's oldest pending entry is the bound.
    assert_eq!(read(&mut conn, "g2", 10), ids[3..]);
    ack(&mut conn, "g2", &ids[3..]);
    let report = producer.trim().unwrap();
    assert_eq!(report.min_id.as_deref(), Some(ids[5].as_str()));
    assert_eq!(report.trimmed, 3);
    // Every entry still pending in g1 is intact.
    let reply: client::streams::StreamReadReply = client::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g1")
        .arg("c")
        .arg("STREAMS")
        .arg(&stream)
        .arg("0")
        .query(&mut conn)
        .unwrap();
    let still: Vec<_> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
    assert_eq!(
        still.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[5..]
    );
    assert!(still.iter().all(|e| e.map.contains_key("data")));
    assert_eq!(pending(&mut conn, &stream, "g1"), 5);
    // Trimming again changes nothing.
    assert_eq!(producer.trim().unwrap().trimmed, 0);
}

#[test]
fn the_reader_trims_when_asked_and_keeps_what_is_pending() {
    let url = url!();
    let stream = unique("reader-trim");
    let config = test_config(&url, &stream).trim_every(Some(Duration::from_millis(20)));
    let wire = wire();
    let producer = RedisEmitter::new(&config, &wire);
    let linker = quiet_linker();
    let _sub = linker
        .on::<Order>()
        .call(|o: &Order| -> Result<(), std::io::Error> {
            if o.id == 3 {
                Err(std::io::Error::other("keep me pending"))
            } else {
                Ok(())
            }
        })
        .unwrap();
    for id in 0..6 {
        producer.emit(order(id)).unwrap();
    }
    let reader = Reader::start(
        &config.clone().retry_delay(Duration::from_secs(3600)),
        &wire,
        &Emitter::inline(&linker),
    )
    .unwrap();
    let mut conn = raw(&url);
    // Entry 3 stays pending (its retry is an hour away): everything before it goes.
    wait_until(
        Duration::from_secs(10),
        "trimmed down to the pending entry",
        || reader.stats().acked == 5 && xlen(&mut conn, &stream) == 3,
    );
    let left: Vec<u64> = entries(&mut conn, &stream)
        .iter()
        .map(|(_, f)| rmp_serde::from_slice::<Order>(&f["data"]).unwrap().id)
        .collect();
    assert_eq!(left, vec![3, 4, 5]);
    assert_eq!(pending(&mut conn, &stream, "g"), 1);
    assert_eq!(reader.stats().trimmed, 3);
    reader.stop();
}

#[test]
fn a_shut_down_local_runtime_stops_the_reader_and_leaves_the_entry_pending() {
    let url = url!();
    let stream = unique("local-shutdown");
    let config = test_config(&url, &stream);
    let wire = wire();
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let linker = Linker::new();
    let _sub = linker.on::<Order>().call(|_: &Order| {}).unwrap();
    let reader = Reader::start(
        &config,
        &wire,
        &Emitter::new(&linker, Actors::new(&runtime)),
    )
    .unwrap();
    let mut conn = raw(&url);
    wait_until(Duration::from_secs(10), "the reader connected", || {
        reader.is_connected()
    });
    assert!(reader.is_running());
    runtime.shutdown();
    RedisEmitter::new(&config, &wire).emit(order(1)).unwrap();
    wait_until(
        Duration::from_secs(10),
        "the reader stopped by itself",
        || !reader.is_running(),
    );
    assert_eq!(
        pending(&mut conn, &stream, "g"),
        1,
        "read, not acknowledged"
    );
    assert_eq!(reader.stats().acked, 0);
    reader.stop();
}
