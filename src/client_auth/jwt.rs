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
//! let auth = ClientAuth::private_key_jwt("my-service", key);
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
//! working copies while it signs, and (for RSA JWKs) num-bigint's copies of the integers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};
use simple_asn1::{oid, ASN1Block, ASN1Class, BigInt, BigUint, OID};
use zeroize::{Zeroize, Zeroizing};

use super::{ClientAuth, Method};
use crate::error::Error;
use crate::secret::Secret;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The default lifetime of an assertion: `exp` is one minute after `iat`.
pub(crate) const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// A JWS signing algorithm (RFC 7518 §3, RFC 8037 for `EdDSA`).
///
/// ```
/// use tower_oauth2::JwsAlgorithm;
///
/// let alg: JwsAlgorithm = "PS256".parse()?;
/// assert_eq!(alg, JwsAlgorithm::PS256);
/// assert_eq!(alg.as_str(), "PS256");
/// assert!("none".parse::<JwsAlgorithm>().is_err());
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// HMAC with SHA-256 (`client_secret_jwt`'s default).
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

impl JwsAlgorithm {
    const ALL: [JwsAlgorithm; 12] = [
        JwsAlgorithm::HS256,
        JwsAlgorithm::HS384,
        JwsAlgorithm::HS512,
        JwsAlgorithm::RS256,
        JwsAlgorithm::RS384,
        JwsAlgorithm::RS512,
        JwsAlgorithm::PS256,
        JwsAlgorithm::PS384,
        JwsAlgorithm::PS512,
        JwsAlgorithm::ES256,
        JwsAlgorithm::ES384,
        JwsAlgorithm::EdDSA,
    ];

    /// The algorithm's name, as in a JWS header's `alg`.
    ///
    /// ```
    /// assert_eq!(tower_oauth2::JwsAlgorithm::EdDSA.as_str(), "EdDSA");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::HS256 => "HS256",
            JwsAlgorithm::HS384 => "HS384",
            JwsAlgorithm::HS512 => "HS512",
            JwsAlgorithm::RS256 => "RS256",
            JwsAlgorithm::RS384 => "RS384",
            JwsAlgorithm::RS512 => "RS512",
            JwsAlgorithm::PS256 => "PS256",
            JwsAlgorithm::PS384 => "PS384",
            JwsAlgorithm::PS512 => "PS512",
            JwsAlgorithm::ES256 => "ES256",
            JwsAlgorithm::ES384 => "ES384",
            JwsAlgorithm::EdDSA => "EdDSA",
        }
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            JwsAlgorithm::HS256 => A::HS256,
            JwsAlgorithm::HS384 => A::HS384,
            JwsAlgorithm::HS512 => A::HS512,
            JwsAlgorithm::RS256 => A::RS256,
            JwsAlgorithm::RS384 => A::RS384,
            JwsAlgorithm::RS512 => A::RS512,
            JwsAlgorithm::PS256 => A::PS256,
            JwsAlgorithm::PS384 => A::PS384,
            JwsAlgorithm::PS512 => A::PS512,
            JwsAlgorithm::ES256 => A::ES256,
            JwsAlgorithm::ES384 => A::ES384,
            JwsAlgorithm::EdDSA => A::EdDSA,
        }
    }

    /// The type of key the algorithm signs with.
    fn key_type(self) -> KeyType {
        match self {
            JwsAlgorithm::HS256 | JwsAlgorithm::HS384 | JwsAlgorithm::HS512 => KeyType::Hmac,
            JwsAlgorithm::RS256
            | JwsAlgorithm::RS384
            | JwsAlgorithm::RS512
            | JwsAlgorithm::PS256
            | JwsAlgorithm::PS384
            | JwsAlgorithm::PS512 => KeyType::Rsa,
            JwsAlgorithm::ES256 => KeyType::EcP256,
            JwsAlgorithm::ES384 => KeyType::EcP384,
            JwsAlgorithm::EdDSA => KeyType::Ed25519,
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses an algorithm name (`"ES256"`, ...); an unknown name (or `none`) is
/// [`JwtError::UnsupportedAlgorithm`].
impl FromStr for JwsAlgorithm {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        JwsAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
            .ok_or_else(|| JwtError::UnsupportedAlgorithm(printable(name)).into())
    }
}

/// The kind of key, as told by its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::Hmac => "a shared secret",
            KeyType::Rsa => "an RSA key",
            KeyType::EcP256 => "an EC P-256 key",
            KeyType::EcP384 => "an EC P-384 key",
            KeyType::Ed25519 => "an Ed25519 key",
        }
    }

    /// The algorithm a key of this type signs with when none is named, if only one fits.
    fn only_algorithm(self) -> Option<JwsAlgorithm> {
        match self {
            KeyType::EcP256 => Some(JwsAlgorithm::ES256),
            KeyType::EcP384 => Some(JwsAlgorithm::ES384),
            KeyType::Ed25519 => Some(JwsAlgorithm::EdDSA),
            KeyType::Hmac | KeyType::Rsa => None,
        }
    }
}

/// What went wrong making a JWT: a key that cannot be read, an algorithm that does not fit
/// it, a service-account file that is not one, or a signature that failed. The texts name
/// the problem (and the JSON member or PEM label concerned), never key material.
///
/// ```
/// use tower_oauth2::{Error, JwsAlgorithm, JwtError, JwtSigningKey};
///
/// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client.key.pem")).unwrap();
/// // An EC P-256 key cannot sign RS256.
/// let err = JwtSigningKey::from_pem(&pem, JwsAlgorithm::RS256).unwrap_err();
/// assert!(matches!(err, Error::Jwt(JwtError::AlgorithmMismatch { algorithm: JwsAlgorithm::RS256, .. })));
/// assert_eq!(err.to_string(), "RS256 cannot sign with an EC P-256 key");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum JwtError {
    /// The key could not be read: not PEM or JSON, not a private key, a malformed or missing
    /// part, or a key ring refuses (an RSA key under 2048 bits, say). Says what, never the key.
    InvalidKey(String),
    /// The algorithm cannot sign with this type of key.
    AlgorithmMismatch {
        /// The algorithm asked for.
        algorithm: JwsAlgorithm,
        /// The type of key given (`"an RSA key"`, ...).
        key: &'static str,
    },
    /// An algorithm this crate does not sign with (`none` included), or a JWK whose algorithm
    /// cannot be told from its type (RSA and `oct` keys name theirs in `alg`, or take one).
    UnsupportedAlgorithm(String),
    /// A Google service-account key file could not be read or is not one. Says what, never
    /// the key.
    ServiceAccount(String),
    /// Signing failed.
    Signing,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::InvalidKey(what) => write!(f, "invalid signing key: {what}"),
            JwtError::AlgorithmMismatch { algorithm, key } => write!(f, "{algorithm} cannot sign with {key}"),
            JwtError::UnsupportedAlgorithm(what) => write!(f, "unsupported JWS algorithm: {what}"),
            JwtError::ServiceAccount(what) => write!(f, "invalid service-account key: {what}"),
            JwtError::Signing => f.write_str("signing the JWT failed"),
        }
    }
}

impl std::error::Error for JwtError {}

impl From<JwtError> for Error {
    fn from(err: JwtError) -> Self {
        Error::Jwt(err)
    }
}

/// `text` if it is short and plain (an algorithm name, a PEM label), else a placeholder: what
/// a key file holds is never echoed whole.
fn printable(text: &str) -> String {
    if text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'))
    {
        format!("{text:?}")
    } else {
        "(not shown)".to_owned()
    }
}

/// A private key (or shared secret) that signs JWTs, with its algorithm and optional `kid`.
///
/// Cheap to clone (clones share the key). `Debug` shows the algorithm and `kid`, never the
/// key. Read one from PEM ([`from_pem`](Self::from_pem)), from a private JWK
/// ([`from_jwk`](Self::from_jwk)), or make one from a shared secret ([`hmac`](Self::hmac)).
/// Each constructor signs a test message, so a key that cannot sign fails here, not on the
/// first request.
///
/// ```
/// use tower_oauth2::{JwsAlgorithm, JwtSigningKey};
///
/// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
/// // `pem`: an RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
/// let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::PS256)?.with_kid("rsa-2026");
/// assert_eq!(key.algorithm(), JwsAlgorithm::PS256);
/// assert_eq!(key.kid(), Some("rsa-2026"));
/// assert!(!format!("{key:?}").contains("MII"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct JwtSigningKey {
    algorithm: JwsAlgorithm,
    kid: Option<Arc<str>>,
    /// jsonwebtoken's key (its own copy of the DER, or of the secret; not wiped).
    key: Arc<EncodingKey>,
    /// The shared secret of an HMAC key, redacted from server text like a client secret.
    secret: Option<Secret>,
}

impl fmt::Debug for JwtSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigningKey {
    /// Reads a PEM private key to sign with `algorithm`: PKCS#8 (`-----BEGIN PRIVATE KEY-----`:
    /// RSA, EC P-256/P-384 or Ed25519), PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`) or SEC1
    /// (`-----BEGIN EC PRIVATE KEY-----`). Encrypted keys are not read: decrypt them first
    /// (`openssl pkcs8 -topk8 -nocrypt`). The key must fit the algorithm (an RSA key for
    /// `RS*`/`PS*`, P-256 for `ES256`, P-384 for `ES384`, Ed25519 for `EdDSA`).
    ///
    /// ```
    /// use tower_oauth2::{Error, JwsAlgorithm, JwtError, JwtSigningKey};
    ///
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client.key.pem")).unwrap();
    /// let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::ES256)?;
    /// assert_eq!(key.kid(), None);
    ///
    /// let err = JwtSigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", JwsAlgorithm::ES256)
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Jwt(JwtError::InvalidKey(_))));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_pem(pem: &str, algorithm: JwsAlgorithm) -> Result<Self, Error> {
        let parsed = pem::parse(pem).map_err(|_| {
            JwtError::InvalidKey("not PEM (expected -----BEGIN PRIVATE KEY----- or similar)".to_owned())
        })?;
        let label = parsed.tag().to_owned();
        let der = Zeroizing::new(parsed.into_contents());
        let (key_type, der) = match label.as_str() {
            "PRIVATE KEY" => pkcs8_key(&der)?,
            "RSA PRIVATE KEY" => (KeyType::Rsa, der),
            "EC PRIVATE KEY" => sec1_to_pkcs8(&der)?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(JwtError::InvalidKey(
                    "the PEM key is encrypted: decrypt it first (openssl pkcs8 -topk8 -nocrypt)".to_owned(),
                )
                .into())
            }
            other => {
                return Err(JwtError::InvalidKey(format!(
                    "a PEM {} is not a private key this crate reads (PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY)",
                    printable(other)
                ))
                .into())
            }
        };
        Self::from_der(key_type, &der, algorithm)
    }

    /// Reads a private JWK (RFC 7517, the JSON of one key) and signs with the algorithm its
    /// `alg` names, or, without `alg`, the only one its type allows (`ES256` for P-256,
    /// `ES384` for P-384, `EdDSA` for Ed25519; RSA and `oct` keys must name theirs, or use
    /// [`from_jwk_with_algorithm`](Self::from_jwk_with_algorithm)). Its `kid` becomes the
    /// key's. Types: `RSA` (with its CRT parameters `p`, `q`, `dp`, `dq`, `qi`), `EC` (`P-256`,
    /// `P-384`), `OKP` (`Ed25519`), `oct` (HMAC).
    ///
    /// ```
    /// use tower_oauth2::{JwsAlgorithm, JwtSigningKey};
    ///
    /// let jwk = r#"{"kty":"OKP","crv":"Ed25519","kid":"ed-1",
    ///     "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    ///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#; // RFC 8037 A.1
    /// let key = JwtSigningKey::from_jwk(jwk)?;
    /// assert_eq!(key.algorithm(), JwsAlgorithm::EdDSA);
    /// assert_eq!(key.kid(), Some("ed-1"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_jwk(jwk: &str) -> Result<Self, Error> {
        Self::jwk(jwk, None)
    }

    /// [`from_jwk`](Self::from_jwk) with the algorithm given; a JWK whose `alg` names another
    /// is refused.
    ///
    /// ```
    /// use tower_oauth2::{JwsAlgorithm, JwtSigningKey};
    ///
    /// let jwk = r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#;
    /// let key = JwtSigningKey::from_jwk_with_algorithm(jwk, JwsAlgorithm::HS512)?;
    /// assert_eq!(key.algorithm(), JwsAlgorithm::HS512);
    /// assert!(JwtSigningKey::from_jwk(jwk).is_err(), "an oct key must name its algorithm");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_jwk_with_algorithm(jwk: &str, algorithm: JwsAlgorithm) -> Result<Self, Error> {
        Self::jwk(jwk, Some(algorithm))
    }

    /// A shared-secret (HMAC) key for `HS256`, `HS384` or `HS512`. Use a random secret at
    /// least as long as the hash (32, 48 or 64 bytes; RFC 7518 §3.2).
    ///
    /// ```
    /// use tower_oauth2::{JwsAlgorithm, JwtSigningKey};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS384)?;
    /// assert_eq!(key.algorithm(), JwsAlgorithm::HS384);
    /// assert!(JwtSigningKey::hmac("secret", JwsAlgorithm::ES256).is_err());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn hmac(secret: impl Into<Secret>, algorithm: JwsAlgorithm) -> Result<Self, Error> {
        check_fits(KeyType::Hmac, algorithm)?;
        let secret = secret.into();
        let key = EncodingKey::from_secret(secret.expose().as_bytes());
        Ok(JwtSigningKey {
            algorithm,
            kid: None,
            key: Arc::new(key),
            secret: Some(secret),
        })
    }

    /// Sets the `kid` put in the header of every JWT this key signs (replacing the JWK's).
    ///
    /// ```
    /// use tower_oauth2::{JwsAlgorithm, JwtSigningKey};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?
    ///     .with_kid("2026-01");
    /// assert_eq!(key.kid(), Some("2026-01"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(Arc::from(kid.into()));
        self
    }

    /// The algorithm this key signs with.
    ///
    /// ```
    /// use tower_oauth2::{JwsAlgorithm, JwtSigningKey};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// assert_eq!(key.algorithm().as_str(), "HS256");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.algorithm
    }

    /// The `kid` put in the JWT header, if any.
    ///
    /// ```
    /// use tower_oauth2::{JwsAlgorithm, JwtSigningKey};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// assert_eq!(key.kid(), None);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The shared secret of an HMAC key.
    pub(crate) fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// Signs `claims` as a compact JWS (`typ: JWT`, this key's `alg` and `kid`).
    pub(crate) fn sign(&self, claims: &Map<String, Value>) -> Result<Secret, Error> {
        let mut header = Header::new(self.algorithm.jsonwebtoken());
        header.kid = self.kid.as_deref().map(str::to_owned);
        let jwt = jsonwebtoken::encode(&header, claims, &self.key).map_err(|_| JwtError::Signing)?;
        Ok(Secret::new(jwt))
    }

    /// A key of `key_type` in the DER ring reads (PKCS#1 for RSA, PKCS#8 for EC and Ed25519),
    /// checked to fit `algorithm` and to sign.
    fn from_der(key_type: KeyType, der: &[u8], algorithm: JwsAlgorithm) -> Result<Self, Error> {
        check_fits(key_type, algorithm)?;
        let key = match key_type {
            KeyType::Rsa => EncodingKey::from_rsa_der(der),
            KeyType::EcP256 | KeyType::EcP384 => EncodingKey::from_ec_der(der),
            KeyType::Ed25519 => EncodingKey::from_ed_der(der),
            KeyType::Hmac => EncodingKey::from_secret(der),
        };
        let key = JwtSigningKey {
            algorithm,
            kid: None,
            key: Arc::new(key),
            secret: None,
        };
        // ring reads the key on each signature: read it once now, so that a bad key fails
        // here.
        let mut header = Header::new(algorithm.jsonwebtoken());
        header.kid = None;
        jsonwebtoken::encode(&header, &Map::new(), &key.key).map_err(|err| {
            JwtError::InvalidKey(match err.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidRsaKey(reason) => {
                    format!("ring refuses the RSA key ({reason}; RSA keys need at least 2048 bits)")
                }
                _ => format!("ring refuses {}", key_type.name()),
            })
        })?;
        Ok(key)
    }

    fn jwk(jwk: &str, algorithm: Option<JwsAlgorithm>) -> Result<Self, Error> {
        let mut value: Value = serde_json::from_str(jwk).map_err(|e| {
            JwtError::InvalidKey(format!(
                "the JWK is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let result = Self::jwk_value(&value, algorithm);
        wipe_json(&mut value);
        result
    }

    fn jwk_value(value: &Value, algorithm: Option<JwsAlgorithm>) -> Result<Self, Error> {
        let Some(object) = value.as_object() else {
            return Err(JwtError::InvalidKey("the JWK is not a JSON object".to_owned()).into());
        };
        let text = |name: &str| -> Result<Option<&str>, Error> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(JwtError::InvalidKey(format!("the JWK's `{name}` is not a string")).into()),
            }
        };
        let bytes = |name: &str| -> Result<Zeroizing<Vec<u8>>, Error> {
            let encoded =
                text(name)?.ok_or_else(|| JwtError::InvalidKey(format!("the JWK has no `{name}`")))?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .map(Zeroizing::new)
                .map_err(|_| JwtError::InvalidKey(format!("the JWK's `{name}` is not base64url")).into())
        };
        let named = text("alg")?.map(JwsAlgorithm::from_str).transpose()?;
        let algorithm = match (named, algorithm) {
            (Some(named), Some(given)) if named != given => {
                return Err(JwtError::InvalidKey(format!("the JWK is for {named}, not {given}")).into())
            }
            (named, given) => given.or(named),
        };
        let kty = text("kty")?.ok_or_else(|| JwtError::InvalidKey("the JWK has no `kty`".to_owned()))?;
        let (key_type, der) = match kty {
            "RSA" => {
                if object.contains_key("oth") {
                    return Err(JwtError::InvalidKey(
                        "multi-prime RSA keys (`oth`) are not supported".to_owned(),
                    )
                    .into());
                }
                let mut integers = vec![ASN1Block::Integer(0, BigInt::from(0u8))];
                for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
                    integers.push(ASN1Block::Integer(
                        0,
                        BigInt::from(BigUint::from_bytes_be(&bytes(name)?)),
                    ));
                }
                // PKCS#1 RSAPrivateKey (RFC 8017 A.1.2), what ring's `RsaKeyPair::from_der` reads.
                (KeyType::Rsa, der(ASN1Block::Sequence(0, integers))?)
            }
            "EC" => {
                let (key_type, curve, size) = match text("crv")? {
                    Some("P-256") => (KeyType::EcP256, oid!(1, 2, 840, 10045, 3, 1, 7), 32),
                    Some("P-384") => (KeyType::EcP384, oid!(1, 3, 132, 0, 34), 48),
                    Some(other) => {
                        return Err(JwtError::InvalidKey(format!(
                            "unsupported EC curve {}",
                            printable(other)
                        ))
                        .into())
                    }
                    None => return Err(JwtError::InvalidKey("the JWK has no `crv`".to_owned()).into()),
                };
                let (d, x, y) = (bytes("d")?, bytes("x")?, bytes("y")?);
                if d.len() != size || x.len() != size || y.len() != size {
                    return Err(JwtError::InvalidKey(
                        "the JWK's `d`, `x` or `y` has the wrong length for its curve".to_owned(),
                    )
                    .into());
                }
                let mut point = Zeroizing::new(Vec::with_capacity(1 + 2 * size));
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                // RFC 5915 ECPrivateKey, with the public key ring requires.
                let ec_private_key = der(ASN1Block::Sequence(
                    0,
                    vec![
                        ASN1Block::Integer(0, BigInt::from(1u8)),
                        ASN1Block::OctetString(0, d.to_vec()),
                        explicit(0, ASN1Block::ObjectIdentifier(0, curve.clone())),
                        explicit(1, ASN1Block::BitString(0, point.len() * 8, point.to_vec())),
                    ],
                ))?;
                (key_type, pkcs8(ec_algorithm(curve), &ec_private_key)?)
            }
            "OKP" => {
                match text("crv")? {
                    Some("Ed25519") => {}
                    Some(other) => {
                        return Err(JwtError::InvalidKey(format!(
                            "unsupported OKP curve {}",
                            printable(other)
                        ))
                        .into())
                    }
                    None => return Err(JwtError::InvalidKey("the JWK has no `crv`".to_owned()).into()),
                }
                let (d, x) = (bytes("d")?, bytes("x")?);
                if ring::signature::Ed25519KeyPair::from_seed_and_public_key(&d, &x).is_err() {
                    return Err(JwtError::InvalidKey(
                        "the JWK's `d` and `x` are not an Ed25519 key pair".to_owned(),
                    )
                    .into());
                }
                // RFC 8410 §7: the private key is an OCTET STRING inside the PKCS#8 one.
                let seed = der(ASN1Block::OctetString(0, d.to_vec()))?;
                let algorithm =
                    ASN1Block::Sequence(0, vec![ASN1Block::ObjectIdentifier(0, oid!(1, 3, 101, 112))]);
                (KeyType::Ed25519, pkcs8(algorithm, &seed)?)
            }
            "oct" => (KeyType::Hmac, bytes("k")?),
            other => {
                return Err(
                    JwtError::InvalidKey(format!("unsupported JWK `kty` {}", printable(other))).into(),
                )
            }
        };
        let algorithm = match algorithm.or(key_type.only_algorithm()) {
            Some(algorithm) => algorithm,
            None => {
                return Err(JwtError::UnsupportedAlgorithm(format!(
                    "the JWK ({}) names no `alg`; give one",
                    key_type.name()
                ))
                .into())
            }
        };
        let mut key = if key_type == KeyType::Hmac {
            check_fits(key_type, algorithm)?;
            JwtSigningKey {
                algorithm,
                kid: None,
                key: Arc::new(EncodingKey::from_secret(&der)),
                secret: None,
            }
        } else {
            Self::from_der(key_type, &der, algorithm)?
        };
        if let Some(kid) = text("kid")? {
            key = key.with_kid(kid);
        }
        Ok(key)
    }
}

fn check_fits(key_type: KeyType, algorithm: JwsAlgorithm) -> Result<(), Error> {
    if algorithm.key_type() == key_type {
        Ok(())
    } else {
        Err(JwtError::AlgorithmMismatch {
            algorithm,
            key: key_type.name(),
        }
        .into())
    }
}

const RSA_ENCRYPTION: [u64; 7] = [1, 2, 840, 113549, 1, 1, 1];
const EC_PUBLIC_KEY: [u64; 6] = [1, 2, 840, 10045, 2, 1];
const ED25519: [u64; 4] = [1, 3, 101, 112];

fn oid_is(oid: &OID, expected: &[u64]) -> bool {
    oid.as_vec::<u64>().is_ok_and(|parts| parts == expected)
}

fn curve_type(curve: &OID) -> Option<KeyType> {
    if oid_is(curve, &[1, 2, 840, 10045, 3, 1, 7]) {
        Some(KeyType::EcP256)
    } else if oid_is(curve, &[1, 3, 132, 0, 34]) {
        Some(KeyType::EcP384)
    } else {
        None
    }
}

/// The AlgorithmIdentifier of an EC key on `curve`.
fn ec_algorithm(curve: OID) -> ASN1Block {
    ASN1Block::Sequence(
        0,
        vec![
            ASN1Block::ObjectIdentifier(0, oid!(1, 2, 840, 10045, 2, 1)),
            ASN1Block::ObjectIdentifier(0, curve),
        ],
    )
}

fn explicit(tag: u8, block: ASN1Block) -> ASN1Block {
    ASN1Block::Explicit(ASN1Class::ContextSpecific, 0, BigUint::from(tag), Box::new(block))
}

/// DER of `block`, then `block` wiped.
fn der(mut block: ASN1Block) -> Result<Zeroizing<Vec<u8>>, Error> {
    let der = simple_asn1::to_der(&block)
        .map(Zeroizing::new)
        .map_err(|_| JwtError::InvalidKey("the key cannot be encoded".to_owned()).into());
    wipe_asn1(std::slice::from_mut(&mut block));
    der
}

/// A PKCS#8 v1 PrivateKeyInfo (RFC 5208): version 0, `algorithm`, `private_key` as an OCTET
/// STRING.
fn pkcs8(algorithm: ASN1Block, private_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    der(ASN1Block::Sequence(
        0,
        vec![
            ASN1Block::Integer(0, BigInt::from(0u8)),
            algorithm,
            ASN1Block::OctetString(0, private_key.to_vec()),
        ],
    ))
}

/// Parses DER, runs `read` on it, and wipes what was parsed.
fn with_asn1<T>(der: &[u8], read: impl FnOnce(&[ASN1Block]) -> Result<T, Error>) -> Result<T, Error> {
    let mut blocks = simple_asn1::from_der(der)
        .map_err(|_| JwtError::InvalidKey("the PEM's contents are not DER".to_owned()))?;
    let result = read(&blocks);
    wipe_asn1(&mut blocks);
    result
}

/// The type of a PKCS#8 key, and the DER ring reads for it: the PKCS#1 inside for RSA, the
/// PKCS#8 itself for EC and Ed25519.
fn pkcs8_key(der: &[u8]) -> Result<(KeyType, Zeroizing<Vec<u8>>), Error> {
    let malformed = || Error::from(JwtError::InvalidKey("the PKCS#8 key is malformed".to_owned()));
    with_asn1(der, |blocks| {
        let [ASN1Block::Sequence(_, items)] = blocks else {
            return Err(malformed());
        };
        let (Some(ASN1Block::Sequence(_, algorithm)), Some(ASN1Block::OctetString(_, private_key))) =
            (items.get(1), items.get(2))
        else {
            return Err(malformed());
        };
        let Some(ASN1Block::ObjectIdentifier(_, oid)) = algorithm.first() else {
            return Err(malformed());
        };
        if oid_is(oid, &RSA_ENCRYPTION) {
            Ok((KeyType::Rsa, Zeroizing::new(private_key.clone())))
        } else if oid_is(oid, &EC_PUBLIC_KEY) {
            match algorithm.get(1) {
                Some(ASN1Block::ObjectIdentifier(_, curve)) => match curve_type(curve) {
                    Some(key_type) => Ok((key_type, Zeroizing::new(der.to_vec()))),
                    None => Err(JwtError::InvalidKey(
                        "unsupported EC curve (P-256 and P-384 are)".to_owned(),
                    )
                    .into()),
                },
                _ => Err(malformed()),
            }
        } else if oid_is(oid, &ED25519) {
            Ok((KeyType::Ed25519, Zeroizing::new(der.to_vec())))
        } else {
            Err(JwtError::InvalidKey("unsupported key type (RSA, EC and Ed25519 are)".to_owned()).into())
        }
    })
}

/// A SEC1 `EC PRIVATE KEY` (RFC 5915) wrapped in the PKCS#8 ring reads.
fn sec1_to_pkcs8(der: &[u8]) -> Result<(KeyType, Zeroizing<Vec<u8>>), Error> {
    let curve = with_asn1(der, |blocks| {
        let [ASN1Block::Sequence(_, items)] = blocks else {
            return Err(JwtError::InvalidKey("the EC key is malformed".to_owned()).into());
        };
        items
            .iter()
            .find_map(|item| match item {
                ASN1Block::Explicit(ASN1Class::ContextSpecific, _, tag, inner)
                    if *tag == BigUint::from(0u8) =>
                {
                    match &**inner {
                        ASN1Block::ObjectIdentifier(_, curve) => Some(curve.clone()),
                        _ => None,
                    }
                }
                _ => None,
            })
            .ok_or_else(|| JwtError::InvalidKey("the EC key does not name its curve".to_owned()).into())
    })?;
    let key_type = curve_type(&curve)
        .ok_or_else(|| JwtError::InvalidKey("unsupported EC curve (P-256 and P-384 are)".to_owned()))?;
    Ok((key_type, pkcs8(ec_algorithm(curve), der)?))
}

/// Overwrites the byte strings of a parsed or built ASN.1 tree (the integers, num-bigint's,
/// cannot be reached).
fn wipe_asn1(blocks: &mut [ASN1Block]) {
    for block in blocks {
        match block {
            ASN1Block::OctetString(_, bytes)
            | ASN1Block::BitString(_, _, bytes)
            | ASN1Block::Unknown(_, _, _, _, bytes) => bytes.zeroize(),
            ASN1Block::Sequence(_, items) | ASN1Block::Set(_, items) => wipe_asn1(items),
            ASN1Block::Explicit(_, _, _, inner) => wipe_asn1(std::slice::from_mut(&mut **inner)),
            _ => {}
        }
    }
}

/// Overwrites every string of a parsed JSON document (a JWK, a service-account file).
pub(crate) fn wipe_json(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_json),
        Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
}

/// Who an assertion is for (its `aud`).
///
/// ```
/// use tower_oauth2::{AssertionAudience, ClientAuth, JwsAlgorithm, JwtSigningKey};
///
/// let auth = ClientAuth::client_secret_jwt("my-app", "a-long-shared-secret-0123456789abcdef")
///     .with_assertion_audience(AssertionAudience::Issuer("https://auth.example.com".into()));
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
    fn resolve<'a>(&'a self, token_url: &'a url::Url) -> &'a str {
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

/// 128 random bits from the operating system's CSPRNG (ring's `SystemRandom`), base64url.
fn new_jti() -> Result<String, Error> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| JwtError::Signing)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
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
        let secret = client_secret.into();
        let key = JwtSigningKey {
            algorithm: JwsAlgorithm::HS256,
            kid: None,
            key: Arc::new(EncodingKey::from_secret(secret.expose().as_bytes())),
            secret: Some(secret),
        };
        Self::jwt(client_id.into(), key, false)
    }

    /// `client_secret_jwt` with HS256, HS384 or HS512; any other algorithm is
    /// [`JwtError::AlgorithmMismatch`].
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
        let key = JwtSigningKey::hmac(client_secret, algorithm)?;
        Ok(Self::jwt(client_id.into(), key, false))
    }

    /// `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): each request carries a new JWT signed
    /// with the client's private key, whose public half the server knows (the client's
    /// registered `jwks` or `jwks_uri`; the key's `kid` says which).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtSigningKey};
    ///
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client.key.pem")).unwrap();
    /// let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::ES256)?.with_kid("key-1");
    /// let auth = ClientAuth::private_key_jwt("my-service", key);
    /// assert_eq!(auth.method(), "private_key_jwt");
    /// assert_eq!(auth.signing_algorithm(), Some("ES256"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn private_key_jwt(client_id: impl Into<String>, key: JwtSigningKey) -> Self {
        Self::jwt(client_id.into(), key, true)
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
    ///     .with_assertion_audience(AssertionAudience::Issuer("https://auth.example.com".into()));
    /// assert_eq!(auth.method(), "client_secret_jwt");
    /// ```
    #[must_use]
    pub fn with_assertion_audience(mut self, audience: AssertionAudience) -> Self {
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
    ///     .with_assertion_lifetime(Duration::from_secs(30));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_assertion_lifetime(mut self, lifetime: Duration) -> Self {
        if let Method::Jwt(jwt) = &mut self.method {
            Arc::make_mut(jwt).lifetime = lifetime;
        }
        self
    }
}

#[cfg(test)]
mod tests {
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
