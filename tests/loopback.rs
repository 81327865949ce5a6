//! The login of a native app (RFC 8252, `LoopbackLogin`, feature `loopback`) and the demo
//! server's authorization endpoint it logs in at: the browser's side is played over real HTTP
//! on loopback. Also the web example's routes (examples/web_login.rs), driven in-process.

#[path = "support/auth_server.rs"]
mod auth_server;
#[path = "support/util.rs"]
mod util;

use auth_server::{AuthServer, ClientAuthMethod};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sha2::Digest as _;
use util::bounded;

/// A PKCE verifier of 43 characters and its S256 challenge, computed here, independently of
/// the crate.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

const REDIRECT: &str = "http://127.0.0.1:9/cb";

async fn demo() -> AuthServer {
    let server = AuthServer::start().await;
    server.add_client("cli", None, ClientAuthMethod::None);
    server
}

/// `/authorize?...` with the given parameters.
fn authorize_url(server: &AuthServer, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.authorization_url()).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// A complete, valid authorization request's parameters.
fn valid_request(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "cli".into()),
        ("redirect_uri", REDIRECT.into()),
        ("state", "st-1".into()),
        ("scope", "demo offline_access".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn as_refs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The query parameters of a redirect `Location`.
fn query(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The code of an approved authorization request.
async fn code(server: &AuthServer) -> String {
    let url = authorize_url(server, &as_refs(&valid_request(&challenge(VERIFIER))));
    let location = bounded(server.authorize(&url)).await.unwrap();
    param(&query(&location), "code").expect("a code").to_owned()
}

/// POSTs a form to the demo's token endpoint: the status and the JSON answer.
async fn token_request(server: &AuthServer, form: &[(&str, &str)]) -> (u16, Value) {
    let body = serde_urlencoded::to_string(form).unwrap();
    let request = http::Request::post(server.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = bounded(client.request(request)).await.unwrap();
    let status = response.status().as_u16();
    let body = bounded(response.into_body().collect()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn redeem(server: &AuthServer, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", "cli"),
        ("code_verifier", verifier),
    ];
    token_request(server, &form).await
}

/// `GET /resource` with `token`: the status.
async fn resource(server: &AuthServer, token: &str) -> u16 {
    let request = http::Request::get(server.resource_url())
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    bounded(client.request(request)).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn demo_authorize_redirects_with_code_state_and_iss_and_the_code_redeems_once() {
    let server = demo().await;
    let url = authorize_url(&server, &as_refs(&valid_request(&challenge(VERIFIER))));
    let location = bounded(server.authorize(&url)).await.unwrap();
    assert!(location.starts_with("http://127.0.0.1:9/cb?"), "{location}");
    let params = query(&location);
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(param(&params, "iss"), Some(server.issuer().as_str()));
    assert_eq!(param(&params, "error"), None);
    let code = param(&params, "code").unwrap();
    assert_eq!(server.authorization_requests().len(), 1);

    let (status, body) = redeem(&server, code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "demo offline_access");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(resource(&server, &access).await, 200);
    // The refresh token works as the demo's others do.
    let (status, refreshed) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "cli"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        resource(&server, refreshed["access_token"].as_str().unwrap()).await,
        200
    );

    // Used twice: invalid_grant, and what the code was redeemed for is revoked (RFC 6749 §4.1.2).
    let (status, body) = redeem(&server, code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(resource(&server, &access).await, 401);
    assert_eq!(
        resource(&server, refreshed["access_token"].as_str().unwrap()).await,
        401
    );
    assert!(!server.is_refresh_token_valid(refreshed["refresh_token"].as_str().unwrap()));
}

#[tokio::test]
async fn demo_token_endpoint_refuses_a_wrong_or_missing_verifier() {
    let server = demo().await;
    let code = code(&server).await;
    let (status, body) = redeem(&server, &code, "a-verifier-that-is-not-the-one-sent-as-challenge").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "cli"),
    ];
    let (status, body) = token_request(&server, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // A failed redemption does not consume the code: the right verifier still gets tokens.
    let (status, body) = redeem(&server, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn demo_code_is_bound_to_its_client_and_redirect_uri() {
    let server = demo().await;
    server.add_client("other", None, ClientAuthMethod::None);
    let code = code(&server).await;
    let other_client = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "other"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token_request(&server, &other_client).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let other_redirect = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ("client_id", "cli"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token_request(&server, &other_redirect).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, body) = redeem(&server, "ac-never-issued", VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn demo_authorize_denies_and_refuses_requests_without_s256() {
    let server = demo().await;
    server.set_deny_authorization(true);
    let url = authorize_url(&server, &as_refs(&valid_request(&challenge(VERIFIER))));
    let params = query(&bounded(server.authorize(&url)).await.unwrap());
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(param(&params, "iss"), Some(server.issuer().as_str()));
    assert_eq!(param(&params, "code"), None);
    server.set_deny_authorization(false);

    // No challenge, or `plain`: invalid_request, back at the client.
    let mut no_pkce = valid_request("");
    no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    let mut plain = valid_request(VERIFIER);
    plain.last_mut().unwrap().1 = "plain".into();
    for request in [no_pkce, plain] {
        let url = authorize_url(&server, &as_refs(&request));
        let params = query(&bounded(server.authorize(&url)).await.unwrap());
        assert_eq!(param(&params, "error"), Some("invalid_request"));
        assert_eq!(param(&params, "code"), None);
    }

    // No redirect to a URI that is missing or not http(s), or for an unknown client: a 400.
    for (name, value) in [("redirect_uri", "javascript:alert(1)"), ("client_id", "stranger")] {
        let mut request = valid_request(&challenge(VERIFIER));
        request.iter_mut().find(|(k, _)| *k == name).unwrap().1 = value.into();
        let err = bounded(server.authorize(&authorize_url(&server, &as_refs(&request))))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("400"), "{err}");
    }
}

#[tokio::test]
async fn demo_metadata_names_the_authorization_endpoint_and_discovery_reads_it() {
    let server = demo().await;
    let client = bounded(tower_oauth2::OAuth2Client::discover(
        &server.issuer(),
        tower_oauth2::ClientAuth::none("cli"),
    ))
    .await
    .unwrap();
    assert_eq!(
        client.authorization_url().map(|u| u.as_str()),
        Some(server.authorization_url().as_str())
    );
    let metadata = client.metadata().expect("discovered");
    assert_eq!(
        metadata.as_json()["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(metadata.as_json()["code_challenge_methods_supported"][0], "S256");
    // Both well-known names serve it.
    let (metadata_url, issuer) = (
        server.url("/.well-known/oauth-authorization-server"),
        server.issuer(),
    );
    let rfc8414 = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("cli"))
        .discover_at(&metadata_url, &issuer);
    let rfc8414 = bounded(rfc8414).await.unwrap();
    assert_eq!(
        rfc8414.authorization_url().map(|u| u.as_str()),
        Some(server.authorization_url().as_str())
    );
}
