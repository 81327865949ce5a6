//! The authorization code flow (RFC 6749 §4.1) against oidc-provider, end to end: the test plays
//! the browser (`support/browser.rs`: redirects, cookies, the development login and consent
//! forms of `/interaction/:uid`), with PKCE S256 (RFC 7636), `state`, `nonce`, RFC 9207 `iss`,
//! pushed authorization requests (RFC 9126), ID token checks (feature `jwt`), and the user's
//! token carried and refreshed by `OAuth2Layer`. See `tests/interop/README.md`, "The
//! authorization code flow".
//!
//! The tests need Node.js 20 or later and npm; they never skip. Each starts its own server.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/interop.rs"]
mod harness;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{
    Callback, CallbackError, ClientAuth, Error, ErrorCode, Login, OAuth2Client, PendingAuthorization,
    TokenSource,
};
use url::Url;

use browser::{Browser, Choice};
use harness::util::{bounded, expect_err};
use harness::{plain_client, Recorded, Recorder, Server, ServerConfig};
use harness::{BASIC_ID, BASIC_SECRET, PAR_ID, PAR_SECRET, POST_ID, POST_SECRET, PUBLIC_ID, REDIRECT_URI};

/// The user the browser signs in as (the development login page takes any login and makes it
/// the account id, `sub`).
const USER: &str = "test-user";
/// Another user, for the test that checks the login typed into the form is the one logged in.
const ADA: &str = "ada.lovelace";

fn basic() -> ClientAuth {
    ClientAuth::client_secret_basic(BASIC_ID, BASIC_SECRET)
}

/// A client from the server's discovery document, sending through `recorder`.
async fn discover(server: &Server, recorder: &Recorder, auth: ClientAuth) -> OAuth2Client {
    let client = bounded(
        OAuth2Client::builder(auth)
            .http_client(recorder.http_client())
            .discover(&server.issuer()),
    )
    .await
    .expect("discovery");
    recorder.take();
    client
}

/// The query parameters of `url`, in order.
fn query(url: &str) -> Vec<(String, String)> {
    Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// The only value of `name` in `pairs` (panics if repeated).
fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    harness::util::only_field(pairs, name)
}

/// The requests sent to `path`.
fn to_path<'a>(sent: &'a [Recorded], path: &str) -> Vec<&'a Recorded> {
    sent.iter().filter(|r| r.path == path).collect()
}

/// `pending` with one field of its saved JSON replaced (what an attacker or a bug could do to a
/// session store).
fn tampered(pending: &PendingAuthorization, field: &str, value: &str) -> PendingAuthorization {
    let mut json: Value = serde_json::from_str(&pending.to_json()).unwrap();
    assert!(json.get(field).is_some(), "no {field} in {}", pending.state());
    json[field] = Value::String(value.to_owned());
    PendingAuthorization::from_json(&json.to_string()).unwrap()
}

/// A field of the saved JSON of `pending` (its code verifier, for example).
fn saved(pending: &PendingAuthorization, field: &str) -> String {
    let json: Value = serde_json::from_str(&pending.to_json()).unwrap();
    json[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in the saved pending authorization"))
        .to_owned()
}

/// Starts an authorization with `scope` and plays the browser until the redirect back; returns
/// the pending authorization and the callback URL.
/// `discover`, with the client on `clock` (the layer's cache shares it), recorder not emptied.
async fn discover_at(server: &Server, recorder: &Recorder, clock: &ManualClock) -> OAuth2Client {
    bounded(
        OAuth2Client::builder(basic())
            .http_client(recorder.http_client())
            .clock(clock.clone())
            .discover(&server.issuer()),
    )
    .await
    .expect("discovery")
}

/// A login with `scope` and `prompt=consent` (which `offline_access` needs for a refresh
/// token), through a new browser, and its code exchanged.
async fn offline_login(client: &OAuth2Client, scope: &str) -> Login {
    let authorization = bounded(
        client
            .authorization_request(REDIRECT_URI)
            .scope(scope)
            .prompt("consent")
            .start(),
    )
    .await
    .unwrap();
    let (url, pending) = authorization.into_parts();
    let callback = bounded(Browser::new(REDIRECT_URI).authorize(url.as_str())).await;
    bounded(client.exchange_code(&pending, &Callback::from_url(&callback).unwrap()))
        .await
        .unwrap()
}

async fn authorize(
    client: &OAuth2Client,
    browser: &mut Browser,
    scope: &str,
) -> (PendingAuthorization, String) {
    let authorization = bounded(client.authorization_request(REDIRECT_URI).scope(scope).start())
        .await
        .expect("authorization request");
    let (url, pending) = authorization.into_parts();
    let callback = bounded(browser.authorize(url.as_str())).await;
    (pending, callback)
}

/// Sends `GET /test/protected` through `service`; the status and JSON body.
async fn call_protected<S>(server: &Server, service: &mut S) -> (StatusCode, Value)
where
    S: tower::Service<
        http::Request<http_body_util::Full<bytes::Bytes>>,
        Response = http::Response<hyper::body::Incoming>,
    >,
    S::Error: std::fmt::Debug,
{
    let response = bounded(
        service
            .ready()
            .await
            .unwrap()
            .call(server.api().get_request("/test/protected")),
    )
    .await
    .expect("request through the layer");
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

// ---------------------------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------------------------

/// Discovery, the authorization URL (PKCE S256, state, nonce), the login and consent forms,
/// the callback with `iss`, the code exchange with the verifier and the client's
/// authentication, the ID token's claims, and the user's token accepted by the resource.
#[tokio::test]
async fn a_user_logs_in_with_pkce_nonce_and_iss() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let discovery = client.metadata().expect("discovered").as_json();
    assert_eq!(discovery["authorization_response_iss_parameter_supported"], true);

    let authorization = bounded(
        client
            .authorization_request(REDIRECT_URI)
            .scope("openid api:read")
            .login_hint(ADA)
            .start(),
    )
    .await
    .unwrap();
    assert!(recorder.take().is_empty(), "no PAR unless asked for or required");
    let (url, pending) = authorization.into_parts();
    assert_eq!(url.as_str().split('?').next(), Some(server.url("/auth").as_str()));
    let sent = query(url.as_str());
    assert_eq!(get(&sent, "response_type"), Some("code"));
    assert_eq!(get(&sent, "client_id"), Some(BASIC_ID));
    assert_eq!(get(&sent, "redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(get(&sent, "scope"), Some("openid api:read"));
    assert_eq!(get(&sent, "login_hint"), Some(ADA));
    assert_eq!(get(&sent, "code_challenge_method"), Some("S256"));
    assert_eq!(get(&sent, "code_challenge").map(str::len), Some(43));
    assert_eq!(get(&sent, "state"), Some(pending.state()));
    let nonce = pending
        .nonce()
        .expect("openid in scope: a nonce")
        .expose()
        .to_owned();
    assert_eq!(get(&sent, "nonce"), Some(nonce.as_str()));
    let verifier = saved(&pending, "code_verifier");
    assert!(
        !url.as_str().contains(&verifier),
        "the verifier stays with the client"
    );

    let mut browser = Browser::new(REDIRECT_URI).credentials(ADA, "her password");
    let callback_url = bounded(browser.authorize(url.as_str())).await;
    assert_eq!(
        browser.submitted(),
        ["login", "consent"],
        "both forms were submitted"
    );
    let back = query(&callback_url);
    assert_eq!(get(&back, "iss"), Some(server.issuer().as_str()), "RFC 9207");
    assert_eq!(get(&back, "state"), Some(pending.state()));
    let code = get(&back, "code").expect("a code").to_owned();

    let callback = Callback::from_url(&callback_url).unwrap();
    assert_eq!(callback.param("iss"), Some(server.issuer().as_str()));
    assert_eq!(callback.param("code"), None, "the code is not handed out");
    let login = bounded(client.exchange_code(&pending, &callback))
        .await
        .expect("code exchange");

    let sent = recorder.take();
    let token_requests = to_path(&sent, "/token");
    assert_eq!(token_requests.len(), 1, "{sent:?}");
    let request = token_requests[0];
    assert_eq!(request.field("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(request.field("code"), Some(code.clone()));
    assert_eq!(request.field("redirect_uri").as_deref(), Some(REDIRECT_URI));
    assert_eq!(request.field("code_verifier"), Some(verifier));
    assert!(request.authorization().is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(request.field("client_secret"), None);

    let token = login.token();
    assert!(
        token.refresh_token().is_none(),
        "no offline_access: no refresh token"
    );
    let (status, body) = server.api().call_protected(token.access_token().expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], BASIC_ID);
    assert_eq!(body["scope"], "openid api:read");
    let (status, userinfo) = server
        .api()
        .get_bearer("/me", token.access_token().expose())
        .await;
    assert_eq!(
        (status, &userinfo["sub"]),
        (StatusCode::OK, &Value::from(ADA)),
        "{userinfo}"
    );

    #[cfg(feature = "jwt")]
    {
        let id_token = login.id_token().expect("openid in scope: a verified ID token");
        let claims = id_token.claims();
        assert_eq!(claims.subject(), ADA, "the login typed into the form");
        assert_eq!(claims.nonce(), Some(nonce.as_str()));
        assert_eq!(claims.issuer(), server.issuer());
        assert_eq!(claims.audience(), [BASIC_ID.to_owned()]);
        assert_eq!(
            to_path(&sent, "/jwks").len(),
            1,
            "the keys come from the jwks_uri"
        );
    }

    // A code is good once: the server refuses it the second time.
    let err = expect_err(bounded(client.exchange_code(&pending, &callback)).await);
    assert!(matches!(&err, Error::OAuth2 { .. }), "{err:?}");
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err}");
}

/// A public client (no authentication): the verifier is what binds the code to it. The callback
/// is read from an `http::Request`, as a web app gets it.
#[tokio::test]
async fn a_public_client_logs_in_with_the_verifier_alone() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, ClientAuth::none(PUBLIC_ID)).await;
    let mut browser = Browser::new(REDIRECT_URI);
    let (pending, callback) = authorize(&client, &mut browser, "api:read").await;
    assert!(pending.nonce().is_none(), "no openid: no nonce");
    // The callback as a web server hands it over: the request, its URI in origin form.
    let url = Url::parse(&callback).unwrap();
    let request = http::Request::get(format!("{}?{}", url.path(), url.query().unwrap()))
        .body(())
        .unwrap();
    let login = bounded(client.exchange_code(&pending, &Callback::from_request(&request)))
        .await
        .expect("code exchange");
    let sent = recorder.take();
    let request = to_path(&sent, "/token")[0];
    assert_eq!(request.field("client_id").as_deref(), Some(PUBLIC_ID));
    assert_eq!(request.authorization(), None);
    assert_eq!(
        request.field("code_verifier"),
        Some(saved(&pending, "code_verifier"))
    );
    assert!(login.token().id_token().is_none());
    let (status, body) = server
        .api()
        .call_protected(login.token().access_token().expose())
        .await;
    assert_eq!(
        (status, &body["client_id"]),
        (StatusCode::OK, &Value::from(PUBLIC_ID)),
        "{body}"
    );
}

/// The server checks the verifier (RFC 7636 §4.6): the verifier of another authorization is
/// `invalid_grant`, a typed `Error::OAuth2`.
#[tokio::test]
async fn the_server_rejects_another_authorization_s_verifier() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let other = bounded(
        client
            .authorization_request(REDIRECT_URI)
            .scope("api:read")
            .start(),
    )
    .await
    .unwrap();
    let other_verifier = saved(other.pending(), "code_verifier");

    let mut browser = Browser::new(REDIRECT_URI);
    let (pending, callback) = authorize(&client, &mut browser, "api:read").await;
    assert_ne!(saved(&pending, "code_verifier"), other_verifier);
    let wrong = tampered(&pending, "code_verifier", &other_verifier);
    let callback = Callback::from_url(&callback).unwrap();
    let err = expect_err(bounded(client.exchange_code(&wrong, &callback)).await);
    match &err {
        Error::OAuth2 { status, error, .. } => {
            assert_eq!(*status, StatusCode::BAD_REQUEST);
            assert_eq!(error.code, ErrorCode::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    assert!(!err.to_string().contains(&other_verifier), "{err}");
    let sent = recorder.take();
    let token_requests = to_path(&sent, "/token");
    assert_eq!(token_requests.len(), 1);
    assert_eq!(token_requests[0].field("code_verifier"), Some(other_verifier));
}

/// The callback checks come before any token request: a `state` of another authorization, a
/// foreign `iss`, a missing `iss` (the server advertises RFC 9207), each a typed error; the
/// genuine callback then still works.
#[tokio::test]
async fn state_and_iss_of_the_callback_are_checked_before_the_exchange() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let mut browser = Browser::new(REDIRECT_URI);
    let (pending, callback_url) = authorize(&client, &mut browser, "api:read").await;
    let other = bounded(
        client
            .authorization_request(REDIRECT_URI)
            .scope("api:read")
            .start(),
    )
    .await
    .unwrap();

    let callback = Callback::from_url(&callback_url).unwrap();
    let err = expect_err(bounded(client.exchange_code(other.pending(), &callback)).await);
    assert!(
        matches!(err, Error::Callback(CallbackError::StateMismatch)),
        "{err:?}"
    );

    let mut url = Url::parse(&callback_url).unwrap();
    let pairs = query(&callback_url);
    let rewrite = |url: &mut Url, iss: Option<&str>| {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (name, value) in &pairs {
            match (name.as_str(), iss) {
                ("iss", Some(iss)) => q.append_pair(name, iss),
                ("iss", None) => continue,
                _ => q.append_pair(name, value),
            };
        }
    };
    rewrite(&mut url, Some("http://127.0.0.1:1"));
    let err =
        expect_err(bounded(client.exchange_code(&pending, &Callback::from_url(url.as_str()).unwrap())).await);
    match &err {
        Error::Callback(CallbackError::IssuerMismatch { expected, found }) => {
            assert_eq!(expected, &server.issuer());
            assert_eq!(found, "http://127.0.0.1:1");
        }
        other => panic!("expected an issuer mismatch, got {other:?}"),
    }
    rewrite(&mut url, None);
    let err =
        expect_err(bounded(client.exchange_code(&pending, &Callback::from_url(url.as_str()).unwrap())).await);
    assert!(
        matches!(err, Error::Callback(CallbackError::MissingIssuer)),
        "{err:?}"
    );

    assert!(
        to_path(&recorder.take(), "/token").is_empty(),
        "no token request for a refused callback"
    );
    bounded(client.exchange_code(&pending, &callback))
        .await
        .expect("the genuine callback");
}

/// The user cancels on the login page ("[ Cancel ]", `/interaction/:uid/abort`): the server
/// redirects back with `error=access_denied`, a typed error with the server's description, and
/// no token request.
#[tokio::test]
async fn a_user_who_cancels_gives_access_denied() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let mut browser = Browser::new(REDIRECT_URI);
    browser.choose(Choice::Cancel);
    let (pending, callback_url) = authorize(&client, &mut browser, "openid api:read").await;
    assert_eq!(browser.submitted(), ["link:cancel"]);
    let err = expect_err(
        bounded(client.exchange_code(&pending, &Callback::from_url(&callback_url).unwrap())).await,
    );
    match &err {
        Error::Callback(CallbackError::Server(error)) => {
            assert_eq!(error.code, ErrorCode::AccessDenied);
            assert_eq!(error.description.as_deref(), Some("End-User aborted interaction"));
        }
        other => panic!("expected access_denied, got {other:?}"),
    }
    assert_eq!(err.code(), Some(&ErrorCode::AccessDenied));
    assert!(to_path(&recorder.take(), "/token").is_empty());
}

/// A second login in the same browser reuses the session and the grant: no form, straight back
/// with a code.
#[tokio::test]
async fn a_second_login_in_the_same_browser_needs_no_form() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let mut browser = Browser::new(REDIRECT_URI);
    let (first, callback) = authorize(&client, &mut browser, "openid api:read").await;
    bounded(client.exchange_code(&first, &Callback::from_url(&callback).unwrap()))
        .await
        .unwrap();
    assert!(browser
        .cookie_names(&server.issuer())
        .contains(&"_session".to_owned()));
    let (second, callback) = authorize(&client, &mut browser, "openid api:read").await;
    assert_eq!(
        browser.submitted(),
        ["login", "consent"],
        "no form the second time"
    );
    let login = bounded(client.exchange_code(&second, &Callback::from_url(&callback).unwrap()))
        .await
        .expect("the second code");
    assert_eq!(
        server
            .api()
            .call_protected(login.token().access_token().expose())
            .await
            .0,
        StatusCode::OK
    );
    #[cfg(feature = "jwt")]
    assert_eq!(
        login.id_token().expect("an ID token").claims().nonce(),
        second.nonce().map(|n| n.expose()),
        "the second login's own nonce"
    );
}

// ---------------------------------------------------------------------------------------------
// PAR (RFC 9126)
// ---------------------------------------------------------------------------------------------

/// `par-client` is registered with `require_pushed_authorization_requests`: a front-channel
/// request is sent back with `invalid_request`, and `.pushed()` pushes the parameters with the
/// client's authentication, then the URL carries only `client_id` and `request_uri`.
#[tokio::test]
async fn pushed_authorization_requests_for_a_client_that_must_use_them() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(
        &server,
        &recorder,
        ClientAuth::client_secret_basic(PAR_ID, PAR_SECRET),
    )
    .await;
    assert_eq!(
        client.pushed_authorization_request_url().map(Url::as_str),
        Some(server.url("/request").as_str())
    );

    // Without PAR: the server refuses (this is what makes the pushed flow below meaningful).
    let (url, pending) = client
        .authorization_request(REDIRECT_URI)
        .scope("openid")
        .build()
        .expect("the server does not advertise the requirement: a front-channel URL")
        .into_parts();
    let callback = bounded(Browser::new(REDIRECT_URI).authorize(url.as_str())).await;
    let err =
        expect_err(bounded(client.exchange_code(&pending, &Callback::from_url(&callback).unwrap())).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidRequest), "{err}");
    assert!(
        err.to_string()
            .contains("Pushed Authorization Request must be used"),
        "{err}"
    );

    let authorization = bounded(
        client
            .authorization_request(REDIRECT_URI)
            .scope("openid api:read")
            .pushed()
            .start(),
    )
    .await
    .expect("PAR");
    let sent = recorder.take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let push = &sent[0];
    assert_eq!(
        (&push.method, push.path.as_str()),
        (&http::Method::POST, "/request")
    );
    assert!(push.authorization().is_some_and(|a| a.starts_with("Basic ")));
    let (url, pending) = authorization.into_parts();
    assert_eq!(push.field("state").as_deref(), Some(pending.state()));
    assert_eq!(push.field("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(push.field("redirect_uri").as_deref(), Some(REDIRECT_URI));
    assert_eq!(push.field("scope").as_deref(), Some("openid api:read"));
    assert_eq!(
        push.field("nonce").as_deref(),
        pending.nonce().map(|n| n.expose())
    );
    let front: Vec<String> = query(url.as_str()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(front, ["client_id", "request_uri"]);
    assert!(get(&query(url.as_str()), "request_uri")
        .is_some_and(|u| u.starts_with("urn:ietf:params:oauth:request_uri:")));

    let mut browser = Browser::new(REDIRECT_URI);
    let callback = bounded(browser.authorize(url.as_str())).await;
    assert_eq!(browser.submitted(), ["login", "consent"]);
    let login = bounded(client.exchange_code(&pending, &Callback::from_url(&callback).unwrap()))
        .await
        .expect("code exchange after PAR");
    let (status, body) = server
        .api()
        .call_protected(login.token().access_token().expose())
        .await;
    assert_eq!(
        (status, &body["client_id"]),
        (StatusCode::OK, &Value::from(PAR_ID)),
        "{body}"
    );

    // A request_uri is good once. The server cannot know the state of a spent request_uri, so
    // its error comes back without one: the client reports the server's error.
    let again = bounded(Browser::new(REDIRECT_URI).try_authorize(url.as_str())).await;
    let again = again.expect("sent back to the client");
    assert_eq!(
        get(&query(&again), "error"),
        Some("invalid_request_uri"),
        "{again}"
    );
    let err = expect_err(bounded(client.exchange_code(&pending, &Callback::from_url(&again).unwrap())).await);
    assert!(
        matches!(&err, Error::Callback(CallbackError::Server(e)) if e.code.as_str() == "invalid_request_uri"),
        "{err:?}"
    );
}

/// With the server-wide requirement (`REQUIRE_PAR=1`: discovery says
/// `require_pushed_authorization_requests`), `start()` pushes on its own and `build()` refuses.
#[tokio::test]
async fn a_server_that_requires_par_gets_it_without_asking() {
    let server = Server::start(ServerConfig::default().require_par()).await;
    let recorder = Recorder::default();
    let client = discover(
        &server,
        &recorder,
        ClientAuth::client_secret_post(POST_ID, POST_SECRET),
    )
    .await;
    assert_eq!(
        client.metadata().unwrap().as_json()["require_pushed_authorization_requests"],
        true
    );
    let err = client
        .authorization_request(REDIRECT_URI)
        .scope("openid")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");

    let mut browser = Browser::new(REDIRECT_URI);
    let (pending, callback) = authorize(&client, &mut browser, "openid api:read").await;
    let sent = recorder.take();
    assert_eq!(to_path(&sent, "/request").len(), 1, "{sent:?}");
    assert_eq!(
        to_path(&sent, "/request")[0].field("client_secret").as_deref(),
        Some(POST_SECRET)
    );
    let login = bounded(client.exchange_code(&pending, &Callback::from_url(&callback).unwrap()))
        .await
        .expect("code exchange");
    assert_eq!(
        server
            .api()
            .call_protected(login.token().access_token().expose())
            .await
            .0,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// The user's token through the layer
// ---------------------------------------------------------------------------------------------

/// `offline_access` with `prompt=consent` gives a refresh token; `Login::into_layer` carries the
/// user's token (no token request), and once it expires by the client's clock (a
/// `ManualClock`, which the layer's cache shares) the layer refreshes it with the login's
/// refresh token, once, and carries the new token.
#[tokio::test]
async fn the_layer_carries_the_user_s_token_and_refreshes_it() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let clock = ManualClock::starting_at(SystemTime::now());
    let client = discover_at(&server, &recorder, &clock).await;
    let login = offline_login(&client, "openid offline_access api:read").await;
    let first_access = login.token().access_token().expose().to_owned();
    let refresh = login
        .token()
        .refresh_token()
        .expect("offline_access + prompt=consent: a refresh token")
        .expose()
        .to_owned();
    assert_eq!(login.token().lifetime(), Some(Duration::from_secs(60)));
    recorder.take();
    server.api().reset().await;

    let mut service = ServiceBuilder::new()
        .layer(login.into_layer())
        .service(plain_client());
    let (status, body) = call_protected(&server, &mut service).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["jti_tail"],
        first_access[first_access.len() - 4..],
        "the login's own token"
    );
    assert_eq!(body["client_id"], BASIC_ID);
    assert_eq!(server.api().token_requests().await, 0);

    clock.advance(Duration::from_secs(60));
    let (status, body) = call_protected(&server, &mut service).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(
        body["jti_tail"],
        first_access[first_access.len() - 4..],
        "a new token"
    );
    let (status, again) = call_protected(&server, &mut service).await;
    assert_eq!(
        (status, &again["jti_tail"]),
        (StatusCode::OK, &body["jti_tail"]),
        "kept"
    );
    assert_eq!(server.api().token_requests().await, 1, "one refresh");
    let sent = recorder.take();
    let refreshes = to_path(&sent, "/token");
    assert_eq!(refreshes.len(), 1, "{sent:?}");
    assert_eq!(refreshes[0].field("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(refreshes[0].field("refresh_token"), Some(refresh));
    assert!(refreshes[0]
        .authorization()
        .is_some_and(|a| a.starts_with("Basic ")));
}

/// `Login::refresh_token` with the persistence hook: each rotated refresh token reaches the
/// hook, and the rotated one works (the server rotates on every use).
#[tokio::test]
async fn the_login_s_refresh_token_source_persists_rotations() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let login = offline_login(&client, "offline_access api:read").await;
    let original = login
        .token()
        .refresh_token()
        .expect("a refresh token")
        .expose()
        .to_owned();
    let saved_tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let source = login.refresh_token().unwrap().on_new_token({
        let saved_tokens = saved_tokens.clone();
        move |token| {
            let saved_tokens = saved_tokens.clone();
            let refresh = token.refresh_token().map(|r| r.expose().to_owned());
            async move { saved_tokens.lock().unwrap().extend(refresh) }
        }
    });
    recorder.take();
    let first = bounded(source.fetch_token()).await.expect("first refresh");
    let second = bounded(source.fetch_token())
        .await
        .expect("second refresh, with the rotated token");
    let saved_tokens = saved_tokens.lock().unwrap().clone();
    assert_eq!(saved_tokens.len(), 2, "one save per rotation");
    assert!(!saved_tokens.contains(&original));
    assert_eq!(
        Some(saved_tokens[1].as_str()),
        second.refresh_token().map(|r| r.expose())
    );
    let sent: Vec<Option<String>> = to_path(&recorder.take(), "/token")
        .iter()
        .map(|r| r.field("refresh_token"))
        .collect();
    assert_eq!(sent, [Some(original), Some(saved_tokens[0].clone())]);
    assert_ne!(first.access_token().expose(), second.access_token().expose());
}

// ---------------------------------------------------------------------------------------------
// ID tokens (feature `jwt`)
// ---------------------------------------------------------------------------------------------

/// A login whose saved nonce was changed: the exchange happens (the code is spent) and the ID
/// token is refused.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    use tower_oauth2::IdTokenError;

    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let mut browser = Browser::new(REDIRECT_URI);
    let (pending, callback) = authorize(&client, &mut browser, "openid").await;
    let wrong = tampered(&pending, "nonce", "a-nonce-this-login-never-sent");
    let err =
        expect_err(bounded(client.exchange_code(&wrong, &Callback::from_url(&callback).unwrap())).await);
    assert!(
        matches!(err, Error::IdToken(IdTokenError::NonceMismatch)),
        "{err:?}"
    );
    assert!(
        !err.to_string().contains("a-nonce-this-login-never-sent"),
        "{err}"
    );
    assert_eq!(to_path(&recorder.take(), "/token").len(), 1);
}

/// The real ID token verifies for its client and nonce, and is refused for another client
/// (`aud`), with another nonce, and with one byte of its signature changed.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn an_id_token_for_another_audience_or_with_a_bad_signature_is_refused() {
    use tower_oauth2::IdTokenError;

    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let client = discover(&server, &recorder, basic()).await;
    let mut browser = Browser::new(REDIRECT_URI);
    let (pending, callback) = authorize(&client, &mut browser, "openid").await;
    let login = bounded(client.exchange_code(&pending, &Callback::from_url(&callback).unwrap()))
        .await
        .unwrap();
    let raw = login.token().id_token().expect("an ID token").expose().to_owned();
    let nonce = pending.nonce().unwrap().expose().to_owned();
    let verified = bounded(client.verify_id_token(&raw, Some(&nonce)))
        .await
        .expect("the genuine token");
    assert_eq!(verified.claims().subject(), USER);

    let err = expect_err(bounded(client.verify_id_token(&raw, Some("another-nonce"))).await);
    assert!(
        matches!(err, Error::IdToken(IdTokenError::NonceMismatch)),
        "{err:?}"
    );

    let other = discover(
        &server,
        &recorder,
        ClientAuth::client_secret_post(POST_ID, POST_SECRET),
    )
    .await;
    let err = expect_err(bounded(other.verify_id_token(&raw, Some(&nonce))).await);
    assert!(
        matches!(err, Error::IdToken(IdTokenError::AudienceMismatch { .. })),
        "{err:?}"
    );

    let (signed, signature) = raw.rsplit_once('.').unwrap();
    let mut signature = signature.as_bytes().to_vec();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == b'A' { b'B' } else { b'A' };
    let forged = format!("{signed}.{}", String::from_utf8(signature).unwrap());
    let err = expect_err(bounded(client.verify_id_token(&forged, Some(&nonce))).await);
    assert!(
        matches!(err, Error::IdToken(IdTokenError::InvalidSignature)),
        "{err:?}"
    );
    assert!(!err.to_string().contains(signed), "{err}");
}

/// Without `offline_access` there is no refresh token: `Login::into_layer` carries the login's
/// token while it lasts, then fails with `Error::LoginExpired` and sends nothing.
#[tokio::test]
async fn without_a_refresh_token_the_layer_stops_when_the_token_expires() {
    let server = Server::start(ServerConfig::default()).await;
    let recorder = Recorder::default();
    let clock = ManualClock::starting_at(SystemTime::now());
    let client = discover_at(&server, &recorder, &clock).await;
    let mut browser = Browser::new(REDIRECT_URI);
    let (pending, callback) = authorize(&client, &mut browser, "api:read").await;
    let login = bounded(client.exchange_code(&pending, &Callback::from_url(&callback).unwrap()))
        .await
        .unwrap();
    assert!(login.token().refresh_token().is_none());
    let err = expect_err(login.refresh_token().map(|_| ()));
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    server.api().reset().await;

    let mut service = ServiceBuilder::new()
        .layer(login.into_layer())
        .service(plain_client());
    let (status, body) = call_protected(&server, &mut service).await;
    assert_eq!(
        (status, &body["client_id"]),
        (StatusCode::OK, &Value::from(BASIC_ID)),
        "{body}"
    );

    clock.advance(Duration::from_secs(60));
    let err = bounded(
        service
            .ready()
            .await
            .unwrap()
            .call(server.api().get_request("/test/protected")),
    )
    .await
    .expect_err("the login has expired");
    let err = Error::from(err);
    assert!(matches!(err, Error::LoginExpired), "{err:?}");
    assert_eq!(server.api().token_requests().await, 0);
    assert_eq!(
        server.api().protected_requests().await,
        1,
        "the expired token was not sent"
    );
}
