//! Prometheus metrics: requests by dialect/action/code, a latency histogram, resources by kind and state.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use openvgw_api::ReadCache;
use openvgw_control::reconcile::ResourceState;
use openvgw_control::Service;
use openvgw_core::model::{GatewayStatus, TunnelState};

use crate::http::ConnTable;

const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, String), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    /// Whether this process's reconciler holds the lease (only one replica reconciles at a time).
    leader: Option<Arc<AtomicBool>>,
    connections: Option<Arc<ConnTable>>,
    /// The dialects' kept answers (see `openvgw_api::ReadCache`), reported here.
    reads: Arc<ReadCache>,
    /// The gateway hosts attached to this control plane (`--dataplane agents`).
    agents: Option<Arc<openvgw_agent::hub::AgentHub>>,
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Metrics that also report the listener's open connections.
    pub fn new(connections: Arc<ConnTable>) -> Self {
        Metrics { connections: Some(connections), ..Default::default() }
    }

    /// Also report whether this replica's reconciler leads.
    pub fn with_leader(mut self, leader: Arc<AtomicBool>) -> Self {
        self.leader = Some(leader);
        self
    }

    /// Also report the attached agents and the gateways each holds.
    pub fn with_agents(mut self, hub: Option<Arc<openvgw_agent::hub::AgentHub>>) -> Self {
        self.agents = hub;
        self
    }

    /// The cache of answers the dialects share.
    pub fn reads(&self) -> Arc<ReadCache> {
        self.reads.clone()
    }

    pub fn observe(&self, dialect: &str, action: &str, code: &str, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((dialect.to_string(), action.to_string(), code.to_string())).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l
                .entry((dialect.to_string(), action.to_string()))
                .or_insert_with(|| Histogram { counts: vec![0; BUCKETS.len()], ..Default::default() });
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// The exposition text; resource gauges are read from the store at scrape time.
    pub fn render(&self, svc: &Service) -> String {
        let mut out = String::new();
        if let Some(hub) = &self.agents {
            use openvgw_dataplane::Driver;
            let hosts = hub.hosts();
            out.push_str("# HELP openvgw_agents_attached Gateway hosts (openvgw agent) attached now.\n");
            out.push_str("# TYPE openvgw_agents_attached gauge\n");
            let _ = writeln!(out, "openvgw_agents_attached {}", hosts.iter().filter(|h| h.attached).count());
            out.push_str(
                "# HELP openvgw_agent_up Whether a gateway host holding gateways (or attached) is attached.\n",
            );
            out.push_str("# TYPE openvgw_agent_up gauge\n");
            for h in &hosts {
                let _ = writeln!(out, "openvgw_agent_up{{agent=\"{}\"}} {}", label(&h.id), u8::from(h.attached));
            }
            out.push_str("# HELP openvgw_agent_gateways Gateways placed on a gateway host (attached or away).\n");
            out.push_str("# TYPE openvgw_agent_gateways gauge\n");
            for h in &hosts {
                let _ = writeln!(out, "openvgw_agent_gateways{{agent=\"{}\"}} {}", label(&h.id), h.gateways);
            }
            out.push_str("# HELP openvgw_agent_gateways_moved_total Gateways moved off agents declared dead.\n");
            out.push_str("# TYPE openvgw_agent_gateways_moved_total counter\n");
            let _ = writeln!(out, "openvgw_agent_gateways_moved_total {}", hub.moved());
            out.push_str("# HELP openvgw_agent_port_connections_open Connections open on the agents' port.\n");
            out.push_str("# TYPE openvgw_agent_port_connections_open gauge\n");
            let _ = writeln!(out, "openvgw_agent_port_connections_open {}", hub.port().open());
            out.push_str(
                "# HELP openvgw_agent_port_connections_refused_total Connections to the agents' port closed as they \
                 arrived (over [dataplane.agents] max_connections or max_connections_per_address).\n",
            );
            out.push_str("# TYPE openvgw_agent_port_connections_refused_total counter\n");
            let _ = writeln!(out, "openvgw_agent_port_connections_refused_total {}", hub.port().refused());
        }
        if let Some(c) = &self.connections {
            out.push_str("# HELP openvgw_http_connections_open Client connections open now.\n");
            out.push_str("# TYPE openvgw_http_connections_open gauge\n");
            let _ = writeln!(out, "openvgw_http_connections_open {}", c.open());
        }
        out.push_str("# HELP openvgw_requests_total API requests by dialect, action and result code.\n");
        out.push_str("# TYPE openvgw_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((d, a, c), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "openvgw_requests_total{{dialect=\"{}\",action=\"{}\",code=\"{}\"}} {n}",
                    label(d),
                    label(a),
                    label(c)
                );
            }
        }
        out.push_str("# HELP openvgw_request_duration_seconds API request latency.\n");
        out.push_str("# TYPE openvgw_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for ((d, a), h) in l.iter() {
                let labels = format!("dialect=\"{}\",action=\"{}\"", label(d), label(a));
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ =
                        writeln!(out, "openvgw_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}", h.counts[i]);
                }
                let _ = writeln!(out, "openvgw_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "openvgw_request_duration_seconds_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "openvgw_request_duration_seconds_count{{{labels}}} {}", h.count);
            }
        }
        if let Some(leader) = &self.leader {
            out.push_str("# HELP openvgw_reconciler_leader 1 while this replica's reconciler holds the lease.\n");
            out.push_str("# TYPE openvgw_reconciler_leader gauge\n");
            let _ = writeln!(out, "openvgw_reconciler_leader {}", u8::from(leader.load(Ordering::Relaxed)));
        }
        let (hits, misses) = self.reads.stats();
        out.push_str(
            "# HELP openvgw_read_cache_total Answers of pure reads served from memory (hit) or read (miss).\n",
        );
        out.push_str("# TYPE openvgw_read_cache_total counter\n");
        let _ = writeln!(out, "openvgw_read_cache_total{{result=\"hit\"}} {hits}");
        let _ = writeln!(out, "openvgw_read_cache_total{{result=\"miss\"}} {misses}");
        if let Some((commits, writes)) = svc.store().commit_stats() {
            out.push_str(
                "# HELP openvgw_store_commits_total Commits of the SQLite store (each may carry several writes).\n",
            );
            out.push_str("# TYPE openvgw_store_commits_total counter\n");
            let _ = writeln!(out, "openvgw_store_commits_total {commits}");
            out.push_str("# HELP openvgw_store_writes_total Write transactions committed, in however many commits.\n");
            out.push_str("# TYPE openvgw_store_writes_total counter\n");
            let _ = writeln!(out, "openvgw_store_writes_total {writes}");
        }
        if let Some(n) = svc.store().remembered_nonces() {
            out.push_str(
                "# HELP openvgw_replay_records Used nonces remembered in memory until they expire (SQLite).\n",
            );
            out.push_str("# TYPE openvgw_replay_records gauge\n");
            let _ = writeln!(out, "openvgw_replay_records {n}");
        }
        out.push_str("# HELP openvgw_resources Stored resources by kind and state.\n");
        out.push_str("# TYPE openvgw_resources gauge\n");
        match svc.resource_counts() {
            Ok(counts) => {
                for ((kind, state), n) in counts {
                    let _ = writeln!(
                        out,
                        "openvgw_resources{{kind=\"{}\",state=\"{}\"}} {n}",
                        kind.as_str(),
                        state_label(state)
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not count resources for metrics"),
        }
        out
    }
}

/// Neutral state labels (each dialect words states its own way; metrics are nobody's dialect).
fn state_label(s: ResourceState) -> &'static str {
    match s {
        ResourceState::Present => "present",
        ResourceState::Gateway(g) => match g {
            GatewayStatus::Init => "init",
            GatewayStatus::Provisioning => "provisioning",
            GatewayStatus::Active => "active",
            GatewayStatus::Updating => "updating",
            GatewayStatus::Deleting => "deleting",
        },
        ResourceState::Tunnel(t) => match t {
            TunnelState::IkeSaNotEstablished => "ike_sa_not_established",
            TunnelState::IkeSaEstablished => "ike_sa_established",
            TunnelState::IpsecSaNotEstablished => "ipsec_sa_not_established",
            TunnelState::IpsecSaEstablished => "ipsec_sa_established",
        },
    }
}
