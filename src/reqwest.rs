//! [`OAuth2Middleware`]: the same token cache and semantics as [`OAuth2Layer`](crate::OAuth2Layer),
//! for [reqwest-middleware](https://docs.rs/reqwest-middleware) (cargo feature `reqwest`).
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use tower_oauth2::reqwest::OAuth2Middleware;
//! use tower_oauth2::{ClientAuth, ClientCredentials, TokenCache, TokenEndpoint};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let endpoint = TokenEndpoint::new(
//!     "https://auth.example.com/token",
//!     ClientAuth::client_secret_post("my-service", "its-secret"),
//! )?;
//! let cache = TokenCache::new(ClientCredentials::new(endpoint));
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(OAuth2Middleware::new(cache).retry_on_401(true))
//!     .build();
//! let response = client.get("https://api.example.com/orders").send().await?;
//! # let _ = response; Ok(()) }
//! ```

use http::header::AUTHORIZATION;
use http::Extensions;
use reqwest_middleware::{Middleware, Next};

use crate::cache::TokenCache;
use crate::layer::is_invalid_token;

/// A reqwest-middleware [`Middleware`] that authenticates requests with bearer tokens from a
/// [`TokenCache`]. Requests that already carry an `Authorization` header are left alone.
#[derive(Clone, Debug)]
pub struct OAuth2Middleware {
    cache: TokenCache,
    retry_on_401: bool,
}

impl OAuth2Middleware {
    /// A middleware over `cache` (which may be shared with [`OAuth2Layer`](crate::OAuth2Layer)s).
    pub fn new(cache: TokenCache) -> Self {
        OAuth2Middleware {
            cache,
            retry_on_401: false,
        }
    }

    /// When on (default off), a `401` response with a `Bearer` (or `DPoP`) challenge whose
    /// `error` is `invalid_token` (parsed by [`www_authenticate`](crate::www_authenticate):
    /// a mention in an `error_description` or under another scheme does not count)
    /// invalidates the token the request carried (never a newer one),
    /// and the request is sent once more with a new token if its body can be cloned
    /// ([`reqwest::Request::try_clone`]); a streaming body is never sent twice.
    pub fn retry_on_401(mut self, on: bool) -> Self {
        self.retry_on_401 = on;
        self
    }

    /// The cache.
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }
}

#[async_trait::async_trait]
impl Middleware for OAuth2Middleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if request.headers().contains_key(AUTHORIZATION) {
            return next.run(request, extensions).await;
        }
        let (header, generation) = self
            .cache
            .authorization()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let replay = if self.retry_on_401 {
            request.try_clone()
        } else {
            None
        };
        request.headers_mut().insert(AUTHORIZATION, header);
        let response = next.clone().run(request, extensions).await?;
        if !self.retry_on_401 || !is_invalid_token(response.status(), response.headers()) {
            return Ok(response);
        }
        tracing::debug!("401 invalid_token: invalidating the token that was sent");
        self.cache.invalidate_generation(generation);
        let Some(mut replay) = replay else {
            return Ok(response);
        };
        let (header, _) = self
            .cache
            .authorization()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        replay.headers_mut().insert(AUTHORIZATION, header);
        next.run(replay, extensions).await
    }
}
