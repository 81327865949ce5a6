//! The [`TokenSource`] trait: anything that can get a new access token.
//!
//! The crate's sources ([`ClientCredentials`](crate::ClientCredentials),
//! [`RefreshToken`](crate::RefreshToken), [`DeviceCode`](crate::DeviceCode)) implement it, and so
//! can yours, directly or from an async closure with [`source_fn`].
//!
//! ```
//! use std::sync::Arc;
//! use tower_oauth2::{source_fn, Token, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! let source: Arc<dyn TokenSource> = Arc::new(source_fn(|| async {
//!     // read it from a file, a vault, a metadata server...
//!     Ok(Token::bearer("from-somewhere"))
//! }));
//! let token = source.fetch_token().await?;
//! assert_eq!(token.access_token().expose(), "from-somewhere");
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::store::StoreKey;
use crate::token::Token;

/// The future returned by [`TokenSource::fetch_token`].
///
/// ```
/// use tower_oauth2::{Token, TokenFuture, TokenSource};
///
/// struct Fixed(&'static str);
///
/// impl TokenSource for Fixed {
///     fn fetch_token(&self) -> TokenFuture<'_> {
///         Box::pin(async move { Ok(Token::bearer(self.0)) })
///     }
/// }
/// # let _ = Fixed("abc");
/// ```
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Token, Error>> + Send + 'a>>;

/// Gets a new token from somewhere, usually an authorization server.
///
/// A source fetches; it does not cache. Caching, refresh-ahead and single-flight belong to the
/// layer that calls it. The trait is dyn-compatible: `Arc<dyn TokenSource>` is a source too.
///
/// Implement it for a source of your own (or use [`source_fn`]); errors of your own go in
/// [`Error::source_error`](crate::Error::source_error).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tower_oauth2::{Error, Token, TokenFuture, TokenSource};
///
/// /// Reads the token a sidecar keeps fresh in a file.
/// struct FromFile {
///     path: std::path::PathBuf,
///     reads: AtomicU32,
/// }
///
/// impl TokenSource for FromFile {
///     fn fetch_token(&self) -> TokenFuture<'_> {
///         Box::pin(async move {
///             self.reads.fetch_add(1, Ordering::Relaxed);
///             let value = tokio::fs::read_to_string(&self.path).await.map_err(Error::source_error)?;
///             Ok(Token::bearer(value.trim()))
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join(format!("tower-oauth2-doc-{}", std::process::id()));
/// std::fs::write(&path, "abc\n")?;
/// let source = FromFile { path: path.clone(), reads: AtomicU32::new(0) };
/// assert_eq!(source.fetch_token().await?.access_token().expose(), "abc");
/// std::fs::remove_file(&path)?;
/// assert!(matches!(source.fetch_token().await, Err(Error::Source(_))));
/// assert_eq!(source.reads.load(Ordering::Relaxed), 2);
/// # Ok(()) }
/// ```
pub trait TokenSource: Send + Sync {
    /// Gets a new token.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, Token, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let source = source_fn(|| async { Ok(Token::bearer("abc")) });
    /// let token = source.fetch_token().await?;
    /// assert_eq!(token.access_token().expose(), "abc");
    /// # Ok(()) }
    /// ```
    fn fetch_token(&self) -> TokenFuture<'_>;

    /// What identifies this source's tokens in a [`TokenStore`](crate::store::TokenStore):
    /// the token endpoint, the client id, the grant and its scope, audience and resources,
    /// never a secret. Caches whose sources give equal keys share their token through the
    /// store. `None` (the default): the source cannot say, and a cache with a store needs
    /// [`SharedStore::key`](crate::store::SharedStore::key).
    ///
    /// ```
    /// use tower_oauth2::store::StoreKey;
    /// use tower_oauth2::{source_fn, ClientAuth, ClientCredentials, Token, TokenEndpoint, TokenSource};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("svc"))?;
    /// let read = ClientCredentials::new(endpoint.clone()).scope("read");
    /// let write = ClientCredentials::new(endpoint).scope("write");
    /// assert_ne!(read.store_key(), write.store_key());
    /// assert_eq!(source_fn(|| async { Ok(Token::bearer("t")) }).store_key(), None::<StoreKey>);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    fn store_key(&self) -> Option<StoreKey> {
        None
    }

    /// Called when a cache takes `token` from its store (another replica, or an earlier run,
    /// fetched it), before it uses the token or fetches a new one. A source that keeps state
    /// takes the newer state from it: [`RefreshToken`](crate::RefreshToken) and
    /// [`DeviceCode`](crate::DeviceCode) adopt its refresh token, so they never redeem one the
    /// server already rotated away. The default does nothing.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, RefreshToken, Token, TokenEndpoint, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("cli"))?;
    /// let source = RefreshToken::new(endpoint, "rt-1");
    /// source.on_stored_token(&Token::bearer("at").with_refresh_token("rt-2"));
    /// assert_eq!(source.current_refresh_token().await.unwrap().expose(), "rt-2");
    /// # Ok(()) }
    /// ```
    fn on_stored_token(&self, token: &Token) {
        let _ = token;
    }
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn fetch_token(&self) -> TokenFuture<'_> {
        (**self).fetch_token()
    }

    fn store_key(&self) -> Option<StoreKey> {
        (**self).store_key()
    }

    fn on_stored_token(&self, token: &Token) {
        (**self).on_stored_token(token)
    }
}

impl<T: TokenSource + ?Sized> TokenSource for Box<T> {
    fn fetch_token(&self) -> TokenFuture<'_> {
        (**self).fetch_token()
    }

    fn store_key(&self) -> Option<StoreKey> {
        (**self).store_key()
    }

    fn on_stored_token(&self, token: &Token) {
        (**self).on_stored_token(token)
    }
}

impl<T: TokenSource + ?Sized> TokenSource for &T {
    fn fetch_token(&self) -> TokenFuture<'_> {
        (**self).fetch_token()
    }

    fn store_key(&self) -> Option<StoreKey> {
        (**self).store_key()
    }

    fn on_stored_token(&self, token: &Token) {
        (**self).on_stored_token(token)
    }
}

/// A [`TokenSource`] made from an async closure; see [`source_fn`].
///
/// `Debug` shows nothing of the closure.
///
/// ```
/// use tower_oauth2::{source_fn, FnSource, Token, TokenSource};
///
/// let source: FnSource<_> = source_fn(|| async { Ok(Token::bearer("abc")) });
/// assert_eq!(format!("{source:?}"), "FnSource { .. }");
/// let boxed: Box<dyn TokenSource> = Box::new(source);
/// # let _ = boxed;
/// ```
#[derive(Clone)]
pub struct FnSource<F> {
    f: F,
}

/// Makes a [`TokenSource`] from a closure that returns a future of a token.
///
/// ```
/// use tower_oauth2::{source_fn, Error, Token, TokenSource};
///
/// let source = source_fn(|| async {
///     let value = std::env::var("MY_TOKEN").map_err(Error::source_error)?;
///     Ok(Token::bearer(value))
/// });
/// # let _: &dyn TokenSource = &source;
/// ```
pub fn source_fn<F, Fut>(f: F) -> FnSource<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Token, Error>> + Send + 'static,
{
    FnSource { f }
}

impl<F, Fut> TokenSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Token, Error>> + Send + 'static,
{
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin((self.f)())
    }
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnSource").finish_non_exhaustive()
    }
}
