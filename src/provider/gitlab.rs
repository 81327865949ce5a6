//! GitLab, on gitlab.com or self-hosted: log a user in, read their id and e-mail.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::gitlab::GitLab;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://git.example.com/gitlab/api/v4/user");
//! #     let body = r#"{"id":42,"username":"alice","email":"alice@example.com"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let gitlab = GitLab::builder("my-application-id", "my-secret")
//!     .base_url("https://git.example.com/gitlab") // a self-hosted instance
//!     .http_client(HttpClient::new(server)) // a stand-in for it
//!     .build()?;
//! let login = gitlab.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://git.example.com/gitlab/oauth/authorize?"));
//! let user = gitlab.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!((user.id.as_str(), user.email.as_deref()), ("42", Some("alice@example.com")));
//! # Ok(()) }
//! ```
//!
//! Endpoints under the instance's URL (default `https://gitlab.com`, another with
//! [`base_url`](GitLabBuilder::base_url)): `/oauth/authorize`, `/oauth/token`,
//! `/oauth/revoke` (RFC 7009) and the REST API's `/api/v4/user`, whose `id` is a number and
//! `email` the user's primary e-mail: gitlab.com confirms addresses, but a self-managed instance
//! may not (e-mail confirmation is an administrator's setting there), so treat that address as
//! only as trustworthy as the instance. The default scope is `read_user`. GitLab's access
//! tokens expire after two hours and come with a refresh token: the login's
//! [`RefreshToken`](crate::RefreshToken) source keeps them fresh.

use std::fmt;

use url::Url;

use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::Error;
use crate::provider::{
    get_api, id_field, optional_string, with_scopes, IdEmail, IdEmailFuture, Options, Provider,
};
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;

const AUTHORIZATION_URL: &str = "https://gitlab.com/oauth/authorize";
const TOKEN_URL: &str = "https://gitlab.com/oauth/token";
const REVOCATION_URL: &str = "https://gitlab.com/oauth/revoke";
const USER_URL: &str = "https://gitlab.com/api/v4/user";
const DEFAULT_SCOPES: &str = "read_user";

/// GitLab: `id_email` reads `/api/v4/user`. See the [module documentation](self).
///
/// ```
/// use tower_oauth2::provider::gitlab::GitLab;
/// use tower_oauth2::provider::Provider;
///
/// let gitlab = GitLab::new("my-application-id", "my-secret")?;
/// assert_eq!(
///     gitlab.client().revocation_url().map(|u| u.as_str()),
///     Some("https://gitlab.com/oauth/revoke")
/// );
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct GitLab {
    client: OAuth2Client,
    scopes: String,
    user_url: Url,
}

/// Builds a [`GitLab`] provider; see [`GitLab::builder`].
///
/// ```
/// use tower_oauth2::provider::gitlab::GitLab;
///
/// let gitlab = GitLab::builder("my-application-id", "my-secret")
///     .base_url("https://gitlab.example.com")
///     .scopes("read_user openid")
///     .build()?;
/// # let _ = gitlab;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct GitLabBuilder {
    options: Options,
}

impl GitLab {
    /// gitlab.com with the defaults: scope `read_user`, the secret sent in the form
    /// (`client_secret_post`).
    ///
    /// ```
    /// use tower_oauth2::provider::gitlab::GitLab;
    ///
    /// let gitlab = GitLab::new("my-application-id", "my-secret")?;
    /// # let _ = gitlab;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for GitLab's options: [`base_url`](GitLabBuilder::base_url) for a
    /// self-hosted instance.
    ///
    /// ```
    /// use tower_oauth2::provider::gitlab::GitLab;
    ///
    /// let gitlab = GitLab::builder("my-application-id", "my-secret")
    ///     .base_url("https://gitlab.example.com")
    ///     .build()?;
    /// # let _ = gitlab;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> GitLabBuilder {
        GitLabBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
        }
    }
}

crate::provider::provider_options!(
    GitLabBuilder,
    "use tower_oauth2::provider::gitlab::GitLab;",
    "GitLab::builder(\"my-application-id\", \"my-secret\")"
);

impl GitLabBuilder {
    /// Builds the provider. [`Error::Config`] or [`Error::InsecureUrl`] for a base URL that
    /// is not one or is plain `http` off loopback.
    ///
    /// ```
    /// use tower_oauth2::provider::gitlab::GitLab;
    ///
    /// let gitlab = GitLab::builder("id", "secret").base_url("https://gitlab.example.com").build()?;
    /// assert_eq!(
    ///     gitlab.client().token_endpoint().token_url().as_str(),
    ///     "https://gitlab.example.com/oauth/token"
    /// );
    /// # use tower_oauth2::provider::Provider;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<GitLab, Error> {
        let options = self.options;
        let client = options
            .client_builder()
            .authorization_url(options.url(AUTHORIZATION_URL)?)
            .token_url(options.url(TOKEN_URL)?)
            .revocation_url(options.url(REVOCATION_URL)?)
            .build()?;
        Ok(GitLab {
            client,
            scopes: options.scopes_or(DEFAULT_SCOPES).to_owned(),
            user_url: options.api_url(USER_URL)?,
        })
    }
}

impl fmt::Debug for GitLab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLab")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("user_url", &self.user_url.as_str())
            .finish()
    }
}

impl GitLab {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let what = "GitLab's /api/v4/user response";
        let user = get_api(&self.client, &self.user_url, token, &[]).await?;
        let fields = user.object(what)?;
        Ok(IdEmail {
            id: id_field(fields, "id", user.status, what)?,
            email: optional_string(fields, "email", user.status, what)?,
        })
    }
}

impl Provider for GitLab {
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
