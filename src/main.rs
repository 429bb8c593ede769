//! The `ventus` binary (built with the default `cli` feature).
//!
//! ```text
//! ventus            # the tour, then a short bench (under 15 s)
//! ventus tour       # the tour alone: the linker, the emitters, the actors, the buses, the nexus
//! ventus bench      # ventus against raw crossbeam-channel (`ventus bench --help`)
//! ventus --help
//! ```
//!
//! From a checkout: `cargo run --release` (or `cargo run --release -- tour --debug`).
//! The tour is a shorter version of `examples/linker_tour.rs`, `examples/actors.rs` and
//! `examples/outbox.rs`; it asserts what it prints and exits 0. The bench code lives in
//! `src/bench/`, which the `benches/` targets include too.

mod bench;

use std::collections::BTreeSet;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};
use ventus::bus::{EmitOnCommitBus, EventBus};
use ventus::{
    Actors, Delivery, EmitError, Emitter, Event, EventKey, Failure, Linker, MAX_DEPTH, Placement,
    Runtime, Spin, SubscribeError, set_global_debug,
};

/// The command line (its `about` is the crate's description).
#[derive(Debug, Parser)]
#[command(name = "ventus", version, about)]
struct Cli {
    /// What to run (default: `tour`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a tour of the linker, the emitters, the actor runtime, the buses and the nexus,
    /// printing what happens (with no command: the tour, then a short bench).
    Tour(TourArgs),
    /// Measure ventus against raw crossbeam-channel: the same topology in the same process,
    /// interleaved repetitions, medians and ratios, HDR latency percentiles.
    Bench(Box<bench::BenchArgs>),
}

#[derive(Debug, Default, Args)]
struct TourArgs {
    /// Also print every linker's debug lines (on stderr), as `VENTUS_DEBUG=1` does.
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => tour(&TourArgs::default()).and_then(|()| short_bench()),
        Some(Command::Tour(args)) => tour(&args),
        Some(Command::Bench(args)) => bench::run(&args, bench::Preset::Full, &["bench"]),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ventus: {error}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn Error>>;

/// The end of `ventus` with no command: every scenario at small sizes, the table last.
fn short_bench() -> Res {
    section("How fast: ventus against raw crossbeam-channel, same run (`ventus bench` for more)");
    bench::run(
        &bench::BenchArgs::default(),
        bench::Preset::Short,
        &["bench"],
    )
}

/// What the handlers did, in order; each entry is printed when it is recorded.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        let entry = entry.into();
        println!("    | {entry}");
        self.0.lock().expect("log lock").push(entry);
    }

    /// The entries recorded since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("log lock"))
    }
}

/// Prints what an emit reached; returns how many subscriptions took the event.
fn show(what: &str, delivery: Delivery) -> usize {
    println!("  {what}: delivered {}", delivery.delivered);
    for (id, refusal) in &delivery.refused {
        println!("    refused by {id}: {refusal}");
    }
    delivery.delivered
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

#[derive(Debug)]
struct UserLoggedIn(&'static str);
#[derive(Debug)]
struct FirstEvent;
#[derive(Debug)]
struct SecondEvent;

fn tour(args: &TourArgs) -> Res {
    if args.debug {
        set_global_debug(true);
    }
    println!(
        "ventus {}: a tour of the linker, the emitters, the actor runtime, the buses and the nexus",
        env!("CARGO_PKG_VERSION")
    );
    subscriptions()?;
    workflow()?;
    unsubscribing()?;
    namespace()?;
    inline_emitter()?;
    actors()?;
    buses()?;
    nexus()?;
    println!(
        "\nDone. More: cargo run --example linker_tour (or actors, shutdown, outbox, nexus_demo)"
    );
    Ok(())
}

/// Regular, once, named, multi-event and `Any` subscriptions.
fn subscriptions() -> Res {
    section("Subscriptions");
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let log = Log::default();

    let l = log.clone();
    let _welcome = linker
        .on::<UserLoggedIn>()
        .call(move |user: &UserLoggedIn| l.push(format!("welcome, {}", user.0)))?;
    let l = log.clone();
    let first_login = linker
        .on::<UserLoggedIn>()
        .once()
        .call(move |user: &UserLoggedIn| l.push(format!("first login ever: {}", user.0)))?;
    show(
        "emit(UserLoggedIn(ada))",
        emitter.emit(UserLoggedIn("ada"))?,
    );
    show(
        "emit(UserLoggedIn(grace))",
        emitter.emit(UserLoggedIn("grace"))?,
    );
    assert_eq!(log.take().len(), 3);
    assert!(!first_login.is_active());

    let l = log.clone();
    let _greet = linker
        .on_named("greet")
        .call(move |who: &String| l.push(format!("hello, {who}")))?;
    show(
        "emit_named(\"greet\", \"linus\")",
        emitter.emit_named("greet", String::from("linus"))?,
    );

    let l = log.clone();
    let _multi = linker
        .subscribe([EventKey::of::<FirstEvent>(), EventKey::named("second")])
        .call(move |event: &Event<'_>| l.push(format!("multi-event got {}", event.key())))?;
    let l = log.clone();
    let _any = linker
        .on_any()
        .call(move |event: &Event<'_>| l.push(format!("Any saw {}", event.key())))?;
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    show(
        "emit_named(\"second\", ())",
        emitter.emit_named("second", ())?,
    );
    show("emit(SecondEvent)", emitter.emit(SecondEvent)?);
    assert_eq!(log.take().len(), 6);
    Ok(())
}

/// The success/failure workflow and the error hook.
fn workflow() -> Res {
    section("Success and failure callbacks");
    let log = Log::default();
    let l = log.clone();
    let linker = Linker::builder()
        .name("workflow")
        .error_hook(move |linker, report| l.push(format!("error hook [{linker}]: {report}")))
        .build()?;
    let emitter = Emitter::inline(&linker);

    let (ok, failed) = (log.clone(), log.clone());
    let _parse = linker
        .on_named("parse")
        .on_success(move |n: u32| ok.push(format!("success: {n}")))
        .on_failure(move |failure: Failure| failed.push(format!("failure: {failure}")))
        .call(|text: &String| text.parse::<u32>())?;
    show(
        "emit_named(\"parse\", \"42\")",
        emitter.emit_named("parse", String::from("42"))?,
    );
    show(
        "emit_named(\"parse\", \"x\")",
        emitter.emit_named("parse", String::from("x"))?,
    );
    show(
        "emit_named(\"parse\", 7u8)",
        emitter.emit_named("parse", 7u8)?,
    );

    let _careless = linker
        .on::<FirstEvent>()
        .call(|_: &FirstEvent| Err::<(), _>("disk full"))?;
    show(
        "emit(FirstEvent), a failure with no failure callback",
        emitter.emit(FirstEvent)?,
    );
    let entries = log.take();
    assert_eq!(entries.len(), 4);
    assert!(entries[3].starts_with("error hook"));
    Ok(())
}

/// Unsubscribing, and the registry queries.
fn unsubscribing() -> Res {
    section("Unsubscribing and the registry");
    let linker = Linker::new();
    let both = || [EventKey::of::<FirstEvent>(), EventKey::of::<SecondEvent>()];
    let a = linker.on::<FirstEvent>().call(|_: &FirstEvent| {})?;
    let b = linker.subscribe(both()).call(|_: &Event<'_>| {})?;
    let c = linker.subscribe(both()).call(|_: &Event<'_>| {})?;
    println!(
        "  3 subscriptions on {} events; subscriptions_of(FirstEvent): {}",
        linker.event_count(),
        linker.subscriptions_of(&EventKey::of::<FirstEvent>()).len()
    );

    println!(
        "  a.unsubscribe(): {}, again: {}",
        a.unsubscribe(),
        a.unsubscribe()
    );
    let removed = linker.remove(&EventKey::of::<FirstEvent>(), &b);
    println!(
        "  remove(FirstEvent, b): {removed}; b is still on {:?}",
        b.events()
    );
    let removed = linker.remove_event(&EventKey::of::<SecondEvent>());
    println!(
        "  remove_event(SecondEvent): {removed}; b active: {}, c active: {} on {:?}",
        b.is_active(),
        c.is_active(),
        c.events()
    );
    assert!(!b.is_active() && c.is_active());
    {
        let _guard = c.guard();
    }
    println!(
        "  c's guard dropped: c active: {}, is_empty: {}",
        c.is_active(),
        linker.is_empty()
    );
    assert!(linker.is_empty());
    Ok(())
}

/// A second `Linker` is a namespace; `max_subscribers` caps each of its events.
fn namespace() -> Res {
    section("A namespace with max_subscribers");
    let app = Linker::new();
    let billing = Linker::builder()
        .name("billing")
        .max_subscribers(1)
        .build()?;
    let _in_app = app.on::<FirstEvent>().call(|_: &FirstEvent| {})?;
    let _one = billing.on::<FirstEvent>().call(|_: &FirstEvent| {})?;
    let delivered = show(
        "emit(FirstEvent) in app (billing has a subscriber too)",
        Emitter::inline(&app).emit(FirstEvent)?,
    );
    assert_eq!(delivered, 1);
    let two = billing.on::<FirstEvent>().call(|_: &FirstEvent| {});
    match &two {
        Err(error) => println!("  a second FirstEvent subscription in billing: {error}"),
        Ok(_) => println!("  a second FirstEvent subscription in billing: accepted"),
    }
    assert!(matches!(
        two,
        Err(SubscribeError::TooManySubscribers { max: 1, .. })
    ));
    Ok(())
}

/// Order, nesting, re-entrancy and the depth limit of the inline emitter.
fn inline_emitter() -> Res {
    section("The inline emitter");
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let log = Log::default();

    // A handler's emit to another subscription nests (depth-first); to itself, it is
    // queued and runs right after the current invocation.
    let (l, e) = (log.clone(), emitter.clone());
    linker.on::<u32>().call(move |n: &u32| {
        l.push(format!("start {n}"));
        if *n < 1 {
            assert_eq!(e.emit(n + 1).expect("queued").delivered, 1);
            assert_eq!(e.emit_named("side", *n).expect("nested").delivered, 1);
        }
        l.push(format!("end {n}"));
    })?;
    let l = log.clone();
    linker
        .on_named("side")
        .call(move |n: &u32| l.push(format!("  side {n} (nested)")))?;
    show("emit(0u32)", emitter.emit(0u32)?);
    assert_eq!(
        log.take(),
        ["start 0", "  side 0 (nested)", "end 0", "start 1", "end 1"]
    );
    linker.remove_all();

    // A chain of handlers deeper than MAX_DEPTH: the last emit is refused.
    let deepest = Arc::new(Mutex::new(None));
    for level in 0..=MAX_DEPTH {
        let (e, deepest) = (emitter.clone(), deepest.clone());
        linker
            .on_named(&format!("hop-{level}"))
            .call(move |_: &()| {
                if let Err(EmitError::TooDeep(())) = e.emit_named(&format!("hop-{}", level + 1), ())
                {
                    *deepest.lock().expect("lock") = Some(level);
                }
            })?;
    }
    show(
        "emit_named(\"hop-0\", ())",
        emitter.emit_named("hop-0", ())?,
    );
    let deepest = deepest.lock().expect("lock").take();
    println!(
        "  the emit from hop-{} was TooDeep (MAX_DEPTH = {MAX_DEPTH})",
        deepest.unwrap_or(0)
    );
    assert_eq!(deepest, Some(MAX_DEPTH - 1));
    // The handlers hold the emitter, which holds the linker: clear it to break the cycle.
    linker.remove_all();
    Ok(())
}

#[derive(Debug)]
struct Job(u64);

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// The actor runtime: a pool of two workers, a dedicated thread, `wait_idle`, `shutdown`.
fn actors() -> Res {
    section("Actors");
    let runtime = Runtime::builder().workers(2).name("tour").build()?;
    // The linker's dedicated subscriptions get their threads from this runtime.
    let linker = Linker::builder().name("actors").runtime(&runtime).build()?;
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let threads = Arc::new(Mutex::new(BTreeSet::new()));
    let sums = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];

    for (index, (label, placement)) in [
        ("pooled", Placement::Default),
        ("dedicated", Placement::Dedicated(Spin::Backoff)),
    ]
    .into_iter()
    .enumerate()
    {
        let (threads, sum) = (threads.clone(), sums[index].clone());
        linker
            .on::<Job>()
            .placement(placement)
            .call(move |job: &Job| {
                sum.fetch_add(job.0, Ordering::Relaxed);
                threads
                    .lock()
                    .expect("threads lock")
                    .insert((label, thread_name()));
            })?;
    }
    // Under the actor strategy `emit` returns once the event is queued.
    show("emit(Job(1))", emitter.emit(Job(1))?);
    for n in 2..=100 {
        assert_eq!(emitter.emit(Job(n))?.delivered, 2);
    }
    println!("  emit(Job(2..=100)): queued");
    runtime.wait_idle()?;
    let sums = sums.map(|sum| sum.load(Ordering::Relaxed));
    println!(
        "  wait_idle(): pooled sum {}, dedicated sum {}",
        sums[0], sums[1]
    );
    assert_eq!(sums, [5050, 5050]);
    for (label, thread) in threads.lock().expect("threads lock").iter() {
        println!("    {label} ran on {thread}");
        let prefix = match *label {
            "pooled" => "tour-worker-",
            _ => "tour-dedicated-",
        };
        assert!(thread.starts_with(prefix), "{label}: {thread}");
    }

    let report = runtime.shutdown();
    println!(
        "  shutdown(): drained {}, joined {}",
        report.drained, report.joined
    );
    assert!(report.drained && report.joined);
    match emitter.emit(Job(0)) {
        Err(EmitError::Shutdown(job)) => {
            println!("  emit after shutdown: refused, {job:?} given back");
        }
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
struct OrderPlaced(u32);

/// An emit-on-commit bus: its events are emitted only when the unit of work commits.
fn buses() -> Res {
    section("A transactional bus (EmitOnCommitBus)");
    let linker = Linker::new();
    let log = Log::default();
    let l = log.clone();
    let _announce = linker
        .on::<OrderPlaced>()
        .call(move |order: &OrderPlaced| l.push(format!("order {} announced", order.0)))?;
    let mut outbox = EmitOnCommitBus::new(&Emitter::inline(&linker));

    outbox.publish(OrderPlaced(1));
    outbox.publish(OrderPlaced(2));
    let given_back = outbox.apply(false).into_events();
    println!(
        "  apply(false): rolled back, nothing emitted, {:?} given back",
        given_back
    );
    assert!(log.take().is_empty());
    assert_eq!(given_back, [OrderPlaced(1), OrderPlaced(2)]);

    outbox.publish_all(given_back);
    let emitted = outbox.apply(true);
    println!(
        "  apply(true): committed, {} deliveries",
        emitted.delivered()
    );
    assert!(emitted.is_complete());
    assert_eq!(log.take(), ["order 1 announced", "order 2 announced"]);
    Ok(())
}

/// The nexus: a `mio` poll loop on this thread, fed by a producer and a count-down timer.
fn nexus() -> Res {
    section("The nexus (a mio poll loop: producers, timers, routing)");
    let log = Log::default();
    let mut nexus = ventus::Nexus::new()?;
    let l = log.clone();
    nexus.on("greeting", move |event, _cx| {
        let text = event.payload_ref::<&str>().copied().unwrap_or("?");
        l.push(format!("greeting: {text}"));
    })?;
    let l = log.clone();
    nexus.on(1, move |event, cx| {
        let left = event.payload_ref::<u64>().copied().unwrap_or(0);
        l.push(format!("countdown {left}"));
        if left == 0 {
            cx.stop();
        }
    })?;
    nexus.producer().push(ventus::NexusEvent::new(
        1,
        "greeting",
        "hello from a producer thread",
    ))?;
    nexus.add_timer(ventus::Timer::new(
        std::time::Duration::from_millis(1),
        ventus::TimerKind::CountDown,
        3,
        1,
    )?);
    nexus.run()?;
    let seen = log.take();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.contains(&"countdown 0".to_owned()));
    Ok(())
}
