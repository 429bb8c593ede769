//! ventus's own rayon pool (never rayon's global one): `CpuBound` subscriptions run a batch
//! of their mailbox as one rayon job, and the [`Rayon`](crate::Rayon) strategy delivers
//! events there.
//!
//! The pool is built on first use, with thread names, a `panic_handler`, and a start
//! handler that marks its threads as the runtime's own (emits from them never block, and
//! `emit_and_wait`/`ask` from them are refused with `WouldDeadlock`: a job blocked waiting
//! would hold a rayon thread, and rayon's work stealing could run the awaited job on the
//! same stack, rayon #592). No ventus thread ever blocks in `install` or `scope` on it,
//! except an external caller of `emit_batch` with the rayon strategy.
//!
//! Each job is counted in the runtime's `outstanding` before it is spawned and released
//! after it ran, so `wait_idle` and `shutdown` wait for it. Rayon's threads cannot be
//! joined: after a shutdown they exit once the last handle to the pool is gone.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Shared, set_current_runtime, set_pool_worker};
use crate::hooks::{DeadLetterReason, panic_message};
use crate::subscription::SubArc;
use crate::sync::Arc;

impl Shared {
    /// The rayon pool, built on first use (`None` if it could not be built).
    pub(crate) fn cpu_pool(&self) -> Option<&Arc<rayon::ThreadPool>> {
        self.cpu
            .get_or_init(|| {
                let id = self.id;
                let name = self.name.clone();
                let mut builder = rayon::ThreadPoolBuilder::new()
                    .num_threads(self.cpu_threads)
                    .thread_name(move |index| format!("{name}-cpu-{index}"))
                    .panic_handler(|panic| {
                        eprintln!(
                            "ventus: a rayon job panicked outside its handler: {}",
                            panic_message(&*panic)
                        );
                    })
                    .start_handler(move |_| {
                        set_current_runtime(id);
                        set_pool_worker();
                    });
                if let Some(bytes) = self.stack_size {
                    builder = builder.stack_size(bytes);
                }
                match builder.build() {
                    Ok(pool) => Some(Arc::new(pool)),
                    Err(error) => {
                        eprintln!("ventus: the rayon pool could not be built: {error}");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Schedules a `CpuBound` subscription whose pending counter this thread moved from 0.
    pub(crate) fn schedule_cpu(self: &Arc<Self>, sub: SubArc) {
        if self.is_stopping() {
            sub.core
                .abandon(&sub.common, DeadLetterReason::LeftAtShutdown);
            return;
        }
        let Some(pool) = self.cpu_pool().cloned() else {
            // No rayon pool: the worker pool runs it.
            self.schedule(sub);
            return;
        };
        // Counted before it can run and finish.
        self.begin();
        let shared = self.clone();
        pool.spawn(move || shared.cpu_job(sub));
    }

    /// One batch of a `CpuBound` subscription: one job, then another job if more is
    /// queued (other subscriptions' jobs get their turn in between).
    fn cpu_job(self: Arc<Self>, sub: SubArc) {
        let result = catch_unwind(AssertUnwindSafe(|| {
            if self.abandoning() {
                sub.core
                    .abandon(&sub.common, DeadLetterReason::LeftAtShutdown);
                false
            } else {
                sub.core
                    .run_batch(&sub.common, &self, std::time::Duration::ZERO)
            }
        }));
        let more = match result {
            Ok(more) => more,
            Err(panic) => {
                // Handlers' panics are caught inside the run; this is ventus's own bug.
                eprintln!(
                    "ventus: a CpuBound run panicked: {}",
                    panic_message(&*panic)
                );
                false
            }
        };
        if more {
            if let Some(pool) = self.cpu_pool().cloned() {
                pool.spawn(move || self.cpu_job(sub));
                return;
            }
        }
        super::drop_caught(sub);
        self.finished();
    }

    /// Runs `job` on the rayon pool, counted as outstanding until it returns (the rayon
    /// strategy's deliveries). `Err(job)` when there is no pool.
    pub(crate) fn spawn_cpu<F: FnOnce() + Send + 'static>(
        self: &Arc<Self>,
        job: F,
    ) -> Result<(), F> {
        let Some(pool) = self.cpu_pool().cloned() else {
            return Err(job);
        };
        self.begin();
        let shared = self.clone();
        pool.spawn(move || {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(job)) {
                eprintln!(
                    "ventus: a rayon delivery panicked: {}",
                    panic_message(&*panic)
                );
            }
            shared.finished();
        });
        Ok(())
    }
}
