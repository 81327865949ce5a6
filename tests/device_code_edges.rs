//! Edge cases of the device authorization grant (RFC 8628): malformed device authorization
//! responses, polling near the device code's expiry, `Retry-After` during polling, what a poll
//! carries, and the device code in server messages. Real HTTP over loopback against the
//! in-process authorization server; time is a `ManualClock` (also the server's stamp), so the
//! schedule is checked exactly and nothing really sleeps.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_server::{AuthServer, ClientAuthMethod, DevicePoll, Scripted};
use serde_json::json;
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{ClientAuth, DeviceAuthorization, DeviceCode, Error, ErrorCode, TokenEndpoint};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn expect_err<T: Debug>(result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err,
    }
}

type Captured = Arc<Mutex<Vec<DeviceAuthorization>>>;

/// A server whose request stamps follow `clock`, with a public client `device-client`.
async fn server_and_clock() -> (AuthServer, ManualClock) {
    let server = AuthServer::start().await;
    server.add_client("device-client", None, ClientAuthMethod::None);
    let clock = ManualClock::new();
    let stamp = clock.clone();
    server.set_stamp(move || stamp.now());
    (server, clock)
}

fn device_source(server: &AuthServer, clock: &ManualClock) -> (DeviceCode, Captured) {
    let captured: Captured = Arc::default();
    let sink = captured.clone();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("device-client"))
        .clock(clock.clone())
        .build()
        .unwrap();
    let source = DeviceCode::new(endpoint, server.device_authorization_url())
        .unwrap()
        .scope("openid offline_access")
        .audience("https://api.example.com")
        .param("tenant", "acme")
        .on_user_code(move |auth| sink.lock().unwrap().push(auth.clone()));
    (source, captured)
}

/// The offsets (from the device authorization request) of the device-code polls.
fn poll_offsets(server: &AuthServer) -> Vec<Duration> {
    let requests = server.requests();
    let start = requests
        .iter()
        .find(|r| r.path == "/device_authorization")
        .expect("device authorization request")
        .at;
    requests
        .iter()
        .filter(|r| r.param("grant_type") == Some(DEVICE_GRANT))
        .map(|r| r.at.duration_since(start).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The device authorization response
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn empty_required_fields_are_malformed() {
    let (server, clock) = server_and_clock().await;
    let complete = json!({
        "device_code": "dc-1",
        "user_code": "ABCD-EFGH",
        "verification_uri": "https://example.com/device",
        "expires_in": 600,
    });
    for field in ["device_code", "user_code", "verification_uri"] {
        let mut body = complete.clone();
        body[field] = json!("");
        server.push_device_authorization_response(Scripted::json(200, body));
        let (source, captured) = device_source(&server, &clock);
        let err = expect_err(source.fetch().await);
        assert!(matches!(err, Error::MalformedResponse { .. }), "{field}: {err:?}");
        assert!(err.to_string().contains(field), "{err}");
        assert!(!err.is_transient());
        assert!(
            captured.lock().unwrap().is_empty(),
            "{field}: the user was shown nothing"
        );
    }
    // Google's spelling, empty, is no better.
    let mut body = complete.clone();
    body.as_object_mut().unwrap().remove("verification_uri");
    body["verification_url"] = json!("");
    server.push_device_authorization_response(Scripted::json(200, body));
    let (source, _) = device_source(&server, &clock);
    let err = expect_err(source.fetch().await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    assert_eq!(server.token_requests(), 0, "no poll with a broken authorization");
}

#[tokio::test]
async fn what_the_user_is_shown_must_be_printable() {
    let (server, clock) = server_and_clock().await;
    for (field, value) in [
        ("user_code", "ABCD\u{1b}[2J"),
        (
            "verification_uri",
            "https://example.com/device\nVisit evil.example",
        ),
        ("verification_uri_complete", "https://example.com/device?c=\u{7}"),
    ] {
        let mut body = json!({
            "device_code": "dc-1",
            "user_code": "ABCD-EFGH",
            "verification_uri": "https://example.com/device",
            "expires_in": 600,
        });
        body[field] = json!(value);
        server.push_device_authorization_response(Scripted::json(200, body));
        let (source, captured) = device_source(&server, &clock);
        let err = expect_err(source.fetch().await);
        assert!(matches!(err, Error::MalformedResponse { .. }), "{field}: {err:?}");
        assert!(captured.lock().unwrap().is_empty());
    }
    assert_eq!(server.token_requests(), 0);
}

// ---------------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expiry_shorter_than_the_interval_ends_at_the_expiry() {
    let (server, clock) = server_and_clock().await;
    server.set_device_interval(Some(5));
    server.set_device_expires_in(3);
    server.set_device_script(vec![DevicePoll::Approve]);
    let (source, _) = device_source(&server, &clock);

    let err = expect_err(source.fetch().await);

    assert!(matches!(err, Error::DeviceCodeExpired), "{err:?}");
    assert_eq!(clock.elapsed(), secs(3), "returned at the expiry, not after");
    assert!(
        poll_offsets(&server).is_empty(),
        "no poll before the interval had passed"
    );
}

#[tokio::test]
async fn last_wait_is_cut_at_the_expiry() {
    let (server, clock) = server_and_clock().await;
    server.set_device_interval(Some(5));
    server.set_device_expires_in(12);
    server.set_device_script(vec![DevicePoll::Pending; 10]);
    let (source, captured) = device_source(&server, &clock);
    let t0 = clock.now();

    let err = expect_err(source.fetch().await);

    assert!(matches!(err, Error::DeviceCodeExpired), "{err:?}");
    assert_eq!(poll_offsets(&server), [secs(5), secs(10)]);
    assert_eq!(clock.elapsed(), secs(12));
    assert_eq!(captured.lock().unwrap()[0].expires_at(), t0 + secs(12));
}

#[tokio::test]
async fn a_long_backoff_does_not_outlive_the_device_code() {
    let (server, clock) = server_and_clock().await;
    server.set_device_interval(Some(5));
    server.set_device_expires_in(30);
    let (source, _) = device_source(&server, &clock);
    // The first poll (at 5 s) is answered 503 "come back in an hour".
    server.push_token_response(Scripted::raw(503, "text/plain", "").with_header("Retry-After", "3600"));

    let err = expect_err(source.fetch().await);

    assert!(matches!(err, Error::DeviceCodeExpired), "{err:?}");
    // Next poll would be at 5 + 60 (the cap) = 65 s, past the expiry at 30 s.
    assert_eq!(poll_offsets(&server), [secs(5)]);
    assert_eq!(clock.elapsed(), secs(30));
}

// ---------------------------------------------------------------------------------------------
// Retry-After while polling
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn retry_after_is_the_floor_of_the_next_poll() {
    let (server, clock) = server_and_clock().await;
    server.set_device_interval(Some(5));
    server.set_device_script(vec![DevicePoll::Approve]);
    let (source, _) = device_source(&server, &clock);
    // Poll 1 at 5 s: 429, retry in 30 s (the doubled interval alone would be 10 s).
    server.push_token_response(Scripted::raw(429, "text/plain", "").with_header("Retry-After", "30"));
    // Poll 2 at 35 s: 503 with an HTTP-date 45 s ahead of the clock at that moment.
    server.push_token_response(
        Scripted::json(503, json!({"error": "temporarily_unavailable"})).with_header(
            "Retry-After",
            &httpdate::fmt_http_date(clock.now() + secs(35 + 45)),
        ),
    );
    // Poll 3 at 80 s: 429 asking for two hours: capped at the 60 s maximum interval.
    server.push_token_response(Scripted::raw(429, "text/plain", "").with_header("Retry-After", "7200"));
    // Poll 4 at 140 s: a Retry-After shorter than the interval (by now doubled three times
    // from 5 s: 40 s) does not shorten it.
    server.push_token_response(
        Scripted::json(400, json!({"error": "authorization_pending"})).with_header("Retry-After", "1"),
    );

    let token = source.fetch().await.expect("token at the fifth poll");

    assert_eq!(
        poll_offsets(&server),
        [secs(5), secs(35), secs(80), secs(140), secs(180)]
    );
    assert_eq!(clock.elapsed(), secs(180));
    assert!(!token.access_token().expose().is_empty());
}

// ---------------------------------------------------------------------------------------------
// What a poll carries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn polls_carry_only_the_grant_the_device_code_and_the_client() {
    let (server, clock) = server_and_clock().await;
    server.set_device_interval(Some(5));
    server.set_device_script(vec![DevicePoll::Pending, DevicePoll::Approve]);
    let (source, _) = device_source(&server, &clock);

    source.fetch().await.expect("token");

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    // The device authorization request keeps the source's parameters.
    assert_eq!(requests[0].path, "/device_authorization");
    assert_eq!(requests[0].param("scope"), Some("openid offline_access"));
    assert_eq!(requests[0].param("audience"), Some("https://api.example.com"));
    assert_eq!(requests[0].param("tenant"), Some("acme"));
    // The polls: grant_type, device_code, client_id; nothing else (RFC 8628 §3.4).
    for poll in &requests[1..] {
        let mut names: Vec<&str> = poll.form.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["client_id", "device_code", "grant_type"], "{}", poll.body);
        assert_eq!(poll.param("grant_type"), Some(DEVICE_GRANT));
        assert_eq!(poll.param("client_id"), Some("device-client"));
    }
}

#[tokio::test]
async fn a_confidential_client_polls_with_its_authentication_only() {
    let (server, clock) = server_and_clock().await;
    server.add_client("conf", Some("conf-secret"), ClientAuthMethod::Basic);
    server.set_device_interval(Some(5));
    server.set_device_script(vec![DevicePoll::Approve]);
    let endpoint = TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::client_secret_basic("conf", "conf-secret"),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let source = DeviceCode::new(endpoint, server.device_authorization_url())
        .unwrap()
        .scope("read")
        .on_user_code(|_| {});

    source.fetch().await.expect("token");

    let poll = server.requests().pop().unwrap();
    let mut names: Vec<&str> = poll.form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["device_code", "grant_type"], "{}", poll.body);
    assert!(poll
        .header("authorization")
        .is_some_and(|v| v.starts_with("Basic ")));
}

// ---------------------------------------------------------------------------------------------
// The device code in server messages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_echoed_device_code_is_redacted() {
    let (server, clock) = server_and_clock().await;
    let device_code = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS";
    server.push_device_authorization_response(Scripted::json(
        200,
        json!({
            "device_code": device_code,
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://example.com/device",
            "expires_in": 600,
            "interval": 5,
        }),
    ));
    server.push_token_response(Scripted::json(
        400,
        json!({
            "error": "access_denied",
            "error_description": format!("device_code={device_code}\nwas denied"),
        }),
    ));
    let (source, _) = device_source(&server, &clock);

    let err = expect_err(source.fetch().await);

    assert_eq!(err.code(), Some(&ErrorCode::AccessDenied));
    assert_eq!(
        err.server_error().unwrap().description.as_deref(),
        Some("device_code=[redacted]\\nwas denied")
    );
    assert!(!format!("{err} {err:?}").contains(device_code));
}

/// A device code that happens to be a short word inside an error code (a fuzzer's find):
/// redacting it must not turn `expired_token` into an unknown code that polling would not
/// recognise.
#[tokio::test]
async fn a_short_device_code_inside_an_error_code_keeps_the_code() {
    let (server, clock) = server_and_clock().await;
    let (source, _) = device_source(&server, &clock);
    server.push_device_authorization_response(Scripted::json(
        200,
        json!({
            "device_code": "expired",
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://example.com/device",
            "expires_in": 600,
            "interval": 5,
        }),
    ));
    server.push_token_response(Scripted::json(400, json!({"error": "expired_token"})));
    let err = expect_err(source.fetch().await);
    assert_eq!(err.code(), Some(&ErrorCode::ExpiredToken), "{err:?}");
    assert_eq!(server.token_requests(), 1, "expired_token ends the flow");
}
