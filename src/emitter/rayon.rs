//! The rayon strategy: Pyventus's `ExecutorEventEmitter` in role, on ventus's own rayon
//! pool.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rayon::prelude::*;

use super::{Batch, Delivery, Emission, Strategy};
use crate::actor::{Runtime, on_pool_worker};
use crate::carrier::{ChainScope, Completion, current_chain};
use crate::error::DispatchError;
use crate::hooks::{DeadLetter, DeadLetterReason, DeadPayload};

/// The rayon strategy: `emit` hands the event to the runtime's own rayon pool and returns;
/// there, each `Default` subscription runs as under the inline strategy (one invocation at
/// a time per subscription, whatever the thread). `Dedicated` and `CpuBound` subscriptions
/// run where they always do. `emit_batch` delivers the events in parallel on the pool and
/// returns once they were handled.
///
/// `emit` reports as delivered the subscriptions that matched when it was called; a
/// refusal found later, on the pool, goes to the dead-letter hook with the event. The
/// runtime counts every job: `wait_idle`, `shutdown` and `emit_and_wait` wait for them.
///
/// # Examples
///
/// ```
/// use ventus::{Emitter, Linker, Rayon, Runtime};
///
/// let runtime = Runtime::builder().workers(2).build().unwrap();
/// let linker = Linker::new();
/// let sum = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
/// let s = sum.clone();
/// let _sub = linker
///     .on::<u64>()
///     .call(move |n: &u64| {
///         s.fetch_add(*n, std::sync::atomic::Ordering::Relaxed);
///     })
///     .unwrap();
/// let emitter = Emitter::new(&linker, Rayon::new(&runtime));
/// emitter.emit(1u64).unwrap();
/// emitter.emit_batch(2..=100u64).unwrap(); // returns once handled
/// runtime.wait_idle().unwrap();
/// assert_eq!(sum.load(std::sync::atomic::Ordering::Relaxed), 5050);
/// ```
#[derive(Debug, Clone)]
pub struct Rayon {
    runtime: Runtime,
}

impl Rayon {
    /// The rayon strategy over `runtime`'s rayon pool.
    pub fn new(runtime: &Runtime) -> Self {
        Self {
            runtime: runtime.clone(),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl Strategy for Rayon {
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
        let shared = self.runtime.shared();
        let Ok(_entered) = shared.admit() else {
            return Err(DispatchError::Shutdown);
        };
        let matching = emission.live_matches();
        if matching == 0 {
            return Ok(Delivery::default());
        }
        let direct = emission.carrier.direct;
        let Some(mut job) = emission.defer() else {
            return Ok(Delivery::default());
        };
        job.direct = direct;
        // An `emit_and_wait` in progress waits for the job, and the job's handlers join it.
        let chain = current_chain();
        let hold = chain.clone().map(Completion::hold);
        let run = move || {
            let _scope = chain.map(ChainScope::enter);
            if let Err((error, job)) = job.deliver_inline() {
                // Every subscription refused it, there: the event goes to the dead letters.
                let hooks = job.linker.inner.hooks.clone();
                let key = job.key.clone();
                let payload = job.into_payload();
                let reason = match error {
                    DispatchError::Shutdown => DeadLetterReason::LeftAtShutdown,
                    _ => DeadLetterReason::Dropped,
                };
                hooks.dead_letter(
                    || DeadLetter {
                        key,
                        subscription: None,
                        reason,
                        payload: payload.map(DeadPayload),
                    },
                    reason,
                );
            }
            drop(hold);
        };
        match shared.spawn_cpu(run) {
            Ok(()) => Ok(Delivery {
                delivered: matching,
                refused: Vec::new(),
            }),
            // No rayon pool: deliver here.
            Err(run) => {
                run();
                Ok(Delivery {
                    delivered: matching,
                    refused: Vec::new(),
                })
            }
        }
    }

    fn dispatch_batch(&self, batch: &mut Batch<'_>) -> Result<Delivery, DispatchError> {
        let shared = self.runtime.shared();
        let Ok(_entered) = shared.admit() else {
            return Err(DispatchError::Shutdown);
        };
        // A pool worker must never block in `install` (nor should a thread of this very
        // pool wait on it): there, the batch is delivered on this thread.
        let pool = match shared.cpu_pool() {
            Some(pool) if !on_pool_worker() => pool.clone(),
            _ => return Ok(batch.deliver_inline()),
        };
        let (linker, key, no_wait, debug) = (batch.linker, batch.key, batch.no_wait, batch.debug);
        let slots = batch.slots.slots_mut();
        let results: Vec<(usize, Result<Delivery, DispatchError>)> = pool.install(|| {
            slots
                .into_par_iter()
                .enumerate()
                .map(|(index, slot)| {
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        let mut emission = Emission {
                            linker,
                            carrier: crate::carrier::Carrier::new(
                                slot,
                                crate::carrier::EmitKey::Type(key),
                            ),
                            no_wait,
                            debug,
                            target: None,
                        };
                        emission.deliver_inline()
                    }));
                    (index, result.unwrap_or(Err(DispatchError::Full)))
                })
                .collect()
        });
        let mut total = Delivery::default();
        for (index, result) in results {
            match result {
                Ok(delivery) => total.absorb(delivery),
                Err(error) => {
                    batch.refused.push(index);
                    batch.error.get_or_insert(error);
                }
            }
        }
        Ok(total)
    }
}
