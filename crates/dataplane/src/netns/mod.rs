//! The `netns` driver: every VPN gateway becomes a network namespace on this host with real strongSwan and OpenVPN
//! daemons in it.
//!
//! Per gateway (`<prefix><gateway id>`, prefix `ovgw-` by default):
//! - `pub0`: veth to the public bridge, holding every public address of the gateway (two for an HA pair) with the
//!   prefix length of `public_cidr`; each tunnel binds its IKE and ESP to its own `local_ip`;
//! - `vpc0`: veth to the VPC's bridge (the declared one, or `ovgw-v<hash>` created for an undeclared VPC), holding
//!   the gateway's private address;
//! - one charon (`charon-systemd` with its own strongswan.conf via `STRONGSWAN_CONF`, VICI socket and log), configured
//!   only through VICI: `load-shared`, `load-conn`, `unload-conn`, `initiate`, per connection, never a reload-all;
//! - one OpenVPN per SSL-VPN server (pushed routes; certificate clients with `crl-verify`, or password clients
//!   checked by the driver), and the driver's one long-lived connection to its management interface (`mgmt`): every
//!   management command goes through it, and password servers let a client in only when it answers;
//! - for password servers, an nftables table (`ip openvgw`) limiting each user to its own address and networks.
//!
//! The bridges live in the root namespace and carry no address: the host is not a member of the public segment or
//! of any VPC, it only switches between the gateways' veths and whatever else is attached (an uplink, a VPC's
//! hosts). A gateway reaches peers outside `public_cidr` through [`NetnsOptions::public_gateway`].
//!
//! `apply` converges "desired vs. actual": namespace, links, addresses, daemons (PID file + a check that the PID
//! still is that daemon), loaded connections (VICI `list-conns` + fingerprints of what was loaded), routes (tagged
//! with their own protocol number), rules and, for password SSL-VPN servers, the nftables table. A killed daemon, a
//! deleted namespace, a restart of openvgw or a stale leftover therefore converge without duplicates on the next
//! `apply`. `observe` only looks (apart from re-opening the management connections a restarted openvgw lacks): it
//! reports `ready: false` when the gateway is no longer what was applied, and the reconciler decides to apply again
//! (the last intent is kept in the state directory, mode 0600, so a restarted openvgw knows what it had applied).
//!
//! Operations on a live gateway: `sessions` / `disconnect` through the management connections (session ids are
//! `<server id>:<OpenVPN client id>`); `tunnel_sas` (VICI `list-sas`), `reset` (VICI `terminate`, then `initiate`
//! for an initiating tunnel) and `tunnel_logs` (charon's log, whose lines carry the connection name and a stamp with
//! its UTC offset).
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
//! directories; SSL-VPN users' passwords exist only in memory while argon2 checks them against the intent's hashes
//! (the hashes are kept in the intent file, mode 0600); none of them is ever logged.
//!
//! Modules: `check` refuses what cannot be realised, `lifecycle` converges and tears down a gateway, `charon` runs
//! charon and syncs its connections (`strongswan` spells what it is told), `routing` owns routes, rules and XFRM
//! interfaces, `openvpn` the SSL-VPN servers, `mgmt` their management connections (sign-ins, sessions),
//! `firewall` what password clients may reach, `health` the probes, `observe` reads state back.

mod backend;
mod bird;
mod charon;
mod check;
mod events;
mod firewall;
mod health;
mod lifecycle;
mod mgmt;
mod names;
pub(crate) use names::short_hash;
mod net;
mod observe;
mod openvpn;
mod routing;
mod strongswan;
pub(crate) mod sys;
#[cfg(test)]
mod testing;
mod vpc_router;

pub use net::NEIGH_TABLE_FLOOR;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ipnet::Ipv4Net;
use openvgw_core::config::{DataplaneConfig, IpsecBackendChoice, VpcConfig};

pub use backend::{detect_ipsec_backend, IpsecBackend};

use health::HealthProbe;
use names::GatewayNames;
use openvpn::ServerFiles;
use sys::{failed, DaemonId};

use crate::{ClientSession, DataplaneError, Driver, GatewayIntent, GatewayObservation, SaStats};

const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// Gateways whose charon reported a change (see `events`).
    changes: Arc<events::Changes>,
    /// One lock per VPC router (several gateways share one).
    router_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Per-gateway bookkeeping. `work` serialises apply / remove; `state` is only held briefly.
struct Gateway {
    work: tokio::sync::Mutex<()>,
    state: Mutex<GatewayState>,
}

#[derive(Default)]
struct GatewayState {
    intent: Option<GatewayIntent>,
    /// Generation realised by the last successful convergence.
    applied: Option<u64>,
    health: BTreeMap<String, HealthProbe>,
    /// The management connection of each SSL-VPN server, by server id.
    managers: BTreeMap<String, Arc<mgmt::Manager>>,
    /// charon's event subscription.
    listener: Option<events::Listener>,
}

impl Gateway {
    fn state(&self) -> std::sync::MutexGuard<'_, GatewayState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
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
    bird_dir: PathBuf,
    bird_conf: PathBuf,
    bird_pid: PathBuf,
    bird_out: PathBuf,
    bird_ctl: PathBuf,
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
        let backend = match cfg.ipsec_backend {
            IpsecBackendChoice::Libipsec => Some(IpsecBackend::KernelLibipsec),
            IpsecBackendChoice::Kernel => match detect_ipsec_backend() {
                kernel @ IpsecBackend::KernelNetlink { .. } => Some(kernel),
                IpsecBackend::KernelLibipsec => {
                    return Err(DataplaneError::Unsupported {
                        backend: "kernel-netlink",
                        what: "ipsec_backend = \"kernel\" on a kernel without ESP".into(),
                    })
                }
            },
            IpsecBackendChoice::Auto => None,
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
        net::raise_neighbour_table();
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
                changes: Default::default(),
                router_locks: Default::default(),
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

    /// Whether a gateway's namespace exists now.
    pub fn namespace_present(&self, gateway_id: &str) -> Result<bool, DataplaneError> {
        Ok(sys::netns_exists(&self.namespace_of(gateway_id)?))
    }

    /// The bridge a VPC's gateways attach to: the declared one, or `ovgw-v<hash>` created on first use.
    pub fn vpc_bridge_of(&self, vpc_id: &str) -> String {
        self.inner.vpc_bridge(vpc_id)
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
            bird_conf: dir.join("bird").join("bird.conf"),
            bird_pid: dir.join("bird").join("bird.pid"),
            bird_out: dir.join("bird").join("bird.out"),
            bird_ctl: self.run_dir.join(format!("{}.bird", names.token)),
            bird_dir: dir.join("bird"),
            charon_dir,
            dir,
        }
    }

    /// Subscribes to the events of the gateway's charon (process `pid`) unless that is done already.
    fn listen(&self, gw: &Gateway, gateway_id: &str, paths: &GatewayPaths, pid: i32) {
        let mut st = gw.state();
        if st.listener.as_ref().is_some_and(|l| l.serves(pid)) {
            return;
        }
        st.listener =
            Some(events::Listener::start(self.changes.clone(), gateway_id.to_string(), paths.vici.clone(), pid));
    }

    /// `Driver::take_changed`: gateways with events since the last call, and those whose state no event reports
    /// (SSL-VPN sessions, health-check verdicts, BGP sessions and their routes) or that have no live subscription yet.
    fn take_changed(&self) -> std::collections::HashSet<String> {
        let mut out = self.changes.take();
        let map = self.gateways.lock().unwrap_or_else(|p| p.into_inner());
        for (id, gw) in map.iter() {
            let st = gw.state();
            let Some(intent) = &st.intent else { continue };
            let unevented = !intent.ssl_servers.is_empty()
                || intent.tunnels.iter().any(|t| t.health_check.as_ref().is_some_and(|h| h.enable) || t.bgp.is_some());
            if unevented || !st.listener.as_ref().is_some_and(|l| l.is_live()) {
                out.insert(id.clone());
            }
        }
        out
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
                // Taken as applied: `observe` checks daemons and connections against it and reports what disagrees.
                let applied = intent.as_ref().map(|i| i.generation);
                Arc::new(Gateway {
                    work: tokio::sync::Mutex::new(()),
                    state: Mutex::new(GatewayState { intent, applied, ..Default::default() }),
                })
            })
            .clone()
    }

    /// The management connections of a gateway's SSL-VPN servers (started if the driver has none yet, e.g. after a
    /// restart of openvgw), by server id.
    fn managers_of(&self, gateway_id: &str) -> Vec<(String, Arc<mgmt::Manager>)> {
        let gw = self.entry(gateway_id);
        let intent = gw.state().intent.clone();
        if let Some(intent) = intent {
            self.ensure_managers(&gw, &intent);
        }
        let st = gw.state();
        st.managers.iter().map(|(id, m)| (id.clone(), m.clone())).collect()
    }

    /// The last intent applied to a gateway, if any.
    fn intent_of(&self, gateway_id: &str) -> Option<GatewayIntent> {
        self.entry(gateway_id).state().intent.clone()
    }

    fn vpc_bridge(&self, vpc_id: &str) -> String {
        self.vpcs.get(vpc_id).and_then(|v| v.bridge.clone()).unwrap_or_else(|| names::auto_vpc_bridge(vpc_id))
    }

    /// The VPC's address block: from the intent, else from the VPC's declaration.
    fn vpc_net(&self, intent: &GatewayIntent) -> Result<Ipv4Net, DataplaneError> {
        if let Some(net) = intent.vpc_cidr {
            return Ok(net);
        }
        let declared = self.vpcs.get(&intent.vpc_id).and_then(|v| v.cidr.parse::<Ipv4Net>().ok());
        declared.ok_or_else(|| {
            failed(format!(
                "the address block of VPC {} is unknown (neither in the intent nor declared)",
                intent.vpc_id
            ))
        })
    }
}

#[async_trait]
impl Driver for NetnsDriver {
    fn name(&self) -> &'static str {
        "netns"
    }

    fn take_changed(&self) -> Option<std::collections::HashSet<String>> {
        Some(self.inner.take_changed())
    }

    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        self.inner.check(intent)?;
        let gw = self.inner.entry(&intent.gateway_id);
        let _work = gw.work.lock().await;
        // Management connections carry the user lists last applied, so this apply can tell whose sessions end.
        let previous = gw.state().intent.clone();
        if let Some(previous) = previous {
            self.inner.ensure_managers(&gw, &previous);
        }
        {
            let mut st = gw.state();
            st.intent = Some(intent.clone());
            st.applied = None;
        }
        let started = Instant::now();
        let result = self.inner.converge(&gw, intent).await;
        if result.is_ok() {
            gw.state().applied = Some(intent.generation);
            tracing::debug!(gateway = %intent.gateway_id, generation = intent.generation,
                elapsed_ms = started.elapsed().as_millis() as u64, "netns gateway converged");
        }
        result
    }

    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        self.inner.remove_gateway(gateway_id).await
    }

    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        self.inner.observe(gateway_id).await
    }

    async fn initiate(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        self.inner.initiate(gateway_id, tunnel_id).await
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

    async fn tunnel_logs(
        &self,
        gateway_id: &str,
        tunnel_id: &str,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<String>, DataplaneError> {
        names::check_id("connection", tunnel_id)?;
        let paths = self.inner.paths(&self.inner.names(gateway_id)?);
        let log = paths.charon_dir.join(strongswan::LOG_FILE);
        match tokio::fs::read_to_string(&log).await {
            Ok(text) => Ok(charon::log_lines_of(&text, tunnel_id, from_s, to_s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(failed(format!("reading {}: {e}", log.display()))),
        }
    }

    async fn tunnel_sas(&self, gateway_id: &str, tunnel_id: &str) -> Result<Vec<SaStats>, DataplaneError> {
        self.inner.tunnel_sas(gateway_id, tunnel_id).await
    }

    async fn reset(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        self.inner.reset(gateway_id, tunnel_id).await
    }

    async fn sessions(&self, gateway_id: &str) -> Result<Vec<ClientSession>, DataplaneError> {
        self.inner.names(gateway_id)?;
        let mut out = Vec::new();
        for (_, manager) in self.inner.managers_of(gateway_id) {
            out.extend(manager.sessions().await?);
        }
        Ok(out)
    }

    async fn disconnect(&self, gateway_id: &str, session_id: &str) -> Result<bool, DataplaneError> {
        self.inner.names(gateway_id)?;
        let Some((server, cid)) = session_id.rsplit_once(':') else {
            return Ok(false);
        };
        let Ok(cid) = cid.parse::<u64>() else {
            return Ok(false);
        };
        let Some((_, manager)) = self.inner.managers_of(gateway_id).into_iter().find(|(id, _)| id == server) else {
            return Ok(false);
        };
        let killed = manager.kill(cid).await?;
        if killed {
            tracing::info!(gateway = gateway_id, session = session_id, "disconnected SSL-VPN session");
        }
        Ok(killed)
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
