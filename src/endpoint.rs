//! The authorization server's endpoints the client calls, one file each (see the table
//! below).
//!
//! ```
//! use tower_oauth2::{ClientAuth, TokenEndpoint};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
//! assert_eq!(endpoint.token_url().as_str(), "https://auth.example.com/token");
//! # Ok::<(), tower_oauth2::Error>(())
//! ```
//!
//! | Module | Endpoint | Specification |
//! |---|---|---|
//! | [`token`] | [`TokenEndpoint`](crate::TokenEndpoint): token requests, client authentication, response parsing | RFC 6749 §3.2, §5 |
//! | [`discovery`] | [`ServerMetadata`](crate::ServerMetadata): the server's metadata document, and where the other endpoints are | RFC 8414, OpenID Connect Discovery 1.0 |
//! | [`revocation`] | [`OAuth2Client::revoke_token`](crate::OAuth2Client::revoke_token) | RFC 7009 |
//! | [`introspection`] | [`OAuth2Client::introspect`](crate::OAuth2Client::introspect), [`Introspection`](crate::Introspection) | RFC 7662 |
//! | [`par`] | Pushed authorization requests, sent by [`AuthorizationRequest::start`](crate::AuthorizationRequest::start) | RFC 9126 |
//! | [`userinfo`] | [`OAuth2Client::userinfo`](crate::OAuth2Client::userinfo), [`UserInfo`](crate::UserInfo) | OpenID Connect Core §5.3 |
//!
//! The device authorization endpoint (RFC 8628 §3.1) is called by [`DeviceCode`](crate::DeviceCode)
//! in [`grant::device_code`](crate::grant::device_code). Every endpoint goes through the same
//! [`HttpClient`](crate::HttpClient) (its timeout and body size limit), the same URL checks
//! ([TLS required](token#tls-required)) and the same redaction of secrets in server text.

pub mod discovery;
pub mod introspection;
#[cfg(feature = "jwt")]
pub(crate) mod jwks;
pub mod par;
pub mod revocation;
pub mod token;
pub mod userinfo;
