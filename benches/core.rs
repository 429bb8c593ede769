//! The core's costs, measured: inline emit (1 and 4 subscriptions, with 1 and 100k
//! registered events), subscribe at 100k events, and raw crossbeam-channel in the same run
//! as the yardstick.
//!
//! `cargo bench --bench core` (add `-- --quick` for a smoke run). Numbers are medians of
//! interleaved repetitions; see `benches/README.md` for the machine and the latest figures.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ventus::{Emitter, Linker};

struct Tick(u64);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A linker with `filler` named events (one subscription each) and `subs` subscriptions on
/// `Tick`.
fn setup(filler: usize, subs: usize) -> (Linker, Arc<AtomicU64>) {
    let linker = Linker::new();
    for i in 0..filler {
        let _ = linker
            .on_named(&format!("filler-{i}"))
            .call(|_: &()| {})
            .unwrap();
    }
    let sum = Arc::new(AtomicU64::new(0));
    for _ in 0..subs {
        let sum = sum.clone();
        let _ = linker
            .on::<Tick>()
            .call(move |tick: &Tick| {
                sum.fetch_add(tick.0, Ordering::Relaxed);
            })
            .unwrap();
    }
    (linker, sum)
}

fn emit_ns(emitter: &Emitter, n: u64) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let delivery = emitter
            .emit(Tick(i))
            .unwrap_or_else(|_| panic!("emit failed"));
        let _ = black_box(delivery);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn crossbeam_ns(n: u64) -> f64 {
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        tx.send(i).unwrap();
        sum = sum.wrapping_add(rx.try_recv().unwrap());
    }
    black_box(sum);
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (n, reps, filler) = if quick {
        (20_000u64, 3, 10_000usize)
    } else {
        (1_000_000u64, 7, 100_000usize)
    };
    println!(
        "ventus core bench: {n} emits per repetition, {reps} interleaved repetitions, median shown"
    );
    println!(
        "machine: {} logical cores",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );

    let cases: Vec<(&str, usize, usize)> = vec![
        ("1 sub, 1 event", 0, 1),
        ("4 subs, 1 event", 0, 4),
        ("1 sub, +filler events", filler, 1),
        ("4 subs, +filler events", filler, 4),
    ];
    let setups: Vec<_> = cases
        .iter()
        .map(|&(_, filler, subs)| setup(filler, subs))
        .collect();
    let mut samples = vec![Vec::new(); cases.len()];
    let mut baseline = Vec::new();
    for _ in 0..reps {
        baseline.push(crossbeam_ns(n));
        for (i, (linker, _)) in setups.iter().enumerate() {
            samples[i].push(emit_ns(&Emitter::inline(linker), n));
        }
    }
    for (i, (linker, sum)) in setups.iter().enumerate() {
        let subs = cases[i].2 as u64;
        let expected = subs * (n * (n - 1) / 2) * reps as u64;
        assert_eq!(
            sum.load(Ordering::Relaxed),
            expected,
            "lost events in {}",
            cases[i].0
        );
        let _ = linker;
    }
    let base = median(baseline);
    println!(
        "\n{:<28} {:>12} {:>22}",
        "inline emit", "ns/emit", "vs crossbeam send+recv"
    );
    println!(
        "{:<28} {:>12.1} {:>22}",
        "crossbeam send+try_recv u64", base, "1.00x"
    );
    for (i, case) in cases.iter().enumerate() {
        let name = case.0.replace("filler", &filler.to_string());
        let value = median(samples[i].clone());
        println!("{name:<28} {value:>12.1} {:>21.2}x", value / base);
    }
    println!("(every handler ran: sums checked)");

    // Subscribe cost with `filler` registered events: each subscribe adds a new key.
    let (linker, _) = setup(filler, 1);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let count = if quick { 1_000 } else { 10_000 };
    for i in 0..count {
        let name = format!("new-{i}");
        let start = Instant::now();
        let sub = linker.on_named(&name).call(|_: &()| {}).unwrap();
        histogram.saturating_record(start.elapsed().as_nanos() as u64);
        black_box(sub);
    }
    let us = |q: f64| Duration::from_nanos(histogram.value_at_quantile(q)).as_secs_f64() * 1e6;
    println!(
        "\nsubscribe at {filler} events (new key each): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({count} subscribes)",
        us(0.5),
        us(0.99),
        Duration::from_nanos(histogram.max()).as_secs_f64() * 1e6
    );
}
