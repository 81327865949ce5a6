//! An in-process HTTP forward proxy on loopback, for the transport tests: requests in
//! absolute form (`GET http://host/path`) are forwarded, `CONNECT host:port` opens a tunnel.
//! It records every request it received (method, target, `Proxy-Authorization`), and can
//! require credentials (407 without them).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// What reached the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `CONNECT`, `POST`, ...
    pub method: String,
    /// The request target as received: `host:port` for CONNECT, an absolute URL otherwise.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub proxy_authorization: Option<String>,
}

struct State {
    seen: Mutex<Vec<Seen>>,
    /// The `Proxy-Authorization` value required, if any.
    required: Option<String>,
}

/// A running proxy. It runs until its tokio runtime shuts down.
#[derive(Clone)]
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Proxy {
    /// A proxy that lets everybody through.
    pub async fn start() -> Proxy {
        Proxy::start_inner(None).await
    }

    /// A proxy that answers 407 unless `Proxy-Authorization` is exactly `required`.
    pub async fn start_requiring(required: &str) -> Proxy {
        Proxy::start_inner(Some(required.to_owned())).await
    }

    async fn start_inner(required: Option<String>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            seen: Mutex::new(Vec::new()),
            required,
        });
        let accept_state = state.clone();
        let upstream = Client::builder(TokioExecutor::new()).build_http::<Incoming>();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = accept_state.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), upstream.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Proxy { addr, state }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://user:password@127.0.0.1:port` (both as given: percent-encode them yourself).
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// Everything that reached the proxy, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

fn empty(status: u16) -> http::Response<ProxyBody> {
    let mut response = http::Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

async fn handle(
    state: Arc<State>,
    upstream: Client<hyper_util::client::legacy::connect::HttpConnector, Incoming>,
    mut request: http::Request<Incoming>,
) -> Result<http::Response<ProxyBody>, BoxError> {
    let proxy_authorization = request
        .headers()
        .get(http::header::PROXY_AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    state.seen.lock().unwrap().push(Seen {
        method: request.method().to_string(),
        target: request.uri().to_string(),
        proxy_authorization: proxy_authorization.clone(),
    });
    if let Some(required) = &state.required {
        if proxy_authorization.as_deref() != Some(required.as_str()) {
            let mut response = empty(407);
            response.headers_mut().insert(
                http::header::PROXY_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"test\""),
            );
            return Ok(response);
        }
    }
    if request.method() == http::Method::CONNECT {
        let Some(target) = request.uri().authority().map(|a| a.to_string()) else {
            return Ok(empty(400));
        };
        let Ok(mut backend) = TcpStream::connect(&resolve_test_host(&target)).await else {
            return Ok(empty(502));
        };
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(request).await {
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut backend).await;
            }
        });
        return Ok(empty(200));
    }
    // A forward proxy only takes absolute-form requests.
    if request.uri().scheme().is_none() || request.uri().authority().is_none() {
        return Ok(empty(400));
    }
    request.headers_mut().remove(http::header::PROXY_AUTHORIZATION);
    if let Some(authority) = request.uri().authority().map(|a| a.to_string()) {
        let resolved = resolve_test_host(&authority);
        if resolved != authority {
            let mut parts = request.uri().clone().into_parts();
            parts.authority = resolved.parse().ok();
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    match upstream.request(request).await {
        Ok(response) => Ok(response.map(|body| body.map_err(Into::into).boxed())),
        Err(_) => Ok(empty(502)),
    }
}

/// The proxy's own name resolution: a host under `.test` (RFC 6761's reserved domain, which
/// no real resolver answers) is this machine, so that a test can send a client to
/// `http://auth.test:PORT/` through the proxy while its server listens on 127.0.0.1. Anything
/// else (`host:port`) is left as it is.
pub fn resolve_test_host(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port)) if host.ends_with(".test") => format!("127.0.0.1:{port}"),
        _ => authority.to_owned(),
    }
}

/// An in-process SOCKS5 proxy (RFC 1928, CONNECT only) with optional username/password
/// authentication (RFC 1929). It records the target of each CONNECT as `host:port`, the host
/// as the client sent it (a name when the client left resolution to the proxy).
#[derive(Clone)]
pub struct Socks5 {
    addr: SocketAddr,
    state: Arc<SocksState>,
}

struct SocksState {
    targets: Mutex<Vec<String>>,
    users: Mutex<Vec<String>>,
    required: Option<(String, String)>,
}

impl Socks5 {
    /// A SOCKS5 proxy without authentication, or requiring `user`/`password` if given.
    pub async fn start(required: Option<(&str, &str)>) -> Socks5 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(SocksState {
            targets: Mutex::new(Vec::new()),
            users: Mutex::new(Vec::new()),
            required: required.map(|(u, p)| (u.to_owned(), p.to_owned())),
        });
        let accept_state = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let _ = socks5_session(state, stream).await;
                });
            }
        });
        Socks5 { addr, state }
    }

    /// `scheme://127.0.0.1:port` (`socks5` or `socks5h`), with `user:password@` if given.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("{scheme}://{user}:{password}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// The targets of the CONNECT requests, in order.
    pub fn targets(&self) -> Vec<String> {
        self.state.targets.lock().unwrap().clone()
    }

    /// The usernames that authenticated.
    pub fn users(&self) -> Vec<String> {
        self.state.users.lock().unwrap().clone()
    }
}

async fn socks5_session(state: Arc<SocksState>, mut client: TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    let method = if state.required.is_some() { 2 } else { 0 };
    if head[0] != 5 || !methods.contains(&method) {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, method]).await?;
    if let Some((user, password)) = &state.required {
        let mut version_and_len = [0u8; 2];
        client.read_exact(&mut version_and_len).await?;
        let mut got_user = vec![0u8; version_and_len[1] as usize];
        client.read_exact(&mut got_user).await?;
        let mut len = [0u8; 1];
        client.read_exact(&mut len).await?;
        let mut got_password = vec![0u8; len[0] as usize];
        client.read_exact(&mut got_password).await?;
        if got_user != user.as_bytes() || got_password != password.as_bytes() {
            client.write_all(&[1, 1]).await?;
            return Ok(());
        }
        state.users.lock().unwrap().push(user.clone());
        client.write_all(&[1, 0]).await?;
    }
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    state.targets.lock().unwrap().push(target.clone());
    let Ok(mut backend) = TcpStream::connect(&target).await else {
        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut backend).await?;
    Ok(())
}
