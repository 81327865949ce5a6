//! The default transport: hyper-util's client over hyper-rustls, with proxies from the
//! environment (or set explicitly) and a choice of trust roots. See [`HyperClientBuilder`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::Scheme;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tower::ServiceExt;

use super::{HttpClient, DEFAULT_TIMEOUT};
use crate::error::{BoxError, Error};

/// Which certificates [`HttpClient::hyper`] and [`HyperClientBuilder`] trust for `https`
/// token endpoints (and `https` proxies).
///
/// Certificates added with [`HyperClientBuilder::add_root_certificates_pem`] or
/// [`add_root_certificate_der`](HyperClientBuilder::add_root_certificate_der) are trusted in
/// addition, whichever is chosen.
///
/// ```
/// use tower_oauth2::{HttpClient, TlsRoots};
///
/// assert_eq!(TlsRoots::default(), TlsRoots::WebPki);
/// let client = HttpClient::hyper_builder().tls_roots(TlsRoots::WebPki).build()?;
/// # let _ = client;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// Mozilla's root certificates, compiled into the program (the `webpki-roots` crate). The
    /// default: the same on every machine, and it works where there is no OS trust store (a
    /// `scratch` container image, say). It does not know a company's private CA: add that
    /// with [`HyperClientBuilder::add_root_certificates_pem`], or use
    /// [`Platform`](TlsRoots::Platform).
    #[default]
    WebPki,
    /// The operating system's certificate verifier (the `rustls-platform-verifier` crate,
    /// cargo feature `platform-verifier`): the system trust store, with the certificates an
    /// administrator installed (on Linux, the files the distribution's CA bundle points to,
    /// as OpenSSL finds them; `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured). What curl and
    /// browsers on that machine trust.
    #[cfg(feature = "platform-verifier")]
    Platform,
    /// Only the certificates added with the builder: for a token endpoint behind a private
    /// CA that nothing else should be trusted for. Building fails if none was added.
    CustomOnly,
}

/// Where the token endpoint's requests go: straight to the server or through a proxy.
#[derive(Clone)]
enum ProxyChoice {
    /// The proxy environment variables, read when the client is built.
    Env,
    /// No proxy.
    Direct,
    /// An explicit proxy, with its exceptions.
    Explicit(Arc<ProxyRules>),
}

/// Builds the hyper-based [`HttpClient`] (cargo feature `hyper-client`, on by default):
/// proxies and trust roots. [`HttpClient::hyper`] is `HttpClient::hyper_builder().build()`.
///
/// **Proxies.** By default the proxy environment variables are honoured as curl and reqwest
/// honour them, read once when the client is built: `HTTPS_PROXY`/`https_proxy` for `https`
/// URLs, `HTTP_PROXY`/`http_proxy` for `http` URLs, `ALL_PROXY`/`all_proxy` for both when the
/// other is unset, and `NO_PROXY`/`no_proxy`, a comma-separated list of hosts to reach
/// directly: domains (`example.com` and `.example.com` both match the domain and its
/// subdomains), IP addresses, CIDR blocks (`10.0.0.0/8`), or `*` for all. A request to an
/// `https` URL goes through an HTTP `CONNECT` tunnel (TLS runs end to end with the token
/// endpoint); a request to an `http` URL is sent to the proxy in absolute form. Credentials
/// in the proxy URL (`http://user:password@proxy:3128`, percent-encoded) are sent as `Basic`
/// `Proxy-Authorization`. The proxy itself may be an `http://` or an `https://` URL, or a
/// SOCKS5 proxy: `socks5h://` (the proxy resolves host names) or `socks5://` (this client
/// resolves them), with optional `user:password@` (SOCKS5 username/password authentication)
/// and port 1080 by default. Other schemes (`socks4://`, ...) are not supported: a request
/// that would use one fails with a transport error that says so. As curl does, the variables
/// are ignored in a CGI process (`REQUEST_METHOD` set), where `HTTP_PROXY` could come from a
/// request header. Unlike curl, and as browsers do, loopback destinations (`localhost`,
/// `127.0.0.0/8`, `::1`) never go to a proxy from the environment, whatever `NO_PROXY` says: a
/// proxy cannot reach this machine's loopback interface, where local and test authorization
/// servers listen. An explicit [`proxy`](Self::proxy) is obeyed for every destination.
///
/// Proxy credentials never appear in this builder's or the client's `Debug` output, nor in
/// errors.
///
/// **Trust roots.** See [`TlsRoots`]: Mozilla's roots built in by default, the OS verifier
/// with feature `platform-verifier`, plus any CA certificates you add.
///
/// **Client certificate (mutual TLS).** [`client_certificate`](Self::client_certificate)
/// gives the client a certificate and private key, presented to the token endpoint when it
/// asks for one: for the `tls_client_auth` and `self_signed_tls_client_auth` client
/// authentication methods of RFC 8705 §2 ([`ClientAuth::tls_client_auth`](crate::ClientAuth::tls_client_auth),
/// [`ClientAuth::self_signed_tls_client_auth`](crate::ClientAuth::self_signed_tls_client_auth)),
/// where the TLS handshake authenticates the client and the form carries only its
/// `client_id`, or for a server behind a gateway that requires client certificates. It is
/// presented to the destination only, never to an `https` proxy. Certificate-bound access
/// tokens (RFC 8705 §3) then come bound to it: the resource server must see the same
/// certificate, which is the application's HTTP client's business, not this one's.
///
/// The client speaks HTTP/1.1 and HTTP/2 (negotiated with ALPN), uses rustls with the `ring`
/// provider, follows no redirects, and has a [30 s](DEFAULT_TIMEOUT) timeout (change it on
/// the built client with [`HttpClient::with_timeout`]).
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::{HttpClient, TokenEndpoint, ClientAuth};
///
/// # fn run() -> Result<(), tower_oauth2::Error> {
/// // A private CA (its certificate in PEM), a proxy with credentials, and a shorter timeout.
/// # let ca = rcgen::generate_simple_self_signed(vec!["auth.internal".to_owned()]).unwrap();
/// # let pem = ca.cert.pem().into_bytes();
/// # let pem = pem.as_slice();
/// let http = HttpClient::hyper_builder()
///     .proxy("http://svc:its-password@proxy.internal:3128", "localhost,.internal,10.0.0.0/8")?
///     .add_root_certificates_pem(pem)?
///     .build()?
///     .with_timeout(Duration::from_secs(10));
/// assert!(!format!("{http:?}").contains("its-password"));
/// let endpoint = TokenEndpoint::builder(
///     "https://auth.internal/token",
///     ClientAuth::client_secret_basic("svc", "secret"),
/// )
/// .http_client(http)
/// .build()?;
/// # let _ = endpoint; Ok(()) }
/// # run().unwrap();
/// ```
#[derive(Clone)]
pub struct HyperClientBuilder {
    proxy: ProxyChoice,
    roots: TlsRoots,
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<Arc<rustls::sign::CertifiedKey>>,
}

impl Default for HyperClientBuilder {
    fn default() -> Self {
        HyperClientBuilder::new()
    }
}

impl HyperClientBuilder {
    /// A builder with the defaults: proxies from the environment, [`TlsRoots::WebPki`], no
    /// added certificates. Same as [`HttpClient::hyper_builder`].
    ///
    /// ```
    /// use tower_oauth2::{HttpClient, HyperClientBuilder};
    ///
    /// let builder = HyperClientBuilder::new();
    /// let defaults = format!("{builder:?}");
    /// assert!(defaults.contains(r#"proxy: "from the environment""#));
    /// assert!(defaults.contains("tls_roots: WebPki") && defaults.contains("added_root_certificates: 0"));
    /// let client: HttpClient = builder.build()?; // what `HttpClient::hyper()` returns
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn new() -> Self {
        HyperClientBuilder {
            proxy: ProxyChoice::Env,
            roots: TlsRoots::default(),
            extra_roots: Vec::new(),
            identity: None,
        }
    }

    /// Honours the proxy environment variables (the default), read when
    /// [`build`](Self::build) is called. Undoes [`no_proxy`](Self::no_proxy) and
    /// [`proxy`](Self::proxy).
    ///
    /// ```
    /// use tower_oauth2::HttpClient;
    ///
    /// let builder = HttpClient::hyper_builder().proxy("http://proxy.internal:3128", "")?;
    /// // Back to the environment's choice, e.g. when a command-line flag asks for it:
    /// let builder = builder.proxy_from_env();
    /// assert!(format!("{builder:?}").contains(r#"proxy: "from the environment""#));
    /// let client = builder.build()?; // reads HTTPS_PROXY, NO_PROXY and the rest now
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxyChoice::Env;
        self
    }

    /// Connects straight to the token endpoint, whatever the environment says.
    ///
    /// ```
    /// use tower_oauth2::HttpClient;
    ///
    /// // A token endpoint inside the cluster, while HTTPS_PROXY is set for the outside world:
    /// let builder = HttpClient::hyper_builder().no_proxy();
    /// assert!(format!("{builder:?}").contains(r#"proxy: "none""#));
    /// let client = builder.build()?;
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Direct;
        self
    }

    /// Sends every request through the proxy at `url` (`http://`, `https://`, `socks5://` or
    /// `socks5h://`, with optional percent-encoded `user:password@`), except
    /// to the hosts in `no_proxy`, a list in the syntax of `NO_PROXY` (`""` for none). The
    /// environment variables are then ignored.
    ///
    /// Fails with [`Error::Config`] if `url` is not such a URL; the message never repeats
    /// the URL, which may hold a password.
    ///
    /// ```
    /// use tower_oauth2::HttpClient;
    ///
    /// let builder = HttpClient::hyper_builder().proxy("http://proxy.internal:3128", "localhost")?;
    /// assert!(HttpClient::hyper_builder().proxy("socks4://proxy:1080", "").is_err());
    /// # let _ = builder;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn proxy(mut self, url: &str, no_proxy: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::Config(
                "invalid proxy URL: expected http://, https://, socks5:// or socks5h://, an \
                 optional user:password@, a host and an optional port"
                    .to_owned(),
            )
        };
        let parsed = url::Url::parse(url).map_err(|_| invalid())?;
        if !matches!(parsed.scheme(), "http" | "https" | "socks5" | "socks5h") || !parsed.has_host() {
            return Err(invalid());
        }
        // hyper-util parses the URL again (as an `http::Uri`): make sure it took it.
        if Matcher::builder()
            .all(url)
            .build()
            .intercept(&Uri::from_static("http://proxy-check.invalid/"))
            .is_none()
        {
            return Err(invalid());
        }
        self.proxy = if bypasses_all(no_proxy) {
            ProxyChoice::Direct
        } else {
            ProxyChoice::Explicit(Arc::new(ProxyRules {
                matcher: Matcher::builder().all(url).no(no_proxy).build(),
                loopback_direct: false,
            }))
        };
        Ok(self)
    }

    /// Chooses the trust roots (default [`TlsRoots::WebPki`]).
    ///
    /// ```
    /// use tower_oauth2::{Error, HttpClient, TlsRoots};
    ///
    /// # let ca = rcgen::generate_simple_self_signed(vec!["auth.internal".to_owned()]).unwrap();
    /// # let pem = ca.cert.pem().into_bytes();
    /// // Trust the company's CA only (its certificate in PEM, read from a file, say):
    /// let client = HttpClient::hyper_builder()
    ///     .tls_roots(TlsRoots::CustomOnly)
    ///     .add_root_certificates_pem(&pem)?
    ///     .build()?;
    /// // Without a certificate added, `CustomOnly` would trust nothing:
    /// let err = HttpClient::hyper_builder().tls_roots(TlsRoots::CustomOnly).build().unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Trusts, in addition to the [roots](Self::tls_roots), every `CERTIFICATE` in `pem`
    /// (a private CA's certificate, or a bundle of them).
    ///
    /// Fails with [`Error::Config`] if the PEM cannot be read or holds no certificate. Each
    /// certificate is checked by [`build`](Self::build).
    ///
    /// ```
    /// use tower_oauth2::HttpClient;
    ///
    /// # let ca = rcgen::generate_simple_self_signed(vec!["auth.internal".to_owned()]).unwrap();
    /// # let pem = ca.cert.pem().into_bytes();
    /// // `pem`: the private CA's certificate, as `std::fs::read("company-ca.pem")?` gives it.
    /// let builder = HttpClient::hyper_builder().add_root_certificates_pem(&pem)?;
    /// assert!(format!("{builder:?}").contains("added_root_certificates: 1"));
    /// let client = builder.build()?; // trusts Mozilla's roots and the private CA
    /// assert!(HttpClient::hyper_builder().add_root_certificates_pem(b"not a PEM file").is_err());
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let before = self.extra_roots.len();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| Error::Config(format!("the PEM root certificates cannot be read: {e}")))?;
            self.extra_roots.push(cert);
        }
        if self.extra_roots.len() == before {
            return Err(Error::Config(
                "no CERTIFICATE block in the PEM root certificates".to_owned(),
            ));
        }
        Ok(self)
    }

    /// Trusts, in addition to the [roots](Self::tls_roots), one certificate in DER form.
    /// It is checked by [`build`](Self::build).
    ///
    /// ```
    /// use tower_oauth2::HttpClient;
    ///
    /// # let ca = rcgen::generate_simple_self_signed(vec!["auth.internal".to_owned()]).unwrap();
    /// # let der = ca.cert.der().to_vec();
    /// // `der`: the private CA's certificate in DER, as `std::fs::read("company-ca.der")?` gives it.
    /// let client = HttpClient::hyper_builder().add_root_certificate_der(der).build()?;
    /// // What is not a certificate is refused when the client is built:
    /// assert!(HttpClient::hyper_builder().add_root_certificate_der(vec![1, 2, 3]).build().is_err());
    /// # let _ = client;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(CertificateDer::from(der.into()));
        self
    }

    /// Presents a client certificate to the token endpoint when it asks for one (mutual TLS,
    /// RFC 8705): `cert_chain_pem` holds the client's certificate (first) and any
    /// intermediate certificates, `private_key_pem` its private key (`PRIVATE KEY` in PKCS#8,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY`; RSA, ECDSA P-256/P-384 or Ed25519). Replaces an
    /// earlier one. Use it with
    /// [`ClientAuth::tls_client_auth`](crate::ClientAuth::tls_client_auth) or
    /// [`ClientAuth::self_signed_tls_client_auth`](crate::ClientAuth::self_signed_tls_client_auth).
    ///
    /// Fails with [`Error::Config`] if the chain holds no certificate, if the PEM holds no
    /// private key or a key of an unsupported kind, or if the key does not belong to the
    /// certificate. The error never shows key material. The key is parsed here into the
    /// signing key the TLS library keeps, and the parsed DER copy is wiped; `Debug` only says
    /// whether a certificate is set.
    ///
    /// ```
    /// use tower_oauth2::{ClientAuth, Error, HttpClient, TokenEndpoint};
    ///
    /// # let key = rcgen::KeyPair::generate().unwrap();
    /// # let cert = rcgen::CertificateParams::new(vec!["my-service".to_owned()]).unwrap().self_signed(&key).unwrap();
    /// # let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    /// // `cert_pem` and `key_pem`: as `std::fs::read("client.crt")?` and `std::fs::read("client.key")?` give them.
    /// let http = HttpClient::hyper_builder()
    ///     .client_certificate(cert_pem.as_bytes(), key_pem.as_bytes())?
    ///     .build()?;
    /// let endpoint = TokenEndpoint::builder(
    ///     "https://mtls.auth.example.com/token",
    ///     ClientAuth::self_signed_tls_client_auth("my-service"),
    /// )
    /// .http_client(http)
    /// .build()?;
    /// # let _ = endpoint;
    ///
    /// // A key that is not there, or not the certificate's: refused, without showing it.
    /// let err = HttpClient::hyper_builder().client_certificate(cert_pem.as_bytes(), b"").unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// # let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
    /// let err = HttpClient::hyper_builder()
    ///     .client_certificate(cert_pem.as_bytes(), other.as_bytes())
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("does not match"));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn client_certificate(
        mut self,
        cert_chain_pem: &[u8],
        private_key_pem: &[u8],
    ) -> Result<Self, Error> {
        self.identity = Some(Arc::new(client_identity(cert_chain_pem, private_key_pem)?));
        Ok(self)
    }

    /// Builds the client. Fails with [`Error::Config`] if a certificate added is not a
    /// usable CA certificate, if [`TlsRoots::CustomOnly`] was chosen without adding one, or if
    /// the platform verifier cannot be set up.
    ///
    /// Needs a tokio runtime when requests are sent, not to build.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, HttpClient, TokenEndpoint};
    ///
    /// // No runtime is running here: building needs none.
    /// let http = HttpClient::hyper_builder().no_proxy().build()?.with_timeout(Duration::from_secs(5));
    /// let endpoint = TokenEndpoint::builder("https://auth.example.com/token", ClientAuth::none("cli"))
    ///     .http_client(http)
    ///     .build()?;
    /// # let _ = endpoint;
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn build(self) -> Result<HttpClient, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = self.tls_config(provider.clone())?;
        // The client certificate goes to the destination only, never to a proxy.
        let to_destination = match &self.identity {
            Some(identity) => self.tls_config_with(
                provider,
                Arc::new(rustls::sign::SingleCertAndKey::from(identity.clone())),
            )?,
            None => tls.clone(),
        };
        let matcher = match &self.proxy {
            ProxyChoice::Env => {
                // The variable hyper-util reads, in the order it reads them.
                let no_proxy = ["NO_PROXY", "no_proxy"]
                    .iter()
                    .find_map(|name| std::env::var(name).ok())
                    .unwrap_or_default();
                (!bypasses_all(&no_proxy)).then(|| {
                    Arc::new(ProxyRules {
                        matcher: Matcher::from_env(),
                        loopback_direct: true,
                    })
                })
            }
            ProxyChoice::Direct => None,
            ProxyChoice::Explicit(rules) => Some(rules.clone()),
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        // To the proxy itself: HTTP/1.1 only (CONNECT and absolute-form requests).
        let to_proxy = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp.clone());
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(to_destination)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(ProxyConnector {
                direct: tcp,
                to_proxy,
                matcher: matcher.clone(),
            });
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        // A request sent to an HTTP proxy in absolute form carries the proxy's credentials
        // itself (a CONNECT tunnel carries them in the CONNECT request).
        let client = client.map_request(move |mut request: http::Request<Full<Bytes>>| {
            if let Some(matcher) = &matcher {
                add_proxy_authorization(matcher, &mut request);
            }
            request
        });
        Ok(HttpClient::new(client).with_timeout(DEFAULT_TIMEOUT))
    }

    fn tls_config(&self, provider: Arc<CryptoProvider>) -> Result<rustls::ClientConfig, Error> {
        Ok(self.tls_verifying(provider)?.with_no_client_auth())
    }

    /// The TLS configuration that presents the client certificate `identity`.
    fn tls_config_with(
        &self,
        provider: Arc<CryptoProvider>,
        identity: Arc<dyn rustls::client::ResolvesClientCert>,
    ) -> Result<rustls::ClientConfig, Error> {
        Ok(self.tls_verifying(provider)?.with_client_cert_resolver(identity))
    }

    /// The TLS configuration up to the server certificate verification.
    fn tls_verifying(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, Error> {
        let tls_error = |e: rustls::Error| Error::Config(format!("TLS setup failed: {e}"));
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?;
        match self.roots {
            TlsRoots::WebPki | TlsRoots::CustomOnly => {
                let mut store = rustls::RootCertStore::empty();
                if self.roots == TlsRoots::WebPki {
                    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                }
                for (i, cert) in self.extra_roots.iter().enumerate() {
                    store.add(cert.clone()).map_err(|e| {
                        Error::Config(format!("added root certificate {} cannot be used: {e}", i + 1))
                    })?;
                }
                if store.is_empty() {
                    return Err(Error::Config(
                        "TlsRoots::CustomOnly needs at least one added root certificate".to_owned(),
                    ));
                }
                Ok(builder.with_root_certificates(store))
            }
            #[cfg(feature = "platform-verifier")]
            TlsRoots::Platform => {
                let verifier = platform_verifier(&self.extra_roots, provider).map_err(tls_error)?;
                Ok(builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier)))
            }
        }
    }
}

/// Parses a client certificate chain and its private key (PEM) into the certified key rustls
/// presents. Errors never show key material; the parsed key DER is wiped.
fn client_identity(
    cert_chain_pem: &[u8],
    private_key_pem: &[u8],
) -> Result<rustls::sign::CertifiedKey, Error> {
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(cert_chain_pem) {
        chain.push(
            cert.map_err(|e| Error::Config(format!("the client certificate PEM cannot be read: {e}")))?,
        );
    }
    if chain.is_empty() {
        return Err(Error::Config(
            "no CERTIFICATE block in the client certificate PEM".to_owned(),
        ));
    }
    // The PEM parser's errors can quote a line of the input: none is shown.
    let key = PrivateKeyDer::from_pem_slice(private_key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => Error::Config(
            "no private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block) in the client key PEM"
                .to_owned(),
        ),
        _ => Error::Config("the client private key PEM cannot be read".to_owned()),
    })?;
    let key = zeroize::Zeroizing::new(key);
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        Error::Config("the client private key is not a supported RSA, ECDSA or Ed25519 key".to_owned())
    })?;
    drop(key);
    let certified = rustls::sign::CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(Error::Config(
            "the client private key does not match the client certificate".to_owned(),
        )),
        Err(e) => Err(Error::Config(format!(
            "the client certificate cannot be used: {e}"
        ))),
    }
}

#[cfg(all(feature = "platform-verifier", not(target_os = "android")))]
fn platform_verifier(
    extra_roots: &[CertificateDer<'static>],
    provider: Arc<CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, rustls::Error> {
    if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider)
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots.iter().cloned(), provider)
    }
}

#[cfg(all(feature = "platform-verifier", target_os = "android"))]
fn platform_verifier(
    extra_roots: &[CertificateDer<'static>],
    provider: Arc<CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, rustls::Error> {
    if !extra_roots.is_empty() {
        return Err(rustls::Error::General(
            "the Android platform verifier cannot trust added root certificates".to_owned(),
        ));
    }
    rustls_platform_verifier::Verifier::new(provider)
}

impl fmt::Debug for HyperClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("HyperClientBuilder");
        match &self.proxy {
            ProxyChoice::Env => s.field("proxy", &"from the environment"),
            ProxyChoice::Direct => s.field("proxy", &"none"),
            // hyper-util's Debug shows the proxy's scheme, host and port, never credentials.
            ProxyChoice::Explicit(rules) => s.field("proxy", &rules.matcher),
        };
        s.field("tls_roots", &self.roots)
            .field("added_root_certificates", &self.extra_roots.len())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

/// Whether a `NO_PROXY` list holds the `*` entry, which curl reads as "no proxy for any host".
/// hyper-util's matcher (0.1.21) applies `*` to host names only, not to IP addresses.
fn bypasses_all(no_proxy: &str) -> bool {
    no_proxy.split(',').any(|entry| entry.trim() == "*")
}

/// Adds `Proxy-Authorization` to a request for an `http` URL that goes to a proxy with
/// credentials.
fn add_proxy_authorization(matcher: &ProxyRules, request: &mut http::Request<Full<Bytes>>) {
    if request.uri().scheme() != Some(&Scheme::HTTP) {
        return;
    }
    if let Some(auth) = matcher
        .intercept(request.uri())
        .as_ref()
        .filter(|proxy| is_http_proxy(proxy.uri()))
        .and_then(|proxy| proxy.basic_auth())
    {
        request
            .headers_mut()
            .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
    }
}

fn is_http_proxy(uri: &Uri) -> bool {
    matches!(uri.scheme_str(), Some("http" | "https"))
}

/// A proxy scheme this transport cannot use.
#[derive(Debug)]
struct UnsupportedProxy {
    scheme: String,
}

impl fmt::Display for UnsupportedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the proxy scheme `{}` is not supported by the hyper transport (http://, https://, \
             socks5:// and socks5h:// proxies are)",
            self.scheme.escape_debug()
        )
    }
}

impl std::error::Error for UnsupportedProxy {}

/// The proxy rules in force: hyper-util's matcher, and whether loopback destinations go
/// direct whatever it says.
struct ProxyRules {
    matcher: Matcher,
    /// Set for rules read from the environment: a proxy cannot reach this machine's loopback
    /// interface (a local demo server, a test server, a sidecar on `127.0.0.1`), so loopback
    /// destinations never go to an environment-configured proxy, whatever `NO_PROXY` says, as
    /// browsers do. An explicit [`HyperClientBuilder::proxy`] is obeyed as it is.
    loopback_direct: bool,
}

impl ProxyRules {
    fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        if self.loopback_direct && dst.host().is_some_and(super::is_loopback_host) {
            return None;
        }
        self.matcher.intercept(dst)
    }
}

/// Connects to the destination, directly or through the proxy the matcher picks for it.
/// hyper-rustls's `HttpsConnector` wraps it and runs TLS with the destination over what it
/// returns (for `https`).
#[derive(Clone)]
struct ProxyConnector {
    direct: HttpConnector,
    to_proxy: HttpsConnector<HttpConnector>,
    matcher: Option<Arc<ProxyRules>>,
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

impl ProxyConnector {
    /// A connection to `dst` through a SOCKS5 proxy: the proxy resolves host names with
    /// `socks5h://`, this client does (without blocking) with `socks5://`.
    fn through_socks5(&self, proxy: &Intercept, dst: Uri, remote_dns: bool) -> ConnectFuture {
        let mut socks =
            SocksV5::new(with_default_port(proxy.uri(), 1080), self.direct.clone()).local_dns(false);
        if let Some((user, password)) = proxy.raw_auth() {
            socks = socks.with_auth(user.to_owned(), password.to_owned());
        }
        let default_port = if dst.scheme() == Some(&Scheme::HTTPS) {
            443
        } else {
            80
        };
        Box::pin(async move {
            let mut dst = with_default_port(&dst, default_port);
            if !remote_dns {
                dst = resolved(&dst).await?;
            }
            let io = socks.oneshot(dst).await?;
            Ok(ProxyStream::new(MaybeHttpsStream::Http(io), false))
        })
    }
}

/// `uri` with its port made explicit.
fn with_default_port(uri: &Uri, port: u16) -> Uri {
    if uri.port().is_some() {
        return uri.clone();
    }
    let host = uri.host().unwrap_or_default();
    let scheme = uri.scheme_str().unwrap_or("http");
    format!("{scheme}://{host}:{port}/")
        .parse()
        .unwrap_or_else(|_| uri.clone())
}

/// `uri` (with a port) with its host name resolved to the first of its addresses.
async fn resolved(uri: &Uri) -> Result<Uri, BoxError> {
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(uri.clone());
    }
    let port = uri.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host name has no address"))?;
    let scheme = uri.scheme_str().unwrap_or("http");
    Ok(format!("{scheme}://{addr}/").parse()?)
}

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call drives a clone of the inner connectors with `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(proxy) = self.matcher.as_ref().and_then(|m| m.intercept(&dst)) else {
            let connecting = self.direct.clone().oneshot(dst);
            return Box::pin(async move {
                let io = connecting.await?;
                Ok(ProxyStream::new(MaybeHttpsStream::Http(io), false))
            });
        };
        match proxy.uri().scheme_str() {
            Some("http" | "https") => {}
            Some(scheme @ ("socks5" | "socks5h")) => {
                return self.through_socks5(&proxy, dst, scheme == "socks5h");
            }
            other => {
                let scheme = other.unwrap_or_default().to_owned();
                return Box::pin(async move { Err(UnsupportedProxy { scheme }.into()) });
            }
        }
        if dst.scheme() == Some(&Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(proxy.uri().clone(), self.to_proxy.clone());
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let connecting = tunnel.oneshot(dst);
            Box::pin(async move { Ok(ProxyStream::new(connecting.await?, false)) })
        } else {
            let connecting = self.to_proxy.clone().oneshot(proxy.uri().clone());
            Box::pin(async move { Ok(ProxyStream::new(connecting.await?, true)) })
        }
    }
}

/// A connection to the destination or to a proxy; `proxied` when requests on it must be in
/// absolute form (sent to an HTTP proxy, not through a tunnel).
struct ProxyStream {
    io: MaybeHttpsStream<TokioIo<TcpStream>>,
    proxied: bool,
}

impl ProxyStream {
    fn new(io: MaybeHttpsStream<TokioIo<TcpStream>>, proxied: bool) -> Self {
        ProxyStream { io, proxied }
    }
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        let connected = self.io.connected();
        if self.proxied {
            connected.proxy(true)
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
