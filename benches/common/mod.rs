//! What the bench binaries share: the runtime, criterion's short settings, the token they put
//! on requests, concurrent load, and a record of the measured samples for the summary tables
//! they print.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use tokio::runtime::Runtime;

/// Samples per benchmark. The summary tables take the median of the last this-many samples
/// of each benchmark, which are the ones criterion measured (the calls before them warmed up).
pub const SAMPLE_SIZE: usize = 20;

/// A 43-character access token (the length of 32 random bytes in base64url), with its scheme.
pub const BEARER: &str = "Bearer hQk3vX9wL2mR7tY1pN8sB4cF6gJ0dZ5aE-uW_iOqKxM";

/// The token alone.
pub fn token() -> &'static str {
    let token = &BEARER["Bearer ".len()..];
    assert_eq!(token.len(), 43);
    token
}

/// The runtime every bench runs on: multi-threaded, two workers (the CI machine's cores).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `tasks` tokio tasks make `iters` requests between them: each runs `task(per_task)`, with
/// `per_task` the share of each (rounded up, at least 1). Returns the time criterion should see
/// for `iters` requests (the whole time, scaled down from the rounded-up total).
pub fn spread<F, Fut>(runtime: &Runtime, tasks: usize, iters: u64, task: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let per_task = iters.div_ceil(tasks as u64).max(1);
    let total = per_task * tasks as u64;
    let elapsed = runtime.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(task(per_task))).collect();
        for handle in handles {
            handle.await.unwrap();
        }
        start.elapsed()
    });
    elapsed.mul_f64(iters as f64 / total as f64)
}

/// Short runs, so that the three bench files together finish within a few minutes on two
/// cores. Command-line options (`cargo bench -- --help`) still override these.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(2500))
        .configure_from_args()
}

/// Every routine call of every benchmark, in order: the benchmark's id and the time per
/// iteration, in nanoseconds, that call reported to criterion.
static SAMPLES: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

/// Records one routine call: `elapsed` for `iters` iterations.
pub fn record(id: &str, elapsed: Duration, iters: u64) {
    let per_iter = elapsed.as_secs_f64() * 1e9 / iters.max(1) as f64;
    SAMPLES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id.to_owned(), per_iter));
}

/// The median time per iteration, in nanoseconds, over the measured samples of `id`, if it
/// ran.
pub fn median(id: &str) -> Option<f64> {
    let samples = SAMPLES.lock().unwrap_or_else(|e| e.into_inner());
    let mut times: Vec<f64> = samples
        .iter()
        .filter(|(sample_id, _)| sample_id == id)
        .map(|(_, time)| *time)
        .collect();
    let mut measured = times.split_off(times.len().saturating_sub(SAMPLE_SIZE));
    measured.sort_by(f64::total_cmp);
    match measured.len() {
        0 => None,
        n if n % 2 == 1 => Some(measured[n / 2]),
        n => Some((measured[n / 2 - 1] + measured[n / 2]) / 2.0),
    }
}

/// A time in nanoseconds, in the unit that suits it.
pub fn show(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}
