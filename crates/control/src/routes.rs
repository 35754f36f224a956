//! Destination routes and policy routes of a VPN gateway (next hop = one of its connections).

use ipnet::Ipv4Net;
use openvgw_core::model::{Index, RouteEntry, RouteOrigin, Scope, VpnConnection, VpnGateway};
use openvgw_core::{now_ms, Error, Field, Kind, Page, PageRequest, Quota, Result, Rule};
use openvgw_store::{ListQuery, Tx};

use crate::{bump, gateway_for_change, quota, Ctx, Service};

#[derive(Debug, Clone)]
pub struct NewRoute {
    pub gateway_id: String,
    /// `Some` for a policy route.
    pub source: Option<Ipv4Net>,
    pub dest: Ipv4Net,
    pub next_hop: String,
    pub weight: u32,
    pub priority: Option<u32>,
    pub published: bool,
    pub description: String,
}

/// Which source a route lookup matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMatch {
    /// A destination route.
    Destination,
    /// The policy route with exactly this source.
    Policy(Ipv4Net),
    /// The one policy route to `dest` via `next_hop`, whatever its source (an API that names none).
    AnyPolicy,
}

/// Identifies one route by what the APIs address it with.
#[derive(Debug, Clone)]
pub struct RouteKey {
    pub gateway_id: String,
    pub source: SourceMatch,
    pub dest: Ipv4Net,
    pub next_hop: String,
    /// The weight the caller believes the route has (a mismatch means the route is not found).
    pub weight: Option<u32>,
}

fn find(tx: &Tx, scope: &Scope, key: &RouteKey) -> Result<RouteEntry> {
    let routes: Vec<RouteEntry> = tx.all(
        &ListQuery::children_of(scope, &key.gateway_id)
            .key(Index::RouteDest, key.dest.to_string())
            .key(Index::NextHop, key.next_hop.clone()),
    )?;
    routes
        .into_iter()
        .find(|r| {
            let source_ok = match key.source {
                SourceMatch::Destination => r.source.is_none(),
                SourceMatch::Policy(s) => r.source == Some(s),
                SourceMatch::AnyPolicy => r.source.is_some(),
            };
            source_ok && key.weight.is_none_or(|w| w == r.weight)
        })
        .ok_or_else(|| Error::not_found(Kind::RouteEntry, key.dest.to_string()))
}

impl Service {
    pub fn create_route(&self, ctx: &Ctx, input: NewRoute) -> Result<RouteEntry> {
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let gw = gateway_for_change(tx, ctx, &input.gateway_id)?;
            let hop: Option<VpnConnection> = tx.get(scope, &input.next_hop)?;
            if hop.as_ref().is_none_or(|c| c.gateway_id != gw.id) {
                return Err(Error::invalid(Field::NextHop, Rule::NotApplicable));
            }
            let siblings = ListQuery::children_of(scope, &gw.id);
            quota(
                tx.count::<RouteEntry>(&siblings)?,
                self.config.quotas.route_entries_per_gateway,
                Quota::RouteEntries,
            )?;
            let same: Vec<RouteEntry> = tx.all(
                &siblings.key(Index::RouteDest, input.dest.to_string()).key(Index::NextHop, input.next_hop.clone()),
            )?;
            if same.iter().any(|r| r.source == input.source) {
                return Err(Error::AlreadyExists { kind: Kind::RouteEntry, what: input.dest.to_string() });
            }
            let route = RouteEntry {
                id: ctx.new_id(Kind::RouteEntry),
                scope: scope.clone(),
                gateway_id: gw.id.clone(),
                source: input.source,
                dest: input.dest,
                next_hop: input.next_hop.clone(),
                weight: input.weight,
                // Policy routes without a priority get the vendors' common default.
                priority: input.priority.or(input.source.map(|_| 10)),
                published: input.published,
                description: input.description.clone(),
                origin: RouteOrigin::Custom,
                as_path: Vec::new(),
                created_at: now_ms(),
            };
            tx.insert(&route)?;
            bump(tx, gw)?;
            Ok(route)
        })
    }

    pub fn publish_route(&self, ctx: &Ctx, key: RouteKey, publish: bool) -> Result<()> {
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, ctx, &key.gateway_id)?;
            let mut r = find(tx, &ctx.scope, &key)?;
            if r.published != publish {
                r.published = publish;
                tx.update(&r)?;
                bump(tx, gw)?;
            }
            Ok(())
        })
    }

    pub fn modify_route_weight(&self, ctx: &Ctx, key: RouteKey, new_weight: u32) -> Result<()> {
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, ctx, &key.gateway_id)?;
            let mut r = find(tx, &ctx.scope, &key)?;
            if r.weight != new_weight {
                r.weight = new_weight;
                tx.update(&r)?;
                bump(tx, gw)?;
            }
            Ok(())
        })
    }

    pub fn delete_route(&self, ctx: &Ctx, key: RouteKey) -> Result<()> {
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, ctx, &key.gateway_id)?;
            let r = find(tx, &ctx.scope, &key)?;
            tx.delete_tree(Kind::RouteEntry, &r.id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    /// Routes of a gateway: destination routes (`policy == false`) or policy routes; `origin` narrows to custom or
    /// system routes.
    pub fn list_routes(
        &self,
        scope: &Scope,
        gateway_id: &str,
        policy: bool,
        origin: Option<RouteOrigin>,
        page: &PageRequest,
    ) -> Result<Page<RouteEntry>> {
        self.read(|tx| {
            let _: VpnGateway = tx.require(scope, gateway_id)?;
            let all: Vec<RouteEntry> = tx.all(&ListQuery::children_of(scope, gateway_id))?;
            let matching: Vec<RouteEntry> =
                all.into_iter().filter(|r| r.is_policy() == policy && origin.is_none_or(|o| o == r.origin)).collect();
            Ok(Page::of_vec(matching, page, |r| openvgw_core::Cursor(r.id.clone())))
        })
    }
}
