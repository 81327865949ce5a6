//! Interop tests against a real authorization server: oidc-provider 9, run by
//! `tests/interop/server.mjs` (see `tests/interop/README.md`).
//!
//! The tests need Node.js 20 or later and npm. They never skip: without them they fail. The
//! first test to start installs the server's npm packages (`npm ci`) if they are missing.
//!
//! Every test starts its own server on an ephemeral port, so the tests are independent and can
//! run in parallel.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};
use tower_oauth2::{
    ClientAuth, ClientCredentials, DeviceCode, Error, ErrorCode, OAuth2Layer, RefreshToken, Token,
    TokenCache, TokenEndpoint, TokenSource,
};

use harness::{plain_client, Api, Recorder, Server, ServerConfig};
use harness::{BASIC_ID, BASIC_SECRET, POST_ID, POST_SECRET, PUBLIC_ID};

// The other clients registered in server.mjs that these tests use.
const WEIRD_ID: &str = "weird:client id%";
const WEIRD_SECRET: &str = "w:e%i+r d";

/// `application/x-www-form-urlencoded` forms of the ids and secrets above, written out by hand
/// (not computed with the encoder the crate uses), as RFC 6749 §2.3.1 wants them inside the
/// Basic credentials.
const BASIC_PAIR_ENCODED: &str = "basic-client:s3cr%3Aet%25%2B+%26%2F%3D%3F";
const WEIRD_PAIR_ENCODED: &str = "weird%3Aclient+id%25:w%3Ae%25i%2Br+d";

const DEVICE_SCOPE: &str = "openid offline_access api:read";

// ---------------------------------------------------------------------------------------------
// client_credentials with each client authentication method
// ---------------------------------------------------------------------------------------------

/// Gets a client_credentials token through a recording HTTP client and checks the token and
/// the server's view of it. Returns the one request the crate sent.
async fn client_credentials_case(
    server: &Server,
    auth: ClientAuth,
    expected_client_id: &str,
) -> harness::Recorded {
    let ttl = server.config().access_token_ttl;
    let recorder = Recorder::default();
    let endpoint = recorder.token_endpoint(server.token_url(), auth);
    let source = ClientCredentials::new(endpoint).scope("api:read");

    let token = source.fetch_token().await.expect("client_credentials token");
    assert!(token.token_type().eq_ignore_ascii_case("bearer"), "{token:?}");
    assert!(!token.access_token().expose().is_empty());
    assert_eq!(token.scope(), Some("api:read"));
    assert!(
        token.refresh_token().is_none(),
        "client_credentials must not issue a refresh token"
    );
    // oidc-provider sends `expires_in` = ACCESS_TOKEN_TTL, and the crate counts it from when
    // the request was sent.
    assert_eq!(token.lifetime(), Some(Duration::from_secs(ttl)), "expires_in");

    // The resource server accepts it, for the right client and scope.
    let (status, body) = server.api().call_protected(token.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], expected_client_id);
    assert_eq!(body["scope"], "api:read");

    let requests = recorder.take();
    assert_eq!(requests.len(), 1, "one token request: {requests:?}");
    let request = requests.into_iter().next().unwrap();
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(request.path, "/token");
    assert_eq!(
        request.headers.get(CONTENT_TYPE).unwrap(),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(request.field("grant_type").as_deref(), Some("client_credentials"));
    assert_eq!(request.field("scope").as_deref(), Some("api:read"));
    assert_eq!(server.api().token_requests().await, 1);
    request
}

/// Checks that `request` authenticated with client_secret_basic: the `Authorization` header
/// of `pair_encoded`, and neither `client_id` nor `client_secret` in the body.
fn assert_client_secret_basic(request: &harness::Recorded, pair_encoded: &str) {
    assert_eq!(
        request.authorization().as_deref(),
        Some(&*expected_basic(pair_encoded))
    );
    assert_eq!(
        request.field("client_secret"),
        None,
        "body: {}",
        request.body_text()
    );
    assert_eq!(request.field("client_id"), None, "body: {}", request.body_text());
}

fn expected_basic(pair_encoded: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair_encoded)
    )
}

#[tokio::test]
async fn client_credentials_client_secret_basic() {
    let server = Server::start(ServerConfig::default().access_token_ttl(120)).await;
    let request = client_credentials_case(
        &server,
        ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET),
        BASIC_ID,
    )
    .await;
    assert_client_secret_basic(&request, BASIC_PAIR_ENCODED);
    assert!(
        !request.body_text().contains("s3cr"),
        "the secret leaked into the body"
    );
}

#[tokio::test]
async fn client_credentials_client_secret_basic_reserved_characters_in_id_and_secret() {
    let server = Server::start(ServerConfig::default().access_token_ttl(90)).await;
    let request = client_credentials_case(
        &server,
        ClientAuth::client_secret_basic(WEIRD_ID, WEIRD_SECRET),
        WEIRD_ID,
    )
    .await;
    assert_client_secret_basic(&request, WEIRD_PAIR_ENCODED);
}

#[tokio::test]
async fn client_credentials_client_secret_post() {
    let server = Server::start(ServerConfig::default().access_token_ttl(75)).await;
    let request = client_credentials_case(
        &server,
        ClientAuth::client_secret_post(POST_ID, POST_SECRET),
        POST_ID,
    )
    .await;
    assert_eq!(
        request.authorization(),
        None,
        "client_secret_post must not send Authorization"
    );
    assert_eq!(request.field("client_id").as_deref(), Some(POST_ID));
    assert_eq!(request.field("client_secret").as_deref(), Some(POST_SECRET));
    // Form-encoded on the wire: `:` `+` `%` escaped.
    assert!(
        request.body_text().contains("client_secret=p0st%3Asecret%2B%25"),
        "body: {}",
        request.body_text()
    );
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let server = Server::start(ServerConfig::default()).await;
    for auth in [
        ClientAuth::client_secret_basic(BASIC_ID, "not the secret"),
        ClientAuth::client_secret_post(POST_ID, "not the secret"),
        ClientAuth::client_secret_basic(WEIRD_ID, "w:e%i+r d "),
    ] {
        let method = auth.method();
        let endpoint = TokenEndpoint::new(server.token_url(), auth).unwrap();
        let err = ClientCredentials::new(endpoint.clone())
            .scope("api:read")
            .fetch_token()
            .await
            .expect_err("a wrong secret must fail");
        match &err {
            Error::OAuth2 { status, error, .. } => {
                assert_eq!(error.code, ErrorCode::InvalidClient, "{method}: {err}");
                assert_eq!(*status, StatusCode::UNAUTHORIZED, "{method}: {err}");
            }
            other => panic!("{method}: expected Error::OAuth2(invalid_client), got {other:?}"),
        }
        assert!(!err.is_transient());
    }

    // Through the layer: the request fails with the same error and never reaches the resource.
    server.api().reset().await;
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_basic(BASIC_ID, "not the secret"),
    )
    .unwrap();
    let layer = OAuth2Layer::new(ClientCredentials::new(endpoint).scope("api:read"));
    let mut service = ServiceBuilder::new().layer(layer).service(plain_client());
    let err = service
        .ready()
        .await
        .unwrap()
        .call(server.api().get_request("/test/protected"))
        .await
        .expect_err("no token, no request");
    let err = err.downcast_ref::<Error>().expect("the crate's Error");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{err}");
    assert_eq!(server.api().protected_requests().await, 0);
    assert_eq!(server.api().token_requests().await, 1);
}

// ---------------------------------------------------------------------------------------------
// Device flow (and the `none` client authentication method)
// ---------------------------------------------------------------------------------------------

/// Runs the device flow for `auth`, approving the user code from the `on_user_code` callback
/// (a task POSTs `/test/approve-device` after a short delay). Returns the token and the
/// approval the server answered.
async fn device_flow(server: &Server, endpoint: TokenEndpoint) -> (Token, Value) {
    type Approval = tokio::task::JoinHandle<(StatusCode, Value)>;
    let approvals: Arc<Mutex<Vec<Approval>>> = Arc::default();
    let seen_codes: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let source = DeviceCode::new(endpoint, server.url("/device/auth"))
        .unwrap()
        .scope(DEVICE_SCOPE)
        .on_user_code({
            let api = server.api().clone();
            let approvals = approvals.clone();
            let seen_codes = seen_codes.clone();
            move |auth| {
                let user_code = auth.user_code().to_owned();
                seen_codes
                    .lock()
                    .unwrap()
                    .push((user_code.clone(), auth.verification_uri().to_owned()));
                let api = api.clone();
                approvals.lock().unwrap().push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    api.post_form("/test/approve-device", &[("user_code", &user_code)])
                        .await
                }));
            }
        });

    let token = tokio::time::timeout(Duration::from_secs(30), source.fetch_token())
        .await
        .expect("the device flow did not finish in 30 s")
        .expect("device flow token");

    let seen = seen_codes.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one device authorization: {seen:?}");
    assert!(!seen[0].0.is_empty());
    assert_eq!(seen[0].1, server.url("/device"));
    let handle = approvals.lock().unwrap().pop().expect("the callback ran");
    let (status, approval) = handle.await.unwrap();
    assert_eq!(status, StatusCode::OK, "approval: {approval}");
    assert_eq!(approval["approved"], true);
    assert_eq!(approval["account_id"], "test-user");
    (token, approval)
}

fn assert_device_token(token: &Token) {
    let refresh_token = token
        .refresh_token()
        .expect("device flow tokens include a refresh token");
    assert!(!refresh_token.expose().is_empty());
    assert!(
        token.id_token().is_some(),
        "openid was requested: an id_token is expected"
    );
    let scopes: HashSet<&str> = token.scope().expect("scope").split(' ').collect();
    assert_eq!(scopes, DEVICE_SCOPE.split(' ').collect(), "{:?}", token.scope());
}

#[tokio::test]
async fn device_flow_public_client_none_auth_then_userinfo() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let endpoint = recorder.token_endpoint(server.token_url(), ClientAuth::none(PUBLIC_ID));
    let (token, approval) = device_flow(&server, endpoint).await;
    assert_eq!(approval["client_id"], PUBLIC_ID);
    assert_device_token(&token);

    // UserInfo with the access token: the approved user.
    let (status, body) = server
        .api()
        .get_bearer("/me", token.access_token().expose())
        .await;
    assert_eq!(status, StatusCode::OK, "userinfo: {body}");
    assert_eq!(body["sub"], "test-user");

    // `none`: client_id in every body, no secret, no Authorization header.
    let requests = recorder.take();
    assert!(
        requests.len() >= 2,
        "device authorization + at least one poll: {requests:?}"
    );
    assert_eq!(requests[0].path, "/device/auth");
    assert_eq!(requests[0].field("scope").as_deref(), Some(DEVICE_SCOPE));
    let polls = &requests[1..];
    let device_codes: HashSet<_> = polls.iter().map(|r| r.field("device_code")).collect();
    assert_eq!(device_codes.len(), 1, "every poll sends the same device code");
    for request in &requests {
        assert_eq!(request.authorization(), None, "{request:?}");
        assert_eq!(
            request.field("client_id").as_deref(),
            Some(PUBLIC_ID),
            "{request:?}"
        );
        assert_eq!(request.field("client_secret"), None, "{request:?}");
    }
    for poll in polls {
        assert_eq!(poll.path, "/token");
        assert_eq!(
            poll.field("grant_type").as_deref(),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Refresh token rotation
// ---------------------------------------------------------------------------------------------

async fn refresh_rotation_case(auth: ClientAuth, expected_authorization: Option<String>) {
    let server = Server::start(ServerConfig::default()).await;
    let client_id = auth.client_id().to_owned();
    let recorder = Recorder::default();
    let endpoint = recorder.token_endpoint(server.token_url(), auth);
    let (token0, _) = device_flow(&server, endpoint.clone()).await;
    assert_device_token(&token0);
    let rt0 = token0.refresh_token().unwrap().expose().to_owned();
    recorder.take();

    let hooked: Arc<Mutex<Vec<String>>> = Arc::default();
    let source = RefreshToken::from_token(endpoint.clone(), &token0)
        .unwrap()
        .on_new_token({
            let hooked = hooked.clone();
            move |token: Token| {
                let hooked = hooked.clone();
                async move {
                    let rt = token.refresh_token().expect("rotated").expose().to_owned();
                    hooked.lock().unwrap().push(rt);
                }
            }
        });
    assert_eq!(source.current_refresh_token().await.unwrap().expose(), rt0);

    let token1 = source.fetch_token().await.expect("first refresh");
    let rt1 = token1
        .refresh_token()
        .expect("a rotated refresh token")
        .expose()
        .to_owned();
    assert_ne!(rt1, rt0, "the server rotates refresh tokens");
    assert_eq!(source.current_refresh_token().await.unwrap().expose(), rt1);

    let token2 = source.fetch_token().await.expect("second refresh");
    let rt2 = token2
        .refresh_token()
        .expect("a rotated refresh token")
        .expose()
        .to_owned();
    assert_ne!(rt2, rt1);
    assert_ne!(rt2, rt0);
    assert_eq!(source.current_refresh_token().await.unwrap().expose(), rt2);
    assert_eq!(
        *hooked.lock().unwrap(),
        vec![rt1.clone(), rt2.clone()],
        "the hook saw every new RT"
    );

    for token in [&token1, &token2] {
        assert_ne!(token.access_token().expose(), token0.access_token().expose());
        let scopes: HashSet<&str> = token.scope().expect("scope").split(' ').collect();
        assert!(scopes.contains("api:read"), "{:?}", token.scope());
    }
    let (status, body) = server.api().call_protected(token2.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], client_id.as_str());

    // On the wire: RT0 then RT1, each once, with the client's authentication.
    let requests = recorder.take();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let sent: Vec<String> = requests
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/token");
            assert_eq!(r.field("grant_type").as_deref(), Some("refresh_token"));
            assert_eq!(r.authorization(), expected_authorization, "{r:?}");
            r.field("refresh_token").expect("refresh_token field")
        })
        .collect();
    assert_eq!(sent, vec![rt0.clone(), rt1.clone()]);
    let distinct: HashSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "the crate sent a refresh token twice");

    // Last, because it revokes the grant: the original refresh token is dead, and reusing it
    // takes down the newest refresh token and access token with it.
    let err = endpoint
        .request_token(&[("grant_type", "refresh_token"), ("refresh_token", &rt0)])
        .await
        .expect_err("a rotated-out refresh token must be rejected");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
    let err = source.fetch_token().await.expect_err("the grant is revoked");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
    let (status, _) = server.api().call_protected(token2.access_token().expose()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_rotation_public_client() {
    refresh_rotation_case(ClientAuth::none(PUBLIC_ID), None).await;
}

#[tokio::test]
async fn refresh_rotation_confidential_client_secret_basic() {
    refresh_rotation_case(
        ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET),
        Some(expected_basic(BASIC_PAIR_ENCODED)),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// The layer against the real server
// ---------------------------------------------------------------------------------------------

/// Requests through the layer across several token lifetimes all succeed, with about one token
/// request per lifetime.
///
/// The server's tokens live `ACCESS_TOKEN_TTL` whole seconds from the *truncated* current
/// second (oidc-provider: `exp = floor(now) + ttl`, `expires_in = ttl`), so a token can expire
/// up to 1 s before `sent_at + expires_in`. The cache's leeway (1 s for a 4 s token) covers
/// that second; a 1 s window before it makes each token stale at 2 s and unused from 3 s.
#[tokio::test]
async fn layer_keeps_tokens_fresh_across_lifetimes() {
    const TTL: u64 = 4;
    let server = Server::start(ServerConfig::default().access_token_ttl(TTL)).await;
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET),
    )
    .unwrap();
    let cache = TokenCache::builder(ClientCredentials::new(endpoint).scope("api:read"))
        .refresh_ahead(Duration::from_secs(1))
        .build();
    let mut service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(plain_client());
    server.api().reset().await;

    let start = Instant::now();
    let mut tails: Vec<String> = Vec::new();
    while start.elapsed() < Duration::from_millis(8000) && tails.len() < 120 {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(server.api().get_request("/test/protected"))
            .await
            .unwrap_or_else(|e| panic!("request {} at {:?}: {e}", tails.len(), start.elapsed()));
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "request {} at {:?}: {body}",
            tails.len(),
            start.elapsed()
        );
        tails.push(body["jti_tail"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    let token_requests = server.api().token_requests().await;
    assert_eq!(server.api().protected_requests().await, tails.len() as u64);
    assert!(tails.len() >= 40, "only {} requests in {elapsed:?}", tails.len());

    let changes = tails.windows(2).filter(|w| w[0] != w[1]).count();
    let distinct: HashSet<&String> = tails.iter().collect();
    assert!(
        changes >= 2,
        "the token changed {changes} times in {elapsed:?}: {tails:?}"
    );
    // Each token is used until the next one arrives, and never comes back.
    assert_eq!(changes + 1, distinct.len(), "{tails:?}");
    assert!(
        (2..=6).contains(&token_requests),
        "{token_requests} token requests over {elapsed:?} with {TTL} s tokens"
    );
    // Every token fetched was used, except perhaps one whose refresh the last requests started.
    assert!(
        distinct.len() as u64 == token_requests || distinct.len() as u64 + 1 == token_requests,
        "{} tokens used, {token_requests} fetched",
        distinct.len()
    );
}

/// 200 concurrent requests on an empty cache share one token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_single_flight_under_concurrency() {
    const N: usize = 200;
    let server = Server::start(ServerConfig::default()).await;
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_post(POST_ID, POST_SECRET),
    )
    .unwrap();
    let cache = TokenCache::new(ClientCredentials::new(endpoint).scope("api:read"));
    let service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(plain_client());
    server.api().reset().await;
    assert!(cache.token().is_none());

    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let service = service.clone();
            let request = server.api().get_request("/test/protected");
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = service.oneshot(request).await.expect("request through the layer");
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (status, body)
            })
        })
        .collect();
    let mut tails = HashMap::<String, usize>::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["client_id"], POST_ID);
        *tails
            .entry(body["jti_tail"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(server.api().token_requests().await, 1);
    assert_eq!(server.api().protected_requests().await, N as u64);
    assert_eq!(tails.len(), 1, "every request carried the same token: {tails:?}");
    assert!(cache.token().is_some());
}

/// A token the server no longer accepts is dropped on its 401 when `invalidate_on_401` is on,
/// and the next request gets a new one; with `OAuth2Layer::with_retry`, the rejected
/// request itself is retried with the new token.
///
/// (A client_credentials token: revoking a token of a user grant makes oidc-provider revoke
/// the whole grant, refresh token included.)
#[tokio::test]
async fn layer_invalidates_a_revoked_token_on_401() {
    let server = Server::start(ServerConfig::default()).await;
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_post(POST_ID, POST_SECRET),
    )
    .unwrap();
    let cache = TokenCache::new(ClientCredentials::new(endpoint).scope("api:read"));
    let layer = OAuth2Layer::from_cache(cache.clone()).invalidate_on_401(true);
    let mut service = ServiceBuilder::new().layer(layer.clone()).service(plain_client());
    let revoke_current = |cache: TokenCache| {
        let api = server.api().clone();
        async move {
            let token = cache.token().expect("a cached token");
            let (status, body) = api
                .post_form(
                    "/token/revocation",
                    &[
                        ("token", token.access_token().expose()),
                        ("token_type_hint", "access_token"),
                        ("client_id", POST_ID),
                        ("client_secret", POST_SECRET),
                    ],
                )
                .await;
            assert_eq!(status, StatusCode::OK, "revocation: {body}");
        }
    };

    let first = protected_via(&mut service, server.api()).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    revoke_current(cache.clone()).await;

    let rejected = protected_via(&mut service, server.api()).await;
    assert_eq!(rejected.0, StatusCode::UNAUTHORIZED, "{}", rejected.1);
    assert!(rejected.2.contains("invalid_token"), "{}", rejected.2);
    assert!(cache.token().is_none(), "the rejected token was invalidated");

    let second = protected_via(&mut service, server.api()).await;
    assert_eq!(second.0, StatusCode::OK, "{}", second.1);
    assert_ne!(second.1["jti_tail"], first.1["jti_tail"]);
    assert_eq!(server.api().token_requests().await, 2);

    // Retried once: the caller sees only the 200.
    revoke_current(cache.clone()).await;
    server.api().reset().await;
    let mut retrying = ServiceBuilder::new()
        .layer(layer.with_retry())
        .service(plain_client());
    let third = protected_via(&mut retrying, server.api()).await;
    assert_eq!(third.0, StatusCode::OK, "{}", third.1);
    assert_ne!(third.1["jti_tail"], second.1["jti_tail"]);
    assert_eq!(
        server.api().protected_requests().await,
        2,
        "the 401, then the retry"
    );
    assert_eq!(server.api().token_requests().await, 1);
}

async fn protected_via<S>(service: &mut S, api: &Api) -> (StatusCode, Value, String)
where
    S: tower::Service<
        Request<Full<Bytes>>,
        Response = http::Response<hyper::body::Incoming>,
        Error = tower_oauth2::BoxError,
    >,
{
    let response = service
        .ready()
        .await
        .unwrap()
        .call(api.get_request("/test/protected"))
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap(), challenge)
}

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

#[path = "support/interop.rs"]
mod harness;
