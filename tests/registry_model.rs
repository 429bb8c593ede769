//! A differential property test: random sequences of subscribe / once / unsubscribe /
//! remove / emit against a single-threaded reference model of the registry.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use ventus::{Emitter, Event, EventKey, Linker, Subscription};

struct A;
struct B;

/// Keys 0..4 are names, 4 and 5 the types `A` and `B`, 6 is `Any`.
const KEYS: u8 = 7;

fn key(k: u8) -> EventKey {
    match k {
        0..=3 => EventKey::named(format!("k{k}")),
        4 => EventKey::of::<A>(),
        5 => EventKey::of::<B>(),
        _ => EventKey::Any,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe {
        keys: Vec<u8>,
        once: bool,
        typed: bool,
    },
    Unsubscribe(usize),
    RemoveSubscription(usize),
    RemoveLink(u8, usize),
    RemoveEvent(u8),
    RemoveAll,
    Emit(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::collection::vec(0..KEYS, 1..4), any::<bool>(), any::<bool>())
            .prop_map(|(keys, once, typed)| Op::Subscribe { keys, once, typed }),
        1 => (0usize..16).prop_map(Op::Unsubscribe),
        1 => (0usize..16).prop_map(Op::RemoveSubscription),
        1 => (0..KEYS, 0usize..16).prop_map(|(k, s)| Op::RemoveLink(k, s)),
        1 => (0..KEYS).prop_map(Op::RemoveEvent),
        1 => Just(Op::RemoveAll),
        6 => (0..KEYS - 1).prop_map(Op::Emit),
    ]
}

struct ModelSub {
    keys: BTreeSet<u8>,
    once: bool,
    alive: bool,
    calls: usize,
}

struct Real {
    sub: Subscription,
    calls: Arc<AtomicUsize>,
}

fn subscribe(linker: &Linker, keys: &BTreeSet<u8>, order: &[u8], once: bool, typed: bool) -> Real {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let count = move || {
        c.fetch_add(1, Ordering::SeqCst);
    };
    let single = (keys.len() == 1).then(|| *keys.iter().next().unwrap());
    let sub = match (single, typed) {
        (Some(4), true) => {
            let builder = linker.on::<A>();
            let builder = if once { builder.once() } else { builder };
            builder.call(move |_: &A| count()).unwrap()
        }
        (Some(k @ 0..=3), true) => {
            let builder = linker.on_named(&format!("k{k}"));
            let builder = if once { builder.once() } else { builder };
            builder.call(move |_: &()| count()).unwrap()
        }
        _ => {
            // Keys in the drawn order, duplicates included: they must collapse.
            let builder = linker.subscribe(order.iter().map(|&k| key(k)));
            let builder = if once { builder.once() } else { builder };
            builder.call(move |_: &Event<'_>| count()).unwrap()
        }
    };
    Real { sub, calls }
}

fn check(linker: &Linker, model: &[ModelSub], real: &[Real]) {
    let live: Vec<usize> = (0..model.len()).filter(|&i| model[i].alive).collect();
    assert_eq!(linker.subscription_count(), live.len());
    let keys: BTreeSet<u8> = live
        .iter()
        .flat_map(|&i| model[i].keys.iter().copied())
        .collect();
    assert_eq!(linker.event_count(), keys.len());
    assert_eq!(linker.is_empty(), live.is_empty());
    for k in 0..KEYS {
        let expected: Vec<_> = live
            .iter()
            .filter(|&&i| model[i].keys.contains(&k))
            .map(|&i| real[i].sub.id())
            .collect();
        let actual: Vec<_> = linker
            .subscriptions_of(&key(k))
            .iter()
            .map(Subscription::id)
            .collect();
        assert_eq!(actual, expected, "subscriptions of key {k}");
        assert_eq!(linker.contains_event(&key(k)), !expected.is_empty());
    }
    for (i, sub) in model.iter().enumerate() {
        assert_eq!(
            real[i].calls.load(Ordering::SeqCst),
            sub.calls,
            "calls of sub {i}"
        );
        assert_eq!(linker.contains_subscription(&real[i].sub), sub.alive);
        assert_eq!(real[i].sub.is_active(), sub.alive);
        let mut events: Vec<EventKey> = linker.events_of(&real[i].sub);
        let mut expected: Vec<EventKey> = if sub.alive {
            sub.keys.iter().map(|&k| key(k)).collect()
        } else {
            Vec::new()
        };
        events.sort_by_key(|k| format!("{k:?}"));
        expected.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(events, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_registry_matches_a_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        let linker = Linker::new();
        let emitter = Emitter::inline(&linker);
        let mut model: Vec<ModelSub> = Vec::new();
        let mut real: Vec<Real> = Vec::new();
        for op in ops {
            match op {
                Op::Subscribe { keys, once, typed } => {
                    let set: BTreeSet<u8> = keys.iter().copied().collect();
                    real.push(subscribe(&linker, &set, &keys, once, typed));
                    model.push(ModelSub { keys: set, once, alive: true, calls: 0 });
                }
                Op::Unsubscribe(i) | Op::RemoveSubscription(i) if i < model.len() => {
                    let expected = model[i].alive;
                    let removed = match op {
                        Op::Unsubscribe(_) => real[i].sub.unsubscribe(),
                        _ => linker.remove_subscription(&real[i].sub),
                    };
                    prop_assert_eq!(removed, expected);
                    model[i].alive = false;
                }
                Op::RemoveLink(k, i) if i < model.len() => {
                    let linked = model[i].alive && model[i].keys.contains(&k);
                    prop_assert_eq!(linker.remove(&key(k), &real[i].sub), linked);
                    if linked {
                        model[i].keys.remove(&k);
                        if model[i].keys.is_empty() {
                            model[i].alive = false;
                        }
                    }
                }
                Op::RemoveEvent(k) => {
                    let mut any = false;
                    for sub in model.iter_mut().filter(|s| s.alive && s.keys.contains(&k)) {
                        any = true;
                        sub.keys.remove(&k);
                        if sub.keys.is_empty() {
                            sub.alive = false;
                        }
                    }
                    prop_assert_eq!(linker.remove_event(&key(k)), any);
                }
                Op::RemoveAll => {
                    let any = model.iter().any(|s| s.alive);
                    for sub in &mut model {
                        sub.alive = false;
                    }
                    prop_assert_eq!(linker.remove_all(), any);
                }
                Op::Emit(k) => {
                    let mut expected = 0;
                    for sub in model.iter_mut().filter(|s| s.alive && (s.keys.contains(&k) || s.keys.contains(&6))) {
                        sub.calls += 1;
                        expected += 1;
                        if sub.once {
                            sub.alive = false;
                        }
                    }
                    let delivery = match k {
                        0..=3 => emitter.emit_named(&format!("k{k}"), ()).unwrap(),
                        4 => emitter.emit(A).map_err(|_| "emit failed").unwrap(),
                        _ => emitter.emit(B).map_err(|_| "emit failed").unwrap(),
                    };
                    prop_assert_eq!(delivery.delivered, expected);
                }
                _ => {}
            }
            check(&linker, &model, &real);
        }
    }
}
