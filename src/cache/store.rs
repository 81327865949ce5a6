//! The refresh of a cache with a [`TokenStore`](crate::store::TokenStore): read the shared
//! token, or take the store's lock and fetch it for everyone, and fail open when the store
//! does not answer. The per-request path never comes here (see the `store` module docs).

use std::sync::atomic::AtomicBool;

use super::*;
use crate::secret::Secret;
use crate::store::{value, SharedStore, StoreError};

/// The first wait of a replica that finds the lock taken; it doubles up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);

/// A cache's store: the settings, the full key of its token, and what the last operations
/// said.
pub(super) struct StoreHandle {
    shared: SharedStore,
    key: String,
    /// Whether the store is failing (set at the first error, logged once; cleared, and logged,
    /// at the next success).
    down: AtomicBool,
    /// The access token last invalidated (a resource server refused it) or replaced by
    /// [`TokenCache::refresh`]: never taken from the store again.
    rejected: Mutex<Option<Secret>>,
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
        *self.rejected.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.access_token().clone());
    }

    fn is_rejected(&self, token: &Token) -> bool {
        self.rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|rejected| rejected == token.access_token())
    }

    /// Runs one store operation under the timeout, and keeps track of outages.
    async fn run<T>(
        &self,
        what: &'static str,
        operation: crate::store::StoreFuture<'_, T>,
    ) -> Result<T, StoreError> {
        let timeout = self.shared.timeout;
        let result = match tokio::time::timeout(timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::timeout(timeout)),
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

    /// The stored token, `None` if there is none or it cannot be read (or was rejected).
    async fn load(&self) -> Result<Option<Token>, StoreError> {
        let Some(bytes) = self.run("get", self.shared.store.get(&self.key)).await? else {
            return Ok(None);
        };
        let Some(token) = value::decode(&self.shared, &self.key, bytes) else {
            tracing::debug!("the stored value cannot be read (format, or encryption key); counted as absent");
            return Ok(None);
        };
        Ok((!self.is_rejected(&token)).then_some(token))
    }

    /// Writes `token`, until it expires (or for good when it carries a refresh token, which
    /// outlives it).
    async fn save(&self, token: &Token, now: SystemTime) {
        let ttl = match token.expires_at() {
            _ if token.refresh_token().is_some() => None,
            None => None,
            Some(expires_at) => match expires_at.duration_since(now) {
                Ok(left) if !left.is_zero() => Some(left),
                _ => return,
            },
        };
        let Some(bytes) = value::encode(&self.shared, &self.key, token) else {
            tracing::warn!("the token could not be sealed for the store; not written");
            return;
        };
        let _ = self
            .run("set", self.shared.store.set(&self.key, &bytes, ttl))
            .await;
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
    async fn release(mut self) {
        self.released = true;
        if let Some(store) = &self.cache.inner.store {
            let _ = store
                .run("unlock", store.shared.store.unlock(&store.key, &self.owner))
                .await;
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
                    let _ = store
                        .run("unlock", store.shared.store.unlock(&store.key, &owner))
                        .await;
                }
            });
        }
    }
}

impl TokenCache {
    /// The token of a refresh when the cache has a store: the stored one if it is fresh, else
    /// one fetched by whichever replica holds the lock; on any store failure, one fetched on
    /// its own.
    pub(super) async fn fetch_through_store(&self, store: &StoreHandle) -> Result<Token, Error> {
        let source = &*self.inner.source;
        match self.read_shared(store).await {
            Ok(Some(token)) => return Ok(token),
            Ok(None) => {}
            Err(_) => return source.fetch_token().await,
        }
        let Ok(owner) = crate::secret::random_token(16) else {
            return source.fetch_token().await;
        };
        let lock_ttl = store.shared.lock_ttl;
        let give_up = tokio::time::Instant::now() + lock_ttl.saturating_mul(2);
        let mut poll = POLL_FIRST;
        loop {
            match store
                .run("lock", store.shared.store.try_lock(&store.key, &owner, lock_ttl))
                .await
            {
                Err(_) => return source.fetch_token().await,
                Ok(true) => break,
                Ok(false) => {}
            }
            // Another replica fetches: wait for its token.
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(POLL_MAX);
            match self.read_shared(store).await {
                Ok(Some(token)) => return Ok(token),
                Ok(None) => {}
                Err(_) => return source.fetch_token().await,
            }
            if tokio::time::Instant::now() >= give_up {
                tracing::warn!(
                    lock_ttl_ms = millis(lock_ttl),
                    "the token store's lock stayed taken without a new token; fetching without it"
                );
                return source.fetch_token().await;
            }
        }
        let held = Held {
            cache: self.clone(),
            owner,
            released: false,
        };
        // A replica may have written a token between the first read and the lock.
        let result = match self.read_shared(store).await {
            Ok(Some(token)) => Ok(token),
            Ok(None) | Err(_) => {
                let result = source.fetch_token().await;
                if let Ok(token) = &result {
                    store.save(token, self.inner.clock.now()).await;
                }
                result
            }
        };
        held.release().await;
        result
    }

    /// Writes the token the cache was built with (a fresh login's) to the store, unless the
    /// store holds one at least as new or another replica is refreshing (holds the lock).
    pub(super) async fn publish_initial(self) {
        let (Some(store), Some(entry)) = (&self.inner.store, self.inner.current.load_full()) else {
            return;
        };
        let Ok(owner) = crate::secret::random_token(16) else {
            return;
        };
        let lock = store
            .shared
            .store
            .try_lock(&store.key, &owner, store.shared.lock_ttl);
        if !matches!(store.run("lock", lock).await, Ok(true)) {
            return;
        }
        let held = Held {
            cache: self.clone(),
            owner,
            released: false,
        };
        let stored_is_newer = match store.load().await {
            Ok(Some(stored)) => stored.issued_at() >= entry.token.issued_at(),
            Ok(None) => false,
            Err(_) => true,
        };
        if !stored_is_newer {
            store.save(&entry.token, self.inner.clock.now()).await;
        }
        held.release().await;
    }

    /// The stored token if this cache may use it now: fresh (or valid, when the cache has no
    /// valid token), and not older than the one it has. A stored token newer than the cache's goes to the source first (its refresh token).
    async fn read_shared(&self, store: &StoreHandle) -> Result<Option<Token>, StoreError> {
        let Some(token) = store.load().await? else {
            return Ok(None);
        };
        let current = self.inner.current.load_full();
        let newer = current
            .as_ref()
            .is_none_or(|entry| token.issued_at() >= entry.token.issued_at());
        if !newer {
            return Ok(None);
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
