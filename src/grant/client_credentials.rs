//! The client credentials grant (RFC 6749 §4.4).
//!
//! ```no_run
//! use tower_oauth2::{ClientAuth, ClientCredentials, TokenEndpoint, TokenSource};
//!
//! # async fn run() -> Result<(), tower_oauth2::Error> {
//! let endpoint = TokenEndpoint::new(
//!     "https://auth.example.com/oauth2/token",
//!     ClientAuth::client_secret_basic("my-service", "its-secret"),
//! )?;
//! let source = ClientCredentials::new(endpoint)
//!     .scope("orders:read")
//!     .audience("https://orders.example.com")
//!     .resource("https://orders.example.com/");
//! let token = source.fetch_token().await?;
//! # let _ = token; Ok(()) }
//! ```

use crate::endpoint::token::{param_setters, with_params, Params, TokenEndpoint};
use crate::error::Error;
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// Gets tokens with the client credentials grant: the client acting on its own behalf.
///
/// Each fetch sends `grant_type=client_credentials`, the source's parameters
/// ([`scope`](Self::scope), [`audience`](Self::audience), [`resource`](Self::resource),
/// [`param`](Self::param)) and the client's authentication.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
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
/// let endpoint = TokenEndpoint::builder(
///     "https://auth.example.com/token",
///     ClientAuth::client_secret_post("my-service", "its-secret"),
/// )
/// .http_client(HttpClient::new(server))
/// .build()?;
///
/// let source = ClientCredentials::new(endpoint).scope("orders:read");
/// let token = source.fetch().await?;
/// assert_eq!(token.access_token().expose(), "abc");
/// assert_eq!(
///     *form.lock().unwrap(),
///     "grant_type=client_credentials&scope=orders%3Aread&client_id=my-service&client_secret=its-secret"
/// );
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    endpoint: TokenEndpoint,
    params: Params,
}

impl ClientCredentials {
    /// A source for `endpoint`, with no scope or other parameters yet.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, ClientCredentials, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new(
    ///     "https://auth.example.com/token",
    ///     ClientAuth::client_secret_basic("my-service", "its-secret"),
    /// )?;
    /// let source = ClientCredentials::new(endpoint);
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(endpoint: TokenEndpoint) -> Self {
        ClientCredentials {
            endpoint,
            params: Params::new(),
        }
    }

    /// Requests a new token.
    ///
    /// This is what [`TokenSource::fetch_token`] does; put the source behind a
    /// [`TokenCache`](crate::TokenCache) or an [`OAuth2Layer`](crate::OAuth2Layer) rather than
    /// calling it for each request.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
    /// #     ))))
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("app"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let token = ClientCredentials::new(endpoint).fetch().await?;
    /// assert_eq!(token.access_token().expose(), "abc");
    /// assert!(token.lifetime().is_some());
    /// # Ok(()) }
    /// ```
    pub async fn fetch(&self) -> Result<Token, Error> {
        let form = with_params(&[("grant_type", "client_credentials")], &self.params);
        self.endpoint.request_token(&form).await
    }
}

param_setters!(ClientCredentials);

impl TokenSource for ClientCredentials {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }

    fn store_key(&self) -> Option<crate::store::StoreKey> {
        self.endpoint.store_key("client_credentials", &self.params, &[])
    }
}
