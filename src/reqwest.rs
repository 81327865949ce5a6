//! [`OAuth2Middleware`]: the same token cache and semantics as [`OAuth2Layer`](crate::OAuth2Layer),
//! for [reqwest-middleware](https://docs.rs/reqwest-middleware) (cargo feature `reqwest`).
//!
//! ```
//! # struct Echo;
//! # #[async_trait::async_trait]
//! # impl reqwest_middleware::Middleware for Echo {
//! #     async fn handle(
//! #         &self,
//! #         request: reqwest::Request,
//! #         _: &mut http::Extensions,
//! #         _: reqwest_middleware::Next<'_>,
//! #     ) -> reqwest_middleware::Result<reqwest::Response> {
//! #         let auth = request.headers().get(http::header::AUTHORIZATION);
//! #         Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()).into())
//! #     }
//! # }
//! use reqwest_middleware::ClientBuilder;
//! use tower_oauth2::reqwest::OAuth2Middleware;
//! use tower_oauth2::{source_fn, Token, TokenCache};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("abc")) }));
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(OAuth2Middleware::new(cache))
//!     .with(Echo) // stands in for the resource server: answers with the `Authorization` it got
//!     .build();
//! let response = client.get("https://api.example.com/orders").send().await?;
//! assert_eq!(response.text().await?, "Bearer abc");
//! # Ok(()) }
//! ```
//!
//! Over the network, with client credentials:
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
//!
//! # Errors and retries
//!
//! A token error reaches the caller as [`reqwest_middleware::Error::Middleware`];
//! [`token_error`] finds the typed [`Error`] in it (also through reqwest-retry's wrapping).
//! reqwest-retry's `RetryTransientMiddleware` treats every middleware error as fatal; with the
//! cargo feature `reqwest-retry`, [`RetryTokenErrors`] is a `RetryableStrategy` that retries
//! transient token errors (and classifies everything else as reqwest-retry does). Stack the
//! retry middleware first (outside) and the OAuth2 middleware after it, so that every attempt
//! gets the current token: a retried request waits for the cache's next token attempt within
//! the cache's [`wait_for_retry`](crate::TokenCacheBuilder::wait_for_retry) patience.
//!
//! ```no_run
//! # #[cfg(feature = "reqwest-retry")]
//! # async fn run(cache: tower_oauth2::TokenCache) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use reqwest_middleware::ClientBuilder;
//! use reqwest_retry::policies::ExponentialBackoff;
//! use reqwest_retry::RetryTransientMiddleware;
//! use tower_oauth2::reqwest::{token_error, OAuth2Middleware, RetryTokenErrors};
//!
//! let retry = RetryTransientMiddleware::new_with_policy_and_strategy(
//!     ExponentialBackoff::builder().build_with_max_retries(3),
//!     RetryTokenErrors::default(),
//! );
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(retry) // outside: each attempt goes through the OAuth2 middleware
//!     .with(OAuth2Middleware::new(cache).retry_on_401(true))
//!     .build();
//! match client.get("https://api.example.com/orders").send().await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(err) => match token_error(&err) {
//!         Some(token_err) if token_err.is_grant_lost() => eprintln!("log in again"),
//!         Some(token_err) => eprintln!("no token: {token_err}"),
//!         None => eprintln!("request failed: {err}"),
//!     },
//! }
//! # Ok(()) }
//! ```

use http::header::AUTHORIZATION;
use http::Extensions;
use reqwest_middleware::{Middleware, Next};

use crate::cache::TokenCache;
use crate::error::Error;
use crate::layer::is_invalid_token;
use crate::layer::resource::{origin_of_url, refuse, Binding, OtherResources};

/// The token error inside an error of a reqwest-middleware client, if it is one: the
/// [`Error`] [`OAuth2Middleware`] failed with, found through the wrapping of reqwest-middleware
/// and reqwest-retry. `None` for any other error (the resource server could not be reached,
/// say).
///
/// ```
/// use tower_oauth2::reqwest::token_error;
/// use tower_oauth2::Error;
///
/// let err = reqwest_middleware::Error::middleware(Error::DeviceCodeExpired);
/// assert!(matches!(token_error(&err), Some(Error::DeviceCodeExpired)));
/// ```
pub fn token_error(err: &reqwest_middleware::Error) -> Option<&Error> {
    let reqwest_middleware::Error::Middleware(err) = err else {
        return None;
    };
    // Each link of the chain: our error, or another middleware error wrapping it (reqwest-retry
    // wraps it in `RetryError`, whose `Display` and `source` skip the levels in between).
    err.chain().find_map(|cause| {
        if let Some(token_error) = cause.downcast_ref::<Error>() {
            return Some(token_error);
        }
        if let Some(inner) = cause.downcast_ref::<reqwest_middleware::Error>() {
            return token_error(inner);
        }
        #[cfg(feature = "reqwest-retry")]
        if let Some(
            reqwest_retry::RetryError::Error(inner)
            | reqwest_retry::RetryError::WithRetries { err: inner, .. },
        ) = cause.downcast_ref::<reqwest_retry::RetryError>()
        {
            return token_error(inner);
        }
        None
    })
}

/// A reqwest-retry [`RetryableStrategy`](reqwest_retry::RetryableStrategy) that retries
/// requests that failed with a transient token error ([`Error::is_transient`]: the
/// authorization server answered 5xx, 429 or `temporarily_unavailable`, or could not be
/// reached), never those with a permanent one (bad credentials, a lost grant), and leaves
/// every other outcome to the strategy it wraps (reqwest-retry's default: 5xx, 408, 429 and
/// connection errors of the resource server). Cargo feature `reqwest-retry`.
///
/// ```
/// use reqwest_retry::{policies::ExponentialBackoff, RetryTransientMiddleware};
/// use tower_oauth2::reqwest::RetryTokenErrors;
///
/// let retry = RetryTransientMiddleware::new_with_policy_and_strategy(
///     ExponentialBackoff::builder().build_with_max_retries(3),
///     RetryTokenErrors::default(),
/// );
/// # let _ = retry;
/// ```
#[cfg(feature = "reqwest-retry")]
#[derive(Clone)]
pub struct RetryTokenErrors<S = reqwest_retry::DefaultRetryableStrategy> {
    others: S,
}

#[cfg(feature = "reqwest-retry")]
impl RetryTokenErrors {
    /// Classifies token errors, and everything else as reqwest-retry's
    /// [`DefaultRetryableStrategy`](reqwest_retry::DefaultRetryableStrategy) does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use reqwest_retry::{Retryable, RetryableStrategy};
    /// use tower_oauth2::{reqwest::RetryTokenErrors, Error};
    ///
    /// let strategy = RetryTokenErrors::new();
    /// let timed_out = reqwest_middleware::Error::middleware(Error::Timeout(Duration::from_secs(30)));
    /// assert!(strategy.handle(&Err(timed_out)) == Some(Retryable::Transient));
    /// let refused = reqwest_middleware::Error::middleware(Error::source_error("invalid_client"));
    /// assert!(strategy.handle(&Err(refused)) == Some(Retryable::Fatal));
    /// ```
    pub fn new() -> Self {
        RetryTokenErrors {
            others: reqwest_retry::DefaultRetryableStrategy,
        }
    }
}

#[cfg(feature = "reqwest-retry")]
impl Default for RetryTokenErrors {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "reqwest-retry")]
impl<S> std::fmt::Debug for RetryTokenErrors<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryTokenErrors").finish_non_exhaustive()
    }
}

#[cfg(feature = "reqwest-retry")]
impl<S> RetryTokenErrors<S> {
    /// Classifies token errors, and everything else with `others`.
    ///
    /// ```
    /// use reqwest_retry::{default_on_request_success, Retryable, RetryableStrategy};
    /// use tower_oauth2::reqwest::RetryTokenErrors;
    ///
    /// /// Also retries 404s, for a resource that appears shortly after it is created.
    /// struct RetryNotFound;
    /// impl RetryableStrategy for RetryNotFound {
    ///     fn handle(&self, result: &Result<reqwest::Response, reqwest_middleware::Error>) -> Option<Retryable> {
    ///         match result {
    ///             Ok(response) if response.status() == 404 => Some(Retryable::Transient),
    ///             Ok(response) => default_on_request_success(response),
    ///             Err(err) => reqwest_retry::default_on_request_failure(err),
    ///         }
    ///     }
    /// }
    /// let strategy = RetryTokenErrors::wrapping(RetryNotFound);
    /// let not_found = http::Response::builder().status(404).body("").unwrap();
    /// assert!(strategy.handle(&Ok(not_found.into())) == Some(Retryable::Transient));
    /// ```
    pub fn wrapping(others: S) -> Self {
        RetryTokenErrors { others }
    }
}

#[cfg(feature = "reqwest-retry")]
impl<S: reqwest_retry::RetryableStrategy> reqwest_retry::RetryableStrategy for RetryTokenErrors<S> {
    fn handle(
        &self,
        result: &Result<reqwest::Response, reqwest_middleware::Error>,
    ) -> Option<reqwest_retry::Retryable> {
        if let Err(err) = result {
            if let Some(token_error) = token_error(err) {
                return Some(if token_error.is_transient() {
                    reqwest_retry::Retryable::Transient
                } else {
                    reqwest_retry::Retryable::Fatal
                });
            }
        }
        self.others.handle(result)
    }
}

/// A reqwest-middleware [`Middleware`] that authenticates requests with bearer tokens from a
/// [`TokenCache`]. Requests that already carry an `Authorization` header are left alone.
///
/// ```
/// # struct Echo;
/// # #[async_trait::async_trait]
/// # impl reqwest_middleware::Middleware for Echo {
/// #     async fn handle(
/// #         &self,
/// #         request: reqwest::Request,
/// #         _: &mut http::Extensions,
/// #         _: reqwest_middleware::Next<'_>,
/// #     ) -> reqwest_middleware::Result<reqwest::Response> {
/// #         let auth = request.headers().get(http::header::AUTHORIZATION);
/// #         Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()).into())
/// #     }
/// # }
/// use http::header::AUTHORIZATION;
/// use reqwest_middleware::ClientBuilder;
/// use tower_oauth2::reqwest::OAuth2Middleware;
/// use tower_oauth2::{source_fn, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("abc")) }));
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(OAuth2Middleware::new(cache))
///     .with(Echo) // answers with the `Authorization` header it got
///     .build();
/// let response = client.get("https://api.example.com/orders").send().await?;
/// assert_eq!(response.text().await?, "Bearer abc");
///
/// let own = client.get("https://api.example.com/orders").header(AUTHORIZATION, "Basic dXNlcjpwdw==");
/// assert_eq!(own.send().await?.text().await?, "Basic dXNlcjpwdw=="); // left alone
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OAuth2Middleware {
    cache: TokenCache,
    retry_on_401: bool,
    binding: Binding,
}

impl OAuth2Middleware {
    /// A middleware over `cache` (which may be shared with [`OAuth2Layer`](crate::OAuth2Layer)s).
    ///
    /// A reqwest client and a tower client over one cache share its token:
    ///
    /// ```
    /// # struct Echo;
    /// # #[async_trait::async_trait]
    /// # impl reqwest_middleware::Middleware for Echo {
    /// #     async fn handle(
    /// #         &self,
    /// #         request: reqwest::Request,
    /// #         _: &mut http::Extensions,
    /// #         _: reqwest_middleware::Next<'_>,
    /// #     ) -> reqwest_middleware::Result<reqwest::Response> {
    /// #         let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #         Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()).into())
    /// #     }
    /// # }
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// use reqwest_middleware::ClientBuilder;
    /// use tower_oauth2::reqwest::OAuth2Middleware;
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// # let n = AtomicUsize::new(0);
    /// # let source = source_fn(move || {
    /// #     let token = Token::bearer(format!("t{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    /// #     async move { Ok(token) }
    /// # });
    /// // `source` hands out "t1", "t2", ...
    /// let cache = TokenCache::new(source);
    /// let tower_layer = OAuth2Layer::from_cache(cache.clone());
    /// tower_layer.cache().prefetch().await?;
    /// let client = ClientBuilder::new(reqwest::Client::new())
    ///     .with(OAuth2Middleware::new(cache))
    ///     .with(Echo) // answers with the `Authorization` header it got
    ///     .build();
    /// let response = client.get("https://api.example.com/").send().await?;
    /// assert_eq!(response.text().await?, "Bearer t1"); // the token the layer fetched
    /// # Ok(()) }
    /// ```
    pub fn new(cache: TokenCache) -> Self {
        OAuth2Middleware {
            cache,
            retry_on_401: false,
            binding: Binding::default(),
        }
    }

    /// When on (default off), a `401` response with a `Bearer` (or `DPoP`) challenge whose
    /// `error` is `invalid_token` (parsed by [`www_authenticate`](crate::layer::www_authenticate):
    /// a mention in an `error_description` or under another scheme does not count)
    /// invalidates the token the request carried (never a newer one),
    /// and the request is sent once more with a new token if its body can be cloned
    /// ([`reqwest::Request::try_clone`]); a streaming body is never sent twice.
    ///
    /// ```
    /// # struct RevokedT1;
    /// # #[async_trait::async_trait]
    /// # impl reqwest_middleware::Middleware for RevokedT1 {
    /// #     async fn handle(
    /// #         &self,
    /// #         request: reqwest::Request,
    /// #         _: &mut http::Extensions,
    /// #         _: reqwest_middleware::Next<'_>,
    /// #     ) -> reqwest_middleware::Result<reqwest::Response> {
    /// #         let sent = request.headers()[http::header::AUTHORIZATION].to_str().unwrap().to_owned();
    /// #         let mut response = http::Response::new(sent.clone());
    /// #         if sent == "Bearer t1" {
    /// #             *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    /// #             let challenge = http::HeaderValue::from_static(r#"Bearer error="invalid_token""#);
    /// #             response.headers_mut().insert(http::header::WWW_AUTHENTICATE, challenge);
    /// #         }
    /// #         Ok(response.into())
    /// #     }
    /// # }
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// use reqwest_middleware::ClientBuilder;
    /// use tower_oauth2::reqwest::OAuth2Middleware;
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// # let n = AtomicUsize::new(0);
    /// # let source = source_fn(move || {
    /// #     let token = Token::bearer(format!("t{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    /// #     async move { Ok(token) }
    /// # });
    /// // `source` hands out "t1", "t2", ...
    /// let cache = TokenCache::new(source);
    /// let client = ClientBuilder::new(reqwest::Client::new())
    ///     .with(OAuth2Middleware::new(cache).retry_on_401(true))
    ///     .with(RevokedT1) // answers 401 invalid_token to "t1", and echoes any other token
    ///     .build();
    /// let response = client.get("https://api.example.com/").send().await?;
    /// assert_eq!(response.text().await?, "Bearer t2"); // rejected, then sent again
    /// # Ok(()) }
    /// ```
    pub fn retry_on_401(mut self, on: bool) -> Self {
        self.retry_on_401 = on;
        self
    }

    /// Binds the token to the resources it is for, as
    /// [`OAuth2Layer::for_resources`](crate::OAuth2Layer::for_resources) does: only requests to
    /// them get the token; others go without it or fail, as
    /// [`other_resources`](Self::other_resources) says. (reqwest itself drops `Authorization`
    /// when it follows a redirect to another origin.)
    ///
    /// ```
    /// use tower_oauth2::reqwest::OAuth2Middleware;
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// let middleware = OAuth2Middleware::new(cache).for_resources(["https://api.example.com"])?;
    /// # let _ = middleware;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn for_resources<I>(mut self, resources: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.binding = self.binding.with_urls(resources)?;
        Ok(self)
    }

    /// What a bound middleware does with a request for none of its resources: send it without
    /// the token (the default) or fail it with [`Error::NotForThisResource`] (see
    /// [`OtherResources`]).
    ///
    /// ```
    /// use tower_oauth2::reqwest::OAuth2Middleware;
    /// use tower_oauth2::{source_fn, OtherResources, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// let middleware = OAuth2Middleware::new(cache)
    ///     .for_resources(["https://api.example.com"])?
    ///     .other_resources(OtherResources::Fail);
    /// # let _ = middleware;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn other_resources(mut self, others: OtherResources) -> Self {
        self.binding.others = others;
        self
    }

    /// The cache, to prefetch, read, refresh or invalidate the token.
    ///
    /// ```
    /// use tower_oauth2::reqwest::OAuth2Middleware;
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let middleware = OAuth2Middleware::new(TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) })));
    /// middleware.cache().prefetch().await?; // fail fast at start-up on bad credentials
    /// assert_eq!(middleware.cache().token().unwrap().access_token().expose(), "t");
    /// # Ok(()) }
    /// ```
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
        if !self.binding.allows_url(request.url()) {
            if self.binding.others == OtherResources::Fail {
                return Err(reqwest_middleware::Error::middleware(refuse(origin_of_url(
                    request.url(),
                ))));
            }
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
