//! loom model of the in-flight counter behind `emit_and_wait`: a message's count is added
//! before it is pushed and released after its handler, so the waiter cannot see 0 while
//! part of the chain is queued or running.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

use ventus::{Actors, Emitter, Linker, Runtime};

struct First;
struct Second(bool);

/// `emit(Second(false))` then `emit_and_wait(First)` on a two-worker pool: one worker may
/// still be running Second's subscription when First's handler, on the other worker, emits
/// `Second(true)` into it, so the running worker may take the chained message as soon as
/// it is counted. When `emit_and_wait` returns, First's handler and the chained Second
/// have both finished.
///
/// Broken by `ventus_mutant="inflight_after_push"` (the chained message's count is added
/// after the message is published: the other worker may run it and release a count that
/// was never added, bringing the counter to 0 while First's handler is still running).
#[test]
fn emit_and_wait_counts_before_the_push() {
    loom::model(|| {
        // No lingering: it reads the clock, which loom cannot replay.
        let runtime = Runtime::builder()
            .workers(2)
            .linger(std::time::Duration::ZERO)
            .build()
            .unwrap();
        let linker = Linker::new();
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        let first_done = Arc::new(AtomicUsize::new(0));
        let chained_done = Arc::new(AtomicUsize::new(0));
        let (e, f) = (emitter.clone(), first_done.clone());
        let _first = linker
            .on::<First>()
            .call(move |_: &First| {
                let _ = e.emit(Second(true)).unwrap();
                f.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let c = chained_done.clone();
        let _second = linker
            .on::<Second>()
            .call(move |second: &Second| {
                if second.0 {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            })
            .unwrap();
        let _ = emitter.emit(Second(false)).unwrap();
        let completed = emitter.emit_and_wait(First).unwrap();
        assert!(completed.all_succeeded());
        assert_eq!(
            (
                first_done.load(Ordering::Relaxed),
                chained_done.load(Ordering::Relaxed)
            ),
            (1, 1),
            "emit_and_wait returned before the chain finished"
        );
        drop(emitter);
        assert!(runtime.shutdown().joined);
        // First's handler holds an emitter, which holds the linker: break the cycle.
        linker.remove_all();
    });
}
