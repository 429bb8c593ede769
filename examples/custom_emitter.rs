//! A user-defined strategy: every emission is deferred until the application flushes it
//! (the role of Pyventus's FastAPI emitter, whose processing service is
//! `background_tasks.add_task`: the work runs after the response is sent). Each deferred
//! emission holds a `WorkGuard`, so `Runtime::wait_idle` waits for it to be flushed.
//!
//! `cargo run --example custom_emitter`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use ventus::{
    DeferredEmission, Delivery, DispatchError, Emission, Emitter, Linker, Runtime, Strategy,
    WorkGuard,
};

/// Background tasks: deferred emissions, delivered inline when flushed.
#[derive(Debug)]
struct BackgroundTasks {
    runtime: Runtime,
    queue: Mutex<Vec<(DeferredEmission, WorkGuard)>>,
}

impl BackgroundTasks {
    fn new(runtime: &Runtime) -> Self {
        Self {
            runtime: runtime.clone(),
            queue: Mutex::new(Vec::new()),
        }
    }

    /// Runs every deferred emission on this thread; returns how many.
    fn flush(&self) -> usize {
        let tasks = std::mem::take(&mut *self.queue.lock().unwrap());
        let count = tasks.len();
        for (emission, guard) in tasks {
            if let Err((error, emission)) = emission.deliver_inline() {
                eprintln!("{:?} refused: {error}", emission.key());
            }
            // The work is done: let `wait_idle` see it.
            drop(guard);
        }
        count
    }
}

impl Strategy for BackgroundTasks {
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
        if self.runtime.is_shutdown() {
            return Err(DispatchError::Shutdown);
        }
        if let Some(deferred) = emission.defer() {
            let guard = self.runtime.work_guard();
            self.queue.lock().unwrap().push((deferred, guard));
        }
        // Nothing delivered yet: the tasks run when flushed.
        Ok(Delivery::default())
    }
}

struct SignedUp {
    email: &'static str,
}

fn main() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let linker = Linker::new();
    let welcomed = Arc::new(AtomicU64::new(0));
    let w = welcomed.clone();
    let _mailer = linker
        .on::<SignedUp>()
        .call(move |event: &SignedUp| {
            println!("sending a welcome mail to {}", event.email);
            w.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let tasks = Arc::new(BackgroundTasks::new(&runtime));
    let emitter = Emitter::with_strategy_arc(&linker, tasks.clone());

    // The request handler emits and answers at once: nothing ran yet.
    for email in ["ada@example.com", "alan@example.com", "grace@example.com"] {
        let _ = emitter.emit(SignedUp { email }).unwrap();
    }
    println!(
        "responses sent; {} mails so far",
        welcomed.load(Ordering::SeqCst)
    );
    assert_eq!(welcomed.load(Ordering::SeqCst), 0);

    // The framework runs the background tasks on its own thread after the response.
    let flusher = {
        let tasks = tasks.clone();
        thread::spawn(move || tasks.flush())
    };
    // `wait_idle` returns only once every deferred emission was flushed.
    runtime.wait_idle().unwrap();
    assert_eq!(welcomed.load(Ordering::SeqCst), 3);
    println!(
        "idle after {} background tasks; {} mails sent",
        flusher.join().unwrap(),
        welcomed.load(Ordering::SeqCst)
    );
}
