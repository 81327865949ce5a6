//! Interop tests of the token exchange (RFC 8693) and password (RFC 6749 §4.3) grants against
//! oidc-provider, with the grant handlers of `tests/interop/grants/token_exchange.mjs` and
//! `tests/interop/grants/password.mjs` (see `tests/interop/README.md`, "Extension grants").
//!
//! The tests need Node.js 20 or later and npm; they never skip. Each starts its own server.

#[path = "support/interop.rs"]
mod harness;

use std::time::Duration;

use http::StatusCode;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};
use tower_oauth2::{
    ClientAuth, ClientCredentials, Error, ErrorCode, OAuth2Layer, Password, RefreshToken, SecurityToken,
    TokenCache, TokenEndpoint, TokenExchange, TokenSource, TokenTypeUri,
};

use harness::util::{bounded, expect_err};
use harness::{plain_client, Recorder, Server, ServerConfig};
use harness::{BASIC_ID, BASIC_SECRET, POST_ID, POST_SECRET, PUBLIC_ID};

/// The test user of grants/password.mjs.
const USERNAME: &str = "test-user";
const PASSWORD: &str = "correct horse battery staple";

fn endpoint(server: &Server, auth: ClientAuth) -> TokenEndpoint {
    TokenEndpoint::new(server.token_url(), auth).unwrap()
}

fn post_client() -> ClientAuth {
    ClientAuth::client_secret_post(POST_ID, POST_SECRET)
}

// ---------------------------------------------------------------------------------------------
// Token exchange
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_credentials_token_is_exchanged_for_a_narrower_one() {
    let server = Server::start(ServerConfig::default()).await;
    let subject = bounded(
        ClientCredentials::new(endpoint(&server, post_client()))
            .scope("api:read api:write")
            .fetch(),
    )
    .await
    .unwrap();

    let recorder = Recorder::default();
    let exchange_endpoint = recorder.token_endpoint(server.token_url(), post_client());
    // An exchange of `subject` at the recorded endpoint.
    let exchange = || {
        TokenExchange::new(
            exchange_endpoint.clone(),
            SecurityToken::access_token(subject.access_token().clone()),
        )
    };
    let source = exchange()
        .requested_token_type(TokenTypeUri::ACCESS_TOKEN)
        .audience("orders")
        .audience("billing")
        .resource("https://orders.example.com/")
        .scope("api:read");
    let token = bounded(source.fetch_token()).await.unwrap();
    assert_eq!(
        token.issued_token_type(),
        Some(TokenTypeUri::ACCESS_TOKEN.as_str())
    );
    assert!(token.token_type().eq_ignore_ascii_case("bearer"));
    assert_eq!(token.scope(), Some("api:read"));
    assert_ne!(token.access_token(), subject.access_token());
    assert_eq!(
        token.lifetime(),
        Some(Duration::from_secs(server.config().access_token_ttl))
    );

    // The request as sent.
    let sent = recorder.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].field("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(
        sent[0].field("subject_token").as_deref(),
        Some(subject.access_token().expose())
    );
    assert_eq!(
        sent[0].field("subject_token_type").as_deref(),
        Some(TokenTypeUri::ACCESS_TOKEN.as_str())
    );
    // RFC 8693 §2.1: `audience` may be repeated; the server accepted both.
    let audiences: Vec<String> = url::form_urlencoded::parse(sent[0].body_text().as_bytes())
        .filter(|(name, _)| name == "audience")
        .map(|(_, value)| value.into_owned())
        .collect();
    assert_eq!(audiences, ["orders", "billing"]);

    // The resource server accepts the new token, with the narrower scope.
    let (status, body) = server.api().call_protected(token.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], POST_ID);
    assert_eq!(body["scope"], "api:read");

    // The server checks what it is asked: a scope beyond the subject's, an unknown audience.
    let wider = exchange().scope("api:read openid");
    assert_eq!(
        expect_err(bounded(wider.fetch()).await).code(),
        Some(&ErrorCode::InvalidScope)
    );
    let elsewhere = exchange().audience("nowhere");
    assert_eq!(
        expect_err(bounded(elsewhere.fetch()).await).code(),
        Some(&ErrorCode::InvalidTarget)
    );
    // An actor must be a live token too.
    let bad_actor = exchange().actor(SecurityToken::access_token("not-a-token-this-server-issued"));
    let err = expect_err(bounded(bad_actor.fetch()).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
    let with_actor = exchange().actor(SecurityToken::access_token(token.access_token().clone()));
    bounded(with_actor.fetch()).await.unwrap();

    // Revoked, the subject token is refused: a typed invalid_grant, the token not echoed.
    let (status, body) = server
        .api()
        .post_form(
            "/token/revocation",
            &[
                ("token", subject.access_token().expose()),
                ("client_id", POST_ID),
                ("client_secret", POST_SECRET),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let err = expect_err(bounded(source.fetch()).await);
    assert!(matches!(err, Error::OAuth2 { .. }), "{err:?}");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert!(!format!("{err} {err:?}").contains(subject.access_token().expose()));
}

#[tokio::test]
async fn the_token_a_cache_holds_is_exchanged_behind_the_layer() {
    let server = Server::start(ServerConfig::default()).await;
    // The service's own token, kept by a cache; the layer's tokens are exchanged from it.
    let held = TokenCache::new(
        ClientCredentials::new(endpoint(
            &server,
            ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET),
        ))
        .scope("api:read api:write"),
    );
    let exchange = TokenExchange::new(
        endpoint(&server, ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET)),
        SecurityToken::from_cache(held.clone()),
    )
    .audience("billing")
    .scope("api:write");
    let mut service = ServiceBuilder::new()
        .layer(OAuth2Layer::new(exchange))
        .service(plain_client());
    server.api().reset().await;

    for _ in 0..3 {
        let response = bounded(
            service
                .ready()
                .await
                .unwrap()
                .call(server.api().get_request("/test/protected")),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // One client_credentials request (the held token) and one exchange, for three calls.
    assert_eq!(server.api().token_requests().await, 2);
    assert_eq!(server.api().protected_requests().await, 3);
    // The held token is still the cache's, unchanged, for the service's own calls.
    let own = held.token().unwrap();
    let (status, body) = server.api().call_protected(own.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api:read api:write");

    // A second exchange (the source asked directly) takes the held token from the cache again.
    bounded(
        TokenExchange::new(
            endpoint(&server, ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET)),
            SecurityToken::from_cache(held.clone()),
        )
        .fetch(),
    )
    .await
    .unwrap();
    assert_eq!(server.api().token_requests().await, 3);
}

// ---------------------------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn password_grant_then_refresh_with_refresh_token() {
    let server = Server::start(ServerConfig::default()).await;
    let endpoint = endpoint(&server, ClientAuth::none(PUBLIC_ID));
    let first = bounded(
        Password::new(endpoint.clone(), USERNAME, PASSWORD)
            .scope("offline_access api:read")
            .fetch_token(),
    )
    .await
    .unwrap();
    assert_eq!(first.scope(), Some("offline_access api:read"));
    let refresh_token = first
        .refresh_token()
        .cloned()
        .expect("offline_access gives a refresh token");
    let (status, body) = server.api().call_protected(first.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], PUBLIC_ID);

    // The password grant's refresh token works with RefreshToken (and rotates).
    let refresh = RefreshToken::new(endpoint.clone(), refresh_token.clone());
    let second = bounded(refresh.fetch_token()).await.unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_ne!(second.refresh_token(), Some(&refresh_token));
    let (status, body) = server.api().call_protected(second.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "offline_access api:read");

    // Without offline_access, no refresh token.
    let plain = bounded(
        Password::new(endpoint, USERNAME, PASSWORD)
            .scope("api:read")
            .fetch(),
    )
    .await
    .unwrap();
    assert!(plain.refresh_token().is_none());
}

#[tokio::test]
async fn a_wrong_password_is_a_typed_invalid_grant() {
    let server = Server::start(ServerConfig::default()).await;
    for auth in [ClientAuth::none(PUBLIC_ID), post_client()] {
        let source = Password::new(endpoint(&server, auth), USERNAME, "not-the-password");
        let err = expect_err(bounded(source.fetch()).await);
        assert!(matches!(err, Error::OAuth2 { .. }), "{err:?}");
        assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
        assert!(!format!("{err} {err:?}").contains("not-the-password"));
    }
    // An unknown user, likewise.
    let source = Password::new(endpoint(&server, ClientAuth::none(PUBLIC_ID)), "nobody", PASSWORD);
    assert_eq!(
        expect_err(bounded(source.fetch()).await).code(),
        Some(&ErrorCode::InvalidGrant)
    );
    // The password grant through the layer, once the password is right.
    let source =
        Password::new(endpoint(&server, ClientAuth::none(PUBLIC_ID)), USERNAME, PASSWORD).scope("api:read");
    let response = bounded(
        ServiceBuilder::new()
            .layer(OAuth2Layer::new(source))
            .service(plain_client())
            .oneshot(server.api().get_request("/test/protected")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
