//! Mutual-TLS client authentication (RFC 8705) against a real authorization server
//! (oidc-provider, `tests/interop`): discovery over the plain issuer URL, then
//! `tls_client_auth` and `self_signed_tls_client_auth` at the server's
//! `mtls_endpoint_aliases` (RFC 8705 §5, an https listener that asks for a client
//! certificate), through the default hyper transport with the test CA and a client
//! certificate from `tests/interop/mtls/`.
//!
//! Certificate-bound access tokens (RFC 8705 §3): the server binds the tokens of `tls-client`
//! to its certificate. The tests check the binding through introspection (`cnf.x5t#S256` is
//! the certificate's SHA-256 thumbprint); `/test/protected` looks tokens up without checking
//! the binding, so it accepts them over the plain issuer URL.
//!
//! The tests need Node.js 20 or later and npm (see `tests/interop.rs`). Each starts its own
//! server on an ephemeral port.
#![cfg(feature = "hyper-client")]

#[path = "support/interop.rs"]
mod harness;

use std::time::Duration;

use http::StatusCode;
use tower_oauth2::{ClientAuth, Error, ErrorCode, HttpClient, OAuth2Client, TokenSource, TokenTypeHint};

use harness::util::bounded;
use harness::{Server, ServerConfig};

const TLS_CLIENT: &str = "tls-client";
const SELF_SIGNED_CLIENT: &str = "self-signed-client";
/// SHA-256 thumbprint of `tls-client.crt.pem` (base64url of the DER's digest; the command is in
/// tests/interop/README.md).
const TLS_CLIENT_X5T: &str = "eJj130OEBIcJJfBDFGEdM2a-kwwTY4gf9SzHKC-W32M";

fn mtls_file(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/mtls")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The default transport trusting the test CA, presenting the certificate `cert`
/// (`tls-client` or `self-signed-client` in tests/interop/mtls/), or none.
fn http_client(cert: Option<&str>) -> HttpClient {
    let mut builder = HttpClient::hyper_builder()
        .no_proxy()
        .add_root_certificates_pem(&mtls_file("ca.crt.pem"))
        .unwrap();
    if let Some(name) = cert {
        builder = builder
            .client_certificate(
                &mtls_file(&format!("{name}.crt.pem")),
                &mtls_file(&format!("{name}.key.pem")),
            )
            .unwrap();
    }
    builder.build().unwrap().with_timeout(Duration::from_secs(30))
}

async fn discover(server: &Server, auth: ClientAuth, cert: Option<&str>) -> OAuth2Client {
    bounded(
        OAuth2Client::builder(auth)
            .http_client(http_client(cert))
            .discover(&server.issuer()),
    )
    .await
    .expect("discovery")
}

/// The server's mTLS token endpoint alias, as its discovery document gives it.
async fn token_alias(server: &Server) -> String {
    let (status, document) = server.api().get_json("/.well-known/openid-configuration").await;
    assert_eq!(status, StatusCode::OK);
    let alias = document["mtls_endpoint_aliases"]["token_endpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("no mTLS token alias: {document}"))
        .to_owned();
    assert!(alias.starts_with("https://127.0.0.1:"), "{alias}");
    alias
}

#[tokio::test]
async fn tls_client_auth_gets_a_certificate_bound_token_at_the_alias() {
    let server = Server::start(ServerConfig::default()).await;
    let alias = token_alias(&server).await;
    let client = discover(&server, ClientAuth::tls_client_auth(TLS_CLIENT), Some(TLS_CLIENT)).await;
    assert_eq!(client.token_endpoint().token_url().as_str(), alias);
    assert_ne!(alias, server.token_url());
    let https = |url: Option<&url::Url>| url.map(|u| u.scheme().to_owned());
    assert_eq!(https(client.introspection_url()).as_deref(), Some("https"));
    assert_eq!(https(client.revocation_url()).as_deref(), Some("https"));

    server.api().reset().await;
    let token = bounded(client.client_credentials().scope("api:read").fetch_token())
        .await
        .expect("a token for the certificate");
    assert_eq!(server.api().token_requests().await, 1);
    let access = token.access_token().expose();
    let (status, body) = server.api().call_protected(access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], TLS_CLIENT);
    assert_eq!(body["scope"], "api:read");

    // Introspection at its alias, authenticated by the certificate again: the token is bound
    // to that certificate.
    let info = bounded(client.introspect(access, Some(TokenTypeHint::AccessToken)))
        .await
        .unwrap();
    assert!(info.active());
    assert_eq!(info.client_id(), Some(TLS_CLIENT));
    assert_eq!(info.extra()["cnf"]["x5t#S256"], TLS_CLIENT_X5T, "{info:?}");

    // Revocation at its alias.
    bounded(client.revoke_access_token(&token)).await.unwrap();
    let (status, _) = server.api().call_protected(access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A client with a secret, at the same server, keeps the plain endpoints.
    let plain = discover(
        &server,
        ClientAuth::client_secret_basic("basic-client", "s3cr:et%+ &/=?"),
        None,
    )
    .await;
    assert_eq!(plain.token_endpoint().token_url().as_str(), server.token_url());
}

#[tokio::test]
async fn self_signed_tls_client_auth_gets_a_token_at_the_alias() {
    let server = Server::start(ServerConfig::default()).await;
    let alias = token_alias(&server).await;
    let client = discover(
        &server,
        ClientAuth::self_signed_tls_client_auth(SELF_SIGNED_CLIENT),
        Some(SELF_SIGNED_CLIENT),
    )
    .await;
    assert_eq!(client.token_endpoint().token_url().as_str(), alias);
    let token = bounded(client.client_credentials().scope("api:write").fetch_token())
        .await
        .expect("a token for the registered self-signed certificate");
    let access = token.access_token().expose();
    let (status, body) = server.api().call_protected(access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], SELF_SIGNED_CLIENT);
    assert_eq!(body["scope"], "api:write");
    let info = bounded(client.introspect(access, None)).await.unwrap();
    assert!(info.active());
    assert_eq!(info.client_id(), Some(SELF_SIGNED_CLIENT));
    assert!(
        info.extra().get("cnf").is_none(),
        "not registered for bound tokens: {info:?}"
    );
}

#[tokio::test]
async fn the_wrong_certificate_is_invalid_client() {
    let server = Server::start(ServerConfig::default()).await;
    // Each client presenting the other's certificate: the self-signed one is not issued by
    // the CA (tls_client_auth), the CA-issued one is not registered (self-signed).
    for (auth, cert) in [
        (ClientAuth::tls_client_auth(TLS_CLIENT), SELF_SIGNED_CLIENT),
        (
            ClientAuth::self_signed_tls_client_auth(SELF_SIGNED_CLIENT),
            TLS_CLIENT,
        ),
    ] {
        let method = auth.method();
        let client = discover(&server, auth, Some(cert)).await;
        server.api().reset().await;
        let err = bounded(client.client_credentials().fetch_token())
            .await
            .expect_err("the certificate is not the client's");
        assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{method}: {err:?}");
        assert_eq!(
            server.api().token_requests().await,
            1,
            "{method}: one request, no retry"
        );
    }
}

#[tokio::test]
async fn no_certificate_is_invalid_client() {
    let server = Server::start(ServerConfig::default()).await;
    for auth in [
        ClientAuth::tls_client_auth(TLS_CLIENT),
        ClientAuth::self_signed_tls_client_auth(SELF_SIGNED_CLIENT),
    ] {
        let method = auth.method();
        let client = discover(&server, auth, None).await;
        let err = bounded(client.client_credentials().fetch_token())
            .await
            .expect_err("no certificate");
        assert!(
            matches!(err, Error::OAuth2 { status, .. } if status == StatusCode::UNAUTHORIZED),
            "{method}: {err:?}"
        );
        assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{method}: {err:?}");
    }
    // The plain token endpoint (no TLS, so no certificate) refuses a certificate client the
    // same way, even with its certificate in the HTTP client.
    let client = OAuth2Client::builder(ClientAuth::tls_client_auth(TLS_CLIENT))
        .http_client(http_client(Some(TLS_CLIENT)))
        .token_url(server.token_url())
        .build()
        .unwrap();
    let err = bounded(client.client_credentials().fetch_token())
        .await
        .expect_err("no TLS, no certificate");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{err:?}");
}
