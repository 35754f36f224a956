//! Schema and migrations. Each migration runs once, in order, inside a transaction.

use openvgw_core::{Error, Result};

use crate::sql::{ddl_to_pg, DbErr, PgConn, Val};

/// The numbered migrations; the list index + 1 is the version recorded in `schema_version`.
const MIGRATIONS: &[Migration] = &[
    Migration::Same(
        r#"
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    region TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    lookup_key TEXT,
    created_at INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX resources_lookup ON resources (tenant_id, region, kind, lookup_key);
CREATE INDEX resources_scope ON resources (tenant_id, region, kind, seq);
CREATE INDEX resources_parent ON resources (parent_id, kind, seq);
CREATE INDEX resources_kind ON resources (kind, seq);
CREATE TABLE tags (
    tenant_id TEXT NOT NULL,
    region TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (resource_id, key)
);
CREATE INDEX tags_scope ON tags (tenant_id, region, resource_kind, key);
CREATE TABLE idempotency (
    tenant_id TEXT NOT NULL,
    action TEXT NOT NULL,
    token TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, action, token)
);
CREATE INDEX idempotency_age ON idempotency (created_at);
CREATE TABLE addresses (
    pool TEXT NOT NULL,
    address TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    PRIMARY KEY (pool, address)
);
CREATE INDEX addresses_owner ON addresses (owner_id);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX events_resource ON events (resource_id, at);
"#,
    ),
    // 2: typed secondary keys replace the single lookup column; resources get an updated-at column.
    Migration::Same(
        r#"
CREATE TABLE resource_keys (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (kind, key, value, id)
);
CREATE INDEX resource_keys_id ON resource_keys (id);
DROP INDEX resources_lookup;
ALTER TABLE resources DROP COLUMN lookup_key;
CREATE INDEX resources_name ON resources (tenant_id, region, kind, name);
CREATE INDEX tags_binding ON tags (tenant_id, region, resource_kind, resource_id, key);
"#,
    ),
    // 3: IAM users (password sign-in for token auth) and the tokens issued to them.
    Migration::Same(
        r#"
CREATE TABLE iam_users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE tokens (
    digest TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    region TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX tokens_expiry ON tokens (expires_at);
"#,
    ),
    // 4: durable replay protection shared by every replica (used nonces per access key, with a per-key count so the
    // cap is checked without counting rows), and leases (one reconciler at a time).
    Migration::Same(
        r#"
CREATE TABLE nonces (
    access_key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (access_key_id, nonce)
);
CREATE INDEX nonces_expiry ON nonces (expires_at);
CREATE TABLE nonce_counts (
    access_key_id TEXT PRIMARY KEY,
    n INTEGER NOT NULL
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
"#,
    ),
    // 5: rate-limit buckets shared by replicas (PostgreSQL: unlogged, as losing them in a crash only refills them).
    Migration::Split {
        sqlite: "CREATE TABLE rate_buckets (key TEXT PRIMARY KEY, milli INTEGER NOT NULL, at_ms INTEGER NOT NULL);",
        pg: "CREATE UNLOGGED TABLE rate_buckets (key TEXT PRIMARY KEY, milli BIGINT NOT NULL, at_ms BIGINT NOT NULL);",
    },
    // 6: resources per scope and kind (parent_id '') and per parent, kept by triggers, so that quota checks and the
    // totals every list returns cost one lookup instead of a scan of the scope (creates slowed as data grew).
    Migration::SameThenSplit {
        same: r#"
CREATE TABLE resource_counts (
    tenant_id TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, region, kind, parent_id)
);
INSERT INTO resource_counts SELECT tenant_id, region, kind, '', COUNT(*) FROM resources GROUP BY 1, 2, 3;
INSERT INTO resource_counts SELECT tenant_id, region, kind, parent_id, COUNT(*) FROM resources
    WHERE parent_id IS NOT NULL AND parent_id <> '' GROUP BY 1, 2, 3, 4;
"#,
        sqlite: r#"
CREATE TRIGGER resource_counts_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts SELECT NEW.tenant_id, NEW.region, NEW.kind, '', 1 WHERE true
        ON CONFLICT (tenant_id, region, kind, parent_id) DO UPDATE SET n = n + 1;
    INSERT INTO resource_counts SELECT NEW.tenant_id, NEW.region, NEW.kind, NEW.parent_id, 1
        WHERE NEW.parent_id IS NOT NULL AND NEW.parent_id <> ''
        ON CONFLICT (tenant_id, region, kind, parent_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER resource_counts_delete AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND region = OLD.region
        AND kind = OLD.kind AND parent_id IN ('', COALESCE(OLD.parent_id, ''));
END;
CREATE TRIGGER resource_counts_reparent AFTER UPDATE OF parent_id ON resources
    WHEN OLD.parent_id IS NOT NEW.parent_id BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND region = OLD.region
        AND kind = OLD.kind AND parent_id = OLD.parent_id AND OLD.parent_id <> '';
    INSERT INTO resource_counts SELECT NEW.tenant_id, NEW.region, NEW.kind, NEW.parent_id, 1
        WHERE NEW.parent_id IS NOT NULL AND NEW.parent_id <> ''
        ON CONFLICT (tenant_id, region, kind, parent_id) DO UPDATE SET n = n + 1;
END;
"#,
        pg: r#"
CREATE FUNCTION resource_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE resource_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND region = OLD.region
            AND kind = OLD.kind AND parent_id IN ('', COALESCE(OLD.parent_id, ''));
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        UPDATE resource_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND region = OLD.region
            AND kind = OLD.kind AND parent_id = OLD.parent_id AND OLD.parent_id <> '';
    ELSE
        INSERT INTO resource_counts VALUES (NEW.tenant_id, NEW.region, NEW.kind, '', 1)
            ON CONFLICT (tenant_id, region, kind, parent_id) DO UPDATE SET n = resource_counts.n + 1;
    END IF;
    IF NEW.parent_id IS NOT NULL AND NEW.parent_id <> '' THEN
        INSERT INTO resource_counts VALUES (NEW.tenant_id, NEW.region, NEW.kind, NEW.parent_id, 1)
            ON CONFLICT (tenant_id, region, kind, parent_id) DO UPDATE SET n = resource_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER resource_counts_insert_delete AFTER INSERT OR DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION resource_counts_apply();
CREATE TRIGGER resource_counts_reparent AFTER UPDATE OF parent_id ON resources
    FOR EACH ROW WHEN (OLD.parent_id IS DISTINCT FROM NEW.parent_id) EXECUTE FUNCTION resource_counts_apply();
"#,
    },
    // 7: the console's operators (password hashes) and sessions (digests of their cookies).
    Migration::Same(
        r#"
CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE console_sessions (
    digest TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    csrf TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
"#,
    ),
    // 8: gateway hosts (`openvgw agent`): the CA that certifies them and the control plane (one row; its key
    // sealed), digests of unused join tokens, and the agents that joined.
    Migration::Same(
        r#"
CREATE TABLE agent_ca (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL
);
CREATE TABLE agent_tokens (
    digest TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    serial TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    revoked_at INTEGER
);
"#,
    ),
    // 9: which agent holds which gateway, with the gateway's VPC.
    Migration::Same(
        r#"
CREATE TABLE agent_placements (
    gateway_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    placed_at INTEGER NOT NULL
);
"#,
    ),
];

/// Documents written before version 2 use the Alibaba-shaped model; they are not converted.
const FIRST_NEUTRAL_VERSION: i64 = 2;

/// One schema change, in SQLite's DDL ([`ddl_to_pg`] derives PostgreSQL's), or per backend where they differ.
enum Migration {
    Same(&'static str),
    Split {
        sqlite: &'static str,
        pg: &'static str,
    },
    /// DDL both share (`same`, converted for PostgreSQL), then each backend's own (triggers differ).
    SameThenSplit {
        same: &'static str,
        sqlite: &'static str,
        pg: &'static str,
    },
}

impl Migration {
    fn sqlite(&self) -> String {
        match self {
            Migration::Same(s) | Migration::Split { sqlite: s, .. } => s.to_string(),
            Migration::SameThenSplit { same, sqlite, .. } => format!("{same}{sqlite}"),
        }
    }

    fn pg(&self) -> String {
        match self {
            Migration::Same(s) => ddl_to_pg(s),
            Migration::Split { pg, .. } => pg.to_string(),
            Migration::SameThenSplit { same, pg, .. } => format!("{}{pg}", ddl_to_pg(same)),
        }
    }
}

/// The replay records of a SQLite store, in their own file (`Sqlite::replay` in lib.rs says why): a log in arrival
/// order without an index (`replay.rs` says why), and views under the names the tables had (and still have on
/// PostgreSQL) for backups, restores and tests. Migration 4 made the tables in the database itself;
/// [`migrate_sqlite`] moves what they hold here and drops them, so later migrations must not touch them on SQLite.
const NONCE_LOG: &str = "
CREATE TABLE IF NOT EXISTS nonce_log (
    access_key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// The views over [`NONCE_LOG`] under the old tables' names.
const REPLAY_VIEWS: &str = "
CREATE VIEW IF NOT EXISTS nonces (access_key_id, nonce, expires_at) AS
    SELECT access_key_id, nonce, MAX(expires_at) FROM nonce_log GROUP BY access_key_id, nonce;
CREATE VIEW IF NOT EXISTS nonce_counts (access_key_id, n) AS
    SELECT access_key_id, COUNT(*) FROM nonces GROUP BY access_key_id;
CREATE TRIGGER IF NOT EXISTS nonces_insert INSTEAD OF INSERT ON nonces BEGIN
    INSERT INTO nonce_log (access_key_id, nonce, expires_at) VALUES (NEW.access_key_id, NEW.nonce, NEW.expires_at);
END;
CREATE TRIGGER IF NOT EXISTS nonce_counts_insert INSTEAD OF INSERT ON nonce_counts BEGIN
    SELECT 1;
END;
";

/// A replay file of the layout before the log (a table keyed by key and nonce, and a table of counts): its records
/// move to the log, in expiry order, and the tables go.
const REPLAY_TABLES_TO_LOG: &str = "
INSERT INTO nonce_log (access_key_id, nonce, expires_at)
    SELECT access_key_id, nonce, expires_at FROM nonces ORDER BY expires_at;
DROP TABLE nonces;
DROP TABLE IF EXISTS nonce_counts;
";

/// Makes the replay file's layout current (`conn` is a connection to that file alone).
pub(crate) fn prepare_replay(conn: &mut rusqlite::Connection) -> Result<()> {
    let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(DbErr::from)?;
    txn.execute_batch(NONCE_LOG).map_err(DbErr::from)?;
    let tables: i64 = txn
        .query_row("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'nonces'", [], |r| r.get(0))
        .map_err(DbErr::from)?;
    if tables > 0 {
        txn.execute_batch(REPLAY_TABLES_TO_LOG).map_err(DbErr::from)?;
    }
    txn.execute_batch(REPLAY_VIEWS).map_err(DbErr::from)?;
    txn.commit().map_err(DbErr::from)?;
    Ok(())
}

/// Moves migration 4's replay tables from the database into the attached replay file's log.
const MOVE_REPLAY_SQLITE: &str = "
INSERT INTO replay.nonce_log (access_key_id, nonce, expires_at)
    SELECT access_key_id, nonce, expires_at FROM main.nonces ORDER BY expires_at;
DROP TABLE main.nonces;
DROP TABLE main.nonce_counts;
";

/// The number of the newest migration (backups record it).
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

fn refuse_old(current: i64, stored: i64) -> Result<()> {
    if (1..FIRST_NEUTRAL_VERSION).contains(&current) && stored > 0 {
        return Err(Error::internal(format!(
            "the database holds {stored} resources written by openvgw 0.1 (schema {current}), whose documents \
             this version does not read; start with a new data directory"
        )));
    }
    if current > VERSION {
        return Err(Error::internal(format!(
            "the database has schema {current}, newer than this openvgw knows ({VERSION}); upgrade openvgw"
        )));
    }
    Ok(())
}

pub(crate) fn migrate_sqlite(conn: &mut rusqlite::Connection) -> Result<()> {
    let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(DbErr::from)?;
    txn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").map_err(DbErr::from)?;
    let current: i64 =
        txn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0)).map_err(DbErr::from)?;
    if (1..FIRST_NEUTRAL_VERSION).contains(&current) {
        let stored: i64 = txn.query_row("SELECT COUNT(*) FROM resources", [], |r| r.get(0)).map_err(DbErr::from)?;
        refuse_old(current, stored)?;
    }
    refuse_old(current, 0)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        txn.execute_batch(&m.sqlite()).map_err(DbErr::from)?;
        txn.execute("INSERT INTO schema_version (version) VALUES (?1)", [i as i64 + 1]).map_err(DbErr::from)?;
    }
    let in_main: i64 = txn
        .query_row("SELECT COUNT(*) FROM main.sqlite_schema WHERE type = 'table' AND name = 'nonces'", [], |r| r.get(0))
        .map_err(DbErr::from)?;
    if in_main > 0 {
        txn.execute_batch(MOVE_REPLAY_SQLITE).map_err(DbErr::from)?;
    }
    txn.execute_batch(PLANNER_STATS).map_err(DbErr::from)?;
    txn.commit().map_err(DbErr::from)?;
    Ok(())
}

/// The statistics SQLite's planner sees, written at every open instead of measured (SQLite's "manual control of
/// query plans using sqlite_stat tables"): they describe a large store, so that plans are the ones that stay
/// cheap at any size, from the first row. Without statistics SQLite prefers the index with the most equality
/// columns, and walked a whole scope (tenant, region, kind) to find one customer gateway by address or the
/// connections of one gateway. Connections opened afterwards load them. Figures: rows, then rows per distinct
/// prefix of the index's columns.
const PLANNER_STATS: &str = "
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('resources', 'sqlite_autoindex_resources_1', '1000000 100000 1'),
    ('resources', 'resources_scope', '1000000 10000 5000 1000 1'),
    ('resources', 'resources_name', '1000000 10000 5000 1000 2'),
    ('resources', 'resources_parent', '1000000 20 10 1'),
    ('resources', 'resources_kind', '1000000 100000 1'),
    ('resource_keys', 'sqlite_autoindex_resource_keys_1', '1000000 100000 50000 2 1'),
    ('resource_keys', 'resource_keys_id', '1000000 2'),
    ('tags', 'sqlite_autoindex_tags_1', '100000 2 1'),
    ('tags', 'tags_scope', '100000 1000 500 100 20'),
    ('tags', 'tags_binding', '100000 1000 500 100 2 1');
";

/// Runs under the same advisory lock as every write, so replicas starting together migrate once.
pub(crate) fn migrate_pg(conn: &mut PgConn) -> Result<()> {
    let out = migrate_pg_in_tx(conn);
    match &out {
        Ok(()) => conn.batch("COMMIT")?,
        Err(_) => {
            let _ = conn.batch("ROLLBACK");
        }
    }
    out
}

fn migrate_pg_in_tx(conn: &mut PgConn) -> Result<()> {
    conn.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({})", crate::pg::WRITE_LOCK))?;
    conn.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let current = conn.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?;
    let current = current.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
    if (1..FIRST_NEUTRAL_VERSION).contains(&current) {
        let rows = conn.query("SELECT COUNT(*) FROM resources", &[])?;
        refuse_old(current, rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0))?;
    }
    refuse_old(current, 0)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        conn.batch(&m.pg())?;
        conn.execute("INSERT INTO schema_version (version) VALUES (?1)", &[Val::Int(i as i64 + 1)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// FNV-1a, 64 bits: the same on every Rust release (std's hasher is not).
    fn digest(text: &str) -> u64 {
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// Each migration as released. A store migrated by a release never runs an edited migration again, so a schema
    /// change is always a new migration; its digest is added here when it is released.
    const RELEASED: &[u64] = &[
        0xc1e4_7014_ff2c_424b,
        0x1697_6840_5350_be31,
        0x08b9_78b9_60ea_85e8,
        0x075a_6bc9_477b_f23e,
        0x5895_5de8_1c64_8078,
        0xb10f_279d_6be3_573a,
        0x05d5_9d27_f0b5_5a74,
        0xfe55_f149_2fa1_20ae,
        0xf4da_4ae4_e14f_9970,
    ];

    #[test]
    fn released_migrations_are_never_edited() {
        let now: Vec<u64> = MIGRATIONS.iter().map(|m| digest(&format!("{}\u{0}{}", m.sqlite(), m.pg()))).collect();
        for (i, (released, now)) in RELEASED.iter().zip(&now).enumerate() {
            assert_eq!(released, now, "migration {} changed after its release: add a new migration instead", i + 1);
        }
        assert!(now.len() >= RELEASED.len(), "a released migration was removed");
        assert_eq!(now.len(), RELEASED.len(), "pin the new migrations' digests: {:#x?}", &now[RELEASED.len()..]);
    }
}
