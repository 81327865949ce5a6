//! The default hyper transport's proxies and trust roots, and the reqwest adapter, over real
//! loopback HTTP: an in-process forward proxy (tests/support/proxy.rs) in front of the test
//! authorization server, and a TLS front (certificates made at test time with rcgen) for an
//! `https` token endpoint. None of these tests touches the process environment: the proxy is
//! set with `HyperClientBuilder::proxy` (tests/proxy_env.rs covers the environment).
#![cfg(feature = "hyper-client")]

#[path = "support/auth_server.rs"]
mod auth_server;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/raw_server.rs"]
mod raw_server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_server::AuthServer;
use base64::Engine as _;
use proxy::{Proxy, Seen, Socks5};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tower_oauth2::clock::ManualClock;
use tower_oauth2::{ClientAuth, ClientCredentials, Error, HttpClient, TlsRoots, Token, TokenEndpoint};

const LIMIT: Duration = Duration::from_secs(20);

async fn fetch(url: &str, http: HttpClient) -> Result<Token, Error> {
    let endpoint = TokenEndpoint::builder(url, ClientAuth::none("transport-test"))
        .http_client(http)
        .clock(ManualClock::new())
        .build()
        .expect("endpoint");
    tokio::time::timeout(LIMIT, ClientCredentials::new(endpoint).fetch())
        .await
        .expect("the token fetch hangs")
}

fn via(proxy_url: &str, no_proxy: &str) -> HttpClient {
    HttpClient::hyper_builder()
        .proxy(proxy_url, no_proxy)
        .expect("proxy URL")
        .build()
        .expect("client")
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A private CA and an `https` token endpoint whose certificate (for 127.0.0.1) it signed.
struct TlsEndpoint {
    addr: SocketAddr,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
}

impl TlsEndpoint {
    /// TLS on an ephemeral loopback port, each connection's plaintext relayed to `backend`.
    async fn start(backend: SocketAddr) -> TlsEndpoint {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tower-oauth2 test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsEndpoint {
            addr,
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
        }
    }

    fn token_url(&self) -> String {
        format!("https://{}/token", self.addr)
    }
}

/// A direct client that trusts the bundled roots and the CA in `pem`.
fn trusting(pem: &str) -> HttpClient {
    HttpClient::hyper_builder()
        .no_proxy()
        .add_root_certificates_pem(pem.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Proxies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn http_token_endpoint_is_reached_through_the_proxy_in_absolute_form() {
    let server = AuthServer::start().await;
    let proxy = Proxy::start().await;
    let token = fetch(&server.token_url(), via(&proxy.url(), ""))
        .await
        .expect("token");
    assert!(!token.access_token().expose().is_empty());
    assert_eq!(server.token_requests(), 1);
    assert_eq!(
        proxy.seen(),
        vec![Seen {
            method: "POST".to_owned(),
            target: server.token_url(),
            proxy_authorization: None,
        }]
    );
}

#[tokio::test]
async fn https_token_endpoint_is_reached_through_a_connect_tunnel() {
    let server = AuthServer::start().await;
    let tls = TlsEndpoint::start(server.addr()).await;
    let proxy = Proxy::start().await;
    let http = HttpClient::hyper_builder()
        .proxy(&proxy.url(), "")
        .unwrap()
        .add_root_certificates_pem(tls.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    fetch(&tls.token_url(), http).await.expect("token");
    assert_eq!(server.token_requests(), 1);
    assert_eq!(
        proxy.seen(),
        vec![Seen {
            method: "CONNECT".to_owned(),
            target: tls.addr.to_string(),
            proxy_authorization: None,
        }]
    );
}

#[tokio::test]
async fn an_https_proxy_is_reached_over_tls() {
    let server = AuthServer::start().await;
    let proxy = Proxy::start().await;
    // The proxy behind TLS (a certificate of another private CA); the token endpoint too.
    let proxy_tls = TlsEndpoint::start(proxy.addr()).await;
    let endpoint_tls = TlsEndpoint::start(server.addr()).await;
    let http = HttpClient::hyper_builder()
        .proxy(&format!("https://{}", proxy_tls.addr), "")
        .unwrap()
        .tls_roots(TlsRoots::CustomOnly)
        .add_root_certificates_pem(proxy_tls.ca_pem.as_bytes())
        .unwrap()
        .add_root_certificates_pem(endpoint_tls.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    fetch(&server.token_url(), http.clone())
        .await
        .expect("http via an https proxy");
    fetch(&endpoint_tls.token_url(), http)
        .await
        .expect("https via an https proxy");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("POST", server.token_url().as_str())
    );
    assert_eq!(seen[1].method, "CONNECT");
    assert_eq!(seen[1].target, endpoint_tls.addr.to_string());
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let server = AuthServer::start().await;
    let proxy = Proxy::start().await;
    // An IP, a CIDR block, the wildcard, and a list where the match is not first.
    for no_proxy in [
        "127.0.0.1",
        "127.0.0.0/8",
        "*",
        "example.com, .internal,127.0.0.1",
    ] {
        fetch(&server.token_url(), via(&proxy.url(), no_proxy))
            .await
            .unwrap_or_else(|e| panic!("NO_PROXY={no_proxy}: {e:?}"));
    }
    // A domain: `localhost` matches http://localhost:port.
    let by_name = format!("http://localhost:{}/token", server.addr().port());
    fetch(&by_name, via(&proxy.url(), "localhost"))
        .await
        .expect("token");
    assert_eq!(server.token_requests(), 5);
    assert_eq!(proxy.seen(), vec![], "the proxy was used for a NO_PROXY host");

    // A list that does not match sends the request through the proxy.
    fetch(&server.token_url(), via(&proxy.url(), "example.com,10.0.0.0/8"))
        .await
        .expect("token");
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn proxy_credentials_are_sent_for_absolute_form_and_connect() {
    let server = AuthServer::start().await;
    let tls = TlsEndpoint::start(server.addr()).await;
    // A password with characters that must be percent-encoded in the URL.
    let expected = basic("svc", "p@ss word");
    let proxy = Proxy::start_requiring(&expected).await;
    let proxy_url = proxy.url_with_credentials("svc", "p%40ss%20word");

    fetch(&server.token_url(), via(&proxy_url, ""))
        .await
        .expect("http via proxy");
    let http = HttpClient::hyper_builder()
        .proxy(&proxy_url, "")
        .unwrap()
        .add_root_certificates_pem(tls.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    fetch(&tls.token_url(), http).await.expect("https via proxy");

    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[1].method, "CONNECT");
    for s in &seen {
        assert_eq!(s.proxy_authorization.as_deref(), Some(expected.as_str()));
    }
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn rejected_proxy_credentials_do_not_leak_into_the_error() {
    let server = AuthServer::start().await;
    let tls = TlsEndpoint::start(server.addr()).await;
    let proxy = Proxy::start_requiring(&basic("svc", "right")).await;
    let http = HttpClient::hyper_builder()
        .proxy(&proxy.url_with_credentials("svc", "wrong-pr0xy-pass"), "")
        .unwrap()
        .add_root_certificates_pem(tls.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let err = fetch(&tls.token_url(), http).await.expect_err("407 on CONNECT");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    let mut text = format!("{err:?} {err}");
    let mut level: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = level {
        text.push_str(&format!(" / {e} / {e:?}"));
        level = e.source();
    }
    assert!(text.contains("proxy authorization required"), "{text}");
    assert!(!text.contains("wrong-pr0xy-pass"), "{text}");
    assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode("svc:wrong-pr0xy-pass")));
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test]
async fn proxy_down_is_a_transient_transport_error() {
    let server = AuthServer::start().await;
    // A port nobody listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy_url = format!("http://svc:s3cret-pass@{closed}");
    for url in [server.token_url(), "https://127.0.0.1:9/token".to_owned()] {
        let err = fetch(&url, via(&proxy_url, "")).await.expect_err("proxy down");
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
        assert!(err.is_transient(), "{err:?}");
        let mut text = format!("{err:?}");
        let mut level: Option<&dyn std::error::Error> = Some(&err);
        while let Some(e) = level {
            text.push_str(&format!(" / {e}"));
            level = e.source();
        }
        assert!(!text.contains("s3cret-pass"), "{text}");
    }
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test]
async fn no_proxy_ignores_any_proxy() {
    let server = AuthServer::start().await;
    let http = HttpClient::hyper_builder().no_proxy().build().unwrap();
    fetch(&server.token_url(), http).await.expect("token");
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn socks5h_leaves_name_resolution_to_the_proxy() {
    let server = AuthServer::start().await;
    let tls = TlsEndpoint::start(server.addr()).await;
    let socks = Socks5::start(None).await;
    let by_name = format!("http://localhost:{}/token", server.addr().port());
    fetch(&by_name, via(&socks.url("socks5h", None), ""))
        .await
        .expect("http via socks5h");
    // TLS runs end to end through the SOCKS tunnel.
    let http = HttpClient::hyper_builder()
        .proxy(&socks.url("socks5h", None), "")
        .unwrap()
        .add_root_certificates_pem(tls.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    fetch(&tls.token_url(), http).await.expect("https via socks5h");
    assert_eq!(
        socks.targets(),
        vec![
            format!("localhost:{}", server.addr().port()),
            tls.addr.to_string()
        ]
    );
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn socks5_resolves_names_locally() {
    let server = AuthServer::start().await;
    let socks = Socks5::start(None).await;
    let port = server.addr().port();
    let result = fetch(
        &format!("http://localhost:{port}/token"),
        via(&socks.url("socks5", None), ""),
    )
    .await;
    // The proxy is sent an address, not the name: the first one the client resolved.
    let first = tokio::net::lookup_host(("localhost", port))
        .await
        .unwrap()
        .next()
        .unwrap();
    assert_eq!(socks.targets(), vec![first.to_string()]);
    if first.is_ipv4() {
        // (The test server listens on 127.0.0.1 only.)
        result.expect("token");
        assert_eq!(server.token_requests(), 1);
    }
}

#[tokio::test]
async fn socks5_authenticates_with_the_url_credentials() {
    let server = AuthServer::start().await;
    let socks = Socks5::start(Some(("svc", "s0cks pass"))).await;
    let good = socks.url("socks5", Some(("svc", "s0cks%20pass")));
    fetch(&server.token_url(), via(&good, ""))
        .await
        .expect("socks5 with credentials");
    assert_eq!(socks.users(), vec!["svc".to_owned()]);
    assert_eq!(socks.targets(), vec![server.addr().to_string()]);

    let bad = socks.url("socks5", Some(("svc", "wr0ng-socks-pass")));
    let err = fetch(&server.token_url(), via(&bad, ""))
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_transient());
    let mut text = format!("{err:?}");
    let mut level: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = level {
        text.push_str(&format!(" / {e}"));
        level = e.source();
    }
    assert!(!text.contains("wr0ng-socks-pass"), "{text}");
    assert_eq!(server.token_requests(), 1);
}

#[test]
fn proxy_urls_are_checked_and_never_echoed() {
    for bad in [
        "socks4://user:hunter2@proxy:1080",
        "ftp://user:hunter2@proxy",
        "not a url hunter2",
        "http://user:hunter2@",
    ] {
        let err = HttpClient::hyper_builder().proxy(bad, "").expect_err(bad);
        assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }
}

#[test]
fn debug_output_hides_proxy_credentials() {
    let builder = HttpClient::hyper_builder()
        .proxy("http://svc:hunter2@proxy.internal:3128", "localhost")
        .unwrap();
    let text = format!("{builder:?}");
    assert!(text.contains("proxy.internal"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode("svc:hunter2")));
    let client = builder.build().unwrap();
    assert!(!format!("{client:?}").contains("hunter2"));
}

// ---------------------------------------------------------------------------------------------
// Trust roots
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_added() {
    let server = AuthServer::start().await;
    let tls = TlsEndpoint::start(server.addr()).await;

    // The bundled roots do not know the test CA.
    let err = fetch(
        &tls.token_url(),
        HttpClient::hyper_builder().no_proxy().build().unwrap(),
    )
    .await
    .expect_err("unknown CA");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    let mut chain = String::new();
    let mut level: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = level {
        chain.push_str(&format!("{e} / "));
        level = e.source();
    }
    assert!(chain.contains("UnknownIssuer"), "{chain}");
    assert_eq!(server.token_requests(), 0);

    // Added as PEM, on top of the bundled roots.
    fetch(&tls.token_url(), trusting(&tls.ca_pem))
        .await
        .expect("CA added as PEM");
    // Added as DER, alone.
    let only = HttpClient::hyper_builder()
        .no_proxy()
        .tls_roots(TlsRoots::CustomOnly)
        .add_root_certificate_der(tls.ca_der.to_vec())
        .build()
        .unwrap();
    fetch(&tls.token_url(), only).await.expect("CA added as DER");
    assert_eq!(server.token_requests(), 2);

    // Another CA's certificate does not make this one trusted.
    let other = TlsEndpoint::start(server.addr()).await;
    let err = fetch(&tls.token_url(), trusting(&other.ca_pem))
        .await
        .expect_err("another CA");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn unusable_root_certificates_are_configuration_errors() {
    let err = HttpClient::hyper_builder()
        .add_root_certificates_pem(b"no PEM here")
        .expect_err("no certificate");
    assert!(matches!(err, Error::Config(_)), "{err:?}");

    let err = HttpClient::hyper_builder()
        .add_root_certificate_der(b"not DER".to_vec())
        .build()
        .expect_err("garbage DER");
    assert!(matches!(err, Error::Config(_)), "{err:?}");

    let err = HttpClient::hyper_builder()
        .tls_roots(TlsRoots::CustomOnly)
        .build()
        .expect_err("no roots at all");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[cfg(feature = "platform-verifier")]
#[tokio::test]
async fn platform_verifier_trusts_an_added_ca() {
    let server = AuthServer::start().await;
    let tls = TlsEndpoint::start(server.addr()).await;
    let http = HttpClient::hyper_builder()
        .no_proxy()
        .tls_roots(TlsRoots::Platform)
        .add_root_certificates_pem(tls.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    fetch(&tls.token_url(), http).await.expect("token");
    let http = HttpClient::hyper_builder()
        .no_proxy()
        .tls_roots(TlsRoots::Platform)
        .build()
        .unwrap();
    let err = fetch(&tls.token_url(), http)
        .await
        .expect_err("not in the OS store");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(server.token_requests(), 1);
}

// ---------------------------------------------------------------------------------------------
// The reqwest adapter
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "reqwest")]
mod reqwest_adapter {
    use super::*;
    use auth_server::Scripted;
    use raw_server::RawServer;

    const TOKEN_JSON: &str =
        r#"{"access_token":"via-reqwest-token","token_type":"Bearer","expires_in":3600}"#;

    #[tokio::test]
    async fn the_applications_reqwest_client_fetches_the_token_through_its_own_proxy() {
        let server = AuthServer::start().await;
        let proxy = Proxy::start().await;
        let app_client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::http(proxy.url()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        server.push_token_response(Scripted::raw(200, "application/json", TOKEN_JSON));
        let token = fetch(&server.token_url(), HttpClient::reqwest(app_client))
            .await
            .expect("token");
        assert_eq!(token.access_token().expose(), "via-reqwest-token");
        assert_eq!(server.token_requests(), 1);
        assert_eq!(proxy.seen().len(), 1, "reqwest's own proxy setting was not used");
        assert_eq!(proxy.seen()[0].target, server.token_url());
    }

    #[tokio::test]
    async fn a_truncated_body_is_a_transient_transport_error_through_reqwest() {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n";
        let server = RawServer::start(format!("{head}{}", &TOKEN_JSON[..40])).await;
        let err = fetch(&server.url("/token"), HttpClient::reqwest(reqwest::Client::new()))
            .await
            .expect_err("truncated");
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "the connection closed before the response body was complete"
        );
    }

    #[tokio::test]
    async fn body_limit_and_retry_after_hold_through_reqwest() {
        let server = AuthServer::start().await;
        server.push_token_response(
            Scripted::json(503, serde_json::json!({"error": "temporarily_unavailable"}))
                .with_header("retry-after", "7"),
        );
        let err = fetch(&server.token_url(), HttpClient::reqwest(reqwest::Client::new()))
            .await
            .expect_err("503");
        assert!(err.is_transient());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

        server.push_token_response(Scripted::raw(200, "application/json", TOKEN_JSON));
        let small = HttpClient::reqwest(reqwest::Client::new()).with_max_body_size(16);
        let err = fetch(&server.token_url(), small).await.expect_err("too large");
        assert!(matches!(err, Error::BodyTooLarge { limit: 16 }), "{err:?}");
    }
}
