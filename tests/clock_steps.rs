//! Time that cannot be fooled (issue 11, item 4): the cache decides validity, refresh-ahead and
//! backoff on monotonic time, so that stepping the wall clock back or forward, or suspending
//! the machine, never makes it send an expired token nor throw away a valid one.
//!
//! Every test sends real HTTP over loopback through `OAuth2Layer` over hyper's client, to the
//! in-process authorization and resource server; time is a `ManualClock`, whose
//! `step_wall_back`/`step_wall_forward` move only the wall clock and whose `suspend` moves the
//! wall clock and boot time but not plain monotonic time (as Linux does).

#[path = "support/auth_server.rs"]
mod auth_server;

use std::time::Duration;

use auth_server::{AuthServer, ClientAuthMethod, DevicePoll, Scripted};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::{BoxError, Layer, ServiceExt};
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{
    ClientAuth, ClientCredentials, DeviceCode, Error, OAuth2, OAuth2Layer, StoredToken, TokenCache,
    TokenCacheBuilder, TokenEndpoint, TokenSource,
};

type Body = Full<Bytes>;
type Service = OAuth2<Client<HttpConnector, Body>>;

const HOUR: Duration = Duration::from_secs(3600);

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

/// Client credentials at `server` on `clock`: 1 h tokens (the server's default), a 5 s leeway
/// and a 60 s refresh-ahead window without jitter, so a token is stale from 3535 s and no
/// longer sent from 3595 s after it was issued.
fn builder(server: &AuthServer, clock: &ManualClock) -> TokenCacheBuilder {
    TokenCache::builder(ClientCredentials::new(endpoint(server, clock)))
        .clock(clock.clone())
        .refresh_ahead(secs(60))
        .jitter(0.0)
}

fn layered(cache: &TokenCache) -> Service {
    OAuth2Layer::from_cache(cache.clone()).layer(Client::builder(TokioExecutor::new()).build_http())
}

/// Sends one request through `service`, bounded in time: the resource server's status, or the
/// layer's error.
async fn send(service: &Service, server: &AuthServer) -> Result<StatusCode, BoxError> {
    let request = Request::get(server.resource_url()).body(Body::default()).unwrap();
    tokio::time::timeout(secs(30), service.clone().oneshot(request))
        .await
        .expect("the request is stuck: still waiting after 30 s")
        .map(|response| response.status())
}

/// The token the resource server saw last.
fn last_sent(server: &AuthServer) -> String {
    server
        .resource_tokens()
        .last()
        .cloned()
        .flatten()
        .expect("the resource server saw a token")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_step_back_after_expiry_does_not_revive_the_token() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    let first = token_value(&cache);

    // The hour passes, then NTP steps the wall clock back an hour: by the wall clock the
    // token was issued a moment ago.
    clock.advance(HOUR);
    clock.step_wall_back(HOUR);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 2, "a new token was fetched");
    assert_ne!(last_sent(&server), first, "the expired token was sent");
    assert_eq!(last_sent(&server), token_value(&cache));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_step_forward_keeps_a_valid_token_until_its_monotonic_deadline() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    let first = token_value(&cache);
    let valid_until = cache.valid_until();

    // 10 minutes in, the wall clock is stepped an hour forward: by it, the token expired 10
    // minutes ago; it has 50 minutes left.
    clock.advance(secs(600));
    clock.step_wall_forward(HOUR);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(last_sent(&server), first);
    assert_eq!(server.token_requests(), 1, "a valid token was thrown away");
    assert_eq!(
        cache.valid_until(),
        valid_until,
        "shown as projected when it arrived"
    );

    // Sent until it is stale by monotonic time (3535 s)...
    clock.advance(secs(3534 - 600));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(last_sent(&server), first);
    assert_eq!(server.token_requests(), 1);

    // ... and not after its monotonic `valid_until` (3595 s).
    clock.advance(secs(3595 - 3534));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 2);
    assert_ne!(last_sent(&server), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspend_counts_as_time_passed() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    let first = token_value(&cache);

    // A short sleep: the token still has half an hour, and is sent.
    clock.suspend(secs(1800));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(last_sent(&server), first);
    assert_eq!(server.token_requests(), 1);

    // A 2 h sleep: plain monotonic time (which stops during suspend) still says 0 s have
    // passed, but the token expired while the machine slept.
    clock.suspend(2 * HOUR);
    assert_eq!(clock.monotonic_coarse(), Duration::ZERO);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 2, "a new token was fetched on waking");
    assert_ne!(
        last_sent(&server),
        first,
        "the expired token was sent after waking"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_starts_at_the_monotonic_moment_whatever_the_wall_clock_does() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cache = builder(&server, &clock).build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    let first = token_value(&cache);

    // The wall clock is stepped back an hour, then three hours forward: no refresh, no wait.
    clock.advance(secs(100));
    clock.step_wall_back(HOUR);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    clock.advance(secs(100));
    clock.step_wall_forward(3 * HOUR);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 1, "a wall step started a refresh");

    // Just before it is stale (3535 s of monotonic time): still no refresh.
    clock.advance(secs(3534 - 200));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 1, "refreshed before the window");

    // Stale: the token is still sent, and one background refresh starts.
    clock.advance(secs(2));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(last_sent(&server), first, "a stale token is still sent");
    eventually("the background refresh", || {
        server.token_requests() == 2 && cache.token().is_some_and(|t| t.access_token().expose() != first)
    })
    .await;
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_ne!(last_sent(&server), first);
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_token_is_re_anchored_to_monotonic_time() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    // A token stored by an earlier process, with an hour left by the wall clock now.
    let issued = ClientCredentials::new(endpoint(&server, &clock))
        .fetch_token()
        .await
        .unwrap();
    let stored = StoredToken::from_token(&issued);
    assert_eq!(stored.expires_at(), Some(clock.now() + HOUR));
    let stored_value = stored.access_token().expose().to_owned();
    server.reset_counters();
    let cache = builder(&server, &clock).initial_token(stored.to_token()).build();
    let service = layered(&cache);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(last_sent(&server), stored_value);
    assert_eq!(server.token_requests(), 0);

    // The wall clock is stepped back two hours: by it, the stored token has three hours
    // left. It had one when it entered the cache, and that hour is what counts.
    clock.step_wall_back(2 * HOUR);
    clock.advance(secs(3534));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(last_sent(&server), stored_value);
    clock.advance(secs(3595 - 3534));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_ne!(
        last_sent(&server),
        stored_value,
        "the expired stored token was sent"
    );
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_immune_to_wall_steps() {
    let server = AuthServer::start().await;
    server.set_token_outage(Some(Scripted::json(
        503,
        json!({"error": "temporarily_unavailable"}),
    )));
    let clock = ManualClock::new();
    let cache = builder(&server, &clock)
        .backoff(secs(10), secs(60))
        .wait_for_retry(Duration::ZERO) // fail at once during a backoff, to observe it
        .build();
    let service = layered(&cache);
    let first_error = send(&service, &server).await.unwrap_err();
    assert!(Error::from(first_error).is_transient());
    assert_eq!(server.token_requests(), 1);
    assert_eq!(cache.next_attempt_at(), Some(clock.now() + secs(10)));

    // The wall clock jumps an hour forward: the backoff (10 s of monotonic time) is not over.
    clock.step_wall_forward(HOUR);
    assert!(send(&service, &server).await.is_err());
    assert_eq!(server.token_requests(), 1, "a wall step ended the backoff");
    assert_eq!(cache.next_attempt_at(), Some(clock.now() + secs(10)));

    // It is stepped two hours back, and 10 s pass: the backoff is over.
    clock.step_wall_back(2 * HOUR);
    clock.advance(secs(10));
    assert_eq!(cache.next_attempt_at(), None);
    server.set_token_outage(None);
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(server.token_requests(), 2, "a wall step prolonged the backoff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_login_that_takes_minutes_does_not_shorten_the_token() {
    let server = AuthServer::start().await;
    server.add_client("device-client", None, ClientAuthMethod::None);
    let clock = ManualClock::new();
    let stamp = clock.clone();
    server.set_stamp(move || stamp.now());
    // The user takes two minutes to approve: 24 polls 5 s apart, then the token.
    server.set_device_interval(Some(5));
    let mut script = vec![DevicePoll::Pending; 24];
    script.push(DevicePoll::Approve);
    server.set_device_script(script);
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("device-client"))
        .clock(clock.clone())
        .build()
        .unwrap();
    let source = DeviceCode::new(endpoint, server.device_authorization_url()).unwrap();
    let cache = TokenCache::builder(source)
        .clock(clock.clone())
        .refresh_ahead(secs(60))
        .jitter(0.0)
        .build();
    let service = layered(&cache);
    cache.prefetch().await.unwrap();
    assert!(
        clock.elapsed() >= secs(120),
        "the login took {:?}",
        clock.elapsed()
    );
    let first = token_value(&cache);
    let polls = server.token_requests();

    // 3530 s after the token was issued it is still fresh (stale from 3535 s): the hour counts
    // from its issue, not from the start of the login.
    clock.advance(secs(3530));
    assert_eq!(send(&service, &server).await.unwrap(), StatusCode::OK);
    assert_eq!(last_sent(&server), first);
    assert_eq!(server.token_requests(), polls, "the token was refreshed early");
}
