//! The quickstart: `cargo run --example quickstart`.
//!
//! Starts a demo authorization server and resource server on loopback (no configuration, no
//! network), wraps hyper-util's client in `OAuth2Layer` with client credentials, and sends
//! requests for about ten seconds with tokens that live four seconds. Watch the token being
//! refreshed ahead of expiry while requests keep flowing; the token in use is shown only as a
//! short fingerprint.

#[path = "../tests/support/auth_server.rs"]
mod auth_server;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenCache, TokenEndpoint};

const TOKEN_LIFETIME: u64 = 4;
const RUN_FOR: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(250);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // 1. The demo authorization server (and the API it protects).
    let server = auth_server::AuthServer::start().await;
    server.add_client(
        "quickstart",
        Some("quickstart-secret"),
        auth_server::ClientAuthMethod::Basic,
    );
    server.set_expires_in(Some(TOKEN_LIFETIME));
    println!("tower-oauth2 quickstart");
    println!("  authorization server  {}", server.token_url());
    println!("  resource server       {}", server.resource_url());
    println!(
        "  tokens live {TOKEN_LIFETIME} s; the layer stops sending a token 1 s before it expires (the leeway)"
    );
    println!("  and refreshes it in the background 1.5 s before that\n");

    // 2. A token source, a cache, and the layer over hyper-util's client.
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_basic("quickstart", "quickstart-secret"),
    )?;
    let cache = TokenCache::builder(ClientCredentials::new(endpoint).scope("demo"))
        .refresh_ahead(Duration::from_millis(1500))
        .build();
    cache.prefetch().await?; // fails here, at start-up, on bad credentials
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let api = ServiceBuilder::new()
        .timeout(Duration::from_secs(5))
        .layer(OAuth2Layer::from_cache(cache.clone()))
        .service(client);

    // 3. Requests, as an application would send them, never thinking about tokens.
    let start = Instant::now();
    let (mut sent, mut failed, mut refreshes) = (0, 0, 0);
    let mut previous: Option<String> = None;
    while start.elapsed() < RUN_FOR {
        let request = http::Request::get(server.resource_url()).body(Empty::new())?;
        let result = api.clone().oneshot(request).await;
        sent += 1;
        let used = server
            .resource_tokens()
            .last()
            .cloned()
            .flatten()
            .unwrap_or_default();
        let status = match &result {
            Ok(response) if response.status().is_success() => response.status().to_string(),
            Ok(response) => {
                failed += 1;
                response.status().to_string()
            }
            Err(err) => {
                failed += 1;
                format!("error: {err}")
            }
        };
        let left = cache
            .valid_until()
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .map_or_else(|| "-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
        let mut note = String::new();
        if previous.as_deref().is_some_and(|p| p != used) {
            refreshes += 1;
            note = format!(
                "  <- new token, fetched in the background before the old one expired (#{refreshes})"
            );
        }
        println!(
            "  t={:>5.2}s  GET /resource  {status:<6}  token {}  (cached token usable for {left}){note}",
            start.elapsed().as_secs_f64(),
            fingerprint(&used),
        );
        previous = Some(used);
        tokio::time::sleep(EVERY).await;
    }

    println!(
        "\n{sent} requests, {failed} failed, {refreshes} refreshes ahead of expiry, {} token requests in all",
        server.token_requests()
    );
    if failed > 0 || refreshes < 2 {
        return Err("expected no failed request and at least two refreshes".into());
    }
    Ok(())
}

/// A short, non-reversible fingerprint of a token, safe to print.
fn fingerprint(token: &str) -> String {
    let mut hasher = DefaultHasher::new();
    token.hash(&mut hasher);
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}
