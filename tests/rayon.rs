//! ventus's own rayon pool: `CpuBound` subscriptions (one invocation at a time each,
//! different ones in parallel, handlers free to use `par_iter`), and the `Rayon` strategy
//! (emit, emit_batch returning once handled, emit_and_wait, shutdown).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use rayon::prelude::*;
use ventus::{Actors, EmitError, Emitter, Failure, Linker, Outcome, Placement, Rayon, Runtime};

fn runtime(name: &str) -> Runtime {
    Runtime::builder()
        .workers(2)
        .cpu_threads(2)
        .name(name)
        .build()
        .unwrap()
}

#[derive(Clone, Copy)]
struct Seq {
    thread: usize,
    n: u64,
}

struct Tally {
    count: AtomicU64,
    sum: AtomicU64,
    out_of_order: AtomicU64,
    overlapping: AtomicU64,
    wrong_thread: AtomicU64,
}

/// A subscription that checks it never runs twice at once, runs on the named rayon
/// threads, and sees each emitting thread's events in order.
fn checked(linker: &Linker, placement: Placement, thread_prefix: &'static str) -> Arc<Tally> {
    let tally = Arc::new(Tally {
        count: AtomicU64::new(0),
        sum: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        overlapping: AtomicU64::new(0),
        wrong_thread: AtomicU64::new(0),
    });
    let t = tally.clone();
    let running = AtomicBool::new(false);
    let mut last = [0u64; 8];
    let _ = linker
        .on::<Seq>()
        .placement(placement)
        .call(move |seq: &Seq| {
            if running.swap(true, Ordering::SeqCst) {
                t.overlapping.fetch_add(1, Ordering::Relaxed);
            }
            if !thread::current()
                .name()
                .is_some_and(|name| name.starts_with(thread_prefix))
            {
                t.wrong_thread.fetch_add(1, Ordering::Relaxed);
            }
            t.count.fetch_add(1, Ordering::Relaxed);
            t.sum.fetch_add(seq.n, Ordering::Relaxed);
            if std::mem::replace(&mut last[seq.thread], seq.n) >= seq.n {
                t.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            running.store(false, Ordering::SeqCst);
        })
        .unwrap();
    tally
}

fn emit_from_threads(emitter: &Emitter, per_thread: u64) {
    thread::scope(|scope| {
        for thread in 0..4 {
            let emitter = emitter.clone();
            scope.spawn(move || {
                for n in 1..=per_thread {
                    let _ = emitter.emit(Seq { thread, n }).unwrap();
                }
            });
        }
    });
}

fn assert_tally(tally: &Tally, per_thread: u64) {
    assert_eq!(tally.count.load(Ordering::Relaxed), 4 * per_thread);
    assert_eq!(
        tally.sum.load(Ordering::Relaxed),
        4 * per_thread * (per_thread + 1) / 2
    );
    assert_eq!(
        tally.overlapping.load(Ordering::Relaxed),
        0,
        "ran twice at once"
    );
    assert_eq!(
        tally.wrong_thread.load(Ordering::Relaxed),
        0,
        "ran off the rayon pool"
    );
}

#[test]
fn cpu_bound_subscriptions_are_exclusive_ordered_and_exact() {
    const N: u64 = 5_000;
    let runtime = runtime("cpub");
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let tallies: Vec<_> = (0..4)
        .map(|_| checked(&linker, Placement::CpuBound, "cpub-cpu-"))
        .collect();
    // Whatever the emitter: the actor strategy and the inline one.
    emit_from_threads(&Emitter::new(&linker, Actors::new(&runtime)), N);
    emit_from_threads(&Emitter::inline(&linker), N);
    runtime.wait_idle().unwrap();
    for tally in &tallies {
        // Two emitters per thread index (actors, then inline): order holds per emitter
        // pass: exactly one step back per thread index, where the second pass starts.
        assert_eq!(tally.out_of_order.load(Ordering::Relaxed), 4);
        assert_eq!(tally.count.load(Ordering::Relaxed), 8 * N);
        assert_eq!(tally.overlapping.load(Ordering::Relaxed), 0);
        assert_eq!(tally.wrong_thread.load(Ordering::Relaxed), 0);
        assert_eq!(tally.sum.load(Ordering::Relaxed), 8 * N * (N + 1) / 2);
    }
}

/// A `CpuBound` handler that uses `par_iter` on the same pool while other `CpuBound`
/// actors are queued: work stealing may run their jobs on the waiting stack, and still
/// every actor runs one invocation at a time and every count is exact.
#[test]
fn par_iter_inside_cpu_bound_handlers_with_other_actors_queued() {
    const N: u64 = 200;
    let runtime = runtime("pari");
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let heavy_sum = Arc::new(AtomicU64::new(0));
    let heavy_overlap = Arc::new(AtomicU64::new(0));
    let (h, o) = (heavy_sum.clone(), heavy_overlap.clone());
    let running = AtomicBool::new(false);
    let _heavy = linker
        .on::<u64>()
        .placement(Placement::CpuBound)
        .call(move |n: &u64| {
            if running.swap(true, Ordering::SeqCst) {
                o.fetch_add(1, Ordering::Relaxed);
            }
            let total: u64 = (0..1_000u64).into_par_iter().map(|i| i % 7 + *n).sum();
            h.fetch_add(total, Ordering::Relaxed);
            running.store(false, Ordering::SeqCst);
        })
        .unwrap();
    let others: Vec<_> = (0..3)
        .map(|_| checked(&linker, Placement::CpuBound, "pari-cpu-"))
        .collect();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    thread::scope(|scope| {
        let e = emitter.clone();
        scope.spawn(move || {
            for n in 1..=N {
                let _ = e.emit(n).unwrap();
            }
        });
        emit_from_threads(&emitter, N);
    });
    runtime.wait_idle().unwrap();
    let per_event: u64 = (0..1_000u64).map(|i| i % 7).sum();
    assert_eq!(
        heavy_sum.load(Ordering::Relaxed),
        N * per_event + 1_000 * N * (N + 1) / 2
    );
    assert_eq!(heavy_overlap.load(Ordering::Relaxed), 0);
    for tally in &others {
        assert_tally(tally, N);
        assert_eq!(tally.out_of_order.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn cpu_bound_panics_go_to_the_failure_callback_and_the_pool_lives_on() {
    let runtime = runtime("cpup");
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let failures = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (f, h) = (failures.clone(), handled.clone());
    let _sub = linker
        .on::<u32>()
        .placement(Placement::CpuBound)
        .on_failure(move |failure| {
            assert!(matches!(failure, Failure::Panic(_)));
            f.fetch_add(1, Ordering::Relaxed);
        })
        .call(move |n: &u32| {
            if n % 3 == 0 {
                panic!("{n}");
            }
            h.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 1..=300u32 {
        let _ = emitter.emit(n).unwrap();
    }
    runtime.wait_idle().unwrap();
    assert_eq!(failures.load(Ordering::Relaxed), 100);
    assert_eq!(handled.load(Ordering::Relaxed), 200);
}

#[test]
fn rayon_strategy_runs_default_subscriptions_on_the_pool_exclusively() {
    const N: u64 = 5_000;
    let runtime = runtime("rays");
    let linker = Linker::new();
    let tallies: Vec<_> = (0..2)
        .map(|_| checked(&linker, Placement::Default, "rays-cpu-"))
        .collect();
    let emitter = Emitter::new(&linker, Rayon::new(&runtime));
    emit_from_threads(&emitter, N);
    runtime.wait_idle().unwrap();
    for tally in &tallies {
        // Rayon's jobs are not FIFO: order per emitting thread is not kept here.
        assert_tally(tally, N);
    }
}

#[test]
fn rayon_emit_batch_returns_once_handled() {
    let runtime = runtime("rayb");
    let linker = Linker::new();
    let sums: Vec<_> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for sum in &sums {
        let s = sum.clone();
        let _ = linker
            .on::<u64>()
            .call(move |n: &u64| {
                s.fetch_add(*n, Ordering::SeqCst);
            })
            .unwrap();
    }
    let emitter = Emitter::new(&linker, Rayon::new(&runtime));
    for round in 1..=20u64 {
        let delivery = emitter.emit_batch(1..=1_000u64).unwrap();
        assert_eq!(delivery.delivered, 3_000);
        for sum in &sums {
            assert_eq!(sum.load(Ordering::SeqCst), round * 500_500);
        }
    }
}

struct Order(u64);
struct Shipped(u64);

#[test]
fn rayon_emit_and_wait_waits_for_chains_and_reports_outcomes() {
    let runtime = runtime("rayw");
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Rayon::new(&runtime));
    let shipped = Arc::new(AtomicU64::new(0));
    let e = emitter.clone();
    let order = linker
        .on::<Order>()
        .call(move |o: &Order| {
            let _ = e.emit(Shipped(o.0)).unwrap();
        })
        .unwrap();
    let s = shipped.clone();
    let _ship = linker
        .on::<Shipped>()
        .call(move |sh: &Shipped| {
            s.fetch_add(sh.0, Ordering::SeqCst);
        })
        .unwrap();
    for n in 1..=200u64 {
        let completed = emitter.emit_and_wait(Order(n)).unwrap();
        assert_eq!(completed.outcome(order.id()), Some(&Outcome::Succeeded));
        assert_eq!(shipped.load(Ordering::SeqCst), n * (n + 1) / 2);
    }
}

#[test]
fn rayon_threads_refuse_to_wait_and_shutdown_refuses_emits() {
    let runtime = runtime("rayr");
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Rayon::new(&runtime));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let e = emitter.clone();
    let _sub = linker
        .on::<Order>()
        .placement(Placement::CpuBound)
        .runtime(&runtime)
        .call(move |o: &Order| {
            let refused = matches!(
                e.emit_and_wait(Shipped(o.0)),
                Err(EmitError::WouldDeadlock(_))
            );
            tx.lock().unwrap().send(refused).unwrap();
        })
        .unwrap();
    let _ = emitter.emit(Order(1)).unwrap();
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    runtime.wait_idle().unwrap();
    let report = runtime.shutdown();
    assert!(report.drained);
    assert!(matches!(
        emitter.emit(Order(2)),
        Err(EmitError::Shutdown(Order(2)))
    ));
    assert!(matches!(
        emitter.emit_batch(vec![1u8, 2]),
        Err(EmitError::Shutdown(events)) if events == vec![1, 2]
    ));
}
