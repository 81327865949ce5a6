//! Integration tests for the token endpoint client and the three token sources, against the
//! in-process authorization server of `tests/support/auth_server.rs`, over real HTTP on
//! loopback. Time is a `ManualClock` wherever it matters, so nothing really sleeps except the
//! timeout test.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::convert::Infallible;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_server::{AuthServer, ClientAuthMethod, DevicePoll, Scripted};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{
    source_fn, ClientAuth, ClientCredentials, DeviceAuthorization, DeviceCode, Error, ErrorCode, HttpClient,
    Params, RefreshToken, Secret, Token, TokenEndpoint, TokenSource, DEFAULT_MAX_BODY_SIZE,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn endpoint(server: &AuthServer, auth: ClientAuth, clock: &ManualClock) -> TokenEndpoint {
    TokenEndpoint::builder(server.token_url(), auth)
        .clock(clock.clone())
        .build()
        .expect("endpoint")
}

/// A public-client endpoint on a server with no registered client (which accepts anybody).
fn open_endpoint(server: &AuthServer, clock: &ManualClock) -> TokenEndpoint {
    endpoint(server, ClientAuth::none("test-client"), clock)
}

fn expect_err<T: Debug>(result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err,
    }
}

/// The HTTP status `/resource` answers for a bearer token: 200 if the server issued it and it
/// is still valid, 401 otherwise.
async fn resource_status(server: &AuthServer, access_token: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "GET /resource HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {access_token}\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {response:?}"))
}

/// Serves `response` once as the next `/token` answer and fetches with a client credentials
/// source on `clock`.
async fn fetch_scripted(
    server: &AuthServer,
    clock: &ManualClock,
    response: Scripted,
) -> Result<Token, Error> {
    server.push_token_response(response);
    ClientCredentials::new(open_endpoint(server, clock)).fetch().await
}

// ---------------------------------------------------------------------------------------------
// 1. client_secret_basic
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_secret_basic_form_urlencodes_id_and_secret() {
    let server = AuthServer::start().await;
    server.add_client(
        "weird:client id%",
        Some("s3cr:et%+ &/=?"),
        ClientAuthMethod::Basic,
    );
    let clock = ManualClock::new();
    let t0 = clock.now();
    let source = ClientCredentials::new(endpoint(
        &server,
        ClientAuth::client_secret_basic("weird:client id%", "s3cr:et%+ &/=?"),
        &clock,
    ))
    .scope("read write");

    let token = source.fetch().await.expect("token");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/token");
    // base64("weird%3Aclient+id%25" ":" "s3cr%3Aet%25%2B+%26%2F%3D%3F"), computed by hand.
    assert_eq!(
        req.header("authorization"),
        Some("Basic d2VpcmQlM0FjbGllbnQraWQlMjU6czNjciUzQWV0JTI1JTJCKyUyNiUyRiUzRCUzRg==")
    );
    assert_eq!(req.body, "grant_type=client_credentials&scope=read+write");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(req.param("client_secret"), None);
    assert_eq!(req.param("client_id"), None);

    assert!(token.access_token().expose().starts_with("at-"));
    assert_eq!(resource_status(&server, token.access_token().expose()).await, 200);
    assert_eq!(resource_status(&server, "at-not-issued").await, 401);
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.issued_at(), Some(t0));
    assert_eq!(token.expires_at(), Some(t0 + secs(3600)));
    assert_eq!(token.lifetime(), Some(secs(3600)));
    assert_eq!(token.scope(), Some("read write"));
    assert!(token.refresh_token().is_none());
}

// ---------------------------------------------------------------------------------------------
// 2. client_secret_post, none, wrong secret
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_secret_post_sends_credentials_in_body() {
    let server = AuthServer::start().await;
    server.add_client("post-client", Some("p0st secret&"), ClientAuthMethod::Post);
    let clock = ManualClock::new();
    let source = ClientCredentials::new(endpoint(
        &server,
        ClientAuth::client_secret_post("post-client", "p0st secret&"),
        &clock,
    ))
    .scope("read");

    let token = source.fetch().await.expect("token");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body,
        "grant_type=client_credentials&scope=read&client_id=post-client&client_secret=p0st+secret%26"
    );
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(requests[0].param("client_secret"), Some("p0st secret&"));
    assert_eq!(resource_status(&server, token.access_token().expose()).await, 200);
}

#[tokio::test]
async fn public_client_sends_only_client_id() {
    let server = AuthServer::start().await;
    server.add_client("public-client", None, ClientAuthMethod::None);
    let clock = ManualClock::new();
    let source = ClientCredentials::new(endpoint(&server, ClientAuth::none("public-client"), &clock));

    let token = source.fetch().await.expect("token");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body,
        "grant_type=client_credentials&client_id=public-client"
    );
    assert_eq!(requests[0].param("client_secret"), None);
    assert!(!requests[0].body.contains("client_secret"));
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(resource_status(&server, token.access_token().expose()).await, 200);
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let server = AuthServer::start().await;
    server.add_client("basic-client", Some("right"), ClientAuthMethod::Basic);
    server.add_client("post-client", Some("right"), ClientAuthMethod::Post);
    let clock = ManualClock::new();

    for auth in [
        ClientAuth::client_secret_basic("basic-client", "wrong"),
        ClientAuth::client_secret_post("post-client", "wrong"),
    ] {
        let method = auth.method();
        let err = expect_err(
            ClientCredentials::new(endpoint(&server, auth, &clock))
                .fetch()
                .await,
        );
        assert!(
            matches!(&err, Error::OAuth2 { status, .. } if status.as_u16() == 401),
            "{method}: {err:?}"
        );
        assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{method}");
        assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED), "{method}");
        assert!(!err.is_transient(), "{method}");
    }
    assert_eq!(server.token_requests(), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Extra parameters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn extra_params_are_sent_on_every_request() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let source = ClientCredentials::new(endpoint(
        &server,
        ClientAuth::client_secret_basic("c", "s"),
        &clock,
    ))
    .scope("orders:read orders:write")
    .audience("https://api.example.com")
    .resource("https://orders.example.com/")
    .resource("https://files.example.com/")
    .param("tenant", "acme corp");

    source.fetch().await.expect("first token");
    source.fetch().await.expect("second token");

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for req in &requests {
        assert_eq!(req.param("grant_type"), Some("client_credentials"));
        assert_eq!(req.param("scope"), Some("orders:read orders:write"));
        assert_eq!(req.param("audience"), Some("https://api.example.com"));
        assert_eq!(
            req.params("resource"),
            ["https://orders.example.com/", "https://files.example.com/"]
        );
        assert_eq!(req.param("tenant"), Some("acme corp"));
        assert_eq!(
            req.body,
            "grant_type=client_credentials&scope=orders%3Aread+orders%3Awrite\
             &audience=https%3A%2F%2Fapi.example.com\
             &resource=https%3A%2F%2Forders.example.com%2F\
             &resource=https%3A%2F%2Ffiles.example.com%2F&tenant=acme+corp"
        );
    }
}

#[tokio::test]
async fn scope_and_audience_replace_resource_and_param_add() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let params = Params::new()
        .scope("old")
        .scope("new")
        .audience("a1")
        .audience("a2")
        .resource("r1")
        .resource("r2")
        .param("x", "1")
        .param("x", "2");
    assert_eq!(params.get_all("scope").collect::<Vec<_>>(), ["new"]);
    assert_eq!(params.get_all("resource").collect::<Vec<_>>(), ["r1", "r2"]);

    let source = ClientCredentials::new(open_endpoint(&server, &clock)).params(params);
    source.fetch().await.expect("token");
    let req = &server.requests()[0];
    assert_eq!(req.params("scope"), ["new"]);
    assert_eq!(req.params("audience"), ["a2"]);
    assert_eq!(req.params("resource"), ["r1", "r2"]);
    assert_eq!(req.params("x"), ["1", "2"]);
}

#[tokio::test]
async fn refresh_token_source_sends_extra_params() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let rt = server.issue_refresh_token("test-client");
    let source = RefreshToken::new(open_endpoint(&server, &clock), rt.clone())
        .scope("s")
        .resource("https://r1/")
        .resource("https://r2/");
    source.fetch().await.expect("first");
    source.fetch().await.expect("second");
    for req in server.requests() {
        assert_eq!(req.param("grant_type"), Some("refresh_token"));
        assert_eq!(req.param("scope"), Some("s"));
        assert_eq!(req.params("resource"), ["https://r1/", "https://r2/"]);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Refresh token rotation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_token_rotation_redeems_each_token_once() {
    let server = AuthServer::start().await;
    server.add_client("rt-client", Some("rt-secret"), ClientAuthMethod::Basic);
    let clock = ManualClock::new();
    let rt0 = server.issue_refresh_token("rt-client");
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let hook_seen = seen.clone();
    let source = RefreshToken::new(
        endpoint(
            &server,
            ClientAuth::client_secret_basic("rt-client", "rt-secret"),
            &clock,
        ),
        rt0.clone(),
    )
    .on_new_token(move |token: Token| {
        let seen = hook_seen.clone();
        async move {
            tokio::task::yield_now().await;
            seen.lock()
                .unwrap()
                .push(token.refresh_token().expect("rotated").expose().to_owned());
        }
    });

    let mut chain = vec![rt0.clone()];
    for i in 0..3 {
        let token = source.fetch().await.expect("refresh");
        let new_rt = token
            .refresh_token()
            .expect("rotated refresh token")
            .expose()
            .to_owned();
        assert_ne!(&new_rt, chain.last().unwrap());
        chain.push(new_rt.clone());
        // The hook has already seen this refresh token, and every earlier one, in order.
        assert_eq!(*seen.lock().unwrap(), chain[1..]);
        assert_eq!(seen.lock().unwrap().len(), i + 1);
        assert_eq!(source.current_refresh_token().await.unwrap().expose(), new_rt);
        assert_eq!(resource_status(&server, token.access_token().expose()).await, 200);
    }

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for (i, req) in requests.iter().enumerate() {
        assert_eq!(req.param("grant_type"), Some("refresh_token"));
        // Each request redeems what the previous response returned.
        assert_eq!(req.param("refresh_token"), Some(chain[i].as_str()));
    }
    // Every refresh token but the newest was sent exactly once; the newest never.
    for (i, rt) in chain.iter().enumerate() {
        let sent = requests
            .iter()
            .filter(|r| r.params("refresh_token").contains(&rt.as_str()))
            .count();
        assert_eq!(sent, usize::from(i < 3), "refresh token #{i}");
        assert_eq!(
            requests.iter().filter(|r| r.body.contains(rt.as_str())).count(),
            sent
        );
    }
    assert_eq!(source.current_refresh_token().await.unwrap().expose(), chain[3]);
    assert!(!server.is_refresh_token_valid(&rt0));
    assert!(!server.is_refresh_token_valid(&chain[1]));
    assert!(!server.is_refresh_token_valid(&chain[2]));
    assert!(server.is_refresh_token_valid(&chain[3]));
}

#[tokio::test]
async fn refresh_token_from_token() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let rt = server.issue_refresh_token("test-client");
    let stored = Token::bearer("old-access").with_refresh_token(rt.clone());

    let source = RefreshToken::from_token(open_endpoint(&server, &clock), &stored).expect("source");
    assert_eq!(source.current_refresh_token().await.unwrap().expose(), rt);
    let token = source.fetch().await.expect("refresh");

    assert_eq!(server.requests()[0].param("refresh_token"), Some(rt.as_str()));
    assert_ne!(token.access_token().expose(), "old-access");
    assert!(!server.is_refresh_token_valid(&rt));

    let err = expect_err(RefreshToken::from_token(
        open_endpoint(&server, &clock),
        &Token::bearer("no-refresh"),
    ));
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn refresh_token_without_rotation_keeps_the_old_one() {
    let server = AuthServer::start().await;
    server.set_rotate_refresh_tokens(false);
    let clock = ManualClock::new();
    let rt = server.issue_refresh_token("test-client");
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let hook_seen = seen.clone();
    let source =
        RefreshToken::new(open_endpoint(&server, &clock), rt.clone()).on_new_token(move |token: Token| {
            let seen = hook_seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(token.refresh_token().map(|s| s.expose().to_owned()));
            }
        });

    let first = source.fetch().await.expect("first");
    let second = source.fetch().await.expect("second");

    assert_eq!(first.refresh_token().map(Secret::expose), Some(rt.as_str()));
    assert_eq!(second.refresh_token().map(Secret::expose), Some(rt.as_str()));
    assert_ne!(first.access_token(), second.access_token());
    assert_eq!(source.current_refresh_token().await.unwrap().expose(), rt);
    assert_eq!(*seen.lock().unwrap(), [Some(rt.clone()), Some(rt.clone())]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].param("refresh_token"), Some(rt.as_str()));
    assert_eq!(requests[1].param("refresh_token"), Some(rt.as_str()));
    assert!(server.is_refresh_token_valid(&rt));
}

#[tokio::test]
async fn refresh_token_rejected_loses_the_grant_until_a_new_one_is_set() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let source = RefreshToken::new(open_endpoint(&server, &clock), "rt-never-issued");
    let err = expect_err(source.fetch().await);
    assert!(err.is_grant_lost());
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST));
    assert!(!err.is_transient());
    assert!(source.current_refresh_token().await.is_none());
    assert!(source.grant_lost().is_some());
    // The dead refresh token is not sent again.
    let again = expect_err(source.fetch().await);
    assert!(again.is_grant_lost());
    assert_eq!(server.token_requests(), 1);
    // A new refresh token brings the source back.
    let rt = server.issue_refresh_token("test-client");
    source.set_refresh_token(rt.clone());
    assert!(source.grant_lost().is_none());
    source.fetch().await.expect("works again");
    assert_eq!(server.requests()[1].param("refresh_token"), Some(rt.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_never_redeem_a_token_twice() {
    let server = AuthServer::start().await;
    // A little server latency makes overlapping refreshes (if they could happen) certain to
    // send the same refresh token twice.
    server.set_token_delay(Duration::from_millis(10));
    let clock = ManualClock::new();
    let rt0 = server.issue_refresh_token("test-client");
    let source = Arc::new(RefreshToken::new(open_endpoint(&server, &clock), rt0.clone()));

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.fetch().await })
        })
        .collect();
    let mut returned = Vec::new();
    for task in tasks {
        let token = task.await.unwrap().expect("every concurrent refresh succeeds");
        returned.push(token.refresh_token().unwrap().expose().to_owned());
    }

    let sent: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.param("refresh_token").unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 8);
    let mut distinct = sent.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "a refresh token was redeemed twice: {sent:?}");
    // The refreshes form one chain: rt0, then each response's token, in order.
    assert_eq!(sent[0], rt0);
    let last = source.current_refresh_token().await.unwrap().expose().to_owned();
    let mut expected: Vec<String> = returned.iter().filter(|rt| **rt != last).cloned().collect();
    expected.push(rt0);
    expected.sort();
    assert_eq!(distinct, expected);
    assert!(server.is_refresh_token_valid(&last));
}

// ---------------------------------------------------------------------------------------------
// 5. Device flow
// ---------------------------------------------------------------------------------------------

type Captured = Arc<Mutex<Vec<DeviceAuthorization>>>;

fn device_source(server: &AuthServer, clock: &ManualClock) -> (DeviceCode, Captured) {
    let captured: Captured = Arc::default();
    let sink = captured.clone();
    let source = DeviceCode::new(
        endpoint(server, ClientAuth::none("device-client"), clock),
        server.device_authorization_url(),
    )
    .expect("device source")
    .scope("openid offline_access")
    .on_user_code(move |auth| sink.lock().unwrap().push(auth.clone()));
    (source, captured)
}

fn device_server_clock(server: &AuthServer) -> ManualClock {
    server.add_client("device-client", None, ClientAuthMethod::None);
    let clock = ManualClock::new();
    let stamp = clock.clone();
    server.set_stamp(move || stamp.now());
    clock
}

/// The offsets (from the device authorization request) of the device-code polls.
fn poll_offsets(server: &AuthServer) -> Vec<Duration> {
    let requests = server.requests();
    let start = requests
        .iter()
        .find(|r| r.path == "/device_authorization")
        .expect("device authorization request")
        .at;
    requests
        .iter()
        .filter(|r| r.param("grant_type") == Some(DEVICE_GRANT))
        .map(|r| r.at.duration_since(start).unwrap())
        .collect()
}

#[tokio::test]
async fn device_flow_polls_on_schedule_with_slow_down() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_interval(Some(5));
    server.set_device_script(vec![
        DevicePoll::Pending,
        DevicePoll::SlowDown,
        DevicePoll::Pending,
        DevicePoll::Approve,
    ]);
    let (source, captured) = device_source(&server, &clock);
    let t0 = clock.now();
    let real_start = Instant::now();

    let token = source.fetch().await.expect("token");

    assert!(
        real_start.elapsed() < Duration::from_secs(3),
        "the device flow really slept"
    );
    assert_eq!(clock.elapsed(), secs(30));
    assert_eq!(poll_offsets(&server), [secs(5), secs(10), secs(20), secs(30)]);
    assert_eq!(token.issued_at(), Some(t0 + secs(30)));
    assert_eq!(token.expires_at(), Some(t0 + secs(30 + 3600)));
    assert!(token.refresh_token().is_some());
    assert_eq!(resource_status(&server, token.access_token().expose()).await, 200);

    let captured = captured.lock().unwrap();
    assert_eq!(captured.len(), 1);
    let auth = &captured[0];
    let n = auth.user_code().strip_prefix("UC-").expect("user code");
    assert_eq!(auth.verification_uri(), server.url("/device"));
    assert_eq!(
        auth.verification_uri_complete(),
        Some(server.url(&format!("/device?user_code=UC-{n}")).as_str())
    );
    assert_eq!(auth.interval(), secs(5));
    assert_eq!(auth.expires_at(), t0 + secs(600));

    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].path, "/device_authorization");
    assert_eq!(requests[0].at, t0);
    assert_eq!(
        requests[0].body,
        "scope=openid+offline_access&client_id=device-client"
    );
    for poll in &requests[1..] {
        assert_eq!(poll.path, "/token");
        assert_eq!(
            poll.body,
            format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
                 &device_code=dc-{n}&client_id=device-client"
            )
        );
    }
}

#[tokio::test]
async fn device_flow_default_interval_is_five_seconds() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_interval(None);
    server.set_device_script(vec![
        DevicePoll::Pending,
        DevicePoll::Pending,
        DevicePoll::Approve,
    ]);
    let (source, captured) = device_source(&server, &clock);

    source.fetch().await.expect("token");

    assert_eq!(captured.lock().unwrap()[0].interval(), secs(5));
    assert_eq!(poll_offsets(&server), [secs(5), secs(10), secs(15)]);
    assert_eq!(clock.elapsed(), secs(15));
}

#[tokio::test]
async fn device_flow_backs_off_on_a_server_error_and_never_polls_faster_than_one_second() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_interval(Some(0));
    server.set_device_script(vec![DevicePoll::Pending, DevicePoll::Approve]);
    let (source, _) = device_source(&server, &clock);
    // The first poll meets a 503 without an OAuth body: transient, so the flow goes on with a
    // doubled interval instead of ending.
    server.push_token_response(Scripted::raw(503, "text/html", "<h1>maintenance</h1>"));

    source.fetch().await.expect("token");

    // interval 0 is raised to 1 s; after the 503 it doubles to 2 s and stays there.
    assert_eq!(poll_offsets(&server), [secs(1), secs(3), secs(5)]);
}

#[tokio::test]
async fn device_flow_refreshes_then_reauthorizes_on_invalid_grant() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_script(vec![]);
    let hook_count = Arc::new(Mutex::new(0));
    let hook_counter = hook_count.clone();
    let (source, captured) = device_source(&server, &clock);
    let source = source.on_new_token(move |_token| {
        let counter = hook_counter.clone();
        async move { *counter.lock().unwrap() += 1 }
    });

    let first = source.fetch().await.expect("first");
    let first_rt = first.refresh_token().unwrap().expose().to_owned();
    assert_eq!(server.device_authorization_requests(), 1);
    assert_eq!(server.token_requests(), 1);

    // Second fetch: the refresh token, no new device authorization.
    let second = source.fetch().await.expect("second");
    assert_eq!(server.device_authorization_requests(), 1);
    assert_eq!(server.token_requests(), 2);
    let refresh = server.requests().pop().unwrap();
    assert_eq!(refresh.param("grant_type"), Some("refresh_token"));
    assert_eq!(refresh.param("refresh_token"), Some(first_rt.as_str()));
    assert_eq!(refresh.param("scope"), Some("openid offline_access"));
    assert_ne!(first.access_token(), second.access_token());
    let second_rt = second.refresh_token().unwrap().expose().to_owned();
    assert_ne!(second_rt, first_rt);

    // Third fetch: the refresh token is refused, so a new device authorization.
    server.push_token_response(Scripted::json(
        400,
        json!({"error": "invalid_grant", "error_description": "revoked"}),
    ));
    let third = source.fetch().await.expect("third");
    assert_eq!(server.device_authorization_requests(), 2);
    assert_eq!(server.token_requests(), 4);
    let requests = server.requests();
    let tail: Vec<_> = requests[requests.len() - 3..]
        .iter()
        .map(|r| (r.path.as_str(), r.param("grant_type")))
        .collect();
    assert_eq!(
        tail,
        [
            ("/token", Some("refresh_token")),
            ("/device_authorization", None),
            ("/token", Some(DEVICE_GRANT)),
        ]
    );
    assert_eq!(
        requests[requests.len() - 3].param("refresh_token"),
        Some(second_rt.as_str())
    );
    assert_eq!(captured.lock().unwrap().len(), 2);
    assert_eq!(resource_status(&server, third.access_token().expose()).await, 200);
    assert_eq!(*hook_count.lock().unwrap(), 3);
}

#[tokio::test]
async fn device_flow_access_denied() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_script(vec![DevicePoll::Pending, DevicePoll::Denied]);
    let (source, _) = device_source(&server, &clock);

    let err = expect_err(source.fetch().await);

    assert_eq!(err.code(), Some(&ErrorCode::AccessDenied));
    assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST));
    assert!(!err.is_transient());
    assert_eq!(server.token_requests(), 2);
    assert_eq!(clock.elapsed(), secs(10));
}

#[tokio::test]
async fn device_flow_server_expired_token() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_script(vec![DevicePoll::Expired]);
    let (source, _) = device_source(&server, &clock);

    let err = expect_err(source.fetch().await);

    assert_eq!(err.code(), Some(&ErrorCode::ExpiredToken));
    assert!(!err.is_transient());
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn device_flow_client_side_expiry() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_expires_in(12);
    server.set_device_interval(Some(5));
    server.set_device_script(vec![DevicePoll::Pending; 10]);
    let (source, captured) = device_source(&server, &clock);
    let t0 = clock.now();

    let err = expect_err(source.fetch().await);

    assert!(matches!(err, Error::DeviceCodeExpired), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(captured.lock().unwrap()[0].expires_at(), t0 + secs(12));
    assert_eq!(server.token_requests(), 2);
    assert_eq!(poll_offsets(&server), [secs(5), secs(10)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_backs_off_after_a_poll_times_out() {
    let server = AuthServer::start().await;
    let clock = device_server_clock(&server);
    server.set_device_script(vec![]);
    // The first poll gets no answer in time (the client gives up after 200 ms of real time).
    server.push_token_response(
        Scripted::json(400, json!({"error": "authorization_pending"})).with_delay(Duration::from_secs(2)),
    );
    let captured: Captured = Arc::default();
    let sink = captured.clone();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("device-client"))
        .clock(clock.clone())
        .http_client(
            HttpClient::hyper()
                .unwrap()
                .with_timeout(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let source = DeviceCode::new(endpoint, server.device_authorization_url())
        .unwrap()
        .on_user_code(move |auth| sink.lock().unwrap().push(auth.clone()));
    let t0 = clock.now();

    let token = source.fetch().await.expect("token after the timed-out poll");

    assert_eq!(captured.lock().unwrap()[0].interval(), secs(5));
    // Timed out at +5 s, so the interval doubled: next poll at +15 s, approved.
    assert_eq!(poll_offsets(&server), [secs(5), secs(15)]);
    assert_eq!(token.issued_at(), Some(t0 + secs(15)));
    assert_eq!(clock.elapsed(), secs(15));
}

#[tokio::test]
async fn device_authorization_error_is_returned() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    server.add_client("someone-else", None, ClientAuthMethod::None);
    let (source, captured) = device_source(&server, &clock);
    let err = expect_err(source.fetch().await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
    assert!(captured.lock().unwrap().is_empty());
    assert_eq!(server.token_requests(), 0);
}

// ---------------------------------------------------------------------------------------------
// 6. Server deviations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expires_in_as_number_or_string() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let t0 = clock.now();
    for expires_in in [json!(3600), json!("3600")] {
        let token = fetch_scripted(
            &server,
            &clock,
            Scripted::json(
                200,
                json!({"access_token": "at-x", "token_type": "Bearer", "expires_in": expires_in}),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("expires_in {expires_in}: {e}"));
        assert_eq!(
            token.expires_at(),
            Some(t0 + secs(3600)),
            "expires_in {expires_in}"
        );
        assert!(token.extra().is_empty());
    }
}

#[tokio::test]
async fn token_type_case_insensitive_and_mac_rejected() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    for token_type in ["bearer", "BEARER", "Bearer"] {
        let token = fetch_scripted(
            &server,
            &clock,
            Scripted::json(200, json!({"access_token": "at-x", "token_type": token_type})),
        )
        .await
        .expect(token_type);
        assert_eq!(token.token_type(), token_type);
        assert_eq!(token.access_token().expose(), "at-x");
    }
    let missing = fetch_scripted(
        &server,
        &clock,
        Scripted::json(200, json!({"access_token": "at-y"})),
    )
    .await
    .expect("missing token_type");
    assert_eq!(missing.token_type(), "Bearer");

    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(200, json!({"access_token": "at-x", "token_type": "mac"})),
        )
        .await,
    );
    assert!(
        matches!(&err, Error::UnsupportedTokenType(t) if t == "mac"),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn missing_expires_in_and_default_lifetime() {
    let server = AuthServer::start().await;
    server.set_expires_in(None);
    let clock = ManualClock::new();
    let t0 = clock.now();

    let token = ClientCredentials::new(open_endpoint(&server, &clock))
        .fetch()
        .await
        .unwrap();
    assert_eq!(token.expires_at(), None);
    assert_eq!(token.lifetime(), None);
    assert!(!token.is_expired_at(t0 + secs(100 * 365 * 86400)));

    let with_default = TokenEndpoint::builder(server.token_url(), ClientAuth::none("c"))
        .clock(clock.clone())
        .default_lifetime(secs(300))
        .build()
        .unwrap();
    clock.advance(secs(7));
    let token = ClientCredentials::new(with_default.clone())
        .fetch()
        .await
        .unwrap();
    assert_eq!(token.expires_at(), Some(t0 + secs(7 + 300)));

    // The default never overrides the server's expires_in.
    server.set_expires_in(Some(60));
    let token = ClientCredentials::new(with_default).fetch().await.unwrap();
    assert_eq!(token.expires_at(), Some(t0 + secs(7 + 60)));
}

#[tokio::test]
async fn huge_lifetime_means_no_expiry_instead_of_a_panic() {
    let server = AuthServer::start().await;
    server.set_expires_in(None);
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("c"))
        .clock(clock.clone())
        .default_lifetime(Duration::MAX)
        .build()
        .unwrap();
    let token = ClientCredentials::new(endpoint).fetch().await.expect("token");
    assert_eq!(token.expires_at(), None);
    assert!(!token.is_expired_at(clock.now() + secs(1_000_000_000)));
}

#[tokio::test]
async fn form_urlencoded_response_is_parsed() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let t0 = clock.now();
    let token = fetch_scripted(
        &server,
        &clock,
        Scripted::raw(
            200,
            "application/x-www-form-urlencoded; charset=utf-8",
            "access_token=gho_form%2Btoken&token_type=bearer&expires_in=60&scope=a+b",
        ),
    )
    .await
    .expect("form response");
    assert_eq!(token.access_token().expose(), "gho_form+token");
    assert_eq!(token.token_type(), "bearer");
    assert_eq!(token.expires_at(), Some(t0 + secs(60)));
    assert_eq!(token.scope(), Some("a b"));
    assert!(token.extra().is_empty());
}

#[tokio::test]
async fn error_object_with_http_200_is_an_error() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(
                200,
                json!({"error": "invalid_grant", "error_description": "nope", "access_token": "at-x"}),
            ),
        )
        .await,
    );
    assert!(
        matches!(&err, Error::OAuth2 { status, .. } if *status == http::StatusCode::OK),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(http::StatusCode::OK));
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    assert_eq!(err.server_error().unwrap().description.as_deref(), Some("nope"));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn extra_fields_and_id_token_are_kept() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let token = fetch_scripted(
        &server,
        &clock,
        Scripted::json(
            200,
            json!({
                "access_token": "at-x",
                "token_type": "Bearer",
                "expires_in": 300,
                "refresh_token": "rt-x",
                "id_token": "eyJhbGciOiJub25lIn0.e30.",
                "scope": ["read", "write"],
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "refresh_expires_in": 7200,
            }),
        ),
    )
    .await
    .expect("token");
    assert_eq!(
        token.id_token().map(Secret::expose),
        Some("eyJhbGciOiJub25lIn0.e30.")
    );
    assert_eq!(token.refresh_token().map(Secret::expose), Some("rt-x"));
    assert_eq!(token.scope(), Some("read write"));
    let extra = token.extra();
    assert_eq!(extra.len(), 2, "{:?}", extra.keys().collect::<Vec<_>>());
    assert_eq!(
        extra["issued_token_type"],
        json!("urn:ietf:params:oauth:token-type:access_token")
    );
    assert_eq!(extra["refresh_expires_in"], json!(7200));
}

// ---------------------------------------------------------------------------------------------
// 7. Expiry counts from when the request was sent
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expiry_counts_from_send_time() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let stamp = clock.clone();
    // The request "takes" 10 s: the clock moves while the server handles it.
    server.set_stamp(move || {
        stamp.advance(secs(10));
        stamp.now()
    });
    let t0 = clock.now();

    let token = ClientCredentials::new(open_endpoint(&server, &clock))
        .fetch()
        .await
        .unwrap();

    assert_eq!(clock.now(), t0 + secs(10));
    assert_eq!(server.requests()[0].at, t0 + secs(10));
    assert_eq!(token.issued_at(), Some(t0));
    assert_eq!(token.expires_at(), Some(t0 + secs(3600)));
}

// ---------------------------------------------------------------------------------------------
// 8. Every error code
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_code() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cases = [
        ("invalid_request", ErrorCode::InvalidRequest, false),
        ("invalid_client", ErrorCode::InvalidClient, false),
        ("invalid_grant", ErrorCode::InvalidGrant, false),
        ("unauthorized_client", ErrorCode::UnauthorizedClient, false),
        ("unsupported_grant_type", ErrorCode::UnsupportedGrantType, false),
        ("invalid_scope", ErrorCode::InvalidScope, false),
        ("authorization_pending", ErrorCode::AuthorizationPending, true),
        ("slow_down", ErrorCode::SlowDown, true),
        ("access_denied", ErrorCode::AccessDenied, false),
        ("expired_token", ErrorCode::ExpiredToken, false),
        ("invalid_target", ErrorCode::InvalidTarget, false),
        ("weird_code", ErrorCode::Other("weird_code".to_owned()), false),
    ];
    for (wire, code, transient) in cases {
        let status = if wire == "invalid_client" { 401 } else { 400 };
        let description = format!("description of {wire}");
        let uri = format!("https://auth.example.com/errors/{wire}");
        let err = expect_err(
            fetch_scripted(
                &server,
                &clock,
                Scripted::json(
                    status,
                    json!({"error": wire, "error_description": description, "error_uri": uri}),
                ),
            )
            .await,
        );
        assert!(matches!(err, Error::OAuth2 { .. }), "{wire}: {err:?}");
        assert_eq!(err.code(), Some(&code), "{wire}");
        assert_eq!(code.as_str(), wire);
        assert_eq!(ErrorCode::from(wire), code);
        let server_error = err.server_error().expect("server error");
        assert_eq!(server_error.code, code);
        assert_eq!(
            server_error.description.as_deref(),
            Some(description.as_str()),
            "{wire}"
        );
        assert_eq!(server_error.uri.as_deref(), Some(uri.as_str()), "{wire}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{wire}");
        assert_eq!(err.is_transient(), transient, "{wire}");
        let display = err.to_string();
        assert!(display.contains(wire), "{display}");
        assert!(display.contains(&description), "{display}");
    }
    assert_eq!(server.token_requests(), 12);
}

// ---------------------------------------------------------------------------------------------
// 9. Body size limit
// ---------------------------------------------------------------------------------------------

/// A JSON token response of exactly `len` bytes.
const EMPTY_TOKEN_BODY_LEN: usize = r#"{"access_token":"","token_type":"Bearer"}"#.len();

fn token_body_of_len(len: usize) -> String {
    let base = EMPTY_TOKEN_BODY_LEN;
    let body = format!(
        r#"{{"access_token":"{}","token_type":"Bearer"}}"#,
        "a".repeat(len - base)
    );
    assert_eq!(body.len(), len);
    body
}

fn small_limit_endpoint(server: &AuthServer, limit: usize) -> TokenEndpoint {
    TokenEndpoint::builder(server.token_url(), ClientAuth::none("c"))
        .http_client(HttpClient::hyper().unwrap().with_max_body_size(limit))
        .build()
        .unwrap()
}

#[tokio::test]
async fn body_larger_than_default_limit_is_refused() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::raw(200, "application/json", token_body_of_len(2 * 1024 * 1024)),
        )
        .await,
    );
    assert!(matches!(err, Error::BodyTooLarge { limit: 1_048_576 }), "{err:?}");
    assert_eq!(DEFAULT_MAX_BODY_SIZE, 1_048_576);
    assert!(!err.is_transient());
}

#[tokio::test]
async fn body_limit_is_configurable_and_inclusive() {
    let server = AuthServer::start().await;
    let source = ClientCredentials::new(small_limit_endpoint(&server, 100));

    server.push_token_response(Scripted::raw(200, "application/json", token_body_of_len(200)));
    let err = expect_err(source.fetch().await);
    assert!(matches!(err, Error::BodyTooLarge { limit: 100 }), "{err:?}");

    server.push_token_response(Scripted::raw(200, "application/json", token_body_of_len(101)));
    let err = expect_err(source.fetch().await);
    assert!(matches!(err, Error::BodyTooLarge { limit: 100 }), "{err:?}");

    for len in [99, 100] {
        server.push_token_response(Scripted::raw(200, "application/json", token_body_of_len(len)));
        let token = source
            .fetch()
            .await
            .unwrap_or_else(|e| panic!("{len} bytes: {e}"));
        assert_eq!(token.access_token().expose().len(), len - EMPTY_TOKEN_BODY_LEN);
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Transient vs permanent
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn http_errors_without_oauth_body() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cases = [
        (
            Scripted::raw(
                500,
                "text/html; charset=utf-8",
                "<html><head><meta charset=\"utf-8\"></head><body>Internal Server Error</body></html>",
            ),
            500,
        ),
        (Scripted::raw(503, "text/plain", "Service Unavailable"), 503),
        (
            Scripted::raw(429, "text/plain", "").with_header("retry-after", "3"),
            429,
        ),
        (
            Scripted::raw(502, "application/json", "<html>bad gateway</html>"),
            502,
        ),
    ];
    for (response, status) in cases {
        let err = expect_err(fetch_scripted(&server, &clock, response).await);
        assert!(
            matches!(&err, Error::HttpStatus { status: s, .. } if s.as_u16() == status),
            "{status}: {err:?}"
        );
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert!(err.is_transient(), "{status}");
        assert_eq!(err.code(), None);
    }

    // A 4xx without an OAuth 2.0 body is permanent.
    let err =
        expect_err(fetch_scripted(&server, &clock, Scripted::raw(404, "text/plain", "not found")).await);
    assert!(
        matches!(&err, Error::HttpStatus { status, .. } if status.as_u16() == 404),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn oauth_errors_transient_or_not() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cases = [
        (
            502,
            "temporarily_unavailable",
            ErrorCode::TemporarilyUnavailable,
            true,
        ),
        (500, "server_error", ErrorCode::ServerError, true),
        (400, "invalid_grant", ErrorCode::InvalidGrant, false),
        (503, "weird_code", ErrorCode::Other("weird_code".into()), true),
    ];
    for (status, wire, code, transient) in cases {
        let err =
            expect_err(fetch_scripted(&server, &clock, Scripted::json(status, json!({"error": wire}))).await);
        assert_eq!(err.code(), Some(&code), "{wire}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(err.server_error().unwrap().description, None);
        assert_eq!(err.is_transient(), transient, "{wire}");
    }
}

#[tokio::test]
async fn malformed_success_responses() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let cases = [
        Scripted::raw(200, "application/json", r#"{"access_token":"#),
        Scripted::raw(200, "application/json", r#"["access_token"]"#),
        Scripted::json(200, json!({"token_type": "Bearer"})),
        Scripted::json(200, json!({"access_token": "", "token_type": "Bearer"})),
        Scripted::json(200, json!({"access_token": 42, "token_type": "Bearer"})),
        Scripted::json(200, json!({"access_token": "at", "expires_in": "soon"})),
        Scripted::json(200, json!({"access_token": "at", "expires_in": -5})),
        Scripted::raw(200, "text/html", "<html>login page</html>"),
        Scripted::raw(200, "text/plain", ""),
    ];
    for response in cases {
        let body = String::from_utf8_lossy(&response.body).into_owned();
        let err = expect_err(fetch_scripted(&server, &clock, response).await);
        assert!(
            matches!(&err, Error::MalformedResponse { status, .. } if *status == http::StatusCode::OK),
            "{body}: {err:?}"
        );
        assert!(!err.is_transient(), "{body}");
    }
}

#[tokio::test]
async fn connection_refused_is_transient_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint =
        TokenEndpoint::new(format!("http://127.0.0.1:{port}/token"), ClientAuth::none("c")).unwrap();
    let err = expect_err(ClientCredentials::new(endpoint).fetch().await);
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.status(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out() {
    let server = AuthServer::start().await;
    server.push_token_response(
        Scripted::json(200, json!({"access_token": "late", "token_type": "Bearer"}))
            .with_delay(Duration::from_secs(2)),
    );
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("c"))
        .http_client(
            HttpClient::hyper()
                .unwrap()
                .with_timeout(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let err = expect_err(ClientCredentials::new(endpoint).fetch().await);
    let elapsed = started.elapsed();
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[tokio::test]
async fn user_source_errors() {
    let source = source_fn(|| async { Err::<Token, _>(Error::source_error("boom")) });
    let err = expect_err(source.fetch_token().await);
    assert!(matches!(err, Error::Source(_)), "{err:?}");
    // Each level of the chain says its own part: the cause is the source, not the message.
    assert!(!err.to_string().contains("boom"), "{err}");
    assert!(!err.is_transient());
    assert_eq!(
        std::error::Error::source(&err).map(|e| e.to_string()),
        Some("boom".to_owned())
    );

    // A source that wraps one of the crate's transient errors stays transient.
    let source =
        source_fn(|| async { Err::<Token, _>(Error::source_error(Error::Timeout(Duration::from_secs(1)))) });
    assert!(expect_err(source.fetch_token().await).is_transient());

    let source = source_fn(|| async { Ok(Token::bearer("from-fn").with_scope("s")) });
    let token = source.fetch_token().await.unwrap();
    assert_eq!(token.access_token().expose(), "from-fn");
    assert_eq!(token.scope(), Some("s"));
    assert_eq!(token.expires_at(), None);
}

// ---------------------------------------------------------------------------------------------
// 11. No secrets in Debug or error messages
// ---------------------------------------------------------------------------------------------

fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    const CLIENT_SECRET: &str = "SECRET-client-xyz";
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let mut secrets: Vec<String> = vec![
        CLIENT_SECRET.to_owned(),
        "SECRET-param-value".to_owned(),
        "SECRET-extra-value".to_owned(),
        "SECRET-id-token".to_owned(),
        "SECRET-device-code".to_owned(),
        "SECRET-initial-rt".to_owned(),
    ];
    let mut debugs: Vec<(String, String)> = Vec::new();
    macro_rules! record {
        ($name:expr, $value:expr) => {
            debugs.push(($name.to_owned(), format!("{:?}", $value)));
            debugs.push(($name.to_owned() + " (alt)", format!("{:#?}", $value)));
        };
    }

    let basic = ClientAuth::client_secret_basic("client", CLIENT_SECRET);
    let post = ClientAuth::client_secret_post("client", CLIENT_SECRET);
    record!("ClientAuth basic", basic);
    record!("ClientAuth post", post);
    record!("Secret", Secret::new(CLIENT_SECRET));
    let params = Params::new().param("custom", "SECRET-param-value");
    record!("Params", params);
    let http = HttpClient::hyper().unwrap();
    record!("HttpClient", http);
    let builder = TokenEndpoint::builder(server.token_url(), basic.clone())
        .clock(clock.clone())
        .http_client(http.clone());
    record!("TokenEndpointBuilder", builder);
    let endpoint = builder.build().unwrap();
    record!("TokenEndpoint", endpoint);
    let post_endpoint = TokenEndpoint::builder(server.token_url(), post)
        .clock(clock.clone())
        .build()
        .unwrap();
    record!("TokenEndpoint (post)", post_endpoint);

    // A token with everything in it, from the server.
    server.push_token_response(Scripted::json(
        200,
        json!({
            "access_token": "SECRET-access-token",
            "token_type": "Bearer",
            "expires_in": 60,
            "refresh_token": "SECRET-refresh-token",
            "id_token": "SECRET-id-token",
            "issued_token_type": "SECRET-extra-value",
        }),
    ));
    secrets.push("SECRET-access-token".to_owned());
    secrets.push("SECRET-refresh-token".to_owned());
    let client_credentials = ClientCredentials::new(endpoint.clone()).params(params.clone());
    let token = client_credentials.fetch().await.unwrap();
    assert_eq!(token.extra()["issued_token_type"], json!("SECRET-extra-value"));
    record!("Token", token);
    record!("ClientCredentials", client_credentials);

    // A refresh token source after a rotation by the default server logic.
    let rt = server.issue_refresh_token("client");
    let refresh = RefreshToken::new(post_endpoint.clone(), rt.clone()).param("custom", "SECRET-param-value");
    let refreshed = refresh.fetch().await.unwrap();
    secrets.push(rt);
    secrets.push(refreshed.access_token().expose().to_owned());
    secrets.push(refreshed.refresh_token().unwrap().expose().to_owned());
    record!("RefreshToken", refresh);
    record!("Token (refreshed)", refreshed);
    let from_token = RefreshToken::from_token(
        post_endpoint.clone(),
        &Token::bearer("x").with_refresh_token("SECRET-initial-rt"),
    )
    .unwrap();
    record!("RefreshToken (from_token)", from_token);

    // A device flow, with the device authorization captured in the callback.
    server.push_device_authorization_response(Scripted::json(
        200,
        json!({
            "device_code": "SECRET-device-code",
            "user_code": "ABCD-EFGH",
            "verification_uri": "https://auth.example.com/device",
            "expires_in": 600,
            "interval": 1,
        }),
    ));
    server.push_token_response(Scripted::json(
        200,
        json!({
            "access_token": "SECRET-device-access",
            "token_type": "Bearer",
            "refresh_token": "SECRET-device-refresh",
        }),
    ));
    secrets.push("SECRET-device-access".to_owned());
    secrets.push("SECRET-device-refresh".to_owned());
    let captured: Arc<Mutex<Option<DeviceAuthorization>>> = Arc::default();
    let sink = captured.clone();
    let device = DeviceCode::new(post_endpoint.clone(), server.device_authorization_url())
        .unwrap()
        .param("custom", "SECRET-param-value")
        .on_user_code(move |auth| *sink.lock().unwrap() = Some(auth.clone()));
    record!("DeviceCode (new)", device);
    let device_token = device.fetch().await.unwrap();
    assert_eq!(
        server.requests().last().unwrap().param("device_code"),
        Some("SECRET-device-code")
    );
    record!("DeviceCode (after fetch)", device);
    record!("Token (device)", device_token);
    let auth = captured.lock().unwrap().clone().expect("device authorization");
    assert_eq!(auth.user_code(), "ABCD-EFGH");
    record!("DeviceAuthorization", auth);

    for (name, text) in &debugs {
        assert_hidden(
            name,
            text,
            &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    // Sanity: the Debug output is there, and shows what is not secret.
    let shown = |name: &str| &debugs.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(shown("DeviceAuthorization").contains("ABCD-EFGH"));
    assert!(shown("Token").contains("issued_token_type"));
    assert!(shown("Params").contains("custom"));
    assert!(shown("ClientAuth basic").contains("client"));
}

#[tokio::test]
async fn errors_never_show_secrets() {
    const CLIENT_SECRET: &str = "SECRET-client-xyz";
    let server = AuthServer::start().await;
    server.add_client("client", Some("another-secret"), ClientAuthMethod::Basic);
    let clock = ManualClock::new();
    let source = ClientCredentials::new(endpoint(
        &server,
        ClientAuth::client_secret_basic("client", CLIENT_SECRET),
        &clock,
    ));

    // invalid_client, from the default server logic.
    let invalid_client = expect_err(source.fetch().await);
    assert_eq!(invalid_client.code(), Some(&ErrorCode::InvalidClient));

    // A malformed response with a valid access token in it.
    server.push_token_response(Scripted::json(
        200,
        json!({"access_token": "SECRET-at-malformed", "token_type": "Bearer", "expires_in": "soon"}),
    ));
    let malformed = expect_err(source.fetch().await);
    assert!(
        matches!(malformed, Error::MalformedResponse { .. }),
        "{malformed:?}"
    );

    // A token of an unsupported type.
    server.push_token_response(Scripted::json(
        200,
        json!({"access_token": "SECRET-at-mac", "token_type": "mac", "refresh_token": "SECRET-rt-mac"}),
    ));
    let unsupported = expect_err(source.fetch().await);
    assert!(
        matches!(unsupported, Error::UnsupportedTokenType(_)),
        "{unsupported:?}"
    );

    // Invalid JSON holding a token.
    server.push_token_response(Scripted::raw(
        200,
        "application/json",
        r#"{"access_token":"SECRET-at-broken","#,
    ));
    let broken = expect_err(source.fetch().await);
    assert!(matches!(broken, Error::MalformedResponse { .. }), "{broken:?}");

    let secrets = [
        CLIENT_SECRET,
        "SECRET-at-malformed",
        "SECRET-at-mac",
        "SECRET-rt-mac",
        "SECRET-at-broken",
    ];
    for err in [invalid_client, malformed, unsupported, broken] {
        assert_hidden("error Display", &err.to_string(), &secrets);
        assert_hidden("error Debug", &format!("{err:?}"), &secrets);
        assert_hidden("error Debug (alt)", &format!("{err:#?}"), &secrets);
    }
}

// ---------------------------------------------------------------------------------------------
// 12. Custom HttpClient and dyn TokenSource
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn custom_http_client_without_network() {
    type Seen = (http::Method, String, http::HeaderMap, Bytes);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = seen.clone();
    let service = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let sink = sink.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            sink.lock()
                .unwrap()
                .push((parts.method, parts.uri.to_string(), parts.headers, body));
            let response = http::Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"access_token":"canned","token_type":"Bearer","expires_in":120}"#,
                )))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    let clock = ManualClock::new();
    let t0 = clock.now();
    let endpoint = TokenEndpoint::builder(
        "https://auth.invalid/oauth2/token",
        ClientAuth::client_secret_post("canned-client", "canned-secret"),
    )
    .http_client(HttpClient::new(service))
    .clock(clock.clone())
    .build()
    .unwrap();
    assert_eq!(endpoint.token_url().as_str(), "https://auth.invalid/oauth2/token");
    assert_eq!(endpoint.client_auth().method(), "client_secret_post");

    let source = ClientCredentials::new(endpoint).scope("x");
    let token = source.fetch().await.unwrap();
    assert_eq!(token.access_token().expose(), "canned");
    assert_eq!(token.expires_at(), Some(t0 + secs(120)));

    // The same source behind `Arc<dyn TokenSource>`.
    let dynamic: Arc<dyn TokenSource> = Arc::new(source);
    let token = dynamic.fetch_token().await.unwrap();
    assert_eq!(token.access_token().expose(), "canned");
    async fn via_generic(source: impl TokenSource) -> Token {
        source.fetch_token().await.unwrap()
    }
    assert_eq!(
        via_generic(dynamic.clone()).await.access_token().expose(),
        "canned"
    );
    let boxed: Box<dyn TokenSource> = Box::new(dynamic);
    assert_eq!(via_generic(&boxed).await.access_token().expose(), "canned");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    for (method, uri, headers, body) in seen.iter() {
        assert_eq!(method, http::Method::POST);
        assert_eq!(uri, "https://auth.invalid/oauth2/token");
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
        assert_eq!(headers["accept"], "application/json");
        assert!(headers.get("authorization").is_none());
        assert_eq!(
            body.as_ref(),
            b"grant_type=client_credentials&scope=x&client_id=canned-client&client_secret=canned-secret"
        );
    }
}

#[tokio::test]
async fn custom_http_client_errors_are_transport_errors() {
    let service = tower::service_fn(|_request: http::Request<Full<Bytes>>| async {
        Err::<http::Response<Full<Bytes>>, _>(std::io::Error::other("no route"))
    });
    let endpoint = TokenEndpoint::builder("https://auth.invalid/token", ClientAuth::none("c"))
        .http_client(HttpClient::new(service))
        .build()
        .unwrap();
    let err = expect_err(ClientCredentials::new(endpoint).fetch().await);
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains("no route"), "{err}");
    assert_eq!(
        std::error::Error::source(&err).map(|e| e.to_string()).as_deref(),
        Some("no route")
    );
    assert!(err.is_transient());
}

#[test]
fn endpoint_url_must_be_http_or_https() {
    for bad in ["not a url", "ftp://auth.example.com/token", "/token"] {
        let err = expect_err(TokenEndpoint::new(bad, ClientAuth::none("c")));
        assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
    }
    let err = expect_err(DeviceCode::new(
        TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("c")).unwrap(),
        "file:///device",
    ));
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<ClientAuth>();
    check::<ClientCredentials>();
    check::<RefreshToken>();
    check::<DeviceCode>();
    check::<DeviceAuthorization>();
    check::<TokenEndpoint>();
    check::<HttpClient>();
    check::<Params>();
    check::<Secret>();
    check::<Token>();
    check::<Error>();
    check::<Arc<dyn TokenSource>>();
}
