//! openvgw-reconciler: moves gateways through their documented states by driving the data plane.
//!
//! As in neutron-vpnaas, only the reconciler resolves a pending state, and it is the one place that repairs. It
//! compares each gateway's generation with the generation the data plane last applied, compiles the gateway's tree
//! into one [`GatewayIntent`](openvgw_dataplane::GatewayIntent), hands it to the driver, and records the result.
//! At the resync cadence it observes settled gateways (only those that changed, when the driver can tell from its
//! daemons' events; all of them every 30 resyncs): observed tunnel / session state goes back into the store
//! (only on change), a data plane that is no longer what was applied is applied again, and tunnels that should
//! initiate but have no IKE SA are nudged until the peer answers. Failed gateways are retried with a backoff, and
//! data-plane leftovers of gateways that no longer exist are removed when it starts leading.
//!
//! Replicas sharing one PostgreSQL database run one reconciler at a time: each tries to take or renew the store's
//! `reconciler` lease every second (time to live 5 s) and acts only while it holds it, stopping a second before the
//! lease could expire so that two never act together; a replica that dies is replaced once its lease runs out. On
//! SQLite (one process) the lease is always held. Store calls run on blocking threads: the store is synchronous.

mod compile;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openvgw_control::Service;
use openvgw_core::model::{GatewayPhase, TunnelState, VpnGateway};
use openvgw_core::{Error, Result};
use openvgw_dataplane::Driver;
use tokio::sync::watch;

pub use compile::compile;

/// An initiating tunnel without an IKE SA (the peer was not ready, or answered with an error charon does not retry
/// on) is started again this often.
const INITIATE_RETRY: Duration = Duration::from_secs(5);
/// Retries of a gateway that failed to converge start at this spacing and double up to the cap.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// The lease that makes one replica the reconciler: renewed this often, valid this long, and given up this long
/// before it could expire (renewals that fail for that long stop this replica before another can take over).
const LEASE_NAME: &str = "reconciler";
const LEASE_RENEW: Duration = Duration::from_secs(1);
const LEASE_TTL: Duration = Duration::from_secs(5);
const LEASE_MARGIN: Duration = Duration::from_secs(1);
/// With a driver that reports changes (`Driver::take_changed`), only changed gateways are observed at each resync;
/// every this many resync periods all of them are, for what no event reports (a deleted namespace, a flushed
/// ruleset). 30 × the service's 1 s.
const SWEEP_EVERY_RESYNCS: u32 = 30;

/// What an observation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    Ready,
    /// Not what was applied (a daemon, a namespace, a table is missing or different).
    NotReady,
    /// As applied, but which tunnels carry changed: the routes must follow.
    Reroute,
}

/// Which settled gateways a pass observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observe {
    Nothing,
    /// Those the driver reports changed (all of them when it cannot tell), just converged ones, and those with an
    /// initiating tunnel that is down.
    Changed,
    All,
}

#[derive(Default)]
struct State {
    /// Gateways a convergence task is working on.
    in_flight: HashSet<String>,
    /// Gateways whose last convergence failed: when to try again, and the current spacing.
    backoff: HashMap<String, (Instant, Duration)>,
    /// Per gateway, the tunnels that initiate (from the last applied intent) and when each was last nudged.
    initiating: HashMap<String, HashMap<String, Option<Instant>>>,
    /// Gateways observed at every observing pass whatever the driver reports: just converged, an initiating
    /// tunnel down (it is nudged), or the last observation failed.
    watched: HashSet<String>,
}

pub struct Reconciler {
    service: Arc<Service>,
    state: Mutex<State>,
    resync: Duration,
    /// Who this replica is in the lease table (host, process, a random tag).
    holder: String,
    /// Until when this replica may act on the lease it holds.
    lease_until: Mutex<Option<Instant>>,
    /// Mirrors "holds the lease" for metrics.
    leading: Arc<AtomicBool>,
}

fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let tag: u32 = rand::random();
    format!("{}/pid-{}/{tag:08x}", if host.is_empty() { "host" } else { &host }, std::process::id())
}

impl Reconciler {
    pub fn new(service: Arc<Service>, resync: Duration) -> Arc<Self> {
        Arc::new(Reconciler {
            service,
            state: Mutex::new(State::default()),
            resync,
            holder: holder_name(),
            lease_until: Mutex::new(None),
            leading: Arc::new(AtomicBool::new(false)),
        })
    }

    /// This replica's name in the lease table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// True while this replica reconciles (for metrics).
    pub fn leader_flag(&self) -> Arc<AtomicBool> {
        self.leading.clone()
    }

    /// Runs store work on a blocking thread.
    async fn store<T: Send + 'static>(&self, f: impl FnOnce(&Service) -> Result<T> + Send + 'static) -> Result<T> {
        let svc = self.service.clone();
        tokio::task::spawn_blocking(move || f(&svc)).await.map_err(|e| Error::internal(format!("store task: {e}")))?
    }

    fn leads(&self) -> bool {
        let until = *self.lease_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    /// Takes or renews the lease; returns whether this replica may act, logging changes of leadership.
    async fn keep_lease(&self) -> bool {
        let asked = Instant::now();
        let holder = self.holder.clone();
        let ttl_ms = LEASE_TTL.as_millis() as i64;
        let got =
            self.store(move |svc| svc.store().acquire_lease(LEASE_NAME, &holder, openvgw_core::now_ms(), ttl_ms)).await;
        let was = self.leading.load(Ordering::Relaxed);
        {
            let mut until = self.lease_until.lock().unwrap_or_else(|p| p.into_inner());
            match &got {
                Ok(true) => *until = Some(asked + LEASE_TTL - LEASE_MARGIN),
                Ok(false) => *until = None,
                // Unknown: keep acting only as long as the last renewal allows.
                Err(_) => {}
            }
        }
        if let Err(e) = &got {
            tracing::warn!(error = %e, "could not renew the reconciler lease");
        }
        let now = self.leads();
        self.leading.store(now, Ordering::Relaxed);
        if now && !was {
            tracing::info!(holder = %self.holder, "reconciler lease acquired: this replica reconciles");
        } else if !now && was {
            tracing::warn!(holder = %self.holder, "reconciler lease lost: another replica reconciles");
        }
        now
    }

    fn driver(&self) -> &Arc<dyn Driver> {
        self.service.driver()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing here is left half-updated by a panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let signal = self.service.reconcile_signal();
        // Mutations wake the loop often; observing every gateway's daemons is kept to the resync cadence.
        let mut last_observed: Option<Instant> = None;
        let mut last_swept: Option<Instant> = None;
        let mut last_renewed: Option<Instant> = None;
        let mut led = false;
        loop {
            if last_renewed.is_none_or(|t| t.elapsed() >= LEASE_RENEW) {
                last_renewed = Some(Instant::now());
                self.keep_lease().await;
            }
            let leads = self.leads();
            if leads && !led {
                // Leftovers of gateways deleted while this replica was not reconciling.
                if let Err(e) = self.remove_leftovers().await {
                    tracing::warn!(error = %e, "could not check the data plane for leftovers");
                }
                last_observed = None;
                last_swept = None;
            }
            led = leads;
            if leads {
                let observe = if last_swept.is_none_or(|t| t.elapsed() >= self.resync * SWEEP_EVERY_RESYNCS) {
                    last_swept = Some(Instant::now());
                    last_observed = last_swept;
                    Observe::All
                } else if last_observed.is_none_or(|t| t.elapsed() >= self.resync) {
                    last_observed = Some(Instant::now());
                    Observe::Changed
                } else {
                    Observe::Nothing
                };
                if let Err(e) = self.clone().pass(observe).await {
                    tracing::error!(error = %e, "reconcile pass failed");
                }
            }
            let wait = self.resync.min(LEASE_RENEW);
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if self.leading.swap(false, Ordering::Relaxed) {
            // A clean stop hands the lease over at once instead of after it expires.
            let holder = self.holder.clone();
            if let Err(e) = self.store(move |svc| svc.store().release_lease(LEASE_NAME, &holder)).await {
                tracing::warn!(error = %e, "could not release the reconciler lease");
            }
        }
    }

    /// Gateways the driver has but the store does not (deleted while openvgw was down).
    pub(crate) async fn remove_leftovers(&self) -> Result<()> {
        let realised = self.driver().realised_gateways().await.map_err(Error::internal)?;
        let known: HashSet<String> = self.store(|svc| svc.all_gateways()).await?.into_iter().map(|g| g.id).collect();
        for id in realised.into_iter().filter(|id| !known.contains(id)) {
            tracing::info!(gateway = %id, "removing data-plane leftovers of a deleted gateway");
            if let Err(e) = self.driver().remove(&id).await {
                tracing::warn!(gateway = %id, error = %e, "leftover removal failed");
            }
        }
        Ok(())
    }

    /// One pass: observe settled gateways (when `observe`), then start work for every gateway that needs it —
    /// pending changes, or a data plane that is no longer what was applied (a killed daemon, a deleted namespace).
    pub(crate) async fn pass(self: Arc<Self>, observe: Observe) -> Result<()> {
        // Taken on every observing pass, so that a sweep does not leave old changes for the next one.
        let changed = if observe == Observe::Nothing { None } else { self.driver().take_changed() };
        for gw in self.store(|svc| svc.all_gateways()).await? {
            if self.state().in_flight.contains(&gw.id) || self.backing_off(&gw.id) {
                continue;
            }
            let mut needs_work = gw.phase != GatewayPhase::Ready || gw.generation > gw.applied_generation;
            let look = match observe {
                Observe::Nothing => false,
                Observe::All => true,
                Observe::Changed => {
                    changed.as_ref().is_none_or(|c| c.contains(&gw.id)) || self.state().watched.contains(&gw.id)
                }
            };
            if !needs_work && look {
                match self.observe(&gw).await {
                    Ok(Seen::Ready) => {}
                    Ok(Seen::NotReady) => {
                        tracing::warn!(gateway = %gw.id, "data plane is not what was applied; re-applying");
                        needs_work = true;
                    }
                    Ok(Seen::Reroute) => {
                        tracing::info!(gateway = %gw.id, "a tunnel stopped or resumed carrying; re-routing");
                        needs_work = true;
                    }
                    Err(e) => {
                        tracing::debug!(gateway = %gw.id, error = %e, "observation failed");
                        self.state().watched.insert(gw.id.clone());
                    }
                }
            }
            if needs_work && self.state().in_flight.insert(gw.id.clone()) {
                let me = self.clone();
                tokio::spawn(async move {
                    let id = gw.id.clone();
                    let result = me.converge(&id).await;
                    {
                        let mut st = me.state();
                        st.in_flight.remove(&id);
                        match &result {
                            Ok(()) => {
                                st.backoff.remove(&id);
                            }
                            Err(e) => {
                                let spacing =
                                    st.backoff.get(&id).map_or(BACKOFF_START, |(_, d)| (*d * 2).min(BACKOFF_CAP));
                                st.backoff.insert(id.clone(), (Instant::now() + spacing, spacing));
                                tracing::warn!(gateway = %id, error = %e, retry_in_ms = spacing.as_millis() as u64,
                                    "gateway did not converge; will retry");
                            }
                        }
                    }
                    // Whatever changed meanwhile gets picked up by the next pass.
                    me.service.reconcile_signal().notify_one();
                });
            }
        }
        Ok(())
    }

    fn backing_off(&self, id: &str) -> bool {
        self.state().backoff.get(id).is_some_and(|(until, _)| Instant::now() < *until)
    }

    pub(crate) async fn converge(&self, id: &str) -> Result<()> {
        let owned = id.to_string();
        let Some(tree) = self.store(move |svc| svc.gateway_tree(&owned)).await? else {
            let mut st = self.state();
            st.initiating.remove(id);
            st.watched.remove(id);
            return Ok(());
        };
        if tree.gateway.phase == GatewayPhase::Deleting {
            self.driver().remove(id).await.map_err(Error::internal)?;
            let owned = id.to_string();
            self.store(move |svc| svc.finish_delete(&owned)).await?;
            let mut st = self.state();
            st.initiating.remove(id);
            st.watched.remove(id);
            drop(st);
            tracing::info!(gateway = %id, "gateway deleted");
            return Ok(());
        }
        if tree.gateway.phase == GatewayPhase::Init {
            let owned = id.to_string();
            self.store(move |svc| svc.start_provisioning(&owned)).await?;
        }
        let intent = compile(&tree);
        let started = Instant::now();
        if let Err(e) = self.driver().apply(&intent).await {
            let msg = format!("applying generation {} failed: {e}", intent.generation);
            let (owned, logged) = (id.to_string(), msg.clone());
            self.store(move |svc| svc.record_event(&owned, &logged)).await?;
            return Err(Error::internal(msg));
        }
        let (owned, generation) = (id.to_string(), intent.generation);
        self.store(move |svc| svc.record_applied(&owned, generation)).await?;
        let initiating = intent
            .tunnels
            .iter()
            .filter(|t| t.initiate && t.remote_ip.is_some())
            .map(|t| (t.id.clone(), None))
            .collect();
        {
            let mut st = self.state();
            st.initiating.insert(id.to_string(), initiating);
            st.watched.insert(id.to_string());
        }
        tracing::info!(gateway = %id, generation = intent.generation, driver = self.driver().name(),
            elapsed_ms = started.elapsed().as_millis() as u64, "gateway converged");
        Ok(())
    }

    /// Feeds what the data plane sees back into the store and nudges initiating tunnels that have no IKE SA;
    /// returns whether the data plane is ready with what was applied, or its routes must follow its tunnels.
    async fn observe(&self, gw: &VpnGateway) -> Result<Seen> {
        let obs = self.driver().observe(&gw.id).await.map_err(Error::internal)?;
        let (owned, seen) = (gw.id.clone(), obs.clone());
        self.store(move |svc| svc.record_observation(&owned, &seen)).await?;
        if !obs.ready {
            self.state().watched.insert(gw.id.clone());
            return Ok(Seen::NotReady);
        }
        let due: Vec<String> = {
            let now = Instant::now();
            let mut st = self.state();
            let st = &mut *st;
            let mut due = Vec::new();
            let mut any_down = false;
            for (tunnel, last) in st.initiating.get_mut(&gw.id).into_iter().flatten() {
                let down = obs.tunnels.get(tunnel).is_none_or(|t| t.state == TunnelState::IkeSaNotEstablished);
                if !down {
                    *last = None;
                    continue;
                }
                any_down = true;
                // charon initiates on load: the first nudge waits a retry period after the apply.
                match last {
                    None => *last = Some(now),
                    Some(t) if now.duration_since(*t) >= INITIATE_RETRY => {
                        *t = now;
                        due.push(tunnel.clone());
                    }
                    Some(_) => {}
                }
            }
            // A tunnel that is down is looked at (and nudged) every resync; one that is up waits for events.
            if any_down {
                st.watched.insert(gw.id.clone());
            } else {
                st.watched.remove(&gw.id);
            }
            due
        };
        for tunnel in due {
            if let Err(e) = self.driver().initiate(&gw.id, &tunnel).await {
                tracing::debug!(gateway = %gw.id, connection = %tunnel, error = %e, "initiate retry failed");
            }
        }
        Ok(if obs.reroute { Seen::Reroute } else { Seen::Ready })
    }
}
