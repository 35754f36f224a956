//! One charon per gateway: its lifecycle, and its connections kept in step with the intent through VICI, one
//! connection at a time (`load-shared`, `load-pool`, `load-conn`, `unload-conn`, `initiate`). What was loaded into
//! which charon is recorded as fingerprints, so a restarted openvgw adopts a running charon without reloading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use openvgw_vici::{Client, Message};

use super::sys::{self, failed, DaemonId};
use super::{names, strongswan, GatewayPaths, Inner, DAEMON_START_TIMEOUT};
use crate::{DataplaneError, GatewayIntent, SaStats, TunnelIntent};

const VICI_TIMEOUT: Duration = Duration::from_secs(10);

/// What was loaded into which charon: lets a restarted openvgw see that a running charon already has the
/// current connections (no secrets in it: PSKs are not part of the fingerprints).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct LoadedConns {
    pub charon_pid: i32,
    pub conns: BTreeMap<String, String>,
}

/// One connection as charon gets it: `load-conn`, `load-shared` and, for the IPsec server, `load-pool`.
pub(super) struct DesiredConn {
    pub conn: Message,
    pub secret: Message,
    pub pool: Option<Message>,
}

pub(super) async fn vici(path: &Path) -> Result<Client, DataplaneError> {
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
pub(super) async fn loaded_conns(c: &mut Client) -> Result<BTreeSet<String>, DataplaneError> {
    let (events, _) = vici_do("list-conns", c.collect("list-conns", "list-conn", &Message::new())).await?;
    Ok(events.iter().flat_map(|m| m.sections().map(|(n, _)| n.to_string())).collect())
}

pub(super) async fn list_sas(c: &mut Client) -> Result<Vec<Message>, DataplaneError> {
    Ok(vici_do("list-sas", c.collect("list-sas", "list-sa", &Message::new().with("noblock", "yes"))).await?.0)
}

/// Starts every CHILD_SA of a tunnel without waiting for the outcome (timeout -1): charon keeps trying on its own
/// (`keyingtries = 0`); this only covers a peer that had answered with an error charon does not retry on.
async fn initiate_children(c: &mut Client, t: &TunnelIntent) -> Result<(), DataplaneError> {
    let mut first_error = None;
    for child in strongswan::child_names(t) {
        let req = Message::new().with("child", &child).with("ike", &t.id).with("timeout", "-1");
        if let Err(e) = vici_do("initiate", c.request("initiate", &req)).await {
            tracing::debug!(connection = %t.id, child = %child, error = %e, "initiate failed");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl Inner {
    pub(super) fn charon_id<T>(&self, paths: &GatewayPaths, f: impl FnOnce(&DaemonId) -> T) -> T {
        let marker = paths.charon_conf.to_string_lossy().into_owned();
        f(&DaemonId { pid_file: &paths.charon_pid, marker: &marker })
    }

    /// Starts charon unless the recorded one still runs and answers; returns its PID.
    pub(super) async fn ensure_charon(&self, ns: &str, paths: &GatewayPaths) -> Result<i32, DataplaneError> {
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
        // TZ=UTC only for readability: the log's stamps carry their offset (see `strongswan::LOG_TIME_FORMAT`).
        let env = [("STRONGSWAN_CONF", conf_path.as_str()), ("TZ", "UTC")];
        let pid = sys::spawn_in_netns(ns, &charon, &[], &env, &paths.charon_out)?;
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

    pub(super) fn read_loaded(&self, paths: &GatewayPaths, charon_pid: i32) -> LoadedConns {
        std::fs::read(&paths.loaded)
            .ok()
            .and_then(|raw| serde_json::from_slice::<LoadedConns>(&raw).ok())
            .filter(|l| l.charon_pid == charon_pid)
            .unwrap_or(LoadedConns { charon_pid, conns: BTreeMap::new() })
    }

    /// The connections charon should have, by name.
    pub(super) fn desired_connections(
        &self,
        intent: &GatewayIntent,
    ) -> Result<BTreeMap<String, DesiredConn>, DataplaneError> {
        let mut out = BTreeMap::new();
        for t in &intent.tunnels {
            let if_id = (t.route_based && !self.backend.is_libipsec()).then(|| names::xfrm_if_id(&t.id));
            let conn = strongswan::tunnel_conn(t, if_id, !self.backend.is_libipsec())?;
            out.insert(t.id.clone(), DesiredConn { conn, secret: strongswan::tunnel_secret(t), pool: None });
        }
        if let Some(s) = &intent.ipsec_server {
            let (conn, pool, secret) = strongswan::ipsec_server_conn(s, &intent.public_ips)?;
            out.insert(s.id.clone(), DesiredConn { conn, secret, pool: Some(pool) });
        }
        Ok(out)
    }

    /// Loads, replaces and unloads connections one by one through VICI.
    pub(super) async fn sync_connections(
        &self,
        paths: &GatewayPaths,
        charon_pid: i32,
        intent: &GatewayIntent,
    ) -> Result<(), DataplaneError> {
        let mut c = vici(&paths.vici).await?;
        let loaded = loaded_conns(&mut c).await?;
        let mut record = self.read_loaded(paths, charon_pid);
        let desired = self.desired_connections(intent)?;

        for stale in loaded.iter().filter(|n| !desired.contains_key(*n)) {
            tracing::info!(gateway = %intent.gateway_id, connection = %stale, "unloading connection");
            unload(&mut c, stale).await;
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
        for (name, d) in &desired {
            // Secrets are replaced by id every time: cheap, and a changed PSK needs no connection reload.
            vici_do("load-shared", c.command("load-shared", &d.secret)).await?;
            if let Some(pool) = &d.pool {
                vici_do("load-pool", c.command("load-pool", pool)).await?;
            }
            let fp = strongswan::fingerprint(&d.conn);
            if loaded.contains(name) && record.conns.get(name) == Some(&fp) {
                untouched.insert(name.clone());
                continue;
            }
            if loaded.contains(name) {
                // A changed connection: drop its SAs so the new settings are negotiated, not just stored.
                tracing::info!(gateway = %intent.gateway_id, connection = %name, "replacing changed connection");
                unload(&mut c, name).await;
            } else {
                tracing::info!(gateway = %intent.gateway_id, connection = %name, "loading connection");
            }
            vici_do("load-conn", c.command("load-conn", &d.conn)).await?;
            record.conns.insert(name.clone(), fp);
            let json = serde_json::to_vec(&record).map_err(|e| failed(format!("serialising loaded set: {e}")))?;
            sys::write_file(&paths.loaded, &json, 0o600)?;
        }
        let json = serde_json::to_vec(&record).map_err(|e| failed(format!("serialising loaded set: {e}")))?;
        sys::write_if_changed(&paths.loaded, &json, 0o600)?;

        // start_action=start only fires on load; an initiating tunnel that gave up (e.g. a permanent error from the
        // peer) is started again by an apply as well.
        let idle: Vec<&TunnelIntent> = intent
            .tunnels
            .iter()
            .filter(|t| t.initiate && t.remote_ip.is_some() && untouched.contains(&t.id))
            .collect();
        if !idle.is_empty() {
            let states = super::observe::tunnel_states(&list_sas(&mut c).await?);
            for t in idle.into_iter().filter(|t| !states.contains_key(&t.id)) {
                if let Err(e) = initiate_children(&mut c, t).await {
                    tracing::warn!(connection = %t.id, error = %e, "initiate failed");
                }
            }
        }
        Ok(())
    }

    /// `Driver::initiate`: starts one tunnel of an applied gateway now, unless it has an IKE_SA already (so calling
    /// it again while a negotiation runs is harmless). Unknown gateways and tunnels, and peers without an address
    /// (nothing to initiate to), are left alone.
    pub(super) async fn initiate(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        let Ok(names) = self.names(gateway_id) else {
            return Ok(());
        };
        let tunnel = self
            .intent_of(gateway_id)
            .and_then(|i| i.tunnels.into_iter().find(|t| t.id == tunnel_id))
            .filter(|t| t.remote_ip.is_some());
        let Some(t) = tunnel else {
            return Ok(());
        };
        let mut c = vici(&self.paths(&names).vici).await?;
        // Only a tunnel without any IKE_SA: one being negotiated or up would get duplicate CHILD_SAs.
        if super::observe::tunnel_states(&list_sas(&mut c).await?).contains_key(&t.id) {
            return Ok(());
        }
        tracing::debug!(gateway = gateway_id, connection = tunnel_id, "initiating");
        initiate_children(&mut c, &t).await
    }
}

impl Inner {
    /// The tunnel of an applied gateway, if both exist.
    fn applied_tunnel(&self, gateway_id: &str, tunnel_id: &str) -> Option<TunnelIntent> {
        self.intent_of(gateway_id).and_then(|i| i.tunnels.into_iter().find(|t| t.id == tunnel_id))
    }

    /// `Driver::tunnel_sas`: the CHILD_SAs of the tunnel's IKE_SAs, from VICI `list-sas`.
    pub(super) async fn tunnel_sas(&self, gateway_id: &str, tunnel_id: &str) -> Result<Vec<SaStats>, DataplaneError> {
        names::check_id("connection", tunnel_id)?;
        let names = self.names(gateway_id)?;
        if self.applied_tunnel(gateway_id, tunnel_id).is_none() {
            return Ok(Vec::new());
        }
        let mut c = vici(&self.paths(&names).vici).await?;
        let req = Message::new().with("noblock", "yes").with("ike", tunnel_id);
        let (events, _) = vici_do("list-sas", c.collect("list-sas", "list-sa", &req)).await?;
        Ok(sa_stats(&events, tunnel_id))
    }

    /// `Driver::reset`: terminates the tunnel's IKE_SAs (and so their CHILD_SAs) and, for a tunnel that initiates
    /// towards a known address, starts it again. A responder waits for its peer (or, with a trap, for traffic).
    pub(super) async fn reset(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        let Ok(names) = self.names(gateway_id) else {
            return Ok(());
        };
        let Some(t) = self.applied_tunnel(gateway_id, tunnel_id) else {
            return Ok(());
        };
        let mut c = vici(&self.paths(&names).vici).await?;
        // Wait up to 5 s for the peer to confirm the DELETE, then drop the SAs anyway.
        let req = Message::new().with("ike", tunnel_id).with("timeout", "5000").with("force", "yes");
        let answer = vici_do("terminate", c.request("terminate", &req)).await?;
        if answer.get_str("success") != Some("yes") {
            // Typically "no matching SAs": there was nothing to tear down.
            tracing::debug!(
                gateway = gateway_id,
                connection = tunnel_id,
                reason = answer.get_str("errmsg").unwrap_or_default(),
                "terminate found nothing"
            );
        }
        tracing::info!(gateway = gateway_id, connection = tunnel_id, "tunnel reset");
        if t.initiate && t.remote_ip.is_some() {
            initiate_children(&mut c, &t).await?;
        }
        Ok(())
    }
}

/// One [`SaStats`] per established CHILD_SA of the IKE_SAs named `conn` in `list-sa` events.
pub(super) fn sa_stats(list_sa_events: &[Message], conn: &str) -> Vec<SaStats> {
    let mut out = Vec::new();
    for ev in list_sa_events {
        for (_, ike) in ev.sections().filter(|(name, _)| *name == conn) {
            let children = ike.get_section("child-sas").into_iter().flat_map(|c| c.sections());
            for (key, child) in children {
                if !matches!(child.get_str("state"), Some("INSTALLED" | "REKEYING" | "REKEYED")) {
                    continue;
                }
                let num = |k: &str| child.get_str(k).and_then(|v| v.parse().ok()).unwrap_or(0u64);
                let ts = |k: &str| child.get_list(k).unwrap_or_default().join(",");
                out.push(SaStats {
                    id: child.get_str("uniqueid").unwrap_or(key).to_string(),
                    local_ts: ts("local-ts"),
                    remote_ts: ts("remote-ts"),
                    bytes_in: num("bytes-in"),
                    bytes_out: num("bytes-out"),
                    packets_in: num("packets-in"),
                    packets_out: num("packets-out"),
                });
            }
        }
    }
    out
}

/// charon's log lines about connection `conn` stamped between `from_s` and `to_s` (inclusive): those charon tags
/// with the IKE_SA's name (`<conn|N>`, `ike_name = yes`) and the VICI lines naming it or one of its CHILD_SAs
/// (`'conn'`, `'conn-0'`). Stamps carry their UTC offset; lines from before that format are taken as UTC.
pub(crate) fn log_lines_of(log: &str, conn: &str, from_s: i64, to_s: i64) -> Vec<String> {
    let tag = format!("<{conn}|");
    let quoted = format!("'{conn}'");
    let child_prefix = format!("'{conn}-");
    let names_child = |line: &str| {
        line.match_indices(&child_prefix).any(|(at, _)| {
            let rest = &line[at + child_prefix.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with('\'')
        })
    };
    log.lines()
        .filter(|line| line.contains(&tag) || line.contains(&quoted) || names_child(line))
        .filter(|line| log_stamp(line).is_some_and(|ts| (from_s..=to_s).contains(&ts)))
        .map(str::to_string)
        .collect()
}

fn log_stamp(line: &str) -> Option<i64> {
    let with_offset = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    let without = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    if let Some(ts) = line.get(..25).and_then(|s| time::OffsetDateTime::parse(s, &with_offset).ok()) {
        return Some(ts.unix_timestamp());
    }
    let s = line.get(..19)?;
    time::PrimitiveDateTime::parse(s, &without).ok().map(|t| t.assume_utc().unix_timestamp())
}

/// Unloads a connection and terminates its SAs (errors ignored: it may have none).
async fn unload(c: &mut Client, name: &str) {
    let _ = vici_do("unload-conn", c.request("unload-conn", &Message::new().with("name", name))).await;
    let req = Message::new().with("ike", name).with("timeout", "-1").with("force", "yes");
    let _ = vici_do("terminate", c.request("terminate", &req)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_established_children_of_the_named_ike_sa() {
        let child = |state: &str, id: &str| {
            Message::new()
                .with("uniqueid", id)
                .with("state", state)
                .with("bytes-in", "840")
                .with("bytes-out", "1680")
                .with("packets-in", "10")
                .with("packets-out", "20")
                .with_list("local-ts", ["192.168.10.0/24", "192.168.11.0/24"])
                .with_list("remote-ts", ["172.16.20.0/24"])
        };
        let ike = |name: &str, children: Message| {
            Message::new()
                .with_section(name, Message::new().with("state", "ESTABLISHED").with_section("child-sas", children))
        };
        let events = [
            ike(
                "vco-a",
                Message::new()
                    .with_section("vco-a-0-3", child("INSTALLED", "3"))
                    .with_section("vco-a-0-4", child("INSTALLING", "4")),
            ),
            ike("vco-b", Message::new().with_section("vco-b-0-5", child("INSTALLED", "5"))),
        ];
        let sas = sa_stats(&events, "vco-a");
        assert_eq!(
            sas,
            [SaStats {
                id: "3".into(),
                local_ts: "192.168.10.0/24,192.168.11.0/24".into(),
                remote_ts: "172.16.20.0/24".into(),
                bytes_in: 840,
                bytes_out: 1680,
                packets_in: 10,
                packets_out: 20,
            }]
        );
        assert!(sa_stats(&events, "vco-c").is_empty());
    }

    #[test]
    fn picks_a_connections_lines_by_name_and_time() {
        let log = "\
2026-01-01 10:00:00 +0000 05[IKE] <vco-a|1> initiating IKE_SA vco-a[1] to 203.0.113.2
2026-01-01 10:00:01 +0000 06[IKE] <vco-ab|2> initiating IKE_SA vco-ab[2] to 203.0.113.3
2026-01-01 10:00:02 +0000 07[CFG] vici initiate CHILD_SA 'vco-a-0', me %any, other %any, limits 0
2026-01-01 10:00:03 +0000 07[CFG] vici initiate CHILD_SA 'vco-ab-0', me %any, other %any, limits 0
2026-01-01 11:00:04 +0100 08[CFG] vici terminate IKE_SA 'vco-a'
2026-01-01 10:00:05 09[IKE] <vco-a|1> an older line without offset
";
        let t0 = log_stamp("2026-01-01 10:00:00 +0000").expect("stamp");
        let lines = log_lines_of(log, "vco-a", t0, t0 + 10);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("vco-ab")), "{lines:?}");
        assert!(lines[2].contains("terminate"), "the offset is honoured: 11:00 +0100 is 10:00 UTC");
        assert_eq!(log_lines_of(log, "vco-a", t0 + 1, t0 + 4).len(), 2);
        assert!(log_lines_of(log, "vco-a", 0, 1000).is_empty());
    }
}
