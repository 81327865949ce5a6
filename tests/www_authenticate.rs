//! Which `401`s drop the token, over real loopback HTTP: a resource server answers every request
//! with `401` and a given set of `WWW-Authenticate` field lines, and the token requests the
//! authorization server receives tell whether the layer (or the retry policy, or the reqwest
//! middleware) took the token for dead. Only a Bearer or DPoP challenge whose `error`
//! parameter is `invalid_token` counts (RFC 6750 §3.1 over RFC 9110 §11.6.1).

#[path = "support/auth_server.rs"]
mod auth_server;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use auth_server::AuthServer;
use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenCache, TokenEndpoint};

/// A resource server that answers every request `401` with the same challenge lines, and
/// records the bearer token of each request.
struct ResourceServer {
    url: String,
    tokens: Arc<Mutex<Vec<String>>>,
}

impl ResourceServer {
    async fn start(lines: &[&[u8]]) -> ResourceServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}/resource", listener.local_addr().unwrap());
        let lines: Arc<Vec<HeaderValue>> = Arc::new(
            lines
                .iter()
                .map(|line| HeaderValue::from_bytes(line).expect("a valid field value"))
                .collect(),
        );
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let recorded = tokens.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let lines = lines.clone();
                let recorded = recorded.clone();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let token = request
                        .headers()
                        .get(AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or("")
                        .to_owned();
                    recorded.lock().unwrap().push(token);
                    let mut response = Response::new(Full::new(Bytes::from_static(b"unauthorized")));
                    *response.status_mut() = StatusCode::UNAUTHORIZED;
                    for line in lines.iter() {
                        response.headers_mut().append(WWW_AUTHENTICATE, line.clone());
                    }
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ResourceServer { url, tokens }
    }

    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }
}

fn cache(auth: &AuthServer) -> TokenCache {
    let endpoint =
        TokenEndpoint::new(auth.token_url(), ClientAuth::client_secret_basic("svc", "secret")).unwrap();
    TokenCache::new(ClientCredentials::new(endpoint))
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

/// Two requests through `OAuth2Layer::invalidate_on_401(true)`, each answered `401` with
/// `lines`: whether the first `401` dropped the token (a second token request, a new token
/// on the second request).
async fn dropped_by_the_layer(lines: &[&[u8]]) -> bool {
    let auth = AuthServer::start().await;
    let resource = ResourceServer::start(lines).await;
    let service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache(&auth)).invalidate_on_401(true))
        .service(client());
    for _ in 0..2 {
        let response = service.clone().oneshot(get(&resource.url)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let tokens = resource.tokens();
    assert_eq!(tokens.len(), 2);
    match auth.token_requests() {
        1 => {
            assert_eq!(tokens[0], tokens[1], "one token request, one token");
            false
        }
        2 => {
            assert_ne!(tokens[0], tokens[1], "the second request carried the new token");
            true
        }
        n => panic!("{n} token requests for two requests"),
    }
}

#[tokio::test]
async fn invalid_token_inside_an_error_description_keeps_the_token() {
    assert!(!dropped_by_the_layer(&[br#"Bearer realm="x", error_description="not an invalid_token""#]).await);
}

#[tokio::test]
async fn invalid_token_as_another_schemes_realm_keeps_the_token() {
    assert!(!dropped_by_the_layer(&[br#"Basic realm="invalid_token""#]).await);
}

#[tokio::test]
async fn invalid_token_as_a_token68_keeps_the_token() {
    assert!(!dropped_by_the_layer(&[b"Bearer invalid_token"]).await);
    assert!(!dropped_by_the_layer(&[b"Negotiate aW52YWxpZF90b2tlbg==, Bearer realm=invalid_token"]).await);
}

#[tokio::test]
async fn invalid_token_under_another_scheme_keeps_the_token() {
    assert!(
        !dropped_by_the_layer(&[br#"Newauth error="invalid_token", Bearer error="insufficient_scope""#])
            .await
    );
}

#[tokio::test]
async fn a_bearer_challenge_after_a_challenge_with_escapes_drops_the_token() {
    assert!(
        dropped_by_the_layer(&[
            br#"Newauth realm="apps", type=1, title="Login to \"apps\"", Bearer error=invalid_token"#
        ])
        .await
    );
}

#[tokio::test]
async fn scheme_and_parameter_names_in_any_case_drop_the_token() {
    assert!(dropped_by_the_layer(&[br#"bEaReR ERROR="invalid_token""#]).await);
}

#[tokio::test]
async fn a_dpop_challenge_drops_the_token() {
    assert!(dropped_by_the_layer(&[br#"DPoP algs="ES256 PS256", error="invalid_token""#]).await);
}

#[tokio::test]
async fn an_escaped_invalid_token_drops_the_token() {
    // `invalid\_token` in a quoted string is `invalid_token` (RFC 9110 §5.6.4).
    assert!(dropped_by_the_layer(&[br#"Bearer error="invalid\_token""#]).await);
}

#[tokio::test]
async fn a_challenge_with_non_utf8_text_still_drops_the_token() {
    // obs-text in a realm makes the field value not UTF-8; the challenge is no less valid.
    assert!(dropped_by_the_layer(&[b"Bearer realm=\"caf\xe9\", error=\"invalid_token\""]).await);
}

#[tokio::test]
async fn challenges_on_two_header_lines() {
    assert!(dropped_by_the_layer(&[br#"Basic realm="api""#, br#"Bearer error="invalid_token""#]).await);
    assert!(!dropped_by_the_layer(&[br#"Basic realm="invalid_token""#, br#"Bearer realm="api""#]).await);
    // A parameter on a line of its own belongs to no challenge.
    assert!(!dropped_by_the_layer(&[b"Bearer", b"error=invalid_token"]).await);
}

/// `OAuth2Layer::with_retry`: the number of requests the resource server saw.
async fn attempts_with_the_retry_policy(line: &[u8]) -> usize {
    let auth = AuthServer::start().await;
    let resource = ResourceServer::start(&[line]).await;
    let service = ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache(&auth)).with_retry())
        .service(client());
    let response = service.oneshot(get(&resource.url)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(auth.token_requests(), resource.tokens().len());
    resource.tokens().len()
}

#[tokio::test]
async fn the_retry_policy_reads_challenges_the_same_way() {
    assert_eq!(
        attempts_with_the_retry_policy(br#"Basic realm="invalid_token""#).await,
        1
    );
    assert_eq!(
        attempts_with_the_retry_policy(br#"Basic realm="x", bearer Error=invalid_token"#).await,
        2
    );
}

#[cfg(feature = "reqwest")]
#[tokio::test]
async fn the_reqwest_middleware_reads_challenges_the_same_way() {
    use tower_oauth2::reqwest::OAuth2Middleware;

    async fn attempts(line: &'static [u8]) -> usize {
        let auth = AuthServer::start().await;
        let resource = ResourceServer::start(&[line]).await;
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(OAuth2Middleware::new(cache(&auth)).retry_on_401(true))
            .build();
        let response = client.get(&resource.url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(auth.token_requests(), resource.tokens().len());
        resource.tokens().len()
    }
    assert_eq!(
        attempts(br#"Bearer realm="x", error_description="not an invalid_token""#).await,
        1
    );
    assert_eq!(attempts(br#"Bearer error="invalid\_token""#).await, 2);
}
