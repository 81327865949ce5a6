//! Interop tests of the `jwt` feature against oidc-provider (`tests/interop/server.mjs`):
//! `client_secret_jwt`, `private_key_jwt` with ES256, RS256, PS256 and EdDSA keys, the JWT
//! bearer grant (`tests/interop/grants/jwt_bearer.mjs`, which verifies the signature, `aud`,
//! `exp`, `iss`/`sub` and refuses a reused `jti`), and a Google-style service-account key whose
//! `token_uri` is the interop server. JWT client authentication also at the introspection and
//! revocation endpoints (each request with a new assertion), and after discovery, whose check
//! of `token_endpoint_auth_signing_alg_values_supported` takes what oidc-provider advertises.
#![cfg(feature = "jwt")]

#[path = "support/interop.rs"]
mod harness;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde_json::Value;
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{
    AssertionAudience, ClientAuth, ClientCredentials, Error, ErrorCode, JwsAlgorithm, JwtBearer,
    JwtSigningKey, OAuth2Client, Secret, ServiceAccountKey, TokenEndpoint, TokenSource, TokenTypeHint,
};

use harness::{Recorded, Recorder, Server, ServerConfig};

const JWT_SECRET_ID: &str = "jwt-secret-client";
const JWT_SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";
const PKJWT_ID: &str = "pkjwt-client";
const BEARER_CLIENT: &str = "jwt-bearer-client";
const BEARER_ISSUER: &str = "jwt-bearer-issuer";
const SERVICE_ACCOUNT: &str = "robot@interop-project.iam.gserviceaccount.com";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[path = "support/keys.rs"]
mod keys;

use harness::util::bounded;
use keys::{jwt_claims as claims, jwt_header as header, key_file};

fn ec_key() -> JwtSigningKey {
    JwtSigningKey::from_pem(&key_file("pkjwt-client.key.pem"), JwsAlgorithm::ES256)
        .unwrap()
        .with_kid("pkjwt-client-key-1")
}

fn rsa_key(alg: JwsAlgorithm) -> JwtSigningKey {
    JwtSigningKey::from_pem(&key_file("pkjwt-client-rsa.key.pem"), alg)
        .unwrap()
        .with_kid("pkjwt-client-rsa-1")
}

fn ed25519_key() -> JwtSigningKey {
    JwtSigningKey::from_pem(&key_file("pkjwt-client-ed25519.key.pem"), JwsAlgorithm::EdDSA)
        .unwrap()
        .with_kid("pkjwt-client-ed25519-1")
}

/// The `jti` claim of a compact JWS.
fn jti(jwt: &str) -> String {
    claims(jwt)["jti"].as_str().expect("a jti").to_owned()
}

/// A fresh EC key the server does not know, under the registered key id.
fn stranger_key() -> JwtSigningKey {
    let stranger = rcgen::KeyPair::generate().unwrap().serialize_pem();
    JwtSigningKey::from_pem(&stranger, JwsAlgorithm::ES256)
        .unwrap()
        .with_kid("pkjwt-client-key-1")
}

/// Gets a client_credentials token with `auth`, checks that the resource server takes it,
/// and returns the request sent.
async fn client_credentials(server: &Server, auth: ClientAuth, client_id: &str) -> Recorded {
    let recorder = Recorder::default();
    let endpoint = recorder.token_endpoint(server.token_url(), auth);
    let source = ClientCredentials::new(endpoint).scope("api:read");
    let token = bounded(source.fetch_token()).await.expect("a token");
    let (status, body) = server.api().call_protected(token.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], client_id);
    assert_eq!(body["scope"], "api:read");
    let mut requests = recorder.take();
    assert_eq!(requests.len(), 1);
    let request = requests.remove(0);
    assert_eq!(
        request.field("client_assertion_type").as_deref(),
        Some(ASSERTION_TYPE)
    );
    assert_eq!(request.field("client_id").as_deref(), Some(client_id));
    assert_eq!(request.field("client_secret"), None);
    assert_eq!(request.authorization(), None);
    request
}

fn assertion_of(request: &Recorded) -> String {
    request.field("client_assertion").expect("a client_assertion")
}

#[tokio::test]
async fn client_secret_jwt_hs256_is_accepted() {
    let server = Server::start(ServerConfig::default()).await;
    let request = client_credentials(
        &server,
        ClientAuth::client_secret_jwt(JWT_SECRET_ID, JWT_SECRET),
        JWT_SECRET_ID,
    )
    .await;
    let assertion = assertion_of(&request);
    assert_eq!(header(&assertion)["alg"], "HS256");
    let claims = claims(&assertion);
    assert_eq!(claims["iss"], JWT_SECRET_ID);
    assert_eq!(claims["sub"], JWT_SECRET_ID);
    assert_eq!(claims["aud"], server.token_url());
    assert!(!request.body_text().contains(JWT_SECRET));
}

/// Asks `endpoint` for a client_credentials token: the server must refuse the client.
async fn assert_client_refused(endpoint: TokenEndpoint) {
    let err = bounded(ClientCredentials::new(endpoint).fetch())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{err}");
}

#[tokio::test]
async fn client_secret_jwt_with_the_wrong_secret_is_refused() {
    let server = Server::start(ServerConfig::default()).await;
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_jwt(JWT_SECRET_ID, "not-the-secret-0123456789abcdef0123456789"),
    )
    .unwrap();
    assert_client_refused(endpoint).await;
}

#[tokio::test]
async fn private_key_jwt_es256_rs256_ps256_and_eddsa_are_accepted() {
    let server = Server::start(ServerConfig::default()).await;
    let keys = [
        ec_key(),
        rsa_key(JwsAlgorithm::RS256),
        rsa_key(JwsAlgorithm::PS256),
        ed25519_key(),
    ];
    let mut jtis = HashSet::new();
    for key in keys {
        let (alg, kid) = (key.algorithm(), key.kid().unwrap().to_owned());
        let request = client_credentials(
            &server,
            ClientAuth::private_key_jwt(PKJWT_ID, key).unwrap(),
            PKJWT_ID,
        )
        .await;
        let assertion = assertion_of(&request);
        assert_eq!(header(&assertion)["alg"], alg.as_str());
        assert_eq!(header(&assertion)["kid"], kid);
        jtis.insert(jti(&assertion));
    }
    assert_eq!(jtis.len(), 4, "a new jti for each assertion");
}

#[tokio::test]
async fn private_key_jwt_with_the_issuer_as_audience_is_accepted() {
    let server = Server::start(ServerConfig::default()).await;
    let auth = ClientAuth::private_key_jwt(PKJWT_ID, ec_key())
        .unwrap()
        .assertion_audience(AssertionAudience::Issuer(server.issuer()));
    let request = client_credentials(&server, auth, PKJWT_ID).await;
    assert_eq!(claims(&assertion_of(&request))["aud"], server.issuer());
}

#[tokio::test]
async fn private_key_jwt_with_an_unregistered_key_is_refused() {
    let server = Server::start(ServerConfig::default()).await;
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::private_key_jwt(PKJWT_ID, stranger_key()).unwrap(),
    )
    .unwrap();
    assert_client_refused(endpoint).await;
}

#[tokio::test]
async fn an_expired_client_assertion_is_refused() {
    let server = Server::start(ServerConfig::default()).await;
    // Signed an hour ago by the endpoint's clock: `exp` is long past.
    let clock = ManualClock::starting_at(SystemTime::now() - Duration::from_secs(3600));
    let endpoint = TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::private_key_jwt(PKJWT_ID, ec_key()).unwrap(),
    )
    .clock(clock)
    .build()
    .unwrap();
    assert_client_refused(endpoint).await;
}

fn bearer_source(server: &Server, recorder: &Recorder, key: JwtSigningKey) -> JwtBearer {
    let endpoint = recorder.token_endpoint(server.token_url(), ClientAuth::none(BEARER_CLIENT));
    JwtBearer::new(endpoint, key, BEARER_ISSUER)
        .subject("test-user")
        .scope("api:read")
}

#[tokio::test]
async fn jwt_bearer_tokens_work_and_two_fetches_never_share_a_jti() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let source = bearer_source(&server, &recorder, ec_key());
    for _ in 0..2 {
        let token = bounded(source.fetch()).await.expect("a token");
        assert_eq!(token.extra()["assertion_sub"], "test-user");
        let (status, body) = server.api().call_protected(token.access_token().expose()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["client_id"], BEARER_CLIENT);
        assert_eq!(body["scope"], "api:read");
    }
    let requests = recorder.take();
    assert_eq!(requests.len(), 2);
    let assertions: Vec<Value> = requests
        .iter()
        .map(|r| {
            assert_eq!(r.field("grant_type").as_deref(), Some(JWT_BEARER));
            claims(&r.field("assertion").unwrap())
        })
        .collect();
    assert_ne!(assertions[0]["jti"], assertions[1]["jti"]);
    for claims in &assertions {
        assert_eq!(claims["iss"], BEARER_ISSUER);
        assert_eq!(claims["sub"], "test-user");
        assert_eq!(claims["aud"], server.token_url());
        assert_eq!(
            claims["exp"].as_u64().unwrap(),
            claims["iat"].as_u64().unwrap() + 60
        );
    }
}

#[tokio::test]
async fn jwt_bearer_signs_with_rsa_and_eddsa_keys_too() {
    let server = Server::start(ServerConfig::default()).await;
    let keys = [rsa_key(JwsAlgorithm::PS256), ed25519_key()];
    for key in keys {
        let source = bearer_source(&server, &Recorder::default(), key);
        bounded(source.fetch()).await.expect("a token");
    }
}

#[tokio::test]
async fn the_server_refuses_a_replayed_assertion() {
    let server = Server::start(ServerConfig::default()).await;
    // One assertion, signed once, supplied twice.
    let recorder = Recorder::default();
    let signer = bearer_source(&server, &recorder, ec_key());
    signer.fetch().await.unwrap();
    let assertion = recorder.take()[0].field("assertion").unwrap();
    let endpoint = TokenEndpoint::new(server.token_url(), ClientAuth::none(BEARER_CLIENT)).unwrap();
    let replayer = JwtBearer::from_assertion_fn(endpoint, move || {
        let assertion = assertion.clone();
        async move { Ok(Secret::new(assertion)) }
    });
    let err = bounded(replayer.fetch()).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
}

#[tokio::test]
async fn the_server_refuses_a_bearer_assertion_for_another_audience_or_from_a_wrong_key() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let elsewhere = bearer_source(&server, &recorder, ec_key())
        .assertion_audience(AssertionAudience::Value("https://elsewhere.example/token".into()));
    let err = bounded(elsewhere.fetch()).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
    // Its assertion is never in the error text.
    let assertion = recorder.take()[0].field("assertion").unwrap();
    assert!(!format!("{err} {err:?}").contains(&assertion));

    let key = stranger_key();
    let err = bounded(bearer_source(&server, &recorder, key).fetch())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
}

fn service_account_json(server: &Server, pem: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "interop-project",
        "private_key_id": "sa-key-1",
        "private_key": pem,
        "client_email": SERVICE_ACCOUNT,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": server.token_url(),
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    })
    .to_string()
}

#[tokio::test]
async fn a_google_style_service_account_key_gets_tokens() {
    let server = Server::start(ServerConfig::default()).await;
    let json = service_account_json(&server, &key_file("service-account.key.pem"));
    let path = std::env::temp_dir().join(format!("tower-oauth2-sa-{}.json", std::process::id()));
    std::fs::write(&path, &json).unwrap();
    let key = ServiceAccountKey::from_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    // oidc-provider runs client authentication before any grant: the service account is a
    // registered public client, named in `client_id` (`key.token_endpoint()` is for Google's
    // endpoint, which wants none).
    let recorder = Recorder::default();
    let endpoint = recorder.token_endpoint(key.token_uri(), ClientAuth::none(key.client_email()));
    let source = key.jwt_bearer(endpoint, "api:read api:write");
    let token = bounded(source.fetch_token()).await.expect("a token");
    let (status, body) = server.api().call_protected(token.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], SERVICE_ACCOUNT);
    assert_eq!(body["scope"], "api:read api:write");

    let request = recorder.take().remove(0);
    assert_eq!(
        request.field("scope"),
        None,
        "Google wants the scopes in the assertion"
    );
    let assertion = request.field("assertion").unwrap();
    assert_eq!(header(&assertion)["alg"], "RS256");
    assert_eq!(header(&assertion)["kid"], "sa-key-1");
    let claims = claims(&assertion);
    assert_eq!(claims["iss"], SERVICE_ACCOUNT);
    assert_eq!(claims["sub"], SERVICE_ACCOUNT);
    assert_eq!(claims["aud"], server.token_url());
    assert_eq!(claims["scope"], "api:read api:write");

    // Domain-wide delegation: `sub` is the user acted for.
    let endpoint = TokenEndpoint::new(key.token_uri(), ClientAuth::none(key.client_email())).unwrap();
    let delegated = key.jwt_bearer(endpoint, "api:read").subject("test-user");
    let token = bounded(delegated.fetch()).await.expect("a token");
    assert_eq!(token.extra()["assertion_sub"], "test-user");
}

#[tokio::test]
async fn a_service_account_key_the_server_does_not_know_is_refused() {
    let server = Server::start(ServerConfig::default()).await;
    // Another RSA key, presented under the registered key id.
    let json = service_account_json(&server, &key_file("pkjwt-client-rsa.key.pem"));
    let key = ServiceAccountKey::from_json(&json).unwrap();
    let endpoint = TokenEndpoint::new(key.token_uri(), ClientAuth::none(key.client_email())).unwrap();
    let err = bounded(key.jwt_bearer(endpoint, "api:read").fetch())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OAuth2 { .. }), "{err:?}");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
}

/// Client credentials, introspection and revocation through `client` (whose requests
/// `recorder` sees), with the server's view checked: each request carries a new client
/// assertion.
async fn token_introspect_revoke(
    server: &Server,
    client: &OAuth2Client,
    recorder: &Recorder,
    client_id: &str,
) {
    let token = bounded(client.client_credentials().scope("api:read").fetch_token())
        .await
        .expect("a token");
    let access = token.access_token().expose();
    let info = bounded(client.introspect(access, Some(TokenTypeHint::AccessToken)))
        .await
        .expect("introspection");
    assert!(info.active(), "{info:?}");
    assert_eq!(info.client_id(), Some(client_id));
    bounded(client.revoke_token(access, Some(TokenTypeHint::AccessToken)))
        .await
        .expect("revocation");
    let info = bounded(client.introspect(access, None))
        .await
        .expect("introspection");
    assert!(!info.active(), "revoked: {info:?}");
    let (status, _) = server.api().call_protected(access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let requests: Vec<Recorded> = recorder
        .take()
        .into_iter()
        .filter(|r| r.method == http::Method::POST)
        .collect();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/token",
            "/token/introspection",
            "/token/revocation",
            "/token/introspection"
        ]
    );
    let mut jtis = HashSet::new();
    for request in &requests {
        assert_eq!(
            request.field("client_assertion_type").as_deref(),
            Some(ASSERTION_TYPE)
        );
        assert_eq!(request.field("client_id").as_deref(), Some(client_id));
        assert_eq!(request.authorization(), None);
        jtis.insert(jti(&assertion_of(request)));
    }
    assert_eq!(jtis.len(), 4, "a new assertion for each request");
}

#[tokio::test]
async fn jwt_client_authentication_works_at_introspection_and_revocation() {
    let server = Server::start(ServerConfig::default()).await;
    for (auth, client_id) in [
        (
            ClientAuth::client_secret_jwt(JWT_SECRET_ID, JWT_SECRET),
            JWT_SECRET_ID,
        ),
        (ClientAuth::private_key_jwt(PKJWT_ID, ec_key()).unwrap(), PKJWT_ID),
    ] {
        let recorder = Recorder::default();
        let client = OAuth2Client::builder(auth)
            .token_url(server.token_url())
            .introspection_url(server.url("/token/introspection"))
            .revocation_url(server.url("/token/revocation"))
            .http_client(recorder.http_client())
            .build()
            .unwrap();
        token_introspect_revoke(&server, &client, &recorder, client_id).await;
    }
}

#[tokio::test]
async fn introspection_with_the_wrong_client_secret_jwt_is_refused() {
    let server = Server::start(ServerConfig::default()).await;
    let client = OAuth2Client::builder(ClientAuth::client_secret_jwt(
        JWT_SECRET_ID,
        "not-the-secret-0123456789abcdef0123456789",
    ))
    .token_url(server.token_url())
    .introspection_url(server.url("/token/introspection"))
    .build()
    .unwrap();
    let err = bounded(client.introspect("some-token", None)).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{err}");
}

#[tokio::test]
async fn discovery_then_private_key_jwt_for_every_algorithm() {
    let server = Server::start(ServerConfig::default()).await;
    let keys = [ec_key(), rsa_key(JwsAlgorithm::PS256), ed25519_key()];
    for key in keys {
        let alg = key.algorithm();
        let recorder = Recorder::default();
        let client = bounded(
            OAuth2Client::builder(ClientAuth::private_key_jwt(PKJWT_ID, key).unwrap())
                .http_client(recorder.http_client())
                .discover(&server.issuer()),
        )
        .await
        .unwrap_or_else(|err| panic!("discovery with {alg}: {err}"));
        // What oidc-provider advertises, and the check discovery made, take the key's algorithm.
        let advertised = client
            .metadata()
            .unwrap()
            .token_endpoint_auth_signing_alg_values_supported()
            .expect("oidc-provider lists its client authentication algorithms");
        assert!(
            advertised.iter().any(|a| a == alg.as_str()),
            "{alg} not in {advertised:?}"
        );
        assert_eq!(client.client_auth().method(), "private_key_jwt");
        assert_eq!(client.client_auth().signing_algorithm(), Some(alg.as_str()));
        token_introspect_revoke(&server, &client, &recorder, PKJWT_ID).await;
    }
    // The plain constructor too.
    let client = bounded(OAuth2Client::discover(
        &server.issuer(),
        ClientAuth::private_key_jwt(PKJWT_ID, ec_key()).unwrap(),
    ))
    .await
    .expect("discovery");
    let token = bounded(client.client_credentials().scope("api:read").fetch_token())
        .await
        .expect("a token");
    let (status, body) = server.api().call_protected(token.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], PKJWT_ID);
}
