//! [`MemoryStore`]: a store in this process's memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::{StoreFuture, TokenStore};

/// A [`TokenStore`] in memory: shared by the caches of one process that hold clones of it
/// (several clients, layers or routers needing the same token), and by tests. It is what a
/// cache has without a store, made shareable: nothing survives the process.
///
/// Clones share the same map. Expired values and locks are dropped when next touched.
///
/// ```
/// use tower_oauth2::store::{MemoryStore, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
/// let store = MemoryStore::new();
/// store.clone().set("k", b"v", None).await?;
/// assert_eq!(store.get("k").await?, Some(b"v".to_vec()));
/// assert_eq!(store.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Maps>>,
}

#[derive(Default)]
struct Maps {
    /// Values are tokens: wiped when replaced or dropped.
    values: HashMap<String, (Zeroizing<Vec<u8>>, Option<Instant>)>,
    locks: HashMap<String, (String, Instant)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many values it holds (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.maps().values.len()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn maps(&self) -> MutexGuard<'_, Maps> {
        // Nothing panics while holding it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TokenStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let mut maps = self.maps();
        let now = Instant::now();
        let value = match maps.values.get(key) {
            Some((_, Some(until))) if *until <= now => {
                maps.values.remove(key);
                None
            }
            Some((value, _)) => Some(value.to_vec()),
            None => None,
        };
        Box::pin(std::future::ready(Ok(value)))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        let until = ttl.and_then(|ttl| Instant::now().checked_add(ttl));
        let value = Zeroizing::new(value.to_vec());
        self.maps().values.insert(key.to_owned(), (value, until));
        Box::pin(std::future::ready(Ok(())))
    }

    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        let mut maps = self.maps();
        let now = Instant::now();
        let taken = match maps.locks.get(key) {
            Some((_, until)) if *until > now => false,
            _ => {
                let until = now.checked_add(ttl).unwrap_or(now + Duration::from_secs(3600));
                maps.locks.insert(key.to_owned(), (owner.to_owned(), until));
                true
            }
        };
        Box::pin(std::future::ready(Ok(taken)))
    }

    fn extend<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        let mut maps = self.maps();
        let now = Instant::now();
        let extended = match maps.locks.get_mut(key) {
            Some((holder, until)) if holder == owner && *until > now => {
                *until = now.checked_add(ttl).unwrap_or(*until);
                true
            }
            _ => false,
        };
        Box::pin(std::future::ready(Ok(extended)))
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        let mut maps = self.maps();
        if maps.locks.get(key).is_some_and(|(holder, _)| holder == owner) {
            maps.locks.remove(key);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The values are tokens: only how many.
        f.debug_struct("MemoryStore")
            .field("values", &self.len())
            .finish()
    }
}
