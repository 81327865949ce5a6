//! The device authorization grant (RFC 8628), for CLIs and devices without a browser.
//!
//! [`DeviceCode`] sends the device authorization request (§3.1) with the source's `scope` and
//! other extra parameters, hands the user code and verification URI to your callback (§3.3),
//! then polls the token endpoint (§3.4) every `interval` seconds (5 when the server gives none,
//! at least 1), adding 5 s on each `slow_down` (§3.5). A poll carries only `grant_type`,
//! `device_code` and the client's authentication (`client_id` for a public client), as §3.4
//! defines it.
//!
//! ```
//! use tower_oauth2::clock::ManualClock;
//! use tower_oauth2::{ClientAuth, DeviceCode, HttpClient, TokenEndpoint, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # use std::sync::{Arc, Mutex};
//! # use bytes::Bytes;
//! # use http_body_util::{BodyExt, Full};
//! # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
//! # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
//! # let log = requests.clone();
//! # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
//! #     let log = log.clone();
//! #     async move {
//! #         let path = request.uri().path().to_owned();
//! #         let form = request.into_body().collect().await?.to_bytes();
//! #         let form = String::from_utf8_lossy(&form).into_owned();
//! #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
//! #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
//! #         let polls = {
//! #             let mut log = log.lock().unwrap();
//! #             log.push(format!("{path} {grant}").trim().to_owned());
//! #             log.iter().filter(|r| r.ends_with("device_code")).count()
//! #         };
//! #         let (status, body) = match path.as_str() {
//! #             "/device/code" => (200, concat!(
//! #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
//! #                 r#""verification_uri":"https://auth.example.com/device","#,
//! #                 r#""expires_in":600,"interval":5}"#,
//! #             )),
//! #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
//! #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
//! #         };
//! #         let response = http::Response::builder().status(status);
//! #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
//! #     }
//! # });
//! let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
//!     .http_client(HttpClient::new(server)) // a stand-in authorization server
//!     .clock(ManualClock::new()) // so that the example does not wait 5 s between polls
//!     .build()?;
//! let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
//!     .scope("openid offline_access")
//!     .on_user_code(|auth| {
//!         println!("Open {} and enter {}", auth.verification_uri(), auth.user_code());
//!     });
//! let token = source.fetch_token().await?; // returns once the user has approved
//! assert_eq!(token.access_token().expose(), "at");
//! # Ok(()) }
//! ```
//!
//! On a transient failure (connection error, 5xx, 429) the interval doubles, up to 60 s; a
//! `Retry-After` on the failed poll ([`Error::retry_after`]) is the floor of the next wait,
//! capped at 60 s too.
//!
//! It stops with the server's `access_denied` or `expired_token` error
//! ([`Error::OAuth2`] with [`ErrorCode::AccessDenied`] / [`ErrorCode::ExpiredToken`]), or with
//! [`Error::DeviceCodeExpired`] when its own clock says the code has expired: a wait that would
//! end at or past the code's expiry is cut to end at the expiry, and the source returns
//! `DeviceCodeExpired` then, without one more poll (the interval would not allow it, and the
//! server would answer `expired_token`). So it never waits past `expires_in`.
//!
//! The device authorization response must have a non-empty `device_code`, `user_code` and
//! `verification_uri` (or Google's `verification_url`), and what the user is shown (the user
//! code and the URIs) must have no control characters; otherwise it is
//! [`Error::MalformedResponse`]. The device code is a secret: it is never shown, and cut out of
//! server messages that echo it.
//!
//! Once it has a token, later fetches redeem the refresh token if one was issued, and go back
//! to a new device authorization only when that fails with `invalid_grant`.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::pin::Pin;

use serde_json::{Map, Value};
use url::Url;

use crate::endpoint::token::{param_setters, with_params, Params, TokenEndpoint};
use crate::error::{sanitize_server_text, BoxError, Error, ErrorCode};
use crate::grant::refresh_token::{new_token_hook, redeem, remember, NewTokenHook};
use crate::secret::Secret;
use crate::source::{TokenFuture, TokenSource};
use crate::token::{check_response, seconds_field, string_field, Token};

/// The polling interval when the server gives none (RFC 8628 §3.2).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What `slow_down` adds to the polling interval (RFC 8628 §3.5).
pub(crate) const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The shortest wait between polls, whatever the server says (some send `interval: 0`).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The longest wait between polls after transport failures.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long an async user-code callback may take by default.
pub const DEFAULT_USER_CODE_TIMEOUT: Duration = Duration::from_secs(60);

/// The device authorization response (RFC 8628 §3.2): what the user must see.
///
/// The device flow hands it to the [`DeviceCode::on_user_code`] callback; build one with
/// [`new`](Self::new) to try out your own presentation.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tower_oauth2::{DeviceAuthorization, DeviceCode};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # use std::sync::{Arc, Mutex};
/// # use bytes::Bytes;
/// # use http_body_util::{BodyExt, Full};
/// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
/// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
/// # let log = requests.clone();
/// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
/// #     let log = log.clone();
/// #     async move {
/// #         let path = request.uri().path().to_owned();
/// #         let form = request.into_body().collect().await?.to_bytes();
/// #         let form = String::from_utf8_lossy(&form).into_owned();
/// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
/// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
/// #         let polls = {
/// #             let mut log = log.lock().unwrap();
/// #             log.push(format!("{path} {grant}").trim().to_owned());
/// #             log.iter().filter(|r| r.ends_with("device_code")).count()
/// #         };
/// #         let (status, body) = match path.as_str() {
/// #             "/device/code" => (200, concat!(
/// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
/// #                 r#""verification_uri":"https://auth.example.com/device","#,
/// #                 r#""expires_in":600,"interval":5}"#,
/// #             )),
/// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
/// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
/// #         };
/// #         let response = http::Response::builder().status(status);
/// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
/// #     }
/// # });
/// # let clock = ManualClock::new();
/// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
/// #     .http_client(HttpClient::new(server))
/// #     .clock(clock.clone())
/// #     .build()?;
/// // `endpoint` goes to a stand-in server, whose device authorization response is {"device_code":
/// // "dc-secret","user_code":"WDJB-MJHT","verification_uri":"https://auth.example.com/device",…}
/// let shown: Arc<Mutex<Option<DeviceAuthorization>>> = Arc::default();
/// let keep = shown.clone();
/// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
///     .on_user_code(move |auth| *keep.lock().unwrap() = Some(auth.clone()));
/// source.fetch().await?;
/// let auth = shown.lock().unwrap().take().unwrap();
/// assert_eq!(auth.user_code(), "WDJB-MJHT");
/// assert_eq!(auth.verification_uri(), "https://auth.example.com/device");
/// assert!(!format!("{auth:?}").contains("dc-secret")); // the device code is never shown
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeviceAuthorization {
    device_code: Secret,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_at: SystemTime,
    interval: Duration,
    extra: Map<String, Value>,
}

impl DeviceAuthorization {
    /// An authorization with a user code and a verification URI, valid for ten minutes, for
    /// tests and previews of your own presentation (the device flow builds its own from the
    /// server's answer; this one has no device code and cannot be polled).
    ///
    /// ```
    /// use tower_oauth2::DeviceAuthorization;
    ///
    /// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device")
    ///     .with_verification_uri_complete("https://example.com/device?user_code=WDJB-MJHT");
    /// assert_eq!(auth.user_code(), "WDJB-MJHT");
    /// assert!(auth.verification_uri_complete().is_some());
    /// ```
    pub fn new(user_code: impl Into<String>, verification_uri: impl Into<String>) -> Self {
        DeviceAuthorization {
            device_code: Secret::new(""),
            user_code: user_code.into(),
            verification_uri: verification_uri.into(),
            verification_uri_complete: None,
            expires_at: SystemTime::now() + Duration::from_secs(600),
            interval: DEFAULT_INTERVAL,
            extra: Map::new(),
        }
    }

    /// Sets the URI that includes the user code.
    ///
    /// ```
    /// use tower_oauth2::DeviceAuthorization;
    ///
    /// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device")
    ///     .with_verification_uri_complete("https://example.com/d?c=WDJB-MJHT");
    /// assert_eq!(auth.verification_uri_complete(), Some("https://example.com/d?c=WDJB-MJHT"));
    /// ```
    pub fn with_verification_uri_complete(mut self, uri: impl Into<String>) -> Self {
        self.verification_uri_complete = Some(uri.into());
        self
    }

    /// The code the user enters at the verification URI (never empty, no control characters).
    ///
    /// ```
    /// use tower_oauth2::DeviceAuthorization;
    ///
    /// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device");
    /// let line = format!("Open {} and enter {}", auth.verification_uri(), auth.user_code());
    /// assert_eq!(line, "Open https://example.com/device and enter WDJB-MJHT");
    /// ```
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user goes to enter the code (never empty, no control characters).
    ///
    /// Google's `verification_url` is read as this.
    ///
    /// ```
    /// use tower_oauth2::DeviceCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_url":"https://www.google.com/device","#,
    /// #                 r#""expires_in":1800,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` goes to a stand-in server that answers as Google does, with `verification_url`:
    /// // {"device_code":"…","user_code":"…","verification_url":"https://www.google.com/device",…}
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code(|auth| {
    ///         assert_eq!(auth.verification_uri(), "https://www.google.com/device");
    ///     });
    /// source.fetch().await?;
    /// # Ok(()) }
    /// ```
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// A URI that already includes the user code (for a QR code, say), if the server sent one.
    ///
    /// ```
    /// use tower_oauth2::DeviceAuthorization;
    ///
    /// // The link to show (or to put in a QR code): the one with the code in it, if there is one.
    /// fn link(auth: &DeviceAuthorization) -> &str {
    ///     auth.verification_uri_complete().unwrap_or(auth.verification_uri())
    /// }
    /// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device");
    /// assert_eq!(link(&auth), "https://example.com/device");
    /// let auth = auth.with_verification_uri_complete("https://example.com/device?code=WDJB-MJHT");
    /// assert_eq!(link(&auth), "https://example.com/device?code=WDJB-MJHT");
    /// ```
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// When the device code expires.
    ///
    /// [`DeviceCode`] stops polling then, with [`Error::DeviceCodeExpired`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::Clock;
    /// use tower_oauth2::DeviceCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` goes to a stand-in server, whose answer has "expires_in":600; `clock` is the
    /// // endpoint's ManualClock.
    /// let asked_at = clock.now();
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code(move |auth| {
    ///         assert_eq!(auth.expires_at(), asked_at + Duration::from_secs(600));
    ///         let left = auth.expires_at().duration_since(asked_at).unwrap_or_default();
    ///         println!("Enter {} within {} minutes", auth.user_code(), left.as_secs() / 60);
    ///     });
    /// source.fetch().await?;
    /// # Ok(()) }
    /// ```
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The polling interval the server asked for (5 s if it gave none).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::DeviceCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":10}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` (with the ManualClock `clock`) goes to a stand-in server that asks for "interval":10,
    /// // answers the first poll with `authorization_pending` and the second with a token.
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code(|auth| assert_eq!(auth.interval(), Duration::from_secs(10)));
    /// source.fetch().await?;
    /// assert_eq!(clock.elapsed(), Duration::from_secs(20)); // two polls, 10 s apart (a ManualClock)
    /// # Ok(()) }
    /// ```
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Every other field of the response.
    ///
    /// ```
    /// use tower_oauth2::DeviceCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""message":"To sign in, enter WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` goes to a stand-in server that adds Microsoft's `message`:
    /// // {…,"message":"To sign in, enter WDJB-MJHT"}
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code(|auth| {
    ///         let message = auth.extra().get("message").and_then(|m| m.as_str());
    ///         assert_eq!(message, Some("To sign in, enter WDJB-MJHT"));
    ///     });
    /// source.fetch().await?;
    /// # Ok(()) }
    /// ```
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &self.device_code)
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

type UserCodeFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type UserCodeCallback = Arc<dyn Fn(&DeviceAuthorization) -> UserCodeFuture + Send + Sync>;

/// Why the user-code callback ended a device login: it is the
/// [source](std::error::Error::source) of the [`Error::Source`] the fetch returns.
///
/// ```
/// use tower_oauth2::{Error, UserCodeError};
///
/// # fn check(err: &Error) {
/// match UserCodeError::find(err) {
///     Some(UserCodeError::TimedOut(after)) => eprintln!("could not reach the user within {after:?}"),
///     Some(failed) => eprintln!("could not tell the user: {failed}"),
///     None => eprintln!("{err}"),
/// }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum UserCodeError {
    /// The async callback returned this error.
    Failed(BoxError),
    /// The async callback did not finish in time (see
    /// [`DeviceCode::user_code_timeout`]).
    TimedOut(Duration),
}

impl UserCodeError {
    /// The `UserCodeError` inside `err`, if a user-code callback ended the login.
    ///
    /// ```
    /// use tower_oauth2::{DeviceCode, Error, UserCodeError};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` goes to a stand-in server.
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code_async(|_auth| async { Err::<(), _>(std::io::Error::other("the chat is down")) });
    /// let err = source.fetch().await.unwrap_err();
    /// let Some(UserCodeError::Failed(cause)) = UserCodeError::find(&err) else { panic!("{err}") };
    /// assert_eq!(cause.to_string(), "the chat is down");
    /// assert!(UserCodeError::find(&Error::DeviceCodeExpired).is_none());
    /// # Ok(()) }
    /// ```
    pub fn find(err: &Error) -> Option<&UserCodeError> {
        match err {
            Error::Source(cause) => cause.downcast_ref::<UserCodeError>(),
            _ => None,
        }
    }
}

impl fmt::Display for UserCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserCodeError::Failed(_) => f.write_str("the user-code callback failed"),
            UserCodeError::TimedOut(after) => {
                write!(f, "the user-code callback did not finish within {after:?}")
            }
        }
    }
}

impl std::error::Error for UserCodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UserCodeError::Failed(cause) => Some(cause.as_ref()),
            UserCodeError::TimedOut(_) => None,
        }
    }
}

/// Gets tokens with the device authorization grant, then keeps them fresh with the refresh
/// token.
///
/// # Telling the user
///
/// The user code and the URI go to a callback: a plain function
/// ([`on_user_code`](Self::on_user_code)), an async one for a service that sends the code
/// by chat or e-mail ([`on_user_code_async`](Self::on_user_code_async)), or the ready-made
/// [`TerminalPrompt`](crate::TerminalPrompt), which prints them (and, with the `qrcode` feature,
/// a QR code of `verification_uri_complete`) to stderr. Polling starts when the callback has
/// finished. An async callback that fails, or does not finish within
/// [`user_code_timeout`](Self::user_code_timeout) (default 60 s, and never past the
/// device code's expiry), ends the login with [`Error::Source`] wrapping a
/// [`UserCodeError`], without a single poll.
///
/// # Starting from a stored refresh token
///
/// [`with_refresh_token`](Self::with_refresh_token) makes the first fetch redeem a
/// refresh token kept from an earlier run (see [`StoredToken`](crate::StoredToken)) instead of
/// starting a device login; only when the server refuses it (`invalid_grant`) does a new device
/// login start. Every new token, with its rotated refresh token, goes to the
/// [`on_new_token`](Self::on_new_token) hook, the place to store it again.
///
/// # Example
///
/// ```
/// use tower_oauth2::{DeviceCode, StoredToken, TerminalPrompt, TokenSource};
///
/// # async fn save(_json: String) {}
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// # use std::sync::{Arc, Mutex};
/// # use bytes::Bytes;
/// # use http_body_util::{BodyExt, Full};
/// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
/// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
/// # let log = requests.clone();
/// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
/// #     let log = log.clone();
/// #     async move {
/// #         let path = request.uri().path().to_owned();
/// #         let form = request.into_body().collect().await?.to_bytes();
/// #         let form = String::from_utf8_lossy(&form).into_owned();
/// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
/// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
/// #         let polls = {
/// #             let mut log = log.lock().unwrap();
/// #             log.push(format!("{path} {grant}").trim().to_owned());
/// #             log.iter().filter(|r| r.ends_with("device_code")).count()
/// #         };
/// #         let (status, body) = match path.as_str() {
/// #             "/device/code" => (200, concat!(
/// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
/// #                 r#""verification_uri":"https://auth.example.com/device","#,
/// #                 r#""expires_in":600,"interval":5}"#,
/// #             )),
/// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
/// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
/// #         };
/// #         let response = http::Response::builder().status(status);
/// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
/// #     }
/// # });
/// # let clock = ManualClock::new();
/// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
/// #     .http_client(HttpClient::new(server))
/// #     .clock(clock.clone())
/// #     .build()?;
/// // What the last run saved (from a file only the user can read, say); `None` if nothing was.
/// let saved = r#"{"version":1,"access_token":"old","refresh_token":"rt"}"#;
/// let stored = StoredToken::from_json(saved).ok();
/// let mut source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
///     .scope("openid offline_access")
///     .on_user_code(TerminalPrompt::new().into_callback())
///     .on_new_token(|token| async move { save(StoredToken::from_token(&token).to_json()).await });
/// if let Some(refresh_token) = stored.as_ref().and_then(StoredToken::refresh_token) {
///     source = source.with_refresh_token(refresh_token.clone());
/// }
/// let token = source.fetch_token().await?; // a device login only if there is no usable refresh token
/// // `endpoint` goes to a stand-in server, which got the refresh token and nothing else:
/// assert_eq!(*requests.lock().unwrap(), ["/token refresh_token"]);
/// # let _ = token;
/// # Ok(()) }
/// ```
pub struct DeviceCode {
    endpoint: TokenEndpoint,
    device_authorization_url: Url,
    params: Params,
    on_user_code: UserCodeCallback,
    user_code_timeout: Duration,
    on_new_token: Option<NewTokenHook>,
    /// The refresh token from the last token, if any. Held across a whole fetch so that
    /// fetches never overlap.
    refresh_token: tokio::sync::Mutex<Option<Secret>>,
    /// The refresh tokens it held before (redeemed and replaced, or refused), as many as a
    /// `RefreshToken` remembers: a stored one among them is older than its own, and never
    /// adopted.
    held_before: std::sync::Mutex<VecDeque<Secret>>,
}

impl DeviceCode {
    /// A source for the client of `endpoint` and the server's device authorization endpoint.
    ///
    /// Until [`on_user_code`](Self::on_user_code) is set, the code and URI are logged at INFO
    /// level with `tracing`.
    ///
    /// The device authorization URL must be `https`, or `http` on a loopback host, like the
    /// token endpoint's ([`Error::InsecureUrl`] otherwise); an `endpoint` built with
    /// [`dangerous_allow_insecure_http`](crate::TokenEndpointBuilder::dangerous_allow_insecure_http)
    /// lends its opt-out to this URL too, since the client's credentials go to both.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, DeviceCode, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
    /// assert!(DeviceCode::new(endpoint.clone(), "/device/code").is_err()); // must be an absolute URL
    /// assert!(DeviceCode::new(endpoint.clone(), "http://auth.example.com/device/code").is_err()); // and https
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?.scope("openid");
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new(endpoint: TokenEndpoint, device_authorization_url: impl AsRef<str>) -> Result<Self, Error> {
        Ok(DeviceCode {
            device_authorization_url: endpoint.endpoint_url(device_authorization_url.as_ref())?,
            endpoint,
            params: Params::new(),
            on_user_code: Arc::new(|auth: &DeviceAuthorization| -> UserCodeFuture {
                tracing::info!(
                    user_code = %sanitize_server_text(auth.user_code()),
                    verification_uri = %sanitize_server_text(auth.verification_uri()),
                    "waiting for the user to approve this device"
                );
                Box::pin(std::future::ready(Ok(())))
            }),
            user_code_timeout: DEFAULT_USER_CODE_TIMEOUT,
            on_new_token: None,
            refresh_token: tokio::sync::Mutex::new(None),
            held_before: std::sync::Mutex::default(),
        })
    }

    /// Called with each device authorization, so the user can be told where to go and what to
    /// enter.
    ///
    /// [`TerminalPrompt::into_callback`](crate::TerminalPrompt::into_callback) is one, ready-made.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use tower_oauth2::DeviceCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` goes to a stand-in server.
    /// let (shown, seen) = mpsc::channel(); // a terminal, a window, a display on the device...
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code(move |auth| {
    ///         let text = format!("Open {} and enter {}", auth.verification_uri(), auth.user_code());
    ///         shown.send(text).unwrap();
    ///     });
    /// source.fetch().await?; // polls once the callback has returned
    /// assert_eq!(seen.try_recv().unwrap(), "Open https://auth.example.com/device and enter WDJB-MJHT");
    /// # Ok(()) }
    /// ```
    pub fn on_user_code(mut self, callback: impl Fn(&DeviceAuthorization) + Send + Sync + 'static) -> Self {
        self.on_user_code = Arc::new(move |auth: &DeviceAuthorization| -> UserCodeFuture {
            callback(auth);
            Box::pin(std::future::ready(Ok(())))
        });
        self
    }

    /// Like [`on_user_code`](Self::on_user_code), with an async callback that gets its own copy
    /// of the authorization: to send the code by chat or e-mail, say. Polling starts when it
    /// has finished. If it returns an error, or does not finish within
    /// [`user_code_timeout`](Self::user_code_timeout), the login ends with [`Error::Source`]
    /// wrapping a [`UserCodeError`] (find it with [`UserCodeError::find`]) and no poll is sent.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tower_oauth2::DeviceCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// let chat = Arc::new(Mutex::new(Vec::new())); // stands for a chat service
    /// let outbox = chat.clone();
    /// // `endpoint` goes to a stand-in server.
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code_async(move |auth| {
    ///         let outbox = outbox.clone();
    ///         async move {
    ///             let text = format!("Open {} and enter {}", auth.verification_uri(), auth.user_code());
    ///             outbox.lock().unwrap().push(text); // `send_chat_message(text).await?` in a real bot
    ///             Ok::<_, std::io::Error>(())
    ///         }
    ///     });
    /// source.fetch().await?; // polls once the message has gone
    /// assert_eq!(*chat.lock().unwrap(), ["Open https://auth.example.com/device and enter WDJB-MJHT"]);
    /// # Ok(()) }
    /// ```
    pub fn on_user_code_async<F, Fut, E>(mut self, callback: F) -> Self
    where
        F: Fn(DeviceAuthorization) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.on_user_code = Arc::new(move |auth: &DeviceAuthorization| -> UserCodeFuture {
            let future = callback(auth.clone());
            Box::pin(async move { future.await.map_err(Into::into) })
        });
        self
    }

    /// How long the user-code callback may take (default [`DEFAULT_USER_CODE_TIMEOUT`], 60 s,
    /// and never longer than the device code lives), measured in real time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, DeviceCode, TokenEndpoint};
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-bot"))?;
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code_async(|auth| async move { Ok::<_, std::io::Error>(()) })
    ///     .user_code_timeout(Duration::from_secs(10));
    /// # let _ = source;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn user_code_timeout(mut self, timeout: Duration) -> Self {
        self.user_code_timeout = timeout;
        self
    }

    /// Starts from a refresh token kept from an earlier run: the first fetch redeems it (the
    /// refresh-token grant) instead of starting a device login, and a new device login starts
    /// only if the server refuses it with `invalid_grant`.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, DeviceCode, StoredToken, TokenEndpoint};
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let saved = r#"{"version":1,"access_token":"at","token_type":"Bearer","refresh_token":"rt"}"#;
    /// let stored = StoredToken::from_json(saved)?;
    /// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
    /// let mut source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?;
    /// if let Some(refresh_token) = stored.refresh_token() {
    ///     source = source.with_refresh_token(refresh_token.clone());
    /// }
    /// # let _ = source; Ok(()) }
    /// # run().unwrap();
    /// ```
    pub fn with_refresh_token(mut self, refresh_token: impl Into<Secret>) -> Self {
        self.refresh_token = tokio::sync::Mutex::new(Some(refresh_token.into()));
        self
    }

    /// Called with every new token before it is returned (to persist its refresh token).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tower_oauth2::{DeviceCode, StoredToken};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` goes to a stand-in server.
    /// let saved = Arc::new(Mutex::new(String::new())); // a file only the user can read, in a real app
    /// let store = saved.clone();
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_new_token(move |token| {
    ///         let store = store.clone();
    ///         async move { *store.lock().unwrap() = StoredToken::from_token(&token).to_json() }
    ///     });
    /// source.fetch().await?;
    /// let stored = StoredToken::from_json(&saved.lock().unwrap()).unwrap();
    /// assert_eq!(stored.refresh_token().unwrap().expose(), "rt"); // for the next run's `with_refresh_token`
    /// # Ok(()) }
    /// ```
    pub fn on_new_token<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Token) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_new_token = Some(new_token_hook(hook));
        self
    }

    /// Gets a token: by refresh token when there is one, else by a new device authorization.
    ///
    /// This is what [`TokenSource::fetch_token`] does; put the source behind a
    /// [`TokenCache`](crate::TokenCache) or an [`OAuth2Layer`](crate::OAuth2Layer), rather than
    /// calling it for each request.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::DeviceCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # use std::sync::{Arc, Mutex};
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use tower_oauth2::{clock::ManualClock, ClientAuth, HttpClient, TokenEndpoint};
    /// # let requests = Arc::new(Mutex::new(Vec::<String>::new())); // path, and grant_type if any
    /// # let log = requests.clone();
    /// # let server = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
    /// #     let log = log.clone();
    /// #     async move {
    /// #         let path = request.uri().path().to_owned();
    /// #         let form = request.into_body().collect().await?.to_bytes();
    /// #         let form = String::from_utf8_lossy(&form).into_owned();
    /// #         let grant = form.split('&').find_map(|kv| kv.strip_prefix("grant_type=")).unwrap_or("");
    /// #         let grant = grant.rsplit("%3A").next().unwrap_or(grant); // device_code, refresh_token
    /// #         let polls = {
    /// #             let mut log = log.lock().unwrap();
    /// #             log.push(format!("{path} {grant}").trim().to_owned());
    /// #             log.iter().filter(|r| r.ends_with("device_code")).count()
    /// #         };
    /// #         let (status, body) = match path.as_str() {
    /// #             "/device/code" => (200, concat!(
    /// #                 r#"{"device_code":"dc-secret","user_code":"WDJB-MJHT","#,
    /// #                 r#""verification_uri":"https://auth.example.com/device","#,
    /// #                 r#""expires_in":600,"interval":5}"#,
    /// #             )),
    /// #             _ if polls == 1 => (400, r#"{"error":"authorization_pending"}"#),
    /// #             _ => (200, r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#),
    /// #         };
    /// #         let response = http::Response::builder().status(status);
    /// #         Ok::<_, std::convert::Infallible>(response.body(Full::from(body)).unwrap())
    /// #     }
    /// # });
    /// # let clock = ManualClock::new();
    /// # let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("my-cli"))
    /// #     .http_client(HttpClient::new(server))
    /// #     .clock(clock.clone())
    /// #     .build()?;
    /// // `endpoint` (with the ManualClock `clock`) goes to a stand-in server.
    /// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
    ///     .on_user_code(|auth| println!("Open {} and enter {}", auth.verification_uri(), auth.user_code()));
    /// let token = source.fetch().await?; // the server says `authorization_pending` once, then issues
    /// assert_eq!(token.access_token().expose(), "at");
    /// assert_eq!(clock.elapsed(), Duration::from_secs(10)); // two polls, 5 s apart (a ManualClock)
    /// source.fetch().await?; // redeems the refresh token: no new device login
    /// // `requests`: what the stand-in server was sent (the path and the grant type)
    /// assert_eq!(*requests.lock().unwrap(), [
    ///     "/device/code",
    ///     "/token device_code", // `authorization_pending`
    ///     "/token device_code", // the token
    ///     "/token refresh_token",
    /// ]);
    /// # Ok(()) }
    /// ```
    pub async fn fetch(&self) -> Result<Token, Error> {
        let mut refresh_token = self.refresh_token.lock().await;
        let token = match refresh_token.as_ref() {
            Some(current) => match redeem(&self.endpoint, &self.params, current, &[]).await {
                Err(err) if err.code() == Some(&ErrorCode::InvalidGrant) => {
                    tracing::info!("refresh token rejected; starting a new device authorization");
                    if let Some(refused) = refresh_token.take() {
                        self.held_before(refused);
                    }
                    self.authorize().await?
                }
                other => other?,
            },
            None => self.authorize().await?,
        };
        let replaced = std::mem::replace(&mut *refresh_token, token.refresh_token().cloned());
        if let Some(replaced) = replaced.filter(|replaced| Some(replaced) != token.refresh_token()) {
            self.held_before(replaced);
        }
        if let Some(hook) = &self.on_new_token {
            hook(token.clone()).await;
        }
        Ok(token)
    }

    /// Runs one device authorization to its end.
    async fn authorize(&self) -> Result<Token, Error> {
        let clock = self.endpoint.clock().clone();
        let auth = self.request_authorization().await?;
        self.tell_the_user(&auth).await?;
        let mut interval = auth.interval.max(MIN_INTERVAL);
        // RFC 8628 §3.4: the poll has the grant type and the device code, plus the client's
        // authentication (or `client_id`), and nothing else: the source's extra parameters
        // went with the device authorization request.
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", auth.device_code.expose()),
        ];
        let mut wait = interval;
        loop {
            let remaining = auth
                .expires_at
                .duration_since(clock.now())
                .unwrap_or(Duration::ZERO);
            if wait >= remaining {
                // The next poll would come at or after the expiry: wait for the expiry, not
                // past it, and stop there.
                clock.sleep(remaining).await;
                return Err(Error::DeviceCodeExpired);
            }
            clock.sleep(wait).await;
            if clock.now() >= auth.expires_at {
                return Err(Error::DeviceCodeExpired);
            }
            let err = match self.endpoint.request_token(&form).await {
                Ok(token) => return Ok(token),
                Err(err) => err,
            };
            match err.code() {
                Some(ErrorCode::AuthorizationPending) => {}
                Some(ErrorCode::SlowDown) => {
                    interval += SLOW_DOWN_STEP;
                    tracing::debug!(?interval, "slow_down: polling less often");
                }
                // RFC 8628 §3.5: back off on connection failures; likewise on 5xx and 429. The
                // backoff's cap never shortens an interval that `slow_down`s made longer.
                _ if err.is_transient() => {
                    interval = (interval * 2).min(MAX_INTERVAL).max(interval);
                    tracing::debug!(error = %err.report(), ?interval, "device flow poll failed; backing off");
                }
                _ => return Err(err),
            }
            wait = interval;
            // A `Retry-After` (on a 429 or 503, say) is the floor of the next wait, within the
            // longest interval.
            if let Some(asked) = err.retry_after() {
                wait = wait.max(asked.min(MAX_INTERVAL));
                tracing::debug!(?wait, "the authorization server asked to retry later");
            }
        }
    }

    /// Runs the user-code callback, within its timeout and the device code's lifetime.
    async fn tell_the_user(&self, auth: &DeviceAuthorization) -> Result<(), Error> {
        let lifetime = auth
            .expires_at
            .duration_since(self.endpoint.clock().now())
            .unwrap_or(Duration::ZERO);
        let limit = self.user_code_timeout.min(lifetime);
        let told = (self.on_user_code)(auth);
        let failure = match tokio::time::timeout(limit, told).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(cause)) => UserCodeError::Failed(cause),
            Err(_) => UserCodeError::TimedOut(limit),
        };
        tracing::warn!(error = %failure, "the device login ends: the user could not be told the code");
        Err(Error::source_error(failure))
    }

    async fn request_authorization(&self) -> Result<DeviceAuthorization, Error> {
        let sent_at = self.endpoint.clock().now();
        let response = self
            .endpoint
            .post_form(
                &self.device_authorization_url,
                &with_params(&[], &self.params),
                &[],
            )
            .await?;
        let status = response.status;
        let mut fields = check_response(&response)?;
        let malformed = |reason: String| Error::MalformedResponse { status, reason };
        // RFC 8628 §3.2: required, so an empty value is as good as none. What the user is
        // shown must be printable.
        let required = |value: Option<String>, name: &str| match value {
            None => Err(malformed(format!(
                "the device authorization response has no `{name}`"
            ))),
            Some(v) if v.is_empty() => Err(malformed(format!(
                "the device authorization response has an empty `{name}`"
            ))),
            Some(v) => Ok(v),
        };
        let printable = |value: String, name: &str| {
            if value.chars().any(char::is_control) {
                Err(malformed(format!("`{name}` contains control characters")))
            } else {
                Ok(value)
            }
        };
        let device_code = required(string_field(&mut fields, "device_code", status)?, "device_code")?;
        let user_code = required(string_field(&mut fields, "user_code", status)?, "user_code")?;
        let user_code = printable(user_code, "user_code")?;
        // Google says `verification_url`.
        let verification_uri = match string_field(&mut fields, "verification_uri", status)? {
            Some(uri) => Some(uri),
            None => string_field(&mut fields, "verification_url", status)?,
        };
        let verification_uri = required(verification_uri, "verification_uri")?;
        let verification_uri = printable(verification_uri, "verification_uri")?;
        let verification_uri_complete = string_field(&mut fields, "verification_uri_complete", status)?
            .filter(|uri| !uri.is_empty())
            .map(|uri| printable(uri, "verification_uri_complete"))
            .transpose()?;
        let expires_in = required_duration(&fields, "expires_in", status)?;
        let interval = seconds_field(&fields, "interval", status)?.unwrap_or(DEFAULT_INTERVAL);
        fields.remove("expires_in");
        fields.remove("interval");
        let expires_at = sent_at
            .checked_add(expires_in)
            .ok_or_else(|| malformed("`expires_in` is too large".to_owned()))?;
        Ok(DeviceAuthorization {
            device_code: Secret::new(device_code),
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_at,
            interval,
            extra: fields,
        })
    }
}

fn required_duration(
    fields: &Map<String, Value>,
    name: &str,
    status: http::StatusCode,
) -> Result<Duration, Error> {
    seconds_field(fields, name, status)?.ok_or_else(|| Error::MalformedResponse {
        status,
        reason: format!("the device authorization response has no `{name}`"),
    })
}

param_setters!(DeviceCode);

impl DeviceCode {
    fn lock_held_before(&self) -> std::sync::MutexGuard<'_, VecDeque<Secret>> {
        // Nothing panics while holding it.
        self.held_before.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a refresh token this source no longer holds.
    fn held_before(&self, refresh_token: Secret) {
        remember(&mut self.lock_held_before(), refresh_token);
    }
}

impl TokenSource for DeviceCode {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }

    /// The token URL, client id, grant, device authorization URL and scope: one user's login
    /// per client.
    fn store_key(&self) -> Option<crate::store::StoreKey> {
        let device = [(
            "device_authorization_endpoint",
            self.device_authorization_url.as_str(),
        )];
        self.endpoint.store_key(
            "urn:ietf:params:oauth:grant-type:device_code",
            &self.params,
            &device,
        )
    }

    /// Adopts the stored token's refresh token, so the next fetch redeems it instead of asking
    /// the user to log in again. (A fetch holds the refresh token while it runs; the cache
    /// never calls this during one of its fetches.)
    fn on_stored_token(&self, token: &Token) {
        let Some(stored) = token.refresh_token() else {
            return;
        };
        if self.lock_held_before().contains(stored) {
            return;
        }
        match self.refresh_token.try_lock() {
            Ok(mut current) => {
                if let Some(replaced) = current
                    .replace(stored.clone())
                    .filter(|replaced| replaced != stored)
                {
                    self.held_before(replaced);
                }
            }
            Err(_) => {
                tracing::debug!("a device-code fetch is running; the stored refresh token is not adopted")
            }
        }
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("endpoint", &self.endpoint)
            .field("user_code_timeout", &self.user_code_timeout)
            .field(
                "device_authorization_url",
                &self.device_authorization_url.as_str(),
            )
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}
