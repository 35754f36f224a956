//! What a gateway publishes into its VPC: the routes the VPC's router carries towards the gateway's inside address.
//! Computed here, beside the intent, so that every driver (and a control plane that gathers a VPC spread over
//! several hosts) agrees on the routes and their metrics.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use crate::{GatewayIntent, VpcRoute};

/// Route metric of an active (weight 100) and a standby (weight 0) published next hop; each gateway adds its own
/// offset below 100 so that two gateways publishing one destination with the same weight both keep a route.
pub const ACTIVE_METRIC: u32 = 100;
pub const STANDBY_METRIC: u32 = 200;

/// The destinations a gateway publishes, each with the metric of its best weight; `learned`: what its BGP sessions
/// accepted, published at weight 100 when the gateway propagates them.
pub fn published(intent: &GatewayIntent, learned: &[Ipv4Net]) -> BTreeMap<Ipv4Net, u32> {
    let offset = u32::from_str_radix(&crate::netns::short_hash(&intent.gateway_id, 4), 16).unwrap_or(0) % 100;
    let mut routes: BTreeMap<Ipv4Net, u32> = BTreeMap::new();
    let dests = intent.routes.iter().filter(|r| r.published).map(|r| (r.dest, r.weight));
    let policy = intent.policy_routes.iter().filter(|r| r.published).map(|r| (r.dest, r.weight));
    let learned = learned.iter().filter(|_| intent.propagate_learned).map(|n| (*n, 100));
    for (dest, weight) in dests.chain(policy).chain(learned) {
        let metric = if weight > 0 { ACTIVE_METRIC } else { STANDBY_METRIC } + offset;
        let e = routes.entry(dest.trunc()).or_insert(metric);
        *e = (*e).min(metric);
    }
    routes
}

/// [`published`] as the router's routes towards the gateway, sorted.
pub fn routes(intent: &GatewayIntent, learned: &[Ipv4Net]) -> Vec<VpcRoute> {
    published(intent, learned)
        .into_iter()
        .map(|(dest, metric)| VpcRoute { dest, via: intent.private_ip, metric })
        .collect()
}
