//! The secret-based methods: `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1), and
//! `none` for public clients (RFC 6749 §2.1).

use base64::Engine as _;
use http::HeaderValue;
use url::form_urlencoded;
use zeroize::Zeroizing;

use super::{ClientAuth, Method};
use crate::secret::{wiped_header_value, Secret};

impl ClientAuth {
    /// `client_secret_basic`: HTTP Basic authentication with the client id and secret, each
    /// form-urlencoded before base64 as RFC 6749 §2.3.1 requires, so secrets with `:`, `%`,
    /// `+` or spaces work.
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::client_secret_basic("my-service", "s3cr:et%+");
    /// assert_eq!(auth.method(), "client_secret_basic");
    /// ```
    pub fn client_secret_basic(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::SecretBasic(client_secret.into()),
        }
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::client_secret_post("my-service", "its-secret");
    /// assert_eq!(auth.method(), "client_secret_post");
    /// ```
    pub fn client_secret_post(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::SecretPost(client_secret.into()),
        }
    }

    /// `none`: a public client, which sends only its `client_id` in the body.
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::none("my-cli");
    /// assert_eq!(auth.method(), "none");
    /// ```
    pub fn none(client_id: impl Into<String>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::None,
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1), marked sensitive.
///
/// Every intermediate buffer is sized once (no reallocation leaves a stale copy) and wiped on
/// drop; the header value owns its buffer ([`wiped_header_value`]), so its bytes are wiped when
/// the last copy of the `HeaderValue` is dropped (not the copy hyper encodes into its write
/// buffer).
pub(super) fn basic_authorization(client_id: &str, secret: &Secret) -> HeaderValue {
    let encode = |s: &str| {
        // Percent-encoding at most triples the length.
        let mut out = Zeroizing::new(String::with_capacity(s.len() * 3));
        out.extend(form_urlencoded::byte_serialize(s.as_bytes()));
        out
    };
    let (id, secret) = (encode(client_id), encode(secret.expose()));
    let mut pair = Zeroizing::new(Vec::with_capacity(id.len() + 1 + secret.len()));
    pair.extend_from_slice(id.as_bytes());
    pair.push(b':');
    pair.extend_from_slice(secret.as_bytes());
    const PREFIX: &[u8] = b"Basic ";
    let encoded_len = base64::encoded_len(pair.len(), true).unwrap_or(0);
    let mut value = Zeroizing::new(vec![0; PREFIX.len() + encoded_len]);
    value[..PREFIX.len()].copy_from_slice(PREFIX);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(&*pair, &mut value[PREFIX.len()..])
        .unwrap_or(0);
    value.truncate(PREFIX.len() + written);
    // Base64 output is always a valid header value.
    wiped_header_value(value).unwrap_or_else(|_| HeaderValue::from_static("Basic"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> url::Url {
        url::Url::parse("https://auth.example.com/token").unwrap()
    }

    #[test]
    fn basic_credentials_are_encoded_as_rfc_6749_says() {
        let auth = ClientAuth::client_secret_basic("my client", "s3cr:et%+ é");
        let header = auth
            .credentials(&url(), std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .authorization
            .expect("a header");
        assert!(header.is_sensitive());
        let expected = base64::engine::general_purpose::STANDARD.encode("my+client:s3cr%3Aet%25%2B+%C3%A9");
        assert_eq!(header.to_str().unwrap(), format!("Basic {expected}"));
        // No overflow, whatever the lengths (the empty secret included).
        let header = ClientAuth::client_secret_basic("", "")
            .credentials(&url(), std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .authorization
            .unwrap();
        assert_eq!(
            header.to_str().unwrap(),
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(":"))
        );
    }

    #[test]
    fn the_form_borrows_the_secret_instead_of_copying_it() {
        let auth = ClientAuth::client_secret_post("my-client", "its-secret");
        let credentials = auth
            .credentials(&url(), std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        let (_, secret) = credentials.form[1];
        assert_eq!(secret, "its-secret");
        assert!(std::ptr::eq(secret, auth.secret().unwrap().expose()));
    }
}
