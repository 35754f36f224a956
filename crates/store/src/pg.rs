//! The PostgreSQL backend: a few synchronous `postgres` clients, each behind its own mutex, opened lazily and
//! opened again when their connection breaks.
//!
//! Write transactions take `pg_advisory_xact_lock(WRITE_LOCK)` first, so writes are serialised across every
//! process sharing the database exactly as SQLite's `BEGIN IMMEDIATE` serialises them; they run at READ COMMITTED,
//! so every statement after the lock sees everything committed before it (a REPEATABLE READ snapshot would be
//! taken before the lock is granted). Reads run REPEATABLE READ READ ONLY: one consistent snapshot. Commits are
//! synchronous (PostgreSQL's default `synchronous_commit = on`), as durable as SQLite's `synchronous=FULL`.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openvgw_core::{Error, Result};

use crate::sql::{DbResult, PgConn};

/// The advisory lock every write transaction holds ("openvgw" in ASCII).
pub(crate) const WRITE_LOCK: i64 = 0x006f_7065_6e76_6777;

const READERS: usize = 4;

/// Runs blocking client work off the async runtime: the synchronous client drives its own runtime and panics
/// inside another one. Store calls are made from blocking threads; this also covers a call made while a blocking
/// thread runs `Handle::block_on` (a dialect awaiting the data plane), where `block_in_place` just leaves the
/// runtime context.
pub(crate) fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

type Slot = Mutex<Option<PgConn>>;

pub(crate) struct Pg {
    config: postgres::Config,
    /// Where the database is, without credentials (logs, errors).
    pub(crate) display: String,
    writer: Slot,
    readers: Vec<Slot>,
    /// Small independent transactions (nonces, leases) that must not queue behind request writes.
    small: Slot,
    next_reader: AtomicUsize,
    analyzer: Arc<Analyzer>,
}

/// The planner's statistics, kept up with the data. PostgreSQL plans a lookup by a typed key (a customer gateway
/// by address) from them; a table that grew faster than autovacuum analyses it (it looks once a minute, and a new
/// table has no statistics at all) got plans that walked a whole scope for one row: creates fell to ~130/s at a
/// few thousand rows. The store analyses its tables when it opens them and again, on a thread of its own, after
/// every fifth of their size in writes (at least [`ANALYZE_MIN_WRITES`]).
struct Analyzer {
    writes: AtomicU64,
    next_at: AtomicU64,
    running: AtomicBool,
    /// Runs, for tests and logs.
    runs: AtomicU64,
}

const ANALYZE_MIN_WRITES: u64 = 500;
const ANALYZE: &str = "ANALYZE resources, resource_keys, tags, resource_counts";

/// `postgres://user:secret@host:port/db?…` (or `… password=secret …`) without the password.
fn redact(url: &str) -> String {
    if !url.contains("://") {
        return url
            .split_whitespace()
            .map(|kv| if kv.starts_with("password=") { "password=…" } else { kv })
            .collect::<Vec<_>>()
            .join(" ");
    }
    match url.split_once("://").and_then(|(scheme, rest)| rest.split_once('@').map(|(cred, tail)| (scheme, cred, tail)))
    {
        Some((scheme, cred, tail)) => {
            let user = cred.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{tail}")
        }
        None => url.to_string(),
    }
}

impl Pg {
    pub(crate) fn open(url: &str) -> Result<Pg> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| Error::internal(format!("store: bad PostgreSQL URL {}: {e}", redact(url))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("openvgw");
        }
        let pg = Pg {
            config,
            display: redact(url),
            writer: Mutex::new(None),
            readers: (0..READERS).map(|_| Mutex::new(None)).collect(),
            small: Mutex::new(None),
            next_reader: AtomicUsize::new(0),
            analyzer: Arc::new(Analyzer {
                writes: AtomicU64::new(0),
                next_at: AtomicU64::new(ANALYZE_MIN_WRITES),
                running: AtomicBool::new(false),
                runs: AtomicU64::new(0),
            }),
        };
        off_runtime(|| {
            let mut w = pg.lock(&pg.writer)?;
            let conn = pg.connected(&mut w)?;
            crate::schema::migrate_pg(conn)?;
            let rows = analyze(conn)?;
            pg.analyzer.analyzed(rows);
            Ok::<_, Error>(())
        })?;
        Ok(pg)
    }

    /// Counts a committed write; starts an analysis once enough have happened since the last one.
    fn wrote(&self) {
        let a = &self.analyzer;
        if a.writes.fetch_add(1, Ordering::Relaxed) + 1 < a.next_at.load(Ordering::Relaxed)
            || a.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (config, a) = (self.config.clone(), self.analyzer.clone());
        let started = std::thread::Builder::new().name("openvgw-analyze".into()).spawn(move || {
            match connect(&config).map_err(Error::from).and_then(|mut c| analyze(&mut c)) {
                Ok(rows) => a.analyzed(rows),
                // Tried again after as many writes; autovacuum still runs meanwhile.
                Err(e) => {
                    tracing::warn!(error = %e, "analysing the store's tables failed");
                    a.writes.store(0, Ordering::Relaxed);
                }
            }
            a.running.store(false, Ordering::Release);
        });
        if started.is_err() {
            self.analyzer.running.store(false, Ordering::Release);
        }
    }

    /// Analyses run so far (at open and after growth).
    #[cfg(test)]
    pub(crate) fn analyses(&self) -> u64 {
        self.analyzer.runs.load(Ordering::Relaxed)
    }

    fn lock<'a>(&self, slot: &'a Slot) -> Result<MutexGuard<'a, Option<PgConn>>> {
        slot.lock().map_err(|_| Error::internal("store: connection lock poisoned"))
    }

    fn connected<'a>(&self, slot: &'a mut Option<PgConn>) -> Result<&'a mut PgConn> {
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            *slot =
                Some(connect(&self.config).map_err(|e| {
                    Error::internal(format!("store: cannot connect to {}: {}", self.display, e.message))
                })?);
        }
        slot.as_mut().ok_or_else(|| Error::internal("store: no connection"))
    }

    /// Runs one transaction on `slot`: `begin` starts it; `f` runs inside; it commits when `f` succeeds and
    /// `commit` is set, and rolls back otherwise. A connection that broke before anything ran is replaced and the
    /// transaction started again once; one that broke later is dropped (the outcome is reported as an error).
    fn transaction<T>(
        &self,
        slot: &Slot,
        begin: &str,
        commit: bool,
        f: impl FnOnce(&mut PgConn) -> Result<T>,
    ) -> Result<T> {
        off_runtime(|| {
            let mut guard = self.lock(slot)?;
            let mut started = false;
            for _ in 0..2 {
                let conn = self.connected(&mut guard)?;
                match conn.batch(begin) {
                    Ok(()) => {
                        started = true;
                        break;
                    }
                    Err(e) if e.broken => *guard = None,
                    Err(e) => return Err(e.into()),
                }
            }
            if !started {
                return Err(Error::internal(format!("store: lost the connection to {}", self.display)));
            }
            let conn = self.connected(&mut guard)?;
            let out = f(conn);
            let end = if out.is_ok() && commit { "COMMIT" } else { "ROLLBACK" };
            if let Err(e) = conn.batch(end) {
                if e.broken || conn.client.is_closed() {
                    *guard = None;
                } else {
                    // Leave no half-open transaction on a connection that is used again.
                    let _ = conn.batch("ROLLBACK");
                }
                return match out {
                    Ok(_) => Err(e.into()),
                    Err(first) => Err(first),
                };
            }
            out
        })
    }

    pub(crate) fn write<T>(&self, commit: bool, f: impl FnOnce(&mut PgConn) -> Result<T>) -> Result<T> {
        let begin = format!("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})");
        let out = self.transaction(&self.writer, &begin, commit, f);
        if out.is_ok() && commit {
            self.wrote();
        }
        out
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut PgConn) -> Result<T>) -> Result<T> {
        // A free reader if there is one (a read may nest inside another); otherwise wait for the next in turn.
        let slot =
            self.readers.iter().find(|s| s.try_lock().is_ok()).unwrap_or_else(|| {
                &self.readers[self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len()]
            });
        self.transaction(slot, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", false, f)
    }

    /// A short transaction that needs no global order (the primary key decides), on its own connection.
    pub(crate) fn small<T>(&self, f: impl FnOnce(&mut PgConn) -> Result<T>) -> Result<T> {
        self.transaction(&self.small, "BEGIN ISOLATION LEVEL READ COMMITTED", true, f)
    }
}

/// A new session with the store's settings.
fn connect(config: &postgres::Config) -> DbResult<PgConn> {
    let mut client = config.connect(postgres::NoTls)?;
    client.batch_execute(crate::sql::PG_SESSION)?;
    Ok(PgConn::new(client))
}

impl Analyzer {
    fn analyzed(&self, rows: u64) {
        self.writes.store(0, Ordering::Relaxed);
        self.next_at.store((rows / 5).max(ANALYZE_MIN_WRITES), Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Analyses the tables lists filter on; returns the resources the statistics now count.
fn analyze(conn: &mut PgConn) -> Result<u64> {
    conn.batch(ANALYZE)?;
    let rows = conn.query("SELECT reltuples::BIGINT FROM pg_class WHERE relname = 'resources'", &[])?;
    Ok(rows.first().map(|r| r.int(0)).transpose()?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropping a client blocks on its own runtime, which panics inside an async context: drop them on a
        // thread of their own.
        let mut conns = Vec::new();
        for slot in
            std::iter::once(&mut self.writer).chain(self.readers.iter_mut()).chain(std::iter::once(&mut self.small))
        {
            if let Ok(c) = slot.get_mut() {
                conns.extend(c.take());
            }
        }
        if !conns.is_empty() {
            let _ = std::thread::spawn(move || drop(conns)).join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_logged_without_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h:5/db"), "postgres://u@h:5/db");
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            super::redact("host=/run/postgresql password=x dbname=o"),
            "host=/run/postgresql password=… dbname=o"
        );
        assert!(crate::is_postgres_url("host=/run/postgresql dbname=o"));
        assert!(!crate::is_postgres_url("/var/lib/openvgw/openvgw.db"));
    }
}
