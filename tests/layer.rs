//! OAuth2Layer over real loopback HTTP: single-flight, refresh-ahead, failure, cancellation,
//! tower's Timeout and Retry, 401 handling, invalidation.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use auth_server::{AuthServer, Scripted};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::task::JoinSet;
use tower::retry::RetryLayer;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{
    source_fn, ClientAuth, ClientCredentials, Error, ErrorCode, OAuth2Layer, Replayable, Token, TokenCache,
    TokenEndpoint,
};

type Body = Full<Bytes>;

fn endpoint(server: &AuthServer, clock: &ManualClock) -> TokenEndpoint {
    TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "secret"),
    )
    .clock(clock.clone())
    .build()
    .unwrap()
}

/// A cache over client credentials at `server`, on `clock`, without jitter, with a 10 s
/// minimum backoff.
fn cache(server: &AuthServer, clock: &ManualClock) -> TokenCache {
    TokenCache::builder(ClientCredentials::new(endpoint(server, clock)))
        .clock(clock.clone())
        .refresh_ahead(Duration::from_secs(30))
        .jitter(0.0)
        .backoff(Duration::from_secs(10), Duration::from_secs(60))
        .build()
}

/// `inner` behind an `OAuth2Layer` over `cache`.
fn layered<S>(cache: &TokenCache, inner: S) -> tower_oauth2::OAuth2<S> {
    OAuth2Layer::from_cache(cache.clone()).layer(inner)
}

fn http1() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn h2() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

fn get(server: &AuthServer) -> Request<Body> {
    Request::get(server.resource_url()).body(Body::default()).unwrap()
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

fn as_oauth2_error(err: &BoxError) -> &Error {
    err.downcast_ref::<Error>()
        .unwrap_or_else(|| panic!("expected a tower_oauth2::Error, got {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_on_an_empty_cache_cause_one_token_request() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    let service = layered(&cache, h2());

    let mut tasks = JoinSet::new();
    for _ in 0..10_000 {
        let service = service.clone();
        let request = get(&server);
        // The body is read to its end: a dropped HTTP/2 body resets its stream, and thousands
        // of resets make h2 close the connection.
        tasks.spawn(async move {
            let response = service.oneshot(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, BoxError>(status)
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), StatusCode::OK);
    }

    assert_eq!(server.token_requests(), 1);
    let issued = token_value(&cache);
    let sent = server.resource_tokens();
    assert_eq!(sent.len(), 10_000);
    assert!(sent.iter().all(|t| t.as_deref() == Some(issued.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_tokens_are_served_while_one_background_refresh_runs() {
    let server = AuthServer::start().await;
    server.set_expires_in(Some(100));
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    let service = layered(&cache, http1());
    cache.prefetch().await.unwrap();
    let old = token_value(&cache);
    // A 30 s window before `valid_until` (5 s leeway): stale from 65 s.
    assert_eq!(
        cache.stale_at().unwrap(),
        cache.expires_at().unwrap() - Duration::from_secs(35)
    );

    // The token endpoint is slow: 500 ms, and held besides until the requests are done, so
    // that a loaded machine cannot make the refresh look fast.
    server.set_token_delay(Duration::from_millis(500));
    server.hold_token_responses();
    clock.advance(Duration::from_secs(75));
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let request = get(&server);
        let service = service.clone();
        tasks.spawn(async move { service.oneshot(request).await.map(|r| r.status()) });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), StatusCode::OK);
    }
    // Every request is done while the refresh is still held at the endpoint: none waited.
    assert_eq!(token_value(&cache), old);
    eventually("the background refresh to reach the endpoint", || {
        server.token_requests() == 2
    })
    .await;
    assert!(server
        .resource_tokens()
        .iter()
        .all(|t| t.as_deref() == Some(old.as_str())));
    server.release_token_responses();

    eventually("the background refresh", || token_value(&cache) != old).await;
    assert_eq!(server.token_requests(), 2, "exactly one background refresh");
    let new = token_value(&cache);
    server.reset_counters();
    service.clone().oneshot(get(&server)).await.unwrap();
    assert_eq!(server.resource_tokens(), vec![Some(new)]);
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_valid_token_and_backs_off_after_expiry() {
    let server = AuthServer::start().await;
    server.set_expires_in(Some(100));
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    let service = layered(&cache, http1());
    cache.prefetch().await.unwrap();
    let old = token_value(&cache);

    // Stale, and the refresh fails: the old token keeps being served.
    clock.advance(Duration::from_secs(75));
    server.push_token_response(Scripted::json(500, json!({"error": "server_error"})));
    let response = service.clone().oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    eventually("the failed refresh", || {
        cache
            .last_error()
            .is_some_and(|e| e.status() == Some(StatusCode::INTERNAL_SERVER_ERROR))
    })
    .await;
    assert_eq!(server.token_requests(), 2);
    for _ in 0..5 {
        let response = service.clone().oneshot(get(&server)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(token_value(&cache), old);
    assert_eq!(server.token_requests(), 2, "backoff: no new attempt yet");
    assert_eq!(server.resource_requests(), 6);

    // Past the backoff, still stale: one more attempt, which fails too.
    clock.advance(Duration::from_secs(11));
    server.push_token_response(Scripted::json(503, json!({"error": "temporarily_unavailable"})));
    let response = service.clone().oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    eventually("the second failed refresh", || {
        cache
            .last_error()
            .is_some_and(|e| e.code() == Some(&ErrorCode::TemporarilyUnavailable))
    })
    .await;
    assert_eq!(server.token_requests(), 3);

    // Expired. The next attempt (after the backoff) fails: typed error, inner not called.
    clock.advance(Duration::from_secs(30));
    server.push_token_response(Scripted::json(401, json!({"error": "invalid_client"})));
    let err = service.clone().oneshot(get(&server)).await.unwrap_err();
    let err = as_oauth2_error(&err);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
    assert!(!err.is_transient());
    assert_eq!(server.token_requests(), 4);
    assert_eq!(server.resource_requests(), 7, "the inner service was not called");

    // During the backoff, requests fail at once without hitting the token endpoint.
    for _ in 0..10 {
        let err = service.clone().oneshot(get(&server)).await.unwrap_err();
        assert_eq!(as_oauth2_error(&err).code(), Some(&ErrorCode::InvalidClient));
    }
    assert_eq!(
        server.token_requests(),
        4,
        "attempts are throttled by the backoff"
    );
    assert_eq!(server.resource_requests(), 7);

    // After the backoff, a new attempt succeeds.
    clock.advance(Duration::from_secs(61));
    let response = service.clone().oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_requests(), 5);
    assert_ne!(token_value(&cache), old);
    assert!(cache.last_error().is_none(), "a success clears the last error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_request_that_started_a_refresh_does_not_cancel_it() {
    let server = AuthServer::start().await;
    server.hold_token_responses();
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    let service = layered(&cache, http1());

    let first = tokio::spawn(service.clone().oneshot(get(&server)));
    eventually("the token request", || server.token_requests() == 1).await;
    let mut others = JoinSet::new();
    for _ in 0..10 {
        others.spawn(service.clone().oneshot(get(&server)));
    }
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    // Had the abort cancelled the refresh, the others would have to start a second one.
    server.release_token_responses();
    while let Some(result) = others.join_next().await {
        assert_eq!(result.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.resource_requests(), 10);
}

/// Retries requests that failed with a transient error (timeouts included), a few times.
#[derive(Clone)]
struct RetryTransient(usize);

impl<B: Clone, Res> tower::retry::Policy<Request<B>, Res, BoxError> for RetryTransient {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _: &mut Request<B>, result: &mut Result<Res, BoxError>) -> Option<Self::Future> {
        let transient = match result {
            Ok(_) => false,
            Err(err) => {
                err.is::<tower::timeout::error::Elapsed>()
                    || err.downcast_ref::<Error>().is_some_and(Error::is_transient)
            }
        };
        if transient && self.0 > 0 {
            self.0 -= 1;
            Some(tokio::time::sleep(Duration::from_millis(20)))
        } else {
            None
        }
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        let mut copy = Request::new(request.body().clone());
        *copy.uri_mut() = request.uri().clone();
        *copy.method_mut() = request.method().clone();
        Some(copy)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_request_does_not_cancel_the_shared_refresh_under_timeout_and_retry() {
    let server = AuthServer::start().await;
    server.set_token_delay(Duration::from_millis(500));
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);

    // Timeout alone: the request gives up, the refresh goes on.
    let timeout_only = ServiceBuilder::new()
        .timeout(Duration::from_millis(100))
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(http1());
    let err = timeout_only.clone().oneshot(get(&server)).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "got {err}");
    eventually("the refresh to finish", || cache.token().is_some()).await;
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.resource_requests(), 0);

    // Retry above Timeout: attempts time out while the refresh runs, then one succeeds.
    cache.invalidate();
    let retrying = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryTransient(20)))
        .timeout(Duration::from_millis(100))
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(http1());
    let response = retrying.oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_requests(), 2, "the retries shared one refresh");
    assert_eq!(server.resource_requests(), 1);
}

/// A resource-server client whose requests carry either a replayable or a streaming body.
type MixedBody = Replayable<UnsyncBoxBody<Bytes, Infallible>>;

fn streaming_body() -> MixedBody {
    let frames = futures_util::stream::iter(vec![Ok::<_, Infallible>(http_body::Frame::data(
        Bytes::from_static(b"streamed"),
    ))]);
    Replayable::streaming(StreamBody::new(frames).boxed_unsync())
}

/// A small body, buffered so that it can be sent again.
async fn replayable_body(bytes: &'static [u8]) -> MixedBody {
    Replayable::buffer(Full::new(Bytes::from_static(bytes)).boxed_unsync(), 1024)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_invalidates_that_token_and_a_replayable_request_is_retried_once() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    let client: Client<HttpConnector, MixedBody> = Client::builder(TokioExecutor::new()).build_http();
    let service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()).with_retry())
        .service(client);
    cache.prefetch().await.unwrap();
    let first = token_value(&cache);

    // Replayable body: 401 with the revoked token, then one retry with a new token.
    server.revoke_access_token(&first);
    let request = Request::post(server.resource_url())
        .body(replayable_body(b"{}").await)
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second = token_value(&cache);
    assert_ne!(first, second);
    assert_eq!(
        server.resource_tokens(),
        vec![Some(first.clone()), Some(second.clone())]
    );
    assert_eq!(server.token_requests(), 2);

    // Streaming body: 401, the token is invalidated, no retry.
    server.revoke_access_token(&second);
    server.reset_counters();
    let request = Request::post(server.resource_url())
        .body(streaming_body())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.resource_requests(),
        1,
        "a streaming body is never sent twice"
    );
    assert!(cache.token().is_none(), "the rejected token was invalidated");

    // A replayable request whose retry is rejected too is not retried a second time.
    server.reset_counters();
    server.push_token_response(Scripted::json(
        200,
        json!({"access_token": "not-known-to-the-resource-server", "token_type": "Bearer", "expires_in": 3600}),
    ));
    server.push_token_response(Scripted::json(
        200,
        json!({"access_token": "also-unknown", "token_type": "Bearer", "expires_in": 3600}),
    ));
    let request = Request::get(server.resource_url())
        .body(replayable_body(b"").await)
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.resource_requests(), 2, "retried exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_401_never_invalidates_a_newer_token() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    // The inner service holds the first request until the test releases it.
    // `arrived` tells the test the held request has its header and sits at the gate.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let arrived = Arc::new(tokio::sync::Notify::new());
    let client = http1();
    let inner = tower::service_fn({
        let gate = gate.clone();
        let arrived = arrived.clone();
        move |request: Request<Body>| {
            let gate = gate.clone();
            let arrived = arrived.clone();
            let client = client.clone();
            async move {
                if request.headers().contains_key("x-hold") {
                    arrived.notify_one();
                    let _permit = gate.acquire().await;
                }
                client.request(request).await
            }
        }
    });
    let service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()).invalidate_on_401(true))
        .service(inner);
    cache.prefetch().await.unwrap();
    let first = token_value(&cache);

    let mut held = get(&server);
    held.headers_mut().insert("x-hold", "1".parse().unwrap());
    let held = tokio::spawn(service.clone().oneshot(held));
    arrived.notified().await;
    server.revoke_access_token(&first);
    let second = cache.refresh().await.unwrap();
    gate.add_permits(1);
    let response = held.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.resource_tokens(), vec![Some(first)]);
    assert_eq!(
        token_value(&cache),
        second.access_token().expose(),
        "the newer token survived the late 401"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_is_ignored_unless_enabled_and_unless_it_says_invalid_token() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    cache.prefetch().await.unwrap();
    let token = token_value(&cache);
    server.revoke_access_token(&token);

    // Off by default.
    let default = layered(&cache, http1());
    let response = default.oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(token_value(&cache), token);

    // On, but the 401 has no invalid_token challenge.
    let plain_401 = tower::service_fn(|_request: Request<Body>| async {
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            "Bearer realm=\"api\"".parse().unwrap(),
        );
        Ok::<_, Infallible>(response)
    });
    let service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()).invalidate_on_401(true))
        .service(plain_401);
    let response = service.oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(token_value(&cache), token);
}

#[tokio::test]
async fn a_request_with_its_own_authorization_header_is_left_alone() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    let service = layered(&cache, http1());
    let mut request = get(&server);
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, "Bearer mine".parse().unwrap());
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.resource_tokens(), vec![Some("mine".to_owned())]);
    assert_eq!(server.token_requests(), 0);
}

/// A source that counts its calls and returns tokens with the given lifetime.
fn counting_source(
    clock: &ManualClock,
    lifetime: Option<Duration>,
) -> (impl tower_oauth2::TokenSource + 'static + use<>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let clock = clock.clone();
    let source = source_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let now = tower_oauth2::clock::Clock::now(&clock);
        async move {
            let token = Token::bearer(format!("token-{n}"));
            Ok(match lifetime {
                Some(lifetime) => token.with_expires_at(now + lifetime),
                None => token,
            })
        }
    });
    (source, calls)
}

#[tokio::test]
async fn a_token_without_expiry_is_used_until_invalidated() {
    let clock = ManualClock::new();
    let (source, calls) = counting_source(&clock, None);
    let cache = TokenCache::builder(source).clock(clock.clone()).build();
    let mut service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service_fn(|request: Request<()>| async move {
            Ok::<_, Infallible>(Response::new(
                request.headers()[http::header::AUTHORIZATION].clone(),
            ))
        });
    let auth = service
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap();
    assert_eq!(auth.body(), "Bearer token-1");
    assert!(auth.body().is_sensitive(), "the header is marked sensitive");
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    let auth = service
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap();
    assert_eq!(auth.body(), "Bearer token-1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    cache.invalidate();
    let auth = service
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap();
    assert_eq!(auth.body(), "Bearer token-2");
}

#[tokio::test]
async fn the_refresh_ahead_window_is_clamped_and_jittered() {
    let clock = ManualClock::new();
    // A 60 s window on a 59 s token: clamped to half the lifetime, so the token is fresh first.
    let (source, _) = counting_source(&clock, Some(Duration::from_secs(59)));
    let cache = TokenCache::builder(source)
        .clock(clock.clone())
        .refresh_ahead(Duration::from_secs(60))
        .jitter(0.0)
        .leeway(Duration::ZERO)
        .build();
    cache.prefetch().await.unwrap();
    let expires_at = cache.expires_at().unwrap();
    assert_eq!(
        expires_at,
        tower_oauth2::clock::Clock::now(&clock) + Duration::from_secs(59)
    );
    assert_eq!(
        cache.stale_at().unwrap(),
        expires_at - Duration::from_millis(29_500)
    );

    // Default settings: 60 s window plus up to 20 % jitter, different per cache.
    let mut windows = Vec::new();
    for _ in 0..20 {
        let (source, _) = counting_source(&clock, Some(Duration::from_secs(3600)));
        let cache = TokenCache::builder(source).clock(clock.clone()).build();
        cache.prefetch().await.unwrap();
        let window = cache
            .valid_until()
            .unwrap()
            .duration_since(cache.stale_at().unwrap())
            .unwrap();
        assert!(
            window >= Duration::from_secs(60) && window <= Duration::from_secs(72),
            "{window:?}"
        );
        windows.push(window);
    }
    windows.sort();
    windows.dedup();
    assert!(windows.len() > 1, "jitter spreads refreshes");
}

#[tokio::test]
async fn the_cache_handle_reads_refreshes_and_invalidates() {
    let clock = ManualClock::new();
    let (source, calls) = counting_source(&clock, Some(Duration::from_secs(3600)));
    let cache = TokenCache::builder(source).clock(clock.clone()).build();
    assert!(cache.token().is_none());
    assert!(cache.expires_at().is_none());
    cache.prefetch().await.unwrap();
    cache.prefetch().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "prefetch keeps a valid token");
    assert_eq!(
        cache.expires_at(),
        Some(tower_oauth2::clock::Clock::now(&clock) + Duration::from_secs(3600))
    );
    let refreshed = cache.refresh().await.unwrap();
    assert_eq!(refreshed.access_token().expose(), "token-2");
    assert_eq!(token_value(&cache), "token-2");
    cache.invalidate();
    assert!(cache.token().is_none());
    cache.prefetch().await.unwrap();
    assert_eq!(token_value(&cache), "token-3");
}

/// A default-settings cache over client credentials for client `svc` with `secret`.
fn basic_auth_cache(server: &AuthServer, secret: &str) -> TokenCache {
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::client_secret_basic("svc", secret))
        .clock(clock.clone())
        .build()
        .unwrap();
    TokenCache::builder(ClientCredentials::new(endpoint))
        .clock(clock)
        .build()
}

#[tokio::test]
async fn prefetch_fails_fast_on_bad_credentials() {
    let server = AuthServer::start().await;
    server.add_client("svc", Some("right"), auth_server::ClientAuthMethod::Basic);
    let cache = basic_auth_cache(&server, "not-the-secret-42");
    let err = cache.prefetch().await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
    assert!(!err.is_transient());
    assert!(!err.to_string().contains("not-the-secret-42"));
    assert!(!format!("{err:?}").contains("not-the-secret-42"));
}

#[test]
fn the_layer_and_its_futures_are_send_and_the_service_is_clone() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_clone<T: Clone>(_: &T) {}
    let clock = ManualClock::new();
    let (source, _) = counting_source(&clock, None);
    let mut service = ServiceBuilder::new()
        .layer(OAuth2Layer::new(source))
        .service(http1());
    assert_send(&service);
    assert_clone(&service);
    let request = Request::get("http://127.0.0.1:1/").body(Body::default()).unwrap();
    let future = service.call(request);
    assert_send(&future);
    let _ = SystemTime::now();
}
