//! The crate's error type, including OAuth 2.0 error responses: RFC 6749 §5.2, the device
//! flow's codes from RFC 8628 §3.5, and RFC 8707's `invalid_target`.
//!
//! - [`Error::is_transient`] says whether trying again may help; [`Error::retry_after`] how
//!   long the server asked to wait (its `Retry-After` header, RFC 9110 §10.2.3).
//! - [`Error::GrantLost`] ([`Error::is_grant_lost`]) means new credentials are needed.
//! - Server text is stored made safe to print (secrets the request carried redacted, control
//!   characters escaped, length capped): see [`ServerError`].
//! - Each level of the `source()` chain says its own part once.
//!
//! ```
//! use tower_oauth2::{Error, ErrorCode};
//!
//! fn explain(err: &Error) -> String {
//!     match err.code() {
//!         _ if err.is_grant_lost() => "the grant is gone: log in again".to_owned(),
//!         Some(ErrorCode::InvalidClient) => "check the client id and secret".to_owned(),
//!         _ if err.is_transient() => match err.retry_after() {
//!             Some(wait) => format!("try again in {} s", wait.as_secs()),
//!             None => "try again later".to_owned(),
//!         },
//!         _ => "give up".to_owned(),
//!     }
//! }
//! # let _ = explain;
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;

/// A boxed error from a transport or a user-supplied token source.
///
/// ```
/// use tower_oauth2::{BoxError, Error};
///
/// let cause: BoxError = "the vault is sealed".into();
/// let err = Error::source_error(cause);
/// assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "the vault is sealed");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The longest delay [`Error::retry_after`] reports: a server asking for more is read as
/// asking for 24 hours.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Everything that can go wrong when getting a token.
///
/// Cheap to clone, so that every request waiting on one shared token refresh can get the same
/// error. No variant ever contains a secret, and server-supplied text (the `error`,
/// `error_description` and `error_uri` fields, an unknown `token_type`) is stored already made
/// safe to print: see [`ServerError`].
///
/// Each level of the [`source`](std::error::Error::source) chain says its own part once:
/// [`Error::Transport`], [`Error::Source`] and [`Error::GrantLost`] describe what failed and
/// leave the cause to `source()`, so error reporters that print the chain (anyhow's `{:#}`,
/// eyre) print each message once, and walking `source()` reaches the underlying error (the
/// hyper or `std::io::Error` of a refused connection, say).
///
/// ```
/// use tower_oauth2::{source_fn, Error, ErrorCode, Token, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = source_fn(|| async {
///     Err::<Token, _>(Error::HttpStatus {
///         status: http::StatusCode::SERVICE_UNAVAILABLE,
///         retry_after: Some(std::time::Duration::from_secs(5)),
///     })
/// });
/// let err = source.fetch_token().await.unwrap_err();
/// assert!(err.is_transient());
/// assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(5)));
/// assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
/// assert_eq!(err.code(), None::<&ErrorCode>);
/// assert_eq!(
///     err.to_string(),
///     "the authorization server answered HTTP 503 Service Unavailable without an OAuth 2.0 error body"
/// );
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The authorization server answered with an OAuth 2.0 error response (RFC 6749 §5.2),
    /// whatever the HTTP status (some servers send errors with HTTP 200).
    OAuth2 {
        /// The HTTP status of the error response.
        status: StatusCode,
        /// The `error`, `error_description` and `error_uri` the server sent.
        error: ServerError,
        /// The delay the server asked for in a `Retry-After` header; see
        /// [`Error::retry_after`].
        retry_after: Option<Duration>,
    },
    /// The authorization server answered with an HTTP error status and no OAuth 2.0 error body
    /// (a proxy's 502 page, for example).
    HttpStatus {
        /// The HTTP status.
        status: StatusCode,
        /// The delay the server asked for in a `Retry-After` header; see
        /// [`Error::retry_after`].
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or the response could not be read (DNS, connection
    /// refused, TLS, connection reset, ...), including a response body cut short (the
    /// connection closed before its `Content-Length` or its last chunk). Always transient.
    /// The transport's error is the [source](std::error::Error::source).
    Transport(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The authorization server did not answer in time.
    Timeout(Duration),
    /// The response body was larger than the configured limit.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The response could not be understood: not JSON or form data, a required field is
    /// missing, empty or has the wrong type, or an `access_token` has characters that cannot
    /// be sent in an HTTP header. The body was complete: a body cut short is
    /// [`Error::Transport`].
    MalformedResponse {
        /// The HTTP status of the response.
        status: StatusCode,
        /// What was wrong, never including the body itself.
        reason: String,
    },
    /// The server issued a token of a type other than `Bearer` (RFC 6750), which this crate
    /// would not know how to present. The type is made safe to print like
    /// [`ServerError`]'s text.
    UnsupportedTokenType(String),
    /// The device code expired before the user approved the request (RFC 8628 §3.5), detected
    /// by the client's own clock.
    DeviceCodeExpired,
    /// The crate was configured with an invalid value (a malformed URL, say).
    Config(String),
    /// An endpoint URL (token endpoint, device authorization endpoint, ...) is plain `http` on
    /// a host that is not loopback, so the client's credentials and the tokens would cross the
    /// network in clear text. RFC 6749 §3.2 requires TLS at the token endpoint (and RFC 9700
    /// §2.6 on every endpoint); only `127.0.0.0/8`, `::1`, `localhost` and `*.localhost` may use
    /// `http`. Refused when the endpoint is built, before anything is sent; a test rig can opt
    /// out with
    /// [`TokenEndpointBuilder::dangerous_allow_insecure_http`](crate::TokenEndpointBuilder::dangerous_allow_insecure_http).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, TokenEndpoint};
    ///
    /// let err = TokenEndpoint::new("http://me:pw@auth.example.com/token?x=1", ClientAuth::none("cli"))
    ///     .unwrap_err();
    /// assert!(matches!(&err, Error::InsecureUrl { url } if url == "http://auth.example.com/token"));
    /// ```
    InsecureUrl {
        /// The URL as refused, without credentials, query or fragment.
        url: String,
    },
    /// A user-supplied [`TokenSource`](crate::TokenSource) failed; its error is the
    /// [source](std::error::Error::source).
    Source(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The grant is gone for good: the authorization server refused its refresh token
    /// (`invalid_grant`, `invalid_client` or `unauthorized_client`), and new credentials are
    /// needed (the user must log in again, or the client must be reconfigured). Retrying with
    /// the same grant cannot succeed.
    ///
    /// The cache drops its token when a refresh fails this way, and the application is told
    /// through its hook. The server's answer is the [source](std::error::Error::source);
    /// [`code`](Error::code), [`status`](Error::status),
    /// [`server_error`](Error::server_error) and [`retry_after`](Error::retry_after) read it.
    ///
    /// ```
    /// # fn check(err: &tower_oauth2::Error) {
    /// if err.is_grant_lost() {
    ///     eprintln!("please log in again ({:?})", err.code());
    /// }
    /// # }
    /// ```
    GrantLost(Arc<Error>),
    /// Not a token error: the service wrapped by the layer (or a layer stacked with it, such as
    /// a timeout) failed. Made by the conversion from [`BoxError`] (`?` on a layered
    /// service's error), which keeps a token error as it is and wraps anything else here; the
    /// service's error is the [source](std::error::Error::source). Never transient by this
    /// crate's judgement: inspect the source to decide.
    ///
    /// ```
    /// use tower_oauth2::{BoxError, Error};
    ///
    /// let token_error: BoxError = Box::new(Error::DeviceCodeExpired);
    /// assert!(matches!(Error::from(token_error), Error::DeviceCodeExpired));
    ///
    /// let other: BoxError = "connection refused".into();
    /// let err = Error::from(other);
    /// assert!(matches!(err, Error::Service(_)));
    /// assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "connection refused");
    /// ```
    Service(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// A layer bound to resources ([`OAuth2Layer::for_resources`](crate::OAuth2Layer::for_resources),
    /// or a router) with [`OtherResources::Fail`](crate::OtherResources::Fail) refused a request
    /// for none of them; it was not sent. `origin` is the request's scheme, host and port (never
    /// its path or query).
    ///
    /// ```
    /// let err = tower_oauth2::Error::NotForThisResource { origin: "https://elsewhere.example".into() };
    /// assert!(!err.is_transient());
    /// assert!(err.to_string().contains("https://elsewhere.example"));
    /// ```
    NotForThisResource {
        /// The request's origin.
        origin: String,
    },
    /// The [`OAuth2Client`](crate::OAuth2Client) has no URL for the endpoint a call needs: it
    /// was not given to the builder and the discovery document does not name it. `endpoint`
    /// is the metadata name without `_endpoint` (`revocation`, `introspection`, `userinfo`,
    /// `device_authorization`, `token`, ...).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let err = client.device_code().unwrap_err();
    /// assert!(matches!(err, Error::NoEndpoint { endpoint: "device_authorization" }));
    /// assert!(!err.is_transient());
    /// # Ok::<(), Error>(())
    /// ```
    NoEndpoint {
        /// The endpoint's name, as in the metadata without `_endpoint`.
        endpoint: &'static str,
    },
    /// Discovery (RFC 8414, OpenID Connect Discovery) found a document the client cannot use:
    /// see [`DiscoveryError`](crate::DiscoveryError). HTTP failures, bodies that are not JSON
    /// and oversize bodies are the usual [`Error::HttpStatus`], [`Error::MalformedResponse`]
    /// and [`Error::BodyTooLarge`].
    ///
    /// ```
    /// use tower_oauth2::{DiscoveryError, Error, ServerMetadata};
    ///
    /// let document = r#"{"issuer":"https://evil.example.com","token_endpoint":"https://evil.example.com/token"}"#;
    /// let err = ServerMetadata::from_json("https://auth.example.com", document).unwrap_err();
    /// assert!(matches!(err, Error::Discovery(DiscoveryError::IssuerMismatch { .. })));
    /// ```
    Discovery(crate::endpoint::discovery::DiscoveryError),
    /// The OpenID Connect userinfo endpoint answered with a signed (or encrypted) JWT
    /// (`Content-Type: application/jwt`, OIDC Core §5.3.2), which this crate cannot verify:
    /// register the client without `userinfo_signed_response_alg` to get plain JSON.
    ///
    /// ```
    /// let err = tower_oauth2::Error::SignedUserInfoUnsupported;
    /// assert!(err.to_string().contains("application/jwt"));
    /// ```
    SignedUserInfoUnsupported,
    /// The userinfo response is about another user than the ID token the access token came
    /// with: its `sub` differs from the ID token's (OpenID Connect Core §5.3.2, a defence
    /// against token substitution). The response must not be used.
    ///
    /// ```
    /// let err = tower_oauth2::Error::UserInfoSubjectMismatch;
    /// assert!(err.to_string().contains("ID token"));
    /// assert!(!err.is_transient());
    /// ```
    UserInfoSubjectMismatch,
    /// A JWT could not be made (feature `jwt`): a signing key or a service-account key file
    /// could not be read, or signing a client assertion or a JWT bearer grant failed. Never
    /// contains key material. See [`JwtError`](crate::JwtError).
    ///
    /// ```
    /// use tower_oauth2::{Error, JwsAlgorithm, JwtSigningKey};
    ///
    /// let err = JwtSigningKey::from_pem("not a key", JwsAlgorithm::ES256).unwrap_err();
    /// assert!(matches!(err, Error::Jwt(_)));
    /// assert!(!err.is_transient());
    /// ```
    #[cfg(feature = "jwt")]
    Jwt(crate::client_auth::JwtError),
    /// An ID token was refused (feature `jwt`): its signature, algorithm or claims failed a
    /// check of [`OAuth2Client::verify_id_token`](crate::OAuth2Client::verify_id_token); see
    /// [`IdTokenError`](crate::IdTokenError). Never contains the token or the nonce. Not
    /// transient: the same token fails again. A failure to fetch the server's key set is not
    /// this variant but the transport or HTTP error itself ([`Error::HttpStatus`],
    /// [`Error::Timeout`], ...), transient as those are.
    ///
    /// ```
    /// use tower_oauth2::{Error, IdTokenError};
    ///
    /// let err = Error::IdToken(IdTokenError::NonceMismatch);
    /// assert!(!err.is_transient());
    /// assert!(err.to_string().contains("nonce"));
    /// ```
    #[cfg(feature = "jwt")]
    IdToken(crate::id_token::IdTokenError),
    /// The redirect back from the authorization server was refused before any code exchange:
    /// the server sent an error (`access_denied`: [`Error::code`] gives it), or the `state` or
    /// the `iss` is wrong. See [`CallbackError`](crate::CallbackError).
    ///
    /// ```
    /// use tower_oauth2::{Callback, CallbackError, ClientAuth, Error, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .authorization_url("https://auth.example.com/authorize")
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let (_url, pending) = client.authorization_request("http://127.0.0.1/cb").build()?.into_parts();
    /// let err = pending.verify(&Callback::from_query("code=abc")).unwrap_err();
    /// assert!(matches!(err, Error::Callback(CallbackError::MissingState)));
    /// assert!(!err.is_transient());
    /// # Ok::<(), Error>(())
    /// ```
    Callback(crate::grant::authorization_code::CallbackError),
    /// The user's login ([`Login::into_layer`](crate::Login::into_layer)) gave no refresh
    /// token and its access token has expired: the user must log in again.
    ///
    /// ```
    /// let err = tower_oauth2::Error::LoginExpired;
    /// assert!(err.to_string().contains("log in again"));
    /// assert!(!err.is_transient());
    /// ```
    LoginExpired,
}

/// `?` on the error of an [`OAuth2`](crate::OAuth2) service (a [`BoxError`]): a token error
/// comes back as itself, anything else as [`Error::Service`].
impl From<BoxError> for Error {
    fn from(err: BoxError) -> Self {
        match err.downcast::<Error>() {
            Ok(token_error) => *token_error,
            Err(other) => Error::Service(Arc::from(other)),
        }
    }
}

impl Error {
    /// Wraps the error of a user-supplied token source.
    ///
    /// It is transient, and has a [`retry_after`](Error::retry_after), if `err` is an `Error`
    /// that has.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, Error, Token};
    ///
    /// let source = source_fn(|| async {
    ///     let value = std::fs::read_to_string("/run/secrets/token").map_err(Error::source_error)?;
    ///     Ok(Token::bearer(value.trim()))
    /// });
    /// # let _ = source;
    /// let err = Error::source_error(std::io::Error::other("no such file"));
    /// assert!(matches!(err, Error::Source(_)));
    /// assert!(!err.is_transient());
    /// ```
    pub fn source_error(err: impl Into<BoxError>) -> Self {
        Error::Source(Arc::from(err.into()))
    }

    /// Wraps a transport error.
    ///
    /// Always [transient](Error::is_transient). For an [`HttpClient`](crate::HttpClient)
    /// of your own whose errors need no more than a message.
    ///
    /// ```
    /// use tower_oauth2::Error;
    ///
    /// let err = Error::transport(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    /// assert!(err.is_transient());
    /// assert_eq!(err.to_string(), "could not get a response from the authorization server");
    /// ```
    pub fn transport(err: impl Into<BoxError>) -> Self {
        Error::Transport(Arc::from(err.into()))
    }

    /// Marks `cause` (the server's refusal of a refresh token) as the loss of the grant.
    #[allow(dead_code, reason = "used by the cache and the refresh-token source")]
    pub(crate) fn grant_lost(cause: Error) -> Error {
        match cause {
            lost @ Error::GrantLost(_) => lost,
            cause => Error::GrantLost(Arc::new(cause)),
        }
    }

    /// The error under a [`GrantLost`](Error::GrantLost), or the error itself.
    fn cause(&self) -> &Error {
        match self {
            Error::GrantLost(cause) => cause.cause(),
            other => other,
        }
    }

    /// The HTTP status of the authorization server's response, if there was one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use tower_oauth2::Error;
    ///
    /// let err = Error::HttpStatus { status: StatusCode::BAD_GATEWAY, retry_after: None };
    /// assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
    /// assert_eq!(Error::Timeout(Duration::from_secs(30)).status(), None);
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self.cause() {
            Error::OAuth2 { status, .. }
            | Error::HttpStatus { status, .. }
            | Error::MalformedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The OAuth 2.0 error the server sent, if any.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_oauth2::{Error, ErrorCode, ServerError};
    ///
    /// let err = Error::OAuth2 {
    ///     status: StatusCode::BAD_REQUEST,
    ///     error: ServerError::new(ErrorCode::InvalidScope),
    ///     retry_after: None,
    /// };
    /// assert_eq!(err.server_error().map(|e| &e.code), Some(&ErrorCode::InvalidScope));
    /// assert!(Error::DeviceCodeExpired.server_error().is_none());
    /// ```
    pub fn server_error(&self) -> Option<&ServerError> {
        match self.cause() {
            Error::OAuth2 { error, .. } => Some(error),
            Error::Callback(crate::grant::authorization_code::CallbackError::Server(error)) => Some(error),
            _ => None,
        }
    }

    /// The OAuth 2.0 error code the server sent, if any.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_oauth2::{Error, ErrorCode, ServerError};
    ///
    /// let err = Error::OAuth2 {
    ///     status: StatusCode::UNAUTHORIZED,
    ///     error: ServerError::new(ErrorCode::from("invalid_client")),
    ///     retry_after: None,
    /// };
    /// assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
    /// ```
    pub fn code(&self) -> Option<&ErrorCode> {
        self.server_error().map(|e| &e.code)
    }

    /// How long the authorization server asked the client to wait before trying again: the
    /// `Retry-After` header of its error response (RFC 9110 §10.2.3), sent mostly with HTTP 429
    /// and 503.
    ///
    /// Both forms are read: delta-seconds (`Retry-After: 120`) and an HTTP-date
    /// (`Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`), the latter turned into a delay with the
    /// endpoint's [`Clock`](crate::clock::Clock) at the moment the response was read, a date in
    /// the past being a zero delay. A value that is neither is ignored, and delays are capped
    /// at 24 hours. An [`Error::Source`] that wraps an `Error` and an
    /// [`Error::GrantLost`] answer for the error inside.
    ///
    /// The crate's own retries (the cache's backoff, device-code polling) wait at least this
    /// long; use it in your own retry policies too.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use tower_oauth2::Error;
    ///
    /// fn next_attempt_in(err: &Error, backoff: Duration) -> Option<Duration> {
    ///     if !err.is_transient() {
    ///         return None;
    ///     }
    ///     Some(err.retry_after().map_or(backoff, |asked| asked.max(backoff)))
    /// }
    ///
    /// let busy = Error::HttpStatus {
    ///     status: StatusCode::TOO_MANY_REQUESTS,
    ///     retry_after: Some(Duration::from_secs(30)),
    /// };
    /// assert_eq!(busy.retry_after(), Some(Duration::from_secs(30)));
    /// assert_eq!(next_attempt_in(&busy, Duration::from_secs(1)), Some(Duration::from_secs(30)));
    /// assert_eq!(Error::source_error(busy).retry_after(), Some(Duration::from_secs(30)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self.cause() {
            Error::OAuth2 { retry_after, .. } | Error::HttpStatus { retry_after, .. } => *retry_after,
            Error::Source(err) => err.downcast_ref::<Error>().and_then(Error::retry_after),
            _ => None,
        }
    }

    /// Whether the grant is gone for good and new credentials are needed: an
    /// [`Error::GrantLost`], directly or inside an [`Error::Source`].
    ///
    /// ```
    /// use tower_oauth2::Error;
    ///
    /// assert!(!Error::DeviceCodeExpired.is_grant_lost());
    /// ```
    pub fn is_grant_lost(&self) -> bool {
        match self {
            Error::GrantLost(_) => true,
            Error::Source(err) => err.downcast_ref::<Error>().is_some_and(Error::is_grant_lost),
            _ => false,
        }
    }

    /// Whether trying again later may succeed: timeouts, transport failures (including a
    /// response body cut short), HTTP 5xx and 429, and the codes `temporarily_unavailable`,
    /// `server_error`, `authorization_pending` and `slow_down` are transient; `invalid_client`,
    /// `invalid_grant` and every other error the server chose to send, malformed responses,
    /// configuration errors and a lost grant ([`Error::GrantLost`]) are not. An
    /// [`Error::Source`] is transient if it wraps a transient `Error`.
    ///
    /// ```
    /// use tower_oauth2::Error;
    /// use std::time::Duration;
    ///
    /// assert!(Error::Timeout(Duration::from_secs(30)).is_transient());
    /// let bad_gateway = Error::HttpStatus { status: http::StatusCode::BAD_GATEWAY, retry_after: None };
    /// assert!(bad_gateway.is_transient());
    /// assert!(!Error::DeviceCodeExpired.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) | Error::Timeout(_) => true,
            Error::HttpStatus { status, .. } | Error::MalformedResponse { status, .. } => {
                transient_status(*status)
            }
            Error::OAuth2 { status, error, .. } => match error.code {
                ErrorCode::TemporarilyUnavailable
                | ErrorCode::ServerError
                | ErrorCode::AuthorizationPending
                | ErrorCode::SlowDown => true,
                ErrorCode::Other(_) => transient_status(*status),
                _ => false,
            },
            Error::Source(err) => err
                .downcast_ref::<Error>()
                .is_some_and(|inner| inner.is_transient()),
            Error::BodyTooLarge { .. }
            | Error::UnsupportedTokenType(_)
            | Error::DeviceCodeExpired
            | Error::Config(_)
            | Error::InsecureUrl { .. }
            | Error::GrantLost(_)
            | Error::Service(_)
            | Error::NotForThisResource { .. } => false,
            Error::NoEndpoint { .. }
            | Error::Discovery(_)
            | Error::SignedUserInfoUnsupported
            | Error::UserInfoSubjectMismatch => false,
            #[cfg(feature = "jwt")]
            Error::Jwt(_) => false,
            #[cfg(feature = "jwt")]
            Error::IdToken(_) => false,
            Error::Callback(_) | Error::LoginExpired => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OAuth2 { status, error, .. } => {
                write!(f, "the authorization server answered HTTP {status} with {error}")
            }
            Error::HttpStatus { status, .. } => write!(
                f,
                "the authorization server answered HTTP {status} without an OAuth 2.0 error body"
            ),
            Error::Transport(cause) => match cause.downcast_ref::<BodyReadError>() {
                Some(body) => fmt::Display::fmt(body, f),
                None => f.write_str("could not get a response from the authorization server"),
            },
            Error::Timeout(limit) => write!(f, "the authorization server did not answer within {limit:?}"),
            Error::BodyTooLarge { limit } => write!(
                f,
                "the authorization server's response is larger than the {limit}-byte limit"
            ),
            Error::MalformedResponse { status, reason } => write!(
                f,
                "malformed response from the authorization server (HTTP {status}): {reason}"
            ),
            Error::UnsupportedTokenType(token_type) => {
                f.write_str("the authorization server issued a token of type `")?;
                write_escaped(f, token_type)?;
                f.write_str("`; only Bearer is supported")
            }
            Error::DeviceCodeExpired => {
                f.write_str("the device code expired before the user approved the request")
            }
            Error::Config(what) => write!(f, "invalid configuration: {what}"),
            Error::InsecureUrl { url } => write!(
                f,
                "the endpoint URL {url} is not https: OAuth 2.0 endpoints need TLS (RFC 6749 §3.2), \
                 plain http is allowed on loopback hosts only"
            ),
            Error::Source(_) => f.write_str("the token source failed"),
            Error::GrantLost(_) => {
                f.write_str("the authorization grant is no longer valid; new credentials are needed")
            }
            Error::Service(_) => f.write_str("the wrapped service failed"),
            Error::NotForThisResource { origin } => {
                f.write_str("not sent: the request to ")?;
                write_escaped(f, origin)?;
                f.write_str(" is for none of the resources the token is bound to")
            }
            Error::NoEndpoint { endpoint } => write!(
                f,
                "the authorization server has no {endpoint} endpoint: none was configured and \
                 the discovery document names none"
            ),
            Error::Discovery(err) => fmt::Display::fmt(err, f),
            Error::SignedUserInfoUnsupported => f.write_str(
                "the userinfo endpoint answered with a signed JWT (application/jwt); verifying \
                 signed userinfo is not supported: register the client for JSON userinfo",
            ),
            Error::UserInfoSubjectMismatch => f.write_str(
                "the userinfo response's `sub` is not the ID token's (OIDC Core §5.3.2): it is \
                 about another user and must not be used",
            ),
            #[cfg(feature = "jwt")]
            Error::Jwt(err) => fmt::Display::fmt(err, f),
            #[cfg(feature = "jwt")]
            Error::IdToken(err) => fmt::Display::fmt(err, f),
            Error::Callback(err) => fmt::Display::fmt(err, f),
            Error::LoginExpired => f.write_str(
                "the user's access token has expired and the login gave no refresh token: log in again",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The crate's own wrapper says its part in `Display`; its cause comes next.
            Error::Transport(cause) => match cause.downcast_ref::<BodyReadError>() {
                Some(body) => body.source(),
                None => Some(&**cause),
            },
            Error::Source(cause) => Some(&**cause),
            Error::GrantLost(cause) => Some(&**cause),
            Error::Service(cause) => Some(&**cause),
            _ => None,
        }
    }
}

/// The cause of an [`Error::Transport`] that happened after the response head arrived, while
/// its body was being read. `Error::Transport` shows this error's message as its own and
/// continues the chain with its cause.
#[derive(Debug)]
pub(crate) struct BodyReadError {
    /// The body ended before it was complete: the connection closed before the announced
    /// `Content-Length` or the last chunk.
    incomplete: bool,
    cause: Option<BoxError>,
}

impl BodyReadError {
    /// The body stream failed with `cause`.
    pub(crate) fn from_cause(cause: BoxError) -> Self {
        BodyReadError {
            incomplete: is_unexpected_eof(&*cause),
            cause: Some(cause),
        }
    }

    /// The body ended, without an error, short of its `Content-Length`.
    pub(crate) fn incomplete() -> Self {
        BodyReadError {
            incomplete: true,
            cause: None,
        }
    }
}

/// Whether an `io::Error` of kind `UnexpectedEof` is in the chain: how hyper (and so reqwest)
/// reports a connection closed before the end of a `Content-Length` or chunked body.
fn is_unexpected_eof(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut level = Some(err);
    while let Some(err) = level {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        level = err.source();
    }
    false
}

impl fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.incomplete {
            "the connection closed before the response body was complete"
        } else {
            "reading the authorization server's response body failed"
        })
    }
}

impl std::error::Error for BodyReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The most characters of server-supplied text kept in an error (after escaping); longer text
/// is cut on a character boundary and ends with `…`.
pub(crate) const MAX_SERVER_TEXT: usize = 300;

/// Makes text from the authorization server safe to print: control characters (newlines,
/// terminal escape sequences, ...) and invisible or direction-changing format characters are
/// escaped as `\n`, `\r`, `\t` or `\u{..}`, and the result is cut to [`MAX_SERVER_TEXT`]
/// characters.
pub(crate) fn sanitize_server_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SERVER_TEXT + 8));
    let mut kept = 0;
    for c in text.chars() {
        let piece = Escaped(c).to_string();
        let len = piece.chars().count();
        if kept + len > MAX_SERVER_TEXT {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        kept += len;
    }
    out
}

/// Writes `text` with the characters [`sanitize_server_text`] escapes escaped (idempotent:
/// escaped text has none left).
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    text.chars().try_for_each(|c| fmt::Display::fmt(&Escaped(c), f))
}

/// An error with its causes, for log fields: `error: cause: cause`, each cause escaped and
/// cut like server text, at most eight levels deep. `Display` alone says only the error's own
/// part (the chain is for reporters that walk `source()`); a log line has to say it all.
pub(crate) struct Report<'a>(&'a Error);

impl Error {
    /// This error and its causes, for a log field.
    pub(crate) fn report(&self) -> Report<'_> {
        Report(self)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)?;
        let mut cause = std::error::Error::source(self.0);
        for _ in 0..8 {
            let Some(error) = cause else { break };
            f.write_str(": ")?;
            f.write_str(&sanitize_server_text(&error.to_string()))?;
            cause = error.source();
        }
        Ok(())
    }
}

/// Shows a character as itself, or escaped if printing it raw could forge or hide text:
/// control characters (C0, DEL, C1) and invisible or direction-changing format characters.
struct Escaped(char);

impl fmt::Display for Escaped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        match self.0 {
            '\n' => f.write_str("\\n"),
            '\r' => f.write_str("\\r"),
            '\t' => f.write_str("\\t"),
            c if c.is_control()
                || matches!(c,
                    '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
                    | '\u{2060}'..='\u{2069}' | '\u{FEFF}') =>
            {
                write!(f, "\\u{{{:x}}}", u32::from(c))
            }
            c => f.write_char(c),
        }
    }
}

fn transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Reads a `Retry-After` header (RFC 9110 §10.2.3) as a delay from `now`: delta-seconds or an
/// HTTP-date (a past date is zero), capped at `MAX_RETRY_AFTER`; `None` if absent or garbage.
pub(crate) fn parse_retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too many for a u64 is still a (very long) delay.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The body of an OAuth 2.0 error response (RFC 6749 §5.2).
///
/// The text the server sent is stored made safe to print, when the response is read, so that
/// no `Display`, `Debug` or log field downstream can show it raw:
/// - a secret the request carried (client secret, refresh token, device code, authorization
///   code, PKCE verifier, password, assertions, token-exchange tokens) that the server echoes
///   is replaced with `[redacted]`, also in its form-urlencoded spellings;
/// - control characters (newlines, terminal escape sequences, DEL) and invisible or
///   direction-changing format characters are escaped as `\n`, `\r`, `\t` or `\u{..}`;
/// - each field is cut to 300 characters, on a character boundary, ending with `…`.
///
/// `Display` escapes control characters again, for a `ServerError` built by hand.
///
/// ```
/// use tower_oauth2::{ErrorCode, ServerError};
///
/// let mut error = ServerError::new(ErrorCode::InvalidRequest);
/// error.description = Some("bad\nrequest".to_owned());
/// assert_eq!(error.to_string(), "`invalid_request`: bad\\nrequest");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerError {
    /// The `error` code.
    pub code: ErrorCode,
    /// The `error_description`, human-readable text from the server (made safe to print).
    pub description: Option<String>,
    /// The `error_uri`, a page about the error (made safe to print).
    pub uri: Option<String>,
}

impl ServerError {
    /// An error response with just a code.
    ///
    /// ```
    /// use tower_oauth2::{ErrorCode, ServerError};
    ///
    /// let error = ServerError::new(ErrorCode::AccessDenied);
    /// assert_eq!(error.to_string(), "`access_denied`");
    /// assert_eq!(error.description, None);
    /// ```
    pub fn new(code: ErrorCode) -> Self {
        ServerError {
            code,
            description: None,
            uri: None,
        }
    }
}

/// Shows the code, description and URI with control and invisible characters escaped, even in
/// a `ServerError` built by hand.
impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        write_escaped(f, self.code.as_str())?;
        f.write_str("`")?;
        if let Some(description) = &self.description {
            f.write_str(": ")?;
            write_escaped(f, description)?;
        }
        if let Some(uri) = &self.uri {
            f.write_str(" (see ")?;
            write_escaped(f, uri)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// An OAuth 2.0 `error` code. Codes this crate has no name for are kept as
/// [`ErrorCode::Other`].
///
/// ```
/// use tower_oauth2::ErrorCode;
///
/// assert_eq!(ErrorCode::from("invalid_grant"), ErrorCode::InvalidGrant);
/// assert_eq!(ErrorCode::from("consent_required").as_str(), "consent_required");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request` (RFC 6749 §5.2).
    InvalidRequest,
    /// `invalid_client` (RFC 6749 §5.2): client authentication failed.
    InvalidClient,
    /// `invalid_grant` (RFC 6749 §5.2): the grant or refresh token is invalid, expired or revoked.
    InvalidGrant,
    /// `unauthorized_client` (RFC 6749 §5.2).
    UnauthorizedClient,
    /// `unsupported_grant_type` (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// `invalid_scope` (RFC 6749 §5.2).
    InvalidScope,
    /// `server_error` (RFC 6749 §4.1.2.1).
    ServerError,
    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1).
    TemporarilyUnavailable,
    /// `authorization_pending` (RFC 8628 §3.5): the user has not approved the device yet.
    AuthorizationPending,
    /// `slow_down` (RFC 8628 §3.5): poll less often.
    SlowDown,
    /// `access_denied` (RFC 8628 §3.5): the user refused.
    AccessDenied,
    /// `expired_token` (RFC 8628 §3.5): the device code expired.
    ExpiredToken,
    /// `invalid_target` (RFC 8707 §2): a `resource` value was refused.
    InvalidTarget,
    /// `invalid_token` (RFC 6750 §3.1): a resource server (the userinfo endpoint, say) refused
    /// the access token: expired, revoked or malformed.
    InvalidToken,
    /// `unsupported_token_type` (RFC 7009 §2.2.1): the server cannot revoke tokens of this type.
    UnsupportedTokenType,
    /// Any other code, as the server sent it (made safe to print, like [`ServerError`]'s text).
    Other(String),
}

impl ErrorCode {
    /// The code as it appears on the wire.
    ///
    /// ```
    /// use tower_oauth2::ErrorCode;
    ///
    /// assert_eq!(ErrorCode::SlowDown.as_str(), "slow_down");
    /// assert_eq!(ErrorCode::Other("mfa_required".to_owned()).as_str(), "mfa_required");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::Other(code) => code,
        }
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        match code {
            "invalid_request" => ErrorCode::InvalidRequest,
            "invalid_client" => ErrorCode::InvalidClient,
            "invalid_grant" => ErrorCode::InvalidGrant,
            "unauthorized_client" => ErrorCode::UnauthorizedClient,
            "unsupported_grant_type" => ErrorCode::UnsupportedGrantType,
            "invalid_scope" => ErrorCode::InvalidScope,
            "server_error" => ErrorCode::ServerError,
            "temporarily_unavailable" => ErrorCode::TemporarilyUnavailable,
            "authorization_pending" => ErrorCode::AuthorizationPending,
            "slow_down" => ErrorCode::SlowDown,
            "access_denied" => ErrorCode::AccessDenied,
            "expired_token" => ErrorCode::ExpiredToken,
            "invalid_target" => ErrorCode::InvalidTarget,
            "invalid_token" => ErrorCode::InvalidToken,
            "unsupported_token_type" => ErrorCode::UnsupportedTokenType,
            other => ErrorCode::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_report_says_every_level_once_escaped() {
        let err = Error::source_error(Error::transport(std::io::Error::other("reset\nby peer")));
        let report = err.report().to_string();
        assert_eq!(
            report,
            format!("{err}: could not get a response from the authorization server: reset\\nby peer")
        );
        assert!(!report.contains('\n'));
    }

    fn headers(retry_after: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(retry_after).unwrap(),
        );
        headers
    }

    fn oauth2(code: &str, retry_after: Option<Duration>) -> Error {
        Error::OAuth2 {
            status: StatusCode::BAD_REQUEST,
            error: ServerError::new(ErrorCode::from(code)),
            retry_after,
        }
    }

    #[test]
    fn error_is_clone_send_sync_static() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn retry_after_delta_seconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let read = |v: &str| parse_retry_after(&headers(v), now);
        assert_eq!(read("2"), Some(Duration::from_secs(2)));
        assert_eq!(read(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(read("0"), Some(Duration::ZERO));
        assert_eq!(read("86401"), Some(MAX_RETRY_AFTER));
        assert_eq!(read("99999999999999999999999999"), Some(MAX_RETRY_AFTER));
        for garbage in ["", "-1", "1.5", "soon", "2 s", "+3", "0x10"] {
            assert_eq!(read(garbage), None, "{garbage:?}");
        }
        assert_eq!(parse_retry_after(&http::HeaderMap::new(), now), None);
    }

    #[test]
    fn retry_after_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let read = |v: &str| parse_retry_after(&headers(v), now);
        let in_40s = httpdate::fmt_http_date(now + Duration::from_secs(40));
        assert_eq!(read(&in_40s), Some(Duration::from_secs(40)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(40));
        assert_eq!(read(&past), Some(Duration::ZERO));
        let next_year = httpdate::fmt_http_date(now + Duration::from_secs(365 * 86400));
        assert_eq!(read(&next_year), Some(MAX_RETRY_AFTER));
        // The obsolete forms RFC 9110 still asks recipients to accept.
        let t = httpdate::fmt_http_date(now + Duration::from_secs(5));
        let t: httpdate::HttpDate = t.parse().unwrap();
        assert_eq!(SystemTime::from(t), now + Duration::from_secs(5));
        assert_eq!(read("Sun Nov  6 08:49:37 1994"), Some(Duration::ZERO));
        assert_eq!(read("Sunday, 06-Nov-94 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(read("Thu, 32 Jan 2030 00:00:00 GMT"), None);
    }

    #[test]
    fn retry_after_of_each_variant() {
        let wait = Some(Duration::from_secs(7));
        let status = Error::HttpStatus {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: wait,
        };
        assert_eq!(status.retry_after(), wait);
        assert_eq!(oauth2("slow_down", wait).retry_after(), wait);
        assert_eq!(Error::source_error(status.clone()).retry_after(), wait);
        assert_eq!(Error::source_error("plain text").retry_after(), None);
        assert_eq!(Error::Timeout(Duration::from_secs(1)).retry_after(), None);
        assert_eq!(Error::grant_lost(status).retry_after(), wait);
    }

    #[test]
    fn grant_lost_delegates_to_its_cause() {
        let cause = oauth2("invalid_grant", None);
        let lost = Error::grant_lost(cause.clone());
        assert!(lost.is_grant_lost());
        assert!(!cause.is_grant_lost());
        assert!(!lost.is_transient());
        assert_eq!(lost.code(), Some(&ErrorCode::InvalidGrant));
        assert_eq!(lost.status(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(lost.server_error(), cause.server_error());
        // A transient cause does not make a lost grant transient.
        assert!(!Error::grant_lost(oauth2("server_error", None)).is_transient());
        // Not nested twice.
        let again = Error::grant_lost(lost.clone());
        assert!(matches!(&again, Error::GrantLost(inner) if !inner.is_grant_lost()));
        assert!(Error::source_error(lost.clone()).is_grant_lost());

        // Its message is its own part; the cause is the source.
        let message = lost.to_string();
        assert!(!message.contains("invalid_grant"), "{message}");
        let source = lost.source().expect("the cause is the source");
        assert_eq!(source.to_string(), cause.to_string());
        assert!(source.downcast_ref::<Error>().is_some());
    }

    #[test]
    fn server_text_is_escaped_and_capped() {
        assert_eq!(
            sanitize_server_text("plain text, ünïcode ok"),
            "plain text, ünïcode ok"
        );
        assert_eq!(
            sanitize_server_text("a\nb\r\tc\u{1b}[31md\u{7f}e\u{9b}f\u{202e}g\u{0}"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}e\\u{9b}f\\u{202e}g\\u{0}"
        );
        let long = "é".repeat(1000);
        let cut = sanitize_server_text(&long);
        assert_eq!(cut.chars().count(), MAX_SERVER_TEXT + 1);
        assert!(cut.ends_with("é…"));
        // An escape is never cut in half.
        let edge = format!("{}\u{1b}", "x".repeat(MAX_SERVER_TEXT - 2));
        assert_eq!(
            sanitize_server_text(&edge),
            format!("{}…", "x".repeat(MAX_SERVER_TEXT - 2))
        );
        // Exactly at the limit: kept whole.
        let exact = "y".repeat(MAX_SERVER_TEXT);
        assert_eq!(sanitize_server_text(&exact), exact);
    }

    #[test]
    fn display_escapes_server_text_built_by_hand() {
        let error = ServerError {
            code: ErrorCode::from("bad\ncode"),
            description: Some("line\nforged".to_owned()),
            uri: Some("https://x/\u{1b}]8;;".to_owned()),
        };
        let shown = error.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(shown, "`bad\\ncode`: line\\nforged (see https://x/\\u{1b}]8;;)");
        // Escaping is idempotent: sanitized text shows as stored.
        let stored = sanitize_server_text("a\nb");
        let mut again = ServerError::new(ErrorCode::InvalidRequest);
        again.description = Some(stored.clone());
        assert_eq!(again.to_string(), format!("`invalid_request`: {stored}"));
        let unsupported = Error::UnsupportedTokenType("mac\r\nX".to_owned()).to_string();
        assert!(!unsupported.chars().any(char::is_control), "{unsupported}");
    }
}
