//! Authorization server metadata: OpenID Connect Discovery 1.0 and RFC 8414.
//!
//! [`OAuth2Client::discover`](crate::OAuth2Client::discover) fetches the server's metadata
//! document, checks it, and builds a client with the endpoints it names. [`ServerMetadata`]
//! is the checked document, with typed accessors for the fields the crate uses and the whole
//! JSON object for the rest.
//!
//! ```
//! use tower_oauth2::ServerMetadata;
//!
//! let document = r#"{
//!     "issuer": "https://auth.example.com",
//!     "token_endpoint": "https://auth.example.com/token",
//!     "revocation_endpoint": "https://auth.example.com/revoke",
//!     "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
//!     "x_vendor_feature": true
//! }"#;
//! let metadata = ServerMetadata::from_json("https://auth.example.com", document)?;
//! assert_eq!(metadata.issuer(), "https://auth.example.com");
//! assert_eq!(metadata.revocation_endpoint().map(|u| u.as_str()), Some("https://auth.example.com/revoke"));
//! assert_eq!(metadata.as_json()["x_vendor_feature"], true);
//! # Ok::<(), tower_oauth2::Error>(())
//! ```
//!
//! # Where the document is
//!
//! For an issuer `https://auth.example.com/tenant`, discovery tries, in this order:
//!
//! 1. `https://auth.example.com/tenant/.well-known/openid-configuration` (OpenID Connect
//!    Discovery §4: appended to the issuer);
//! 2. on a `404` only, `https://auth.example.com/.well-known/oauth-authorization-server/tenant`
//!    (RFC 8414 §3.1: inserted between the host and the path).
//!
//! OpenID Connect comes first because most servers publish it (and many publish only it); any
//! other failure than a 404 stops there. An issuer without a path gives
//! `https://auth.example.com/.well-known/openid-configuration` and
//! `https://auth.example.com/.well-known/oauth-authorization-server`. A trailing `/` on the
//! issuer is dropped before either is built (both specifications say so), but not from the
//! issuer the document must name.
//!
//! A full metadata URL of one of these two forms is accepted in place of the issuer: the
//! issuer it belongs to is read from it, and only that URL is fetched. For a document
//! elsewhere, [`OAuth2ClientBuilder::discover_at`](crate::client::OAuth2ClientBuilder::discover_at)
//! takes its URL and the issuer separately.
//!
//! # What is checked
//!
//! - `issuer` must be present and **equal to the issuer asked for, character for
//!   character** (RFC 8414 §3.3, OIDC Discovery §4.3): this is the defence against mix-up
//!   attacks, where one server's document points a client at another's endpoints. A trailing
//!   `/` that only one of them has is a mismatch: [`DiscoveryError::IssuerMismatch`].
//! - Every endpoint URL the client uses (token, authorization, device authorization,
//!   revocation, introspection, userinfo, pushed authorization request, `jwks_uri`) must be
//!   `https`, or `http` on a loopback host, as the token endpoint itself
//!   ([TLS required](crate::endpoint::token#tls-required)); the builder's
//!   `dangerous_allow_insecure_http` opts out: [`DiscoveryError::InsecureEndpoint`]. Other
//!   fields (an `end_session_endpoint`, a vendor's extension) do not fail discovery: they are
//!   in [`as_json`](ServerMetadata::as_json) unchecked, so check one before you send anything
//!   to it.
//! - `mtls_endpoint_aliases` (RFC 8705 §5), when present, must be a JSON object of endpoint
//!   URLs, each checked as above (the field is named `mtls_endpoint_aliases.token_endpoint`
//!   and so on in the error), whatever the client's authentication method.
//! - The fields the crate reads must have their JSON type: [`DiscoveryError::WrongType`].
//! - `token_endpoint` is required by the client ([`OAuth2Client`](crate::OAuth2Client) is
//!   built on its token endpoint; RFC 8414 makes it optional only for implicit-only servers):
//!   [`DiscoveryError::MissingField`]. [`ServerMetadata`] alone requires only `issuer`.
//! - `response_types_supported` is REQUIRED by RFC 8414 §2, but many OAuth-only servers leave
//!   it out and the client never needs it: its absence is accepted.
//!
//! # Client authentication
//!
//! The client's [`ClientAuth::method`](crate::ClientAuth::method) must be one of
//! `token_endpoint_auth_methods_supported`, when the server lists them. (RFC 8414 §2 reads an
//! absent list as `client_secret_basic` alone, but many servers leave it out whatever they
//! support: without a list the configured method is used as it is.) A client configured for `client_secret_basic` at a server that advertises
//! only `client_secret_post` (or the reverse) is switched to the advertised method, with the
//! same id and secret; any other method the server does not advertise is
//! [`DiscoveryError::AuthMethodNotSupported`], naming both. A client that signs JWT
//! assertions must also sign them with an algorithm of
//! `token_endpoint_auth_signing_alg_values_supported`, when the server lists them
//! ([`DiscoveryError::SigningAlgorithmNotSupported`]).
//!
//! # Mutual TLS endpoint aliases (RFC 8705 §5)
//!
//! A server that takes mutual-TLS client authentication on other hosts or ports than its
//! ordinary endpoints publishes them in `mtls_endpoint_aliases`. A client that authenticates
//! with [`ClientAuth::tls_client_auth`](crate::ClientAuth::tls_client_auth) or
//! [`ClientAuth::self_signed_tls_client_auth`](crate::ClientAuth::self_signed_tls_client_auth)
//! uses the alias of each endpoint it calls (token, device authorization, revocation,
//! introspection, userinfo, pushed authorization request) where the document has one, and the
//! ordinary endpoint otherwise; a client with any other method ignores the aliases. URLs given
//! to the builder by hand still take precedence. The authorization endpoint (visited by the
//! user's browser, not the client) and `jwks_uri` are never aliased.
//! [`ServerMetadata::mtls_endpoint_alias`] reads an alias.
//!
//! ```
//! use tower_oauth2::ServerMetadata;
//!
//! let document = r#"{
//!     "issuer": "https://auth.example.com",
//!     "token_endpoint": "https://auth.example.com/token",
//!     "mtls_endpoint_aliases": {"token_endpoint": "https://mtls.auth.example.com/token"}
//! }"#;
//! let metadata = ServerMetadata::from_json("https://auth.example.com", document)?;
//! assert_eq!(
//!     metadata.mtls_endpoint_alias("token_endpoint").map(|u| u.as_str()),
//!     Some("https://mtls.auth.example.com/token"),
//! );
//! # Ok::<(), tower_oauth2::Error>(())
//! ```
//!
//! The same client authentication is used at every endpoint of the server: the
//! `revocation_endpoint_auth_methods_supported` and
//! `introspection_endpoint_auth_methods_supported` lists are readable from [`ServerMetadata`]
//! but not enforced.
//!
//! The document is fetched with a `GET` through the client's [`HttpClient`]:
//! its timeout and body size limit apply.

use std::fmt;

use bytes::Bytes;
use serde_json::{Map, Value};
use url::Url;

use crate::client_auth::ClientAuth;
use crate::clock::Clock;
use crate::endpoint::token::parse_endpoint_url;
use crate::error::{sanitize_server_text, Error};
use crate::token::{json_object, status_error};
use crate::transport::{server_request, HttpClient};

/// The OpenID Connect Discovery document's path, appended to the issuer.
pub(crate) const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414's well-known path, inserted between the host and the issuer's path.
pub(crate) const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// RFC 8705 §5's metadata field: the endpoints for mutual-TLS client authentication.
const MTLS_ENDPOINT_ALIASES: &str = "mtls_endpoint_aliases";

/// Why a discovery document was refused. The text it carries from the document is made safe
/// to print (control characters escaped, length capped), like [`ServerError`](crate::ServerError).
///
/// ```
/// use tower_oauth2::{DiscoveryError, Error, ServerMetadata};
///
/// let document = r#"{"issuer":"https://auth.example.com/","token_endpoint":"https://auth.example.com/token"}"#;
/// match ServerMetadata::from_json("https://auth.example.com", document) {
///     Err(Error::Discovery(DiscoveryError::IssuerMismatch { expected, found })) => {
///         assert_eq!(expected, "https://auth.example.com");
///         assert_eq!(found, "https://auth.example.com/"); // a trailing slash is a mismatch
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The document's `issuer` is not the issuer asked for (RFC 8414 §3.3): it may be another
    /// server's document, and its endpoints must not be used.
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The issuer the document names (made safe to print).
        found: String,
    },
    /// An endpoint URL in the document is plain `http` on a host that is not loopback.
    InsecureEndpoint {
        /// The metadata field (`token_endpoint`, `jwks_uri`, ...).
        field: String,
        /// The URL, without credentials, query or fragment.
        url: String,
    },
    /// An endpoint URL in the document is not an absolute `http(s)` URL without credentials.
    InvalidUrl {
        /// The metadata field.
        field: String,
    },
    /// A field the client needs is missing (`issuer`, `token_endpoint`).
    MissingField(&'static str),
    /// A field has the wrong JSON type (a number where a URL string belongs, say).
    WrongType(String),
    /// The client's authentication method is not in the server's
    /// `token_endpoint_auth_methods_supported`, and no equivalent one is.
    AuthMethodNotSupported {
        /// The configured method ([`ClientAuth::method`]).
        configured: &'static str,
        /// The methods the server advertises (each made safe to print).
        advertised: Vec<String>,
    },
    /// The client signs its JWT client assertions (`client_secret_jwt`, `private_key_jwt`)
    /// with an algorithm that is not in the server's
    /// `token_endpoint_auth_signing_alg_values_supported`.
    SigningAlgorithmNotSupported {
        /// The configured algorithm ([`ClientAuth::signing_algorithm`]).
        configured: &'static str,
        /// The algorithms the server advertises (each made safe to print).
        advertised: Vec<String>,
    },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::IssuerMismatch { expected, found } => write!(
                f,
                "the discovery document names the issuer {found:?}, not {expected:?} as asked \
                 (RFC 8414 §3.3): its endpoints are not used"
            ),
            DiscoveryError::InsecureEndpoint { field, url } => write!(
                f,
                "the discovery document's `{field}` ({url}) is not https: OAuth 2.0 endpoints \
                 need TLS, plain http is allowed on loopback hosts only"
            ),
            DiscoveryError::InvalidUrl { field } => write!(
                f,
                "the discovery document's `{field}` is not an absolute http(s) URL without credentials"
            ),
            DiscoveryError::MissingField(field) => {
                write!(f, "the discovery document has no `{field}`")
            }
            DiscoveryError::WrongType(field) => {
                write!(f, "the discovery document's `{field}` has the wrong JSON type")
            }
            DiscoveryError::AuthMethodNotSupported {
                configured,
                advertised,
            } => write!(
                f,
                "the client authenticates with `{configured}`, which the server does not \
                 advertise (token_endpoint_auth_methods_supported: {advertised:?})"
            ),
            DiscoveryError::SigningAlgorithmNotSupported {
                configured,
                advertised,
            } => write!(
                f,
                "the client signs its assertions with {configured}, which the server does not \
                 advertise (token_endpoint_auth_signing_alg_values_supported: {advertised:?})"
            ),
        }
    }
}

impl std::error::Error for DiscoveryError {}

impl From<DiscoveryError> for Error {
    fn from(err: DiscoveryError) -> Self {
        Error::Discovery(err)
    }
}

/// An authorization server's metadata (RFC 8414 §2, OpenID Connect Discovery §3), checked as
/// the [module documentation](self#what-is-checked) says.
///
/// The typed accessors cover what the crate uses; [`as_json`](Self::as_json) has every field.
/// Cheap enough to clone (it is kept once, behind the [`OAuth2Client`](crate::OAuth2Client)'s
/// `Arc`).
///
/// ```
/// use tower_oauth2::ServerMetadata;
///
/// let metadata = ServerMetadata::from_json(
///     "https://auth.example.com",
///     r#"{"issuer":"https://auth.example.com","grant_types_supported":["client_credentials"]}"#,
/// )?;
/// assert_eq!(metadata.grant_types_supported(), Some(&["client_credentials".to_owned()][..]));
/// assert_eq!(metadata.token_endpoint(), None);
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ServerMetadata {
    issuer: String,
    token_endpoint: Option<Url>,
    authorization_endpoint: Option<Url>,
    device_authorization_endpoint: Option<Url>,
    revocation_endpoint: Option<Url>,
    introspection_endpoint: Option<Url>,
    userinfo_endpoint: Option<Url>,
    pushed_authorization_request_endpoint: Option<Url>,
    jwks_uri: Option<Url>,
    /// `mtls_endpoint_aliases` (RFC 8705 §5), each URL checked: (endpoint field, URL).
    mtls_aliases: Vec<(String, Url)>,
    /// The list fields the accessors read, typed when the document was checked.
    lists: Vec<(&'static str, Vec<String>)>,
    document: Map<String, Value>,
}

/// Generates the accessor of an endpoint URL field.
macro_rules! url_accessor {
    ($name:ident, $field:literal) => {
        #[doc = concat!("`", $field, "`, if the server has one.")]
        ///
        /// ```
        /// use tower_oauth2::ServerMetadata;
        ///
        #[doc = concat!(
                                    "let document = r#\"{\"issuer\":\"https://auth.example.com\",\"", $field,
                                    "\":\"https://auth.example.com/x\"}\"#;"
                                )]
        /// let metadata = ServerMetadata::from_json("https://auth.example.com", document)?;
        #[doc = concat!(
                                    "assert_eq!(metadata.", stringify!($name),
                                    "().map(|u| u.as_str()), Some(\"https://auth.example.com/x\"));"
                                )]
        /// # Ok::<(), tower_oauth2::Error>(())
        /// ```
        pub fn $name(&self) -> Option<&Url> {
            self.$name.as_ref()
        }
    };
}

/// Generates the accessor of a list-of-strings field.
macro_rules! list_accessor {
    ($name:ident, $value:literal) => {
        #[doc = concat!("`", stringify!($name), "`, if the document has it (`None` when absent: the RFC 8414 default applies).")]
        ///
        /// ```
        /// use tower_oauth2::ServerMetadata;
        ///
        #[doc = concat!(
            "let document = r#\"{\"issuer\":\"https://auth.example.com\",\"", stringify!($name),
            "\":[\"", $value, "\"]}\"#;"
        )]
        /// let metadata = ServerMetadata::from_json("https://auth.example.com", document)?;
        #[doc = concat!("assert_eq!(metadata.", stringify!($name), "(), Some(&[\"", $value, "\".to_owned()][..]));")]
        /// # Ok::<(), tower_oauth2::Error>(())
        /// ```
        pub fn $name(&self) -> Option<&[String]> {
            self.list(stringify!($name))
        }
    };
}

impl ServerMetadata {
    /// Parses and checks a metadata document obtained some other way (a file, a cache): its
    /// `issuer` must equal `expected_issuer` exactly, and its endpoint URLs must be `https`
    /// (or `http` on loopback). See the [module documentation](self#what-is-checked).
    ///
    /// ```
    /// use tower_oauth2::{DiscoveryError, Error, ServerMetadata};
    ///
    /// let plain = r#"{"issuer":"https://auth.example.com","token_endpoint":"http://auth.example.com/token"}"#;
    /// let err = ServerMetadata::from_json("https://auth.example.com", plain).unwrap_err();
    /// assert!(matches!(err, Error::Discovery(DiscoveryError::InsecureEndpoint { .. })));
    /// assert!(ServerMetadata::from_json("https://auth.example.com", "not json").is_err());
    /// ```
    pub fn from_json(expected_issuer: &str, document: &str) -> Result<Self, Error> {
        let map = json_object(
            document.as_bytes(),
            http::StatusCode::OK,
            "the discovery document",
        )?;
        Self::from_map(expected_issuer, map, false)
    }

    pub(crate) fn from_map(
        expected_issuer: &str,
        document: Map<String, Value>,
        allow_insecure_http: bool,
    ) -> Result<Self, Error> {
        let issuer = match document.get("issuer") {
            None | Some(Value::Null) => return Err(DiscoveryError::MissingField("issuer").into()),
            Some(Value::String(issuer)) => issuer.clone(),
            Some(_) => return Err(DiscoveryError::WrongType("issuer".to_owned()).into()),
        };
        if issuer != expected_issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: expected_issuer.to_owned(),
                found: sanitize_server_text(&issuer),
            }
            .into());
        }
        // The endpoints the client calls are checked below; one it does not use (an
        // `end_session_endpoint`, a vendor's `x_..._endpoint`) must not fail discovery, but is
        // worth a note.
        for (field, value) in &document {
            let used = ENDPOINT_FIELDS.contains(&field.as_str());
            if !used && (field.ends_with("_endpoint") || field.ends_with("_uri")) {
                if let Err(err) = endpoint_field(field, value, allow_insecure_http) {
                    tracing::debug!(field = %sanitize_server_text(field), error = %err.report(), "an endpoint the client does not use is not acceptable");
                }
            }
        }
        let mut lists = Vec::new();
        for list in [
            "token_endpoint_auth_methods_supported",
            "token_endpoint_auth_signing_alg_values_supported",
            "grant_types_supported",
            "scopes_supported",
            "response_types_supported",
            "code_challenge_methods_supported",
            "revocation_endpoint_auth_methods_supported",
            "introspection_endpoint_auth_methods_supported",
        ] {
            match document.get(list) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => lists.push((
                    list,
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                )),
                Some(_) => return Err(DiscoveryError::WrongType(list.to_owned()).into()),
            }
        }
        let mtls_aliases = match document.get(MTLS_ENDPOINT_ALIASES) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(aliases)) => {
                let mut checked = Vec::with_capacity(aliases.len());
                for (field, value) in aliases {
                    let shown = format!("{MTLS_ENDPOINT_ALIASES}.{field}");
                    if let Some(url) = endpoint_field(&shown, value, allow_insecure_http)? {
                        checked.push((field.clone(), url));
                    }
                }
                checked
            }
            Some(_) => return Err(DiscoveryError::WrongType(MTLS_ENDPOINT_ALIASES.to_owned()).into()),
        };
        let url = |field: &str| -> Result<Option<Url>, Error> {
            match document.get(field) {
                Some(value) => endpoint_field(field, value, allow_insecure_http),
                None => Ok(None),
            }
        };
        Ok(ServerMetadata {
            token_endpoint: url("token_endpoint")?,
            authorization_endpoint: url("authorization_endpoint")?,
            device_authorization_endpoint: url("device_authorization_endpoint")?,
            revocation_endpoint: url("revocation_endpoint")?,
            introspection_endpoint: url("introspection_endpoint")?,
            userinfo_endpoint: url("userinfo_endpoint")?,
            pushed_authorization_request_endpoint: url("pushed_authorization_request_endpoint")?,
            jwks_uri: url("jwks_uri")?,
            mtls_aliases,
            lists,
            issuer,
            document,
        })
    }

    /// The issuer identifier (equal to the one asked for).
    ///
    /// ```
    /// use tower_oauth2::ServerMetadata;
    ///
    /// let metadata = ServerMetadata::from_json("https://a.example.com", r#"{"issuer":"https://a.example.com"}"#)?;
    /// assert_eq!(metadata.issuer(), "https://a.example.com");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    url_accessor!(token_endpoint, "token_endpoint");
    url_accessor!(authorization_endpoint, "authorization_endpoint");
    url_accessor!(device_authorization_endpoint, "device_authorization_endpoint");
    url_accessor!(revocation_endpoint, "revocation_endpoint");
    url_accessor!(introspection_endpoint, "introspection_endpoint");
    url_accessor!(userinfo_endpoint, "userinfo_endpoint");
    url_accessor!(
        pushed_authorization_request_endpoint,
        "pushed_authorization_request_endpoint"
    );
    url_accessor!(jwks_uri, "jwks_uri");

    list_accessor!(token_endpoint_auth_methods_supported, "private_key_jwt");
    list_accessor!(token_endpoint_auth_signing_alg_values_supported, "ES256");
    list_accessor!(grant_types_supported, "client_credentials");
    list_accessor!(scopes_supported, "openid");
    list_accessor!(response_types_supported, "code");
    list_accessor!(code_challenge_methods_supported, "S256");
    list_accessor!(revocation_endpoint_auth_methods_supported, "client_secret_basic");
    list_accessor!(
        introspection_endpoint_auth_methods_supported,
        "client_secret_post"
    );

    /// The mutual-TLS alias (RFC 8705 §5) of the endpoint named `field` (`"token_endpoint"`,
    /// `"revocation_endpoint"`, ...): the URL the server's `mtls_endpoint_aliases` gives for
    /// it, checked as every endpoint URL is. `None` when the document has no alias for it.
    /// See [mutual TLS endpoint aliases](self#mutual-tls-endpoint-aliases-rfc-8705-5) for
    /// when the client uses them.
    ///
    /// ```
    /// use tower_oauth2::{DiscoveryError, Error, ServerMetadata};
    ///
    /// let document = r#"{"issuer":"https://auth.example.com",
    ///     "introspection_endpoint":"https://auth.example.com/introspect",
    ///     "mtls_endpoint_aliases":{"introspection_endpoint":"https://mtls.auth.example.com/introspect"}}"#;
    /// let metadata = ServerMetadata::from_json("https://auth.example.com", document)?;
    /// assert_eq!(
    ///     metadata.mtls_endpoint_alias("introspection_endpoint").unwrap().host_str(),
    ///     Some("mtls.auth.example.com"),
    /// );
    /// assert_eq!(metadata.mtls_endpoint_alias("token_endpoint"), None);
    ///
    /// // An alias is an endpoint like any other: plain http is refused off loopback.
    /// let insecure = r#"{"issuer":"https://auth.example.com",
    ///     "mtls_endpoint_aliases":{"token_endpoint":"http://mtls.auth.example.com/token"}}"#;
    /// match ServerMetadata::from_json("https://auth.example.com", insecure) {
    ///     Err(Error::Discovery(DiscoveryError::InsecureEndpoint { field, .. })) => {
    ///         assert_eq!(field, "mtls_endpoint_aliases.token_endpoint");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn mtls_endpoint_alias(&self, field: &str) -> Option<&Url> {
        self.mtls_aliases
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, url)| url)
    }

    /// The whole document, for the fields without an accessor.
    ///
    /// ```
    /// use tower_oauth2::ServerMetadata;
    ///
    /// let document = r#"{"issuer":"https://a.example.com","claims_supported":["sub","email"]}"#;
    /// let metadata = ServerMetadata::from_json("https://a.example.com", document)?;
    /// assert_eq!(metadata.as_json()["claims_supported"][1], "email");
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.document
    }

    fn list(&self, field: &str) -> Option<&[String]> {
        self.lists
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, values)| values.as_slice())
    }

    /// The client authentication to use with this server: `auth` if the server advertises its
    /// method, the other `client_secret_*` method if only that one is, else an error.
    pub(crate) fn choose_client_auth(&self, auth: ClientAuth) -> Result<ClientAuth, Error> {
        let configured = auth.method();
        // Many servers leave the list out; RFC 8414 §2 reads that as `client_secret_basic`
        // alone, but a client registered otherwise knows better: keep what it was given.
        let Some(advertised) = self.token_endpoint_auth_methods_supported() else {
            tracing::debug!(
                method = configured,
                "the server advertises no client authentication methods: using the configured one"
            );
            return self.check_signing_algorithm(auth);
        };
        if advertised.iter().any(|m| m == configured) {
            return self.check_signing_algorithm(auth);
        }
        let has = |method: &str| advertised.iter().any(|m| m == method);
        match (configured, auth.secret()) {
            ("client_secret_basic", Some(secret)) if has("client_secret_post") => {
                tracing::debug!(
                    "the server advertises client_secret_post, not client_secret_basic: switching"
                );
                Ok(ClientAuth::client_secret_post(auth.client_id(), secret.clone()))
            }
            ("client_secret_post", Some(secret)) if has("client_secret_basic") => {
                tracing::debug!(
                    "the server advertises client_secret_basic, not client_secret_post: switching"
                );
                Ok(ClientAuth::client_secret_basic(auth.client_id(), secret.clone()))
            }
            _ => Err(DiscoveryError::AuthMethodNotSupported {
                configured,
                advertised: advertised.iter().map(|m| sanitize_server_text(m)).collect(),
            }
            .into()),
        }
    }
}

impl ServerMetadata {
    /// `auth` if it signs no assertions, or signs them with an algorithm the server
    /// advertises (or the server advertises none: the field is optional).
    fn check_signing_algorithm(&self, auth: ClientAuth) -> Result<ClientAuth, Error> {
        let (Some(configured), Some(advertised)) = (
            auth.signing_algorithm(),
            self.token_endpoint_auth_signing_alg_values_supported(),
        ) else {
            return Ok(auth);
        };
        if advertised.iter().any(|alg| alg == configured) {
            return Ok(auth);
        }
        Err(DiscoveryError::SigningAlgorithmNotSupported {
            configured,
            advertised: advertised.iter().map(|alg| sanitize_server_text(alg)).collect(),
        }
        .into())
    }
}

/// The endpoint fields the client uses: each must be an acceptable URL, or discovery fails.
const ENDPOINT_FIELDS: &[&str] = &[
    "token_endpoint",
    "authorization_endpoint",
    "device_authorization_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "userinfo_endpoint",
    "pushed_authorization_request_endpoint",
    "jwks_uri",
];

/// Checks one endpoint URL field: a string, an acceptable URL.
fn endpoint_field(field: &str, value: &Value, allow_insecure_http: bool) -> Result<Option<Url>, Error> {
    let shown = || sanitize_server_text(field);
    let url = match value {
        Value::Null => return Ok(None),
        Value::String(url) => url,
        _ => return Err(DiscoveryError::WrongType(shown()).into()),
    };
    match parse_endpoint_url(url, allow_insecure_http) {
        Ok(url) => Ok(Some(url)),
        Err(Error::InsecureUrl { url }) => Err(DiscoveryError::InsecureEndpoint {
            field: shown(),
            url: sanitize_server_text(&url),
        }
        .into()),
        Err(_) => Err(DiscoveryError::InvalidUrl { field: shown() }.into()),
    }
}

/// Where to look for an issuer's metadata, and the issuer the document must name.
#[derive(Debug)]
pub(crate) struct Locations {
    pub(crate) issuer: String,
    pub(crate) urls: Vec<Url>,
}

/// The metadata URLs to try for `issuer_or_url` (an issuer, or a full metadata URL of one of
/// the two well-known forms), checked like endpoint URLs.
pub(crate) fn locations(issuer_or_url: &str, allow_insecure_http: bool) -> Result<Locations, Error> {
    let parsed = check_issuer(issuer_or_url, allow_insecure_http)?;
    let origin = &parsed[..url::Position::BeforePath];
    let path = parsed.path();
    // A full OpenID Connect metadata URL: the issuer is what precedes the suffix.
    if let Some(issuer) = issuer_or_url.strip_suffix(OPENID_CONFIGURATION) {
        return Ok(Locations {
            issuer: issuer.to_owned(),
            urls: vec![parsed],
        });
    }
    // A full RFC 8414 metadata URL: the issuer is the origin and what follows the suffix, as
    // written (the issuer comparison is character for character).
    if path.starts_with(OAUTH_AUTHORIZATION_SERVER) {
        if let Some((raw_origin, rest)) = issuer_or_url.split_once(OAUTH_AUTHORIZATION_SERVER) {
            if rest.is_empty() || rest.starts_with('/') {
                return Ok(Locations {
                    issuer: format!("{raw_origin}{rest}"),
                    urls: vec![parsed.clone()],
                });
            }
        }
    }
    let trimmed = path.trim_end_matches('/');
    let oidc = format!("{origin}{trimmed}{OPENID_CONFIGURATION}");
    let oauth = format!("{origin}{OAUTH_AUTHORIZATION_SERVER}{trimmed}");
    Ok(Locations {
        issuer: issuer_or_url.to_owned(),
        urls: vec![
            parse_endpoint_url(&oidc, allow_insecure_http)?,
            parse_endpoint_url(&oauth, allow_insecure_http)?,
        ],
    })
}

/// Checks an issuer identifier (RFC 8414 §2): an `https` URL (or `http` on loopback, or with
/// the opt-out) without credentials, query or fragment.
pub(crate) fn check_issuer(issuer: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let parsed = parse_endpoint_url(issuer, allow_insecure_http)?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Config(
            "an issuer identifier has no query or fragment (RFC 8414 §2)".to_owned(),
        ));
    }
    Ok(parsed)
}

/// Fetches and checks the metadata: each URL in turn, the next one only after a 404.
pub(crate) async fn fetch(
    http: &HttpClient,
    clock: &dyn Clock,
    locations: &Locations,
    allow_insecure_http: bool,
) -> Result<ServerMetadata, Error> {
    let mut last = None;
    for url in &locations.urls {
        let request = server_request(http::Method::GET, url, &[], Bytes::new())?;
        let response = http.send(request, clock).await?;
        tracing::debug!(%url, status = %response.status, "discovery document fetched");
        if response.status == http::StatusCode::NOT_FOUND {
            last = Some(Error::HttpStatus {
                status: response.status,
                retry_after: None,
            });
            continue;
        }
        if !response.status.is_success() {
            return Err(status_error(&response));
        }
        let document = json_object(&response.body, response.status, "the discovery document")?;
        return ServerMetadata::from_map(&locations.issuer, document, allow_insecure_http);
    }
    Err(last.unwrap_or(Error::NoEndpoint {
        endpoint: "discovery",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> (String, Vec<String>) {
        let found = locations(issuer, false).unwrap();
        (found.issuer, found.urls.into_iter().map(String::from).collect())
    }

    #[test]
    fn well_known_urls_follow_each_specification() {
        assert_eq!(
            urls("https://a.example.com"),
            (
                "https://a.example.com".to_owned(),
                vec![
                    "https://a.example.com/.well-known/openid-configuration".to_owned(),
                    "https://a.example.com/.well-known/oauth-authorization-server".to_owned(),
                ]
            )
        );
        // A path: appended for OIDC, inserted after the host for RFC 8414; a trailing slash
        // is dropped from both URLs but not from the issuer to match.
        assert_eq!(
            urls("https://a.example.com:8443/t/x/"),
            (
                "https://a.example.com:8443/t/x/".to_owned(),
                vec![
                    "https://a.example.com:8443/t/x/.well-known/openid-configuration".to_owned(),
                    "https://a.example.com:8443/.well-known/oauth-authorization-server/t/x".to_owned(),
                ]
            )
        );
        // Full metadata URLs: fetched alone, the issuer read from them.
        assert_eq!(
            urls("http://127.0.0.1:3000/t/.well-known/openid-configuration"),
            (
                "http://127.0.0.1:3000/t".to_owned(),
                vec!["http://127.0.0.1:3000/t/.well-known/openid-configuration".to_owned()]
            )
        );
        assert_eq!(
            urls("https://a.example.com/.well-known/oauth-authorization-server/t"),
            (
                "https://a.example.com/t".to_owned(),
                vec!["https://a.example.com/.well-known/oauth-authorization-server/t".to_owned()]
            )
        );
        // Not the well-known segment itself: an ordinary issuer path.
        assert_eq!(
            urls("https://a.example.com/.well-known/oauth-authorization-serverx").1[0],
            "https://a.example.com/.well-known/oauth-authorization-serverx/.well-known/openid-configuration"
        );
        assert!(matches!(
            locations("http://a.example.com", false),
            Err(Error::InsecureUrl { .. })
        ));
        assert!(matches!(
            locations("https://a.example.com/#f", false),
            Err(Error::Config(_))
        ));
    }
}
