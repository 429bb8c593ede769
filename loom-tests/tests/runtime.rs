//! loom models of the actor runtime: the pool's scheduling by the pending counter (no
//! event stranded when a worker releases a subscription while an emitter counts one), and
//! emit vs shutdown (every event is handled or given back).
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use ventus::{Actors, EmitError, Emitter, Linker, Runtime};

fn counting(linker: &Linker) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let _sub = linker
        .on::<u8>()
        .call(move |_: &u8| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    count
}

/// Two emitters and one pool worker: the worker may release the subscription while the
/// second emitter counts its event; exactly one of them must own the next run. After
/// `wait_idle`, both events ran.
///
/// Broken by `ventus_mutant="enqueue_plain_load"` (the emitter decides "idle, so I
/// schedule" with a load before its increment).
#[test]
fn pool_schedules_by_the_pending_counter_and_strands_nothing() {
    loom::model(|| {
        let runtime = Runtime::builder().workers(1).build().unwrap();
        let linker = Linker::new();
        let count = counting(&linker);
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        let other = {
            let emitter = emitter.clone();
            thread::spawn(move || {
                let _ = emitter.emit(1u8).unwrap();
            })
        };
        let _ = emitter.emit(2u8).unwrap();
        other.join().unwrap();
        runtime.wait_idle().unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 2, "an event was stranded");
        drop(emitter);
        assert!(runtime.shutdown().joined);
    });
}

/// Emit vs shutdown: an external emit racing `shutdown()` is either refused with its event
/// given back, or accepted and then handled by the drain, never lost.
///
/// Broken by `ventus_mutant="gate_no_fence"` (the emitter's side of the gate's Dekker
/// handshake loses its SeqCst fence).
#[test]
fn emit_vs_shutdown_handles_or_gives_back() {
    loom::model(|| {
        let runtime = Runtime::builder().workers(1).build().unwrap();
        let linker = Linker::new();
        let count = counting(&linker);
        let emitter = Emitter::new(&linker, Actors::new(&runtime));
        let emitting = thread::spawn(move || match emitter.emit(9u8) {
            Ok(delivery) => delivery.delivered,
            Err(EmitError::Shutdown(9)) => 0,
            Err(other) => panic!("{other:?}"),
        });
        let report = runtime.shutdown();
        let delivered = emitting.join().unwrap();
        assert!(report.drained);
        assert_eq!(
            count.load(Ordering::Relaxed),
            delivered,
            "accepted but never handled"
        );
    });
}
