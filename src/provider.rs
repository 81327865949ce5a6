//! Ready-made providers: the endpoints, scopes and quirks of well-known OAuth 2.0 and OpenID
//! Connect services, and [`Provider::id_email`], which asks the provider's API who logged in.
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
//! #     assert_eq!(request.uri(), "https://api.github.com/user");
//! #     let body = r#"{"id":583231,"login":"octocat","email":"octocat@github.com"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let github = GitHub::builder("my-client-id", "my-client-secret")
//!     .http_client(HttpClient::new(server)) // a stand-in for GitHub
//!     .build()?;
//! // A web app holds any provider behind one type.
//! let provider: Box<dyn Provider> = Box::new(github);
//! // ... after the login (see `OAuth2Client::exchange_code`):
//! let token = Token::bearer("the-user-access-token");
//! let user = provider.id_email(&token).await?;
//! assert_eq!(user.id, "583231"); // ids are strings, whatever type the provider sends
//! assert_eq!(user.email.as_deref(), Some("octocat@github.com"));
//! # Ok(()) }
//! ```
//!
//! Every provider is a struct with constructors that return `Result` (they check the URLs; none
//! sends anything) and a `#[must_use]` builder with the options every provider shares:
//!
//! - `http_client`, `clock`: as [`OAuth2ClientBuilder`]'s, used
//!   for the token endpoint and for the provider's API alike;
//! - `scopes`: replaces the provider's default scopes;
//! - `base_url`: moves every URL of the provider (authorization, token, API) to another origin
//!   and path prefix, keeping each URL's path: a self-hosted instance, or a test server;
//! - `dangerous_allow_insecure_http`: plain `http` off loopback, for test rigs only.
//!
//! [`Provider::id_email`] sends the access token only to the provider's API, as
//! `Authorization: Bearer` (marked sensitive, wiped after use), with the crate's body cap and
//! the HTTP client's timeout; a redirect is not followed (it is an error). What can go wrong:
//!
//! - a `401` with a Bearer challenge (RFC 6750 §3) is [`Error::OAuth2`] with the challenge's
//!   code (`invalid_token`) and description;
//! - another error status is [`Error::OAuth2`] when the body is an OAuth 2.0 error, or the
//!   error object of Facebook, Microsoft Graph or Google APIs
//!   (`{"error": {"message", "type"/"code"/"status"}}`: that code, that message), and
//!   [`Error::HttpStatus`] otherwise (with its `Retry-After`), except a bare `401`, which is
//!   the token refused: [`Error::OAuth2`] with `invalid_token`, whatever the provider, so that
//!   `err.code()` tells an expired or revoked token the same way everywhere;
//! - a body that is not JSON, lacks the id, or has a field of the wrong type is
//!   [`Error::MalformedResponse`] naming the field; one over the body cap is
//!   [`Error::BodyTooLarge`].
//!
//! Server text in errors has the access token cut out, control characters escaped and its
//! length capped, as at the token endpoint.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, AUTHORIZATION};
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Map, Value};
use tracing::Instrument;
use url::Url;

use crate::client::{OAuth2Client, OAuth2ClientBuilder};
use crate::client_auth::ClientAuth;
use crate::clock::Clock;
use crate::endpoint::token::parse_endpoint_url;
use crate::endpoint::userinfo::{bearer_challenge_error, bearer_header, UserInfo};
use crate::error::{parse_retry_after, sanitize_server_text, Error, ErrorCode, ServerError};
use crate::secret::Redactions;
use crate::token::{check_response, status_error, Token};
use crate::transport::{server_request, HttpClient, ReadResponse};
use crate::AuthorizationRequest;

// Part A: the generic providers, GitHub, Google, Microsoft, Discord, Facebook, GitLab.
pub mod discord;
pub mod facebook;
pub mod generic;
pub mod github;
pub mod gitlab;
pub mod google;
pub mod microsoft;
// Part B: the other providers, one line each below.
pub mod franceconnect;
pub mod kakao;
pub mod linkedin;
pub mod naver;
pub mod okta;
pub mod reddit;
pub mod shopify;

/// Who logged in: the user's id at the provider and, when the provider gives one, their
/// e-mail address (verified, where the provider says whether it is).
///
/// `Debug` shows the id and whether there is an e-mail, not the address (personal data, as
/// [`UserInfo`]'s `Debug` does not show claim values).
///
/// ```
/// use tower_oauth2::provider::IdEmail;
///
/// let user = IdEmail { id: "42".to_owned(), email: Some("alice@example.com".to_owned()) };
/// assert_eq!(user.id, "42");
/// assert!(!format!("{user:?}").contains("alice"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IdEmail {
    /// The user's stable id at the provider (a number sent as a number is written in decimal).
    pub id: String,
    /// The user's e-mail address, if the provider gave one.
    pub email: Option<String>,
}

impl fmt::Debug for IdEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdEmail")
            .field("id", &self.id)
            .field("email", &self.email.as_ref().map(|_| "[personal data]"))
            .finish()
    }
}

/// The future of [`Provider::id_email`]: boxed, so that the trait stays object-safe, and
/// `Send`. A provider of your own returns `Box::pin(async move { ... })`.
///
/// ```
/// use tower_oauth2::provider::{IdEmail, IdEmailFuture};
///
/// fn fixed<'a>() -> IdEmailFuture<'a> {
///     Box::pin(async { Ok(IdEmail { id: "42".to_owned(), email: None }) })
/// }
/// # let _ = fixed;
/// ```
pub type IdEmailFuture<'a> = Pin<Box<dyn Future<Output = Result<IdEmail, Error>> + Send + 'a>>;

/// A ready-made provider: its client, its authorization request, and who logged in.
///
/// Object-safe, so a web app can hold `Box<dyn Provider>` or `Arc<dyn Provider>` and log in
/// with any of them the same way.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use tower_oauth2::provider::github::GitHub;
/// use tower_oauth2::provider::gitlab::GitLab;
/// use tower_oauth2::provider::Provider;
///
/// let mut providers: HashMap<&str, Arc<dyn Provider>> = HashMap::new();
/// providers.insert("github", Arc::new(GitHub::new("gh-client", "gh-secret")?));
/// providers.insert("gitlab", Arc::new(GitLab::new("gl-client", "gl-secret")?));
/// let login = providers["gitlab"]
///     .authorization_request("https://app.example.com/callback/gitlab")
///     .build()?;
/// assert!(login.url().as_str().starts_with("https://gitlab.com/oauth/authorize?"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
pub trait Provider: Send + Sync + fmt::Debug {
    /// The client at the provider's endpoints (token endpoint, authentication method and
    /// quirks set up): [`exchange_code`](OAuth2Client::exchange_code),
    /// [`refresh_token`](OAuth2Client::refresh_token), revocation.
    ///
    /// ```
    /// use tower_oauth2::provider::github::GitHub;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let github = GitHub::new("my-client-id", "my-client-secret")?;
    /// assert_eq!(
    ///     github.client().token_endpoint().token_url().as_str(),
    ///     "https://github.com/login/oauth/access_token"
    /// );
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    fn client(&self) -> &OAuth2Client;

    /// An authorization request with the provider's default scopes and parameters; add to it
    /// before [`build`](AuthorizationRequest::build).
    ///
    /// ```
    /// use tower_oauth2::provider::github::GitHub;
    /// use tower_oauth2::provider::Provider;
    ///
    /// let github = GitHub::new("my-client-id", "my-client-secret")?;
    /// let login = github
    ///     .authorization_request("https://app.example.com/callback")
    ///     .login_hint("octocat")
    ///     .build()?;
    /// let url = login.url().as_str();
    /// assert!(url.starts_with("https://github.com/login/oauth/authorize?"));
    /// assert!(url.contains("scope=read%3Auser+user%3Aemail"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest;

    /// The user's id and e-mail from the provider's API, with the login's access token.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::provider::gitlab::GitLab;
    /// use tower_oauth2::provider::Provider;
    /// use tower_oauth2::{HttpClient, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"id":1,"username":"root","email":"admin@example.com"}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let gitlab = GitLab::builder("my-client-id", "my-client-secret")
    ///     .http_client(HttpClient::new(server)) // a stand-in for GitLab
    ///     .build()?;
    /// let user = gitlab.id_email(&Token::bearer("the-user-access-token")).await?;
    /// assert_eq!(user.id, "1");
    /// # Ok(()) }
    /// ```
    fn id_email<'a>(&'a self, token: &'a Token) -> IdEmailFuture<'a>;
}

/// The options every provider's builder has (see the [module documentation](self)).
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) auth: ClientAuth,
    pub(crate) http: Option<HttpClient>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) scopes: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) allow_insecure_http: bool,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("auth", &self.auth)
            .field("scopes", &self.scopes)
            .field("base_url", &self.base_url)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// The defaults, with the client's authentication.
    pub(crate) fn new(auth: ClientAuth) -> Self {
        Options {
            auth,
            http: None,
            clock: None,
            scopes: None,
            base_url: None,
            allow_insecure_http: false,
        }
    }

    /// `url` (one of the provider's), moved to [`base_url`](Self::base_url) when one is set:
    /// the base's origin and path prefix, then `url`'s path and query.
    pub(crate) fn url(&self, url: &str) -> Result<String, Error> {
        let Some(base) = &self.base_url else {
            return Ok(url.to_owned());
        };
        let parsed =
            Url::parse(url).map_err(|e| Error::Config(format!("invalid provider URL {url:?}: {e}")))?;
        let mut base =
            Url::parse(base).map_err(|e| Error::Config(format!("invalid base URL {base:?}: {e}")))?;
        if base.cannot_be_a_base() || base.query().is_some() || base.fragment().is_some() {
            return Err(Error::Config(
                "the base URL must be an absolute http(s) URL without query or fragment".to_owned(),
            ));
        }
        let path = format!("{}{}", base.path().trim_end_matches('/'), parsed.path());
        base.set_path(&path);
        base.set_query(parsed.query());
        Ok(base.into())
    }

    /// A URL of the provider's API: moved as [`url`](Self::url) does, then checked as every
    /// endpoint URL is (`https`, or `http` on loopback unless insecure http is allowed).
    pub(crate) fn api_url(&self, url: &str) -> Result<Url, Error> {
        parse_endpoint_url(&self.url(url)?, self.allow_insecure_http)
    }

    /// The scopes to ask for: the ones given to the builder, or `default`.
    pub(crate) fn scopes_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.scopes.as_deref().unwrap_or(default)
    }

    /// A client builder with this authentication, HTTP client, clock and insecure-http
    /// choice.
    pub(crate) fn client_builder(&self) -> OAuth2ClientBuilder {
        let mut builder = OAuth2Client::builder(self.auth.clone());
        if let Some(http) = &self.http {
            builder = builder.http_client(http.clone());
        }
        if let Some(clock) = &self.clock {
            builder = builder.clock(clock.clone());
        }
        if self.allow_insecure_http {
            builder = builder.dangerous_allow_insecure_http();
        }
        builder
    }
}

/// Gives a provider builder (with an `options: Options` field) the shared setters, each with
/// an example; `$use` imports the provider, `$new` makes its builder.
macro_rules! provider_options {
    ($builder:ident, $use:literal, $new:literal) => {
        impl $builder {
            /// Replaces the client's authentication (default: the client id and secret given,
            /// sent as the provider expects): a public client (`ClientAuth::none`, with PKCE),
            /// or another method the provider supports.
            ///
            /// ```
            #[doc = $use]
            ///
            #[doc = concat!("let provider = ", $new)]
            ///     .client_auth(tower_oauth2::ClientAuth::client_secret_basic("my-client-id", "my-client-secret"))
            ///     .build()?;
            /// # let _ = provider;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn client_auth(mut self, auth: $crate::ClientAuth) -> Self {
                self.options.auth = auth;
                self
            }

            /// The HTTP client for the token endpoint and the provider's API (default:
            /// `HttpClient::hyper()`).
            ///
            /// ```
            /// use std::time::Duration;
            /// use tower_oauth2::HttpClient;
            #[doc = $use]
            ///
            #[doc = concat!("let provider = ", $new)]
            ///     .http_client(HttpClient::hyper()?.with_timeout(Duration::from_secs(10)))
            ///     .build()?;
            /// # let _ = provider;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn http_client(mut self, http: $crate::HttpClient) -> Self {
                self.options.http = Some(http);
                self
            }

            /// The clock token expiry is computed with (default: the system clock).
            ///
            /// ```
            /// use tower_oauth2::clock::ManualClock;
            #[doc = $use]
            ///
            #[doc = concat!("let provider = ", $new, ".clock(ManualClock::new()).build()?;")]
            /// # let _ = provider;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn clock(mut self, clock: impl $crate::clock::Clock) -> Self {
                self.options.clock = Some(std::sync::Arc::new(clock));
                self
            }

            /// Replaces the provider's default scopes (space-separated). `id_email` needs the
            /// scopes that let it read the user's id and e-mail.
            ///
            /// ```
            #[doc = $use]
            ///
            #[doc = concat!("let provider = ", $new, ".scopes(\"openid email\").build()?;")]
            /// # let _ = provider;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn scopes(mut self, scopes: impl Into<String>) -> Self {
                self.options.scopes = Some(scopes.into());
                self
            }

            /// Moves every URL of the provider (authorization, token, API) to `base_url`'s
            /// origin and path prefix, keeping each URL's own path: a self-hosted instance, or
            /// a test server. Checked when the provider is built.
            ///
            /// ```
            #[doc = $use]
            ///
            #[doc = concat!("let provider = ", $new, ".base_url(\"http://127.0.0.1:8080/mock\").build()?;")]
            /// # let _ = provider;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
                self.options.base_url = Some(base_url.into());
                self
            }

            /// Accepts plain `http` URLs on any host (with [`base_url`](Self::base_url)).
            /// **Never in production**: the client secret and the tokens would cross the
            /// network in clear text.
            ///
            /// ```
            #[doc = $use]
            ///
            #[doc = concat!("let provider = ", $new)]
            ///     .base_url("http://provider-mock:8080")
            ///     .dangerous_allow_insecure_http()
            ///     .build()?;
            /// # let _ = provider;
            /// # Ok::<(), tower_oauth2::Error>(())
            /// ```
            pub fn dangerous_allow_insecure_http(mut self) -> Self {
                self.options.allow_insecure_http = true;
                self
            }
        }
    };
}
pub(crate) use provider_options;

/// `request` with `scopes` added, unless there are none.
pub(crate) fn with_scopes(request: AuthorizationRequest, scopes: &str) -> AuthorizationRequest {
    if scopes.trim().is_empty() {
        request
    } else {
        request.scope(scopes.to_owned())
    }
}

/// A provider API's answer: its status and its JSON body (an object or an array).
pub(crate) struct ApiResponse {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl ApiResponse {
    /// The body as an object; `what` names the response in the error.
    pub(crate) fn object(&self, what: &str) -> Result<&Map<String, Value>, Error> {
        self.body.as_object().ok_or_else(|| Error::MalformedResponse {
            status: self.status,
            reason: format!("{what} is not a JSON object"),
        })
    }

    /// The body as an array; `what` names the response in the error.
    pub(crate) fn array(&self, what: &str) -> Result<&Vec<Value>, Error> {
        self.body.as_array().ok_or_else(|| Error::MalformedResponse {
            status: self.status,
            reason: format!("{what} is not a JSON array"),
        })
    }
}

/// The error of a provider API's answer with a non-2xx status: the Bearer challenge's error
/// (RFC 6750 §3), else the OAuth 2.0 error body, else a provider's error object, else the
/// status.
fn api_error(response: &ReadResponse) -> Error {
    match typed_api_error(response) {
        // A 401 that says nothing more (GitHub's "Bad credentials", Discord's, Kakao's) is the
        // token refused: `invalid_token` (RFC 6750 §3.1), as a Bearer challenge would say, so
        // that `err.code()` tells every provider's expired or revoked token the same way.
        Error::HttpStatus {
            status: StatusCode::UNAUTHORIZED,
            retry_after,
        } => {
            let mut error = ServerError::new(ErrorCode::InvalidToken);
            error.description = Some("the provider's API refused the access token (HTTP 401)".to_owned());
            Error::OAuth2 {
                status: StatusCode::UNAUTHORIZED,
                error,
                retry_after,
            }
        }
        other => other,
    }
}

/// [`api_error`] before a bare 401 is read as `invalid_token`.
fn typed_api_error(response: &ReadResponse) -> Error {
    if let Some(error) = bearer_challenge_error(response) {
        return error;
    }
    let error = status_error(response);
    if !matches!(error, Error::HttpStatus { .. }) {
        return error;
    }
    // Provider APIs that answer `{"error": {"message": ..., "type"/"code"/"status": ...}}`, an
    // error object instead of RFC 6749's `error` string.
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&response.body) else {
        return error;
    };
    let Some(Value::Object(object)) = body.get("error") else {
        return error;
    };
    let clean = |text: &str| sanitize_server_text(&response.redactions.apply(text));
    // Facebook's `type`, Microsoft Graph's `code`, Google APIs' `status`.
    let Some(code) = ["type", "code", "status"]
        .iter()
        .find_map(|name| object.get(*name).and_then(Value::as_str))
        .filter(|code| !code.is_empty())
    else {
        return error;
    };
    let mut server = ServerError::new(ErrorCode::from(clean(code).as_str()));
    server.description = object.get("message").and_then(Value::as_str).map(clean);
    Error::OAuth2 {
        status: response.status,
        error: server,
        retry_after: parse_retry_after(&response.headers, response.received_at),
    }
}

/// Calls a provider's API at `url` with `token` as `Authorization: Bearer` (and nothing else
/// of the client's), through the client's HTTP client (timeout, body cap) and clock; `headers`
/// are added (or replace the defaults: `Accept: application/json`, the crate's
/// `User-Agent`). Returns the JSON body of a 2xx answer; see the
/// [module documentation](self) for the errors.
pub(crate) async fn call_api(
    client: &OAuth2Client,
    method: Method,
    url: &Url,
    token: &Token,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<ApiResponse, Error> {
    let span =
        tracing::debug_span!("provider_api", %method, url = %url.as_str().split('?').next().unwrap_or(""));
    async {
        let secret = token.access_token().expose();
        let mut all = Vec::with_capacity(headers.len() + 1);
        all.push((AUTHORIZATION, bearer_header(secret)?));
        all.extend(headers.iter().cloned());
        let request = server_request(method, url, &all, body)?;
        let endpoint = client.token_endpoint();
        let mut response = endpoint.http().send(request, &**endpoint.clock()).await?;
        let mut redactions = Redactions::default();
        redactions.add(secret);
        response.redactions = redactions;
        if !response.status.is_success() {
            let err = api_error(&response);
            tracing::debug!(error = %err.report(), "provider API call failed");
            return Err(err);
        }
        let body = match serde_json::from_slice::<Value>(&response.body) {
            Ok(body) => body,
            Err(_) => {
                return Err(Error::MalformedResponse {
                    status: response.status,
                    reason: "the provider's API answered with a body that is not JSON".to_owned(),
                })
            }
        };
        // An OAuth 2.0 error object with a 2xx status (as some providers send).
        if body.get("error").is_some_and(Value::is_string) {
            return Err(check_response(&response)
                .err()
                .unwrap_or(Error::MalformedResponse {
                    status: response.status,
                    reason: "the provider's API answered with an error".to_owned(),
                }));
        }
        tracing::debug!("provider API answered");
        Ok(ApiResponse {
            status: response.status,
            body,
        })
    }
    .instrument(span)
    .await
}

/// A `GET` of `url` with `token`: [`call_api`] without a body.
pub(crate) async fn get_api(
    client: &OAuth2Client,
    url: &Url,
    token: &Token,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<ApiResponse, Error> {
    call_api(client, Method::GET, url, token, headers, Bytes::new()).await
}

/// An id field: a non-empty string, or a number (written in decimal). Anything else, or no
/// such field, is [`Error::MalformedResponse`] naming the field and `what` holds it.
pub(crate) fn id_field(
    fields: &Map<String, Value>,
    name: &str,
    status: StatusCode,
    what: &str,
) -> Result<String, Error> {
    match fields.get(name) {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::Number(id)) => Ok(id.to_string()),
        _ => Err(Error::MalformedResponse {
            status,
            reason: format!("{what} has no `{name}` (a non-empty string or a number)"),
        }),
    }
}

/// An optional string field: missing, `null` or empty is `None`; another type is
/// [`Error::MalformedResponse`] naming the field.
pub(crate) fn optional_string(
    fields: &Map<String, Value>,
    name: &str,
    status: StatusCode,
    what: &str,
) -> Result<Option<String>, Error> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::MalformedResponse {
            status,
            reason: format!("`{name}` in {what} is not a string"),
        }),
    }
}

/// An optional boolean field: missing or `null` is `None`; another type is
/// [`Error::MalformedResponse`] naming the field. The string `"true"`/`"false"` (as some
/// providers send) is read as the boolean.
pub(crate) fn optional_bool(
    fields: &Map<String, Value>,
    name: &str,
    status: StatusCode,
    what: &str,
) -> Result<Option<bool>, Error> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(_) => Err(Error::MalformedResponse {
            status,
            reason: format!("`{name}` in {what} is not a boolean"),
        }),
    }
}

/// The id and e-mail of a userinfo response (OIDC Core §5.3.2): `sub`, and `email` only when
/// `email_verified` is `true` (an address the provider has not vouched for is anyone's to
/// claim). [`Error::MalformedResponse`] when `email` or `email_verified` has another type.
pub(crate) fn userinfo_id_email(user: &UserInfo) -> Result<IdEmail, Error> {
    let what = "the userinfo response";
    let claims = user.claims();
    let email = optional_string(claims, "email", StatusCode::OK, what)?;
    let verified = optional_bool(claims, "email_verified", StatusCode::OK, what)?;
    Ok(IdEmail {
        id: user.sub().to_owned(),
        email: email.filter(|_| verified == Some(true)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_keeps_each_path_and_query() {
        let options = Options {
            base_url: Some("http://127.0.0.1:9000/mock/".to_owned()),
            ..Options::new(ClientAuth::none("app"))
        };
        assert_eq!(
            options
                .url("https://graph.facebook.com/v21.0/me?fields=id,email")
                .unwrap(),
            "http://127.0.0.1:9000/mock/v21.0/me?fields=id,email"
        );
        assert_eq!(
            Options::new(ClientAuth::none("app"))
                .url("https://api.github.com/user")
                .unwrap(),
            "https://api.github.com/user"
        );
        let bad = Options {
            base_url: Some("not a url".to_owned()),
            ..Options::new(ClientAuth::none("app"))
        };
        assert!(matches!(
            bad.url("https://api.github.com/user"),
            Err(Error::Config(_))
        ));
        let insecure = Options {
            base_url: Some("http://mock.internal".to_owned()),
            ..Options::new(ClientAuth::none("app"))
        };
        assert!(matches!(
            insecure.api_url("https://api.github.com/user"),
            Err(Error::InsecureUrl { .. })
        ));
    }

    #[test]
    fn ids_may_be_numbers_or_strings() {
        let fields = serde_json::json!({"a": 12, "b": "x-1", "c": "", "d": true, "e": null});
        let fields = fields.as_object().unwrap();
        let ok = StatusCode::OK;
        assert_eq!(id_field(fields, "a", ok, "the user").unwrap(), "12");
        assert_eq!(id_field(fields, "b", ok, "the user").unwrap(), "x-1");
        for name in ["c", "d", "e", "missing"] {
            let err = id_field(fields, name, ok, "the user").unwrap_err();
            assert!(matches!(&err, Error::MalformedResponse { reason, .. } if reason.contains(name)));
        }
        assert_eq!(optional_string(fields, "c", ok, "x").unwrap(), None);
        assert!(optional_string(fields, "a", ok, "x").is_err());
        assert_eq!(optional_bool(fields, "e", ok, "x").unwrap(), None);
        assert_eq!(optional_bool(fields, "d", ok, "x").unwrap(), Some(true));
        assert!(optional_bool(fields, "a", ok, "x").is_err());
    }
}
