//! Decoded documents, kept by their text.
//!
//! Decoding a stored JSON document (and opening its sealed secrets) was the largest single cost of a listing.
//! Decoding is a pure function of the text for a given store (its keyring is fixed), so an entry is used only
//! when the row's text is byte-for-byte the text it was decoded from: a changed, deleted or rolled-back row can
//! never be answered from here, whichever process or transaction wrote it, and nothing has to be invalidated.
//! A hit costs a comparison and a clone instead of a parse.
//!
//! Bounded: per shard two generations of at most [`GENERATION`] entries; when the young one is full it becomes the
//! old one and the previous old one is dropped, and a hit in the old generation moves the entry back to the young.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;

const SHARDS: usize = 16;
/// Entries per generation and shard: at most 2 × 16 × 256 = 8,192 documents.
const GENERATION: usize = 256;

type Key = (TypeId, i64);

struct Entry {
    doc: Box<str>,
    value: Box<dyn Any + Send + Sync>,
}

#[derive(Default)]
struct Shard {
    young: HashMap<Key, Entry>,
    old: HashMap<Key, Entry>,
}

pub(crate) struct DocCache {
    shards: Vec<Mutex<Shard>>,
}

impl Default for DocCache {
    fn default() -> Self {
        DocCache { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl DocCache {
    /// `doc` (the row `seq`'s text) decoded as `T`, from the cache when it holds this very text.
    pub(crate) fn decode<T>(
        &self,
        seq: i64,
        doc: String,
        decode: impl FnOnce(&str) -> crate::Result<T>,
    ) -> crate::Result<T>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let key = (TypeId::of::<T>(), seq);
        let shard = &self.shards[seq.unsigned_abs() as usize % SHARDS];
        // A poisoned shard only means another thread panicked mid-update: decode without the cache.
        if let Ok(mut s) = shard.lock() {
            if let Some(v) = s.young.get(&key).filter(|e| *e.doc == *doc).and_then(|e| e.value.downcast_ref::<T>()) {
                return Ok(v.clone());
            }
            if let Some(e) = s.old.remove(&key) {
                if *e.doc == *doc {
                    if let Some(v) = e.value.downcast_ref::<T>().cloned() {
                        s.insert(key, e);
                        return Ok(v);
                    }
                }
            }
        }
        let value = decode(&doc)?;
        if let Ok(mut s) = shard.lock() {
            s.insert(key, Entry { doc: doc.into_boxed_str(), value: Box::new(value.clone()) });
        }
        Ok(value)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().filter_map(|s| s.lock().ok()).map(|s| s.young.len() + s.old.len()).sum()
    }
}

impl Shard {
    fn insert(&mut self, key: Key, e: Entry) {
        if self.young.len() >= GENERATION && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.old.remove(&key);
        self.young.insert(key, e);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn parse(calls: &Cell<u32>) -> impl FnOnce(&str) -> crate::Result<Vec<u32>> + '_ {
        move |d| {
            calls.set(calls.get() + 1);
            serde_json::from_str(d).map_err(openvgw_core::Error::internal)
        }
    }

    #[test]
    fn a_document_is_decoded_once_and_a_changed_text_is_decoded_again() {
        let (c, calls) = (DocCache::default(), Cell::new(0));
        assert_eq!(c.decode(7, "[1,2]".into(), parse(&calls)).ok(), Some(vec![1, 2]));
        assert_eq!(c.decode(7, "[1,2]".into(), parse(&calls)).ok(), Some(vec![1, 2]));
        assert_eq!(calls.get(), 1);
        // The same row with another text (changed by any writer) is never answered from the cache.
        assert_eq!(c.decode(7, "[3]".into(), parse(&calls)).ok(), Some(vec![3]));
        assert_eq!(calls.get(), 2);
        // Another type for the same row is another entry.
        let s: Option<serde_json::Value> =
            c.decode(7, "[3]".into(), |d| Ok(serde_json::from_str(d).unwrap_or_default())).ok();
        assert_eq!(s, Some(serde_json::json!([3])));
        assert_eq!(c.decode(7, "[3]".into(), parse(&calls)).ok(), Some(vec![3]));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_what_is_used() {
        let (c, calls) = (DocCache::default(), Cell::new(0));
        for seq in 0..100_000 {
            c.decode(seq, "[1]".into(), parse(&calls)).ok();
            // Row 0 is read between all the others: it stays.
            c.decode(0, "[1]".into(), parse(&calls)).ok();
        }
        assert!(c.len() <= 2 * SHARDS * GENERATION, "{} entries", c.len());
        assert_eq!(calls.get(), 100_000);
    }
}
