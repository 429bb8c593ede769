//! The process-wide default linker, in its own test binary (it is shared state).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ventus::{Emitter, Linker};

#[test]
fn the_global_linker_is_one_shared_namespace() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let sub = Linker::global()
        .on::<u16>()
        .call(move |_: &u16| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(Linker::global().name(), "global");
    assert!(Linker::global().contains_subscription(&sub));
    // Another handle to the same linker sees the same registry.
    let again = Linker::global().clone();
    assert_eq!(Emitter::inline(&again).emit(5u16).unwrap().delivered, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A fresh linker is another namespace.
    assert_eq!(
        Emitter::inline(&Linker::new())
            .emit(5u16)
            .unwrap()
            .delivered,
        0
    );
    assert!(sub.unsubscribe());
}
