//! Retrying what the token layer can fix: a request rejected because its token is dead (RFC 6750
//! §3.1: `401` with `WWW-Authenticate: Bearer error="invalid_token"`, or a `DPoP` challenge with
//! that error; the header is parsed by [`www_authenticate`](crate::layer::www_authenticate), so a mere
//! mention of `invalid_token` elsewhere in it does not count), and a request that failed because
//! the authorization server was briefly unavailable.
//!
//! ```
//! # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
//! #     let auth = request.headers().get(http::header::AUTHORIZATION);
//! #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
//! # }
//! # use std::sync::atomic::{AtomicUsize, Ordering};
//! # use std::sync::Arc;
//! # use std::time::Duration;
//! use http::Request;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_oauth2::clock::ManualClock;
//! use tower_oauth2::{OAuth2Layer, TokenCache};
//! # use tower_oauth2::{source_fn, Error, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! # let attempts = Arc::new(AtomicUsize::new(0));
//! # let counter = attempts.clone();
//! // A token endpoint that answers 503 once, then gives a token.
//! # let source = source_fn(move || {
//! #     let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
//! #     async move {
//! #         if first {
//! #             return Err(Error::HttpStatus { status: http::StatusCode::SERVICE_UNAVAILABLE, retry_after: None });
//! #         }
//! #         Ok(Token::bearer("t"))
//! #     }
//! # });
//! let cache = TokenCache::builder(source)
//!     .wait_for_retry(Duration::ZERO) // without the retry layer, the request would fail
//!     .clock(ManualClock::new()) // the backoff passes at once
//!     .build();
//! let client = ServiceBuilder::new()
//!     .layer(OAuth2Layer::from_cache(cache).with_retry())
//!     .service_fn(echo); // answers with the `Authorization` header it got
//! let response = client.oneshot(Request::new(String::new())).await?;
//! assert_eq!(response.body(), "Bearer t"); // sent again at the cache's next attempt
//! assert_eq!(attempts.load(Ordering::SeqCst), 2);
//! # Ok(()) }
//! ```
//!
//! [`OAuth2Layer::with_retry`](crate::OAuth2Layer::with_retry) gives an [`OAuth2RetryLayer`]:
//! the OAuth2 layer with tower's [`Retry`] already stacked above it, in the one order that
//! works, and with invalidation on `401 invalid_token` turned on:
//!
//! - a `401 invalid_token` drops the token that request carried and the request is sent once
//!   more ([`invalid_token_retries`](OAuth2RetryLayer::invalid_token_retries)), with a new token;
//! - a request that failed with a transient token error ([`Error::is_transient`]: the
//!   authorization server answered 5xx, 429 or `temporarily_unavailable`, or could not be
//!   reached) waits for the cache's next attempt, which honours the cache's backoff and the
//!   server's `Retry-After`, and is then sent again, which makes that attempt
//!   ([`token_error_retries`](OAuth2RetryLayer::token_error_retries), at most
//!   [`max_wait`](OAuth2RetryLayer::max_wait) per wait). A plain `RetryLayer` would retry at
//!   once, inside the backoff, and get the same stored error back.
//!
//! # Which order
//!
//! Retries that should get a new token must be stacked **above** (outside) the OAuth2 layer,
//! which is what [`OAuth2RetryLayer`] does. A retry layer stacked *below* it sees requests that
//! already carry the token, and resends a request rejected with `401` with the very token that
//! was rejected. Timeouts: a `TimeoutLayer` below the OAuth2 layer bounds each call of the
//! resource server (token waits are bounded by the cache and by
//! [`HttpClient`](crate::HttpClient)'s own timeout); one above the retry layer bounds the whole
//! request with all its attempts.
//!
//! # Bodies
//!
//! Only a request whose body can be sent again is retried: its body type implements
//! [`ReplayBody`] ([`Full`], [`Empty`], `String`, [`Replayable`], and [`Either`] of those). For
//! other bodies (boxed, streaming), [`Replayable::buffer`] reads the body into memory up to a
//! size limit, so that it can be sent again, or [`Replayable::streaming`] passes it through
//! unbuffered, never retried.

use std::future::ready;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Either, Empty, Full};
use tower::retry::Retry;
use tower_layer::Layer;
use tower_service::Service;

use crate::cache::TokenCache;
use crate::clock::Sleep;
use crate::error::{BoxError, Error};
use crate::layer::{is_invalid_token, OAuth2, OAuth2Layer};

/// A request body that may be sent again: [`Full`], [`Empty`], `String` and [`Replayable`]
/// can. Needed to retry a request ([`OAuth2RetryLayer`]); implement it for a body type of your
/// own to make it retryable.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower_oauth2::ReplayBody;
///
/// assert!(Full::new(Bytes::from_static(b"{}")).try_replay().is_some());
/// ```
#[diagnostic::on_unimplemented(
    message = "requests with a body of type `{Self}` cannot be retried: `{Self}` does not implement `ReplayBody`",
    label = "the request body type of the service under the retry layer",
    note = "a retried request is sent again, so its body must be replayable: use `Full<Bytes>`, `Empty<Bytes>` or `String`",
    note = "for boxed or streaming bodies, wrap them in `tower_oauth2::Replayable` (`Replayable::buffer(body, limit)` reads them into memory up to a limit) or implement `ReplayBody`"
)]
pub trait ReplayBody: Sized {
    /// A copy of the body, unsent, or `None` if it cannot be sent again.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower_oauth2::{ReplayBody, Replayable};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // A body type of your own that can be sent again: a JSON document held in memory.
    /// struct Json(Full<Bytes>);
    /// impl ReplayBody for Json {
    ///     fn try_replay(&self) -> Option<Self> {
    ///         Some(Json(self.0.clone()))
    ///     }
    /// }
    /// let body = Json(Full::new(Bytes::from_static(b"{}")));
    /// assert_eq!(body.try_replay().unwrap().0.collect().await.unwrap().to_bytes(), "{}");
    /// // A body sent as it comes cannot.
    /// assert!(Replayable::streaming(Full::new(Bytes::from_static(b"{}"))).try_replay().is_none());
    /// # }
    /// ```
    fn try_replay(&self) -> Option<Self>;
}

impl ReplayBody for Full<Bytes> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl ReplayBody for Empty<Bytes> {
    fn try_replay(&self) -> Option<Self> {
        Some(Empty::new())
    }
}

impl ReplayBody for String {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<L: ReplayBody, R: ReplayBody> ReplayBody for Either<L, R> {
    fn try_replay(&self) -> Option<Self> {
        match self {
            Either::Left(body) => body.try_replay().map(Either::Left),
            Either::Right(body) => body.try_replay().map(Either::Right),
        }
    }
}

/// A body that can be retried when it was small enough to keep in memory: any body `B`, read
/// up to a size limit by [`buffer`](Self::buffer). A body that ends within the limit is kept
/// and can be sent any number of times; a longer one is sent once, as it comes (what was read
/// first, then the rest).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::combinators::BoxBody;
/// use http_body_util::{BodyExt, Full};
/// use tower_oauth2::{ReplayBody, Replayable};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let boxed: BoxBody<Bytes, std::convert::Infallible> = Full::new(Bytes::from_static(b"{}")).boxed();
/// let body = Replayable::buffer(boxed, 64 * 1024).await.unwrap();
/// assert!(body.is_replayable());
/// let copy = body.try_replay().unwrap();
/// assert_eq!(copy.collect().await.unwrap().to_bytes(), "{}");
/// # }
/// ```
pub struct Replayable<B> {
    kind: Kind<B>,
}

enum Kind<B> {
    /// The whole body: sent from `data` and `trailers`, copied from `original` on replay.
    Kept {
        original: Bytes,
        trailers_original: Option<Box<HeaderMap>>,
        data: Option<Bytes>,
        trailers: Option<Box<HeaderMap>>,
    },
    /// Too long to keep, or never buffered: what was read, then the rest. Sent once.
    Passing {
        prefix: Option<Bytes>,
        rest: Pin<Box<B>>,
    },
}

impl<B> Replayable<B>
where
    B: Body,
{
    /// Reads `body` into memory, up to `limit` bytes. A body that ends within the limit can be
    /// sent again; a longer one is passed on as it comes, once. Fails with the body's error if
    /// reading it fails.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower_oauth2::{ReplayBody, Replayable};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let body = Replayable::buffer(Full::new(Bytes::from_static(b"too long")), 4).await.unwrap();
    /// assert!(body.try_replay().is_none()); // over the limit: never retried
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "too long"); // but sent whole, once
    /// # }
    /// ```
    pub async fn buffer(body: B, limit: usize) -> Result<Self, B::Error> {
        let mut rest = Box::pin(body);
        let mut kept = BytesMut::new();
        let mut trailers: Option<Box<HeaderMap>> = None;
        loop {
            let Some(frame) = rest.frame().await else {
                let original = kept.freeze();
                return Ok(Replayable {
                    kind: Kind::Kept {
                        data: (!original.is_empty()).then(|| original.clone()),
                        original,
                        trailers: trailers.clone(),
                        trailers_original: trailers,
                    },
                });
            };
            match frame?.into_data() {
                Ok(data) => {
                    let too_long = kept.len().saturating_add(data.remaining()) > limit;
                    kept.put(data);
                    if too_long {
                        return Ok(Replayable {
                            kind: Kind::Passing {
                                prefix: Some(kept.freeze()),
                                rest,
                            },
                        });
                    }
                }
                Err(frame) => {
                    if let Ok(more) = frame.into_trailers() {
                        trailers.get_or_insert_with(Box::default).extend(more);
                    }
                }
            }
        }
    }

    /// Wraps `body` without reading it: it is sent once and never retried.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_oauth2::Replayable;
    ///
    /// let body = Replayable::streaming(Full::new(Bytes::from_static(b"large")));
    /// assert!(!body.is_replayable());
    /// ```
    pub fn streaming(body: B) -> Self {
        Replayable {
            kind: Kind::Passing {
                prefix: None,
                rest: Box::pin(body),
            },
        }
    }

    /// [`buffer`](Self::buffer)s the body of `request`, keeping its method, URI, version,
    /// headers and extensions.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_oauth2::Replayable;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = http::Request::post("https://api.example.com/orders")
    ///     .body(Full::new(Bytes::from_static(b"{}")))
    ///     .unwrap();
    /// let request = Replayable::buffer_request(request, 1 << 20).await.unwrap();
    /// assert!(request.body().is_replayable());
    /// # }
    /// ```
    pub async fn buffer_request(request: Request<B>, limit: usize) -> Result<Request<Self>, B::Error> {
        let (parts, body) = request.into_parts();
        Ok(Request::from_parts(parts, Self::buffer(body, limit).await?))
    }
}

impl<B> Replayable<B> {
    /// Whether the body was kept whole and can be sent again.
    ///
    /// ```
    /// # use bytes::Bytes; use http_body_util::Full; use tower_oauth2::Replayable;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let small = Replayable::buffer(Full::new(Bytes::from_static(b"12345")), 5).await.unwrap();
    /// let large = Replayable::buffer(Full::new(Bytes::from_static(b"123456")), 5).await.unwrap();
    /// assert!(small.is_replayable() && !large.is_replayable());
    /// # }
    /// ```
    pub fn is_replayable(&self) -> bool {
        matches!(self.kind, Kind::Kept { .. })
    }
}

impl<B> ReplayBody for Replayable<B> {
    fn try_replay(&self) -> Option<Self> {
        match &self.kind {
            Kind::Kept {
                original,
                trailers_original,
                ..
            } => Some(Replayable {
                kind: Kind::Kept {
                    data: (!original.is_empty()).then(|| original.clone()),
                    original: original.clone(),
                    trailers: trailers_original.clone(),
                    trailers_original: trailers_original.clone(),
                },
            }),
            Kind::Passing { .. } => None,
        }
    }
}

impl<B> Body for Replayable<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        // No field is structurally pinned: the inner body is boxed.
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Kept { data, trailers, .. } => {
                if let Some(data) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(trailers.take().map(|trailers| Ok(Frame::trailers(*trailers))))
            }
            Kind::Passing { prefix, rest } => {
                if let Some(prefix) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(prefix))));
                }
                rest.as_mut().poll_frame(cx).map(|frame| {
                    frame.map(|frame| {
                        frame.map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
                    })
                })
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Kept { data, trailers, .. } => data.is_none() && trailers.is_none(),
            Kind::Passing { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Kept { data, .. } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Passing { prefix, rest } => {
                let before = prefix.as_ref().map_or(0, |p| p.len() as u64);
                let hint = rest.size_hint();
                let mut sum = SizeHint::new();
                sum.set_lower(hint.lower().saturating_add(before));
                if let Some(upper) = hint.upper() {
                    sum.set_upper(upper.saturating_add(before));
                }
                sum
            }
        }
    }
}

impl<B> std::fmt::Debug for Replayable<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes: a request body may hold secrets.
        let mut out = f.debug_struct("Replayable");
        match &self.kind {
            Kind::Kept { original, .. } => out.field("kept_bytes", &original.len()),
            Kind::Passing { .. } => out.field("kept_bytes", &None::<usize>),
        };
        out.finish_non_exhaustive()
    }
}

/// Default of [`OAuth2RetryLayer::invalid_token_retries`].
pub const DEFAULT_INVALID_TOKEN_RETRIES: usize = 1;
/// Default of [`OAuth2RetryLayer::token_error_retries`].
pub const DEFAULT_TOKEN_ERROR_RETRIES: usize = 3;
/// Default of [`OAuth2RetryLayer::max_wait`]: the cache's longest default backoff.
pub const DEFAULT_MAX_WAIT: Duration = crate::cache::DEFAULT_MAX_BACKOFF;

/// [`OAuth2Layer`] with retries of what it can fix, stacked in the right order; made by
/// [`OAuth2Layer::with_retry`]. See the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::{source_fn, OAuth2Layer, Token};
///
/// let layer = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) }))
///     .with_retry()
///     .token_error_retries(5)
///     .max_wait(Duration::from_secs(30));
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct OAuth2RetryLayer {
    oauth2: OAuth2Layer,
    policy: OAuth2RetryPolicy,
}

impl OAuth2RetryLayer {
    pub(crate) fn new(oauth2: OAuth2Layer) -> Self {
        let policy = OAuth2RetryPolicy {
            cache: oauth2.cache().clone(),
            invalid_token_retries: DEFAULT_INVALID_TOKEN_RETRIES,
            token_error_retries: DEFAULT_TOKEN_ERROR_RETRIES,
            max_wait: DEFAULT_MAX_WAIT,
        };
        OAuth2RetryLayer {
            oauth2: oauth2.invalidate_on_401(true),
            policy,
        }
    }

    /// How many times a request rejected with `401 invalid_token` is sent again with a new
    /// token (default 1; 0 only invalidates the rejected token).
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// use http::header::{HeaderValue, WWW_AUTHENTICATE};
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
    /// let retry = OAuth2Layer::new(source).with_retry().invalid_token_retries(0);
    /// let cache = retry.cache().clone();
    /// let client = ServiceBuilder::new().layer(retry).service_fn(|_: Request<String>| async {
    ///     let mut rejected = Response::new(());
    ///     *rejected.status_mut() = StatusCode::UNAUTHORIZED;
    ///     let challenge = HeaderValue::from_static(r#"Bearer error="invalid_token""#);
    ///     rejected.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    ///     Ok::<_, Infallible>(rejected)
    /// });
    /// let response = client.oneshot(Request::new(String::new())).await?;
    /// assert_eq!(response.status(), StatusCode::UNAUTHORIZED); // not sent again
    /// assert!(cache.token().is_none()); // but the rejected token is dropped
    /// # Ok(()) }
    /// ```
    pub fn invalid_token_retries(mut self, n: usize) -> Self {
        self.policy.invalid_token_retries = n;
        self
    }

    /// How many times a request that failed with a transient token error is sent again, each
    /// time after waiting for the cache's next token attempt (default 3; 0 turns this off).
    ///
    /// With a token endpoint that answers 503 once (the [module](self)'s example, where the
    /// request succeeds), and no retries:
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::ManualClock;
    /// # use tower_oauth2::{source_fn, Error, Token, TokenCache};
    /// # fn flaky_cache(attempts: Arc<AtomicUsize>) -> TokenCache {
    /// #     TokenCache::builder(source_fn(move || {
    /// #         let attempt = attempts.fetch_add(1, Ordering::SeqCst);
    /// #         async move {
    /// #             if attempt == 0 {
    /// #                 return Err(Error::HttpStatus { status: http::StatusCode::SERVICE_UNAVAILABLE, retry_after: None });
    /// #             }
    /// #             Ok(Token::bearer("t"))
    /// #         }
    /// #     }))
    /// #     .wait_for_retry(Duration::ZERO) // a request alone fails at the first error
    /// #     .clock(ManualClock::new()) // the backoff passes at once
    /// #     .build()
    /// # }
    /// use http::{Request, StatusCode};
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_oauth2::OAuth2Layer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let attempts = Arc::new(AtomicUsize::new(0));
    /// let cache = flaky_cache(attempts.clone());
    /// let client = ServiceBuilder::new()
    ///     .layer(OAuth2Layer::from_cache(cache).with_retry().token_error_retries(0))
    ///     .service_fn(echo);
    /// let err = client.oneshot(Request::new(String::new())).await.unwrap_err();
    /// assert_eq!(Error::from(err).status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    /// assert_eq!(attempts.load(Ordering::SeqCst), 1);
    /// # }
    /// ```
    pub fn token_error_retries(mut self, n: usize) -> Self {
        self.policy.token_error_retries = n;
        self
    }

    /// The longest wait for the cache's next token attempt before a retry (default 60 s, the
    /// cache's longest default backoff). A request whose next attempt is further away fails
    /// with the token error instead of waiting.
    ///
    /// ```
    /// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
    /// #     let auth = request.headers().get(http::header::AUTHORIZATION);
    /// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
    /// # }
    /// use std::time::Duration;
    /// use http::{Request, StatusCode};
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_oauth2::{source_fn, Error, OAuth2Layer, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // A token endpoint that asks for two minutes of quiet.
    /// let cache = TokenCache::builder(source_fn(|| async {
    ///     let retry_after = Some(Duration::from_secs(120));
    ///     Err(Error::HttpStatus { status: StatusCode::SERVICE_UNAVAILABLE, retry_after })
    /// }))
    /// .wait_for_retry(Duration::ZERO)
    /// .build();
    /// let client = ServiceBuilder::new()
    ///     .layer(OAuth2Layer::from_cache(cache).with_retry().max_wait(Duration::from_secs(30)))
    ///     .service_fn(echo);
    /// let err = client.oneshot(Request::new(String::new())).await.unwrap_err(); // at once
    /// assert_eq!(Error::from(err).retry_after(), Some(Duration::from_secs(120)));
    /// # }
    /// ```
    pub fn max_wait(mut self, max: Duration) -> Self {
        self.policy.max_wait = max;
        self
    }

    /// The cache the layer takes tokens from.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, OAuth2Layer, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let retry = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).with_retry();
    /// retry.cache().prefetch().await?; // fail fast at start-up on bad credentials
    /// assert!(retry.cache().token().is_some());
    /// # Ok(()) }
    /// ```
    pub fn cache(&self) -> &TokenCache {
        self.oauth2.cache()
    }
}

impl<S> Layer<S> for OAuth2RetryLayer {
    type Service = OAuth2Retry<S>;

    fn layer(&self, inner: S) -> OAuth2Retry<S> {
        OAuth2Retry {
            inner: Retry::new(self.policy.clone(), self.oauth2.layer(inner)),
        }
    }
}

/// The service made by [`OAuth2RetryLayer`]: tower's [`Retry`] with an [`OAuth2RetryPolicy`]
/// around [`OAuth2`]. Its requests' bodies must implement [`ReplayBody`].
///
/// ```
/// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
/// #     let auth = request.headers().get(http::header::AUTHORIZATION);
/// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
/// # }
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_oauth2::{source_fn, OAuth2Layer, OAuth2Retry, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let layer = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).with_retry();
/// let service: OAuth2Retry<_> = layer.layer(service_fn(echo)); // `echo` takes `Request<String>`
/// let response = service.oneshot(http::Request::new(String::new())).await?;
/// assert_eq!(response.body(), "Bearer t");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OAuth2Retry<S> {
    inner: Retry<OAuth2RetryPolicy, OAuth2<S>>,
}

impl<S> OAuth2Retry<S> {
    /// The [`OAuth2`] service under the retries.
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
    /// let layer = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).with_retry();
    /// let service = layer.layer(service_fn(echo));
    /// let cache = service.get_ref().cache().clone();
    /// service.oneshot(http::Request::new(String::new())).await?;
    /// assert_eq!(cache.token().unwrap().access_token().expose(), "t");
    /// # Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &OAuth2<S> {
        self.inner.get_ref()
    }
}

impl<S, B, ResBody> Service<Request<B>> for OAuth2Retry<S>
where
    // Stated here, not only on the policy, so that a body that cannot be replayed is reported
    // as such (with `ReplayBody`'s explanation) rather than as a missing `Service` impl.
    B: ReplayBody,
    OAuth2<S>: Service<Request<B>, Response = Response<ResBody>, Error = BoxError> + Clone,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.inner.call(request)
    }
}

/// The response future of [`OAuth2Retry`].
///
/// ```
/// # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
/// #     let auth = request.headers().get(http::header::AUTHORIZATION);
/// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
/// # }
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_oauth2::layer::retry::ResponseFuture;
/// use tower_oauth2::{source_fn, OAuth2Layer, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let layer = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).with_retry();
/// let mut service = layer.layer(service_fn(echo));
/// let future: ResponseFuture<_, String> = service.ready().await?.call(http::Request::new(String::new()));
/// assert_eq!(future.await?.body(), "Bearer t");
/// # Ok(()) }
/// ```
pub type ResponseFuture<S, B> =
    tower::retry::future::ResponseFuture<OAuth2RetryPolicy, OAuth2<S>, Request<B>>;

/// The [`tower::retry::Policy`] of [`OAuth2RetryLayer`]. It has no public constructor: it only
/// works above an OAuth2 layer that invalidates rejected tokens, which
/// [`OAuth2Layer::with_retry`] sets up.
///
/// It is a retry policy for every request whose body implements [`ReplayBody`]:
///
/// ```
/// use tower::retry::Policy;
/// use tower_oauth2::{BoxError, OAuth2RetryPolicy, Replayable};
///
/// fn is_policy_for<B, P: Policy<http::Request<B>, http::Response<()>, BoxError>>() {}
/// is_policy_for::<String, OAuth2RetryPolicy>();
/// is_policy_for::<Replayable<http_body_util::Empty<bytes::Bytes>>, OAuth2RetryPolicy>();
/// ```
#[derive(Clone, Debug)]
pub struct OAuth2RetryPolicy {
    cache: TokenCache,
    invalid_token_retries: usize,
    token_error_retries: usize,
    max_wait: Duration,
}

impl<B, ResBody> tower::retry::Policy<Request<B>, Response<ResBody>, BoxError> for OAuth2RetryPolicy
where
    B: ReplayBody,
{
    type Future = Sleep;

    fn retry(
        &mut self,
        _request: &mut Request<B>,
        result: &mut Result<Response<ResBody>, BoxError>,
    ) -> Option<Sleep> {
        match result {
            Ok(response) => {
                if self.invalid_token_retries == 0 || !is_invalid_token(response.status(), response.headers())
                {
                    return None;
                }
                // The OAuth2 layer below has invalidated the rejected token.
                self.invalid_token_retries -= 1;
                tracing::debug!("retrying a request rejected with 401 invalid_token");
                Some(Box::pin(ready(())))
            }
            Err(err) => {
                let error = err.downcast_ref::<Error>()?;
                if self.token_error_retries == 0 || !error.is_transient() {
                    return None;
                }
                let wait = self.cache.time_to_next_attempt();
                if wait > self.max_wait {
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        "not retrying a request after a token error: the next token attempt is too far away"
                    );
                    return None;
                }
                self.token_error_retries -= 1;
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "retrying a request after a transient token error, at the next token attempt"
                );
                Some(self.cache.sleep(wait))
            }
        }
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        if self.invalid_token_retries == 0 && self.token_error_retries == 0 {
            return None;
        }
        let body = request.body().try_replay()?;
        let mut copy = Request::new(body);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}
