//! Token introspection (RFC 7662): ask the authorization server whether a token is active,
//! and what it grants.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
//! #     let body = r#"{"active":true,"scope":"read write","client_id":"my-api","sub":"user-7",
//! #         "aud":["https://api.example.com"],"exp":1900000000,"tenant":"acme"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-api", "its-secret"))
//!     .token_url("https://auth.example.com/token")
//!     .introspection_url("https://auth.example.com/introspect")
//!     .http_client(HttpClient::new(server)) // a stand-in authorization server
//!     .build()?;
//! let info = client.introspect("the-token-a-caller-sent", None).await?;
//! assert!(info.active());
//! assert_eq!(info.scope(), Some("read write"));
//! assert_eq!(info.aud(), ["https://api.example.com"]);
//! assert_eq!(info.extra()["tenant"], "acme");
//! # Ok(()) }
//! ```
//!
//! The request is a form POST to the introspection endpoint with `token`, an optional
//! `token_type_hint`, and the client's authentication as at the token endpoint (RFC 7662
//! §2.1); errors are typed as the token endpoint's, and the token is cut out of any server
//! text that echoes it. A response without a boolean `active` is
//! [`Error::MalformedResponse`]; so is a field [`Introspection`] reads that has the wrong JSON
//! type. An inactive token is not an error: check [`Introspection::active`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::client::OAuth2Client;
use crate::endpoint::revocation::{token_form, TokenTypeHint};
use crate::error::Error;
use crate::token::{check_response, json_object, string_field};

/// An introspection response (RFC 7662 §2.2). Only [`active`](Self::active) is always
/// there; an inactive token usually comes with nothing else.
///
/// `Debug` shows the typed fields and the names of the others, not their values.
///
/// ```
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(br#"{"active":false}"#))))
/// # });
/// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-api", "its-secret"))
///     .token_url("https://auth.example.com/token")
///     .introspection_url("https://auth.example.com/introspect")
///     .http_client(HttpClient::new(server)) // answers {"active":false}
///     .build()?;
/// let info = client.introspect("revoked-token", None).await?;
/// assert!(!info.active());
/// assert_eq!(info.scope(), None);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Introspection {
    active: bool,
    scope: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    token_type: Option<String>,
    exp: Option<SystemTime>,
    iat: Option<SystemTime>,
    nbf: Option<SystemTime>,
    sub: Option<String>,
    aud: Vec<String>,
    iss: Option<String>,
    jti: Option<String>,
    extra: Map<String, Value>,
}

/// Generates the accessor of an optional string field, with an example.
macro_rules! string_accessor {
    ($(#[$doc:meta])* $name:ident, $value:literal) => {
        $(#[$doc])*
        ///
        /// ```
        /// use tower_oauth2::Introspection;
        ///
        #[doc = concat!(
            "let info = Introspection::from_json(r#\"{\"active\":true,\"", stringify!($name), "\":\"", $value, "\"}\"#)?;"
        )]
        #[doc = concat!("assert_eq!(info.", stringify!($name), "(), Some(\"", $value, "\"));")]
        /// # Ok::<(), tower_oauth2::Error>(())
        /// ```
        pub fn $name(&self) -> Option<&str> {
            self.$name.as_deref()
        }
    };
}

/// Generates the accessor of a NumericDate field, with an example.
macro_rules! time_accessor {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// ```
        /// use std::time::{Duration, UNIX_EPOCH};
        /// use tower_oauth2::Introspection;
        ///
        #[doc = concat!(
            "let info = Introspection::from_json(r#\"{\"active\":true,\"", stringify!($name), "\":1900000000}\"#)?;"
        )]
        #[doc = concat!(
            "assert_eq!(info.", stringify!($name), "(), Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000)));"
        )]
        /// # Ok::<(), tower_oauth2::Error>(())
        /// ```
        pub fn $name(&self) -> Option<SystemTime> {
            self.$name
        }
    };
}

impl Introspection {
    /// Reads an introspection response obtained some other way (a cache, a test).
    /// [`Error::MalformedResponse`] if it is not a JSON object with a boolean `active`, or a
    /// field read here has the wrong type.
    ///
    /// ```
    /// use tower_oauth2::{Error, Introspection};
    ///
    /// let info = Introspection::from_json(r#"{"active":true,"sub":"user-7"}"#)?;
    /// assert_eq!(info.sub(), Some("user-7"));
    /// assert!(matches!(Introspection::from_json(r#"{"active":"yes"}"#), Err(Error::MalformedResponse { .. })));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let fields = json_object(json.as_bytes(), StatusCode::OK, "the introspection response")?;
        Self::from_fields(fields, StatusCode::OK)
    }

    fn from_fields(mut fields: Map<String, Value>, status: StatusCode) -> Result<Self, Error> {
        let malformed = |reason: String| Error::MalformedResponse { status, reason };
        let active = match fields.remove("active") {
            Some(Value::Bool(active)) => active,
            None | Some(Value::Null) => {
                return Err(malformed(
                    "the introspection response has no `active` (RFC 7662 §2.2)".to_owned(),
                ))
            }
            Some(_) => return Err(malformed("`active` is not a boolean".to_owned())),
        };
        let mut time = |name: &str| -> Result<Option<SystemTime>, Error> {
            let seconds = match fields.remove(name) {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                Some(_) => None,
            };
            match seconds {
                Some(s) if (0.0..1e12).contains(&s) => Ok(Some(UNIX_EPOCH + Duration::from_secs_f64(s))),
                _ => Err(malformed(format!("`{name}` is not a time in seconds since 1970"))),
            }
        };
        let (exp, iat, nbf) = (time("exp")?, time("iat")?, time("nbf")?);
        let aud = match fields.remove("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(aud)) => vec![aud],
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            Some(_) => {
                return Err(malformed(
                    "`aud` is neither a string nor a list of strings".to_owned(),
                ))
            }
        };
        let scope = match fields.remove("scope") {
            // A few servers send the scope as a list.
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Some(other) => {
                fields.insert("scope".to_owned(), other);
                string_field(&mut fields, "scope", status)?
            }
            None => None,
        };
        Ok(Introspection {
            active,
            scope,
            client_id: string_field(&mut fields, "client_id", status)?,
            username: string_field(&mut fields, "username", status)?,
            token_type: string_field(&mut fields, "token_type", status)?,
            exp,
            iat,
            nbf,
            sub: string_field(&mut fields, "sub", status)?,
            aud,
            iss: string_field(&mut fields, "iss", status)?,
            jti: string_field(&mut fields, "jti", status)?,
            extra: fields,
        })
    }

    /// Whether the token is active: issued by this server, not expired, not revoked, and
    /// usable by the caller (RFC 7662 §2.2). Everything else is meaningless when it is not.
    ///
    /// ```
    /// let info = tower_oauth2::Introspection::from_json(r#"{"active":false}"#)?;
    /// assert!(!info.active());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn active(&self) -> bool {
        self.active
    }

    string_accessor!(
        /// The token's scope, space-separated (a list is joined with spaces).
        scope,
        "read write"
    );
    string_accessor!(
        /// The client the token was issued to.
        client_id,
        "my-app"
    );
    string_accessor!(
        /// A human-readable name of the resource owner.
        username,
        "alice"
    );
    string_accessor!(
        /// The token's type (`Bearer`, ...).
        token_type,
        "Bearer"
    );
    time_accessor!(
        /// When the token expires (`exp`).
        exp
    );
    time_accessor!(
        /// When the token was issued (`iat`).
        iat
    );
    time_accessor!(
        /// Not to be used before (`nbf`).
        nbf
    );
    string_accessor!(
        /// The subject: usually the resource owner's id.
        sub,
        "user-7"
    );

    /// The audiences the token is for (`aud`, a string or a list), empty if none.
    ///
    /// ```
    /// let info = tower_oauth2::Introspection::from_json(r#"{"active":true,"aud":"https://api.example.com"}"#)?;
    /// assert_eq!(info.aud(), ["https://api.example.com"]);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    string_accessor!(
        /// The issuer of the token.
        iss,
        "https://auth.example.com"
    );
    string_accessor!(
        /// The token's identifier.
        jti,
        "tok-42"
    );

    /// Every other field of the response.
    ///
    /// ```
    /// let info = tower_oauth2::Introspection::from_json(r#"{"active":true,"tenant":"acme"}"#)?;
    /// assert_eq!(info.extra()["tenant"], "acme");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("active", &self.active)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("token_type", &self.token_type)
            .field("exp", &self.exp)
            .field("iat", &self.iat)
            .field("nbf", &self.nbf)
            .field("sub", &self.sub)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("jti", &self.jti)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OAuth2Client {
    /// Introspects `token` (RFC 7662), with an optional `token_type_hint`.
    /// [`Error::NoEndpoint`] if the server has no introspection endpoint.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client, TokenTypeHint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = r#"{"active":true,"client_id":"my-app","exp":1900000000}"#;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-api", "its-secret"))
    ///     .token_url("https://auth.example.com/token")
    ///     .introspection_url("https://auth.example.com/introspect")
    ///     .http_client(HttpClient::new(server)) // a stand-in authorization server
    ///     .build()?;
    /// let info = client.introspect("a-token", Some(TokenTypeHint::AccessToken)).await?;
    /// assert!(info.active());
    /// assert_eq!(info.client_id(), Some("my-app"));
    /// # Ok(()) }
    /// ```
    pub async fn introspect(&self, token: &str, hint: Option<TokenTypeHint>) -> Result<Introspection, Error> {
        let url = self.endpoint("introspection", self.introspection_url())?;
        let span =
            tracing::debug_span!("introspection", %url, hint = hint.as_ref().map(TokenTypeHint::as_str));
        async {
            let form = token_form(token, hint.as_ref());
            let response = self.token_endpoint().post_form(url, &form, &[]).await?;
            // An OAuth 2.0 error object, or a non-2xx status, is an error; the body is read once.
            let fields = check_response(&response).inspect_err(|err| {
                tracing::debug!(error = %err.report(), "introspection failed");
            })?;
            let info = Introspection::from_fields(fields, response.status)?;
            tracing::debug!(active = info.active, "token introspected");
            Ok(info)
        }
        .instrument(span)
        .await
    }
}
