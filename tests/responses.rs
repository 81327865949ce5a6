//! How the crate reads the authorization server's responses and reports what went wrong:
//! `Retry-After`, unsendable tokens, server text in messages and logs, truncated bodies, and
//! the error chain. Real HTTP over loopback, against the in-process authorization server of
//! `tests/support/auth_server.rs` (and a raw TCP server for broken responses); time is a
//! `ManualClock` wherever it matters.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::fmt::Debug;
use std::time::Duration;

use auth_server::{AuthServer, Scripted};
use serde_json::json;
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{ClientAuth, ClientCredentials, Error, ErrorCode, Token, TokenEndpoint};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn expect_err<T: Debug>(result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err,
    }
}

fn endpoint_with(server: &AuthServer, auth: ClientAuth, clock: &ManualClock) -> TokenEndpoint {
    TokenEndpoint::builder(server.token_url(), auth)
        .clock(clock.clone())
        .build()
        .expect("endpoint")
}

/// Answers the next token request with `response`, and fetches a client-credentials token.
async fn fetch_scripted(
    server: &AuthServer,
    clock: &ManualClock,
    response: Scripted,
) -> Result<Token, Error> {
    server.push_token_response(response);
    ClientCredentials::new(endpoint_with(server, ClientAuth::none("test-client"), clock))
        .fetch()
        .await
}

// ---------------------------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn retry_after_delta_seconds_on_429_and_503() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();

    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::raw(429, "text/plain", "slow down").with_header("Retry-After", "2"),
        )
        .await,
    );
    assert!(matches!(err, Error::HttpStatus { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(secs(2)));
    assert!(err.is_transient());

    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(503, json!({"error": "temporarily_unavailable"}))
                .with_header("retry-after", "120"),
        )
        .await,
    );
    assert_eq!(err.code(), Some(&ErrorCode::TemporarilyUnavailable));
    assert_eq!(err.retry_after(), Some(secs(120)));

    // Absent or garbage: none.
    let err = expect_err(fetch_scripted(&server, &clock, Scripted::raw(503, "text/plain", "")).await);
    assert_eq!(err.retry_after(), None);
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::raw(503, "text/plain", "").with_header("Retry-After", "in a while"),
        )
        .await,
    );
    assert_eq!(err.retry_after(), None);
    assert!(err.is_transient());

    // Absurd: capped at a day.
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::raw(503, "text/plain", "").with_header("Retry-After", "315360000"),
        )
        .await,
    );
    assert_eq!(err.retry_after(), Some(secs(24 * 3600)));
}

#[tokio::test]
async fn retry_after_http_date_counts_from_the_endpoint_clock() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();

    let at = httpdate::fmt_http_date(clock.now() + secs(90));
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::raw(503, "text/html", "<h1>down</h1>").with_header("Retry-After", &at),
        )
        .await,
    );
    assert_eq!(err.retry_after(), Some(secs(90)));

    // The same date, read 30 s later by the endpoint's clock, is 60 s away.
    clock.advance(secs(30));
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(429, json!({"error": "slow_down"})).with_header("Retry-After", &at),
        )
        .await,
    );
    assert_eq!(err.retry_after(), Some(secs(60)));

    // A date in the past: retry now.
    clock.advance(secs(600));
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::raw(503, "text/plain", "").with_header("Retry-After", &at),
        )
        .await,
    );
    assert_eq!(err.retry_after(), Some(Duration::ZERO));
}

// ---------------------------------------------------------------------------------------------
// Truncated bodies
// ---------------------------------------------------------------------------------------------

#[path = "support/raw_server.rs"]
mod raw_server;

use raw_server::RawServer;

const TOKEN_JSON: &str =
    r#"{"access_token":"abcdefghijklmnopqrstuvwxyz0123456789","token_type":"Bearer","expires_in":3600}"#;

async fn fetch_raw(server: &RawServer) -> Result<Token, Error> {
    let endpoint = TokenEndpoint::builder(server.url("/token"), ClientAuth::none("c"))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    ClientCredentials::new(endpoint).fetch().await
}

/// What a truncated body must give: a transient transport error that says what happened.
fn assert_incomplete_body(err: &Error) {
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the connection closed before the response body was complete"
    );
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn body_shorter_than_content_length_is_a_transient_transport_error() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n";
    let server = RawServer::start(format!("{head}{}", &TOKEN_JSON[..40])).await;
    assert_incomplete_body(&expect_err(fetch_raw(&server).await));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn chunked_body_cut_midway_is_a_transient_transport_error() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    // A whole 30-byte chunk, then a 64-byte chunk of which 20 bytes arrive.
    let body = format!("1e\r\n{}\r\n40\r\n{}", &TOKEN_JSON[..30], &TOKEN_JSON[30..50]);
    let server = RawServer::start(format!("{head}{body}")).await;
    assert_incomplete_body(&expect_err(fetch_raw(&server).await));
}

#[tokio::test]
async fn complete_but_malformed_body_stays_permanent() {
    // The body ends where the connection closes (no length announced): complete, and broken.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
    let server = RawServer::start(format!("{head}{}", &TOKEN_JSON[..40])).await;
    let err = expect_err(fetch_raw(&server).await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    assert!(!err.is_transient());

    // A full chunked body with broken JSON.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let server = RawServer::start(format!("{head}5\r\n{{\"a\":\r\n0\r\n\r\n")).await;
    let err = expect_err(fetch_raw(&server).await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    assert!(!err.is_transient());
}

/// A client of your own that hands over whatever body it got, without checking it against the
/// `Content-Length` (here: forwards a real loopback exchange and keeps only the first 40 bytes).
#[tokio::test]
async fn custom_client_body_short_of_content_length_is_incomplete() {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use tower_oauth2::HttpClient;

    let server = AuthServer::start().await;
    server.push_token_response(Scripted::raw(200, "application/json", TOKEN_JSON));
    let inner = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let service = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let inner = inner.clone();
        async move {
            let response = inner.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, tower_oauth2::BoxError>(http::Response::from_parts(parts, Full::new(body.slice(..40))))
        }
    });
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("c"))
        .http_client(HttpClient::new(service))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let err = expect_err(ClientCredentials::new(endpoint).fetch().await);
    assert_incomplete_body(&err);
}

// ---------------------------------------------------------------------------------------------
// The error chain
// ---------------------------------------------------------------------------------------------

/// Every level of `err`'s `source()` chain, outermost first.
fn chain<'a>(err: &'a (dyn std::error::Error + 'static)) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut levels = vec![err];
    while let Some(next) = levels.last().and_then(|e| e.source()) {
        levels.push(next);
    }
    levels
}

/// No level repeats what a deeper level says (as `{:#}` of anyhow or eyre would print it).
fn assert_each_level_says_its_own_part(err: &(dyn std::error::Error + 'static)) {
    let messages: Vec<String> = chain(err).iter().map(|e| e.to_string()).collect();
    for (i, outer) in messages.iter().enumerate() {
        assert!(!outer.is_empty(), "{messages:#?}");
        for inner in &messages[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "level {i} repeats a cause: {messages:#?}"
            );
        }
    }
}

#[tokio::test]
async fn connection_refused_chain_reaches_the_io_error_once() {
    // A port nobody listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = TokenEndpoint::builder(format!("http://{addr}/token"), ClientAuth::none("c"))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let err = expect_err(ClientCredentials::new(endpoint).fetch().await);
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_transient());
    assert_each_level_says_its_own_part(&err);
    let io = chain(&err)
        .into_iter()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .expect("the chain reaches the io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    // The first cause is the client's own error, not a wrapper around it.
    let first = std::error::Error::source(&err).expect("a source");
    assert!(
        first
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some(),
        "{first:?}"
    );

    // The same error returned by a token source of your own.
    let wrapped = Error::source_error(err.clone());
    assert_each_level_says_its_own_part(&wrapped);
    let levels = chain(&wrapped);
    assert!(levels[1].downcast_ref::<Error>().is_some());
    assert!(levels
        .iter()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some()));
    assert!(wrapped.is_transient());
}

#[tokio::test]
async fn truncated_body_chain_says_each_part_once() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n";
    let server = RawServer::start(format!("{head}{}", &TOKEN_JSON[..40])).await;
    let err = expect_err(fetch_raw(&server).await);
    assert_each_level_says_its_own_part(&err);
    assert!(chain(&err).iter().any(|e| e
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)));
}

#[test]
fn source_and_grant_errors_say_their_own_part() {
    let err = Error::source_error("vault sealed");
    assert_eq!(err.to_string(), "the token source failed");
    assert_eq!(chain(&err).len(), 2);
    assert_each_level_says_its_own_part(&err);
}

// ---------------------------------------------------------------------------------------------
// Unsendable access tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn access_token_outside_vschar_is_refused_without_echoing_it() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let bad_tokens = [
        "secret-part\nInjected: header",
        "secret-part\r",
        "secret-part\u{7f}",
        "secret-part\u{0}",
        "secret-part\ttab",
        "secret-partü",
        "secret-part\u{1b}[2J",
    ];
    for bad in bad_tokens {
        let err = expect_err(
            fetch_scripted(
                &server,
                &clock,
                Scripted::json(200, json!({"access_token": bad, "token_type": "Bearer"})),
            )
            .await,
        );
        assert!(matches!(err, Error::MalformedResponse { .. }), "{bad:?}: {err:?}");
        assert!(!err.is_transient());
        for shown in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(!shown.contains("secret-part"), "{shown}");
        }
        assert!(err.to_string().contains("access_token"), "{err}");
    }

    // Every visible ASCII character, space included, is fine.
    let all_vschar: String = (0x20u8..=0x7e).map(char::from).collect();
    let token = fetch_scripted(
        &server,
        &clock,
        Scripted::json(200, json!({"access_token": all_vschar, "token_type": "Bearer"})),
    )
    .await
    .expect("VSCHAR token");
    assert_eq!(token.access_token().expose(), all_vschar);
}

// ---------------------------------------------------------------------------------------------
// Server text in messages and logs
// ---------------------------------------------------------------------------------------------

/// Forged log line and terminal escapes, as a hostile server (or proxy) would send them.
const HOSTILE: &str = "bad\nINFO forged log line\r\n\u{1b}[2J\u{1b}]0;title\u{7}\u{9b}31m\u{202e}olleh\u{7f}";

fn assert_printable(text: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
    assert!(!text.contains('\u{202e}'), "bidi override in {text:?}");
}

#[tokio::test]
async fn server_text_is_escaped_in_messages() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(
                400,
                json!({"error": format!("weird{HOSTILE}"), "error_description": HOSTILE, "error_uri": HOSTILE}),
            ),
        )
        .await,
    );
    let server_error = err.server_error().expect("an OAuth 2.0 error");
    // Stored sanitized: nothing downstream can print it raw.
    for stored in [
        server_error.code.as_str(),
        server_error.description.as_deref().unwrap(),
        server_error.uri.as_deref().unwrap(),
    ] {
        assert_printable(stored);
        assert!(stored.contains("\\n") && stored.contains("\\u{1b}"), "{stored}");
    }
    assert_eq!(
        server_error.description.as_deref(),
        Some(
            "bad\\nINFO forged log line\\r\\n\\u{1b}[2J\\u{1b}]0;title\\u{7}\\u{9b}31m\\u{202e}olleh\\u{7f}"
        )
    );
    assert!(matches!(&server_error.code, ErrorCode::Other(_)));
    assert_printable(&err.to_string());
    assert_printable(&format!("{err:?}"));

    // A known code is still recognised.
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(
                400,
                json!({"error": "invalid_scope", "error_description": HOSTILE}),
            ),
        )
        .await,
    );
    assert_eq!(err.code(), Some(&ErrorCode::InvalidScope));
    assert_printable(&err.to_string());

    // An unknown token type too.
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(200, json!({"access_token": "at", "token_type": HOSTILE})),
        )
        .await,
    );
    assert!(
        matches!(&err, Error::UnsupportedTokenType(t) if !t.chars().any(char::is_control)),
        "{err:?}"
    );
    assert_printable(&err.to_string());
}

#[tokio::test]
async fn long_server_text_is_cut_on_a_char_boundary() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let long = "é€😀".repeat(2000);
    let err = expect_err(
        fetch_scripted(
            &server,
            &clock,
            Scripted::json(
                400,
                json!({"error": "invalid_request", "error_description": long, "error_uri": long}),
            ),
        )
        .await,
    );
    let server_error = err.server_error().unwrap();
    for stored in [
        server_error.description.as_deref().unwrap(),
        server_error.uri.as_deref().unwrap(),
    ] {
        assert!(stored.chars().count() <= 301, "{} chars", stored.chars().count());
        assert!(stored.chars().count() > 200);
        assert!(stored.ends_with('…'));
        assert!(long.starts_with(stored.trim_end_matches('…')));
    }
    assert!(err.to_string().chars().count() < 800, "{err}");
}

#[tokio::test]
async fn echoed_client_secret_is_redacted() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let secret = "Top s3cret/+=";
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    for auth in [
        ClientAuth::client_secret_post("my-client", secret),
        ClientAuth::client_secret_basic("my-client", secret),
    ] {
        let method = auth.method();
        let basic = format!("my-client:{form}");
        let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, basic);
        let mut echo = format!(
            "bad request: grant_type=client_credentials&client_id=my-client&client_secret={form} \
             (secret '{secret}', %20 spelling {})",
            form.replace('+', "%20")
        );
        if method == "client_secret_basic" {
            echo.push_str(&format!(" header 'Basic {basic}'"));
        }
        server.push_token_response(Scripted::json(
            401,
            json!({"error": "invalid_client", "error_description": echo, "error_uri": format!("https://as/?s={secret}")}),
        ));
        let err = expect_err(
            ClientCredentials::new(endpoint_with(&server, auth, &clock))
                .fetch()
                .await,
        );
        let server_error = err.server_error().expect("OAuth 2.0 error");
        let description = server_error.description.as_deref().unwrap();
        for shown in [
            description.to_owned(),
            server_error.uri.clone().unwrap(),
            err.to_string(),
            format!("{err:?}"),
        ] {
            assert!(!shown.contains("s3cret"), "{method}: {shown}");
            assert!(!shown.contains(&basic), "{method}: {shown}");
        }
        let expected = if method == "client_secret_basic" { 4 } else { 3 };
        assert_eq!(
            description.matches("[redacted]").count(),
            expected,
            "{method}: {description}"
        );
    }
}

#[tokio::test]
async fn echoed_refresh_token_is_redacted() {
    let server = AuthServer::start().await;
    let clock = ManualClock::new();
    let refresh_token = "rt-Very Secret+1";
    server.push_token_response(Scripted::json(
        400,
        json!({
            "error": "invalid_grant",
            "error_description": format!("unknown refresh_token={} ({refresh_token})",
                url::form_urlencoded::byte_serialize(refresh_token.as_bytes()).collect::<String>()),
        }),
    ));
    let source = tower_oauth2::RefreshToken::new(
        endpoint_with(&server, ClientAuth::none("c"), &clock),
        refresh_token,
    );
    let err = expect_err(source.fetch().await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    let description = err.server_error().unwrap().description.clone().unwrap();
    assert_eq!(description, "unknown refresh_token=[redacted] ([redacted])");
    assert!(!format!("{err} {err:?}").contains("Very"));
}
