//! The crate's error type, including OAuth 2.0 error responses: RFC 6749 §5.2, the device
//! flow's codes from RFC 8628 §3.5, and RFC 8707's `invalid_target`.
//!
//! ```
//! use tower_oauth2::{Error, ErrorCode};
//!
//! fn explain(err: &Error) -> &'static str {
//!     match err.code() {
//!         Some(ErrorCode::InvalidClient) => "check the client id and secret",
//!         Some(ErrorCode::InvalidGrant) => "the refresh token is gone: log in again",
//!         _ if err.is_transient() => "try again later",
//!         _ => "give up",
//!     }
//! }
//! # let _ = explain;
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// A boxed error from a transport or a user-supplied token source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when getting a token.
///
/// Cheap to clone, so that every request waiting on one shared token refresh can get the same
/// error. No variant ever contains a secret: server-supplied text is limited to the standard
/// `error`, `error_description` and `error_uri` fields.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authorization server answered with an OAuth 2.0 error response (RFC 6749 §5.2),
    /// whatever the HTTP status (some servers send errors with HTTP 200).
    #[error("the authorization server answered HTTP {status} with {error}")]
    OAuth2 {
        /// The HTTP status of the error response.
        status: StatusCode,
        /// The `error`, `error_description` and `error_uri` the server sent.
        error: ServerError,
    },
    /// The authorization server answered with an HTTP error status and no OAuth 2.0 error body
    /// (a proxy's 502 page, for example).
    #[error("the authorization server answered HTTP {status} without an OAuth 2.0 error body")]
    HttpStatus {
        /// The HTTP status.
        status: StatusCode,
    },
    /// The request could not be sent or the response could not be read (DNS, connection
    /// refused, TLS, connection reset, ...).
    #[error("could not reach the authorization server: {0}")]
    Transport(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The authorization server did not answer in time.
    #[error("the authorization server did not answer within {0:?}")]
    Timeout(Duration),
    /// The response body was larger than the configured limit.
    #[error("the authorization server's response is larger than the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The response could not be understood: not JSON or form data, or a required field is
    /// missing or has the wrong type.
    #[error("malformed response from the authorization server (HTTP {status}): {reason}")]
    MalformedResponse {
        /// The HTTP status of the response.
        status: StatusCode,
        /// What was wrong, never including the body itself.
        reason: String,
    },
    /// The server issued a token of a type other than `Bearer` (RFC 6750), which this crate
    /// would not know how to present.
    #[error("the authorization server issued a token of type {0:?}; only Bearer is supported")]
    UnsupportedTokenType(String),
    /// The device code expired before the user approved the request (RFC 8628 §3.5), detected
    /// by the client's own clock.
    #[error("the device code expired before the user approved the request")]
    DeviceCodeExpired,
    /// The crate was configured with an invalid value (a malformed URL, say).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A user-supplied [`TokenSource`](crate::TokenSource) failed.
    #[error("the token source failed: {0}")]
    Source(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// Wraps the error of a user-supplied token source.
    pub fn source_error(err: impl Into<BoxError>) -> Self {
        Error::Source(Arc::from(err.into()))
    }

    /// Wraps a transport error.
    pub fn transport(err: impl Into<BoxError>) -> Self {
        Error::Transport(Arc::from(err.into()))
    }

    /// The HTTP status of the authorization server's response, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::OAuth2 { status, .. }
            | Error::HttpStatus { status }
            | Error::MalformedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The OAuth 2.0 error the server sent, if any.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::OAuth2 { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The OAuth 2.0 error code the server sent, if any.
    pub fn code(&self) -> Option<&ErrorCode> {
        self.server_error().map(|e| &e.code)
    }

    /// Whether trying again later may succeed: timeouts, transport failures, HTTP 5xx and 429,
    /// and the codes `temporarily_unavailable`, `server_error`, `authorization_pending` and
    /// `slow_down` are transient; `invalid_client`, `invalid_grant` and every other error
    /// the server chose to send, malformed responses and configuration errors are not.
    ///
    /// ```
    /// use tower_oauth2::Error;
    /// use std::time::Duration;
    ///
    /// assert!(Error::Timeout(Duration::from_secs(30)).is_transient());
    /// assert!(Error::HttpStatus { status: http::StatusCode::BAD_GATEWAY }.is_transient());
    /// assert!(!Error::DeviceCodeExpired.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) | Error::Timeout(_) => true,
            Error::HttpStatus { status } | Error::MalformedResponse { status, .. } => {
                transient_status(*status)
            }
            Error::OAuth2 { status, error } => match error.code {
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
            | Error::Config(_) => false,
        }
    }
}

fn transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// The body of an OAuth 2.0 error response (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerError {
    /// The `error` code.
    pub code: ErrorCode,
    /// The `error_description`, human-readable text from the server.
    pub description: Option<String>,
    /// The `error_uri`, a page about the error.
    pub uri: Option<String>,
}

impl ServerError {
    /// An error response with just a code.
    pub fn new(code: ErrorCode) -> Self {
        ServerError {
            code,
            description: None,
            uri: None,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.code)?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        if let Some(uri) = &self.uri {
            write!(f, " (see {uri})")?;
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
    /// Any other code, as the server sent it.
    Other(String),
}

impl ErrorCode {
    /// The code as it appears on the wire.
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
            other => ErrorCode::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
