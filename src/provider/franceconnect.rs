//! FranceConnect (version 2, OpenID Connect): the French State's identity federation, in
//! production or on its integration platform; `acr_values=eidas1` and a `nonce` on every
//! authorization request.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::franceconnect::FranceConnect;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://fcp-low.integ01.dev-franceconnect.fr/api/v2/userinfo");
//! #     let body = r#"{"sub":"b6048e95bb134ec5b1d1e1fa69f287172e91722b9354d637a1bcf2ebb0fd2ef5v1",
//! #         "email":"alice@example.fr","email_verified":true}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let franceconnect = FranceConnect::builder("my-client-id", "my-client-secret")
//!     .integration() // the integration platform, for development
//!     .http_client(HttpClient::new(server)) // a stand-in for FranceConnect
//!     .build()?;
//! let login = franceconnect.authorization_request("https://app.example.fr/callback").build()?;
//! let url = login.url().as_str();
//! assert!(url.starts_with("https://fcp-low.integ01.dev-franceconnect.fr/api/v2/authorize?"));
//! assert!(url.contains("acr_values=eidas1") && url.contains("nonce="));
//! // ... after the login:
//! let user = franceconnect.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.email.as_deref(), Some("alice@example.fr"));
//! # Ok(()) }
//! ```
//!
//! | | Production (default) | Integration ([`integration`](FranceConnectBuilder::integration)) |
//! |---|---|---|
//! | Issuer | `https://oidc.franceconnect.gouv.fr/api/v2` | `https://fcp-low.integ01.dev-franceconnect.fr/api/v2` |
//! | Endpoints | `{issuer}/authorize`, `/token` (`client_secret_post`), `/userinfo`, `/jwks` | the same |
//! | Default scopes | `openid email` | |
//!
//! FranceConnect's requirements, met by this provider:
//!
//! - **`acr_values`**: `eidas1` (the eIDAS "low" level FranceConnect serves); another value
//!   with [`acr_values`](FranceConnectBuilder::acr_values).
//! - **`nonce`**: required. The core flow adds one when `openid` is in the scopes, so
//!   `openid` is always asked for, even when [`scopes`](FranceConnectBuilder::scopes) leaves
//!   it out. `state` is always sent too.
//! - **ID tokens** are signed with ES256 (FranceConnect's recommendation) or RS256, no longer
//!   with the client secret as in version 1. With feature `jwt` they are verified against the
//!   issuer's keys: [`build`](FranceConnectBuilder::build) accepts ES256 and RS256, and
//!   [`discover`](FranceConnectBuilder::discover) the algorithms FranceConnect's discovery
//!   document lists.
//!
//! **The userinfo response is a signed JWT** in version 2 (`Content-Type: application/jwt`),
//! which this crate does not verify. [`Provider::id_email`] reads a JSON userinfo (a test
//! server, a client registered for plain JSON): its `sub` and `email` (only when
//! `email_verified` is `true`). On a signed one:
//!
//! - with feature `jwt`, when the token came with an ID token, `id_email` verifies that ID
//!   token ([`OAuth2Client::verify_id_token`](crate::OAuth2Client::verify_id_token), without a
//!   nonce: the login already checked it) and returns its `sub` as the id, and its `email` if
//!   it has one. FranceConnect puts no e-mail in its ID tokens, so **`email` is `None`** then:
//!   the address is only in the signed userinfo. A refused ID token (expired by now, say) is
//!   [`Error::IdToken`](crate::Error);
//! - otherwise it is [`Error::SignedUserInfoUnsupported`].

use super::generic::OpenIdProvider;
use super::{provider_options, IdEmail, IdEmailFuture, Options, Provider};
use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::Error;
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;

const PRODUCTION: &str = "https://oidc.franceconnect.gouv.fr/api/v2";
const INTEGRATION: &str = "https://fcp-low.integ01.dev-franceconnect.fr/api/v2";
const DEFAULT_SCOPES: &str = "openid email";
const DEFAULT_ACR_VALUES: &str = "eidas1";

/// FranceConnect (see the [module documentation](self)).
///
/// ```
/// use tower_oauth2::provider::franceconnect::FranceConnect;
/// use tower_oauth2::provider::Provider;
///
/// let franceconnect = FranceConnect::new("my-client-id", "my-client-secret")?;
/// assert_eq!(franceconnect.client().issuer(), Some("https://oidc.franceconnect.gouv.fr/api/v2"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FranceConnect {
    openid: OpenIdProvider,
    acr_values: String,
}

/// Builds a [`FranceConnect`]; see [`FranceConnect::builder`].
///
/// ```
/// use tower_oauth2::provider::franceconnect::FranceConnect;
///
/// let franceconnect = FranceConnect::builder("my-client-id", "my-client-secret")
///     .integration()
///     .scopes("openid email given_name family_name")
///     .build()?;
/// # let _ = franceconnect;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct FranceConnectBuilder {
    options: Options,
    integration: bool,
    acr_values: String,
}

provider_options!(
    FranceConnectBuilder,
    "use tower_oauth2::provider::franceconnect::FranceConnect;",
    "FranceConnect::builder(\"my-client-id\", \"my-client-secret\")"
);

impl FranceConnect {
    /// FranceConnect in production, with the default options.
    ///
    /// ```
    /// use tower_oauth2::provider::franceconnect::FranceConnect;
    ///
    /// let franceconnect = FranceConnect::new("my-client-id", "my-client-secret")?;
    /// # let _ = franceconnect;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for the other options; the secret is sent as `client_secret_post`.
    ///
    /// ```
    /// use tower_oauth2::provider::franceconnect::FranceConnect;
    ///
    /// let franceconnect = FranceConnect::builder("my-client-id", "my-client-secret").build()?;
    /// # let _ = franceconnect;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> FranceConnectBuilder {
        FranceConnectBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
            integration: false,
            acr_values: DEFAULT_ACR_VALUES.to_owned(),
        }
    }
}

impl FranceConnectBuilder {
    /// The integration platform (`fcp-low.integ01.dev-franceconnect.fr`), for development
    /// with its test identities, instead of production.
    ///
    /// ```
    /// use tower_oauth2::provider::franceconnect::FranceConnect;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let franceconnect = FranceConnect::builder("my-client-id", "my-client-secret").integration().build()?;
    /// assert_eq!(
    ///     franceconnect.client().token_endpoint().token_url().as_str(),
    ///     "https://fcp-low.integ01.dev-franceconnect.fr/api/v2/token"
    /// );
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn integration(mut self) -> Self {
        self.integration = true;
        self
    }

    /// The `acr_values` sent (default `eidas1`).
    ///
    /// ```
    /// use tower_oauth2::provider::franceconnect::FranceConnect;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let franceconnect = FranceConnect::builder("my-client-id", "my-client-secret")
    ///     .acr_values("eidas2")
    ///     .build()?;
    /// let login = franceconnect.authorization_request("https://app.example.fr/callback").build()?;
    /// assert!(login.url().as_str().contains("acr_values=eidas2"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn acr_values(mut self, acr_values: impl Into<String>) -> Self {
        self.acr_values = acr_values.into();
        self
    }

    /// Builds the provider from FranceConnect's discovery document
    /// (`{issuer}/.well-known/openid-configuration`), with this builder's HTTP client: the
    /// endpoints and the ID token algorithms as the document gives them.
    /// [`Error::NoEndpoint`] if the document has no authorization or userinfo endpoint.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::provider::franceconnect::FranceConnect;
    /// use tower_oauth2::provider::Provider;
    /// use tower_oauth2::HttpClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    /// #     assert_eq!(request.uri(), "https://oidc.franceconnect.gouv.fr/api/v2/.well-known/openid-configuration");
    /// #     let issuer = "https://oidc.franceconnect.gouv.fr/api/v2";
    /// #     let body = format!(r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/authorize",
    /// #         "token_endpoint":"{issuer}/token","userinfo_endpoint":"{issuer}/userinfo",
    /// #         "jwks_uri":"{issuer}/jwks","id_token_signing_alg_values_supported":["ES256","RS256"],
    /// #         "token_endpoint_auth_methods_supported":["client_secret_post"]}}"#);
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let franceconnect = FranceConnect::builder("my-client-id", "my-client-secret")
    ///     .http_client(HttpClient::new(server)) // a stand-in for FranceConnect
    ///     .discover()
    ///     .await?;
    /// assert!(franceconnect.client().metadata().is_some());
    /// # Ok(()) }
    /// ```
    pub async fn discover(self) -> Result<FranceConnect, Error> {
        let o = &self.options;
        let issuer = if self.integration { INTEGRATION } else { PRODUCTION };
        let client = o.client_builder().discover(&o.url(issuer)?).await?;
        self.finish(client)
    }

    /// Builds the provider (nothing is sent); URL errors as for every provider.
    ///
    /// ```
    /// use tower_oauth2::provider::franceconnect::FranceConnect;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let franceconnect = FranceConnect::builder("my-client-id", "my-client-secret").build()?;
    /// assert_eq!(
    ///     franceconnect.client().jwks_url().map(|u| u.as_str()),
    ///     Some("https://oidc.franceconnect.gouv.fr/api/v2/jwks")
    /// );
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<FranceConnect, Error> {
        let o = &self.options;
        let issuer = if self.integration { INTEGRATION } else { PRODUCTION };
        let url = |path: &str| o.url(&format!("{issuer}{path}"));
        let client = o
            .client_builder()
            .issuer(o.url(issuer)?)
            .authorization_url(url("/authorize")?)
            .token_url(url("/token")?)
            .userinfo_url(url("/userinfo")?)
            .jwks_url(url("/jwks")?)
            // What FranceConnect v2 signs ID tokens with (ES256 recommended, RS256 allowed),
            // as its discovery document says.
            .id_token_signing_algorithms(["ES256", "RS256"])
            .build()?;
        self.finish(client)
    }

    fn finish(self, client: OAuth2Client) -> Result<FranceConnect, Error> {
        // `openid` always: it makes the core flow send the nonce FranceConnect requires.
        let scopes = self.options.scopes_or(DEFAULT_SCOPES);
        let scopes = if scopes.split_whitespace().any(|s| s == "openid") {
            scopes.to_owned()
        } else {
            format!("openid {scopes}").trim_end().to_owned()
        };
        Ok(FranceConnect {
            openid: OpenIdProvider::from_client(client)?.with_scopes(scopes),
            acr_values: self.acr_values,
        })
    }
}

impl FranceConnect {
    /// The id (and e-mail, if any) of the token's ID token, verified (see the
    /// [module documentation](self)); [`Error::SignedUserInfoUnsupported`] without one.
    #[cfg(feature = "jwt")]
    async fn id_email_of_id_token(&self, token: &Token) -> Result<IdEmail, Error> {
        let Some(raw) = token.id_token() else {
            return Err(Error::SignedUserInfoUnsupported);
        };
        let id_token = self.openid.client().verify_id_token(raw.expose(), None).await?;
        let claims = id_token.claims();
        Ok(IdEmail {
            id: claims.subject().to_owned(),
            email: claims
                .email()
                .filter(|e| !e.is_empty() && claims.email_verified() == Some(true))
                .map(str::to_owned),
        })
    }

    /// Without feature `jwt`, a signed userinfo cannot be read at all.
    #[cfg(not(feature = "jwt"))]
    async fn id_email_of_id_token(&self, _token: &Token) -> Result<IdEmail, Error> {
        Err(Error::SignedUserInfoUnsupported)
    }
}

impl Provider for FranceConnect {
    fn client(&self) -> &OAuth2Client {
        self.openid.client()
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        let request = self.openid.authorization_request(redirect_uri);
        if self.acr_values.trim().is_empty() {
            request
        } else {
            request.param("acr_values", self.acr_values.clone())
        }
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(async move {
            match self.openid.id_email(token).await {
                Err(Error::SignedUserInfoUnsupported) => self.id_email_of_id_token(token).await,
                other => other,
            }
        })
    }
}
