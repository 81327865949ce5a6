//! [`TokenCache`]: the shared, lock-free token cache behind [`OAuth2Layer`](crate::OAuth2Layer)
//! and the reqwest middleware, with refresh-ahead, single-flight refreshes and backoff.
//!
//! The current token lives in an [`ArcSwapOption`]: reading it takes no lock. A token goes
//! through three states:
//!
//! - **fresh**: served as it is;
//! - **stale** (inside the refresh-ahead window before expiry): still served, and one refresh
//!   starts in the background if none is running and no backoff is pending;
//! - **expired** (or absent): requests wait for a refresh, and all of them share one.
//!
//! Refreshes run as tokio tasks of their own, so a request that gives up (dropped, timed out)
//! cancels neither the refresh nor the other requests waiting on it. A failed refresh never
//! throws away a token that is still valid; the next attempt waits out a jittered, exponential
//! backoff, so a dead authorization server is not hit by every request.
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth2::{source_fn, Token, TokenCache};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! let cache = TokenCache::builder(source_fn(|| async {
//!     Ok(Token::bearer("abc").with_expires_at(std::time::SystemTime::now() + Duration::from_secs(3600)))
//! }))
//! .refresh_ahead(Duration::from_secs(120))
//! .build();
//! cache.prefetch().await?; // fail fast at start-up on bad credentials
//! assert!(cache.expires_at().is_some());
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use futures_util::future::{FutureExt, Shared};
use http::HeaderValue;
use rand::Rng;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::source::TokenSource;
use crate::token::Token;

/// Default refresh-ahead window: a token becomes stale this long before it expires.
pub const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// Default cap on the refresh-ahead window, as a fraction of the token's lifetime.
pub const DEFAULT_MAX_REFRESH_FRACTION: f64 = 0.5;
/// Default random jitter added to the window, as a fraction of it.
pub const DEFAULT_JITTER: f64 = 0.2;
/// Default first backoff after a failed refresh.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Default longest backoff after repeated failed refreshes.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A cached token, with its prebuilt `Authorization` header and the times that decide its
/// state.
pub(crate) struct Entry {
    /// `Bearer <token>`, marked sensitive so HTTP/2 never indexes it.
    pub(crate) header: HeaderValue,
    /// Identifies this token, so a 401 invalidates exactly the token that was sent.
    pub(crate) generation: u64,
    stale_at: Option<SystemTime>,
    expires_at: Option<SystemTime>,
    token: Token,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("generation", &self.generation)
            .field("stale_at", &self.stale_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Gives arc-swap's [`Cache`](arc_swap::Cache) access to a cache's current entry.
#[derive(Clone)]
pub(crate) struct CurrentEntry(Arc<Inner>);

impl Deref for CurrentEntry {
    type Target = ArcSwapOption<Entry>;

    fn deref(&self) -> &Self::Target {
        &self.0.current
    }
}

impl fmt::Debug for CurrentEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentEntry")
    }
}

/// A service's own copy of the current entry: checking that it is still current is one
/// relaxed atomic load, with no write to shared memory, so service clones on many threads do
/// not contend. It is refreshed from the shared `ArcSwap` when a new token is stored.
pub(crate) type LocalEntry = arc_swap::Cache<CurrentEntry, Option<Arc<Entry>>>;

/// What a request gets from the cache.
pub(crate) enum Lookup {
    /// A valid token: send it now.
    Ready(HeaderValue, u64),
    /// No valid token: wait for the shared refresh.
    Wait(TokenWait),
}

/// The shared result of one refresh.
type RefreshResult = Result<Arc<Entry>, Error>;
type SharedRefresh = Shared<Pin<Box<dyn Future<Output = RefreshResult> + Send>>>;

/// A future that resolves when the refresh a request waits on ends. Many requests share one.
pub(crate) struct TokenWait(WaitState);

enum WaitState {
    Refresh(SharedRefresh),
    Failed(Option<Error>),
}

impl Future for TokenWait {
    type Output = RefreshResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<RefreshResult> {
        match &mut self.0 {
            WaitState::Refresh(shared) => Pin::new(shared).poll(cx),
            WaitState::Failed(error) => std::task::Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| Error::Config("TokenWait polled after completion".to_owned())))),
        }
    }
}

/// The token cache, and the handle through which an application reads, refreshes or
/// invalidates the current token. Cheap to clone: clones share one cache.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwapOption<Entry>,
    /// Stale-path requests start a background refresh only from this time on (milliseconds
    /// since the Unix epoch): `u64::MAX` while a refresh runs, the end of the backoff after a
    /// failure, 0 otherwise. Lets them skip the mutex while nothing is to be done.
    no_refresh_before_ms: AtomicU64,
    next_generation: AtomicU64,
    state: Mutex<RefreshState>,
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    config: Config,
}

#[derive(Clone, Debug)]
struct Config {
    refresh_ahead: Duration,
    max_refresh_fraction: f64,
    jitter: f64,
    min_backoff: Duration,
    max_backoff: Duration,
}

#[derive(Default)]
struct RefreshState {
    in_flight: Option<SharedRefresh>,
    /// After a failure: no new attempt before this time.
    retry_at: Option<SystemTime>,
    /// The error of the last failed attempt, given to requests that arrive during backoff.
    last_error: Option<Error>,
    failures: u32,
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`].
#[must_use]
pub struct TokenCacheBuilder {
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    config: Config,
}

impl TokenCacheBuilder {
    /// How long before expiry a token becomes stale and a background refresh starts (default
    /// 60 s). Clamped to a fraction of each token's lifetime (see
    /// [`max_refresh_fraction`](Self::max_refresh_fraction)) so short-lived tokens are not
    /// stale from birth.
    pub fn refresh_ahead(mut self, window: Duration) -> Self {
        self.config.refresh_ahead = window;
        self
    }

    /// The largest part of a token's lifetime the refresh-ahead window may take (default 0.5,
    /// clamped to 0..=1).
    pub fn max_refresh_fraction(mut self, fraction: f64) -> Self {
        self.config.max_refresh_fraction = clamp_fraction(fraction);
        self
    }

    /// Random extra window, as a fraction of the window (default 0.2: a 60 s window becomes
    /// 60 to 72 s), so that many replicas do not refresh in the same second. 0 turns it off.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.config.jitter = clamp_fraction(fraction);
        self
    }

    /// The backoff after a failed refresh: `min` after the first failure, doubling up to
    /// `max` (defaults 1 s and 60 s), each with up to 50 % random reduction.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.min_backoff = min;
        self.config.max_backoff = max.max(min);
        self
    }

    /// The clock that decides freshness (default [`SystemClock`]). Use the same clock as the
    /// token source's endpoint.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the cache. It starts empty; see [`TokenCache::prefetch`].
    pub fn build(self) -> TokenCache {
        TokenCache {
            inner: Arc::new(Inner {
                current: ArcSwapOption::empty(),
                no_refresh_before_ms: AtomicU64::new(0),
                next_generation: AtomicU64::new(1),
                state: Mutex::new(RefreshState::default()),
                source: self.source,
                clock: self.clock,
                config: self.config,
            }),
        }
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `time` in whole milliseconds since the Unix epoch (0 before it).
fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

fn clamp_fraction(fraction: f64) -> f64 {
    if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    }
}

impl TokenCache {
    /// A cache over `source` with the default settings.
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self::builder(source).build()
    }

    /// Starts building a cache over `source`.
    pub fn builder(source: impl TokenSource + 'static) -> TokenCacheBuilder {
        Self::builder_shared(Arc::new(source))
    }

    /// Starts building a cache over a source that is already shared.
    pub fn builder_shared(source: Arc<dyn TokenSource>) -> TokenCacheBuilder {
        TokenCacheBuilder {
            source,
            clock: Arc::new(SystemClock),
            config: Config {
                refresh_ahead: DEFAULT_REFRESH_AHEAD,
                max_refresh_fraction: DEFAULT_MAX_REFRESH_FRACTION,
                jitter: DEFAULT_JITTER,
                min_backoff: DEFAULT_MIN_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
            },
        }
    }

    /// The current token, if there is one (it may be stale or expired).
    pub fn token(&self) -> Option<Token> {
        self.inner
            .current
            .load()
            .as_ref()
            .map(|entry| entry.token.clone())
    }

    /// When the current token expires: `None` if there is no token or it never expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner
            .current
            .load()
            .as_ref()
            .and_then(|entry| entry.expires_at)
    }

    /// When the current token becomes stale and a background refresh starts.
    pub fn stale_at(&self) -> Option<SystemTime> {
        self.inner
            .current
            .load()
            .as_ref()
            .and_then(|entry| entry.stale_at)
    }

    /// The error of the last refresh if it failed; `None` once a refresh succeeds.
    ///
    /// The cache keeps serving a token that is still valid while refreshes fail, so requests
    /// alone do not show trouble until the token expires. A health check can look here:
    ///
    /// ```
    /// # use tower_oauth2::TokenCache;
    /// # async fn probe(cache: &TokenCache) {
    /// if let Some(err) = cache.last_error() {
    ///     eprintln!("token refreshes are failing (transient: {}): {err}", err.is_transient());
    /// }
    /// # }
    /// ```
    pub fn last_error(&self) -> Option<Error> {
        self.inner.lock_state().last_error.clone()
    }

    /// Fetches a token now if there is no valid one, so that start-up fails fast on bad
    /// credentials. Does nothing if the cache holds a valid token.
    pub async fn prefetch(&self) -> Result<(), Error> {
        self.authorization().await.map(drop)
    }

    /// Fetches a new token now, whatever the state of the current one (joining a refresh that
    /// is already running), and returns it. Ignores a pending backoff.
    pub async fn refresh(&self) -> Result<Token, Error> {
        let shared = {
            let mut state = self.inner.lock_state();
            self.start_refresh(&mut state)
        };
        shared.await.map(|entry| entry.token.clone())
    }

    /// Drops the current token: the next request waits for a new one.
    pub fn invalidate(&self) {
        self.inner.current.store(None);
    }

    /// Drops the current token only if it is the one of `generation` (never a newer one).
    pub(crate) fn invalidate_generation(&self, generation: u64) {
        self.inner.current.rcu(|current| match current {
            Some(entry) if entry.generation == generation => None,
            other => other.clone(),
        });
    }

    /// A valid token's `Authorization` header and generation, waiting for a refresh if needed.
    pub(crate) async fn authorization(&self) -> Result<(HeaderValue, u64), Error> {
        match self.lookup() {
            Lookup::Ready(header, generation) => Ok((header, generation)),
            Lookup::Wait(wait) => wait.await.map(|entry| (entry.header.clone(), entry.generation)),
        }
    }

    /// A per-service view of the current entry; see [`LocalEntry`].
    pub(crate) fn local(&self) -> LocalEntry {
        arc_swap::Cache::new(CurrentEntry(self.inner.clone()))
    }

    /// A valid token's header, or a future to wait on.
    pub(crate) fn lookup(&self) -> Lookup {
        self.lookup_in(self.inner.current.load().as_ref())
    }

    /// The hot path: decides what a request does with the current `entry`.
    ///
    /// A fresh token costs one coarse clock read and one `HeaderValue` clone (a reference
    /// count increment). Everything else is `#[cold]`.
    #[inline]
    pub(crate) fn lookup_in(&self, entry: Option<&Arc<Entry>>) -> Lookup {
        let inner = &*self.inner;
        if let Some(entry) = entry {
            let Some(stale_at) = entry.stale_at else {
                // A token without expiry is used until invalidated.
                return Lookup::Ready(entry.header.clone(), entry.generation);
            };
            let now = inner.clock.now_coarse();
            if now < stale_at {
                return Lookup::Ready(entry.header.clone(), entry.generation);
            }
            if entry.expires_at.is_none_or(|expires_at| now < expires_at) {
                // Stale but valid: serve it, and make sure a refresh is on its way.
                if unix_millis(now) >= inner.no_refresh_before_ms.load(Ordering::Acquire) {
                    self.refresh_in_background(now);
                }
                return Lookup::Ready(entry.header.clone(), entry.generation);
            }
        }
        Lookup::Wait(self.wait_for_refresh())
    }

    /// Starts a background refresh unless one is running or a backoff is pending.
    #[cold]
    fn refresh_in_background(&self, now: SystemTime) {
        let mut state = self.inner.lock_state();
        if state.in_flight.is_none() && state.retry_at.is_none_or(|at| now >= at) {
            drop(self.start_refresh(&mut state));
        }
    }

    /// The slow path: there is no valid token. Joins the running refresh, or starts one, or,
    /// during a backoff after a failure, fails at once with the last error.
    #[cold]
    fn wait_for_refresh(&self) -> TokenWait {
        let mut state = self.inner.lock_state();
        // Another request may have stored a token since our lookup.
        if let Some(entry) = self.inner.current.load_full() {
            if self.is_valid(&entry) {
                return TokenWait(WaitState::Refresh(
                    (Box::pin(std::future::ready(Ok(entry)))
                        as Pin<Box<dyn Future<Output = RefreshResult> + Send>>)
                        .shared(),
                ));
            }
        }
        if state.in_flight.is_none() {
            if let (Some(retry_at), Some(error)) = (state.retry_at, &state.last_error) {
                if self.inner.clock.now() < retry_at {
                    return TokenWait(WaitState::Failed(Some(error.clone())));
                }
            }
        }
        TokenWait(WaitState::Refresh(self.start_refresh(&mut state)))
    }

    fn is_valid(&self, entry: &Entry) -> bool {
        entry.expires_at.is_none_or(|at| self.inner.clock.now() < at)
    }

    /// Returns the running refresh, or starts one. Called with the state locked.
    fn start_refresh(&self, state: &mut RefreshState) -> SharedRefresh {
        if let Some(shared) = &state.in_flight {
            return shared.clone();
        }
        self.inner.no_refresh_before_ms.store(u64::MAX, Ordering::Release);
        let cache = self.clone();
        let task = async move { cache.run_refresh().await };
        let future: Pin<Box<dyn Future<Output = RefreshResult> + Send>> =
            match tokio::runtime::Handle::try_current() {
                // Its own task: the refresh outlives any request that waits on it.
                Ok(runtime) => {
                    let handle = runtime.spawn(task);
                    Box::pin(async move {
                        handle.await.unwrap_or_else(|_| {
                            Err(Error::source_error("the token refresh task was cancelled"))
                        })
                    })
                }
                // Outside a tokio runtime the waiters drive the refresh themselves.
                Err(_) => Box::pin(task),
            };
        let shared = future.shared();
        state.in_flight = Some(shared.clone());
        shared
    }

    /// Runs one refresh and records its outcome.
    async fn run_refresh(&self) -> RefreshResult {
        let inner = &*self.inner;
        let started = Instant::now();
        let span = tracing::info_span!("oauth2_token_refresh");
        tracing::debug!(parent: &span, "token refresh started");
        let result = tracing::Instrument::instrument(
            AssertUnwindSafe(inner.source.fetch_token()).catch_unwind(),
            span.clone(),
        )
        .await
        .unwrap_or_else(|_| Err(Error::source_error("the token source panicked")));
        let _entered = span.entered();
        let mut state = inner.lock_state();
        state.in_flight = None;
        let outcome = match result {
            Ok(token) => match self.entry_for(token) {
                Ok(entry) => {
                    let entry = Arc::new(entry);
                    inner.current.store(Some(entry.clone()));
                    state.failures = 0;
                    state.retry_at = None;
                    state.last_error = None;
                    tracing::info!(
                        duration_ms = started.elapsed().as_millis() as u64,
                        expires_at = ?entry.expires_at,
                        stale_at = ?entry.stale_at,
                        "token refreshed"
                    );
                    Ok(entry)
                }
                Err(err) => Err(self.record_failure(&mut state, err, started)),
            },
            Err(err) => Err(self.record_failure(&mut state, err, started)),
        };
        let retry_at_ms = state.retry_at.map_or(0, |at| unix_millis(at).saturating_add(1));
        inner.no_refresh_before_ms.store(retry_at_ms, Ordering::Release);
        outcome
    }

    fn record_failure(&self, state: &mut RefreshState, err: Error, started: Instant) -> Error {
        let config = &self.inner.config;
        state.failures = state.failures.saturating_add(1);
        let exponent = state.failures.saturating_sub(1).min(20);
        let ceiling = config
            .min_backoff
            .saturating_mul(1 << exponent)
            .min(config.max_backoff);
        // Between half the ceiling and the ceiling, never below the minimum.
        let backoff = ceiling
            .mul_f64(rand::rng().random_range(0.5..=1.0))
            .max(config.min_backoff);
        state.retry_at = Some(self.inner.clock.now() + backoff);
        state.last_error = Some(err.clone());
        let has_valid_token = self
            .inner
            .current
            .load()
            .as_ref()
            .is_some_and(|entry| self.is_valid(entry));
        tracing::warn!(
            error = %err,
            transient = err.is_transient(),
            failures = state.failures,
            backoff_ms = backoff.as_millis() as u64,
            duration_ms = started.elapsed().as_millis() as u64,
            keeping_valid_token = has_valid_token,
            "token refresh failed"
        );
        err
    }

    /// Builds the cache entry for a new token: its header and the time it becomes stale.
    fn entry_for(&self, token: Token) -> Result<Entry, Error> {
        let mut header =
            HeaderValue::try_from(format!("Bearer {}", token.access_token().expose())).map_err(|_| {
                Error::source_error("the access token contains characters not allowed in an HTTP header")
            })?;
        header.set_sensitive(true);
        // A clone's bytes are reference-counted from the start, so the clone on every request
        // skips the check for a first-time promotion to shared bytes.
        let header = header.clone();
        let expires_at = token.expires_at();
        let stale_at = expires_at.map(|expires_at| {
            let now = self.inner.clock.now();
            let lifetime = expires_at.duration_since(now).unwrap_or_default();
            let config = &self.inner.config;
            let window = config
                .refresh_ahead
                .min(lifetime.mul_f64(config.max_refresh_fraction));
            let jitter = window.mul_f64(config.jitter * rand::rng().random_range(0.0..=1.0));
            expires_at - (window + jitter).min(lifetime)
        });
        Ok(Entry {
            header,
            generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
            stale_at,
            expires_at,
            token,
        })
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, RefreshState> {
        // Nothing panics while holding the lock; recover anyway rather than poison every request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("has_token", &self.inner.current.load().is_some())
            .field("expires_at", &self.expires_at())
            .field("stale_at", &self.stale_at())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}
