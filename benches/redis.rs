//! The Redis Streams bridge on loopback, beside the same events in process.
//!
//! `VENTUS_REDIS_URL=redis://127.0.0.1:6379/0 cargo bench --features redis --bench redis`
//! (add `-- --quick` for a smoke run). Needs a running redis-server; the streams it uses
//! are deleted at the end. Measures:
//!
//! - `XADD` alone: one producer thread appending events (events/s);
//! - end to end under load: the producer appends as fast as it can while a reader (inline
//!   emitter) handles them; events/s from the first append to the last handler, and the
//!   latency from before the `XADD` to the handler (queueing included);
//! - end to end unloaded: one event at a time, the next appended when the previous one was
//!   handled: the round trip through Redis (append, `XREADGROUP BLOCK` wake-up, decode,
//!   `emit_and_wait`);
//! - in process: the same events through `Emitter::inline` and through `Actors` on a
//!   2-worker runtime (events/s), for scale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use ventus::redis::{Reader, RedisConfig, RedisEmitter, Wire};
use ventus::{Actors, Emitter, Linker, Runtime};

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Tick {
    seq: u64,
    /// Nanoseconds since the bench's epoch, taken before the append.
    sent: u64,
    item: String,
}

fn wire() -> Wire {
    let mut wire = Wire::new();
    wire.register::<Tick>("bench.tick").unwrap();
    wire
}

fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

fn percentiles(h: &Histogram<u64>) -> String {
    let us = |v: u64| v as f64 / 1000.0;
    format!(
        "p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.9)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max())
    )
}

struct Sink {
    handled: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let Ok(url) = std::env::var("VENTUS_REDIS_URL") else {
        eprintln!(
            "benches/redis.rs needs a running redis-server: set \
             VENTUS_REDIS_URL=redis://127.0.0.1:<port>/0"
        );
        std::process::exit(1);
    };
    let (n_load, n_rtt) = if quick { (2_000, 200) } else { (50_000, 5_000) };
    let epoch = Instant::now();
    let stream = format!("ventus:bench:{}", std::process::id());
    let config = RedisConfig::from_url(&url)
        .unwrap()
        .stream(&stream)
        .group("bench")
        .consumer("bench-reader")
        .batch(256)
        .block(Duration::from_millis(100));
    let wire = wire();
    let producer = RedisEmitter::new(&config, &wire);
    let tick = |seq: u64| Tick {
        seq,
        sent: now_ns(epoch),
        item: "tea".to_owned(),
    };
    println!("redis bridge on loopback ({url}), quick = {quick}");

    // 1. XADD alone.
    let xadd_stream = format!("{stream}:xadd");
    let xadd_producer = RedisEmitter::new(&config.clone().stream(&xadd_stream), &wire);
    let start = Instant::now();
    for seq in 0..n_load {
        xadd_producer.emit(tick(seq)).unwrap();
    }
    let xadd_rate = n_load as f64 / start.elapsed().as_secs_f64();
    println!("XADD alone, 1 producer:             {xadd_rate:>9.0} events/s ({n_load} events)");

    // A reader into an inline emitter, recording the latency.
    let sink = Arc::new(Sink {
        handled: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()),
    });
    let linker = Linker::new();
    let s = sink.clone();
    let _sub = linker
        .on::<Tick>()
        .call(move |t: &Tick| {
            let latency = now_ns(epoch).saturating_sub(t.sent).max(1);
            s.latency.lock().unwrap().saturating_record(latency);
            s.handled.fetch_add(1, Ordering::Release);
        })
        .unwrap();
    let reader = Reader::start(&config, &wire, &Emitter::inline(&linker)).unwrap();
    let wait_for = |count: u64| {
        let deadline = Instant::now() + Duration::from_secs(300);
        while sink.handled.load(Ordering::Acquire) < count {
            assert!(Instant::now() < deadline, "the reader fell behind");
            std::thread::yield_now();
        }
    };

    // 2. Unloaded round trip: one event at a time.
    for seq in 0..n_rtt {
        producer.emit(tick(seq)).unwrap();
        wait_for(seq + 1);
    }
    let rtt = std::mem::replace(
        &mut *sink.latency.lock().unwrap(),
        Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
    );
    println!(
        "end to end, one at a time:          {} ({n_rtt} events)",
        percentiles(&rtt)
    );

    // 3. Under load: the producer floods, the reader keeps up as it can.
    let start = Instant::now();
    for seq in 0..n_load {
        producer.emit(tick(n_rtt + seq)).unwrap();
    }
    wait_for(n_rtt + n_load);
    let load_rate = n_load as f64 / start.elapsed().as_secs_f64();
    let loaded = sink.latency.lock().unwrap().clone();
    println!("end to end under load, 1 reader:    {load_rate:>9.0} events/s ({n_load} events)");
    println!(
        "  latency (queueing included):      {}",
        percentiles(&loaded)
    );
    let stats = reader.stats();
    reader.stop();
    assert_eq!(stats.failed, 0);

    // 4. In process, for scale.
    let local = Linker::new();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let _local_sub = local
        .on::<Tick>()
        .call(move |_: &Tick| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let inline = Emitter::inline(&local);
    let start = Instant::now();
    for seq in 0..n_load {
        let _ = inline.emit(tick(seq)).unwrap();
    }
    let inline_rate = n_load as f64 / start.elapsed().as_secs_f64();
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let actors = Emitter::new(&local, Actors::new(&runtime));
    let start = Instant::now();
    for seq in 0..n_load {
        let _ = actors.emit(tick(seq)).unwrap();
    }
    runtime.wait_idle().unwrap();
    let actors_rate = n_load as f64 / start.elapsed().as_secs_f64();
    runtime.shutdown();
    assert_eq!(count.load(Ordering::Relaxed), 2 * n_load);
    println!("in process, Emitter::inline:        {inline_rate:>9.0} events/s");
    println!("in process, Actors (2 workers):     {actors_rate:>9.0} events/s");
    println!(
        "through Redis / in process (inline): {:.4}x",
        load_rate / inline_rate
    );

    // Leave the server as we found it.
    let client = ventus::redis::client::Client::open(config.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = ventus::redis::client::cmd("DEL")
        .arg(&stream)
        .arg(&xadd_stream)
        .arg(config.dead_letter_stream_name())
        .query(&mut conn)
        .unwrap();
}
