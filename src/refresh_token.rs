//! The refresh token grant (RFC 6749 §6), with refresh-token rotation.
//!
//! When a response carries a new refresh token, it replaces the old one (rotation, as OAuth 2.1
//! and most servers do it); when it carries none, the old one is kept. A hook you supply sees
//! every new token *before* it is returned, so a rotated refresh token can be persisted.
//! Refreshes of one source never run concurrently, so a refresh token is never redeemed twice.
//!
//! ```no_run
//! use tower_oauth2::{ClientAuth, RefreshToken, TokenEndpoint, TokenSource};
//!
//! # async fn save(_: &str) {}
//! # async fn run() -> Result<(), tower_oauth2::Error> {
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
//! let source = RefreshToken::new(endpoint, "the-stored-refresh-token").on_new_token(|token| async move {
//!     if let Some(refresh_token) = token.refresh_token() {
//!         save(refresh_token.expose()).await;
//!     }
//! });
//! let token = source.fetch_token().await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! A refresh whose future is dropped after the server rotated the token loses the new refresh
//! token; the [`OAuth2Layer`](crate::OAuth2Layer) runs refreshes as tasks of their own so that
//! this does not happen.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::endpoint::{param_setters, with_params, Params, TokenEndpoint};
use crate::error::Error;
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

/// Redeems `refresh_token`. The returned token carries the refresh token to use next time: the
/// rotated one, or `refresh_token` itself when the server sent none.
pub(crate) async fn redeem(
    endpoint: &TokenEndpoint,
    params: &Params,
    refresh_token: &Secret,
) -> Result<Token, Error> {
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    let mut token = endpoint.request_token(&with_params(&grant, params)).await?;
    token.inherit_refresh_token(Some(refresh_token));
    Ok(token)
}

/// Gets tokens by redeeming a refresh token.
pub struct RefreshToken {
    endpoint: TokenEndpoint,
    params: Params,
    /// The refresh token to redeem next. Held for the whole refresh, hook included, so that
    /// refreshes never overlap.
    current: tokio::sync::Mutex<Secret>,
    on_new_token: Option<NewTokenHook>,
}

impl RefreshToken {
    /// A source that starts from `refresh_token`.
    pub fn new(endpoint: TokenEndpoint, refresh_token: impl Into<Secret>) -> Self {
        RefreshToken {
            endpoint,
            params: Params::new(),
            current: tokio::sync::Mutex::new(refresh_token.into()),
            on_new_token: None,
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
    pub fn on_new_token<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Token) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_new_token = Some(new_token_hook(hook));
        self
    }

    /// The refresh token the next refresh will redeem (waits for a running refresh to end).
    pub async fn current_refresh_token(&self) -> Secret {
        self.current.lock().await.clone()
    }

    /// Redeems the current refresh token for a new token.
    pub async fn fetch(&self) -> Result<Token, Error> {
        let mut current = self.current.lock().await;
        let token = redeem(&self.endpoint, &self.params, &current).await?;
        if let Some(next) = token.refresh_token() {
            *current = next.clone();
        }
        if let Some(hook) = &self.on_new_token {
            hook(token.clone()).await;
        }
        Ok(token)
    }
}

param_setters!(RefreshToken);

impl TokenSource for RefreshToken {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("endpoint", &self.endpoint)
            .field("params", &self.params)
            .field("refresh_token", &"[redacted]")
            .field("on_new_token", &self.on_new_token.is_some())
            .finish()
    }
}
