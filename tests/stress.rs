//! Stress with exact accounting, in the style of crossbeam-channel's tests: threads emit,
//! subscribe, unsubscribe and shut down at once, and every test checks invariants that
//! hold whatever the interleaving (nothing here sleeps in the hope of an ordering):
//!
//! - each subscription's count and sum equal what it was owed, and what reached it from
//!   one emitting thread is a gap-free run of that thread's sequence (handled, then
//!   discarded after its unsubscribe; never twice, never out of order);
//! - everything emitters were told was delivered is handled or reported as a dead letter;
//! - every payload is dropped exactly once (a counting `Drop`);
//! - a once subscription runs at most once, and exactly once unless its refusal was
//!   reported (in the emit's `Delivery::refused` or to the dead-letter hook).
//!
//! Every wait is bounded: a hang fails the test instead of blocking CI.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use ventus::{
    Actors, DeadLetter, DeadLetterReason, EmitError, Emitter, Event, EventKey, Linker, Placement,
    Refusal, Runtime, Spin, Subscription, SubscriptionId,
};

/// The longest any single wait in this file may take before the test fails.
const BOUND: Duration = Duration::from_secs(20);

/// splitmix64: a small seeded generator, so that every run makes the same choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Counts the drops of every payload by its id.
#[derive(Clone)]
struct Drops(Arc<Vec<AtomicU8>>);

impl Drops {
    fn new(n: usize) -> Self {
        Self(Arc::new((0..n).map(|_| AtomicU8::new(0)).collect()))
    }

    fn token(&self, id: usize) -> Token {
        Token {
            id,
            drops: self.clone(),
        }
    }

    /// Every payload was dropped exactly once.
    fn assert_each_once(&self) {
        let wrong: Vec<(usize, u8)> = self
            .0
            .iter()
            .enumerate()
            .map(|(id, n)| (id, n.load(Ordering::SeqCst)))
            .filter(|(_, n)| *n != 1)
            .take(10)
            .collect();
        assert!(
            wrong.is_empty(),
            "(payload, drops) not dropped once: {wrong:?}"
        );
    }
}

/// A payload's drop counter.
struct Token {
    id: usize,
    drops: Drops,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.drops.0[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

/// The payload: which thread emitted it, its place in that thread's sequence, a value.
struct Item {
    thread: usize,
    seq: u64,
    value: u64,
    _token: Token,
}

/// What one subscription saw, per emitting thread: the sequence numbers it handled.
#[derive(Default)]
struct Ledger {
    count: u64,
    sum: u64,
    seqs: BTreeMap<usize, Vec<u64>>,
    /// The count read right after the unsubscribe returned, and whether it was
    /// `unsubscribe_and_wait` (which also waits for a running invocation).
    frozen: Option<(u64, bool)>,
}

impl Ledger {
    fn record(&mut self, item: &Item) {
        self.count += 1;
        self.sum += item.value;
        self.seqs.entry(item.thread).or_default().push(item.seq);
    }
}

/// A subscription with its ledger and the dead letters reported for it.
struct Tracked {
    sub: Subscription,
    ledger: Arc<Mutex<Ledger>>,
}

type Discarded = Arc<Mutex<HashMap<SubscriptionId, BTreeMap<usize, Vec<u64>>>>>;

/// A linker that files every dead letter's `Item` by subscription and emitting thread;
/// `other` counts every other dead letter and every error report.
fn ledger_linker(discarded: &Discarded, other: &Arc<AtomicUsize>) -> Linker {
    let (d, o, e) = (discarded.clone(), other.clone(), other.clone());
    Linker::builder()
        .dead_letter_hook(move |letter: DeadLetter| {
            let item = letter
                .payload
                .as_ref()
                .and_then(|p| p.downcast_ref::<Item>());
            match (letter.reason, letter.subscription, item) {
                (DeadLetterReason::DiscardedAfterUnsubscribe, Some(id), Some(item)) => {
                    d.lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .entry(item.thread)
                        .or_default()
                        .push(item.seq);
                }
                // An inline emit that finds the subscription unsubscribed just before it
                // runs keeps the event (other subscriptions may take it): the letter comes
                // without payload, filed under `usize::MAX`.
                (DeadLetterReason::DiscardedAfterUnsubscribe, Some(id), None) => {
                    d.lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .entry(usize::MAX)
                        .or_default()
                        .push(0);
                }
                _ => {
                    o.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .error_hook(move |linker, report| {
            eprintln!("[{linker}] unexpected error report: {report}");
            e.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap()
}

/// A subscription on `Item` with a small mailbox (so that emitters also wait for room
/// under `Policy::Block` while it is being unsubscribed).
fn subscribe_tracked(linker: &Linker) -> Tracked {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let l = ledger.clone();
    let sub = linker
        .on::<Item>()
        .capacity(8)
        .call(move |item: &Item| l.lock().unwrap().record(item))
        .unwrap();
    Tracked { sub, ledger }
}

/// Checks one subscription: per emitting thread, what it handled and then what it
/// discarded after its unsubscribe form one gap-free, increasing run; the counters agree.
fn check_runs(tracked: &Tracked, discarded: &Discarded) -> (u64, u64) {
    let ledger = tracked.ledger.lock().unwrap();
    let discarded = discarded
        .lock()
        .unwrap()
        .get(&tracked.sub.id())
        .cloned()
        .unwrap_or_default();
    let threads: HashSet<usize> = ledger
        .seqs
        .keys()
        .chain(discarded.keys())
        .copied()
        .collect();
    let mut dropped = 0;
    for thread in threads {
        if thread == usize::MAX {
            // Discarded without payload (see `ledger_linker`): counted, not placed.
            dropped += discarded[&thread].len() as u64;
            continue;
        }
        let handled = ledger.seqs.get(&thread).cloned().unwrap_or_default();
        let mut gone = discarded.get(&thread).cloned().unwrap_or_default();
        gone.sort_unstable();
        dropped += gone.len() as u64;
        let run: Vec<u64> = handled.iter().chain(gone.iter()).copied().collect();
        assert!(
            run.windows(2).all(|w| w[1] == w[0] + 1),
            "{:?}, thread {thread}: handled {handled:?} then discarded {gone:?}: not one gap-free run",
            tracked.sub.id()
        );
    }
    // After the unsubscribe returned, no invocation started: at most the one already
    // running finished (none, after `unsubscribe_and_wait`).
    if let Some((at, waited)) = ledger.frozen {
        let late = ledger.count - at;
        assert!(
            late <= u64::from(!waited),
            "{:?}: {late} invocation(s) after unsubscribe (waited: {waited})",
            tracked.sub.id()
        );
    }
    let stats = tracked.sub.stats();
    assert_eq!(stats.invoked, ledger.count, "{:?}", tracked.sub.id());
    assert_eq!(stats.discarded, dropped, "{:?}", tracked.sub.id());
    assert_eq!((stats.refused, stats.dropped), (0, 0));
    (ledger.count, dropped)
}

/// Two emitting threads and one churning thread that subscribes and unsubscribes (three
/// ways) while they emit; two subscriptions (one typed, one `Any`) live throughout.
fn churn(emitter_for: impl Fn(&Linker) -> (Emitter, Option<Runtime>)) {
    const THREADS: usize = 2;
    const PER_THREAD: u64 = 40_000;
    const CHURN: usize = 1_000;
    let discarded: Discarded = Arc::default();
    let other_letters = Arc::new(AtomicUsize::new(0));
    let linker = ledger_linker(&discarded, &other_letters);
    let (emitter, runtime) = emitter_for(&linker);
    let drops = Drops::new(THREADS * PER_THREAD as usize);

    let stable = subscribe_tracked(&linker);
    let any_count = Arc::new(AtomicU64::new(0));
    let any_sum = Arc::new(AtomicU64::new(0));
    let (c, s) = (any_count.clone(), any_sum.clone());
    let any = linker
        .on_any()
        .call(move |event: &Event<'_>| {
            let item = event
                .downcast_ref::<Item>()
                .expect("only Items are emitted");
            c.fetch_add(1, Ordering::Relaxed);
            s.fetch_add(item.value, Ordering::Relaxed);
        })
        .unwrap();

    let start = Barrier::new(THREADS + 1);
    let delivered = AtomicU64::new(0);
    let emitters_left = AtomicUsize::new(THREADS);
    let emitted = AtomicBool::new(false);
    let churned: Mutex<Vec<Tracked>> = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for thread in 0..THREADS {
            let (emitter, drops, start, delivered) = (&emitter, &drops, &start, &delivered);
            let (emitters_left, emitted) = (&emitters_left, &emitted);
            scope.spawn(move || {
                start.wait();
                for seq in 0..PER_THREAD {
                    let id = thread * PER_THREAD as usize + seq as usize;
                    let item = Item {
                        thread,
                        seq,
                        value: seq * 3 + thread as u64,
                        _token: drops.token(id),
                    };
                    let delivery = emitter.emit(item).unwrap_or_else(|e| panic!("{e:?}"));
                    assert!(delivery.refused.is_empty(), "{delivery:?}");
                    assert!(delivery.delivered >= 2, "the stable subscriptions took it");
                    delivered.fetch_add(delivery.delivered as u64, Ordering::Relaxed);
                }
                if emitters_left.fetch_sub(1, Ordering::SeqCst) == 1 {
                    emitted.store(true, Ordering::SeqCst);
                }
            });
        }
        let (linker, start, churned, emitted) = (&linker, &start, &churned, &emitted);
        scope.spawn(move || {
            let mut rng = Rng(7);
            let mut live: Vec<(Subscription, Arc<Mutex<Ledger>>)> = Vec::new();
            start.wait();
            // At least CHURN changes, and on until the emitters are done.
            let mut changes = 0;
            while changes < CHURN || !emitted.load(Ordering::SeqCst) {
                changes += 1;
                if live.len() < 2 || rng.below(3) != 0 {
                    let tracked = subscribe_tracked(linker);
                    live.push((tracked.sub.clone(), tracked.ledger.clone()));
                    churned.lock().unwrap().push(tracked);
                }
                if live.len() > 4 || rng.below(2) == 0 {
                    let (gone, ledger) = live.swap_remove(rng.below(live.len() as u64) as usize);
                    let waited = match rng.below(3) {
                        0 => {
                            assert!(gone.unsubscribe());
                            false
                        }
                        1 => {
                            assert_eq!(gone.unsubscribe_and_wait(), Ok(true));
                            true
                        }
                        _ => {
                            assert!(linker.remove_subscription(&gone));
                            false
                        }
                    };
                    let mut ledger = ledger.lock().unwrap();
                    ledger.frozen = Some((ledger.count, waited));
                }
                thread::yield_now();
            }
        });
    });
    if let Some(runtime) = &runtime {
        assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    }

    // The subscriptions that lived throughout got everything, exactly.
    let total = THREADS as u64 * PER_THREAD;
    let expected_sum: u64 = (0..THREADS as u64)
        .map(|t| (0..PER_THREAD).map(|seq| seq * 3 + t).sum::<u64>())
        .sum();
    assert_eq!(check_runs(&stable, &discarded), (total, 0));
    assert_eq!(stable.ledger.lock().unwrap().sum, expected_sum);
    for seqs in stable.ledger.lock().unwrap().seqs.values() {
        assert_eq!(seqs.len() as u64, PER_THREAD);
    }
    assert_eq!(any_count.load(Ordering::Relaxed), total);
    assert_eq!(any_sum.load(Ordering::Relaxed), expected_sum);
    assert_eq!(any.stats().invoked, total);

    // What emitters were told was delivered was handled, or discarded and reported.
    let mut accounted = 2 * total;
    for tracked in churned.lock().unwrap().iter() {
        let (handled, gone) = check_runs(tracked, &discarded);
        accounted += handled + gone;
    }
    assert_eq!(delivered.load(Ordering::Relaxed), accounted);
    let discards: usize = discarded
        .lock()
        .unwrap()
        .values()
        .flat_map(|threads| threads.values())
        .map(Vec::len)
        .sum();
    eprintln!(
        "churned {} subscriptions; {accounted} deliveries, {discards} discarded after unsubscribe",
        churned.lock().unwrap().len()
    );
    assert_eq!(other_letters.load(Ordering::SeqCst), 0);

    drop(churned);
    drop(emitter);
    if let Some(runtime) = runtime {
        let report = runtime.shutdown_timeout(BOUND);
        assert!(report.drained && report.joined);
    }
    drops.assert_each_once();
}

#[test]
fn inline_emits_subscribes_and_unsubscribes_at_once_exact_accounting() {
    churn(|linker| (Emitter::inline(linker), None));
}

#[test]
fn actor_emits_subscribes_and_unsubscribes_at_once_exact_accounting() {
    churn(|linker| {
        let runtime = Runtime::builder().workers(2).build().unwrap();
        (Emitter::new(linker, Actors::new(&runtime)), Some(runtime))
    });
}

/// A hop of a chain: handlers emit it while the runtime drains.
struct Hop(u64);

#[test]
fn emits_racing_a_shutdown_are_handled_or_given_back() {
    const THREADS: usize = 3;
    const PER_THREAD: u64 = 20_000;
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let drops = Drops::new(THREADS * PER_THREAD as usize);

    // A pooled subscription that chains a hop; the hop's subscription; a dedicated one.
    let first = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let hops = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let dedicated_seen = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let (f, e) = (first.clone(), emitter.clone());
    let _first = linker
        .on::<Item>()
        .call(move |item: &Item| {
            f.0.fetch_add(1, Ordering::Relaxed);
            f.1.fetch_add(item.value, Ordering::Relaxed);
            // Accepted during the drain: the chain completes.
            assert_eq!(e.emit(Hop(item.value)).unwrap().delivered, 1);
        })
        .unwrap();
    let h = hops.clone();
    // Unbounded: an emit from a pool worker never waits, so a full mailbox would refuse
    // a hop (documented; the handler would get it back in `EmitError::Full`).
    let _hop = linker
        .on::<Hop>()
        .capacity(usize::MAX)
        .call(move |hop: &Hop| {
            h.0.fetch_add(1, Ordering::Relaxed);
            h.1.fetch_add(hop.0, Ordering::Relaxed);
        })
        .unwrap();
    let d = dedicated_seen.clone();
    let dedicated = linker
        .on::<Item>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(move |item: &Item| {
            d.0.fetch_add(1, Ordering::Relaxed);
            d.1.fetch_add(item.value, Ordering::Relaxed);
        })
        .unwrap();

    let start = Barrier::new(THREADS + 1);
    let halfway = Barrier::new(THREADS + 1);
    // Per thread: (accepted prefix length, accepted sum, sum of what reached the dedicated
    // subscription).
    let results: Vec<(u64, u64, u64, u64)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (emitter, drops, start, halfway) = (&emitter, &drops, &start, &halfway);
                let dedicated = dedicated.id();
                scope.spawn(move || {
                    start.wait();
                    let (mut accepted, mut sum, mut to_dedicated, mut to_dedicated_sum) =
                        (0, 0, 0, 0);
                    let mut refused_from = None;
                    for seq in 0..PER_THREAD {
                        if seq == PER_THREAD / 4 {
                            halfway.wait();
                        }
                        let value = seq + 1;
                        let item = Item {
                            thread,
                            seq,
                            value,
                            _token: drops.token(thread * PER_THREAD as usize + seq as usize),
                        };
                        match emitter.emit(item) {
                            Ok(delivery) => {
                                assert_eq!(refused_from, None, "accepted after a refusal");
                                accepted += 1;
                                sum += value;
                                match delivery.refused.as_slice() {
                                    [] => {
                                        assert_eq!(delivery.delivered, 2);
                                        to_dedicated += 1;
                                        to_dedicated_sum += value;
                                    }
                                    // The dedicated thread's gate closed between the two.
                                    [(id, Refusal::Shutdown)] if *id == dedicated => {
                                        assert_eq!(delivery.delivered, 1)
                                    }
                                    other => panic!("{other:?}"),
                                }
                            }
                            Err(EmitError::Shutdown(item)) => {
                                assert_eq!((item.thread, item.seq), (thread, seq));
                                refused_from.get_or_insert(seq);
                            }
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                    (accepted, sum, to_dedicated, to_dedicated_sum)
                })
            })
            .collect();
        start.wait();
        halfway.wait();
        let report = runtime.shutdown();
        assert!(report.drained && report.joined && report.first);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted: u64 = results.iter().map(|r| r.0).sum();
    let sum: u64 = results.iter().map(|r| r.1).sum();
    eprintln!(
        "accepted {accepted} of {}; the dedicated subscription refused {}",
        THREADS as u64 * PER_THREAD,
        dedicated.stats().refused
    );
    assert!(accepted >= THREADS as u64 * PER_THREAD / 4);
    // Everything accepted was handled, and every chain it started completed.
    assert_eq!(first.0.load(Ordering::Relaxed), accepted);
    assert_eq!(first.1.load(Ordering::Relaxed), sum);
    assert_eq!(hops.0.load(Ordering::Relaxed), accepted);
    assert_eq!(hops.1.load(Ordering::Relaxed), sum);
    assert_eq!(
        dedicated_seen.0.load(Ordering::Relaxed),
        results.iter().map(|r| r.2).sum::<u64>()
    );
    assert_eq!(
        dedicated_seen.1.load(Ordering::Relaxed),
        results.iter().map(|r| r.3).sum::<u64>()
    );
    assert_eq!(
        dedicated.stats().refused,
        accepted - results.iter().map(|r| r.2).sum::<u64>()
    );
    assert_eq!(linker.dead_letter_counts().total(), 0);
    assert_eq!(runtime.stats().threads, 0);
    drops.assert_each_once();
}

/// A once subscription under test: its handler's run count.
struct OnceSub {
    sub: Subscription,
    runs: Arc<AtomicUsize>,
}

#[test]
fn once_subscriptions_run_at_most_once_and_exactly_once_unless_refused() {
    const ROUNDS: usize = 2_000;
    let pool = Runtime::builder().workers(2).build().unwrap();
    let home = Runtime::builder().workers(1).name("home").build().unwrap();
    let refused_letters: Arc<Mutex<Vec<SubscriptionId>>> = Arc::default();
    let other_letters = Arc::new(AtomicUsize::new(0));
    let (r, o) = (refused_letters.clone(), other_letters.clone());
    let linker = Linker::builder()
        .runtime(&home)
        .dead_letter_hook(move |letter: DeadLetter| match letter.reason {
            DeadLetterReason::RefusedOnceClaim => {
                r.lock().unwrap().push(letter.subscription.unwrap())
            }
            _ => {
                o.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let actors = Emitter::new(&linker, Actors::new(&pool));
    let inline = Emitter::inline(&linker);

    let once = |linker: &Linker, kind: usize| -> OnceSub {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let sub = match kind {
            0 => linker.on::<u64>().once().call(move |_: &u64| {
                r.fetch_add(1, Ordering::SeqCst);
            }),
            1 => linker
                .subscribe([EventKey::named("a"), EventKey::named("b")])
                .once()
                .call(move |_: &Event<'_>| {
                    r.fetch_add(1, Ordering::SeqCst);
                }),
            2 => linker
                .on::<u64>()
                .once()
                .placement(Placement::Dedicated(Spin::Backoff))
                .call(move |_: &u64| {
                    r.fetch_add(1, Ordering::SeqCst);
                }),
            _ => linker
                .on::<u16>()
                .once()
                .placement(Placement::Dedicated(Spin::Backoff))
                .call(move |_: &u16| {
                    r.fetch_add(1, Ordering::SeqCst);
                }),
        }
        .unwrap();
        OnceSub { sub, runs }
    };

    let round: Mutex<Vec<Subscription>> = Mutex::new(Vec::new());
    let unsubscribed: Mutex<HashMap<SubscriptionId, usize>> = Mutex::new(HashMap::new());
    let delivery_refused: Mutex<Vec<SubscriptionId>> = Mutex::new(Vec::new());
    let shutdown_round = ROUNDS / 2;
    let home_down = AtomicBool::new(false);
    let go = Barrier::new(4);
    let done = Barrier::new(4);
    // Dedicated once subscriptions that no emission reaches before the shutdown.
    let mut all: Vec<OnceSub> = (0..3).map(|_| once(&linker, 3)).collect();
    thread::scope(|scope| {
        let (round, unsubscribed, delivery_refused, go, done) =
            (&round, &unsubscribed, &delivery_refused, &go, &done);
        let (home, home_down) = (&home, &home_down);
        for (emitter, name) in [(&actors, "a"), (&inline, "b")] {
            scope.spawn(move || {
                for r in 0..ROUNDS {
                    go.wait();
                    for result in [
                        emitter.emit(r as u64).map_err(|e| e.into_inner() as usize),
                        emitter.emit_named(name, r).map_err(|e| e.into_inner()),
                    ] {
                        match result {
                            Ok(delivery) => delivery_refused
                                .lock()
                                .unwrap()
                                .extend(delivery.refused.iter().map(|(id, _)| *id)),
                            // Every subscription refused (only a dedicated one, shut down).
                            Err(event) => assert_eq!(event, r),
                        }
                    }
                    done.wait();
                }
            });
        }
        scope.spawn(move || {
            let mut rng = Rng(11);
            for r in 0..ROUNDS {
                go.wait();
                let subs = round.lock().unwrap().clone();
                let pick = &subs[rng.below(subs.len() as u64) as usize];
                if pick.unsubscribe() {
                    *unsubscribed.lock().unwrap().entry(pick.id()).or_default() += 1;
                }
                if r == shutdown_round {
                    // Races the emits of this round: its dedicated once subscription runs
                    // (drained) or is refused, reported.
                    let report = home.shutdown_timeout(BOUND);
                    assert!(report.drained && report.joined);
                    home_down.store(true, Ordering::SeqCst);
                }
                done.wait();
            }
        });
        for r in 0..ROUNDS {
            let kinds = if r <= shutdown_round { 3 } else { 2 };
            let subs: Vec<OnceSub> = (0..kinds).map(|kind| once(&linker, kind)).collect();
            *round.lock().unwrap() = subs.iter().map(|s| s.sub.clone()).collect();
            all.extend(subs);
            go.wait();
            done.wait();
        }
    });
    assert!(home_down.load(Ordering::SeqCst));
    // The dedicated once subscriptions never reached before the shutdown: a claim now is
    // refused (Shutdown) and reported to the dead letters; the emit gives the event back.
    assert!(matches!(inline.emit(5u16), Err(EmitError::Shutdown(5))));
    assert_eq!(pool.wait_idle_timeout(BOUND), Ok(true));

    // The accounting, per subscription.
    let refused: Vec<SubscriptionId> = refused_letters.lock().unwrap().clone();
    let refused_set: HashSet<SubscriptionId> = refused.iter().copied().collect();
    assert_eq!(refused.len(), refused_set.len(), "a refusal reported twice");
    for id in delivery_refused.lock().unwrap().iter() {
        assert!(
            refused_set.contains(id),
            "{id:?} refused in a Delivery only"
        );
    }
    let unsubscribed = unsubscribed.lock().unwrap();
    let (mut ran, mut cancelled, mut lost) = (0, 0, 0);
    for once in &all {
        let id = once.sub.id();
        let runs = once.runs.load(Ordering::SeqCst);
        let by_thread = unsubscribed.get(&id).copied().unwrap_or(0);
        // What never met an emission is unsubscribed now (exactly one of claim and
        // unsubscribe wins).
        let at_end = usize::from(once.sub.unsubscribe());
        let reported = usize::from(refused_set.contains(&id));
        assert!(runs <= 1, "{id:?} ran {runs} times");
        assert_eq!(
            runs + by_thread + at_end + reported,
            1,
            "{id:?}: ran {runs}, unsubscribed {by_thread}+{at_end}, refused {reported}"
        );
        assert_eq!(once.sub.stats().invoked, runs as u64);
        ran += runs;
        cancelled += by_thread + at_end;
        lost += reported;
    }
    assert_eq!(other_letters.load(Ordering::SeqCst), 0);
    eprintln!("once: ran {ran}, cancelled {cancelled}, refused and reported {lost}");
    assert!(
        ran > 0 && cancelled > 0,
        "ran {ran}, cancelled {cancelled}, refused {lost}"
    );
    assert!(linker.is_empty());
    assert!(pool.shutdown_timeout(BOUND).drained);
}

/// Stages of a chain for `emit_and_wait`.
struct Start(usize);
struct Middle(usize);
struct End(usize);

#[test]
fn emit_and_wait_returns_after_the_whole_chain_under_contention() {
    const THREADS: usize = 2;
    const PER_THREAD: usize = 3_000;
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::builder().runtime(&runtime).build().unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let ends: Arc<Vec<AtomicU8>> = Arc::new(
        (0..THREADS * PER_THREAD * 2)
            .map(|_| AtomicU8::new(0))
            .collect(),
    );
    let e = emitter.clone();
    let _start = linker
        .on::<Start>()
        .call(move |s: &Start| {
            let _ = e.emit(Middle(s.0)).unwrap();
        })
        .unwrap();
    let e = emitter.clone();
    // Unbounded mailboxes down the chain: an emit from a handler never waits for room.
    let _middle = linker
        .on::<Middle>()
        .capacity(usize::MAX)
        .call(move |m: &Middle| {
            let _ = e.emit(End(m.0)).unwrap();
        })
        .unwrap();
    let n = ends.clone();
    let _end = linker
        .on::<End>()
        .capacity(usize::MAX)
        .placement(Placement::Dedicated(Spin::Backoff))
        .call(move |end: &End| {
            n[end.0].fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    thread::scope(|scope| {
        for thread in 0..THREADS {
            let (emitter, ends) = (&emitter, &ends);
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let id = thread * PER_THREAD + i;
                    let completed = emitter.emit_and_wait(Start(id)).unwrap();
                    assert!(completed.all_succeeded());
                    assert_eq!(
                        ends[id].load(Ordering::SeqCst),
                        1,
                        "emit_and_wait returned before its chain's end"
                    );
                }
            });
        }
        // Noise: plain emits of other chains at the same time.
        let (emitter, base) = (&emitter, THREADS * PER_THREAD);
        scope.spawn(move || {
            for i in 0..THREADS * PER_THREAD {
                let _ = emitter.emit(Start(base + i)).unwrap();
            }
        });
    });
    assert_eq!(runtime.wait_idle_timeout(BOUND), Ok(true));
    assert!(ends.iter().all(|n| n.load(Ordering::SeqCst) == 1));
    assert!(runtime.shutdown_timeout(BOUND).drained);
}
