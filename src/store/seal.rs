//! [`EncryptionKey`]: tokens sealed at rest with ChaCha20-Poly1305 (ring).

use std::fmt;

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use zeroize::Zeroizing;

use crate::error::Error;

/// What a sealed value starts with (then a format version).
const MAGIC: &[u8] = b"TO2S\x01";

/// A 256-bit key that seals every value a [`SharedStore`](super::SharedStore) writes
/// (ChaCha20-Poly1305 with a random 96-bit nonce per value, the store key as associated data),
/// so that a dump of Redis or a copied token file holds no bearer token. Feature `encryption`.
///
/// Keep it where your other secrets are (an environment variable from a secret manager, the
/// OS keychain), never beside the store. Every replica sharing a store needs the same key; a
/// value that does not open with it (another key, tampered with, written in the clear) counts
/// as absent, and the next token written replaces it. To change keys, deploy the new one: the
/// first refresh with it writes a value it can open.
///
/// `Debug` shows no key material.
///
/// ```
/// use tower_oauth2::store::{EncryptionKey, MemoryStore, SharedStore};
///
/// let key = EncryptionKey::generate()?;
/// let text = key.to_base64(); // keep this in your secret store
/// let key = EncryptionKey::from_base64(&text)?;
/// assert_eq!(format!("{key:?}"), "EncryptionKey([redacted])");
/// let shared = SharedStore::new(MemoryStore::new()).encryption(key);
/// # let _ = shared;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl EncryptionKey {
    /// The key made of these 32 bytes.
    ///
    /// ```
    /// let key = tower_oauth2::store::EncryptionKey::from_bytes([7; 32]);
    /// # let _ = key;
    /// ```
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EncryptionKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The key in base64 (standard or URL-safe alphabet, padded or not) of 32 bytes.
    ///
    /// ```
    /// use tower_oauth2::store::EncryptionKey;
    ///
    /// assert!(EncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").is_ok());
    /// let err = EncryptionKey::from_base64("c2hvcnQ=").unwrap_err();
    /// assert!(err.to_string().contains("32 bytes"));
    /// ```
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let text = Zeroizing::new(
            text.trim()
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_"),
        );
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text.as_bytes())
                .map_err(|_| Error::Config("the encryption key is not base64".to_owned()))?,
        );
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::Config(format!(
                "the encryption key has {} bytes; it needs 32 bytes",
                bytes.len()
            ))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A new random key, from the operating system's CSPRNG.
    ///
    /// ```
    /// use tower_oauth2::store::EncryptionKey;
    ///
    /// let (a, b) = (EncryptionKey::generate()?, EncryptionKey::generate()?);
    /// assert_ne!(a.to_base64(), b.to_base64());
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut())
            .map_err(|err| Error::source_error(format!("the OS random source failed: {err}")))?;
        Ok(EncryptionKey { bytes })
    }

    /// The key in URL-safe base64 without padding, to keep it in a secret store.
    ///
    /// ```
    /// use tower_oauth2::store::EncryptionKey;
    ///
    /// assert_eq!(EncryptionKey::from_bytes([0; 32]).to_base64().len(), 43);
    /// ```
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.bytes.as_slice())
    }

    fn key(&self) -> Option<LessSafeKey> {
        // 32 bytes is ChaCha20-Poly1305's key length: never `None`.
        UnboundKey::new(&CHACHA20_POLY1305, self.bytes.as_slice())
            .ok()
            .map(LessSafeKey::new)
    }

    /// `plain` sealed, bound to `aad`; `None` if the random source failed.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let mut sealed = Zeroizing::new(Vec::with_capacity(MAGIC.len() + NONCE_LEN + plain.len() + 16));
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plain.to_vec());
        self.key()?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut *body)
            .ok()?;
        sealed.extend_from_slice(&body);
        Some(sealed)
    }

    /// What `sealed` holds if it was sealed with this key and `aad`, untouched.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let rest = sealed.strip_prefix(MAGIC)?;
        if rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain_len = self
            .key()?
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?
            .len();
        body.truncate(plain_len);
        Some(body)
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_and_the_store_key() {
        let key = EncryptionKey::from_bytes([1; 32]);
        let sealed = key.seal(b"k1", b"{\"secret\":1}").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(b"k1", &sealed).unwrap().as_slice(), b"{\"secret\":1}");
        assert!(key.open(b"k2", &sealed).is_none());
        assert!(EncryptionKey::from_bytes([2; 32]).open(b"k1", &sealed).is_none());
        let mut tampered = sealed.to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(b"k1", &tampered).is_none());
        assert!(key.open(b"k1", &sealed[..MAGIC.len() + 5]).is_none());
        assert!(key.open(b"k1", b"{\"v\":1}").is_none());
        // Two seals of one value differ (random nonces).
        assert_ne!(key.seal(b"k1", b"x").unwrap(), key.seal(b"k1", b"x").unwrap());
    }
}
