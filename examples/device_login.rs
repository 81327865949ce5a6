//! A CLI that logs in once with the device flow, and on later runs resumes from a stored
//! refresh token without a new login: `cargo run --example device_login [-- STATE_FILE]`.
//!
//! Run it twice. The first run starts a device login; the embedded demo authorization server
//! approves it by itself after one poll (about two seconds), as a user at the verification URI
//! would. The token is stored in the state file (a [`StoredToken`] as JSON). The second run
//! reads the file and makes no device login: it uses the stored access token while it is valid
//! (the demo's tokens live 30 s), and otherwise redeems the stored refresh token. Every token
//! the client gets, a rotated refresh token included, is written back from the source's
//! `on_new_token` hook.
//!
//! The state file is the first argument, else `$TOWER_OAUTH2_DEVICE_LOGIN_STATE`, else
//! `tower-oauth2-device-login.json` in the OS temp directory. It is written so that only its
//! user can read it (mode 0600 from creation, on Unix) and atomically (a temporary file in the
//! same directory, flushed to disk, then renamed over the old one), so a crash never leaves
//! half a file. A missing file means "log in"; a file that cannot be read or parsed is an
//! error ([`StateFileError`]) that names the file, and the file is left as it is: delete it to
//! log in again.
//!
//! # What is real and what is demo
//!
//! The client side is what a real CLI would do. The authorization server, though, lives inside
//! this process and dies with it, so a new run has a new server that knows none of the tokens
//! the old one issued. To make the resume real rather than staged, the demo server keeps the
//! tokens it issued in a second file, `STATE_FILE.demo-server.json` (also 0600), and a new
//! server loads it at start: it plays a server that kept running. Delete only that file and the
//! next run shows what happens when the server no longer honours the stored tokens: the
//! stored access token is refused (401), the refresh token too (`invalid_grant`), and a new
//! device login starts.

#[path = "../tests/support/auth_server.rs"]
pub mod auth_server;

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_oauth2::clock::Clock;
use tower_oauth2::{
    ClientAuth, DeviceCode, OAuth2Layer, StoredToken, StoredTokenError, TerminalPrompt, TokenCache,
    TokenEndpoint,
};

/// The demo's public client.
pub const CLIENT_ID: &str = "device-login-demo";

/// The environment variable that names the state file.
pub const STATE_ENV: &str = "TOWER_OAUTH2_DEVICE_LOGIN_STATE";

/// How long the demo server's access tokens live.
const TOKEN_LIFETIME_SECS: u64 = 30;

/// The state file: the first argument, else `$TOWER_OAUTH2_DEVICE_LOGIN_STATE`, else a file in
/// the OS temp directory.
pub fn state_path(mut args: impl Iterator<Item = OsString>, env: Option<OsString>) -> PathBuf {
    args.next()
        .or(env)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tower-oauth2-device-login.json"))
}

/// Why the state file could not be used.
#[derive(Debug)]
pub enum StateFileError {
    /// It could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// It is there but does not hold a stored token.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        source: StoredTokenError,
    },
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateFileError::Io { path, .. } => write!(f, "cannot use the state file {}", path.display()),
            StateFileError::Corrupt { path, .. } => write!(
                f,
                "the state file {} is not a stored token; delete it to log in again",
                path.display()
            ),
        }
    }
}

impl StdError for StateFileError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            StateFileError::Io { source, .. } => Some(source),
            StateFileError::Corrupt { source, .. } => Some(source),
        }
    }
}

/// The stored token, `None` if there is no state file yet.
pub fn load_state(path: &Path) -> Result<Option<StoredToken>, StateFileError> {
    let json = match fs::read_to_string(path) {
        Ok(json) => json,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateFileError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    StoredToken::from_json(&json)
        .map(Some)
        .map_err(|source| StateFileError::Corrupt {
            path: path.to_owned(),
            source,
        })
}

/// Stores `state` in `path`, atomically, readable by its user only.
pub fn save_state(path: &Path, state: &StoredToken) -> Result<(), StateFileError> {
    write_private(path, state.to_json().as_bytes()).map_err(|source| StateFileError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes `contents` to `path` atomically: into a new file in the same directory, created with
/// mode 0600 on Unix (never readable by others, not even for a moment), flushed to disk, then
/// renamed over `path`; on Unix the directory is flushed too, so the rename survives a crash.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the state path names no file"))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let result = write_new_private(&temp, contents).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    #[cfg(unix)]
    fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

fn write_new_private(temp: &Path, contents: &[u8]) -> io::Result<()> {
    // A temporary file left by a run of this process id that crashed is ours to replace.
    match fs::remove_file(temp) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(temp)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A logged-in client: the cache the application's requests take their tokens from.
#[derive(Debug)]
pub struct Session {
    /// The token cache.
    pub cache: TokenCache,
    /// Whether the state file had a token to start from.
    pub resumed: bool,
}

/// Starts the client side: reads the state file, builds the device-code source (from the
/// stored refresh token if there is one) and the cache (seeded with the stored access token),
/// and gets a valid token, by device login only if nothing stored works. Every new token is
/// written back to the state file.
pub async fn start_session(
    token_url: &str,
    device_authorization_url: &str,
    state_file: &Path,
    clock: impl Clock + Clone,
) -> Result<Session, Box<dyn StdError + Send + Sync>> {
    let stored = load_state(state_file)?;
    let endpoint = TokenEndpoint::builder(token_url, ClientAuth::none(CLIENT_ID))
        .clock(clock.clone())
        .build()?;
    let path = state_file.to_owned();
    let mut source = DeviceCode::new(endpoint, device_authorization_url)?
        .scope("demo offline_access")
        .on_user_code(TerminalPrompt::new().into_callback())
        .on_new_token(move |token| {
            let path = path.clone();
            async move {
                let state = StoredToken::from_token(&token);
                let saved = tokio::task::spawn_blocking(move || save_state(&path, &state)).await;
                match saved {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => match err.source() {
                        Some(cause) => eprintln!("warning: {err}: {cause}"),
                        None => eprintln!("warning: {err}"),
                    },
                    Err(err) => eprintln!("warning: could not store the token: {err}"),
                }
            }
        });
    if let Some(refresh_token) = stored.as_ref().and_then(StoredToken::refresh_token) {
        source = source.with_refresh_token(refresh_token.clone());
    }
    let mut cache = TokenCache::builder(source).clock(clock);
    if let Some(stored) = &stored {
        cache = cache.initial_token(stored.to_token());
    }
    let cache = cache.build();
    cache.prefetch().await?;
    Ok(Session {
        cache,
        resumed: stored.is_some(),
    })
}

/// The demo server's own state file, beside the client's.
fn server_state_path(state_file: &Path) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".demo-server.json");
    PathBuf::from(name)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The error and its causes, one per line.
            eprintln!("error: {err}");
            let mut cause = err.source();
            while let Some(err) = cause {
                eprintln!("  caused by: {err}");
                cause = err.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn StdError + Send + Sync>> {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg.to_string_lossy().starts_with('-'))
    {
        println!("usage: device_login [STATE_FILE]   (or ${STATE_ENV}; default: in the OS temp directory)");
        return Ok(());
    }
    let state_file = state_path(std::env::args_os().skip(1), std::env::var_os(STATE_ENV));
    let server_file = server_state_path(&state_file);

    // The demo authorization server: approves each device code at its second poll, one second
    // after the first; remembers the tokens an earlier run's server issued.
    let server = auth_server::AuthServer::start().await;
    server.add_client(CLIENT_ID, None, auth_server::ClientAuthMethod::None);
    server.set_device_interval(Some(1));
    server.set_device_script(vec![auth_server::DevicePoll::Pending]);
    server.set_expires_in(Some(TOKEN_LIFETIME_SECS));
    if let Ok(json) = fs::read_to_string(&server_file) {
        if let Ok(exported) = serde_json::from_str(&json) {
            server.import_tokens(&exported);
        }
    }

    println!("state file: {}", state_file.display());
    let session = start_session(
        &server.token_url(),
        &server.device_authorization_url(),
        &state_file,
        tower_oauth2::clock::SystemClock,
    )
    .await;
    // Whatever happened, the demo server keeps what it issued for the next run.
    write_private(&server_file, server.export_tokens().to_string().as_bytes())?;
    let session = session?;

    // A request to the API, with the layer putting the token on it. A stored access token the
    // server no longer honours is answered 401: drop it and try once more.
    let api = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(session.cache.clone()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let mut status = http::StatusCode::UNAUTHORIZED;
    for _ in 0..2 {
        let request = http::Request::get(server.resource_url()).body(Empty::new())?;
        status = api.clone().oneshot(request).await?.status();
        if status != http::StatusCode::UNAUTHORIZED {
            break;
        }
        session.cache.invalidate();
    }
    write_private(&server_file, server.export_tokens().to_string().as_bytes())?;

    let how = match (session.resumed, server.device_authorization_requests()) {
        (true, 0) if server.token_requests() == 0 => "resumed with the stored access token: no token request",
        (true, 0) => "resumed with the stored refresh token: no new login",
        (true, _) => "the stored tokens were refused: logged in again",
        (false, _) => "logged in with the device flow",
    };
    println!("{how}");
    println!("GET /resource: {status}");
    println!(
        "{} device login(s), {} token request(s); the token is stored in {}",
        server.device_authorization_requests(),
        server.token_requests(),
        state_file.display()
    );
    if !session.resumed {
        println!("run it again: it resumes without a new login");
    }
    if !status.is_success() {
        return Err(format!("the API answered {status}").into());
    }
    Ok(())
}
