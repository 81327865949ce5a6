//! The grants: how a [`TokenSource`](crate::TokenSource) gets a token from the authorization
//! server, one file per grant, each named after its RFC section.
//!
//! | Module | Grant | Specification |
//! |---|---|---|
//! | [`authorization_code`] | [`OAuth2Client::authorization_request`](crate::OAuth2Client::authorization_request), [`OAuth2Client::exchange_code`](crate::OAuth2Client::exchange_code): logging a user in through their browser, with `state`, `nonce` and the issuer check | RFC 6749 §4.1, RFC 9207, OIDC Core §3.1 |
//! | [`pkce`] | [`PkceMethod`](crate::PkceMethod): the code verifier and challenge of every authorization request | RFC 7636 |
//! | [`client_credentials`] | [`ClientCredentials`](crate::ClientCredentials): the client acting on its own behalf | RFC 6749 §4.4 |
//! | [`refresh_token`] | [`RefreshToken`](crate::RefreshToken): redeeming, and rotating, a refresh token | RFC 6749 §6 |
//! | [`device_code`] | [`DeviceCode`](crate::DeviceCode): logging in a CLI or a device without a browser | RFC 8628 |
//! | [`device_prompt`] | [`TerminalPrompt`](crate::TerminalPrompt): the device flow's code and URI (and a QR code) in a terminal | RFC 8628 §3.3 |
//! | [`token_exchange`] | [`TokenExchange`](crate::TokenExchange): trading a token the client holds for another, for a downstream API | RFC 8693 |
//! | [`password`] | [`Password`](crate::Password): the resource owner's username and password (deprecated by RFC 9700 §2.4) | RFC 6749 §4.3 |
//! | `jwt_bearer` | `JwtBearer`: a signed JWT assertion as the grant (feature `jwt`) | RFC 7523 §2.1 |
//! | `service_account` | `ServiceAccountKey`: a Google service-account JSON key as a `JwtBearer` (feature `jwt`) | RFC 7523 §2.1 |
//!
//! Each is a [`TokenSource`](crate::TokenSource), so a [`TokenCache`](crate::TokenCache) and
//! the [`OAuth2Layer`](crate::OAuth2Layer) keep its tokens fresh:
//!
//! ```
//! use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenEndpoint};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::client_secret_basic("svc", "s3cret"))?;
//! let layer = OAuth2Layer::new(ClientCredentials::new(endpoint).scope("orders:read"));
//! # let _ = layer;
//! # Ok::<(), tower_oauth2::Error>(())
//! ```

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod device_prompt;
#[cfg(feature = "jwt")]
pub mod jwt_bearer;
pub mod password;
pub mod pkce;
pub mod refresh_token;
#[cfg(feature = "jwt")]
pub mod service_account;
pub mod token_exchange;
