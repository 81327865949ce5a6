//! The authorization code grant against an in-process server: the authorization URL and what
//! it carries (PKCE S256, state, nonce), the callback checks (state, RFC 9207 `iss`, RFC 6749
//! §4.1.2.1 errors, repeated parameters), the code exchange and its failures, pushed
//! authorization requests (RFC 9126), and `Login` on to the layer.

#[path = "support/stub.rs"]
mod stub;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sha2::Digest as _;
use stub::util::{bounded, expect_err};
use stub::{json, respond, Stub};
use tower::util::BoxCloneService;
use tower::ServiceExt as _;
use tower_oauth2::clock::ManualClock;
#[cfg(feature = "jwt")]
use tower_oauth2::IdTokenError;
use tower_oauth2::{
    Callback, CallbackError, ClientAuth, Error, ErrorCode, OAuth2Client, PendingAuthorization, PkceMethod,
};

const ISSUER: &str = "https://auth.example.com";
const REDIRECT: &str = "http://127.0.0.1:9000/cb";

fn client(stub: &Stub, auth: ClientAuth) -> OAuth2Client {
    OAuth2Client::builder(auth)
        .issuer(ISSUER)
        .authorization_url("https://auth.example.com/authorize")
        .token_url("https://auth.example.com/token")
        .pushed_authorization_request_url("https://auth.example.com/par")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

/// A client from a discovery document with `extra` fields.
async fn discovered(extra: serde_json::Value, auth: ClientAuth) -> (Stub, OAuth2Client) {
    let mut document = serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://auth.example.com/authorize",
        "token_endpoint": "https://auth.example.com/token",
        "pushed_authorization_request_endpoint": "https://auth.example.com/par",
    });
    document
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let document = document.to_string();
    let stub = Stub::new(move |seen| match seen.path.as_str() {
        "/.well-known/openid-configuration" => json(200, &document),
        "/par" => json(
            201,
            r#"{"request_uri":"urn:ietf:params:oauth:request_uri:xyz","expires_in":60}"#,
        ),
        _ => json(404, "{}"),
    });
    let client = bounded(
        OAuth2Client::builder(auth)
            .http_client(stub.http.clone())
            .discover(ISSUER),
    )
    .await
    .unwrap();
    (stub, client)
}

fn query(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = pairs.iter().filter(|(k, _)| k == name);
    let value = values.next().map(|(_, v)| v.as_str());
    assert!(values.next().is_none(), "`{name}` appears twice");
    value
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// The verifier a pending authorization keeps (only its JSON shows it).
fn verifier_of(pending: &PendingAuthorization) -> String {
    let json: serde_json::Value = serde_json::from_str(&pending.to_json()).unwrap();
    json["code_verifier"].as_str().unwrap().to_owned()
}

fn callback(pending: &PendingAuthorization, extra: &str) -> Callback {
    Callback::from_query(&format!("code=the-code&state={}{extra}", pending.state()))
}

const TOKEN: &str =
    r#"{"access_token":"user-at","token_type":"Bearer","expires_in":3600,"refresh_token":"user-rt"}"#;

#[test]
fn the_url_carries_pkce_s256_a_fresh_state_and_a_nonce_for_openid() {
    let stub = Stub::new(|_| json(500, "{}"));
    let client = client(&stub, ClientAuth::none("my-cli"));
    let first = client
        .authorization_request(REDIRECT)
        .scope("openid profile")
        .build()
        .unwrap();
    let pairs = query(first.url());
    assert_eq!(get(&pairs, "response_type"), Some("code"));
    assert_eq!(get(&pairs, "client_id"), Some("my-cli"));
    assert_eq!(get(&pairs, "redirect_uri"), Some(REDIRECT));
    assert_eq!(get(&pairs, "scope"), Some("openid profile"));
    assert_eq!(get(&pairs, "state"), Some(first.pending().state()));
    assert_eq!(get(&pairs, "code_challenge_method"), Some("S256"));
    let verifier = verifier_of(first.pending());
    assert_eq!(verifier.len(), 43);
    assert_eq!(get(&pairs, "code_challenge"), Some(s256(&verifier).as_str()));
    assert_eq!(get(&pairs, "nonce"), first.pending().nonce().map(|n| n.expose()));
    assert!(get(&pairs, "nonce").is_some());

    // A second request shares nothing with the first.
    let second = client
        .authorization_request(REDIRECT)
        .scope("openid")
        .build()
        .unwrap();
    assert_ne!(second.pending().state(), first.pending().state());
    assert_ne!(verifier_of(second.pending()), verifier);
    assert_ne!(
        second.pending().nonce().unwrap().expose(),
        first.pending().nonce().unwrap().expose()
    );

    // No `openid`, no nonce.
    let plain = client
        .authorization_request(REDIRECT)
        .scope("profile")
        .build()
        .unwrap();
    assert_eq!(get(&query(plain.url()), "nonce"), None);
    assert!(plain.pending().nonce().is_none());
    // Nothing was sent to the server to build a URL.
    assert!(stub.seen().is_empty());
}

/// What the token endpoint of [`oidc_server`] puts in its ID token.
#[cfg(feature = "jwt")]
#[derive(Clone, Default)]
struct IdTokenPlan {
    /// `None`: no `id_token` in the response.
    nonce: Option<Option<String>>,
}

/// A discovered OpenID server whose token endpoint answers with an HS256 ID token (signed with
/// the client secret, `its-secret`) as `plan` says.
#[cfg(feature = "jwt")]
async fn oidc_server(plan: Arc<Mutex<IdTokenPlan>>) -> (Stub, OAuth2Client) {
    let document = serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://auth.example.com/authorize",
        "token_endpoint": "https://auth.example.com/token",
        "jwks_uri": "https://auth.example.com/jwks",
        "id_token_signing_alg_values_supported": ["HS256"],
    })
    .to_string();
    let stub = Stub::new(move |seen| match seen.path.as_str() {
        "/.well-known/openid-configuration" => json(200, &document),
        "/token" => {
            let plan = plan.lock().unwrap().clone();
            let mut body =
                serde_json::json!({"access_token": "user-at", "token_type": "Bearer", "expires_in": 3600});
            if let Some(nonce) = plan.nonce {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let mut claims = serde_json::json!({
                    "iss": ISSUER, "sub": "user-1", "aud": "my-app", "iat": now, "exp": now + 600,
                });
                if let Some(nonce) = nonce {
                    claims["nonce"] = nonce.into();
                }
                body["id_token"] = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &claims,
                    &jsonwebtoken::EncodingKey::from_secret(b"its-secret"),
                )
                .unwrap()
                .into();
            }
            json(200, &body.to_string())
        }
        _ => json(404, "{}"),
    });
    let http = stub
        .http
        .clone()
        .with_header(
            http::header::USER_AGENT,
            http::HeaderValue::from_static("my-app/1.0 (by someone)"),
        )
        .unwrap();
    let client = bounded(
        OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
            .http_client(http)
            .discover(ISSUER),
    )
    .await
    .unwrap();
    (stub, client)
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn an_openid_login_verifies_its_id_token() {
    let plan = Arc::new(Mutex::new(IdTokenPlan::default()));
    let (stub, client) = oidc_server(plan.clone()).await;

    // The nonce sent comes back: the login carries the verified ID token.
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .scope("openid")
        .build()
        .unwrap()
        .into_parts();
    plan.lock().unwrap().nonce = Some(Some(pending.nonce().unwrap().expose().to_owned()));
    let login = bounded(client.exchange_code(
        &pending,
        &callback(&pending, "&iss=https%3A%2F%2Fauth.example.com"),
    ))
    .await
    .unwrap();
    let id_token = login.id_token().expect("a verified ID token");
    assert_eq!(id_token.claims().subject(), "user-1");
    assert_eq!(id_token.claims().nonce(), pending.nonce().map(|n| n.expose()));
    // The HttpClient's header reached every request (discovery and the exchange).
    assert!(stub
        .seen()
        .iter()
        .all(|seen| seen.header("user-agent") == Some("my-app/1.0 (by someone)")));

    // Another nonce: refused.
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .scope("openid")
        .build()
        .unwrap()
        .into_parts();
    plan.lock().unwrap().nonce = Some(Some("someone-else's".to_owned()));
    let err = expect_err(bounded(client.exchange_code(&pending, &callback(&pending, ""))).await);
    assert!(
        matches!(err, Error::IdToken(IdTokenError::NonceMismatch)),
        "{err:?}"
    );

    // No ID token although `openid` was asked for: refused.
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .scope("openid")
        .build()
        .unwrap()
        .into_parts();
    plan.lock().unwrap().nonce = None;
    let err = expect_err(bounded(client.exchange_code(&pending, &callback(&pending, ""))).await);
    assert!(matches!(err, Error::IdToken(IdTokenError::Missing)), "{err:?}");

    // `without_nonce`: none sent, and an ID token without one is accepted.
    let authorization = client
        .authorization_request(REDIRECT)
        .scope("openid")
        .without_nonce()
        .build()
        .unwrap();
    assert_eq!(get(&query(authorization.url()), "nonce"), None);
    let pending = authorization.pending();
    assert!(pending.nonce().is_none());
    plan.lock().unwrap().nonce = Some(None);
    let login = bounded(client.exchange_code(pending, &callback(pending, "")))
        .await
        .unwrap();
    assert!(login.id_token().is_some());

    // Without `openid`, an ID token sent anyway is not verified (nor needed).
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    plan.lock().unwrap().nonce = Some(Some("whatever".to_owned()));
    let login = bounded(client.exchange_code(&pending, &callback(&pending, "")))
        .await
        .unwrap();
    assert!(login.id_token().is_none());
    assert!(login.token().id_token().is_some());
}

#[test]
fn bad_redirect_uris_and_reserved_parameters_are_refused() {
    let stub = Stub::new(|_| json(500, "{}"));
    let client = client(&stub, ClientAuth::none("my-cli"));
    for bad in ["/relative/cb", "http://127.0.0.1/cb#frag", ""] {
        let err = expect_err(client.authorization_request(bad).build());
        assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
    }
    // A native app's private-use scheme is fine (RFC 8252 §7.1).
    assert!(client
        .authorization_request("com.example.app:/cb")
        .build()
        .is_ok());
    for name in ["state", "code_challenge", "redirect_uri", "scope", "nonce"] {
        let err = expect_err(client.authorization_request(REDIRECT).param(name, "x").build());
        assert!(matches!(err, Error::Config(_)), "{name}");
    }
}

#[tokio::test]
async fn a_server_without_s256_needs_an_explicit_opt_in() {
    let (_stub, client) = discovered(
        serde_json::json!({"code_challenge_methods_supported": ["plain"]}),
        ClientAuth::none("my-cli"),
    )
    .await;
    let err = expect_err(client.authorization_request(REDIRECT).build());
    assert!(
        matches!(&err, Error::Config(text) if text.contains("S256")),
        "{err:?}"
    );

    let plain = client
        .authorization_request(REDIRECT)
        .pkce_plain()
        .build()
        .unwrap();
    let pairs = query(plain.url());
    assert_eq!(get(&pairs, "code_challenge_method"), Some("plain"));
    assert_eq!(
        get(&pairs, "code_challenge"),
        Some(verifier_of(plain.pending()).as_str())
    );
    assert_eq!(plain.pending().pkce_method(), Some(PkceMethod::Plain));
}

#[test]
fn callback_checks_come_back_typed() {
    let stub = Stub::new(|_| json(500, "{}"));
    let client = client(&stub, ClientAuth::none("my-cli"));
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    let state = pending.state().to_owned();

    let check = |query: &str| pending.verify(&Callback::from_query(query));

    assert!(matches!(
        check("code=c&state=forged"),
        Err(Error::Callback(CallbackError::StateMismatch))
    ));
    assert!(matches!(
        check("code=c"),
        Err(Error::Callback(CallbackError::MissingState))
    ));
    assert!(matches!(
        check(&format!("state={state}")),
        Err(Error::Callback(CallbackError::MissingCode))
    ));
    assert!(matches!(
        check(&format!("code=&state={state}")),
        Err(Error::Callback(CallbackError::MissingCode))
    ));
    assert!(matches!(
        check(&format!("code=a&code=b&state={state}")),
        Err(Error::Callback(CallbackError::RepeatedParameter("code")))
    ));
    assert!(matches!(
        check(&format!("code=a&state={state}&state={state}")),
        Err(Error::Callback(CallbackError::RepeatedParameter("state")))
    ));
    // The issuer: checked when sent.
    let err = check(&format!(
        "code=a&state={state}&iss=https%3A%2F%2Fevil.example.com%0A"
    ))
    .unwrap_err();
    match &err {
        Error::Callback(CallbackError::IssuerMismatch { expected, found }) => {
            assert_eq!(expected, ISSUER);
            assert_eq!(found, "https://evil.example.com\\n");
        }
        other => panic!("{other:?}"),
    }
    assert!(check(&format!(
        "code=a&state={state}&iss=https%3A%2F%2Fauth.example.com"
    ))
    .is_ok());
    // Not required when the server does not say it sends it.
    assert!(check(&format!("code=a&state={state}")).is_ok());

    // An error response: its code, and its description escaped.
    let err = check(&format!(
        "error=access_denied&error_description=The+user+said+no%1B%5B31m&state={state}"
    ))
    .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::AccessDenied));
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains("The user said no"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    // An error without a state is refused like any stateless callback (only a pushed
    // request's is the server's error: see pushed_requests_...).
    assert!(matches!(
        check("error=access_denied&error_description=forged"),
        Err(Error::Callback(CallbackError::MissingState))
    ));
    // An error with a wrong state is a forgery before it is an error.
    assert!(matches!(
        check("error=access_denied&state=forged"),
        Err(Error::Callback(CallbackError::StateMismatch))
    ));
}

#[test]
fn a_client_that_knows_no_issuer_refuses_any_iss() {
    let stub = Stub::new(|_| json(500, "{}"));
    let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
        .authorization_url("https://auth.example.com/authorize")
        .token_url("https://auth.example.com/token")
        .http_client(stub.http.clone())
        .build()
        .unwrap();
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    let err = pending
        .verify(&callback(&pending, "&iss=https%3A%2F%2Fevil.example.com"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Callback(CallbackError::UnknownIssuer { found }) if found == "https://evil.example.com"),
        "{err:?}"
    );
    assert!(pending.verify(&callback(&pending, "")).is_ok());
}

#[tokio::test]
async fn a_code_is_exchanged_only_by_the_client_that_asked_for_it() {
    let stub = Stub::new(|_| json(200, TOKEN));
    let a = client(&stub, ClientAuth::client_secret_basic("app-a", "secret-a"));
    let (_url, pending) = a.authorization_request(REDIRECT).build().unwrap().into_parts();
    let callback = callback(&pending, "&iss=https%3A%2F%2Fauth.example.com");
    let others = [
        // Another client id at the same server.
        client(&stub, ClientAuth::client_secret_basic("app-b", "secret-b")),
        // The same client id at another server.
        OAuth2Client::builder(ClientAuth::client_secret_basic("app-a", "secret-a"))
            .issuer("https://other.example.com")
            .authorization_url("https://other.example.com/authorize")
            .token_url("https://other.example.com/token")
            .http_client(stub.http.clone())
            .build()
            .unwrap(),
    ];
    for other in &others {
        let err = expect_err(bounded(other.exchange_code(&pending, &callback)).await);
        assert!(
            matches!(err, Error::Callback(CallbackError::ClientMismatch)),
            "{err:?}"
        );
    }
    // Nothing reached a token endpoint; the right client (even rebuilt) exchanges it.
    assert!(stub.seen().is_empty());
    let pending = PendingAuthorization::from_json(&pending.to_json()).unwrap();
    let again = client(&stub, ClientAuth::client_secret_basic("app-a", "secret-a"));
    bounded(again.exchange_code(&pending, &callback)).await.unwrap();
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn the_iss_parameter_is_required_when_the_server_advertises_it() {
    let (_stub, client) = discovered(
        serde_json::json!({"authorization_response_iss_parameter_supported": true}),
        ClientAuth::none("my-cli"),
    )
    .await;
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    assert!(matches!(
        pending.verify(&callback(&pending, "")),
        Err(Error::Callback(CallbackError::MissingIssuer))
    ));
    // Error responses too (RFC 9207 §2.4).
    let denied = Callback::from_query(&format!("error=access_denied&state={}", pending.state()));
    assert!(matches!(
        pending.verify(&denied),
        Err(Error::Callback(CallbackError::MissingIssuer))
    ));
    assert!(pending
        .verify(&callback(&pending, "&iss=https%3A%2F%2Fauth.example.com"))
        .is_ok());
    // The requirement survives the trip through JSON.
    let back = PendingAuthorization::from_json(&pending.to_json()).unwrap();
    assert!(matches!(
        back.verify(&callback(&back, "")),
        Err(Error::Callback(CallbackError::MissingIssuer))
    ));
}

#[test]
fn callbacks_come_from_urls_uris_and_requests() {
    let from_url = Callback::from_url("http://127.0.0.1:9000/cb?code=abc&state=xyz").unwrap();
    assert_eq!(from_url.param("state"), Some("xyz"));
    let fragment = Callback::from_url("http://127.0.0.1:9000/cb#code=abc&state=xyz").unwrap();
    assert_eq!(fragment.param("state"), Some("xyz"));
    let request = http::Request::get("/cb?state=s%26t&code=abc").body(()).unwrap();
    assert_eq!(Callback::from_request(&request).param("state"), Some("s&t"));
    assert!(matches!(
        Callback::from_url("/cb?code=abc"),
        Err(Error::Callback(CallbackError::Malformed(_)))
    ));
    for callback in [&from_url, &fragment] {
        assert_eq!(callback.param("code"), None);
        assert!(!format!("{callback:?}").contains("abc"));
    }
}

#[test]
fn pending_authorizations_round_trip_and_show_no_secret() {
    let stub = Stub::new(|_| json(500, "{}"));
    let client = client(&stub, ClientAuth::none("my-cli"));
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .scope("openid")
        .build()
        .unwrap()
        .into_parts();
    let back = PendingAuthorization::from_json(&pending.to_json()).unwrap();
    assert_eq!(back.to_json(), pending.to_json());
    assert_eq!(back.state(), pending.state());
    assert_eq!(back.redirect_uri(), REDIRECT);
    let debug = format!("{pending:?}");
    for secret in [
        pending.state().to_owned(),
        verifier_of(&pending),
        pending.nonce().unwrap().expose().to_owned(),
    ] {
        assert!(!debug.contains(&secret), "{debug}");
    }
    for bad in [
        "",
        "[]",
        r#"{"version":2,"state":"s","redirect_uri":"r"}"#,
        r#"{"version":1,"redirect_uri":"r"}"#,
        r#"{"version":1,"state":"s","redirect_uri":"r","code_verifier":"v"}"#,
        r#"{"version":1,"state":"s","redirect_uri":"r","pkce_method":"S512","code_verifier":"v"}"#,
        r#"{"version":1,"state":1,"redirect_uri":"r"}"#,
        // No client, an empty state, a verifier too short or with reserved characters.
        r#"{"version":1,"state":"s","redirect_uri":"r","authorization_endpoint":"https://a"}"#,
        r#"{"version":1,"state":"","redirect_uri":"r","client_id":"c","authorization_endpoint":"https://a"}"#,
        r#"{"version":1,"state":"s","redirect_uri":"r","client_id":"c","authorization_endpoint":"https://a","pkce_method":"S256","code_verifier":"short"}"#,
        r#"{"version":1,"state":"s","redirect_uri":"r","client_id":"c","authorization_endpoint":"https://a","pkce_method":"S256","code_verifier":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+"}"#,
    ] {
        assert!(
            matches!(
                PendingAuthorization::from_json(bad),
                Err(Error::Callback(CallbackError::InvalidPending(_)))
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_exchange_sends_the_code_the_redirect_uri_and_the_verifier() {
    let stub = Stub::new(|_| json(200, TOKEN));
    let client = client(&stub, ClientAuth::client_secret_basic("my-app", "its-secret"));
    let authorization = client.authorization_request(REDIRECT).build().unwrap();
    let challenge = get(&query(authorization.url()), "code_challenge")
        .unwrap()
        .to_owned();
    let pending = authorization.pending();

    let login = bounded(client.exchange_code(pending, &callback(pending, "")))
        .await
        .unwrap();
    assert_eq!(login.token().access_token().expose(), "user-at");
    assert_eq!(login.token().refresh_token().unwrap().expose(), "user-rt");

    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.path, "/token");
    assert_eq!(request.field("grant_type"), Some("authorization_code"));
    assert_eq!(request.field("code"), Some("the-code"));
    assert_eq!(request.field("redirect_uri"), Some(REDIRECT));
    let verifier = request.field("code_verifier").unwrap();
    assert_eq!(s256(verifier), challenge);
    assert!(request.authorization().unwrap().starts_with("Basic "));
    assert_eq!(request.field("client_id"), None);

    // A public client names itself in the form.
    let stub = Stub::new(|_| json(200, TOKEN));
    let public = self::client(&stub, ClientAuth::none("my-cli"));
    let (_url, pending) = public
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    bounded(public.exchange_code(&pending, &callback(&pending, "")))
        .await
        .unwrap();
    assert_eq!(stub.seen()[0].field("client_id"), Some("my-cli"));
    assert_eq!(stub.seen()[0].authorization(), None);
}

#[tokio::test]
async fn a_refused_callback_sends_nothing() {
    let stub = Stub::new(|_| json(200, TOKEN));
    let client = client(&stub, ClientAuth::none("my-cli"));
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    let forged = Callback::from_query("code=stolen&state=guessed");
    let err = expect_err(bounded(client.exchange_code(&pending, &forged)).await);
    assert!(matches!(err, Error::Callback(CallbackError::StateMismatch)));
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn exchange_failures_are_typed_and_never_show_the_code_or_verifier() {
    // The server echoes the form back in its description.
    let stub = Stub::new(|seen| {
        let description = format!("bad request: {}", seen.body).replace('"', "'");
        json(
            400,
            &serde_json::json!({"error": "invalid_grant", "error_description": description}).to_string(),
        )
    });
    let client = client(&stub, ClientAuth::client_secret_post("my-app", "its-secret"));
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    let err = expect_err(bounded(client.exchange_code(&pending, &callback(&pending, ""))).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    let text = format!("{err} {err:?}");
    for secret in ["the-code", verifier_of(&pending).as_str(), "its-secret"] {
        assert!(!text.contains(secret), "{text}");
    }

    for (status, body, transient) in [
        (500, "{}", true),
        (503, "<html>down</html>", true),
        (200, r#"{"access_token": "#, false),
        (200, r#"{"token_type":"Bearer"}"#, false),
    ] {
        let stub = Stub::new(move |_| respond(status, &[("content-type", "application/json")], body));
        let client = self::client(&stub, ClientAuth::none("my-cli"));
        let (_url, pending) = client
            .authorization_request(REDIRECT)
            .build()
            .unwrap()
            .into_parts();
        let err = expect_err(bounded(client.exchange_code(&pending, &callback(&pending, ""))).await);
        assert!(
            matches!(err, Error::HttpStatus { .. } | Error::MalformedResponse { .. }),
            "{status} {body}: {err:?}"
        );
        assert_eq!(err.is_transient(), transient, "{status} {body}: {err:?}");
    }
}

#[tokio::test]
async fn pushed_requests_send_every_parameter_with_client_authentication() {
    let stub = Stub::new(|seen| match seen.path.as_str() {
        "/par" => json(
            201,
            r#"{"request_uri":"urn:ietf:params:oauth:request_uri:xyz","expires_in":60}"#,
        ),
        _ => json(500, "{}"),
    });
    let client = client(&stub, ClientAuth::client_secret_post("my-app", "its-secret"));
    let authorization = bounded(
        client
            .authorization_request(REDIRECT)
            .scope("openid")
            .param("ui_locales", "fr")
            .pushed()
            .start(),
    )
    .await
    .unwrap();
    let pairs = query(authorization.url());
    assert_eq!(
        pairs,
        [
            ("client_id".to_owned(), "my-app".to_owned()),
            (
                "request_uri".to_owned(),
                "urn:ietf:params:oauth:request_uri:xyz".to_owned()
            )
        ]
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    let pushed = &seen[0];
    assert_eq!(pushed.method, http::Method::POST);
    assert_eq!(pushed.field("client_secret"), Some("its-secret"));
    assert_eq!(pushed.field("client_id"), Some("my-app")); // once, though both sides send it
    assert_eq!(pushed.field("state"), Some(authorization.pending().state()));
    assert_eq!(pushed.field("redirect_uri"), Some(REDIRECT));
    assert_eq!(pushed.field("ui_locales"), Some("fr"));
    assert_eq!(pushed.field("code_challenge_method"), Some("S256"));
    assert_eq!(
        pushed.field("code_challenge"),
        Some(s256(&verifier_of(authorization.pending())).as_str())
    );
    assert_eq!(
        pushed.field("nonce"),
        authorization.pending().nonce().map(|n| n.expose())
    );

    // A spent request_uri comes back as an error without state: the server's error.
    let spent = Callback::from_query("error=invalid_request_uri&error_description=expired");
    let err = authorization.pending().verify(&spent).unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::from("invalid_request_uri")));
}

#[tokio::test]
async fn a_server_that_requires_par_gets_it_without_asking() {
    let (stub, client) = discovered(
        serde_json::json!({"require_pushed_authorization_requests": true}),
        ClientAuth::client_secret_basic("my-app", "its-secret"),
    )
    .await;
    assert!(matches!(
        client.authorization_request(REDIRECT).build(),
        Err(Error::Config(_))
    ));
    let authorization = bounded(client.authorization_request(REDIRECT).start())
        .await
        .unwrap();
    assert_eq!(
        get(&query(authorization.url()), "request_uri"),
        Some("urn:ietf:params:oauth:request_uri:xyz")
    );
    assert_eq!(stub.seen().iter().filter(|s| s.path == "/par").count(), 1);

    // Without the requirement, `start` makes no request.
    let (stub, client) = discovered(serde_json::json!({}), ClientAuth::none("my-cli")).await;
    let before = stub.seen().len();
    let authorization = bounded(client.authorization_request(REDIRECT).start())
        .await
        .unwrap();
    assert!(get(&query(authorization.url()), "code_challenge").is_some());
    assert_eq!(stub.seen().len(), before);
}

#[tokio::test]
async fn par_errors_never_show_the_state_or_the_nonce() {
    let stub = Stub::new(|seen| {
        let description = format!("bad: {}", seen.body);
        json(
            400,
            &serde_json::json!({"error": "invalid_request", "error_description": description}).to_string(),
        )
    });
    let client = client(&stub, ClientAuth::client_secret_basic("my-app", "its-secret"));
    let err = expect_err(
        bounded(
            client
                .authorization_request(REDIRECT)
                .scope("openid")
                .pushed()
                .start(),
        )
        .await,
    );
    let text = format!("{err} {err:?}");
    let form = &stub.seen()[0];
    for name in ["state", "nonce"] {
        let value = form.field(name).unwrap();
        assert!(!text.contains(value), "{name} shown: {text}");
    }
    assert!(
        text.contains("redirect_uri"),
        "the rest of the description is kept: {text}"
    );
}

#[tokio::test]
async fn par_failures_are_typed() {
    for (status, body) in [
        (
            400,
            r#"{"error":"invalid_request","error_description":"bad redirect_uri"}"#,
        ),
        (201, r#"{"expires_in":60}"#),
        (201, "not json"),
        (503, ""),
    ] {
        let stub = Stub::new(move |_| respond(status, &[("content-type", "application/json")], body));
        let client = client(&stub, ClientAuth::none("my-cli"));
        let err = expect_err(bounded(client.authorization_request(REDIRECT).pushed().start()).await);
        match status {
            400 => assert_eq!(err.code(), Some(&ErrorCode::InvalidRequest)),
            503 => assert!(matches!(err, Error::HttpStatus { .. }) && err.is_transient()),
            _ => assert!(matches!(err, Error::MalformedResponse { .. }), "{body}: {err:?}"),
        }
    }
    // No PAR endpoint.
    let stub = Stub::new(|_| json(500, "{}"));
    let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
        .authorization_url("https://auth.example.com/authorize")
        .token_url("https://auth.example.com/token")
        .http_client(stub.http.clone())
        .build()
        .unwrap();
    let err = expect_err(bounded(client.authorization_request(REDIRECT).pushed().start()).await);
    assert!(matches!(
        err,
        Error::NoEndpoint {
            endpoint: "pushed_authorization_request"
        }
    ));
}

/// A public client's login at `stub`, keeping time with `clock`.
async fn log_in(stub: &Stub, clock: &ManualClock) -> tower_oauth2::Login {
    let client = OAuth2Client::builder(ClientAuth::none("my-cli"))
        .authorization_url("https://auth.example.com/authorize")
        .token_url("https://auth.example.com/token")
        .http_client(stub.http.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let (_url, pending) = client
        .authorization_request(REDIRECT)
        .build()
        .unwrap()
        .into_parts();
    bounded(client.exchange_code(&pending, &callback(&pending, "")))
        .await
        .unwrap()
}

/// The `Authorization` headers an [`api`] received.
type Sent = Arc<Mutex<Vec<String>>>;

/// An inner service that answers 200 and records the `Authorization` header of each request.
fn api() -> (
    Sent,
    BoxCloneService<http::Request<()>, http::Response<()>, Infallible>,
) {
    let sent: Sent = Arc::default();
    let record = sent.clone();
    let service = tower::service_fn(move |request: http::Request<()>| {
        let record = record.clone();
        async move {
            let header = request.headers()[http::header::AUTHORIZATION]
                .to_str()
                .unwrap()
                .to_owned();
            record.lock().unwrap().push(header);
            Ok::<_, Infallible>(http::Response::new(()))
        }
    });
    (sent, BoxCloneService::new(service))
}

#[tokio::test]
async fn a_login_becomes_a_layer_that_refreshes_the_users_token() {
    let clock = ManualClock::new();
    let stub = Stub::new(|seen| match seen.field("grant_type") {
        Some("authorization_code") => json(200, TOKEN),
        Some("refresh_token") if seen.field("refresh_token") == Some("user-rt") => json(
            200,
            r#"{"access_token":"user-at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"user-rt-2"}"#,
        ),
        _ => json(400, r#"{"error":"invalid_grant"}"#),
    });
    let login = log_in(&stub, &clock).await;
    assert!(!format!("{login:?}").contains("user-at"));

    let (sent, api) = api();
    let service = tower::ServiceBuilder::new()
        .layer(login.into_layer())
        .service(api);
    let call = || {
        service
            .clone()
            .oneshot(http::Request::get("https://api.example.com/").body(()).unwrap())
    };
    bounded(call()).await.unwrap();
    // The login's own token, with no token request.
    assert_eq!(sent.lock().unwrap().as_slice(), ["Bearer user-at"]);
    assert_eq!(stub.seen().len(), 1);

    clock.advance(Duration::from_secs(3600));
    bounded(call()).await.unwrap();
    assert_eq!(sent.lock().unwrap().last().unwrap(), "Bearer user-at-2");
    let grants: Vec<String> = stub
        .seen()
        .iter()
        .map(|s| s.field("grant_type").unwrap().to_owned())
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
}

#[tokio::test]
async fn a_login_without_refresh_token_serves_its_token_until_it_expires() {
    let clock = ManualClock::new();
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"access_token":"only-at","token_type":"Bearer","expires_in":600}"#,
        )
    });
    let login = log_in(&stub, &clock).await;
    assert!(matches!(login.refresh_token(), Err(Error::Config(_))));

    let (sent, api) = api();
    let service = tower::ServiceBuilder::new()
        .layer(login.into_layer())
        .service(api);
    let call = || {
        service
            .clone()
            .oneshot(http::Request::get("https://api.example.com/").body(()).unwrap())
    };
    bounded(call()).await.unwrap();
    assert_eq!(sent.lock().unwrap().as_slice(), ["Bearer only-at"]);

    clock.advance(Duration::from_secs(601));
    let err = Error::from(bounded(call()).await.unwrap_err());
    assert!(matches!(err, Error::LoginExpired), "{err:?}");
    assert_eq!(sent.lock().unwrap().len(), 1);
    // Only the code exchange reached the server.
    assert_eq!(stub.seen().len(), 1);
}
