//! Test topology for the netns data plane.
//!
//! Every test builds its own world and tears it down in `Drop`, even when an assertion fails:
//! - two bridges in the root namespace with no address (so the host itself never sends or receives on them): a
//!   "public" one carrying 203.0.113.0/24 (documentation range) and a VPC one;
//! - namespaces `ovgwt<tag>-<role>`: a customer gateway ("cgw", public 203.0.113.2, inside 172.16.20.1), an
//!   on-prem host (172.16.20.2), a VPC host (192.168.10.2, default route via the gateway's inside address) and an
//!   SSL-VPN client (203.0.113.10);
//! - the driver's gateway namespaces use the prefix `ovgwt<tag>g-`, so the lab can remove them too.
//!
//! Processes the lab starts are killed by PID; anything left in a lab namespace is killed by the PIDs `ip netns
//! pids` reports before the namespace is deleted. Set `KEEP=1` to keep the run directory (configs and logs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openvgw_core::config::{DataplaneConfig, VpcConfig};
use openvgw_core::crypto::{AuthAlg, DhGroup, EncAlg, IkeConfig, IkeMode, IkeVersion, IpsecConfig};
use openvgw_dataplane::netns::{IpsecBackend, NetnsDriver, NetnsOptions};
use openvgw_dataplane::{GatewayIntent, Secret, TunnelIntent};

pub const GW_EIP: &str = "203.0.113.65";
pub const CGW_IP: &str = "203.0.113.2";
pub const CLIENT_IP: &str = "203.0.113.10";
pub const VPC_CIDR: &str = "192.168.10.0/24";
pub const GW_PRIVATE_IP: &str = "192.168.10.1";
pub const VPC_HOST: &str = "192.168.10.2";
pub const ONPREM_CIDR: &str = "172.16.20.0/24";
pub const ONPREM_HOST: &str = "172.16.20.2";
pub const VPC_ID: &str = "vpc-lab";
pub const CHARON: &str = "/usr/sbin/charon-systemd";
/// if_id of the route-based customer gateway's XFRM interface (kernel IPsec).
const PEER_IF_ID: u32 = 42;

/// The tests share the two CPUs and time-sensitive daemons: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

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
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP {test}: needs root (network namespaces)");
        return false;
    }
    for p in [CHARON, "swanctl", "openvpn", "ping", "ip"] {
        if !Path::new(p).exists() && !have(p) {
            eprintln!(
                "SKIP {test}: {p} is missing (apt-get install strongswan-swanctl charon-systemd \
                 libcharon-extra-plugins libstrongswan-standard-plugins openvpn iputils-ping)"
            );
            return false;
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
        let cgw = self.namespace("cgw");
        let onprem = self.namespace("onprem");
        let vpc = self.namespace("vpchost");
        let public_bridge = self.public_bridge.clone();
        let vpc_bridge = self.vpc_bridge.clone();
        self.plug(&cgw, "out0", &public_bridge, &format!("{CGW_IP}/24"));
        self.wire(&cgw, "in0", "172.16.20.1/24", &onprem, "eth0", &format!("{ONPREM_HOST}/24"));
        must("ip", &["-n", &onprem, "route", "add", "default", "via", "172.16.20.1"]);
        in_ns(&cgw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.plug(&vpc, "eth0", &vpc_bridge, &format!("{VPC_HOST}/24"));
        must("ip", &["-n", &vpc, "route", "add", "default", "via", GW_PRIVATE_IP]);
        Topology { cgw, onprem, vpc }
    }

    pub fn driver(&self) -> NetnsDriver {
        self.driver_with(None)
    }

    pub fn driver_with(&self, backend: Option<IpsecBackend>) -> NetnsDriver {
        self.driver_with_options(|o| o.backend = backend)
    }

    pub fn driver_with_options(&self, tweak: impl FnOnce(&mut NetnsOptions)) -> NetnsDriver {
        let cfg = DataplaneConfig {
            driver: "netns".into(),
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

    /// Stops one process started by [`Lab::spawn`].
    pub fn kill(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut c = self.children.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A customer-side strongSwan in `ns` configured from what DownloadVpnConnectionConfig hands out for the
    /// tunnel (our Local* is its Remote*, same algorithms and PSK). Returns once its connection is loaded.
    pub fn start_peer(&mut self, ns: &str, tunnel: &TunnelIntent, backend: IpsecBackend, vpc_cidr: &str) -> u32 {
        let dir = self.dir.join("peer");
        std::fs::create_dir_all(dir.join("swanctl")).expect("peer dir");
        let route_based = tunnel.route_based;
        // The route-based peer routes by itself (like the driver): charon must not install a 0/0 route (it would
        // capture everything, IKE included). Under kernel IPsec its SAs and policies carry the if_id of its XFRM
        // interface: 0/0 policies without one would also encrypt what it forwards to its own LAN.
        let (table, install_routes) = if route_based { (199, "no") } else { (220, "yes") };
        let child_if_id = if route_based && !backend.is_libipsec() {
            format!("        if_id_in = {PEER_IF_ID}\n        if_id_out = {PEER_IF_ID}\n")
        } else {
            String::new()
        };
        let kernel = if backend.is_libipsec() { "kernel-libipsec kernel-netlink" } else { "kernel-netlink" };
        let conf = format!(
            "charon-systemd {{\n  journal {{\n    default = -1\n  }}\n  filelog {{\n    main {{\n      path = {log}\n      flush_line = yes\n      default = 1\n      ike = 2\n    }}\n  }}\n}}\n\
             charon {{\n  load_modular = no\n  load = random nonce openssl aes sha1 sha2 md5 hmac gmp pem pkcs1 pkcs8 x509 pubkey constraints revocation kdf {kernel} socket-default vici\n  install_routes = {install_routes}\n  routing_table = {table}\n  routing_table_prio = {table}\n  i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n  plugins {{\n    vici {{\n      socket = unix://{sock}\n    }}\n  }}\n}}\n\
             swanctl {{\n  socket = unix://{sock}\n}}\n",
            log = dir.join("charon.log").display(),
            sock = dir.join("charon.vici").display(),
        );
        std::fs::write(dir.join("strongswan.conf"), conf).expect("peer conf");
        let v1 = tunnel.ike.version == IkeVersion::V1;
        let (local_ts, remote_ts) = if route_based {
            ("0.0.0.0/0".to_string(), "0.0.0.0/0".to_string())
        } else {
            (tunnel.remote_subnets.join(","), tunnel.local_subnets.join(","))
        };
        let or_ip = |id: &str, ip: &str| if id.is_empty() { ip.to_string() } else { id.to_string() };
        let swanctl = format!(
            "connections {{\n  gw {{\n    version = {ver}\n    local_addrs = {cgw}\n    remote_addrs = {eip}\n    proposals = {ike}\n    aggressive = {aggr}\n    mobike = no\n    dpd_delay = 10s\n    local {{\n      auth = psk\n      id = {lid}\n    }}\n    remote {{\n      auth = psk\n      id = {rid}\n    }}\n    children {{\n      net {{\n        local_ts = {local_ts}\n        remote_ts = {remote_ts}\n        esp_proposals = {esp}\n        start_action = trap\n{child_if_id}      }}\n    }}\n  }}\n}}\n\
             secrets {{\n  ike-gw {{\n    id-a = {lid}\n    id-b = {rid}\n    secret = \"{psk}\"\n  }}\n}}\n",
            ver = if v1 { 1 } else { 2 },
            cgw = tunnel.remote_ip,
            eip = tunnel.local_ip,
            ike = tunnel.ike.strongswan_proposal(),
            aggr = if tunnel.ike.mode == IkeMode::Aggressive { "yes" } else { "no" },
            lid = or_ip(&tunnel.remote_id, &tunnel.remote_ip),
            rid = or_ip(&tunnel.local_id, &tunnel.local_ip),
            esp = tunnel.ipsec.strongswan_proposal(),
            psk = tunnel.psk.expose(),
        );
        std::fs::write(dir.join("swanctl/swanctl.conf"), swanctl).expect("peer swanctl.conf");
        let conf_path = dir.join("strongswan.conf").to_string_lossy().into_owned();
        let pid = self.spawn(ns, &[CHARON], &[("STRONGSWAN_CONF", &conf_path)], "peer-charon.out");
        let swanctl_dir = dir.join("swanctl").to_string_lossy().into_owned();
        let loaded = wait_for(Duration::from_secs(10), || {
            Command::new("swanctl")
                .arg("--load-all")
                .env("STRONGSWAN_CONF", &conf_path)
                .env("SWANCTL_DIR", &swanctl_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        assert!(loaded, "peer charon did not load its configuration");
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

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
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
        all.extend(listed.unwrap_or_default().into_iter().filter(|n| n.starts_with(&self.gateway_prefix)));
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

pub fn tunnel(id: &str, version: IkeVersion) -> TunnelIntent {
    TunnelIntent {
        id: id.into(),
        local_ip: GW_EIP.into(),
        remote_ip: CGW_IP.into(),
        local_id: String::new(),
        remote_id: String::new(),
        psk: Secret(format!("lab-psk-{id}-0123456789")),
        ike: IkeConfig {
            version,
            mode: IkeMode::Main,
            enc: EncAlg::Aes,
            auth: AuthAlg::Sha1,
            pfs: DhGroup::Group2,
            lifetime: 86400,
            local_id: String::new(),
            remote_id: String::new(),
        },
        ipsec: IpsecConfig { enc: EncAlg::Aes, auth: AuthAlg::Sha1, pfs: DhGroup::Group2, lifetime: 86400 },
        local_subnets: vec![VPC_CIDR.into()],
        remote_subnets: vec![ONPREM_CIDR.into()],
        initiate: true,
        dpd: true,
        nat_traversal: true,
        route_based: false,
        health_check: None,
    }
}

pub fn intent(gateway_id: &str, tunnels: Vec<TunnelIntent>) -> GatewayIntent {
    GatewayIntent {
        gateway_id: gateway_id.into(),
        tenant_id: "tenant-lab".into(),
        generation: 1,
        public_ip: GW_EIP.into(),
        vpc_id: VPC_ID.into(),
        vpc_cidr: VPC_CIDR.into(),
        private_ip: GW_PRIVATE_IP.into(),
        bandwidth_mbps: 10,
        tunnels,
        ssl_servers: Vec::new(),
        ipsec_server: None,
        routes: Vec::new(),
        policy_routes: Vec::new(),
    }
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

pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}
