//! The cache under faults (issue 9): runtimes that shut down, lost responses after refresh-token
//! rotation, outages, expiry leeway, jitter within the clamp, permanent errors and
//! `Retry-After`. Every test talks HTTP over loopback to the in-process authorization server;
//! time is a `ManualClock`, so nothing sleeps for long.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_server::{AuthServer, ClientAuthMethod, Scripted};
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::{BoxError, Layer, ServiceExt};
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{
    ClientAuth, ClientCredentials, Error, ErrorCode, LostResponseRetry, OAuth2, OAuth2Layer, RefreshToken,
    TokenCache, TokenCacheBuilder, TokenEndpoint,
};

type Body = Full<Bytes>;
type Service = OAuth2<Client<HttpConnector, Body>>;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn endpoint(server: &AuthServer, clock: &ManualClock) -> TokenEndpoint {
    TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "secret"),
    )
    .clock(clock.clone())
    .build()
    .unwrap()
}

/// A cache builder over client credentials at `server` on `clock`, without jitter.
fn builder(server: &AuthServer, clock: &ManualClock) -> TokenCacheBuilder {
    TokenCache::builder(ClientCredentials::new(endpoint(server, clock)))
        .clock(clock.clone())
        .jitter(0.0)
}

fn layered(cache: &TokenCache) -> Service {
    OAuth2Layer::from_cache(cache.clone()).layer(Client::builder(TokioExecutor::new()).build_http())
}

fn get(server: &AuthServer) -> Request<Body> {
    Request::get(server.resource_url()).body(Body::default()).unwrap()
}

/// Sends one request through `service`: the resource server's status, or the layer's error.
async fn send(service: &Service, server: &AuthServer) -> Result<StatusCode, BoxError> {
    service.clone().oneshot(get(server)).await.map(|r| r.status())
}

fn as_error(err: &BoxError) -> &Error {
    err.downcast_ref::<Error>()
        .unwrap_or_else(|| panic!("expected a tower_oauth2::Error, got {err}"))
}

fn token_value(cache: &TokenCache) -> String {
    cache.token().unwrap().access_token().expose().to_owned()
}

/// Waits (in real time, bounded) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Runs `test` for at most 30 s (a cache stuck on a dead runtime must fail the test, not hang it).
async fn bounded<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(secs(30), test)
        .await
        .expect("the cache is stuck: still waiting after 30 s")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. A cache outlives the runtime that ran its refresh.

#[test]
fn a_cache_survives_the_runtime_that_ran_its_refresh() {
    // The server lives on a runtime of its own for the whole test.
    let server_rt = runtime();
    let server = server_rt.block_on(AuthServer::start());
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();

    // Runtime 1 starts a refresh, which the server holds, then shuts down mid-refresh.
    server.hold_token_responses();
    let rt1 = runtime();
    rt1.block_on(async {
        let waiter = tokio::spawn({
            let cache = cache.clone();
            async move { cache.prefetch().await }
        });
        eventually("the token request", || server.token_requests() == 1).await;
        drop(waiter);
    });
    rt1.shutdown_timeout(secs(5));
    server.release_token_responses();

    // Runtime 2: a new refresh starts on it, and requests go through.
    let rt2 = runtime();
    rt2.block_on(bounded(async {
        cache
            .prefetch()
            .await
            .expect("a refresh lost with its runtime is forgotten");
        let service = layered(&cache);
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
        assert!(invalidate_and_refresh_works(&cache).await);
    }));
    let first = token_value(&cache);
    rt2.shutdown_timeout(secs(5));

    // Runtime 3, after runtime 2 ran a refresh to its end and shut down: a stale token is
    // refreshed in the background on runtime 3, an expired one is waited for.
    let rt3 = runtime();
    rt3.block_on(bounded(async {
        let service = layered(&cache);
        clock.advance(secs(3600 - 30));
        let before = server.token_requests();
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
        eventually("the background refresh", || token_value(&cache) != first).await;
        assert_eq!(server.token_requests(), before + 1);
        clock.advance(secs(3600));
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
        assert_eq!(server.token_requests(), before + 2);
    }));
    rt3.shutdown_timeout(secs(5));
    drop(server_rt);
}

/// A runtime is shut down while the refresh it spawned has not even started: the cache
/// forgets that refresh too, and the waiter on another runtime starts a new one.
#[test]
fn a_refresh_that_never_ran_is_forgotten() {
    let server_rt = runtime();
    let server = server_rt.block_on(AuthServer::start());
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();

    let rt1 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Polled once, `refresh()` spawns its task on rt1 and is then dropped; rt1 never runs the
    // task, and dropping rt1 drops it.
    rt1.block_on(async {
        assert!(cache.refresh().now_or_never().is_none());
    });
    drop(rt1);
    assert_eq!(server.token_requests(), 0);
    let rt2 = runtime();
    rt2.block_on(bounded(async {
        let token = cache.refresh().await.expect("a new refresh on this runtime");
        assert!(!token.access_token().expose().is_empty());
    }));
    assert_eq!(server.token_requests(), 1);
    drop(server_rt);
}

/// `invalidate()` then `refresh()` gives a new token.
async fn invalidate_and_refresh_works(cache: &TokenCache) -> bool {
    let before = token_value(cache);
    cache.invalidate();
    cache
        .refresh()
        .await
        .is_ok_and(|t| t.access_token().expose() != before)
}

// ---------------------------------------------------------------------------------------------
// 2. A lost response after refresh-token rotation: the grant is lost for good, once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_rotation_response_loses_the_grant_once_and_new_credentials_restore_it() {
    let server = AuthServer::start().await;
    server.add_client("app", None, ClientAuthMethod::None);
    server.set_reuse_detection(true);
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("app"))
        .clock(clock.clone())
        .build()
        .unwrap();
    let lost_calls = Arc::new(AtomicUsize::new(0));
    let source = Arc::new(
        RefreshToken::new(endpoint, server.issue_refresh_token("app")).on_grant_lost({
            let lost_calls = lost_calls.clone();
            move |err| {
                let lost_calls = lost_calls.clone();
                async move {
                    assert!(err.is_grant_lost());
                    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
                    lost_calls.fetch_add(1, Ordering::SeqCst);
                }
            }
        }),
    );
    let cache = TokenCache::builder(source.clone())
        .clock(clock.clone())
        .jitter(0.0)
        .build();
    let service = layered(&cache);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 1);

    // Stale: the background refresh is acted on (the refresh token rotated) but its response
    // is lost. The valid token keeps being served.
    server.drop_after_acting(1);
    clock.advance(secs(3600 - 30));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    eventually("the lost refresh", || cache.last_error().is_some()).await;
    assert!(cache.last_error().unwrap().is_transient());
    assert_eq!(server.token_requests(), 2);

    // The retry sends the consumed refresh token: the server revokes the grant.
    clock.advance(secs(2));
    let _ = send(&service, &server).await;
    eventually("the lost grant", || {
        cache.last_error().is_some_and(|e| e.is_grant_lost())
    })
    .await;
    assert_eq!(server.token_requests(), 3);
    assert_eq!(lost_calls.load(Ordering::SeqCst), 1);
    assert!(source.current_refresh_token().await.is_none());

    // The revoked token is dropped; requests fail at once with the typed error, and the dead
    // refresh token is never sent again, however much time passes.
    assert!(cache.token().is_none(), "the revoked token was dropped");
    let resource_before = server.resource_requests();
    for _ in 0..20 {
        let err = send(&service, &server).await.unwrap_err();
        let err = as_error(&err);
        assert!(err.is_grant_lost(), "{err}");
        assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
        assert!(!err.is_transient());
        clock.advance(secs(61));
    }
    assert_eq!(server.token_requests(), 3, "no token request with a lost grant");
    assert_eq!(
        server.resource_requests(),
        resource_before,
        "the inner service was not called"
    );
    assert_eq!(
        lost_calls.load(Ordering::SeqCst),
        1,
        "the application is told once"
    );

    // The application logs in again and hands over the new refresh token: requests work.
    source.set_refresh_token(server.issue_refresh_token("app"));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 4);
    assert!(cache.last_error().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_expiry_retry_keeps_the_token_in_use_after_a_lost_response() {
    let server = AuthServer::start().await;
    server.set_reuse_detection(true);
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("app"))
        .clock(clock.clone())
        .build()
        .unwrap();
    let source = RefreshToken::new(endpoint, server.issue_refresh_token("app"));
    let cache = TokenCache::builder(source)
        .clock(clock.clone())
        .jitter(0.0)
        .lost_response_retry(LostResponseRetry::NearExpiry)
        .build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    let valid_until = cache.valid_until().unwrap();

    server.drop_after_acting(1);
    clock.advance(secs(3600 - 30));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    eventually("the lost refresh", || cache.last_error().is_some()).await;
    let now = clock.now();
    // No new attempt in the usual backoff: the token stays in use until shortly before
    // `valid_until`.
    while clock.now() + secs(2) < valid_until {
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
        clock.advance(secs(1));
    }
    assert_eq!(server.token_requests(), 2);
    assert!(clock.now().duration_since(now).unwrap() >= secs(20));
    clock.advance(secs(2));
    let _ = send(&service, &server).await;
    eventually("the retry", || server.token_requests() == 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_backs_off_to_the_maximum_at_once() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();

    clock.advance(secs(3600 - 30));
    server.set_token_outage(Some(Scripted::json(401, json!({"error": "invalid_client"}))));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    eventually("the failed refresh", || cache.last_error().is_some()).await;
    assert_eq!(server.token_requests(), 2);
    // The default backoff would retry after 1 s, 2 s, 4 s...; a permanent error waits for
    // the maximum (60 s, less up to half), capped by the token's `valid_until` (25 s away).
    for _ in 0..20 {
        clock.advance(secs(1));
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        server.token_requests(),
        2,
        "no retry of a permanent error within 20 s"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. After an outage, requests work as soon as the server is back.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_back_before_expiry_causes_no_failure() {
    let server = AuthServer::start().await;
    server.set_expires_in(Some(1000));
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).refresh_ahead(secs(600)).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    // valid_until = 995 s (leeway 5 s), stale from 497.5 s (the window is clamped to half).

    // The server is down from the stale time until 994 s; requests keep succeeding with the
    // old token while the backoff grows to its maximum.
    server.set_token_outage(Some(Scripted::json(
        503,
        json!({"error": "temporarily_unavailable"}),
    )));
    clock.advance(secs(495));
    while clock.now() < cache.valid_until().unwrap() - secs(1) {
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
        tokio::task::yield_now().await;
        clock.advance(secs(1));
    }
    eventually("failed refreshes", || cache.last_error().is_some()).await;
    server.set_token_outage(None);

    // Back in time: from now on, not one request fails.
    for second in 994..1100 {
        let result = send(&service, &server).await;
        assert!(
            matches!(result, Ok(StatusCode::OK)),
            "request at {second} s failed: {result:?}"
        );
        clock.advance(secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_the_backoff_stays_short() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    // No patience: each request sees one attempt or the backoff, nothing else.
    let cache = builder(&server, &clock).wait_for_retry(Duration::ZERO).build();
    let service = layered(&cache);
    server.set_token_outage(Some(Scripted::json(
        503,
        json!({"error": "temporarily_unavailable"}),
    )));
    for attempt in 1..=10 {
        let err = send(&service, &server).await.unwrap_err();
        assert_eq!(as_error(&err).code(), Some(&ErrorCode::TemporarilyUnavailable));
        assert_eq!(server.token_requests(), attempt, "one attempt per 5 s");
        clock.advance(secs(5));
    }
    server.set_token_outage(None);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
}

/// With the default patience, a request waits through short backoffs: a token endpoint
/// that fails twice in a row fails no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_through_brief_failures() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    server.push_token_response(Scripted::json(503, json!({"error": "temporarily_unavailable"})));
    server.push_token_response(Scripted::json(500, json!({"error": "server_error"})));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 3);
    // A permanent error is not waited through.
    cache.invalidate();
    server.push_token_response(Scripted::json(401, json!({"error": "invalid_client"})));
    let err = send(&service, &server).await.unwrap_err();
    assert_eq!(as_error(&err).code(), Some(&ErrorCode::InvalidClient));
    assert_eq!(server.token_requests(), 4);
}

// ---------------------------------------------------------------------------------------------
// 4. Expiry leeway.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_not_sent_in_their_last_moments() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();

    // A 2 s token (the server rounds its expiry down to the second): not sent from 1 s on.
    server.set_expires_in(Some(2));
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    let issued = clock.now();
    assert_eq!(cache.valid_until(), Some(issued + secs(1)));
    let first = token_value(&cache);
    clock.advance(Duration::from_millis(1000));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(
        server.token_requests(),
        2,
        "a new token was fetched, not the old one sent"
    );
    let sent = server.resource_tokens();
    assert_ne!(sent.last().unwrap().as_deref(), Some(first.as_str()));

    // An hour-long token: the default leeway of 5 s.
    server.set_expires_in(Some(3600));
    let cache = builder(&server, &clock).build();
    cache.prefetch().await.unwrap();
    assert_eq!(cache.valid_until(), Some(cache.expires_at().unwrap() - secs(5)));

    // Configurable, and zero trusts the expiry to the instant.
    let cache = builder(&server, &clock).leeway(Duration::ZERO).build();
    cache.prefetch().await.unwrap();
    assert_eq!(cache.valid_until(), cache.expires_at());
    let cache = builder(&server, &clock).leeway(secs(10)).build();
    cache.prefetch().await.unwrap();
    assert_eq!(cache.valid_until(), Some(cache.expires_at().unwrap() - secs(10)));
}

// ---------------------------------------------------------------------------------------------
// 5. The jittered window stays within the clamp.

#[tokio::test]
async fn jitter_never_breaks_the_refresh_window_clamp() {
    let server = AuthServer::start().await;
    server.set_expires_in(Some(59));
    let clock = ManualClock::new();
    for _ in 0..50 {
        let cache = TokenCache::builder(ClientCredentials::new(endpoint(&server, &clock)))
            .clock(clock.clone())
            .refresh_ahead(secs(60))
            .jitter(1.0)
            .leeway(Duration::ZERO)
            .build();
        cache.prefetch().await.unwrap();
        let issued = clock.now();
        let fresh_for = cache.stale_at().unwrap().duration_since(issued).unwrap();
        assert!(
            fresh_for >= Duration::from_millis(29_500),
            "stale after {fresh_for:?} of a 59 s token: the window is more than half its lifetime"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Retry-After is the floor of the next attempt.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_the_floor_of_the_next_attempt() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();

    // Stale; the server asks for 20 s (delta-seconds) where the backoff would wait 1 s.
    clock.advance(secs(3600 - 60));
    server.push_token_response(
        Scripted::json(503, json!({"error": "temporarily_unavailable"})).with_header("retry-after", "20"),
    );
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    eventually("the failed refresh", || cache.last_error().is_some()).await;
    assert_eq!(cache.last_error().unwrap().retry_after(), Some(secs(20)));
    for _ in 0..19 {
        clock.advance(secs(1));
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.token_requests(), 2, "no attempt before Retry-After");

    // 429 with an HTTP-date 30 s ahead.
    clock.advance(secs(2));
    let date = httpdate::fmt_http_date(clock.now() + secs(30));
    server.push_token_response(
        Scripted::json(429, json!({"error": "slow_down"})).with_header("retry-after", &date),
    );
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    eventually("the second failed refresh", || {
        server.token_requests() == 3
            && cache
                .last_error()
                .is_some_and(|e| e.status() == Some(StatusCode::TOO_MANY_REQUESTS))
    })
    .await;
    for _ in 0..29 {
        clock.advance(secs(1));
        assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        server.token_requests(),
        3,
        "no attempt before the Retry-After date"
    );
    clock.advance(secs(2));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    eventually("the refresh after Retry-After", || server.token_requests() == 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_capped_at_the_maximum_backoff() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).backoff(secs(1), secs(30)).build();
    let service = layered(&cache);
    server.push_token_response(
        Scripted::json(503, json!({"error": "temporarily_unavailable"})).with_header("retry-after", "86400"),
    );
    let err = send(&service, &server).await.unwrap_err();
    assert_eq!(as_error(&err).retry_after(), Some(secs(86400)));
    clock.advance(secs(19));
    assert!(
        send(&service, &server).await.is_err(),
        "11 s before the capped Retry-After ends: fails at once"
    );
    assert_eq!(server.token_requests(), 1);
    clock.advance(secs(12));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 2);
}

/// A `503` with `Retry-After: 1` just before the token's `valid_until`: requests that find no
/// valid token wait the moment until the next attempt instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_an_attempt_due_soon_instead_of_failing() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    let valid_until = cache.valid_until().unwrap();
    let old = token_value(&cache);

    // The background refresh, half a second before `valid_until`, is told to come back in 1 s.
    clock.advance(valid_until.duration_since(clock.now()).unwrap() - Duration::from_millis(500));
    server.push_token_response(
        Scripted::json(503, json!({"error": "temporarily_unavailable"})).with_header("retry-after", "1"),
    );
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    eventually("the failed refresh", || cache.last_error().is_some()).await;

    // Past `valid_until`, 0.4 s before the next attempt: the request waits for it.
    clock.advance(Duration::from_millis(600));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 3);
    assert_ne!(token_value(&cache), old);

    // An attempt due later than `wait_for_retry` is not waited for: the error comes at once.
    server.push_token_response(
        Scripted::json(503, json!({"error": "temporarily_unavailable"})).with_header("retry-after", "30"),
    );
    cache.invalidate();
    let err = send(&service, &server).await.unwrap_err();
    assert_eq!(as_error(&err).retry_after(), Some(secs(30)));
    let err = send(&service, &server).await.unwrap_err();
    assert_eq!(as_error(&err).code(), Some(&ErrorCode::TemporarilyUnavailable));
    assert_eq!(server.token_requests(), 4, "no attempt within Retry-After");
}

/// Settings at `Duration::MAX` are cut to a year: no overflow, no panic, on any failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_settings_do_not_overflow() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock)
        .refresh_ahead(Duration::MAX)
        .leeway(Duration::MAX)
        .backoff(Duration::MAX, Duration::MAX)
        .backoff_without_token(Duration::MAX)
        .wait_for_retry(Duration::MAX)
        .jitter(1.0)
        .build();
    let service = layered(&cache);
    server.set_token_outage(Some(Scripted::json(
        503,
        json!({"error": "temporarily_unavailable"}),
    )));
    let err = send(&service, &server).await.unwrap_err();
    assert_eq!(as_error(&err).code(), Some(&ErrorCode::TemporarilyUnavailable));
    server.set_token_outage(Some(Scripted::json(401, json!({"error": "invalid_client"}))));
    clock.advance(secs(400 * 24 * 3600));
    let err = send(&service, &server).await.unwrap_err();
    assert_eq!(as_error(&err).code(), Some(&ErrorCode::InvalidClient));
    server.set_token_outage(None);
    clock.advance(secs(400 * 24 * 3600));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
}
