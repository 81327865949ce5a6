//! Every documented stack (README, examples) recovers from a transient failure of the token
//! endpoint, over real loopback HTTP: the authorization server answers `503` with
//! `Retry-After` for a while, then issues tokens again, and the request succeeds.
//!
//! The outages are longer than one request's own patience (the cache's `wait_for_retry`,
//! 10 s), so that they take the retry layer to survive; the clock is a `ManualClock` that
//! jumps forward when the cache or the retry policy sleeps on it, so nothing sleeps for real.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::time::Duration;

use auth_server::{AuthServer, Scripted};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::retry::{Policy, RetryLayer};
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{
    ClientAuth, ClientCredentials, Error, OAuth2Layer, Replayable, TokenCache, TokenEndpoint,
};

/// Bounds every test: a stuck retry loop fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(30);

fn cache(server: &AuthServer, clock: &ManualClock) -> TokenCache {
    server.add_client("svc", Some("secret"), auth_server::ClientAuthMethod::Basic);
    let endpoint = TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "secret"),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    TokenCache::builder(ClientCredentials::new(endpoint).scope("orders:read"))
        .clock(clock.clone())
        .build()
}

/// `n` answers `503 temporarily_unavailable` with `Retry-After: secs` ahead of the normal ones.
fn outage(server: &AuthServer, n: usize, secs: u64) {
    for _ in 0..n {
        server.push_token_response(
            Scripted::json(503, json!({"error": "temporarily_unavailable"}))
                .with_header("retry-after", &secs.to_string()),
        );
    }
}

fn hyper_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The README's and examples/hyper_client.rs's stack: a timeout for the whole request, the
/// token layer with its retries, a timeout per call, hyper-util's client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hyper_stack_recovers_from_a_token_endpoint_outage() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    // Three answers 20 s apart: 40 s of outage, twice what one request waits on its own.
    outage(&server, 3, 20);
    let client = ServiceBuilder::new()
        .timeout(Duration::from_secs(60))
        .layer(OAuth2Layer::from_cache(cache.clone()).with_retry())
        .timeout(Duration::from_secs(10))
        .service(hyper_client());
    let request = Request::post(server.resource_url())
        .body(Full::from("{}"))
        .unwrap();
    let response = tokio::time::timeout(LIMIT, client.oneshot(request))
        .await
        .expect("the request ends")
        .expect("the request succeeds once the server is back");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server.token_requests(),
        4,
        "three failed token requests, then one token"
    );
    assert_eq!(
        server.resource_requests(),
        1,
        "the API was called once, with the token"
    );
    assert!(
        clock.elapsed() >= Duration::from_secs(40),
        "every attempt honoured Retry-After: {:?}",
        clock.elapsed()
    );
}

/// What the README's stack replaces: tower's `RetryLayer` above the token layer with a policy
/// that retries transient token errors at once. Each retry lands inside the cache's backoff and
/// gets the stored error back, so the retry budget is spent while the server is still down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_retry_layer_spends_its_budget_inside_the_backoff() {
    #[derive(Clone)]
    struct RetryTransientAtOnce(usize);
    impl<Res> Policy<Request<Full<Bytes>>, Res, BoxError> for RetryTransientAtOnce {
        type Future = std::future::Ready<()>;
        fn retry(
            &mut self,
            _: &mut Request<Full<Bytes>>,
            result: &mut Result<Res, BoxError>,
        ) -> Option<Self::Future> {
            let err = result.as_ref().err()?.downcast_ref::<Error>()?;
            (err.is_transient() && self.0 > 0).then(|| {
                self.0 -= 1;
                std::future::ready(())
            })
        }
        fn clone_request(&mut self, request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
            let mut copy = Request::new(request.body().clone());
            *copy.uri_mut() = request.uri().clone();
            Some(copy)
        }
    }
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    outage(&server, 3, 20);
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryTransientAtOnce(3)))
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(hyper_client());
    let request = Request::get(server.resource_url()).body(Full::default()).unwrap();
    let err = tokio::time::timeout(LIMIT, client.oneshot(request))
        .await
        .expect("the request ends")
        .expect_err("the retries get the stored error");
    assert!(
        err.downcast_ref::<Error>().is_some_and(Error::is_transient),
        "{err}"
    );
    assert_eq!(server.token_requests(), 1, "no retry reached the token endpoint");
}

/// The token layer alone (examples/quickstart.rs): an outage shorter than a request's patience
/// is waited out by the request itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_layer_waits_out_a_short_outage() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    outage(&server, 2, 3);
    let client = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(hyper_client());
    let request = Request::get(server.resource_url()).body(Full::default()).unwrap();
    let response = tokio::time::timeout(LIMIT, client.oneshot(request))
        .await
        .expect("the request ends")
        .expect("the request succeeds");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_requests(), 3);
}

/// `with_retry` gives up when the next token attempt is further away than `max_wait`, with the
/// token error, and never retries a permanent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_layer_gives_up_on_long_waits_and_permanent_errors() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    outage(&server, 1, 45);
    let client = ServiceBuilder::new()
        .layer(
            OAuth2Layer::from_cache(cache.clone())
                .with_retry()
                .max_wait(Duration::from_secs(30)),
        )
        .service(hyper_client());
    let request = || Request::get(server.resource_url()).body(Full::default()).unwrap();
    let err = tokio::time::timeout(LIMIT, client.clone().oneshot(request()))
        .await
        .expect("the request ends")
        .expect_err("45 s is more than the 30 s the layer may wait");
    let err = Error::from(err);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(45)));
    assert_eq!(server.token_requests(), 1);

    // A permanent error is not retried.
    clock.advance(Duration::from_secs(60));
    server.push_token_response(Scripted::json(401, json!({"error": "invalid_client"})));
    let err = tokio::time::timeout(LIMIT, client.oneshot(request()))
        .await
        .expect("the request ends")
        .expect_err("invalid_client");
    assert!(!Error::from(err).is_transient());
    assert_eq!(server.token_requests(), 2, "one attempt, no retry");
}

/// A boxed body, buffered by `Replayable`, is retried after a transient token error and after
/// a 401; one larger than the limit is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_bodies_are_retried_and_large_ones_are_not() {
    type Body = Replayable<UnsyncBoxBody<Bytes, std::convert::Infallible>>;
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = cache(&server, &clock);
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    let client = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()).with_retry())
        .service(client);
    let body = |bytes: &'static [u8]| Full::new(Bytes::from_static(bytes)).boxed_unsync();

    outage(&server, 2, 20);
    let request = Request::post(server.resource_url())
        .body(Replayable::buffer(body(b"small"), 16).await.unwrap())
        .unwrap();
    let response = tokio::time::timeout(LIMIT, client.clone().oneshot(request))
        .await
        .expect("the request ends")
        .expect("retried after the outage");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_requests(), 3);

    // Too large to keep: the outage fails the request, the token endpoint is asked once.
    server.reset_counters();
    cache.invalidate();
    outage(&server, 1, 20);
    let request = Request::post(server.resource_url())
        .body(
            Replayable::buffer(body(b"larger than sixteen bytes"), 16)
                .await
                .unwrap(),
        )
        .unwrap();
    let err = tokio::time::timeout(LIMIT, client.clone().oneshot(request))
        .await
        .expect("the request ends")
        .expect_err("not retried");
    assert!(Error::from(err).is_transient());
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.resource_requests(), 0);

    // Sent once, such a body is whole: what was read first, then the rest.
    let passing = Replayable::buffer(body(b"larger than sixteen bytes"), 16)
        .await
        .unwrap();
    assert_eq!(
        passing.collect().await.unwrap().to_bytes(),
        "larger than sixteen bytes"
    );
}

/// A body read in several frames, past the limit, is passed on whole and in order, trailers
/// included; one within the limit is replayed with its trailers.
#[tokio::test]
async fn replayable_bodies_keep_every_frame() {
    let frames = |parts: Vec<&'static [u8]>| {
        let mut frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = parts
            .into_iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p))))
            .collect();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", http::HeaderValue::from_static("42"));
        frames.push(Ok(http_body::Frame::trailers(trailers)));
        http_body_util::StreamBody::new(futures_util::stream::iter(frames))
    };
    let long = Replayable::buffer(frames(vec![b"aaaa", b"bbbb", b"cccc"]), 6)
        .await
        .unwrap();
    assert!(!long.is_replayable());
    let collected = long.collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "42");
    assert_eq!(collected.to_bytes(), "aaaabbbbcccc");

    let short = Replayable::buffer(frames(vec![b"aa", b"bb"]), 6).await.unwrap();
    let copy = tower_oauth2::ReplayBody::try_replay(&short).expect("replayable");
    for body in [short, copy] {
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "42");
        assert_eq!(collected.to_bytes(), "aabb");
    }
}

/// The README's and examples/reqwest_middleware.rs's stack: reqwest-retry's
/// `RetryTransientMiddleware` with `RetryTokenErrors`, then `OAuth2Middleware`.
#[cfg(feature = "reqwest-retry")]
mod reqwest_stack {
    use super::*;
    use reqwest_middleware::ClientBuilder;
    use reqwest_retry::policies::ExponentialBackoff;
    use reqwest_retry::{RetryTransientMiddleware, RetryableStrategy};
    use tower_oauth2::reqwest::{token_error, OAuth2Middleware, RetryTokenErrors};

    fn client(
        cache: &TokenCache,
        strategy: impl RetryableStrategy + Send + Sync + 'static,
    ) -> reqwest_middleware::ClientWithMiddleware {
        // reqwest-retry sleeps for real: keep its waits short; the cache's waits are on the
        // manual clock.
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
            .build_with_max_retries(3);
        ClientBuilder::new(reqwest::Client::new())
            .with(RetryTransientMiddleware::new_with_policy_and_strategy(
                policy, strategy,
            ))
            .with(OAuth2Middleware::new(cache.clone()).retry_on_401(true))
            .build()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reqwest_stack_recovers_from_a_token_endpoint_outage() {
        let server = AuthServer::start().await;
        let clock = ManualClock::new();
        let cache = cache(&server, &clock);
        // Five answers 4 s apart: 20 s of outage, more than one request waits on its own.
        outage(&server, 5, 4);
        let client = client(&cache, RetryTokenErrors::default());
        let response = tokio::time::timeout(LIMIT, client.get(server.resource_url()).send())
            .await
            .expect("the request ends")
            .expect("the request succeeds once the server is back");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(server.token_requests(), 6);
        assert_eq!(server.resource_requests(), 1);
    }

    /// reqwest-retry's own strategy treats the token error as fatal; the typed error is still
    /// reachable through its wrapping.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_the_strategy_the_outage_fails_with_a_reachable_typed_error() {
        let server = AuthServer::start().await;
        let clock = ManualClock::new();
        let cache = cache(&server, &clock);
        outage(&server, 5, 4);
        let client = client(&cache, reqwest_retry::DefaultRetryableStrategy);
        let err = tokio::time::timeout(LIMIT, client.get(server.resource_url()).send())
            .await
            .expect("the request ends")
            .expect_err("not retried");
        let token_err = token_error(&err).expect("the token error is reachable");
        assert!(token_err.is_transient());
        assert_eq!(token_err.retry_after(), Some(Duration::from_secs(4)));
        assert_eq!(server.token_requests(), 3, "one request's own patience, no retry");
    }

    /// A permanent token error is not retried by `RetryTokenErrors`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permanent_token_errors_are_not_retried() {
        let server = AuthServer::start().await;
        let clock = ManualClock::new();
        let cache = cache(&server, &clock);
        server.push_token_response(Scripted::json(401, json!({"error": "invalid_client"})));
        let client = client(&cache, RetryTokenErrors::default());
        let err = tokio::time::timeout(LIMIT, client.get(server.resource_url()).send())
            .await
            .expect("the request ends")
            .expect_err("invalid_client");
        let token_err = token_error(&err).expect("the token error is reachable");
        assert_eq!(token_err.code(), Some(&tower_oauth2::ErrorCode::InvalidClient));
        assert_eq!(server.token_requests(), 1);
    }
}
