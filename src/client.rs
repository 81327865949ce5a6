//! [`OAuth2Client`]: one client at one authorization server, the object to start from.
//!
//! It holds the client's authentication and every endpoint URL of the server (token, device
//! authorization, revocation, introspection, userinfo, authorization, pushed authorization
//! request, JWKS), given by hand or found by discovery, and makes the token sources and the
//! endpoint calls.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     let body = match request.uri().path() {
//! #         "/token" => r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
//! #         _ => "",
//! #     };
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-service", "its-secret"))
//!     .token_url("https://auth.example.com/token")
//!     .revocation_url("https://auth.example.com/revoke")
//!     .http_client(HttpClient::new(server)) // a stand-in authorization server
//!     .build()?;
//! let token = client.client_credentials().scope("api").fetch_token().await?;
//! // ... and on shutdown:
//! client.revoke_access_token(&token).await?;
//! # Ok(()) }
//! ```
//!
//! The calls:
//!
//! | Call | Specification |
//! |---|---|
//! | [`client_credentials`](OAuth2Client::client_credentials), [`refresh_token`](OAuth2Client::refresh_token), [`device_code`](OAuth2Client::device_code): token sources | RFC 6749 §4.4, §6, RFC 8628 |
//! | [`token_exchange`](OAuth2Client::token_exchange) | RFC 8693 |
//! | [`password`](OAuth2Client::password) (deprecated) | RFC 6749 §4.3 |
//! | `jwt_bearer` (feature `jwt`) | RFC 7523 §2.1 |
//! | [`authorization_request`](OAuth2Client::authorization_request), [`exchange_code`](OAuth2Client::exchange_code): logging a user in (PKCE, PAR, the `iss` check) | RFC 6749 §4.1, RFC 7636, RFC 9126, RFC 9207 |
//! | `verify_id_token` (feature `jwt`): an ID token checked against the issuer's keys | OIDC Core §3.1.3.7 |
//! | [`discover`](OAuth2Client::discover): the endpoints from the server's metadata | RFC 8414, OIDC Discovery |
//! | [`revoke_token`](OAuth2Client::revoke_token), [`revoke_access_token`](OAuth2Client::revoke_access_token), [`revoke_refresh_token`](OAuth2Client::revoke_refresh_token) | RFC 7009 |
//! | [`introspect`](OAuth2Client::introspect) | RFC 7662 |
//! | [`userinfo`](OAuth2Client::userinfo) | OIDC Core §5.3 |
//!
//! Or from the server's discovery document (see [`endpoint::discovery`](crate::endpoint::discovery)):
//!
//! ```no_run
//! use tower_oauth2::{ClientAuth, OAuth2Client};
//!
//! # async fn run() -> Result<(), tower_oauth2::Error> {
//! let client = OAuth2Client::discover(
//!     "https://auth.example.com",
//!     ClientAuth::client_secret_basic("my-service", "its-secret"),
//! )
//! .await?;
//! println!("revocation at {:?}", client.revocation_url());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::client_auth::ClientAuth;
use crate::clock::{Clock, SystemClock};
use crate::endpoint::discovery::{self, ServerMetadata};
use crate::endpoint::token::{default_http_client, parse_endpoint_url, TokenEndpoint};
use crate::error::Error;
use crate::grant::client_credentials::ClientCredentials;
use crate::grant::device_code::DeviceCode;
use crate::grant::password::Password;
use crate::grant::refresh_token::RefreshToken;
use crate::grant::token_exchange::{SecurityToken, TokenExchange};
use crate::secret::Secret;
use crate::transport::HttpClient;

/// One client at one authorization server: its authentication, its token endpoint and the
/// server's other endpoints. Cheap to clone (clones share everything), `Send + Sync`.
///
/// `Debug` shows the URLs, the client id and the method, never the client secret.
///
/// ```
/// use tower_oauth2::{ClientAuth, OAuth2Client};
///
/// let client = OAuth2Client::builder(ClientAuth::client_secret_post("my-service", "its-secret"))
///     .issuer("https://auth.example.com")
///     .token_url("https://auth.example.com/token")
///     .introspection_url("https://auth.example.com/introspect")
///     .build()?;
/// assert_eq!(client.issuer(), Some("https://auth.example.com"));
/// assert_eq!(client.token_endpoint().token_url().as_str(), "https://auth.example.com/token");
/// assert!(client.revocation_url().is_none());
/// assert!(!format!("{client:?}").contains("its-secret"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct OAuth2Client {
    inner: Arc<Inner>,
}

struct Inner {
    token: TokenEndpoint,
    issuer: Option<String>,
    urls: Urls<Url>,
    metadata: Option<ServerMetadata>,
    /// The ID token algorithms given to the builder, if any.
    id_token_algorithms: Option<Vec<String>>,
    #[cfg(feature = "jwt")]
    jwks: crate::endpoint::jwks::JwksCache,
}

/// The endpoint URLs besides the token endpoint's: as given to the builder (`String`) or
/// checked (`Url`).
#[derive(Clone, Debug)]
struct Urls<U> {
    device_authorization: Option<U>,
    revocation: Option<U>,
    introspection: Option<U>,
    userinfo: Option<U>,
    authorization: Option<U>,
    pushed_authorization_request: Option<U>,
    jwks: Option<U>,
}

impl<U> Default for Urls<U> {
    fn default() -> Self {
        Urls {
            device_authorization: None,
            revocation: None,
            introspection: None,
            userinfo: None,
            authorization: None,
            pushed_authorization_request: None,
            jwks: None,
        }
    }
}

/// Builds an [`OAuth2Client`] by hand ([`build`](Self::build)) or from discovery
/// ([`discover`](Self::discover)); see [`OAuth2Client::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::clock::ManualClock;
/// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
///
/// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
///     .token_url("https://auth.example.com/token")
///     .device_authorization_url("https://auth.example.com/device")
///     .http_client(HttpClient::hyper()?.with_timeout(Duration::from_secs(10)))
///     .clock(ManualClock::new())
///     .default_lifetime(Duration::from_secs(300))
///     .build()?;
/// # let _ = client;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
pub struct OAuth2ClientBuilder {
    auth: ClientAuth,
    token_url: Option<String>,
    issuer: Option<String>,
    urls: Urls<String>,
    http: Option<HttpClient>,
    clock: Arc<dyn Clock>,
    default_lifetime: Option<Duration>,
    allow_insecure_http: bool,
    id_token_algorithms: Option<Vec<String>>,
}

/// Generates the builder's setter of an endpoint URL.
macro_rules! url_setter {
    ($(#[$doc:meta])* $name:ident, $field:ident, $path:literal) => {
        $(#[$doc])*
        ///
        /// Checked when the client is built, as the token URL is: `https`, or `http` on a
        /// loopback host.
        ///
        /// ```
        /// use tower_oauth2::{ClientAuth, OAuth2Client};
        ///
        /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
        ///     .token_url("https://auth.example.com/token")
        #[doc = concat!("    .", stringify!($name), "(\"https://auth.example.com", $path, "\")")]
        ///     .build()?;
        #[doc = concat!(
            "assert_eq!(client.", stringify!($name), "().map(|u| u.as_str()), Some(\"https://auth.example.com",
            $path, "\"));"
        )]
        /// # Ok::<(), tower_oauth2::Error>(())
        /// ```
        pub fn $name(mut self, url: impl Into<String>) -> Self {
            self.urls.$field = Some(url.into());
            self
        }
    };
}

/// Generates the client's accessor of an endpoint URL.
macro_rules! url_getter {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        ///
        /// ```
        /// use tower_oauth2::{ClientAuth, OAuth2Client};
        ///
        /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
        ///     .token_url("https://auth.example.com/token")
        ///     .build()?;
        #[doc = concat!("assert_eq!(client.", stringify!($name), "(), None);")]
        /// # Ok::<(), tower_oauth2::Error>(())
        /// ```
        pub fn $name(&self) -> Option<&Url> {
            self.inner.urls.$field.as_ref()
        }
    };
}

impl OAuth2Client {
    /// Starts building a client that authenticates with `auth`.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-service", "its-secret"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// assert_eq!(client.client_auth().client_id(), "my-service");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(auth: ClientAuth) -> OAuth2ClientBuilder {
        OAuth2ClientBuilder {
            auth,
            token_url: None,
            issuer: None,
            urls: Urls::default(),
            http: None,
            clock: Arc::new(SystemClock),
            default_lifetime: None,
            allow_insecure_http: false,
            id_token_algorithms: None,
        }
    }

    /// A client for the server `issuer`, with the endpoints of its discovery document (RFC
    /// 8414, OpenID Connect Discovery), the default HTTP client and clock. `issuer` may also be
    /// the full URL of the document. See [`endpoint::discovery`](crate::endpoint::discovery)
    /// for where the document is looked for and what is checked; the builder's
    /// [`discover`](OAuth2ClientBuilder::discover) takes an HTTP client, a clock and the other
    /// settings.
    ///
    /// ```no_run
    /// use tower_oauth2::{ClientAuth, OAuth2Client, TokenSource};
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let client = OAuth2Client::discover(
    ///     "https://auth.example.com",
    ///     ClientAuth::client_secret_basic("my-service", "its-secret"),
    /// )
    /// .await?;
    /// let token = client.client_credentials().fetch_token().await?;
    /// # let _ = token; Ok(()) }
    /// ```
    pub async fn discover(issuer: &str, auth: ClientAuth) -> Result<Self, Error> {
        Self::builder(auth).discover(issuer).await
    }

    /// The token endpoint: URL, client authentication, HTTP client, clock.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// assert_eq!(client.token_endpoint().token_url().path(), "/token");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn token_endpoint(&self) -> &TokenEndpoint {
        &self.inner.token
    }

    /// The client and its authentication method (after discovery, the method the server
    /// advertises: see [client authentication](crate::endpoint::discovery#client-authentication)).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// assert_eq!(client.client_auth().method(), "none");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn client_auth(&self) -> &ClientAuth {
        self.inner.token.client_auth()
    }

    /// The issuer identifier: the one discovered, or the one given to the builder.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// assert_eq!(client.issuer(), None);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    url_getter!(
        /// The device authorization endpoint (RFC 8628 §3.1).
        device_authorization_url,
        device_authorization
    );
    url_getter!(
        /// The revocation endpoint (RFC 7009).
        revocation_url,
        revocation
    );
    url_getter!(
        /// The introspection endpoint (RFC 7662).
        introspection_url,
        introspection
    );
    url_getter!(
        /// The OpenID Connect userinfo endpoint (OIDC Core §5.3).
        userinfo_url,
        userinfo
    );
    url_getter!(
        /// The authorization endpoint (RFC 6749 §3.1).
        authorization_url,
        authorization
    );
    url_getter!(
        /// The pushed authorization request endpoint (RFC 9126).
        pushed_authorization_request_url,
        pushed_authorization_request
    );
    url_getter!(
        /// The server's JSON Web Key Set (`jwks_uri`, RFC 8414 §2).
        jwks_url,
        jwks
    );

    /// The server's metadata, when the client was built by discovery.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// assert!(client.metadata().is_none()); // built by hand
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn metadata(&self) -> Option<&ServerMetadata> {
        self.inner.metadata.as_ref()
    }

    /// A client credentials source (RFC 6749 §4.4) at this client's token endpoint.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client, OAuth2Layer};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-service", "its-secret"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let layer = OAuth2Layer::new(client.client_credentials().scope("api"));
    /// # let _ = layer;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn client_credentials(&self) -> ClientCredentials {
        ClientCredentials::new(self.inner.token.clone())
    }

    /// A refresh token source (RFC 6749 §6) starting from `refresh_token`.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let source = client.refresh_token("stored-refresh-token");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn refresh_token(&self, refresh_token: impl Into<Secret>) -> RefreshToken {
        RefreshToken::new(self.inner.token.clone(), refresh_token)
    }

    /// A device authorization source (RFC 8628) at this server's device authorization
    /// endpoint; [`Error::NoEndpoint`] if it has none.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client, TerminalPrompt};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .device_authorization_url("https://auth.example.com/device")
    ///     .build()?;
    /// let source = client
    ///     .device_code()?
    ///     .scope("openid offline_access")
    ///     .on_user_code(TerminalPrompt::new().into_callback());
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn device_code(&self) -> Result<DeviceCode, Error> {
        let url = self.endpoint("device_authorization", self.device_authorization_url())?;
        DeviceCode::new(self.inner.token.clone(), url.as_str())
    }

    /// A token exchange source (RFC 8693) for `subject`: a token of this client's, or one it
    /// was given, traded for one scoped to a downstream API.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client, SecurityToken, TokenCache};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("gateway", "its-secret"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// // The token this service holds, kept fresh by its own cache...
    /// let own = TokenCache::new(client.client_credentials().scope("gateway"));
    /// // ...exchanged for one the orders API accepts.
    /// let source = client
    ///     .token_exchange(SecurityToken::from_cache(own))
    ///     .audience("orders");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn token_exchange(&self, subject: SecurityToken) -> TokenExchange {
        TokenExchange::new(self.inner.token.clone(), subject)
    }

    /// A resource owner password source (RFC 6749 §4.3, deprecated by RFC 9700 §2.4: see
    /// [`Password`] for when it is still acceptable).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("legacy-app", "its-secret"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let source = client.password("alice", "her-password").scope("offline_access");
    /// assert_eq!(source.username(), "alice");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn password(&self, username: impl Into<String>, password: impl Into<Secret>) -> Password {
        Password::new(self.inner.token.clone(), username, password)
    }

    /// A JWT bearer source (RFC 7523 §2.1, feature `jwt`): each fetch signs a new assertion
    /// with `key`, issued by `issuer`, for this client's token endpoint.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtSigningKey, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("batch-job"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let key = JwtSigningKey::hmac("a-shared-secret-of-at-least-32-bytes!", JwsAlgorithm::HS256)?;
    /// let source = client.jwt_bearer(key, "batch-job").subject("batch-job").scope("reports");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[cfg(feature = "jwt")]
    pub fn jwt_bearer(&self, key: crate::JwtSigningKey, issuer: impl Into<String>) -> crate::JwtBearer {
        crate::JwtBearer::new(self.inner.token.clone(), key, issuer)
    }

    /// The ID token algorithms given to the builder, if any.
    #[cfg(feature = "jwt")]
    pub(crate) fn configured_id_token_algorithms(&self) -> Option<&[String]> {
        self.inner.id_token_algorithms.as_deref()
    }

    /// The server's key set, kept for ID token verification (`id_token.rs`).
    #[cfg(feature = "jwt")]
    pub(crate) fn jwks_cache(&self) -> &crate::endpoint::jwks::JwksCache {
        &self.inner.jwks
    }

    /// `url`, or [`Error::NoEndpoint`] naming `name`.
    pub(crate) fn endpoint<'a>(&self, name: &'static str, url: Option<&'a Url>) -> Result<&'a Url, Error> {
        url.ok_or(Error::NoEndpoint { endpoint: name })
    }
}

impl From<OAuth2Client> for TokenEndpoint {
    /// The client's token endpoint.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Client, TokenEndpoint};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let source = ClientCredentials::new(TokenEndpoint::from(client));
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    fn from(client: OAuth2Client) -> Self {
        client.inner.token.clone()
    }
}

impl From<&OAuth2Client> for TokenEndpoint {
    /// The client's token endpoint (a clone: it shares everything).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client, RefreshToken};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// let source = RefreshToken::new((&client).into(), "stored-refresh-token");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    fn from(client: &OAuth2Client) -> Self {
        client.inner.token.clone()
    }
}

impl fmt::Debug for OAuth2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls = &self.inner.urls;
        let show = |url: &Option<Url>| url.as_ref().map(Url::as_str).map(str::to_owned);
        f.debug_struct("OAuth2Client")
            .field("issuer", &self.inner.issuer)
            .field("token", &self.inner.token)
            .field("device_authorization_url", &show(&urls.device_authorization))
            .field("revocation_url", &show(&urls.revocation))
            .field("introspection_url", &show(&urls.introspection))
            .field("userinfo_url", &show(&urls.userinfo))
            .field("authorization_url", &show(&urls.authorization))
            .field(
                "pushed_authorization_request_url",
                &show(&urls.pushed_authorization_request),
            )
            .field("jwks_url", &show(&urls.jwks))
            .field("id_token_signing_algorithms", &self.inner.id_token_algorithms)
            .field("discovered", &self.inner.metadata.is_some())
            .finish()
    }
}

impl OAuth2ClientBuilder {
    /// The token endpoint's URL (required by [`build`](Self::build); with
    /// [`discover`](Self::discover), it replaces the document's).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// # let _ = client;
    /// let err = OAuth2Client::builder(ClientAuth::none("cli")).build().unwrap_err();
    /// assert!(matches!(err, Error::NoEndpoint { endpoint: "token" }));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The issuer identifier, kept for reference (`OAuth2Client::issuer`). With
    /// [`discover`](Self::discover), the issuer given there is used.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .issuer("https://auth.example.com")
    ///     .token_url("https://auth.example.com/token")
    ///     .build()?;
    /// assert_eq!(client.issuer(), Some("https://auth.example.com"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    url_setter!(
        /// The device authorization endpoint's URL (RFC 8628 §3.1).
        device_authorization_url,
        device_authorization,
        "/device"
    );
    url_setter!(
        /// The revocation endpoint's URL (RFC 7009).
        revocation_url,
        revocation,
        "/revoke"
    );
    url_setter!(
        /// The introspection endpoint's URL (RFC 7662).
        introspection_url,
        introspection,
        "/introspect"
    );
    url_setter!(
        /// The OpenID Connect userinfo endpoint's URL.
        userinfo_url,
        userinfo,
        "/userinfo"
    );
    url_setter!(
        /// The authorization endpoint's URL.
        authorization_url,
        authorization,
        "/authorize"
    );
    url_setter!(
        /// The pushed authorization request endpoint's URL (RFC 9126).
        pushed_authorization_request_url,
        pushed_authorization_request,
        "/par"
    );
    url_setter!(
        /// The server's JSON Web Key Set URL (`jwks_uri`).
        jwks_url,
        jwks,
        "/jwks"
    );

    /// The HTTP client for every request to the server, discovery included (default:
    /// `HttpClient::hyper()`).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .http_client(HttpClient::hyper()?.with_max_body_size(64 * 1024))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// The clock (default: the system clock); see
    /// [`TokenEndpointBuilder::clock`](crate::TokenEndpointBuilder::clock).
    ///
    /// ```
    /// use tower_oauth2::clock::ManualClock;
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The lifetime of tokens whose response has no `expires_in`; see
    /// [`TokenEndpointBuilder::default_lifetime`](crate::TokenEndpointBuilder::default_lifetime).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .default_lifetime(Duration::from_secs(300))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = Some(lifetime);
        self
    }

    /// The algorithms the server signs ID tokens with (`ES256`, `RS256`, ...), for a client
    /// built by hand: ID tokens signed otherwise are refused (feature `jwt`). They replace the
    /// discovery document's `id_token_signing_alg_values_supported`; without either, only
    /// `RS256` is accepted (OpenID Connect Discovery §3). `none` is never accepted.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
    ///     .issuer("https://auth.example.com")
    ///     .token_url("https://auth.example.com/token")
    ///     .jwks_url("https://auth.example.com/jwks")
    ///     .id_token_signing_algorithms(["ES256", "RS256"])
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn id_token_signing_algorithms<I, A>(mut self, algorithms: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.id_token_algorithms = Some(algorithms.into_iter().map(Into::into).collect());
        self
    }

    /// Accepts plain `http` URLs on any host, for every endpoint and for discovery. **Never
    /// in production**; see
    /// [`TokenEndpointBuilder::dangerous_allow_insecure_http`](crate::TokenEndpointBuilder::dangerous_allow_insecure_http).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("http://auth.test-rig:8080/token")
    ///     .dangerous_allow_insecure_http()
    ///     .build()?;
    /// assert!(client.token_endpoint().allows_insecure_http());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn dangerous_allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Builds the client from the URLs given. [`Error::NoEndpoint`] without a token URL;
    /// [`Error::InsecureUrl`] or [`Error::Config`] for a URL that is not `https` (or `http`
    /// on loopback) or is not a URL.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, OAuth2Client};
    ///
    /// let err = OAuth2Client::builder(ClientAuth::none("cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .revocation_url("http://auth.example.com/revoke")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::InsecureUrl { .. }));
    /// ```
    pub fn build(self) -> Result<OAuth2Client, Error> {
        let token_url = self
            .token_url
            .clone()
            .ok_or(Error::NoEndpoint { endpoint: "token" })?;
        let http = match self.http.clone() {
            Some(http) => http,
            None => default_http_client()?,
        };
        let urls = check_urls(&self.urls, self.allow_insecure_http)?;
        self.finish(token_url, http, urls, None)
    }

    /// Builds the client from the server's discovery document, found from `issuer` (or the
    /// document's full URL) as [`endpoint::discovery`](crate::endpoint::discovery) says, with
    /// this builder's HTTP client, clock and `dangerous_allow_insecure_http`. URLs given to
    /// the builder take precedence over the document's; the client authentication is checked
    /// against (and may be switched to) what the server advertises. A client that
    /// authenticates with a certificate (`tls_client_auth`, `self_signed_tls_client_auth`)
    /// uses the document's `mtls_endpoint_aliases` where it has them (RFC 8705 §5; see
    /// [mutual TLS endpoint aliases](crate::endpoint::discovery#mutual-tls-endpoint-aliases-rfc-8705-5)).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    /// #     assert_eq!(request.uri(), "https://auth.example.com/.well-known/openid-configuration");
    /// #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",
    /// #         "revocation_endpoint":"https://auth.example.com/revoke",
    /// #         "token_endpoint_auth_methods_supported":["client_secret_post"]}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-service", "its-secret"))
    ///     .http_client(HttpClient::new(server)) // a stand-in server with a discovery document
    ///     .discover("https://auth.example.com")
    ///     .await?;
    /// assert_eq!(client.revocation_url().unwrap().as_str(), "https://auth.example.com/revoke");
    /// // The server advertises client_secret_post only: the client switched to it.
    /// assert_eq!(client.client_auth().method(), "client_secret_post");
    /// # Ok(()) }
    /// ```
    ///
    /// With a client certificate (RFC 8705), the `mtls_endpoint_aliases` are used:
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",
    /// #         "revocation_endpoint":"https://auth.example.com/revoke",
    /// #         "token_endpoint_auth_methods_supported":["private_key_jwt","tls_client_auth"],
    /// #         "mtls_endpoint_aliases":{"token_endpoint":"https://mtls.auth.example.com/token"}}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// // In real use: HttpClient::hyper_builder().client_certificate(cert_pem, key_pem)?.build()?
    /// let client = OAuth2Client::builder(ClientAuth::tls_client_auth("my-service"))
    ///     .http_client(HttpClient::new(server)) // a stand-in server with a discovery document
    ///     .discover("https://auth.example.com")
    ///     .await?;
    /// assert_eq!(client.token_endpoint().token_url().as_str(), "https://mtls.auth.example.com/token");
    /// // No alias for revocation: the ordinary endpoint.
    /// assert_eq!(client.revocation_url().unwrap().as_str(), "https://auth.example.com/revoke");
    /// # Ok(()) }
    /// ```
    pub async fn discover(self, issuer: &str) -> Result<OAuth2Client, Error> {
        let locations = discovery::locations(issuer, self.allow_insecure_http)?;
        self.discover_from(locations).await
    }

    /// As [`discover`](Self::discover), from a document at `metadata_url`, which is not where
    /// the specifications put it; the document must still name `issuer` exactly.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token"}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-service", "its-secret"))
    ///     .http_client(HttpClient::new(server)) // a stand-in server
    ///     .discover_at("https://config.example.com/auth/metadata.json", "https://auth.example.com")
    ///     .await?;
    /// assert_eq!(client.issuer(), Some("https://auth.example.com"));
    /// # Ok(()) }
    /// ```
    pub async fn discover_at(self, metadata_url: &str, issuer: &str) -> Result<OAuth2Client, Error> {
        discovery::check_issuer(issuer, self.allow_insecure_http)?;
        let locations = discovery::Locations {
            issuer: issuer.to_owned(),
            urls: vec![parse_endpoint_url(metadata_url, self.allow_insecure_http)?],
        };
        self.discover_from(locations).await
    }

    async fn discover_from(mut self, locations: discovery::Locations) -> Result<OAuth2Client, Error> {
        let http = match self.http.clone() {
            Some(http) => http,
            None => default_http_client()?,
        };
        // The URLs given by hand are checked before anything is sent.
        let given = check_urls(&self.urls, self.allow_insecure_http)?;
        if let Some(url) = &self.token_url {
            parse_endpoint_url(url, self.allow_insecure_http)?;
        }
        let metadata = discovery::fetch(&http, &*self.clock, &locations, self.allow_insecure_http).await?;
        self.auth = metadata.choose_client_auth(self.auth)?;
        // RFC 8705 §5: a client authenticating with a certificate calls the mTLS aliases of
        // the endpoints it authenticates at, where the server publishes them.
        let mtls = matches!(
            self.auth.method(),
            "tls_client_auth" | "self_signed_tls_client_auth"
        );
        let endpoint = |field: &str, plain: Option<&Url>| -> Option<Url> {
            let alias = if mtls {
                metadata.mtls_endpoint_alias(field)
            } else {
                None
            };
            alias.or(plain).cloned()
        };
        let urls = Urls {
            device_authorization: given.device_authorization.or_else(|| {
                endpoint(
                    "device_authorization_endpoint",
                    metadata.device_authorization_endpoint(),
                )
            }),
            revocation: given
                .revocation
                .or_else(|| endpoint("revocation_endpoint", metadata.revocation_endpoint())),
            introspection: given
                .introspection
                .or_else(|| endpoint("introspection_endpoint", metadata.introspection_endpoint())),
            userinfo: given
                .userinfo
                .or_else(|| endpoint("userinfo_endpoint", metadata.userinfo_endpoint())),
            // Visited by the user's browser, not called by the client: never aliased.
            authorization: given
                .authorization
                .or_else(|| metadata.authorization_endpoint().cloned()),
            pushed_authorization_request: given.pushed_authorization_request.or_else(|| {
                endpoint(
                    "pushed_authorization_request_endpoint",
                    metadata.pushed_authorization_request_endpoint(),
                )
            }),
            jwks: given.jwks.or_else(|| metadata.jwks_uri().cloned()),
        };
        let token_url = match self.token_url.take() {
            Some(url) => url,
            None => endpoint("token_endpoint", metadata.token_endpoint())
                .map(String::from)
                .ok_or(crate::endpoint::discovery::DiscoveryError::MissingField(
                    "token_endpoint",
                ))?,
        };
        self.issuer = Some(locations.issuer);
        self.finish(token_url, http, urls, Some(metadata))
    }

    fn finish(
        self,
        token_url: String,
        http: HttpClient,
        urls: Urls<Url>,
        metadata: Option<ServerMetadata>,
    ) -> Result<OAuth2Client, Error> {
        let mut token = TokenEndpoint::builder(token_url, self.auth)
            .http_client(http)
            .clock(self.clock);
        if let Some(lifetime) = self.default_lifetime {
            token = token.default_lifetime(lifetime);
        }
        if self.allow_insecure_http {
            token = token.dangerous_allow_insecure_http();
        }
        Ok(OAuth2Client {
            inner: Arc::new(Inner {
                token: token.build()?,
                issuer: self.issuer,
                urls,
                metadata,
                id_token_algorithms: self.id_token_algorithms,
                #[cfg(feature = "jwt")]
                jwks: Default::default(),
            }),
        })
    }
}

impl fmt::Debug for OAuth2ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2ClientBuilder")
            .field("auth", &self.auth)
            .field("token_url", &self.token_url)
            .field("issuer", &self.issuer)
            .field("urls", &self.urls)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("id_token_signing_algorithms", &self.id_token_algorithms)
            .finish_non_exhaustive()
    }
}

/// Checks every URL given to the builder as the token URL is checked.
fn check_urls(urls: &Urls<String>, allow_insecure_http: bool) -> Result<Urls<Url>, Error> {
    let check = |url: &Option<String>| {
        url.as_deref()
            .map(|u| parse_endpoint_url(u, allow_insecure_http))
            .transpose()
    };
    Ok(Urls {
        device_authorization: check(&urls.device_authorization)?,
        revocation: check(&urls.revocation)?,
        introspection: check(&urls.introspection)?,
        userinfo: check(&urls.userinfo)?,
        authorization: check(&urls.authorization)?,
        pushed_authorization_request: check(&urls.pushed_authorization_request)?,
        jwks: check(&urls.jwks)?,
    })
}
