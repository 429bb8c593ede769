//! The `Linker`: a registry that links event keys to subscriptions (Pyventus's
//! `EventLinker`). Emitters read it through a copy-on-write snapshot; writers serialise on
//! one mutex, build the new snapshot, swap it in, and drop the old one after unlocking.

mod builder;
pub(crate) mod registry;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;

pub use builder::{Dynamic, Named, SubscribeBuilder, Typed};
pub use builder::{IntoSuccess, NoSuccess, SuccessCallback, WithSuccess};

use crate::actor::Runtime;
use crate::error::{BuildError, Failure, SubscribeError};
use crate::event::EventKey;
use crate::hooks::{DeadLetter, DeadLetterCounts, DebugSink, ErrorHook, ErrorReport, Hooks};
use crate::subscription::{DEFAULT_CAPACITY, Policy, SubArc, Subscription, SubscriptionId};
use crate::sync::statics::OnceLock;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, SnapshotCell};
use registry::Snapshot;

/// The default number of registry shards.
pub const DEFAULT_SHARDS: usize = 256;

/// A registry of subscriptions: the namespace emitters deliver in.
///
/// Independent linkers are independent namespaces: an [`Emitter`](crate::Emitter) sees only
/// the linker it is bound to. [`Linker::global`] is the process-wide default. Cheap to
/// clone; clones share the registry.
///
/// # Examples
///
/// ```
/// use ventus::{Emitter, EventKey, Linker};
///
/// #[derive(Debug)]
/// struct OrderPlaced { id: u32 }
///
/// let linker = Linker::builder().name("orders").max_subscribers(8).build().unwrap();
/// let sub = linker
///     .on::<OrderPlaced>()
///     .on_success(|| println!("handled"))
///     .call(|order: &OrderPlaced| println!("order {}", order.id))
///     .unwrap();
/// assert!(linker.are_linked(&EventKey::of::<OrderPlaced>(), &sub));
///
/// let delivery = Emitter::inline(&linker).emit(OrderPlaced { id: 7 }).unwrap();
/// assert_eq!(delivery.delivered, 1);
/// ```
#[derive(Clone)]
pub struct Linker {
    pub(crate) inner: Arc<LinkerInner>,
}

pub(crate) struct LinkerInner {
    pub(crate) snapshot: SnapshotCell<Snapshot>,
    tables: Mutex<Tables>,
    pub(crate) hooks: Arc<Hooks>,
    pub(crate) config: Config,
    next_id: AtomicU64,
    shards: usize,
}

#[derive(Default)]
struct Tables {
    subs: BTreeMap<SubscriptionId, Record>,
}

struct Record {
    sub: Subscription,
    keys: Vec<EventKey>,
}

type DefaultSuccess = Arc<dyn Fn(&dyn Any) + Send + Sync>;
type DefaultFailure = Arc<dyn Fn(Failure) + Send + Sync>;

pub(crate) struct Config {
    pub(crate) max_subscribers: Option<usize>,
    pub(crate) default_success: Option<DefaultSuccess>,
    pub(crate) default_failure: Option<DefaultFailure>,
    pub(crate) default_capacity: usize,
    pub(crate) default_policy: Policy,
    pub(crate) runtime: Option<Runtime>,
}

impl Default for Linker {
    fn default() -> Self {
        Self::new()
    }
}

impl Linker {
    /// A linker with the default configuration.
    pub fn new() -> Self {
        LinkerBuilder::default()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder for a configured linker.
    pub fn builder() -> LinkerBuilder {
        LinkerBuilder::default()
    }

    /// The process-wide default linker (named `"global"`).
    pub fn global() -> &'static Linker {
        static GLOBAL: OnceLock<Linker> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            Linker::builder()
                .name("global")
                .build()
                .expect("the default configuration is valid")
        })
    }

    /// The linker's name (for debug lines and error reports).
    pub fn name(&self) -> &str {
        &self.inner.hooks.name
    }

    /// The linker's `max_subscribers`, if any.
    pub fn max_subscribers(&self) -> Option<usize> {
        self.inner.config.max_subscribers
    }

    /// Whether debug lines are on for this linker (its own flag, else the global one).
    pub fn is_debug(&self) -> bool {
        self.inner.hooks.debug_enabled(None)
    }

    /// Subscribe to every emission of the Rust type `T` (matched by `TypeId`).
    pub fn on<T: Send + Sync + 'static>(&self) -> SubscribeBuilder<'_, Typed<T>> {
        SubscribeBuilder::new(self, Typed::new())
    }

    /// Subscribe to every emission under `name`; the handler names the payload type it
    /// takes (a payload of another type goes to the failure callback as
    /// [`Failure::PayloadMismatch`]).
    pub fn on_named(&self, name: &str) -> SubscribeBuilder<'_, Named> {
        SubscribeBuilder::new(self, Named::new(name))
    }

    /// Subscribe to every emission of this linker, typed or named; the handler learns the
    /// key from the [`Event`](crate::Event).
    pub fn on_any(&self) -> SubscribeBuilder<'_, Dynamic> {
        SubscribeBuilder::new(self, Dynamic::new(vec![EventKey::Any]))
    }

    /// Subscribe to several keys at once (any mix of typed, named and `Any`; duplicates
    /// collapse). The handler takes an [`Event`](crate::Event); it runs once per emission
    /// even when the emission matches several of its keys.
    pub fn subscribe<I, K>(&self, keys: I) -> SubscribeBuilder<'_, Dynamic>
    where
        I: IntoIterator<Item = K>,
        K: Into<EventKey>,
    {
        SubscribeBuilder::new(
            self,
            Dynamic::new(keys.into_iter().map(Into::into).collect()),
        )
    }

    /// Removes a subscription from every key. `false` if it is not in this linker.
    pub fn remove_subscription(&self, subscription: &Subscription) -> bool {
        if !self.owns(subscription) {
            return false;
        }
        subscription.common().retire();
        self.inner
            .unregister(&[subscription.id()], "remove_subscription")
    }

    /// Removes one link. `false` if the key is not registered, the subscription is not
    /// registered, or the two are not linked. A subscription left with no keys is gone.
    pub fn remove(&self, key: &EventKey, subscription: &Subscription) -> bool {
        if !self.owns(subscription) {
            return false;
        }
        self.inner.unlink(key, subscription.id())
    }

    /// Removes a key and all its links. Subscriptions linked only to it are gone; the others
    /// stay on their other keys. `false` if the key is not registered.
    pub fn remove_event(&self, key: &EventKey) -> bool {
        self.inner.remove_event(key)
    }

    /// Clears the registry. `false` if it was already empty.
    pub fn remove_all(&self) -> bool {
        self.inner.remove_all()
    }

    /// Whether no key is registered.
    pub fn is_empty(&self) -> bool {
        self.inner.tables.lock().subs.is_empty()
    }

    /// Every registered key (`EventKey::Any` included when it has subscriptions). Atomic:
    /// one snapshot.
    pub fn events(&self) -> Vec<EventKey> {
        self.inner.snapshot.load().keys()
    }

    /// Every registered subscription, in subscription order. Atomic.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let tables = self.inner.tables.lock();
        tables
            .subs
            .values()
            .map(|record| record.sub.clone())
            .collect()
    }

    /// How many keys are registered. Atomic.
    pub fn event_count(&self) -> usize {
        self.inner.snapshot.load().key_count()
    }

    /// How many subscriptions are registered. Atomic.
    pub fn subscription_count(&self) -> usize {
        self.inner.tables.lock().subs.len()
    }

    /// The keys a subscription is linked to (empty if it is not registered here).
    pub fn events_of(&self, subscription: &Subscription) -> Vec<EventKey> {
        if !self.owns(subscription) {
            return Vec::new();
        }
        self.inner.events_of(subscription.id())
    }

    /// The subscriptions linked to a key, in subscription order (empty if unknown).
    pub fn subscriptions_of(&self, key: &EventKey) -> Vec<Subscription> {
        let snapshot = self.inner.snapshot.load();
        snapshot
            .get(key)
            .map(|subs| subs.to_vec())
            .unwrap_or_default()
    }

    /// Whether a key has subscriptions.
    pub fn contains_event(&self, key: &EventKey) -> bool {
        self.inner.snapshot.load().get(key).is_some()
    }

    /// Whether a subscription is registered here.
    pub fn contains_subscription(&self, subscription: &Subscription) -> bool {
        self.owns(subscription)
            && self
                .inner
                .tables
                .lock()
                .subs
                .contains_key(&subscription.id())
    }

    /// Whether a key and a subscription are linked.
    pub fn are_linked(&self, key: &EventKey, subscription: &Subscription) -> bool {
        let snapshot = self.inner.snapshot.load();
        snapshot
            .get(key)
            .is_some_and(|subs| subs.iter().any(|sub| sub == subscription))
    }

    /// Dead letters reported so far, by reason.
    pub fn dead_letter_counts(&self) -> DeadLetterCounts {
        self.inner.hooks.dead_letter_counts()
    }

    fn owns(&self, subscription: &Subscription) -> bool {
        std::ptr::eq(
            subscription.common().linker.as_ptr(),
            Arc::as_ptr(&self.inner),
        )
    }
}

impl fmt::Debug for Linker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Linker")
            .field("name", &self.name())
            .field("events", &self.event_count())
            .field("subscriptions", &self.subscription_count())
            .finish()
    }
}

impl LinkerInner {
    pub(crate) fn next_id(&self) -> SubscriptionId {
        // Relaxed: ids only have to be distinct and increasing per linker.
        SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn debug(&self, message: fmt::Arguments<'_>) {
        if self.hooks.debug_enabled(None) {
            self.hooks.debug_line(message);
        }
    }

    /// Registers a new subscription under its keys, all or nothing.
    pub(crate) fn register(
        &self,
        sub: SubArc,
        keys: Vec<EventKey>,
    ) -> Result<Subscription, SubscribeError> {
        let sub = Subscription { inner: sub };
        // Mutant: the cap is checked against a snapshot read before the writer lock, so
        // two concurrent subscribes can both pass it.
        #[cfg(ventus_mutant = "max_check_unlocked")]
        let early = self.snapshot.load();
        let old = {
            let mut tables = self.tables.lock();
            let current = self.snapshot.load();
            #[cfg(ventus_mutant = "max_check_unlocked")]
            let current = {
                drop(current);
                early
            };
            if let Some(max) = self.config.max_subscribers {
                for key in &keys {
                    let live = current.get(key).map_or(0, |subs| {
                        subs.iter().filter(|s| s.common().is_live()).count()
                    });
                    if live >= max {
                        return Err(SubscribeError::TooManySubscribers {
                            key: key.to_string(),
                            max,
                        });
                    }
                }
            }
            let mut edit = current.edit();
            drop(current);
            for key in &keys {
                edit.update(key, |list| {
                    // Ids increase with subscription order; keep each list sorted by id.
                    let at = list.partition_point(|other| other.id() < sub.id());
                    list.insert(at, sub.clone());
                });
            }
            tables.subs.insert(
                sub.id(),
                Record {
                    sub: sub.clone(),
                    keys: keys.clone(),
                },
            );
            self.snapshot.swap(Arc::new(edit.finish()))
        };
        drop(old);
        self.debug(format_args!("subscribed {} to {:?}", sub.id(), keys));
        Ok(sub)
    }

    /// Removes subscriptions from all their keys. True if any was registered.
    pub(crate) fn unregister(&self, ids: &[SubscriptionId], why: &str) -> bool {
        let (old, removed) = {
            let mut tables = self.tables.lock();
            let mut removed = Vec::new();
            for id in ids {
                if let Some(record) = tables.subs.remove(id) {
                    removed.push(record);
                }
            }
            if removed.is_empty() {
                return false;
            }
            let mut edit = self.snapshot.load().edit();
            for record in &removed {
                let id = record.sub.id();
                for key in &record.keys {
                    edit.update(key, |list| list.retain(|sub| sub.id() != id));
                }
            }
            (self.snapshot.swap(Arc::new(edit.finish())), removed)
        };
        // Dropped after unlocking: the last handle may drop user closures.
        drop(old);
        for record in &removed {
            self.debug(format_args!("removed {} ({why})", record.sub.id()));
        }
        drop(removed);
        true
    }

    fn unlink(&self, key: &EventKey, id: SubscriptionId) -> bool {
        let (old, gone) = {
            let mut tables = self.tables.lock();
            let Some(record) = tables.subs.get_mut(&id) else {
                return false;
            };
            let Some(at) = record.keys.iter().position(|k| k == key) else {
                return false;
            };
            record.keys.remove(at);
            let gone = if record.keys.is_empty() {
                let record = tables.subs.remove(&id).expect("present above");
                record.sub.common().retire();
                Some(record)
            } else {
                None
            };
            let mut edit = self.snapshot.load().edit();
            edit.update(key, |list| list.retain(|sub| sub.id() != id));
            (self.snapshot.swap(Arc::new(edit.finish())), gone)
        };
        drop(old);
        self.debug(format_args!("removed {id} from {key}"));
        drop(gone);
        true
    }

    fn remove_event(&self, key: &EventKey) -> bool {
        let (old, gone) = {
            let mut tables = self.tables.lock();
            let current = self.snapshot.load();
            let Some(subs) = current.get(key).cloned() else {
                return false;
            };
            let mut edit = current.edit();
            drop(current);
            edit.update(key, Vec::clear);
            let mut gone = Vec::new();
            for sub in subs.iter() {
                if let Some(record) = tables.subs.get_mut(&sub.id()) {
                    record.keys.retain(|k| k != key);
                    if record.keys.is_empty() {
                        sub.common().retire();
                        gone.extend(tables.subs.remove(&sub.id()));
                    }
                }
            }
            (self.snapshot.swap(Arc::new(edit.finish())), gone)
        };
        drop(old);
        self.debug(format_args!("removed event {key}"));
        drop(gone);
        true
    }

    fn remove_all(&self) -> bool {
        let (old, gone) = {
            let mut tables = self.tables.lock();
            if tables.subs.is_empty() {
                return false;
            }
            let gone = std::mem::take(&mut tables.subs);
            for record in gone.values() {
                record.sub.common().retire();
            }
            let shards = self.config_shards();
            (self.snapshot.swap(Arc::new(Snapshot::empty(shards))), gone)
        };
        drop(old);
        self.debug(format_args!("removed all events and subscriptions"));
        drop(gone);
        true
    }

    fn config_shards(&self) -> usize {
        self.shards
    }

    pub(crate) fn events_of(&self, id: SubscriptionId) -> Vec<EventKey> {
        let tables = self.tables.lock();
        tables
            .subs
            .get(&id)
            .map(|record| record.keys.clone())
            .unwrap_or_default()
    }
}

/// Configures a [`Linker`].
///
/// # Examples
///
/// ```
/// use ventus::{Linker, BuildError};
///
/// let linker = Linker::builder().name("telemetry").max_subscribers(2).debug(false).build().unwrap();
/// assert_eq!(linker.name(), "telemetry");
/// assert_eq!(Linker::builder().max_subscribers(0).build().unwrap_err(), BuildError::ZeroMaxSubscribers);
/// ```
#[must_use]
pub struct LinkerBuilder {
    name: Option<String>,
    max_subscribers: Option<usize>,
    default_success: Option<DefaultSuccess>,
    default_failure: Option<DefaultFailure>,
    debug: Option<bool>,
    debug_sink: Option<DebugSink>,
    error_hook: Option<ErrorHook>,
    dead_letter_hook: Option<Arc<dyn Fn(DeadLetter) + Send + Sync>>,
    default_capacity: Option<usize>,
    default_policy: Option<Policy>,
    shards: usize,
    runtime: Option<Runtime>,
}

impl Default for LinkerBuilder {
    fn default() -> Self {
        Self {
            name: None,
            max_subscribers: None,
            default_success: None,
            default_failure: None,
            debug: None,
            debug_sink: None,
            error_hook: None,
            dead_letter_hook: None,
            default_capacity: None,
            default_policy: None,
            shards: DEFAULT_SHARDS,
            runtime: None,
        }
    }
}

impl LinkerBuilder {
    /// The name used in debug lines and error reports (default `"linker"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The most live subscriptions one key may have (at least 1; checked at `build`).
    pub fn max_subscribers(mut self, max: usize) -> Self {
        self.max_subscribers = Some(max);
        self
    }

    /// The success callback of subscriptions that set none; it receives the handler's
    /// value as `&dyn Any` (`&()` for handlers that return nothing).
    pub fn default_on_success(
        mut self,
        callback: impl Fn(&dyn Any) + Send + Sync + 'static,
    ) -> Self {
        self.default_success = Some(Arc::new(callback));
        self
    }

    /// The failure callback of subscriptions that set none.
    pub fn default_on_failure(
        mut self,
        callback: impl Fn(Failure) + Send + Sync + 'static,
    ) -> Self {
        self.default_failure = Some(Arc::new(callback));
        self
    }

    /// Debug lines for this linker on or off, whatever the global flag says.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
        self
    }

    /// Where debug lines go (default: stderr; with the `tracing` feature, `tracing`
    /// events). The sink receives the linker's name and the line.
    pub fn debug_sink(mut self, sink: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.debug_sink = Some(Arc::new(sink));
        self
    }

    /// Receives errors that have nowhere else to go (default: one line on stderr).
    pub fn error_hook(mut self, hook: impl Fn(&str, &ErrorReport) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }

    /// Receives every dead letter (they are counted whether or not a hook is set).
    pub fn dead_letter_hook(mut self, hook: impl Fn(DeadLetter) + Send + Sync + 'static) -> Self {
        self.dead_letter_hook = Some(Arc::new(hook));
        self
    }

    /// The mailbox capacity of subscriptions that set none (default: the bound
    /// [`runtime`](Self::runtime)'s, else [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY)).
    pub fn default_capacity(mut self, capacity: usize) -> Self {
        self.default_capacity = Some(capacity);
        self
    }

    /// The full-mailbox policy of subscriptions that set none (default: the bound
    /// [`runtime`](Self::runtime)'s, else `Block`).
    pub fn default_policy(mut self, policy: Policy) -> Self {
        self.default_policy = Some(policy);
        self
    }

    /// The runtime that owns the threads of this linker's dedicated subscriptions
    /// (default: [`Runtime::default`]).
    pub fn runtime(mut self, runtime: &Runtime) -> Self {
        self.runtime = Some(runtime.clone());
        self
    }

    /// How many shards the registry has (rounded up to a power of two; default 256). More
    /// shards make writes cheaper on registries with many keys.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Builds the linker.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for a `max_subscribers`, capacity or shard count of 0.
    pub fn build(self) -> Result<Linker, BuildError> {
        if self.max_subscribers == Some(0) {
            return Err(BuildError::ZeroMaxSubscribers);
        }
        // Unset here: the bound runtime's defaults, else the crate's.
        let runtime_defaults = self.runtime.as_ref().map(Runtime::subscription_defaults);
        let default_capacity = self
            .default_capacity
            .or(runtime_defaults.map(|(capacity, _)| capacity))
            .unwrap_or(DEFAULT_CAPACITY);
        let default_policy = self
            .default_policy
            .or(runtime_defaults.map(|(_, policy)| policy))
            .unwrap_or_default();
        if default_capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if self.shards == 0 {
            return Err(BuildError::ZeroShards);
        }
        let shards = self.shards.min(1 << 16).next_power_of_two();
        let name: Arc<str> = Arc::from(self.name.as_deref().unwrap_or("linker"));
        let hooks = Hooks::new(
            name,
            self.error_hook,
            self.dead_letter_hook,
            self.debug_sink,
            self.debug,
        );
        Ok(Linker {
            inner: Arc::new(LinkerInner {
                snapshot: SnapshotCell::new(Arc::new(Snapshot::empty(shards))),
                tables: Mutex::new(Tables::default()),
                hooks: Arc::new(hooks),
                config: Config {
                    max_subscribers: self.max_subscribers,
                    default_success: self.default_success,
                    default_failure: self.default_failure,
                    default_capacity,
                    default_policy,
                    runtime: self.runtime,
                },
                next_id: AtomicU64::new(0),
                shards,
            }),
        })
    }
}

impl fmt::Debug for LinkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkerBuilder")
            .field("name", &self.name)
            .field("max_subscribers", &self.max_subscribers)
            .field("debug", &self.debug)
            .field("default_capacity", &self.default_capacity)
            .field("default_policy", &self.default_policy)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}
