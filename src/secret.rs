//! A string that must never be printed: client secrets, access tokens, refresh tokens, ID tokens.

use std::fmt;

/// A secret string: a client secret, an access token, a refresh token or an ID token.
///
/// Its `Debug` output is `Secret("[redacted]")` and it has no `Display`, so it cannot end up
/// in logs or error messages by accident. Read the value with [`Secret::expose`], only where the
/// protocol needs it.
///
/// ```
/// use tower_oauth2::Secret;
///
/// let secret = Secret::new("hunter2");
/// assert_eq!(format!("{secret:?}"), r#"Secret("[redacted]")"#);
/// assert_eq!(secret.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().into_boxed_str())
    }

    /// The secret value itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Secret").field(&"[redacted]").finish()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}
