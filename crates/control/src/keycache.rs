//! Access keys as the store had them less than [`KEY_CACHE_TTL`] ago: every signed request needs its key, and a
//! store read per request was a good part of the cost of a cheap call. Unknown keys are remembered too (hostile
//! clients send many), but only while the cache has room, so garbage cannot grow it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openvgw_core::model::AccessKey;
use openvgw_core::Result;

/// How stale a cached answer may be: the longest a key created, deleted or rotated elsewhere goes unnoticed.
pub const KEY_CACHE_TTL: Duration = Duration::from_millis(900);
/// Entries kept at most; when full, expired ones are dropped and unknown keys stop being remembered.
const CAPACITY: usize = 10_000;

/// An access key as the store had it, and whether its tenant was disabled then.
#[derive(Debug, Clone)]
pub struct KnownKey {
    pub key: AccessKey,
    pub tenant_disabled: bool,
}

#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<String, (Instant, Option<KnownKey>)>>,
}

impl KeyCache {
    pub(crate) fn get(&self, id: &str, load: impl FnOnce() -> Result<Option<KnownKey>>) -> Result<Option<KnownKey>> {
        let now = Instant::now();
        if let Ok(entries) = self.entries.lock() {
            if let Some((at, key)) = entries.get(id) {
                if now.duration_since(*at) < KEY_CACHE_TTL {
                    return Ok(key.clone());
                }
            }
        }
        let key = load()?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.retain(|_, (at, _)| now.duration_since(*at) < KEY_CACHE_TTL);
            }
            if entries.len() < CAPACITY || (key.is_some() && entries.len() < 2 * CAPACITY) {
                entries.insert(id.to_string(), (now, key.clone()));
            }
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvgw_core::Secret;

    fn key(id: &str) -> KnownKey {
        let key =
            AccessKey { id: id.into(), secret: Secret::new("s".to_string()), tenant_id: "tnt-1".into(), created_at: 0 };
        KnownKey { key, tenant_disabled: false }
    }

    #[test]
    fn answers_are_reused_until_they_expire() {
        let c = KeyCache::default();
        let loads = std::cell::Cell::new(0);
        let load = |k: Option<KnownKey>| {
            loads.set(loads.get() + 1);
            Ok(k)
        };
        assert!(c.get("ak-1", || load(Some(key("ak-1")))).expect("get").is_some());
        assert!(c.get("ak-1", || load(None)).expect("get").is_some(), "cached");
        assert!(c.get("ak-2", || load(None)).expect("get").is_none());
        assert!(c.get("ak-2", || load(Some(key("ak-2")))).expect("get").is_none(), "unknown is cached too");
        assert_eq!(loads.get(), 2);
        // Age the entries instead of sleeping.
        for (at, _) in c.entries.lock().expect("lock").values_mut() {
            *at -= KEY_CACHE_TTL;
        }
        assert!(c.get("ak-1", || load(None)).expect("get").is_none(), "a deleted key is noticed");
        assert!(c.get("ak-2", || load(Some(key("ak-2")))).expect("get").is_some(), "a created key is noticed");
    }

    #[test]
    fn unknown_keys_cannot_grow_it_without_bound() {
        let c = KeyCache::default();
        for i in 0..3 * CAPACITY {
            c.get(&format!("junk-{i}"), || Ok(None)).expect("get");
        }
        assert!(c.entries.lock().expect("lock").len() <= CAPACITY);
        c.get("ak-real", || Ok(Some(key("ak-real")))).expect("get");
        assert!(c.entries.lock().expect("lock").contains_key("ak-real"), "real keys are still cached");
    }
}
