//! The actor runtime against raw crossbeam-channel in the same run: unicast and fanout
//! throughput, the ping-pong round trip, and the memory of idle subscriptions.
//!
//! `cargo bench --bench actors` (add `-- --quick` for a smoke run). Repetitions are
//! interleaved (ventus, crossbeam, ventus, …) because the machine drifts between fast and
//! slow phases; medians are shown with the ventus / crossbeam ratio. See
//! `benches/README.md` for the machine and the latest figures.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ventus::{Actors, Emitter, Linker, Placement, Runtime, Spin};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// ventus: one emitting thread, `k` pooled subscriptions on a 2-worker runtime; events/s.
fn ventus_fanout(runtime: &Runtime, k: usize, n: u64) -> f64 {
    let linker = Linker::new();
    let sums: Vec<Arc<AtomicU64>> = (0..k).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let subs: Vec<_> = sums
        .iter()
        .map(|sum| {
            let sum = sum.clone();
            linker
                .on::<u64>()
                .capacity(1 << 20)
                .call(move |n: &u64| {
                    sum.fetch_add(*n, Ordering::Relaxed);
                })
                .unwrap()
        })
        .collect();
    let emitter = Emitter::new(&linker, Actors::new(runtime));
    let start = Instant::now();
    for i in 0..n {
        let delivery = emitter.emit(i).unwrap_or_else(|_| panic!("emit failed"));
        debug_assert_eq!(delivery.delivered, k);
    }
    runtime.wait_idle().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let expected = n * (n - 1) / 2;
    for sum in &sums {
        assert_eq!(sum.load(Ordering::Relaxed), expected, "lost events");
    }
    drop(subs);
    n as f64 / elapsed
}

/// crossbeam: one sending thread, `k` receiving threads, one unbounded channel each; u64
/// by value; events/s.
fn crossbeam_fanout(k: usize, n: u64) -> f64 {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..k)
        .map(|_| crossbeam_channel::unbounded::<u64>())
        .unzip();
    let start = Instant::now();
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|rx| thread::spawn(move || rx.iter().sum::<u64>()))
        .collect();
    for i in 0..n {
        for tx in &senders {
            tx.send(i).unwrap();
        }
    }
    drop(senders);
    let expected = n * (n - 1) / 2;
    for handle in handles {
        assert_eq!(handle.join().unwrap(), expected, "lost events");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Round trips through a dedicated ventus actor that replies on a crossbeam channel, or
/// through two crossbeam channels and a thread; nanoseconds per round trip.
fn pingpong(rounds: u64, ventus: bool, histogram: &mut Histogram<u64>) {
    let (reply_tx, reply_rx) = crossbeam_channel::bounded::<u64>(1);
    if ventus {
        let runtime = Runtime::builder().workers(1).build().unwrap();
        let linker = Linker::builder().runtime(&runtime).build().unwrap();
        let _echo = linker
            .on::<u64>()
            .placement(Placement::Dedicated(Spin::Backoff))
            .call(move |n: &u64| reply_tx.send(*n).unwrap())
            .unwrap();
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        for i in 0..rounds {
            let start = Instant::now();
            let _ = emitter.emit(i).unwrap_or_else(|_| panic!("emit failed"));
            assert_eq!(reply_rx.recv().unwrap(), i);
            histogram.saturating_record(start.elapsed().as_nanos() as u64);
        }
        runtime.shutdown();
    } else {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(1);
        let echo = thread::spawn(move || {
            for n in rx {
                reply_tx.send(n).unwrap();
            }
        });
        for i in 0..rounds {
            let start = Instant::now();
            tx.send(i).unwrap();
            assert_eq!(reply_rx.recv().unwrap(), i);
            histogram.saturating_record(start.elapsed().as_nanos() as u64);
        }
        drop(tx);
        echo.join().unwrap();
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// RSS growth per subscription: `n` subscriptions (in linkers of 1000, each on a distinct
/// name, so that building the registry stays cheap), never used, then each used once
/// through the pool (so each mailbox has held one event) and idle.
fn memory(n: usize) -> (f64, f64) {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let per_linker = 1000.min(n);
    let names: Vec<String> = (0..per_linker).map(|i| format!("k{i}")).collect();
    let before = rss_bytes();
    let linkers: Vec<Linker> = (0..n / per_linker).map(|_| Linker::new()).collect();
    let subs: Vec<_> = linkers
        .iter()
        .flat_map(|linker| {
            names
                .iter()
                .map(|name| linker.on_named(name).call(|_: &u64| {}).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let never = rss_bytes();
    for linker in &linkers {
        let emitter = Emitter::new(linker, Actors::new(&runtime));
        for name in &names {
            let _ = emitter
                .emit_named(name, 1u64)
                .unwrap_or_else(|_| panic!("emit failed"));
        }
    }
    runtime.wait_idle().unwrap();
    let used = rss_bytes();
    black_box(&subs);
    let per = |bytes: u64| bytes as f64 / subs.len() as f64;
    (per(never - before), per(used - before))
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    // `-- --only-unicast`: the unicast scenario alone (for profiling).
    if std::env::args().any(|arg| arg == "--only-unicast") {
        let runtime = Runtime::builder().workers(2).build().unwrap();
        let rate = ventus_fanout(&runtime, 1, 5_000_000);
        println!("unicast: {rate:.0} events/s");
        return;
    }
    let (n, reps, rounds, subs) = if quick {
        (50_000u64, 1, 2_000u64, 5_000usize)
    } else {
        (2_000_000u64, 5, 100_000u64, 1_000_000usize)
    };
    let cores = thread::available_parallelism().map_or(0, |p| p.get());
    println!(
        "ventus actors bench: {cores} cores, runtime with 2 workers, {reps} interleaved repetitions, medians"
    );
    println!("baseline: raw crossbeam-channel unbounded, u64 by value, one thread per receiver\n");

    let runtime = Runtime::builder().workers(2).build().unwrap();
    println!(
        "{:<22} {:>14} {:>14} {:>10}",
        "throughput (events/s)", "ventus", "crossbeam", "ratio"
    );
    for k in [1usize, 4] {
        let events = if k == 1 { n } else { n / 4 };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            ours.push(ventus_fanout(&runtime, k, events));
            theirs.push(crossbeam_fanout(k, events));
        }
        let (ours, theirs) = (median(ours), median(theirs));
        let name = if k == 1 {
            "unicast".to_owned()
        } else {
            format!("fanout-{k}")
        };
        println!(
            "{name:<22} {ours:>14.0} {theirs:>14.0} {:>9.2}x",
            ours / theirs
        );
    }
    runtime.shutdown();
    println!("(sums checked: nothing lost)\n");

    let mut ours = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut theirs = ours.clone();
    for _ in 0..reps {
        pingpong(rounds / reps as u64, true, &mut ours);
        pingpong(rounds / reps as u64, false, &mut theirs);
    }
    let us = |h: &Histogram<u64>, q: f64| {
        Duration::from_nanos(h.value_at_quantile(q)).as_secs_f64() * 1e6
    };
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}",
        "ping-pong round trip", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for (name, h) in [("ventus dedicated", &ours), ("crossbeam threads", &theirs)] {
        println!(
            "{name:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            us(h, 0.5),
            us(h, 0.99),
            us(h, 0.999),
            h.max() as f64 / 1e3
        );
    }
    println!(
        "p50 ratio ventus / crossbeam: {:.2}x\n",
        us(&ours, 0.5) / us(&theirs, 0.5)
    );

    let (never, used) = memory(subs);
    println!(
        "memory ({subs} subscriptions on distinct names, RSS growth): never used {never:.0} B each, used once then idle {used:.0} B each"
    );
}
