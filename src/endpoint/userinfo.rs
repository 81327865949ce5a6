//! The OpenID Connect userinfo endpoint (OIDC Core §5.3): the claims about the user an access
//! token was issued for.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     assert_eq!(request.headers()["authorization"], "Bearer the-access-token");
//! #     let body = r#"{"sub":"user-7","email":"alice@example.com"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
//!     .token_url("https://auth.example.com/token")
//!     .userinfo_url("https://auth.example.com/userinfo")
//!     .http_client(HttpClient::new(server)) // a stand-in OpenID provider
//!     .build()?;
//! let token = Token::bearer("the-access-token"); // from a device flow with scope `openid`
//! let user = client.userinfo(&token).await?;
//! assert_eq!(user.sub(), "user-7");
//! assert_eq!(user.claims()["email"], "alice@example.com");
//! # Ok(()) }
//! ```
//!
//! The request is a `GET` with `Authorization: Bearer <access token>` (RFC 6750 §2.1; the
//! header is marked sensitive and wiped after use); the client's own credentials are not
//! sent. What can go wrong:
//!
//! - a `401` with `WWW-Authenticate: Bearer error="invalid_token"` (expired, revoked) is
//!   [`Error::OAuth2`] with [`ErrorCode::InvalidToken`] and
//!   the challenge's `error_description`; any other error code in the challenge is kept the
//!   same way, and an error without a challenge is typed as at the token endpoint;
//! - an `application/jwt` response (a signed or encrypted userinfo, for clients registered
//!   with `userinfo_signed_response_alg`) is [`Error::SignedUserInfoUnsupported`]: this crate
//!   does not verify JWTs;
//! - a body that is not a JSON object, or has no string `sub` (OIDC Core §5.3.2 requires it),
//!   is [`Error::MalformedResponse`].
//!
//! The access token is cut out of any server text that echoes it.

use std::fmt;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Map, Value};
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::client::OAuth2Client;
use crate::error::{parse_retry_after, sanitize_server_text, Error, ErrorCode, ServerError};
use crate::layer::www_authenticate;
use crate::secret::{wiped_header_value, Redactions};
use crate::token::{check_response, json_object, status_error, Token};
use crate::transport::{server_request, ReadResponse};

/// The userinfo response: the user's claims (OIDC Core §5.3.2). `sub` is always there.
///
/// `Debug` shows `sub` and the names of the other claims, not their values (personal data).
///
/// ```
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
/// #     let body = r#"{"sub":"user-7","name":"Alice"}"#;
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
/// # });
/// # let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
/// #     .token_url("https://auth.example.com/token")
/// #     .userinfo_url("https://auth.example.com/userinfo")
/// #     .http_client(HttpClient::new(server))
/// #     .build()?;
/// let user = client.userinfo(&Token::bearer("the-access-token")).await?;
/// assert_eq!(user.sub(), "user-7");
/// assert_eq!(user.claim("name").and_then(|v| v.as_str()), Some("Alice"));
/// assert!(!format!("{user:?}").contains("Alice"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UserInfo {
    sub: String,
    claims: Map<String, Value>,
}

impl UserInfo {
    /// The subject: the user's identifier at this provider.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(br#"{"sub":"user-7"}"#))))
    /// # });
    /// # let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    /// #     .token_url("https://auth.example.com/token")
    /// #     .userinfo_url("https://auth.example.com/userinfo")
    /// #     .http_client(HttpClient::new(server))
    /// #     .build()?;
    /// let user = client.userinfo(&Token::bearer("the-access-token")).await?;
    /// assert_eq!(user.sub(), "user-7");
    /// # Ok(()) }
    /// ```
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// One claim, if present.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(br#"{"sub":"u","email_verified":true}"#))))
    /// # });
    /// # let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    /// #     .token_url("https://auth.example.com/token")
    /// #     .userinfo_url("https://auth.example.com/userinfo")
    /// #     .http_client(HttpClient::new(server))
    /// #     .build()?;
    /// let user = client.userinfo(&Token::bearer("the-access-token")).await?;
    /// assert_eq!(user.claim("email_verified"), Some(&serde_json::Value::Bool(true)));
    /// assert_eq!(user.claim("email"), None);
    /// # Ok(()) }
    /// ```
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// Every claim, `sub` included.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, Token};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(br#"{"sub":"u","locale":"fr"}"#))))
    /// # });
    /// # let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    /// #     .token_url("https://auth.example.com/token")
    /// #     .userinfo_url("https://auth.example.com/userinfo")
    /// #     .http_client(HttpClient::new(server))
    /// #     .build()?;
    /// let user = client.userinfo(&Token::bearer("the-access-token")).await?;
    /// assert_eq!(user.claims().len(), 2);
    /// assert_eq!(user.claims()["sub"], "u");
    /// # Ok(()) }
    /// ```
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

impl fmt::Debug for UserInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserInfo")
            .field("sub", &self.sub)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `Bearer <token>`, marked sensitive, wiped when the last copy is dropped: how the userinfo
/// endpoint and the providers' APIs get the user's token.
pub(crate) fn bearer_header(access_token: &str) -> Result<http::HeaderValue, Error> {
    const PREFIX: &str = "Bearer ";
    let mut value = Zeroizing::new(Vec::with_capacity(PREFIX.len() + access_token.len()));
    value.extend_from_slice(PREFIX.as_bytes());
    value.extend_from_slice(access_token.as_bytes());
    wiped_header_value(value).map_err(|_| {
        Error::Config("the access token has characters that cannot be sent in an HTTP header".to_owned())
    })
}

/// The `sub` claim of the ID token `token` came with, read without verifying the ID token (the
/// client that got it from the token endpoint over TLS trusts it as far as it trusts the
/// access token). `None` without an ID token, or when it is not a readable JWS (an encrypted
/// ID token, say): then there is nothing to compare with.
fn id_token_subject(token: &Token) -> Option<String> {
    use base64::Engine as _;
    let id_token = token.id_token()?.expose();
    let mut parts = id_token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice::<Value>(&payload).ok()? {
        Value::Object(mut claims) => match claims.remove("sub") {
            Some(Value::String(sub)) => Some(sub),
            _ => None,
        },
        _ => None,
    }
}

/// The error a userinfo response carries, if any.
fn userinfo_error(response: &ReadResponse) -> Option<Error> {
    if response.status.is_success() {
        return None;
    }
    // RFC 6750 §3: the error is in the Bearer challenge, not in the body.
    Some(bearer_challenge_error(response).unwrap_or_else(|| status_error(response)))
}

/// The error a resource server's `WWW-Authenticate: Bearer error="..."` challenge carries
/// (RFC 6750 §3), with its description and URI made safe to print; `None` without one.
pub(crate) fn bearer_challenge_error(response: &ReadResponse) -> Option<Error> {
    let challenges = www_authenticate::parse_headers(&response.headers);
    let challenge = challenges
        .iter()
        .find(|c| c.is_scheme("Bearer") && c.param("error").is_some())?;
    let clean = |text: &str| sanitize_server_text(&response.redactions.apply(text));
    let code = challenge.param("error").unwrap_or_default();
    let mut error = ServerError::new(match ErrorCode::from(code) {
        ErrorCode::Other(_) => ErrorCode::from(clean(code).as_str()),
        known => known,
    });
    error.description = challenge.param("error_description").map(clean);
    error.uri = challenge.param("error_uri").map(clean);
    Some(Error::OAuth2 {
        status: response.status,
        error,
        retry_after: parse_retry_after(&response.headers, response.received_at),
    })
}

impl OAuth2Client {
    /// The claims about the user `access_token` was issued for, from the OpenID Connect
    /// userinfo endpoint (OIDC Core §5.3). [`Error::NoEndpoint`] if the server has none; see
    /// the [module documentation](crate::endpoint::userinfo) for the other errors.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, ErrorCode, HttpClient, OAuth2Client, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(
    /// #         http::Response::builder()
    /// #             .status(401)
    /// #             .header("www-authenticate", r#"Bearer error="invalid_token", error_description="expired""#)
    /// #             .body(Full::new(Bytes::new()))
    /// #             .unwrap(),
    /// #     )
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
    ///     .token_url("https://auth.example.com/token")
    ///     .userinfo_url("https://auth.example.com/userinfo")
    ///     .http_client(HttpClient::new(server)) // the token has expired
    ///     .build()?;
    /// let err = client.userinfo(&Token::bearer("old-token")).await.unwrap_err();
    /// assert_eq!(err.code(), Some(&ErrorCode::InvalidToken));
    /// # Ok(()) }
    /// ```
    pub async fn userinfo(&self, access_token: &Token) -> Result<UserInfo, Error> {
        let url = self.endpoint("userinfo", self.userinfo_url())?;
        let span = tracing::debug_span!("userinfo", %url);
        async {
            let secret = access_token.access_token().expose();
            let request = server_request(
                http::Method::GET,
                url,
                &[(AUTHORIZATION, bearer_header(secret)?)],
                Bytes::new(),
            )?;
            let endpoint = self.token_endpoint();
            let mut response = endpoint.http().send(request, &**endpoint.clock()).await?;
            let mut redactions = Redactions::default();
            redactions.add(secret);
            response.redactions = redactions;
            if let Some(err) = userinfo_error(&response) {
                tracing::debug!(error = %err.report(), "userinfo failed");
                return Err(err);
            }
            let content_type = response
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            if content_type.starts_with("application/jwt") {
                return Err(Error::SignedUserInfoUnsupported);
            }
            let mut claims = json_object(&response.body, response.status, "the userinfo response")?;
            if claims.get("error").is_some_and(Value::is_string) {
                return Err(check_response(&response)
                    .err()
                    .unwrap_or(Error::MalformedResponse {
                        status: response.status,
                        reason: "the userinfo response is an error".to_owned(),
                    }));
            }
            let sub = match claims.get_mut("sub") {
                Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
                _ => {
                    return Err(Error::MalformedResponse {
                        status: response.status,
                        reason: "the userinfo response has no string `sub` (OIDC Core §5.3.2)".to_owned(),
                    })
                }
            };
            // OIDC Core §5.3.2: the `sub` must be the ID token's, if the token came with one.
            if id_token_subject(access_token).is_some_and(|expected| expected != sub) {
                tracing::debug!("userinfo is about another subject than the ID token");
                return Err(Error::UserInfoSubjectMismatch);
            }
            tracing::debug!("userinfo received");
            Ok(UserInfo { sub, claims })
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use bytes::Bytes;
    use http_body_util::Full;

    use super::*;
    use crate::{ClientAuth, HttpClient};

    fn id_token(claims: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", encode(r#"{"alg":"RS256"}"#), encode(claims))
    }

    fn token_with_id_token(claims: &str) -> Token {
        Token::bearer("at").with_id_token(id_token(claims))
    }

    async fn userinfo_of(token: &Token, body: &'static str) -> Result<UserInfo, Error> {
        let server = tower::service_fn(move |_: http::Request<Full<Bytes>>| async move {
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap(),
            )
        });
        let client = OAuth2Client::builder(ClientAuth::none("cli"))
            .token_url("https://auth.example.com/token")
            .userinfo_url("https://auth.example.com/userinfo")
            .http_client(HttpClient::new(server))
            .build()?;
        client.userinfo(token).await
    }

    #[test]
    fn the_id_token_subject_is_read_from_a_jws_only() {
        let token = token_with_id_token(r#"{"sub":"alice","iss":"x"}"#);
        assert!(token.id_token().is_some(), "the test token carries an ID token");
        assert_eq!(id_token_subject(&token).as_deref(), Some("alice"));
        assert_eq!(id_token_subject(&Token::bearer("at")), None);
        assert_eq!(id_token_subject(&token_with_id_token(r#"{"iss":"x"}"#)), None);
        assert_eq!(id_token_subject(&token_with_id_token(r#"["sub"]"#)), None);
    }

    #[tokio::test]
    async fn userinfo_about_another_subject_than_the_id_token_is_refused() {
        let token = token_with_id_token(r#"{"sub":"alice"}"#);
        let info = userinfo_of(&token, r#"{"sub":"alice","name":"Alice"}"#)
            .await
            .unwrap();
        assert_eq!(info.sub(), "alice");
        let err = userinfo_of(&token, r#"{"sub":"mallory"}"#).await.unwrap_err();
        assert!(matches!(err, Error::UserInfoSubjectMismatch), "{err:?}");
        assert!(!err.to_string().contains("mallory"));
        // Without an ID token there is nothing to compare with.
        let info = userinfo_of(&Token::bearer("at"), r#"{"sub":"mallory"}"#)
            .await
            .unwrap();
        assert_eq!(info.sub(), "mallory");
    }
}
