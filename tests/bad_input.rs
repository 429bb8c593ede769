//! Bad input: one test per row of the README's table "What ventus does with bad input".
//! Each row gets a typed error or a documented outcome, and the event or value is never
//! silently lost: it comes back in the error, or it is counted and reported (stats, dead
//! letters, the error hook).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::{Duration, Instant};

use ventus::bus::{BasicEventBus, EmitOnCommitBus, EventBus};
use ventus::{
    Actors, BuildError, Clock, DeadLetter, DeadLetterReason, EmitError, Emitter, ErrorReport,
    Event, EventKey, EventType, EventTypeError, Failure, Linker, MAX_DEPTH, ManualClock, Nexus,
    NexusError, NexusEvent, NexusState, Placement, Policy, Producer, PushError, Refusal,
    RegisterError, Runtime, Spin, SubscribeError, Timer, TimerError, TimerKind,
};

const ZERO: Option<Duration> = Some(Duration::ZERO);

type Letters = Arc<Mutex<Vec<(DeadLetterReason, Option<u32>)>>>;

/// A linker whose dead letters (reason, `u32` payload if any) and error reports are recorded.
fn recording() -> (Linker, Letters, Arc<Mutex<Vec<String>>>) {
    let letters: Letters = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let (l, e) = (letters.clone(), errors.clone());
    let linker = Linker::builder()
        .dead_letter_hook(move |letter: DeadLetter| {
            let payload = letter
                .payload
                .as_ref()
                .and_then(|p| p.downcast_ref::<u32>())
                .copied();
            l.lock().unwrap().push((letter.reason, payload));
        })
        .error_hook(move |_, report: &ErrorReport| e.lock().unwrap().push(report.to_string()))
        .build()
        .unwrap();
    (linker, letters, errors)
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// A subscription on `u32` whose handler blocks on the event `0` until released, so that
/// its mailbox fills deterministically.
fn gated(
    linker: &Linker,
    capacity: usize,
    policy: Policy,
) -> (ventus::Subscription, mpsc::Receiver<()>, Arc<Barrier>) {
    let (started, started_rx) = mpsc::channel();
    let started = Mutex::new(started);
    let release = Arc::new(Barrier::new(2));
    let r = release.clone();
    let sub = linker
        .on::<u32>()
        .capacity(capacity)
        .policy(policy)
        .call(move |n: &u32| {
            if *n == 0 {
                started.lock().unwrap().send(()).unwrap();
                r.wait();
            }
        })
        .unwrap();
    (sub, started_rx, release)
}

#[test]
fn empty_event_name() {
    let linker = Linker::new();
    // Subscribing: refused, nothing registered.
    assert_eq!(
        linker.on_named("").call(|_: &u32| {}).unwrap_err(),
        SubscribeError::EmptyName
    );
    assert_eq!(
        linker
            .subscribe([EventKey::named("ok"), EventKey::named("")])
            .call(|_: &Event<'_>| {})
            .unwrap_err(),
        SubscribeError::EmptyName
    );
    assert!(linker.is_empty());
    // Emitting: refused, the payload given back, by every named emit.
    let emitter = Emitter::inline(&linker);
    assert!(matches!(
        emitter.emit_named("", 7u32),
        Err(EmitError::EmptyName(7))
    ));
    assert!(matches!(
        emitter.try_emit_named("", 8u32),
        Err(EmitError::EmptyName(8))
    ));
    assert!(matches!(
        emitter.emit_named_and_wait("", 9u32),
        Err(EmitError::EmptyName(9))
    ));
    // The nexus: an empty type name is refused where it is checked.
    assert_eq!(
        EventType::from("").validate(),
        Err(EventTypeError::EmptyName)
    );
    let mut nexus = Nexus::new().unwrap();
    assert_eq!(
        nexus.on("", |_, _| {}).unwrap_err(),
        RegisterError::InvalidType
    );
    assert!(nexus.create_event(1u32, "").is_err());
    assert_eq!(
        Timer::one_shot(Duration::from_secs(1), "").unwrap_err(),
        TimerError::InvalidType
    );
}

#[test]
fn subscribe_with_no_keys() {
    let linker = Linker::new();
    assert_eq!(
        linker
            .subscribe(Vec::<EventKey>::new())
            .call(|_: &Event<'_>| {})
            .unwrap_err(),
        SubscribeError::NoKeys
    );
    assert!(linker.is_empty());
    assert_eq!(linker.subscription_count(), 0);
}

#[test]
fn max_subscribers_of_zero() {
    assert_eq!(
        Linker::builder().max_subscribers(0).build().unwrap_err(),
        BuildError::ZeroMaxSubscribers
    );
}

#[test]
fn cap_exceeded() {
    let linker = Linker::builder().max_subscribers(1).build().unwrap();
    let first = linker.on_named("a").call(|_: &u32| {}).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let flag = Flag(dropped.clone());
    // All or nothing: "b" has room, "a" does not, so neither gets the subscription.
    let error = linker
        .subscribe([EventKey::named("b"), EventKey::named("a")])
        .call(move |_: &Event<'_>| {
            let _ = &flag;
        })
        .unwrap_err();
    assert_eq!(
        error,
        SubscribeError::TooManySubscribers {
            key: EventKey::named("a").to_string(),
            max: 1
        }
    );
    assert_eq!(linker.subscription_count(), 1);
    assert!(!linker.contains_event(&EventKey::named("b")));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the refused handler is dropped, not leaked"
    );
    // The key is usable again once its subscription is gone.
    assert!(first.unsubscribe());
    assert!(linker.on_named("a").call(|_: &u32| {}).is_ok());
}

#[test]
fn unsubscribe_twice() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let sub = linker.on::<u32>().call(|_: &u32| {}).unwrap();
    assert!(sub.unsubscribe());
    assert!(!sub.unsubscribe());
    assert_eq!(sub.unsubscribe_and_wait(), Ok(false));
    assert!(!linker.remove_subscription(&sub));
    drop(sub.guard()); // a guard over a gone subscription: nothing happens
    assert!(!sub.is_active());
    // A dedicated one: its thread exits once; the second call changes nothing.
    let dedicated = linker
        .on::<u64>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .runtime(&runtime)
        .call(|_: &u64| {})
        .unwrap();
    assert!(dedicated.unsubscribe());
    assert!(!dedicated.unsubscribe());
    let report = runtime.shutdown_timeout(Duration::from_secs(10));
    assert!(report.drained && report.joined);
    assert_eq!(runtime.stats().threads, 0);
}

#[test]
fn emit_after_shutdown() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let _sub = linker
        .on::<u32>()
        .call(move |_: &u32| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    assert!(runtime.shutdown().drained);
    // Every kind of emit gives the event back.
    assert!(matches!(emitter.emit(1u32), Err(EmitError::Shutdown(1))));
    assert!(matches!(
        emitter.try_emit(2u32),
        Err(EmitError::Shutdown(2))
    ));
    assert!(matches!(
        emitter.emit_and_wait(3u32),
        Err(EmitError::Shutdown(3))
    ));
    assert!(matches!(
        emitter.emit_named("x", 4u32),
        Err(EmitError::Shutdown(4))
    ));
    assert_eq!(count.load(Ordering::SeqCst), 0);
    // A dedicated subscription cannot be made on a shut-down runtime.
    assert!(matches!(
        linker
            .on::<u8>()
            .placement(Placement::Dedicated(Spin::Backoff))
            .runtime(&runtime)
            .call(|_: &u8| {}),
        Err(SubscribeError::Spawn(_))
    ));
    assert_eq!(linker.subscription_count(), 1);
    // Shutting down again is harmless.
    assert!(!runtime.shutdown().first);
}

#[test]
fn try_emit_to_a_full_mailbox() {
    for policy in [Policy::Block, Policy::Fail, Policy::DropNewest] {
        let runtime = runtime(1);
        let (linker, letters, _) = recording();
        let (sub, started, release) = gated(&linker, 1, policy);
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        assert_eq!(emitter.emit(0u32).unwrap().delivered, 1);
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        // Capacity 1 is taken by the running event: try_emit never waits, and the event
        // comes back (the only subscription refused it).
        assert!(
            matches!(emitter.try_emit(5u32), Err(EmitError::Full(5))),
            "{policy:?}"
        );
        // With a second subscription that takes it: a partial delivery, the refusal listed.
        let other = linker.on::<u32>().call(|_: &u32| {}).unwrap();
        let delivery = emitter.try_emit(6u32).unwrap();
        assert_eq!(delivery.delivered, 1);
        let refusal = if policy == Policy::DropNewest {
            Refusal::Dropped
        } else {
            Refusal::Full
        };
        assert_eq!(delivery.refused, vec![(sub.id(), refusal)]);
        release.wait();
        assert_eq!(runtime.wait_idle_timeout(Duration::from_secs(10)), Ok(true));
        let stats = sub.stats();
        if policy == Policy::DropNewest {
            // Counted, and dead letters (without payload: the first came back in the Err,
            // the second was shared with the other subscription).
            assert_eq!((stats.dropped, stats.refused), (2, 0));
            assert_eq!(
                *letters.lock().unwrap(),
                vec![(DeadLetterReason::Dropped, None); 2]
            );
        } else {
            assert_eq!((stats.dropped, stats.refused), (0, 2));
            assert!(letters.lock().unwrap().is_empty());
        }
        assert_eq!(stats.invoked, 1);
        assert_eq!(other.stats().invoked, 1);
    }
}

#[test]
fn payload_type_mismatch() {
    let (linker, _, errors) = recording();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let f = failures.clone();
    let with_callback = linker
        .on_named("price")
        .on_failure(move |failure: Failure| f.lock().unwrap().push(failure.to_string()))
        .call(|_: &u64| {})
        .unwrap();
    let without_callback = linker.on_named("price").call(|_: &u64| {}).unwrap();
    let delivery = Emitter::inline(&linker)
        .emit_named("price", "twelve")
        .unwrap();
    // Delivered (the subscriptions received it), and each reports the mismatch.
    assert_eq!(delivery.delivered, 2);
    assert_eq!(
        *failures.lock().unwrap(),
        [format!(
            "payload mismatch: expected u64, found {}",
            std::any::type_name::<&str>()
        )]
    );
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("payload mismatch"), "{errors:?}");
    for sub in [&with_callback, &without_callback] {
        let stats = sub.stats();
        assert_eq!((stats.invoked, stats.failed, stats.succeeded), (1, 1, 0));
    }
}

#[test]
fn capacity_zero_and_usize_max() {
    let linker = Linker::new();
    // Zero: a typed error wherever a capacity is set.
    assert_eq!(
        linker
            .on::<u32>()
            .capacity(0)
            .call(|_: &u32| {})
            .unwrap_err(),
        SubscribeError::ZeroCapacity
    );
    assert!(linker.is_empty());
    assert_eq!(
        Linker::builder().default_capacity(0).build().unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert_eq!(
        Runtime::builder().default_capacity(0).build().unwrap_err(),
        BuildError::ZeroCapacity
    );
    // usize::MAX: an unbounded mailbox in practice (nothing is preallocated).
    let runtime = runtime(1);
    let (sub, started, release) = gated(&linker, usize::MAX, Policy::Fail);
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..10_000u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    release.wait();
    assert_eq!(runtime.wait_idle_timeout(Duration::from_secs(10)), Ok(true));
    assert_eq!(sub.stats().invoked, 10_000);
    // The nexus inbox: 0 is raised to 1 (documented); a huge capacity builds.
    let mut small = Nexus::builder().capacity(0).build().unwrap();
    small.set_default(|_, _| {}).unwrap();
    let producer = small.producer();
    producer.push(NexusEvent::new(1, 1, ())).unwrap();
    assert!(matches!(
        producer.push(NexusEvent::new(2, 1, ())),
        Err(PushError::Full(event)) if event.id() == 2
    ));
    let mut huge = Nexus::builder().capacity(usize::MAX).build().unwrap();
    huge.set_default(|_, _| {}).unwrap();
    let producer = huge.producer();
    for id in 0..1000 {
        producer.push(NexusEvent::new(id, 1, ())).unwrap();
    }
    while huge.turn(ZERO).unwrap() > 0 {}
    assert_eq!(huge.stats().dispatched, 1000);
}

#[test]
fn workers_zero() {
    assert_eq!(
        Runtime::builder().workers(0).build().unwrap_err(),
        BuildError::ZeroWorkers
    );
}

#[test]
fn batch_zero() {
    assert_eq!(
        Runtime::builder().batch(0).build().unwrap_err(),
        BuildError::ZeroBatch
    );
    // The nexus raises a batch of 0 to 1 (documented): it still drains everything.
    let mut nexus = Nexus::builder().batch(0).build().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    nexus
        .set_default(move |_, _| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let producer = nexus.producer();
    for id in 0..5 {
        producer.push(NexusEvent::new(id, 1, ())).unwrap();
    }
    for _ in 0..5 {
        nexus.turn(ZERO).unwrap();
    }
    assert_eq!(seen.load(Ordering::SeqCst), 5);
}

#[test]
fn shutdown_timeout_of_duration_max() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let sum = Arc::new(AtomicUsize::new(0));
    let s = sum.clone();
    let _sub = linker
        .on::<u32>()
        .call(move |n: &u32| {
            s.fetch_add(*n as usize, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 1..=1000u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    // No overflow: it waits for the drain, as `shutdown` does.
    let started = Instant::now();
    assert_eq!(runtime.wait_idle_timeout(Duration::MAX), Ok(true));
    let report = runtime.shutdown_timeout(Duration::MAX);
    assert!(report.drained && report.joined && report.first);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(sum.load(Ordering::SeqCst), 500_500);
    // The other durations at their extremes: clamped, never a panic.
    let extreme = Runtime::builder()
        .workers(1)
        .linger(Duration::MAX)
        .build()
        .unwrap();
    assert!(extreme.shutdown_timeout(Duration::ZERO).joined);
}

#[test]
fn nesting_past_the_depth_limit() {
    // A chain of distinct subscriptions, each emitting to the next level (an emit to a
    // subscription already running on this stack is queued, not nested).
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let refused = Arc::new(Mutex::new(Vec::new()));
    let ran = Arc::new(AtomicUsize::new(0));
    let subs: Vec<_> = (0..MAX_DEPTH + 1)
        .map(|level| {
            let (e, refused, ran) = (emitter.clone(), refused.clone(), ran.clone());
            linker
                .on_named(&format!("level-{level}"))
                .call(move |n: &u32| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    if let Err(error) = e.emit_named(&format!("level-{}", level + 1), *n + 1) {
                        match error {
                            EmitError::TooDeep(back) => refused.lock().unwrap().push(back),
                            other => panic!("{other:?}"),
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    assert_eq!(emitter.emit_named("level-0", 0u32).unwrap().delivered, 1);
    // MAX_DEPTH levels ran; the next emit came back with its event.
    assert_eq!(ran.load(Ordering::SeqCst), MAX_DEPTH as usize);
    assert_eq!(*refused.lock().unwrap(), [MAX_DEPTH]);
    drop(subs);
}

#[test]
fn timer_of_zero_interval_and_of_duration_max() {
    let clock = ManualClock::new();
    let mut nexus = Nexus::builder()
        .clock(clock.clone())
        .min_interval(Duration::from_millis(1))
        .build()
        .unwrap();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let t = ticks.clone();
    nexus
        .set_default(move |event, _| {
            t.lock().unwrap().push((
                event.event_type().clone(),
                *event.payload_ref::<u64>().unwrap(),
            ));
        })
        .unwrap();
    // Zero is raised to the nexus's minimum interval (1 ms here).
    let zero = nexus.add_timer(Timer::ongoing(Duration::ZERO, 1).unwrap());
    // Duration::MAX never fires and never panics (its deadline overflows: "never").
    let max = nexus.add_timer(Timer::ongoing(Duration::MAX, 2).unwrap());
    let max_once = nexus.add_timer(Timer::one_shot(Duration::MAX, 3).unwrap());
    nexus.turn(ZERO).unwrap();
    for _ in 0..3 {
        clock.advance(Duration::from_millis(1));
        nexus.turn(ZERO).unwrap();
    }
    assert_eq!(
        *ticks.lock().unwrap(),
        [1u64, 2, 3].map(|n| (EventType::Int(1), n))
    );
    assert!(zero.is_running() && max.is_running() && max_once.is_running());
    // The clock itself saturates at the end of `Instant`'s range: it never goes back.
    let before = clock.now();
    clock.advance(Duration::MAX);
    let end = clock.now();
    assert!(end > before);
    clock.advance(Duration::MAX);
    assert_eq!(clock.now(), end);
    assert!(zero.stop());
    nexus.turn(ZERO).unwrap();
    assert!(
        ticks
            .lock()
            .unwrap()
            .iter()
            .all(|(ty, _)| *ty == EventType::Int(1)),
        "the Duration::MAX timers never fired"
    );
}

#[test]
fn count_down_of_zero() {
    assert_eq!(
        Timer::new(Duration::from_secs(1), TimerKind::CountDown, 0, 1).unwrap_err(),
        TimerError::InvalidCountdown
    );
    assert_eq!(
        Timer::new(Duration::from_secs(1), TimerKind::CountUp, 0, 1).unwrap_err(),
        TimerError::InvalidCountup
    );
    // A count-down of 1 fires once, with 0.
    let clock = ManualClock::new();
    let mut nexus = Nexus::builder().clock(clock.clone()).build().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    nexus
        .on(9, move |event, _| {
            s.lock().unwrap().push(*event.payload_ref::<u64>().unwrap())
        })
        .unwrap();
    let timer =
        nexus.add_timer(Timer::new(Duration::from_millis(1), TimerKind::CountDown, 1, 9).unwrap());
    nexus.turn(ZERO).unwrap();
    for _ in 0..3 {
        clock.advance(Duration::from_millis(1));
        nexus.turn(ZERO).unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), [0]);
    assert!(timer.is_finished());
}

#[test]
fn duplicate_nexus_handler() {
    let mut nexus = Nexus::new().unwrap();
    let first = Arc::new(AtomicUsize::new(0));
    let f = first.clone();
    nexus
        .on(1, move |_, _| {
            f.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(
        nexus.on(1, |_, _| panic!("never registered")).unwrap_err(),
        RegisterError::Duplicate(EventType::Int(1))
    );
    nexus.on_typed::<u32>(|_, _| {}).unwrap();
    assert_eq!(
        nexus.on_typed::<u32>(|_, _| {}).unwrap_err(),
        RegisterError::Duplicate(EventType::of::<u32>())
    );
    nexus.set_default(|_, _| {}).unwrap();
    assert_eq!(
        nexus.set_default(|_, _| {}).unwrap_err(),
        RegisterError::DuplicateDefault
    );
    nexus.add_range_handler(10..=20, ventus::Discarder).unwrap();
    assert_eq!(
        nexus
            .add_range_handler(15..=30, ventus::Discarder)
            .unwrap_err(),
        RegisterError::BadRange(15, 30)
    );
    #[allow(clippy::reversed_empty_ranges)]
    let empty = 5..=4;
    assert_eq!(
        nexus
            .add_range_handler(empty, ventus::Discarder)
            .unwrap_err(),
        RegisterError::BadRange(5, 4)
    );
    // The first handler is the one that runs.
    nexus.producer().push(NexusEvent::new(1, 1, ())).unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(first.load(Ordering::SeqCst), 1);
}

#[test]
fn pushing_to_a_stopped_nexus() {
    let mut nexus = Nexus::new().unwrap();
    nexus.set_default(|_, _| {}).unwrap();
    let producer = nexus.producer();
    let stopper = nexus.stopper();
    assert!(stopper.stop());
    nexus.turn(ZERO).unwrap();
    assert_eq!(nexus.state(), NexusState::Stopped);
    assert!(matches!(
        producer.push(NexusEvent::new(7, 1, ())),
        Err(PushError::Stopped(event)) if event.id() == 7
    ));
    assert!(matches!(producer.emit(1, 8u32), Err(PushError::Stopped(8))));
    // A producer that feeds no nexus, or several, gives the event back too.
    assert!(matches!(
        Producer::new().push(NexusEvent::new(9, 1, ())),
        Err(PushError::NoNexus(event)) if event.id() == 9
    ));
    let mut other = Nexus::new().unwrap();
    let mut third = Nexus::new().unwrap();
    let shared = Producer::new();
    other.add_producer(&shared);
    third.add_producer(&shared);
    assert!(matches!(
        shared.push(NexusEvent::new(10, 1, ())),
        Err(PushError::SeveralNexuses(event)) if event.id() == 10
    ));
    // A stopped nexus cannot run again.
    assert!(matches!(nexus.run(), Err(ventus::RunError::Stopped)));
    assert!(matches!(nexus.start(), Err(ventus::StartError::Stopped(_))));
    other.set_default(|_, _| {}).unwrap();
    third.set_default(|_, _| {}).unwrap();
}

#[test]
fn an_unhandled_nexus_event() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let letters = Arc::new(Mutex::new(Vec::new()));
    let (e, l) = (errors.clone(), letters.clone());
    let mut nexus = Nexus::builder()
        .on_error(move |error| {
            if let NexusError::Unhandled(event) = error {
                e.lock().unwrap().push(event.into_payload::<u32>().ok());
            }
        })
        .on_dead_letter(move |letter: DeadLetter| l.lock().unwrap().push(letter.reason))
        .build()
        .unwrap();
    nexus.on(1, |_, _| {}).unwrap();
    let producer = nexus.producer();
    producer.push(NexusEvent::new(1, 2, 42u32)).unwrap();
    // An event whose type is an empty name can be made, but reaches no handler either.
    producer.push(NexusEvent::new(2, "", 43u32)).unwrap();
    nexus.turn(ZERO).unwrap();
    // The event itself goes to the error hook; the dead letter is counted.
    assert_eq!(*errors.lock().unwrap(), [Some(42), Some(43)]);
    assert_eq!(
        *letters.lock().unwrap(),
        [DeadLetterReason::UnhandledInNexus; 2]
    );
    assert_eq!(nexus.dead_letter_counts().unhandled_in_nexus, 2);
    assert_eq!(nexus.stats().unhandled, 2);
}

#[test]
fn a_bus_dropped_with_unapplied_events() {
    // An emit-on-commit bus: each event is a dead letter of the emitter's linker, with
    // its payload.
    let (linker, letters, _) = recording();
    let emitted = Arc::new(AtomicUsize::new(0));
    let e = emitted.clone();
    let _sub = linker
        .on::<u32>()
        .call(move |_: &u32| {
            e.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let mut outbox = EmitOnCommitBus::new(&Emitter::inline(&linker));
    outbox.publish_all([1u32, 2, 3]);
    drop(outbox);
    assert_eq!(emitted.load(Ordering::SeqCst), 0);
    assert_eq!(
        *letters.lock().unwrap(),
        [1, 2, 3].map(|n| (DeadLetterReason::BusDroppedUnapplied, Some(n)))
    );
    assert_eq!(linker.dead_letter_counts().bus_dropped_unapplied, 3);
    // Every other bus: its unapplied hook, once, with the count.
    let counts = Arc::new(Mutex::new(Vec::new()));
    let c = counts.clone();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut bus = BasicEventBus::new().on_unapplied(move |lost| c.lock().unwrap().push(lost.count));
    for _ in 0..4 {
        let ran = ran.clone();
        bus.publish_fn(move |_commit| {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    drop(bus);
    assert_eq!(*counts.lock().unwrap(), [4]);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}
