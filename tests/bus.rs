//! The transactional buses (issue 6): publish/apply/collect, delayed and multi-bus
//! orchestration (nesting, both branches of `use_orchestrator_or_create`), the shared
//! context, emit-on-commit, and the one rule for failures, panics and drops.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ventus::bus::{
    AnyBus, Applied, ApplyOutcome, BasicEventBus, Committable, ContextReport, CustomEventBus,
    DelayedEventBus, EmitOnCommitBus, EmitOutcome, Emitted, EventBus, EventBusOrchestrator,
    MultiEventBus, Report, SharedContext, SharedContextBus, SideEffect, SideEffectError, Unapplied,
    use_orchestrator_or_create,
};
use ventus::{
    BoxError, DeadLetter, DeadLetterReason, Delivery, DispatchError, Emission, EmitError, Emitter,
    Event, EventKey, Linker, Policy, Refusal, Strategy,
};

// ---------------------------------------------------------------------------------------
// helpers

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn push(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

#[derive(Debug)]
struct Oops(&'static str);
impl fmt::Display for Oops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl Error for Oops {}

/// A basic bus whose side effects log "name:commit", and whose drops are recorded.
fn basic(drops: &Arc<Mutex<Vec<Unapplied>>>) -> BasicEventBus {
    let drops = drops.clone();
    BasicEventBus::new().on_unapplied(move |lost| drops.lock().unwrap().push(lost.clone()))
}

fn drops() -> Arc<Mutex<Vec<Unapplied>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn dropped_counts(drops: &Arc<Mutex<Vec<Unapplied>>>) -> Vec<usize> {
    drops
        .lock()
        .unwrap()
        .iter()
        .map(|lost| lost.count)
        .collect()
}

fn logging(log: &Log, name: &str) -> Committable {
    let (log, name) = (log.clone(), name.to_owned());
    Committable::new(move |commit| push(&log, format!("{name}:{commit}")))
}

/// A custom bus over `u32` that logs "n:commit".
fn numbers(log: &Log) -> CustomEventBus<u32, impl Fn(&u32, bool) + Send + Sync + 'static + use<>> {
    let log = log.clone();
    CustomEventBus::new(move |n: &u32, commit: bool| push(&log, format!("{n}:{commit}")))
}

#[test]
fn buses_are_send_and_handles_are_shareable() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<BasicEventBus>();
    send::<CustomEventBus<String, fn(&String, bool)>>();
    send::<DelayedEventBus<BasicEventBus>>();
    send::<MultiEventBus>();
    send::<SharedContextBus<Tx>>();
    send::<EmitOnCommitBus<u64>>();
    send_sync::<ventus::bus::Wrapped<BasicEventBus>>();
    send_sync::<EventBusOrchestrator>();
    send_sync::<AnyBus>();
    send::<ventus::bus::Deferred<u32, Applied<u32>>>();
}

// ---------------------------------------------------------------------------------------
// BasicEventBus and the EventBus contract

#[test]
fn nothing_runs_before_apply_then_everything_runs_in_order_and_the_bus_is_cleared() {
    let log = log();
    let mut bus = BasicEventBus::new();
    bus.publish(logging(&log, "a"));
    bus.publish_all([logging(&log, "b"), logging(&log, "c")]);
    assert_eq!(bus.len(), 3);
    assert!(entries(&log).is_empty());

    let report = bus.apply(true);
    assert_eq!(entries(&log), ["a:true", "b:true", "c:true"]);
    assert_eq!(report.ran, 3);
    assert!(report.is_ok());
    assert!(bus.is_empty());

    // A second apply has nothing left: each side effect ran exactly once.
    let again = bus.apply(true);
    assert_eq!(again.ran, 0);
    assert_eq!(entries(&log).len(), 3);
}

#[test]
fn a_rollback_calls_each_side_effect_with_false() {
    let log = log();
    let mut bus = BasicEventBus::new();
    bus.publish(logging(&log, "a"));
    bus.publish(logging(&log, "b"));
    assert_eq!(bus.apply(false).ran, 2);
    assert_eq!(entries(&log), ["a:false", "b:false"]);
}

#[test]
fn a_failing_or_panicking_side_effect_does_not_stop_the_others() {
    let log = log();
    let mut bus = BasicEventBus::new();
    bus.publish(logging(&log, "a"));
    bus.publish_fn(|_commit| Err::<(), _>(Oops("disk full")));
    bus.publish(logging(&log, "c"));
    bus.publish_fn(|_commit| -> () { panic!("boom") });
    bus.publish(logging(&log, "e"));

    let report = bus.apply(true);
    assert_eq!(entries(&log), ["a:true", "c:true", "e:true"]);
    assert_eq!(report.ran, 5);
    assert_eq!(report.succeeded(), 3);
    assert!(!report.is_ok());
    let failures: Vec<(usize, String)> = report
        .failures
        .iter()
        .map(|failure| (failure.index, failure.error.to_string()))
        .collect();
    assert_eq!(
        failures,
        [
            (1, "failed: disk full".to_owned()),
            (3, "panicked: boom".to_owned())
        ]
    );
    assert!(matches!(
        report.failures[1].error,
        SideEffectError::Panicked(ref message) if message == "boom"
    ));
    // The error chain reaches the side effect's own error.
    let source = report.failures[0].error.source().unwrap();
    assert_eq!(source.to_string(), "disk full");
    assert!(bus.is_empty(), "failed side effects are not retried");
}

#[test]
fn a_bus_dropped_with_unapplied_side_effects_calls_its_hook_once_with_the_count() {
    let drops = drops();
    let log = log();
    let mut bus = basic(&drops);
    bus.publish(logging(&log, "a"));
    bus.publish(logging(&log, "b"));
    drop(bus);
    assert!(entries(&log).is_empty(), "dropping never applies");
    let lost = drops.lock().unwrap().clone();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].count, 2);
    assert_eq!(lost[0].bus, "BasicEventBus");
    assert_eq!(
        lost[0].to_string(),
        "BasicEventBus dropped 2 unapplied side effect(s)"
    );

    // Applied (or empty) buses report nothing.
    let mut bus = basic(&drops);
    bus.publish(logging(&log, "c"));
    let _ = bus.apply(true);
    drop(bus);
    drop(basic(&drops));
    assert_eq!(dropped_counts(&drops), [2]);
}

#[test]
fn a_panicking_unapplied_hook_is_caught() {
    let mut bus = BasicEventBus::new().on_unapplied(|_| panic!("hook"));
    bus.publish_fn(|_commit| {});
    drop(bus); // must not unwind
}

// ---------------------------------------------------------------------------------------
// CustomEventBus (the base) and collect

#[test]
fn a_custom_bus_applies_by_borrowing_and_returns_the_events() {
    let log = log();
    let mut bus = numbers(&log);
    bus.publish_all([3, 1, 2]);
    assert_eq!(bus.events(), [3, 1, 2]);
    let applied = bus.apply(true);
    assert_eq!(applied.events, [3, 1, 2]);
    assert_eq!(entries(&log), ["3:true", "1:true", "2:true"]);
    assert!(applied.report.is_ok());
}

#[test]
fn custom_bus_failures_index_the_returned_events() {
    let mut bus = CustomEventBus::new(|n: &u32, _commit: bool| {
        if *n == 13 {
            panic!("unlucky");
        }
        if n % 2 == 0 {
            Err(Oops("even"))
        } else {
            Ok(())
        }
    });
    bus.publish_all([1, 2, 13, 5]);
    let applied = bus.apply(true);
    assert_eq!(applied.events, [1, 2, 13, 5]);
    let failed: Vec<u32> = applied
        .report
        .failures
        .iter()
        .map(|failure| applied.events[failure.index])
        .collect();
    assert_eq!(failed, [2, 13]);
}

#[test]
fn collect_takes_the_calls_out_and_running_them_adds_up_to_apply() {
    let log = log();
    let mut bus = numbers(&log);
    bus.publish_all([1, 2, 3]);
    let calls = bus.collect();
    assert!(bus.is_empty());
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls.iter().map(|call| *call.event()).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(calls[0].bus(), "CustomEventBus");
    assert!(entries(&log).is_empty(), "collect runs nothing");

    let mut applied = Applied::default();
    for call in calls {
        applied.merge(call.run(false));
    }
    assert_eq!(applied.events, [1, 2, 3]);
    assert_eq!(applied.report.ran, 3);
    assert_eq!(entries(&log), ["1:false", "2:false", "3:false"]);
}

#[test]
fn merged_reports_keep_failure_positions() {
    let mut first = Report::default();
    let mut bus = BasicEventBus::new();
    bus.publish_fn(|_commit| {});
    bus.publish_fn(|_commit| Err::<(), _>(Oops("x")));
    first.merge(bus.apply(true));
    bus.publish_fn(|_commit| Err::<(), _>(Oops("y")));
    first.merge(bus.apply(true));
    assert_eq!(first.ran, 3);
    assert_eq!(
        first
            .failures
            .iter()
            .map(|failure| failure.index)
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn deferred_calls_dropped_unrun_are_reported_once_per_batch_and_into_event_is_silent() {
    let drops = drops();
    let log = log();
    let mut bus = basic(&drops);
    bus.publish_all([
        logging(&log, "a"),
        logging(&log, "b"),
        logging(&log, "c"),
        logging(&log, "d"),
    ]);
    let mut calls = bus.collect();
    let last = calls.pop().unwrap();
    let _taken: Committable = last.into_event(); // explicit: not reported
    let first = calls.remove(0);
    let _ = first.run(true);
    drop(calls); // b and c: dropped unrun
    assert_eq!(entries(&log), ["a:true"]);
    assert_eq!(dropped_counts(&drops), [2]);
    drop(bus);
    assert_eq!(dropped_counts(&drops), [2], "the bus itself was empty");
}

// ---------------------------------------------------------------------------------------
// DelayedEventBus

#[test]
fn delayed_apply_runs_nothing_and_apply_without_delay_runs_everything_once_in_order() {
    let log = log();
    let mut bus = DelayedEventBus::new(numbers(&log));
    bus.publish(1);
    let nothing = bus.apply(true);
    assert!(nothing.events.is_empty());
    assert_eq!(nothing.report.ran, 0);
    bus.publish_all([2, 3]);
    let _ = bus.apply(false); // the flag of a delayed apply does not matter
    bus.publish(4); // published after the last apply: runs too
    assert_eq!(bus.delayed(), 3);
    assert_eq!(bus.inner().len(), 1);
    assert_eq!(bus.len(), 4);
    assert!(entries(&log).is_empty());

    let applied = bus.apply_without_delay(true);
    assert_eq!(applied.events, [1, 2, 3, 4]);
    assert_eq!(entries(&log), ["1:true", "2:true", "3:true", "4:true"]);
    assert!(bus.is_empty());

    let again = bus.apply_without_delay(true);
    assert_eq!(again.report.ran, 0, "exactly once");
    assert_eq!(entries(&log).len(), 4);
}

#[test]
fn delayed_buses_nest() {
    let log = log();
    let mut outer = DelayedEventBus::new(DelayedEventBus::new(numbers(&log)));
    outer.publish(1);
    let _ = outer.apply(true);
    outer.publish(2);
    let applied = outer.apply_without_delay(true);
    assert_eq!(applied.events, [1, 2]);
    assert_eq!(entries(&log), ["1:true", "2:true"]);
}

#[test]
fn a_delayed_bus_dropped_unapplied_reports_through_its_inner_bus() {
    let drops = drops();
    let log = log();
    let mut bus = DelayedEventBus::new(basic(&drops));
    bus.publish(logging(&log, "a"));
    bus.publish(logging(&log, "b"));
    let _ = bus.apply(true); // moved aside
    bus.publish(logging(&log, "c")); // still in the inner bus
    drop(bus);
    assert!(entries(&log).is_empty());
    let mut counts = dropped_counts(&drops);
    counts.sort();
    assert_eq!(
        counts,
        [1, 2],
        "the inner bus's 1 and the moved-aside batch's 2"
    );
}

#[test]
fn a_delayed_bus_keeps_the_failure_rule() {
    let log = log();
    let mut bus = DelayedEventBus::new(BasicEventBus::new());
    bus.publish(logging(&log, "a"));
    bus.publish(Committable::new(|_commit| -> () { panic!("boom") }));
    let _ = bus.apply(true);
    bus.publish(logging(&log, "c"));
    let report = bus.apply_without_delay(true);
    assert_eq!(report.ran, 3);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].index, 1);
    assert_eq!(entries(&log), ["a:true", "c:true"]);
}

// ---------------------------------------------------------------------------------------
// MultiEventBus and EventBusOrchestrator

#[test]
fn a_multi_bus_applies_its_buses_in_wrap_order_with_the_commit_flag() {
    let log = log();
    let mut unit = MultiEventBus::new();
    let first = unit.wrap(numbers(&log));
    let second = unit.wrap(BasicEventBus::new());
    let third = unit.orchestrator().wrap(numbers(&log));
    // Publication order across buses does not matter: wrap order does.
    third.publish(30);
    second.publish(logging(&log, "b"));
    first.publish_all([10, 11]);
    assert_eq!(unit.len(), 3);
    assert_eq!(unit.side_effects(), 4);
    assert!(entries(&log).is_empty());

    let report = unit.apply(false);
    assert_eq!(
        entries(&log),
        ["10:false", "11:false", "b:false", "30:false"]
    );
    assert!(report.is_ok());
    assert_eq!(report.ran(), 4);
    assert_eq!(
        report
            .buses
            .iter()
            .map(|bus| bus.report.ran)
            .collect::<Vec<_>>(),
        [2, 1, 1]
    );
    assert!(report.buses[1].bus.ends_with("BasicEventBus"));
    assert!(unit.is_empty());
    assert!(first.is_empty());
}

#[test]
fn code_that_applies_a_wrapped_handle_only_defers() {
    fn process(bus: &mut impl EventBus<Event = u32>, n: u32) -> usize {
        bus.publish(n);
        bus.apply(true).into_report().ran
    }
    let log = log();
    let mut unit = MultiEventBus::new();
    let mut handle = unit.wrap(numbers(&log));
    assert_eq!(process(&mut handle, 1), 0);
    assert_eq!(process(&mut handle, 2), 0);
    assert!(entries(&log).is_empty());
    assert_eq!(handle.len(), 2);
    let report = unit.apply(true);
    assert_eq!(report.ran(), 2);
    assert_eq!(entries(&log), ["1:true", "2:true"]);
}

#[test]
fn apply_and_get_applied_events_returns_each_buses_own_outcome() {
    let log = log();
    let mut unit = MultiEventBus::new();
    unit.wrap(numbers(&log)).publish_all([1, 2]);
    unit.wrap(BasicEventBus::new()).publish(logging(&log, "x"));
    let applied: Vec<Box<dyn Any + Send>> = unit.apply_and_get_applied_events(true);
    assert_eq!(applied.len(), 2);
    let numbers = applied[0].downcast_ref::<Applied<u32>>().unwrap();
    assert_eq!(numbers.events, [1, 2]);
    let report = applied[1].downcast_ref::<Report>().unwrap();
    assert_eq!(report.ran, 1);
    assert_eq!(entries(&log), ["1:true", "2:true", "x:true"]);
    assert!(unit.is_empty());
}

#[test]
fn multi_buses_nest() {
    let log = log();
    let mut outer = MultiEventBus::new();
    let before = outer.wrap(BasicEventBus::new());
    let inner = outer.orchestrator().wrap(MultiEventBus::new());
    let after = outer.wrap(BasicEventBus::new());
    let inner_orchestrator = inner.orchestrator();
    let deep = inner_orchestrator.wrap(numbers(&log));
    let deeper = inner_orchestrator
        .wrap(MultiEventBus::new())
        .orchestrator()
        .wrap(BasicEventBus::new());

    after.publish(logging(&log, "after"));
    deeper.publish(logging(&log, "deeper"));
    deep.publish(7);
    before.publish(logging(&log, "before"));

    let report = outer.apply(true);
    assert_eq!(
        entries(&log),
        ["before:true", "7:true", "deeper:true", "after:true"]
    );
    assert_eq!(report.ran(), 4);
    // The nested multi-bus is one bus of the outer one, its report flattened.
    assert_eq!(report.buses.len(), 3);
    assert_eq!(report.buses[1].report.ran, 2);
}

#[test]
fn a_multi_bus_is_a_bus_whose_events_are_buses() {
    let log = log();
    let mut a = MultiEventBus::new();
    let shared = a.wrap(numbers(&log));
    shared.publish(1);
    let mut b = MultiEventBus::new();
    // Register the same handle in another multi-bus through `publish`.
    b.publish(AnyBus::from(shared.clone()));
    let calls = b.collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].event().len(), 1);
    let report = calls.into_iter().next().unwrap().run(true);
    assert_eq!(report.ran(), 1);
    // The bus was emptied: `a` finds nothing left to run.
    assert_eq!(a.apply(true).ran(), 0);
    assert_eq!(entries(&log), ["1:true"]);
}

#[test]
fn multi_bus_failures_name_their_bus_and_the_rest_still_run() {
    let log = log();
    let mut unit = MultiEventBus::new();
    let first = unit.wrap(BasicEventBus::new());
    let second = unit.wrap(numbers(&log));
    first.publish_fn(|_commit| -> () { panic!("first bus") });
    first.publish(logging(&log, "a"));
    second.publish(2);
    let report = unit.apply(true);
    assert_eq!(entries(&log), ["a:true", "2:true"]);
    assert!(!report.is_ok());
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].0.ends_with("BasicEventBus"));
    assert_eq!(failures[0].1.index, 0);
    assert_eq!(report.into_report().failures.len(), 1);
}

#[test]
fn a_multi_bus_dropped_unapplied_reports_through_its_buses() {
    let drops = drops();
    let log = log();
    let unit = MultiEventBus::new();
    let handle = unit.wrap(basic(&drops));
    handle.publish(logging(&log, "a"));
    handle.publish(logging(&log, "b"));
    drop(unit);
    assert!(
        drops.lock().unwrap().is_empty(),
        "the handle still holds the bus"
    );
    drop(handle);
    assert_eq!(dropped_counts(&drops), [2]);
    assert!(entries(&log).is_empty());
}

#[test]
fn a_side_effect_may_publish_to_a_wrapped_bus_while_the_multi_bus_applies() {
    let log = log();
    let mut unit = MultiEventBus::new();
    let first = unit.wrap(BasicEventBus::new());
    let second = unit.wrap(numbers(&log));
    let later = second.clone();
    // No lock is held while side effects run, so this cannot deadlock; the second bus is
    // taken after the first one ran, so the event is part of this apply.
    first.publish_fn(move |_commit| later.publish(99));
    let report = unit.apply(true);
    assert_eq!(report.ran(), 2);
    assert_eq!(entries(&log), ["99:true"]);
}

#[test]
fn several_threads_publish_into_one_unit_of_work() {
    let mut unit = MultiEventBus::new();
    let total = Arc::new(AtomicUsize::new(0));
    let sum = total.clone();
    let handle = unit.wrap(CustomEventBus::new(move |n: &usize, _commit: bool| {
        sum.fetch_add(*n, Ordering::Relaxed);
    }));
    std::thread::scope(|scope| {
        for t in 0..4 {
            let handle = handle.clone();
            scope.spawn(move || {
                for i in 0..100 {
                    handle.publish(t * 100 + i);
                }
            });
        }
    });
    assert_eq!(unit.side_effects(), 400);
    let report = unit.apply(true);
    assert_eq!(report.ran(), 400);
    assert_eq!(total.load(Ordering::Relaxed), (0..400).sum::<usize>());
}

// ---------------------------------------------------------------------------------------
// use_orchestrator_or_create

/// The seed's usage: a process that joins its caller's unit of work, or runs its own.
fn place_order(
    log: &Log,
    orchestrator: Option<&EventBusOrchestrator>,
    commit: bool,
) -> (bool, Option<usize>) {
    use_orchestrator_or_create(orchestrator, commit, |orchestrator, step| {
        let emails = orchestrator.wrap(BasicEventBus::new());
        emails.publish(logging(log, "email"));
        let stock = orchestrator.wrap(numbers(log));
        stock.publish(1);
        let owns = step.owns_unit();
        (owns, step.commit_and_execute().map(|report| report.ran()))
    })
}

#[test]
fn without_an_orchestrator_a_fresh_multi_bus_is_made_and_applied_with_commit() {
    let log = log();
    assert_eq!(place_order(&log, None, true), (true, Some(2)));
    assert_eq!(entries(&log), ["email:true", "1:true"]);
    log.lock().unwrap().clear();
    assert_eq!(place_order(&log, None, false), (true, Some(2)));
    assert_eq!(entries(&log), ["email:false", "1:false"]);
}

#[test]
fn with_an_orchestrator_the_work_registers_into_it_and_the_commit_step_does_nothing() {
    let log = log();
    let mut unit = MultiEventBus::new();
    let orchestrator = unit.orchestrator();
    // The process asks to commit, but the caller owns the unit of work.
    assert_eq!(place_order(&log, Some(&orchestrator), true), (false, None));
    assert!(entries(&log).is_empty());
    assert_eq!(unit.len(), 2);
    // The caller decides: here, a rollback.
    let report = unit.apply(false);
    assert_eq!(report.ran(), 2);
    assert_eq!(entries(&log), ["email:false", "1:false"]);
}

#[test]
fn work_that_never_runs_its_commit_step_applies_nothing_and_reports_it() {
    let drops = drops();
    let log = log();
    let returned = use_orchestrator_or_create(None, true, |orchestrator, step| {
        orchestrator.wrap(basic(&drops)).publish(logging(&log, "a"));
        drop(step); // an early return
        "gave up"
    });
    assert_eq!(returned, "gave up");
    assert!(entries(&log).is_empty());
    assert_eq!(dropped_counts(&drops), [1]);
}

// ---------------------------------------------------------------------------------------
// SharedContextBus

#[derive(Debug, Default)]
struct Db {
    rows: Mutex<Vec<String>>,
    opened: AtomicUsize,
    finished: Mutex<Vec<bool>>,
}

struct Tx {
    db: Arc<Db>,
    id: usize,
    staged: Vec<String>,
    fail_finish: bool,
}

impl SharedContext for Tx {
    fn finish(self, commit: bool) -> Result<(), BoxError> {
        self.db.finished.lock().unwrap().push(commit);
        if self.fail_finish {
            return Err(Box::new(Oops("commit failed")));
        }
        if commit {
            self.db.rows.lock().unwrap().extend(self.staged);
        }
        Ok(())
    }
}

fn shared_bus(db: &Arc<Db>, fail_finish: bool) -> SharedContextBus<Tx> {
    let db = db.clone();
    SharedContextBus::new(move || Tx {
        id: db.opened.fetch_add(1, Ordering::SeqCst),
        db: db.clone(),
        staged: Vec::new(),
        fail_finish,
    })
}

fn stage(row: &'static str) -> SideEffect<Tx> {
    SideEffect::new(move |tx: &mut Tx| tx.staged.push(format!("{row}@tx{}", tx.id)))
}

fn rows(db: &Db) -> Vec<String> {
    db.rows.lock().unwrap().clone()
}

#[test]
fn every_side_effect_of_one_apply_shares_one_context_which_is_told_to_commit() {
    let db = Arc::new(Db::default());
    let mut bus = shared_bus(&db, false);
    bus.publish_all([stage("a"), stage("b"), stage("c")]);
    let report: ContextReport = bus.apply(true);
    assert!(report.committed());
    assert_eq!(report.report.ran, 3);
    assert_eq!(report.contexts.len(), 1);
    assert_eq!(db.opened.load(Ordering::SeqCst), 1);
    assert_eq!(rows(&db), ["a@tx0", "b@tx0", "c@tx0"]);
    assert_eq!(*db.finished.lock().unwrap(), [true]);

    // The next apply is another unit of work, with its own context.
    bus.publish(stage("d"));
    let _ = bus.apply(true);
    assert_eq!(rows(&db).last().unwrap(), "d@tx1");

    // Nothing to apply: no context is opened.
    let empty = bus.apply(true);
    assert!(empty.contexts.is_empty());
    assert_eq!(db.opened.load(Ordering::SeqCst), 2);
}

#[test]
fn a_rollback_runs_the_side_effects_in_the_context_then_rolls_it_back() {
    let db = Arc::new(Db::default());
    let mut bus = shared_bus(&db, false);
    let seen = log();
    let s = seen.clone();
    bus.publish(stage("a"));
    bus.publish_fn(move |tx: &mut Tx| push(&s, format!("ran in tx{}", tx.id)));
    let report = bus.apply(false);
    assert!(!report.committed());
    assert_eq!(report.report.ran, 2);
    assert_eq!(entries(&seen), ["ran in tx0"]);
    assert!(rows(&db).is_empty());
    assert_eq!(*db.finished.lock().unwrap(), [false]);
}

#[test]
fn one_failing_or_panicking_side_effect_rolls_the_context_back_but_the_rest_still_run() {
    let db = Arc::new(Db::default());
    let mut bus = shared_bus(&db, false);
    let seen = log();
    let s = seen.clone();
    bus.publish(stage("a"));
    bus.publish_fn(|_tx: &mut Tx| Err::<(), _>(Oops("constraint violated")));
    bus.publish_fn(|_tx: &mut Tx| -> () { panic!("boom") });
    bus.publish_fn(move |_tx: &mut Tx| push(&s, "still ran"));
    let report = bus.apply(true);
    assert_eq!(entries(&seen), ["still ran"]);
    assert_eq!(report.report.ran, 4);
    assert_eq!(
        report
            .report
            .failures
            .iter()
            .map(|failure| failure.index)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(!report.committed());
    assert!(!report.contexts[0].commit);
    assert!(rows(&db).is_empty());
    assert_eq!(*db.finished.lock().unwrap(), [false]);
}

#[test]
fn a_context_that_cannot_open_runs_nothing_and_fails_every_side_effect() {
    let ran = Arc::new(AtomicUsize::new(0));
    let mut bus: SharedContextBus<Tx> =
        SharedContextBus::try_new(|| Err::<Tx, _>(Oops("no connection")));
    for _ in 0..2 {
        let ran = ran.clone();
        bus.publish_fn(move |_tx: &mut Tx| {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    let report = bus.apply(true);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(report.report.ran, 2);
    assert!(
        report
            .report
            .failures
            .iter()
            .all(|failure| matches!(failure.error, SideEffectError::NoContext))
    );
    assert!(!report.committed());
    assert!(matches!(
        report.contexts[0].result,
        Err(SideEffectError::Failed(ref error)) if error.to_string() == "no connection"
    ));
    // In a report, the context's failure follows the side effects.
    let flat = report.into_report();
    assert_eq!(flat.failures.len(), 3);
    assert_eq!(flat.failures[2].index, 2);
    assert!(matches!(
        flat.failures[2].error,
        SideEffectError::Context(_)
    ));
    assert_eq!(flat.succeeded(), 0);
}

#[test]
fn a_context_that_fails_to_finish_is_reported() {
    let db = Arc::new(Db::default());
    let mut bus = shared_bus(&db, true);
    bus.publish(stage("a"));
    let report = bus.apply(true);
    assert!(report.report.is_ok());
    assert!(report.contexts[0].commit);
    assert!(!report.committed());
    assert!(report.contexts[0].result.is_err());
    let flat = report.into_report();
    assert_eq!(flat.succeeded(), 1);
    assert_eq!(flat.failures.len(), 1);
}

#[test]
fn collected_calls_share_one_context_per_collect() {
    let db = Arc::new(Db::default());
    let mut bus = shared_bus(&db, false);
    bus.publish_all([stage("a"), stage("b")]);
    let calls = bus.collect();
    assert_eq!(db.opened.load(Ordering::SeqCst), 0, "opened lazily");
    let mut report = ContextReport::default();
    for call in calls {
        report.merge(call.run(true));
    }
    assert!(report.committed());
    assert_eq!(report.contexts.len(), 1);
    assert_eq!(rows(&db), ["a@tx0", "b@tx0"]);
}

#[test]
fn a_shared_context_bus_delayed_in_a_multi_bus_commits_once() {
    let db = Arc::new(Db::default());
    let mut unit = MultiEventBus::new();
    let mut handle = unit.wrap(shared_bus(&db, false));
    handle.publish(stage("a"));
    handle.publish(stage("b"));
    let _ = handle.apply(true);
    let report = unit.apply(true);
    assert!(report.is_ok());
    assert_eq!(rows(&db), ["a@tx0", "b@tx0"]);
    assert_eq!(*db.finished.lock().unwrap(), [true]);
}

#[test]
fn dropping_a_collected_call_unrun_rolls_the_context_back_and_is_reported() {
    let db = Arc::new(Db::default());
    let counts = drops();
    let c = counts.clone();
    let mut bus =
        shared_bus(&db, false).on_unapplied(move |lost| c.lock().unwrap().push(lost.clone()));
    bus.publish_all([stage("a"), stage("b")]);
    let mut calls = bus.collect();
    let second = calls.pop().unwrap();
    let first = calls.pop().unwrap();
    let partial = first.run(true);
    assert!(
        partial.contexts.is_empty(),
        "not finished before the last call"
    );
    drop(second);
    assert_eq!(*db.finished.lock().unwrap(), [false]);
    assert!(rows(&db).is_empty());
    assert_eq!(dropped_counts(&counts), [1]);

    // The bus itself dropped with side effects reports too.
    bus.publish(stage("c"));
    drop(bus);
    assert_eq!(dropped_counts(&counts), [1, 1]);
}

// ---------------------------------------------------------------------------------------
// EmitOnCommitBus

#[derive(Debug, Clone, PartialEq)]
struct OrderPlaced(u32);

type Letters = Arc<Mutex<Vec<(DeadLetterReason, Option<u32>)>>>;

fn recording_linker(letters: &Letters) -> Linker {
    let letters = letters.clone();
    Linker::builder()
        .dead_letter_hook(move |letter: DeadLetter| {
            let order = letter
                .payload
                .as_ref()
                .and_then(|payload| payload.downcast_ref::<OrderPlaced>())
                .map(|order| order.0);
            assert_eq!(letter.key, EventKey::of::<OrderPlaced>());
            letters.lock().unwrap().push((letter.reason, order));
        })
        .build()
        .unwrap()
}

fn subscribe_orders(linker: &Linker, seen: &Log) -> ventus::Subscription {
    let seen = seen.clone();
    linker
        .on::<OrderPlaced>()
        .call(move |order: &OrderPlaced| push(&seen, format!("order {}", order.0)))
        .unwrap()
}

#[test]
fn emit_on_commit_emits_in_order_only_on_apply_true() {
    let linker = Linker::new();
    let seen = log();
    let _sub = subscribe_orders(&linker, &seen);
    let mut outbox = EmitOnCommitBus::new(&Emitter::inline(&linker));
    outbox.publish_all([OrderPlaced(1), OrderPlaced(2), OrderPlaced(3)]);
    assert_eq!(outbox.events().len(), 3);
    assert!(
        entries(&seen).is_empty(),
        "nothing is emitted before the commit"
    );

    let emitted: Emitted<OrderPlaced> = outbox.apply(true);
    assert_eq!(entries(&seen), ["order 1", "order 2", "order 3"]);
    assert!(emitted.is_complete());
    assert_eq!(emitted.delivered(), 3);
    assert_eq!(emitted.outcomes.len(), 3);
    assert!(outbox.is_empty());
    assert!(emitted.into_events().is_empty());
}

#[test]
fn emit_on_commit_rollback_emits_nothing_and_returns_the_events() {
    let linker = Linker::new();
    let seen = log();
    let _sub = subscribe_orders(&linker, &seen);
    let mut outbox = EmitOnCommitBus::new(&Emitter::inline(&linker));
    outbox.publish_all([OrderPlaced(1), OrderPlaced(2)]);
    let rolled_back = outbox.apply(false);
    assert!(entries(&seen).is_empty());
    assert!(
        rolled_back
            .outcomes
            .iter()
            .all(|outcome| matches!(outcome, EmitOutcome::RolledBack(_)))
    );
    assert!(!rolled_back.is_complete());
    assert_eq!(rolled_back.into_events(), [OrderPlaced(1), OrderPlaced(2)]);
    assert!(outbox.is_empty());
    drop(outbox);
    assert_eq!(linker.dead_letter_counts().total(), 0);
}

#[test]
fn a_refused_emission_is_in_the_result_and_the_rest_are_still_emitted() {
    // The unit of work commits inside a handler of a busy subscription whose mailbox holds
    // one message and fails when full: the emissions it would receive are refused.
    #[derive(Debug, PartialEq)]
    struct Solo(u32);
    #[derive(Debug)]
    struct Command;

    let linker = Linker::new();
    let emitter = Emitter::inline(&linker);
    let seen = log();
    type Results = Option<(Emitted<OrderPlaced>, Emitted<Solo>)>;
    let results: Arc<Mutex<Results>> = Arc::new(Mutex::new(None));
    let (e, r) = (emitter.clone(), results.clone());
    let _busy = linker
        .subscribe([
            EventKey::of::<Command>(),
            EventKey::of::<OrderPlaced>(),
            EventKey::of::<Solo>(),
        ])
        .capacity(1)
        .policy(Policy::Fail)
        .call(move |event: &Event<'_>| {
            if event.is::<Command>() {
                let mut orders = EmitOnCommitBus::new(&e);
                orders.publish_all([OrderPlaced(1), OrderPlaced(2)]);
                let mut solos = EmitOnCommitBus::new(&e);
                solos.publish(Solo(9));
                *r.lock().unwrap() = Some((orders.apply(true), solos.apply(true)));
            }
        })
        .unwrap();
    let _other = subscribe_orders(&linker, &seen);
    assert_eq!(emitter.emit(Command).unwrap().delivered, 1);

    let (orders, solos) = results.lock().unwrap().take().unwrap();
    // OrderPlaced: the other subscription took both, the busy one refused: partial.
    assert_eq!(entries(&seen), ["order 1", "order 2"]);
    assert_eq!(orders.outcomes.len(), 2);
    for outcome in &orders.outcomes {
        match outcome {
            EmitOutcome::Emitted(delivery) => {
                assert_eq!(delivery.delivered, 1);
                assert_eq!(delivery.refused.len(), 1);
                assert_eq!(delivery.refused[0].1, Refusal::Full);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(!orders.is_complete());
    let report = orders.into_report();
    assert_eq!(report.ran, 2);
    assert!(matches!(
        report.failures[0].error,
        SideEffectError::Refused(_)
    ));

    // Solo: nobody took it, so the error gives the event back.
    assert!(matches!(
        &solos.outcomes[0],
        EmitOutcome::NotEmitted(EmitError::Full(Solo(9)))
    ));
    assert_eq!(solos.into_events(), [Solo(9)]);
}

#[derive(Debug)]
struct Panicky;

impl Strategy for Panicky {
    fn dispatch(&self, emission: &mut Emission<'_>) -> Result<Delivery, DispatchError> {
        if emission
            .payload()
            .and_then(|payload| payload.downcast_ref::<OrderPlaced>())
            .is_some_and(|order| order.0 == 2)
        {
            panic!("strategy broke");
        }
        emission.deliver_inline()
    }
}

#[test]
fn a_panicking_emit_is_caught_and_the_rest_are_still_emitted() {
    let linker = Linker::new();
    let seen = log();
    let _sub = subscribe_orders(&linker, &seen);
    let mut outbox = EmitOnCommitBus::new(&Emitter::new(&linker, Panicky));
    outbox.publish_all([OrderPlaced(1), OrderPlaced(2), OrderPlaced(3)]);
    let emitted = outbox.apply(true);
    assert_eq!(entries(&seen), ["order 1", "order 3"]);
    assert!(matches!(
        &emitted.outcomes[1],
        EmitOutcome::Panicked(message) if message == "strategy broke"
    ));
    let report = emitted.into_report();
    assert_eq!(report.ran, 3);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].index, 1);
}

#[test]
fn an_emit_on_commit_bus_dropped_unapplied_reports_dead_letters_with_the_payload() {
    let letters = Letters::default();
    let linker = recording_linker(&letters);
    let seen = log();
    let _sub = subscribe_orders(&linker, &seen);
    let mut outbox = EmitOnCommitBus::new(&Emitter::inline(&linker));
    outbox.publish_all([OrderPlaced(1), OrderPlaced(2)]);
    drop(outbox);
    assert!(entries(&seen).is_empty(), "dropping never emits");
    assert_eq!(
        *letters.lock().unwrap(),
        [
            (DeadLetterReason::BusDroppedUnapplied, Some(1)),
            (DeadLetterReason::BusDroppedUnapplied, Some(2))
        ]
    );
    let counts = linker.dead_letter_counts();
    assert_eq!(counts.bus_dropped_unapplied, 2);
    assert_eq!(counts.total(), 2);
    assert_eq!(
        DeadLetterReason::BusDroppedUnapplied.to_string(),
        "bus dropped unapplied"
    );
}

#[test]
fn emit_on_commit_through_a_multi_bus_and_its_drops_are_dead_letters_too() {
    let letters = Letters::default();
    let linker = recording_linker(&letters);
    let seen = log();
    let _sub = subscribe_orders(&linker, &seen);
    let emitter = Emitter::inline(&linker);

    // Committed through a multi-bus: emitted once, in order.
    let mut unit = MultiEventBus::new();
    let mut outbox = unit.wrap(EmitOnCommitBus::new(&emitter));
    outbox.publish(OrderPlaced(1));
    let _ = outbox.apply(true); // deferred
    outbox.publish(OrderPlaced(2));
    assert!(entries(&seen).is_empty());
    let report = unit.apply(true);
    assert_eq!(report.ran(), 2);
    assert_eq!(entries(&seen), ["order 1", "order 2"]);

    // A delayed outbox dropped with calls aside and events inside: every event a letter.
    let mut delayed = DelayedEventBus::new(EmitOnCommitBus::new(&emitter));
    delayed.publish(OrderPlaced(3));
    let _ = delayed.apply(true);
    delayed.publish(OrderPlaced(4));
    drop(delayed);
    let mut got = letters.lock().unwrap().clone();
    got.sort_by_key(|(_, order)| *order);
    assert_eq!(
        got,
        [
            (DeadLetterReason::BusDroppedUnapplied, Some(3)),
            (DeadLetterReason::BusDroppedUnapplied, Some(4))
        ]
    );
    assert_eq!(entries(&seen).len(), 2);
    assert_eq!(linker.dead_letter_counts().bus_dropped_unapplied, 2);
}
