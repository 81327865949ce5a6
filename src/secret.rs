//! A string that must never be printed: client secrets, access tokens, refresh tokens, ID tokens,
//! device codes. It is wiped from memory when dropped.
//!
//! # What is wiped, and what is not
//!
//! A [`Secret`]'s bytes are overwritten with zeros (the [`zeroize`] crate, whose writes the
//! compiler may not optimise away) when the last handle to them is dropped. Cloning a `Secret`
//! never copies the bytes: clones share one reference-counted buffer, wiped once, when the last
//! clone goes. The crate keeps every secret it holds in a `Secret`:
//!
//! - the client secret of [`ClientAuth`](crate::ClientAuth);
//! - the access, refresh and ID tokens of a [`Token`](crate::Token) and of a
//!   [`StoredToken`](crate::StoredToken), the refresh tokens [`RefreshToken`](crate::RefreshToken)
//!   and [`DeviceCode`](crate::DeviceCode) keep between fetches (and the rotated-out ones
//!   remembered for redaction), the device code of a
//!   [`DeviceAuthorization`](crate::DeviceAuthorization);
//! - the list of secrets cut out of server text (in every spelling).
//!
//! Copies made on the way out are wiped too, as soon as the crate is done with them:
//!
//! - the form body of every token request (which carries `client_secret`, `refresh_token`,
//!   `device_code`, ...): built in a buffer sized once (so it never reallocates and leaves no
//!   stale copy), handed to the HTTP client as [`Bytes`](bytes::Bytes) that own it, and wiped
//!   when the HTTP client drops the last reference to it, after the request was written;
//! - the `Authorization: Basic` value of `client_secret_basic` (the `id:secret` pair, its
//!   base64, and the header value itself, whose bytes are owned the same way);
//! - the `Authorization: Bearer …` value the cache builds for each token, owned the same way:
//!   wiped when the cache has replaced the token and the last request carrying it is done;
//! - [`StoredToken::to_json`](crate::StoredToken::to_json) writes the secrets straight into
//!   the `String` it returns, sized once so that no partial copy is left behind; that `String`
//!   is the caller's to keep or wipe (`zeroize::Zeroizing::new(json)`).
//!
//! What is **not** wiped, because the crate never owns it or cannot reach it:
//!
//! - copies inside the HTTP stack: hyper's write buffer that the request head and body are
//!   encoded into, rustls' plaintext and record buffers, h2's frames, and the kernel's socket
//!   buffers;
//! - the body of a token response as it was read (the [`Bytes`](bytes::Bytes) holding the JSON
//!   with the new tokens) and serde_json's scratch buffer for strings with escapes;
//! - each request's copy of the `Authorization: Bearer …` value in the HTTP stack of the
//!   wrapped service (hyper encodes the header into its write buffer);
//! - whatever the caller did with a secret before it became a `Secret` (a `&str` is copied into
//!   a new buffer; the original is the caller's) or after [`Secret::expose`];
//! - memory the operating system swapped out or put in a core dump.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret string: a client secret, an access token, a refresh token or an ID token.
///
/// Its `Debug` output is `Secret("[redacted]")` and it has no `Display`, so it cannot end up
/// in logs or error messages by accident. Read the value with [`Secret::expose`], only where the
/// protocol needs it.
///
/// Its bytes are wiped (overwritten with zeros) when it is dropped. Clones share the bytes
/// instead of copying them, and the last clone dropped wipes them; see the
/// [module documentation](crate::secret) for what else is wiped and what is not.
///
/// ```
/// use tower_oauth2::Secret;
///
/// let secret = Secret::new("hunter2");
/// assert_eq!(format!("{secret:?}"), r#"Secret("[redacted]")"#);
/// assert_eq!(secret.expose(), "hunter2");
/// let shared = secret.clone(); // the same bytes, not a copy
/// assert!(std::ptr::eq(shared.expose(), secret.expose()));
/// ```
#[derive(Clone)]
pub struct Secret(Wiped<String>);

/// A value shared by reference count and wiped ([`Zeroize`](zeroize::Zeroize)) when the last
/// reference is dropped: the storage of a [`Secret`].
type Wiped<T> = Arc<Zeroizing<T>>;

impl Secret {
    /// Wraps a secret value. A `String` is taken as it is (no copy); a `&str` is copied into a
    /// new buffer, and the original stays the caller's.
    ///
    /// ```
    /// use tower_oauth2::Secret;
    ///
    /// let from_env = Secret::new(String::from("value-of-CLIENT_SECRET"));
    /// let literal: Secret = "hunter2".into();
    /// # let _ = (from_env, literal);
    /// ```
    pub fn new(value: impl Into<String>) -> Self {
        // Kept with its capacity: shrinking could move it and leave a copy behind.
        Secret(Arc::new(Zeroizing::new(value.into())))
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
        self.0.as_str()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl std::hash::Hash for Secret {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expose().hash(state);
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

/// A header value made of `bytes` (a credential: `Basic …`, `Bearer …`), marked sensitive, that
/// owns its buffer: the bytes are wiped when the last clone of the value is dropped. Cloning it
/// stays a reference-count increment. Build `bytes` with the capacity it needs, so that it never
/// reallocated. Copies the HTTP stack makes when it encodes the header are out of reach.
pub(crate) fn wiped_header_value(
    bytes: Zeroizing<Vec<u8>>,
) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
    // A `Bytes` is taken as it is, not copied.
    let mut value = http::HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(bytes))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `bytes` random bytes from the operating system's CSPRNG, base64url without padding: PKCE
/// verifiers, `state`, `nonce`, a client assertion's `jti`.
pub(crate) fn random_token(bytes: usize) -> Result<String, crate::error::Error> {
    use base64::Engine as _;
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buf).map_err(|err| {
        crate::error::Error::Config(format!(
            "the operating system's random number generator failed: {err}"
        ))
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*buf))
}

/// `found == expected`, in a time that depends on the lengths only: where a `state` or a
/// `nonce` differs does not show in how long the comparison takes.
pub(crate) fn same_secret(found: &str, expected: &str) -> bool {
    found.len() == expected.len()
        && found
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
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
    /// Adds a secret value (an empty one is ignored). Every spelling is built in a buffer
    /// sized once and kept as a [`Secret`], so none is left behind unwiped.
    pub(crate) fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        // Percent-encoding at most triples the length.
        let mut form = String::with_capacity(value.len() * 3);
        form.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
        let form = Secret::new(form);
        let mut percent = String::with_capacity(form.expose().len() * 3);
        for c in form.expose().chars() {
            match c {
                '+' => percent.push_str("%20"),
                c => percent.push(c),
            }
        }
        let percent = Secret::new(percent);
        for spelling in [
            Secret::new(value),
            lowercase_hex(form.expose()),
            lowercase_hex(percent.expose()),
            form,
            percent,
        ] {
            // A spelling already known is dropped, and so wiped.
            if !self.spellings.contains(&spelling) {
                self.spellings.push(spelling);
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
fn lowercase_hex(encoded: &str) -> Secret {
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
    Secret::new(out)
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use zeroize::Zeroize;

    use super::*;

    #[test]
    fn secret_comparison() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn random_tokens_are_base64url_and_differ() {
        let a = random_token(32).unwrap();
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, random_token(32).unwrap());
    }

    #[test]
    fn zeroize_clears_a_secret_s_storage() {
        // The trait call Drop makes, on the type a Secret stores: the bytes become zeros...
        let mut value = String::from("hunter2");
        value.as_mut_str().zeroize();
        assert_eq!(value, "\0".repeat(7));
        // ...and the whole String (its spare capacity included) is cleared.
        let mut stored: Zeroizing<String> = Zeroizing::new(String::from("hunter2"));
        stored.zeroize();
        assert!(stored.is_empty());
        assert!(
            stored.capacity() >= 7,
            "the buffer is kept (and zeroed), not freed unwiped"
        );
    }

    /// Records each `zeroize()` call.
    struct Probe(Arc<AtomicUsize>);

    impl Zeroize for Probe {
        fn zeroize(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_storage_is_wiped_once_when_its_last_clone_drops() {
        let wiped = Arc::new(AtomicUsize::new(0));
        let first: Wiped<Probe> = Arc::new(Zeroizing::new(Probe(wiped.clone())));
        let second = first.clone();
        drop(first);
        assert_eq!(wiped.load(Ordering::SeqCst), 0, "a clone still uses the bytes");
        drop(second);
        assert_eq!(wiped.load(Ordering::SeqCst), 1, "the last drop wipes, once");
    }

    #[test]
    fn a_wiped_header_value_uses_its_buffer_as_it_is() {
        let bytes = Zeroizing::new(b"Bearer abc".to_vec());
        let at = bytes.as_ptr();
        let value = wiped_header_value(bytes).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.as_bytes(), b"Bearer abc");
        assert!(std::ptr::eq(value.as_bytes().as_ptr(), at), "not copied");
        assert!(
            std::ptr::eq(value.clone().as_bytes().as_ptr(), at),
            "clones share it"
        );
        assert!(wiped_header_value(Zeroizing::new(b"Bearer \n".to_vec())).is_err());
    }

    #[test]
    fn a_secret_is_stored_wiped_and_shared_by_its_clones() {
        let secret = Secret::new(String::from("hunter2"));
        // The type check: a Secret's storage is the `Wiped` tested above.
        let storage: &Wiped<String> = &secret.0;
        assert_eq!(Arc::strong_count(storage), 1);
        let clone = secret.clone();
        assert_eq!(Arc::strong_count(&secret.0), 2);
        assert!(std::ptr::eq(clone.expose(), secret.expose()));
        assert_eq!(clone, secret);
        drop(clone);
        assert_eq!(Arc::strong_count(&secret.0), 1);
    }

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
