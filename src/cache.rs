//! [`TokenCache`]: the shared, lock-free token cache behind [`OAuth2Layer`](crate::OAuth2Layer)
//! and the reqwest middleware, with refresh-ahead, single-flight refreshes and backoff.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth2::{source_fn, Token, TokenCache};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! let expiry = SystemTime::now() + Duration::from_secs(3600);
//! let cache = TokenCache::builder(source_fn(move || async move {
//!     Ok(Token::bearer("abc").with_expires_at(expiry))
//! }))
//! .refresh_ahead(Duration::from_secs(120))
//! .build();
//! cache.prefetch().await?; // fail fast at start-up on bad credentials
//! assert_eq!(cache.token().unwrap().access_token().expose(), "abc");
//! assert_eq!(cache.valid_until(), Some(expiry - Duration::from_secs(5))); // the default leeway
//! assert!(cache.stale_at() <= Some(expiry - Duration::from_secs(125))); // refreshed from then on
//! # Ok(()) }
//! ```
//!
//! The current token lives in an [`ArcSwapOption`]: reading it takes no lock. A token goes
//! through three states:
//!
//! - **fresh**: served as it is;
//! - **stale** (inside the refresh-ahead window before expiry): still served, and one refresh
//!   starts in the background if none is running and no backoff is pending;
//! - **expired** (or absent): requests wait for a refresh, and all of them share one.
//!
//! "Expired" means past the token's expiry minus a **leeway** (default: 5 s, at most a quarter
//! of the token's lifetime, at least 1 s for tokens of 2 s and more): servers compute expiry
//! in whole seconds and clocks drift, so a token is never sent in its last moments. The
//! refresh-ahead window is measured back from that leeway-adjusted expiry,
//! [`valid_until`](TokenCache::valid_until).
//!
//! Refreshes run as tokio tasks of their own, so a request that gives up (dropped, timed out)
//! cancels neither the refresh nor the other requests waiting on it. A refresh whose task is
//! lost with its runtime (a `#[tokio::test]` that ended, a runtime shut down) is forgotten,
//! and the next request starts a new one on its own runtime.
//!
//! With a [store](TokenCacheBuilder::store) (Redis for replicas, a file for a CLI), a refresh
//! first looks there: a fresh token another replica fetched is used without a token request,
//! and at most one replica at a time fetches (a lock in the store). A request with a fresh
//! token never touches the store, and a store that fails is passed over. See
//! [`store`](crate::store).
//!
//! # Failures
//!
//! A failed refresh never throws away a token that is still valid; the next attempt waits out
//! a jittered, exponential backoff, so a dead authorization server is not hit by every request:
//!
//! - after a **transient** error (transport, timeout, 5xx, 429, `temporarily_unavailable`) the
//!   backoff starts at 1 s and doubles up to 60 s, but the next attempt is never later than
//!   the current token's `valid_until`, and while no valid token exists it is at most 5 s
//!   ([`backoff_without_token`](TokenCacheBuilder::backoff_without_token)), so a server that
//!   comes back is used at once;
//! - a `Retry-After` sent with the error ([`Error::retry_after`]) is the floor of the next
//!   attempt (capped at the longest backoff);
//! - after a **permanent** error (`invalid_client`, a malformed response, ...) the backoff
//!   jumps to its maximum at once, and the log says so;
//! - a **lost grant** ([`Error::GrantLost`]: the server refused the refresh token) drops the
//!   cached token, which the server has revoked with the grant, and requests fail at once
//!   with that error until the application supplies new credentials (see
//!   [`RefreshToken::on_grant_lost`](crate::RefreshToken::on_grant_lost)).
//!
//! While no valid token exists, requests wait through failed attempts and backoffs of up to
//! 10 s in all ([`wait_for_retry`](TokenCacheBuilder::wait_for_retry)), and otherwise fail at
//! once with the last error instead of waiting; [`last_error`](TokenCache::last_error) shows
//! it to health checks while a valid token is still served.
//!
//! # Time
//!
//! Wall clocks jump: NTP steps them back and forth, a laptop sleeps for hours, a VM is paused
//! and resumed. Validity decided on the wall clock would send an expired token after a step
//! back (and get `401`), and throw away a valid one after a step forward. So the cache decides
//! on **monotonic time** ([`Clock::monotonic`]), and keeps wall time for display and storage:
//!
//! - When a token arrives, its remaining lifetime becomes monotonic deadlines (`stale_at`,
//!   `valid_until`): for a token issued during the refresh that got it, its `expires_in` minus
//!   the time since its request was sent (by the wall clock, but never more than the refresh
//!   took by the monotonic clock, so a wall step during the exchange cannot shorten it by
//!   more); for any other token (an
//!   [`initial_token`](TokenCacheBuilder::initial_token) restored from storage, one a source
//!   kept), `expires_at` minus the wall clock at its arrival: it is **re-anchored** once, when
//!   it enters the cache, and wall steps after that do not matter.
//! - Every request compares those deadlines with the clock; backoffs (`retry_at`), the
//!   patience of [`wait_for_retry`](TokenCacheBuilder::wait_for_retry) and refresh-ahead run
//!   on monotonic time too.
//! - [`expires_at`](TokenCache::expires_at), [`valid_until`](TokenCache::valid_until) and
//!   [`stale_at`](TokenCache::stale_at) stay [`SystemTime`]s: the server's expiry, and the
//!   deadlines as projected on the wall clock when the token arrived (after a wall step they
//!   no longer match what the cache does, which follows the monotonic deadlines);
//!   [`next_attempt_at`](TokenCache::next_attempt_at) is projected from the wall clock of the
//!   moment it is asked.
//!
//! **Suspend.** Linux's `CLOCK_MONOTONIC` stops while the machine is suspended: a token that
//! expired during a two-hour sleep would look valid on waking. [`SystemClock`] therefore
//! decides on `CLOCK_BOOTTIME`, which counts suspend. It costs about 35 ns to read, against 5 ns
//! for the coarse clocks, and has no coarse variant, so a request on a fresh token reads two
//! coarse clocks instead ([`Clock::monotonic_coarse`], `CLOCK_MONOTONIC_COARSE`, and
//! [`Clock::now_coarse`], `CLOCK_REALTIME_COARSE`) and uses the token at once only if **both**
//! say it is fresh. Each is fooled by one thing only: the coarse monotonic clock by suspend
//! (it lags, never leads, so it cannot make a token look expired early), the wall clock by
//! steps; when they disagree, or the token is stale, `CLOCK_BOOTTIME` decides. So:
//!
//! | event | cheap readings | decided by | outcome |
//! |---|---|---|---|
//! | none | both fresh | them | token sent (two coarse reads) |
//! | wall stepped back past expiry | monotonic says expired | `CLOCK_BOOTTIME` | new token fetched |
//! | wall stepped forward | wall says expired | `CLOCK_BOOTTIME` | token kept until its deadline (each request pays the precise read until the next token) |
//! | suspend past expiry | wall says expired | `CLOCK_BOOTTIME` | new token fetched |
//!
//! A wall-clock cross-check alone (a token is expired if either clock says so) was rejected: a
//! step forward would throw valid tokens away. What remains: a suspend *and* a wall step back
//! of about the same length at once would let the two cheap readings agree wrongly; and on
//! platforms other than Linux, where [`SystemClock`] falls back to [`Instant`] (which stops
//! during sleep on macOS, for one), a token can be sent once after waking from a sleep longer
//! than its remaining life (see [`SystemClock`]).

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

mod backoff;
mod entry;
mod lookup;
mod refresh;
mod store;

use self::entry::*;
pub(crate) use self::entry::{CurrentEntry, Entry, LocalEntry};
pub(crate) use self::lookup::{Lookup, TokenWait};
use self::refresh::*;
use self::store::StoreHandle;
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
/// Default longest backoff after a transient failure while no valid token exists.
pub const DEFAULT_BACKOFF_WITHOUT_TOKEN: Duration = Duration::from_secs(5);
/// Default patience of a request with backoffs while no valid token exists (see
/// [`TokenCacheBuilder::wait_for_retry`]).
pub const DEFAULT_WAIT_FOR_RETRY: Duration = Duration::from_secs(10);
/// The longest duration a setting takes (a year): longer ones are cut to it, so that no
/// computation with them can overflow.
const LONGEST_SETTING: Duration = Duration::from_secs(365 * 24 * 3600);
/// Default expiry leeway: a token is not used in the last 5 s before its expiry (at most a
/// quarter of its lifetime; see [`TokenCacheBuilder::leeway`]).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// When to try again after a refresh whose response was lost (a transport error or a timeout
/// after the request was sent) while the current token is still valid.
///
/// The server may have acted on the lost request. With refresh-token rotation it then holds a
/// new refresh token the client never saw, and the client can only send the old one again:
///
/// - servers with a reuse grace period (Auth0's reuse interval, Okta's grace period, Keycloak
///   with revoke-refresh-token off) accept the old refresh token for a short while, so trying
///   again **soon** succeeds, and trying late may not;
/// - servers with strict reuse detection (RFC 9700 §4.14.2; oidc-provider, Keycloak with
///   revoke-refresh-token on) revoke the whole grant when the old refresh token comes back,
///   whenever that is; trying again only **near expiry** keeps the current access token in
///   use until then instead of losing it at once.
///
/// The default is [`Soon`](Self::Soon): it is right for servers with a grace period and
/// for grants without rotation, and on strict servers it makes a lost grant known (and the
/// application's [`on_grant_lost`](crate::RefreshToken::on_grant_lost) hook run) at once
/// rather than a little later.
///
/// A token that is still valid, and a refresh whose connection is reset: with
/// [`NearExpiry`](Self::NearExpiry) the next attempt waits until one minimum backoff (1 s)
/// before the token's `valid_until`.
///
/// ```
/// # use std::sync::atomic::{AtomicUsize, Ordering};
/// # use std::time::Duration;
/// # use tower_oauth2::clock::{Clock, ManualClock};
/// use tower_oauth2::{source_fn, Error, LostResponseRetry, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let clock = ManualClock::new();
/// # let expiry = clock.now() + Duration::from_secs(3600);
/// # let calls = AtomicUsize::new(0);
/// # let source = source_fn(move || {
/// #     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
/// #     async move {
/// #         if first {
/// #             Ok(Token::bearer("t").with_expires_at(expiry))
/// #         } else {
/// #             Err(Error::transport("connection reset"))
/// #         }
/// #     }
/// # });
/// // `source` gives a token for an hour, then loses the response of every refresh.
/// let cache = TokenCache::builder(source)
///     .lost_response_retry(LostResponseRetry::NearExpiry)
/// #   .clock(clock)
///     .build();
/// cache.prefetch().await.unwrap();
/// assert!(cache.refresh().await.is_err());
/// let valid_until = cache.valid_until().unwrap();
/// assert_eq!(cache.next_attempt_at(), Some(valid_until - Duration::from_secs(1)));
/// assert_eq!(LostResponseRetry::default(), LostResponseRetry::Soon);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostResponseRetry {
    /// Retry after the usual backoff (1 s, doubling).
    #[default]
    Soon,
    /// Retry shortly before the current token's `valid_until` (one minimum backoff before it).
    NearExpiry,
}

/// The token cache, and the handle through which an application reads, refreshes or
/// invalidates the current token. Cheap to clone: clones share one cache.
///
/// Concurrent requests for a token share one fetch (single-flight), and a valid token is
/// served from memory:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use tower_oauth2::{source_fn, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// let fetches = Arc::new(AtomicUsize::new(0));
/// let counter = fetches.clone();
/// let cache = TokenCache::new(source_fn(move || {
///     counter.fetch_add(1, Ordering::SeqCst);
///     async { Ok(Token::bearer("t")) }
/// }));
/// let clone = cache.clone(); // the same cache
/// let (a, b) = tokio::join!(cache.prefetch(), clone.prefetch());
/// a?;
/// b?;
/// cache.prefetch().await?; // a valid token is there: nothing to fetch
/// assert_eq!(fetches.load(Ordering::SeqCst), 1);
/// assert_eq!(clone.token().unwrap().access_token().expose(), "t");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwapOption<Entry>,
    /// Stale-path requests start a background refresh only from this time on (milliseconds of
    /// the clock's monotonic time): `u64::MAX` while a refresh runs, the end of the backoff
    /// after a failure, 0 otherwise. Lets them skip the mutex while nothing is to be done.
    no_refresh_before_ms: AtomicU64,
    next_generation: AtomicU64,
    state: Mutex<RefreshState>,
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    config: Config,
    /// The shared store, consulted only by refreshes.
    store: Option<StoreHandle>,
}

#[derive(Clone, Debug)]
struct Config {
    refresh_ahead: Duration,
    max_refresh_fraction: f64,
    jitter: f64,
    leeway: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    backoff_without_token: Duration,
    wait_for_retry: Duration,
    lost_response: LostResponseRetry,
}

#[derive(Default)]
struct RefreshState {
    /// The running refresh, and the number that tells it from the ones before it.
    in_flight: Option<(u64, SharedRefresh)>,
    next_refresh_id: u64,
    /// After a failure: no new attempt before this monotonic time.
    retry_at: Option<Duration>,
    /// The error of the last failed attempt, given to requests that arrive during backoff.
    last_error: Option<Error>,
    failures: u32,
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::clock::{Clock, ManualClock};
/// use tower_oauth2::{source_fn, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
/// let clock = ManualClock::new();
/// let expiry = clock.now() + Duration::from_secs(3600);
/// let cache = TokenCache::builder(source_fn(move || async move {
///     Ok(Token::bearer("t").with_expires_at(expiry))
/// }))
/// .leeway(Duration::from_secs(10))
/// .refresh_ahead(Duration::from_secs(300))
/// .jitter(0.0)
/// .clock(clock)
/// .build();
/// cache.prefetch().await?;
/// assert_eq!(cache.valid_until(), Some(expiry - Duration::from_secs(10)));
/// assert_eq!(cache.stale_at(), Some(expiry - Duration::from_secs(310)));
/// # Ok(()) }
/// ```
#[must_use]
pub struct TokenCacheBuilder {
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    config: Config,
    initial_token: Option<Token>,
    store: Option<crate::store::SharedStore>,
}

impl TokenCacheBuilder {
    /// How long before expiry a token becomes stale and a background refresh starts (default
    /// 60 s), counted back from [`valid_until`](TokenCache::valid_until). With the jitter, it
    /// is clamped to a fraction of each token's lifetime (see
    /// [`max_refresh_fraction`](Self::max_refresh_fraction)) so short-lived tokens are not
    /// stale from birth.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let clock = ManualClock::new();
    /// let expiry = clock.now() + Duration::from_secs(3600);
    /// let cache = TokenCache::builder(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }))
    /// .refresh_ahead(Duration::from_secs(300))
    /// .jitter(0.0)
    /// .clock(clock)
    /// .build();
    /// cache.prefetch().await?;
    /// // 300 s before `valid_until`, which is 5 s (the leeway) before expiry
    /// assert_eq!(cache.stale_at(), Some(expiry - Duration::from_secs(305)));
    /// # Ok(()) }
    /// ```
    pub fn refresh_ahead(mut self, window: Duration) -> Self {
        self.config.refresh_ahead = window.min(LONGEST_SETTING);
        self
    }

    /// The largest part of a token's lifetime (after the leeway) the refresh-ahead window may
    /// take, jitter included (default 0.5, clamped to 0..=1).
    ///
    /// A token that lives 405 s has 400 s of use after the 5 s leeway; with a fraction of 0.25
    /// it is refreshed in its last 100 s, not in the last 10 minutes asked for:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let clock = ManualClock::new();
    /// let expiry = clock.now() + Duration::from_secs(405);
    /// let cache = TokenCache::builder(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }))
    /// .refresh_ahead(Duration::from_secs(600))
    /// .max_refresh_fraction(0.25)
    /// .clock(clock)
    /// .build();
    /// cache.prefetch().await?;
    /// assert_eq!(cache.stale_at(), Some(expiry - Duration::from_secs(105)));
    /// # Ok(()) }
    /// ```
    pub fn max_refresh_fraction(mut self, fraction: f64) -> Self {
        self.config.max_refresh_fraction = clamp_fraction(fraction);
        self
    }

    /// Random extra window, as a fraction of the window (default 0.2: a 60 s window becomes
    /// 60 to 72 s), so that many replicas do not refresh in the same second. 0 turns it off.
    /// The jittered window still respects [`max_refresh_fraction`](Self::max_refresh_fraction).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let clock = ManualClock::new();
    /// let expiry = clock.now() + Duration::from_secs(3600);
    /// let cache = TokenCache::builder(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }))
    /// .refresh_ahead(Duration::from_secs(60))
    /// .jitter(0.5) // a window of 60 to 90 s
    /// .clock(clock)
    /// .build();
    /// cache.prefetch().await?;
    /// let window = cache.valid_until().unwrap().duration_since(cache.stale_at().unwrap()).unwrap();
    /// assert!(window >= Duration::from_secs(60) && window <= Duration::from_secs(90));
    /// # Ok(()) }
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.config.jitter = clamp_fraction(fraction);
        self
    }

    /// How long before its expiry a token stops being sent (default 5 s; `Duration::ZERO`
    /// trusts the expiry to the instant).
    ///
    /// Servers compute expiry as `floor(now) + expires_in`, so a token can die up to a second
    /// before the client believes, and clocks drift. The leeway used for a token is this
    /// value, but at most a quarter of the token's lifetime, and at least 1 s (or half the
    /// lifetime, for tokens shorter than 2 s) so that whole-second rounding is always covered:
    ///
    /// | lifetime | leeway (default) |
    /// |---|---|
    /// | 1 h | 5 s |
    /// | 8 s | 2 s |
    /// | 2 s | 1 s |
    /// | 1 s | 0.5 s |
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let clock = ManualClock::new();
    /// let expiry = clock.now() + Duration::from_secs(3600);
    /// let cache = TokenCache::builder(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }))
    /// .leeway(Duration::from_secs(10)) // as Go's x/oauth2
    /// .clock(clock)
    /// .build();
    /// cache.prefetch().await?;
    /// assert_eq!(cache.valid_until(), Some(expiry - Duration::from_secs(10)));
    /// # Ok(()) }
    /// ```
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.config.leeway = leeway.min(LONGEST_SETTING);
        self
    }

    /// The backoff after a failed refresh: `min` after the first failure, doubling up to
    /// `max` (defaults 1 s and 60 s), each with up to 50 % random reduction but never below
    /// `min` (so the first backoff is exactly `min`). A permanent error goes to `max` at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use http::StatusCode;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Error, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let clock = ManualClock::new();
    /// let cache = TokenCache::builder(source_fn(|| async {
    ///     Err(Error::HttpStatus { status: StatusCode::SERVICE_UNAVAILABLE, retry_after: None })
    /// }))
    /// .backoff(Duration::from_secs(2), Duration::from_secs(120))
    /// .wait_for_retry(Duration::ZERO) // fail at once, to show the backoff
    /// .clock(clock.clone())
    /// .build();
    /// assert!(cache.prefetch().await.is_err());
    /// // after the first failure, the next attempt is `min` away
    /// assert_eq!(cache.next_attempt_at(), Some(clock.now() + Duration::from_secs(2)));
    /// # }
    /// ```
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.min_backoff = min.min(LONGEST_SETTING);
        self.config.max_backoff = max.max(min).min(LONGEST_SETTING);
        self
    }

    /// The longest backoff after a transient failure while no valid token exists (default
    /// 5 s, never less than the minimum backoff): requests fail during a backoff, so it is
    /// kept short; single-flight keeps it to one token request per attempt.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use http::StatusCode;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Error, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let clock = ManualClock::new();
    /// let cache = TokenCache::builder(source_fn(|| async {
    ///     Err(Error::HttpStatus { status: StatusCode::SERVICE_UNAVAILABLE, retry_after: None })
    /// }))
    /// .backoff_without_token(Duration::from_secs(2))
    /// .wait_for_retry(Duration::ZERO) // fail at once, to show the backoff
    /// .clock(clock.clone())
    /// .build();
    /// for _ in 0..5 {
    ///     assert!(cache.prefetch().await.is_err());
    ///     let backoff = cache.next_attempt_at().unwrap().duration_since(clock.now()).unwrap();
    ///     assert!(backoff <= Duration::from_secs(2)); // not the 1, 2, 4, 8, 16 s of doubling
    ///     clock.advance(backoff);
    /// }
    /// # }
    /// ```
    pub fn backoff_without_token(mut self, max: Duration) -> Self {
        self.config.backoff_without_token = max.min(LONGEST_SETTING);
        self
    }

    /// A request's patience with backoffs while no valid token exists (default 10 s: enough
    /// for three or four failed attempts in a row, whose backoffs are at most 1, 2, 4 and 5 s).
    ///
    /// A request that finds no valid token waits for the running refresh (or starts one). If
    /// that attempt fails with a transient error, or a backoff is pending when it arrives, the
    /// request sleeps to the next attempt and waits for it too, as long as the backoffs it
    /// sleeps through add up to at most `max` (and for six attempts at most); otherwise it
    /// fails at once with the last error. Permanent errors fail at once. `Duration::ZERO`
    /// makes requests fail at the first failed attempt and during every backoff.
    ///
    /// So a brief failure does not fail requests: a token endpoint that answers `503` with
    /// `Retry-After: 1` just before the token expires, or drops one connection, makes requests
    /// wait a moment longer instead of failing.
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use http::StatusCode;
    /// # use tower_oauth2::clock::ManualClock;
    /// # use tower_oauth2::{source_fn, Error, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Error> {
    /// # let attempts = Arc::new(AtomicUsize::new(0));
    /// # let counter = attempts.clone();
    /// // Two 503s, then a token.
    /// let cache = TokenCache::builder(source_fn(move || {
    ///     let attempt = counter.fetch_add(1, Ordering::SeqCst);
    ///     async move {
    ///         if attempt < 2 {
    ///             return Err(Error::HttpStatus { status: StatusCode::SERVICE_UNAVAILABLE, retry_after: None });
    ///         }
    ///         Ok(Token::bearer("t"))
    ///     }
    /// }))
    /// .wait_for_retry(Duration::from_secs(10))
    /// .clock(ManualClock::new()) // the backoffs pass at once
    /// .build();
    /// cache.prefetch().await?; // waits through both failures: no error for the caller
    /// assert_eq!(attempts.load(Ordering::SeqCst), 3);
    /// # Ok(()) }
    /// ```
    pub fn wait_for_retry(mut self, max: Duration) -> Self {
        self.config.wait_for_retry = max.min(LONGEST_SETTING);
        self
    }

    /// When to try again after a refresh whose response was lost while the current token is
    /// still valid (default [`LostResponseRetry::Soon`]); see [`LostResponseRetry`] for the
    /// trade-off.
    ///
    /// With the default, a refresh that timed out is tried again after the first backoff (1 s),
    /// although the current token is valid for an hour more:
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicBool, Ordering};
    /// # use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    /// use tower_oauth2::{source_fn, Error, LostResponseRetry, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let clock = ManualClock::new();
    /// # let expiry = clock.now() + Duration::from_secs(3600);
    /// # let fetched = AtomicBool::new(false);
    /// # let source = source_fn(move || {
    /// #     let first = !fetched.swap(true, Ordering::SeqCst);
    /// #     async move {
    /// #         if first {
    /// #             Ok(Token::bearer("t").with_expires_at(expiry))
    /// #         } else {
    /// #             Err(Error::Timeout(Duration::from_secs(30)))
    /// #         }
    /// #     }
    /// # });
    /// // `source` gives a token for an hour, then times out on every refresh.
    /// let cache = TokenCache::builder(source)
    ///     .lost_response_retry(LostResponseRetry::Soon)
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.prefetch().await.unwrap();
    /// assert!(cache.refresh().await.is_err());
    /// assert_eq!(cache.next_attempt_at(), Some(clock.now() + Duration::from_secs(1)));
    /// # }
    /// ```
    pub fn lost_response_retry(mut self, when: LostResponseRetry) -> Self {
        self.config.lost_response = when;
        self
    }

    /// The clock that decides freshness (default [`SystemClock`]): its monotonic time decides,
    /// its wall time is shown (see [Time](crate::cache#time)). Use the same clock as the token
    /// source's endpoint.
    ///
    /// A [`ManualClock`](crate::clock::ManualClock) lets a test expire a token without
    /// waiting:
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let clock = ManualClock::new();
    /// let source_clock = clock.clone();
    /// let cache = TokenCache::builder(source_fn(move || {
    ///     let expiry = source_clock.now() + Duration::from_secs(3600);
    ///     async move { Ok(Token::bearer("t").with_expires_at(expiry)) }
    /// }))
    /// .clock(clock.clone())
    /// .build();
    /// cache.prefetch().await?;
    /// clock.advance(Duration::from_secs(3600)); // the token has expired
    /// cache.prefetch().await?; // so a new one is fetched
    /// assert_eq!(cache.expires_at(), Some(clock.now() + Duration::from_secs(3600)));
    /// # Ok(()) }
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A token to start with, one the application already has (restored from storage, say,
    /// with [`StoredToken`](crate::StoredToken)). If it is still valid when the cache is built,
    /// requests use it at once, without a token request, and it is refreshed ahead of its
    /// expiry as usual; if it has expired, or cannot be sent in a header, it is ignored and the
    /// first request fetches a token as if the cache had started empty.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// let stored = Token::bearer("restored").with_expires_at(SystemTime::now() + Duration::from_secs(3600));
    /// let cache = TokenCache::builder(source_fn(|| async { Ok(Token::bearer("fetched")) }))
    ///     .initial_token(stored)
    ///     .build();
    /// assert_eq!(cache.token().unwrap().access_token().expose(), "restored");
    /// ```
    pub fn initial_token(mut self, token: Token) -> Self {
        self.initial_token = Some(token);
        self
    }

    /// Shares the token through a [`TokenStore`](crate::store::TokenStore): with the other
    /// replicas of a service (Redis), or with the next run of a CLI (a file). The store is
    /// consulted only when the cache needs a token, never on a request with a fresh one; at
    /// most one replica fetches at a time (a lock in the store), the others read its token;
    /// and a store that fails or is slow is passed over (the cache fetches on its own). See
    /// [`store`](crate::store).
    ///
    /// A stored token at least as new as the cache's own is taken, and its refresh token
    /// handed to the source ([`TokenSource::on_stored_token`]): the store wins over the
    /// refresh token a source was built with. A token given with
    /// [`initial_token`](Self::initial_token) (a fresh login) is newer: it is used, and
    /// written to the store when the cache is built (in a task on the current tokio runtime),
    /// unless the store holds one at least as new.
    ///
    /// Takes a store (with the default settings) or a [`SharedStore`](crate::store::SharedStore).
    /// The store needs a key for the token: the built-in sources derive one
    /// ([`TokenSource::store_key`]); for a source that derives none, without
    /// [`SharedStore::key`](crate::store::SharedStore::key), the store is not used (a warning is
    /// logged). Store operations need a tokio runtime with timers; a refresh outside one fetches
    /// without the store.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth2::store::{MemoryStore, SharedStore, StoreKey};
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let fetches = Arc::new(AtomicUsize::new(0));
    /// let replica = |store: &MemoryStore| {
    ///     let fetches = fetches.clone();
    ///     let source = source_fn(move || {
    ///         let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
    ///         async move {
    ///             Ok(Token::bearer(format!("t{n}")).with_expires_at(SystemTime::now() + Duration::from_secs(3600)))
    ///         }
    ///     });
    ///     // `source_fn` derives no key: name the token.
    ///     TokenCache::builder(source).store(SharedStore::new(store.clone()).key(StoreKey::named("api"))).build()
    /// };
    /// let store = MemoryStore::new();
    /// let (a, b) = (replica(&store), replica(&store));
    /// assert_eq!(a.valid_token().await?.access_token().expose(), "t1");
    /// assert_eq!(b.valid_token().await?.access_token().expose(), "t1"); // read from the store
    /// assert_eq!(fetches.load(Ordering::SeqCst), 1);
    /// # Ok(()) }
    /// ```
    pub fn store(mut self, store: impl Into<crate::store::SharedStore>) -> Self {
        self.store = Some(store.into());
        self
    }

    /// Builds the cache. It starts empty (see [`TokenCache::prefetch`]), or with the
    /// [`initial_token`](Self::initial_token).
    ///
    /// ```
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let cache = TokenCache::builder(source_fn(|| async { Ok(Token::bearer("t")) })).build();
    /// assert!(cache.token().is_none()); // nothing fetched yet
    /// cache.prefetch().await?;
    /// assert!(cache.token().is_some());
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> TokenCache {
        let initial_token = self.initial_token;
        let store = self
            .store
            .and_then(|shared| StoreHandle::new(shared, &*self.source));
        let cache = TokenCache {
            inner: Arc::new(Inner {
                current: ArcSwapOption::empty(),
                no_refresh_before_ms: AtomicU64::new(0),
                next_generation: AtomicU64::new(1),
                state: Mutex::new(RefreshState::default()),
                source: self.source,
                clock: self.clock,
                config: self.config,
                store,
            }),
        };
        if let Some(token) = initial_token.filter(|token| !token.is_expired_at(cache.inner.clock.now())) {
            // Re-anchored: its wall-clock expiry becomes a monotonic deadline, counted from now.
            let arrival = Reading::take(&*cache.inner.clock);
            match cache.entry_for(token, arrival, None) {
                Ok(entry) if cache.is_valid(&entry) => cache.inner.current.store(Some(Arc::new(entry))),
                Ok(_) => tracing::debug!("the initial token is within its leeway of expiry; ignored"),
                Err(err) => tracing::warn!(error = %err.report(), "the initial token is unusable; ignored"),
            }
        }
        // A token given to a cache with a store (a fresh login) goes to the store too, so that
        // the next run or the other replicas have it.
        if cache.inner.store.is_some() && cache.inner.current.load().is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let cache = cache.clone();
                runtime.spawn(async move {
                    let _ = cache.publish().await;
                });
            }
        }
        cache
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

/// A monotonic time in whole milliseconds.
fn millis(time: Duration) -> u64 {
    u64::try_from(time.as_millis()).unwrap_or(u64::MAX)
}

fn clamp_fraction(fraction: f64) -> f64 {
    if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    }
}

impl Config {
    /// The leeway for a token of `lifetime`: the configured one, at most a quarter of the
    /// lifetime, at least 1 s (half the lifetime below 2 s) to cover whole-second rounding.
    fn leeway_for(&self, lifetime: Duration) -> Duration {
        let floor = Duration::from_secs(1).min(lifetime / 2);
        self.leeway.min((lifetime / 4).max(floor))
    }

    /// The refresh-ahead window for a token that stays valid for `usable` more: the configured
    /// window with its jitter (`spread` in 0..=1), all within the largest fraction.
    fn window_for(&self, usable: Duration, spread: f64) -> Duration {
        let jittered = self.refresh_ahead.mul_f64(1.0 + self.jitter * spread);
        jittered.min(usable.mul_f64(self.max_refresh_fraction))
    }
}

impl TokenCache {
    /// A cache over `source` with the default settings: a token stops being sent 5 s before it
    /// expires ([`DEFAULT_LEEWAY`]) and is refreshed 60 to 72 s before that
    /// ([`DEFAULT_REFRESH_AHEAD`], [`DEFAULT_JITTER`]).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let expiry = SystemTime::now() + Duration::from_secs(3600);
    /// let cache = TokenCache::new(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }));
    /// cache.prefetch().await?;
    /// let valid_until = cache.valid_until().unwrap();
    /// assert_eq!(valid_until, expiry - Duration::from_secs(5));
    /// assert!(cache.stale_at().unwrap() <= valid_until - Duration::from_secs(60));
    /// # Ok(()) }
    /// ```
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self::builder(source).build()
    }

    /// Starts building a cache over `source`; see [`TokenCacheBuilder`] for the settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{source_fn, LostResponseRetry, Token, TokenCache};
    ///
    /// let cache = TokenCache::builder(source_fn(|| async { Ok(Token::bearer("t")) }))
    ///     .refresh_ahead(Duration::from_secs(120))
    ///     .backoff(Duration::from_millis(500), Duration::from_secs(30))
    ///     .lost_response_retry(LostResponseRetry::NearExpiry)
    ///     .build();
    /// assert!(cache.token().is_none()); // nothing is fetched before it is needed
    /// ```
    pub fn builder(source: impl TokenSource + 'static) -> TokenCacheBuilder {
        Self::builder_shared(Arc::new(source))
    }

    /// Starts building a cache over a source that is already shared, for instance one the
    /// application also calls itself, or one chosen at run time.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_oauth2::{source_fn, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let source: Arc<dyn TokenSource> = Arc::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// let cache = TokenCache::builder_shared(source.clone()).build();
    /// cache.prefetch().await?;
    /// // The source is still the application's to use directly.
    /// assert_eq!(source.fetch_token().await?.access_token().expose(), "t");
    /// # Ok(()) }
    /// ```
    pub fn builder_shared(source: Arc<dyn TokenSource>) -> TokenCacheBuilder {
        TokenCacheBuilder {
            source,
            clock: Arc::new(SystemClock),
            config: Config {
                refresh_ahead: DEFAULT_REFRESH_AHEAD,
                max_refresh_fraction: DEFAULT_MAX_REFRESH_FRACTION,
                jitter: DEFAULT_JITTER,
                leeway: DEFAULT_LEEWAY,
                min_backoff: DEFAULT_MIN_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
                backoff_without_token: DEFAULT_BACKOFF_WITHOUT_TOKEN,
                wait_for_retry: DEFAULT_WAIT_FOR_RETRY,
                lost_response: LostResponseRetry::default(),
            },
            initial_token: None,
            store: None,
        }
    }

    /// The current token, if there is one (it may be stale or expired).
    ///
    /// ```
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let cache = TokenCache::new(source_fn(|| async {
    ///     Ok(Token::bearer("t").with_scope("orders:read"))
    /// }));
    /// assert!(cache.token().is_none());
    /// cache.prefetch().await?;
    /// let token = cache.token().unwrap();
    /// assert_eq!(token.access_token().expose(), "t");
    /// assert_eq!(token.scope(), Some("orders:read"));
    /// # Ok(()) }
    /// ```
    pub fn token(&self) -> Option<Token> {
        self.inner
            .current
            .load()
            .as_ref()
            .map(|entry| entry.token.clone())
    }

    /// When the current token expires, as the server said: `None` if there is no token or it
    /// never expires.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let clock = ManualClock::new();
    /// let expiry = clock.now() + Duration::from_secs(3600);
    /// let cache = TokenCache::builder(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }))
    /// .clock(clock)
    /// .build();
    /// assert_eq!(cache.expires_at(), None); // no token yet
    /// cache.prefetch().await?;
    /// assert_eq!(cache.expires_at(), Some(expiry));
    /// # Ok(()) }
    /// ```
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner
            .current
            .load()
            .as_ref()
            .and_then(|entry| entry.token.expires_at())
    }

    /// Until when the current token is sent: its expiry minus the leeway (see
    /// [`TokenCacheBuilder::leeway`]). `None` if there is no token or it never expires.
    ///
    /// A wall-clock projection made when the token arrived: the cache itself goes by a
    /// monotonic deadline, which a later step of the wall clock does not move (see
    /// [Time](crate::cache#time)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let clock = ManualClock::new();
    /// let expiry = clock.now() + Duration::from_secs(3600);
    /// let cache = TokenCache::builder(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }))
    /// .leeway(Duration::from_secs(30))
    /// .clock(clock.clone())
    /// .build();
    /// cache.prefetch().await?;
    /// assert_eq!(cache.valid_until(), Some(expiry - Duration::from_secs(30)));
    /// // From then on, requests wait for a new token instead of sending this one.
    /// # Ok(()) }
    /// ```
    pub fn valid_until(&self) -> Option<SystemTime> {
        self.inner
            .current
            .load()
            .as_ref()
            .and_then(|entry| entry.deadlines)
            .map(|deadlines| deadlines.wall_valid_until)
    }

    /// When the current token becomes stale and a background refresh starts: the
    /// [refresh-ahead](TokenCacheBuilder::refresh_ahead) window (with its jitter) before
    /// [`valid_until`](Self::valid_until). `None` if there is no token or it never expires.
    /// Like `valid_until`, a wall-clock projection made when the token arrived.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_oauth2::clock::{Clock, ManualClock};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let clock = ManualClock::new();
    /// let expiry = clock.now() + Duration::from_secs(3600);
    /// let cache = TokenCache::builder(source_fn(move || async move {
    ///     Ok(Token::bearer("t").with_expires_at(expiry))
    /// }))
    /// .refresh_ahead(Duration::from_secs(120))
    /// .jitter(0.0)
    /// .clock(clock)
    /// .build();
    /// cache.prefetch().await?;
    /// let valid_until = cache.valid_until().unwrap();
    /// assert_eq!(cache.stale_at(), Some(valid_until - Duration::from_secs(120)));
    /// # Ok(()) }
    /// ```
    pub fn stale_at(&self) -> Option<SystemTime> {
        self.inner
            .current
            .load()
            .as_ref()
            .and_then(|entry| entry.deadlines)
            .map(|deadlines| deadlines.wall_stale_at)
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

    /// After a failed refresh, when the cache will next ask the authorization server: the end
    /// of its backoff, which honours the server's `Retry-After`. `None` if no backoff is
    /// pending (no failure, a refresh running, or the backoff is over). The backoff runs on
    /// monotonic time; this is its end projected on the wall clock of the moment of the call.
    ///
    /// A retry policy of your own can wait until then, as
    /// [`OAuth2Layer::with_retry`](crate::OAuth2Layer::with_retry) does: a request sent again
    /// earlier gets the stored error back (or waits, within
    /// [`wait_for_retry`](TokenCacheBuilder::wait_for_retry)).
    ///
    /// ```
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// assert_eq!(cache.next_attempt_at(), None);
    /// ```
    pub fn next_attempt_at(&self) -> Option<SystemTime> {
        let wait = self.time_to_next_attempt();
        if wait.is_zero() {
            return None;
        }
        let now = self.inner.clock.now();
        Some(now.checked_add(wait).unwrap_or(now))
    }

    /// How long until [`next_attempt_at`](Self::next_attempt_at), by the cache's monotonic
    /// clock; zero if no backoff is pending.
    pub(crate) fn time_to_next_attempt(&self) -> Duration {
        let state = self.inner.lock_state();
        if state.in_flight.is_some() {
            return Duration::ZERO;
        }
        state.retry_at.map_or(Duration::ZERO, |at| {
            at.saturating_sub(self.inner.clock.monotonic())
        })
    }

    /// Sleeps on the cache's clock.
    pub(crate) fn sleep(&self, duration: Duration) -> crate::clock::Sleep {
        self.inner.clock.sleep(duration)
    }

    /// Fetches a token now if there is no valid one, so that start-up fails fast on bad
    /// credentials. Does nothing if the cache holds a valid token.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, Error, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::new(source_fn(|| async {
    ///     Err(Error::source_error("no credentials in the environment"))
    /// }));
    /// match cache.prefetch().await {
    ///     Ok(()) => println!("ready"),
    ///     Err(err) => eprintln!("cannot start: {err}"),
    /// }
    /// # assert!(cache.prefetch().await.is_err());
    /// # }
    /// ```
    pub async fn prefetch(&self) -> Result<(), Error> {
        self.authorization().await.map(drop)
    }

    /// Fetches a new token now, whatever the state of the current one (joining a refresh that
    /// is already running), and returns it. Ignores a pending backoff.
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let n = AtomicUsize::new(0);
    /// # let source = source_fn(move || {
    /// #     let token = Token::bearer(format!("t{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    /// #     async move { Ok(token) }
    /// # });
    /// // `source` hands out "t1", "t2", ...
    /// let cache = TokenCache::new(source);
    /// cache.prefetch().await?;
    /// let new = cache.refresh().await?; // "t1" was still valid: replaced anyway
    /// assert_eq!(new.access_token().expose(), "t2");
    /// assert_eq!(cache.token().unwrap().access_token().expose(), "t2");
    /// # Ok(()) }
    /// ```
    pub async fn refresh(&self) -> Result<Token, Error> {
        if let Some(current) = self.inner.current.load_full() {
            // A new token: not the current one again from the store.
            self.reject(&current);
        }
        let shared = {
            let mut state = self.inner.lock_state();
            self.start_refresh(&mut state)
        };
        shared.await.map(|entry| entry.token.clone())
    }

    /// Writes the current token to the cache's [store](TokenCacheBuilder::store), and waits
    /// for the write: what a CLI does right after a login, before it exits, so that the next
    /// run finds the login. `Ok(false)` when nothing was written: no store or no token, the
    /// store holds a token at least as new, or another process holds the store's lock (it is
    /// fetching a newer one). A cache built with an
    /// [`initial_token`](TokenCacheBuilder::initial_token) does this by itself in the
    /// background; call it to be sure the write is done.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth2::store::{MemoryStore, SharedStore, StoreKey};
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
    /// let store = MemoryStore::new();
    /// let login = Token::bearer("from-the-login")
    ///     .with_refresh_token("rt")
    ///     .with_expires_at(SystemTime::now() + Duration::from_secs(3600));
    /// let source = source_fn(|| async { Ok(Token::bearer("fetched")) });
    /// let cache = TokenCache::builder(source)
    ///     .initial_token(login)
    ///     .store(SharedStore::new(store.clone()).key(StoreKey::named("alice")))
    ///     .build();
    /// cache.save_to_store().await?; // written now, or already written by the build
    /// assert_eq!(store.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn save_to_store(&self) -> Result<bool, crate::store::StoreError> {
        self.publish().await
    }

    /// The current token while it is valid, else the one the next refresh gets (joining a
    /// refresh already running: single-flight, backoff and all, as a request through the layer
    /// would). A stale token is returned at once and refreshed in the background.
    ///
    /// This is how code outside the layer uses the token a service holds: to exchange it
    /// ([`SecurityToken::from_cache`](crate::SecurityToken::from_cache)), to hand it to a
    /// client the layer does not wrap.
    ///
    /// A cache is not a [`TokenSource`]: a cache behind another cache (or behind an
    /// [`OAuth2Layer`](crate::OAuth2Layer), which has its own) would hand back a token the
    /// outer one was told to [`invalidate`](Self::invalidate).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use tower_oauth2::{source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// let fetches = Arc::new(AtomicU32::new(0));
    /// let counter = fetches.clone();
    /// let cache = TokenCache::new(source_fn(move || {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    ///     async { Ok(Token::bearer("held")) }
    /// }));
    /// assert_eq!(cache.valid_token().await?.access_token().expose(), "held");
    /// assert_eq!(cache.valid_token().await?.access_token().expose(), "held");
    /// assert_eq!(fetches.load(Ordering::SeqCst), 1); // the second came from the cache
    /// # Ok(()) }
    /// ```
    pub async fn valid_token(&self) -> Result<Token, Error> {
        let current = self.inner.current.load_full();
        // `lookup_in` also starts a background refresh for a stale token, as a request would.
        match (self.lookup_in(current.as_ref()), current) {
            (Lookup::Ready(..), Some(entry)) => Ok(entry.token.clone()),
            (Lookup::Wait(wait), _) => Ok(wait.await?.token.clone()),
            // `lookup_in` is ready only with an entry; should that change, wait for one.
            (Lookup::Ready(..), None) => Ok(self.wait_for_refresh().await?.token.clone()),
        }
    }

    /// Drops the current token: the next request waits for a new one.
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use tower_oauth2::{source_fn, Token, TokenCache};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
    /// # let n = AtomicUsize::new(0);
    /// # let source = source_fn(move || {
    /// #     let token = Token::bearer(format!("t{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    /// #     async move { Ok(token) }
    /// # });
    /// // `source` hands out "t1", "t2", ...
    /// let cache = TokenCache::new(source);
    /// cache.prefetch().await?;
    /// cache.invalidate(); // say, the resource server rejected "t1"
    /// assert!(cache.token().is_none());
    /// cache.prefetch().await?;
    /// assert_eq!(cache.token().unwrap().access_token().expose(), "t2");
    /// # Ok(()) }
    /// ```
    pub fn invalidate(&self) {
        self.drop_current();
    }

    /// Drops the current token only if it is the one of `generation` (never a newer one).
    pub(crate) fn invalidate_generation(&self, generation: u64) {
        let old = self.inner.current.rcu(|current| match current {
            Some(entry) if entry.generation == generation => None,
            other => other.clone(),
        });
        if let Some(old) = old.filter(|old| old.generation == generation) {
            // Refused by a resource server: the store's copy is no better.
            self.reject(&old);
        }
    }

    /// A valid token's `Authorization` header and generation, waiting for a refresh if needed.
    pub(crate) async fn authorization(&self) -> Result<(HeaderValue, u64), Error> {
        match self.lookup() {
            Lookup::Ready(header, generation) => Ok((header, generation)),
            Lookup::Wait(wait) => wait.await.map(|entry| (entry.header.clone(), entry.generation)),
        }
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
            .field("valid_until", &self.valid_until())
            .field("stale_at", &self.stale_at())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}
