//! Okta, by the organization's domain: a custom authorization server (`default`, or one of its
//! own), or the org authorization server; its endpoints given by Okta's fixed layout or found
//! by OpenID Connect discovery.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::okta::Okta;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://dev-123.okta.com/oauth2/default/v1/userinfo");
//! #     let body = r#"{"sub":"00uid4BxXw6I6TV4m0g3","email":"alice@example.com","email_verified":true}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let okta = Okta::builder("dev-123.okta.com", "my-client-id", "my-client-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for Okta
//!     .build()?;
//! let login = okta.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://dev-123.okta.com/oauth2/default/v1/authorize?"));
//! // ... after the login:
//! let user = okta.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "00uid4BxXw6I6TV4m0g3");
//! assert_eq!(user.email.as_deref(), Some("alice@example.com"));
//! # Ok(()) }
//! ```
//!
//! | Authorization server | Issuer | Endpoints |
//! |---|---|---|
//! | `default` (the default) | `https://{domain}/oauth2/default` | `{issuer}/v1/authorize`, `/v1/token`, `/v1/userinfo`, `/v1/keys`, `/v1/revoke`, `/v1/introspect`, `/v1/device/authorize`, `/v1/par` |
//! | [`authorization_server(id)`](OktaBuilder::authorization_server) | `https://{domain}/oauth2/{id}` | the same under that issuer |
//! | [`org_authorization_server()`](OktaBuilder::org_authorization_server) | `https://{domain}` | `https://{domain}/oauth2/v1/authorize`, ... |
//!
//! [`build`](OktaBuilder::build) uses that layout and sends nothing;
//! [`discover`](OktaBuilder::discover) reads the issuer's discovery document instead (and takes
//! the client authentication method it advertises). The client authenticates with
//! `client_secret_basic` unless [`client_auth`](OktaBuilder::client_auth) says otherwise (a
//! public client with PKCE: `ClientAuth::none`; `private_key_jwt` with feature `jwt`). Default
//! scopes: `openid email` (add `offline_access` for a refresh token). The user's id is the
//! userinfo `sub`, the e-mail its `email` claim (only when `email_verified` is `true`).
//!
//! The domain is a host name only (`dev-123.okta.com`, `login.example.com`): a scheme, path,
//! port or user part is [`Error::Config`], so the client secret cannot be sent anywhere else
//! by a domain read from configuration.

use super::generic::OpenIdProvider;
use super::{provider_options, IdEmailFuture, Options, Provider};
use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::Error;
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;

const DEFAULT_SCOPES: &str = "openid email";

/// Okta (see the [module documentation](self)).
///
/// ```
/// use tower_oauth2::provider::okta::Okta;
/// use tower_oauth2::provider::Provider;
///
/// let okta = Okta::new("dev-123.okta.com", "my-client-id", "my-client-secret")?;
/// assert_eq!(okta.client().issuer(), Some("https://dev-123.okta.com/oauth2/default"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Okta {
    openid: OpenIdProvider,
}

/// Builds an [`Okta`]; see [`Okta::builder`].
///
/// ```
/// use tower_oauth2::provider::okta::Okta;
///
/// let okta = Okta::builder("dev-123.okta.com", "my-client-id", "my-client-secret")
///     .authorization_server("aus1a2b3c4d5E6f7g8h9")
///     .scopes("openid email offline_access")
///     .build()?;
/// # let _ = okta;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct OktaBuilder {
    options: Options,
    domain: String,
    server: Server,
}

/// Which of the organization's authorization servers.
#[derive(Clone, Debug)]
enum Server {
    /// A custom authorization server, by id (`default` is the one every org has).
    Custom(String),
    /// The org authorization server.
    Org,
}

provider_options!(
    OktaBuilder,
    "use tower_oauth2::provider::okta::Okta;",
    "Okta::builder(\"dev-123.okta.com\", \"my-client-id\", \"my-client-secret\")"
);

impl Okta {
    /// Okta at the `default` authorization server of `domain`, with Okta's fixed URLs.
    ///
    /// ```
    /// use tower_oauth2::provider::okta::Okta;
    /// use tower_oauth2::Error;
    ///
    /// let okta = Okta::new("dev-123.okta.com", "my-client-id", "my-client-secret")?;
    /// # let _ = okta;
    /// let err = Okta::new("evil.example.com/x?", "my-client-id", "my-client-secret").unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(
        domain: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Result<Self, Error> {
        Self::builder(domain, client_id, client_secret).build()
    }

    /// A builder for the other options; the secret is sent as `client_secret_basic`.
    ///
    /// ```
    /// use tower_oauth2::provider::okta::Okta;
    ///
    /// let okta = Okta::builder("dev-123.okta.com", "my-client-id", "my-client-secret").build()?;
    /// # let _ = okta;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(
        domain: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> OktaBuilder {
        OktaBuilder {
            options: Options::new(ClientAuth::client_secret_basic(client_id, client_secret)),
            domain: domain.into(),
            server: Server::Custom("default".to_owned()),
        }
    }
}

impl OktaBuilder {
    /// A custom authorization server of the org, by its id (`aus...`), instead of `default`.
    /// An id that is not letters and digits is [`Error::Config`] when built.
    ///
    /// ```
    /// use tower_oauth2::provider::okta::Okta;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let okta = Okta::builder("dev-123.okta.com", "my-client-id", "my-client-secret")
    ///     .authorization_server("aus1a2b3c4d5E6f7g8h9")
    ///     .build()?;
    /// assert_eq!(
    ///     okta.client().token_endpoint().token_url().as_str(),
    ///     "https://dev-123.okta.com/oauth2/aus1a2b3c4d5E6f7g8h9/v1/token"
    /// );
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn authorization_server(mut self, id: impl Into<String>) -> Self {
        self.server = Server::Custom(id.into());
        self
    }

    /// The org authorization server (issuer `https://{domain}`), whose access tokens are for
    /// Okta's own APIs.
    ///
    /// ```
    /// use tower_oauth2::provider::okta::Okta;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let okta = Okta::builder("dev-123.okta.com", "my-client-id", "my-client-secret")
    ///     .org_authorization_server()
    ///     .build()?;
    /// assert_eq!(okta.client().issuer(), Some("https://dev-123.okta.com"));
    /// assert_eq!(
    ///     okta.client().userinfo_url().map(|u| u.as_str()),
    ///     Some("https://dev-123.okta.com/oauth2/v1/userinfo")
    /// );
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn org_authorization_server(mut self) -> Self {
        self.server = Server::Org;
        self
    }

    /// Builds the provider with Okta's fixed URLs (nothing is sent). [`Error::Config`] for a
    /// domain that is not a host name or a bad server id; URL errors as for every provider.
    ///
    /// ```
    /// use tower_oauth2::provider::okta::Okta;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let okta = Okta::builder("dev-123.okta.com", "my-client-id", "my-client-secret").build()?;
    /// assert_eq!(
    ///     okta.client().jwks_url().map(|u| u.as_str()),
    ///     Some("https://dev-123.okta.com/oauth2/default/v1/keys")
    /// );
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Okta, Error> {
        let (issuer, prefix) = self.issuer_and_prefix()?;
        let o = &self.options;
        let url = |path: &str| o.url(&format!("{prefix}{path}"));
        let client = o
            .client_builder()
            .issuer(o.url(&issuer)?)
            .authorization_url(url("/v1/authorize")?)
            .token_url(url("/v1/token")?)
            .userinfo_url(url("/v1/userinfo")?)
            .jwks_url(url("/v1/keys")?)
            .revocation_url(url("/v1/revoke")?)
            .introspection_url(url("/v1/introspect")?)
            .device_authorization_url(url("/v1/device/authorize")?)
            .pushed_authorization_request_url(url("/v1/par")?)
            .build()?;
        self.finish(client)
    }

    /// Builds the provider from the issuer's OpenID Connect discovery document
    /// (`{issuer}/.well-known/openid-configuration`), with this builder's HTTP client; see
    /// [`OAuth2ClientBuilder::discover`](crate::OAuth2ClientBuilder::discover).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::provider::okta::Okta;
    /// use tower_oauth2::provider::Provider;
    /// use tower_oauth2::HttpClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    /// #     assert_eq!(request.uri(), "https://dev-123.okta.com/oauth2/default/.well-known/openid-configuration");
    /// #     let body = r#"{"issuer":"https://dev-123.okta.com/oauth2/default",
    /// #         "authorization_endpoint":"https://dev-123.okta.com/oauth2/default/v1/authorize",
    /// #         "token_endpoint":"https://dev-123.okta.com/oauth2/default/v1/token",
    /// #         "userinfo_endpoint":"https://dev-123.okta.com/oauth2/default/v1/userinfo",
    /// #         "token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"]}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let okta = Okta::builder("dev-123.okta.com", "my-client-id", "my-client-secret")
    ///     .http_client(HttpClient::new(server)) // a stand-in for Okta
    ///     .discover()
    ///     .await?;
    /// assert!(okta.client().metadata().is_some());
    /// # Ok(()) }
    /// ```
    pub async fn discover(self) -> Result<Okta, Error> {
        let (issuer, _) = self.issuer_and_prefix()?;
        let issuer = self.options.url(&issuer)?;
        let client = self.options.client_builder().discover(&issuer).await?;
        self.finish(client)
    }

    /// The issuer, and the prefix of the endpoint paths.
    fn issuer_and_prefix(&self) -> Result<(String, String), Error> {
        let domain = okta_domain(&self.domain)?;
        Ok(match &self.server {
            Server::Custom(id) => {
                if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(Error::Config(format!(
                        "an Okta authorization server id is letters and digits, not {id:?}"
                    )));
                }
                let issuer = format!("https://{domain}/oauth2/{id}");
                (issuer.clone(), issuer)
            }
            Server::Org => (format!("https://{domain}"), format!("https://{domain}/oauth2")),
        })
    }

    /// [`Error::NoEndpoint`] if a discovery document has no authorization or userinfo
    /// endpoint.
    fn finish(&self, client: OAuth2Client) -> Result<Okta, Error> {
        let scopes = self.options.scopes_or(DEFAULT_SCOPES);
        Ok(Okta {
            openid: OpenIdProvider::from_client(client)?.with_scopes(scopes),
        })
    }
}

/// The Okta domain as a lowercase host name: `https://` and a trailing `/` are tolerated, any
/// other scheme, a path, port, user part, or a character outside `[a-z0-9.-]` is refused.
fn okta_domain(domain: &str) -> Result<String, Error> {
    let trimmed = domain.trim();
    let host = trimmed.strip_prefix("https://").unwrap_or(trimmed);
    let host = host.strip_suffix('/').unwrap_or(host).to_ascii_lowercase();
    let labels_ok = host.len() <= 253
        && host.split('.').count() >= 2
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if labels_ok {
        Ok(host)
    } else {
        Err(Error::Config(format!(
            "an Okta domain is a host name such as `dev-123.okta.com`, not {domain:?}"
        )))
    }
}

impl Provider for Okta {
    fn client(&self) -> &OAuth2Client {
        self.openid.client()
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        self.openid.authorization_request(redirect_uri)
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        self.openid.id_email(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_names_are_okta_domains() {
        for good in [
            "dev-123.okta.com",
            "https://dev-123.okta.com/",
            " Login.Example.COM ",
        ] {
            assert!(okta_domain(good).is_ok(), "{good}");
        }
        assert_eq!(okta_domain("Dev-1.Okta.com").unwrap(), "dev-1.okta.com");
        for bad in [
            "",
            "okta",
            "http://dev-123.okta.com",
            "dev-123.okta.com:8443",
            "dev-123.okta.com/oauth2",
            "user@dev-123.okta.com",
            "evil.example.com#.okta.com",
            "evil.example.com?.okta.com",
            "dev 123.okta.com",
            "-dev.okta.com",
            "dev..okta.com",
        ] {
            assert!(matches!(okta_domain(bad), Err(Error::Config(_))), "{bad}");
        }
    }
}
