//! Providers for any service: [`OAuth2Provider`], from explicit URLs and the API endpoint and
//! fields that say who logged in; [`OpenIdProvider`], from an OpenID Connect provider's
//! discovery document, reading the userinfo endpoint.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::generic::OAuth2Provider;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{ClientAuth, HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://api.example.com/2/users/me");
//! #     let body = r#"{"data":{"id":"2244994945","username":"alice"}}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let provider = OAuth2Provider::builder(
//!     ClientAuth::client_secret_basic("my-client-id", "my-client-secret"),
//!     "https://example.com/i/oauth2/authorize",
//!     "https://api.example.com/2/oauth2/token",
//! )
//! .user_url("https://api.example.com/2/users/me")
//! .id_field("data.id") // a path into nested objects
//! .no_email()
//! .scopes("users.read offline.access")
//! .http_client(HttpClient::new(server)) // a stand-in for the service
//! .build()?;
//! let user = provider.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "2244994945");
//! assert_eq!(user.email, None);
//! # Ok(()) }
//! ```

use std::fmt;

use serde_json::{Map, Value};
use url::Url;

use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::clock::Clock;
use crate::error::Error;
use crate::provider::{get_api, userinfo_id_email, with_scopes, IdEmail, IdEmailFuture, Options, Provider};
use crate::token::Token;
use crate::transport::HttpClient;
use crate::AuthorizationRequest;

/// A provider from explicit URLs: the authorization and token endpoints, and the API
/// endpoint (`user_url`) whose JSON answer holds the user's id and e-mail at the paths given
/// (`id` and `email` by default; `a.b` for a field `b` inside an object `a`).
///
/// ```
/// use tower_oauth2::provider::generic::OAuth2Provider;
/// use tower_oauth2::provider::Provider;
/// use tower_oauth2::ClientAuth;
///
/// let provider = OAuth2Provider::builder(
///     ClientAuth::client_secret_post("my-client-id", "my-client-secret"),
///     "https://auth.example.com/authorize",
///     "https://auth.example.com/token",
/// )
/// .user_url("https://api.example.com/me")
/// .build()?;
/// assert_eq!(provider.client().authorization_url().unwrap().host_str(), Some("auth.example.com"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct OAuth2Provider {
    client: OAuth2Client,
    scopes: String,
    params: Vec<(String, String)>,
    user_url: Option<Url>,
    id_field: String,
    email_field: Option<String>,
}

/// Builds an [`OAuth2Provider`]; see [`OAuth2Provider::builder`].
///
/// ```
/// use tower_oauth2::provider::generic::OAuth2Provider;
/// use tower_oauth2::ClientAuth;
///
/// let provider = OAuth2Provider::builder(
///     ClientAuth::client_secret_basic("my-client-id", "my-client-secret"),
///     "https://auth.example.com/authorize",
///     "https://auth.example.com/token",
/// )
/// .revocation_url("https://auth.example.com/revoke")
/// .user_url("https://api.example.com/v1/profile")
/// .id_field("user_id")
/// .email_field("contact.email")
/// .param("audience", "https://api.example.com")
/// .build()?;
/// # let _ = provider;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct OAuth2ProviderBuilder {
    options: Options,
    authorization_url: String,
    token_url: String,
    revocation_url: Option<String>,
    user_url: Option<String>,
    id_field: String,
    email_field: Option<String>,
    params: Vec<(String, String)>,
}

impl OAuth2Provider {
    /// Starts building a provider with the client's authentication and the authorization
    /// and token endpoints.
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let provider = OAuth2Provider::builder(
    ///     ClientAuth::none("my-public-client"), // PKCE only
    ///     "https://auth.example.com/authorize",
    ///     "https://auth.example.com/token",
    /// )
    /// .build()?;
    /// # let _ = provider;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(
        auth: ClientAuth,
        authorization_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> OAuth2ProviderBuilder {
        OAuth2ProviderBuilder {
            options: Options::new(auth),
            authorization_url: authorization_url.into(),
            token_url: token_url.into(),
            revocation_url: None,
            user_url: None,
            id_field: "id".to_owned(),
            email_field: Some("email".to_owned()),
            params: Vec::new(),
        }
    }
}

crate::provider::provider_options!(
    OAuth2ProviderBuilder,
    "use tower_oauth2::{provider::generic::OAuth2Provider, ClientAuth};",
    "OAuth2Provider::builder(ClientAuth::none(\"app\"), \"https://auth.example.com/authorize\", \"https://auth.example.com/token\")"
);

impl OAuth2ProviderBuilder {
    /// The revocation endpoint (RFC 7009), if the service has one.
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::provider::Provider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let provider = OAuth2Provider::builder(ClientAuth::none("app"), "https://a.example.com/auth", "https://a.example.com/token")
    ///     .revocation_url("https://a.example.com/revoke")
    ///     .build()?;
    /// assert!(provider.client().revocation_url().is_some());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn revocation_url(mut self, url: impl Into<String>) -> Self {
        self.revocation_url = Some(url.into());
        self
    }

    /// The API endpoint `id_email` reads with a `GET` and the user's access token. Without
    /// it, `id_email` is [`Error::NoEndpoint`] (`userinfo`).
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let provider = OAuth2Provider::builder(ClientAuth::none("app"), "https://a.example.com/auth", "https://a.example.com/token")
    ///     .user_url("https://api.example.com/me")
    ///     .build()?;
    /// # let _ = provider;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn user_url(mut self, url: impl Into<String>) -> Self {
        self.user_url = Some(url.into());
        self
    }

    /// Where the user's id is in the answer (default `id`): a field name, or names joined by
    /// `.` for nested objects. A string or a number.
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let provider = OAuth2Provider::builder(ClientAuth::none("app"), "https://a.example.com/auth", "https://a.example.com/token")
    ///     .id_field("data.id")
    ///     .build()?;
    /// # let _ = provider;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn id_field(mut self, path: impl Into<String>) -> Self {
        self.id_field = path.into();
        self
    }

    /// Where the user's e-mail is in the answer (default `email`), as for
    /// [`id_field`](Self::id_field). A missing or `null` field is no e-mail.
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let provider = OAuth2Provider::builder(ClientAuth::none("app"), "https://a.example.com/auth", "https://a.example.com/token")
    ///     .email_field("contact.primary_email")
    ///     .build()?;
    /// # let _ = provider;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn email_field(mut self, path: impl Into<String>) -> Self {
        self.email_field = Some(path.into());
        self
    }

    /// The service gives no e-mail: `id_email` never reads one.
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let provider = OAuth2Provider::builder(ClientAuth::none("app"), "https://a.example.com/auth", "https://a.example.com/token")
    ///     .no_email()
    ///     .build()?;
    /// # let _ = provider;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn no_email(mut self) -> Self {
        self.email_field = None;
        self
    }

    /// A parameter added to every authorization request (repeatable).
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::provider::Provider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let provider = OAuth2Provider::builder(ClientAuth::none("app"), "https://a.example.com/auth", "https://a.example.com/token")
    ///     .param("duration", "permanent")
    ///     .build()?;
    /// let login = provider.authorization_request("https://app.example.com/cb").build()?;
    /// assert!(login.url().as_str().contains("duration=permanent"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Builds the provider. [`Error::Config`] or [`Error::InsecureUrl`] for a URL that is not
    /// one or is plain `http` off loopback; [`Error::Config`] for an empty field path.
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OAuth2Provider;
    /// use tower_oauth2::{ClientAuth, Error};
    ///
    /// let err = OAuth2Provider::builder(ClientAuth::none("app"), "https://a.example.com/auth", "http://a.example.com/token")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::InsecureUrl { .. }));
    /// ```
    pub fn build(self) -> Result<OAuth2Provider, Error> {
        let options = self.options;
        let bad_path = |path: &str| path.is_empty() || path.split('.').any(str::is_empty);
        if bad_path(&self.id_field) || self.email_field.as_deref().is_some_and(bad_path) {
            return Err(Error::Config(
                "the id and e-mail field paths must be field names joined by `.`".to_owned(),
            ));
        }
        let mut client = options
            .client_builder()
            .authorization_url(options.url(&self.authorization_url)?)
            .token_url(options.url(&self.token_url)?);
        if let Some(url) = &self.revocation_url {
            client = client.revocation_url(options.url(url)?);
        }
        let user_url = self.user_url.as_deref().map(|u| options.api_url(u)).transpose()?;
        Ok(OAuth2Provider {
            client: client.build()?,
            scopes: options.scopes_or("").to_owned(),
            params: self.params,
            user_url,
            id_field: self.id_field,
            email_field: self.email_field,
        })
    }
}

impl fmt::Debug for OAuth2Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Provider")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("params", &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("user_url", &self.user_url.as_ref().map(Url::as_str))
            .field("id_field", &self.id_field)
            .field("email_field", &self.email_field)
            .finish()
    }
}

/// The value at `path` (names joined by `.`) in `fields`, if every step is there.
fn at_path<'a>(fields: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut names = path.split('.');
    let mut value = fields.get(names.next()?)?;
    for name in names {
        value = value.as_object()?.get(name)?;
    }
    Some(value)
}

impl OAuth2Provider {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let url = self
            .user_url
            .as_ref()
            .ok_or(Error::NoEndpoint { endpoint: "userinfo" })?;
        let what = "the user endpoint's response";
        let user = get_api(&self.client, url, token, &[]).await?;
        let fields = user.object(what)?;
        let malformed = |reason: String| Error::MalformedResponse {
            status: user.status,
            reason,
        };
        let id = match at_path(fields, &self.id_field) {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(Value::Number(id)) => id.to_string(),
            _ => {
                return Err(malformed(format!(
                    "{what} has no `{}` (a non-empty string or a number)",
                    self.id_field
                )))
            }
        };
        let email = match self
            .email_field
            .as_deref()
            .map(|path| (path, at_path(fields, path)))
        {
            None | Some((_, None | Some(Value::Null))) => None,
            Some((_, Some(Value::String(email)))) if email.is_empty() => None,
            Some((_, Some(Value::String(email)))) => Some(email.clone()),
            Some((path, Some(_))) => return Err(malformed(format!("`{path}` in {what} is not a string"))),
        };
        Ok(IdEmail { id, email })
    }
}

impl Provider for OAuth2Provider {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        let mut request = with_scopes(self.client.authorization_request(redirect_uri), &self.scopes);
        for (name, value) in &self.params {
            request = request.param(name.clone(), value.clone());
        }
        request
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(self.fetch_id_email(token))
    }
}

/// The default scopes of an [`OpenIdProvider`].
const OPENID_SCOPES: &str = "openid email profile";

/// An OpenID Connect provider: the client from its discovery document (or one given), scopes
/// `openid email profile` by default, and `id_email` from the userinfo endpoint: `sub`, and
/// `email` only when `email_verified` is `true` (an address the provider has not vouched for
/// is anyone's to claim).
///
/// ```
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// use tower_oauth2::provider::generic::OpenIdProvider;
/// use tower_oauth2::provider::Provider;
/// use tower_oauth2::{ClientAuth, HttpClient, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
/// #     let body = match request.uri().path() {
/// #         "/.well-known/openid-configuration" => r#"{"issuer":"https://id.example.com",
/// #             "authorization_endpoint":"https://id.example.com/authorize",
/// #             "token_endpoint":"https://id.example.com/token",
/// #             "userinfo_endpoint":"https://id.example.com/userinfo"}"#,
/// #         _ => r#"{"sub":"248289761001","email":"jane@example.com","email_verified":true}"#,
/// #     };
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
/// # });
/// let provider = OpenIdProvider::builder(ClientAuth::client_secret_basic("my-client-id", "my-client-secret"))
///     .http_client(HttpClient::new(server)) // a stand-in OpenID provider
///     .discover("https://id.example.com")
///     .await?;
/// let user = provider.id_email(&Token::bearer("the-user-access-token")).await?;
/// assert_eq!(user.id, "248289761001");
/// assert_eq!(user.email.as_deref(), Some("jane@example.com"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenIdProvider {
    client: OAuth2Client,
    scopes: String,
}

/// Builds an [`OpenIdProvider`] by discovery; see [`OpenIdProvider::builder`].
///
/// ```no_run
/// use tower_oauth2::provider::generic::OpenIdProvider;
/// use tower_oauth2::ClientAuth;
///
/// # async fn run() -> Result<(), tower_oauth2::Error> {
/// let provider = OpenIdProvider::builder(ClientAuth::client_secret_basic("my-client-id", "my-client-secret"))
///     .scopes("openid email")
///     .discover("https://id.example.com")
///     .await?;
/// # let _ = provider; Ok(()) }
/// ```
#[must_use]
#[derive(Debug)]
pub struct OpenIdProviderBuilder {
    options: Options,
}

impl OpenIdProvider {
    /// Discovers `issuer` (OpenID Connect Discovery) with the defaults.
    ///
    /// ```no_run
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let provider = OpenIdProvider::discover(
    ///     "https://id.example.com",
    ///     ClientAuth::client_secret_basic("my-client-id", "my-client-secret"),
    /// )
    /// .await?;
    /// # let _ = provider; Ok(()) }
    /// ```
    pub async fn discover(issuer: &str, auth: ClientAuth) -> Result<Self, Error> {
        Self::builder(auth).discover(issuer).await
    }

    /// A builder for the options (HTTP client, clock, scopes), then
    /// [`discover`](OpenIdProviderBuilder::discover).
    ///
    /// ```no_run
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let provider = OpenIdProvider::builder(ClientAuth::none("my-public-client"))
    ///     .discover("https://id.example.com")
    ///     .await?;
    /// # let _ = provider; Ok(()) }
    /// ```
    pub fn builder(auth: ClientAuth) -> OpenIdProviderBuilder {
        OpenIdProviderBuilder {
            options: Options::new(auth),
        }
    }

    /// A provider over a client built some other way (by hand, or discovered with options of
    /// its own). [`Error::NoEndpoint`] if it has no authorization or userinfo endpoint.
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::{ClientAuth, Error, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("app"))
    ///     .issuer("https://id.example.com")
    ///     .authorization_url("https://id.example.com/authorize")
    ///     .token_url("https://id.example.com/token")
    ///     .build()?;
    /// let err = OpenIdProvider::from_client(client).unwrap_err();
    /// assert!(matches!(err, Error::NoEndpoint { endpoint: "userinfo" }));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_client(client: OAuth2Client) -> Result<Self, Error> {
        client.endpoint("authorization", client.authorization_url())?;
        client.endpoint("userinfo", client.userinfo_url())?;
        Ok(OpenIdProvider {
            client,
            scopes: OPENID_SCOPES.to_owned(),
        })
    }

    /// Replaces the scopes (default `openid email profile`).
    ///
    /// ```
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::provider::Provider;
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// let client = OAuth2Client::builder(ClientAuth::none("app"))
    ///     .authorization_url("https://id.example.com/authorize")
    ///     .token_url("https://id.example.com/token")
    ///     .userinfo_url("https://id.example.com/userinfo")
    ///     .build()?;
    /// let provider = OpenIdProvider::from_client(client)?.with_scopes("openid email offline_access");
    /// let login = provider.authorization_request("https://app.example.com/cb").build()?;
    /// assert!(login.url().as_str().contains("offline_access"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[must_use]
    pub fn with_scopes(mut self, scopes: impl Into<String>) -> Self {
        self.scopes = scopes.into();
        self
    }
}

impl OpenIdProviderBuilder {
    /// The HTTP client for discovery, the token endpoint and userinfo.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::{ClientAuth, HttpClient};
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let provider = OpenIdProvider::builder(ClientAuth::none("app"))
    ///     .http_client(HttpClient::hyper()?.with_timeout(Duration::from_secs(10)))
    ///     .discover("https://id.example.com")
    ///     .await?;
    /// # let _ = provider; Ok(()) }
    /// ```
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.options.http = Some(http);
        self
    }

    /// The clock (default: the system clock).
    ///
    /// ```no_run
    /// use tower_oauth2::clock::ManualClock;
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let provider = OpenIdProvider::builder(ClientAuth::none("app"))
    ///     .clock(ManualClock::new())
    ///     .discover("https://id.example.com")
    ///     .await?;
    /// # let _ = provider; Ok(()) }
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.options.clock = Some(std::sync::Arc::new(clock));
        self
    }

    /// Replaces the default scopes (`openid email profile`).
    ///
    /// ```no_run
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let provider = OpenIdProvider::builder(ClientAuth::none("app"))
    ///     .scopes("openid email offline_access")
    ///     .discover("https://id.example.com")
    ///     .await?;
    /// # let _ = provider; Ok(()) }
    /// ```
    pub fn scopes(mut self, scopes: impl Into<String>) -> Self {
        self.options.scopes = Some(scopes.into());
        self
    }

    /// Accepts plain `http` URLs on any host. **Never in production**.
    ///
    /// ```no_run
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::ClientAuth;
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let provider = OpenIdProvider::builder(ClientAuth::none("app"))
    ///     .dangerous_allow_insecure_http()
    ///     .discover("http://id.test-rig:8080")
    ///     .await?;
    /// # let _ = provider; Ok(()) }
    /// ```
    pub fn dangerous_allow_insecure_http(mut self) -> Self {
        self.options.allow_insecure_http = true;
        self
    }

    /// Fetches `issuer`'s discovery document (see
    /// [`OAuth2ClientBuilder::discover`](crate::OAuth2ClientBuilder::discover)) and builds the
    /// provider; [`Error::NoEndpoint`] if the document names no authorization or userinfo
    /// endpoint.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::provider::generic::OpenIdProvider;
    /// use tower_oauth2::{ClientAuth, Error, HttpClient};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"issuer":"https://as.example.com","token_endpoint":"https://as.example.com/token",
    /// #         "authorization_endpoint":"https://as.example.com/authorize"}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let err = OpenIdProvider::builder(ClientAuth::none("app"))
    ///     .http_client(HttpClient::new(server)) // an OAuth server without userinfo
    ///     .discover("https://as.example.com")
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::NoEndpoint { endpoint: "userinfo" }));
    /// # }
    /// ```
    pub async fn discover(self, issuer: &str) -> Result<OpenIdProvider, Error> {
        let client = self.options.client_builder().discover(issuer).await?;
        let provider = OpenIdProvider::from_client(client)?;
        Ok(match self.options.scopes {
            Some(scopes) => provider.with_scopes(scopes),
            None => provider,
        })
    }
}

impl fmt::Debug for OpenIdProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenIdProvider")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl OpenIdProvider {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let user = self.client.userinfo(token).await?;
        userinfo_id_email(&user)
    }
}

impl Provider for OpenIdProvider {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        with_scopes(self.client.authorization_request(redirect_uri), &self.scopes)
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(self.fetch_id_email(token))
    }
}
