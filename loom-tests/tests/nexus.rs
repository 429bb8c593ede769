//! loom model of the nexus's parked flag: producers push and move the inbox's count from
//! zero (then, and only then, wake the loop); the loop drains in bounded batches and parks
//! when its release brings the count to zero. Wakes coalesce (the stand-in waker, like
//! mio's, is not counted): no event may be stranded.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use ventus::{NexusDrained, NexusInbox};

/// Two producers, one loop draining one event per batch. The loop parks whenever a drain
/// says so; a stranded event leaves it parked forever, which loom reports as a deadlock.
///
/// Broken by `ventus_mutant="nexus_plain_load_wake"` (the producer decides "the loop is
/// awake" with a plain load before its increment).
#[test]
fn producer_push_parked_flag_wake_vs_drain_strands_nothing() {
    loom::model(|| {
        let inbox = Arc::new(NexusInbox::<u8>::for_model(4));
        let producers: Vec<_> = (1..=2u8)
            .map(|n| {
                let inbox = inbox.clone();
                thread::spawn(move || inbox.push(n).unwrap())
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < 2 {
            if inbox.drain(1, |n| got.push(n)) == NexusDrained::Parked && got.len() < 2 {
                inbox.park();
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2], "an event was stranded");
    });
}
