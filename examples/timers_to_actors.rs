//! Timers drive actors: a nexus's ongoing timer ticks every 10 ms; its handler turns each
//! tick into a `Tick` event, which a `Forwarder` moves into an actor runtime with
//! `try_emit` (a full mailbox becomes a dead letter, never a stalled loop). Stops after
//! 20 ticks.
//!
//! `cargo run --example timers_to_actors`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ventus::{Actors, Emitter, Forwarder, Linker, Nexus, Overflow, Runtime, Timer};

/// What the actor receives.
#[derive(Debug)]
struct Tick(u64);

fn main() {
    let runtime = Runtime::builder().workers(2).build().expect("a runtime");
    let linker = Linker::new();
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    let _sub = linker
        .on::<Tick>()
        .call(move |tick: &Tick| {
            t.fetch_add(1, Ordering::Relaxed);
            println!("actor got tick {}", tick.0);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));

    let mut nexus = Nexus::new().expect("a poll");
    nexus
        .on(1, |event, cx| {
            let n = *event.payload_ref::<u64>().unwrap();
            cx.push(cx.factory().create_typed(Tick(n)));
            if n == 20 {
                cx.stop();
            }
        })
        .unwrap();
    nexus
        .add_handler(
            ventus::EventType::of::<Tick>(),
            Forwarder::<Tick>::new(emitter, Overflow::DeadLetter),
        )
        .unwrap();
    nexus.add_timer(Timer::ongoing(Duration::from_millis(10), 1).unwrap());
    nexus.run().expect("the loop");
    runtime.wait_idle().unwrap();
    let dead = nexus.dead_letter_counts().dropped;
    println!(
        "the actor handled {} ticks; {dead} dead letters",
        total.load(Ordering::Relaxed)
    );
    assert_eq!(total.load(Ordering::Relaxed) + dead, 20);
}
