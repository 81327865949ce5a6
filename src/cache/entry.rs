//! A cached token: its prebuilt `Authorization` header and its deadlines, on the monotonic
//! clock and projected on the wall clock (see the parent module's "Time").

use super::*;

/// A cached token, with its prebuilt `Authorization` header and the times that decide its
/// state.
pub(crate) struct Entry {
    /// `Bearer <token>`, marked sensitive so HTTP/2 never indexes it.
    pub(crate) header: HeaderValue,
    /// Identifies this token, so a 401 invalidates exactly the token that was sent.
    pub(crate) generation: u64,
    /// `None` for a token that never expires.
    pub(super) deadlines: Option<Deadlines>,
    pub(super) token: Token,
}

/// When a token becomes stale and stops being sent. The monotonic deadlines decide; the wall
/// times are their projection when the token arrived, for display and for the cheap check.
#[derive(Clone, Copy, Debug)]
pub(super) struct Deadlines {
    /// Monotonic ([`Clock::monotonic`]): a background refresh starts from then on.
    pub(super) stale_at: Duration,
    /// Monotonic: the token's expiry minus the leeway; the token is not sent from then on.
    pub(super) valid_until: Duration,
    /// Wall time of `stale_at`, as projected when the token arrived.
    pub(super) wall_stale_at: SystemTime,
    /// Wall time of `valid_until`, as projected when the token arrived.
    pub(super) wall_valid_until: SystemTime,
}

/// A reading of both of a clock's times, taken together.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reading {
    pub(super) wall: SystemTime,
    pub(super) monotonic: Duration,
}

impl Reading {
    pub(super) fn take(clock: &dyn Clock) -> Self {
        Reading {
            monotonic: clock.monotonic(),
            wall: clock.now(),
        }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("generation", &self.generation)
            .field("deadlines", &self.deadlines)
            .field("expires_at", &self.token.expires_at())
            .finish_non_exhaustive()
    }
}

/// Gives arc-swap's [`Cache`](arc_swap::Cache) access to a cache's current entry.
#[derive(Clone)]
pub(crate) struct CurrentEntry(pub(super) Arc<Inner>);

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

impl TokenCache {
    /// Builds the cache entry for a new token: its header and the times that decide its state.
    ///
    /// `arrival` is when the token reached the cache; `started`, when the refresh that got it
    /// started (`None` for a token the application supplied). See the module docs' "Time".
    pub(super) fn entry_for(
        &self,
        token: Token,
        arrival: Reading,
        started: Option<Reading>,
    ) -> Result<Entry, Error> {
        // Built in a buffer sized once and wiped when the last clone of the header is dropped
        // (the token's own bytes are a `Secret`, wiped too). Its bytes are reference-counted
        // from the start, so the clone on every request is one reference-count increment.
        let access_token = token.access_token().expose();
        let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity("Bearer ".len() + access_token.len()));
        bytes.extend_from_slice(b"Bearer ");
        bytes.extend_from_slice(access_token.as_bytes());
        let header = crate::secret::wiped_header_value(bytes).map_err(|_| {
            Error::source_error("the access token contains characters not allowed in an HTTP header")
        })?;
        let deadlines = self.deadlines_for(&token, arrival, started);
        Ok(Entry {
            header,
            generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
            deadlines,
            token,
        })
    }

    /// The monotonic deadlines of `token`, and their wall-clock projections; `None` if it
    /// never expires.
    pub(super) fn deadlines_for(
        &self,
        token: &Token,
        arrival: Reading,
        started: Option<Reading>,
    ) -> Option<Deadlines> {
        let config = &self.inner.config;
        let expires_at = token.expires_at()?;
        // A token issued during this refresh (by the wall clock read when it started) lives
        // `expires_in` from the moment its request was sent: minus the time since then, by the
        // wall clock but never more than the refresh took by monotonic time, so that a wall
        // step while the response was on its way moves nothing by more than that. (Counting
        // from the start of the refresh would lose the minutes a device-flow login takes.)
        // Any other token (seeded, restored, handed out by a source from its own store) lives
        // until its wall-clock expiry, counted from its arrival: it is re-anchored.
        let fresh = started.and_then(|started| {
            let issued_at = token.issued_at().filter(|issued_at| *issued_at >= started.wall)?;
            let in_flight = arrival
                .wall
                .duration_since(issued_at)
                .unwrap_or_default()
                .min(arrival.monotonic.saturating_sub(started.monotonic));
            Some(token.lifetime()?.saturating_sub(in_flight))
        });
        let remaining = fresh.unwrap_or_else(|| expires_at.duration_since(arrival.wall).unwrap_or_default());
        // Past what a `Duration` holds: as good as never expiring.
        let expiry = arrival.monotonic.checked_add(remaining)?;
        // The leeway and the refresh-ahead window scale with the token's lifetime: for a
        // re-anchored token whose issue time is known (one another replica fetched, read back
        // from a store), the whole of it, so that a token read late in its life is as stale
        // as it is for the replica that fetched it; otherwise what is left of it.
        let lifetime = match fresh {
            Some(_) => remaining,
            None => token
                .lifetime()
                .filter(|lifetime| *lifetime >= remaining)
                .unwrap_or(remaining),
        };
        let leeway = config.leeway_for(lifetime);
        let valid_until = expiry.saturating_sub(leeway);
        let window = config.window_for(lifetime.saturating_sub(leeway), fastrand::f64());
        let wall_valid_until = expires_at.checked_sub(leeway).unwrap_or(expires_at);
        Some(Deadlines {
            stale_at: valid_until.saturating_sub(window),
            valid_until,
            wall_stale_at: wall_valid_until.checked_sub(window).unwrap_or(wall_valid_until),
            wall_valid_until,
        })
    }
}
