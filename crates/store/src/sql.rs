//! The backend-neutral SQL layer. Statements are written once, in the dialect both SQLite and PostgreSQL accept,
//! with `?N` (or bare `?`) placeholders and `INSERT OR IGNORE`; for PostgreSQL they are rewritten to `$N` and
//! `ON CONFLICT DO NOTHING`. Values cross the boundary as [`Val`]: text, 64-bit integers and NULL are all the
//! schema uses, and PostgreSQL's columns are `BIGINT` so that an `i64` binds everywhere.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;

use openvgw_core::Error;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// One SQL value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

impl Val {
    /// The value as JSON (backups): integers as numbers, text as strings.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Int(i) => (*i).into(),
            Val::Text(s) => s.clone().into(),
        }
    }

    pub fn from_json(v: &serde_json::Value) -> Option<Val> {
        match v {
            serde_json::Value::Null => Some(Val::Null),
            serde_json::Value::Number(n) => n.as_i64().map(Val::Int),
            serde_json::Value::String(s) => Some(Val::Text(s.clone())),
            _ => None,
        }
    }
}

/// Builds a `&[Val]` argument list.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::sql::Val::from($v)),*][..] };
}
pub(crate) use vals;

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Val>);

fn column_err(i: usize, want: &str) -> Error {
    Error::internal(format!("store: column {i} is not {want}"))
}

impl Row {
    pub fn text(&self, i: usize) -> openvgw_core::Result<String> {
        match self.0.get(i) {
            Some(Val::Text(s)) => Ok(s.clone()),
            _ => Err(column_err(i, "text")),
        }
    }

    /// Like [`Row::text`], moving the value out (documents are large).
    pub fn take_text(&mut self, i: usize) -> openvgw_core::Result<String> {
        match self.0.get_mut(i) {
            Some(Val::Text(s)) => Ok(std::mem::take(s)),
            _ => Err(column_err(i, "text")),
        }
    }

    pub fn int(&self, i: usize) -> openvgw_core::Result<i64> {
        match self.0.get(i) {
            Some(Val::Int(n)) => Ok(*n),
            _ => Err(column_err(i, "an integer")),
        }
    }

    /// An integer column that may be NULL.
    pub fn opt_int(&self, i: usize) -> openvgw_core::Result<Option<i64>> {
        match self.0.get(i) {
            Some(Val::Int(n)) => Ok(Some(*n)),
            Some(Val::Null) => Ok(None),
            _ => Err(column_err(i, "an integer or NULL")),
        }
    }
}

/// A failed statement: whether it broke a uniqueness constraint (callers map that to `AlreadyExists`), and whether
/// the connection is gone (it is then dropped and opened again on next use).
#[derive(Debug)]
pub struct DbErr {
    pub unique: bool,
    pub broken: bool,
    pub message: String,
}

impl From<DbErr> for Error {
    fn from(e: DbErr) -> Error {
        Error::internal(format!("store: {}", e.message))
    }
}

impl From<rusqlite::Error> for DbErr {
    fn from(e: rusqlite::Error) -> DbErr {
        let unique = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation);
        DbErr { unique, broken: false, message: e.to_string() }
    }
}

impl From<postgres::Error> for DbErr {
    fn from(e: postgres::Error) -> DbErr {
        let unique = e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION);
        // A closed client, or an error that did not come from the server (I/O, protocol): the connection is gone.
        let broken = e.is_closed() || e.as_db_error().is_none();
        let message = match e.as_db_error() {
            Some(db) => format!("postgres: {}: {}", db.code().code(), db.message()),
            None => format!("postgres: {e}"),
        };
        DbErr { unique, broken, message }
    }
}

pub type DbResult<T> = std::result::Result<T, DbErr>;

/// Rewrites a statement for PostgreSQL: `?N` → `$N`, bare `?` → `$1, $2, …` in order, and
/// `INSERT OR IGNORE INTO …` → `INSERT INTO … ON CONFLICT DO NOTHING`. Quoted text is left alone.
pub fn to_pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut bare = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    out.push('$');
                } else {
                    bare += 1;
                    out.push('$');
                    out.push_str(&bare.to_string());
                }
            }
            _ => out.push(c),
        }
    }
    let trimmed = out.trim_start();
    match trimmed.strip_prefix("INSERT OR IGNORE INTO") {
        Some(rest) => format!("INSERT INTO{} ON CONFLICT DO NOTHING", rest.trim_end().trim_end_matches(';')),
        None => out,
    }
}

/// DDL for PostgreSQL: SQLite's `INTEGER PRIMARY KEY AUTOINCREMENT` becomes `BIGSERIAL PRIMARY KEY` and every
/// `INTEGER` a `BIGINT` (SQLite's integers are 64-bit; PostgreSQL's `INTEGER` is not).
pub fn ddl_to_pg(sql: &str) -> String {
    sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY").replace("INTEGER", "BIGINT")
}

// ---- SQLite ---------------------------------------------------------------------------------------------------

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

pub(crate) fn sqlite_query(conn: &rusqlite::Connection, sql: &str, args: &[Val]) -> DbResult<Vec<Row>> {
    use rusqlite::types::ValueRef;
    let mut stmt = conn.prepare_cached(sql)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(match r.get_ref(i)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(v) => Val::Int(v),
                ValueRef::Real(v) => Val::Int(v as i64),
                // Validating first is several times faster than the lossy iterator on the (always valid) documents.
                ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(match std::str::from_utf8(t) {
                    Ok(s) => s.to_owned(),
                    Err(_) => String::from_utf8_lossy(t).into_owned(),
                }),
            });
        }
        out.push(Row(vals));
    }
    Ok(out)
}

// ---- PostgreSQL -----------------------------------------------------------------------------------------------

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) => match *ty {
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            // PostgreSQL's text cannot hold NUL (SQLite's can). Documents never carry one (JSON escapes it), so
            // only a hostile id, name or key can: it is bound with U+FFFD instead, so that a lookup finds nothing
            // and a write stores the rest, as on SQLite, rather than failing the request.
            Val::Text(s) if s.contains('\0') => s.replace('\0', "\u{fffd}").to_sql(ty, out),
            Val::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Prepared statements are cached per connection; dynamic statements (lists with literal limits) could grow the
/// cache without end, so it starts over past this size.
const PG_STATEMENT_CACHE: usize = 512;

/// Settings of every PostgreSQL session the store opens. Plans are made for each call's values: a plan cached for
/// any values (a generic plan) is chosen from average selectivities, and two were seen going wrong as data grew —
/// the lookup of a customer gateway by address walked its whole scope, and a page of the 50 VPN gateways walked
/// the primary key in insertion order past the 100k customer gateways created before them (the primary key follows
/// the table's physical order, so it looks cheaper than the scope's index). Statements stay prepared (parsed once);
/// only planning is repeated.
pub const PG_SESSION: &str = "SET plan_cache_mode = force_custom_plan";

/// One PostgreSQL connection with its prepared statements.
pub struct PgConn {
    pub client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> Self {
        PgConn { client, statements: HashMap::new() }
    }

    fn statement(&mut self, sql: &str) -> DbResult<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(&to_pg(sql))?;
        if self.statements.len() >= PG_STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    pub fn execute(&mut self, sql: &str, args: &[Val]) -> DbResult<u64> {
        let stmt = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        Ok(self.client.execute(&stmt, &params)?)
    }

    pub fn query(&mut self, sql: &str, args: &[Val]) -> DbResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        self.client.query(&stmt, &params)?.iter().map(pg_row).collect()
    }

    pub fn batch(&mut self, sql: &str) -> DbResult<()> {
        Ok(self.client.batch_execute(sql)?)
    }
}

fn pg_row(row: &postgres::Row) -> DbResult<Row> {
    let mut vals = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let v = match *col.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int),
            Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map_or(Val::Null, |v| Val::Int(v.into())),
            Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map_or(Val::Null, |v| Val::Int(v.into())),
            Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map_or(Val::Null, |v| Val::Int(v.into())),
            _ => row.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text),
        };
        vals.push(v);
    }
    Ok(Row(vals))
}

// ---- one connection inside a transaction, either backend ------------------------------------------------------

pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Pg(RefCell<&'a mut PgConn>),
}

impl Conn<'_> {
    pub fn is_pg(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }

    pub fn execute(&self, sql: &str, args: &[Val]) -> DbResult<u64> {
        match self {
            Conn::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args.iter()))? as u64),
            Conn::Pg(c) => c.borrow_mut().execute(sql, args),
        }
    }

    pub fn query(&self, sql: &str, args: &[Val]) -> DbResult<Vec<Row>> {
        match self {
            Conn::Sqlite(c) => sqlite_query(c, sql, args),
            Conn::Pg(c) => c.borrow_mut().query(sql, args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_ignore_are_rewritten() {
        assert_eq!(to_pg("SELECT a FROM t WHERE a = ?1 AND b = ?2"), "SELECT a FROM t WHERE a = $1 AND b = $2");
        assert_eq!(
            to_pg("SELECT a FROM t WHERE a = ? AND b IN (?,?)"),
            "SELECT a FROM t WHERE a = $1 AND b IN ($2,$3)"
        );
        assert_eq!(to_pg("SELECT '?' FROM t WHERE a = ?12"), "SELECT '?' FROM t WHERE a = $12");
        assert_eq!(
            to_pg("INSERT OR IGNORE INTO k (a, b) VALUES (?1, ?2)"),
            "INSERT INTO k (a, b) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            ddl_to_pg("CREATE TABLE e (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL)"),
            "CREATE TABLE e (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL)"
        );
    }
}
