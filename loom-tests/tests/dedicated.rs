//! loom model of a dedicated thread's exit handshake: the thread leaves once its
//! subscription is unsubscribed, while an emitter may be counting an event for it. Either
//! the thread sees the event (and runs or discards it) or the emitter sees the thread gone
//! (and dead-letters the event itself): the event is never stranded on a thread that left,
//! and shutdown never waits for a run nobody will finish.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use ventus::{Actors, Emitter, Linker, Placement, Runtime, Spin};

/// An emit racing `unsubscribe` on a dedicated subscription: the event is handled, or it
/// is a dead letter (discarded after the unsubscribe); then shutdown drains and joins.
///
/// Broken by `ventus_mutant="dedicated_exit_load"` (the thread decides "nothing pending"
/// with a load before it raises `exited`).
#[test]
fn dedicated_exit_vs_emit_strands_nothing() {
    loom::model(|| {
        let runtime = Runtime::builder()
            .workers(1)
            .linger(std::time::Duration::ZERO)
            .build()
            .unwrap();
        let linker = Linker::builder().runtime(&runtime).build().unwrap();
        let handled = Arc::new(AtomicUsize::new(0));
        let h = handled.clone();
        let sub = linker
            .on::<u8>()
            .placement(Placement::Dedicated(Spin::Backoff))
            .call(move |_: &u8| {
                h.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        let emitting = thread::spawn(move || emitter.emit(7u8).map(|d| d.delivered).unwrap_or(0));
        assert!(sub.unsubscribe());
        let delivered = emitting.join().unwrap();
        let report = runtime.shutdown();
        assert!(report.drained, "a run was counted that nobody finished");
        let dead = linker.dead_letter_counts();
        assert_eq!(
            handled.load(Ordering::Relaxed)
                + (dead.discarded_after_unsubscribe + dead.left_at_shutdown) as usize,
            delivered,
            "an event was stranded"
        );
    });
}
