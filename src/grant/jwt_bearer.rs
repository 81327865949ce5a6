//! The JWT bearer grant (RFC 7523 §2.1): a signed JWT is the grant. Feature `jwt`.
//!
//! [`JwtBearer`] signs a new assertion on each fetch (`iss`, `sub`, `aud`, `iat`, `exp`, a
//! random `jti`, and any extra claims such as Google's `scope`) and sends it as
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...`, with the client's
//! authentication if the endpoint has one. Google service accounts use it: see
//! [`ServiceAccountKey`](crate::ServiceAccountKey).
//!
//! ```
//! use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtBearer, JwtSigningKey, OAuth2Layer, TokenEndpoint};
//!
//! # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
//! let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::RS256)?.with_kid("issuer-key-1");
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-app"))?;
//! let source = JwtBearer::new(endpoint, key, "https://issuer.example.com")
//!     .subject("user-42")
//!     .scope("api:read");
//! let layer = OAuth2Layer::new(source);
//! # let _ = layer;
//! # Ok::<(), tower_oauth2::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::client_auth::jwt::{AssertionClaims, DEFAULT_ASSERTION_LIFETIME};
use crate::client_auth::{AssertionAudience, JwtSigningKey};
use crate::endpoint::token::{param_setters, with_params, Params, TokenEndpoint};
use crate::error::Error;
use crate::secret::Secret;
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// The `grant_type` of the JWT bearer grant (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Gets tokens with the JWT bearer grant (RFC 7523 §2.1), signing a new assertion for each.
///
/// The assertion's claims: `iss` (given), `sub` (the issuer unless [`subject`](Self::subject)
/// sets it), `aud` (the token endpoint's URL unless
/// [`assertion_audience`](Self::assertion_audience) says otherwise), `iat` (the endpoint's
/// clock), `exp` (`iat` plus 60 s, see [`assertion_lifetime`](Self::assertion_lifetime)), a
/// random 128-bit `jti`, and the [`claim`](Self::claim)s added. Form parameters (`scope`,
/// ...) are set with [`scope`](Self::scope), [`param`](Self::param) and the like. The
/// assertion is redacted from server error text.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower_oauth2::{ClientAuth, HttpClient, JwsAlgorithm, JwtBearer, JwtSigningKey, TokenEndpoint};
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
/// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client.key.pem")).unwrap();
/// let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::ES256)?;
/// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-app"))
///     .http_client(HttpClient::new(server))
///     .build()?;
/// let source = JwtBearer::new(endpoint, key, "my-app").scope("api:read");
/// let token = source.fetch().await?;
/// assert_eq!(token.access_token().expose(), "abc");
/// let form = form.lock().unwrap();
/// assert!(form.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJ"));
/// assert!(form.ends_with("&scope=api%3Aread&client_id=my-app"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwtBearer {
    endpoint: TokenEndpoint,
    assertion: Assertion,
    params: Params,
}

/// What an assertion supplier returns, boxed.
type AssertionFuture = Pin<Box<dyn Future<Output = Result<Secret, Error>> + Send>>;

#[derive(Clone)]
enum Assertion {
    Signed(Arc<Signed>),
    Supplied(Arc<dyn Fn() -> AssertionFuture + Send + Sync>),
}

#[derive(Clone)]
struct Signed {
    key: JwtSigningKey,
    issuer: String,
    subject: Option<String>,
    audience: AssertionAudience,
    lifetime: Duration,
    claims: Map<String, Value>,
}

impl JwtBearer {
    /// A source that signs its assertions with `key`, as `issuer` (`iss`, and `sub` unless
    /// [`subject`](Self::subject) is set).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtBearer, JwtSigningKey, TokenEndpoint};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-app"))?;
    /// let source = JwtBearer::new(endpoint, key, "my-app");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(endpoint: TokenEndpoint, key: JwtSigningKey, issuer: impl Into<String>) -> Self {
        JwtBearer {
            endpoint,
            assertion: Assertion::Signed(Arc::new(Signed {
                key,
                issuer: issuer.into(),
                subject: None,
                audience: AssertionAudience::TokenEndpoint,
                lifetime: DEFAULT_ASSERTION_LIFETIME,
                claims: Map::new(),
            })),
            params: Params::new(),
        }
    }

    /// A source whose assertions come from `supplier`, an async function called once per
    /// fetch: an assertion made elsewhere (a workload identity token read from a file, a
    /// signing service). An error it returns is the fetch's. Do I/O asynchronously in it (or
    /// in `tokio::task::spawn_blocking`): it runs on the fetching task.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, JwtBearer, Secret, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-app"))?;
    /// let source = JwtBearer::from_assertion_fn(endpoint, || async {
    ///     let jwt = tokio::fs::read_to_string("/var/run/secrets/tokens/oidc-token")
    ///         .await
    ///         .map_err(Error::source_error)?;
    ///     Ok(Secret::new(jwt.trim()))
    /// });
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_assertion_fn<F, Fut>(endpoint: TokenEndpoint, supplier: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Secret, Error>> + Send + 'static,
    {
        let supplier = move || -> AssertionFuture { Box::pin(supplier()) };
        JwtBearer {
            endpoint,
            assertion: Assertion::Supplied(Arc::new(supplier)),
            params: Params::new(),
        }
    }

    fn signed(mut self, change: impl FnOnce(&mut Signed)) -> Self {
        if let Assertion::Signed(signed) = &mut self.assertion {
            change(Arc::make_mut(signed));
        }
        self
    }

    /// Sets the assertion's `sub` (default: the issuer): the user or service the token is
    /// for (a Google Workspace user, for domain-wide delegation). This setter and the three
    /// below shape the assertions the source signs: a source made with
    /// [`from_assertion_fn`](Self::from_assertion_fn) ignores them.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtBearer, JwtSigningKey, TokenEndpoint};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-app"))?;
    /// let source = JwtBearer::new(endpoint, key, "my-app").subject("user@example.com");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[must_use]
    pub fn subject(self, subject: impl Into<String>) -> Self {
        let subject = subject.into();
        self.signed(|signed| signed.subject = Some(subject))
    }

    /// Sets the assertion's `aud` (default: the token endpoint's URL).
    ///
    /// ```
    /// use tower_oauth2::{AssertionAudience, ClientAuth, JwsAlgorithm, JwtBearer, JwtSigningKey, TokenEndpoint};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-app"))?;
    /// let source = JwtBearer::new(endpoint, key, "my-app")
    ///     .assertion_audience(AssertionAudience::Issuer("https://auth.example.com".into()));
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[must_use]
    pub fn assertion_audience(self, audience: AssertionAudience) -> Self {
        self.signed(|signed| signed.audience = audience)
    }

    /// Sets how long each assertion is valid: `exp` = `iat` + this, in whole seconds, at least
    /// one (default: 60 s; Google accepts at most one hour).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtBearer, JwtSigningKey, TokenEndpoint};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-app"))?;
    /// let source = JwtBearer::new(endpoint, key, "my-app").assertion_lifetime(Duration::from_secs(300));
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[must_use]
    pub fn assertion_lifetime(self, lifetime: Duration) -> Self {
        self.signed(|signed| signed.lifetime = lifetime)
    }

    /// Adds a claim to every assertion (Google's `scope`, say), replacing an earlier one of
    /// the same name. The registered claims (`iss`, `sub`, `aud`, `iat`, `exp`, `jti`) are
    /// the source's own and cannot be replaced this way.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, JwsAlgorithm, JwtBearer, JwtSigningKey, TokenEndpoint};
    ///
    /// let key = JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256)?;
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-app"))?;
    /// let source = JwtBearer::new(endpoint, key, "my-app")
    ///     .claim("scope", "https://www.googleapis.com/auth/cloud-platform")
    ///     .claim("tenant", serde_json::json!({"id": 7}));
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[must_use]
    pub fn claim(self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.signed(|signed| {
            signed.claims.insert(name, value);
        })
    }

    /// Requests a new token with a new assertion.
    ///
    /// This is what [`TokenSource::fetch_token`] does; put the source behind a
    /// [`TokenCache`](crate::TokenCache) or an [`OAuth2Layer`](crate::OAuth2Layer).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, JwtBearer, Secret, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
    /// #     ))))
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("app"))
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let source = JwtBearer::from_assertion_fn(endpoint, || async { Ok(Secret::new("eyJ.made.elsewhere")) });
    /// assert_eq!(source.fetch().await?.access_token().expose(), "abc");
    /// # Ok(()) }
    /// ```
    pub async fn fetch(&self) -> Result<Token, Error> {
        let assertion = match &self.assertion {
            Assertion::Signed(signed) => AssertionClaims {
                issuer: &signed.issuer,
                subject: signed.subject.as_deref().unwrap_or(&signed.issuer),
                audience: &signed.audience,
                token_url: self.endpoint.token_url(),
                now: self.endpoint.clock().now(),
                lifetime: signed.lifetime,
                extra: &signed.claims,
            }
            .sign(&signed.key)?,
            Assertion::Supplied(supplier) => supplier().await?,
        };
        let grant = [
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("assertion", assertion.expose()),
        ];
        let form = with_params(&grant, &self.params);
        // An HMAC key's secret is redacted from server text, like a client secret.
        let key_secret = match &self.assertion {
            Assertion::Signed(signed) => signed.key.secret().map(Secret::expose),
            Assertion::Supplied(_) => None,
        };
        self.endpoint
            .request_token_redacting(&form, key_secret.as_slice())
            .await
    }
}

param_setters!(JwtBearer);

impl TokenSource for JwtBearer {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }

    /// With a signing key: the token URL, client id, grant, the assertion's issuer, subject
    /// and audience, and scope. `None` with an assertion supplier (who the assertion stands
    /// for is unknown) or with claims of your own (they may tell tokens apart, and hold
    /// secrets): give the cache a [`SharedStore::key`](crate::store::SharedStore::key).
    fn store_key(&self) -> Option<crate::store::StoreKey> {
        let Assertion::Signed(signed) = &self.assertion else {
            return None;
        };
        if !signed.claims.is_empty() {
            return None;
        }
        let subject = signed.subject.as_deref().unwrap_or(&signed.issuer);
        let audience = signed.audience.resolve(self.endpoint.token_url());
        let parts = [
            ("iss", signed.issuer.as_str()),
            ("sub", subject),
            ("aud", audience),
        ];
        self.endpoint.store_key(
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            &self.params,
            &parts,
        )
    }
}

impl fmt::Debug for JwtBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("JwtBearer");
        s.field("endpoint", &self.endpoint);
        match &self.assertion {
            Assertion::Signed(signed) => s
                .field("key", &signed.key)
                .field("issuer", &signed.issuer)
                .field("subject", &signed.subject)
                .field("audience", &signed.audience)
                .field("lifetime", &signed.lifetime)
                .field("claims", &signed.claims.keys().collect::<Vec<_>>()),
            Assertion::Supplied(_) => s.field("assertion", &"supplied"),
        };
        s.field("params", &self.params).finish()
    }
}
