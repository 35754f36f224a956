//! What enters which tunnel: the driver's routes (each with a blackhole beneath it), policy-route rules, and the
//! XFRM interfaces of route-based tunnels under kernel IPsec.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::Ipv4Net;

use super::names::{self, LIBIPSEC_TUN, NS_PUBLIC_IF};
use super::net::{self, Route, RouteTarget, Rule};
use super::sys;
use super::{strongswan, Inner};
use crate::{DataplaneError, GatewayIntent};

/// Table holding `default dev <tunnel>` for policy routes (libipsec: one device, one table).
const POLICY_TABLE_BASE: u32 = 1100;
/// Policy-based remote subnets fall back to this blackhole (below charon's table 220) under kernel IPsec.
const BLACKHOLE_METRIC: u32 = 4000;
/// Destination routes under kernel IPsec: active (weight 100) before standby (weight 0), each tunnel of a
/// destination at its own metric (the kernel keeps one route per destination and metric), and a tunnel that does
/// not carry (no installed CHILD_SA) after every one that does; all of them above the blackholes.
const ACTIVE_METRIC: u32 = 10;
const STANDBY_METRIC: u32 = 1010;
const NOT_CARRYING: u32 = 2000;
/// Tunnels ranked apart within one weight (a gateway has far fewer connections).
const RANKS: u32 = 900;

impl Inner {
    pub(super) async fn sync_xfrm_interfaces(&self, ns: &str, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let wanted: BTreeMap<String, u32> = intent
            .tunnels
            .iter()
            .filter(|t| t.route_based)
            .map(|t| (names::xfrm_if(&t.id), names::xfrm_if_id(&t.id)))
            .collect();
        let actual = net::xfrm_interfaces(ns).await?;
        for existing in actual.iter().filter(|l| !wanted.contains_key(&l.name)) {
            sys::ip_ns(ns, &["link", "del", "dev", &existing.name]).await?;
        }
        for (name, if_id) in &wanted {
            let existing = actual.iter().find(|l| &l.name == name);
            net::ensure_xfrm_interface(ns, name, NS_PUBLIC_IF, *if_id, existing).await?;
        }
        Ok(())
    }

    /// The device a tunnel's traffic is routed into.
    pub(super) fn tunnel_device(&self, tunnel_id: &str) -> String {
        if self.backend.is_libipsec() {
            LIBIPSEC_TUN.to_string()
        } else {
            names::xfrm_if(tunnel_id)
        }
    }

    fn policy_table(&self, tunnel_id: &str) -> String {
        if self.backend.is_libipsec() {
            POLICY_TABLE_BASE.to_string()
        } else {
            (POLICY_TABLE_BASE + names::xfrm_if_id(tunnel_id) % 800).to_string()
        }
    }

    /// The routes the gateway should have while the tunnels in `carrying` carry traffic.
    pub(super) fn desired_routes(&self, intent: &GatewayIntent, carrying: &BTreeSet<String>) -> BTreeSet<Route> {
        let main = || "main".to_string();
        let mut out = BTreeSet::new();
        if let Some(gw) = self.opts.public_gateway {
            out.insert(Route {
                table: main(),
                dst: "0.0.0.0/0".into(),
                target: RouteTarget::Via(gw.to_string()),
                metric: 0,
            });
        }
        // Everything bound for a tunnel also gets a blackhole in the same table: a device route vanishes with its
        // device (an XFRM interface set down or deleted, ipsec0 of a dead charon), and the lookup would then fall
        // through to the public default route, in clear.
        let mut into_tunnel = |table: String, dst: Ipv4Net, target: RouteTarget, metric: u32| {
            let dst = dst.trunc().to_string();
            let blackhole = Route {
                table: table.clone(),
                dst: dst.clone(),
                target: RouteTarget::Blackhole,
                metric: BLACKHOLE_METRIC,
            };
            out.insert(blackhole);
            if target != RouteTarget::Blackhole {
                out.insert(Route { table, dst, target, metric });
            }
        };
        let libipsec = self.backend.is_libipsec();
        // libipsec: into the TUN, where libipsec's policies pick (or trap for) the SA. Kernel: charon's table-220
        // routes win while its policies exist; the blackhole catches the rest.
        let policy_based_target =
            || if libipsec { RouteTarget::Dev(LIBIPSEC_TUN.into()) } else { RouteTarget::Blackhole };
        for t in intent.tunnels.iter().filter(|t| !t.route_based) {
            for r in strongswan::remote_nets(t) {
                into_tunnel(main(), r, policy_based_target(), 0);
            }
        }
        if let Some(s) = &intent.ipsec_server {
            into_tunnel(main(), s.client_ip_pool, policy_based_target(), 0);
        }
        for r in &intent.routes {
            // Weight 100 is the active path, 0 the standby: a worse metric keeps it as a fallback. (libipsec has one
            // route-based tunnel per gateway: nothing to choose between.)
            let metric = if libipsec {
                0
            } else {
                let base = if r.weight > 0 { ACTIVE_METRIC } else { STANDBY_METRIC };
                let rank = intent.tunnels.iter().position(|t| t.id == r.tunnel_id).unwrap_or(0) as u32 % RANKS;
                base + rank + if carrying.contains(&r.tunnel_id) { 0 } else { NOT_CARRYING }
            };
            into_tunnel(main(), r.dest, RouteTarget::Dev(self.tunnel_device(&r.tunnel_id)), metric);
        }
        for r in &intent.policy_routes {
            let tunnel_is_route_based = intent.tunnels.iter().any(|t| t.id == r.tunnel_id && t.route_based);
            if libipsec || tunnel_is_route_based {
                let device = RouteTarget::Dev(self.tunnel_device(&r.tunnel_id));
                into_tunnel(self.policy_table(&r.tunnel_id), Ipv4Net::default(), device, 0);
            }
        }
        out
    }

    pub(super) fn desired_rules(&self, intent: &GatewayIntent) -> BTreeSet<Rule> {
        intent
            .policy_routes
            .iter()
            .map(|r| {
                let tunnel_is_route_based = intent.tunnels.iter().any(|t| t.id == r.tunnel_id && t.route_based);
                // A policy-based next hop under kernel IPsec is steered by charon's own policy routes.
                let table = if self.backend.is_libipsec() || tunnel_is_route_based {
                    self.policy_table(&r.tunnel_id)
                } else {
                    strongswan::KERNEL_ROUTING_TABLE.to_string()
                };
                Rule {
                    pref: net::RULE_PREF_BASE + r.priority.min(999),
                    from: r.source.trunc().to_string(),
                    to: r.dest.trunc().to_string(),
                    table,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend::IpsecBackend;
    use super::super::strongswan::tests::net;
    use super::super::testing::{intent, tunnel};
    use super::*;
    use crate::{RouteIntent, Selector};
    use openvgw_core::crypto::IkeVersion;

    fn has(routes: &BTreeSet<Route>, dst: &str, target: RouteTarget) -> bool {
        routes.iter().any(|r| r.dst == dst && r.target == target && r.table == "main")
    }

    #[test]
    fn every_remote_net_of_every_selector_is_routed_with_a_blackhole() {
        let mut a = tunnel("vco-a", IkeVersion::V1);
        a.selectors = vec![
            Selector { local: vec![net("192.168.10.0/24")], remote: vec![net("172.16.20.0/24")] },
            Selector { local: vec![net("192.168.11.0/24")], remote: vec![net("172.16.30.7/24")] },
        ];
        let gw = intent(vec![a]);
        let libipsec = Inner::for_tests(IpsecBackend::KernelLibipsec).desired_routes(&gw, &BTreeSet::new());
        for dst in ["172.16.20.0/24", "172.16.30.0/24"] {
            assert!(has(&libipsec, dst, RouteTarget::Dev(LIBIPSEC_TUN.into())), "{dst} into ipsec0");
            assert!(has(&libipsec, dst, RouteTarget::Blackhole), "{dst} blackholed beneath");
        }
        let kernel = Inner::for_tests(IpsecBackend::KernelNetlink { xfrm_interfaces: true })
            .desired_routes(&gw, &BTreeSet::new());
        assert!(has(&kernel, "172.16.30.0/24", RouteTarget::Blackhole));
        assert!(!kernel.iter().any(|r| matches!(r.target, RouteTarget::Dev(_))), "charon routes policy-based");
    }

    #[test]
    fn destination_routes_go_into_the_tunnel_device() {
        let mut t = tunnel("vco-rb", IkeVersion::V2);
        t.route_based = true;
        let mut gw = intent(vec![t]);
        gw.routes =
            vec![RouteIntent { dest: net("10.9.0.0/16"), tunnel_id: "vco-rb".into(), weight: 0, published: false }];
        let inner = Inner::for_tests(IpsecBackend::KernelNetlink { xfrm_interfaces: true });
        let routes = inner.desired_routes(&gw, &["vco-rb".to_string()].into());
        let dev = RouteTarget::Dev(names::xfrm_if("vco-rb"));
        assert!(routes.iter().any(|r| r.dst == "10.9.0.0/16" && r.target == dev && r.metric == STANDBY_METRIC));
        assert!(has(&routes, "10.9.0.0/16", RouteTarget::Blackhole));
    }

    /// Active before standby while both carry; a tunnel that stops carrying goes behind the other; two active
    /// tunnels of one destination keep distinct metrics (the kernel would replace one with the other).
    #[test]
    fn traffic_takes_the_best_tunnel_that_carries() {
        let mut tunnels = Vec::new();
        for id in ["vco-a", "vco-b"] {
            let mut t = tunnel(id, IkeVersion::V2);
            t.route_based = true;
            tunnels.push(t);
        }
        let mut gw = intent(tunnels);
        let dest = net("172.16.20.0/24");
        let route = |tunnel: &str, weight| RouteIntent { dest, tunnel_id: tunnel.into(), weight, published: true };
        let inner = Inner::for_tests(IpsecBackend::KernelNetlink { xfrm_interfaces: true });
        let best = |gw: &GatewayIntent, carrying: &[&str]| {
            let carrying: BTreeSet<String> = carrying.iter().map(|s| s.to_string()).collect();
            let routes = inner.desired_routes(gw, &carrying);
            let into_tunnels: Vec<&Route> = routes.iter().filter(|r| matches!(r.target, RouteTarget::Dev(_))).collect();
            let metrics: BTreeSet<u32> = into_tunnels.iter().map(|r| r.metric).collect();
            assert_eq!(metrics.len(), into_tunnels.len(), "one metric per route: {into_tunnels:?}");
            into_tunnels.iter().min_by_key(|r| r.metric).map(|r| r.target.clone())
        };
        let dev = |id: &str| Some(RouteTarget::Dev(names::xfrm_if(id)));
        // Alibaba: active/standby by weight.
        gw.routes = vec![route("vco-a", 100), route("vco-b", 0)];
        for (carrying, want) in [
            (&["vco-a", "vco-b"][..], "vco-a"),
            (&["vco-b"][..], "vco-b"),
            (&["vco-a"][..], "vco-a"),
            (&[][..], "vco-a"),
        ] {
            assert_eq!(best(&gw, carrying), dev(want), "carrying {carrying:?}");
        }
        // Huawei active-active: equal weights, the first tunnel preferred while it carries.
        gw.routes = vec![route("vco-a", 100), route("vco-b", 100)];
        assert_eq!(best(&gw, &["vco-a", "vco-b"]), dev("vco-a"));
        assert_eq!(best(&gw, &["vco-b"]), dev("vco-b"));
    }
}
