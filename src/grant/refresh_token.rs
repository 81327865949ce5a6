//! The refresh token grant (RFC 6749 §6), with refresh-token rotation.
//!
//! When a response carries a new refresh token, it replaces the old one (rotation, as OAuth 2.1
//! and most servers do it); when it carries none, the old one is kept. A hook you supply sees
//! every new token *before* it is returned, so a rotated refresh token can be persisted.
//! Refreshes of one source never run concurrently, so a refresh token is never redeemed twice.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tower_oauth2::{ClientAuth, HttpClient, RefreshToken, TokenEndpoint, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # use std::sync::atomic::{AtomicUsize, Ordering};
//! # use std::sync::{Arc, Mutex};
//! # use bytes::Bytes;
//! # use http_body_util::{BodyExt, Full};
//! # let requests = Arc::new(AtomicUsize::new(0));
//! # let counter = requests.clone();
//! # let sent = Arc::new(Mutex::new(String::new()));
//! # let seen = sent.clone();
//! # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
//! #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
//! #     async move {
//! #         let form = request.into_body().collect().await?.to_bytes();
//! #         let form = String::from_utf8_lossy(&form).into_owned();
//! #         let (status, body) = if form.contains("refresh_token=revoked") {
//! #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
//! #         } else {
//! #             let rt = n + 1;
//! #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
//! #         };
//! #         *seen.lock().unwrap() = form;
//! #         let response = http::Response::builder().status(status);
//! #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
//! #     }
//! # });
//! let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
//!     .http_client(HttpClient::new(server)) // a stand-in authorization server that rotates tokens
//!     .build()?;
//! let saved = Arc::new(Mutex::new(String::new())); // where the app keeps its refresh token
//! let store = saved.clone();
//! let source = RefreshToken::new(endpoint, "rt-1").on_new_token(move |token| {
//!     let store = store.clone();
//!     async move {
//!         if let Some(refresh_token) = token.refresh_token() {
//!             *store.lock().unwrap() = refresh_token.expose().to_owned(); // a file, a keyring...
//!         }
//!     }
//! });
//! let token = source.fetch_token().await?;
//! assert_eq!(token.access_token().expose(), "at-1");
//! assert_eq!(*saved.lock().unwrap(), "rt-2"); // the rotated one, saved before the token came back
//! # Ok(()) }
//! ```
//!
//! A refresh whose future is dropped after the server rotated the token loses the new refresh
//! token; the [`OAuth2Layer`](crate::OAuth2Layer) runs refreshes as tasks of their own so that
//! this does not happen.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::endpoint::token::{param_setters, with_params, Params, TokenEndpoint};
use crate::error::{Error, ErrorCode};
use crate::secret::Secret;
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// A hook called with each new token before it is returned.
pub(crate) type NewTokenHook = Arc<dyn Fn(Token) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Boxes a user's async hook.
pub(crate) fn new_token_hook<F, Fut>(hook: F) -> NewTokenHook
where
    F: Fn(Token) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |token| Box::pin(hook(token)))
}

/// How many refresh tokens rotated out a source remembers: to redact them from server text,
/// and never to adopt one of them again from a token store.
const REMEMBERED: usize = 8;

/// Redeems `refresh_token`. The returned token carries the refresh token to use next time: the
/// rotated one, or `refresh_token` itself when the server sent none. `previous`, refresh tokens
/// rotated out before this one, are redacted from server text too.
pub(crate) async fn redeem(
    endpoint: &TokenEndpoint,
    params: &Params,
    refresh_token: &Secret,
    previous: &[Secret],
) -> Result<Token, Error> {
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    let also: Vec<&str> = previous.iter().map(Secret::expose).collect();
    let mut token = endpoint
        .request_token_redacting(&with_params(&grant, params), &also)
        .await?;
    token.inherit_refresh_token(Some(refresh_token));
    Ok(token)
}

/// A hook called once when a grant is lost.
type GrantLostHook = Arc<dyn Fn(Error) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Whether a refresh-token grant error means the grant is gone for good (RFC 6749 §5.2): the
/// refresh token is invalid, expired or revoked (`invalid_grant`, also what servers with reuse
/// detection answer when a rotated refresh token comes back), or the client may no longer use
/// it (`invalid_client`, `unauthorized_client`).
fn loses_the_grant(err: &Error) -> bool {
    matches!(
        err.code(),
        Some(ErrorCode::InvalidGrant | ErrorCode::InvalidClient | ErrorCode::UnauthorizedClient)
    )
}

/// Gets tokens by redeeming a refresh token.
///
/// # A lost grant
///
/// When the server refuses the refresh token for good (`invalid_grant`, `invalid_client` or
/// `unauthorized_client`: expired, revoked, or revoked with the whole grant because a rotated
/// refresh token was sent twice), the grant is lost. The source then:
///
/// - returns [`Error::GrantLost`] (with the server's error as its cause) from every fetch,
///   without sending that refresh token again;
/// - calls the [`on_grant_lost`](Self::on_grant_lost) hook once, so the application can start a
///   new login;
/// - works again as soon as [`set_refresh_token`](Self::set_refresh_token) gives it a new
///   refresh token.
///
/// A [`TokenCache`](crate::TokenCache) over this source drops its cached token when the grant
/// is lost (the server revoked it with the grant), and its requests fail at once with the
/// `GrantLost` error until then.
///
/// ```
/// use std::sync::Arc;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Layer, RefreshToken, TokenEndpoint};
///
/// # type Response = Result<http::Response<String>, std::convert::Infallible>;
/// # async fn echo(request: http::Request<String>) -> Response {
/// #     let auth = request.headers().get(http::header::AUTHORIZATION);
/// #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # use std::sync::atomic::{AtomicUsize, Ordering};
/// # use std::sync::{Arc, Mutex};
/// # use bytes::Bytes;
/// # use http_body_util::{BodyExt, Full};
/// # let requests = Arc::new(AtomicUsize::new(0));
/// # let counter = requests.clone();
/// # let sent = Arc::new(Mutex::new(String::new()));
/// # let seen = sent.clone();
/// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
/// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
/// #     async move {
/// #         let form = request.into_body().collect().await?.to_bytes();
/// #         let form = String::from_utf8_lossy(&form).into_owned();
/// #         let (status, body) = if form.contains("refresh_token=revoked") {
/// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
/// #         } else {
/// #             let rt = n + 1;
/// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
/// #         };
/// #         *seen.lock().unwrap() = form;
/// #         let response = http::Response::builder().status(status);
/// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
/// #     }
/// # });
/// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-app"))
///     .http_client(HttpClient::new(server)) // a stand-in server that refuses the refresh token `revoked`
///     .build()?;
/// let source = Arc::new(RefreshToken::new(endpoint, "revoked").on_grant_lost(|err| async move {
///     eprintln!("signed out: {err}");
/// }));
/// let client = ServiceBuilder::new().layer(OAuth2Layer::new(source.clone())).service_fn(echo);
/// let err = client.clone().oneshot(http::Request::new(String::new())).await.unwrap_err();
/// assert!(tower_oauth2::Error::from(err).is_grant_lost());
/// // Later, when the user has logged in again:
/// source.set_refresh_token("rt-from-the-new-login");
/// let response = client.oneshot(http::Request::new(String::new())).await?; // `echo`: the header it got
/// assert_eq!(response.body(), "Bearer at-2");
/// # Ok(()) }
/// ```
pub struct RefreshToken {
    endpoint: TokenEndpoint,
    params: Params,
    /// Held for a whole refresh, hooks included, so that refreshes never overlap and a refresh
    /// token is never redeemed twice at once.
    turn: tokio::sync::Mutex<()>,
    grant: Mutex<Grant>,
    on_new_token: Option<NewTokenHook>,
    on_grant_lost: Option<GrantLostHook>,
}

/// The state of the grant.
struct Grant {
    /// The refresh token to redeem next; `None` once the grant is lost.
    refresh_token: Option<Secret>,
    /// The last refresh tokens it replaced (at most `REMEMBERED`), which the server may still
    /// echo.
    previous: VecDeque<Secret>,
    /// Why the grant was lost.
    lost: Option<Error>,
    /// Counts the refresh tokens set from outside, so that a refresh that was running with an
    /// older one neither overwrites nor loses a newer one.
    epoch: u64,
}

impl RefreshToken {
    /// A source that starts from `refresh_token`.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, HttpClient, RefreshToken, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # let requests = Arc::new(AtomicUsize::new(0));
    /// # let counter = requests.clone();
    /// # let sent = Arc::new(Mutex::new(String::new()));
    /// # let seen = sent.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
    /// #     async move {
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let (status, body) = if form.contains("refresh_token=revoked") {
    /// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
    /// #         } else {
    /// #             let rt = n + 1;
    /// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
    /// #         };
    /// #         *seen.lock().unwrap() = form;
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
    /// #     }
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let source = RefreshToken::new(endpoint, "rt-1");
    /// let token = source.fetch().await?;
    /// assert_eq!(token.access_token().expose(), "at-1");
    /// // What the stand-in server received:
    /// assert_eq!(*sent.lock().unwrap(), "grant_type=refresh_token&refresh_token=rt-1&client_id=cli");
    /// # Ok(()) }
    /// ```
    pub fn new(endpoint: TokenEndpoint, refresh_token: impl Into<Secret>) -> Self {
        RefreshToken {
            endpoint,
            params: Params::new(),
            turn: tokio::sync::Mutex::new(()),
            grant: Mutex::new(Grant {
                refresh_token: Some(refresh_token.into()),
                previous: VecDeque::new(),
                lost: None,
                epoch: 0,
            }),
            on_new_token: None,
            on_grant_lost: None,
        }
    }

    /// A source that starts from the refresh token of an existing token (one restored from
    /// storage, or the result of another grant). Fails if `token` has no refresh token.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, RefreshToken, Token, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("cli"))?;
    /// assert!(RefreshToken::from_token(endpoint.clone(), &Token::bearer("at")).is_err());
    /// let token = Token::bearer("at").with_refresh_token("rt");
    /// let source = RefreshToken::from_token(endpoint, &token)?;
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_token(endpoint: TokenEndpoint, token: &Token) -> Result<Self, Error> {
        let refresh_token = token
            .refresh_token()
            .cloned()
            .ok_or_else(|| Error::Config("the token has no refresh token".to_owned()))?;
        Ok(Self::new(endpoint, refresh_token))
    }

    /// Calls `hook` with every new token, before the token is returned, and waits for it. Use
    /// it to persist rotated refresh tokens.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tower_oauth2::{ClientAuth, HttpClient, RefreshToken, StoredToken, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # let requests = Arc::new(AtomicUsize::new(0));
    /// # let counter = requests.clone();
    /// # let sent = Arc::new(Mutex::new(String::new()));
    /// # let seen = sent.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
    /// #     async move {
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let (status, body) = if form.contains("refresh_token=revoked") {
    /// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
    /// #         } else {
    /// #             let rt = n + 1;
    /// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
    /// #         };
    /// #         *seen.lock().unwrap() = form;
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
    /// #     }
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let saved = Arc::new(Mutex::new(None)); // a file only the user can read, in a real app
    /// let store = saved.clone();
    /// let source = RefreshToken::new(endpoint, "rt-1").on_new_token(move |token| {
    ///     let store = store.clone();
    ///     async move { *store.lock().unwrap() = Some(StoredToken::from_token(&token).to_json()) }
    /// });
    /// source.fetch().await?;
    /// let stored = StoredToken::from_json(saved.lock().unwrap().as_deref().unwrap()).unwrap();
    /// assert_eq!(stored.refresh_token().unwrap().expose(), "rt-2"); // the rotated refresh token
    /// # Ok(()) }
    /// ```
    pub fn on_new_token<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Token) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_new_token = Some(new_token_hook(hook));
        self
    }

    /// Calls `hook` once when the grant is lost (see [the type's docs](Self#a-lost-grant)),
    /// with the [`Error::GrantLost`] that fetches return from then on, and waits for it. Use it
    /// to sign the user out or start a new login, then give the source the new refresh token
    /// with [`set_refresh_token`](Self::set_refresh_token).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use tower_oauth2::{ClientAuth, ErrorCode, HttpClient, RefreshToken, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # let requests = Arc::new(AtomicUsize::new(0));
    /// # let counter = requests.clone();
    /// # let sent = Arc::new(Mutex::new(String::new()));
    /// # let seen = sent.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
    /// #     async move {
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let (status, body) = if form.contains("refresh_token=revoked") {
    /// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
    /// #         } else {
    /// #             let rt = n + 1;
    /// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
    /// #         };
    /// #         *seen.lock().unwrap() = form;
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
    /// #     }
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let signed_out = Arc::new(AtomicBool::new(false));
    /// let flag = signed_out.clone();
    /// let source = RefreshToken::new(endpoint, "revoked").on_grant_lost(move |err| {
    ///     let flag = flag.clone();
    ///     async move { flag.store(err.is_grant_lost(), Ordering::SeqCst) } // sign the user out, say
    /// });
    /// let err = source.fetch().await.unwrap_err();
    /// assert!(err.is_grant_lost() && signed_out.load(Ordering::SeqCst));
    /// assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant)); // the server's answer
    /// # Ok(()) }
    /// ```
    pub fn on_grant_lost<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Error) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_grant_lost = Some(Arc::new(move |err| Box::pin(hook(err))));
        self
    }

    /// Gives the source a new refresh token (after a new login, say): the next fetch redeems
    /// it, whether or not the grant was lost. A refresh already running finishes with the
    /// refresh token it started with, and does not replace this one.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, HttpClient, RefreshToken, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # let requests = Arc::new(AtomicUsize::new(0));
    /// # let counter = requests.clone();
    /// # let sent = Arc::new(Mutex::new(String::new()));
    /// # let seen = sent.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
    /// #     async move {
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let (status, body) = if form.contains("refresh_token=revoked") {
    /// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
    /// #         } else {
    /// #             let rt = n + 1;
    /// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
    /// #         };
    /// #         *seen.lock().unwrap() = form;
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
    /// #     }
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let source = RefreshToken::new(endpoint, "revoked");
    /// assert!(source.fetch().await.unwrap_err().is_grant_lost());
    /// // The user logs in again, which gives a new refresh token:
    /// source.set_refresh_token("rt-new");
    /// assert!(source.grant_lost().is_none());
    /// let token = source.fetch().await?; // `sent`: the stand-in server's last request
    /// assert_eq!(*sent.lock().unwrap(), "grant_type=refresh_token&refresh_token=rt-new&client_id=cli");
    /// assert_eq!(token.access_token().expose(), "at-2");
    /// # Ok(()) }
    /// ```
    pub fn set_refresh_token(&self, refresh_token: impl Into<Secret>) {
        let mut grant = self.lock_grant();
        grant.refresh_token = Some(refresh_token.into());
        grant.previous.clear();
        grant.lost = None;
        grant.epoch = grant.epoch.wrapping_add(1);
    }

    /// The refresh token the next refresh will redeem, `None` once the grant is lost (waits for
    /// a running refresh to end).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, HttpClient, RefreshToken, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # let requests = Arc::new(AtomicUsize::new(0));
    /// # let counter = requests.clone();
    /// # let sent = Arc::new(Mutex::new(String::new()));
    /// # let seen = sent.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
    /// #     async move {
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let (status, body) = if form.contains("refresh_token=revoked") {
    /// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
    /// #         } else {
    /// #             let rt = n + 1;
    /// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
    /// #         };
    /// #         *seen.lock().unwrap() = form;
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
    /// #     }
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let source = RefreshToken::new(endpoint, "rt-1");
    /// source.fetch().await?; // the server rotates the refresh token
    /// assert_eq!(source.current_refresh_token().await.unwrap().expose(), "rt-2");
    /// source.fetch().await?;
    /// assert_eq!(source.current_refresh_token().await.unwrap().expose(), "rt-3");
    /// # Ok(()) }
    /// ```
    pub async fn current_refresh_token(&self) -> Option<Secret> {
        let _turn = self.turn.lock().await;
        self.lock_grant().refresh_token.clone()
    }

    /// Why the grant was lost, if it was: the same [`Error::GrantLost`] fetches return.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use tower_oauth2::{ClientAuth, HttpClient, RefreshToken, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # let requests = Arc::new(AtomicUsize::new(0));
    /// # let counter = requests.clone();
    /// # let sent = Arc::new(Mutex::new(String::new()));
    /// # let seen = sent.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
    /// #     async move {
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let (status, body) = if form.contains("refresh_token=revoked") {
    /// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
    /// #         } else {
    /// #             let rt = n + 1;
    /// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
    /// #         };
    /// #         *seen.lock().unwrap() = form;
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
    /// #     }
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let source = RefreshToken::new(endpoint, "revoked");
    /// assert!(source.grant_lost().is_none());
    /// let _ = source.fetch().await; // the server answers `invalid_grant`
    /// assert!(source.grant_lost().is_some_and(|lost| lost.is_grant_lost()));
    /// assert!(source.current_refresh_token().await.is_none());
    /// source.fetch().await.unwrap_err(); // refused again, without a request
    /// assert_eq!(requests.load(Ordering::SeqCst), 1); // one token request in all
    /// # Ok(()) }
    /// ```
    pub fn grant_lost(&self) -> Option<Error> {
        self.lock_grant().lost.clone()
    }

    /// Redeems the current refresh token for a new token.
    ///
    /// This is what [`TokenSource::fetch_token`] does; put the source behind a
    /// [`TokenCache`](crate::TokenCache) or an [`OAuth2Layer`](crate::OAuth2Layer) rather than
    /// calling it for each request.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, HttpClient, RefreshToken, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # let requests = Arc::new(AtomicUsize::new(0));
    /// # let counter = requests.clone();
    /// # let sent = Arc::new(Mutex::new(String::new()));
    /// # let seen = sent.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let (n, seen) = (counter.fetch_add(1, Ordering::SeqCst) + 1, seen.clone());
    /// #     async move {
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let (status, body) = if form.contains("refresh_token=revoked") {
    /// #             (400, r#"{"error":"invalid_grant"}"#.to_owned())
    /// #         } else {
    /// #             let rt = n + 1;
    /// #             (200, format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{rt}"}}"#))
    /// #         };
    /// #         *seen.lock().unwrap() = form;
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
    /// #     }
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let source = RefreshToken::new(endpoint, "rt-1");
    /// let first = source.fetch().await?;
    /// let second = source.fetch().await?; // redeems the refresh token the first one rotated in
    /// assert_eq!(first.access_token().expose(), "at-1");
    /// assert_eq!(second.access_token().expose(), "at-2");
    /// // `sent`: the stand-in server's last request
    /// assert_eq!(*sent.lock().unwrap(), "grant_type=refresh_token&refresh_token=rt-2&client_id=cli");
    /// # Ok(()) }
    /// ```
    pub async fn fetch(&self) -> Result<Token, Error> {
        let _turn = self.turn.lock().await;
        let (refresh_token, previous, epoch) = {
            let grant = self.lock_grant();
            match (&grant.lost, &grant.refresh_token) {
                (Some(lost), _) => return Err(lost.clone()),
                (None, Some(refresh_token)) => (refresh_token.clone(), grant.previous.clone(), grant.epoch),
                (None, None) => return Err(Error::Config("the source has no refresh token".to_owned())),
            }
        };
        let previous: Vec<Secret> = previous.into();
        match redeem(&self.endpoint, &self.params, &refresh_token, &previous).await {
            Ok(token) => {
                {
                    let mut grant = self.lock_grant();
                    if grant.epoch == epoch && token.refresh_token() != Some(&refresh_token) {
                        remember(&mut grant.previous, refresh_token);
                        grant.refresh_token = token.refresh_token().cloned();
                    }
                }
                if let Some(hook) = &self.on_new_token {
                    hook(token.clone()).await;
                }
                Ok(token)
            }
            Err(err) if loses_the_grant(&err) => {
                let lost = Error::grant_lost(err);
                {
                    let mut grant = self.lock_grant();
                    if grant.epoch != epoch {
                        // A new refresh token came while the old one was refused: the grant
                        // lives on with it.
                        return Err(lost);
                    }
                    if let Some(refused) = grant.refresh_token.take() {
                        remember(&mut grant.previous, refused);
                    }
                    grant.lost = Some(lost.clone());
                }
                tracing::warn!(error = %lost.report(), "the refresh token was refused; the grant is lost");
                if let Some(hook) = &self.on_grant_lost {
                    hook(lost.clone()).await;
                }
                Err(lost)
            }
            Err(err) => Err(err),
        }
    }

    fn lock_grant(&self) -> MutexGuard<'_, Grant> {
        // No code panics while holding it; stay usable anyway.
        self.grant.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds `refresh_token` to the ones a source held, forgetting the oldest past `REMEMBERED`
/// (this source's and `DeviceCode`'s).
pub(crate) fn remember(previous: &mut VecDeque<Secret>, refresh_token: Secret) {
    if previous.len() == REMEMBERED {
        previous.pop_front();
    }
    previous.push_back(refresh_token);
}

param_setters!(RefreshToken);

impl TokenSource for RefreshToken {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }

    /// Adopts the stored token's refresh token when this source never held it: another
    /// replica's rotation, or a new login. One it held before (redeemed, replaced, or refused
    /// with the grant) is older than its own and ignored: a consumed refresh token is never
    /// redeemed again, and a lost grant stays lost.
    ///
    /// A refresh token is one user's grant, so this source derives no store key (two users of
    /// one client must not share a token): give the cache one with
    /// [`SharedStore::key`](crate::store::SharedStore::key), naming the user.
    fn on_stored_token(&self, token: &Token) {
        let Some(stored) = token.refresh_token() else {
            return;
        };
        let mut grant = self.lock_grant();
        if grant.refresh_token.as_ref() == Some(stored) || grant.previous.contains(stored) {
            return;
        }
        tracing::debug!("adopting a newer refresh token from the token store");
        if let Some(replaced) = grant.refresh_token.take() {
            remember(&mut grant.previous, replaced);
        }
        grant.refresh_token = Some(stored.clone());
        grant.lost = None;
        grant.epoch = grant.epoch.wrapping_add(1);
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("endpoint", &self.endpoint)
            .field("params", &self.params)
            .field("refresh_token", &"[redacted]")
            .field("grant_lost", &self.lock_grant().lost.is_some())
            .field("on_new_token", &self.on_new_token.is_some())
            .field("on_grant_lost", &self.on_grant_lost.is_some())
            .finish()
    }
}
