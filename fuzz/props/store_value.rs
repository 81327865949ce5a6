//! Token store values: the bytes a cache reads back from a `TokenStore` (Redis, a file), which
//! anyone with access to the store may have written.
//!
//! Input: an optional first line `@sealed` (the cache has an encryption key, so the bytes are
//! taken as a sealed value), then the stored bytes, put in a `MemoryStore` under the cache's
//! key. The cache's source always succeeds with `fetched-Secret-token`.
//!
//! Properties:
//! - nothing panics, and `valid_token` succeeds;
//! - the token served is the fetched one after exactly one fetch, or the stored one after
//!   none; a stored one is served only from a JSON object with `"v":1` whose `access_token` is
//!   that text (plain values), and never from bytes a fuzzer wrote without the key (sealed);
//! - after a fetch, the store holds the new token: a second cache reads it without a fetch;
//! - the cache's `Debug` shows no access token (of 8 characters or more).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tower_oauth2::store::{EncryptionKey, MemoryStore, SharedStore, StoreKey, TokenStore};
use tower_oauth2::{source_fn, Token, TokenCache};

const FETCHED: &str = "fetched-Secret-token";

pub fn check(data: &[u8]) -> Result<(), String> {
    let (sealed, bytes) = match data.strip_prefix(b"@sealed\n") {
        Some(rest) => (true, rest),
        None => (false, data),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|err| err.to_string())?;
    runtime.block_on(run(sealed, bytes))
}

async fn run(sealed: bool, bytes: &[u8]) -> Result<(), String> {
    let store = MemoryStore::new();
    let shared = || {
        let shared = SharedStore::new(store.clone()).key(StoreKey::named("fuzz"));
        if sealed {
            shared.encryption(EncryptionKey::from_bytes([7; 32]))
        } else {
            shared
        }
    };
    let key = shared().full_key(&StoreKey::named("fuzz"));
    store
        .set(&key, bytes, None)
        .await
        .map_err(|err| err.to_string())?;
    let fetches = Arc::new(AtomicUsize::new(0));
    let cache = |fetches: Arc<AtomicUsize>| {
        let source = source_fn(move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            async {
                Ok(Token::bearer(FETCHED).with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
            }
        });
        TokenCache::builder(source).store(shared()).build()
    };
    let first = cache(fetches.clone());
    let served = first
        .valid_token()
        .await
        .map_err(|err| format!("valid_token failed: {err}"))?;
    let served = served.access_token().expose().to_owned();
    let fetched = fetches.load(Ordering::SeqCst);
    match (served == FETCHED, fetched) {
        (true, 1) => {}
        (false, 0) if !sealed => {
            let value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|_| "a token served from bytes that are not JSON".to_owned())?;
            if value.get("v").and_then(|v| v.as_u64()) != Some(1)
                || value.get("access_token").and_then(|t| t.as_str()) != Some(served.as_str())
            {
                return Err("a token served that the stored JSON does not hold".to_owned());
            }
        }
        (false, 0) => return Err("a sealed value forged without the key was used".to_owned()),
        (_, n) => {
            return Err(format!(
                "{n} fetches, serving the {} token",
                if served == FETCHED { "fetched" } else { "stored" }
            ))
        }
    }
    // (Short texts are found in any `Debug`: "x" in "expires_at".)
    if served.len() >= 8 && format!("{first:?}").contains(&served) {
        return Err("the cache's Debug shows the access token".to_owned());
    }
    if fetched == 1 {
        let second = cache(fetches.clone());
        let read = second.valid_token().await.map_err(|err| err.to_string())?;
        if read.access_token().expose() != FETCHED || fetches.load(Ordering::SeqCst) != 1 {
            return Err("the fetched token was not written over the stored bytes".to_owned());
        }
    }
    Ok(())
}
