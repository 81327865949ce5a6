//! The authorization server's JSON Web Key Set (RFC 7517 §5, `jwks_uri` of RFC 8414 §2 and
//! OpenID Connect Discovery §3): fetched when an ID token is first verified, kept by the
//! [`OAuth2Client`](crate::OAuth2Client) (its clones share it), and fetched again when a token
//! names a key the set does not have (the server rotated its keys), at most once per
//! [`REFETCH_INTERVAL`] by the client's clock, and when it is [`MAX_AGE`] old (so that a key
//! the server removed stops being trusted). Concurrent verifications share one fetch.
//!
//! The fetch is a `GET` through the client's [`HttpClient`] (its timeout and body size limit);
//! an error status, a body that is not a JSON object with a `keys` array, and an oversize body
//! are the usual [`Error::HttpStatus`] / [`Error::OAuth2`], [`Error::MalformedResponse`] and
//! [`Error::BodyTooLarge`]. Keys this crate cannot use for verifying signatures (an unknown
//! `kty` or `alg`, an encryption key, a symmetric key, a key whose parameters do not decode)
//! are left out of the set, not fatal.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::ACCEPT;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::DecodingKey;
use serde_json::Value;
use url::Url;

use crate::clock::Clock;
use crate::error::Error;
use crate::token::{json_object, status_error};
use crate::transport::{server_request, HttpClient};

/// The shortest time between two fetches of the key set caused by an unknown `kid`, on the
/// client's monotonic clock: a stream of tokens naming keys the server never had cannot make
/// the client hammer the server.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// How long a fetched key set is used before it is fetched again on the next verification:
/// a key the server removed (retired, or compromised) stops being trusted within this time,
/// even when no token names a new key. If that fetch fails, the set kept is used and the fetch
/// is tried again [`REFETCH_INTERVAL`] later.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(3600);

/// The server's key set, as last fetched, with single-flight fetches.
#[derive(Debug, Default)]
pub(crate) struct JwksCache {
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The set last fetched; `None` before the first successful fetch.
    keys: Option<Arc<JwkSet>>,
    /// When the last fetch started (successful or not), by the clock's monotonic time.
    last_fetch: Option<Duration>,
}

impl JwksCache {
    /// The key set: the one kept, or fetched now if there is none yet (a failed first fetch is
    /// tried again at the next call).
    pub(crate) async fn keys(
        &self,
        http: &HttpClient,
        clock: &dyn Clock,
        url: &Url,
    ) -> Result<Arc<JwkSet>, Error> {
        let mut state = self.state.lock().await;
        let now = clock.monotonic();
        let stale = state
            .last_fetch
            .is_none_or(|at| now.saturating_sub(at) >= MAX_AGE);
        match &state.keys {
            Some(keys) if !stale => return Ok(keys.clone()),
            Some(kept) => {
                let kept = kept.clone();
                state.last_fetch = Some(now);
                return Ok(match fetch(http, clock, url).await {
                    Ok(keys) => {
                        let keys = Arc::new(keys);
                        state.keys = Some(keys.clone());
                        keys
                    }
                    Err(err) => {
                        tracing::warn!(
                            %url,
                            error = %err.report(),
                            "fetching the key set again failed; the keys fetched before are used"
                        );
                        // Try again after REFETCH_INTERVAL, not after a whole MAX_AGE.
                        state.last_fetch = Some((now + REFETCH_INTERVAL).saturating_sub(MAX_AGE));
                        kept
                    }
                });
            }
            None => {}
        }
        state.last_fetch = Some(now);
        let keys = Arc::new(fetch(http, clock, url).await?);
        state.keys = Some(keys.clone());
        Ok(keys)
    }

    /// `seen` lacked the key a token asked for: a newer set if another verification fetched
    /// one meanwhile, a set fetched now if the last fetch is at least [`REFETCH_INTERVAL`]
    /// old, `None` otherwise (the key is unknown and asking again so soon is not allowed).
    pub(crate) async fn refresh(
        &self,
        http: &HttpClient,
        clock: &dyn Clock,
        url: &Url,
        seen: &Arc<JwkSet>,
    ) -> Result<Option<Arc<JwkSet>>, Error> {
        let mut state = self.state.lock().await;
        if let Some(keys) = &state.keys {
            if !Arc::ptr_eq(keys, seen) {
                return Ok(Some(keys.clone()));
            }
        }
        let now = clock.monotonic();
        if state
            .last_fetch
            .is_some_and(|at| now.saturating_sub(at) < REFETCH_INTERVAL)
        {
            tracing::debug!("unknown signing key, but the key set was fetched less than 60 s ago");
            return Ok(None);
        }
        state.last_fetch = Some(now);
        let keys = Arc::new(fetch(http, clock, url).await?);
        state.keys = Some(keys.clone());
        Ok(Some(keys))
    }
}

/// Fetches the key set at `url`, keeping the keys that can verify signatures.
async fn fetch(http: &HttpClient, clock: &dyn Clock, url: &Url) -> Result<JwkSet, Error> {
    let request = server_request(
        http::Method::GET,
        url,
        &[(
            ACCEPT,
            http::HeaderValue::from_static("application/jwk-set+json, application/json"),
        )],
        Bytes::new(),
    )?;
    let response = http.send(request, clock).await?;
    if !response.status.is_success() {
        let err = status_error(&response);
        tracing::debug!(%url, error = %err.report(), "fetching the key set failed");
        return Err(err);
    }
    let mut document = json_object(&response.body, response.status, "the JSON Web Key Set")?;
    let keys = match document.remove("keys") {
        Some(Value::Array(keys)) => keys,
        _ => {
            return Err(Error::MalformedResponse {
                status: response.status,
                reason: "the JSON Web Key Set has no `keys` array (RFC 7517 §5)".to_owned(),
            })
        }
    };
    let offered = keys.len();
    let keys: Vec<Jwk> = keys.into_iter().filter_map(verification_key).collect();
    tracing::debug!(%url, offered, usable = keys.len(), "key set fetched");
    Ok(JwkSet { keys })
}

/// The key, if it can verify signatures: a public RSA, EC or OKP key that is not for
/// encryption only and whose parameters decode.
fn verification_key(key: Value) -> Option<Jwk> {
    // Unknown `kty`, `crv` or `alg` values fail here.
    let jwk: Jwk = serde_json::from_value(key).ok()?;
    let common = &jwk.common;
    if matches!(
        common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    if common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return None;
    }
    if matches!(
        common.key_algorithm,
        Some(KeyAlgorithm::RSA1_5 | KeyAlgorithm::RSA_OAEP | KeyAlgorithm::RSA_OAEP_256)
    ) {
        return None;
    }
    // A symmetric key has no place in a public key set: HMAC ID tokens are verified with the
    // client secret (OIDC Core §10.1), never with a key the server publishes.
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None;
    }
    DecodingKey::from_jwk(&jwk).ok()?;
    Some(jwk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(key: Value) -> Option<Jwk> {
        verification_key(key)
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn usable_keys_are_kept_and_the_others_skipped() {
        let rsa = serde_json::json!({"kty":"RSA","kid":"r1","n":N,"e":"AQAB"});
        assert!(parse(rsa.clone()).is_some());
        let mut sig = rsa.clone();
        sig["use"] = "sig".into();
        assert!(parse(sig).is_some());
        let mut enc = rsa.clone();
        enc["use"] = "enc".into();
        assert!(parse(enc).is_none());
        let mut oaep = rsa.clone();
        oaep["alg"] = "RSA-OAEP".into();
        assert!(parse(oaep).is_none());
        let mut unknown_alg = rsa.clone();
        unknown_alg["alg"] = "RSA-OAEP-384".into();
        assert!(parse(unknown_alg).is_none());
        let mut sign_only = rsa.clone();
        sign_only["key_ops"] = serde_json::json!(["sign"]);
        assert!(parse(sign_only).is_none());
        assert!(parse(serde_json::json!({"kty":"oct","k":"c2VjcmV0"})).is_none());
        assert!(parse(serde_json::json!({"kty":"PQC","x":"abc"})).is_none());
        assert!(parse(serde_json::json!({"kty":"RSA","n":"!!","e":"AQAB"})).is_none());
        assert!(parse(serde_json::json!("not an object")).is_none());
    }
}
