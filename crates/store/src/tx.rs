//! Typed operations inside one transaction.

use std::collections::BTreeMap;

use openvgw_core::model::{
    AccessKey, AgentPlacement, AgentRecord, ConsolePrincipal, ConsoleSession, IamUser, Index, Operator, Resource,
    Scope, Tag, Tenant, Token,
};
use openvgw_core::{Cursor, Error, Field, Kind, Page, PageRequest, Result, Rule, Secret};
use serde::de::DeserializeOwned;

use crate::docs::DocCache;
use crate::sql::{vals, Conn, DbErr, Row, Val};

pub struct Tx<'a> {
    conn: Conn<'a>,
    writable: bool,
    docs: &'a DocCache,
}

/// Filters for listing one kind of resource. Every filter is served by an index.
#[derive(Debug, Default, Clone)]
pub struct ListQuery<'q> {
    pub scope: Option<&'q Scope>,
    pub parent_id: Option<&'q str>,
    pub id: Option<&'q str>,
    pub name: Option<&'q str>,
    /// Secondary keys the resource must carry (see [`Index`]).
    pub keys: Vec<(Index, String)>,
    /// Only resources carrying all these tags (value `None` = any value).
    pub tags: Vec<TagFilter>,
}

impl<'q> ListQuery<'q> {
    pub fn in_scope(scope: &'q Scope) -> Self {
        ListQuery { scope: Some(scope), ..Default::default() }
    }

    pub fn children_of(scope: &'q Scope, parent_id: &'q str) -> Self {
        ListQuery { scope: Some(scope), parent_id: Some(parent_id), ..Default::default() }
    }

    pub fn key(mut self, index: Index, value: impl Into<String>) -> Self {
        self.keys.push((index, value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct TagFilter {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TaggedResource {
    pub resource_kind: Kind,
    pub resource_id: String,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub params_hash: String,
    pub result: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub at: i64,
    pub message: String,
}

fn seal(clear: &str) -> Result<String> {
    openvgw_core::secret::seal_in_scope(clear).map_err(|e| Error::internal(format!("store: {e}")))
}

fn open(stored: &str) -> Result<String> {
    openvgw_core::secret::open_in_scope(stored).map_err(|e| Error::internal(format!("store: {e}")))
}

fn decode<T: DeserializeOwned>(doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(|e| Error::internal(format!("store: corrupt document: {e}")))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

fn bad_cursor() -> Error {
    Error::invalid(Field::PageToken, Rule::UnknownToken)
}

/// Both backends take signed 64-bit limits; "everything" and absurd offsets are clamped rather than wrapped.
fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Separates the parts of a tag-binding cursor (resource id, key); neither may contain it.
const CURSOR_SEP: char = '\u{1f}';

impl<'a> Tx<'a> {
    pub(crate) fn new(conn: Conn<'a>, writable: bool, docs: &'a DocCache) -> Self {
        Tx { conn, writable, docs }
    }

    fn writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::internal("store: write attempted in a read transaction"))
        }
    }

    // ---- the neutral SQL layer -------------------------------------------------------------------------------

    pub(crate) fn exec(&self, sql: &str, args: &[Val]) -> Result<u64> {
        Ok(self.conn.execute(sql, args)?)
    }

    pub(crate) fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Row>> {
        Ok(self.conn.query(sql, args)?)
    }

    fn row(&self, sql: &str, args: &[Val]) -> Result<Option<Row>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    fn count_sql(&self, sql: &str, args: &[Val]) -> Result<u64> {
        let n = self.row(sql, args)?.map(|r| r.int(0)).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn texts(&self, sql: &str, args: &[Val]) -> Result<Vec<String>> {
        self.rows(sql, args)?.iter().map(|r| r.text(0)).collect()
    }

    fn doc<T: DeserializeOwned>(&self, sql: &str, args: &[Val]) -> Result<Option<T>> {
        self.row(sql, args)?.map(|r| r.text(0)).transpose()?.map(|d| decode(&d)).transpose()
    }

    /// The resource of the first row of `sql` (selecting `seq, doc`), decoded through the document cache.
    fn resource<R: Resource>(&self, sql: &str, args: &[Val]) -> Result<Option<R>> {
        match self.row(sql, args)? {
            Some(mut r) => Ok(Some(self.docs.decode(r.int(0)?, r.take_text(1)?, decode)?)),
            None => Ok(None),
        }
    }

    /// Whether this transaction runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.conn.is_pg()
    }

    // ---- resources -------------------------------------------------------------------------------------------

    /// The resource `id` of type `R` in `scope`, if it exists there.
    pub fn get<R: Resource>(&self, scope: &Scope, id: &str) -> Result<Option<R>> {
        self.resource(
            "SELECT seq, doc FROM resources WHERE kind = ?1 AND id = ?2 AND tenant_id = ?3 AND region = ?4",
            vals![R::KIND.as_str(), id, &scope.tenant_id, &scope.region],
        )
    }

    /// Like [`Tx::get`] but a missing resource is `Error::NotFound`.
    pub fn require<R: Resource>(&self, scope: &Scope, id: &str) -> Result<R> {
        self.get(scope, id)?.ok_or_else(|| Error::not_found(R::KIND, id))
    }

    /// The resource regardless of tenant (for the reconciler and operator commands, never for API requests).
    pub fn get_unscoped<R: Resource>(&self, id: &str) -> Result<Option<R>> {
        self.resource("SELECT seq, doc FROM resources WHERE kind = ?1 AND id = ?2", vals![R::KIND.as_str(), id])
    }

    fn write_keys<R: Resource>(&self, r: &R) -> Result<()> {
        self.exec("DELETE FROM resource_keys WHERE id = ?1", vals![r.id()])?;
        for (index, value) in r.index() {
            self.exec(
                "INSERT OR IGNORE INTO resource_keys (kind, key, value, id) VALUES (?1, ?2, ?3, ?4)",
                vals![R::KIND.as_str(), index.as_str(), value, r.id()],
            )?;
        }
        Ok(())
    }

    pub fn insert<R: Resource>(&self, r: &R) -> Result<()> {
        self.writable()?;
        let scope = r.scope();
        self.exec(
            "INSERT INTO resources (kind, id, tenant_id, region, parent_id, name, created_at, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            vals![
                R::KIND.as_str(),
                r.id(),
                &scope.tenant_id,
                &scope.region,
                r.parent_id(),
                r.name(),
                r.created_at(),
                encode(r)?
            ],
        )?;
        self.write_keys(r)
    }

    pub fn update<R: Resource>(&self, r: &R) -> Result<()> {
        self.writable()?;
        let n = self.exec(
            "UPDATE resources SET parent_id = ?3, name = ?4, doc = ?5 WHERE kind = ?1 AND id = ?2",
            vals![R::KIND.as_str(), r.id(), r.parent_id(), r.name(), encode(r)?],
        )?;
        if n != 1 {
            return Err(Error::not_found(R::KIND, r.id()));
        }
        self.write_keys(r)
    }

    /// Deletes one resource with its tags, events, secondary keys and any addresses it owns. Its children are not
    /// touched: see [`Tx::delete_tree`].
    pub fn delete(&self, kind: Kind, id: &str) -> Result<()> {
        self.writable()?;
        self.exec("DELETE FROM resources WHERE kind = ?1 AND id = ?2", vals![kind.as_str(), id])?;
        self.exec("DELETE FROM tags WHERE resource_id = ?1", vals![id])?;
        self.exec("DELETE FROM events WHERE resource_id = ?1", vals![id])?;
        self.exec("DELETE FROM resource_keys WHERE id = ?1", vals![id])?;
        self.exec("DELETE FROM addresses WHERE owner_id = ?1", vals![id])?;
        Ok(())
    }

    /// Deletes a resource and everything below it in the resource tree ([`Kind::children`]) or depending on it
    /// ([`Kind::dependents`]), in one transaction.
    pub fn delete_tree(&self, kind: Kind, id: &str) -> Result<()> {
        self.writable()?;
        for child in kind.children() {
            let ids = self.texts(
                "SELECT id FROM resources WHERE kind = ?1 AND parent_id = ?2 ORDER BY seq",
                vals![child.as_str(), id],
            )?;
            for cid in ids {
                self.delete_tree(*child, &cid)?;
            }
        }
        for (dependent, index) in kind.dependents() {
            let ids = self.texts(
                "SELECT id FROM resource_keys WHERE kind = ?1 AND key = ?2 AND value = ?3",
                vals![dependent.as_str(), index.as_str(), id],
            )?;
            for did in ids {
                self.delete_tree(*dependent, &did)?;
            }
        }
        self.delete(kind, id)
    }

    fn where_clause(kind: Kind, q: &ListQuery) -> (String, Vec<Val>) {
        let mut sql = String::from(" FROM resources r WHERE r.kind = ?");
        let mut args: Vec<Val> = vec![kind.as_str().into()];
        if let Some(scope) = q.scope {
            sql.push_str(" AND r.tenant_id = ? AND r.region = ?");
            args.push((&scope.tenant_id).into());
            args.push((&scope.region).into());
        }
        if let Some(p) = q.parent_id {
            sql.push_str(" AND r.parent_id = ?");
            args.push(p.into());
        }
        if let Some(id) = q.id {
            sql.push_str(" AND r.id = ?");
            args.push(id.into());
        }
        if let Some(name) = q.name {
            sql.push_str(" AND r.name = ?");
            args.push(name.into());
        }
        // A membership list rather than a correlated EXISTS: the planner then starts from the key's index and
        // fetches the few resources it names, instead of walking the scope and probing each.
        for (index, value) in &q.keys {
            sql.push_str(
                " AND r.id IN (SELECT k.id FROM resource_keys k WHERE k.kind = ? AND k.key = ? AND k.value = ?) ",
            );
            args.push(kind.as_str().into());
            args.push(index.as_str().into());
            args.push(value.into());
        }
        for t in &q.tags {
            sql.push_str(" AND EXISTS (SELECT 1 FROM tags t WHERE t.resource_id = r.id AND t.key = ?");
            args.push((&t.key).into());
            if let Some(v) = &t.value {
                sql.push_str(" AND t.value = ?");
                args.push(v.into());
            }
            sql.push(')');
        }
        (sql, args)
    }

    /// How many resources match: a lookup in `resource_counts` (kept by triggers) when the query names only a scope
    /// and perhaps a parent, a count of the matching rows otherwise.
    fn total(&self, kind: Kind, q: &ListQuery, filter: &str, args: &[Val]) -> Result<u64> {
        match q {
            ListQuery { scope: Some(scope), parent_id, id: None, name: None, keys, tags }
                if keys.is_empty() && tags.is_empty() =>
            {
                self.count_sql(
                    "SELECT n FROM resource_counts WHERE tenant_id = ?1 AND region = ?2 AND kind = ?3 \
                     AND parent_id = ?4",
                    vals![&scope.tenant_id, &scope.region, kind.as_str(), parent_id.unwrap_or("")],
                )
            }
            _ => self.count_sql(&format!("SELECT COUNT(*){filter}"), args),
        }
    }

    /// One page of resources in insertion order, the total matching, and the cursor of the next page.
    pub fn list<R: Resource>(&self, q: &ListQuery, page: &PageRequest) -> Result<Page<R>> {
        let (filter, args) = Self::where_clause(R::KIND, q);
        let total = self.total(R::KIND, q, &filter, &args)?;
        let limit = page.limit();
        let (sql, args) = Self::page_sql(filter, args, page)?;
        let mut rows = self
            .rows(&sql, &args)?
            .into_iter()
            .map(|mut r| Ok((r.int(0)?, r.take_text(1)?)))
            .collect::<Result<Vec<_>>>()?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more { rows.last().map(|(seq, _)| Cursor(seq.to_string())) } else { None };
        let items = rows.into_iter().map(|(seq, d)| self.docs.decode(seq, d, decode)).collect::<Result<Vec<R>>>()?;
        Ok(Page { items, total, next })
    }

    /// SQLite's plans for a page of `kind` and for its total (tests: every filter the APIs use is served by an index).
    #[cfg(test)]
    pub(crate) fn plans(&self, kind: Kind, q: &ListQuery, page: &PageRequest) -> Result<Vec<String>> {
        let (filter, args) = Self::where_clause(kind, q);
        let (sql, page_args) = Self::page_sql(filter.clone(), args.clone(), page)?;
        let mut out = Vec::new();
        for (sql, args) in [(sql, page_args), (format!("SELECT COUNT(*){filter}"), args)] {
            let plan = self.rows(&format!("EXPLAIN QUERY PLAN {sql}"), &args)?;
            out.push(plan.iter().map(|r| r.text(3)).collect::<Result<Vec<_>>>()?.join("; "));
        }
        Ok(out)
    }

    fn page_sql(filter: String, args: Vec<Val>, page: &PageRequest) -> Result<(String, Vec<Val>)> {
        let limit = page.limit();
        let (mut sql, mut args) = (format!("SELECT r.seq, r.doc{filter}"), args);
        match page {
            PageRequest::Offset { offset, .. } => {
                sql.push_str(&format!(
                    " ORDER BY r.seq LIMIT {} OFFSET {}",
                    sql_int(limit.saturating_add(1)),
                    sql_int(*offset)
                ));
            }
            PageRequest::After { cursor, .. } => {
                if let Some(c) = cursor {
                    let seq: i64 = c.0.parse().map_err(|_| bad_cursor())?;
                    sql.push_str(" AND r.seq > ?");
                    args.push(Val::Int(seq));
                }
                sql.push_str(&format!(" ORDER BY r.seq LIMIT {}", sql_int(limit.saturating_add(1))));
            }
        }
        Ok((sql, args))
    }

    /// All resources of a kind matching the query.
    pub fn all<R: Resource>(&self, q: &ListQuery) -> Result<Vec<R>> {
        Ok(self.list(q, &PageRequest::ALL)?.items)
    }

    /// The first (oldest) resource matching the query.
    pub fn first<R: Resource>(&self, q: &ListQuery) -> Result<Option<R>> {
        Ok(self.list(q, &PageRequest::Offset { offset: 0, limit: 1 })?.items.into_iter().next())
    }

    pub fn count<R: Resource>(&self, q: &ListQuery) -> Result<u64> {
        let (filter, args) = Self::where_clause(R::KIND, q);
        self.total(R::KIND, q, &filter, &args)
    }

    /// Ids of every resource of a kind, across tenants (reconciler).
    pub fn ids_of_kind(&self, kind: Kind) -> Result<Vec<String>> {
        self.texts("SELECT id FROM resources WHERE kind = ?1 ORDER BY seq", vals![kind.as_str()])
    }

    /// Every resource of a kind whose parent is `parent_id`, across tenants (reconciler).
    pub fn children_unscoped<R: Resource>(&self, parent_id: &str) -> Result<Vec<R>> {
        self.all(&ListQuery { parent_id: Some(parent_id), ..Default::default() })
    }

    /// Stored resources per kind.
    pub fn count_by_kind(&self) -> Result<Vec<(Kind, u64)>> {
        self.rows("SELECT kind, COUNT(*) FROM resources GROUP BY kind", &[])?
            .iter()
            .map(|r| {
                let k = r.text(0)?;
                let n = u64::try_from(r.int(1)?).unwrap_or(0);
                Kind::parse(&k).map(|k| (k, n)).ok_or_else(|| Error::internal(format!("store: kind {k}")))
            })
            .collect()
    }

    // ---- tags ------------------------------------------------------------------------------------------------

    pub fn tags_of(&self, resource_id: &str) -> Result<Vec<Tag>> {
        self.rows("SELECT key, value FROM tags WHERE resource_id = ?1 ORDER BY seq, key", vals![resource_id])?
            .iter()
            .map(|r| Ok(Tag { key: r.text(0)?, value: r.text(1)? }))
            .collect()
    }

    /// The tags of several resources in one query (a page of a list), in the order [`Tx::tags_of`] gives them;
    /// resources without tags have no entry.
    pub fn tags_of_many(&self, resource_ids: &[&str]) -> Result<std::collections::HashMap<String, Vec<Tag>>> {
        let mut out: std::collections::HashMap<String, Vec<Tag>> = std::collections::HashMap::new();
        // Bounded statements (a page is at most a few hundred items; SQLite binds up to 32766 values).
        for chunk in resource_ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let args: Vec<Val> = chunk.iter().map(|id| Val::from(*id)).collect();
            let sql = format!(
                "SELECT resource_id, key, value FROM tags WHERE resource_id IN ({marks}) ORDER BY resource_id, seq, key"
            );
            for r in self.rows(&sql, &args)? {
                out.entry(r.text(0)?).or_default().push(Tag { key: r.text(1)?, value: r.text(2)? });
            }
        }
        Ok(out)
    }

    /// Sets (inserts or overwrites) a tag on a resource.
    pub fn put_tag(&self, scope: &Scope, kind: Kind, resource_id: &str, tag: &Tag) -> Result<()> {
        self.writable()?;
        let seq = openvgw_core::now_ms();
        self.exec(
            "INSERT INTO tags (tenant_id, region, resource_kind, resource_id, key, value, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (resource_id, key) DO UPDATE SET value = excluded.value",
            vals![&scope.tenant_id, &scope.region, kind.as_str(), resource_id, &tag.key, &tag.value, seq],
        )?;
        Ok(())
    }

    pub fn remove_tag(&self, resource_id: &str, key: &str) -> Result<()> {
        self.writable()?;
        self.exec("DELETE FROM tags WHERE resource_id = ?1 AND key = ?2", vals![resource_id, key])?;
        Ok(())
    }

    pub fn remove_all_tags(&self, resource_id: &str) -> Result<()> {
        self.writable()?;
        self.exec("DELETE FROM tags WHERE resource_id = ?1", vals![resource_id])?;
        Ok(())
    }

    /// Tag bindings in a scope for one resource kind, optionally restricted to some resources and/or to resources
    /// that carry all of `tags` (then only the matching tags are reported, as Alibaba does). Keyset-paged in
    /// (resource id, key) order.
    pub fn tag_bindings(
        &self,
        scope: &Scope,
        kind: Kind,
        resource_ids: &[String],
        tags: &[TagFilter],
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Page<TaggedResource>> {
        let mut sql = String::from(" FROM tags t WHERE t.tenant_id = ? AND t.region = ? AND t.resource_kind = ?");
        let mut args: Vec<Val> = vec![(&scope.tenant_id).into(), (&scope.region).into(), kind.as_str().into()];
        if !resource_ids.is_empty() {
            sql.push_str(&format!(" AND t.resource_id IN ({})", vec!["?"; resource_ids.len()].join(",")));
            args.extend(resource_ids.iter().map(Val::from));
        }
        for f in tags {
            sql.push_str(" AND EXISTS (SELECT 1 FROM tags u WHERE u.resource_id = t.resource_id AND u.key = ?");
            args.push((&f.key).into());
            if let Some(v) = &f.value {
                sql.push_str(" AND u.value = ?");
                args.push(v.into());
            }
            sql.push(')');
        }
        if !tags.is_empty() {
            sql.push_str(&format!(" AND t.key IN ({})", vec!["?"; tags.len()].join(",")));
            args.extend(tags.iter().map(|f| Val::from(&f.key)));
        }
        let total = self.count_sql(&format!("SELECT COUNT(*){sql}"), &args)?;
        if let Some(c) = after {
            let (rid, key) = c.0.split_once(CURSOR_SEP).ok_or_else(bad_cursor)?;
            sql.push_str(" AND (t.resource_id, t.key) > (?, ?)");
            args.push(rid.into());
            args.push(key.into());
        }
        let sql = format!(
            "SELECT t.resource_kind, t.resource_id, t.key, t.value{sql} ORDER BY t.resource_id, t.key LIMIT {}",
            sql_int(limit.saturating_add(1))
        );
        let mut rows = self
            .rows(&sql, &args)?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?)))
            .collect::<Result<Vec<_>>>()?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next =
            if more { rows.last().map(|(_, rid, key, _)| Cursor(format!("{rid}{CURSOR_SEP}{key}"))) } else { None };
        let items = rows
            .into_iter()
            .map(|(k, resource_id, key, value)| {
                let resource_kind = Kind::parse(&k).ok_or_else(|| Error::internal(format!("store: kind {k}")))?;
                Ok(TaggedResource { resource_kind, resource_id, key, value })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total, next })
    }

    // ---- idempotency -----------------------------------------------------------------------------------------

    pub fn idempotency(&self, tenant_id: &str, action: &str, token: &str) -> Result<Option<IdempotencyRecord>> {
        self.row(
            "SELECT params_hash, result, created_at FROM idempotency WHERE tenant_id = ?1 AND action = ?2 AND token = ?3",
            vals![tenant_id, action, token],
        )?
        .map(|r| Ok(IdempotencyRecord { params_hash: r.text(0)?, result: r.text(1)?, created_at: r.int(2)? }))
        .transpose()
    }

    pub fn put_idempotency(&self, tenant_id: &str, action: &str, token: &str, rec: &IdempotencyRecord) -> Result<()> {
        self.writable()?;
        self.exec(
            "INSERT INTO idempotency (tenant_id, action, token, params_hash, result, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, action, token) DO UPDATE
             SET params_hash = excluded.params_hash, result = excluded.result, created_at = excluded.created_at",
            vals![tenant_id, action, token, &rec.params_hash, &rec.result, rec.created_at],
        )?;
        Ok(())
    }

    pub fn purge_idempotency(&self, older_than_ms: i64) -> Result<u64> {
        self.writable()?;
        self.exec("DELETE FROM idempotency WHERE created_at < ?1", vals![older_than_ms])
    }

    // ---- address pools ---------------------------------------------------------------------------------------

    /// Claims the first candidate not yet taken in `pool` for `owner_id`; `None` when all are taken.
    pub fn claim_address(
        &self,
        pool: &str,
        candidates: impl Iterator<Item = String>,
        owner_id: &str,
    ) -> Result<Option<String>> {
        self.writable()?;
        let taken: std::collections::HashSet<String> =
            self.texts("SELECT address FROM addresses WHERE pool = ?1", vals![pool])?.into_iter().collect();
        for c in candidates {
            if !taken.contains(&c) {
                self.exec(
                    "INSERT INTO addresses (pool, address, owner_id) VALUES (?1, ?2, ?3)",
                    vals![pool, &c, owner_id],
                )?;
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    pub fn release_addresses(&self, owner_id: &str) -> Result<()> {
        self.writable()?;
        self.exec("DELETE FROM addresses WHERE owner_id = ?1", vals![owner_id])?;
        Ok(())
    }

    // ---- events (operation logs shown by log APIs) ------------------------------------------------------------

    pub fn append_event(&self, resource_id: &str, at_ms: i64, message: &str) -> Result<()> {
        self.writable()?;
        self.exec(
            "INSERT INTO events (resource_id, at, message) VALUES (?1, ?2, ?3)",
            vals![resource_id, at_ms, message],
        )?;
        Ok(())
    }

    /// Events of a resource in `[from_ms, to_ms]`, oldest first, one page, plus the total.
    pub fn events(
        &self,
        resource_id: &str,
        from_ms: i64,
        to_ms: i64,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Event>, u64)> {
        let total = self.count_sql(
            "SELECT COUNT(*) FROM events WHERE resource_id = ?1 AND at BETWEEN ?2 AND ?3",
            vals![resource_id, from_ms, to_ms],
        )?;
        let rows = self
            .rows(
                "SELECT at, message FROM events WHERE resource_id = ?1 AND at BETWEEN ?2 AND ?3 ORDER BY seq LIMIT ?4 OFFSET ?5",
                vals![resource_id, from_ms, to_ms, sql_int(limit), sql_int(offset)],
            )?
            .iter()
            .map(|r| Ok(Event { at: r.int(0)?, message: r.text(1)? }))
            .collect::<Result<Vec<_>>>()?;
        Ok((rows, total))
    }

    // ---- tenants and keys ------------------------------------------------------------------------------------

    pub fn insert_tenant(&self, t: &Tenant) -> Result<()> {
        self.writable()?;
        self.conn
            .execute(
                "INSERT INTO tenants (id, name, created_at, doc) VALUES (?1, ?2, ?3, ?4)",
                vals![&t.id, &t.name, t.created_at, encode(t)?],
            )
            .map_err(|e| unique_or(e, || Error::AlreadyExists { kind: Kind::Tenant, what: t.name.clone() }))?;
        Ok(())
    }

    pub fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        self.doc("SELECT doc FROM tenants WHERE id = ?1", vals![id])
    }

    pub fn tenants(&self) -> Result<Vec<Tenant>> {
        self.texts("SELECT doc FROM tenants ORDER BY created_at, id", &[])?.iter().map(|d| decode(d)).collect()
    }

    pub fn insert_access_key(&self, k: &AccessKey) -> Result<()> {
        self.writable()?;
        self.exec(
            "INSERT INTO access_keys (id, tenant_id, secret, created_at) VALUES (?1, ?2, ?3, ?4)",
            vals![&k.id, &k.tenant_id, &seal(k.secret.expose())?, k.created_at],
        )?;
        Ok(())
    }

    /// Deletes an access key; false if there was none. Its nonces are forgotten by [`crate::Store::forget_nonces`]
    /// (on SQLite they are in another file).
    pub fn delete_access_key(&self, id: &str) -> Result<bool> {
        self.writable()?;
        Ok(self.exec("DELETE FROM access_keys WHERE id = ?1", vals![id])? == 1)
    }

    /// Opens one stored access-key secret, if any: an error when the active keyring cannot (a wrong master key).
    pub fn check_sealed(&self) -> Result<()> {
        if let Some(r) = self.row("SELECT secret FROM access_keys ORDER BY created_at LIMIT 1", &[])? {
            open(&r.text(0)?)?;
        }
        Ok(())
    }

    /// Rewrites every access-key secret not sealed with the current master key; returns how many.
    pub fn reseal_access_keys(&self) -> Result<u64> {
        self.writable()?;
        let mut n = 0;
        for r in self.rows("SELECT id, secret FROM access_keys ORDER BY id", &[])? {
            let (id, stored) = (r.text(0)?, r.text(1)?);
            if openvgw_core::secret::current_in_scope(&stored) {
                continue;
            }
            let sealed = seal(&open(&stored)?)?;
            self.exec("UPDATE access_keys SET secret = ?1 WHERE id = ?2", vals![&sealed, &id])?;
            n += 1;
        }
        Ok(n)
    }

    pub fn access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        self.row("SELECT id, secret, tenant_id, created_at FROM access_keys WHERE id = ?1", vals![id])?
            .map(|r| {
                Ok(AccessKey {
                    id: r.text(0)?,
                    secret: Secret::new(open(&r.text(1)?)?),
                    tenant_id: r.text(2)?,
                    created_at: r.int(3)?,
                })
            })
            .transpose()
    }

    pub fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        self.doc("SELECT doc FROM tenants WHERE name = ?1", vals![name])
    }

    /// Rewrites a tenant's document (its name and id never change).
    pub fn update_tenant(&self, t: &Tenant) -> Result<()> {
        self.writable()?;
        if self.exec("UPDATE tenants SET doc = ?1 WHERE id = ?2", vals![encode(t)?, &t.id])? != 1 {
            return Err(Error::not_found(Kind::Tenant, &t.id));
        }
        Ok(())
    }

    /// Deletes a tenant that holds no resources, with its access keys, users, tokens and bookkeeping; returns the
    /// ids of the keys it had (their nonces live elsewhere on SQLite: [`crate::Store::forget_nonces`]).
    pub fn delete_tenant(&self, id: &str) -> Result<Vec<String>> {
        self.writable()?;
        let held = self.count_sql("SELECT COUNT(*) FROM resources WHERE tenant_id = ?1", vals![id])?;
        if held > 0 {
            return Err(Error::InUse { kind: Kind::Tenant, id: id.to_string(), by: Kind::VpnGateway });
        }
        let keys = self.access_key_ids(id)?.into_iter().map(|(k, _)| k).collect();
        for table in ["tokens", "iam_users", "access_keys", "idempotency", "tags", "resource_counts"] {
            self.exec(&format!("DELETE FROM {table} WHERE tenant_id = ?1"), vals![id])?;
        }
        if self.exec("DELETE FROM tenants WHERE id = ?1", vals![id])? != 1 {
            return Err(Error::not_found(Kind::Tenant, id));
        }
        Ok(keys)
    }

    /// A tenant's access keys — ids and creation times, never secrets — oldest first.
    pub fn access_key_ids(&self, tenant_id: &str) -> Result<Vec<(String, i64)>> {
        self.rows(
            "SELECT id, created_at FROM access_keys WHERE tenant_id = ?1 ORDER BY created_at, id",
            vals![tenant_id],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)?)))
        .collect()
    }

    /// How many resources of each kind a tenant holds over every region (the counts the quotas use).
    pub fn tenant_usage(&self, tenant_id: &str) -> Result<BTreeMap<String, i64>> {
        self.rows(
            "SELECT kind, CAST(SUM(n) AS BIGINT) FROM resource_counts WHERE tenant_id = ?1 AND parent_id = '' \
             GROUP BY kind HAVING SUM(n) > 0 ORDER BY kind",
            vals![tenant_id],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)?)))
        .collect()
    }

    // ---- IAM users and tokens --------------------------------------------------------------------------------

    pub fn insert_iam_user(&self, u: &IamUser) -> Result<()> {
        self.writable()?;
        self.conn
            .execute(
                "INSERT INTO iam_users (id, tenant_id, name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                vals![&u.id, &u.tenant_id, &u.name, u.password_hash.expose(), u.created_at],
            )
            .map_err(|e| {
                unique_or(e, || Error::AlreadyExists { kind: Kind::Tenant, what: format!("user {}", u.name) })
            })?;
        Ok(())
    }

    pub fn iam_user(&self, tenant_id: &str, name: &str) -> Result<Option<IamUser>> {
        self.row(
            "SELECT id, tenant_id, name, password_hash, created_at FROM iam_users WHERE tenant_id = ?1 AND name = ?2",
            vals![tenant_id, name],
        )?
        .map(|r| {
            Ok(IamUser {
                id: r.text(0)?,
                tenant_id: r.text(1)?,
                name: r.text(2)?,
                password_hash: Secret::new(r.text(3)?),
                created_at: r.int(4)?,
            })
        })
        .transpose()
    }

    pub fn insert_token(&self, t: &Token) -> Result<()> {
        self.writable()?;
        self.exec(
            "INSERT INTO tokens (digest, tenant_id, user_id, region, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vals![&t.digest, &t.tenant_id, &t.user_id, &t.region, t.issued_at, t.expires_at],
        )?;
        Ok(())
    }

    pub fn token(&self, digest: &str) -> Result<Option<Token>> {
        self.row(
            "SELECT digest, tenant_id, user_id, region, issued_at, expires_at FROM tokens WHERE digest = ?1",
            vals![digest],
        )?
        .map(|r| {
            Ok(Token {
                digest: r.text(0)?,
                tenant_id: r.text(1)?,
                user_id: r.text(2)?,
                region: r.text(3)?,
                issued_at: r.int(4)?,
                expires_at: r.int(5)?,
            })
        })
        .transpose()
    }

    pub fn purge_tokens(&self, now_ms: i64) -> Result<u64> {
        self.writable()?;
        self.exec("DELETE FROM tokens WHERE expires_at < ?1", vals![now_ms])
    }

    // ---- console operators and sessions ----------------------------------------------------------------------

    pub fn insert_operator(&self, o: &Operator) -> Result<()> {
        self.writable()?;
        self.conn
            .execute(
                "INSERT INTO operators (name, password_hash, created_at) VALUES (?1, ?2, ?3)",
                vals![&o.name, o.password_hash.expose(), o.created_at],
            )
            .map_err(|e| {
                unique_or(e, || Error::AlreadyExists { kind: Kind::Tenant, what: format!("operator {}", o.name) })
            })?;
        Ok(())
    }

    pub fn operator(&self, name: &str) -> Result<Option<Operator>> {
        self.row("SELECT name, password_hash, created_at FROM operators WHERE name = ?1", vals![name])?
            .map(|r| Ok(Operator { name: r.text(0)?, password_hash: Secret::new(r.text(1)?), created_at: r.int(2)? }))
            .transpose()
    }

    /// Operators' names and creation times, by name.
    pub fn operators(&self) -> Result<Vec<(String, i64)>> {
        self.rows("SELECT name, created_at FROM operators ORDER BY name", vals![])?
            .into_iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .collect()
    }

    /// Removes an operator and ends its sessions; whether it existed.
    pub fn delete_operator(&self, name: &str) -> Result<bool> {
        self.writable()?;
        let principal = principal_text(&ConsolePrincipal::Operator { name: name.to_string() })?;
        self.exec("DELETE FROM console_sessions WHERE principal = ?1", vals![&principal])?;
        Ok(self.exec("DELETE FROM operators WHERE name = ?1", vals![name])? > 0)
    }

    pub fn insert_console_session(&self, s: &ConsoleSession) -> Result<()> {
        self.writable()?;
        self.exec(
            "INSERT INTO console_sessions (digest, principal, csrf, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            vals![&s.digest, &principal_text(&s.principal)?, &s.csrf, s.issued_at, s.expires_at],
        )?;
        Ok(())
    }

    pub fn console_session(&self, digest: &str) -> Result<Option<ConsoleSession>> {
        self.row(
            "SELECT digest, principal, csrf, issued_at, expires_at FROM console_sessions WHERE digest = ?1",
            vals![digest],
        )?
        .map(|r| {
            Ok(ConsoleSession {
                digest: r.text(0)?,
                principal: serde_json::from_str(&r.text(1)?).map_err(Error::internal)?,
                csrf: r.text(2)?,
                issued_at: r.int(3)?,
                expires_at: r.int(4)?,
            })
        })
        .transpose()
    }

    pub fn delete_console_session(&self, digest: &str) -> Result<()> {
        self.writable()?;
        self.exec("DELETE FROM console_sessions WHERE digest = ?1", vals![digest])?;
        Ok(())
    }

    pub fn purge_console_sessions(&self, now_ms: i64) -> Result<u64> {
        self.writable()?;
        self.exec("DELETE FROM console_sessions WHERE expires_at < ?1", vals![now_ms])
    }
}

/// Gateway hosts (`openvgw agent`): their CA, join tokens and the agents that joined.
impl Tx<'_> {
    /// The agents' CA (certificate, key), if one was made.
    pub fn agent_ca(&self) -> Result<Option<(String, Secret)>> {
        self.row("SELECT cert_pem, key_pem FROM agent_ca WHERE id = 1", vals![])?
            .map(|r| Ok((r.text(0)?, Secret::new(open(&r.text(1)?)?))))
            .transpose()
    }

    /// Stores the agents' CA unless one exists (replicas starting together keep the first); whether it was stored.
    pub fn insert_agent_ca(&self, cert_pem: &str, key_pem: &Secret) -> Result<bool> {
        self.writable()?;
        let n = self.exec(
            "INSERT INTO agent_ca (id, cert_pem, key_pem) VALUES (1, ?1, ?2) ON CONFLICT (id) DO NOTHING",
            vals![cert_pem, &seal(key_pem.expose())?],
        )?;
        Ok(n > 0)
    }

    /// Stores a join token's digest (and forgets the expired ones).
    pub fn insert_agent_token(&self, digest: &str, created_at: i64, expires_at: i64) -> Result<()> {
        self.writable()?;
        self.exec("DELETE FROM agent_tokens WHERE expires_at <= ?1", vals![created_at])?;
        self.exec(
            "INSERT INTO agent_tokens (digest, created_at, expires_at) VALUES (?1, ?2, ?3)",
            vals![digest, created_at, expires_at],
        )?;
        Ok(())
    }

    /// Spends the token of `digest` if it is unexpired, recording `agent` as joined; whether it was spent.
    pub fn redeem_agent_token(&self, digest: &str, now_ms: i64, agent: &AgentRecord) -> Result<bool> {
        self.writable()?;
        if self.exec("DELETE FROM agent_tokens WHERE digest = ?1 AND expires_at > ?2", vals![digest, now_ms])? == 0 {
            return Ok(false);
        }
        self.exec(
            "INSERT INTO agents (id, name, serial, joined_at) VALUES (?1, ?2, ?3, ?4)",
            vals![&agent.id, &agent.name, &agent.serial, agent.joined_at],
        )?;
        Ok(true)
    }

    /// Unused, unexpired join tokens: (created, expires), oldest first.
    pub fn agent_tokens(&self, now_ms: i64) -> Result<Vec<(i64, i64)>> {
        self.rows(
            "SELECT created_at, expires_at FROM agent_tokens WHERE expires_at > ?1 ORDER BY created_at",
            vals![now_ms],
        )?
        .into_iter()
        .map(|r| Ok((r.int(0)?, r.int(1)?)))
        .collect()
    }

    pub fn agent(&self, id: &str) -> Result<Option<AgentRecord>> {
        self.row("SELECT id, name, serial, joined_at, revoked_at FROM agents WHERE id = ?1", vals![id])?
            .map(|r| agent_of(&r))
            .transpose()
    }

    /// Every agent that joined, by id.
    pub fn agents(&self) -> Result<Vec<AgentRecord>> {
        self.rows("SELECT id, name, serial, joined_at, revoked_at FROM agents ORDER BY id", vals![])?
            .iter()
            .map(agent_of)
            .collect()
    }

    /// Every placed gateway, by id.
    pub fn agent_placements(&self) -> Result<Vec<AgentPlacement>> {
        self.rows("SELECT gateway_id, agent_id, vpc_id FROM agent_placements ORDER BY gateway_id", vals![])?
            .into_iter()
            .map(|r| Ok(AgentPlacement { gateway_id: r.text(0)?, agent_id: r.text(1)?, vpc_id: r.text(2)? }))
            .collect()
    }

    /// Records where a gateway is (replacing where it was).
    pub fn place_gateway(&self, p: &AgentPlacement, now_ms: i64) -> Result<()> {
        self.writable()?;
        self.exec(
            "INSERT INTO agent_placements (gateway_id, agent_id, vpc_id, placed_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (gateway_id) DO UPDATE SET agent_id = excluded.agent_id, vpc_id = excluded.vpc_id,
             placed_at = excluded.placed_at",
            vals![&p.gateway_id, &p.agent_id, &p.vpc_id, now_ms],
        )?;
        Ok(())
    }

    /// Records that nobody holds the gateway any more.
    pub fn unplace_gateway(&self, gateway_id: &str) -> Result<()> {
        self.writable()?;
        self.exec("DELETE FROM agent_placements WHERE gateway_id = ?1", vals![gateway_id])?;
        Ok(())
    }

    /// Revokes an agent (it can no longer attach); whether it was known and not yet revoked.
    pub fn revoke_agent(&self, id: &str, now_ms: i64) -> Result<bool> {
        self.writable()?;
        Ok(self.exec("UPDATE agents SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", vals![id, now_ms])? > 0)
    }
}

fn agent_of(r: &Row) -> Result<AgentRecord> {
    Ok(AgentRecord {
        id: r.text(0)?,
        name: r.text(1)?,
        serial: r.text(2)?,
        joined_at: r.int(3)?,
        revoked_at: r.opt_int(4)?,
    })
}

/// How a session's principal is stored (and matched when its operator is deleted).
fn principal_text(p: &ConsolePrincipal) -> Result<String> {
    serde_json::to_string(p).map_err(Error::internal)
}

/// A uniqueness violation becomes the caller's error; anything else stays internal.
fn unique_or(e: DbErr, err: impl FnOnce() -> Error) -> Error {
    if e.unique {
        err()
    } else {
        e.into()
    }
}
