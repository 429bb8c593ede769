//! loom models of the linker's and the subscriptions' lock-free protocols, run against the
//! real crate compiled with `--cfg loom` (its `src/sync.rs` facade swaps in loom's atomics,
//! locks and thread-locals, and stand-ins for the snapshot cell and the mailbox).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`.
//! Each model names the `--cfg ventus_mutant="…"` that breaks its protocol on purpose;
//! `loom-tests/README.md` lists them with their failing output.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use ventus::{Emitter, Event, EventKey, Linker};

/// Once claim vs a second emitter vs `unsubscribe()`: a once subscription linked to two
/// names, emitted to from two threads while a third unsubscribes, runs at most once, and
/// exactly one of {it ran, unsubscribe returned true} happens; the registry ends empty.
///
/// Broken by `ventus_mutant="once_claim_load_store"` (a check-then-store claim).
#[test]
fn once_claim_vs_second_emitter_vs_unsubscribe() {
    loom::model(|| {
        let linker = Linker::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let once = linker
            .subscribe(["a", "b"])
            .once()
            .call(move |_: &Event<'_>| {
                counted.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let emitters: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let emitter = Emitter::inline(&linker);
                thread::spawn(move || {
                    let _ = emitter.emit_named(name, ()).unwrap();
                })
            })
            .collect();
        let unsubscribed = once.unsubscribe();
        for emitter in emitters {
            emitter.join().unwrap();
        }
        let ran = calls.load(Ordering::Relaxed);
        assert_eq!(
            ran + usize::from(unsubscribed),
            1,
            "ran {ran}, unsubscribed {unsubscribed}"
        );
        assert!(linker.is_empty());
    });
}

/// Registry write vs emit, and the runner's re-check: a stable subscription sees every
/// emission; an event queued for a subscription that is then unsubscribed does not start
/// (it is a dead letter); an emission made after `unsubscribe` returned does not reach it.
///
/// Broken by `ventus_mutant="unsubscribe_unchecked"` (the runner does not re-check the
/// state word before each invocation).
#[test]
fn registry_write_vs_emit_and_unsubscribe_discards_queued() {
    loom::model(|| {
        let linker = Linker::new();
        let emitter = Emitter::inline(&linker);
        let stable = Arc::new(AtomicUsize::new(0));
        let stable_count = stable.clone();
        let _stable = linker
            .on::<u32>()
            .call(move |_: &u32| {
                stable_count.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();

        let queued = Arc::new(AtomicBool::new(false));
        let unsubscribed = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let (q, u, s, e) = (
            queued.clone(),
            unsubscribed.clone(),
            seen.clone(),
            emitter.clone(),
        );
        let leaving = linker
            .on::<u32>()
            .call(move |n: &u32| {
                s.lock().unwrap().push(*n);
                if *n == 1 {
                    // Queue 2 behind this invocation, then let the other thread unsubscribe.
                    let _ = e.emit(2u32).unwrap();
                    q.store(true, Ordering::Release);
                    while !u.load(Ordering::Acquire) {
                        thread::yield_now();
                    }
                }
            })
            .unwrap();

        let remover = {
            let (linker, leaving) = (linker.clone(), leaving.clone());
            thread::spawn(move || {
                while !queued.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                assert!(leaving.unsubscribe());
                unsubscribed.store(true, Ordering::Release);
                // After unsubscribe returned: the registry no longer has it.
                let _ = Emitter::inline(&linker).emit(3u32).unwrap();
            })
        };
        let _ = emitter.emit(1u32).unwrap();
        remover.join().unwrap();

        assert_eq!(
            *seen.lock().unwrap(),
            vec![1],
            "2 was queued before unsubscribe, 3 after"
        );
        assert_eq!(
            stable.load(Ordering::Relaxed),
            3,
            "the stable subscription saw 1, 2, 3"
        );
        assert_eq!(leaving.stats().discarded, 1);
        assert_eq!(linker.dead_letter_counts().discarded_after_unsubscribe, 1);
    });
}

/// The pending counter under the inline strategy: two threads emit to one subscription at
/// once; it never runs on two threads at a time and runs both events before both emits
/// have returned (no event stranded in the mailbox).
///
/// Broken by `ventus_mutant="pending_load_store"` (the runner releases with a load and a
/// store instead of one read-modify-write).
#[test]
fn pending_counter_exclusive_and_nothing_stranded() {
    loom::model(|| {
        let linker = Linker::new();
        let inside = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicUsize::new(0));
        let (i, r) = (inside.clone(), runs.clone());
        let _sub = linker
            .on::<u8>()
            .call(move |_: &u8| {
                assert!(!i.swap(true, Ordering::Acquire), "two invocations at once");
                r.fetch_add(1, Ordering::Relaxed);
                i.store(false, Ordering::Release);
            })
            .unwrap();
        let other = {
            let emitter = Emitter::inline(&linker);
            thread::spawn(move || {
                let _ = emitter.emit(1u8).unwrap();
            })
        };
        let _ = Emitter::inline(&linker).emit(2u8).unwrap();
        other.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 2, "an event was stranded");
    });
}

/// `max_subscribers` under concurrent subscribes: with a cap of 1, two threads subscribing
/// to the same key at once: exactly one succeeds.
///
/// Broken by `ventus_mutant="max_check_unlocked"` (the cap is checked against a snapshot
/// read before the writer lock).
#[test]
fn max_subscribers_under_concurrent_subscribes() {
    loom::model(|| {
        let linker = Linker::builder().max_subscribers(1).build().unwrap();
        let other = {
            let linker = linker.clone();
            thread::spawn(move || linker.on_named("k").call(|_: &()| {}).is_ok())
        };
        let here = linker.on_named("k").call(|_: &()| {}).is_ok();
        let there = other.join().unwrap();
        assert!(here ^ there, "here {here}, there {there}");
        assert_eq!(linker.subscriptions_of(&EventKey::named("k")).len(), 1);
    });
}
