//! A gateway with two public addresses (an HA pair) whose tunnels each bind to their own, and a policy-based tunnel
//! with explicit selector pairs.
//! Run as root: `cargo test -p openvgw-dataplane-tests -- --nocapture` (skips with a message otherwise).

use std::time::Duration;

use openvgw_core::crypto::IkeVersion;
use openvgw_dataplane::{Driver, Selector};
use openvgw_dataplane_tests::*;

const SETTLE: Duration = Duration::from_secs(30);

/// IPv4 addresses on `dev` in `ns`, as `a.b.c.d/len`.
fn addresses(ns: &str, dev: &str) -> Vec<String> {
    let out = must("ip", &["-n", ns, "-4", "-o", "addr", "show", "dev", dev]);
    out.lines().filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1)).map(String::from).collect()
}

/// Two peers, each configured for one of the gateway's public addresses only (its `remote_addrs`): a ping to each
/// site proves the tunnel left from the address it was bound to. Policy-based, so it runs under libipsec too (one
/// route-based tunnel per gateway there).
#[test]
fn ha_gateway_binds_each_tunnel_to_its_own_public_ip() {
    if !can_run("ha_gateway_binds_each_tunnel_to_its_own_public_ip") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("ha");
    let topo = lab.site_topology();
    let (cgw2, _onprem2) = lab.second_site();
    let driver = lab.driver();
    let t1 = tunnel("vco-ha1", IkeVersion::V2);
    let mut t2 = tunnel("vco-ha2", IkeVersion::V2);
    t2.local_ip = ip(GW_EIP2);
    t2.remote_ip = Some(ip(CGW2_IP));
    t2.remote_subnets = vec![net(ONPREM2_CIDR)];
    let mut ha = intent("vpn-ha", vec![t1.clone(), t2.clone()]);
    ha.public_ips = vec![ip(GW_EIP), ip(GW_EIP2)];
    lab.start_peer(&topo.cgw, &t1, driver.backend(), VPC_CIDR);
    lab.start_peer(&cgw2, &t2, driver.backend(), VPC_CIDR);
    runtime().block_on(async {
        driver.apply(&ha).await.expect("apply");
        let ns = driver.namespace_of("vpn-ha").expect("ns");
        let mut on_pub0 = addresses(&ns, "pub0");
        on_pub0.sort();
        assert_eq!(on_pub0, [format!("{GW_EIP}/24"), format!("{GW_EIP2}/24")], "both public IPs on pub0");

        let first = ping_reconciling(&driver, &ha, &topo.vpc, ONPREM_HOST, SETTLE).await.expect("site 1 through EIP 1");
        let second =
            ping_reconciling(&driver, &ha, &topo.vpc, ONPREM2_HOST, SETTLE).await.expect("site 2 through EIP 2");
        eprintln!("TIMING ha: site 1 after {} ms, site 2 {} ms later", first.as_millis(), second.as_millis());
        // Each peer sees the IKE SA coming from the address its tunnel was bound to.
        let sas1 = lab.peer_sas(&topo.cgw);
        let sas2 = lab.peer_sas(&cgw2);
        assert!(sas1.contains(&format!("@ {GW_EIP}[")) && !sas1.contains(GW_EIP2), "peer 1 SAs:\n{sas1}");
        assert!(sas2.contains(&format!("@ {GW_EIP2}[")), "peer 2 SAs:\n{sas2}");
        let obs = reconcile(&driver, &ha).await;
        assert!(obs.ready, "ready with both tunnels");

        // Back to one public address and one tunnel: the second address leaves pub0, the first site still works.
        let mut single = ha.clone();
        single.generation += 1;
        single.public_ips = vec![ip(GW_EIP)];
        single.tunnels = vec![t1.clone()];
        driver.apply(&single).await.expect("apply without the second address");
        assert_eq!(addresses(&ns, "pub0"), [format!("{GW_EIP}/24")]);
        assert!(ping_reconciling(&driver, &single, &topo.vpc, ONPREM_HOST, SETTLE).await.is_some(), "site 1 still up");
        assert!(stays_unreachable(&topo.vpc, ONPREM2_HOST, Duration::from_secs(2)), "site 2 gone with its tunnel");
        driver.remove("vpn-ha").await.expect("remove");
        assert!(!netns_exists(&ns));
    });
}

/// Two selector pairs on one tunnel: each remote net has its own CHILD_SA and carries pings; the declared remote
/// subnets are not negotiated when pairs are given.
#[test]
fn policy_selectors_negotiate_one_child_per_pair() {
    if !can_run("policy_selectors_negotiate_one_child_per_pair") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("selectors");
    let topo = lab.site_topology();
    // A second on-prem network on the customer gateway's inside link: it has an address there (libipsec sources
    // each CHILD_SA's route from a local address inside the local selector), the on-prem host answers on .2.
    must("ip", &["-n", &topo.cgw, "addr", "add", "172.16.21.1/24", "dev", "in0"]);
    must("ip", &["-n", &topo.onprem, "addr", "add", "172.16.21.2/24", "dev", "eth0"]);
    let driver = lab.driver();
    let mut t = tunnel("vco-sel", IkeVersion::V2);
    t.selectors = vec![
        Selector { local: vec![net(VPC_CIDR)], remote: vec![net(ONPREM_CIDR)] },
        Selector { local: vec![net("192.168.10.0/25")], remote: vec![net("172.16.21.0/24")] },
    ];
    // Declared subnets are superseded by the pairs (they would have allowed 172.16.22.0/24 too).
    t.remote_subnets = vec![net(ONPREM_CIDR), net("172.16.22.0/24")];
    let gw = intent("vpn-sel", vec![t.clone()]);
    lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
    runtime().block_on(async {
        driver.apply(&gw).await.expect("apply");
        assert!(ping_reconciling(&driver, &gw, &topo.vpc, ONPREM_HOST, SETTLE).await.is_some(), "first pair");
        assert!(ping_reconciling(&driver, &gw, &topo.vpc, "172.16.21.2", SETTLE).await.is_some(), "second pair");
        let sas = lab.peer_sas(&topo.cgw);
        for child in ["net0", "net1"] {
            assert!(sas.contains(&format!("{child}: #")), "peer has CHILD_SA {child}:\n{sas}");
        }
        assert!(sas.contains("192.168.10.0/25"), "second pair with its own local net:\n{sas}");
        assert!(sas.contains("172.16.21.0/24") && !sas.contains("172.16.22.0/24"), "selectors as paired:\n{sas}");
        driver.remove("vpn-sel").await.expect("remove");
        assert!(!ping(&topo.vpc, ONPREM_HOST));
    });
}
