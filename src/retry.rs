//! Retrying a request once when the resource server rejects its token (RFC 6750 §3.1:
//! `401` with `WWW-Authenticate: Bearer error="invalid_token"`, or a `DPoP` challenge with that
//! error; the header is parsed by [`www_authenticate`](crate::www_authenticate), so a mere
//! mention of `invalid_token` elsewhere in it does not count).
//!
//! [`OAuth2Layer::invalidate_on_401`](crate::OAuth2Layer::invalidate_on_401) drops the token that
//! was rejected; [`RetryOnInvalidToken`], a [`tower::retry::Policy`] for tower's `RetryLayer`
//! stacked above the OAuth2 layer, sends the request once more, which then waits for a new
//! token. Only requests whose body can be replayed ([`ReplayBody`]) are retried: a streaming
//! body is sent once.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::retry::RetryLayer;
//! use tower::ServiceBuilder;
//! use tower_oauth2::{source_fn, OAuth2Layer, RetryOnInvalidToken, Token};
//!
//! let oauth2 = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) })).invalidate_on_401(true);
//! let service = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryOnInvalidToken::once()))
//!     .layer(oauth2)
//!     .service_fn(|_req: http::Request<Full<Bytes>>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(()))
//!     });
//! # let _ = service;
//! ```

use std::future::{ready, Ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{combinators, Either, Empty, Full};

use crate::layer::is_invalid_token;

/// A request body that may be sent again: [`Full`], [`Empty`] and `String` can; boxed and
/// streaming bodies cannot. Implement it for a body type of your own to make it retryable.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower_oauth2::ReplayBody;
///
/// assert!(Full::new(Bytes::from_static(b"{}")).try_replay().is_some());
/// ```
pub trait ReplayBody: Sized {
    /// A copy of the body, unsent, or `None` if it cannot be sent again.
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

impl<D, E> ReplayBody for combinators::BoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for combinators::UnsyncBoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<S> ReplayBody for http_body_util::StreamBody<S> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// A [`tower::retry::Policy`] that retries a request rejected with `401 invalid_token`, at
/// most a given number of times (usually [once](Self::once)), if its body can be replayed.
#[derive(Clone, Debug)]
pub struct RetryOnInvalidToken {
    remaining: usize,
}

impl RetryOnInvalidToken {
    /// Retries once.
    pub fn once() -> Self {
        RetryOnInvalidToken { remaining: 1 }
    }
}

impl<B, ResBody, E> tower::retry::Policy<Request<B>, Response<ResBody>, E> for RetryOnInvalidToken
where
    B: ReplayBody,
{
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<B>,
        result: &mut Result<Response<ResBody>, E>,
    ) -> Option<Self::Future> {
        match result {
            Ok(response) if self.remaining > 0 && is_invalid_token(response.status(), response.headers()) => {
                self.remaining -= 1;
                tracing::debug!("retrying a request rejected with 401 invalid_token");
                Some(ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        if self.remaining == 0 {
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
