//! Customer gateways: the on-premises end of IPsec connections.

use openvgw_core::model::{
    CertificateInfo, CustomerGateway, Extensions, Index, PeerIdentity, Scope, Tag, VpnConnection,
};
use openvgw_core::{now_ms, Error, Kind, Page, PageRequest, Precondition, Quota, Result, Secret};
use openvgw_store::ListQuery;

use crate::{page_with_tags, quota, with_tags, Ctx, Service, Tagged};

#[derive(Debug, Clone)]
pub struct NewCustomerGateway {
    pub identity: PeerIdentity,
    pub name: Option<String>,
    pub description: String,
    pub asn: Option<u64>,
    pub bgp_auth_key: Option<Secret>,
    pub ca_certificate: Option<CertificateInfo>,
    pub tags: Vec<Tag>,
    pub ext: Extensions,
}

#[derive(Debug, Clone, Default)]
pub struct CustomerGatewayChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub bgp_auth_key: Option<Secret>,
    pub ca_certificate: Option<CertificateInfo>,
}

impl Service {
    pub fn create_customer_gateway(&self, ctx: &Ctx, input: NewCustomerGateway) -> Result<CustomerGateway> {
        if input.bgp_auth_key.is_some() && input.asn.is_none() {
            return Err(Error::Precondition(Precondition::AsnRequiredForAuthKey));
        }
        self.mutate_store_only(ctx, |tx| {
            let scope = &ctx.scope;
            quota(
                tx.count::<CustomerGateway>(&ListQuery::in_scope(scope))?,
                self.config.quotas.customer_gateways_per_region,
                Quota::CustomerGateways,
            )?;
            let key = input.identity.key();
            if tx.count::<CustomerGateway>(&ListQuery::in_scope(scope).key(Index::PeerIdentity, key.clone()))? > 0 {
                return Err(Error::AlreadyExists { kind: Kind::CustomerGateway, what: key });
            }
            let id = ctx.new_id(Kind::CustomerGateway);
            let now = now_ms();
            let cgw = CustomerGateway {
                name: input.name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: scope.clone(),
                description: input.description.clone(),
                identity: input.identity.clone(),
                asn: input.asn,
                bgp_auth_key: input.bgp_auth_key.clone(),
                ca_certificate: input.ca_certificate.clone(),
                created_at: now,
                updated_at: now,
                ext: input.ext.clone(),
            };
            tx.insert(&cgw)?;
            self.put_tags(tx, scope, Kind::CustomerGateway, &cgw.id, &input.tags)?;
            Ok(cgw)
        })
    }

    pub fn modify_customer_gateway(
        &self,
        ctx: &Ctx,
        id: &str,
        changes: CustomerGatewayChanges,
    ) -> Result<CustomerGateway> {
        self.mutate(ctx, |tx| {
            let mut cgw: CustomerGateway = tx.require(&ctx.scope, id)?;
            if let Some(k) = changes.bgp_auth_key {
                if cgw.asn.is_none() {
                    return Err(Error::Precondition(Precondition::AsnRequiredForAuthKey));
                }
                cgw.bgp_auth_key = Some(k);
            }
            if let Some(n) = changes.name {
                cgw.name = n;
            }
            if let Some(d) = changes.description {
                cgw.description = d;
            }
            if let Some(c) = changes.ca_certificate {
                cgw.ca_certificate = Some(c);
            }
            cgw.updated_at = now_ms();
            tx.update(&cgw)?;
            Ok(cgw)
        })
    }

    pub fn get_customer_gateway(&self, scope: &Scope, id: &str) -> Result<Tagged<CustomerGateway>> {
        self.read(|tx| with_tags(tx, tx.require::<CustomerGateway>(scope, id)?))
    }

    pub fn list_customer_gateways(
        &self,
        scope: &Scope,
        id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Tagged<CustomerGateway>>> {
        self.read(|tx| {
            let q = ListQuery { scope: Some(scope), id, ..Default::default() };
            page_with_tags(tx, tx.list::<CustomerGateway>(&q, page)?)
        })
    }

    pub fn delete_customer_gateway(&self, ctx: &Ctx, id: &str) -> Result<()> {
        // Refused while a connection uses it, so no intent changes.
        self.mutate_store_only(ctx, |tx| {
            let cgw: CustomerGateway = tx.require(&ctx.scope, id)?;
            let users = ListQuery::in_scope(&ctx.scope).key(Index::CustomerGateway, cgw.id.clone());
            if tx.count::<VpnConnection>(&users)? > 0 {
                return Err(Error::InUse { kind: Kind::CustomerGateway, id: cgw.id, by: Kind::VpnConnection });
            }
            tx.delete_tree(Kind::CustomerGateway, id)
        })
    }
}
