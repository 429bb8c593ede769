//! The registry: inline emit cost on a hot key and on random keys, and subscribe cost,
//! with 1 … 100k registered events; against a `HashMap` of crossbeam channels.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, unbounded};
use ventus::{Emitter, Linker, Subscription};

use super::report::{Kind, Row, Side, histogram};
use super::topology::{Tally, expected, shared};
use super::{Ctx, Res};

/// A deterministic xorshift sequence of `n` indices below `bound`.
fn random_indices(n: u64, bound: usize) -> Vec<u32> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % bound as u64) as u32
        })
        .collect()
}

/// ventus: `size` events: `u64` (the hot key) and `size - 1` named events.
struct Ours {
    linker: Linker,
    emitter: Emitter,
    hot: Arc<Tally>,
    named: Arc<Tally>,
    subs: Vec<Subscription>,
}

impl Ours {
    fn new(size: usize, names: &[String]) -> Res<Self> {
        let linker = Linker::builder().name("bench-registry").build()?;
        let hot = Arc::new(Tally::default());
        let named = Arc::new(Tally::default());
        let mut subs = Vec::with_capacity(size + 1);
        let h = shared(&hot);
        subs.push(linker.on::<u64>().call(move |n: &u64| h.add(*n))?);
        for name in names {
            let t = shared(&named);
            subs.push(linker.on_named(name).call(move |n: &u64| t.add(*n))?);
        }
        let emitter = Emitter::inline(&linker);
        Ok(Ours {
            linker,
            emitter,
            hot,
            named,
            subs,
        })
    }
}

/// crossbeam: a `HashMap` from name to a channel; emit = lookup + send + `try_recv` on
/// the emitting thread (the handler runs inline).
struct Theirs {
    map: HashMap<String, (Sender<u64>, Receiver<u64>)>,
    hot: (u64, u64),
    named: (u64, u64),
}

impl Theirs {
    fn new(names: &[String]) -> Self {
        let mut map = HashMap::new();
        map.insert("hot".to_owned(), unbounded());
        for name in names {
            map.insert(name.clone(), unbounded());
        }
        Theirs {
            map,
            hot: (0, 0),
            named: (0, 0),
        }
    }

    fn emit(&self, name: &str, value: u64) -> Res<u64> {
        let (tx, rx) = self.map.get(name).ok_or("no such key")?;
        tx.send(value)?;
        Ok(rx.try_recv()?)
    }
}

fn add(tally: &mut (u64, u64), value: u64) {
    tally.0 += 1;
    tally.1 = tally.1.wrapping_add(value);
}

fn size_rows(ctx: &Ctx, size: usize, rows: &mut Vec<Row>) -> Res<()> {
    let (n, reps) = (ctx.sizes.registry_emits, ctx.sizes.reps);
    ctx.progress(&format!("registry @{size}: registering {size} events"));
    let names: Vec<String> = (1..size).map(|i| format!("key-{i}")).collect();
    let ours = Ours::new(size, &names)?;
    let mut theirs = Theirs::new(&names);
    let random = if names.is_empty() {
        Vec::new()
    } else {
        random_indices(n, names.len())
    };

    let mut hot = Row::new("registry", format!("hot key @{size}"), "inline");
    let mut rand = Row::new("registry", format!("random keys @{size}"), "inline");
    for row in [&mut hot, &mut rand] {
        row.events = n;
        row.baseline = "crossbeam";
    }
    let mut subscribe = Row::new("registry", format!("subscribe @{size}"), "inline");
    subscribe.kind = Kind::Latency;
    let per_rep = (ctx.sizes.subscribes / reps as u64).max(1);
    subscribe.events = per_rep;
    let (mut sub_ours, mut sub_theirs) = (Side::new(1), Side::new(1));
    let mut new_subs = Vec::new();
    let mut new_channels: HashMap<String, Vec<Sender<u64>>> = HashMap::new();

    for rep in 0..reps {
        ctx.progress(&format!("registry @{size}: repetition {}/{reps}", rep + 1));
        // Hot key.
        let start = Instant::now();
        for i in 0..n {
            let delivery = ours.emitter.emit(i).map_err(|e| format!("emit: {e}"))?;
            if delivery.delivered != 1 {
                return Err(format!("hot key: emit {i} delivered {}", delivery.delivered).into());
            }
        }
        hot.ours
            .rates
            .push(n as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        for i in 0..n {
            let got = theirs.emit("hot", i)?;
            add(&mut theirs.hot, got);
        }
        hot.base
            .rates
            .push(n as f64 / start.elapsed().as_secs_f64());
        // Random keys.
        if !random.is_empty() {
            let start = Instant::now();
            for (i, &index) in random.iter().enumerate() {
                let delivery = ours
                    .emitter
                    .emit_named(&names[index as usize], i as u64)
                    .map_err(|e| format!("emit_named: {e}"))?;
                if delivery.delivered != 1 {
                    return Err(
                        format!("random key: emit {i} delivered {}", delivery.delivered).into(),
                    );
                }
            }
            rand.ours
                .rates
                .push(n as f64 / start.elapsed().as_secs_f64());
            let start = Instant::now();
            for (i, &index) in random.iter().enumerate() {
                let got = theirs.emit(&names[index as usize], i as u64)?;
                add(&mut theirs.named, got);
            }
            rand.base
                .rates
                .push(n as f64 / start.elapsed().as_secs_f64());
        }
        // Subscribe: a new key each time.
        let mut h = histogram();
        for i in 0..per_rep {
            let name = format!("new-{rep}-{i}");
            let start = Instant::now();
            let sub = ours.linker.on_named(&name).call(|_: &u64| {})?;
            h.saturating_record(start.elapsed().as_nanos() as u64);
            new_subs.push(sub);
        }
        sub_ours.add_latencies(&h);
        let mut h = histogram();
        for i in 0..per_rep {
            let name = format!("new-{rep}-{i}");
            let start = Instant::now();
            let (tx, rx) = unbounded::<u64>();
            new_channels.entry(name).or_default().push(tx);
            h.saturating_record(start.elapsed().as_nanos() as u64);
            black_box(rx);
        }
        sub_theirs.add_latencies(&h);
    }
    // Nothing lost: every emit reached its handler once.
    let (count, sum) = expected(n);
    let reps64 = reps as u64;
    let hot_expected = (count * reps64, sum * reps64);
    if ours.hot.get() != hot_expected || theirs.hot != hot_expected {
        return Err(format!(
            "hot key: ventus {:?}, crossbeam {:?}, expected {hot_expected:?}",
            ours.hot.get(),
            theirs.hot
        )
        .into());
    }
    if !random.is_empty() {
        let named_expected = (count * reps64, sum * reps64);
        if ours.named.get() != named_expected || theirs.named != named_expected {
            return Err(format!(
                "random keys: ventus {:?}, crossbeam {:?}, expected {named_expected:?}",
                ours.named.get(),
                theirs.named
            )
            .into());
        }
    }
    let expected_events = size + (per_rep as usize) * reps;
    if ours.linker.event_count() != expected_events {
        return Err(format!(
            "{} events registered, expected {expected_events}",
            ours.linker.event_count()
        )
        .into());
    }
    hot.check = format!("ok: {reps}x{n} handled, sums match");
    rand.check = hot.check.clone();
    subscribe.ours = sub_ours;
    subscribe.base = sub_theirs;
    subscribe.baseline = "crossbeam";
    subscribe.check = format!("ok: {} subscriptions registered", new_subs.len());
    rows.push(hot);
    if !random.is_empty() {
        rows.push(rand);
    }
    rows.push(subscribe);
    drop(new_subs);
    ours.linker.remove_all();
    drop(ours.subs);
    Ok(())
}

/// Emit and subscribe cost for each registry size.
pub(crate) fn registry(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    for &size in &ctx.sizes.registry {
        size_rows(ctx, size.max(1), rows)?;
    }
    Ok(())
}
