//! Group commit for SQLite: concurrent write transactions share one `COMMIT` (one WAL flush), and none is answered
//! before that commit is on disk.
//!
//! There is no writer thread and no queue: each caller runs its own closure on the one write connection, in a
//! savepoint of the transaction that is open. After its closure, a caller that sees others waiting for the
//! connection leaves the transaction open for them and waits for the batch to commit; the last one in (or the one
//! that fills the batch) commits for everyone. Under no contention that is exactly one transaction per write; under
//! load a batch grows to the number of callers arriving during one commit, so the fsync is paid once per batch.
//!
//! A writer made [`GroupWriter::flushing`] commits without waiting for the disk (`synchronous=NORMAL`: the WAL
//! frames are written, not flushed) and flushes the WAL after it has let go of the connection: the next batch runs
//! while the previous one's flush is under way, and one flush covers every commit written before it began. A member
//! is still answered only once a flush that began after its commit has finished. What other connections read may
//! be a commit whose flush is still under way (a power cut in that window loses a write nobody was told of, as
//! with a timeout); a killed process loses nothing, the frames being in the kernel's cache. Commits and flushes
//! overlapping made durable creates 1.2× faster (`bench/README.md`, sixth round).
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
    /// Flushes commits made without a flush; `None` when the connection flushes in its `COMMIT`.
    flusher: Option<Flusher>,
}

/// One flush at a time, each covering every commit finished before it began.
struct Flusher {
    wal: std::fs::File,
    /// Commits whose frames have been written (numbered from 1; advanced with the connection held).
    written: AtomicU64,
    /// Commits known flushed; held while flushing.
    flushed: Mutex<u64>,
}

struct Inner {
    conn: Connection,
    /// The transaction that is open, if any.
    open: Option<OpenBatch>,
}

struct OpenBatch {
    batch: Arc<Batch>,
    /// Closures that ran in it, and how many of those kept their writes.
    members: usize,
    writes: u64,
}

/// What waiting members learn about the commit of their batch.
#[derive(Default)]
pub(crate) struct Batch {
    outcome: Mutex<Option<std::result::Result<(), String>>>,
    done: Condvar,
}

impl Batch {
    pub(crate) fn finish(&self, outcome: std::result::Result<(), String>) {
        if let Ok(mut o) = self.outcome.lock() {
            *o = Some(outcome);
        }
        self.done.notify_all();
    }

    pub(crate) fn wait(&self) -> std::result::Result<(), String> {
        self.wait_at_most(None)
    }

    /// Like `wait`, but gives up after `limit` (an error: the outcome is unknown).
    pub(crate) fn wait_at_most(&self, limit: Option<std::time::Duration>) -> std::result::Result<(), String> {
        let deadline = limit.map(|l| std::time::Instant::now() + l);
        let mut o = self.outcome.lock().map_err(|_| "store: batch lock poisoned".to_string())?;
        loop {
            if let Some(r) = o.as_ref() {
                return r.clone();
            }
            o = match deadline {
                None => self.done.wait(o).map_err(|_| "store: batch lock poisoned".to_string())?,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(format!("the commit did not finish within {limit:?}"));
                    }
                    self.done.wait_timeout(o, left).map_err(|_| "store: batch lock poisoned".to_string())?.0
                }
            };
        }
    }
}

fn poisoned() -> Error {
    Error::internal("store: connection lock poisoned")
}

impl GroupWriter {
    /// A writer whose connection flushes in every `COMMIT` (`synchronous=FULL`).
    pub(crate) fn new(conn: Connection) -> GroupWriter {
        GroupWriter {
            inner: Mutex::new(Inner { conn, open: None }),
            waiting: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            flusher: None,
        }
    }

    /// A writer that flushes `wal` (the connection's WAL file) itself, after each commit, beside the next batch;
    /// the connection is set to commit without a flush.
    pub(crate) fn flushing(conn: Connection, wal: std::fs::File) -> Result<GroupWriter> {
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(DbErr::from)?;
        let mut w = GroupWriter::new(conn);
        w.flusher = Some(Flusher { wal, written: AtomicU64::new(0), flushed: Mutex::new(0) });
        Ok(w)
    }

    /// Returns once commit `n` is on disk.
    fn flush(&self, n: u64) -> std::result::Result<(), String> {
        let Some(f) = &self.flusher else { return Ok(()) };
        let mut flushed = f.flushed.lock().map_err(|_| "store: flush lock poisoned".to_string())?;
        if *flushed >= n {
            return Ok(());
        }
        // Every commit counted here finished writing its frames before this flush began.
        let written = f.written.load(Ordering::SeqCst);
        if let Err(e) = f.wal.sync_data() {
            // After a failed flush the kernel may have dropped the frames while readers saw them, and a later
            // flush would report success: only a restart (recovery from what is on disk) is safe, as PostgreSQL
            // concluded for its own WAL.
            tracing::error!(error = %e, "store: flushing the database's WAL failed; stopping");
            std::process::abort();
        }
        *flushed = written;
        Ok(())
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
            run(&inner.conn, "BEGIN IMMEDIATE").map_err(DbErr::from)?;
            inner.open = Some(OpenBatch { batch: Arc::new(Batch::default()), members: 0, writes: 0 });
        }
        let mut panic = None;
        let out = match catch_unwind(AssertUnwindSafe(|| {
            run(&inner.conn, "SAVEPOINT member").map_err(DbErr::from)?;
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
            run(&inner.conn, "RELEASE member")
        } else {
            run(&inner.conn, "ROLLBACK TO member").and_then(|()| run(&inner.conn, "RELEASE member"))
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
        let Some(open) = inner.open.as_mut() else {
            return Err(Error::internal("store: no open batch"));
        };
        open.members += 1;
        open.writes += u64::from(kept);
        let (batch, members, writes) = (open.batch.clone(), open.members, open.writes);
        if self.waiting.load(Ordering::SeqCst) == 0 || members >= MAX_BATCH {
            let committed = run(&inner.conn, "COMMIT").map_err(|e| DbErr::from(e).message);
            if committed.is_err() {
                // A failed COMMIT may leave the transaction open (SQLITE_BUSY); end it either way.
                let _ = inner.conn.execute_batch("ROLLBACK");
            }
            let number = self.flusher.as_ref().map_or(0, |f| f.written.fetch_add(1, Ordering::SeqCst) + 1);
            inner.open = None;
            drop(inner);
            let committed = committed.and_then(|()| self.flush(number));
            if committed.is_ok() {
                self.commits.fetch_add(1, Ordering::Relaxed);
                self.writes.fetch_add(writes, Ordering::Relaxed);
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

    /// (commits, writes kept in them) so far.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.commits.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed))
    }

    fn abandon(&self, inner: &mut Inner, why: &str) {
        let _ = inner.conn.execute_batch("ROLLBACK");
        if let Some(open) = inner.open.take() {
            open.batch.finish(Err(format!("the batch was rolled back: {why}")));
        }
    }
}

/// One statement from the connection's cache: parsing `SAVEPOINT`/`RELEASE` again for every write showed in
/// profiles of signed reads (each records its nonce here).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, GroupWriter) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::open_connection(&dir.path().join("g.db"), "FULL").expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)").expect("schema");
        (dir, GroupWriter::new(conn))
    }

    fn rows(w: &GroupWriter) -> Vec<i64> {
        let inner = w.inner.lock().expect("lock");
        let mut st = inner.conn.prepare("SELECT v FROM t ORDER BY v").expect("prepare");
        let out = st.query_map([], |r| r.get(0)).expect("query").collect::<rusqlite::Result<Vec<i64>>>().expect("rows");
        out
    }

    /// The first writer holds its batch open until the second is waiting for the connection: both then share one
    /// commit, made by the second, and the first is answered only after it.
    #[test]
    fn a_writer_arriving_during_a_write_joins_its_commit() {
        let (_d, w) = writer();
        let first_answered = AtomicUsize::new(0);
        std::thread::scope(|t| {
            let (w, first_answered) = (&w, &first_answered);
            let first = t.spawn(move || {
                w.write(true, |c| {
                    c.execute("INSERT INTO t (v) VALUES (1)", []).map_err(DbErr::from)?;
                    let second = std::thread::Builder::new()
                        .spawn_scoped(t, move || {
                            w.write(true, |c| {
                                // The first is still waiting for this commit.
                                assert_eq!(first_answered.load(Ordering::SeqCst), 0);
                                c.execute("INSERT INTO t (v) VALUES (2)", []).map_err(DbErr::from)?;
                                Ok(())
                            })
                        })
                        .expect("spawn");
                    while w.waiting.load(Ordering::SeqCst) == 0 {
                        std::thread::yield_now();
                    }
                    Ok(second)
                })
                .inspect(|_| first_answered.store(1, Ordering::SeqCst))
            });
            let second = first.join().expect("first").expect("first write");
            second.join().expect("second").expect("second write");
        });
        assert_eq!(w.stats(), (1, 2), "one commit carried both writes");
        assert_eq!(rows(&w), vec![1, 2]);
    }

    /// A member that fails or is a DryRun leaves nothing behind, even inside a batch others commit.
    #[test]
    fn failed_and_dry_run_members_leave_nothing() {
        let (_d, w) = writer();
        let insert = |v: i64| {
            move |c: &Connection| -> Result<()> {
                c.execute("INSERT INTO t (v) VALUES (?1)", [v]).map_err(DbErr::from)?;
                Ok(())
            }
        };
        w.write(true, insert(1)).expect("kept");
        w.write(false, insert(2)).expect("dry run");
        let failed: Result<()> = w.write(true, |c| {
            insert(3)(c)?;
            Err(Error::internal("refused"))
        });
        assert!(failed.is_err());
        w.write(true, insert(4)).expect("kept");
        assert_eq!(rows(&w), vec![1, 4]);
        assert_eq!(w.stats(), (4, 2), "four commits (nobody else was waiting), two kept writes");
    }

    /// A flushing writer commits without SQLite's flush and answers each write only after a flush of its own
    /// that began after the commit.
    #[test]
    fn a_flushing_writer_answers_after_a_flush_that_covers_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("g.db");
        let conn = crate::open_connection(&db, "FULL").expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)").expect("schema");
        let wal = std::fs::File::options().write(true).open(dir.path().join("g.db-wal")).expect("wal");
        let w = GroupWriter::flushing(conn, wal).expect("writer");
        let synchronous: i64 =
            w.inner.lock().expect("lock").conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("pragma");
        assert_eq!(synchronous, 1, "NORMAL: SQLite does not flush in the commit");
        let flusher = w.flusher.as_ref().expect("flusher");
        for v in 1..=5u64 {
            w.write(true, |c| {
                c.execute("INSERT INTO t (v) VALUES (?1)", [v as i64]).map_err(DbErr::from)?;
                Ok(())
            })
            .expect("write");
            assert_eq!(*flusher.flushed.lock().expect("flushed"), v, "write {v} answered before its flush");
        }
        // A DryRun member's batch commits nothing of it, and is answered without waiting.
        w.write(false, |c| {
            c.execute("INSERT INTO t (v) VALUES (99)", []).map_err(DbErr::from)?;
            Ok(())
        })
        .expect("dry run");
        assert_eq!(rows(&w), vec![1, 2, 3, 4, 5]);
    }

    /// A batch nobody finishes does not hold its waiter forever.
    #[test]
    fn a_bounded_wait_gives_up() {
        let b = Batch::default();
        let err = b.wait_at_most(Some(std::time::Duration::from_millis(30))).expect_err("never finished");
        assert!(err.contains("did not finish"), "{err}");
        b.finish(Ok(()));
        assert_eq!(b.wait_at_most(Some(std::time::Duration::from_millis(30))), Ok(()));
    }
}
