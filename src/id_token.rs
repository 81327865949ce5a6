//! OpenID Connect ID tokens (OIDC Core §2, §3.1.3.7), feature `jwt`: their signature and claims
//! checked by [`OAuth2Client::verify_id_token`], their claims read through [`IdTokenClaims`].
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # const SECRET: &str = "a-long-client-secret-0123456789abcdef";
//! # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
//! #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",
//! #         "id_token_signing_alg_values_supported":["HS256"]}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", SECRET))
//!     .http_client(HttpClient::new(server)) // a stand-in OpenID provider
//!     .discover("https://auth.example.com")
//!     .await?;
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//! # let claims = serde_json::json!({"iss":"https://auth.example.com","sub":"user-7","aud":"my-app",
//! #     "iat":now,"exp":now + 300,"nonce":"n-0S6_WzA2Mj","email":"alice@example.com"});
//! # let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
//! # let raw = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
//! // `raw`: the `id_token` of a token response, `n-0S6_WzA2Mj` the nonce the login sent.
//! let id_token = client.verify_id_token(&raw, Some("n-0S6_WzA2Mj")).await?;
//! assert_eq!(id_token.claims().subject(), "user-7");
//! assert_eq!(id_token.claims().email(), Some("alice@example.com"));
//! # Ok(()) }
//! ```
//!
//! # What is checked
//!
//! In this order; the first failure is the error, [`Error::IdToken`] with an [`IdTokenError`]
//! that says which check failed (and what was expected and found, for values that are not
//! secret):
//!
//! 1. the token is a signed JWT (JWS compact serialization); an encrypted ID token (JWE) is
//!    refused, and so is a header with critical extensions (`crit`);
//! 2. its `alg` is one the server advertises (`id_token_signing_alg_values_supported` of the
//!    discovery document; `RS256` alone when the client has no metadata or the document does
//!    not say), and never `none`;
//! 3. the signature, checked by jsonwebtoken (ring) with:
//!    - for `RS*`, `PS*`, `ES256`, `ES384` and `EdDSA`, a key of the server's JSON Web Key Set
//!      ([`OAuth2Client::jwks_url`]): the one the header's `kid` names, or, without a `kid`,
//!      the only key of the algorithm's type. The set is fetched once and kept by the client
//!      (its clones share it); a `kid` it does not have makes the client fetch it again (the
//!      server rotated its keys), at most once a minute by the client's clock, and
//!      concurrent verifications share one fetch. A failed fetch is the transport or HTTP
//!      error itself ([`Error::HttpStatus`], [`Error::Timeout`],
//!      [`Error::MalformedResponse`], [`Error::BodyTooLarge`], ...), not an `IdToken` error;
//!    - for `HS256`, `HS384` and `HS512`, the client secret (OIDC Core §10.1), never a key
//!      from the key set;
//! 4. `iss` equals the client's [`issuer`](OAuth2Client::issuer) (a client without one cannot
//!    verify ID tokens: build it by discovery or give the builder an issuer);
//! 5. `sub` is a non-empty string;
//! 6. `aud` (a string or an array) contains the client id;
//! 7. `azp`, when present, equals the client id; it is required when `aud` has several
//!    values;
//! 8. `exp` is not past and `iat` is not in the future, by the client's clock (the token
//!    endpoint's, [`TokenEndpoint::clock`](crate::TokenEndpoint::clock)), each with a
//!    [`LEEWAY`] of 60 s for clock skew;
//! 9. when a nonce is expected, the token's `nonce` equals it (a token with a nonce that was
//!    not expected is accepted).
//!
//! The raw token is a [`Secret`]: neither [`IdToken`]'s `Debug` nor any error shows it, nor
//! the nonce.

use std::fmt;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tracing::Instrument as _;

use crate::client::OAuth2Client;
use crate::error::{sanitize_server_text, Error};
use crate::secret::{same_secret, Secret};

/// The clock skew tolerated when `exp` and `iat` are checked: a token is accepted until 60 s
/// after its `exp`, and with an `iat` up to 60 s ahead of the client's clock.
///
/// ```
/// assert_eq!(tower_oauth2::id_token::LEEWAY.as_secs(), 60);
/// ```
pub const LEEWAY: Duration = Duration::from_secs(60);

/// A verified ID token: its claims, and the raw JWT (for an `id_token_hint`, say).
///
/// `Debug` shows the claims as [`IdTokenClaims`] does, never the raw JWT.
///
/// ```
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// # use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # const SECRET: &str = "a-long-client-secret-0123456789abcdef";
/// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
/// #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",
/// #         "id_token_signing_alg_values_supported":["HS256"]}"#;
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
/// # });
/// # let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", SECRET))
/// #     .http_client(HttpClient::new(server)).discover("https://auth.example.com").await?;
/// # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
/// # let claims = serde_json::json!({"iss":"https://auth.example.com","sub":"user-7","aud":"my-app","iat":now,"exp":now + 300});
/// # let raw = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims,
/// #     &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
/// let id_token = client.verify_id_token(&raw, None).await?;
/// assert_eq!(id_token.claims().subject(), "user-7");
/// assert!(!format!("{id_token:?}").contains(&raw));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct IdToken {
    raw: Secret,
    claims: IdTokenClaims,
}

impl IdToken {
    /// The verified claims.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # const SECRET: &str = "a-long-client-secret-0123456789abcdef";
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",
    /// #         "id_token_signing_alg_values_supported":["HS256"]}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// # let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", SECRET))
    /// #     .http_client(HttpClient::new(server)).discover("https://auth.example.com").await?;
    /// # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    /// # let claims = serde_json::json!({"iss":"https://auth.example.com","sub":"user-7","aud":"my-app","iat":now,"exp":now + 300});
    /// # let raw = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims,
    /// #     &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
    /// let id_token = client.verify_id_token(&raw, None).await?;
    /// assert_eq!(id_token.claims().issuer(), "https://auth.example.com");
    /// # Ok(()) }
    /// ```
    pub fn claims(&self) -> &IdTokenClaims {
        &self.claims
    }

    /// The raw JWT, as received (for an `id_token_hint` at the end-session endpoint, say).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # const SECRET: &str = "a-long-client-secret-0123456789abcdef";
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",
    /// #         "id_token_signing_alg_values_supported":["HS256"]}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// # let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", SECRET))
    /// #     .http_client(HttpClient::new(server)).discover("https://auth.example.com").await?;
    /// # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    /// # let claims = serde_json::json!({"iss":"https://auth.example.com","sub":"user-7","aud":"my-app","iat":now,"exp":now + 300});
    /// # let raw = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims,
    /// #     &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
    /// let id_token = client.verify_id_token(&raw, None).await?;
    /// let hint = id_token.as_str().expose(); // for the end-session request's id_token_hint
    /// assert_eq!(hint, raw);
    /// # Ok(()) }
    /// ```
    pub fn as_str(&self) -> &Secret {
        &self.raw
    }
}

impl fmt::Debug for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdToken")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// Generates an accessor of [`IdTokenClaims`] with its example: the setup (a stand-in server
/// and a token carrying `$claims`), then `$check`.
macro_rules! claims_doc {
    ($claims:literal, $check:literal) => {
        concat!(
            "```\n",
            "# use bytes::Bytes;\n",
            "# use http_body_util::Full;\n",
            "# use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};\n",
            "# #[tokio::main(flavor = \"current_thread\")] async fn main() -> Result<(), tower_oauth2::Error> {\n",
            "# const SECRET: &str = \"a-long-client-secret-0123456789abcdef\";\n",
            "# let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {\n",
            "#     let body = r#\"{\"issuer\":\"https://auth.example.com\",\"token_endpoint\":\"https://auth.example.com/token\",\n",
            "#         \"id_token_signing_alg_values_supported\":[\"HS256\"]}\"#;\n",
            "#     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))\n",
            "# });\n",
            "# let client = OAuth2Client::builder(ClientAuth::client_secret_basic(\"my-app\", SECRET))\n",
            "#     .http_client(HttpClient::new(server)).discover(\"https://auth.example.com\").await?;\n",
            "# let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();\n",
            "# let mut claims = serde_json::json!({\"iss\":\"https://auth.example.com\",\"sub\":\"user-7\",\"aud\":\"my-app\",\"iat\":now,\"exp\":now + 300});\n",
            "# let more: serde_json::Value = serde_json::from_str(r#\"", $claims, "\"#).unwrap();\n",
            "# claims.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());\n",
            "# let raw = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims,\n",
            "#     &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())).unwrap();\n",
            "let id_token = client.verify_id_token(&raw, None).await?;\n",
            "let claims = id_token.claims();\n",
            $check,
            "\n# Ok(()) }\n",
            "```"
        )
    };
}

/// The claims of a verified ID token (OIDC Core §2): the registered ones through their
/// accessors, every claim through [`get`](Self::get) and [`as_json`](Self::as_json).
///
/// `Debug` shows `iss`, `sub`, `aud`, `exp`, `iat` and the names of the other claims, not
/// their values (personal data, the nonce).
///
#[doc = claims_doc!(
    r#"{"email":"alice@example.com"}"#,
    "assert_eq!(claims.subject(), \"user-7\");\nlet shown = format!(\"{claims:?}\");\nassert!(shown.contains(\"email\") && !shown.contains(\"alice\"));"
)]
#[derive(Clone)]
pub struct IdTokenClaims {
    issuer: String,
    subject: String,
    audience: Vec<String>,
    expires_at: SystemTime,
    issued_at: SystemTime,
    claims: Map<String, Value>,
}

impl IdTokenClaims {
    /// `iss`: the issuer, equal to the client's.
    ///
    #[doc = claims_doc!("{}", "assert_eq!(claims.issuer(), \"https://auth.example.com\");")]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `sub`: the user's identifier at this issuer (unique and never reassigned there: the key
    /// to identify a user by, with the issuer).
    ///
    #[doc = claims_doc!("{}", "assert_eq!(claims.subject(), \"user-7\");")]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `aud`: the audiences, the client id among them (one value when `aud` is a string).
    ///
    #[doc = claims_doc!(
        r#"{"aud":["my-app","other-api"],"azp":"my-app"}"#,
        "assert_eq!(claims.audience(), [\"my-app\", \"other-api\"]);"
    )]
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// `exp`: when the token expires.
    ///
    #[doc = claims_doc!("{}", "assert!(claims.expires_at() > std::time::SystemTime::now());")]
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// `iat`: when the token was issued.
    ///
    #[doc = claims_doc!("{}", "assert!(claims.issued_at() < claims.expires_at());")]
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// `nonce`: the value the authorization request sent, when it sent one.
    ///
    #[doc = claims_doc!(r#"{"nonce":"n-0S6_WzA2Mj"}"#, "assert_eq!(claims.nonce(), Some(\"n-0S6_WzA2Mj\"));")]
    pub fn nonce(&self) -> Option<&str> {
        self.string("nonce")
    }

    /// `azp`: the authorized party, the client the token was issued to (checked to be this
    /// client when present).
    ///
    #[doc = claims_doc!(r#"{"azp":"my-app"}"#, "assert_eq!(claims.authorized_party(), Some(\"my-app\"));")]
    pub fn authorized_party(&self) -> Option<&str> {
        self.string("azp")
    }

    /// `auth_time`: when the user authenticated, when the token says (it must when the request
    /// asked with `max_age`).
    ///
    #[doc = claims_doc!(
        r#"{"auth_time":1700000000}"#,
        "assert_eq!(claims.auth_time(), Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)));"
    )]
    pub fn auth_time(&self) -> Option<SystemTime> {
        self.claims.get("auth_time").and_then(seconds)
    }

    /// `email` (scope `email`), not necessarily verified: see
    /// [`email_verified`](Self::email_verified).
    ///
    #[doc = claims_doc!(r#"{"email":"alice@example.com"}"#, "assert_eq!(claims.email(), Some(\"alice@example.com\"));")]
    pub fn email(&self) -> Option<&str> {
        self.string("email")
    }

    /// `email_verified`: whether the provider checked that the e-mail address is the user's.
    ///
    #[doc = claims_doc!(r#"{"email_verified":true}"#, "assert_eq!(claims.email_verified(), Some(true));")]
    pub fn email_verified(&self) -> Option<bool> {
        self.claims.get("email_verified").and_then(Value::as_bool)
    }

    /// `name` (scope `profile`): the user's full name.
    ///
    #[doc = claims_doc!(r#"{"name":"Alice Liddell"}"#, "assert_eq!(claims.name(), Some(\"Alice Liddell\"));")]
    pub fn name(&self) -> Option<&str> {
        self.string("name")
    }

    /// One claim by name, if present.
    ///
    #[doc = claims_doc!(
        r#"{"locale":"fr-FR"}"#,
        "assert_eq!(claims.get(\"locale\").and_then(|v| v.as_str()), Some(\"fr-FR\"));\nassert_eq!(claims.get(\"picture\"), None);"
    )]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// Every claim of the token, as sent.
    ///
    #[doc = claims_doc!(r#"{"acr":"urn:mace:incommon:iap:silver"}"#, "assert_eq!(claims.as_json().len(), 6);")]
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.claims
    }

    fn string(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

impl fmt::Debug for IdTokenClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: [&str; 5] = ["iss", "sub", "aud", "exp", "iat"];
        f.debug_struct("IdTokenClaims")
            .field("iss", &self.issuer)
            .field("sub", &self.subject)
            .field("aud", &self.audience)
            .field("exp", &self.expires_at)
            .field("iat", &self.issued_at)
            .field(
                "other_claims",
                &self
                    .claims
                    .keys()
                    .filter(|name| !SHOWN.contains(&name.as_str()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why an ID token was refused: `Error::IdToken(IdTokenError)`. Values taken from the token
/// (an issuer, audiences, an algorithm, a key id) are made safe to print like server text;
/// neither the token nor a nonce is ever shown.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_oauth2::{Error, IdTokenError};
///
/// fn explain(err: &Error) -> &'static str {
///     match err {
///         Error::IdToken(IdTokenError::Expired { .. }) => "the login took too long: try again",
///         Error::IdToken(IdTokenError::NonceMismatch | IdTokenError::MissingNonce) => "replayed login",
///         Error::IdToken(_) => "the identity provider's answer cannot be trusted",
///         _ if err.is_transient() => "the identity provider is unreachable: try again",
///         _ => "login failed",
///     }
/// }
/// let expired = IdTokenError::Expired { expired_at: UNIX_EPOCH, now: UNIX_EPOCH + Duration::from_secs(3600) };
/// assert_eq!(explain(&Error::IdToken(expired)), "the login took too long: try again");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not a signed JWT in compact serialization (three base64url parts, JSON header and
    /// payload), or with critical header extensions (`crit`) this crate does not understand.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::Malformed("the header is not base64url".into());
    /// assert!(err.to_string().contains("base64url"));
    /// ```
    Malformed(String),
    /// The token response has no `id_token` although the login asked for `openid`: an OpenID
    /// Connect server always sends one (OpenID Connect Core §3.1.3.3).
    ///
    /// ```
    /// assert!(tower_oauth2::IdTokenError::Missing.to_string().contains("openid"));
    /// ```
    Missing,
    /// An encrypted ID token (JWE, five parts): decrypting is not supported; register the
    /// client without `id_token_encrypted_response_alg`.
    ///
    /// ```
    /// assert!(tower_oauth2::IdTokenError::Encrypted.to_string().contains("encrypted"));
    /// ```
    Encrypted,
    /// `alg: none`: an unsigned token, never accepted.
    ///
    /// ```
    /// assert!(tower_oauth2::IdTokenError::Unsigned.to_string().contains("none"));
    /// ```
    Unsigned,
    /// The token's `alg` is not one the server advertises in
    /// `id_token_signing_alg_values_supported` (`RS256` when the client has no metadata).
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::AlgorithmNotAllowed {
    ///     found: "HS256".into(),
    ///     allowed: vec!["RS256".into()],
    /// };
    /// assert!(err.to_string().contains("HS256"));
    /// ```
    AlgorithmNotAllowed {
        /// The token's `alg`.
        found: String,
        /// The algorithms allowed.
        allowed: Vec<String>,
    },
    /// An `alg` the server advertises but this crate cannot verify (`ES512`, say).
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::UnsupportedAlgorithm("ES512".into());
    /// assert!(err.to_string().contains("ES512"));
    /// ```
    UnsupportedAlgorithm(String),
    /// An HMAC-signed token (`HS256`, ...) for a client that has no client secret to verify
    /// it with.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::NoClientSecret { algorithm: "HS256".into() };
    /// assert!(err.to_string().contains("client secret"));
    /// ```
    NoClientSecret {
        /// The token's `alg`.
        algorithm: String,
    },
    /// The server's key set has no key for the token, even after fetching it again (or it
    /// was fetched less than a minute ago): no key with the token's `kid` for its `alg`, or,
    /// without a `kid`, no key of the algorithm's type.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::NoMatchingKey { kid: Some("2026-11".into()), algorithm: "RS256".into() };
    /// assert!(err.to_string().contains("2026-11"));
    /// ```
    NoMatchingKey {
        /// The token's `kid`, if it has one.
        kid: Option<String>,
        /// The token's `alg`.
        algorithm: String,
    },
    /// The token has no `kid` and the key set has several keys of the algorithm's type:
    /// which one signed it cannot be told (OIDC Core §10.1 requires a `kid` then).
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::AmbiguousKey { algorithm: "ES256".into() };
    /// assert!(err.to_string().contains("kid"));
    /// ```
    AmbiguousKey {
        /// The token's `alg`.
        algorithm: String,
    },
    /// The signature does not verify with the key.
    ///
    /// ```
    /// assert!(tower_oauth2::IdTokenError::InvalidSignature.to_string().contains("signature"));
    /// ```
    InvalidSignature,
    /// The client has no issuer to compare `iss` with: build it by discovery, or give
    /// [`OAuth2ClientBuilder::issuer`](crate::OAuth2ClientBuilder::issuer).
    ///
    /// ```
    /// assert!(tower_oauth2::IdTokenError::NoIssuer.to_string().contains("issuer"));
    /// ```
    NoIssuer,
    /// `iss` is not the client's issuer.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::IssuerMismatch {
    ///     expected: "https://auth.example.com".into(),
    ///     found: "https://evil.example.com".into(),
    /// };
    /// assert!(err.to_string().contains("https://evil.example.com"));
    /// ```
    IssuerMismatch {
        /// The client's issuer.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` does not contain the client id: the token was issued to another client.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::AudienceMismatch {
    ///     expected: "my-app".into(),
    ///     found: vec!["other-app".into()],
    /// };
    /// assert!(err.to_string().contains("other-app"));
    /// ```
    AudienceMismatch {
        /// The client id.
        expected: String,
        /// The token's audiences.
        found: Vec<String>,
    },
    /// `aud` has several values and there is no `azp` to say which is the client the token
    /// was issued to.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::MissingAuthorizedParty { audiences: 2 };
    /// assert!(err.to_string().contains("azp"));
    /// ```
    MissingAuthorizedParty {
        /// How many audiences the token has.
        audiences: usize,
    },
    /// `azp` is not the client id.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::AuthorizedPartyMismatch {
    ///     expected: "my-app".into(),
    ///     found: "other-app".into(),
    /// };
    /// assert!(err.to_string().contains("other-app"));
    /// ```
    AuthorizedPartyMismatch {
        /// The client id.
        expected: String,
        /// The token's `azp`.
        found: String,
    },
    /// The token expired: `exp`, plus the [`LEEWAY`], is past.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let err = tower_oauth2::IdTokenError::Expired { expired_at: UNIX_EPOCH, now: UNIX_EPOCH + Duration::from_secs(90) };
    /// assert!(err.to_string().contains("expired"));
    /// ```
    Expired {
        /// The token's `exp`.
        expired_at: SystemTime,
        /// The client's time.
        now: SystemTime,
    },
    /// `iat` is in the future by more than the [`LEEWAY`]: the server's clock, or the
    /// client's, is wrong.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let err = tower_oauth2::IdTokenError::IssuedInFuture { issued_at: UNIX_EPOCH + Duration::from_secs(900), now: UNIX_EPOCH };
    /// assert!(err.to_string().contains("future"));
    /// ```
    IssuedInFuture {
        /// The token's `iat`.
        issued_at: SystemTime,
        /// The client's time.
        now: SystemTime,
    },
    /// A nonce was expected and the token has none.
    ///
    /// ```
    /// assert!(tower_oauth2::IdTokenError::MissingNonce.to_string().contains("nonce"));
    /// ```
    MissingNonce,
    /// The token's `nonce` is not the one the authorization request sent (a replayed or
    /// injected token). Neither value is shown.
    ///
    /// ```
    /// assert!(tower_oauth2::IdTokenError::NonceMismatch.to_string().contains("nonce"));
    /// ```
    NonceMismatch,
    /// A required claim (`iss`, `sub`, `aud`, `exp`, `iat`) is missing.
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::MissingClaim("sub");
    /// assert!(err.to_string().contains("`sub`"));
    /// ```
    MissingClaim(&'static str),
    /// A claim has the wrong type or value (`exp` not a number, `aud` not a string or an array
    /// of strings, an empty `sub`, ...).
    ///
    /// ```
    /// let err = tower_oauth2::IdTokenError::InvalidClaim("exp");
    /// assert!(err.to_string().contains("`exp`"));
    /// ```
    InvalidClaim(&'static str),
}

impl fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ID token refused: ")?;
        match self {
            IdTokenError::Malformed(reason) => write!(f, "not a signed JWT: {reason}"),
            IdTokenError::Encrypted => f.write_str(
                "it is encrypted (JWE), which is not supported: register the client without \
                 id_token_encrypted_response_alg",
            ),
            IdTokenError::Unsigned => f.write_str("it is unsigned (`alg: none`)"),
            IdTokenError::AlgorithmNotAllowed { found, allowed } => write!(
                f,
                "its algorithm `{found}` is not one the server advertises \
                 (id_token_signing_alg_values_supported: {allowed:?})"
            ),
            IdTokenError::UnsupportedAlgorithm(alg) => {
                write!(f, "its algorithm `{alg}` cannot be verified by this crate")
            }
            IdTokenError::NoClientSecret { algorithm } => write!(
                f,
                "it is signed with `{algorithm}`, an HMAC verified with the client secret, and \
                 this client has none"
            ),
            IdTokenError::NoMatchingKey { kid, algorithm } => match kid {
                Some(kid) => write!(
                    f,
                    "the server's key set has no key `{kid}` for `{algorithm}`, even fetched again"
                ),
                None => write!(
                    f,
                    "it has no `kid` and the server's key set has no key for `{algorithm}`"
                ),
            },
            IdTokenError::AmbiguousKey { algorithm } => write!(
                f,
                "it has no `kid` and the server's key set has several keys for `{algorithm}`"
            ),
            IdTokenError::InvalidSignature => f.write_str("its signature does not verify"),
            IdTokenError::Missing => f.write_str(
                "the token response has no `id_token`, although the login asked for `openid` \
                 (OpenID Connect Core §3.1.3.3)",
            ),
            IdTokenError::NoIssuer => f.write_str(
                "the client has no issuer to check `iss` against: build it by discovery or give \
                 the builder an issuer",
            ),
            IdTokenError::IssuerMismatch { expected, found } => {
                write!(f, "its issuer is {found:?}, expected {expected:?}")
            }
            IdTokenError::AudienceMismatch { expected, found } => {
                write!(
                    f,
                    "its audience {found:?} does not contain the client id {expected:?}"
                )
            }
            IdTokenError::MissingAuthorizedParty { audiences } => write!(
                f,
                "it has {audiences} audiences and no `azp` naming the client it was issued to"
            ),
            IdTokenError::AuthorizedPartyMismatch { expected, found } => write!(
                f,
                "its authorized party (`azp`) is {found:?}, expected the client id {expected:?}"
            ),
            IdTokenError::Expired { expired_at, now } => write!(
                f,
                "it expired {} s ago (more than the {} s leeway)",
                now.duration_since(*expired_at).unwrap_or_default().as_secs(),
                LEEWAY.as_secs()
            ),
            IdTokenError::IssuedInFuture { issued_at, now } => write!(
                f,
                "it was issued {} s in the future (more than the {} s leeway): a clock is wrong",
                issued_at.duration_since(*now).unwrap_or_default().as_secs(),
                LEEWAY.as_secs()
            ),
            IdTokenError::MissingNonce => f.write_str("a nonce was expected and it has none"),
            IdTokenError::NonceMismatch => {
                f.write_str("its nonce is not the one the authorization request sent")
            }
            IdTokenError::MissingClaim(claim) => write!(f, "it has no `{claim}` claim"),
            IdTokenError::InvalidClaim(claim) => {
                write!(f, "its `{claim}` claim has the wrong type or value")
            }
        }
    }
}

impl std::error::Error for IdTokenError {}

impl From<IdTokenError> for Error {
    fn from(err: IdTokenError) -> Self {
        Error::IdToken(err)
    }
}

impl OAuth2Client {
    /// Verifies an ID token (OIDC Core §3.1.3.7) and returns its claims: the signature with a
    /// key of the server's key set (or the client secret for `HS*`), the algorithm, `iss`,
    /// `aud`, `azp`, `exp`, `iat`, and `nonce` when `nonce` is given. See
    /// [what is checked](crate::id_token#what-is-checked); a refused token is
    /// [`Error::IdToken`], a failure to fetch the key set the transport or HTTP error.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, Error, HttpClient, IdTokenError, OAuth2Client};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # const SECRET: &str = "a-long-client-secret-0123456789abcdef";
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",
    /// #         "id_token_signing_alg_values_supported":["HS256"]}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", SECRET))
    ///     .http_client(HttpClient::new(server)) // a stand-in OpenID provider
    ///     .discover("https://auth.example.com")
    ///     .await?;
    /// # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    /// # let claims = serde_json::json!({"iss":"https://auth.example.com","sub":"user-7","aud":"my-app",
    /// #     "iat":now,"exp":now + 300,"nonce":"n-0S6_WzA2Mj"});
    /// # let raw = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims,
    /// #     &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
    /// let id_token = client.verify_id_token(&raw, Some("n-0S6_WzA2Mj")).await?;
    /// assert_eq!(id_token.claims().subject(), "user-7");
    ///
    /// // The same token for another login (another nonce) is refused.
    /// let err = client.verify_id_token(&raw, Some("another-nonce")).await.unwrap_err();
    /// assert!(matches!(err, Error::IdToken(IdTokenError::NonceMismatch)));
    /// # Ok(()) }
    /// ```
    pub async fn verify_id_token(&self, id_token: &str, nonce: Option<&str>) -> Result<IdToken, Error> {
        let span = tracing::debug_span!("verify_id_token");
        async {
            let result = self.check_id_token(id_token, nonce).await;
            match &result {
                Ok(_) => tracing::debug!("ID token verified"),
                Err(err) => tracing::debug!(error = %err.report(), "ID token refused"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn check_id_token(&self, id_token: &str, nonce: Option<&str>) -> Result<IdToken, Error> {
        let issuer = self.issuer().ok_or(IdTokenError::NoIssuer)?;
        let header = read_header(id_token)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            _ => return Err(malformed("the header has no string `alg`").into()),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(IdTokenError::Unsigned.into());
        }
        if header.contains_key("crit") {
            return Err(
                malformed("the header has critical extensions (`crit`), which are not supported").into(),
            );
        }
        let allowed = self.id_token_algorithms();
        if !allowed.iter().any(|a| a == alg) {
            return Err(IdTokenError::AlgorithmNotAllowed {
                found: sanitize_server_text(alg),
                allowed,
            }
            .into());
        }
        let algorithm = Algorithm::from_str(alg)
            .map_err(|_| IdTokenError::UnsupportedAlgorithm(sanitize_server_text(alg)))?;
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(malformed("the header's `kid` is not a string").into()),
        };
        let claims = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = self
                    .client_auth()
                    .secret()
                    .ok_or_else(|| IdTokenError::NoClientSecret {
                        algorithm: alg.to_owned(),
                    })?;
                decode(
                    id_token,
                    &DecodingKey::from_secret(secret.expose().as_bytes()),
                    algorithm,
                )?
            }
            _ => {
                let jwk = self.signing_key(kid, algorithm).await?;
                let key = DecodingKey::from_jwk(&jwk).map_err(|_| IdTokenError::InvalidSignature)?;
                decode(id_token, &key, algorithm)?
            }
        };
        let claims = self.check_claims(issuer, claims, nonce)?;
        Ok(IdToken {
            raw: Secret::new(id_token),
            claims,
        })
    }

    /// The algorithms ID tokens may be signed with: those given to the builder
    /// (`id_token_signing_algorithms`), else the metadata's
    /// `id_token_signing_alg_values_supported`, without `none`, or `RS256` (OIDC Core
    /// §3.1.3.7 item 7, OIDC Discovery §3).
    fn id_token_algorithms(&self) -> Vec<String> {
        if let Some(configured) = self.configured_id_token_algorithms() {
            return configured
                .iter()
                .filter(|alg| !alg.eq_ignore_ascii_case("none"))
                .cloned()
                .collect();
        }
        let advertised = self
            .metadata()
            .and_then(|m| m.as_json().get("id_token_signing_alg_values_supported"));
        match advertised {
            Some(Value::Array(algs)) => algs
                .iter()
                .filter_map(Value::as_str)
                .filter(|alg| !alg.eq_ignore_ascii_case("none"))
                .map(sanitize_server_text)
                .collect(),
            _ => vec!["RS256".to_owned()],
        }
    }

    /// The key of the server's key set for a token with `kid` and `algorithm`, fetching the
    /// set again (rate-limited) when it has none.
    async fn signing_key(&self, kid: Option<&str>, algorithm: Algorithm) -> Result<Jwk, Error> {
        let url = self.endpoint("jwks", self.jwks_url())?;
        let endpoint = self.token_endpoint();
        let (http, clock) = (endpoint.http(), &**endpoint.clock());
        let cache = self.jwks_cache();
        let mut keys = cache.keys(http, clock, url).await?;
        // At most one refresh per verification: the set as kept, then the set fetched again.
        for last in [false, true] {
            match select_key(&keys, kid, algorithm) {
                Selected::One(jwk) => return Ok(jwk.clone()),
                Selected::Several => {
                    return Err(IdTokenError::AmbiguousKey {
                        algorithm: algorithm_name(algorithm),
                    }
                    .into())
                }
                Selected::None if last => break,
                Selected::None => match cache.refresh(http, clock, url, &keys).await? {
                    Some(newer) if !Arc::ptr_eq(&newer, &keys) => keys = newer,
                    _ => break,
                },
            }
        }
        Err(IdTokenError::NoMatchingKey {
            kid: kid.map(sanitize_server_text),
            algorithm: algorithm_name(algorithm),
        }
        .into())
    }

    /// The claim checks of OIDC Core §3.1.3.7 (items 2-5, 9-11) on a token whose signature
    /// verified.
    fn check_claims(
        &self,
        issuer: &str,
        claims: Map<String, Value>,
        nonce: Option<&str>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let string = |name: &'static str| match claims.get(name) {
            None | Some(Value::Null) => Err(IdTokenError::MissingClaim(name)),
            Some(Value::String(value)) => Ok(value.as_str()),
            Some(_) => Err(IdTokenError::InvalidClaim(name)),
        };
        let time = |name: &'static str| match claims.get(name) {
            None | Some(Value::Null) => Err(IdTokenError::MissingClaim(name)),
            Some(value) => seconds(value).ok_or(IdTokenError::InvalidClaim(name)),
        };

        let iss = string("iss")?;
        if iss != issuer {
            return Err(IdTokenError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: sanitize_server_text(iss),
            });
        }
        let sub = string("sub")?;
        if sub.is_empty() {
            return Err(IdTokenError::InvalidClaim("sub"));
        }
        let audience: Vec<String> = match claims.get("aud") {
            None | Some(Value::Null) => return Err(IdTokenError::MissingClaim("aud")),
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(auds)) if !auds.is_empty() => auds
                .iter()
                .map(|aud| aud.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or(IdTokenError::InvalidClaim("aud"))?,
            Some(_) => return Err(IdTokenError::InvalidClaim("aud")),
        };
        let client_id = self.client_auth().client_id();
        if !audience.iter().any(|aud| aud == client_id) {
            return Err(IdTokenError::AudienceMismatch {
                expected: client_id.to_owned(),
                found: audience.iter().map(|aud| sanitize_server_text(aud)).collect(),
            });
        }
        match claims.get("azp") {
            None | Some(Value::Null) if audience.len() > 1 => {
                return Err(IdTokenError::MissingAuthorizedParty {
                    audiences: audience.len(),
                })
            }
            None | Some(Value::Null) => {}
            Some(Value::String(azp)) if azp == client_id => {}
            Some(Value::String(azp)) => {
                return Err(IdTokenError::AuthorizedPartyMismatch {
                    expected: client_id.to_owned(),
                    found: sanitize_server_text(azp),
                })
            }
            Some(_) => return Err(IdTokenError::InvalidClaim("azp")),
        }
        let now = self.token_endpoint().clock().now();
        let expires_at = time("exp")?;
        if expires_at.checked_add(LEEWAY).is_none_or(|limit| now >= limit) {
            return Err(IdTokenError::Expired {
                expired_at: expires_at,
                now,
            });
        }
        let issued_at = time("iat")?;
        if now.checked_add(LEEWAY).is_some_and(|limit| issued_at > limit) {
            return Err(IdTokenError::IssuedInFuture { issued_at, now });
        }
        if let Some(expected) = nonce {
            match claims.get("nonce") {
                None | Some(Value::Null) => return Err(IdTokenError::MissingNonce),
                Some(Value::String(found)) if same_secret(found, expected) => {}
                Some(_) => return Err(IdTokenError::NonceMismatch),
            }
        }
        Ok(IdTokenClaims {
            issuer: iss.to_owned(),
            subject: sub.to_owned(),
            audience,
            expires_at,
            issued_at,
            claims,
        })
    }
}

fn malformed(reason: &str) -> IdTokenError {
    IdTokenError::Malformed(reason.to_owned())
}

/// The JOSE header of a JWS in compact serialization, read without verifying anything (to
/// choose the key and refuse what must be refused before any verification).
fn read_header(id_token: &str) -> Result<Map<String, Value>, IdTokenError> {
    let parts = id_token.split('.').count();
    if parts == 5 {
        return Err(IdTokenError::Encrypted);
    }
    if parts != 3 {
        return Err(malformed("it does not have three dot-separated parts"));
    }
    let header = id_token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the header is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(header)) => Ok(header),
        _ => Err(malformed("the header is not a JSON object")),
    }
}

/// Verifies the signature with `key` (jsonwebtoken, ring) and returns the payload; the claims
/// are checked by [`OAuth2Client::check_claims`], with the client's clock.
fn decode(
    id_token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
) -> Result<Map<String, Value>, IdTokenError> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(id_token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(err) => Err(match err.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => IdTokenError::InvalidSignature,
            ErrorKind::Base64(_) => malformed("a part is not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => malformed("the payload is not a JSON object"),
            _ => malformed("it could not be decoded"),
        }),
    }
}

/// What the key set has for a token.
enum Selected<'a> {
    One(&'a Jwk),
    None,
    Several,
}

/// The key named by `kid` that fits `algorithm`; without a `kid`, the only key that fits.
fn select_key<'a>(keys: &'a JwkSet, kid: Option<&str>, algorithm: Algorithm) -> Selected<'a> {
    let mut fitting = keys.keys.iter().filter(|jwk| fits(jwk, algorithm));
    match kid {
        Some(kid) => fitting
            .find(|jwk| jwk.common.key_id.as_deref() == Some(kid))
            .map_or(Selected::None, Selected::One),
        None => match (fitting.next(), fitting.next()) {
            (Some(jwk), None) => Selected::One(jwk),
            (None, _) => Selected::None,
            (Some(_), Some(_)) => Selected::Several,
        },
    }
}

/// Whether `jwk` can verify `algorithm`: the key type (and curve) it needs, and the key's own
/// `alg` when it names one.
fn fits(jwk: &Jwk, algorithm: Algorithm) -> bool {
    let type_fits = match (&jwk.algorithm, algorithm) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => ec.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => ec.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => okp.curve == EllipticCurve::Ed25519,
        _ => false,
    };
    type_fits
        && jwk
            .common
            .key_algorithm
            .is_none_or(|alg| alg.to_string() == algorithm_name(algorithm))
}

fn algorithm_name(algorithm: Algorithm) -> String {
    format!("{algorithm:?}")
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional (cut to whole
/// seconds); `None` for anything else.
fn seconds(value: &Value) -> Option<SystemTime> {
    let secs = match value.as_u64() {
        Some(secs) => secs,
        None => {
            let secs = value.as_f64()?;
            if !secs.is_finite() || secs < 0.0 || secs >= u64::MAX as f64 {
                return None;
            }
            secs as u64
        }
    };
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates() {
        let at = |s: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(seconds(&serde_json::json!(1_700_000_000)), at(1_700_000_000));
        assert_eq!(seconds(&serde_json::json!(1_700_000_000.9)), at(1_700_000_000));
        assert_eq!(seconds(&serde_json::json!(-1)), None);
        assert_eq!(seconds(&serde_json::json!(-0.5)), None);
        assert_eq!(seconds(&serde_json::json!("1700000000")), None);
        assert_eq!(seconds(&serde_json::json!(1e300)), None);
    }

    #[test]
    fn headers_are_read_without_trusting_them() {
        assert_eq!(read_header("a.b.c.d.e"), Err(IdTokenError::Encrypted));
        assert!(matches!(read_header("a.b"), Err(IdTokenError::Malformed(_))));
        assert!(matches!(read_header("!!.b.c"), Err(IdTokenError::Malformed(_))));
        // `"x"`: JSON, not an object.
        assert!(matches!(read_header("Ingi.b.c"), Err(IdTokenError::Malformed(_))));
        let header = read_header("eyJhbGciOiJSUzI1NiJ9.b.c").unwrap();
        assert_eq!(header["alg"], "RS256");
    }
}
