//! What the operator commands print: the store's and the data plane's view of a gateway, and tables for people
//! (`--json` gives scripts the same data).

use std::collections::BTreeMap;
use std::sync::Arc;

use openvgw::open_store;
use openvgw_core::config::Config;
use openvgw_dataplane::netns::NetnsDriver;
use openvgw_dataplane::Driver;

/// `admin gateway`: the store's record of a gateway and the netns data plane's observation of it, side by side.
pub fn gateway_view(config: &Config, id: &str, json: bool) -> anyhow::Result<()> {
    if config.dataplane.driver != openvgw_core::config::DriverKind::Netns {
        anyhow::bail!("the simulated data plane keeps nothing outside the server process: there is nothing to show");
    }
    let store = open_store(config)?;
    let driver = Arc::new(NetnsDriver::new(&config.dataplane, &config.vpcs, config.server.data_dir.join("dataplane"))?);
    let svc = openvgw_control::Service::new(Arc::new(store), Arc::new(config.clone()), driver.clone());
    let tree = svc.gateway_tree(id)?.ok_or_else(|| anyhow::anyhow!("no gateway {id}"))?;
    let gw = &tree.gateway;
    let namespace = driver.namespace_of(id)?;
    let namespace_exists = driver.namespace_present(id)?;
    let daemons = driver.daemon_pids(id)?;
    let observed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(driver.observe(id))
        .map_err(|e| e.to_string());
    // Each tunnel (a dual-tunnel connection has two) with what the data plane saw of it, for both outputs.
    let seen: Vec<_> = tree
        .connections
        .iter()
        .flat_map(|(c, _)| c.tunnels().into_iter().map(move |(id, t)| (c, id, t)))
        .map(|(c, id, t)| {
            let tunnel = observed.as_ref().ok().and_then(|o| o.tunnels.get(&id)).cloned();
            (c, id, t, tunnel)
        })
        .collect();
    let ips: Vec<String> = gw.public_ips.iter().map(|p| p.address.to_string()).collect();
    let connections: Vec<serde_json::Value> = seen
        .iter()
        .map(|(c, id, t, tunnel)| {
            serde_json::json!({
                "id": c.id, "tunnel": id, "name": c.name, "customer_gateway": t.customer_gateway_id,
                "stored_state": t.state, "observed": tunnel,
            })
        })
        .collect();
    let status = format!("{:?}", gw.status()).to_lowercase();
    let view = serde_json::json!({
        "store": {
            "id": gw.id, "name": gw.name, "status": status, "vpc_id": gw.vpc_id,
            "public_ips": ips,
            "private_ip": gw.private_ip.to_string(), "generation": gw.generation,
            "applied_generation": gw.applied_generation,
        },
        "dataplane": {
            "namespace": namespace, "namespace_exists": namespace_exists, "daemon_pids": daemons,
            "observed": observed.as_ref().ok(), "error": observed.as_ref().err(),
        },
        "connections": connections,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!(
        "gateway:    {} ({}), {status}, generation {} applied {}",
        gw.id, gw.name, gw.generation, gw.applied_generation
    );
    println!("addresses:  public {} private {}", ips.join(" "), gw.private_ip);
    println!("namespace:  {namespace} ({})", if namespace_exists { "present" } else { "absent" });
    println!("daemons:    {}", if daemons.is_empty() { "-".into() } else { format!("{daemons:?}") });
    match &observed {
        Ok(o) => println!("observed:   ready {}, re-route pending {}", o.ready, o.reroute),
        Err(e) => println!("observed:   error: {e}"),
    }
    let rows = seen
        .iter()
        .map(|(c, id, t, seen)| {
            vec![
                c.id.clone(),
                if *id == c.id { "-".into() } else { id.clone() },
                t.customer_gateway_id.clone(),
                format!("{:?}", t.state),
                seen.as_ref().map_or("-".into(), |t| format!("{:?}", t.state)),
                seen.as_ref()
                    .and_then(|t| t.health_ok)
                    .map_or("-".into(), |ok| if ok { "ok" } else { "failed" }.into()),
                seen.as_ref().and_then(|t| t.bgp.as_ref()).map_or("-".into(), |b| format!("{:?}", b.state)),
            ]
        })
        .collect();
    let header = ["CONNECTION", "SECOND TUNNEL", "CUSTOMER GATEWAY", "STORED", "OBSERVED", "HEALTH", "BGP"];
    print!("{}", table(&header, rows));
    if let Ok(o) = &observed {
        for (server, n) in &o.ssl_sessions {
            println!("ssl-vpn:    {server}: {n} client(s)");
        }
    }
    Ok(())
}

pub fn state(disabled: bool) -> &'static str {
    if disabled {
        "disabled"
    } else {
        "enabled"
    }
}

/// `kind=n` pairs, or `-` when the tenant holds nothing.
pub fn usage_text(usage: &BTreeMap<String, i64>) -> String {
    if usage.is_empty() {
        return "-".into();
    }
    usage.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ")
}

/// Milliseconds since the epoch as RFC 3339 (UTC, whole seconds).
pub fn stamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Left-aligned columns two spaces apart, for people (scripts use --json).
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let out = table(&["NAME", "ID"], vec![vec!["a".into(), "tnt-1".into()], vec!["longer".into(), "".into()]]);
        assert_eq!(out, "NAME    ID\na       tnt-1\nlonger\n");
    }

    #[test]
    fn stamps_usage_and_state_read_as_people_expect() {
        assert_eq!(stamp(1_764_720_000_123), "2025-12-03T00:00:00Z");
        assert_eq!(usage_text(&BTreeMap::new()), "-");
        let usage = BTreeMap::from([("vpn_gateway".to_string(), 2), ("customer_gateway".to_string(), 1)]);
        assert_eq!(usage_text(&usage), "customer_gateway=1 vpn_gateway=2");
        assert_eq!((state(false), state(true)), ("enabled", "disabled"));
    }
}
