//! Mutual TLS client authentication (RFC 8705 §2) through the default hyper transport: an
//! in-process `https` token endpoint (certificates made at test time with rcgen) that
//! requires a client certificate signed by its client CA, and records the certificate each
//! request came with and the form it carried.
#![cfg(feature = "hyper-client")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tower_oauth2::{ClientAuth, ClientCredentials, Error, HttpClient, Token, TokenEndpoint};

#[path = "support/keys.rs"]
mod keys;
#[path = "support/proxy.rs"]
mod proxy;

const LIMIT: Duration = Duration::from_secs(20);

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A client certificate for `name` signed by `issuer`: (certificate PEM, key PEM, certificate DER).
fn client_cert(name: &str, issuer: &CertifiedIssuer<'static, KeyPair>) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// A TLS acceptor for `127.0.0.1` with a certificate from a new CA named `ca_name` (its PEM is
/// returned, for the client to trust), that asks clients for a certificate signed by
/// `client_ca` and, if `required`, refuses those without one.
fn tls_acceptor(
    ca_name: &str,
    client_ca: &CertifiedIssuer<'static, KeyPair>,
    required: bool,
) -> (tokio_rustls::TlsAcceptor, String) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_ca = ca(ca_name);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &server_ca)
        .unwrap();
    let mut client_roots = rustls::RootCertStore::empty();
    client_roots.add(client_ca.der().clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone());
    let verifier = if required {
        verifier
    } else {
        verifier.allow_unauthenticated()
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier.build().unwrap())
        .with_single_cert(
            vec![leaf.der().clone(), server_ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), server_ca.pem())
}

/// What the token endpoint saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    peer_certificate: Option<Vec<u8>>,
    authorization: Option<String>,
    form: String,
}

/// An `https` token endpoint on loopback that requires a client certificate signed by
/// `client_ca`, and issues a token to every request that gets through the handshake.
struct MtlsEndpoint {
    addr: SocketAddr,
    server_ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    handshakes_failed: Arc<Mutex<u32>>,
}

impl MtlsEndpoint {
    async fn start(client_ca: &CertifiedIssuer<'static, KeyPair>) -> MtlsEndpoint {
        let (acceptor, server_ca_pem) = tls_acceptor("tower-oauth2 test server CA", client_ca, true);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handshakes_failed = Arc::new(Mutex::new(0));
        let (record, failed) = (seen.clone(), handshakes_failed.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, record, failed) = (acceptor.clone(), record.clone(), failed.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(stream).await {
                        Ok(tls) => tls,
                        Err(_) => {
                            *failed.lock().unwrap() += 1;
                            return;
                        }
                    };
                    let peer_certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|cert| cert.to_vec());
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let (record, peer_certificate) = (record.clone(), peer_certificate.clone());
                            async move {
                                let authorization = request
                                    .headers()
                                    .get(http::header::AUTHORIZATION)
                                    .map(|v| v.to_str().unwrap_or_default().to_owned());
                                let body = request.into_body().collect().await.unwrap().to_bytes();
                                record.lock().unwrap().push(Seen {
                                    peer_certificate,
                                    authorization,
                                    form: String::from_utf8_lossy(&body).into_owned(),
                                });
                                let token = r#"{"access_token":"bound-token","token_type":"Bearer","expires_in":300}"#;
                                let response = http::Response::builder()
                                    .header(http::header::CONTENT_TYPE, "application/json")
                                    .body(Full::new(Bytes::from_static(token.as_bytes())))
                                    .unwrap();
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        MtlsEndpoint {
            addr,
            server_ca_pem,
            seen,
            handshakes_failed,
        }
    }

    fn token_url(&self) -> String {
        format!("https://{}/token", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn fetch(server: &MtlsEndpoint, http: HttpClient, auth: ClientAuth) -> Result<Token, Error> {
    let endpoint = TokenEndpoint::builder(server.token_url(), auth)
        .http_client(http)
        .build()
        .expect("endpoint");
    tokio::time::timeout(LIMIT, ClientCredentials::new(endpoint).fetch())
        .await
        .expect("the token fetch hangs")
}

/// A hyper client that trusts `server`'s CA and presents `certificate` (chain PEM, key PEM).
fn trusting_client(server: &MtlsEndpoint, certificate: Option<(&[u8], &[u8])>) -> HttpClient {
    let mut builder = HttpClient::hyper_builder()
        .no_proxy()
        .add_root_certificates_pem(server.server_ca_pem.as_bytes())
        .unwrap();
    if let Some((chain, key)) = certificate {
        builder = builder.client_certificate(chain, key).unwrap();
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn with_a_client_certificate_the_token_endpoint_authenticates_the_client() {
    let client_ca = ca("tower-oauth2 test client CA");
    let server = MtlsEndpoint::start(&client_ca).await;
    let (cert_pem, key_pem, cert_der) = client_cert("mtls-client", &client_ca);
    // The chain: the client's certificate, then its CA's (as a file often holds both).
    let chain = format!("{cert_pem}{}", client_ca.pem());
    let http = trusting_client(&server, Some((chain.as_bytes(), key_pem.as_bytes())));

    let token = fetch(&server, http.clone(), ClientAuth::tls_client_auth("mtls-client"))
        .await
        .unwrap();
    assert_eq!(token.access_token().expose(), "bound-token");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].peer_certificate.as_deref(), Some(cert_der.as_slice()));
    // RFC 8705 §2: the body names the client; nothing else authenticates it.
    assert_eq!(
        seen[0].form,
        "grant_type=client_credentials&client_id=mtls-client"
    );
    assert_eq!(seen[0].authorization, None);

    // self_signed_tls_client_auth sends the same: the certificate is the transport's.
    fetch(
        &server,
        http,
        ClientAuth::self_signed_tls_client_auth("mtls-client"),
    )
    .await
    .unwrap();
    assert_eq!(
        server.seen()[1].form,
        "grant_type=client_credentials&client_id=mtls-client"
    );
    assert_eq!(*server.handshakes_failed.lock().unwrap(), 0);
}

/// An `https` forward proxy: a TLS front that asks every client for a certificate (signed by
/// `client_ca`, which it would accept, but does not require) and records what it got, in
/// front of the plain proxy of tests/support/proxy.rs.
struct TlsProxy {
    addr: SocketAddr,
    ca_pem: String,
    inner: proxy::Proxy,
    certificates: Arc<Mutex<Vec<Option<Vec<u8>>>>>,
}

impl TlsProxy {
    async fn start(client_ca: &CertifiedIssuer<'static, KeyPair>) -> TlsProxy {
        let (acceptor, proxy_ca_pem) = tls_acceptor("tower-oauth2 test proxy CA", client_ca, false);
        let inner = proxy::Proxy::start().await;
        let inner_addr = inner.addr();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let certificates = Arc::new(Mutex::new(Vec::new()));
        let record = certificates.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, record) = (acceptor.clone(), record.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|cert| cert.to_vec());
                    record.lock().unwrap().push(certificate);
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(inner_addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
        TlsProxy {
            addr,
            ca_pem: proxy_ca_pem,
            inner,
            certificates,
        }
    }
}

/// RFC 8705 through an `https` proxy: the certificate reaches the token endpoint through the
/// proxy's tunnel, and the proxy itself, which asks for one, never gets it.
#[tokio::test]
async fn the_client_certificate_goes_to_the_endpoint_never_to_an_https_proxy() {
    let client_ca = ca("tower-oauth2 test client CA");
    let server = MtlsEndpoint::start(&client_ca).await;
    let proxy = TlsProxy::start(&client_ca).await;
    let (cert_pem, key_pem, cert_der) = client_cert("mtls-client", &client_ca);
    let http = HttpClient::hyper_builder()
        .proxy(&format!("https://{}", proxy.addr), "")
        .unwrap()
        .add_root_certificates_pem(server.server_ca_pem.as_bytes())
        .unwrap()
        .add_root_certificates_pem(proxy.ca_pem.as_bytes())
        .unwrap()
        .client_certificate(cert_pem.as_bytes(), key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();

    let token = fetch(&server, http, ClientAuth::tls_client_auth("mtls-client"))
        .await
        .unwrap();
    assert_eq!(token.access_token().expose(), "bound-token");
    // Through the proxy: one tunnel to the endpoint.
    let tunnels = proxy.inner.seen();
    assert_eq!(tunnels.len(), 1, "{tunnels:?}");
    assert_eq!(tunnels[0].method, "CONNECT");
    assert_eq!(tunnels[0].target, server.addr.to_string());
    // The endpoint got the certificate; the proxy's handshake had none.
    assert_eq!(
        server.seen()[0].peer_certificate.as_deref(),
        Some(cert_der.as_slice())
    );
    assert_eq!(*proxy.certificates.lock().unwrap(), vec![None]);
}

#[tokio::test]
async fn without_a_client_certificate_the_request_fails_with_a_transport_error() {
    let client_ca = ca("tower-oauth2 test client CA");
    let server = MtlsEndpoint::start(&client_ca).await;
    let http = trusting_client(&server, None);
    let err = fetch(&server, http, ClientAuth::tls_client_auth("mtls-client"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(server.seen().is_empty(), "no request got through");

    // A certificate from a CA the server does not trust fares no better.
    let (cert_pem, key_pem, _) = client_cert("mtls-client", &ca("some other CA"));
    let http = trusting_client(&server, Some((cert_pem.as_bytes(), key_pem.as_bytes())));
    let err = fetch(&server, http, ClientAuth::tls_client_auth("mtls-client"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(server.seen().is_empty());
    assert!(*server.handshakes_failed.lock().unwrap() >= 2);
}

#[test]
fn bad_certificates_and_keys_are_config_errors_that_never_show_the_key() {
    let client_ca = ca("tower-oauth2 test client CA");
    let (cert_pem, key_pem, _) = client_cert("mtls-client", &client_ca);
    let (_, other_key_pem, _) = client_cert("someone-else", &client_ca);
    let key_body: String = key_pem.lines().nth(1).unwrap().to_owned();
    // The private scalars of both keys, not the PKCS#8 header every P-256 key shares.
    let private = [
        keys::ec_private_spellings(&key_pem),
        keys::ec_private_spellings(&other_key_pem),
    ]
    .concat();
    keys::assert_spellings_catch_the_key(&key_pem, &private);
    let builder = || HttpClient::hyper_builder();

    let (cert, key) = (cert_pem.as_bytes(), key_pem.as_bytes());
    let damaged = format!("-----BEGIN PRIVATE KEY-----\n{key_body}!!\n-----END PRIVATE KEY-----\n");
    let no_key: &[u8] = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let cases: [(&str, &[u8], &[u8], &str); 7] = [
        ("no certificate", b"", key, "no CERTIFICATE"),
        ("the key as the certificate", key, key, "no CERTIFICATE"),
        ("no key", cert, b"", "no private key"),
        ("the certificate as the key", cert, cert, "no private key"),
        ("a damaged key", cert, damaged.as_bytes(), "cannot be read"),
        ("a key that is no key", cert, no_key, "not a supported"),
        ("another key", cert, other_key_pem.as_bytes(), "does not match"),
    ];
    for (case, chain, key, expected) in cases {
        let err = builder().client_certificate(chain, key).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{case}: {err:?}");
        let text = format!("{err} {err:?}");
        assert!(text.contains(expected), "{case}: {text}");
        keys::assert_none_shown(&text, &private);
    }

    let ok = builder().client_certificate(cert, key).unwrap();
    let shown = format!("{ok:?}");
    assert!(shown.contains("client_certificate: true"), "{shown}");
    keys::assert_none_shown(&shown, &private);
    assert!(format!("{:?}", builder()).contains("client_certificate: false"));
    let http = ok.build().unwrap();
    keys::assert_none_shown(&format!("{http:?}"), &private);
}
