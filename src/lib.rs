#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod cache;
pub mod clock;
mod client_auth;
mod client_credentials;
mod device_code;
mod endpoint;
mod error;
mod http_client;
pub mod layer;
mod refresh_token;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod retry;
mod secret;
mod source;
mod token;

pub use cache::{TokenCache, TokenCacheBuilder};
pub use client_auth::ClientAuth;
pub use client_credentials::ClientCredentials;
pub use device_code::{DeviceAuthorization, DeviceCode};
pub use endpoint::{Params, TokenEndpoint, TokenEndpointBuilder};
pub use error::{BoxError, Error, ErrorCode, ServerError};
pub use http_client::{HttpClient, DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT};
pub use layer::{OAuth2, OAuth2Layer, ResponseFuture};
pub use refresh_token::RefreshToken;
pub use retry::{ReplayBody, RetryOnInvalidToken};
pub use secret::Secret;
pub use source::{source_fn, FnSource, TokenFuture, TokenSource};
pub use token::Token;
