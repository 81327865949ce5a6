//! Tokens that survive a restart: a cache seeded with a token it already has, and the CLI of
//! `examples/device_login.rs` (included here as a module, so the example's own code is what is
//! tested) logging in once with the device flow and resuming from its state file. Real HTTP
//! over loopback against the in-process authorization server; time is a `ManualClock`.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/device_login.rs"]
mod device_login;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use device_login::auth_server::{AuthServer, ClientAuthMethod, DevicePoll};
use device_login::{load_state, save_state, start_session, StateFileError, CLIENT_ID};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{
    ClientAuth, ClientCredentials, OAuth2Layer, StoredToken, StoredTokenError, Token, TokenCache,
    TokenEndpoint, TokenSource,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Bounds every wait of a test.
const LIMIT: Duration = Duration::from_secs(20);

/// A fresh directory for one test's files.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tower-oauth2-persistence-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One GET of the protected resource through the layer over `cache`; its status.
async fn get_resource(server: &AuthServer, cache: &TokenCache) -> u16 {
    let api = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let request = http::Request::get(server.resource_url())
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(LIMIT, api.oneshot(request))
        .await
        .expect("the request hung")
        .expect("the request failed");
    response.status().as_u16()
}

fn last_resource_token(server: &AuthServer) -> String {
    server
        .resource_tokens()
        .last()
        .cloned()
        .flatten()
        .expect("a bearer token")
}

fn refresh_requests(server: &AuthServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.param("grant_type") == Some("refresh_token"))
        .map(|r| r.param("refresh_token").unwrap_or_default().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A cache seeded with a token
// ---------------------------------------------------------------------------------------------

/// A client-credentials server and a token it issued (valid at the server), with counters
/// reset.
async fn server_with_issued_token(clock: &ManualClock) -> (AuthServer, TokenEndpoint, Token) {
    let server = AuthServer::start().await;
    server.add_client("svc", Some("secret"), ClientAuthMethod::Basic);
    let endpoint = TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "secret"),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let token = ClientCredentials::new(endpoint.clone())
        .fetch_token()
        .await
        .expect("token");
    server.reset_counters();
    (server, endpoint, token)
}

#[tokio::test]
async fn a_seeded_valid_token_is_served_at_once_and_refreshed_ahead() {
    let clock = ManualClock::new();
    let (server, endpoint, seeded) = server_with_issued_token(&clock).await;
    let cache = TokenCache::builder(ClientCredentials::new(endpoint))
        .clock(clock.clone())
        .refresh_ahead(Duration::from_secs(60))
        .jitter(0.0)
        .initial_token(seeded.clone())
        .build();

    assert_eq!(get_resource(&server, &cache).await, 200);
    assert_eq!(server.token_requests(), 0, "the seeded token was not used");
    assert_eq!(last_resource_token(&server), seeded.access_token().expose());

    // Into the refresh-ahead window: the seeded token is still sent, and refreshed behind it.
    clock.advance(Duration::from_secs(3600 - 30));
    assert_eq!(get_resource(&server, &cache).await, 200);
    assert_eq!(last_resource_token(&server), seeded.access_token().expose());
    tokio::time::timeout(LIMIT, async {
        while cache
            .token()
            .is_some_and(|t| t.access_token() == seeded.access_token())
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("no refresh ahead of the seeded token's expiry");
    assert_eq!(server.token_requests(), 1);
    assert_eq!(get_resource(&server, &cache).await, 200);
    assert_ne!(last_resource_token(&server), seeded.access_token().expose());
}

#[tokio::test]
async fn an_expired_seeded_token_is_replaced_by_a_normal_fetch() {
    let clock = ManualClock::new();
    let (server, endpoint, seeded) = server_with_issued_token(&clock).await;
    clock.advance(Duration::from_secs(3600));
    let cache = TokenCache::builder(ClientCredentials::new(endpoint))
        .clock(clock.clone())
        .initial_token(seeded.clone())
        .build();
    assert!(cache.token().is_none(), "an expired token was kept");

    assert_eq!(get_resource(&server, &cache).await, 200);
    assert_eq!(server.token_requests(), 1);
    assert_ne!(last_resource_token(&server), seeded.access_token().expose());
}

// ---------------------------------------------------------------------------------------------
// The CLI of examples/device_login.rs
// ---------------------------------------------------------------------------------------------

async fn demo_server() -> AuthServer {
    let server = AuthServer::start().await;
    server.add_client(CLIENT_ID, None, ClientAuthMethod::None);
    server.set_device_interval(Some(1));
    server.set_device_script(vec![DevicePoll::Pending]);
    server
}

async fn run(server: &AuthServer, state_file: &Path, clock: &ManualClock) -> device_login::Session {
    tokio::time::timeout(
        LIMIT,
        start_session(
            &server.token_url(),
            &server.device_authorization_url(),
            state_file,
            clock.clone(),
        ),
    )
    .await
    .expect("the run hung")
    .expect("the run failed")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_second_run_resumes_from_the_file_without_a_device_login() {
    let dir = temp_dir("resume");
    let state_file = dir.join("state.json");
    let server = demo_server().await;
    let clock = ManualClock::new();

    // Run 1: no file, so a device login; the token is stored.
    let first = run(&server, &state_file, &clock).await;
    assert!(!first.resumed);
    assert_eq!(server.device_authorization_requests(), 1);
    let stored = load_state(&state_file).unwrap().expect("the token was stored");
    let first_token = first.cache.token().unwrap();
    assert_eq!(stored.access_token(), first_token.access_token());
    let first_rt = stored
        .refresh_token()
        .expect("a refresh token")
        .expose()
        .to_owned();
    assert_eq!(
        Some(first_rt.as_str()),
        first_token.refresh_token().map(|rt| rt.expose())
    );
    #[cfg(unix)]
    assert_eq!(mode(&state_file), 0o600);
    // The process ends: nothing of the client is left but the file.
    drop(first);

    // Run 2, after the access token expired: the refresh token, no device login.
    clock.advance(Duration::from_secs(2 * 3600));
    server.reset_counters();
    let second = run(&server, &state_file, &clock).await;
    assert!(second.resumed);
    assert_eq!(server.device_authorization_requests(), 0);
    assert_eq!(server.token_requests(), 1);
    assert_eq!(refresh_requests(&server), [first_rt.as_str()]);
    assert_eq!(get_resource(&server, &second.cache).await, 200);
    assert_eq!(
        last_resource_token(&server),
        second.cache.token().unwrap().access_token().expose()
    );

    // The server rotated the refresh token: the new one is in the file, still 0600.
    let rewritten = load_state(&state_file).unwrap().unwrap();
    let second_rt = rewritten.refresh_token().unwrap().expose().to_owned();
    assert_ne!(second_rt, first_rt);
    assert!(server.is_refresh_token_valid(&second_rt));
    assert!(!server.is_refresh_token_valid(&first_rt));
    assert_eq!(
        rewritten.access_token(),
        second.cache.token().unwrap().access_token()
    );
    #[cfg(unix)]
    assert_eq!(mode(&state_file), 0o600);
    drop(second);

    // Run 3, while that access token is valid: no token request at all.
    server.reset_counters();
    let third = run(&server, &state_file, &clock).await;
    assert_eq!(
        server.token_requests() + server.device_authorization_requests(),
        0
    );
    assert_eq!(get_resource(&server, &third.cache).await, 200);
    assert_eq!(last_resource_token(&server), rewritten.access_token().expose());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_rotated_refresh_token_is_written_back() {
    let dir = temp_dir("rotation");
    let state_file = dir.join("state.json");
    let server = demo_server().await;
    let clock = ManualClock::new();
    let session = run(&server, &state_file, &clock).await;
    for _ in 0..3 {
        let token = tokio::time::timeout(LIMIT, session.cache.refresh())
            .await
            .unwrap()
            .expect("refresh");
        let stored = load_state(&state_file).unwrap().unwrap();
        assert_eq!(stored.refresh_token(), token.refresh_token());
        assert_eq!(stored.access_token(), token.access_token());
        assert!(server.is_refresh_token_valid(stored.refresh_token().unwrap().expose()));
    }
    assert_eq!(server.device_authorization_requests(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missing_file_means_a_device_login() {
    let dir = temp_dir("missing");
    let state_file = dir.join("never-written.json");
    assert!(load_state(&state_file).unwrap().is_none());
    let server = demo_server().await;
    let session = run(&server, &state_file, &ManualClock::new()).await;
    assert!(!session.resumed);
    assert_eq!(server.device_authorization_requests(), 1);
    assert!(load_state(&state_file).unwrap().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_corrupt_file_is_a_typed_error_and_is_left_alone() {
    let dir = temp_dir("corrupt");
    let state_file = dir.join("state.json");
    let server = demo_server().await;
    for (content, expected) in [
        ("{\"version\":1,\"access_tok", "not json"),
        ("[1,2]", "not an object"),
        ("{\"version\":2,\"access_token\":\"at\"}", "version"),
    ] {
        std::fs::write(&state_file, content).unwrap();
        let err = start_session(
            &server.token_url(),
            &server.device_authorization_url(),
            &state_file,
            ManualClock::new(),
        )
        .await
        .expect_err("a corrupt file was accepted");
        let err = err.downcast::<StateFileError>().expect("a StateFileError");
        let StateFileError::Corrupt { path, source } = *err else {
            panic!("not Corrupt: {err:?}");
        };
        assert_eq!(path, state_file);
        match expected {
            "not json" => assert!(matches!(source, StoredTokenError::NotJson { .. }), "{source:?}"),
            "not an object" => assert_eq!(source, StoredTokenError::NotAnObject),
            _ => assert_eq!(source, StoredTokenError::UnsupportedVersion(Some(2))),
        }
        assert_eq!(std::fs::read_to_string(&state_file).unwrap(), content);
    }
    assert_eq!(
        server.token_requests() + server.device_authorization_requests(),
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_refused_stored_refresh_token_falls_back_to_a_device_login() {
    let dir = temp_dir("refused");
    let state_file = dir.join("state.json");
    let server = demo_server().await;
    let clock = ManualClock::new();
    let revoked = Token::bearer("at-unknown")
        .with_refresh_token("rt-unknown")
        .with_expires_at(clock.now() - Duration::from_secs(1));
    save_state(&state_file, &StoredToken::from_token(&revoked)).unwrap();

    let session = run(&server, &state_file, &clock).await;
    assert!(session.resumed);
    assert_eq!(refresh_requests(&server), ["rt-unknown"]);
    assert_eq!(server.device_authorization_requests(), 1);
    let polls = server
        .requests()
        .iter()
        .filter(|r| r.param("grant_type") == Some(DEVICE_GRANT))
        .count();
    assert_eq!(polls, 2);
    let stored = load_state(&state_file).unwrap().unwrap();
    assert_ne!(stored.refresh_token().unwrap().expose(), "rt-unknown");
    assert_eq!(get_resource(&server, &session.cache).await, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn the_state_file_is_private_from_creation_and_replaced_atomically() {
    let dir = temp_dir("atomic");
    let state_file = dir.join("state.json");
    // A file someone made world-readable is replaced by a private one, not rewritten in place.
    std::fs::write(&state_file, "old").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&state_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let before = std::fs::metadata(&state_file).unwrap();
    let token = StoredToken::from_token(&Token::bearer("at").with_refresh_token("rt"));
    save_state(&state_file, &token).unwrap();
    assert_eq!(mode(&state_file), 0o600);
    {
        use std::os::unix::fs::MetadataExt;
        assert_ne!(
            std::fs::metadata(&state_file).unwrap().ino(),
            before.ino(),
            "rewritten in place"
        );
    }
    assert_eq!(load_state(&state_file).unwrap(), Some(token));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("state.json")]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_rotation_the_stored_refresh_token_is_kept() {
    let dir = temp_dir("no-rotation");
    let state_file = dir.join("state.json");
    let server = demo_server().await;
    server.set_rotate_refresh_tokens(false);
    let clock = ManualClock::new();
    let first = run(&server, &state_file, &clock).await;
    let rt = load_state(&state_file)
        .unwrap()
        .unwrap()
        .refresh_token()
        .cloned()
        .unwrap();
    // The refresh answer has no refresh token: the file must not lose the one it had.
    tokio::time::timeout(LIMIT, first.cache.refresh())
        .await
        .unwrap()
        .expect("refresh");
    assert_eq!(
        load_state(&state_file).unwrap().unwrap().refresh_token(),
        Some(&rt)
    );
    drop(first);

    clock.advance(Duration::from_secs(2 * 3600));
    server.reset_counters();
    let _second = run(&server, &state_file, &clock).await;
    assert_eq!(server.device_authorization_requests(), 0);
    assert_eq!(refresh_requests(&server), [rt.expose()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_refresh_token_source_restarts_from_stored_state() {
    let server = AuthServer::start().await;
    server.add_client("svc", None, ClientAuthMethod::None);
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("svc"))
        .clock(clock.clone())
        .build()
        .unwrap();
    // What an earlier process stored: a valid access token and its refresh token.
    let issued = tower_oauth2::RefreshToken::new(endpoint.clone(), server.issue_refresh_token("svc"))
        .fetch()
        .await
        .expect("token");
    let json = StoredToken::from_token(&issued).to_json();
    server.reset_counters();

    // The new process.
    let stored = StoredToken::from_json(&json).unwrap();
    let saved = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = saved.clone();
    let source = tower_oauth2::RefreshToken::from_token(endpoint, &stored.to_token())
        .unwrap()
        .on_new_token(move |token| {
            sink.lock()
                .unwrap()
                .push(StoredToken::from_token(&token).to_json());
            async {}
        });
    let cache = TokenCache::builder(source)
        .clock(clock.clone())
        .initial_token(stored.to_token())
        .build();
    assert_eq!(get_resource(&server, &cache).await, 200);
    assert_eq!(server.token_requests(), 0);
    assert_eq!(last_resource_token(&server), issued.access_token().expose());

    clock.advance(Duration::from_secs(3600));
    assert_eq!(get_resource(&server, &cache).await, 200);
    assert_eq!(
        refresh_requests(&server),
        [stored.refresh_token().unwrap().expose()]
    );
    let saved = saved.lock().unwrap();
    assert_eq!(saved.len(), 1);
    let rotated = StoredToken::from_json(&saved[0]).unwrap();
    assert_ne!(rotated.refresh_token(), stored.refresh_token());
    assert!(server.is_refresh_token_valid(rotated.refresh_token().unwrap().expose()));
    assert_eq!(last_resource_token(&server), rotated.access_token().expose());
}
