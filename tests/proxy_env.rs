//! `HttpClient::hyper()`, the default transport, reads the proxy environment variables. The
//! variables are process-global: this binary holds this one test, which sets them itself, one
//! case after another, and builds a new client after each change (the variables are read when
//! the client is built).
#![cfg(feature = "hyper-client")]

#[path = "support/auth_server.rs"]
mod auth_server;
#[path = "support/proxy.rs"]
mod proxy;

use std::time::Duration;

use auth_server::AuthServer;
use base64::Engine as _;
use proxy::Proxy;
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{ClientAuth, ClientCredentials, Error, HttpClient, Token, TokenEndpoint};

const VARIABLES: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

fn set_only(vars: &[(&str, &str)]) {
    // SAFETY: this binary runs one test, on a current-thread runtime, and changes the
    // variables only between its cases, when no request is in flight: no other thread reads
    // the environment meanwhile.
    for name in VARIABLES.iter().chain(&["REQUEST_METHOD"]) {
        unsafe { std::env::remove_var(name) };
    }
    for (name, value) in vars {
        unsafe { std::env::set_var(name, value) };
    }
}

/// A fetch with the endpoint's default HTTP client (`HttpClient::hyper()`, built now).
async fn fetch_default(url: &str) -> Result<Token, Error> {
    // `auth.test` is not loopback as far as the crate can tell (only the proxy resolves it).
    let endpoint = TokenEndpoint::builder(url, ClientAuth::none("env-test"))
        .dangerous_allow_insecure_http()
        .clock(ManualClock::new())
        .build()
        .expect("endpoint");
    tokio::time::timeout(Duration::from_secs(20), ClientCredentials::new(endpoint).fetch())
        .await
        .expect("the token fetch hangs")
}

#[tokio::test]
async fn the_default_client_honours_the_proxy_environment() {
    let server = AuthServer::start().await;
    let proxy = Proxy::start().await;
    // A name only the proxy resolves (to 127.0.0.1): a loopback URL never goes to a proxy
    // from the environment (checked at the end).
    let url = format!("http://auth.test:{}/token", server.addr().port());
    let through_proxy = |n: usize| {
        assert_eq!(proxy.seen().len(), n, "{:?}", proxy.seen());
    };

    // Upper case, with credentials.
    set_only(&[("HTTP_PROXY", &proxy.url_with_credentials("svc", "pr%40xy"))]);
    fetch_default(&url).await.expect("HTTP_PROXY");
    through_proxy(1);
    let seen = proxy.seen().pop().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, url);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("svc:pr@xy")
    );
    assert_eq!(seen.proxy_authorization.as_deref(), Some(expected.as_str()));

    // Lower case, and ALL_PROXY as the fallback for both schemes.
    set_only(&[("http_proxy", &proxy.url())]);
    fetch_default(&url).await.expect("http_proxy");
    through_proxy(2);
    set_only(&[("ALL_PROXY", &proxy.url())]);
    fetch_default(&url).await.expect("ALL_PROXY");
    through_proxy(3);

    // HTTPS_PROXY is for https URLs only.
    set_only(&[("HTTPS_PROXY", &proxy.url())]);
    let err = fetch_default(&url)
        .await
        .expect_err("sent direct to a name no resolver knows");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    through_proxy(3);

    // NO_PROXY: a domain, an IP, a CIDR block, `*`, and the lower-case name. A direct
    // request to auth.test fails (no resolver knows it), which shows it went direct.
    for (name, list) in [
        ("NO_PROXY", "auth.test"),
        ("NO_PROXY", "example.com, .test"),
        ("no_proxy", "auth.test"),
    ] {
        set_only(&[("HTTP_PROXY", &proxy.url()), (name, list)]);
        let err = fetch_default(&url)
            .await
            .expect_err("sent direct to a name no resolver knows");
        assert!(matches!(err, Error::Transport(_)), "{name}={list}: {err:?}");
        through_proxy(3);
    }
    let loopback = server.token_url();
    for (name, list) in [
        ("NO_PROXY", "127.0.0.1"),
        ("NO_PROXY", "example.com,127.0.0.0/8"),
        ("NO_PROXY", "*"),
        ("no_proxy", "127.0.0.1"),
    ] {
        set_only(&[("HTTP_PROXY", &proxy.url()), (name, list)]);
        fetch_default(&loopback)
            .await
            .unwrap_or_else(|e| panic!("{name}={list}: {e:?}"));
        through_proxy(3);
    }

    // Loopback destinations never go to a proxy from the environment, even without NO_PROXY:
    // a proxy cannot reach this machine's 127.0.0.1 (a demo or test server, a sidecar).
    for loopback in [
        server.token_url(),
        format!("http://localhost:{}/token", server.addr().port()),
    ] {
        set_only(&[("HTTP_PROXY", &proxy.url())]);
        fetch_default(&loopback).await.expect("loopback goes direct");
        through_proxy(3);
    }

    // An explicit choice wins over the environment.
    set_only(&[("HTTP_PROXY", &proxy.url())]);
    let direct = HttpClient::hyper_builder().no_proxy().build().unwrap();
    let endpoint = TokenEndpoint::builder(loopback.as_str(), ClientAuth::none("env-test"))
        .http_client(direct)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    ClientCredentials::new(endpoint)
        .fetch()
        .await
        .expect("no_proxy()");
    through_proxy(3);

    // A SOCKS proxy is refused, saying why, rather than silently bypassed.
    set_only(&[("ALL_PROXY", "socks4://127.0.0.1:9")]);
    let err = fetch_default(&url).await.expect_err("socks4");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(format!("{err:?}").contains("socks4"), "{err:?}");

    assert_eq!(server.token_requests(), 10);
    set_only(&[]);
}
