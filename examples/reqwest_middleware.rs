//! `OAuth2Middleware` with reqwest-middleware and reqwest-retry:
//! `cargo run --example reqwest_middleware --features reqwest-retry`.
//!
//! Runs against the embedded demo servers on loopback. The middleware shares the layer's
//! token cache type, so one cache can serve a tower client and a reqwest client at once.

#[path = "../tests/support/auth_server.rs"]
mod auth_server;

use std::time::Duration;

use reqwest_middleware::ClientBuilder;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::RetryTransientMiddleware;
use tower_oauth2::reqwest::{OAuth2Middleware, RetryTokenErrors};
use tower_oauth2::{ClientAuth, ClientCredentials, TokenCache, TokenEndpoint};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = auth_server::AuthServer::start().await;
    server.add_client("reporting", Some("s3cret"), auth_server::ClientAuthMethod::Basic);

    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_basic("reporting", "s3cret"),
    )?;
    let cache = TokenCache::new(ClientCredentials::new(endpoint).scope("reports:read"));
    // Timeouts are the reqwest client's; retries of timeouts, connection errors, 5xx and
    // transient token errors (RetryTokenErrors) come from reqwest-retry, stacked before
    // (outside) the OAuth2 middleware so that each attempt takes the current token.
    let client = ClientBuilder::new(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
    )
    .with(RetryTransientMiddleware::new_with_policy_and_strategy(
        ExponentialBackoff::builder().build_with_max_retries(3),
        RetryTokenErrors::default(),
    ))
    .with(OAuth2Middleware::new(cache.clone()).retry_on_401(true))
    .build();

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        let url = server.resource_url();
        tasks.push(tokio::spawn(async move { client.get(url).send().await }));
    }
    for task in tasks {
        let response = task.await??;
        assert!(response.status().is_success(), "{}", response.status());
    }
    println!(
        "20 concurrent requests, {} token request(s); token expires at {:?}",
        server.token_requests(),
        cache.expires_at()
    );
    Ok(())
}
