//! LinkedIn, with "Sign In with LinkedIn using OpenID Connect": the user's id is the userinfo
//! `sub`, the e-mail its `email` claim.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::linkedin::LinkedIn;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://api.linkedin.com/v2/userinfo");
//! #     let body = r#"{"sub":"782bbtaQ","email":"alice@example.com","email_verified":true}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let linkedin = LinkedIn::builder("my-client-id", "my-client-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for LinkedIn
//!     .build()?;
//! let login = linkedin.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://www.linkedin.com/oauth/v2/authorization?"));
//! // ... after the login:
//! let user = linkedin.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "782bbtaQ");
//! assert_eq!(user.email.as_deref(), Some("alice@example.com"));
//! # Ok(()) }
//! ```
//!
//! | | |
//! |---|---|
//! | Authorization | `https://www.linkedin.com/oauth/v2/authorization` |
//! | Token | `https://www.linkedin.com/oauth/v2/accessToken`, `client_secret_post` |
//! | User | `https://api.linkedin.com/v2/userinfo` (OpenID Connect userinfo) |
//! | Default scopes | `openid profile email` |
//!
//! LinkedIn's quirks:
//!
//! - **No PKCE.** LinkedIn enables PKCE only for native apps registered for it; a web app's
//!   code exchange that carries a `code_verifier` fails with `invalid_client`. The
//!   authorization request is built [`without_pkce`](AuthorizationRequest::without_pkce), so
//!   the exchange sends none; `state` still protects the callback.
//! - **No `nonce` in the ID token.** LinkedIn accepts the `nonce` parameter but does not put
//!   it in its ID tokens, so the request is built
//!   [`without_nonce`](AuthorizationRequest::without_nonce): the exchange verifies the ID token
//!   (feature `jwt`) without expecting one. `id_email` does not depend on the ID token.
//! - **The issuer** is `https://www.linkedin.com/oauth` (what its discovery document and ID
//!   tokens say), the keys at `https://www.linkedin.com/oauth/openid/jwks`.
//! - The older `r_liteprofile`/`r_emailaddress` products (`/v2/me`, `/v2/emailAddress`, which
//!   httpx-oauth still calls) are retired for new apps; this provider uses the OpenID Connect
//!   product. Refresh tokens are only issued to LinkedIn's selected partners.
//!
//! `id_email` reads the userinfo endpoint through
//! [`OAuth2Client::userinfo`](crate::OAuth2Client::userinfo): a userinfo `sub` that differs
//! from the ID token's is refused ([`Error::UserInfoSubjectMismatch`]), and an e-mail
//! without `email_verified: true` is not returned.

use super::generic::OpenIdProvider;
use super::{provider_options, IdEmailFuture, Options, Provider};
use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::Error;
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;

const ISSUER: &str = "https://www.linkedin.com/oauth";
const AUTHORIZATION_URL: &str = "https://www.linkedin.com/oauth/v2/authorization";
const TOKEN_URL: &str = "https://www.linkedin.com/oauth/v2/accessToken";
const USERINFO_URL: &str = "https://api.linkedin.com/v2/userinfo";
const JWKS_URL: &str = "https://www.linkedin.com/oauth/openid/jwks";
const DEFAULT_SCOPES: &str = "openid profile email";

/// LinkedIn (see the [module documentation](self)).
///
/// ```
/// use tower_oauth2::provider::linkedin::LinkedIn;
/// use tower_oauth2::provider::Provider;
///
/// let linkedin = LinkedIn::new("my-client-id", "my-client-secret")?;
/// assert_eq!(linkedin.client().client_auth().method(), "client_secret_post");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LinkedIn {
    openid: OpenIdProvider,
}

/// Builds a [`LinkedIn`]; see [`LinkedIn::builder`].
///
/// ```
/// use tower_oauth2::provider::linkedin::LinkedIn;
///
/// let linkedin = LinkedIn::builder("my-client-id", "my-client-secret")
///     .scopes("openid email")
///     .build()?;
/// # let _ = linkedin;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct LinkedInBuilder {
    options: Options,
}

provider_options!(
    LinkedInBuilder,
    "use tower_oauth2::provider::linkedin::LinkedIn;",
    "LinkedIn::builder(\"my-client-id\", \"my-client-secret\")"
);

impl LinkedIn {
    /// LinkedIn with the default options.
    ///
    /// ```
    /// use tower_oauth2::provider::linkedin::LinkedIn;
    ///
    /// let linkedin = LinkedIn::new("my-client-id", "my-client-secret")?;
    /// # let _ = linkedin;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for the other options; the secret is sent as `client_secret_post`.
    ///
    /// ```
    /// use tower_oauth2::provider::linkedin::LinkedIn;
    ///
    /// let linkedin = LinkedIn::builder("my-client-id", "my-client-secret").build()?;
    /// # let _ = linkedin;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> LinkedInBuilder {
        LinkedInBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
        }
    }
}

impl LinkedInBuilder {
    /// Builds the provider (nothing is sent). [`Error::Config`] or [`Error::InsecureUrl`] for
    /// a bad `base_url`.
    ///
    /// ```
    /// use tower_oauth2::provider::linkedin::LinkedIn;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let linkedin = LinkedIn::builder("my-client-id", "my-client-secret").build()?;
    /// assert_eq!(linkedin.client().issuer(), Some("https://www.linkedin.com/oauth"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<LinkedIn, Error> {
        let o = &self.options;
        let client = o
            .client_builder()
            .issuer(o.url(ISSUER)?)
            .authorization_url(o.url(AUTHORIZATION_URL)?)
            .token_url(o.url(TOKEN_URL)?)
            .userinfo_url(o.url(USERINFO_URL)?)
            .jwks_url(o.url(JWKS_URL)?)
            .build()?;
        Ok(LinkedIn {
            openid: OpenIdProvider::from_client(client)?.with_scopes(o.scopes_or(DEFAULT_SCOPES)),
        })
    }
}

impl Provider for LinkedIn {
    fn client(&self) -> &OAuth2Client {
        self.openid.client()
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        // LinkedIn's web apps answer a `code_verifier` with `invalid_client`.
        // Nor does it put the nonce in its ID tokens: none is sent, so the exchange's ID token
        // check expects none.
        self.openid
            .authorization_request(redirect_uri)
            .without_pkce()
            .without_nonce()
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        self.openid.id_email(token)
    }
}
