//! Building the same topology both ways: ventus subscriptions under a [`Mode`], and
//! crossbeam channels with their receivers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, TryRecvError};
use crossbeam_utils::CachePadded;
use ventus::{Actors, Emitter, Linker, Placement, Rayon, Runtime, Spin, Subscription};

use super::{Mode, Res};

/// Mailbox capacity for the bench's subscriptions: large, so that a fast emitter is not
/// throttled by `Policy::Block` where the crossbeam baseline is unbounded.
pub(crate) const CAPACITY: usize = 1 << 22;

/// What `mode` reports for a case it cannot run in this version (every mode runs now; kept
/// so that a mode added before its strategy prints a clear line instead of a number).
pub(crate) fn unavailable(mode: Mode) -> Option<String> {
    match mode {
        Mode::Pooled | Mode::Dedicated | Mode::Spin | Mode::Inline | Mode::Rayon => None,
    }
}

/// The runtime the bench's actors run on: 2 workers.
pub(crate) fn runtime() -> Res<Runtime> {
    Ok(Runtime::builder().workers(2).name("bench").build()?)
}

/// Runs `f` on a fresh runtime and shuts it down after, so that no ventus thread (a
/// lingering worker, a spinning dedicated thread) is left to compete with the baseline's
/// repetition that follows.
pub(crate) fn with_runtime<R>(f: impl FnOnce(&Runtime) -> Res<R>) -> Res<R> {
    let runtime = runtime()?;
    let result = f(&runtime);
    let report = runtime.shutdown();
    if result.is_ok() && !(report.drained && report.joined) {
        return Err(format!("runtime shutdown: {report:?}").into());
    }
    result
}

/// A count and a sum, on a cache line of their own.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    count: CachePadded<AtomicU64>,
    sum: CachePadded<AtomicU64>,
}

impl Tally {
    /// Records one event with sequence number `seq`.
    pub(crate) fn add(&self, seq: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(seq, Ordering::Relaxed);
    }

    /// (count, sum).
    pub(crate) fn get(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.sum.load(Ordering::Relaxed),
        )
    }
}

/// `n` events numbered 0..n: their count and sum.
pub(crate) fn expected(n: u64) -> (u64, u64) {
    (n, n * n.saturating_sub(1) / 2)
}

/// Checks that every receiver got `expected`.
pub(crate) fn check_all(what: &str, got: &[(u64, u64)], expected: (u64, u64)) -> Res<()> {
    for (i, got) in got.iter().enumerate() {
        if *got != expected {
            return Err(format!(
                "{what}: receiver {i} got {} events (sum {}), expected {} (sum {}): events lost",
                got.0, got.1, expected.0, expected.1
            )
            .into());
        }
    }
    Ok(())
}

/// A linker, an emitter and the runtime's role for one mode.
#[derive(Debug)]
pub(crate) struct Topology {
    pub(crate) linker: Linker,
    pub(crate) emitter: Emitter,
    pub(crate) mode: Mode,
    runtime: Runtime,
    subs: Vec<Subscription>,
}

impl Topology {
    /// An empty topology under `mode` on `runtime`.
    pub(crate) fn new(mode: Mode, runtime: &Runtime) -> Res<Self> {
        if let Some(why) = unavailable(mode) {
            return Err(why.into());
        }
        let linker = Linker::builder().name("bench").runtime(runtime).build()?;
        let emitter = match mode {
            Mode::Inline => Emitter::inline(&linker),
            Mode::Rayon => Emitter::new(&linker, Rayon::new(runtime)),
            Mode::Pooled | Mode::Dedicated | Mode::Spin => {
                Emitter::new(&linker, Actors::new(runtime))
            }
        };
        Ok(Topology {
            linker,
            emitter,
            mode,
            runtime: runtime.clone(),
            subs: Vec::new(),
        })
    }

    /// Subscribes `handler` to `T` with this mode's placement (not kept by the topology),
    /// taking events by value (`by_value()`: with several subscriptions, each gets its own
    /// clone, as each crossbeam receiver does, instead of sharing one `Arc`).
    pub(crate) fn subscribe<T, H>(&self, handler: H) -> Res<Subscription>
    where
        T: Clone + Send + Sync + 'static,
        H: FnMut(&T) + Send + 'static,
    {
        let placement = match self.mode {
            Mode::Dedicated => Placement::Dedicated(Spin::Backoff),
            Mode::Spin => Placement::Dedicated(Spin::Forever),
            _ => Placement::Default,
        };
        Ok(self
            .linker
            .on::<T>()
            .capacity(CAPACITY)
            .placement(placement)
            .by_value()
            .call(handler)?)
    }

    /// Subscribes `handler` and keeps the subscription until [`Topology::close`].
    pub(crate) fn add<T, H>(&mut self, handler: H) -> Res<()>
    where
        T: Clone + Send + Sync + 'static,
        H: FnMut(&T) + Send + 'static,
    {
        let sub = self.subscribe(handler)?;
        self.subs.push(sub);
        Ok(())
    }

    /// Waits until every emitted event has been handled.
    pub(crate) fn wait(&self) -> Res<()> {
        if self.mode != Mode::Inline {
            self.runtime.wait_idle()?;
        }
        Ok(())
    }

    /// Waits, then unsubscribes everything (dedicated threads end).
    pub(crate) fn close(self) -> Res<()> {
        self.wait()?;
        for sub in &self.subs {
            sub.unsubscribe();
        }
        self.linker.remove_all();
        Ok(())
    }
}

/// Receivers of the crossbeam baseline: a thread per receiver (blocking, or spinning on
/// `try_recv` for `Mode::Spin`), or, for `Mode::Inline`, drained on the sending thread.
#[derive(Debug)]
pub(crate) enum Sink<T> {
    /// One thread per receiver, each returning (count, sum).
    Threads(Vec<thread::JoinHandle<(u64, u64)>>),
    /// Drained by the sender after each send.
    Local(Vec<(Receiver<T>, u64, u64)>),
}

impl<T: Send + 'static> Sink<T> {
    /// Starts receiving from `receivers` as `mode` says; `seq` reads an event's number.
    pub(crate) fn start(mode: Mode, receivers: Vec<Receiver<T>>, seq: fn(&T) -> u64) -> Self {
        if mode == Mode::Inline {
            return Sink::Local(receivers.into_iter().map(|rx| (rx, 0, 0)).collect());
        }
        let spin = mode == Mode::Spin;
        Sink::Threads(
            receivers
                .into_iter()
                .map(|rx| {
                    thread::spawn(move || {
                        let (mut count, mut sum) = (0u64, 0u64);
                        if spin {
                            loop {
                                match rx.try_recv() {
                                    Ok(event) => {
                                        count += 1;
                                        sum = sum.wrapping_add(seq(&event));
                                    }
                                    Err(TryRecvError::Empty) => std::hint::spin_loop(),
                                    Err(TryRecvError::Disconnected) => break,
                                }
                            }
                        } else {
                            for event in rx {
                                count += 1;
                                sum = sum.wrapping_add(seq(&event));
                            }
                        }
                        (count, sum)
                    })
                })
                .collect(),
        )
    }

    /// After a send: drains the local receivers (nothing for threads).
    pub(crate) fn drain(&mut self, seq: fn(&T) -> u64) {
        if let Sink::Local(receivers) = self {
            for (rx, count, sum) in receivers {
                while let Ok(event) = rx.try_recv() {
                    *count += 1;
                    *sum = sum.wrapping_add(seq(&event));
                }
            }
        }
    }

    /// Waits for the threads (the senders must be dropped first): each receiver's
    /// (count, sum).
    pub(crate) fn finish(self, seq: fn(&T) -> u64) -> Vec<(u64, u64)> {
        match self {
            Sink::Threads(handles) => handles
                .into_iter()
                .map(|h| h.join().expect("receiver thread"))
                .collect(),
            mut local => {
                local.drain(seq);
                match local {
                    Sink::Local(receivers) => {
                        receivers.into_iter().map(|(_, c, s)| (c, s)).collect()
                    }
                    Sink::Threads(_) => unreachable!(),
                }
            }
        }
    }
}

/// Keeps an `Arc` alive for a closure (`move` of a clone).
pub(crate) fn shared<T>(value: &Arc<T>) -> Arc<T> {
    Arc::clone(value)
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::unbounded;

    use super::*;

    fn seq(n: &u64) -> u64 {
        *n
    }

    #[test]
    fn a_missing_event_fails_the_check() {
        assert!(check_all("x", &[expected(10), expected(10)], expected(10)).is_ok());
        let short = (9, expected(10).1 - 9);
        let error = check_all("x", &[expected(10), short], expected(10)).unwrap_err();
        assert!(
            error.to_string().contains("receiver 1 got 9 events"),
            "{error}"
        );
    }

    #[test]
    fn sinks_count_and_sum_what_they_receive() {
        for mode in [Mode::Pooled, Mode::Spin, Mode::Inline] {
            let (senders, receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| unbounded()).unzip();
            let mut sink = Sink::start(mode, receivers, seq);
            for i in 0..100u64 {
                for tx in &senders {
                    tx.send(i).unwrap();
                }
                sink.drain(seq);
            }
            drop(senders);
            assert_eq!(sink.finish(seq), vec![expected(100); 3], "{mode:?}");
        }
    }
}
