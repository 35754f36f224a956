//! openvgw-store: durable state in SQLite (embedded; WAL, `synchronous=FULL`) or PostgreSQL (shared by replicas).
//!
//! Resources are stored as JSON documents next to the columns every query filters on (tenant, region, kind,
//! parent, name) and their typed secondary keys (`resource_keys`), so the schema is the same for every resource
//! type and both backends. Lists page by offset or by a keyset cursor on the insertion sequence. All writes happen
//! inside one serialised transaction per request (SQLite: a savepoint in a group-committed `BEGIN IMMEDIATE`
//! transaction, see `group`; PostgreSQL: a transaction-scoped advisory lock taken first): a request either commits
//! everything it changed or nothing, and sees every write committed before it, whichever process made it.

mod backup;
mod docs;
mod group;
mod pg;
mod replay;
mod schema;
mod sql;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openvgw_core::secret::{with_keyring, Keyring};
use openvgw_core::{Error, Result};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use backup::{BackupSummary, BACKUP_FORMAT};
pub use tx::{Event, IdempotencyRecord, ListQuery, TagFilter, TaggedResource, Tx};

use crate::sql::{vals, Conn, DbErr};

#[cfg(test)]
mod test_pg;
#[cfg(test)]
mod tests;

const READERS: usize = 4;

pub struct Store {
    backend: Backend,
    /// Seals secrets in documents and access keys while a transaction runs (see `openvgw_core::secret`).
    keyring: Option<Arc<Keyring>>,
    /// Decoded documents by their text (see `docs`).
    docs: docs::DocCache,
}

enum Backend {
    Sqlite(Box<Sqlite>),
    Pg(Box<pg::Pg>),
}

struct Sqlite {
    path: PathBuf,
    /// Every write but the replay records, requests' and the small ones (leases) alike, group-committed.
    writer: group::GroupWriter,
    /// The replay records (used nonces), in their own file beside the database ([`replay_path`]): every signed
    /// request records one, and a commit to the database makes every reader connection drop its page cache and
    /// memory map at its next transaction (SQLite's WAL readers start over when the WAL changed). Kept apart, a
    /// signed read changes nothing the readers cache. Readers attach the file as `replay`, so reads find the tables
    /// by their plain names (backup, tests); the writer does not (restore writes them here).
    replay: group::GroupWriter,
    /// Checks and records nonces without waiting for commits (see `replay`); `replay` writes the rest of the file
    /// (purges, restores).
    nonces: replay::ReplayLog,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Asks `PRAGMA data_version` and nothing else: the value is per connection, so one connection answers for all.
    version: Mutex<Connection>,
    /// Copies the WAL back into the database beside the writer (dropping it stops the thread).
    _checkpointer: Checkpointer,
}

/// SQLite checkpoints the WAL in whichever commit crosses its threshold, and that commit (with every request
/// waiting on its batch) waits for the copy and its fsync: a visible share of the slowest percentile of signed
/// reads. The writer's automatic checkpoints are off; this thread runs passive ones (they never block the writer
/// or readers) on its own connection, every [`CHECKPOINT_EVERY`].
///
/// Passive checkpoints alone never let the WAL start over under steady load: a writer rewinds it only when every
/// frame has been copied back, and new commits keep arriving (the replay file's WAL reached 750 MB in a minute of
/// signed reads, every frame written to newly allocated blocks). Once a file's WAL holds [`RESTART_FRAMES`], a
/// restarting checkpoint copies the rest back and waits for the readers still in it (transactions of
/// microseconds), so that the next commit writes from the start of the file again, over blocks that exist.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// WAL frames (pages of 4 KiB) after which the checkpointer makes the WAL start over (64 MiB).
const RESTART_FRAMES: i64 = 16_384;
/// How long a restarting checkpoint may wait for the writer or a reader: it holds the write lock while it waits
/// for readers, so it gives up early and tries again at the next tick rather than stall commits.
const RESTART_WAIT: Duration = Duration::from_millis(10);

impl Checkpointer {
    fn start(conn: Connection) -> Result<Checkpointer> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("openvgw-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    for file in ["main", "replay"] {
                        // A busy or failed checkpoint is simply tried again next time; the WAL only grows meanwhile.
                        let frames = conn
                            .query_row(&format!("PRAGMA {file}.wal_checkpoint(PASSIVE)"), [], |r| r.get::<_, i64>(1))
                            .unwrap_or(0);
                        if frames >= RESTART_FRAMES {
                            let _ = conn.query_row(&format!("PRAGMA {file}.wal_checkpoint(RESTART)"), [], |_| Ok(()));
                        }
                    }
                }
            })
            .map_err(Error::internal)?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Longest wait for a replay record's commit (a commit normally takes milliseconds).
pub const DURABLE_WAIT: Duration = Duration::from_secs(30);

/// The commit of a record made by [`Store::use_nonce_deferred`]; it happens whether or not anybody waits.
pub struct Durable(Option<Arc<group::Batch>>);

impl Durable {
    /// Nothing to wait for.
    pub fn done() -> Durable {
        Durable(None)
    }

    /// Returns once the write is on disk, or the commit's error — or an error after [`DURABLE_WAIT`]: a request
    /// is answered (with an internal error) rather than left hanging if the committer stopped.
    pub fn wait(self) -> Result<()> {
        match self.0 {
            Some(b) => {
                b.wait_at_most(Some(DURABLE_WAIT)).map_err(|m| Error::internal(format!("store: replay records: {m}")))
            }
            None => Ok(()),
        }
    }
}

/// What [`Store::use_nonce`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// First use: recorded.
    New,
    /// Seen before and not expired: a replay.
    Used,
    /// The access key already has as many remembered nonces as allowed: refused, not recorded.
    Full,
}

/// Page cache per connection (KiB) and how much of the database file reads map.
const CACHE_KIB: u32 = 16 * 1024;
const MMAP_BYTES: u64 = 1 << 30;

pub(crate) fn open_connection(path: &Path, synchronous: &str) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(DbErr::from)?;
    // Another process (`openvgw tenant create`) may hold the write lock briefly.
    conn.busy_timeout(Duration::from_secs(10)).map_err(DbErr::from)?;
    // The API uses well over rusqlite's default 16 statement shapes (every list filter and page kind is one); a
    // statement pushed out of the cache is parsed and planned again.
    conn.set_prepared_statement_cache_capacity(256);
    // A larger page cache and memory-mapped reads: at 100k resources (and as many remembered nonces) SQLite's default
    // 2 MB cache per connection made a page noticeably dearer than at 1k.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA foreign_keys=ON; \
         PRAGMA cache_size=-{CACHE_KIB}; PRAGMA mmap_size={MMAP_BYTES};"
    ))
    .map_err(DbErr::from)?;
    Ok(conn)
}

/// Records a nonce unless a live record of it exists (an expired one is taken over); changes one row if it did.
pub(crate) const INSERT_NONCE: &str = "INSERT INTO nonces (access_key_id, nonce, expires_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (access_key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
     WHERE nonces.expires_at <= ?4";
/// Counts a recorded nonce for its key.
pub(crate) const COUNT_NONCE: &str = "INSERT INTO nonce_counts (access_key_id, n) VALUES (?1, 1)
     ON CONFLICT (access_key_id) DO UPDATE SET n = nonce_counts.n + 1";

/// What a key holds and whether a nonce is live for it, in one statement (`?1` key, `?2` nonce, `?3` now).
pub(crate) const NONCE_STATE: &str = "SELECT (SELECT n FROM nonce_counts WHERE access_key_id = ?1), \
     EXISTS (SELECT 1 FROM nonces WHERE access_key_id = ?1 AND nonce = ?2 AND expires_at > ?3)";

/// The answer to a check from [`NONCE_STATE`]'s row and the key's records not yet committed (`pending`): a replay
/// is reported as one whatever the count; `None` when the nonce is new and may be recorded.
pub(crate) fn nonce_verdict(rows: &[sql::Row], pending: u64, cap: u64) -> Result<Option<NonceCheck>> {
    let row = rows.first().ok_or_else(|| Error::internal("store: no row from the replay check"))?;
    let held = match row.0.first() {
        Some(sql::Val::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0, // NULL: the key holds none
    };
    Ok(if row.int(1)? != 0 {
        Some(NonceCheck::Used)
    } else if held + pending >= cap {
        Some(NonceCheck::Full)
    } else {
        None
    })
}

/// `Store::use_nonce` in one transaction (PostgreSQL: replicas see each other's records at once).
fn record_nonce(
    c: &Conn,
    access_key_id: &str,
    nonce: &str,
    now_ms: i64,
    expires_at_ms: i64,
    cap: u64,
) -> Result<NonceCheck> {
    if let Some(v) = nonce_verdict(&c.query(NONCE_STATE, vals![access_key_id, nonce, now_ms])?, 0, cap)? {
        return Ok(v);
    }
    // Zero rows: another replica recorded it since.
    if c.execute(INSERT_NONCE, vals![access_key_id, nonce, expires_at_ms, now_ms])? == 0 {
        return Ok(NonceCheck::Used);
    }
    c.execute(COUNT_NONCE, vals![access_key_id])?;
    Ok(NonceCheck::New)
}

fn poisoned() -> Error {
    Error::internal("store: connection lock poisoned")
}

/// The file holding a SQLite database's replay records: its name with `-replay` appended, as SQLite appends `-wal`.
pub fn replay_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push("-replay");
    path.with_file_name(name)
}

/// A connection to the database at `path` with its replay file attached as `replay`.
fn open_attached(path: &Path) -> Result<Connection> {
    let conn = open_connection(path, "FULL")?;
    conn.execute("ATTACH DATABASE ?1 AS replay", [replay_path(path).to_string_lossy()]).map_err(DbErr::from)?;
    conn.execute_batch("PRAGMA replay.synchronous=FULL; PRAGMA replay.wal_autocheckpoint=0;").map_err(DbErr::from)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating and migrating if needed) the SQLite database at `path`, and its replay file.
    pub fn open(path: &Path) -> Result<Store> {
        // The replay file changes with every batch, and a reader maps it anew after each change; mapped, its pages
        // would also count as the process's memory as it fills (up to two signature windows of nonces). No map.
        let replay_conn = || -> Result<Connection> {
            let c = open_connection(&replay_path(path), "FULL")?;
            c.execute_batch("PRAGMA mmap_size=0; PRAGMA wal_autocheckpoint=0;").map_err(DbErr::from)?;
            Ok(c)
        };
        let mut replay = replay_conn()?;
        schema::prepare_replay(&mut replay)?;
        let (nonce_writer, nonce_reader) = (replay_conn()?, replay_conn()?);
        schema::migrate_sqlite(&mut open_attached(path)?)?;
        // Opened after the migration so that it plans with the statistics the migration wrote.
        // Not attached: `BEGIN IMMEDIATE` takes the write lock of every attached file, so the writer would queue
        // behind the replay writer's open batch.
        let writer = open_connection(path, "FULL")?;
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(DbErr::from)?;
        // A first read opens (creates) the WAL, which the writer flushes itself (`group` says why); the file stays
        // while a connection is open.
        writer.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |_| Ok(())).map_err(DbErr::from)?;
        let mut wal_path = path.as_os_str().to_os_string();
        wal_path.push("-wal");
        let wal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&wal_path)
            .map_err(|e| Error::internal(format!("store: opening {}: {e}", Path::new(&wal_path).display())))?;
        // Checkpoints both files (a checkpoint without a schema name covers every attached database).
        let checkpoints = open_attached(path)?;
        checkpoints.busy_timeout(RESTART_WAIT).map_err(DbErr::from)?;
        let checkpointer = Checkpointer::start(checkpoints)?;
        let readers = (0..READERS).map(|_| open_attached(path).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(Store {
            keyring: None,
            docs: Default::default(),
            backend: Backend::Sqlite(Box::new(Sqlite {
                path: path.to_path_buf(),
                writer: group::GroupWriter::flushing(writer, wal)?,
                replay: group::GroupWriter::new(replay),
                nonces: replay::ReplayLog::start(nonce_writer, nonce_reader)?,
                readers,
                next_reader: AtomicUsize::new(0),
                version: Mutex::new(open_connection(path, "FULL")?),
                _checkpointer: checkpointer,
            })),
        })
    }

    /// Opens (creating the schema and migrating if needed) the PostgreSQL database at `url`
    /// (`postgres://user:password@host:port/database`, or `host=/run/postgresql dbname=…`).
    pub fn open_postgres(url: &str) -> Result<Store> {
        Ok(Store { backend: Backend::Pg(Box::new(pg::Pg::open(url)?)), keyring: None, docs: Default::default() })
    }

    /// A PostgreSQL URL or connection string ([`is_postgres_url`]) opens PostgreSQL; anything else is a SQLite file
    /// path (`sqlite:` in front is optional).
    pub fn open_url(url: &str) -> Result<Store> {
        if is_postgres_url(url) {
            Store::open_postgres(url)
        } else {
            Store::open(Path::new(url.strip_prefix("sqlite:").unwrap_or(url)))
        }
    }

    /// Seals secrets with `keyring` from now on (and opens values sealed with it or its previous keys).
    pub fn with_keyring(mut self, keyring: Arc<Keyring>) -> Store {
        self.keyring = Some(keyring);
        // What was decoded without it may have kept sealed values sealed.
        self.docs = Default::default();
        self
    }

    /// Runs `f` with this store's keyring active on the thread.
    fn sealed<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.keyring {
            Some(k) => with_keyring(k, f),
            None => f(),
        }
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Pg(_) => "postgres",
        }
    }

    /// Whether other processes share this store (replicas on PostgreSQL), so that what one process keeps in memory
    /// another would not see.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// SQLite's group commit so far, of the database and the replay file together: (commits, writes they carried).
    /// `None` on PostgreSQL.
    pub fn commit_stats(&self) -> Option<(u64, u64)> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let stats = [s.writer.stats(), s.replay.stats(), s.nonces.stats()];
                Some(stats.iter().fold((0, 0), |(c, w), (c2, w2)| (c + c2, w + w2)))
            }
            Backend::Pg(_) => None,
        }
    }

    /// Used nonces a SQLite store remembers in memory (each costs a few dozen bytes until it expires; `replay.rs`);
    /// `None` on PostgreSQL, which keeps them in the database.
    pub fn remembered_nonces(&self) -> Option<u64> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s.nonces.remembered()),
            Backend::Pg(_) => None,
        }
    }

    /// Where the data is, without credentials.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite(s) => s.path.display().to_string(),
            Backend::Pg(p) => p.display.clone(),
        }
    }

    /// Runs `f` in a write transaction; commits if it returns `Ok`, rolls back otherwise.
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.write_inner(true, f)
    }

    /// Runs `f` in a write transaction and always rolls back (DryRun: validate everything, change nothing).
    pub fn write_rollback<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.write_inner(false, f)
    }

    fn write_inner<T>(&self, commit: bool, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.sealed(|| self.write_unsealed(commit, f))
    }

    fn write_unsealed<T>(&self, commit: bool, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.write(commit, |c| f(&Tx::new(Conn::Sqlite(c), true, &self.docs))),
            Backend::Pg(p) => p.write(commit, |c| f(&Tx::new(Conn::Pg(c.into()), true, &self.docs))),
        }
    }

    /// A number that changes whenever anything is committed to the database, by this process or another (not when
    /// a nonce is recorded: the replay records have their own file). What was read after it was `v` is current
    /// while it is still `v`: read it before the data it vouches for. `None` on PostgreSQL (replicas would need a
    /// shared counter that every write transaction updates, serialising them) and when SQLite cannot answer.
    pub fn data_version(&self) -> Option<i64> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let conn = s.version.lock().ok()?;
                // Starts and ends a read transaction: no page is read unless the WAL changed.
                let mut stmt = conn.prepare_cached("PRAGMA data_version").ok()?;
                stmt.query_row([], |r| r.get(0)).ok()
            }
            Backend::Pg(_) => None,
        }
    }

    /// Runs `f` on a consistent read snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.sealed(|| self.read_unsealed(f))
    }

    fn read_unsealed<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let i = s.next_reader.fetch_add(1, Ordering::Relaxed) % s.readers.len();
                let mut conn = s.readers[i].lock().map_err(|_| poisoned())?;
                let txn = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(DbErr::from)?;
                let out = f(&Tx::new(Conn::Sqlite(&txn), false, &self.docs));
                // A read-only transaction has nothing to commit; ending it releases the snapshot.
                txn.rollback().map_err(DbErr::from)?;
                out
            }
            Backend::Pg(p) => p.read(|c| f(&Tx::new(Conn::Pg(c.into()), false, &self.docs))),
        }
    }

    /// A short write of its own (nonces, leases), committed unless `f` fails.
    fn small<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.write(true, |c| f(&Conn::Sqlite(c))),
            Backend::Pg(p) => p.small(|c| f(&Conn::Pg(c.into()))),
        }
    }

    /// Like [`Store::small`], for the replay records (on SQLite, in their own file).
    pub(crate) fn small_replay<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(s) => s.replay.write(true, |c| f(&Conn::Sqlite(c))),
            Backend::Pg(p) => p.small(|c| f(&Conn::Pg(c.into()))),
        }
    }

    // ---- rate limits shared by replicas -------------------------------------------------------------------------

    /// Takes one token from each bucket `(key, per_second, burst)`, all or none, in one short transaction every
    /// replica sees: `Ok(None)` when taken, `Ok(Some((index, retry_after_ms)))` naming the first empty bucket.
    /// Buckets are kept in thousandths of a token; a missing bucket is full.
    pub fn take_tokens(&self, buckets: &[(&str, f64, f64)], now_ms: i64) -> Result<Option<(usize, u64)>> {
        self.small(|c| {
            let mut next = Vec::with_capacity(buckets.len());
            for (i, (key, per_second, burst)) in buckets.iter().enumerate() {
                let burst_milli = (burst * 1000.0) as i64;
                // Creating the row first makes the UPDATE below lock it on PostgreSQL, so replicas take turns.
                c.execute(
                    "INSERT INTO rate_buckets (key, milli, at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
                    vals![*key, burst_milli, now_ms],
                )?;
                c.execute("UPDATE rate_buckets SET milli = milli WHERE key = ?1", vals![*key])?;
                let row = c.query("SELECT milli, at_ms FROM rate_buckets WHERE key = ?1", vals![*key])?;
                let (milli, at) = match row.first() {
                    Some(r) => (r.int(0)?, r.int(1)?),
                    None => (burst_milli, now_ms),
                };
                // One token per second is one thousandth per millisecond.
                let elapsed = (now_ms - at).max(0) as f64;
                let have = (milli as f64 + elapsed * per_second).min(burst_milli as f64);
                if have < 1000.0 {
                    let wait = ((1000.0 - have) / per_second).ceil().max(1.0) as u64;
                    return Ok(Some((i, wait)));
                }
                next.push((*key, (have - 1000.0) as i64));
            }
            for (key, milli) in next {
                c.execute("UPDATE rate_buckets SET milli = ?1, at_ms = ?2 WHERE key = ?3", vals![milli, now_ms, key])?;
            }
            Ok(None)
        })
    }

    /// Forgets buckets untouched since `before_ms` (they would be full again anyway).
    pub fn purge_rate_buckets(&self, before_ms: i64) -> Result<u64> {
        self.small(|c| Ok(c.execute("DELETE FROM rate_buckets WHERE at_ms < ?1", vals![before_ms])?))
    }

    // ---- replay protection ------------------------------------------------------------------------------------

    /// Records the first use of `nonce` by `access_key_id` until `expires_at_ms`, atomically: `Used` if it was
    /// recorded before and has not expired; `Full` (nothing recorded) when the key already has `cap` remembered
    /// nonces. Every process sharing the store sees the same answer; the record survives restarts.
    pub fn use_nonce(
        &self,
        access_key_id: &str,
        nonce: &str,
        now_ms: i64,
        expires_at_ms: i64,
        cap: u64,
    ) -> Result<NonceCheck> {
        let (check, durable) = self.use_nonce_deferred(access_key_id, nonce, now_ms, expires_at_ms, cap)?;
        durable.wait()?;
        Ok(check)
    }

    /// Like [`Store::use_nonce`], but returns as soon as the answer is known, with a [`Durable`] to wait on before
    /// answering the request: the request's own work overlaps the record's commit. Later checks see the record at
    /// once, committed or not.
    pub fn use_nonce_deferred(
        &self,
        access_key_id: &str,
        nonce: &str,
        now_ms: i64,
        expires_at_ms: i64,
        cap: u64,
    ) -> Result<(NonceCheck, Durable)> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (check, batch) = s.nonces.check(access_key_id, nonce, now_ms, expires_at_ms, cap)?;
                Ok((check, Durable(batch)))
            }
            Backend::Pg(p) => {
                let check =
                    p.small(|c| record_nonce(&Conn::Pg(c.into()), access_key_id, nonce, now_ms, expires_at_ms, cap))?;
                Ok((check, Durable(None)))
            }
        }
    }

    /// Forgets the nonces remembered for an access key (once it is deleted they can never be used again).
    pub fn forget_nonces(&self, access_key_id: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.nonces.forget(access_key_id);
                self.small_replay(|c| {
                    c.execute("DELETE FROM nonce_log WHERE access_key_id = ?1", vals![access_key_id])?;
                    Ok(())
                })
            }
            Backend::Pg(_) => self.small_replay(|c| {
                c.execute("DELETE FROM nonces WHERE access_key_id = ?1", vals![access_key_id])?;
                c.execute("DELETE FROM nonce_counts WHERE access_key_id = ?1", vals![access_key_id])?;
                Ok(())
            }),
        }
    }

    /// Forgets nonces that expired by `now_ms` and recounts what each key holds; returns how many were removed.
    pub fn purge_nonces(&self, now_ms: i64) -> Result<u64> {
        match &self.backend {
            // The log is in arrival order: what went before the first live record has expired (a record that
            // expires early behind a later one, after the clock stepped back, waits for it).
            Backend::Sqlite(s) => {
                s.nonces.expire(now_ms);
                self.small_replay(|c| {
                    Ok(c.execute(
                        "DELETE FROM nonce_log WHERE rowid < COALESCE((SELECT rowid FROM nonce_log \
                         WHERE expires_at > ?1 ORDER BY rowid LIMIT 1), 9223372036854775807)",
                        vals![now_ms],
                    )?)
                })
            }
            Backend::Pg(_) => self.small_replay(|c| {
                let n = c.execute("DELETE FROM nonces WHERE expires_at <= ?1", vals![now_ms])?;
                c.execute(
                    "UPDATE nonce_counts SET n = (SELECT COUNT(*) FROM nonces WHERE nonces.access_key_id = \
                     nonce_counts.access_key_id)",
                    &[],
                )?;
                c.execute("DELETE FROM nonce_counts WHERE n = 0", &[])?;
                Ok(n)
            }),
        }
    }

    /// The replay records were written behind the check's back (a restore).
    pub(crate) fn replay_records_changed(&self) {
        if let Backend::Sqlite(s) = &self.backend {
            s.nonces.reload();
        }
    }

    // ---- leases -----------------------------------------------------------------------------------------------

    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`; true when `holder` holds it. On
    /// PostgreSQL another holder's unexpired lease is respected (one reconciler among replicas); a SQLite database
    /// belongs to one process, so its lease is always taken (a restarted process does not wait for its
    /// predecessor's to expire).
    pub fn acquire_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let exclusive = matches!(self.backend, Backend::Pg(_));
        self.small(|c| {
            let upsert = "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at";
            let until = now_ms.saturating_add(ttl_ms);
            let n = if exclusive {
                c.execute(
                    &format!("{upsert} WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4"),
                    vals![name, holder, until, now_ms],
                )?
            } else {
                c.execute(upsert, vals![name, holder, until])?
            };
            Ok(n == 1)
        })
    }

    /// Gives the lease up (a clean shutdown), so another process need not wait for it to expire.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.small(|c| {
            c.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", vals![name, holder])?;
            Ok(())
        })
    }

    /// Who holds the lease `name` now, if anyone.
    pub fn lease_holder(&self, name: &str, now_ms: i64) -> Result<Option<String>> {
        self.small(|c| {
            let rows = c.query("SELECT holder FROM leases WHERE name = ?1 AND expires_at > ?2", vals![name, now_ms])?;
            rows.first().map(|r| r.text(0)).transpose()
        })
    }
}

/// Whether `url` names a PostgreSQL database: a `postgres://` / `postgresql://` URL or a key-value connection
/// string (`host=/run/postgresql dbname=openvgw`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://")
        || url.starts_with("postgresql://")
        || url.split_whitespace().any(|kv| kv.starts_with("host=") || kv.starts_with("dbname="))
}
