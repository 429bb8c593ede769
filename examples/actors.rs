//! The actor runtime, side by side with the inline emitter: where each handler runs, in
//! what order, what a panic does, and how the runtime stops.
//!
//! - placements: a pooled subscription (`Placement::Default` under the `Actors`
//!   strategy) runs on a worker (`NAME-worker-N`); the same subscription under the
//!   `Inline` strategy runs on the emitting thread; a `Placement::Dedicated(Spin::Backoff)`
//!   subscription runs on its own thread (`NAME-dedicated-N`) whatever the emitter;
//! - ordering: three threads emit numbered events; every subscription sees each thread's
//!   events in the order that thread emitted them (a pooled subscription may move between
//!   workers, but runs one invocation at a time);
//! - a panicking handler: the panic reaches the subscription's failure callback as
//!   `Failure::Panic`, and the worker that caught it lives on;
//! - `wait_idle` (wait for every queued event, nested emits included) and a clean
//!   `shutdown()` with its `ShutdownReport`.
//!
//! Run it with:
//!
//! ```bash
//! cargo run --example actors
//! ```
//!
//! It asserts what it prints, finishes in well under a second, and exits 0.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::panic;
use std::sync::{Arc, Mutex};
use std::thread;

use ventus::{
    Actors, Delivery, EmitError, Emitter, Failure, Inline, Linker, Placement, Runtime, Spin,
};

type Res = Result<(), Box<dyn Error>>;

/// The runtime's name: the prefix of its threads' names.
const NAME: &str = "demo";

/// Events emitted by each producer thread in the ordering section.
const PER_PRODUCER: u64 = 5_000;

/// A one-off event for the placement section.
#[derive(Debug, Clone, Copy)]
struct Ping(u32);

/// The `n`th event emitted by producer thread `producer`.
#[derive(Debug, Clone, Copy)]
struct Seq {
    producer: usize,
    n: u64,
}

/// An event whose handler panics on multiples of 3.
#[derive(Debug, Clone, Copy)]
struct Risky(u32);

fn thread_name() -> String {
    thread::current().name().unwrap_or("<unnamed>").to_owned()
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

/// Checks that an emit reached `expected` subscriptions and none refused it.
fn expect(delivery: Delivery, expected: usize) {
    assert_eq!(delivery.delivered, expected, "{delivery:?}");
    assert!(delivery.is_complete(), "{delivery:?}");
}

fn main() -> Res {
    let runtime = Runtime::builder().workers(2).name(NAME).build()?;
    // Dedicated subscriptions of this linker get their threads from `runtime`.
    let linker = Linker::builder().name("actors").runtime(&runtime).build()?;
    let actors = Emitter::new(&linker, Actors::new(&runtime));
    // The same linker and subscriptions, another strategy.
    let inline = actors.switch(Inline);
    println!(
        "runtime {:?} started: {} workers",
        runtime.name(),
        runtime.stats().workers
    );

    placements(&runtime, &linker, &actors, &inline)?;
    ordering(&runtime, &linker, &actors)?;
    panics(&runtime, &linker, &actors)?;

    section("Shutdown");
    // Drains what is queued (nothing: we waited), stops and joins every thread.
    let report = runtime.shutdown();
    println!("  shutdown(): {report:?}");
    assert!(report.drained && report.joined && report.first);
    let stats = runtime.stats();
    println!(
        "  threads alive: {}; is_shutdown: {}",
        stats.threads,
        runtime.is_shutdown()
    );
    assert_eq!(stats.threads, 0);
    match actors.emit(Ping(99)) {
        Err(EmitError::Shutdown(Ping(n))) => {
            println!("  emit(Ping({n})) afterwards: refused, the event given back")
        }
        other => panic!("expected Shutdown, got {other:?}"),
    }
    println!("\nDone. Shutdown in detail: cargo run --example shutdown");
    Ok(())
}

/// Pooled, inline and dedicated: which thread each handler ran on.
fn placements(runtime: &Runtime, linker: &Linker, actors: &Emitter, inline: &Emitter) -> Res {
    section("Where handlers run");
    // (emitter, subscription, thread), in the order the handlers ran.
    type Ran = Vec<(&'static str, &'static str, String)>;
    let ran: Arc<Mutex<Ran>> = Arc::default();

    let r = ran.clone();
    let _default = linker.on::<Ping>().call(move |ping: &Ping| {
        let via = if ping.0 == 1 { "actors" } else { "inline" };
        r.lock()
            .unwrap()
            .push((via, "Placement::Default", thread_name()));
    })?;
    let r = ran.clone();
    let _dedicated = linker
        .on::<Ping>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(move |ping: &Ping| {
            let via = if ping.0 == 1 { "actors" } else { "inline" };
            r.lock()
                .unwrap()
                .push((via, "Dedicated(Backoff)", thread_name()));
        })?;
    println!(
        "  threads alive: {} (2 workers + 1 dedicated)",
        runtime.stats().threads
    );
    assert_eq!(runtime.stats().threads, 3);

    // Actors: both are queued; `emit` returns at once.
    expect(actors.emit(Ping(1))?, 2);
    runtime.wait_idle()?;
    // Inline: the default placement runs here, before `emit` returns; an inline emit from
    // outside any handler also waits for the dedicated handler, on its own thread.
    expect(inline.emit(Ping(2))?, 2);
    assert_eq!(
        ran.lock()
            .unwrap()
            .iter()
            .filter(|(via, ..)| *via == "inline")
            .count(),
        2,
        "both ran before the inline emit returned"
    );

    let mut ran = std::mem::take(&mut *ran.lock().unwrap());
    ran.sort();
    println!("  {:<8}{:<22}thread", "emitter", "subscription");
    for (via, subscription, thread) in &ran {
        println!("  {via:<8}{subscription:<22}{thread}");
    }
    assert_eq!(ran.len(), 4);
    let main_thread = thread_name();
    let mut dedicated_threads = Vec::new();
    for (via, subscription, thread) in &ran {
        match (*via, *subscription) {
            ("actors", "Placement::Default") => {
                assert!(thread.starts_with(&format!("{NAME}-worker-")), "{thread}");
            }
            ("inline", "Placement::Default") => assert_eq!(thread, &main_thread),
            _ => {
                assert!(
                    thread.starts_with(&format!("{NAME}-dedicated-")),
                    "{thread}"
                );
                dedicated_threads.push(thread.clone());
            }
        }
    }
    assert_eq!(
        dedicated_threads[0], dedicated_threads[1],
        "one thread of its own"
    );
    Ok(())
}

/// What one subscription saw in the ordering section.
#[derive(Default)]
struct Seen {
    count: u64,
    out_of_order: u64,
    /// The last `n` per producer.
    last: HashMap<usize, u64>,
    /// How many events ran on each thread.
    threads: BTreeMap<String, u64>,
}

impl Seen {
    fn record(&mut self, seq: &Seq) {
        self.count += 1;
        if let Some(previous) = self.last.insert(seq.producer, seq.n) {
            if previous >= seq.n {
                self.out_of_order += 1;
            }
        }
        *self.threads.entry(thread_name()).or_default() += 1;
    }
}

/// Per-emitter ordering: each producer's events arrive in its order, for every
/// subscription.
fn ordering(runtime: &Runtime, linker: &Linker, actors: &Emitter) -> Res {
    section("Ordering per emitting thread");
    let mut subscriptions = Vec::new();
    for (label, placement) in [
        ("pooled A", Placement::Default),
        ("pooled B", Placement::Default),
        ("dedicated", Placement::Dedicated(Spin::Backoff)),
    ] {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let sub = linker
            .on::<Seq>()
            .placement(placement)
            .call(move |seq: &Seq| s.lock().unwrap().record(seq))?;
        subscriptions.push((label, sub, seen));
    }

    let before = runtime.stats();
    thread::scope(|scope| {
        for producer in 0..3 {
            let actors = actors.clone();
            scope.spawn(move || {
                for n in 1..=PER_PRODUCER {
                    expect(actors.emit(Seq { producer, n }).expect("emitted"), 3);
                }
            });
        }
    });
    // Every emit has returned: the events are queued. Wait until they have all run.
    runtime.wait_idle()?;
    let after = runtime.stats();

    println!("  3 threads x {PER_PRODUCER} events, to 3 subscriptions");
    for (label, sub, seen) in &subscriptions {
        let seen = seen.lock().unwrap();
        let threads: Vec<String> = seen
            .threads
            .iter()
            .map(|(thread, count)| format!("{thread}: {count}"))
            .collect();
        println!(
            "  {label:<10} handled {}, out of order {}; ran on {}",
            seen.count,
            seen.out_of_order,
            threads.join(", ")
        );
        assert_eq!(seen.count, 3 * PER_PRODUCER);
        assert_eq!(seen.out_of_order, 0);
        assert_eq!(sub.stats().invoked, 3 * PER_PRODUCER);
        let prefix = if label.starts_with("pooled") {
            format!("{NAME}-worker-")
        } else {
            format!("{NAME}-dedicated-")
        };
        assert!(
            seen.threads
                .keys()
                .all(|thread| thread.starts_with(&prefix))
        );
    }
    println!(
        "  the pool ran {} batches ({} rescheduled to give others a turn); {} outstanding",
        after.runs - before.runs,
        after.reschedules - before.reschedules,
        after.outstanding
    );
    assert_eq!(after.outstanding, 0);
    // The dedicated subscription keeps its thread until it is unsubscribed or the runtime
    // shuts down.
    assert_eq!(after.threads, 4);
    Ok(())
}

/// A panicking handler: its failure callback gets the panic; the worker lives on.
fn panics(runtime: &Runtime, linker: &Linker, actors: &Emitter) -> Res {
    section("A panicking handler");
    // The default panic hook prints a few lines per panic; one line is enough here.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("?");
        println!("  (panic hook) {}: {message}", thread_name());
    }));

    let failures = Arc::new(Mutex::new(Vec::new()));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let (f, h) = (failures.clone(), handled.clone());
    let risky = linker
        .on::<Risky>()
        .on_failure(move |failure: Failure| {
            println!("  failure callback on {}: {failure}", thread_name());
            f.lock().unwrap().push(failure);
        })
        .call(move |risky: &Risky| {
            if risky.0 % 3 == 0 {
                panic!("Risky({}) blew up", risky.0);
            }
            h.lock().unwrap().push((risky.0, thread_name()));
        })?;
    let threads_before = runtime.stats().threads;
    for n in 1..=6 {
        expect(actors.emit(Risky(n))?, 1);
    }
    runtime.wait_idle()?;
    panic::set_hook(default_hook);

    let failures = failures.lock().unwrap();
    let handled = handled.lock().unwrap();
    let stats = risky.stats();
    println!(
        "  invoked {}, succeeded {}, panicked {}; handled {:?}",
        stats.invoked,
        stats.succeeded,
        stats.panicked,
        handled.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    assert_eq!(failures.len(), 2);
    assert!(
        failures.iter().all(
            |failure| matches!(failure, Failure::Panic(message) if message.contains("blew up"))
        )
    );
    assert_eq!((stats.invoked, stats.panicked), (6, 2));
    // Events after each panic still ran, on the same pool: no worker died.
    assert_eq!(
        handled.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [1, 2, 4, 5]
    );
    let threads_after = runtime.stats().threads;
    println!("  threads alive before: {threads_before}, after: {threads_after}");
    assert_eq!(threads_before, threads_after);
    assert!(
        handled
            .iter()
            .all(|(_, thread)| thread.starts_with(&format!("{NAME}-worker-")))
    );
    Ok(())
}
