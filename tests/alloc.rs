//! Counts the heap allocations `OAuth2Layer` adds to a request on a fresh token: zero.
//!
//! A test binary of its own, because it installs a counting global allocator.

use std::convert::Infallible;
use std::future::ready;
use std::time::{Duration, SystemTime};

use http::header::{HeaderValue, AUTHORIZATION};
use http::{Request, Response};
use tower::{Layer, Service};
use tower_oauth2::{source_fn, OAuth2Layer, OAuth2RouterLayer, Token, TokenCache};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, call_now, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A request whose header map already has room, as a real client's would.
fn request() -> Request<()> {
    let mut request = Request::new(());
    request.headers_mut().reserve(8);
    request
}

/// The allocations `n` calls of `service` make, the requests made beforehand.
fn allocations_of_calls<S>(service: &mut S, n: usize) -> u64
where
    S: Service<Request<()>, Response = Response<Option<HeaderValue>>>,
    S::Error: std::fmt::Debug,
{
    allocations_of_calls_to(service, n, "/")
}

/// The same, with requests to `uri`.
fn allocations_of_calls_to<S>(service: &mut S, n: usize, uri: &str) -> u64
where
    S: Service<Request<()>, Response = Response<Option<HeaderValue>>>,
    S::Error: std::fmt::Debug,
{
    let mut requests: Vec<_> = (0..n)
        .map(|_| {
            let mut request = request();
            *request.uri_mut() = uri.parse().unwrap();
            request
        })
        .collect();
    let before = allocations();
    for request in requests.drain(..) {
        let response = call_now(service, request);
        assert!(response.body().is_some());
    }
    allocations() - before
}

#[test]
fn the_fresh_path_adds_no_heap_allocation() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = TokenCache::new(source_fn(|| async {
        Ok(Token::bearer("a-fresh-token").with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
    }));
    runtime.block_on(cache.prefetch()).unwrap();

    let inner = tower::service_fn(|request: Request<()>| {
        ready(Ok::<_, Infallible>(Response::new(
            request.headers().get(AUTHORIZATION).cloned(),
        )))
    });
    let mut layered = OAuth2Layer::from_cache(cache).layer(inner);
    // The floor: the same inner service given the same fixed header by hand.
    let fixed = HeaderValue::from_static("Bearer a-fresh-token");
    let mut floor = tower::service_fn(move |mut request: Request<()>| {
        request.headers_mut().insert(AUTHORIZATION, fixed.clone());
        ready(Ok::<_, Infallible>(Response::new(
            request.headers().get(AUTHORIZATION).cloned(),
        )))
    });

    // Warm up: the first clone of the header value makes its bytes shareable.
    let response = call_now(&mut layered, request());
    assert_eq!(response.body().as_ref().unwrap(), "Bearer a-fresh-token");
    let _ = call_now(&mut floor, request());

    const N: usize = 1_000;
    let layered_allocations = allocations_of_calls(&mut layered, N);
    let floor_allocations = allocations_of_calls(&mut floor, N);

    println!("allocations per request: layer {layered_allocations}/{N}, fixed-header floor {floor_allocations}/{N}");
    assert_eq!(floor_allocations, 0);
    assert_eq!(layered_allocations, 0, "the layer allocated on the fresh path");
}

/// A layer bound to resources, and a router with 16 routes (the request taking the last),
/// add no allocation either.
#[test]
fn bound_layers_and_routers_add_no_heap_allocation() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fresh_cache = || {
        let cache = TokenCache::new(source_fn(|| async {
            Ok(Token::bearer("a-fresh-token").with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
        }));
        runtime.block_on(cache.prefetch()).unwrap();
        cache
    };
    let inner = || {
        tower::service_fn(|request: Request<()>| {
            ready(Ok::<_, Infallible>(Response::new(
                request.headers().get(AUTHORIZATION).cloned(),
            )))
        })
    };
    let mut bound = OAuth2Layer::from_cache(fresh_cache())
        .for_resources(["https://a.example", "https://api.example.com/v1/"])
        .unwrap()
        .layer(inner());
    let mut router = OAuth2RouterLayer::new();
    for i in 0..16 {
        let url = if i == 15 {
            "https://api.example.com/v1/".to_owned()
        } else {
            format!("https://api{i}.example.com")
        };
        router = router.route(&url, fresh_cache()).unwrap();
    }
    let mut router = router.layer(inner());
    let uri = "https://api.example.com/v1/orders";
    let mut warm = request();
    *warm.uri_mut() = uri.parse().unwrap();
    assert!(call_now(&mut bound, warm.clone()).body().is_some());
    assert!(call_now(&mut router, warm).body().is_some());

    const N: usize = 1_000;
    assert_eq!(
        allocations_of_calls_to(&mut bound, N, uri),
        0,
        "the bound layer allocated"
    );
    assert_eq!(
        allocations_of_calls_to(&mut router, N, uri),
        0,
        "the router allocated"
    );
}
