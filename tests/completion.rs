//! Completion: `emit_and_wait` (chains included, outcomes per subscription) and `ask`
//! (request/reply to one subscription), under every strategy and placement, and their
//! refusals where waiting could hang the pool.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use ventus::{
    Actors, AskError, EmitError, Emitter, Linker, Outcome, Placement, Policy, Refusal, Reply,
    Runtime, Spin,
};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

struct Start(u64);
struct Middle(u64);
struct End(u64);

/// A three-step chain, each step a pooled actor emitting the next through the runtime:
/// `emit_and_wait` returns only after the last step ran, every time.
#[test]
fn emit_and_wait_waits_for_the_whole_chain() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let total = Arc::new(AtomicU64::new(0));
    let e = emitter.clone();
    let _a = linker
        .on::<Start>()
        .call(move |s: &Start| {
            // Two children: the fan-out is waited for too.
            let _ = e.emit(Middle(s.0));
            let _ = e.emit(Middle(s.0));
        })
        .unwrap();
    let e = emitter.clone();
    let _b = linker
        .on::<Middle>()
        .call(move |m: &Middle| {
            let _ = e.emit(End(m.0));
        })
        .unwrap();
    let t = total.clone();
    let _c = linker
        .on::<End>()
        .call(move |end: &End| {
            t.fetch_add(end.0, Ordering::SeqCst);
        })
        .unwrap();
    let mut expected = 0;
    for n in 1..=300 {
        let completed = emitter.emit_and_wait(Start(n)).unwrap();
        expected += 2 * n;
        assert_eq!(
            total.load(Ordering::SeqCst),
            expected,
            "emission {n} returned early"
        );
        assert!(completed.all_succeeded());
        assert_eq!(
            completed.outcomes().len(),
            1,
            "only the emission's own subscriptions"
        );
    }
}

#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}
impl std::error::Error for Boom {}

struct Job(u32);

/// One outcome per subscription: succeeded, failed (with the error's text), panicked (with
/// the message), refused (with the refusal), in subscription order.
#[test]
fn outcomes_report_each_subscription() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let (block_tx, block_rx) = mpsc::channel::<()>();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let block_rx = std::sync::Mutex::new(block_rx);
    let ok = linker.on::<Job>().call(|_: &Job| {}).unwrap();
    let failing = linker
        .on::<Job>()
        .on_failure(|_| {})
        .call(|_: &Job| -> Result<(), Boom> { Err(Boom) })
        .unwrap();
    let panicking = linker
        .on::<Job>()
        .on_failure(|_| {})
        .call(|job: &Job| {
            if job.0 == 1 {
                panic!("job one");
            }
        })
        .unwrap();
    let full = linker
        .on::<Job>()
        .capacity(1)
        .policy(Policy::Fail)
        .call(move |job: &Job| {
            if job.0 == 0 {
                entered_tx.send(()).unwrap();
                block_rx.lock().unwrap().recv().unwrap();
            }
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    // Occupy `full`: its one slot is taken until released.
    let _ = emitter.emit(Job(0)).unwrap();
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    runtime.wait_idle_timeout(Duration::ZERO).unwrap();
    let completed = emitter.emit_and_wait(Job(1)).unwrap();
    block_tx.send(()).unwrap();
    let outcomes = completed.outcomes();
    let ids: Vec<_> = outcomes.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![ok.id(), failing.id(), panicking.id(), full.id()]);
    assert_eq!(completed.outcome(ok.id()), Some(&Outcome::Succeeded));
    assert_eq!(
        completed.outcome(failing.id()),
        Some(&Outcome::Failed("boom".into()))
    );
    assert!(
        matches!(completed.outcome(panicking.id()), Some(Outcome::Panicked(m)) if m.contains("job one"))
    );
    assert_eq!(
        completed.outcome(full.id()),
        Some(&Outcome::Refused(Refusal::Full))
    );
    assert!(!completed.all_succeeded());
    assert_eq!(completed.delivery().delivered, 3);
    runtime.wait_idle().unwrap();
}

/// Inline emitter, dedicated subscription that emits to a pooled one through an actor
/// emitter: the inline `emit_and_wait` waits for both.
#[test]
fn emit_and_wait_inline_waits_for_dedicated_and_chained() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let actors = Emitter::new(&linker, Actors::new(&runtime));
    let seen = Arc::new(AtomicU64::new(0));
    let a = actors.clone();
    let _dedicated = linker
        .on::<Start>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .runtime(&runtime)
        .call(move |s: &Start| {
            let _ = a.emit(End(s.0));
        })
        .unwrap();
    let t = seen.clone();
    let _pooled = linker
        .on::<End>()
        .call(move |e: &End| {
            t.fetch_add(e.0, Ordering::SeqCst);
        })
        .unwrap();
    let inline = Emitter::inline(&linker);
    for n in 1..=100u64 {
        let completed = inline.emit_and_wait(Start(n)).unwrap();
        assert!(completed.all_succeeded());
        assert_eq!(seen.load(Ordering::SeqCst), n * (n + 1) / 2);
    }
}

/// A dedicated handler may block: its `emit_and_wait` into the pool completes.
#[test]
fn dedicated_handler_may_emit_and_wait() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let actors = Emitter::new(&linker, Actors::new(&runtime));
    let (tx, rx) = mpsc::channel();
    let a = actors.clone();
    let _dedicated = linker
        .on::<Start>()
        .placement(Placement::Dedicated(Spin::Backoff))
        .runtime(&runtime)
        .call(move |s: &Start| {
            let completed = a.emit_and_wait(End(s.0)).unwrap();
            tx.send(completed.all_succeeded()).unwrap();
        })
        .unwrap();
    let _pooled = linker.on::<End>().call(|_: &End| {}).unwrap();
    let _ = actors.emit(Start(1)).unwrap();
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
}

/// On a pool worker, `emit_and_wait` and `ask` refuse with `WouldDeadlock` (and give the
/// event back) instead of holding the worker: two pooled handlers waiting on each other
/// on two workers cannot hang the pool.
#[test]
fn pool_worker_waits_are_refused() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let peer = linker.on::<Middle>().call(|_: &Middle| {}).unwrap();
    let (tx, rx) = mpsc::channel();
    let e = emitter.clone();
    let _waiter = linker
        .on::<Start>()
        .call(move |s: &Start| {
            let wait = matches!(e.emit_and_wait(End(s.0)), Err(EmitError::WouldDeadlock(End(n))) if n == s.0);
            let ask = matches!(
                e.ask(&peer, |_reply: Reply<u8>| Middle(s.0), Duration::from_secs(1)),
                Err(AskError::WouldDeadlock(Middle(n))) if n == s.0
            );
            tx.send((wait, ask)).unwrap();
        })
        .unwrap();
    let _ = emitter.emit(Start(1)).unwrap();
    let _ = emitter.emit(Start(2)).unwrap();
    for _ in 0..2 {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            (true, true)
        );
    }
}

#[test]
fn emit_named_and_wait_waits_and_rejects_empty_names() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let _sub = linker
        .on_named("tick")
        .call(move |_: &u32| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    for n in 1..=50 {
        assert!(
            emitter
                .emit_named_and_wait("tick", 1u32)
                .unwrap()
                .all_succeeded()
        );
        assert_eq!(count.load(Ordering::SeqCst), n);
    }
    assert!(matches!(
        emitter.emit_named_and_wait("", 5u32),
        Err(EmitError::EmptyName(5))
    ));
    // No subscribers: completes at once, with no outcomes.
    let completed = emitter.emit_and_wait(Start(0)).unwrap();
    assert!(completed.outcomes().is_empty() && completed.all_succeeded());
}

struct Price {
    symbol: &'static str,
    reply: Reply<u64>,
}

/// `ask` reaches the one subscription asked, under the actor and inline strategies alike.
#[test]
fn ask_replies_from_the_one_subscription() {
    let runtime = runtime(2);
    let linker = Linker::new();
    let other_calls = Arc::new(AtomicUsize::new(0));
    let quotes = linker
        .on::<Price>()
        .call(|ask: &Price| {
            assert!(ask.reply.send(ask.symbol.len() as u64));
            // A second reply cannot arrive.
            assert!(!ask.reply.send(0));
        })
        .unwrap();
    let o = other_calls.clone();
    let _other = linker
        .on::<Price>()
        .call(move |_: &Price| {
            o.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    for emitter in [
        Emitter::new(&linker, Actors::new(&runtime)),
        Emitter::inline(&linker),
    ] {
        for symbol in ["A", "ACME", "VENTUS"] {
            let price = emitter
                .ask(
                    &quotes,
                    |reply| Price { symbol, reply },
                    Duration::from_secs(10),
                )
                .unwrap();
            assert_eq!(price, symbol.len() as u64);
        }
    }
    runtime.wait_idle().unwrap();
    assert_eq!(other_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn ask_errors_give_the_request_back_or_say_why() {
    let runtime = runtime(1);
    let linker = Linker::new();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    // Linked to another type: the request comes back.
    let wrong = linker.on::<Start>().call(|_: &Start| {}).unwrap();
    match emitter.ask(
        &wrong,
        |reply| Price { symbol: "X", reply },
        Duration::from_secs(1),
    ) {
        Err(AskError::NotLinked(request)) => assert_eq!(request.symbol, "X"),
        other => panic!("{other:?}"),
    }
    // Unsubscribed: not linked any more.
    let silent = linker.on::<Price>().call(|_: &Price| {}).unwrap();
    // Never replies: the request is dropped after the handler.
    assert!(matches!(
        emitter.ask(
            &silent,
            |reply| Price { symbol: "S", reply },
            Duration::from_secs(10)
        ),
        Err(AskError::NoReply)
    ));
    assert!(silent.unsubscribe());
    assert!(matches!(
        emitter.ask(
            &silent,
            |reply| Price { symbol: "S", reply },
            Duration::from_secs(1)
        ),
        Err(AskError::NotLinked(_))
    ));
    // Replies too late: a timeout.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let slow = linker
        .on::<Price>()
        .call(move |ask: &Price| {
            release_rx.lock().unwrap().recv().unwrap();
            ask.reply.send(1);
        })
        .unwrap();
    assert!(matches!(
        emitter.ask(
            &slow,
            |reply| Price { symbol: "T", reply },
            Duration::from_millis(20)
        ),
        Err(AskError::Timeout)
    ));
    release_tx.send(()).unwrap();
    runtime.wait_idle().unwrap();
    // After shutdown: the emit error holds the request.
    let _ = runtime.shutdown();
    match emitter.ask(
        &slow,
        |reply| Price { symbol: "D", reply },
        Duration::from_secs(1),
    ) {
        Err(AskError::Emit(EmitError::Shutdown(request))) => assert_eq!(request.symbol, "D"),
        other => panic!("{other:?}"),
    }
}
