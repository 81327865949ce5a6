//! End to end: hyper-util's client, with and without `OAuth2Layer`, against a minimal hyper
//! server on loopback that answers `200` with an empty body to anything (it checks no token,
//! so both arms cost the server the same). HTTP/1.1 keep-alive, 32 requests in flight (32
//! tasks sharing one client and its connection pool). Reported as requests per second, and
//! the ratio with/without printed at the end.

use std::convert::Infallible;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};
use tower_oauth2::{source_fn, OAuth2Layer, Token, TokenCache};

mod common;

const IN_FLIGHT: usize = 32;

/// Serves `200`, empty body, to every request, on a loopback port.
async fn start_server() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// `IN_FLIGHT` tasks, each with a clone of `client`, make `iters` requests between them
/// (rounded up). Returns the time criterion should see for `iters` requests.
fn load<S>(runtime: &Runtime, client: &S, uri: &Uri, iters: u64) -> Duration
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Debug,
{
    common::spread(runtime, IN_FLIGHT, iters, |per_task| {
        let mut client = client.clone();
        let uri = uri.clone();
        async move {
            for _ in 0..per_task {
                let request = Request::get(uri.clone()).body(Empty::new()).unwrap();
                let response = client.ready().await.unwrap().call(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.into_body().collect().await.unwrap();
            }
        }
    })
}

/// The size of a service's response future, which each call returns by value.
fn future_size<S: Service<Request<Empty<Bytes>>>>(_: &S) -> usize {
    std::mem::size_of::<S::Future>()
}

/// Runs both arms; returns the response future sizes without and with the layer.
fn end_to_end(criterion: &mut Criterion, runtime: &Runtime) -> (usize, usize) {
    let addr = runtime.block_on(start_server());
    let uri: Uri = format!("http://{addr}/resource").parse().unwrap();

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(IN_FLIGHT * 2)
        .build::<_, Empty<Bytes>>(connector);

    let cache = TokenCache::new(source_fn(|| async {
        Ok(Token::bearer(common::token()).with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
    }));
    runtime.block_on(cache.prefetch()).unwrap();
    let with_layer = OAuth2Layer::from_cache(cache).layer(client.clone());

    // Open the pool's connections before either arm is measured.
    load(runtime, &client, &uri, 10 * IN_FLIGHT as u64);

    let mut group = criterion.benchmark_group("end_to_end");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("without_layer", IN_FLIGHT), |b| {
        b.iter_custom(|iters| {
            let elapsed = load(runtime, &client, &uri, iters);
            common::record("without_layer", elapsed, iters);
            elapsed
        })
    });
    group.bench_function(BenchmarkId::new("with_layer", IN_FLIGHT), |b| {
        b.iter_custom(|iters| {
            let elapsed = load(runtime, &with_layer, &uri, iters);
            common::record("with_layer", elapsed, iters);
            elapsed
        })
    });
    group.finish();
    (future_size(&client), future_size(&with_layer))
}

fn main() {
    let runtime = common::runtime();
    let mut criterion = common::criterion();
    let (without_size, with_size) = end_to_end(&mut criterion, &runtime);
    criterion.final_summary();

    let rps = |id| common::median(id).map(|per_request| 1e9 / per_request);
    eprintln!();
    eprintln!("## end to end: hyper-util client → loopback hyper server, HTTP/1.1 keep-alive, {IN_FLIGHT} in flight");
    eprintln!();
    eprintln!("| arm | requests/s | time per request |");
    eprintln!("| --- | ---: | ---: |");
    for id in ["without_layer", "with_layer"] {
        if let (Some(rps), Some(time)) = (rps(id), common::median(id)) {
            eprintln!("| {id} | {rps:.0} | {} |", common::show(time));
        }
    }
    if let (Some(with), Some(without)) = (rps("with_layer"), rps("without_layer")) {
        eprintln!();
        eprintln!("with/without throughput ratio: {:.3}", with / without);
    }
    eprintln!("response future: {without_size} B without the layer, {with_size} B with it");
    eprintln!();
}
