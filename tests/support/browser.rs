//! A test "browser" for the authorization code flow: it starts at an authorization URL, follows
//! redirects (relative `Location` included), keeps cookies per host (name=value with their
//! `Path`, dropped when expired), fills and submits the HTML forms it is shown (oidc-provider's
//! development login and consent pages: hidden inputs kept, `login` and the password filled),
//! and stops at the first redirect to the client's `redirect_uri`, which it does not fetch: that
//! URL is the callback the client receives. Included by the interop tests with
//! `#[path = "support/browser.rs"] mod browser;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use url::Url;

/// Pages and redirects a browser goes through before it gives up.
pub(crate) const MAX_STEPS: usize = 20;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const BODY_LIMIT: usize = 1 << 20;

/// What the user does on the interaction pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Signs in and consents.
    Approve,
    /// Follows the "Cancel" link of the first page shown (the login page, or the consent page
    /// when a session exists).
    Cancel,
}

/// Why a browser did not reach the redirect URI.
#[derive(Debug)]
pub(crate) enum BrowserError {
    /// `MAX_STEPS` requests without reaching the redirect URI; `trace` lists them.
    TooManySteps { trace: Vec<String> },
    /// The request could not be sent or its answer read.
    Transport { url: String, error: String },
    /// No answer within the request timeout.
    Timeout { url: String },
    /// A status the browser cannot go on from (neither a redirect nor a page with a form).
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    /// A redirect without a usable `Location`.
    BadRedirect { url: String, location: Option<String> },
    /// A 200 page with no form (or, with `Choice::Cancel`, no cancel link) to go on with.
    NothingToSubmit { url: String, body: String },
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrowserError::TooManySteps { trace } => {
                write!(
                    f,
                    "no redirect to the redirect URI after {MAX_STEPS} steps: {trace:#?}"
                )
            }
            BrowserError::Transport { url, error } => write!(f, "{url}: {error}"),
            BrowserError::Timeout { url } => write!(f, "{url}: no answer within {REQUEST_TIMEOUT:?}"),
            BrowserError::Status { url, status, body } => write!(f, "{url}: {status}: {body}"),
            BrowserError::BadRedirect { url, location } => {
                write!(f, "{url}: redirect with an unusable Location {location:?}")
            }
            BrowserError::NothingToSubmit { url, body } => write!(f, "{url}: nothing to submit in {body}"),
        }
    }
}

/// One cookie of the jar.
#[derive(Clone, Debug)]
struct Cookie {
    value: String,
    path: String,
}

/// Cookies per host (`host:port`), by name and path.
#[derive(Default, Debug)]
struct CookieJar(HashMap<String, HashMap<(String, String), Cookie>>);

fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// RFC 6265 §5.1.4: the default path is the request path up to its last `/`.
fn default_path(url: &Url) -> String {
    let path = url.path();
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

/// RFC 6265 §5.1.4 path-match.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

impl CookieJar {
    /// Stores one `Set-Cookie` value received from `url` (ignores what it cannot read).
    fn store(&mut self, url: &Url, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        if name.is_empty() {
            return;
        }
        let mut path = default_path(url);
        let mut expired = false;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let (key, val) = (key.trim().to_ascii_lowercase(), val.trim());
            match key.as_str() {
                "path" if val.starts_with('/') => path = val.to_owned(),
                "max-age" => expired |= val.parse::<i64>().is_ok_and(|age| age <= 0),
                "expires" => {
                    expired |= httpdate::parse_http_date(val).is_ok_and(|at| at <= SystemTime::now());
                }
                _ => {}
            }
        }
        let cookies = self.0.entry(host_key(url)).or_default();
        let key = (name, path.clone());
        if expired {
            cookies.remove(&key);
        } else {
            cookies.insert(key, Cookie { value, path });
        }
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies (longest paths first).
    fn header(&self, url: &Url) -> Option<String> {
        let cookies = self.0.get(&host_key(url))?;
        let mut matching: Vec<(&String, &Cookie)> = cookies
            .iter()
            .filter(|(_, cookie)| path_matches(url.path(), &cookie.path))
            .map(|((name, _), cookie)| (name, cookie))
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.sort_by(|a, b| b.1.path.len().cmp(&a.1.path.len()).then(a.0.cmp(b.0)));
        let pairs: Vec<String> = matching
            .iter()
            .map(|(name, cookie)| format!("{name}={}", cookie.value))
            .collect();
        Some(pairs.join("; "))
    }

    fn names(&self, url: &Url) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .get(&host_key(url))
            .map(|cookies| cookies.keys().map(|(name, _)| name.clone()).collect())
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names
    }
}

/// An HTML form, as the browser will submit it.
#[derive(Clone, Debug)]
pub(crate) struct Form {
    pub(crate) action: Option<String>,
    pub(crate) method: String,
    /// `(name, type, value)` of each `<input>` with a name, in document order.
    pub(crate) inputs: Vec<(String, String, String)>,
}

impl Form {
    /// The value of the (first) input `name`.
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.inputs
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| v.as_str())
    }
}

/// Decodes the character references an HTML escaper writes (`&amp;`, `&#39;`, `&#x2F;`...).
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let number = entity.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of a start tag (the text after its name, up to its `>`), names lowercased,
/// values decoded; the index just past the `>`.
fn attributes(tag: &str) -> (Vec<(String, String)>, usize) {
    let bytes = tag.as_bytes();
    let mut attrs = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (attrs, i);
        }
        if bytes[i] == b'>' {
            return (attrs, i + 1);
        }
        let start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b'>' | b'/') && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let begin = i + 1;
                i = begin;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                value = decode_entities(&tag[begin..i]);
                i = (i + 1).min(bytes.len());
            } else {
                let begin = i;
                while i < bytes.len() && bytes[i] != b'>' && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = decode_entities(&tag[begin..i]);
            }
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
}

fn attribute<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Byte offsets of each `<tag` start (case-insensitive, followed by a space, `/` or `>`).
fn tag_starts(html: &str, tag: &str) -> Vec<usize> {
    let lower = html.to_ascii_lowercase();
    let needle = format!("<{tag}");
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let at = from + at;
        let after = at + needle.len();
        if lower[after..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
        {
            starts.push(at);
        }
        from = after;
    }
    starts
}

/// The forms of a page.
pub(crate) fn parse_forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut forms = Vec::new();
    for start in tag_starts(html, "form") {
        let (attrs, len) = attributes(&html[start + "<form".len()..]);
        let body_start = start + "<form".len() + len;
        let body_end = lower[body_start..]
            .find("</form")
            .map_or(html.len(), |end| body_start + end);
        let body = &html[body_start..body_end];
        let inputs = tag_starts(body, "input")
            .into_iter()
            .filter_map(|at| {
                let (input, _) = attributes(&body[at + "<input".len()..]);
                let name = attribute(&input, "name")?.to_owned();
                let kind = attribute(&input, "type").unwrap_or("text").to_ascii_lowercase();
                let value = attribute(&input, "value").unwrap_or("").to_owned();
                Some((name, kind, value))
            })
            .collect();
        forms.push(Form {
            action: attribute(&attrs, "action").map(str::to_owned),
            method: attribute(&attrs, "method").unwrap_or("get").to_ascii_uppercase(),
            inputs,
        });
    }
    forms
}

/// The `href` of the first link whose text contains `text` (case-insensitive).
pub(crate) fn find_link(html: &str, text: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let text = text.to_ascii_lowercase();
    tag_starts(html, "a").into_iter().find_map(|start| {
        let (attrs, len) = attributes(&html[start + "<a".len()..]);
        let inner_start = start + "<a".len() + len;
        let inner_end = lower[inner_start..].find("</a")? + inner_start;
        lower[inner_start..inner_end]
            .contains(&text)
            .then(|| attribute(&attrs, "href").map(str::to_owned))
            .flatten()
    })
}

/// A browser with its own cookie jar. See the module docs.
pub(crate) struct Browser {
    http: Client<HttpConnector, Full<Bytes>>,
    jar: CookieJar,
    redirect_uri: Url,
    login: String,
    password: String,
    choice: Choice,
    submitted: Vec<String>,
    trace: Vec<String>,
}

impl Browser {
    /// A browser that stops at `redirect_uri` and signs in as `test-user`.
    pub(crate) fn new(redirect_uri: &str) -> Browser {
        Browser {
            http: Client::builder(TokioExecutor::new()).build_http(),
            jar: CookieJar::default(),
            redirect_uri: Url::parse(redirect_uri)
                .unwrap_or_else(|e| panic!("redirect URI {redirect_uri:?}: {e}")),
            login: "test-user".to_owned(),
            password: "any password".to_owned(),
            choice: Choice::Approve,
            submitted: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// The login and password typed into the login form.
    pub(crate) fn credentials(mut self, login: &str, password: &str) -> Browser {
        self.login = login.to_owned();
        self.password = password.to_owned();
        self
    }

    /// What the user does on the next interaction pages.
    pub(crate) fn choose(&mut self, choice: Choice) -> &mut Browser {
        self.choice = choice;
        self
    }

    /// What each form the browser submitted was (its hidden `prompt` input, as oidc-provider's
    /// development pages name them: `login`, `consent`; else its action), and each link
    /// followed (`link:<text>`), since it was made.
    pub(crate) fn submitted(&self) -> &[String] {
        &self.submitted
    }

    /// The names of the cookies the browser holds for `url`'s host.
    pub(crate) fn cookie_names(&self, url: &str) -> Vec<String> {
        Url::parse(url)
            .map(|url| self.jar.names(&url))
            .unwrap_or_default()
    }

    fn is_redirect_uri(&self, url: &Url) -> bool {
        url.scheme() == self.redirect_uri.scheme()
            && url.host_str() == self.redirect_uri.host_str()
            && url.port_or_known_default() == self.redirect_uri.port_or_known_default()
            && url.path() == self.redirect_uri.path()
    }

    /// Goes from `start` to the redirect URI; returns the full URL of the redirect (the
    /// callback), or why it did not get there. Panics on nothing: see [`Browser::authorize`].
    pub(crate) async fn try_authorize(&mut self, start: &str) -> Result<String, BrowserError> {
        let mut url = Url::parse(start).map_err(|e| BrowserError::BadRedirect {
            url: start.to_owned(),
            location: Some(format!("{start} ({e})")),
        })?;
        let mut method = Method::GET;
        let mut form_body: Option<String> = None;
        self.trace.clear();
        for _ in 0..MAX_STEPS {
            if self.is_redirect_uri(&url) {
                return Ok(url.into());
            }
            self.trace.push(format!("{method} {}", url.path()));
            let sent = form_body.take();
            let (status, location, content_type, body) =
                self.send(method.clone(), &url, sent.clone()).await?;
            if status.is_redirection() {
                let location = location.ok_or_else(|| BrowserError::BadRedirect {
                    url: url.to_string(),
                    location: None,
                })?;
                let next = url.join(&location).map_err(|_| BrowserError::BadRedirect {
                    url: url.to_string(),
                    location: Some(location.clone()),
                })?;
                // 307/308 keep the method and body; 301/302/303 turn into a GET.
                if matches!(
                    status,
                    StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                ) {
                    form_body = sent;
                } else {
                    method = Method::GET;
                }
                url = next;
                continue;
            }
            let is_html = content_type.is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
            if status != StatusCode::OK || !is_html {
                return Err(BrowserError::Status {
                    url: url.to_string(),
                    status,
                    body,
                });
            }
            (method, url, form_body) = self.next_action(&url, &body)?;
        }
        Err(BrowserError::TooManySteps {
            trace: std::mem::take(&mut self.trace),
        })
    }

    /// [`Browser::try_authorize`], panicking with the reason when the redirect URI is not reached.
    pub(crate) async fn authorize(&mut self, start: &str) -> String {
        match self.try_authorize(start).await {
            Ok(callback) => callback,
            Err(e) => panic!("the browser did not reach the redirect URI: {e}"),
        }
    }

    /// What to do on an HTML page: follow the cancel link, or fill and submit its form.
    fn next_action(&mut self, url: &Url, html: &str) -> Result<(Method, Url, Option<String>), BrowserError> {
        let nothing = || BrowserError::NothingToSubmit {
            url: url.to_string(),
            body: html.to_owned(),
        };
        if self.choice == Choice::Cancel {
            let href = find_link(html, "cancel").ok_or_else(nothing)?;
            let next = url.join(&href).map_err(|_| nothing())?;
            self.submitted.push("link:cancel".to_owned());
            return Ok((Method::GET, next, None));
        }
        let form = parse_forms(html).into_iter().next().ok_or_else(nothing)?;
        let action = match form.action.as_deref() {
            Some(action) if !action.is_empty() => url.join(action).map_err(|_| nothing())?,
            _ => url.clone(),
        };
        let mut fields = url::form_urlencoded::Serializer::new(String::new());
        for (name, kind, value) in &form.inputs {
            let value = match (name.as_str(), kind.as_str()) {
                (_, "submit" | "button" | "image" | "reset") => continue,
                (_, "password") => self.password.as_str(),
                ("login" | "username" | "email", _) => self.login.as_str(),
                _ => value.as_str(),
            };
            fields.append_pair(name, value);
        }
        let fields = fields.finish();
        self.submitted.push(
            form.value("prompt")
                .map_or_else(|| action.path().to_owned(), str::to_owned),
        );
        if form.method == "POST" {
            Ok((Method::POST, action, Some(fields)))
        } else {
            let mut action = action;
            action.set_query(Some(&fields));
            Ok((Method::GET, action, None))
        }
    }

    /// Sends one request with the jar's cookies; stores the answer's cookies. Returns the
    /// status, `Location`, `Content-Type` and body (lossy UTF-8).
    async fn send(
        &mut self,
        method: Method,
        url: &Url,
        form_body: Option<String>,
    ) -> Result<(StatusCode, Option<String>, Option<String>, String), BrowserError> {
        let transport = |error: String| BrowserError::Transport {
            url: url.to_string(),
            error,
        };
        let mut request = Request::builder().method(method).uri(url.as_str());
        if let Some(cookies) = self.jar.header(url) {
            request = request.header(COOKIE, cookies);
        }
        if form_body.is_some() {
            request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(form_body.unwrap_or_default())))
            .map_err(|e| transport(e.to_string()))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| BrowserError::Timeout { url: url.to_string() })?
            .map_err(|e| transport(e.to_string()))?;
        let (parts, body) = response.into_parts();
        for value in parts.headers.get_all(SET_COOKIE) {
            if let Ok(value) = value.to_str() {
                self.jar.store(url, value);
            }
        }
        let text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (location, content_type) = (text(LOCATION), text(CONTENT_TYPE));
        let body = tokio::time::timeout(REQUEST_TIMEOUT, Limited::new(body, BODY_LIMIT).collect())
            .await
            .map_err(|_| BrowserError::Timeout { url: url.to_string() })?
            .map_err(|e| transport(e.to_string()))?
            .to_bytes();
        Ok((
            parts.status,
            location,
            content_type,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }
}
