//! Throughput scenarios: unicast, fanout and churn.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, RwLock};
use std::thread;
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_channel::{Sender, unbounded};
use ventus::Runtime;

use super::payload::{Payload, with_payload};
use super::report::{Kind, Row, Side};
use super::topology::{
    Sink, Tally, Topology, check_all, expected, shared, unavailable, with_runtime,
};
use super::{Ctx, Mode, Res};

fn seq_of<P: Payload>(p: &P) -> u64 {
    p.seq()
}

fn seq_of_arc<P: Payload>(p: &Arc<P>) -> u64 {
    p.seq()
}

/// How the ventus side emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// Single emits through a `LocalEmitter` (the emitting loop's own handle: a cached
    /// snapshot and route): case "single".
    Local,
    /// Single emits through `&Emitter` (a snapshot load and a lookup per emit): case
    /// "shared".
    Shared,
    /// `emit_batch` of this many events: case "emit_batch".
    Batch(usize),
}

impl How {
    fn case(self) -> &'static str {
        match self {
            How::Local => "single",
            How::Shared => "shared",
            How::Batch(_) => "emit_batch",
        }
    }
}

/// ventus: one emitting thread, `k` subscriptions under `mode`, emitting as `how` says;
/// events/s.
fn ventus_flow<P: Payload>(mode: Mode, runtime: &Runtime, k: usize, n: u64, how: How) -> Res<f64> {
    let mut topology = Topology::new(mode, runtime)?;
    let tallies: Vec<Arc<Tally>> = (0..k).map(|_| Arc::new(Tally::default())).collect();
    for tally in &tallies {
        let tally = shared(tally);
        topology.add(move |p: &P| tally.add(p.seq()))?;
    }
    let mut delivered = 0usize;
    let start = Instant::now();
    if how == How::Local {
        let mut local = topology.emitter.local();
        for i in 0..n {
            let delivery = local
                .emit(P::new(i))
                .map_err(|e| format!("emit {i}: {e}"))?;
            delivered += delivery.delivered;
        }
    } else if let How::Batch(batch) = how {
        let mut i = 0;
        while i < n {
            let end = (i + batch as u64).min(n);
            let delivery = topology
                .emitter
                .emit_batch((i..end).map(P::new))
                .map_err(|e| format!("emit_batch {i}..{end}: {e}"))?;
            delivered += delivery.delivered;
            i = end;
        }
    } else {
        for i in 0..n {
            let delivery = topology
                .emitter
                .emit(P::new(i))
                .map_err(|e| format!("emit {i}: {e}"))?;
            delivered += delivery.delivered;
        }
    }
    topology.wait()?;
    let elapsed = start.elapsed().as_secs_f64();
    if delivered as u64 != n * k as u64 {
        return Err(format!("delivered {delivered}, expected {}", n * k as u64).into());
    }
    let got: Vec<(u64, u64)> = tallies.iter().map(|t| t.get()).collect();
    check_all("ventus", &got, expected(n))?;
    topology.close()?;
    Ok(n as f64 / elapsed)
}

/// crossbeam: one sending thread, `k` unbounded channels, one receiver each; events/s.
fn crossbeam_flow<P: Payload>(mode: Mode, k: usize, n: u64) -> Res<f64> {
    let (senders, receivers): (Vec<Sender<P>>, Vec<_>) = (0..k).map(|_| unbounded()).unzip();
    let start = Instant::now();
    let mut sink = Sink::start(mode, receivers, seq_of::<P>);
    for i in 0..n {
        let event = P::new(i);
        let (last, rest) = senders.split_last().expect("k >= 1");
        for tx in rest {
            tx.send(event.clone())?;
        }
        last.send(event)?;
        sink.drain(seq_of::<P>);
    }
    drop(senders);
    let got = sink.finish(seq_of::<P>);
    let elapsed = start.elapsed().as_secs_f64();
    check_all("crossbeam", &got, expected(n))?;
    Ok(n as f64 / elapsed)
}

/// Interleaved repetitions of one (mode, k) case; the row.
fn flow_row<P: Payload>(
    ctx: &Ctx,
    scenario: &'static str,
    mode: Mode,
    k: usize,
    n: u64,
    how: How,
) -> Res<Row> {
    let mut row = Row::new(scenario, how.case(), mode.label());
    row.subscribers = k;
    row.batch = match how {
        How::Batch(batch) => batch.max(1),
        How::Local | How::Shared => 1,
    };
    row.events = n;
    if let Some(why) = unavailable(mode) {
        row.unavailable = Some(why);
        return Ok(row);
    }
    let (mut ours, mut base) = (Side::new(k), Side::new(k));
    for rep in 0..ctx.sizes.reps {
        ctx.progress(&format!(
            "{scenario} {} K={k}: repetition {}/{}",
            mode.label(),
            rep + 1,
            ctx.sizes.reps
        ));
        // Alternate which side goes first.
        if rep % 2 == 0 {
            ours.rates
                .push(with_runtime(|rt| ventus_flow::<P>(mode, rt, k, n, how))?);
            base.rates.push(crossbeam_flow::<P>(mode, k, n)?);
        } else {
            base.rates.push(crossbeam_flow::<P>(mode, k, n)?);
            ours.rates
                .push(with_runtime(|rt| ventus_flow::<P>(mode, rt, k, n, how))?);
        }
    }
    row.ours = ours;
    row.base = base;
    row.check = format!("ok: {k}x{n} counted, sums match");
    Ok(row)
}

/// 1 → 1: single emits through a `LocalEmitter`, then through `&Emitter`, then
/// `emit_batch` (crossbeam sends one at a time either way).
pub(crate) fn unicast(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    for &mode in &ctx.modes.unicast {
        let n = ctx.sizes.unicast;
        for how in [How::Local, How::Shared, How::Batch(ctx.sizes.batch)] {
            rows.push(with_payload!(
                ctx.payload,
                flow_row(ctx, "unicast", mode, 1, n, how)
            )?);
        }
    }
    Ok(())
}

/// 1 → K for each K.
pub(crate) fn fanout(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    for &mode in &ctx.modes.fanout {
        for &k in &ctx.sizes.fanout_k {
            let n = ctx.sizes.fanout;
            rows.push(with_payload!(
                ctx.payload,
                flow_row(ctx, "fanout", mode, k, n, How::Local)
            )?);
        }
    }
    Ok(())
}

/// One churn run's result: events/s, subscribe+unsubscribe cycles, and events lost.
struct Churned {
    rate: f64,
    cycles: u64,
    lost: u64,
}

/// ventus: `k` stable subscriptions receive `n` events while another thread subscribes
/// and unsubscribes a transient one in a loop.
fn ventus_churn<P: Payload>(mode: Mode, runtime: &Runtime, k: usize, n: u64) -> Res<Churned> {
    let mut topology = Topology::new(mode, runtime)?;
    let tallies: Vec<Arc<Tally>> = (0..k).map(|_| Arc::new(Tally::default())).collect();
    for tally in &tallies {
        let tally = shared(tally);
        topology.add(move |p: &P| tally.add(p.seq()))?;
    }
    let transient = Arc::new(AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    // The emitter starts once the churn thread runs.
    let started = Barrier::new(2);
    let mut delivered = 0u64;
    let (elapsed, cycles) = thread::scope(|scope| -> Res<_> {
        let churner = scope.spawn(|| -> Result<u64, String> {
            let mut cycles = 0u64;
            started.wait();
            while !stop.load(Ordering::Relaxed) {
                let t = shared(&transient);
                let sub = topology
                    .subscribe(move |_: &P| {
                        t.fetch_add(1, Ordering::Relaxed);
                    })
                    .map_err(|e| e.to_string())?;
                sub.unsubscribe();
                cycles += 1;
            }
            Ok(cycles)
        });
        started.wait();
        let start = Instant::now();
        let mut result = Ok(());
        for i in 0..n {
            match topology.emitter.emit(P::new(i)) {
                Ok(delivery) => delivered += delivery.delivered as u64,
                Err(e) => {
                    result = Err(format!("emit {i}: {e}"));
                    break;
                }
            }
        }
        let waited = topology.wait();
        let elapsed = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let cycles = churner.join().expect("churn thread")?;
        result?;
        waited?;
        Ok((elapsed, cycles))
    })?;
    topology.wait()?;
    let got: Vec<(u64, u64)> = tallies.iter().map(|t| t.get()).collect();
    check_all("ventus churn", &got, expected(n))?;
    // Every delivery reported by an emit either ran or was discarded (and counted) when
    // its transient subscription went away.
    let ran: u64 = got.iter().map(|g| g.0).sum::<u64>() + transient.load(Ordering::Relaxed);
    let discarded = topology
        .linker
        .dead_letter_counts()
        .discarded_after_unsubscribe;
    // Under `Rayon`, `emit` reports the subscriptions that matched when it was called
    // (documented), and the pool matches again when it delivers: a transient subscription
    // may be gone by then (fewer runs than reported) or new (more). Only the stable
    // subscriptions' counts are exact there.
    let lost = if mode == Mode::Rayon {
        0
    } else {
        delivered.saturating_sub(ran + discarded)
    };
    if mode != Mode::Rayon && ran + discarded > delivered {
        return Err(format!(
            "ventus churn: {delivered} deliveries reported, but {ran} ran and {discarded} were discarded"
        )
        .into());
    }
    topology.close()?;
    Ok(Churned {
        rate: n as f64 / elapsed,
        cycles,
        lost,
    })
}

/// The crossbeam shape: an `RwLock<Vec<Sender>>` registry read on every emit; the churn
/// thread adds a channel, removes it, and drains what reached it.
fn crossbeam_churn<P: Payload>(mode: Mode, k: usize, n: u64) -> Res<Churned> {
    let (senders, receivers): (Vec<Sender<P>>, Vec<_>) = (0..k).map(|_| unbounded()).unzip();
    let registry: RwLock<Vec<(u64, Sender<P>)>> = RwLock::new(
        senders
            .into_iter()
            .enumerate()
            .map(|(i, tx)| (i as u64, tx))
            .collect(),
    );
    let stop = AtomicBool::new(false);
    // The emitter starts once the churn thread runs.
    let started = Barrier::new(2);
    let mut sink = Sink::start(mode, receivers, seq_of::<P>);
    let mut sent = 0u64;
    let (elapsed, cycles, transient) = thread::scope(|scope| -> Res<_> {
        let churner = scope.spawn(|| {
            let (mut cycles, mut transient) = (0u64, 0u64);
            let mut id = 1u64 << 32;
            started.wait();
            while !stop.load(Ordering::Relaxed) {
                let (tx, rx) = unbounded::<P>();
                registry.write().expect("registry").push((id, tx));
                registry
                    .write()
                    .expect("registry")
                    .retain(|(i, _)| *i != id);
                transient += rx.try_iter().count() as u64;
                cycles += 1;
                id += 1;
            }
            (cycles, transient)
        });
        started.wait();
        let start = Instant::now();
        for i in 0..n {
            let event = P::new(i);
            let registry = registry.read().expect("registry");
            for (_, tx) in registry.iter() {
                if tx.send(event.clone()).is_ok() {
                    sent += 1;
                }
            }
            drop(registry);
            sink.drain(seq_of::<P>);
        }
        registry.write().expect("registry").clear();
        stop.store(true, Ordering::Relaxed);
        let (cycles, transient) = churner.join().expect("churn thread");
        Ok((start.elapsed().as_secs_f64(), cycles, transient))
    })?;
    let got = sink.finish(seq_of::<P>);
    check_all("crossbeam churn", &got, expected(n))?;
    let received = got.iter().map(|g| g.0).sum::<u64>() + transient;
    if received != sent {
        return Err(format!("crossbeam churn: sent {sent}, received {received}").into());
    }
    Ok(Churned {
        rate: n as f64 / elapsed,
        cycles,
        lost: 0,
    })
}

/// The naive shape: an `ArcSwap` snapshot of per-subscriber channels of `Arc` events;
/// subscribe and unsubscribe replace the snapshot (`rcu`). An emitter still holding an
/// old snapshot can send to a channel its subscriber already drained and dropped: those
/// events are counted as lost (the shape's known flaw), not as a failure of the run.
fn naive_churn<P: Payload>(mode: Mode, k: usize, n: u64) -> Res<Churned> {
    type Registry<P> = Vec<(u64, Sender<Arc<P>>)>;
    let (senders, receivers): (Vec<Sender<Arc<P>>>, Vec<_>) = (0..k).map(|_| unbounded()).unzip();
    let initial: Registry<P> = senders
        .into_iter()
        .enumerate()
        .map(|(i, tx)| (i as u64, tx))
        .collect();
    let registry = ArcSwap::from_pointee(initial);
    let stop = AtomicBool::new(false);
    // The emitter starts once the churn thread runs.
    let started = Barrier::new(2);
    let mut sink = Sink::start(mode, receivers, seq_of_arc::<P>);
    let mut sent = 0u64;
    let (elapsed, cycles, transient) = thread::scope(|scope| -> Res<_> {
        let churner = scope.spawn(|| {
            let (mut cycles, mut transient) = (0u64, 0u64);
            let mut id = 1u64 << 32;
            started.wait();
            while !stop.load(Ordering::Relaxed) {
                let (tx, rx) = unbounded::<Arc<P>>();
                registry.rcu(|current| {
                    let mut next: Registry<P> = (**current).clone();
                    next.push((id, tx.clone()));
                    next
                });
                drop(tx);
                registry.rcu(|current| {
                    let mut next: Registry<P> = (**current).clone();
                    next.retain(|(i, _)| *i != id);
                    next
                });
                transient += rx.try_iter().count() as u64;
                drop(rx);
                cycles += 1;
                id += 1;
            }
            (cycles, transient)
        });
        started.wait();
        let start = Instant::now();
        for i in 0..n {
            let event = Arc::new(P::new(i));
            let snapshot = registry.load();
            for (_, tx) in snapshot.iter() {
                if tx.send(Arc::clone(&event)).is_ok() {
                    sent += 1;
                }
            }
            drop(snapshot);
            sink.drain(seq_of_arc::<P>);
        }
        registry.store(Arc::new(Vec::new()));
        stop.store(true, Ordering::Relaxed);
        let (cycles, transient) = churner.join().expect("churn thread");
        Ok((start.elapsed().as_secs_f64(), cycles, transient))
    })?;
    let got = sink.finish(seq_of_arc::<P>);
    check_all("naive churn", &got, expected(n))?;
    let received = got.iter().map(|g| g.0).sum::<u64>() + transient;
    Ok(Churned {
        rate: n as f64 / elapsed,
        cycles,
        lost: sent.saturating_sub(received),
    })
}

fn churn_rows<P: Payload>(ctx: &Ctx, mode: Mode, rows: &mut Vec<Row>) -> Res<()> {
    let (k, n) = (ctx.sizes.churn_k, ctx.sizes.churn);
    let mut against_crossbeam = Row::new("churn", "vs RwLock registry", mode.label());
    against_crossbeam.subscribers = k;
    against_crossbeam.events = n;
    let mut against_naive = against_crossbeam.clone();
    against_naive.case = "vs naive ArcSwap".to_owned();
    against_naive.baseline = "naive";
    if let Some(why) = unavailable(mode) {
        against_crossbeam.unavailable = Some(why.clone());
        against_naive.unavailable = Some(why);
        rows.extend([against_crossbeam, against_naive]);
        return Ok(());
    }
    let (mut ours, mut cb, mut naive) = (Side::new(k), Side::new(k), Side::new(k));
    let (mut cycles, mut naive_lost, mut ventus_lost) = ([0u64; 3], 0u64, 0u64);
    for rep in 0..ctx.sizes.reps {
        ctx.progress(&format!(
            "churn {} K={k}: repetition {}/{}",
            mode.label(),
            rep + 1,
            ctx.sizes.reps
        ));
        for turn in 0..3 {
            match (turn + rep) % 3 {
                0 => {
                    let r = with_runtime(|rt| ventus_churn::<P>(mode, rt, k, n))?;
                    ventus_lost += r.lost;
                    ours.rates.push(r.rate);
                    cycles[0] += r.cycles;
                }
                1 => {
                    let r = crossbeam_churn::<P>(mode, k, n)?;
                    cb.rates.push(r.rate);
                    cycles[1] += r.cycles;
                }
                _ => {
                    let r = naive_churn::<P>(mode, k, n)?;
                    naive.rates.push(r.rate);
                    cycles[2] += r.cycles;
                    naive_lost += r.lost;
                }
            }
        }
    }
    let reps = ctx.sizes.reps as u64;
    against_crossbeam.ours = ours.clone();
    against_crossbeam.base = cb;
    let verdict = if ventus_lost == 0 {
        "ok: nothing lost".to_owned()
    } else {
        format!(
            "LOST: {ventus_lost} deliveries reported by emit neither ran nor were dead-lettered"
        )
    };
    against_crossbeam.check = format!(
        "{verdict}; subscribe+unsubscribe cycles/rep: ventus {}, RwLock {}",
        cycles[0] / reps,
        cycles[1] / reps
    );
    against_crossbeam.lost = ventus_lost;
    against_naive.ours = ours;
    against_naive.base = naive;
    against_naive.check = format!(
        "{}: ventus lost {ventus_lost}, naive lost {naive_lost}; cycles/rep: naive {}",
        if ventus_lost == 0 { "ok" } else { "LOST" },
        cycles[2] / reps
    );
    against_naive.lost = ventus_lost;
    against_naive.kind = Kind::Throughput;
    rows.extend([against_crossbeam, against_naive]);
    Ok(())
}

/// Emitting while another thread subscribes and unsubscribes.
pub(crate) fn churn(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    for &mode in &ctx.modes.churn {
        with_payload!(ctx.payload, churn_rows(ctx, mode, rows))?;
    }
    Ok(())
}
