//! OAuth 2.0 access tokens for tower HTTP clients: always there, always fresh, never fetched
//! twice.
//!
//! - A [`TokenSource`] gets tokens from an authorization server through a [`TokenEndpoint`]:
//!   [`ClientCredentials`], [`RefreshToken`], [`DeviceCode`], [`TokenExchange`], [`Password`],
//!   `JwtBearer` (feature `jwt`), or your own ([`source_fn`]).
//! - An [`OAuth2Client`] holds one server's endpoints, given by hand or found by discovery
//!   (RFC 8414), makes those sources, and revokes (RFC 7009), introspects (RFC 7662) and reads
//!   userinfo (OpenID Connect).
//! - A [`TokenCache`] keeps the current token in an `ArcSwap`, refreshes it ahead of expiry
//!   in the background, and makes concurrent requests share one refresh.
//! - A [`TokenStore`](store::TokenStore) shares that token with the other replicas of a
//!   service (Redis) or the next run of a CLI (a file): one token request per lifetime for all.
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
//! # Modules
//!
//! The tree follows the architecture: the middleware on top (`layer/`), the shared cache under
//! it, the grants (`grant/`) that feed the cache, the endpoints they call (`endpoint/`), the
//! HTTP transport under those (`transport/`), and the types everything shares at the bottom.
//! Each RFC has its file. The types you use most are re-exported at the crate root
//! (`tower_oauth2::TokenCache` is [`cache::TokenCache`]).
//!
//! | Module | What it holds | Specification |
//! |---|---|---|
//! | [`layer`] | [`OAuth2Layer`]: the tower middleware that puts the token on each request (the hot path) | RFC 6750 §2.1 |
//! | [`layer::retry`] | [`OAuth2Layer::with_retry`]: retries that get a new token after a `401 invalid_token` or wait out a transient token error; [`Replayable`] bodies | RFC 6750 §3.1 |
//! | [`layer::resource`] | [`Resource`]: the origins or URL prefixes a token is for, and what happens to requests for others | RFC 9700 §2.3, §4.10 |
//! | [`layer::router`] | [`OAuth2RouterLayer`]: one layer, several resources, a token (and cache) for each | RFC 8707 |
//! | [`layer::www_authenticate`] | The `WWW-Authenticate` challenge parser the retry relies on | RFC 9110 §11.6.1 |
//! | [`cache`] | [`TokenCache`]: the shared token, refresh-ahead, single-flight, backoff, monotonic time | |
//! | [`source`] | [`TokenSource`], and [`source_fn`] for tokens from anywhere | |
//! | [`grant`] | The grants, one file each: [`OAuth2Client::authorization_request`] / [`OAuth2Client::exchange_code`] (RFC 6749 §4.1, with PKCE, RFC 7636, and RFC 9207), [`ClientCredentials`] (RFC 6749 §4.4), [`RefreshToken`] (§6), [`DeviceCode`] and [`TerminalPrompt`] (RFC 8628), [`TokenExchange`] (RFC 8693), [`Password`] (RFC 6749 §4.3, deprecated) | RFC 6749 §4, RFC 8628, RFC 8693 |
//! | `grant::jwt_bearer`, `grant::service_account` | `JwtBearer`: the JWT bearer grant; `ServiceAccountKey`: Google service-account keys (feature `jwt`) | RFC 7523 §2.1 |
//! | `grant::loopback` | `LoopbackLogin`: a CLI or desktop app's login through the system browser and a listener on 127.0.0.1 (feature `loopback`) | RFC 8252 §7.3 |
//! | [`persist`] | [`StoredToken`]: a token's state saved as JSON, to resume after a restart | |
//! | [`store`] | [`TokenStore`](store::TokenStore): tokens shared by replicas (`RedisStore`, feature `redis`) or kept across a CLI's runs ([`FileStore`](store::FileStore)), with a distributed single flight, fail-open, and encryption at rest (feature `encryption`) | |
//! | [`endpoint`] | The authorization server's endpoints: [`TokenEndpoint`] in [`endpoint::token`], [`Params`] | RFC 6749 §3.2, RFC 8707 |
//! | [`client`] | [`OAuth2Client`]: one client at one server, built by hand or by discovery; every source and endpoint call starts there | |
//! | [`endpoint::par`] | Pushed authorization requests, used by [`AuthorizationRequest::start`] | RFC 9126 |
//! | [`endpoint::discovery`] | [`ServerMetadata`], [`DiscoveryError`]: the server's metadata, checked | RFC 8414, OIDC Discovery |
//! | `id_token` | `OAuth2Client::verify_id_token`, `IdToken`, `IdTokenClaims`, `IdTokenError`: ID tokens checked with the server's key set (`endpoint/jwks.rs`, cached, key rotation) (feature `jwt`) | OIDC Core §2, §3.1.3.7, RFC 7517 |
//! | [`endpoint::revocation`], [`endpoint::introspection`], [`endpoint::userinfo`] | [`OAuth2Client::revoke_token`], [`OAuth2Client::introspect`] ([`Introspection`], [`TokenTypeHint`]), [`OAuth2Client::userinfo`] ([`UserInfo`]) | RFC 7009, RFC 7662, OIDC Core §5.3 |
//! | [`provider`] | [`Provider`](provider::Provider): ready-made providers (GitHub, Google, Microsoft, Discord, Facebook, GitLab, generic OAuth 2.0 and OpenID, ...), each with its quirks and `id_email` | OIDC Core §5.3 |
//! | [`client_auth`] | [`ClientAuth`]: how the client authenticates: secrets (`client_auth/secret.rs`), client certificates (`client_auth/tls.rs`) | RFC 6749 §2.3, RFC 8705 §2 |
//! | `client_auth::jwt` | `JwtSigningKey`, `JwsAlgorithm`: `client_secret_jwt` and `private_key_jwt` assertions (feature `jwt`) | RFC 7523 §2.2, OIDC Core §9 |
//! | [`transport`] | [`HttpClient`]: the transport to the authorization server, its proxies and trust roots | |
//! | [`token`] | [`Token`], and how token responses are read | RFC 6749 §5.1 |
//! | [`error`] | [`Error`], [`ErrorCode`], [`ServerError`]: what went wrong, and whether to retry | RFC 6749 §5.2, RFC 8628 §3.5, RFC 9110 §10.2.3 |
//! | [`clock`] | [`Clock`](clock::Clock): injectable time, [`ManualClock`](clock::ManualClock) for tests | |
//! | [`secret`] | [`Secret`]: a string that is never printed, wiped on drop | |
//! | [`reqwest`](reqwest/index.html) | `OAuth2Middleware` for reqwest-middleware (feature `reqwest`) | RFC 6750 §2.1 |
//!
//! # Cargo features
//!
//! | Feature | Default | What it adds |
//! |---|---|---|
//! | `hyper-client` | yes | The default token-endpoint transport, [`HttpClient::hyper`](transport/struct.HttpClient.html#method.hyper): hyper-util's client over hyper-rustls (ring provider, Mozilla's root certificates). Without it, give each [`TokenEndpoint`] an [`HttpClient`] of your own. |
//! | `reqwest` | no | The [`reqwest`](reqwest/index.html) module: a `reqwest_middleware::Middleware` sharing the layer's token cache. |
//! | `reqwest-retry` | no | With `reqwest`: [`reqwest::RetryTokenErrors`](reqwest/struct.RetryTokenErrors.html), a `reqwest_retry` strategy that retries transient token errors. |
//! | `platform-verifier` | no | `TlsRoots::Platform` for the default transport: the operating system's certificate verifier (rustls-platform-verifier), for private CAs installed on the machine. |
//! | `qrcode` | no | [`TerminalPrompt::qr_code`]: a QR code of `verification_uri_complete` for the device flow. |
//! | `loopback` | no | `grant::loopback::LoopbackLogin`: the login of a CLI or desktop app (RFC 8252), a listener on `127.0.0.1` for the redirect and the system browser (webbrowser). |
//! | `jwt` | no | JWT client authentication (`ClientAuth::client_secret_jwt`, `ClientAuth::private_key_jwt`, RFC 7523 §2.2), the JWT bearer grant (`JwtBearer`, RFC 7523 §2.1) and Google service-account keys (`ServiceAccountKey`): jsonwebtoken, signing with ring. |
//!
//! Items that need a feature are labelled with it in these docs.
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item has a runnable example: the docs.rs build (nightly, `--cfg docsrs`) warns
// where one is missing, and `.ci/run` runs it with `-D warnings`. The lint is nightly-only.
#![cfg_attr(docsrs, feature(rustdoc_missing_doc_code_examples))]
#![cfg_attr(docsrs, warn(rustdoc::missing_doc_code_examples))]

pub mod cache;
pub mod client;
pub mod client_auth;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod grant;
#[cfg(feature = "jwt")]
pub mod id_token;
pub mod layer;
pub mod persist;
pub mod provider;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod secret;
pub mod source;
pub mod store;
pub mod token;
pub mod transport;

pub use cache::{LostResponseRetry, TokenCache, TokenCacheBuilder};
pub use client::{OAuth2Client, OAuth2ClientBuilder};
pub use client_auth::ClientAuth;
#[cfg(feature = "jwt")]
pub use client_auth::{AssertionAudience, JwsAlgorithm, JwtError, JwtSigningKey};
pub use endpoint::discovery::{DiscoveryError, ServerMetadata};
pub use endpoint::introspection::Introspection;
pub use endpoint::revocation::TokenTypeHint;
pub use endpoint::token::{Params, TokenEndpoint, TokenEndpointBuilder};
pub use endpoint::userinfo::UserInfo;
pub use error::{BoxError, Error, ErrorCode, ServerError};
pub use grant::authorization_code::{
    Authorization, AuthorizationCode, AuthorizationRequest, Callback, CallbackError, Login,
    PendingAuthorization,
};
pub use grant::client_credentials::ClientCredentials;
pub use grant::device_code::{DeviceAuthorization, DeviceCode};
pub use grant::device_code::{UserCodeError, DEFAULT_USER_CODE_TIMEOUT};
pub use grant::device_prompt::TerminalPrompt;
#[cfg(feature = "jwt")]
pub use grant::jwt_bearer::JwtBearer;
#[cfg(feature = "loopback")]
pub use grant::loopback::{LoopbackError, LoopbackLogin};
pub use grant::password::Password;
pub use grant::pkce::PkceMethod;
pub use grant::refresh_token::RefreshToken;
#[cfg(feature = "jwt")]
pub use grant::service_account::ServiceAccountKey;
pub use grant::token_exchange::{SecurityToken, TokenExchange, TokenTypeUri};
#[cfg(feature = "jwt")]
pub use id_token::{IdToken, IdTokenClaims, IdTokenError};
pub use layer::resource::{OtherResources, Resource};
pub use layer::retry::{OAuth2Retry, OAuth2RetryLayer, OAuth2RetryPolicy, ReplayBody, Replayable};
pub use layer::router::{OAuth2Router, OAuth2RouterLayer};
pub use layer::{OAuth2, OAuth2Layer, ResponseFuture};
pub use persist::{StoredToken, StoredTokenError};
pub use secret::Secret;
pub use source::{source_fn, FnSource, TokenFuture, TokenSource};
pub use token::Token;
pub use transport::{HttpClient, DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT};
#[cfg(feature = "hyper-client")]
pub use transport::{HyperClientBuilder, TlsRoots};

/// The README's code, compiled as doctests. With every feature (the test command the README
/// gives, `cargo test --all-features`): its examples use the optional ones (`jwt`, ...).
#[cfg(all(doctest, feature = "jwt", feature = "hyper-client", feature = "loopback"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
