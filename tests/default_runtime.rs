//! The process-wide default runtime, in its own test binary (it is shared state).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ventus::{Actors, EmitError, Emitter, Linker, Runtime};

#[test]
fn the_default_runtime_starts_lazily_and_shutdown_default_drains_it() {
    let linker = Linker::new();
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let _sub = linker
        .on::<u64>()
        .call(move |n: &u64| {
            s.fetch_add(*n, Ordering::SeqCst);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&Runtime::default()));
    for n in 1..=1000u64 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    // Every handle is the same runtime; dropping one does not stop it.
    drop(Runtime::default());
    ventus::shutdown_default();
    assert_eq!(
        sum.load(Ordering::SeqCst),
        500_500,
        "drained before it returned"
    );
    assert!(Runtime::default().is_shutdown());
    assert!(matches!(emitter.emit(1u64), Err(EmitError::Shutdown(1))));
}
