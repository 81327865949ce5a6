//! [`RedisStore`]: a [`TokenStore`] in Redis, shared by the replicas of a service (feature
//! `redis`).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::{BoxFuture, Shared};
use futures_util::FutureExt as _;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, RedisError, RedisFuture, Value};

use super::{StoreError, StoreFuture, TokenStore};

/// The default bound of one attempt to connect to Redis.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// The default bound of one Redis command (its reply included).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(100);

/// The compare-and-delete that releases a lock only for its owner.
const UNLOCK: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// The longest TTL sent (`PX` milliseconds): longer ones are cut to it (about 142,000 years;
/// Redis refuses an expiry that overflows its clock).
/// Extends a lock only for its owner (`PEXPIRE` if the value is the owner's).
const EXTEND: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const MAX_TTL_MS: u128 = 1 << 52;

/// A [`TokenStore`] in Redis: the replicas of a service share one token (and one refresh lock
/// per token). Clones share the connection. Requires the `redis` feature.
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::store::{RedisStore, SharedStore, TokenStore};
/// use tower_oauth2::{ClientAuth, ClientCredentials, TokenCache, TokenEndpoint};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Opening does not connect: Redis may still be starting, or down.
/// let store = RedisStore::open("redis://127.0.0.1:1/")?.connect_timeout(Duration::from_millis(200));
/// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::client_secret_basic("svc", "secret"))?;
/// let cache = TokenCache::builder(ClientCredentials::new(endpoint).scope("api"))
///     .store(SharedStore::new(store.clone()).timeout(Duration::from_millis(100)))
///     .build();
/// // Nothing listens on port 1: every operation fails at once (the cache would fetch its token
/// // on its own), and the next one tries to connect again.
/// assert!(store.get("tower-oauth2:{k}").await.is_err());
/// assert!(store.get("tower-oauth2:{k}").await.is_err());
/// # let _ = cache; Ok(()) }
/// ```
///
/// # Commands
///
/// | operation | command |
/// | --- | --- |
/// | [`get`](TokenStore::get) | `GET key` |
/// | [`set`](TokenStore::set) | `SET key value PX ttl` (no `PX` without a TTL) |
/// | [`try_lock`](TokenStore::try_lock) | `SET key:lock owner NX PX ttl` |
/// | [`unlock`](TokenStore::unlock) | a Lua compare-and-delete of `key:lock` (`EVALSHA`, `EVAL` when the script is not cached) |
///
/// Each command touches one key. A key that holds another type (another client wrote a list
/// there) reads as absent: the cache fetches a token and its `SET` replaces the list. Any
/// other reply of an unexpected type is a [`StoreError`], which the cache treats as it treats
/// an outage (it fetches its token on its own). No error holds a stored value.
///
/// # Connections and failures
///
/// [`RedisStore::open`] only parses the URL. The first operation connects, with the redis
/// crate's [`ConnectionManager`](redis::aio::ConnectionManager) (one multiplexed connection,
/// shared by clones of the store); every attempt to connect is bounded by
/// [`RedisStore::connect_timeout`] and every command by [`RedisStore::response_timeout`]. When
/// Redis cannot be reached, each operation fails with a [`StoreError`] within those bounds and
/// the next one tries again: nothing is cached about a failure. When Redis comes back, the
/// manager reconnects. The cache bounds each operation too ([`SharedStore::timeout`]).
///
/// The store needs a Tokio runtime (the connection's driver runs as a task); use it from the
/// runtime it first connected in.
///
/// # Sentinel, Cluster, TLS
///
/// [`RedisStore::from_connection`] takes any connection of the redis crate
/// ([`redis::aio::ConnectionLike`]) and uses it as it is (its own reconnection and timeouts;
/// this store bounds each operation by [`RedisStore::response_timeout`] on top):
///
/// - **Sentinel**: a connection to the current master (with the redis crate's `sentinel`
///   feature: `SentinelClient::async_get_client` gives the master's client, to put in a
///   `ConnectionManager`). Values and locks live on the master. A token or a lock that the old
///   master had not replicated is lost in a failover (at worst one more token request, as
///   without a store); a connection that still reaches the old master, now a replica, gets
///   `READONLY` errors: the caches fail open until the application gives them a store over
///   the new master.
/// - **Cluster**: a cluster connection (the `cluster-async` feature). Every command touches a
///   single key, and a value and its lock share one slot: the cache's keys end in a hash tag
///   (`tower-oauth2:{<hash>}`, see [`SharedStore::full_key`]) that the lock name
///   (`tower-oauth2:{<hash>}:lock`) keeps.
/// - **TLS** (`rediss://`): enable one of the redis crate's TLS features in the application
///   (`redis = { version = "1", features = ["tokio-rustls-comp"] }`); then
///   [`open`](RedisStore::open) takes `rediss://` URLs too.
///
/// [`SharedStore::timeout`]: super::SharedStore::timeout
/// [`SharedStore::full_key`]: super::SharedStore::full_key
#[derive(Clone)]
#[must_use]
pub struct RedisStore {
    backend: Arc<Backend>,
    connect_timeout: Duration,
    response_timeout: Duration,
    unlock: Arc<redis::Script>,
    extend: Arc<redis::Script>,
}

enum Backend {
    /// A client of `open`: a connection manager, made on first use.
    Url {
        client: redis::Client,
        state: Mutex<State>,
    },
    /// A connection of `from_connection`.
    Given(Box<dyn GivenConnection>),
}

/// The lazily made connection manager of [`Backend::Url`].
enum State {
    Idle,
    Connecting(Attempt),
    Ready(ConnectionManager),
}

/// One attempt to connect, shared by the operations waiting for it. It runs as a task of its
/// own: an operation that gives up (the cache's timeout) does not cancel it.
type Attempt = Shared<BoxFuture<'static, Result<ConnectionManager, StoreError>>>;

/// A cloneable connection behind a trait object (so that `RedisStore` has no type parameter).
trait GivenConnection: Send + Sync {
    fn connection(&self) -> Box<dyn ConnectionLike + Send>;
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> GivenConnection for C {
    fn connection(&self) -> Box<dyn ConnectionLike + Send> {
        Box::new(self.clone())
    }
}

/// A boxed connection as a sized `ConnectionLike` (the redis crate's commands take one).
struct Connection(Box<dyn ConnectionLike + Send>);

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.0.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `redis+unix:///path/to/socket`), with the default timeouts
    /// ([`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_RESPONSE_TIMEOUT`]).
    ///
    /// Only parses the URL: the first operation connects (Redis may be down when the
    /// service starts; the cache then fetches on its own until it is up).
    ///
    /// ```
    /// use tower_oauth2::store::RedisStore;
    ///
    /// assert!(RedisStore::open("redis://redis.internal:6379/2").is_ok());
    /// assert!(RedisStore::open("http://redis.internal").is_err());
    /// ```
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(|err| {
            // The redis crate's description only ("URL provided is not a redis URL", "can't
            // connect with TLS, ..."): never the URL, which may hold a password.
            let text = err.to_string();
            let description = text.split(" - ").next().unwrap_or("");
            StoreError::new(format!(
                "invalid Redis URL (redis://host:port/db or redis+unix:///path): {description}"
            ))
        })?;
        Ok(Self::with_backend(Backend::Url {
            client,
            state: Mutex::new(State::Idle),
        }))
    }

    /// A store over `connection`, a connection of the redis crate made by the application: a
    /// `ConnectionManager` to a Sentinel's master, a cluster connection, a TLS client's
    /// connection (see [`RedisStore`]). Each operation uses a clone of it, bounded by
    /// [`RedisStore::response_timeout`]; reconnecting is the connection's business.
    ///
    /// ```
    /// use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    /// use tower_oauth2::store::{RedisStore, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // The master a Sentinel names (`SentinelClient::async_get_client`), a TLS client, ...
    /// let client = redis::Client::open("redis://127.0.0.1:1/")?;
    /// let config = ConnectionManagerConfig::new().set_number_of_retries(0);
    /// let store = RedisStore::from_connection(ConnectionManager::new_lazy_with_config(client, config)?);
    /// // Nothing listens on port 1: the operation fails, and the cache would fetch on its own.
    /// assert!(store.get("tower-oauth2:{k}").await.is_err());
    /// # Ok(()) }
    /// ```
    pub fn from_connection<C>(connection: C) -> RedisStore
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        Self::with_backend(Backend::Given(Box::new(connection)))
    }

    fn with_backend(backend: Backend) -> RedisStore {
        RedisStore {
            backend: Arc::new(backend),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            unlock: Arc::new(redis::Script::new(UNLOCK)),
            extend: Arc::new(redis::Script::new(EXTEND)),
        }
    }

    /// How long one attempt to connect may take (250 ms by default). For a store made by
    /// [`open`](RedisStore::open): the store it returns connects on its own (clones made
    /// before share the old connection).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::RedisStore;
    ///
    /// let store = RedisStore::open("redis://127.0.0.1/")?.connect_timeout(Duration::from_secs(1));
    /// # Ok::<(), tower_oauth2::store::StoreError>(())
    /// ```
    pub fn connect_timeout(self, timeout: Duration) -> RedisStore {
        RedisStore {
            connect_timeout: timeout.max(Duration::from_millis(1)),
            ..self.fresh()
        }
    }

    /// How long one command may wait for its reply (100 ms by default). For a store made by
    /// [`open`](RedisStore::open): the store it returns connects on its own (clones made
    /// before share the old connection).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::RedisStore;
    ///
    /// let store = RedisStore::open("redis://127.0.0.1/")?.response_timeout(Duration::from_millis(50));
    /// # Ok::<(), tower_oauth2::store::StoreError>(())
    /// ```
    pub fn response_timeout(self, timeout: Duration) -> RedisStore {
        RedisStore {
            response_timeout: timeout.max(Duration::from_millis(1)),
            ..self.fresh()
        }
    }

    /// This store with a connection of its own (the timeouts of a connection manager are set
    /// when it is made).
    fn fresh(self) -> RedisStore {
        match &*self.backend {
            Backend::Url { client, .. } => RedisStore {
                backend: Arc::new(Backend::Url {
                    client: client.clone(),
                    state: Mutex::new(State::Idle),
                }),
                ..self
            },
            Backend::Given(_) => self,
        }
    }

    /// The most one operation waits: for a connection (when one must be made) and a reply.
    fn deadline(&self) -> Duration {
        match &*self.backend {
            Backend::Url { .. } => self.connect_timeout.saturating_add(self.response_timeout),
            Backend::Given(_) => self.response_timeout,
        }
    }

    /// Runs `op` on a connection, bounded by [`RedisStore::deadline`].
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let deadline = self.deadline();
        let work = async {
            let connection = self.connection().await?;
            match op(connection).await {
                // After an outage the manager answers the first command with the error of its
                // last reconnection attempt, then reconnects: once more, within the deadline.
                Err(err) if is_io_failure(&err) => op(self.connection().await?).await,
                other => other,
            }
        };
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or_else(|_| Err(StoreError::timeout(deadline)))
    }

    async fn connection(&self) -> Result<Connection, StoreError> {
        let (client, state) = match &*self.backend {
            Backend::Given(given) => return Ok(Connection(given.connection())),
            Backend::Url { client, state } => (client, state),
        };
        let attempt = {
            let mut state = lock(state);
            match &*state {
                State::Ready(manager) => return Ok(Connection(Box::new(manager.clone()))),
                State::Connecting(attempt) => attempt.clone(),
                State::Idle => {
                    let attempt = self.connect(client.clone());
                    *state = State::Connecting(attempt.clone());
                    attempt
                }
            }
        };
        let result = attempt.clone().await;
        let mut state = lock(state);
        // The first to see the outcome records it: the manager, or nothing (the next
        // operation tries again).
        if matches!(&*state, State::Connecting(current) if current.ptr_eq(&attempt)) {
            *state = match &result {
                Ok(manager) => State::Ready(manager.clone()),
                Err(_) => State::Idle,
            };
        }
        result.map(|manager| Connection(Box::new(manager)))
    }

    fn connect(&self, client: redis::Client) -> Attempt {
        // One try per attempt: the next operation makes the next one (no retry loop keeps an
        // operation waiting), after an outage too (the manager reconnects on the next command).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(0);
        let bound = self.connect_timeout.saturating_add(self.response_timeout);
        // Outside a tokio runtime there is nothing to connect on (the cache never calls a
        // store outside one): an error, never a panic.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let error = StoreError::new("the Redis store needs a tokio runtime");
            return futures_util::future::ready(Err(error)).boxed().shared();
        };
        let task = runtime.spawn(async move {
            match tokio::time::timeout(bound, ConnectionManager::new_with_config(client, config)).await {
                Ok(Ok(manager)) => Ok(manager),
                Ok(Err(err)) => Err(redis_error("connect", &err)),
                Err(_) => Err(StoreError::timeout(bound)),
            }
        });
        task.map(|joined| match joined {
            Ok(result) => result,
            Err(_) => Err(StoreError::new("Redis connection task ended before connecting")),
        })
        .boxed()
        .shared()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding it.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// `ttl` in whole milliseconds, rounded up (a TTL of 0 would be refused), at least 1.
fn ttl_millis(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).clamp(1, MAX_TTL_MS);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The name of the lock of `key`: `key` with `:lock`, so that a Cluster hash tag in `key`
/// puts both in one slot.
fn lock_key(key: &str) -> String {
    format!("{key}:lock")
}

/// A redis error as a store error, without anything that could hold a value: the server's
/// error code and message for an error reply, the kind of failure otherwise.
fn redis_error(command: &str, err: &RedisError) -> StoreError {
    if err.is_timeout() {
        return StoreError::new(format!("Redis {command}: no reply in time"));
    }
    if err.is_io_error() {
        // Connection refused, reset, ...: the operating system's text.
        return StoreError::new(IoFailure(format!("Redis {command}: {err}")));
    }
    match (err.code(), err.detail()) {
        (Some(code), detail) => {
            let detail: String = detail
                .unwrap_or("")
                .chars()
                .take(200)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            StoreError::new(format!("Redis {command}: {code} {detail}"))
        }
        (None, _) => StoreError::new(format!("Redis {command}: {}", err.category())),
    }
}

/// A reply the command does not give, by its type only (never its content).
/// A command that failed on the connection (refused, reset, ...), not in Redis.
#[derive(Debug)]
struct IoFailure(String);

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IoFailure {}

fn is_io_failure(err: &StoreError) -> bool {
    std::error::Error::source(err).is_some_and(|source| source.is::<IoFailure>())
}

fn unexpected(command: &str, reply: &Value) -> StoreError {
    let kind = match reply {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a status",
        Value::Okay => "OK",
        Value::Map(_) => "a map",
        Value::Set(_) => "a set",
        Value::Double(_) => "a double",
        Value::Boolean(_) => "a boolean",
        _ => "a reply of another type",
    };
    StoreError::new(format!("Redis {command}: unexpected reply ({kind})"))
}

async fn query(command: &str, cmd: &Cmd, connection: &mut Connection) -> Result<Value, StoreError> {
    cmd.query_async::<Value>(connection)
        .await
        .map_err(|err| redis_error(command, &err))
}

impl TokenStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.run(move |mut connection| async move {
            let cmd = redis::cmd("GET").arg(key).clone();
            match cmd.query_async::<Value>(&mut connection).await {
                Ok(Value::Nil) => Ok(None),
                Ok(Value::BulkString(value)) => Ok(Some(value)),
                Ok(other) => Err(unexpected("GET", &other)),
                // Another client put a list, a hash, ... at the key: no value of ours, and the
                // next SET replaces it.
                Err(err) if err.code() == Some("WRONGTYPE") => Ok(None),
                Err(err) => Err(redis_error("GET", &err)),
            }
        }))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        Box::pin(self.run(move |mut connection| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ttl_millis(ttl));
            }
            match query("SET", &cmd, &mut connection).await? {
                Value::Okay => Ok(()),
                other => Err(unexpected("SET", &other)),
            }
        }))
    }

    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(self.run(move |mut connection| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(lock_key(key))
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(ttl_millis(ttl));
            match query("SET NX", &cmd, &mut connection).await? {
                Value::Okay => Ok(true),
                Value::Nil => Ok(false),
                other => Err(unexpected("SET NX", &other)),
            }
        }))
    }

    fn extend<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(self.run(move |mut connection| async move {
            let reply = self
                .extend
                .key(lock_key(key))
                .arg(owner)
                .arg(ttl_millis(ttl))
                .invoke_async::<Value>(&mut connection)
                .await
                .map_err(|err| redis_error("EVALSHA", &err))?;
            match reply {
                Value::Int(1) => Ok(true),
                Value::Int(0) => Ok(false),
                other => Err(unexpected("EVALSHA", &other)),
            }
        }))
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.run(move |mut connection| async move {
            let reply = self
                .unlock
                .key(lock_key(key))
                .arg(owner)
                .invoke_async::<Value>(&mut connection)
                .await
                .map_err(|err| redis_error("EVALSHA", &err))?;
            match reply {
                // 1: released; 0: not the owner's (expired, or taken over) any more.
                Value::Int(0 | 1) => Ok(()),
                other => Err(unexpected("EVALSHA", &other)),
            }
        }))
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RedisStore");
        match &*self.backend {
            // The address only: the URL may hold a password.
            Backend::Url { client, .. } => {
                debug.field("addr", &client.get_connection_info().addr().to_string())
            }
            Backend::Given(_) => debug.field("connection", &"given"),
        };
        debug
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_rounded_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_millis(Duration::MAX), 1 << 52);
    }

    #[test]
    fn the_lock_keeps_the_hash_tag() {
        assert_eq!(lock_key("tower-oauth2:{abc}"), "tower-oauth2:{abc}:lock");
    }

    #[test]
    fn a_password_stays_out_of_errors_and_debug() {
        for url in [
            "redis://:hunter2@[::1",
            "rediss://:hunter2@redis.internal/",
            "http://:hunter2@redis/",
        ] {
            let err = RedisStore::open(url).unwrap_err();
            assert!(err.to_string().contains("invalid Redis URL"), "{err}");
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
        }
        // TLS needs one of the redis crate's TLS features (or `from_connection`).
        let err = RedisStore::open("rediss://redis.internal/").unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
        let store = RedisStore::open("redis://user:hunter2@redis.internal:6380/1").unwrap();
        let debug = format!("{store:?}");
        assert!(
            debug.contains("redis.internal:6380") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    #[test]
    fn unexpected_replies_name_their_type_not_their_content() {
        let err = unexpected(
            "GET",
            &Value::Array(vec![Value::BulkString(b"secret-token".to_vec())]),
        );
        assert!(
            err.to_string().contains("an array") && !err.to_string().contains("secret"),
            "{err}"
        );
    }
}
