//! Fault injection: handlers, payload drops, callbacks and hooks that panic (chosen by a
//! seeded generator), handlers that emit into their own full mailbox, drop the runtime or
//! the last emitter, unsubscribe themselves or others; timers with extreme durations;
//! nexus sources that fail; bus side effects that panic.
//!
//! Each test asserts the documented outcome: nothing is lost (it is counted in the stats,
//! the dead letters or the error hook), no worker dies, and nothing hangs (every wait is
//! bounded).

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use ventus::bus::{
    BasicEventBus, Committable, CustomEventBus, EmitOnCommitBus, EmitOutcome, EventBus,
    MultiEventBus, SideEffectError,
};
use ventus::{
    Actors, DeadLetter, DeadLetterReason, Delivery, DispatchError, Emission, EmitError, Emitter,
    ErrorReport, EventFactory, Failure, Linker, ManualClock, MissedTicks, Nexus, NexusError,
    NexusEvent, OnPanic, Placement, Policy, Runtime, Spin, Strategy, Timer, TimerKind,
};

/// The longest any single wait in this file may take before the test fails.
const BOUND: Duration = Duration::from_secs(20);
const ZERO: Option<Duration> = Some(Duration::ZERO);

/// splitmix64 as a pure function: whether event `n` misbehaves is decided by the seed
/// alone, so the expected counts are known before the run.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether event `n` misbehaves, for one in `every`.
fn faulty(seed: u64, n: u64, every: u64) -> bool {
    mix(seed, n) % every == 0
}

/// Error reports, by kind.
#[derive(Default)]
struct Reports {
    unhandled: AtomicU64,
    callback_panics: AtomicU64,
    drop_panics: AtomicU64,
    drop_panics_no_sub: AtomicU64,
    hook_panics: AtomicU64,
    other: Mutex<Vec<String>>,
}

impl Reports {
    fn file(&self, report: &ErrorReport) {
        let counter = match report {
            ErrorReport::UnhandledFailure { .. } => &self.unhandled,
            ErrorReport::CallbackPanicked { .. } => &self.callback_panics,
            ErrorReport::PayloadDropPanicked {
                subscription: None, ..
            } => &self.drop_panics_no_sub,
            ErrorReport::PayloadDropPanicked { .. } => &self.drop_panics,
            ErrorReport::DeadLetterHookPanicked { .. } => &self.hook_panics,
            other => {
                self.other.lock().unwrap().push(other.to_string());
                return;
            }
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

fn linker_with(reports: &Arc<Reports>) -> Linker {
    let r = reports.clone();
    Linker::builder()
        .error_hook(move |_, report| r.file(report))
        .build()
        .unwrap()
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// The names of this process's live threads (Linux: `/proc/self/task/*/comm`).
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded) until no live thread's name starts with `prefix`.
#[cfg(target_os = "linux")]
fn wait_threads_gone(prefix: &str) {
    let deadline = Instant::now() + BOUND;
    while thread_names().iter().any(|name| name.starts_with(prefix)) {
        assert!(Instant::now() < deadline, "threads {prefix}* still alive");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn handlers_panic_at_random_and_no_worker_dies() {
    const N: u64 = 3_000;
    const SEED: u64 = 0x5eed;
    let reports = Arc::new(Reports::default());
    let linker = linker_with(&reports);
    let runtime = runtime(2);
    let linker_home = Linker::builder().runtime(&runtime).build().unwrap();
    let panics_expected = (0..N).filter(|n| faulty(SEED, *n, 7)).count() as u64;
    assert!(panics_expected > 0);

    // A pooled subscription with a failure callback, one without (its panics go to the
    // error hook), and a dedicated one.
    let failures = Arc::new(AtomicU64::new(0));
    let f = failures.clone();
    let handler = |n: &u64| {
        if faulty(SEED, *n, 7) {
            panic!("injected panic on {n}");
        }
    };
    let with_callback = linker
        .on::<u64>()
        .on_failure(move |failure| {
            assert!(matches!(failure, Failure::Panic(ref m) if m.starts_with("injected")));
            f.fetch_add(1, Ordering::SeqCst);
        })
        .call(handler)
        .unwrap();
    let without_callback = linker.on::<u64>().call(handler).unwrap();
    let dedicated_panics = Arc::new(AtomicU64::new(0));
    let d = dedicated_panics.clone();
    let dedicated = linker_home
        .on::<u64>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .on_failure(move |_| {
            d.fetch_add(1, Ordering::SeqCst);
        })
        .call(handler)
        .unwrap();

    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let home_emitter = Emitter::new(&linker_home, Actors::new(&runtime));
    let inline = Emitter::inline(&linker);
    for n in 0..N {
        assert_eq!(emitter.emit(n).unwrap().delivered, 2);
        assert_eq!(home_emitter.emit(n).unwrap().delivered, 1);
    }
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    // Inline: the emitting thread catches the panic too and carries on.
    for n in 0..N {
        assert_eq!(inline.emit(n).unwrap().delivered, 2);
    }
    for sub in [&with_callback, &without_callback] {
        let stats = sub.stats();
        assert_eq!(stats.invoked, 2 * N);
        assert_eq!(stats.panicked, 2 * panics_expected);
        assert_eq!(stats.succeeded, 2 * (N - panics_expected));
    }
    assert_eq!(dedicated.stats().panicked, panics_expected);
    assert_eq!(failures.load(Ordering::SeqCst), 2 * panics_expected);
    assert_eq!(dedicated_panics.load(Ordering::SeqCst), panics_expected);
    assert_eq!(Reports::get(&reports.unhandled), 2 * panics_expected);
    // Every worker is alive (two, plus the dedicated thread) and still runs events.
    assert_eq!(runtime.stats().threads, 3);
    assert_eq!(emitter.emit(1u64).unwrap().delivered, 2);
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    assert_eq!(with_callback.stats().invoked, 2 * N + 1);
    assert!(reports.other.lock().unwrap().is_empty());
    assert!(runtime.shutdown_timeout(BOUND).joined);
}

#[test]
fn a_panicking_handler_with_on_panic_unsubscribe_discards_the_rest_as_dead_letters() {
    const N: u64 = 500;
    let runtime = Runtime::builder().workers(1).batch(8).build().unwrap();
    let letters = Arc::new(AtomicU64::new(0));
    let l = letters.clone();
    let linker = Linker::builder()
        .dead_letter_hook(move |letter: DeadLetter| {
            assert_eq!(letter.reason, DeadLetterReason::DiscardedAfterUnsubscribe);
            assert!(letter.payload.unwrap().downcast_ref::<u64>().unwrap() > &100);
            l.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let (started, started_rx) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    let (started, go_rx) = (Mutex::new(started), Mutex::new(go_rx));
    let sub = linker
        .on::<u64>()
        .capacity(usize::MAX)
        .on_panic(OnPanic::Unsubscribe)
        .on_failure(|_| {})
        .call(move |n: &u64| {
            if *n == 0 {
                started.lock().unwrap().send(()).unwrap();
                go_rx.lock().unwrap().recv_timeout(BOUND).unwrap();
            }
            if *n == 100 {
                panic!("the hundredth");
            }
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    assert_eq!(emitter.emit(0u64).unwrap().delivered, 1);
    started_rx.recv_timeout(BOUND).unwrap();
    // Everything is queued behind the first before any runs: the panic at 100 discards
    // exactly the 399 after it.
    for n in 1..N {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    go.send(()).unwrap();
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    let stats = sub.stats();
    assert_eq!((stats.invoked, stats.panicked), (101, 1));
    assert_eq!(stats.discarded, N - 101);
    assert_eq!(letters.load(Ordering::SeqCst), N - 101);
    assert!(!sub.is_active());
    assert_eq!(emitter.emit(1u64).unwrap().delivered, 0);
}

/// A payload whose `Drop` panics when its number says so.
struct Fragile {
    n: u64,
    drops: Arc<AtomicU64>,
}

impl Drop for Fragile {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if faulty(0xd00d, self.n, 5) {
            panic!("payload {} refuses to drop", self.n);
        }
    }
}

#[test]
fn payload_drops_panic_at_random_and_each_is_reported_once() {
    const N: u64 = 2_000;
    let expected = (0..N).filter(|n| faulty(0xd00d, *n, 5)).count() as u64;
    let reports = Arc::new(Reports::default());
    let linker = linker_with(&reports);
    let runtime = runtime(2);
    let handled = Arc::new(AtomicU64::new(0));
    // Fan-out to three subscriptions: the drop happens wherever the last share goes.
    for _ in 0..3 {
        let h = handled.clone();
        let _ = linker
            .on::<Fragile>()
            .call(move |_: &Fragile| {
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    let drops = Arc::new(AtomicU64::new(0));
    let actors = Emitter::new(&linker, Actors::new(&runtime));
    let inline = Emitter::inline(&linker);
    for n in 0..N {
        let emitter = if n % 2 == 0 { &actors } else { &inline };
        let event = Fragile {
            n,
            drops: drops.clone(),
        };
        assert_eq!(emitter.emit(event).unwrap().delivered, 3);
    }
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    assert_eq!(handled.load(Ordering::SeqCst), 3 * N);
    assert_eq!(drops.load(Ordering::SeqCst), N, "each payload dropped once");
    assert_eq!(
        Reports::get(&reports.drop_panics) + Reports::get(&reports.drop_panics_no_sub),
        expected
    );
    // No subscriber: the emitter drops it, reports it, and the caller never sees the
    // panic.
    let lonely = Linker::builder()
        .error_hook({
            let r = reports.clone();
            move |_, report| r.file(report)
        })
        .build()
        .unwrap();
    let before = Reports::get(&reports.drop_panics_no_sub);
    let n = (0..).find(|n| faulty(0xd00d, *n, 5)).unwrap();
    let delivery = Emitter::inline(&lonely)
        .emit(Fragile {
            n,
            drops: drops.clone(),
        })
        .unwrap();
    assert_eq!(delivery.delivered, 0);
    assert_eq!(Reports::get(&reports.drop_panics_no_sub), before + 1);
    // The workers are alive.
    assert_eq!(runtime.stats().threads, 2);
    assert!(reports.other.lock().unwrap().is_empty());
    assert!(runtime.shutdown_timeout(BOUND).joined);
}

#[test]
fn callbacks_and_hooks_panic_at_random_and_are_counted() {
    const N: u64 = 2_000;
    const SEED: u64 = 0xca11;
    let reports = Arc::new(Reports::default());
    let r = reports.clone();
    let letters = Arc::new(AtomicU64::new(0));
    let l = letters.clone();
    let linker = Linker::builder()
        .error_hook(move |_, report| r.file(report))
        // The dead-letter hook panics on every other letter.
        .dead_letter_hook(move |_| {
            if l.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                panic!("dead-letter hook");
            }
        })
        .default_on_failure(|failure| {
            if let Failure::Handler(error) = &failure {
                if error.to_string() == "odd" {
                    panic!("default failure callback");
                }
            }
        })
        .build()
        .unwrap();
    let runtime = runtime(2);
    // Fails on odd numbers; its success callback panics at random.
    let success_panics = (0..N).filter(|n| n % 2 == 0 && faulty(SEED, *n, 3)).count() as u64;
    let own = linker
        .on::<u64>()
        .on_success(|n: u64| {
            if faulty(SEED, n, 3) {
                panic!("success callback");
            }
        })
        .on_failure(|_| panic!("failure callback"))
        .call(|n: &u64| {
            if n % 2 == 1 {
                Err(io::Error::other("odd"))
            } else {
                Ok(*n)
            }
        })
        .unwrap();
    // No failure callback of its own: the linker's default one panics.
    let defaulted = linker
        .on::<u64>()
        .call(|n: &u64| {
            if n % 2 == 1 {
                Err(io::Error::other("odd"))
            } else {
                Ok(())
            }
        })
        .unwrap();
    // Dropped events make dead letters, whose hook panics half the time.
    let dropping = linker
        .on::<u64>()
        .capacity(1)
        .policy(Policy::DropNewest)
        .call(|_: &u64| {})
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let mut refused = 0;
    for n in 0..N {
        let delivery = emitter.emit(n).unwrap();
        assert_eq!(delivery.delivered + delivery.refused.len(), 3);
        refused += delivery.refused.len() as u64;
    }
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    let stats = own.stats();
    assert_eq!(
        (stats.invoked, stats.succeeded, stats.failed),
        (N, N / 2, N / 2)
    );
    assert_eq!(stats.callback_panics, success_panics + N / 2);
    assert_eq!(defaulted.stats().callback_panics, N / 2);
    let dropped = dropping.stats();
    assert_eq!(dropped.dropped, refused);
    assert_eq!(dropped.invoked + dropped.dropped, N);
    assert_eq!(letters.load(Ordering::SeqCst), refused);
    assert_eq!(linker.dead_letter_counts().dropped, refused);
    assert_eq!(
        Reports::get(&reports.callback_panics),
        success_panics + N / 2 + N / 2
    );
    assert_eq!(Reports::get(&reports.hook_panics), refused.div_ceil(2));
    assert!(reports.other.lock().unwrap().is_empty());
    assert_eq!(runtime.stats().threads, 2);
    assert!(runtime.shutdown_timeout(BOUND).joined);
}

#[test]
fn a_panicking_error_hook_is_contained() {
    let runtime = runtime(1);
    let linker = Linker::builder()
        .error_hook(|_, _| panic!("the error hook itself"))
        .build()
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let sub = linker
        .on::<u64>()
        .call(move |n: &u64| {
            c.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 0 {
                panic!("handler");
            }
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..100u64 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    assert_eq!(count.load(Ordering::SeqCst), 100);
    assert_eq!(sub.stats().panicked, 50);
    assert_eq!(runtime.stats().threads, 1);
}

#[test]
fn a_handler_that_emits_into_its_own_full_mailbox_is_refused_not_hung() {
    // Pooled, dedicated and inline: a handler's emit never waits, so an emit into its own
    // full mailbox comes back as `Full` with the event.
    let runtime = runtime(2);
    let home = Linker::builder().runtime(&runtime).build().unwrap();
    for placement in ["pool", "dedicated", "inline"] {
        let linker = if placement == "dedicated" {
            home.clone()
        } else {
            Linker::new()
        };
        let emitter = if placement == "inline" {
            Emitter::inline(&linker)
        } else {
            Emitter::new(&linker, Actors::new(&runtime))
        };
        let accepted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (e, a, r) = (emitter.clone(), accepted.clone(), refused.clone());
        let builder = linker.on::<u32>().capacity(4).policy(Policy::Block);
        let builder = if placement == "dedicated" {
            builder.placement(Placement::Dedicated(Spin::Backoff))
        } else {
            builder
        };
        let sub = builder
            .call(move |n: &u32| {
                // The first invocation floods its own mailbox.
                if *n == 0 {
                    for k in 1..=10u32 {
                        match e.emit(k) {
                            Ok(delivery) => {
                                assert_eq!(delivery.delivered, 1);
                                a.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(EmitError::Full(back)) => r.lock().unwrap().push(back),
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                }
            })
            .unwrap();
        let started = Instant::now();
        assert_eq!(emitter.emit(0u32).unwrap().delivered, 1);
        assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
        assert!(started.elapsed() < BOUND);
        // Capacity 4 counts the running event: 3 fit, the other 7 come back in order.
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "{placement}");
        assert_eq!(*refused.lock().unwrap(), (4..=10).collect::<Vec<u32>>());
        let stats = sub.stats();
        assert_eq!((stats.invoked, stats.refused), (4, 7), "{placement}");
        assert!(sub.unsubscribe());
    }
    assert!(runtime.shutdown_timeout(BOUND).joined);
}

#[cfg(target_os = "linux")]
#[test]
fn a_handler_that_drops_the_last_runtime_and_emitter_handles() {
    // The only handles of the runtime live in a slot that a handler empties: the runtime
    // shuts down from its own worker (never joining itself), drains what is queued and
    // its threads exit.
    for dedicated in [false, true] {
        let name = if dedicated { "dropdd" } else { "droppl" };
        let runtime = Runtime::builder().workers(2).name(name).build().unwrap();
        // Not bound to the linker (that would be a handle too): the dedicated thread's
        // runtime is named on the subscription only.
        let linker = Linker::new();
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        let slot: Arc<Mutex<Option<(Runtime, Emitter)>>> =
            Arc::new(Mutex::new(Some((runtime, emitter.clone()))));
        let (tx, rx) = mpsc::channel::<u32>();
        let tx = Mutex::new(tx);
        let s = slot.clone();
        let builder = linker.on::<u32>().capacity(usize::MAX);
        let builder = if dedicated {
            builder
                .placement(Placement::Dedicated(Spin::Backoff))
                .runtime(&slot.lock().unwrap().as_ref().unwrap().0)
        } else {
            builder
        };
        let _sub = builder
            .call(move |n: &u32| {
                if *n == 50 {
                    let handles = s.lock().unwrap().take().unwrap();
                    // A chain emitted before the drop is still accepted (the drain).
                    assert_eq!(handles.1.emit(1000u32).unwrap().delivered, 1);
                    drop(handles);
                }
                tx.lock().unwrap().send(*n).unwrap();
            })
            .unwrap();
        for n in 0..100u32 {
            assert_eq!(emitter.emit(n).unwrap().delivered, 1);
        }
        // The test thread lets go of its own handle: the slot holds the last ones.
        drop(emitter);
        let mut seen: Vec<u32> = (0..101)
            .map(|_| rx.recv_timeout(BOUND).expect("a queued event was lost"))
            .collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..100).chain([1000]).collect::<Vec<u32>>(),
            "dedicated: {dedicated}"
        );
        assert!(slot.lock().unwrap().is_none());
        wait_threads_gone(name);
    }
}

#[test]
fn handlers_that_unsubscribe_themselves_and_others() {
    const N: u64 = 400;
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let subs: Arc<Mutex<Vec<ventus::Subscription>>> = Arc::default();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let ran: Vec<Arc<Mutex<Vec<u64>>>> = (0..3).map(|_| Arc::default()).collect();
    // 0 unsubscribes itself at 100 (its `unsubscribe_and_wait` is refused first, without
    // unsubscribing); 1 unsubscribes 2 at 200; 2 just counts.
    for index in 0..3 {
        let (all, outcomes, ran) = (subs.clone(), outcomes.clone(), ran[index].clone());
        let sub = linker
            .on::<u64>()
            .capacity(usize::MAX)
            .call(move |n: &u64| {
                ran.lock().unwrap().push(*n);
                let subs = all.lock().unwrap().clone();
                match (index, *n) {
                    (0, 100) => {
                        let me = &subs[0];
                        outcomes
                            .lock()
                            .unwrap()
                            .push(("self-wait", me.unsubscribe_and_wait().is_err()));
                        outcomes
                            .lock()
                            .unwrap()
                            .push(("self-active", me.is_active()));
                        outcomes.lock().unwrap().push(("self", me.unsubscribe()));
                    }
                    (1, 200) => outcomes
                        .lock()
                        .unwrap()
                        .push(("other", subs[2].unsubscribe())),
                    _ => {}
                }
            })
            .unwrap();
        subs.lock().unwrap().push(sub);
    }
    let mut delivered = 0;
    for n in 0..N {
        delivered += emitter.emit(n).unwrap().delivered as u64;
    }
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    let subs = subs.lock().unwrap().clone();
    let mut outcomes = outcomes.lock().unwrap().clone();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            ("other", true),
            ("self", true),
            ("self-active", true),
            ("self-wait", true)
        ]
    );
    // The self-unsubscriber ran exactly 0..=100, in order; the rest was discarded.
    assert_eq!(*ran[0].lock().unwrap(), (0..=100).collect::<Vec<u64>>());
    // The other victim ran a prefix, and everything delivered to it after is discarded.
    let victim = ran[2].lock().unwrap().clone();
    assert_eq!(victim, (0..victim.len() as u64).collect::<Vec<u64>>());
    assert_eq!(ran[1].lock().unwrap().len() as u64, N);
    let (s0, s2) = (subs[0].stats(), subs[2].stats());
    assert_eq!(s2.invoked, victim.len() as u64);
    // What the emits delivered: handled or discarded, never lost.
    assert_eq!(
        delivered,
        s0.invoked + s0.discarded + N + s2.invoked + s2.discarded
    );
    assert_eq!(
        linker.dead_letter_counts().discarded_after_unsubscribe,
        s0.discarded + s2.discarded
    );
    // Inline: a handler that unsubscribes a later subscription of the same emission.
    let linker = Linker::new();
    let later: Arc<Mutex<Option<ventus::Subscription>>> = Arc::default();
    let l = later.clone();
    let _first = linker
        .on::<u8>()
        .call(move |_: &u8| {
            if let Some(sub) = l.lock().unwrap().take() {
                assert!(sub.unsubscribe());
            }
        })
        .unwrap();
    let second = linker.on::<u8>().call(|_: &u8| {}).unwrap();
    *later.lock().unwrap() = Some(second.clone());
    let delivery = Emitter::inline(&linker).emit(1u8).unwrap();
    assert!(delivery.delivered >= 1 && delivery.refused.is_empty());
    assert_eq!(second.stats().invoked, 0);
    assert_eq!(
        u64::from(delivery.delivered == 2),
        second.stats().discarded,
        "counted as delivered only if discarded"
    );
    assert!(runtime.shutdown_timeout(BOUND).joined);
}

#[test]
fn timers_with_extreme_durations() {
    // A running loop with timers of 0, 1 ns, Duration::MAX and 10^9 s keeps serving its
    // producers, and stops within a bound.
    let mut nexus = Nexus::builder()
        .min_interval(Duration::from_micros(200))
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let got = Arc::new(AtomicU64::new(0));
    let (t, g) = (ticks.clone(), got.clone());
    nexus
        .on(1, move |_, _| {
            t.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    nexus
        .on(2, move |_, _| {
            g.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    nexus
        .on(3, |_, _| panic!("a Duration::MAX timer fired"))
        .unwrap();
    let _zero = nexus.add_timer(Timer::ongoing(Duration::ZERO, 1).unwrap());
    let _nano = nexus.add_timer(
        Timer::ongoing(Duration::from_nanos(1), 1)
            .unwrap()
            .missed_ticks(MissedTicks::Skip),
    );
    let _max = nexus.add_timer(Timer::ongoing(Duration::MAX, 3).unwrap());
    let _max_once = nexus.add_timer(Timer::one_shot(Duration::MAX, 3).unwrap());
    let _far = nexus.add_timer(Timer::ongoing(Duration::from_secs(1_000_000_000), 3).unwrap());
    let _count = nexus.add_timer(
        Timer::new(
            Duration::from_secs(u64::MAX),
            TimerKind::CountDown,
            u64::MAX,
            3,
        )
        .unwrap(),
    );
    let producer = nexus.producer();
    let handle = nexus.start().unwrap();
    for id in 0..1_000 {
        while producer.push(NexusEvent::new(id, 2, ())).is_err() {
            thread::yield_now();
        }
    }
    let deadline = Instant::now() + BOUND;
    while got.load(Ordering::Relaxed) < 1_000 || ticks.load(Ordering::Relaxed) < 10 {
        assert!(Instant::now() < deadline, "the loop stalled");
        thread::sleep(Duration::from_millis(1));
    }
    let stopped = Instant::now();
    assert!(handle.stop());
    let nexus = handle.join().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(5));
    assert_eq!(nexus.stats().unhandled, 0);

    // Far ahead with a manual clock: a clock pushed to the end of time fires a 10^9 s
    // Skip timer once (its next tick cannot be represented: never), and a Burst one at
    // most a batch per pass, without starving the producers.
    let clock = ManualClock::new();
    let mut nexus = Nexus::builder()
        .clock(clock.clone())
        .batch(16)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new((0u64, 0u64, 0u64)));
    for ty in [1, 2, 3] {
        let s = seen.clone();
        nexus
            .on(ty, move |_, _| {
                let mut seen = s.lock().unwrap();
                match ty {
                    1 => seen.0 += 1,
                    2 => seen.1 += 1,
                    _ => seen.2 += 1,
                }
            })
            .unwrap();
    }
    let far = Duration::from_secs(1_000_000_000);
    let _skip = nexus.add_timer(
        Timer::ongoing(far, 1)
            .unwrap()
            .missed_ticks(MissedTicks::Skip),
    );
    let _burst = nexus.add_timer(Timer::ongoing(far, 2).unwrap());
    nexus.turn(ZERO).unwrap();
    clock.advance(Duration::MAX);
    let producer = nexus.producer();
    for pass in 0..5u64 {
        producer.push(NexusEvent::new(pass, 3, ())).unwrap();
        nexus.turn(ZERO).unwrap();
        let seen = *seen.lock().unwrap();
        assert_eq!(seen.0, 1, "Skip fires once");
        assert!(seen.1 <= 16 * (pass + 1), "Burst is bounded per pass");
        assert_eq!(seen.2, pass + 1, "producers are served every pass");
    }
}

#[test]
fn nexus_sources_that_fail() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e = errors.clone();
    let mut nexus = Nexus::builder()
        .on_error(move |error| e.lock().unwrap().push(error.to_string()))
        .build()
        .unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    nexus
        .set_default(move |_, _| {
            g.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    // A socket whose reads fail: reported as a source error, the loop goes on.
    let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let failing = nexus.add_socket(
        socket,
        mio::Interest::READABLE,
        |_: &mut mio::net::UdpSocket, _: &EventFactory| -> io::Result<Option<NexusEvent>> {
            Err(io::Error::other("the wire is cut"))
        },
    );
    // A pull source that ends after 3 events, and an iterator that does too.
    struct Three(u64);
    impl ventus::Converter for Three {
        fn obtain_event(&mut self, factory: &EventFactory) -> Option<NexusEvent> {
            (self.0 < 3).then(|| {
                self.0 += 1;
                factory.create_event(self.0, 7).unwrap()
            })
        }
    }
    nexus.add_converter(Three(0));
    nexus.add_iter((0..3).map(|n| NexusEvent::new(100 + n, 8, ())));
    let deadline = Instant::now() + BOUND;
    while got.load(Ordering::SeqCst) < 6 {
        assert!(Instant::now() < deadline, "sources stalled");
        nexus.turn(Some(Duration::from_millis(10))).unwrap();
    }
    let errors_now = errors.lock().unwrap().clone();
    assert!(
        errors_now
            .iter()
            .any(|e| e.contains(&format!("{failing:?}")) && e.contains("the wire is cut")),
        "{errors_now:?}"
    );
    // The loop still works.
    nexus.producer().push(NexusEvent::new(1, 1, ())).unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(got.load(Ordering::SeqCst), 7);
}

#[test]
fn nexus_handlers_and_filters_that_panic_at_random() {
    const N: u64 = 1_000;
    let panicked = Arc::new(AtomicU64::new(0));
    let p = panicked.clone();
    let mut nexus = Nexus::builder()
        .on_error(move |error| {
            if matches!(error, NexusError::HandlerPanicked { .. }) {
                p.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    nexus.add_filter(|event, _| {
        if faulty(0xf1, event.id(), 11) {
            panic!("filter");
        }
        false
    });
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    nexus
        .on(1, move |event, _| {
            if faulty(0xf2, event.id(), 13) {
                panic!("handler");
            }
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let producer = nexus.producer();
    for id in 0..N {
        producer.push(NexusEvent::new(id, 1, ())).unwrap();
    }
    while nexus.turn(ZERO).unwrap() > 0 {}
    let filter_panics = (0..N).filter(|n| faulty(0xf1, *n, 11)).count() as u64;
    let handler_panics = (0..N)
        .filter(|n| !faulty(0xf1, *n, 11) && faulty(0xf2, *n, 13))
        .count() as u64;
    assert_eq!(
        panicked.load(Ordering::SeqCst),
        filter_panics + handler_panics
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        N - filter_panics - handler_panics
    );
    assert_eq!(nexus.stats().dispatched, N);
}

#[test]
fn bus_side_effects_that_panic_at_random() {
    const N: usize = 300;
    const SEED: u64 = 0xb05;
    let expected: BTreeSet<usize> = (0..N).filter(|i| faulty(SEED, *i as u64, 6)).collect();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut unit = MultiEventBus::new();
    let basic = unit.wrap(BasicEventBus::new());
    let r = ran.clone();
    let custom = unit.wrap(CustomEventBus::new(move |i: &usize, commit: bool| {
        assert!(commit);
        r.fetch_add(1, Ordering::SeqCst);
        if faulty(SEED, *i as u64, 6) {
            panic!("custom side effect {i}");
        }
    }));
    for i in 0..N {
        let ran = ran.clone();
        basic.publish(Committable::new(move |_commit| {
            ran.fetch_add(1, Ordering::SeqCst);
            if faulty(SEED, i as u64, 6) {
                panic!("side effect {i}");
            }
        }));
        custom.publish(i);
    }
    let report = unit.apply(true);
    // Every side effect ran once, in order, even after the panics; each panic recorded at
    // its position.
    assert_eq!(ran.load(Ordering::SeqCst), 2 * N);
    assert_eq!(report.ran(), 2 * N);
    assert_eq!(report.buses.len(), 2);
    for bus in &report.buses {
        let failures = &bus.report.failures;
        let failed: BTreeSet<usize> = failures.iter().map(|f| f.index).collect();
        assert_eq!(failed, expected, "{}", bus.bus);
        assert!(
            failures
                .iter()
                .all(|f| matches!(f.error, SideEffectError::Panicked(_)))
        );
    }
    assert_eq!(unit.apply(true).ran(), 0, "nothing is retried");

    // An emit-on-commit bus whose strategy panics at random: each panic is an outcome,
    // the rest are emitted.
    #[derive(Debug)]
    struct Flaky;
    impl Strategy for Flaky {
        fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
            let n = *emission.payload().unwrap().downcast_ref::<u64>().unwrap();
            if faulty(SEED, n, 4) {
                panic!("strategy on {n}");
            }
            emission.deliver_inline()
        }
    }
    let linker = Linker::new();
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let _sub = linker
        .on::<u64>()
        .call(move |n: &u64| {
            s.fetch_add(*n, Ordering::SeqCst);
        })
        .unwrap();
    let mut outbox = EmitOnCommitBus::new(&Emitter::new(&linker, Flaky));
    outbox.publish_all(0..N as u64);
    let emitted = outbox.apply(true);
    let panics = (0..N as u64).filter(|n| faulty(SEED, *n, 4)).count();
    let outcome_panics = emitted
        .outcomes
        .iter()
        .filter(|o| matches!(o, EmitOutcome::Panicked(_)))
        .count();
    assert_eq!(outcome_panics, panics);
    assert_eq!(emitted.delivered(), N - panics);
    let expected_sum: u64 = (0..N as u64).filter(|n| !faulty(SEED, *n, 4)).sum();
    assert_eq!(sum.load(Ordering::SeqCst), expected_sum);
}

#[test]
fn nexus_sources_that_panic() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e = errors.clone();
    let mut nexus = Nexus::builder()
        .on_error(move |error| e.lock().unwrap().push(error.to_string()))
        .build()
        .unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    nexus
        .set_default(move |_, _| {
            g.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    // An iterator that panics on its third item, a socket converter that panics, and a
    // pull source that panics after two events.
    let mut n = 0;
    nexus.add_iter(std::iter::from_fn(move || {
        n += 1;
        assert!(n < 3, "iterator source");
        Some(NexusEvent::new(n, 1, ()))
    }));
    let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    nexus.add_socket(
        socket,
        mio::Interest::READABLE,
        |_: &mut mio::net::UdpSocket, _: &EventFactory| -> io::Result<Option<NexusEvent>> {
            panic!("socket converter")
        },
    );
    struct Two(u64);
    impl ventus::Converter for Two {
        fn obtain_event(&mut self, factory: &EventFactory) -> Option<NexusEvent> {
            self.0 += 1;
            assert!(self.0 <= 2, "pull source");
            Some(factory.create_event(self.0, 7).unwrap())
        }
    }
    nexus.add_converter(Two(0));
    let deadline = Instant::now() + BOUND;
    while got.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline, "sources stalled");
        nexus.turn(Some(Duration::from_millis(10))).unwrap();
    }
    // Each panic is reported; the loop goes on.
    let wait = Instant::now() + BOUND;
    while errors.lock().unwrap().len() < 3 {
        assert!(Instant::now() < wait, "{:?}", errors.lock().unwrap());
        nexus.turn(Some(Duration::from_millis(10))).unwrap();
    }
    let errors_now = errors.lock().unwrap().clone();
    for what in ["iterator source", "socket converter", "pull source"] {
        assert!(
            errors_now.iter().any(|e| e.contains(what)),
            "{what}: {errors_now:?}"
        );
    }
    nexus.producer().push(NexusEvent::new(1, 1, ())).unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(got.load(Ordering::SeqCst), 5);
}
