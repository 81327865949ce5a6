//! The authorization code grant (RFC 6749 §4.1): log a user in through their browser, with
//! PKCE (RFC 7636), `state`, an OpenID Connect `nonce`, the issuer check of RFC 9207 and, where
//! the server asks for it, pushed authorization requests (RFC 9126).
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::{BodyExt, Full};
//! use tower_oauth2::{Callback, ClientAuth, HttpClient, OAuth2Client, PendingAuthorization};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     let body = request.into_body().collect().await.unwrap().to_bytes();
//! #     let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
//! #     assert!(form.contains(&("code".into(), "the-code".into())));
//! #     assert!(form.iter().any(|(k, v)| k == "code_verifier" && v.len() == 43));
//! #     let json = r#"{"access_token":"user-token","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(json))))
//! # });
//! let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
//!     .issuer("https://auth.example.com")
//!     .authorization_url("https://auth.example.com/authorize")
//!     .token_url("https://auth.example.com/token")
//!     .http_client(HttpClient::new(server)) // a stand-in authorization server
//!     .build()?;
//!
//! // 1. Send the user to the authorization URL; keep `pending` (a web app: in its session).
//! let authorization = client
//!     .authorization_request("https://app.example.com/callback")
//!     .scope("profile orders:read")
//!     .build()?;
//! let (url, pending) = authorization.into_parts();
//! let kept: String = pending.to_json();
//! # let state = pending.state().to_owned();
//!
//! // 2. The browser comes back to the redirect URI.
//! # let redirect = format!("https://app.example.com/callback?code=the-code&state={state}&iss=https%3A%2F%2Fauth.example.com");
//! let callback = Callback::from_url(&redirect)?;
//! let pending = PendingAuthorization::from_json(&kept)?;
//! let login = client.exchange_code(&pending, &callback).await?;
//! assert_eq!(login.token().access_token().expose(), "user-token");
//!
//! // 3. A layer that carries the user's token and refreshes it with the refresh token.
//! let layer = login.into_layer();
//! # let _ = (url, layer);
//! # Ok(()) }
//! ```
//!
//! # What is checked
//!
//! - **The request:** PKCE S256 always (a server that lists only `plain` needs
//!   [`pkce_plain`](AuthorizationRequest::pkce_plain)); a new random `state` (256 bits); a
//!   `nonce` when the scope has `openid`; the redirect URI must be an absolute URL without a
//!   fragment (RFC 6749 §3.1.2).
//! - **The callback** ([`PendingAuthorization::verify`]), in this order: no parameter twice
//!   (RFC 6749 §3.1); `state` equal to the one sent (for a pushed request, an error response
//!   without `state` is reported as the server's error); `iss` equal to the client's issuer
//!   when the server sends it (a client that knows no issuer refuses any `iss`), and present
//!   when the server's metadata says it sends it
//!   (`authorization_response_iss_parameter_supported`, RFC 9207); then an `error` is
//!   [`CallbackError::Server`] with its code and description, and a success must have a
//!   `code`. Every failure is an [`Error::Callback`].
//! - **The exchange** ([`OAuth2Client::exchange_code`]) is made only by the client that made
//!   the request (same client id, authorization endpoint and issuer, else
//!   [`CallbackError::ClientMismatch`]); it sends `code`, `redirect_uri` and `code_verifier`
//!   with the client's authentication. With the `jwt` feature and `openid` in scope, the
//!   response must have an ID token, which is verified (signature, issuer, audience, expiry,
//!   nonce). `auth_time` is not compared with a `max_age` you sent with
//!   [`param`](AuthorizationRequest::param): check `login.id_token()`'s claims for that.
//!
//! Server text that reaches an error (an `error_description` in the callback) is escaped; the
//! code, the verifier, the nonce and the state never appear in `Debug` output, logs or errors.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::Instrument;
use url::Url;

use crate::cache::{TokenCache, TokenCacheBuilder};
use crate::client::OAuth2Client;
use crate::error::{sanitize_server_text, Error, ErrorCode, ServerError};
use crate::grant::pkce::{self, PkceMethod};
use crate::grant::refresh_token::RefreshToken;
use crate::layer::OAuth2Layer;
use crate::secret::{random_token, same_secret, Secret};
use crate::source::{source_fn, TokenSource};
use crate::token::Token;

/// Parameters the request sets itself; [`AuthorizationRequest::param`] cannot override them.
const RESERVED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
];

/// Callback parameters that must not appear twice (RFC 6749 §3.1).
const SINGLE: &[&str] = &["code", "state", "iss", "error", "error_description", "error_uri"];

/// What went wrong with the redirect back from the authorization server: see
/// [`PendingAuthorization::verify`]. It comes as [`Error::Callback`].
///
/// ```
/// use tower_oauth2::{Callback, CallbackError, ClientAuth, Error, ErrorCode, OAuth2Client};
///
/// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
///     .authorization_url("https://auth.example.com/authorize")
///     .token_url("https://auth.example.com/token")
///     .build()?;
/// let pending = client.authorization_request("http://127.0.0.1:9000/cb").build()?.into_parts().1;
///
/// let denied = Callback::from_url(&format!(
///     "http://127.0.0.1:9000/cb?error=access_denied&error_description=The+user+said+no&state={}",
///     pending.state()
/// ))?;
/// let err = pending.verify(&denied).unwrap_err();
/// assert_eq!(err.code(), Some(&ErrorCode::AccessDenied));
/// assert!(err.to_string().contains("The user said no"));
///
/// let forged = Callback::from_url("http://127.0.0.1:9000/cb?code=stolen&state=guessed")?;
/// let err = pending.verify(&forged).unwrap_err();
/// assert!(matches!(err, Error::Callback(CallbackError::StateMismatch)));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackError {
    /// The authorization server sent an error response (RFC 6749 §4.1.2.1): `access_denied`
    /// when the user refused, `invalid_scope`, `login_required`, ... [`Error::code`] gives
    /// the code.
    Server(ServerError),
    /// The callback's `state` is not the one this authorization sent: a forged callback (CSRF),
    /// or one meant for another login (an old tab, another session).
    StateMismatch,
    /// The callback has no `state`.
    MissingState,
    /// The callback has neither a `code` nor an `error`.
    MissingCode,
    /// The callback's `iss` is not the client's issuer (RFC 9207 §2.4): the response comes from
    /// another authorization server (a mix-up attack) or the client is misconfigured.
    IssuerMismatch {
        /// The client's issuer.
        expected: String,
        /// The `iss` of the callback, escaped.
        found: String,
    },
    /// The callback has an `iss` but the client knows no issuer to compare it with (RFC 9207
    /// §2.4): give the client its issuer ([`OAuth2ClientBuilder::issuer`](crate::OAuth2ClientBuilder::issuer)),
    /// or build it by discovery.
    UnknownIssuer {
        /// The `iss` of the callback, escaped.
        found: String,
    },
    /// The pending authorization was made by another client (another client id, authorization
    /// endpoint or issuer) than the one asked to exchange the code: the code must go back to
    /// the server that issued it, with the client it was issued to.
    ClientMismatch,
    /// The server says it sends `iss` in its authorization responses (metadata
    /// `authorization_response_iss_parameter_supported`) and this callback has none.
    MissingIssuer,
    /// A parameter that may appear once appears more than once (RFC 6749 §3.1).
    RepeatedParameter(&'static str),
    /// The callback could not be read: not a URL, or no parameters.
    Malformed(String),
    /// A [`PendingAuthorization`] could not be read back from JSON.
    InvalidPending(String),
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackError::Server(error) => {
                write!(f, "the authorization server refused the authorization: {error}")
            }
            CallbackError::StateMismatch => f.write_str(
                "the callback's `state` is not the one this authorization sent (a forged callback, or one \
                 meant for another login)",
            ),
            CallbackError::MissingState => f.write_str("the callback has no `state`"),
            CallbackError::MissingCode => f.write_str("the callback has neither a `code` nor an `error`"),
            CallbackError::IssuerMismatch { expected, found } => write!(
                f,
                "the callback's `iss` is `{found}`, not the issuer `{expected}` (RFC 9207: a response from \
                 another authorization server)"
            ),
            CallbackError::UnknownIssuer { found } => write!(
                f,
                "the callback's `iss` is `{found}` and the client knows no issuer to compare it with \
                 (RFC 9207): give the client its issuer, or build it by discovery"
            ),
            CallbackError::ClientMismatch => f.write_str(
                "the pending authorization was made by another client (client id, authorization \
                 endpoint or issuer) than the one exchanging the code",
            ),
            CallbackError::MissingIssuer => f.write_str(
                "the authorization server says it sends `iss` in authorization responses (RFC 9207) but the \
                 callback has none",
            ),
            CallbackError::RepeatedParameter(name) => {
                write!(f, "the callback has `{name}` more than once")
            }
            CallbackError::Malformed(reason) => write!(f, "the callback cannot be read: {reason}"),
            CallbackError::InvalidPending(reason) => {
                write!(f, "the pending authorization cannot be read: {reason}")
            }
        }
    }
}

impl std::error::Error for CallbackError {}

impl From<CallbackError> for Error {
    fn from(err: CallbackError) -> Self {
        Error::Callback(err)
    }
}

/// An authorization request being built: see [`OAuth2Client::authorization_request`].
///
/// ```
/// use tower_oauth2::{ClientAuth, OAuth2Client};
///
/// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
///     .authorization_url("https://auth.example.com/authorize")
///     .token_url("https://auth.example.com/token")
///     .build()?;
/// let authorization = client
///     .authorization_request("http://127.0.0.1:9000/cb")
///     .scope("openid email")
///     .resource("https://api.example.com")
///     .prompt("consent")
///     .login_hint("ada@example.com")
///     .param("ui_locales", "fr")
///     .build()?;
/// let query: Vec<(String, String)> = authorization.url().query_pairs().into_owned().collect();
/// let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
/// assert_eq!(get("response_type"), Some("code"));
/// assert_eq!(get("client_id"), Some("my-cli"));
/// assert_eq!(get("scope"), Some("openid email"));
/// assert_eq!(get("code_challenge_method"), Some("S256"));
/// assert_eq!(get("ui_locales"), Some("fr"));
/// assert_eq!(get("state"), Some(authorization.pending().state()));
/// assert!(get("nonce").is_some()); // `openid` is in scope
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuthorizationRequest {
    client: OAuth2Client,
    redirect_uri: String,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    pkce: Option<PkceMethod>,
    nonce: bool,
    pushed: bool,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("client_id", &self.client.client_auth().client_id())
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("params", &self.params)
            .field("pkce", &self.pkce)
            .field("nonce", &self.nonce)
            .field("pushed", &self.pushed)
            .finish()
    }
}

impl OAuth2Client {
    /// Starts a login with the authorization code grant (RFC 6749 §4.1): a builder for the URL
    /// to send the user's browser to. `redirect_uri` is where the server sends the browser
    /// back; it must be registered with the server. See the
    /// [module documentation](crate::grant::authorization_code).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .authorization_url("https://auth.example.com/authorize")
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1:9000/cb").build()?;
    /// assert!(authorization.url().as_str().starts_with("https://auth.example.com/authorize?response_type=code&"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn authorization_request(&self, redirect_uri: impl Into<String>) -> AuthorizationRequest {
        AuthorizationRequest {
            client: self.clone(),
            redirect_uri: redirect_uri.into(),
            scopes: Vec::new(),
            params: Vec::new(),
            pkce: Some(PkceMethod::S256),
            nonce: true,
            pushed: false,
        }
    }

    /// Finishes a login: checks `callback` against `pending`
    /// ([`PendingAuthorization::verify`]), then exchanges the code at the token endpoint
    /// (`code`, `redirect_uri` and `code_verifier`, with the client's authentication). With
    /// the `jwt` feature, an ID token in the response is verified
    /// (`OAuth2Client::verify_id_token`, with the nonce of `pending`) before the login is
    /// returned.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{Callback, CallbackError, ClientAuth, Error, HttpClient, OAuth2Client};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async move {
    /// #     let json = r#"{"error":"invalid_grant","error_description":"code already used"}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(400).body(Full::new(Bytes::from(json))).unwrap())
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .authorization_url("https://auth.example.com/authorize")
    ///     .token_url("https://auth.example.com/token")
    ///     .http_client(HttpClient::new(server)) // answers `invalid_grant`
    ///     .build()?;
    /// let (_url, pending) = client.authorization_request("http://127.0.0.1:9000/cb").build()?.into_parts();
    /// let callback = Callback::from_url(&format!("http://127.0.0.1:9000/cb?code=c&state={}", pending.state()))?;
    /// let err = client.exchange_code(&pending, &callback).await.unwrap_err();
    /// assert_eq!(err.code(), Some(&tower_oauth2::ErrorCode::InvalidGrant));
    /// # Ok(()) }
    /// ```
    pub async fn exchange_code(
        &self,
        pending: &PendingAuthorization,
        callback: &Callback,
    ) -> Result<Login, Error> {
        let same_client = pending.inner.client_id == self.client_auth().client_id()
            && self.authorization_url().map(Url::as_str)
                == Some(pending.inner.authorization_endpoint.as_str())
            && self.issuer() == pending.inner.issuer.as_deref();
        if !same_client {
            return Err(CallbackError::ClientMismatch.into());
        }
        let code = pending.verify(callback)?;
        let span = tracing::debug_span!("authorization_code", client_id = self.client_auth().client_id());
        async {
            let mut params = vec![
                ("grant_type", "authorization_code"),
                ("code", code.0.expose()),
                ("redirect_uri", pending.inner.redirect_uri.as_str()),
            ];
            if let Some(verifier) = &pending.inner.code_verifier {
                params.push(("code_verifier", verifier.expose()));
            }
            let token = self.token_endpoint().request_token(&params).await?;
            // An ID token is verified when the login asked for one (`openid`); one sent
            // unasked stays in the token, unverified, as any other field.
            #[cfg(feature = "jwt")]
            let id_token = match (pending.inner.openid, token.id_token()) {
                (true, Some(raw)) => Some(
                    self.verify_id_token(raw.expose(), pending.inner.nonce.as_ref().map(Secret::expose))
                        .await?,
                ),
                (true, None) => return Err(Error::IdToken(crate::IdTokenError::Missing)),
                (false, _) => None,
            };
            tracing::debug!(refresh_token = token.refresh_token().is_some(), "user logged in");
            Ok(Login {
                client: self.clone(),
                token,
                #[cfg(feature = "jwt")]
                id_token,
            })
        }
        .instrument(span)
        .await
    }

    /// Whether the server's metadata says every authorization request must be pushed
    /// (`require_pushed_authorization_requests`, RFC 9126 §6).
    fn requires_pushed_authorization(&self) -> bool {
        self.metadata()
            .and_then(|m| m.as_json().get("require_pushed_authorization_requests"))
            == Some(&Value::Bool(true))
    }
}

impl AuthorizationRequest {
    /// The redirect URI the request names.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let request = client.authorization_request("http://127.0.0.1:9000/cb");
    /// assert_eq!(request.redirect_uri(), "http://127.0.0.1:9000/cb");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Adds scopes; `"a b"` adds two. `openid` makes the request an OpenID Connect one, with a
    /// `nonce`.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").scope("a b").scope("c a").build()?;
    /// assert!(authorization.url().as_str().contains("scope=a+b+c&"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        for scope in scope.into().split_ascii_whitespace() {
            if !self.scopes.iter().any(|s| s == scope) {
                self.scopes.push(scope.to_owned());
            }
        }
        self
    }

    /// Adds a `resource` (RFC 8707): the API the token is for. Repeatable.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client
    ///     .authorization_request("http://127.0.0.1/cb")
    ///     .resource("https://a.example.com")
    ///     .resource("https://b.example.com")
    ///     .build()?;
    /// assert_eq!(authorization.url().query_pairs().filter(|(k, _)| k == "resource").count(), 2);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.params.push(("resource".to_owned(), resource.into()));
        self
    }

    /// Sets `prompt` (OpenID Connect Core §3.1.2.1): `login`, `consent`, `select_account`,
    /// `none`.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").prompt("consent").build()?;
    /// assert!(authorization.url().as_str().ends_with("&prompt=consent"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn prompt(self, prompt: impl Into<String>) -> Self {
        self.set("prompt", prompt.into())
    }

    /// Sets `login_hint`: the user's e-mail or login, to prefill the server's login form.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").login_hint("ada@example.com").build()?;
    /// assert!(authorization.url().as_str().ends_with("&login_hint=ada%40example.com"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn login_hint(self, hint: impl Into<String>) -> Self {
        self.set("login_hint", hint.into())
    }

    /// Adds any other parameter (`ui_locales`, `acr_values`, `max_age`, a provider's own
    /// `access_type`, ...). Repeatable. The parameters the request sets itself
    /// (`response_type`, `client_id`, `redirect_uri`, `scope`, `state`, `nonce`,
    /// `code_challenge`, `code_challenge_method`, `request_uri`) are refused by
    /// [`build`](Self::build) and [`start`](Self::start): use [`scope`](Self::scope) for
    /// scopes.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").param("access_type", "offline").build()?;
    /// assert!(authorization.url().as_str().ends_with("&access_type=offline"));
    /// assert!(client.authorization_request("http://127.0.0.1/cb").param("state", "mine").build().is_err());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Uses the `plain` PKCE method instead of `S256`: only for a server that supports nothing
    /// else (RFC 7636 §4.2 allows `plain` only when S256 cannot be used).
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").pkce_plain().build()?;
    /// assert!(authorization.url().as_str().contains("code_challenge_method=plain"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn pkce_plain(mut self) -> Self {
        self.pkce = Some(PkceMethod::Plain);
        self
    }

    /// Sends no PKCE parameters: only for a server that refuses them. The code is then only
    /// as safe as the redirect that carries it.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").without_pkce().build()?;
    /// assert!(!authorization.url().as_str().contains("code_challenge"));
    /// assert_eq!(authorization.pending().pkce_method(), None);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn without_pkce(mut self) -> Self {
        self.pkce = None;
        self
    }

    /// Sends no `nonce` even with `openid` in scope, and accepts an ID token without one: only
    /// for a provider whose ID tokens never carry the nonce sent (LinkedIn's, say). The ID
    /// token is still verified otherwise; the code exchange's PKCE and `state` still bind the
    /// login to this request.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").scope("openid").without_nonce().build()?;
    /// assert!(!authorization.url().as_str().contains("nonce"));
    /// assert!(authorization.pending().nonce().is_none());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn without_nonce(mut self) -> Self {
        self.nonce = false;
        self
    }

    /// Pushes the request to the server's PAR endpoint (RFC 9126) even when the server does
    /// not require it: the parameters then travel with the client's authentication instead of
    /// through the browser. Needs [`start`](Self::start).
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// // `build` cannot push: it makes no request.
    /// assert!(client.authorization_request("http://127.0.0.1/cb").pushed().build().is_err());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn pushed(mut self) -> Self {
        self.pushed = true;
        self
    }

    /// The authorization URL, with every parameter in it (the front channel). Fails when the
    /// request must be pushed ([`pushed`](Self::pushed), or the server's
    /// `require_pushed_authorization_requests`): use [`start`](Self::start) then.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("c"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// // No authorization endpoint.
    /// let err = client.authorization_request("http://127.0.0.1/cb").build().unwrap_err();
    /// assert!(matches!(err, Error::NoEndpoint { endpoint: "authorization" }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn build(self) -> Result<Authorization, Error> {
        if self.pushed || self.client.requires_pushed_authorization() {
            return Err(Error::Config(
                "this authorization request must be pushed (RFC 9126): use `start()`, which sends it to \
                 the pushed authorization request endpoint"
                    .to_owned(),
            ));
        }
        let (params, pending) = self.prepare(false)?;
        let mut url = self.authorization_endpoint()?.clone();
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        Ok(Authorization { url, pending })
    }

    /// The authorization URL, pushing the parameters to the PAR endpoint first (RFC 9126) when
    /// [`pushed`](Self::pushed) was called or the server requires it; otherwise as
    /// [`build`](Self::build). A pushed request's URL carries only `client_id` and the
    /// `request_uri` the server gave.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    /// #     assert_eq!(request.uri().path(), "/par");
    /// #     let json = r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(201).body(Full::new(Bytes::from(json))).unwrap())
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
    ///     .authorization_url("https://auth.example.com/authorize")
    ///     .pushed_authorization_request_url("https://auth.example.com/par")
    ///     .token_url("https://auth.example.com/token")
    ///     .http_client(HttpClient::new(server)) // a stand-in PAR endpoint
    ///     .build()?;
    /// let authorization = client.authorization_request("https://app.example.com/cb").pushed().start().await?;
    /// assert_eq!(
    ///     authorization.url().as_str(),
    ///     "https://auth.example.com/authorize?client_id=my-app&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc"
    /// );
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<Authorization, Error> {
        if !(self.pushed || self.client.requires_pushed_authorization()) {
            return self.build();
        }
        let (params, pending) = self.prepare(true)?;
        let authorization_endpoint = self.authorization_endpoint()?;
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let request_uri = self.client.push_authorization_request(&pairs).await?;
        let mut url = authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("client_id", self.client.client_auth().client_id())
            .append_pair("request_uri", &request_uri);
        Ok(Authorization { url, pending })
    }

    fn set(mut self, name: &str, value: String) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value));
        self
    }

    fn authorization_endpoint(&self) -> Result<&Url, Error> {
        self.client.authorization_url().ok_or(Error::NoEndpoint {
            endpoint: "authorization",
        })
    }

    /// The request's parameters, in order, and what to keep for the callback.
    fn prepare(&self, pushed: bool) -> Result<Prepared<'_>, Error> {
        let authorization_endpoint = self.authorization_endpoint()?.to_string();
        check_redirect_uri(&self.redirect_uri)?;
        if let Some((name, _)) = self.params.iter().find(|(k, _)| RESERVED.contains(&k.as_str())) {
            return Err(Error::Config(format!(
                "`{name}` is set by the authorization request itself; it cannot be given with `param`"
            )));
        }
        if self.pkce == Some(PkceMethod::S256) {
            let supported = self
                .client
                .metadata()
                .and_then(|m| m.code_challenge_methods_supported());
            if let Some(methods) = supported {
                if !methods.iter().any(|m| m == "S256") {
                    return Err(Error::Config(format!(
                        "the authorization server does not support the PKCE method S256 (it lists {methods:?}); \
                         `pkce_plain()` opts in to `plain`, `without_pkce()` sends none"
                    )));
                }
            }
        }
        let client_id = self.client.client_auth().client_id();
        let state = Secret::new(random_token(32)?);
        let openid = self.scopes.iter().any(|s| s == "openid");
        let nonce = if openid && self.nonce {
            Some(Secret::new(random_token(32)?))
        } else {
            None
        };
        let verifier = match self.pkce {
            Some(_) => Some(pkce::new_verifier()?),
            None => None,
        };

        let mut params: Vec<(&str, String)> = vec![
            ("response_type", "code".to_owned()),
            ("client_id", client_id.to_owned()),
            ("redirect_uri", self.redirect_uri.clone()),
        ];
        if !self.scopes.is_empty() {
            params.push(("scope", self.scopes.join(" ")));
        }
        params.push(("state", state.expose().to_owned()));
        if let Some(nonce) = &nonce {
            params.push(("nonce", nonce.expose().to_owned()));
        }
        if let (Some(method), Some(verifier)) = (self.pkce, &verifier) {
            params.push(("code_challenge", pkce::challenge(verifier, method)));
            params.push(("code_challenge_method", method.as_str().to_owned()));
        }
        params.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.clone())));

        let iss_required = self
            .client
            .metadata()
            .and_then(|m| m.as_json().get("authorization_response_iss_parameter_supported"))
            == Some(&Value::Bool(true));
        let pending = PendingAuthorization {
            inner: Arc::new(PendingInner {
                state,
                redirect_uri: self.redirect_uri.clone(),
                code_verifier: verifier,
                pkce_method: self.pkce,
                nonce,
                issuer: self.client.issuer().map(str::to_owned),
                iss_required,
                client_id: client_id.to_owned(),
                authorization_endpoint,
                openid,
                pushed,
            }),
        };
        Ok((params, pending))
    }
}

/// An authorization request's parameters, in order, and what to keep for the callback.
type Prepared<'a> = (Vec<(&'a str, String)>, PendingAuthorization);

/// A redirect URI must be an absolute URI without a fragment (RFC 6749 §3.1.2). Custom schemes
/// (`com.example.app:/callback`, RFC 8252 §7.1) are allowed.
fn check_redirect_uri(redirect_uri: &str) -> Result<(), Error> {
    match Url::parse(redirect_uri) {
        Ok(url) if url.fragment().is_none() => Ok(()),
        Ok(_) => Err(Error::Config(format!(
            "the redirect URI `{}` has a fragment (RFC 6749 §3.1.2 forbids it)",
            sanitize_server_text(redirect_uri)
        ))),
        Err(err) => Err(Error::Config(format!(
            "the redirect URI `{}` is not an absolute URL: {err}",
            sanitize_server_text(redirect_uri)
        ))),
    }
}

/// The URL to send the user's browser to, and what to keep until it comes back: see
/// [`AuthorizationRequest::build`] and [`AuthorizationRequest::start`].
///
/// ```
/// use tower_oauth2::{ClientAuth, OAuth2Client};
///
/// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
///     .authorization_url("https://auth.example.com/authorize")
///     .token_url("https://auth.example.com/token")
///     .build()?;
/// let authorization = client.authorization_request("http://127.0.0.1:9000/cb").build()?;
/// println!("Open {} in your browser", authorization.url());
/// let (_url, pending) = authorization.into_parts();
/// assert_eq!(pending.redirect_uri(), "http://127.0.0.1:9000/cb");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Authorization {
    url: Url,
    pending: PendingAuthorization,
}

impl Authorization {
    /// The authorization URL.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").build()?;
    /// assert_eq!(authorization.url().path(), "/authorize");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// What to keep for the callback.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").build()?;
    /// assert_eq!(authorization.pending().redirect_uri(), "http://127.0.0.1/cb");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn pending(&self) -> &PendingAuthorization {
        &self.pending
    }

    /// The URL and what to keep, apart.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let (url, pending) = client.authorization_request("http://127.0.0.1/cb").build()?.into_parts();
    /// assert!(url.as_str().contains(pending.state()));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn into_parts(self) -> (Url, PendingAuthorization) {
        (self.url, self.pending)
    }
}

/// What a client keeps between sending the user to the authorization server and the callback:
/// the `state`, the PKCE verifier, the `nonce`, the redirect URI and the issuer to expect. A
/// web app keeps it in the user's session ([`to_json`](Self::to_json) /
/// [`from_json`](Self::from_json)); it holds secrets, so keep it server-side or in an
/// encrypted cookie. `Debug` shows none of them.
///
/// ```
/// use tower_oauth2::{ClientAuth, OAuth2Client, PendingAuthorization};
///
/// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
///     .authorization_url("https://auth.example.com/authorize")
///     .token_url("https://auth.example.com/token")
///     .build()?;
/// let (_url, pending) = client.authorization_request("http://127.0.0.1:9000/cb").build()?.into_parts();
/// let json = pending.to_json();
/// let back = PendingAuthorization::from_json(&json)?;
/// assert_eq!(back.state(), pending.state());
/// assert!(!format!("{pending:?}").contains(pending.state()));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct PendingAuthorization {
    inner: Arc<PendingInner>,
}

struct PendingInner {
    state: Secret,
    redirect_uri: String,
    code_verifier: Option<Secret>,
    pkce_method: Option<PkceMethod>,
    nonce: Option<Secret>,
    issuer: Option<String>,
    iss_required: bool,
    /// The client that made the request, and where it sent the browser: the code is
    /// exchanged by that client only.
    client_id: String,
    authorization_endpoint: String,
    /// Whether `openid` was in scope: the token response must then have an ID token.
    openid: bool,
    /// Whether the request was pushed (PAR): a stateless error then reports the server's error.
    pushed: bool,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("state", &"<redacted>")
            .field("redirect_uri", &self.inner.redirect_uri)
            .field("pkce_method", &self.inner.pkce_method)
            .field("nonce", &self.inner.nonce.as_ref().map(|_| "<redacted>"))
            .field("issuer", &self.inner.issuer)
            .field("iss_required", &self.inner.iss_required)
            .field("client_id", &self.inner.client_id)
            .field("authorization_endpoint", &self.inner.authorization_endpoint)
            .field("openid", &self.inner.openid)
            .field("pushed", &self.inner.pushed)
            .finish()
    }
}

/// The version of [`PendingAuthorization::to_json`]'s format.
const PENDING_FORMAT: u64 = 1;

impl PendingAuthorization {
    /// The `state` sent with the request. A web app with several logins in flight for one
    /// session finds the right pending authorization by it.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").build()?;
    /// assert_eq!(authorization.pending().state().len(), 43);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn state(&self) -> &str {
        self.inner.state.expose()
    }

    /// The redirect URI the request named; the code exchange sends it again.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").build()?;
    /// assert_eq!(authorization.pending().redirect_uri(), "http://127.0.0.1/cb");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn redirect_uri(&self) -> &str {
        &self.inner.redirect_uri
    }

    /// The `nonce` sent with an OpenID Connect request (`openid` in scope), which the ID
    /// token must carry.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let oidc = client.authorization_request("http://127.0.0.1/cb").scope("openid").build()?;
    /// assert!(oidc.pending().nonce().is_some());
    /// let plain = client.authorization_request("http://127.0.0.1/cb").build()?;
    /// assert!(plain.pending().nonce().is_none());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn nonce(&self) -> Option<&Secret> {
        self.inner.nonce.as_ref()
    }

    /// The PKCE method used, if any.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").build()?;
    /// assert_eq!(authorization.pending().pkce_method(), Some(tower_oauth2::PkceMethod::S256));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn pkce_method(&self) -> Option<PkceMethod> {
        self.inner.pkce_method
    }

    /// Saves it as JSON, secrets included (the verifier, the nonce): store it where only the
    /// server can read it.
    ///
    /// ```
    /// # let client = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// let authorization = client.authorization_request("http://127.0.0.1/cb").build()?;
    /// let json = authorization.pending().to_json();
    /// assert!(json.contains("\"redirect_uri\":\"http://127.0.0.1/cb\""));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        let mut object = Map::new();
        object.insert("version".into(), PENDING_FORMAT.into());
        object.insert("state".into(), self.inner.state.expose().into());
        object.insert("redirect_uri".into(), self.inner.redirect_uri.clone().into());
        if let Some(verifier) = &self.inner.code_verifier {
            object.insert("code_verifier".into(), verifier.expose().into());
        }
        if let Some(method) = self.inner.pkce_method {
            object.insert("pkce_method".into(), method.as_str().into());
        }
        if let Some(nonce) = &self.inner.nonce {
            object.insert("nonce".into(), nonce.expose().into());
        }
        if let Some(issuer) = &self.inner.issuer {
            object.insert("issuer".into(), issuer.clone().into());
        }
        object.insert("iss_required".into(), self.inner.iss_required.into());
        object.insert("client_id".into(), self.inner.client_id.clone().into());
        object.insert(
            "authorization_endpoint".into(),
            self.inner.authorization_endpoint.clone().into(),
        );
        object.insert("openid".into(), self.inner.openid.into());
        object.insert("pushed".into(), self.inner.pushed.into());
        Value::Object(object).to_string()
    }

    /// Reads back what [`to_json`](Self::to_json) saved. Anything else is
    /// [`CallbackError::InvalidPending`].
    ///
    /// ```
    /// use tower_oauth2::{CallbackError, Error, PendingAuthorization};
    ///
    /// let err = PendingAuthorization::from_json(r#"{"version":1}"#).unwrap_err();
    /// assert!(matches!(err, Error::Callback(CallbackError::InvalidPending(_))));
    /// ```
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::Callback(CallbackError::InvalidPending(reason.to_owned()));
        let object = match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(object)) => object,
            _ => return Err(invalid("not a JSON object")),
        };
        if object.get("version").and_then(Value::as_u64) != Some(PENDING_FORMAT) {
            return Err(invalid("unknown `version`"));
        }
        let string = |name: &'static str| -> Result<Option<String>, Error> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(&format!("`{name}` is not a string"))),
            }
        };
        let state = string("state")?
            .filter(|state| !state.is_empty())
            .ok_or_else(|| invalid("no `state`"))?;
        let redirect_uri = string("redirect_uri")?.ok_or_else(|| invalid("no `redirect_uri`"))?;
        let code_verifier = string("code_verifier")?;
        if let Some(verifier) = &code_verifier {
            // RFC 7636 §4.1: 43 to 128 unreserved characters.
            let unreserved = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
            if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(unreserved) {
                return Err(invalid("`code_verifier` is not 43 to 128 unreserved characters"));
            }
        }
        let code_verifier = code_verifier.map(Secret::new);
        let client_id = string("client_id")?.ok_or_else(|| invalid("no `client_id`"))?;
        let authorization_endpoint =
            string("authorization_endpoint")?.ok_or_else(|| invalid("no `authorization_endpoint`"))?;
        let pkce_method = match string("pkce_method")? {
            None => None,
            Some(name) => Some(PkceMethod::from_name(&name).ok_or_else(|| invalid("unknown `pkce_method`"))?),
        };
        if pkce_method.is_some() != code_verifier.is_some() {
            return Err(invalid("`pkce_method` and `code_verifier` go together"));
        }
        let boolean = |name: &'static str| -> Result<bool, Error> {
            match object.get(name) {
                None => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(invalid(&format!("`{name}` is not a boolean"))),
            }
        };
        let iss_required = boolean("iss_required")?;
        Ok(PendingAuthorization {
            inner: Arc::new(PendingInner {
                state: Secret::new(state),
                redirect_uri,
                code_verifier,
                pkce_method,
                nonce: string("nonce")?.map(Secret::new),
                issuer: string("issuer")?,
                iss_required,
                client_id,
                authorization_endpoint,
                openid: boolean("openid")?,
                pushed: boolean("pushed")?,
            }),
        })
    }

    /// Checks a callback against this authorization and returns its code; see the
    /// [module documentation](crate::grant::authorization_code#what-is-checked) for the
    /// checks and their order. [`OAuth2Client::exchange_code`] calls it; call it yourself to
    /// exchange the code some other way.
    ///
    /// ```
    /// use tower_oauth2::{Callback, CallbackError, ClientAuth, Error, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .issuer("https://auth.example.com")
    ///     .authorization_url("https://auth.example.com/authorize")
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let (_url, pending) = client.authorization_request("http://127.0.0.1:9000/cb").build()?.into_parts();
    /// let state = pending.state();
    ///
    /// let ok = Callback::from_query(&format!("code=abc&state={state}&iss=https%3A%2F%2Fauth.example.com"));
    /// assert!(pending.verify(&ok).is_ok());
    /// let mixed_up = Callback::from_query(&format!("code=abc&state={state}&iss=https%3A%2F%2Fevil.example.com"));
    /// let err = pending.verify(&mixed_up).unwrap_err();
    /// assert!(matches!(err, Error::Callback(CallbackError::IssuerMismatch { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn verify(&self, callback: &Callback) -> Result<AuthorizationCode, Error> {
        if let Some(name) = callback.repeated {
            return Err(CallbackError::RepeatedParameter(name).into());
        }
        match callback.param("state") {
            Some(state) => {
                if !same_secret(state, self.inner.state.expose()) {
                    return Err(CallbackError::StateMismatch.into());
                }
            }
            // A pushed request's `request_uri` that expired or was used comes back as an error
            // without `state` (the server no longer knows it): nothing will be exchanged, and
            // the server's reason says more than `MissingState` would.
            None if self.inner.pushed && callback.param("error").is_some() => {}
            None => return Err(CallbackError::MissingState.into()),
        }
        match (callback.param("iss"), &self.inner.issuer) {
            (Some(found), Some(expected)) if found != expected => {
                return Err(CallbackError::IssuerMismatch {
                    expected: expected.clone(),
                    found: sanitize_server_text(found),
                }
                .into());
            }
            // RFC 9207 §2.4: an `iss` must be compared with the issuer; a client that does not
            // know its issuer cannot.
            (Some(found), None) => {
                return Err(CallbackError::UnknownIssuer {
                    found: sanitize_server_text(found),
                }
                .into());
            }
            (None, _) if self.inner.iss_required => return Err(CallbackError::MissingIssuer.into()),
            _ => {}
        }
        if let Some(code) = callback.param("error") {
            let text = |name: &str| callback.param(name).map(sanitize_server_text);
            return Err(CallbackError::Server(ServerError {
                code: match ErrorCode::from(code) {
                    ErrorCode::Other(_) => ErrorCode::from(sanitize_server_text(code).as_str()),
                    known => known,
                },
                description: text("error_description"),
                uri: text("error_uri"),
            })
            .into());
        }
        match &callback.code {
            Some(code) if !code.expose().is_empty() => Ok(AuthorizationCode(code.clone())),
            _ => Err(CallbackError::MissingCode.into()),
        }
    }
}

/// The redirect back from the authorization server, parsed: the query parameters of the
/// callback URL (or its fragment, for `response_mode=fragment`). The `code` is kept as a
/// [`Secret`]: `Debug` and [`param`](Self::param) never show it.
///
/// ```
/// use tower_oauth2::Callback;
///
/// // From the URL the browser was sent to (a CLI's loopback server, a pasted URL):
/// let callback = Callback::from_url("http://127.0.0.1:9000/cb?code=abc&state=xyz")?;
/// assert_eq!(callback.param("state"), Some("xyz"));
/// assert_eq!(callback.param("code"), None); // the code is not handed out
/// assert!(!format!("{callback:?}").contains("abc"));
///
/// // From the request a web framework hands over (axum, hyper):
/// let request = http::Request::get("/cb?code=abc&state=xyz").body(())?;
/// let callback = Callback::from_request(&request);
/// assert_eq!(callback.param("state"), Some("xyz"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Callback {
    code: Option<Secret>,
    params: Vec<(String, String)>,
    repeated: Option<&'static str>,
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("params", &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl Callback {
    /// Parses a callback URL: its query, or its fragment when the query has neither `code`,
    /// `error` nor `state` (`response_mode=fragment`).
    ///
    /// ```
    /// use tower_oauth2::{Callback, CallbackError, Error};
    ///
    /// let callback = Callback::from_url("com.example.app:/cb#code=abc&state=xyz")?;
    /// assert_eq!(callback.param("state"), Some("xyz"));
    /// let err = Callback::from_url("not a url").unwrap_err();
    /// assert!(matches!(err, Error::Callback(CallbackError::Malformed(_))));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let url = Url::parse(url)
            .map_err(|err| CallbackError::Malformed(format!("the callback is not an absolute URL: {err}")))?;
        let query = Callback::from_query(url.query().unwrap_or(""));
        if query.is_response() {
            return Ok(query);
        }
        Ok(match url.fragment() {
            Some(fragment) => Callback::from_query(fragment),
            None => query,
        })
    }

    /// Parses the query of a request URI (`/cb?code=...&state=...`).
    ///
    /// ```
    /// let uri: http::Uri = "/cb?state=xyz&error=access_denied".parse()?;
    /// let callback = tower_oauth2::Callback::from_uri(&uri);
    /// assert_eq!(callback.param("error"), Some("access_denied"));
    /// # Ok::<(), http::uri::InvalidUri>(())
    /// ```
    pub fn from_uri(uri: &http::Uri) -> Self {
        Callback::from_query(uri.query().unwrap_or(""))
    }

    /// Parses the query of the request a web framework hands over for the redirect URI (a
    /// `GET`; `response_mode=form_post` is not supported).
    ///
    /// ```
    /// let request = http::Request::get("https://app.example.com/cb?code=abc&state=xyz").body(())?;
    /// let callback = tower_oauth2::Callback::from_request(&request);
    /// assert_eq!(callback.param("state"), Some("xyz"));
    /// # Ok::<(), http::Error>(())
    /// ```
    pub fn from_request<B>(request: &http::Request<B>) -> Self {
        Callback::from_uri(request.uri())
    }

    /// Parses a query string (`code=...&state=...`, without the `?`).
    ///
    /// ```
    /// let callback = tower_oauth2::Callback::from_query("state=a%20b&iss=https%3A%2F%2Fauth.example.com");
    /// assert_eq!(callback.param("state"), Some("a b"));
    /// assert_eq!(callback.param("iss"), Some("https://auth.example.com"));
    /// ```
    pub fn from_query(query: &str) -> Self {
        let mut callback = Callback::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let seen = if name == "code" {
                callback.code.is_some()
            } else {
                callback.params.iter().any(|(k, _)| *k == name)
            };
            if seen && callback.repeated.is_none() {
                callback.repeated = SINGLE.iter().copied().find(|single| *single == name);
            }
            if name == "code" {
                callback.code = Some(Secret::new(value.into_owned()));
            } else if !seen {
                callback.params.push((name.into_owned(), value.into_owned()));
            }
        }
        callback
    }

    /// A parameter of the callback (`state`, `iss`, `error`, `error_description`, a
    /// provider's own); never the `code`.
    ///
    /// ```
    /// let callback = tower_oauth2::Callback::from_query("code=abc&session_state=s1");
    /// assert_eq!(callback.param("session_state"), Some("s1"));
    /// assert_eq!(callback.param("code"), None);
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it looks like an authorization response at all.
    fn is_response(&self) -> bool {
        self.code.is_some() || self.param("error").is_some() || self.param("state").is_some()
    }
}

/// The authorization code of a checked callback ([`PendingAuthorization::verify`]). A
/// [`Secret`]: never printed.
///
/// ```
/// use tower_oauth2::{Callback, ClientAuth, OAuth2Client};
///
/// # let client = OAuth2Client::builder(ClientAuth::none("c"))
/// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
/// let (_url, pending) = client.authorization_request("http://127.0.0.1/cb").build()?.into_parts();
/// let code = pending.verify(&Callback::from_query(&format!("code=abc&state={}", pending.state())))?;
/// assert_eq!(code.secret().expose(), "abc");
/// assert!(!format!("{code:?}").contains("abc"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AuthorizationCode(Secret);

impl AuthorizationCode {
    /// The code.
    ///
    /// ```
    /// # use tower_oauth2::{Callback, ClientAuth, OAuth2Client};
    /// # let client = OAuth2Client::builder(ClientAuth::none("c"))
    /// #     .authorization_url("https://auth.example.com/authorize").token_url("https://auth.example.com/token").build()?;
    /// # let (_url, pending) = client.authorization_request("http://127.0.0.1/cb").build()?.into_parts();
    /// let code = pending.verify(&Callback::from_query(&format!("code=abc&state={}", pending.state())))?;
    /// assert_eq!(code.secret().expose(), "abc");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

/// A finished login ([`OAuth2Client::exchange_code`]): the user's token, the verified ID
/// token (feature `jwt`), and the way on to a layer that carries the token and keeps it
/// fresh. `Debug` shows no token.
///
/// ```
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// use tower_oauth2::{Callback, ClientAuth, HttpClient, OAuth2Client, OAuth2Layer, StoredToken};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async move {
/// #     let json = r#"{"access_token":"user-token","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}"#;
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(json))))
/// # });
/// # let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
/// #     .authorization_url("https://auth.example.com/authorize")
/// #     .token_url("https://auth.example.com/token")
/// #     .http_client(HttpClient::new(server))
/// #     .build()?;
/// # let (_url, pending) = client.authorization_request("http://127.0.0.1/cb").build()?.into_parts();
/// # let callback = Callback::from_query(&format!("code=abc&state={}", pending.state()));
/// let login = client.exchange_code(&pending, &callback).await?;
/// // Save every new token (refresh tokens rotate), starting with the login's own.
/// let save = |json: String| async move { let _ = json; /* write it somewhere */ };
/// save(StoredToken::from_token(login.token()).to_json()).await;
/// let source = login
///     .refresh_token()?
///     .on_new_token(move |token| save(StoredToken::from_token(&token).to_json()));
/// let layer = OAuth2Layer::from_cache(login.into_cache(source));
/// # let _ = layer;
/// # Ok(()) }
/// ```
pub struct Login {
    client: OAuth2Client,
    token: Token,
    #[cfg(feature = "jwt")]
    id_token: Option<crate::id_token::IdToken>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Login");
        debug.field("token", &self.token);
        #[cfg(feature = "jwt")]
        debug.field("id_token", &self.id_token);
        debug.finish()
    }
}

impl Login {
    /// The token the code was exchanged for.
    ///
    /// ```
    /// # fn check(login: &tower_oauth2::Login) {
    /// let scope = login.token().scope();
    /// # let _ = scope; }
    /// ```
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The token, taken out.
    ///
    /// ```
    /// # fn check(login: tower_oauth2::Login) {
    /// let token = login.into_token();
    /// # let _ = token; }
    /// ```
    pub fn into_token(self) -> Token {
        self.token
    }

    /// The verified ID token, when the response had one (OpenID Connect: `openid` in scope).
    ///
    /// ```
    /// # fn check(login: &tower_oauth2::Login) {
    /// if let Some(id_token) = login.id_token() {
    ///     println!("logged in as {}", id_token.claims().subject());
    /// }
    /// # }
    /// ```
    #[cfg(feature = "jwt")]
    pub fn id_token(&self) -> Option<&crate::id_token::IdToken> {
        self.id_token.as_ref()
    }

    /// A [`RefreshToken`] source at the same client, from the login's refresh token: add
    /// [`on_new_token`](RefreshToken::on_new_token) to persist rotated refresh tokens, then
    /// give it to [`into_cache`](Self::into_cache). [`Error::Config`] when the server gave no
    /// refresh token (many give one only with the `offline_access` scope, or Google's
    /// `access_type=offline`).
    ///
    /// ```
    /// # fn check(login: &tower_oauth2::Login) -> Result<(), tower_oauth2::Error> {
    /// let source = login.refresh_token()?;
    /// # let _ = source; Ok(()) }
    /// ```
    pub fn refresh_token(&self) -> Result<RefreshToken, Error> {
        RefreshToken::from_token(self.client.token_endpoint().clone(), &self.token)
    }

    /// A cache that starts with the login's access token (no token request on the first API
    /// call) and gets the next ones from `source`, usually
    /// [`refresh_token`](Self::refresh_token). It keeps time with the client's clock.
    ///
    /// ```
    /// # fn check(login: tower_oauth2::Login) -> Result<(), tower_oauth2::Error> {
    /// let source = login.refresh_token()?;
    /// let layer = tower_oauth2::OAuth2Layer::from_cache(login.into_cache(source));
    /// # let _ = layer; Ok(()) }
    /// ```
    pub fn into_cache(self, source: impl TokenSource + 'static) -> TokenCache {
        self.cache_builder(source).build()
    }

    /// As [`into_cache`](Self::into_cache), the builder before `build`: to add a token store
    /// ([`TokenCacheBuilder::store`](crate::TokenCacheBuilder::store)), which then keeps the
    /// login for the next run of a CLI, or other settings.
    ///
    /// ```
    /// use tower_oauth2::store::MemoryStore;
    ///
    /// # fn check(login: tower_oauth2::Login) -> Result<(), tower_oauth2::Error> {
    /// let source = login.refresh_token()?;
    /// let cache = login.cache_builder(source).store(MemoryStore::new()).build();
    /// # let _ = cache; Ok(()) }
    /// ```
    pub fn cache_builder(self, source: impl TokenSource + 'static) -> TokenCacheBuilder {
        TokenCache::builder(source)
            .clock(self.client.token_endpoint().clock().clone())
            .initial_token(self.token)
    }

    /// The layer that carries the user's token, in one call: refreshed with the login's
    /// refresh token when there is one; otherwise the login's token is used until it expires,
    /// and then requests fail with [`Error::LoginExpired`] (the user must log in again).
    /// Persisting rotated refresh tokens needs [`refresh_token`](Self::refresh_token) and
    /// [`into_cache`](Self::into_cache) instead.
    ///
    /// ```
    /// # fn check(login: tower_oauth2::Login) {
    /// let client = tower::ServiceBuilder::new()
    ///     .layer(login.into_layer())
    ///     .service(tower::service_fn(|_: http::Request<()>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(()))
    ///     }));
    /// # let _ = client; }
    /// ```
    pub fn into_layer(self) -> OAuth2Layer {
        match self.refresh_token() {
            Ok(source) => OAuth2Layer::from_cache(self.into_cache(source)),
            Err(_) => {
                let token = self.token.clone();
                let clock = self.client.token_endpoint().clock().clone();
                let source = source_fn(move || {
                    let result = if token.is_expired_at(clock.now()) {
                        Err(Error::LoginExpired)
                    } else {
                        Ok(token.clone())
                    };
                    async move { result }
                });
                OAuth2Layer::from_cache(self.into_cache(source))
            }
        }
    }
}
