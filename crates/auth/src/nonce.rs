//! Replay protection for Alibaba requests: a nonce may be used once per access key.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::{AuthError, DEFAULT_FRESHNESS_WINDOW};

type Key = (String, String);

/// Remembers `(access_key_id, nonce)` pairs while a request carrying them could still pass the
/// freshness check. Thread-safe; memory stays bounded because expired entries are pruned on every call.
///
/// Retention is twice the freshness window: a request stamped 15 minutes ahead of the server clock
/// is fresh until 30 minutes after it first arrives, so a shorter memory would let it be replayed.
/// Call [`check_and_insert`](Self::check_and_insert) only after the signature verified, so that
/// unauthenticated traffic cannot fill the cache.
#[derive(Debug)]
pub struct NonceCache {
    retention: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Pair -> time at which it may be forgotten.
    expiry: HashMap<Key, OffsetDateTime>,
    /// Insertion order, for pruning without scanning the map.
    queue: VecDeque<(OffsetDateTime, Key)>,
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::new()
    }
}

impl NonceCache {
    pub fn new() -> Self {
        Self::with_retention(DEFAULT_FRESHNESS_WINDOW * 2)
    }

    /// A cache that forgets pairs `retention` after their first use.
    pub fn with_retention(retention: Duration) -> Self {
        Self { retention, inner: Mutex::new(Inner::default()) }
    }

    /// `Err(SignatureNonceUsed)` if the pair was seen within the retention period; otherwise records it.
    pub fn check_and_insert(&self, access_key_id: &str, nonce: &str, now: OffsetDateTime) -> Result<(), AuthError> {
        // A panic elsewhere cannot leave the map half-updated, so a poisoned lock is still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.prune(now);
        let key = (access_key_id.to_owned(), nonce.to_owned());
        if inner.expiry.get(&key).is_some_and(|exp| *exp > now) {
            return Err(AuthError::SignatureNonceUsed);
        }
        let expiry = now + self.retention;
        inner.expiry.insert(key.clone(), expiry);
        inner.queue.push_back((expiry, key));
        Ok(())
    }

    /// Number of remembered pairs (expired ones may linger until the next call).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).expiry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn prune(&mut self, now: OffsetDateTime) {
        while let Some((exp, _)) = self.queue.front() {
            if *exp > now {
                break;
            }
            let Some((exp, key)) = self.queue.pop_front() else {
                break;
            };
            // The pair may have been re-recorded later with a newer expiry; keep that one.
            if self.expiry.get(&key) == Some(&exp) {
                self.expiry.remove(&key);
            }
        }
    }
}
