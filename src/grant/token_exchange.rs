//! The token exchange grant (RFC 8693): trading a token the client holds (the *subject*
//! token, and optionally an *actor* token) for another one, typically scoped to a downstream
//! API.
//!
//! ```
//! use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, SecurityToken, TokenCache};
//! use tower_oauth2::{TokenEndpoint, TokenExchange, TokenSource, TokenTypeUri};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # use bytes::Bytes;
//! # use http_body_util::{BodyExt, Full};
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     let form = request.into_body().collect().await?.to_bytes();
//! #     let body: &[u8] = if form.starts_with(b"grant_type=client_credentials") {
//! #         br#"{"access_token":"ours","token_type":"Bearer","expires_in":3600}"#
//! #     } else {
//! #         br#"{"access_token":"for-orders","token_type":"Bearer","expires_in":300,
//! #              "issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#
//! #     };
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(body))))
//! # });
//! let endpoint = TokenEndpoint::builder(
//!     "https://auth.example.com/token",
//!     ClientAuth::client_secret_basic("gateway", "its-secret"),
//! )
//! .http_client(HttpClient::new(server)) // a stand-in authorization server
//! .build()?;
//! // The token this service holds, kept fresh by a cache...
//! let ours = TokenCache::new(ClientCredentials::new(endpoint.clone()));
//! // ...exchanged for one the orders API accepts, each time a new one is needed.
//! let source = TokenExchange::new(endpoint, SecurityToken::from_cache(ours))
//!     .audience("https://orders.example.com")
//!     .scope("orders:read");
//! let token = source.fetch_token().await?;
//! assert_eq!(token.access_token().expose(), "for-orders");
//! assert_eq!(token.issued_token_type(), Some(TokenTypeUri::ACCESS_TOKEN.as_str()));
//! # Ok(()) }
//! ```
//!
//! # Tokens that are not access tokens
//!
//! A server that issues something other than an access token (an ID token, a SAML
//! assertion, a JWT that is not meant as a bearer token) answers with the `token_type`
//! `N_A` (RFC 8693 §2.2.1), and the issued token in `access_token`. Such a token cannot be
//! used as a bearer token, so:
//!
//! - by default (no [`requested_token_type`](TokenExchange::requested_token_type), or
//!   [`TokenTypeUri::ACCESS_TOKEN`]), a response with `token_type` `N_A` is refused with
//!   [`Error::UnsupportedTokenType`] (`"N_A"`), as any other type than `Bearer` is: the
//!   [`OAuth2Layer`](crate::OAuth2Layer) and the [`TokenCache`] put every
//!   token in an `Authorization: Bearer` header, and would otherwise send it there;
//! - when you asked for another type with
//!   [`requested_token_type`](TokenExchange::requested_token_type), [`TokenExchange::fetch`]
//!   accepts `N_A`: the [`Token`]'s [`token_type`](Token::token_type) is `N_A`, its
//!   [`access_token`](Token::access_token) is the issued token, and
//!   [`issued_token_type`](Token::issued_token_type) (which the response must then have)
//!   says what it is. As a [`TokenSource`] (behind a cache or the layer, which would send it
//!   as `Bearer`) the exchange refuses `N_A` all the same.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::cache::TokenCache;
use crate::endpoint::token::{with_params, Params, TokenEndpoint};
use crate::error::{Error, ErrorCode};
use crate::secret::Secret;
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

/// The `grant_type` of a token exchange request (RFC 8693 §2.1).
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A token type identifier (RFC 8693 §3): the URI that says what kind of token a subject,
/// actor, requested or issued token is. The registered ones are constants; any other URI is
/// made with [`TokenTypeUri::new`].
///
/// ```
/// use tower_oauth2::TokenTypeUri;
///
/// assert_eq!(TokenTypeUri::ACCESS_TOKEN.as_str(), "urn:ietf:params:oauth:token-type:access_token");
/// let custom = TokenTypeUri::new("urn:example:token-type:session");
/// assert_eq!(custom.to_string(), "urn:example:token-type:session");
/// assert_ne!(custom, TokenTypeUri::JWT);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenTypeUri(Cow<'static, str>);

impl TokenTypeUri {
    /// `urn:ietf:params:oauth:token-type:access_token`: an OAuth 2.0 access token.
    ///
    /// ```
    /// use tower_oauth2::{SecurityToken, TokenTypeUri};
    ///
    /// let subject = SecurityToken::new("the-token", TokenTypeUri::ACCESS_TOKEN);
    /// assert_eq!(subject.token_type(), &TokenTypeUri::ACCESS_TOKEN);
    /// ```
    pub const ACCESS_TOKEN: TokenTypeUri =
        TokenTypeUri(Cow::Borrowed("urn:ietf:params:oauth:token-type:access_token"));

    /// `urn:ietf:params:oauth:token-type:refresh_token`: an OAuth 2.0 refresh token.
    ///
    /// ```
    /// use tower_oauth2::TokenTypeUri;
    ///
    /// assert!(TokenTypeUri::REFRESH_TOKEN.as_str().ends_with(":refresh_token"));
    /// ```
    pub const REFRESH_TOKEN: TokenTypeUri =
        TokenTypeUri(Cow::Borrowed("urn:ietf:params:oauth:token-type:refresh_token"));

    /// `urn:ietf:params:oauth:token-type:id_token`: an OpenID Connect ID token.
    ///
    /// ```
    /// use tower_oauth2::{SecurityToken, TokenTypeUri};
    ///
    /// let subject = SecurityToken::new("eyJ...", TokenTypeUri::ID_TOKEN);
    /// # let _ = subject;
    /// ```
    pub const ID_TOKEN: TokenTypeUri =
        TokenTypeUri(Cow::Borrowed("urn:ietf:params:oauth:token-type:id_token"));

    /// `urn:ietf:params:oauth:token-type:saml1`: a base64url-encoded SAML 1.1 assertion.
    ///
    /// ```
    /// use tower_oauth2::TokenTypeUri;
    ///
    /// assert!(TokenTypeUri::SAML1.as_str().ends_with(":saml1"));
    /// ```
    pub const SAML1: TokenTypeUri = TokenTypeUri(Cow::Borrowed("urn:ietf:params:oauth:token-type:saml1"));

    /// `urn:ietf:params:oauth:token-type:saml2`: a base64url-encoded SAML 2.0 assertion.
    ///
    /// ```
    /// use tower_oauth2::TokenTypeUri;
    ///
    /// assert!(TokenTypeUri::SAML2.as_str().ends_with(":saml2"));
    /// ```
    pub const SAML2: TokenTypeUri = TokenTypeUri(Cow::Borrowed("urn:ietf:params:oauth:token-type:saml2"));

    /// `urn:ietf:params:oauth:token-type:jwt`: a JWT (RFC 7519).
    ///
    /// ```
    /// use tower_oauth2::TokenTypeUri;
    ///
    /// assert_eq!(TokenTypeUri::JWT.as_str(), "urn:ietf:params:oauth:token-type:jwt");
    /// ```
    pub const JWT: TokenTypeUri = TokenTypeUri(Cow::Borrowed("urn:ietf:params:oauth:token-type:jwt"));

    /// Any other token type identifier, such as a server's own URN.
    ///
    /// ```
    /// use tower_oauth2::TokenTypeUri;
    ///
    /// let kind = TokenTypeUri::new("urn:example:token-type:session");
    /// assert_eq!(kind.as_str(), "urn:example:token-type:session");
    /// // The registered ones compare equal whichever way they were made:
    /// assert_eq!(TokenTypeUri::new("urn:ietf:params:oauth:token-type:jwt"), TokenTypeUri::JWT);
    /// ```
    pub fn new(uri: impl Into<String>) -> Self {
        TokenTypeUri(Cow::Owned(uri.into()))
    }

    /// The URI.
    ///
    /// ```
    /// use tower_oauth2::TokenTypeUri;
    ///
    /// assert_eq!(TokenTypeUri::SAML2.as_str(), "urn:ietf:params:oauth:token-type:saml2");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenTypeUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TokenTypeUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subject or actor token of a [`TokenExchange`] with its [type](TokenTypeUri): a value
/// given once ([`new`](Self::new), [`access_token`](Self::access_token)), or the access
/// token of another [`TokenSource`] asked on each exchange ([`from_source`](Self::from_source)),
/// or the token a [`TokenCache`] holds ([`from_cache`](Self::from_cache)).
///
/// `Debug` shows the type, never the token.
///
/// ```
/// use tower_oauth2::{SecurityToken, TokenTypeUri};
///
/// let subject = SecurityToken::new("eyJhbGciOi...", TokenTypeUri::JWT);
/// let shown = format!("{subject:?}");
/// assert!(shown.contains("urn:ietf:params:oauth:token-type:jwt"));
/// assert!(!shown.contains("eyJhbGciOi"));
/// ```
#[derive(Clone)]
pub struct SecurityToken {
    value: TokenValue,
    token_type: TokenTypeUri,
}

#[derive(Clone)]
enum TokenValue {
    Fixed(Secret),
    Source(Arc<dyn TokenSource>),
    Cache(TokenCache),
}

impl SecurityToken {
    /// A token given as a value, of the type `token_type`.
    ///
    /// ```
    /// use tower_oauth2::{SecurityToken, TokenTypeUri};
    ///
    /// // An ID token the user signed in with, exchanged for an access token:
    /// let subject = SecurityToken::new("eyJ...", TokenTypeUri::ID_TOKEN);
    /// assert_eq!(subject.token_type(), &TokenTypeUri::ID_TOKEN);
    /// ```
    pub fn new(token: impl Into<Secret>, token_type: TokenTypeUri) -> Self {
        SecurityToken {
            value: TokenValue::Fixed(token.into()),
            token_type,
        }
    }

    /// An access token given as a value (type [`TokenTypeUri::ACCESS_TOKEN`]): the one a
    /// request to this service came with, say.
    ///
    /// ```
    /// use tower_oauth2::{SecurityToken, TokenTypeUri};
    ///
    /// let subject = SecurityToken::access_token("the-callers-token");
    /// assert_eq!(subject.token_type(), &TokenTypeUri::ACCESS_TOKEN);
    /// ```
    pub fn access_token(token: impl Into<Secret>) -> Self {
        Self::new(token, TokenTypeUri::ACCESS_TOKEN)
    }

    /// The access token of `source`, asked for on each exchange (type
    /// [`TokenTypeUri::ACCESS_TOKEN`]; change it with
    /// [`with_token_type`](Self::with_token_type)). The source fetches a new token for every
    /// exchange: to exchange the token a service already holds, use
    /// [`from_cache`](Self::from_cache). When the source fails, the exchange fails with its
    /// error, unchanged, and sends nothing.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, SecurityToken, Token};
    ///
    /// let subject = SecurityToken::from_source(source_fn(|| async { Ok(Token::bearer("from-a-sidecar")) }));
    /// # let _ = subject;
    /// ```
    pub fn from_source(source: impl TokenSource + 'static) -> Self {
        SecurityToken {
            value: TokenValue::Source(Arc::new(source)),
            token_type: TokenTypeUri::ACCESS_TOKEN,
        }
    }

    /// The token `cache` holds, asked for on each exchange (type
    /// [`TokenTypeUri::ACCESS_TOKEN`]; change it with
    /// [`with_token_type`](Self::with_token_type)): the cache hands out its current token and
    /// fetches one only when it has no valid one ([`TokenCache::valid_token`]). Clones of a
    /// cache share it, so this is the token the service uses for its own calls.
    ///
    /// If the server refuses the exchange with `invalid_grant` (the subject was revoked, say),
    /// the cache is [invalidated](TokenCache::invalidate), so the next exchange uses a new
    /// token instead of the refused one.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, SecurityToken, Token, TokenCache};
    ///
    /// let ours = TokenCache::new(source_fn(|| async { Ok(Token::bearer("held-by-this-service")) }));
    /// let subject = SecurityToken::from_cache(ours.clone()); // clones share the cache
    /// # let _ = subject;
    /// ```
    pub fn from_cache(cache: TokenCache) -> Self {
        SecurityToken {
            value: TokenValue::Cache(cache),
            token_type: TokenTypeUri::ACCESS_TOKEN,
        }
    }

    /// Sets the token's type.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, SecurityToken, Token, TokenTypeUri};
    ///
    /// // A source whose tokens are JWTs the server should read as such:
    /// let subject = SecurityToken::from_source(source_fn(|| async { Ok(Token::bearer("eyJ...")) }))
    ///     .with_token_type(TokenTypeUri::JWT);
    /// assert_eq!(subject.token_type(), &TokenTypeUri::JWT);
    /// ```
    #[must_use]
    pub fn with_token_type(mut self, token_type: TokenTypeUri) -> Self {
        self.token_type = token_type;
        self
    }

    /// The token's type, sent as `subject_token_type` or `actor_token_type`.
    ///
    /// ```
    /// use tower_oauth2::{SecurityToken, TokenTypeUri};
    ///
    /// assert_eq!(SecurityToken::new("a", TokenTypeUri::SAML2).token_type(), &TokenTypeUri::SAML2);
    /// ```
    pub fn token_type(&self) -> &TokenTypeUri {
        &self.token_type
    }

    /// The token's value: the one given, or the source's current access token.
    async fn resolve(&self) -> Result<Secret, Error> {
        match &self.value {
            TokenValue::Fixed(secret) => Ok(secret.clone()),
            TokenValue::Source(source) => Ok(source.fetch_token().await?.access_token().clone()),
            TokenValue::Cache(cache) => Ok(cache.valid_token().await?.access_token().clone()),
        }
    }

    /// After the server refused the token (`invalid_grant`): a cache drops it, so the next
    /// exchange does not send it again.
    fn refused(&self) {
        if let TokenValue::Cache(cache) = &self.value {
            cache.invalidate();
        }
    }
}

impl fmt::Debug for SecurityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SecurityToken");
        s.field("token_type", &self.token_type);
        match &self.value {
            TokenValue::Fixed(secret) => s.field("value", secret),
            TokenValue::Source(_) => s.field("value", &"from a TokenSource"),
            TokenValue::Cache(_) => s.field("value", &"from a TokenCache"),
        };
        s.finish()
    }
}

/// Gets tokens with the token exchange grant (RFC 8693 §2): a subject token (and optionally
/// an actor token) traded for a new token.
///
/// Each fetch resolves the subject and actor tokens (a [`SecurityToken`] from a source asks
/// it then), and sends `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
/// `subject_token`, `subject_token_type`, `actor_token` and `actor_token_type` if there is an
/// actor, `requested_token_type` if set, then the source's parameters (`audience`,
/// `resource`, `scope`, [`param`](Self::param)s, in the order they were added), and the
/// client's authentication. The subject and actor tokens are cut out of any server text that
/// echoes them, and never appear in `Debug`. See [the module docs](self) for responses whose
/// `token_type` is `N_A`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower_oauth2::{ClientAuth, HttpClient, SecurityToken, TokenEndpoint, TokenExchange, TokenTypeUri};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// // A stand-in for the authorization server: it keeps the form it got and issues a token.
/// let form = Arc::new(Mutex::new(String::new()));
/// let seen = form.clone();
/// let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
///     let seen = seen.clone();
///     async move {
///         let body = request.into_body().collect().await?.to_bytes();
///         *seen.lock().unwrap() = String::from_utf8_lossy(&body).into_owned();
///         Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
///             br#"{"access_token":"downstream","token_type":"Bearer","expires_in":300,
///                  "issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
///         ))))
///     }
/// });
/// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("api"))
///     .http_client(HttpClient::new(server))
///     .build()?;
///
/// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token"))
///     .actor(SecurityToken::new("services-jwt", TokenTypeUri::JWT))
///     .requested_token_type(TokenTypeUri::ACCESS_TOKEN)
///     .audience("orders");
/// let token = source.fetch().await?;
/// assert_eq!(token.access_token().expose(), "downstream");
/// assert_eq!(
///     *form.lock().unwrap(),
///     "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
///      &subject_token=users-token\
///      &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
///      &actor_token=services-jwt&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
///      &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
///      &audience=orders&client_id=api"
/// );
/// assert!(!format!("{source:?}").contains("users-token"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TokenExchange {
    endpoint: TokenEndpoint,
    subject: SecurityToken,
    actor: Option<SecurityToken>,
    requested_token_type: Option<TokenTypeUri>,
    params: Params,
}

impl TokenExchange {
    /// A source that exchanges `subject` at `endpoint`, with no actor, requested type or
    /// other parameters yet.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, SecurityToken, TokenEndpoint, TokenExchange};
    ///
    /// let endpoint = TokenEndpoint::new(
    ///     "https://auth.example.com/token",
    ///     ClientAuth::client_secret_basic("gateway", "its-secret"),
    /// )?;
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("the-callers-token"));
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(endpoint: TokenEndpoint, subject: SecurityToken) -> Self {
        TokenExchange {
            endpoint,
            subject,
            actor: None,
            requested_token_type: None,
            params: Params::new(),
        }
    }

    /// Sets the actor token: the party acting on behalf of the subject (delegation, RFC 8693
    /// §1.1), replacing an earlier one.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, SecurityToken, TokenEndpoint, TokenExchange, TokenTypeUri};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api"))?;
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token"))
    ///     .actor(SecurityToken::new("eyJ...", TokenTypeUri::JWT));
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn actor(mut self, actor: SecurityToken) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Sets `requested_token_type`: the type of token wanted. The server chooses when it is
    /// not set (usually an access token). Asking for a type other than
    /// [`TokenTypeUri::ACCESS_TOKEN`] lets the response's `token_type` be `N_A` (see
    /// [the module docs](self#tokens-that-are-not-access-tokens)).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, SecurityToken, TokenEndpoint, TokenExchange, TokenTypeUri};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api"))?;
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token"))
    ///     .requested_token_type(TokenTypeUri::ID_TOKEN);
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn requested_token_type(mut self, token_type: TokenTypeUri) -> Self {
        self.requested_token_type = Some(token_type);
        self
    }

    /// Adds an `audience`: the logical name of a service the new token is for (RFC 8693
    /// §2.1); call once per audience.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, SecurityToken, TokenEndpoint, TokenExchange};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api"))?;
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token"))
    ///     .audience("orders")
    ///     .audience("billing");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.params = self.params.param("audience", audience);
        self
    }

    /// Adds a `resource`: the URI of a service the new token is for (RFC 8693 §2.1, RFC
    /// 8707); call once per resource.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, SecurityToken, TokenEndpoint, TokenExchange};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api"))?;
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token"))
    ///     .resource("https://orders.example.com/")
    ///     .resource("https://files.example.com/");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.params = self.params.resource(resource);
        self
    }

    /// Sets `scope` (space-separated), replacing an earlier one.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, SecurityToken, TokenEndpoint, TokenExchange};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api"))?;
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token"))
    ///     .scope("orders:read");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.params = self.params.scope(scope);
        self
    }

    /// Adds any parameter (repeatable).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, SecurityToken, TokenEndpoint, TokenExchange};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api"))?;
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token"))
    ///     .param("tenant", "acme");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params = self.params.param(name, value);
        self
    }

    /// Replaces all the parameters set with [`audience`](Self::audience),
    /// [`resource`](Self::resource), [`scope`](Self::scope) and [`param`](Self::param).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Params, SecurityToken, TokenEndpoint, TokenExchange};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("api"))?;
    /// let params = Params::new().scope("read").param("audience", "orders");
    /// let source = TokenExchange::new(endpoint, SecurityToken::access_token("users-token")).params(params);
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// Exchanges the subject token for a new token.
    ///
    /// This is what [`TokenSource::fetch_token`] does; put the source behind a
    /// [`TokenCache`] or an [`OAuth2Layer`](crate::OAuth2Layer) rather
    /// than calling it for each request. Fails with the subject's (or actor's) source's error
    /// if that fails (nothing is sent then), with [`Error::OAuth2`] if the server refuses
    /// (`invalid_grant` for a subject token it does not accept, `invalid_target` for an
    /// audience or resource it does not know, ...), and with [`Error::UnsupportedTokenType`]
    /// for a `token_type` other than `Bearer` (or `N_A`, see
    /// [the module docs](self#tokens-that-are-not-access-tokens)).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, Error, HttpClient, SecurityToken, TokenEndpoint, TokenExchange, TokenTypeUri};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"eyJ.id.token","token_type":"N_A",
    /// #              "issued_token_type":"urn:ietf:params:oauth:token-type:id_token"}"#,
    /// #     ))))
    /// # });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("api"))
    ///     .http_client(HttpClient::new(server)) // a stand-in server that issues an ID token, N_A
    ///     .build()?;
    /// let subject = SecurityToken::access_token("users-token");
    ///
    /// // Asked for an ID token: the N_A answer is what was asked for.
    /// let id = TokenExchange::new(endpoint.clone(), subject.clone())
    ///     .requested_token_type(TokenTypeUri::ID_TOKEN)
    ///     .fetch()
    ///     .await?;
    /// assert_eq!(id.token_type(), "N_A");
    /// assert_eq!(id.issued_token_type(), Some(TokenTypeUri::ID_TOKEN.as_str()));
    ///
    /// // Asked for nothing in particular: an N_A token is no access token, and is refused.
    /// let err = TokenExchange::new(endpoint, subject).fetch().await.unwrap_err();
    /// assert!(matches!(err, Error::UnsupportedTokenType(ref kind) if kind == "N_A"));
    /// # Ok(()) }
    /// ```
    pub async fn fetch(&self) -> Result<Token, Error> {
        let not_applicable_ok = self
            .requested_token_type
            .as_ref()
            .is_some_and(|requested| *requested != TokenTypeUri::ACCESS_TOKEN);
        self.exchange(not_applicable_ok).await
    }

    /// One exchange; `not_applicable_ok`: whether a `token_type` of `N_A` is accepted.
    async fn exchange(&self, not_applicable_ok: bool) -> Result<Token, Error> {
        let subject = self.subject.resolve().await?;
        let actor = match &self.actor {
            Some(actor) => Some(actor.resolve().await?),
            None => None,
        };
        let mut grant = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject.expose()),
            ("subject_token_type", self.subject.token_type.as_str()),
        ];
        if let (Some(actor), Some(actor_token)) = (&self.actor, &actor) {
            grant.push(("actor_token", actor_token.expose()));
            grant.push(("actor_token_type", actor.token_type.as_str()));
        }
        if let Some(requested) = &self.requested_token_type {
            grant.push(("requested_token_type", requested.as_str()));
        }
        let form = with_params(&grant, &self.params);
        let result = self
            .endpoint
            .request_issued_token(&form, &[], not_applicable_ok)
            .await;
        if result.as_ref().err().and_then(Error::code) == Some(&ErrorCode::InvalidGrant) {
            // The server refused a token: one from a cache is dropped there.
            self.subject.refused();
            if let Some(actor) = &self.actor {
                actor.refused();
            }
        }
        result
    }
}

/// Behind a [`TokenCache`] or an [`OAuth2Layer`](crate::OAuth2Layer) every token is sent as
/// `Bearer`: as a source, an exchange accepts access tokens only, and refuses an `N_A` token
/// (an ID token, a SAML assertion, ...) with [`Error::UnsupportedTokenType`] whatever
/// [`requested_token_type`](TokenExchange::requested_token_type) says. Read those with
/// [`fetch`](TokenExchange::fetch).
impl TokenSource for TokenExchange {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.exchange(false))
    }
}
