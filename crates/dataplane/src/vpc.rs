//! What a gateway publishes into its VPC: the routes the VPC's router carries towards the gateway's inside address.
//! Computed here, beside the intent, so that every driver (and a control plane that gathers a VPC spread over
//! several hosts) agrees on the routes and their metrics.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::Ipv4Net;

use crate::{GatewayIntent, VpcRoute};

/// Route metric of an active (weight 100) and a standby (weight 0) published next hop; each gateway adds its own
/// offset below 100 so that two gateways publishing one destination with the same weight both keep a route.
pub const ACTIVE_METRIC: u32 = 100;
pub const STANDBY_METRIC: u32 = 200;
/// Added while the tunnel behind a published destination carries nothing (no installed CHILD SA): the VPC then
/// prefers another gateway publishing it, if one carries, over a route into a tunnel that is down; with none, the
/// route stays (a tunnel that only responds has no SA until its peer sends).
pub const NOT_CARRYING: u32 = 1000;
/// Added by a control plane that spreads a VPC over hosts to the routes of a gateway whose host it has lost touch
/// with: another gateway publishing the destination is preferred, yet a host whose agent alone restarts keeps
/// forwarding what no other gateway publishes.
pub const HOST_AWAY: u32 = 2000;

/// The destinations a gateway publishes, each with the metric of its best weight, plus [`NOT_CARRYING`] for those
/// whose tunnel is not in `carrying` (the tunnels with an installed CHILD SA); `learned`: what its BGP sessions
/// accepted (so over a tunnel that carries), published at weight 100 when the gateway propagates them.
pub fn published(intent: &GatewayIntent, learned: &[Ipv4Net], carrying: &BTreeSet<String>) -> BTreeMap<Ipv4Net, u32> {
    let offset = u32::from_str_radix(&crate::netns::short_hash(&intent.gateway_id, 4), 16).unwrap_or(0) % 100;
    let mut routes: BTreeMap<Ipv4Net, u32> = BTreeMap::new();
    let down = |tunnel: &String| if carrying.contains(tunnel) { 0 } else { NOT_CARRYING };
    let dests = intent.routes.iter().filter(|r| r.published).map(|r| (r.dest, r.weight, down(&r.tunnel_id)));
    let policy = intent.policy_routes.iter().filter(|r| r.published).map(|r| (r.dest, r.weight, down(&r.tunnel_id)));
    let learned = learned.iter().filter(|_| intent.propagate_learned).map(|n| (*n, 100, 0));
    for (dest, weight, penalty) in dests.chain(policy).chain(learned) {
        let metric = if weight > 0 { ACTIVE_METRIC } else { STANDBY_METRIC } + offset + penalty;
        let e = routes.entry(dest.trunc()).or_insert(metric);
        *e = (*e).min(metric);
    }
    routes
}

/// [`published`] as the router's routes towards the gateway, sorted.
pub fn routes(intent: &GatewayIntent, learned: &[Ipv4Net], carrying: &BTreeSet<String>) -> Vec<VpcRoute> {
    published(intent, learned, carrying)
        .into_iter()
        .map(|(dest, metric)| VpcRoute { dest, via: intent.private_ip, metric })
        .collect()
}
