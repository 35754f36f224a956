//! Answers of pure reads kept while the store is unchanged (the model is Kubernetes' API server, which serves lists
//! from memory while its watch cache is current).
//!
//! A listing's store read, document decoding and rendering are most of its cost, and a tenant's dashboard or
//! Terraform refresh asks for the same page again and again between changes. Each answer is kept with the store's
//! data version read *before* the store was (see `Store::data_version`): the text is at least as new as that
//! version, so while the version stands it is current. The first request after any commit (by this process or
//! another) finds the cache of the old version gone and reads again. Only answers that depend on nothing but stored
//! state and the request's parameters may be kept (no clock, no live data-plane state); the dialect decides which.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes of kept answers at most; past it nothing more is kept until the version changes.
const BUDGET_BYTES: usize = 32 << 20;
/// Answers kept at most (bounds the map's own memory when the answers are small).
const MAX_ENTRIES: usize = 16_384;

#[derive(Default)]
pub struct ReadCache {
    kept: Mutex<Kept>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Kept {
    version: i64,
    bytes: usize,
    answers: HashMap<String, Arc<str>>,
}

impl ReadCache {
    /// The answer kept under `key` at `version`, or `read()`'s, kept if it succeeds. `version` is the store's data
    /// version read before anything `read` reads (without one, a dialect reads and answers as if there were no
    /// cache). `key` must name everything the answer depends on: tenant, region, operation and parameters.
    pub fn get_or_read<E>(
        &self,
        version: i64,
        key: impl FnOnce() -> String,
        read: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<str>, E> {
        let key = key();
        if let Some(hit) = self.lookup(version, &key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let text: Arc<str> = Arc::from(read()?);
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        // Kept only under the newest version seen: a request that read an older version while another moved the
        // cache on must not put an older answer among newer ones.
        let size = text.len() + key.len();
        if kept.version == version
            && kept.bytes + size <= BUDGET_BYTES
            && kept.answers.len() < MAX_ENTRIES
            && !kept.answers.contains_key(&key)
        {
            kept.bytes += size;
            kept.answers.insert(key, text.clone());
        }
        Ok(text)
    }

    fn lookup(&self, version: i64, key: &str) -> Option<Arc<str>> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if version > kept.version {
            // The store changed: nothing kept is known to be current any more.
            *kept = Kept { version, ..Kept::default() };
            return None;
        }
        if version < kept.version {
            return None;
        }
        kept.answers.get(key).cloned()
    }

    /// A key of `parts` (tenant, region, operation, parameter names and values…), each with its length in front,
    /// so that no value can pose as a boundary between two others.
    pub fn key<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
        use std::fmt::Write;
        let mut key = String::with_capacity(128);
        for part in parts {
            let _ = write!(key, "{}:{part}", part.len());
        }
        key
    }

    /// Answers served from memory and answers read, since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn get(c: &ReadCache, version: i64, key: &str, text: &str) -> String {
        c.get_or_read(version, || key.to_string(), || Ok::<_, Infallible>(text.to_string()))
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn answers_live_as_long_as_their_version() {
        let c = ReadCache::default();
        assert_eq!(get(&c, 1, "a", "one"), "one");
        assert_eq!(get(&c, 1, "a", "two"), "one", "same version: kept");
        assert_eq!(get(&c, 1, "b", "bee"), "bee", "another key is another answer");
        assert_eq!(get(&c, 2, "a", "three"), "three", "a commit since: read again");
        assert_eq!(get(&c, 2, "a", "four"), "three");
        // A request that read the version before the last commit neither uses nor keeps anything.
        assert_eq!(get(&c, 1, "a", "old"), "old");
        assert_eq!(get(&c, 1, "c", "old"), "old");
        assert_eq!(get(&c, 2, "c", "new"), "new", "the older answer was not kept");
        assert_eq!(c.stats(), (2, 6));
    }

    #[test]
    fn keys_keep_their_parts_apart() {
        assert_eq!(ReadCache::key(["t", "a:b"]), "1:t3:a:b");
        assert_ne!(ReadCache::key(["a", "b\0c"]), ReadCache::key(["a", "b", "c"]));
        assert_ne!(ReadCache::key(["ab", "c"]), ReadCache::key(["a", "bc"]));
    }

    #[test]
    fn errors_are_not_kept_and_the_budget_holds() {
        let c = ReadCache::default();
        let failed: Result<Arc<str>, &str> = c.get_or_read(1, || "a".into(), || Err("busy"));
        assert!(failed.is_err());
        assert_eq!(get(&c, 1, "a", "ok"), "ok");
        let big = "x".repeat(BUDGET_BYTES / 2);
        assert_eq!(get(&c, 1, "big1", &big).len(), big.len());
        assert_eq!(get(&c, 1, "big2", &big).len(), big.len(), "over the budget: answered, not kept");
        assert_eq!(get(&c, 1, "big2", "again"), "again");
        assert_eq!(get(&c, 1, "big1", "again").len(), big.len(), "the first one was kept");
    }
}
