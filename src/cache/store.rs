//! The refresh of a cache with a [`TokenStore`](crate::store::TokenStore): read the shared
//! token, or take the store's lock and fetch it for everyone, and fail open when the store
//! does not answer. The per-request path never comes here (see the `store` module docs).

use std::sync::atomic::AtomicBool;

use futures_util::future::{select, Either};

use super::*;
use crate::store::{value, SharedStore, StoreError, StoreFuture};

/// The first wait of a replica that finds the lock taken; it doubles up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);
/// How many lock TTLs a replica waits for another's token before it fetches on its own (the
/// holder renews the lock while it fetches, so only a store that keeps a lock no one renews
/// makes it wait that long).
const WAIT_IN_TTLS: u32 = 6;

/// A cache's store: the settings, the full key of its token, and what the last operations
/// said.
pub(super) struct StoreHandle {
    shared: SharedStore,
    key: String,
    /// Whether the store is failing (set at the first error, logged once; cleared, and logged,
    /// at the next success).
    down: AtomicBool,
    /// The token last invalidated (a resource server refused it), replaced by
    /// [`TokenCache::refresh`] or lost with its grant: never taken from the store again, and
    /// no stored token older than it is either.
    rejected: Mutex<Option<Token>>,
}

impl StoreHandle {
    /// The handle for `source`'s tokens, `None` (logged) if no key is known.
    pub(super) fn new(shared: SharedStore, source: &dyn TokenSource) -> Option<Self> {
        let Some(key) = shared.key.clone().or_else(|| source.store_key()) else {
            tracing::warn!(
                "the token store is not used: the token source derives no store key; set one with SharedStore::key"
            );
            return None;
        };
        Some(StoreHandle {
            key: shared.full_key(&key),
            shared,
            down: AtomicBool::new(false),
            rejected: Mutex::new(None),
        })
    }

    pub(super) fn reject(&self, token: &Token) {
        *self.rejected.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
    }

    fn rejected(&self) -> Option<Token> {
        self.rejected.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs one store operation under the timeout, and keeps track of outages. A store that
    /// panics is a store that failed.
    async fn run<'a, T>(
        &'a self,
        what: &'static str,
        operation: impl FnOnce(&'a dyn crate::store::TokenStore) -> StoreFuture<'a, T>,
    ) -> Result<T, StoreError> {
        let timeout = self.shared.timeout;
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| operation(&*self.shared.store)));
        let result = match started {
            Err(_) => Err(StoreError::new("panicked")),
            Ok(operation) => {
                match tokio::time::timeout(timeout, AssertUnwindSafe(operation).catch_unwind()).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err(StoreError::new("panicked")),
                    Err(_) => Err(StoreError::timeout(timeout)),
                }
            }
        };
        match &result {
            Ok(_) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("the token store answers again; tokens are shared through it");
                }
            }
            Err(err) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        operation = what,
                        error = %err,
                        "the token store failed; fetching tokens without it until it answers again"
                    );
                } else {
                    tracing::debug!(operation = what, error = %err, "the token store failed again");
                }
            }
        }
        result
    }

    /// The stored token, `None` if there is none or it cannot be read.
    async fn load(&self) -> Result<Option<Token>, StoreError> {
        let Some(bytes) = self.run("get", |store| store.get(&self.key)).await? else {
            return Ok(None);
        };
        let token = value::decode(&self.shared, &self.key, bytes);
        if token.is_none() {
            tracing::debug!("the stored value cannot be read (format, or encryption key); counted as absent");
        }
        Ok(token)
    }

    /// Writes `token`, until it expires (or for good when it carries a refresh token, which
    /// outlives it).
    async fn save(&self, token: &Token, now: SystemTime) -> Result<(), StoreError> {
        let ttl = match token.expires_at() {
            _ if token.refresh_token().is_some() => None,
            None => None,
            Some(expires_at) => match expires_at.duration_since(now) {
                Ok(left) if !left.is_zero() => Some(left),
                _ => return Ok(()),
            },
        };
        let Some(bytes) = value::encode(&self.shared, &self.key, token) else {
            tracing::warn!("the token could not be sealed for the store; not written");
            return Ok(());
        };
        self.run("set", |store| store.set(&self.key, &bytes, ttl)).await
    }

    /// Writes `token` unless the store holds one at least as new (by when it was issued).
    async fn save_unless_newer(&self, token: &Token, now: SystemTime) -> Result<bool, StoreError> {
        if let Some(stored) = self.load().await? {
            if stored.issued_at() >= token.issued_at() {
                return Ok(false);
            }
        }
        self.save(token, now).await.map(|()| true)
    }

    async fn unlock(&self, owner: &str) {
        let _ = self.run("unlock", |store| store.unlock(&self.key, owner)).await;
    }

    async fn try_lock(&self, owner: &str) -> Result<bool, StoreError> {
        let ttl = self.shared.lock_ttl;
        self.run("lock", |store| store.try_lock(&self.key, owner, ttl))
            .await
    }

    /// Extends the lock every third of its TTL for as long as it is polled; ends when the
    /// lock is lost (or the store fails).
    async fn renew(&self, owner: &str) {
        let ttl = self.shared.lock_ttl;
        loop {
            tokio::time::sleep(ttl / 3).await;
            match self
                .run("extend", |store| store.extend(&self.key, owner, ttl))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("the token store's lock was lost during a token request");
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

/// Releases the lock when the refresh that holds it ends, even if it ends by being dropped
/// (its runtime shut down): then in a task of its own, if a runtime still takes one.
struct Held {
    cache: TokenCache,
    owner: String,
    released: bool,
}

impl Held {
    fn new(cache: &TokenCache, owner: String) -> Self {
        Held {
            cache: cache.clone(),
            owner,
            released: false,
        }
    }

    async fn release(mut self) {
        self.released = true;
        if let Some(store) = &self.cache.inner.store {
            store.unlock(&self.owner).await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, owner) = (self.cache.clone(), std::mem::take(&mut self.owner));
            runtime.spawn(async move {
                if let Some(store) = &cache.inner.store {
                    store.unlock(&owner).await;
                }
            });
        }
    }
}

impl TokenCache {
    /// Drops the current token (invalidated, or revoked with its grant), and rejects it.
    pub(super) fn drop_current(&self) {
        if let Some(old) = self.inner.current.swap(None) {
            self.reject(&old);
        }
    }

    /// `entry`'s token will not be taken from the store again, nor any token older than it.
    pub(super) fn reject(&self, entry: &Entry) {
        if let Some(store) = &self.inner.store {
            store.reject(&entry.token);
        }
    }

    /// The token of a refresh when the cache has a store: the stored one if it is fresh, else
    /// one fetched by whichever replica holds the lock; on any store failure, one fetched on
    /// its own (and written, if the store takes it, so that no one redeems the refresh token
    /// it replaced).
    pub(super) async fn fetch_through_store(&self, store: &StoreHandle) -> Result<Token, Error> {
        match self.read_shared(store).await {
            Ok(Some(token)) => return Ok(token),
            Ok(None) => {}
            Err(_) => return self.fetch_alone(store).await,
        }
        let Ok(owner) = crate::secret::random_token(16) else {
            return self.fetch_alone(store).await;
        };
        let lock_ttl = store.shared.lock_ttl;
        let give_up = tokio::time::Instant::now() + lock_ttl.saturating_mul(WAIT_IN_TTLS);
        let mut poll = POLL_FIRST;
        loop {
            match store.try_lock(&owner).await {
                Err(_) => {
                    // It may have taken the lock after all (a reply too late, a connection
                    // lost after the command): release it in the background, or it keeps the
                    // others waiting for its whole TTL.
                    drop(Held::new(self, owner));
                    return self.fetch_alone(store).await;
                }
                Ok(true) => break,
                Ok(false) => {}
            }
            // Another replica fetches: wait for its token.
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(POLL_MAX);
            match self.read_shared(store).await {
                Ok(Some(token)) => return Ok(token),
                Ok(None) => {}
                Err(_) => return self.fetch_alone(store).await,
            }
            if tokio::time::Instant::now() >= give_up {
                tracing::warn!(
                    waited_ms = millis(lock_ttl.saturating_mul(WAIT_IN_TTLS)),
                    "the token store's lock stayed taken without a new token; fetching without it"
                );
                return self.fetch_alone(store).await;
            }
        }
        let held = Held::new(self, owner);
        // A replica may have written a token between the first read and the lock.
        let result = match self.read_shared(store).await {
            Ok(Some(token)) => Ok(token),
            Ok(None) | Err(_) => {
                // The lock is renewed while the token request runs, however long it takes.
                let fetch = self.inner.source.fetch_token();
                let renew = Box::pin(store.renew(&held.owner));
                let result = match select(fetch, renew).await {
                    Either::Left((result, _)) => result,
                    Either::Right((_, fetch)) => fetch.await,
                };
                if let Ok(token) = &result {
                    let _ = store.save(token, self.inner.clock.now()).await;
                }
                result
            }
        };
        held.release().await;
        result
    }

    /// A token fetched without the store's lock (the store failed), then offered to the store
    /// in case it answers again: a refresh token rotated here must not be lost.
    async fn fetch_alone(&self, store: &StoreHandle) -> Result<Token, Error> {
        let result = self.inner.source.fetch_token().await;
        if let Ok(token) = &result {
            let _ = store.save_unless_newer(token, self.inner.clock.now()).await;
        }
        result
    }

    /// Writes the token the cache holds (a fresh login given with `initial_token`) to the
    /// store, unless the store holds one at least as new or another replica is refreshing
    /// (holds the lock). `Ok(true)` if it was written.
    pub(super) async fn publish(&self) -> Result<bool, StoreError> {
        let (Some(store), Some(entry)) = (&self.inner.store, self.inner.current.load_full()) else {
            return Ok(false);
        };
        let owner = crate::secret::random_token(16).map_err(|err| StoreError::new(err.to_string()))?;
        if !store.try_lock(&owner).await? {
            return Ok(false);
        }
        let held = Held::new(self, owner);
        let written = store
            .save_unless_newer(&entry.token, self.inner.clock.now())
            .await;
        held.release().await;
        written
    }

    /// The stored token if this cache may use it now: not one it rejected, newer than the one
    /// it has (or had, before it rejected it), and fresh (or valid, when the cache has no valid
    /// token). A newer stored token goes to the source first (its refresh token).
    async fn read_shared(&self, store: &StoreHandle) -> Result<Option<Token>, StoreError> {
        let Some(token) = store.load().await? else {
            return Ok(None);
        };
        let current = self.inner.current.load_full();
        let reference = current
            .as_ref()
            .map(|entry| entry.token.clone())
            .or_else(|| store.rejected());
        if let Some(reference) = &reference {
            // The same token (this cache's own, or the one it rejected), or an older one: not
            // news. Issue times come from the replicas' clocks, which are assumed in sync (NTP).
            if token.access_token() == reference.access_token() || token.issued_at() < reference.issued_at() {
                return Ok(None);
            }
        }
        self.inner.source.on_stored_token(&token);
        let arrival = Reading::take(&*self.inner.clock);
        let usable = match self.deadlines_for(&token, arrival, None) {
            None => !token.is_expired_at(arrival.wall),
            Some(deadlines) => {
                let now = self.inner.clock.monotonic();
                // Fresh; or, for a cache with no valid token, stale but valid: it is served at
                // once, and the next request refreshes it (through the store) behind it.
                now < deadlines.stale_at
                    || (now < deadlines.valid_until && self.current_valid_until().is_none())
            }
        };
        Ok(usable.then_some(token))
    }
}
