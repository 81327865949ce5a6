//! Replicas sharing one token through Redis: `cargo run --example redis_store --features redis`
//! (with a Redis at `REDIS_URL`, `redis://127.0.0.1:6379/` by default; `redis-server` on a
//! developer machine will do).
//!
//! Starts the demo authorization server on loopback, then eight `TokenCache`s, as eight
//! replicas of a service would each have, over one `RedisStore`, and beside them eight caches
//! without a store (against a second demo server). Both ask for tokens that live three seconds
//! for ten seconds, and the program prints how many token requests each server received: the
//! replicas with the store make the requests of one cache, the others eight times as many. If
//! Redis does not answer, every cache fetches on its own (and the program says so): the store
//! never fails a request.

#[path = "../tests/support/auth_server.rs"]
mod auth_server;

use std::time::{Duration, Instant};

use tower_oauth2::store::{RedisStore, SharedStore, TokenStore};
use tower_oauth2::{ClientAuth, ClientCredentials, TokenCache, TokenEndpoint};

const REPLICAS: usize = 8;
const TOKEN_LIFETIME: u64 = 3;
const RUN_FOR: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    // Two demo authorization servers: one for the replicas with the store, one for the same
    // replicas without it, run side by side for comparison.
    let (shared_server, alone_server) = (demo_server().await, demo_server().await);

    // One store for the replicas (opening it does not connect).
    let store = RedisStore::open(&url)?;
    // A prefix of this run's own, so that a token of an earlier run is not reused.
    let prefix = format!("tower-oauth2-example-{}:", std::process::id());
    if let Err(err) = store.get(&format!("{prefix}probe")).await {
        println!("Redis at {url} does not answer ({err}): each replica fetches on its own.");
    }
    println!(
        "{REPLICAS} replicas, tokens that live {TOKEN_LIFETIME} s (refreshed 1 s ahead), {} s of requests",
        RUN_FOR.as_secs()
    );

    let with_store = replicas(&shared_server, Some(SharedStore::new(store).prefix(prefix)))?;
    let without = replicas(&alone_server, None)?;
    let (with_store, without) = tokio::join!(run(with_store), run(without));

    println!(
        "with the Redis store:    {:>3} token requests, {} valid_token calls failed",
        shared_server.token_requests(),
        with_store?
    );
    println!(
        "without a store:         {:>3} token requests, {} valid_token calls failed",
        alone_server.token_requests(),
        without?
    );
    Ok(())
}

/// The demo authorization server, with client `svc` and short-lived tokens.
async fn demo_server() -> auth_server::AuthServer {
    let server = auth_server::AuthServer::start().await;
    server.add_client("svc", Some("svc-secret"), auth_server::ClientAuthMethod::Basic);
    server.set_expires_in(Some(TOKEN_LIFETIME));
    server
}

/// The caches of the replicas, one each, with `store` if any.
fn replicas(
    server: &auth_server::AuthServer,
    store: Option<SharedStore>,
) -> Result<Vec<TokenCache>, tower_oauth2::Error> {
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "svc-secret"),
    )?;
    Ok((0..REPLICAS)
        .map(|_| {
            let builder = TokenCache::builder(ClientCredentials::new(endpoint.clone()).scope("demo"))
                .refresh_ahead(Duration::from_secs(1))
                .leeway(Duration::from_millis(500));
            match &store {
                Some(store) => builder.store(store.clone()).build(),
                None => builder.build(),
            }
        })
        .collect())
}

/// Every replica asks for its token every 50 ms, as its requests would: how many calls failed.
async fn run(caches: Vec<TokenCache>) -> Result<u64, tokio::task::JoinError> {
    let start = Instant::now();
    let tasks: Vec<_> = caches
        .into_iter()
        .map(|cache| {
            tokio::spawn(async move {
                let mut failed = 0u64;
                while start.elapsed() < RUN_FOR {
                    if cache.valid_token().await.is_err() {
                        failed += 1;
                    }
                    tokio::time::sleep(EVERY).await;
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    Ok(failed)
}
