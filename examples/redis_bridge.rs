//! A producer and two consumers bridged through a Redis stream: each consumer has its own
//! linker and actor runtime, and they share the work through one consumer group.
//!
//! Needs a redis-server (`redis-server --port 6379 --appendonly yes`) and the `redis`
//! feature. `VENTUS_REDIS_URL` picks the server (default `redis://127.0.0.1:6379/0`).
//!
//! All in one process (a stream of its own, deleted at the end):
//!
//! ```text
//! cargo run --features redis --example redis_bridge
//! ```
//!
//! As separate processes (the stream `ventus:example:orders`), in three terminals:
//!
//! ```text
//! cargo run --features redis --example redis_bridge -- consumer alice
//! cargo run --features redis --example redis_bridge -- consumer bob
//! cargo run --features redis --example redis_bridge -- producer 20
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ventus::redis::{Reader, RedisConfig, RedisEmitter, Wire};
use ventus::{Actors, Emitter, Linker, Runtime, Subscription};

#[derive(Serialize, Deserialize, Debug, Clone)]
struct OrderPlaced {
    id: u64,
    item: String,
    cents: u64,
}

fn wire() -> Wire {
    let mut wire = Wire::new();
    wire.register::<OrderPlaced>("example.order_placed")
        .expect("registered once");
    wire
}

fn config(stream: &str) -> RedisConfig {
    let url =
        std::env::var("VENTUS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    RedisConfig::from_url(&url)
        .expect("a redis:// URL")
        .stream(stream)
        .group("shipping")
        .batch(4)
        .block(Duration::from_millis(100))
}

/// One consumer: its own linker, runtime and reader.
struct Consumer {
    reader: Reader,
    runtime: Runtime,
    _sub: Subscription,
}

fn consumer(config: &RedisConfig, name: &str, handled: Arc<Mutex<Vec<u64>>>) -> Consumer {
    let runtime = Runtime::builder().workers(2).build().expect("runtime");
    let linker = Linker::new();
    let who = name.to_owned();
    let sub = linker
        .on::<OrderPlaced>()
        .call(move |order: &OrderPlaced| {
            println!(
                "{who:>6} ships order {:>3}: {} ({}.{:02} €)",
                order.id,
                order.item,
                order.cents / 100,
                order.cents % 100
            );
            handled.lock().unwrap().push(order.id);
        })
        .expect("subscribed");
    let emitter = Emitter::new(&linker, Actors::new(&runtime));
    let reader =
        Reader::start(&config.clone().consumer(name), &wire(), &emitter).expect("reader thread");
    Consumer {
        reader,
        runtime,
        _sub: sub,
    }
}

fn produce(config: &RedisConfig, n: u64) {
    let producer = RedisEmitter::new(config, &wire());
    let items = ["tea", "kettle", "cups", "honey", "lemon"];
    for id in 0..n {
        let order = OrderPlaced {
            id,
            item: items[id as usize % items.len()].to_owned(),
            cents: 250 + 125 * id,
        };
        match producer.emit(order) {
            Ok(entry) => println!("producer appended order {id:>3} as {entry}"),
            Err(error) => {
                eprintln!("producer: {error} (is redis-server running? see the file's docs)");
                std::process::exit(1);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("producer") => {
            let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10);
            produce(&config("ventus:example:orders"), n);
        }
        Some("consumer") => {
            let name = args.get(1).cloned().unwrap_or_else(|| "alice".into());
            let handled = Arc::new(Mutex::new(Vec::new()));
            let _consumer = consumer(&config("ventus:example:orders"), &name, handled);
            println!("{name} is waiting for orders (Ctrl-C to stop)");
            loop {
                std::thread::park();
            }
        }
        Some(other) => {
            eprintln!("usage: redis_bridge [producer N | consumer NAME] (got `{other}`)");
            std::process::exit(2);
        }
        None => all_in_one(),
    }
}

/// A producer and two consumers in one process, on a stream of their own.
fn all_in_one() {
    const N: u64 = 12;
    let stream = format!("ventus:example:{}", std::process::id());
    let config = config(&stream);
    let handled = Arc::new(Mutex::new(Vec::new()));
    let alice = consumer(&config, "alice", handled.clone());
    let bob = consumer(&config, "bob", handled.clone());
    produce(&config, N);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let distinct: BTreeSet<u64> = handled.lock().unwrap().iter().copied().collect();
        if distinct.len() == N as usize {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("only {} of {N} orders handled in 30 s", distinct.len());
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (a, b) = (alice.reader.stats(), bob.reader.stats());
    println!(
        "all {N} orders shipped: alice acknowledged {}, bob {}",
        a.acked, b.acked
    );
    for c in [alice, bob] {
        c.reader.stop();
        c.runtime.shutdown();
    }
    // Leave the server as we found it.
    let client = ventus::redis::client::Client::open(config.url()).expect("url");
    if let Ok(mut conn) = client.get_connection() {
        let _: Result<(), _> = ventus::redis::client::cmd("DEL")
            .arg(&stream)
            .arg(config.dead_letter_stream_name())
            .query(&mut conn);
    }
}
