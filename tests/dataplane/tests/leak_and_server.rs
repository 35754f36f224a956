//! Nothing leaves in clear while the SA is down; an initiating gateway keeps retrying until the peer answers; the
//! IPsec server (client-to-site IKEv2) hands a road warrior an address from its pool.
//! Run as root: `cargo test -p openvgw-dataplane-tests -- --nocapture` (skips with a message otherwise).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openvgw_core::crypto::IkeVersion;
use openvgw_dataplane::proposals::strongswan::{esp_proposal, ike_proposal};
use openvgw_dataplane::{Driver, IpsecServerIntent, RouteIntent, Secret};
use openvgw_dataplane_tests::*;

#[test]
fn no_cleartext_while_the_sa_is_down_and_initiator_retries() {
    if !can_run("no_cleartext_while_the_sa_is_down_and_initiator_retries") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("leak");
    let topo = lab.site_topology();
    // A clear-text path exists: the gateway's default route leads to the customer gateway, which routes the VPC
    // back to the gateway's EIP. Only the driver's tunnel routes stand between the VPC and a leak.
    must("ip", &["-n", &topo.cgw, "route", "add", VPC_CIDR, "via", GW_EIP]);
    let driver = lab.driver_with_options(|o| o.public_gateway = Some(CGW_IP.parse().expect("ip")));
    let t = tunnel("vco-leak", IkeVersion::V2);
    let with_tunnel = intent("vpn-leak", vec![t.clone()]);
    let mut without = with_tunnel.clone();
    without.tunnels.clear();
    // What leaves the gateway in clear is counted where it arrives (the answers would not come back: the gateway's
    // packet filter drops clear text on its public side).
    let leaked = Arrivals::count(&topo.cgw, "out0", VPC_CIDR);
    let ns = driver.namespace_of(&with_tunnel.gateway_id).expect("ns");
    let drop_filter = || must("ip", &["netns", "exec", &ns, "nft", "delete", "table", "ip", "openvgw"]);
    runtime().block_on(async {
        driver.apply(&without).await.expect("apply without tunnel");
        // Without any tunnel the packet filter alone keeps the VPC's traffic off the public side...
        assert!(stays_unreachable(&topo.vpc, ONPREM_HOST, Duration::from_secs(2)));
        assert_eq!(leaked.packets(), 0, "clear text left the gateway with its packet filter in place");
        // ...and the path is real: without it, plain routing leaves in clear.
        drop_filter();
        ping(&topo.vpc, ONPREM_HOST);
        assert!(wait_for(Duration::from_secs(5), || leaked.packets() > 0), "baseline: plain routing leaves in clear");

        // With the tunnel configured but no peer answering, the same traffic must not leave in clear: the routes
        // into the tunnel (and the blackholes beneath) hold it even with the packet filter gone again.
        let mut with_tunnel = with_tunnel.clone();
        with_tunnel.generation = 2;
        driver.apply(&with_tunnel).await.expect("apply with tunnel");
        drop_filter();
        let before = leaked.packets();
        assert!(stays_unreachable(&topo.vpc, ONPREM_HOST, Duration::from_secs(3)), "answered while SA is down");
        assert_eq!(leaked.packets(), before, "clear-text leak while SA is down");
        driver.apply(&with_tunnel).await.expect("the filter back");

        // The peer comes up later: charon's own retries (keyingtries 0) reach it without any call to the driver.
        let peer_up = Instant::now();
        lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
        let up = time_to_ping(&topo.vpc, ONPREM_HOST, Duration::from_secs(30)).expect("initiator retried");
        eprintln!("TIMING peer started -> tunnel carries traffic: {} ms", (peer_up.elapsed().max(up)).as_millis());
        driver.remove("vpn-leak").await.expect("remove");
    });
}

/// A route-based tunnel whose device goes down must not hand its traffic to the public default route: the blackhole
/// under the device route catches it (proved by removing it: the same ping then leaves in clear); `observe` reports
/// the gateway not ready and the reconciler's next apply repairs device and routes.
#[test]
fn route_based_tunnel_device_down_blackholes_and_is_repaired() {
    if !can_run("route_based_tunnel_device_down_blackholes_and_is_repaired") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("rbleak");
    let topo = lab.site_topology();
    let driver = lab.driver_with_options(|o| o.public_gateway = Some(CGW_IP.parse().expect("ip")));
    let mut t = tunnel("vco-rbleak", IkeVersion::V2);
    t.route_based = true;
    t.local_subnets = vec![net("0.0.0.0/0")];
    t.remote_subnets = vec![net("0.0.0.0/0")];
    let mut intent = intent("vpn-rbleak", vec![t.clone()]);
    intent.routes =
        vec![RouteIntent { dest: net(ONPREM_CIDR), tunnel_id: t.id.clone(), weight: 100, published: false }];
    lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
    runtime().block_on(async {
        driver.apply(&intent).await.expect("apply");
        assert!(time_to_ping(&topo.vpc, ONPREM_HOST, Duration::from_secs(20)).is_some(), "ping through the tunnel");
        let ns = driver.namespace_of(&intent.gateway_id).expect("ns");
        let routes = must("ip", &["-n", &ns, "-o", "route", "show", ONPREM_CIDR, "proto", "77"]);
        let dev = routes
            .lines()
            .filter(|l| !l.starts_with("blackhole"))
            .find_map(|l| l.split_whitespace().skip_while(|w| *w != "dev").nth(1))
            .expect("a route into the tunnel device")
            .to_string();
        assert!(routes.lines().any(|l| l.starts_with("blackhole")), "blackhole under the tunnel route: {routes}");

        let leaked = Arrivals::count(&topo.cgw, "out0", VPC_CIDR);
        must("ip", &["-n", &ns, "link", "set", "dev", &dev, "down"]);
        // The blackhole alone holds (the packet filter, which would also drop clear text leaving on the public
        // side, is taken away for this).
        must("ip", &["netns", "exec", &ns, "nft", "delete", "table", "ip", "openvgw"]);
        assert!(stays_unreachable(&topo.vpc, ONPREM_HOST, Duration::from_secs(3)), "answered with {dev} down");
        assert_eq!(leaked.packets(), 0, "clear-text leak with {dev} down");
        // The clear-text path is real: without the blackhole the same ping leaves in clear.
        must("ip", &["-n", &ns, "route", "del", "blackhole", ONPREM_CIDR, "proto", "77"]);
        ping(&topo.vpc, ONPREM_HOST);
        assert!(wait_for(Duration::from_secs(5), || leaked.packets() > 0), "baseline: in clear without the blackhole");

        let started = Instant::now();
        let repaired = loop {
            let obs = reconcile(&driver, &intent).await;
            let routes = must("ip", &["-n", &ns, "-o", "route", "show", ONPREM_CIDR, "proto", "77"]);
            if obs.ready && routes.lines().any(|l| l.starts_with("blackhole")) && routes.contains(&dev) {
                break true;
            }
            if started.elapsed() > Duration::from_secs(20) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert!(repaired, "observe reported it, the re-apply repaired the tunnel device and its routes");
        assert!(time_to_ping(&topo.vpc, ONPREM_HOST, Duration::from_secs(10)).is_some(), "tunnel back");
        eprintln!("TIMING {dev} down -> repaired: {} ms", started.elapsed().as_millis());
        driver.remove(&intent.gateway_id).await.expect("remove");
    });
}

/// Clear text never crosses from the public side: a host on the public segment that routes the VPC through the
/// gateway's public address reaches no VPC host (and the VPC host sees nothing arrive), while the tunnel beside it
/// carries traffic. Nor the other way: the VPC host routes everything to the gateway, and nothing it sends to the
/// public segment leaves the gateway in clear (a gateway forwards from the VPC only into tunnels). The paths are
/// real: with the gateway's packet filter removed the same pings cross, `observe` reports the gateway not ready,
/// and the re-apply closes them again.
#[test]
fn cleartext_from_the_public_side_never_reaches_the_vpc() {
    if !can_run("cleartext_from_the_public_side_never_reaches_the_vpc") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("clear");
    let topo = lab.site_topology();
    let driver = lab.driver();
    let t = tunnel("vco-clear", IkeVersion::V2);
    let intent = intent("vpn-clear", vec![t.clone()]);
    lab.start_peer(&topo.cgw, &t, driver.backend(), VPC_CIDR);
    // A host on the public segment (not the customer gateway: its own traffic to the VPC goes into its tunnel).
    let outsider = lab.namespace("outsider");
    let public_bridge = lab.public_bridge.clone();
    lab.plug(&outsider, "eth0", &public_bridge, "203.0.113.40/24");
    must("ip", &["-n", &outsider, "route", "add", VPC_CIDR, "via", GW_EIP]);
    let arrived = Arrivals::count(&topo.vpc, "eth0", "203.0.113.0/24");
    let left = Arrivals::count(&outsider, "eth0", VPC_CIDR);
    runtime().block_on(async {
        driver.apply(&intent).await.expect("apply");
        assert!(time_to_ping(&topo.onprem, VPC_HOST, Duration::from_secs(20)).is_some(), "ping through the tunnel");
        assert!(stays_unreachable(&outsider, VPC_HOST, Duration::from_secs(3)), "clear text reached the VPC");
        // Also towards the gateway itself: nothing but VPN traffic is answered on the public side.
        assert!(!ping(&outsider, GW_EIP), "the gateway answers a ping on its public side");
        assert_eq!(arrived.packets(), 0, "clear-text packets arrived at the VPC host");
        assert!(stays_unreachable(&topo.vpc, "203.0.113.40", Duration::from_secs(2)));
        assert_eq!(left.packets(), 0, "clear-text packets from the VPC left on the public side");

        let ns = driver.namespace_of(&intent.gateway_id).expect("ns");
        must("ip", &["netns", "exec", &ns, "nft", "delete", "table", "ip", "openvgw"]);
        assert!(
            time_to_ping(&outsider, VPC_HOST, Duration::from_secs(5)).is_some(),
            "baseline: unfiltered, it crosses"
        );
        assert!(arrived.packets() > 0);
        // (No answer comes back, the outsider routes the VPC to the gateway's public address; the request arrives.)
        let _ = ping(&topo.vpc, "203.0.113.40");
        assert!(left.packets() > 0, "baseline: unfiltered, the VPC's clear text leaves on the public side");
        let left_before = left.packets();
        let started = Instant::now();
        let closed = loop {
            let obs = reconcile(&driver, &intent).await;
            if obs.ready {
                break true;
            }
            if started.elapsed() > Duration::from_secs(20) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert!(closed, "observe reported the missing filter and the re-apply restored it");
        assert!(stays_unreachable(&outsider, VPC_HOST, Duration::from_secs(2)), "open after the re-apply");
        assert!(stays_unreachable(&topo.vpc, "203.0.113.40", Duration::from_secs(2)));
        assert_eq!(left.packets(), left_before, "the VPC's clear text leaves after the re-apply");
        assert!(time_to_ping(&topo.onprem, VPC_HOST, Duration::from_secs(10)).is_some(), "the tunnel still carries");
        driver.remove(&intent.gateway_id).await.expect("remove");
    });
}

#[test]
fn ipsec_server_road_warrior_gets_pool_address() {
    if !can_run("ipsec_server_road_warrior_gets_pool_address") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("ipsecserver");
    let vpc = lab.namespace("vpchost");
    let client = lab.namespace("client");
    let (public_bridge, vpc_bridge) = (lab.public_bridge.clone(), lab.vpc_bridge.clone());
    lab.plug(&vpc, "eth0", &vpc_bridge, &format!("{VPC_HOST}/24"));
    must("ip", &["-n", &vpc, "route", "add", "default", "via", GW_PRIVATE_IP]);
    lab.plug(&client, "eth0", &public_bridge, &format!("{CLIENT_IP}/24"));
    let t = tunnel("unused", IkeVersion::V2);
    let mut intent = intent("vpn-iss", Vec::new());
    intent.ipsec_server = Some(IpsecServerIntent {
        id: "iss-lab".into(),
        client_ip_pool: net("10.30.0.0/24"),
        local_subnets: vec![net(VPC_CIDR)],
        psk: Secret::new("road-warrior-psk-0123456789"),
        ike: t.ike.clone(),
        ipsec: t.ipsec.clone(),
    });
    let driver = lab.driver();
    // The road warrior: strongSwan asking for a virtual IP, selectors to the VPC.
    let dir = lab.dir.join("rw");
    std::fs::create_dir_all(dir.join("swanctl")).expect("dir");
    let kernel = if driver.backend().is_libipsec() { "kernel-libipsec kernel-netlink" } else { "kernel-netlink" };
    let sock = dir.join("charon.vici");
    let conf = format!(
        "charon-systemd {{\n  journal {{\n    default = -1\n  }}\n  filelog {{\n    main {{\n      path = {log}\n      flush_line = yes\n      default = 1\n    }}\n  }}\n}}\n\
         charon {{\n  load_modular = no\n  load = random nonce openssl aes sha1 sha2 hmac gmp kdf {kernel} socket-default vici\n  plugins {{\n    vici {{\n      socket = unix://{sock}\n    }}\n  }}\n}}\n\
         swanctl {{\n  socket = unix://{sock}\n}}\n",
        log = dir.join("charon.log").display(),
        sock = sock.display()
    );
    std::fs::write(dir.join("strongswan.conf"), conf).expect("conf");
    let swanctl = format!(
        "connections {{\n  rw {{\n    version = 2\n    remote_addrs = {GW_EIP}\n    vips = 0.0.0.0\n    proposals = {ike}\n    local {{\n      auth = psk\n      id = rw@example.test\n    }}\n    remote {{\n      auth = psk\n      id = {GW_EIP}\n    }}\n    children {{\n      vpc {{\n        remote_ts = {VPC_CIDR}\n        esp_proposals = {esp}\n      }}\n    }}\n  }}\n}}\n\
         secrets {{\n  ike-rw {{\n    id-a = rw@example.test\n    id-b = {GW_EIP}\n    secret = \"road-warrior-psk-0123456789\"\n  }}\n}}\n",
        ike = ike_proposal(&t.ike).expect("IKE proposal"),
        esp = esp_proposal(&t.ipsec).expect("ESP proposal"),
    );
    std::fs::write(dir.join("swanctl/swanctl.conf"), swanctl).expect("swanctl.conf");
    let conf_path = dir.join("strongswan.conf").to_string_lossy().into_owned();
    let swanctl_dir = dir.join("swanctl").to_string_lossy().into_owned();
    lab.spawn(&client, &[CHARON], &[("STRONGSWAN_CONF", &conf_path)], "rw.out");
    let swanctl = |args: &[&str]| {
        Command::new("swanctl")
            .args(args)
            .env("STRONGSWAN_CONF", &conf_path)
            .env("SWANCTL_DIR", &swanctl_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    assert!(wait_for(Duration::from_secs(10), || swanctl(&["--load-all"])), "road warrior loaded");
    runtime().block_on(async {
        assert!(!swanctl(&["--initiate", "--child", "vpc", "--timeout", "3"]), "no server yet");
        // swanctl gave up, charon did not: its retransmits would race the real attempt below (which then fails as a
        // duplicate of the SA they established once the server is up). Drop the pending IKE_SA.
        swanctl(&["--terminate", "--ike", "rw", "--force", "--timeout", "5"]);
        driver.apply(&intent).await.expect("apply");
        let t0 = Instant::now();
        assert!(swanctl(&["--initiate", "--child", "vpc", "--timeout", "20"]), "road warrior connects");
        let reached = time_to_ping(&client, VPC_HOST, Duration::from_secs(10)).expect("road warrior reaches the VPC");
        eprintln!("TIMING ipsec server: initiate -> first ping {} ms", (t0.elapsed().max(reached)).as_millis());
        let addrs = String::from_utf8_lossy(&run("ip", &["-n", &client, "-4", "addr"]).stdout).into_owned();
        assert!(addrs.contains("10.30.0."), "virtual IP from the pool: {addrs}");
        let obs = driver.observe("vpn-iss").await.expect("observe");
        assert_eq!(obs.ipsec_server_clients, 1);
        driver.remove("vpn-iss").await.expect("remove");
        assert!(stays_unreachable(&client, VPC_HOST, Duration::from_secs(2)));
    });
}

#[test]
fn undeclared_vpc_gets_a_bridge_that_goes_with_its_last_gateway() {
    if !can_run("undeclared_vpc_gets_a_bridge_that_goes_with_its_last_gateway") {
        return;
    }
    let _serial = serial();
    let lab = Lab::new("autovpc");
    let driver = lab.driver();
    let vpc_id = format!("vpc-undeclared-{}", lab.tag);
    let bridge = driver.vpc_bridge_of(&vpc_id);
    let exists = |b: &str| run("ip", &["link", "show", "dev", b]).status.success();
    assert!(!exists(&bridge));
    let mut a = intent("vpn-auto-a", Vec::new());
    a.vpc_id = vpc_id.clone();
    let mut b = a.clone();
    b.gateway_id = "vpn-auto-b".into();
    b.public_ips = vec![ip(GW_EIP2)];
    b.private_ip = ip("192.168.10.3");
    runtime().block_on(async {
        driver.apply(&a).await.expect("apply a");
        driver.apply(&b).await.expect("apply b");
        assert!(exists(&bridge), "bridge {bridge} created for the undeclared VPC");
        driver.remove("vpn-auto-a").await.expect("remove a");
        assert!(exists(&bridge), "still used by the other gateway");
        driver.remove("vpn-auto-b").await.expect("remove b");
        assert!(!exists(&bridge), "removed with its last gateway");
    });
    if exists(&bridge) {
        let _ = run("ip", &["link", "del", "dev", &bridge]);
    }
}
