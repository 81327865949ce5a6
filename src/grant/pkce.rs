//! Proof Key for Code Exchange (RFC 7636): the authorization code is worth nothing to whoever
//! intercepts it without the verifier that only the client holds.
//!
//! ```
//! use tower_oauth2::{ClientAuth, OAuth2Client, PkceMethod};
//!
//! let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
//!     .authorization_url("https://auth.example.com/authorize")
//!     .token_url("https://auth.example.com/token")
//!     .build()?;
//! // Every authorization request uses S256 unless told otherwise.
//! let authorization = client.authorization_request("http://127.0.0.1:8080/callback").build()?;
//! assert_eq!(authorization.pending().pkce_method(), Some(PkceMethod::S256));
//! let challenge = authorization.url().query_pairs().find(|(k, _)| k == "code_challenge");
//! assert_eq!(challenge.map(|(_, v)| v.len()), Some(43));
//! # Ok::<(), tower_oauth2::Error>(())
//! ```
//!
//! The verifier is 32 bytes from the operating system's CSPRNG, base64url-encoded (43
//! characters, RFC 7636 §4.1); the challenge is the base64url SHA-256 of it (§4.2). `plain`,
//! where the challenge is the verifier itself, is used only when asked for
//! ([`AuthorizationRequest::pkce_plain`](crate::AuthorizationRequest::pkce_plain)), for a
//! server that supports nothing else.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::secret::{random_token, Secret};

/// The `code_challenge_method` (RFC 7636 §4.3).
///
/// ```
/// use tower_oauth2::PkceMethod;
///
/// assert_eq!(PkceMethod::S256.as_str(), "S256");
/// assert_eq!(PkceMethod::Plain.as_str(), "plain");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PkceMethod {
    /// The challenge is `BASE64URL(SHA256(verifier))`: what every client should use.
    S256,
    /// The challenge is the verifier itself: for servers that support nothing else.
    Plain,
}

impl PkceMethod {
    /// The method's name on the wire.
    ///
    /// ```
    /// assert_eq!(tower_oauth2::PkceMethod::S256.as_str(), "S256");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            PkceMethod::S256 => "S256",
            PkceMethod::Plain => "plain",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "S256" => Some(PkceMethod::S256),
            "plain" => Some(PkceMethod::Plain),
            _ => None,
        }
    }
}

impl fmt::Display for PkceMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new code verifier: 32 random bytes, 43 characters (RFC 7636 §4.1).
pub(crate) fn new_verifier() -> Result<Secret, Error> {
    random_token(32).map(Secret::new)
}

/// The `code_challenge` of `verifier` for `method` (RFC 7636 §4.2).
pub(crate) fn challenge(verifier: &Secret, method: PkceMethod) -> String {
    match method {
        PkceMethod::S256 => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.expose().as_bytes())),
        PkceMethod::Plain => verifier.expose().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_the_rfc_7636_appendix_b_example() {
        let verifier = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            challenge(&verifier, PkceMethod::S256),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(challenge(&verifier, PkceMethod::Plain), verifier.expose());
    }

    #[test]
    fn verifiers_are_43_unreserved_characters_and_differ() {
        let a = new_verifier().unwrap();
        let b = new_verifier().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.expose(), b.expose());
    }
}
