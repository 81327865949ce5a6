//! Facebook (Meta) login: read the user's id and e-mail from the Graph API, trade a
//! short-lived token for a long-lived one.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::facebook::Facebook;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     let body = match request.uri().path() {
//! #         "/v21.0/me" => r#"{"id":"10158","email":"alice@example.com"}"#,
//! #         _ => r#"{"access_token":"long-lived","token_type":"bearer","expires_in":5183944}"#,
//! #     };
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let facebook = Facebook::builder("my-app-id", "my-app-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for Facebook
//!     .build()?;
//! let login = facebook.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://www.facebook.com/v21.0/dialog/oauth?"));
//! let token = Token::bearer("short-lived"); // from `facebook.client().exchange_code(...)`
//! let user = facebook.id_email(&token).await?;
//! assert_eq!((user.id.as_str(), user.email.as_deref()), ("10158", Some("alice@example.com")));
//! // About 60 days instead of a few hours:
//! let long_lived = facebook.long_lived_token(&token).await?;
//! assert_eq!(long_lived.access_token().expose(), "long-lived");
//! # Ok(()) }
//! ```
//!
//! The Graph API is versioned: every URL carries the version ([`FacebookBuilder::api_version`],
//! default `v21.0`). Scopes `email public_profile`; `id_email` reads `/me?fields=id,email`
//! (no `email` when the user has none or refused the permission). Graph API errors are an
//! object (`{"error": {"message", "type", "code"}}`), read as [`Error::OAuth2`] with the
//! `type` as the code and the `message` as the description. Facebook has no RFC 7009
//! revocation endpoint.

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

/// The Graph API version used unless [`FacebookBuilder::api_version`] says otherwise.
pub const DEFAULT_API_VERSION: &str = "v21.0";
const DEFAULT_SCOPES: &str = "email public_profile";

/// Facebook: `id_email` reads the Graph API's `/me`; [`long_lived_token`](Self::long_lived_token)
/// trades a token for a long-lived one. See the [module documentation](self).
///
/// ```
/// use tower_oauth2::provider::facebook::Facebook;
/// use tower_oauth2::provider::Provider;
///
/// let facebook = Facebook::new("my-app-id", "my-app-secret")?;
/// assert_eq!(
///     facebook.client().token_endpoint().token_url().as_str(),
///     "https://graph.facebook.com/v21.0/oauth/access_token"
/// );
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct Facebook {
    client: OAuth2Client,
    scopes: String,
    me_url: Url,
}

/// Builds a [`Facebook`] provider; see [`Facebook::builder`].
///
/// ```
/// use tower_oauth2::provider::facebook::Facebook;
///
/// let facebook = Facebook::builder("my-app-id", "my-app-secret")
///     .api_version("v22.0")
///     .build()?;
/// # let _ = facebook;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct FacebookBuilder {
    options: Options,
    version: String,
}

impl Facebook {
    /// Facebook with the defaults: Graph API [`DEFAULT_API_VERSION`], scopes
    /// `email public_profile`, the secret sent in the form (`client_secret_post`).
    ///
    /// ```
    /// use tower_oauth2::provider::facebook::Facebook;
    ///
    /// let facebook = Facebook::new("my-app-id", "my-app-secret")?;
    /// # let _ = facebook;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for Facebook's options.
    ///
    /// ```
    /// use tower_oauth2::provider::facebook::Facebook;
    ///
    /// let facebook = Facebook::builder("my-app-id", "my-app-secret").build()?;
    /// # let _ = facebook;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> FacebookBuilder {
        FacebookBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
            version: DEFAULT_API_VERSION.to_owned(),
        }
    }

    /// Trades a short-lived user access token (from the login) for a long-lived one (about 60
    /// days), with the `fb_exchange_token` grant at the token endpoint and the app's
    /// credentials. The token sent is redacted from any error text.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::provider::facebook::Facebook;
    /// use tower_oauth2::{HttpClient, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"access_token":"long-lived","token_type":"bearer","expires_in":5183944}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let facebook = Facebook::builder("my-app-id", "my-app-secret")
    ///     .http_client(HttpClient::new(server)) // a stand-in for Facebook
    ///     .build()?;
    /// let token = facebook.long_lived_token(&Token::bearer("short-lived")).await?;
    /// assert!(token.expires_at().is_some());
    /// # Ok(()) }
    /// ```
    pub async fn long_lived_token(&self, token: &Token) -> Result<Token, Error> {
        let short = token.access_token().expose();
        self.client
            .token_endpoint()
            .request_token_redacting(
                &[("grant_type", "fb_exchange_token"), ("fb_exchange_token", short)],
                &[short],
            )
            .await
    }
}

crate::provider::provider_options!(
    FacebookBuilder,
    "use tower_oauth2::provider::facebook::Facebook;",
    "Facebook::builder(\"my-app-id\", \"my-app-secret\")"
);

impl FacebookBuilder {
    /// The Graph API version in every URL (`v21.0`, ...; default [`DEFAULT_API_VERSION`]).
    /// [`Error::Config`] when the provider is built if it is not `v` and a version number.
    ///
    /// ```
    /// use tower_oauth2::provider::facebook::Facebook;
    /// use tower_oauth2::Error;
    ///
    /// let facebook = Facebook::builder("id", "secret").api_version("v22.0").build()?;
    /// # use tower_oauth2::provider::Provider;
    /// assert!(facebook.client().token_endpoint().token_url().as_str().contains("/v22.0/"));
    /// let err = Facebook::builder("id", "secret").api_version("../me").build().unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Builds the provider. [`Error::Config`] for a malformed API version or base URL,
    /// [`Error::InsecureUrl`] for a base URL that is plain `http` off loopback.
    ///
    /// ```
    /// use tower_oauth2::provider::facebook::Facebook;
    ///
    /// let facebook = Facebook::builder("id", "secret").build()?;
    /// # let _ = facebook;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Facebook, Error> {
        let version = &self.version;
        let valid = version
            .strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        if !valid {
            return Err(Error::Config(format!(
                "the Graph API version {:?} is not `v` and a version number (v21.0)",
                crate::error::sanitize_server_text(version)
            )));
        }
        let options = self.options;
        let client = options
            .client_builder()
            .authorization_url(options.url(&format!("https://www.facebook.com/{version}/dialog/oauth"))?)
            .token_url(options.url(&format!(
                "https://graph.facebook.com/{version}/oauth/access_token"
            ))?)
            .build()?;
        Ok(Facebook {
            client,
            scopes: options.scopes_or(DEFAULT_SCOPES).to_owned(),
            me_url: options.api_url(&format!(
                "https://graph.facebook.com/{version}/me?fields=id,email"
            ))?,
        })
    }
}

impl fmt::Debug for Facebook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Facebook")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("me_url", &self.me_url.as_str())
            .finish()
    }
}

impl Facebook {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let what = "Facebook's /me response";
        let me = get_api(&self.client, &self.me_url, token, &[]).await?;
        let fields = me.object(what)?;
        Ok(IdEmail {
            id: id_field(fields, "id", me.status, what)?,
            email: optional_string(fields, "email", me.status, what)?,
        })
    }
}

impl Provider for Facebook {
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
