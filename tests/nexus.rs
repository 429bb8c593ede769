//! The nexus: routing, producers, timers with the manual clock, sources, lifecycle,
//! boundary, forwarder, and the async_nexus demo wiring.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use ventus::{
    Boundary, Context, Converter, Datagram, DeadLetterReason, Discarder, Emitter, EventFactory,
    EventType, Fanout, Forwarder, IdChoice, Inline, Linker, ManualClock, MissedTicks, Nexus,
    NexusError, NexusEvent, NexusState, Overflow, Policy, Producer, PushError, RegisterError,
    RunError, Timer, TimerError, TimerKind,
};

const ZERO: Option<Duration> = Some(Duration::ZERO);

/// A log whose every change wakes the threads waiting on it (`wait_until`), so that tests
/// synchronise on what they wait for instead of sleeping.
#[derive(Default)]
struct LogInner {
    entries: Mutex<Vec<String>>,
    changed: Condvar,
}

type Log = Arc<LogInner>;

/// A lock on the log that notifies waiters when released.
struct Notify<'a>(Option<MutexGuard<'a, Vec<String>>>, &'a Condvar);

impl std::ops::Deref for Notify<'_> {
    type Target = Vec<String>;
    fn deref(&self) -> &Vec<String> {
        self.0.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Notify<'_> {
    fn deref_mut(&mut self) -> &mut Vec<String> {
        self.0.as_mut().unwrap()
    }
}

impl Drop for Notify<'_> {
    fn drop(&mut self) {
        drop(self.0.take());
        self.1.notify_all();
    }
}

impl LogInner {
    fn lock(&self) -> Result<Notify<'_>, std::convert::Infallible> {
        Ok(Notify(Some(self.entries.lock().unwrap()), &self.changed))
    }

    /// Blocks until `done` holds for the entries (at most 10 s, then panics).
    fn wait_until(&self, what: &str, mut done: impl FnMut(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut entries = self.entries.lock().unwrap();
        while !done(&entries) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("{what}: not seen in {:?}", *entries));
            entries = self.changed.wait_timeout(entries, left).unwrap().0;
        }
    }
}

fn log() -> Log {
    Arc::default()
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn errors(nexus: ventus::NexusBuilder) -> (ventus::NexusBuilder, Arc<Mutex<Vec<NexusError>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e = errors.clone();
    (
        nexus.on_error(move |error| e.lock().unwrap().push(error)),
        errors,
    )
}

fn manual() -> (Nexus, ManualClock, Arc<Mutex<Vec<NexusError>>>) {
    let clock = ManualClock::new();
    let (builder, errors) = errors(Nexus::builder().clock(clock.clone()));
    (builder.build().unwrap(), clock, errors)
}

fn recorder(
    log: &Log,
    tag: &'static str,
) -> impl FnMut(NexusEvent, &mut Context<'_>) + Send + use<> {
    let log = log.clone();
    move |event, _| {
        log.lock().unwrap().push(format!("{tag}:{}", event.id()));
    }
}

#[test]
fn ids_are_monotonic_and_thread_safe() {
    let nexus = Nexus::new().unwrap();
    let factory = nexus.factory();
    let ids: Vec<u64> = thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let factory = factory.clone();
                scope.spawn(move || (0..1000).map(|_| factory.next_id()).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                let ids = h.join().unwrap();
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "monotonic per thread");
                ids
            })
            .collect()
    });
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 4000);
    assert_eq!(*sorted.first().unwrap(), 1);
    assert_eq!(*sorted.last().unwrap(), 4000);
}

#[test]
fn create_event_auto_explicit_random_and_invalid_type() {
    let nexus = Nexus::new().unwrap();
    let auto = nexus.create_event("hi", 50).unwrap();
    assert_eq!((auto.id(), auto.event_type()), (1, &EventType::Int(50)));
    let factory: EventFactory = nexus.factory();
    let explicit = factory
        .create_event_with((), "x", IdChoice::Explicit(1001))
        .unwrap();
    assert_eq!(explicit.id(), 1001);
    let random = factory
        .create_event_with((), "x", IdChoice::Random)
        .unwrap();
    assert!(random.id() >= 1);
    assert_eq!(
        nexus.create_event((), "").unwrap_err(),
        ventus::EventTypeError::EmptyName
    );
    let typed = factory.create_typed(3u8);
    assert_eq!(typed.event_type(), &EventType::of::<u8>());
}

#[test]
fn filters_in_order_then_type_handler_then_default_then_unhandled() {
    let (mut nexus, _clock, errors) = manual();
    let log = log();
    let l = log.clone();
    nexus.add_filter(move |event, _| {
        l.lock().unwrap().push(format!("f1:{}", event.id()));
        event.id() == 1
    });
    let l = log.clone();
    nexus.add_filter(move |event, _| {
        l.lock().unwrap().push(format!("f2:{}", event.id()));
        event.id() == 2
    });
    nexus.on(10, recorder(&log, "h10")).unwrap();
    nexus.set_default(recorder(&log, "default")).unwrap();
    let producer = nexus.producer();
    for (id, ty) in [(1, 10), (2, 10), (3, 10), (4, 11)] {
        producer.push(NexusEvent::new(id, ty, ())).unwrap();
    }
    nexus.turn(ZERO).unwrap();
    assert_eq!(
        entries(&log),
        [
            "f1:1",
            "f1:2",
            "f2:2",
            "f1:3",
            "f2:3",
            "h10:3",
            "f1:4",
            "f2:4",
            "default:4"
        ]
    );
    assert!(errors.lock().unwrap().is_empty());
}

#[test]
fn a_second_handler_for_a_type_is_an_error() {
    let mut nexus = Nexus::new().unwrap();
    nexus.on(1, |_, _| {}).unwrap();
    assert_eq!(
        nexus.on(1, |_, _| {}).unwrap_err(),
        RegisterError::Duplicate(EventType::Int(1))
    );
    nexus.set_default(|_, _| {}).unwrap();
    assert_eq!(
        nexus.set_default(|_, _| {}).unwrap_err(),
        RegisterError::DuplicateDefault
    );
    assert_eq!(
        nexus.on("", |_, _| {}).unwrap_err(),
        RegisterError::InvalidType
    );
}

#[test]
fn unhandled_goes_to_the_error_hook_with_the_event_and_to_the_dead_letters() {
    let letters = Arc::new(Mutex::new(Vec::new()));
    let l = letters.clone();
    let (builder, errors) = errors(
        Nexus::builder().on_dead_letter(move |letter| l.lock().unwrap().push(letter.reason)),
    );
    let mut nexus = builder.build().unwrap();
    nexus
        .producer()
        .push(NexusEvent::new(7, "nobody", 5u32))
        .unwrap();
    nexus.turn(ZERO).unwrap();
    let errors = errors.lock().unwrap();
    match &errors[..] {
        [NexusError::Unhandled(event)] => {
            assert_eq!(event.id(), 7);
            assert_eq!(event.payload_ref::<u32>(), Some(&5));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        *letters.lock().unwrap(),
        [DeadLetterReason::UnhandledInNexus]
    );
    assert_eq!(nexus.dead_letter_counts().unhandled_in_nexus, 1);
    assert_eq!(nexus.stats().unhandled, 1);
}

#[test]
fn typed_handlers_match_rust_types() {
    #[derive(Debug)]
    struct Treacle(u32);
    let (mut nexus, _clock, errors) = manual();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    nexus
        .on_typed::<Treacle>(move |event, _| {
            let t = event.into_payload::<Treacle>().unwrap();
            g.store(u64::from(t.0), Ordering::Relaxed);
        })
        .unwrap();
    nexus
        .producer()
        .push(nexus.factory().create_typed(Treacle(11)))
        .unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(got.load(Ordering::Relaxed), 11);
    assert!(errors.lock().unwrap().is_empty());
}

#[test]
fn range_handlers_and_exact_types_win() {
    let (mut nexus, _clock, _errors) = manual();
    let log = log();
    nexus
        .add_range_handler(100..=199, recorder(&log, "range"))
        .unwrap();
    nexus.on(150, recorder(&log, "exact")).unwrap();
    assert_eq!(
        nexus.add_range_handler(190..=250, Discarder).unwrap_err(),
        RegisterError::BadRange(190, 250)
    );
    let producer = nexus.producer();
    for (id, ty) in [(1, 100), (2, 150), (3, 199)] {
        producer.push(NexusEvent::new(id, ty, ())).unwrap();
    }
    nexus.turn(ZERO).unwrap();
    assert_eq!(entries(&log), ["range:1", "exact:2", "range:3"]);
}

#[test]
fn secondary_events_run_fifo_after_the_current_one_and_are_bounded_per_pass() {
    let clock = ManualClock::new();
    let mut nexus = Nexus::builder()
        .clock(clock)
        .secondary_per_pass(3)
        .build()
        .unwrap();
    let log = log();
    let l = log.clone();
    nexus
        .on(1, move |event, cx| {
            l.lock().unwrap().push(format!("p:{}", event.id()));
            for n in 0..3 {
                let id = event.id() * 10 + n;
                cx.push(NexusEvent::new(id, 2, ()));
            }
        })
        .unwrap();
    nexus.on(2, recorder(&log, "s")).unwrap();
    let producer = nexus.producer();
    producer.push(NexusEvent::new(1, 1, ())).unwrap();
    producer.push(NexusEvent::new(2, 1, ())).unwrap();
    assert_eq!(nexus.turn(ZERO).unwrap(), 5);
    assert_eq!(entries(&log), ["p:1", "s:10", "s:11", "s:12", "p:2"]);
    assert_eq!(nexus.turn(ZERO).unwrap(), 3);
    assert_eq!(&entries(&log)[5..], ["s:20", "s:21", "s:22"]);
}

#[test]
fn a_handler_queuing_forever_does_not_deadlock_or_starve() {
    let clock = ManualClock::new();
    let mut nexus = Nexus::builder()
        .clock(clock)
        .secondary_per_pass(100)
        .build()
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    nexus
        .on(1, move |event, cx| {
            c.fetch_add(1, Ordering::Relaxed);
            cx.push(event);
        })
        .unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    nexus
        .on(2, move |_, _| {
            s.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let producer = nexus.producer();
    producer.push(NexusEvent::new(1, 1, ())).unwrap();
    nexus.turn(ZERO).unwrap();
    producer.push(NexusEvent::new(2, 2, ())).unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(
        seen.load(Ordering::Relaxed),
        1,
        "the producer's event got through"
    );
    assert_eq!(count.load(Ordering::Relaxed), 201);
}

#[test]
fn fanout_runs_in_registration_order_with_copies_and_empty_is_an_error() {
    let (mut nexus, _clock, errors) = manual();
    let log = log();
    let mut fanout = Fanout::<String>::new();
    for tag in ["a", "b", "c"] {
        let l = log.clone();
        fanout.register(move |event: NexusEvent, _: &mut Context<'_>| {
            let text = event.into_payload::<String>().unwrap();
            l.lock().unwrap().push(format!("{tag}:{text}"));
        });
    }
    let key = fanout.register(Discarder);
    assert!(fanout.deregister(key));
    assert!(!fanout.deregister(key));
    nexus.add_handler(1, fanout).unwrap();
    nexus.add_handler(2, Fanout::<String>::new()).unwrap();
    let producer = nexus.producer();
    producer
        .push(NexusEvent::new(1, 1, "x".to_string()))
        .unwrap();
    producer
        .push(NexusEvent::new(2, 2, "y".to_string()))
        .unwrap();
    producer.push(NexusEvent::new(3, 1, 5u8)).unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(entries(&log), ["a:x", "b:x", "c:x"]);
    let errors = errors.lock().unwrap();
    assert!(matches!(&errors[0], NexusError::EmptyFanout(e) if e.id() == 2));
    assert!(matches!(&errors[1], NexusError::PayloadMismatch { event, .. } if event.id() == 3));
}

#[test]
fn priorities_lower_first_fifo_among_equals_within_a_pass() {
    let (mut nexus, _clock, _errors) = manual();
    let log = log();
    nexus.set_default(recorder(&log, "e")).unwrap();
    let producer = nexus.producer();
    for (id, priority) in [(1, 5), (2, 0), (3, 5), (4, -1), (5, 0)] {
        producer
            .push(NexusEvent::new(id, 1, ()).with_priority(priority))
            .unwrap();
    }
    nexus.turn(ZERO).unwrap();
    assert_eq!(entries(&log), ["e:4", "e:2", "e:5", "e:1", "e:3"]);
}

#[test]
fn a_panicking_handler_is_reported_and_the_loop_goes_on() {
    let (mut nexus, _clock, errors) = manual();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    nexus.on(1, |_, _| panic!("boom")).unwrap();
    nexus
        .on(2, move |_, _| {
            g.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let producer = nexus.producer();
    producer.push(NexusEvent::new(1, 1, ())).unwrap();
    producer.push(NexusEvent::new(2, 2, ())).unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(got.load(Ordering::Relaxed), 1);
    assert!(matches!(
        &errors.lock().unwrap()[..],
        [NexusError::HandlerPanicked { id: 1, message, .. }] if message == "boom"
    ));
}

#[test]
fn producer_errors_give_the_event_back() {
    let producer = Producer::new();
    assert!(matches!(
        producer.push(NexusEvent::new(1, 1, ())),
        Err(PushError::NoNexus(e)) if e.id() == 1
    ));
    let mut small = Nexus::builder().capacity(2).build().unwrap();
    small.set_default(|_, _| {}).unwrap();
    let p = small.producer();
    p.push(NexusEvent::new(1, 1, ())).unwrap();
    p.push(NexusEvent::new(2, 1, ())).unwrap();
    assert!(matches!(p.push(NexusEvent::new(3, 1, ())), Err(PushError::Full(e)) if e.id() == 3));
    small.turn(ZERO).unwrap();
    p.push(NexusEvent::new(4, 1, ())).unwrap();
    small.stopper().stop();
    small.turn(ZERO).unwrap();
    assert_eq!(small.state(), NexusState::Stopped);
    assert!(matches!(p.push(NexusEvent::new(5, 1, ())), Err(PushError::Stopped(e)) if e.id() == 5));
    assert_eq!(
        small.stats().dispatched,
        3,
        "queued events are drained at stop"
    );
    let err = format!("{:?}", PushError::Full(NexusEvent::new(1, 1, ())));
    assert_eq!(err, "Full(..)");
}

#[test]
fn one_producer_feeds_several_nexuses_with_clone_payloads() {
    let producer = Producer::new();
    let mut a = Nexus::new().unwrap();
    let mut b = Nexus::new().unwrap();
    a.add_producer(&producer);
    b.add_producer(&producer);
    let got = Arc::new(Mutex::new(Vec::new()));
    for (name, nexus) in [("a", &mut a), ("b", &mut b)] {
        let g = got.clone();
        nexus
            .on(1, move |event, _| {
                g.lock()
                    .unwrap()
                    .push(format!("{name}:{}", event.payload_ref::<String>().unwrap()));
            })
            .unwrap();
    }
    assert!(matches!(
        producer.push(NexusEvent::new(1, 1, ())),
        Err(PushError::SeveralNexuses(_))
    ));
    assert_eq!(producer.emit(1, "hi".to_string()).unwrap(), 2);
    a.turn(ZERO).unwrap();
    b.turn(ZERO).unwrap();
    assert_eq!(*got.lock().unwrap(), ["a:hi", "b:hi"]);
}

#[test]
fn producers_from_threads_deliver_everything_exactly_once() {
    const PER: u64 = 20_000;
    let mut nexus = Nexus::builder().capacity(1024).build().unwrap();
    let sum = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    let (s, c) = (sum.clone(), count.clone());
    nexus
        .on(1, move |event, cx| {
            s.fetch_add(*event.payload_ref::<u64>().unwrap(), Ordering::Relaxed);
            if c.fetch_add(1, Ordering::Relaxed) + 1 == 4 * PER {
                cx.stop();
            }
        })
        .unwrap();
    let producer = nexus.producer();
    let handle = nexus.start().unwrap();
    thread::scope(|scope| {
        for _ in 0..4 {
            let producer = producer.clone();
            scope.spawn(move || {
                for n in 1..=PER {
                    let mut event = NexusEvent::new(n, 1, n);
                    loop {
                        match producer.push(event) {
                            Ok(()) => break,
                            Err(PushError::Full(back)) => {
                                event = back;
                                thread::yield_now();
                            }
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                }
            });
        }
    });
    let nexus = handle.join().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 4 * PER);
    assert_eq!(sum.load(Ordering::Relaxed), 4 * PER * (PER + 1) / 2);
    assert_eq!(nexus.state(), NexusState::Stopped);
}

#[test]
fn a_push_racing_the_loop_going_to_sleep_always_wakes_it() {
    // `turn(None)` blocks until something happens: whether the push lands before the
    // loop's spin, during it, or after the loop parked, the turn must return with it.
    let mut nexus = Nexus::new().unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    nexus
        .on(1, move |_, _| {
            g.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let producer = nexus.producer();
    nexus.turn(ZERO).unwrap();
    for round in 1..=300u64 {
        let producer = producer.clone();
        let pusher = thread::spawn(move || {
            // Vary the moment of the push across rounds.
            for _ in 0..(round % 7) * 50 {
                std::hint::spin_loop();
            }
            producer.push(NexusEvent::new(round, 1, ())).unwrap();
        });
        while got.load(Ordering::Relaxed) < round {
            nexus.turn(None).unwrap();
        }
        pusher.join().unwrap();
    }
    assert_eq!(got.load(Ordering::Relaxed), 300);
}

fn timer_log(nexus: &mut Nexus, ty: i64) -> Arc<Mutex<Vec<u64>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    nexus
        .on(ty, move |event, _| {
            g.lock().unwrap().push(*event.payload_ref::<u64>().unwrap());
        })
        .unwrap();
    got
}

fn tick(nexus: &mut Nexus, clock: &ManualClock, by: Duration) {
    clock.advance(by);
    nexus.turn(ZERO).unwrap();
}

#[test]
fn timer_kinds_payloads_with_the_manual_clock() {
    let (mut nexus, clock, _errors) = manual();
    let up = timer_log(&mut nexus, 1);
    let down = timer_log(&mut nexus, 2);
    let one = timer_log(&mut nexus, 3);
    let ongoing = timer_log(&mut nexus, 4);
    let s = Duration::from_secs(1);
    let h_up = nexus.add_timer(Timer::new(s, TimerKind::CountUp, 3, 1).unwrap());
    nexus.add_timer(Timer::new(s, TimerKind::CountDown, 3, 2).unwrap());
    nexus.add_timer(Timer::one_shot(s * 2, 3).unwrap());
    let h_on = nexus.add_timer(Timer::ongoing(s, 4).unwrap());
    nexus.turn(ZERO).unwrap();
    assert!(up.lock().unwrap().is_empty());
    tick(&mut nexus, &clock, Duration::from_millis(999));
    assert!(up.lock().unwrap().is_empty(), "not before the deadline");
    for _ in 0..5 {
        tick(&mut nexus, &clock, Duration::from_millis(1));
        tick(&mut nexus, &clock, Duration::from_millis(999));
    }
    assert_eq!(*up.lock().unwrap(), [1, 2, 3]);
    assert_eq!(*down.lock().unwrap(), [2, 1, 0]);
    assert_eq!(*one.lock().unwrap(), [1]);
    assert_eq!(*ongoing.lock().unwrap(), [1, 2, 3, 4, 5]);
    assert!(h_up.is_finished());
    assert!(!h_up.stop(), "finished: was not running");
    assert!(h_on.stop());
    assert!(!h_on.stop());
    tick(&mut nexus, &clock, s * 3);
    assert_eq!(ongoing.lock().unwrap().len(), 5, "no tick after stop");
}

#[test]
fn timer_count_rules_and_errors() {
    let s = Duration::from_secs(1);
    assert_eq!(
        Timer::new(s, TimerKind::CountDown, 0, 1).unwrap_err(),
        TimerError::InvalidCountdown
    );
    assert_eq!(
        Timer::new(s, TimerKind::CountUp, 0, 1).unwrap_err(),
        TimerError::InvalidCountup
    );
    assert_eq!(
        Timer::new(s, TimerKind::Ongoing, 1, 1).unwrap_err(),
        TimerError::CountIrrelevant
    );
    assert_eq!(
        Timer::new(s, TimerKind::OneShot, 2, 1).unwrap_err(),
        TimerError::InvalidOneshot
    );
    assert!(Timer::new(s, TimerKind::OneShot, 1, 1).is_ok());
    assert_eq!(
        TimerKind::from_code(9).unwrap_err(),
        TimerError::InvalidKind(9)
    );
    assert_eq!(TimerKind::from_code(2).unwrap(), TimerKind::CountDown);
    assert_eq!(
        TimerError::InvalidKind(9).to_string(),
        "Invalid timer type 9"
    );
    assert_eq!(Timer::ongoing(s, "").unwrap_err(), TimerError::InvalidType);
}

#[test]
fn start_twice_is_an_error_and_paused_timers_count_from_their_start() {
    let (mut nexus, clock, _errors) = manual();
    let got = timer_log(&mut nexus, 1);
    let auto = nexus.add_timer(Timer::ongoing(Duration::from_secs(1), 2).unwrap());
    nexus.on(2, |_, _| {}).unwrap();
    assert_eq!(auto.start().unwrap_err(), TimerError::MultipleStart);
    let paused = nexus.add_timer(
        Timer::new(Duration::from_secs(1), TimerKind::CountUp, 2, 1)
            .unwrap()
            .paused(),
    );
    nexus.turn(ZERO).unwrap();
    tick(&mut nexus, &clock, Duration::from_secs(5));
    assert!(got.lock().unwrap().is_empty(), "paused");
    paused.start().unwrap();
    assert_eq!(paused.start().unwrap_err(), TimerError::MultipleStart);
    nexus.turn(ZERO).unwrap();
    tick(&mut nexus, &clock, Duration::from_millis(999));
    assert!(got.lock().unwrap().is_empty(), "ticks count from the start");
    tick(&mut nexus, &clock, Duration::from_millis(1));
    assert_eq!(*got.lock().unwrap(), [1]);
    assert!(paused.stop());
}

#[test]
fn missed_ticks_burst_or_skip() {
    let (mut nexus, clock, _errors) = manual();
    let burst = timer_log(&mut nexus, 1);
    let skip = timer_log(&mut nexus, 2);
    let s = Duration::from_secs(1);
    nexus.add_timer(
        Timer::ongoing(s, 1)
            .unwrap()
            .missed_ticks(MissedTicks::Burst),
    );
    nexus.add_timer(
        Timer::ongoing(s, 2)
            .unwrap()
            .missed_ticks(MissedTicks::Skip),
    );
    nexus.turn(ZERO).unwrap();
    tick(&mut nexus, &clock, Duration::from_millis(4500));
    assert_eq!(*burst.lock().unwrap(), [1, 2, 3, 4]);
    assert_eq!(*skip.lock().unwrap(), [1]);
    tick(&mut nexus, &clock, Duration::from_millis(500));
    assert_eq!(*burst.lock().unwrap(), [1, 2, 3, 4, 5]);
    assert_eq!(*skip.lock().unwrap(), [1, 5], "resumes on the schedule");
}

#[test]
fn ticks_are_scheduled_from_the_start_time_not_from_the_last_fire() {
    let (mut nexus, clock, _errors) = manual();
    let got = timer_log(&mut nexus, 1);
    nexus.add_timer(Timer::ongoing(Duration::from_secs(1), 1).unwrap());
    nexus.turn(ZERO).unwrap();
    tick(&mut nexus, &clock, Duration::from_millis(1300));
    tick(&mut nexus, &clock, Duration::from_millis(700));
    assert_eq!(
        *got.lock().unwrap(),
        [1, 2],
        "tick 2 at 2.0 s, not at 2.3 s"
    );
}

#[test]
fn a_one_nanosecond_ongoing_timer_cannot_starve_the_loop() {
    let (mut nexus, clock, _errors) = manual();
    let got = timer_log(&mut nexus, 1);
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    nexus
        .on(2, move |_, _| {
            s.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    nexus.add_timer(Timer::ongoing(Duration::from_nanos(1), 1).unwrap());
    nexus.turn(ZERO).unwrap();
    nexus.producer().push(NexusEvent::new(1, 2, ())).unwrap();
    tick(&mut nexus, &clock, Duration::from_secs(1));
    assert_eq!(
        seen.load(Ordering::Relaxed),
        1,
        "the producer's event got through"
    );
    let fired = got.lock().unwrap().len();
    assert!(
        fired <= ventus::DEFAULT_NEXUS_BATCH,
        "bounded per pass: {fired}"
    );
}

#[test]
fn duration_max_timers_never_panic_and_never_fire() {
    let (mut nexus, clock, _errors) = manual();
    let got = timer_log(&mut nexus, 1);
    let handle = nexus.add_timer(Timer::ongoing(Duration::MAX, 1).unwrap());
    nexus.add_timer(Timer::one_shot(Duration::MAX, 1).unwrap());
    nexus.turn(ZERO).unwrap();
    tick(&mut nexus, &clock, Duration::MAX);
    tick(&mut nexus, &clock, Duration::MAX);
    assert!(got.lock().unwrap().is_empty());
    assert!(handle.stop());
}

#[test]
fn timers_fire_in_deadline_then_sequence_order() {
    let (mut nexus, clock, _errors) = manual();
    let log = log();
    let l = log.clone();
    nexus
        .add_range_handler(1..=3, move |event: NexusEvent, _: &mut Context<'_>| {
            l.lock().unwrap().push(event.event_type().to_string());
        })
        .unwrap();
    nexus.add_timer(Timer::one_shot(Duration::from_secs(2), 1).unwrap());
    nexus.add_timer(Timer::one_shot(Duration::from_secs(1), 2).unwrap());
    nexus.add_timer(Timer::one_shot(Duration::from_secs(2), 3).unwrap());
    nexus.turn(ZERO).unwrap();
    tick(&mut nexus, &clock, Duration::from_secs(5));
    assert_eq!(entries(&log), ["2", "1", "3"]);
}

#[test]
fn run_with_only_timers_blocks_until_stopped_by_a_handler() {
    let mut nexus = Nexus::new().unwrap();
    nexus
        .on(1, |event, cx| {
            if *event.payload_ref::<u64>().unwrap() == 3 {
                cx.stop();
            }
        })
        .unwrap();
    nexus.add_timer(Timer::new(Duration::from_millis(2), TimerKind::CountUp, 5, 1).unwrap());
    nexus.run().unwrap();
    assert_eq!(nexus.state(), NexusState::Stopped);
    // The pass that stopped it may hold the next tick too (it finishes its pass).
    let dispatched = nexus.stats().dispatched;
    assert!((3..=5).contains(&dispatched), "{dispatched}");
    assert!(matches!(nexus.run(), Err(RunError::Stopped)));
}

#[test]
fn lifecycle_states_start_stop_join() {
    let mut nexus = Nexus::new().unwrap();
    assert_eq!(nexus.state(), NexusState::Ready);
    let log = log();
    nexus.set_default(recorder(&log, "default")).unwrap();
    let producer = nexus.producer();
    let stopper = nexus.stopper();
    let handle = nexus.start().unwrap();
    // The loop is running once it has dispatched an event.
    producer.push(NexusEvent::new(1, 7, ())).unwrap();
    log.wait_until("the first dispatch", |entries| !entries.is_empty());
    assert_eq!(stopper.state(), NexusState::Looping);
    assert!(handle.stop());
    assert!(!handle.stop());
    let nexus = handle.join().unwrap();
    assert_eq!(nexus.state(), NexusState::Stopped);
    assert!(matches!(nexus.start(), Err(ventus::StartError::Stopped(_))));
}

#[test]
fn dropping_a_nexus_stops_it_and_closes_its_sources() {
    struct Blocking {
        rx: mpsc::Receiver<u64>,
        tx: Mutex<Option<mpsc::Sender<u64>>>,
    }
    impl Converter for Blocking {
        fn obtain_event(&mut self, factory: &EventFactory) -> Option<NexusEvent> {
            let n = self.rx.recv().ok()?;
            Some(factory.create_event(n, 1).unwrap())
        }
        fn closer(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
            let tx = Mutex::new(self.tx.lock().unwrap().take());
            // Dropping the last sender unblocks `recv`.
            Some(Box::new(move || drop(tx.lock().unwrap().take())))
        }
    }
    let (tx, rx) = mpsc::channel();
    let mut nexus = Nexus::new().unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    nexus
        .on(1, move |_, _| {
            g.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    nexus.add_converter(Blocking {
        rx,
        tx: Mutex::new(Some(tx.clone())),
    });
    drop(tx);
    let producer = nexus.producer();
    nexus.turn(ZERO).unwrap();
    let started = std::time::Instant::now();
    drop(nexus);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "closed, not timed out"
    );
    assert!(matches!(
        producer.push(NexusEvent::new(1, 1, ())),
        Err(PushError::Stopped(_))
    ));
}

#[test]
fn pull_converters_feed_the_loop_and_are_removed_when_exhausted() {
    struct Counter(u64);
    impl Converter for Counter {
        fn obtain_event(&mut self, factory: &EventFactory) -> Option<NexusEvent> {
            if self.0 == 0 {
                return None;
            }
            self.0 -= 1;
            Some(factory.create_event(self.0, 1).unwrap())
        }
    }
    let mut nexus = Nexus::new().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    nexus
        .on(1, move |_, cx| {
            if c.fetch_add(1, Ordering::Relaxed) + 1 == 200 {
                cx.stop();
            }
        })
        .unwrap();
    nexus.add_converter(Counter(100));
    nexus.add_converter(Counter(100));
    nexus.run().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 200);
}

#[test]
fn iterator_sources_are_read_in_batches_and_removed_when_exhausted() {
    let clock = ManualClock::new();
    let mut nexus = Nexus::builder().clock(clock).batch(4).build().unwrap();
    let log = log();
    nexus.set_default(recorder(&log, "e")).unwrap();
    nexus.add_iter((1..=6).map(|n| NexusEvent::new(n, 1, ())));
    assert_eq!(nexus.turn(ZERO).unwrap(), 4);
    assert_eq!(nexus.turn(ZERO).unwrap(), 2);
    assert_eq!(nexus.turn(ZERO).unwrap(), 0);
    assert_eq!(entries(&log).len(), 6);
}

fn udp_pair() -> (mio::net::UdpSocket, std::net::UdpSocket, SocketAddr) {
    let receiver = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = receiver.local_addr().unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    (receiver, sender, addr)
}

#[test]
fn udp_datagrams_become_events_and_a_busy_socket_does_not_starve_others() {
    let clock = ManualClock::new();
    let mut nexus = Nexus::builder()
        .clock(clock.clone())
        .batch(8)
        .build()
        .unwrap();
    let (busy, busy_tx, busy_addr) = udp_pair();
    let (quiet, quiet_tx, quiet_addr) = udp_pair();
    for n in 0..40u8 {
        busy_tx.send_to(&[n], busy_addr).unwrap();
    }
    quiet_tx.send_to(b"hello", quiet_addr).unwrap();
    let busy_got = Arc::new(Mutex::new(Vec::new()));
    let quiet_got = Arc::new(Mutex::new(Vec::new()));
    let (b, q) = (busy_got.clone(), quiet_got.clone());
    nexus
        .on("busy", move |event, _| {
            b.lock()
                .unwrap()
                .push(event.into_payload::<Datagram>().unwrap().data[0]);
        })
        .unwrap();
    nexus
        .on("quiet", move |event, _| {
            q.lock()
                .unwrap()
                .push(event.into_payload::<Datagram>().unwrap().data);
        })
        .unwrap();
    let timer = timer_log(&mut nexus, 9);
    nexus.add_timer(Timer::one_shot(Duration::from_secs(1), 9).unwrap());
    nexus.add_udp(busy, "busy");
    nexus.add_udp(quiet, "quiet");
    // Localhost datagrams are queued by the time send_to returns; the first pass reads
    // one bounded batch from each socket.
    nexus.turn(ZERO).unwrap();
    assert_eq!(busy_got.lock().unwrap().len(), 8, "one batch");
    assert_eq!(*quiet_got.lock().unwrap(), [b"hello".to_vec()]);
    // The busy socket does not hold the timer back: it fires in the next pass, beside
    // the busy socket's second batch.
    clock.advance(Duration::from_secs(1));
    nexus.turn(ZERO).unwrap();
    assert_eq!(*timer.lock().unwrap(), [1]);
    assert_eq!(busy_got.lock().unwrap().len(), 16);
    // Edge-triggered: no new readiness arrives, but the busy socket stays on the ready
    // list until drained.
    for _ in 0..10 {
        nexus.turn(ZERO).unwrap();
    }
    assert_eq!(*busy_got.lock().unwrap(), (0..40).collect::<Vec<u8>>());
}

#[test]
fn tcp_listener_accepts_connections_as_events() {
    let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut nexus = Nexus::new().unwrap();
    let peers = Arc::new(AtomicU64::new(0));
    let p = peers.clone();
    nexus
        .on("accept", move |event, cx| {
            let accepted = event.into_payload::<ventus::Accepted>().unwrap();
            assert!(accepted.peer.ip().is_loopback());
            p.fetch_add(1, Ordering::Relaxed);
            cx.stop();
        })
        .unwrap();
    nexus.add_tcp_listener(listener, "accept");
    let client = thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    nexus.run().unwrap();
    drop(client.join().unwrap());
    assert_eq!(peers.load(Ordering::Relaxed), 1);
}

#[test]
fn boundary_forwards_chosen_types_and_two_linked_nexuses_do_not_deadlock() {
    let (mut a, _ca, _ea) = manual();
    let (mut b, _cb, _eb) = manual();
    let log = log();
    // a → b for "ping", b → a for "pong"; each side answers until id 10.
    a.add_handler("ping", Boundary::new(&b)).unwrap();
    b.add_handler("pong", Boundary::new(&a)).unwrap();
    let l = log.clone();
    a.on("pong-in", move |event, cx| {
        l.lock().unwrap().push(format!("a:{}", event.id()));
        if event.id() < 10 {
            cx.push(NexusEvent::new(event.id() + 1, "ping", ()));
        }
    })
    .unwrap();
    let l = log.clone();
    b.on("ping", move |event, cx| {
        l.lock().unwrap().push(format!("b:{}", event.id()));
        cx.push(NexusEvent::new(event.id() + 1, "pong", ()));
    })
    .unwrap();
    // What crosses into `a` as "pong" is renamed by a filter into "pong-in".
    a.add_filter(|event, cx| {
        if event.event_type() == &EventType::from("pong") {
            cx.push(NexusEvent::new(event.id(), "pong-in", ()));
            return true;
        }
        false
    });
    a.producer().push(NexusEvent::new(1, "ping", ())).unwrap();
    for _ in 0..20 {
        a.turn(ZERO).unwrap();
        b.turn(ZERO).unwrap();
    }
    let log = entries(&log);
    assert_eq!(log.first().map(String::as_str), Some("b:1"));
    assert!(log.contains(&"a:10".to_string()), "{log:?}");
}

#[test]
fn forwarder_into_actors_with_overflow_policies() {
    let runtime = ventus::Runtime::builder().workers(1).build().unwrap();
    let linker = Linker::new();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate = Mutex::new(gate_rx);
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let _sub = linker
        .on::<u64>()
        .capacity(1)
        .policy(Policy::Fail)
        .call(move |_: &u64| {
            let _ = gate.lock().unwrap().recv();
            h.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, ventus::Actors::new(&runtime));
    let (mut nexus, _clock, _errors) = manual();
    nexus
        .add_handler(
            1,
            Forwarder::<u64>::new(emitter.clone(), Overflow::DeadLetter),
        )
        .unwrap();
    nexus
        .add_handler(
            2,
            Forwarder::<u64>::new(emitter, Overflow::Retry { retries: 1000 }),
        )
        .unwrap();
    let producer = nexus.producer();
    for n in 0..5u64 {
        producer.push(NexusEvent::new(n, 1, n)).unwrap();
    }
    nexus.turn(ZERO).unwrap();
    let dropped = nexus.dead_letter_counts().dropped;
    assert!(
        dropped >= 3,
        "a full mailbox never stalls the loop: {dropped}"
    );
    for _ in 0..10 {
        gate_tx.send(()).unwrap();
    }
    runtime.wait_idle().unwrap();
    assert_eq!(handled.load(Ordering::Relaxed) + dropped, 5);
    // Retry: every event eventually gets through.
    let before = handled.load(Ordering::Relaxed);
    for n in 0..3u64 {
        producer.push(NexusEvent::new(n, 2, n)).unwrap();
    }
    for _ in 0..100 {
        gate_tx.send(()).unwrap();
    }
    for _ in 0..1000 {
        nexus.turn(ZERO).unwrap();
        if handled.load(Ordering::Relaxed) == before + 3 {
            break;
        }
        runtime.wait_idle().unwrap();
    }
    runtime.wait_idle().unwrap();
    assert_eq!(handled.load(Ordering::Relaxed), before + 3);
    assert_eq!(nexus.dead_letter_counts().dropped, dropped);
}

#[test]
fn forwarder_into_an_inline_emitter() {
    let linker = Linker::new();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let _sub = linker
        .on::<u64>()
        .call(move |n: &u64| {
            g.fetch_add(*n, Ordering::Relaxed);
        })
        .unwrap();
    let (mut nexus, _clock, errors) = manual();
    nexus
        .add_handler(
            1,
            Forwarder::<u64>::new(Emitter::new(&linker, Inline), Overflow::DeadLetter),
        )
        .unwrap();
    let producer = nexus.producer();
    producer.push(NexusEvent::new(1, 1, 5u64)).unwrap();
    producer.push(NexusEvent::new(2, 1, "not a u64")).unwrap();
    nexus.turn(ZERO).unwrap();
    assert_eq!(got.load(Ordering::Relaxed), 5);
    assert!(matches!(
        &errors.lock().unwrap()[..],
        [NexusError::PayloadMismatch { .. }]
    ));
}

/// async_nexus's demo wiring (`demo/async_events.py`): a filter consuming ids < 5, typed
/// handlers, a fanout, a default handler, two converters, a producer, two timers and
/// ad-hoc events; deterministic under the manual clock.
#[test]
fn the_async_nexus_demo_wiring_runs_to_completion() {
    struct Demo {
        ty: i64,
        left: u32,
    }
    impl Converter for Demo {
        fn obtain_event(&mut self, factory: &EventFactory) -> Option<NexusEvent> {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            Some(
                factory
                    .create_event(format!("demo {}", self.left), self.ty)
                    .unwrap(),
            )
        }
    }
    let clock = ManualClock::new();
    let (builder, errors) = errors(Nexus::builder().clock(clock.clone()));
    let mut nexus = builder.build().unwrap();
    let log = log();
    let filtered = Arc::new(AtomicU64::new(0));
    let f = filtered.clone();
    nexus.add_filter(move |event, _| {
        let consume = event.id() < 5;
        if consume {
            f.fetch_add(1, Ordering::Relaxed);
        }
        consume
    });
    nexus.on(1, recorder(&log, "first")).unwrap();
    nexus.on(2, recorder(&log, "second")).unwrap();
    let mut fanout = Fanout::<String>::new();
    fanout.register(recorder(&log, "fan-a"));
    fanout.register(recorder(&log, "fan-b"));
    nexus.add_handler(50, fanout).unwrap();
    nexus.on(98, recorder(&log, "countdown")).unwrap();
    nexus.on(99, recorder(&log, "teapot")).unwrap();
    nexus.set_default(recorder(&log, "default")).unwrap();
    nexus.add_converter(Demo { ty: 1, left: 10 });
    nexus.add_converter(Demo { ty: 2, left: 10 });
    let producer = nexus.producer();
    let countdown = nexus
        .add_timer(Timer::new(Duration::from_millis(1500), TimerKind::CountDown, 5, 98).unwrap());
    nexus.add_timer(Timer::one_shot(Duration::from_secs(3), 99).unwrap());
    let factory = nexus.factory();
    let stopper = nexus.stopper();
    let handle = nexus.start().unwrap();
    for n in 0..10 {
        let event = factory.create_event(format!("hi {n}"), 50).unwrap();
        producer.push(event).unwrap();
    }
    producer.push(NexusEvent::new(1001, 77, "ad hoc")).unwrap();
    // Step the clock past every timer; wait (bounded, on the log) until each stage is seen.
    let wait_for = |what: &str, n: usize| {
        log.wait_until(what, |entries| {
            entries.iter().filter(|e| e.starts_with(what)).count() >= n
        });
    };
    // The timers start with the loop: advance the clock only once it runs (it has
    // dispatched the ad hoc event to the default handler).
    wait_for("default", 1);
    for _ in 0..5 {
        clock.advance(Duration::from_millis(1500));
    }
    wait_for("countdown", 5);
    wait_for("teapot", 1);
    assert!(countdown.is_finished());
    let total = |log: &[String]| {
        log.iter()
            .filter(|e| e.starts_with("first") || e.starts_with("second"))
            .count()
            + filtered.load(Ordering::Relaxed) as usize
            + log.iter().filter(|e| e.starts_with("fan-a")).count()
    };
    // Filtered events leave no entry: the converters' last events (ids 10) do.
    log.wait_until("every converter and producer event", |entries| {
        total(entries) >= 30
    });
    stopper.stop();
    let nexus = handle.join().unwrap();
    assert_eq!(nexus.state(), NexusState::Stopped);
    let log = entries(&log);
    assert_eq!(
        total(&log),
        30,
        "20 converter events + 10 producer events: {log:?}"
    );
    assert_eq!(
        log.iter().filter(|e| e.starts_with("fan-a")).count(),
        log.iter().filter(|e| e.starts_with("fan-b")).count()
    );
    assert!(log.contains(&"default:1001".to_string()));
    assert!(
        filtered.load(Ordering::Relaxed) >= 1,
        "ids 1..5 were filtered"
    );
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
}

// ---- Timer event functions (async_nexus's overridable `create_event`, §2.3) ----

#[test]
fn a_timer_event_function_returning_none_skips_that_tick() {
    let (mut nexus, clock, errors) = manual();
    let down = timer_log(&mut nexus, 2);
    let s = Duration::from_secs(1);
    // Count-down from 5 (values 4, 3, 2, 1, 0): the function skips the odd ones.
    let handle = nexus.add_timer(
        Timer::new(s, TimerKind::CountDown, 5, 2)
            .unwrap()
            .with_payload(|value| (value % 2 == 0).then_some(value)),
    );
    // A one-shot whose only tick is skipped: it finishes without an event.
    let skipped = timer_log(&mut nexus, 3);
    let one = nexus.add_timer(
        Timer::one_shot(s, 3)
            .unwrap()
            .with_event(|_, _| None::<NexusEvent>),
    );
    // The full form: the function chooses id, type and payload.
    let made = log();
    let m = made.clone();
    nexus
        .on("made", move |event, _| {
            let text = event.payload_ref::<String>().unwrap().clone();
            m.lock().unwrap().push(format!("{}:{text}", event.id()));
        })
        .unwrap();
    nexus.add_timer(Timer::new(s, TimerKind::CountUp, 3, 9).unwrap().with_event(
        |value, factory| {
            (value != 2).then(|| {
                factory
                    .create_event_with(format!("v{value}"), "made", IdChoice::Explicit(100 + value))
                    .unwrap()
            })
        },
    ));
    nexus.turn(ZERO).unwrap();
    for _ in 0..6 {
        tick(&mut nexus, &clock, s);
    }
    assert_eq!(*down.lock().unwrap(), [4, 2, 0], "odd values skipped");
    assert!(handle.is_finished(), "skipped ticks still count");
    assert!(skipped.lock().unwrap().is_empty());
    assert!(one.is_finished());
    assert_eq!(entries(&made), ["101:v1", "103:v3"]);
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
}

#[test]
fn a_panicking_timer_event_function_is_reported_and_the_timer_goes_on() {
    let (mut nexus, clock, errors) = manual();
    let up = timer_log(&mut nexus, 1);
    let s = Duration::from_secs(1);
    nexus.add_timer(
        Timer::new(s, TimerKind::CountUp, 3, 1)
            .unwrap()
            .with_payload(|value| {
                assert!(value != 2, "no two");
                Some(value)
            }),
    );
    nexus.turn(ZERO).unwrap();
    for _ in 0..3 {
        tick(&mut nexus, &clock, s);
    }
    assert_eq!(*up.lock().unwrap(), [1, 3]);
    let errors = errors.lock().unwrap();
    assert!(
        matches!(
            errors.as_slice(),
            [NexusError::TimerPanicked { value: 2, event_type: EventType::Int(1), message }]
                if message.contains("no two")
        ),
        "{errors:?}"
    );
}

// ---- Routes added while the nexus runs ----

#[test]
fn handlers_filters_default_and_fanout_can_be_added_while_running() {
    let (builder, errors) = errors(Nexus::builder());
    let nexus = builder.build().unwrap();
    let producer = nexus.producer();
    let seen = log();
    let handle = nexus.start().unwrap();
    let registrar = handle.registrar();
    let push = |id: u64, ty: EventType| producer.push(NexusEvent::new(id, ty, id)).unwrap();

    // A typed handler.
    registrar.on(1, recorder(&seen, "one")).unwrap();
    push(1, EventType::Int(1));
    seen.wait_until("one", |e| e.contains(&"one:1".to_string()));
    // A second handler for the type is refused, as on the Nexus.
    assert_eq!(
        registrar.on(1, recorder(&seen, "dup")),
        Err(RegisterError::Duplicate(EventType::Int(1)))
    );
    // A handler for a Rust type.
    registrar.on_typed::<u32>(recorder(&seen, "u32")).unwrap();
    producer.push(NexusEvent::typed(2, 7u32)).unwrap();
    seen.wait_until("u32", |e| e.contains(&"u32:2".to_string()));
    // A fanout, registered after start.
    let mut fanout = Fanout::<u64>::new();
    fanout.register(recorder(&seen, "fa"));
    fanout.register(recorder(&seen, "fb"));
    registrar.add_handler(3, fanout).unwrap();
    push(3, EventType::Int(3));
    seen.wait_until("fanout", |e| e.contains(&"fb:3".to_string()));
    // A default handler.
    registrar.set_default(recorder(&seen, "default")).unwrap();
    assert_eq!(
        registrar.set_default(recorder(&seen, "default2")),
        Err(RegisterError::DuplicateDefault)
    );
    push(4, EventType::Int(4));
    seen.wait_until("default", |e| e.contains(&"default:4".to_string()));
    // A filter, which now runs before every handler.
    let s = seen.clone();
    registrar
        .add_filter(move |event, _| {
            let consumed = event.id() == 5;
            if consumed {
                s.lock().unwrap().push("filtered:5".into());
            }
            consumed
        })
        .unwrap();
    push(5, EventType::Int(1));
    push(6, EventType::Int(1));
    seen.wait_until("filter", |e| e.contains(&"one:6".to_string()));
    // A range handler.
    registrar
        .add_range_handler(100..=199, recorder(&seen, "range"))
        .unwrap();
    push(150, EventType::Int(150));
    seen.wait_until("range", |e| e.contains(&"range:150".to_string()));

    assert!(handle.stop());
    let nexus = handle.join().unwrap();
    assert_eq!(nexus.state(), NexusState::Stopped);
    assert_eq!(
        entries(&seen),
        [
            "one:1",
            "u32:2",
            "fa:3",
            "fb:3",
            "default:4",
            "filtered:5",
            "one:6",
            "range:150"
        ]
    );
    // After the stop: refused, the handler is dropped.
    assert_eq!(
        registrar.on(9, recorder(&seen, "late")),
        Err(RegisterError::Stopped)
    );
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
}

#[test]
fn a_registrar_refuses_what_would_hang() {
    // Not started: the loop may never run, so nothing would apply the change.
    let mut nexus = Nexus::new().unwrap();
    let registrar = nexus.registrar();
    assert_eq!(registrar.on(1, |_, _| {}), Err(RegisterError::NotStarted));
    // On the thread that drives the loop (between turns): it would wait for itself.
    nexus.turn(ZERO).unwrap();
    assert_eq!(
        registrar.on(1, |_, _| {}),
        Err(RegisterError::WouldDeadlock)
    );
    // From another thread, while this one drives it with `turn`.
    let (tx, rx) = mpsc::channel();
    let remote = thread::spawn(move || tx.send(registrar.on(1, |_, _| {})).unwrap());
    let answer = loop {
        nexus.turn(Some(Duration::from_millis(10))).unwrap();
        if let Ok(answer) = rx.try_recv() {
            break answer;
        }
    };
    remote.join().unwrap();
    assert_eq!(answer, Ok(()));
    assert_eq!(
        nexus.on(1, |_, _| {}),
        Err(RegisterError::Duplicate(EventType::Int(1))),
        "applied to this nexus"
    );
}

#[test]
fn a_registrar_call_racing_the_stop_is_answered() {
    let nexus = Nexus::new().unwrap();
    let handle = nexus.start().unwrap();
    let registrar = handle.registrar();
    let racer = thread::spawn(move || {
        let mut answers = Vec::new();
        for ty in 0..200 {
            let answer = registrar.on(ty, |_, _| {});
            let stopped = answer == Err(RegisterError::Stopped);
            answers.push(answer);
            if stopped {
                break;
            }
        }
        answers
    });
    handle.stop();
    handle.join().unwrap();
    // Every call returned: applied before the stop, or refused with `Stopped` after it.
    let answers = racer.join().unwrap();
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(()) | Err(RegisterError::Stopped)))
    );
}

#[test]
fn handlers_can_add_routes_from_inside_the_loop() {
    let (mut nexus, _clock, errors) = manual();
    let seen = log();
    let s = seen.clone();
    nexus
        .on(1, move |event, cx| {
            // Applied after this event, before the next one.
            cx.on(2, recorder(&s, "two"));
            cx.on(2, recorder(&s, "dup"));
            cx.add_filter(|event, _| event.id() == 99);
            cx.set_default(recorder(&s, "default"));
            s.lock().unwrap().push(format!("one:{}", event.id()));
        })
        .unwrap();
    let producer = nexus.producer();
    for (id, ty) in [(1, 1), (2, 2), (99, 2), (3, 7)] {
        producer.push(NexusEvent::new(id, ty, ())).unwrap();
    }
    nexus.turn(ZERO).unwrap();
    assert_eq!(entries(&seen), ["one:1", "two:2", "default:3"]);
    let errors = errors.lock().unwrap();
    assert!(
        matches!(
            errors.as_slice(),
            [NexusError::Register(RegisterError::Duplicate(
                EventType::Int(2)
            ))]
        ),
        "{errors:?}"
    );
}

// ---- Payloads: inline and boxed look the same ----

#[test]
fn payloads_of_every_kind_are_read_moved_and_named() {
    #[derive(Debug, PartialEq)]
    struct Big([u64; 8]);
    let mut event = NexusEvent::new(1, 1, 5u64);
    assert_eq!(event.payload_ref::<u64>(), Some(&5));
    assert_eq!(event.payload_ref::<u32>(), None);
    *event.payload_mut::<u64>().unwrap() += 1;
    assert_eq!(event.payload_type_name(), "u64");
    let event = event.into_payload::<i64>().unwrap_err();
    assert_eq!(event.into_payload::<u64>().ok(), Some(6));

    let event = NexusEvent::new(2, 1, String::from("s"));
    assert!(event.is::<String>());
    assert_eq!(event.into_payload::<String>().ok().as_deref(), Some("s"));

    let mut event = NexusEvent::new(3, 1, Big([7; 8]));
    assert!(event.is::<Big>());
    assert!(!event.is::<Box<Big>>());
    assert!(event.payload_type_name().ends_with("Big"));
    event.payload_mut::<Big>().unwrap().0[0] = 1;
    let back = event.map_payload(()).map_payload(Big([2; 8]));
    assert_eq!(back.payload_ref::<Big>(), Some(&Big([2; 8])));
    assert_eq!(back.into_payload::<Big>().ok(), Some(Big([2; 8])));

    let unit = NexusEvent::new(4, 1, ());
    assert_eq!(unit.payload_ref::<()>(), Some(&()));
    assert_eq!(unit.into_payload::<()>().ok(), Some(()));
    let text = NexusEvent::new(5, 1, "static");
    assert_eq!(text.payload_ref::<&str>(), Some(&"static"));
    let float = NexusEvent::new(6, 1, 1.5f64);
    assert_eq!(float.into_payload::<f64>().ok(), Some(1.5));
}

#[test]
fn a_full_inbox_refuses_then_accepts_once_the_loop_took_its_events() {
    let mut nexus = Nexus::builder().capacity(4).build().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    nexus
        .on(1, move |_, _| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let producer = nexus.producer();
    for i in 0..4 {
        producer.push(NexusEvent::new(i, 1, ())).unwrap();
    }
    assert!(matches!(
        producer.push(NexusEvent::new(9, 1, ())),
        Err(PushError::Full(e)) if e.id() == 9
    ));
    while count.load(Ordering::Relaxed) < 4 {
        nexus.turn(ZERO).unwrap();
    }
    for i in 0..4 {
        producer.push(NexusEvent::new(i, 1, ())).unwrap();
    }
    assert!(matches!(
        producer.push(NexusEvent::new(9, 1, ())),
        Err(PushError::Full(_))
    ));
}
