//! Shutting an actor runtime down: what is drained, what is refused, and what is left when
//! a deadline passes.
//!
//! 1. `shutdown()` drains. A thousand `Job`s are queued behind a handler that is blocked
//!    when the shutdown starts. The shutdown closes the runtime's gate, so an emit from
//!    outside is refused (`EmitError::Shutdown(event)`, the event given back), while the
//!    emits that handlers make during the drain are accepted: every `Job` starts a chain
//!    of `Step`s, and every chain completes before `shutdown()` returns. After it, an
//!    emit is refused the same way, and a second `shutdown()` says it was not the first.
//! 2. `shutdown_timeout(d)` gives up. A handler is blocked past the deadline, so the drain
//!    cannot finish: what is still queued, per subscription, goes to the linker's
//!    dead-letter hook as `DeadLetterReason::LeftAtShutdown`, with its payload, and the
//!    report says `drained: false, joined: false` (the blocked worker is left to finish on
//!    its own). The handler is released only after `shutdown_timeout` returned; then
//!    `wait_idle` waits for the worker to dead-letter what it had not started.
//!
//! Threads are synchronised with channels (and one wait for `Runtime::is_shutdown`), never
//! with sleeps that hope for an ordering.
//!
//! Run it with:
//!
//! ```bash
//! cargo run --example shutdown
//! ```
//!
//! It asserts what it prints, finishes in under a second, and exits 0.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ventus::{
    Actors, DeadLetter, DeadLetterReason, Delivery, EmitError, Emitter, Linker, Runtime,
    SubscriptionId,
};

type Res = Result<(), Box<dyn Error>>;

/// Jobs queued before the first shutdown.
const JOBS: u32 = 1_000;

/// Each job's chain: a `Step` with `HOPS` hops left, which re-emits itself until none is.
const HOPS: u32 = 3;

/// A job; its handler starts a chain of steps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Job(u32);

/// One link of a job's chain.
#[derive(Debug, Clone, Copy)]
struct Step {
    job: u32,
    hops_left: u32,
}

/// An order, for the deadline part.
#[derive(Debug, Clone, PartialEq)]
struct Order {
    id: u32,
    item: &'static str,
}

/// Keeps a worker busy until released.
#[derive(Debug)]
struct Hold;

fn section(title: &str) {
    println!("\n== {title} ==");
}

/// Checks that an emit reached `expected` subscriptions and none refused it.
fn expect(delivery: Delivery, expected: usize) {
    assert_eq!(delivery.delivered, expected, "{delivery:?}");
    assert!(delivery.is_complete(), "{delivery:?}");
}

fn main() -> Res {
    drain()?;
    deadline()?;
    println!("\nDone.");
    Ok(())
}

/// `shutdown()`: every queued event is handled, chains emitted during the drain complete,
/// external emits are refused with the event given back.
fn drain() -> Res {
    section("shutdown(): the drain");
    let runtime = Runtime::builder().workers(2).name("drain").build()?;
    let linker = Linker::builder().name("drain").build()?;
    let actors = Emitter::new(&linker, Actors::new(&runtime));

    // Job(0) tells us it started, then waits until it is released.
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let e = actors.clone();
    let jobs = linker.on::<Job>().call(move |job: &Job| {
        if job.0 == 0 {
            started_tx.send(()).expect("main is waiting");
            release_rx.recv().expect("released");
        }
        // A handler's emit is accepted during the drain: the chain goes on.
        let step = Step {
            job: job.0,
            hops_left: HOPS,
        };
        expect(e.emit(step).expect("accepted during the drain"), 1);
    })?;
    let steps_handled = Arc::new(AtomicU64::new(0));
    let chains_done = Arc::new(AtomicU64::new(0));
    let job_sum = Arc::new(AtomicU64::new(0));
    let (e, handled, done, sum) = (
        actors.clone(),
        steps_handled.clone(),
        chains_done.clone(),
        job_sum.clone(),
    );
    let _steps = linker.on::<Step>().call(move |step: &Step| {
        handled.fetch_add(1, Ordering::Relaxed);
        if step.hops_left == 0 {
            done.fetch_add(1, Ordering::Relaxed);
            sum.fetch_add(u64::from(step.job), Ordering::Relaxed);
        } else {
            let next = Step {
                job: step.job,
                hops_left: step.hops_left - 1,
            };
            expect(e.emit(next).expect("accepted during the drain"), 1);
        }
    })?;

    for n in 0..JOBS {
        expect(actors.emit(Job(n))?, 1);
    }
    // Job(0) is running and blocked: the other jobs wait in its subscription's mailbox.
    started_rx.recv()?;
    println!(
        "  {JOBS} jobs emitted; Job(0) is blocked in its handler, {} Job events pending",
        jobs.stats().queued
    );

    // A second thread waits until the shutdown has closed the gate, checks that an emit
    // from outside is now refused, and only then releases Job(0).
    let outsider = {
        let (runtime, actors) = (runtime.clone(), actors.clone());
        thread::spawn(move || {
            while !runtime.is_shutdown() {
                thread::park_timeout(Duration::from_millis(1));
            }
            let refused = actors.emit(Job(JOBS));
            release_tx.send(()).expect("Job(0) is waiting");
            refused
        })
    };
    let started = Instant::now();
    let report = runtime.shutdown();
    println!(
        "  shutdown() returned after {:?}: {report:?}",
        started.elapsed()
    );
    match outsider.join().expect("the outsider thread") {
        Err(EmitError::Shutdown(job)) => {
            println!("  an emit from outside during the drain: refused, {job:?} given back");
            assert_eq!(job, Job(JOBS));
        }
        other => panic!("expected Shutdown, got {other:?}"),
    }
    assert!(report.drained && report.joined && report.first);

    let handled = steps_handled.load(Ordering::Relaxed);
    let chains = chains_done.load(Ordering::Relaxed);
    println!(
        "  jobs handled: {}; steps handled: {handled}; chains completed: {chains} of {JOBS}",
        jobs.stats().invoked
    );
    assert_eq!(jobs.stats().invoked, u64::from(JOBS));
    assert_eq!(handled, u64::from(JOBS * (HOPS + 1)));
    assert_eq!(chains, u64::from(JOBS));
    let n = u64::from(JOBS);
    assert_eq!(job_sum.load(Ordering::Relaxed), n * (n - 1) / 2);
    assert_eq!(linker.dead_letter_counts().total(), 0);

    // After the shutdown: refused, the event given back.
    match actors.emit(Job(7)) {
        Err(error @ EmitError::Shutdown(_)) => {
            println!("  emit(Job(7)) afterwards: {error}");
            let job = error.into_inner();
            println!("  ... and the event came back: {job:?}");
            assert_eq!(job, Job(7));
        }
        other => panic!("expected Shutdown, got {other:?}"),
    }
    let again = runtime.shutdown();
    println!("  shutdown() again: first = {}", again.first);
    assert!(!again.first);
    // The handlers hold the emitter, which holds the linker: clear it to break the cycle.
    linker.remove_all();
    Ok(())
}

/// `shutdown_timeout`: a handler blocked past the deadline; what is left becomes dead
/// letters, with payloads.
fn deadline() -> Res {
    section("shutdown_timeout(): the deadline");
    // One worker: while the slow handler blocks it, nothing else runs.
    let runtime = Runtime::builder().workers(1).name("deadline").build()?;
    // What the dead-letter hook receives: (reason, subscription, payload).
    type Letter = (DeadLetterReason, Option<SubscriptionId>, Option<Order>);
    let letters: Arc<Mutex<Vec<Letter>>> = Arc::default();
    let l = letters.clone();
    let linker = Linker::builder()
        .name("deadline")
        .dead_letter_hook(move |letter: DeadLetter| {
            let order = letter
                .payload
                .as_ref()
                .and_then(|payload| payload.downcast_ref::<Order>())
                .cloned();
            l.lock()
                .expect("letters")
                .push((letter.reason, letter.subscription, order));
        })
        .build()?;
    let actors = Emitter::new(&linker, Actors::new(&runtime));

    let (started_tx, started_rx) = mpsc::channel::<u32>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let packed = Arc::new(Mutex::new(Vec::new()));
    let p = packed.clone();
    // Subscribed first, so the first emit schedules it first: the worker starts here.
    let packing = linker.on::<Order>().call(move |order: &Order| {
        if order.id == 1 {
            started_tx.send(order.id).expect("main is waiting");
            release_rx.recv().expect("released");
        }
        p.lock().expect("packed").push(order.id);
    })?;
    let audit = linker.on::<Order>().call(|order: &Order| {
        println!("  audit: {order:?}");
    })?;

    // A `Hold` keeps the only worker busy while the orders are emitted, so that all five
    // are queued when packing starts.
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let _hold = linker
        .on::<Hold>()
        .call(move |_: &Hold| hold_rx.recv().expect("released"))?;
    expect(actors.emit(Hold)?, 1);
    let items = ["kettle", "teapot", "mug", "tray", "spoon"];
    for (id, item) in (1..).zip(items) {
        expect(actors.emit(Order { id, item })?, 2);
    }
    hold_tx.send(())?;
    let first = started_rx.recv()?;
    println!("  5 orders emitted to 2 subscriptions; packing Order {first} blocks the only worker");

    let timeout = Duration::from_millis(50);
    let started = Instant::now();
    let report = runtime.shutdown_timeout(timeout);
    println!(
        "  shutdown_timeout({timeout:?}) returned after {:?}: {report:?}",
        started.elapsed()
    );
    assert!(
        !report.drained,
        "the blocked handler kept the drain from finishing"
    );
    assert!(
        !report.joined,
        "the blocked worker is left to finish on its own"
    );
    assert!(report.first);

    // Now release the handler: its worker finishes Order 1, then turns what it has not
    // started into dead letters instead of running it.
    release_tx.send(())?;
    runtime.wait_idle()?;

    let mut letters = std::mem::take(&mut *letters.lock().expect("letters"));
    letters.sort_by_key(|(_, subscription, order)| (*subscription, order.as_ref().map(|o| o.id)));
    let name = |id: Option<SubscriptionId>| match id {
        Some(id) if id == packing.id() => "packing",
        Some(id) if id == audit.id() => "audit",
        _ => "?",
    };
    println!("  dead letters:");
    for (reason, subscription, order) in &letters {
        println!("    {:<8} {reason}: {order:?}", name(*subscription));
    }
    println!("  packed: {:?}", packed.lock().expect("packed"));
    assert_eq!(*packed.lock().expect("packed"), [1]);
    assert_eq!(packing.stats().invoked, 1);
    assert_eq!(audit.stats().invoked, 0);
    let mut expected: Vec<Letter> = (2..=5)
        .map(|id| (id, packing.id()))
        .chain((1..=5).map(|id| (id, audit.id())))
        .map(|(id, sub)| {
            let order = Order {
                id,
                item: items[id as usize - 1],
            };
            (DeadLetterReason::LeftAtShutdown, Some(sub), Some(order))
        })
        .collect();
    expected.sort_by_key(|(_, subscription, order)| (*subscription, order.as_ref().map(|o| o.id)));
    assert_eq!(letters, expected);
    let counts = linker.dead_letter_counts();
    println!("  dead-letter counts: {counts:?}");
    assert_eq!(counts.left_at_shutdown, 9);
    assert_eq!(counts.total(), 9);
    Ok(())
}
