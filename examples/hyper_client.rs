//! `OAuth2Layer` in a full tower stack over hyper-util's client:
//! `RetryLayer` (transient failures) → `TimeoutLayer` → `OAuth2Layer` → hyper-util.
//!
//! `cargo run --example hyper_client` (runs against the embedded demo servers on loopback).

#[path = "../tests/support/auth_server.rs"]
mod auth_server;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::retry::{Policy, RetryLayer};
use tower::timeout::error::Elapsed;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, RetryOnInvalidToken, TokenEndpoint};

/// Retries requests that failed for a reason that may pass: a timeout, a connection error, or
/// a transient token error (the authorization server was down). Never retries an
/// `invalid_client` or `invalid_grant`.
#[derive(Clone)]
struct RetryTransient {
    attempts_left: usize,
}

impl<Res> Policy<http::Request<Full<Bytes>>, Res, BoxError> for RetryTransient {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut http::Request<Full<Bytes>>,
        result: &mut Result<Res, BoxError>,
    ) -> Option<Self::Future> {
        let Err(err) = result else { return None };
        let transient = err.is::<Elapsed>()
            || err
                .downcast_ref::<tower_oauth2::Error>()
                .is_some_and(tower_oauth2::Error::is_transient)
            || err
                .downcast_ref::<hyper_util::client::legacy::Error>()
                .is_some_and(|e| e.is_connect());
        if !transient || self.attempts_left == 0 {
            return None;
        }
        self.attempts_left -= 1;
        Some(tokio::time::sleep(Duration::from_millis(200)))
    }

    fn clone_request(&mut self, request: &http::Request<Full<Bytes>>) -> Option<http::Request<Full<Bytes>>> {
        let mut copy = http::Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = auth_server::AuthServer::start().await;
    server.add_client(
        "orders-service",
        Some("its-secret"),
        auth_server::ClientAuthMethod::Post,
    );

    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_post("orders-service", "its-secret"),
    )?;
    let oauth2 =
        OAuth2Layer::new(ClientCredentials::new(endpoint).scope("orders:read")).invalidate_on_401(true);
    oauth2.cache().prefetch().await?;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let api = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryTransient { attempts_left: 3 }))
        .layer(RetryLayer::new(RetryOnInvalidToken::once()))
        .timeout(Duration::from_secs(10))
        .layer(oauth2.clone())
        .service(client);

    for i in 1..=3 {
        if i == 3 {
            // The resource server revokes the token: the layer drops it, and the request is
            // retried once with a new one.
            let token = oauth2.cache().token().expect("a cached token");
            server.revoke_access_token(token.access_token().expose());
        }
        let request = http::Request::get(server.resource_url()).body(Full::default())?;
        let response = api.clone().oneshot(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("request {i}: {status} {}", String::from_utf8_lossy(&body));
        assert!(status.is_success());
    }
    println!(
        "{} token requests for 3 API calls (one revoked token replaced)",
        server.token_requests()
    );
    Ok(())
}
