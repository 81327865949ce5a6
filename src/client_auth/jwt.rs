//! JWT client assertions (RFC 7523 §2.2, OpenID Connect Core §9): `client_secret_jwt` and
//! `private_key_jwt`, and the signing keys they (and the JWT bearer grant) use. Feature `jwt`.
//!
//! On every request the client signs a new assertion: `iss` = `sub` = the client id, `aud` =
//! the token endpoint's URL (or the issuer: [`AssertionAudience`]), `iat` now, `exp` a minute
//! later (configurable), and a random 128-bit `jti` from the operating system's CSPRNG, so that
//! no two assertions are alike and a server that remembers `jti`s can refuse replays. It is
//! sent as `client_assertion`, with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and the
//! `client_id`. Time is the endpoint's [`Clock`](crate::clock::Clock).
//!
//! ```
//! use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtSigningKey, TokenEndpoint};
//!
//! # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client.key.pem")).unwrap();
//! // `pem`: the client's EC P-256 private key, `-----BEGIN PRIVATE KEY-----` (PKCS#8).
//! let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::ES256)?.with_kid("my-key-1");
//! let auth = ClientAuth::private_key_jwt("my-service", key)?;
//! assert_eq!(auth.method(), "private_key_jwt");
//! assert_eq!(auth.signing_algorithm(), Some("ES256"));
//!
//! let shared = ClientAuth::client_secret_jwt("my-app", "a-long-shared-secret-0123456789abcdef");
//! assert_eq!(shared.signing_algorithm(), Some("HS256"));
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", auth)?;
//! # let _ = endpoint;
//! # Ok::<(), tower_oauth2::Error>(())
//! ```
//!
//! # Keys
//!
//! A [`JwtSigningKey`] is read from PEM (PKCS#8 `PRIVATE KEY` for RSA, EC and Ed25519, PKCS#1
//! `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`) with the algorithm to use, or from a private JWK
//! (RFC 7517; `kty` `RSA`, `EC`, `OKP` or `oct`), which may name its algorithm and `kid`.
//! Signing is jsonwebtoken's, with ring. Errors name what is wrong with a key, never its
//! contents.
//!
//! What is wiped: the DER this crate decodes or builds from a key, the JSON strings of a JWK or
//! a service-account file once read, and every assertion (a [`Secret`]). What is not: the
//! caller's own string, the copy of the key jsonwebtoken keeps for the key's lifetime, ring's
//! working copies while it signs, the pem crate's copy of the base64 text it decodes, and (for
//! RSA JWKs) num-bigint's copies of the integers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::{ClientAuth, Method};
use crate::error::Error;
use crate::secret::Secret;

mod der;
mod key;

pub(crate) use key::{string_member, wipe_json};
pub use key::{JwsAlgorithm, JwtError, JwtSigningKey};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The default lifetime of an assertion: `exp` is one minute after `iat`.
pub(crate) const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// Who an assertion is for (its `aud`).
///
/// ```
/// use tower_oauth2::{AssertionAudience, ClientAuth, JwsAlgorithm, JwtSigningKey};
///
/// let auth = ClientAuth::client_secret_jwt("my-app", "a-long-shared-secret-0123456789abcdef")
///     .assertion_audience(AssertionAudience::Issuer("https://auth.example.com".into()));
/// # let _ = auth;
/// assert_eq!(AssertionAudience::default(), AssertionAudience::TokenEndpoint);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAudience {
    /// The token endpoint's URL (the default; RFC 7523 §3, OIDC Core §9).
    #[default]
    TokenEndpoint,
    /// The authorization server's issuer identifier, for servers that ask for it (RFC 7523
    /// §3 allows it; some servers require it).
    Issuer(String),
    /// Any other value the server expects.
    Value(String),
}

impl AssertionAudience {
    pub(crate) fn resolve<'a>(&'a self, token_url: &'a url::Url) -> &'a str {
        match self {
            AssertionAudience::TokenEndpoint => token_url.as_str(),
            AssertionAudience::Issuer(value) | AssertionAudience::Value(value) => value,
        }
    }
}

/// The claims of an assertion (RFC 7523 §3) and their signature.
pub(crate) struct AssertionClaims<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) audience: &'a AssertionAudience,
    pub(crate) token_url: &'a url::Url,
    pub(crate) now: SystemTime,
    pub(crate) lifetime: Duration,
    /// More claims (a Google `scope`, say); the registered ones above take precedence.
    pub(crate) extra: &'a Map<String, Value>,
}

impl AssertionClaims<'_> {
    /// Signs the claims with `key`, with a new `jti`.
    pub(crate) fn sign(&self, key: &JwtSigningKey) -> Result<Secret, Error> {
        let iat = self
            .now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let exp = iat.saturating_add(self.lifetime.as_secs().max(1));
        let mut claims = self.extra.clone();
        claims.insert("iss".to_owned(), self.issuer.into());
        claims.insert("sub".to_owned(), self.subject.into());
        claims.insert("aud".to_owned(), self.audience.resolve(self.token_url).into());
        claims.insert("iat".to_owned(), iat.into());
        claims.insert("exp".to_owned(), exp.into());
        claims.insert("jti".to_owned(), new_jti()?.into());
        key.sign(&claims)
    }
}

/// 128 random bits from the operating system's CSPRNG, base64url.
fn new_jti() -> Result<String, Error> {
    crate::secret::random_token(16).map_err(|_| Error::from(JwtError::Signing))
}

/// `client_secret_jwt` or `private_key_jwt`: the key, and the assertion's audience and
/// lifetime.
#[derive(Clone, Debug)]
pub(crate) struct JwtClientAuth {
    key: JwtSigningKey,
    private_key: bool,
    audience: AssertionAudience,
    lifetime: Duration,
}

impl JwtClientAuth {
    pub(crate) fn method(&self) -> &'static str {
        if self.private_key {
            "private_key_jwt"
        } else {
            "client_secret_jwt"
        }
    }

    pub(crate) fn algorithm(&self) -> JwsAlgorithm {
        self.key.algorithm()
    }

    pub(crate) fn secret(&self) -> Option<&Secret> {
        self.key.secret()
    }

    /// A new assertion for `client_id` at the server whose token endpoint is `token_url`.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        token_url: &url::Url,
        now: SystemTime,
    ) -> Result<Secret, Error> {
        AssertionClaims {
            issuer: client_id,
            subject: client_id,
            audience: &self.audience,
            token_url,
            now,
            lifetime: self.lifetime,
            extra: &Map::new(),
        }
        .sign(&self.key)
    }
}

impl ClientAuth {
    /// `client_secret_jwt` (RFC 7523 §2.2, OIDC Core §9): each request carries a new JWT
    /// signed with HMAC-SHA-256 using the client secret (see [`jwt`](crate::client_auth::jwt)
    /// for its claims). [`client_secret_jwt_with`](Self::client_secret_jwt_with) picks
    /// HS384 or HS512.
    ///
    /// Servers issue the secret, and some issue short ones: a secret shorter than 32 bytes
    /// (RFC 7518 §3.2 asks for at least the hash's length) is used all the same, and a
    /// `tracing` warning naming the client (never the secret) says so.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// // A stand-in authorization server that keeps the form it got.
    /// let form = Arc::new(Mutex::new(String::new()));
    /// let seen = form.clone();
    /// let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    ///     let seen = seen.clone();
    ///     async move {
    ///         let body = request.into_body().collect().await?.to_bytes();
    ///         *seen.lock().unwrap() = String::from_utf8_lossy(&body).into_owned();
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    ///             br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
    ///         ))))
    ///     }
    /// });
    /// let auth = ClientAuth::client_secret_jwt("my-app", "a-long-shared-secret-0123456789abcdef");
    /// assert_eq!(auth.method(), "client_secret_jwt");
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", auth)
    ///     .http_client(HttpClient::new(server))
    ///     .build()?;
    /// ClientCredentials::new(endpoint).fetch().await?;
    /// let form = form.lock().unwrap();
    /// assert!(form.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"));
    /// assert!(form.contains("&client_assertion=eyJ"));
    /// assert!(!form.contains("a-long-shared-secret"));
    /// # Ok(()) }
    /// ```
    pub fn client_secret_jwt(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        Self::secret_jwt(client_id.into(), client_secret.into(), JwsAlgorithm::HS256)
    }

    /// A `client_secret_jwt` client. A secret shorter than the hash (RFC 7518 §3.2) is taken
    /// as the server issued it, with a warning that names the client, never the secret.
    fn secret_jwt(client_id: String, secret: Secret, algorithm: JwsAlgorithm) -> Self {
        let minimum = key::hmac_minimum(algorithm);
        let length = secret.expose().len();
        if length < minimum {
            tracing::warn!(
                client_id = %client_id,
                algorithm = %algorithm,
                length,
                minimum,
                "the client secret is shorter than RFC 7518 §3.2 asks for this algorithm; ask the server for a longer one"
            );
        }
        Self::jwt(client_id, JwtSigningKey::hmac_key(secret, algorithm), false)
    }

    /// `client_secret_jwt` with HS256, HS384 or HS512; any other algorithm is
    /// [`JwtError::AlgorithmMismatch`]. Like [`client_secret_jwt`](Self::client_secret_jwt),
    /// it takes a secret shorter than the hash (32, 48 or 64 bytes) as the server issued it
    /// and logs a warning (`tracing`, without the secret); [`JwtSigningKey::hmac`] refuses
    /// such keys.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, JwsAlgorithm};
    ///
    /// let auth = ClientAuth::client_secret_jwt_with("my-app", "a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS512)?;
    /// assert_eq!(auth.signing_algorithm(), Some("HS512"));
    /// assert!(ClientAuth::client_secret_jwt_with("my-app", "secret", JwsAlgorithm::RS256).is_err());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn client_secret_jwt_with(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        algorithm: JwsAlgorithm,
    ) -> Result<Self, Error> {
        if !matches!(
            algorithm,
            JwsAlgorithm::HS256 | JwsAlgorithm::HS384 | JwsAlgorithm::HS512
        ) {
            return Err(JwtError::AlgorithmMismatch {
                algorithm,
                key: "a shared secret",
            }
            .into());
        }
        Ok(Self::secret_jwt(
            client_id.into(),
            client_secret.into(),
            algorithm,
        ))
    }

    /// `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): each request carries a new JWT signed
    /// with the client's private key, whose public half the server knows (the client's
    /// registered `jwks` or `jwks_uri`; the key's `kid` says which).
    ///
    /// The key must be asymmetric (RSA, EC or Ed25519, OIDC Core §9): a shared-secret (HMAC)
    /// key is [`JwtError::SharedSecretKey`]; use [`client_secret_jwt`](Self::client_secret_jwt)
    /// for those.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, JwsAlgorithm, JwtError, JwtSigningKey};
    ///
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client.key.pem")).unwrap();
    /// let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::ES256)?.with_kid("key-1");
    /// let auth = ClientAuth::private_key_jwt("my-service", key)?;
    /// assert_eq!(auth.method(), "private_key_jwt");
    /// assert_eq!(auth.signing_algorithm(), Some("ES256"));
    ///
    /// let shared = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// let err = ClientAuth::private_key_jwt("my-service", shared).unwrap_err();
    /// assert!(matches!(err, Error::Jwt(JwtError::SharedSecretKey(JwsAlgorithm::HS256))));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn private_key_jwt(client_id: impl Into<String>, key: JwtSigningKey) -> Result<Self, Error> {
        let algorithm = key.algorithm();
        if matches!(
            algorithm,
            JwsAlgorithm::HS256 | JwsAlgorithm::HS384 | JwsAlgorithm::HS512
        ) {
            return Err(JwtError::SharedSecretKey(algorithm).into());
        }
        Ok(Self::jwt(client_id.into(), key, true))
    }

    /// No client authentication, and no `client_id` in the form: for a JWT bearer grant
    /// whose assertion alone identifies the client (Google service accounts).
    pub(crate) fn assertion_only(client_id: impl Into<String>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::AssertionOnly,
        }
    }

    fn jwt(client_id: String, key: JwtSigningKey, private_key: bool) -> Self {
        ClientAuth {
            client_id,
            method: Method::Jwt(Arc::new(JwtClientAuth {
                key,
                private_key,
                audience: AssertionAudience::TokenEndpoint,
                lifetime: DEFAULT_ASSERTION_LIFETIME,
            })),
        }
    }

    /// The `aud` of the client's assertions (default: the token endpoint's URL). Only the JWT
    /// methods send assertions; the others are returned unchanged.
    ///
    /// ```
    /// use tower_oauth2::{AssertionAudience, ClientAuth};
    ///
    /// let auth = ClientAuth::client_secret_jwt("my-app", "a-long-shared-secret-0123456789abcdef")
    ///     .assertion_audience(AssertionAudience::Issuer("https://auth.example.com".into()));
    /// assert_eq!(auth.method(), "client_secret_jwt");
    /// ```
    #[must_use]
    pub fn assertion_audience(mut self, audience: AssertionAudience) -> Self {
        if let Method::Jwt(jwt) = &mut self.method {
            Arc::make_mut(jwt).audience = audience;
        }
        self
    }

    /// How long the client's assertions are valid: `exp` is `iat` plus this, rounded down to
    /// whole seconds, at least one (default: 60 seconds). Only the JWT methods send
    /// assertions; the others are returned unchanged.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::client_secret_jwt("my-app", "a-long-shared-secret-0123456789abcdef")
    ///     .assertion_lifetime(Duration::from_secs(30));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn assertion_lifetime(mut self, lifetime: Duration) -> Self {
        if let Method::Jwt(jwt) = &mut self.method {
            Arc::make_mut(jwt).lifetime = lifetime;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use simple_asn1::ASN1Block;

    use super::der::{explicit, wipe_asn1};
    use super::*;

    #[test]
    fn ed25519_jwk_becomes_pkcs8_that_signs() {
        // RFC 8037 A.1.
        let jwk = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let key = JwtSigningKey::from_jwk(jwk).unwrap();
        assert_eq!(key.algorithm(), JwsAlgorithm::EdDSA);
        // The wrong public half is refused.
        let wrong = jwk.replace("11qY", "21qY");
        assert!(matches!(
            JwtSigningKey::from_jwk(&wrong),
            Err(Error::Jwt(JwtError::InvalidKey(_)))
        ));
    }

    #[test]
    fn wiping_reaches_every_byte_string() {
        let mut blocks = vec![ASN1Block::Sequence(
            0,
            vec![
                ASN1Block::OctetString(0, vec![1, 2]),
                explicit(1, ASN1Block::BitString(0, 8, vec![3])),
            ],
        )];
        wipe_asn1(&mut blocks);
        let ASN1Block::Sequence(_, items) = &blocks[0] else {
            panic!()
        };
        assert!(matches!(&items[0], ASN1Block::OctetString(_, b) if b.is_empty()));
        let mut json: Value = serde_json::json!({"d": "secret", "nested": ["x"]});
        wipe_json(&mut json);
        assert_eq!(json, serde_json::json!({"d": "", "nested": [""]}));
    }

    #[test]
    fn jtis_are_unique_and_128_bits() {
        let a = new_jti().unwrap();
        let b = new_jti().unwrap();
        assert_ne!(a, b);
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(a)
                .unwrap()
                .len(),
            16
        );
    }
}
