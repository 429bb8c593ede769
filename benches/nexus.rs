//! Nexus bench: producer → handler throughput against raw crossbeam unicast in the same
//! run, and timer lateness for a chain of one-shot timers.
//!
//! Throughput, same topology on both sides: one producer thread (this one) pushes `N`
//! events into a bounded queue of the same capacity, one consumer thread takes them and
//! sums the payloads (checked). Both producers use the non-blocking push and yield when the
//! queue is full. The crossbeam side sends a `u64` by value through
//! `crossbeam_channel::bounded` and receives with `recv()`; the nexus side pushes a
//! `NexusEvent` carrying a `u64` payload through a `Producer` into a nexus started on its
//! own thread, whose handler for the type reads the payload. Repetitions are interleaved
//! (crossbeam, nexus, crossbeam, …: the machine drifts between fast and slow phases) and the
//! median of the per-repetition ratios is printed.
//!
//! Timer lateness: p50, p99, p99.9 and max (hdrhistogram) of `fire time − deadline` for a
//! chain of one-shot timers of 1–3 ms on an otherwise idle loop.
//!
//! `cargo bench --bench nexus` (add `-- --quick` for a smoke run, `-- --only-throughput`
//! or `-- --only-timers` for one half, e.g. under a profiler, `-- --breakdown` for the
//! single-thread cost of a push and of a dispatch, e.g. under `valgrind --tool=callgrind`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ventus::{Nexus, NexusEvent, PushError, Timer};

const CAPACITY: usize = 65_536;

fn crossbeam(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let start = Instant::now();
    let consumer = thread::spawn(move || {
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(rx.recv().unwrap());
        }
        sum
    });
    for i in 0..n {
        let mut value = i;
        loop {
            match tx.try_send(value) {
                Ok(()) => break,
                Err(crossbeam_channel::TrySendError::Full(back)) => {
                    value = back;
                    thread::yield_now();
                }
                Err(other) => panic!("{other}"),
            }
        }
    }
    let sum = consumer.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    elapsed
}

struct NexusRun {
    elapsed: Duration,
    parks: u64,
    passes: u64,
}

fn nexus(n: u64) -> NexusRun {
    let mut nexus = Nexus::builder().capacity(CAPACITY).build().unwrap();
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let mut seen = 0u64;
    let mut local = 0u64;
    nexus
        .on(1, move |event, cx| {
            local = local.wrapping_add(*event.payload_ref::<u64>().unwrap());
            seen += 1;
            if seen == n {
                s.store(local, Ordering::Relaxed);
                cx.stop();
            }
        })
        .unwrap();
    let producer = nexus.producer();
    let start = Instant::now();
    let handle = nexus.start().unwrap();
    for i in 0..n {
        let mut event = NexusEvent::new(i, 1, i);
        loop {
            match producer.push(event) {
                Ok(()) => break,
                Err(PushError::Full(back)) => {
                    event = back;
                    thread::yield_now();
                }
                Err(other) => panic!("{other}"),
            }
        }
    }
    let nexus = handle.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
    NexusRun {
        elapsed,
        parks: nexus.stats().parks,
        passes: nexus.stats().passes,
    }
}

fn lateness(samples: u64) -> Histogram<u64> {
    let histogram = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap(),
    ));
    let h = histogram.clone();
    let mut nexus = Nexus::new().unwrap();
    let deadline = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let d = deadline.clone();
    let mut taken = 0u64;
    nexus
        .on(1, move |_, cx| {
            let now = Instant::now();
            if let Some(due) = d.lock().unwrap().take() {
                let late = now.saturating_duration_since(due).as_nanos() as u64;
                h.lock().unwrap().record(late.max(1)).unwrap();
                taken += 1;
            }
            if taken == samples {
                cx.stop();
                return;
            }
            let delay = Duration::from_micros(1000 + (taken % 3) * 1000);
            // The timer's ticks count from the pass's clock reading.
            *d.lock().unwrap() = Some(cx.now() + delay);
            cx.add_timer(Timer::one_shot(delay, 1).unwrap());
        })
        .unwrap();
    nexus.add_timer(Timer::one_shot(Duration::from_millis(1), 1).unwrap());
    nexus.run().unwrap();
    histogram.lock().unwrap().clone()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn throughput(quick: bool) {
    let n: u64 = if quick { 200_000 } else { 5_000_000 };
    let runs = if quick { 1 } else { 7 };
    println!(
        "nexus throughput: N = {n} events per run, {runs} interleaved repetitions; 1 producer \
         thread -> 1 consumer thread, bounded queue of {CAPACITY}, non-blocking push + yield when full"
    );
    let (mut cb, mut nx, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut parks, mut passes) = (0u64, 0u64);
    // One warm-up pair, not counted.
    crossbeam(n / 10);
    nexus(n / 10);
    for _ in 0..runs {
        let c = n as f64 / crossbeam(n).as_secs_f64();
        let run = nexus(n);
        let x = n as f64 / run.elapsed.as_secs_f64();
        parks += run.parks;
        passes += run.passes;
        cb.push(c);
        nx.push(x);
        ratios.push(x / c);
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{:.1}", r / 1e6))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("  per repetition, M ev/s: crossbeam [{}]", fmt(&cb));
    println!("                          nexus     [{}]", fmt(&nx));
    println!(
        "  raw crossbeam bounded unicast (u64 by value, recv()):       median {:>6.2} M ev/s",
        median(&mut cb) / 1e6
    );
    println!(
        "  producer -> nexus handler (NexusEvent with a u64 payload):  median {:>6.2} M ev/s",
        median(&mut nx) / 1e6
    );
    println!(
        "  nexus / crossbeam, median of the per-repetition ratios: {:.2}x (min {:.2}x, max {:.2}x); \
         loop passes {:.0} per run, parks {:.0} per run",
        median(&mut ratios),
        ratios.first().copied().unwrap_or(0.0),
        ratios.last().copied().unwrap_or(0.0),
        passes as f64 / runs as f64,
        parks as f64 / runs as f64,
    );
}

fn timers(quick: bool) {
    let samples = if quick { 200 } else { 2000 };
    let h = lateness(samples);
    println!(
        "timer lateness ({samples} one-shot timers of 1-3 ms, chained): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3
    );
}

/// Single-thread costs, for the breakdown: rounds of `ROUND` pushes into a nexus that is
/// not running, each followed by `turn`s that dispatch them (so the queue stays in cache);
/// and the same through a crossbeam channel.
fn breakdown() {
    const ROUND: u64 = 4096;
    let rounds: u64 = 256;
    let n = ROUND * rounds;
    let mut nexus = Nexus::builder().capacity(ROUND as usize).build().unwrap();
    let mut sum = 0u64;
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    nexus
        .on(1, move |event, _| {
            sum = sum.wrapping_add(*event.payload_ref::<u64>().unwrap());
            t.store(sum, Ordering::Relaxed);
        })
        .unwrap();
    let producer = nexus.producer();
    let (mut push, mut dispatch) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let start = Instant::now();
        for i in round * ROUND..(round + 1) * ROUND {
            producer.push(NexusEvent::new(i, 1, i)).unwrap();
        }
        push += start.elapsed();
        let start = Instant::now();
        let mut done = 0;
        while done < ROUND as usize {
            done += nexus.turn(Some(Duration::ZERO)).unwrap();
        }
        dispatch += start.elapsed();
    }
    assert_eq!(total.load(Ordering::Relaxed), n * (n - 1) / 2);
    let (tx, rx) = crossbeam_channel::bounded::<u64>(ROUND as usize);
    let (mut send, mut recv) = (Duration::ZERO, Duration::ZERO);
    let mut s = 0u64;
    for round in 0..rounds {
        let start = Instant::now();
        for i in round * ROUND..(round + 1) * ROUND {
            tx.try_send(i).unwrap();
        }
        send += start.elapsed();
        let start = Instant::now();
        for _ in 0..ROUND {
            s = s.wrapping_add(rx.try_recv().unwrap());
        }
        recv += start.elapsed();
    }
    assert_eq!(s, n * (n - 1) / 2);
    let ns = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "single thread, {n} events in rounds of {ROUND}, ns/event: nexus push {:.1}, nexus \
         dispatch {:.1} (NexusEvent {} bytes); crossbeam try_send {:.1}, try_recv {:.1} (u64)",
        ns(push),
        ns(dispatch),
        std::mem::size_of::<NexusEvent>(),
        ns(send),
        ns(recv)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let quick = has("--quick");
    if has("--breakdown") {
        breakdown();
        return;
    }
    if !has("--only-timers") {
        throughput(quick);
    }
    if !has("--only-throughput") {
        timers(quick);
    }
}
