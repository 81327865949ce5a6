//! Naver: the user's id and e-mail from `/v1/nid/me` (`response.id`, `response.email`), whose
//! answers carry Naver's own result codes.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::provider::naver::Naver;
//! use tower_oauth2::provider::Provider;
//! use tower_oauth2::{HttpClient, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri(), "https://openapi.naver.com/v1/nid/me");
//! #     let body = r#"{"resultcode":"00","message":"success",
//! #         "response":{"id":"32742776","email":"alice@naver.com","nickname":"alice"}}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let naver = Naver::builder("my-client-id", "my-client-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for Naver
//!     .build()?;
//! let login = naver.authorization_request("https://app.example.com/callback").build()?;
//! assert!(login.url().as_str().starts_with("https://nid.naver.com/oauth2.0/authorize?"));
//! // ... after the login:
//! let user = naver.id_email(&Token::bearer("the-user-access-token")).await?;
//! assert_eq!(user.id, "32742776");
//! assert_eq!(user.email.as_deref(), Some("alice@naver.com"));
//! # Ok(()) }
//! ```
//!
//! | | |
//! |---|---|
//! | Authorization | `https://nid.naver.com/oauth2.0/authorize` (`state` is required; the core flow always sends one) |
//! | Token | `https://nid.naver.com/oauth2.0/token`, `client_secret_post` |
//! | User | `https://openapi.naver.com/v1/nid/me`: `response.id`, `response.email` |
//! | Default scopes | none: what the app may read is chosen in Naver's developer console |
//!
//! Naver's token endpoint answers errors with HTTP 200 and an OAuth 2.0 error body, and sends
//! `expires_in` as a string: both are read as any token response is. Its revocation is not
//! RFC 7009 (`grant_type=delete` at the token endpoint) and is not set up.
//!
//! `/v1/nid/me` answers with a `resultcode` (`"00"` for success) and a `message`, whatever the
//! HTTP status. Any other result code is [`Error::OAuth2`] with Naver's `message` as the
//! description, and as the code:
//!
//! | `resultcode` | HTTP | Meaning | [`ErrorCode`] |
//! |---|---|---|---|
//! | `024` | 401 | authentication failed (token expired or revoked) | [`InvalidToken`](ErrorCode::InvalidToken) |
//! | `028` | 401 | no `Authorization` header | [`InvalidToken`](ErrorCode::InvalidToken) |
//! | `403` | 403 | the app may not call this API | `Other("insufficient_scope")` (RFC 6750 §3.1) |
//! | `500` | 500 | Naver's server failed | [`ServerError`](ErrorCode::ServerError) |
//! | anything else | | | `Other(resultcode)` |
//!
//! The gateway's own error shape (`errorCode`, `errorMessage`) is read the same way. An error
//! status without a result code is [`Error::HttpStatus`]; a success without `response.id` is
//! [`Error::MalformedResponse`].

use http::header::AUTHORIZATION;
use serde_json::{Map, Value};
use tracing::Instrument;
use url::Url;

use super::shopify::send_with_token;
use super::{
    id_field, optional_string, provider_options, with_scopes, IdEmail, IdEmailFuture, Options, Provider,
};
use crate::client::OAuth2Client;
use crate::client_auth::ClientAuth;
use crate::endpoint::userinfo::bearer_header;
use crate::error::{parse_retry_after, sanitize_server_text, Error, ErrorCode, ServerError};
use crate::secret::Secret;
use crate::token::{status_error, Token};
use crate::transport::ReadResponse;
use crate::AuthorizationRequest;

const AUTHORIZATION_URL: &str = "https://nid.naver.com/oauth2.0/authorize";
const TOKEN_URL: &str = "https://nid.naver.com/oauth2.0/token";
const PROFILE_URL: &str = "https://openapi.naver.com/v1/nid/me";

/// Naver (see the [module documentation](self)).
///
/// ```
/// use tower_oauth2::provider::naver::Naver;
/// use tower_oauth2::provider::Provider;
///
/// let naver = Naver::new("my-client-id", "my-client-secret")?;
/// assert_eq!(naver.client().client_auth().method(), "client_secret_post");
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Naver {
    client: OAuth2Client,
    profile_url: Url,
    scopes: String,
}

/// Builds a [`Naver`]; see [`Naver::builder`].
///
/// ```
/// use tower_oauth2::provider::naver::Naver;
///
/// let naver = Naver::builder("my-client-id", "my-client-secret").build()?;
/// # let _ = naver;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct NaverBuilder {
    options: Options,
}

provider_options!(
    NaverBuilder,
    "use tower_oauth2::provider::naver::Naver;",
    "Naver::builder(\"my-client-id\", \"my-client-secret\")"
);

impl Naver {
    /// Naver with the default options.
    ///
    /// ```
    /// use tower_oauth2::provider::naver::Naver;
    ///
    /// let naver = Naver::new("my-client-id", "my-client-secret")?;
    /// # let _ = naver;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder(client_id, client_secret).build()
    }

    /// A builder for the other options; the secret is sent as `client_secret_post`.
    ///
    /// ```
    /// use tower_oauth2::provider::naver::Naver;
    ///
    /// let naver = Naver::builder("my-client-id", "my-client-secret").build()?;
    /// # let _ = naver;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> NaverBuilder {
        NaverBuilder {
            options: Options::new(ClientAuth::client_secret_post(client_id, client_secret)),
        }
    }
}

impl NaverBuilder {
    /// Builds the provider (nothing is sent); URL errors as for every provider.
    ///
    /// ```
    /// use tower_oauth2::provider::naver::Naver;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let naver = Naver::builder("my-client-id", "my-client-secret").build()?;
    /// assert_eq!(naver.client().token_endpoint().token_url().as_str(), "https://nid.naver.com/oauth2.0/token");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<Naver, Error> {
        let o = &self.options;
        let client = o
            .client_builder()
            .authorization_url(o.url(AUTHORIZATION_URL)?)
            .token_url(o.url(TOKEN_URL)?)
            .build()?;
        Ok(Naver {
            client,
            profile_url: o.api_url(PROFILE_URL)?,
            scopes: o.scopes_or("").to_owned(),
        })
    }
}

/// The error a `/v1/nid/me` answer carries, if any: a result code other than `00` (in either
/// of Naver's shapes), or an error status.
fn naver_error(response: &ReadResponse, body: Option<&Map<String, Value>>) -> Option<Error> {
    let text = |names: [&str; 2]| {
        body.and_then(|b| names.iter().find_map(|n| b.get(*n)))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    let clean = |text: &str| sanitize_server_text(&response.redactions.apply(text));
    match text(["resultcode", "errorCode"]) {
        Some(code) if code != "00" => {
            let mut error = ServerError::new(match code.as_str() {
                "024" | "028" => ErrorCode::InvalidToken,
                "403" => ErrorCode::Other("insufficient_scope".to_owned()),
                "500" => ErrorCode::ServerError,
                other => ErrorCode::Other(clean(other)),
            });
            error.description = text(["message", "errorMessage"]).map(|m| clean(&m));
            Some(Error::OAuth2 {
                status: response.status,
                error,
                retry_after: parse_retry_after(&response.headers, response.received_at),
            })
        }
        _ if !response.status.is_success() => Some(status_error(response)),
        _ => None,
    }
}

impl Naver {
    async fn profile(&self, token: &Token) -> Result<IdEmail, Error> {
        let url = &self.profile_url;
        let span = tracing::debug_span!("provider_api", method = "GET", url = %url.as_str());
        async {
            let secret = token.access_token().expose();
            let header = (AUTHORIZATION, bearer_header(secret)?);
            let response = send_with_token(&self.client, url, header, secret).await?;
            let body = match serde_json::from_slice::<Value>(&response.body) {
                Ok(Value::Object(body)) => Some(body),
                _ => None,
            };
            if let Some(err) = naver_error(&response, body.as_ref()) {
                tracing::debug!(error = %err.report(), "Naver's /v1/nid/me failed");
                return Err(err);
            }
            let status = response.status;
            let what = "Naver's /v1/nid/me `response`";
            let profile = body
                .as_ref()
                .and_then(|b| b.get("response"))
                .and_then(Value::as_object)
                .ok_or_else(|| Error::MalformedResponse {
                    status,
                    reason: "Naver's /v1/nid/me is not a JSON object with a `response` object".to_owned(),
                })?;
            Ok(IdEmail {
                id: id_field(profile, "id", status, what)?,
                email: optional_string(profile, "email", status, what)?,
            })
        }
        .instrument(span)
        .await
    }
}

impl Provider for Naver {
    fn client(&self) -> &OAuth2Client {
        &self.client
    }

    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        with_scopes(self.client.authorization_request(redirect_uri), &self.scopes)
    }

    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a> {
        Box::pin(self.profile(token))
    }
}
