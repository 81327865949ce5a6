//! Google service-account keys: the JSON key file of a service account, as a [`JwtBearer`]
//! token source (RS256, `iss` = `client_email`, `aud` = `token_uri`, `scope` claim, `kid` =
//! `private_key_id`). Feature `jwt`.
//!
//! ```no_run
//! use tower_oauth2::{OAuth2Layer, ServiceAccountKey};
//!
//! # fn run() -> Result<(), tower_oauth2::Error> {
//! let key = ServiceAccountKey::from_file("service-account.json")?;
//! let source = key.token_source("https://www.googleapis.com/auth/cloud-platform")?;
//! let layer = OAuth2Layer::new(source);
//! # let _ = layer; Ok(()) }
//! ```
//!
//! Errors say which member is missing or wrong ([`JwtError::ServiceAccount`]), never what the
//! file holds. The strings of the JSON are wiped once read; the private key is then held as a
//! [`JwtSigningKey`].

use std::fmt;
use std::path::Path;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::client_auth::{AssertionAudience, ClientAuth, JwsAlgorithm, JwtError, JwtSigningKey};
use crate::endpoint::token::{TokenEndpoint, TokenEndpointBuilder};
use crate::error::Error;
use crate::grant::jwt_bearer::JwtBearer;

/// Google's token endpoint, for key files without `token_uri`.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A Google service-account key (the JSON file the console downloads): its `client_email`,
/// RSA `private_key`, `private_key_id` and `token_uri`.
///
/// `Debug` shows the email, the token URI and the key's `kid`, never the key.
///
/// ```
/// use tower_oauth2::ServiceAccountKey;
///
/// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
/// let json = serde_json::json!({
///     "type": "service_account",
///     "project_id": "my-project",
///     "private_key_id": "0123abcd",
///     "private_key": pem, // -----BEGIN PRIVATE KEY-----...
///     "client_email": "robot@my-project.iam.gserviceaccount.com",
///     "token_uri": "https://oauth2.googleapis.com/token",
/// })
/// .to_string();
/// let key = ServiceAccountKey::from_json(&json)?;
/// assert_eq!(key.client_email(), "robot@my-project.iam.gserviceaccount.com");
/// assert_eq!(key.kid(), Some("0123abcd"));
/// assert!(!format!("{key:?}").contains("PRIVATE"));
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct ServiceAccountKey {
    client_email: String,
    token_uri: String,
    project_id: Option<String>,
    key: JwtSigningKey,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("kid", &self.key.kid())
            .finish_non_exhaustive()
    }
}

fn invalid(what: impl Into<String>) -> Error {
    JwtError::ServiceAccount(what.into()).into()
}

impl ServiceAccountKey {
    /// Reads a key from the JSON of a key file. `type` must be `service_account`;
    /// `client_email` and `private_key` (PEM, PKCS#8 RSA) are required; `token_uri` defaults to
    /// Google's; `private_key_id` becomes the JWT's `kid`.
    ///
    /// ```
    /// use tower_oauth2::{Error, JwtError, ServiceAccountKey};
    ///
    /// let err = ServiceAccountKey::from_json(r#"{"type":"service_account","client_email":"a@b.c","private_key":"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}"#)
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Jwt(JwtError::ServiceAccount(_))));
    /// assert!(!err.to_string().contains("MIIE"));
    /// assert!(ServiceAccountKey::from_json(r#"{"type":"authorized_user"}"#).is_err());
    /// ```
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let mut value: Value = serde_json::from_str(json)
            .map_err(|e| invalid(format!("not JSON (line {}, column {})", e.line(), e.column())))?;
        let result = Self::from_value(&value);
        crate::client_auth::jwt::wipe_json(&mut value);
        result
    }

    /// Reads a key file (see [`from_json`](Self::from_json)). The file's contents are wiped
    /// once read.
    ///
    /// ```
    /// use tower_oauth2::{Error, ServiceAccountKey};
    ///
    /// let err = ServiceAccountKey::from_file("/nonexistent/key.json").unwrap_err();
    /// assert!(matches!(err, Error::Jwt(_)));
    /// assert!(err.to_string().contains("/nonexistent/key.json"));
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&json)
    }

    fn from_value(value: &Value) -> Result<Self, Error> {
        let object = value.as_object().ok_or_else(|| invalid("not a JSON object"))?;
        let text = |name: &str| {
            crate::client_auth::jwt::string_member(object, name, |name| {
                invalid(format!("`{name}` is not a string"))
            })
        };
        let required = |name: &str| text(name)?.ok_or_else(|| invalid(format!("`{name}` is missing")));
        match text("type")? {
            Some("service_account") => {}
            Some(_) => return Err(invalid("`type` is not \"service_account\"")),
            None => return Err(invalid("`type` is missing (expected \"service_account\")")),
        }
        let client_email = required("client_email")?.to_owned();
        let mut key = JwtSigningKey::from_pem(required("private_key")?, JwsAlgorithm::RS256).map_err(
            |err| match err {
                Error::Jwt(err) => invalid(format!("`private_key`: {err}")),
                other => other,
            },
        )?;
        if let Some(kid) = text("private_key_id")? {
            key = key.with_kid(kid);
        }
        Ok(ServiceAccountKey {
            client_email,
            token_uri: text("token_uri")?.unwrap_or(GOOGLE_TOKEN_URI).to_owned(),
            project_id: text("project_id")?.map(str::to_owned),
            key,
        })
    }

    /// The service account's email: the assertions' `iss`.
    ///
    /// ```
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
    /// # let json = serde_json::json!({"type": "service_account", "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com"}).to_string();
    /// let key = tower_oauth2::ServiceAccountKey::from_json(&json)?;
    /// assert_eq!(key.client_email(), "robot@p.iam.gserviceaccount.com");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The token endpoint (`token_uri`; Google's if the file has none): the assertions' `aud`.
    ///
    /// ```
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
    /// # let json = serde_json::json!({"type": "service_account", "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com"}).to_string();
    /// let key = tower_oauth2::ServiceAccountKey::from_json(&json)?;
    /// assert_eq!(key.token_uri(), "https://oauth2.googleapis.com/token");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The `private_key_id`: the `kid` of the assertions.
    ///
    /// ```
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
    /// # let json = serde_json::json!({"type": "service_account", "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com"}).to_string();
    /// let key = tower_oauth2::ServiceAccountKey::from_json(&json)?;
    /// assert_eq!(key.kid(), None);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn kid(&self) -> Option<&str> {
        self.key.kid()
    }

    /// The `project_id`, if the file has one.
    ///
    /// ```
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
    /// # let json = serde_json::json!({"type": "service_account", "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com", "project_id": "p"}).to_string();
    /// let key = tower_oauth2::ServiceAccountKey::from_json(&json)?;
    /// assert_eq!(key.project_id(), Some("p"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// A builder for the token endpoint at `token_uri`, as Google's wants to be called: no
    /// client authentication and no `client_id`, the assertion alone says who the service
    /// account is (the form is `grant_type` and `assertion`). Set an HTTP client or a clock on
    /// it, build it, and give it to [`jwt_bearer`](Self::jwt_bearer). A server that wants the
    /// client named or authenticated takes an endpoint of your own (say with
    /// `ClientAuth::none(key.client_email())`) instead.
    ///
    /// ```
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
    /// # let json = serde_json::json!({"type": "service_account", "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com"}).to_string();
    /// use std::time::Duration;
    /// use tower_oauth2::{HttpClient, ServiceAccountKey};
    ///
    /// let key = ServiceAccountKey::from_json(&json)?;
    /// let endpoint = key
    ///     .token_endpoint()
    ///     .http_client(HttpClient::hyper()?.with_timeout(Duration::from_secs(10)))
    ///     .build()?;
    /// let source = key.jwt_bearer(endpoint, "https://www.googleapis.com/auth/devstorage.read_only");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn token_endpoint(&self) -> TokenEndpointBuilder {
        TokenEndpoint::builder(
            self.token_uri.clone(),
            ClientAuth::assertion_only(self.client_email.clone()),
        )
    }

    /// A [`JwtBearer`] source for this account at `endpoint`, asking for `scopes`
    /// (space-separated, sent as the assertion's `scope` claim, as Google wants them). Set
    /// [`subject`](JwtBearer::subject) to act as a Workspace user (domain-wide delegation).
    ///
    /// ```
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
    /// # let json = serde_json::json!({"type": "service_account", "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com"}).to_string();
    /// use tower_oauth2::ServiceAccountKey;
    ///
    /// let key = ServiceAccountKey::from_json(&json)?;
    /// let source = key
    ///     .jwt_bearer(key.token_endpoint().build()?, "https://www.googleapis.com/auth/gmail.readonly")
    ///     .subject("someone@example.com");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn jwt_bearer(&self, endpoint: TokenEndpoint, scopes: impl Into<String>) -> JwtBearer {
        JwtBearer::new(endpoint, self.key.clone(), self.client_email.clone())
            .assertion_audience(AssertionAudience::Value(self.token_uri.clone()))
            .claim("scope", scopes.into())
    }

    /// A [`JwtBearer`] source for this account at its `token_uri` with the default HTTP
    /// client, asking for `scopes`.
    ///
    /// ```
    /// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pkjwt-client-rsa.key.pem")).unwrap();
    /// # let json = serde_json::json!({"type": "service_account", "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com"}).to_string();
    /// use tower_oauth2::{OAuth2Layer, ServiceAccountKey};
    ///
    /// let key = ServiceAccountKey::from_json(&json)?;
    /// let layer = OAuth2Layer::new(key.token_source("https://www.googleapis.com/auth/cloud-platform")?);
    /// # let _ = layer;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn token_source(&self, scopes: impl Into<String>) -> Result<JwtBearer, Error> {
        Ok(self.jwt_bearer(self.token_endpoint().build()?, scopes))
    }
}
