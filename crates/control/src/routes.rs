//! Destination routes and policy routes of a VPN gateway (next hop = one of its connections).

use openvgw_core::model::{RouteEntry, Scope, VpnConnection};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Quota, Result};
use openvgw_store::{ListQuery, Tx};

use crate::{bump, gateway_for_change, quota, Ctx, Listed, Page, Service};

#[derive(Debug, Clone)]
pub struct NewRoute {
    pub gateway_id: String,
    /// `Some` for a policy route.
    pub route_source: Option<String>,
    pub route_dest: String,
    pub next_hop: String,
    pub weight: u32,
    pub priority: Option<u32>,
    pub publish_vpc: bool,
    pub description: Option<String>,
    pub overlay_mode: Option<String>,
}

/// Identifies one route by what the API addresses it with.
#[derive(Debug, Clone)]
pub struct RouteKey {
    pub gateway_id: String,
    pub route_source: Option<String>,
    pub route_dest: String,
    pub next_hop: String,
    /// The weight the caller believes the route has (Alibaba requires it to match).
    pub weight: Option<u32>,
}

fn check_weight(w: u32, field: Field) -> Result<u32> {
    if w == 0 || w == 100 {
        Ok(w)
    } else {
        Err(Error::invalid(field, "must be 0 or 100"))
    }
}

fn overlay(mode: Option<&str>) -> Result<String> {
    match mode {
        None => Ok("Ipsec".into()),
        Some(m) if m.eq_ignore_ascii_case("ipsec") => Ok("Ipsec".into()),
        Some(_) => Err(Error::invalid(Field::OverlayMode, "must be Ipsec")),
    }
}

fn find(tx: &Tx, scope: &Scope, key: &RouteKey, policy: bool) -> Result<RouteEntry> {
    let dest = validate::cidr(&key.route_dest, Field::RouteDest)?.to_string();
    let source =
        key.route_source.as_deref().map(|s| validate::cidr(s, Field::RouteSource)).transpose()?.map(|n| n.to_string());
    let routes: Vec<RouteEntry> = tx.all(&ListQuery {
        scope: Some(scope),
        parent_id: Some(&key.gateway_id),
        json_eq: vec![("route_dest", dest), ("next_hop", key.next_hop.clone())],
        ..Default::default()
    })?;
    routes
        .into_iter()
        .find(|r| r.is_policy() == policy && r.route_source == source && key.weight.is_none_or(|w| w == r.weight))
        .ok_or_else(|| Error::not_found(Kind::RouteEntry, &key.route_dest))
}

impl Service {
    pub fn create_route(&self, ctx: &Ctx, input: NewRoute) -> Result<RouteEntry> {
        self.check_region(&ctx.scope.region)?;
        let dest = validate::cidr(&input.route_dest, Field::RouteDest)?.to_string();
        let source = input
            .route_source
            .as_deref()
            .map(|s| validate::cidr(s, Field::RouteSource))
            .transpose()?
            .map(|n| n.to_string());
        check_weight(input.weight, Field::Weight)?;
        if let Some(p) = input.priority {
            if !(1..=100).contains(&p) {
                return Err(Error::invalid(Field::Weight, "Priority must be 1-100"));
            }
        }
        if let Some(d) = &input.description {
            validate::description(d, 100)?;
        }
        let overlay_mode = overlay(input.overlay_mode.as_deref())?;
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let gw = gateway_for_change(tx, scope, &input.gateway_id)?;
            let hop: Option<VpnConnection> = tx.get(scope, &input.next_hop)?;
            if hop.as_ref().is_none_or(|c| c.gateway_id != gw.id) {
                return Err(Error::invalid(
                    Field::NextHop,
                    format!("{} is not a connection of {}", input.next_hop, gw.id),
                ));
            }
            let siblings = ListQuery { scope: Some(scope), parent_id: Some(&gw.id), ..Default::default() };
            quota(
                tx.count::<RouteEntry>(&siblings)?,
                self.config.quotas.route_entries_per_gateway,
                Quota::RouteEntries,
            )?;
            let same_dest: Vec<RouteEntry> =
                tx.all(&ListQuery { json_eq: vec![("route_dest", dest.clone())], ..siblings })?;
            if same_dest.iter().any(|r| r.route_source == source && r.next_hop == input.next_hop) {
                return Err(Error::RouteConflict);
            }
            let route = RouteEntry {
                id: Kind::RouteEntry.new_id(),
                scope: scope.clone(),
                gateway_id: gw.id.clone(),
                route_source: source.clone(),
                route_dest: dest.clone(),
                next_hop: input.next_hop.clone(),
                weight: input.weight,
                priority: input.priority.or(source.as_ref().map(|_| 10)),
                published: input.publish_vpc,
                description: input.description.clone().unwrap_or_default(),
                overlay_mode: overlay_mode.clone(),
                created_at: now_ms(),
            };
            tx.insert(&route)?;
            bump(tx, gw)?;
            Ok(route)
        })
    }

    pub fn publish_route(&self, ctx: &Ctx, key: RouteKey, policy: bool, publish: bool) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, &ctx.scope, &key.gateway_id)?;
            let mut r = find(tx, &ctx.scope, &key, policy)?;
            if r.published != publish {
                r.published = publish;
                tx.update(&r)?;
                bump(tx, gw)?;
            }
            Ok(())
        })
    }

    pub fn modify_route_weight(&self, ctx: &Ctx, key: RouteKey, policy: bool, new_weight: u32) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        if let Some(w) = key.weight {
            check_weight(w, Field::Weight)?;
        }
        check_weight(new_weight, Field::NewWeight)?;
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, &ctx.scope, &key.gateway_id)?;
            let mut r = find(tx, &ctx.scope, &key, policy)?;
            if r.weight != new_weight {
                r.weight = new_weight;
                tx.update(&r)?;
                bump(tx, gw)?;
            }
            Ok(())
        })
    }

    pub fn delete_route(&self, ctx: &Ctx, key: RouteKey, policy: bool) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, &ctx.scope, &key.gateway_id)?;
            let r = find(tx, &ctx.scope, &key, policy)?;
            tx.delete(Kind::RouteEntry, &r.id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    /// Routes of a gateway: destination routes (`policy == false`) or policy routes.
    pub fn list_routes(&self, scope: &Scope, gateway_id: &str, policy: bool, page: Page) -> Result<Listed<RouteEntry>> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let _: openvgw_core::model::VpnGateway = tx.require(scope, gateway_id)?;
            let all: Vec<RouteEntry> =
                tx.all(&ListQuery { scope: Some(scope), parent_id: Some(gateway_id), ..Default::default() })?;
            let matching: Vec<RouteEntry> = all.into_iter().filter(|r| r.is_policy() == policy).collect();
            let total = matching.len() as u64;
            let items = matching.into_iter().skip(page.offset() as usize).take(page.size as usize).collect();
            Ok(Listed { items, total })
        })
    }
}
