//! Nexus bench: producer → handler throughput against raw crossbeam unicast (one
//! producer thread, one consumer, a bounded channel of the same capacity) in the same run,
//! and timer lateness (p50, p99, p99.9, max, with hdrhistogram) for a chain of one-shot
//! timers of 1–3 ms on an otherwise idle loop.
//!
//! `cargo bench --bench nexus` (add `-- --quick` for a smoke run).

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
        tx.send(i).unwrap();
    }
    let sum = consumer.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    elapsed
}

fn nexus(n: u64) -> Duration {
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
    let _nexus = handle.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
    elapsed
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

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: u64 = if quick { 200_000 } else { 5_000_000 };
    let runs = if quick { 1 } else { 3 };
    println!("nexus bench: N = {n} events, {runs} run(s) each, best run; 1 producer thread");
    let mut best_cb = Duration::MAX;
    let mut best_nx = Duration::MAX;
    for _ in 0..runs {
        best_cb = best_cb.min(crossbeam(n));
        best_nx = best_nx.min(nexus(n));
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "raw crossbeam bounded unicast: {:>8.2} M ev/s",
        rate(best_cb) / 1e6
    );
    println!(
        "producer -> nexus handler:     {:>8.2} M ev/s  ({:.2}x crossbeam)",
        rate(best_nx) / 1e6,
        rate(best_nx) / rate(best_cb)
    );
    let samples = if quick { 200 } else { 2000 };
    let h = lateness(samples);
    println!(
        "timer lateness ({samples} one-shot timers of 1-3 ms): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3
    );
}
