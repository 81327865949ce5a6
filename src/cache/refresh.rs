//! One refresh, from start to end: single flight, a task of its own, and what happens when
//! its runtime shuts down before it ends.

use super::*;

/// The shared result of one refresh.
pub(super) type RefreshResult = Result<Arc<Entry>, Error>;

pub(super) type SharedRefresh = Shared<Pin<Box<dyn Future<Output = RefreshResult> + Send>>>;

/// One refresh, from start to end. If it is dropped before it ends (its task was lost with a
/// runtime that shut down), it forgets the refresh so the next request can start another.
pub(super) struct InFlight {
    pub(super) cache: TokenCache,
    pub(super) id: u64,
    pub(super) ended: bool,
}

impl InFlight {
    /// Fetches a token from the source and records the outcome.
    async fn run(mut self) -> RefreshResult {
        let cache = self.cache.clone();
        let inner = &*cache.inner;
        let started = Instant::now();
        let started_at = Reading::take(&*inner.clock);
        let span = tracing::info_span!("oauth2_token_refresh");
        tracing::debug!(parent: &span, "token refresh started");
        // With a store (and a runtime for its I/O and timeouts), the store decides whether
        // this replica fetches; without, the source is asked.
        let fetch: crate::source::TokenFuture<'_> = match &inner.store {
            Some(store) if tokio::runtime::Handle::try_current().is_ok() => {
                Box::pin(cache.fetch_through_store(store))
            }
            _ => inner.source.fetch_token(),
        };
        let result = tracing::Instrument::instrument(AssertUnwindSafe(fetch).catch_unwind(), span.clone())
            .await
            .unwrap_or_else(|_| Err(Error::source_error("the token source panicked")));
        let _entered = span.entered();
        let mut state = inner.lock_state();
        let outcome = cache.finish_refresh(&mut state, result, started, started_at);
        self.end(&mut state);
        outcome
    }

    /// Clears the in-flight marker (if it is still ours) and lets stale-path requests start
    /// the next refresh when the backoff allows.
    fn end(&mut self, state: &mut RefreshState) {
        self.ended = true;
        if state.in_flight.as_ref().is_some_and(|(id, _)| *id == self.id) {
            state.in_flight = None;
        }
        let retry_at_ms = state.retry_at.map_or(0, |at| millis(at).saturating_add(1));
        self.cache
            .inner
            .no_refresh_before_ms
            .store(retry_at_ms, Ordering::Release);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.ended {
            tracing::debug!("a token refresh was dropped before it ended; forgetting it");
            let cache = self.cache.clone();
            let mut state = cache.inner.lock_state();
            self.end(&mut state);
        }
    }
}

impl TokenCache {
    /// Returns the running refresh, or starts one. Called with the state locked.
    pub(super) fn start_refresh(&self, state: &mut RefreshState) -> SharedRefresh {
        self.start_refresh_inner(state, true)
    }

    /// Starts a refresh as a task on the caller's tokio runtime (or, outside one, as a future
    /// its waiters drive). If that task is lost with its runtime before it ends and `restart`
    /// is set, the waiter that finds out starts one more on its own runtime.
    pub(super) fn start_refresh_inner(&self, state: &mut RefreshState, restart: bool) -> SharedRefresh {
        if let Some((_, shared)) = &state.in_flight {
            return shared.clone();
        }
        self.inner.no_refresh_before_ms.store(u64::MAX, Ordering::Release);
        let id = state.next_refresh_id;
        state.next_refresh_id = id.wrapping_add(1);
        // Created outside the task's future, so that it is dropped (and forgets this refresh)
        // even if the task is dropped before it first runs.
        let guard = InFlight {
            cache: self.clone(),
            id,
            ended: false,
        };
        let task = guard.run();
        let future: Pin<Box<dyn Future<Output = RefreshResult> + Send>> =
            match tokio::runtime::Handle::try_current() {
                // Its own task: the refresh outlives any request that waits on it.
                Ok(runtime) => {
                    let handle = runtime.spawn(task);
                    let cache = self.clone();
                    Box::pin(async move {
                        match handle.await {
                            Ok(result) => result,
                            Err(err) if err.is_panic() => {
                                Err(Error::source_error("the token refresh task panicked"))
                            }
                            // Cancelled: its runtime shut down. The guard forgot it; start
                            // again here, once.
                            Err(_) if restart => {
                                tracing::debug!(
                                    "the token refresh task was lost with its runtime; starting a new one"
                                );
                                let shared = {
                                    let mut state = cache.inner.lock_state();
                                    cache.start_refresh_inner(&mut state, false)
                                };
                                shared.await
                            }
                            Err(_) => Err(Error::source_error(
                                "the token refresh task was cancelled: its tokio runtime shut down",
                            )),
                        }
                    })
                }
                // Outside a tokio runtime the waiters drive the refresh themselves.
                Err(_) => Box::pin(task),
            };
        let shared = future.shared();
        state.in_flight = Some((id, shared.clone()));
        shared
    }

    /// Records the outcome of a refresh with the state locked, and returns it.
    pub(super) fn finish_refresh(
        &self,
        state: &mut RefreshState,
        result: Result<Token, Error>,
        started: Instant,
        started_at: Reading,
    ) -> RefreshResult {
        let inner = &*self.inner;
        let arrival = Reading::take(&*inner.clock);
        match result.and_then(|token| self.entry_for(token, arrival, Some(started_at))) {
            Ok(entry) => {
                let entry = Arc::new(entry);
                inner.current.store(Some(entry.clone()));
                state.failures = 0;
                state.retry_at = None;
                state.last_error = None;
                tracing::info!(
                    duration_ms = started.elapsed().as_millis() as u64,
                    expires_at = ?entry.token.expires_at(),
                    valid_until = ?entry.deadlines.map(|d| d.wall_valid_until),
                    stale_at = ?entry.deadlines.map(|d| d.wall_stale_at),
                    "token refreshed"
                );
                Ok(entry)
            }
            Err(err) => Err(self.record_failure(state, err, started)),
        }
    }
}
