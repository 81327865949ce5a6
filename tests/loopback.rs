//! The login of a native app (RFC 8252, `LoopbackLogin`, feature `loopback`) and the demo
//! server's authorization endpoint it logs in at: the browser's side is played over real HTTP
//! on loopback. Also the web example's routes (examples/web_login.rs), driven in-process.

#[path = "support/util.rs"]
mod util;
// The example includes the demo server (tests/support/auth_server.rs): one copy for the file.
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/web_login.rs"]
mod web_login;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sha2::Digest as _;
use util::bounded;
use web_login::auth_server::{self, AuthServer, ClientAuthMethod};

/// A PKCE verifier of 43 characters and its S256 challenge, computed here, independently of
/// the crate.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

const REDIRECT: &str = "http://127.0.0.1:9/cb";

async fn demo() -> AuthServer {
    let server = AuthServer::start().await;
    server.add_client("cli", None, ClientAuthMethod::None);
    server
}

/// `/authorize?...` with the given parameters.
fn authorize_url(server: &AuthServer, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.authorization_url()).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// A complete, valid authorization request's parameters.
fn valid_request(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "cli".into()),
        ("redirect_uri", REDIRECT.into()),
        ("state", "st-1".into()),
        ("scope", "demo offline_access".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn as_refs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The query parameters of a redirect `Location`.
fn query(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The code of an approved authorization request.
async fn code(server: &AuthServer) -> String {
    let url = authorize_url(server, &as_refs(&valid_request(&challenge(VERIFIER))));
    let location = bounded(server.authorize(&url)).await.unwrap();
    param(&query(&location), "code").expect("a code").to_owned()
}

/// POSTs a form to the demo's token endpoint: the status and the JSON answer.
async fn token_request(server: &AuthServer, form: &[(&str, &str)]) -> (u16, Value) {
    let body = serde_urlencoded::to_string(form).unwrap();
    let request = http::Request::post(server.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = bounded(client.request(request)).await.unwrap();
    let status = response.status().as_u16();
    let body = bounded(response.into_body().collect()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn redeem(server: &AuthServer, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", "cli"),
        ("code_verifier", verifier),
    ];
    token_request(server, &form).await
}

/// `GET /resource` with `token`: the status.
async fn resource(server: &AuthServer, token: &str) -> u16 {
    let request = http::Request::get(server.resource_url())
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    bounded(client.request(request)).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn demo_authorize_redirects_with_code_state_and_iss_and_the_code_redeems_once() {
    let server = demo().await;
    let url = authorize_url(&server, &as_refs(&valid_request(&challenge(VERIFIER))));
    let location = bounded(server.authorize(&url)).await.unwrap();
    assert!(location.starts_with("http://127.0.0.1:9/cb?"), "{location}");
    let params = query(&location);
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(param(&params, "iss"), Some(server.issuer().as_str()));
    assert_eq!(param(&params, "error"), None);
    let code = param(&params, "code").unwrap();
    assert_eq!(server.authorization_requests().len(), 1);

    let (status, body) = redeem(&server, code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "demo offline_access");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(resource(&server, &access).await, 200);
    // The refresh token works as the demo's others do.
    let (status, refreshed) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "cli"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        resource(&server, refreshed["access_token"].as_str().unwrap()).await,
        200
    );

    // Used twice: invalid_grant, and what the code was redeemed for is revoked (RFC 6749 §4.1.2).
    let (status, body) = redeem(&server, code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(resource(&server, &access).await, 401);
    assert_eq!(
        resource(&server, refreshed["access_token"].as_str().unwrap()).await,
        401
    );
    assert!(!server.is_refresh_token_valid(refreshed["refresh_token"].as_str().unwrap()));
}

#[tokio::test]
async fn demo_token_endpoint_refuses_a_wrong_or_missing_verifier() {
    let server = demo().await;
    let code = code(&server).await;
    let (status, body) = redeem(&server, &code, "a-verifier-that-is-not-the-one-sent-as-challenge").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "cli"),
    ];
    let (status, body) = token_request(&server, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // A failed redemption does not consume the code: the right verifier still gets tokens.
    let (status, body) = redeem(&server, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn demo_code_is_bound_to_its_client_and_redirect_uri() {
    let server = demo().await;
    server.add_client("other", None, ClientAuthMethod::None);
    let code = code(&server).await;
    let other_client = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "other"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token_request(&server, &other_client).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let other_redirect = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ("client_id", "cli"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token_request(&server, &other_redirect).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, body) = redeem(&server, "ac-never-issued", VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn demo_authorize_denies_and_refuses_requests_without_s256() {
    let server = demo().await;
    server.set_deny_authorization(true);
    let url = authorize_url(&server, &as_refs(&valid_request(&challenge(VERIFIER))));
    let params = query(&bounded(server.authorize(&url)).await.unwrap());
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(param(&params, "iss"), Some(server.issuer().as_str()));
    assert_eq!(param(&params, "code"), None);
    server.set_deny_authorization(false);

    // No challenge, or `plain`: invalid_request, back at the client.
    let mut no_pkce = valid_request("");
    no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    let mut plain = valid_request(VERIFIER);
    plain.last_mut().unwrap().1 = "plain".into();
    for request in [no_pkce, plain] {
        let url = authorize_url(&server, &as_refs(&request));
        let params = query(&bounded(server.authorize(&url)).await.unwrap());
        assert_eq!(param(&params, "error"), Some("invalid_request"));
        assert_eq!(param(&params, "code"), None);
    }

    // No redirect to a URI that is missing or not http(s), or for an unknown client: a 400.
    for (name, value) in [("redirect_uri", "javascript:alert(1)"), ("client_id", "stranger")] {
        let mut request = valid_request(&challenge(VERIFIER));
        request.iter_mut().find(|(k, _)| *k == name).unwrap().1 = value.into();
        let err = bounded(server.authorize(&authorize_url(&server, &as_refs(&request))))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("400"), "{err}");
    }
}

#[tokio::test]
async fn demo_metadata_names_the_authorization_endpoint_and_discovery_reads_it() {
    let server = demo().await;
    let client = bounded(tower_oauth2::OAuth2Client::discover(
        &server.issuer(),
        tower_oauth2::ClientAuth::none("cli"),
    ))
    .await
    .unwrap();
    assert_eq!(
        client.authorization_url().map(|u| u.as_str()),
        Some(server.authorization_url().as_str())
    );
    let metadata = client.metadata().expect("discovered");
    assert_eq!(
        metadata.as_json()["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(metadata.as_json()["code_challenge_methods_supported"][0], "S256");
    // Both well-known names serve it.
    let (metadata_url, issuer) = (
        server.url("/.well-known/oauth-authorization-server"),
        server.issuer(),
    );
    let rfc8414 = tower_oauth2::OAuth2Client::builder(tower_oauth2::ClientAuth::none("cli"))
        .discover_at(&metadata_url, &issuer);
    let rfc8414 = bounded(rfc8414).await.unwrap();
    assert_eq!(
        rfc8414.authorization_url().map(|u| u.as_str()),
        Some(server.authorization_url().as_str())
    );
}

/// `LoopbackLogin` (feature `loopback`), driven from the browser's side over real HTTP.
#[cfg(feature = "loopback")]
mod loopback {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio::sync::mpsc;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_oauth2::grant::loopback::DEFAULT_LOGIN_TIMEOUT;
    use tower_oauth2::{ClientAuth, Error, ErrorCode, LoopbackError, LoopbackLogin, OAuth2Client};

    use super::auth_server::{AuthServer, ClientAuthMethod, Scripted};
    use super::util::bounded;

    async fn demo() -> (AuthServer, OAuth2Client) {
        let server = AuthServer::start().await;
        server.add_client("cli", None, ClientAuthMethod::None);
        let client = bounded(OAuth2Client::discover(&server.issuer(), ClientAuth::none("cli")))
            .await
            .unwrap();
        (server, client)
    }

    /// The listener's address, from its redirect URI.
    fn addr(login: &LoopbackLogin) -> SocketAddr {
        let uri = url::Url::parse(login.redirect_uri()).unwrap();
        assert_eq!(uri.host_str(), Some("127.0.0.1"));
        SocketAddr::from(([127, 0, 0, 1], uri.port().unwrap()))
    }

    /// One HTTP/1.1 GET of `path_and_query` on `stream`, with the `Host` a browser sends
    /// (`127.0.0.1:PORT`), read to its end (the listener closes each connection after one
    /// answer): the status and the whole response, head included.
    async fn raw_get(stream: TcpStream, path_and_query: &str) -> (u16, String) {
        let host = stream.peer_addr().unwrap().to_string();
        raw_get_with_host(stream, path_and_query, &host).await
    }

    /// [`raw_get`] with the given `Host`.
    async fn raw_get_with_host(mut stream: TcpStream, path_and_query: &str, host: &str) -> (u16, String) {
        let request = format!("GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        bounded(stream.write_all(request.as_bytes())).await.unwrap();
        let mut response = Vec::new();
        bounded(stream.read_to_end(&mut response)).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {response:?}"));
        (status, response)
    }

    /// The path and query of a redirect to the listener.
    fn path_and_query(location: &str) -> String {
        let url = url::Url::parse(location).unwrap();
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    }

    /// Whether nothing listens at `addr` any more.
    async fn closed(addr: SocketAddr) -> bool {
        bounded(TcpStream::connect(addr)).await.is_err()
    }

    /// What the browser saw: the callback page (status, response).
    type Seen = mpsc::UnboundedReceiver<(u16, String)>;

    /// A browser that approves at the demo server and goes back to the listener with what the
    /// server sent, after `tamper` changed the callback's path and query.
    fn browser(
        server: &AuthServer,
        addr: SocketAddr,
        tamper: impl FnOnce(String) -> String + Send + 'static,
    ) -> (impl FnOnce(&url::Url) + Send + 'static, Seen) {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let server = server.clone();
        let open = move |url: &url::Url| {
            let url = url.to_string();
            tokio::spawn(async move {
                let location = server.authorize(&url).await.unwrap();
                let stream = TcpStream::connect(addr).await.unwrap();
                let _ = seen_tx.send(raw_get(stream, &tamper(path_and_query(&location))).await);
            });
        };
        (open, seen)
    }

    #[tokio::test]
    async fn the_demo_browser_logs_in_and_the_layer_carries_the_users_token() {
        let (server, client) = demo().await;
        let login = LoopbackLogin::bind().await.unwrap();
        let addr = addr(&login);
        assert!(login.redirect_uri().ends_with("/callback"));
        let redirect_uri = login.redirect_uri().to_owned();
        let (pages_tx, mut pages) = mpsc::unbounded_channel();
        let browser = server.clone();
        let login = login.open_with(move |url| {
            let url = url.to_string();
            tokio::spawn(async move {
                let _ = pages_tx.send(browser.browse(&url).await.unwrap());
            });
        });
        let login = bounded(login.run(&client, |request| request.scope("demo offline_access")))
            .await
            .unwrap();

        // The browser was told the login finished.
        let (status, page) = bounded(pages.recv()).await.unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Login finished"), "{page}");
        // One authorization request, with the listener's redirect URI, S256 and the scope.
        let requests = server.authorization_requests();
        assert_eq!(requests.len(), 1);
        let sent = |name: &str| super::param(&requests[0], name).map(str::to_owned);
        assert_eq!(sent("redirect_uri"), Some(redirect_uri));
        assert_eq!(sent("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(sent("scope").as_deref(), Some("demo offline_access"));
        // The port is closed.
        assert!(closed(addr).await);

        // The layer puts the login's token on the API's requests.
        let access = login.token().access_token().expose().to_owned();
        let api = ServiceBuilder::new()
            .layer(login.into_layer())
            .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
        let request = http::Request::get(server.resource_url())
            .body(Empty::new())
            .unwrap();
        let response = bounded(api.oneshot(request)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = bounded(response.into_body().collect()).await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        assert_eq!(server.resource_tokens(), vec![Some(access)]);
        assert_eq!(server.token_requests(), 1);
    }

    #[tokio::test]
    async fn exactly_one_callback_counts_other_paths_do_not_and_the_port_closes() {
        let (server, client) = demo().await;
        let login = LoopbackLogin::bind().await.unwrap();
        let addr = addr(&login);
        // The code exchange is held until the browser has tried everything else, so the second
        // callback arrives while the first is being answered.
        server.hold_token_responses();
        let (report_tx, mut report) = mpsc::unbounded_channel::<(&'static str, u16, String)>();
        let browser = server.clone();
        let login = login.open_with(move |url| {
            let url = url.to_string();
            tokio::spawn(async move {
                // A connection opened early (browsers preconnect), used for the second callback.
                let early = TcpStream::connect(addr).await.unwrap();
                let (status, page) = raw_get(TcpStream::connect(addr).await.unwrap(), "/favicon.ico").await;
                report_tx.send(("favicon", status, page)).unwrap();
                let callback = path_and_query(&browser.authorize(&url).await.unwrap());
                let stream = TcpStream::connect(addr).await.unwrap();
                let first = {
                    let callback = callback.clone();
                    tokio::spawn(async move { raw_get(stream, &callback).await })
                };
                // The first callback is in (its exchange is held): a second one is refused.
                while browser.token_requests() == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let (status, page) = raw_get(early, &callback).await;
                report_tx.send(("second", status, page)).unwrap();
                browser.release_token_responses();
                let (status, page) = first.await.unwrap();
                report_tx.send(("first", status, page)).unwrap();
            });
        });
        let login = bounded(login.run(&client, |request| request)).await.unwrap();
        assert!(!login.token().access_token().expose().is_empty());

        let (what, status, page) = bounded(report.recv()).await.unwrap();
        assert_eq!((what, status), ("favicon", 404), "{page}");
        let (what, status, page) = bounded(report.recv()).await.unwrap();
        assert_eq!((what, status), ("second", 409), "{page}");
        assert!(page.contains("already received its callback"), "{page}");
        let (what, status, page) = bounded(report.recv()).await.unwrap();
        assert_eq!((what, status), ("first", 200), "{page}");
        assert!(page.contains("Login finished"), "{page}");
        assert!(page
            .to_ascii_lowercase()
            .contains("content-type: text/html; charset=utf-8"));
        assert!(page.to_ascii_lowercase().contains("cache-control: no-store"));
        // One code exchange; the port is closed: a third callback cannot even connect.
        assert_eq!(server.token_requests(), 1);
        assert!(closed(addr).await);
    }

    #[tokio::test(start_paused = true)]
    async fn no_callback_before_the_timeout_is_a_typed_error_and_closes_the_port() {
        // Built by hand: nothing to fetch before the wait (the clock is paused).
        let client = OAuth2Client::builder(ClientAuth::none("cli"))
            .authorization_url("http://127.0.0.1:9/authorize")
            .token_url("http://127.0.0.1:9/token")
            .build()
            .unwrap();
        let opened = Arc::new(Mutex::new(0));
        let count = opened.clone();
        let login = LoopbackLogin::bind()
            .await
            .unwrap()
            .open_with(move |_| *count.lock().unwrap() += 1);
        let addr = addr(&login);
        // The default timeout: the paused clock jumps to it when nothing else is left to do.
        let err = login.run(&client, |request| request).await.unwrap_err();
        assert!(
            matches!(err, Error::Loopback(LoopbackError::TimedOut(limit)) if limit == DEFAULT_LOGIN_TIMEOUT),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert_eq!(*opened.lock().unwrap(), 1);
        assert!(TcpStream::connect(addr).await.is_err());

        // A timeout of its own.
        let login = LoopbackLogin::bind()
            .await
            .unwrap()
            .timeout(Duration::from_secs(7))
            .open_with(|_| {});
        let err = login.run(&client, |request| request).await.unwrap_err();
        assert!(
            matches!(err, Error::Loopback(LoopbackError::TimedOut(limit)) if limit == Duration::from_secs(7)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn access_denied_is_shown_on_the_page_and_returned_typed() {
        let (server, client) = demo().await;
        server.set_deny_authorization(true);
        let login = LoopbackLogin::bind().await.unwrap();
        let addr = addr(&login);
        let (open, mut seen) = browser(&server, addr, |callback| callback);
        let err = bounded(login.open_with(open).run(&client, |request| request))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Callback(_)), "{err:?}");
        assert_eq!(err.code(), Some(&ErrorCode::AccessDenied));
        let (status, page) = bounded(seen.recv()).await.unwrap();
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("Login failed"), "{page}");
        assert!(page.contains("access_denied"), "{page}");
        assert!(page.contains("the user denied the request"), "{page}");
        assert_eq!(server.token_requests(), 0);
        assert!(closed(addr).await);
    }

    /// A request the browser (or anyone on the machine) sends to the listener: the `Host` and
    /// the path and query, made from the server's real callback (path and query) and the
    /// listener's `127.0.0.1:PORT`.
    type Step = fn(&str, &str) -> (String, String);

    /// A browser that approves at the demo server, then sends `steps` to the listener one after
    /// the other, each on its own connection; it reports what each got.
    fn browser_steps(
        server: &AuthServer,
        addr: SocketAddr,
        steps: Vec<Step>,
    ) -> (impl FnOnce(&url::Url) + Send + 'static, Seen) {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let server = server.clone();
        let open = move |url: &url::Url| {
            let url = url.to_string();
            tokio::spawn(async move {
                let callback = path_and_query(&server.authorize(&url).await.unwrap());
                for step in steps {
                    let (host, path) = step(&callback, &addr.to_string());
                    let stream = TcpStream::connect(addr).await.unwrap();
                    let _ = seen_tx.send(raw_get_with_host(stream, &path, &host).await);
                }
            });
        };
        (open, seen)
    }

    /// The server's callback with another `state`.
    fn forged_state(callback: &str, authority: &str) -> (String, String) {
        (authority.to_owned(), callback.replace("state=", "state=forged"))
    }

    /// The server's callback, as it is.
    fn genuine(callback: &str, authority: &str) -> (String, String) {
        (authority.to_owned(), callback.to_owned())
    }

    /// Asserts the listener's answer to a request that is not the login's callback.
    fn assert_not_the_logins(seen: (u16, String)) {
        let (status, page) = seen;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("Not this login&#39;s callback"), "{page}");
        assert!(page.contains("still waiting"), "{page}");
    }

    #[tokio::test]
    async fn a_callback_with_another_state_gets_a_400_and_the_real_one_still_logs_in() {
        let (server, client) = demo().await;
        let login = LoopbackLogin::bind().await.unwrap();
        let addr = addr(&login);
        let (open, mut seen) = browser_steps(&server, addr, vec![forged_state, genuine]);
        let login = bounded(login.open_with(open).run(&client, |request| request))
            .await
            .unwrap();
        assert!(!login.token().access_token().expose().is_empty());
        assert_not_the_logins(bounded(seen.recv()).await.unwrap());
        let (status, page) = bounded(seen.recv()).await.unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Login finished"), "{page}");
        // One code exchange: the genuine callback's.
        assert_eq!(server.token_requests(), 1);
        assert!(closed(addr).await);
    }

    #[tokio::test]
    async fn a_callback_with_another_state_and_no_real_one_ends_in_the_timeout() {
        let (server, client) = demo().await;
        let (url_tx, mut url_rx) = mpsc::unbounded_channel();
        let login = LoopbackLogin::bind()
            .await
            .unwrap()
            .open_with(move |url| url_tx.send(url.to_string()).unwrap());
        let addr = addr(&login);
        let running = tokio::spawn(async move { login.run(&client, |request| request).await });
        let url = bounded(url_rx.recv()).await.unwrap();
        let callback = path_and_query(&bounded(server.authorize(&url)).await.unwrap());
        let (host, path) = forged_state(&callback, &addr.to_string());
        let connection = bounded(TcpStream::connect(addr)).await.unwrap();
        assert_not_the_logins(raw_get_with_host(connection, &path, &host).await);
        // Still listening, nothing exchanged.
        assert!(!running.is_finished());
        assert!(bounded(TcpStream::connect(addr)).await.is_ok());
        assert_eq!(server.token_requests(), 0);
        // Only the timeout ends it: the paused clock jumps to it when nothing else is left.
        tokio::time::pause();
        let err = running.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Loopback(LoopbackError::TimedOut(limit)) if limit == DEFAULT_LOGIN_TIMEOUT),
            "{err:?}"
        );
        assert_eq!(server.token_requests(), 0);
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn requests_without_the_logins_state_or_for_another_host_do_not_end_the_login() {
        let (server, client) = demo().await;
        let login = LoopbackLogin::bind().await.unwrap();
        let addr = addr(&login);
        let steps: Vec<Step> = vec![
            // A bare GET on the callback path (a local process, a browser retry).
            |callback, authority| (authority.into(), callback.split('?').next().unwrap().into()),
            // An error without `state`: anyone can send one.
            |callback, authority| {
                let path = callback.split('?').next().unwrap();
                (authority.into(), format!("{path}?error=access_denied"))
            },
            // The right state, twice.
            |callback, authority| {
                let state = callback
                    .split("state=")
                    .nth(1)
                    .unwrap()
                    .split('&')
                    .next()
                    .unwrap();
                (authority.into(), format!("{callback}&state={state}"))
            },
            // The genuine callback, from a page whose name resolves to 127.0.0.1 (DNS
            // rebinding), or without the port.
            |callback, authority| {
                let port = authority.rsplit(':').next().unwrap();
                (format!("rebound.example.com:{port}"), callback.into())
            },
            |callback, _| ("127.0.0.1".into(), callback.into()),
            // Then the genuine one.
            genuine,
        ];
        let (open, mut seen) = browser_steps(&server, addr, steps);
        let login = bounded(login.open_with(open).run(&client, |request| request))
            .await
            .unwrap();
        assert!(!login.token().access_token().expose().is_empty());
        for _ in 0..3 {
            assert_not_the_logins(bounded(seen.recv()).await.unwrap());
        }
        for _ in 0..2 {
            let (status, page) = bounded(seen.recv()).await.unwrap();
            assert_eq!(status, 400, "{page}");
            assert!(page.contains("Wrong host"), "{page}");
        }
        let (status, page) = bounded(seen.recv()).await.unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Login finished"), "{page}");
        assert_eq!(server.token_requests(), 1);
        assert!(closed(addr).await);
    }

    #[tokio::test]
    async fn a_hostile_error_description_in_the_callback_is_escaped_on_the_page() {
        let (server, client) = demo().await;
        let login = LoopbackLogin::bind().await.unwrap();
        let addr = addr(&login);
        // The server's redirect, with its code replaced by an error whose text is markup.
        let (open, mut seen) = browser(&server, addr, |callback| {
            let (path, query) = callback.split_once('?').unwrap();
            let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .filter(|(k, _)| k == "state" || k == "iss")
                .collect();
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("error", "access_denied");
            query.append_pair("error_description", "<img src=x onerror=alert(1)>\"quoted\"");
            query.extend_pairs(kept);
            format!("{path}?{}", query.finish())
        });
        let err = bounded(login.open_with(open).run(&client, |request| request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::AccessDenied), "{err:?}");
        let (status, page) = bounded(seen.recv()).await.unwrap();
        assert_eq!(status, 400, "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "{page}");
        assert_eq!(server.token_requests(), 0);
    }

    #[tokio::test]
    async fn the_page_comes_after_the_exchange_and_escapes_what_the_server_said() {
        let (server, client) = demo().await;
        server.push_token_response(Scripted::json(
            400,
            serde_json::json!({
                "error": "invalid_grant",
                "error_description": "<script>alert('pwned')</script> & more"
            }),
        ));
        let login = LoopbackLogin::bind().await.unwrap();
        let addr = addr(&login);
        let (open, mut seen) = browser(&server, addr, |callback| callback);
        let err = bounded(login.open_with(open).run(&client, |request| request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err:?}");
        let (status, page) = bounded(seen.recv()).await.unwrap();
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("invalid_grant"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; more"),
            "{page}"
        );
        // No secret on the page: neither the code nor the verifier.
        let sent = server.requests();
        let exchange = sent.iter().find(|r| r.path == "/token").unwrap();
        for secret in ["code", "code_verifier"] {
            let value = exchange.param(secret).unwrap();
            assert!(!page.contains(value), "{secret} on the page: {page}");
        }
        assert!(closed(addr).await);
    }

    #[tokio::test]
    async fn a_request_for_another_redirect_uri_is_refused_before_the_browser_opens() {
        let (_server, client) = demo().await;
        let login = LoopbackLogin::bind().await.unwrap();
        let opened = Arc::new(Mutex::new(false));
        let flag = opened.clone();
        let login = login.open_with(move |_| *flag.lock().unwrap() = true);
        let request = client.authorization_request("http://127.0.0.1:9/elsewhere");
        let err = bounded(login.run_request(&client, request)).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(!*opened.lock().unwrap());
    }

    #[tokio::test]
    async fn bind_to_takes_a_port_and_a_path_and_reports_a_taken_port() {
        let first = LoopbackLogin::bind_to(0, "/oauth2/cb").await.unwrap();
        let port = addr(&first).port();
        assert_eq!(first.redirect_uri(), format!("http://127.0.0.1:{port}/oauth2/cb"));
        let err = LoopbackLogin::bind_to(port, "/cb").await.unwrap_err();
        assert!(matches!(err, Error::Loopback(LoopbackError::Bind(_))), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
        for bad in ["", "cb", "/cb?x=1", "/cb#f", "/c b"] {
            let err = LoopbackLogin::bind_to(0, bad).await.unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad:?}: {err:?}");
        }
    }
}

/// examples/web_login.rs, its own code: the full login over HTTP (what `--self-test` runs),
/// and its routes driven in-process.
mod web {
    use axum::body::Body;
    use http::header::{COOKIE, LOCATION, SET_COOKIE};
    use tower::ServiceExt as _;

    use super::util::bounded;
    use super::web_login::{self, App, CLIENT_ID};

    /// The demo server and the app's routes; the app is "reached" at a base URL that nobody
    /// listens on: the test hands each request to the router itself.
    async fn app() -> (web_login::auth_server::AuthServer, axum::Router) {
        let server = web_login::demo_server().await;
        let client = bounded(web_login::demo_client(&server)).await.unwrap();
        let app = App::new(client, "http://127.0.0.1:9", &server.resource_url());
        (server, web_login::router(app))
    }

    /// GET `uri` (a path, or a full URL whose path and query are kept) with `cookie`: the
    /// status, the headers and the page.
    async fn get(router: &axum::Router, uri: &str, cookie: Option<&str>) -> (u16, http::HeaderMap, String) {
        let uri = match url::Url::parse(uri) {
            Ok(url) => format!("{}?{}", url.path(), url.query().unwrap_or_default()),
            Err(_) => uri.to_owned(),
        };
        let mut request = http::Request::get(uri);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = bounded(router.clone().oneshot(request.body(Body::empty()).unwrap()))
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = bounded(axum::body::to_bytes(body, 1 << 20)).await.unwrap();
        (
            parts.status.as_u16(),
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn header(headers: &http::HeaderMap, name: http::header::HeaderName) -> &str {
        headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    /// `/login`: the authorization URL and the session cookie (`sid=...`).
    async fn start_login(router: &axum::Router) -> (String, String) {
        let (status, headers, _) = get(router, "/login", None).await;
        assert_eq!(status, 302);
        let cookie = header(&headers, SET_COOKIE);
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let cookie = cookie.split(';').next().unwrap().to_owned();
        (header(&headers, LOCATION).to_owned(), cookie)
    }

    #[tokio::test]
    async fn the_self_test_logs_in_over_http_and_calls_the_api_with_the_users_token() {
        let server = web_login::demo_server().await;
        let client = bounded(web_login::demo_client(&server)).await.unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = App::new(client, &base_url, &server.resource_url());
        let serving = tokio::spawn(async move { axum::serve(listener, web_login::router(app)).await });
        let page = bounded(web_login::browse_login(&server, &base_url))
            .await
            .unwrap();
        serving.abort();
        assert!(page.contains("The API answered 200 OK: ok"), "{page}");
        // One code exchange (with the client's secret, Basic), one API call with its token.
        let exchanges = server.requests();
        assert_eq!(exchanges.len(), 1);
        assert_eq!(exchanges[0].param("grant_type"), Some("authorization_code"));
        assert!(exchanges[0]
            .header("authorization")
            .is_some_and(|h| h.starts_with("Basic ")));
        assert_eq!(server.resource_tokens().len(), 1);
        assert!(server.resource_tokens()[0].is_some());
    }

    #[tokio::test]
    async fn each_user_calls_the_api_with_their_own_token() {
        let (server, router) = app().await;
        let (_, _, home) = get(&router, "/", None).await;
        assert!(home.contains(r#"href="/login""#), "{home}");
        let mut cookies = Vec::new();
        for _ in 0..2 {
            let (authorization_url, cookie) = start_login(&router).await;
            assert!(authorization_url.starts_with(&server.authorization_url()));
            let params = super::query(&authorization_url);
            assert_eq!(super::param(&params, "client_id"), Some(CLIENT_ID));
            assert_eq!(
                super::param(&params, "redirect_uri"),
                Some("http://127.0.0.1:9/callback")
            );
            let callback = bounded(server.authorize(&authorization_url)).await.unwrap();
            let (status, headers, page) = get(&router, &callback, Some(&cookie)).await;
            assert_eq!(status, 302, "{page}");
            assert_eq!(header(&headers, LOCATION), "/api");
            cookies.push(logged_in_cookie(&headers));
        }
        assert_ne!(cookies[0], cookies[1]);
        for cookie in &cookies {
            let (status, _, page) = get(&router, "/api", Some(cookie)).await;
            assert_eq!(status, 200);
            assert!(page.contains("The API answered 200 OK: ok"), "{page}");
            let (_, _, home) = get(&router, "/", Some(cookie)).await;
            assert!(home.contains("You are logged in"), "{home}");
        }
        let tokens = server.resource_tokens();
        assert_eq!(tokens.len(), 2);
        assert_ne!(tokens[0], tokens[1], "each user's own token");
    }

    /// The session cookie `/callback` sets (`sid=...`), checked for its attributes.
    fn logged_in_cookie(headers: &http::HeaderMap) -> String {
        let cookie = header(headers, SET_COOKIE);
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(
            cookie.starts_with(&format!("{}=", web_login::SESSION_COOKIE)),
            "{cookie}"
        );
        cookie.split(';').next().unwrap().to_owned()
    }

    #[tokio::test]
    async fn the_callback_moves_the_user_to_a_new_session_and_the_old_id_reaches_nothing() {
        let (server, router) = app().await;
        // `login_cookie` is what an attacker who planted the session would know.
        let (authorization_url, login_cookie) = start_login(&router).await;
        let callback = bounded(server.authorize(&authorization_url)).await.unwrap();
        let (status, headers, page) = get(&router, &callback, Some(&login_cookie)).await;
        assert_eq!(status, 302, "{page}");
        let new_cookie = logged_in_cookie(&headers);
        assert_ne!(new_cookie, login_cookie);
        // The old id: not logged in, and its login is gone (used up, session deleted).
        let (status, _, page) = get(&router, "/api", Some(&login_cookie)).await;
        assert_eq!(status, 401, "{page}");
        let (_, _, home) = get(&router, "/", Some(&login_cookie)).await;
        assert!(!home.contains("You are logged in"), "{home}");
        let (status, _, page) = get(&router, &callback, Some(&login_cookie)).await;
        assert_eq!(status, 400);
        assert!(page.contains("no login under way"), "{page}");
        // The new id: the user's session.
        let (status, _, page) = get(&router, "/api", Some(&new_cookie)).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("The API answered 200 OK: ok"), "{page}");
        assert_eq!(server.token_requests(), 1);
        assert_eq!(server.resource_tokens().len(), 1);
    }

    #[tokio::test]
    async fn a_forged_callback_fails_and_the_login_cannot_be_replayed() {
        let (server, router) = app().await;
        let (authorization_url, cookie) = start_login(&router).await;
        let callback = bounded(server.authorize(&authorization_url)).await.unwrap();
        let forged = callback.replace("state=", "state=forged");
        let (status, _, page) = get(&router, &forged, Some(&cookie)).await;
        assert_eq!(status, 400);
        assert!(page.contains("Login failed"), "{page}");
        // The pending login was used up by the failed attempt: the real callback is refused too.
        let (status, _, page) = get(&router, &callback, Some(&cookie)).await;
        assert_eq!(status, 400);
        assert!(page.contains("no login under way"), "{page}");
        assert_eq!(server.token_requests(), 0);
        // Not logged in.
        let (status, _, _) = get(&router, "/api", Some(&cookie)).await;
        assert_eq!(status, 401);
        // A callback without a session cookie.
        let (status, _, page) = get(&router, &callback, None).await;
        assert_eq!(status, 400);
        assert!(page.contains("no session"), "{page}");
    }
}
