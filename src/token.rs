//! [`Token`], and the parsing of token responses (RFC 6749 §5.1) and error responses (§5.2),
//! with the deviations real servers are known for.
//!
//! What is accepted beyond the letter of RFC 6749:
//! - `expires_in` as a JSON number or as a string holding a number (`"3600"`);
//! - `token_type` in any case (`bearer`, `Bearer`, `BEARER`), and a missing `token_type` read
//!   as `Bearer`; any other token type is [`Error::UnsupportedTokenType`] (but for `N_A`
//!   from a [`TokenExchange`](crate::TokenExchange) that asked for a token other than an
//!   access token: RFC 8693 §2.2.1);
//! - a response body in `application/x-www-form-urlencoded` (GitHub's default) as well as JSON;
//! - an `error` field in a response with HTTP 200 is an error, never a token.
//!
//! What is refused although servers send it:
//! - an `access_token` with a character outside `%x20-7E` (RFC 6749 Appendix A.12: control
//!   characters, DEL, non-ASCII), which could never be sent in an `Authorization` header, is
//!   [`Error::MalformedResponse`] when the response is read (the message never shows the value).
//!
//! Server text that ends up in errors (`error`, `error_description`, `error_uri`, an unknown
//! `token_type`) is made safe to print when the response is read, so that nothing downstream
//! (`Display`, `Debug`, log fields) can print it raw: any secret the request carried (client
//! secret, refresh token, device code, authorization code, PKCE verifier, password,
//! assertions, token-exchange tokens), if the server echoes it, becomes `[redacted]`, also in
//! its form-urlencoded spellings; control characters (newlines, terminal escape sequences,
//! DEL) and invisible or direction-changing format characters are escaped as `\n`, `\r`,
//! `\t` or `\u{..}`; and the text is cut to 300 characters, ending with `…`.
//!
//! `Retry-After` on an error response is read into [`Error::retry_after`].
//!
//! A response without `expires_in` gives a token that never expires, unless a default lifetime
//! was set with [`TokenEndpointBuilder::default_lifetime`](crate::TokenEndpointBuilder::default_lifetime).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::error::{parse_retry_after, sanitize_server_text, Error, ErrorCode, ServerError};
use crate::secret::Secret;
use crate::transport::ReadResponse;

/// An access token with what came with it.
///
/// `Debug` never shows the access token, refresh token or ID token, nor the values of
/// [`extra`](Token::extra) fields. The three tokens are [`Secret`]s: a clone of a `Token` shares
/// them (no copy of their bytes), and they are wiped from memory when the last clone is dropped.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_oauth2::Token;
///
/// let now = SystemTime::now();
/// let token = Token::bearer("abc").with_expires_at(now + Duration::from_secs(60));
/// assert_eq!(token.access_token().expose(), "abc");
/// assert!(!token.is_expired_at(now));
/// assert!(token.is_expired_at(now + Duration::from_secs(60)));
/// assert!(!format!("{token:?}").contains("abc"));
/// ```
#[derive(Clone)]
pub struct Token {
    access_token: Secret,
    token_type: String,
    issued_at: Option<SystemTime>,
    expires_at: Option<SystemTime>,
    refresh_token: Option<Secret>,
    scope: Option<String>,
    id_token: Option<Secret>,
    extra: Map<String, Value>,
}

impl Token {
    /// A Bearer token with no expiry, refresh token or scope; add them with the `with_`
    /// methods. Useful for [`TokenSource`](crate::TokenSource)s of your own.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, Token};
    ///
    /// let token = Token::bearer("abc");
    /// assert_eq!(token.token_type(), "Bearer");
    /// assert_eq!(token.expires_at(), None); // never expires
    /// let source = source_fn(|| async { Ok(Token::bearer("from-a-file")) });
    /// # let _ = source;
    /// ```
    pub fn bearer(access_token: impl Into<Secret>) -> Self {
        Token {
            access_token: access_token.into(),
            token_type: "Bearer".to_owned(),
            issued_at: None,
            expires_at: None,
            refresh_token: None,
            scope: None,
            id_token: None,
            extra: Map::new(),
        }
    }

    /// Sets when the token expires.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_oauth2::Token;
    ///
    /// let at = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    /// assert_eq!(Token::bearer("abc").with_expires_at(at).expires_at(), Some(at));
    /// ```
    pub fn with_expires_at(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Sets when the token was issued (a token read back from a store keeps its lifetime).
    pub(crate) fn with_issued_at(mut self, issued_at: SystemTime) -> Self {
        self.issued_at = Some(issued_at);
        self
    }

    /// Sets the refresh token.
    ///
    /// ```
    /// use tower_oauth2::Token;
    ///
    /// let token = Token::bearer("abc").with_refresh_token("rt");
    /// assert_eq!(token.refresh_token().map(|rt| rt.expose()), Some("rt"));
    /// ```
    pub fn with_refresh_token(mut self, refresh_token: impl Into<Secret>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// Sets the granted scope.
    ///
    /// ```
    /// use tower_oauth2::Token;
    ///
    /// assert_eq!(Token::bearer("abc").with_scope("read").scope(), Some("read"));
    /// ```
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets the OpenID Connect ID token the token response carried.
    ///
    /// ```
    /// use tower_oauth2::Token;
    ///
    /// let token = Token::bearer("abc").with_id_token("eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    /// assert_eq!(token.id_token().map(|t| t.expose()), Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
    /// ```
    pub fn with_id_token(mut self, id_token: impl Into<Secret>) -> Self {
        self.id_token = Some(id_token.into());
        self
    }

    /// The access token.
    ///
    /// ```
    /// use tower_oauth2::Token;
    ///
    /// let token = Token::bearer("abc");
    /// let header = format!("Bearer {}", token.access_token().expose());
    /// assert_eq!(header, "Bearer abc");
    /// ```
    pub fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// The token type as the server sent it (always some spelling of `Bearer`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"bearer"}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","token_type":"bearer"}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// assert_eq!(token.token_type(), "bearer");
    /// # Ok(()) }
    /// ```
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the token request was sent (`None` for tokens made with [`Token::bearer`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","expires_in":60}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","expires_in":60}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// assert!(token.issued_at().is_some());
    /// assert!(tower_oauth2::Token::bearer("abc").issued_at().is_none());
    /// # Ok(()) }
    /// ```
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.issued_at
    }

    /// When the token expires: `expires_in` counted from the moment the request was sent, so
    /// network delay errs on the safe side. `None` means it does not expire.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","expires_in":60}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","expires_in":60}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// let issued_at = token.issued_at().unwrap();
    /// assert_eq!(token.expires_at(), Some(issued_at + std::time::Duration::from_secs(60)));
    /// # Ok(()) }
    /// ```
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the token has expired at `now`.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth2::Token;
    ///
    /// let now = SystemTime::now();
    /// let token = Token::bearer("abc").with_expires_at(now + Duration::from_secs(60));
    /// assert!(!token.is_expired_at(now));
    /// assert!(token.is_expired_at(now + Duration::from_secs(60)));
    /// assert!(!Token::bearer("forever").is_expired_at(now));
    /// ```
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The lifetime the server gave the token (`expires_at - issued_at`), if known.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","expires_in":3600}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","expires_in":3600}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// assert_eq!(token.lifetime(), Some(std::time::Duration::from_secs(3600)));
    /// # Ok(()) }
    /// ```
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_at?.duration_since(self.issued_at?).ok()
    }

    /// The refresh token, if one was issued.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","refresh_token":"rt-1"}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","refresh_token":"rt-1"}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// if let Some(refresh_token) = token.refresh_token() {
    ///     // store it (never log it): the next run can start from it
    ///     assert_eq!(refresh_token.expose(), "rt-1");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// The granted scope, if the server said.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","scope":"read"}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","scope":"read"}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// assert_eq!(token.scope(), Some("read"));
    /// # Ok(()) }
    /// ```
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The OpenID Connect ID token, if one was issued.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","id_token":"eyJ.x.y"}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","id_token":"eyJ.x.y"}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// assert_eq!(token.id_token().map(|id| id.expose()), Some("eyJ.x.y"));
    /// # Ok(()) }
    /// ```
    pub fn id_token(&self) -> Option<&Secret> {
        self.id_token.as_ref()
    }

    /// Every other field of the token response, such as `issued_token_type` or
    /// `refresh_expires_in`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","refresh_expires_in":1800}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// // The server answers {"access_token":"abc","refresh_expires_in":1800}
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// assert_eq!(token.extra()["refresh_expires_in"], 1800);
    /// # Ok(()) }
    /// ```
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// The `issued_token_type` of a token exchange response (RFC 8693 §2.2.1): the type of
    /// token the server issued, a URI such as `urn:ietf:params:oauth:token-type:access_token`
    /// (see [`TokenTypeUri`](crate::TokenTypeUri)). `None` when the response had none (every
    /// grant but token exchange) or it was not a string.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"Bearer","issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}"#,
    /// #     ))))
    /// # });
    /// # let endpoint = tower_oauth2::TokenEndpoint::builder(
    /// #     "https://auth.example.com/token",
    /// #     tower_oauth2::ClientAuth::none("cli"),
    /// # )
    /// # .http_client(tower_oauth2::HttpClient::new(server))
    /// # .build()?;
    /// use tower_oauth2::{SecurityToken, TokenExchange, TokenTypeUri};
    ///
    /// // The server answers {"access_token":"abc","token_type":"Bearer",
    /// //                     "issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("the-token-we-hold"));
    /// let token = source.fetch().await?;
    /// assert_eq!(token.issued_token_type(), Some(TokenTypeUri::JWT.as_str()));
    /// assert_eq!(tower_oauth2::Token::bearer("abc").issued_token_type(), None);
    /// # Ok(()) }
    /// ```
    pub fn issued_token_type(&self) -> Option<&str> {
        self.extra.get("issued_token_type").and_then(Value::as_str)
    }

    /// Keeps the refresh token of `previous` when this token has none (a refresh response may
    /// omit it, meaning the old one stays valid: RFC 6749 §6).
    pub(crate) fn inherit_refresh_token(&mut self, previous: Option<&Secret>) {
        if self.refresh_token.is_none() {
            self.refresh_token = previous.cloned();
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("scope", &self.scope)
            .field("id_token", &self.id_token)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A response body read as a map of fields, JSON or form-encoded.
pub(crate) fn response_fields(response: &ReadResponse) -> Result<Map<String, Value>, Error> {
    let content_type = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let malformed = |reason: &str| Error::MalformedResponse {
        status: response.status,
        reason: reason.to_owned(),
    };
    if !is_form {
        match serde_json::from_slice::<Value>(&response.body) {
            Ok(Value::Object(map)) => return Ok(map),
            Ok(_) => return Err(malformed("the body is JSON but not an object")),
            // A body labelled JSON that does not parse is malformed; anything else may still
            // be form data sent with the wrong label.
            Err(_) if content_type.contains("json") => return Err(malformed("the body is not valid JSON")),
            Err(_) => {}
        }
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&response.body)
        .map_err(|_| malformed("the body is neither a JSON object nor form data"))?;
    if pairs.is_empty() || pairs.iter().all(|(_, v)| v.is_empty()) {
        return Err(malformed("the body is neither a JSON object nor form data"));
    }
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// Turns an answer of the authorization server into an error if it is one: an OAuth 2.0 error
/// object (whatever the status), or a non-2xx status. Returns the fields otherwise.
pub(crate) fn check_response(response: &ReadResponse) -> Result<Map<String, Value>, Error> {
    let retry_after = || parse_retry_after(&response.headers, response.received_at);
    let fields = match response_fields(response) {
        Ok(fields) => fields,
        Err(_) if !response.status.is_success() => {
            return Err(Error::HttpStatus {
                status: response.status,
                retry_after: retry_after(),
            })
        }
        Err(e) => return Err(e),
    };
    if let Some(Value::String(code)) = fields.get("error") {
        // Tokens the same answer carries beside its error are secrets too: cut them out of the
        // error's text as well.
        let mut redactions = response.redactions.clone();
        for name in ["access_token", "refresh_token", "id_token", "device_code"] {
            if let Some(Value::String(value)) = fields.get(name) {
                redactions.add(value);
            }
        }
        let clean = |text: &str| sanitize_server_text(&redactions.apply(text));
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(clean);
        return Err(Error::OAuth2 {
            status: response.status,
            error: ServerError {
                // A code the crate knows is a protocol word, kept as it is (redacting a short
                // secret that happens to be inside it would turn `expired_token` into an
                // unknown code); any other code is server text like the rest.
                code: match ErrorCode::from(code.as_str()) {
                    ErrorCode::Other(_) => ErrorCode::from(clean(code).as_str()),
                    known => known,
                },
                description: text("error_description"),
                uri: text("error_uri"),
            },
            retry_after: retry_after(),
        });
    }
    if !response.status.is_success() {
        return Err(Error::HttpStatus {
            status: response.status,
            retry_after: retry_after(),
        });
    }
    Ok(fields)
}

/// The error of a response with a non-2xx status: the OAuth 2.0 error object it carries, or
/// its status (with its `Retry-After`).
pub(crate) fn status_error(response: &ReadResponse) -> Error {
    check_response(response).err().unwrap_or(Error::HttpStatus {
        status: response.status,
        retry_after: parse_retry_after(&response.headers, response.received_at),
    })
}

/// A body that must be a JSON object; `what` names it in the error ("the discovery document").
pub(crate) fn json_object(
    body: &[u8],
    status: http::StatusCode,
    what: &str,
) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(Error::MalformedResponse {
            status,
            reason: format!("{what} is not a JSON object"),
        }),
    }
}

/// Server-supplied text made safe to print: the request's secrets cut out, control characters
/// escaped, the length capped.
pub(crate) fn server_text(response: &ReadResponse, text: &str) -> String {
    sanitize_server_text(&response.redactions.apply(text))
}

/// Reads a duration in seconds sent as a number or as a numeric string.
pub(crate) fn seconds_field(
    fields: &Map<String, Value>,
    name: &str,
    status: http::StatusCode,
) -> Result<Option<Duration>, Error> {
    let seconds = match fields.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) if (0.0..1e12).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(Error::MalformedResponse {
            status,
            reason: format!("`{name}` is not a non-negative number of seconds"),
        }),
    }
}

/// Reads an optional string field; any other type is malformed.
pub(crate) fn string_field(
    fields: &mut Map<String, Value>,
    name: &str,
    status: http::StatusCode,
) -> Result<Option<String>, Error> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::MalformedResponse {
            status,
            reason: format!("`{name}` is not a string"),
        }),
    }
}

/// The `token_type` of a token exchange response whose token is not an access token
/// (RFC 8693 §2.2.1).
pub(crate) const NOT_APPLICABLE: &str = "N_A";

/// Parses a token endpoint response (RFC 6749 §5.1 / §5.2); `sent_at` is when the request
/// was sent, `default_lifetime` applies when the server sent no `expires_in`. Also accepts the
/// `token_type` `N_A` when `not_applicable_ok` (RFC 8693 §2.2.1: a token exchange that issued
/// something other than an access token, an ID token or a SAML assertion, that the user asked
/// for), then with an `issued_token_type`.
pub(crate) fn parse_issued_token(
    response: &ReadResponse,
    sent_at: SystemTime,
    default_lifetime: Option<Duration>,
    not_applicable_ok: bool,
) -> Result<Token, Error> {
    let status = response.status;
    let mut fields = check_response(response)?;
    let access_token = string_field(&mut fields, "access_token", status)?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::MalformedResponse {
            status,
            reason: "the response has no `access_token`".to_owned(),
        })?;
    if !access_token.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        // Never echo the value: it is (meant to be) a secret.
        return Err(Error::MalformedResponse {
            status,
            reason: "the `access_token` has characters outside %x20-7E (RFC 6749 Appendix A.12), \
                     so it cannot be sent in an Authorization header"
                .to_owned(),
        });
    }
    let token_type = string_field(&mut fields, "token_type", status)?.unwrap_or_else(|| "Bearer".to_owned());
    let not_applicable = not_applicable_ok && token_type.eq_ignore_ascii_case(NOT_APPLICABLE);
    if !token_type.eq_ignore_ascii_case("bearer") && !not_applicable {
        return Err(Error::UnsupportedTokenType(server_text(response, &token_type)));
    }
    // RFC 8693 §2.2.1: `issued_token_type` is REQUIRED; without it a token that is no access
    // token could be anything.
    if not_applicable && !matches!(fields.get("issued_token_type"), Some(Value::String(_))) {
        return Err(Error::MalformedResponse {
            status,
            reason: "the response's `token_type` is `N_A` but it has no `issued_token_type`".to_owned(),
        });
    }
    let lifetime = seconds_field(&fields, "expires_in", status)?.or(default_lifetime);
    fields.remove("expires_in");
    let refresh_token = string_field(&mut fields, "refresh_token", status)?.filter(|t| !t.is_empty());
    let scope = match fields.remove("scope") {
        // A few servers send the scope as a list.
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => {
            if let Some(value) = other {
                fields.insert("scope".to_owned(), value);
            }
            string_field(&mut fields, "scope", status)?
        }
    };
    let id_token = string_field(&mut fields, "id_token", status)?;
    Ok(Token {
        access_token: Secret::new(access_token),
        token_type,
        issued_at: Some(sent_at),
        // An expiry past what `SystemTime` can hold (`default_lifetime(Duration::MAX)`, say)
        // means the token does not expire; `sent_at + l` would panic.
        expires_at: lifetime.and_then(|l| sent_at.checked_add(l)),
        refresh_token: refresh_token.map(Secret::new),
        scope,
        id_token: id_token.map(Secret::new),
        extra: fields,
    })
}
