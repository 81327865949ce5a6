//! GitHub (OAuth apps and GitHub apps): log a user in, read their id and e-mail.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::github::GitHub;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     let body = match request.uri().path() {
//! #         "/user" => r#"{"id":583231,"login":"octocat","email":null}"#,
//! #         _ => r#"[{"email":"old@example.com","primary":false,"verified":true},
//! #                  {"email":"octocat@example.com","primary":true,"verified":true}]"#,
//! #     };
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let github = GitHub::builder("my-client-id", "my-client-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for GitHub
//!     .build()?;
//! let login = github.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://github.com/login/oauth/authorize?"));
//! // ... the user comes back; `github.client().exchange_code(...)` gives the token ...
//! let user = github.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "583231");
//! // A private e-mail: read from /user/emails, the primary verified one.
//! assert_eq!(user.email.as_deref(), Some("octocat@example.com"));
//! # Ok(()) }
//! ```
//!
//! GitHub's deviations, handled:
//!
//! - Its token endpoint answers form-encoded unless asked for JSON: the crate's token requests
//!   send `Accept: application/json`, and a form-encoded answer is read all the same.
//! - It answers token errors (a wrong or expired code: `bad_verification_code`) with HTTP
//!   200: the `error` field makes them [`Error::OAuth2`] whatever the
//!   status.
//! - A user whose e-mail is private has `"email": null` in `/user`: the e-mail is then the
//!   primary, verified address of `/user/emails` (scope `user:email`), or none.
//! - Its API refuses requests without a `User-Agent`: the crate's is sent, with
//!   `Accept: application/vnd.github+json` and the API version header.
//!
//! GitHub's token revocation is not RFC 7009 (`DELETE /applications/{client_id}/grant`), so
//! the client has no revocation URL. GitHub Enterprise Server has its API under `/api/v3`:
//! not covered by [`base_url`](GitHubBuilder::base_url).

use std::fmt;

use http::header::{HeaderName, ACCEPT};
use http::HeaderValue;
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

const AUTHORIZATION_URL: &str = "https://github.com/login/oauth/authorize";
const TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
const USER_URL: &str = "https://api.github.com/user";
const EMAILS_URL: &str = "https://api.github.com/user/emails";
/// Read the profile and the e-mail addresses, private ones included (not `user`, which can
/// also write the profile).
const DEFAULT_SCOPES: &str = "read:user user:email";
const API_VERSION: &str = "2022-11-28";

/// GitHub: `id_email` reads `/user`, then `/user/emails` for a private e-mail. See the
/// [module documentation](self).
///
/// ```
/// use tower_oauth2::provider::github::GitHub;
/// use tower_oauth2::provider::Provider;
///
/// let github = GitHub::new("my-client-id", "my-client-secret")?;
/// assert_eq!(github.client().client_auth().method(), "client_secret_post");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct GitHub {
    client: OAuth2Client,
    scopes: String,
    user_url: Url,
    emails_url: Url,
}

/// Builds a [`GitHub`] provider; see [`GitHub::builder`].
///
/// ```
/// use tower_oauth2::provider::github::GitHub;
///
/// let github = GitHub::builder("my-client-id", "my-client-secret")
///     .scopes("read:user user:email repo")
///     .build()?;
/// # let _ = github;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct GitHubBuilder {
    options: Options,
}

impl GitHub {
    /// GitHub with the defaults: scopes `read:user user:email`, the client secret sent in the
    /// form (`client_secret_post`).
    ///
    /// ```
    /// use tower_oauth2::provider::github::GitHub;
    ///
    /// let github = GitHub::new("my-client-id", "my-client-secret")?;
    /// # let _ = github;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for GitHub's options.
    ///
    /// ```
    /// use tower_oauth2::provider::github::GitHub;
    ///
    /// let github = GitHub::builder("my-client-id", "my-client-secret").build()?;
    /// # let _ = github;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> GitHubBuilder {
        GitHubBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
        }
    }
}

crate::provider::provider_options!(
    GitHubBuilder,
    "use tower_oauth2::provider::github::GitHub;",
    "GitHub::builder(\"my-client-id\", \"my-client-secret\")"
);

impl GitHubBuilder {
    /// Builds the provider. [`Error::Config`] or [`Error::InsecureUrl`] for a base URL that
    /// is not one or is plain `http` off loopback.
    ///
    /// ```
    /// use tower_oauth2::provider::github::GitHub;
    /// use tower_oauth2::Error;
    ///
    /// let err = GitHub::builder("id", "secret").base_url("http://mock.example.com").build().unwrap_err();
    /// assert!(matches!(err, Error::InsecureUrl { .. }));
    /// ```
    pub fn build(self) -> Result<GitHub, Error> {
        let options = self.options;
        let client = options
            .client_builder()
            .authorization_url(options.url(AUTHORIZATION_URL)?)
            .token_url(options.url(TOKEN_URL)?)
            .build()?;
        Ok(GitHub {
            client,
            scopes: options.scopes_or(DEFAULT_SCOPES).to_owned(),
            user_url: options.api_url(USER_URL)?,
            emails_url: options.api_url(EMAILS_URL)?,
        })
    }
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHub")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("user_url", &self.user_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The headers GitHub's REST API asks for (the crate's `User-Agent` is always sent).
fn api_headers() -> [(HeaderName, HeaderValue); 2] {
    [
        (ACCEPT, HeaderValue::from_static("application/vnd.github+json")),
        (
            HeaderName::from_static("x-github-api-version"),
            HeaderValue::from_static(API_VERSION),
        ),
    ]
}

impl GitHub {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let user = get_api(&self.client, &self.user_url, token, &api_headers()).await?;
        let fields = user.object("GitHub's /user response")?;
        let id = id_field(fields, "id", user.status, "GitHub's /user response")?;
        if let Some(email) = optional_string(fields, "email", user.status, "GitHub's /user response")? {
            // The public e-mail: GitHub lets a user show only a verified address.
            return Ok(IdEmail {
                id,
                email: Some(email),
            });
        }
        let emails = get_api(&self.client, &self.emails_url, token, &api_headers()).await?;
        let what = "GitHub's /user/emails response";
        let mut email = None;
        for entry in emails.array(what)? {
            let entry = entry.as_object().ok_or_else(|| Error::MalformedResponse {
                status: emails.status,
                reason: format!("an entry of {what} is not a JSON object"),
            })?;
            let primary = optional_bool(entry, "primary", emails.status, what)?.unwrap_or(false);
            let verified = optional_bool(entry, "verified", emails.status, what)?.unwrap_or(false);
            if primary && verified {
                email = optional_string(entry, "email", emails.status, what)?;
                break;
            }
        }
        Ok(IdEmail { id, email })
    }
}

impl Provider for GitHub {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_moves_every_url() {
        let github = GitHub::builder("id", "secret")
            .base_url("http://127.0.0.1:1234")
            .build()
            .unwrap();
        assert_eq!(
            github.client().token_endpoint().token_url().as_str(),
            "http://127.0.0.1:1234/login/oauth/access_token"
        );
        assert_eq!(github.user_url.as_str(), "http://127.0.0.1:1234/user");
        assert_eq!(github.emails_url.as_str(), "http://127.0.0.1:1234/user/emails");
    }
}
