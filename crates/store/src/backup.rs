//! Online logical backup and restore, the same for both backends: JSON lines, one per stored row, taken in one read
//! snapshot while the service runs. Values are copied as stored (documents and secrets are not decoded), so a dump
//! is exactly as sensitive as the database it came from.
//!
//! ```text
//! {"format":"openvgw-backup","version":1,"schema":4,"backend":"sqlite","tables":[…]}
//! {"table":"tenants","row":["tnt-…","default",1700000000000,"{…}"]}
//! …
//! {"end":true,"rows":123}
//! ```
//!
//! Rows are listed table by table in a fixed column order (the header names the columns of each table), parents
//! before children. Leases are not copied: they belong to the processes that held them.

use std::io::{BufRead, Write};

use openvgw_core::{Error, Result};
use serde_json::{json, Value};

use crate::sql::{Row, Val};
use crate::{Store, Tx};

/// The value of the header's `format` field.
pub const BACKUP_FORMAT: &str = "openvgw-backup";
/// The layout version of the dump itself (independent of the schema version it records).
const LAYOUT: i64 = 1;

/// Tables in restore order, each with its columns and the order rows are dumped in.
const TABLES: &[(&str, &[&str], &str)] = &[
    ("tenants", &["id", "name", "created_at", "doc"], "id"),
    ("access_keys", &["id", "tenant_id", "secret", "created_at"], "id"),
    ("iam_users", &["id", "tenant_id", "name", "password_hash", "created_at"], "id"),
    ("tokens", &["digest", "tenant_id", "user_id", "region", "issued_at", "expires_at"], "digest"),
    ("operators", &["name", "password_hash", "created_at"], "name"),
    ("console_sessions", &["digest", "principal", "csrf", "issued_at", "expires_at"], "digest"),
    ("agent_ca", &["id", "cert_pem", "key_pem"], "id"),
    ("agent_tokens", &["digest", "created_at", "expires_at"], "digest"),
    ("agents", &["id", "name", "serial", "joined_at", "revoked_at"], "id"),
    ("agent_placements", &["gateway_id", "agent_id", "vpc_id", "placed_at"], "gateway_id"),
    ("resources", &["seq", "kind", "id", "tenant_id", "region", "parent_id", "name", "created_at", "doc"], "seq"),
    ("resource_keys", &["kind", "key", "value", "id"], "kind, key, value, id"),
    ("tags", &["tenant_id", "region", "resource_kind", "resource_id", "key", "value", "seq"], "resource_id, key"),
    (
        "idempotency",
        &["tenant_id", "action", "token", "params_hash", "result", "created_at"],
        "tenant_id, action, token",
    ),
    ("addresses", &["pool", "address", "owner_id"], "pool, address"),
    ("events", &["seq", "resource_id", "at", "message"], "seq"),
    ("nonces", &["access_key_id", "nonce", "expires_at"], "access_key_id, nonce"),
    ("nonce_counts", &["access_key_id", "n"], "access_key_id"),
];

/// What a backup wrote or a restore read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Rows per table, in [`TABLES`] order.
    pub tables: Vec<(String, u64)>,
}

impl BackupSummary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::internal(format!("backup: {e}"))
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::internal(format!("restore: {msg}"))
}

fn select(table: &str, columns: &[&str], order: &str) -> String {
    format!("SELECT {} FROM {table} ORDER BY {order}", columns.join(", "))
}

impl Store {
    /// Writes every table to `out` from one read snapshot (the service may keep running).
    pub fn backup(&self, out: &mut dyn Write) -> Result<BackupSummary> {
        let backend = self.backend();
        self.read(|tx| {
            let header = json!({
                "format": BACKUP_FORMAT,
                "version": LAYOUT,
                "schema": crate::schema::VERSION,
                "backend": backend,
                "created_at": openvgw_core::now_ms(),
                "tables": TABLES.iter().map(|(t, cols, _)| json!({"name": t, "columns": cols})).collect::<Vec<_>>(),
            });
            writeln!(out, "{header}").map_err(io_err)?;
            let mut summary = BackupSummary { tables: Vec::new() };
            for (table, columns, order) in TABLES {
                let rows = tx.rows(&select(table, columns, order), &[])?;
                for Row(vals) in &rows {
                    let row: Vec<Value> = vals.iter().map(Val::to_json).collect();
                    writeln!(out, "{}", json!({"table": table, "row": row})).map_err(io_err)?;
                }
                summary.tables.push((table.to_string(), rows.len() as u64));
            }
            writeln!(out, "{}", json!({"end": true, "rows": summary.rows()})).map_err(io_err)?;
            out.flush().map_err(io_err)?;
            Ok(summary)
        })
    }

    /// Loads a dump written by [`Store::backup`] (either backend) into this store, in one transaction. Refuses a
    /// store that holds anything already, a dump of another schema version, and a truncated dump.
    pub fn restore(&self, input: &mut dyn BufRead) -> Result<BackupSummary> {
        let mut lines = input.lines();
        let header: Value = match lines.next() {
            Some(line) => serde_json::from_str(&line.map_err(io_err)?).map_err(|e| bad(format!("header: {e}")))?,
            None => return Err(bad("the input is empty")),
        };
        if header["format"] != BACKUP_FORMAT || header["version"] != LAYOUT {
            return Err(bad("the input is not an openvgw backup of a layout this version reads"));
        }
        if header["schema"] != crate::schema::VERSION {
            return Err(bad(format!(
                "the backup has schema {}, this openvgw writes schema {}; restore it with the openvgw that wrote it",
                header["schema"],
                crate::schema::VERSION
            )));
        }
        // Readers see every table, the replay file's included.
        self.read(|tx| refuse_non_empty(tx, false))?;
        // On SQLite the replay tables are in their own file, which the writer does not attach: their rows are
        // written there once the rest has committed.
        let mut replay_rows: Vec<(&str, &[&str], Vec<Val>)> = Vec::new();
        let summary = self.write(|tx| {
            let split = !tx.is_postgres();
            refuse_non_empty(tx, split)?;
            let mut counts: Vec<u64> = vec![0; TABLES.len()];
            let mut ended = false;
            for line in lines.by_ref() {
                let line = line.map_err(io_err)?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&line).map_err(|e| bad(format!("line: {e}")))?;
                if v["end"] == true {
                    if v["rows"] != counts.iter().sum::<u64>() {
                        return Err(bad("the row count at the end does not match the rows read"));
                    }
                    ended = true;
                    break;
                }
                let table = v["table"].as_str().ok_or_else(|| bad("a line names no table"))?;
                let i = TABLES.iter().position(|(t, _, _)| *t == table).ok_or_else(|| bad(format!("table {table}")))?;
                let (_, columns, _) = TABLES[i];
                let row = v["row"].as_array().ok_or_else(|| bad("a line has no row"))?;
                if row.len() != columns.len() {
                    return Err(bad(format!("a row of {table} has {} values, not {}", row.len(), columns.len())));
                }
                let args = row.iter().map(Val::from_json).collect::<Option<Vec<_>>>().ok_or_else(|| bad("a value"))?;
                if split && REPLAY_TABLES.contains(&table) {
                    replay_rows.push((TABLES[i].0, columns, args));
                } else {
                    tx.exec(&insert(table, columns), &args)?;
                }
                counts[i] += 1;
            }
            if !ended {
                return Err(bad("the input ends before its end marker (truncated?)"));
            }
            if tx.is_postgres() {
                // Explicit ids do not move PostgreSQL's sequences; new rows must continue after the restored ones.
                for table in ["resources", "events"] {
                    tx.rows(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), \
                             COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"
                        ),
                        &[],
                    )?;
                }
            }
            Ok(BackupSummary { tables: TABLES.iter().map(|(t, _, _)| t.to_string()).zip(counts).collect() })
        })?;
        if !replay_rows.is_empty() {
            self.small_replay(|c| {
                for (table, columns, args) in &replay_rows {
                    c.execute(&insert(table, columns), args)?;
                }
                Ok(())
            })?;
            self.replay_records_changed();
        }
        Ok(summary)
    }
}

/// The tables of replay records (on SQLite in their own file: `Sqlite::replay`).
const REPLAY_TABLES: &[&str] = &["nonces", "nonce_counts"];

fn insert(table: &str, columns: &[&str]) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
    format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), placeholders.join(", "))
}

/// Refuses a store holding anything; `skip_replay` leaves out the replay tables (a connection that cannot see them).
fn refuse_non_empty(tx: &Tx, skip_replay: bool) -> Result<()> {
    for (table, _, _) in TABLES.iter().filter(|(t, _, _)| !(skip_replay && REPLAY_TABLES.contains(t))) {
        if !tx.rows(&format!("SELECT 1 FROM {table} LIMIT 1"), &[])?.is_empty() {
            return Err(bad(format!(
                "the target store is not empty (table {table} has rows); restore into a new database"
            )));
        }
    }
    Ok(())
}
