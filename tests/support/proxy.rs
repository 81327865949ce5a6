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
        let Ok(mut backend) = TcpStream::connect(&target).await else {
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
    match upstream.request(request).await {
        Ok(response) => Ok(response.map(|body| body.map_err(Into::into).boxed())),
        Err(_) => Ok(empty(502)),
    }
}
