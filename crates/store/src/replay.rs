//! SQLite's replay records (used nonces): checked without waiting for a commit, written by one committer thread in
//! group commits, and durable before the request they belong to is answered.
//!
//! Every signed request records its nonce. Through the store's group writer each record queued behind the commit
//! (fsync) of the batch before it, and the request's own work waited for its record's commit. Here a check
//! consults the records still being committed (in memory) and the committed ones (a reader connection, which WAL
//! lets read during a commit), adds the nonce to the next batch and returns at once; the committer thread writes
//! whatever has queued in one transaction per batch. The request then does its work while its record is committed
//! and waits for it ([`crate::Durable`]) before it is answered, so a restart still forgets nothing that was
//! answered. The records live in their own file (`Sqlite::replay` in lib.rs says why).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use openvgw_core::{Error, Result};
use rusqlite::Connection;

use crate::group::Batch;
use crate::sql::{sqlite_query, vals, Conn, DbErr};
use crate::NonceCheck;

pub(crate) struct ReplayLog {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Reads the committed records; held only with `state`.
    reader: Mutex<Connection>,
}

#[derive(Default)]
struct State {
    /// Recorded and not yet known committed, with how many of them each key has.
    pending: HashSet<(String, String)>,
    pending_per_key: HashMap<String, u64>,
    /// What the next batch writes, and the batch its members wait on.
    queue: Vec<Entry>,
    next: Arc<Batch>,
    stop: bool,
    commits: u64,
    writes: u64,
}

struct Entry {
    key: String,
    nonce: String,
    now_ms: i64,
    expires_at_ms: i64,
}

fn poisoned() -> Error {
    Error::internal("store: replay lock poisoned")
}

/// The state, even after a panic elsewhere while it was held: every change to it is a whole insert or removal, and
/// the committer must go on (requests wait for its batches).
fn state(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    /// committed in. The count a key holds may include a batch twice for the moment between its commit and its
    /// removal from memory, so the cap can refuse a moment early, never late.
    pub(crate) fn check(
        &self,
        key: &str,
        nonce: &str,
        now_ms: i64,
        expires_at_ms: i64,
        cap: u64,
    ) -> Result<(NonceCheck, Option<Arc<Batch>>)> {
        let mut st = state(&self.shared);
        let id = (key.to_string(), nonce.to_string());
        if st.pending.contains(&id) {
            return Ok((NonceCheck::Used, None));
        }
        let reader = self.shared.reader.lock().map_err(|_| poisoned())?;
        let state = sqlite_query(&reader, crate::NONCE_STATE, vals![key, nonce, now_ms])?;
        drop(reader);
        let pending = st.pending_per_key.get(key).copied().unwrap_or(0);
        if let Some(verdict) = crate::nonce_verdict(&state, pending, cap)? {
            return Ok((verdict, None));
        }
        st.pending.insert(id);
        *st.pending_per_key.entry(key.to_string()).or_default() += 1;
        st.queue.push(Entry { key: key.to_string(), nonce: nonce.to_string(), now_ms, expires_at_ms });
        let batch = st.next.clone();
        drop(st);
        self.shared.wake.notify_one();
        Ok((NonceCheck::New, Some(batch)))
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
            for e in &entries {
                st.pending.remove(&(e.key.clone(), e.nonce.clone()));
                if let Some(n) = st.pending_per_key.get_mut(&e.key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        st.pending_per_key.remove(&e.key);
                    }
                }
            }
            if outcome.is_ok() {
                st.commits += 1;
                st.writes += entries.len() as u64;
            }
        }
        batch.finish(outcome);
    }
}

/// One transaction for the batch: all of it or nothing (its members then fail and may retry with the same nonce).
fn write(conn: &Connection, entries: &[Entry]) -> Result<()> {
    let c = Conn::Sqlite(conn);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(DbErr::from)?;
    let out = (|| -> Result<()> {
        for e in entries {
            if c.execute(crate::INSERT_NONCE, vals![&e.key, &e.nonce, e.expires_at_ms, e.now_ms])? > 0 {
                c.execute(crate::COUNT_NONCE, vals![&e.key])?;
            }
        }
        conn.execute_batch("COMMIT").map_err(DbErr::from)?;
        Ok(())
    })();
    if out.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    out
}
