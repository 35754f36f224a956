//! Tags on gateways, customer gateways and connections; certificate associations of national-standard gateways.

use openvgw_core::model::{CertificateAssociation, CustomerGateway, Scope, Tag, VpnConnection, VpnGateway};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Quota, Result};
use openvgw_store::{ListQuery, TagFilter, TaggedResource, Tx};

use crate::{gateway_for_change, Ctx, Service, TokenPage};

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
        Err(Error::invalid(Field::ResourceId, format!("{id} does not exist")))
    }
}

impl Service {
    pub fn validate_tags(&self, tags: &[Tag]) -> Result<()> {
        for t in tags {
            validate::tag_key(&t.key)?;
            validate::tag_value(&t.value)?;
        }
        if tags.len() as u64 > self.config.quotas.tags_per_resource {
            return Err(Error::QuotaFull { quota: Quota::Tags, limit: self.config.quotas.tags_per_resource });
        }
        Ok(())
    }

    pub fn tag_resources(&self, ctx: &Ctx, kind: Kind, ids: &[String], tags: &[Tag]) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.validate_tags(tags)?;
        self.mutate(ctx, |tx| {
            for id in ids {
                require_target(tx, &ctx.scope, kind, id)?;
                for t in tags {
                    tx.put_tag(&ctx.scope, kind, id, t)?;
                }
                let limit = self.config.quotas.tags_per_resource;
                if tx.tags_of(id)?.len() as u64 > limit {
                    return Err(Error::QuotaFull { quota: Quota::Tags, limit });
                }
            }
            Ok(())
        })
    }

    /// Removes the given keys (or every tag when `all`).
    pub fn untag_resources(&self, ctx: &Ctx, kind: Kind, ids: &[String], keys: &[String], all: bool) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
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
        page: &TokenPage,
    ) -> Result<(Vec<TaggedResource>, String)> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let (rows, more) = tx.tag_bindings(scope, kind, ids, tags, page.offset, page.max)?;
            Ok((rows, page.next(more)))
        })
    }

    pub fn associate_certificate(
        &self,
        ctx: &Ctx,
        gateway_id: &str,
        certificate_id: &str,
        cert_type: &str,
    ) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        let cert_type = certificate_type(cert_type)?;
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, &ctx.scope, gateway_id)?;
            if gw.vpn_type != "NationalStandard" {
                return Err(Error::Unsupported("only NationalStandard VPN gateways take certificates".into()));
            }
            let existing: Vec<CertificateAssociation> =
                tx.all(&ListQuery { scope: Some(&ctx.scope), parent_id: Some(gateway_id), ..Default::default() })?;
            if let Some(old) = existing.iter().find(|a| a.certificate_type == cert_type) {
                // One certificate per type: binding a new one replaces the old binding.
                tx.delete(Kind::CertificateAssociation, &old.id)?;
            }
            tx.insert(&CertificateAssociation {
                id: Kind::CertificateAssociation.new_id(),
                scope: ctx.scope.clone(),
                gateway_id: gw.id,
                certificate_id: certificate_id.to_string(),
                certificate_type: cert_type.clone(),
                created_at: now_ms(),
            })
        })
    }

    pub fn dissociate_certificate(
        &self,
        ctx: &Ctx,
        gateway_id: &str,
        certificate_id: &str,
        cert_type: &str,
    ) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        let cert_type = certificate_type(cert_type)?;
        self.mutate(ctx, |tx| {
            gateway_for_change(tx, &ctx.scope, gateway_id)?;
            let existing: Vec<CertificateAssociation> =
                tx.all(&ListQuery { scope: Some(&ctx.scope), parent_id: Some(gateway_id), ..Default::default() })?;
            let found = existing
                .iter()
                .find(|a| a.certificate_type == cert_type && a.certificate_id == certificate_id)
                .ok_or_else(|| Error::invalid(Field::CertificateId, format!("{certificate_id} is not associated")))?;
            tx.delete(Kind::CertificateAssociation, &found.id)
        })
    }

    pub fn list_certificate_associations(
        &self,
        scope: &Scope,
        gateway_id: Option<&str>,
        certificate_id: Option<&str>,
        cert_type: Option<&str>,
        page: &TokenPage,
    ) -> Result<(Vec<CertificateAssociation>, u64, String)> {
        self.check_region(&scope.region)?;
        let cert_type = cert_type.map(certificate_type).transpose()?;
        self.read(|tx| {
            let mut q = ListQuery { scope: Some(scope), parent_id: gateway_id, ..Default::default() };
            if let Some(c) = certificate_id {
                q.json_eq.push(("certificate_id", c.to_string()));
            }
            if let Some(t) = &cert_type {
                q.json_eq.push(("certificate_type", t.clone()));
            }
            q.offset = page.offset;
            q.limit = Some(page.max);
            let (items, total) = tx.list::<CertificateAssociation>(&q)?;
            let more = page.offset + (items.len() as u64) < total;
            Ok((items, total, page.next(more)))
        })
    }
}

fn certificate_type(t: &str) -> Result<String> {
    ["Signature", "Encryption"]
        .iter()
        .find(|k| k.eq_ignore_ascii_case(t))
        .map(|k| k.to_string())
        .ok_or_else(|| Error::invalid(Field::CertificateType, "must be Signature or Encryption"))
}
