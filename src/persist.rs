//! [`StoredToken`]: a token in a form that can be written down and read back, so that tokens
//! survive a restart.
//!
//! ```
//! use tower_oauth2::{ClientAuth, RefreshToken, StoredToken, TokenCache, TokenEndpoint};
//!
//! # async fn save(_json: String) {}
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // At start-up, what the last run saved (read from a file only the user can read, say):
//! let saved = r#"{"version":1,"access_token":"at","expires_at":4102444800,"refresh_token":"rt"}"#;
//! let stored = StoredToken::from_json(saved)?;
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
//! let source = RefreshToken::from_token(endpoint, &stored.to_token())?
//!     .on_new_token(|token| save(StoredToken::from_token(&token).to_json())); // and on every new one
//! let cache = TokenCache::builder(source).initial_token(stored.to_token()).build();
//! // The stored access token is still valid: it is used without a token request.
//! assert_eq!(cache.token().unwrap().access_token().expose(), "at");
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::secret::Secret;
use crate::token::Token;

/// The version of the JSON format [`StoredToken::to_json`] writes.
const FORMAT_VERSION: u64 = 1;

/// A token's state as an application keeps it across restarts: the access token, its type,
/// its expiry (whole Unix seconds), the refresh token and the scope.
///
/// Its JSON form (from [`to_json`](Self::to_json)) is
/// `{"version":1,"access_token":"…","token_type":"Bearer","expires_at":1767225600,"refresh_token":"…","scope":"…"}`,
/// where `expires_at`, `refresh_token` and `scope` may be absent.
///
///
/// The pieces fit together this way:
///
/// - on every new token, the sources' async `on_new_token` hook
///   ([`RefreshToken::on_new_token`](crate::RefreshToken::on_new_token),
///   [`DeviceCode::on_new_token`](crate::DeviceCode::on_new_token)) gets it, with its rotated
///   refresh token: turn it into a `StoredToken` and write [`to_json`](StoredToken::to_json)
///   where it belongs (a file only the user can read, a secret store);
/// - at start-up, read it back with [`from_json`](StoredToken::from_json), give its refresh
///   token to the source ([`RefreshToken::new`](crate::RefreshToken::new),
///   [`DeviceCode::with_refresh_token`](crate::DeviceCode::with_refresh_token)), and its access
///   token to the cache
///   ([`TokenCacheBuilder::initial_token`](crate::TokenCacheBuilder::initial_token)), which
///   uses it without a token request while it is valid.
///
/// `examples/device_login.rs` does exactly this with a file written atomically with mode 0600.
///
/// # Or a token store
///
/// A [`TokenStore`](crate::store::TokenStore) does all of this for you: give the cache a
/// `FileStore` (a CLI) or a `RedisStore` (replicas) with
/// [`TokenCacheBuilder::store`](crate::TokenCacheBuilder::store), and it reads the stored
/// token when it needs one, hands its refresh token to the source, and writes every new token
/// (sealed, if you give it a key). `StoredToken` stays for keeping the state yourself.
///
/// # Secrets
///
/// `Debug` shows no access or refresh token; there is no `Display`. The secrets leave the value
/// only through [`to_json`](StoredToken::to_json), an explicit call, and the accessors.
/// Errors from [`from_json`](StoredToken::from_json) never quote the input. The tokens are
/// [`Secret`]s shared with the [`Token`] they came from or go to (no copy) and wiped from memory
/// when the last of them is dropped.
///
/// # Example
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_oauth2::{StoredToken, Token};
///
/// let token = Token::bearer("access")
///     .with_refresh_token("refresh")
///     .with_expires_at(SystemTime::now() + Duration::from_secs(3600));
/// let json = StoredToken::from_token(&token).to_json(); // holds the secrets: store it safely
/// let restored = StoredToken::from_json(&json)?;
/// assert_eq!(restored.refresh_token().unwrap().expose(), "refresh");
/// let debug = format!("{restored:?}");
/// assert!(!debug.contains("\"access\"") && !debug.contains("\"refresh\""));
/// let token = restored.to_token();
/// assert_eq!(token.access_token().expose(), "access");
/// # Ok::<(), tower_oauth2::StoredTokenError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    access_token: Secret,
    token_type: String,
    expires_at: Option<u64>,
    refresh_token: Option<Secret>,
    scope: Option<String>,
}

impl StoredToken {
    /// The state of `token`. Its expiry is rounded down to the second (a stored token is
    /// thought to expire a little early, never late).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_oauth2::{StoredToken, Token};
    ///
    /// let token = Token::bearer("at").with_expires_at(UNIX_EPOCH + Duration::from_millis(1_500));
    /// let stored = StoredToken::from_token(&token);
    /// assert_eq!(stored.expires_at(), Some(UNIX_EPOCH + Duration::from_secs(1)));
    /// assert_eq!(stored.token_type(), "Bearer");
    /// assert!(stored.refresh_token().is_none() && stored.scope().is_none());
    /// ```
    pub fn from_token(token: &Token) -> Self {
        StoredToken {
            access_token: token.access_token().clone(),
            token_type: token.token_type().to_owned(),
            expires_at: token.expires_at().map(unix_seconds),
            refresh_token: token.refresh_token().cloned(),
            scope: token.scope().map(str::to_owned),
        }
    }

    /// The token again, for [`TokenCacheBuilder::initial_token`](crate::TokenCacheBuilder::initial_token)
    /// or [`RefreshToken::from_token`](crate::RefreshToken::from_token). What a token response
    /// has beyond this state (the ID token, extra fields, when it was issued) is not kept.
    ///
    /// ```
    /// use tower_oauth2::{StoredToken, Token};
    ///
    /// let stored = StoredToken::from_token(&Token::bearer("at").with_refresh_token("rt").with_scope("api"));
    /// let token = stored.to_token();
    /// assert_eq!(token.refresh_token().unwrap().expose(), "rt");
    /// assert_eq!(token.scope(), Some("api"));
    /// assert_eq!(token.expires_at(), None);
    /// ```
    pub fn to_token(&self) -> Token {
        let mut token = Token::bearer(self.access_token.clone());
        if let Some(expires_at) = self.expires_at() {
            token = token.with_expires_at(expires_at);
        }
        if let Some(refresh_token) = &self.refresh_token {
            token = token.with_refresh_token(refresh_token.clone());
        }
        if let Some(scope) = &self.scope {
            token = token.with_scope(scope.clone());
        }
        token
    }

    /// The access token.
    ///
    /// ```
    /// # use tower_oauth2::{StoredToken, Token};
    /// let stored = StoredToken::from_token(&Token::bearer("at"));
    /// assert_eq!(stored.access_token().expose(), "at");
    /// ```
    pub fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// The token type (some spelling of `Bearer`).
    ///
    /// ```
    /// use tower_oauth2::StoredToken;
    ///
    /// let stored = StoredToken::from_json(r#"{"version":1,"access_token":"at","token_type":"bearer"}"#)?;
    /// assert_eq!(stored.token_type(), "bearer"); // as the server spelled it
    /// let stored = StoredToken::from_json(r#"{"version":1,"access_token":"at"}"#)?;
    /// assert_eq!(stored.token_type(), "Bearer"); // when none was stored
    /// assert!(StoredToken::from_json(r#"{"version":1,"access_token":"at","token_type":"MAC"}"#).is_err());
    /// # Ok::<(), tower_oauth2::StoredTokenError>(())
    /// ```
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the access token expires (to the second), `None` if it does not.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_oauth2::StoredToken;
    ///
    /// let stored = StoredToken::from_json(r#"{"version":1,"access_token":"at","expires_at":1767225600}"#)?;
    /// let expires_at = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    /// assert_eq!(stored.expires_at(), Some(expires_at));
    /// // Worth giving to a cache at start-up only while it is valid:
    /// assert!(!stored.to_token().is_expired_at(expires_at - Duration::from_secs(1)));
    /// assert!(stored.to_token().is_expired_at(expires_at));
    /// # Ok::<(), tower_oauth2::StoredTokenError>(())
    /// ```
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
            .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
    }

    /// The refresh token, if there is one.
    ///
    /// ```
    /// # use tower_oauth2::{StoredToken, Token};
    /// let stored = StoredToken::from_token(&Token::bearer("at").with_refresh_token("rt"));
    /// assert_eq!(stored.refresh_token().map(|rt| rt.expose()), Some("rt"));
    /// ```
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// The granted scope, if known.
    ///
    /// ```
    /// use tower_oauth2::{StoredToken, Token};
    ///
    /// let stored = StoredToken::from_token(&Token::bearer("at").with_scope("openid offline_access"));
    /// let restored = StoredToken::from_json(&stored.to_json())?;
    /// assert_eq!(restored.scope(), Some("openid offline_access"));
    /// assert!(restored.scope().is_some_and(|scope| scope.split(' ').any(|s| s == "offline_access")));
    /// # Ok::<(), tower_oauth2::StoredTokenError>(())
    /// ```
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The state as JSON, **secrets included**: write it only where the secrets belong (a file
    /// only its user can read, a secret store), never to a log.
    ///
    /// The JSON is built in one buffer, sized once so that no reallocation leaves a partial copy
    /// of the secrets behind. The returned `String` is yours: wrap it in
    /// `zeroize::Zeroizing` (or call `zeroize()` on it) to wipe it when it has been written.
    ///
    /// ```
    /// # use tower_oauth2::{StoredToken, Token};
    /// let json = StoredToken::from_token(&Token::bearer("at").with_refresh_token("rt")).to_json();
    /// assert_eq!(json, r#"{"access_token":"at","refresh_token":"rt","token_type":"Bearer","version":1}"#);
    /// ```
    pub fn to_json(&self) -> String {
        // The fields in alphabetical order (as `serde_json::Map` writes them). Escaping at most
        // turns a byte into six (`\u001f`); the numbers fit in 20 digits.
        let strings = [
            Some(self.access_token.expose()),
            self.refresh_token.as_ref().map(Secret::expose),
            self.scope.as_deref(),
            Some(self.token_type.as_str()),
        ];
        let capacity = 128 + strings.iter().flatten().map(|s| 6 * s.len() + 2).sum::<usize>();
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(b"{\"access_token\":");
        push_json_string(&mut out, self.access_token.expose());
        if let Some(expires_at) = self.expires_at {
            out.extend_from_slice(format!(",\"expires_at\":{expires_at}").as_bytes());
        }
        if let Some(refresh_token) = &self.refresh_token {
            out.extend_from_slice(b",\"refresh_token\":");
            push_json_string(&mut out, refresh_token.expose());
        }
        if let Some(scope) = &self.scope {
            out.extend_from_slice(b",\"scope\":");
            push_json_string(&mut out, scope);
        }
        out.extend_from_slice(b",\"token_type\":");
        push_json_string(&mut out, &self.token_type);
        out.extend_from_slice(format!(",\"version\":{FORMAT_VERSION}}}").as_bytes());
        debug_assert!(out.len() <= capacity);
        // Only JSON text from `&str`s was written: always UTF-8.
        String::from_utf8(out).unwrap_or_else(|err| {
            zeroize::Zeroize::zeroize(&mut err.into_bytes());
            String::new()
        })
    }

    /// Reads the JSON [`to_json`](Self::to_json) wrote. Fields it does not know are ignored, so
    /// that later versions can add some; a `version` other than 1 is refused.
    ///
    /// ```
    /// use tower_oauth2::{StoredToken, StoredTokenError};
    ///
    /// assert!(matches!(StoredToken::from_json("{not json"), Err(StoredTokenError::NotJson { .. })));
    /// assert_eq!(
    ///     StoredToken::from_json(r#"{"version":1,"token_type":"Bearer"}"#),
    ///     Err(StoredTokenError::MissingField("access_token")),
    /// );
    /// ```
    pub fn from_json(json: &str) -> Result<Self, StoredTokenError> {
        let value: Value = serde_json::from_str(json).map_err(|err| StoredTokenError::NotJson {
            line: err.line(),
            column: err.column(),
        })?;
        let Value::Object(mut object) = value else {
            return Err(StoredTokenError::NotAnObject);
        };
        match object.get("version") {
            None => return Err(StoredTokenError::MissingField("version")),
            Some(version) if version.as_u64() == Some(FORMAT_VERSION) => {}
            Some(version) => return Err(StoredTokenError::UnsupportedVersion(version.as_u64())),
        }
        let access_token =
            string(&mut object, "access_token")?.ok_or(StoredTokenError::MissingField("access_token"))?;
        if access_token.is_empty() {
            return Err(invalid("access_token", "is empty"));
        }
        let token_type = string(&mut object, "token_type")?.unwrap_or_else(|| "Bearer".to_owned());
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(invalid("token_type", "is not Bearer"));
        }
        let expires_at = match object.get("expires_at") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .ok_or_else(|| invalid("expires_at", "is not a whole number of seconds"))?,
            ),
        };
        let refresh_token = string(&mut object, "refresh_token")?.filter(|rt| !rt.is_empty());
        let scope = string(&mut object, "scope")?;
        Ok(StoredToken {
            access_token: Secret::new(access_token),
            token_type,
            expires_at,
            refresh_token: refresh_token.map(Secret::new),
            scope,
        })
    }
}

/// Appends `value` as a JSON string (quoted and escaped).
fn push_json_string(out: &mut Vec<u8>, value: &str) {
    // Writing to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

impl From<&Token> for StoredToken {
    fn from(token: &Token) -> Self {
        StoredToken::from_token(token)
    }
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why [`StoredToken::from_json`] refused its input. No variant quotes the input, which holds
/// secrets.
///
/// ```
/// use tower_oauth2::{StoredToken, StoredTokenError};
///
/// let err = StoredToken::from_json(r#"{"version":1,"access_token":"at","expires_at":"soon"}"#).unwrap_err();
/// assert_eq!(
///     err,
///     StoredTokenError::InvalidField { field: "expires_at", reason: "is not a whole number of seconds" },
/// );
/// assert_eq!(err.to_string(), "the stored token's `expires_at` is not a whole number of seconds");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredTokenError {
    /// The input is not JSON (empty, cut short, or corrupt); where the parser stopped.
    NotJson {
        /// The line (from 1).
        line: usize,
        /// The column (from 1).
        column: usize,
    },
    /// The input is JSON, but not an object.
    NotAnObject,
    /// The input was written in another version of the format (`None`: not a number).
    UnsupportedVersion(Option<u64>),
    /// A required field is missing.
    MissingField(&'static str),
    /// A field has the wrong type or a value that cannot be used.
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for StoredTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredTokenError::NotJson { line, column } => {
                write!(
                    f,
                    "the stored token is not valid JSON (line {line}, column {column})"
                )
            }
            StoredTokenError::NotAnObject => f.write_str("the stored token is not a JSON object"),
            StoredTokenError::UnsupportedVersion(Some(version)) => {
                write!(f, "the stored token has format version {version}; this crate reads version {FORMAT_VERSION}")
            }
            StoredTokenError::UnsupportedVersion(None) => {
                f.write_str("the stored token's `version` is not a number")
            }
            StoredTokenError::MissingField(field) => write!(f, "the stored token has no `{field}`"),
            StoredTokenError::InvalidField { field, reason } => {
                write!(f, "the stored token's `{field}` {reason}")
            }
        }
    }
}

impl std::error::Error for StoredTokenError {}

fn invalid(field: &'static str, reason: &'static str) -> StoredTokenError {
    StoredTokenError::InvalidField { field, reason }
}

/// A string field (`None` when absent or null).
fn string(object: &mut Map<String, Value>, field: &'static str) -> Result<Option<String>, StoredTokenError> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(invalid(field, "is not a string")),
    }
}

/// `time` in whole seconds since the Unix epoch (0 before it).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_json_writes_what_serde_json_writes() {
        for (access, refresh, scope, expires_at) in [
            ("at", None, None, None),
            (
                "a\"t\\\u{1}\n\u{7f}é€😀",
                Some("r\u{1f}t\"\t"),
                Some("a \u{0} b"),
                Some(u64::MAX),
            ),
            ("at", Some(""), Some(""), Some(0)),
        ] {
            let mut token = Token::bearer(access);
            if let Some(rt) = refresh {
                token = token.with_refresh_token(rt);
            }
            if let Some(scope) = scope {
                token = token.with_scope(scope);
            }
            let mut stored = StoredToken::from_token(&token);
            stored.expires_at = expires_at;
            let mut expected = Map::new();
            expected.insert("version".into(), Value::from(FORMAT_VERSION));
            expected.insert("access_token".into(), Value::from(access));
            expected.insert("token_type".into(), Value::from("Bearer"));
            if let Some(at) = expires_at {
                expected.insert("expires_at".into(), Value::from(at));
            }
            if let Some(rt) = refresh {
                expected.insert("refresh_token".into(), Value::from(rt));
            }
            if let Some(scope) = scope {
                expected.insert("scope".into(), Value::from(scope));
            }
            let json = stored.to_json();
            assert_eq!(json, Value::Object(expected).to_string());
            assert_eq!(
                serde_json::from_str::<Value>(&json).unwrap()["access_token"],
                access
            );
        }
    }

    #[test]
    fn stored_tokens_share_the_secrets_of_their_token() {
        let token = Token::bearer("at").with_refresh_token("rt");
        let stored = StoredToken::from_token(&token);
        assert!(std::ptr::eq(
            stored.access_token().expose(),
            token.access_token().expose()
        ));
        let (a, b) = (stored.refresh_token().unwrap(), token.refresh_token().unwrap());
        assert!(std::ptr::eq(a.expose(), b.expose()));
        let back = stored.to_token();
        assert!(std::ptr::eq(
            back.access_token().expose(),
            token.access_token().expose()
        ));
    }

    #[test]
    fn round_trip_keeps_every_field_and_rounds_the_expiry_down() {
        let expires_at = UNIX_EPOCH + Duration::from_millis(1_767_225_600_900);
        let token = Token::bearer("at")
            .with_refresh_token("rt")
            .with_scope("a b")
            .with_expires_at(expires_at);
        let stored = StoredToken::from_json(&StoredToken::from_token(&token).to_json()).unwrap();
        assert_eq!(stored.access_token().expose(), "at");
        assert_eq!(stored.refresh_token().map(Secret::expose), Some("rt"));
        assert_eq!(stored.scope(), Some("a b"));
        assert_eq!(
            stored.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        );
        let restored = stored.to_token();
        assert_eq!(restored.expires_at(), stored.expires_at());
        assert_eq!(restored.refresh_token().map(Secret::expose), Some("rt"));
    }

    #[test]
    fn debug_and_errors_show_no_secret() {
        let stored = StoredToken::from_token(&Token::bearer("at-secret").with_refresh_token("rt-secret"));
        let debug = format!("{stored:?}");
        assert!(
            !debug.contains("at-secret") && !debug.contains("rt-secret"),
            "{debug}"
        );
        for bad in [
            r#"{"version":1,"access_token":"at-secret","token_type":"mac"}"#,
            r#"{"version":1,"access_token":"at-secret","expires_at":"rt-secret"}"#,
            r#"{"version":1,"access_token":"at-secret","refresh_token":7}"#,
            r#"{"version":"rt-secret"}"#,
            r#"{"version":1,"access_token":"at-secret""#,
        ] {
            let err = StoredToken::from_json(bad).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }
}
