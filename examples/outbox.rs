//! An in-memory transactional outbox: placing an order changes the store and announces
//! `OrderPlaced` only if the unit of work commits.
//!
//! Shows the `ventus::bus` module: a `SharedContextBus` runs the store writes of one unit
//! of work in one transaction, and an `EmitOnCommitBus` holds the `OrderPlaced` event until
//! that transaction has committed, then emits it through a ventus `Emitter`. Three orders:
//!
//! 1. committed: the store changes and both subscribers receive `OrderPlaced`;
//! 2. rolled back by the caller (`commit = false`): neither happens;
//! 3. failing inside the transaction (out of stock): the transaction rolls back, so the
//!    event is not emitted either, and comes back to the caller.
//!
//! The outbox is in memory: a crash between the store's commit and the emit loses the
//! event (durable hand-off will go through ventus's planned Redis bridge).
//!
//! The subscribers are actors: they run on a ventus `Runtime`'s worker pool (`Actors`
//! strategy); the example waits for them with `wait_idle` after each order.
//!
//! ```text
//! cargo run --example outbox
//! ```

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};

use ventus::bus::{EmitOnCommitBus, EventBus, SharedContext, SharedContextBus};
use ventus::{Actors, BoxError, Emitter, Linker, Runtime};

/// The event announced when an order is placed.
#[derive(Debug, Clone, PartialEq)]
struct OrderPlaced {
    id: u32,
    item: &'static str,
    quantity: u32,
}

/// The in-memory store: orders and stock.
#[derive(Debug)]
struct Store {
    orders: Mutex<Vec<OrderPlaced>>,
    stock: Mutex<u32>,
}

/// One transaction on the store: writes are staged, and applied only on commit.
struct Tx {
    store: Arc<Store>,
    stock: u32,
    orders: Vec<OrderPlaced>,
}

impl SharedContext for Tx {
    fn finish(self, commit: bool) -> Result<(), BoxError> {
        if commit {
            *self.store.stock.lock().unwrap() = self.stock;
            self.store.orders.lock().unwrap().extend(self.orders);
        }
        println!(
            "  store: transaction {}",
            if commit { "committed" } else { "rolled back" }
        );
        Ok(())
    }
}

#[derive(Debug)]
struct OutOfStock {
    wanted: u32,
    left: u32,
}

impl fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out of stock: {} wanted, {} left",
            self.wanted, self.left
        )
    }
}

impl Error for OutOfStock {}

/// What happened to one order.
#[derive(Debug, PartialEq)]
struct Outcome {
    stored: bool,
    announced_to: usize,
    given_back: Vec<OrderPlaced>,
}

/// One unit of work: stage the order in a transaction, queue its event, then commit the
/// store first and emit only what a committed store justifies.
fn place_order(store: &Arc<Store>, emitter: &Emitter, order: OrderPlaced, commit: bool) -> Outcome {
    let handle = store.clone();
    let mut writes = SharedContextBus::new(move || Tx {
        store: handle.clone(),
        stock: *handle.stock.lock().unwrap(),
        orders: Vec::new(),
    });
    let mut outbox = EmitOnCommitBus::new(emitter);

    // The work: side effects are published, nothing happens yet.
    let staged = order.clone();
    writes.publish_fn(move |tx: &mut Tx| {
        if staged.quantity > tx.stock {
            return Err(OutOfStock {
                wanted: staged.quantity,
                left: tx.stock,
            });
        }
        tx.stock -= staged.quantity;
        tx.orders.push(staged);
        Ok(())
    });
    outbox.publish(order);

    // The commit step: the store first; the events only if it committed.
    let stored = writes.apply(commit);
    for failure in &stored.report.failures {
        println!("  store: {failure}");
    }
    let emitted = outbox.apply(commit && stored.committed());
    let announced_to = emitted.delivered();
    Outcome {
        stored: commit && stored.committed(),
        announced_to,
        given_back: emitted.into_events(),
    }
}

fn main() {
    let store = Arc::new(Store {
        orders: Mutex::new(Vec::new()),
        stock: Mutex::new(5),
    });

    let linker = Linker::builder()
        .name("shop")
        .build()
        .expect("a valid linker");
    let handled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = handled.clone();
    let _email = linker
        .on::<OrderPlaced>()
        .call(move |order: &OrderPlaced| {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            println!("  email [{thread}]: order {} confirmed", order.id)
        })
        .expect("subscribed");
    let h = handled.clone();
    let _analytics = linker
        .on::<OrderPlaced>()
        .call(move |order: &OrderPlaced| {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            println!(
                "  analytics [{thread}]: {} x {}",
                order.quantity, order.item
            )
        })
        .expect("subscribed");
    // The subscribers are actors on a 2-worker pool: `emit` returns once queued.
    let runtime = Runtime::builder()
        .workers(2)
        .name("outbox")
        .build()
        .expect("a runtime");
    let emitter = Emitter::new(&linker, Actors::new(&runtime));

    let order = |id, quantity| OrderPlaced {
        id,
        item: "kettle",
        quantity,
    };

    println!("order 1, committed:");
    let first = place_order(&store, &emitter, order(1, 2), true);
    runtime.wait_idle().expect("not called from a handler");
    assert_eq!(handled.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        first,
        Outcome {
            stored: true,
            announced_to: 2,
            given_back: vec![]
        }
    );

    println!("order 2, rolled back by the caller:");
    let second = place_order(&store, &emitter, order(2, 1), false);
    runtime.wait_idle().expect("not called from a handler");
    assert_eq!(
        second,
        Outcome {
            stored: false,
            announced_to: 0,
            given_back: vec![order(2, 1)]
        }
    );

    println!("order 3, out of stock inside the transaction:");
    let third = place_order(&store, &emitter, order(3, 10), true);
    runtime.wait_idle().expect("not called from a handler");
    assert_eq!(
        handled.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "nothing reached the actors after order 1"
    );
    assert_eq!(
        third,
        Outcome {
            stored: false,
            announced_to: 0,
            given_back: vec![order(3, 10)]
        }
    );

    let orders = store.orders.lock().unwrap().clone();
    let stock = *store.stock.lock().unwrap();
    println!(
        "store: {} order(s) {:?}, {stock} left in stock",
        orders.len(),
        orders.iter().map(|order| order.id).collect::<Vec<_>>()
    );
    assert_eq!(orders, [order(1, 2)]);
    assert_eq!(stock, 3);
    assert_eq!(linker.dead_letter_counts().total(), 0);
    assert!(runtime.shutdown().drained);
}
