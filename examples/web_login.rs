//! A web app (axum) that logs its users in with the authorization code flow and PKCE, then
//! calls an API for each of them with that user's token: `cargo run --example web_login`, and
//! open the URL it prints. `--self-test` plays one user's browser through the whole login and
//! exits (0 when the API answered).
//!
//! The authorization server is the embedded demo server (no configuration, no network): its
//! authorization endpoint approves every request at once, as a user who clicks "allow".
//!
//! Routes:
//!
//! - `/`: a "log in" link, or, once logged in, a link to the API page.
//! - `/login`: starts a login ([`OAuth2Client::authorization_request`]), keeps what the
//!   callback needs ([`PendingAuthorization`], as JSON, as a real app keeps it in its session
//!   store) under the user's session id (a random value in an `HttpOnly` cookie) and redirects
//!   the browser to the authorization server.
//! - `/callback`: the redirect back. [`Callback::from_request`] reads it and
//!   [`OAuth2Client::exchange_code`] checks it (state, `iss`, the server's error) and
//!   exchanges the code; the [`Login`] becomes this user's [`OAuth2Layer`]
//!   ([`Login::into_layer`]), kept in a NEW session: a fresh session id in a new cookie, and
//!   the login's session is deleted (so that a session id planted in the browser before the
//!   login never becomes a logged-in session: session fixation).
//! - `/api`: calls the API through the user's layer, which puts the user's token on the
//!   request and refreshes it when it expires.

#[path = "../tests/support/auth_server.rs"]
pub mod auth_server;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_oauth2::{Callback, ClientAuth, Login, OAuth2, OAuth2Client, OAuth2Layer, PendingAuthorization};

/// The demo's confidential client: a web app keeps its secret on the server.
pub const CLIENT_ID: &str = "web-login-demo";
/// The demo client's secret.
pub const CLIENT_SECRET: &str = "web-login-demo-secret";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sid";

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The API client of one logged-in user: the user's token on every request.
type UserApi = OAuth2<HttpClient>;

/// One browser's session.
#[derive(Default)]
struct Session {
    /// The login under way: its [`PendingAuthorization`] as JSON.
    pending: Option<String>,
    /// The API client, once logged in.
    api: Option<UserApi>,
}

/// The app's state, shared by the routes.
pub struct App {
    client: OAuth2Client,
    /// Where the app is reached (`http://127.0.0.1:3000`): the redirect URI is under it.
    base_url: String,
    /// The API the app calls for its users.
    api_url: String,
    http: HttpClient,
    /// The sessions, by id. In memory and never expired: a demo. A real app keeps them in its
    /// session store, with an expiry.
    sessions: Mutex<HashMap<String, Session>>,
}

impl App {
    /// The app for `client`, reached at `base_url`, calling `api_url`.
    pub fn new(client: OAuth2Client, base_url: &str, api_url: &str) -> Arc<App> {
        Arc::new(App {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_url: api_url.to_owned(),
            http: Client::builder(TokioExecutor::new()).build_http(),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn redirect_uri(&self) -> String {
        format!("{}/callback", self.base_url)
    }

    /// Runs `f` on the session `id`, made if it does not exist.
    fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        f(sessions.entry(id.to_owned()).or_default())
    }

    /// The user's API client, if the session `id` is logged in.
    fn user_api(&self, id: Option<&str>) -> Option<UserApi> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id?)?.api.clone()
    }
}

/// The app's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/api", get(api))
        .with_state(app)
}

/// The session id of the request's cookie.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value for the session `id`.
fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax")
}

/// A new session id: 128 random bits.
fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

async fn index(State(app): State<Arc<App>>, headers: HeaderMap) -> Html<&'static str> {
    if app.user_api(session_id(&headers)).is_some() {
        Html(r#"<p>You are logged in. <a href="/api">Call the API</a> with your token.</p>"#)
    } else {
        Html(r#"<p><a href="/login">Log in</a></p>"#)
    }
}

async fn login(State(app): State<Arc<App>>) -> Response {
    let authorization = match app
        .client
        .authorization_request(app.redirect_uri())
        .scope("demo offline_access")
        .start()
        .await
    {
        Ok(authorization) => authorization,
        Err(err) => return error_page(StatusCode::BAD_GATEWAY, "The login could not start", &err),
    };
    let (url, pending) = authorization.into_parts();
    // A session for the login under way only: the callback moves the logged-in user to another
    // one (see there). An id the browser already had (planted by someone else) is not used.
    let id = new_session_id();
    app.with_session(&id, |session| session.pending = Some(pending.to_json()));
    (
        StatusCode::FOUND,
        [
            (LOCATION, url.to_string()),
            (SET_COOKIE, session_cookie(&id)),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

async fn callback(State(app): State<Arc<App>>, request: Request) -> Response {
    let Some(id) = session_id(request.headers()).map(str::to_owned) else {
        return page(StatusCode::BAD_REQUEST, "Login failed: no session (cookies off?)");
    };
    // The pending login is used once, whatever happens.
    let Some(pending) = app.with_session(&id, |session| session.pending.take()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Login failed: no login under way in this session",
        );
    };
    let pending = match PendingAuthorization::from_json(&pending) {
        Ok(pending) => pending,
        Err(err) => return error_page(StatusCode::BAD_REQUEST, "Login failed", &err),
    };
    let login: Login = match app
        .client
        .exchange_code(&pending, &Callback::from_request(&request))
        .await
    {
        Ok(login) => login,
        Err(err) => return error_page(StatusCode::BAD_REQUEST, "Login failed", &err),
    };
    let layer: OAuth2Layer = login.into_layer();
    let api = ServiceBuilder::new().layer(layer).service(app.http.clone());
    // Session fixation: the session id the login ran under may be one an attacker planted in
    // this browser (and knows). The logged-in user gets a new id, the old session is deleted
    // (its pending login is used up already), and the old id reaches nothing.
    let logged_in = new_session_id();
    {
        let mut sessions = app.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&id);
        sessions.insert(
            logged_in.clone(),
            Session {
                pending: None,
                api: Some(api),
            },
        );
    }
    (
        StatusCode::FOUND,
        [
            (LOCATION, "/api".to_owned()),
            (SET_COOKIE, session_cookie(&logged_in)),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

async fn api(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(api) = app.user_api(session_id(&headers)) else {
        return (
            StatusCode::UNAUTHORIZED,
            Html(r#"<p>Not logged in. <a href="/login">Log in</a></p>"#),
        )
            .into_response();
    };
    let request = match http::Request::get(&app.api_url).body(Empty::new()) {
        Ok(request) => request,
        Err(err) => return page(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    };
    match api.oneshot(request).await {
        Ok(response) => {
            let status = response.status();
            let body = match response.into_body().collect().await {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(err) => format!("(the body could not be read: {err})"),
            };
            page(StatusCode::OK, &format!("The API answered {status}: {body}"))
        }
        // A token error (the grant is lost: log in again) or a transport error.
        Err(err) => page(StatusCode::BAD_GATEWAY, &format!("The API call failed: {err}")),
    }
}

fn error_page(status: StatusCode, what: &str, err: &tower_oauth2::Error) -> Response {
    page(status, &format!("{what}: {err}"))
}

/// A page of one paragraph of `text`, escaped.
fn page(status: StatusCode, text: &str) -> Response {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    (
        status,
        Html(format!(r#"<p>{escaped}</p><p><a href="/">Home</a></p>"#)),
    )
        .into_response()
}

/// The demo server, with the app's client registered.
pub async fn demo_server() -> auth_server::AuthServer {
    let server = auth_server::AuthServer::start().await;
    server.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        auth_server::ClientAuthMethod::Basic,
    );
    server
}

/// The app's client at `server`, by discovery.
pub async fn demo_client(server: &auth_server::AuthServer) -> Result<OAuth2Client, tower_oauth2::Error> {
    OAuth2Client::discover(
        &server.issuer(),
        ClientAuth::client_secret_basic(CLIENT_ID, CLIENT_SECRET),
    )
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    let self_test = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--self-test") => true,
        Some(_) => {
            println!("usage: web_login [--self-test]");
            return ExitCode::SUCCESS;
        }
    };
    match run(self_test).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(self_test: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = demo_server().await;
    let client = demo_client(&server).await?;
    // Port 3000 when it is free (and for the self-test, any port).
    let listener = match self_test {
        false => match tokio::net::TcpListener::bind(("127.0.0.1", 3000)).await {
            Ok(listener) => listener,
            Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
        },
        true => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
    };
    let base_url = format!("http://{}", listener.local_addr()?);
    let app = App::new(client, &base_url, &server.resource_url());
    let serving = tokio::spawn(async move { axum::serve(listener, router(app)).await });
    if !self_test {
        println!("authorization server  {}", server.issuer());
        println!("open {base_url}/ in a browser (Ctrl-C to stop)");
        serving.await??;
        return Ok(());
    }
    let page = browse_login(&server, &base_url).await?;
    println!("{page}");
    serving.abort();
    if page.contains("The API answered 200 OK") {
        Ok(())
    } else {
        Err("the API did not answer 200".into())
    }
}

/// One user's browser, over HTTP: `/login`, the authorization server, `/callback` and `/api`,
/// with the session cookie. Returns the API page.
pub async fn browse_login(
    server: &auth_server::AuthServer,
    base_url: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let browser: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let get = |url: String, cookie: Option<String>| {
        let browser = browser.clone();
        async move {
            let mut request = http::Request::get(url);
            if let Some(cookie) = cookie {
                request = request.header(COOKIE, cookie);
            }
            let response = browser.request(request.body(Empty::new())?).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
                parts,
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
    };
    let (login, _) = get(format!("{base_url}/login"), None).await?;
    let header = |parts: &http::response::Parts, name: http::header::HeaderName| {
        parts
            .headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("the app answered {} without {name}", parts.status))
    };
    let authorization_url = header(&login, LOCATION)?;
    let cookie = header(&login, SET_COOKIE)?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let callback = server.authorize(&authorization_url).await?;
    let (back, body) = get(callback, Some(cookie)).await?;
    if back.status != StatusCode::FOUND {
        return Err(format!("/callback answered {}: {body}", back.status).into());
    }
    // The logged-in session's cookie: a new one.
    let cookie = header(&back, SET_COOKIE)?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (_, page) = get(format!("{base_url}/api"), Some(cookie)).await?;
    Ok(page)
}
