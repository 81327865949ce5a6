//! Client authentication at the token endpoint (RFC 6749 §2.3).
//!
//! The method is chosen once per client with one of [`ClientAuth`]'s constructors:
//! [`client_secret_basic`](ClientAuth::client_secret_basic) (HTTP Basic, RFC 6749 §2.3.1),
//! [`client_secret_post`](ClientAuth::client_secret_post) (credentials in the form body) or
//! [`none`](ClientAuth::none) (a public client, RFC 6749 §2.1). The set of methods is open:
//! JWT client assertions (RFC 7523: `client_secret_jwt`, `private_key_jwt`) are new
//! constructors, not a change to the type.
//!
//! ```
//! use tower_oauth2::ClientAuth;
//!
//! let auth = ClientAuth::client_secret_basic("my-client", "s3cr:et%+");
//! assert_eq!(auth.client_id(), "my-client");
//! assert_eq!(auth.method(), "client_secret_basic");
//! assert!(!format!("{auth:?}").contains("s3cr"));
//! ```

use base64::Engine as _;
use http::HeaderValue;
use url::form_urlencoded;
use zeroize::Zeroizing;

use crate::secret::{wiped_header_value, Secret};

/// How the client authenticates to the authorization server, with its credentials.
///
/// `Debug` shows the client id and the method, never the secret. The secret is a
/// [`Secret`]: wiped from memory when the last clone of this value is dropped (clones share it),
/// and so is every copy the crate makes of it for a request (see [`crate::secret`]).
///
/// ```
/// use tower_oauth2::{ClientAuth, TokenEndpoint};
///
/// let confidential = ClientAuth::client_secret_basic("my-service", "its-secret");
/// let public = ClientAuth::none("my-cli");
/// assert!(format!("{public:?}").contains("my-cli"));
/// assert!(!format!("{confidential:?}").contains("its-secret"));
///
/// let endpoint = TokenEndpoint::new("https://auth.example.com/token", confidential)?;
/// assert_eq!(endpoint.client_auth().client_id(), "my-service");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientAuth {
    client_id: String,
    method: Method,
}

#[derive(Clone, Debug)]
enum Method {
    SecretBasic(Secret),
    SecretPost(Secret),
    None,
    /// RFC 8705 §2.1: a PKI-bound client certificate, presented by the transport.
    TlsClientAuth,
    /// RFC 8705 §2.2: a self-signed client certificate registered with the server.
    SelfSignedTlsClientAuth,
}

/// Where a client's credentials go in one request. No `Debug`: the form holds the secret.
pub(crate) struct Credentials<'a> {
    /// The `Authorization` header to send, if any (marked sensitive; its bytes are wiped when
    /// the last copy of the value is dropped).
    pub(crate) authorization: Option<HeaderValue>,
    /// Form fields to add to the body, borrowed from the [`ClientAuth`]: no copy of the secret.
    pub(crate) form: Vec<(&'static str, &'a str)>,
}

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

    /// `tls_client_auth` (RFC 8705 §2.1): the client proves its identity with a client
    /// certificate issued by a certificate authority the server trusts, presented in the TLS
    /// handshake; the request body carries only `client_id`. The certificate belongs to the
    /// HTTP client: give the token endpoint an [`HttpClient`](crate::HttpClient) that presents
    /// it.
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::tls_client_auth("my-service");
    /// assert_eq!(auth.method(), "tls_client_auth");
    /// ```
    pub fn tls_client_auth(client_id: impl Into<String>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::TlsClientAuth,
        }
    }

    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): as
    /// [`tls_client_auth`](Self::tls_client_auth), with a self-signed certificate the server
    /// knows from the client's registration (its `jwks` or `jwks_uri`).
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::self_signed_tls_client_auth("my-service");
    /// assert_eq!(auth.method(), "self_signed_tls_client_auth");
    /// ```
    pub fn self_signed_tls_client_auth(client_id: impl Into<String>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::SelfSignedTlsClientAuth,
        }
    }

    /// The client id.
    ///
    /// ```
    /// let auth = tower_oauth2::ClientAuth::client_secret_post("my-service", "its-secret");
    /// assert_eq!(auth.client_id(), "my-service");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The method's registered name (`client_secret_basic`, `client_secret_post`, `none`,
    /// `tls_client_auth`, ...), as in the `token_endpoint_auth_method` of RFC 7591.
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// assert_eq!(ClientAuth::none("my-cli").method(), "none");
    /// assert_eq!(ClientAuth::client_secret_basic("a", "b").method(), "client_secret_basic");
    /// ```
    pub fn method(&self) -> &'static str {
        match self.method {
            Method::SecretBasic(_) => "client_secret_basic",
            Method::SecretPost(_) => "client_secret_post",
            Method::None => "none",
            Method::TlsClientAuth => "tls_client_auth",
            Method::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// The client secret, for the methods that have one.
    pub(crate) fn secret(&self) -> Option<&Secret> {
        match &self.method {
            Method::SecretBasic(secret) | Method::SecretPost(secret) => Some(secret),
            Method::None | Method::TlsClientAuth | Method::SelfSignedTlsClientAuth => None,
        }
    }

    /// The header and form fields that authenticate one request.
    pub(crate) fn credentials(&self) -> Credentials<'_> {
        match &self.method {
            Method::SecretBasic(secret) => Credentials {
                authorization: Some(basic_authorization(&self.client_id, secret)),
                form: Vec::new(),
            },
            Method::SecretPost(secret) => Credentials {
                authorization: None,
                form: vec![
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", secret.expose()),
                ],
            },
            // The certificate authenticates in the handshake (RFC 8705 §2); the body names the
            // client.
            Method::None | Method::TlsClientAuth | Method::SelfSignedTlsClientAuth => Credentials {
                authorization: None,
                form: vec![("client_id", self.client_id.as_str())],
            },
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1), marked sensitive.
///
/// Every intermediate buffer is sized once (no reallocation leaves a stale copy) and wiped on
/// drop; the header value owns its buffer ([`wiped_header_value`]), so its bytes are wiped when
/// the last copy of the `HeaderValue` is dropped (not the copy hyper encodes into its write
/// buffer).
fn basic_authorization(client_id: &str, secret: &Secret) -> HeaderValue {
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

    #[test]
    fn basic_credentials_are_encoded_as_rfc_6749_says() {
        let auth = ClientAuth::client_secret_basic("my client", "s3cr:et%+ é");
        let header = auth.credentials().authorization.expect("a header");
        assert!(header.is_sensitive());
        let expected = base64::engine::general_purpose::STANDARD.encode("my+client:s3cr%3Aet%25%2B+%C3%A9");
        assert_eq!(header.to_str().unwrap(), format!("Basic {expected}"));
        // No overflow, whatever the lengths (the empty secret included).
        let header = ClientAuth::client_secret_basic("", "")
            .credentials()
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
        let credentials = auth.credentials();
        let (_, secret) = credentials.form[1];
        assert_eq!(secret, "its-secret");
        assert!(std::ptr::eq(secret, auth.secret().unwrap().expose()));
    }
}
