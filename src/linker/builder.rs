//! The subscription builder: `linker.on::<T>()…call(handler)`.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::actor::{Dedicated, Placement, Runtime, SpawnError};
use crate::error::{Failure, SubscribeError};
use crate::event::{Event, EventKey, EventMeta};
use crate::handler::{HandlerResult, OnSuccess};
use crate::linker::Linker;
use crate::subscription::SubArc;
use crate::subscription::{
    EnvRef, FailureCallback, OnPanic, Policy, RunState, Step, SubCommon, SubStats, Subscription,
    TypedRef, envelope_meta, new_dynamic, new_typed, typed_meta, workflow,
};
use crate::sync::{Arc, AtomicU8, AtomicUsize, Mutex};

/// Builder state: subscribing to one Rust type `T`.
pub struct Typed<T> {
    _type: PhantomData<fn(T)>,
    /// Set by [`SubscribeBuilder::by_value`].
    by_value: Option<fn(&T) -> T>,
}

impl<T> Typed<T> {
    pub(crate) fn new() -> Self {
        Typed {
            _type: PhantomData,
            by_value: None,
        }
    }
}

impl<'l, T: Clone + Send + Sync + 'static, S> SubscribeBuilder<'l, Typed<T>, S> {
    /// Receive the event by value when it is emitted to several subscriptions: a clone
    /// of its own instead of a share of one `Arc` (on the actor strategy's typed fast
    /// path; elsewhere the event is shared as usual). A clone is often cheaper than an
    /// `Arc` freed on another thread for small `Clone` events; the last recipient still
    /// gets the original, so one emit clones at most once per other by-value recipient.
    pub fn by_value(mut self) -> Self {
        self.keys.by_value = Some(T::clone);
        self
    }
}

/// Builder state: subscribing to one name.
pub struct Named(String);

impl Named {
    pub(crate) fn new(name: &str) -> Self {
        Named(name.to_owned())
    }
}

/// Builder state: subscribing to several keys, or to `Any`.
pub struct Dynamic(Vec<EventKey>);

impl Dynamic {
    pub(crate) fn new(keys: Vec<EventKey>) -> Self {
        Dynamic(keys)
    }
}

/// Builder state: no explicit success callback (the linker's default applies).
#[derive(Debug)]
pub struct NoSuccess;

/// Builder state: an explicit success callback.
pub struct WithSuccess<C>(C);

/// A boxed success callback.
pub type SuccessCallback<V> = Box<dyn FnMut(V) + Send>;

/// Turns the builder's success state into the subscription's success callback.
pub trait IntoSuccess<V, M> {
    /// The callback to run on success, if any.
    fn into_success(self, linker: &Linker) -> Option<SuccessCallback<V>>;
}

impl<V: 'static> IntoSuccess<V, ()> for NoSuccess {
    fn into_success(self, linker: &Linker) -> Option<SuccessCallback<V>> {
        let default = linker.inner.config.default_success.clone()?;
        Some(Box::new(move |value: V| default(&value)))
    }
}

impl<V: 'static, M, C: OnSuccess<V, M>> IntoSuccess<V, M> for WithSuccess<C> {
    fn into_success(self, _linker: &Linker) -> Option<SuccessCallback<V>> {
        let mut callback = self.0;
        Some(Box::new(move |value| callback.on_success(value)))
    }
}

/// Configures one subscription; [`call`](SubscribeBuilder::call) registers it.
///
/// Made by [`Linker::on`], [`Linker::on_named`], [`Linker::on_any`] and
/// [`Linker::subscribe`].
#[must_use = "nothing is subscribed until `call`"]
pub struct SubscribeBuilder<'l, K, S = NoSuccess> {
    linker: &'l Linker,
    keys: K,
    once: bool,
    capacity: Option<usize>,
    policy: Option<Policy>,
    on_failure: Option<Box<dyn FnMut(Failure) + Send>>,
    placement: Placement,
    runtime: Option<Runtime>,
    on_panic: OnPanic,
    histograms: bool,
    success: S,
}

impl<K, S> fmt::Debug for SubscribeBuilder<'_, K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribeBuilder")
            .field("linker", &self.linker.name())
            .field("once", &self.once)
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<'l, K> SubscribeBuilder<'l, K, NoSuccess> {
    pub(crate) fn new(linker: &'l Linker, keys: K) -> Self {
        Self {
            linker,
            keys,
            once: false,
            capacity: None,
            policy: None,
            on_failure: None,
            placement: Placement::Default,
            runtime: None,
            on_panic: OnPanic::Continue,
            histograms: false,
            success: NoSuccess,
        }
    }
}

impl<'l, K, S> SubscribeBuilder<'l, K, S> {
    /// Run at most once: the first emission that reaches the subscription claims it and
    /// removes it from every key.
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }

    /// Keep HDR histograms of this subscription's queueing latency (emit → handler start)
    /// and service time, read with [`Subscription::latency`](crate::Subscription::latency).
    /// Costs about 60 KB once used, a clock read at emit and two per invocation (the emit
    /// instant is stored with each message): off by default.
    pub fn histograms(mut self) -> Self {
        self.histograms = true;
        self
    }

    /// The success callback: `|| …` for handlers that return `()` or `Result<(), E>`,
    /// `|value: V| …` for handlers that return `Result<V, E>`.
    pub fn on_success<C>(self, callback: C) -> SubscribeBuilder<'l, K, WithSuccess<C>> {
        SubscribeBuilder {
            linker: self.linker,
            keys: self.keys,
            once: self.once,
            capacity: self.capacity,
            policy: self.policy,
            on_failure: self.on_failure,
            placement: self.placement,
            runtime: self.runtime,
            on_panic: self.on_panic,
            histograms: self.histograms,
            success: WithSuccess(callback),
        }
    }

    /// The failure callback: receives the handler's `Err`, its panic, or a payload
    /// mismatch, as a [`Failure`].
    pub fn on_failure(mut self, callback: impl FnMut(Failure) + Send + 'static) -> Self {
        self.on_failure = Some(Box::new(callback));
        self
    }

    /// The mailbox bound: events pending for the subscription (queued, plus those of the
    /// batch being run); at least 1.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// What an emit does when the mailbox is full.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// What happens to the subscription when its handler panics (default: it continues).
    pub fn on_panic(mut self, on_panic: OnPanic) -> Self {
        self.on_panic = on_panic;
        self
    }

    /// Where the handler runs (default: where the emitter's strategy says).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The runtime that owns a dedicated subscription's thread (default: the linker's,
    /// else [`Runtime::default`]).
    pub fn runtime(mut self, runtime: &Runtime) -> Self {
        self.runtime = Some(runtime.clone());
        self
    }

    fn failure_callback(&mut self) -> Option<FailureCallback> {
        match self.on_failure.take() {
            Some(callback) => Some(FailureCallback::Own(callback)),
            None => self
                .linker
                .inner
                .config
                .default_failure
                .clone()
                .map(FailureCallback::Default),
        }
    }

    fn common(&self, wants_meta: bool) -> Result<SubCommon, SubscribeError> {
        let wants_meta = wants_meta || self.histograms;
        let capacity = self
            .capacity
            .unwrap_or(self.linker.inner.config.default_capacity);
        if capacity == 0 {
            return Err(SubscribeError::ZeroCapacity);
        }
        let inner = &self.linker.inner;
        let runtime = || {
            let runtime = match (&self.runtime, &inner.config.runtime) {
                (Some(runtime), _) | (None, Some(runtime)) => runtime.clone(),
                (None, None) => Runtime::default(),
            };
            if runtime.is_shutdown() {
                return Err(SubscribeError::Spawn("the runtime is shut down".into()));
            }
            Ok(runtime)
        };
        let (home, cpu) = match self.placement {
            Placement::Default => (None, None),
            Placement::Dedicated(spin) => (
                Some(Dedicated::new(runtime()?.shared().clone(), spin)),
                None,
            ),
            Placement::CpuBound => (None, Some(runtime()?.shared().clone())),
        };
        Ok(SubCommon {
            id: inner.next_id(),
            once: self.once,
            state: AtomicU8::new(crate::subscription::ACTIVE),
            pending: AtomicUsize::new(0),
            capacity,
            policy: self.policy.unwrap_or(inner.config.default_policy),
            wants_meta,
            on_panic: self.on_panic,
            linker: Arc::downgrade(inner),
            hooks: inner.hooks.clone(),
            stats: SubStats::default(),
            home,
            cpu,
            hist: self
                .histograms
                .then(|| Box::new(Mutex::new(crate::stats::LatencyStats::default()))),
            high_water: AtomicUsize::new(0),
            dead: Default::default(),
        })
    }
}

/// Starts the subscription's dedicated thread, if it has one, then registers it. The
/// thread starts first: an emit that finds the subscription registered always has a thread
/// to run it (a refused registration retires the subscription, and its thread exits).
fn register(
    linker: &Linker,
    sub: SubArc,
    keys: Vec<EventKey>,
) -> Result<Subscription, SubscribeError> {
    if let Some(home) = &sub.common.home {
        if let Err(error) = home.start(sub.clone()) {
            return Err(SubscribeError::Spawn(match error {
                SpawnError::TooManyThreads(max) => {
                    format!("the runtime's max_threads ({max}) is reached")
                }
                SpawnError::Io(error) => error,
            }));
        }
    }
    let retire = sub.clone();
    linker.inner.register(sub, keys).inspect_err(|_| {
        retire.common.retire();
    })
}

/// Validates and de-duplicates keys, keeping their first order.
fn check_keys(keys: Vec<EventKey>) -> Result<Vec<EventKey>, SubscribeError> {
    if keys.is_empty() {
        return Err(SubscribeError::NoKeys);
    }
    let mut unique: Vec<EventKey> = Vec::with_capacity(keys.len());
    for key in keys {
        if key.name() == Some("") {
            return Err(SubscribeError::EmptyName);
        }
        if !unique.contains(&key) {
            unique.push(key);
        }
    }
    Ok(unique)
}

impl<'l, T: Send + Sync + 'static, S> SubscribeBuilder<'l, Typed<T>, S> {
    /// Registers `handler` for every emission of `T`.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::TooManySubscribers`] when the key is at `max_subscribers`;
    /// [`SubscribeError::ZeroCapacity`] for a capacity of 0.
    pub fn call<H, R, M>(self, mut handler: H) -> Result<Subscription, SubscribeError>
    where
        H: FnMut(&T) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        self.typed(false, move |event: &T, _meta| handler(event))
    }

    /// Like [`call`](Self::call), with the handler also receiving the event's
    /// [`EventMeta`] (id, key, emit instant).
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    pub fn call_with_meta<H, R, M>(self, mut handler: H) -> Result<Subscription, SubscribeError>
    where
        H: FnMut(&T, &EventMeta) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        self.typed(true, move |event: &T, meta: Option<EventMeta>| {
            let meta = meta.expect("metadata is made for subscriptions that ask for it");
            handler(event, &meta)
        })
    }

    fn typed<H, R, M>(
        mut self,
        wants_meta: bool,
        mut handler: H,
    ) -> Result<Subscription, SubscribeError>
    where
        H: FnMut(&T, Option<EventMeta>) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        let common = self.common(wants_meta)?;
        let on_failure = self.failure_callback();
        let linker = self.linker;
        let mut success = self.success.into_success(linker);
        let run = move |event: TypedRef<'_, T>| {
            let meta = typed_meta::<T>(event.meta);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                handler(event.value, meta).into_result()
            }));
            workflow(outcome, &mut success)
        };
        let by_value = self.keys.by_value;
        let sub = new_typed::<T>(
            common,
            by_value,
            RunState {
                run: Box::new(run),
                on_failure,
            },
        );
        register(linker, sub, vec![EventKey::of::<T>()])
    }
}

impl<'l, S> SubscribeBuilder<'l, Named, S> {
    /// Registers `handler` for every emission under the name whose payload is a `P`;
    /// another payload type goes to the failure callback as
    /// [`Failure::PayloadMismatch`].
    ///
    /// # Errors
    ///
    /// [`SubscribeError::EmptyName`] for an empty name, and as for
    /// [`SubscribeBuilder::call`] on typed keys.
    pub fn call<P, H, R, M>(self, mut handler: H) -> Result<Subscription, SubscribeError>
    where
        P: 'static,
        H: FnMut(&P) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        self.named(false, move |payload: &P, _meta| handler(payload))
    }

    /// Like [`call`](Self::call), with the handler also receiving the [`EventMeta`].
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    pub fn call_with_meta<P, H, R, M>(self, mut handler: H) -> Result<Subscription, SubscribeError>
    where
        P: 'static,
        H: FnMut(&P, &EventMeta) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        self.named(true, move |payload: &P, meta: Option<EventMeta>| {
            let meta = meta.expect("metadata is made for subscriptions that ask for it");
            handler(payload, &meta)
        })
    }

    fn named<P, H, R, M>(
        mut self,
        wants_meta: bool,
        mut handler: H,
    ) -> Result<Subscription, SubscribeError>
    where
        P: 'static,
        H: FnMut(&P, Option<EventMeta>) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        let keys = check_keys(vec![EventKey::named(self.keys.0.as_str())])?;
        let common = self.common(wants_meta)?;
        let on_failure = self.failure_callback();
        let linker = self.linker;
        let mut success = self.success.into_success(linker);
        let run = move |envelope: EnvRef<'_>| {
            let Some(payload) = envelope.payload.downcast_ref::<P>() else {
                return Step::Failed(Failure::PayloadMismatch {
                    expected: std::any::type_name::<P>(),
                    found: envelope.type_name,
                });
            };
            let meta = envelope_meta(&envelope);
            let outcome = catch_unwind(AssertUnwindSafe(|| handler(payload, meta).into_result()));
            workflow(outcome, &mut success)
        };
        let sub = new_dynamic(
            common,
            RunState {
                run: Box::new(run),
                on_failure,
            },
        );
        register(linker, sub, keys)
    }
}

impl<'l, S> SubscribeBuilder<'l, Dynamic, S> {
    /// Registers `handler` for every emission of any of the keys; it runs once per
    /// emission and learns the key from the [`Event`].
    ///
    /// # Errors
    ///
    /// [`SubscribeError::NoKeys`], [`SubscribeError::EmptyName`], and as for
    /// [`SubscribeBuilder::call`] on typed keys.
    pub fn call<H, R, M>(self, mut handler: H) -> Result<Subscription, SubscribeError>
    where
        H: for<'a, 'e> FnMut(&'a Event<'e>) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        self.dynamic(false, move |event: &Event<'_>, _meta| handler(event))
    }

    /// Like [`call`](Self::call), with the handler also receiving the [`EventMeta`].
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    pub fn call_with_meta<H, R, M>(self, mut handler: H) -> Result<Subscription, SubscribeError>
    where
        H: for<'a, 'e> FnMut(&'a Event<'e>, &EventMeta) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        self.dynamic(true, move |event: &Event<'_>, meta: Option<EventMeta>| {
            let meta = meta.expect("metadata is made for subscriptions that ask for it");
            handler(event, &meta)
        })
    }

    fn dynamic<H, R, M>(
        mut self,
        wants_meta: bool,
        mut handler: H,
    ) -> Result<Subscription, SubscribeError>
    where
        H: for<'a, 'e> FnMut(&'a Event<'e>, Option<EventMeta>) -> R + Send + 'static,
        R: HandlerResult,
        S: IntoSuccess<R::Value, M>,
    {
        let keys = check_keys(std::mem::take(&mut self.keys.0))?;
        let common = self.common(wants_meta)?;
        let on_failure = self.failure_callback();
        let linker = self.linker;
        let mut success = self.success.into_success(linker);
        let run = move |envelope: EnvRef<'_>| {
            let event = Event {
                key: envelope.key,
                payload: envelope.payload,
                type_name: envelope.type_name,
            };
            let meta = envelope_meta(&envelope);
            let outcome = catch_unwind(AssertUnwindSafe(|| handler(&event, meta).into_result()));
            workflow(outcome, &mut success)
        };
        let sub = new_dynamic(
            common,
            RunState {
                run: Box::new(run),
                on_failure,
            },
        );
        register(linker, sub, keys)
    }
}

impl<T> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Typed<{}>", std::any::type_name::<T>())
    }
}

impl fmt::Debug for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Named({:?})", self.0)
    }
}

impl fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dynamic({:?})", self.0)
    }
}

impl<C> fmt::Debug for WithSuccess<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WithSuccess(..)")
    }
}
