//! BGP over the tunnels: one BIRD 2 per gateway that has a BGP connection, configured from the intent and kept in
//! step like charon (a changed configuration is loaded with `birdc configure`, which restarts only the sessions
//! whose part changed). BIRD installs what it learns into the namespace's main table itself (protocol `bird`, next
//! hop the peer's inside address, so the route follows the tunnel device) and withdraws it when the session ends:
//! when the peer withdraws it, or at the latest after the hold time once the tunnel stops carrying keepalives.
//!
//! Each session runs between the tunnel's inside addresses; the gateway's end is an address on the tunnel device
//! (libipsec: `ipsec0`; kernel IPsec: the tunnel's XFRM interface), so the peer is on a connected network, as eBGP
//! wants, and everything addressed to it is encrypted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use openvgw_core::model::BgpSessionState;

use super::sys::{self, failed, DaemonId};
use super::{net, GatewayPaths, Inner, DAEMON_START_TIMEOUT};
use crate::{BgpObservation, DataplaneError, GatewayIntent, LearnedRoute};

const BIRD: &str = "/usr/sbin/bird";
const BIRDC: &str = "/usr/sbin/birdc";
/// Keepalives every 10 s; a session whose tunnel stopped carrying ends 30 s after its last keepalive.
const HOLD_TIME_S: u32 = 30;
/// Prefixes accepted from one peer; beyond it the session keeps what it has and takes no more.
pub(super) const IMPORT_LIMIT: u32 = 1000;
const BIRDC_TIMEOUT: Duration = Duration::from_secs(5);

/// BIRD's name for the session of a tunnel (BIRD symbols are letters, digits and underscores).
pub(super) fn protocol_name(tunnel_id: &str) -> String {
    let safe: String = tunnel_id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("t_{safe}")
}

fn prefix_set(nets: &[Ipv4Net], or_longer: bool) -> String {
    let suffix = if or_longer { "+" } else { "" };
    nets.iter().map(|n| format!("{}{suffix}", n.trunc())).collect::<Vec<_>>().join(", ")
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The whole `bird.conf` of a gateway, or `None` when none of its tunnels speaks BGP.
pub(super) fn config(intent: &GatewayIntent) -> Option<String> {
    let sessions: Vec<_> = intent.tunnels.iter().filter_map(|t| t.bgp.as_ref().map(|b| (t, b))).collect();
    if sessions.is_empty() {
        return None;
    }
    let router_id: Ipv4Addr = intent.public_ips.first().copied().unwrap_or(intent.private_ip);
    let mut c = String::new();
    let _ = writeln!(c, "# Written by openvgw for gateway {}; changes are overwritten.", intent.gateway_id);
    let _ = writeln!(c, "log stderr {{ info, remote, warning, error, auth, fatal, bug }};");
    let _ = writeln!(c, "router id {router_id};");
    let _ = writeln!(c, "protocol device {{ scan time 10; }}");
    // Only what BGP learned goes into the kernel; the announced prefixes stay inside BIRD.
    let _ = writeln!(
        c,
        "protocol kernel {{\n  ipv4 {{ import none; export where source = RTS_BGP; }};\n  learn off;\n  persist off;\n}}"
    );
    let announced: BTreeSet<Ipv4Net> =
        sessions.iter().flat_map(|(_, b)| b.advertise.iter().map(|n| n.trunc())).collect();
    let _ = writeln!(c, "protocol static announced {{\n  ipv4;");
    for net in &announced {
        let _ = writeln!(c, "  route {net} unreachable;");
    }
    let _ = writeln!(c, "}}");
    for (t, b) in sessions {
        let _ = writeln!(c, "protocol bgp {} {{", protocol_name(&t.id));
        let _ = writeln!(c, "  description {};", quoted(&t.id));
        let _ = writeln!(c, "  local {} as {};", b.local_ip, b.local_asn);
        let _ = writeln!(c, "  neighbor {} as {};", b.peer_ip, b.peer_asn);
        let _ = writeln!(c, "  hold time {HOLD_TIME_S};\n  keepalive time {};", HOLD_TIME_S / 3);
        // Come back within seconds once the tunnel does (BIRD's defaults wait minutes).
        let _ = writeln!(c, "  connect retry time 5;\n  error wait time 5, 30;");
        if let Some(key) = &b.auth_key {
            let _ = writeln!(c, "  password {};", quoted(key.expose()));
        }
        let _ = writeln!(c, "  ipv4 {{");
        let mut refused: Vec<Ipv4Net> = vec!["169.254.0.0/16".parse().unwrap_or_default()];
        refused.extend(b.refuse.iter().copied());
        let _ = writeln!(c, "    import limit {IMPORT_LIMIT} action block;");
        let _ = writeln!(
            c,
            "    import filter {{ if net ~ [ {} ] then reject; if net.len = 0 then reject; accept; }};",
            prefix_set(&refused, true)
        );
        if b.advertise.is_empty() {
            let _ = writeln!(c, "    export none;");
        } else {
            let _ = writeln!(
                c,
                "    export filter {{ if proto = \"announced\" && net ~ [ {} ] then accept; reject; }};",
                prefix_set(&b.advertise, false)
            );
        }
        let _ = writeln!(c, "    next hop self;\n  }};\n}}");
    }
    Some(c)
}

/// The prefixes in observations of BGP sessions, once each.
pub(super) fn learned_of(sessions: &BTreeMap<String, BgpObservation>) -> Vec<Ipv4Net> {
    let all: BTreeSet<Ipv4Net> = sessions.values().flat_map(|b| b.learned.iter().map(|r| r.dest)).collect();
    all.into_iter().collect()
}

/// `birdc show protocols`: the state of each BGP session, by protocol name (BIRD names the FSM state in the Info
/// column; a disabled or stopped protocol shows none and counts as idle).
pub(super) fn parse_protocols(out: &str) -> BTreeMap<String, BgpSessionState> {
    let mut sessions = BTreeMap::new();
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 2 && words[1] == "BGP" {
            let state = words[2..]
                .iter()
                .find_map(|w| match *w {
                    "Connect" => Some(BgpSessionState::Connect),
                    "Active" => Some(BgpSessionState::Active),
                    "OpenSent" => Some(BgpSessionState::OpenSent),
                    "OpenConfirm" => Some(BgpSessionState::OpenConfirm),
                    "Established" => Some(BgpSessionState::Established),
                    _ => None,
                })
                .unwrap_or(BgpSessionState::Idle);
            sessions.insert(words[0].to_string(), state);
        }
    }
    sessions
}

/// `birdc show route all`: the routes of each protocol with their AS paths.
pub(super) fn parse_routes(out: &str) -> BTreeMap<String, Vec<LearnedRoute>> {
    let mut routes: BTreeMap<String, Vec<LearnedRoute>> = BTreeMap::new();
    let mut net: Option<Ipv4Net> = None;
    let mut current: Option<(String, usize)> = None;
    for line in out.lines() {
        let indented = line.starts_with(char::is_whitespace);
        if !indented {
            net = line.split_whitespace().next().and_then(|w| w.parse().ok());
            current = None;
        }
        let Some(dest) = net else { continue };
        if let Some(open) = line.find(" [") {
            // A route's first line: `<net> unicast [proto time] ...`, or indented for another route of the net.
            let proto = line[open + 2..].split_whitespace().next().unwrap_or_default().to_string();
            let list = routes.entry(proto.clone()).or_default();
            list.push(LearnedRoute { dest, as_path: Vec::new() });
            current = Some((proto, list.len() - 1));
        } else if let Some(path) = line.trim().strip_prefix("BGP.as_path:") {
            if let Some((proto, i)) = &current {
                if let Some(r) = routes.get_mut(proto).and_then(|l| l.get_mut(*i)) {
                    r.as_path = path.split_whitespace().filter_map(|a| a.parse().ok()).collect();
                }
            }
        }
    }
    routes
}

async fn birdc(socket: &str, args: &[&str]) -> Result<String, DataplaneError> {
    let mut all = vec!["-s", socket];
    all.extend_from_slice(args);
    tokio::time::timeout(BIRDC_TIMEOUT, sys::run(BIRDC, &all))
        .await
        .map_err(|_| failed(format!("birdc {} timed out", args.join(" "))))?
}

impl Inner {
    fn bird_id<T>(&self, paths: &GatewayPaths, f: impl FnOnce(&DaemonId) -> T) -> T {
        let marker = paths.bird_conf.to_string_lossy().into_owned();
        f(&DaemonId { pid_file: &paths.bird_pid, marker: &marker })
    }

    /// The inside addresses each tunnel device should carry (every route-based tunnel's device is listed, so an
    /// address of a tunnel that stopped speaking BGP goes).
    pub(super) fn inside_addresses(&self, intent: &GatewayIntent) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for t in intent.tunnels.iter().filter(|t| t.route_based) {
            // The inside address sits on the device the tunnel's traffic is routed into.
            let set = out.entry(self.tunnel_device(&t.id)).or_default();
            if let Some(b) = &t.bgp {
                set.insert(format!("{}/{}", b.local_ip, b.prefix_len));
            }
        }
        out
    }

    /// Inside addresses, then BIRD: started, reconfigured, or stopped when no tunnel speaks BGP any more.
    pub(super) async fn sync_bird(
        &self,
        ns: &str,
        paths: &GatewayPaths,
        intent: &GatewayIntent,
    ) -> Result<(), DataplaneError> {
        for (dev, addrs) in self.inside_addresses(intent) {
            net::ensure_addresses(ns, &dev, &addrs).await?;
        }
        let Some(conf) = config(intent) else {
            self.stop_bird(paths).await;
            return Ok(());
        };
        sys::create_private_dir(&paths.bird_dir)?;
        let changed = sys::write_if_changed(&paths.bird_conf, conf.as_bytes(), 0o600)?;
        let socket = paths.bird_ctl.to_string_lossy().into_owned();
        if self.bird_id(paths, |id| id.running()).is_some() && birdc(&socket, &["show", "status"]).await.is_ok() {
            if changed {
                let out = birdc(&socket, &["configure"]).await?;
                if !out.contains("Reconfigur") {
                    return Err(failed(format!("BIRD in {ns} refused its configuration: {}", out.trim())));
                }
                tracing::info!(namespace = ns, "reconfigured BIRD");
            }
            return Ok(());
        }
        self.stop_bird(paths).await;
        let marker = paths.bird_conf.to_string_lossy().into_owned();
        for pid in sys::netns_pids(ns).await {
            if sys::process_matches(pid, &marker) {
                sys::stop_pid(pid).await;
            }
        }
        let _ = std::fs::remove_file(&paths.bird_ctl);
        let conf_path = paths.bird_conf.to_string_lossy().into_owned();
        let pid = sys::spawn_in_netns(ns, BIRD, &["-f", "-c", &conf_path, "-s", &socket], &[], &paths.bird_out)?;
        self.bird_id(paths, |id| id.record(pid))?;
        let up = sys::wait_until(DAEMON_START_TIMEOUT, || {
            let socket = socket.clone();
            async move { birdc(&socket, &["show", "status"]).await.is_ok() }
        })
        .await;
        if !up {
            let log = std::fs::read_to_string(&paths.bird_out).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(failed(format!("BIRD in {ns} did not come up: {}", tail.join(" | "))));
        }
        tracing::info!(namespace = ns, pid, "started BIRD");
        Ok(())
    }

    pub(super) async fn stop_bird(&self, paths: &GatewayPaths) {
        let marker = paths.bird_conf.to_string_lossy().into_owned();
        DaemonId { pid_file: &paths.bird_pid, marker: &marker }.stop().await;
        let _ = std::fs::remove_file(&paths.bird_ctl);
    }

    /// BIRD runs with the applied configuration and every inside address is in place.
    pub(super) async fn bird_ready(&self, ns: &str, paths: &GatewayPaths, intent: &GatewayIntent) -> bool {
        for (dev, addrs) in self.inside_addresses(intent) {
            if !addrs.is_empty() && net::addresses(ns, &dev).await.map_or(true, |have| have != addrs) {
                return false;
            }
        }
        let Some(conf) = config(intent) else {
            return self.bird_id(paths, |id| id.running()).is_none();
        };
        self.bird_id(paths, |id| id.running()).is_some()
            && std::fs::read_to_string(&paths.bird_conf).is_ok_and(|c| c == conf)
    }

    /// Every prefix the gateway's established BGP sessions accepted (none when it does not propagate them).
    pub(super) async fn learned_prefixes(&self, paths: &GatewayPaths, intent: &GatewayIntent) -> Vec<Ipv4Net> {
        if !intent.propagate_learned || intent.tunnels.iter().all(|t| t.bgp.is_none()) {
            return Vec::new();
        }
        learned_of(&self.bgp_observations(paths, intent).await)
    }

    /// Session state and accepted routes of every BGP tunnel, by tunnel id. A BIRD that does not answer reports
    /// every session down.
    pub(super) async fn bgp_observations(
        &self,
        paths: &GatewayPaths,
        intent: &GatewayIntent,
    ) -> BTreeMap<String, BgpObservation> {
        let socket = paths.bird_ctl.to_string_lossy().into_owned();
        let bgp_tunnels = intent.tunnels.iter().filter(|t| t.bgp.is_some());
        let (sessions, mut routes) = if intent.tunnels.iter().any(|t| t.bgp.is_some()) {
            let sessions =
                birdc(&socket, &["show", "protocols"]).await.map(|o| parse_protocols(&o)).unwrap_or_default();
            let routes = birdc(&socket, &["show", "route", "all"]).await.map(|o| parse_routes(&o)).unwrap_or_default();
            (sessions, routes)
        } else {
            Default::default()
        };
        bgp_tunnels
            .map(|t| {
                let name = protocol_name(&t.id);
                let state = sessions.get(&name).copied().unwrap_or(BgpSessionState::Idle);
                let mut learned = if state == BgpSessionState::Established {
                    routes.remove(&name).unwrap_or_default()
                } else {
                    Vec::new()
                };
                learned.sort();
                learned.dedup();
                (t.id.clone(), BgpObservation { state, learned })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{intent, tunnel};
    use super::*;
    use crate::{BgpIntent, Secret};
    use openvgw_core::crypto::IkeVersion;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("net")
    }

    fn bgp_tunnel(id: &str, key: Option<&str>) -> crate::TunnelIntent {
        let mut t = tunnel(id, IkeVersion::V2);
        t.route_based = true;
        t.bgp = Some(BgpIntent {
            local_asn: 45104,
            peer_asn: 65010,
            local_ip: "169.254.10.1".parse().expect("ip"),
            peer_ip: "169.254.10.2".parse().expect("ip"),
            prefix_len: 30,
            auth_key: key.map(Secret::new),
            advertise: vec![net("192.168.10.0/24")],
            refuse: vec![net("192.168.10.0/24")],
        });
        t
    }

    #[test]
    fn no_bgp_tunnel_means_no_bird() {
        assert_eq!(config(&intent(vec![tunnel("vco-a", IkeVersion::V2)])), None);
    }

    #[test]
    fn each_bgp_tunnel_is_a_session_that_announces_only_its_prefixes() {
        let mut b = bgp_tunnel("vco-b", None);
        if let Some(bgp) = b.bgp.as_mut() {
            bgp.advertise = vec![net("192.168.10.0/24"), net("10.50.0.0/16")];
            bgp.local_ip = "169.254.20.1".parse().expect("ip");
            bgp.peer_ip = "169.254.20.2".parse().expect("ip");
        }
        let conf = config(&intent(vec![bgp_tunnel("vco-a", Some("k\"ey")), b])).expect("config");
        for want in [
            "protocol bgp t_vco_a {",
            "local 169.254.10.1 as 45104;",
            "neighbor 169.254.10.2 as 65010;",
            "password \"k\\\"ey\";",
            "protocol bgp t_vco_b {",
            "neighbor 169.254.20.2 as 65010;",
            "route 10.50.0.0/16 unreachable;",
            "route 192.168.10.0/24 unreachable;",
            "hold time 30;",
            "import filter { if net ~ [ 169.254.0.0/16+, 192.168.10.0/24+ ] then reject;",
            "export filter { if proto = \"announced\" && net ~ [ 192.168.10.0/24 ] then accept; reject; };",
            "export filter { if proto = \"announced\" && net ~ [ 192.168.10.0/24, 10.50.0.0/16 ] then accept;",
            "export where source = RTS_BGP;",
        ] {
            assert!(conf.contains(want), "{want} missing from\n{conf}");
        }
        assert_eq!(conf.matches("password").count(), 1, "only the session with a key has one");
    }

    #[test]
    fn reads_sessions_and_learned_routes() {
        let protocols = "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n\
            device1    Device     ---        up     14:07:22.393  \n\
            t_vco_a    BGP        ---        up     14:07:25.101  Established   \n\
            t_vco_b    BGP        ---        start  14:07:22.393  Active        Socket: Connection refused\n\
            t_vco_c    BGP        ---        down   14:07:22.393  \n";
        let sessions = parse_protocols(protocols);
        assert_eq!(sessions.get("t_vco_a"), Some(&BgpSessionState::Established));
        assert_eq!(sessions.get("t_vco_b"), Some(&BgpSessionState::Active));
        assert_eq!(sessions.get("t_vco_c"), Some(&BgpSessionState::Idle));
        assert_eq!(sessions.len(), 3, "{sessions:?}");

        let routes = "BIRD 2.0.12 ready.\nTable master4:\n\
            172.16.40.0/24       unicast [t_vco_a 14:07:25.123] * (100) [AS65010i]\n\
            \tvia 169.254.10.2 on ipsec0\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 65010 65020\n\
            \tBGP.next_hop: 169.254.10.2\n\
            \x20                    unicast [t_vco_b 14:07:26.000] (100) [AS65010i]\n\
            \tvia 169.254.20.2 on ipsec0\n\tBGP.as_path: 65010\n\
            192.168.10.0/24      unreachable [announced 14:07:22.393] * (200)\n\tType: static univ\n";
        let by_proto = parse_routes(routes);
        let a = &by_proto["t_vco_a"];
        assert_eq!(a, &vec![LearnedRoute { dest: net("172.16.40.0/24"), as_path: vec![65010, 65020] }]);
        let b = &by_proto["t_vco_b"];
        assert_eq!(b, &vec![LearnedRoute { dest: net("172.16.40.0/24"), as_path: vec![65010] }]);
        assert_eq!(by_proto["announced"].len(), 1);
    }
}
