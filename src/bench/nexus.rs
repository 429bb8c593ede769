//! The nexus: producer → handler throughput against raw crossbeam unicast (one producer
//! thread, one consumer thread, a bounded channel of the same capacity, `try_send` and a
//! yield when full, as the producer pushes), and timer
//! lateness for a chain of one-shot timers of 1–3 ms against a thread waiting on
//! `crossbeam_channel::after` for the same delays.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ventus::{Nexus, NexusEvent, PushError, Timer};

use super::report::{Kind, Row, Side, histogram};
use super::topology::expected;
use super::{Ctx, Res};

const CAPACITY: usize = 65_536;

fn crossbeam_unicast(n: u64) -> Res<f64> {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let start = Instant::now();
    let consumer = thread::spawn(move || {
        let (mut count, mut sum) = (0u64, 0u64);
        for value in rx {
            count += 1;
            sum = sum.wrapping_add(value);
        }
        (count, sum)
    });
    // As the nexus producer does: a non-blocking push, yielding while the queue is full.
    for i in 0..n {
        let mut value = i;
        loop {
            match tx.try_send(value) {
                Ok(()) => break,
                Err(crossbeam_channel::TrySendError::Full(back)) => {
                    value = back;
                    thread::yield_now();
                }
                Err(other) => return Err(other.to_string().into()),
            }
        }
    }
    drop(tx);
    let got = consumer.join().map_err(|_| "consumer panicked")?;
    let elapsed = start.elapsed().as_secs_f64();
    if got != expected(n) {
        return Err(format!("crossbeam: got {got:?}, expected {:?}", expected(n)).into());
    }
    Ok(n as f64 / elapsed)
}

fn nexus_unicast(n: u64) -> Res<f64> {
    let mut nexus = Nexus::builder().capacity(CAPACITY).build()?;
    let result = Arc::new(Mutex::new((0u64, 0u64)));
    let r = Arc::clone(&result);
    let (mut count, mut sum) = (0u64, 0u64);
    nexus.on(1, move |event, cx| {
        count += 1;
        sum = sum.wrapping_add(event.payload_ref::<u64>().copied().unwrap_or(u64::MAX));
        if count == n {
            *r.lock().expect("result") = (count, sum);
            cx.stop();
        }
    })?;
    let producer = nexus.producer();
    let start = Instant::now();
    let handle = nexus.start()?;
    for i in 0..n {
        let mut event = NexusEvent::new(i, 1, i);
        loop {
            match producer.push(event) {
                Ok(()) => break,
                Err(PushError::Full(back)) => {
                    event = back;
                    thread::yield_now();
                }
                Err(other) => return Err(other.to_string().into()),
            }
        }
    }
    let _nexus = handle.join().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64();
    let got = *result.lock().expect("result");
    if got != expected(n) {
        return Err(format!("nexus: got {got:?}, expected {:?}", expected(n)).into());
    }
    Ok(n as f64 / elapsed)
}

/// The delay of the `i`th timer: 1, 2 or 3 ms.
fn delay(i: u64) -> Duration {
    Duration::from_micros(1000 + (i % 3) * 1000)
}

/// Lateness of `samples` one-shot timers, each armed by the previous one's handler.
fn nexus_lateness(samples: u64) -> Res<Histogram<u64>> {
    let recorded = Arc::new(Mutex::new(histogram()));
    let h = Arc::clone(&recorded);
    let mut nexus = Nexus::new()?;
    let mut due: Option<Instant> = None;
    let mut taken = 0u64;
    nexus.on(1, move |_, cx| {
        let now = Instant::now();
        if let Some(due) = due.take() {
            let late = now.saturating_duration_since(due).as_nanos() as u64;
            h.lock().expect("histogram").saturating_record(late.max(1));
            taken += 1;
        }
        if taken == samples {
            cx.stop();
            return;
        }
        let d = delay(taken);
        // A timer's delay counts from the pass's clock reading.
        due = Some(cx.now() + d);
        if let Ok(timer) = Timer::one_shot(d, 1) {
            cx.add_timer(timer);
        }
    })?;
    nexus.add_timer(Timer::one_shot(Duration::from_millis(1), 1)?);
    nexus.run()?;
    let h = recorded.lock().expect("histogram").clone();
    if h.len() != samples {
        return Err(format!("nexus timers: {} of {samples} fired", h.len()).into());
    }
    Ok(h)
}

/// The same delays on a thread blocked in `crossbeam_channel::after(d).recv()`.
fn crossbeam_lateness(samples: u64) -> Res<Histogram<u64>> {
    let mut h = histogram();
    for i in 0..samples {
        let d = delay(i);
        let start = Instant::now();
        let fired = crossbeam_channel::after(d).recv()?;
        let now = Instant::now();
        black_box_instant(fired);
        let late = now.saturating_duration_since(start + d).as_nanos() as u64;
        h.saturating_record(late.max(1));
    }
    Ok(h)
}

fn black_box_instant(instant: Instant) {
    std::hint::black_box(instant);
}

/// Producer → handler throughput and timer lateness.
pub(crate) fn nexus(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    let (n, reps) = (ctx.sizes.nexus, ctx.sizes.reps);
    // The nexus runs its handlers on its own loop thread: shown as `dedicated`.
    let mut flow = Row::new("nexus", "producer -> handler", "dedicated");
    flow.events = n;
    flow.baseline = "crossbeam";
    let (mut ours, mut base) = (Side::new(1), Side::new(1));
    // One warm-up pair, not counted.
    ctx.progress("nexus producer -> handler: warm-up");
    nexus_unicast((n / 10).max(2))?;
    crossbeam_unicast((n / 10).max(2))?;
    for rep in 0..reps {
        ctx.progress(&format!(
            "nexus producer -> handler: repetition {}/{reps}",
            rep + 1
        ));
        if rep % 2 == 0 {
            ours.rates.push(nexus_unicast(n)?);
            base.rates.push(crossbeam_unicast(n)?);
        } else {
            base.rates.push(crossbeam_unicast(n)?);
            ours.rates.push(nexus_unicast(n)?);
        }
    }
    flow.ours = ours;
    flow.base = base;
    flow.check = format!("ok: {reps}x{n} counted, sums match (bounded {CAPACITY})");
    rows.push(flow);

    let samples = ctx.sizes.timers;
    let mut timers = Row::new("nexus", "timer lateness 1-3ms", "dedicated");
    timers.kind = Kind::Latency;
    timers.events = samples;
    timers.baseline = "crossbeam";
    let (mut ours, mut base) = (Side::new(1), Side::new(1));
    let per_rep = (samples / reps as u64).max(1);
    for rep in 0..reps {
        ctx.progress(&format!("nexus timers: repetition {}/{reps}", rep + 1));
        ours.add_latencies(&nexus_lateness(per_rep)?);
        base.add_latencies(&crossbeam_lateness(per_rep)?);
    }
    timers.ours = ours;
    timers.base = base;
    timers.events = per_rep;
    timers.check = format!("ok: {reps}x{per_rep} timers fired (baseline: crossbeam::after)");
    rows.push(timers);
    Ok(())
}
