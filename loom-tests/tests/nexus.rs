//! loom models of the nexus's parked flag: a producer pushes, counts its event in the
//! inbox's word and, if that read-modify-write found the loop parked, clears the flag and
//! wakes it (only the one that cleared it wakes). The loop drains in bounded batches and,
//! with nothing counted, sets the flag with a compare-exchange from zero before it blocks;
//! when its wait returns it clears the flag. Wakes coalesce (the stand-in waker, like
//! mio's, is not counted): no event may be stranded.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use ventus::{NexusDrained, NexusInbox, NexusTaken};

/// The loop: drains (one event per batch) until it has `want` events, parking whenever a
/// drain found nothing and the park succeeds. A stranded event leaves it parked forever,
/// which loom reports as a deadlock.
fn run_loop(inbox: &NexusInbox<u8>, want: usize) -> Vec<u8> {
    let mut taken = NexusTaken::default();
    let mut got = Vec::new();
    while got.len() < want {
        if inbox.drain(&mut taken, 1, |n| got.push(n)) == NexusDrained::Empty
            && got.len() < want
            && inbox.try_park()
        {
            inbox.park();
            inbox.unparked();
        }
    }
    got.sort_unstable();
    got
}

/// Two producers, one loop.
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
        let got = run_loop(&inbox, 2);
        for producer in producers {
            producer.join().unwrap();
        }
        assert_eq!(got, [1, 2], "an event was stranded");
    });
}

/// One producer, and another thread that wakes the loop for its own reasons (a stop, a
/// timer change, a socket): the loop's wait returns without a producer clearing the flag,
/// the loop clears it itself, and a push racing that must still be seen.
///
/// Broken by `ventus_mutant="nexus_plain_load_wake"` as well.
#[test]
fn a_wake_for_another_reason_does_not_hide_a_push() {
    loom::model(|| {
        let inbox = Arc::new(NexusInbox::<u8>::for_model(4));
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.push(7).unwrap())
        };
        let other = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.wake_for_model())
        };
        let got = run_loop(&inbox, 1);
        producer.join().unwrap();
        other.join().unwrap();
        assert_eq!(got, [7], "an event was stranded");
    });
}
