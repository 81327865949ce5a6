//! The HTTP transport the token endpoint client sends through.
//!
//! [`HttpClient`] erases any [`tower::Service`] that takes an `http::Request<Full<Bytes>>` and
//! returns an `http::Response` with a body, so you can bring your own client, with your own
//! timeouts, proxies and TLS settings. The default (cargo feature `hyper-client`, on by
//! default) is hyper-util's client over hyper-rustls with the `ring` provider and Mozilla's
//! root certificates, the proxy environment variables honoured, a 30 s timeout, and no
//! redirect following: see [`HyperClientBuilder`] for proxies and trust roots. With feature
//! `reqwest`, [`HttpClient::reqwest`] uses the application's own `reqwest::Client`.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! // Any tower service over http::Request<Full<Bytes>> will do; here, a canned answer.
//! let service = tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
//!         br#"{"access_token":"abc","token_type":"Bearer"}"#,
//!     ))))
//! });
//! let client = HttpClient::new(service)
//!     .with_timeout(Duration::from_secs(10))
//!     .with_max_body_size(64 * 1024);
//! let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
//!     .http_client(client)
//!     .build()?;
//! let token = ClientCredentials::new(endpoint).fetch().await?;
//! assert_eq!(token.access_token().expose(), "abc");
//! # Ok(()) }
//! ```
//!
//! Whatever the service, response bodies are read up to a limit (1 MiB unless changed with
//! [`HttpClient::with_max_body_size`]); a larger body is [`Error::BodyTooLarge`]. A body cut
//! short (the connection closed before its `Content-Length` or last chunk, or a service handing
//! over fewer bytes than an unencoded body's `Content-Length`) is a transient
//! [`Error::Transport`] ("the connection closed before the response body was complete"), not
//! a malformed response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Collected, Full, LengthLimitError, Limited};
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use crate::clock::Clock;
use crate::error::{BodyReadError, BoxError, Error};
use crate::secret::Redactions;

/// Whether `host` (as a URL or URI spells it: IPv6 in brackets, any case, maybe a trailing
/// dot) is this machine's loopback: `127.0.0.0/8`, `::1`, `localhost` or a name under
/// `.localhost` (RFC 6761 §6.3). Endpoint URLs may use plain `http` only there, and proxies
/// from the environment never take such a destination.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .is_some_and(|at| host.is_char_boundary(at) && host[at..].eq_ignore_ascii_case(".localhost"))
}

#[cfg(feature = "hyper-client")]
mod hyper_client;
#[cfg(feature = "reqwest")]
mod reqwest_client;

#[cfg(feature = "hyper-client")]
pub use hyper_client::{HyperClientBuilder, TlsRoots};

/// The default limit on a response body: 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// The default request timeout of [`HttpClient::hyper`]: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

type ErasedService =
    BoxCloneSyncService<http::Request<Full<Bytes>>, http::Response<UnsyncBoxBody<Bytes, BoxError>>, BoxError>;

/// The HTTP client used to talk to the authorization server. Cheap to clone.
///
/// Every [`TokenEndpoint`](crate::TokenEndpoint) sends through one: [`HttpClient::hyper`] by
/// default, or the one given to
/// [`TokenEndpointBuilder::http_client`](crate::TokenEndpointBuilder::http_client). One client
/// can serve several endpoints, sharing its connections:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # let requests = Arc::new(AtomicUsize::new(0));
/// # let counter = requests.clone();
/// # let server = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
/// #     counter.fetch_add(1, Ordering::SeqCst);
/// #     async {
/// #         Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
/// #             br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
/// #         ))))
/// #     }
/// # });
/// let http = HttpClient::new(server); // a stand-in authorization server that counts `requests`
/// let url = "https://auth.example.com/token";
/// let orders = TokenEndpoint::builder(url, ClientAuth::client_secret_basic("orders", "secret-1"))
///     .http_client(http.clone())
///     .build()?;
/// let billing = TokenEndpoint::builder(url, ClientAuth::client_secret_basic("billing", "secret-2"))
///     .http_client(http)
///     .build()?;
/// ClientCredentials::new(orders).fetch().await?;
/// ClientCredentials::new(billing).fetch().await?;
/// assert_eq!(requests.load(Ordering::SeqCst), 2); // both through the one client
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    service: ErasedService,
    timeout: Option<Duration>,
    max_body_size: usize,
    /// Headers set on every request ([`HttpClient::with_header`]).
    headers: Arc<http::HeaderMap>,
}

/// A response whose body has been read in full (within the size limit).
#[derive(Debug)]
pub(crate) struct ReadResponse {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
    /// When the body had been read, by the endpoint's clock.
    pub(crate) received_at: SystemTime,
    /// The secrets the request carried, to cut out of server text (set by the endpoint).
    pub(crate) redactions: Redactions,
}

impl HttpClient {
    /// Wraps any tower service over `http::Request<Full<Bytes>>`.
    ///
    /// No timeout is added (the service is expected to have its own; see
    /// [`with_timeout`](Self::with_timeout)). Redirects are whatever the service does with
    /// them; a 3xx response that reaches this crate is an error.
    ///
    /// The service gets each request as the token endpoint built it: a `POST` of a form to the
    /// endpoint's URL.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let service = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    ///     assert_eq!(request.method(), http::Method::POST);
    ///     assert_eq!(request.uri(), "https://auth.example.com/token");
    ///     assert_eq!(request.headers()["content-type"], "application/x-www-form-urlencoded");
    ///     let answer = r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(answer))))
    /// });
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(HttpClient::new(service))
    ///     .build()?;
    /// let token = ClientCredentials::new(endpoint).fetch().await?;
    /// assert_eq!(token.access_token().expose(), "abc");
    /// # Ok(()) }
    /// ```
    pub fn new<S, B>(service: S) -> Self
    where
        S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let service = service
            .map_response(|response: http::Response<B>| {
                response.map(|body| body.map_err(Into::into).boxed_unsync())
            })
            .map_err(Into::into);
        HttpClient {
            service: BoxCloneSyncService::new(service),
            timeout: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            headers: Arc::default(),
        }
    }

    /// hyper-util's client with hyper-rustls (`ring`, webpki roots, HTTP/1.1 and HTTP/2,
    /// `http` and `https` URLs), the proxy environment variables (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read now) honoured as curl does, a
    /// [30 s](DEFAULT_TIMEOUT) timeout and no redirects. The same as
    /// `HttpClient::hyper_builder().build()`: see [`HyperClientBuilder`] for the details and
    /// the other choices (an explicit proxy or none, the OS trust store, a private CA).
    ///
    /// Needs a tokio runtime when requests are sent.
    ///
    /// ```
    /// let client = tower_oauth2::HttpClient::hyper()?;
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[cfg(feature = "hyper-client")]
    pub fn hyper() -> Result<Self, Error> {
        HyperClientBuilder::new().build()
    }

    /// A builder for the hyper-based client, to choose its proxy and trust roots.
    ///
    /// ```
    /// use tower_oauth2::{HttpClient, TlsRoots};
    ///
    /// let client = HttpClient::hyper_builder()
    ///     .no_proxy()
    ///     .tls_roots(TlsRoots::WebPki)
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[cfg(feature = "hyper-client")]
    pub fn hyper_builder() -> HyperClientBuilder {
        HyperClientBuilder::new()
    }

    /// Limits the time for one exchange with the authorization server, from sending the
    /// request to reading the whole response body. Measured on tokio's real-time clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, ClientCredentials, Error, HttpClient, TokenEndpoint};
    ///
    /// // (This example runs on tokio's paused clock, `start_paused`: it does not really wait.)
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     tokio::time::sleep(Duration::from_secs(60)).await;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
    /// #     ))))
    /// # });
    /// let http = HttpClient::new(server) // a stand-in authorization server that takes 60 s to answer
    ///     .with_timeout(Duration::from_secs(10));
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(http)
    ///     .build()?;
    /// let err = ClientCredentials::new(endpoint).fetch().await.unwrap_err();
    /// assert!(matches!(err, Error::Timeout(limit) if limit == Duration::from_secs(10)));
    /// assert!(err.is_transient()); // a cache tries again after its backoff
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Removes the timeout set by [`with_timeout`](Self::with_timeout) or by
    /// [`hyper`](Self::hyper).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
    ///
    /// // (This example runs on tokio's paused clock, `start_paused`: it does not really wait.)
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     tokio::time::sleep(Duration::from_secs(60)).await;
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
    /// #         br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
    /// #     ))))
    /// # });
    /// let http = HttpClient::new(server) // a stand-in authorization server that takes 60 s to answer
    ///     .with_timeout(Duration::from_secs(10)); // the application's usual limit
    /// let patient = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(http.without_timeout()) // for the one server known to be slow
    ///     .build()?;
    /// let token = ClientCredentials::new(patient).fetch().await?;
    /// assert_eq!(token.access_token().expose(), "abc");
    /// # Ok(()) }
    /// ```
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Sets the largest response body that will be read, in bytes (default 1 MiB).
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, ClientCredentials, Error, HttpClient, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = format!(r#"{{"access_token":"abc","padding":"{}"}}"#, "x".repeat(4096));
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    /// # });
    /// let http = HttpClient::new(server) // a stand-in authorization server that answers with 4 KiB
    ///     .with_max_body_size(1024);
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(http)
    ///     .build()?;
    /// let err = ClientCredentials::new(endpoint).fetch().await.unwrap_err();
    /// assert!(matches!(err, Error::BodyTooLarge { limit: 1024 }));
    /// # Ok(()) }
    /// ```
    pub fn with_max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Sets a header on every request this client sends to the authorization server and
    /// the provider APIs, replacing the crate's own value (`User-Agent`, say: some servers
    /// want one that names the application). Repeat it for several headers.
    ///
    /// The headers that carry the request itself cannot be set this way: `Authorization`
    /// (the client's authentication, or the user's token), `Content-Type`, `Content-Length`,
    /// `Transfer-Encoding` and `Host` are [`Error::Config`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::header::{HeaderValue, USER_AGENT};
    /// use http_body_util::Full;
    /// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    ///     assert_eq!(request.headers()[USER_AGENT], "my-app/1.2 (by /u/someone)");
    ///     let answer = r#"{"access_token":"abc","token_type":"Bearer"}"#;
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(answer))))
    /// });
    /// let http = HttpClient::new(server) // a stand-in authorization server
    ///     .with_header(USER_AGENT, HeaderValue::from_static("my-app/1.2 (by /u/someone)"))?;
    /// assert!(HttpClient::new(tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    /// }))
    /// .with_header(http::header::AUTHORIZATION, HeaderValue::from_static("Basic eDp5"))
    /// .is_err());
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(http)
    ///     .build()?;
    /// ClientCredentials::new(endpoint).fetch().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_header(
        mut self,
        name: http::header::HeaderName,
        value: http::HeaderValue,
    ) -> Result<Self, Error> {
        use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
        if [
            AUTHORIZATION,
            CONTENT_TYPE,
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
            HOST,
        ]
        .contains(&name)
        {
            return Err(Error::Config(format!(
                "`{name}` is set by the crate for each request; it cannot be a fixed header of the HTTP client"
            )));
        }
        Arc::make_mut(&mut self.headers).insert(name, value);
        Ok(self)
    }

    /// Sends a request and reads its whole response, within the timeout and size limit;
    /// `clock` stamps the moment the response was read.
    pub(crate) async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        clock: &dyn Clock,
    ) -> Result<ReadResponse, Error> {
        let exchange = self.exchange(request, clock);
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or(Err(Error::Timeout(limit))),
            None => exchange.await,
        }
    }

    async fn exchange(
        &self,
        mut request: http::Request<Full<Bytes>>,
        clock: &dyn Clock,
    ) -> Result<ReadResponse, Error> {
        for (name, value) in self.headers.iter() {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let response = self
            .service
            .clone()
            .oneshot(request)
            .await
            .map_err(transport_error)?;
        let (parts, body) = response.into_parts();
        let limit = self.max_body_size;
        // Boxed to a concrete `Send` future: the compiler cannot otherwise prove `Limited`'s
        // `Into<BoxError>` bound for every lifetime inside an async fn (rust-lang/rust#102211).
        let collect: Pin<Box<dyn Future<Output = Result<Collected<Bytes>, BoxError>> + Send>> =
            Box::pin(Limited::new(body, limit).collect());
        let body = collect
            .await
            .map_err(|e: BoxError| {
                if e.is::<LengthLimitError>() {
                    Error::BodyTooLarge { limit }
                } else {
                    Error::Transport(Arc::new(BodyReadError::from_cause(e)))
                }
            })?
            .to_bytes();
        if is_short_of_content_length(&parts.headers, body.len()) {
            // A service that does not check the length itself (hyper does) handed over less
            // than the server announced: the connection closed early.
            return Err(Error::Transport(Arc::new(BodyReadError::incomplete())));
        }
        Ok(ReadResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            received_at: clock.now(),
            redactions: Redactions::default(),
        })
    }
}

/// A request to an endpoint of the authorization server: JSON wanted, the crate named in
/// `User-Agent`, `headers` added, `body` sent. Every request the crate makes to the server is
/// built here.
pub(crate) fn server_request(
    method: http::Method,
    url: &url::Url,
    headers: &[(http::header::HeaderName, http::HeaderValue)],
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, Error> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("tower-oauth2/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|e| Error::Config(format!("cannot build a request to {url}: {e}")))?;
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(request)
}

fn transport_error(err: BoxError) -> Error {
    Error::Transport(Arc::from(err))
}

/// Whether `received` bytes are fewer than the response's `Content-Length` announced. Only for
/// bodies without a `Content-Encoding`, which a client may have decoded to another length.
fn is_short_of_content_length(headers: &http::HeaderMap, received: usize) -> bool {
    if headers
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return false;
    }
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    match (lengths.next(), lengths.next()) {
        (Some(length), None) => length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|announced| (received as u64) < announced),
        _ => false,
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("max_body_size", &self.max_body_size)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
