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
    ///
    /// ```
    /// use tower_oauth2::Secret;
    ///
    /// let from_env = Secret::new(String::from("value-of-CLIENT_SECRET"));
    /// let literal: Secret = "hunter2".into();
    /// # let _ = (from_env, literal);
    /// ```
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().into_boxed_str())
    }

    /// The secret value itself. Never log it.
    ///
    /// ```
    /// use tower_oauth2::Token;
    ///
    /// let token = Token::bearer("abc");
    /// let header = http::HeaderValue::from_str(&format!("Bearer {}", token.access_token().expose()));
    /// assert!(header.is_ok());
    /// ```
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

/// The secrets a request carried (client secret, refresh token, device code, ...), to be cut out
/// of whatever the server sends back: a server that echoes the request in its
/// `error_description` must not put them in error messages and logs.
///
/// Each secret is matched as sent and in its form-urlencoded spellings (`+` or `%20` for a
/// space, upper- or lowercase hex), the longest first.
#[derive(Clone, Default)]
pub(crate) struct Redactions {
    spellings: Vec<Secret>,
}

/// What a redacted secret is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

impl Redactions {
    /// Adds a secret value (an empty one is ignored).
    pub(crate) fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let percent = form.replace('+', "%20");
        for spelling in [
            value.to_owned(),
            lowercase_hex(&form),
            lowercase_hex(&percent),
            form,
            percent,
        ] {
            if !self.spellings.iter().any(|s| s.expose() == spelling) {
                self.spellings.push(Secret::new(spelling));
            }
        }
        // Longest first, so that a secret containing another is cut whole.
        self.spellings
            .sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
    }

    /// `text` with every spelling of every secret replaced by `[redacted]`.
    pub(crate) fn apply(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for spelling in &self.spellings {
            if text.contains(spelling.expose()) {
                text = text.replace(spelling.expose(), REDACTED);
            }
        }
        text
    }
}

/// `%2F` → `%2f`: the other spelling of percent-encoded bytes.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            hex_left = usize::from(c == '%') * 2;
            out.push(c);
        }
    }
    out
}

impl fmt::Debug for Redactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactions")
            .field("spellings", &self.spellings.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_spelling_of_every_secret() {
        let mut redactions = Redactions::default();
        redactions.add("s3cr et/+");
        redactions.add("rt-123");
        redactions.add("");
        let echoed = "got client_secret=s3cr+et%2F%2B&refresh_token=rt-123 (s3cr%20et%2f%2b) \"s3cr et/+\"";
        let redacted = redactions.apply(echoed);
        assert_eq!(
            redacted,
            "got client_secret=[redacted]&refresh_token=[redacted] ([redacted]) \"[redacted]\""
        );
        assert!(!format!("{redactions:?}").contains("rt-123"));
        assert_eq!(Redactions::default().apply("as is"), "as is");
    }
}
