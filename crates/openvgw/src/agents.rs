//! Gateway hosts: the hub `serve --dataplane agents` runs (its port, its certificate, the store's enrollment) and
//! the `openvgw agent` process (its identity on disk, its driver, its session).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openvgw_agent::host::{AgentError, BootTime, Endpoint, Identity, LeaseRecord};
use openvgw_agent::hub::{AgentHub, Placement, Registry, Timing};
use openvgw_agent::port::PortLimits;
use openvgw_core::config::Config;
use openvgw_core::model::AgentPlacement;
use openvgw_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Join tokens, revocations and placements as the store has them.
struct StoreRegistry {
    store: Arc<Store>,
}

impl Registry for StoreRegistry {
    fn redeem(&self, token: &str, name: &str, agent_id: &str, serial_hex: &str) -> Result<bool, String> {
        openvgw_control::agents::redeem_join_token(&self.store, token, name, agent_id, serial_hex)
            .map_err(|e| e.to_string())
    }

    fn admitted(&self, agent_id: &str, serial_hex: &str) -> Result<bool, String> {
        openvgw_control::agents::agent_admitted(&self.store, agent_id, serial_hex).map_err(|e| e.to_string())
    }

    fn placements(&self) -> Result<Vec<Placement>, String> {
        let stored = openvgw_control::agents::placements(&self.store).map_err(|e| e.to_string())?;
        Ok(stored
            .into_iter()
            .map(|p| Placement { gateway_id: p.gateway_id, agent_id: p.agent_id, vpc_id: p.vpc_id })
            .collect())
    }

    fn place(&self, p: &Placement) -> Result<(), String> {
        let stored =
            AgentPlacement { gateway_id: p.gateway_id.clone(), agent_id: p.agent_id.clone(), vpc_id: p.vpc_id.clone() };
        openvgw_control::agents::place(&self.store, &stored).map_err(|e| e.to_string())
    }

    fn unplace(&self, gateway_id: &str) -> Result<(), String> {
        openvgw_control::agents::unplace(&self.store, gateway_id).map_err(|e| e.to_string())
    }
}

/// Starts the agents' port (`[dataplane.agents] listen`) and returns the hub, the driver the reconciler calls.
pub async fn start_hub(
    store: Arc<Store>,
    config: &Config,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Arc<AgentHub>> {
    let cfg = config.dataplane.agents.clone();
    let registry = Arc::new(StoreRegistry { store });
    let r = registry.clone();
    let (ca, server, placed) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let ca = openvgw_control::agents::agent_ca(&r.store)?;
        // Issued afresh at each start: agents check the CA and the name, not this certificate.
        let server = openvgw_pki::issue_server(&ca, openvgw_agent::CONTROL_NAME, &[])?;
        let placed = r.placements().map_err(anyhow::Error::msg)?;
        Ok((ca, server, placed))
    })
    .await??;
    let timing = Timing {
        call_timeout: Duration::from_secs(cfg.call_timeout_s.max(1)),
        dead_after: Duration::from_secs(cfg.dead_after_s.max(1)),
    };
    let hub = AgentHub::new(registry, ca, timing, placed);
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen for agents on {}", cfg.listen))?;
    tracing::info!(addr = %cfg.listen, "agents attach here (mutual TLS)");
    let (mut stop, mut stop_sweeping) = (stop.clone(), stop);
    let keepalive = Duration::from_secs(cfg.keepalive_s.max(1));
    let limits = PortLimits {
        max_connections: cfg.max_connections,
        per_address: cfg.max_connections_per_address,
        handshake: Duration::from_secs(cfg.handshake_timeout_s.max(1)),
    };
    let serving = hub.clone().serve(listener, server, keepalive, limits, async move {
        let _ = stop.changed().await;
    });
    tokio::spawn(hub.clone().sweep_every_second(async move {
        let _ = stop_sweeping.changed().await;
    }));
    tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "the agents' port failed");
        }
    });
    Ok(hub)
}

/// What an agent keeps between runs (mode 0600: it holds the key).
#[derive(Serialize, Deserialize)]
struct StoredIdentity {
    agent_id: String,
    cert_pem: String,
    key_pem: String,
}

fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent-identity.json")
}

/// The agent's identity: read from the data directory, or got by joining with `token` (at the first control plane
/// that answers) and stored there.
pub async fn identity(eps: &[Endpoint], data_dir: &Path, token: Option<&str>, name: &str) -> anyhow::Result<Identity> {
    let path = identity_path(data_dir);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let s: StoredIdentity =
            serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?;
        return Ok(Identity { agent_id: s.agent_id, cert_pem: s.cert_pem, key_pem: s.key_pem });
    }
    let token = token.context("this host has not joined yet: give --token (from `openvgw admin agent token`)")?;
    let mut joined = Err(anyhow::anyhow!("no control plane given"));
    for ep in eps {
        joined = openvgw_agent::host::join(ep, token, name).await.with_context(|| format!("joining at {}", ep.url));
        // A refusal (a spent token) is the same at every replica: only an unreachable one is passed over.
        let unreachable =
            matches!(&joined, Err(e) if matches!(e.downcast_ref::<AgentError>(), Some(AgentError::Connect(_))));
        if !unreachable {
            break;
        }
    }
    let id = joined?;
    std::fs::create_dir_all(data_dir)?;
    let stored =
        StoredIdentity { agent_id: id.agent_id.clone(), cert_pem: id.cert_pem.clone(), key_pem: id.key_pem.clone() };
    crate::write_private(&path, &serde_json::to_string(&stored)?)?;
    tracing::info!(agent = %id.agent_id, "joined the control plane");
    Ok(id)
}

/// The agent's lease file (the netns driver's gateways outlive the agent; so does the lease).
pub fn lease_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent-lease.json")
}

/// Starts `openvgw agent-guard` for this process, with the same configuration and data directory (`args`), in a
/// process group of its own so that signals for the agent's group leave it running. It writes its PID to
/// `agent-guard.pid` in the data directory.
pub fn spawn_guard(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding this program to start the lease guard")?;
    let child = std::process::Command::new(exe)
        .arg("agent-guard")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the lease guard")?;
    tracing::info!(pid = child.id(), "lease guard started");
    Ok(())
}

/// Whether a process is running (a zombie is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// The guard of agent `pid`'s lease: while the agent lives it fences itself; once it is dead, and unless another
/// live agent holds the lease, the host's gateways are removed when the lease's limit passes (the control plane
/// moves them only after its longer one).
pub async fn guard(config: &Config, pid: u32) -> anyhow::Result<()> {
    let path = lease_path(&config.server.data_dir);
    std::fs::create_dir_all(&config.server.data_dir)?;
    std::fs::write(config.server.data_dir.join("agent-guard.pid"), format!("{}\n", std::process::id()))?;
    let mut driver = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let record = LeaseRecord::read(&path);
        let record = match record {
            None if alive(pid) => continue,
            None => return Ok(()),
            Some(r) if r.pid != pid && alive(r.pid) => return Ok(()),
            Some(_) if alive(pid) => continue,
            Some(r) => r,
        };
        if record.last_heard.is_none() {
            return Ok(());
        }
        if !record.expired(&BootTime::now()) {
            continue;
        }
        let d = match &driver {
            Some(d) => d,
            None => driver.insert(crate::server::driver_for(config)?),
        };
        tracing::warn!(agent_pid = record.pid, "the agent is gone and its lease ran out: fencing");
        if openvgw_agent::host::fence(d.as_ref()).await.is_some() {
            let fenced = LeaseRecord { last_heard: None, ..record };
            fenced.write(&path)?;
            return Ok(());
        }
    }
}
