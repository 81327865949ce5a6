//! Error paths and exact requests of the token exchange (RFC 8693) and password (RFC 6749
//! §4.3) grants, against an in-process stand-in server (a `tower::service_fn` HttpClient)
//! that answers from a script and records every request.

#[path = "support/stub.rs"]
mod stub;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt as _};

use stub::util::{bounded, expect_err};
use stub::{respond, Stub};
use tower_oauth2::{
    source_fn, ClientAuth, Error, ErrorCode, OAuth2Layer, Password, RefreshToken, SecurityToken, Token,
    TokenCache, TokenEndpoint, TokenExchange, TokenSource, TokenTypeUri,
};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const OK_EXCHANGE: &str = r#"{"access_token":"issued","token_type":"Bearer","expires_in":300,
    "issued_token_type":"urn:ietf:params:oauth:token-type:access_token","scope":"orders:read"}"#;

/// Everything an error shows: `Display`, `Debug`, and its sources.
fn all_text(err: &Error) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    text
}

/// A cache of subject tokens `held-1`, `held-2`, … (each valid for an hour), and the count
/// of subject tokens it fetched.
fn held_subjects() -> (TokenCache, Arc<AtomicU32>) {
    let fetches = Arc::new(AtomicU32::new(0));
    let counter = fetches.clone();
    let held = TokenCache::new(source_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            Ok(Token::bearer(format!("held-{n}"))
                .with_expires_at(std::time::SystemTime::now() + Duration::from_secs(3600)))
        }
    }));
    (held, fetches)
}

// ---- token exchange ----

#[tokio::test]
async fn exchange_sends_exactly_the_rfc_8693_fields() {
    let stub = Stub::scripted(&[(200, OK_EXCHANGE)]);
    let source = TokenExchange::new(
        stub.endpoint(ClientAuth::client_secret_basic("gateway", "gw-secret")),
        SecurityToken::access_token("subject-value"),
    )
    .actor(SecurityToken::new("actor-value", TokenTypeUri::JWT))
    .requested_token_type(TokenTypeUri::ACCESS_TOKEN)
    .audience("orders")
    .audience("billing")
    .resource("https://orders.example.com/")
    .resource("https://billing.example.com/")
    .scope("orders:read");
    let token = bounded(source.fetch_token()).await.unwrap();
    assert_eq!(token.access_token().expose(), "issued");
    assert_eq!(
        token.issued_token_type(),
        Some(TokenTypeUri::ACCESS_TOKEN.as_str())
    );
    assert_eq!(token.scope(), Some("orders:read"));

    let sent = stub.seen();
    assert_eq!(sent.len(), 1);
    let expected: Vec<(String, String)> = [
        ("grant_type", EXCHANGE),
        ("subject_token", "subject-value"),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("actor_token", "actor-value"),
        ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("audience", "orders"),
        ("audience", "billing"),
        ("resource", "https://orders.example.com/"),
        ("resource", "https://billing.example.com/"),
        ("scope", "orders:read"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(sent[0].form, expected);
    // client_secret_basic: the credentials in the header, not the body.
    assert!(sent[0].authorization().unwrap().starts_with("Basic "));
}

#[tokio::test]
async fn exchange_without_actor_or_requested_type_sends_neither() {
    let stub = Stub::scripted(&[(200, OK_EXCHANGE)]);
    let source = TokenExchange::new(
        stub.endpoint(ClientAuth::none("api")),
        SecurityToken::new("an-id-token", TokenTypeUri::ID_TOKEN),
    );
    bounded(source.fetch()).await.unwrap();
    let sent = &stub.seen()[0];
    assert_eq!(
        sent.names(),
        ["grant_type", "subject_token", "subject_token_type", "client_id"]
    );
    assert_eq!(
        sent.field("subject_token_type"),
        Some(TokenTypeUri::ID_TOKEN.as_str())
    );
    assert_eq!(sent.authorization(), None);
}

#[tokio::test]
async fn exchanging_twice_with_a_cache_as_subject_fetches_the_subject_once() {
    let (held, subject_fetches) = held_subjects();
    let stub = Stub::scripted(&[(200, OK_EXCHANGE)]);
    let source = TokenExchange::new(
        stub.endpoint(ClientAuth::none("api")),
        SecurityToken::from_cache(held.clone()),
    );
    bounded(source.fetch()).await.unwrap();
    bounded(source.fetch()).await.unwrap();
    assert_eq!(subject_fetches.load(Ordering::SeqCst), 1);
    let sent = stub.seen();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|s| s.field("subject_token") == Some("held-1")));
    // The cache serves the same token to its own users.
    assert_eq!(held.token().unwrap().access_token().expose(), "held-1");
}

#[tokio::test]
async fn exchange_behind_the_layer_with_a_cached_subject() {
    let subject_fetches = Arc::new(AtomicU32::new(0));
    let counter = subject_fetches.clone();
    let held = TokenCache::new(source_fn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(Token::bearer("held")) }
    }));
    let stub = Stub::scripted(&[(200, OK_EXCHANGE)]);
    let exchange = TokenExchange::new(
        stub.endpoint(ClientAuth::none("api")),
        SecurityToken::from_cache(held),
    );
    let client = ServiceBuilder::new()
        .layer(OAuth2Layer::new(exchange))
        .service_fn(|request: http::Request<String>| async move {
            let auth = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            Ok::<_, Infallible>(http::Response::new(auth))
        });
    for _ in 0..3 {
        let response = bounded(client.clone().oneshot(http::Request::new(String::new())))
            .await
            .unwrap();
        assert_eq!(response.body(), "Bearer issued");
    }
    assert_eq!(stub.seen().len(), 1, "the exchanged token is cached by the layer");
    assert_eq!(subject_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_subject_source_fails_the_exchange_and_sends_nothing() {
    let stub = Stub::scripted(&[(200, OK_EXCHANGE)]);
    let subject = SecurityToken::from_source(source_fn(|| async {
        Err(Error::source_error(std::io::Error::other("vault unreachable")))
    }));
    let err = expect_err(
        bounded(TokenExchange::new(stub.endpoint(ClientAuth::none("api")), subject).fetch()).await,
    );
    assert!(matches!(err, Error::Source(_)), "{err:?}");
    assert!(all_text(&err).contains("vault unreachable"));
    assert!(stub.seen().is_empty());

    // The same for an actor, and the subject's server error comes back as it was.
    let subject = SecurityToken::from_source(source_fn(|| async { Ok(Token::bearer("fine")) }));
    let actor = SecurityToken::from_source(source_fn(|| async { Err(Error::DeviceCodeExpired) }));
    let err = expect_err(
        bounded(
            TokenExchange::new(stub.endpoint(ClientAuth::none("api")), subject)
                .actor(actor)
                .fetch(),
        )
        .await,
    );
    assert!(matches!(err, Error::DeviceCodeExpired), "{err:?}");
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn a_refused_subject_is_a_typed_invalid_grant_with_the_tokens_redacted() {
    let stub = Stub::scripted(&[(
        400,
        r#"{"error":"invalid_grant","error_description":"subject sub-s3cret-tok and actor act-s3cret-tok are not valid for client gw-secret"}"#,
    )]);
    let source = TokenExchange::new(
        stub.endpoint(ClientAuth::client_secret_post("gateway", "gw-secret")),
        SecurityToken::access_token("sub-s3cret-tok"),
    )
    .actor(SecurityToken::access_token("act-s3cret-tok"));
    let err = expect_err(bounded(source.fetch()).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST));
    let text = all_text(&err);
    assert!(text.contains("[redacted]"), "{text}");
    for secret in ["sub-s3cret-tok", "act-s3cret-tok", "gw-secret"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(!format!("{source:?}").contains("s3cret"));
}

#[tokio::test]
async fn exchange_server_errors_and_hostile_bodies_are_typed() {
    let endpoint = |stub: &Stub| stub.endpoint(ClientAuth::none("api"));
    let fetch = |stub: Stub| async move {
        let source = TokenExchange::new(endpoint(&stub), SecurityToken::access_token("subj"));
        expect_err(bounded(source.fetch()).await)
    };

    // 5xx without an OAuth body.
    let stub = Stub::new(|_| respond(502, &[("content-type", "text/html")], "<html>bad gateway</html>"));
    let err = fetch(stub).await;
    assert!(
        matches!(err, Error::HttpStatus { status, .. } if status == 502),
        "{err:?}"
    );
    assert!(err.is_transient());

    // 503 with an OAuth error.
    let err = fetch(Stub::scripted(&[(503, r#"{"error":"temporarily_unavailable"}"#)])).await;
    assert_eq!(err.code(), Some(&ErrorCode::TemporarilyUnavailable));

    // invalid_target for an unknown audience.
    let err = fetch(Stub::scripted(&[(400, r#"{"error":"invalid_target"}"#)])).await;
    assert_eq!(err.code(), Some(&ErrorCode::InvalidTarget));

    // 200 with a body that is not JSON, truncated JSON, JSON that is no object.
    for body in ["<html>", r#"{"access_token":"x","tok"#, "[1,2]"] {
        let err = fetch(Stub::scripted(&[(200, body)])).await;
        assert!(matches!(err, Error::MalformedResponse { .. }), "{body}: {err:?}");
    }

    // A token without access_token, and an access_token of the wrong type.
    for body in [
        r#"{"token_type":"Bearer"}"#,
        r#"{"access_token":7,"token_type":"Bearer"}"#,
    ] {
        let err = fetch(Stub::scripted(&[(200, body)])).await;
        assert!(matches!(err, Error::MalformedResponse { .. }), "{body}: {err:?}");
    }

    // A hostile error: terminal escapes and the subject token, cut out or escaped.
    let err = fetch(Stub::scripted(&[(
        400,
        "{\"error\":\"invalid_request\",\"error_description\":\"\\u001b[31mred subj\\nnext\"}",
    )]))
    .await;
    let text = err.to_string();
    assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text:?}");
    assert!(!text.contains("subj"), "{text:?}");

    // A token type this crate cannot present.
    let err = fetch(Stub::scripted(&[(
        200,
        r#"{"access_token":"a","token_type":"DPoP"}"#,
    )]))
    .await;
    assert!(
        matches!(err, Error::UnsupportedTokenType(ref t) if t == "DPoP"),
        "{err:?}"
    );
}

#[tokio::test]
async fn not_applicable_tokens_only_when_a_non_access_token_was_requested() {
    const NA: &str = r#"{"access_token":"eyJ.id.tok","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:id_token"}"#;
    let stub = Stub::scripted(&[(200, NA)]);
    let subject = SecurityToken::access_token("subj");

    // Nothing requested: refused, since the layer would send it as a bearer token.
    let err = expect_err(
        bounded(TokenExchange::new(stub.endpoint(ClientAuth::none("api")), subject.clone()).fetch()).await,
    );
    assert!(
        matches!(err, Error::UnsupportedTokenType(ref t) if t == "N_A"),
        "{err:?}"
    );
    assert!(!err.is_transient());

    // An access token requested explicitly: refused as well.
    let source = TokenExchange::new(stub.endpoint(ClientAuth::none("api")), subject.clone())
        .requested_token_type(TokenTypeUri::ACCESS_TOKEN);
    assert!(matches!(
        expect_err(bounded(source.fetch()).await),
        Error::UnsupportedTokenType(_)
    ));

    // An ID token requested: accepted, as the server sent it.
    let source = TokenExchange::new(stub.endpoint(ClientAuth::none("api")), subject)
        .requested_token_type(TokenTypeUri::ID_TOKEN);
    let token = bounded(source.fetch()).await.unwrap();
    assert_eq!(token.token_type(), "N_A");
    assert_eq!(token.access_token().expose(), "eyJ.id.tok");
    assert_eq!(token.issued_token_type(), Some(TokenTypeUri::ID_TOKEN.as_str()));
    assert_eq!(
        stub.seen()[2].field("requested_token_type"),
        Some(TokenTypeUri::ID_TOKEN.as_str())
    );

    // The same source as a TokenSource (behind a cache or the layer, which would send it as
    // `Bearer`): refused.
    let err = expect_err(bounded(source.fetch_token()).await);
    assert!(
        matches!(err, Error::UnsupportedTokenType(ref t) if t == "N_A"),
        "{err:?}"
    );

    // RFC 8693 §2.2.1: an N_A token without `issued_token_type` could be anything.
    let untyped = Stub::scripted(&[(200, r#"{"access_token":"eyJ.id.tok","token_type":"N_A"}"#)]);
    let source = TokenExchange::new(
        untyped.endpoint(ClientAuth::none("api")),
        SecurityToken::access_token("subj"),
    )
    .requested_token_type(TokenTypeUri::ID_TOKEN);
    let err = expect_err(bounded(source.fetch()).await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("issued_token_type"), "{err}");
}

/// A subject from a cache that the server refuses (`invalid_grant`: revoked, say) is dropped
/// from the cache, so the next exchange sends a new one instead of the refused one.
#[tokio::test]
async fn a_refused_cached_subject_is_replaced_on_the_next_exchange() {
    let (held, subject_fetches) = held_subjects();
    let stub = Stub::scripted(&[
        (
            400,
            r#"{"error":"invalid_grant","error_description":"subject token revoked"}"#,
        ),
        (200, OK_EXCHANGE),
    ]);
    let source = TokenExchange::new(
        stub.endpoint(ClientAuth::none("api")),
        SecurityToken::from_cache(held.clone()),
    );
    let err = expect_err(bounded(source.fetch()).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    bounded(source.fetch()).await.unwrap();
    let sent = stub.seen();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].field("subject_token"), Some("held-1"));
    assert_eq!(sent[1].field("subject_token"), Some("held-2"));
    assert_eq!(subject_fetches.load(Ordering::SeqCst), 2);
    // Other errors keep the subject.
    let stub = Stub::scripted(&[
        (503, r#"{"error":"temporarily_unavailable"}"#),
        (200, OK_EXCHANGE),
    ]);
    let source = TokenExchange::new(
        stub.endpoint(ClientAuth::none("api")),
        SecurityToken::from_cache(held),
    );
    expect_err(bounded(source.fetch()).await);
    bounded(source.fetch()).await.unwrap();
    assert!(stub
        .seen()
        .iter()
        .all(|s| s.field("subject_token") == Some("held-2")));
    assert_eq!(subject_fetches.load(Ordering::SeqCst), 2);
}

#[test]
fn token_type_uris_and_debug_output() {
    assert_eq!(
        TokenTypeUri::REFRESH_TOKEN.as_str(),
        "urn:ietf:params:oauth:token-type:refresh_token"
    );
    assert_eq!(
        TokenTypeUri::SAML1.as_str(),
        "urn:ietf:params:oauth:token-type:saml1"
    );
    assert_eq!(
        TokenTypeUri::new(TokenTypeUri::SAML2.as_str()),
        TokenTypeUri::SAML2
    );
    let subject = SecurityToken::new("sub-value-xyz", TokenTypeUri::SAML2);
    let from_source = SecurityToken::from_source(source_fn(|| async { Ok(Token::bearer("t")) }));
    let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api")).unwrap();
    let source = TokenExchange::new(endpoint, subject.clone()).actor(from_source.clone());
    for shown in [
        format!("{subject:?}"),
        format!("{source:?}"),
        format!("{from_source:?}"),
    ] {
        assert!(!shown.contains("sub-value-xyz"), "{shown}");
    }
    assert!(format!("{source:?}").contains("saml2"));
}

// ---- password ----

#[tokio::test]
async fn password_sends_exactly_the_rfc_6749_fields_and_hides_the_password() {
    let stub = Stub::scripted(&[(
        200,
        r#"{"access_token":"at","token_type":"bearer","refresh_token":"rt-1"}"#,
    )]);
    let source = Password::new(
        stub.endpoint(ClientAuth::client_secret_post("app", "app-secret")),
        "alice",
        "pa ss&w=rd",
    )
    .scope("openid offline_access")
    .resource("https://api.example.com/")
    .param("tenant", "acme");
    assert!(!format!("{source:?}").contains("pa ss"));
    assert!(format!("{source:?}").contains("alice"));
    let token = bounded(source.fetch_token()).await.unwrap();
    assert_eq!(token.refresh_token().unwrap().expose(), "rt-1");
    let sent = &stub.seen()[0];
    assert_eq!(
        sent.form,
        [
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "pa ss&w=rd"),
            ("scope", "openid offline_access"),
            ("resource", "https://api.example.com/"),
            ("tenant", "acme"),
            ("client_id", "app"),
            ("client_secret", "app-secret"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_typed_invalid_grant_with_the_password_redacted() {
    let stub = Stub::scripted(&[(
        400,
        r#"{"error":"invalid_grant","error_description":"bad password hunter2-xyz for alice"}"#,
    )]);
    let source = Password::new(stub.endpoint(ClientAuth::none("app")), "alice", "hunter2-xyz");
    let err = expect_err(bounded(source.fetch()).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    let text = all_text(&err);
    assert!(!text.contains("hunter2-xyz"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    // Form-urlencoded spelling of a password echoed back is redacted as well.
    let stub = Stub::scripted(&[(
        401,
        r#"{"error":"invalid_client","error_description":"got password=p%40ss+w0rd-q"}"#,
    )]);
    let err = expect_err(
        bounded(Password::new(stub.endpoint(ClientAuth::none("app")), "bob", "p@ss w0rd-q").fetch()).await,
    );
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
    assert!(!all_text(&err).contains("p%40ss+w0rd-q"), "{}", all_text(&err));
}

#[tokio::test]
async fn password_server_errors_and_hostile_bodies_are_typed() {
    let fetch = |stub: Stub| async move {
        expect_err(
            bounded(Password::new(stub.endpoint(ClientAuth::none("app")), "alice", "pw-1234").fetch()).await,
        )
    };
    let stub = Stub::new(|_| respond(500, &[("content-type", "text/plain")], "internal error"));
    assert!(matches!(fetch(stub).await, Error::HttpStatus { status, .. } if status == 500));
    let err = fetch(Stub::scripted(&[(400, r#"{"error":"unsupported_grant_type"}"#)])).await;
    assert_eq!(err.code(), Some(&ErrorCode::UnsupportedGrantType));
    for body in ["not json", r#"{"access_token":"#, r#""a string""#] {
        let err = fetch(Stub::scripted(&[(200, body)])).await;
        assert!(matches!(err, Error::MalformedResponse { .. }), "{body}: {err:?}");
    }
    // An error in a 200 answer is an error, never a token.
    let err = fetch(Stub::scripted(&[(
        200,
        r#"{"error":"invalid_scope","access_token":"no"}"#,
    )]))
    .await;
    assert_eq!(err.code(), Some(&ErrorCode::InvalidScope));
}

#[tokio::test]
async fn a_password_grants_refresh_token_works_with_refresh_token() {
    let stub = Stub::scripted(&[
        (
            200,
            r#"{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expires_in":60}"#,
        ),
        (
            200,
            r#"{"access_token":"at-2","token_type":"Bearer","expires_in":60}"#,
        ),
    ]);
    let endpoint = stub.endpoint(ClientAuth::none("app"));
    let first = bounded(
        Password::new(endpoint.clone(), "alice", "pw")
            .scope("offline_access")
            .fetch(),
    )
    .await
    .unwrap();
    let refresh = RefreshToken::new(endpoint, first.refresh_token().unwrap().clone());
    let second = bounded(refresh.fetch_token()).await.unwrap();
    assert_eq!(second.access_token().expose(), "at-2");
    assert_eq!(second.refresh_token().unwrap().expose(), "rt-1"); // kept: none rotated in
    let sent = stub.seen();
    assert_eq!(sent[1].field("grant_type"), Some("refresh_token"));
    assert_eq!(sent[1].field("refresh_token"), Some("rt-1"));
    assert_eq!(sent[1].field("password"), None);
}

#[tokio::test]
async fn a_cache_as_subject_shares_one_fetch_and_renews_an_expired_token() {
    use tower_oauth2::clock::{Clock, ManualClock};

    let clock = ManualClock::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let subject_fetches = Arc::new(AtomicU32::new(0));
    let (counter, wait, now) = (subject_fetches.clone(), gate.clone(), clock.clone());
    let held = TokenCache::builder(source_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let (wait, expires_at) = (wait.clone(), now.now() + Duration::from_secs(60));
        async move {
            // Held until the test lets it go: every exchange meanwhile waits on this fetch.
            let _permit = wait.acquire().await.unwrap();
            Ok(Token::bearer(format!("held-{n}")).with_expires_at(expires_at))
        }
    }))
    .clock(clock.clone())
    .build();
    let stub = Stub::scripted(&[(200, OK_EXCHANGE)]);
    let source = Arc::new(TokenExchange::new(
        stub.endpoint(ClientAuth::none("api")),
        SecurityToken::from_cache(held.clone()),
    ));

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.fetch().await })
        })
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(100);
    for task in tasks {
        bounded(task).await.unwrap().unwrap();
    }
    assert_eq!(
        subject_fetches.load(Ordering::SeqCst),
        1,
        "one subject fetch for 8 exchanges"
    );
    assert_eq!(stub.seen().len(), 8);
    assert!(stub
        .seen()
        .iter()
        .all(|s| s.field("subject_token") == Some("held-1")));

    // Past its expiry, the cache gets a new subject token before the next exchange.
    clock.advance(Duration::from_secs(120));
    bounded(source.fetch()).await.unwrap();
    assert_eq!(subject_fetches.load(Ordering::SeqCst), 2);
    assert_eq!(stub.seen().last().unwrap().field("subject_token"), Some("held-2"));
}
