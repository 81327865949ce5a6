#![allow(dead_code)]
//! An in-process OAuth 2.0 authorization server plus a bearer-protected
//! resource server, for integration tests and examples.
//!
//! Endpoints (all on `http://127.0.0.1:PORT`):
//!
//! * `POST /token` — RFC 6749 token endpoint (`client_credentials`,
//!   `refresh_token`, and the RFC 8628 device-code grant).
//! * `POST /device_authorization` — RFC 8628 device authorization endpoint.
//! * `GET /authorize` — RFC 6749 §4.1 authorization endpoint: approves every request at once
//!   as the demo user (or denies it, see [`AuthServer::set_deny_authorization`]) and
//!   redirects to the `redirect_uri` with `code`, `state` and `iss` (RFC 9207). PKCE S256 is
//!   required (RFC 7636); the code is redeemed once at `/token` with
//!   `grant_type=authorization_code`. [`AuthServer::browse`] plays the user's browser.
//! * `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration` —
//!   the server's metadata (RFC 8414); the issuer is the base URL, `http://127.0.0.1:PORT`.
//! * `/resource` (any method) — answers `200 ok` for a currently valid bearer
//!   access token issued by this server, `401` otherwise.
//!
//! Every connection is served with hyper-util's `auto` builder, so both
//! HTTP/1.1 and HTTP/2 with prior knowledge (h2c) work.
//!
//! Behaviour can be scripted (`push_token_response`, `set_device_script`, …)
//! and every request is recorded for inspection (`requests`,
//! `resource_tokens`, counters).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Largest request body the server reads (anything bigger is answered `400`).
const MAX_BODY: usize = 1024 * 1024;

/// The grant type of RFC 8628 (device authorization grant).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long an authorization code of `/authorize` can be redeemed (RFC 6749 §4.1.2: short).
const AUTHORIZATION_CODE_LIFETIME: Duration = Duration::from_secs(60);

type Resp = Response<Full<Bytes>>;
type StampFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// How a registered client authenticates at the token and device
/// authorization endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: credentials in an `Authorization: Basic` header,
    /// each half form-urlencoded first (RFC 6749 §2.3.1).
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
    /// Public client: `client_id` in the form body and no secret at all.
    None,
}

/// One scripted reply to a poll of a device code at the token endpoint.
#[derive(Clone, Debug)]
pub enum DevicePoll {
    /// `400 {"error":"authorization_pending"}`.
    Pending,
    /// `400 {"error":"slow_down"}`.
    SlowDown,
    /// `400 {"error":"access_denied"}`; the device code is dead afterwards
    /// (further polls answer `expired_token`).
    Denied,
    /// `400 {"error":"expired_token"}`.
    Expired,
    /// Success: access token + refresh token; the device code is consumed.
    Approve,
}

/// A canned HTTP response, served verbatim (after `delay`) instead of the
/// default logic.
#[derive(Clone, Debug)]
pub struct Scripted {
    /// HTTP status code (an invalid one is served as `500`).
    pub status: u16,
    /// Response headers, in order (invalid names or values are skipped).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Scripted {
    /// A JSON response (`Content-Type: application/json`).
    pub fn json(status: u16, body: Value) -> Self {
        Self::raw(status, "application/json", body.to_string())
    }

    /// A response with the given content type and body.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Scripted {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// Waits `d` before answering.
    pub fn with_delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn to_response(&self) -> Resp {
        let mut resp = Response::new(Full::new(Bytes::from(self.body.clone())));
        *resp.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                resp.headers_mut().append(n, v);
            }
        }
        resp
    }
}

/// A request received by `/token` or `/device_authorization`.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method, e.g. `"POST"`.
    pub method: String,
    /// Request path (without query).
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body as received (lossy UTF-8).
    pub body: String,
    /// Body parsed as `application/x-www-form-urlencoded` (empty if not parseable).
    pub form: Vec<(String, String)>,
    /// Arrival time, from the stamp function (see [`AuthServer::set_stamp`]).
    pub at: SystemTime,
}

impl Recorded {
    /// The first form parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every form parameter called `name`, in order.
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first header called `name` (case-insensitive), if it is visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Client {
    secret: Option<String>,
    method: ClientAuthMethod,
}

struct Config {
    clients: HashMap<String, Client>,
    expires_in: Option<u64>,
    rotate_refresh_tokens: bool,
    token_delay: Duration,
    device_interval: Option<u64>,
    device_expires_in: u64,
    device_script: Vec<DevicePoll>,
    /// Refresh-token reuse detection (RFC 9700 §4.14.2): a rotated-away refresh token that
    /// comes back revokes its whole grant.
    reuse_detection: bool,
    /// While set, every `/token` request is answered with this (an outage).
    token_outage: Option<Scripted>,
    /// The next this many `/token` requests are acted on (tokens issued, rotated), then the
    /// connection is dropped without an answer.
    drop_after_acting: usize,
    /// `/authorize` redirects with `error=access_denied` instead of a code.
    deny_authorization: bool,
}

struct DeviceCode {
    client_id: Option<String>,
    script: Vec<DevicePoll>,
    cursor: usize,
    dead: bool,
}

/// An authorization code issued by `/authorize`, waiting for its one redemption.
struct AuthorizationCode {
    client_id: String,
    redirect_uri: String,
    /// The S256 `code_challenge`.
    code_challenge: String,
    scope: Option<String>,
    /// Its grant: the tokens it is redeemed for (revoked if the code comes back).
    grant: u64,
    issued: std::time::Instant,
}

#[derive(Default)]
struct Tokens {
    access: HashSet<String>,
    /// Valid refresh token => owning client (None: issued while no client was registered).
    refresh: HashMap<String, Option<String>>,
    devices: HashMap<String, DeviceCode>,
    /// Refresh token (valid or rotated away) => its grant.
    grant_of: HashMap<String, u64>,
    /// Grant => the access tokens issued with it.
    grant_access: HashMap<u64, Vec<String>>,
    /// Authorization codes not redeemed yet.
    codes: HashMap<String, AuthorizationCode>,
    /// Redeemed authorization codes => their grant.
    used_codes: HashMap<String, u64>,
}

#[derive(Default)]
struct Scripts {
    token: VecDeque<Scripted>,
    device: VecDeque<Scripted>,
}

#[derive(Default)]
struct Log {
    requests: Vec<Recorded>,
    resource_tokens: Vec<Option<String>>,
    /// The query parameters of each `/authorize` request.
    authorizations: Vec<Vec<(String, String)>>,
}

struct State {
    base: String,
    config: Mutex<Config>,
    tokens: Mutex<Tokens>,
    scripts: Mutex<Scripts>,
    log: Mutex<Log>,
    stamp: Mutex<StampFn>,
    token_requests: AtomicUsize,
    /// `true` while `/token` answers are held back (see `hold_token_responses`).
    token_gate: tokio::sync::watch::Sender<bool>,
    device_requests: AtomicUsize,
    resource_requests: AtomicUsize,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not take
/// the server down with it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static COUNTER: AtomicU64 = AtomicU64::new(1);
static RNG: AtomicU64 = AtomicU64::new(0);

fn next_n() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// xorshift64, seeded from the clock on first use.
fn random_u32() -> u32 {
    let mut cur = RNG.load(Ordering::Relaxed);
    loop {
        let mut x = if cur == 0 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x1234_5678);
            (nanos ^ 0x9E37_79B9_7F4A_7C15) | 1
        } else {
            cur
        };
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match RNG.compare_exchange_weak(cur, x, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return (x >> 32) as u32,
            Err(actual) => cur = actual,
        }
    }
}

fn new_access_token() -> String {
    format!("at-{}-{:08x}", next_n(), random_u32())
}

fn new_refresh_token() -> String {
    format!("rt-{}-{:08x}", next_n(), random_u32())
}

fn new_authorization_code() -> String {
    format!("ac-{}-{:08x}{:08x}", next_n(), random_u32(), random_u32())
}

/// The S256 code challenge of a PKCE code verifier (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A `302 Found` to `location`.
fn redirect(location: &str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(http::header::LOCATION, value);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space,
/// `%XX` a byte; a malformed escape is kept literally).
fn form_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(status: StatusCode, body: &Value) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    resp
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

fn text_response(status: StatusCode, body: &'static str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// Splits `Authorization: <scheme> <rest>` with a case-insensitive scheme.
fn auth_param<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<Option<&'a str>> {
    let value = headers.get(AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(None);
    };
    let value = value.trim();
    let (s, rest) = value.split_once(' ').unwrap_or((value, ""));
    if s.eq_ignore_ascii_case(scheme) {
        Some(Some(rest.trim()))
    } else {
        None
    }
}

/// Result of client authentication: the authenticated client id (None when no
/// client is registered and none was named).
type Authed = Result<Option<String>, Box<Resp>>;

fn invalid_client(description: &str, header_attempt: bool) -> Box<Resp> {
    let mut resp = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if header_attempt {
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"test\""),
        );
    }
    Box::new(resp)
}

impl State {
    fn stamp(&self) -> SystemTime {
        let f = lock(&self.stamp).clone();
        f()
    }

    /// Authenticates the client of a `/token` or `/device_authorization` request.
    fn authenticate(&self, rec: &Recorded) -> Authed {
        // Credentials from the Authorization: Basic header, if any.
        let header_creds = match auth_param(&rec.headers, "basic") {
            None => None,
            Some(None) => return Err(invalid_client("malformed Authorization header", true)),
            Some(Some(b64)) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64));
                let Ok(decoded) = decoded else {
                    return Err(invalid_client("Basic credentials are not base64", true));
                };
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                let Some((id, secret)) = decoded.split_once(':') else {
                    return Err(invalid_client("Basic credentials lack a ':'", true));
                };
                Some((form_decode(id), form_decode(secret)))
            }
        };
        let body_id = rec.param("client_id");
        let body_secret = rec.param("client_secret");

        let config = lock(&self.config);
        if config.clients.is_empty() {
            // Accept anybody.
            return Ok(match header_creds {
                Some((id, _)) => Some(id),
                None => body_id.map(str::to_owned),
            });
        }

        if let Some((id, secret)) = header_creds {
            if body_secret.is_some() {
                return Err(invalid_client(
                    "client used more than one authentication method",
                    true,
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(invalid_client(
                    "client_id in body differs from Authorization header",
                    true,
                ));
            }
            let Some(client) = config.clients.get(&id) else {
                return Err(invalid_client("unknown client", true));
            };
            if client.method != ClientAuthMethod::Basic {
                return Err(invalid_client(
                    "client is not registered for client_secret_basic",
                    true,
                ));
            }
            if client.secret.as_deref().unwrap_or("") != secret {
                return Err(invalid_client("wrong client secret", true));
            }
            return Ok(Some(id));
        }

        let Some(id) = body_id else {
            return Err(invalid_client("no client authentication", false));
        };
        let Some(client) = config.clients.get(id) else {
            return Err(invalid_client("unknown client", false));
        };
        match client.method {
            ClientAuthMethod::Basic => Err(invalid_client(
                "client must use client_secret_basic (credentials sent in body)",
                false,
            )),
            ClientAuthMethod::Post => {
                if body_secret.unwrap_or("") == client.secret.as_deref().unwrap_or("")
                    && (body_secret.is_some() || client.secret.is_none())
                {
                    Ok(Some(id.to_owned()))
                } else {
                    Err(invalid_client("wrong or missing client secret", false))
                }
            }
            ClientAuthMethod::None => {
                if body_secret.is_some() {
                    Err(invalid_client(
                        "public client must not send a client secret",
                        false,
                    ))
                } else {
                    Ok(Some(id.to_owned()))
                }
            }
        }
    }

    /// Default logic of the token endpoint (after counting, recording,
    /// scripting and delay).
    fn token(&self, rec: &Recorded) -> Resp {
        let client_id = match self.authenticate(rec) {
            Ok(c) => c,
            Err(resp) => return *resp,
        };
        let Some(grant_type) = rec.param("grant_type") else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "missing grant_type");
        };
        let (expires_in, rotate, any_client) = {
            let c = lock(&self.config);
            (c.expires_in, c.rotate_refresh_tokens, c.clients.is_empty())
        };
        let mut body = serde_json::Map::new();
        body.insert("token_type".into(), json!("Bearer"));
        if let Some(e) = expires_in {
            body.insert("expires_in".into(), json!(e));
        }
        match grant_type {
            "client_credentials" => {
                let at = new_access_token();
                lock(&self.tokens).access.insert(at.clone());
                body.insert("access_token".into(), json!(at));
                if let Some(scope) = rec.param("scope") {
                    body.insert("scope".into(), json!(scope));
                }
            }
            "refresh_token" => {
                let Some(rt) = rec.param("refresh_token") else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "missing refresh_token",
                    );
                };
                let mut tokens = lock(&self.tokens);
                let ok = match tokens.refresh.get(rt) {
                    None => false,
                    Some(owner) => any_client || *owner == client_id,
                };
                let reuse_detection = lock(&self.config).reuse_detection;
                if !ok && reuse_detection && !tokens.refresh.contains_key(rt) {
                    if let Some(&grant) = tokens.grant_of.get(rt) {
                        // A rotated-away refresh token came back: revoke the whole grant.
                        let tokens = &mut *tokens;
                        let grant_of = &tokens.grant_of;
                        tokens.refresh.retain(|t, _| grant_of.get(t) != Some(&grant));
                        for at in tokens.grant_access.remove(&grant).unwrap_or_default() {
                            tokens.access.remove(&at);
                        }
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "refresh token reuse detected; the grant is revoked",
                        );
                    }
                }
                if !ok {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token is invalid, revoked, or issued to another client",
                    );
                }
                let grant = *tokens.grant_of.entry(rt.to_owned()).or_insert_with(next_n);
                if rotate {
                    let owner = tokens.refresh.remove(rt).flatten();
                    let new_rt = new_refresh_token();
                    tokens.refresh.insert(new_rt.clone(), owner);
                    tokens.grant_of.insert(new_rt.clone(), grant);
                    body.insert("refresh_token".into(), json!(new_rt));
                }
                let at = new_access_token();
                tokens.access.insert(at.clone());
                tokens.grant_access.entry(grant).or_default().push(at.clone());
                body.insert("access_token".into(), json!(at));
            }
            DEVICE_CODE_GRANT => {
                let Some(code) = rec.param("device_code") else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "missing device_code");
                };
                let mut tokens = lock(&self.tokens);
                let Some(dev) = tokens.devices.get_mut(code) else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown device_code");
                };
                if !any_client && dev.client_id != client_id {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "device_code was issued to another client",
                    );
                }
                if dev.dead {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "expired_token",
                        "device_code is no longer valid",
                    );
                }
                let step = dev.script.get(dev.cursor).cloned();
                dev.cursor += 1;
                let fail = |error: &str, desc: &str| Some(oauth_error(StatusCode::BAD_REQUEST, error, desc));
                let failure = match step {
                    Some(DevicePoll::Pending) => {
                        fail("authorization_pending", "the user has not yet approved")
                    }
                    Some(DevicePoll::SlowDown) => fail("slow_down", "polling too fast"),
                    Some(DevicePoll::Denied) => {
                        dev.dead = true;
                        fail("access_denied", "the user denied the request")
                    }
                    Some(DevicePoll::Expired) => fail("expired_token", "device_code expired"),
                    Some(DevicePoll::Approve) | None => None,
                };
                if let Some(resp) = failure {
                    return resp;
                }
                let owner = dev.client_id.clone();
                tokens.devices.remove(code);
                let at = new_access_token();
                let rt = new_refresh_token();
                tokens.access.insert(at.clone());
                tokens.refresh.insert(rt.clone(), owner);
                body.insert("access_token".into(), json!(at));
                body.insert("refresh_token".into(), json!(rt));
            }
            "authorization_code" => {
                let Some(code) = rec.param("code") else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "missing code");
                };
                let mut tokens = lock(&self.tokens);
                let tokens = &mut *tokens;
                if let Some(grant) = tokens.used_codes.get(code).copied() {
                    // RFC 6749 §4.1.2: a code used twice revokes what it was redeemed for.
                    let grant_of = &tokens.grant_of;
                    tokens.refresh.retain(|t, _| grant_of.get(t) != Some(&grant));
                    for at in tokens.grant_access.remove(&grant).unwrap_or_default() {
                        tokens.access.remove(&at);
                    }
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "authorization code already used; the tokens issued for it are revoked",
                    );
                }
                let Some(issued) = tokens.codes.get(code) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown authorization code",
                    );
                };
                if issued.issued.elapsed() > AUTHORIZATION_CODE_LIFETIME {
                    tokens.codes.remove(code);
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "authorization code expired",
                    );
                }
                let failure = if client_id.as_deref() != Some(issued.client_id.as_str()) {
                    Some("authorization code was issued to another client")
                } else if rec.param("redirect_uri") != Some(issued.redirect_uri.as_str()) {
                    Some("redirect_uri differs from the authorization request's")
                } else {
                    match rec.param("code_verifier") {
                        None => Some("missing code_verifier (PKCE is required)"),
                        Some(verifier) if s256(verifier) != issued.code_challenge => {
                            Some("code_verifier does not match the code_challenge")
                        }
                        Some(_) => None,
                    }
                };
                if let Some(description) = failure {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
                }
                let Some(issued) = tokens.codes.remove(code) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown authorization code",
                    );
                };
                tokens.used_codes.insert(code.to_owned(), issued.grant);
                let at = new_access_token();
                let rt = new_refresh_token();
                tokens.access.insert(at.clone());
                tokens
                    .grant_access
                    .entry(issued.grant)
                    .or_default()
                    .push(at.clone());
                tokens.refresh.insert(rt.clone(), Some(issued.client_id));
                tokens.grant_of.insert(rt.clone(), issued.grant);
                body.insert("access_token".into(), json!(at));
                body.insert("refresh_token".into(), json!(rt));
                if let Some(scope) = issued.scope {
                    body.insert("scope".into(), json!(scope));
                }
            }
            other => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("unsupported grant_type {other:?}"),
                );
            }
        }
        json_response(StatusCode::OK, &Value::Object(body))
    }

    /// Default logic of the device authorization endpoint.
    fn device_authorization(&self, rec: &Recorded) -> Resp {
        let client_id = match self.authenticate(rec) {
            Ok(Some(c)) => c,
            Ok(None) => return *invalid_client("client_id is required", false),
            Err(resp) => return *resp,
        };
        let (interval, expires_in, script) = {
            let c = lock(&self.config);
            (c.device_interval, c.device_expires_in, c.device_script.clone())
        };
        let n = next_n();
        let device_code = format!("dc-{n}");
        let user_code = format!("UC-{n}");
        lock(&self.tokens).devices.insert(
            device_code.clone(),
            DeviceCode {
                client_id: Some(client_id),
                script,
                cursor: 0,
                dead: false,
            },
        );
        let mut body = json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": format!("{}/device", self.base),
            "verification_uri_complete": format!("{}/device?user_code={user_code}", self.base),
            "expires_in": expires_in,
        });
        if let Some(i) = interval {
            body["interval"] = json!(i);
        }
        json_response(StatusCode::OK, &body)
    }

    /// The authorization endpoint: checks the request, then approves it at once as the demo
    /// user (or denies it) and redirects back to the client. Requests that cannot be
    /// redirected (no or bad `redirect_uri`, unknown client) get a `400` page instead (RFC 6749
    /// §4.1.2.1).
    fn authorize(&self, method: &Method, query: Option<&str>) -> Resp {
        let params =
            serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or("")).unwrap_or_default();
        lock(&self.log).authorizations.push(params.clone());
        if method != Method::GET {
            return text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let Some(client_id) = param("client_id") else {
            return text_response(StatusCode::BAD_REQUEST, "missing client_id");
        };
        let deny = {
            let config = lock(&self.config);
            if !config.clients.is_empty() && !config.clients.contains_key(client_id) {
                return text_response(StatusCode::BAD_REQUEST, "unknown client");
            }
            config.deny_authorization
        };
        let redirect_uri = match param("redirect_uri").map(url::Url::parse) {
            Some(Ok(uri)) if matches!(uri.scheme(), "http" | "https") && uri.fragment().is_none() => uri,
            _ => return text_response(StatusCode::BAD_REQUEST, "missing or invalid redirect_uri"),
        };
        let mut location = redirect_uri.clone();
        let error = if param("response_type") != Some("code") {
            Some((
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        } else if param("code_challenge").is_none_or(str::is_empty) {
            Some(("invalid_request", "PKCE is required: code_challenge is missing"))
        } else if param("code_challenge_method") != Some("S256") {
            Some(("invalid_request", "code_challenge_method must be S256"))
        } else if deny {
            Some(("access_denied", "the user denied the request"))
        } else {
            None
        };
        {
            let mut pairs = location.query_pairs_mut();
            match error {
                Some((error, description)) => {
                    pairs.append_pair("error", error);
                    pairs.append_pair("error_description", description);
                }
                None => {
                    let code = new_authorization_code();
                    lock(&self.tokens).codes.insert(
                        code.clone(),
                        AuthorizationCode {
                            client_id: client_id.to_owned(),
                            redirect_uri: param("redirect_uri").unwrap_or_default().to_owned(),
                            code_challenge: param("code_challenge").unwrap_or_default().to_owned(),
                            scope: param("scope").map(str::to_owned),
                            grant: next_n(),
                            issued: std::time::Instant::now(),
                        },
                    );
                    pairs.append_pair("code", &code);
                }
            }
            if let Some(state) = param("state") {
                pairs.append_pair("state", state);
            }
            pairs.append_pair("iss", &self.base);
        }
        redirect(location.as_str())
    }

    /// The server's metadata (RFC 8414 §2; also served as the OpenID configuration).
    fn metadata(&self) -> Resp {
        let base = &self.base;
        json_response(
            StatusCode::OK,
            &json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "device_authorization_endpoint": format!("{base}/device_authorization"),
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT
                ],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic", "client_secret_post", "none"
                ],
                "authorization_response_iss_parameter_supported": true,
            }),
        )
    }

    fn resource(&self, headers: &HeaderMap) -> Resp {
        let token = match auth_param(headers, "bearer") {
            Some(Some(t)) if !t.is_empty() => Some(t.to_owned()),
            _ => None,
        };
        let valid = token
            .as_ref()
            .is_some_and(|t| lock(&self.tokens).access.contains(t));
        lock(&self.log).resource_tokens.push(token);
        if valid {
            text_response(StatusCode::OK, "ok")
        } else {
            let mut resp = text_response(StatusCode::UNAUTHORIZED, "unauthorized");
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            resp
        }
    }
}

/// A plain-HTTP GET, as a browser would send it: the status, the headers and the body (at
/// most [`MAX_BODY`] bytes, lossy UTF-8). Bounded by a 30 s timeout.
async fn http_get(
    url: &str,
) -> Result<(StatusCode, HeaderMap, String), Box<dyn std::error::Error + Send + Sync>> {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let request = Request::get(url).body(http_body_util::Empty::new())?;
    let exchange = async {
        let response = client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY).collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((parts, body))
    };
    let (parts, body) = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| "the GET had no answer within 30 s")??;
    Ok((
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

async fn sleep_nonzero(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// The test asked for the connection to be dropped without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    #[derive(PartialEq)]
    enum Route {
        Token,
        Device,
        Resource,
    }
    match req.uri().path() {
        "/authorize" => return Ok(state.authorize(req.method(), req.uri().query())),
        "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => {
            return Ok(state.metadata());
        }
        _ => {}
    }
    let route = match req.uri().path() {
        "/token" => Route::Token,
        "/device_authorization" => Route::Device,
        "/resource" => Route::Resource,
        _ => return Ok(text_response(StatusCode::NOT_FOUND, "not found")),
    };
    if route == Route::Resource {
        state.resource_requests.fetch_add(1, Ordering::SeqCst);
        let (parts, body) = req.into_parts();
        // Drain (and ignore) any request body.
        let _ = Limited::new(body, MAX_BODY).collect().await;
        return Ok(state.resource(&parts.headers));
    }
    if req.method() != Method::POST {
        let mut resp = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(resp);
    }
    let counter = if route == Route::Token {
        &state.token_requests
    } else {
        &state.device_requests
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let at = state.stamp();
    let (parts, body) = req.into_parts();
    let (bytes, body_ok) = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => (c.to_bytes(), true),
        Err(_) => (Bytes::new(), false),
    };
    let rec = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        form: serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes).unwrap_or_default(),
        at,
    };
    lock(&state.log).requests.push(rec.clone());
    if route == Route::Token {
        // Counted and logged already; the answer waits while the test holds the gate.
        let mut gate = state.token_gate.subscribe();
        let _ = gate.wait_for(|held| !*held).await;
    }

    let scripted = {
        let mut s = lock(&state.scripts);
        if route == Route::Token {
            s.token.pop_front()
        } else {
            s.device.pop_front()
        }
    };
    let scripted = match scripted {
        Some(s) => Some(s),
        None if route == Route::Token => lock(&state.config).token_outage.clone(),
        None => None,
    };
    if let Some(s) = scripted {
        sleep_nonzero(s.delay).await;
        return Ok(s.to_response());
    }
    if !body_ok {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "could not read request body",
        ));
    }
    if route == Route::Token {
        let delay = lock(&state.config).token_delay;
        sleep_nonzero(delay).await;
        let response = state.token(&rec);
        let mut config = lock(&state.config);
        if config.drop_after_acting > 0 {
            config.drop_after_acting -= 1;
            return Err(DropConnection);
        }
        Ok(response)
    } else {
        Ok(state.device_authorization(&rec))
    }
}

/// Handle to a running test authorization + resource server. Cheap to clone;
/// the server runs until its tokio runtime shuts down.
#[derive(Clone)]
pub struct AuthServer {
    state: Arc<State>,
    addr: SocketAddr,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// Binds `127.0.0.1:0` and spawns the accept loop on the current tokio
    /// runtime. Returns once listening.
    ///
    /// # Panics
    /// If no loopback port can be bound or there is no current tokio runtime.
    pub async fn start() -> AuthServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(State {
            base: format!("http://{addr}"),
            config: Mutex::new(Config {
                clients: HashMap::new(),
                expires_in: Some(3600),
                rotate_refresh_tokens: true,
                token_delay: Duration::ZERO,
                device_interval: Some(5),
                device_expires_in: 600,
                device_script: Vec::new(),
                reuse_detection: false,
                token_outage: None,
                drop_after_acting: 0,
                deny_authorization: false,
            }),
            tokens: Mutex::new(Tokens::default()),
            scripts: Mutex::new(Scripts::default()),
            log: Mutex::new(Log::default()),
            stamp: Mutex::new(Arc::new(SystemTime::now)),
            token_requests: AtomicUsize::new(0),
            token_gate: tokio::sync::watch::Sender::new(false),
            device_requests: AtomicUsize::new(0),
            resource_requests: AtomicUsize::new(0),
        });

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http2()
            .max_concurrent_streams(100_000)
            .max_pending_accept_reset_streams(100_000);
        let accept_state = state.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(_) => {
                        // E.g. EMFILE under heavy load: back off, keep serving.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = accept_state.clone();
                let builder = builder.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { handle(state, req).await }
                    });
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        AuthServer { state, addr }
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.state.base)
    }

    /// The token endpoint, `url("/token")`.
    pub fn token_url(&self) -> String {
        self.url("/token")
    }

    /// The device authorization endpoint, `url("/device_authorization")`.
    pub fn device_authorization_url(&self) -> String {
        self.url("/device_authorization")
    }

    /// The protected resource, `url("/resource")`.
    pub fn resource_url(&self) -> String {
        self.url("/resource")
    }

    /// The issuer (RFC 8414): the base URL, `http://127.0.0.1:PORT`, as the metadata and the
    /// `iss` of authorization responses (RFC 9207) name it.
    pub fn issuer(&self) -> String {
        self.state.base.clone()
    }

    /// The authorization endpoint, `url("/authorize")`.
    pub fn authorization_url(&self) -> String {
        self.url("/authorize")
    }

    /// Whether `/authorize` denies every request (redirects with `error=access_denied`)
    /// instead of approving it. Default `false`.
    pub fn set_deny_authorization(&self, deny: bool) {
        lock(&self.state.config).deny_authorization = deny;
    }

    /// The query parameters of every `/authorize` request, in arrival order.
    pub fn authorization_requests(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.state.log).authorizations.clone()
    }

    /// Plays the user's browser at the authorization endpoint: GETs `authorization_url` and
    /// returns the `Location` it redirects to (the client's redirect URI with the code, or
    /// with the error). Fails when the server does not redirect.
    pub async fn authorize(
        &self,
        authorization_url: &str,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let (status, headers, body) = http_get(authorization_url).await?;
        if status != StatusCode::FOUND {
            return Err(format!("the authorization endpoint answered {status}: {body}").into());
        }
        let location = headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("the authorization endpoint's redirect has no Location")?;
        Ok(location.to_owned())
    }

    /// Plays the user's browser for a whole login: [`AuthServer::authorize`], then GETs the
    /// redirect (the client's callback) and returns that page's status and text.
    pub async fn browse(
        &self,
        authorization_url: &str,
    ) -> Result<(StatusCode, String), Box<dyn std::error::Error + Send + Sync>> {
        let location = self.authorize(authorization_url).await?;
        let (status, _, body) = http_get(&location).await?;
        Ok((status, body))
    }

    /// Registers (or replaces) a client. While no client is registered, any
    /// client is accepted.
    pub fn add_client(&self, client_id: &str, secret: Option<&str>, method: ClientAuthMethod) {
        lock(&self.state.config).clients.insert(
            client_id.to_owned(),
            Client {
                secret: secret.map(str::to_owned),
                method,
            },
        );
    }

    /// `expires_in` of issued tokens; `None` omits it. Default `Some(3600)`.
    pub fn set_expires_in(&self, v: Option<u64>) {
        lock(&self.state.config).expires_in = v;
    }

    /// Whether the refresh-token grant rotates refresh tokens (default `true`).
    /// When off, the used token stays valid and the response has no
    /// `refresh_token`.
    pub fn set_rotate_refresh_tokens(&self, on: bool) {
        lock(&self.state.config).rotate_refresh_tokens = on;
    }

    /// Refresh-token reuse detection (default off): when a refresh token that was rotated away
    /// is presented again, the whole grant (its refresh tokens and every access token issued
    /// with it) is revoked and the answer is `invalid_grant`, as RFC 9700 §4.14.2 describes
    /// and oidc-provider does.
    pub fn set_reuse_detection(&self, on: bool) {
        lock(&self.state.config).reuse_detection = on;
    }

    /// An outage: while `Some`, every `/token` request (after the scripted ones) is answered
    /// with `response`; `None` ends it.
    pub fn set_token_outage(&self, response: Option<Scripted>) {
        lock(&self.state.config).token_outage = response;
    }

    /// The next `n` `/token` requests are acted on (tokens issued, refresh tokens rotated),
    /// then their connection is dropped without an answer: a response lost on the way.
    pub fn drop_after_acting(&self, n: usize) {
        lock(&self.state.config).drop_after_acting = n;
    }

    /// Delay before the default logic answers `/token` (default zero).
    pub fn set_token_delay(&self, d: Duration) {
        lock(&self.state.config).token_delay = d;
    }

    /// Holds back every `/token` answer (the request is counted and logged at once) until
    /// [`AuthServer::release_token_responses`]: a refresh that is in flight for as long as the
    /// test needs, without timing assumptions.
    pub fn hold_token_responses(&self) {
        self.state.token_gate.send_replace(true);
    }

    /// Lets held and later `/token` answers go.
    pub fn release_token_responses(&self) {
        self.state.token_gate.send_replace(false);
    }

    /// `interval` of device authorization responses; `None` omits it.
    /// Default `Some(5)`.
    pub fn set_device_interval(&self, v: Option<u64>) {
        lock(&self.state.config).device_interval = v;
    }

    /// `expires_in` of device authorization responses (default 600).
    pub fn set_device_expires_in(&self, secs: u64) {
        lock(&self.state.config).device_expires_in = secs;
    }

    /// Replies for successive polls of each device code issued from now on
    /// (each code gets its own copy); once exhausted, polls succeed.
    pub fn set_device_script(&self, script: Vec<DevicePoll>) {
        lock(&self.state.config).device_script = script;
    }

    /// Clock used to timestamp recorded requests (default `SystemTime::now`).
    pub fn set_stamp(&self, f: impl Fn() -> SystemTime + Send + Sync + 'static) {
        *lock(&self.state.stamp) = Arc::new(f);
    }

    /// Queues a canned reply for `/token`, served (FIFO) before the default logic.
    pub fn push_token_response(&self, r: Scripted) {
        lock(&self.state.scripts).token.push_back(r);
    }

    /// Queues a canned reply for `/device_authorization`, served (FIFO)
    /// before the default logic.
    pub fn push_device_authorization_response(&self, r: Scripted) {
        lock(&self.state.scripts).device.push_back(r);
    }

    /// Issues a valid refresh token owned by `client_id`.
    pub fn issue_refresh_token(&self, client_id: &str) -> String {
        let rt = new_refresh_token();
        let mut tokens = lock(&self.state.tokens);
        tokens.refresh.insert(rt.clone(), Some(client_id.to_owned()));
        tokens.grant_of.insert(rt.clone(), next_n());
        rt
    }

    /// Revokes an access token: `/resource` answers `401` for it from now on.
    pub fn revoke_access_token(&self, token: &str) {
        lock(&self.state.tokens).access.remove(token);
    }

    /// Revokes every access token issued so far.
    pub fn revoke_all_access_tokens(&self) {
        lock(&self.state.tokens).access.clear();
    }

    /// Whether `rt` is a currently valid refresh token.
    pub fn is_refresh_token_valid(&self, rt: &str) -> bool {
        lock(&self.state.tokens).refresh.contains_key(rt)
    }

    /// Number of `POST /token` requests received (including failed and
    /// scripted ones).
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Number of `POST /device_authorization` requests received.
    pub fn device_authorization_requests(&self) -> usize {
        self.state.device_requests.load(Ordering::SeqCst)
    }

    /// Number of `/resource` requests received.
    pub fn resource_requests(&self) -> usize {
        self.state.resource_requests.load(Ordering::SeqCst)
    }

    /// Every request to `/token` and `/device_authorization`, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.log).requests.clone()
    }

    /// The bearer token each `/resource` request carried (`None` if it had no
    /// `Authorization: Bearer` header), in arrival order.
    pub fn resource_tokens(&self) -> Vec<Option<String>> {
        lock(&self.state.log).resource_tokens.clone()
    }

    /// The tokens issued so far (access tokens, refresh tokens with their owners and grants),
    /// as JSON for [`AuthServer::import_tokens`] in a later process: what lets a demo server
    /// that is started anew still honour the tokens an earlier one issued. The JSON holds live
    /// tokens: keep it as private as the tokens.
    pub fn export_tokens(&self) -> Value {
        let tokens = lock(&self.state.tokens);
        let refresh: serde_json::Map<String, Value> = tokens
            .refresh
            .iter()
            .map(|(rt, owner)| (rt.clone(), json!(owner)))
            .collect();
        let grant_of: serde_json::Map<String, Value> = tokens
            .grant_of
            .iter()
            .map(|(rt, grant)| (rt.clone(), json!(grant)))
            .collect();
        json!({
            "access": tokens.access.iter().collect::<Vec<_>>(),
            "refresh": refresh,
            "grant_of": grant_of,
        })
    }

    /// Adds the tokens of an [`AuthServer::export_tokens`] to this server's; fields it does
    /// not understand are skipped.
    pub fn import_tokens(&self, exported: &Value) {
        let mut tokens = lock(&self.state.tokens);
        if let Some(access) = exported["access"].as_array() {
            tokens
                .access
                .extend(access.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if let Some(refresh) = exported["refresh"].as_object() {
            for (rt, owner) in refresh {
                tokens
                    .refresh
                    .insert(rt.clone(), owner.as_str().map(str::to_owned));
            }
        }
        if let Some(grant_of) = exported["grant_of"].as_object() {
            for (rt, grant) in grant_of {
                if let Some(grant) = grant.as_u64() {
                    // Later grants of this process must not reuse the number.
                    COUNTER.fetch_max(grant + 1, Ordering::Relaxed);
                    tokens.grant_of.insert(rt.clone(), grant);
                }
            }
        }
    }

    /// Zeroes the three counters and clears `requests`, `resource_tokens` and
    /// `authorization_requests`.
    pub fn reset_counters(&self) {
        let mut log = lock(&self.state.log);
        log.authorizations.clear();
        self.state.token_requests.store(0, Ordering::SeqCst);
        self.state.device_requests.store(0, Ordering::SeqCst);
        self.state.resource_requests.store(0, Ordering::SeqCst);
        log.requests.clear();
        log.resource_tokens.clear();
    }
}
