//! Microsoft Entra ID (Azure AD, personal Microsoft accounts): log a user in on a tenant,
//! read their id and e-mail from Microsoft Graph.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::microsoft::Microsoft;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://graph.microsoft.com/v1.0/me");
//! #     let body = r#"{"id":"48d31887-5fad-4d73-a9f5-3c356e68a038","mail":null,
//! #                    "userPrincipalName":"alice@contoso.com"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let microsoft = Microsoft::builder("my-client-id", "my-client-secret")
//!     .tenant("organizations") // work and school accounts only
//!     .http_client(HttpClient::new(server)) // a stand-in for Microsoft
//!     .build()?;
//! let login = microsoft.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login
//!     .url()
//!     .as_str()
//!     .starts_with("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?"));
//! let user = microsoft.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "48d31887-5fad-4d73-a9f5-3c356e68a038");
//! assert_eq!(user.email.as_deref(), Some("alice@contoso.com")); // no `mail`: the UPN
//! # Ok(()) }
//! ```
//!
//! The tenant is in every URL of the identity platform (v2.0 endpoints):
//! `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{authorize,token}`, with `common`
//! (any account: the default), `organizations` (work and school accounts), `consumers`
//! (personal accounts), or one tenant's id or domain name. Scopes
//! `User.Read offline_access` (Graph's profile, and a refresh token), and `response_mode=query`
//! on the authorization request. `openid` is not asked for by default: an ID token from the
//! `common` or `organizations` endpoints is issued by the user's own tenant, not by one issuer
//! the client could check it against. With a tenant id (a GUID) or `consumers`, the client has
//! the tenant's issuer (`https://login.microsoftonline.com/{tenant id}/v2.0`) and every
//! client has the tenant's key set, so `openid` can be added with
//! [`scopes`](MicrosoftBuilder::scopes) and the ID token is verified at the login.
//!
//! `id_email` reads Graph's `/v1.0/me`: `id` (the object id), and the `userPrincipalName` if it
//! is an address (it is not for guests: `...#EXT#@...`). Never `mail`: any tenant's
//! administrator can set it to any address, and the `common` tenant lets every tenant's users
//! in (the "nOAuth" account takeover).
//! Graph errors (`{"error": {"code", "message"}}`) are [`Error::OAuth2`] with Graph's code
//! (`InvalidAuthenticationToken`, ...).

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

const LOGIN_BASE: &str = "https://login.microsoftonline.com";
const ME_URL: &str = "https://graph.microsoft.com/v1.0/me";
const DEFAULT_SCOPES: &str = "User.Read offline_access";
const DEFAULT_TENANT: &str = "common";
/// The tenant of personal Microsoft accounts (`consumers`): its ID tokens' issuer.
const CONSUMERS_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Whether `tenant` is a tenant id: a GUID (`8-4-4-4-12` hexadecimal digits).
fn is_guid(tenant: &str) -> bool {
    let groups: Vec<&str> = tenant.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Microsoft Entra ID on one tenant: `id_email` reads Microsoft Graph's `/me`. See the
/// [module documentation](self).
///
/// ```
/// use tower_oauth2::provider::microsoft::Microsoft;
/// use tower_oauth2::provider::Provider;
///
/// let microsoft = Microsoft::new("my-client-id", "my-client-secret")?;
/// assert_eq!(microsoft.tenant(), "common");
/// assert_eq!(
///     microsoft.client().token_endpoint().token_url().as_str(),
///     "https://login.microsoftonline.com/common/oauth2/v2.0/token"
/// );
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct Microsoft {
    client: OAuth2Client,
    tenant: String,
    scopes: String,
    me_url: Url,
}

/// Builds a [`Microsoft`] provider; see [`Microsoft::builder`].
///
/// ```
/// use tower_oauth2::provider::microsoft::Microsoft;
///
/// let microsoft = Microsoft::builder("my-client-id", "my-client-secret")
///     .tenant("contoso.onmicrosoft.com")
///     .build()?;
/// assert_eq!(microsoft.tenant(), "contoso.onmicrosoft.com");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct MicrosoftBuilder {
    options: Options,
    tenant: String,
}

impl Microsoft {
    /// Microsoft on the `common` tenant (any account) with the defaults: scopes
    /// `User.Read offline_access`, the secret sent in the form (`client_secret_post`).
    ///
    /// ```
    /// use tower_oauth2::provider::microsoft::Microsoft;
    ///
    /// let microsoft = Microsoft::new("my-client-id", "my-client-secret")?;
    /// # let _ = microsoft;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for Microsoft's options: [`tenant`](MicrosoftBuilder::tenant) above all.
    ///
    /// ```
    /// use tower_oauth2::provider::microsoft::Microsoft;
    ///
    /// let microsoft = Microsoft::builder("my-client-id", "my-client-secret").tenant("consumers").build()?;
    /// # let _ = microsoft;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> MicrosoftBuilder {
        MicrosoftBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
            tenant: DEFAULT_TENANT.to_owned(),
        }
    }

    /// The tenant in the URLs.
    ///
    /// ```
    /// use tower_oauth2::provider::microsoft::Microsoft;
    ///
    /// let microsoft = Microsoft::builder("id", "secret").tenant("organizations").build()?;
    /// assert_eq!(microsoft.tenant(), "organizations");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

crate::provider::provider_options!(
    MicrosoftBuilder,
    "use tower_oauth2::provider::microsoft::Microsoft;",
    "Microsoft::builder(\"my-client-id\", \"my-client-secret\")"
);

impl MicrosoftBuilder {
    /// The tenant: `common` (the default), `organizations`, `consumers`, a tenant id (a GUID)
    /// or a tenant's domain name. Checked when the provider is built: letters, digits, `-`
    /// and `.` only ([`Error::Config`] otherwise).
    ///
    /// ```
    /// use tower_oauth2::provider::microsoft::Microsoft;
    /// use tower_oauth2::Error;
    ///
    /// let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    /// assert!(Microsoft::builder("id", "secret").tenant(tenant).build().is_ok());
    /// let err = Microsoft::builder("id", "secret").tenant("common/../x").build().unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// ```
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Builds the provider. [`Error::Config`] for a malformed tenant or base URL,
    /// [`Error::InsecureUrl`] for a base URL that is plain `http` off loopback.
    ///
    /// ```
    /// use tower_oauth2::provider::microsoft::Microsoft;
    ///
    /// let microsoft = Microsoft::builder("id", "secret").build()?;
    /// # let _ = microsoft;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Microsoft, Error> {
        let tenant = self.tenant;
        let valid = !tenant.is_empty()
            && tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !tenant.starts_with('.');
        if !valid {
            return Err(Error::Config(format!(
                "the Microsoft tenant {:?} is not `common`, `organizations`, `consumers`, a tenant id \
                 or a domain name",
                crate::error::sanitize_server_text(&tenant)
            )));
        }
        let options = self.options;
        let mut client = options
            .client_builder()
            .authorization_url(options.url(&format!("{LOGIN_BASE}/{tenant}/oauth2/v2.0/authorize"))?)
            .token_url(options.url(&format!("{LOGIN_BASE}/{tenant}/oauth2/v2.0/token"))?)
            .jwks_url(options.url(&format!("{LOGIN_BASE}/{tenant}/discovery/v2.0/keys"))?);
        // One issuer only for one tenant: a tenant id, or the personal accounts' tenant.
        let tenant_id = match tenant.as_str() {
            "consumers" => Some(CONSUMERS_TENANT_ID),
            id if is_guid(id) => Some(id),
            _ => None,
        };
        if let Some(id) = tenant_id {
            let issuer = options.url(&format!("{LOGIN_BASE}/{id}/v2.0"))?;
            client = client.issuer(issuer);
        }
        let client = client.build()?;
        Ok(Microsoft {
            client,
            scopes: options.scopes_or(DEFAULT_SCOPES).to_owned(),
            me_url: options.api_url(ME_URL)?,
            tenant,
        })
    }
}

impl fmt::Debug for Microsoft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Microsoft")
            .field("client", &self.client)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("me_url", &self.me_url.as_str())
            .finish()
    }
}

impl Microsoft {
    async fn fetch_id_email(&self, token: &Token) -> Result<IdEmail, Error> {
        let what = "Microsoft Graph's /me response";
        let me = get_api(&self.client, &self.me_url, token, &[]).await?;
        let fields = me.object(what)?;
        let id = id_field(fields, "id", me.status, what)?;
        // Not `mail`: any tenant's admin can set it to any address (the "nOAuth" attack), and
        // the `common` tenant lets users of every tenant in. The user principal name's domain
        // is one the tenant has verified; a guest's (`#EXT#`) is not the user's address.
        let email = optional_string(fields, "userPrincipalName", me.status, what)?
            .filter(|upn| upn.contains('@') && !upn.contains("#EXT#"));
        Ok(IdEmail { id, email })
    }
}

impl Provider for Microsoft {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        with_scopes(self.client.authorization_request(redirect_uri), &self.scopes)
            .param("response_mode", "query")
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(self.fetch_id_email(token))
    }
}
