//! The device flow's user experience: an async user-code callback (success, failure, timeout)
//! and the terminal presentation (code, URIs, escaping, and the QR code with feature
//! `qrcode`). Real HTTP over loopback against the in-process authorization server; the device
//! flow's time is a `ManualClock`.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_server::{AuthServer, ClientAuthMethod, DevicePoll};
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{
    ClientAuth, DeviceAuthorization, DeviceCode, Error, TerminalPrompt, TokenEndpoint, UserCodeError,
};

/// Bounds every wait of a test.
const LIMIT: Duration = Duration::from_secs(20);

async fn server_and_clock() -> (AuthServer, ManualClock) {
    let server = AuthServer::start().await;
    server.add_client("device-client", None, ClientAuthMethod::None);
    server.set_device_script(vec![DevicePoll::Pending]);
    let clock = ManualClock::new();
    let stamp = clock.clone();
    server.set_stamp(move || stamp.now());
    (server, clock)
}

fn source(server: &AuthServer, clock: &ManualClock) -> DeviceCode {
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("device-client"))
        .clock(clock.clone())
        .build()
        .unwrap();
    DeviceCode::new(endpoint, server.device_authorization_url()).unwrap()
}

async fn fetch(source: &DeviceCode) -> Result<tower_oauth2::Token, Error> {
    tokio::time::timeout(LIMIT, source.fetch())
        .await
        .expect("the device flow hung")
}

#[tokio::test]
async fn an_async_callback_gets_the_code_and_the_flow_completes() {
    let (server, clock) = server_and_clock().await;
    let (sent, mut inbox) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let seen_polls = Arc::new(Mutex::new(Vec::new()));
    let probe = (server.clone(), seen_polls.clone());
    let source = source(&server, &clock).on_user_code_async(move |auth: DeviceAuthorization| {
        let sent = sent.clone();
        let (server, seen_polls) = probe.clone();
        async move {
            // Some real async work (a chat message, say) before the code is out.
            tokio::task::yield_now().await;
            seen_polls.lock().unwrap().push(server.token_requests());
            sent.send((auth.user_code().to_owned(), auth.verification_uri().to_owned()))
                .map_err(|_| "the inbox is gone")
        }
    });

    let token = fetch(&source).await.expect("a token");

    let (user_code, uri) = inbox.try_recv().expect("the callback sent the code");
    assert!(user_code.starts_with("UC-"), "{user_code}");
    assert_eq!(uri, server.url("/device"));
    assert_eq!(
        *seen_polls.lock().unwrap(),
        [0],
        "polling began before the callback ended"
    );
    assert_eq!(server.token_requests(), 2); // pending, then approved
    assert!(token.refresh_token().is_some());
    assert!(inbox.try_recv().is_err(), "the callback ran twice");
}

#[tokio::test]
async fn a_failing_async_callback_ends_the_login_with_a_typed_error() {
    let (server, clock) = server_and_clock().await;
    let source = source(&server, &clock)
        .on_user_code_async(|_auth| async { Err::<(), _>(std::io::Error::other("mail server down")) });

    let err = fetch(&source).await.expect_err("the login went on");

    let Some(UserCodeError::Failed(cause)) = UserCodeError::find(&err) else {
        panic!("not a failed user-code callback: {err:?}");
    };
    assert_eq!(cause.to_string(), "mail server down");
    assert!(!err.is_transient());
    assert_eq!(server.device_authorization_requests(), 1);
    assert_eq!(server.token_requests(), 0, "it polled without telling the user");
    assert_eq!(clock.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn an_async_callback_that_hangs_times_out() {
    let (server, clock) = server_and_clock().await;
    let source = source(&server, &clock)
        .on_user_code_async(|_auth| std::future::pending::<Result<(), std::io::Error>>())
        .user_code_timeout(Duration::from_millis(50));

    let err = fetch(&source).await.expect_err("the login went on");

    assert!(
        matches!(UserCodeError::find(&err), Some(UserCodeError::TimedOut(after)) if *after == Duration::from_millis(50)),
        "{err:?}"
    );
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test]
async fn a_sync_callback_still_works() {
    let (server, clock) = server_and_clock().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let source = source(&server, &clock)
        .on_user_code(move |auth| sink.lock().unwrap().push(auth.user_code().to_owned()));
    fetch(&source).await.expect("a token");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// The authorization the device flow hands to its callback, from the real server.
async fn real_authorization() -> DeviceAuthorization {
    let (server, clock) = server_and_clock().await;
    let captured = Arc::new(Mutex::new(None));
    let sink = captured.clone();
    let source = source(&server, &clock).on_user_code(move |auth| *sink.lock().unwrap() = Some(auth.clone()));
    fetch(&source).await.expect("a token");
    let auth = captured.lock().unwrap().take().expect("the callback ran");
    assert!(auth.verification_uri_complete().is_some());
    auth
}

#[tokio::test]
async fn the_terminal_prompt_writes_the_code_and_the_uris() {
    let auth = real_authorization().await;
    let mut out = Vec::new();
    TerminalPrompt::new().write_to(&auth, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(auth.user_code()), "{text}");
    assert!(text.contains(auth.verification_uri()), "{text}");
    assert!(text.contains(auth.verification_uri_complete().unwrap()), "{text}");
}

#[test]
fn the_terminal_prompt_escapes_what_the_server_sent() {
    // A right-to-left override would show the URI reversed.
    let auth = DeviceAuthorization::new("ABCD\u{202e}EFGH", "https://evil.example/\u{202e}moc.elgoog");
    let text = TerminalPrompt::new().render(&auth);
    assert!(!text.contains('\u{202e}'), "{text:?}");
    assert!(text.contains("\\u{202e}"), "{text:?}");
}

#[cfg(feature = "qrcode")]
#[tokio::test]
async fn with_feature_qrcode_the_prompt_has_a_qr_code_of_the_complete_uri() {
    let auth = real_authorization().await;
    let text = TerminalPrompt::new().render(&auth);
    let qr_lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.is_empty() && line.chars().all(|c| " ▀▄█".contains(c)))
        .collect();
    assert!(qr_lines.len() >= 10, "no QR block in:\n{text}");
    assert!(qr_lines
        .windows(2)
        .all(|w| w[0].chars().count() == w[1].chars().count()));
    // What the block encodes: the same rendering of the complete URI.
    let expected = qrcode::QrCode::new(auth.verification_uri_complete().unwrap().as_bytes())
        .unwrap()
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    assert!(
        text.contains(&expected),
        "the QR code is not of verification_uri_complete"
    );

    let without = TerminalPrompt::new().qr_code(false).render(&auth);
    assert!(!without.contains('█'));
    // No complete URI, no QR code.
    let plain = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device");
    assert!(!TerminalPrompt::new().render(&plain).contains('█'));
}
