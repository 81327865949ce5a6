//! `OAuth2Client` against a real authorization server (oidc-provider, `tests/interop`):
//! discovery, then client credentials through the hub, introspection (RFC 7662), revocation
//! (RFC 7009) of access and refresh tokens with the server's own view checked afterwards, and
//! userinfo (OIDC Core §5.3) with a device-flow token.
//!
//! The tests need Node.js 20 or later and npm (see `tests/interop.rs`). Each starts its own
//! server on an ephemeral port.

#[path = "support/interop.rs"]
mod harness;

use std::sync::{Arc, Mutex};

use http::StatusCode;
use tower_oauth2::{
    ClientAuth, DiscoveryError, Error, ErrorCode, OAuth2Client, Token, TokenSource, TokenTypeHint,
};

use harness::util::bounded;
use harness::{Recorder, Server, ServerConfig};
use harness::{BASIC_ID, BASIC_SECRET, POST_ID, POST_SECRET, PUBLIC_ID};

const DEVICE_SCOPE: &str = "openid offline_access api:read";

async fn discover(server: &Server, recorder: &Recorder, auth: ClientAuth) -> OAuth2Client {
    bounded(
        OAuth2Client::builder(auth)
            .http_client(recorder.http_client())
            .discover(&server.issuer()),
    )
    .await
    .expect("discovery")
}

/// Runs the device flow with `client` and approves it on the server as `test-user`.
async fn device_flow(server: &Server, client: &OAuth2Client) -> Token {
    let approval: Arc<Mutex<Option<tokio::task::JoinHandle<StatusCode>>>> = Arc::default();
    let source = client
        .device_code()
        .expect("the document names a device authorization endpoint")
        .scope(DEVICE_SCOPE)
        .on_user_code({
            let api = server.api().clone();
            let approval = approval.clone();
            move |auth| {
                let api = api.clone();
                let user_code = auth.user_code().to_owned();
                *approval.lock().unwrap() = Some(tokio::spawn(async move {
                    api.post_form("/test/approve-device", &[("user_code", &user_code)])
                        .await
                        .0
                }));
            }
        });
    let token = bounded(source.fetch_token()).await.expect("device flow token");
    let handle = approval.lock().unwrap().take().expect("the user code was shown");
    assert_eq!(handle.await.unwrap(), StatusCode::OK);
    token
}

#[tokio::test]
async fn discover_then_client_credentials_introspect_and_revoke() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(
        &server,
        &recorder,
        ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET),
    )
    .await;

    // The document's endpoints, checked against the server's routes.
    assert_eq!(client.issuer(), Some(server.issuer().as_str()));
    assert_eq!(client.token_endpoint().token_url().as_str(), server.token_url());
    assert_eq!(
        client.revocation_url().unwrap().as_str(),
        server.url("/token/revocation")
    );
    assert_eq!(
        client.introspection_url().unwrap().as_str(),
        server.url("/token/introspection")
    );
    assert_eq!(client.userinfo_url().unwrap().as_str(), server.url("/me"));
    assert_eq!(
        client.device_authorization_url().unwrap().as_str(),
        server.url("/device/auth")
    );
    assert_eq!(client.jwks_url().unwrap().as_str(), server.url("/jwks"));
    assert_eq!(client.client_auth().method(), "client_secret_basic");
    let metadata = client.metadata().unwrap();
    assert!(metadata
        .token_endpoint_auth_methods_supported()
        .unwrap()
        .contains(&"client_secret_basic".to_owned()));
    let discovery = recorder.take();
    assert_eq!(discovery.len(), 1);
    assert_eq!(discovery[0].method, http::Method::GET);
    assert_eq!(discovery[0].path, "/.well-known/openid-configuration");

    // Client credentials through the hub.
    let token = bounded(client.client_credentials().scope("api:read").fetch_token())
        .await
        .unwrap();
    let access = token.access_token().expose();
    let (status, _) = server.api().call_protected(access).await;
    assert_eq!(status, StatusCode::OK);

    // Introspection: active, for this client and scope.
    let info = bounded(client.introspect(access, Some(TokenTypeHint::AccessToken)))
        .await
        .unwrap();
    assert!(info.active(), "{info:?}");
    assert_eq!(info.scope(), Some("api:read"));
    assert_eq!(info.client_id(), Some(BASIC_ID));
    assert!(info.exp().is_some());

    // Revocation, then the server's own view: inactive, refused by the resource server.
    bounded(client.revoke_access_token(&token)).await.unwrap();
    let info = bounded(client.introspect(access, None)).await.unwrap();
    assert!(!info.active(), "{info:?}");
    let (status, _) = server.api().call_protected(access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Revoking again, or a token the server never issued, is still a success (RFC 7009 §2.2).
    bounded(client.revoke_access_token(&token)).await.unwrap();
    bounded(client.revoke_token("never-issued", None)).await.unwrap();
    let unknown = bounded(client.introspect("never-issued", None)).await.unwrap();
    assert!(!unknown.active());

    // Every endpoint call authenticated the client as the token endpoint does.
    let requests = recorder.take();
    let revocations: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/token/revocation")
        .collect();
    assert_eq!(revocations.len(), 3);
    assert_eq!(revocations[0].field("token").as_deref(), Some(access));
    assert_eq!(
        revocations[0].field("token_type_hint").as_deref(),
        Some("access_token")
    );
    for request in requests.iter().filter(|r| r.path != "/token") {
        assert!(
            request.authorization().unwrap().starts_with("Basic "),
            "{request:?}"
        );
        assert_eq!(request.field("client_secret"), None);
    }
}

#[tokio::test]
async fn a_revoked_refresh_token_cannot_refresh() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(
        &server,
        &recorder,
        ClientAuth::client_secret_post(POST_ID, POST_SECRET),
    )
    .await;
    assert_eq!(
        client.client_auth().method(),
        "client_secret_post",
        "advertised: kept"
    );
    let token = device_flow(&server, &client).await;
    let refresh = token
        .refresh_token()
        .expect("device tokens have a refresh token")
        .clone();

    let info = bounded(client.introspect(refresh.expose(), Some(TokenTypeHint::RefreshToken)))
        .await
        .unwrap();
    assert!(info.active());
    assert_eq!(info.client_id(), Some(POST_ID));
    assert_eq!(info.sub(), Some("test-user"));

    recorder.take();
    assert!(bounded(client.revoke_refresh_token(&token)).await.unwrap());
    let sent = recorder.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/token/revocation");
    assert_eq!(sent[0].field("token_type_hint").as_deref(), Some("refresh_token"));
    assert_eq!(sent[0].field("client_id").as_deref(), Some(POST_ID));
    assert_eq!(sent[0].authorization(), None);

    let info = bounded(client.introspect(refresh.expose(), None)).await.unwrap();
    assert!(!info.active());
    let err = bounded(client.refresh_token(refresh).fetch_token())
        .await
        .expect_err("a revoked refresh token must not refresh");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err:?}");
    assert!(err.is_grant_lost(), "{err:?}");
}

#[tokio::test]
async fn userinfo_with_a_device_flow_token() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, ClientAuth::none(PUBLIC_ID)).await;
    assert_eq!(client.client_auth().method(), "none");
    let token = device_flow(&server, &client).await;

    recorder.take();
    let user = bounded(client.userinfo(&token)).await.unwrap();
    assert_eq!(user.sub(), "test-user");
    let sent = recorder.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, http::Method::GET);
    assert_eq!(sent[0].path, "/me");
    assert_eq!(
        sent[0].authorization(),
        Some(format!("Bearer {}", token.access_token().expose()))
    );

    // A public client revokes its own access token; userinfo then refuses it, typed.
    bounded(client.revoke_access_token(&token)).await.unwrap();
    let err = bounded(client.userinfo(&token)).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidToken), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(!format!("{err:?}").contains(token.access_token().expose()));
}

#[tokio::test]
async fn discovery_checks_the_real_document_s_issuer_exactly() {
    let server = Server::start(ServerConfig::default()).await;
    // The same document, asked for with a trailing slash: the issuer differs by that slash.
    let with_slash = format!("{}/", server.issuer());
    let err = bounded(
        OAuth2Client::builder(ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET)).discover(&with_slash),
    )
    .await
    .unwrap_err();
    match err {
        Error::Discovery(DiscoveryError::IssuerMismatch { expected, found }) => {
            assert_eq!(expected, with_slash);
            assert_eq!(found, server.issuer());
        }
        other => panic!("{other:?}"),
    }
    // The full URL of the RFC 8414 document (oidc-provider publishes both): the issuer is read
    // from it, and the document names that issuer.
    let client = bounded(OAuth2Client::discover(
        &server.url("/.well-known/oauth-authorization-server"),
        ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET),
    ))
    .await
    .unwrap();
    assert_eq!(client.issuer(), Some(server.issuer().as_str()));
    assert_eq!(client.token_endpoint().token_url().as_str(), server.token_url());
}
