//! `RedisStore` against a real `redis-server` (tests/support/redis.rs): the trait's semantics
//! (values, TTLs, the lock), garbage at a key, an outage and a restart, a Redis slower than
//! the store's timeout.

#![cfg(feature = "redis")]

use std::time::Duration;

use tower_oauth2::store::{RedisStore, StoreError, TokenStore};

#[path = "support/redis.rs"]
mod redis_server;
#[path = "support/util.rs"]
mod util;

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
async fn a_value_of_another_type_is_an_error_not_a_panic_and_is_replaced_by_set() {
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
    let err = expect_store_err(bounded(store.get(KEY)).await);
    let text = format!("{err} {err:?}");
    assert!(text.contains("WRONGTYPE"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    // The lock's name is taken (by a list): not this owner's lock.
    assert!(!bounded(store.try_lock(KEY, "owner", Duration::from_secs(10)))
        .await
        .unwrap());
    let err = expect_store_err(bounded(store.unlock(KEY, "owner")).await);
    assert!(!format!("{err} {err:?}").contains("secret"), "{err}");
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
