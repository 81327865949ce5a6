//! Soak: many requests through `OAuth2Layer` over real HTTP, against a local authorization
//! server issuing short-lived HS256 JWTs and a resource server that rejects any token past its
//! `exp`. Not part of CI; see the "Soak" section of BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example soak -- [--requests N] [--fail-rate F] [--lifetime SECS]
//!     [--concurrency C] [--rate R] [--max-seconds S] [--seed N]
//! ```
//!
//! - The authorization server (AS) takes the client credentials grant with
//!   `client_secret_basic` and answers like real providers: the access token is a JWT with
//!   `exp = floor(now) + lifetime` in whole seconds, and `expires_in = lifetime`. The token
//!   therefore dies up to 1 s before `sent_at + expires_in`, the time the client computes.
//! - With `--fail-rate F`, a fraction F of token requests (seeded RNG) get one of five faults,
//!   chosen with equal odds: 503 with `Retry-After: 1`, 500 with an OAuth 2.0 `server_error`
//!   body, 429 with `Retry-After: 1`, a slow answer (a valid token after half a lifetime), or
//!   the connection closed without an answer.
//! - The resource server (RS) verifies the signature and rejects a token whose `exp <= now`
//!   with `401` and `WWW-Authenticate: Bearer error="invalid_token"`, counting it as an
//!   expired token at the RS.
//! - The client is `tower::ServiceBuilder` with a 10 s timeout over `OAuth2Layer` (default
//!   cache settings, `ClientCredentials`) over hyper-util's client. C workers share it; request
//!   `i` is not sent before `start + i / R` (the schedule is the only wait: no sleep between
//!   requests), and the run stops after N requests or `--max-seconds`, whichever comes first.
//!
//! The report (and a progress line every 10 s) gives requests sent, succeeded and failed by
//! kind, each failure blamed on the last fault injected before it, the RS's counts, token
//! requests per token lifetime, RSS (`/proc/self/statm`) and live heap bytes (counted by a
//! wrapper around the system allocator) at start, after warm-up, middle and end, and the
//! servers' connections.
//!
//! Goal: 0 failed requests and 0 expired tokens at the RS. The exit code is 0 if it is met,
//! 1 if not (or if the time guard cut the run short), 2 on bad arguments. Set `RUST_LOG` (for
//! example `RUST_LOG=tower_oauth2=info`) to see the cache's refreshes on stderr.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenEndpoint};

const CLIENT_ID: &str = "soak-client";
const ISSUER: &str = "http://soak-as.local";
const AUDIENCE: &str = "soak-api";
const SCOPE: &str = "soak:read";
/// Timeout of one API request, token wait included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
    requests: u64,
    fail_rate: f64,
    lifetime: u64,
    concurrency: usize,
    /// Requests per second; 0 sends as fast as the workers go.
    rate: f64,
    max_seconds: f64,
    seed: u64,
}

const USAGE: &str = "usage: soak [--requests N] [--fail-rate F] [--lifetime SECS] [--concurrency C] \
[--rate R] [--max-seconds S] [--seed N]
  --requests N     requests to send (default 1000000)
  --fail-rate F    fraction of token requests that get a fault, 0 to 1 (default 0)
  --lifetime SECS  access token lifetime in whole seconds, >= 1 (default 2)
  --concurrency C  concurrent workers (default 32)
  --rate R         target requests per second, 0 = unpaced (default 4000: 1,000,000 in 250 s)
  --max-seconds S  stop sending after S seconds (default: twice the planned time + 60 s)
  --seed N         seed of the fault RNG (default 9)";

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            requests: 1_000_000,
            fail_rate: 0.0,
            lifetime: 2,
            concurrency: 32,
            rate: 4000.0,
            max_seconds: 0.0,
            seed: 9,
        };
        let mut max_seconds = None;
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Err("help".into());
            }
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                    (arg, value)
                }
            };
            match name.as_str() {
                "--requests" => options.requests = number(&name, &value)?,
                "--fail-rate" => options.fail_rate = number(&name, &value)?,
                "--lifetime" => options.lifetime = number(&name, &value)?,
                "--concurrency" => options.concurrency = number(&name, &value)?,
                "--rate" => options.rate = number(&name, &value)?,
                "--max-seconds" => max_seconds = Some(number(&name, &value)?),
                "--seed" => options.seed = number(&name, &value)?,
                _ => return Err(format!("unknown option {name}")),
            }
        }
        if !(0.0..=1.0).contains(&options.fail_rate) {
            return Err("--fail-rate must be between 0 and 1".into());
        }
        if options.lifetime == 0 || options.concurrency == 0 || options.requests == 0 {
            return Err("--lifetime, --concurrency and --requests must be at least 1".into());
        }
        if !(options.rate.is_finite() && options.rate >= 0.0) {
            return Err("--rate must be a number >= 0".into());
        }
        options.max_seconds = match max_seconds {
            Some(s) if s > 0.0 && f64::is_finite(s) => s,
            Some(_) => return Err("--max-seconds must be > 0".into()),
            None if options.rate > 0.0 => 2.0 * options.requests as f64 / options.rate + 60.0,
            None => 600.0,
        };
        Ok(options)
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("bad value for {name}: {value:?}"))
}

// ---------------------------------------------------------------------------------------------
// Authorization server

/// The faults injected into token requests, drawn with equal odds.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// 503 with `Retry-After: 1` and an HTML body, as a load balancer sends.
    Unavailable,
    /// 500 with `{"error":"server_error",...}`.
    ServerError,
    /// 429 with `Retry-After: 1`.
    TooManyRequests,
    /// A valid token, after half a token lifetime.
    Slow,
    /// The connection is closed without an answer.
    Dropped,
}

const FAULTS: [Fault; 5] = [
    Fault::Unavailable,
    Fault::ServerError,
    Fault::TooManyRequests,
    Fault::Slow,
    Fault::Dropped,
];

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    jti: u64,
    scope: String,
}

struct AuthServer {
    key: EncodingKey,
    client_secret: String,
    lifetime: u64,
    fail_rate: f64,
    rng: Mutex<StdRng>,
    token_requests: AtomicU64,
    issued: AtomicU64,
    /// Requests refused for bad credentials or a bad form (the client's fault: should stay 0).
    refused: AtomicU64,
    faults: [AtomicU64; 5],
    /// The last fault injected, numbered from 1, to blame the failures that follow it.
    last_fault: Mutex<Option<(u64, Fault)>>,
    connections: Arc<Connections>,
}

/// The error a service returns to make hyper close the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type.parse().expect("a valid content type"));
    headers.insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": error, "error_description": description });
    response(status, "application/json", body.to_string())
}

impl AuthServer {
    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, DropConnection> {
        if request.uri().path() != "/token" {
            return Ok(response(StatusCode::NOT_FOUND, "text/plain", "not found"));
        }
        if request.method() != Method::POST {
            return Ok(response(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "POST only",
            ));
        }
        self.token_requests.fetch_add(1, Relaxed);
        let fault = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            (rng.random::<f64>() < self.fail_rate).then(|| FAULTS[rng.random_range(0..FAULTS.len())])
        };
        if let Some(fault) = fault {
            self.faults[fault as usize].fetch_add(1, Relaxed);
            let mut last = self.last_fault.lock().unwrap_or_else(|e| e.into_inner());
            let number = last.map_or(0, |(number, _)| number) + 1;
            *last = Some((number, fault));
        }
        match fault {
            Some(Fault::Unavailable) => {
                let mut answer = response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/html",
                    "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                );
                answer
                    .headers_mut()
                    .insert(RETRY_AFTER, http::HeaderValue::from_static("1"));
                return Ok(answer);
            }
            Some(Fault::ServerError) => {
                return Ok(oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "The authorization server encountered an unexpected condition",
                ));
            }
            Some(Fault::TooManyRequests) => {
                let mut answer = response(StatusCode::TOO_MANY_REQUESTS, "text/plain", "Too Many Requests");
                answer
                    .headers_mut()
                    .insert(RETRY_AFTER, http::HeaderValue::from_static("1"));
                return Ok(answer);
            }
            Some(Fault::Dropped) => return Err(DropConnection),
            Some(Fault::Slow) => tokio::time::sleep(Duration::from_millis(self.lifetime * 500)).await,
            None => {}
        }

        if !self.client_authenticated(request.headers()) {
            self.refused.fetch_add(1, Relaxed);
            let mut answer = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            );
            answer.headers_mut().insert(
                WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"soak\""),
            );
            return Ok(answer);
        }
        let form = match Limited::new(request.into_body(), 16 * 1024).collect().await {
            Ok(body) => serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body.to_bytes()).ok(),
            Err(_) => None,
        };
        let Some(form) = form else {
            self.refused.fetch_add(1, Relaxed);
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Unreadable form",
            ));
        };
        if !form
            .iter()
            .any(|(k, v)| k == "grant_type" && v == "client_credentials")
        {
            self.refused.fetch_add(1, Relaxed);
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only client_credentials is supported",
            ));
        }

        // Whole seconds, as real servers do: the token dies up to 1 s before the client's
        // `sent_at + expires_in`.
        let now = unix_now().as_secs();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: CLIENT_ID.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.lifetime,
            jti: self.issued.fetch_add(1, Relaxed),
            scope: SCOPE.to_owned(),
        };
        let Ok(jwt) = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key) else {
            return Ok(oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Signing failed",
            ));
        };
        let body = serde_json::json!({
            "access_token": jwt,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "scope": SCOPE,
        });
        Ok(response(StatusCode::OK, "application/json", body.to_string()))
    }

    /// `client_secret_basic`: `Basic base64(form_urlencode(id) ":" form_urlencode(secret))`.
    fn client_authenticated(&self, headers: &http::HeaderMap) -> bool {
        let Some(credentials) = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Basic "))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
        else {
            return false;
        };
        let Some((id, secret)) = credentials.split_once(':') else {
            return false;
        };
        form_decode(id) == CLIENT_ID && form_decode(secret) == self.client_secret
    }
}

/// Decodes one form-urlencoded component (it holds no `=` or `&`: those arrive escaped).
fn form_decode(component: &str) -> String {
    url::form_urlencoded::parse(component.as_bytes())
        .next()
        .map(|(key, _)| key.into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Resource server

struct ResourceServer {
    key: DecodingKey,
    validation: Validation,
    ok: AtomicU64,
    /// Valid signature, `exp <= now`.
    expired: AtomicU64,
    /// Missing, malformed, or bad signature (should stay 0).
    invalid: AtomicU64,
    connections: Arc<Connections>,
}

impl ResourceServer {
    fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked below, strictly (`exp <= now` is expired, no leeway); the library's
        // check lets `exp == now` through and has 60 s of leeway by default.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        ResourceServer {
            key: DecodingKey::from_secret(secret),
            validation,
            ok: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            connections: Arc::default(),
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let bearer = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let claims =
            bearer.and_then(|jwt| jsonwebtoken::decode::<Claims>(jwt, &self.key, &self.validation).ok());
        let Some(claims) = claims else {
            self.invalid.fetch_add(1, Relaxed);
            return Ok(unauthorized("The access token is invalid"));
        };
        // `exp` is whole seconds: `exp <= now` is the same as `exp <= floor(now)`.
        if claims.claims.exp <= unix_now().as_secs() {
            self.expired.fetch_add(1, Relaxed);
            return Ok(unauthorized("The access token expired"));
        }
        self.ok.fetch_add(1, Relaxed);
        Ok(response(StatusCode::OK, "application/json", r#"{"ok":true}"#))
    }
}

fn unauthorized(description: &'static str) -> Response<Full<Bytes>> {
    let mut answer = response(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized");
    let challenge =
        format!(r#"Bearer realm="soak", error="invalid_token", error_description="{description}""#);
    answer
        .headers_mut()
        .insert(WWW_AUTHENTICATE, challenge.parse().expect("a valid header value"));
    answer
}

/// A server's connections: open now, and accepted in all.
#[derive(Default)]
struct Connections {
    open: AtomicU64,
    accepted: AtomicU64,
}

/// Serves `handle` over HTTP/1.1 on a loopback port; returns the address.
async fn serve<F, Fut, E>(handle: F, connections: Arc<Connections>) -> std::io::Result<SocketAddr>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let handle = handle.clone();
            let connections = connections.clone();
            connections.accepted.fetch_add(1, Relaxed);
            connections.open.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                // Errors here are closed connections, the dropped-answer fault among them.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
                connections.open.fetch_sub(1, Relaxed);
            });
        }
    });
    Ok(address)
}

// ---------------------------------------------------------------------------------------------
// Client side: counters and workers

/// What went wrong with one request, as the client saw it.
#[derive(Clone, Copy)]
enum Failure {
    /// The layer gave a `tower_oauth2::Error`: no token could be had.
    Token,
    /// The RS answered 401.
    Unauthorized,
    /// Another status than 200 or 401.
    OtherStatus,
    /// The 10 s timeout.
    Timeout,
    /// A connection or body error talking to the RS.
    Transport,
}

impl Failure {
    const ALL: [Failure; 5] = [
        Failure::Token,
        Failure::Unauthorized,
        Failure::OtherStatus,
        Failure::Timeout,
        Failure::Transport,
    ];

    fn name(self) -> &'static str {
        match self {
            Failure::Token => "token error",
            Failure::Unauthorized => "401 from RS",
            Failure::OtherStatus => "other status",
            Failure::Timeout => "timeout",
            Failure::Transport => "transport",
        }
    }
}

struct Run {
    requests: u64,
    rate: f64,
    start: Instant,
    deadline: Instant,
    api: Uri,
    next: AtomicU64,
    done: AtomicU64,
    succeeded: AtomicU64,
    failures: [AtomicU64; 5],
    /// Up to 8 distinct error messages per kind, with counts.
    messages: Mutex<BTreeMap<(usize, String), u64>>,
    cut_by_guard: AtomicBool,
    rss_warm: AtomicU64,
    rss_middle: AtomicU64,
    heap_warm: AtomicU64,
    heap_middle: AtomicU64,
    rss_peak: AtomicU64,
    auth: Arc<AuthServer>,
    /// Failed requests by the last fault injected before them (index 5: no fault before).
    failed_after: [AtomicU64; 6],
    /// Faults followed by at least one failed request, by kind.
    faults_with_failures: [AtomicU64; 5],
    /// The number of the last fault blamed for a failure (0: none yet).
    last_blamed: AtomicU64,
}

impl Run {
    fn fail(&self, kind: Failure, message: String) {
        self.failures[kind as usize].fetch_add(1, Relaxed);
        let last_fault = *self.auth.last_fault.lock().unwrap_or_else(|e| e.into_inner());
        match last_fault {
            Some((number, fault)) => {
                self.failed_after[fault as usize].fetch_add(1, Relaxed);
                if self.last_blamed.swap(number, Relaxed) != number {
                    self.faults_with_failures[fault as usize].fetch_add(1, Relaxed);
                }
            }
            None => {
                self.failed_after[FAULTS.len()].fetch_add(1, Relaxed);
            }
        }
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        let distinct = messages.keys().filter(|(k, _)| *k == kind as usize).count();
        let key = (kind as usize, message);
        if let Some(count) = messages.get_mut(&key) {
            *count += 1;
        } else if distinct < 8 {
            messages.insert(key, 1);
        }
    }

    fn failed(&self) -> u64 {
        self.failures.iter().map(|n| n.load(Relaxed)).sum()
    }
}

async fn worker<S>(mut api: S, run: Arc<Run>)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = BoxError>,
{
    loop {
        let i = run.next.fetch_add(1, Relaxed);
        if i >= run.requests {
            break;
        }
        if run.rate > 0.0 {
            // The pacing schedule: request i goes at start + i / rate, or at once if late.
            tokio::time::sleep_until(run.start + Duration::from_secs_f64(i as f64 / run.rate)).await;
        }
        if Instant::now() >= run.deadline {
            run.cut_by_guard.store(true, Relaxed);
            break;
        }
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = run.api.clone();
        let result = match api.ready().await {
            Ok(service) => service.call(request).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(response) => {
                let status = response.status();
                let www_authenticate = response.headers().get(WWW_AUTHENTICATE).cloned();
                match response.into_body().collect().await {
                    Err(err) => run.fail(Failure::Transport, format!("response body: {err}")),
                    Ok(_) if status == StatusCode::OK => {
                        run.succeeded.fetch_add(1, Relaxed);
                    }
                    Ok(_) if status == StatusCode::UNAUTHORIZED => {
                        let challenge = www_authenticate
                            .as_ref()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).escape_debug().to_string())
                            .unwrap_or_default();
                        run.fail(Failure::Unauthorized, challenge);
                    }
                    Ok(_) => run.fail(Failure::OtherStatus, status.to_string()),
                }
            }
            Err(err) => {
                let message = error_chain(&*err);
                let kind = if err.is::<tower::timeout::error::Elapsed>() {
                    Failure::Timeout
                } else if err.is::<tower_oauth2::Error>() {
                    Failure::Token
                } else {
                    Failure::Transport
                };
                run.fail(kind, message);
            }
        }
        let done = run.done.fetch_add(1, Relaxed) + 1;
        if done == (run.requests / 10).max(1) {
            run.rss_warm.store(rss_bytes(), Relaxed);
            run.heap_warm.store(live_heap(), Relaxed);
        }
        if done == (run.requests / 2).max(1) {
            run.rss_middle.store(rss_bytes(), Relaxed);
            run.heap_middle.store(live_heap(), Relaxed);
        }
    }
}

/// An error and its sources, on one line, escaped.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors print their source in their own message already.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.escape_debug().to_string()
}

/// The system allocator, counting the bytes the process holds (allocated, not yet freed).
/// RSS also moves with what the allocator keeps cached; a leak shows here as a steady rise.
struct LiveHeap;

static LIVE_HEAP: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call goes to `System` unchanged; only a counter is updated beside it.
unsafe impl GlobalAlloc for LiveHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_HEAP.fetch_add(layout.size() as u64, Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_HEAP.fetch_add(layout.size() as u64, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_HEAP.fetch_sub(layout.size() as u64, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_HEAP.fetch_add(new_size as u64, Relaxed);
            LIVE_HEAP.fetch_sub(layout.size() as u64, Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: LiveHeap = LiveHeap;

fn live_heap() -> u64 {
    LIVE_HEAP.load(Relaxed)
}

/// Resident set size from `/proc/self/statm` (0 where there is none).
fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * page_size()
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(not(target_os = "linux"))]
fn page_size() -> u64 {
    4096
}

/// Bytes in MiB; "-" for 0, a point the run did not reach.
fn mib(bytes: u64) -> String {
    if bytes == 0 {
        return "-".to_owned();
    }
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `end - warm_up` in KiB, if the run got past its warm-up.
fn growth(warm_up: u64, end: u64) -> String {
    if warm_up == 0 {
        return "no warm-up point".to_owned();
    }
    format!(
        "end - warm-up: {:+.0} KiB",
        (end as f64 - warm_up as f64) / 1024.0
    )
}

fn progress(run: &Run, auth: &AuthServer, resource: &ResourceServer) -> String {
    let failures: Vec<String> = Failure::ALL
        .iter()
        .map(|&kind| format!("{} {}", kind.name(), run.failures[kind as usize].load(Relaxed)))
        .collect();
    let faults: u64 = auth.faults.iter().map(|n| n.load(Relaxed)).sum();
    let rss = rss_bytes();
    run.rss_peak.fetch_max(rss, Relaxed);
    format!(
        "[{:>6.1} s] sent {} ok {} failed {} ({}) | RS expired {} | token requests {} (faults {}) | RSS {} heap {} | connections RS {}/{} AS {}/{} (open/accepted)",
        run.start.elapsed().as_secs_f64(),
        run.done.load(Relaxed),
        run.succeeded.load(Relaxed),
        run.failed(),
        failures.join(", "),
        resource.expired.load(Relaxed),
        auth.token_requests.load(Relaxed),
        faults,
        mib(rss),
        mib(live_heap()),
        resource.connections.open.load(Relaxed),
        resource.connections.accepted.load(Relaxed),
        auth.connections.open.load(Relaxed),
        auth.connections.accepted.load(Relaxed),
    )
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) if message == "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match soak(options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("soak could not run: {}", error_chain(&*err));
            ExitCode::from(1)
        }
    }
}

async fn soak(options: Options) -> Result<bool, BoxError> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let jwt_key: [u8; 32] = rng.random();
    let client_secret: String = (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect();

    let auth = Arc::new(AuthServer {
        key: EncodingKey::from_secret(&jwt_key),
        client_secret: client_secret.clone(),
        lifetime: options.lifetime,
        fail_rate: options.fail_rate,
        rng: Mutex::new(rng),
        token_requests: AtomicU64::new(0),
        issued: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        faults: Default::default(),
        last_fault: Mutex::new(None),
        connections: Arc::default(),
    });
    let resource = Arc::new(ResourceServer::new(&jwt_key));
    let auth_address = {
        let auth = auth.clone();
        let connections = auth.connections.clone();
        serve(
            move |request| {
                let auth = auth.clone();
                async move { auth.handle(request).await }
            },
            connections,
        )
        .await?
    };
    let resource_address = {
        let resource = resource.clone();
        let connections = resource.connections.clone();
        serve(
            move |request| {
                let resource = resource.clone();
                async move { resource.handle(request).await }
            },
            connections,
        )
        .await?
    };

    let endpoint = TokenEndpoint::new(
        format!("http://{auth_address}/token"),
        ClientAuth::client_secret_basic(CLIENT_ID, client_secret),
    )?;
    let oauth2 = OAuth2Layer::new(ClientCredentials::new(endpoint).scope(SCOPE));
    let api = ServiceBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .layer(oauth2.clone())
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    println!(
        "soak: {} requests, {} workers, rate {}, token lifetime {} s, fail rate {}, seed {}, guard {:.0} s",
        options.requests,
        options.concurrency,
        if options.rate > 0.0 {
            format!("{} req/s", options.rate)
        } else {
            "unpaced".to_owned()
        },
        options.lifetime,
        options.fail_rate,
        options.seed,
        options.max_seconds,
    );
    println!("  AS http://{auth_address}/token   RS http://{resource_address}/resource");

    // Start-up, as an application does it: get a first token before serving. Faults can hit
    // this request too; retry those (like a start-up probe), before the run's clock starts.
    const START_ATTEMPTS: u32 = 20;
    for attempt in 1..=START_ATTEMPTS {
        match oauth2.cache().refresh().await {
            Ok(_) => break,
            Err(err) if err.is_transient() && attempt < START_ATTEMPTS => {
                println!("  start-up token request failed ({err}); retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }

    let (rss_start, heap_start) = (rss_bytes(), live_heap());
    let start = Instant::now();
    let run = Arc::new(Run {
        requests: options.requests,
        rate: options.rate,
        start,
        deadline: start + Duration::from_secs_f64(options.max_seconds),
        api: format!("http://{resource_address}/resource").parse()?,
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        succeeded: AtomicU64::new(0),
        failures: Default::default(),
        messages: Mutex::new(BTreeMap::new()),
        cut_by_guard: AtomicBool::new(false),
        rss_warm: AtomicU64::new(0),
        rss_middle: AtomicU64::new(0),
        heap_warm: AtomicU64::new(0),
        heap_middle: AtomicU64::new(0),
        rss_peak: AtomicU64::new(rss_start),
        auth: auth.clone(),
        failed_after: Default::default(),
        faults_with_failures: Default::default(),
        last_blamed: AtomicU64::new(0),
    });
    let token_requests_before = auth.token_requests.load(Relaxed);

    let reporter = {
        let (run, auth, resource) = (run.clone(), auth.clone(), resource.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval_at(start + PROGRESS_EVERY, PROGRESS_EVERY);
            loop {
                every.tick().await;
                println!("{}", progress(&run, &auth, &resource));
            }
        })
    };
    let workers: Vec<_> = (0..options.concurrency)
        .map(|_| tokio::spawn(worker(api.clone(), run.clone())))
        .collect();
    for worker in workers {
        worker.await?;
    }
    let elapsed = start.elapsed();
    reporter.abort();
    let (rss_end, heap_end) = (rss_bytes(), live_heap());
    run.rss_peak.fetch_max(rss_end, Relaxed);
    println!("{} (end)", progress(&run, &auth, &resource));

    // The report.
    let sent = run.done.load(Relaxed);
    let failed = run.failed();
    let expired = resource.expired.load(Relaxed);
    let token_requests = auth.token_requests.load(Relaxed) - token_requests_before;
    let lifetimes = elapsed.as_secs_f64() / options.lifetime as f64;
    let faults: Vec<String> = FAULTS
        .iter()
        .map(|&fault| format!("{fault:?} {}", auth.faults[fault as usize].load(Relaxed)))
        .collect();
    let total_faults: u64 = auth.faults.iter().map(|n| n.load(Relaxed)).sum();
    let (rss_warm, rss_middle) = (run.rss_warm.load(Relaxed), run.rss_middle.load(Relaxed));
    let (heap_warm, heap_middle) = (run.heap_warm.load(Relaxed), run.heap_middle.load(Relaxed));
    println!();
    println!(
        "requests      sent {sent} of {}, succeeded {}, failed {failed}",
        options.requests,
        run.succeeded.load(Relaxed)
    );
    for kind in Failure::ALL {
        let n = run.failures[kind as usize].load(Relaxed);
        if n > 0 {
            println!("  {:<13} {n}", kind.name());
        }
    }
    for ((kind, message), count) in run.messages.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("    {count:>7} x {}: {message}", Failure::ALL[*kind].name());
    }
    println!(
        "resource srv  ok {}, expired tokens {expired}, invalid tokens {}",
        resource.ok.load(Relaxed),
        resource.invalid.load(Relaxed)
    );
    println!(
        "token reqs    {token_requests} during the run ({} in all, {} refused), faults injected {total_faults} ({})",
        auth.token_requests.load(Relaxed),
        auth.refused.load(Relaxed),
        faults.join(", ")
    );
    if failed > 0 {
        // Each failed request is blamed on the last fault injected before it.
        let mut blame: Vec<String> = FAULTS
            .iter()
            .map(|&fault| {
                format!(
                    "{fault:?} {} (after {} of {} such faults)",
                    run.failed_after[fault as usize].load(Relaxed),
                    run.faults_with_failures[fault as usize].load(Relaxed),
                    auth.faults[fault as usize].load(Relaxed),
                )
            })
            .collect();
        blame.push(format!(
            "no fault before {}",
            run.failed_after[FAULTS.len()].load(Relaxed)
        ));
        println!("failed after  {}", blame.join(", "));
    }
    println!(
        "lifetimes     {lifetimes:.1} token lifetimes of {} s, {:.2} token requests per lifetime",
        options.lifetime,
        token_requests as f64 / lifetimes
    );
    println!(
        "duration      {:.1} s, {:.0} req/s",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "RSS           start {}, after warm-up (10 %) {}, middle {}, end {}, peak {} ({})",
        mib(rss_start),
        mib(rss_warm),
        mib(rss_middle),
        mib(rss_end),
        mib(run.rss_peak.load(Relaxed)),
        growth(rss_warm, rss_end),
    );
    println!(
        "live heap     start {}, after warm-up {}, middle {}, end {} ({})",
        mib(heap_start),
        mib(heap_warm),
        mib(heap_middle),
        mib(heap_end),
        growth(heap_warm, heap_end),
    );
    // One row of the table in BENCHMARKS.md ("Soak"), code and command columns left out.
    println!(
        "table row     | {sent} | {failed} | {} / {} / {} | {expired} | {token_requests} ({total_faults}) | {:.2} | {lifetimes:.0} | {:.0} s | {} / {} / {} | {} / {} |",
        run.failures[Failure::Token as usize].load(Relaxed),
        run.failures[Failure::Unauthorized as usize].load(Relaxed),
        run.failures[Failure::Transport as usize].load(Relaxed)
            + run.failures[Failure::Timeout as usize].load(Relaxed)
            + run.failures[Failure::OtherStatus as usize].load(Relaxed),
        token_requests as f64 / lifetimes,
        elapsed.as_secs_f64(),
        mib(rss_warm),
        mib(rss_middle),
        mib(rss_end),
        mib(heap_warm),
        mib(heap_end),
    );

    let cut = run.cut_by_guard.load(Relaxed) || sent < options.requests;
    let met = failed == 0 && expired == 0 && !cut;
    if met {
        println!("GOAL MET: 0 failed requests, 0 expired tokens at the RS");
    } else {
        let mut why = Vec::new();
        if failed > 0 {
            why.push(format!("{failed} failed requests"));
        }
        if expired > 0 {
            why.push(format!("{expired} expired tokens at the RS"));
        }
        if cut {
            why.push(format!("stopped by --max-seconds after {sent} requests"));
        }
        println!("GOAL MISSED: {}", why.join(", "));
    }
    Ok(met)
}
