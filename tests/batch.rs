//! `emit_batch`: exact counts, sums and per-thread order on the actor fast path, fan-out
//! sharing, the event-by-event fallback (once, dedicated, full mailboxes), refusals giving
//! the events back, and the default strategy implementation.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use ventus::{
    Actors, Delivery, DispatchError, Emission, EmitError, Emitter, Linker, Placement, Policy,
    Runtime, Spin, Strategy,
};

mod common;
use common::{CLONES, Tracked, VALUE_DROPS};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

#[derive(Clone, Copy, Debug)]
struct Seq {
    thread: u64,
    n: u64,
}

struct Tally {
    count: AtomicU64,
    sum: AtomicU64,
    out_of_order: AtomicU64,
}

fn tally(linker: &Linker) -> Arc<Tally> {
    let tally = Arc::new(Tally {
        count: AtomicU64::new(0),
        sum: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
    });
    let t = tally.clone();
    let mut last = [0u64; 8];
    let _ = linker
        .on::<Seq>()
        .call(move |seq: &Seq| {
            t.count.fetch_add(1, Ordering::Relaxed);
            t.sum.fetch_add(seq.n, Ordering::Relaxed);
            let previous = std::mem::replace(&mut last[seq.thread as usize], seq.n);
            if previous >= seq.n {
                t.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap();
    tally
}

fn batches_from_threads(emitter: &Emitter, subscribers: usize) {
    const THREADS: u64 = 4;
    const BATCHES: u64 = 500;
    const SIZE: u64 = 32;
    thread::scope(|scope| {
        for thread in 0..THREADS {
            let emitter = emitter.clone();
            scope.spawn(move || {
                for b in 0..BATCHES {
                    let batch = (1..=SIZE).map(|i| Seq {
                        thread,
                        n: b * SIZE + i,
                    });
                    let delivery = emitter.emit_batch(batch).unwrap();
                    assert_eq!(delivery.delivered, SIZE as usize * subscribers);
                }
            });
        }
    });
}

#[test]
fn unicast_batches_exact_count_sum_and_order() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let tally = tally(&linker);
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    batches_from_threads(&emitter, 1);
    runtime.wait_idle().unwrap();
    let n = 500 * 32;
    assert_eq!(tally.count.load(Ordering::Relaxed), 4 * n);
    assert_eq!(tally.sum.load(Ordering::Relaxed), 4 * n * (n + 1) / 2);
    assert_eq!(tally.out_of_order.load(Ordering::Relaxed), 0);
}

#[test]
fn fanout_batches_exact_count_sum_and_order() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let tallies: Vec<_> = (0..4).map(|_| tally(&linker)).collect();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    batches_from_threads(&emitter, 4);
    runtime.wait_idle().unwrap();
    let n = 500 * 32;
    for tally in &tallies {
        assert_eq!(tally.count.load(Ordering::Relaxed), 4 * n);
        assert_eq!(tally.sum.load(Ordering::Relaxed), 4 * n * (n + 1) / 2);
        assert_eq!(tally.out_of_order.load(Ordering::Relaxed), 0);
    }
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

struct Counted(u64);
impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Shared among four subscriptions, every payload is dropped exactly once, after the
/// last handler (and events with no subscriber are dropped by the emit).
#[test]
fn shared_payloads_drop_exactly_once() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let sum = Arc::new(AtomicU64::new(0));
    for _ in 0..4 {
        let s = sum.clone();
        let _ = linker
            .on::<Counted>()
            .call(move |c: &Counted| {
                s.fetch_add(c.0, Ordering::Relaxed);
            })
            .unwrap();
    }
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let before = DROPS.load(Ordering::SeqCst);
    for _ in 0..100 {
        let _ = emitter.emit_batch((1..=10).map(Counted)).unwrap();
    }
    runtime.wait_idle().unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 1000);
    assert_eq!(sum.load(Ordering::Relaxed), 4 * 100 * 55);
    // No subscriber for this type: each event dropped once, nothing delivered.
    struct Lonely(#[allow(dead_code)] Counted);
    let before = DROPS.load(Ordering::SeqCst);
    let delivery = emitter
        .emit_batch((0..7).map(|n| Lonely(Counted(n))))
        .unwrap();
    assert_eq!(delivery.delivered, 0);
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 7);
}

/// A once subscription and a dedicated one take the event-by-event path: the once one
/// fires exactly once, the dedicated one sees every event in order.
#[test]
fn once_and_dedicated_go_event_by_event() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let once = Arc::new(Mutex::new(Vec::new()));
    let o = once.clone();
    let _once = linker
        .on::<u64>()
        .once()
        .call(move |n: &u64| o.lock().unwrap().push(*n))
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let _dedicated = linker
        .on::<u64>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .runtime(&runtime)
        .call(move |n: &u64| s.lock().unwrap().push(*n))
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let delivery = emitter.emit_batch(1..=50u64).unwrap();
    assert_eq!(delivery.delivered, 51);
    runtime.wait_idle().unwrap();
    assert_eq!(*once.lock().unwrap(), vec![1]);
    assert_eq!(*seen.lock().unwrap(), (1..=50).collect::<Vec<_>>());
}

/// No room for the whole batch: event by event; the refused events come back in order.
#[test]
fn refused_events_come_back_in_order() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let handled = Arc::new(Mutex::new(Vec::new()));
    let h = handled.clone();
    let _sub = linker
        .on::<u64>()
        .capacity(3)
        .policy(Policy::Fail)
        .call(move |n: &u64| {
            if *n == 0 {
                entered_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
            }
            h.lock().unwrap().push(*n);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let _ = emitter.emit(0u64).unwrap();
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    match emitter.emit_batch(1..=5u64) {
        Err(EmitError::Full(back)) => assert_eq!(back, vec![3, 4, 5]),
        other => panic!("{other:?}"),
    }
    release_tx.send(()).unwrap();
    runtime.wait_idle().unwrap();
    assert_eq!(*handled.lock().unwrap(), vec![0, 1, 2]);
    // After shutdown every event comes back.
    let _ = runtime.shutdown();
    match emitter.emit_batch(vec![7u64, 8]) {
        Err(EmitError::Shutdown(back)) => assert_eq!(back, vec![7, 8]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inline_batches_run_in_order_before_returning() {
    let linker = Linker::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let _sub = linker
        .on::<u32>()
        .call(move |n: &u32| s.lock().unwrap().push(*n))
        .unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit_batch([3u32, 1, 2]).unwrap().delivered, 3);
    assert_eq!(*seen.lock().unwrap(), vec![3, 1, 2]);
    assert_eq!(emitter.emit_batch(Vec::<u32>::new()).unwrap().delivered, 0);
}

/// A user strategy that does not override `dispatch_batch` gets each event through its
/// `dispatch`.
#[test]
fn default_dispatch_batch_goes_through_dispatch() {
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);
    impl Strategy for Counting {
        fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            emission.deliver_inline()
        }
    }
    let linker = Linker::new();
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    let _sub = linker
        .on::<u64>()
        .call(move |n: &u64| {
            t.fetch_add(*n, Ordering::Relaxed);
        })
        .unwrap();
    let strategy = Arc::new(Counting::default());
    let emitter = Emitter::with_strategy_arc(&linker, strategy.clone());
    assert_eq!(emitter.emit_batch(1..=10u64).unwrap().delivered, 10);
    assert_eq!(strategy.0.load(Ordering::Relaxed), 10);
    assert_eq!(total.load(Ordering::Relaxed), 55);
}

/// A batch to two by-value subscriptions and one sharing: each by-value one gets its own
/// clone of every event, the sharing one the originals; every value is dropped exactly
/// once and every subscription sees every event, in order.
#[test]
fn mixed_by_value_and_shared_batches_clone_and_drop_exactly() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let seen: Vec<Arc<Mutex<Vec<u64>>>> =
        (0..3).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
    for (index, log) in seen.iter().enumerate() {
        let log = log.clone();
        let builder = linker.on::<Tracked>();
        let builder = if index < 2 {
            builder.by_value()
        } else {
            builder
        };
        let _ = builder
            .call(move |t: &Tracked| log.lock().unwrap().push(t.0))
            .unwrap();
    }
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let (clones, drops) = (
        CLONES.load(Ordering::SeqCst),
        VALUE_DROPS.load(Ordering::SeqCst),
    );
    for round in 0..10u64 {
        let delivery = emitter
            .emit_batch((0..10).map(|n| Tracked(round * 10 + n)))
            .unwrap();
        assert_eq!(delivery.delivered, 30);
    }
    runtime.wait_idle().unwrap();
    assert_eq!(CLONES.load(Ordering::SeqCst) - clones, 2 * 100);
    assert_eq!(VALUE_DROPS.load(Ordering::SeqCst) - drops, 3 * 100);
    for log in &seen {
        assert_eq!(*log.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }
}

static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct Bomb(u64);
impl Clone for Bomb {
    fn clone(&self) -> Self {
        if self.0 == 5 && ARMED.load(Ordering::SeqCst) {
            panic!("clone of 5");
        }
        Bomb(self.0)
    }
}

/// A `Clone` that panics in the middle of a batch: what was pushed before the panic is
/// counted and runs; every later event runs, in order, and nothing stays queued.
#[test]
fn a_panicking_clone_mid_batch_strands_nothing() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let logs: Vec<Arc<Mutex<Vec<u64>>>> =
        (0..2).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
    let subs: Vec<_> = logs
        .iter()
        .map(|log| {
            let log = log.clone();
            linker
                .on::<Bomb>()
                .by_value()
                .call(move |b: &Bomb| log.lock().unwrap().push(b.0))
                .unwrap()
        })
        .collect();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    ARMED.store(true, Ordering::SeqCst);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        emitter.emit_batch((0..10).map(Bomb))
    }));
    ARMED.store(false, Ordering::SeqCst);
    assert!(result.is_err(), "the clone's panic reaches the emitter");
    for n in 100..104 {
        assert_eq!(emitter.emit(Bomb(n)).unwrap().delivered, 2);
    }
    runtime.wait_idle().unwrap();
    // The first subscription gets clones: 0..5 were pushed before the panic.
    assert_eq!(
        *logs[0].lock().unwrap(),
        vec![0, 1, 2, 3, 4, 100, 101, 102, 103]
    );
    // The last one gets the originals, after the others: the batch never reached it.
    assert_eq!(*logs[1].lock().unwrap(), vec![100, 101, 102, 103]);
    for sub in &subs {
        assert_eq!(sub.stats().queued, 0);
    }
}

/// One emission, one id: every subscription that asks for metadata sees the same id and
/// instant, through single emits and batches alike.
#[test]
fn subscriptions_share_each_events_id() {
    let runtime = runtime(2);
    let linker = Linker::new();
    type Seen = Arc<Mutex<Vec<(u64, ventus::EventId, std::time::Instant)>>>;
    let seen: Vec<Seen> = (0..3).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
    for log in &seen {
        let log = log.clone();
        let _ = linker
            .on::<u64>()
            .call_with_meta(move |n: &u64, meta: &ventus::EventMeta| {
                log.lock().unwrap().push((*n, meta.id, meta.emitted_at));
            })
            .unwrap();
    }
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    assert_eq!(emitter.emit(1u64).unwrap().delivered, 3);
    assert_eq!(emitter.local().emit(2u64).unwrap().delivered, 3);
    assert_eq!(emitter.emit_batch(3..6u64).unwrap().delivered, 9);
    runtime.wait_idle().unwrap();
    let first = seen[0].lock().unwrap().clone();
    assert_eq!(
        first.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    for log in &seen[1..] {
        assert_eq!(*log.lock().unwrap(), first);
    }
    // Different events, different ids.
    let mut ids: Vec<_> = first.iter().map(|e| e.1).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
}
