//! SQLite's replay records (used nonces): checked in memory, appended to a log by one committer thread in group
//! commits, and durable before the request they belong to is answered.
//!
//! Every signed request records its nonce. The records were a table keyed by (key, nonce): each batch inserted
//! its nonces at random places of a B-tree, 5–8 pages per batch, and the inserts were a sixth of the server's CPU
//! on a signed read (`bench/README.md`, sixth round). Now the file holds a log in arrival order (`nonce_log`, a
//! rowid table without an index, so a batch fills the last page or two), and the check consults an index in
//! memory of every live record: a fingerprint per (key, nonce) with its expiry, and per key how many it holds. A
//! SQLite database belongs to one process (see `Store::acquire_lease`), so that process's memory sees every
//! record; the index is read from the log at the first check after a start (not at open: other commands open the
//! store too), so a restart still forgets nothing that was answered.
//!
//! A check adds the nonce to the index and to the next batch and returns at once; the committer thread appends
//! whatever has queued in one transaction per batch. The request does its work while its record is committed and
//! waits for it ([`crate::Durable`]) before it is answered. The records live in their own file (`Sqlite::replay`
//! in lib.rs says why); views keep the old tables' names for backups, restores and tests.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use openvgw_core::{Error, Result};
use rusqlite::Connection;

use crate::group::Batch;
use crate::sql::{vals, Conn, DbErr};
use crate::NonceCheck;

pub(crate) struct ReplayLog {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Reads the log into the index; held only with `state`.
    reader: Mutex<Connection>,
}

#[derive(Default)]
struct State {
    /// Every live record; `None` until the first check reads the log.
    index: Option<Index>,
    /// What the next batch appends, and the batch its members wait on.
    queue: Vec<Entry>,
    next: Arc<Batch>,
    stop: bool,
    commits: u64,
    writes: u64,
}

struct Entry {
    key: String,
    nonce: String,
    expires_at_ms: i64,
    id: u64,
}

/// The live records by fingerprint. A fingerprint is 64 bits of SipHash under a key drawn at start, so two
/// records share one with a chance of about n / 2^64 per check (a new nonce then refused as a replay, which a
/// client retries with another nonce); nobody can aim at a collision without the key.
struct Index {
    hasher: RandomState,
    live: HashMap<u64, Live, Fingerprints>,
    /// (fingerprint, expiry) in arrival order: records leave from the front once expired. A record taken over
    /// (its nonce used again after it expired) or rolled back leaves a stale pair, skipped by its expiry.
    order: VecDeque<(u64, i64)>,
    /// Live records per key (by the key's fingerprint), for the cap.
    per_key: HashMap<u64, u64, Fingerprints>,
}

#[derive(Clone, Copy)]
struct Live {
    expires_at_ms: i64,
    key: u64,
}

/// Fingerprints are already uniformly distributed: the maps use them as their hash.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this keeps any other use correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Fingerprints = BuildHasherDefault<Identity>;

impl Index {
    fn new() -> Index {
        Index {
            hasher: RandomState::new(),
            live: HashMap::default(),
            order: VecDeque::new(),
            per_key: HashMap::default(),
        }
    }

    fn record_id(&self, key: &str, nonce: &str) -> u64 {
        self.hasher.hash_one((key, nonce))
    }

    fn key_id(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Drops the records expired by `now_ms` from the front of the arrival order.
    fn expire(&mut self, now_ms: i64) {
        while let Some(&(id, expires_at_ms)) = self.order.front() {
            if expires_at_ms > now_ms {
                break;
            }
            self.order.pop_front();
            self.remove(id, expires_at_ms);
        }
    }

    /// Removes the record `id` if it is still the one that expires at `expires_at_ms`.
    fn remove(&mut self, id: u64, expires_at_ms: i64) {
        match self.live.get(&id) {
            Some(l) if l.expires_at_ms == expires_at_ms => {
                let key = l.key;
                self.live.remove(&id);
                self.uncount(key);
            }
            _ => {}
        }
    }

    fn uncount(&mut self, key: u64) {
        if let Some(n) = self.per_key.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_key.remove(&key);
            }
        }
    }

    /// Records `id` for `key` until `expires_at_ms`, taking over an expired record of the same nonce.
    fn insert(&mut self, id: u64, key: u64, expires_at_ms: i64) {
        if let Some(old) = self.live.insert(id, Live { expires_at_ms, key }) {
            self.uncount(old.key);
        }
        *self.per_key.entry(key).or_default() += 1;
        self.order.push_back((id, expires_at_ms));
    }

    /// The index of what the log holds, live at `now_ms`.
    fn load(conn: &Connection, now_ms: i64) -> Result<Index> {
        let mut index = Index::new();
        let mut stmt = conn
            .prepare("SELECT access_key_id, nonce, expires_at FROM nonce_log WHERE expires_at > ?1 ORDER BY rowid")
            .map_err(DbErr::from)?;
        let mut rows = stmt.query([now_ms]).map_err(DbErr::from)?;
        while let Some(row) = rows.next().map_err(DbErr::from)? {
            let key: String = row.get(0).map_err(DbErr::from)?;
            let nonce: String = row.get(1).map_err(DbErr::from)?;
            let expires_at_ms: i64 = row.get(2).map_err(DbErr::from)?;
            let (id, k) = (index.record_id(&key, &nonce), index.key_id(&key));
            match index.live.get(&id) {
                // A nonce logged twice (used again after it expired): the later record counts.
                Some(l) if l.expires_at_ms >= expires_at_ms => {}
                _ => index.insert(id, k, expires_at_ms),
            }
        }
        Ok(index)
    }
}

fn poisoned() -> Error {
    Error::internal("store: replay lock poisoned")
}

/// The state, even after a panic elsewhere while it was held: every change to it is a whole insert or removal, and
/// the committer must go on (requests wait for its batches).
fn state(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Appends one record to the log.
const APPEND: &str = "INSERT INTO nonce_log (access_key_id, nonce, expires_at) VALUES (?1, ?2, ?3)";

impl ReplayLog {
    /// Starts the committer on `writer`; `reader` is a second connection to the same file.
    pub(crate) fn start(writer: Connection, reader: Connection) -> Result<ReplayLog> {
        let shared = Arc::new(Shared { state: Mutex::default(), wake: Condvar::new(), reader: Mutex::new(reader) });
        let s = shared.clone();
        let committer = std::thread::Builder::new()
            .name("openvgw-replay".into())
            .spawn(move || commit_loop(&s, &writer))
            .map_err(Error::internal)?;
        Ok(ReplayLog { shared, committer: Some(committer) })
    }

    /// Records the first use of `nonce` by `key` (see `Store::use_nonce`); a new record comes with the batch it is
    /// appended in.
    pub(crate) fn check(
        &self,
        key: &str,
        nonce: &str,
        now_ms: i64,
        expires_at_ms: i64,
        cap: u64,
    ) -> Result<(NonceCheck, Option<Arc<Batch>>)> {
        let mut st = state(&self.shared);
        if st.index.is_none() {
            let reader = self.shared.reader.lock().map_err(|_| poisoned())?;
            st.index = Some(Index::load(&reader, now_ms)?);
        }
        let index = st.index.as_mut().ok_or_else(|| Error::internal("store: replay index not loaded"))?;
        index.expire(now_ms);
        let id = index.record_id(key, nonce);
        if index.live.get(&id).is_some_and(|l| l.expires_at_ms > now_ms) {
            return Ok((NonceCheck::Used, None));
        }
        let k = index.key_id(key);
        if index.per_key.get(&k).copied().unwrap_or(0) >= cap {
            return Ok((NonceCheck::Full, None));
        }
        index.insert(id, k, expires_at_ms);
        st.queue.push(Entry { key: key.to_string(), nonce: nonce.to_string(), expires_at_ms, id });
        let batch = st.next.clone();
        drop(st);
        self.shared.wake.notify_one();
        Ok((NonceCheck::New, Some(batch)))
    }

    /// Forgets in memory what expired by `now_ms` (checks do it too; this frees it when no check comes).
    pub(crate) fn expire(&self, now_ms: i64) {
        if let Some(index) = state(&self.shared).index.as_mut() {
            index.expire(now_ms);
        }
    }

    /// A deleted key's records no longer count against anything; their fingerprints expire in time.
    pub(crate) fn forget(&self, key: &str) {
        if let Some(index) = state(&self.shared).index.as_mut() {
            let k = index.key_id(key);
            index.per_key.remove(&k);
        }
    }

    /// The log was written behind the index's back (a restore): read it again at the next check.
    pub(crate) fn reload(&self) {
        state(&self.shared).index = None;
    }

    /// Live records in memory (none before the first check has read the log).
    pub(crate) fn remembered(&self) -> u64 {
        state(&self.shared).index.as_ref().map_or(0, |i| i.live.len() as u64)
    }

    /// (commits, records written) so far.
    pub(crate) fn stats(&self) -> (u64, u64) {
        let st = state(&self.shared);
        (st.commits, st.writes)
    }
}

impl Drop for ReplayLog {
    /// Commits what is queued, then stops the committer.
    fn drop(&mut self) {
        state(&self.shared).stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

fn commit_loop(shared: &Shared, conn: &Connection) {
    loop {
        let (entries, batch) = {
            let mut st = state(shared);
            while st.queue.is_empty() && !st.stop {
                st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.queue.is_empty() {
                return;
            }
            (std::mem::take(&mut st.queue), std::mem::take(&mut st.next))
        };
        let outcome = write(conn, &entries).map_err(|e| e.to_string());
        {
            let mut st = state(shared);
            if outcome.is_ok() {
                st.commits += 1;
                st.writes += entries.len() as u64;
            } else if let Some(index) = st.index.as_mut() {
                // Not recorded: its members fail, and may retry with the same nonce.
                for e in &entries {
                    index.remove(e.id, e.expires_at_ms);
                }
            }
        }
        batch.finish(outcome);
    }
}

/// One transaction for the batch: all of it or nothing.
fn write(conn: &Connection, entries: &[Entry]) -> Result<()> {
    let c = Conn::Sqlite(conn);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(DbErr::from)?;
    let out = (|| -> Result<()> {
        for e in entries {
            c.execute(APPEND, vals![&e.key, &e.nonce, e.expires_at_ms])?;
        }
        conn.execute_batch("COMMIT").map_err(DbErr::from)?;
        Ok(())
    })();
    if out.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    out
}
