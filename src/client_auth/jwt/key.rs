//! Signing keys: [`JwtSigningKey`] from PEM, JWK or a shared secret, [`JwsAlgorithm`], and
//! [`JwtError`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};
use simple_asn1::{oid, ASN1Block, BigInt, BigUint};
use zeroize::{Zeroize, Zeroizing};

use super::der::{der, ec_algorithm, explicit, pkcs8, pkcs8_key, sec1_to_pkcs8};
use crate::error::Error;
use crate::secret::Secret;

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
pub(super) enum KeyType {
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
    /// `private_key_jwt` was given a shared-secret (HMAC) key: OIDC Core §9 wants an
    /// asymmetric key (RSA, EC or Ed25519). A shared secret is `client_secret_jwt`'s.
    SharedSecretKey(JwsAlgorithm),
    /// An HMAC key shorter than its hash (32 bytes for HS256, 48 for HS384, 64 for HS512;
    /// RFC 7518 §3.2).
    ShortHmacKey {
        /// The algorithm asked for.
        algorithm: JwsAlgorithm,
        /// The least number of bytes it takes.
        minimum: usize,
    },
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
            JwtError::SharedSecretKey(algorithm) => write!(
                f,
                "private_key_jwt needs an asymmetric key (RSA, EC or Ed25519), not an {algorithm} shared secret: use client_secret_jwt"
            ),
            JwtError::ShortHmacKey { algorithm, minimum } => write!(
                f,
                "an {algorithm} key must be at least {minimum} bytes long (RFC 7518 §3.2)"
            ),
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
pub(super) fn printable(text: &str) -> String {
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
    /// // `k`: 64 bytes, as HS512 needs.
    /// let jwk = r#"{"kty":"oct","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg"}"#;
    /// let key = JwtSigningKey::from_jwk_with_algorithm(jwk, JwsAlgorithm::HS512)?;
    /// assert_eq!(key.algorithm(), JwsAlgorithm::HS512);
    /// assert!(JwtSigningKey::from_jwk(jwk).is_err(), "an oct key must name its algorithm");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_jwk_with_algorithm(jwk: &str, algorithm: JwsAlgorithm) -> Result<Self, Error> {
        Self::jwk(jwk, Some(algorithm))
    }

    /// A shared-secret (HMAC) key for `HS256`, `HS384` or `HS512`. The secret must be at
    /// least as long as the hash (32, 48 or 64 bytes; RFC 7518 §3.2): a shorter one is
    /// [`JwtError::ShortHmacKey`]. (A client secret the server issued is taken as it is by
    /// [`ClientAuth::client_secret_jwt`](crate::ClientAuth::client_secret_jwt), with a
    /// warning.)
    ///
    /// ```
    /// use tower_oauth2::{Error, JwsAlgorithm, JwtError, JwtSigningKey};
    ///
    /// let key = JwtSigningKey::hmac("a-shared-secret-of-at-least-48-bytes-for-HS384!!", JwsAlgorithm::HS384)?;
    /// assert_eq!(key.algorithm(), JwsAlgorithm::HS384);
    /// assert!(JwtSigningKey::hmac("secret", JwsAlgorithm::ES256).is_err());
    /// let err = JwtSigningKey::hmac("too-short", JwsAlgorithm::HS256).unwrap_err();
    /// assert!(matches!(err, Error::Jwt(JwtError::ShortHmacKey { minimum: 32, .. })));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn hmac(secret: impl Into<Secret>, algorithm: JwsAlgorithm) -> Result<Self, Error> {
        check_fits(KeyType::Hmac, algorithm)?;
        let secret = secret.into();
        check_hmac_length(secret.expose().len(), algorithm)?;
        Ok(Self::hmac_key(secret, algorithm))
    }

    /// An HMAC key for an `HS*` `algorithm` (not checked here).
    pub(in crate::client_auth) fn hmac_key(secret: Secret, algorithm: JwsAlgorithm) -> Self {
        let key = EncodingKey::from_secret(secret.expose().as_bytes());
        JwtSigningKey {
            algorithm,
            kid: None,
            key: Arc::new(key),
            secret: Some(secret),
        }
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

    /// The shared secret of an HMAC key (for a JWK, the decoded bytes if they are text, else
    /// its `k`): redacted from server text.
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
        let text = |name: &str| {
            string_member(object, name, |name| {
                JwtError::InvalidKey(format!("the JWK's `{name}` is not a string")).into()
            })
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
            check_hmac_length(der.len(), algorithm)?;
            // Redacted from server text: the secret as the server likely holds it (the bytes,
            // if they are text), else as the JWK spells it.
            let secret = match std::str::from_utf8(&der) {
                Ok(text) => Secret::new(text),
                Err(_) => Secret::new(text("k")?.unwrap_or_default()),
            };
            JwtSigningKey {
                algorithm,
                kid: None,
                key: Arc::new(EncodingKey::from_secret(&der)),
                secret: Some(secret),
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

/// The least length of an HMAC key for `algorithm`: its hash's output (RFC 7518 §3.2).
pub(in crate::client_auth) fn hmac_minimum(algorithm: JwsAlgorithm) -> usize {
    match algorithm {
        JwsAlgorithm::HS384 => 48,
        JwsAlgorithm::HS512 => 64,
        _ => 32,
    }
}

fn check_hmac_length(length: usize, algorithm: JwsAlgorithm) -> Result<(), Error> {
    let minimum = hmac_minimum(algorithm);
    if length < minimum {
        return Err(JwtError::ShortHmacKey { algorithm, minimum }.into());
    }
    Ok(())
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

/// The string member `name` of a JSON object (a JWK, a service-account file): `None` if it is
/// absent or null, the error `not_a_string` makes (from the name) if it is not a string.
pub(crate) fn string_member<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    not_a_string: impl FnOnce(&str) -> Error,
) -> Result<Option<&'a str>, Error> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(not_a_string(name)),
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
