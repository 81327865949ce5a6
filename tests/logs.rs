//! What the crate logs: refreshes traced without secrets, server text escaped so it cannot
//! forge log lines. Every test here starts by capturing logs (`log_capture::capture`), which
//! installs the binary's one global subscriber before any event is hit: a subscriber per test
//! races with tests on other threads over `tracing`'s cached call-site interest.

#[path = "support/auth_server.rs"]
mod auth_server;
#[path = "support/log_capture.rs"]
mod log_capture;

use auth_server::{AuthServer, ClientAuthMethod, Scripted};
use serde_json::json;
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{ClientAuth, ClientCredentials, ErrorCode, Token, TokenCache, TokenEndpoint};

/// A server error text with a forged log line, terminal escapes and a bidi override.
const HOSTILE: &str = "bad\nINFO forged log line\r\n\u{1b}[2J\u{1b}]0;title\u{7}\u{9b}31m\u{202e}olleh\u{7f}";

fn assert_printable(text: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
    assert!(!text.contains('\u{202e}'), "bidi override in {text:?}");
}

/// Answers the next token request with `response`, and fetches a client-credentials token.
async fn fetch_scripted(
    server: &AuthServer,
    clock: &ManualClock,
    response: Scripted,
) -> Result<Token, tower_oauth2::Error> {
    server.push_token_response(response);
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("test-client"))
        .clock(clock.clone())
        .build()
        .expect("endpoint");
    ClientCredentials::new(endpoint).fetch().await
}

/// A default-settings cache over client credentials for client `svc` with `secret`.
fn basic_auth_cache(server: &AuthServer, secret: &str) -> TokenCache {
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::client_secret_basic("svc", secret))
        .clock(clock.clone())
        .build()
        .unwrap();
    TokenCache::builder(ClientCredentials::new(endpoint))
        .clock(clock)
        .build()
}

#[tokio::test]
async fn server_text_is_escaped_in_log_events() {
    let logs = log_capture::capture();
    let server = AuthServer::start().await;
    let clock = ManualClock::new();

    let err = (fetch_scripted(
        &server,
        &clock,
        Scripted::json(
            400,
            json!({"error": "invalid_request", "error_description": HOSTILE}),
        ),
    )
    .await)
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidRequest));
    let text = logs.text();
    assert!(text.contains("token request failed"), "{text}");
    // One event per line: nothing the server sent started a line of its own.
    for line in text.lines() {
        assert!(!line.starts_with("INFO forged"), "{text}");
        assert_printable(line);
    }
    assert!(text.contains("forged log line"), "{text}");
}

#[tokio::test]
async fn refreshes_are_traced_without_secrets() {
    let captured = log_capture::capture();

    let server = AuthServer::start().await;
    server.add_client("svc", Some("SECRET-xyz"), ClientAuthMethod::Basic);
    let cache = basic_auth_cache(&server, "SECRET-xyz");
    cache.prefetch().await.unwrap();
    let token = cache.token().unwrap().access_token().expose().to_owned();
    server.push_token_response(Scripted::json(
        400,
        json!({"error": "invalid_grant", "error_description": "nope"}),
    ));
    cache.refresh().await.unwrap_err();

    let log = captured.text();
    assert!(log.contains("token refreshed"), "{log}");
    assert!(log.contains("expires_at"), "{log}");
    assert!(log.contains("token refresh failed"), "{log}");
    assert!(log.contains("transient=false"), "{log}");
    assert!(log.contains("invalid_grant"), "{log}");
    assert!(!log.contains(&token), "the access token was logged");
    assert!(!log.contains("SECRET-xyz"), "the client secret was logged");
}
