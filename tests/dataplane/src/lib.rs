//! Test topology for the netns data plane.
//!
//! Every test builds its own world and tears it down in `Drop`, even when an assertion fails:
//! - two bridges in the root namespace with no address (so the host itself never sends or receives on them): a
//!   "public" one carrying 203.0.113.0/24 (documentation range) and a VPC one;
//! - namespaces `ovgwt<tag>-<role>`: a customer gateway ("cgw", public 203.0.113.2, inside 172.16.20.1), an
//!   on-prem host (172.16.20.2), a VPC host (192.168.10.2, default route via the gateway's inside address) and an
//!   SSL-VPN client (203.0.113.10); a second site ("cgw2" 203.0.113.3, "onprem2" 172.16.30.2) for HA tests;
//! - the driver's gateway namespaces use the prefix `ovgwt<tag>g-`, so the lab can remove them too.
//!
//! The tests drive the driver as the reconciler does: `apply`, then [`reconcile`] passes (observe; apply again when
//! not ready; `initiate` an initiating tunnel that has no IKE SA), since the driver never repairs on its own.
//!
//! Processes the lab starts are killed by PID; anything left in a lab namespace is killed by the PIDs `ip netns
//! pids` reports before the namespace is deleted. Set `KEEP=1` to keep the run directory (configs and logs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::config::{DataplaneConfig, DriverKind, VpcConfig};
use openvgw_core::crypto::{
    AuthMethod, DhGroup, Dpd, EncapsulationMode, Encryption, IdentityType, IkeConfig, IkeVersion, Integrity,
    IpsecConfig, NegotiationMode, TransformProtocol,
};
use openvgw_core::model::TunnelState;
use openvgw_dataplane::netns::{IpsecBackend, NetnsDriver, NetnsOptions};
use openvgw_dataplane::proposals::strongswan::{esp_proposal, ike_proposal};
use openvgw_dataplane::{Driver, GatewayIntent, GatewayObservation, Secret, TunnelIntent};

pub const GW_EIP: &str = "203.0.113.65";
/// The second public address of an HA gateway.
pub const GW_EIP2: &str = "203.0.113.66";
pub const CGW_IP: &str = "203.0.113.2";
pub const CGW2_IP: &str = "203.0.113.3";
pub const CLIENT_IP: &str = "203.0.113.10";
pub const VPC_CIDR: &str = "192.168.10.0/24";
pub const GW_PRIVATE_IP: &str = "192.168.10.4";
pub const VPC_HOST: &str = "192.168.10.2";
pub const ONPREM_CIDR: &str = "172.16.20.0/24";
pub const ONPREM_HOST: &str = "172.16.20.2";
pub const ONPREM2_CIDR: &str = "172.16.30.0/24";
pub const ONPREM2_HOST: &str = "172.16.30.2";
pub const VPC_ID: &str = "vpc-lab";
pub const CHARON: &str = "/usr/sbin/charon-systemd";
/// if_id of the route-based customer gateway's XFRM interface (kernel IPsec).
const PEER_IF_ID: u32 = 42;

/// The tests share the two CPUs and time-sensitive daemons: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$1\"", "sh", program])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Root, and the daemons installed? Otherwise the test is skipped with a message saying why.
pub fn can_run(test: &str) -> bool {
    can_run_with(test, &[])
}

/// [`can_run`], also needing `extra` programs.
/// A skip prints `SKIP <test>: <reason>` (run.sh counts them); under CI (`CI` set), where the test command
/// installs everything and runs as root, a missing prerequisite fails the test instead of hiding it.
pub fn can_run_with(test: &str, extra: &[&str]) -> bool {
    let skip = |why: String| {
        assert!(std::env::var_os("CI").is_none(), "{test} cannot run under CI: {why}");
        eprintln!("SKIP {test}: {why}");
        false
    };
    if !rustix::process::geteuid().is_root() {
        return skip("needs root (network namespaces)".into());
    }
    for &p in [CHARON, "swanctl", "openvpn", "ping", "ip", "nft"].iter().chain(extra) {
        if !Path::new(p).exists() && !have(p) {
            return skip(format!(
                "{p} is missing (apt-get install strongswan-swanctl charon-systemd libcharon-extra-plugins \
                 libstrongswan-standard-plugins openvpn iputils-ping nftables)"
            ));
        }
    }
    true
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

pub fn must(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(out.status.success(), "{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn in_ns(ns: &str, args: &[&str]) -> Output {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

pub struct Lab {
    pub tag: String,
    pub dir: PathBuf,
    pub public_bridge: String,
    pub vpc_bridge: String,
    pub gateway_prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    veths: u32,
}

impl Lab {
    pub fn new(name: &str) -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{:04x}", (std::process::id().wrapping_mul(31).wrapping_add(n)) & 0xffff);
        let dir = std::env::temp_dir().join(format!("ovgwt-{name}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let lab = Lab {
            public_bridge: format!("ovt{tag}pub"),
            vpc_bridge: format!("ovt{tag}vpc"),
            gateway_prefix: format!("ovgwt{tag}g-"),
            tag,
            dir,
            namespaces: Vec::new(),
            children: Vec::new(),
            veths: 0,
        };
        for b in [&lab.public_bridge, &lab.vpc_bridge] {
            must("ip", &["link", "add", "name", b, "type", "bridge"]);
            must("ip", &["link", "set", "dev", b, "up"]);
        }
        lab
    }

    pub fn ns_name(&self, role: &str) -> String {
        format!("ovgwt{}-{role}", self.tag)
    }

    /// A namespace with lo up and IPv6 off.
    pub fn namespace(&mut self, role: &str) -> String {
        let ns = self.ns_name(role);
        must("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        in_ns(&ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
        ns
    }

    /// Plugs `ns` into `bridge` through a veth named `ifname` inside, with `addr` (CIDR) on it.
    pub fn plug(&mut self, ns: &str, ifname: &str, bridge: &str, addr: &str) {
        self.veths += 1;
        let root = format!("ovt{}x{}", self.tag, self.veths);
        must("ip", &["link", "add", "name", &root, "type", "veth", "peer", "name", ifname, "netns", ns]);
        must("ip", &["link", "set", "dev", &root, "master", bridge, "up"]);
        must("ip", &["-n", ns, "link", "set", ifname, "up"]);
        must("ip", &["-n", ns, "addr", "add", addr, "dev", ifname]);
    }

    /// A veth between two lab namespaces.
    pub fn wire(&mut self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
        must("ip", &["-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b]);
        must("ip", &["-n", a, "link", "set", a_if, "up"]);
        must("ip", &["-n", b, "link", "set", b_if, "up"]);
        must("ip", &["-n", a, "addr", "add", a_addr, "dev", a_if]);
        must("ip", &["-n", b, "addr", "add", b_addr, "dev", b_if]);
    }

    /// The site-to-site world: customer gateway + on-prem host on one side, VPC host on the other.
    pub fn site_topology(&mut self) -> Topology {
        let (cgw, onprem) = self.customer_site("", CGW_IP, "172.16.20");
        let vpc = self.vpc_host();
        Topology { cgw, onprem, vpc }
    }

    /// The client-to-site world: the VPC host, and a client namespace on the public bridge at `CLIENT_IP`.
    pub fn ssl_topology(&mut self) -> (String, String) {
        let vpc = self.vpc_host();
        let client = self.namespace("client");
        let public_bridge = self.public_bridge.clone();
        self.plug(&client, "eth0", &public_bridge, &format!("{CLIENT_IP}/24"));
        (vpc, client)
    }

    /// `vpchost` on the VPC bridge at `VPC_HOST`, routing through the gateway's inside address.
    fn vpc_host(&mut self) -> String {
        let vpc = self.namespace("vpchost");
        let vpc_bridge = self.vpc_bridge.clone();
        self.plug(&vpc, "eth0", &vpc_bridge, &format!("{VPC_HOST}/24"));
        must("ip", &["-n", &vpc, "route", "add", "default", "via", GW_PRIVATE_IP]);
        vpc
    }

    /// The second customer site of the HA tests: `cgw2` (203.0.113.3) with `onprem2` (172.16.30.2) behind it.
    pub fn second_site(&mut self) -> (String, String) {
        self.customer_site("2", CGW2_IP, "172.16.30")
    }

    /// A customer gateway `cgw<n>` on the public bridge at `public_ip`, routing `<lan>.0/24` where `onprem<n>` is
    /// `<lan>.2`.
    fn customer_site(&mut self, n: &str, public_ip: &str, lan: &str) -> (String, String) {
        let cgw = self.namespace(&format!("cgw{n}"));
        let onprem = self.namespace(&format!("onprem{n}"));
        let public_bridge = self.public_bridge.clone();
        self.plug(&cgw, "out0", &public_bridge, &format!("{public_ip}/24"));
        self.wire(&cgw, "in0", &format!("{lan}.1/24"), &onprem, "eth0", &format!("{lan}.2/24"));
        must("ip", &["-n", &onprem, "route", "add", "default", "via", &format!("{lan}.1")]);
        in_ns(&cgw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        (cgw, onprem)
    }

    pub fn driver(&self) -> NetnsDriver {
        self.driver_with(None)
    }

    pub fn driver_with(&self, backend: Option<IpsecBackend>) -> NetnsDriver {
        self.driver_with_options(|o| o.backend = backend)
    }

    pub fn driver_with_options(&self, tweak: impl FnOnce(&mut NetnsOptions)) -> NetnsDriver {
        let cfg = DataplaneConfig {
            driver: DriverKind::Netns,
            public_bridge: self.public_bridge.clone(),
            public_cidr: "203.0.113.0/24".into(),
            eip_pool: "203.0.113.64/26".into(),
            ..Default::default()
        };
        let vpcs = [VpcConfig { id: VPC_ID.into(), bridge: Some(self.vpc_bridge.clone()), cidr: VPC_CIDR.into() }];
        let mut opts = NetnsOptions { namespace_prefix: self.gateway_prefix.clone(), ..Default::default() };
        tweak(&mut opts);
        NetnsDriver::with_options(&cfg, &vpcs, self.dir.join("dataplane"), opts).expect("driver")
    }

    /// Starts a process inside `ns`, output to `<dir>/<log>`; killed by PID when the lab drops.
    pub fn spawn(&mut self, ns: &str, args: &[&str], envs: &[(&str, &str)], log: &str) -> u32 {
        let out = std::fs::File::create(self.dir.join(log)).expect("log");
        let err = out.try_clone().expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Has a process started by [`Lab::spawn`] exited (it is reaped then)? Unknown PIDs count as exited.
    pub fn has_exited(&mut self, pid: u32) -> bool {
        match self.children.iter_mut().find(|c| c.id() == pid) {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Stops one process started by [`Lab::spawn`].
    pub fn kill(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut c = self.children.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A customer-side strongSwan in `ns` configured as the customer would configure it for the tunnel (our local
    /// side is its remote side, same algorithms, PSK and selector pairs). Its files live in `peer-<role>` (role of
    /// `ns`, e.g. `peer-cgw`). Returns once its connection is loaded.
    pub fn start_peer(&mut self, ns: &str, tunnel: &TunnelIntent, backend: IpsecBackend, vpc_cidr: &str) -> u32 {
        let role = ns.rsplit('-').next().unwrap_or("cgw");
        let dir = self.peer_dir(ns);
        std::fs::create_dir_all(dir.join("swanctl")).expect("peer dir");
        let route_based = tunnel.route_based;
        // The route-based peer routes by itself (like the driver): charon must not install a 0/0 route (it would
        // capture everything, IKE included). Under kernel IPsec its SAs and policies carry the if_id of its XFRM
        // interface: 0/0 policies without one would also encrypt what it forwards to its own LAN.
        let (table, install_routes) = if route_based { (199, "no") } else { (220, "yes") };
        let kernel = if backend.is_libipsec() { "kernel-libipsec kernel-netlink" } else { "kernel-netlink" };
        let conf = format!(
            "charon-systemd {{\n  journal {{\n    default = -1\n  }}\n  filelog {{\n    main {{\n      path = {log}\n      flush_line = yes\n      default = 1\n      ike = 2\n    }}\n  }}\n}}\n\
             charon {{\n  load_modular = no\n  load = random nonce openssl aes sha1 sha2 md5 hmac gmp pem pkcs1 pkcs8 x509 pubkey constraints revocation kdf {kernel} socket-default vici\n  install_routes = {install_routes}\n  routing_table = {table}\n  routing_table_prio = {table}\n  i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n  plugins {{\n    vici {{\n      socket = unix://{sock}\n    }}\n  }}\n}}\n\
             swanctl {{\n  socket = unix://{sock}\n}}\n",
            log = dir.join("charon.log").display(),
            sock = dir.join("charon.vici").display(),
        );
        std::fs::write(dir.join("strongswan.conf"), conf).expect("peer conf");
        std::fs::write(dir.join("swanctl/swanctl.conf"), peer_swanctl(tunnel, backend)).expect("peer swanctl.conf");
        let conf_path = dir.join("strongswan.conf").to_string_lossy().into_owned();
        // Until its configuration is loaded the peer must not answer IKE: it would say NO_PROPOSAL_CHOSEN, which ends
        // an initiator's attempt for good (a dropped packet only makes it retransmit). Its IKE ports stay closed
        // meanwhile.
        must(
            "ip",
            &["netns", "exec", ns, "nft", "add table inet peerhold; add chain inet peerhold input { type filter hook input               priority 0; policy accept; }; add rule inet peerhold input udp dport { 500, 4500 } drop"],
        );
        let pid = self.spawn(ns, &[CHARON], &[("STRONGSWAN_CONF", &conf_path)], &format!("peer-{role}-charon.out"));
        assert!(wait_for(Duration::from_secs(10), || self.load_peer(ns)), "peer charon did not load its configuration");
        must("ip", &["netns", "exec", ns, "nft", "delete table inet peerhold"]);
        if route_based {
            if backend.is_libipsec() {
                let _ = run("ip", &["-n", ns, "rule", "del", "pref", "199"]);
                must("ip", &["-n", ns, "route", "replace", vpc_cidr, "dev", "ipsec0"]);
            } else {
                let if_id = PEER_IF_ID.to_string();
                must("ip", &["-n", ns, "link", "add", "vpn0", "type", "xfrm", "dev", "out0", "if_id", &if_id]);
                must("ip", &["-n", ns, "link", "set", "vpn0", "up"]);
                must("ip", &["-n", ns, "route", "replace", vpc_cidr, "dev", "vpn0"]);
            }
        }
        pid
    }

    /// Gives the running peer in `ns` the configuration for `tunnel` (`swanctl --load-all` replaces its connection).
    pub fn reconfigure_peer(&self, ns: &str, tunnel: &TunnelIntent, backend: IpsecBackend) {
        let dir = self.peer_dir(ns);
        std::fs::write(dir.join("swanctl/swanctl.conf"), peer_swanctl(tunnel, backend)).expect("peer swanctl.conf");
        assert!(self.load_peer(ns), "peer reloaded its configuration");
    }

    fn peer_dir(&self, ns: &str) -> PathBuf {
        self.dir.join(format!("peer-{}", ns.rsplit('-').next().unwrap_or("cgw")))
    }

    /// `swanctl --load-all` for the peer in `ns`; true on success.
    fn load_peer(&self, ns: &str) -> bool {
        let dir = self.peer_dir(ns);
        Command::new("swanctl")
            .arg("--load-all")
            .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
            .env("SWANCTL_DIR", dir.join("swanctl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// `swanctl --list-sas` of the peer started in `ns` by [`Lab::start_peer`].
    pub fn peer_sas(&self, ns: &str) -> String {
        let conf = self.peer_dir(ns).join("strongswan.conf");
        let out = Command::new("swanctl")
            .arg("--list-sas")
            .env("STRONGSWAN_CONF", conf)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("swanctl: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

/// The peer's swanctl.conf for `tunnel`: our local side is its remote side; same algorithms, PSK and selector pairs.
fn peer_swanctl(tunnel: &TunnelIntent, backend: IpsecBackend) -> String {
    let route_based = tunnel.route_based;
    let child_if_id = if route_based && !backend.is_libipsec() {
        format!("        if_id_in = {PEER_IF_ID}\n        if_id_out = {PEER_IF_ID}\n")
    } else {
        String::new()
    };
    let v1 = tunnel.ike.version == IkeVersion::V1;
    let join = |nets: &[Ipv4Net]| nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    // One child per selector pair, mirrored (IKEv1 narrows to what the gateway proposes for each of its pairs).
    let pairs: Vec<(String, String)> = if route_based {
        vec![("0.0.0.0/0".to_string(), "0.0.0.0/0".to_string())]
    } else if tunnel.selectors.is_empty() {
        vec![(join(&tunnel.remote_subnets), join(&tunnel.local_subnets))]
    } else {
        tunnel.selectors.iter().map(|s| (join(&s.remote), join(&s.local))).collect()
    };
    let esp = esp_proposal(&tunnel.ipsec).expect("strongSwan spells the ESP proposal");
    let children: String = pairs
        .iter()
        .enumerate()
        .map(|(i, (local_ts, remote_ts))| {
            format!(
                "      net{i} {{\n        local_ts = {local_ts}\n        remote_ts = {remote_ts}\n        esp_proposals = {esp}\n        start_action = trap\n{child_if_id}      }}\n"
            )
        })
        .collect();
    let or_ip = |id: &str, ip: String| if id.is_empty() { ip } else { id.to_string() };
    let cgw = tunnel.remote_ip.expect("the lab's peers have addresses").to_string();
    format!(
        "connections {{\n  gw {{\n    version = {ver}\n    local_addrs = {cgw}\n    remote_addrs = {eip}\n    proposals = {ike}\n    aggressive = {aggr}\n    mobike = no\n    dpd_delay = 10s\n    local {{\n      auth = psk\n      id = {lid}\n    }}\n    remote {{\n      auth = psk\n      id = {rid}\n    }}\n    children {{\n{children}    }}\n  }}\n}}\n\
         secrets {{\n  ike-gw {{\n    id-a = {lid}\n    id-b = {rid}\n    secret = \"{psk}\"\n  }}\n}}\n",
        ver = if v1 { 1 } else { 2 },
        eip = tunnel.local_ip,
        ike = ike_proposal(&tunnel.ike).expect("strongSwan spells the IKE proposal"),
        aggr = if tunnel.ike.mode == NegotiationMode::Aggressive { "yes" } else { "no" },
        lid = or_ip(&tunnel.ike.remote_id, cgw.clone()),
        rid = or_ip(&tunnel.ike.local_id, tunnel.local_ip.to_string()),
        psk = tunnel.psk.expose(),
    )
}

pub struct Topology {
    pub cgw: String,
    pub onprem: String,
    pub vpc: String,
}

impl Lab {
    /// Links, addresses, routes, rules and XFRM state/policies of `namespaces` (keys left out), plus the tail of
    /// every charon/OpenVPN log under the run directory, to stderr.
    pub fn dump(&self, namespaces: &[String]) {
        let mut out = String::new();
        for ns in namespaces {
            out.push_str(&format!("\n======== namespace {ns}\n"));
            for args in [
                &["-br", "addr"][..],
                &["-d", "link", "show", "type", "xfrm"],
                &["route", "show", "table", "all"],
                &["rule"],
                &["-s", "xfrm", "state"],
                &["-s", "xfrm", "policy"],
            ] {
                let mut full = vec!["-n", ns.as_str()];
                full.extend_from_slice(args);
                let o = run("ip", &full);
                out.push_str(&format!("--- ip {}\n", args.join(" ")));
                for line in String::from_utf8_lossy(&o.stdout).lines().chain(String::from_utf8_lossy(&o.stderr).lines())
                {
                    let t = line.trim_start();
                    if !["auth", "enc ", "aead", "comp "].iter().any(|k| t.starts_with(k)) {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
            let o = run("ip", &["netns", "exec", ns, "sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"]);
            out.push_str(&String::from_utf8_lossy(&o.stdout));
        }
        let mut logs = Vec::new();
        collect_logs(&self.dir, &mut logs);
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("\n======== {} (last 60 of {} lines)\n", log.display(), lines.len()));
            for l in &lines[lines.len().saturating_sub(60)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        eprintln!("{out}");
    }
}

fn collect_logs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_logs(&p, out);
        } else if p.extension().is_some_and(|x| x == "log" || x == "out") {
            out.push(p);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut all = self.namespaces.clone();
        let listed = std::fs::read_dir("/run/netns")
            .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect::<Vec<_>>());
        // Gateways, and the VPC routers the driver names outside the gateway prefix.
        let router_prefix = format!("{}r-", self.gateway_prefix.trim_end_matches('-'));
        all.extend(
            listed
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.starts_with(&self.gateway_prefix) || n.starts_with(&router_prefix)),
        );
        // A failed test: show the data plane as it was (the namespaces are gone afterwards, and in the VM so is
        // the run directory).
        if std::thread::panicking() || std::env::var("OVGW_DUMP").as_deref() == Ok("1") {
            self.dump(&all);
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &all {
            let pids = String::from_utf8_lossy(&run("ip", &["netns", "pids", ns]).stdout).into_owned();
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        for ns in &all {
            let _ = run("ip", &["netns", "del", ns]);
        }
        for b in [&self.public_bridge, &self.vpc_bridge] {
            let _ = run("ip", &["link", "del", "dev", b]);
        }
        if std::env::var("KEEP").as_deref() == Ok("1") {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn wait_for(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn ping(ns: &str, dst: &str) -> bool {
    in_ns(ns, &["ping", "-n", "-q", "-c", "1", "-W", "1", dst]).status.success()
}

/// Time until the first answered ping, if any within `within`.
pub fn time_to_ping(ns: &str, dst: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    wait_for(within, || ping(ns, dst)).then(|| start.elapsed())
}

/// Pings for `during`; true if none was answered.
pub fn stays_unreachable(ns: &str, dst: &str, during: Duration) -> bool {
    let deadline = Instant::now() + during;
    while Instant::now() < deadline {
        if ping(ns, dst) {
            return false;
        }
    }
    true
}

/// Counts the clear-text IPv4 packets from `source` that arrive in `ns` on `ifname`: an nftables counter in a table
/// of the test's own (packets an SA decrypted are not counted). The namespace goes with the lab.
pub struct Arrivals {
    ns: String,
}

impl Arrivals {
    pub fn count(ns: &str, ifname: &str, source: &str) -> Arrivals {
        let rules = format!(
            "add table ip ovgwtest; add chain ip ovgwtest pre {{ type filter hook prerouting priority raw; }}; \
             add rule ip ovgwtest pre iifname {ifname} ip saddr {source} meta ipsec missing counter"
        );
        must("ip", &["netns", "exec", ns, "nft", &rules]);
        Arrivals { ns: ns.into() }
    }

    pub fn packets(&self) -> u64 {
        let out = must("ip", &["netns", "exec", &self.ns, "nft", "list", "table", "ip", "ovgwtest"]);
        out.split("counter packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {out}"))
    }
}

pub fn tunnel(id: &str, version: IkeVersion) -> TunnelIntent {
    TunnelIntent {
        id: id.into(),
        local_ip: ip(GW_EIP),
        remote_ip: Some(ip(CGW_IP)),
        psk: Secret::new(format!("lab-psk-{id}-0123456789")),
        ike: IkeConfig {
            version,
            mode: NegotiationMode::Main,
            encryption: Encryption::Aes128,
            integrity: Integrity::Sha1,
            dh_group: DhGroup::Group2,
            auth_method: AuthMethod::PreSharedKey,
            lifetime_s: 86400,
            local_id_type: IdentityType::Ip,
            local_id: String::new(),
            remote_id_type: IdentityType::Ip,
            remote_id: String::new(),
            dpd: Dpd::default(),
        },
        ipsec: IpsecConfig {
            encryption: Encryption::Aes128,
            integrity: Integrity::Sha1,
            pfs: Some(DhGroup::Group2),
            lifetime_s: 86400,
            transform: TransformProtocol::Esp,
            encapsulation: EncapsulationMode::Tunnel,
        },
        local_subnets: vec![net(VPC_CIDR)],
        remote_subnets: vec![net(ONPREM_CIDR)],
        selectors: Vec::new(),
        initiate: true,
        dpd: true,
        nat_traversal: true,
        route_based: false,
        health_check: None,
        bgp: None,
    }
}

pub fn intent(gateway_id: &str, tunnels: Vec<TunnelIntent>) -> GatewayIntent {
    GatewayIntent {
        gateway_id: gateway_id.into(),
        tenant_id: "tenant-lab".into(),
        generation: 1,
        public_ips: vec![ip(GW_EIP)],
        vpc_id: VPC_ID.into(),
        vpc_cidr: Some(net(VPC_CIDR)),
        private_ip: ip(GW_PRIVATE_IP),
        second_private_ip: None,
        bandwidth_mbps: 10,
        tunnels,
        ssl_servers: Vec::new(),
        ipsec_server: None,
        routes: Vec::new(),
        policy_routes: Vec::new(),
        propagate_learned: false,
        vpc_router: Default::default(),
    }
}

/// One pass of what the reconciler does for a gateway: observe; apply again when it is not ready (a killed daemon,
/// a tunnel device set down); `initiate` every initiating tunnel that has no IKE SA. Returns the observation.
pub async fn reconcile(driver: &NetnsDriver, intent: &GatewayIntent) -> GatewayObservation {
    let obs = driver.observe(&intent.gateway_id).await.expect("observe");
    if !obs.ready {
        if let Err(e) = driver.apply(intent).await {
            eprintln!("reconcile: re-apply of {} failed: {e}", intent.gateway_id);
        }
        return obs;
    }
    for t in intent.tunnels.iter().filter(|t| t.initiate && t.remote_ip.is_some()) {
        if obs.tunnels.get(&t.id).is_some_and(|o| o.state == TunnelState::IkeSaNotEstablished) {
            if let Err(e) = driver.initiate(&intent.gateway_id, &t.id).await {
                eprintln!("reconcile: initiate {} failed: {e}", t.id);
            }
        }
    }
    obs
}

/// Reconciles until a ping from `ns` to `dst` is answered; the time it took, if within `within`.
pub async fn ping_reconciling(
    driver: &NetnsDriver,
    intent: &GatewayIntent,
    ns: &str,
    dst: &str,
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        reconcile(driver, intent).await;
        if ping(ns, dst) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Processes whose network namespace is `ns`.
pub fn pids_in(ns: &str) -> Vec<i32> {
    String::from_utf8_lossy(&run("ip", &["netns", "pids", ns]).stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// [`pids_in`] without the health checks' short-lived probes (`ip netns exec <ns> ping`, which is `ip` until it
/// execs `ping`) and processes that are already gone.
pub fn daemons_in(ns: &str) -> Vec<i32> {
    pids_in(ns)
        .into_iter()
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            !matches!(comm.trim(), "" | "ip" | "ping")
        })
        .collect()
}

/// Unix time in seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}
