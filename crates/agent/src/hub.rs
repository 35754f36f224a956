//! The control plane's side: the agents' sessions, which agent holds which gateway, and the [`Driver`] the
//! reconciler calls (each call goes down the session of the gateway's agent and waits for its answer).
//!
//! A gateway is assigned to a live agent the first time it is applied (the one holding the fewest, within its
//! capacity) and stays there: a session that ends keeps its assignments, so an agent that reconnects serves its
//! gateways again, and calls for them meanwhile fail at once with a clear error (the reconciler retries).
//! Moving the gateways of an agent that stays away is the scheduler's, not the transport's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use openvgw_dataplane::{ClientSession, DataplaneError, Driver, GatewayIntent, GatewayObservation, SaStats};
use openvgw_pki::CaMaterial;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::control_server::{Control, ControlServer};
use crate::proto::{
    agent_message, answer, call, control_message, AgentMessage, Answer, Call, ControlMessage, Empty, Hello, JoinReply,
    JoinRequest, LogRange, SessionRef, TunnelRef, Welcome,
};
use crate::wire::{error_of, from_json, to_json};
use crate::{MAX_CSR, MAX_NAME, MAX_TOKEN};

/// Who may join and who may attach: join tokens and revocations live in the control plane's store.
pub trait Enrollment: Send + Sync + 'static {
    /// Takes a one-time join token for the agent `agent_id` (named `name`, certified under `serial_hex`): `false`
    /// when the token is unknown, used or expired.
    fn redeem(&self, token: &str, name: &str, agent_id: &str, serial_hex: &str) -> Result<bool, String>;
    /// Whether the agent may attach with the certificate of this serial (it has not been revoked).
    fn admitted(&self, agent_id: &str, serial_hex: &str) -> Result<bool, String>;
}

/// How an agent that attached is seen (`openvgw admin`, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub agent_id: String,
    pub driver: String,
    pub capacity: u32,
    pub epoch: u64,
    pub gateways: usize,
}

pub struct AgentHub {
    state: Mutex<HubState>,
    enrollment: Arc<dyn Enrollment>,
    ca: CaMaterial,
    call_timeout: Duration,
}

#[derive(Default)]
struct HubState {
    live: HashMap<String, Arc<Session>>,
    /// gateway → agent.
    assigned: HashMap<String, String>,
    changed: HashSet<String>,
    /// The last epoch given to each agent.
    epochs: HashMap<String, u64>,
}

struct Session {
    agent_id: String,
    epoch: u64,
    hello: Hello,
    out: mpsc::Sender<Result<ControlMessage, Status>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<answer::Result>>>,
    next_call: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is a whole insert or removal.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn failed(text: String) -> DataplaneError {
    DataplaneError::Failed(text)
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
    /// A hub whose agents are certified by `ca` and admitted by `enrollment`; a call that gets no answer within
    /// `call_timeout` fails (applying a gateway starts daemons: give it tens of seconds).
    pub fn new(enrollment: Arc<dyn Enrollment>, ca: CaMaterial, call_timeout: Duration) -> Arc<AgentHub> {
        Arc::new(AgentHub { state: Mutex::default(), enrollment, ca, call_timeout })
    }

    /// Asks the enrollment on a blocking thread (it reads and writes the store).
    async fn enrolled<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Enrollment) -> Result<T, String> + Send + 'static,
    ) -> Result<T, Status> {
        let e = self.enrollment.clone();
        match tokio::task::spawn_blocking(move || f(e.as_ref())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "agent enrollment failed");
                Err(Status::unavailable("the control plane's store failed; try again"))
            }
            Err(_) => Err(Status::internal("enrollment task failed")),
        }
    }

    /// The agents attached now, by id.
    pub fn agents(&self) -> Vec<AgentView> {
        let st = lock(&self.state);
        let mut held: BTreeMap<&str, usize> = BTreeMap::new();
        for agent in st.assigned.values() {
            *held.entry(agent.as_str()).or_default() += 1;
        }
        let mut out: Vec<AgentView> = st
            .live
            .values()
            .map(|s| AgentView {
                agent_id: s.agent_id.clone(),
                driver: s.hello.driver.clone(),
                capacity: s.hello.capacity,
                epoch: s.epoch,
                gateways: held.get(s.agent_id.as_str()).copied().unwrap_or(0),
            })
            .collect();
        out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        out
    }

    /// The agent holding a gateway, if any.
    pub fn agent_of(&self, gateway_id: &str) -> Option<String> {
        lock(&self.state).assigned.get(gateway_id).cloned()
    }

    /// The session serving a gateway; with `place`, an unassigned gateway is given to the live agent holding the
    /// fewest (ties: the smallest id) that has room. `Ok(None)`: nobody holds it and it was not to be placed.
    fn session_for(&self, gateway_id: &str, place: bool) -> Result<Option<Arc<Session>>, DataplaneError> {
        let mut st = lock(&self.state);
        if let Some(agent) = st.assigned.get(gateway_id) {
            return match st.live.get(agent) {
                Some(s) => Ok(Some(s.clone())),
                None => Err(failed(format!("the agent holding {gateway_id} ({agent}) is not connected"))),
            };
        }
        if !place {
            return Ok(None);
        }
        let mut held: HashMap<&str, u32> = HashMap::new();
        for agent in st.assigned.values() {
            *held.entry(agent.as_str()).or_default() += 1;
        }
        let chosen = st
            .live
            .values()
            .map(|s| (held.get(s.agent_id.as_str()).copied().unwrap_or(0), s))
            .filter(|(n, s)| s.hello.capacity == 0 || *n < s.hello.capacity)
            .min_by(|(n1, s1), (n2, s2)| n1.cmp(n2).then_with(|| s1.agent_id.cmp(&s2.agent_id)))
            .map(|(_, s)| s.clone());
        let Some(s) = chosen else {
            return Err(failed(format!("no connected agent has room for {gateway_id}")));
        };
        st.assigned.insert(gateway_id.to_string(), s.agent_id.clone());
        Ok(Some(s))
    }

    async fn call(
        &self,
        gateway_id: &str,
        place: bool,
        op: call::Op,
    ) -> Result<Option<answer::Result>, DataplaneError> {
        match self.session_for(gateway_id, place)? {
            Some(s) => s.call(op, self.call_timeout).await.map(Some),
            None => Ok(None),
        }
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
        s
    }

    fn close(&self, s: &Session) {
        let mut st = lock(&self.state);
        if st.live.get(&s.agent_id).is_some_and(|l| l.epoch == s.epoch) {
            st.live.remove(&s.agent_id);
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
    /// HTTP/2 keep-alive pings within `keepalive` twice over, and its session closed.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        server: openvgw_pki::CertifiedKey,
        keepalive: Duration,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&server.cert_pem, &server.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca.cert_pem))
            // Join is called before the agent has a certificate; Attach insists on one.
            .client_auth_optional(true);
        Server::builder()
            .tls_config(tls)?
            .http2_keepalive_interval(Some(keepalive))
            .http2_keepalive_timeout(Some(keepalive))
            .timeout(Duration::from_secs(30))
            .add_service(self.service())
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
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
        let welcome = Welcome { agent_id: agent_id.clone(), epoch: session.epoch };
        let _ = tx.send(Ok(ControlMessage { body: Some(control_message::Body::Welcome(welcome)) })).await;
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

    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let gw = &intent.gateway_id;
        let r = self.call(gw, true, call::Op::Apply(to_json(intent)?)).await?;
        match r {
            Some(r) => expect_done(gw, r),
            None => Err(failed(format!("{gw} could not be placed"))),
        }
    }

    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        match self.call(gateway_id, false, call::Op::Remove(gateway_id.to_string())).await? {
            Some(r) => {
                expect_done(gateway_id, r)?;
                lock(&self.state).assigned.remove(gateway_id);
                Ok(())
            }
            // Held by nobody: nothing to remove.
            None => Ok(()),
        }
    }

    fn take_changed(&self) -> Option<HashSet<String>> {
        let mut st = lock(&self.state);
        let changed = std::mem::take(&mut st.changed);
        if st.live.values().all(|s| s.hello.reports_changes) {
            Some(changed)
        } else {
            None
        }
    }

    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        match self.call(gateway_id, false, call::Op::Observe(gateway_id.to_string())).await? {
            Some(answer::Result::Json(j)) => from_json(&j),
            Some(other) => Err(unexpected(gateway_id, other)),
            // Not applied anywhere: nothing is there.
            None => Ok(GatewayObservation::default()),
        }
    }

    async fn initiate(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        let op = call::Op::Initiate(TunnelRef { gateway_id: gateway_id.into(), tunnel_id: tunnel_id.into() });
        match self.call(gateway_id, false, op).await? {
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
        lines(gateway_id, self.call(gateway_id, false, op).await?)
    }

    async fn realised_gateways(&self) -> Result<Vec<String>, DataplaneError> {
        let sessions: Vec<Arc<Session>> = lock(&self.state).live.values().cloned().collect();
        let mut all = Vec::new();
        for s in sessions {
            let found = match s.call(call::Op::Realised(Empty {}), self.call_timeout).await? {
                answer::Result::Gateways(g) => g.items,
                other => return Err(unexpected(&s.agent_id, other)),
            };
            // What an agent has and nobody holds is its own (the control plane restarted): adopted, so removing
            // a leftover reaches the host that has it.
            let mut st = lock(&self.state);
            for g in &found {
                st.assigned.entry(g.clone()).or_insert_with(|| s.agent_id.clone());
            }
            all.extend(found);
        }
        Ok(all)
    }

    async fn tunnel_logs(
        &self,
        gateway_id: &str,
        tunnel_id: &str,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<String>, DataplaneError> {
        let op = call::Op::TunnelLogs(LogRange { gateway_id: gateway_id.into(), id: tunnel_id.into(), from_s, to_s });
        lines(gateway_id, self.call(gateway_id, false, op).await?)
    }

    async fn tunnel_sas(&self, gateway_id: &str, tunnel_id: &str) -> Result<Vec<SaStats>, DataplaneError> {
        let op = call::Op::TunnelSas(TunnelRef { gateway_id: gateway_id.into(), tunnel_id: tunnel_id.into() });
        match self.call(gateway_id, false, op).await? {
            Some(answer::Result::Json(j)) => from_json(&j),
            Some(other) => Err(unexpected(gateway_id, other)),
            None => Ok(Vec::new()),
        }
    }

    async fn reset(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        let op = call::Op::Reset(TunnelRef { gateway_id: gateway_id.into(), tunnel_id: tunnel_id.into() });
        match self.call(gateway_id, false, op).await? {
            Some(r) => expect_done(gateway_id, r),
            None => Ok(()),
        }
    }

    async fn sessions(&self, gateway_id: &str) -> Result<Vec<ClientSession>, DataplaneError> {
        match self.call(gateway_id, false, call::Op::Sessions(gateway_id.to_string())).await? {
            Some(answer::Result::Json(j)) => from_json(&j),
            Some(other) => Err(unexpected(gateway_id, other)),
            None => Ok(Vec::new()),
        }
    }

    async fn disconnect(&self, gateway_id: &str, session_id: &str) -> Result<bool, DataplaneError> {
        let op = call::Op::Disconnect(SessionRef { gateway_id: gateway_id.into(), session_id: session_id.into() });
        match self.call(gateway_id, false, op).await? {
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
