//! The hot path and the wait: what a request does with the current entry (fresh, stale,
//! expired), and how a request without a valid token waits through refreshes and backoffs.

use super::*;

/// What a request gets from the cache.
pub(crate) enum Lookup {
    /// A valid token: send it now.
    Ready(HeaderValue, u64),
    /// No valid token: wait for the shared refresh.
    Wait(TokenWait),
}

/// A future that resolves when the refresh a request waits on ends. Many requests share one.
pub(crate) struct TokenWait(pub(super) WaitState);

pub(super) enum WaitState {
    Waiting(Pin<Box<dyn Future<Output = RefreshResult> + Send>>),
    Failed(Option<Error>),
}

/// One step of a request that waits for a token.
pub(super) enum Step {
    /// A valid token is there.
    Ready(Arc<Entry>),
    /// Wait for this refresh.
    Join(SharedRefresh),
    /// Sleep to the end of the backoff.
    Sleep(Duration),
    /// Give up with this error.
    Fail(Error),
}

impl Future for TokenWait {
    type Output = RefreshResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<RefreshResult> {
        match &mut self.0 {
            WaitState::Waiting(wait) => wait.as_mut().poll(cx),
            WaitState::Failed(error) => std::task::Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| Error::Config("TokenWait polled after completion".to_owned())))),
        }
    }
}

impl TokenCache {
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
    /// A fresh token costs two coarse clock reads (monotonic and wall, about 5 ns each on
    /// Linux) and one `HeaderValue` clone (a reference count increment). When the two cheap
    /// readings disagree (the wall clock was stepped, or the machine was suspended) or the
    /// token is stale, [`lookup_precise`](Self::lookup_precise) decides on the precise
    /// monotonic clock.
    #[inline]
    pub(crate) fn lookup_in(&self, entry: Option<&Arc<Entry>>) -> Lookup {
        let inner = &*self.inner;
        if let Some(entry) = entry {
            let Some(deadlines) = &entry.deadlines else {
                // A token without expiry is used until invalidated.
                return Lookup::Ready(entry.header.clone(), entry.generation);
            };
            // The coarse monotonic reading is never ahead of the truth, but stops during
            // suspend; the wall clock goes on during suspend, but can be stepped. Both saying
            // "fresh" is enough.
            if inner.clock.monotonic_coarse() < deadlines.stale_at
                && inner.clock.now_coarse() < deadlines.wall_stale_at
            {
                return Lookup::Ready(entry.header.clone(), entry.generation);
            }
            return self.lookup_precise(entry, deadlines);
        }
        Lookup::Wait(self.wait_for_refresh())
    }

    /// The hot path when the cheap readings do not both say "fresh": the precise monotonic
    /// clock decides.
    #[inline(never)]
    pub(super) fn lookup_precise(&self, entry: &Entry, deadlines: &Deadlines) -> Lookup {
        let inner = &*self.inner;
        let now = inner.clock.monotonic();
        if now < deadlines.stale_at {
            return Lookup::Ready(entry.header.clone(), entry.generation);
        }
        if now < deadlines.valid_until {
            // Stale but valid: serve it, and make sure a refresh is on its way.
            if millis(now) >= inner.no_refresh_before_ms.load(Ordering::Acquire) {
                self.refresh_in_background(now);
            }
            return Lookup::Ready(entry.header.clone(), entry.generation);
        }
        Lookup::Wait(self.wait_for_refresh())
    }

    /// Starts a background refresh unless one is running or a backoff is pending.
    #[cold]
    pub(super) fn refresh_in_background(&self, now: Duration) {
        let mut state = self.inner.lock_state();
        if state.in_flight.is_none() && state.retry_at.is_none_or(|at| now >= at) {
            drop(self.start_refresh(&mut state));
        }
    }

    /// The slow path: there is no valid token. Joins the running refresh, or starts one, or,
    /// during a backoff after a failure, waits for the next attempt if it is due soon and fails
    /// at once with the last error otherwise.
    #[cold]
    pub(super) fn wait_for_refresh(&self) -> TokenWait {
        let step = {
            let mut state = self.inner.lock_state();
            self.next_step(&mut state, self.inner.config.wait_for_retry)
        };
        match step {
            Step::Fail(error) => TokenWait(WaitState::Failed(Some(error))),
            step => TokenWait(WaitState::Waiting(Box::pin(self.clone().wait(step)))),
        }
    }

    /// What a request without a valid token does next, with `patience` left for backoffs.
    pub(super) fn next_step(&self, state: &mut RefreshState, patience: Duration) -> Step {
        // Another request may have stored a token since our lookup.
        if let Some(entry) = self
            .inner
            .current
            .load_full()
            .filter(|entry| self.is_valid(entry))
        {
            return Step::Ready(entry);
        }
        if state.in_flight.is_none() {
            if let (Some(retry_at), Some(error)) = (state.retry_at, &state.last_error) {
                if let Some(delay) = retry_at.checked_sub(self.inner.clock.monotonic()) {
                    if !delay.is_zero() {
                        // Sleeping needs a runtime; without one, fail at once.
                        let can_sleep = tokio::runtime::Handle::try_current().is_ok();
                        return if delay <= patience && can_sleep {
                            Step::Sleep(delay)
                        } else {
                            Step::Fail(error.clone())
                        };
                    }
                }
            }
        }
        Step::Join(self.start_refresh(state))
    }

    /// Waits for a token: joins refreshes, and after a transient failure sleeps to the next
    /// attempt while the backoffs fit in the request's patience
    /// ([`wait_for_retry`](TokenCacheBuilder::wait_for_retry)), at most six attempts.
    pub(super) async fn wait(self, mut step: Step) -> RefreshResult {
        let mut patience = self.inner.config.wait_for_retry;
        let mut attempts = 0;
        loop {
            match step {
                Step::Ready(entry) => return Ok(entry),
                Step::Fail(error) => return Err(error),
                Step::Sleep(delay) => {
                    patience = patience.saturating_sub(delay);
                    self.inner.clock.sleep(delay).await;
                }
                Step::Join(shared) => {
                    attempts += 1;
                    match shared.await {
                        Ok(entry) => return Ok(entry),
                        Err(error) if !error.is_transient() || attempts >= 6 => return Err(error),
                        Err(_) => {}
                    }
                }
            }
            step = {
                let mut state = self.inner.lock_state();
                self.next_step(&mut state, patience)
            };
        }
    }

    /// Whether `entry` may be sent now, by the precise monotonic clock.
    pub(super) fn is_valid(&self, entry: &Entry) -> bool {
        entry
            .deadlines
            .is_none_or(|deadlines| self.inner.clock.monotonic() < deadlines.valid_until)
    }

    /// The current token's monotonic `valid_until` if it is still valid (`Some(None)` for a
    /// token that never expires), `None` if there is no valid token.
    pub(super) fn current_valid_until(&self) -> Option<Option<Duration>> {
        let current = self.inner.current.load();
        let entry = current.as_ref().filter(|entry| self.is_valid(entry))?;
        Some(entry.deadlines.map(|deadlines| deadlines.valid_until))
    }
}
