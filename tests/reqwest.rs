//! The reqwest-middleware integration, over real loopback HTTP.
#![cfg(feature = "reqwest")]

#[path = "support/auth_server.rs"]
mod auth_server;

use std::time::Duration;

use auth_server::{AuthServer, Scripted};
use bytes::Bytes;
use http::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::json;
use tower::ServiceExt;
use tower_oauth2::clock::ManualClock;
use tower_oauth2::reqwest::OAuth2Middleware;
use tower_oauth2::{ClientAuth, ClientCredentials, ErrorCode, OAuth2Layer, TokenCache, TokenEndpoint};

fn cache(server: &AuthServer) -> TokenCache {
    let clock = ManualClock::new();
    let endpoint = TokenEndpoint::builder(
        server.token_url(),
        ClientAuth::client_secret_post("svc", "secret"),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    TokenCache::builder(ClientCredentials::new(endpoint))
        .clock(clock)
        .build()
}

fn client(middleware: OAuth2Middleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

fn token_value(cache: &TokenCache) -> String {
    cache.token().unwrap().access_token().expose().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_token_request() {
    let server = AuthServer::start().await;
    server.set_token_delay(Duration::from_millis(100));
    let cache = cache(&server);
    let client = client(OAuth2Middleware::new(cache.clone()));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let client = client.clone();
        let url = server.resource_url();
        tasks.push(tokio::spawn(async move { client.get(url).send().await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(server.token_requests(), 1);
    let token = token_value(&cache);
    assert!(server
        .resource_tokens()
        .iter()
        .all(|t| t.as_deref() == Some(token.as_str())));
}

#[tokio::test]
async fn the_middleware_and_the_layer_share_one_cache() {
    let server = AuthServer::start().await;
    let cache = cache(&server);
    let reqwest_client = client(OAuth2Middleware::new(cache.clone()));
    let tower_client = tower::ServiceBuilder::new()
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<Bytes>>(),
        );
    let response = reqwest_client.get(server.resource_url()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request = http::Request::get(server.resource_url())
        .body(Default::default())
        .unwrap();
    let response = tower_client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_requests(), 1);
    let token = token_value(&cache);
    assert_eq!(server.resource_tokens(), vec![Some(token.clone()), Some(token)]);
}

#[tokio::test]
async fn a_401_invalidates_the_token_and_retries_a_cloneable_request_once() {
    let server = AuthServer::start().await;
    let cache = cache(&server);
    let client = client(OAuth2Middleware::new(cache.clone()).retry_on_401(true));
    cache.prefetch().await.unwrap();
    let first = token_value(&cache);
    server.revoke_access_token(&first);

    let response = client
        .post(server.resource_url())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second = token_value(&cache);
    assert_ne!(first, second);
    assert_eq!(server.resource_tokens(), vec![Some(first), Some(second.clone())]);

    // A streaming body cannot be cloned: one attempt only, but the token is still dropped.
    server.revoke_access_token(&second);
    server.reset_counters();
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"chunk"))]);
    let response = client
        .post(server.resource_url())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.resource_requests(), 1);
    assert!(cache.token().is_none());

    // Off by default: the 401 is returned and the token kept.
    let plain = self::client(OAuth2Middleware::new(cache.clone()));
    cache.prefetch().await.unwrap();
    let third = token_value(&cache);
    server.revoke_access_token(&third);
    let response = plain.get(server.resource_url()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(token_value(&cache), third);
}

#[tokio::test]
async fn token_errors_are_typed_and_the_request_is_not_sent() {
    let server = AuthServer::start().await;
    server.push_token_response(Scripted::json(400, json!({"error": "invalid_grant"})));
    let client = client(OAuth2Middleware::new(cache(&server)));
    let err = client.get(server.resource_url()).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(err) = err else {
        panic!("expected a middleware error, got {err}");
    };
    let err = err.downcast_ref::<tower_oauth2::Error>().unwrap();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    assert_eq!(server.resource_requests(), 0);
}

#[tokio::test]
async fn a_preset_authorization_header_is_left_alone() {
    let server = AuthServer::start().await;
    let client = client(OAuth2Middleware::new(cache(&server)));
    let response = client
        .get(server.resource_url())
        .bearer_auth("mine")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.token_requests(), 0);
    assert_eq!(server.resource_tokens(), vec![Some("mine".to_owned())]);
}
