//! The providers of part B (LinkedIn, Reddit, Okta, Shopify, Kakao, Naver, FranceConnect),
//! each against an in-process server that answers as that provider does: `id_email`, the
//! provider's quirk, error statuses and malformed bodies as typed errors, and the access token
//! sent only where it belongs.

#[cfg(feature = "jwt")]
#[path = "support/signing.rs"]
mod signing;
#[path = "support/stub.rs"]
mod stub;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use stub::util::{bounded, expect_err};
use stub::{json, respond, Seen, Stub};
use tower_oauth2::clock::ManualClock;
use tower_oauth2::provider::franceconnect::FranceConnect;
use tower_oauth2::provider::kakao::Kakao;
use tower_oauth2::provider::linkedin::LinkedIn;
use tower_oauth2::provider::naver::Naver;
use tower_oauth2::provider::okta::Okta;
use tower_oauth2::provider::reddit::Reddit;
use tower_oauth2::provider::shopify::Shopify;
use tower_oauth2::provider::{IdEmail, Provider};
use tower_oauth2::{source_fn, ClientAuth, Error, ErrorCode, Token, TokenCache, TokenSource};

const TOKEN: &str = "the-user-access-token-Zq81";
const REDDIT_UA: &str = "web:com.example.myapp:v1.0 (by /u/example)";

fn user(id: &str, email: Option<&str>) -> IdEmail {
    IdEmail {
        id: id.to_owned(),
        email: email.map(str::to_owned),
    }
}

/// Every request went to `url` (scheme, host, path), as a `GET`, with the access token only in
/// `header` (as `value`), never in the URL or the body, and without the other header.
fn assert_token_only_in(seen: &[Seen], url: &str, header: &str, value: &str) {
    assert!(!seen.is_empty(), "no request was sent");
    for request in seen {
        assert_eq!(request.uri, url, "the request went elsewhere");
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(request.header(header), Some(value), "{header}");
        let other = if header == "authorization" {
            "x-shopify-access-token"
        } else {
            "authorization"
        };
        assert_eq!(request.header(other), None, "{other} must not be sent");
        assert!(!request.uri.contains(TOKEN) && !request.body.contains(TOKEN));
        let elsewhere = request
            .headers
            .iter()
            .filter(|(name, _)| name.as_str() != header)
            .any(|(_, v)| v.to_str().unwrap_or("").contains(TOKEN));
        assert!(!elsewhere, "the token is in another header");
    }
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// A `401` whose Bearer challenge says the token is invalid, and whose body echoes it.
fn invalid_token_401() -> http::Response<http_body_util::Full<bytes::Bytes>> {
    respond(
        401,
        &[
            (
                "www-authenticate",
                &format!(r#"Bearer error="invalid_token", error_description="token {TOKEN} expired""#),
            ),
            ("content-type", "application/json"),
        ],
        format!(r#"{{"message":"token {TOKEN} is expired"}}"#),
    )
}

/// The error is `invalid_token` and does not show the token.
fn assert_invalid_token(err: &Error) {
    assert_eq!(err.code(), Some(&ErrorCode::InvalidToken), "{err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED));
    assert!(!format!("{err} {err:?}").contains(TOKEN), "{err:?}");
}

fn assert_http_status(err: &Error, status: u16) {
    assert!(
        matches!(err, Error::HttpStatus { status: s, .. } if s.as_u16() == status),
        "{err:?}"
    );
}

fn assert_malformed(err: &Error, mentions: &str) {
    assert!(
        matches!(err, Error::MalformedResponse { reason, .. } if reason.contains(mentions)),
        "{err:?} should mention {mentions}"
    );
}

/// A stand-in answering every request with `status` and `body` as JSON.
fn answering(status: u16, body: &str) -> Stub {
    let body = body.to_owned();
    Stub::new(move |_| json(status, &body))
}

// --- LinkedIn ------------------------------------------------------------------------------

fn linkedin(stub: &Stub) -> LinkedIn {
    LinkedIn::builder("li-client", "li-secret")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn linkedin_id_email_reads_the_openid_userinfo() {
    let stub = answering(
        200,
        r#"{"sub":"782bbtaQ","name":"Alice","email":"alice@example.com","email_verified":true}"#,
    );
    let got = bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(got, user("782bbtaQ", Some("alice@example.com")));
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_token_only_in(
        &seen,
        "https://api.linkedin.com/v2/userinfo",
        "authorization",
        &bearer(),
    );
}

#[tokio::test]
async fn linkedin_leaves_out_an_unverified_email_and_a_missing_one() {
    let stub = answering(
        200,
        r#"{"sub":"u1","email":"alice@example.com","email_verified":false}"#,
    );
    let got = bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(got, user("u1", None));
    let stub = answering(200, r#"{"sub":"u2"}"#);
    let got = bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(got, user("u2", None));
}

#[tokio::test]
async fn linkedin_errors_are_typed() {
    let stub = Stub::new(|_| invalid_token_401());
    assert_invalid_token(&expect_err(
        bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN))).await,
    ));
    let stub = answering(500, r#"{"message":"oops"}"#);
    assert_http_status(
        &expect_err(bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN))).await),
        500,
    );
    let stub = Stub::new(|_| respond(200, &[("content-type", "application/json")], "{\"sub\":"));
    let err = expect_err(bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN))).await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    let stub = answering(200, r#"{"email":"alice@example.com"}"#);
    assert_malformed(
        &expect_err(bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN))).await),
        "sub",
    );
    let stub = answering(200, r#"{"sub":"u","email":42}"#);
    assert_malformed(
        &expect_err(bounded(linkedin(&stub).id_email(&Token::bearer(TOKEN))).await),
        "email",
    );
}

// --- Reddit --------------------------------------------------------------------------------

fn reddit(stub: &Stub) -> Reddit {
    Reddit::builder("rd-client", "rd-secret", REDDIT_UA)
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn reddit_id_email_is_the_account_id_with_no_email_and_the_user_agent() {
    let stub = answering(
        200,
        r#"{"id":"1w72","name":"spez","is_employee":true,"total_karma":900}"#,
    );
    let got = bounded(reddit(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(got, user("1w72", None));
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_token_only_in(
        &seen,
        "https://oauth.reddit.com/api/v1/me",
        "authorization",
        &bearer(),
    );
    assert_eq!(seen[0].header("user-agent"), Some(REDDIT_UA));
}

#[tokio::test]
async fn reddit_token_endpoint_gets_basic_authentication_only_and_the_user_agent() {
    let stub = answering(
        200,
        r#"{"access_token":"at-2","token_type":"bearer","expires_in":3600,"scope":"identity"}"#,
    );
    let token = bounded(reddit(&stub).client().refresh_token("rt-1").fetch_token())
        .await
        .unwrap();
    assert_eq!(token.access_token().expose(), "at-2");
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.uri, "https://www.reddit.com/api/v1/access_token");
    assert_eq!(request.header("user-agent"), Some(REDDIT_UA));
    let basic = base64::engine::general_purpose::STANDARD.encode("rd-client:rd-secret");
    assert_eq!(request.authorization(), Some(format!("Basic {basic}").as_str()));
    assert_eq!(
        request.field("client_secret"),
        None,
        "the secret goes in the header only"
    );
    assert_eq!(request.field("client_id"), None);
    assert_eq!(request.field("grant_type"), Some("refresh_token"));

    // An installed app has no secret: Basic with an empty password.
    let stub = answering(
        200,
        r#"{"access_token":"at-3","token_type":"bearer","expires_in":3600}"#,
    );
    let app = Reddit::builder("rd-app", "", REDDIT_UA)
        .http_client(stub.http.clone())
        .build()
        .unwrap();
    bounded(app.client().refresh_token("rt-1").fetch_token())
        .await
        .unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode("rd-app:");
    assert_eq!(
        stub.seen()[0].authorization(),
        Some(format!("Basic {basic}").as_str())
    );
}

#[test]
fn reddit_requires_a_user_agent_and_basic_authentication() {
    for bad in ["", "   ", "bad\nagent", "ünicode/1.0"] {
        let err = expect_err(Reddit::new("rd-client", "rd-secret", bad));
        assert!(matches!(err, Error::Config(_)), "{bad:?}: {err:?}");
    }
    for auth in [
        ClientAuth::client_secret_post("rd-client", "rd-secret"),
        ClientAuth::none("rd-client"),
    ] {
        let err = expect_err(
            Reddit::builder("rd-client", "rd-secret", REDDIT_UA)
                .client_auth(auth)
                .build(),
        );
        assert!(
            matches!(&err, Error::Config(m) if m.contains("client_secret_basic")),
            "{err:?}"
        );
    }
    let reddit = Reddit::new("rd-client", "rd-secret", format!("  {REDDIT_UA} ")).unwrap();
    assert_eq!(reddit.user_agent(), REDDIT_UA);
    assert!(!format!("{reddit:?}").contains("rd-secret"));
}

#[tokio::test]
async fn reddit_errors_are_typed() {
    // Reddit's 401: a number as `error`, and a Bearer challenge.
    let stub = Stub::new(|_| {
        respond(
            401,
            &[
                (
                    "www-authenticate",
                    r#"Bearer realm="reddit", error="invalid_token""#,
                ),
                ("content-type", "application/json"),
            ],
            r#"{"message": "Unauthorized", "error": 401}"#,
        )
    });
    assert_invalid_token(&expect_err(
        bounded(reddit(&stub).id_email(&Token::bearer(TOKEN))).await,
    ));
    // Without the challenge: a bare 401 is the token refused, `invalid_token` all the same.
    let stub = answering(401, r#"{"message": "Unauthorized", "error": 401}"#);
    assert_invalid_token(&expect_err(
        bounded(reddit(&stub).id_email(&Token::bearer(TOKEN))).await,
    ));
    let stub = answering(503, r#"{"message": "Service Unavailable", "error": 503}"#);
    assert_http_status(
        &expect_err(bounded(reddit(&stub).id_email(&Token::bearer(TOKEN))).await),
        503,
    );
    let stub = Stub::new(|_| respond(200, &[("content-type", "text/html")], "<html>blocked</html>"));
    let err = expect_err(bounded(reddit(&stub).id_email(&Token::bearer(TOKEN))).await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    let stub = answering(200, r#"{"name":"spez"}"#);
    assert_malformed(
        &expect_err(bounded(reddit(&stub).id_email(&Token::bearer(TOKEN))).await),
        "id",
    );
    // A token-endpoint error with HTTP 200, as Reddit sends them.
    let stub = answering(200, r#"{"error":"invalid_grant"}"#);
    let err = expect_err(bounded(reddit(&stub).client().refresh_token("rt").fetch_token()).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err:?}");
}

/// A loopback HTTP/1.1 server that records each request's head and answers with `answer`.
async fn recording_server(answer: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&seen).to_ascii_lowercase());
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), heads)
}

#[tokio::test]
async fn reddit_user_agent_reaches_the_wire_through_the_default_client() {
    let (base, heads) =
        recording_server(r#"{"access_token":"at-2","token_type":"bearer","expires_in":3600,"id":"1w72"}"#)
            .await;
    let reddit = Reddit::builder("rd-client", "rd-secret", REDDIT_UA)
        .base_url(base)
        .build()
        .unwrap();
    bounded(reddit.client().refresh_token("rt-1").fetch_token())
        .await
        .unwrap();
    let got = bounded(reddit.id_email(&Token::bearer(TOKEN))).await.unwrap();
    assert_eq!(got.id, "1w72");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    assert!(heads[0].starts_with("post /api/v1/access_token "), "{}", heads[0]);
    assert!(heads[1].starts_with("get /api/v1/me "), "{}", heads[1]);
    let ua_line = format!("user-agent: {}\r\n", REDDIT_UA.to_ascii_lowercase());
    for head in &heads {
        assert_eq!(head.matches("user-agent:").count(), 1, "{head}");
        assert!(head.contains(&ua_line), "{head}");
    }
}

// --- Okta ----------------------------------------------------------------------------------

#[tokio::test]
async fn okta_default_server_id_email_and_fixed_urls() {
    let stub = answering(
        200,
        r#"{"sub":"00uid4BxXw6I6TV4m0g3","email":"alice@example.com","email_verified":true}"#,
    );
    let okta = Okta::builder("dev-123.okta.com", "ok-client", "ok-secret")
        .http_client(stub.http.clone())
        .build()
        .unwrap();
    let got = bounded(okta.id_email(&Token::bearer(TOKEN))).await.unwrap();
    assert_eq!(got, user("00uid4BxXw6I6TV4m0g3", Some("alice@example.com")));
    assert_token_only_in(
        &stub.seen(),
        "https://dev-123.okta.com/oauth2/default/v1/userinfo",
        "authorization",
        &bearer(),
    );
    let client = okta.client();
    assert_eq!(client.issuer(), Some("https://dev-123.okta.com/oauth2/default"));
    assert_eq!(client.client_auth().method(), "client_secret_basic");
    assert_eq!(
        client.token_endpoint().token_url().as_str(),
        "https://dev-123.okta.com/oauth2/default/v1/token"
    );
    assert_eq!(
        client.revocation_url().map(|u| u.as_str()),
        Some("https://dev-123.okta.com/oauth2/default/v1/revoke")
    );
}

/// An address the provider does not say it verified is anyone's to claim: no `email_verified`,
/// no e-mail.
#[tokio::test]
async fn okta_gives_no_email_without_email_verified() {
    for answer in [
        r#"{"sub":"00u1","email":"alice@example.com"}"#,
        r#"{"sub":"00u1","email":"alice@example.com","email_verified":false}"#,
    ] {
        let stub = answering(200, answer);
        let okta = Okta::builder("dev-123.okta.com", "ok-client", "ok-secret")
            .http_client(stub.http.clone())
            .build()
            .unwrap();
        let got = bounded(okta.id_email(&Token::bearer(TOKEN))).await.unwrap();
        assert_eq!(got, user("00u1", None), "{answer}");
    }
}

#[tokio::test]
async fn okta_discovery_of_a_custom_authorization_server() {
    let issuer = "https://acme.okta.com/oauth2/aus1a2b3c4d5E6f7g8h9";
    let stub = Stub::new(move |request| match request.path.as_str() {
        "/oauth2/aus1a2b3c4d5E6f7g8h9/.well-known/openid-configuration" => json(
            200,
            &format!(
                r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/v1/authorize",
                "token_endpoint":"{issuer}/v1/token","userinfo_endpoint":"{issuer}/v1/userinfo",
                "jwks_uri":"{issuer}/v1/keys",
                "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}}"#
            ),
        ),
        "/oauth2/aus1a2b3c4d5E6f7g8h9/v1/userinfo" => json(
            200,
            r#"{"sub":"00u42","email":"bob@acme.com","email_verified":true}"#,
        ),
        _ => json(404, "{}"),
    });
    let okta = bounded(
        Okta::builder("acme.okta.com", "ok-client", "ok-secret")
            .authorization_server("aus1a2b3c4d5E6f7g8h9")
            .http_client(stub.http.clone())
            .discover(),
    )
    .await
    .unwrap();
    assert!(okta.client().metadata().is_some());
    // The server advertises client_secret_post only (of the secret methods): switched to it.
    assert_eq!(okta.client().client_auth().method(), "client_secret_post");
    let got = bounded(okta.id_email(&Token::bearer(TOKEN))).await.unwrap();
    assert_eq!(got, user("00u42", Some("bob@acme.com")));
    let seen = stub.seen();
    assert_eq!(seen.len(), 2, "one discovery, one userinfo");
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "discovery carries no token"
    );
    assert_token_only_in(
        &seen[1..],
        &format!("{issuer}/v1/userinfo"),
        "authorization",
        &bearer(),
    );
}

#[test]
fn okta_refuses_a_domain_or_server_id_that_could_point_elsewhere() {
    for domain in [
        "evil.example.com/x",
        "dev-123.okta.com:444",
        "user@dev-123.okta.com",
        "http://dev-123.okta.com",
        "dev-123.okta.com?x=",
        "",
    ] {
        let err = expect_err(Okta::new(domain, "ok-client", "ok-secret"));
        assert!(matches!(err, Error::Config(_)), "{domain:?}: {err:?}");
    }
    for id in ["", "../default", "a/b", "default?x"] {
        let err = expect_err(
            Okta::builder("dev-123.okta.com", "ok-client", "ok-secret")
                .authorization_server(id)
                .build(),
        );
        assert!(matches!(err, Error::Config(_)), "{id:?}: {err:?}");
    }
    let org = Okta::builder("https://Dev-123.okta.com/", "ok-client", "ok-secret")
        .org_authorization_server()
        .build()
        .unwrap();
    assert_eq!(org.client().issuer(), Some("https://dev-123.okta.com"));
    assert_eq!(
        org.client().token_endpoint().token_url().as_str(),
        "https://dev-123.okta.com/oauth2/v1/token"
    );
}

#[tokio::test]
async fn okta_errors_are_typed() {
    let okta = |stub: &Stub| {
        Okta::builder("dev-123.okta.com", "ok-client", "ok-secret")
            .http_client(stub.http.clone())
            .build()
            .unwrap()
    };
    let stub = Stub::new(|_| invalid_token_401());
    assert_invalid_token(&expect_err(
        bounded(okta(&stub).id_email(&Token::bearer(TOKEN))).await,
    ));
    let stub = answering(
        500,
        r#"{"errorCode":"E0000009","errorSummary":"Internal Server Error"}"#,
    );
    assert_http_status(
        &expect_err(bounded(okta(&stub).id_email(&Token::bearer(TOKEN))).await),
        500,
    );
    let stub = answering(200, "[]");
    let err = expect_err(bounded(okta(&stub).id_email(&Token::bearer(TOKEN))).await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
}

// --- Shopify -------------------------------------------------------------------------------

fn shopify(stub: &Stub) -> Shopify {
    Shopify::builder("sh-client", "sh-secret", "my-shop")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn shopify_id_email_is_the_shop_with_the_token_in_its_own_header() {
    let stub = answering(
        200,
        r#"{"shop":{"id":548380009,"name":"John Smith Test Store","email":"j.smith@example.com",
            "domain":"shop.example.com","myshopify_domain":"my-shop.myshopify.com"}}"#,
    );
    let got = bounded(shopify(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(got, user("548380009", Some("j.smith@example.com")));
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_token_only_in(
        &seen,
        "https://my-shop.myshopify.com/admin/api/2025-10/shop.json",
        "x-shopify-access-token",
        TOKEN,
    );
}

#[test]
fn shopify_refuses_a_shop_that_could_point_elsewhere() {
    for shop in [
        "evil.com",
        "evil.com#",
        "evil.com/",
        "my-shop.myshopify.com.evil.com",
        "my-shop.myshopify.com@evil.com",
        "my-shop:443",
        "https://my-shop.myshopify.com",
        "my_shop",
        "",
    ] {
        let err = expect_err(Shopify::new("sh-client", "sh-secret", shop));
        assert!(matches!(err, Error::Config(_)), "{shop:?}: {err:?}");
    }
    for version in ["2025-1", "../../admin", "latest", "2025-10/x"] {
        let err = expect_err(
            Shopify::builder("sh-client", "sh-secret", "my-shop")
                .api_version(version)
                .build(),
        );
        assert!(matches!(err, Error::Config(_)), "{version:?}: {err:?}");
    }
    let shop = Shopify::new("sh-client", "sh-secret", "My-Shop.myshopify.com").unwrap();
    assert_eq!(shop.shop(), "my-shop.myshopify.com");
    assert_eq!(shop.client().client_auth().method(), "client_secret_post");
}

#[tokio::test]
async fn shopify_errors_are_typed() {
    // Shopify's 401: `errors` text, which here echoes the token.
    let stub = answering(
        401,
        &format!(r#"{{"errors":"[API] Invalid API key or access token ({TOKEN})"}}"#),
    );
    let err = expect_err(bounded(shopify(&stub).id_email(&Token::bearer(TOKEN))).await);
    assert_invalid_token(&err);
    let description = err.server_error().and_then(|e| e.description.clone()).unwrap();
    assert!(description.starts_with("[API] Invalid API key"), "{description}");
    let stub = answering(500, r#"{"errors":"Internal Server Error"}"#);
    assert_http_status(
        &expect_err(bounded(shopify(&stub).id_email(&Token::bearer(TOKEN))).await),
        500,
    );
    let stub = answering(200, r#"{"shop":{"name":"no id"}}"#);
    assert_malformed(
        &expect_err(bounded(shopify(&stub).id_email(&Token::bearer(TOKEN))).await),
        "id",
    );
    let stub = answering(200, r#"{"shops":[]}"#);
    assert_malformed(
        &expect_err(bounded(shopify(&stub).id_email(&Token::bearer(TOKEN))).await),
        "shop",
    );
    let stub = Stub::new(|_| {
        respond(
            200,
            &[("content-type", "application/json")],
            "{\"shop\":{\"id\":1",
        )
    });
    assert_malformed(
        &expect_err(bounded(shopify(&stub).id_email(&Token::bearer(TOKEN))).await),
        "JSON",
    );
}

/// Offline tokens never expire and come without a refresh token: a cache keeps serving the
/// one it has, however much time passes, and asks its source again only once invalidated.
#[tokio::test]
async fn a_token_without_expiry_is_served_until_invalidated() {
    let clock = ManualClock::new();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let source = source_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok(Token::bearer(format!("shpat_{n}"))) }
    });
    let cache = TokenCache::builder(source).clock(clock.clone()).build();
    let first = bounded(cache.valid_token()).await.unwrap();
    assert_eq!(first.expires_at(), None);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(400 * 24 * 3600));
        let token = bounded(cache.valid_token()).await.unwrap();
        assert_eq!(token.access_token().expose(), "shpat_0");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    cache.invalidate();
    let token = bounded(cache.valid_token()).await.unwrap();
    assert_eq!(token.access_token().expose(), "shpat_1");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

/// Through `OAuth2Layer` and `access_token_header`, an offline token reaches the Admin API in
/// `X-Shopify-Access-Token` only, request after request, a year apart, from one fetch.
#[tokio::test]
async fn shopify_offline_token_reaches_the_admin_api_through_the_layer() {
    use tower::{ServiceBuilder, ServiceExt as _};
    use tower_oauth2::provider::shopify::access_token_header;
    use tower_oauth2::OAuth2Layer;

    let clock = ManualClock::new();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let source = source_fn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(Token::bearer("shpat_offline")) }
    });
    let cache = TokenCache::builder(source).clock(clock.clone()).build();
    let seen: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let admin_api = tower::service_fn(
        move |request: http::Request<http_body_util::Full<bytes::Bytes>>| {
            record.lock().unwrap().push(request.headers().clone());
            async { Ok::<_, std::convert::Infallible>(json(200, r#"{"orders":[]}"#)) }
        },
    );
    let client = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache))
        .map_request(access_token_header)
        .service(admin_api);
    for _ in 0..3 {
        let request = http::Request::get("https://my-shop.myshopify.com/admin/api/2025-10/orders.json")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = bounded(client.clone().oneshot(request)).await.unwrap();
        assert_eq!(response.status(), 200);
        clock.advance(Duration::from_secs(365 * 24 * 3600));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    for headers in seen.lock().unwrap().iter() {
        assert_eq!(headers["x-shopify-access-token"], "shpat_offline");
        assert!(headers["x-shopify-access-token"].is_sensitive());
        assert!(headers.get("authorization").is_none());
    }
    // A request without a Bearer token is left alone.
    let basic = http::Request::get("/")
        .header("authorization", "Basic dXNlcjpwdw==")
        .body(())
        .unwrap();
    let basic = access_token_header(basic);
    assert_eq!(basic.headers()["authorization"], "Basic dXNlcjpwdw==");
    assert!(basic.headers().get("x-shopify-access-token").is_none());
}

// --- Kakao ---------------------------------------------------------------------------------

fn kakao(stub: &Stub) -> Kakao {
    Kakao::builder("kk-key", "kk-secret")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn kakao_id_email_reads_kakao_account() {
    let stub = answering(
        200,
        r#"{"id":2984917352,"connected_at":"2022-04-11T01:45:28Z",
            "kakao_account":{"email_needs_agreement":false,"is_email_valid":true,
            "is_email_verified":true,"email":"alice@kakao.com","profile":{"nickname":"alice"}}}"#,
    );
    let got = bounded(kakao(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(got, user("2984917352", Some("alice@kakao.com")));
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_token_only_in(
        &seen,
        "https://kapi.kakao.com/v2/user/me",
        "authorization",
        &bearer(),
    );
}

#[tokio::test]
async fn kakao_leaves_out_an_email_it_does_not_vouch_for() {
    for body in [
        r#"{"id":1,"kakao_account":{"email":"a@kakao.com","is_email_valid":false,"is_email_verified":true}}"#,
        r#"{"id":1,"kakao_account":{"email":"a@kakao.com","is_email_valid":true,"is_email_verified":false}}"#,
        r#"{"id":1,"kakao_account":{"email_needs_agreement":true}}"#,
        r#"{"id":1}"#,
    ] {
        let stub = answering(200, body);
        let got = bounded(kakao(&stub).id_email(&Token::bearer(TOKEN)))
            .await
            .unwrap();
        assert_eq!(got, user("1", None), "{body}");
    }
}

#[tokio::test]
async fn kakao_errors_are_typed() {
    let stub = answering(401, r#"{"msg":"this access token does not exist","code":-401}"#);
    assert_invalid_token(&expect_err(
        bounded(kakao(&stub).id_email(&Token::bearer(TOKEN))).await,
    ));
    let stub = answering(500, r#"{"msg":"internal error","code":-1}"#);
    assert_http_status(
        &expect_err(bounded(kakao(&stub).id_email(&Token::bearer(TOKEN))).await),
        500,
    );
    let stub = answering(200, r#"{"id":1,"kakao_account":"alice@kakao.com"}"#);
    assert_malformed(
        &expect_err(bounded(kakao(&stub).id_email(&Token::bearer(TOKEN))).await),
        "kakao_account",
    );
    let stub = answering(200, r#"{"kakao_account":{}}"#);
    assert_malformed(
        &expect_err(bounded(kakao(&stub).id_email(&Token::bearer(TOKEN))).await),
        "id",
    );
}

// --- Naver ---------------------------------------------------------------------------------

fn naver(stub: &Stub) -> Naver {
    Naver::builder("nv-client", "nv-secret")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn naver_id_email_reads_the_response_object() {
    let stub = answering(
        200,
        r#"{"resultcode":"00","message":"success","response":{"id":"32742776",
            "nickname":"OpenAPI","email":"openapi@naver.com"}}"#,
    );
    let got = bounded(naver(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(got, user("32742776", Some("openapi@naver.com")));
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_token_only_in(
        &seen,
        "https://openapi.naver.com/v1/nid/me",
        "authorization",
        &bearer(),
    );
}

#[tokio::test]
async fn naver_result_codes_are_typed_errors() {
    let cases: [(u16, String, ErrorCode); 5] = [
        (
            401,
            format!(r#"{{"resultcode":"024","message":"Authentication failed ({TOKEN})"}}"#),
            ErrorCode::InvalidToken,
        ),
        (
            200,
            r#"{"resultcode":"028","message":"Authentication header not exists"}"#.to_owned(),
            ErrorCode::InvalidToken,
        ),
        (
            403,
            r#"{"resultcode":"403","message":"Forbidden"}"#.to_owned(),
            ErrorCode::Other("insufficient_scope".to_owned()),
        ),
        (
            500,
            r#"{"resultcode":"500","message":"Internal Server Error"}"#.to_owned(),
            ErrorCode::ServerError,
        ),
        (
            401,
            r#"{"errorMessage":"Authentication failed","errorCode":"024"}"#.to_owned(),
            ErrorCode::InvalidToken,
        ),
    ];
    for (status, body, code) in cases {
        let stub = answering(status, &body);
        let err = expect_err(bounded(naver(&stub).id_email(&Token::bearer(TOKEN))).await);
        assert_eq!(err.code(), Some(&code), "{body}: {err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        let description = err.server_error().and_then(|e| e.description.clone()).unwrap();
        assert!(
            !description.is_empty() && !description.contains(TOKEN),
            "{description}"
        );
        assert!(!format!("{err} {err:?}").contains(TOKEN));
    }
}

#[tokio::test]
async fn naver_errors_without_a_result_code_are_typed() {
    let stub = Stub::new(|_| respond(502, &[("content-type", "text/html")], "<html>Bad Gateway</html>"));
    assert_http_status(
        &expect_err(bounded(naver(&stub).id_email(&Token::bearer(TOKEN))).await),
        502,
    );
    let stub = answering(200, r#"{"resultcode":"00","message":"success"}"#);
    assert_malformed(
        &expect_err(bounded(naver(&stub).id_email(&Token::bearer(TOKEN))).await),
        "response",
    );
    let stub = answering(200, r#"{"resultcode":"00","response":{"email":"a@naver.com"}}"#);
    assert_malformed(
        &expect_err(bounded(naver(&stub).id_email(&Token::bearer(TOKEN))).await),
        "id",
    );
}

#[tokio::test]
async fn naver_token_endpoint_errors_come_with_http_200() {
    let stub = answering(
        200,
        r#"{"error":"invalid_request","error_description":"no valid data in session"}"#,
    );
    let err = expect_err(bounded(naver(&stub).client().refresh_token("rt").fetch_token()).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidRequest), "{err:?}");
    // `expires_in` as a string, as Naver sends it; the secret goes in the body.
    let stub = answering(
        200,
        r#"{"access_token":"at-9","refresh_token":"rt-9","token_type":"bearer","expires_in":"3600"}"#,
    );
    let token = bounded(naver(&stub).client().refresh_token("rt").fetch_token())
        .await
        .unwrap();
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
    let seen = stub.seen();
    assert_eq!(seen[0].uri, "https://nid.naver.com/oauth2.0/token");
    assert_eq!(seen[0].field("client_secret"), Some("nv-secret"));
    assert_eq!(seen[0].authorization(), None);
}

// --- FranceConnect -------------------------------------------------------------------------

fn franceconnect(stub: &Stub) -> FranceConnect {
    FranceConnect::builder("fc-client", "fc-secret")
        .integration()
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

/// A FranceConnect login without discovery: its ES256 ID token, with the login's nonce, is
/// verified at the exchange (`build` knows FranceConnect's algorithms).
#[cfg(feature = "jwt")]
#[tokio::test]
async fn franceconnect_login_without_discovery_verifies_an_es256_id_token() {
    let key = signing::Key::es256(Some("fc-1"));
    let jwks = signing::jwks(&[&key]);
    let nonce: Arc<Mutex<String>> = Arc::default();
    let seen_nonce = nonce.clone();
    let stub = Stub::new(move |request| match request.path.as_str() {
        "/api/v2/token" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let id_token = key.sign(&serde_json::json!({
                "iss": "https://fcp-low.integ01.dev-franceconnect.fr/api/v2", "sub": "fc-sub-1",
                "aud": "fc-client", "iat": now, "exp": now + 60, "acr": "eidas1",
                "nonce": seen_nonce.lock().unwrap().clone(),
            }));
            json(
                200,
                &serde_json::json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 60, "id_token": id_token})
                    .to_string(),
            )
        }
        "/api/v2/jwks" => json(200, &jwks),
        _ => json(404, "{}"),
    });
    let provider = franceconnect(&stub);
    let (_url, pending) = provider
        .authorization_request("https://app.example.com/callback")
        .build()
        .unwrap()
        .into_parts();
    *nonce.lock().unwrap() = pending.nonce().unwrap().expose().to_owned();
    let callback = tower_oauth2::Callback::from_url(&format!(
        "https://app.example.com/callback?code=c&state={}",
        pending.state()
    ))
    .unwrap();
    let login = bounded(provider.client().exchange_code(&pending, &callback))
        .await
        .unwrap();
    assert_eq!(login.id_token().unwrap().claims().subject(), "fc-sub-1");
}

#[tokio::test]
async fn franceconnect_id_email_reads_a_json_userinfo() {
    let stub = answering(
        200,
        r#"{"sub":"b6048e95bb134ec5b1d1e1fa69f287172e91722b9354d637a1bcf2ebb0fd2ef5v1",
            "email":"alice@example.fr","given_name":"Alice","email_verified":true}"#,
    );
    let got = bounded(franceconnect(&stub).id_email(&Token::bearer(TOKEN)))
        .await
        .unwrap();
    assert_eq!(
        got,
        user(
            "b6048e95bb134ec5b1d1e1fa69f287172e91722b9354d637a1bcf2ebb0fd2ef5v1",
            Some("alice@example.fr")
        )
    );
    assert_token_only_in(
        &stub.seen(),
        "https://fcp-low.integ01.dev-franceconnect.fr/api/v2/userinfo",
        "authorization",
        &bearer(),
    );
    let production = FranceConnect::new("fc-client", "fc-secret").unwrap();
    assert_eq!(
        production.client().userinfo_url().map(|u| u.as_str()),
        Some("https://oidc.franceconnect.gouv.fr/api/v2/userinfo")
    );
}

#[tokio::test]
async fn franceconnect_signed_userinfo_is_a_typed_error() {
    let stub = Stub::new(|_| {
        respond(
            200,
            &[("content-type", "application/jwt; charset=utf-8")],
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
        )
    });
    let err = expect_err(bounded(franceconnect(&stub).id_email(&Token::bearer(TOKEN))).await);
    assert!(matches!(err, Error::SignedUserInfoUnsupported), "{err:?}");
}

#[tokio::test]
async fn franceconnect_errors_are_typed() {
    let stub = Stub::new(|_| invalid_token_401());
    assert_invalid_token(&expect_err(
        bounded(franceconnect(&stub).id_email(&Token::bearer(TOKEN))).await,
    ));
    let stub = answering(500, r#"{"status":"fail"}"#);
    assert_http_status(
        &expect_err(bounded(franceconnect(&stub).id_email(&Token::bearer(TOKEN))).await),
        500,
    );
    let stub = answering(200, r#"{"email":"alice@example.fr"}"#);
    assert_malformed(
        &expect_err(bounded(franceconnect(&stub).id_email(&Token::bearer(TOKEN))).await),
        "sub",
    );
}

// --- All of them ---------------------------------------------------------------------------

/// Every provider is usable behind `dyn Provider`, and none shows its client secret.
#[test]
fn providers_are_object_safe_and_keep_their_secret() {
    let secret = "the-client-secret-Kp3";
    let providers: Vec<Box<dyn Provider>> = vec![
        Box::new(LinkedIn::new("id", secret).unwrap()),
        Box::new(Reddit::new("id", secret, REDDIT_UA).unwrap()),
        Box::new(Okta::new("dev-1.okta.com", "id", secret).unwrap()),
        Box::new(Shopify::new("id", secret, "my-shop").unwrap()),
        Box::new(Kakao::new("id", secret).unwrap()),
        Box::new(Naver::new("id", secret).unwrap()),
        Box::new(FranceConnect::new("id", secret).unwrap()),
    ];
    for provider in &providers {
        let shown = format!("{provider:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert_eq!(provider.client().client_auth().client_id(), "id");
        assert_eq!(provider.client().token_endpoint().token_url().scheme(), "https");
    }
}

// --- Authorization requests and code exchanges ---------------------------------------------

/// The query of `provider`'s authorization URL, as (name, value) pairs.
fn authorization_query(provider: &dyn Provider) -> (String, Vec<(String, String)>) {
    let authorization = provider
        .authorization_request("https://app.example.com/callback")
        .build()
        .unwrap();
    let url = authorization.url();
    let base = format!("{}://{}{}", url.scheme(), url.host_str().unwrap(), url.path());
    (base, url.query_pairs().into_owned().collect())
}

fn only<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    stub::util::only_field(query, name)
}

#[test]
fn authorization_urls_carry_each_providers_parameters() {
    let (base, q) = authorization_query(&LinkedIn::new("li", "s").unwrap());
    assert_eq!(base, "https://www.linkedin.com/oauth/v2/authorization");
    assert_eq!(only(&q, "scope"), Some("openid profile email"));
    assert_eq!(only(&q, "nonce"), None, "LinkedIn's ID tokens never carry it");
    assert_eq!(
        only(&q, "code_challenge"),
        None,
        "LinkedIn's web apps refuse PKCE"
    );
    assert_eq!(only(&q, "code_challenge_method"), None);

    let (base, q) = authorization_query(&Reddit::new("rd", "s", REDDIT_UA).unwrap());
    assert_eq!(base, "https://www.reddit.com/api/v1/authorize");
    assert_eq!(only(&q, "duration"), Some("permanent"));
    assert_eq!(only(&q, "scope"), Some("identity"));
    let temporary = Reddit::builder("rd", "s", REDDIT_UA).temporary().build().unwrap();
    assert_eq!(
        only(&authorization_query(&temporary).1, "duration"),
        Some("temporary")
    );

    let (base, q) = authorization_query(&Okta::new("dev-1.okta.com", "ok", "s").unwrap());
    assert_eq!(base, "https://dev-1.okta.com/oauth2/default/v1/authorize");
    assert_eq!(only(&q, "scope"), Some("openid email"));
    assert!(only(&q, "nonce").is_some());

    let shopify = Shopify::builder("sh", "s", "my-shop")
        .scopes("read_orders write_products, read_customers")
        .online_access()
        .build()
        .unwrap();
    let (base, q) = authorization_query(&shopify);
    assert_eq!(base, "https://my-shop.myshopify.com/admin/oauth/authorize");
    assert_eq!(
        only(&q, "scope"),
        Some("read_orders,write_products,read_customers")
    );
    assert_eq!(only(&q, "grant_options[]"), Some("per-user"));
    let offline = authorization_query(&Shopify::new("sh", "s", "my-shop").unwrap()).1;
    assert_eq!(only(&offline, "scope"), Some("read_orders"));
    assert_eq!(
        only(&offline, "grant_options[]"),
        None,
        "offline access by default"
    );

    let (base, q) = authorization_query(&Kakao::new("kk", "s").unwrap());
    assert_eq!(base, "https://kauth.kakao.com/oauth/authorize");
    assert_eq!(only(&q, "scope"), Some("profile_nickname,account_email"));

    let (base, q) = authorization_query(&Naver::new("nv", "s").unwrap());
    assert_eq!(base, "https://nid.naver.com/oauth2.0/authorize");
    assert_eq!(only(&q, "scope"), None, "Naver's scopes are set in its console");
    assert!(
        only(&q, "state").is_some_and(|s| !s.is_empty()),
        "Naver requires a state"
    );

    let (base, q) = authorization_query(&FranceConnect::new("fc", "s").unwrap());
    assert_eq!(base, "https://oidc.franceconnect.gouv.fr/api/v2/authorize");
    assert_eq!(only(&q, "acr_values"), Some("eidas1"));
    assert!(
        only(&q, "nonce").is_some_and(|n| n.len() >= 22),
        "FranceConnect requires a nonce"
    );
    assert!(only(&q, "state").is_some_and(|s| s.len() >= 22));
    // Scopes without `openid`: it is added, so the nonce is still sent.
    let franceconnect = FranceConnect::builder("fc", "s")
        .scopes("email given_name")
        .integration()
        .build()
        .unwrap();
    let (base, q) = authorization_query(&franceconnect);
    assert_eq!(
        base,
        "https://fcp-low.integ01.dev-franceconnect.fr/api/v2/authorize"
    );
    assert_eq!(only(&q, "scope"), Some("openid email given_name"));
    assert!(only(&q, "nonce").is_some());
}

/// A login with `provider`: its authorization request, a callback with a code, the exchange.
async fn log_in(provider: &dyn Provider) -> tower_oauth2::Login {
    let (_url, pending) = provider
        .authorization_request("https://app.example.com/callback")
        .build()
        .unwrap()
        .into_parts();
    let callback = tower_oauth2::Callback::from_url(&format!(
        "https://app.example.com/callback?code=the-code&state={}",
        pending.state()
    ))
    .unwrap();
    bounded(provider.client().exchange_code(&pending, &callback))
        .await
        .unwrap()
}

/// LinkedIn's login: the secret in the form, no `code_verifier` (its web apps refuse one),
/// and an RS256 ID token without a nonce (LinkedIn never puts one in) verified with the keys
/// at its JWKS URL.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn linkedin_code_exchange_sends_no_code_verifier_and_verifies_its_id_token() {
    let key = signing::Key::rs256("li-1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let id_token = key.sign(&serde_json::json!({
        "iss": "https://www.linkedin.com/oauth", "sub": "li-sub-1", "aud": "li-client",
        "iat": now, "exp": now + 3600, "email": "ada@example.com",
    }));
    let answer = serde_json::json!({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 5184000, "id_token": id_token,
    })
    .to_string();
    let jwks = signing::jwks(&[&key]);
    let stub = Stub::new(move |request| match request.path.as_str() {
        "/oauth/v2/accessToken" => json(200, &answer),
        "/oauth/openid/jwks" => json(200, &jwks),
        _ => json(404, "{}"),
    });
    let login = log_in(&linkedin(&stub)).await;
    assert_eq!(login.token().access_token().expose(), "at-1");
    assert_eq!(login.id_token().unwrap().claims().subject(), "li-sub-1");
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].uri, "https://www.linkedin.com/oauth/v2/accessToken");
    assert_eq!(seen[0].field("code_verifier"), None);
    assert_eq!(seen[0].field("client_id"), Some("li-client"));
    assert_eq!(seen[0].field("client_secret"), Some("li-secret"));
    assert_eq!(seen[0].authorization(), None);
    assert_eq!(seen[1].uri, "https://www.linkedin.com/oauth/openid/jwks");
}

#[tokio::test]
async fn reddit_code_exchange_sends_basic_authentication_and_the_user_agent() {
    let stub = answering(
        200,
        r#"{"access_token":"at-1","token_type":"bearer","expires_in":86400,"refresh_token":"rt-1","scope":"identity"}"#,
    );
    let login = log_in(&reddit(&stub)).await;
    assert!(
        login.token().refresh_token().is_some(),
        "duration=permanent gives a refresh token"
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "https://www.reddit.com/api/v1/access_token");
    assert_eq!(seen[0].header("user-agent"), Some(REDDIT_UA));
    assert!(seen[0].authorization().is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(seen[0].field("client_secret"), None);
    assert_eq!(seen[0].field("code"), Some("the-code"));
    assert!(seen[0].field("code_verifier").is_some());
}

/// Shopify's offline token (no `expires_in`, no refresh token) from a real code exchange:
/// `Login::into_layer` keeps serving it, years later by the client's clock, with no further
/// token request.
#[tokio::test]
async fn shopify_offline_login_is_served_by_into_layer() {
    use tower::{ServiceBuilder, ServiceExt as _};
    use tower_oauth2::provider::shopify::access_token_header;

    let stub = answering(200, r#"{"access_token":"shpat_offline","scope":"read_orders"}"#);
    let clock = ManualClock::new();
    let shopify = Shopify::builder("sh-client", "sh-secret", "my-shop")
        .http_client(stub.http.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let login = log_in(&shopify).await;
    assert_eq!(login.token().expires_at(), None, "offline tokens never expire");
    assert!(login.token().refresh_token().is_none());
    let exchange = &stub.seen()[0];
    assert_eq!(
        exchange.uri,
        "https://my-shop.myshopify.com/admin/oauth/access_token"
    );
    assert_eq!(exchange.field("client_id"), Some("sh-client"));
    assert_eq!(exchange.field("client_secret"), Some("sh-secret"));
    assert_eq!(exchange.authorization(), None);

    let seen: Arc<Mutex<Vec<(String, http::HeaderMap)>>> = Arc::default();
    let record = seen.clone();
    let admin_api = tower::service_fn(
        move |request: http::Request<http_body_util::Full<bytes::Bytes>>| {
            record
                .lock()
                .unwrap()
                .push((request.uri().to_string(), request.headers().clone()));
            async { Ok::<_, std::convert::Infallible>(json(200, r#"{"orders":[]}"#)) }
        },
    );
    let client = ServiceBuilder::new()
        .layer(login.into_layer())
        .map_request(access_token_header)
        .service(admin_api);
    for _ in 0..3 {
        let request = http::Request::get("https://my-shop.myshopify.com/admin/api/2025-10/orders.json")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = bounded(client.clone().oneshot(request)).await.unwrap();
        assert_eq!(response.status(), 200);
        clock.advance(Duration::from_secs(365 * 24 * 3600)); // the login's clock, a year on
    }
    assert_eq!(stub.seen().len(), 1, "no token request after the exchange");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (uri, headers) in seen.iter() {
        assert_eq!(uri, "https://my-shop.myshopify.com/admin/api/2025-10/orders.json");
        assert_eq!(headers["x-shopify-access-token"], "shpat_offline");
        assert!(headers.get("authorization").is_none());
    }
}

/// Shopify's online token expires (`expires_in`) and cannot be refreshed: once expired, the
/// layer answers with `Error::LoginExpired` without calling the API or the token endpoint.
#[tokio::test]
async fn shopify_online_login_expires() {
    use tower::{ServiceBuilder, ServiceExt as _};
    use tower_oauth2::provider::shopify::access_token_header;

    let stub = answering(
        200,
        r#"{"access_token":"shpat_online","scope":"read_orders","expires_in":86399,
            "associated_user_scope":"read_orders",
            "associated_user":{"id":902541635,"email":"staff@example.com","email_verified":true}}"#,
    );
    let clock = ManualClock::new();
    let shopify = Shopify::builder("sh-client", "sh-secret", "my-shop")
        .online_access()
        .http_client(stub.http.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let login = log_in(&shopify).await;
    assert_eq!(login.token().lifetime(), Some(Duration::from_secs(86399)));
    assert_eq!(login.token().extra()["associated_user"]["id"], 902541635);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let admin_api = tower::service_fn(move |_: http::Request<http_body_util::Full<bytes::Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::convert::Infallible>(json(200, "{}")) }
    });
    let client = ServiceBuilder::new()
        .layer(login.into_layer())
        .map_request(access_token_header)
        .service(admin_api);
    let request = || {
        http::Request::get("https://my-shop.myshopify.com/admin/api/2025-10/shop.json")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    bounded(client.clone().oneshot(request())).await.unwrap();
    clock.advance(Duration::from_secs(86400 + 60));
    let err = bounded(client.clone().oneshot(request())).await.unwrap_err();
    let err = Error::from(err);
    assert!(matches!(err, Error::LoginExpired), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the expired token is not sent");
    assert_eq!(stub.seen().len(), 1, "nothing to refresh it with");
}

/// Hostile answers: a body over the client's cap, control characters in the text kept, a
/// slow server.
#[tokio::test]
async fn hostile_answers_are_typed_errors() {
    let big = format!(
        r#"{{"resultcode":"00","response":{{"id":"1","pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    let stub = Stub::with_limit(move |_| json(200, &big), Some(1024));
    let err = expect_err(bounded(naver(&stub).id_email(&Token::bearer(TOKEN))).await);
    assert!(matches!(err, Error::BodyTooLarge { limit: 1024 }), "{err:?}");
    let big = format!(r#"{{"shop":{{"id":1,"pad":"{}"}}}}"#, "x".repeat(4096));
    let stub = Stub::with_limit(move |_| json(200, &big), Some(1024));
    let err = expect_err(bounded(shopify(&stub).id_email(&Token::bearer(TOKEN))).await);
    assert!(matches!(err, Error::BodyTooLarge { limit: 1024 }), "{err:?}");

    // Terminal escapes and new lines in Naver's message and Shopify's `errors` are escaped.
    let stub = answering(401, r#"{"resultcode":"024","message":"\u001b[2Jfailed\nroot# "}"#);
    let err = expect_err(bounded(naver(&stub).id_email(&Token::bearer(TOKEN))).await);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains('\u{1b}') && !shown.contains('\n'), "{shown}");
    let stub = answering(
        401,
        r#"{"errors":"\u001b]8;;https://evil.example\u0007click\r\n"}"#,
    );
    let err = expect_err(bounded(shopify(&stub).id_email(&Token::bearer(TOKEN))).await);
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}') && !shown.contains('\r'),
        "{shown}"
    );
}

/// Reddit's `User-Agent` keeps the HTTP client's timeout, which comes back as itself.
#[tokio::test(start_paused = true)]
async fn reddit_keeps_the_client_timeout() {
    let slow = tower::service_fn(|_: http::Request<http_body_util::Full<bytes::Bytes>>| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, std::convert::Infallible>(json(200, r#"{"id":"1"}"#))
    });
    let http = tower_oauth2::HttpClient::new(slow).with_timeout(Duration::from_secs(5));
    let reddit = Reddit::builder("rd-client", "rd-secret", REDDIT_UA)
        .http_client(http)
        .build()
        .unwrap();
    let err = expect_err(reddit.id_email(&Token::bearer(TOKEN)).await);
    assert!(
        matches!(err, Error::Timeout(limit) if limit == Duration::from_secs(5)),
        "{err:?}"
    );
    assert!(err.is_transient());
}

/// FranceConnect v2 signs its userinfo: with feature `jwt`, `id_email` falls back to the
/// token's ID token, verified with the issuer's ES256 key (found by discovery), and returns its
/// `sub` without an e-mail. An ID token that no longer passes is a typed error; without one,
/// the signed userinfo stays `SignedUserInfoUnsupported`.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn franceconnect_signed_userinfo_falls_back_to_the_verified_id_token() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let issuer = "https://fcp-low.integ01.dev-franceconnect.fr/api/v2";
    let pair = rcgen::KeyPair::generate().unwrap();
    let point = pair.public_key_raw();
    let jwks = json!({"keys":[{"kty":"EC","crv":"P-256","x":b64(&point[1..33]),"y":b64(&point[33..]),
        "use":"sig","alg":"ES256","kid":"fc-1"}]})
    .to_string();
    let discovery = json!({"issuer":issuer,"authorization_endpoint":format!("{issuer}/authorize"),
        "token_endpoint":format!("{issuer}/token"),"userinfo_endpoint":format!("{issuer}/userinfo"),
        "jwks_uri":format!("{issuer}/jwks"),"id_token_signing_alg_values_supported":["ES256"],
        "token_endpoint_auth_methods_supported":["client_secret_post"]})
    .to_string();
    let stub = Stub::new(move |request| match request.path.as_str() {
        "/api/v2/.well-known/openid-configuration" => json(200, &discovery),
        "/api/v2/jwks" => json(200, &jwks),
        "/api/v2/userinfo" => respond(
            200,
            &[("content-type", "application/jwt")],
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJmYy1zdWItMSJ9.c2ln",
        ),
        _ => json(404, "{}"),
    });
    let now = 1_800_000_000u64;
    let clock = ManualClock::starting_at(std::time::UNIX_EPOCH + Duration::from_secs(now));
    let franceconnect = bounded(
        FranceConnect::builder("fc-client", "fc-secret")
            .integration()
            .http_client(stub.http.clone())
            .clock(clock.clone())
            .discover(),
    )
    .await
    .unwrap();
    let sign = |claims: serde_json::Value| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("fc-1".to_owned());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&pair.serialize_der())).unwrap()
    };
    let id_token = sign(
        json!({"iss":issuer,"sub":"fc-sub-1","aud":"fc-client","iat":now,"exp":now + 60,
        "nonce":"the-login-nonce","acr":"eidas1"}),
    );
    let token = Token::bearer(TOKEN).with_id_token(id_token);
    let got = bounded(franceconnect.id_email(&token)).await.unwrap();
    assert_eq!(
        got,
        user("fc-sub-1", None),
        "the id, and no e-mail: it is only in the signed userinfo"
    );

    // Another audience: refused.
    let other = Token::bearer(TOKEN).with_id_token(sign(
        json!({"iss":issuer,"sub":"fc-sub-1","aud":"another-client","iat":now,"exp":now + 60}),
    ));
    let err = expect_err(bounded(franceconnect.id_email(&other)).await);
    assert!(matches!(err, Error::IdToken(_)), "{err:?}");
    // No ID token: nothing verified to fall back on.
    let err = expect_err(bounded(franceconnect.id_email(&Token::bearer(TOKEN))).await);
    assert!(matches!(err, Error::SignedUserInfoUnsupported), "{err:?}");
    // An hour later the ID token has expired.
    clock.advance(Duration::from_secs(3600));
    let err = expect_err(bounded(franceconnect.id_email(&token)).await);
    assert!(matches!(err, Error::IdToken(_)), "{err:?}");
    assert!(!format!("{err:?}").contains(TOKEN));
}
