//! After a failed refresh: when to try again (exponential, jittered, capped by the current
//! token's validity and the server's `Retry-After`), and what a lost grant does.

use super::*;

impl TokenCache {
    pub(super) fn record_failure(&self, state: &mut RefreshState, err: Error, started: Instant) -> Error {
        let config = &self.inner.config;
        let now = self.inner.clock.monotonic();
        let duration_ms = started.elapsed().as_millis() as u64;
        state.last_error = Some(err.clone());
        if err.is_grant_lost() {
            // The server revoked the grant, and with it the token we hold. Requests fail at
            // once until the source has new credentials; it answers from memory until then,
            // so no backoff is needed to spare the server.
            // Nor is its copy in the store (or any older token) taken again.
            self.drop_current();
            state.failures = 0;
            state.retry_at = None;
            tracing::error!(
                error = %err.report(),
                duration_ms,
                "the grant was lost: the cached token is dropped and requests fail until new credentials are supplied"
            );
            return err;
        }
        state.failures = state.failures.saturating_add(1);
        let valid_until = self.current_valid_until();
        let transient = err.is_transient();
        let ceiling = if transient {
            let exponent = state.failures.saturating_sub(1).min(20);
            let ceiling = config
                .min_backoff
                .saturating_mul(1 << exponent)
                .min(config.max_backoff);
            if valid_until.is_none() {
                ceiling.min(config.backoff_without_token.max(config.min_backoff))
            } else {
                ceiling
            }
        } else {
            config.max_backoff
        };
        // Between half the ceiling and the ceiling, never below the minimum.
        let backoff = ceiling
            .mul_f64(0.5 + 0.5 * fastrand::f64())
            .max(config.min_backoff);
        let mut retry_at = now.saturating_add(backoff);
        if let Some(Some(valid_until)) = valid_until {
            if config.lost_response == LostResponseRetry::NearExpiry
                && matches!(err, Error::Transport(_) | Error::Timeout(_))
            {
                let margin = config.min_backoff.min(valid_until.saturating_sub(now) / 2);
                retry_at = retry_at.max(valid_until.saturating_sub(margin));
            }
            // A server that is back before the token expires must be asked before then.
            retry_at = retry_at.min(valid_until);
        }
        if let Some(retry_after) = err.retry_after() {
            retry_at = retry_at.max(now.saturating_add(retry_after.min(config.max_backoff)));
        }
        state.retry_at = Some(retry_at);
        let retry_in_ms = millis(retry_at.saturating_sub(now));
        let keeping_valid_token = valid_until.is_some();
        tracing::warn!(
            error = %err.report(),
            transient,
            failures = state.failures,
            retry_in_ms,
            duration_ms,
            keeping_valid_token,
            "token refresh failed{}",
            if transient { "; will retry" } else { " with a permanent error; backing off to the maximum" }
        );
        err
    }
}
