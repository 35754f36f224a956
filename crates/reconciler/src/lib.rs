//! openvgw-reconciler: moves gateways through their documented states by driving the data plane.
//!
//! As in neutron-vpnaas, only the reconciler resolves a pending state. It compares each gateway's generation with
//! the generation the data plane last applied, compiles the gateway and its children into one
//! [`GatewayIntent`](openvgw_dataplane::GatewayIntent), hands it to the driver, and records the result. It also
//! feeds observed tunnel / session state back into the store (only on change) and removes data-plane leftovers of
//! gateways that no longer exist.

mod compile;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openvgw_control::Service;
use openvgw_core::model::{
    CertificateAssociation, GatewayPhase, IpsecServer, RouteEntry, SslVpnClientCert, SslVpnServer, VpnConnection,
    VpnGateway,
};
use openvgw_core::{now_ms, Kind, Result};
use openvgw_dataplane::{Driver, GatewayObservation};
use openvgw_store::Store;
use tokio::sync::watch;

pub use compile::compile;

pub struct Reconciler {
    service: Arc<Service>,
    in_flight: Mutex<HashSet<String>>,
    resync: Duration,
}

fn store(service: &Service) -> &Store {
    &service.store
}

impl Reconciler {
    pub fn new(service: Arc<Service>, resync: Duration) -> Arc<Self> {
        Arc::new(Reconciler { service, in_flight: Mutex::new(HashSet::new()), resync })
    }

    fn driver(&self) -> &Arc<dyn Driver> {
        &self.service.driver
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let signal = self.service.reconcile_signal();
        if let Err(e) = self.remove_leftovers().await {
            tracing::warn!(error = %e, "could not check the data plane for leftovers");
        }
        // Mutations wake the loop often; observing every gateway's daemons is kept to the resync cadence.
        let mut last_observed: Option<std::time::Instant> = None;
        loop {
            let observe = last_observed.is_none_or(|t| t.elapsed() >= self.resync);
            if observe {
                last_observed = Some(std::time::Instant::now());
            }
            if let Err(e) = self.clone().pass(observe).await {
                tracing::error!(error = %e, "reconcile pass failed");
            }
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(self.resync) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }

    /// Gateways the driver has but the store does not (deleted while openvgw was down).
    async fn remove_leftovers(&self) -> Result<()> {
        let realised = self.driver().realised_gateways().await.map_err(openvgw_core::Error::internal)?;
        let known: HashSet<String> =
            store(&self.service).read(|tx| tx.ids_of_kind(Kind::VpnGateway))?.into_iter().collect();
        for id in realised.into_iter().filter(|id| !known.contains(id)) {
            tracing::info!(gateway = %id, "removing data-plane leftovers of a deleted gateway");
            if let Err(e) = self.driver().remove(&id).await {
                tracing::warn!(gateway = %id, error = %e, "leftover removal failed");
            }
        }
        Ok(())
    }

    /// One pass: observe settled gateways (when `observe`), then start work for every gateway that needs it — pending changes, or
    /// a data plane that is no longer what was applied (a killed daemon, a deleted namespace).
    async fn pass(self: Arc<Self>, observe: bool) -> Result<()> {
        let gateways: Vec<VpnGateway> = store(&self.service).read(|tx| tx.all(&Default::default()))?;
        for gw in gateways {
            if self.is_busy(&gw.id)? {
                continue;
            }
            let mut needs_work = gw.phase != GatewayPhase::Ready || gw.generation > gw.applied_generation;
            if !needs_work && observe {
                match self.observe(&gw).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(gateway = %gw.id, "data plane is not what was applied; re-applying");
                        needs_work = true;
                    }
                    Err(e) => tracing::debug!(gateway = %gw.id, error = %e, "observation failed"),
                }
            }
            if needs_work && self.claim(&gw.id)? {
                let me = self.clone();
                tokio::spawn(async move {
                    let id = gw.id.clone();
                    if let Err(e) = me.converge(&id).await {
                        tracing::warn!(gateway = %id, error = %e, "gateway did not converge; will retry");
                    }
                    if let Ok(mut busy) = me.in_flight.lock() {
                        busy.remove(&id);
                    }
                    // Whatever changed meanwhile gets picked up by the next pass.
                    me.service.reconcile_signal().notify_one();
                });
            }
        }
        Ok(())
    }

    fn is_busy(&self, id: &str) -> Result<bool> {
        let busy = self.in_flight.lock().map_err(|_| openvgw_core::Error::internal("reconciler lock poisoned"))?;
        Ok(busy.contains(id))
    }

    /// Marks a gateway in flight; false if another task already has it.
    fn claim(&self, id: &str) -> Result<bool> {
        let mut busy = self.in_flight.lock().map_err(|_| openvgw_core::Error::internal("reconciler lock poisoned"))?;
        Ok(busy.insert(id.to_string()))
    }

    async fn converge(&self, id: &str) -> Result<()> {
        let st = store(&self.service);
        let Some(gw) = st.read(|tx| tx.get_unscoped::<VpnGateway>(id))? else {
            return Ok(());
        };
        if gw.phase == GatewayPhase::Deleting {
            self.driver().remove(id).await.map_err(openvgw_core::Error::internal)?;
            st.write(|tx| {
                for c in tx.children_unscoped::<VpnConnection>(id)? {
                    tx.delete(Kind::VpnConnection, &c.id)?;
                }
                for r in tx.children_unscoped::<RouteEntry>(id)? {
                    tx.delete(Kind::RouteEntry, &r.id)?;
                }
                for s in tx.children_unscoped::<SslVpnServer>(id)? {
                    for c in tx.children_unscoped::<SslVpnClientCert>(&s.id)? {
                        tx.delete(Kind::SslVpnClientCert, &c.id)?;
                    }
                    tx.delete(Kind::SslVpnServer, &s.id)?;
                }
                for s in tx.children_unscoped::<IpsecServer>(id)? {
                    tx.delete(Kind::IpsecServer, &s.id)?;
                }
                for a in tx.children_unscoped::<CertificateAssociation>(id)? {
                    tx.delete(Kind::CertificateAssociation, &a.id)?;
                }
                tx.delete(Kind::VpnGateway, id)
            })?;
            tracing::info!(gateway = %id, "gateway deleted");
            return Ok(());
        }
        if gw.phase == GatewayPhase::Init {
            st.write(|tx| {
                if let Some(mut g) = tx.get_unscoped::<VpnGateway>(id)? {
                    if g.phase == GatewayPhase::Init {
                        g.phase = GatewayPhase::Provisioning;
                        tx.update(&g)?;
                    }
                }
                Ok(())
            })?;
        }
        let intent = st.read(|tx| compile(tx, &self.service.config, &gw))?;
        let started = std::time::Instant::now();
        if let Err(e) = self.driver().apply(&intent).await {
            let msg = format!("applying generation {} failed: {e}", intent.generation);
            st.write(|tx| tx.append_event(id, now_ms(), &msg))?;
            return Err(openvgw_core::Error::internal(msg));
        }
        st.write(|tx| {
            let Some(mut g) = tx.get_unscoped::<VpnGateway>(id)? else {
                return Ok(());
            };
            if g.phase == GatewayPhase::Deleting {
                return Ok(());
            }
            g.applied_generation = g.applied_generation.max(intent.generation);
            g.phase = GatewayPhase::Ready;
            tx.update(&g)?;
            tx.append_event(id, now_ms(), &format!("generation {} applied", intent.generation))
        })?;
        tracing::info!(gateway = %id, generation = intent.generation, driver = self.driver().name(),
            elapsed_ms = started.elapsed().as_millis() as u64, "gateway converged");
        Ok(())
    }

    /// Feeds what the data plane sees back into the store, writing only what changed; returns whether the data
    /// plane is ready with what was applied.
    async fn observe(&self, gw: &VpnGateway) -> Result<bool> {
        let obs = self.driver().observe(&gw.id).await.map_err(openvgw_core::Error::internal)?;
        let st = store(&self.service);
        let changed = st.read(|tx| diff(tx, &gw.id, &obs))?;
        if changed.is_empty() {
            return Ok(obs.ready);
        }
        st.write(|tx| {
            for c in diff(tx, &gw.id, &obs)? {
                match c {
                    Changed::Connection(c) => tx.update(&c)?,
                    Changed::SslServer(s) => tx.update(&s)?,
                    Changed::IpsecServer(s) => tx.update(&s)?,
                }
            }
            Ok(())
        })?;
        Ok(obs.ready)
    }
}

enum Changed {
    Connection(VpnConnection),
    SslServer(SslVpnServer),
    IpsecServer(IpsecServer),
}

fn diff(tx: &openvgw_store::Tx, gateway_id: &str, obs: &GatewayObservation) -> Result<Vec<Changed>> {
    let mut out = Vec::new();
    for mut c in tx.children_unscoped::<VpnConnection>(gateway_id)? {
        if let Some(t) = obs.tunnels.get(&c.id) {
            if c.state != t.state || c.health_ok != t.health_ok {
                c.state = t.state;
                c.health_ok = t.health_ok;
                out.push(Changed::Connection(c));
            }
        }
    }
    for mut s in tx.children_unscoped::<SslVpnServer>(gateway_id)? {
        let n = obs.ssl_sessions.get(&s.id).copied().unwrap_or(0);
        if s.connections != n {
            s.connections = n;
            out.push(Changed::SslServer(s));
        }
    }
    for mut s in tx.children_unscoped::<IpsecServer>(gateway_id)? {
        if s.online_clients != obs.ipsec_server_clients {
            s.online_clients = obs.ipsec_server_clients;
            out.push(Changed::IpsecServer(s));
        }
    }
    Ok(out)
}
