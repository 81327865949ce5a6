//! The token endpoint client: RFC 6749 form requests (§3.2, §4.4.2, §6), client
//! authentication, and response parsing.
//!
//! A [`TokenEndpoint`] is one client (id and authentication method) at one authorization
//! server's token endpoint. The token sources ([`ClientCredentials`](crate::ClientCredentials),
//! [`RefreshToken`](crate::RefreshToken), [`DeviceCode`](crate::DeviceCode)) are built on it,
//! and [`TokenEndpoint::request_token`] sends any other grant.
//!
//! ```no_run
//! use tower_oauth2::{ClientAuth, TokenEndpoint};
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), tower_oauth2::Error> {
//! let endpoint = TokenEndpoint::builder(
//!     "https://auth.example.com/oauth2/token",
//!     ClientAuth::client_secret_basic("my-client", "my-secret"),
//! )
//! .default_lifetime(Duration::from_secs(300)) // for servers that send no expires_in
//! .build()?;
//! let token = endpoint
//!     .request_token(&[("grant_type", "client_credentials"), ("scope", "read")])
//!     .await?;
//! println!("expires at {:?}", token.expires_at());
//! # Ok(()) }
//! ```
//!
//! # TLS required
//!
//! Every endpoint URL must be `https` (RFC 6749 §3.2 for the token endpoint, RFC 9700 §2.6
//! for all of them): the client secret, the grants and the tokens would otherwise cross the
//! network in clear text. Plain `http` is accepted only on loopback hosts, where nothing
//! leaves the machine: `127.0.0.0/8`, `[::1]`, `localhost` and `*.localhost` (RFC 6761). Any
//! other `http` URL is refused with [`Error::InsecureUrl`] when the endpoint is built. A test
//! rig that cannot use TLS or loopback opts out with
//! [`TokenEndpointBuilder::dangerous_allow_insecure_http`]; the endpoints a source adds (the
//! device authorization endpoint of [`DeviceCode`](crate::DeviceCode), say) follow the
//! same rule and inherit that opt-out from their [`TokenEndpoint`].
//!
//! ```
//! use tower_oauth2::{ClientAuth, Error, TokenEndpoint};
//!
//! // Loopback: a local development server or a test.
//! assert!(TokenEndpoint::new("http://127.0.0.1:8080/token", ClientAuth::none("cli")).is_ok());
//! assert!(TokenEndpoint::new("http://localhost:8080/token", ClientAuth::none("cli")).is_ok());
//! // Anywhere else: refused.
//! let err = TokenEndpoint::new("http://auth.example.com/token", ClientAuth::none("cli")).unwrap_err();
//! assert!(matches!(err, Error::InsecureUrl { .. }));
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use tracing::Instrument;
use url::Url;

use crate::client_auth::ClientAuth;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::secret::Redactions;
use crate::store::StoreKey;
use crate::token::{parse_issued_token, Token};
use crate::transport::{server_request, HttpClient, ReadResponse};

/// Form fields whose values are secrets: cut out of any server text that echoes them.
const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "refresh_token",
    "device_code",
    "code",
    "code_verifier",
    "password",
    "assertion",
    "client_assertion",
    "subject_token",
    "actor_token",
    "token",
];

/// One client at one token endpoint. Cheap to clone (clones share everything).
///
/// `Debug` shows the URL, the client id and the method, never the client secret.
///
/// ```
/// use tower_oauth2::{ClientAuth, TokenEndpoint};
///
/// let endpoint = TokenEndpoint::new(
///     "https://auth.example.com/token",
///     ClientAuth::client_secret_basic("my-service", "its-secret"),
/// )?;
/// assert_eq!(endpoint.client_auth().client_id(), "my-service");
/// assert!(!format!("{endpoint:?}").contains("its-secret"));
///
/// // Refused: not http(s), plain http off loopback, or credentials in the URL.
/// assert!(TokenEndpoint::new("ftp://auth.example.com/token", ClientAuth::none("cli")).is_err());
/// assert!(TokenEndpoint::new("http://auth.example.com/token", ClientAuth::none("cli")).is_err());
/// assert!(TokenEndpoint::new("https://me:pw@auth.example.com/token", ClientAuth::none("cli")).is_err());
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct TokenEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    token_url: Url,
    auth: ClientAuth,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    default_lifetime: Option<Duration>,
    allow_insecure_http: bool,
}

/// Builds a [`TokenEndpoint`]; see [`TokenEndpoint::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::clock::ManualClock;
/// use tower_oauth2::{ClientAuth, HttpClient, TokenEndpoint};
///
/// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
///     .http_client(HttpClient::hyper()?.with_timeout(Duration::from_secs(10)))
///     .clock(ManualClock::new())
///     .default_lifetime(Duration::from_secs(300))
///     .build()?;
/// # let _ = endpoint;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
pub struct TokenEndpointBuilder {
    token_url: String,
    auth: ClientAuth,
    http: Option<HttpClient>,
    clock: Arc<dyn Clock>,
    default_lifetime: Option<Duration>,
    allow_insecure_http: bool,
}

impl TokenEndpoint {
    /// Starts building an endpoint for `token_url` with the client authentication `auth`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .default_lifetime(Duration::from_secs(300))
    ///     .build()?;
    /// # let _ = endpoint;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(token_url: impl Into<String>, auth: ClientAuth) -> TokenEndpointBuilder {
        TokenEndpointBuilder {
            token_url: token_url.into(),
            auth,
            http: None,
            clock: Arc::new(SystemClock),
            default_lifetime: None,
            allow_insecure_http: false,
        }
    }

    /// An endpoint with the default HTTP client and clock. The URL must be `https`, or `http`
    /// on a loopback host (see [TLS required](crate::endpoint::token#tls-required)).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("cli"))?;
    /// assert_eq!(endpoint.token_url().as_str(), "https://auth.example.com/token");
    /// assert!(TokenEndpoint::new("not a url", ClientAuth::none("cli")).is_err());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(token_url: impl Into<String>, auth: ClientAuth) -> Result<Self, Error> {
        Self::builder(token_url, auth).build()
    }

    /// The token endpoint's URL.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/oauth2/token", ClientAuth::none("cli"))?;
    /// assert_eq!(endpoint.token_url().host_str(), Some("auth.example.com"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn token_url(&self) -> &Url {
        &self.inner.token_url
    }

    /// The client and its authentication method.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("cli"))?;
    /// assert_eq!(endpoint.client_auth().method(), "none");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn client_auth(&self) -> &ClientAuth {
        &self.inner.auth
    }

    /// The clock this endpoint computes expiry with.
    ///
    /// ```
    /// use tower_oauth2::clock::{Clock, ManualClock};
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// let clock = ManualClock::new();
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// assert_eq!(endpoint.clock().now(), clock.now());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Whether this endpoint was built with
    /// [`dangerous_allow_insecure_http`](TokenEndpointBuilder::dangerous_allow_insecure_http).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("cli"))?;
    /// assert!(!endpoint.allows_insecure_http());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn allows_insecure_http(&self) -> bool {
        self.inner.allow_insecure_http
    }

    /// The HTTP client requests to this server go through (the token endpoint and the other
    /// endpoints of the same server: revocation, introspection, userinfo, discovery).
    pub(crate) fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The store key of a `grant` token with `params` for this client (see
    /// [`TokenSource::store_key`](crate::TokenSource::store_key)): the token URL, the client
    /// id, the grant, `extra` parts and the `scope`, `audience` and `resource` parameters.
    /// `None` when another parameter is set: its value may be a secret, and leaving it out
    /// could make two different tokens share a key.
    pub(crate) fn store_key(&self, grant: &str, params: &Params, extra: &[(&str, &str)]) -> Option<StoreKey> {
        if params
            .iter()
            .any(|(name, _)| !matches!(name, "scope" | "audience" | "resource"))
        {
            return None;
        }
        let base = [
            ("token_endpoint", self.token_url().as_str()),
            ("client_id", self.client_auth().client_id()),
            ("grant_type", grant),
        ];
        Some(StoreKey::from_parts(
            base.into_iter().chain(extra.iter().copied()).chain(params.iter()),
        ))
    }

    /// Checks the URL of another endpoint of the same authorization server (device
    /// authorization, revocation, introspection, ...) as this endpoint's own URL was checked:
    /// absolute, no credentials, and `https` unless loopback or this endpoint allows insecure
    /// http. Every endpoint this crate posts to with the client's credentials goes through it.
    pub(crate) fn endpoint_url(&self, url: &str) -> Result<Url, Error> {
        parse_endpoint_url(url, self.inner.allow_insecure_http)
    }

    /// Sends a token request with the form fields `params` (which must include `grant_type`)
    /// plus the client's authentication, and parses the response into a [`Token`].
    ///
    /// The token's expiry counts from the moment the request was sent.
    ///
    /// If the server echoes a secret of the request in its error text, the secret is replaced
    /// with `[redacted]`: the client secret, and the values of the fields `client_secret`,
    /// `refresh_token`, `device_code`, `code`, `code_verifier`, `password`, `assertion`,
    /// `client_assertion`, `subject_token`, `actor_token` and `token` (revocation and
    /// introspection), and the client assertion signed for the request (see
    /// [`ServerError`](crate::ServerError)).
    ///
    /// ```
    /// use std::time::Duration;
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    /// use tower_oauth2::{ClientAuth, HttpClient, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"Bearer","expires_in":"3600","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
    /// #     ))))
    /// # });
    /// let clock = ManualClock::new();
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .clock(clock.clone())
    ///     .build()?;
    /// // Any grant, by hand (token exchange has its own source, `TokenExchange`).
    /// let token = endpoint
    ///     .request_token(&[
    ///         ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
    ///         ("subject_token", "the-user-token"),
    ///         ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
    ///     ])
    ///     .await?;
    /// assert_eq!(token.access_token().expose(), "abc");
    /// assert_eq!(token.expires_at(), Some(clock.now() + Duration::from_secs(3600)));
    /// assert!(token.extra().contains_key("issued_token_type"));
    /// # Ok(()) }
    /// ```
    pub async fn request_token(&self, params: &[(&str, &str)]) -> Result<Token, Error> {
        self.request_token_redacting(params, &[]).await
    }

    /// [`request_token`](Self::request_token), also redacting `also` (secrets the request
    /// does not carry but the server may know, such as a refresh token rotated out).
    pub(crate) async fn request_token_redacting(
        &self,
        params: &[(&str, &str)],
        also: &[&str],
    ) -> Result<Token, Error> {
        self.request_issued_token(params, also, false).await
    }

    /// [`request_token_redacting`](Self::request_token_redacting), also accepting a token of
    /// type `N_A` when `not_applicable_ok` (RFC 8693 §2.2.1: a token exchange that issued
    /// something other than an access token).
    pub(crate) async fn request_issued_token(
        &self,
        params: &[(&str, &str)],
        also: &[&str],
        not_applicable_ok: bool,
    ) -> Result<Token, Error> {
        let grant_type = params
            .iter()
            .find(|(k, _)| *k == "grant_type")
            .map_or("", |(_, v)| *v);
        let span = tracing::debug_span!("token_request", url = %self.inner.token_url, grant_type);
        async {
            let sent_at = self.inner.clock.now();
            let response = self.post_form(&self.inner.token_url, params, also).await?;
            let result =
                parse_issued_token(&response, sent_at, self.inner.default_lifetime, not_applicable_ok);
            match &result {
                Ok(token) => tracing::debug!(
                    expires_at = ?token.expires_at(),
                    issued_token_type = token.issued_token_type(),
                    "token response received"
                ),
                Err(err) => tracing::debug!(error = %err.report(), "token request failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// POSTs a form to `url` (the token endpoint or another endpoint of the same server that
    /// authenticates clients the same way) and reads the response. Server text in it will
    /// have the request's secrets, and `also`, redacted.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        params: &[(&str, &str)],
        also: &[&str],
    ) -> Result<ReadResponse, Error> {
        let credentials = self
            .inner
            .auth
            .credentials(&self.inner.token_url, self.inner.clock.now())?;
        let assertion = credentials
            .assertion
            .as_ref()
            .map(|assertion| ("client_assertion", assertion.expose()));
        // A parameter the client authentication also sends (`client_id` of an authorization
        // request pushed by a `client_secret_post` client, say) goes once, as the
        // authentication's.
        let body = form_body(
            params
                .iter()
                .filter(|(name, _)| !credentials.form.iter().any(|(auth, _)| auth == name))
                .chain(&credentials.form)
                .chain(&assertion),
        );

        let mut request = server_request(
            http::Method::POST,
            url,
            &[(
                CONTENT_TYPE,
                http::HeaderValue::from_static("application/x-www-form-urlencoded"),
            )],
            body,
        )?;
        let mut redactions = Redactions::default();
        if let Some(secret) = self.inner.auth.secret() {
            redactions.add(secret.expose());
        }
        if let Some(authorization) = &credentials.authorization {
            if let Some(encoded) = authorization.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) {
                redactions.add(encoded);
            }
        }
        for (name, value) in params {
            if SECRET_FIELDS.contains(name) {
                redactions.add(value);
            }
        }
        for value in also {
            redactions.add(value);
        }
        if let Some(assertion) = &credentials.assertion {
            redactions.add(assertion.expose());
        }
        if let Some(authorization) = credentials.authorization {
            request.headers_mut().insert(AUTHORIZATION, authorization);
        }
        let mut response = self.inner.http.send(request, &*self.inner.clock).await?;
        response.redactions = redactions;
        Ok(response)
    }
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("token_url", &self.inner.token_url.as_str())
            .field("auth", &self.inner.auth)
            .field("http", &self.inner.http)
            .field("clock", &self.inner.clock)
            .field("default_lifetime", &self.inner.default_lifetime)
            .field("allow_insecure_http", &self.inner.allow_insecure_http)
            .finish()
    }
}

impl TokenEndpointBuilder {
    /// The HTTP client to send requests with (default: `HttpClient::hyper()`, with the
    /// `hyper-client` feature; without it, an [`HttpClient`] must be given).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, HttpClient, TokenEndpoint};
    ///
    /// let http = HttpClient::hyper()?.with_max_body_size(64 * 1024);
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(http)
    ///     .build()?;
    /// # let _ = endpoint;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// The clock to compute expiry and wait with (default: [`SystemClock`]).
    ///
    /// ```
    /// use tower_oauth2::clock::ManualClock;
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// // In tests: time moves only when the test says so.
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// # let _ = endpoint;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The lifetime to assume when a token response has no `expires_in` (RFC 6749 §5.1 makes
    /// it optional). Without this, such a token never expires and is used until invalidated;
    /// so does one whose expiry would be past what [`SystemTime`](std::time::SystemTime) can
    /// represent (`Duration::MAX`, for example).
    ///
    /// ```
    /// use std::time::Duration;
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    /// use tower_oauth2::{ClientAuth, HttpClient, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"Bearer"}"#,
    /// #     ))))
    /// # });
    /// let clock = ManualClock::new();
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // answers without `expires_in`
    ///     .clock(clock.clone())
    ///     .default_lifetime(Duration::from_secs(300))
    ///     .build()?;
    /// let token = endpoint.request_token(&[("grant_type", "client_credentials")]).await?;
    /// assert_eq!(token.expires_at(), Some(clock.now() + Duration::from_secs(300)));
    /// # Ok(()) }
    /// ```
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = Some(lifetime);
        self
    }

    /// Accepts plain `http` endpoint URLs on any host, for a test rig that can use neither TLS
    /// nor loopback (a server in another container, say). **Never in production**: the
    /// client secret, the grants and the tokens then cross the network in clear text, which
    /// RFC 6749 §3.2 forbids. Without it, such a URL is [`Error::InsecureUrl`].
    ///
    /// The endpoints of sources built on this endpoint (the device authorization URL of
    /// [`DeviceCode::new`](crate::DeviceCode::new)) inherit the opt-out: they carry the same
    /// client credentials to the same server.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::builder("http://auth.test-rig:8080/token", ClientAuth::none("cli"))
    ///     .dangerous_allow_insecure_http()
    ///     .build()?;
    /// assert!(endpoint.allows_insecure_http());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn dangerous_allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Builds the endpoint. Fails with [`Error::Config`] if the URL is not an absolute `http`
    /// or `https` URL, carries credentials, or if no HTTP client was given and the
    /// `hyper-client` feature is off; with [`Error::InsecureUrl`] if it is `http` on a host
    /// other than loopback (unless
    /// [`dangerous_allow_insecure_http`](Self::dangerous_allow_insecure_http)).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, TokenEndpoint};
    ///
    /// let built = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli")).build();
    /// assert!(built.is_ok());
    /// let relative = TokenEndpoint::builder("/token", ClientAuth::none("cli")).build();
    /// assert!(matches!(relative, Err(Error::Config(_))));
    /// let plain = TokenEndpoint::builder("http://10.0.0.1/token", ClientAuth::none("cli")).build();
    /// assert!(matches!(plain, Err(Error::InsecureUrl { .. })));
    /// ```
    pub fn build(self) -> Result<TokenEndpoint, Error> {
        let token_url = parse_endpoint_url(&self.token_url, self.allow_insecure_http)?;
        let http = match self.http {
            Some(http) => http,
            None => default_http_client()?,
        };
        Ok(TokenEndpoint {
            inner: Arc::new(Inner {
                token_url,
                auth: self.auth,
                http,
                clock: self.clock,
                default_lifetime: self.default_lifetime,
                allow_insecure_http: self.allow_insecure_http,
            }),
        })
    }
}

impl fmt::Debug for TokenEndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpointBuilder")
            .field("token_url", &self.token_url)
            .field("auth", &self.auth)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish_non_exhaustive()
    }
}

/// A form body (`application/x-www-form-urlencoded`) that is wiped from memory when the HTTP
/// client drops it: it carries secrets (`client_secret`, `refresh_token`, `device_code`, ...).
///
/// The buffer is sized once for the longest possible encoding, so that it never reallocates
/// (a reallocation would free a partial copy unwiped), and becomes a [`Bytes`] that owns it:
/// the HTTP client can hold and clone it as long as it needs, and the last reference dropped
/// wipes it. Copies the HTTP stack makes (hyper's write buffer, TLS records) are out of reach.
fn form_body<'a>(pairs: impl Iterator<Item = &'a (&'a str, &'a str)> + Clone) -> Bytes {
    // Form-urlencoding at most triples a byte, plus `=` and `&` per pair.
    let bound = pairs
        .clone()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum::<usize>();
    let body = url::form_urlencoded::Serializer::new(String::with_capacity(bound))
        .extend_pairs(pairs.map(|(k, v)| (*k, *v)))
        .finish();
    debug_assert!(body.len() <= bound);
    Bytes::from_owner(zeroize::Zeroizing::new(body.into_bytes()))
}

#[cfg(feature = "hyper-client")]
pub(crate) fn default_http_client() -> Result<HttpClient, Error> {
    HttpClient::hyper()
}

#[cfg(not(feature = "hyper-client"))]
pub(crate) fn default_http_client() -> Result<HttpClient, Error> {
    Err(Error::Config(
        "no HTTP client: pass one with `http_client` or enable the `hyper-client` feature".to_owned(),
    ))
}

/// Parses an endpoint URL: absolute, `https`, or `http` on a loopback host (or anywhere with
/// `allow_insecure_http`).
///
/// URLs with credentials (`https://user:password@host/`) are refused, and never echoed in the
/// error: credentials belong in [`ClientAuth`]. An insecure URL is named in its error without
/// credentials, query or fragment.
pub(crate) fn parse_endpoint_url(url: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let shown = if url.contains('@') {
        "(not shown: it contains '@')"
    } else {
        url
    };
    let parsed =
        Url::parse(url).map_err(|e| Error::Config(format!("invalid endpoint URL {shown:?}: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if parsed.host_str().is_some_and(crate::transport::is_loopback_host) => {}
        "http" if allow_insecure_http => {
            tracing::warn!(
                url = %without_credentials(&parsed),
                "plain http to a host that is not loopback (dangerous_allow_insecure_http): \
                 credentials and tokens cross the network in clear text"
            );
        }
        "http" => {
            return Err(Error::InsecureUrl {
                url: without_credentials(&parsed),
            })
        }
        other => {
            return Err(Error::Config(format!(
                "endpoint URL {shown:?} has scheme {other:?}; expected https (or http on loopback)"
            )))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Config(
            "endpoint URLs must not carry credentials; pass them as ClientAuth".to_owned(),
        ));
    }
    Ok(parsed)
}

/// `url` without credentials, query or fragment: safe to show in errors and logs.
fn without_credentials(url: &Url) -> String {
    let mut shown = url.clone();
    // Only fails for URLs that cannot have credentials, which have none to remove.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.into()
}

/// Extra form parameters a token source sends with every request: `scope`, `audience`,
/// RFC 8707 `resource` values, and anything custom. Values are not shown by `Debug`.
///
/// ```
/// use tower_oauth2::Params;
///
/// let params = Params::new()
///     .scope("read write")
///     .resource("https://api.example.com/")
///     .resource("https://files.example.com/")
///     .param("tenant", "acme");
/// assert_eq!(params.get_all("resource").count(), 2);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// No parameters.
    ///
    /// ```
    /// assert_eq!(tower_oauth2::Params::new().iter().count(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `scope` (space-separated), replacing an earlier one.
    ///
    /// ```
    /// use tower_oauth2::Params;
    ///
    /// let params = Params::new().scope("read").scope("read write");
    /// assert_eq!(params.get_all("scope").collect::<Vec<_>>(), ["read write"]);
    /// ```
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.set("scope", scope)
    }

    /// Sets `audience` (Auth0, Okta and others), replacing an earlier one.
    ///
    /// ```
    /// use tower_oauth2::Params;
    ///
    /// let params = Params::new().audience("https://api.example.com");
    /// assert_eq!(params.get_all("audience").next(), Some("https://api.example.com"));
    /// ```
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.set("audience", audience)
    }

    /// Adds an RFC 8707 `resource` indicator; call once per resource.
    ///
    /// ```
    /// use tower_oauth2::Params;
    ///
    /// let params = Params::new().resource("https://a.example.com/").resource("https://b.example.com/");
    /// assert_eq!(params.get_all("resource").count(), 2);
    /// ```
    pub fn resource(self, resource: impl Into<String>) -> Self {
        self.param("resource", resource)
    }

    /// Adds any parameter (repeatable).
    ///
    /// ```
    /// use tower_oauth2::Params;
    ///
    /// let params = Params::new().param("claims", "a").param("claims", "b");
    /// assert_eq!(params.get_all("claims").collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((name.into(), value.into()));
        self
    }

    /// Sets a parameter, replacing every earlier value of it.
    ///
    /// ```
    /// use tower_oauth2::Params;
    ///
    /// let params = Params::new().param("tenant", "a").param("tenant", "b").set("tenant", "c");
    /// assert_eq!(params.get_all("tenant").collect::<Vec<_>>(), ["c"]);
    /// ```
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.pairs.retain(|(k, _)| *k != name);
        self.pairs.push((name, value.into()));
        self
    }

    /// Every value of the parameter `name`.
    ///
    /// ```
    /// use tower_oauth2::Params;
    ///
    /// let params = Params::new().scope("read");
    /// assert_eq!(params.get_all("scope").collect::<Vec<_>>(), ["read"]);
    /// assert_eq!(params.get_all("audience").next(), None);
    /// ```
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All parameters, in order.
    ///
    /// ```
    /// use tower_oauth2::Params;
    ///
    /// let params = Params::new().scope("read").param("tenant", "acme");
    /// assert_eq!(params.iter().collect::<Vec<_>>(), [("scope", "read"), ("tenant", "acme")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.pairs.iter().map(|(k, _)| k)).finish()
    }
}

/// Gives a token source `scope`, `audience`, `resource` and `param` setters that fill its
/// `params: Params` field, each with an example that builds that source (one arm per source:
/// a new source adds its arm with the expression that builds it from `endpoint`).
macro_rules! param_setters {
    (ClientCredentials) => {
        $crate::endpoint::token::param_setters!(@impl ClientCredentials, "ClientCredentials::new(endpoint)");
    };
    (RefreshToken) => {
        $crate::endpoint::token::param_setters!(@impl RefreshToken, "RefreshToken::new(endpoint, \"stored-refresh-token\")");
    };
    (DeviceCode) => {
        $crate::endpoint::token::param_setters!(@impl DeviceCode, "DeviceCode::new(endpoint, \"https://auth.example.com/device\")?");
    };
    (JwtBearer) => {
        $crate::endpoint::token::param_setters!(@impl JwtBearer, "JwtBearer::from_assertion_fn(endpoint, || async { Ok(\"signed.jwt.assertion\".into()) })");
    };
    (@impl $ty:ident, $new:literal) => {
        impl $ty {
            /// Sets `scope` (space-separated) on every request of this source, replacing an
            /// earlier one.
            ///
            /// ```
            #[doc = concat!("use tower_oauth2::{ClientAuth, TokenEndpoint, ", stringify!($ty), "};")]
            ///
            /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("app"))?;
            #[doc = concat!("let source = ", $new, ".scope(\"openid offline_access\");")]
            /// # let _ = source;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn scope(mut self, scope: impl Into<String>) -> Self {
                self.params = self.params.scope(scope);
                self
            }

            /// Sets `audience` (Auth0, Okta and others) on every request of this source,
            /// replacing an earlier one.
            ///
            /// ```
            #[doc = concat!("use tower_oauth2::{ClientAuth, TokenEndpoint, ", stringify!($ty), "};")]
            ///
            /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("app"))?;
            #[doc = concat!("let source = ", $new, ".audience(\"https://api.example.com\");")]
            /// # let _ = source;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn audience(mut self, audience: impl Into<String>) -> Self {
                self.params = self.params.audience(audience);
                self
            }

            /// Adds an RFC 8707 `resource` indicator to every request of this source; call once
            /// per resource.
            ///
            /// ```
            #[doc = concat!("use tower_oauth2::{ClientAuth, TokenEndpoint, ", stringify!($ty), "};")]
            ///
            /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("app"))?;
            #[doc = concat!("let source = ", $new)]
            ///     .resource("https://orders.example.com/")
            ///     .resource("https://files.example.com/");
            /// # let _ = source;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn resource(mut self, resource: impl Into<String>) -> Self {
                self.params = self.params.resource(resource);
                self
            }

            /// Adds any parameter to every request of this source (repeatable).
            ///
            /// ```
            #[doc = concat!("use tower_oauth2::{ClientAuth, TokenEndpoint, ", stringify!($ty), "};")]
            ///
            /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("app"))?;
            #[doc = concat!("let source = ", $new, ".param(\"tenant\", \"acme\");")]
            /// # let _ = source;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
                self.params = self.params.param(name, value);
                self
            }

            /// Replaces all extra parameters of this source.
            ///
            /// ```
            #[doc = concat!("use tower_oauth2::{ClientAuth, Params, TokenEndpoint, ", stringify!($ty), "};")]
            ///
            /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("app"))?;
            /// let params = Params::new().scope("read").param("tenant", "acme");
            #[doc = concat!("let source = ", $new, ".params(params);")]
            /// # let _ = source;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn params(mut self, params: $crate::Params) -> Self {
                self.params = params;
                self
            }
        }
    };
}
pub(crate) use param_setters;

/// The grant's own fields followed by the source's extra parameters.
pub(crate) fn with_params<'a>(grant: &[(&'a str, &'a str)], params: &'a Params) -> Vec<(&'a str, &'a str)> {
    grant.iter().copied().chain(params.iter()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_encoded_within_the_buffer_sized_for_them() {
        // The worst cases of form-urlencoding: every byte percent-encoded (multibyte UTF-8,
        // reserved characters), spaces, and empty values.
        let worst = "é€😀&=+%/ \u{1}";
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", worst),
            ("client_secret", ""),
            (worst, worst),
        ];
        let body = form_body(pairs.iter());
        let expected = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        // `form_body` debug-asserts that the encoding fitted the buffer (no reallocation).
        assert_eq!(&body[..], expected.as_bytes());
        assert!(form_body([].iter()).is_empty());
    }
}
