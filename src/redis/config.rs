//! The bridge's configuration: a Redis URL plus stream, group and reader settings.

use std::fmt;
use std::time::Duration;

/// What the reader does with an entry whose event has no local subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NoSubscribers {
    /// Acknowledge it (the default): a local emit with no subscribers is `Ok` with 0
    /// delivered, and the bridge keeps that meaning. Counted in
    /// [`ReaderStats::no_subscribers`](super::ReaderStats::no_subscribers). Subscribe before
    /// starting the reader, or such entries are consumed unhandled.
    #[default]
    Ack,
    /// Move it to the dead-letter stream (reason `no local subscriber`) and acknowledge it.
    DeadLetter,
}

/// Why a [`RedisConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The `redis` crate refused the URL (the text is its message).
    Url(String),
    /// A query parameter that the bridge does not know.
    UnknownParameter(String),
    /// A query parameter whose value does not parse, or is out of range.
    BadValue {
        /// The parameter.
        parameter: String,
        /// Its value.
        value: String,
    },
    /// A stream, group or consumer name is empty.
    EmptyName(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Url(why) => write!(f, "bad Redis URL: {why}"),
            ConfigError::UnknownParameter(name) => write!(f, "unknown URL parameter `{name}`"),
            ConfigError::BadValue { parameter, value } => {
                write!(f, "bad value `{value}` for URL parameter `{parameter}`")
            }
            ConfigError::EmptyName(what) => write!(f, "the {what} name cannot be empty"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the bridge connects and how its reader behaves.
///
/// Built from a URL; every setting can also be given as a query parameter of that URL
/// (stripped before the URL goes to the `redis` crate), or with a builder method:
///
/// | parameter | method | default |
/// |---|---|---|
/// | `stream` | [`stream`](Self::stream) | `ventus` |
/// | `group` | [`group`](Self::group) | `ventus` |
/// | `consumer` | [`consumer`](Self::consumer) | `ventus-<pid>-<random>` |
/// | `batch` | [`batch`](Self::batch) | 64 |
/// | `block_ms` | [`block`](Self::block) | 1000 |
/// | `claim_idle_ms` | [`claim_idle`](Self::claim_idle) | 30000 |
/// | `max_attempts` | [`max_attempts`](Self::max_attempts) | 5 |
/// | `retry_delay_ms` | [`retry_delay`](Self::retry_delay) | 1000 |
/// | `dead_letter` | [`dead_letter_stream`](Self::dead_letter_stream) | `<stream>:dead` |
/// | `start` | [`start_id`](Self::start_id) | `0` |
/// | `trim_every_ms` | [`trim_every`](Self::trim_every) | off |
///
/// Values are taken literally (no percent-decoding).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ventus::redis::RedisConfig;
///
/// let config = RedisConfig::from_url("redis://127.0.0.1:6379/0?stream=orders&batch=16")
///     .unwrap()
///     .group("billing")
///     .block(Duration::from_millis(200));
/// assert_eq!(config.stream_name(), "orders");
/// assert_eq!(config.group_name(), "billing");
/// assert_eq!(config.batch_size(), 16);
/// assert_eq!(config.dead_letter_stream_name(), "orders:dead");
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    pub(crate) client: ::redis::Client,
    pub(crate) url: String,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) consumer: String,
    pub(crate) batch: usize,
    pub(crate) block: Duration,
    pub(crate) claim_idle: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) dead_letter: Option<String>,
    pub(crate) start_id: String,
    pub(crate) trim_every: Option<Duration>,
    pub(crate) no_subscribers: NoSubscribers,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff_max: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: show host and database only.
        let info = self.client.get_connection_info();
        f.debug_struct("RedisConfig")
            .field("addr", &info.addr().to_string())
            .field("db", &info.redis_settings().db())
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("batch", &self.batch)
            .field("block", &self.block)
            .field("claim_idle", &self.claim_idle)
            .field("max_attempts", &self.max_attempts)
            .field("retry_delay", &self.retry_delay)
            .field("dead_letter", &self.dead_letter_stream_name())
            .field("start_id", &self.start_id)
            .field("trim_every", &self.trim_every)
            .field("no_subscribers", &self.no_subscribers)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// A configuration for the server at `url` (`redis://[user:password@]host:port/db`,
    /// optionally followed by the query parameters in the table above). Does not connect.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the URL or a parameter is refused.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let client = ::redis::Client::open(base).map_err(|e| ConfigError::Url(e.to_string()))?;
        let mut config = Self {
            client,
            url: base.to_owned(),
            stream: "ventus".to_owned(),
            group: "ventus".to_owned(),
            consumer: default_consumer(),
            batch: 64,
            block: Duration::from_millis(1000),
            claim_idle: Duration::from_secs(30),
            max_attempts: 5,
            retry_delay: Duration::from_secs(1),
            dead_letter: None,
            start_id: "0".to_owned(),
            trim_every: None,
            no_subscribers: NoSubscribers::Ack,
            connect_timeout: Duration::from_secs(2),
            backoff_max: Duration::from_secs(2),
        };
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = || ConfigError::BadValue {
                parameter: key.to_owned(),
                value: value.to_owned(),
            };
            let millis = || {
                value
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| bad())
            };
            let name = |what: &'static str| {
                if value.is_empty() {
                    Err(ConfigError::EmptyName(what))
                } else {
                    Ok(value.to_owned())
                }
            };
            match key {
                "stream" => config.stream = name("stream")?,
                "group" => config.group = name("group")?,
                "consumer" => config.consumer = name("consumer")?,
                "dead_letter" => config.dead_letter = Some(name("dead-letter stream")?),
                "start" => config.start_id = name("start id")?,
                "batch" => match value.parse::<usize>() {
                    Ok(n) if n > 0 => config.batch = n,
                    _ => return Err(bad()),
                },
                "max_attempts" => match value.parse::<u32>() {
                    Ok(n) if n > 0 => config.max_attempts = n,
                    _ => return Err(bad()),
                },
                "block_ms" => config.block = millis()?,
                "claim_idle_ms" => config.claim_idle = millis()?,
                "retry_delay_ms" => config.retry_delay = millis()?,
                "trim_every_ms" => config.trim_every = Some(millis()?),
                other => return Err(ConfigError::UnknownParameter(other.to_owned())),
            }
        }
        Ok(config)
    }

    /// The stream events are appended to and read from.
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = non_empty(name.into(), "ventus");
        self
    }

    /// The consumer group the reader joins (created with `MKSTREAM` when missing).
    pub fn group(mut self, name: impl Into<String>) -> Self {
        self.group = non_empty(name.into(), "ventus");
        self
    }

    /// This reader's consumer name inside the group. Keep it stable across restarts of the
    /// same process to pick up its own pending entries at once; a new name leaves them to
    /// be claimed after [`claim_idle`](Self::claim_idle).
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.consumer = if name.is_empty() {
            default_consumer()
        } else {
            name
        };
        self
    }

    /// How many entries one `XREADGROUP`/`XAUTOCLAIM` asks for (at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How long one `XREADGROUP … BLOCK` waits for new entries; it also bounds how long
    /// [`Reader::stop`](super::Reader::stop) waits. Capped at one hour.
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.min(Duration::from_secs(3600));
        self
    }

    /// How long an entry stays pending on a consumer before another one claims it with
    /// `XAUTOCLAIM` (Redis ≥ 6.2). It must exceed the longest handling time of one batch,
    /// or live consumers' entries are claimed (and handled twice).
    pub fn claim_idle(mut self, idle: Duration) -> Self {
        self.claim_idle = idle.min(Duration::from_secs(365 * 24 * 3600));
        self
    }

    /// How many deliveries an entry gets before it goes to the dead-letter stream (at
    /// least 1). A delivery is counted by Redis (`XPENDING`'s delivery count), so retries
    /// on other consumers count too.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// How long the reader waits before it retries its own failed entries.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay.min(Duration::from_secs(3600));
        self
    }

    /// The stream that receives dead entries (default: `<stream>:dead`).
    pub fn dead_letter_stream(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.dead_letter = (!name.is_empty()).then_some(name);
        self
    }

    /// Where a newly created group starts: `0` (the default: every entry already in the
    /// stream, so events emitted before the first reader started are not lost) or `$`
    /// (only entries added from now on).
    pub fn start_id(mut self, id: impl Into<String>) -> Self {
        self.start_id = non_empty(id.into(), "0");
        self
    }

    /// Opt-in trimming by the reader, every `every`: `XTRIM MINID` below the oldest entry
    /// that any group still needs (see [`trim_below_pending`](super::trim_below_pending)).
    /// `None` (the default) never trims.
    pub fn trim_every(mut self, every: Option<Duration>) -> Self {
        self.trim_every = every.map(|d| d.max(Duration::from_millis(1)));
        self
    }

    /// What the reader does with entries that no local subscription takes.
    pub fn no_subscribers(mut self, policy: NoSubscribers) -> Self {
        self.no_subscribers = policy;
        self
    }

    /// How long one connection attempt may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.clamp(Duration::from_millis(1), Duration::from_secs(3600));
        self
    }

    /// The longest wait between reconnection attempts (backoff doubles from 50 ms up to
    /// this; default 2 s).
    pub fn backoff_max(mut self, max: Duration) -> Self {
        self.backoff_max = max.clamp(Duration::from_millis(1), Duration::from_secs(3600));
        self
    }

    /// The URL without the bridge's query parameters.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The stream name.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The group name.
    pub fn group_name(&self) -> &str {
        &self.group
    }

    /// The consumer name.
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The dead-letter stream's name.
    pub fn dead_letter_stream_name(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}:dead", self.stream))
    }

    /// A new connection with the configured timeouts (reads wait up to the block time plus
    /// two seconds).
    pub(crate) fn connect(&self) -> ::redis::RedisResult<::redis::Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.block + Duration::from_secs(2)))?;
        conn.set_write_timeout(Some(Duration::from_secs(2)))?;
        Ok(conn)
    }
}

fn non_empty(name: String, default: &str) -> String {
    if name.is_empty() {
        default.to_owned()
    } else {
        name
    }
}

fn default_consumer() -> String {
    format!("ventus-{}-{:08x}", std::process::id(), nonce() as u32)
}

/// A random 64-bit number (std's per-process hash keys, mixed with the time).
pub(crate) fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}
