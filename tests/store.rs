//! Caches sharing tokens through a `TokenStore` (the in-memory one, and stores that fail):
//! the distributed single flight, fail-open, unreadable values, rejected tokens, rotated
//! refresh tokens, encryption. Real HTTP over loopback to the in-process authorization server;
//! token time is a `ManualClock` shared by the server's endpoint and the caches.

#[path = "support/auth_server.rs"]
mod auth_server;
#[path = "support/log_capture.rs"]
mod log_capture;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_server::{AuthServer, ClientAuthMethod, Scripted};
use futures_util::future::join_all;
use serde_json::json;
use tower_oauth2::clock::ManualClock;
use tower_oauth2::store::{MemoryStore, SharedStore, StoreError, StoreFuture, StoreKey, TokenStore};
use tower_oauth2::{
    source_fn, ClientAuth, ClientCredentials, RefreshToken, Token, TokenCache, TokenEndpoint, TokenSource,
};

/// Bounds every wait of a test.
const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future).await.expect("the test hung")
}

struct Setup {
    server: AuthServer,
    endpoint: TokenEndpoint,
    clock: ManualClock,
}

/// A client-credentials server with 60 s tokens, and an endpoint on the shared clock.
async fn setup() -> Setup {
    let server = AuthServer::start().await;
    server.add_client("svc", Some("secret"), ClientAuthMethod::Basic);
    server.set_expires_in(Some(60));
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "secret"),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    Setup {
        server,
        endpoint,
        clock,
    }
}

impl Setup {
    fn source(&self) -> ClientCredentials {
        ClientCredentials::new(self.endpoint.clone()).scope("api")
    }

    /// A replica: its own cache over `store`.
    fn replica(&self, store: impl Into<SharedStore>) -> TokenCache {
        TokenCache::builder(self.source())
            .clock(self.clock.clone())
            .store(store)
            .build()
    }

    /// A replica built with `token` (a login made outside the cache).
    fn seeded(&self, store: impl Into<SharedStore>, token: &Token) -> TokenCache {
        TokenCache::builder(self.source())
            .clock(self.clock.clone())
            .initial_token(token.clone())
            .store(store)
            .build()
    }

    /// The full key the replicas' token is stored under.
    fn key(&self) -> String {
        SharedStore::new(MemoryStore::new()).full_key(&self.source().store_key().unwrap())
    }
}

async fn token_of(cache: &TokenCache) -> String {
    within(cache.valid_token())
        .await
        .expect("a token")
        .access_token()
        .expose()
        .to_owned()
}

/// The tokens of `first`, and of `second` asked 50 ms later, while `first`'s may be on its way.
async fn staggered(first: &TokenCache, second: &TokenCache) -> (String, String) {
    within(futures_util::future::join(token_of(first), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        token_of(second).await
    }))
    .await
}

/// Sends requests (asks for a valid token) until the cache's token is no longer `old`, which a
/// refresh behind a stale token does; the new token.
async fn token_changed(cache: &TokenCache, old: &str) -> String {
    within(async {
        loop {
            let token = token_of(cache).await;
            if token != old {
                return token;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

#[tokio::test]
async fn replicas_starting_together_make_one_token_request() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let replicas: Vec<_> = (0..8).map(|_| setup.replica(store.clone())).collect();
    let tokens = within(join_all(replicas.iter().map(token_of))).await;
    assert_eq!(setup.server.token_requests(), 1);
    assert!(tokens.iter().all(|token| *token == tokens[0]), "{tokens:?}");
}

#[tokio::test]
async fn an_expired_token_is_fetched_once_for_all_replicas_then_read() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let replicas: Vec<_> = (0..4).map(|_| setup.replica(store.clone())).collect();
    let first = within(join_all(replicas.iter().map(token_of))).await;
    assert_eq!(setup.server.token_requests(), 1);

    // Every replica's token expired: together they make one request; one at a time, too.
    setup.clock.advance(Duration::from_secs(61));
    let second = within(join_all(replicas.iter().map(token_of))).await;
    assert_eq!(setup.server.token_requests(), 2);
    assert!(second
        .iter()
        .all(|token| *token == second[0] && *token != first[0]));
    setup.clock.advance(Duration::from_secs(61));
    for replica in &replicas {
        token_of(replica).await;
    }
    assert_eq!(setup.server.token_requests(), 3);
}

#[tokio::test]
async fn a_stale_token_refreshed_by_one_replica_is_read_by_the_others() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let (a, b) = (setup.replica(store.clone()), setup.replica(store.clone()));
    let first = token_of(&a).await;
    assert_eq!(token_of(&b).await, first);

    // Both are stale (the refresh-ahead window of a 60 s token is at most half of it).
    setup.clock.advance(Duration::from_secs(40));
    let new = within(a.refresh())
        .await
        .unwrap()
        .access_token()
        .expose()
        .to_owned();
    assert_ne!(new, first);
    assert_eq!(setup.server.token_requests(), 2);
    // `b` serves its stale token and refreshes behind it: from the store.
    assert_eq!(token_of(&b).await, first);
    assert_eq!(token_changed(&b, &first).await, new);
    assert_eq!(setup.server.token_requests(), 2);
}

#[tokio::test]
async fn a_stale_stored_token_serves_a_new_replica_at_once_and_is_refreshed_behind_it() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let first = token_of(&setup.replica(store.clone())).await;
    // Stale by the lifetime it was issued with (60 s), though 20 s are left.
    setup.clock.advance(Duration::from_secs(40));
    let late = setup.replica(store.clone());
    assert_eq!(token_of(&late).await, first);
    assert_eq!(setup.server.token_requests(), 1);
    // Requests go on with the stale token; the first started a refresh behind it.
    token_changed(&late, &first).await;
    assert_eq!(setup.server.token_requests(), 2);
}

#[tokio::test]
async fn the_lock_winner_reads_the_store_again_before_fetching() {
    let setup = setup().await;
    let store = MemoryStore::new();
    // `late` finds the store empty, then takes the lock only after `early` fetched, wrote and
    // released it: it must read again and use that token.
    let slow = Faulty::slow_lock(store.clone(), Duration::from_millis(300));
    let late = setup.replica(SharedStore::new(slow).timeout(Duration::from_secs(5)));
    let early = setup.replica(store.clone());
    let (late_token, early_token) = staggered(&late, &early).await;
    assert_eq!(late_token, early_token);
    assert_eq!(setup.server.token_requests(), 1);
}

#[tokio::test]
async fn a_token_the_cache_was_built_with_goes_to_the_store_unless_it_holds_a_newer_one() {
    let setup = setup().await;
    let store = MemoryStore::new();
    // A fresh login (here: a token fetched outside the cache) seeds a cache with a store.
    let login = setup.source().fetch_token().await.unwrap();
    let seeded = setup.seeded(store.clone(), &login);
    within(async {
        while store.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        token_of(&setup.replica(store.clone())).await,
        login.access_token().expose()
    );
    assert_eq!(token_of(&seeded).await, login.access_token().expose());
    assert_eq!(setup.server.token_requests(), 1);

    // A newer token in the store is not replaced by an older (still valid) one a cache is
    // built with.
    setup.clock.advance(Duration::from_secs(10));
    let newer = within(seeded.refresh())
        .await
        .unwrap()
        .access_token()
        .expose()
        .to_owned();
    assert_eq!(setup.server.token_requests(), 2);
    let _old = setup.seeded(store.clone(), &login);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(token_of(&setup.replica(store.clone())).await, newer);
    assert_eq!(setup.server.token_requests(), 2);
}

#[tokio::test]
async fn a_lock_taken_by_a_call_that_timed_out_is_released() {
    let setup = setup().await;
    let store = MemoryStore::new();
    // The lock is taken (for a minute), but the answer comes after the cache's timeout
    // (100 ms): the cache fetches on its own, and must not leave the lock behind.
    let late = Faulty::late_lock(store.clone(), Duration::from_millis(300));
    token_of(&setup.replica(SharedStore::new(late).lock_ttl(Duration::from_secs(60)))).await;
    assert_eq!(setup.server.token_requests(), 1);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !store
            .try_lock(&setup.key(), "next", Duration::from_secs(1))
            .await
            .unwrap()
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the lock was left behind");
}

#[tokio::test]
async fn a_token_endpoint_failing_under_the_lock_frees_it_and_the_replicas_recover_with_one_request() {
    let setup = setup().await;
    let store = MemoryStore::new();
    // Requests fail at once after a failed attempt (no wait through the backoff, which the
    // manual clock would never end).
    let replica = || {
        TokenCache::builder(setup.source())
            .clock(setup.clock.clone())
            .wait_for_retry(Duration::ZERO)
            .store(store.clone())
            .build()
    };
    let (a, b) = (replica(), replica());
    let free = || async {
        store
            .try_lock(&setup.key(), "probe", Duration::from_secs(1))
            .await
            .unwrap()
    };
    let probe_out = || async { store.unlock(&setup.key(), "probe").await.unwrap() };

    // 503 with Retry-After, from the replica that holds the lock: its error, and the lock freed.
    setup.server.set_token_outage(Some(
        Scripted::json(503, json!({"error": "temporarily_unavailable"})).with_header("Retry-After", "3"),
    ));
    let err = within(a.valid_token()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert!(free().await, "the lock was left behind");
    probe_out().await;
    // 429 with Retry-After for the other replica.
    setup.server.set_token_outage(Some(
        Scripted::json(429, json!({"error": "slow_down"})).with_header("Retry-After", "2"),
    ));
    let err = within(b.valid_token()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(free().await, "the lock was left behind");
    probe_out().await;
    setup.server.set_token_outage(None);
    // A token issued but its answer lost (the connection dropped after acting): nothing is
    // stored, the lock is freed.
    setup.server.drop_after_acting(1);
    setup.clock.advance(Duration::from_secs(5)); // past both backoffs
    assert!(within(a.valid_token()).await.is_err());
    assert!(free().await, "the lock was left behind");
    probe_out().await;
    assert!(store.get(&setup.key()).await.unwrap().is_none());

    // The server answers again: one token request for both replicas.
    setup.clock.advance(Duration::from_secs(65));
    let before = setup.server.token_requests();
    let tokens = within(join_all([&a, &b].map(token_of))).await;
    assert_eq!(tokens[0], tokens[1]);
    assert_eq!(setup.server.token_requests(), before + 1);
}

#[tokio::test]
async fn a_fresh_token_is_served_without_touching_the_store() {
    let setup = setup().await;
    let store = Faulty::new();
    let cache = setup.replica(SharedStore::new(store.clone()));
    for _ in 0..100 {
        token_of(&cache).await;
    }
    // One read, one lock, one re-read, one write, one unlock: for the first token only.
    assert_eq!(store.calls(), 5);
    assert_eq!(setup.server.token_requests(), 1);
}

#[tokio::test]
async fn a_failing_store_is_passed_over_and_logged_once() {
    let setup = setup().await;
    let store = Faulty::new();
    store.set(Mode::Fail);
    let capture = log_capture::capture();
    let (a, b) = (setup.replica(store.clone()), setup.replica(store.clone()));
    assert_ne!(token_of(&a).await, token_of(&b).await); // each fetched its own
    for _ in 0..3 {
        setup.clock.advance(Duration::from_secs(61));
        token_of(&a).await;
    }
    assert_eq!(setup.server.token_requests(), 5);
    let logs = capture.text();
    assert_eq!(
        logs.matches("the token store failed; fetching tokens without it")
            .count(),
        2,
        "{logs}"
    ); // one per cache
    assert!(!logs.contains("secret"), "{logs}");

    // The store answers again: the next refresh goes through it, and says so.
    store.set(Mode::Work);
    setup.clock.advance(Duration::from_secs(61));
    let shared = token_of(&a).await;
    assert!(capture.text().contains("the token store answers again"));
    setup.clock.advance(Duration::from_secs(61));
    let (a_token, b_token) = (token_of(&a).await, token_of(&b).await);
    assert_eq!(a_token, b_token);
    assert_ne!(a_token, shared);
    assert_eq!(setup.server.token_requests(), 7);
}

#[tokio::test]
async fn a_store_that_hangs_is_timed_out() {
    let setup = setup().await;
    let store = Faulty::new();
    store.set(Mode::Hang);
    let cache = setup.replica(SharedStore::new(store.clone()).timeout(Duration::from_millis(50)));
    token_of(&cache).await;
    assert_eq!(setup.server.token_requests(), 1);
}

#[tokio::test]
async fn an_unreadable_value_counts_as_absent_and_is_replaced() {
    let setup = setup().await;
    let store = MemoryStore::new();
    store
        .set(&setup.key(), b"{\"v\":1,\"access_token\":", None)
        .await
        .unwrap();
    let a = setup.replica(store.clone());
    let token = token_of(&a).await;
    assert_eq!(setup.server.token_requests(), 1);
    let value = store.get(&setup.key()).await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&value).contains(&token),
        "the value was not replaced"
    );
    // And another replica reads it.
    assert_eq!(token_of(&setup.replica(store.clone())).await, token);
    assert_eq!(setup.server.token_requests(), 1);
}

#[tokio::test]
async fn a_token_a_resource_server_refused_is_not_taken_from_the_store_again() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let cache = setup.replica(store.clone());
    let refused = token_of(&cache).await;
    cache.invalidate();
    let new = token_of(&cache).await;
    assert_ne!(new, refused);
    assert_eq!(setup.server.token_requests(), 2);
    // The store holds the new one.
    assert_eq!(token_of(&setup.replica(store)).await, new);
    assert_eq!(setup.server.token_requests(), 2);
}

#[tokio::test]
async fn a_lock_left_by_a_dead_replica_is_taken_over_after_its_ttl() {
    let setup = setup().await;
    let store = MemoryStore::new();
    assert!(store
        .try_lock(&setup.key(), "dead-replica", Duration::from_millis(300))
        .await
        .unwrap());
    let cache = setup.replica(store.clone());
    token_of(&cache).await;
    assert_eq!(setup.server.token_requests(), 1);
    // The lock is released, by its new owner.
    assert!(store
        .try_lock(&setup.key(), "next", Duration::from_secs(1))
        .await
        .unwrap());
}

#[tokio::test]
async fn a_lock_that_never_frees_ends_in_a_fetch_of_ones_own() {
    let setup = setup().await;
    let store = MemoryStore::new();
    assert!(store
        .try_lock(&setup.key(), "stuck", Duration::from_secs(3600))
        .await
        .unwrap());
    let cache = setup.replica(SharedStore::new(store.clone()).lock_ttl(Duration::from_millis(100)));
    token_of(&cache).await;
    assert_eq!(setup.server.token_requests(), 1);
}

#[tokio::test]
async fn a_source_without_a_key_uses_no_store_unless_given_one() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let source = Arc::new(source_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok(Token::bearer(format!("t{n}"))) }
    }));
    let store = MemoryStore::new();
    let capture = log_capture::capture();
    let cache = TokenCache::builder_shared(source.clone())
        .store(store.clone())
        .build();
    token_of(&cache).await;
    assert!(store.is_empty());
    assert!(capture.text().contains("derives no store key"));
    let keyed = |store: &MemoryStore| {
        TokenCache::builder_shared(source.clone())
            .store(SharedStore::new(store.clone()).key(StoreKey::named("api")))
            .build()
    };
    assert_eq!(token_of(&keyed(&store)).await, "t1");
    assert_eq!(token_of(&keyed(&store)).await, "t1");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn replicas_redeem_the_rotated_refresh_token_never_a_consumed_one() {
    let setup = setup().await;
    setup.server.add_client("cli", None, ClientAuthMethod::None);
    setup.server.set_rotate_refresh_tokens(true);
    setup.server.set_reuse_detection(true);
    let endpoint = TokenEndpoint::builder(setup.server.token_url(), ClientAuth::none("cli"))
        .clock(setup.clock.clone())
        .build()
        .unwrap();
    let issued = setup.server.issue_refresh_token("cli");
    let store = MemoryStore::new();
    // Both replicas (or two runs of a CLI) start from the same refresh token.
    let replica = |rt: &str| {
        TokenCache::builder(RefreshToken::new(endpoint.clone(), rt.to_owned()))
            .clock(setup.clock.clone())
            .store(SharedStore::new(store.clone()).key(StoreKey::named("the-user")))
            .build()
    };
    let (a, b) = (replica(&issued), replica(&issued));
    let first = token_of(&a).await; // redeems `issued`, which rotates
    assert_eq!(token_of(&b).await, first); // from the store
    assert!(!setup.server.is_refresh_token_valid(&issued));
    for _ in 0..3 {
        setup.clock.advance(Duration::from_secs(61));
        token_of(&b).await;
        setup.clock.advance(Duration::from_secs(61));
        token_of(&a).await;
    }
    assert_eq!(setup.server.token_requests(), 7);
    let redeemed: Vec<_> = setup
        .server
        .requests()
        .iter()
        .filter_map(|r| r.param("refresh_token").map(str::to_owned))
        .collect();
    let distinct: std::collections::HashSet<_> = redeemed.iter().collect();
    assert_eq!(
        distinct.len(),
        redeemed.len(),
        "a refresh token was redeemed twice: {redeemed:?}"
    );
    // A new run starting from the first refresh token (long consumed) still works.
    setup.clock.advance(Duration::from_secs(61));
    token_of(&replica(&issued)).await;
    assert_eq!(setup.server.token_requests(), 8);
}

/// A refresh-token client of the setup's server with rotation and reuse detection, and a
/// cache over `store` starting from `refresh_token`.
fn refresh_replica(setup: &Setup, store: impl Into<SharedStore>, refresh_token: &str) -> TokenCache {
    let endpoint = TokenEndpoint::builder(setup.server.token_url(), ClientAuth::none("cli"))
        .clock(setup.clock.clone())
        .build()
        .unwrap();
    TokenCache::builder(RefreshToken::new(endpoint, refresh_token.to_owned()))
        .clock(setup.clock.clone())
        .store(store.into().key(StoreKey::named("the-user")))
        .build()
}

async fn rotating_setup() -> (Setup, String) {
    let setup = setup().await;
    setup.server.add_client("cli", None, ClientAuthMethod::None);
    setup.server.set_rotate_refresh_tokens(true);
    setup.server.set_reuse_detection(true);
    let issued = setup.server.issue_refresh_token("cli");
    (setup, issued)
}

#[tokio::test]
async fn a_lost_grant_stays_lost_and_makes_no_more_requests() {
    let (setup, issued) = rotating_setup().await;
    let store = MemoryStore::new();
    let cache = refresh_replica(&setup, store.clone(), &issued);
    token_of(&cache).await; // `issued` rotated; the stored value holds the new one
                            // Someone redeems `issued` again: the server revokes the whole grant.
    let endpoint = TokenEndpoint::new(setup.server.token_url(), ClientAuth::none("cli")).unwrap();
    assert!(RefreshToken::new(endpoint, issued.clone()).fetch().await.is_err());
    setup.clock.advance(Duration::from_secs(61));
    let err = within(cache.valid_token()).await.unwrap_err();
    assert!(err.is_grant_lost(), "{err}");
    let requests = setup.server.token_requests();
    for _ in 0..5 {
        assert!(within(cache.valid_token()).await.unwrap_err().is_grant_lost());
    }
    assert_eq!(
        setup.server.token_requests(),
        requests,
        "the stored refresh token revived the lost grant"
    );
}

#[tokio::test]
async fn a_refresh_token_source_adopts_only_refresh_tokens_it_never_held() {
    let (setup, issued) = rotating_setup().await;
    let endpoint = TokenEndpoint::new(setup.server.token_url(), ClientAuth::none("cli")).unwrap();
    let source = RefreshToken::new(endpoint, issued.clone());
    let rotated = source
        .fetch()
        .await
        .unwrap()
        .refresh_token()
        .unwrap()
        .expose()
        .to_owned();
    // A stored value holding the refresh token it redeemed (an older one): ignored.
    source.on_stored_token(&Token::bearer("old").with_refresh_token(issued.clone()));
    assert_eq!(source.current_refresh_token().await.unwrap().expose(), rotated);
    // One it never held (another replica rotated it): adopted.
    source.on_stored_token(&Token::bearer("new").with_refresh_token("rt-from-another-replica"));
    assert_eq!(
        source.current_refresh_token().await.unwrap().expose(),
        "rt-from-another-replica"
    );
    // And the one it held before that: ignored again.
    source.on_stored_token(&Token::bearer("old").with_refresh_token(rotated.clone()));
    assert_eq!(
        source.current_refresh_token().await.unwrap().expose(),
        "rt-from-another-replica"
    );
}

#[tokio::test]
async fn a_token_fetched_while_the_store_failed_is_written_when_it_answers() {
    let (setup, issued) = rotating_setup().await;
    let store = Faulty::new();
    store.set(Mode::FailOnce); // the first read fails; the write after the fetch works
    let a = refresh_replica(&setup, store.clone(), &issued);
    let first = token_of(&a).await;
    // Another run starting from `issued` (consumed by `a`) takes the stored token and its
    // rotated refresh token.
    let b = refresh_replica(&setup, store.clone(), &issued);
    assert_eq!(token_of(&b).await, first);
    setup.clock.advance(Duration::from_secs(61));
    token_of(&b).await;
    let redeemed: Vec<_> = setup
        .server
        .requests()
        .iter()
        .filter_map(|r| r.param("refresh_token").map(str::to_owned))
        .collect();
    assert_eq!(redeemed.len(), 2);
    assert_ne!(
        redeemed[0], redeemed[1],
        "a consumed refresh token was redeemed again"
    );
}

#[tokio::test]
async fn a_token_request_slower_than_the_lock_ttl_keeps_the_lock() {
    let setup = setup().await;
    setup.server.set_token_delay(Duration::from_millis(600));
    let store = MemoryStore::new();
    let shared = || SharedStore::new(store.clone()).lock_ttl(Duration::from_millis(150));
    let (a, b) = (setup.replica(shared()), setup.replica(shared()));
    let (a_token, b_token) = staggered(&a, &b).await;
    assert_eq!(a_token, b_token);
    assert_eq!(setup.server.token_requests(), 1);
}

#[tokio::test]
async fn a_store_that_panics_is_passed_over() {
    let setup = setup().await;
    let store = Faulty::new();
    store.set(Mode::Panic);
    let capture = log_capture::capture();
    let cache = setup.replica(store.clone());
    token_of(&cache).await;
    setup.clock.advance(Duration::from_secs(61));
    token_of(&cache).await;
    assert_eq!(setup.server.token_requests(), 2);
    let logs = capture.text();
    assert_eq!(
        logs.matches("the token store failed; fetching tokens without it")
            .count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("token store: panicked"), "{logs}");
}

#[cfg(feature = "encryption")]
#[tokio::test]
async fn sealed_values_hold_no_token_and_open_only_with_the_key() {
    use tower_oauth2::store::EncryptionKey;

    let setup = setup().await;
    let store = MemoryStore::new();
    let sealed = |key: [u8; 32]| SharedStore::new(store.clone()).encryption(EncryptionKey::from_bytes(key));
    let token = token_of(&setup.replica(sealed([1; 32]))).await;
    let value = store.get(&setup.key()).await.unwrap().unwrap();
    assert!(!value.windows(token.len()).any(|w| w == token.as_bytes()));
    assert_eq!(token_of(&setup.replica(sealed([1; 32]))).await, token);
    assert_eq!(setup.server.token_requests(), 1);
    // Another key, or none: unreadable, so fetched anew (and written over).
    assert_ne!(token_of(&setup.replica(sealed([2; 32]))).await, token);
    assert_eq!(setup.server.token_requests(), 2);
    let plain = token_of(&setup.replica(store.clone())).await;
    assert_eq!(setup.server.token_requests(), 3);
    // A plain value is not trusted by a replica with a key.
    assert_ne!(token_of(&setup.replica(sealed([2; 32]))).await, plain);
    assert_eq!(setup.server.token_requests(), 4);
}

#[tokio::test]
async fn a_refresh_whose_runtime_shuts_down_leaves_the_store_usable() {
    let setup = setup().await;
    let store = MemoryStore::new();
    setup.server.set_token_delay(Duration::from_secs(30));
    let cache = setup.replica(SharedStore::new(store.clone()).lock_ttl(Duration::from_millis(300)));
    // The refresh starts (takes the lock) on a runtime that then shuts down.
    let doomed = cache.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(200), doomed.valid_token()).await;
        });
    })
    .join()
    .unwrap();
    setup.server.set_token_delay(Duration::ZERO);
    token_of(&cache).await;
    assert!(setup.server.token_requests() >= 1);
    assert!(store.get(&setup.key()).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// A store that fails on demand
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Work,
    Fail,
    Hang,
    Panic,
    /// Fails the next call only, then works.
    FailOnce,
}

/// A `MemoryStore` that can fail (an error at once) or hang, and counts its calls.
#[derive(Clone, Debug)]
struct Faulty {
    inner: MemoryStore,
    mode: Arc<Mutex<u8>>,
    calls: Arc<AtomicUsize>,
    lock_delay: Arc<Mutex<Duration>>,
    /// Takes the lock first, then waits `lock_delay` before it answers.
    late_answer: bool,
}

impl Faulty {
    fn new() -> Self {
        Faulty {
            inner: MemoryStore::new(),
            mode: Arc::new(Mutex::new(0)),
            calls: Arc::default(),
            lock_delay: Arc::default(),
            late_answer: false,
        }
    }

    /// A `Faulty` over `inner` whose `try_lock` takes the lock, then answers `delay` later.
    fn late_lock(inner: MemoryStore, delay: Duration) -> Self {
        Faulty {
            late_answer: true,
            ..Faulty::slow_lock(inner, delay)
        }
    }

    /// A `Faulty` over `inner`, whose `try_lock` waits `delay` first.
    fn slow_lock(inner: MemoryStore, delay: Duration) -> Self {
        let store = Faulty {
            inner,
            ..Faulty::new()
        };
        *store.lock_delay.lock().unwrap() = delay;
        store
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode as u8;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn guard<'a, T: Send + 'a>(&self, work: impl FnOnce() -> StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = {
            let mut mode = self.mode.lock().unwrap();
            let now = *mode;
            if now == Mode::FailOnce as u8 {
                *mode = Mode::Work as u8;
            }
            now
        };
        match mode {
            0 => work(),
            1 | 4 => Box::pin(async { Err(StoreError::new("connection refused")) }),
            3 => panic!("a store with a bug"),
            _ => Box::pin(std::future::pending()) as Pin<Box<dyn Future<Output = _> + Send>>,
        }
    }
}

impl TokenStore for Faulty {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.guard(|| self.inner.get(key))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        self.guard(|| self.inner.set(key, value, ttl))
    }

    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        let delay = *self.lock_delay.lock().unwrap();
        self.guard(move || {
            Box::pin(async move {
                if self.late_answer {
                    let taken = self.inner.try_lock(key, owner, ttl).await;
                    tokio::time::sleep(delay).await;
                    return taken;
                }
                tokio::time::sleep(delay).await;
                self.inner.try_lock(key, owner, ttl).await
            })
        })
    }

    fn extend<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        self.guard(|| self.inner.extend(key, owner, ttl))
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        self.guard(|| self.inner.unlock(key, owner))
    }
}
