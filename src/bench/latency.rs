//! Latency scenarios: the request/reply round trip and the paced one-way latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, unbounded};
use hdrhistogram::Histogram;
use ventus::Runtime;

use super::payload::{Payload, with_payload};
use super::report::{Kind, Row, Side, histogram};
use super::topology::{Topology, unavailable, with_runtime};
use super::{Ctx, Mode, Res};

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Receives on `rx`, spinning on `try_recv` when `spin`; `None` once disconnected.
fn receive<T>(rx: &Receiver<T>, spin: bool) -> Option<T> {
    if !spin {
        return rx.recv().ok();
    }
    loop {
        match rx.try_recv() {
            Ok(value) => return Some(value),
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
            Err(TryRecvError::Disconnected) => return None,
        }
    }
}

/// ventus: emit a request to one subscription whose handler replies on a crossbeam
/// channel; wait for the reply.
fn ventus_pingpong<P: Payload>(mode: Mode, runtime: &Runtime, rounds: u64) -> Res<Histogram<u64>> {
    let mut topology = Topology::new(mode, runtime)?;
    let (reply_tx, reply_rx) = bounded::<u64>(1);
    topology.add(move |p: &P| {
        let _ = reply_tx.send(p.seq());
    })?;
    let mut h = histogram();
    for i in 0..rounds {
        let start = Instant::now();
        let delivery = topology
            .emitter
            .emit(P::new(i))
            .map_err(|e| format!("emit {i}: {e}"))?;
        let reply = reply_rx.recv()?;
        h.saturating_record(nanos(start.elapsed()));
        if delivery.delivered != 1 || reply != i {
            return Err(
                format!("round {i}: delivered {}, reply {reply}", delivery.delivered).into(),
            );
        }
    }
    topology.close()?;
    Ok(h)
}

/// crossbeam: a request channel of the payload to an echo thread (spinning for
/// `Mode::Spin`; the same thread for `Mode::Inline`), a reply channel of u64.
fn crossbeam_pingpong<P: Payload>(mode: Mode, rounds: u64) -> Res<Histogram<u64>> {
    let (tx, rx) = bounded::<P>(1);
    let (reply_tx, reply_rx) = bounded::<u64>(1);
    let mut h = histogram();
    if mode == Mode::Inline {
        for i in 0..rounds {
            let start = Instant::now();
            tx.send(P::new(i))?;
            let request = rx.recv()?;
            reply_tx.send(request.seq())?;
            let reply = reply_rx.recv()?;
            h.saturating_record(nanos(start.elapsed()));
            if reply != i {
                return Err(format!("round {i}: reply {reply}").into());
            }
        }
        return Ok(h);
    }
    let spin = mode == Mode::Spin;
    let echo = thread::spawn(move || {
        while let Some(request) = receive(&rx, spin) {
            if reply_tx.send(request.seq()).is_err() {
                break;
            }
        }
    });
    for i in 0..rounds {
        let start = Instant::now();
        tx.send(P::new(i))?;
        let reply = reply_rx.recv()?;
        h.saturating_record(nanos(start.elapsed()));
        if reply != i {
            return Err(format!("round {i}: reply {reply}").into());
        }
    }
    drop(tx);
    echo.join().map_err(|_| "echo thread panicked")?;
    Ok(h)
}

fn pingpong_row<P: Payload>(ctx: &Ctx, mode: Mode) -> Res<Row> {
    let mut row = Row::new("pingpong", "round trip", mode.label());
    row.kind = Kind::Latency;
    let reps = ctx.sizes.reps;
    let per_rep = (ctx.sizes.rounds / reps as u64).max(1);
    row.events = per_rep;
    if let Some(why) = unavailable(mode) {
        row.unavailable = Some(why);
        return Ok(row);
    }
    let (mut ours, mut base) = (Side::new(1), Side::new(1));
    for rep in 0..reps {
        ctx.progress(&format!(
            "pingpong {}: repetition {}/{reps}",
            mode.label(),
            rep + 1
        ));
        let run_ours = |side: &mut Side| -> Res<()> {
            let h = with_runtime(|rt| ventus_pingpong::<P>(mode, rt, per_rep))?;
            side.add_latencies(&h);
            Ok(())
        };
        if rep % 2 == 0 {
            run_ours(&mut ours)?;
            base.add_latencies(&crossbeam_pingpong::<P>(mode, per_rep)?);
        } else {
            base.add_latencies(&crossbeam_pingpong::<P>(mode, per_rep)?);
            run_ours(&mut ours)?;
        }
    }
    for side in [&mut ours, &mut base] {
        if let Some(h) = &side.histogram {
            // Round trips per second, from the mean round trip.
            side.rates.push(1e9 / h.mean().max(1.0));
        }
    }
    row.ours = ours;
    row.base = base;
    row.check = format!("ok: {}x{per_rep} replies matched", reps);
    Ok(row)
}

/// The request/reply round trip.
pub(crate) fn pingpong(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    for &mode in &ctx.modes.pingpong {
        rows.push(with_payload!(ctx.payload, pingpong_row(ctx, mode))?);
    }
    Ok(())
}

/// Emit times, in nanoseconds since `base`, indexed by sequence number.
struct Stamps {
    base: Instant,
    sent: Vec<AtomicU64>,
}

impl Stamps {
    fn new(n: u64) -> Arc<Self> {
        Arc::new(Stamps {
            base: Instant::now(),
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn now(&self) -> u64 {
        nanos(self.base.elapsed())
    }

    fn stamp(&self, seq: u64) {
        self.sent[seq as usize].store(self.now(), Ordering::Relaxed);
    }

    /// Nanoseconds since event `seq` was stamped.
    fn since(&self, seq: u64) -> u64 {
        self.now()
            .saturating_sub(self.sent[seq as usize].load(Ordering::Relaxed))
            .max(1)
    }
}

/// Calls `emit(i)` for i in 0..n at `rate` per second (spinning until each is due).
fn paced_loop(n: u64, rate: u64, mut emit: impl FnMut(u64) -> Res<()>) -> Res<()> {
    let period = 1e9 / rate as f64;
    let start = Instant::now();
    for i in 0..n {
        let due = Duration::from_nanos((i as f64 * period) as u64);
        while start.elapsed() < due {
            std::hint::spin_loop();
        }
        emit(i)?;
    }
    Ok(())
}

/// ventus: `k` subscriptions, each recording (emit → handler start) for every event.
fn ventus_paced<P: Payload>(
    mode: Mode,
    runtime: &Runtime,
    k: usize,
    n: u64,
    rate: u64,
) -> Res<Histogram<u64>> {
    let mut topology = Topology::new(mode, runtime)?;
    let stamps = Stamps::new(n);
    let recorders: Vec<Arc<Mutex<Histogram<u64>>>> =
        (0..k).map(|_| Arc::new(Mutex::new(histogram()))).collect();
    for recorder in &recorders {
        let (stamps, recorder) = (Arc::clone(&stamps), Arc::clone(recorder));
        topology.add(move |p: &P| {
            let late = stamps.since(p.seq());
            recorder.lock().expect("recorder").saturating_record(late);
        })?;
    }
    paced_loop(n, rate, |i| {
        stamps.stamp(i);
        let delivery = topology
            .emitter
            .emit(P::new(i))
            .map_err(|e| format!("emit {i}: {e}"))?;
        if delivery.delivered != k {
            return Err(format!("emit {i}: delivered {}", delivery.delivered).into());
        }
        Ok(())
    })?;
    topology.close()?;
    let mut all = histogram();
    for recorder in &recorders {
        let h = recorder.lock().expect("recorder");
        if h.len() != n {
            return Err(format!("a subscription handled {} of {n} events", h.len()).into());
        }
        all.add(&*h)?;
    }
    Ok(all)
}

/// crossbeam: `k` unbounded channels, one receiver thread each (spinning for
/// `Mode::Spin`; drained by the sender for `Mode::Inline`).
fn crossbeam_paced<P: Payload>(mode: Mode, k: usize, n: u64, rate: u64) -> Res<Histogram<u64>> {
    let stamps = Stamps::new(n);
    let (senders, receivers): (Vec<Sender<P>>, Vec<Receiver<P>>) =
        (0..k).map(|_| unbounded()).unzip();
    let mut all = histogram();
    if mode == Mode::Inline {
        paced_loop(n, rate, |i| {
            stamps.stamp(i);
            let event = P::new(i);
            for tx in &senders {
                tx.send(event.clone())?;
            }
            for rx in &receivers {
                let p = rx.try_recv()?;
                all.saturating_record(stamps.since(p.seq()));
            }
            Ok(())
        })?;
        return Ok(all);
    }
    let spin = mode == Mode::Spin;
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|rx| {
            let stamps = Arc::clone(&stamps);
            thread::spawn(move || {
                let mut h = histogram();
                while let Some(p) = receive(&rx, spin) {
                    h.saturating_record(stamps.since(p.seq()));
                }
                h
            })
        })
        .collect();
    paced_loop(n, rate, |i| {
        stamps.stamp(i);
        let event = P::new(i);
        for tx in &senders {
            tx.send(event.clone())?;
        }
        Ok(())
    })?;
    drop(senders);
    for handle in handles {
        let h = handle.join().map_err(|_| "receiver panicked")?;
        if h.len() != n {
            return Err(format!("a receiver got {} of {n} events", h.len()).into());
        }
        all.add(&h)?;
    }
    Ok(all)
}

fn paced_row<P: Payload>(ctx: &Ctx, mode: Mode) -> Res<Row> {
    let (k, rate, reps) = (ctx.sizes.paced_k, ctx.sizes.rate, ctx.sizes.reps);
    let mut row = Row::new("paced", format!("{rate}/s one-way"), mode.label());
    row.kind = Kind::Latency;
    row.subscribers = k;
    let per_rep = (ctx.sizes.paced / reps as u64).max(1);
    row.events = per_rep;
    if let Some(why) = unavailable(mode) {
        row.unavailable = Some(why);
        return Ok(row);
    }
    let (mut ours, mut base) = (Side::new(k), Side::new(k));
    for rep in 0..reps {
        ctx.progress(&format!(
            "paced {} at {rate}/s: repetition {}/{reps}",
            mode.label(),
            rep + 1
        ));
        if rep % 2 == 0 {
            ours.add_latencies(&with_runtime(|rt| {
                ventus_paced::<P>(mode, rt, k, per_rep, rate)
            })?);
            base.add_latencies(&crossbeam_paced::<P>(mode, k, per_rep, rate)?);
        } else {
            base.add_latencies(&crossbeam_paced::<P>(mode, k, per_rep, rate)?);
            ours.add_latencies(&with_runtime(|rt| {
                ventus_paced::<P>(mode, rt, k, per_rep, rate)
            })?);
        }
    }
    row.ours = ours;
    row.base = base;
    row.check = format!("ok: {k}x{reps}x{per_rep} events handled");
    Ok(row)
}

/// Emits at a fixed rate; one-way latency.
pub(crate) fn paced(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    for &mode in &ctx.modes.paced {
        rows.push(with_payload!(ctx.payload, paced_row(ctx, mode))?);
    }
    Ok(())
}
