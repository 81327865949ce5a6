//! Token revocation (RFC 7009): tell the authorization server a token is no longer needed, on
//! logout or shutdown.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token, TokenTypeHint};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.uri().path(), "/revoke");
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
//! # });
//! let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
//!     .token_url("https://auth.example.com/token")
//!     .revocation_url("https://auth.example.com/revoke")
//!     .http_client(HttpClient::new(server)) // a stand-in authorization server
//!     .build()?;
//! let token = Token::bearer("access-1").with_refresh_token("refresh-1");
//! // On logout: the refresh token first (servers revoke its access tokens with it).
//! assert!(client.revoke_refresh_token(&token).await?);
//! client.revoke_access_token(&token).await?;
//! client.revoke_token("some-other-token", Some(TokenTypeHint::AccessToken)).await?;
//! # Ok(()) }
//! ```
//!
//! The request is a form POST to the revocation endpoint with `token`, an optional
//! `token_type_hint`, and the client's authentication, exactly as at the token endpoint (RFC
//! 7009 §2.1). A `200` means revoked, whatever the body: the server answers `200` for a token
//! it does not know too (RFC 7009 §2.2), so a token revoked twice is not an error. Errors are
//! typed as the token endpoint's: an OAuth 2.0 error body is [`Error::OAuth2`]
//! (`unsupported_token_type` is [`ErrorCode::UnsupportedTokenType`](crate::ErrorCode)), a 503
//! with `Retry-After` is a transient [`Error::HttpStatus`] with its
//! [`retry_after`](Error::retry_after). The token is cut out of any server text that echoes
//! it.

use std::fmt;

use serde_json::Value;
use tracing::Instrument;

use crate::client::OAuth2Client;
use crate::error::Error;
use crate::token::{check_response, status_error, Token};
use crate::transport::ReadResponse;

/// What kind of token is sent for revocation or introspection (`token_type_hint`, RFC 7009
/// §2.1, RFC 7662 §2.1): a hint that helps the server find it. Servers look further when the
/// hint is wrong.
///
/// ```
/// use tower_oauth2::TokenTypeHint;
///
/// assert_eq!(TokenTypeHint::AccessToken.as_str(), "access_token");
/// assert_eq!(TokenTypeHint::Other("id_token".into()).as_str(), "id_token");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
    /// Any other registered or server-specific type.
    Other(String),
}

impl TokenTypeHint {
    /// The hint as it is sent.
    ///
    /// ```
    /// assert_eq!(tower_oauth2::TokenTypeHint::RefreshToken.as_str(), "refresh_token");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
            TokenTypeHint::Other(hint) => hint,
        }
    }
}

impl fmt::Debug for TokenTypeHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TokenTypeHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The form of a revocation or introspection request: `token`, and `token_type_hint` if any.
pub(crate) fn token_form<'a>(
    token: &'a str,
    hint: Option<&'a TokenTypeHint>,
) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint.as_str()));
    }
    form
}

/// The error of a revocation or introspection response, if it is one: a non-2xx status, or
/// an OAuth 2.0 error object in a 2xx body.
pub(crate) fn response_error(response: &ReadResponse) -> Option<Error> {
    if !response.status.is_success() {
        return Some(status_error(response));
    }
    let has_error = matches!(
        serde_json::from_slice::<Value>(&response.body),
        Ok(Value::Object(fields)) if fields.contains_key("error")
    );
    if has_error {
        check_response(response).err()
    } else {
        None
    }
}

impl OAuth2Client {
    /// Revokes `token` (RFC 7009), with an optional `token_type_hint`. `Ok` when the server
    /// answered `200`, which it also does for a token it does not know (§2.2).
    /// [`Error::NoEndpoint`] if the server has no revocation endpoint.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, ErrorCode, HttpClient, OAuth2Client, TokenTypeHint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"error":"unsupported_token_type"}"#;
    /// #     Ok::<_, std::convert::Infallible>(
    /// #         http::Response::builder().status(400).body(Full::new(Bytes::from(body))).unwrap(),
    /// #     )
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
    ///     .token_url("https://auth.example.com/token")
    ///     .revocation_url("https://auth.example.com/revoke")
    ///     .http_client(HttpClient::new(server)) // revokes no access tokens
    ///     .build()?;
    /// let err = client
    ///     .revoke_token("access-1", Some(TokenTypeHint::AccessToken))
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.code(), Some(&ErrorCode::UnsupportedTokenType));
    /// # Ok(()) }
    /// ```
    pub async fn revoke_token(&self, token: &str, hint: Option<TokenTypeHint>) -> Result<(), Error> {
        let url = self.endpoint("revocation", self.revocation_url())?;
        let span = tracing::debug_span!("revocation", %url, hint = hint.as_ref().map(TokenTypeHint::as_str));
        async {
            let form = token_form(token, hint.as_ref());
            let response = self.token_endpoint().post_form(url, &form, &[]).await?;
            match response_error(&response) {
                Some(err) => {
                    tracing::debug!(error = %err.report(), "revocation failed");
                    Err(err)
                }
                None => {
                    tracing::debug!("token revoked");
                    Ok(())
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Revokes the access token of `token`, hinted as `access_token`.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    /// #     use http_body_util::BodyExt;
    /// #     let body = request.into_body().collect().await.unwrap().to_bytes();
    /// #     assert_eq!(&body[..], b"token=access-1&token_type_hint=access_token");
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
    ///     .token_url("https://auth.example.com/token")
    ///     .revocation_url("https://auth.example.com/revoke")
    ///     .http_client(HttpClient::new(server)) // checks token=access-1&token_type_hint=access_token
    ///     .build()?;
    /// client.revoke_access_token(&Token::bearer("access-1")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_access_token(&self, token: &Token) -> Result<(), Error> {
        self.revoke_token(token.access_token().expose(), Some(TokenTypeHint::AccessToken))
            .await
    }

    /// Revokes the refresh token of `token`, hinted as `refresh_token`. `Ok(false)`, and
    /// nothing sent, when `token` has no refresh token (there is nothing to revoke: logging
    /// out of a session without one is not an error); `Ok(true)` once revoked. Servers
    /// usually revoke the access tokens of the same grant with it (RFC 7009 §2.1).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .revocation_url("https://auth.example.com/revoke")
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// assert!(client.revoke_refresh_token(&Token::bearer("a").with_refresh_token("r")).await?);
    /// assert!(!client.revoke_refresh_token(&Token::bearer("a")).await?); // none to revoke
    /// # Ok(()) }
    /// ```
    pub async fn revoke_refresh_token(&self, token: &Token) -> Result<bool, Error> {
        let Some(refresh_token) = token.refresh_token() else {
            return Ok(false);
        };
        self.revoke_token(refresh_token.expose(), Some(TokenTypeHint::RefreshToken))
            .await?;
        Ok(true)
    }
}
