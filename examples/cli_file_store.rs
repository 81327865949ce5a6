//! A CLI whose tokens outlive each run, encrypted on disk: `cargo run --example cli_file_store
//! --features encryption`.
//!
//! A command-line tool gets a refresh token once, at login (from the device flow, say: see
//! `examples/device_login.rs`), and then runs many times. Each run is a new process with a new
//! `TokenCache`; without a store each would redeem the refresh token again, and with refresh
//! token rotation the second run would present one the server already consumed
//! (`invalid_grant`: log in again). With a [`FileStore`] in the user's cache directory, a run
//! takes the token the previous run left there: the access token while it is valid (no token
//! request at all), else the newest, rotated, refresh token. Two runs at once (two terminals)
//! make one token request between them (a lock file).
//!
//! The files are sealed with an [`EncryptionKey`] (feature `encryption`), so they hold no
//! bearer token in the clear: a backup or a stray `cat` of the cache directory leaks nothing.
//! A real CLI keeps the key elsewhere than the files (the OS keychain, or an environment
//! variable); a file that does not open with the key counts as absent (a new token request).
//!
//! Here the demo authorization server runs in this process (no configuration, no network), the
//! store is in a fresh temporary directory (deleted at the end) rather than in
//! [`FileStore::in_user_cache_dir`], and the "runs" are two caches built one after the other,
//! as two processes would build them: the second makes no token request.

#[path = "../tests/support/auth_server.rs"]
mod auth_server;

use std::error::Error as StdError;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_oauth2::store::{EncryptionKey, FileStore, SharedStore};
use tower_oauth2::{ClientAuth, OAuth2Layer, RefreshToken, Token, TokenCache, TokenEndpoint};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The demo's public client.
const CLIENT_ID: &str = "cli-file-store-demo";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The demo authorization server, and the refresh token the user got at login (what the
    // CLI's configuration holds; it rotates: a redeemed one is consumed).
    let server = auth_server::AuthServer::start().await;
    server.add_client(CLIENT_ID, None, auth_server::ClientAuthMethod::None);
    let login_refresh_token = server.issue_refresh_token(CLIENT_ID);

    // A real CLI: `FileStore::in_user_cache_dir("my-cli")?` (~/.cache/my-cli on Linux).
    let dir = std::env::temp_dir().join(format!("tower-oauth2-cli-file-store-{}", std::process::id()));
    // A real CLI: `EncryptionKey::from_base64(&key_from_the_keychain)?`.
    let key = EncryptionKey::generate()?;
    println!("token files in {}", dir.display());

    let result = demo(&server, &dir, &key, &login_refresh_token).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(
    server: &auth_server::AuthServer,
    dir: &Path,
    key: &EncryptionKey,
    login_refresh_token: &str,
) -> Result<(), BoxError> {
    let first = run(1, server, dir, key, login_refresh_token).await?;
    let token_requests = server.token_requests();
    println!("  token requests so far: {token_requests}");
    show_files(dir, &first)?;

    let second = run(2, server, dir, key, login_refresh_token).await?;
    println!("  token requests so far: {}", server.token_requests());
    if server.token_requests() != token_requests || second.access_token() != first.access_token() {
        return Err("the second run should have used the token the first one stored".into());
    }
    println!("\nthe second run made no token request: it read the first run's token from its file");
    println!(
        "(and the refresh token of the configuration, which the first run redeemed, is consumed: valid = {})",
        server.is_refresh_token_valid(login_refresh_token)
    );
    Ok(())
}

/// One run of the CLI: a new cache over the store (as a new process would build), and one API
/// request. Returns the token it used.
async fn run(
    number: u32,
    server: &auth_server::AuthServer,
    dir: &Path,
    key: &EncryptionKey,
    refresh_token: &str,
) -> Result<Token, BoxError> {
    println!("\nrun {number}");
    let store = SharedStore::new(FileStore::new(dir))
        .encryption(key.clone())
        // A local disk answers fast, but a flush to disk may take longer than the default
        // 100 ms on a busy machine; past this the run would fetch on its own.
        .timeout(Duration::from_secs(2));
    let endpoint = TokenEndpoint::new(server.token_url(), ClientAuth::none(CLIENT_ID))?;
    let cache = TokenCache::builder(RefreshToken::new(endpoint, refresh_token.to_owned()))
        .store(store)
        .build();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let api = ServiceBuilder::new()
        .timeout(Duration::from_secs(5))
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(client);

    let request = http::Request::get(server.resource_url()).body(Empty::new())?;
    let response = api.oneshot(request).await?;
    let used = server
        .resource_tokens()
        .last()
        .cloned()
        .flatten()
        .unwrap_or_default();
    println!(
        "  GET /resource -> {} with access token {}",
        response.status(),
        fingerprint(&used)
    );
    if !response.status().is_success() {
        return Err(format!("the API answered {}", response.status()).into());
    }
    Ok(cache.token().ok_or("the cache has no token")?)
}

/// What is on disk: a sealed token file (no token in it) and the lock file.
fn show_files(dir: &Path, token: &Token) -> Result<(), BoxError> {
    let secrets = [Some(token.access_token()), token.refresh_token()];
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let metadata = entry.metadata()?;
        #[cfg(unix)]
        let mode = format!(
            "{:o}",
            std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777
        );
        #[cfg(not(unix))]
        let mode = String::from("-");
        println!(
            "  {} ({} bytes, mode {mode})",
            entry.file_name().to_string_lossy(),
            metadata.len()
        );
        let contents = std::fs::read(entry.path())?;
        for secret in secrets.iter().flatten() {
            let secret = secret.expose().as_bytes();
            if contents.windows(secret.len()).any(|window| window == secret) {
                return Err("a file holds a token in the clear".into());
            }
        }
    }
    println!(
        "  (sealed: the files hold neither the access token {} nor the refresh token)",
        fingerprint(token.access_token().expose())
    );
    Ok(())
}

/// A short, non-secret fingerprint of a token, to show which one was used.
fn fingerprint(token: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut hasher);
    format!("#{:06x}", hasher.finish() & 0xff_ffff)
}
