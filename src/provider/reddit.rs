//! Reddit: HTTP Basic client authentication only, a descriptive `User-Agent` on every request,
//! `duration=permanent` for a refresh token, and no e-mail.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::reddit::Reddit;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://oauth.reddit.com/api/v1/me");
//! #     assert_eq!(request.headers()["user-agent"], "web:com.example.myapp:v1.0 (by /u/example)");
//! #     let body = r#"{"id":"1w72","name":"spez"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let reddit = Reddit::builder(
//!     "my-client-id",
//!     "my-client-secret",
//!     "web:com.example.myapp:v1.0 (by /u/example)", // Reddit's format: platform:app id:version (by /u/you)
//! )
//! .http_client(HttpClient::new(server)) // a stand-in for Reddit
//! .build()?;
//! let login = reddit.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().contains("duration=permanent"));
//! // ... after the login:
//! let user = reddit.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "1w72");
//! assert_eq!(user.email, None); // Reddit never gives one
//! # Ok(()) }
//! ```
//!
//! | | |
//! |---|---|
//! | Authorization | `https://www.reddit.com/api/v1/authorize`, with `duration=permanent` (default) or `temporary` |
//! | Token | `https://www.reddit.com/api/v1/access_token`, `client_secret_basic` only |
//! | Revocation | `https://www.reddit.com/api/v1/revoke_token` |
//! | User | `https://oauth.reddit.com/api/v1/me`: `id` (the account id, base 36); no e-mail |
//! | Default scopes | `identity` |
//!
//! Reddit's quirks:
//!
//! - **User-Agent.** Reddit throttles or blocks clients without a unique, descriptive
//!   `User-Agent` (`<platform>:<app id>:<version> (by /u/<username>)`). The constructors
//!   require one, and the provider's HTTP client sends it on *every* request: the token
//!   endpoint (code exchange, refresh, revocation) as well as the API. An empty value, or one
//!   that cannot be an HTTP header, is [`Error::Config`].
//! - **Basic authentication only.** The token endpoint refuses credentials in the body: the
//!   client authenticates with `client_secret_basic` (an installed app, which has no secret,
//!   passes `""` and sends `Basic base64("<client id>:")`). A
//!   [`client_auth`](RedditBuilder::client_auth) with another method is [`Error::Config`].
//! - **Refresh tokens** come only with `duration=permanent`, which this provider asks for
//!   unless [`temporary`](RedditBuilder::temporary) is set; temporary tokens last one hour.
//! - **No e-mail.** `/api/v1/me` never gives one: `email` is always `None`. The `id` is the
//!   account's id (stable); the username is the response's `name` (httpx-oauth returns that
//!   one as the id).
//!
//! The `User-Agent` is set on the HTTP client given (or the default one) with
//! [`HttpClient::with_header`](crate::HttpClient::with_header), so its timeout and body limit apply and their errors are the
//! usual [`Error::Timeout`] and [`Error::BodyTooLarge`].

use std::fmt;

use http::header::USER_AGENT;
use http::HeaderValue;
use url::Url;

use super::{get_api, id_field, provider_options, with_scopes, IdEmail, IdEmailFuture, Options, Provider};
use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::endpoint::token::default_http_client;
use crate::error::Error;
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;

const AUTHORIZATION_URL: &str = "https://www.reddit.com/api/v1/authorize";
const TOKEN_URL: &str = "https://www.reddit.com/api/v1/access_token";
const REVOCATION_URL: &str = "https://www.reddit.com/api/v1/revoke_token";
const ME_URL: &str = "https://oauth.reddit.com/api/v1/me";
const DEFAULT_SCOPES: &str = "identity";

/// Reddit (see the [module documentation](self)).
///
/// ```
/// use tower_oauth2::provider::reddit::Reddit;
/// use tower_oauth2::provider::Provider;
///
/// let reddit = Reddit::new("my-client-id", "my-client-secret", "web:com.example.myapp:v1.0 (by /u/example)")?;
/// assert_eq!(reddit.client().client_auth().method(), "client_secret_basic");
/// assert_eq!(reddit.user_agent(), "web:com.example.myapp:v1.0 (by /u/example)");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct Reddit {
    client: OAuth2Client,
    me_url: Url,
    user_agent: HeaderValue,
    scopes: String,
    permanent: bool,
}

/// Builds a [`Reddit`]; see [`Reddit::builder`].
///
/// ```
/// use tower_oauth2::provider::reddit::Reddit;
///
/// let reddit = Reddit::builder("my-client-id", "my-client-secret", "web:com.example.myapp:v1.0 (by /u/example)")
///     .scopes("identity read")
///     .temporary()
///     .build()?;
/// # let _ = reddit;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct RedditBuilder {
    options: Options,
    user_agent: String,
    permanent: bool,
}

provider_options!(
    RedditBuilder,
    "use tower_oauth2::provider::reddit::Reddit;",
    "Reddit::builder(\"my-client-id\", \"my-client-secret\", \"web:com.example.myapp:v1.0 (by /u/example)\")"
);

impl Reddit {
    /// Reddit with the default options; `user_agent` goes on every request (see the
    /// [module documentation](self)).
    ///
    /// ```
    /// use tower_oauth2::provider::reddit::Reddit;
    /// use tower_oauth2::Error;
    ///
    /// let reddit = Reddit::new("my-client-id", "my-client-secret", "web:com.example.myapp:v1.0 (by /u/example)")?;
    /// # let _ = reddit;
    /// let err = Reddit::new("my-client-id", "my-client-secret", " ").unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        user_agent: impl Into<String>,
    ) -> Result<Self, Error> {
        Self::builder(client_id, client_secret, user_agent).build()
    }

    /// A builder for the other options. The secret is sent as `client_secret_basic`; an
    /// installed app passes `""`.
    ///
    /// ```
    /// use tower_oauth2::provider::reddit::Reddit;
    ///
    /// // An installed app: no secret.
    /// let reddit = Reddit::builder("my-client-id", "", "android:com.example.myapp:v2.1 (by /u/example)").build()?;
    /// # let _ = reddit;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        user_agent: impl Into<String>,
    ) -> RedditBuilder {
        RedditBuilder {
            options: Options::new(ClientAuth::client_secret_basic(client_id, client_secret)),
            user_agent: user_agent.into(),
            permanent: true,
        }
    }

    /// The `User-Agent` every request carries.
    ///
    /// ```
    /// use tower_oauth2::provider::reddit::Reddit;
    ///
    /// let reddit = Reddit::new("id", "secret", "script:com.example.bot:v0.3 (by /u/example)")?;
    /// assert_eq!(reddit.user_agent(), "script:com.example.bot:v0.3 (by /u/example)");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn user_agent(&self) -> &str {
        // Checked to be visible ASCII when built.
        self.user_agent.to_str().unwrap_or_default()
    }
}

impl fmt::Debug for Reddit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reddit")
            .field("client", &self.client)
            .field("me_url", &self.me_url.as_str())
            .field("user_agent", &self.user_agent)
            .field("scopes", &self.scopes)
            .field("permanent", &self.permanent)
            .finish()
    }
}

impl RedditBuilder {
    /// Asks for `duration=temporary`: a one-hour access token and no refresh token (default:
    /// `permanent`, which comes with a refresh token).
    ///
    /// ```
    /// use tower_oauth2::provider::reddit::Reddit;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let reddit = Reddit::builder("id", "secret", "web:com.example.myapp:v1.0 (by /u/example)")
    ///     .temporary()
    ///     .build()?;
    /// let login = reddit.authorization_request("https://app.example.com/callback").build()?;
    /// assert!(login.url().as_str().contains("duration=temporary"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn temporary(mut self) -> Self {
        self.permanent = false;
        self
    }

    /// Builds the provider (nothing is sent). [`Error::Config`] for an empty or unsendable
    /// `User-Agent`, or an authentication other than `client_secret_basic`; URL errors as
    /// for every provider.
    ///
    /// ```
    /// use tower_oauth2::provider::reddit::Reddit;
    /// use tower_oauth2::{ClientAuth, Error};
    ///
    /// let err = Reddit::builder("id", "secret", "web:com.example.myapp:v1.0 (by /u/example)")
    ///     .client_auth(ClientAuth::client_secret_post("id", "secret"))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Config(_))); // Reddit takes Basic authentication only
    /// ```
    pub fn build(self) -> Result<Reddit, Error> {
        let user_agent = user_agent_header(&self.user_agent)?;
        if self.options.auth.method() != "client_secret_basic" {
            return Err(Error::Config(format!(
                "Reddit's token endpoint takes client_secret_basic only, not {}",
                self.options.auth.method()
            )));
        }
        let mut o = self.options;
        let http = match o.http.take() {
            Some(http) => http,
            None => default_http_client()?,
        };
        o.http = Some(http.with_header(USER_AGENT, user_agent.clone())?);
        let client = o
            .client_builder()
            .authorization_url(o.url(AUTHORIZATION_URL)?)
            .token_url(o.url(TOKEN_URL)?)
            .revocation_url(o.url(REVOCATION_URL)?)
            .build()?;
        Ok(Reddit {
            client,
            me_url: o.api_url(ME_URL)?,
            user_agent,
            scopes: o.scopes_or(DEFAULT_SCOPES).to_owned(),
            permanent: self.permanent,
        })
    }
}

/// The `User-Agent` as a header value: trimmed, not empty, visible ASCII and spaces only.
fn user_agent_header(user_agent: &str) -> Result<HeaderValue, Error> {
    let user_agent = user_agent.trim();
    if user_agent.is_empty() {
        return Err(Error::Config(
            "Reddit needs a descriptive User-Agent, such as \
             `web:com.example.myapp:v1.0 (by /u/your_username)`"
                .to_owned(),
        ));
    }
    if !user_agent.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::Config(
            "the Reddit User-Agent must be printable ASCII (it is an HTTP header)".to_owned(),
        ));
    }
    HeaderValue::from_str(user_agent)
        .map_err(|_| Error::Config("the Reddit User-Agent cannot be sent as an HTTP header".to_owned()))
}

impl Provider for Reddit {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        with_scopes(self.client.authorization_request(redirect_uri), &self.scopes)
            .param("duration", if self.permanent { "permanent" } else { "temporary" })
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(async move {
            // The HTTP client puts the User-Agent on; it is given here too, in case the
            // client is ever shared with one that does not.
            let headers = [(USER_AGENT, self.user_agent.clone())];
            let response = get_api(&self.client, &self.me_url, token, &headers).await?;
            let me = response.object("Reddit's /api/v1/me")?;
            Ok(IdEmail {
                id: id_field(me, "id", response.status, "Reddit's /api/v1/me")?,
                email: None,
            })
        })
    }
}
