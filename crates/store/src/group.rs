//! Group commit for SQLite: concurrent write transactions share one `COMMIT` (one WAL flush), and none is answered
//! before that commit is on disk.
//!
//! There is no writer thread and no queue: each caller runs its own closure on the one write connection, in a
//! savepoint of the transaction that is open. After its closure, a caller that sees others waiting for the
//! connection leaves the transaction open for them and waits for the batch to commit; the last one in (or the one
//! that fills the batch) commits for everyone. Under no contention that is exactly one transaction per write; under
//! load a batch grows to the number of callers arriving during one commit, so the fsync is paid once per batch.
//!
//! Each closure sees the writes of the callers before it in the batch and nothing of a caller whose closure failed
//! (its savepoint is rolled back), so the outcome is the one of running them one after another — except that a
//! failed `COMMIT` fails every member of the batch, and each of them reports that failure.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use openvgw_core::{Error, Result};
use rusqlite::Connection;

use crate::sql::DbErr;

/// More members than this and the batch commits even with callers waiting: bounds the latency of the first.
const MAX_BATCH: usize = 64;

pub(crate) struct GroupWriter {
    inner: Mutex<Inner>,
    /// Callers blocked on `inner`: while there are any, an open batch is left for them to join.
    waiting: AtomicUsize,
    /// Committed batches, and the writes they carried (their ratio is the batching achieved).
    commits: AtomicU64,
    writes: AtomicU64,
}

struct Inner {
    conn: Connection,
    /// The transaction that is open, if any, and how many closures ran in it.
    open: Option<(Arc<Batch>, usize)>,
}

/// What waiting members learn about the commit of their batch.
#[derive(Default)]
struct Batch {
    outcome: Mutex<Option<std::result::Result<(), String>>>,
    done: Condvar,
}

impl Batch {
    fn finish(&self, outcome: std::result::Result<(), String>) {
        if let Ok(mut o) = self.outcome.lock() {
            *o = Some(outcome);
        }
        self.done.notify_all();
    }

    fn wait(&self) -> std::result::Result<(), String> {
        let mut o = self.outcome.lock().map_err(|_| "store: batch lock poisoned".to_string())?;
        loop {
            if let Some(r) = o.as_ref() {
                return r.clone();
            }
            o = self.done.wait(o).map_err(|_| "store: batch lock poisoned".to_string())?;
        }
    }
}

fn poisoned() -> Error {
    Error::internal("store: connection lock poisoned")
}

impl GroupWriter {
    pub(crate) fn new(conn: Connection) -> GroupWriter {
        GroupWriter {
            inner: Mutex::new(Inner { conn, open: None }),
            waiting: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// Runs `f` in the current batch. When `keep` is false (DryRun) or `f` fails, its changes are rolled back and
    /// its result is returned at once; otherwise the result is returned once the batch holding its changes has
    /// committed (or the commit's error if it did not).
    pub(crate) fn write<T>(&self, keep: bool, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let locked = self.inner.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut inner = locked.map_err(|_| poisoned())?;

        if inner.open.is_none() {
            inner.conn.execute_batch("BEGIN IMMEDIATE").map_err(DbErr::from)?;
            inner.open = Some((Arc::new(Batch::default()), 0));
        }
        let mut panic = None;
        let out = match catch_unwind(AssertUnwindSafe(|| {
            inner.conn.execute_batch("SAVEPOINT member").map_err(DbErr::from)?;
            f(&inner.conn)
        })) {
            Ok(out) => out,
            Err(payload) => {
                panic = Some(payload);
                Err(Error::internal("store: a write panicked"))
            }
        };
        let kept = out.is_ok() && keep;
        let closed = if kept {
            inner.conn.execute_batch("RELEASE member")
        } else {
            inner.conn.execute_batch("ROLLBACK TO member; RELEASE member")
        };
        if let Err(e) = closed {
            // The savepoint could not be closed: nothing in this batch can be trusted; undo all of it.
            let e = DbErr::from(e);
            self.abandon(&mut inner, &e.message);
            drop(inner);
            return match panic {
                Some(p) => resume_unwind(p),
                None => Err(e.into()),
            };
        }
        let Some((batch, members)) = inner.open.as_mut() else {
            return Err(Error::internal("store: no open batch"));
        };
        *members += 1;
        let (batch, members) = (batch.clone(), *members);
        if self.waiting.load(Ordering::SeqCst) == 0 || members >= MAX_BATCH {
            let committed = inner.conn.execute_batch("COMMIT").map_err(|e| DbErr::from(e).message);
            if committed.is_err() {
                // A failed COMMIT may leave the transaction open (SQLITE_BUSY); end it either way.
                let _ = inner.conn.execute_batch("ROLLBACK");
            }
            inner.open = None;
            drop(inner);
            if committed.is_ok() {
                self.commits.fetch_add(1, Ordering::Relaxed);
                self.writes.fetch_add(members as u64, Ordering::Relaxed);
            }
            batch.finish(committed.clone());
            if let Some(p) = panic {
                resume_unwind(p);
            }
            return match committed {
                Err(m) if kept => Err(Error::internal(format!("store: {m}"))),
                _ => out,
            };
        }
        drop(inner);
        if let Some(p) = panic {
            resume_unwind(p);
        }
        if !kept {
            return out;
        }
        match batch.wait() {
            Ok(()) => out,
            Err(m) => Err(Error::internal(format!("store: {m}"))),
        }
    }

    /// (commits, writes) so far.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.commits.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed))
    }

    fn abandon(&self, inner: &mut Inner, why: &str) {
        let _ = inner.conn.execute_batch("ROLLBACK");
        if let Some((batch, _)) = inner.open.take() {
            batch.finish(Err(format!("the batch was rolled back: {why}")));
        }
    }
}
