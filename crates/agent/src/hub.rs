//! The control plane's side: the agents' sessions, which agent holds which gateway, and the [`Driver`] the
//! reconciler calls (each call goes down the session of the gateway's agent and waits for its answer).
//!
//! A gateway is assigned to a live agent the first time it is applied (`choose`: the one holding the fewest, within
//! capacity) and stays there, stored ([`Registry::place`]): a session
//! that ends keeps its assignments, so an agent that reconnects serves its gateways again, and calls for them
//! meanwhile fail at once with a clear error (the reconciler retries). An agent away for `dead_after` is dead and
//! its gateways move ([`AgentHub::sweep`]); fencing keeps a gateway on one host at a time (the agent's side:
//! [`crate::host::Lease`]; the control plane's: `AgentHub::fence`). A VPC whose gateways are on several hosts has one
//! router, beside one of its gateways ([`VpcRouter`]; `holder`), which the hub feeds with what the others publish.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openvgw_dataplane::{
    second_half_id, whole_id, ClientSession, DataplaneError, Driver, GatewayIntent, GatewayObservation, HostView,
    SaStats, TunnelObservation, VpcRoute, VpcRouter,
};
use openvgw_pki::CaMaterial;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::port::{self, PortLimits, PortStats};
use crate::proto::control_server::{Control, ControlServer};
use crate::proto::{
    agent_message, answer, call, control_message, AgentMessage, Answer, Call, ControlMessage, Empty, Hello, JoinReply,
    JoinRequest, LogRange, SessionRef, TunnelRef, Welcome,
};
use crate::wire::{error_of, from_json, to_json};
use crate::{MAX_CSR, MAX_NAME, MAX_TOKEN};

/// What the hub keeps in the control plane's store: who may join and attach (join tokens, revocations) and which
/// agent holds which gateway. Called on blocking threads.
pub trait Registry: Send + Sync + 'static {
    /// Takes a one-time join token for the agent `agent_id` (named `name`, certified under `serial_hex`): `false`
    /// when the token is unknown, used or expired.
    fn redeem(&self, token: &str, name: &str, agent_id: &str, serial_hex: &str) -> Result<bool, String>;
    /// Whether the agent may attach with the certificate of this serial (it has not been revoked).
    fn admitted(&self, agent_id: &str, serial_hex: &str) -> Result<bool, String>;
    /// Every placed gateway.
    fn placements(&self) -> Result<Vec<Placement>, String>;
    /// Records where a gateway is (replacing where it was).
    fn place(&self, placement: &Placement) -> Result<(), String>;
    /// Records that nobody holds the gateway any more.
    fn unplace(&self, gateway_id: &str) -> Result<(), String>;
}

/// Which agent holds a gateway, and the gateway's VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub gateway_id: String,
    pub agent_id: String,
    pub vpc_id: String,
}

pub struct AgentHub {
    state: Mutex<HubState>,
    registry: Arc<dyn Registry>,
    ca: CaMaterial,
    timing: Timing,
    /// Whether this replica reconciles (its reconciler holds the store's lease); unset: a single control plane.
    leader: OnceLock<Arc<AtomicBool>>,
    /// Whether it did at the last sweep: a replica that starts leading reads the placements afresh first.
    led: AtomicBool,
    /// The agents' port: connections open and refused.
    port: Arc<PortStats>,
}

/// How long the hub waits.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A call that gets no answer within this fails (applying a gateway starts daemons: tens of seconds).
    pub call_timeout: Duration,
    /// An agent without a session for this long is dead: its gateways are placed on other agents.
    pub dead_after: Duration,
}

impl Timing {
    /// How long an agent that hears nothing waits before it removes its gateways: half of `dead_after`, so it has
    /// stopped serving them well before they are moved (the control plane counts from the session's end, which is
    /// no earlier than the last heartbeat the agent heard).
    pub fn fence_after(&self) -> Duration {
        self.dead_after / 2
    }

    /// How often a session hears from the control plane: four times within `fence_after`, at most once a second.
    pub fn heartbeat(&self) -> Duration {
        (self.fence_after() / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

#[derive(Default)]
struct HubState {
    live: HashMap<String, Arc<Session>>,
    /// gateway → agent.
    assigned: HashMap<String, String>,
    /// gateway → VPC ("" when not known: adopted from what an agent reported).
    vpc_of: HashMap<String, String>,
    changed: HashSet<String>,
    /// The last epoch given to each agent.
    epochs: HashMap<String, u64>,
    /// Agents holding gateways without a session, since when (their session ended, or the hub started).
    away: HashMap<String, Instant>,
    /// Gateways moved off agents that stayed away.
    moved: u64,
    /// What each agent said in its last hello (for operators' views while it is away).
    hellos: HashMap<String, Hello>,
    /// What the last observation of each gateway said about its VPC's router.
    seen: HashMap<String, Seen>,
    /// VPC → the gateway beside which its router runs.
    holders: HashMap<String, String>,
    /// HA gateways run as two halves: gateway → the tunnels of each half (as last applied).
    halves: HashMap<String, [Vec<String>; 2]>,
}

/// A gateway's part in its VPC's router, as last observed.
struct Seen {
    published: Vec<VpcRoute>,
    vpc_router: VpcRouter,
}

struct Session {
    agent_id: String,
    epoch: u64,
    hello: Hello,
    out: mpsc::Sender<Result<ControlMessage, Status>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<answer::Result>>>,
    next_call: AtomicU64,
}

/// What a call has to store before it goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Nothing,
    /// The gateway was just placed.
    Placed,
    /// Its VPC was not what the hub knew.
    Vpc,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is a whole insert or removal.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn failed(text: String) -> DataplaneError {
    DataplaneError::Failed(text)
}

/// Where a gateway (or one half of an HA gateway) goes: the attached agent with room that holds the fewest gateways
/// (ties: the smallest id), other than `avoid` (the host of the other half) while another has room; the agents in
/// `leaving` (dead ones whose gateways are being moved) do not count.
fn choose(st: &HubState, leaving: &HashSet<String>, avoid: Option<&str>) -> Result<String, String> {
    let mut held: HashMap<&str, u32> = HashMap::new();
    for agent in st.assigned.values() {
        *held.entry(agent.as_str()).or_default() += 1;
    }
    let n = |agent: &str| held.get(agent).copied().unwrap_or(0);
    st.live
        .values()
        .filter(|s| !leaving.contains(&s.agent_id) && (s.hello.capacity == 0 || n(&s.agent_id) < s.hello.capacity))
        .min_by_key(|s| (avoid == Some(s.agent_id.as_str()), n(&s.agent_id), s.agent_id.as_str()))
        .map(|s| s.agent_id.clone())
        .ok_or_else(|| "no connected agent has room for it".to_string())
}

/// The other half of an HA gateway's half (the second half's id for the first, whose id is the gateway's).
fn sibling(unit: &str) -> String {
    match whole_id(unit) {
        whole if whole != unit => whole.to_string(),
        _ => second_half_id(unit),
    }
}

/// The gateways of `vpc` that are placed, by id.
fn members<'a>(st: &'a HubState, vpc: &str) -> Vec<&'a String> {
    let mut out: Vec<&String> =
        st.vpc_of.iter().filter(|(g, v)| *v == vpc && st.assigned.contains_key(*g)).map(|(g, _)| g).collect();
    out.sort();
    out
}

/// The gateway beside which `vpc`'s router runs: the one chosen before, as long as it is placed (the router moves
/// with it when it moves, and is away while its host is: a second router would answer for the same address), else
/// one that says it runs it (a control plane that restarted or took the lead), else the smallest id.
fn holder(st: &mut HubState, vpc: &str) -> Option<String> {
    if vpc.is_empty() {
        return None;
    }
    let kept =
        st.holders.get(vpc).filter(|h| st.assigned.contains_key(*h) && st.vpc_of.get(*h).is_some_and(|v| v == vpc));
    if let Some(h) = kept {
        return Some(h.clone());
    }
    let all = members(st, vpc);
    let runs = |g: &&&String| st.seen.get(**g).is_some_and(|s| matches!(s.vpc_router, VpcRouter::Here { .. }));
    let chosen = all.iter().find(runs).or(all.first()).map(|g| (*g).clone());
    match &chosen {
        Some(h) => st.holders.insert(vpc.to_string(), h.clone()),
        None => st.holders.remove(vpc),
    };
    chosen
}

/// Where `gateway`'s intent runs its VPC's router: beside the holder, with what every other gateway of the VPC
/// publishes (as last observed; below the others' while its host is away); elsewhere for the others.
fn router_for(st: &mut HubState, gateway: &str) -> VpcRouter {
    let vpc = st.vpc_of.get(gateway).cloned().unwrap_or_default();
    if holder(st, &vpc).as_deref() != Some(gateway) {
        return VpcRouter::Elsewhere;
    }
    let mut others: Vec<VpcRoute> = members(st, &vpc)
        .into_iter()
        .filter(|g| *g != gateway)
        .filter_map(|g| st.seen.get(g).map(|s| (g, s)))
        .flat_map(|(g, s)| {
            let away = !st.assigned.get(g).is_some_and(|a| st.live.contains_key(a));
            let penalty = if away { openvgw_dataplane::vpc::HOST_AWAY } else { 0 };
            s.published.iter().map(move |r| VpcRoute { metric: r.metric.saturating_add(penalty), ..r.clone() })
        })
        .collect();
    others.sort();
    others.dedup();
    VpcRouter::Here { others }
}

/// An agent came or went: the routers of the VPCs it holds gateways of route to them differently
/// ([`router_for`]), so their holders are observed (and applied again) at once.
fn routers_follow(st: &mut HubState, agent_id: &str) {
    let vpcs: HashSet<String> = st
        .assigned
        .iter()
        .filter(|(_, a)| *a == agent_id)
        .filter_map(|(g, _)| st.vpc_of.get(g).filter(|v| !v.is_empty()).cloned())
        .collect();
    for vpc in vpcs {
        if let Some(h) = holder(st, &vpc) {
            st.changed.insert(h);
        }
    }
}

impl Session {
    /// Sends one call and waits for its answer (or the session's end, or the timeout).
    async fn call(&self, op: call::Op, timeout: Duration) -> Result<answer::Result, DataplaneError> {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let msg = ControlMessage { body: Some(control_message::Body::Call(Call { id, op: Some(op) })) };
        let gone = || failed(format!("agent {} disconnected", self.agent_id));
        if self.out.send(Ok(msg)).await.is_err() {
            lock(&self.pending).remove(&id);
            return Err(gone());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => Err(gone()),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(failed(format!("agent {} did not answer within {} s", self.agent_id, timeout.as_secs())))
            }
        }
    }

    fn answered(&self, a: Answer) {
        if let (Some(tx), Some(result)) = (lock(&self.pending).remove(&a.id), a.result) {
            let _ = tx.send(result);
        }
    }
}

impl AgentHub {
    /// A hub whose agents are certified by `ca` and admitted by `registry`, starting from the placements it has
    /// stored (read them on a blocking thread: [`Registry::placements`]). Every agent holding one is away until it
    /// attaches: one that never does is dead `timing.dead_after` from now.
    pub fn new(registry: Arc<dyn Registry>, ca: CaMaterial, timing: Timing, placed: Vec<Placement>) -> Arc<AgentHub> {
        let now = Instant::now();
        let away = placed.iter().map(|p| (p.agent_id.clone(), now)).collect();
        let vpc_of = placed.iter().map(|p| (p.gateway_id.clone(), p.vpc_id.clone())).collect();
        let assigned = placed.into_iter().map(|p| (p.gateway_id, p.agent_id)).collect();
        let state = HubState { assigned, vpc_of, away, ..HubState::default() };
        Arc::new(AgentHub {
            state: Mutex::new(state),
            registry,
            ca,
            timing,
            leader: OnceLock::new(),
            led: AtomicBool::new(true),
            port: Arc::default(),
        })
    }

    /// Replicas: this hub moves gateways only while `leading` holds (the reconciler's lease), and otherwise follows
    /// the placements the leading replica stores. Agents attach to every replica, so each can answer for them.
    pub fn follow(&self, leading: Arc<AtomicBool>) {
        let _ = self.leader.set(leading);
    }

    fn leads(&self) -> bool {
        self.leader.get().is_none_or(|l| l.load(Ordering::SeqCst))
    }

    /// Takes the stored placements as the hub's own; agents holding one without a session here are away from now
    /// (unless they already were).
    async fn reload_placements(&self) -> Result<(), String> {
        let placed = self.registered(|r| r.placements()).await?;
        let mut st = lock(&self.state);
        let now = Instant::now();
        for p in &placed {
            if !st.live.contains_key(&p.agent_id) && !st.away.contains_key(&p.agent_id) {
                st.away.insert(p.agent_id.clone(), now);
            }
        }
        // Agents away that hold nothing any more are forgotten once they would be dead (as the leader's sweep does).
        let holding: HashSet<&str> = placed.iter().map(|p| p.agent_id.as_str()).collect();
        let dead_after = self.timing.dead_after;
        st.away.retain(|a, since| holding.contains(a.as_str()) || since.elapsed() < dead_after);
        st.vpc_of = placed.iter().map(|p| (p.gateway_id.clone(), p.vpc_id.clone())).collect();
        st.assigned = placed.into_iter().map(|p| (p.gateway_id, p.agent_id)).collect();
        Ok(())
    }

    /// Connections open on the agents' port, and those closed as they arrived (over a cap of [`PortLimits`]).
    pub fn port(&self) -> &PortStats {
        &self.port
    }

    /// Gateways moved off dead agents so far.
    pub fn moved(&self) -> u64 {
        lock(&self.state).moved
    }

    /// Places the gateways of every agent away for `dead_after` or longer on the attached agents ([`choose`]) and
    /// records the moves; a gateway no agent has room for stays where it
    /// is until the next sweep. The reconciler then finds the gateway not ready where it now is and applies it
    /// there; the dead agent, should it come back, is told to remove it ([`AgentHub::fence`]). Returns the moves.
    pub async fn sweep(&self) -> Vec<(String, String, String)> {
        let leads = self.leads();
        let started = leads && !self.led.swap(leads, Ordering::SeqCst);
        if !leads {
            self.led.store(false, Ordering::SeqCst);
        }
        if !leads || started {
            if let Err(e) = self.reload_placements().await {
                tracing::warn!(error = %e, "reading the agents' placements failed");
                return Vec::new();
            }
            if !leads {
                return Vec::new();
            }
        }
        let moves: Vec<(String, String, String)> = {
            let mut st = lock(&self.state);
            let now = Instant::now();
            let dead: HashSet<String> = st
                .away
                .iter()
                .filter(|(a, since)| !st.live.contains_key(*a) && now.duration_since(**since) >= self.timing.dead_after)
                .map(|(a, _)| a.clone())
                .collect();
            // One by one, in a fixed order, each to the host with room that holds the fewest by then.
            let leaving: BTreeMap<String, String> =
                st.assigned.iter().filter(|(_, a)| dead.contains(*a)).map(|(g, a)| (g.clone(), a.clone())).collect();
            let mut moves = Vec::new();
            for (gateway, from) in leaving {
                let avoid = st.assigned.get(&sibling(&gateway)).cloned();
                match choose(&st, &dead, avoid.as_deref()) {
                    Ok(to) => {
                        st.assigned.insert(gateway.clone(), to.clone());
                        moves.push((gateway, from, to));
                    }
                    Err(why) => tracing::debug!(gateway = %gateway, "a dead agent's gateway waits: {why}"),
                }
            }
            // Dead agents that hold nothing any more are no longer waited for.
            let holding: HashSet<&String> = st.assigned.values().collect();
            let gone: Vec<String> = dead.into_iter().filter(|a| !holding.contains(a)).collect();
            for a in gone {
                st.away.remove(&a);
            }
            moves
        };
        for (gateway, from, to) in &moves {
            match self.record_placement(gateway, to).await {
                Ok(()) => {
                    let mut st = lock(&self.state);
                    st.moved += 1;
                    // Observed at once: it is not there yet, and no event of the new agent's will say so.
                    st.changed.insert(gateway.clone());
                    drop(st);
                    tracing::warn!(gateway = %gateway, from = %from, to = %to, "agent dead: gateway moved");
                }
                Err(e) => {
                    // The store still names the dead agent: so does the hub, and the next sweep tries again.
                    lock(&self.state).assigned.insert(gateway.clone(), from.clone());
                    tracing::error!(gateway = %gateway, error = %e, "moving a gateway failed");
                }
            }
        }
        moves
    }

    /// Sweeps every second until `stop` completes.
    pub async fn sweep_every_second(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => { self.sweep().await; }
                _ = &mut stop => return,
            }
        }
    }

    /// A returning agent is told to remove what it realised and another agent now holds (its gateways were moved
    /// while it was away): it stops serving them as soon as it is back. Removing is the agent's own, so the
    /// placements are not touched.
    async fn fence(&self, s: Arc<Session>) {
        let realised = match s.call(call::Op::Realised(Empty {}), self.timing.call_timeout).await {
            Ok(answer::Result::Gateways(g)) => g.items,
            Ok(other) => return tracing::warn!(agent = %s.agent_id, "fencing: {}", unexpected(&s.agent_id, other)),
            Err(e) => return tracing::warn!(agent = %s.agent_id, error = %e, "fencing: listing failed"),
        };
        // From the store, not this hub's table: on a replica that follows, the table may be a second old.
        let placed: HashMap<String, String> = match self.registered(|r| r.placements()).await {
            Ok(p) => p.into_iter().map(|p| (p.gateway_id, p.agent_id)).collect(),
            Err(e) => return tracing::warn!(agent = %s.agent_id, error = %e, "fencing: reading placements failed"),
        };
        let foreign: Vec<String> =
            realised.into_iter().filter(|g| placed.get(g).is_some_and(|a| *a != s.agent_id)).collect();
        for g in foreign {
            match s.call(call::Op::Remove(g.clone()), self.timing.call_timeout).await {
                Ok(answer::Result::Done(Empty {})) => {
                    tracing::warn!(agent = %s.agent_id, gateway = %g, "fenced: removed a gateway moved elsewhere")
                }
                Ok(other) => tracing::warn!(agent = %s.agent_id, gateway = %g, "fencing: {}", unexpected(&g, other)),
                Err(e) => tracing::warn!(agent = %s.agent_id, gateway = %g, error = %e, "fencing failed"),
            }
        }
    }

    /// Runs `f` on the registry on a blocking thread (it reads and writes the store).
    async fn registered<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Registry) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let r = self.registry.clone();
        tokio::task::spawn_blocking(move || f(r.as_ref())).await.map_err(|e| e.to_string())?
    }

    /// [`AgentHub::registered`] for the gRPC handlers: a store failure is the caller's to retry.
    async fn enrolled<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Registry) -> Result<T, String> + Send + 'static,
    ) -> Result<T, Status> {
        self.registered(f).await.map_err(|e| {
            tracing::error!(error = %e, "agent registry failed");
            Status::unavailable("the control plane's store failed; try again")
        })
    }

    /// Stores where a gateway is (with its VPC as the hub knows it), before anything is done there.
    async fn record_placement(&self, gateway_id: &str, agent_id: &str) -> Result<(), DataplaneError> {
        let vpc_id = lock(&self.state).vpc_of.get(gateway_id).cloned().unwrap_or_default();
        let p = Placement { gateway_id: gateway_id.into(), agent_id: agent_id.into(), vpc_id };
        self.registered(move |r| r.place(&p)).await.map_err(|e| failed(format!("recording where {gateway_id} is: {e}")))
    }

    /// Stores that nobody holds the gateway any more.
    async fn record_removal(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        let g = gateway_id.to_string();
        self.registered(move |r| r.unplace(&g))
            .await
            .map_err(|e| failed(format!("recording that {gateway_id} is gone: {e}")))
    }

    /// The agents attached now, by id.
    pub fn agents(&self) -> Vec<HostView> {
        self.hosts().into_iter().filter(|h| h.attached).collect()
    }

    /// The agent holding a gateway (or a half of an HA gateway: [`second_half_id`]), if any.
    pub fn agent_of(&self, gateway_id: &str) -> Option<String> {
        lock(&self.state).assigned.get(gateway_id).cloned()
    }

    /// The half of the gateway holding the tunnel (the gateway itself unless it runs as two halves).
    fn unit_of_tunnel(&self, gateway_id: &str, tunnel_id: &str) -> String {
        let st = lock(&self.state);
        match st.halves.get(gateway_id) {
            Some([_, second]) if second.iter().any(|t| t == tunnel_id) => second_half_id(gateway_id),
            _ => gateway_id.to_string(),
        }
    }

    /// The session serving a gateway; with `place` (the gateway's VPC), an unassigned gateway is placed
    /// ([`choose`]), and one whose VPC the hub did not know gets it recorded. `Ok(None)`: nobody holds it and it was
    /// not to be placed.
    fn session_for(
        &self,
        gateway_id: &str,
        place: Option<&str>,
    ) -> Result<Option<(Arc<Session>, Record)>, DataplaneError> {
        let mut st = lock(&self.state);
        let learned = place.is_some_and(|vpc| st.vpc_of.get(gateway_id).is_none_or(|v| v != vpc));
        if let Some(vpc) = place {
            st.vpc_of.insert(gateway_id.to_string(), vpc.to_string());
        }
        if let Some(agent) = st.assigned.get(gateway_id) {
            return match st.live.get(agent) {
                Some(s) => Ok(Some((s.clone(), if learned { Record::Vpc } else { Record::Nothing }))),
                None => Err(failed(format!("the agent holding {gateway_id} ({agent}) is not connected"))),
            };
        }
        if place.is_none() {
            return Ok(None);
        }
        let avoid = st.assigned.get(&sibling(gateway_id)).cloned();
        let chosen = choose(&st, &HashSet::new(), avoid.as_deref());
        let Some(s) = chosen.as_ref().ok().and_then(|a| st.live.get(a).cloned()) else {
            let why = chosen.err().unwrap_or_default();
            return Err(failed(format!("cannot place {gateway_id}: {why}")));
        };
        st.assigned.insert(gateway_id.to_string(), s.agent_id.clone());
        Ok(Some((s, Record::Placed)))
    }

    async fn call(
        &self,
        gateway_id: &str,
        place: Option<&str>,
        op: call::Op,
    ) -> Result<Option<answer::Result>, DataplaneError> {
        match self.reach(gateway_id, place).await? {
            Some(s) => s.call(op, self.timing.call_timeout).await.map(Some),
            None => Ok(None),
        }
    }

    /// The session of the agent holding the gateway ([`AgentHub::session_for`]), with a new placement stored.
    async fn reach(&self, gateway_id: &str, place: Option<&str>) -> Result<Option<Arc<Session>>, DataplaneError> {
        let Some((s, record)) = self.session_for(gateway_id, place)? else {
            return Ok(None);
        };
        if record != Record::Nothing {
            if let Err(e) = self.record_placement(gateway_id, &s.agent_id).await {
                // Not stored, not known: the next attempt places it afresh, or records its VPC again.
                let mut st = lock(&self.state);
                if record == Record::Placed {
                    st.assigned.remove(gateway_id);
                }
                st.vpc_of.remove(gateway_id);
                return Err(e);
            }
        }
        Ok(Some(s))
    }

    /// Observes a gateway where it is and keeps what it says about its VPC's router. `Ok(None)`: nobody holds it.
    async fn observed(&self, gateway_id: &str) -> Result<Option<GatewayObservation>, DataplaneError> {
        let obs: GatewayObservation = match self.call(gateway_id, None, call::Op::Observe(gateway_id.into())).await? {
            Some(answer::Result::Json(j)) => from_json(&j)?,
            Some(other) => return Err(unexpected(gateway_id, other)),
            None => return Ok(None),
        };
        let seen = Seen { published: obs.published.clone(), vpc_router: obs.vpc_router.clone() };
        lock(&self.state).seen.insert(gateway_id.to_string(), seen);
        Ok(Some(obs))
    }

    /// Observes the gateways of `vpc` on attached hosts that have not been observed since this hub started: which
    /// of them runs the router, and what each publishes, before the router's routes are decided.
    async fn learn_vpc(&self, vpc: &str) {
        let unseen: Vec<String> = {
            let st = lock(&self.state);
            members(&st, vpc)
                .into_iter()
                .filter(|g| !st.seen.contains_key(*g) && st.assigned.get(*g).is_some_and(|a| st.live.contains_key(a)))
                .cloned()
                .collect()
        };
        for g in unseen {
            if let Err(e) = self.observed(&g).await {
                tracing::debug!(gateway = %g, error = %e, "observing a gateway of the VPC failed");
            }
        }
    }

    /// Places the gateway (or half) if it is new, and sends its intent with its part in its VPC's router
    /// ([`router_for`]).
    async fn apply_unit(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let gw = &intent.gateway_id;
        let s =
            self.reach(gw, Some(&intent.vpc_id)).await?.ok_or_else(|| failed(format!("{gw} could not be placed")))?;
        self.learn_vpc(&intent.vpc_id).await;
        let mut intent = intent.clone();
        intent.vpc_router = router_for(&mut lock(&self.state), gw);
        expect_done(gw, s.call(call::Op::Apply(to_json(&intent)?), self.timing.call_timeout).await?)
    }

    async fn remove_unit(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        match self.call(gateway_id, None, call::Op::Remove(gateway_id.to_string())).await? {
            Some(r) => {
                expect_done(gateway_id, r)?;
                self.record_removal(gateway_id).await?;
                let mut st = lock(&self.state);
                st.assigned.remove(gateway_id);
                st.seen.remove(gateway_id);
                // Its VPC's router (perhaps beside another gateway from now on) no longer routes to it.
                if let Some(h) = st.vpc_of.remove(gateway_id).and_then(|vpc| holder(&mut st, &vpc)) {
                    st.changed.insert(h);
                }
                Ok(())
            }
            // Held by nobody: nothing to remove.
            None => Ok(()),
        }
    }

    /// What the gateway's agent observes, and `reroute` when its part in its VPC's router is not what it should be
    /// now (the holder's routes are stale, or the router should run beside another gateway). The holder is marked
    /// changed when what this gateway publishes is not what the holder routes.
    async fn observe_unit(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        // Not applied anywhere: nothing is there.
        let Some(mut obs) = self.observed(gateway_id).await? else {
            return Ok(GatewayObservation::default());
        };
        let vpc = lock(&self.state).vpc_of.get(gateway_id).cloned().unwrap_or_default();
        if vpc.is_empty() {
            return Ok(obs);
        }
        self.learn_vpc(&vpc).await;
        let mut st = lock(&self.state);
        if router_for(&mut st, gateway_id) != obs.vpc_router {
            obs.reroute = true;
        }
        if let Some(h) = holder(&mut st, &vpc).filter(|h| h != gateway_id) {
            let wanted = router_for(&mut st, &h);
            if st.seen.get(&h).is_some_and(|s| s.vpc_router != wanted) {
                st.changed.insert(h);
            }
        }
        Ok(obs)
    }

    /// Registers a new session of `agent_id`; an older one of the same agent is closed (its calls fail, its late
    /// answers are not taken: they belong to the old epoch's pending calls).
    fn open(&self, agent_id: &str, hello: Hello, out: mpsc::Sender<Result<ControlMessage, Status>>) -> Arc<Session> {
        let mut st = lock(&self.state);
        let epoch = st.epochs.get(agent_id).copied().unwrap_or(0) + 1;
        st.epochs.insert(agent_id.to_string(), epoch);
        let s = Arc::new(Session {
            agent_id: agent_id.to_string(),
            epoch,
            hello,
            out,
            pending: Mutex::default(),
            next_call: AtomicU64::new(1),
        });
        if let Some(old) = st.live.insert(agent_id.to_string(), s.clone()) {
            lock(&old.pending).clear();
        }
        st.away.remove(agent_id);
        st.hellos.insert(agent_id.to_string(), s.hello.clone());
        // What happened to its gateways while it was away is unknown (it may have fenced itself and removed them):
        // each is observed again, and applied again if it is not there.
        let held: Vec<String> = st.assigned.iter().filter(|(_, a)| *a == agent_id).map(|(g, _)| g.clone()).collect();
        st.changed.extend(held);
        routers_follow(&mut st, agent_id);
        s
    }

    fn close(&self, s: &Session) {
        let mut st = lock(&self.state);
        if st.live.get(&s.agent_id).is_some_and(|l| l.epoch == s.epoch) {
            st.live.remove(&s.agent_id);
            st.away.insert(s.agent_id.clone(), Instant::now());
            routers_follow(&mut st, &s.agent_id);
        }
        drop(st);
        // Dropping the senders wakes every waiting call with "disconnected".
        lock(&s.pending).clear();
    }

    fn changed(&self, s: &Session, gateways: Vec<String>) {
        let mut st = lock(&self.state);
        for g in gateways {
            // Only what this agent holds: an agent reports nothing about another's gateways.
            if st.assigned.get(&g) == Some(&s.agent_id) {
                st.changed.insert(g);
            }
        }
    }

    /// The gRPC service, for a server of the caller's own (tests) or [`AgentHub::serve`].
    pub fn service(self: &Arc<Self>) -> ControlServer<ControlService> {
        ControlServer::new(ControlService { hub: self.clone() })
    }

    /// Serves agents on `listener` with mutual TLS (`server`: the control plane's certificate, issued by the
    /// hub's CA for [`crate::CONTROL_NAME`]) until `shutdown` completes. A silent peer (a cut network) is found by
    /// HTTP/2 keep-alive pings within `keepalive` twice over, and its session closed. Connections are bounded by
    /// `limits` ([`crate::port`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        server: openvgw_pki::CertifiedKey,
        keepalive: Duration,
        limits: PortLimits,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&server.cert_pem, &server.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca.cert_pem))
            // Join is called before the agent has a certificate; Attach insists on one.
            .client_auth_optional(true)
            .timeout(limits.handshake);
        let incoming = ReceiverStream::new(port::admit(listener, limits, self.port.clone()));
        Server::builder()
            .tls_config(tls)?
            .http2_keepalive_interval(Some(keepalive))
            .http2_keepalive_timeout(Some(keepalive))
            // A request's head within 30 s (a stream's body is not timed); an agent needs one stream, so a
            // connection gets few.
            .timeout(Duration::from_secs(30))
            .max_concurrent_streams(Some(8))
            .concurrency_limit_per_connection(8)
            .add_service(self.service())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}

pub struct ControlService {
    hub: Arc<AgentHub>,
}

type AttachStream = Pin<Box<dyn Stream<Item = Result<ControlMessage, Status>> + Send>>;

/// How long an agent has to say hello once its stream is open.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

#[tonic::async_trait]
impl Control for ControlService {
    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<JoinReply>, Status> {
        let peer = req.remote_addr();
        let r = req.into_inner();
        if r.token.is_empty() || r.token.len() > MAX_TOKEN {
            return Err(Status::invalid_argument(format!("a join token has 1 to {MAX_TOKEN} characters")));
        }
        if r.name.is_empty() || r.name.len() > MAX_NAME || r.name.chars().any(char::is_control) {
            return Err(Status::invalid_argument(format!("an agent's name has 1 to {MAX_NAME} printable characters")));
        }
        if r.csr_pem.len() > MAX_CSR {
            return Err(Status::invalid_argument(format!("a certificate request has at most {MAX_CSR} bytes")));
        }
        let agent_id = new_agent_id();
        // Certified before the token is spent, so a malformed request leaves the token usable.
        let (cert_pem, serial, _) = openvgw_pki::sign_client_request(&self.hub.ca, &r.csr_pem, &agent_id, 365)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (id, name) = (agent_id.clone(), r.name.clone());
        let redeemed = self.hub.enrolled(move |e| e.redeem(&r.token, &name, &id, &serial)).await?;
        if !redeemed {
            tracing::warn!(peer = ?peer, "agent join refused: unknown, used or expired token");
            return Err(Status::permission_denied("the join token is unknown, used or expired"));
        }
        tracing::info!(peer = ?peer, agent = %agent_id, "agent joined");
        Ok(Response::new(JoinReply { agent_id, certificate_pem: cert_pem }))
    }

    type AttachStream = AttachStream;

    async fn attach(&self, req: Request<Streaming<AgentMessage>>) -> Result<Response<AttachStream>, Status> {
        let peer: Option<SocketAddr> = req.remote_addr();
        let certs =
            req.peer_certs().ok_or_else(|| Status::unauthenticated("attaching needs the agent's certificate"))?;
        let der = certs.first().ok_or_else(|| Status::unauthenticated("attaching needs the agent's certificate"))?;
        let (agent_id, serial) =
            openvgw_pki::subject_of_der(der).map_err(|e| Status::unauthenticated(e.to_string()))?;
        let id = agent_id.clone();
        if !self.hub.enrolled(move |e| e.admitted(&id, &serial)).await? {
            return Err(Status::permission_denied(format!("agent {agent_id} is revoked")));
        }
        let mut inbound = req.into_inner();
        let hello = match tokio::time::timeout(HELLO_WITHIN, inbound.message()).await {
            Ok(Ok(Some(AgentMessage { body: Some(agent_message::Body::Hello(h)) }))) => h,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Status::deadline_exceeded("no hello")),
            Ok(Ok(_)) => return Err(Status::invalid_argument("a session starts with hello")),
        };
        let (tx, rx) = mpsc::channel(256);
        let hub = self.hub.clone();
        let session = hub.open(&agent_id, hello, tx.clone());
        tracing::info!(peer = ?peer, agent = %agent_id, epoch = session.epoch, "agent attached");
        let timing = hub.timing;
        let welcome = Welcome {
            agent_id: agent_id.clone(),
            epoch: session.epoch,
            fence_after_ms: millis(timing.fence_after()),
            heartbeat_ms: millis(timing.heartbeat()),
        };
        let _ = tx.send(Ok(ControlMessage { body: Some(control_message::Body::Welcome(welcome)) })).await;
        // Heartbeats until the agent's end of the stream is gone (the session closes on its own path).
        tokio::spawn({
            let tx = tx.clone();
            async move {
                let mut tick = tokio::time::interval(timing.heartbeat());
                loop {
                    tick.tick().await;
                    let beat = ControlMessage { body: Some(control_message::Body::Heartbeat(Empty {})) };
                    if tx.send(Ok(beat)).await.is_err() {
                        return;
                    }
                }
            }
        });
        tokio::spawn({
            let (hub, session) = (hub.clone(), session.clone());
            async move { hub.fence(session).await }
        });
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(AgentMessage { body: Some(agent_message::Body::Answer(a)) })) => session.answered(a),
                    Ok(Some(AgentMessage { body: Some(agent_message::Body::Changed(c)) })) => {
                        hub.changed(&session, c.gateway_ids)
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            hub.close(&session);
            tracing::warn!(agent = %session.agent_id, epoch = session.epoch, "agent session ended");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A new agent's id: the common name of its certificate.
fn new_agent_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("agt-{}", hex::encode(bytes))
}

fn expect_done(agent: &str, r: answer::Result) -> Result<(), DataplaneError> {
    match r {
        answer::Result::Done(Empty {}) => Ok(()),
        other => Err(unexpected(agent, other)),
    }
}

fn unexpected(agent: &str, r: answer::Result) -> DataplaneError {
    match r {
        answer::Result::Failure(f) => error_of(agent, f),
        other => failed(format!("agent {agent}: an answer of the wrong kind ({other:?})")),
    }
}

#[async_trait]
impl Driver for AgentHub {
    fn name(&self) -> &'static str {
        "agents"
    }

    /// Places the gateway if it is new, and sends its intent with its part in its VPC's router ([`router_for`]). An
    /// HA gateway with a second inside address runs as two halves ([`GatewayIntent::halves`]), each applied on its
    /// own host (one failing does not keep the other from being applied).
    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let gw = &intent.gateway_id;
        let units = match intent.halves() {
            Some((a, b)) => {
                let tunnels = |h: &GatewayIntent| h.tunnels.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
                lock(&self.state).halves.insert(gw.clone(), [tunnels(&a), tunnels(&b)]);
                vec![a, b]
            }
            None => {
                // No longer split: a second half left from before goes (removing one nobody holds does nothing).
                lock(&self.state).halves.remove(gw);
                self.remove_unit(&second_half_id(gw)).await?;
                vec![intent.clone()]
            }
        };
        let mut first_error = None;
        for unit in &units {
            if let Err(e) = self.apply_unit(unit).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        self.remove_unit(&second_half_id(gateway_id)).await?;
        self.remove_unit(gateway_id).await?;
        lock(&self.state).halves.remove(gateway_id);
        Ok(())
    }

    fn take_changed(&self) -> Option<HashSet<String>> {
        let mut st = lock(&self.state);
        let changed: HashSet<String> =
            std::mem::take(&mut st.changed).iter().map(|u| whole_id(u).to_string()).collect();
        if st.live.values().all(|s| s.hello.reports_changes) {
            Some(changed)
        } else {
            None
        }
    }

    /// What the gateway's agent observes ([`AgentHub::observe_unit`]); for an HA gateway run as two halves, both
    /// merged: ready when both are, and the tunnels of a half whose host is away reported down.
    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        let second = second_half_id(gateway_id);
        let (halves, split) = {
            let st = lock(&self.state);
            (st.halves.get(gateway_id).cloned(), st.assigned.contains_key(&second))
        };
        if !split {
            return self.observe_unit(gateway_id).await;
        }
        let mut merged = GatewayObservation { ready: true, ..GatewayObservation::default() };
        for (i, unit) in [gateway_id.to_string(), second].iter().enumerate() {
            match self.observe_unit(unit).await {
                Ok(o) => {
                    merged.ready &= o.ready;
                    merged.reroute |= o.reroute;
                    merged.tunnels.extend(o.tunnels);
                    merged.ssl_sessions.extend(o.ssl_sessions);
                    merged.ipsec_server_clients += o.ipsec_server_clients;
                    merged.published.extend(o.published);
                    if i == 0 {
                        merged.vpc_router = o.vpc_router;
                    }
                }
                // Unknown which tunnels it has (not applied since this control plane started): say nothing.
                Err(e) if halves.is_none() => return Err(e),
                Err(e) => {
                    tracing::debug!(gateway = %gateway_id, half = %unit, error = %e, "half of an HA gateway away");
                    merged.ready = false;
                    let down = TunnelObservation {
                        state: openvgw_dataplane::TunnelState::IkeSaNotEstablished,
                        health_ok: None,
                        bgp: None,
                    };
                    for t in halves.iter().flat_map(|h| h[i].iter()) {
                        merged.tunnels.insert(t.clone(), down.clone());
                    }
                }
            }
        }
        merged.published.sort();
        Ok(merged)
    }

    async fn initiate(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        let gateway_id = &self.unit_of_tunnel(gateway_id, tunnel_id);
        let op = call::Op::Initiate(TunnelRef { gateway_id: gateway_id.into(), tunnel_id: tunnel_id.into() });
        match self.call(gateway_id, None, op).await? {
            Some(r) => expect_done(gateway_id, r),
            None => Ok(()),
        }
    }

    async fn ssl_server_logs(
        &self,
        gateway_id: &str,
        server_id: &str,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<String>, DataplaneError> {
        let op =
            call::Op::SslServerLogs(LogRange { gateway_id: gateway_id.into(), id: server_id.into(), from_s, to_s });
        lines(gateway_id, self.call(gateway_id, None, op).await?)
    }

    async fn realised_gateways(&self) -> Result<Vec<String>, DataplaneError> {
        let sessions: Vec<Arc<Session>> = lock(&self.state).live.values().cloned().collect();
        let mut all = Vec::new();
        for s in sessions {
            let found = match s.call(call::Op::Realised(Empty {}), self.timing.call_timeout).await? {
                answer::Result::Gateways(g) => g.items,
                other => return Err(unexpected(&s.agent_id, other)),
            };
            // What an agent has and nobody holds is its own (a placement that was never stored): adopted, so
            // removing a leftover reaches the host that has it.
            let adopted: Vec<String> = {
                let mut st = lock(&self.state);
                let mut adopted = Vec::new();
                for g in &found {
                    if !st.assigned.contains_key(g) {
                        st.assigned.insert(g.clone(), s.agent_id.clone());
                        adopted.push(g.clone());
                    }
                }
                adopted
            };
            for g in &adopted {
                self.record_placement(g, &s.agent_id).await?;
            }
            all.extend(found.iter().map(|u| whole_id(u).to_string()));
        }
        // Both halves of an HA gateway are one gateway to the reconciler.
        all.sort();
        all.dedup();
        Ok(all)
    }

    async fn tunnel_logs(
        &self,
        gateway_id: &str,
        tunnel_id: &str,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<String>, DataplaneError> {
        let gateway_id = &self.unit_of_tunnel(gateway_id, tunnel_id);
        let op = call::Op::TunnelLogs(LogRange { gateway_id: gateway_id.into(), id: tunnel_id.into(), from_s, to_s });
        lines(gateway_id, self.call(gateway_id, None, op).await?)
    }

    async fn tunnel_sas(&self, gateway_id: &str, tunnel_id: &str) -> Result<Vec<SaStats>, DataplaneError> {
        let gateway_id = &self.unit_of_tunnel(gateway_id, tunnel_id);
        let op = call::Op::TunnelSas(TunnelRef { gateway_id: gateway_id.into(), tunnel_id: tunnel_id.into() });
        match self.call(gateway_id, None, op).await? {
            Some(answer::Result::Json(j)) => from_json(&j),
            Some(other) => Err(unexpected(gateway_id, other)),
            None => Ok(Vec::new()),
        }
    }

    async fn reset(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        let gateway_id = &self.unit_of_tunnel(gateway_id, tunnel_id);
        let op = call::Op::Reset(TunnelRef { gateway_id: gateway_id.into(), tunnel_id: tunnel_id.into() });
        match self.call(gateway_id, None, op).await? {
            Some(r) => expect_done(gateway_id, r),
            None => Ok(()),
        }
    }

    async fn sessions(&self, gateway_id: &str) -> Result<Vec<ClientSession>, DataplaneError> {
        match self.call(gateway_id, None, call::Op::Sessions(gateway_id.to_string())).await? {
            Some(answer::Result::Json(j)) => from_json(&j),
            Some(other) => Err(unexpected(gateway_id, other)),
            None => Ok(Vec::new()),
        }
    }

    fn hosts(&self) -> Vec<HostView> {
        let st = lock(&self.state);
        let mut held: HashMap<&str, usize> = HashMap::new();
        for agent in st.assigned.values() {
            *held.entry(agent.as_str()).or_default() += 1;
        }
        let live = st.live.values().map(|s| HostView {
            id: s.agent_id.clone(),
            driver: s.hello.driver.clone(),
            capacity: s.hello.capacity,
            attached: true,
            away_s: None,
            gateways: held.get(s.agent_id.as_str()).copied().unwrap_or(0),
            epoch: s.epoch,
        });
        let away = st.away.iter().filter(|(a, _)| !st.live.contains_key(*a)).map(|(a, since)| {
            let hello = st.hellos.get(a);
            HostView {
                id: a.clone(),
                driver: hello.map(|h| h.driver.clone()).unwrap_or_default(),
                capacity: hello.map_or(0, |h| h.capacity),
                attached: false,
                away_s: Some(since.elapsed().as_secs()),
                gateways: held.get(a.as_str()).copied().unwrap_or(0),
                epoch: 0,
            }
        });
        let mut out: Vec<HostView> = live.chain(away).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The host of the gateway, or of each half (`first, second`).
    fn host_of(&self, gateway_id: &str) -> Option<String> {
        match (self.agent_of(gateway_id), self.agent_of(&second_half_id(gateway_id))) {
            (Some(a), Some(b)) => Some(format!("{a}, {b}")),
            (a, b) => a.or(b),
        }
    }

    async fn disconnect(&self, gateway_id: &str, session_id: &str) -> Result<bool, DataplaneError> {
        let op = call::Op::Disconnect(SessionRef { gateway_id: gateway_id.into(), session_id: session_id.into() });
        match self.call(gateway_id, None, op).await? {
            Some(answer::Result::Found(f)) => Ok(f),
            Some(other) => Err(unexpected(gateway_id, other)),
            None => Ok(false),
        }
    }
}

fn lines(agent: &str, r: Option<answer::Result>) -> Result<Vec<String>, DataplaneError> {
    match r {
        Some(answer::Result::Lines(l)) => Ok(l.items),
        Some(other) => Err(unexpected(agent, other)),
        None => Ok(Vec::new()),
    }
}
