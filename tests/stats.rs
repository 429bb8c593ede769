//! Statistics: per-subscription counters (delivered, outcomes, dead letters by reason,
//! high-water mark), opt-in latency histograms, their `.hgrm` output, and runtime counters.

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use ventus::{Actors, Emitter, Linker, Policy, Runtime, write_hgrm};

#[test]
fn subscription_counters_add_up() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let linker = Linker::new();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let sub = linker
        .on::<u32>()
        .capacity(4)
        .policy(Policy::DropNewest)
        .on_failure(|_| {})
        .call(move |n: &u32| -> Result<(), std::io::Error> {
            if *n == 0 {
                entered_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
            }
            if n % 2 == 1 {
                return Err(std::io::Error::other("odd"));
            }
            Ok(())
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let _ = emitter.emit(0u32).unwrap();
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // 0 is running: 3 more fit (the bound counts the running batch), 2 are dropped.
    for n in 1..=5u32 {
        let _ = emitter.emit(n);
    }
    release_tx.send(()).unwrap();
    runtime.wait_idle().unwrap();
    let stats = sub.stats();
    assert_eq!(stats.delivered, 4);
    assert_eq!(stats.invoked, 4);
    assert_eq!(stats.succeeded, 2);
    assert_eq!(stats.failed, 2);
    assert_eq!(stats.dropped, 2);
    assert_eq!(stats.dead_letters.dropped, 2);
    assert_eq!(stats.dead_letters.total(), 2);
    assert_eq!(stats.queued, 0);
    assert!(
        stats.high_water >= 3 && stats.high_water <= 4,
        "{}",
        stats.high_water
    );
    assert!(sub.latency().is_none(), "histograms are opt-in");
    let pool = runtime.stats();
    assert!(pool.runs >= 1);
    assert!(pool.busy > Duration::ZERO);
}

#[test]
fn latency_histograms_record_every_invocation_and_write_hgrm() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::new();
    let pooled = linker
        .on::<u64>()
        .histograms()
        .call(|n: &u64| {
            std::hint::black_box(n);
        })
        .unwrap();
    let inline_linker = Linker::new();
    let inline = inline_linker
        .on::<u64>()
        .histograms()
        .call(|n: &u64| {
            std::hint::black_box(n);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..1_000u64 {
        let _ = emitter.emit(n).unwrap();
    }
    let _ = emitter.emit_batch(0..500u64).unwrap();
    runtime.wait_idle().unwrap();
    let latency = pooled.latency().unwrap();
    assert_eq!(latency.queueing.len(), 1_500);
    assert_eq!(latency.service.len(), 1_500);
    assert!(latency.queueing.max() >= 1);
    let inline_emitter = Emitter::inline(&inline_linker);
    for n in 0..10u64 {
        let _ = inline_emitter.emit(n).unwrap();
    }
    let mut merged = inline.latency().unwrap();
    assert_eq!(merged.service.len(), 10);
    merged.merge(&latency);
    assert_eq!(merged.service.len(), 1_510);
    let mut out = Vec::new();
    write_hgrm(&latency.service, 1000.0, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    assert!(text.contains("Total count    =         1500]"), "{text}");
}

/// The histograms' lock is never held while user code runs: a handler may read its own
/// subscription's latency (it would deadlock otherwise), and sees the invocations before.
#[test]
fn a_handler_may_read_its_own_latency() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let linker = Linker::new();
    let me: std::sync::Arc<std::sync::OnceLock<ventus::Subscription>> = Default::default();
    let (tx, rx) = mpsc::channel();
    let (m, tx) = (me.clone(), Mutex::new(tx));
    let sub = linker
        .on::<u32>()
        .histograms()
        .call(move |_: &u32| {
            let seen = m.get().unwrap().latency().unwrap().service.len();
            tx.lock().unwrap().send(seen).unwrap();
        })
        .unwrap();
    me.set(sub.clone()).unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    for n in 0..3u32 {
        let _ = emitter.emit(n).unwrap();
        // Recorded at the latest when the runner's batch ends: at most what ran before.
        let seen = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(seen <= u64::from(n), "{seen} > {n}");
    }
    // The runner records what is left before its run ends, and the run ends before the
    // runtime is idle.
    runtime.wait_idle().unwrap();
    assert_eq!(sub.latency().unwrap().service.len(), 3);
    assert!(sub.unsubscribe());
}
