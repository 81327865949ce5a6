//! What the fuzz targets share: the input format, an in-memory server behind an
//! `HttpClient`, log capture, and the checks every target makes (secrets, escaping, headers).
//!
//! Compiled twice: into each fuzz target (fuzz/fuzz_targets/*.rs) and into the stable replay
//! test (tests/fuzz_corpus.rs), both of which declare it as `mod common` at their root.
//!
//! # Input format
//!
//! An input is text, so that seeds can be written by hand and read in a diff:
//!
//! ```text
//! @refresh @max=64            <- optional first line: options, each starting with '@'
//! 200                         <- a response: its status line (digits; anything else is 200)
//! content-type: application/json
//!                             <- a blank line ends the headers
//! {"access_token":"at-Secret-1","token_type":"Bearer"}
//! ===                         <- a line "===" starts the next response
//! 400
//! ...
//! ```
//!
//! Every byte string decodes to some script: header lines that are not valid HTTP are
//! skipped, a missing blank line means an empty body.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, Once};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{Error, HttpClient, Token};

/// The client of every target.
pub const CLIENT_ID: &str = "fuzz-client";
/// Its secret: must never be shown, whatever the server sends.
pub const CLIENT_SECRET: &str = "cs-Secret-q7Xw9Lp2";
/// The refresh token the refresh-token source starts with.
pub const REFRESH_TOKEN: &str = "rt-Secret-K2m4Vb8n";
/// Server-issued values (access, refresh and ID tokens, device codes) are checked for leaks
/// when they contain this and are at least [`MIN_SECRET_LEN`] long. A short or ordinary value
/// (`"abc"`, `"Bearer"`) cannot be told apart from text the crate prints for other reasons.
pub const SECRET_MARKER: &str = "Secret-";
/// See [`SECRET_MARKER`].
pub const MIN_SECRET_LEN: usize = 12;
/// The token endpoint (never contacted: the HTTP client is in memory).
pub const TOKEN_URL: &str = "https://as.example/token";
/// The device authorization endpoint.
pub const DEVICE_URL: &str = "https://as.example/device";

/// One scripted response.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Scripted {
    /// A response with a JSON body.
    pub fn json(status: u16, body: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Scripted {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    /// The value of `field` if the body is a JSON object with that field as a string.
    pub fn json_string(&self, field: &str) -> Option<String> {
        match serde_json::from_slice::<serde_json::Value>(&self.body).ok()? {
            serde_json::Value::Object(map) => map.get(field)?.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Whether the crate reads the body as JSON first (any content type but form data).
    pub fn read_as_json(&self) -> bool {
        !self
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes().to_ascii_lowercase())
            .is_some_and(|v| v.starts_with(b"application/x-www-form-urlencoded"))
    }

    fn to_response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// A decoded input: options and responses.
#[derive(Clone, Debug)]
pub struct Script {
    pub options: Vec<String>,
    pub responses: Vec<Scripted>,
}

impl Script {
    /// Decodes `data`, keeping at most `max_responses` responses (at least one).
    pub fn parse(data: &[u8], max_responses: usize) -> Script {
        let mut rest = data;
        let mut options = Vec::new();
        if rest.first() == Some(&b'@') {
            let (line, after) = split_line(rest);
            rest = after;
            for word in String::from_utf8_lossy(line).split_whitespace() {
                if let Some(option) = word.strip_prefix('@') {
                    options.push(option.to_owned());
                }
            }
        }
        let mut responses = Vec::new();
        for part in split_parts(rest).into_iter().take(max_responses.max(1)) {
            responses.push(parse_response(part));
        }
        Script { options, responses }
    }

    /// Whether `@name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.options.iter().any(|o| o == name)
    }

    /// The value of `@name=value`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
    }
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Splits at lines that are exactly `===` (the newline before such a line is not part of the
/// response before it).
fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut line = 0;
    loop {
        let end = data[line..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| line + i);
        if matches!(&data[line..end], b"===" | b"===\r") {
            parts.push(&data[start..line.saturating_sub(1).max(start)]);
            start = (end + 1).min(data.len());
        }
        if end >= data.len() {
            break;
        }
        line = end + 1;
    }
    parts.push(&data[start..]);
    parts
}

fn parse_response(part: &[u8]) -> Scripted {
    let (status_line, mut rest) = split_line(part);
    let digits: Vec<u8> = status_line
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit)
        .collect();
    let status = std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse::<u16>().ok())
        .and_then(|d| StatusCode::from_u16(d).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    let mut body = Bytes::new();
    while !rest.is_empty() {
        let (line, after) = split_line(rest);
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            body = Bytes::copy_from_slice(rest);
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    Scripted {
        status,
        headers,
        body,
    }
}

/// A request the in-memory server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub form: Vec<(String, String)>,
    /// The time on the target's clock when it arrived.
    pub at: SystemTime,
}

impl Recorded {
    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An authorization server in memory: answers each request with the next scripted response
/// (or `fallback` once they run out) and records the requests.
#[derive(Clone)]
pub struct Server {
    queue: Arc<Mutex<VecDeque<Scripted>>>,
    fallback: Scripted,
    log: Arc<Mutex<Vec<Recorded>>>,
    clock: ManualClock,
}

impl Server {
    pub fn new(responses: Vec<Scripted>, fallback: Scripted, clock: ManualClock) -> Self {
        Server {
            queue: Arc::new(Mutex::new(responses.into())),
            fallback,
            log: Arc::new(Mutex::new(Vec::new())),
            clock,
        }
    }

    /// An `HttpClient` over this server: `tower::service_fn`, no sockets.
    pub fn http_client(&self) -> HttpClient {
        let server = self.clone();
        HttpClient::new(tower::service_fn(move |request: Request<Full<Bytes>>| {
            let server = server.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                let recorded = Recorded {
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    form: serde_urlencoded::from_bytes(&body).unwrap_or_default(),
                    at: server.clock.now(),
                };
                lock(&server.log).push(recorded);
                let next = lock(&server.queue).pop_front();
                Ok::<_, Infallible>(next.unwrap_or_else(|| server.fallback.clone()).to_response())
            }
        }))
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.log).clone()
    }
}

pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    static LOGS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `future` to completion on this thread's runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

struct ThreadLog;

impl io::Write for ThreadLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        LOGS.with(|logs| logs.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `f` and returns what it logged (at every level, spans included), as text.
///
/// Lines carry no timestamp: it is the one part of a line the crate does not write, and
/// formatting it was a measurable share of each fuzz execution.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .with_writer(|| ThreadLog)
            .finish();
        // Another global subscriber (none in these binaries) would only mean fewer logs.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    LOGS.with(|logs| logs.borrow_mut().clear());
    let value = f();
    let text = LOGS.with(|logs| String::from_utf8_lossy(&logs.borrow_mut().split_off(0)).into_owned());
    (value, text)
}

/// The secrets of one run: the client secret and refresh token it starts with, plus the
/// server-issued ones it meets (see [`SECRET_MARKER`]).
#[derive(Debug)]
pub struct Secrets(Vec<String>);

impl Default for Secrets {
    fn default() -> Self {
        Secrets(vec![CLIENT_SECRET.to_owned()])
    }
}

impl Secrets {
    /// Adds `value` if it can be recognised in text (see [`SECRET_MARKER`]).
    pub fn add(&mut self, value: &str) {
        let fixed = value == CLIENT_SECRET || value == REFRESH_TOKEN;
        let marked = value.len() >= MIN_SECRET_LEN && value.contains(SECRET_MARKER);
        if (fixed || marked) && !self.0.iter().any(|s| s == value) {
            self.0.push(value.to_owned());
        }
    }

    /// Adds the refresh token of `token`: the client holds it and sends it later, so it must
    /// never be printed. Access and ID tokens are checked where the crate prints them (the
    /// token's `Debug`, in `check_token`); server text that happens to hold one, before or
    /// after it was issued, is the server's disclosure, which the crate cannot recognise.
    pub fn add_token(&mut self, token: &Token) {
        if let Some(refresh_token) = token.refresh_token() {
            self.add(refresh_token.expose());
        }
    }

    /// These secrets less the server-issued ones that appear in one of `disclosed` (answers the
    /// server sent before it issued them: the server's own disclosure, which the crate cannot
    /// know was a secret when it logged it). The fixed client secret and refresh token stay.
    pub fn without_disclosed(&self, disclosed: &[&[u8]]) -> Secrets {
        let inside = |secret: &str| {
            disclosed
                .iter()
                .any(|text| text.windows(secret.len()).any(|w| w == secret.as_bytes()))
        };
        Secrets(
            self.0
                .iter()
                .filter(|s| *s == CLIENT_SECRET || *s == REFRESH_TOKEN || !inside(s))
                .cloned()
                .collect(),
        )
    }

    /// `text` (the Debug or Display of `what`) shows none of the secrets, except those that
    /// are inside one of the `shown` values, which `what` shows by design (a scope, a user
    /// code: the server's choice to put a secret there is not a leak by this crate).
    pub fn check(&self, what: &str, text: &str, shown: &[&str]) -> Result<(), String> {
        for secret in &self.0 {
            if text.contains(secret.as_str()) && !shown.iter().any(|v| v.contains(secret.as_str())) {
                return Err(format!("{what} shows the secret {secret:?}: {text:?}"));
            }
        }
        Ok(())
    }
}

/// The checks on an error: typed (one of `allowed`), printed without raw control characters,
/// and without secrets in Display or Debug.
pub fn check_error(err: &Error, allowed: fn(&Error) -> bool, secrets: &Secrets) -> Result<(), String> {
    if !allowed(err) {
        return Err(format!("unexpected kind of error: {err:?}"));
    }
    let display = err.to_string();
    if let Some(c) = display.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the error's Display has the raw control character {c:?}: {display:?}"
        ));
    }
    secrets.check("the error's Display", &display, &[])?;
    secrets.check("the error's Debug", &format!("{err:?}"), &[])
}

/// The checks on a token: it forms a valid `Authorization` header, its access token is
/// `1*VSCHAR` (RFC 6749 Appendix A.12), its type is Bearer, it expires after it was issued,
/// and its Debug shows no secret.
pub fn check_token(token: &Token, secrets: &Secrets) -> Result<(), String> {
    let access_token = token.access_token().expose();
    if let Err(e) = HeaderValue::try_from(format!("Bearer {access_token}")) {
        return Err(format!(
            "the access token {access_token:?} makes no valid header: {e}"
        ));
    }
    if access_token.is_empty() || !access_token.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(format!("the access token {access_token:?} is not 1*VSCHAR"));
    }
    if !token.token_type().eq_ignore_ascii_case("bearer") {
        return Err(format!("a token of type {:?} was returned", token.token_type()));
    }
    if let (Some(issued), Some(expires)) = (token.issued_at(), token.expires_at()) {
        if expires < issued {
            return Err(format!(
                "the token expires ({expires:?}) before it was issued ({issued:?})"
            ));
        }
    }
    let mut shown = vec![token.token_type()];
    shown.extend(token.scope());
    shown.extend(token.extra().keys().map(String::as_str));
    let debug = format!("{token:?}");
    let mut own = Secrets::default();
    own.add(access_token);
    for other in [token.refresh_token(), token.id_token()].into_iter().flatten() {
        own.add(other.expose());
    }
    own.check("the token's Debug", &debug, &shown)?;
    secrets.check("the token's Debug", &debug, &shown)
}

/// The checks on captured logs: no secret, no raw control character within a line.
pub fn check_logs(logs: &str, secrets: &Secrets) -> Result<(), String> {
    secrets.check("a log line", logs, &[])?;
    for line in logs.lines() {
        if let Some(c) = line.chars().find(|c| c.is_control()) {
            return Err(format!(
                "a log line has the raw control character {c:?}: {line:?}"
            ));
        }
    }
    Ok(())
}

/// The errors a server's answer can cause (no transport, timeout, configuration or source
/// error: the transport is in memory and always delivers).
pub fn is_answer_error(err: &Error) -> bool {
    match err {
        Error::OAuth2 { .. }
        | Error::HttpStatus { .. }
        | Error::MalformedResponse { .. }
        | Error::BodyTooLarge { .. }
        | Error::UnsupportedTokenType(_) => true,
        // A refresh token refused for good: the server's answer is the cause.
        Error::GrantLost(cause) => matches!(**cause, Error::OAuth2 { .. }),
        _ => false,
    }
}

/// The values `request` carried that the crate cuts out of whatever the server sends back
/// (the client secret, the Basic credentials, the secret form fields), each in the spellings
/// it may be echoed in: as sent, form-urlencoded with `+` or `%20` for a space, upper- or
/// lowercase hex.
pub fn sent_secrets(request: &Recorded) -> Vec<String> {
    const SECRET_FIELDS: [&str; 6] = [
        "client_secret",
        "refresh_token",
        "device_code",
        "code",
        "code_verifier",
        "password",
    ];
    let mut values = vec![CLIENT_SECRET.to_owned()];
    if let Some(basic) = request
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        values.push(basic.to_owned());
    }
    for (name, value) in &request.form {
        if SECRET_FIELDS.contains(&name.as_str()) {
            values.push(value.clone());
        }
    }
    let mut spellings = Vec::new();
    for value in values.into_iter().filter(|v| !v.is_empty()) {
        let form = form_encode(&value);
        let percent = form.replace('+', "%20");
        spellings.extend([
            lowercase_hex(&form),
            lowercase_hex(&percent),
            form,
            percent,
            value,
        ]);
    }
    spellings
}

/// `%2F` → `%2f`.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::new();
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            hex_left = if c == '%' { 2 } else { 0 };
            out.push(c);
        }
    }
    out
}

/// `application/x-www-form-urlencoded`, as the `url` crate writes it.
fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'*' | b'-' | b'.' | b'_' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The error carries the status of the response it came from, and the server's code
/// whenever the body, read as JSON, is an object with a string `error`, unless the crate must
/// rewrite that code (see below). `request` is the request the response answered; `held`, other
/// secrets the client held then (refresh tokens it rotated out), which the crate redacts too.
pub fn check_answer(
    err: &Error,
    response: &Scripted,
    request: &Recorded,
    held: &[String],
) -> Result<(), String> {
    if let Some(status) = err.status() {
        if status != response.status {
            return Err(format!(
                "HTTP {} gave an error with status {status}",
                response.status
            ));
        }
    }
    if response.read_as_json() {
        // Codes the crate must rewrite (control characters escaped, an echoed secret
        // redacted, a long text cut) are checked by the Display and log checks instead. The
        // secrets the request carried are redacted whatever they look like, marker or not;
        // but a registered code is the server's word, not an echo, and must come back as it
        // is, whatever secret happens to be spelled inside it.
        let mut sent = sent_secrets(request);
        sent.extend(held.iter().cloned());
        // Tokens the same answer carries beside its error are redacted from its text too.
        for field in ["access_token", "refresh_token", "id_token", "device_code"] {
            sent.extend(response.json_string(field).filter(|value| !value.is_empty()));
        }
        let plain = |code: &str| {
            REGISTERED_CODES.contains(&code)
                || (code.len() <= 200
                    && code.chars().all(|c| (' '..='~').contains(&c))
                    && !code.contains(SECRET_MARKER)
                    && !code.contains(&CLIENT_SECRET[..8])
                    && !sent.iter().any(|secret| code.contains(secret.as_str())))
        };
        if let Some(code) = response.json_string("error").filter(|code| plain(code)) {
            let got = err.code().map(|c| c.as_str());
            if got != Some(code.as_str()) {
                let registered = REGISTERED_CODES.contains(&code.as_str());
                if registered && got.is_some_and(|got| got.contains("[redacted]")) {
                    return Err(format!(
                        "the registered code {code:?} came back redacted as {got:?}: a secret \
                         the request carried is spelled inside it, and the code is no longer \
                         recognised ({err:?})"
                    ));
                }
                return Err(format!("an error response with `error: {code:?}` gave {err:?}"));
            }
        }
    }
    Ok(())
}

/// The error codes of RFC 6749 §5.2, RFC 8628 §3.5 and RFC 8707 that the crate knows.
pub const REGISTERED_CODES: [&str; 13] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "invalid_target",
];

/// Whether `failure` matches one of the `|`-separated texts of the environment variable
/// `FUZZ_IGNORE` (read once), so that fuzzing can look past known failures. Used by the fuzz
/// targets only: the replay test ignores nothing.
#[allow(dead_code)]
pub fn ignored(failure: &str) -> bool {
    static IGNORE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    IGNORE
        .get_or_init(|| {
            std::env::var("FUZZ_IGNORE")
                .unwrap_or_default()
                .split('|')
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .iter()
        .any(|text| failure.contains(text.as_str()))
}
