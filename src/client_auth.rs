//! Client authentication at the token endpoint (RFC 6749 §2.3), one file per method family.
//!
//! The method is chosen once per client with one of [`ClientAuth`]'s constructors:
//!
//! | Method ([`ClientAuth::method`]) | Constructor | What is sent | Specification |
//! |---|---|---|---|
//! | `client_secret_basic` | [`client_secret_basic`](ClientAuth::client_secret_basic) | `Authorization: Basic` with the id and secret | RFC 6749 §2.3.1 |
//! | `client_secret_post` | [`client_secret_post`](ClientAuth::client_secret_post) | `client_id` and `client_secret` in the form body | RFC 6749 §2.3.1 |
//! | `none` | [`none`](ClientAuth::none) | `client_id` only: a public client | RFC 6749 §2.1 |
//! | `tls_client_auth` | [`tls_client_auth`](ClientAuth::tls_client_auth) | `client_id`; the transport presents a CA-issued client certificate | RFC 8705 §2.1 |
//! | `self_signed_tls_client_auth` | [`self_signed_tls_client_auth`](ClientAuth::self_signed_tls_client_auth) | `client_id`; the transport presents a self-signed certificate | RFC 8705 §2.2 |
//! | `client_secret_jwt` | `client_secret_jwt` (feature `jwt`) | a JWT signed with the secret (HS256, HS384, HS512) as `client_assertion` | RFC 7523 §2.2, OIDC Core §9 |
//! | `private_key_jwt` | `private_key_jwt` (feature `jwt`) | a JWT signed with the client's private key (RS256, PS256, ES256, EdDSA, ...) as `client_assertion` | RFC 7523 §2.2, OIDC Core §9 |
//!
//! The secret-based methods are in `client_auth/secret.rs`, the certificate-based ones in
//! `client_auth/tls.rs`, the JWT assertions in `jwt` (feature `jwt`).
//!
//! ```
//! use tower_oauth2::ClientAuth;
//!
//! let auth = ClientAuth::client_secret_basic("my-client", "s3cr:et%+");
//! assert_eq!(auth.client_id(), "my-client");
//! assert_eq!(auth.method(), "client_secret_basic");
//! assert!(!format!("{auth:?}").contains("s3cr"));
//! ```

#[cfg(feature = "jwt")]
use std::sync::Arc;

use http::HeaderValue;

use crate::secret::Secret;

#[cfg(feature = "jwt")]
pub mod jwt;
mod secret;
mod tls;

#[cfg(feature = "jwt")]
pub use jwt::{AssertionAudience, JwsAlgorithm, JwtError, JwtSigningKey};

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
    /// RFC 7523 §2.2: `client_secret_jwt` or `private_key_jwt`.
    #[cfg(feature = "jwt")]
    Jwt(Arc<jwt::JwtClientAuth>),
    /// `none` without even a `client_id` in the form: a JWT bearer grant whose assertion alone
    /// says who the client is (RFC 7523 §3.1), as Google's token endpoint wants it.
    #[cfg(feature = "jwt")]
    AssertionOnly,
}

/// Where a client's credentials go in one request. No `Debug`: the form holds the secret.
pub(crate) struct Credentials<'a> {
    /// The `Authorization` header to send, if any (marked sensitive; its bytes are wiped when
    /// the last copy of the value is dropped).
    pub(crate) authorization: Option<HeaderValue>,
    /// Form fields to add to the body, borrowed from the [`ClientAuth`]: no copy of the secret.
    pub(crate) form: Vec<(&'static str, &'a str)>,
    /// A client assertion signed for this request (`client_assertion`), owned and wiped when
    /// the last copy is dropped.
    pub(crate) assertion: Option<Secret>,
}

impl ClientAuth {
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
    /// `tls_client_auth`, `client_secret_jwt`, `private_key_jwt`, ...), as in the
    /// `token_endpoint_auth_method` of RFC 7591.
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// assert_eq!(ClientAuth::none("my-cli").method(), "none");
    /// assert_eq!(ClientAuth::client_secret_basic("a", "b").method(), "client_secret_basic");
    /// ```
    pub fn method(&self) -> &'static str {
        match &self.method {
            Method::SecretBasic(_) => "client_secret_basic",
            Method::SecretPost(_) => "client_secret_post",
            Method::None => "none",
            Method::TlsClientAuth => "tls_client_auth",
            Method::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            #[cfg(feature = "jwt")]
            Method::Jwt(jwt) => jwt.method(),
            #[cfg(feature = "jwt")]
            Method::AssertionOnly => "none",
        }
    }

    /// The JWS algorithm the client's assertions are signed with (`"HS256"`, `"ES256"`,
    /// `"EdDSA"`, ...), for the JWT methods; `None` for the others. Compare it with the
    /// server's `token_endpoint_auth_signing_alg_values_supported` (RFC 8414).
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// assert_eq!(ClientAuth::client_secret_basic("a", "b").signing_algorithm(), None);
    /// ```
    pub fn signing_algorithm(&self) -> Option<&'static str> {
        match &self.method {
            #[cfg(feature = "jwt")]
            Method::Jwt(jwt) => Some(jwt.algorithm().as_str()),
            _ => None,
        }
    }

    /// The client secret, for the methods that have one (`client_secret_jwt` included: the
    /// server may echo it too).
    pub(crate) fn secret(&self) -> Option<&Secret> {
        match &self.method {
            Method::SecretBasic(secret) | Method::SecretPost(secret) => Some(secret),
            Method::None | Method::TlsClientAuth | Method::SelfSignedTlsClientAuth => None,
            #[cfg(feature = "jwt")]
            Method::Jwt(jwt) => jwt.secret(),
            #[cfg(feature = "jwt")]
            Method::AssertionOnly => None,
        }
    }

    /// The header and form fields that authenticate one request to the server whose token
    /// endpoint is `token_url`, at wall time `now`. A JWT method signs a new assertion (with a
    /// new `jti`) on each call, and fails if it cannot.
    #[cfg_attr(not(feature = "jwt"), allow(unused_variables))]
    pub(crate) fn credentials(
        &self,
        token_url: &url::Url,
        now: std::time::SystemTime,
    ) -> Result<Credentials<'_>, crate::Error> {
        Ok(match &self.method {
            Method::SecretBasic(secret) => Credentials {
                authorization: Some(secret::basic_authorization(&self.client_id, secret)),
                form: Vec::new(),
                assertion: None,
            },
            Method::SecretPost(secret) => Credentials {
                authorization: None,
                form: vec![
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", secret.expose()),
                ],
                assertion: None,
            },
            // The certificate authenticates in the handshake (RFC 8705 §2); the body names the
            // client.
            Method::None | Method::TlsClientAuth | Method::SelfSignedTlsClientAuth => Credentials {
                authorization: None,
                form: vec![("client_id", self.client_id.as_str())],
                assertion: None,
            },
            #[cfg(feature = "jwt")]
            Method::Jwt(jwt) => Credentials {
                authorization: None,
                form: vec![
                    ("client_id", self.client_id.as_str()),
                    ("client_assertion_type", jwt::CLIENT_ASSERTION_TYPE),
                ],
                assertion: Some(jwt.assertion(&self.client_id, token_url, now)?),
            },
            #[cfg(feature = "jwt")]
            Method::AssertionOnly => Credentials {
                authorization: None,
                form: Vec::new(),
                assertion: None,
            },
        })
    }
}
