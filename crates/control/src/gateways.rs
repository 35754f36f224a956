//! VPN gateways: create, modify, describe, delete; public and private address allocation.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::model::{GatewayPhase, GatewayStatus, Scope, Vpc, VpnGateway};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Quota, Result};
use openvgw_store::{ListQuery, TagFilter, Tx};
use rand::Rng;

use crate::{quota, Ctx, Listed, Page, Service, Tagged};

#[derive(Debug, Clone)]
pub struct NewGateway {
    pub name: Option<String>,
    pub vpc_id: String,
    pub vswitch_id: Option<String>,
    pub bandwidth_mbps: u32,
    pub charge_type: Option<String>,
    pub period_months: Option<u32>,
    pub auto_pay: bool,
    pub enable_ipsec: bool,
    pub enable_ssl: bool,
    pub ssl_connections: Option<u32>,
    pub vpn_type: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GatewayChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub auto_propagate: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct GatewayFilter {
    pub vpc_id: Option<String>,
    pub gateway_id: Option<String>,
    pub status: Option<GatewayStatus>,
    pub business_status: Option<String>,
    pub tags: Vec<TagFilter>,
}

const BANDWIDTHS: &[u32] = &[5, 10, 20, 50, 100, 200, 500, 1000];
const PERIODS: &[u32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 24, 36];
const SSL_CONNECTIONS: &[u32] = &[5, 10, 20, 50, 100, 200, 500, 1000];

fn validate_vpc_id(id: &str) -> Result<()> {
    let ok = id.len() <= 64
        && id
            .strip_prefix("vpc-")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::VpcId, "must look like vpc-xxxxxxxx"))
    }
}

/// Adds `months` calendar months to a unix-ms instant (end of a prepaid period).
fn add_months(ms: i64, months: u32) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms / 1000) else {
        return ms;
    };
    let total = t.month() as i32 - 1 + months as i32;
    let year = t.year() + total / 12;
    let Ok(month) = time::Month::try_from((total % 12 + 1) as u8) else {
        return ms;
    };
    let day = t.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day)
        .map(|d| d.with_time(t.time()).assume_utc().unix_timestamp() * 1000)
        .unwrap_or(ms)
}

/// The record of a VPC that openvgw allocated an address block for.
pub fn find_vpc(tx: &Tx, scope: &Scope, vpc_id: &str) -> Result<Option<Vpc>> {
    Ok(tx
        .all::<Vpc>(&ListQuery { scope: Some(scope), lookup_key: Some(vpc_id), ..Default::default() })?
        .into_iter()
        .next())
}

impl Service {
    /// The VPC's address block: declared in the config, else a /24 claimed from `vpc_auto_cidr` on first use.
    fn vpc_cidr(&self, tx: &Tx, scope: &Scope, vpc_id: &str) -> Result<Ipv4Net> {
        if let Some(v) = self.config.vpcs.iter().find(|v| v.id == vpc_id) {
            return v.cidr.parse().map_err(Error::internal);
        }
        if let Some(vpc) = find_vpc(tx, scope, vpc_id)? {
            return vpc.cidr.parse().map_err(Error::internal);
        }
        let auto: Ipv4Net = self.config.dataplane.vpc_auto_cidr.parse().map_err(Error::internal)?;
        let blocks = auto.subnets(24.max(auto.prefix_len())).map_err(Error::internal)?.map(|n| n.to_string());
        let owner = format!("vpc:{}:{}", scope.tenant_id, vpc_id);
        let cidr = tx
            .claim_address("vpc-blocks", blocks, &owner)?
            .ok_or(Error::QuotaFull { quota: Quota::PublicIps, limit: 0 })?;
        let record = Vpc {
            id: Kind::Vpc.new_id(),
            vpc_id: vpc_id.to_string(),
            scope: scope.clone(),
            cidr: cidr.clone(),
            created_at: now_ms(),
        };
        tx.insert(&record)?;
        cidr.parse().map_err(Error::internal)
    }

    fn allocate_addresses(&self, tx: &Tx, scope: &Scope, vpc_id: &str, gateway_id: &str) -> Result<(String, String)> {
        let pools: Vec<Ipv4Net> = self
            .config
            .dataplane
            .eip_pool
            .split(',')
            .map(|p| p.trim().parse().map_err(Error::internal))
            .collect::<Result<_>>()?;
        let candidates = pools.into_iter().flat_map(|p| p.hosts()).map(|ip| ip.to_string());
        let public_ip = tx
            .claim_address("eip", candidates, gateway_id)?
            .ok_or(Error::QuotaFull { quota: Quota::PublicIps, limit: 0 })?;
        let cidr = self.vpc_cidr(tx, scope, vpc_id)?;
        // The first host is the VPC's router; gateways take the ones after it.
        let hosts = cidr.hosts().skip(1).map(|ip: Ipv4Addr| ip.to_string());
        let private_ip = tx
            .claim_address(&format!("vpc:{}:{}", scope.tenant_id, vpc_id), hosts, gateway_id)?
            .ok_or(Error::QuotaFull { quota: Quota::PublicIps, limit: 0 })?;
        Ok((public_ip, private_ip))
    }

    pub fn create_gateway(&self, ctx: &Ctx, input: NewGateway) -> Result<VpnGateway> {
        self.check_region(&ctx.scope.region)?;
        validate_vpc_id(&input.vpc_id)?;
        if let Some(name) = &input.name {
            validate::name(name, 2, 100, false)?;
        }
        if !BANDWIDTHS.contains(&input.bandwidth_mbps) {
            return Err(Error::invalid(Field::Bandwidth, "must be 5, 10, 20, 50, 100, 200, 500 or 1000"));
        }
        let charge_type = match input.charge_type.as_deref().map(str::to_ascii_uppercase) {
            None => "PREPAY".to_string(),
            Some(c) if c == "PREPAY" || c == "POSTPAY" => c,
            Some(_) => return Err(Error::invalid(Field::ChargeType, "must be PREPAY or POSTPAY")),
        };
        if let Some(p) = input.period_months {
            if !PERIODS.contains(&p) {
                return Err(Error::invalid(Field::Period, "must be 1-9, 12, 24 or 36"));
            }
        }
        let ssl_connections = input.ssl_connections.unwrap_or(5);
        if !SSL_CONNECTIONS.contains(&ssl_connections) {
            return Err(Error::invalid(Field::SslConnections, "must be 5, 10, 20, 50, 100, 200, 500 or 1000"));
        }
        let vpn_type = match input.vpn_type.as_deref() {
            None => "Normal".to_string(),
            Some(t) if t.eq_ignore_ascii_case("normal") => "Normal".to_string(),
            Some(t) if t.eq_ignore_ascii_case("nationalstandard") => "NationalStandard".to_string(),
            Some(_) => return Err(Error::invalid(Field::VpnType, "must be Normal or NationalStandard")),
        };
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let existing = tx.count::<VpnGateway>(&ListQuery { scope: Some(scope), ..Default::default() })?;
            quota(existing, self.config.quotas.vpn_gateways_per_region, Quota::VpnGateways)?;
            let id = Kind::VpnGateway.new_id();
            let (internet_ip, intranet_ip) = self.allocate_addresses(tx, scope, &input.vpc_id, &id)?;
            let created_at = now_ms();
            let end_time = match input.period_months {
                Some(p) => add_months(created_at, p),
                // No period: the gateway does not expire (Alibaba's long-term end time).
                None => 4_102_416_000_000,
            };
            let gw = VpnGateway {
                name: input.name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: scope.clone(),
                description: String::new(),
                vpc_id: input.vpc_id.clone(),
                vswitch_id: input.vswitch_id.clone().unwrap_or_default(),
                bandwidth_mbps: input.bandwidth_mbps,
                charge_type: charge_type.clone(),
                period_months: input.period_months,
                end_time,
                auto_pay: input.auto_pay,
                enable_ipsec: input.enable_ipsec,
                enable_ssl: input.enable_ssl,
                ssl_connections,
                vpn_type: vpn_type.clone(),
                internet_ip,
                intranet_ip,
                auto_propagate: true,
                enable_bgp: false,
                order_id: rand::thread_rng().gen_range(100_000_000_000_000..999_999_999_999_999),
                created_at,
                phase: GatewayPhase::Init,
                generation: 1,
                applied_generation: 0,
                system_tags: BTreeMap::from([("VpnVersion".to_string(), env!("CARGO_PKG_VERSION").to_string())]),
            };
            tx.insert(&gw)?;
            Ok(gw)
        })
    }

    pub fn modify_gateway(&self, ctx: &Ctx, id: &str, changes: GatewayChanges) -> Result<VpnGateway> {
        self.check_region(&ctx.scope.region)?;
        if let Some(n) = &changes.name {
            validate::name(n, 2, 100, false)?;
        }
        if let Some(d) = &changes.description {
            validate::description(d, 100)?;
        }
        self.mutate(ctx, |tx| {
            let mut gw: VpnGateway = tx.require(&ctx.scope, id)?;
            if gw.status() == GatewayStatus::Deleting {
                return Err(Error::GatewayConfiguring);
            }
            if let Some(n) = changes.name {
                gw.name = n;
            }
            if let Some(d) = changes.description {
                gw.description = d;
            }
            if let Some(a) = changes.auto_propagate {
                let bgp: Vec<openvgw_core::model::VpnConnection> = tx.children_unscoped(&gw.id)?;
                if !a && bgp.iter().any(|c| c.bgp.enable) {
                    return Err(Error::BgpConnectionsExist);
                }
                gw.auto_propagate = a;
            }
            tx.update(&gw)?;
            Ok(gw)
        })
    }

    pub fn get_gateway(&self, scope: &Scope, id: &str) -> Result<Tagged<VpnGateway>> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let gw: VpnGateway = tx.require(scope, id)?;
            let tags = tx.tags_of(id)?;
            Ok(Tagged { item: gw, tags })
        })
    }

    pub fn list_gateways(
        &self,
        scope: &Scope,
        filter: &GatewayFilter,
        page: Page,
    ) -> Result<Listed<Tagged<VpnGateway>>> {
        self.check_region(&scope.region)?;
        if let Some(b) = &filter.business_status {
            if b != "Normal" && b != "FinancialLocked" {
                return Err(Error::invalid(Field::ChargeType, "BusinessStatus must be Normal or FinancialLocked"));
            }
        }
        self.read(|tx| {
            if filter.business_status.as_deref() == Some("FinancialLocked") {
                // openvgw does no billing: no gateway is ever locked.
                return Ok(Listed { items: vec![], total: 0 });
            }
            let mut q = ListQuery {
                scope: Some(scope),
                id: filter.gateway_id.as_deref(),
                tags: filter.tags.clone(),
                ..Default::default()
            };
            if let Some(v) = &filter.vpc_id {
                q.parent_id = Some(v);
            }
            let (items, total) = match filter.status {
                // Status is derived from phase and generations, so filter after loading.
                Some(status) => {
                    let all: Vec<VpnGateway> = tx.all(&q)?;
                    let matching: Vec<VpnGateway> = all.into_iter().filter(|g| g.status() == status).collect();
                    let total = matching.len() as u64;
                    let items = matching.into_iter().skip(page.offset() as usize).take(page.size as usize).collect();
                    (items, total)
                }
                None => {
                    q.offset = page.offset();
                    q.limit = Some(page.size);
                    tx.list::<VpnGateway>(&q)?
                }
            };
            let items = items
                .into_iter()
                .map(|gw| Ok(Tagged { tags: tx.tags_of(&gw.id)?, item: gw }))
                .collect::<Result<Vec<_>>>()?;
            Ok(Listed { items, total })
        })
    }

    /// Marks the gateway `deleting`; the reconciler tears the data plane down and then removes it with its children.
    pub fn delete_gateway(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let mut gw: VpnGateway = tx.require(&ctx.scope, id)?;
            if matches!(gw.status(), GatewayStatus::Deleting) {
                return Ok(());
            }
            if matches!(gw.status(), GatewayStatus::Updating) {
                return Err(Error::GatewayConfiguring);
            }
            gw.phase = GatewayPhase::Deleting;
            gw.generation += 1;
            tx.update(&gw)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_years_and_clamp_days() {
        // 2021-01-31T00:00:00Z + 1 month -> 2021-02-28
        let jan31 = 1_612_051_200_000;
        assert_eq!(add_months(jan31, 1), 1_614_470_400_000);
        // + 12 months -> 2022-01-31
        assert_eq!(add_months(jan31, 12), 1_643_587_200_000);
    }

    #[test]
    fn vpc_ids() {
        assert!(validate_vpc_id("vpc-bp1ub1yt9cvakoelj0001").is_ok());
        assert!(validate_vpc_id("vpc-").is_err());
        assert!(validate_vpc_id("vsw-abc").is_err());
    }
}
