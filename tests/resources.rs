//! Tokens go only to the resources they are for (RFC 9700 §2.3, §4.10), over real loopback
//! HTTP: a layer bound to one origin, a redirect follower stacked above it that is sent to
//! another origin, and a router with a token per resource.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_server::{AuthServer, ClientAuthMethod};
use bytes::Bytes;
use http::header::{AUTHORIZATION, LOCATION};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::follow_redirect::FollowRedirectLayer;
use tower_oauth2::{
    ClientAuth, ClientCredentials, Error, OAuth2Layer, OAuth2RouterLayer, OtherResources, TokenCache,
    TokenEndpoint,
};

const LIMIT: Duration = Duration::from_secs(20);

/// A server that answers every request with `302 Found` to `location`, and records the
/// `Authorization` header of each request it gets.
struct Redirector {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl Redirector {
    async fn start(location: String) -> Redirector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                let location = location.clone();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let auth = request
                        .headers()
                        .get(AUTHORIZATION)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                    log.lock().unwrap().push(auth);
                    let response = Response::builder()
                        .status(StatusCode::FOUND)
                        .header(LOCATION, location.as_str())
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Redirector { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

/// A cache over client credentials at `server`.
fn cache(server: &AuthServer, resource: Option<&str>) -> TokenCache {
    server.add_client("svc", Some("secret"), ClientAuthMethod::Basic);
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "secret"),
    )
    .unwrap();
    let mut source = ClientCredentials::new(endpoint);
    if let Some(resource) = resource {
        source = source.resource(resource);
    }
    TokenCache::new(source)
}

fn origin(server: &AuthServer) -> String {
    format!("http://{}", server.addr())
}

fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

fn token_of(cache: &TokenCache) -> String {
    cache.token().unwrap().access_token().expose().to_owned()
}

/// tower-http's `FollowRedirect` above a bound layer: the API redirects to a server on
/// another port, which never sees the token; an unbound layer (today's behaviour without a
/// binding) would have sent it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_never_carries_the_token() {
    let api = AuthServer::start().await; // the resource server the token is for
    let elsewhere = AuthServer::start().await; // another origin (another port)
    let redirector = Redirector::start(elsewhere.resource_url()).await;
    let cache = cache(&api, None);

    // The redirecting server is part of the API (bound too); the target is not.
    let bound = OAuth2Layer::from_cache(cache.clone())
        .for_resources([origin(&api), format!("http://{}", redirector.addr)])
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .layer(bound)
        .service(http_client());
    let response = tokio::time::timeout(LIMIT, client.clone().oneshot(get(&redirector.url("/download"))))
        .await
        .expect("the request ends")
        .expect("the redirect is followed");
    // The target answers 401 to a request without a token: it got none.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let token = token_of(&cache);
    assert_eq!(redirector.seen(), vec![Some(format!("Bearer {token}"))]);
    assert_eq!(
        elsewhere.resource_tokens(),
        vec![None],
        "the other origin never sees the token"
    );

    // The same stack without a binding hands the token to the other origin: the hole.
    let unbound = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(http_client());
    tokio::time::timeout(LIMIT, unbound.oneshot(get(&redirector.url("/download"))))
        .await
        .expect("the request ends")
        .expect("the redirect is followed");
    assert_eq!(elsewhere.resource_tokens(), vec![None, Some(token)]);
}

/// One bound layer, one client calling two origins: the token goes to its own origin only;
/// with `OtherResources::Fail`, a request elsewhere fails and is never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_layer_sends_its_token_to_its_origin_only() {
    let api = AuthServer::start().await;
    let other = AuthServer::start().await;
    let cache = cache(&api, None);
    let mut client = ServiceBuilder::new()
        .layer(
            OAuth2Layer::from_cache(cache.clone())
                .for_resources([origin(&api)])
                .unwrap(),
        )
        .service(http_client());
    let ours = client
        .ready()
        .await
        .unwrap()
        .call(get(&api.resource_url()))
        .await
        .unwrap();
    assert_eq!(ours.status(), StatusCode::OK);
    let theirs = client
        .ready()
        .await
        .unwrap()
        .call(get(&other.resource_url()))
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.resource_tokens(), vec![Some(token_of(&cache))]);
    assert_eq!(other.resource_tokens(), vec![None]);

    let mut strict = ServiceBuilder::new()
        .layer(
            OAuth2Layer::from_cache(cache.clone())
                .for_resources([origin(&api)])
                .unwrap()
                .other_resources(OtherResources::Fail),
        )
        .service(http_client());
    let err = strict
        .ready()
        .await
        .unwrap()
        .call(get(&format!("{}?secret=1", other.resource_url())))
        .await
        .expect_err("refused");
    let err = Error::from(err);
    match &err {
        Error::NotForThisResource { origin } => assert_eq!(*origin, format!("http://{}", other.addr())),
        other => panic!("{other:?}"),
    }
    assert!(
        !err.to_string().contains("secret"),
        "no path or query in the error: {err}"
    );
    assert_eq!(other.resource_requests(), 1, "the refused request was never sent");
    // A prefix binding: same origin, another path, is another resource.
    let mut prefixed = ServiceBuilder::new()
        .layer(
            OAuth2Layer::from_cache(cache.clone())
                .for_resources([format!("{}/api/", origin(&api))])
                .unwrap(),
        )
        .service(http_client());
    prefixed
        .ready()
        .await
        .unwrap()
        .call(get(&api.resource_url()))
        .await
        .unwrap();
    assert_eq!(
        api.resource_tokens().last(),
        Some(&None),
        "/resource is not under /api/"
    );
}

/// One router, two APIs, each with its own token (RFC 8707 `resource` sent to get it), and a
/// route chosen by a predicate; a request for neither goes without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_carries_each_resource_its_own_token() {
    let orders = AuthServer::start().await;
    let billing = AuthServer::start().await;
    let stranger = AuthServer::start().await;
    let orders_cache = cache(&orders, Some(&origin(&orders)));
    let billing_cache = cache(&billing, Some(&origin(&billing)));
    let router = OAuth2RouterLayer::new()
        .route(&origin(&orders), orders_cache.clone())
        .unwrap()
        .route_fn(
            {
                let port = billing.addr().port();
                move |request| request.uri().port_u16() == Some(port)
            },
            billing_cache.clone(),
        );
    let client = ServiceBuilder::new().layer(router).service(http_client());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = match i % 3 {
            0 => orders.resource_url(),
            1 => billing.resource_url(),
            _ => stranger.resource_url(),
        };
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.oneshot(get(&url)).await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(tokio::time::timeout(LIMIT, task).await.unwrap().unwrap());
    }
    // Each API accepted every request with its own token; the stranger saw no token.
    let orders_token = token_of(&orders_cache);
    let billing_token = token_of(&billing_cache);
    assert_ne!(orders_token, billing_token);
    assert!(orders
        .resource_tokens()
        .iter()
        .all(|t| t.as_deref() == Some(orders_token.as_str())));
    assert!(billing
        .resource_tokens()
        .iter()
        .all(|t| t.as_deref() == Some(billing_token.as_str())));
    assert_eq!(orders.resource_tokens().len(), 14);
    assert_eq!(billing.resource_tokens().len(), 13);
    assert!(stranger.resource_tokens().iter().all(Option::is_none));
    for (i, status) in statuses.iter().enumerate() {
        let expected = if i % 3 == 2 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(*status, expected, "request {i}");
    }
    // One token request per API, each asking for its own resource (RFC 8707).
    assert_eq!(orders.token_requests(), 1);
    assert_eq!(billing.token_requests(), 1);
    assert_eq!(stranger.token_requests(), 0);
    let asked = orders.requests()[0].form.clone();
    assert!(
        asked.contains(&("resource".to_owned(), origin(&orders))),
        "{asked:?}"
    );
}

/// The reqwest middleware bound to one origin: the other origin never sees the token, and with
/// `OtherResources::Fail` the request fails with the typed error, unsent.
#[cfg(feature = "reqwest")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_reqwest_middleware_sends_its_token_to_its_origin_only() {
    use tower_oauth2::reqwest::{token_error, OAuth2Middleware};
    let api = AuthServer::start().await;
    let other = AuthServer::start().await;
    let cache = cache(&api, None);
    let client = |middleware: OAuth2Middleware| {
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(middleware)
            .build()
    };
    let bound = client(
        OAuth2Middleware::new(cache.clone())
            .for_resources([origin(&api)])
            .unwrap(),
    );
    assert_eq!(
        bound.get(api.resource_url()).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        bound.get(other.resource_url()).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.resource_tokens(), vec![Some(token_of(&cache))]);
    assert_eq!(other.resource_tokens(), vec![None]);

    let strict = client(
        OAuth2Middleware::new(cache.clone())
            .for_resources([origin(&api)])
            .unwrap()
            .other_resources(OtherResources::Fail),
    );
    let err = strict
        .get(other.resource_url())
        .send()
        .await
        .expect_err("refused");
    assert!(
        matches!(token_error(&err), Some(Error::NotForThisResource { .. })),
        "{err:?}"
    );
    assert_eq!(other.resource_requests(), 1, "never sent");
}
