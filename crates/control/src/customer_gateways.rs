//! Customer gateways: the on-premises end of IPsec connections.

use openvgw_core::model::{CustomerGateway, Scope, Tag, VpnConnection};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Quota, Result};
use openvgw_store::ListQuery;

use crate::{quota, Ctx, Listed, Page, Service, Tagged};

#[derive(Debug, Clone, Default)]
pub struct NewCustomerGateway {
    pub ip_address: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub asn: Option<String>,
    pub auth_key: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomerGatewayChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub auth_key: Option<String>,
}

impl Service {
    pub fn create_customer_gateway(&self, ctx: &Ctx, input: NewCustomerGateway) -> Result<CustomerGateway> {
        self.check_region(&ctx.scope.region)?;
        let ip = validate::ipv4(&input.ip_address, Field::IpAddress)?.to_string();
        if let Some(n) = &input.name {
            validate::name(n, 2, 128, true)?;
        }
        if let Some(d) = &input.description {
            validate::description(d, 100)?;
        }
        let asn = input.asn.as_deref().map(validate::asn).transpose()?;
        if let Some(k) = &input.auth_key {
            validate::auth_key(k)?;
            if asn.is_none() {
                return Err(Error::MissingAsn);
            }
        }
        self.validate_tags(&input.tags)?;
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let q = ListQuery { scope: Some(scope), ..Default::default() };
            quota(
                tx.count::<CustomerGateway>(&q)?,
                self.config.quotas.customer_gateways_per_region,
                Quota::CustomerGateways,
            )?;
            let dup = ListQuery { lookup_key: Some(&ip), ..q };
            if tx.count::<CustomerGateway>(&dup)? > 0 {
                return Err(Error::AlreadyExists { kind: Kind::CustomerGateway, what: ip.clone() });
            }
            let id = Kind::CustomerGateway.new_id();
            let cgw = CustomerGateway {
                name: input.name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: scope.clone(),
                description: input.description.clone().unwrap_or_default(),
                ip_address: ip.clone(),
                asn,
                auth_key: input.auth_key.clone(),
                created_at: now_ms(),
            };
            tx.insert(&cgw)?;
            for t in &input.tags {
                tx.put_tag(scope, Kind::CustomerGateway, &cgw.id, t)?;
            }
            Ok(cgw)
        })
    }

    pub fn modify_customer_gateway(
        &self,
        ctx: &Ctx,
        id: &str,
        changes: CustomerGatewayChanges,
    ) -> Result<CustomerGateway> {
        self.check_region(&ctx.scope.region)?;
        if let Some(n) = &changes.name {
            validate::name(n, 2, 128, true)?;
        }
        if let Some(d) = &changes.description {
            validate::description(d, 100)?;
        }
        if let Some(k) = &changes.auth_key {
            validate::auth_key(k)?;
        }
        self.mutate(ctx, |tx| {
            let mut cgw: CustomerGateway = tx.require(&ctx.scope, id)?;
            if let Some(k) = changes.auth_key {
                if cgw.asn.is_none() {
                    return Err(Error::MissingAsn);
                }
                cgw.auth_key = Some(k);
            }
            if let Some(n) = changes.name {
                cgw.name = n;
            }
            if let Some(d) = changes.description {
                cgw.description = d;
            }
            tx.update(&cgw)?;
            Ok(cgw)
        })
    }

    pub fn get_customer_gateway(&self, scope: &Scope, id: &str) -> Result<Tagged<CustomerGateway>> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let item: CustomerGateway = tx.require(scope, id)?;
            Ok(Tagged { tags: tx.tags_of(id)?, item })
        })
    }

    pub fn list_customer_gateways(
        &self,
        scope: &Scope,
        id: Option<&str>,
        page: Page,
    ) -> Result<Listed<Tagged<CustomerGateway>>> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let q = ListQuery {
                scope: Some(scope),
                id,
                offset: page.offset(),
                limit: Some(page.size),
                ..Default::default()
            };
            let (items, total) = tx.list::<CustomerGateway>(&q)?;
            let items = items
                .into_iter()
                .map(|c| Ok(Tagged { tags: tx.tags_of(&c.id)?, item: c }))
                .collect::<Result<Vec<_>>>()?;
            Ok(Listed { items, total })
        })
    }

    pub fn delete_customer_gateway(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let cgw: CustomerGateway = tx.require(&ctx.scope, id)?;
            let users = ListQuery { scope: Some(&ctx.scope), lookup_key: Some(&cgw.id), ..Default::default() };
            if tx.count::<VpnConnection>(&users)? > 0 {
                return Err(Error::InUse { kind: Kind::CustomerGateway, id: cgw.id, by: Kind::VpnConnection });
            }
            tx.delete(Kind::CustomerGateway, id)
        })
    }
}
