//! The bytes a store keeps for a token: JSON with millisecond times (a 2 s token loses nothing
//! to rounding), sealed when the cache has an encryption key.
//!
//! `{"v":1,"access_token":"…","issued_at_ms":…,"expires_at_ms":…,"refresh_token":"…","scope":"…"}`
//! where every field but `v` and `access_token` may be absent. A sealed value is
//! `"TO2S" 0x01 nonce(12) ciphertext tag(16)`, with the store key as associated data, so a
//! value moved to another key does not open.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::SharedStore;
use crate::token::Token;

const VERSION: u64 = 1;

/// The bytes to write for `token` under `key` (the full key), or `None` if sealing failed
/// (the OS's random source failed: the token is not written).
pub(crate) fn encode(shared: &SharedStore, key: &str, token: &Token) -> Option<Zeroizing<Vec<u8>>> {
    let mut object = Map::new();
    object.insert("v".into(), VERSION.into());
    object.insert("access_token".into(), token.access_token().expose().into());
    if let Some(at) = token.issued_at() {
        object.insert("issued_at_ms".into(), unix_millis(at).into());
    }
    if let Some(at) = token.expires_at() {
        object.insert("expires_at_ms".into(), unix_millis(at).into());
    }
    if let Some(refresh_token) = token.refresh_token() {
        object.insert("refresh_token".into(), refresh_token.expose().into());
    }
    if let Some(scope) = token.scope() {
        object.insert("scope".into(), scope.into());
    }
    let value = Value::Object(object);
    // Sized once, so that no copy of the secrets is left behind by a reallocation.
    let room = 256
        + 2 * token.access_token().expose().len()
        + 2 * token.refresh_token().map_or(0, |rt| rt.expose().len())
        + token.scope().map_or(0, str::len);
    let mut json = Zeroizing::new(Vec::with_capacity(room));
    if serde_json::to_writer(&mut *json, &value).is_err() {
        json.clear();
    }
    wipe(value);
    seal(shared, key, json)
}

/// The token in `bytes` read from `key`, `None` if they are not a value this cache can read
/// (another format, sealed with another key or not sealed when they should be, tampered with).
pub(crate) fn decode(shared: &SharedStore, key: &str, bytes: Vec<u8>) -> Option<Token> {
    let json = open(shared, key, Zeroizing::new(bytes))?;
    let value: Value = serde_json::from_slice(&json).ok()?;
    let token = token_from(&value);
    wipe(value);
    token
}

fn token_from(value: &Value) -> Option<Token> {
    let object = value.as_object()?;
    if object.get("v")?.as_u64()? != VERSION {
        return None;
    }
    let access_token = object.get("access_token")?.as_str()?;
    // Only what can go in an `Authorization` header: a value that cannot would fail every
    // refresh that reads it.
    if access_token.is_empty() || http::HeaderValue::from_str(access_token).is_err() {
        return None;
    }
    let time = |name: &str| -> Option<Option<SystemTime>> {
        match object.get(name) {
            None => Some(None),
            Some(value) => Some(Some(
                UNIX_EPOCH.checked_add(Duration::from_millis(value.as_u64()?))?,
            )),
        }
    };
    let text = |name: &str| -> Option<Option<&str>> {
        match object.get(name) {
            None => Some(None),
            Some(value) => Some(Some(value.as_str()?)),
        }
    };
    let mut token = Token::bearer(access_token);
    if let Some(at) = time("issued_at_ms")? {
        token = token.with_issued_at(at);
    }
    if let Some(at) = time("expires_at_ms")? {
        token = token.with_expires_at(at);
    }
    if let Some(refresh_token) = text("refresh_token")? {
        token = token.with_refresh_token(refresh_token);
    }
    if let Some(scope) = text("scope")? {
        token = token.with_scope(scope);
    }
    Some(token)
}

/// Wipes the secrets a JSON value holds before it is dropped.
fn wipe(value: Value) {
    if let Value::Object(object) = value {
        for (_, value) in object {
            if let Value::String(text) = value {
                drop(Zeroizing::new(text));
            }
        }
    }
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// `json` sealed with the store's encryption key, if it has one.
fn seal(shared: &SharedStore, key: &str, json: Zeroizing<Vec<u8>>) -> Option<Zeroizing<Vec<u8>>> {
    #[cfg(feature = "encryption")]
    if let Some(encryption) = &shared.encryption {
        return encryption.seal(key.as_bytes(), &json);
    }
    #[cfg(not(feature = "encryption"))]
    let _ = (shared, key);
    Some(json)
}

/// What `bytes` hold: opened with the store's encryption key if it has one (never a plain
/// value then: one written in the clear by a misconfigured replica, or planted, is not
/// trusted), else a plain value (a sealed value without the key to open it is unreadable).
fn open(shared: &SharedStore, key: &str, bytes: Zeroizing<Vec<u8>>) -> Option<Zeroizing<Vec<u8>>> {
    #[cfg(feature = "encryption")]
    if let Some(encryption) = &shared.encryption {
        return encryption.open(key.as_bytes(), &bytes);
    }
    #[cfg(not(feature = "encryption"))]
    let _ = (shared, key);
    (bytes.first() == Some(&b'{')).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn shared() -> SharedStore {
        SharedStore::new(MemoryStore::new())
    }

    #[test]
    fn round_trip_keeps_milliseconds_and_the_refresh_token() {
        let issued = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let token = Token::bearer("at")
            .with_issued_at(issued)
            .with_expires_at(issued + Duration::from_millis(2_000))
            .with_refresh_token("rt")
            .with_scope("api");
        let bytes = encode(&shared(), "k", &token).unwrap();
        let back = decode(&shared(), "k", bytes.to_vec()).unwrap();
        assert_eq!(back.access_token().expose(), "at");
        assert_eq!(back.issued_at(), Some(issued));
        assert_eq!(back.lifetime(), Some(Duration::from_millis(2_000)));
        assert_eq!(back.refresh_token().unwrap().expose(), "rt");
        assert_eq!(back.scope(), Some("api"));
    }

    #[test]
    fn garbage_is_absent() {
        for bytes in [
            &b""[..],
            b"null",
            b"{}",
            b"{\"v\":2,\"access_token\":\"at\"}",
            b"{\"v\":1,\"access_token\":\"\"}",
            b"{\"v\":1,\"access_token\":7}",
            b"{\"v\":1,\"access_token\":\"a\\nb\"}",
            b"{\"v\":1,\"access_token\":\"at\",\"expires_at_ms\":-1}",
            b"{\"v\":1,\"access_token\":\"at\",\"scope\":[]}",
            b"TO2S\x01short",
            b"\xff\xfe",
        ] {
            assert!(decode(&shared(), "k", bytes.to_vec()).is_none(), "{bytes:?}");
        }
    }
}
