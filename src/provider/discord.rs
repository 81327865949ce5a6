//! Discord: log a user in, read their id and (verified) e-mail.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::discord::Discord;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://discord.com/api/users/@me");
//! #     let body = r#"{"id":"80351110224678912","username":"nelly","email":"nelly@example.com","verified":false}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let discord = Discord::builder("my-client-id", "my-client-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for Discord
//!     .build()?;
//! let login = discord.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://discord.com/oauth2/authorize?"));
//! let user = discord.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "80351110224678912");
//! assert_eq!(user.email, None); // the address is not verified
//! # Ok(()) }
//! ```
//!
//! Scopes `identify email`; `id_email` reads `/api/users/@me`, whose `id` is a snowflake sent
//! as a string. An e-mail is optional for a Discord account, and Discord says whether it is
//! verified: `id_email` gives it only when `verified` is `true`. Revocation is at
//! `/api/oauth2/token/revoke` (RFC 7009).

use std::fmt;

use url::Url;

use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::Error;
use crate::provider::{
    get_api, id_field, optional_bool, optional_string, with_scopes, IdEmail, IdEmailFuture, Options, Provider,
};
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;

const AUTHORIZATION_URL: &str = "https://discord.com/oauth2/authorize";
const TOKEN_URL: &str = "https://discord.com/api/oauth2/token";
const REVOCATION_URL: &str = "https://discord.com/api/oauth2/token/revoke";
const USER_URL: &str = "https://discord.com/api/users/@me";
const DEFAULT_SCOPES: &str = "identify email";

/// Discord: `id_email` reads `/api/users/@me`. See the [module documentation](self).
///
/// ```
/// use tower_oauth2::provider::discord::Discord;
/// use tower_oauth2::provider::Provider;
///
/// let discord = Discord::new("my-client-id", "my-client-secret")?;
/// assert_eq!(
///     discord.client().token_endpoint().token_url().as_str(),
///     "https://discord.com/api/oauth2/token"
/// );
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct Discord {
    client: OAuth2Client,
    scopes: String,
    user_url: Url,
}

/// Builds a [`Discord`] provider; see [`Discord::builder`].
///
/// ```
/// use tower_oauth2::provider::discord::Discord;
///
/// let discord = Discord::builder("my-client-id", "my-client-secret")
///     .scopes("identify email guilds")
///     .build()?;
/// # let _ = discord;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct DiscordBuilder {
    options: Options,
}

impl Discord {
    /// Discord with the defaults: scopes `identify email`, the secret sent in the form
    /// (`client_secret_post`).
    ///
    /// ```
    /// use tower_oauth2::provider::discord::Discord;
    ///
    /// let discord = Discord::new("my-client-id", "my-client-secret")?;
    /// # let _ = discord;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for Discord's options.
    ///
    /// ```
    /// use tower_oauth2::provider::discord::Discord;
    ///
    /// let discord = Discord::builder("my-client-id", "my-client-secret").build()?;
    /// # let _ = discord;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> DiscordBuilder {
        DiscordBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
        }
    }
}

crate::provider::provider_options!(
    DiscordBuilder,
    "use tower_oauth2::provider::discord::Discord;",
    "Discord::builder(\"my-client-id\", \"my-client-secret\")"
);

impl DiscordBuilder {
    /// Builds the provider. [`Error::Config`] or [`Error::InsecureUrl`] for a base URL that
    /// is not one or is plain `http` off loopback.
    ///
    /// ```
    /// use tower_oauth2::provider::discord::Discord;
    ///
    /// let discord = Discord::builder("id", "secret").base_url("http://127.0.0.1:8080").build()?;
    /// # let _ = discord;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Discord, Error> {
        let options = self.options;
        let client = options
            .client_builder()
            .authorization_url(options.url(AUTHORIZATION_URL)?)
            .token_url(options.url(TOKEN_URL)?)
            .revocation_url(options.url(REVOCATION_URL)?)
            .build()?;
        Ok(Discord {
            client,
            scopes: options.scopes_or(DEFAULT_SCOPES).to_owned(),
            user_url: options.api_url(USER_URL)?,
        })
    }
}

impl fmt::Debug for Discord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discord")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("user_url", &self.user_url.as_str())
            .finish()
    }
}

impl Discord {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let what = "Discord's /users/@me response";
        let user = get_api(&self.client, &self.user_url, token, &[]).await?;
        let fields = user.object(what)?;
        let id = id_field(fields, "id", user.status, what)?;
        let email = optional_string(fields, "email", user.status, what)?;
        let verified = optional_bool(fields, "verified", user.status, what)?.unwrap_or(false);
        Ok(IdEmail {
            id,
            email: email.filter(|_| verified),
        })
    }
}

impl Provider for Discord {
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
