//! The actor runtime with exact accounting: counts and sums, per-thread ordering,
//! policies, panics, payload drops, shutdown drain, unsubscribe discarding, placements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use ventus::{
    Actors, DeadLetter, DeadLetterReason, EmitError, Emitter, Failure, Linker, Placement, Policy,
    Runtime, Spin, WouldDeadlock,
};

mod common;
use common::{CLONES, Tracked, VALUE_DROPS};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

#[derive(Clone, Copy, Debug)]
struct Seq {
    thread: usize,
    n: u64,
}

#[test]
fn four_emitters_four_subscriptions_exact_count_sum_and_order() {
    const PER_THREAD: u64 = 20_000;
    let runtime = runtime(2);
    let linker = Linker::new();
    let mut totals = Vec::new();
    for _ in 0..4 {
        let count = Arc::new(AtomicU64::new(0));
        let sum = Arc::new(AtomicU64::new(0));
        let out_of_order = Arc::new(AtomicU64::new(0));
        let (c, s, o) = (count.clone(), sum.clone(), out_of_order.clone());
        let mut last: HashMap<usize, u64> = HashMap::new();
        let _ = linker
            .on::<Seq>()
            .call(move |seq: &Seq| {
                c.fetch_add(1, Ordering::Relaxed);
                s.fetch_add(seq.n, Ordering::Relaxed);
                if let Some(previous) = last.insert(seq.thread, seq.n) {
                    if previous >= seq.n {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .unwrap();
        totals.push((count, sum, out_of_order));
    }
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    thread::scope(|scope| {
        for thread in 0..4 {
            let emitter = emitter.clone();
            scope.spawn(move || {
                for n in 1..=PER_THREAD {
                    assert_eq!(emitter.emit(Seq { thread, n }).unwrap().delivered, 4);
                }
            });
        }
    });
    runtime.wait_idle().unwrap();
    let expected_sum = 4 * PER_THREAD * (PER_THREAD + 1) / 2;
    for (count, sum, out_of_order) in totals {
        assert_eq!(count.load(Ordering::Relaxed), 4 * PER_THREAD);
        assert_eq!(sum.load(Ordering::Relaxed), expected_sum);
        assert_eq!(out_of_order.load(Ordering::Relaxed), 0);
    }
    assert!(runtime.shutdown().drained);
}

/// A handler that blocks until released, so that its mailbox fills deterministically.
fn gated(
    linker: &Linker,
    capacity: usize,
    policy: Policy,
) -> (
    ventus::Subscription,
    mpsc::Receiver<u32>,
    Arc<Barrier>,
    Arc<AtomicUsize>,
) {
    let (started, started_rx) = mpsc::channel();
    let release = Arc::new(Barrier::new(2));
    let handled = Arc::new(AtomicUsize::new(0));
    let (r, h) = (release.clone(), handled.clone());
    let started = Mutex::new(started);
    let sub = linker
        .on::<u32>()
        .capacity(capacity)
        .policy(policy)
        .call(move |n: &u32| {
            if *n == 0 {
                started.lock().unwrap().send(*n).unwrap();
                r.wait();
            }
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    (sub, started_rx, release, handled)
}

#[test]
fn fail_and_drop_newest_refuse_at_capacity_and_try_emit_never_blocks() {
    for policy in [Policy::Fail, Policy::DropNewest, Policy::Block] {
        let runtime = runtime(2);
        let letters = Arc::new(Mutex::new(Vec::new()));
        let l = letters.clone();
        let linker = Linker::builder()
            .dead_letter_hook(move |letter: DeadLetter| l.lock().unwrap().push(letter.reason))
            .build()
            .unwrap();
        let (sub, started, release, handled) = gated(&linker, 2, policy);
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        assert_eq!(emitter.emit(0u32).unwrap().delivered, 1);
        started.recv().unwrap();
        // pending counts the running event: one more fits.
        assert_eq!(emitter.emit(1u32).unwrap().delivered, 1);
        match emitter.try_emit(2u32) {
            Err(EmitError::Full(2)) => {
                let stats = sub.stats();
                if policy == Policy::DropNewest {
                    assert_eq!(stats.dropped, 1);
                } else {
                    assert_eq!(stats.refused, 1);
                }
            }
            other => panic!("{policy:?}: {other:?}"),
        }
        match policy {
            Policy::Fail => assert!(matches!(emitter.emit(3u32), Err(EmitError::Full(3)))),
            Policy::DropNewest => {
                assert!(matches!(emitter.emit(3u32), Err(EmitError::Full(3))));
                assert_eq!(sub.stats().dropped, 2);
                assert_eq!(*letters.lock().unwrap(), vec![DeadLetterReason::Dropped; 2]);
            }
            _ => {
                // Block: an external emit waits for room; release the handler from here.
                let blocked = {
                    let emitter = emitter.clone();
                    thread::spawn(move || emitter.emit(3u32).map(|d| d.delivered).map_err(|_| ()))
                };
                release.wait();
                assert_eq!(blocked.join().unwrap(), Ok(1));
                runtime.wait_idle().unwrap();
                assert_eq!(handled.load(Ordering::SeqCst), 3);
                continue;
            }
        }
        release.wait();
        runtime.wait_idle().unwrap();
        assert_eq!(handled.load(Ordering::SeqCst), 2);
    }
}

#[derive(Clone, Copy)]
struct Ball {
    hops: u32,
}

#[test]
fn two_actors_emitting_to_each_other_at_capacity_one_cannot_hang_two_workers() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let handled = Arc::new(AtomicU64::new(0));
    let with_hops = Arc::new(AtomicU64::new(0));
    let forwarded = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    for name in ["ping", "pong"] {
        let other = if name == "ping" { "pong" } else { "ping" };
        let (e, h, w, f, r) = (
            emitter.clone(),
            handled.clone(),
            with_hops.clone(),
            forwarded.clone(),
            refused.clone(),
        );
        let _ = linker
            .on_named(name)
            .capacity(1)
            .call(move |ball: &Ball| {
                h.fetch_add(1, Ordering::Relaxed);
                if ball.hops > 0 {
                    w.fetch_add(1, Ordering::Relaxed);
                    match e.emit_named(
                        other,
                        Ball {
                            hops: ball.hops - 1,
                        },
                    ) {
                        Ok(delivery) => {
                            assert_eq!(delivery.delivered, 1);
                            f.fetch_add(1, Ordering::Relaxed);
                        }
                        // From a pool worker a full mailbox is refused, never waited for.
                        Err(EmitError::Full(..)) => {
                            r.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
            .unwrap();
    }
    let external_ok = AtomicU64::new(0);
    thread::scope(|scope| {
        for _ in 0..4 {
            let emitter = emitter.clone();
            let external_ok = &external_ok;
            scope.spawn(move || {
                for _ in 0..500 {
                    // Outside the runtime `Block` waits for room.
                    let delivery = emitter.emit_named("ping", Ball { hops: 10 }).unwrap();
                    assert_eq!(delivery.delivered, 1);
                    external_ok.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    runtime.wait_idle().unwrap();
    // Every ball started, and every hop was either handled or refused.
    let started = external_ok.load(Ordering::Relaxed);
    assert_eq!(started, 2000);
    let handled = handled.load(Ordering::Relaxed);
    let forwarded = forwarded.load(Ordering::Relaxed);
    // Every handled ball came from an external start or a successful forward, and every
    // handled ball with hops left was either forwarded or refused: nothing lost or doubled.
    assert_eq!(handled, started + forwarded);
    assert_eq!(
        with_hops.load(Ordering::Relaxed),
        forwarded + refused.load(Ordering::Relaxed)
    );
}

#[test]
fn a_panicking_handler_reaches_the_failure_callback_and_the_worker_lives_on() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let panics = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (p, h) = (panics.clone(), handled.clone());
    let _sub = linker
        .on::<u32>()
        .on_failure(move |failure| {
            assert!(matches!(failure, Failure::Panic(_)));
            p.fetch_add(1, Ordering::SeqCst);
        })
        .call(move |n: &u32| {
            if n % 2 == 0 {
                panic!("even");
            }
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..100u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    runtime.wait_idle().unwrap();
    assert_eq!(panics.load(Ordering::SeqCst), 50);
    assert_eq!(handled.load(Ordering::SeqCst), 50);
}

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn every_payload_is_dropped_exactly_once_under_fanout() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let s = seen.clone();
        let _ = linker
            .on::<Counted>()
            .call(move |_: &Counted| {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for _ in 0..1000 {
        assert_eq!(emitter.emit(Counted(drops.clone())).unwrap().delivered, 3);
    }
    runtime.wait_idle().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 3000);
    assert_eq!(drops.load(Ordering::SeqCst), 1000);
}

#[test]
fn shutdown_drains_accepts_handler_chains_and_refuses_external_emits() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let finals = Arc::new(AtomicU64::new(0));
    let e = emitter.clone();
    let _first = linker
        .on::<u32>()
        .call(move |n: &u32| {
            // A chain: the second hop is emitted during the drain.
            assert_eq!(e.emit(u64::from(*n)).unwrap().delivered, 1);
        })
        .unwrap();
    let f = finals.clone();
    let _second = linker
        .on::<u64>()
        .call(move |n: &u64| {
            f.fetch_add(*n, Ordering::SeqCst);
        })
        .unwrap();
    for n in 1..=1000u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    let report = runtime.shutdown();
    assert!(report.drained && report.joined && report.first);
    assert_eq!(finals.load(Ordering::SeqCst), 500_500);
    match emitter.emit(7u32) {
        Err(EmitError::Shutdown(7)) => {}
        other => panic!("{other:?}"),
    }
    assert!(!runtime.shutdown().first);
}

#[test]
fn shutdown_timeout_dead_letters_what_is_left() {
    let runtime = runtime(1);
    let letters = Arc::new(Mutex::new(Vec::new()));
    let l = letters.clone();
    let linker = Linker::builder()
        .dead_letter_hook(move |letter: DeadLetter| {
            let n = letter
                .payload
                .as_ref()
                .and_then(|p| p.downcast_ref::<u32>())
                .copied();
            l.lock().unwrap().push((letter.reason, n));
        })
        .build()
        .unwrap();
    let (_sub, started, release, handled) = gated(&linker, 100, Policy::Block);
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..5u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    started.recv().unwrap();
    // The handler stays blocked until after shutdown_timeout returned: the deadline passes.
    let report = runtime.shutdown_timeout(Duration::from_millis(50));
    assert!(!report.drained);
    assert!(
        !report.joined,
        "the blocked worker was left to finish on its own"
    );
    release.wait();
    // The worker finishes its batch, turning what it has not started into dead letters.
    runtime.wait_idle().unwrap();
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "only the running event was handled"
    );
    let letters = letters.lock().unwrap();
    assert_eq!(
        *letters,
        (1..5)
            .map(|n| (DeadLetterReason::LeftAtShutdown, Some(n)))
            .collect::<Vec<_>>()
    );
    assert_eq!(linker.dead_letter_counts().left_at_shutdown, 4);
}

#[test]
fn unsubscribe_discards_queued_events_as_dead_letters() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let (sub, started, release, handled) = gated(&linker, 100, Policy::Block);
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..4u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    started.recv().unwrap();
    assert!(sub.unsubscribe());
    release.wait();
    runtime.wait_idle().unwrap();
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    assert_eq!(sub.stats().discarded, 3);
    assert_eq!(linker.dead_letter_counts().discarded_after_unsubscribe, 3);
}

#[test]
fn unsubscribe_and_wait_waits_for_the_running_invocation() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let finished = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let f = finished.clone();
    let sub = linker
        .on::<u8>()
        .call(move |_: &u8| {
            started_tx.lock().unwrap().send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            f.store(true, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    assert_eq!(emitter.emit(1u8).unwrap().delivered, 1);
    started_rx.recv().unwrap();
    let waiter = {
        let (sub, finished) = (sub.clone(), finished.clone());
        thread::spawn(move || {
            assert_eq!(sub.unsubscribe_and_wait(), Ok(true));
            finished.load(Ordering::SeqCst)
        })
    };
    release_tx.send(()).unwrap();
    assert!(
        waiter.join().unwrap(),
        "returned before the running invocation finished"
    );
}

#[test]
fn placements_side_by_side() {
    let runtime = Runtime::builder().workers(2).name("side").build().unwrap();
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let names = Arc::new(Mutex::new(Vec::new()));
    for placement in [
        Placement::Default,
        Placement::Dedicated(Spin::Backoff),
        Placement::Dedicated(Spin::Forever),
    ] {
        let n = names.clone();
        let _ = linker
            .on::<u8>()
            .placement(placement)
            .call(move |_: &u8| {
                let name = thread::current().name().unwrap_or("?").to_owned();
                n.lock().unwrap().push((format!("{placement:?}"), name));
            })
            .unwrap();
    }
    let caller = thread::current().name().unwrap_or("?").to_owned();
    // Inline: the default placement runs on the caller; the dedicated ones on their threads.
    assert_eq!(Emitter::inline(&linker).emit(1u8).unwrap().delivered, 3);
    runtime.wait_idle().unwrap();
    // Actors: the default placement runs on a pool worker.
    assert_eq!(
        Emitter::new(&linker, Actors::new(&runtime))
            .emit(2u8)
            .unwrap()
            .delivered,
        3
    );
    runtime.wait_idle().unwrap();
    let names = names.lock().unwrap().clone();
    assert_eq!(names.len(), 6);
    for (placement, thread) in &names {
        if placement.starts_with("Dedicated") {
            assert!(
                thread.starts_with("side-dedicated-"),
                "{placement}: {thread}"
            );
        }
    }
    let default: Vec<_> = names
        .iter()
        .filter(|(p, _)| p == "Default")
        .map(|(_, t)| t.clone())
        .collect();
    assert!(default.contains(&caller), "{default:?}");
    assert!(
        default.iter().any(|t| t.starts_with("side-worker-")),
        "{default:?}"
    );
    assert!(runtime.shutdown().joined);
}

#[test]
fn a_dedicated_subscription_exits_its_thread_after_unsubscribe() {
    let runtime = runtime(1);
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let sub = linker
        .on::<u8>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(move |_: &u8| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(runtime.stats().threads, 2);
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..100u8 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    runtime.wait_idle().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 100);
    assert!(sub.unsubscribe());
    // The thread notices, exits, and the runtime joins what is left at shutdown.
    assert!(runtime.shutdown().joined);
    assert_eq!(runtime.stats().threads, 0);
}

#[test]
fn wait_idle_and_shutdown_from_a_handler_do_not_deadlock() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let r = Mutex::new(Some(runtime.clone()));
    let _sub = linker
        .on::<u8>()
        .call(move |_: &u8| {
            let runtime = r.lock().unwrap().take().unwrap();
            let idle = runtime.wait_idle();
            // Dropping a handle (and shutting down) from its own worker never joins it.
            let report = runtime.shutdown();
            drop(runtime);
            tx.lock().unwrap().send((idle, report.first)).unwrap();
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    assert_eq!(emitter.emit(1u8).unwrap().delivered, 1);
    assert_eq!(rx.recv().unwrap(), (Err(WouldDeadlock), true));
    drop(emitter);
    // The last handle, dropped here, finishes the shutdown (joins the idle threads).
    drop(runtime);
}

#[test]
fn bad_runtime_configuration_is_a_typed_error() {
    use ventus::BuildError;
    assert_eq!(
        Runtime::builder().workers(0).build().unwrap_err(),
        BuildError::ZeroWorkers
    );
    assert_eq!(
        Runtime::builder().batch(0).build().unwrap_err(),
        BuildError::ZeroBatch
    );
    assert!(matches!(
        Runtime::builder().workers(2).max_threads(1).build(),
        Err(BuildError::Spawn(_))
    ));
    let runtime = Runtime::builder()
        .workers(1)
        .max_threads(1)
        .build()
        .unwrap();
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    assert!(matches!(
        linker
            .on::<u8>()
            .placement(Placement::Dedicated(Spin::Backoff))
            .call(|_: &u8| {}),
        Err(ventus::SubscribeError::Spawn(_))
    ));
    assert!(
        linker.is_empty(),
        "a refused subscription is not registered"
    );
    let report = runtime.shutdown_timeout(Duration::MAX);
    assert!(report.drained);
}

#[test]
fn an_inline_emit_returns_after_dedicated_handlers_ran() {
    let runtime = runtime(1);
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let _dedicated = linker
        .on::<u32>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(move |n: &u32| s.lock().unwrap().push(*n))
        .unwrap();
    let emitter = Emitter::inline(&linker);
    for n in 0..50u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
        // No wait_idle: the emit itself waited for the dedicated invocation.
        assert_eq!(seen.lock().unwrap().last(), Some(&n));
    }
    assert!(runtime.shutdown().joined);
}

#[test]
fn on_panic_unsubscribe_removes_the_subscription() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let sub = linker
        .on::<u8>()
        .on_panic(ventus::OnPanic::Unsubscribe)
        .on_failure(|_| {})
        .call(move |_: &u8| {
            if r.fetch_add(1, Ordering::SeqCst) < usize::MAX {
                panic!("once is enough");
            }
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    assert_eq!(emitter.emit(1u8).unwrap().delivered, 1);
    runtime.wait_idle().unwrap();
    assert!(!sub.is_active());
    assert!(!linker.contains_subscription(&sub));
    assert_eq!(emitter.emit(2u8).unwrap().delivered, 0);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A payload whose `Drop` emits: runs on a worker after the handler, with no lock held.
struct EmitsOnDrop(Emitter);
impl Drop for EmitsOnDrop {
    fn drop(&mut self) {
        let _ = self.0.emit(99u64);
    }
}

#[test]
fn a_payload_whose_drop_emits_does_not_deadlock() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let _a = linker
        .on::<EmitsOnDrop>()
        .call(|_: &EmitsOnDrop| {})
        .unwrap();
    let _b = linker
        .on::<u64>()
        .call(move |n: &u64| {
            g.fetch_add(*n, Ordering::SeqCst);
        })
        .unwrap();
    for _ in 0..10 {
        assert_eq!(
            emitter
                .emit(EmitsOnDrop(emitter.clone()))
                .unwrap()
                .delivered,
            1
        );
    }
    runtime.wait_idle().unwrap();
    assert_eq!(got.load(Ordering::SeqCst), 990);
    assert!(runtime.shutdown().drained);
}

#[test]
fn a_bound_runtime_supplies_subscription_defaults() {
    let runtime = Runtime::builder()
        .workers(1)
        .default_capacity(1)
        .default_policy(Policy::Fail)
        .build()
        .unwrap();
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let release = Arc::new(Barrier::new(2));
    let (started_tx, r) = (Mutex::new(started_tx), release.clone());
    // No capacity or policy here: they come from the runtime.
    let sub = linker
        .on::<u32>()
        .call(move |n: &u32| {
            if *n == 0 {
                started_tx.lock().unwrap().send(()).unwrap();
                r.wait();
            }
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    assert_eq!(emitter.emit(0u32).unwrap().delivered, 1);
    started_rx.recv().unwrap();
    // Capacity 1 is taken by the running event; Fail refuses at once (no waiting).
    assert!(matches!(emitter.emit(5u32), Err(EmitError::Full(5))));
    assert_eq!(sub.stats().refused, 1);
    release.wait();
    runtime.wait_idle().unwrap();
    assert_eq!(
        Runtime::builder().default_capacity(0).build().unwrap_err(),
        ventus::BuildError::ZeroCapacity
    );
}

#[test]
fn shutdown_timeout_never_strands_a_subscription_behind_the_stop_tasks() {
    // One worker, no lingering, more events queued than one batch: at the deadline the
    // worker must dead-letter the rest rather than reschedule it behind its Stop task.
    let runtime = Runtime::builder()
        .workers(1)
        .batch(2)
        .linger(Duration::ZERO)
        .build()
        .unwrap();
    let linker = Linker::new();
    let (_sub, started, release, handled) = gated(&linker, 1000, Policy::Block);
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..10u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    started.recv().unwrap();
    assert!(!runtime.shutdown_timeout(Duration::from_millis(20)).drained);
    release.wait();
    assert_eq!(runtime.wait_idle_timeout(Duration::from_secs(10)), Ok(true));
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    assert_eq!(linker.dead_letter_counts().left_at_shutdown, 9);
}

#[test]
fn handlers_and_callbacks_may_subscribe_unsubscribe_and_emit() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let late = Arc::new(AtomicUsize::new(0));
    let (l, e, n) = (linker.clone(), emitter.clone(), late.clone());
    let _subscriber = linker
        .on::<u8>()
        .once()
        // The success callback emits; the handler subscribes a new subscription.
        .on_success(move || {
            assert_eq!(e.emit(7u16).unwrap().delivered, 1);
        })
        .call(move |_: &u8| {
            let n = n.clone();
            let _ = l
                .on::<u16>()
                .call(move |_: &u16| {
                    n.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        })
        .unwrap();
    assert_eq!(emitter.emit(1u8).unwrap().delivered, 1);
    runtime.wait_idle().unwrap();
    assert_eq!(late.load(Ordering::SeqCst), 1);
    // A failure callback that unsubscribes its own subscription.
    let slot: Arc<Mutex<Option<ventus::Subscription>>> = Arc::default();
    let s = slot.clone();
    let sub = linker
        .on::<u32>()
        .on_failure(move |_| {
            assert!(s.lock().unwrap().as_ref().unwrap().unsubscribe());
        })
        .call(|_: &u32| Err::<(), _>(std::io::Error::other("no")))
        .unwrap();
    *slot.lock().unwrap() = Some(sub.clone());
    assert_eq!(emitter.emit(1u32).unwrap().delivered, 1);
    runtime.wait_idle().unwrap();
    assert!(!sub.is_active());
    assert!(runtime.shutdown().drained);
}

struct PanicsOnDrop;
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("payload drop");
    }
}

#[test]
fn a_payload_whose_drop_panics_does_not_kill_a_worker() {
    let runtime = runtime(1);
    let errors = Arc::new(AtomicUsize::new(0));
    let e = errors.clone();
    let linker = Linker::builder()
        .error_hook(move |_, _| {
            e.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let _sub = linker
        .on::<PanicsOnDrop>()
        .call(|_: &PanicsOnDrop| {})
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let _after = linker
        .on::<u8>()
        .call(move |_: &u8| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for _ in 0..5 {
        assert_eq!(emitter.emit(PanicsOnDrop).unwrap().delivered, 1);
    }
    assert_eq!(emitter.emit(1u8).unwrap().delivered, 1);
    runtime.wait_idle().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1, "the only worker lived on");
    assert_eq!(errors.load(Ordering::SeqCst), 5);
    assert_eq!(runtime.stats().threads, 1);
}

#[test]
fn a_shutdown_from_a_handler_still_completes_chains_through_dedicated_threads() {
    let runtime = runtime(1);
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let (done_tx, done_rx) = mpsc::channel();
    let done_tx = Mutex::new(done_tx);
    let _dedicated = linker
        .on::<u64>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(move |n: &u64| done_tx.lock().unwrap().send(*n).unwrap())
        .unwrap();
    let r = Mutex::new(Some(runtime.clone()));
    let e = emitter.clone();
    let _first = linker
        .on::<u8>()
        .call(move |_: &u8| {
            // Shut down from a pool worker, then keep the chain going: the drain accepts it.
            let runtime = r.lock().unwrap().take().unwrap();
            let _ = runtime.shutdown();
            assert_eq!(e.emit(42u64).unwrap().delivered, 1);
        })
        .unwrap();
    assert_eq!(emitter.emit(1u8).unwrap().delivered, 1);
    assert_eq!(done_rx.recv().unwrap(), 42);
    assert!(runtime.is_shutdown());
    assert!(matches!(emitter.emit(2u8), Err(EmitError::Shutdown(2))));
}

#[test]
fn a_dedicated_subscription_of_a_shut_down_runtime_refuses_every_emit() {
    let home = runtime(1);
    let other = runtime(1);
    let linker = Linker::builder().runtime(&home).build().unwrap();
    let dedicated = linker
        .on::<u8>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(|_: &u8| {})
        .unwrap();
    assert!(home.shutdown().joined);
    // Inline, or through another runtime's Actors: refused with the event given back.
    assert!(matches!(
        Emitter::inline(&linker).emit(1u8),
        Err(EmitError::Shutdown(1))
    ));
    let through_other = Emitter::new(&linker, Actors::new(&other));
    assert!(matches!(
        through_other.emit(2u8),
        Err(EmitError::Shutdown(2))
    ));
    // With another subscription that takes it, the refusal is listed.
    let _inline = linker.on::<u8>().call(|_: &u8| {}).unwrap();
    let delivery = Emitter::inline(&linker).emit(3u8).unwrap();
    assert_eq!(delivery.delivered, 1);
    assert_eq!(
        delivery.refused,
        vec![(dedicated.id(), ventus::Refusal::Shutdown)]
    );
    assert_eq!(dedicated.stats().refused, 3);
    assert!(other.shutdown().drained);
}

/// Four by-value subscriptions: each emit clones three times (the last gets the original),
/// every value is dropped exactly once, and every subscription sees every event.
#[test]
fn by_value_fanout_clones_for_all_but_the_last() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let sums: Vec<_> = (0..4).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for sum in &sums {
        let s = sum.clone();
        let _ = linker
            .on::<Tracked>()
            .by_value()
            .call(move |t: &Tracked| {
                s.fetch_add(t.0, Ordering::Relaxed);
            })
            .unwrap();
    }
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let (clones, drops) = (
        CLONES.load(Ordering::SeqCst),
        VALUE_DROPS.load(Ordering::SeqCst),
    );
    for n in 1..=1_000u64 {
        assert_eq!(emitter.emit(Tracked(n)).unwrap().delivered, 4);
    }
    runtime.wait_idle().unwrap();
    assert_eq!(CLONES.load(Ordering::SeqCst) - clones, 3_000);
    assert_eq!(VALUE_DROPS.load(Ordering::SeqCst) - drops, 4_000);
    for sum in &sums {
        assert_eq!(sum.load(Ordering::Relaxed), 500_500);
    }
}
