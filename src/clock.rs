//! Time as the token sources see it, injectable so tests move time instead of sleeping.
//!
//! Every place in the crate that reads the time or waits (token expiry, device-flow polling,
//! refresh-ahead, backoff) goes through a [`Clock`]. [`SystemClock`] is the real one and the
//! default; [`ManualClock`] is a clock for tests that only moves when told to.
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
/// Wall-clock time ([`SystemTime`]) is used so that a token's expiry can be stored and restored
/// across process restarts.
///
/// Implement it to run the crate on another time source (a simulation, say); most
/// applications use [`SystemClock`], and tests [`ManualClock`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_oauth2::clock::{Clock, Sleep};
///
/// /// The real time, shifted: for a host whose clock is known to be off.
/// #[derive(Debug)]
/// struct Shifted(Duration);
///
/// impl Clock for Shifted {
///     fn now(&self) -> SystemTime {
///         SystemTime::now() + self.0
///     }
///     fn sleep(&self, duration: Duration) -> Sleep {
///         Box::pin(tokio::time::sleep(duration))
///     }
/// }
///
/// let clock = Shifted(Duration::from_secs(3600));
/// assert!(clock.now() > SystemTime::now());
/// assert!(clock.now_coarse() > SystemTime::now()); // defaults to `now`
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

    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }
}

/// The real clock: [`SystemTime::now`] and [`tokio::time::sleep`].
///
/// On Linux, [`now_coarse`](Clock::now_coarse) reads `CLOCK_REALTIME_COARSE` (the time of the
/// last scheduler tick, a few milliseconds old, about 5 ns to read against 25 to 35 ns for
/// `SystemTime::now`); elsewhere it is `SystemTime::now`.
///
/// ```
/// use tower_oauth2::clock::{Clock, SystemClock};
/// assert!(SystemClock.now() > std::time::UNIX_EPOCH);
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

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(target_os = "linux")]
#[inline]
fn coarse_now() -> SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME_COARSE exists since Linux 2.6.32.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    match (status, u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
        (0, Ok(secs), Ok(nanos)) => SystemTime::UNIX_EPOCH + Duration::new(secs, nanos),
        _ => SystemTime::now(),
    }
}

#[cfg(not(target_os = "linux"))]
#[inline]
fn coarse_now() -> SystemTime {
    SystemTime::now()
}

/// A clock for tests: it starts at a fixed time and only moves when [`advance`](Self::advance)d
/// or when something [`sleep`](Clock::sleep)s on it, in which case it jumps forward by the
/// requested duration and the sleep completes at once.
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
    start: SystemTime,
    now: SystemTime,
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

    /// A clock that starts at `start`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_oauth2::clock::{Clock, ManualClock};
    ///
    /// let start = SystemTime::now();
    /// let clock = ManualClock::starting_at(start);
    /// assert_eq!(clock.now(), start);
    /// ```
    pub fn starting_at(start: SystemTime) -> Self {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState { start, now: start })),
        }
    }

    /// Moves the clock forward.
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
    }

    /// How far the clock has moved since it was created.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(5));
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(15));
    /// ```
    pub fn elapsed(&self) -> Duration {
        let state = self.lock();
        state.now.duration_since(state.start).unwrap_or_default()
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

    fn sleep(&self, duration: Duration) -> Sleep {
        self.advance(duration);
        Box::pin(tokio::task::yield_now())
    }
}
