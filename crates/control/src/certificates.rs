//! Certificates bound to national-standard (GM) gateways: one per use (signature, encryption).

use openvgw_core::model::{CertificateAssociation, CertificateUse, CryptoSuite, Index, Scope};
use openvgw_core::{now_ms, Error, Field, Kind, Page, PageRequest, Precondition, Result, Rule};
use openvgw_store::ListQuery;

use crate::{gateway_for_change, Ctx, Service};

impl Service {
    /// Binds a certificate to a gateway; binding one for a use that already has one replaces the old binding.
    pub fn associate_certificate(
        &self,
        ctx: &Ctx,
        gateway_id: &str,
        certificate_id: &str,
        usage: CertificateUse,
    ) -> Result<()> {
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, ctx, gateway_id)?;
            if gw.crypto_suite != CryptoSuite::NationalStandard {
                return Err(Error::Precondition(Precondition::NotNationalStandard));
            }
            let same_use = ListQuery::children_of(&ctx.scope, gateway_id).key(Index::CertificateType, usage.as_str());
            for old in tx.all::<CertificateAssociation>(&same_use)? {
                tx.delete(Kind::CertificateAssociation, &old.id)?;
            }
            tx.insert(&CertificateAssociation {
                id: ctx.new_id(Kind::CertificateAssociation),
                scope: ctx.scope.clone(),
                gateway_id: gw.id,
                certificate_id: certificate_id.to_string(),
                usage,
                created_at: now_ms(),
            })
        })
    }

    pub fn dissociate_certificate(
        &self,
        ctx: &Ctx,
        gateway_id: &str,
        certificate_id: &str,
        usage: CertificateUse,
    ) -> Result<()> {
        self.mutate(ctx, |tx| {
            gateway_for_change(tx, ctx, gateway_id)?;
            let q = ListQuery::children_of(&ctx.scope, gateway_id)
                .key(Index::CertificateType, usage.as_str())
                .key(Index::CertificateId, certificate_id);
            let found = tx
                .first::<CertificateAssociation>(&q)?
                .ok_or(Error::invalid(Field::CertificateId, Rule::NotApplicable))?;
            tx.delete(Kind::CertificateAssociation, &found.id)
        })
    }

    pub fn list_certificate_associations(
        &self,
        scope: &Scope,
        gateway_id: Option<&str>,
        certificate_id: Option<&str>,
        usage: Option<CertificateUse>,
        page: &PageRequest,
    ) -> Result<Page<CertificateAssociation>> {
        self.read(|tx| {
            let mut q = ListQuery { scope: Some(scope), parent_id: gateway_id, ..Default::default() };
            if let Some(c) = certificate_id {
                q.keys.push((Index::CertificateId, c.to_string()));
            }
            if let Some(u) = usage {
                q.keys.push((Index::CertificateType, u.as_str().to_string()));
            }
            tx.list(&q, page)
        })
    }
}
