//! Kakao: the user's id from `/v2/user/me`, the e-mail from its `kakao_account.email`.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::kakao::Kakao;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://kapi.kakao.com/v2/user/me");
//! #     let body = r#"{"id":123456789,"kakao_account":{"email":"alice@example.com",
//! #         "is_email_valid":true,"is_email_verified":true}}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let kakao = Kakao::builder("my-rest-api-key", "my-client-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for Kakao
//!     .build()?;
//! let login = kakao.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://kauth.kakao.com/oauth/authorize?"));
//! // ... after the login:
//! let user = kakao.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "123456789");
//! assert_eq!(user.email.as_deref(), Some("alice@example.com"));
//! # Ok(()) }
//! ```
//!
//! | | |
//! |---|---|
//! | Authorization | `https://kauth.kakao.com/oauth/authorize` |
//! | Token | `https://kauth.kakao.com/oauth/token`, `client_secret_post` |
//! | User | `https://kapi.kakao.com/v2/user/me`: `id` (a number), `kakao_account.email` |
//! | Default scopes | `profile_nickname account_email`, sent comma-separated as Kakao wants them |
//!
//! The client id is the app's REST API key. The client secret is optional at Kakao (turned on
//! in the app's security settings): without one, use
//! [`client_auth(ClientAuth::none(key))`](KakaoBuilder::client_auth), with PKCE.
//!
//! The e-mail is given only when Kakao says it is usable and verified (`is_email_valid: true`,
//! `is_email_verified: true`); not when the user has not agreed to share it (no `email`).
//! Kakao's own error codes in a `4xx` body (`{"msg":..., "code":-401}`) are not OAuth 2.0
//! errors: such an answer is [`Error::HttpStatus`] unless it carries a Bearer challenge (a bare
//! `401` is `invalid_token`, as for every provider); a body without a numeric or string `id` is [`Error::MalformedResponse`].
//!
//! Scopes are comma-separated: the provider's scopes (given space- or comma-separated to
//! [`scopes`](KakaoBuilder::scopes)) go in the `scope` parameter joined with commas; do not add
//! more with `AuthorizationRequest::scope`, which would join them with spaces. Kakao's
//! OpenID Connect mode (scope `openid`) is not set up by this provider.

use super::{
    get_api, id_field, optional_bool, optional_string, provider_options, with_scopes, IdEmail, IdEmailFuture,
    Options, Provider,
};
use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::error::Error;
use crate::secret::Secret;
use crate::token::Token;
use crate::AuthorizationRequest;
use url::Url;

const AUTHORIZATION_URL: &str = "https://kauth.kakao.com/oauth/authorize";
const TOKEN_URL: &str = "https://kauth.kakao.com/oauth/token";
const USER_URL: &str = "https://kapi.kakao.com/v2/user/me";
const DEFAULT_SCOPES: &str = "profile_nickname account_email";

/// Kakao (see the [module documentation](self)).
///
/// ```
/// use tower_oauth2::provider::kakao::Kakao;
/// use tower_oauth2::provider::Provider;
///
/// let kakao = Kakao::new("my-rest-api-key", "my-client-secret")?;
/// assert_eq!(kakao.client().client_auth().client_id(), "my-rest-api-key");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Kakao {
    client: OAuth2Client,
    user_url: Url,
    scopes: String,
}

/// Builds a [`Kakao`]; see [`Kakao::builder`].
///
/// ```
/// use tower_oauth2::provider::kakao::Kakao;
/// use tower_oauth2::ClientAuth;
///
/// // An app without a client secret.
/// let kakao = Kakao::builder("my-rest-api-key", "")
///     .client_auth(ClientAuth::none("my-rest-api-key"))
///     .build()?;
/// # let _ = kakao;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct KakaoBuilder {
    options: Options,
}

provider_options!(
    KakaoBuilder,
    "use tower_oauth2::provider::kakao::Kakao;",
    "Kakao::builder(\"my-rest-api-key\", \"my-client-secret\")"
);

impl Kakao {
    /// Kakao with the default options.
    ///
    /// ```
    /// use tower_oauth2::provider::kakao::Kakao;
    ///
    /// let kakao = Kakao::new("my-rest-api-key", "my-client-secret")?;
    /// # let _ = kakao;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(rest_api_key: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(rest_api_key, client_secret).build()
    }

    /// A builder for the other options; the secret is sent as `client_secret_post`.
    ///
    /// ```
    /// use tower_oauth2::provider::kakao::Kakao;
    ///
    /// let kakao = Kakao::builder("my-rest-api-key", "my-client-secret").build()?;
    /// # let _ = kakao;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(rest_api_key: impl Into<String>, client_secret: impl Into<Secret>) -> KakaoBuilder {
        KakaoBuilder {
            options: Options::new(ClientAuth::client_secret_post(rest_api_key, client_secret)),
        }
    }
}

impl KakaoBuilder {
    /// Builds the provider (nothing is sent); URL errors as for every provider.
    ///
    /// ```
    /// use tower_oauth2::provider::kakao::Kakao;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let kakao = Kakao::builder("my-rest-api-key", "my-client-secret").build()?;
    /// assert_eq!(kakao.client().token_endpoint().token_url().as_str(), "https://kauth.kakao.com/oauth/token");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Kakao, Error> {
        let o = &self.options;
        let client = o
            .client_builder()
            .authorization_url(o.url(AUTHORIZATION_URL)?)
            .token_url(o.url(TOKEN_URL)?)
            .build()?;
        Ok(Kakao {
            client,
            user_url: o.api_url(USER_URL)?,
            scopes: comma_separated(o.scopes_or(DEFAULT_SCOPES)),
        })
    }
}

/// Scopes given space- or comma-separated, joined with commas.
fn comma_separated(scopes: &str) -> String {
    scopes
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

impl Provider for Kakao {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        // One scope token with commas: the request does not split it.
        with_scopes(self.client.authorization_request(redirect_uri), &self.scopes)
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(async move {
            let response = get_api(&self.client, &self.user_url, token, &[]).await?;
            let what = "Kakao's /v2/user/me";
            let status = response.status;
            let user = response.object(what)?;
            let id = id_field(user, "id", status, what)?;
            let email = match user.get("kakao_account") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::Object(account)) => {
                    let what = "Kakao's `kakao_account`";
                    let email = optional_string(account, "email", status, what)?;
                    let valid = optional_bool(account, "is_email_valid", status, what)?;
                    let verified = optional_bool(account, "is_email_verified", status, what)?;
                    email.filter(|_| valid == Some(true) && verified == Some(true))
                }
                Some(_) => {
                    return Err(Error::MalformedResponse {
                        status,
                        reason: "`kakao_account` in Kakao's /v2/user/me is not an object".to_owned(),
                    })
                }
            };
            Ok(IdEmail { id, email })
        })
    }
}
