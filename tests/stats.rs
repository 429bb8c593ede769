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

/// A runtime built with `histograms(true)` aggregates every invocation its threads run,
/// subscriptions without histograms of their own included; queueing is measured from the
/// emit.
#[test]
fn runtime_histograms_aggregate_every_subscription() {
    let recording = Runtime::builder()
        .workers(2)
        .histograms(true)
        .build()
        .unwrap();
    let plain = Runtime::builder().workers(1).build().unwrap();
    assert!(plain.latency().is_none());
    let linker = Linker::new();
    let (tx, rx) = mpsc::channel();
    let _a = linker.on::<u32>().call(|_: &u32| {}).unwrap();
    let _b = linker
        .on::<u32>()
        .call(move |n: &u32| {
            if *n == 0 {
                // Hold the first event until the rest are queued: each then waits in the
                // mailbox for at least this long.
                let _ = rx.recv();
            }
        })
        .unwrap();
    let _c = linker
        .on::<u64>()
        .placement(ventus::Placement::Dedicated(ventus::Spin::Backoff))
        .runtime(&recording)
        .call(|_: &u64| {})
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&recording));
    for n in 0..50u32 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 2);
    }
    std::thread::sleep(Duration::from_millis(2));
    tx.send(()).unwrap();
    for n in 0..10u64 {
        assert_eq!(emitter.emit(n).unwrap().delivered, 1);
    }
    recording.wait_idle().unwrap();
    let latency = recording.latency().expect("built with histograms");
    assert_eq!(latency.service.len(), 110);
    assert_eq!(latency.queueing.len(), 110);
    // The held events queued for at least the 2 ms the first one was held.
    assert!(
        latency.queueing.max() >= 2_000_000,
        "max queueing {} ns",
        latency.queueing.max()
    );
    // Another runtime's emits are not in it.
    let other = Emitter::new(&linker, Actors::new(&plain));
    assert_eq!(other.emit(7u32).unwrap().delivered, 2);
    plain.wait_idle().unwrap();
    assert_eq!(recording.latency().unwrap().service.len(), 110);
}

/// Spins: a pool worker lingers on a drained subscription (counted), not when lingering is
/// off; a dedicated thread counts its polls once it parks.
#[test]
fn spins_count_lingering_and_polling() {
    let lingering = Runtime::builder().workers(1).build().unwrap();
    let eager = Runtime::builder()
        .workers(1)
        .linger(Duration::ZERO)
        .build()
        .unwrap();
    let linker = Linker::new();
    let _sub = linker.on::<u32>().call(|_: &u32| {}).unwrap();
    for runtime in [&lingering, &eager] {
        let emitter = Emitter::new(&linker, Actors::new(runtime));
        for n in 0..10u32 {
            assert_eq!(emitter.emit(n).unwrap().delivered, 1);
            runtime.wait_idle().unwrap();
        }
    }
    assert!(lingering.stats().spins >= 10, "{:?}", lingering.stats());
    assert_eq!(eager.stats().spins, 0);

    let polling = Runtime::builder().workers(1).build().unwrap();
    let _dedicated = linker
        .on::<u64>()
        .placement(ventus::Placement::Dedicated(ventus::Spin::Backoff))
        .runtime(&polling)
        .call(|_: &u64| {})
        .unwrap();
    let delivery = Emitter::new(&linker, Actors::new(&polling))
        .emit(1u64)
        .unwrap();
    assert_eq!(delivery.delivered, 1);
    polling.wait_idle().unwrap();
    // The thread adds its polls when it parks (after `poll`, 20 µs, and a backoff): wait
    // for that, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while polling.stats().spins == 0 {
        assert!(std::time::Instant::now() < deadline, "no spins counted");
        std::thread::yield_now();
    }

    // A thread that never parks publishes its count every 65,536 turns.
    let spinning = Runtime::builder().workers(1).build().unwrap();
    let forever = linker
        .on::<i64>()
        .placement(ventus::Placement::Dedicated(ventus::Spin::Forever))
        .runtime(&spinning)
        .call(|_: &i64| {})
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while spinning.stats().spins < 1 << 16 {
        assert!(std::time::Instant::now() < deadline, "no spins counted");
        std::thread::yield_now();
    }
    forever.unsubscribe();
}
