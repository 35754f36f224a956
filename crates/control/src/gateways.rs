//! VPN gateways: create, modify, describe, delete; public and inside address allocation.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::model::{
    CryptoSuite, Extensions, GatewayPhase, GatewayRole, GatewayStatus, HaMode, Index, PublicIp, Scope, Tag, Vpc,
    VpnConnection, VpnGateway,
};
use openvgw_core::{now_ms, Error, Field, IdStyle, Kind, Page, PageRequest, Pool, Precondition, Quota, Result, Rule};
use openvgw_store::{ListQuery, TagFilter, Tx};

use crate::{page_with_tags, quota, with_tags, Ctx, Service, Tagged};

#[derive(Debug, Clone)]
pub struct NewGateway {
    pub name: Option<String>,
    pub description: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub local_subnets: Vec<Ipv4Net>,
    pub bandwidth_mbps: u32,
    pub role: GatewayRole,
    pub ipsec_enabled: bool,
    pub ssl_enabled: bool,
    pub ssl_max_connections: u32,
    pub crypto_suite: CryptoSuite,
    pub ha_mode: HaMode,
    pub bgp_asn: Option<u64>,
    pub tags: Vec<Tag>,
    pub ext: Extensions,
}

#[derive(Clone, Default)]
pub struct GatewayChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub auto_propagate: Option<bool>,
    /// Changes the data plane realises: they wait for an idle gateway and reconfigure it.
    pub local_subnets: Option<Vec<Ipv4Net>>,
    pub bandwidth_mbps: Option<u32>,
    pub ssl_max_connections: Option<u32>,
    /// The dialect's own attributes (no reconfiguration unless one of the above changes too).
    pub ext: Option<crate::ExtUpdate>,
}

#[derive(Debug, Clone, Default)]
pub struct GatewayFilter {
    pub vpc_id: Option<String>,
    pub gateway_id: Option<String>,
    pub status: Option<GatewayStatus>,
    pub role: Option<GatewayRole>,
    pub tags: Vec<TagFilter>,
}

/// The record of a VPC that openvgw allocated an address block for.
pub fn find_vpc(tx: &Tx, scope: &Scope, vpc_id: &str) -> Result<Option<Vpc>> {
    tx.first(&ListQuery::in_scope(scope).key(Index::VpcId, vpc_id))
}

fn public_ip_id(style: IdStyle) -> String {
    match style {
        IdStyle::Prefixed => format!("eip-{}", openvgw_core::ids::random_token(24)),
        IdStyle::Uuid => openvgw_core::ids::uuid_v4(),
    }
}

impl Service {
    /// The VPC's address block: declared in the config, else a /24 claimed from `vpc_auto_cidr` on first use.
    pub(crate) fn vpc_cidr(&self, tx: &Tx, scope: &Scope, vpc_id: &str) -> Result<Ipv4Net> {
        if let Some(v) = self.config.vpcs.iter().find(|v| v.id == vpc_id) {
            return v.cidr.parse().map_err(Error::internal);
        }
        if let Some(vpc) = find_vpc(tx, scope, vpc_id)? {
            return Ok(vpc.cidr);
        }
        let auto: Ipv4Net = self.config.dataplane.vpc_auto_cidr.parse().map_err(Error::internal)?;
        let blocks = auto.subnets(24.max(auto.prefix_len())).map_err(Error::internal)?.map(|n| n.to_string());
        let owner = format!("vpc:{}:{}", scope.tenant_id, vpc_id);
        let cidr: Ipv4Net = tx
            .claim_address("vpc-blocks", blocks, &owner)?
            .ok_or(Error::PoolExhausted(Pool::VpcBlocks))?
            .parse()
            .map_err(Error::internal)?;
        tx.insert(&Vpc {
            id: Kind::Vpc.new_id(IdStyle::Prefixed),
            vpc_id: vpc_id.to_string(),
            scope: scope.clone(),
            cidr,
            created_at: now_ms(),
        })?;
        Ok(cidr)
    }

    /// `count` public addresses from the EIP pool and as many inside addresses in the VPC (an HA pair's halves may
    /// run on two hosts, each at its own).
    fn allocate_addresses(
        &self,
        tx: &Tx,
        ctx: &Ctx,
        vpc_id: &str,
        gateway_id: &str,
        count: usize,
    ) -> Result<(Vec<PublicIp>, Vec<Ipv4Addr>)> {
        let pools: Vec<Ipv4Net> = self
            .config
            .dataplane
            .eip_pool
            .split(',')
            .map(|p| p.trim().parse().map_err(Error::internal))
            .collect::<Result<_>>()?;
        let mut public = Vec::with_capacity(count);
        for _ in 0..count {
            let address = claim(tx, "eip", pools.iter().flat_map(|p| p.hosts()), gateway_id, Pool::PublicIps)?;
            public.push(PublicIp { id: public_ip_id(ctx.ids), address });
        }
        // The first host of a VPC's block is its router; gateways take the ones after it.
        let cidr = self.vpc_cidr(tx, &ctx.scope, vpc_id)?;
        let vpc_pool = format!("vpc:{}:{}", ctx.scope.tenant_id, vpc_id);
        let private = (0..count)
            .map(|_| claim(tx, &vpc_pool, cidr.hosts().skip(1), gateway_id, Pool::VpcAddresses))
            .collect::<Result<Vec<_>>>()?;
        Ok((public, private))
    }

    pub fn create_gateway(&self, ctx: &Ctx, input: NewGateway) -> Result<VpnGateway> {
        let addresses = match input.ha_mode {
            HaMode::Single => 1,
            HaMode::ActiveActive | HaMode::ActiveStandby => 2,
        };
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let existing = tx.count::<VpnGateway>(&ListQuery::in_scope(scope))?;
            quota(existing, self.config.quotas.vpn_gateways_per_region, Quota::VpnGateways)?;
            let id = ctx.new_id(Kind::VpnGateway);
            let (public_ips, private) = self.allocate_addresses(tx, ctx, &input.vpc_id, &id, addresses)?;
            let private_ip = *private.first().ok_or_else(|| Error::internal("no inside address allocated"))?;
            let now = now_ms();
            let gw = VpnGateway {
                name: input.name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: scope.clone(),
                description: input.description.clone(),
                vpc_id: input.vpc_id.clone(),
                subnet_id: input.subnet_id.clone(),
                local_subnets: input.local_subnets.clone(),
                bandwidth_mbps: input.bandwidth_mbps,
                role: input.role,
                ipsec_enabled: input.ipsec_enabled,
                ssl_enabled: input.ssl_enabled,
                ssl_max_connections: input.ssl_max_connections,
                crypto_suite: input.crypto_suite,
                ha_mode: input.ha_mode,
                public_ips,
                private_ip,
                second_private_ip: private.get(1).copied(),
                bgp_asn: input.bgp_asn,
                auto_propagate: true,
                enable_bgp: false,
                created_at: now,
                updated_at: now,
                phase: GatewayPhase::Init,
                generation: 1,
                applied_generation: 0,
                ext: input.ext.clone(),
            };
            tx.insert(&gw)?;
            self.put_tags(tx, scope, Kind::VpnGateway, &gw.id, &input.tags)?;
            Ok(gw)
        })
    }

    /// Name, description, propagation and the dialect's own attributes change in any state but `deleting` and never
    /// reconfigure the data plane; local subnets, bandwidth and client capacity wait for an idle gateway and do.
    pub fn modify_gateway(&self, ctx: &Ctx, id: &str, changes: GatewayChanges) -> Result<VpnGateway> {
        self.mutate(ctx, |tx| {
            let before: VpnGateway = tx.require(&ctx.scope, id)?;
            if before.status() == GatewayStatus::Deleting {
                return Err(Error::GatewayBusy { id: before.id, status: GatewayStatus::Deleting });
            }
            let mut gw = before.clone();
            if let Some(n) = &changes.name {
                gw.name = n.clone();
            }
            if let Some(d) = &changes.description {
                gw.description = d.clone();
            }
            if let Some(a) = changes.auto_propagate {
                let conns: Vec<VpnConnection> = tx.children_unscoped(&gw.id)?;
                if !a && conns.iter().any(|c| c.bgp.enable) {
                    return Err(Error::Precondition(Precondition::BgpConnectionsExist));
                }
                gw.auto_propagate = a;
            }
            if let Some(update) = &changes.ext {
                update(&mut gw.ext)?;
            }
            let data_plane = changes.local_subnets.as_ref().is_some_and(|l| *l != gw.local_subnets)
                || changes.bandwidth_mbps.is_some_and(|b| b != gw.bandwidth_mbps)
                || changes.ssl_max_connections.is_some_and(|m| m != gw.ssl_max_connections);
            if let Some(l) = &changes.local_subnets {
                gw.local_subnets = l.clone();
            }
            if let Some(b) = changes.bandwidth_mbps {
                gw.bandwidth_mbps = b;
            }
            if let Some(m) = changes.ssl_max_connections {
                gw.ssl_max_connections = m;
            }
            gw.updated_at = now_ms();
            if data_plane {
                if before.status() != GatewayStatus::Active {
                    return Err(Error::GatewayBusy { status: before.status(), id: before.id });
                }
                gw.generation += 1;
            }
            tx.update(&gw)?;
            Ok(gw)
        })
    }

    pub fn get_gateway(&self, scope: &Scope, id: &str) -> Result<Tagged<VpnGateway>> {
        self.read(|tx| with_tags(tx, tx.require::<VpnGateway>(scope, id)?))
    }

    pub fn list_gateways(
        &self,
        scope: &Scope,
        filter: &GatewayFilter,
        page: &PageRequest,
    ) -> Result<Page<Tagged<VpnGateway>>> {
        self.read(|tx| {
            let mut q = ListQuery {
                scope: Some(scope),
                id: filter.gateway_id.as_deref(),
                tags: filter.tags.clone(),
                ..Default::default()
            };
            if let Some(v) = &filter.vpc_id {
                q.keys.push((Index::VpcId, v.clone()));
            }
            if let Some(r) = filter.role {
                q.keys.push((Index::GatewayRole, r.as_str().to_string()));
            }
            let page = match filter.status {
                // Status is derived from phase and generations, so it is filtered after loading.
                Some(status) => {
                    let matching: Vec<VpnGateway> =
                        tx.all::<VpnGateway>(&q)?.into_iter().filter(|g| g.status() == status).collect();
                    Page::of_vec(matching, page, |g| openvgw_core::Cursor(g.id.clone()))
                }
                None => tx.list::<VpnGateway>(&q, page)?,
            };
            page_with_tags(tx, page)
        })
    }

    /// Marks the gateway `deleting`; the reconciler tears the data plane down and then removes it with its children.
    pub fn delete_gateway(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let mut gw: VpnGateway = tx.require(&ctx.scope, id)?;
            match gw.status() {
                GatewayStatus::Deleting => return Ok(()),
                GatewayStatus::Updating => {
                    return Err(Error::GatewayBusy { id: gw.id, status: GatewayStatus::Updating })
                }
                _ => {}
            }
            gw.phase = GatewayPhase::Deleting;
            gw.generation += 1;
            gw.updated_at = now_ms();
            tx.update(&gw)?;
            Ok(())
        })
    }

    /// The gateway's public address number `index` (connections bind to one).
    pub(crate) fn check_public_ip_index(gw: &VpnGateway, index: u8) -> Result<Ipv4Addr> {
        gw.public_ips
            .get(usize::from(index))
            .map(|p| p.address)
            .ok_or(Error::invalid(Field::GatewayAddress, Rule::NotApplicable))
    }
}

/// The first of `candidates` free in `pool`, claimed for `owner`; `exhausted` names the pool in the error.
fn claim(
    tx: &Tx,
    pool: &str,
    candidates: impl Iterator<Item = Ipv4Addr>,
    owner: &str,
    exhausted: Pool,
) -> Result<Ipv4Addr> {
    tx.claim_address(pool, candidates.map(|ip| ip.to_string()), owner)?
        .ok_or(Error::PoolExhausted(exhausted))?
        .parse()
        .map_err(Error::internal)
}
