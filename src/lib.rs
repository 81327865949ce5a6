//! OAuth 2.0 access tokens for tower HTTP clients: always there, always fresh, never fetched
//! twice.
//!
//! - A [`TokenSource`] gets tokens from an authorization server through a [`TokenEndpoint`]:
//!   [`ClientCredentials`], [`RefreshToken`], [`DeviceCode`], or your own ([`source_fn`]).
//! - A [`TokenCache`] keeps the current token in an `ArcSwap`, refreshes it ahead of expiry
//!   in the background, and makes concurrent requests share one refresh.
//! - [`OAuth2Layer`] puts the cached token on every request of a tower service;
//!   `reqwest::OAuth2Middleware` (feature `reqwest`) does the same for reqwest-middleware.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenEndpoint};
//!
//! # async fn run() -> Result<(), tower::BoxError> {
//! let endpoint = TokenEndpoint::new(
//!     "https://auth.example.com/token",
//!     ClientAuth::client_secret_basic("my-service", "its-secret"),
//! )?;
//! let client = ServiceBuilder::new()
//!     .layer(OAuth2Layer::new(ClientCredentials::new(endpoint).scope("api")))
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
//! let response = client
//!     .oneshot(http::Request::get("https://api.example.com/").body(Empty::new())?)
//!     .await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! Each RFC has its file: RFC 6749 client authentication in `client_auth.rs`, token
//! responses and errors in `token.rs` and `error.rs`, the grants in `client_credentials.rs`,
//! `refresh_token.rs` and `device_code.rs` (RFC 8628), RFC 6750's `invalid_token` retry in
//! `retry.rs`; the layer's hot path is `layer.rs`, the cache `cache.rs`.
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod cache;
mod client_auth;
mod client_credentials;
pub mod clock;
mod device_code;
mod endpoint;
mod error;
mod http_client;
pub mod layer;
mod persist;
mod refresh_token;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod retry;
mod secret;
mod source;
mod terminal;
mod token;
pub mod www_authenticate;

pub use cache::{LostResponseRetry, TokenCache, TokenCacheBuilder};
pub use client_auth::ClientAuth;
pub use client_credentials::ClientCredentials;
pub use device_code::{DeviceAuthorization, DeviceCode};
pub use device_code::{UserCodeError, DEFAULT_USER_CODE_TIMEOUT};
pub use endpoint::{Params, TokenEndpoint, TokenEndpointBuilder};
pub use error::{BoxError, Error, ErrorCode, ServerError};
pub use http_client::{HttpClient, DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT};
pub use layer::{OAuth2, OAuth2Layer, ResponseFuture};
pub use persist::{StoredToken, StoredTokenError};
pub use refresh_token::RefreshToken;
pub use retry::{OAuth2Retry, OAuth2RetryLayer, OAuth2RetryPolicy, ReplayBody, Replayable};
pub use secret::Secret;
pub use source::{source_fn, FnSource, TokenFuture, TokenSource};
pub use terminal::TerminalPrompt;
pub use token::Token;

/// The README's code, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
