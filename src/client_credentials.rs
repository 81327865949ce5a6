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

use crate::endpoint::{param_setters, with_params, Params, TokenEndpoint};
use crate::error::Error;
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// Gets tokens with the client credentials grant: the client acting on its own behalf.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    endpoint: TokenEndpoint,
    params: Params,
}

impl ClientCredentials {
    /// A source for `endpoint`, with no scope or other parameters yet.
    pub fn new(endpoint: TokenEndpoint) -> Self {
        ClientCredentials {
            endpoint,
            params: Params::new(),
        }
    }

    /// Requests a new token.
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
}
