//! The interop harness: starts `tests/interop/server.mjs` (oidc-provider, see
//! `tests/interop/README.md`) on an ephemeral port, talks to its test routes, and records the
//! requests the crate sends. Included by the interop test files with
//! `#[path = "support/interop.rs"] mod harness;`.
#![allow(dead_code)]

#[path = "util.rs"]
pub(crate) mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use tower_oauth2::{ClientAuth, HttpClient, TokenEndpoint};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The clients registered in server.mjs with `client_secret_basic`, `client_secret_post`
/// and `none`.
pub(crate) const BASIC_ID: &str = "basic-client";
pub(crate) const BASIC_SECRET: &str = "s3cr:et%+ &/=?";
pub(crate) const POST_ID: &str = "post-client";
pub(crate) const POST_SECRET: &str = "p0st:secret+%";
pub(crate) const PUBLIC_ID: &str = "public-client";
/// The client of server.mjs registered with `require_pushed_authorization_requests`.
pub(crate) const PAR_ID: &str = "par-client";
pub(crate) const PAR_SECRET: &str = "p4r:secret";
/// The redirect URI every client of server.mjs has registered.
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1/cb";

const NEED_NODE: &str =
    "the interop tests need Node.js 20 or later and npm: install them (e.g. apt-get install nodejs npm)";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) type PlainClient = Client<HttpConnector, Full<Bytes>>;

/// A plain HTTP/1.1 client, for the test routes and as the service under the layer.
pub(crate) fn plain_client() -> PlainClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

/// Checks for node and npm, and runs `npm ci` once if the packages are missing.
fn ensure_node_and_packages() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let result = READY.get_or_init(|| {
        let node = std::process::Command::new("node").arg("--version").output();
        let version = match node {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            Ok(out) => return Err(format!("{NEED_NODE} (`node --version` failed: {})", out.status)),
            Err(e) => return Err(format!("{NEED_NODE} (cannot run `node`: {e})")),
        };
        let major: Option<u32> = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok());
        if major.is_none_or(|m| m < 20) {
            return Err(format!("{NEED_NODE} (found node {version})"));
        }
        match std::process::Command::new("npm").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("{NEED_NODE} (`npm --version` failed: {})", out.status)),
            Err(e) => return Err(format!("{NEED_NODE} (cannot run `npm`: {e})")),
        }
        let dir = interop_dir();
        if !dir.join("node_modules/oidc-provider/package.json").is_file() {
            eprintln!("interop: running `npm ci` in {}", dir.display());
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .status()
                .map_err(|e| format!("cannot run `npm ci`: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "`npm ci --no-audit --no-fund` in {} failed ({status}); the npm registry must be reachable",
                    dir.display()
                ));
            }
        }
        Ok(())
    });
    if let Err(message) = result {
        // One line per test, not a panic report: `resume_unwind` fails the test without
        // running the panic hook (no "thread ... panicked at" and backtrace note).
        eprintln!("interop: {message}");
        std::panic::resume_unwind(Box::new(message.clone()));
    }
}

/// How to start the server.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub(crate) access_token_ttl: u64,
    pub(crate) device_interval: u64,
    /// `REQUIRE_PAR=1`: every client must use PAR (RFC 9126 §5, advertised in discovery).
    pub(crate) require_par: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            access_token_ttl: 60,
            device_interval: 1,
            require_par: false,
        }
    }
}

impl ServerConfig {
    pub(crate) fn access_token_ttl(mut self, seconds: u64) -> Self {
        self.access_token_ttl = seconds;
        self
    }

    pub(crate) fn require_par(mut self) -> Self {
        self.require_par = true;
        self
    }
}

/// The test routes and plain requests to the server.
#[derive(Clone)]
pub(crate) struct Api {
    issuer: String,
    http: PlainClient,
}

impl Api {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub(crate) fn get_request(&self, path: &str) -> Request<Full<Bytes>> {
        Request::get(self.url(path)).body(Full::default()).unwrap()
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, Bytes) {
        let what = format!("{} {}", request.method(), request.uri());
        let response = tokio::time::timeout(Duration::from_secs(30), self.http.request(request))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer in 30 s"))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, body)
    }

    fn json(body: &[u8]) -> Value {
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
        }
    }

    pub(crate) async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(self.get_request(path)).await;
        (status, Self::json(&body))
    }

    pub(crate) async fn get_bearer(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let request = Request::get(self.url(path))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::default())
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, Self::json(&body))
    }

    pub(crate) async fn call_protected(&self, token: &str) -> (StatusCode, Value) {
        self.get_bearer("/test/protected", token).await
    }

    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Request::post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, Self::json(&body))
    }

    async fn count(&self, path: &str) -> u64 {
        let (status, body) = self.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body["count"].as_u64().unwrap_or_else(|| panic!("{path}: {body}"))
    }

    /// Requests to `/token` since start or the last reset.
    pub(crate) async fn token_requests(&self) -> u64 {
        self.count("/test/token-requests").await
    }

    /// Requests to `/test/protected` since start or the last reset.
    pub(crate) async fn protected_requests(&self) -> u64 {
        self.count("/test/protected-requests").await
    }

    pub(crate) async fn reset(&self) {
        let request = Request::post(self.url("/test/reset"))
            .body(Full::default())
            .unwrap();
        let (status, _, _) = self.send(request).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
}

/// A running `server.mjs`, killed on drop.
pub(crate) struct Server {
    config: ServerConfig,
    api: Api,
    child: Child,
    // Held open: the server exits when its stdin closes.
    stdin: Option<ChildStdin>,
    _stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl Server {
    pub(crate) async fn start(config: ServerConfig) -> Server {
        ensure_node_and_packages();
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("interop-server-{}-{n}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).unwrap();

        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(interop_dir())
            .env("PORT", "0")
            .env("ACCESS_TOKEN_TTL", config.access_token_ttl.to_string())
            .env("DEVICE_INTERVAL", config.device_interval.to_string())
            .env("EXIT_ON_STDIN_EOF", "1")
            .env("REQUIRE_PAR", if config.require_par { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{NEED_NODE} (cannot start `node server.mjs`: {e})"));
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());

        let mut line = String::new();
        let read = tokio::time::timeout(READY_TIMEOUT, stdout.read_line(&mut line)).await;
        let failure = match read {
            Err(_) => Some(format!("no READY line within {READY_TIMEOUT:?}")),
            Ok(Err(e)) => Some(format!("cannot read its stdout: {e}")),
            Ok(Ok(0)) => Some(format!("it exited: {:?}", child.try_wait())),
            Ok(Ok(_)) if !line.starts_with("READY http://") => Some(format!("unexpected stdout {line:?}")),
            Ok(Ok(_)) => None,
        };
        if let Some(failure) = failure {
            let _ = child.start_kill();
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "the interop server (node tests/interop/server.mjs) did not start: {failure}\n\
                 its stderr ({}):\n{stderr}",
                log.display()
            );
        }
        let issuer = line.trim_end().trim_start_matches("READY ").to_owned();
        let server = Server {
            config,
            api: Api {
                issuer: issuer.clone(),
                http: plain_client(),
            },
            child,
            stdin,
            _stdout: stdout,
            log,
        };

        // The discovery document names this issuer and the endpoints the tests use.
        let (status, discovery) = server.api.get_json("/.well-known/openid-configuration").await;
        assert_eq!(status, StatusCode::OK, "discovery: {discovery}");
        assert_eq!(discovery["issuer"], issuer.as_str());
        assert_eq!(discovery["token_endpoint"], server.token_url().as_str());
        assert_eq!(
            discovery["device_authorization_endpoint"],
            server.url("/device/auth").as_str()
        );
        assert_eq!(discovery["userinfo_endpoint"], server.url("/me").as_str());
        server
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub(crate) fn api(&self) -> &Api {
        &self.api
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.api.url(path)
    }

    pub(crate) fn token_url(&self) -> String {
        self.url("/token")
    }

    /// The issuer identifier (`http://127.0.0.1:<port>`, no trailing slash), as in the
    /// discovery document.
    pub(crate) fn issuer(&self) -> String {
        self.url("")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!("interop server log kept at {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// One request the crate sent, as the recording HTTP client saw it.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) method: http::Method,
    pub(crate) path: String,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Recorded {
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The only value of a form field (panics if it is repeated).
    pub(crate) fn field(&self, name: &str) -> Option<String> {
        util::only_field(&util::form_fields(&self.body), name).map(str::to_owned)
    }

    pub(crate) fn authorization(&self) -> Option<String> {
        self.headers
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Records every request an [`HttpClient`] sends, then forwards it with hyper-util.
#[derive(Clone, Default)]
pub(crate) struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    pub(crate) fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// A token endpoint at `token_url` whose requests this recorder sees.
    pub(crate) fn token_endpoint(&self, token_url: impl Into<String>, auth: ClientAuth) -> TokenEndpoint {
        TokenEndpoint::builder(token_url, auth)
            .http_client(self.http_client())
            .build()
            .unwrap()
    }

    pub(crate) fn http_client(&self) -> HttpClient {
        let client = plain_client();
        let recorder = self.clone();
        HttpClient::new(tower::service_fn(move |request: Request<Full<Bytes>>| {
            let client = client.clone();
            let recorder = recorder.clone();
            async move {
                let (parts, body) = util::read_request(request).await;
                recorder.0.lock().unwrap().push(Recorded {
                    method: parts.method.clone(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers.clone(),
                    body: body.clone(),
                });
                client.request(Request::from_parts(parts, Full::new(body))).await
            }
        }))
        .with_timeout(Duration::from_secs(30))
    }
}
