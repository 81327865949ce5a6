//! `OAuth2Layer` in a full tower stack over hyper-util's client, in the order that works:
//! a timeout for the whole request (all attempts) → `OAuth2Layer::with_retry()` (retries stacked
//! above the token layer) → a timeout per call of the API → hyper-util.
//!
//! The authorization server is down for the first two token requests (503 with
//! `Retry-After`), then recovers; later the API revokes the token, and the request is retried
//! once with a new one. Every request succeeds.
//!
//! `cargo run --example hyper_client` (runs against the embedded demo servers on loopback).

#[path = "../tests/support/auth_server.rs"]
mod auth_server;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenEndpoint};

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
    let oauth2 = OAuth2Layer::new(ClientCredentials::new(endpoint).scope("orders:read"));

    // The authorization server is down for a moment: two 503s, then tokens again.
    for _ in 0..2 {
        server.push_token_response(
            auth_server::Scripted::json(503, json!({"error": "temporarily_unavailable"}))
                .with_header("retry-after", "1"),
        );
    }

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let api = ServiceBuilder::new()
        // The whole request, token waits and retries included.
        .timeout(Duration::from_secs(60))
        // 401 invalid_token: drop the token and resend once; transient token errors: resend at
        // the cache's next token attempt. Stacked above the token layer by construction.
        .layer(oauth2.clone().with_retry())
        // Each call of the API.
        .timeout(Duration::from_secs(10))
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
        "{} token requests for 3 API calls (two failed while the server was down, one replaced a revoked token)",
        server.token_requests()
    );
    Ok(())
}
