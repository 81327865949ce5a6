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
