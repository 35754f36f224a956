//! Secrets (pre-shared keys, private keys, BGP keys, access-key secrets) that never show in `Debug` output or
//! logs, and are sealed whenever they are serialized into the store.
//!
//! Sealing: XChaCha20-Poly1305 under a 32-byte master key, a random 192-bit nonce per value (safe to draw at
//! random), stored as `ovs1:<key id>:<base64(nonce ‖ ciphertext)>`. The key id (the first 4 bytes of the key's
//! SHA-256) names which key sealed a value, so a [`Keyring`] holding the new key and the previous ones opens
//! everything during a rotation while sealing only with the new one.
//!
//! Serialization seals only while a keyring is active on the current thread ([`with_keyring`]): the store
//! activates it around every transaction, so documents and backups hold sealed values, while replies, peer
//! configurations and the data plane get the clear value through [`Secret::expose`].

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

const PREFIX: &str = "ovs1:";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the few places that must hand it on (VICI, a rendered peer configuration, a response
    /// the vendor's API documents as returning it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A master key for sealing secrets.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let id = hex_prefix(&Sha256::digest(bytes)[..4]);
        MasterKey { id, cipher: XChaCha20Poly1305::new(bytes.into()) }
    }

    /// A key given as base64 of 32 bytes (`OPENVGW_MASTER_KEY`, a key file).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let raw = B64.decode(text.trim()).map_err(|_| "a master key is the base64 of 32 bytes".to_string())?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| "a master key is the base64 of 32 bytes".to_string())?;
        Ok(MasterKey::from_bytes(&bytes))
    }

    /// A fresh random key, as base64 (for a deployment that generates its own).
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
        B64.encode(bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The key that seals, and the previous keys that still open values sealed before a rotation.
#[derive(Clone)]
pub struct Keyring {
    primary: MasterKey,
    previous: Vec<MasterKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prev: Vec<&str> = self.previous.iter().map(MasterKey::id).collect();
        write!(f, "Keyring(primary {}, previous {prev:?})", self.primary.id)
    }
}

impl Keyring {
    pub fn new(primary: MasterKey, previous: Vec<MasterKey>) -> Self {
        Keyring { primary, previous }
    }

    pub fn primary_id(&self) -> &str {
        self.primary.id()
    }

    pub fn seal(&self, clear: &str) -> Result<String, String> {
        let mut nonce = [0u8; 24];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut nonce[..]);
        let ct = self
            .primary
            .cipher
            .encrypt(XNonce::from_slice(&nonce), clear.as_bytes())
            .map_err(|_| "a secret could not be sealed".to_string())?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}:{}", self.primary.id, B64.encode(blob)))
    }

    /// The clear value of a sealed one; a value that is not sealed (written before sealing existed) is returned as
    /// it is, so that a rewrite seals it.
    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (kid, b64) = rest.split_once(':').ok_or("a sealed secret is malformed")?;
        let key = std::iter::once(&self.primary)
            .chain(&self.previous)
            .find(|k| k.id == kid)
            .ok_or_else(|| format!("a secret is sealed with master key {kid}, which is not configured"))?;
        let blob = B64.decode(b64).map_err(|_| "a sealed secret is malformed")?;
        if blob.len() < 24 {
            return Err("a sealed secret is malformed".into());
        }
        let (nonce, ct) = blob.split_at(24);
        let clear = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| format!("a secret sealed with master key {kid} does not open (corrupt or tampered)"))?;
        String::from_utf8(clear).map_err(|_| "a sealed secret is not text".into())
    }

    /// Whether `stored` is sealed with the primary key (a rotation rewrites the others).
    pub fn is_current(&self, stored: &str) -> bool {
        stored.strip_prefix(PREFIX).and_then(|r| r.split_once(':')).is_some_and(|(kid, _)| kid == self.primary.id)
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Arc<Keyring>>> = const { RefCell::new(None) };
}

/// Puts `keyring` in place on this thread until the guard drops (also on a panic).
fn activate(keyring: Option<Arc<Keyring>>) -> impl Drop {
    struct Restore(Option<Arc<Keyring>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            ACTIVE.with(|a| *a.borrow_mut() = prev);
        }
    }
    Restore(ACTIVE.with(|a| std::mem::replace(&mut *a.borrow_mut(), keyring)))
}

/// Runs `f` with `keyring` sealing every [`Secret`] serialized and opening every one deserialized on this thread.
pub fn with_keyring<T>(keyring: &Arc<Keyring>, f: impl FnOnce() -> T) -> T {
    let _restore = activate(Some(keyring.clone()));
    f()
}

/// Runs `f` with no keyring active: for serializing a value to compare it, not to store it (a sealed value is
/// different every time).
pub fn in_clear<T>(f: impl FnOnce() -> T) -> T {
    let _restore = activate(None);
    f()
}

fn active() -> Option<Arc<Keyring>> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// Seals a secret kept outside a document (a column of its own) with the active keyring; clear without one.
pub fn seal_in_scope(clear: &str) -> Result<String, String> {
    match active() {
        Some(k) if !clear.is_empty() => k.seal(clear),
        _ => Ok(clear.to_string()),
    }
}

/// Opens what [`seal_in_scope`] stored; a sealed value needs the active keyring.
pub fn open_in_scope(stored: &str) -> Result<String, String> {
    if !stored.starts_with(PREFIX) {
        return Ok(stored.to_string());
    }
    active().ok_or_else(|| "a sealed secret needs the master key".to_string())?.open(stored)
}

/// Whether `stored` is sealed with the active keyring's primary key (false without a keyring).
pub fn current_in_scope(stored: &str) -> bool {
    active().is_some_and(|k| k.is_current(stored))
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match active() {
            Some(k) if !self.0.is_empty() => s.serialize_str(&k.seal(&self.0).map_err(serde::ser::Error::custom)?),
            _ => s.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = String::deserialize(d)?;
        if !stored.starts_with(PREFIX) {
            return Ok(Secret(stored));
        }
        let k = active().ok_or_else(|| serde::de::Error::custom("a sealed secret needs the master key"))?;
        k.open(&stored).map(Secret).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(primary: u8, previous: &[u8]) -> Arc<Keyring> {
        Arc::new(Keyring::new(
            MasterKey::from_bytes(&[primary; 32]),
            previous.iter().map(|b| MasterKey::from_bytes(&[*b; 32])).collect(),
        ))
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn sealed_only_inside_a_keyring_scope() {
        let s = Secret::new("hunter2");
        assert_eq!(serde_json::to_string(&s).ok(), Some("\"hunter2\"".to_string()));
        let k = ring(1, &[]);
        let doc = with_keyring(&k, || serde_json::to_string(&s)).expect("serialize");
        assert!(doc.starts_with("\"ovs1:") && !doc.contains("hunter2"), "{doc}");
        // Two seals of one value differ (random nonce).
        let again = with_keyring(&k, || serde_json::to_string(&s)).expect("serialize");
        assert_ne!(doc, again);
        let back: Secret = with_keyring(&k, || serde_json::from_str(&doc)).expect("open");
        assert_eq!(back.expose(), "hunter2");
        // Outside the scope a sealed value does not open.
        assert!(serde_json::from_str::<Secret>(&doc).is_err());
        // Serializing to compare is done in clear, keyring or not.
        let a = with_keyring(&k, || in_clear(|| serde_json::to_string(&s))).expect("clear");
        assert_eq!(a, "\"hunter2\"");
        // Clear values (written before sealing) still read, and empty ones stay empty.
        let plain: Secret = with_keyring(&k, || serde_json::from_str("\"old\"")).expect("plain");
        assert_eq!(plain.expose(), "old");
        assert_eq!(with_keyring(&k, || serde_json::to_string(&Secret::default())).ok(), Some("\"\"".into()));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = ring(1, &[]);
        let sealed = old.seal("psk").expect("seal");
        let rotated = ring(2, &[1]);
        assert_eq!(rotated.open(&sealed).ok().as_deref(), Some("psk"));
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("psk").expect("seal")));
        // Without the old key the value is refused, naming the key.
        let e = ring(2, &[]).open(&sealed).expect_err("unknown key");
        assert!(e.contains(old.primary_id()), "{e}");
    }

    #[test]
    fn tampering_is_detected() {
        let k = ring(3, &[]);
        let sealed = k.seal("private key").expect("seal");
        let (head, b64) = sealed.rsplit_once(':').expect("shape");
        let mut blob = B64.decode(b64).expect("b64");
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(k.open(&format!("{head}:{}", B64.encode(blob))).is_err());
        assert!(MasterKey::from_base64("short").is_err());
        assert!(MasterKey::from_base64(&MasterKey::generate_base64()).is_ok());
    }
}
