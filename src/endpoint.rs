//! The authorization server's endpoints the client calls, one file each: today the token
//! endpoint ([`token`]: RFC 6749 §3.2 requests, client authentication and response parsing).
//!
//! ```
//! use tower_oauth2::{ClientAuth, TokenEndpoint};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
//! assert_eq!(endpoint.token_url().as_str(), "https://auth.example.com/token");
//! # Ok::<(), tower_oauth2::Error>(())
//! ```

pub mod token;
