//! A refresh storm: N requests (1,000 and 10,000) arrive together on an empty cache. The token
//! source answers after 5 ms and counts its calls; every storm must fetch exactly one token.
//!
//! Each storm has a fresh cache. All N requests are made (`OAuth2::call`, which looks the
//! token up) before any runs, so all of them find the cache empty; each then runs as a task
//! of its own on a two-worker runtime. The time measured is from the first call until the
//! last response, so it includes the fetch (5 ms, which tokio's millisecond timer makes 5 to
//! 6 ms); the summary also prints what the storm costs beyond the fetch as the source timed
//! it, in all and per request.

use std::convert::Infallible;
use std::future::ready;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use http::header::AUTHORIZATION;
use http::{Request, Response};
use tokio::runtime::Runtime;
use tower::{Layer, Service};
use tower_oauth2::{source_fn, OAuth2Layer, Token, TokenCache};

mod common;

const STORMS: [usize; 2] = [1_000, 10_000];
const FETCH_DELAY: Duration = Duration::from_millis(5);

/// Fetch counts of every storm run: (N, fetches).
static FETCHES: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// One storm of `n` requests on a new, empty cache. Returns its duration, and how long the
/// token source took (the 5 ms sleep, rounded up to the timer's millisecond).
async fn storm(n: usize) -> (Duration, Duration) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let fetch_time = Arc::new(Mutex::new(Duration::ZERO));
    let (counter, timer) = (fetches.clone(), fetch_time.clone());
    let cache = TokenCache::new(source_fn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let timer = timer.clone();
        async move {
            let started = Instant::now();
            tokio::time::sleep(FETCH_DELAY).await;
            *timer.lock().unwrap() = started.elapsed();
            Ok(Token::bearer(common::token()).with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
        }
    }));
    let service = OAuth2Layer::from_cache(cache).layer(tower::service_fn(|request: Request<()>| {
        ready(Ok::<_, Infallible>(Response::new(
            request.headers().contains_key(AUTHORIZATION),
        )))
    }));

    let start = Instant::now();
    let calls: Vec<_> = {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        (0..n)
            .map(|_| {
                let mut service = service.clone();
                assert!(service.poll_ready(&mut cx).is_ready());
                service.call(Request::new(()))
            })
            .collect()
    };
    let tasks: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert!(response.into_body(), "a request went out without its token");
    }
    let elapsed = start.elapsed();

    let fetches = fetches.load(Ordering::SeqCst);
    assert_eq!(fetches, 1, "a storm of {n} requests fetched {fetches} tokens");
    FETCHES.lock().unwrap().push((n, fetches));
    let fetch_time = *fetch_time.lock().unwrap();
    (elapsed, fetch_time)
}

fn refresh_storm(criterion: &mut Criterion, runtime: &Runtime) {
    let mut group = criterion.benchmark_group("refresh_storm");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(common::SAMPLE_SIZE)
        .measurement_time(Duration::from_secs(2));
    for n in STORMS {
        let id = format!("refresh_storm/{n}");
        let beyond_id = format!("refresh_storm/{n}/beyond_fetch");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let (mut elapsed, mut beyond) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    // Driven from a worker thread, as requests of a server would be.
                    let (time, fetch_time) = runtime.block_on(runtime.spawn(storm(n))).unwrap();
                    elapsed += time;
                    beyond += time.saturating_sub(fetch_time);
                }
                common::record(&id, elapsed, iters);
                common::record(&beyond_id, beyond, iters);
                elapsed
            })
        });
    }
    group.finish();
}

fn main() {
    let runtime = common::runtime();
    let mut criterion = common::criterion();
    refresh_storm(&mut criterion, &runtime);
    criterion.final_summary();

    eprintln!();
    eprintln!("## refresh storm: N requests on an empty cache, token source answering after 5 ms");
    eprintln!();
    eprintln!("| N | time to last response | beyond the fetch | beyond the fetch, per request | storms run | token fetches per storm |");
    eprintln!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    let fetches = FETCHES.lock().unwrap();
    for n in STORMS {
        let counts: Vec<usize> = fetches.iter().filter(|(m, _)| *m == n).map(|(_, f)| *f).collect();
        let (Some(min), Some(max)) = (counts.iter().min(), counts.iter().max()) else {
            continue;
        };
        let fetched = if min == max {
            format!("{min}")
        } else {
            format!("{min}..{max}")
        };
        let time = common::median(&format!("refresh_storm/{n}")).map_or("–".to_owned(), common::show);
        let (beyond, per_request) = match common::median(&format!("refresh_storm/{n}/beyond_fetch")) {
            Some(beyond) => (common::show(beyond), common::show(beyond / n as f64)),
            None => ("–".to_owned(), "–".to_owned()),
        };
        eprintln!(
            "| {n} | {time} | {beyond} | {per_request} | {} | {fetched} |",
            counts.len()
        );
    }
    eprintln!();
}
