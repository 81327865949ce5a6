//! The resource owner password credentials grant (RFC 6749 §4.3), for the servers that still
//! need it.
//!
//! **Deprecated.** RFC 9700 (OAuth 2.0 Security Best Current Practice) §2.4 says this grant
//! MUST NOT be used, and OAuth 2.1 drops it: the client sees the user's password, which it
//! could keep or leak; the user cannot be asked for a second factor or consent; and the user
//! is taught to type their password into something other than the authorization server.
//! Prefer the device authorization grant ([`DeviceCode`](crate::DeviceCode)) for CLIs and
//! devices, the authorization code grant for apps with a browser, and
//! [`ClientCredentials`](crate::ClientCredentials) for a service acting on its own behalf.
//!
//! It is still what some setups have: a first-party legacy server that offers nothing else,
//! a test or CI account on a server you run, a migration away from passwords. Use it only
//! with a client the resource owner fully trusts (your own), over TLS, and ask for
//! `offline_access` (or what the server calls it) so that you can drop the password after
//! the first token and go on with its refresh token:
//!
//! ```
//! use tower_oauth2::{ClientAuth, HttpClient, Password, RefreshToken, TokenEndpoint, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # use bytes::Bytes;
//! # use http_body_util::{BodyExt, Full};
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     let form = request.into_body().collect().await?.to_bytes();
//! #     let body: &[u8] = if form.starts_with(b"grant_type=password") {
//! #         br#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}"#
//! #     } else {
//! #         br#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600}"#
//! #     };
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(body))))
//! # });
//! let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("legacy-cli"))
//!     .http_client(HttpClient::new(server)) // a stand-in authorization server
//!     .build()?;
//! let first = Password::new(endpoint.clone(), "alice", "her-password")
//!     .scope("openid offline_access")
//!     .fetch()
//!     .await?; // the password is dropped with the source
//! let refresh_token = first.refresh_token().cloned().expect("asked for offline_access");
//! let source = RefreshToken::new(endpoint, refresh_token); // from now on, no password
//! assert_eq!(source.fetch_token().await?.access_token().expose(), "at-2");
//! # Ok(()) }
//! ```

use std::fmt;

use crate::endpoint::token::{param_setters, with_params, Params, TokenEndpoint};
use crate::error::Error;
use crate::secret::Secret;
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// Gets tokens with the resource owner password credentials grant (RFC 6749 §4.3):
/// deprecated by RFC 9700 §2.4; see [the module docs](self) for when it is still acceptable.
///
/// Each fetch sends `grant_type=password`, `username`, `password`, the source's parameters
/// ([`scope`](Self::scope), [`audience`](Self::audience), [`resource`](Self::resource),
/// [`param`](Self::param)) and the client's authentication. The password is a [`Secret`]:
/// wiped from memory when the source is dropped, cut out of any server text that echoes it,
/// never in `Debug`. Behind a [`TokenCache`](crate::TokenCache) or the
/// [`OAuth2Layer`](crate::OAuth2Layer), every new token is a new password grant (the source
/// keeps the password for that); to keep it no longer than the first token, redeem that
/// token's refresh token with [`RefreshToken`](crate::RefreshToken) instead (see
/// [the module docs](self)).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower_oauth2::{ClientAuth, HttpClient, Password, TokenEndpoint};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// // A stand-in for the authorization server: it keeps the form it got and issues a token.
/// let form = Arc::new(Mutex::new(String::new()));
/// let seen = form.clone();
/// let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
///     let seen = seen.clone();
///     async move {
///         let body = request.into_body().collect().await?.to_bytes();
///         *seen.lock().unwrap() = String::from_utf8_lossy(&body).into_owned();
///         Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
///             br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
///         ))))
///     }
/// });
/// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("legacy-cli"))
///     .http_client(HttpClient::new(server))
///     .build()?;
///
/// let source = Password::new(endpoint, "alice", "p@ss word").scope("read");
/// assert!(!format!("{source:?}").contains("p@ss"));
/// let token = source.fetch().await?;
/// assert_eq!(token.access_token().expose(), "abc");
/// assert_eq!(
///     *form.lock().unwrap(),
///     "grant_type=password&username=alice&password=p%40ss+word&scope=read&client_id=legacy-cli"
/// );
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Password {
    endpoint: TokenEndpoint,
    username: String,
    password: Secret,
    params: Params,
}

impl Password {
    /// A source that logs in as `username` with `password` at `endpoint`, with no scope or
    /// other parameters yet.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Password, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("legacy-cli"))?;
    /// let password = std::env::var("CI_PASSWORD").unwrap_or_default(); // never in source code
    /// let source = Password::new(endpoint, "ci-bot", password);
    /// assert_eq!(source.username(), "ci-bot");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(endpoint: TokenEndpoint, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Password {
            endpoint,
            username: username.into(),
            password: password.into(),
            params: Params::new(),
        }
    }

    /// The resource owner's username.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Password, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("cli"))?;
    /// assert_eq!(Password::new(endpoint, "alice", "pw").username(), "alice");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Requests a new token with the username and password.
    ///
    /// This is what [`TokenSource::fetch_token`] does. A wrong username or password is
    /// [`Error::OAuth2`] with the code [`invalid_grant`](crate::ErrorCode::InvalidGrant)
    /// (RFC 6749 §5.2).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, ErrorCode, HttpClient, Password, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = Full::new(Bytes::from_static(br#"{"error":"invalid_grant","error_description":"wrong password"}"#));
    /// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(400).body(body).unwrap())
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in server that refuses the password
    ///     .build()?;
    /// let err = Password::new(endpoint, "alice", "not-her-password").fetch().await.unwrap_err();
    /// assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    /// # Ok(()) }
    /// ```
    pub async fn fetch(&self) -> Result<Token, Error> {
        let grant = [
            ("grant_type", "password"),
            ("username", self.username.as_str()),
            ("password", self.password.expose()),
        ];
        self.endpoint
            .request_token(&with_params(&grant, &self.params))
            .await
    }
}

param_setters!(@impl Password, "Password::new(endpoint, \"alice\", \"her-password\")");

impl TokenSource for Password {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Password")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("params", &self.params)
            .finish()
    }
}
