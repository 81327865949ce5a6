//! [`OAuth2Layer`]: puts `Authorization: Bearer <token>` on every request of a tower client.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{header::AUTHORIZATION, Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_oauth2::{source_fn, OAuth2Layer, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let oauth2 = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("abc")) }));
//! let client = ServiceBuilder::new().layer(oauth2).service_fn(|request: Request<String>| async move {
//!     // Stands in for the resource server: answers with the header it got.
//!     Ok::<_, Infallible>(Response::new(request.headers()[AUTHORIZATION].clone()))
//! });
//! let response = client.oneshot(Request::new(String::new())).await?;
//! assert_eq!(response.body(), "Bearer abc");
//! # Ok(()) }
//! ```
//!
//! Over hyper's client, with a timeout for each call of the resource server:
//!
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenEndpoint};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let endpoint = TokenEndpoint::new(
//!     "https://auth.example.com/token",
//!     ClientAuth::client_secret_basic("my-service", "its-secret"),
//! )?;
//! let oauth2 = OAuth2Layer::new(ClientCredentials::new(endpoint).scope("orders:read"));
//! oauth2.cache().prefetch().await?; // fail fast on bad credentials
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let mut client = ServiceBuilder::new()
//!     .timeout(Duration::from_secs(10))
//!     .layer(oauth2)
//!     .service(client);
//! let request = http::Request::get("http://orders.example.com/orders").body(Empty::new())?;
//! let response = client.ready().await?.call(request).await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! The hot path, for a request on a fresh token, is [`OAuth2::call`]: a check that the
//! service's copy of the cached entry is current (one relaxed atomic load), two coarse clock
//! reads (monotonic and wall: see [`cache`](crate::cache)'s "Time"), one clone of a prebuilt
//! header value, one header insert, and a call of the inner service, whose future is returned inside [`ResponseFuture`] without boxing. No lock, no
//! allocation. Everything else (stale, expired, failed) lives in [`TokenCache`].

pub mod resource;
pub mod retry;
pub mod router;
pub mod www_authenticate;

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use self::resource::{Binding, OtherResources, Resource};
use crate::cache::{LocalEntry, Lookup, TokenCache, TokenWait};
use crate::error::{BoxError, Error};
use crate::layer::retry::OAuth2RetryLayer;
use crate::source::TokenSource;

/// A [`Layer`] that authenticates requests with OAuth 2.0 bearer tokens from a
/// [`TokenCache`].
///
/// Requests that already carry an `Authorization` header are passed through untouched.
///
/// ```
/// use std::convert::Infallible;
/// use http::{header::AUTHORIZATION, Request, Response};
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_oauth2::{source_fn, OAuth2Layer, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let oauth2 = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("abc")) }));
/// let client = ServiceBuilder::new().layer(oauth2).service_fn(|request: Request<String>| async move {
///     Ok::<_, Infallible>(Response::new(request.headers()[AUTHORIZATION].clone()))
/// });
/// let response = client.clone().oneshot(Request::new(String::new())).await?;
/// assert_eq!(response.body(), "Bearer abc");
///
/// let own = Request::builder().header(AUTHORIZATION, "Basic dXNlcjpwdw==").body(String::new())?;
/// let response = client.oneshot(own).await?;
/// assert_eq!(response.body(), "Basic dXNlcjpwdw=="); // left alone
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OAuth2Layer {
    cache: TokenCache,
    invalidate_on_401: bool,
    binding: Binding,
}

impl OAuth2Layer {
    /// A layer with a new cache, with default settings, over `source`.
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let client = ServiceBuilder::new()
    ///     .layer(OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })))
    ///     .service_fn(echo); // answers with the `Authorization` header it got
    /// let response = client.oneshot(http::Request::new(String::new())).await?;
    /// assert_eq!(response.body(), "Bearer t");
    /// # Ok(()) }
    /// ```
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self::from_cache(TokenCache::new(source))
    }

    /// A layer over an existing cache (built with [`TokenCache::builder`], or shared with
    /// other layers and the reqwest middleware).
    ///
    /// Two clients over one cache share its token:
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// # let n = AtomicUsize::new(0);
    /// # let source = source_fn(move || {
    /// #     let token = Token::bearer(format!("t{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    /// #     async move { Ok(token) }
    /// # });
    /// // `source` hands out "t1", "t2", ...
    /// let cache = TokenCache::builder(source)
    ///     .refresh_ahead(Duration::from_secs(120))
    ///     .build();
    /// let orders = ServiceBuilder::new().layer(OAuth2Layer::from_cache(cache.clone())).service_fn(echo);
    /// let billing = ServiceBuilder::new().layer(OAuth2Layer::from_cache(cache)).service_fn(echo);
    /// let request = || http::Request::new(String::new());
    /// assert_eq!(orders.oneshot(request()).await?.body(), "Bearer t1");
    /// assert_eq!(billing.oneshot(request()).await?.body(), "Bearer t1"); // one token for both
    /// # Ok(()) }
    /// ```
    pub fn from_cache(cache: TokenCache) -> Self {
        OAuth2Layer {
            cache,
            invalidate_on_401: false,
            binding: Binding::default(),
        }
    }

    /// Binds the token to the resources it is for (RFC 9700 §2.3, §4.10): origins
    /// (`https://api.example.com`) or URL prefixes (`https://api.example.com/v1/`), see
    /// [`Resource`]. Only requests to one of them get the token; any other request goes out
    /// without it, or fails, as [`other_resources`](Self::other_resources) says (default: without
    /// it). Calling it again adds resources. Fails on a URL that is not an absolute `http(s)`
    /// URL without credentials, query or fragment.
    ///
    /// Without a binding the layer puts its token on every request of the wrapped client.
    /// Bind it when the client may reach more than one server: a client shared between
    /// services, or a redirect follower stacked above this layer, which sends each hop through
    /// it again (a hop to another origin then goes without the token).
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// use tower::{Service, ServiceBuilder, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let oauth2 = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) }))
    ///     .for_resources(["https://api.example.com"])?;
    /// let mut client = ServiceBuilder::new().layer(oauth2).service_fn(echo); // echoes `Authorization`
    /// let get = |url: &str| http::Request::get(url).body(String::new()).unwrap();
    /// let ours = client.ready().await?.call(get("https://api.example.com/orders")).await?;
    /// assert_eq!(ours.body(), "Bearer t");
    /// let theirs = client.ready().await?.call(get("https://cdn.example.net/file")).await?;
    /// assert_eq!(theirs.body(), ""); // not for this token: sent without it
    /// # Ok(()) }
    /// ```
    pub fn for_resources<I>(mut self, resources: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.binding = self.binding.with_urls(resources)?;
        Ok(self)
    }

    /// What a layer bound with [`for_resources`](Self::for_resources) does with a request for
    /// none of them: send it without the token (the default), or fail it with
    /// [`Error::NotForThisResource`]. See [`OtherResources`] for why that default.
    ///
    /// ```
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_oauth2::{source_fn, Error, OAuth2Layer, OtherResources, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let oauth2 = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) }))
    ///     .for_resources(["https://api.example.com"])?
    ///     .other_resources(OtherResources::Fail);
    /// let client = ServiceBuilder::new().layer(oauth2).service_fn(|_: http::Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// });
    /// let request = http::Request::get("https://elsewhere.example/").body(String::new())?;
    /// let err = Error::from(client.oneshot(request).await.unwrap_err());
    /// assert!(matches!(err, Error::NotForThisResource { .. }));
    /// # Ok(()) }
    /// ```
    pub fn other_resources(mut self, others: OtherResources) -> Self {
        self.binding.others = others;
        self
    }

    /// The resources the token is bound to; `None` if it is not bound (every request gets it).
    ///
    /// ```
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// let layer = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// assert!(layer.resources().is_none());
    /// let layer = layer.for_resources(["https://api.example.com/v1/"])?;
    /// assert_eq!(layer.resources().unwrap()[0].to_string(), "https://api.example.com/v1");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn resources(&self) -> Option<&[Resource]> {
        self.binding.resources()
    }

    /// When on (default off), a `401` response with a `Bearer` (or `DPoP`) challenge whose
    /// `error` is `invalid_token` (RFC 6750 §3.1; `WWW-Authenticate` parsed as RFC 9110
    /// §11.6.1 says, see [`www_authenticate`]) invalidates the token
    /// that request carried, unless a newer one has replaced it already, so the next request
    /// gets a new token. A mention of `invalid_token` anywhere else in the header (an
    /// `error_description`, another scheme's `realm`) is not enough. To also retry such a
    /// request once with a new token, use [`with_retry`](Self::with_retry), which turns this on.
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// use http::{header::WWW_AUTHENTICATE, Request, Response, StatusCode};
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// # let n = AtomicUsize::new(0);
    /// # let source = source_fn(move || {
    /// #     let token = Token::bearer(format!("t{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    /// #     async move { Ok(token) }
    /// # });
    /// // `source` hands out "t1", "t2", ...
    /// let oauth2 = OAuth2Layer::new(source)
    /// .invalidate_on_401(true);
    /// let cache = oauth2.cache().clone();
    /// // A resource server that has revoked every token.
    /// let client = ServiceBuilder::new().layer(oauth2).service_fn(|_: Request<String>| async {
    ///     Response::builder()
    ///         .status(StatusCode::UNAUTHORIZED)
    ///         .header(WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)
    ///         .body(())
    /// });
    /// client.oneshot(Request::new(String::new())).await?;
    /// assert!(cache.token().is_none()); // "t1" is dropped: the next request gets "t2"
    /// # Ok(()) }
    /// ```
    pub fn invalidate_on_401(mut self, on: bool) -> Self {
        self.invalidate_on_401 = on;
        self
    }

    /// This layer with retries of what it can fix, stacked above it in the one order that
    /// works: a request rejected with `401 invalid_token` is sent once more with a new token
    /// (invalidation on a 401 is turned on), and a request that failed with a transient token
    /// error is sent again at the cache's next token attempt, honouring its backoff and the
    /// server's `Retry-After`. See [`OAuth2RetryLayer`] for the settings and [`retry`] for
    /// which request bodies can be retried.
    ///
    /// Do not stack a retry layer of your own *below* this layer for such errors: it would see
    /// requests that already carry the token, and resend a rejected token.
    ///
    /// A resource server that has revoked "t1": the request is sent again with "t2".
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// # let n = AtomicUsize::new(0);
    /// # let source = source_fn(move || {
    /// #     let token = Token::bearer(format!("t{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    /// #     async move { Ok(token) }
    /// # });
    /// // `source` hands out "t1", "t2", ...
    /// let oauth2 = OAuth2Layer::new(source);
    /// let client = ServiceBuilder::new()
    ///     .layer(oauth2.with_retry())
    ///     .service_fn(|request: Request<String>| async move {
    ///         let sent = request.headers()[AUTHORIZATION].clone();
    ///         let mut response = Response::new(sent.clone());
    ///         if sent == "Bearer t1" {
    ///             *response.status_mut() = StatusCode::UNAUTHORIZED;
    ///             let challenge = HeaderValue::from_static(r#"Bearer error="invalid_token""#);
    ///             response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    ///         }
    ///         Ok::<_, Infallible>(response)
    ///     });
    /// let response = client.oneshot(Request::new(String::new())).await?;
    /// assert_eq!(response.body(), "Bearer t2");
    /// # Ok(()) }
    /// ```
    pub fn with_retry(self) -> OAuth2RetryLayer {
        OAuth2RetryLayer::new(self)
    }

    /// The cache, to prefetch, read, refresh or invalidate the token.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let oauth2 = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// oauth2.cache().prefetch().await?; // fail fast at start-up on bad credentials
    /// assert_eq!(oauth2.cache().token().unwrap().access_token().expose(), "t");
    /// # Ok(()) }
    /// ```
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }
}

impl<S> Layer<S> for OAuth2Layer {
    type Service = OAuth2<S>;

    fn layer(&self, inner: S) -> OAuth2<S> {
        OAuth2 {
            inner,
            local: self.cache.local(),
            cache: self.cache.clone(),
            invalidate_on_401: self.invalidate_on_401,
            binding: self.binding.clone(),
        }
    }
}

/// The service made by [`OAuth2Layer`]. Cheap to clone if `S` is; clones share one cache.
///
/// Its error type is [`BoxError`]: a token error is a [`crate::Error`] inside, which
/// `tower_oauth2::Error::from` (or `?`) gets back.
///
/// ```
/// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
/// #     let auth = request.headers().get(http::header::AUTHORIZATION);
/// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
/// # }
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_oauth2::{source_fn, Error, OAuth2, OAuth2Layer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = source_fn(|| async { Err(Error::source_error("no credentials")) });
/// let service: OAuth2<_> = OAuth2Layer::new(source).layer(service_fn(echo));
/// let err = service.oneshot(http::Request::new(String::new())).await.unwrap_err();
/// assert!(matches!(Error::from(err), Error::Source(_))); // the inner service was not called
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct OAuth2<S> {
    inner: S,
    /// This service's view of the cached token (see `LocalEntry`).
    local: LocalEntry,
    cache: TokenCache,
    invalidate_on_401: bool,
    binding: Binding,
}

impl<S> OAuth2<S> {
    /// The cache this service takes tokens from.
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let service = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).layer(service_fn(echo));
    /// let cache = service.cache().clone();
    /// assert!(cache.token().is_none());
    /// service.oneshot(http::Request::new(String::new())).await?;
    /// assert!(cache.token().is_some()); // fetched for the request, kept for the next
    /// # Ok(()) }
    /// ```
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The inner service, for instance to send a request that needs no token.
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let service = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).layer(service_fn(echo));
    /// let health = http::Request::get("/healthz").body(String::new())?;
    /// let response = service.get_ref().clone().oneshot(health).await?;
    /// assert_eq!(response.body(), ""); // sent without a token
    /// assert!(service.cache().token().is_none()); // and none was fetched
    /// # Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OAuth2<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The caller chose its own credentials: leave them alone.
        if request.headers().contains_key(AUTHORIZATION) {
            return ResponseFuture::called(self.inner.call(request), None);
        }
        // A token bound to resources goes only to them (one pointer check when unbound).
        if !self.binding.allows(request.uri()) {
            return other_resource(&mut self.inner, self.binding.others, request);
        }
        let lookup = self.cache.lookup_in(self.local.load().as_ref());
        authorize(
            &mut self.inner,
            &self.cache,
            lookup,
            request,
            self.invalidate_on_401,
        )
    }
}

/// Sends `request` with the token `lookup` found in `cache`, or waits for one. Shared by
/// [`OAuth2`] and the router, once each has picked its cache.
#[inline]
pub(crate) fn authorize<S, ReqBody>(
    inner: &mut S,
    cache: &TokenCache,
    lookup: Lookup,
    mut request: Request<ReqBody>,
    invalidate_on_401: bool,
) -> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>> + Clone,
{
    match lookup {
        // Hot path: a valid token. Insert its prebuilt header and call through.
        Lookup::Ready(header, generation) => {
            request.headers_mut().insert(AUTHORIZATION, header);
            let sent = if invalidate_on_401 {
                Some((cache.clone(), generation))
            } else {
                None
            };
            ResponseFuture::called(inner.call(request), sent)
        }
        Lookup::Wait(wait) => wait_for_token(inner, cache, request, wait, invalidate_on_401),
    }
}

/// A request for none of the resources the token is for: sent without it, or failed.
#[cold]
#[inline(never)]
pub(crate) fn other_resource<S, ReqBody>(
    inner: &mut S,
    others: OtherResources,
    request: Request<ReqBody>,
) -> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    match others {
        OtherResources::Fail => ResponseFuture {
            state: State::Failed {
                error: Some(resource::refuse(resource::origin_of(request.uri()))),
            },
        },
        _ => ResponseFuture::called(inner.call(request), None),
    }
}

/// No valid token: the request waits for the shared refresh. The inner service was readied by
/// `poll_ready`, so it goes with the request into the future and a clone stays.
#[cold]
#[inline(never)]
fn wait_for_token<S, ReqBody>(
    inner: &mut S,
    cache: &TokenCache,
    request: Request<ReqBody>,
    wait: TokenWait,
    invalidate_on_401: bool,
) -> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>> + Clone,
{
    let clone = inner.clone();
    let ready = std::mem::replace(inner, clone);
    ResponseFuture {
        state: State::Waiting {
            // Boxed (waiting allocates anyway) to keep the future small.
            waiting: Box::new(Waiting {
                wait,
                inner: Some((ready, request)),
                cache: invalidate_on_401.then(|| cache.clone()),
            }),
        },
    }
}

pin_project! {
    /// The response future of [`OAuth2`]: the inner service's future, unboxed, when a valid
    /// token was there; otherwise a wait for the shared refresh first.
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// use tower::{service_fn, Layer, Service, ServiceExt};
    /// use tower_oauth2::{source_fn, OAuth2Layer, ResponseFuture, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let mut service = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).layer(service_fn(echo));
    /// let future: ResponseFuture<_, String> = service.ready().await?.call(http::Request::new(String::new()));
    /// assert_eq!(future.await?.body(), "Bearer t");
    /// # Ok(()) }
    /// ```
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        // The inner service was called; `sent` is the cache and the token generation to
        // invalidate on a 401 when that option is on.
        Called {
            #[pin]
            future: S::Future,
            sent: Option<(TokenCache, u64)>,
        },
        // Waiting for a token.
        Waiting {
            waiting: Box<Waiting<S, ReqBody>>,
        },
        // Refused before it was sent.
        Failed {
            error: Option<Error>,
        },
    }
}

/// A request waiting for a token, with the readied inner service.
struct Waiting<S, ReqBody> {
    wait: TokenWait,
    inner: Option<(S, Request<ReqBody>)>,
    cache: Option<TokenCache>,
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    #[inline]
    pub(crate) fn called(future: S::Future, sent: Option<(TokenCache, u64)>) -> Self {
        ResponseFuture {
            state: State::Called { future, sent },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                // The usual case: no 401 handling, pass the inner poll through untouched.
                StateProj::Called { future, sent } if sent.is_none() => {
                    return future.poll(cx).map_err(Into::into);
                }
                StateProj::Called { future, sent } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    if let Some((cache, generation)) = sent.take() {
                        if is_invalid_token(response.status(), response.headers()) {
                            tracing::debug!("401 invalid_token: invalidating the token that was sent");
                            cache.invalidate_generation(generation);
                        }
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Failed { error } => {
                    let error = error.take().unwrap_or_else(|| {
                        Error::Config("ResponseFuture polled after completion".to_owned())
                    });
                    return Poll::Ready(Err(error.into()));
                }
                StateProj::Waiting { waiting } => {
                    // On error the inner service is never called.
                    let entry = ready!(Pin::new(&mut waiting.wait).poll(cx)).map_err(BoxError::from)?;
                    let Some((mut service, mut request)) = waiting.inner.take() else {
                        return Poll::Ready(Err("ResponseFuture polled after completion".into()));
                    };
                    request.headers_mut().insert(AUTHORIZATION, entry.header.clone());
                    let sent = waiting.cache.take().map(|cache| (cache, entry.generation));
                    let future = service.call(request);
                    this.state.set(State::Called { future, sent });
                }
            }
        }
    }
}

/// Whether a response is a 401 that says the token it answers is dead (RFC 6750 §3.1): one of
/// its `WWW-Authenticate` challenges is `Bearer` (or `DPoP`, RFC 9449 §7.1, which uses the same
/// error codes) with the parameter `error` equal to `invalid_token`, quoted or not. Any other
/// mention of `invalid_token` (in an `error_description`, a `realm`, under another scheme) does
/// not count; see [`www_authenticate`].
pub(crate) fn is_invalid_token(status: http::StatusCode, headers: &http::HeaderMap) -> bool {
    status == http::StatusCode::UNAUTHORIZED
        && www_authenticate::parse_headers(headers).iter().any(|challenge| {
            (challenge.is_scheme("Bearer") || challenge.is_scheme("DPoP"))
                && challenge.param("error") == Some("invalid_token")
        })
}
