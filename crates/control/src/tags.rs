//! User tags on gateways, customer gateways and connections.

use openvgw_core::model::{CustomerGateway, Scope, Tag, VpnConnection, VpnGateway};
use openvgw_core::{Cursor, Error, Field, Kind, Page, Quota, Result, Rule};
use openvgw_store::{TagFilter, TaggedResource, Tx};

use crate::{Ctx, Service};

/// Kinds that carry user tags.
pub const TAGGABLE: &[Kind] = &[Kind::VpnGateway, Kind::CustomerGateway, Kind::VpnConnection];

fn exists(tx: &Tx, scope: &Scope, kind: Kind, id: &str) -> Result<bool> {
    Ok(match kind {
        Kind::VpnGateway => tx.get::<VpnGateway>(scope, id)?.is_some(),
        Kind::CustomerGateway => tx.get::<CustomerGateway>(scope, id)?.is_some(),
        Kind::VpnConnection => tx.get::<VpnConnection>(scope, id)?.is_some(),
        _ => false,
    })
}

fn require_target(tx: &Tx, scope: &Scope, kind: Kind, id: &str) -> Result<()> {
    if exists(tx, scope, kind, id)? {
        Ok(())
    } else {
        Err(Error::not_found(kind, id))
    }
}

impl Service {
    /// Sets `tags` on a resource being created or changed, within the per-resource quota.
    pub(crate) fn put_tags(&self, tx: &Tx, scope: &Scope, kind: Kind, id: &str, tags: &[Tag]) -> Result<()> {
        for t in tags {
            tx.put_tag(scope, kind, id, t)?;
        }
        let limit = self.config.quotas.tags_per_resource;
        if !tags.is_empty() && tx.tags_of(id)?.len() as u64 > limit {
            return Err(Error::QuotaFull { quota: Quota::Tags, limit });
        }
        Ok(())
    }

    /// Adds or overwrites tags on each resource; every resource must exist.
    pub fn tag_resources(&self, ctx: &Ctx, kind: Kind, ids: &[String], tags: &[Tag]) -> Result<()> {
        if !TAGGABLE.contains(&kind) {
            return Err(Error::invalid(Field::ResourceType, Rule::NotInEnum));
        }
        self.mutate_store_only(ctx, |tx| {
            for id in ids {
                require_target(tx, &ctx.scope, kind, id)?;
                self.put_tags(tx, &ctx.scope, kind, id, tags)?;
            }
            Ok(())
        })
    }

    /// Removes the given keys (or every tag when `all`).
    pub fn untag_resources(&self, ctx: &Ctx, kind: Kind, ids: &[String], keys: &[String], all: bool) -> Result<()> {
        self.mutate_store_only(ctx, |tx| {
            for id in ids {
                require_target(tx, &ctx.scope, kind, id)?;
                if all {
                    tx.remove_all_tags(id)?;
                } else {
                    for k in keys {
                        tx.remove_tag(id, k)?;
                    }
                }
            }
            Ok(())
        })
    }

    pub fn list_tag_resources(
        &self,
        scope: &Scope,
        kind: Kind,
        ids: &[String],
        tags: &[TagFilter],
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Page<TaggedResource>> {
        self.read(|tx| tx.tag_bindings(scope, kind, ids, tags, after, limit))
    }
}
