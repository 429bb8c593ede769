//! The event workflow and the inline emitter: callbacks, failures, panics, ordering,
//! re-entrancy, the depth limit, backpressure, dead letters and custom strategies.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ventus::{
    DeadLetter, DeadLetterReason, Delivery, DispatchError, Emission, EmitError, Emitter, Event,
    EventKey, Failure, Linker, Policy, Refusal, Strategy,
};

#[derive(Debug, Clone, PartialEq)]
struct Job(u32);

#[derive(Debug)]
struct Oops;
impl fmt::Display for Oops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oops")
    }
}
impl Error for Oops {}

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn push(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

/// A linker whose error hook records into `errors`.
fn linker_with_errors(errors: &Log) -> Linker {
    let errors = errors.clone();
    Linker::builder()
        .error_hook(move |_, report| push(&errors, report.to_string()))
        .build()
        .unwrap()
}

#[test]
fn success_callback_without_value_for_unit_handlers() {
    let calls = log();
    let linker = Linker::new();
    let c = calls.clone();
    let _sub = linker
        .on::<Job>()
        .on_success(move || push(&c, "success"))
        .call(|_: &Job| {})
        .unwrap();
    assert_eq!(Emitter::inline(&linker).emit(Job(1)).unwrap().delivered, 1);
    assert_eq!(entries(&calls), vec!["success"]);
}

#[test]
fn success_callback_receives_the_value_even_when_falsy() {
    let values = Arc::new(Mutex::new(Vec::new()));
    let linker = Linker::new();
    let v = values.clone();
    let _sub = linker
        .on::<Job>()
        .on_success(move |value: u32| v.lock().unwrap().push(value))
        .call(|job: &Job| Ok::<u32, Oops>(job.0))
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit(Job(0)).unwrap().delivered, 1);
    assert_eq!(emitter.emit(Job(5)).unwrap().delivered, 1);
    assert_eq!(*values.lock().unwrap(), vec![0, 5]);
}

#[test]
fn err_and_panic_go_to_the_failure_callback() {
    let failures = log();
    let successes = log();
    let linker = Linker::new();
    let (f, s) = (failures.clone(), successes.clone());
    let sub = linker
        .on::<Job>()
        .on_success(move || push(&s, "ok"))
        .on_failure(move |failure| {
            let entry = match &failure {
                Failure::Handler(error) => format!("err:{error}"),
                Failure::Panic(message) => format!("panic:{message}"),
                other => format!("other:{other}"),
            };
            push(&f, entry)
        })
        .call(|job: &Job| match job.0 {
            0 => Err(Oops),
            1 => panic!("boom"),
            _ => Ok(()),
        })
        .unwrap();
    let emitter = Emitter::inline(&linker);
    for i in 0..3 {
        assert_eq!(emitter.emit(Job(i)).unwrap().delivered, 1);
    }
    assert_eq!(entries(&failures), vec!["err:oops", "panic:boom"]);
    assert_eq!(entries(&successes), vec!["ok"]);
    let stats = sub.stats();
    assert_eq!(
        (stats.invoked, stats.succeeded, stats.failed, stats.panicked),
        (3, 1, 1, 1)
    );
}

#[test]
fn a_panicking_success_callback_goes_to_the_error_hook_not_the_failure_callback() {
    let errors = log();
    let failures = log();
    let linker = linker_with_errors(&errors);
    let f = failures.clone();
    let _sub = linker
        .on::<Job>()
        .on_success(|| panic!("in success"))
        .on_failure(move |_| push(&f, "failure"))
        .call(|_: &Job| {})
        .unwrap();
    assert_eq!(Emitter::inline(&linker).emit(Job(1)).unwrap().delivered, 1);
    assert!(entries(&failures).is_empty());
    let errors = entries(&errors);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("success callback panicked: in success"),
        "{errors:?}"
    );
}

#[test]
fn a_panicking_failure_callback_goes_to_the_error_hook() {
    let errors = log();
    let linker = linker_with_errors(&errors);
    let _sub = linker
        .on::<Job>()
        .on_failure(|_| panic!("in failure"))
        .call(|_: &Job| Err::<(), _>(Oops))
        .unwrap();
    assert_eq!(Emitter::inline(&linker).emit(Job(1)).unwrap().delivered, 1);
    let errors = entries(&errors);
    assert!(
        errors[0].contains("failure callback panicked: in failure"),
        "{errors:?}"
    );
}

#[test]
fn a_failure_without_callback_goes_to_the_error_hook() {
    let errors = log();
    let linker = linker_with_errors(&errors);
    let _sub = linker
        .on::<Job>()
        .call(|_: &Job| Err::<(), _>(Oops))
        .unwrap();
    assert_eq!(Emitter::inline(&linker).emit(Job(1)).unwrap().delivered, 1);
    assert_eq!(entries(&errors).len(), 1);
    assert!(entries(&errors)[0].contains("oops"));
}

#[test]
fn linker_default_callbacks_apply_when_none_is_given() {
    let calls = log();
    let (s, f) = (calls.clone(), calls.clone());
    let linker = Linker::builder()
        .default_on_success(move |value| {
            let value = value.downcast_ref::<u32>().copied();
            push(&s, format!("default-success:{value:?}"))
        })
        .default_on_failure(move |failure| push(&f, format!("default-failure:{failure}")))
        .build()
        .unwrap();
    let own = calls.clone();
    let _a = linker
        .on::<Job>()
        .call(|job: &Job| if job.0 == 0 { Err(Oops) } else { Ok(job.0) });
    let _b = linker
        .on::<Job>()
        .on_failure(move |_| push(&own, "own-failure"))
        .call(|_: &Job| Err::<(), _>(Oops))
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit(Job(0)).unwrap().delivered, 2);
    assert_eq!(emitter.emit(Job(7)).unwrap().delivered, 2);
    assert_eq!(
        entries(&calls),
        vec![
            "default-failure:handler failed: oops",
            "own-failure",
            "default-success:Some(7)",
            "own-failure"
        ]
    );
}

#[test]
fn a_named_payload_of_another_type_is_a_payload_mismatch() {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let linker = Linker::new();
    let f = failures.clone();
    let _sub = linker
        .on_named("price")
        .on_failure(move |failure| {
            if let Failure::PayloadMismatch { expected, found } = failure {
                f.lock().unwrap().push((expected, found));
            }
        })
        .call(|_: &f64| {})
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit_named("price", 1.5f64).unwrap().delivered, 1);
    assert_eq!(emitter.emit_named("price", "cheap").unwrap().delivered, 1);
    assert_eq!(*failures.lock().unwrap(), vec![("f64", "&str")]);
}

#[test]
fn emit_named_with_an_empty_name_gives_the_payload_back() {
    let linker = Linker::new();
    match Emitter::inline(&linker).emit_named("", 9u8) {
        Err(EmitError::EmptyName(9)) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn inline_runs_subscriptions_in_subscription_order_with_any_in_its_place() {
    let order = log();
    let linker = Linker::new();
    for name in ["first", "second"] {
        let o = order.clone();
        let _ = linker
            .on::<Job>()
            .call(move |_: &Job| push(&o, name))
            .unwrap();
    }
    let o = order.clone();
    let _any = linker
        .on_any()
        .call(move |_: &Event<'_>| push(&o, "any"))
        .unwrap();
    let o = order.clone();
    let _last = linker
        .on::<Job>()
        .call(move |_: &Job| push(&o, "last"))
        .unwrap();
    assert_eq!(Emitter::inline(&linker).emit(Job(1)).unwrap().delivered, 4);
    assert_eq!(entries(&order), vec!["first", "second", "any", "last"]);
}

#[test]
fn nested_emissions_complete_depth_first_before_the_outer_emit_returns() {
    let order = log();
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let (o, e) = (order.clone(), emitter.clone());
    let _first = linker
        .on_named("first")
        .call(move |_: &()| {
            push(&o, "first:start");
            assert_eq!(e.emit_named("second", ()).unwrap().delivered, 1);
            push(&o, "first:end");
        })
        .unwrap();
    let (o, e) = (order.clone(), emitter.clone());
    let _second = linker
        .on_named("second")
        .call(move |_: &()| {
            push(&o, "second");
            assert_eq!(e.emit_named("third", ()).unwrap().delivered, 1);
        })
        .unwrap();
    let o = order.clone();
    let _third = linker
        .on_named("third")
        .call(move |_: &()| push(&o, "third"))
        .unwrap();
    assert_eq!(emitter.emit_named("first", ()).unwrap().delivered, 1);
    assert_eq!(
        entries(&order),
        vec!["first:start", "second", "third", "first:end"]
    );
}

#[test]
fn a_reentrant_emit_to_a_running_subscription_runs_right_after_it() {
    let order = log();
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let (o, e) = (order.clone(), emitter.clone());
    let _sub = linker
        .on::<Job>()
        .call(move |job: &Job| {
            push(&o, format!("start {}", job.0));
            if job.0 < 3 {
                assert_eq!(e.emit(Job(job.0 + 1)).unwrap().delivered, 1);
            }
            push(&o, format!("end {}", job.0));
        })
        .unwrap();
    assert_eq!(emitter.emit(Job(1)).unwrap().delivered, 1);
    assert_eq!(
        entries(&order),
        vec!["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]
    );
}

#[test]
fn nesting_past_the_limit_is_too_deep_and_gives_the_event_back() {
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let deepest = Arc::new(AtomicUsize::new(0));
    let too_deep = Arc::new(AtomicUsize::new(0));
    // Distinct subscriptions per level, so each nested emit runs depth-first.
    for level in 0..(ventus::MAX_DEPTH as usize + 5) {
        let (e, d, t) = (emitter.clone(), deepest.clone(), too_deep.clone());
        let _ = linker
            .on_named(&format!("level-{level}"))
            .call(move |_: &()| {
                d.fetch_max(level, Ordering::SeqCst);
                match e.emit_named(&format!("level-{}", level + 1), ()) {
                    Err(EmitError::TooDeep(())) => {
                        t.fetch_add(1, Ordering::SeqCst);
                    }
                    other => assert!(other.is_ok()),
                }
            })
            .unwrap();
    }
    assert_eq!(emitter.emit_named("level-0", ()).unwrap().delivered, 1);
    assert_eq!(
        deepest.load(Ordering::SeqCst),
        ventus::MAX_DEPTH as usize - 1
    );
    assert_eq!(too_deep.load(Ordering::SeqCst), 1);
}

#[test]
fn full_mailbox_policies() {
    // A handler that emits to itself fills its own mailbox: the runner is on this stack,
    // so even `Block` cannot wait and refuses.
    for (policy, expect) in [
        (Policy::Block, Refusal::Full),
        (Policy::Fail, Refusal::Full),
        (Policy::DropNewest, Refusal::Dropped),
    ] {
        let letters = Arc::new(Mutex::new(Vec::new()));
        let l = letters.clone();
        let linker = Linker::builder()
            .dead_letter_hook(move |letter: DeadLetter| l.lock().unwrap().push(letter.reason))
            .build()
            .unwrap();
        let emitter = Emitter::inline(&linker);
        let results = Arc::new(Mutex::new(Vec::new()));
        let (e, r) = (emitter.clone(), results.clone());
        let sub = linker
            .on::<Job>()
            .capacity(2)
            .policy(policy)
            .call(move |job: &Job| {
                if job.0 == 0 {
                    for i in 1..=3 {
                        r.lock()
                            .unwrap()
                            .push(e.emit(Job(i)).map_err(|err| match err {
                                EmitError::Full(job) => job.0,
                                other => panic!("unexpected {other:?}"),
                            }));
                    }
                }
            })
            .unwrap();
        assert_eq!(emitter.emit(Job(0)).unwrap().delivered, 1);
        let results = results.lock().unwrap().clone();
        // Pending counts the running event too: one more fits, then the bound holds.
        assert!(results[0].is_ok(), "{policy:?}: {results:?}");
        // The refused event comes back in the error.
        assert_eq!(results[1], Err(2), "{policy:?}");
        assert_eq!(results[2], Err(3), "{policy:?}");
        let stats = sub.stats();
        if expect == Refusal::Dropped {
            assert_eq!(stats.dropped, 2);
            assert_eq!(linker.dead_letter_counts().dropped, 2);
            assert_eq!(
                *letters.lock().unwrap(),
                vec![DeadLetterReason::Dropped, DeadLetterReason::Dropped]
            );
        } else {
            assert_eq!(stats.refused, 2);
            assert!(letters.lock().unwrap().is_empty());
        }
        assert_eq!(stats.invoked, 2);
    }
}

#[test]
fn a_partial_delivery_is_ok_with_the_refusal_listed() {
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let outcome = Arc::new(Mutex::new(None));
    let (e, o) = (emitter.clone(), outcome.clone());
    let _busy = linker
        .on::<Job>()
        .capacity(1)
        .policy(Policy::Fail)
        .call(move |job: &Job| {
            if job.0 == 0 {
                *o.lock().unwrap() = Some(e.emit(Job(1)));
            }
        })
        .unwrap();
    let _other = linker.on::<Job>().call(|_: &Job| {}).unwrap();
    assert_eq!(emitter.emit(Job(0)).unwrap().delivered, 2);
    let delivery: Delivery = outcome.lock().unwrap().take().unwrap().unwrap();
    assert_eq!(delivery.delivered, 1);
    assert_eq!(delivery.refused.len(), 1);
    assert!(!delivery.is_complete());
}

#[test]
fn events_queued_for_an_unsubscribed_subscription_are_dead_letters() {
    let letters = Arc::new(Mutex::new(Vec::new()));
    let l = letters.clone();
    let linker = Linker::builder()
        .dead_letter_hook(move |letter: DeadLetter| {
            let job = letter
                .payload
                .as_ref()
                .and_then(|p| p.downcast_ref::<Job>())
                .cloned();
            l.lock().unwrap().push((letter.reason, job));
        })
        .build()
        .unwrap();
    let emitter = Emitter::inline(&linker);
    let ran = log();
    let slot: Arc<Mutex<Option<ventus::Subscription>>> = Arc::new(Mutex::new(None));
    let (e, r, s) = (emitter.clone(), ran.clone(), slot.clone());
    let sub = linker
        .on::<Job>()
        .call(move |job: &Job| {
            push(&r, format!("{}", job.0));
            if job.0 == 0 {
                // Queue two more behind this invocation, then unsubscribe.
                assert_eq!(e.emit(Job(1)).unwrap().delivered, 1);
                assert_eq!(e.emit(Job(2)).unwrap().delivered, 1);
                let me = s.lock().unwrap().clone().unwrap();
                assert!(me.unsubscribe());
                // Waiting for itself would deadlock.
                assert_eq!(me.unsubscribe_and_wait(), Err(ventus::WouldDeadlock));
            }
        })
        .unwrap();
    *slot.lock().unwrap() = Some(sub.clone());
    assert_eq!(emitter.emit(Job(0)).unwrap().delivered, 1);
    assert_eq!(entries(&ran), vec!["0"]);
    assert_eq!(sub.stats().discarded, 2);
    assert_eq!(linker.dead_letter_counts().discarded_after_unsubscribe, 2);
    assert_eq!(
        *letters.lock().unwrap(),
        vec![
            (DeadLetterReason::DiscardedAfterUnsubscribe, Some(Job(1))),
            (DeadLetterReason::DiscardedAfterUnsubscribe, Some(Job(2)))
        ]
    );
}

struct PanicOnDrop(Arc<AtomicUsize>);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("drop panicked");
    }
}

#[test]
fn a_payload_whose_drop_panics_is_reported_not_propagated() {
    let errors = log();
    let linker = linker_with_errors(&errors);
    let drops = Arc::new(AtomicUsize::new(0));
    let _a = linker
        .on::<PanicOnDrop>()
        .call(|_: &PanicOnDrop| {})
        .unwrap();
    let _b = linker
        .on::<PanicOnDrop>()
        .call(|_: &PanicOnDrop| {})
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(
        emitter.emit(PanicOnDrop(drops.clone())).unwrap().delivered,
        2
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
    assert!(entries(&errors)[0].contains("Drop panicked"));
}

#[test]
fn every_payload_is_dropped_exactly_once() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let emitter_drops = drops.clone();
    for subscribers in 0..4 {
        let linker = Linker::new();
        let subs: Vec<_> = (0..subscribers)
            .map(|_| linker.on::<Counted>().call(|_: &Counted| {}).unwrap())
            .collect();
        let _any = (subscribers == 3).then(|| linker.on_any().call(|_: &Event<'_>| {}).unwrap());
        let delivery = Emitter::inline(&linker)
            .emit(Counted(emitter_drops.clone()))
            .unwrap();
        assert_eq!(
            delivery.delivered,
            subscribers + usize::from(subscribers == 3)
        );
        drop(subs);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn an_emit_with_no_subscribers_is_ok_with_nothing_delivered() {
    let linker = Linker::new();
    let delivery = Emitter::inline(&linker).emit(Job(1)).unwrap();
    assert_eq!(delivery, Delivery::default());
}

#[test]
fn call_with_meta_sees_the_id_key_and_instant() {
    let linker = Linker::new();
    let metas = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (metas.clone(), metas.clone());
    let _typed = linker
        .on::<Job>()
        .call_with_meta(move |_: &Job, meta: &ventus::EventMeta| {
            a.lock().unwrap().push(meta.clone())
        })
        .unwrap();
    let _any = linker
        .on_any()
        .call_with_meta(move |_: &Event<'_>, meta: &ventus::EventMeta| {
            b.lock().unwrap().push(meta.clone())
        })
        .unwrap();
    let before = std::time::Instant::now();
    assert_eq!(Emitter::inline(&linker).emit(Job(1)).unwrap().delivered, 2);
    assert_eq!(Emitter::inline(&linker).emit(Job(2)).unwrap().delivered, 2);
    let metas = metas.lock().unwrap();
    assert_eq!(metas.len(), 4);
    assert_eq!(metas[0].id, metas[1].id, "one id per emission");
    assert_ne!(metas[0].id, metas[2].id);
    assert!(
        metas
            .iter()
            .all(|m| m.key == EventKey::of::<Job>() && m.emitted_at >= before)
    );
}

/// A strategy that defers every emission until it is flushed (the role of seed 001's
/// background-task emitter).
#[derive(Debug, Default)]
struct Deferred(Mutex<Vec<ventus::DeferredEmission>>);

impl Strategy for Deferred {
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
        if let Some(deferred) = emission.defer() {
            self.0.lock().unwrap().push(deferred);
        }
        Ok(Delivery::default())
    }
}

#[test]
fn a_custom_strategy_can_defer_and_the_strategy_can_be_switched() {
    let linker = Linker::new();
    let seen = log();
    let s = seen.clone();
    let _sub = linker
        .on::<Job>()
        .call(move |job: &Job| push(&s, job.0.to_string()))
        .unwrap();
    let strategy = Arc::new(Deferred::default());
    let deferred = Emitter::with_strategy_arc(&linker, strategy.clone());
    assert_eq!(deferred.emit(Job(1)).unwrap().delivered, 0);
    assert_eq!(deferred.emit(Job(2)).unwrap().delivered, 0);
    assert!(entries(&seen).is_empty(), "nothing runs before the flush");
    let queued: Vec<_> = std::mem::take(&mut *strategy.0.lock().unwrap());
    for emission in queued {
        assert_eq!(emission.key(), &EventKey::of::<Job>());
        assert_eq!(emission.deliver_inline().unwrap().delivered, 1);
    }
    assert_eq!(entries(&seen), vec!["1", "2"]);
    // The same emitter, switched to inline, delivers at once; subscriptions untouched.
    let inline = deferred.switch(ventus::Inline);
    assert_eq!(inline.emit(Job(3)).unwrap().delivered, 1);
    assert_eq!(entries(&seen), vec!["1", "2", "3"]);
}

#[test]
fn a_strategy_that_sends_elsewhere_does_not_claim_once_subscriptions() {
    #[derive(Debug, Default)]
    struct Elsewhere(Mutex<Vec<u32>>);
    impl Strategy for Elsewhere {
        fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
            let job = emission
                .payload()
                .and_then(|p| p.downcast_ref::<Job>())
                .unwrap();
            self.0.lock().unwrap().push(job.0);
            Ok(Delivery::default())
        }
    }
    let linker = Linker::new();
    let once = linker.on::<Job>().once().call(|_: &Job| {}).unwrap();
    let remote = Arc::new(Elsewhere::default());
    let emitter = Emitter::with_strategy_arc(&linker, remote.clone());
    assert_eq!(emitter.emit(Job(4)).unwrap().delivered, 0);
    assert!(once.is_active());
    assert_eq!(*remote.0.lock().unwrap(), vec![4]);
}

#[test]
fn emit_errors_debug_without_t_debug() {
    struct Opaque;
    let error = EmitError::TooDeep(Opaque);
    assert_eq!(format!("{error:?}"), "TooDeep(\"..\")");
    assert!(error.to_string().contains("too deep"));
    assert!(matches!(error.into_inner(), Opaque));
}

struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb");
    }
}

#[test]
fn a_panic_around_the_handler_never_wedges_the_subscription() {
    let errors = log();
    let linker = linker_with_errors(&errors);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    // The handler's Ok value panics when dropped (there is no success callback to take it).
    let sub = linker
        .on::<u8>()
        .call(move |_: &u8| {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Oops>(Bomb)
        })
        .unwrap();
    let emitter = Emitter::inline(&linker);
    for n in 0..3u8 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(sub.stats().queued, 0);
    assert_eq!(sub.stats().panicked, 3);
}

#[test]
fn an_unwanted_payload_whose_drop_panics_does_not_reach_the_caller() {
    let errors = log();
    let linker = linker_with_errors(&errors);
    let drops = Arc::new(AtomicUsize::new(0));
    let delivery = Emitter::inline(&linker)
        .emit(PanicOnDrop(drops.clone()))
        .unwrap();
    assert_eq!(delivery.delivered, 0);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(entries(&errors)[0].contains("Drop panicked"));
}

#[test]
fn a_panicking_debug_sink_loses_no_once_subscription() {
    let ran = Arc::new(AtomicUsize::new(0));
    let linker = Linker::builder()
        .debug(true)
        .debug_sink(|_, _| panic!("sink"))
        .build()
        .unwrap();
    let r = ran.clone();
    let _once = linker
        .on::<u8>()
        .once()
        .call(move |_: &u8| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(Emitter::inline(&linker).emit(1u8).unwrap().delivered, 1);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn inline_emits_from_four_threads_run_exactly_once_and_never_overlap() {
    let linker = Linker::new();
    let inside = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (count, sum) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (i, c, s) = (inside.clone(), count.clone(), sum.clone());
    let _sub = linker
        .on::<usize>()
        .call(move |n: &usize| {
            assert!(!i.swap(true, Ordering::SeqCst), "two invocations at once");
            c.fetch_add(1, Ordering::SeqCst);
            s.fetch_add(*n, Ordering::SeqCst);
            i.store(false, Ordering::SeqCst);
        })
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let emitter = Emitter::inline(&linker);
            scope.spawn(move || {
                for n in 1..=10_000usize {
                    assert_eq!(emitter.emit(n).unwrap().delivered, 1);
                }
            });
        }
    });
    // An emit that found the subscription running elsewhere queued its event for that
    // runner: every event ran before the last emit returned.
    assert_eq!(count.load(Ordering::SeqCst), 40_000);
    assert_eq!(sum.load(Ordering::SeqCst), 4 * 10_000 * 10_001 / 2);
}

#[test]
fn remove_event_discards_what_is_queued() {
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let ran = log();
    let (e, r, l) = (emitter.clone(), ran.clone(), linker.clone());
    let _sub = linker
        .on::<Job>()
        .call(move |job: &Job| {
            push(&r, job.0.to_string());
            if job.0 == 0 {
                assert_eq!(e.emit(Job(1)).unwrap().delivered, 1);
                assert!(l.remove_event(&EventKey::of::<Job>()));
            }
        })
        .unwrap();
    assert_eq!(emitter.emit(Job(0)).unwrap().delivered, 1);
    assert_eq!(entries(&ran), vec!["0"]);
    assert_eq!(linker.dead_letter_counts().discarded_after_unsubscribe, 1);
}
