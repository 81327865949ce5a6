//! What binding a token to its resources and routing requests to several tokens cost a request
//! on a fresh token, beside the unbound `OAuth2Layer` and a fixed-header floor, as 1 and 32
//! tasks on a two-worker tokio runtime share the service:
//!
//! - `floor`: a layer that inserts one fixed, runtime-built header value;
//! - `oauth2`: `OAuth2Layer` without a binding (every request gets the token);
//! - `oauth2_bound`: `OAuth2Layer::for_resources` with two resources, the request for the
//!   second;
//! - `router_1`, `router_4`, `router_16`: `OAuth2RouterLayer` with that many origin routes,
//!   each with its own cache, the request taking the **last** one (every other route is
//!   tried first: the worst case).
//!
//! Requests have an absolute URI (`https://api15.example.com/v1/orders`), as a client's do. The
//! inner service hands the request back, so each task reuses one request. A summary table is
//! printed at the end; the figures are in BENCHMARKS.md.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion};
use http::header::{HeaderValue, AUTHORIZATION};
use http::{Request, Response, Uri};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};
use tower_oauth2::{source_fn, OAuth2Layer, OAuth2RouterLayer, Token, TokenCache};

mod common;

type Echo = tower::util::ServiceFn<fn(Request<()>) -> Ready<Result<Response<Request<()>>, Infallible>>>;

fn echo() -> Echo {
    tower::service_fn(|request| ready(Ok(Response::new(request))))
}

const URI: &str = "https://api15.example.com/v1/orders";

fn new_request() -> Request<()> {
    let mut request = Request::new(());
    *request.uri_mut() = Uri::from_static(URI);
    request.headers_mut().reserve(8);
    request
}

fn take_back(response: Response<Request<()>>) -> Request<()> {
    let mut request = response.into_body();
    let header = request.headers_mut().remove(AUTHORIZATION);
    assert!(
        black_box(header).is_some(),
        "the layer put no token on the request"
    );
    request
}

/// The floor: one fixed header, built at run time as the cache builds its own.
#[derive(Clone)]
struct Fixed<S> {
    inner: S,
    header: HeaderValue,
}

impl<S: Service<Request<()>>> Service<Request<()>> for Fixed<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<()>) -> S::Future {
        request.headers_mut().insert(AUTHORIZATION, self.header.clone());
        self.inner.call(request)
    }
}

fn fresh_cache(runtime: &Runtime) -> TokenCache {
    let cache = TokenCache::new(source_fn(|| async {
        Ok(Token::bearer(common::token()).with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
    }));
    runtime.block_on(cache.prefetch()).unwrap();
    cache
}

/// A router with `n` origin routes; the request's origin is the last.
fn router(runtime: &Runtime, n: usize) -> OAuth2RouterLayer {
    let mut router = OAuth2RouterLayer::new();
    for i in (16 - n)..16 {
        router = router
            .route(&format!("https://api{i}.example.com"), fresh_cache(runtime))
            .unwrap();
    }
    router
}

const IMPLS: [&str; 6] = [
    "floor",
    "oauth2",
    "oauth2_bound",
    "router_1",
    "router_4",
    "router_16",
];
const CONCURRENCY: [usize; 2] = [1, 32];

macro_rules! for_each_impl {
    ($runtime:expr, |$name:ident, $service:ident| $body:expr) => {{
        {
            let mut header = HeaderValue::try_from(common::BEARER.to_owned()).unwrap();
            header.set_sensitive(true);
            let ($name, $service) = (
                "floor",
                Fixed {
                    inner: echo(),
                    header,
                },
            );
            $body
        }
        {
            let ($name, $service) = (
                "oauth2",
                OAuth2Layer::from_cache(fresh_cache($runtime)).layer(echo()),
            );
            $body
        }
        {
            let layer = OAuth2Layer::from_cache(fresh_cache($runtime))
                .for_resources(["https://auth.example.com", "https://api15.example.com/v1/"])
                .unwrap();
            let ($name, $service) = ("oauth2_bound", layer.layer(echo()));
            $body
        }
        for n in [1, 4, 16] {
            let name = match n {
                1 => "router_1",
                4 => "router_4",
                _ => "router_16",
            };
            let ($name, $service) = (name, router($runtime, n).layer(echo()));
            $body
        }
    }};
}

fn hammer<S>(runtime: &Runtime, service: &S, concurrency: usize, iters: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<Request<()>>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
{
    common::spread(runtime, concurrency, iters, |per_task| {
        let mut service = service.clone();
        async move {
            let mut request = new_request();
            for _ in 0..per_task {
                let response = service.ready().await.unwrap().call(request).await.unwrap();
                request = take_back(response);
            }
        }
    })
}

fn routing(criterion: &mut Criterion, runtime: &Runtime) {
    let mut group = criterion.benchmark_group("routing");
    for_each_impl!(runtime, |name, service| {
        for concurrency in CONCURRENCY {
            let id = format!("routing/{name}/{concurrency}");
            group.bench_with_input(BenchmarkId::new(name, concurrency), &concurrency, |b, &c| {
                b.iter_custom(|iters| {
                    let elapsed = hammer(runtime, &service, c, iters);
                    common::record(&id, elapsed, iters);
                    elapsed
                })
            });
        }
    });
    group.finish();
}

fn main() {
    let runtime = common::runtime();
    let mut criterion = common::criterion();
    routing(&mut criterion, &runtime);
    criterion.final_summary();

    eprintln!();
    eprintln!(
        "## routing: time per request (wall time / requests, all tasks), ratio to `floor` and to `oauth2`"
    );
    eprintln!();
    eprintln!("| impl | C=1 | C=32 |");
    eprintln!("| --- | ---: | ---: |");
    for name in IMPLS {
        let mut row = format!("| {name} |");
        for concurrency in CONCURRENCY {
            let time = common::median(&format!("routing/{name}/{concurrency}"));
            let floor = common::median(&format!("routing/floor/{concurrency}"));
            let oauth2 = common::median(&format!("routing/oauth2/{concurrency}"));
            row += &match (time, floor, oauth2) {
                (Some(time), Some(floor), Some(oauth2)) => format!(
                    " {} ({:.2}× floor, {:.2}× oauth2) |",
                    common::show(time),
                    time / floor,
                    time / oauth2
                ),
                _ => " – |".to_owned(),
            };
        }
        eprintln!("{row}");
    }
}
