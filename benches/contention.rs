//! What `OAuth2Layer` costs a request on a fresh cached token, as 1 to 128 tasks on a
//! two-worker tokio runtime hammer the same cache, beside baselines in the same harness:
//!
//! - `floor`: a layer that inserts one fixed header value, built at run time from a `String`
//!   and marked sensitive, as the cache builds its own (a `Bytes`-backed, refcounted value);
//! - `floor_static`: the same with `HeaderValue::from_static` (clones copy a pointer, no
//!   refcount), to show what the refcount costs;
//! - `floor_shaped`: the floor's fixed header inside the shape of the real layer (the
//!   pass-through check for a request that has its own `Authorization`, and a response future
//!   with a wait state, like `OAuth2`'s), with no cache: the lock-based arms below are this
//!   plus their lock and fresh check;
//! - `oauth2`: the real layer (per-service `arc_swap::Cache` check, coarse clock read through
//!   `dyn Clock`, header clone);
//! - `oauth2_store`: the same over a cache with a token store attached (a `MemoryStore`), which
//!   only its refreshes consult: it should cost what `oauth2` costs;
//! - `std_mutex`, `std_rwlock`, `tokio_mutex`: the token behind a lock, as Go's
//!   ReuseTokenSource, gcp_auth and yup-oauth2 hold theirs, with the same fresh check
//!   (`SystemTime::now() < stale_at`) and header clone, so that little but the synchronization
//!   differs (`tokio_mutex` waits for its lock in the wait state, the others never wait).
//!
//! The inner service is a no-op that hands the request back in its response, so each task
//! reuses one request (its header map allocates once) and the inserted header is read and
//! removed after every call: a request costs no heap allocation unless the layer adds one.
//!
//! Criterion's figure for `contention/<impl>/<C>` is wall time divided by the number of
//! requests, all tasks together. A summary table (time per request and ratio to `floor`) and
//! the heap allocations per request are printed at the end.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion};
use http::header::{HeaderValue, AUTHORIZATION};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};
use tower_oauth2::store::{MemoryStore, SharedStore, StoreKey};
use tower_oauth2::{source_fn, OAuth2Layer, Token, TokenCache};

mod common;

// ---------------------------------------------------------------------------------------
// Counting allocator: counts the allocations of the thread that asks.

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, call_now, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------------------
// The inner service and the request.

/// The no-op inner service: answers at once, handing the request back as the body.
type Echo = tower::util::ServiceFn<fn(Request<()>) -> Ready<Result<Response<Request<()>>, Infallible>>>;

fn echo() -> Echo {
    tower::service_fn(|request| ready(Ok(Response::new(request))))
}

/// A request whose header map has room, as a real client's has.
fn new_request() -> Request<()> {
    let mut request = Request::new(());
    request.headers_mut().reserve(8);
    request
}

/// Takes the request back from the response; reads and removes the header the layer put on
/// it, so that the next call inserts it again.
fn take_back(response: Response<Request<()>>) -> Request<()> {
    let mut request = response.into_body();
    let header = request.headers_mut().remove(AUTHORIZATION);
    assert!(
        black_box(header).is_some(),
        "no Authorization header was inserted"
    );
    request
}

// ---------------------------------------------------------------------------------------
// Baselines.

/// The floor: inserts a clone of one fixed header value. No fresh check, no lock.
#[derive(Clone)]
struct FixedHeaderLayer(HeaderValue);

#[derive(Clone)]
struct FixedHeader<S> {
    inner: S,
    value: HeaderValue,
}

impl<S> Layer<S> for FixedHeaderLayer {
    type Service = FixedHeader<S>;
    fn layer(&self, inner: S) -> FixedHeader<S> {
        FixedHeader {
            inner,
            value: self.0.clone(),
        }
    }
}

impl<S: Service<Request<B>>, B> Service<Request<B>> for FixedHeader<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        request.headers_mut().insert(AUTHORIZATION, self.value.clone());
        self.inner.call(request)
    }
}

/// `Bearer <token>` as the cache builds it: from a `String`, marked sensitive.
fn runtime_header() -> HeaderValue {
    let mut header = HeaderValue::try_from(format!("Bearer {}", common::token())).unwrap();
    header.set_sensitive(true);
    header
}

fn static_header() -> HeaderValue {
    let mut header = HeaderValue::from_static(common::BEARER);
    header.set_sensitive(true);
    header
}

/// A cached token for the lock-based caches: the header and when it becomes stale.
struct Entry {
    header: HeaderValue,
    stale_at: SystemTime,
}

impl Entry {
    fn new() -> Self {
        Entry {
            header: runtime_header(),
            stale_at: SystemTime::now() + Duration::from_secs(3600),
        }
    }

    /// The fresh check of the real cache (with the clock called directly, not through
    /// `dyn Clock`) and the header clone.
    #[inline]
    fn fresh_header(&self) -> HeaderValue {
        if SystemTime::now() < self.stale_at {
            self.header.clone()
        } else {
            panic!("the token went stale during the benchmark")
        }
    }
}

/// The response future of the lock-based layers, shaped like `OAuth2`'s own: the inner
/// future (plus the room `OAuth2` keeps for a token generation, unused here as there), or a
/// wait for the token holding the readied inner service and the request. The sync-lock arms
/// never wait (`W` is `Pending`, never made), as `OAuth2` never does on a fresh token, so that
/// against `oauth2` only the synchronization differs, not the size or shape of the future.
type Sent = Option<(Arc<()>, u64)>;

pin_project! {
    struct Shaped<S, B, W>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: ShapedState<S, B, W>,
    }
}

pin_project! {
    #[project = ShapedProj]
    enum ShapedState<S, B, W>
    where
        S: Service<Request<B>>,
    {
        Called {
            #[pin]
            future: S::Future,
            sent: Sent,
        },
        Waiting {
            #[pin]
            wait: W,
            inner: Option<(S, Request<B>)>,
        },
    }
}

impl<S: Service<Request<B>>, B, W> Shaped<S, B, W> {
    fn called(future: S::Future) -> Self {
        Shaped {
            state: ShapedState::Called { future, sent: None },
        }
    }
}

/// What the waiting state waits for: the `tokio::sync::Mutex` guard of the cache entry.
type TokioGuard = tokio::sync::MutexGuard<'static, Entry>;

impl<S, B, W> Future for Shaped<S, B, W>
where
    S: Service<Request<B>>,
    W: Future<Output = TokioGuard>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                ShapedProj::Called { future, .. } => return future.poll(cx),
                ShapedProj::Waiting { wait, inner } => {
                    let header = std::task::ready!(wait.poll(cx)).fresh_header();
                    let (mut service, mut request) = inner.take().expect("polled after completion");
                    request.headers_mut().insert(AUTHORIZATION, header);
                    let future = service.call(request);
                    this.state.set(ShapedState::Called { future, sent: None });
                }
            }
        }
    }
}

/// A token cache read synchronously.
trait SyncCache: Clone {
    fn header(&self) -> HeaderValue;
}

/// No cache: the floor's fixed header (for `floor_shaped`).
#[derive(Clone)]
struct Fixed(HeaderValue);

impl SyncCache for Fixed {
    #[inline]
    fn header(&self) -> HeaderValue {
        self.0.clone()
    }
}

#[derive(Clone)]
struct StdMutex(Arc<Mutex<Entry>>);

impl SyncCache for StdMutex {
    #[inline]
    fn header(&self) -> HeaderValue {
        self.0.lock().unwrap().fresh_header()
    }
}

#[derive(Clone)]
struct StdRwLock(Arc<RwLock<Entry>>);

impl SyncCache for StdRwLock {
    #[inline]
    fn header(&self) -> HeaderValue {
        self.0.read().unwrap().fresh_header()
    }
}

/// A layer over a synchronously read cache, doing what `OAuth2::call` does on the fresh path:
/// pass a request with its own `Authorization` through, else look the token up and insert
/// it; the response future has `OAuth2`'s shape.
#[derive(Clone)]
struct SyncLayer<K>(K);

#[derive(Clone)]
struct SyncService<S, K> {
    inner: S,
    cache: K,
}

impl<S, K: SyncCache> Layer<S> for SyncLayer<K> {
    type Service = SyncService<S, K>;
    fn layer(&self, inner: S) -> SyncService<S, K> {
        SyncService {
            inner,
            cache: self.0.clone(),
        }
    }
}

impl<S: Service<Request<B>>, B, K: SyncCache> Service<Request<B>> for SyncService<S, K> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Shaped<S, B, std::future::Pending<TokioGuard>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !request.headers().contains_key(AUTHORIZATION) {
            request.headers_mut().insert(AUTHORIZATION, self.cache.header());
        }
        Shaped::called(self.inner.call(request))
    }
}

/// The token behind a `tokio::sync::Mutex` (leaked, so the lock future is `'static`).
type TokioLock = tokio::sync::Mutex<Entry>;

/// A layer over a `tokio::sync::Mutex` cache. The lock is awaited in the response future,
/// which takes the readied inner service along (as `OAuth2` does when it waits for a token);
/// no boxing: `L` is the lock future's type, named through the function that makes it.
struct TokioMutexLayer<L> {
    cache: &'static TokioLock,
    lock: fn(&'static TokioLock) -> L,
}

impl<L> Clone for TokioMutexLayer<L> {
    fn clone(&self) -> Self {
        TokioMutexLayer {
            cache: self.cache,
            lock: self.lock,
        }
    }
}

fn tokio_mutex_layer(entry: Entry) -> TokioMutexLayer<impl Future<Output = TokioGuard> + Send> {
    TokioMutexLayer {
        cache: Box::leak(Box::new(tokio::sync::Mutex::new(entry))),
        lock: |cache| cache.lock(),
    }
}

struct TokioMutex<S, L> {
    inner: S,
    cache: &'static TokioLock,
    lock: fn(&'static TokioLock) -> L,
}

impl<S: Clone, L> Clone for TokioMutex<S, L> {
    fn clone(&self) -> Self {
        TokioMutex {
            inner: self.inner.clone(),
            cache: self.cache,
            lock: self.lock,
        }
    }
}

impl<S, L> Layer<S> for TokioMutexLayer<L> {
    type Service = TokioMutex<S, L>;
    fn layer(&self, inner: S) -> TokioMutex<S, L> {
        TokioMutex {
            inner,
            cache: self.cache,
            lock: self.lock,
        }
    }
}

impl<S, B, L> Service<Request<B>> for TokioMutex<S, L>
where
    S: Service<Request<B>> + Clone,
    L: Future<Output = TokioGuard>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Shaped<S, B, L>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.headers().contains_key(AUTHORIZATION) {
            return Shaped::called(self.inner.call(request));
        }
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        Shaped {
            state: ShapedState::Waiting {
                wait: (self.lock)(self.cache),
                inner: Some((ready, request)),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// The arms.

/// Every arm, in table order. `floor` is what the ratios are taken to.
const IMPLS: [&str; 9] = [
    "floor_static",
    "floor",
    "floor_box_error",
    "floor_shaped",
    "oauth2",
    "oauth2_store",
    "std_mutex",
    "std_rwlock",
    "tokio_mutex",
];
const CONCURRENCY: [usize; 5] = [1, 2, 8, 32, 128];

/// The real layer over a cache holding a fresh token (valid for an hour).
fn oauth2_layer(runtime: &Runtime) -> OAuth2Layer {
    let cache = TokenCache::new(source_fn(|| async {
        Ok(Token::bearer(common::token()).with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
    }));
    runtime.block_on(cache.prefetch()).unwrap();
    OAuth2Layer::from_cache(cache)
}

/// [`oauth2_layer`] with a token store attached (the prefetch went through it).
fn oauth2_store_layer(runtime: &Runtime) -> OAuth2Layer {
    let cache = TokenCache::builder(source_fn(|| async {
        Ok(Token::bearer(common::token()).with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
    }))
    .store(SharedStore::new(MemoryStore::new()).key(StoreKey::named("bench")))
    .build();
    runtime.block_on(cache.prefetch()).unwrap();
    OAuth2Layer::from_cache(cache)
}

/// Calls `arm` with the service of each implementation, built over [`echo`].
macro_rules! for_each_impl {
    ($runtime:expr, |$name:ident, $service:ident| $body:expr) => {{
        {
            let ($name, $service) = ("floor_static", FixedHeaderLayer(static_header()).layer(echo()));
            $body
        }
        {
            let ($name, $service) = ("floor", FixedHeaderLayer(runtime_header()).layer(echo()));
            $body
        }
        {
            // The floor with the error type of a layer that can fail on its own: tower's
            // `BoxError`, as `OAuth2` (and tower's `Timeout`) have.
            let ($name, $service) = (
                "floor_box_error",
                tower::util::MapErrLayer::new(|never: Infallible| -> tower::BoxError { match never {} })
                    .layer(FixedHeaderLayer(runtime_header()).layer(echo())),
            );
            $body
        }
        {
            let ($name, $service) = ("floor_shaped", SyncLayer(Fixed(runtime_header())).layer(echo()));
            $body
        }
        {
            let ($name, $service) = ("oauth2", oauth2_layer($runtime).layer(echo()));
            $body
        }
        {
            let ($name, $service) = ("oauth2_store", oauth2_store_layer($runtime).layer(echo()));
            $body
        }
        {
            let ($name, $service) = (
                "std_mutex",
                SyncLayer(StdMutex(Arc::new(Mutex::new(Entry::new())))).layer(echo()),
            );
            $body
        }
        {
            let ($name, $service) = (
                "std_rwlock",
                SyncLayer(StdRwLock(Arc::new(RwLock::new(Entry::new())))).layer(echo()),
            );
            $body
        }
        {
            let ($name, $service) = ("tokio_mutex", tokio_mutex_layer(Entry::new()).layer(echo()));
            $body
        }
    }};
}

/// `concurrency` tasks, each with a clone of `service`, make `iters` requests between them
/// (rounded up to a multiple of `concurrency`). Returns the time criterion should see for
/// `iters` requests.
fn hammer<S>(runtime: &Runtime, service: &S, concurrency: usize, iters: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<Request<()>>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Debug,
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

fn contention(criterion: &mut Criterion, runtime: &Runtime) {
    let mut group = criterion.benchmark_group("contention");
    for_each_impl!(runtime, |name, service| {
        for concurrency in CONCURRENCY {
            let id = format!("contention/{name}/{concurrency}");
            group.bench_with_input(
                BenchmarkId::new(name, concurrency),
                &concurrency,
                |b, &concurrency| {
                    b.iter_custom(|iters| {
                        let elapsed = hammer(runtime, &service, concurrency, iters);
                        common::record(&id, elapsed, iters);
                        elapsed
                    })
                },
            );
        }
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// Allocations per request.

const ALLOC_CALLS: u64 = 10_000;

/// The size of `service`'s response future: what each `call` returns by value and the
/// caller moves (and pins).
fn future_size<S: Service<Request<()>>>(_: &S) -> usize {
    std::mem::size_of::<S::Future>()
}

/// Allocations per request over [`ALLOC_CALLS`] calls on this thread: reusing one request
/// (what the layer adds), and with a new `Request` each call (what a request costs in all).
fn count_allocations<S>(mut service: S) -> (f64, f64)
where
    S: Service<Request<()>, Response = Response<Request<()>>>,
    S::Error: Debug,
{
    // Warm up: the first clone of a `Bytes` header makes it shared; the first `ArcSwap`
    // load of a thread registers the thread.
    let mut request = new_request();
    for _ in 0..16 {
        request = take_back(call_now(&mut service, request));
    }
    let before = allocations();
    for _ in 0..ALLOC_CALLS {
        request = take_back(call_now(&mut service, request));
    }
    let reused = allocations() - before;
    let before = allocations();
    for _ in 0..ALLOC_CALLS {
        drop(take_back(call_now(&mut service, Request::new(()))));
    }
    let fresh = allocations() - before;
    (
        reused as f64 / ALLOC_CALLS as f64,
        fresh as f64 / ALLOC_CALLS as f64,
    )
}

// ---------------------------------------------------------------------------------------

fn main() {
    let runtime = common::runtime();

    if let Ok(name) = std::env::var("CONTENTION_PROFILE") {
        let mut found = false;
        for_each_impl!(&runtime, |impl_name, service| {
            if impl_name == name {
                found = true;
                profile(&runtime, impl_name, service);
            }
        });
        assert!(found, "CONTENTION_PROFILE={name}: no such impl; one of {IMPLS:?}");
        return;
    }

    let mut allocation_counts = Vec::new();
    for_each_impl!(&runtime, |name, service| {
        let size = future_size(&service);
        allocation_counts.push((name, count_allocations(service), size));
    });

    let mut criterion = common::criterion();
    contention(&mut criterion, &runtime);
    criterion.final_summary();

    print_summary(&allocation_counts);
}

/// A loop to profile one impl under `perf` or `callgrind`, without criterion:
///
/// `CONTENTION_PROFILE=<impl> [CONTENTION_PROFILE_CALLS=n] [CONTENTION_PROFILE_TASKS=c]
/// target/release/deps/contention-<hash>`
///
/// With `CONTENTION_PROFILE_TASKS` 0 (the default), this thread calls the service
/// `CONTENTION_PROFILE_CALLS` times (default 10,000,000) with no runtime; otherwise that many
/// tasks on the two-worker runtime share the calls, as in the benchmark.
fn profile<S>(runtime: &Runtime, name: &str, mut service: S)
where
    S: Service<Request<()>, Response = Response<Request<()>>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Debug,
{
    let env = |name: &str, default: u64| {
        std::env::var(name).map_or(default, |value| value.parse().expect("a number"))
    };
    let calls = env("CONTENTION_PROFILE_CALLS", 10_000_000);
    let tasks = env("CONTENTION_PROFILE_TASKS", 0) as usize;
    let elapsed = if tasks == 0 {
        let mut request = new_request();
        let start = Instant::now();
        for _ in 0..calls {
            request = take_back(call_now(&mut service, request));
        }
        start.elapsed()
    } else {
        hammer(runtime, &service, tasks, calls)
    };
    eprintln!(
        "{name}: {calls} calls, {} tasks: {:.1} ns per call",
        tasks,
        elapsed.as_secs_f64() * 1e9 / calls as f64
    );
}

fn print_summary(allocation_counts: &[(&str, (f64, f64), usize)]) {
    eprintln!();
    eprintln!("## contention: time per request (wall time / requests, all tasks), ratio to `floor`");
    eprintln!("(2 tokio worker threads; median of the measured criterion samples)");
    eprintln!();
    let mut header = String::from("| impl |");
    let mut rule = String::from("| --- |");
    for concurrency in CONCURRENCY {
        header += &format!(" C={concurrency} |");
        rule += " ---: |";
    }
    eprintln!("{header}");
    eprintln!("{rule}");
    for name in IMPLS {
        let mut row = format!("| {name} |");
        for concurrency in CONCURRENCY {
            let time = common::median(&format!("contention/{name}/{concurrency}"));
            let floor = common::median(&format!("contention/floor/{concurrency}"));
            row += &match (time, floor) {
                (Some(time), Some(floor)) => {
                    format!(" {} ({:.2}×) |", common::show(time), time / floor)
                }
                (Some(time), None) => format!(" {} |", common::show(time)),
                _ => " – |".to_owned(),
            };
        }
        eprintln!("{row}");
    }
    eprintln!();
    eprintln!("## heap allocations per request, fresh token, one thread, {ALLOC_CALLS} calls");
    eprintln!();
    eprintln!(
        "| impl | reusing one request (added by the layer) | new `Request` per call | response future size |"
    );
    eprintln!("| --- | ---: | ---: | ---: |");
    for (name, (reused, fresh), size) in allocation_counts {
        eprintln!("| {name} | {reused:.2} | {fresh:.2} | {size} B |");
    }
    eprintln!(
        "(the echo inner service's future is {} B; `Request<()>` is {} B)",
        future_size(&echo()),
        std::mem::size_of::<Request<()>>()
    );
    eprintln!();
}
