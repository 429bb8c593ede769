//! `LocalEmitter`: a handle that caches the registry snapshot and the last route must
//! deliver exactly what its `Emitter` delivers, and see every registry change made before
//! the emit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use ventus::{Actors, EmitError, Emitter, Linker, Placement, Runtime, Spin, Subscription};

fn counter(linker: &Linker) -> (Subscription, Arc<AtomicU64>) {
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let sub = linker
        .on::<u64>()
        .call(move |n: &u64| {
            s.fetch_add(*n, Ordering::Relaxed);
        })
        .unwrap();
    (sub, sum)
}

#[test]
fn sees_subscribe_and_unsubscribe_made_between_its_emits() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::new();
    let mut local = Emitter::new(&linker, Actors::new(&runtime)).local();
    assert_eq!(local.emit(1u64).unwrap().delivered, 0);

    let (first, first_sum) = counter(&linker);
    assert_eq!(local.emit(2u64).unwrap().delivered, 1);
    let (second, second_sum) = counter(&linker);
    assert_eq!(local.emit(4u64).unwrap().delivered, 2);
    // Another type in between: the one-entry route cache is replaced, then refilled.
    assert_eq!(local.emit("other").unwrap().delivered, 0);
    assert_eq!(local.emit(8u64).unwrap().delivered, 2);
    // (Unsubscribing discards what is still queued: let it run first.)
    runtime.wait_idle().unwrap();
    first.unsubscribe();
    assert_eq!(local.emit(16u64).unwrap().delivered, 1);
    runtime.wait_idle().unwrap();
    assert_eq!(first_sum.load(Ordering::Relaxed), 2 + 4 + 8);
    assert_eq!(second_sum.load(Ordering::Relaxed), 4 + 8 + 16);
    second.unsubscribe();
    assert_eq!(local.emit(32u64).unwrap().delivered, 0);
}

#[test]
fn once_any_and_by_value_subscriptions_behave_as_through_the_emitter() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::new();
    let once_count = Arc::new(AtomicU64::new(0));
    let c = once_count.clone();
    let _once = linker
        .on::<u64>()
        .once()
        .call(move |_: &u64| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let (_plain, plain_sum) = counter(&linker);
    let mut local = Emitter::new(&linker, Actors::new(&runtime)).local();
    assert_eq!(local.emit(1u64).unwrap().delivered, 2);
    assert_eq!(local.emit(2u64).unwrap().delivered, 1);

    let any_count = Arc::new(AtomicU64::new(0));
    let a = any_count.clone();
    let _any = linker
        .on_any()
        .call(move |_: &ventus::Event<'_>| {
            a.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(local.emit(4u64).unwrap().delivered, 2);

    let values = Arc::new(AtomicU64::new(0));
    let v = values.clone();
    let _by_value = linker
        .on::<u64>()
        .by_value()
        .call(move |n: &u64| {
            v.fetch_add(*n, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(local.emit(8u64).unwrap().delivered, 3);
    runtime.wait_idle().unwrap();
    assert_eq!(once_count.load(Ordering::Relaxed), 1);
    assert_eq!(plain_sum.load(Ordering::Relaxed), 1 + 2 + 4 + 8);
    assert_eq!(any_count.load(Ordering::Relaxed), 2);
    assert_eq!(values.load(Ordering::Relaxed), 8);
}

#[test]
fn after_shutdown_the_event_comes_back() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let linker = Linker::new();
    let (_sub, sum) = counter(&linker);
    let mut local = Emitter::new(&linker, Actors::new(&runtime)).local();
    assert_eq!(local.emit(5u64).unwrap().delivered, 1);
    assert!(runtime.shutdown().drained);
    assert_eq!(sum.load(Ordering::Relaxed), 5);
    match local.emit(7u64) {
        Err(EmitError::Shutdown(7)) => {}
        other => panic!("expected Shutdown(7), got {other:?}"),
    }
}

#[test]
fn another_runtimes_dedicated_subscription_takes_the_general_path() {
    // The route is built for the linker's list; an emitter of a different runtime must not
    // push into a dedicated thread whose gate it did not enter.
    let home = Runtime::builder().workers(1).build().unwrap();
    let other = Runtime::builder().workers(1).build().unwrap();
    let linker = Linker::new();
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let _sub = linker
        .on::<u64>()
        .runtime(&home)
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(move |n: &u64| {
            s.fetch_add(*n, Ordering::Relaxed);
        })
        .unwrap();
    let mut from_home = Emitter::new(&linker, Actors::new(&home)).local();
    let mut from_other = Emitter::new(&linker, Actors::new(&other)).local();
    assert_eq!(from_home.emit(1u64).unwrap().delivered, 1);
    assert_eq!(from_other.emit(2u64).unwrap().delivered, 1);
    home.wait_idle().unwrap();
    assert_eq!(sum.load(Ordering::Relaxed), 3);
    // The other runtime's shutdown does not stop deliveries to the home runtime's thread.
    assert!(other.shutdown().drained);
    assert_eq!(from_home.emit(4u64).unwrap().delivered, 1);
    home.wait_idle().unwrap();
    assert_eq!(sum.load(Ordering::Relaxed), 7);
    assert!(home.shutdown().drained);
    match from_home.emit(8u64) {
        Err(EmitError::Shutdown(8)) => {}
        other => panic!("expected Shutdown(8), got {other:?}"),
    }
}

#[test]
fn one_local_emitter_per_thread_exact_counts_under_churn() {
    const PER_THREAD: u64 = 50_000;
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::new();
    let (_a, a_sum) = counter(&linker);
    let (_b, b_sum) = counter(&linker);
    let transient_ran = Arc::new(AtomicU64::new(0));
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let delivered: u64 = thread::scope(|scope| {
        let emitters: Vec<_> = (0..3)
            .map(|_| {
                let mut local = emitter.local();
                scope.spawn(move || {
                    let mut delivered = 0;
                    for n in 1..=PER_THREAD {
                        let d = local.emit(n).unwrap().delivered as u64;
                        assert!(d >= 2, "the two stable subscriptions always match");
                        delivered += d;
                    }
                    delivered
                })
            })
            .collect();
        // Churn on the same key meanwhile: every emit's route must stay exact.
        scope.spawn(|| {
            for _ in 0..200 {
                let t = transient_ran.clone();
                let transient = linker
                    .on::<u64>()
                    .call(move |_: &u64| {
                        t.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                transient.unsubscribe();
            }
        });
        emitters.into_iter().map(|h| h.join().unwrap()).sum()
    });
    runtime.wait_idle().unwrap();
    let expected = 3 * PER_THREAD * (PER_THREAD + 1) / 2;
    assert_eq!(a_sum.load(Ordering::Relaxed), expected);
    assert_eq!(b_sum.load(Ordering::Relaxed), expected);
    // Every delivery an emit reported ran, or was discarded (and counted) because its
    // transient subscription went away first: nothing lost silently.
    let discarded = linker.dead_letter_counts().discarded_after_unsubscribe;
    assert_eq!(
        delivered,
        2 * 3 * PER_THREAD + transient_ran.load(Ordering::Relaxed) + discarded
    );
}
