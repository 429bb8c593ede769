//! One function, three emitters (seed 001's "switching emitters"): the code that emits
//! takes an `Emitter` and never knows whether handlers run inline, on the actor pool or on
//! ventus's rayon pool.
//!
//! `cargo run --example runtime_switch`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ventus::{Actors, Emitter, Linker, Rayon, Runtime};

struct OrderPlaced {
    id: u64,
    amount: u64,
}

/// The application's code: emits, and knows nothing of where handlers run.
fn place_orders(emitter: &Emitter, first_id: u64) {
    for id in first_id..first_id + 100 {
        let delivery = emitter
            .emit(OrderPlaced {
                id,
                amount: id * 10,
            })
            .expect("the runtime is running");
        assert!(delivery.is_complete());
    }
}

fn main() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let linker = Linker::new();
    let revenue = Arc::new(AtomicU64::new(0));
    let orders = Arc::new(AtomicU64::new(0));
    let (r, o) = (revenue.clone(), orders.clone());
    let _books = linker
        .on::<OrderPlaced>()
        .call(move |order: &OrderPlaced| {
            r.fetch_add(order.amount, Ordering::Relaxed);
            o.fetch_add(1, Ordering::Relaxed);
            let _ = order.id;
        })
        .unwrap();

    let inline = Emitter::inline(&linker);
    let actors = inline.switch(Actors::new(&runtime));
    let rayon = inline.switch(Rayon::new(&runtime));
    for (name, emitter, first_id) in [
        ("inline", &inline, 0),
        ("actors", &actors, 100),
        ("rayon", &rayon, 200),
    ] {
        place_orders(emitter, first_id);
        // Inline handlers have run already; the others are waited for.
        runtime.wait_idle().unwrap();
        println!(
            "{name:>6}: {} orders booked, revenue {}",
            orders.load(Ordering::Relaxed),
            revenue.load(Ordering::Relaxed)
        );
    }
    assert_eq!(orders.load(Ordering::Relaxed), 300);
    assert_eq!(
        revenue.load(Ordering::Relaxed),
        (0..300u64).map(|id| id * 10).sum::<u64>()
    );
}
