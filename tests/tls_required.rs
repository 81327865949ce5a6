//! TLS required (RFC 6749 §3.2, RFC 9700 §2.6): every endpoint URL is `https`, or plain `http`
//! on a loopback host only (`127.0.0.0/8`, `::1`, `localhost`, `*.localhost`). Anything else is
//! `Error::InsecureUrl` when the endpoint is built, naming the URL without credentials, query or
//! fragment; `dangerous_allow_insecure_http` lets a test rig through. The loopback URLs are used
//! for real, over HTTP against the in-process authorization server.
#![cfg(feature = "hyper-client")]

#[path = "support/auth_server.rs"]
mod auth_server;
#[path = "support/proxy.rs"]
mod proxy;

use std::time::Duration;

use auth_server::{AuthServer, ClientAuthMethod, DevicePoll};
use proxy::Proxy;
use tokio::net::{TcpListener, TcpStream};
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{ClientAuth, ClientCredentials, DeviceCode, Error, HttpClient, Token, TokenEndpoint};

const CLIENT: &str = "tls-client";
const SECRET: &str = "tls-secret";

async fn server() -> AuthServer {
    let server = AuthServer::start().await;
    server.add_client(CLIENT, Some(SECRET), ClientAuthMethod::Basic);
    server.add_client("device-client", None, ClientAuthMethod::None);
    server
}

/// A direct HTTP client: the proxy environment plays no part.
fn direct() -> HttpClient {
    HttpClient::hyper_builder()
        .no_proxy()
        .build()
        .expect("http client")
}

fn endpoint(url: &str) -> Result<TokenEndpoint, Error> {
    TokenEndpoint::builder(url, ClientAuth::client_secret_basic(CLIENT, SECRET))
        .http_client(direct())
        .build()
}

async fn fetch(endpoint: TokenEndpoint) -> Token {
    tokio::time::timeout(Duration::from_secs(20), ClientCredentials::new(endpoint).fetch())
        .await
        .expect("the token request hangs")
        .expect("a token")
}

/// The URL an `Error::InsecureUrl` names; panics on any other outcome.
fn insecure_url<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::InsecureUrl { url }) => url,
        other => panic!("expected Error::InsecureUrl, got {other:?}"),
    }
}

/// A TCP forwarder listening on `[::1]`, to the server's IPv4 loopback address.
async fn ipv6_forwarder(to: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("[::1]:0").await.expect("bind [::1]:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn plain_http_on_loopback_is_accepted_and_works() {
    let server = server().await;
    let port = server.addr().port();
    let v6 = ipv6_forwarder(server.addr()).await;
    let urls = [
        server.token_url(), // http://127.0.0.1:PORT/token
        format!("http://localhost:{port}/token"),
        format!("http://[::1]:{}/token", v6.port()),
    ];
    for (n, url) in urls.iter().enumerate() {
        let endpoint = endpoint(url).unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert!(!endpoint.allows_insecure_http());
        let token = fetch(endpoint).await;
        assert!(!token.access_token().expose().is_empty());
        assert_eq!(server.token_requests(), n + 1, "{url}");
    }
}

#[tokio::test]
async fn every_loopback_spelling_is_accepted_and_nothing_else() {
    for url in [
        "http://127.0.0.1/token",
        "http://127.255.255.254:8080/token",
        "http://127.1/token",
        "http://[::1]/token",
        "http://[0:0:0:0:0:0:0:1]:9000/token",
        "http://localhost/token",
        "http://LOCALHOST:1234/token",
        "http://localhost./token",
        "http://auth.localhost/token",
        "https://auth.example.com/token",
        "https://10.0.0.1/token",
        "https://auth.example.com:8443/oauth2/token?tenant=a",
    ] {
        assert!(endpoint(url).is_ok(), "{url}");
    }
    for (url, shown) in [
        ("http://example.com/token", "http://example.com/token"),
        ("http://10.0.0.1/token", "http://10.0.0.1/token"),
        ("http://0.0.0.0:8080/token", "http://0.0.0.0:8080/token"),
        ("http://128.0.0.1/token", "http://128.0.0.1/token"),
        ("http://[::ffff:127.0.0.1]/token", "http://[::ffff:7f00:1]/token"),
        ("http://[::2]/token", "http://[::2]/token"),
        (
            "http://localhost.example.com/token",
            "http://localhost.example.com/token",
        ),
        ("http://127.0.0.1.nip.io/token", "http://127.0.0.1.nip.io/token"),
        ("http://notlocalhost/token", "http://notlocalhost/token"),
        // Credentials, query and fragment are never shown.
        ("http://user:pass@example.com/token", "http://example.com/token"),
        (
            "http://10.0.0.1:8080/t?client_secret=s3#frag",
            "http://10.0.0.1:8080/t",
        ),
    ] {
        let result = endpoint(url);
        let err = result.as_ref().map(|_| ()).unwrap_err().clone();
        assert_eq!(insecure_url(result), shown, "{url}");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(text.contains(shown), "{text}");
            for hidden in ["user", "pass", "client_secret", "s3", "frag"] {
                assert!(!text.contains(hidden), "{url}: {text}");
            }
        }
        assert!(!err.is_transient());
    }
}

#[tokio::test]
async fn the_opt_out_accepts_plain_http_anywhere() {
    for url in ["http://example.com/token", "http://10.0.0.1/token"] {
        let endpoint = TokenEndpoint::builder(url, ClientAuth::client_secret_basic(CLIENT, SECRET))
            .http_client(direct())
            .dangerous_allow_insecure_http()
            .build()
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert!(endpoint.allows_insecure_http());
        assert_eq!(endpoint.token_url().as_str(), url);
    }
    // Other refusals stay: the opt-out is about TLS only.
    for url in [
        "ftp://example.com/token",
        "http://me:pw@example.com/token",
        "/token",
    ] {
        let result = TokenEndpoint::builder(url, ClientAuth::none("cli"))
            .dangerous_allow_insecure_http()
            .build();
        assert!(matches!(result, Err(Error::Config(_))), "{url}: {result:?}");
    }
}

#[tokio::test]
async fn the_opt_out_works_over_http_to_a_host_that_is_not_loopback() {
    // `auth.test` is a name only the proxy resolves (to 127.0.0.1): to the crate it is a host
    // on the network, reached in clear text.
    let server = server().await;
    let proxy = Proxy::start().await;
    let url = format!("http://auth.test:{}/token", server.addr().port());
    let through_proxy = || {
        HttpClient::hyper_builder()
            .proxy(&proxy.url(), "")
            .expect("proxy")
            .build()
            .expect("client")
    };
    let refused = TokenEndpoint::builder(&url, ClientAuth::client_secret_basic(CLIENT, SECRET))
        .http_client(through_proxy())
        .build();
    assert_eq!(insecure_url(refused), url);
    assert_eq!(proxy.seen().len(), 0);
    assert_eq!(server.token_requests(), 0);

    let endpoint = TokenEndpoint::builder(&url, ClientAuth::client_secret_basic(CLIENT, SECRET))
        .http_client(through_proxy())
        .dangerous_allow_insecure_http()
        .build()
        .expect("opted out");
    fetch(endpoint).await;
    assert_eq!(server.token_requests(), 1);
    assert_eq!(proxy.seen().len(), 1);
    assert_eq!(proxy.seen()[0].target, url);
}

#[tokio::test]
async fn the_device_authorization_url_follows_the_same_rule() {
    let server = server().await;
    server.set_device_script(vec![DevicePoll::Approve]);
    let clock = ManualClock::new();
    let stamp = clock.clone();
    server.set_stamp(move || stamp.now());
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("device-client"))
        .http_client(direct())
        .clock(clock.clone())
        .build()
        .expect("loopback token endpoint");

    for (url, shown) in [
        ("http://example.com/device", "http://example.com/device"),
        ("http://u:p@10.0.0.1/device?x=1", "http://10.0.0.1/device"),
    ] {
        assert_eq!(insecure_url(DeviceCode::new(endpoint.clone(), url)), shown);
    }
    assert!(DeviceCode::new(endpoint.clone(), "https://auth.example.com/device").is_ok());
    assert!(DeviceCode::new(endpoint.clone(), "http://localhost/device").is_ok());

    // Loopback: a whole device login over plain http.
    let source = DeviceCode::new(endpoint, server.device_authorization_url())
        .expect("loopback device authorization URL")
        .on_user_code(|_| {});
    let token = tokio::time::timeout(Duration::from_secs(20), source.fetch())
        .await
        .expect("the device login hangs")
        .expect("a token");
    assert!(!token.access_token().expose().is_empty());
    assert_eq!(server.device_authorization_requests(), 1);
    assert_eq!(server.token_requests(), 1);

    // An endpoint that opted out lends the opt-out to its device authorization URL.
    let opted_out = TokenEndpoint::builder("http://10.0.0.1/token", ClientAuth::none("device-client"))
        .http_client(direct())
        .dangerous_allow_insecure_http()
        .build()
        .expect("opted out");
    let source = DeviceCode::new(opted_out, "http://10.0.0.1/device").expect("inherited opt-out");
    assert!(format!("{source:?}").contains("http://10.0.0.1/device"));
}
