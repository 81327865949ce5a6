//! `OAuth2Client`: the builder's checks, discovery (RFC 8414 / OIDC Discovery) with the
//! documents a client must refuse, and the error paths of revocation (RFC 7009),
//! introspection (RFC 7662) and userinfo (OIDC Core §5.3). Every server here is an in-process
//! `tower::service_fn` behind an `HttpClient` that records what the crate sent.

#[path = "support/log_capture.rs"]
mod log_capture;
#[path = "support/stub.rs"]
mod stub;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use stub::util::{bounded, expect_err};
use stub::{json, respond, Stub};
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{
    ClientAuth, DiscoveryError, Error, ErrorCode, OAuth2Client, OAuth2ClientBuilder, Token, TokenEndpoint,
    TokenSource, TokenTypeHint,
};

const ISSUER: &str = "https://auth.example.com";
const SECRET: &str = "its-s3cret";

fn basic() -> ClientAuth {
    ClientAuth::client_secret_basic("my-app", SECRET)
}

/// A client with every endpoint at the stub.
fn client_at(stub: &Stub, auth: ClientAuth) -> OAuth2Client {
    OAuth2Client::builder(auth)
        .token_url(format!("{ISSUER}/token"))
        .revocation_url(format!("{ISSUER}/revoke"))
        .introspection_url(format!("{ISSUER}/introspect"))
        .userinfo_url(format!("{ISSUER}/userinfo"))
        .device_authorization_url(format!("{ISSUER}/device"))
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

fn document(extra: &str) -> String {
    format!(
        r#"{{"issuer":"{ISSUER}","token_endpoint":"{ISSUER}/token","revocation_endpoint":"{ISSUER}/revoke",
        "introspection_endpoint":"{ISSUER}/introspect","userinfo_endpoint":"{ISSUER}/userinfo",
        "device_authorization_endpoint":"{ISSUER}/device","jwks_uri":"{ISSUER}/jwks"{extra}}}"#
    )
}

fn discovering(stub: &Stub, auth: ClientAuth) -> OAuth2ClientBuilder {
    OAuth2Client::builder(auth).http_client(stub.http.clone())
}

/// Runs discovery of [`ISSUER`] with `builder`.
async fn discover(builder: OAuth2ClientBuilder) -> Result<OAuth2Client, Error> {
    bounded(builder.discover(ISSUER)).await
}

// ---------------------------------------------------------------------------------------------
// The builder
// ---------------------------------------------------------------------------------------------

#[test]
fn the_client_is_cheap_to_clone_send_sync_and_has_no_secret_in_debug() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<OAuth2Client>();
    check::<tower_oauth2::ServerMetadata>();
    check::<tower_oauth2::Introspection>();
    check::<tower_oauth2::UserInfo>();
    let stub = Stub::new(|_| json(200, "{}"));
    let client = client_at(&stub, basic());
    let shown = format!("{client:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("https://auth.example.com/revoke"), "{shown}");
    let builder = format!(
        "{:?}",
        OAuth2Client::builder(basic()).token_url("https://a/token")
    );
    assert!(!builder.contains(SECRET), "{builder}");
}

#[test]
fn build_needs_a_token_url_and_checks_every_url_like_it() {
    let err = expect_err(OAuth2Client::builder(basic()).build());
    assert!(matches!(err, Error::NoEndpoint { endpoint: "token" }), "{err:?}");
    assert!(err.to_string().contains("no token endpoint"), "{err}");

    let with = |url: &str| {
        OAuth2Client::builder(basic())
            .token_url("https://auth.example.com/token")
            .introspection_url(url)
            .build()
    };
    let err = expect_err(with("http://auth.example.com/introspect"));
    assert!(
        matches!(&err, Error::InsecureUrl { url } if url == "http://auth.example.com/introspect"),
        "{err:?}"
    );
    assert!(matches!(expect_err(with("/relative")), Error::Config(_)));
    assert!(matches!(
        expect_err(with("https://u:pw@auth.example.com/i")),
        Error::Config(_)
    ));
    assert!(
        with("http://127.0.0.1:8080/introspect").is_ok(),
        "loopback may be http"
    );
    assert!(with("http://localhost/introspect").is_ok());

    let opted_out = OAuth2Client::builder(basic())
        .token_url("http://auth.test-rig/token")
        .jwks_url("http://auth.test-rig/jwks")
        .dangerous_allow_insecure_http()
        .build()
        .unwrap();
    assert_eq!(
        opted_out.jwks_url().unwrap().as_str(),
        "http://auth.test-rig/jwks"
    );
    assert!(opted_out.token_endpoint().allows_insecure_http());
}

#[test]
fn accessors_and_conversions_show_what_was_built() {
    let clock = ManualClock::new();
    let client = OAuth2Client::builder(basic())
        .issuer(ISSUER)
        .token_url(format!("{ISSUER}/token"))
        .authorization_url(format!("{ISSUER}/authorize"))
        .pushed_authorization_request_url(format!("{ISSUER}/par"))
        .clock(clock)
        .default_lifetime(Duration::from_secs(300))
        .build()
        .unwrap();
    assert_eq!(client.issuer(), Some(ISSUER));
    assert_eq!(client.authorization_url().unwrap().path(), "/authorize");
    assert_eq!(client.pushed_authorization_request_url().unwrap().path(), "/par");
    assert_eq!(client.revocation_url(), None);
    assert!(client.metadata().is_none());
    assert_eq!(client.client_auth().method(), "client_secret_basic");
    let endpoint: TokenEndpoint = (&client).into();
    assert_eq!(endpoint.token_url(), client.token_endpoint().token_url());
    let owned = TokenEndpoint::from(client.clone());
    assert_eq!(owned.client_auth().client_id(), "my-app");
}

#[tokio::test]
async fn a_missing_endpoint_is_a_typed_error_and_nothing_is_sent() {
    let stub = Stub::new(|_| json(200, "{}"));
    let client = OAuth2Client::builder(basic())
        .token_url(format!("{ISSUER}/token"))
        .http_client(stub.http.clone())
        .build()
        .unwrap();
    let token = Token::bearer("a").with_refresh_token("r");
    let cases: Vec<(&str, Error)> = vec![
        (
            "revocation",
            expect_err(bounded(client.revoke_token("a", None)).await),
        ),
        (
            "revocation",
            expect_err(bounded(client.revoke_refresh_token(&token)).await),
        ),
        (
            "introspection",
            expect_err(bounded(client.introspect("a", None)).await),
        ),
        ("userinfo", expect_err(bounded(client.userinfo(&token)).await)),
        ("device_authorization", expect_err(client.device_code())),
    ];
    for (name, err) in cases {
        assert!(
            matches!(err, Error::NoEndpoint { endpoint } if endpoint == name),
            "{name}: {err:?}"
        );
        assert!(!err.is_transient());
    }
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn the_sources_use_the_client_s_token_endpoint() {
    let stub = Stub::new(|seen| match seen.path.as_str() {
        "/token" => json(
            200,
            r#"{"access_token":"at-1","token_type":"Bearer","expires_in":60}"#,
        ),
        other => panic!("unexpected {other}"),
    });
    let client = client_at(&stub, basic());
    let token = bounded(client.client_credentials().scope("api").fetch_token())
        .await
        .unwrap();
    assert_eq!(token.access_token().expose(), "at-1");
    let refreshed = bounded(client.refresh_token("rt-0").fetch_token()).await.unwrap();
    assert_eq!(refreshed.access_token().expose(), "at-1");
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].field("grant_type"), Some("client_credentials"));
    assert_eq!(seen[0].field("scope"), Some("api"));
    assert_eq!(seen[1].field("refresh_token"), Some("rt-0"));
    assert!(seen
        .iter()
        .all(|s| s.header("authorization").unwrap().starts_with("Basic ")));
    assert!(client.device_code().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_fills_the_endpoints_and_keeps_the_document() {
    let stub = Stub::new(|_| json(200, &document(r#","x_vendor":"kept""#)));
    let client = discover(discovering(&stub, basic())).await.unwrap();
    assert_eq!(client.issuer(), Some(ISSUER));
    assert_eq!(
        client.token_endpoint().token_url().as_str(),
        "https://auth.example.com/token"
    );
    assert_eq!(client.revocation_url().unwrap().path(), "/revoke");
    assert_eq!(client.introspection_url().unwrap().path(), "/introspect");
    assert_eq!(client.userinfo_url().unwrap().path(), "/userinfo");
    assert_eq!(client.device_authorization_url().unwrap().path(), "/device");
    assert_eq!(client.jwks_url().unwrap().path(), "/jwks");
    let metadata = client.metadata().expect("discovered");
    assert_eq!(metadata.as_json()["x_vendor"], "kept");
    assert_eq!(metadata.response_types_supported(), None, "absent is accepted");

    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, http::Method::GET);
    assert_eq!(
        seen[0].uri,
        "https://auth.example.com/.well-known/openid-configuration"
    );
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "discovery sends no credentials"
    );
    assert!(seen[0].body.is_empty());
}

#[tokio::test]
async fn urls_given_to_the_builder_win_over_the_document() {
    let stub = Stub::new(|_| json(200, &document("")));
    let client = discover(
        discovering(&stub, basic())
            .revocation_url("https://other.example.com/revoke")
            .token_url("https://other.example.com/token"),
    )
    .await
    .unwrap();
    assert_eq!(
        client.revocation_url().unwrap().as_str(),
        "https://other.example.com/revoke"
    );
    assert_eq!(
        client.token_endpoint().token_url().as_str(),
        "https://other.example.com/token"
    );
    assert_eq!(client.introspection_url().unwrap().path(), "/introspect");
}

#[tokio::test]
async fn a_wrong_issuer_is_refused_and_shown_escaped() {
    let body = document("").replace(
        r#""issuer":"https://auth.example.com""#,
        r#""issuer":"https://evil.example.com\n\u001b[31m""#,
    );
    let stub = Stub::new(move |_| json(200, &body));
    let err = expect_err(discover(discovering(&stub, basic())).await);
    match &err {
        Error::Discovery(DiscoveryError::IssuerMismatch { expected, found }) => {
            assert_eq!(expected, ISSUER);
            assert_eq!(found, "https://evil.example.com\\n\\u{1b}[31m");
        }
        other => panic!("{other:?}"),
    }
    let shown = err.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown}");
    assert!(!err.is_transient());
    assert_eq!(stub.seen().len(), 1, "no fallback after a document was found");
}

#[tokio::test]
async fn a_trailing_slash_difference_is_a_mismatch_both_ways() {
    // The document says `https://auth.example.com/`, the client asked without the slash.
    let body = document("").replace(
        r#""issuer":"https://auth.example.com""#,
        r#""issuer":"https://auth.example.com/""#,
    );
    let stub = Stub::new(move |_| json(200, &body));
    let err = expect_err(discover(discovering(&stub, basic())).await);
    assert!(
        matches!(&err, Error::Discovery(DiscoveryError::IssuerMismatch { found, .. }) if found == "https://auth.example.com/"),
        "{err:?}"
    );

    // Asked with the slash: the slash is dropped to build the URL, not from the comparison.
    let stub = Stub::new(|_| json(200, &document("")));
    let err = expect_err(bounded(discovering(&stub, basic()).discover("https://auth.example.com/")).await);
    assert!(
        matches!(&err, Error::Discovery(DiscoveryError::IssuerMismatch { expected, .. }) if expected == "https://auth.example.com/"),
        "{err:?}"
    );
    assert_eq!(
        stub.seen()[0].uri,
        "https://auth.example.com/.well-known/openid-configuration"
    );
}

#[tokio::test]
async fn an_http_endpoint_off_loopback_is_refused_unless_opted_out() {
    let body = document(r#","revocation_endpoint":"http://auth.example.com/revoke""#);
    let stub = Stub::new(move |_| json(200, &body));
    let err = expect_err(discover(discovering(&stub, basic())).await);
    match &err {
        Error::Discovery(DiscoveryError::InsecureEndpoint { field, url }) => {
            assert_eq!(field, "revocation_endpoint");
            assert_eq!(url, "http://auth.example.com/revoke");
        }
        other => panic!("{other:?}"),
    }
    let client = discover(discovering(&stub, basic()).dangerous_allow_insecure_http())
        .await
        .unwrap();
    assert!(client.token_endpoint().allows_insecure_http());

    // The token endpoint itself.
    let body = document("").replace(r#""token_endpoint":"https://"#, r#""token_endpoint":"http://"#);
    let stub = Stub::new(move |_| json(200, &body));
    let err = expect_err(discover(discovering(&stub, basic())).await);
    assert!(
        matches!(&err, Error::Discovery(DiscoveryError::InsecureEndpoint { field, .. }) if field == "token_endpoint"),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_and_ill_typed_fields_are_typed_errors() {
    let cases = [
        (
            r#"{"token_endpoint":"https://auth.example.com/token"}"#.to_owned(),
            DiscoveryError::MissingField("issuer"),
        ),
        (
            format!(r#"{{"issuer":"{ISSUER}"}}"#),
            DiscoveryError::MissingField("token_endpoint"),
        ),
        (
            r#"{"issuer":42}"#.to_owned(),
            DiscoveryError::WrongType("issuer".to_owned()),
        ),
        (
            format!(r#"{{"issuer":"{ISSUER}","token_endpoint":42}}"#),
            DiscoveryError::WrongType("token_endpoint".to_owned()),
        ),
        (
            document(r#","token_endpoint_auth_methods_supported":"client_secret_basic""#),
            DiscoveryError::WrongType("token_endpoint_auth_methods_supported".to_owned()),
        ),
        (
            document(r#","grant_types_supported":["client_credentials",7]"#),
            DiscoveryError::WrongType("grant_types_supported".to_owned()),
        ),
        (
            document(r#","userinfo_endpoint":"not a url""#),
            DiscoveryError::InvalidUrl {
                field: "userinfo_endpoint".to_owned(),
            },
        ),
    ];
    for (body, expected) in cases {
        let stub = Stub::new(move |_| json(200, &body));
        let err = expect_err(discover(discovering(&stub, basic())).await);
        match err {
            Error::Discovery(found) => assert_eq!(found, expected),
            other => panic!("{expected:?}: {other:?}"),
        }
    }
}

/// An endpoint the client does not use (logout, a vendor extension) does not fail discovery,
/// whatever it holds; it stays in the document, unchecked.
#[tokio::test]
async fn endpoints_the_client_does_not_use_do_not_fail_discovery() {
    let body = document(
        r#","end_session_endpoint":"http://auth.example.com/logout","x_vendor_endpoint":{"a":1},"op_policy_uri":"not a url""#,
    );
    let stub = Stub::new(move |_| json(200, &body));
    let client = discover(discovering(&stub, basic())).await.unwrap();
    let document = client.metadata().unwrap().as_json();
    assert_eq!(document["end_session_endpoint"], "http://auth.example.com/logout");
    assert_eq!(document["x_vendor_endpoint"]["a"], 1);
}

#[tokio::test]
async fn discover_at_checks_the_issuer_as_discover_does() {
    let stub = Stub::new(|_| json(200, &document("")));
    for issuer in [
        "http://auth.example.com",
        "https://auth.example.com?tenant=1",
        "not a url",
    ] {
        let err = expect_err(
            bounded(discovering(&stub, basic()).discover_at("https://auth.example.com/meta.json", issuer))
                .await,
        );
        assert!(
            matches!(err, Error::InsecureUrl { .. } | Error::Config(_)),
            "{issuer}: {err:?}"
        );
    }
    assert!(stub.seen().is_empty(), "nothing is fetched for a bad issuer");
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_malformed() {
    for body in ["<html>hello</html>", "[1,2]", r#"{"issuer":"#, ""] {
        let stub = Stub::new(move |_| json(200, body));
        let err = expect_err(discover(discovering(&stub, basic())).await);
        assert!(
            matches!(
                err,
                Error::MalformedResponse {
                    status: StatusCode::OK,
                    ..
                }
            ),
            "{body}: {err:?}"
        );
        assert!(
            !err.to_string().contains("hello"),
            "the body is never shown: {err}"
        );
    }
}

#[tokio::test]
async fn a_404_on_openid_configuration_falls_back_to_rfc_8414() {
    let issuer = "https://auth.example.com/tenant";
    let body = format!(r#"{{"issuer":"{issuer}","token_endpoint":"https://auth.example.com/tenant/token"}}"#);
    let stub = Stub::new(move |seen| match seen.path.as_str() {
        "/.well-known/oauth-authorization-server/tenant" => json(200, &body),
        _ => respond(404, &[], "not here"),
    });
    let client = bounded(discovering(&stub, basic()).discover(issuer))
        .await
        .unwrap();
    assert_eq!(client.issuer(), Some(issuer));
    let uris: Vec<String> = stub.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(
        uris,
        [
            "https://auth.example.com/tenant/.well-known/openid-configuration",
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant",
        ]
    );

    // Both missing: the last 404 comes back.
    let stub = Stub::new(|_| respond(404, &[], ""));
    let err = expect_err(discover(discovering(&stub, basic())).await);
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn other_failures_do_not_fall_back() {
    let stub = Stub::new(|_| respond(503, &[("retry-after", "7")], "busy"));
    let err = expect_err(discover(discovering(&stub, basic())).await);
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(stub.seen().len(), 1);

    let stub = Stub::with_limit(
        |_| json(200, &document(&format!(r#","pad":"{}""#, "x".repeat(4096)))),
        Some(1024),
    );
    let err = expect_err(discover(discovering(&stub, basic())).await);
    assert!(matches!(err, Error::BodyTooLarge { limit: 1024 }), "{err:?}");
}

#[tokio::test]
async fn a_full_metadata_url_is_fetched_alone_with_its_issuer() {
    let stub = Stub::new(|_| json(200, &document("")));
    let client = bounded(
        discovering(&stub, basic())
            .discover("https://auth.example.com/.well-known/oauth-authorization-server"),
    )
    .await
    .unwrap();
    assert_eq!(client.issuer(), Some(ISSUER));
    let stub2 = Stub::new(|_| json(200, &document("")));
    bounded(
        discovering(&stub2, basic()).discover("https://auth.example.com/.well-known/openid-configuration"),
    )
    .await
    .unwrap();
    assert_eq!(stub.seen().len(), 1);
    assert_eq!(stub2.seen().len(), 1);
    assert_eq!(stub2.seen()[0].path, "/.well-known/openid-configuration");

    // Elsewhere: the issuer is given separately and still checked.
    let stub3 = Stub::new(|_| json(200, &document("")));
    let err = expect_err(
        bounded(
            discovering(&stub3, basic())
                .discover_at("https://cdn.example.com/meta.json", "https://other.example.com"),
        )
        .await,
    );
    assert!(
        matches!(err, Error::Discovery(DiscoveryError::IssuerMismatch { .. })),
        "{err:?}"
    );
    assert_eq!(stub3.seen()[0].uri, "https://cdn.example.com/meta.json");
}

#[tokio::test]
async fn discovery_refuses_an_insecure_issuer_before_sending() {
    let stub = Stub::new(|_| json(200, &document("")));
    let err = expect_err(bounded(discovering(&stub, basic()).discover("http://auth.example.com")).await);
    assert!(matches!(err, Error::InsecureUrl { .. }), "{err:?}");
    let err = expect_err(bounded(discovering(&stub, basic()).discover("https://auth.example.com?x=1")).await);
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    // A URL given by hand is checked before discovery sends anything, too.
    let err =
        expect_err(discover(discovering(&stub, basic()).userinfo_url("http://auth.example.com/me")).await);
    assert!(matches!(err, Error::InsecureUrl { .. }), "{err:?}");
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn the_client_authentication_follows_what_the_server_advertises() {
    async fn discover_with(auth: ClientAuth, methods: Option<&str>) -> Result<OAuth2Client, Error> {
        let extra = methods.map_or(String::new(), |m| {
            format!(r#","token_endpoint_auth_methods_supported":{m}"#)
        });
        let body = document(&extra);
        let stub = Stub::new(move |_| json(200, &body));
        discover(discovering(&stub, auth)).await
    }
    // Advertised: kept.
    let client = discover_with(basic(), Some(r#"["client_secret_basic","private_key_jwt"]"#))
        .await
        .unwrap();
    assert_eq!(client.client_auth().method(), "client_secret_basic");
    // Absent: the configured method is kept (servers leave the list out whatever they
    // support), public clients included.
    let client = discover_with(basic(), None).await.unwrap();
    assert_eq!(client.client_auth().method(), "client_secret_basic");
    let client = discover_with(ClientAuth::client_secret_post("my-app", SECRET), None)
        .await
        .unwrap();
    assert_eq!(client.client_auth().method(), "client_secret_post");
    let client = discover_with(ClientAuth::none("my-cli"), None).await.unwrap();
    assert_eq!(client.client_auth().method(), "none");
    // Only the other secret method: switched, same id and secret.
    let client = discover_with(basic(), Some(r#"["client_secret_post"]"#))
        .await
        .unwrap();
    assert_eq!(client.client_auth().method(), "client_secret_post");
    assert_eq!(client.client_auth().client_id(), "my-app");
    // Not advertised, nothing equivalent: refused, naming both.
    let err = expect_err(
        discover_with(
            ClientAuth::none("my-cli"),
            Some(r#"["client_secret_basic","private_key_jwt"]"#),
        )
        .await,
    );
    match &err {
        Error::Discovery(DiscoveryError::AuthMethodNotSupported {
            configured,
            advertised,
        }) => {
            assert_eq!(*configured, "none");
            assert_eq!(advertised, &["client_secret_basic", "private_key_jwt"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("none"), "{err}");
    let err = expect_err(discover_with(basic(), Some(r#"["private_key_jwt"]"#)).await);
    assert!(matches!(
        err,
        Error::Discovery(DiscoveryError::AuthMethodNotSupported { .. })
    ));
}

/// A client signing JWT assertions must sign them with an advertised algorithm, when the
/// server lists them.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn jwt_client_authentication_needs_an_advertised_signing_algorithm() {
    async fn discover_with(algorithms: Option<&str>) -> Result<OAuth2Client, Error> {
        let mut extra = r#","token_endpoint_auth_methods_supported":["client_secret_jwt"]"#.to_owned();
        if let Some(algorithms) = algorithms {
            extra.push_str(&format!(
                r#","token_endpoint_auth_signing_alg_values_supported":{algorithms}"#
            ));
        }
        let body = document(&extra);
        let stub = Stub::new(move |_| json(200, &body));
        let auth = ClientAuth::client_secret_jwt("my-app", "a-long-enough-shared-secret-0123456789");
        discover(discovering(&stub, auth)).await
    }
    // Listed, or no list at all: kept.
    let client = discover_with(Some(r#"["RS256","HS256"]"#)).await.unwrap();
    assert_eq!(client.client_auth().signing_algorithm(), Some("HS256"));
    discover_with(None).await.unwrap();
    // Not listed: refused, naming both.
    let err = expect_err(discover_with(Some(r#"["RS256","ES256"]"#)).await);
    match &err {
        Error::Discovery(DiscoveryError::SigningAlgorithmNotSupported {
            configured,
            advertised,
        }) => {
            assert_eq!(*configured, "HS256");
            assert_eq!(advertised, &["RS256", "ES256"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("HS256"), "{err}");
}

#[tokio::test]
async fn a_switched_method_sends_the_secret_in_the_body() {
    let body = document(r#","token_endpoint_auth_methods_supported":["client_secret_post"]"#);
    let stub = Stub::new(move |seen| match seen.path.as_str() {
        "/token" => json(200, r#"{"access_token":"at","token_type":"Bearer"}"#),
        _ => json(200, &body),
    });
    let client = discover(discovering(&stub, basic())).await.unwrap();
    bounded(client.client_credentials().fetch_token()).await.unwrap();
    let seen = stub.seen();
    let token = seen.iter().find(|s| s.path == "/token").unwrap();
    assert_eq!(token.header("authorization"), None);
    assert_eq!(token.field("client_id"), Some("my-app"));
    assert_eq!(token.field("client_secret"), Some(SECRET));
}

// ---------------------------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn revocation_posts_the_token_and_hint_with_client_authentication() {
    let stub = Stub::new(|_| respond(200, &[], ""));
    let client = client_at(&stub, basic());
    let token = Token::bearer("at-1").with_refresh_token("rt-1");
    bounded(client.revoke_access_token(&token)).await.unwrap();
    assert!(bounded(client.revoke_refresh_token(&token)).await.unwrap());
    bounded(client.revoke_token("other", Some(TokenTypeHint::Other("id_token".into()))))
        .await
        .unwrap();
    bounded(client.revoke_token("plain", None)).await.unwrap();
    let seen = stub.seen();
    assert_eq!(seen.len(), 4);
    let sent: Vec<(Option<&str>, Option<&str>)> = seen
        .iter()
        .map(|s| (s.field("token"), s.field("token_type_hint")))
        .collect();
    assert_eq!(
        sent,
        [
            (Some("at-1"), Some("access_token")),
            (Some("rt-1"), Some("refresh_token")),
            (Some("other"), Some("id_token")),
            (Some("plain"), None),
        ]
    );
    for s in &seen {
        assert_eq!(s.method, http::Method::POST);
        assert_eq!(s.path, "/revoke");
        assert!(s.header("authorization").unwrap().starts_with("Basic "));
        assert_eq!(
            s.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }
}

#[tokio::test]
async fn revoking_a_missing_refresh_token_sends_nothing() {
    let stub = Stub::new(|_| respond(200, &[], ""));
    let client = client_at(&stub, basic());
    assert!(!bounded(client.revoke_refresh_token(&Token::bearer("at")))
        .await
        .unwrap());
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn revocation_errors_are_typed_and_the_token_is_redacted() {
    let stub = Stub::new(|seen| {
        let token = seen.field("token").unwrap();
        json(
            400,
            &format!(r#"{{"error":"unsupported_token_type","error_description":"cannot revoke {token}"}}"#),
        )
    });
    let client = client_at(&stub, basic());
    let err =
        expect_err(bounded(client.revoke_token("tok/sec ret+1", Some(TokenTypeHint::AccessToken))).await);
    assert_eq!(err.code(), Some(&ErrorCode::UnsupportedTokenType));
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    let description = err.server_error().unwrap().description.clone().unwrap();
    assert_eq!(description, "cannot revoke [redacted]");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("sec ret"), "{shown}");
    }
    assert!(!err.is_transient());
}

#[tokio::test]
async fn revocation_503_with_retry_after_is_transient() {
    let stub = Stub::new(|_| respond(503, &[("retry-after", "30")], "<h1>down</h1>"));
    let client = client_at(&stub, basic());
    let err = expect_err(bounded(client.revoke_token("t", None)).await);
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));

    let stub = Stub::new(|_| json(503, r#"{"error":"temporarily_unavailable"}"#));
    let err = expect_err(bounded(client_at(&stub, basic()).revoke_token("t", None)).await);
    assert_eq!(err.code(), Some(&ErrorCode::TemporarilyUnavailable));
    assert!(err.is_transient());
}

#[tokio::test]
async fn revocation_200_is_success_whatever_the_body_unless_it_is_an_error() {
    for body in ["", "ok", "{}", r#"{"revoked":true}"#, "\u{1b}[31m"] {
        let stub = Stub::new(move |_| respond(200, &[], body));
        bounded(client_at(&stub, basic()).revoke_token("t", None))
            .await
            .unwrap();
    }
    let stub = Stub::new(|_| json(200, r#"{"error":"invalid_client"}"#));
    let err = expect_err(bounded(client_at(&stub, basic()).revoke_token("t", None)).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
}

#[tokio::test]
async fn revocation_hostile_bodies_never_show() {
    let hostile = "\u{1b}]8;;http://evil\u{7}click\u{1b}]8;;\u{7}\n".repeat(50);
    let stub = Stub::new(move |_| respond(500, &[("content-type", "text/html")], hostile.clone()));
    let err = expect_err(bounded(client_at(&stub, basic()).revoke_token("t", None)).await);
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("evil"));
    assert!(err.is_transient());
}

// ---------------------------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn introspection_reads_every_typed_field() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"active":true,"scope":"read write","client_id":"my-app","username":"alice",
            "token_type":"Bearer","exp":1900000000,"iat":"1899996400","nbf":1899996400,
            "sub":"user-7","aud":"https://api.example.com","iss":"https://auth.example.com",
            "jti":"j-1","tenant":"acme","secret_claim":"hidden-value"}"#,
        )
    });
    let client = client_at(&stub, basic());
    let info = bounded(client.introspect("tok-1", Some(TokenTypeHint::AccessToken)))
        .await
        .unwrap();
    assert!(info.active());
    assert_eq!(info.scope(), Some("read write"));
    assert_eq!(info.client_id(), Some("my-app"));
    assert_eq!(info.username(), Some("alice"));
    assert_eq!(info.token_type(), Some("Bearer"));
    let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
    assert_eq!(info.exp(), at(1_900_000_000));
    assert_eq!(info.iat(), at(1_899_996_400));
    assert_eq!(info.nbf(), at(1_899_996_400));
    assert_eq!(info.sub(), Some("user-7"));
    assert_eq!(info.aud(), ["https://api.example.com"]);
    assert_eq!(info.iss(), Some(ISSUER));
    assert_eq!(info.jti(), Some("j-1"));
    assert_eq!(info.extra().len(), 2);
    assert_eq!(info.extra()["tenant"], "acme");
    assert!(!format!("{info:?}").contains("hidden-value"));

    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/introspect");
    assert_eq!(seen[0].field("token"), Some("tok-1"));
    assert_eq!(seen[0].field("token_type_hint"), Some("access_token"));
    assert!(seen[0].header("authorization").unwrap().starts_with("Basic "));
}

#[tokio::test]
async fn introspection_of_an_inactive_token_and_list_fields() {
    let stub = Stub::new(|_| json(200, r#"{"active":false,"aud":["a","b"],"scope":["x","y"]}"#));
    let info = bounded(client_at(&stub, basic()).introspect("t", None))
        .await
        .unwrap();
    assert!(!info.active());
    assert_eq!(info.aud(), ["a", "b"]);
    assert_eq!(info.scope(), Some("x y"));
    assert_eq!(info.exp(), None);
    assert_eq!(stub.seen()[0].field("token_type_hint"), None);
}

#[tokio::test]
async fn introspection_without_a_boolean_active_or_with_ill_typed_fields_is_malformed() {
    for body in [
        "{}",
        r#"{"active":"true"}"#,
        r#"{"active":1}"#,
        r#"{"active":null}"#,
        r#"{"active":true,"exp":"soon"}"#,
        r#"{"active":true,"exp":-5}"#,
        r#"{"active":true,"aud":[1]}"#,
        r#"{"active":true,"sub":{}}"#,
        "[true]",
        "not json at all",
    ] {
        let stub = Stub::new(move |_| json(200, body));
        let err = expect_err(bounded(client_at(&stub, basic()).introspect("t", None)).await);
        assert!(matches!(err, Error::MalformedResponse { .. }), "{body}: {err:?}");
        assert!(!err.is_transient());
    }
}

#[tokio::test]
async fn introspection_errors_are_typed_and_the_token_is_redacted() {
    let stub = Stub::new(|seen| {
        let token = seen.field("token").unwrap();
        json(
            401,
            &format!(r#"{{"error":"invalid_client","error_description":"who? ({token}) {SECRET}"}}"#),
        )
    });
    let err = expect_err(bounded(client_at(&stub, basic()).introspect("tok-echo", None)).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
    let description = err.server_error().unwrap().description.clone().unwrap();
    assert_eq!(description, "who? ([redacted]) [redacted]");

    let stub = Stub::new(|_| respond(502, &[], "bad gateway"));
    let err = expect_err(bounded(client_at(&stub, basic()).introspect("t", None)).await);
    assert!(matches!(
        err,
        Error::HttpStatus {
            status: StatusCode::BAD_GATEWAY,
            ..
        }
    ));
    assert!(err.is_transient());
}

#[tokio::test]
async fn introspection_truncated_and_oversize_bodies() {
    // Content-Length announces more than arrives: cut short, transient.
    let stub = Stub::new(|_| respond(200, &[("content-length", "100")], r#"{"active":tr"#));
    let err = expect_err(bounded(client_at(&stub, basic()).introspect("t", None)).await);
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_transient());

    let big = format!(r#"{{"active":true,"pad":"{}"}}"#, "x".repeat(8192));
    let stub = Stub::with_limit(move |_| json(200, &big), Some(1024));
    let err = expect_err(bounded(client_at(&stub, basic()).introspect("t", None)).await);
    assert!(matches!(err, Error::BodyTooLarge { limit: 1024 }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Userinfo
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn userinfo_sends_the_bearer_token_and_reads_sub() {
    let stub = Stub::new(|_| json(200, r#"{"sub":"user-7","email":"alice@example.com"}"#));
    let client = client_at(&stub, basic());
    let user = bounded(client.userinfo(&Token::bearer("at-7"))).await.unwrap();
    assert_eq!(user.sub(), "user-7");
    assert_eq!(user.claim("email").unwrap(), "alice@example.com");
    assert!(!format!("{user:?}").contains("alice"));
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, http::Method::GET);
    assert_eq!(seen[0].path, "/userinfo");
    assert_eq!(seen[0].header("authorization"), Some("Bearer at-7"));
    assert!(seen[0].headers["authorization"].is_sensitive());
    assert!(seen[0].body.is_empty(), "no client credentials");
}

#[tokio::test]
async fn userinfo_invalid_token_is_typed_from_the_challenge_and_redacted() {
    let stub = Stub::new(|seen| {
        let token = seen
            .header("authorization")
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_owned();
        let challenge =
            format!(r#"Bearer realm="x", error="invalid_token", error_description="token {token} expired""#);
        respond(401, &[("www-authenticate", &challenge)], "")
    });
    let err = expect_err(bounded(client_at(&stub, basic()).userinfo(&Token::bearer("at-secret-9"))).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidToken));
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(
        err.server_error().unwrap().description.as_deref(),
        Some("token [redacted] expired")
    );
    assert!(!format!("{err:?}").contains("at-secret-9"));
    assert!(!err.is_transient());

    // No challenge: typed as the token endpoint's errors are.
    let stub = Stub::new(|_| respond(401, &[], ""));
    let err = expect_err(bounded(client_at(&stub, basic()).userinfo(&Token::bearer("t"))).await);
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: StatusCode::UNAUTHORIZED,
                ..
            }
        ),
        "{err:?}"
    );
    let stub = Stub::new(|_| respond(503, &[("retry-after", "5")], ""));
    let err = expect_err(bounded(client_at(&stub, basic()).userinfo(&Token::bearer("t"))).await);
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn signed_userinfo_is_refused_with_a_message_that_says_so() {
    let stub = Stub::new(|_| {
        respond(
            200,
            &[("content-type", "application/jwt")],
            "eyJhbGciOi.eyJzdWIi.sig",
        )
    });
    let err = expect_err(bounded(client_at(&stub, basic()).userinfo(&Token::bearer("t"))).await);
    assert!(matches!(err, Error::SignedUserInfoUnsupported), "{err:?}");
    assert!(err.to_string().contains("signed"), "{err}");
}

#[tokio::test]
async fn userinfo_without_sub_or_not_json_is_malformed() {
    for body in ["{}", r#"{"sub":7}"#, r#"{"sub":""}"#, "<html>", "[]"] {
        let stub = Stub::new(move |_| json(200, body));
        let err = expect_err(bounded(client_at(&stub, basic()).userinfo(&Token::bearer("t"))).await);
        assert!(matches!(err, Error::MalformedResponse { .. }), "{body}: {err:?}");
    }
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"error":"invalid_request","error_description":"t is bad"}"#,
        )
    });
    let err = expect_err(bounded(client_at(&stub, basic()).userinfo(&Token::bearer("t-x"))).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidRequest));
}

#[test]
fn system_time_is_used_for_introspection_dates() {
    // The conversion is plain seconds since 1970: fractional seconds are kept.
    let info = tower_oauth2::Introspection::from_json(r#"{"active":true,"exp":1.5}"#).unwrap();
    assert_eq!(
        info.exp(),
        Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1500))
    );
}

#[test]
fn every_call_s_future_is_send() {
    fn send<T: Send>(_: T) {}
    let client = OAuth2Client::builder(basic())
        .token_url("https://auth.example.com/token")
        .build()
        .unwrap();
    let token = Token::bearer("t");
    send(client.revoke_token("t", None));
    send(client.revoke_access_token(&token));
    send(client.revoke_refresh_token(&token));
    send(client.introspect("t", None));
    send(client.userinfo(&token));
    send(OAuth2Client::discover(ISSUER, basic()));
    send(OAuth2Client::builder(basic()).discover_at("https://a.example.com/m", ISSUER));
}

#[tokio::test]
async fn logs_name_the_calls_but_never_the_tokens_or_the_secret() {
    let logs = log_capture::capture();
    let stub = Stub::new(|seen| {
        let echoed = seen
            .field("token")
            .or_else(|| seen.header("authorization"))
            .unwrap_or_default();
        let challenge = format!(r#"Bearer error="invalid_token", error_description="{echoed}""#);
        respond(
            400,
            &[
                ("content-type", "application/json"),
                ("www-authenticate", &challenge),
            ],
            format!(r#"{{"error":"invalid_request","error_description":"got {echoed} {SECRET}"}}"#),
        )
    });
    let client = client_at(&stub, basic());
    let token = Token::bearer("at-logged-never").with_refresh_token("rt-logged-never");
    expect_err(bounded(client.revoke_refresh_token(&token)).await);
    expect_err(bounded(client.introspect("it-logged-never", None)).await);
    expect_err(bounded(client.userinfo(&token)).await);
    let text = logs.text();
    for name in ["revocation", "introspection", "userinfo"] {
        assert!(text.contains(name), "the {name} call is logged: {text}");
    }
    for secret in ["at-logged-never", "rt-logged-never", "it-logged-never", SECRET] {
        assert!(!text.contains(secret), "{secret} in the logs: {text}");
    }
    assert!(text.contains("[redacted]"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Mutual TLS endpoint aliases (RFC 8705 §5)
// ---------------------------------------------------------------------------------------------

const MTLS: &str = "https://mtls.auth.example.com";

/// A document advertising the certificate methods, with aliases for every endpoint the client
/// calls except the pushed authorization request one.
fn mtls_document() -> String {
    document(&format!(
        r#","token_endpoint_auth_methods_supported":["client_secret_basic","tls_client_auth","self_signed_tls_client_auth"],
        "authorization_endpoint":"{ISSUER}/authorize","pushed_authorization_request_endpoint":"{ISSUER}/par",
        "mtls_endpoint_aliases":{{"token_endpoint":"{MTLS}/token","revocation_endpoint":"{MTLS}/revoke",
        "introspection_endpoint":"{MTLS}/introspect","userinfo_endpoint":"{MTLS}/userinfo",
        "device_authorization_endpoint":"{MTLS}/device","authorization_endpoint":"{MTLS}/authorize",
        "jwks_uri":"{MTLS}/jwks"}}"#
    ))
}

/// Answers discovery with `document`, the token endpoints (plain or alias) with a token,
/// revocation with 200, and an `invalid_client` for anything else.
fn mtls_stub(document: String) -> Stub {
    Stub::new(move |seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/.well-known/openid-configuration") => json(200, &document),
        ("POST", "/token") => json(
            200,
            r#"{"access_token":"at-1","token_type":"Bearer","expires_in":60}"#,
        ),
        ("POST", "/revoke") => json(200, ""),
        _ => json(
            401,
            r#"{"error":"invalid_client","error_description":"no certificate"}"#,
        ),
    })
}

/// The endpoints an `OAuth2Client` calls itself, by the names of [`endpoint_urls`].
const CALLED: [&str; 5] = ["token", "revocation", "introspection", "userinfo", "device"];

/// Each endpoint URL of `client`, by name, with the path [`document`] and [`mtls_document`]
/// give it.
fn endpoint_urls(client: &OAuth2Client) -> [(&'static str, Option<String>, &'static str); 8] {
    let url = |u: Option<&url::Url>| u.map(|u| u.as_str().to_owned());
    [
        (
            "token",
            Some(client.token_endpoint().token_url().as_str().to_owned()),
            "/token",
        ),
        ("revocation", url(client.revocation_url()), "/revoke"),
        ("introspection", url(client.introspection_url()), "/introspect"),
        ("userinfo", url(client.userinfo_url()), "/userinfo"),
        ("device", url(client.device_authorization_url()), "/device"),
        ("authorization", url(client.authorization_url()), "/authorize"),
        ("jwks", url(client.jwks_url()), "/jwks"),
        ("par", url(client.pushed_authorization_request_url()), "/par"),
    ]
}

/// Asserts that the endpoints `names` of `client` are at `base` with their usual paths;
/// `case` names the case in the failure message.
fn assert_endpoints_at(client: &OAuth2Client, base: &str, names: &[&str], case: &str) {
    let urls = endpoint_urls(client);
    for name in names {
        let (_, url, path) = urls
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no endpoint named {name}"));
        assert_eq!(
            url.as_deref(),
            Some(format!("{base}{path}").as_str()),
            "{case}: {name}"
        );
    }
}

#[tokio::test]
async fn a_certificate_method_uses_the_mtls_aliases() {
    for auth in [
        ClientAuth::tls_client_auth("my-app"),
        ClientAuth::self_signed_tls_client_auth("my-app"),
    ] {
        let method = auth.method();
        let stub = mtls_stub(mtls_document());
        let client = discover(discovering(&stub, auth)).await.unwrap();
        assert_eq!(client.client_auth().method(), method);
        assert_endpoints_at(&client, MTLS, &CALLED, method);
        // Not called by the client with its certificate: never aliased. And no alias for the
        // pushed authorization request endpoint: the ordinary one.
        assert_endpoints_at(&client, ISSUER, &["authorization", "jwks", "par"], method);
        let metadata = client.metadata().unwrap();
        assert_eq!(
            metadata.mtls_endpoint_alias("token_endpoint").unwrap().as_str(),
            format!("{MTLS}/token")
        );
        assert_eq!(
            metadata.mtls_endpoint_alias("pushed_authorization_request_endpoint"),
            None
        );

        // The requests go to the aliases, carrying the client id alone.
        let token = bounded(client.client_credentials().fetch_token()).await.unwrap();
        bounded(client.revoke_access_token(&token)).await.unwrap();
        let seen = stub.seen();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[1].uri, format!("{MTLS}/token"));
        assert_eq!(seen[1].field("client_id"), Some("my-app"));
        assert_eq!(seen[1].header("authorization"), None);
        assert_eq!(seen[2].uri, format!("{MTLS}/revoke"));
        assert_eq!(seen[2].field("client_id"), Some("my-app"));
    }
}

#[tokio::test]
async fn the_mtls_aliases_are_ignored_by_other_methods_and_by_hand_urls_win() {
    let stub = mtls_stub(mtls_document());
    let client = discover(discovering(&stub, basic())).await.unwrap();
    assert_endpoints_at(&client, ISSUER, &CALLED, "client_secret_basic");
    bounded(client.client_credentials().fetch_token()).await.unwrap();
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].uri, format!("{ISSUER}/token"));
    assert!(seen[1].header("authorization").unwrap().starts_with("Basic "));

    // URLs given by hand beat the aliases too.
    let stub = mtls_stub(mtls_document());
    let client = discover(
        discovering(&stub, ClientAuth::tls_client_auth("my-app"))
            .token_url("https://other.example.com/token")
            .introspection_url("https://other.example.com/introspect"),
    )
    .await
    .unwrap();
    assert_eq!(
        client.token_endpoint().token_url().as_str(),
        "https://other.example.com/token"
    );
    assert_eq!(
        client.introspection_url().unwrap().as_str(),
        "https://other.example.com/introspect"
    );
    assert_endpoints_at(&client, MTLS, &["revocation"], "by hand");

    // A document without aliases: the ordinary endpoints, for a certificate method as well.
    let body = document(r#","token_endpoint_auth_methods_supported":["tls_client_auth"]"#);
    let stub = mtls_stub(body);
    let client = discover(discovering(&stub, ClientAuth::tls_client_auth("my-app")))
        .await
        .unwrap();
    assert_eq!(
        client.token_endpoint().token_url().as_str(),
        format!("{ISSUER}/token")
    );
    assert_eq!(
        client.metadata().unwrap().mtls_endpoint_alias("token_endpoint"),
        None
    );
}

#[tokio::test]
async fn an_insecure_or_ill_typed_alias_is_refused() {
    let insecure = mtls_document().replace(
        &format!(r#""token_endpoint":"{MTLS}/token""#),
        r#""token_endpoint":"http://mtls.auth.example.com/token""#,
    );
    assert!(insecure.contains("http://mtls"), "the replacement happened");
    // Refused whatever the method: the document is checked as a whole.
    for auth in [ClientAuth::tls_client_auth("my-app"), basic()] {
        let body = insecure.clone();
        let stub = Stub::new(move |_| json(200, &body));
        let err = expect_err(discover(discovering(&stub, auth)).await);
        match &err {
            Error::Discovery(DiscoveryError::InsecureEndpoint { field, url }) => {
                assert_eq!(field, "mtls_endpoint_aliases.token_endpoint");
                assert_eq!(url, "http://mtls.auth.example.com/token");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(stub.seen().len(), 1, "nothing sent after the document");
    }
    // Opted out: accepted, and used.
    let body = insecure.clone();
    let stub = Stub::new(move |_| json(200, &body));
    let client =
        discover(discovering(&stub, ClientAuth::tls_client_auth("my-app")).dangerous_allow_insecure_http())
            .await
            .unwrap();
    assert_eq!(
        client.token_endpoint().token_url().as_str(),
        "http://mtls.auth.example.com/token"
    );
    // Plain http on loopback is allowed, as for every endpoint.
    let loopback = mtls_document().replace(
        &format!(r#""token_endpoint":"{MTLS}/token""#),
        r#""token_endpoint":"http://127.0.0.1:8443/token""#,
    );
    let stub = Stub::new(move |_| json(200, &loopback));
    let client = discover(discovering(&stub, ClientAuth::tls_client_auth("my-app")))
        .await
        .unwrap();
    assert_eq!(
        client.token_endpoint().token_url().as_str(),
        "http://127.0.0.1:8443/token"
    );

    // Not an object, a value that is not a string, not a URL, a URL with credentials.
    for (aliases, field) in [
        (
            r#"["https://mtls.auth.example.com/token"]"#,
            "mtls_endpoint_aliases",
        ),
        (r#"{"token_endpoint":42}"#, "mtls_endpoint_aliases.token_endpoint"),
        (
            r#"{"revocation_endpoint":"not a url"}"#,
            "mtls_endpoint_aliases.revocation_endpoint",
        ),
        (
            r#"{"token_endpoint":"https://u:p@mtls.auth.example.com/token"}"#,
            "mtls_endpoint_aliases.token_endpoint",
        ),
    ] {
        let body = document(&format!(r#","mtls_endpoint_aliases":{aliases}"#));
        let stub = Stub::new(move |_| json(200, &body));
        let err = expect_err(discover(discovering(&stub, ClientAuth::tls_client_auth("my-app"))).await);
        match &err {
            Error::Discovery(DiscoveryError::WrongType(found)) => assert_eq!(found, field, "{aliases}"),
            Error::Discovery(DiscoveryError::InvalidUrl { field: found }) => {
                assert_eq!(found, field, "{aliases}")
            }
            other => panic!("{aliases}: {other:?}"),
        }
        assert!(!err.to_string().contains("u:p"), "{err}");
    }
}

#[tokio::test]
async fn an_error_at_an_alias_is_typed_and_keeps_no_secret() {
    // The alias answers 401 invalid_client (no certificate), then 500, then a hostile body.
    let document = mtls_document();
    let answers = Arc::new(Mutex::new(vec![
        respond(200, &[("content-type", "application/json")], "{\"access_token\":"),
        respond(500, &[], "<html>down</html>"),
        json(
            401,
            r#"{"error":"invalid_client","error_description":"client certificate was not provided"}"#,
        ),
    ]));
    let stub = Stub::new(move |seen| {
        if seen.method == http::Method::GET {
            json(200, &document)
        } else {
            answers.lock().unwrap().pop().unwrap()
        }
    });
    let client = discover(discovering(&stub, ClientAuth::tls_client_auth("my-app")))
        .await
        .unwrap();
    let err = expect_err(bounded(client.client_credentials().fetch_token()).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidClient), "{err:?}");
    assert!(
        err.to_string().contains("client certificate was not provided"),
        "{err}"
    );
    let err = expect_err(bounded(client.client_credentials().fetch_token()).await);
    assert!(
        matches!(err, Error::HttpStatus { status, .. } if status == StatusCode::INTERNAL_SERVER_ERROR),
        "{err:?}"
    );
    let err = expect_err(bounded(client.client_credentials().fetch_token()).await);
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    let seen = stub.seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen[1..].iter().all(|s| s.uri == format!("{MTLS}/token")),
        "{seen:?}"
    );
}
