//! Logging a user in from a CLI or a desktop app: the authorization code flow with a loopback
//! redirect (RFC 8252 §7.3), feature `loopback`.
//!
//! [`LoopbackLogin`] listens on `127.0.0.1` on a port the system picks, opens the system
//! browser at the authorization URL (and prints it, in case no browser opens), receives the
//! one redirect back to it, exchanges the code, answers the browser with a small page that
//! says whether the login worked, and closes the port.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! use std::time::Duration;
//! use tower_oauth2::grant::loopback::LoopbackLogin;
//! use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
//! #     let body = r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
//! # });
//! let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
//!     .authorization_url("https://auth.example.com/authorize")
//!     .token_url("https://auth.example.com/token")
//!     .http_client(HttpClient::new(server)) // a stand-in token endpoint
//!     .build()?;
//! let login = LoopbackLogin::bind()
//!     .await?
//!     .timeout(Duration::from_secs(120))
//! #   .open_with(|url| { tokio::spawn(approve(url.clone())); })
//!     ; // default: opens the system browser and prints the URL
//! let login = login.run(&client, |request| request.scope("offline_access")).await?;
//! assert_eq!(login.token().access_token().expose(), "at-1");
//! # Ok(()) }
//! # // The user's browser, after the server approved: back to the redirect URI with the state.
//! # async fn approve(url: url::Url) {
//! #     use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
//! #     let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).unwrap().1.into_owned();
//! #     let redirect = url::Url::parse(&param("redirect_uri")).unwrap();
//! #     let mut stream = tokio::net::TcpStream::connect(redirect.socket_addrs(|| None).unwrap()[0]).await.unwrap();
//! #     let request = format!(
//! #         "GET {}?code=c-1&state={} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
//! #         redirect.path(), param("state"), redirect.port().unwrap()
//! #     );
//! #     stream.write_all(request.as_bytes()).await.unwrap();
//! #     let mut page = String::new();
//! #     stream.read_to_string(&mut page).await.unwrap();
//! #     assert!(page.contains("Login finished"));
//! # }
//! ```
//!
//! # What it does
//!
//! - **The redirect URI** is `http://127.0.0.1:PORT/callback`: the IPv4 loopback literal, never
//!   `localhost` (RFC 8252 §8.3: a name can resolve elsewhere or to the other IP version), on a
//!   port the system picks ([`LoopbackLogin::bind`]), or a given port and path
//!   ([`LoopbackLogin::bind_to`]) for a server that registers them. The authorization request
//!   is made with it ([`LoopbackLogin::run`]), so the two cannot differ.
//! - **The browser**: [`webbrowser`](https://docs.rs/webbrowser) opens the system browser, and
//!   the URL is printed on standard error in any case, for a machine without one (over SSH)
//!   or a browser that did not open. [`LoopbackLogin::open_with`] replaces both: a desktop
//!   app's own window, a test, a headless demo.
//! - **Exactly one callback**: the first `GET` on the callback path that carries this
//!   login's `state` is the login's (an answer of the server, a code or an error such as
//!   `access_denied`); the listener is closed as soon as it arrives, and a second one on a
//!   connection that was already open is refused (`409`). What does not count, and gets an
//!   answer while the wait goes on: a request on the callback path without `state`, with
//!   another one or with a parameter twice (a local process, a browser's retry, an old tab:
//!   `400`), a request whose `Host` is not `127.0.0.1:PORT` (a DNS-rebinding page: `400`),
//!   other paths (a browser's `/favicon.ico`: `404`).
//! - **The page**: the browser is answered after the code exchange, so the page tells what
//!   happened to the whole login: finished, or failed and why (the error, HTML-escaped, with
//!   no secret in it). It is a static page: no script, no link, no referrer.
//! - **The timeout** (default [`DEFAULT_LOGIN_TIMEOUT`], five minutes) bounds the wait for the
//!   callback: past it, [`Error::Loopback`] with [`LoopbackError::TimedOut`], and the port is
//!   closed. The code exchange after the callback is bounded by the client's own timeout.
//! - **The checks** are the authorization code flow's: `state`, `iss` (RFC 9207), the
//!   server's error response (`access_denied`, ...) and the code exchange with the PKCE
//!   verifier ([`OAuth2Client::exchange_code`]).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use url::Url;

use crate::{
    AuthorizationRequest, Callback, CallbackError, Error, Login, OAuth2Client, PendingAuthorization,
};

/// How long [`LoopbackLogin`] waits for the callback unless told otherwise: five minutes.
///
/// ```
/// assert_eq!(tower_oauth2::grant::loopback::DEFAULT_LOGIN_TIMEOUT.as_secs(), 300);
/// ```
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The callback path of [`LoopbackLogin::bind`].
const DEFAULT_PATH: &str = "/callback";

/// How long a connection may take to send its request head (a browser's idle preconnection is
/// dropped after it).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the page may take to reach the browser once the login is over.
const PAGE_GRACE: Duration = Duration::from_secs(5);

/// Replaces the system browser: given the authorization URL.
type Opener = Box<dyn FnOnce(&Url) + Send>;

/// Why a loopback login failed on its own side, in [`Error::Loopback`].
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::grant::loopback::LoopbackError;
///
/// let err = tower_oauth2::Error::Loopback(LoopbackError::TimedOut(Duration::from_secs(300)));
/// assert!(err.to_string().contains("no login callback"));
/// assert!(!err.is_transient());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoopbackError {
    /// The listener could not be bound on `127.0.0.1` (the port given to
    /// [`LoopbackLogin::bind_to`] is taken, say). The OS error is the
    /// [source](std::error::Error::source).
    Bind(Arc<io::Error>),
    /// No callback reached the listener within the timeout: the user did not finish the login
    /// in the browser (or the browser never opened).
    TimedOut(Duration),
}

impl fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopbackError::Bind(_) => f.write_str("could not listen on 127.0.0.1 for the login callback"),
            LoopbackError::TimedOut(limit) => write!(
                f,
                "no login callback within {limit:?}: the login was not finished in the browser"
            ),
        }
    }
}

impl std::error::Error for LoopbackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopbackError::Bind(err) => Some(&**err),
            LoopbackError::TimedOut(_) => None,
        }
    }
}

/// A login from a native app (RFC 8252): a listener on `127.0.0.1` for the redirect, the
/// system browser for the user, and the code exchange. See the [module](self) docs.
///
/// ```
/// use tower_oauth2::grant::loopback::LoopbackLogin;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// let login = LoopbackLogin::bind().await?;
/// assert!(login.redirect_uri().starts_with("http://127.0.0.1:"));
/// assert!(login.redirect_uri().ends_with("/callback"));
/// # Ok(()) }
/// ```
#[must_use = "a LoopbackLogin does nothing until `run`"]
pub struct LoopbackLogin {
    listener: TcpListener,
    path: String,
    /// `127.0.0.1:PORT`: the `Host` the browser sends.
    authority: String,
    redirect_uri: String,
    timeout: Duration,
    /// `None`: the system browser. In a mutex only to be `Sync` without asking it of the
    /// closure.
    opener: Mutex<Option<Opener>>,
}

impl fmt::Debug for LoopbackLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let custom = self.opener.lock().map(|o| o.is_some()).unwrap_or(true);
        f.debug_struct("LoopbackLogin")
            .field("redirect_uri", &self.redirect_uri)
            .field("timeout", &self.timeout)
            .field("browser", &if custom { "open_with" } else { "system" })
            .finish()
    }
}

impl LoopbackLogin {
    /// Listens on `127.0.0.1` on a port the system picks; the redirect URI is
    /// `http://127.0.0.1:PORT/callback`.
    ///
    /// ```
    /// use tower_oauth2::grant::loopback::LoopbackLogin;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let first = LoopbackLogin::bind().await?;
    /// let second = LoopbackLogin::bind().await?;
    /// assert_ne!(first.redirect_uri(), second.redirect_uri());
    /// # Ok(()) }
    /// ```
    pub async fn bind() -> Result<Self, Error> {
        Self::bind_to(0, DEFAULT_PATH).await
    }

    /// Listens on `127.0.0.1:port` (`0`: a port the system picks) with the callback at `path`,
    /// for a server that registers the redirect URI's port or path. `path` must start with `/`
    /// and have no query or fragment: [`Error::Config`] otherwise; a port that is taken is
    /// [`LoopbackError::Bind`].
    ///
    /// ```
    /// use tower_oauth2::grant::loopback::LoopbackLogin;
    /// use tower_oauth2::Error;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Error> {
    /// let login = LoopbackLogin::bind_to(0, "/oauth2/my-app").await?;
    /// assert!(login.redirect_uri().ends_with("/oauth2/my-app"));
    /// assert!(matches!(LoopbackLogin::bind_to(0, "cb?x=1").await, Err(Error::Config(_))));
    /// # Ok(()) }
    /// ```
    pub async fn bind_to(port: u16, path: &str) -> Result<Self, Error> {
        let valid = path.starts_with('/')
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@%".contains(&b));
        if !valid {
            return Err(Error::Config(format!(
                "the loopback callback path must start with `/` and be a URL path without query \
                 or fragment, not {:?}",
                crate::error::sanitize_server_text(path)
            )));
        }
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .map_err(|err| Error::Loopback(LoopbackError::Bind(Arc::new(err))))?;
        let port = listener
            .local_addr()
            .map_err(|err| Error::Loopback(LoopbackError::Bind(Arc::new(err))))?
            .port();
        tracing::debug!(port, "loopback login: listening on 127.0.0.1");
        Ok(LoopbackLogin {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}{path}"),
            authority: format!("127.0.0.1:{port}"),
            path: path.to_owned(),
            timeout: DEFAULT_LOGIN_TIMEOUT,
            opener: Mutex::new(None),
        })
    }

    /// The redirect URI: `http://127.0.0.1:PORT/PATH`.
    ///
    /// ```
    /// use tower_oauth2::grant::loopback::LoopbackLogin;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let login = LoopbackLogin::bind().await?;
    /// let uri = url::Url::parse(login.redirect_uri()).unwrap();
    /// assert_eq!(uri.host_str(), Some("127.0.0.1"));
    /// assert_ne!(uri.port(), None);
    /// # Ok(()) }
    /// ```
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// How long to wait for the callback (default [`DEFAULT_LOGIN_TIMEOUT`]); past it,
    /// [`run`](Self::run) fails with [`LoopbackError::TimedOut`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::grant::loopback::LoopbackLogin;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let login = LoopbackLogin::bind().await?.timeout(Duration::from_secs(60));
    /// assert!(format!("{login:?}").contains("60s"));
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the authorization URL with `open` instead of the system browser (and prints
    /// nothing): a desktop app's own web view, a test or a demo that plays the browser. `open`
    /// is called once, before the wait for the callback starts, and must not block: spawn a
    /// task for anything that takes time.
    ///
    /// ```
    /// use tower_oauth2::grant::loopback::LoopbackLogin;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let login = LoopbackLogin::bind()
    ///     .await?
    ///     .open_with(|url| println!("Please log in at {url}"));
    /// assert!(format!("{login:?}").contains("open_with"));
    /// # Ok(()) }
    /// ```
    pub fn open_with(self, open: impl FnOnce(&Url) + Send + 'static) -> Self {
        *self.opener.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(open));
        self
    }

    /// Logs the user in: an authorization request to `client` with this listener's redirect
    /// URI, changed by `customize` (scopes, `prompt`, `login_hint`, ...), started (with PAR when
    /// the server requires it); then the browser, the one callback, the code exchange, the page
    /// and the [`Login`] (or the error, also shown on the page).
    ///
    /// ```no_run
    /// use tower_oauth2::grant::loopback::LoopbackLogin;
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let client = OAuth2Client::discover("https://auth.example.com", ClientAuth::none("my-cli")).await?;
    /// let login = LoopbackLogin::bind()
    ///     .await?
    ///     .run(&client, |request| request.scope("offline_access"))
    ///     .await?;
    /// let layer = login.into_layer(); // carries the user's token, kept fresh
    /// # let _ = layer; Ok(()) }
    /// ```
    pub async fn run(
        self,
        client: &OAuth2Client,
        customize: impl FnOnce(AuthorizationRequest) -> AuthorizationRequest,
    ) -> Result<Login, Error> {
        let request = customize(client.authorization_request(self.redirect_uri.clone()));
        self.run_request(client, request).await
    }

    /// [`run`](Self::run) with an authorization request made elsewhere (by a provider, say),
    /// which must have been made with [`redirect_uri`](Self::redirect_uri): [`Error::Config`]
    /// otherwise, before the browser opens.
    ///
    /// ```no_run
    /// use tower_oauth2::grant::loopback::LoopbackLogin;
    /// use tower_oauth2::{ClientAuth, OAuth2Client};
    ///
    /// # async fn run() -> Result<(), tower_oauth2::Error> {
    /// let client = OAuth2Client::discover("https://auth.example.com", ClientAuth::none("my-cli")).await?;
    /// let login = LoopbackLogin::bind().await?;
    /// let request = client.authorization_request(login.redirect_uri()).prompt("consent");
    /// let login = login.run_request(&client, request).await?;
    /// # let _ = login; Ok(()) }
    /// ```
    pub async fn run_request(
        self,
        client: &OAuth2Client,
        request: AuthorizationRequest,
    ) -> Result<Login, Error> {
        // Checked before `start`: a pushed request (PAR) would already be at the server.
        if request.redirect_uri() != self.redirect_uri {
            return Err(Error::Config(format!(
                "the authorization request's redirect URI is not the loopback listener's ({}): \
                 make the request with LoopbackLogin::redirect_uri, or use LoopbackLogin::run",
                self.redirect_uri
            )));
        }
        let (url, pending) = request.start().await?.into_parts();
        // Taken out before the wait: the future holds no opener (which need not be `Sync`).
        if let Some(open) = self.opener.lock().unwrap_or_else(|e| e.into_inner()).take() {
            open(&url);
        } else {
            open_system_browser(&url);
        }
        let listening = Listening {
            path: self.path,
            authority: self.authority,
            is_the_logins: {
                let pending = pending.clone();
                Box::new(move |uri| is_the_logins(&pending, uri))
            },
        };
        serve(self.listener, listening, self.timeout, |uri| async move {
            client.exchange_code(&pending, &Callback::from_uri(&uri)).await
        })
        .await
    }
}

/// Prints `url` on standard error, then opens it in the system browser (on a blocking thread:
/// some browsers' launchers wait).
fn open_system_browser(url: &Url) {
    eprintln!("Open this URL in a browser to log in:\n\n    {url}\n");
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        if let Err(err) = webbrowser::open(&url) {
            eprintln!("(no browser could be opened: {err}; open the URL above by hand)");
        }
    });
}

/// Whether `uri` is the callback of the login `pending` is waiting for: it has its `state`
/// (a server's error without `state` does not count either: anyone can send one). Only this
/// decides, not whether the rest of the callback is right: the login's own answer (an error, a
/// wrong `iss`) ends the login, as it must.
fn is_the_logins(pending: &PendingAuthorization, uri: &Uri) -> bool {
    let callback = Callback::from_uri(uri);
    callback.param("state").is_some()
        && !matches!(
            pending.verify(&callback),
            Err(Error::Callback(
                CallbackError::StateMismatch
                    | CallbackError::MissingState
                    | CallbackError::RepeatedParameter(_)
            ))
        )
}

/// What the listener answers to, besides the slot.
struct Listening {
    /// The callback path.
    path: String,
    /// `127.0.0.1:PORT`: the only `Host` answered.
    authority: String,
    /// Whether a request on the callback path is the login's ([`is_the_logins`]).
    is_the_logins: Box<dyn Fn(&Uri) -> bool + Send + Sync>,
}

/// The callback, handed from its connection to the login.
struct Received {
    uri: Uri,
    /// Where the login's page goes.
    page: oneshot::Sender<Page>,
    /// Closed when the connection that carried the callback is done (the page sent).
    sent: oneshot::Receiver<()>,
}

/// What the connections share.
struct Shared {
    listening: Listening,
    /// The first callback takes it; later ones find it empty.
    slot: Mutex<Option<oneshot::Sender<Received>>>,
}

/// Waits for the one callback (at most `timeout`), closes the listener, runs `finish` on it,
/// sends the page that says how it went and returns its result.
async fn serve<T, F, Fut>(
    listener: TcpListener,
    listening: Listening,
    timeout: Duration,
    finish: F,
) -> Result<T, Error>
where
    F: FnOnce(Uri) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let (first_tx, mut first_rx) = oneshot::channel();
    let shared = Arc::new(Shared {
        listening,
        slot: Mutex::new(Some(first_tx)),
    });
    // Dropped on return: the connections still open are closed with it.
    let mut connections = JoinSet::new();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let received = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, shared.clone()));
                }
                // Out of file descriptors, say: wait a little, keep listening.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            received = &mut first_rx => match received {
                Ok(received) => break received,
                // Unreachable: `shared` holds the sender while this loop runs.
                Err(_) => return Err(Error::Config("the loopback listener stopped".into())),
            },
            () = &mut deadline => {
                tracing::debug!("loopback login: no callback before the timeout");
                return Err(Error::Loopback(LoopbackError::TimedOut(timeout)));
            }
            // Reap finished connections, so that a long wait does not keep their results.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    // The one callback is in: no more connections.
    drop(listener);
    tracing::debug!("loopback login: callback received");
    let result = finish(received.uri).await;
    let page = match &result {
        Ok(_) => Page::finished(),
        Err(err) => Page::failed(err),
    };
    if received.page.send(page).is_ok() {
        let _ = tokio::time::timeout(PAGE_GRACE, received.sent).await;
    }
    result
}

/// Serves one connection (one request: no keep-alive).
async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let carried: Arc<Mutex<Option<oneshot::Sender<()>>>> = Arc::default();
    let service = {
        let carried = carried.clone();
        hyper::service::service_fn(move |request| {
            let response = respond(request, &shared, &carried);
            async move { Ok::<_, std::convert::Infallible>(response.await) }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
    // Tells the login that the page went out (or never will).
    drop(carried.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// The answer to one request: the login's page for the callback; `400` for another `Host` or a
/// request on the callback path that is not the login's (neither takes the slot), `404` for
/// other paths, `409` for a second callback.
fn respond(
    request: Request<Incoming>,
    shared: &Shared,
    carried: &Mutex<Option<oneshot::Sender<()>>>,
) -> impl Future<Output = Response<Full<Bytes>>> + Send + use<> {
    let listening = &shared.listening;
    let outcome = if !right_host(&request, &listening.authority) {
        Err(Page::plain(
            StatusCode::BAD_REQUEST,
            "Wrong host",
            "This listener only answers requests to its own address, 127.0.0.1.",
        ))
    } else if request.uri().path() != listening.path {
        Err(Page::plain(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here.",
        ))
    } else if request.method() != Method::GET {
        Err(Page::plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "The login callback is a GET.",
        ))
    } else if !(listening.is_the_logins)(request.uri()) {
        Err(Page::plain(
            StatusCode::BAD_REQUEST,
            "Not this login's callback",
            "This is not the callback of the login under way (its state is missing or not this \
             login's): it was ignored, and the application is still waiting for the login to \
             finish.",
        ))
    } else {
        match shared.slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            None => Err(Page::plain(
                StatusCode::CONFLICT,
                "Login already answered",
                "This login has already received its callback; this one was ignored.",
            )),
            Some(slot) => {
                let (page_tx, page_rx) = oneshot::channel();
                let (sent_tx, sent_rx) = oneshot::channel();
                *carried.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent_tx);
                let received = Received {
                    uri: request.uri().clone(),
                    page: page_tx,
                    sent: sent_rx,
                };
                match slot.send(received) {
                    Ok(()) => Ok(page_rx),
                    Err(_) => Err(Page::plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Login over",
                        "The application stopped waiting for this login.",
                    )),
                }
            }
        }
    };
    async move {
        match outcome {
            Ok(page_rx) => page_rx
                .await
                .unwrap_or_else(|_| {
                    Page::plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Login over",
                        "The application stopped before the login finished.",
                    )
                })
                .into_response(),
            Err(page) => page.into_response(),
        }
    }
}

/// Whether the request is for `authority` (`127.0.0.1:PORT`): its one `Host`, and its URI's
/// authority if it has one. A page of another site whose name now resolves to `127.0.0.1` (DNS
/// rebinding) sends its own name.
fn right_host<B>(request: &Request<B>, authority: &str) -> bool {
    let mut hosts = request.headers().get_all(http::header::HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.as_bytes().eq_ignore_ascii_case(authority.as_bytes()),
        _ => false,
    };
    host_ok
        && request
            .uri()
            .authority()
            .is_none_or(|uri| uri.as_str().eq_ignore_ascii_case(authority))
}

/// A small static HTML page.
struct Page {
    status: StatusCode,
    html: String,
}

impl Page {
    fn finished() -> Page {
        Page::plain(
            StatusCode::OK,
            "Login finished",
            "You are logged in. You can close this window and go back to the application.",
        )
    }

    fn failed(err: &Error) -> Page {
        let reason = err.report().to_string();
        Page::new(
            StatusCode::BAD_REQUEST,
            "Login failed",
            &format!(
                "<p>The login did not finish:</p>\n<p><code>{}</code></p>\n\
                 <p>You can close this window and try again from the application.</p>",
                html_escape(&reason)
            ),
        )
    }

    /// A page of one paragraph of `text` (escaped).
    fn plain(status: StatusCode, title: &str, text: &str) -> Page {
        Page::new(status, title, &format!("<p>{}</p>", html_escape(text)))
    }

    /// `title` is escaped, `body` is HTML.
    fn new(status: StatusCode, title: &str, body: &str) -> Page {
        let title = html_escape(title);
        Page {
            status,
            html: format!(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
                 <title>{title}</title>\n<style>body{{font-family:sans-serif;max-width:40em;\
                 margin:3em auto;padding:0 1em}}code{{white-space:pre-wrap}}</style>\n</head>\n\
                 <body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
            ),
        }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.html)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        response
    }
}

/// Escapes text for HTML content and attribute values.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if the login and its error are `Send + Sync` and its futures `Send` (as
    /// the crate's transport futures are).
    #[allow(dead_code)]
    fn send_sync(login: LoopbackLogin, client: &OAuth2Client) -> impl Future + Send + '_ {
        fn both<T: Send + Sync>(_: &T) {}
        both(&login);
        both(&LoopbackError::TimedOut(DEFAULT_LOGIN_TIMEOUT));
        both(&LoopbackLogin::bind());
        login.run(client, |request| request.scope("x"))
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        let page = Page::failed(&Error::Config("<img src=x onerror=alert(1)>".into()));
        assert!(!page.html.contains("<img"));
        assert!(page.html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
    }
}
