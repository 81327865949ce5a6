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

use crate::secret::Secret;

/// How the client authenticates to the authorization server, with its credentials.
///
/// `Debug` shows the client id and the method, never the secret.
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
}

/// Where a client's credentials go in one request.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    /// The `Authorization` header to send, if any.
    pub(crate) authorization: Option<HeaderValue>,
    /// Form fields to add to the body.
    pub(crate) form: Vec<(&'static str, String)>,
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

    /// The client id.
    ///
    /// ```
    /// let auth = tower_oauth2::ClientAuth::client_secret_post("my-service", "its-secret");
    /// assert_eq!(auth.client_id(), "my-service");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The method's registered name (`client_secret_basic`, `client_secret_post`, `none`), as
    /// in the `token_endpoint_auth_method` of RFC 7591.
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
        }
    }

    /// The client secret, for the methods that have one.
    pub(crate) fn secret(&self) -> Option<&Secret> {
        match &self.method {
            Method::SecretBasic(secret) | Method::SecretPost(secret) => Some(secret),
            Method::None => None,
        }
    }

    /// The header and form fields that authenticate one request.
    pub(crate) fn credentials(&self) -> Credentials {
        match &self.method {
            Method::SecretBasic(secret) => {
                let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(&self.client_id), encode(secret.expose()));
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                // Base64 output is always a valid header value.
                let mut header = HeaderValue::try_from(format!("Basic {encoded}"))
                    .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
                header.set_sensitive(true);
                Credentials {
                    authorization: Some(header),
                    form: Vec::new(),
                }
            }
            Method::SecretPost(secret) => Credentials {
                authorization: None,
                form: vec![
                    ("client_id", self.client_id.clone()),
                    ("client_secret", secret.expose().to_owned()),
                ],
            },
            Method::None => Credentials {
                authorization: None,
                form: vec![("client_id", self.client_id.clone())],
            },
        }
    }
}
