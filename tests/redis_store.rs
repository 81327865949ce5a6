//! `RedisStore` against a real `redis-server` (tests/support/redis.rs): the trait's semantics
//! (values, TTLs, the lock), garbage at a key, an outage and a restart, a Redis slower than
//! the store's timeout.

#![cfg(feature = "redis")]

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer as _, ServiceExt as _};
use tower_oauth2::clock::ManualClock;
use tower_oauth2::store::{RedisStore, SharedStore, StoreError, StoreKey, TokenStore};
use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenCache, TokenEndpoint};

#[path = "support/auth_server.rs"]
mod auth_server;
#[path = "support/redis.rs"]
mod redis_server;
#[path = "support/util.rs"]
mod util;

use auth_server::{AuthServer, ClientAuthMethod};
use redis_server::{DelayProxy, RedisServer};
use util::bounded;

const KEY: &str = "tower-oauth2:{0123456789abcdef0123456789abcdef}";
const LOCK: &str = "tower-oauth2:{0123456789abcdef0123456789abcdef}:lock";

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::open(&server.url()).unwrap()
}

fn expect_store_err<T: std::fmt::Debug>(result: Result<T, StoreError>) -> StoreError {
    match result {
        Ok(value) => panic!("expected a StoreError, got {value:?}"),
        Err(err) => err,
    }
}

/// Runs `op` until it succeeds (the first operations after a restart may fail while the
/// connection is made again); panics after `util::LIMIT`. Returns how many attempts failed.
async fn until_ok<T, F, Fut>(mut op: F) -> (T, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    bounded(async {
        let mut failed = 0;
        loop {
            match op().await {
                Ok(value) => return (value, failed),
                Err(_) => {
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await
}

fn integer(reply: &[u8]) -> i64 {
    let text = std::str::from_utf8(reply).unwrap();
    text.strip_prefix(':')
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {text:?}"))
}

#[tokio::test]
async fn values_are_stored_read_and_replaced() {
    let server = RedisServer::start();
    let store = store(&server);
    assert_eq!(bounded(store.get(KEY)).await.unwrap(), None);
    // Any bytes (sealed values are binary).
    let value: Vec<u8> = (0..=255).collect();
    bounded(store.set(KEY, &value, None)).await.unwrap();
    assert_eq!(bounded(store.get(KEY)).await.unwrap(), Some(value));
    bounded(store.set(KEY, b"second", None)).await.unwrap();
    assert_eq!(
        bounded(store.get(KEY)).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    // Without a TTL the key does not expire.
    assert_eq!(integer(&server.command(&[b"PTTL", KEY.as_bytes()])), -1);
    // A clone shares the store, and keys are independent.
    assert_eq!(
        bounded(store.clone().get("tower-oauth2:{other}")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_ttl_is_sent_in_milliseconds_rounded_up_and_the_value_expires() {
    let server = RedisServer::start();
    let store = store(&server);
    bounded(store.set(KEY, b"v", Some(Duration::from_secs(30))))
        .await
        .unwrap();
    let pttl = integer(&server.command(&[b"PTTL", KEY.as_bytes()]));
    assert!((29_000..=30_000).contains(&pttl), "PTTL {pttl}");
    // Below a millisecond: 1 ms, not 0 (which Redis refuses), so the value expires.
    bounded(store.set(KEY, b"v", Some(Duration::from_micros(10))))
        .await
        .unwrap();
    let (value, _) = until_ok(|| async {
        match store.get(KEY).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::new("not expired yet")),
        }
    })
    .await;
    assert_eq!(value, ());
    // A TTL too long for Redis's clock is cut, not refused.
    bounded(store.set(KEY, b"long", Some(Duration::MAX)))
        .await
        .unwrap();
    assert_eq!(
        bounded(store.get(KEY)).await.unwrap().as_deref(),
        Some(&b"long"[..])
    );
    assert!(integer(&server.command(&[b"PTTL", KEY.as_bytes()])) > 0);
}

#[tokio::test]
async fn the_lock_is_taken_once_under_a_name_of_its_own() {
    let server = RedisServer::start();
    let store = store(&server);
    bounded(store.set(KEY, b"token", None)).await.unwrap();
    assert!(bounded(store.try_lock(KEY, "owner-a", Duration::from_secs(10)))
        .await
        .unwrap());
    assert!(!bounded(store.try_lock(KEY, "owner-b", Duration::from_secs(10)))
        .await
        .unwrap());
    assert!(!bounded(store.try_lock(KEY, "owner-a", Duration::from_secs(10)))
        .await
        .unwrap());
    // `<key>:lock` holds the owner, with the TTL; the value is untouched.
    assert_eq!(server.command(&[b"GET", LOCK.as_bytes()]), b"$7\r\nowner-a\r\n");
    let pttl = integer(&server.command(&[b"PTTL", LOCK.as_bytes()]));
    assert!((9_000..=10_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(
        bounded(store.get(KEY)).await.unwrap().as_deref(),
        Some(&b"token"[..])
    );
    // Another key has its own lock.
    assert!(
        bounded(store.try_lock("tower-oauth2:{other}", "owner-b", Duration::from_secs(10)))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn only_the_owner_releases_the_lock() {
    let server = RedisServer::start();
    let store = store(&server);
    // Releasing a lock nobody holds is not an error.
    bounded(store.unlock(KEY, "owner-a")).await.unwrap();
    assert!(bounded(store.try_lock(KEY, "owner-a", Duration::from_secs(10)))
        .await
        .unwrap());
    bounded(store.unlock(KEY, "owner-b")).await.unwrap();
    assert_eq!(server.command(&[b"EXISTS", LOCK.as_bytes()]), b":1\r\n");
    assert!(!bounded(store.try_lock(KEY, "owner-b", Duration::from_secs(10)))
        .await
        .unwrap());
    bounded(store.unlock(KEY, "owner-a")).await.unwrap();
    assert_eq!(server.command(&[b"EXISTS", LOCK.as_bytes()]), b":0\r\n");
    assert!(bounded(store.try_lock(KEY, "owner-b", Duration::from_secs(10)))
        .await
        .unwrap());
}

#[tokio::test]
async fn only_the_owner_extends_the_lock() {
    let server = RedisServer::start();
    let store = store(&server);
    assert!(!bounded(store.extend(KEY, "owner-a", Duration::from_secs(60)))
        .await
        .unwrap()); // nobody's
    assert!(bounded(store.try_lock(KEY, "owner-a", Duration::from_secs(10)))
        .await
        .unwrap());
    assert!(!bounded(store.extend(KEY, "owner-b", Duration::from_secs(60)))
        .await
        .unwrap());
    assert!(integer(&server.command(&[b"PTTL", LOCK.as_bytes()])) <= 10_000);
    assert!(bounded(store.extend(KEY, "owner-a", Duration::from_secs(60)))
        .await
        .unwrap());
    assert!(integer(&server.command(&[b"PTTL", LOCK.as_bytes()])) > 10_000);
    assert_eq!(server.command(&[b"GET", LOCK.as_bytes()]), b"$7\r\nowner-a\r\n");
}

#[tokio::test]
async fn unlock_loads_its_script_again_when_redis_forgot_it() {
    let server = RedisServer::start();
    let store = store(&server);
    assert!(bounded(store.try_lock(KEY, "owner-a", Duration::from_secs(10)))
        .await
        .unwrap());
    bounded(store.unlock(KEY, "owner-a")).await.unwrap();
    // EVALSHA now fails with NOSCRIPT: the store loads the script and runs it.
    assert_eq!(server.command(&[b"SCRIPT", b"FLUSH"]), b"+OK\r\n");
    assert!(bounded(store.try_lock(KEY, "owner-a", Duration::from_secs(10)))
        .await
        .unwrap());
    bounded(store.unlock(KEY, "owner-a")).await.unwrap();
    assert_eq!(server.command(&[b"EXISTS", LOCK.as_bytes()]), b":0\r\n");
}

#[tokio::test]
async fn a_dead_owners_lock_can_be_taken_after_its_ttl() {
    let server = RedisServer::start();
    let store = store(&server);
    assert!(bounded(store.try_lock(KEY, "dead", Duration::from_millis(30)))
        .await
        .unwrap());
    assert!(!bounded(store.try_lock(KEY, "alive", Duration::from_secs(10)))
        .await
        .unwrap());
    let (taken, _) = until_ok(|| async {
        match store.try_lock(KEY, "alive", Duration::from_secs(10)).await? {
            true => Ok(true),
            false => Err(StoreError::new("still held")),
        }
    })
    .await;
    assert!(taken);
    // The dead owner's late unlock does not release the new owner's lock.
    bounded(store.unlock(KEY, "dead")).await.unwrap();
    assert_eq!(server.command(&[b"GET", LOCK.as_bytes()]), b"$5\r\nalive\r\n");
}

#[tokio::test]
async fn a_value_of_another_type_reads_as_absent_and_is_replaced_by_set() {
    let server = RedisServer::start();
    let store = store(&server);
    // Another client wrote a list at the key and at the lock's name.
    assert_eq!(
        server.command(&[b"RPUSH", KEY.as_bytes(), b"secret-token-in-a-list"]),
        b":1\r\n"
    );
    assert_eq!(
        server.command(&[b"RPUSH", LOCK.as_bytes(), b"secret-owner"]),
        b":1\r\n"
    );
    assert_eq!(bounded(store.get(KEY)).await.unwrap(), None);
    // The lock's name is taken (by a list): not this owner's lock.
    assert!(!bounded(store.try_lock(KEY, "owner", Duration::from_secs(10)))
        .await
        .unwrap());
    // The script's GET fails on the list: an error, which names no value.
    let err = expect_store_err(bounded(store.unlock(KEY, "owner")).await);
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("Redis EVALSHA") && !text.contains("secret"),
        "{text}"
    );
    // SET replaces a value of any type.
    bounded(store.set(KEY, b"token", None)).await.unwrap();
    assert_eq!(
        bounded(store.get(KEY)).await.unwrap().as_deref(),
        Some(&b"token"[..])
    );
}

#[tokio::test]
async fn a_redis_that_is_down_at_start_up_fails_each_operation_and_is_used_once_up() {
    let mut server = RedisServer::start();
    server.stop();
    // Opening does not connect.
    let store = store(&server);
    for _ in 0..3 {
        let err = expect_store_err(bounded(store.get(KEY)).await);
        assert!(err.to_string().contains("Redis"), "{err}");
        expect_store_err(bounded(store.try_lock(KEY, "owner", Duration::from_secs(1))).await);
    }
    server.restart();
    // The failed attempts were not kept: the next operation connects.
    let ((), _) = until_ok(|| store.set(KEY, b"token", None)).await;
    assert_eq!(
        bounded(store.get(KEY)).await.unwrap().as_deref(),
        Some(&b"token"[..])
    );
}

#[tokio::test]
async fn an_outage_fails_operations_and_the_same_store_reconnects_after_it() {
    let mut server = RedisServer::start();
    let store = store(&server);
    bounded(store.set(KEY, b"before", None)).await.unwrap();
    server.stop();
    // Every operation fails (and none hangs: each is bounded by the store's timeouts, and
    // `bounded` fails the test if one is not).
    for _ in 0..5 {
        expect_store_err(bounded(store.get(KEY)).await);
        expect_store_err(bounded(store.set(KEY, b"during", None)).await);
        expect_store_err(bounded(store.try_lock(KEY, "owner", Duration::from_secs(1))).await);
        expect_store_err(bounded(store.unlock(KEY, "owner")).await);
    }
    server.restart();
    let (value, _) = until_ok(|| store.get(KEY)).await;
    // The restarted server is empty (no persistence); the store works with it again.
    assert_eq!(value, None);
    bounded(store.set(KEY, b"after", None)).await.unwrap();
    assert!(bounded(store.try_lock(KEY, "owner", Duration::from_secs(10)))
        .await
        .unwrap());
    assert_eq!(server.command(&[b"GET", KEY.as_bytes()]), b"$5\r\nafter\r\n");
}

#[tokio::test]
async fn a_redis_slower_than_the_response_timeout_fails_the_operation() {
    let server = RedisServer::start();
    let proxy = DelayProxy::start(server.addr()).await;
    let store = RedisStore::open(&proxy.url())
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(100));
    bounded(store.set(KEY, b"token", None)).await.unwrap();
    proxy.set_delay(Duration::from_secs(2));
    let err = expect_store_err(bounded(store.get(KEY)).await);
    assert!(err.to_string().contains("Redis GET: no reply in time"), "{err}");
    expect_store_err(bounded(store.try_lock(KEY, "owner", Duration::from_secs(10))).await);
    proxy.set_delay(Duration::ZERO);
    // Replies that were held back drain; the connection serves new commands again.
    let (value, _) = until_ok(|| store.get(KEY)).await;
    assert_eq!(value.as_deref(), Some(&b"token"[..]));
}

#[tokio::test]
async fn a_connection_that_times_out_is_not_kept_and_the_next_operation_connects() {
    let server = RedisServer::start();
    let proxy = DelayProxy::start(server.addr()).await;
    // Redis answers nothing in time from the start: the first connection cannot be made.
    proxy.set_delay(Duration::from_secs(3));
    let store = RedisStore::open(&proxy.url())
        .unwrap()
        .connect_timeout(Duration::from_millis(100))
        .response_timeout(Duration::from_millis(100));
    for _ in 0..2 {
        expect_store_err(bounded(store.get(KEY)).await);
    }
    proxy.set_delay(Duration::ZERO);
    let ((), _) = until_ok(|| store.set(KEY, b"token", None)).await;
    assert_eq!(server.command(&[b"GET", KEY.as_bytes()]), b"$5\r\ntoken\r\n");
}

#[tokio::test]
async fn a_connection_made_by_the_application_is_used_as_it_is() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let manager = bounded(redis::aio::ConnectionManager::new(client.clone()))
        .await
        .unwrap();
    let store = RedisStore::from_connection(manager);
    assert!(format!("{store:?}").contains("given"));
    bounded(store.set(KEY, b"token", Some(Duration::from_secs(60))))
        .await
        .unwrap();
    assert_eq!(
        bounded(store.get(KEY)).await.unwrap().as_deref(),
        Some(&b"token"[..])
    );
    assert!(bounded(store.try_lock(KEY, "owner", Duration::from_secs(10)))
        .await
        .unwrap());
    bounded(store.unlock(KEY, "owner")).await.unwrap();
    assert_eq!(server.command(&[b"EXISTS", LOCK.as_bytes()]), b":0\r\n");
    // A plain multiplexed connection too.
    let multiplexed = bounded(client.get_multiplexed_async_connection()).await.unwrap();
    let store = RedisStore::from_connection(multiplexed);
    assert_eq!(
        bounded(store.get(KEY)).await.unwrap().as_deref(),
        Some(&b"token"[..])
    );
}

// End to end: `TokenCache`s (one per replica) over one Redis, against the demo authorization
// server, which counts token requests. Time is a `ManualClock` shared by the caches and the
// token endpoints: a lifetime passes with `advance`, nothing sleeps for it.

/// How long the demo server's tokens live.
const LIFETIME: Duration = Duration::from_secs(60);

/// The authorization server, with client `svc` and tokens that live [`LIFETIME`].
async fn auth_server() -> AuthServer {
    let server = AuthServer::start().await;
    server.add_client("svc", Some("secret"), ClientAuthMethod::Basic);
    server.set_expires_in(Some(LIFETIME.as_secs()));
    server
}

/// A replica's cache: client credentials at `auth`, on `clock`, with `store` (if any).
fn replica(auth: &AuthServer, clock: &ManualClock, store: Option<SharedStore>) -> TokenCache {
    let endpoint = TokenEndpoint::builder(auth.token_url(), ClientAuth::client_secret_basic("svc", "secret"))
        .clock(clock.clone())
        .build()
        .unwrap();
    let builder = TokenCache::builder(ClientCredentials::new(endpoint).scope("api")).clock(clock.clone());
    match store {
        Some(store) => builder.store(store).build(),
        None => builder.build(),
    }
}

/// The store settings of the replicas: operations bounded generously (a loaded test machine
/// must not fail open by accident) unless a test says otherwise.
fn shared(store: &RedisStore) -> SharedStore {
    SharedStore::new(store.clone())
        .key(StoreKey::named("api"))
        .timeout(Duration::from_secs(2))
}

/// The full Redis key of the replicas' token.
fn token_key(shared: &SharedStore) -> String {
    shared.full_key(&StoreKey::named("api"))
}

/// `valid_token` on every cache at once: every one must succeed; returns the access tokens.
async fn all_valid(caches: &[TokenCache]) -> Vec<String> {
    let results = bounded(join_all(caches.iter().map(|cache| cache.valid_token()))).await;
    results
        .into_iter()
        .map(|result| result.expect("a valid token").access_token().expose().to_owned())
        .collect()
}

/// Waits until `store` answers again (after a restart, or once a proxy stops delaying).
/// A Redis server, the demo authorization server, a clock for the caches, and a store on that
/// Redis (with this response timeout, when given).
async fn fixture(response_timeout: Option<Duration>) -> (RedisServer, AuthServer, ManualClock, RedisStore) {
    let redis = RedisServer::start();
    let auth = auth_server().await;
    let mut store = RedisStore::open(&redis.url()).unwrap();
    if let Some(timeout) = response_timeout {
        store = store.response_timeout(timeout);
    }
    (redis, auth, ManualClock::new(), store)
}

async fn until_store_answers(store: &RedisStore) {
    until_ok(|| store.get("tower-oauth2:{probe}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_replicas_make_one_token_request_per_lifetime() {
    let (redis, auth, clock, store) = fixture(Some(Duration::from_secs(1))).await;
    let caches: Vec<TokenCache> = (0..8)
        .map(|_| replica(&auth, &clock, Some(shared(&store))))
        .collect();
    for lifetime in 1..=5 {
        let tokens = all_valid(&caches).await;
        assert!(
            tokens.iter().all(|token| *token == tokens[0]),
            "one token shared: {tokens:?}"
        );
        assert_eq!(
            auth.token_requests(),
            lifetime,
            "token requests after {lifetime} lifetimes"
        );
        clock.advance(LIFETIME);
    }
    // The stored value expires with the token (SET ... PX).
    let pttl = integer(&redis.command(&[b"PTTL", token_key(&shared(&store)).as_bytes()]));
    assert!(pttl > 0 && pttl <= LIFETIME.as_millis() as i64, "PTTL {pttl}");

    // Without the store, the same replicas make one request each.
    let alone: Vec<TokenCache> = (0..8).map(|_| replica(&auth, &clock, None)).collect();
    all_valid(&alone).await;
    assert_eq!(auth.token_requests(), 5 + 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_replicas_starting_at_once_make_one_token_request() {
    let (redis, auth, clock, store) = fixture(Some(Duration::from_secs(1))).await;
    let caches: Vec<TokenCache> = (0..200)
        .map(|_| replica(&auth, &clock, Some(shared(&store))))
        .collect();
    let tokens = all_valid(&caches).await;
    assert_eq!(auth.token_requests(), 1);
    assert!(tokens.iter().all(|token| *token == tokens[0]));
    // The lock was released.
    let lock = format!("{}:lock", token_key(&shared(&store)));
    assert_eq!(redis.command(&[b"EXISTS", lock.as_bytes()]), b":0\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_no_request_and_the_store_is_used_again_after_it() {
    let (mut redis, auth, clock, store) = fixture(Some(Duration::from_secs(1))).await;
    let caches: Vec<TokenCache> = (0..4)
        .map(|_| replica(&auth, &clock, Some(shared(&store))))
        .collect();
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let api = OAuth2Layer::from_cache(caches[0].clone()).layer(http);
    let resource = || {
        http::Request::get(auth.resource_url())
            .body(Empty::new())
            .unwrap()
    };
    all_valid(&caches).await;
    assert_eq!(auth.token_requests(), 1);

    redis.stop();
    for lifetime in 1..=2 {
        clock.advance(LIFETIME);
        // Every replica fetches on its own: no token, no request fails.
        all_valid(&caches).await;
        assert_eq!(auth.token_requests(), 1 + 4 * lifetime);
        let response = bounded(api.clone().oneshot(resource())).await.unwrap();
        assert_eq!(response.status(), 200);
    }

    redis.restart();
    until_store_answers(&store).await;
    let before = auth.token_requests();
    for lifetime in 1..=2 {
        clock.advance(LIFETIME);
        let tokens = all_valid(&caches).await;
        assert!(
            tokens.iter().all(|token| *token == tokens[0]),
            "shared again: {tokens:?}"
        );
        assert_eq!(auth.token_requests(), before + lifetime);
    }
    let key = token_key(&shared(&store));
    assert_eq!(redis.command(&[b"EXISTS", key.as_bytes()]), b":1\r\n");
    let response = bounded(api.clone().oneshot(resource())).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_slower_than_the_timeout_fails_open() {
    let redis = RedisServer::start();
    let proxy = DelayProxy::start(redis.addr()).await;
    let auth = auth_server().await;
    let clock = ManualClock::new();
    let store = RedisStore::open(&proxy.url())
        .unwrap()
        .response_timeout(Duration::from_secs(5));
    // The cache gives up on an operation after 150 ms.
    let caches: Vec<TokenCache> = (0..4)
        .map(|_| {
            replica(
                &auth,
                &clock,
                Some(shared(&store).timeout(Duration::from_millis(150))),
            )
        })
        .collect();
    all_valid(&caches).await;
    assert_eq!(auth.token_requests(), 1);

    proxy.set_delay(Duration::from_secs(3));
    clock.advance(LIFETIME);
    all_valid(&caches).await;
    assert_eq!(auth.token_requests(), 1 + 4);

    proxy.set_delay(Duration::ZERO);
    until_store_answers(&store).await;
    clock.advance(LIFETIME);
    let tokens = all_valid(&caches).await;
    assert!(tokens.iter().all(|token| *token == tokens[0]));
    assert_eq!(auth.token_requests(), 1 + 4 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_of_a_dead_replica_is_taken_over_after_its_ttl() {
    let (redis, auth, clock, store) = fixture(None).await;
    let key = token_key(&shared(&store));
    let lock = format!("{key}:lock");
    // A replica took the lock and died: its lock lives 300 ms more.
    let set = [b"SET", lock.as_bytes(), b"dead-replica", b"PX", b"300"];
    assert_eq!(redis.command(&set), b"+OK\r\n");
    let caches: Vec<TokenCache> = (0..3)
        .map(|_| replica(&auth, &clock, Some(shared(&store))))
        .collect();
    let tokens = all_valid(&caches).await;
    // One replica took the lock over and fetched; the others read its token.
    assert_eq!(auth.token_requests(), 1);
    assert!(tokens.iter().all(|token| *token == tokens[0]));
    assert_eq!(redis.command(&[b"EXISTS", lock.as_bytes()]), b":0\r\n");
    assert_eq!(redis.command(&[b"EXISTS", key.as_bytes()]), b":1\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_at_the_key_counts_as_absent_and_is_overwritten() {
    let (redis, auth, clock, store) = fixture(None).await;
    let key = token_key(&shared(&store));
    // Bytes of no format of ours, then a list (a value of another type).
    let garbage: [&[&[u8]]; 2] = [
        &[b"SET", key.as_bytes(), b"\x00\xffnot a token"],
        &[b"RPUSH", key.as_bytes(), b"not a token either"],
    ];
    for (round, write) in garbage.iter().enumerate() {
        assert_eq!(redis.command(&[b"DEL", key.as_bytes()])[0], b':');
        redis.command(write);
        let first = replica(&auth, &clock, Some(shared(&store)));
        all_valid(std::slice::from_ref(&first)).await;
        assert_eq!(auth.token_requests(), round + 1, "the garbage is not a token");
        assert_eq!(redis.command(&[b"TYPE", key.as_bytes()]), b"+string\r\n");
        assert!(!redis
            .command(&[b"GET", key.as_bytes()])
            .windows(11)
            .any(|w| w == b"not a token"));
        // Overwritten with the token: another replica reads it.
        let second = replica(&auth, &clock, Some(shared(&store)));
        all_valid(std::slice::from_ref(&second)).await;
        assert_eq!(auth.token_requests(), round + 1);
    }
}

#[cfg(feature = "encryption")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_value_in_redis_holds_no_token() {
    use tower_oauth2::store::EncryptionKey;

    let (redis, auth, clock, store) = fixture(None).await;
    let key = token_key(&shared(&store));
    let contains =
        |haystack: &[u8], needle: &str| haystack.windows(needle.len()).any(|w| w == needle.as_bytes());

    // Without encryption the token is in the value (what the sealed case must not show).
    let plain = all_valid(&[replica(&auth, &clock, Some(shared(&store)))]).await;
    assert!(contains(&redis.command(&[b"GET", key.as_bytes()]), &plain[0]));
    assert_eq!(redis.command(&[b"DEL", key.as_bytes()]), b":1\r\n");

    let secret = EncryptionKey::generate().unwrap();
    let sealed = || Some(shared(&store).encryption(secret.clone()));
    let tokens = all_valid(&[replica(&auth, &clock, sealed()), replica(&auth, &clock, sealed())]).await;
    assert_eq!(
        auth.token_requests(),
        2,
        "one for the plain replica, one for both sealed ones"
    );
    assert_eq!(tokens[0], tokens[1]);
    let raw = redis.command(&[b"GET", key.as_bytes()]);
    assert!(raw.len() > tokens[0].len(), "a value is stored");
    assert!(!contains(&raw, &tokens[0]), "the token is in Redis in clear");

    // Another key does not open it: counted as absent, fetched, and overwritten.
    let other = Some(shared(&store).encryption(EncryptionKey::generate().unwrap()));
    all_valid(&[replica(&auth, &clock, other)]).await;
    assert_eq!(auth.token_requests(), 3);
    assert_ne!(redis.command(&[b"GET", key.as_bytes()]), raw);
}
