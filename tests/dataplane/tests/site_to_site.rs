//! Site-to-site IPsec through the netns driver against a real strongSwan customer gateway.
//! Run as root: `cargo test -p openvgw-dataplane-tests -- --nocapture` (skips with a message otherwise).

use std::time::{Duration, Instant};

use openvgw_core::crypto::{DhGroup, Encryption, IdentityType, IkeVersion, Integrity, NegotiationMode};
use openvgw_core::model::{HealthCheck, TunnelState};
use openvgw_dataplane::netns::{NetnsDriver, NEIGH_TABLE_FLOOR};
use openvgw_dataplane::{DataplaneError, Driver, GatewayIntent, PolicyRouteIntent, RouteIntent};
use openvgw_dataplane_tests::*;

const SETTLE: Duration = Duration::from_secs(20);

/// Reconciles (as the reconciler would) until the tunnel is in `want`.
async fn wait_state(driver: &NetnsDriver, intent: &GatewayIntent, tunnel: &str, want: TunnelState) -> bool {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let obs = reconcile(driver, intent).await;
        if obs.ready && obs.tunnels.get(tunnel).map(|t| t.state) == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Ping fails before apply, passes after, fails after remove; leaves no namespace or process behind.
async fn before_after_remove(lab: &mut Lab, topo: &Topology, driver: &NetnsDriver, intent: &GatewayIntent) {
    assert!(!ping(&topo.vpc, ONPREM_HOST), "on-prem must be unreachable before the gateway exists");
    let t0 = Instant::now();
    driver.apply(intent).await.expect("apply");
    let apply = t0.elapsed();
    let first = time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).expect("ping through the tunnel after apply");
    let tid = &intent.tunnels[0].id;
    assert!(wait_state(driver, intent, tid, TunnelState::IpsecSaEstablished).await, "observe: SA up");
    eprintln!(
        "TIMING {}: apply {} ms, apply->first ping {} ms",
        intent.tunnels[0].id,
        apply.as_millis(),
        (apply + first).as_millis()
    );

    // Applying the same intent again changes nothing: same processes, connection not re-negotiated.
    let ns = driver.namespace_of(&intent.gateway_id).expect("ns");
    let pids = driver.daemon_pids(&intent.gateway_id).expect("pids");
    let t1 = Instant::now();
    driver.apply(intent).await.expect("re-apply");
    eprintln!("TIMING {}: idempotent re-apply {} ms", tid, t1.elapsed().as_millis());
    assert_eq!(driver.daemon_pids(&intent.gateway_id).expect("pids"), pids);
    assert_eq!(daemons_in(&ns).len(), pids.len(), "no stray processes in {ns}");
    assert!(ping(&topo.vpc, ONPREM_HOST));

    driver.remove(&intent.gateway_id).await.expect("remove");
    assert!(!netns_exists(&ns), "namespace removed");
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "daemon {pid} stopped");
    }
    assert!(!ping(&topo.vpc, ONPREM_HOST), "on-prem unreachable after remove");
    assert!(driver.realised_gateways().await.expect("list").is_empty());
    let _ = lab;
}

#[test]
fn policy_based_ikev2() {
    if !can_run("policy_based_ikev2") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("ikev2");
    let topo = lab.site_topology();
    let driver = lab.driver();
    let mut t = tunnel("vco-ikev2", IkeVersion::V2);
    t.health_check = Some(HealthCheck {
        enable: true,
        sip: Some(ip("192.168.10.250")),
        dip: Some(ip(ONPREM_HOST)),
        interval_s: 1,
        retry: 2,
    });
    let intent = intent("vpn-ikev2", vec![t.clone()]);
    lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
    runtime().block_on(async {
        assert!(!ping(&topo.vpc, ONPREM_HOST));
        driver.apply(&intent).await.expect("apply");
        assert!(time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).is_some(), "ping through the tunnel");
        // The health check really probes through the tunnel.
        let started = Instant::now();
        let mut healthy = false;
        while started.elapsed() < SETTLE && !healthy {
            let obs = driver.observe(&intent.gateway_id).await.expect("observe");
            healthy = obs.tunnels[&t.id].health_ok == Some(true);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(healthy, "health check through the tunnel");
        eprintln!("TIMING health check ok after {} ms", started.elapsed().as_millis());
        // No secret in charon's files or logs.
        let gw_dir = lab.dir.join("dataplane/gateways/vpn-ikev2/charon");
        for f in ["charon.log", "charon.out", "strongswan.conf", "loaded.json"] {
            let text = std::fs::read_to_string(gw_dir.join(f)).unwrap_or_default();
            assert!(!text.contains(t.psk.expose()), "PSK leaked into {f}");
        }
        driver.remove(&intent.gateway_id).await.expect("remove");
        before_after_remove(&mut lab, &topo, &driver, &intent).await;
    });
}

#[test]
fn policy_based_ikev1_main_mode_non_default_algorithms() {
    if !can_run("policy_based_ikev1_main_mode_non_default_algorithms") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("ikev1");
    let topo = lab.site_topology();
    let driver = lab.driver();
    let mut t = tunnel("vco-ikev1", IkeVersion::V1);
    t.ike.mode = NegotiationMode::Main;
    t.ike.encryption = Encryption::Aes256;
    t.ike.integrity = Integrity::Sha256;
    t.ike.dh_group = DhGroup::Group14;
    t.ipsec.encryption = Encryption::Aes192;
    t.ipsec.integrity = Integrity::Sha256;
    t.ipsec.pfs = None;
    t.ike.remote_id_type = IdentityType::Fqdn;
    t.ike.remote_id = "onprem.example".into();
    let intent = intent("vpn-ikev1", vec![t.clone()]);
    lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
    runtime().block_on(before_after_remove(&mut lab, &topo, &driver, &intent));
    let peer_log = lab.log("peer-cgw/charon.log");
    assert!(peer_log.contains("ID_PROT") || peer_log.contains("Main Mode"), "IKEv1 main mode negotiated");
}

#[test]
fn route_based_with_destination_and_policy_routes() {
    if !can_run("route_based_with_destination_and_policy_routes") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("routebased");
    let topo = lab.site_topology();
    let driver = lab.driver();
    let mut t = tunnel("vco-rb", IkeVersion::V2);
    t.route_based = true;
    t.local_subnets = vec![net("0.0.0.0/0")];
    t.remote_subnets = vec![net("0.0.0.0/0")];
    let mut intent = intent("vpn-rb", vec![t.clone()]);
    lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
    runtime().block_on(async {
        // Without any route nothing enters the tunnel, even with the SA up.
        assert!(!ping(&topo.vpc, ONPREM_HOST));
        driver.apply(&intent).await.expect("apply without routes");
        assert!(wait_state(&driver, &intent, &t.id, TunnelState::IpsecSaEstablished).await, "SA up");
        assert!(stays_unreachable(&topo.vpc, ONPREM_HOST, Duration::from_secs(2)), "no route, no traffic");

        // Destination route.
        intent.generation += 1;
        intent.routes =
            vec![RouteIntent { dest: net(ONPREM_CIDR), tunnel_id: t.id.clone(), weight: 100, published: false }];
        let t0 = Instant::now();
        driver.apply(&intent).await.expect("apply with route");
        let first = time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).expect("ping via the destination route");
        eprintln!("TIMING route-based: route apply->first ping {} ms", (t0.elapsed().max(first)).as_millis());

        // Policy route instead: matching source passes, another source does not.
        intent.generation += 1;
        intent.routes.clear();
        intent.policy_routes = vec![PolicyRouteIntent {
            source: net(VPC_CIDR),
            dest: net(ONPREM_CIDR),
            tunnel_id: t.id.clone(),
            weight: 100,
            priority: 10,
            published: false,
        }];
        driver.apply(&intent).await.expect("apply with policy route");
        assert!(time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).is_some(), "ping via the policy route");
        intent.generation += 1;
        intent.policy_routes[0].source = net("10.99.0.0/16");
        driver.apply(&intent).await.expect("apply with a non-matching policy route");
        assert!(stays_unreachable(&topo.vpc, ONPREM_HOST, Duration::from_secs(2)), "source not matched");

        // libipsec has one tunnel device per charon: a second route-based tunnel is refused up front. Kernel: each
        // gets its own XFRM interface (own if_id); the one of a removed tunnel goes with it.
        let mut two = intent.clone();
        let mut t2 = t.clone();
        t2.id = "vco-rb2".into();
        t2.remote_ip = Some(ip(CGW2_IP));
        two.tunnels.push(t2);
        two.generation += 1;
        let ns = driver.namespace_of("vpn-rb").expect("ns");
        let xfrm_if_ids = || {
            let out = must("ip", &["-n", &ns, "-d", "-o", "link", "show", "type", "xfrm"]);
            let mut ids: Vec<String> = out
                .lines()
                .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "if_id").nth(1))
                .map(String::from)
                .collect();
            ids.sort();
            ids
        };
        if driver.backend().is_libipsec() {
            match driver.apply(&two).await {
                Err(DataplaneError::Unsupported { .. }) => {}
                other => panic!("expected Unsupported, got {other:?}"),
            }
        } else {
            driver.apply(&two).await.expect("two route-based tunnels");
            let ids = xfrm_if_ids();
            assert!(ids.len() == 2 && ids[0] != ids[1], "one XFRM interface per tunnel: {ids:?}");
            intent.generation = two.generation + 1;
            driver.apply(&intent).await.expect("back to one tunnel");
            assert_eq!(xfrm_if_ids().len(), 1, "the removed tunnel's XFRM interface is gone");
        }
        driver.remove("vpn-rb").await.expect("remove");
        assert!(!ping(&topo.vpc, ONPREM_HOST));
    });
}

#[test]
fn killed_charon_deleted_namespace_and_restart_reconverge() {
    if !can_run("killed_charon_deleted_namespace_and_restart_reconverge") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("resilience");
    let topo = lab.site_topology();
    let mut t = tunnel("vco-res", IkeVersion::V2);
    t.ipsec.pfs = Some(DhGroup::Group14);
    let intent = intent("vpn-res", vec![t.clone()]);
    lab.start_peer(&topo.cgw, &t, lab.driver().backend(), VPC_CIDR);
    // A driver makes room in the host's neighbour table (one for all namespaces) for many gateways' peers.
    for (i, floor) in NEIGH_TABLE_FLOOR.iter().enumerate() {
        let path = format!("/proc/sys/net/ipv4/neigh/default/gc_thresh{}", i + 1);
        let now: u64 = std::fs::read_to_string(&path).expect("sysctl").trim().parse().expect("a number");
        assert!(now >= *floor, "{path} is {now}, below {floor}");
    }
    let rt = runtime();
    let ns = {
        let driver = lab.driver();
        rt.block_on(async {
            driver.apply(&intent).await.expect("apply");
            assert!(time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).is_some(), "tunnel up");
            let ns = driver.namespace_of("vpn-res").expect("ns");

            // Events: once the tunnel is up and nothing happens, the driver reports no change (the reconciler
            // then leaves the gateway alone)...
            let changed = |d: &NetnsDriver| d.take_changed().expect("the netns driver reports changes");
            let quiet = Instant::now() + SETTLE;
            while !changed(&driver).is_empty() && Instant::now() < quiet {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            assert!(changed(&driver).is_empty(), "changes reported with nothing happening");

            // Kill charon: observe reports it, the reconciler applies again, traffic flows again.
            let charon = driver.daemon_pids("vpn-res").expect("pids")[0];
            let killed = Instant::now();
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(charon).expect("pid"),
                rustix::process::Signal::KILL,
            )
            .expect("kill charon");
            // ... and the end of charon's event connection marks the gateway changed at once.
            let mut marked = false;
            while !marked && killed.elapsed() < SETTLE {
                marked = changed(&driver).contains("vpn-res");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(marked, "a killed charon did not mark its gateway changed");
            let mut seen_not_ready = false;
            let back = loop {
                let obs = reconcile(&driver, &intent).await;
                seen_not_ready |= !obs.ready;
                if obs.ready && ping(&topo.vpc, ONPREM_HOST) {
                    break Some(killed.elapsed());
                }
                if killed.elapsed() > SETTLE {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            assert!(seen_not_ready, "observe reported the dead charon");
            let back = back.expect("reconverged after charon was killed");
            eprintln!("TIMING killed charon -> ready and pinging again: {} ms", back.as_millis());
            assert_ne!(driver.daemon_pids("vpn-res").expect("pids")[0], charon);

            // Delete the namespace under the driver's feet: the next apply rebuilds it.
            let old = driver.daemon_pids("vpn-res").expect("pids");
            assert!(run("ip", &["netns", "del", &ns]).status.success());
            let t0 = Instant::now();
            driver.apply(&intent).await.expect("apply after namespace loss");
            assert!(time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).is_some(), "tunnel back after namespace loss");
            eprintln!("TIMING deleted namespace -> pinging again: {} ms", t0.elapsed().as_millis());
            for pid in old {
                assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "orphaned daemon {pid} stopped");
            }
            ns
        })
    };
    // A new driver instance (openvgw restarted) adopts what runs: no duplicates, no renegotiation needed.
    let driver = lab.driver();
    rt.block_on(async {
        let before = driver.daemon_pids("vpn-res").expect("pids");
        assert_eq!(driver.realised_gateways().await.expect("list"), vec!["vpn-res".to_string()]);
        let obs = driver.observe("vpn-res").await.expect("observe");
        assert!(obs.ready, "a restarted driver recognises the running gateway from its state directory");
        driver.apply(&intent).await.expect("apply after restart");
        assert_eq!(driver.daemon_pids("vpn-res").expect("pids"), before, "same daemons after restart");
        assert_eq!(pids_in(&ns).len(), before.len(), "no duplicate processes");
        assert!(ping(&topo.vpc, ONPREM_HOST));
        driver.remove("vpn-res").await.expect("remove");
        assert!(!netns_exists(&ns));
        assert!(!ping(&topo.vpc, ONPREM_HOST));
    });
}

/// A tunnel whose peer refused it for good (a proposal mismatch, which charon does not retry) stays down however
/// often it is observed; `Driver::initiate` brings it up once the peer is fixed, and a second call while it is up
/// changes nothing (no duplicate CHILD_SA). Unknown gateways and tunnels are no-ops.
#[test]
fn initiate_restarts_a_tunnel_the_peer_had_refused() {
    if !can_run("initiate_restarts_a_tunnel_the_peer_had_refused") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("initiate");
    let topo = lab.site_topology();
    let driver = lab.driver();
    let t = tunnel("vco-init", IkeVersion::V2);
    let gw = intent("vpn-init", vec![t.clone()]);
    // The peer insists on another IKE proposal: the gateway's IKE_SA_INIT gets NO_PROPOSAL_CHOSEN.
    let mut mismatched = t.clone();
    mismatched.ike.encryption = Encryption::Aes256;
    mismatched.ike.dh_group = DhGroup::Group14;
    lab.start_peer(&topo.cgw, &mismatched, driver.backend(), VPC_CIDR);
    runtime().block_on(async {
        driver.apply(&gw).await.expect("apply");
        let gw_log = "dataplane/gateways/vpn-init/charon/charon.log";
        let refused = wait_for(SETTLE, || lab.log(gw_log).contains("received NO_PROPOSAL_CHOSEN"));
        assert!(refused, "the peer refused the proposal");
        lab.reconfigure_peer(&topo.cgw, &t, driver.backend());
        // Observing is only looking: nothing re-initiates the refused tunnel (the driver used to, every 5 s).
        let until = Instant::now() + Duration::from_secs(7);
        while Instant::now() < until {
            let obs = driver.observe("vpn-init").await.expect("observe");
            assert!(obs.ready, "the gateway is as applied");
            assert_eq!(obs.tunnels[&t.id].state, TunnelState::IkeSaNotEstablished);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(!ping(&topo.vpc, ONPREM_HOST), "still down (an initiating tunnel installs no trap to start it)");

        driver.initiate("vpn-unknown", &t.id).await.expect("unknown gateway: no-op");
        driver.initiate("vpn-init", "vco-unknown").await.expect("unknown tunnel: no-op");
        let t0 = Instant::now();
        driver.initiate("vpn-init", &t.id).await.expect("initiate");
        assert!(time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).is_some(), "up after initiate");
        eprintln!("TIMING initiate -> first ping {} ms", t0.elapsed().as_millis());
        driver.initiate("vpn-init", &t.id).await.expect("initiate while up");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sas = lab.peer_sas(&topo.cgw);
        assert_eq!(sas.matches("net0: #").count(), 1, "one CHILD_SA, no duplicate:\n{sas}");
        assert_eq!(sas.matches("gw: #").count(), 1, "one IKE_SA:\n{sas}");
        driver.remove("vpn-init").await.expect("remove");
    });
}

/// The SA view, a reset and the logs of one tunnel: after a ping `tunnel_sas` reports its one CHILD_SA with traffic;
/// `reset` tears the IKE_SA down and (the tunnel initiates) brings it back with new SAs; `tunnel_logs` returns the
/// connection's lines of the last minute, and none for a range before it existed.
#[test]
fn tunnel_sas_reset_and_logs() {
    if !can_run("tunnel_sas_reset_and_logs") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("tunops");
    let topo = lab.site_topology();
    let driver = lab.driver();
    let t = tunnel("vco-ops", IkeVersion::V2);
    let gw = intent("vpn-ops", vec![t.clone()]);
    lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
    runtime().block_on(async {
        assert!(driver.tunnel_sas("vpn-ops", &t.id).await.expect("sas before apply").is_empty());
        driver.apply(&gw).await.expect("apply");
        assert!(time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).is_some(), "tunnel up");
        assert!(ping(&topo.vpc, ONPREM_HOST));
        let sas = driver.tunnel_sas("vpn-ops", &t.id).await.expect("sas");
        assert_eq!(sas.len(), 1, "{sas:?}");
        let sa = &sas[0];
        assert_eq!((sa.local_ts.as_str(), sa.remote_ts.as_str()), (VPC_CIDR, ONPREM_CIDR), "{sa:?}");
        assert!(sa.bytes_in > 0 && sa.bytes_out > 0 && sa.packets_in > 0 && sa.packets_out > 0, "{sa:?}");
        assert!(driver.tunnel_sas("vpn-ops", "vco-unknown").await.expect("unknown tunnel").is_empty());

        let t0 = Instant::now();
        driver.reset("vpn-ops", &t.id).await.expect("reset");
        let mut fresh = Vec::new();
        while t0.elapsed() < SETTLE {
            fresh = driver.tunnel_sas("vpn-ops", &t.id).await.expect("sas");
            if fresh.len() == 1 && fresh[0].id != sa.id {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(fresh.len() == 1 && fresh[0].id != sa.id, "a new CHILD_SA replaced {}: {fresh:?}", sa.id);
        assert!(time_to_ping(&topo.vpc, ONPREM_HOST, SETTLE).is_some(), "traffic flows after the reset");
        eprintln!("TIMING reset -> new SA and ping {} ms", t0.elapsed().as_millis());
        let peer = lab.peer_sas(&topo.cgw);
        assert_eq!(peer.matches("gw: #").count(), 1, "the old IKE_SA is gone on the peer too:\n{peer}");
        driver.reset("vpn-unknown", &t.id).await.expect("unknown gateway: no-op");
        driver.reset("vpn-ops", "vco-unknown").await.expect("unknown tunnel: no-op");

        let now = now_s();
        let logs = driver.tunnel_logs("vpn-ops", &t.id, now - 60, now + 5).await.expect("logs");
        assert!(logs.iter().all(|l| l.contains("vco-ops")), "only the connection's lines: {logs:?}");
        let established = logs.iter().filter(|l| l.contains("IKE_SA vco-ops[") && l.contains("established")).count();
        assert!(established >= 2, "the first and the renewed IKE_SA are in the log: {logs:#?}");
        assert!(logs.iter().any(|l| l.contains("vici terminate IKE_SA 'vco-ops'")), "the reset is logged: {logs:#?}");
        assert!(driver.tunnel_logs("vpn-ops", &t.id, 0, 1000).await.expect("logs").is_empty());
        driver.remove("vpn-ops").await.expect("remove");
    });
}
