//! The `netns` driver: every VPN gateway becomes a network namespace on this host with real strongSwan and OpenVPN
//! daemons in it.
//!
//! Per gateway (`<prefix><gateway id>`, prefix `ovgw-` by default):
//! - `pub0`: veth to the public bridge, holding the EIP with the prefix length of `public_cidr`;
//! - `vpc0`: veth to the VPC's bridge (the declared one, or `ovgw-v<hash>` created for an undeclared VPC), holding
//!   the gateway's private address;
//! - one charon (`charon-systemd` with its own strongswan.conf via `STRONGSWAN_CONF`, VICI socket and log), configured
//!   only through VICI: `load-shared`, `load-conn`, `unload-conn`, `initiate`, per connection, never a reload-all;
//! - one OpenVPN per SSL-VPN server (management interface on a unix socket, `crl-verify`, pushed routes).
//!
//! The bridges live in the root namespace and carry no address: the host is not a member of the public segment or
//! of any VPC, it only switches between the gateways' veths and whatever else is attached (an uplink, a VPC's
//! hosts). A gateway reaches peers outside `public_cidr` through [`NetnsOptions::public_gateway`].
//!
//! Everything is converged as "desired vs. actual": namespace, links, addresses, daemons (PID file + a check that
//! the PID still is that daemon), loaded connections (VICI `list-conns` + fingerprints of what was loaded), routes
//! (tagged with their own protocol number) and rules. A killed daemon, a deleted namespace, a restart of openvgw
//! or a stale leftover therefore converge without duplicates. `observe` notices when a gateway is no longer what
//! was applied and repairs it in the background from the last intent (kept in the state directory, mode 0600).
//!
//! Leak protection: traffic for a remote subnet always has a route into the tunnel device (libipsec: `ipsec0`,
//! where packets without an SA are dropped or trigger negotiation; kernel, route-based: the tunnel's XFRM interface,
//! which drops what no policy with its if_id covers) or charon's own policy routes (kernel, policy-based), and below
//! each of them a blackhole route, so nothing leaves in clear while an SA or a tunnel device is down.
//!
//! Route-based tunnels under kernel IPsec: 0/0 CHILD_SAs whose SAs and policies carry the if_id of an XFRM interface
//! created in the namespace on `pub0`; only what is routed into that interface is encrypted. charon installs no route
//! for CHILD_SAs with an if_id (strongSwan 5.9.8), so a 0/0 selector does not capture the gateway's own traffic.
//!
//! Secrets: PSKs reach charon only through VICI `load-shared`; SSL-VPN keys are files with mode 0600 in 0700
//! directories; neither is ever logged.

mod backend;
mod health;
mod names;
mod net;
mod openvpn;
mod strongswan;
pub(crate) mod sys;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ipnet::Ipv4Net;
use openvgw_core::config::{DataplaneConfig, VpcConfig};
use openvgw_core::model::TunnelState;
use openvgw_vici::{Client, Message};

pub use backend::{detect_ipsec_backend, IpsecBackend};

use health::HealthProbe;
use names::{GatewayNames, LIBIPSEC_TUN, NS_PUBLIC_IF, NS_VPC_IF};
use net::{Route, RouteTarget, Rule};
use openvpn::ServerFiles;
use sys::{failed, DaemonId};

use crate::{DataplaneError, Driver, GatewayIntent, GatewayObservation, TunnelObservation};

const VICI_TIMEOUT: Duration = Duration::from_secs(10);
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Repairs triggered by `observe` are spaced so a permanently broken gateway does not spin.
const REPAIR_SPACING: Duration = Duration::from_secs(3);
/// An initiating tunnel (`EffectImmediately`) that has no IKE SA — the peer was not ready, or answered with an
/// error charon does not retry on — is started again this often, until the peer answers.
const INITIATE_RETRY: Duration = Duration::from_secs(5);
/// Table holding `default dev <tunnel>` for policy routes (libipsec: one device, one table).
const POLICY_TABLE_BASE: u32 = 1100;
/// Policy-based remote subnets fall back to this blackhole (below charon's table 220) under kernel IPsec.
const BLACKHOLE_METRIC: u32 = 4000;
/// Longest unix socket path (`sun_path` is 108 bytes with the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Knobs of the netns driver beyond `[dataplane]`.
#[derive(Debug, Clone)]
pub struct NetnsOptions {
    /// Gateway namespaces are `<prefix><gateway id>`; `realised_gateways` reports namespaces with this prefix.
    pub namespace_prefix: String,
    /// Next hop on the public segment for peers outside `public_cidr` (a default route in each gateway);
    /// `None`: only peers on the public segment are reachable.
    pub public_gateway: Option<Ipv4Addr>,
    /// Use this IPsec backend instead of probing the kernel.
    pub backend: Option<IpsecBackend>,
    pub charon_path: PathBuf,
    pub openvpn_path: PathBuf,
}

impl Default for NetnsOptions {
    fn default() -> Self {
        NetnsOptions {
            namespace_prefix: "ovgw-".into(),
            public_gateway: None,
            backend: None,
            charon_path: PathBuf::from("/usr/sbin/charon-systemd"),
            openvpn_path: PathBuf::from("/usr/sbin/openvpn"),
        }
    }
}

pub struct NetnsDriver {
    inner: Arc<Inner>,
}

struct Inner {
    opts: NetnsOptions,
    backend: IpsecBackend,
    public_bridge: String,
    public_net: Ipv4Net,
    vpcs: HashMap<String, VpcConfig>,
    gateways_dir: PathBuf,
    run_dir: PathBuf,
    gateways: Mutex<HashMap<String, Arc<Gateway>>>,
}

/// Per-gateway bookkeeping. `work` serialises apply / repair / remove; `state` is only held briefly.
struct Gateway {
    work: tokio::sync::Mutex<()>,
    state: Mutex<GatewayState>,
}

#[derive(Default)]
struct GatewayState {
    intent: Option<GatewayIntent>,
    /// Generation realised by the last successful convergence.
    applied: Option<u64>,
    last_repair: Option<Instant>,
    repairing: bool,
    health: BTreeMap<String, HealthProbe>,
    /// When each initiating tunnel without an IKE SA was last started again.
    last_initiate: HashMap<String, Instant>,
}

/// What was loaded into which charon: lets a restarted openvgw see that a running charon already has the
/// current connections (no secrets in it: PSKs are not part of the fingerprints).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct LoadedConns {
    charon_pid: i32,
    conns: BTreeMap<String, String>,
}

/// Where one gateway's files live.
struct GatewayPaths {
    dir: PathBuf,
    intent: PathBuf,
    charon_dir: PathBuf,
    charon_conf: PathBuf,
    charon_pid: PathBuf,
    charon_out: PathBuf,
    loaded: PathBuf,
    vici: PathBuf,
    ssl_dir: PathBuf,
}

impl NetnsDriver {
    /// `state_dir` is `<data-dir>/dataplane`: configs, sockets, PID files and logs of every gateway live there.
    /// Creates the public bridge if missing and probes which IPsec backend the kernel supports.
    /// The driver as `[dataplane]` configures it (`namespace_prefix`, `public_gateway`, `ipsec_backend`).
    pub fn new(cfg: &DataplaneConfig, vpcs: &[VpcConfig], state_dir: PathBuf) -> Result<Self, DataplaneError> {
        let public_gateway = cfg
            .public_gateway
            .as_deref()
            .map(|g| g.parse::<Ipv4Addr>().map_err(|e| failed(format!("dataplane.public_gateway {g}: {e}"))))
            .transpose()?;
        let backend = match cfg.ipsec_backend.as_str() {
            "libipsec" => Some(IpsecBackend::KernelLibipsec),
            "kernel" => match detect_ipsec_backend() {
                kernel @ IpsecBackend::KernelNetlink { .. } => Some(kernel),
                IpsecBackend::KernelLibipsec => {
                    return Err(DataplaneError::Unsupported {
                        backend: "kernel-netlink",
                        what: "ipsec_backend = \"kernel\" on a kernel without ESP".into(),
                    })
                }
            },
            _ => None,
        };
        let opts = NetnsOptions {
            namespace_prefix: cfg.namespace_prefix.clone(),
            public_gateway,
            backend,
            ..NetnsOptions::default()
        };
        Self::with_options(cfg, vpcs, state_dir, opts)
    }

    pub fn with_options(
        cfg: &DataplaneConfig,
        vpcs: &[VpcConfig],
        state_dir: PathBuf,
        opts: NetnsOptions,
    ) -> Result<Self, DataplaneError> {
        let public_net: Ipv4Net =
            cfg.public_cidr.parse().map_err(|e| failed(format!("dataplane.public_cidr {:?}: {e}", cfg.public_cidr)))?;
        if cfg.public_bridge.is_empty() || cfg.public_bridge.len() > 15 {
            return Err(failed(format!("dataplane.public_bridge {:?}: 1-15 characters", cfg.public_bridge)));
        }
        for v in vpcs {
            if let Some(b) = &v.bridge {
                if b.is_empty() || b.len() > 15 {
                    return Err(failed(format!("vpcs {}: bridge name {b:?} must have 1-15 characters", v.id)));
                }
            }
            v.cidr.parse::<Ipv4Net>().map_err(|e| failed(format!("vpcs {}: cidr: {e}", v.id)))?;
        }
        let state_dir = std::path::absolute(&state_dir)
            .map_err(|e| failed(format!("state directory {}: {e}", state_dir.display())))?;
        let gateways_dir = state_dir.join("gateways");
        let run_dir = state_dir.join("run");
        // The longest socket is <run>/<8 hex>-<8 hex>.mgmt.
        if run_dir.as_os_str().len() + 23 > MAX_SOCKET_PATH {
            return Err(failed(format!(
                "state directory {} is too long for unix socket paths (max {} bytes)",
                state_dir.display(),
                MAX_SOCKET_PATH - 23 - "/run".len()
            )));
        }
        sys::create_private_dir(&state_dir)?;
        sys::create_private_dir(&gateways_dir)?;
        sys::create_private_dir(&run_dir)?;
        if sys::run_blocking("ip", &["link", "show", "dev", &cfg.public_bridge]).is_err() {
            sys::run_blocking("ip", &["link", "add", "name", &cfg.public_bridge, "type", "bridge"])?;
            tracing::info!(bridge = %cfg.public_bridge, "created the public bridge");
        }
        sys::run_blocking("ip", &["link", "set", "dev", &cfg.public_bridge, "up"])?;
        let backend = opts.backend.unwrap_or_else(detect_ipsec_backend);
        tracing::info!(%backend, state_dir = %state_dir.display(), "netns data plane ready");
        Ok(NetnsDriver {
            inner: Arc::new(Inner {
                backend,
                public_bridge: cfg.public_bridge.clone(),
                public_net,
                vpcs: vpcs.iter().map(|v| (v.id.clone(), v.clone())).collect(),
                gateways_dir,
                run_dir,
                gateways: Mutex::new(HashMap::new()),
                opts,
            }),
        })
    }

    pub fn backend(&self) -> IpsecBackend {
        self.inner.backend
    }

    /// The namespace a gateway lives in.
    pub fn namespace_of(&self, gateway_id: &str) -> Result<String, DataplaneError> {
        Ok(GatewayNames::new(&self.inner.opts.namespace_prefix, gateway_id)?.namespace)
    }

    /// The bridge a VPC's gateways attach to: the declared one, or `ovgw-v<hash>` created on first use.
    pub fn vpc_bridge_of(&self, vpc_id: &str) -> String {
        self.inner.vpcs.get(vpc_id).and_then(|v| v.bridge.clone()).unwrap_or_else(|| names::auto_vpc_bridge(vpc_id))
    }

    /// charon's VICI socket of a gateway (for diagnostics and tests).
    pub fn vici_socket_of(&self, gateway_id: &str) -> Result<PathBuf, DataplaneError> {
        Ok(self.inner.paths(&self.inner.names(gateway_id)?).vici)
    }

    /// PIDs of the daemons the driver runs for a gateway (charon first, then OpenVPN), as recorded.
    pub fn daemon_pids(&self, gateway_id: &str) -> Result<Vec<i32>, DataplaneError> {
        let paths = self.inner.paths(&self.inner.names(gateway_id)?);
        let mut pids: Vec<i32> = self.inner.charon_id(&paths, |id| id.running()).into_iter().collect();
        for dir in list_dirs(&paths.ssl_dir) {
            let files = ServerFiles::new(dir.clone(), PathBuf::new());
            let marker = files.config.to_string_lossy().into_owned();
            pids.extend(DaemonId { pid_file: &files.pid, marker: &marker }.running());
        }
        Ok(pids)
    }
}

fn list_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn parse_net(what: &str, cidr: &str) -> Result<Ipv4Net, DataplaneError> {
    cidr.trim().parse::<Ipv4Net>().map_err(|e| failed(format!("{what} {cidr:?}: {e}")))
}

fn parse_ip(what: &str, ip: &str) -> Result<Ipv4Addr, DataplaneError> {
    ip.trim().parse::<Ipv4Addr>().map_err(|e| failed(format!("{what} {ip:?}: {e}")))
}

async fn vici(path: &Path) -> Result<Client, DataplaneError> {
    tokio::time::timeout(VICI_TIMEOUT, Client::connect(path))
        .await
        .map_err(|_| failed("charon's VICI socket did not accept"))?
        .map_err(|e| failed(format!("charon VICI {}: {e}", path.display())))
}

async fn vici_do<T>(
    what: &str,
    fut: impl std::future::Future<Output = openvgw_vici::Result<T>>,
) -> Result<T, DataplaneError> {
    tokio::time::timeout(VICI_TIMEOUT, fut)
        .await
        .map_err(|_| failed(format!("VICI {what} timed out")))?
        .map_err(|e| failed(format!("VICI {what}: {e}")))
}

/// Names of the connections charon has loaded.
async fn loaded_conns(c: &mut Client) -> Result<BTreeSet<String>, DataplaneError> {
    let (events, _) = vici_do("list-conns", c.collect("list-conns", "list-conn", &Message::new())).await?;
    Ok(events.iter().flat_map(|m| m.sections().map(|(n, _)| n.to_string())).collect())
}

async fn list_sas(c: &mut Client) -> Result<Vec<Message>, DataplaneError> {
    Ok(vici_do("list-sas", c.collect("list-sas", "list-sa", &Message::new().with("noblock", "yes"))).await?.0)
}

impl Inner {
    fn names(&self, gateway_id: &str) -> Result<GatewayNames, DataplaneError> {
        GatewayNames::new(&self.opts.namespace_prefix, gateway_id)
    }

    fn paths(&self, names: &GatewayNames) -> GatewayPaths {
        let gw_id = names.namespace.strip_prefix(&self.opts.namespace_prefix).unwrap_or(&names.namespace);
        let dir = self.gateways_dir.join(gw_id);
        let charon_dir = dir.join("charon");
        GatewayPaths {
            intent: dir.join("intent.json"),
            charon_conf: charon_dir.join("strongswan.conf"),
            charon_pid: charon_dir.join("charon.pid"),
            charon_out: charon_dir.join("charon.out"),
            loaded: charon_dir.join("loaded.json"),
            vici: self.run_dir.join(format!("{}.vici", names.token)),
            ssl_dir: dir.join("ssl"),
            charon_dir,
            dir,
        }
    }

    fn charon_id<T>(&self, paths: &GatewayPaths, f: impl FnOnce(&DaemonId) -> T) -> T {
        let marker = paths.charon_conf.to_string_lossy().into_owned();
        f(&DaemonId { pid_file: &paths.charon_pid, marker: &marker })
    }

    fn ssl_files(&self, names: &GatewayNames, paths: &GatewayPaths, server_id: &str) -> ServerFiles {
        let socket = self.run_dir.join(format!("{}-{}.mgmt", names.token, names::short_hash(server_id, 8)));
        ServerFiles::new(paths.ssl_dir.join(server_id), socket)
    }

    /// The gateway's entry, loading the last applied intent from disk after a restart of openvgw.
    fn entry(&self, gateway_id: &str) -> Arc<Gateway> {
        let mut map = self.gateways.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(gateway_id.to_string())
            .or_insert_with(|| {
                let intent = self
                    .names(gateway_id)
                    .ok()
                    .and_then(|n| std::fs::read(self.paths(&n).intent).ok())
                    .and_then(|raw| serde_json::from_slice::<GatewayIntent>(&raw).ok());
                // Taken as applied: `observe` verifies the daemons and connections and repairs if they disagree.
                let applied = intent.as_ref().map(|i| i.generation);
                Arc::new(Gateway {
                    work: tokio::sync::Mutex::new(()),
                    state: Mutex::new(GatewayState { intent, applied, ..Default::default() }),
                })
            })
            .clone()
    }

    fn vpc_bridge(&self, intent: &GatewayIntent) -> String {
        self.vpcs
            .get(&intent.vpc_id)
            .and_then(|v| v.bridge.clone())
            .unwrap_or_else(|| names::auto_vpc_bridge(&intent.vpc_id))
    }

    /// Refuses what this host cannot realise, before touching anything.
    fn check(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        names::check_id("gateway", &intent.gateway_id)?;
        let eip = parse_ip("public IP", &intent.public_ip)?;
        if !self.public_net.contains(&eip) {
            return Err(failed(format!("public IP {eip} is outside dataplane.public_cidr {}", self.public_net)));
        }
        let vpc = parse_net("VPC CIDR", &intent.vpc_cidr)?;
        let private = parse_ip("private IP", &intent.private_ip)?;
        if !vpc.contains(&private) {
            return Err(failed(format!("private IP {private} is outside the VPC CIDR {vpc}")));
        }
        let mut tunnel_ids = BTreeSet::new();
        for t in &intent.tunnels {
            names::check_id("connection", &t.id)?;
            tunnel_ids.insert(t.id.as_str());
            parse_ip("peer IP", &t.remote_ip)?;
            for s in t.local_subnets.iter().chain(&t.remote_subnets) {
                parse_net("subnet", s)?;
            }
            if !t.route_based && (t.local_subnets.is_empty() || t.remote_subnets.is_empty()) {
                return Err(failed(format!("connection {} has no local or remote subnet", t.id)));
            }
            if let Some(h) = t.health_check.as_ref().filter(|h| h.enable) {
                parse_ip("health check source", &h.sip)?;
                parse_ip("health check destination", &h.dip)?;
            }
        }
        let route_based = intent.tunnels.iter().filter(|t| t.route_based).count();
        match self.backend {
            IpsecBackend::KernelLibipsec if route_based > 1 => {
                return Err(DataplaneError::Unsupported {
                    backend: "kernel-libipsec",
                    what: format!(
                        "{route_based} route-based connections on one gateway (libipsec has a single tunnel device \
                         per charon, so only one route-based connection per gateway)"
                    ),
                })
            }
            IpsecBackend::KernelNetlink { xfrm_interfaces: false } if route_based > 0 => {
                return Err(DataplaneError::Unsupported {
                    backend: "kernel-netlink",
                    what: "route-based connections on a kernel without XFRM interfaces".into(),
                })
            }
            _ => {}
        }
        for r in &intent.routes {
            parse_net("route destination", &r.dest)?;
            if !tunnel_ids.contains(r.tunnel_id.as_str()) {
                return Err(failed(format!("route {} points at unknown connection {}", r.dest, r.tunnel_id)));
            }
        }
        for r in &intent.policy_routes {
            parse_net("policy route source", &r.source)?;
            parse_net("policy route destination", &r.dest)?;
            if !tunnel_ids.contains(r.tunnel_id.as_str()) {
                return Err(failed(format!("policy route {} points at unknown connection {}", r.dest, r.tunnel_id)));
            }
        }
        for s in &intent.ssl_servers {
            names::check_id("SSL-VPN server", &s.id)?;
            parse_net("SSL-VPN client pool", &s.client_ip_pool)?;
        }
        if let Some(s) = &intent.ipsec_server {
            names::check_id("IPsec server", &s.id)?;
            parse_net("IPsec server client pool", &s.client_ip_pool)?;
        }
        Ok(())
    }

    /// Brings one gateway to `intent`. Idempotent; every step checks what is there first.
    async fn converge(&self, gw: &Gateway, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let names = self.names(&intent.gateway_id)?;
        let paths = self.paths(&names);
        let ns = names.namespace.as_str();
        sys::create_private_dir(&paths.dir)?;
        sys::create_private_dir(&paths.charon_dir)?;
        sys::create_private_dir(&paths.ssl_dir)?;
        let json = serde_json::to_vec_pretty(intent).map_err(|e| failed(format!("serialising intent: {e}")))?;
        sys::write_if_changed(&paths.intent, &json, 0o600)?;

        // Layer 2: bridges, namespace, veths, addresses.
        net::ensure_bridge(&self.public_bridge).await?;
        let vpc_bridge = self.vpc_bridge(intent);
        if net::ensure_bridge(&vpc_bridge).await? {
            tracing::info!(bridge = %vpc_bridge, vpc = %intent.vpc_id, "created VPC bridge");
        }
        if !sys::netns_exists(ns) {
            // Daemons we knew of (if any) live on in a namespace nobody can reach: stop them first.
            self.stop_daemons(&names, &paths).await;
        }
        if net::ensure_namespace(ns).await? {
            tracing::info!(gateway = %intent.gateway_id, namespace = ns, "created gateway namespace");
        }
        let (public_mac, vpc_mac) = (names::stable_mac(ns, NS_PUBLIC_IF), names::stable_mac(ns, NS_VPC_IF));
        net::ensure_veth(ns, &names.public_veth, NS_PUBLIC_IF, &self.public_bridge, &public_mac).await?;
        net::ensure_veth(ns, &names.vpc_veth, NS_VPC_IF, &vpc_bridge, &vpc_mac).await?;
        let vpc_net = parse_net("VPC CIDR", &intent.vpc_cidr)?;
        net::ensure_addresses(
            ns,
            NS_PUBLIC_IF,
            &[format!("{}/{}", intent.public_ip, self.public_net.prefix_len())].into(),
        )
        .await?;
        net::ensure_addresses(ns, NS_VPC_IF, &[format!("{}/{}", intent.private_ip, vpc_net.prefix_len())].into())
            .await?;
        // Health-check sources are idle VPC addresses (as Alibaba recommends): the gateway owns them on lo so that
        // probe replies come back to it.
        let probe_sources: BTreeSet<String> = intent
            .tunnels
            .iter()
            .filter_map(|t| t.health_check.as_ref().filter(|h| h.enable))
            .filter(|h| h.sip != intent.private_ip && h.sip != intent.public_ip)
            .map(|h| format!("{}/32", h.sip))
            .collect();
        net::ensure_addresses(ns, "lo", &probe_sources).await?;

        // charon and its tunnel devices.
        let charon_pid = self.ensure_charon(ns, &paths).await?;
        if self.backend.is_libipsec() {
            let tun_up = sys::wait_until(DAEMON_START_TIMEOUT, || sys::link_exists(Some(ns), LIBIPSEC_TUN)).await;
            if !tun_up {
                return Err(failed(format!("charon in {ns} did not create {LIBIPSEC_TUN}")));
            }
            // charon brings it up once; it may have been set down since (its routes went with it).
            sys::ip_ns(ns, &["link", "set", "dev", LIBIPSEC_TUN, "up"]).await?;
            net::delete_rules_at(ns, strongswan::LIBIPSEC_UNUSED_TABLE).await?;
        } else {
            self.sync_xfrm_interfaces(ns, intent).await?;
        }
        self.sync_connections(&paths, charon_pid, intent).await?;

        // Routing into the tunnels.
        net::sync_routes(ns, &self.desired_routes(intent)).await?;
        net::sync_rules(ns, &self.desired_rules(intent)).await?;

        // SSL-VPN servers and health checks.
        self.sync_openvpn(ns, &names, &paths, intent).await?;
        self.sync_health(gw, ns, intent);
        Ok(())
    }

    /// Starts charon unless the recorded one still runs and answers; returns its PID.
    async fn ensure_charon(&self, ns: &str, paths: &GatewayPaths) -> Result<i32, DataplaneError> {
        let conf = strongswan::strongswan_conf(&paths.charon_dir, &paths.vici, self.backend);
        let conf_changed = sys::write_if_changed(&paths.charon_conf, conf.as_bytes(), 0o600)?;
        if let Some(pid) = self.charon_id(paths, |id| id.running()) {
            if !conf_changed && vici(&paths.vici).await.is_ok() {
                return Ok(pid);
            }
            tracing::warn!(namespace = ns, pid, "restarting charon (configuration changed or VICI unresponsive)");
            sys::stop_pid(pid).await;
        }
        // Whatever else still runs in the namespace with this configuration is a stray charon of ours.
        let marker = paths.charon_conf.to_string_lossy().into_owned();
        for pid in sys::netns_pids(ns).await {
            if sys::process_matches(pid, &marker) {
                sys::stop_pid(pid).await;
            }
        }
        let _ = std::fs::remove_file(&paths.vici);
        let _ = std::fs::remove_file(&paths.loaded);
        let conf_path = paths.charon_conf.to_string_lossy().into_owned();
        let charon = self.opts.charon_path.to_string_lossy().into_owned();
        let pid = sys::spawn_in_netns(ns, &charon, &[], &[("STRONGSWAN_CONF", &conf_path)], &paths.charon_out)?;
        self.charon_id(paths, |id| id.record(pid))?;
        let socket = paths.vici.clone();
        let up = sys::wait_until(DAEMON_START_TIMEOUT, || {
            let socket = socket.clone();
            async move { Client::connect(&socket).await.is_ok() }
        })
        .await;
        if !up {
            let log = std::fs::read_to_string(&paths.charon_out).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(failed(format!("charon in {ns} did not come up: {}", tail.join(" | "))));
        }
        tracing::info!(namespace = ns, pid, backend = self.backend.name(), "started charon");
        Ok(pid)
    }

    fn read_loaded(&self, paths: &GatewayPaths, charon_pid: i32) -> LoadedConns {
        std::fs::read(&paths.loaded)
            .ok()
            .and_then(|raw| serde_json::from_slice::<LoadedConns>(&raw).ok())
            .filter(|l| l.charon_pid == charon_pid)
            .unwrap_or(LoadedConns { charon_pid, conns: BTreeMap::new() })
    }

    /// The connections charon should have: name -> (conn, secret, optional pool).
    fn desired_connections(&self, intent: &GatewayIntent) -> BTreeMap<String, (Message, Message, Option<Message>)> {
        let mut out = BTreeMap::new();
        for t in &intent.tunnels {
            let if_id = (t.route_based && !self.backend.is_libipsec()).then(|| names::xfrm_if_id(&t.id));
            out.insert(t.id.clone(), (strongswan::tunnel_conn(t, if_id), strongswan::tunnel_secret(t), None));
        }
        if let Some(s) = &intent.ipsec_server {
            let (conn, pool, secret) = strongswan::ipsec_server_conn(s, &intent.public_ip);
            out.insert(s.id.clone(), (conn, secret, Some(pool)));
        }
        out
    }

    /// Loads, replaces and unloads connections one by one through VICI.
    async fn sync_connections(
        &self,
        paths: &GatewayPaths,
        charon_pid: i32,
        intent: &GatewayIntent,
    ) -> Result<(), DataplaneError> {
        let mut c = vici(&paths.vici).await?;
        let loaded = loaded_conns(&mut c).await?;
        let mut record = self.read_loaded(paths, charon_pid);
        let desired = self.desired_connections(intent);

        for stale in loaded.iter().filter(|n| !desired.contains_key(*n)) {
            tracing::info!(gateway = %intent.gateway_id, connection = %stale, "unloading connection");
            self.unload(&mut c, stale).await;
            let _ = vici_do(
                "unload-shared",
                c.request("unload-shared", &Message::new().with("id", strongswan::secret_id(stale))),
            )
            .await;
            let _ =
                vici_do("unload-pool", c.request("unload-pool", &Message::new().with("name", format!("{stale}-pool"))))
                    .await;
            record.conns.remove(stale);
        }
        record.conns.retain(|n, _| desired.contains_key(n));

        let mut untouched = BTreeSet::new();
        for (name, (conn, secret, pool)) in &desired {
            // Secrets are replaced by id every time: cheap, and a changed PSK needs no connection reload.
            vici_do("load-shared", c.command("load-shared", secret)).await?;
            if let Some(pool) = pool {
                vici_do("load-pool", c.command("load-pool", pool)).await?;
            }
            let fp = strongswan::fingerprint(conn);
            if loaded.contains(name) && record.conns.get(name) == Some(&fp) {
                untouched.insert(name.clone());
                continue;
            }
            if loaded.contains(name) {
                // A changed connection: drop its SAs so the new settings are negotiated, not just stored.
                tracing::info!(gateway = %intent.gateway_id, connection = %name, "replacing changed connection");
                self.unload(&mut c, name).await;
            } else {
                tracing::info!(gateway = %intent.gateway_id, connection = %name, "loading connection");
            }
            vici_do("load-conn", c.command("load-conn", conn)).await?;
            record.conns.insert(name.clone(), fp);
            let json = serde_json::to_vec(&record).map_err(|e| failed(format!("serialising loaded set: {e}")))?;
            sys::write_file(&paths.loaded, &json, 0o600)?;
        }
        let json = serde_json::to_vec(&record).map_err(|e| failed(format!("serialising loaded set: {e}")))?;
        sys::write_if_changed(&paths.loaded, &json, 0o600)?;

        // start_action=start only fires on load; an initiating tunnel that gave up (e.g. a permanent error from the
        // peer) is started again here.
        let idle: Vec<&crate::TunnelIntent> =
            intent.tunnels.iter().filter(|t| t.initiate && untouched.contains(&t.id)).collect();
        if !idle.is_empty() {
            let states = strongswan::tunnel_states(&list_sas(&mut c).await?);
            for t in idle.into_iter().filter(|t| !states.contains_key(&t.id)) {
                for child in strongswan::child_names(t) {
                    let req = Message::new().with("child", &child).with("ike", &t.id).with("timeout", "-1");
                    if let Err(e) = vici_do("initiate", c.request("initiate", &req)).await {
                        tracing::warn!(connection = %t.id, error = %e, "initiate failed");
                    }
                }
            }
        }
        Ok(())
    }

    /// Unloads a connection and terminates its SAs (errors ignored: it may have none).
    async fn unload(&self, c: &mut Client, name: &str) {
        let _ = vici_do("unload-conn", c.request("unload-conn", &Message::new().with("name", name))).await;
        let req = Message::new().with("ike", name).with("timeout", "-1").with("force", "yes");
        let _ = vici_do("terminate", c.request("terminate", &req)).await;
    }

    async fn sync_xfrm_interfaces(&self, ns: &str, intent: &GatewayIntent) -> Result<(), DataplaneError> {
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
    fn tunnel_device(&self, tunnel_id: &str) -> String {
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

    fn desired_routes(&self, intent: &GatewayIntent) -> BTreeSet<Route> {
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
        let mut into_tunnel = |table: String, dst: String, target: RouteTarget, metric: u32| {
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
            for r in &t.remote_subnets {
                into_tunnel(main(), canonical_net(r), policy_based_target(), 0);
            }
        }
        if let Some(s) = &intent.ipsec_server {
            into_tunnel(main(), canonical_net(&s.client_ip_pool), policy_based_target(), 0);
        }
        for r in &intent.routes {
            // Weight 100 is the active path, 0 the standby: a worse metric keeps it as a fallback.
            let metric = if libipsec {
                0
            } else if r.weight > 0 {
                10
            } else {
                20
            };
            into_tunnel(main(), canonical_net(&r.dest), RouteTarget::Dev(self.tunnel_device(&r.tunnel_id)), metric);
        }
        for r in &intent.policy_routes {
            let tunnel_is_route_based = intent.tunnels.iter().any(|t| t.id == r.tunnel_id && t.route_based);
            if libipsec || tunnel_is_route_based {
                let device = RouteTarget::Dev(self.tunnel_device(&r.tunnel_id));
                into_tunnel(self.policy_table(&r.tunnel_id), "0.0.0.0/0".into(), device, 0);
            }
        }
        out
    }

    fn desired_rules(&self, intent: &GatewayIntent) -> BTreeSet<Rule> {
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
                    from: canonical_net(&r.source),
                    to: canonical_net(&r.dest),
                    table,
                }
            })
            .collect()
    }

    async fn sync_openvpn(
        &self,
        ns: &str,
        names: &GatewayNames,
        paths: &GatewayPaths,
        intent: &GatewayIntent,
    ) -> Result<(), DataplaneError> {
        let wanted: BTreeSet<&str> = intent.ssl_servers.iter().map(|s| s.id.as_str()).collect();
        for dir in list_dirs(&paths.ssl_dir) {
            let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !wanted.contains(id.as_str()) {
                let files = self.ssl_files(names, paths, &id);
                let marker = files.config.to_string_lossy().into_owned();
                DaemonId { pid_file: &files.pid, marker: &marker }.stop().await;
                let _ = std::fs::remove_file(&files.management);
                let _ = std::fs::remove_dir_all(&files.dir);
                tracing::info!(gateway = %intent.gateway_id, server = %id, "stopped SSL-VPN server");
            }
        }
        for s in &intent.ssl_servers {
            let files = self.ssl_files(names, paths, &s.id);
            sys::create_private_dir(&files.dir)?;
            let config = openvpn::server_config(s, &intent.public_ip, &files)?;
            let mut restart = false;
            restart |= sys::write_if_changed(&files.ca, s.ca_cert_pem.as_bytes(), 0o644)?;
            restart |= sys::write_if_changed(&files.cert, s.server_cert_pem.as_bytes(), 0o644)?;
            restart |= sys::write_if_changed(&files.key, s.server_key_pem.expose().as_bytes(), 0o600)?;
            restart |= sys::write_if_changed(&files.config, config.as_bytes(), 0o600)?;
            // OpenVPN re-reads a changed CRL file at each handshake: no restart for revocations.
            sys::write_if_changed(&files.crl, s.crl_pem.as_bytes(), 0o644)?;
            let marker = files.config.to_string_lossy().into_owned();
            let id = DaemonId { pid_file: &files.pid, marker: &marker };
            if let Some(pid) = id.running() {
                if !restart && files.management.exists() {
                    continue;
                }
                tracing::info!(server = %s.id, pid, "restarting SSL-VPN server with its new configuration");
            }
            id.stop().await;
            let _ = std::fs::remove_file(&files.management);
            let openvpn = self.opts.openvpn_path.to_string_lossy().into_owned();
            let out = files.dir.join("openvpn.out");
            // TZ=UTC: OpenVPN stamps log lines in local time; UTC makes them comparable with API time ranges.
            let pid = sys::spawn_in_netns(ns, &openvpn, &["--config", &marker], &[("TZ", "UTC")], &out)?;
            id.record(pid)?;
            let mgmt = files.management.clone();
            let up = sys::wait_until(DAEMON_START_TIMEOUT, || {
                let mgmt = mgmt.clone();
                async move { mgmt.exists() || !sys::process_matches(pid, "") }
            })
            .await;
            if !up || !sys::process_matches(pid, &marker) {
                let log = std::fs::read_to_string(&files.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                return Err(failed(format!("OpenVPN for {} did not come up: {}", s.id, tail.join(" | "))));
            }
            tracing::info!(gateway = %intent.gateway_id, server = %s.id, pid, port = s.port, "started SSL-VPN server");
        }
        Ok(())
    }

    fn sync_health(&self, gw: &Gateway, ns: &str, intent: &GatewayIntent) {
        let wanted: BTreeMap<&str, &openvgw_core::model::HealthCheck> = intent
            .tunnels
            .iter()
            .filter_map(|t| t.health_check.as_ref().filter(|h| h.enable).map(|h| (t.id.as_str(), h)))
            .collect();
        let mut st = gw.state.lock().unwrap_or_else(|p| p.into_inner());
        st.health.retain(|id, probe| wanted.get(id.as_str()).is_some_and(|h| **h == probe.config));
        for (id, h) in wanted {
            st.health.entry(id.to_string()).or_insert_with(|| HealthProbe::start(ns.to_string(), h.clone()));
        }
    }

    /// Stops every daemon recorded for the gateway, and anything else still running in its namespace.
    async fn stop_daemons(&self, names: &GatewayNames, paths: &GatewayPaths) {
        for dir in list_dirs(&paths.ssl_dir) {
            let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let files = self.ssl_files(names, paths, &id);
            let marker = files.config.to_string_lossy().into_owned();
            DaemonId { pid_file: &files.pid, marker: &marker }.stop().await;
            let _ = std::fs::remove_file(&files.management);
        }
        let marker = paths.charon_conf.to_string_lossy().into_owned();
        DaemonId { pid_file: &paths.charon_pid, marker: &marker }.stop().await;
        let _ = std::fs::remove_file(&paths.vici);
        let _ = std::fs::remove_file(&paths.loaded);
        if sys::netns_exists(&names.namespace) {
            for pid in sys::netns_pids(&names.namespace).await {
                sys::stop_pid(pid).await;
            }
        }
    }

    /// Cheap checks that the gateway is what the last apply made it.
    async fn is_ready(&self, intent: &GatewayIntent) -> bool {
        let Ok(names) = self.names(&intent.gateway_id) else {
            return false;
        };
        let paths = self.paths(&names);
        if !sys::netns_exists(&names.namespace) {
            return false;
        }
        let Some(pid) = self.charon_id(&paths, |id| id.running()) else {
            return false;
        };
        let Ok(mut c) = vici(&paths.vici).await else {
            return false;
        };
        let Ok(loaded) = loaded_conns(&mut c).await else {
            return false;
        };
        let record = self.read_loaded(&paths, pid);
        for (name, (conn, _, _)) in self.desired_connections(intent) {
            if !loaded.contains(&name) || record.conns.get(&name) != Some(&strongswan::fingerprint(&conn)) {
                return false;
            }
        }
        // A tunnel device that is down or gone takes its routes with it (traffic then hits the blackholes).
        if self.backend.is_libipsec() {
            if !net::link_is_up(&names.namespace, LIBIPSEC_TUN).await {
                return false;
            }
        } else if intent.tunnels.iter().any(|t| t.route_based) {
            let Ok(links) = net::xfrm_interfaces(&names.namespace).await else {
                return false;
            };
            let healthy = intent.tunnels.iter().filter(|t| t.route_based).all(|t| {
                let (name, if_id) = (names::xfrm_if(&t.id), names::xfrm_if_id(&t.id));
                links.iter().any(|l| l.name == name && l.up && l.matches(if_id, NS_PUBLIC_IF))
            });
            if !healthy {
                return false;
            }
        }
        intent.ssl_servers.iter().all(|s| {
            let files = self.ssl_files(&names, &paths, &s.id);
            let marker = files.config.to_string_lossy().into_owned();
            DaemonId { pid_file: &files.pid, marker: &marker }.running().is_some() && files.management.exists()
        })
    }

    async fn repair(self: Arc<Self>, gateway_id: String) {
        let gw = self.entry(&gateway_id);
        let _work = gw.work.lock().await;
        let intent = {
            let mut st = gw.state.lock().unwrap_or_else(|p| p.into_inner());
            st.repairing = false;
            st.intent.clone()
        };
        // Removed (or never applied) while the repair waited.
        let Some(intent) = intent else {
            return;
        };
        tracing::warn!(gateway = %gateway_id, generation = intent.generation, "data plane drifted; re-applying");
        let result = self.converge(&gw, &intent).await;
        let mut st = gw.state.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => st.applied = Some(intent.generation),
            Err(e) => {
                st.applied = None;
                tracing::warn!(gateway = %gateway_id, error = %e, "repair failed; will retry");
            }
        }
    }
}

/// `a.b.c.d/len` with host bits cleared, as the kernel reports routes.
fn canonical_net(cidr: &str) -> String {
    cidr.trim().parse::<Ipv4Net>().map(|n| n.trunc().to_string()).unwrap_or_else(|_| cidr.trim().to_string())
}

#[async_trait]
impl Driver for NetnsDriver {
    fn name(&self) -> &'static str {
        "netns"
    }

    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        self.inner.check(intent)?;
        let gw = self.inner.entry(&intent.gateway_id);
        let _work = gw.work.lock().await;
        {
            let mut st = gw.state.lock().unwrap_or_else(|p| p.into_inner());
            st.intent = Some(intent.clone());
            st.applied = None;
        }
        let started = Instant::now();
        let result = self.inner.converge(&gw, intent).await;
        if result.is_ok() {
            gw.state.lock().unwrap_or_else(|p| p.into_inner()).applied = Some(intent.generation);
            tracing::debug!(gateway = %intent.gateway_id, generation = intent.generation,
                elapsed_ms = started.elapsed().as_millis() as u64, "netns gateway converged");
        }
        result
    }

    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        let Ok(names) = self.inner.names(gateway_id) else {
            // Not a name this driver could have created anything under.
            return Ok(());
        };
        let paths = self.inner.paths(&names);
        let gw = self.inner.entry(gateway_id);
        let _work = gw.work.lock().await;
        {
            let mut st = gw.state.lock().unwrap_or_else(|p| p.into_inner());
            st.intent = None;
            st.applied = None;
            st.health.clear();
        }
        self.inner.stop_daemons(&names, &paths).await;
        let vpc_bridge = net::master_of(&names.vpc_veth).await;
        if sys::netns_exists(&names.namespace) {
            sys::ip(&["netns", "del", &names.namespace]).await?;
        }
        // Deleting the namespace deletes the veth pairs; a root end left from an interrupted apply goes here.
        // The kernel tears the pairs down asynchronously after the namespace goes, so a failed delete only counts
        // if the link is still there afterwards.
        for veth in [&names.public_veth, &names.vpc_veth] {
            if sys::link_exists(None, veth).await {
                if let Err(e) = sys::ip(&["link", "del", "dev", veth]).await {
                    if sys::link_exists(None, veth).await {
                        return Err(e);
                    }
                }
            }
        }
        if let Some(bridge) = vpc_bridge.filter(|b| b.starts_with(names::AUTO_VPC_BRIDGE_PREFIX)) {
            net::delete_bridge_if_unused(&bridge).await?;
        }
        if paths.dir.exists() {
            std::fs::remove_dir_all(&paths.dir)
                .map_err(|e| failed(format!("removing {}: {e}", paths.dir.display())))?;
        }
        for entry in std::fs::read_dir(&self.inner.run_dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&names.token) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        self.inner.gateways.lock().unwrap_or_else(|p| p.into_inner()).remove(gateway_id);
        tracing::info!(gateway = gateway_id, namespace = %names.namespace, "removed gateway data plane");
        Ok(())
    }

    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        let names = self.inner.names(gateway_id)?;
        let paths = self.inner.paths(&names);
        let gw = self.inner.entry(gateway_id);
        let Some(intent) = gw.state.lock().unwrap_or_else(|p| p.into_inner()).intent.clone() else {
            return Ok(GatewayObservation::default());
        };
        // An apply or repair in progress means "not ready yet"; never wait for it here.
        let idle = gw.work.try_lock().is_ok();
        let applied = gw.state.lock().unwrap_or_else(|p| p.into_inner()).applied == Some(intent.generation);
        let ready = idle && applied && self.inner.is_ready(&intent).await;

        let mut states = BTreeMap::new();
        if let Ok(mut c) = vici(&paths.vici).await {
            if let Ok(events) = list_sas(&mut c).await {
                states = strongswan::tunnel_states(&events);
            }
        }
        let (health, repair_due, retry) = {
            let mut st = gw.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let mut retry = Vec::new();
            if ready {
                for t in intent.tunnels.iter().filter(|t| t.initiate && !states.contains_key(&t.id)) {
                    let last = st.last_initiate.entry(t.id.clone()).or_insert(now);
                    if now.duration_since(*last) >= INITIATE_RETRY {
                        *last = now;
                        retry.push(t.clone());
                    }
                }
                st.last_initiate.retain(|id, _| !states.contains_key(id));
            }
            let health: BTreeMap<String, Option<bool>> =
                st.health.iter().map(|(id, probe)| (id.clone(), probe.verdict())).collect();
            let due =
                !ready && idle && !st.repairing && !matches!(st.last_repair, Some(t) if t.elapsed() < REPAIR_SPACING);
            if due {
                st.repairing = true;
                st.last_repair = Some(Instant::now());
            }
            (health, due, retry)
        };
        if !retry.is_empty() {
            let vici_path = paths.vici.clone();
            tokio::spawn(async move {
                let Ok(mut c) = vici(&vici_path).await else { return };
                for t in retry {
                    for child in strongswan::child_names(&t) {
                        let req = Message::new().with("child", &child).with("ike", &t.id).with("timeout", "-1");
                        if let Err(e) = vici_do("initiate", c.request("initiate", &req)).await {
                            tracing::debug!(connection = %t.id, error = %e, "initiate retry failed");
                        }
                    }
                }
            });
        }
        let tunnels = intent
            .tunnels
            .iter()
            .map(|t| {
                let state = states.get(&t.id).map(|s| s.0).unwrap_or(TunnelState::IkeSaNotEstablished);
                let health_ok = if t.health_check.as_ref().is_some_and(|h| h.enable) {
                    health.get(&t.id).copied().flatten()
                } else {
                    None
                };
                (t.id.clone(), TunnelObservation { state, health_ok })
            })
            .collect();
        let mut ssl_sessions = BTreeMap::new();
        for s in &intent.ssl_servers {
            let files = self.inner.ssl_files(&names, &paths, &s.id);
            ssl_sessions.insert(s.id.clone(), openvpn::connected_clients(&files.management).await.unwrap_or(0));
        }
        let ipsec_server_clients =
            intent.ipsec_server.as_ref().and_then(|s| states.get(&s.id)).map(|s| s.1).unwrap_or(0);
        if repair_due {
            tokio::spawn(self.inner.clone().repair(gateway_id.to_string()));
        }
        Ok(GatewayObservation { ready, tunnels, ssl_sessions, ipsec_server_clients })
    }

    async fn ssl_server_logs(
        &self,
        gateway_id: &str,
        server_id: &str,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<String>, DataplaneError> {
        names::check_id("SSL-VPN server", server_id)?;
        let names = self.inner.names(gateway_id)?;
        let paths = self.inner.paths(&names);
        let files = self.inner.ssl_files(&names, &paths, server_id);
        match tokio::fs::read_to_string(&files.log).await {
            Ok(log) => Ok(openvpn::log_lines_between(&log, from_s, to_s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(failed(format!("reading {}: {e}", files.log.display()))),
        }
    }

    async fn realised_gateways(&self) -> Result<Vec<String>, DataplaneError> {
        let prefix = &self.inner.opts.namespace_prefix;
        let mut out: BTreeSet<String> = sys::netns_list()
            .into_iter()
            .filter_map(|ns| ns.strip_prefix(prefix.as_str()).map(str::to_string))
            .collect();
        for dir in list_dirs(&self.inner.gateways_dir) {
            if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
                out.insert(name.to_string());
            }
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_nets() {
        assert_eq!(canonical_net("192.168.10.7/24"), "192.168.10.0/24");
        assert_eq!(canonical_net(" 10.0.0.0/8 "), "10.0.0.0/8");
    }
}
