//! The agent's side: join once, then attach and answer the control plane's calls with the host's driver, reporting
//! what the driver saw change. The agent dials out; it keeps no state of its own beyond its key and certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use openvgw_dataplane::{DataplaneError, Driver};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity as TlsIdentity};

use crate::proto::control_client::ControlClient;
use crate::proto::{
    agent_message, answer, call, control_message, AgentMessage, Answer, Call, Changed, Empty, Hello, JoinRequest,
    Strings,
};
use crate::wire::{failure, from_json, to_json};
use crate::CONTROL_NAME;

/// Where the control plane is and how to recognise it.
#[derive(Clone)]
pub struct Endpoint {
    /// `https://host:port`.
    pub url: String,
    /// The CA the control plane's certificate (and the agent's) is issued by.
    pub ca_pem: String,
}

/// What an agent is known by: its id, its certificate and its key (which never left the host).
#[derive(Clone)]
pub struct Identity {
    pub agent_id: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("agent_id", &self.agent_id).field("key_pem", &"<redacted>").finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot reach the control plane: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the control plane refused: {}: {}", .0.code(), .0.message())]
    Refused(#[from] tonic::Status),
    #[error("{0}")]
    Local(String),
}

fn channel(ep: &Endpoint, identity: Option<&Identity>) -> Result<tonic::transport::Endpoint, AgentError> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ep.ca_pem)).domain_name(CONTROL_NAME);
    if let Some(id) = identity {
        tls = tls.identity(TlsIdentity::from_pem(&id.cert_pem, &id.key_pem));
    }
    Ok(Channel::from_shared(ep.url.clone())
        .map_err(|e| AgentError::Local(format!("control plane address {:?}: {e}", ep.url)))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true))
}

/// Exchanges a one-time join token for this host's identity: the key is generated here, only its certificate
/// request travels.
pub async fn join(ep: &Endpoint, token: &str, name: &str) -> Result<Identity, AgentError> {
    // The request's subject is not taken (the control plane names the agent): the name travels beside it.
    let (key_pem, csr_pem) =
        openvgw_pki::new_key_and_request("openvgw agent").map_err(|e| AgentError::Local(e.to_string()))?;
    let mut client = ControlClient::new(channel(ep, None)?.connect().await?);
    let reply = client.join(JoinRequest { token: token.into(), name: name.into(), csr_pem }).await?.into_inner();
    Ok(Identity { agent_id: reply.agent_id, cert_pem: reply.certificate_pem, key_pem })
}

/// What keeps a partitioned agent from serving gateways the control plane may have moved: when it last heard from
/// the control plane and how long it may go without (the control plane's `fence_after`). Past that, every gateway
/// the driver has is removed ([`Lease::fence_if_expired`]); a new session waits until that is done.
///
/// With a file ([`Lease::resume`]) the lease outlives the process: a restarted agent goes on counting from what its
/// predecessor heard, and a guard process ([`LeaseRecord`]) fences the host's gateways if the agent dies and no
/// other takes its place in time.
#[derive(Default)]
pub struct Lease {
    state: Mutex<LeaseState>,
    gate: tokio::sync::Mutex<()>,
    file: Option<PathBuf>,
}

#[derive(Default)]
struct LeaseState {
    last_heard: Option<Instant>,
    fence_after: Option<Duration>,
    written: Option<Instant>,
}

/// A moment on this host's boot clock (`CLOCK_BOOTTIME`): every process of the host reads the same clock, and it is
/// never stepped, where the wall clock may be (by NTP or by hand) and would move a guard's deadline with it. It
/// counts from this boot only, so a time carries the boot it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BootTime {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot: String,
    pub ms: u64,
}

impl BootTime {
    pub fn now() -> BootTime {
        static BOOT: OnceLock<String> = OnceLock::new();
        let boot = BOOT.get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
        });
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let ms = u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1000)
            + u64::try_from(t.tv_nsec / 1_000_000).unwrap_or(0);
        BootTime { boot: boot.clone(), ms }
    }

    /// `earlier` as a moment of this boot; `None` for a moment of another boot.
    fn since(&self, earlier: &BootTime) -> Option<Duration> {
        (earlier.boot == self.boot).then(|| Duration::from_millis(self.ms.saturating_sub(earlier.ms)))
    }

    fn before(&self, ago: Duration) -> BootTime {
        BootTime {
            boot: self.boot.clone(),
            ms: self.ms.saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// The lease as its file holds it (JSON): who holds it, when it last heard from the control plane (`None`: nothing
/// to fence) and the limit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord {
    pub pid: u32,
    pub last_heard: Option<BootTime>,
    pub fence_after_ms: u64,
}

impl LeaseRecord {
    pub fn read(path: &Path) -> Option<LeaseRecord> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Replaces the file at once (a reader sees the old record or the new one, never half of one).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }

    /// Whether the limit has passed at `now`. A word heard in another boot has: whatever it covered went with
    /// that boot.
    pub fn expired(&self, now: &BootTime) -> bool {
        self.last_heard
            .as_ref()
            .is_some_and(|t| now.since(t).is_none_or(|ago| ago >= Duration::from_millis(self.fence_after_ms)))
    }
}

/// How often a lease file is rewritten at most (it may lag by this; the guard then fences that much earlier).
const WRITE_EVERY: Duration = Duration::from_millis(200);

impl Lease {
    /// The lease kept in `path`, taken over from the process that held it before (its last word from the control
    /// plane and its limit carry on), and written at once with this process as the holder.
    pub fn resume(path: PathBuf) -> Lease {
        let mut st = LeaseState::default();
        if let Some(r) = LeaseRecord::read(&path) {
            st.fence_after = (r.fence_after_ms > 0).then(|| Duration::from_millis(r.fence_after_ms));
            // A word from another boot is as old as can be: the next check fences (there is nothing left of it).
            let now = BootTime::now();
            st.last_heard = r.last_heard.map(|t| {
                let ago = now.since(&t).unwrap_or(Duration::MAX);
                Instant::now()
                    .checked_sub(ago)
                    .or_else(|| Instant::now().checked_sub(st.fence_after.unwrap_or_default()))
                    .unwrap_or_else(Instant::now)
            });
        }
        let lease = Lease { state: Mutex::new(st), gate: tokio::sync::Mutex::default(), file: Some(path) };
        lease.write(&mut lease.state(), true);
        lease
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the file (when there is one): at once with `now`, otherwise at most every [`WRITE_EVERY`].
    fn write(&self, st: &mut LeaseState, now: bool) {
        let Some(path) = &self.file else { return };
        if !now && st.written.is_some_and(|w| w.elapsed() < WRITE_EVERY) {
            return;
        }
        let record = LeaseRecord {
            pid: std::process::id(),
            last_heard: st.last_heard.map(|t| BootTime::now().before(t.elapsed())),
            fence_after_ms: st.fence_after.map_or(0, |f| u64::try_from(f.as_millis()).unwrap_or(u64::MAX)),
        };
        match record.write(path) {
            Ok(()) => st.written = Some(Instant::now()),
            Err(e) => tracing::error!(file = %path.display(), error = %e, "cannot write the lease file"),
        }
    }

    fn heard(&self) {
        let mut st = self.state();
        if st.fence_after.is_some() {
            st.last_heard = Some(Instant::now());
            self.write(&mut st, false);
        }
    }

    /// A session began: counts from now, with the control plane's limit (`0`: never fence).
    async fn welcomed(&self, fence_after_ms: u64) {
        // A fence under way finishes before the session's first call runs.
        let _gate = self.gate.lock().await;
        let mut st = self.state();
        st.fence_after = (fence_after_ms > 0).then(|| Duration::from_millis(fence_after_ms));
        st.last_heard = Some(Instant::now());
        self.write(&mut st, true);
    }

    fn expired(&self) -> bool {
        let st = self.state();
        matches!((st.last_heard, st.fence_after), (Some(t), Some(f)) if t.elapsed() >= f)
    }

    /// Removes every gateway the driver has once the control plane has been silent past its limit. Returns how
    /// many were removed; `None` when the lease holds (or a removal failed: the next call tries again).
    pub async fn fence_if_expired(&self, driver: &dyn Driver) -> Option<usize> {
        let _gate = self.gate.lock().await;
        if !self.expired() {
            return None;
        }
        let removed = fence(driver).await?;
        // Disarmed until the next session: there is nothing left to fence.
        let mut st = self.state();
        st.last_heard = None;
        self.write(&mut st, true);
        Some(removed)
    }
}

/// Removes every gateway the driver has; how many, or `None` when one could not be (the caller tries again).
pub async fn fence(driver: &dyn Driver) -> Option<usize> {
    let gateways = match driver.realised_gateways().await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "fencing: listing the gateways failed");
            return None;
        }
    };
    let mut all = true;
    for g in &gateways {
        if let Err(e) = driver.remove(g).await {
            tracing::error!(gateway = %g, error = %e, "fencing: removing a gateway failed");
            all = false;
        }
    }
    if !all {
        return None;
    }
    tracing::warn!(
        removed = gateways.len(),
        "fenced: no word from the control plane within its limit, so this host no longer serves its gateways \
         (they may have been moved); they come back when the control plane places them here again"
    );
    Some(gateways.len())
}

/// How often the driver is asked what changed.
const CHANGES_EVERY: Duration = Duration::from_millis(250);

fn message(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

/// An agent: its identity and driver, and what its sessions (one per control-plane replica) share: the lease, and
/// the driver's changes, which every session reports (each replica's reconciler may be the one acting).
pub struct Host {
    identity: Identity,
    driver: Arc<dyn Driver>,
    capacity: u32,
    reports_changes: bool,
    lease: Lease,
    changes: broadcast::Sender<Arc<Vec<String>>>,
}

impl Host {
    pub fn new(identity: Identity, driver: Arc<dyn Driver>, capacity: u32) -> Arc<Host> {
        Host::with_lease(identity, driver, capacity, Lease::default())
    }

    /// With a lease of the caller's ([`Lease::resume`]: one that outlives the process).
    pub fn with_lease(identity: Identity, driver: Arc<dyn Driver>, capacity: u32, lease: Lease) -> Arc<Host> {
        // Asked once, here: whether the driver reports changes (what it had pending is observed again at attach).
        let reports_changes = driver.take_changed().is_some();
        let (changes, _) = broadcast::channel(64);
        Arc::new(Host { identity, driver, capacity, reports_changes, lease, changes })
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// One session with one control plane: attaches, answers calls until the control plane ends it, the connection
    /// fails or goes silent past the control plane's limit, or `stop` turns true. The session's epoch is returned
    /// when it ends cleanly.
    pub async fn attach(&self, ep: &Endpoint, mut stop: watch::Receiver<bool>) -> Result<u64, AgentError> {
        let mut client = ControlClient::new(channel(ep, Some(&self.identity))?.connect().await?);
        let (tx, rx) = mpsc::channel::<AgentMessage>(256);
        let mut changes = self.changes.subscribe();
        let hello = Hello {
            driver: self.driver.name().to_string(),
            capacity: self.capacity,
            reports_changes: self.reports_changes,
        };
        tx.send(message(agent_message::Body::Hello(hello))).await.map_err(|_| AgentError::Local("closed".into()))?;
        let mut inbound = client.attach(ReceiverStream::new(rx)).await?.into_inner();
        let mut epoch = 0;
        // This session's own silence limit: another replica's heartbeats keep the lease, not this connection.
        let (mut heard, mut limit) = (Instant::now(), None::<Duration>);
        let mut tick = tokio::time::interval(CHANGES_EVERY);
        loop {
            tokio::select! {
                msg = inbound.message() => {
                    let Some(m) = msg? else { return Ok(epoch) };
                    heard = Instant::now();
                    match m.body {
                        Some(control_message::Body::Welcome(w)) => {
                            epoch = w.epoch;
                            limit = (w.fence_after_ms > 0).then(|| Duration::from_millis(w.fence_after_ms));
                            self.lease.welcomed(w.fence_after_ms).await;
                            tracing::info!(agent = %w.agent_id, epoch, control = %ep.url, "attached to the control plane");
                        }
                        Some(control_message::Body::Heartbeat(_)) => self.lease.heard(),
                        Some(control_message::Body::Call(c)) => {
                            self.lease.heard();
                            let (driver, tx) = (self.driver.clone(), tx.clone());
                            // Calls run side by side: a slow apply of one gateway does not hold another's observe.
                            tokio::spawn(async move {
                                let a = answer(driver.as_ref(), c).await;
                                let _ = tx.send(message(agent_message::Body::Answer(a))).await;
                            });
                        }
                        None => {}
                    }
                }
                changed = changes.recv() => match changed {
                    Ok(ids) => {
                        let c = Changed { gateway_ids: ids.as_ref().clone() };
                        let _ = tx.send(message(agent_message::Body::Changed(c))).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "changes were lost on a slow session; the control plane resyncs")
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(epoch),
                },
                _ = tick.tick() => {
                    // A session that went silent (a half-open connection keep-alive has not caught yet) is dropped.
                    if limit.is_some_and(|l| heard.elapsed() >= l) {
                        return Err(AgentError::Local("no word from the control plane within its limit".into()));
                    }
                }
                _ = stop.changed() => return Ok(epoch),
            }
        }
    }

    /// Keeps a session with each control plane (replicas: every one), attaching again and again (waiting 1 s,
    /// doubling to 10 s, after a failed attempt) until `stop` turns true; the driver's changes go to every session,
    /// and when none has heard from a control plane within its limit the host's gateways are removed ([`Lease`]).
    pub async fn run(self: Arc<Self>, endpoints: Vec<Endpoint>, stop: watch::Receiver<bool>) {
        let watchdog = tokio::spawn({
            let host = self.clone();
            async move {
                let mut tick = tokio::time::interval(CHANGES_EVERY);
                loop {
                    tick.tick().await;
                    host.lease.fence_if_expired(host.driver.as_ref()).await;
                    if host.reports_changes {
                        if let Some(changed) = host.driver.take_changed().filter(|c| !c.is_empty()) {
                            // No session attached: nobody to tell, and a new session observes everything anyway.
                            let _ = host.changes.send(Arc::new(changed.into_iter().collect()));
                        }
                    }
                }
            }
        });
        let sessions: Vec<_> = endpoints
            .into_iter()
            .map(|ep| {
                let (host, stop) = (self.clone(), stop.clone());
                tokio::spawn(async move { host.keep_attached(ep, stop).await })
            })
            .collect();
        for s in sessions {
            let _ = s.await;
        }
        watchdog.abort();
    }

    async fn keep_attached(&self, ep: Endpoint, stop: watch::Receiver<bool>) {
        let mut wait = Duration::from_secs(1);
        while !*stop.borrow() {
            match self.attach(&ep, stop.clone()).await {
                Ok(epoch) => {
                    tracing::warn!(epoch, control = %ep.url, "session with the control plane ended");
                    wait = Duration::from_secs(1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, control = %ep.url, retry_in_s = wait.as_secs(),
                        "cannot attach to the control plane");
                }
            }
            let mut stop = stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }
}

fn done(r: Result<(), DataplaneError>) -> answer::Result {
    r.map_or_else(failure, |()| answer::Result::Done(Empty {}))
}

fn json<T: serde::Serialize>(r: Result<T, DataplaneError>) -> answer::Result {
    match r.and_then(|v| to_json(&v)) {
        Ok(j) => answer::Result::Json(j),
        Err(e) => failure(e),
    }
}

fn lines(r: Result<Vec<String>, DataplaneError>) -> answer::Result {
    r.map_or_else(failure, |items| answer::Result::Lines(Strings { items }))
}

/// One call on the host's driver.
async fn answer(d: &dyn Driver, c: Call) -> Answer {
    use call::Op;
    let result = match c.op {
        Some(Op::Apply(intent)) => match from_json(&intent) {
            Ok(intent) => done(d.apply(&intent).await),
            Err(e) => failure(e),
        },
        Some(Op::Remove(g)) => done(d.remove(&g).await),
        Some(Op::Observe(g)) => json(d.observe(&g).await),
        Some(Op::Initiate(t)) => done(d.initiate(&t.gateway_id, &t.tunnel_id).await),
        Some(Op::Reset(t)) => done(d.reset(&t.gateway_id, &t.tunnel_id).await),
        Some(Op::TunnelSas(t)) => json(d.tunnel_sas(&t.gateway_id, &t.tunnel_id).await),
        Some(Op::TunnelLogs(l)) => lines(d.tunnel_logs(&l.gateway_id, &l.id, l.from_s, l.to_s).await),
        Some(Op::SslServerLogs(l)) => lines(d.ssl_server_logs(&l.gateway_id, &l.id, l.from_s, l.to_s).await),
        Some(Op::Sessions(g)) => json(d.sessions(&g).await),
        Some(Op::Disconnect(s)) => {
            d.disconnect(&s.gateway_id, &s.session_id).await.map_or_else(failure, answer::Result::Found)
        }
        Some(Op::Realised(Empty {})) => {
            d.realised_gateways().await.map_or_else(failure, |items| answer::Result::Gateways(Strings { items }))
        }
        // A call this agent does not know (a newer control plane): said so, not ignored.
        None => failure(DataplaneError::Failed("a call this agent does not know".into())),
    };
    Answer { id: c.id, result: Some(result) }
}
