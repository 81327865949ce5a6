//! Ready-made providers, part A (generic OAuth 2.0 and OpenID, GitHub, Google, Microsoft,
//! Discord, Facebook, GitLab): each against an in-process server that answers as that
//! provider does. For each: `id_email` on the happy path, the provider's quirk, a 401 and a
//! 500 and a malformed body giving typed errors, and the access token sent only as a Bearer
//! header to the provider's API host.

#[path = "support/stub.rs"]
mod stub;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use stub::util::{bounded, expect_err};
use stub::{json, respond, Seen, Stub};
use tower_oauth2::provider::discord::Discord;
use tower_oauth2::provider::facebook::Facebook;
use tower_oauth2::provider::generic::{OAuth2Provider, OpenIdProvider};
use tower_oauth2::provider::github::GitHub;
use tower_oauth2::provider::gitlab::GitLab;
use tower_oauth2::provider::google::Google;
use tower_oauth2::provider::microsoft::Microsoft;
use tower_oauth2::provider::{IdEmail, Provider};
use tower_oauth2::{Callback, ClientAuth, Error, ErrorCode, HttpClient, Login, Token};

/// The user's access token in every test: it must reach the API host as a Bearer header and
/// go nowhere else.
const ACCESS_TOKEN: &str = "user-access-t0ken";

/// A client secret that must never show.
const SECRET: &str = "client-s3cret-never-shown";

fn token() -> Token {
    Token::bearer(ACCESS_TOKEN)
}

/// Every request carrying the access token went to `api_host`, as exactly
/// `Authorization: Bearer <token>`, and no request has the token in its URI or body.
fn assert_bearer_only_to(seen: &[Seen], api_host: &str) {
    assert!(!seen.is_empty(), "no request was sent");
    for request in seen {
        assert!(
            !request.uri.contains(ACCESS_TOKEN),
            "token in the URI: {}",
            request.uri
        );
        assert!(
            !request.body.contains(ACCESS_TOKEN),
            "token in the body of {}",
            request.uri
        );
        let uri: http::Uri = request.uri.parse().unwrap();
        assert_eq!(
            uri.host(),
            Some(api_host),
            "request to another host: {}",
            request.uri
        );
        assert_eq!(
            request.authorization(),
            Some(format!("Bearer {ACCESS_TOKEN}").as_str()),
            "{}",
            request.uri
        );
        for (name, value) in &request.headers {
            if name != http::header::AUTHORIZATION {
                assert!(!value
                    .as_bytes()
                    .windows(ACCESS_TOKEN.len())
                    .any(|w| w == ACCESS_TOKEN.as_bytes()));
            }
        }
    }
}

fn status_of(err: &Error) -> Option<StatusCode> {
    err.status()
}

/// A 401 with a Bearer challenge that echoes the token: `invalid_token`, redacted.
fn invalid_token() -> http::Response<Full<Bytes>> {
    respond(
        401,
        &[(
            "www-authenticate",
            &format!(r#"Bearer error="invalid_token", error_description="token {ACCESS_TOKEN} expired""#),
        )],
        "",
    )
}

/// The error of `invalid_token()`: typed, and without the token.
fn assert_invalid_token(err: &Error) {
    assert_eq!(err.code(), Some(&ErrorCode::InvalidToken), "{err:?}");
    assert_eq!(status_of(err), Some(StatusCode::UNAUTHORIZED));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(ACCESS_TOKEN), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

fn assert_malformed(err: &Error, field: &str) {
    match err {
        Error::MalformedResponse { reason, .. } => assert!(reason.contains(field), "{reason}"),
        other => panic!("expected MalformedResponse naming {field}, got {other:?}"),
    }
}

/// A bare 401 from a provider's API: the token refused, `invalid_token` like a Bearer challenge.
fn assert_token_refused(err: &Error) {
    assert_eq!(err.code(), Some(&ErrorCode::InvalidToken), "{err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED), "{err:?}");
    assert!(!err.is_transient());
}

fn assert_http_status(err: &Error, status: u16) {
    assert!(
        matches!(err, Error::HttpStatus { status: s, .. } if s.as_u16() == status),
        "{err:?}"
    );
}

async fn id_email(provider: &dyn Provider) -> Result<IdEmail, Error> {
    bounded(provider.id_email(&token())).await
}

// ---------------------------------------------------------------------------------------------
// GitHub

fn github(stub: &Stub) -> GitHub {
    GitHub::builder("gh-client", "gh-s3cret")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn github_public_email_needs_one_request_with_the_api_headers() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"id":583231,"login":"octocat","email":"octocat@github.com"}"#,
        )
    });
    let user = id_email(&github(&stub)).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "583231".into(),
            email: Some("octocat@github.com".into())
        }
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "https://api.github.com/user");
    assert_eq!(seen[0].header("accept"), Some("application/vnd.github+json"));
    assert_eq!(seen[0].header("x-github-api-version"), Some("2022-11-28"));
    assert!(seen[0].header("user-agent").unwrap().starts_with("tower-oauth2/"));
    assert_bearer_only_to(&seen, "api.github.com");
}

#[tokio::test]
async fn github_private_email_is_the_primary_verified_one_of_user_emails() {
    let stub = Stub::new(|seen| match seen.path.as_str() {
        "/user" => json(200, r#"{"id":1,"login":"octocat","email":null}"#),
        "/user/emails" => json(
            200,
            r#"[{"email":"unverified@example.com","primary":true,"verified":false},
                {"email":"other@example.com","primary":false,"verified":true},
                {"email":"octocat@users.noreply.github.com","primary":true,"verified":true,"visibility":null}]"#,
        ),
        _ => json(404, "{}"),
    });
    let user = id_email(&github(&stub)).await.unwrap();
    assert_eq!(user.id, "1");
    assert_eq!(user.email.as_deref(), Some("octocat@users.noreply.github.com"));
    let seen = stub.seen();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        ["/user", "/user/emails"]
    );
    assert_bearer_only_to(&seen, "api.github.com");
}

#[tokio::test]
async fn github_without_a_primary_verified_email_gives_none() {
    let stub = Stub::new(|seen| match seen.path.as_str() {
        "/user" => json(200, r#"{"id":"7","email":null}"#),
        _ => json(
            200,
            r#"[{"email":"a@example.com","primary":true,"verified":false}]"#,
        ),
    });
    assert_eq!(
        id_email(&github(&stub)).await.unwrap(),
        IdEmail {
            id: "7".into(),
            email: None
        }
    );
}

#[tokio::test]
async fn github_api_errors_are_typed() {
    // Bad credentials: GitHub's 401 body is not an OAuth error.
    let stub = Stub::new(|_| {
        json(
            401,
            r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com"}"#,
        )
    });
    assert_token_refused(&expect_err(id_email(&github(&stub)).await));
    let stub = Stub::new(|_| invalid_token());
    assert_invalid_token(&expect_err(id_email(&github(&stub)).await));
    let stub = Stub::new(|_| respond(500, &[("content-type", "text/html")], "<h1>Unicorn!</h1>"));
    assert_http_status(&expect_err(id_email(&github(&stub)).await), 500);
    // No id; an id of the wrong type; not JSON; /user/emails not a list.
    let stub = Stub::new(|_| json(200, r#"{"login":"octocat"}"#));
    assert_malformed(&expect_err(id_email(&github(&stub)).await), "`id`");
    let stub = Stub::new(|_| json(200, r#"{"id":true}"#));
    assert_malformed(&expect_err(id_email(&github(&stub)).await), "`id`");
    let stub = Stub::new(|_| json(200, r#"{"id":1,"#));
    assert_malformed(&expect_err(id_email(&github(&stub)).await), "not JSON");
    let stub = Stub::new(|seen| match seen.path.as_str() {
        "/user" => json(200, r#"{"id":1,"email":null}"#),
        _ => json(200, r#"{"email":"a@example.com"}"#),
    });
    assert_malformed(&expect_err(id_email(&github(&stub)).await), "array");
    // The e-mails endpoint refused (no `user:email` scope): its error, not a guess.
    let stub = Stub::new(|seen| match seen.path.as_str() {
        "/user" => json(200, r#"{"id":1,"email":null}"#),
        _ => json(404, r#"{"message":"Not Found"}"#),
    });
    assert_http_status(&expect_err(id_email(&github(&stub)).await), 404);
}

/// A login with `provider` up to the code exchange: the authorization request (checked), a
/// callback with `code` and the right state, and `exchange_code`.
async fn log_in(provider: &dyn Provider, code: &str) -> Result<Login, Error> {
    let (url, pending) = provider
        .authorization_request("https://app.example.com/cb")
        .build()?
        .into_parts();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(param("response_type"), Some("code"));
    assert_eq!(param("redirect_uri"), Some("https://app.example.com/cb"));
    assert_eq!(param("code_challenge_method"), Some("S256"));
    assert_eq!(param("state"), Some(pending.state()));
    let callback = Callback::from_query(&format!("code={code}&state={}", pending.state()));
    bounded(provider.client().exchange_code(&pending, &callback)).await
}

#[tokio::test]
async fn github_login_reads_a_form_encoded_token_answer_and_asks_for_json() {
    let stub = Stub::new(|seen| match seen.path.as_str() {
        "/login/oauth/access_token" => respond(
            200,
            &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            format!("access_token={ACCESS_TOKEN}&scope=read%3Auser%2Cuser%3Aemail&token_type=bearer"),
        ),
        _ => json(200, r#"{"id":583231,"email":"octocat@github.com"}"#),
    });
    let github = github(&stub);
    let login = log_in(&github, "the-code").await.unwrap();
    assert_eq!(login.token().access_token().expose(), ACCESS_TOKEN);
    assert_eq!(login.token().scope(), Some("read:user,user:email"));
    let user = bounded(github.id_email(login.token())).await.unwrap();
    assert_eq!(user.id, "583231");
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].uri, "https://github.com/login/oauth/access_token");
    assert_eq!(seen[0].header("accept"), Some("application/json"));
    assert_eq!(seen[0].field("code"), Some("the-code"));
    assert!(seen[0].field("code_verifier").is_some());
    // client_secret_post, as GitHub documents.
    assert_eq!(seen[0].field("client_id"), Some("gh-client"));
    assert_eq!(seen[0].field("client_secret"), Some("gh-s3cret"));
    assert_eq!(seen[0].authorization(), None);
    assert_bearer_only_to(&seen[1..], "api.github.com");
}

#[tokio::test]
async fn github_token_errors_with_http_200_are_oauth_errors() {
    for (content_type, body) in [
        (
            "application/json",
            r#"{"error":"bad_verification_code","error_description":"The code the-code is incorrect or expired.","error_uri":"https://docs.github.com/apps"}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "error=bad_verification_code&error_description=The+code+the-code+is+incorrect+or+expired.",
        ),
    ] {
        let stub = Stub::new(move |_| respond(200, &[("content-type", content_type)], body));
        let err = expect_err(log_in(&github(&stub), "the-code").await);
        assert!(
            matches!(
                err,
                Error::OAuth2 {
                    status: StatusCode::OK,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.code(), Some(&ErrorCode::from("bad_verification_code")));
        let description = err.server_error().unwrap().description.as_deref().unwrap();
        // The code the request carried is redacted from the server's text.
        assert_eq!(description, "The code [redacted] is incorrect or expired.");
        assert_eq!(stub.seen().len(), 1, "no API call after a failed exchange");
    }
}

// ---------------------------------------------------------------------------------------------
// Google

fn google(stub: &Stub) -> tower_oauth2::provider::google::GoogleBuilder {
    Google::builder("id.apps.googleusercontent.com", "g-s3cret").http_client(stub.http.clone())
}

#[tokio::test]
async fn google_reads_userinfo_and_keeps_only_a_verified_email() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"sub":"110169484474386276334","email":"alice@gmail.com","email_verified":true,"name":"Alice"}"#,
        )
    });
    let user = id_email(&google(&stub).build().unwrap()).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "110169484474386276334".into(),
            email: Some("alice@gmail.com".into())
        }
    );
    let seen = stub.seen();
    assert_eq!(seen[0].uri, "https://openidconnect.googleapis.com/v1/userinfo");
    assert_bearer_only_to(&seen, "openidconnect.googleapis.com");

    // Not said to be verified (false, or not said at all): no e-mail.
    for body in [
        r#"{"sub":"1","email":"bob@example.com","email_verified":false}"#,
        r#"{"sub":"1","email":"bob@example.com"}"#,
    ] {
        let stub = Stub::new(move |_| json(200, body));
        let user = id_email(&google(&stub).build().unwrap()).await.unwrap();
        assert_eq!(user.email, None, "{body}");
    }
}

#[tokio::test]
async fn google_offline_asks_for_a_refresh_token() {
    let stub = Stub::new(|_| json(500, "{}"));
    let plain = google(&stub).build().unwrap();
    let url = plain
        .authorization_request("https://app.example.com/cb")
        .build()
        .unwrap();
    let url = url.url().clone();
    assert!(url
        .as_str()
        .starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
    assert!(!url
        .query_pairs()
        .any(|(k, _)| k == "access_type" || k == "prompt"));
    let offline = google(&stub).offline().build().unwrap();
    let url = offline
        .authorization_request("https://app.example.com/cb")
        .build()
        .unwrap();
    let pairs: Vec<(String, String)> = url.url().query_pairs().into_owned().collect();
    assert!(
        pairs.contains(&("access_type".into(), "offline".into())),
        "{pairs:?}"
    );
    assert!(pairs.contains(&("prompt".into(), "consent".into())), "{pairs:?}");
    let scope = pairs.iter().find(|(k, _)| k == "scope").map(|(_, v)| v.as_str());
    assert_eq!(scope, Some("openid email profile"));
    assert!(
        stub.seen().is_empty(),
        "building an authorization URL sends nothing"
    );
}

#[tokio::test]
async fn google_people_api_as_httpx_oauth_does() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"resourceName":"people/110169484474386276334","etag":"%EgUBAi43PRoEAQIFByIMR0xHT0x4Y2xQbVE9",
                "emailAddresses":[{"metadata":{"primary":false,"verified":true},"value":"old@example.com"},
                                  {"metadata":{"primary":true,"verified":true,"source":{"type":"ACCOUNT"}},"value":"alice@gmail.com"}]}"#,
        )
    });
    let user = id_email(&google(&stub).people_api().build().unwrap())
        .await
        .unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "110169484474386276334".into(),
            email: Some("alice@gmail.com".into())
        }
    );
    let seen = stub.seen();
    assert_eq!(
        seen[0].uri,
        "https://people.googleapis.com/v1/people/me?personFields=emailAddresses"
    );
    assert_bearer_only_to(&seen, "people.googleapis.com");
}

#[tokio::test]
async fn google_errors_are_typed() {
    let stub = Stub::new(|_| invalid_token());
    assert_invalid_token(&expect_err(id_email(&google(&stub).build().unwrap()).await));
    let stub = Stub::new(|_| json(500, r#"{"error":{"code":500,"message":"backend error"}}"#));
    let err = expect_err(id_email(&google(&stub).people_api().build().unwrap()).await);
    assert_http_status(&err, 500);
    assert!(err.is_transient(), "{err:?}");
    // Google APIs' error object: its `status` is the code.
    let stub = Stub::new(|_| {
        json(
            401,
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
        )
    });
    let err = expect_err(id_email(&google(&stub).people_api().build().unwrap()).await);
    assert_eq!(err.code(), Some(&ErrorCode::from("UNAUTHENTICATED")));
    let stub = Stub::new(|_| json(200, r#"{"email":"a@example.com"}"#));
    assert_malformed(
        &expect_err(id_email(&google(&stub).build().unwrap()).await),
        "sub",
    );
    let stub = Stub::new(|_| json(200, r#"{"sub":"1","email":"a@b.c","email_verified":"maybe"}"#));
    let err = expect_err(id_email(&google(&stub).build().unwrap()).await);
    assert_malformed(&err, "`email_verified`");
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"resourceName":"people/1","emailAddresses":{"value":"x"}}"#,
        )
    });
    assert_malformed(
        &expect_err(id_email(&google(&stub).people_api().build().unwrap()).await),
        "emailAddresses",
    );
}

// ---------------------------------------------------------------------------------------------
// Microsoft

fn microsoft(stub: &Stub, tenant: &str) -> Microsoft {
    Microsoft::builder("ms-client", "ms-s3cret")
        .tenant(tenant)
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn microsoft_is_tenant_aware() {
    let stub = Stub::new(|_| json(500, "{}"));
    for tenant in [
        "common",
        "organizations",
        "consumers",
        "9188040d-6c67-4c5b-b112-36a304b66dad",
        "contoso.onmicrosoft.com",
    ] {
        let provider = microsoft(&stub, tenant);
        assert_eq!(
            provider.client().token_endpoint().token_url().as_str(),
            format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
        );
        let login = provider
            .authorization_request("https://app.example.com/cb")
            .build()
            .unwrap();
        let url = login.url();
        assert_eq!(url.path(), format!("/{tenant}/oauth2/v2.0/authorize"));
        assert!(url
            .query_pairs()
            .any(|(k, v)| k == "response_mode" && v == "query"));
        assert!(url
            .query_pairs()
            .any(|(k, v)| k == "scope" && v == "User.Read offline_access"));
    }
    // One issuer for one tenant (a tenant id, or the personal accounts' tenant) and none for
    // the multi-tenant endpoints; the tenant's key set always.
    let tenant_id = "9188040d-6c67-4c5b-b112-36a304b66dad";
    for (tenant, issuer) in [
        ("common", None),
        ("organizations", None),
        ("contoso.onmicrosoft.com", None),
        (
            "consumers",
            Some(format!("https://login.microsoftonline.com/{tenant_id}/v2.0")),
        ),
        (
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0".to_owned()),
        ),
    ] {
        let provider = microsoft(&stub, tenant);
        assert_eq!(provider.client().issuer(), issuer.as_deref(), "{tenant}");
        assert_eq!(
            provider.client().jwks_url().unwrap().as_str(),
            format!("https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys")
        );
    }
    for bad in ["", "a/b", "common?x=1", "../common", ".."] {
        let err = Microsoft::builder("id", "secret")
            .tenant(bad)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
    }
}

#[tokio::test]
async fn microsoft_graph_me_gives_the_user_principal_name_never_mail() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"id":"48d31887-5fad-4d73-a9f5-3c356e68a038","mail":"alice@contoso.com","userPrincipalName":"alice_upn@contoso.com"}"#,
        )
    });
    let user = id_email(&microsoft(&stub, "organizations")).await.unwrap();
    assert_eq!(user.id, "48d31887-5fad-4d73-a9f5-3c356e68a038");
    // `mail` is whatever any tenant's admin typed: never the user's e-mail (nOAuth).
    assert_eq!(user.email.as_deref(), Some("alice_upn@contoso.com"));
    let seen = stub.seen();
    assert_eq!(seen[0].uri, "https://graph.microsoft.com/v1.0/me");
    assert_bearer_only_to(&seen, "graph.microsoft.com");

    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"id":"u1","mail":null,"userPrincipalName":"bob@outlook.com"}"#,
        )
    });
    assert_eq!(
        id_email(&microsoft(&stub, "consumers"))
            .await
            .unwrap()
            .email
            .as_deref(),
        Some("bob@outlook.com")
    );
    // A guest's UPN is no address.
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"id":"u2","mail":null,"userPrincipalName":"carol_fabrikam.com#EXT#@contoso.onmicrosoft.com"}"#,
        )
    });
    assert_eq!(
        id_email(&microsoft(&stub, "common")).await.unwrap(),
        IdEmail {
            id: "u2".into(),
            email: None
        }
    );
}

#[tokio::test]
async fn microsoft_graph_errors_are_typed() {
    let stub = Stub::new(|_| {
        json(
            401,
            &format!(
                r#"{{"error":{{"code":"InvalidAuthenticationToken","message":"Access token {ACCESS_TOKEN} has expired."}}}}"#
            ),
        )
    });
    let err = expect_err(id_email(&microsoft(&stub, "common")).await);
    assert_eq!(err.code(), Some(&ErrorCode::from("InvalidAuthenticationToken")));
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    let description = err.server_error().unwrap().description.as_deref().unwrap();
    assert_eq!(description, "Access token [redacted] has expired.");
    let stub = Stub::new(|_| respond(503, &[("retry-after", "7")], "busy"));
    let err = expect_err(id_email(&microsoft(&stub, "common")).await);
    assert_http_status(&err, 503);
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));
    let stub = Stub::new(|_| json(200, r#"{"mail":"a@example.com"}"#));
    assert_malformed(&expect_err(id_email(&microsoft(&stub, "common")).await), "`id`");
    let stub = Stub::new(|_| json(200, r#"{"id":"u","userPrincipalName":42}"#));
    assert_malformed(
        &expect_err(id_email(&microsoft(&stub, "common")).await),
        "`userPrincipalName`",
    );
}

// ---------------------------------------------------------------------------------------------
// Discord

fn discord(stub: &Stub) -> Discord {
    Discord::builder("dc-client", "dc-s3cret")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn discord_gives_the_email_only_when_verified() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"id":"80351110224678912","username":"Nelly","email":"nelly@discord.com","verified":true}"#,
        )
    });
    let user = id_email(&discord(&stub)).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "80351110224678912".into(),
            email: Some("nelly@discord.com".into())
        }
    );
    let seen = stub.seen();
    assert_eq!(seen[0].uri, "https://discord.com/api/users/@me");
    assert_bearer_only_to(&seen, "discord.com");
    for body in [
        r#"{"id":"1","email":"nelly@discord.com","verified":false}"#,
        r#"{"id":"1","email":"nelly@discord.com"}"#,
        r#"{"id":"1","email":null,"verified":true}"#,
    ] {
        let stub = Stub::new(move |_| json(200, body));
        assert_eq!(
            id_email(&discord(&stub)).await.unwrap(),
            IdEmail {
                id: "1".into(),
                email: None
            },
            "{body}"
        );
    }
}

#[tokio::test]
async fn discord_errors_are_typed() {
    let stub = Stub::new(|_| json(401, r#"{"message":"401: Unauthorized","code":0}"#));
    assert_token_refused(&expect_err(id_email(&discord(&stub)).await));
    let stub = Stub::new(|_| json(500, r#"{"message":"Internal Server Error"}"#));
    assert_http_status(&expect_err(id_email(&discord(&stub)).await), 500);
    let stub = Stub::new(|_| json(200, r#"{"id":["1"],"verified":true}"#));
    assert_malformed(&expect_err(id_email(&discord(&stub)).await), "`id`");
    let stub = Stub::new(|_| json(200, r#"{"id":"1","email":"a@b.c","verified":"yes"}"#));
    assert_malformed(&expect_err(id_email(&discord(&stub)).await), "`verified`");
}

// ---------------------------------------------------------------------------------------------
// Facebook

fn facebook(stub: &Stub) -> Facebook {
    Facebook::builder("fb-app", "fb-s3cret")
        .http_client(stub.http.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn facebook_reads_me_with_fields() {
    let stub = Stub::new(|_| json(200, r#"{"id":"10158223","email":"alice@example.com"}"#));
    let user = id_email(&facebook(&stub)).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "10158223".into(),
            email: Some("alice@example.com".into())
        }
    );
    let seen = stub.seen();
    assert_eq!(seen[0].uri, "https://graph.facebook.com/v21.0/me?fields=id,email");
    assert_bearer_only_to(&seen, "graph.facebook.com");
    // No e-mail permission: no `email`.
    let stub = Stub::new(|_| json(200, r#"{"id":"10158223"}"#));
    assert_eq!(id_email(&facebook(&stub)).await.unwrap().email, None);
}

#[tokio::test]
async fn facebook_long_lived_token_exchange() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"access_token":"long-lived-token","token_type":"bearer","expires_in":5183944}"#,
        )
    });
    let long = bounded(facebook(&stub).long_lived_token(&token())).await.unwrap();
    assert_eq!(long.access_token().expose(), "long-lived-token");
    assert!(long.expires_at().is_some());
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, http::Method::POST);
    assert_eq!(seen[0].uri, "https://graph.facebook.com/v21.0/oauth/access_token");
    assert_eq!(seen[0].field("grant_type"), Some("fb_exchange_token"));
    assert_eq!(seen[0].field("fb_exchange_token"), Some(ACCESS_TOKEN));
    assert_eq!(seen[0].field("client_id"), Some("fb-app"));
    assert_eq!(seen[0].field("client_secret"), Some("fb-s3cret"));

    // An error echoing the short-lived token: redacted.
    let stub = Stub::new(|_| {
        json(
            400,
            &format!(r#"{{"error":"invalid_grant","error_description":"{ACCESS_TOKEN} has expired"}}"#),
        )
    });
    let err = expect_err(bounded(facebook(&stub).long_lived_token(&token())).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    assert!(!format!("{err} {err:?}").contains(ACCESS_TOKEN));
}

#[tokio::test]
async fn facebook_graph_errors_are_typed() {
    let stub = Stub::new(|_| {
        json(
            400,
            r#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A1"}}"#,
        )
    });
    let err = expect_err(id_email(&facebook(&stub)).await);
    assert_eq!(err.code(), Some(&ErrorCode::from("OAuthException")));
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert!(err
        .server_error()
        .unwrap()
        .description
        .as_deref()
        .unwrap()
        .contains("Session has expired"));
    let stub = Stub::new(|_| invalid_token());
    assert_invalid_token(&expect_err(id_email(&facebook(&stub)).await));
    let stub = Stub::new(|_| respond(500, &[], "oops"));
    assert_http_status(&expect_err(id_email(&facebook(&stub)).await), 500);
    let stub = Stub::new(|_| json(200, r#"["10158223"]"#));
    assert_malformed(&expect_err(id_email(&facebook(&stub)).await), "not a JSON object");
    let bad = Facebook::builder("fb-app", "fb-s3cret")
        .api_version("v21.0/../../x")
        .build()
        .unwrap_err();
    assert!(matches!(bad, Error::Config(_)));
}

#[tokio::test]
async fn hostile_error_text_is_escaped_and_capped() {
    // A terminal escape, a newline and 10 000 characters in the error object's text.
    let stub = Stub::new(|_| {
        let message = format!("\u{1b}[31mforged\nline{}", "x".repeat(10_000));
        let body = serde_json::json!({"error": {"message": message, "type": "Oauth\u{1b}Exception"}});
        json(400, &body.to_string())
    });
    let err = expect_err(id_email(&facebook(&stub)).await);
    let description = err.server_error().unwrap().description.clone().unwrap();
    assert!(
        !description.contains('\u{1b}') && !description.contains('\n'),
        "{description:?}"
    );
    // Capped (300 characters and an ellipsis), not 10 000.
    assert!(
        description.chars().count() <= 301 && description.ends_with('…'),
        "{description}"
    );
    assert!(!err.code().unwrap().as_str().contains('\u{1b}'));
    assert!(!err.to_string().contains('\u{1b}'));
}

// ---------------------------------------------------------------------------------------------
// GitLab

#[tokio::test]
async fn gitlab_self_hosted_base_url() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"id":42,"username":"alice","email":"alice@example.com","state":"active"}"#,
        )
    });
    let gitlab = GitLab::builder("gl-app", "gl-s3cret")
        .base_url("https://git.example.com/gitlab/")
        .http_client(stub.http.clone())
        .build()
        .unwrap();
    assert_eq!(
        gitlab.client().token_endpoint().token_url().as_str(),
        "https://git.example.com/gitlab/oauth/token"
    );
    assert_eq!(
        gitlab.client().revocation_url().map(|u| u.as_str()),
        Some("https://git.example.com/gitlab/oauth/revoke")
    );
    let user = id_email(&gitlab).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "42".into(),
            email: Some("alice@example.com".into())
        }
    );
    let seen = stub.seen();
    assert_eq!(seen[0].uri, "https://git.example.com/gitlab/api/v4/user");
    assert_bearer_only_to(&seen, "git.example.com");
}

#[tokio::test]
async fn gitlab_errors_are_typed() {
    let gitlab = |stub: &Stub| {
        GitLab::builder("gl-app", "gl-s3cret")
            .http_client(stub.http.clone())
            .build()
            .unwrap()
    };
    // GitLab's 401: a Bearer challenge and an OAuth error body.
    let stub = Stub::new(|_| {
        respond(
            401,
            &[
                ("content-type", "application/json"),
                (
                    "www-authenticate",
                    r#"Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="Token is expired. You can either do re-authorization or token refresh.""#,
                ),
            ],
            r#"{"error":"invalid_token","error_description":"Token is expired."}"#,
        )
    });
    let err = expect_err(id_email(&gitlab(&stub)).await);
    assert_eq!(err.code(), Some(&ErrorCode::InvalidToken));
    let stub = Stub::new(|_| json(500, r#"{"message":"500 Internal Server Error"}"#));
    assert_http_status(&expect_err(id_email(&gitlab(&stub)).await), 500);
    let stub = Stub::new(|_| json(200, r#"{"username":"alice"}"#));
    assert_malformed(&expect_err(id_email(&gitlab(&stub)).await), "`id`");
    let stub = Stub::with_limit(
        |_| json(200, &format!(r#"{{"id":1,"bio":"{}"}}"#, "x".repeat(4096))),
        Some(1024),
    );
    assert!(matches!(
        expect_err(id_email(&gitlab(&stub)).await),
        Error::BodyTooLarge { limit: 1024 }
    ));
}

/// A real HTTP server on loopback answering GitLab's `/api/v4/user`, counting requests and
/// recording the Authorization header of each.
async fn loopback_gitlab() -> (
    SocketAddr,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<Option<String>>>>,
) {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let auths = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count2, auths2) = (count.clone(), auths.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (count, auths) = (count2.clone(), auths2.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    count.fetch_add(1, Ordering::SeqCst);
                    auths.lock().unwrap().push(
                        request
                            .headers()
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned()),
                    );
                    let body = match request.uri().path() {
                        "/gitlab/api/v4/user" => r#"{"id":7,"email":"dev@example.com"}"#,
                        _ => r#"{"message":"404 Not Found"}"#,
                    };
                    async move {
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, count, auths)
}

#[tokio::test]
async fn gitlab_over_a_real_loopback_server() {
    let (addr, count, auths) = loopback_gitlab().await;
    let gitlab = GitLab::builder("gl-app", "gl-s3cret")
        .base_url(format!("http://{addr}/gitlab"))
        .http_client(HttpClient::hyper_builder().no_proxy().build().unwrap())
        .build()
        .unwrap();
    let user = id_email(&gitlab).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "7".into(),
            email: Some("dev@example.com".into())
        }
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(*auths.lock().unwrap(), [Some(format!("Bearer {ACCESS_TOKEN}"))]);
}

// ---------------------------------------------------------------------------------------------
// Generic OAuth 2.0 and OpenID

fn generic(stub: &Stub) -> tower_oauth2::provider::generic::OAuth2ProviderBuilder {
    OAuth2Provider::builder(
        ClientAuth::client_secret_basic("app", "s3cret"),
        "https://auth.example.com/authorize",
        "https://auth.example.com/token",
    )
    .http_client(stub.http.clone())
}

#[tokio::test]
async fn generic_oauth2_reads_the_fields_it_is_told() {
    let stub = Stub::new(|_| {
        json(
            200,
            r#"{"data":{"id":2244994945,"contact":{"mail":"a@example.com"}},"extra":1}"#,
        )
    });
    let provider = generic(&stub)
        .user_url("https://api.example.com/2/users/me")
        .id_field("data.id")
        .email_field("data.contact.mail")
        .param("duration", "permanent")
        .scopes("users.read")
        .build()
        .unwrap();
    let user = id_email(&provider).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "2244994945".into(),
            email: Some("a@example.com".into())
        }
    );
    assert_bearer_only_to(&stub.seen(), "api.example.com");
    let login = provider
        .authorization_request("https://app.example.com/cb")
        .build()
        .unwrap();
    let pairs: Vec<(String, String)> = login.url().query_pairs().into_owned().collect();
    assert!(pairs.contains(&("duration".into(), "permanent".into())));
    assert!(pairs.contains(&("scope".into(), "users.read".into())));

    // Defaults `id` / `email`; a missing e-mail is none.
    let stub = Stub::new(|_| json(200, r#"{"id":"u-1"}"#));
    let provider = generic(&stub)
        .user_url("https://api.example.com/me")
        .build()
        .unwrap();
    assert_eq!(
        id_email(&provider).await.unwrap(),
        IdEmail {
            id: "u-1".into(),
            email: None
        }
    );
}

#[tokio::test]
async fn generic_oauth2_errors_are_typed() {
    let no_user_url = generic(&Stub::new(|_| json(200, "{}"))).build().unwrap();
    assert!(matches!(
        expect_err(id_email(&no_user_url).await),
        Error::NoEndpoint { endpoint: "userinfo" }
    ));
    let stub = Stub::new(|_| json(200, r#"{"data":{"name":"x"}}"#));
    let provider = generic(&stub)
        .user_url("https://api.example.com/me")
        .id_field("data.id")
        .build()
        .unwrap();
    assert_malformed(&expect_err(id_email(&provider).await), "`data.id`");
    let stub = Stub::new(|_| json(200, r#"{"id":1,"email":{"value":"a@example.com"}}"#));
    let provider = generic(&stub)
        .user_url("https://api.example.com/me")
        .build()
        .unwrap();
    assert_malformed(&expect_err(id_email(&provider).await), "`email`");
    let stub = Stub::new(|_| json(401, r#"{"error":"invalid_token","error_description":"bad"}"#));
    let provider = generic(&stub)
        .user_url("https://api.example.com/me")
        .build()
        .unwrap();
    assert_eq!(
        expect_err(id_email(&provider).await).code(),
        Some(&ErrorCode::InvalidToken)
    );
    let stub = Stub::new(|_| json(502, "<html>"));
    let provider = generic(&stub)
        .user_url("https://api.example.com/me")
        .build()
        .unwrap();
    assert_http_status(&expect_err(id_email(&provider).await), 502);
    // An error object with HTTP 200.
    let stub = Stub::new(|_| json(200, r#"{"error":"insufficient_scope"}"#));
    let provider = generic(&stub)
        .user_url("https://api.example.com/me")
        .build()
        .unwrap();
    assert_eq!(
        expect_err(id_email(&provider).await).code(),
        Some(&ErrorCode::from("insufficient_scope"))
    );
    for bad in ["", "a..b", ".id"] {
        let err = generic(&stub).id_field(bad).build().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad:?}");
    }
    let err = generic(&stub)
        .user_url("http://api.example.com/me")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InsecureUrl { .. }));
}

const OP: &str = "https://id.example.com";

fn openid_stub(userinfo: &'static str) -> Stub {
    openid_stub_answering(200, userinfo)
}

/// [`openid_stub`] whose userinfo endpoint answers with `status`.
fn openid_stub_answering(status: u16, userinfo: &'static str) -> Stub {
    Stub::new(move |seen| match seen.path.as_str() {
        "/.well-known/openid-configuration" => json(
            200,
            &format!(
                r#"{{"issuer":"{OP}","authorization_endpoint":"{OP}/authorize","token_endpoint":"{OP}/token",
                "userinfo_endpoint":"https://userinfo.example.com/userinfo","jwks_uri":"{OP}/jwks"}}"#
            ),
        ),
        "/userinfo" => json(status, userinfo),
        _ => json(404, "{}"),
    })
}

async fn openid(stub: &Stub) -> OpenIdProvider {
    bounded(
        OpenIdProvider::builder(ClientAuth::client_secret_basic("app", "s3cret"))
            .http_client(stub.http.clone())
            .discover(OP),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn openid_discovers_and_reads_userinfo() {
    let stub = openid_stub(r#"{"sub":"248289761001","email":"jane@example.com","email_verified":true}"#);
    let provider = openid(&stub).await;
    let user = id_email(&provider).await.unwrap();
    assert_eq!(
        user,
        IdEmail {
            id: "248289761001".into(),
            email: Some("jane@example.com".into())
        }
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/.well-known/openid-configuration");
    assert_eq!(seen[0].authorization(), None);
    assert_bearer_only_to(&seen[1..], "userinfo.example.com");
    let login = provider
        .authorization_request("https://app.example.com/cb")
        .build()
        .unwrap();
    assert!(login
        .url()
        .as_str()
        .starts_with("https://id.example.com/authorize?"));
    assert!(login
        .url()
        .query_pairs()
        .any(|(k, v)| k == "scope" && v == "openid email profile"));
}

#[tokio::test]
async fn openid_drops_an_unverified_email_and_types_errors() {
    let stub = openid_stub(r#"{"sub":"1","email":"jane@example.com","email_verified":false}"#);
    assert_eq!(
        id_email(&openid(&stub).await).await.unwrap(),
        IdEmail {
            id: "1".into(),
            email: None
        }
    );
    let stub = openid_stub(r#"{"sub":"1","email":7}"#);
    assert_malformed(&expect_err(id_email(&openid(&stub).await).await), "`email`");
    let stub = openid_stub_answering(401, r#"{"error":"invalid_token","error_description":"expired"}"#);
    assert_eq!(
        expect_err(id_email(&openid(&stub).await).await).code(),
        Some(&ErrorCode::InvalidToken)
    );
    let stub = openid_stub_answering(500, "<html>down</html>");
    assert_http_status(&expect_err(id_email(&openid(&stub).await).await), 500);
    let stub = openid_stub(r#"{"email":"jane@example.com"}"#);
    assert_malformed(&expect_err(id_email(&openid(&stub).await).await), "sub");
    // No userinfo endpoint in the document: refused when the provider is built.
    let stub = Stub::new(|_| {
        json(
            200,
            &format!(
                r#"{{"issuer":"{OP}","authorization_endpoint":"{OP}/authorize","token_endpoint":"{OP}/token"}}"#
            ),
        )
    });
    let err = expect_err(
        bounded(
            OpenIdProvider::builder(ClientAuth::none("app"))
                .http_client(stub.http.clone())
                .discover(OP),
        )
        .await,
    );
    assert!(matches!(err, Error::NoEndpoint { endpoint: "userinfo" }));
}

// ---------------------------------------------------------------------------------------------
// All of them, behind one type

#[tokio::test]
async fn every_provider_works_as_a_trait_object() {
    let stub = Stub::new(|seen| {
        let body = match seen.path.as_str() {
            "/user" | "/api/v4/user" => r#"{"id":1,"email":"a@example.com"}"#,
            "/v1/userinfo" => r#"{"sub":"1","email":"a@example.com","email_verified":true}"#,
            "/v1.0/me" => r#"{"id":"1","mail":"x@elsewhere.example","userPrincipalName":"a@example.com"}"#,
            "/api/users/@me" => r#"{"id":"1","email":"a@example.com","verified":true}"#,
            "/v21.0/me" => r#"{"id":"1","email":"a@example.com"}"#,
            _ => return json(404, "{}"),
        };
        json(200, body)
    });
    let http = stub.http.clone();
    let providers: Vec<Box<dyn Provider>> = vec![
        Box::new(
            GitHub::builder("c", SECRET)
                .http_client(http.clone())
                .build()
                .unwrap(),
        ),
        Box::new(
            Google::builder("c", SECRET)
                .http_client(http.clone())
                .build()
                .unwrap(),
        ),
        Box::new(
            Microsoft::builder("c", SECRET)
                .http_client(http.clone())
                .build()
                .unwrap(),
        ),
        Box::new(
            Discord::builder("c", SECRET)
                .http_client(http.clone())
                .build()
                .unwrap(),
        ),
        Box::new(
            Facebook::builder("c", SECRET)
                .http_client(http.clone())
                .build()
                .unwrap(),
        ),
        Box::new(
            GitLab::builder("c", SECRET)
                .http_client(http.clone())
                .build()
                .unwrap(),
        ),
    ];
    for provider in &providers {
        let user = id_email(provider.as_ref()).await.unwrap();
        assert_eq!(
            user,
            IdEmail {
                id: "1".into(),
                email: Some("a@example.com".into())
            },
            "{provider:?}"
        );
        // Debug never shows the client secret.
        assert!(!format!("{provider:?}").contains(SECRET));
    }
    assert_eq!(stub.seen().len(), providers.len());
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(&providers);
}

#[tokio::test]
async fn every_provider_logs_in_at_its_token_endpoint_with_its_credentials() {
    let stub = Stub::new(|seen| {
        if seen.method == http::Method::POST {
            json(
                200,
                r#"{"access_token":"user-access-t0ken","token_type":"Bearer","expires_in":3600,"refresh_token":"r1"}"#,
            )
        } else {
            json(404, "{}")
        }
    });
    let http = stub.http.clone();
    let cases: Vec<(Box<dyn Provider>, &str)> = vec![
        (
            Box::new(
                GitHub::builder("c", SECRET)
                    .http_client(http.clone())
                    .build()
                    .unwrap(),
            ),
            "https://github.com/login/oauth/access_token",
        ),
        (
            Box::new(
                // Without `openid`: this stand-in sends no ID token, which an `openid` login
                // refuses (IdTokenError::Missing); ID tokens are verified in the OpenID
                // provider's login test.
                Google::builder("c", SECRET)
                    .offline()
                    .scopes("email profile")
                    .http_client(http.clone())
                    .build()
                    .unwrap(),
            ),
            "https://oauth2.googleapis.com/token",
        ),
        (
            Box::new(
                Microsoft::builder("c", SECRET)
                    .tenant("consumers")
                    .http_client(http.clone())
                    .build()
                    .unwrap(),
            ),
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/token",
        ),
        (
            Box::new(
                Discord::builder("c", SECRET)
                    .http_client(http.clone())
                    .build()
                    .unwrap(),
            ),
            "https://discord.com/api/oauth2/token",
        ),
        (
            Box::new(
                Facebook::builder("c", SECRET)
                    .http_client(http.clone())
                    .build()
                    .unwrap(),
            ),
            "https://graph.facebook.com/v21.0/oauth/access_token",
        ),
        (
            Box::new(
                GitLab::builder("c", SECRET)
                    .http_client(http.clone())
                    .build()
                    .unwrap(),
            ),
            "https://gitlab.com/oauth/token",
        ),
    ];
    for (i, (provider, token_url)) in cases.iter().enumerate() {
        let login = log_in(provider.as_ref(), "the-code").await.unwrap();
        assert_eq!(login.token().access_token().expose(), ACCESS_TOKEN);
        // The refresh token continues as a source at the same token endpoint.
        assert!(login.refresh_token().is_ok());
        let seen = &stub.seen()[i];
        assert_eq!(seen.uri, *token_url, "{provider:?}");
        assert_eq!(seen.field("grant_type"), Some("authorization_code"));
        assert_eq!(seen.field("client_id"), Some("c"));
        assert_eq!(seen.field("client_secret"), Some(SECRET));
        assert!(seen.field("code_verifier").is_some());
    }
}

#[tokio::test]
async fn google_asks_for_openid_with_a_nonce_and_microsoft_does_not() {
    let stub = Stub::new(|_| json(500, "{}"));
    let google = google(&stub).build().unwrap();
    let (url, pending) = google
        .authorization_request("https://app.example.com/cb")
        .build()
        .unwrap()
        .into_parts();
    assert!(url
        .query_pairs()
        .any(|(k, v)| k == "nonce" && Some(v.as_ref()) == pending.nonce().map(|n| n.expose())));
    let microsoft = microsoft(&stub, "common");
    let (url, pending) = microsoft
        .authorization_request("https://app.example.com/cb")
        .build()
        .unwrap()
        .into_parts();
    assert!(!url.query_pairs().any(|(k, _)| k == "nonce"));
    assert!(pending.nonce().is_none());
}

/// An OpenID provider (feature `jwt`): discovery, then a login whose token response carries an
/// ES256 ID token with the request's nonce, then `id_email` from userinfo, whose `sub` must be
/// the ID token's.
#[cfg(feature = "jwt")]
mod openid_login {
    use std::sync::Mutex;
    use std::time::{SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A stand-in OpenID provider signing its ID tokens with a new P-256 key; `userinfo_sub`
    /// is the `sub` its userinfo endpoint answers, the ID token's is `user-7`.
    fn provider_stub(userinfo_sub: &'static str, nonce: Arc<Mutex<Option<String>>>) -> Stub {
        let pair = rcgen::KeyPair::generate().unwrap();
        let point = pair.public_key_raw(); // 0x04 || x || y
        let jwk = json!({"kty":"EC","crv":"P-256","kid":"k1","x":b64(&point[1..33]),"y":b64(&point[33..])});
        let key = jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der());
        Stub::new(move |seen| match seen.path.as_str() {
            "/.well-known/openid-configuration" => json(
                200,
                &json!({"issuer": OP, "authorization_endpoint": format!("{OP}/authorize"),
                    "token_endpoint": format!("{OP}/token"), "userinfo_endpoint": format!("{OP}/userinfo"),
                    "jwks_uri": format!("{OP}/jwks"), "id_token_signing_alg_values_supported": ["ES256"]})
                .to_string(),
            ),
            "/jwks" => json(200, &json!({"keys": [jwk]}).to_string()),
            "/token" => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
                let claims = json!({"iss": OP, "sub": "user-7", "aud": "app", "iat": now, "exp": now + 300,
                    "nonce": nonce.lock().unwrap().clone()});
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                header.kid = Some("k1".to_owned());
                let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
                json(
                    200,
                    &json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
                        "id_token": id_token})
                    .to_string(),
                )
            }
            "/userinfo" => json(
                200,
                &json!({"sub": userinfo_sub, "email": "alice@example.com", "email_verified": true})
                    .to_string(),
            ),
            _ => json(404, "{}"),
        })
    }

    async fn login_and_id_email(userinfo_sub: &'static str) -> (Login, Result<IdEmail, Error>) {
        let nonce = Arc::new(Mutex::new(None));
        let stub = provider_stub(userinfo_sub, nonce.clone());
        let provider = openid(&stub).await;
        let (url, pending) = provider
            .authorization_request("https://app.example.com/cb")
            .build()
            .unwrap()
            .into_parts();
        let sent_nonce = url
            .query_pairs()
            .find(|(k, _)| k == "nonce")
            .map(|(_, v)| v.into_owned());
        assert!(sent_nonce.is_some(), "an OpenID request carries a nonce");
        *nonce.lock().unwrap() = sent_nonce;
        let callback = Callback::from_query(&format!("code=c0de&state={}", pending.state()));
        let login = bounded(provider.client().exchange_code(&pending, &callback))
            .await
            .unwrap();
        let user = bounded(provider.id_email(login.token())).await;
        (login, user)
    }

    #[tokio::test]
    async fn a_login_verifies_the_id_token_and_id_email_agrees_with_it() {
        let (login, user) = login_and_id_email("user-7").await;
        assert_eq!(login.id_token().unwrap().claims().subject(), "user-7");
        assert_eq!(
            user.unwrap(),
            IdEmail {
                id: "user-7".into(),
                email: Some("alice@example.com".into())
            }
        );
    }

    #[tokio::test]
    async fn userinfo_about_another_user_than_the_id_token_is_refused() {
        let (_, user) = login_and_id_email("someone-else").await;
        assert!(matches!(user, Err(Error::UserInfoSubjectMismatch)), "{user:?}");
    }
}
