//! Token stores: one token shared by every replica of a service (Redis), or kept across the
//! restarts of a CLI (a file), with a distributed single flight.
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth2::store::{MemoryStore, SharedStore};
//! use tower_oauth2::{ClientAuth, ClientCredentials, TokenCache, TokenEndpoint};
//!
//! # fn main() -> Result<(), tower_oauth2::Error> {
//! // Two caches (two replicas of a service would each have one) over one store.
//! let store = MemoryStore::new();
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::client_secret_basic("svc", "secret"))?;
//! let replica = |store: &MemoryStore| {
//!     TokenCache::builder(ClientCredentials::new(endpoint.clone()).scope("api"))
//!         .store(SharedStore::new(store.clone()).timeout(Duration::from_millis(100)))
//!         .build()
//! };
//! let (a, b) = (replica(&store), replica(&store));
//! // Each makes at most one token request per lifetime between them: whichever needs a token
//! // first fetches it and writes it to the store; the other reads it from there.
//! # let _ = (a, b); Ok(()) }
//! ```
//!
//! # What the cache does with a store
//!
//! The store is consulted **only when the cache needs a token** (there is none yet, or it is
//! stale, or it expired), inside the cache's own single-flight refresh. A request with a fresh
//! token never touches it: the per-request path stays one lock-free load of the local copy.
//! When the cache needs a token, the refresh:
//!
//! 1. reads the store: a token there that is still fresh (another replica just fetched it) is
//!    used, without a token request;
//! 2. otherwise takes the store's lock for this token ([`TokenStore::try_lock`], with a TTL
//!    and a random owner value), reads the store again (a replica may have written a token
//!    between the read and the lock), fetches a token from the source (renewing the lock
//!    every third of its TTL while the request runs, [`TokenStore::extend`]), writes it with
//!    an expiry that matches the token's, and releases the lock;
//! 3. if another replica holds the lock, polls the store (first after 20 ms, then less and less
//!    often, at most every 250 ms) until that replica's token is there, and takes the lock
//!    over if it is released (or its TTL runs out: the replica died) without one. A replica
//!    waits at most six lock TTLs (a minute by default) before it fetches on its own.
//!
//! # Failing open
//!
//! The store never fails a request. Every store operation has a short timeout (100 ms unless
//! [`SharedStore::timeout`] says otherwise); when the store errs, times out or holds a value
//! that cannot be read, the cache fetches its token on its own, exactly as without a store.
//! Each cache logs a warning when the store stops answering and a line when it answers again,
//! not one per refresh. A store that panics counts as failed. A token fetched while the store
//! failed is offered to it afterwards (unless it holds a newer one), so that a refresh token
//! rotated meanwhile is not lost. A value that cannot be read or opened (another format,
//! another encryption key, tampered with) counts as absent: the next token written replaces
//! it.
//!
//! A stored token is taken only if it is newer than the cache's own (by the time it was
//! issued: the replicas' clocks are assumed in sync, as NTP keeps them) and is not one the
//! cache rejected (refused by a resource server, replaced by
//! [`TokenCache::refresh`](crate::TokenCache::refresh), or lost with its grant).
//!
//! A stored value keeps the access token, when it was issued and expires (to the millisecond),
//! the refresh token and the scope; not the ID token or a response's extra fields, which a
//! replica that reads the token does not get.
//!
//! # Keys
//!
//! A token is stored under a key derived from what identifies it: the token endpoint, the
//! client id, the grant and its scope, audience and resources ([`StoreKey`]), hashed (SHA-256)
//! and prefixed ([`SharedStore::prefix`], `tower-oauth2:` by default). Secrets are never part
//! of a key. [`ClientCredentials`](crate::ClientCredentials), [`DeviceCode`](crate::DeviceCode)
//! (a CLI's one user) and `JwtBearer` with a signing key derive their key
//! ([`TokenSource::store_key`](crate::TokenSource::store_key)). A
//! [`RefreshToken`](crate::RefreshToken) is one user's grant and derives none, so that two
//! users of one client can never share a token: give its cache a key naming the user with
//! [`SharedStore::key`], as for any other source.
//!
//! # Rotated refresh tokens
//!
//! The stored value holds the refresh token with the access token. A cache that takes a token
//! from the store hands it to its source first
//! ([`TokenSource::on_stored_token`](crate::TokenSource::on_stored_token)), so a
//! [`RefreshToken`](crate::RefreshToken) source redeems the refresh token the last replica (or
//! the last run of a CLI) received. A source adopts only a refresh token it never held, so a
//! stored one it already redeemed (or that the server refused) is never redeemed again. A
//! value with a refresh token is kept after its access token expires; one without is dropped
//! when it does. A login that happened outside the cache (given to it with
//! [`initial_token`](crate::TokenCacheBuilder::initial_token)) is written to the store by
//! [`TokenCache::save_to_store`](crate::TokenCache::save_to_store).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

mod file;
mod memory;
pub(crate) mod value;

pub use self::file::FileStore;
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT};

/// The future a [`TokenStore`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where tokens are shared: a key-value store with a lock per key.
///
/// The cache calls it only from its refresh (see the [module docs](self)); each call is
/// bounded by [`SharedStore::timeout`], and an error makes the cache fetch on its own.
/// Values are opaque bytes (the cache writes and reads the format, and seals it when
/// encryption is on); a store only keeps them.
///
/// The crate has [`MemoryStore`] (one process), [`FileStore`] (a CLI's restarts, two processes
/// on one machine) and `RedisStore` (feature `redis`: replicas). Implement it for any other
/// engine; the lock needs a compare-and-delete (the owner value) and an expiry.
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::store::{MemoryStore, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
/// let store = MemoryStore::new();
/// store.set("k", b"value", Some(Duration::from_secs(60))).await?;
/// assert_eq!(store.get("k").await?.as_deref(), Some(&b"value"[..]));
/// assert!(store.try_lock("k", "me", Duration::from_secs(5)).await?);
/// assert!(!store.try_lock("k", "you", Duration::from_secs(5)).await?);
/// store.unlock("k", "you").await?; // not the owner: nothing happens
/// assert!(!store.try_lock("k", "you", Duration::from_secs(5)).await?);
/// store.unlock("k", "me").await?;
/// assert!(store.try_lock("k", "you", Duration::from_secs(5)).await?);
/// # Ok(()) }
/// ```
pub trait TokenStore: fmt::Debug + Send + Sync + 'static {
    /// The value stored under `key`, `None` if there is none (or it expired).
    ///
    /// ```
    /// use tower_oauth2::store::{MemoryStore, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
    /// assert_eq!(MemoryStore::new().get("nothing here").await?, None);
    /// # Ok(()) }
    /// ```
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Stores `value` under `key`, replacing any value there. With a `ttl`, the value is gone
    /// after that long; without, it is kept until replaced.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::{MemoryStore, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
    /// let store = MemoryStore::new();
    /// store.set("k", b"old", None).await?;
    /// store.set("k", b"new", Some(Duration::from_secs(60))).await?;
    /// assert_eq!(store.get("k").await?, Some(b"new".to_vec()));
    /// # Ok(()) }
    /// ```
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()>;

    /// Takes the lock for `key` (a name of its own: it does not touch the value) if no one
    /// holds it, recording `owner`, for at most `ttl`. `true` if this call took it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::{MemoryStore, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
    /// let store = MemoryStore::new();
    /// assert!(store.try_lock("k", "replica-1", Duration::from_secs(10)).await?);
    /// assert!(!store.try_lock("k", "replica-2", Duration::from_secs(10)).await?);
    /// assert_eq!(store.get("k").await?, None); // the value is untouched
    /// # Ok(()) }
    /// ```
    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;

    /// Extends the lock for `key` to `ttl` from now if `owner` still holds it; `true` if it
    /// did. The cache calls it every third of the TTL while its token request runs, so that a
    /// slow request never lets another replica take the lock and redeem the same refresh
    /// token.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::{MemoryStore, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
    /// let store = MemoryStore::new();
    /// assert!(store.try_lock("k", "replica-1", Duration::from_secs(10)).await?);
    /// assert!(store.extend("k", "replica-1", Duration::from_secs(10)).await?);
    /// assert!(!store.extend("k", "replica-2", Duration::from_secs(10)).await?);
    /// # Ok(()) }
    /// ```
    fn extend<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;

    /// Releases the lock for `key` if `owner` still holds it (its TTL may have run out, and
    /// another owner taken it: that owner's lock stays).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::{MemoryStore, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
    /// let store = MemoryStore::new();
    /// assert!(store.try_lock("k", "replica-1", Duration::from_secs(10)).await?);
    /// store.unlock("k", "replica-1").await?;
    /// assert!(store.try_lock("k", "replica-2", Duration::from_secs(10)).await?);
    /// # Ok(()) }
    /// ```
    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()>;
}

impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        (**self).get(key)
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        (**self).set(key, value, ttl)
    }

    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        (**self).try_lock(key, owner, ttl)
    }

    fn extend<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        (**self).extend(key, owner, ttl)
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        (**self).unlock(key, owner)
    }
}

/// A store operation that failed: the store is unreachable, too slow, or answered with
/// something it should not have. The cache then fetches on its own; the error is logged once
/// per outage.
///
/// Its text never holds a stored value.
///
/// ```
/// use tower_oauth2::store::StoreError;
///
/// let err = StoreError::new("connection refused");
/// assert_eq!(err.to_string(), "token store: connection refused");
/// assert!(!StoreError::timeout(std::time::Duration::from_millis(100)).to_string().is_empty());
/// ```
#[derive(Clone)]
pub struct StoreError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl StoreError {
    /// An error of the store (its client's error, a message).
    ///
    /// ```
    /// let err = tower_oauth2::store::StoreError::new(std::io::Error::other("disk full"));
    /// assert_eq!(err.to_string(), "token store: disk full");
    /// ```
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        StoreError(Arc::from(err.into()))
    }

    /// The store did not answer within `after`.
    ///
    /// ```
    /// let err = tower_oauth2::store::StoreError::timeout(std::time::Duration::from_millis(100));
    /// assert_eq!(err.to_string(), "token store: no answer within 100 ms");
    /// ```
    pub fn timeout(after: Duration) -> Self {
        StoreError::new(format!("no answer within {} ms", after.as_millis()))
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreError").field(&self.0.to_string()).finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// What identifies a token in a store: a SHA-256 hash of named parts (the token endpoint, the
/// client id, the grant, its scope, ...). Two caches with equal keys share their token.
///
/// Never put a secret in a key: the hash of a short secret can be guessed.
///
/// ```
/// use tower_oauth2::store::StoreKey;
///
/// let a = StoreKey::from_parts([("token_endpoint", "https://auth.example.com/token"), ("client_id", "svc")]);
/// let b = StoreKey::from_parts([("token_endpoint", "https://auth.example.com/token"), ("client_id", "svc2")]);
/// assert_ne!(a, b);
/// assert_eq!(a.as_str().len(), 32); // hex: 128 bits of the hash
/// assert_eq!(StoreKey::named("billing-api").as_str().len(), 32);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey(String);

impl StoreKey {
    /// The key of a token identified by `parts` (name, value), in order.
    ///
    /// ```
    /// use tower_oauth2::store::StoreKey;
    ///
    /// let key = StoreKey::from_parts([("token_endpoint", "https://auth.example.com/token"), ("scope", "api")]);
    /// assert_eq!(key, StoreKey::from_parts([("token_endpoint", "https://auth.example.com/token"), ("scope", "api")]));
    /// ```
    pub fn from_parts<'a>(parts: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut hash = Sha256::new();
        for (name, value) in parts {
            // Length-prefixed: ("ab", "c") and ("a", "bc") differ.
            for part in [name, value] {
                hash.update((part.len() as u64).to_be_bytes());
                hash.update(part.as_bytes());
            }
        }
        let digest = hash.finalize();
        StoreKey(digest[..16].iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// A key of your choosing (hashed like any other).
    ///
    /// ```
    /// use tower_oauth2::store::StoreKey;
    ///
    /// assert_ne!(StoreKey::named("billing"), StoreKey::named("reports"));
    /// ```
    pub fn named(name: &str) -> Self {
        Self::from_parts([("name", name)])
    }

    /// The key's text (hex), before the prefix.
    ///
    /// ```
    /// let key = tower_oauth2::store::StoreKey::named("api");
    /// assert!(key.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreKey").field(&self.0).finish()
    }
}

/// The default prefix of store keys.
pub const DEFAULT_PREFIX: &str = "tower-oauth2:";
/// The default timeout of one store operation.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(100);
/// The default TTL of the refresh lock: how long a replica that took it and died keeps the
/// others waiting.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(10);

/// A [`TokenStore`] and how one cache uses it: the key prefix, the timeout of each
/// operation, the lock's TTL, and encryption. Given to
/// [`TokenCacheBuilder::store`](crate::TokenCacheBuilder::store).
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::store::{MemoryStore, SharedStore, StoreKey};
///
/// let shared = SharedStore::new(MemoryStore::new())
///     .prefix("billing:")
///     .key(StoreKey::named("billing-api"))
///     .timeout(Duration::from_millis(50))
///     .lock_ttl(Duration::from_secs(5));
/// assert!(format!("{shared:?}").contains("billing:"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct SharedStore {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) prefix: String,
    pub(crate) key: Option<StoreKey>,
    pub(crate) timeout: Duration,
    pub(crate) lock_ttl: Duration,
    #[cfg(feature = "encryption")]
    pub(crate) encryption: Option<EncryptionKey>,
}

impl SharedStore {
    /// `store`, with the default prefix ([`DEFAULT_PREFIX`]), timeout
    /// ([`DEFAULT_STORE_TIMEOUT`]) and lock TTL ([`DEFAULT_LOCK_TTL`]), the key the source
    /// derives, and no encryption.
    ///
    /// ```
    /// use tower_oauth2::store::{MemoryStore, SharedStore};
    ///
    /// let shared = SharedStore::new(MemoryStore::new());
    /// assert!(format!("{shared:?}").contains("tower-oauth2:"));
    /// ```
    pub fn new(store: impl TokenStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A store shared with other code.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_oauth2::store::{MemoryStore, SharedStore, TokenStore};
    ///
    /// let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    /// let (a, b) = (SharedStore::from_arc(store.clone()), SharedStore::from_arc(store));
    /// # let _ = (a, b);
    /// ```
    pub fn from_arc(store: Arc<dyn TokenStore>) -> Self {
        SharedStore {
            store,
            prefix: DEFAULT_PREFIX.to_owned(),
            key: None,
            timeout: DEFAULT_STORE_TIMEOUT,
            lock_ttl: DEFAULT_LOCK_TTL,
            #[cfg(feature = "encryption")]
            encryption: None,
        }
    }

    /// The text put before every key (`tower-oauth2:` by default): an application's or an
    /// environment's namespace in a shared Redis.
    ///
    /// ```
    /// use tower_oauth2::store::{MemoryStore, SharedStore, StoreKey};
    ///
    /// let shared = SharedStore::new(MemoryStore::new()).prefix("staging:billing:");
    /// assert!(shared.full_key(&StoreKey::named("api")).starts_with("staging:billing:{"));
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key of this cache's token, instead of the one the source derives
    /// ([`TokenSource::store_key`](crate::TokenSource::store_key)). Needed for sources that
    /// derive none, and to keep apart tokens the source cannot tell apart (two users' refresh
    /// tokens for one client).
    ///
    /// ```
    /// use tower_oauth2::store::{MemoryStore, SharedStore, StoreKey};
    ///
    /// // One cache per user, each with its own stored token.
    /// let for_user = |user_id: &str| SharedStore::new(MemoryStore::new()).key(StoreKey::from_parts([("user", user_id)]));
    /// # let _ = for_user("42");
    /// ```
    pub fn key(mut self, key: StoreKey) -> Self {
        self.key = Some(key);
        self
    }

    /// How long one store operation may take before the cache gives up on it and fetches on
    /// its own (100 ms by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::{MemoryStore, SharedStore};
    ///
    /// let shared = SharedStore::new(MemoryStore::new()).timeout(Duration::from_millis(50));
    /// # let _ = shared;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The TTL of the refresh lock (10 s by default): how long the others wait when the
    /// replica holding it dies. A replica that fetches renews it every third of the TTL, so a
    /// slow token request (or a device login waiting for its user) keeps it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::store::{MemoryStore, SharedStore};
    ///
    /// let shared = SharedStore::new(MemoryStore::new()).lock_ttl(Duration::from_secs(3));
    /// # let _ = shared;
    /// ```
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Seals every value with `key` (ChaCha20-Poly1305) before it is written, so that a dump
    /// of the store holds no bearer token. A value that does not open with it counts as
    /// absent.
    ///
    /// ```
    /// use tower_oauth2::store::{EncryptionKey, MemoryStore, SharedStore};
    ///
    /// # fn main() -> Result<(), tower_oauth2::Error> {
    /// let key = EncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")?;
    /// let shared = SharedStore::new(MemoryStore::new()).encryption(key);
    /// # let _ = shared; Ok(()) }
    /// ```
    #[cfg(feature = "encryption")]
    pub fn encryption(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// The full key (prefix and hash) the value of `key` is stored under.
    ///
    /// ```
    /// use tower_oauth2::store::{MemoryStore, SharedStore, StoreKey};
    ///
    /// let key = StoreKey::named("api");
    /// let full = SharedStore::new(MemoryStore::new()).prefix("app:").full_key(&key);
    /// assert_eq!(full, format!("app:{{{}}}", key.as_str()));
    /// ```
    pub fn full_key(&self, key: &StoreKey) -> String {
        // The hash is a Redis Cluster hash tag: the value and its lock share one slot.
        format!("{}{{{}}}", self.prefix, key.as_str())
    }
}

impl<S: TokenStore> From<S> for SharedStore {
    fn from(store: S) -> Self {
        SharedStore::new(store)
    }
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("SharedStore");
        debug
            .field("store", &self.store)
            .field("prefix", &self.prefix)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("lock_ttl", &self.lock_ttl);
        #[cfg(feature = "encryption")]
        debug.field("encryption", &self.encryption.is_some());
        debug.finish()
    }
}

#[cfg(feature = "encryption")]
mod seal;
#[cfg(feature = "encryption")]
pub use self::seal::EncryptionKey;
