//! Time as the token sources see it, injectable so tests move time instead of sleeping.
//!
//! Every place in the crate that reads the time or waits (token expiry, device-flow polling,
//! refresh-ahead, backoff) goes through a [`Clock`]. [`SystemClock`] is the real one and the
//! default; [`ManualClock`] is a clock for tests that only moves when told to.
//!
//! A clock gives two kinds of time:
//!
//! - **wall time** ([`Clock::now`]): what a token's `expires_at` is written in, kept for
//!   display and for storage. It jumps: NTP steps it back and forth, an administrator sets it.
//! - **monotonic time** ([`Clock::monotonic`]): time elapsed since an arbitrary origin, which
//!   never jumps and counts the time the machine spent suspended. The
//!   [`TokenCache`](crate::TokenCache) decides validity and refresh timing on it alone (see
//!   [its docs](crate::cache#time)).
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth2::clock::{Clock, ManualClock};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualClock::new();
//! let start = clock.now();
//! clock.sleep(Duration::from_secs(5)).await; // returns at once, the clock moved 5 s
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(6));
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A boxed, `Send` future returned by [`Clock::sleep`].
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::clock::{Clock, Sleep, SystemClock};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sleep: Sleep = SystemClock.sleep(Duration::from_millis(1));
/// sleep.await;
/// # }
/// ```
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of the current time and of delays.
///
/// Wall-clock time ([`SystemTime`]) is what expiry is written in, so that a token's expiry can
/// be shown, stored and restored across process restarts; monotonic time
/// ([`monotonic`](Clock::monotonic)) is what decides when a token stops being sent, so that
/// stepping the wall clock fools nothing.
///
/// Implement it to run the crate on another time source (a simulation, say); most
/// applications use [`SystemClock`], and tests [`ManualClock`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_oauth2::clock::{Clock, Sleep, SystemClock};
///
/// /// The real time, shifted: for a host whose clock is known to be off.
/// #[derive(Debug)]
/// struct Shifted(Duration);
///
/// impl Clock for Shifted {
///     fn now(&self) -> SystemTime {
///         SystemTime::now() + self.0
///     }
///     fn monotonic(&self) -> Duration {
///         SystemClock.monotonic() // elapsed time is not shifted
///     }
///     fn sleep(&self, duration: Duration) -> Sleep {
///         Box::pin(tokio::time::sleep(duration))
///     }
/// }
///
/// let clock = Shifted(Duration::from_secs(3600));
/// assert!(clock.now() > SystemTime::now());
/// assert!(clock.now_coarse() > SystemTime::now()); // defaults to `now`
/// assert!(clock.monotonic_coarse() <= clock.monotonic()); // defaults to `monotonic`
/// ```
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::starting_at(SystemTime::UNIX_EPOCH);
    /// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
    /// ```
    fn now(&self) -> SystemTime;

    /// The current time, possibly a few milliseconds behind, for checks that run on every
    /// request (is the cached token still fresh?) and so must be cheap. Defaults to
    /// [`now`](Clock::now).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, SystemClock};
    /// use tower_oauth2::Token;
    ///
    /// let token = Token::bearer("abc").with_expires_at(SystemClock.now() + Duration::from_secs(3600));
    /// // On every request: cheap, and a few milliseconds off at most.
    /// assert!(!token.is_expired_at(SystemClock.now_coarse()));
    /// ```
    fn now_coarse(&self) -> SystemTime {
        self.now()
    }

    /// Monotonic time: how long since an arbitrary origin (fixed for the clock's life), never
    /// going backwards, unmoved by steps of the wall clock, and counting the time the machine
    /// spent suspended (so that a token does not look valid after a long sleep).
    ///
    /// [`SystemClock`] reads `CLOCK_BOOTTIME` on Linux and [`Instant`](std::time::Instant)
    /// elsewhere (see its caveat about suspend).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let start = clock.monotonic();
    /// clock.step_wall_back(Duration::from_secs(3600)); // NTP steps the wall clock back an hour
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(clock.monotonic() - start, Duration::from_secs(10)); // only real time counts
    /// ```
    fn monotonic(&self) -> Duration;

    /// A cheap reading of monotonic time for the check that runs on every request: never
    /// ahead of [`monotonic`](Clock::monotonic) (same origin), but it may lag behind it by a
    /// few milliseconds, and by the time the machine spent suspended. Defaults to
    /// [`monotonic`](Clock::monotonic).
    ///
    /// The cache sends a token on this reading alone only when [`now_coarse`](Clock::now_coarse)
    /// agrees that it is fresh; otherwise it asks [`monotonic`](Clock::monotonic).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.suspend(Duration::from_secs(7200)); // a laptop sleeps for two hours
    /// assert_eq!(clock.monotonic() - clock.monotonic_coarse(), Duration::from_secs(7200));
    /// ```
    fn monotonic_coarse(&self) -> Duration {
        self.monotonic()
    }

    /// Waits for `duration` of this clock's time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let clock = ManualClock::new();
    /// clock.sleep(Duration::from_secs(60)).await; // a manual clock jumps instead of waiting
    /// assert_eq!(clock.elapsed(), Duration::from_secs(60));
    /// # }
    /// ```
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// A shared clock is a clock: `Arc<dyn Clock>` can be passed wherever a clock is asked for.
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn now_coarse(&self) -> SystemTime {
        (**self).now_coarse()
    }

    fn monotonic(&self) -> Duration {
        (**self).monotonic()
    }

    fn monotonic_coarse(&self) -> Duration {
        (**self).monotonic_coarse()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }
}

/// The real clock: [`SystemTime::now`], a monotonic clock that counts suspend, and
/// [`tokio::time::sleep`].
///
/// On Linux:
///
/// | method | reads | cost (measured) |
/// |---|---|---|
/// | [`now`](Clock::now) | `CLOCK_REALTIME` (`SystemTime::now`) | 25 to 55 ns |
/// | [`now_coarse`](Clock::now_coarse) | `CLOCK_REALTIME_COARSE`: the last scheduler tick, a few ms old | about 5 ns |
/// | [`monotonic`](Clock::monotonic) | `CLOCK_BOOTTIME`: monotonic, and counts suspend | about 35 ns |
/// | [`monotonic_coarse`](Clock::monotonic_coarse) | `CLOCK_MONOTONIC_COARSE`: a few ms old, and stops during suspend | about 5 ns |
///
/// `CLOCK_BOOTTIME` is `CLOCK_MONOTONIC` plus the time spent suspended, so the coarse reading is
/// never ahead of the precise one, as [`monotonic_coarse`](Clock::monotonic_coarse) requires.
///
/// Elsewhere, `now_coarse` is `SystemTime::now`, and both monotonic readings are
/// [`Instant`](std::time::Instant) (since the first reading in the process). **Caveat**: on
/// some platforms (macOS among them) `Instant` stops while the system sleeps, so there a token
/// whose validity ran out during a sleep can be sent once after waking (the resource server
/// then answers `401`; [`OAuth2Layer::with_retry`](crate::OAuth2Layer::with_retry) recovers
/// from that).
///
/// ```
/// use tower_oauth2::clock::{Clock, SystemClock};
/// assert!(SystemClock.now() > std::time::UNIX_EPOCH);
/// let before = SystemClock.monotonic();
/// assert!(SystemClock.monotonic() >= before);
/// assert!(SystemClock.monotonic_coarse() <= SystemClock.monotonic());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[inline]
    fn now_coarse(&self) -> SystemTime {
        coarse_now()
    }

    fn monotonic(&self) -> Duration {
        precise_monotonic()
    }

    #[inline]
    fn monotonic_coarse(&self) -> Duration {
        coarse_monotonic()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Reads a Linux clock; `None` if the kernel refuses (it does not for the clocks used here).
#[cfg(target_os = "linux")]
#[inline]
fn read_clock(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clocks read exist since Linux 2.6.39.
    let status = unsafe { libc::clock_gettime(id, &mut ts) };
    match (status, u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
        (0, Ok(secs), Ok(nanos)) if nanos < 1_000_000_000 => Some(Duration::new(secs, nanos)),
        _ => None,
    }
}

#[cfg(target_os = "linux")]
#[inline]
fn coarse_now() -> SystemTime {
    read_clock(libc::CLOCK_REALTIME_COARSE)
        .map_or_else(SystemTime::now, |since| SystemTime::UNIX_EPOCH + since)
}

#[cfg(target_os = "linux")]
fn precise_monotonic() -> Duration {
    read_clock(libc::CLOCK_BOOTTIME)
        .or_else(|| read_clock(libc::CLOCK_MONOTONIC))
        .unwrap_or_else(instant_monotonic)
}

/// `CLOCK_MONOTONIC_COARSE`; zero (a lower bound of anything) if it cannot be read, which sends
/// the cache to the precise reading.
#[cfg(target_os = "linux")]
#[inline]
fn coarse_monotonic() -> Duration {
    read_clock(libc::CLOCK_MONOTONIC_COARSE).unwrap_or_default()
}

#[cfg(not(target_os = "linux"))]
#[inline]
fn coarse_now() -> SystemTime {
    SystemTime::now()
}

#[cfg(not(target_os = "linux"))]
fn precise_monotonic() -> Duration {
    instant_monotonic()
}

#[cfg(not(target_os = "linux"))]
#[inline]
fn coarse_monotonic() -> Duration {
    instant_monotonic()
}

/// Time since the first call in this process, by [`Instant`](std::time::Instant).
fn instant_monotonic() -> Duration {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed()
}

/// A clock for tests: it starts at a fixed time and only moves when told to, or when something
/// [`sleep`](Clock::sleep)s on it, in which case it jumps forward by the requested duration and
/// the sleep completes at once.
///
/// It keeps three times, as Linux does, so that tests can fool the wall clock the ways real
/// machines do:
///
/// | | wall ([`now`](Clock::now)) | boot time ([`monotonic`](Clock::monotonic)) | plain monotonic ([`monotonic_coarse`](Clock::monotonic_coarse)) |
/// |---|---|---|---|
/// | [`advance`](Self::advance), [`sleep`](Clock::sleep) | moves | moves | moves |
/// | [`step_wall_forward`](Self::step_wall_forward), [`step_wall_back`](Self::step_wall_back) | moves | | |
/// | [`suspend`](Self::suspend) | moves | moves | |
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(clock.elapsed(), Duration::from_secs(3600));
/// assert_eq!(clock.now(), t0 + Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    /// Wall time.
    now: SystemTime,
    /// Monotonic time counting suspend (Linux's `CLOCK_BOOTTIME`), from zero.
    boot: Duration,
    /// Monotonic time that stops during suspend (Linux's `CLOCK_MONOTONIC`), from zero.
    plain: Duration,
}

impl ManualClock {
    /// A clock that starts at 2030-01-01T00:00:00Z.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_893_456_000));
    /// ```
    pub fn new() -> Self {
        Self::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    }

    /// A clock that starts at `start` (wall time); its monotonic readings start at zero.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let start = SystemTime::now();
    /// let clock = ManualClock::starting_at(start);
    /// assert_eq!(clock.now(), start);
    /// assert_eq!(clock.monotonic(), Duration::ZERO);
    /// ```
    pub fn starting_at(start: SystemTime) -> Self {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState {
                now: start,
                boot: Duration::ZERO,
                plain: Duration::ZERO,
            })),
        }
    }

    /// Moves the clock forward: time passes, for the wall clock and both monotonic clocks.
    ///
    /// Clones share the time: advance the one your test holds, and the endpoint, cache or
    /// layer given a clone sees it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    /// use tower_oauth2::Token;
    ///
    /// let clock = ManualClock::new();
    /// let token = Token::bearer("abc").with_expires_at(clock.now() + Duration::from_secs(60));
    /// let shared = clock.clone();
    /// clock.advance(Duration::from_secs(60));
    /// assert!(token.is_expired_at(shared.now()));
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now += by;
        state.boot += by;
        state.plain += by;
    }

    /// Steps the wall clock forward (as NTP or an administrator may), leaving monotonic time
    /// alone: no time has passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let (wall, monotonic) = (clock.now(), clock.monotonic());
    /// clock.step_wall_forward(Duration::from_secs(3600));
    /// assert_eq!(clock.now(), wall + Duration::from_secs(3600));
    /// assert_eq!(clock.monotonic(), monotonic);
    /// ```
    pub fn step_wall_forward(&self, by: Duration) {
        self.lock().now += by;
    }

    /// Steps the wall clock back (as NTP may, correcting a clock that ran fast), leaving
    /// monotonic time alone.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let (wall, monotonic) = (clock.now(), clock.monotonic());
    /// clock.step_wall_back(Duration::from_secs(3600));
    /// assert_eq!(clock.now(), wall - Duration::from_secs(3600));
    /// assert_eq!(clock.monotonic(), monotonic);
    /// ```
    pub fn step_wall_back(&self, by: Duration) {
        let mut state = self.lock();
        state.now = state.now.checked_sub(by).unwrap_or(state.now);
    }

    /// Suspends the machine for `duration` (a laptop that sleeps, a VM that is paused): as on
    /// Linux, the wall clock and boot time ([`monotonic`](Clock::monotonic)) move on, and plain
    /// monotonic time ([`monotonic_coarse`](Clock::monotonic_coarse), Linux's
    /// `CLOCK_MONOTONIC_COARSE`) does not.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let (wall, coarse) = (clock.now(), clock.monotonic_coarse());
    /// clock.suspend(Duration::from_secs(7200));
    /// assert_eq!(clock.now(), wall + Duration::from_secs(7200));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(7200));
    /// assert_eq!(clock.monotonic_coarse(), coarse);
    /// ```
    pub fn suspend(&self, duration: Duration) {
        let mut state = self.lock();
        state.now += duration;
        state.boot += duration;
    }

    /// How much time has passed since the clock was created: its [`monotonic`](Clock::monotonic)
    /// reading (advances, sleeps and suspends; not wall-clock steps).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(5));
    /// clock.advance(Duration::from_secs(10));
    /// clock.step_wall_forward(Duration::from_secs(3600));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(15));
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.lock().boot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // The critical sections never panic, but stay usable if a caller's test did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.lock().now
    }

    fn monotonic(&self) -> Duration {
        self.lock().boot
    }

    fn monotonic_coarse(&self) -> Duration {
        self.lock().plain
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.advance(duration);
        Box::pin(tokio::task::yield_now())
    }
}
