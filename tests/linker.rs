//! The linker's registry behaviour, ported from Pyventus's EventLinker tests and
//! seed-semantics §1.2, §1.12; each deliberate deviation is tested as the deviation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ventus::{BuildError, Emitter, Event, EventKey, Linker, SubscribeError};

#[derive(Debug, Clone, PartialEq)]
struct Login(u32);
#[derive(Debug, Clone, PartialEq)]
struct Logout(u32);

fn counter() -> (Arc<AtomicUsize>, impl Fn() -> usize) {
    let count = Arc::new(AtomicUsize::new(0));
    let read = count.clone();
    (count, move || read.load(Ordering::SeqCst))
}

#[test]
fn regular_subscription_runs_every_time() {
    let linker = Linker::new();
    let (count, read) = counter();
    let sub = linker
        .on::<Login>()
        .call(move |_: &Login| {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::inline(&linker);
    for i in 0..3 {
        assert_eq!(emitter.emit(Login(i)).unwrap().delivered, 1);
    }
    assert_eq!(read(), 3);
    assert!(!sub.is_once());
    assert!(sub.is_active());
}

#[test]
fn typed_keys_match_exact_type_only() {
    // Deviation from Pyventus: types match by TypeId, not by class name.
    mod a {
        pub struct Event;
    }
    mod b {
        pub struct Event;
    }
    let linker = Linker::new();
    let (count, read) = counter();
    let _sub = linker
        .on::<a::Event>()
        .call(move |_: &a::Event| {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit(b::Event).unwrap().delivered, 0);
    assert_eq!(emitter.emit(a::Event).unwrap().delivered, 1);
    assert_eq!(read(), 1);
}

#[test]
fn same_closure_subscribed_twice_runs_twice() {
    let linker = Linker::new();
    let (count, read) = counter();
    let handler = move |_: &Login| {
        count.fetch_add(1, Ordering::SeqCst);
    };
    let first = linker.on::<Login>().call(handler.clone()).unwrap();
    let second = linker.on::<Login>().call(handler).unwrap();
    assert_ne!(first.id(), second.id());
    assert_eq!(
        Emitter::inline(&linker).emit(Login(1)).unwrap().delivered,
        2
    );
    assert_eq!(read(), 2);
    assert_eq!(linker.subscription_count(), 2);
}

#[test]
fn multi_event_subscription_with_mixed_keys_and_duplicates() {
    let linker = Linker::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let sub = linker
        .subscribe([
            EventKey::of::<Login>(),
            EventKey::named("audit"),
            EventKey::of::<Login>(),
            EventKey::named("audit"),
        ])
        .call(move |event: &Event<'_>| {
            log.lock().unwrap().push(event.key().to_string());
        })
        .unwrap();
    assert_eq!(sub.events().len(), 2, "duplicates collapse");
    assert_eq!(linker.event_count(), 2);
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit(Login(1)).unwrap().delivered, 1);
    assert_eq!(emitter.emit_named("audit", ()).unwrap().delivered, 1);
    assert_eq!(emitter.emit(Logout(1)).unwrap().delivered, 0);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].contains("Login"));
    assert_eq!(seen[1], "\"audit\"");
}

#[test]
fn subscribe_without_keys_or_with_an_empty_name_is_an_error() {
    let linker = Linker::new();
    let none: [EventKey; 0] = [];
    assert_eq!(
        linker.subscribe(none).call(|_: &Event<'_>| {}).unwrap_err(),
        SubscribeError::NoKeys
    );
    assert_eq!(
        linker.on_named("").call(|_: &()| {}).unwrap_err(),
        SubscribeError::EmptyName
    );
    assert_eq!(
        linker
            .subscribe(["ok", ""])
            .call(|_: &Event<'_>| {})
            .unwrap_err(),
        SubscribeError::EmptyName
    );
    assert!(linker.is_empty(), "a refused subscribe registers nothing");
}

#[test]
fn any_receives_typed_and_named_emissions_and_learns_the_key() {
    let linker = Linker::new();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let log = keys.clone();
    let _sub = linker
        .on_any()
        .call(move |event: &Event<'_>| log.lock().unwrap().push(event.key().clone()))
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit(Login(1)).unwrap().delivered, 1);
    assert_eq!(
        emitter.emit_named("unregistered", 5u8).unwrap().delivered,
        1
    );
    assert_eq!(
        *keys.lock().unwrap(),
        vec![EventKey::of::<Login>(), EventKey::named("unregistered")]
    );
}

#[test]
fn a_subscription_on_a_key_and_on_any_runs_once_per_emission() {
    let linker = Linker::new();
    let (count, read) = counter();
    let _sub = linker
        .subscribe([EventKey::of::<Login>(), EventKey::Any])
        .call(move |_: &Event<'_>| {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(
        Emitter::inline(&linker).emit(Login(1)).unwrap().delivered,
        1
    );
    assert_eq!(read(), 1);
}

#[test]
fn ellipsis_is_an_ordinary_name() {
    // Deviation from Pyventus, where the name "ellipsis" is the wildcard.
    let linker = Linker::new();
    let (count, read) = counter();
    let _sub = linker
        .on_named("ellipsis")
        .call(move |_: &()| {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit(Login(1)).unwrap().delivered, 0);
    assert_eq!(emitter.emit_named("other", ()).unwrap().delivered, 0);
    assert_eq!(emitter.emit_named("ellipsis", ()).unwrap().delivered, 1);
    assert_eq!(read(), 1);
}

#[test]
fn namespaces_are_isolated() {
    let first = Linker::new();
    let second = Linker::new();
    let (count, read) = counter();
    let c = count.clone();
    let _a = first
        .on_any()
        .call(move |_: &Event<'_>| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let _b = second
        .on::<Login>()
        .call(move |_: &Login| {
            count.fetch_add(100, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(Emitter::inline(&first).emit(Login(1)).unwrap().delivered, 1);
    assert_eq!(read(), 1);
    // A subscription of one linker is unknown to another.
    assert!(!second.contains_subscription(&_a));
    assert!(!second.remove_subscription(&_a));
    assert!(second.events_of(&_a).is_empty());
}

#[test]
fn max_subscribers_is_all_or_nothing() {
    let linker = Linker::builder().max_subscribers(1).build().unwrap();
    let _a = linker.on_named("a").call(|_: &()| {}).unwrap();
    let error = linker
        .subscribe(["b", "a"])
        .call(|_: &Event<'_>| {})
        .unwrap_err();
    assert_eq!(
        error,
        SubscribeError::TooManySubscribers {
            key: "\"a\"".into(),
            max: 1
        }
    );
    assert!(
        !linker.contains_event(&EventKey::named("b")),
        "nothing inserted for b"
    );
    assert_eq!(linker.subscription_count(), 1);
    assert_eq!(
        Linker::builder().max_subscribers(0).build().unwrap_err(),
        BuildError::ZeroMaxSubscribers
    );
}

#[test]
fn a_fired_once_subscription_frees_its_slot() {
    let linker = Linker::builder().max_subscribers(1).build().unwrap();
    let once = linker.on::<Login>().once().call(|_: &Login| {}).unwrap();
    assert!(linker.on::<Login>().call(|_: &Login| {}).is_err());
    assert_eq!(
        Emitter::inline(&linker).emit(Login(1)).unwrap().delivered,
        1
    );
    assert!(!once.is_active());
    assert!(linker.on::<Login>().call(|_: &Login| {}).is_ok());
}

#[test]
fn max_subscribers_holds_under_concurrent_subscribes() {
    let linker = Linker::builder().max_subscribers(5).build().unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let linker = linker.clone();
            let ok = ok.clone();
            scope.spawn(move || {
                for _ in 0..10 {
                    if linker.on::<Login>().call(|_: &Login| {}).is_ok() {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(ok.load(Ordering::SeqCst), 5);
    assert_eq!(linker.subscriptions_of(&EventKey::of::<Login>()).len(), 5);
}

#[test]
fn removal_return_values() {
    let linker = Linker::new();
    let both = linker
        .subscribe([EventKey::of::<Login>(), EventKey::of::<Logout>()])
        .call(|_: &Event<'_>| {})
        .unwrap();
    let login_only = linker.on::<Login>().call(|_: &Login| {}).unwrap();

    // remove(key, sub): one link.
    assert!(!linker.remove(&EventKey::named("nope"), &both));
    assert!(linker.remove(&EventKey::of::<Logout>(), &both));
    assert!(
        !linker.remove(&EventKey::of::<Logout>(), &both),
        "no longer linked"
    );
    assert!(linker.contains_subscription(&both), "still on Login");
    assert!(
        !linker.contains_event(&EventKey::of::<Logout>()),
        "empty key vanished"
    );

    // remove_event: subscriptions linked only to it vanish.
    assert!(linker.remove_event(&EventKey::of::<Login>()));
    assert!(!linker.remove_event(&EventKey::of::<Login>()));
    assert!(!linker.contains_subscription(&both));
    assert!(!linker.contains_subscription(&login_only));
    assert!(!both.unsubscribe(), "already gone");
    assert!(linker.is_empty());

    // remove_subscription and remove_all.
    let sub = linker.on::<Login>().call(|_: &Login| {}).unwrap();
    assert!(linker.remove_subscription(&sub));
    assert!(!linker.remove_subscription(&sub));
    assert!(!sub.unsubscribe());
    assert!(!linker.remove_all(), "already empty");
    let sub = linker.on::<Login>().call(|_: &Login| {}).unwrap();
    assert!(linker.remove_all());
    assert!(!sub.is_active());
    assert!(!sub.unsubscribe());
}

#[test]
fn last_link_removed_removes_the_subscription() {
    let linker = Linker::new();
    let sub = linker.on::<Login>().call(|_: &Login| {}).unwrap();
    assert!(linker.remove(&EventKey::of::<Login>(), &sub));
    assert!(!linker.contains_subscription(&sub));
    assert!(!sub.is_active());
    assert!(sub.events().is_empty());
}

#[test]
fn queries() {
    let linker = Linker::new();
    assert!(linker.is_empty());
    assert_eq!(linker.event_count(), 0);
    let a = linker.on::<Login>().call(|_: &Login| {}).unwrap();
    let b = linker
        .subscribe([EventKey::of::<Login>(), EventKey::named("x"), EventKey::Any])
        .call(|_: &Event<'_>| {})
        .unwrap();
    assert!(!linker.is_empty());
    assert_eq!(linker.event_count(), 3);
    assert_eq!(linker.subscription_count(), 2);
    let mut events = linker.events();
    events.sort_by_key(|key| key.to_string());
    assert_eq!(events.len(), 3);
    assert!(events.contains(&EventKey::Any));
    assert_eq!(linker.subscriptions(), vec![a.clone(), b.clone()]);
    assert_eq!(linker.events_of(&a), vec![EventKey::of::<Login>()]);
    assert_eq!(linker.events_of(&b).len(), 3);
    assert_eq!(b.events(), linker.events_of(&b));
    assert_eq!(
        linker.subscriptions_of(&EventKey::of::<Login>()),
        vec![a.clone(), b.clone()]
    );
    assert!(
        linker
            .subscriptions_of(&EventKey::named("unknown"))
            .is_empty()
    );
    assert!(linker.contains_event(&EventKey::named("x")));
    assert!(linker.contains_event(&EventKey::Any));
    assert!(!linker.contains_event(&EventKey::of::<Logout>()));
    assert!(linker.contains_subscription(&a));
    assert!(linker.are_linked(&EventKey::Any, &b));
    assert!(!linker.are_linked(&EventKey::Any, &a));
    assert!(!linker.are_linked(&EventKey::named(""), &a));
}

#[test]
fn a_guard_unsubscribes_on_drop() {
    let linker = Linker::new();
    let sub = linker.on::<Login>().call(|_: &Login| {}).unwrap();
    {
        let _guard = sub.guard();
        assert!(linker.contains_subscription(&sub));
    }
    assert!(!linker.contains_subscription(&sub));
    let sub = linker.on::<Login>().call(|_: &Login| {}).unwrap();
    let kept = sub.guard().disarm();
    assert!(linker.contains_subscription(&kept));
}

#[test]
fn unsubscribe_four_ways() {
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let subs: Vec<_> = (0..4)
        .map(|_| linker.on::<Login>().call(|_: &Login| {}).unwrap())
        .collect();
    assert!(subs[0].unsubscribe());
    assert_eq!(subs[1].unsubscribe_and_wait(), Ok(true));
    drop(subs[2].guard());
    assert!(linker.remove_subscription(&subs[3]));
    assert_eq!(emitter.emit(Login(1)).unwrap().delivered, 0);
    assert!(linker.is_empty());
}

#[test]
fn builder_and_handle_types_are_debug_clone_send_sync() {
    fn check<T: Clone + Send + Sync + std::fmt::Debug>() {}
    check::<Linker>();
    check::<Emitter>();
    check::<ventus::Subscription>();
    let linker = Linker::builder().name("named").build().unwrap();
    assert!(format!("{linker:?}").contains("named"));
    assert_eq!(
        Linker::builder().default_capacity(0).build().unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert_eq!(
        linker
            .on::<Login>()
            .capacity(0)
            .call(|_: &Login| {})
            .unwrap_err(),
        SubscribeError::ZeroCapacity
    );
    assert!(
        linker
            .on::<Login>()
            .capacity(usize::MAX)
            .call(|_: &Login| {})
            .is_ok()
    );
}

#[test]
fn subscribing_stays_cheap_with_many_events() {
    // Behaviour at scale (not speed): 20k named events, then a subscribe and an emit on a
    // hot key still find exactly their subscriptions.
    let linker = Linker::new();
    for i in 0..20_000 {
        let _ = linker
            .on_named(&format!("event-{i}"))
            .call(|_: &()| {})
            .unwrap();
    }
    let (count, read) = counter();
    let _hot = linker
        .on::<Login>()
        .call(move |_: &Login| {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(linker.event_count(), 20_001);
    assert_eq!(
        Emitter::inline(&linker).emit(Login(1)).unwrap().delivered,
        1
    );
    assert_eq!(
        Emitter::inline(&linker)
            .emit_named("event-19999", ())
            .unwrap()
            .delivered,
        1
    );
    assert_eq!(read(), 1);
}
