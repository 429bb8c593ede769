//! A tour of the `Linker` (Pyventus's `EventLinker`) and the inline `Emitter`: every
//! scenario of Pyventus's "Event Linkers" guide, in Rust, printing what happens.
//!
//! - regular, one-time and multi-event subscriptions, `Any` and named events;
//! - the event workflow: handler, success callback, failure callback, the error hook;
//! - unsubscribing: `unsubscribe()`, `unsubscribe_and_wait()`, a guard's drop,
//!   `remove_subscription`, `remove`, `remove_event`, `remove_all`;
//! - the registry queries;
//! - a namespace (a second `Linker`) with `max_subscribers`;
//! - debug mode, per linker with a custom `debug_sink`, per emitter, and global;
//! - the inline emitter: subscription order, nesting, re-entrancy and the depth limit.
//!
//! Run it with:
//!
//! ```bash
//! cargo run --example linker_tour
//! ```
//!
//! It asserts what it prints, and exits 0.

use std::error::Error;
use std::sync::{Arc, Mutex, OnceLock};

use ventus::{
    Delivery, EmitError, Emitter, Event, EventKey, Failure, Linker, MAX_DEPTH, SubscribeError,
    Subscription, WouldDeadlock, global_debug, set_global_debug,
};

type Res = Result<(), Box<dyn Error>>;

/// A user logged in.
#[derive(Debug)]
struct UserLoggedIn {
    name: &'static str,
}

/// Two events for the multi-event and unsubscribe scenarios (Pyventus's guide names them
/// `FirstEvent` and `SecondEvent`).
#[derive(Debug)]
struct FirstEvent;
#[derive(Debug)]
struct SecondEvent;

/// Events of the `billing` namespace.
#[derive(Debug)]
struct InvoiceIssued(u32);
#[derive(Debug)]
struct RefundIssued;

/// What the handlers did, in order: each entry is printed when it is recorded.
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

/// Prints what an emit reached, and returns how many subscriptions took the event.
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

fn main() -> Res {
    regular()?;
    once()?;
    multi_event()?;
    workflow()?;
    unsubscribing()?;
    registry()?;
    namespaces()?;
    debug_mode()?;
    inline_emitter()?;
    println!("\nThe tour is over: every scenario ran as shown.");
    Ok(())
}

/// Regular subscriptions run for every emission until they are unsubscribed.
fn regular() -> Res {
    section("Regular subscriptions");
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let log = Log::default();

    let l = log.clone();
    let _sub = linker
        .on::<UserLoggedIn>()
        .call(move |user: &UserLoggedIn| l.push(format!("welcome, {}", user.name)))?;
    for name in ["ada", "grace", "barbara"] {
        let delivery = emitter.emit(UserLoggedIn { name })?;
        println!(
            "  emit(UserLoggedIn {{ {name} }}): delivered {}",
            delivery.delivered
        );
    }
    assert_eq!(log.take().len(), 3);

    // Named events carry a typed payload; the handler names the type it takes.
    let l = log.clone();
    let _greet = linker
        .on_named("greet")
        .call(move |who: &String| l.push(format!("hello, {who}")))?;
    let delivery = emitter.emit_named("greet", String::from("linus"))?;
    println!("  emit_named(\"greet\"): delivered {}", delivery.delivered);

    // Each subscription is independent: the same closure subscribed twice runs twice.
    let l = log.clone();
    let handler = move |_: &FirstEvent| l.push("the same closure ran");
    linker.on::<FirstEvent>().call(handler.clone())?;
    linker.on::<FirstEvent>().call(handler)?;
    let delivery = emitter.emit(FirstEvent)?;
    println!(
        "  emit(FirstEvent), one closure subscribed twice: delivered {}",
        delivery.delivered
    );
    assert_eq!(delivery.delivered, 2);

    // No subscribers is not an error: nothing is delivered.
    let delivery = emitter.emit(SecondEvent)?;
    println!(
        "  emit(SecondEvent) with no subscribers: delivered {}",
        delivery.delivered
    );
    assert_eq!(delivery.delivered, 0);
    assert_eq!(log.take().len(), 3);
    Ok(())
}

/// A once subscription runs at most once, and leaves the registry when it is claimed.
fn once() -> Res {
    section("One-time subscriptions");
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let log = Log::default();

    let l = log.clone();
    let sub = linker
        .on::<UserLoggedIn>()
        .once()
        .call(move |user: &UserLoggedIn| l.push(format!("first login: {}", user.name)))?;
    for name in ["ada", "grace"] {
        let delivery = emitter.emit(UserLoggedIn { name })?;
        println!(
            "  emit(UserLoggedIn {{ {name} }}): delivered {}",
            delivery.delivered
        );
    }
    assert_eq!(log.take(), ["first login: ada"]);
    println!(
        "  is_once: {}, is_active: {}, still registered: {}, unsubscribe(): {}",
        sub.is_once(),
        sub.is_active(),
        linker.contains_subscription(&sub),
        sub.unsubscribe()
    );
    assert!(!sub.is_active() && !linker.contains_subscription(&sub));
    Ok(())
}

/// One subscription on several keys; `Any`; a once subscription on several keys.
fn multi_event() -> Res {
    section("Multi-event subscriptions");
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let log = Log::default();

    // Any mix of typed and named keys: the handler takes an `Event` and learns the key.
    let l = log.clone();
    let sub = linker
        .subscribe([
            EventKey::of::<FirstEvent>(),
            EventKey::of::<SecondEvent>(),
            EventKey::named("third"),
        ])
        .call(move |event: &Event<'_>| l.push(format!("multi got {}", event.key())))?;
    println!("  subscribed to {} keys", linker.events_of(&sub).len());
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    show("emit(SecondEvent)", emitter.emit(SecondEvent)?);
    show(
        "emit_named(\"third\", 3u8)",
        emitter.emit_named("third", 3u8)?,
    );
    assert_eq!(log.take().len(), 3);
    assert!(sub.unsubscribe());

    // A once subscription on several keys: the first emission of any of them claims it,
    // and it is gone from every key.
    let l = log.clone();
    let sub = linker
        .subscribe([EventKey::of::<FirstEvent>(), EventKey::of::<SecondEvent>()])
        .once()
        .call(move |event: &Event<'_>| l.push(format!("once-multi got {}", event.key())))?;
    let second = emitter.emit(SecondEvent)?.delivered;
    let first = emitter.emit(FirstEvent)?.delivered;
    println!(
        "  once on both: emit(SecondEvent) delivered {second}, then emit(FirstEvent) delivered {first}"
    );
    assert_eq!((second, first), (1, 0));
    assert!(linker.events_of(&sub).is_empty());
    log.take();

    // `Any` receives every emission of its linker, typed or named, and learns the key.
    let l = log.clone();
    let any = linker.on_any().call(move |event: &Event<'_>| {
        let payload = match event.downcast_ref::<u32>() {
            Some(n) => format!(" carrying {n}"),
            None => String::new(),
        };
        l.push(format!(
            "Any saw {} ({}){payload}",
            event.key(),
            event.type_name()
        ));
    })?;
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    show(
        "emit_named(\"order\", 7u32)",
        emitter.emit_named("order", 7u32)?,
    );
    // Pyventus's wildcard is the name "ellipsis"; here it is an ordinary name.
    let l = log.clone();
    let _ellipsis = linker
        .on_named("ellipsis")
        .call(move |_: &()| l.push("\"ellipsis\" ran"))?;
    let delivery = emitter.emit(SecondEvent)?;
    println!(
        "  emit(SecondEvent) with an \"ellipsis\" subscriber: delivered {} (only Any)",
        delivery.delivered
    );
    assert_eq!(delivery.delivered, 1);
    assert!(any.unsubscribe());
    log.take();

    // A subscription linked to a key and to `Any` still runs once per emission.
    let l = log.clone();
    let _both = linker
        .subscribe([EventKey::of::<FirstEvent>(), EventKey::Any])
        .call(move |_: &Event<'_>| l.push("linked to FirstEvent and Any: ran"))?;
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    assert_eq!(log.take().len(), 1);
    Ok(())
}

/// The event workflow: handler, then success or failure callback.
fn workflow() -> Res {
    section("Event workflow: success and failure callbacks");
    let log = Log::default();
    // Errors with nowhere else to go land in the linker's error hook (default: stderr).
    let l = log.clone();
    let linker = Linker::builder()
        .name("workflow")
        .error_hook(move |linker, report| l.push(format!("error hook [{linker}]: {report}")))
        .build()?;
    let emitter = Emitter::inline(&linker);

    // `Ok(v)` goes to the success callback, `Err(e)` to the failure callback.
    let (ok, failed) = (log.clone(), log.clone());
    let _parse = linker
        .on_named("parse")
        .on_success(move |n: u32| ok.push(format!("success: parsed {n}")))
        .on_failure(move |failure: Failure| failed.push(format!("failure: {failure}")))
        .call(|text: &String| text.parse::<u32>())?;
    show(
        "emit_named(\"parse\", \"42\")",
        emitter.emit_named("parse", String::from("42"))?,
    );
    show(
        "emit_named(\"parse\", \"forty-two\")",
        emitter.emit_named("parse", String::from("forty-two"))?,
    );
    // A named event's payload is typed: another type is a failure, not a crash.
    show(
        "emit_named(\"parse\", 42u32)",
        emitter.emit_named("parse", 42u32)?,
    );
    let entries = log.take();
    assert_eq!(entries[0], "success: parsed 42");
    assert!(entries[1].starts_with("failure: handler failed"));
    assert!(entries[2].starts_with("failure: payload mismatch"));

    // Panics are caught. The default panic hook would print each one: silence it here.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    // A handler that returns `()` has a success callback with no argument; its panic is a
    // `Failure::Panic` for the failure callback.
    let (ok, failed) = (log.clone(), log.clone());
    let _checkout = linker
        .on::<UserLoggedIn>()
        .on_success(move || ok.push("success (no value)"))
        .on_failure(move |failure: Failure| failed.push(format!("failure: {failure}")))
        .call(|user: &UserLoggedIn| {
            if user.name.is_empty() {
                panic!("no name");
            }
        })?;
    show(
        "emit(UserLoggedIn { name: \"ada\" })",
        emitter.emit(UserLoggedIn { name: "ada" })?,
    );
    show(
        "emit(UserLoggedIn { name: \"\" })",
        emitter.emit(UserLoggedIn { name: "" })?,
    );

    // A panicking success callback goes to the error hook, never to the failure callback
    // and never to the emitter.
    let failed = log.clone();
    let _fragile = linker
        .on::<FirstEvent>()
        .on_success(|| panic!("the success callback broke"))
        .on_failure(move |failure: Failure| failed.push(format!("not called: {failure}")))
        .call(|_: &FirstEvent| {})?;
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);

    // A handler failure with no failure callback goes to the error hook too.
    let _careless = linker
        .on::<SecondEvent>()
        .call(|_: &SecondEvent| Err::<(), _>("disk full"))?;
    show("emit(SecondEvent)", emitter.emit(SecondEvent)?);

    std::panic::set_hook(default_hook);
    let entries = log.take();
    assert_eq!(entries[0], "success (no value)");
    assert_eq!(entries[1], "failure: handler panicked: no name");
    assert!(entries[2].contains("success callback panicked"));
    assert!(entries[3].contains("disk full"));
    assert_eq!(entries.len(), 4);
    Ok(())
}

/// Every way to unsubscribe; each returns whether it removed something.
fn unsubscribing() -> Res {
    section("Unsubscribing");
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let log = Log::default();
    let subscribe =
        |tag: &'static str, keys: Vec<EventKey>| -> Result<Subscription, SubscribeError> {
            let l = log.clone();
            linker
                .subscribe(keys)
                .call(move |event: &Event<'_>| l.push(format!("{tag} got {}", event.key())))
        };
    let first = || vec![EventKey::of::<FirstEvent>()];
    let both = || vec![EventKey::of::<FirstEvent>(), EventKey::of::<SecondEvent>()];

    // 1. `unsubscribe()`: true the first time, false after.
    let sub = subscribe("a", first())?;
    println!(
        "  unsubscribe(): {}, again: {}",
        sub.unsubscribe(),
        sub.unsubscribe()
    );
    assert_eq!(emitter.emit(FirstEvent)?.delivered, 0);

    // 2. `unsubscribe_and_wait()`: also waits for a running invocation to finish; from the
    //    subscription's own handler it refuses with `WouldDeadlock`.
    let me: Arc<OnceLock<Subscription>> = Arc::new(OnceLock::new());
    let (l, handle) = (log.clone(), me.clone());
    let sub = linker.on::<FirstEvent>().call(move |_: &FirstEvent| {
        let own = handle.get().expect("set below").unsubscribe_and_wait();
        assert_eq!(own, Err(WouldDeadlock));
        l.push(format!("from its own handler: {own:?}"));
    })?;
    me.set(sub.clone()).expect("set once");
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    println!("  unsubscribe_and_wait(): {:?}", sub.unsubscribe_and_wait());
    assert!(!sub.is_active());

    // 3. A guard unsubscribes when dropped.
    let sub = subscribe("guarded", first())?;
    {
        let _guard = sub.guard();
        show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    }
    println!("  after the guard's drop: is_active {}", sub.is_active());
    assert_eq!(emitter.emit(FirstEvent)?.delivered, 0);
    log.take();

    // 4a. `remove_subscription`: from every key.
    let sub = subscribe("b", both())?;
    println!(
        "  remove_subscription(b): {}",
        linker.remove_subscription(&sub)
    );
    assert!(linker.is_empty());

    // 4b. `remove(key, sub)`: one link; the subscription stays on its other keys.
    let sub = subscribe("c", both())?;
    let removed = linker.remove(&EventKey::of::<FirstEvent>(), &sub);
    println!(
        "  remove(FirstEvent, c): {removed}; c is still on {:?}",
        linker.events_of(&sub)
    );
    assert_eq!(emitter.emit(FirstEvent)?.delivered, 0);
    assert_eq!(emitter.emit(SecondEvent)?.delivered, 1);
    assert!(sub.unsubscribe());

    // 4c. `remove_event(key)`: every link of the key. `d` (only on FirstEvent) is gone;
    //     `e` stays on SecondEvent.
    let d = subscribe("d", first())?;
    let e = subscribe("e", both())?;
    let removed = linker.remove_event(&EventKey::of::<FirstEvent>());
    println!(
        "  remove_event(FirstEvent): {removed}; d active: {}, e active: {} on {:?}",
        d.is_active(),
        e.is_active(),
        linker.events_of(&e)
    );
    assert!(!d.is_active() && e.is_active());
    assert!(!linker.remove_event(&EventKey::of::<FirstEvent>()));

    // 4d. `remove_all()`: the whole registry; false when it was already empty.
    let _f = subscribe("f", first())?;
    println!(
        "  remove_all(): {}, again: {}",
        linker.remove_all(),
        linker.remove_all()
    );
    assert!(linker.is_empty() && !e.is_active());
    assert_eq!(emitter.emit(SecondEvent)?.delivered, 0);
    Ok(())
}

/// The registry queries (Pyventus's `is_empty()` to `are_linked()`).
fn registry() -> Res {
    section("Registry queries");
    let linker = Linker::new();
    println!("  empty linker: is_empty {}", linker.is_empty());
    let a = linker.on::<FirstEvent>().call(|_: &FirstEvent| {})?;
    let b = linker
        .subscribe([EventKey::of::<FirstEvent>(), EventKey::named("audit")])
        .call(|_: &Event<'_>| {})?;
    let first = EventKey::of::<FirstEvent>();
    let audit = EventKey::named("audit");

    // `events()` comes from a hashed registry: sort it for display.
    let mut events: Vec<String> = linker.events().iter().map(ToString::to_string).collect();
    events.sort();
    println!("  is_empty: {}", linker.is_empty());
    println!(
        "  events: {events:?} (event_count {})",
        linker.event_count()
    );
    println!(
        "  subscriptions: {} (subscription_count {})",
        ids(&linker.subscriptions()),
        linker.subscription_count()
    );
    println!("  events_of(b): {:?}", linker.events_of(&b));
    println!(
        "  subscriptions_of(FirstEvent): {}",
        ids(&linker.subscriptions_of(&first))
    );
    println!(
        "  contains_event(audit): {}, contains_event(SecondEvent): {}",
        linker.contains_event(&audit),
        linker.contains_event(&EventKey::of::<SecondEvent>())
    );
    println!(
        "  contains_subscription(a): {}, are_linked(audit, a): {}, are_linked(audit, b): {}",
        linker.contains_subscription(&a),
        linker.are_linked(&audit, &a),
        linker.are_linked(&audit, &b)
    );
    assert_eq!((linker.event_count(), linker.subscription_count()), (2, 2));
    assert_eq!(linker.subscriptions_of(&first), [a.clone(), b.clone()]);
    assert!(!linker.are_linked(&audit, &a) && linker.are_linked(&audit, &b));
    // A subscription of another linker is unknown here.
    let other = Linker::new().on::<FirstEvent>().call(|_: &FirstEvent| {})?;
    assert!(!linker.contains_subscription(&other) && linker.events_of(&other).is_empty());
    Ok(())
}

/// Subscription ids, for display.
fn ids(subscriptions: &[Subscription]) -> String {
    let ids: Vec<String> = subscriptions
        .iter()
        .map(|sub| sub.id().to_string())
        .collect();
    format!("[{}]", ids.join(", "))
}

/// A second `Linker` is a separate namespace, here with `max_subscribers`.
fn namespaces() -> Res {
    section("Namespaces and max_subscribers");
    let log = Log::default();
    let billing = Linker::builder()
        .name("billing")
        .max_subscribers(2)
        .build()?;
    let global = Emitter::inline(Linker::global());

    // Emitters see only their own linker: not even `Any` in another namespace is reached.
    let l = log.clone();
    let _spy = billing
        .on_any()
        .call(move |event: &Event<'_>| l.push(format!("billing saw {}", event.key())))?;
    let delivery = global.emit(InvoiceIssued(1))?;
    println!(
        "  emit into Linker::global(): delivered {}",
        delivery.delivered
    );
    assert_eq!(delivery.delivered, 0);

    let l = log.clone();
    let _one = billing
        .on::<InvoiceIssued>()
        .call(move |invoice: &InvoiceIssued| l.push(format!("invoice {}", invoice.0)))?;
    let _two = billing
        .on::<InvoiceIssued>()
        .once()
        .call(|_: &InvoiceIssued| {})?;
    let third = billing.on::<InvoiceIssued>().call(|_: &InvoiceIssued| {});
    println!(
        "  a third InvoiceIssued subscription: {}",
        third.as_ref().unwrap_err()
    );
    assert!(matches!(
        third,
        Err(SubscribeError::TooManySubscribers { max: 2, .. })
    ));

    // All or nothing: RefundIssued had room, but nothing was registered.
    let both = billing
        .subscribe([
            EventKey::of::<RefundIssued>(),
            EventKey::of::<InvoiceIssued>(),
        ])
        .call(|_: &Event<'_>| {});
    println!(
        "  subscribe([RefundIssued, InvoiceIssued]): {}; RefundIssued registered: {}",
        both.is_err(),
        billing.contains_event(&EventKey::of::<RefundIssued>())
    );
    assert!(both.is_err() && !billing.contains_event(&EventKey::of::<RefundIssued>()));

    // A claimed once subscription frees its slot.
    let delivery = Emitter::inline(&billing).emit(InvoiceIssued(2))?;
    println!(
        "  emit(InvoiceIssued) in billing: delivered {} (the once one is claimed)",
        delivery.delivered
    );
    let again = billing.on::<InvoiceIssued>().call(|_: &InvoiceIssued| {});
    println!(
        "  subscribing again: {}",
        if again.is_ok() { "ok" } else { "refused" }
    );
    assert!(again.is_ok());
    let entries = log.take();
    assert!(entries[0].starts_with("billing saw") && entries[0].ends_with("InvoiceIssued"));
    assert_eq!(entries[1..], ["invoice 2"]);
    Ok(())
}

/// Debug lines: per linker (to a custom sink), per emitter, and global.
fn debug_mode() -> Res {
    section("Debug mode");
    let lines = Log::default();
    let l = lines.clone();
    let linker = Linker::builder()
        .name("debugged")
        .debug(true)
        .debug_sink(move |linker, line| l.push(format!("[{linker}] {line}")))
        .build()?;
    let emitter = Emitter::inline(&linker);
    println!("  a linker with debug(true) and a sink that records its lines:");
    let sub = linker.on::<FirstEvent>().call(|_: &FirstEvent| {})?;
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    show("emit(SecondEvent)", emitter.emit(SecondEvent)?);
    sub.unsubscribe();
    assert_eq!(lines.take().len(), 4);

    // An emitter's own flag wins over its linker's.
    show(
        "emitter.debug(false).emit(FirstEvent), no debug line",
        emitter.clone().debug(false).emit(FirstEvent)?,
    );
    assert!(lines.take().is_empty());

    // A linker with no flag of its own follows global debug mode: `VENTUS_DEBUG=1` in the
    // environment, or `set_global_debug`.
    let l = lines.clone();
    let follower = Linker::builder()
        .name("follower")
        .debug_sink(move |linker, line| l.push(format!("[{linker}] {line}")))
        .build()?;
    let was_on = global_debug();
    println!(
        "  global debug mode was {}",
        if was_on { "on" } else { "off" }
    );
    set_global_debug(true);
    println!("  set_global_debug(true); a linker without a flag of its own:");
    let sub = follower.on::<SecondEvent>().call(|_: &SecondEvent| {})?;
    set_global_debug(was_on);
    assert_eq!(lines.take().len(), 1);
    sub.unsubscribe();
    assert_eq!(lines.take().len(), usize::from(was_on));
    Ok(())
}

/// The inline emitter: order, nesting, re-entrancy, the depth limit.
fn inline_emitter() -> Res {
    section("The inline emitter");
    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let log = Log::default();

    // Subscription order, `Any` in its place.
    for name in ["first", "second"] {
        let l = log.clone();
        linker
            .on::<FirstEvent>()
            .call(move |_: &FirstEvent| l.push(name))?;
    }
    let l = log.clone();
    linker.on_any().call(move |_: &Event<'_>| l.push("any"))?;
    let l = log.clone();
    linker
        .on::<FirstEvent>()
        .call(move |_: &FirstEvent| l.push("last"))?;
    show("emit(FirstEvent)", emitter.emit(FirstEvent)?);
    assert_eq!(log.take(), ["first", "second", "any", "last"]);
    linker.remove_all();

    // A handler's emit to another subscription runs depth-first, before it returns; to a
    // subscription already running on this stack, it is queued and runs right after.
    let (l, e) = (log.clone(), emitter.clone());
    linker.on::<u32>().call(move |n: &u32| {
        l.push(format!("start {n}"));
        if *n < 2 {
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
        log.take()[..4],
        ["start 0", "  side 0 (nested)", "end 0", "start 1"]
    );
    linker.remove_all();

    // Nesting deeper than MAX_DEPTH is `EmitError::TooDeep`, with the event given back.
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
        "  a chain of handlers: the emit from hop-{} was TooDeep (MAX_DEPTH = {MAX_DEPTH})",
        deepest.unwrap_or(0)
    );
    assert_eq!(deepest, Some(MAX_DEPTH - 1));
    // The cycles above (handlers holding the emitter) are broken by clearing the linker.
    linker.remove_all();
    Ok(())
}
