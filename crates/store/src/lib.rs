//! openvgw-store: durable state in an embedded SQLite database (WAL, `synchronous=FULL`).
//!
//! Resources are stored as JSON documents next to the columns every query filters on (tenant, region, kind,
//! parent, name) and their typed secondary keys (`resource_keys`), so the schema stays the same for every resource
//! type and for a future PostgreSQL backend. Lists page by offset or by a keyset cursor on the insertion sequence.
//! All writes happen inside one `BEGIN IMMEDIATE` transaction per request: a request either commits everything
//! it changed or nothing.

mod schema;
mod tx;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use openvgw_core::{Error, Result};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use tx::{Event, IdempotencyRecord, ListQuery, TagFilter, TaggedResource, Tx};

#[cfg(test)]
mod tests;

const READERS: usize = 4;

pub struct Store {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    Error::internal(format!("store: {e}"))
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    // Another process (`openvgw tenant create`) may hold the write lock briefly.
    conn.busy_timeout(Duration::from_secs(10)).map_err(sql_err)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;").map_err(sql_err)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let mut writer = open_connection(path)?;
        schema::migrate(&mut writer)?;
        let readers = (0..READERS).map(|_| open_connection(path).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(Store { writer: Mutex::new(writer), readers, next_reader: AtomicUsize::new(0) })
    }

    /// Runs `f` in a write transaction; commits if it returns `Ok`, rolls back otherwise.
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().map_err(|_| Error::internal("store writer lock poisoned"))?;
        let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
        let out = f(&Tx::new(&txn, true))?;
        txn.commit().map_err(sql_err)?;
        Ok(out)
    }

    /// Runs `f` in a write transaction and always rolls back (DryRun: validate everything, change nothing).
    pub fn write_rollback<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().map_err(|_| Error::internal("store writer lock poisoned"))?;
        let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
        let out = f(&Tx::new(&txn, true));
        txn.rollback().map_err(sql_err)?;
        out
    }

    /// Runs `f` on a consistent read snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let mut conn = self.readers[i].lock().map_err(|_| Error::internal("store reader lock poisoned"))?;
        let txn = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(sql_err)?;
        let out = f(&Tx::new(&txn, false));
        // A read-only transaction has nothing to commit; ending it releases the snapshot.
        txn.rollback().map_err(sql_err)?;
        out
    }
}
