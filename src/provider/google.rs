//! Google (OpenID Connect): log a user in, read their id and verified e-mail; a refresh token
//! on request.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::google::Google;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://openidconnect.googleapis.com/v1/userinfo");
//! #     let body = r#"{"sub":"110169484474386276334","email":"alice@gmail.com","email_verified":true}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let google = Google::builder("my-client-id.apps.googleusercontent.com", "my-client-secret")
//!     .offline() // a refresh token: access_type=offline, prompt=consent
//!     .http_client(HttpClient::new(server)) // a stand-in for Google
//!     .build()?;
//! let login = google.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().contains("access_type=offline"));
//! let user = google.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "110169484474386276334");
//! assert_eq!(user.email.as_deref(), Some("alice@gmail.com"));
//! # Ok(()) }
//! ```
//!
//! Endpoints as Google's discovery document names them (set by hand: building sends
//! nothing): authorization at `accounts.google.com`, token and revocation (RFC 7009) at
//! `oauth2.googleapis.com`, userinfo at `openidconnect.googleapis.com`, keys at
//! `www.googleapis.com/oauth2/v3/certs`, issuer `https://accounts.google.com`. Scopes
//! `openid email profile`.
//!
//! Google's deviations, handled:
//!
//! - It gives a refresh token only to a request with `access_type=offline`, and only at the
//!   user's first consent unless `prompt=consent` asks again: [`GoogleBuilder::offline`]
//!   adds both.
//! - `id_email` reads the OpenID userinfo endpoint (`sub`, and `email` when
//!   `email_verified` is `true`; the `sub` is checked against the login's ID token), or, with
//!   [`GoogleBuilder::people_api`], the People API as httpx-oauth does (`resourceName`
//!   without its `people/` prefix, which is the same id, and the primary address).

use std::fmt;

use url::Url;

use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::Error;
use crate::provider::{
    get_api, id_field, optional_bool, optional_string, userinfo_id_email, with_scopes, IdEmail,
    IdEmailFuture, Options, Provider,
};
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;

const ISSUER: &str = "https://accounts.google.com";
const AUTHORIZATION_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const REVOCATION_URL: &str = "https://oauth2.googleapis.com/revoke";
const USERINFO_URL: &str = "https://openidconnect.googleapis.com/v1/userinfo";
const JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
const PEOPLE_URL: &str = "https://people.googleapis.com/v1/people/me?personFields=emailAddresses";
const DEFAULT_SCOPES: &str = "openid email profile";

/// Google: `id_email` reads the OpenID userinfo endpoint (or the People API). See the
/// [module documentation](self).
///
/// ```
/// use tower_oauth2::provider::google::Google;
/// use tower_oauth2::provider::Provider;
///
/// let google = Google::new("my-client-id.apps.googleusercontent.com", "my-client-secret")?;
/// assert_eq!(google.client().issuer(), Some("https://accounts.google.com"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct Google {
    client: OAuth2Client,
    scopes: String,
    offline: bool,
    people_url: Option<Url>,
}

/// Builds a [`Google`] provider; see [`Google::builder`].
///
/// ```
/// use tower_oauth2::provider::google::Google;
///
/// let google = Google::builder("my-client-id.apps.googleusercontent.com", "my-client-secret")
///     .offline()
///     .scopes("openid email https://www.googleapis.com/auth/calendar.readonly")
///     .build()?;
/// # let _ = google;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct GoogleBuilder {
    options: Options,
    offline: bool,
    people_api: bool,
}

impl Google {
    /// Google with the defaults: scopes `openid email profile`, no refresh token, the secret
    /// sent in the form (`client_secret_post`).
    ///
    /// ```
    /// use tower_oauth2::provider::google::Google;
    ///
    /// let google = Google::new("my-client-id.apps.googleusercontent.com", "my-client-secret")?;
    /// # let _ = google;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for Google's options.
    ///
    /// ```
    /// use tower_oauth2::provider::google::Google;
    ///
    /// let google = Google::builder("my-client-id.apps.googleusercontent.com", "my-client-secret")
    ///     .offline()
    ///     .build()?;
    /// # let _ = google;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> GoogleBuilder {
        GoogleBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
            offline: false,
            people_api: false,
        }
    }
}

crate::provider::provider_options!(
    GoogleBuilder,
    "use tower_oauth2::provider::google::Google;",
    "Google::builder(\"my-client-id.apps.googleusercontent.com\", \"my-client-secret\")"
);

impl GoogleBuilder {
    /// Asks for a refresh token: `access_type=offline` and `prompt=consent` on every
    /// authorization request (without `prompt=consent`, Google gives a refresh token only the
    /// first time a user consents).
    ///
    /// ```
    /// use tower_oauth2::provider::google::Google;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let google = Google::builder("id", "secret").offline().build()?;
    /// let login = google.authorization_request("https://app.example.com/callback").build()?;
    /// assert!(login.url().as_str().contains("access_type=offline"));
    /// assert!(login.url().as_str().contains("prompt=consent"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn offline(mut self) -> Self {
        self.offline = true;
        self
    }

    /// `id_email` reads the People API (`people/me?personFields=emailAddresses`, needs the
    /// `email` scope) instead of the userinfo endpoint.
    ///
    /// ```
    /// use tower_oauth2::provider::google::Google;
    ///
    /// let google = Google::builder("id", "secret").people_api().build()?;
    /// # let _ = google;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn people_api(mut self) -> Self {
        self.people_api = true;
        self
    }

    /// Builds the provider. [`Error::Config`] or [`Error::InsecureUrl`] for a base URL that
    /// is not one or is plain `http` off loopback.
    ///
    /// ```
    /// use tower_oauth2::provider::google::Google;
    ///
    /// let google = Google::builder("id", "secret").build()?;
    /// # let _ = google;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Google, Error> {
        let options = self.options;
        let issuer = match options.base_url {
            Some(_) => options.url(ISSUER)?.trim_end_matches('/').to_owned(),
            None => ISSUER.to_owned(),
        };
        let client = options
            .client_builder()
            .issuer(issuer)
            .authorization_url(options.url(AUTHORIZATION_URL)?)
            .token_url(options.url(TOKEN_URL)?)
            .revocation_url(options.url(REVOCATION_URL)?)
            .userinfo_url(options.url(USERINFO_URL)?)
            .jwks_url(options.url(JWKS_URL)?)
            .build()?;
        let people_url = match self.people_api {
            true => Some(options.api_url(PEOPLE_URL)?),
            false => None,
        };
        Ok(Google {
            client,
            scopes: options.scopes_or(DEFAULT_SCOPES).to_owned(),
            offline: self.offline,
            people_url,
        })
    }
}

impl fmt::Debug for Google {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Google")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("offline", &self.offline)
            .field("people_api", &self.people_url.is_some())
            .finish()
    }
}

impl Google {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let Some(people_url) = &self.people_url else {
            let user = self.client.userinfo(token).await?;
            return userinfo_id_email(&user);
        };
        let what = "Google's People API response";
        let person = get_api(&self.client, people_url, token, &[]).await?;
        let fields = person.object(what)?;
        let name = id_field(fields, "resourceName", person.status, what)?;
        let id = name.strip_prefix("people/").unwrap_or(&name).to_owned();
        let mut email = None;
        if let Some(addresses) = fields.get("emailAddresses") {
            let malformed = || Error::MalformedResponse {
                status: person.status,
                reason: format!("`emailAddresses` in {what} is not a list of objects"),
            };
            for address in addresses.as_array().ok_or_else(malformed)? {
                let address = address.as_object().ok_or_else(malformed)?;
                let metadata = match address.get("metadata") {
                    Some(serde_json::Value::Object(metadata)) => Some(metadata),
                    _ => None,
                };
                let flag = |name: &str| match metadata {
                    Some(metadata) => optional_bool(metadata, name, person.status, what),
                    None => Ok(None),
                };
                // Only an address Google says is verified: one it has not vouched for is
                // anyone's to claim.
                if flag("primary")? == Some(true) && flag("verified")? == Some(true) {
                    email = optional_string(address, "value", person.status, what)?;
                    break;
                }
            }
        }
        Ok(IdEmail { id, email })
    }
}

impl Provider for Google {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        let request = with_scopes(self.client.authorization_request(redirect_uri), &self.scopes);
        match self.offline {
            true => request.param("access_type", "offline").prompt("consent"),
            false => request,
        }
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(self.fetch_id_email(token))
    }
}
