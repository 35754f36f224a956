//! Namespaces, links, addresses, routes and rules: each converged from "what should be" against "what is" (read
//! back with `ip -j`), so re-running is cheap and repairs whatever drifted.

use std::collections::BTreeSet;

use serde_json::Value;

use super::sys::{self, failed, ip, ip_ns, ip_ns_json};
use crate::DataplaneError;

/// Routes the driver owns carry this protocol number, so they can be told apart from kernel and charon routes.
pub(crate) const ROUTE_PROTO: &str = "77";
/// Policy-route rules live in this priority range (plus the API's priority).
pub(crate) const RULE_PREF_BASE: u32 = 1000;
const RULE_PREF_END: u32 = 2000;

pub(crate) async fn ensure_bridge(name: &str) -> Result<bool, DataplaneError> {
    let created = if sys::link_exists(None, name).await {
        false
    } else {
        ip(&["link", "add", "name", name, "type", "bridge"]).await?;
        true
    };
    ip(&["link", "set", "dev", name, "up"]).await?;
    Ok(created)
}

/// Deletes a bridge the driver created, once nothing is attached to it any more.
pub(crate) async fn delete_bridge_if_unused(name: &str) -> Result<(), DataplaneError> {
    if !sys::link_exists(None, name).await {
        return Ok(());
    }
    let ports = sys::ip_json(&["link", "show", "master", name]).await?;
    if ports.is_empty() {
        ip(&["link", "del", "dev", name]).await?;
        tracing::info!(bridge = name, "deleted unused VPC bridge");
    }
    Ok(())
}

/// The bridge a root-namespace interface is attached to.
pub(crate) async fn master_of(link: &str) -> Option<String> {
    let links = sys::ip_json(&["link", "show", "dev", link]).await.ok()?;
    links.first()?.get("master")?.as_str().map(str::to_string)
}

/// The floor this driver raises the host's IPv4 neighbour table to: (`gc_thresh1`, `gc_thresh2`, `gc_thresh3`).
/// The table is one for all namespaces, and a gateway host holds an entry per (gateway, peer address) besides the
/// peers' own: with the kernel's defaults (128, 512, 1024) a hundred gateways with ten peers each overflow it, and a
/// new tunnel's packets are dropped until garbage collection frees entries, tens of seconds later ("neighbor table
/// overflow" in the kernel log; measured by `bench/dataplane.py --fleet 100x10`). Room for 32k entries costs a few
/// MB at most.
pub const NEIGH_TABLE_FLOOR: [u64; 3] = [4096, 16384, 32768];

/// Raises the host's neighbour-table thresholds to [`NEIGH_TABLE_FLOOR`] where they are lower (never lowers them);
/// a host that refuses (a read-only /proc/sys) gets a warning, not a failure: small fleets fit the defaults.
pub(crate) fn raise_neighbour_table() {
    for (i, floor) in NEIGH_TABLE_FLOOR.iter().enumerate() {
        let path = format!("/proc/sys/net/ipv4/neigh/default/gc_thresh{}", i + 1);
        let now = std::fs::read_to_string(&path).ok().and_then(|v| v.trim().parse::<u64>().ok());
        if now.is_some_and(|n| n >= *floor) {
            continue;
        }
        match std::fs::write(&path, floor.to_string()) {
            Ok(()) => {
                tracing::info!(setting = %path, from = ?now, to = floor, "raised the neighbour table for many gateways")
            }
            Err(e) => tracing::warn!(setting = %path, error = %e,
                "cannot raise the neighbour table; a host with many gateways may drop new tunnels' packets"),
        }
    }
}

/// Sets `key=value` settings inside `ns`, in one process.
pub(crate) async fn sysctl(ns: &str, settings: &[&str]) -> Result<(), DataplaneError> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-qw"];
    args.extend_from_slice(settings);
    sys::run("ip", &args).await.map(|_| ())
}

/// Creates the namespace if needed; true when it was created.
pub(crate) async fn ensure_namespace(ns: &str) -> Result<bool, DataplaneError> {
    let created = !sys::netns_exists(ns);
    if created {
        ip(&["netns", "add", ns]).await?;
    }
    ip_ns(ns, &["link", "set", "dev", "lo", "up"]).await?;
    // One sysctl process for all keys (each process costs, notably under emulation). Set before the gateway's
    // interfaces are created, so they inherit the `default` values.
    sysctl(
        ns,
        &[
            "net.ipv4.ip_forward=1",
            // A new namespace inherits the host's rp_filter (2 with systemd's defaults, 1 on some distributions).
            // A gateway has legitimate asymmetric paths that strict mode drops: the peer may answer through the
            // standby tunnel's XFRM interface while the active route points into the other one.
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            // The gateway speaks IPv4 only; IPv6 autoconfiguration would only add noise on the public segment.
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ],
    )
    .await?;
    Ok(created)
}

/// A veth pair between the root namespace (attached to `bridge`) and `ns`; the namespace end gets `mac`.
pub(crate) async fn ensure_veth(
    ns: &str,
    root_end: &str,
    ns_end: &str,
    bridge: &str,
    mac: &str,
) -> Result<(), DataplaneError> {
    if !sys::link_exists(Some(ns), ns_end).await {
        // A root end without its peer is a leftover of an earlier, interrupted attempt.
        if sys::link_exists(None, root_end).await {
            ip(&["link", "del", "dev", root_end]).await?;
        }
        ip(&["link", "add", "name", root_end, "type", "veth", "peer", "name", ns_end, "address", mac, "netns", ns])
            .await?;
    }
    ip(&["link", "set", "dev", root_end, "master", bridge, "up"]).await?;
    ip_ns(ns, &["link", "set", "dev", ns_end, "address", mac, "up"]).await?;
    Ok(())
}

/// IPv4 addresses (`a.b.c.d/len`) of `dev` with global or host scope, as configured.
pub(crate) async fn addresses(ns: &str, dev: &str) -> Result<BTreeSet<String>, DataplaneError> {
    let links = ip_ns_json(ns, &["-4", "addr", "show", "dev", dev]).await?;
    let mut out = BTreeSet::new();
    for link in links {
        for a in link.get("addr_info").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(local), Some(len)) = (a.get("local").and_then(Value::as_str), a.get("prefixlen")) {
                out.insert(format!("{local}/{len}"));
            }
        }
    }
    Ok(out)
}

/// Makes `dev`'s IPv4 addresses exactly `desired` (loopback keeps 127.0.0.1/8).
pub(crate) async fn ensure_addresses(ns: &str, dev: &str, desired: &BTreeSet<String>) -> Result<(), DataplaneError> {
    let actual = addresses(ns, dev).await?;
    for stale in actual.difference(desired) {
        if dev == "lo" && stale.starts_with("127.") {
            continue;
        }
        ip_ns(ns, &["addr", "del", stale, "dev", dev]).await?;
    }
    for missing in desired.difference(&actual) {
        ip_ns(ns, &["addr", "add", missing, "dev", dev]).await?;
    }
    Ok(())
}

/// One route the driver owns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Route {
    pub table: String,
    pub dst: String,
    pub target: RouteTarget,
    pub metric: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RouteTarget {
    Dev(String),
    Via(String),
    /// Nothing may leave in clear when the tunnel that should carry it is absent.
    Blackhole,
}

impl Route {
    fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if self.target == RouteTarget::Blackhole {
            a.push("blackhole".to_string());
        }
        a.push(self.dst.clone());
        match &self.target {
            RouteTarget::Dev(d) => a.extend(["dev".into(), d.clone()]),
            RouteTarget::Via(g) => a.extend(["via".into(), g.clone()]),
            RouteTarget::Blackhole => {}
        }
        a.extend(["table".into(), self.table.clone(), "proto".into(), ROUTE_PROTO.into()]);
        if self.metric > 0 {
            a.extend(["metric".into(), self.metric.to_string()]);
        }
        a
    }
}

fn normalise_dst(dst: &str) -> String {
    if dst == "default" {
        "0.0.0.0/0".into()
    } else if dst.contains('/') {
        dst.to_string()
    } else {
        format!("{dst}/32")
    }
}

pub(crate) async fn owned_routes(ns: &str) -> Result<Vec<Route>, DataplaneError> {
    let rows = ip_ns_json(ns, &["-4", "route", "show", "table", "all", "proto", ROUTE_PROTO]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let dst = normalise_dst(r.get("dst")?.as_str()?);
            let table = r.get("table").and_then(Value::as_str).unwrap_or("main").to_string();
            let target = if r.get("type").and_then(Value::as_str) == Some("blackhole") {
                RouteTarget::Blackhole
            } else if let Some(gw) = r.get("gateway").and_then(Value::as_str) {
                RouteTarget::Via(gw.to_string())
            } else {
                RouteTarget::Dev(r.get("dev")?.as_str()?.to_string())
            };
            let metric = r.get("metric").and_then(Value::as_u64).unwrap_or(0) as u32;
            Some(Route { table, dst, target, metric })
        })
        .collect())
}

/// Makes the driver-owned routes of `ns` exactly `desired`. Routes whose device does not exist (yet) are
/// reported as an error after the others were applied, so a later pass completes them.
pub(crate) async fn sync_routes(ns: &str, desired: &BTreeSet<Route>) -> Result<(), DataplaneError> {
    let actual: BTreeSet<Route> = owned_routes(ns).await?.into_iter().collect();
    for stale in actual.difference(desired) {
        let mut args = vec!["route".to_string(), "del".to_string()];
        args.extend(stale.args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(e) = ip_ns(ns, &args).await {
            tracing::debug!(namespace = ns, error = %e, "stale route already gone");
        }
    }
    let mut first_error = None;
    for missing in desired.difference(&actual) {
        let mut args = vec!["route".to_string(), "replace".to_string()];
        args.extend(missing.args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(e) = ip_ns(ns, &args).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One policy rule the driver owns (priority range [`RULE_PREF_BASE`]..2000).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rule {
    pub pref: u32,
    pub from: String,
    pub to: String,
    pub table: String,
}

fn rule_side(r: &Value, key: &str, len_key: &str) -> String {
    match (r.get(key).and_then(Value::as_str), r.get(len_key).and_then(Value::as_u64)) {
        (Some("all") | None, _) => "0.0.0.0/0".into(),
        (Some(a), Some(len)) => format!("{a}/{len}"),
        (Some(a), None) => format!("{a}/32"),
    }
}

pub(crate) async fn sync_rules(ns: &str, desired: &BTreeSet<Rule>) -> Result<(), DataplaneError> {
    let rows = ip_ns_json(ns, &["-4", "rule", "show"]).await?;
    let actual: BTreeSet<Rule> = rows
        .iter()
        .filter_map(|r| {
            let pref = r.get("priority")?.as_u64()? as u32;
            (RULE_PREF_BASE..RULE_PREF_END).contains(&pref).then(|| Rule {
                pref,
                from: rule_side(r, "src", "srclen"),
                to: rule_side(r, "dst", "dstlen"),
                table: r.get("table").and_then(Value::as_str).unwrap_or("main").to_string(),
            })
        })
        .collect();
    for stale in actual.difference(desired) {
        let pref = stale.pref.to_string();
        ip_ns(ns, &["rule", "del", "pref", &pref, "from", &stale.from, "to", &stale.to, "table", &stale.table]).await?;
    }
    for missing in desired.difference(&actual) {
        let pref = missing.pref.to_string();
        ip_ns(ns, &["rule", "add", "pref", &pref, "from", &missing.from, "to", &missing.to, "table", &missing.table])
            .await?;
    }
    Ok(())
}

/// Removes every rule with priority `pref` (charon re-adds its table rule at each start).
pub(crate) async fn delete_rules_at(ns: &str, pref: u32) -> Result<(), DataplaneError> {
    let p = pref.to_string();
    for _ in 0..8 {
        let rows = ip_ns_json(ns, &["-4", "rule", "show", "pref", &p]).await?;
        if rows.is_empty() {
            return Ok(());
        }
        ip_ns(ns, &["rule", "del", "pref", &p]).await?;
    }
    Err(failed(format!("rule {pref} in {ns} keeps coming back")))
}

/// An XFRM interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XfrmLink {
    pub name: String,
    pub if_id: Option<u32>,
    /// The underlying interface (`dev` at creation); a deleted one shows as `if<index>`.
    pub underlay: Option<String>,
    pub up: bool,
}

impl XfrmLink {
    fn from_json(row: &Value) -> Option<XfrmLink> {
        let if_id = row.pointer("/linkinfo/info_data/if_id").and_then(|v| match v {
            // iproute2 prints it in hex ("0x2a"); older versions as a number.
            Value::String(s) => u32::from_str_radix(s.trim_start_matches("0x"), 16).ok(),
            other => other.as_u64().and_then(|n| u32::try_from(n).ok()),
        });
        Some(XfrmLink {
            name: row.get("ifname")?.as_str()?.to_string(),
            if_id,
            underlay: row.get("link").and_then(Value::as_str).map(str::to_string),
            up: is_up(row),
        })
    }

    /// Is this the interface a tunnel wants (same if_id, on `underlay`)? Up or not.
    pub(crate) fn matches(&self, if_id: u32, underlay: &str) -> bool {
        self.if_id == Some(if_id) && self.underlay.as_deref() == Some(underlay)
    }
}

/// Administratively up (`ip link set ... up`), whatever the carrier.
fn is_up(row: &Value) -> bool {
    row.get("flags").and_then(Value::as_array).is_some_and(|f| f.iter().any(|x| x.as_str() == Some("UP")))
}

/// Does `dev` exist in `ns` and is it up?
pub(crate) async fn link_is_up(ns: &str, dev: &str) -> bool {
    ip_ns_json(ns, &["link", "show", "dev", dev]).await.is_ok_and(|rows| rows.first().is_some_and(is_up))
}

/// Creates (or brings up) the XFRM interface of a route-based tunnel (kernel backend) on `underlay`.
pub(crate) async fn ensure_xfrm_interface(
    ns: &str,
    name: &str,
    underlay: &str,
    if_id: u32,
    existing: Option<&XfrmLink>,
) -> Result<(), DataplaneError> {
    match existing {
        Some(link) if link.matches(if_id, underlay) && link.up => return Ok(()),
        Some(link) if link.matches(if_id, underlay) => {}
        Some(_) => {
            // Another if_id or a lost underlay (the kernel keeps the interface when its underlay goes).
            ip_ns(ns, &["link", "del", "dev", name]).await?;
            create_xfrm_interface(ns, name, underlay, if_id).await?;
        }
        None => create_xfrm_interface(ns, name, underlay, if_id).await?,
    }
    ip_ns(ns, &["link", "set", "dev", name, "up"]).await?;
    Ok(())
}

async fn create_xfrm_interface(ns: &str, name: &str, underlay: &str, if_id: u32) -> Result<(), DataplaneError> {
    let id = if_id.to_string();
    ip_ns(ns, &["link", "add", name, "type", "xfrm", "dev", underlay, "if_id", &id]).await?;
    Ok(())
}

/// XFRM interfaces in `ns`.
pub(crate) async fn xfrm_interfaces(ns: &str) -> Result<Vec<XfrmLink>, DataplaneError> {
    let rows = ip_ns_json(ns, &["-d", "link", "show", "type", "xfrm"]).await?;
    Ok(rows.iter().filter_map(XfrmLink::from_json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xfrm_links() {
        // As `ip -d -j link show type xfrm` prints them (iproute2 6.1), before and after the underlay went.
        let rows: Vec<Value> = serde_json::from_str(
            r#"[{"ifindex":4,"link":"pub0","ifname":"x1","flags":["NOARP","UP","LOWER_UP"],
                 "linkinfo":{"info_kind":"xfrm","info_data":{"if_id":"0x2a"}}},
                {"ifindex":5,"link":"if3","ifname":"x2","flags":["NOARP"],
                 "linkinfo":{"info_kind":"xfrm","info_data":{"if_id":7}}}]"#,
        )
        .expect("json");
        let links: Vec<XfrmLink> = rows.iter().filter_map(XfrmLink::from_json).collect();
        assert_eq!(links[0], XfrmLink { name: "x1".into(), if_id: Some(42), underlay: Some("pub0".into()), up: true });
        assert!(links[0].matches(42, "pub0"));
        assert!(!links[0].matches(43, "pub0"));
        assert!(!links[1].up);
        assert!(!links[1].matches(7, "pub0"), "underlay lost");
    }
}
