//! The VPC's router: one namespace per VPC with a known address block, on the VPC's bridge at the block's first host
//! (the address the control plane never gives a gateway). VPC hosts use it as their gateway; it routes exactly what
//! the gateways of the VPC publish (`PublishVpnRouteEntry`, `PublishVpc`, a static connection's peer subnets),
//! each towards the publishing gateway's inside address, so a network the API has not published is not reachable
//! from the VPC through it.
//!
//! Several gateways share a router, each applied on its own: every gateway records what it publishes in a file of
//! the VPC's directory, and the router's routes are recomputed from all of them under the VPC's lock. The router goes
//! with the last gateway of its VPC. Its name does not start with the gateway prefix, so it is never mistaken for a
//! leftover gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::names::{self, NS_VPC_IF};
use super::net::{self, Route, RouteTarget};
use super::sys::{self, failed};
use super::Inner;
use crate::{DataplaneError, GatewayIntent, VpcRoute, VpcRouter};

/// What one gateway publishes into its VPC, as recorded beside the VPC's router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Published {
    pub vpc_cidr: Ipv4Net,
    pub via: Ipv4Addr,
    /// Destination -> best metric.
    pub routes: BTreeMap<Ipv4Net, u32>,
    /// The routes of the VPC's gateways on other hosts, when the control plane runs the router beside this gateway
    /// ([`VpcRouter::Here`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub others: Option<Vec<VpcRoute>>,
}

/// The record of what `intent` publishes (see [`crate::vpc::published`]).
pub(super) fn published(
    intent: &GatewayIntent,
    vpc_cidr: Ipv4Net,
    learned: &[Ipv4Net],
    carrying: &BTreeSet<String>,
) -> Published {
    let others = match &intent.vpc_router {
        VpcRouter::Here { others } => Some(others.clone()),
        VpcRouter::Local | VpcRouter::Elsewhere => None,
    };
    Published { vpc_cidr, via: intent.private_ip, routes: crate::vpc::published(intent, learned, carrying), others }
}

/// The router's routes from every gateway's record.
pub(super) fn router_routes(records: &[Published]) -> BTreeSet<Route> {
    let route = |dest: &Ipv4Net, via: &Ipv4Addr, metric: u32| Route {
        table: "main".into(),
        dst: dest.to_string(),
        target: RouteTarget::Via(via.to_string()),
        metric,
    };
    records
        .iter()
        .flat_map(|p| {
            let own = p.routes.iter().map(|(dest, metric)| route(dest, &p.via, *metric));
            let others = p.others.iter().flatten().map(|r| route(&r.dest, &r.via, r.metric));
            own.chain(others).collect::<Vec<_>>()
        })
        .collect()
}

/// The router's names: its namespace (outside the gateway prefix) and the root end of its veth.
pub(super) struct RouterNames {
    pub namespace: String,
    pub veth: String,
    pub token: String,
}

impl Inner {
    pub(super) fn router_names(&self, vpc_id: &str) -> RouterNames {
        self.router_names_of(names::short_hash(&format!("{}/{vpc_id}", self.opts.namespace_prefix), 8))
    }

    /// The names behind a VPC's token (the name of its records' directory).
    fn router_names_of(&self, token: String) -> RouterNames {
        let base = self.opts.namespace_prefix.trim_end_matches('-');
        RouterNames { namespace: format!("{base}r-{token}"), veth: format!("ovgw{token}r"), token }
    }

    /// Where the VPCs' records live: beside the gateways' directories.
    fn vpcs_dir(&self) -> PathBuf {
        self.gateways_dir.parent().map_or_else(|| self.gateways_dir.join("vpcs"), |p| p.join("vpcs"))
    }

    fn router_dir(&self, token: &str) -> PathBuf {
        self.vpcs_dir().join(token)
    }

    fn router_lock(&self, token: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.router_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(token.to_string()).or_default().clone()
    }

    fn records(&self, token: &str) -> Vec<Published> {
        let Ok(entries) = std::fs::read_dir(self.router_dir(token)) else {
            return Vec::new();
        };
        let mut out: Vec<Published> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|raw| serde_json::from_slice(&raw).ok())
            .collect();
        out.sort_by_key(|p| p.via);
        out
    }

    /// Records what `intent` publishes and brings its VPC's router to the union of its gateways' records (with the
    /// other hosts' routes when the router runs here for them); a gateway whose router is elsewhere leaves it.
    pub(super) async fn sync_vpc_router(
        &self,
        intent: &GatewayIntent,
        vpc_cidr: Ipv4Net,
        learned: &[Ipv4Net],
        carrying: &BTreeSet<String>,
    ) -> Result<(), DataplaneError> {
        if intent.vpc_router == VpcRouter::Elsewhere {
            return self.leave_vpc_router(&intent.gateway_id).await;
        }
        let rn = self.router_names(&intent.vpc_id);
        let lock = self.router_lock(&rn.token);
        let _held = lock.lock().await;
        let dir = self.router_dir(&rn.token);
        sys::create_private_dir(&dir)?;
        let record = published(intent, vpc_cidr, learned, carrying);
        let json = serde_json::to_vec(&record).map_err(|e| failed(format!("serialising published routes: {e}")))?;
        sys::write_if_changed(&dir.join(format!("{}.json", intent.gateway_id)), &json, 0o600)?;
        self.converge_router(&rn, &intent.vpc_id, vpc_cidr).await
    }

    async fn converge_router(&self, rn: &RouterNames, vpc_id: &str, vpc_cidr: Ipv4Net) -> Result<(), DataplaneError> {
        let ns = rn.namespace.as_str();
        let address = vpc_cidr.hosts().next().ok_or_else(|| failed(format!("VPC block {vpc_cidr} has no host")))?;
        // Built once (each step costs a process or two on every gateway's apply); the routes every time.
        if sys::netns_exists(ns) && sys::link_exists(Some(ns), NS_VPC_IF).await {
            return net::sync_routes(ns, &router_routes(&self.records(&rn.token))).await;
        }
        if net::ensure_namespace(ns).await? {
            tracing::info!(vpc = vpc_id, namespace = ns, "created the VPC's router");
        }
        // It forwards back out of the interface it received on (host -> router -> gateway on one segment): a
        // redirect would teach the host to bypass it, and with it what publishing decides.
        net::sysctl(ns, &["net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0"]).await?;
        let bridge = self.vpc_bridge(vpc_id);
        net::ensure_bridge(&bridge).await?;
        net::ensure_veth(ns, &rn.veth, NS_VPC_IF, &bridge, &names::stable_mac(ns, NS_VPC_IF)).await?;
        net::sysctl(ns, &["net.ipv4.conf.vpc0.send_redirects=0"]).await?;
        net::ensure_addresses(ns, NS_VPC_IF, &[format!("{address}/{}", vpc_cidr.prefix_len())].into()).await?;
        net::sync_routes(ns, &router_routes(&self.records(&rn.token))).await
    }

    /// Forgets a removed gateway's routes; the router goes with the last gateway of its VPC.
    pub(super) async fn leave_vpc_router(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        let Ok(dirs) = std::fs::read_dir(self.vpcs_dir()) else {
            return Ok(());
        };
        for dir in dirs.flatten().map(|d| d.path()) {
            let record = dir.join(format!("{gateway_id}.json"));
            let Some(token) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if !record.exists() {
                continue;
            }
            let lock = self.router_lock(&token);
            let _held = lock.lock().await;
            let _ = std::fs::remove_file(&record);
            let RouterNames { namespace: ns, veth, token } = self.router_names_of(token);
            if self.records(&token).is_empty() {
                if sys::netns_exists(&ns) {
                    sys::ip(&["netns", "del", &ns]).await?;
                }
                if sys::link_exists(None, &veth).await {
                    let _ = sys::ip(&["link", "del", "dev", &veth]).await;
                }
                let _ = std::fs::remove_dir_all(&dir);
                tracing::info!(namespace = %ns, "removed the VPC's router (its last gateway is gone)");
            } else if sys::netns_exists(&ns) {
                net::sync_routes(&ns, &router_routes(&self.records(&token))).await?;
            }
        }
        Ok(())
    }

    /// The gateway's record beside its VPC's router, if it has one.
    fn router_record(&self, intent: &GatewayIntent) -> Option<Published> {
        let rn = self.router_names(&intent.vpc_id);
        let file = self.router_dir(&rn.token).join(format!("{}.json", intent.gateway_id));
        std::fs::read(file).ok().and_then(|raw| serde_json::from_slice::<Published>(&raw).ok())
    }

    /// Whether the gateway's record in its VPC's router is what it would publish now (what BGP learned and which
    /// tunnels carry change without an apply); a gateway whose router is elsewhere has none.
    pub(super) fn router_record_is(
        &self,
        intent: &GatewayIntent,
        vpc_cidr: Ipv4Net,
        learned: &[Ipv4Net],
        carrying: &BTreeSet<String>,
    ) -> bool {
        let record = self.router_record(intent);
        match intent.vpc_router {
            VpcRouter::Elsewhere => record.is_none(),
            VpcRouter::Local | VpcRouter::Here { .. } => record == Some(published(intent, vpc_cidr, learned, carrying)),
        }
    }

    /// The router of the gateway's VPC exists.
    pub(super) fn vpc_router_exists(&self, vpc_id: &str) -> bool {
        sys::netns_exists(&self.router_names(vpc_id).namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::super::strongswan::tests::net;
    use super::super::testing::intent;
    use super::*;
    use crate::vpc::STANDBY_METRIC;
    use crate::{PolicyRouteIntent, RouteIntent};

    /// Every tunnel the tests name carries.
    fn all() -> BTreeSet<String> {
        ["vco-a", "t"].map(String::from).into()
    }

    #[test]
    fn only_published_destinations_are_routed_and_the_best_weight_wins() {
        let mut gw = intent(vec![]);
        let route = |dest: &str, weight: u32, published: bool| RouteIntent {
            dest: net(dest),
            tunnel_id: "vco-a".into(),
            weight,
            published,
        };
        gw.routes = vec![
            route("172.16.1.0/24", 100, true),
            route("172.16.2.0/24", 0, true),
            route("172.16.2.0/24", 100, true),
            route("172.16.3.0/24", 100, false),
        ];
        gw.policy_routes = vec![PolicyRouteIntent {
            source: net("192.168.10.0/24"),
            dest: net("172.16.4.7/24"),
            tunnel_id: "vco-a".into(),
            weight: 0,
            priority: 10,
            published: true,
        }];
        let p = published(&gw, net("192.168.10.0/24"), &[], &all());
        let dests: Vec<String> = p.routes.keys().map(ToString::to_string).collect();
        assert_eq!(dests, ["172.16.1.0/24", "172.16.2.0/24", "172.16.4.0/24"]);
        assert!(p.routes[&net("172.16.2.0/24")] < STANDBY_METRIC, "active beats standby");
        assert!(p.routes[&net("172.16.4.0/24")] >= STANDBY_METRIC);
        let routes = router_routes(&[p]);
        assert!(routes.iter().all(|r| r.target == RouteTarget::Via(gw.private_ip.to_string())));
        assert_eq!(routes.len(), 3);
    }

    #[test]
    fn learned_routes_are_published_only_when_the_gateway_propagates_them() {
        let mut gw = intent(vec![]);
        let learned = [net("172.16.50.0/24")];
        assert!(published(&gw, net("192.168.10.0/24"), &learned, &all()).routes.is_empty());
        gw.propagate_learned = true;
        let p = published(&gw, net("192.168.10.0/24"), &learned, &all());
        assert!(p.routes[&net("172.16.50.0/24")] < STANDBY_METRIC, "at weight 100");
    }

    #[test]
    fn two_gateways_publishing_one_destination_both_keep_a_route() {
        let route = RouteIntent { dest: net("172.16.1.0/24"), tunnel_id: "t".into(), weight: 100, published: true };
        let mut a = intent(vec![]);
        a.routes = vec![route.clone()];
        let mut b = intent(vec![]);
        b.gateway_id = "vpn-other".into();
        b.private_ip = "192.168.10.3".parse().expect("ip");
        b.routes = vec![route];
        let routes = router_routes(&[
            published(&a, net("192.168.10.0/24"), &[], &all()),
            published(&b, net("192.168.10.0/24"), &[], &all()),
        ]);
        assert_eq!(routes.len(), 2, "{routes:?}");
        let metrics: BTreeSet<u32> = routes.iter().map(|r| r.metric).collect();
        assert_eq!(metrics.len(), 2, "distinct metrics, or the kernel would keep only one: {routes:?}");
    }

    #[test]
    fn a_router_run_for_other_hosts_routes_their_gateways_too_and_a_gateway_whose_router_is_elsewhere_records_nothing()
    {
        let mut gw = intent(vec![]);
        gw.routes =
            vec![RouteIntent { dest: net("172.16.1.0/24"), tunnel_id: "t".into(), weight: 100, published: true }];
        let away = VpcRoute { dest: net("172.16.2.0/24"), via: "192.168.10.9".parse().expect("ip"), metric: 150 };
        gw.vpc_router = VpcRouter::Here { others: vec![away.clone()] };
        let record = published(&gw, net("192.168.10.0/24"), &[], &all());
        let routes = router_routes(std::slice::from_ref(&record));
        let vias: BTreeSet<(String, RouteTarget)> = routes.into_iter().map(|r| (r.dst, r.target)).collect();
        let expected: BTreeSet<(String, RouteTarget)> = [
            ("172.16.1.0/24".to_string(), RouteTarget::Via(gw.private_ip.to_string())),
            ("172.16.2.0/24".to_string(), RouteTarget::Via(away.via.to_string())),
        ]
        .into();
        assert_eq!(vias, expected);
        // Recorded with its others, so a changed set of others is a changed record (and the router follows).
        gw.vpc_router = VpcRouter::Here { others: vec![] };
        assert_ne!(published(&gw, net("192.168.10.0/24"), &[], &all()), record);
    }

    #[test]
    fn a_destination_whose_tunnel_carries_nothing_is_published_below_one_that_carries() {
        let route = |tunnel: &str| RouteIntent {
            dest: net("172.16.1.0/24"),
            tunnel_id: tunnel.into(),
            weight: 100,
            published: true,
        };
        let mut a = intent(vec![]);
        a.routes = vec![route("t-a")];
        let mut b = intent(vec![]);
        b.gateway_id = "vpn-other".into();
        b.private_ip = "192.168.10.3".parse().expect("ip");
        // b's tunnel is a standby (weight 0) and carries; a's is active and carries nothing.
        b.routes = vec![RouteIntent { weight: 0, ..route("t-b") }];
        let only_b: BTreeSet<String> = ["t-b".to_string()].into();
        let cidr = net("192.168.10.0/24");
        let best = |carrying: &BTreeSet<String>| {
            let routes = router_routes(&[published(&a, cidr, &[], carrying), published(&b, cidr, &[], carrying)]);
            routes.into_iter().min_by_key(|r| r.metric).map(|r| r.target).expect("a route")
        };
        assert_eq!(best(&only_b), RouteTarget::Via(b.private_ip.to_string()), "the standby that carries wins");
        let both: BTreeSet<String> = ["t-a".to_string(), "t-b".to_string()].into();
        assert_eq!(best(&both), RouteTarget::Via(a.private_ip.to_string()), "the active one, once it carries");
        // With neither carrying, the route stays (weights decide).
        assert_eq!(best(&BTreeSet::new()), RouteTarget::Via(a.private_ip.to_string()));
    }

    #[test]
    fn an_ha_gateways_halves_take_an_address_and_its_tunnels_each_and_publish_towards_their_own_inside_address() {
        use crate::{second_half_id, whole_id};
        use openvgw_core::crypto::IkeVersion;
        let mut first = super::super::testing::tunnel("t-1", IkeVersion::V2);
        first.local_ip = "203.0.113.65".parse().expect("ip");
        let mut second = super::super::testing::tunnel("t-2", IkeVersion::V2);
        second.local_ip = "203.0.113.66".parse().expect("ip");
        let mut gw = intent(vec![first, second]);
        let route = |tunnel: &str, weight: u32| RouteIntent {
            dest: net("172.16.1.0/24"),
            tunnel_id: tunnel.into(),
            weight,
            published: true,
        };
        gw.routes = vec![route("t-1", 100), route("t-2", 0)];
        assert!(gw.halves().is_none(), "no second inside address: the gateway stays whole");
        gw.second_private_ip = Some("192.168.10.9".parse().expect("ip"));
        let (a, b) = gw.halves().expect("two halves");
        assert_eq!((a.gateway_id.as_str(), whole_id(&b.gateway_id)), ("vpn-test", "vpn-test"));
        assert_eq!(b.gateway_id, second_half_id("vpn-test"));
        assert_eq!((a.public_ips.clone(), b.public_ips.clone()), (vec![gw.public_ips[0]], vec![gw.public_ips[1]]));
        let ids = |h: &GatewayIntent| h.tunnels.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!((ids(&a), ids(&b)), (vec!["t-1".to_string()], vec!["t-2".to_string()]));
        assert_eq!((a.routes.len(), b.routes.len()), (1, 1));
        assert_eq!((a.private_ip, b.private_ip), (gw.private_ip, "192.168.10.9".parse().expect("ip")));
        let all = ["t-1".to_string(), "t-2".to_string()].into();
        let via = |h: &GatewayIntent| published(h, net("192.168.10.0/24"), &[], &all).via;
        assert_ne!(via(&a), via(&b), "each half is routed to at its own inside address");
        assert_eq!(whole_id("vpn-test"), "vpn-test");
    }
}
