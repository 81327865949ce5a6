//! Shopify, by shop (`{shop}.myshopify.com`): logs a shop's owner or staff into an app for the
//! Admin API; `id_email` gives the **shop's** id and e-mail, as httpx-oauth does.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::shopify::Shopify;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://my-shop.myshopify.com/admin/api/2025-10/shop.json");
//! #     assert_eq!(request.headers()["x-shopify-access-token"], "shpat_the-token");
//! #     let body = r#"{"shop":{"id":548380009,"name":"My Shop","email":"owner@example.com"}}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let shopify = Shopify::builder("my-client-id", "my-client-secret", "my-shop")
//!     .http_client(HttpClient::new(server)) // a stand-in for the shop
//!     .build()?;
//! let login = shopify.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://my-shop.myshopify.com/admin/oauth/authorize?"));
//! // ... after the login:
//! let shop = shopify.id_email(&Token::bearer("shpat_the-token")).await?;
//! assert_eq!(shop.id, "548380009");
//! assert_eq!(shop.email.as_deref(), Some("owner@example.com"));
//! # Ok(()) }
//! ```
//!
//! | | |
//! |---|---|
//! | Authorization | `https://{shop}.myshopify.com/admin/oauth/authorize` |
//! | Token | `https://{shop}.myshopify.com/admin/oauth/access_token`, `client_secret_post` |
//! | Shop | `https://{shop}.myshopify.com/admin/api/{version}/shop.json`, token in `X-Shopify-Access-Token` |
//! | Default scopes | `read_orders`, sent comma-separated as Shopify wants them |
//!
//! Shopify's quirks:
//!
//! - **The shop** is a name (`my-shop`) or its host (`my-shop.myshopify.com`); anything else
//!   (another domain, a path, a port, a user part, `evil.com#`) is [`Error::Config`], so the
//!   client secret and the tokens only ever go to a `*.myshopify.com` host.
//! - **Offline access tokens** (the default) never expire and come without a refresh token:
//!   the token has no [`expires_at`](Token::expires_at). A [`TokenCache`](crate::TokenCache)
//!   serves a token without expiry until it is invalidated, and never refreshes it ahead;
//!   [`Login::into_layer`](crate::Login::into_layer) gives the layer a source that hands the
//!   same token back, so the layer carries it for as long as the shop keeps the app
//!   installed. When Shopify revokes it (the app is uninstalled), the Admin API answers `401`
//!   and the only way on is a new installation or login.
//! - **Online access tokens** ([`online_access`](ShopifyBuilder::online_access),
//!   `grant_options[]=per-user`) expire (`expires_in`, about a day) and are not refreshable
//!   either: once expired, the layer from `Login::into_layer` fails with
//!   [`Error::LoginExpired`] without sending it. Their token response names the staff member
//!   in `associated_user` ([`Token::extra`]).
//! - **The Admin API** takes the token in `X-Shopify-Access-Token`, not `Authorization`;
//!   `id_email` sends it only there (marked sensitive, wiped after use), only to the shop's
//!   host. To call the Admin API through [`OAuth2Layer`](crate::OAuth2Layer), which puts the
//!   token in `Authorization: Bearer`, stack [`access_token_header`] under it: it moves the
//!   token to `X-Shopify-Access-Token`.
//! - **Scopes** are comma-separated: the provider's scopes (given space- or comma-separated to
//!   [`scopes`](ShopifyBuilder::scopes)) go in the `scope` parameter joined with commas; do
//!   not add more with `AuthorizationRequest::scope`, which would join them with spaces.
//!
//! A `401` from the shop is [`Error::OAuth2`] with [`ErrorCode::InvalidToken`] and Shopify's
//! message as the description; another error status is [`Error::HttpStatus`]; a body without
//! `shop.id` is [`Error::MalformedResponse`]. The `hmac` Shopify adds to the callback is not
//! checked here (the `state` is, by the core flow).
//!
//! [`ErrorCode::InvalidToken`]: crate::ErrorCode::InvalidToken

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderValue, Method, StatusCode};
use serde_json::Value;
use tracing::Instrument;
use url::Url;
use zeroize::Zeroizing;

use super::{id_field, optional_string, provider_options, IdEmail, IdEmailFuture, Options, Provider};
use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::{parse_retry_after, sanitize_server_text, Error, ErrorCode, ServerError};
use crate::secret::{wiped_header_value, Redactions, Secret};
use crate::token::{status_error, Token};
use crate::transport::{server_request, ReadResponse};
use crate::AuthorizationRequest;

const DEFAULT_SCOPES: &str = "read_orders";
/// The Admin API version of `shop.json`. Shopify answers a request for a version it no longer
/// supports with its oldest supported one.
const DEFAULT_API_VERSION: &str = "2025-10";
const ACCESS_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-shopify-access-token");

/// Moves the access token of a request from `Authorization: Bearer <token>` (where
/// [`OAuth2Layer`](crate::OAuth2Layer) puts it) to `X-Shopify-Access-Token: <token>`, where
/// Shopify's Admin API reads it, keeping it marked sensitive. A request without a Bearer
/// token is left as it is. Stack it under the layer with `map_request`:
///
/// ```
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_oauth2::provider::shopify::access_token_header;
/// use tower_oauth2::{source_fn, OAuth2Layer, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// # let admin_api = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
/// #     assert_eq!(request.headers()["x-shopify-access-token"], "shpat_offline");
/// #     assert!(request.headers().get("authorization").is_none());
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
/// # });
/// // In an app: `login.into_layer()` after the code exchange.
/// let layer = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("shpat_offline")) }));
/// let client = ServiceBuilder::new()
///     .layer(layer)
///     .map_request(access_token_header)
///     .service(admin_api); // a stand-in for the shop's Admin API
/// let request = http::Request::get("https://my-shop.myshopify.com/admin/api/2025-10/orders.json")
///     .body(Full::new(Bytes::new()))?;
/// client.oneshot(request).await?;
/// # Ok(()) }
/// ```
pub fn access_token_header<B>(mut request: http::Request<B>) -> http::Request<B> {
    let headers = request.headers_mut();
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().get(..7).zip(value.as_bytes().get(7..)))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|(_, token)| {
            let mut bytes = Zeroizing::new(Vec::with_capacity(token.len()));
            bytes.extend_from_slice(token);
            bytes
        });
    if let Some(token) = token {
        if let Ok(value) = wiped_header_value(token) {
            headers.remove(http::header::AUTHORIZATION);
            headers.insert(ACCESS_TOKEN_HEADER, value);
        }
    }
    request
}

/// Shopify (see the [module documentation](self)).
///
/// ```
/// use tower_oauth2::provider::shopify::Shopify;
/// use tower_oauth2::provider::Provider;
///
/// let shopify = Shopify::new("my-client-id", "my-client-secret", "my-shop")?;
/// assert_eq!(shopify.shop(), "my-shop.myshopify.com");
/// assert_eq!(
///     shopify.client().token_endpoint().token_url().as_str(),
///     "https://my-shop.myshopify.com/admin/oauth/access_token"
/// );
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Shopify {
    client: OAuth2Client,
    shop: String,
    shop_url: Url,
    scopes: String,
    online: bool,
}

/// Builds a [`Shopify`]; see [`Shopify::builder`].
///
/// ```
/// use tower_oauth2::provider::shopify::Shopify;
///
/// let shopify = Shopify::builder("my-client-id", "my-client-secret", "my-shop")
///     .scopes("read_orders write_products")
///     .api_version("2026-01")
///     .online_access()
///     .build()?;
/// # let _ = shopify;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct ShopifyBuilder {
    options: Options,
    shop: String,
    api_version: String,
    online: bool,
}

provider_options!(
    ShopifyBuilder,
    "use tower_oauth2::provider::shopify::Shopify;",
    "Shopify::builder(\"my-client-id\", \"my-client-secret\", \"my-shop\")"
);

impl Shopify {
    /// Shopify for `shop` (a name, or `name.myshopify.com`) with the default options.
    ///
    /// ```
    /// use tower_oauth2::provider::shopify::Shopify;
    /// use tower_oauth2::Error;
    ///
    /// let shopify = Shopify::new("my-client-id", "my-client-secret", "my-shop.myshopify.com")?;
    /// assert_eq!(shopify.shop(), "my-shop.myshopify.com");
    /// let err = Shopify::new("my-client-id", "my-client-secret", "evil.example.com/").unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        shop: impl Into<String>,
    ) -> Result<Self, Error> {
        Self::builder(client_id, client_secret, shop).build()
    }

    /// A builder for the other options; the secret is sent as `client_secret_post`.
    ///
    /// ```
    /// use tower_oauth2::provider::shopify::Shopify;
    ///
    /// let shopify = Shopify::builder("my-client-id", "my-client-secret", "my-shop").build()?;
    /// # let _ = shopify;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        shop: impl Into<String>,
    ) -> ShopifyBuilder {
        ShopifyBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
            shop: shop.into(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            online: false,
        }
    }

    /// The shop's host, `{name}.myshopify.com`.
    ///
    /// ```
    /// use tower_oauth2::provider::shopify::Shopify;
    ///
    /// let shopify = Shopify::new("my-client-id", "my-client-secret", "My-Shop")?;
    /// assert_eq!(shopify.shop(), "my-shop.myshopify.com");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn shop(&self) -> &str {
        &self.shop
    }
}

impl ShopifyBuilder {
    /// The Admin API version `id_email` calls (`YYYY-MM`, or `unstable`; default `2025-10`).
    /// Another form is [`Error::Config`] when built.
    ///
    /// ```
    /// use tower_oauth2::provider::shopify::Shopify;
    /// use tower_oauth2::Error;
    ///
    /// let err = Shopify::builder("id", "secret", "my-shop").api_version("../../x").build().unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// ```
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// Asks for an online (per-user) access token: `grant_options[]=per-user`. It expires, and
    /// its response names the user in `associated_user`.
    ///
    /// ```
    /// use tower_oauth2::provider::shopify::Shopify;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let shopify = Shopify::builder("id", "secret", "my-shop").online_access().build()?;
    /// let login = shopify.authorization_request("https://app.example.com/callback").build()?;
    /// assert!(login.url().as_str().contains("grant_options%5B%5D=per-user"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn online_access(mut self) -> Self {
        self.online = true;
        self
    }

    /// Builds the provider (nothing is sent). [`Error::Config`] for a shop that is not a shop
    /// name or a bad API version; URL errors as for every provider.
    ///
    /// ```
    /// use tower_oauth2::provider::shopify::Shopify;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let shopify = Shopify::builder("id", "secret", "my-shop").build()?;
    /// assert_eq!(
    ///     shopify.client().authorization_url().map(|u| u.as_str()),
    ///     Some("https://my-shop.myshopify.com/admin/oauth/authorize")
    /// );
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Shopify, Error> {
        let shop = shop_host(&self.shop)?;
        let version = &self.api_version;
        let version_ok = version == "unstable"
            || (version.len() == 7
                && version.bytes().enumerate().all(|(i, b)| match i {
                    4 => b == b'-',
                    _ => b.is_ascii_digit(),
                }));
        if !version_ok {
            return Err(Error::Config(format!(
                "a Shopify API version is `YYYY-MM` or `unstable`, not {version:?}"
            )));
        }
        let o = &self.options;
        let origin = format!("https://{shop}");
        let client = o
            .client_builder()
            .authorization_url(o.url(&format!("{origin}/admin/oauth/authorize"))?)
            .token_url(o.url(&format!("{origin}/admin/oauth/access_token"))?)
            .build()?;
        let scopes = o
            .scopes_or(DEFAULT_SCOPES)
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Shopify {
            client,
            shop_url: o.api_url(&format!("{origin}/admin/api/{version}/shop.json"))?,
            shop,
            scopes,
            online: self.online,
        })
    }
}

/// `{name}.myshopify.com` from a shop name or host: a name is a letter or digit, then letters,
/// digits and `-`, at most 63 characters (one DNS label); anything else is refused.
fn shop_host(shop: &str) -> Result<String, Error> {
    let lower = shop.trim().to_ascii_lowercase();
    let name = lower.strip_suffix(".myshopify.com").unwrap_or(&lower);
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(format!("{name}.myshopify.com"))
    } else {
        Err(Error::Config(format!(
            "a Shopify shop is a name such as `my-shop` (or `my-shop.myshopify.com`), not {shop:?}"
        )))
    }
}

/// `X-Shopify-Access-Token: <token>`, marked sensitive, wiped when the last copy is dropped.
fn access_token_value(access_token: &str) -> Result<HeaderValue, Error> {
    let mut value = Zeroizing::new(Vec::with_capacity(access_token.len()));
    value.extend_from_slice(access_token.as_bytes());
    wiped_header_value(value).map_err(|_| {
        Error::Config("the access token has characters that cannot be sent in an HTTP header".to_owned())
    })
}

/// The error of a non-2xx answer of the Admin API: a `401` is `invalid_token` with Shopify's
/// `errors` text, anything else as at the token endpoint.
fn shop_error(response: &ReadResponse) -> Error {
    if response.status != StatusCode::UNAUTHORIZED {
        return status_error(response);
    }
    let description = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|body| body.get("errors").and_then(Value::as_str).map(str::to_owned))
        .map(|text| sanitize_server_text(&response.redactions.apply(&text)));
    let mut error = ServerError::new(ErrorCode::InvalidToken);
    error.description = description;
    Error::OAuth2 {
        status: response.status,
        error,
        retry_after: parse_retry_after(&response.headers, response.received_at),
    }
}

/// Sends a `GET` of `url` carrying the access token in `header` (and nothing else of the
/// client's) through the client's HTTP client (timeout, body cap) and clock; the answer comes
/// back whatever its status, with the token cut out of any server text.
pub(super) async fn send_with_token(
    client: &OAuth2Client,
    url: &Url,
    header: (HeaderName, HeaderValue),
    access_token: &str,
) -> Result<ReadResponse, Error> {
    let request = server_request(Method::GET, url, &[header], Bytes::new())?;
    let endpoint = client.token_endpoint();
    let mut response = endpoint.http().send(request, &**endpoint.clock()).await?;
    let mut redactions = Redactions::default();
    redactions.add(access_token);
    response.redactions = redactions;
    Ok(response)
}

impl Shopify {
    /// `GET shop.json` with the token in `X-Shopify-Access-Token`.
    async fn shop_resource(&self, token: &Token) -> Result<IdEmail, Error> {
        let url = &self.shop_url;
        let span = tracing::debug_span!("provider_api", method = "GET", url = %url.as_str());
        async {
            let secret = token.access_token().expose();
            let header = (ACCESS_TOKEN_HEADER, access_token_value(secret)?);
            let response = send_with_token(&self.client, url, header, secret).await?;
            if !response.status.is_success() {
                let err = shop_error(&response);
                tracing::debug!(error = %err.report(), "Shopify's shop.json failed");
                return Err(err);
            }
            let status = response.status;
            let what = "Shopify's shop.json";
            let malformed = |reason: &str| Error::MalformedResponse {
                status,
                reason: reason.to_owned(),
            };
            let body = serde_json::from_slice::<Value>(&response.body)
                .map_err(|_| malformed("Shopify's shop.json is not JSON"))?;
            let shop = body
                .get("shop")
                .and_then(Value::as_object)
                .ok_or_else(|| malformed("Shopify's shop.json has no `shop` object"))?;
            Ok(IdEmail {
                id: id_field(shop, "id", status, what)?,
                email: optional_string(shop, "email", status, what)?,
            })
        }
        .instrument(span)
        .await
    }
}

impl Provider for Shopify {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        let mut request = self.client.authorization_request(redirect_uri);
        if !self.scopes.is_empty() {
            // One scope token with commas: the request does not split it.
            request = request.scope(self.scopes.clone());
        }
        if self.online {
            request = request.param("grant_options[]", "per-user");
        }
        request
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(self.shop_resource(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shop_names_make_a_shop_host() {
        assert_eq!(shop_host("my-shop").unwrap(), "my-shop.myshopify.com");
        assert_eq!(
            shop_host(" My-Shop.MyShopify.com ").unwrap(),
            "my-shop.myshopify.com"
        );
        assert_eq!(shop_host("shop42").unwrap(), "shop42.myshopify.com");
        for bad in [
            "",
            ".myshopify.com",
            "-shop",
            "my_shop",
            "evil.com",
            "evil.com#",
            "evil.com/",
            "my-shop.myshopify.com.evil.com",
            "my-shop.myshopify.com:443",
            "user@my-shop",
            "https://my-shop.myshopify.com",
            "my shop",
            "ünï",
        ] {
            assert!(matches!(shop_host(bad), Err(Error::Config(_))), "{bad}");
        }
        assert!(shop_host(&"a".repeat(64)).is_err());
    }
}
