//! The agent protocol over real TCP and mutual TLS on loopback: agents join with one-time tokens, attach with their
//! certificates, and the hub's calls reach the driver of the agent holding each gateway. The drivers here are the
//! simulated one (the netns driver behind an agent is the e2e suite's).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed assertion

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openvgw_agent::host::{self, AgentError, Endpoint, Identity};
use openvgw_agent::hub::{AgentHub, Placement, Registry, Timing};
use openvgw_agent::port::PortLimits;
use openvgw_agent::proto::control_client::ControlClient;
use openvgw_agent::proto::{agent_message, AgentMessage, Hello};
use openvgw_dataplane::simulated::SimulatedDriver;
use openvgw_dataplane::{
    second_half_id, vpc, DataplaneError, Driver, GatewayIntent, GatewayObservation, RouteIntent, TunnelIntent,
    VpcRouter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Join tokens and certified agents, in memory (the store's version is `openvgw admin agent …`).
#[derive(Default)]
struct Tokens {
    tokens: Mutex<HashSet<String>>,
    /// agent → (name, serial).
    agents: Mutex<HashMap<String, (String, String)>>,
    revoked: Mutex<HashSet<String>>,
    /// gateway → (agent, VPC), as the hub recorded it.
    placed: Mutex<HashMap<String, (String, String)>>,
}

impl Tokens {
    fn with(tokens: &[&str]) -> Arc<Tokens> {
        let t = Tokens::default();
        t.tokens.lock().unwrap().extend(tokens.iter().map(|s| s.to_string()));
        Arc::new(t)
    }
}

impl Registry for Tokens {
    fn redeem(&self, token: &str, name: &str, agent_id: &str, serial_hex: &str) -> Result<bool, String> {
        if !self.tokens.lock().unwrap().remove(token) {
            return Ok(false);
        }
        self.agents.lock().unwrap().insert(agent_id.into(), (name.into(), serial_hex.into()));
        Ok(true)
    }

    fn admitted(&self, agent_id: &str, serial_hex: &str) -> Result<bool, String> {
        let known = self.agents.lock().unwrap().get(agent_id).is_some_and(|(_, s)| s == serial_hex);
        Ok(known && !self.revoked.lock().unwrap().contains(agent_id))
    }

    fn placements(&self) -> Result<Vec<Placement>, String> {
        let placed = self.placed.lock().unwrap();
        Ok(placed
            .iter()
            .map(|(g, (a, v))| Placement { gateway_id: g.clone(), agent_id: a.clone(), vpc_id: v.clone() })
            .collect())
    }

    fn place(&self, p: &Placement) -> Result<(), String> {
        self.placed.lock().unwrap().insert(p.gateway_id.clone(), (p.agent_id.clone(), p.vpc_id.clone()));
        Ok(())
    }

    fn unplace(&self, gateway_id: &str) -> Result<(), String> {
        self.placed.lock().unwrap().remove(gateway_id);
        Ok(())
    }
}

struct ControlPlane {
    hub: Arc<AgentHub>,
    tokens: Arc<Tokens>,
    ep: Endpoint,
    ca: openvgw_pki::CaMaterial,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn control_plane(tokens: &[&str]) -> ControlPlane {
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    control_plane_with(Tokens::with(tokens), ca, Duration::from_secs(3600)).await
}

/// A control plane on a registry that may already hold placements and agents (a restarted one), with its CA.
async fn control_plane_with(tokens: Arc<Tokens>, ca: openvgw_pki::CaMaterial, dead_after: Duration) -> ControlPlane {
    control_plane_limited(tokens, ca, dead_after, PortLimits::default()).await
}

async fn control_plane_limited(
    tokens: Arc<Tokens>,
    ca: openvgw_pki::CaMaterial,
    dead_after: Duration,
    limits: PortLimits,
) -> ControlPlane {
    let server = openvgw_pki::issue_server(&ca, openvgw_agent::CONTROL_NAME, &[]).unwrap();
    let placed = tokens.placements().unwrap();
    let timing = Timing { call_timeout: Duration::from_secs(10), dead_after };
    let hub = AgentHub::new(tokens.clone(), ca.clone(), timing, placed);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.clone().serve(listener, server, Duration::from_secs(1), limits, async {
        let _ = stopped.await;
    }));
    ControlPlane { hub, tokens, ep: Endpoint { url, ca_pem: ca.cert_pem.clone() }, ca, _stop: stop }
}

/// A simulated driver that reports the gateways it applied as changed.
struct Reporting {
    inner: SimulatedDriver,
    changed: Mutex<HashSet<String>>,
    /// (gateway, tunnel) of every initiate call.
    initiated: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Driver for Reporting {
    fn name(&self) -> &'static str {
        "simulated"
    }
    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        self.inner.apply(intent).await?;
        self.changed.lock().unwrap().insert(intent.gateway_id.clone());
        Ok(())
    }
    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        self.inner.remove(gateway_id).await
    }
    fn take_changed(&self) -> Option<HashSet<String>> {
        Some(std::mem::take(&mut *self.changed.lock().unwrap()))
    }
    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        self.inner.observe(gateway_id).await
    }
    async fn initiate(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        self.initiated.lock().unwrap().push((gateway_id.into(), tunnel_id.into()));
        Err(DataplaneError::Unsupported { backend: "simulated", what: "negotiating".into() })
    }
    async fn ssl_server_logs(&self, g: &str, s: &str, from: i64, to: i64) -> Result<Vec<String>, DataplaneError> {
        self.inner.ssl_server_logs(g, s, from, to).await
    }
    async fn realised_gateways(&self) -> Result<Vec<String>, DataplaneError> {
        self.inner.realised_gateways().await
    }
}

fn reporting() -> Arc<Reporting> {
    Arc::new(Reporting {
        inner: SimulatedDriver::new(Duration::ZERO, Duration::ZERO),
        changed: Mutex::default(),
        initiated: Mutex::default(),
    })
}

/// A gateway in a VPC of its own.
fn intent(gateway_id: &str) -> GatewayIntent {
    intent_in(gateway_id, &format!("vpc-of-{gateway_id}"))
}

fn intent_in(gateway_id: &str, vpc: &str) -> GatewayIntent {
    GatewayIntent {
        gateway_id: gateway_id.into(),
        tenant_id: "t-1".into(),
        generation: 1,
        public_ips: vec![Ipv4Addr::new(192, 0, 2, 10)],
        vpc_id: vpc.into(),
        vpc_cidr: None,
        private_ip: Ipv4Addr::new(10, 0, 0, 2),
        second_private_ip: None,
        bandwidth_mbps: 10,
        tunnels: Vec::new(),
        ssl_servers: Vec::new(),
        ipsec_server: None,
        routes: Vec::new(),
        policy_routes: Vec::new(),
        propagate_learned: false,
        vpc_router: Default::default(),
    }
}

/// A running agent: its driver, and how to stop it.
struct Agent {
    id: Identity,
    driver: Arc<Reporting>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(ep: &Endpoint, id: Identity, driver: Arc<Reporting>) -> Agent {
    start_with_capacity(ep, id, driver, 0)
}

/// An agent that takes at most `capacity` gateways (0: any number).
fn start_with_capacity(ep: &Endpoint, id: Identity, driver: Arc<Reporting>, capacity: u32) -> Agent {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(host::Host::new(id.clone(), driver.clone(), capacity).run(vec![ep.clone()], stopped));
    Agent { id, driver, stop, task }
}

/// Waits (up to 20 s) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn gateways_are_spread_over_agents_and_every_call_reaches_the_one_holding_it() {
    let cp = control_plane(&["tok-a", "tok-b"]).await;
    let a = start(&cp.ep, host::join(&cp.ep, "tok-a", "host-a").await.unwrap(), reporting());
    let b = start(&cp.ep, host::join(&cp.ep, "tok-b", "host-b").await.unwrap(), reporting());
    assert_ne!(a.id.agent_id, b.id.agent_id);
    until("two agents attached", || cp.hub.agents().len() == 2).await;

    let gateways = ["vpn-1", "vpn-2", "vpn-3", "vpn-4"];
    for g in gateways {
        cp.hub.apply(&intent(g)).await.unwrap();
    }
    // Spread by what each holds: two each; and each gateway is on the driver of the agent the hub names.
    let views = cp.hub.agents();
    assert_eq!(views.iter().map(|v| v.gateways).collect::<Vec<_>>(), vec![2, 2], "{views:?}");
    for g in gateways {
        let holder = cp.hub.agent_of(g).unwrap();
        let (mine, other) = if holder == a.id.agent_id { (&a, &b) } else { (&b, &a) };
        assert!(mine.driver.inner.realised_gateways().await.unwrap().contains(&g.to_string()), "{g} on {holder}");
        assert!(!other.driver.inner.realised_gateways().await.unwrap().contains(&g.to_string()));
        let obs = cp.hub.observe(g).await.unwrap();
        assert!(obs.ready, "{g}: {obs:?}");
    }
    // The driver's answers of every kind come back typed: an error keeps its kind, lists are lists.
    let err = cp.hub.initiate("vpn-1", "tun-1").await.unwrap_err();
    assert!(matches!(err, DataplaneError::Unsupported { backend: "simulated", .. }), "{err:?}");
    assert_eq!(cp.hub.ssl_server_logs("vpn-1", "vss-1", 0, i64::MAX).await.unwrap(), Vec::<String>::new());
    let mut realised = cp.hub.realised_gateways().await.unwrap();
    realised.sort();
    assert_eq!(realised, gateways);
    // What each agent's driver saw change reaches the reconciler's question.
    let mut seen = HashSet::new();
    until("every applied gateway reported changed", || {
        seen.extend(cp.hub.take_changed().expect("both agents report changes"));
        seen.len() == gateways.len()
    })
    .await;

    // Every placement is recorded where the control plane keeps it.
    let recorded = cp.tokens.placed.lock().unwrap().clone();
    for g in gateways {
        assert_eq!(recorded.get(g).map(|(a, _)| a), cp.hub.agent_of(g).as_ref(), "{g}");
        assert_eq!(recorded.get(g).map(|(_, v)| v.clone()), Some(format!("vpc-of-{g}")), "the VPC is recorded");
    }
    // A gateway nobody holds: nothing to observe, nothing to remove.
    assert_eq!(cp.hub.observe("vpn-none").await.unwrap(), GatewayObservation::default());
    cp.hub.remove("vpn-none").await.unwrap();
    // Removing reaches the holder and frees the gateway.
    cp.hub.remove("vpn-1").await.unwrap();
    assert_eq!(cp.hub.agent_of("vpn-1"), None);
    assert!(!cp.tokens.placed.lock().unwrap().contains_key("vpn-1"), "the record goes with the gateway");
    let mut left = cp.hub.realised_gateways().await.unwrap();
    left.sort();
    assert_eq!(left, ["vpn-2", "vpn-3", "vpn-4"]);

    for agent in [a, b] {
        agent.stop.send(true).unwrap();
        agent.task.await.unwrap();
    }
}

#[tokio::test]
async fn a_gateway_stays_with_its_agent_across_a_reconnect_and_calls_meanwhile_fail_at_once() {
    let cp = control_plane(&["tok-a"]).await;
    let id = host::join(&cp.ep, "tok-a", "host-a").await.unwrap();
    let driver = reporting();
    let a = start(&cp.ep, id.clone(), driver.clone());
    until("the agent attached", || cp.hub.agents().len() == 1).await;
    cp.hub.apply(&intent("vpn-1")).await.unwrap();
    let first_epoch = cp.hub.agents()[0].epoch;

    a.stop.send(true).unwrap();
    a.task.await.unwrap();
    until("the session closed", || cp.hub.agents().is_empty()).await;
    assert!(cp.hub.sweep().await.is_empty(), "away is not dead: nothing moves before dead_after");
    let started = Instant::now();
    let err = cp.hub.observe("vpn-1").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "a call for an absent agent does not wait for it");
    assert!(err.to_string().contains("is not connected"), "{err}");
    assert!(cp.hub.apply(&intent("vpn-2")).await.unwrap_err().to_string().contains("no connected agent"));

    // The same agent (same certificate, same driver) comes back: a new epoch, and its gateway is served again.
    let again = start(&cp.ep, id, driver);
    until("the agent attached again", || cp.hub.agents().len() == 1).await;
    assert!(cp.hub.agents()[0].epoch > first_epoch);
    assert_eq!(cp.hub.agent_of("vpn-1").as_deref(), Some(again.id.agent_id.as_str()));
    assert!(cp.hub.observe("vpn-1").await.unwrap().ready);
    again.stop.send(true).unwrap();
    again.task.await.unwrap();
}

#[tokio::test]
async fn joining_and_attaching_are_refused_without_the_right_token_or_certificate() {
    let cp = control_plane(&["tok-a"]).await;
    let refused = |r: Result<Identity, AgentError>, code: tonic::Code| match r {
        Err(AgentError::Refused(s)) => assert_eq!(s.code(), code, "{s:?}"),
        other => panic!("expected {code:?}, got {other:?}"),
    };
    refused(host::join(&cp.ep, "tok-unknown", "host-a").await, tonic::Code::PermissionDenied);
    refused(host::join(&cp.ep, &"t".repeat(500), "host-a").await, tonic::Code::InvalidArgument);
    refused(host::join(&cp.ep, "tok-a", "bad\nname").await, tonic::Code::InvalidArgument);
    // The refusals above did not spend the token; the first use does.
    let id = host::join(&cp.ep, "tok-a", "host-a").await.unwrap();
    refused(host::join(&cp.ep, "tok-a", "host-b").await, tonic::Code::PermissionDenied);

    let (_stop, stopped) = watch::channel(false);
    let attach = |id: Identity| {
        let (ep, stopped) = (cp.ep.clone(), stopped.clone());
        async move { host::Host::new(id, reporting(), 0).attach(&ep, stopped).await }
    };
    // A certificate of the hub's CA for an agent that never joined (here: signed for a made-up id).
    let (key_pem, csr) = openvgw_pki::new_key_and_request("x").unwrap();
    let (cert_pem, _, _) = openvgw_pki::sign_client_request(&cp.ca, &csr, "agt-forged", 1).unwrap();
    let forged = Identity { agent_id: "agt-forged".into(), cert_pem, key_pem };
    match attach(forged).await {
        Err(AgentError::Refused(s)) => assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}"),
        other => panic!("{other:?}"),
    }
    // A certificate of another CA does not get through TLS.
    let other_ca = openvgw_pki::new_ca("elsewhere").unwrap();
    let (key_pem, csr) = openvgw_pki::new_key_and_request("x").unwrap();
    let (cert_pem, _, _) = openvgw_pki::sign_client_request(&other_ca, &csr, &id.agent_id, 1).unwrap();
    let stranger = Identity { agent_id: id.agent_id.clone(), cert_pem, key_pem };
    assert!(attach(stranger).await.is_err());
    // No certificate at all (TLS lets that through for joining): the stream is refused as unauthenticated.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&cp.ca.cert_pem))
        .domain_name(openvgw_agent::CONTROL_NAME);
    let channel = Channel::from_shared(cp.ep.url.clone()).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
    let hello = AgentMessage { body: Some(agent_message::Body::Hello(Hello::default())) };
    let bare = ControlClient::new(channel).attach(tokio_stream::iter(vec![hello])).await;
    assert_eq!(bare.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert!(cp.hub.agents().is_empty());

    // A revoked agent is turned away; its certificate still is what it was.
    cp.tokens.revoked.lock().unwrap().insert(id.agent_id.clone());
    match attach(id).await {
        Err(AgentError::Refused(s)) => assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_restarted_control_plane_sends_each_gateway_to_the_agent_it_recorded() {
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    let tokens = Tokens::with(&["tok-a", "tok-b"]);
    let first = control_plane_with(tokens.clone(), ca.clone(), Duration::from_secs(3600)).await;
    let id_a = host::join(&first.ep, "tok-a", "host-a").await.unwrap();
    let id_b = host::join(&first.ep, "tok-b", "host-b").await.unwrap();
    // Only host-a is there when the gateways are made: both go to it.
    let a = start(&first.ep, id_a.clone(), reporting());
    until("host-a attached", || first.hub.agents().len() == 1).await;
    for g in ["vpn-1", "vpn-2"] {
        first.hub.apply(&intent(g)).await.unwrap();
    }
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
    drop(first);

    // A new control plane on the same records: host-b attaching first does not take host-a's gateways.
    let second = control_plane_with(tokens.clone(), ca, Duration::from_secs(3600)).await;
    let b = start(&second.ep, id_b, reporting());
    until("host-b attached", || second.hub.agents().len() == 1).await;
    let err = second.hub.observe("vpn-1").await.unwrap_err();
    assert!(err.to_string().contains("is not connected"), "{err}");
    assert_eq!(second.hub.agent_of("vpn-2").as_deref(), Some(id_a.agent_id.as_str()));
    let a = start(&second.ep, id_a.clone(), a.driver);
    until("host-a attached", || second.hub.agents().len() == 2).await;
    assert!(second.hub.observe("vpn-1").await.unwrap().ready);
    let views = second.hub.agents();
    assert_eq!(views.len(), 2);
    assert!(views.iter().any(|v| v.id == id_a.agent_id && v.gateways == 2), "{views:?}");
    for agent in [a, b] {
        agent.stop.send(true).unwrap();
        agent.task.await.unwrap();
    }
}

#[tokio::test]
async fn the_gateways_of_a_dead_agent_move_and_it_is_fenced_when_it_returns() {
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    let cp = control_plane_with(Tokens::with(&["tok-a", "tok-b"]), ca, Duration::from_millis(500)).await;
    let id_a = host::join(&cp.ep, "tok-a", "host-a").await.unwrap();
    let a = start(&cp.ep, id_a.clone(), reporting());
    until("host-a attached", || cp.hub.agents().len() == 1).await;
    cp.hub.apply(&intent("vpn-1")).await.unwrap();
    let b = start(&cp.ep, host::join(&cp.ep, "tok-b", "host-b").await.unwrap(), reporting());
    until("host-b attached", || cp.hub.agents().len() == 2).await;

    // host-a goes away and, after dead_after, is dead: its gateway moves to host-b (recorded), where it is not
    // there yet (the reconciler then applies it), and applying puts it there.
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
    until("host-a's session closed", || cp.hub.agents().len() == 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while cp.hub.agent_of("vpn-1").as_deref() != Some(b.id.agent_id.as_str()) {
        assert!(Instant::now() < deadline, "vpn-1 not moved");
        cp.hub.sweep().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cp.hub.moved(), 1);
    assert_eq!(cp.tokens.placed.lock().unwrap().get("vpn-1").map(|(a, _)| a), Some(&b.id.agent_id), "recorded");
    assert!(!cp.hub.observe("vpn-1").await.unwrap().ready, "not realised on host-b yet");
    cp.hub.apply(&intent("vpn-1")).await.unwrap();
    assert!(cp.hub.observe("vpn-1").await.unwrap().ready);

    // host-a comes back with vpn-1 still realised (its driver kept it): it is told to remove it.
    assert!(a.driver.inner.realised_gateways().await.unwrap().contains(&"vpn-1".to_string()));
    let a = start(&cp.ep, id_a, a.driver);
    until("host-a attached again", || cp.hub.agents().len() == 2).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.driver.inner.realised_gateways().await.unwrap().contains(&"vpn-1".to_string()) {
        assert!(Instant::now() < deadline, "host-a still has vpn-1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cp.hub.agent_of("vpn-1").as_deref(), Some(b.id.agent_id.as_str()), "fencing moves nothing back");
    assert!(b.driver.inner.realised_gateways().await.unwrap().contains(&"vpn-1".to_string()));
    for agent in [a, b] {
        agent.stop.send(true).unwrap();
        agent.task.await.unwrap();
    }
}

/// A TCP relay standing in for the network between an agent and the control plane; `cut` makes it a black hole
/// (open connections stay open and carry nothing, new ones are closed at once), as a partition is.
struct Network {
    url: String,
    cut: Arc<AtomicBool>,
}

impl Network {
    async fn to(upstream: &str) -> Network {
        let upstream = upstream.trim_start_matches("https://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                let ((dr, dw), (ur, uw)) = (down.into_split(), up.into_split());
                tokio::spawn(pipe(dr, uw, flag.clone()));
                tokio::spawn(pipe(ur, dw, flag.clone()));
            }
        });
        Network { url, cut }
    }
}

async fn pipe(mut r: tokio::net::tcp::OwnedReadHalf, mut w: tokio::net::tcp::OwnedWriteHalf, cut: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16384];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Cut: what arrives is lost and the sockets stay open.
        if !cut.load(Ordering::SeqCst) && w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_partitioned_agent_stops_serving_its_gateways_before_they_are_moved() {
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    let cp = control_plane_with(Tokens::with(&["tok-a", "tok-b"]), ca, Duration::from_secs(2)).await;
    // host-a reaches the control plane over a network the test can cut; host-b directly.
    let net = Network::to(&cp.ep.url).await;
    let ep_a = Endpoint { url: net.url.clone(), ca_pem: cp.ep.ca_pem.clone() };
    let a = start(&ep_a, host::join(&ep_a, "tok-a", "host-a").await.unwrap(), reporting());
    until("host-a attached", || cp.hub.agents().len() == 1).await;
    cp.hub.apply(&intent("vpn-1")).await.unwrap();
    let b = start(&cp.ep, host::join(&cp.ep, "tok-b", "host-b").await.unwrap(), reporting());
    until("host-b attached", || cp.hub.agents().len() == 2).await;

    net.cut.store(true, Ordering::SeqCst);
    // Nothing is moved while host-a may still serve vpn-1: when the move happens, host-a has removed it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cp.hub.agent_of("vpn-1").as_deref() != Some(b.id.agent_id.as_str()) {
        assert!(Instant::now() < deadline, "vpn-1 not moved");
        cp.hub.sweep().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.driver.inner.realised_gateways().await.unwrap(), Vec::<String>::new(), "fenced before the move");
    cp.hub.apply(&intent("vpn-1")).await.unwrap();

    // The network comes back: host-a attaches again and gets nothing back; vpn-1 stays on host-b.
    net.cut.store(false, Ordering::SeqCst);
    until("host-a attached again", || cp.hub.agents().len() == 2).await;
    assert_eq!(cp.hub.agent_of("vpn-1").as_deref(), Some(b.id.agent_id.as_str()));
    assert!(b.driver.inner.realised_gateways().await.unwrap().contains(&"vpn-1".to_string()));
    assert_eq!(a.driver.inner.realised_gateways().await.unwrap(), Vec::<String>::new());
    for agent in [a, b] {
        agent.stop.send(true).unwrap();
        agent.task.await.unwrap();
    }
}

/// What the reconciler does with observations: applies a gateway again while it says `reroute` (or is not there),
/// until none does twice running (observing one gateway may show that another's router is stale).
async fn settle(hub: &AgentHub, intents: &[&GatewayIntent]) {
    let mut calm_rounds = 0;
    for _ in 0..10 {
        let mut calm = true;
        for i in intents {
            let obs = hub.observe(&i.gateway_id).await.unwrap();
            if obs.reroute || !obs.ready {
                calm = false;
                hub.apply(i).await.unwrap();
            }
        }
        calm_rounds = if calm { calm_rounds + 1 } else { 0 };
        if calm_rounds == 2 {
            return;
        }
    }
    panic!("the VPC's router never settled");
}

/// A gateway of vpc-1 at `private_ip` publishing `dests` into it.
fn publishing(gateway_id: &str, private_ip: [u8; 4], dests: &[&str]) -> GatewayIntent {
    let mut i = intent_in(gateway_id, "vpc-1");
    i.private_ip = Ipv4Addr::from(private_ip);
    i.routes = dests
        .iter()
        .map(|d| RouteIntent { dest: d.parse().unwrap(), tunnel_id: "t".into(), weight: 100, published: true })
        .collect();
    i
}

/// The other gateways' routes a gateway's VPC router carries beside it ("dest via address"); `None`: the router
/// is elsewhere.
async fn router_beside(hub: &AgentHub, gateway_id: &str) -> Option<Vec<String>> {
    match hub.observe(gateway_id).await.unwrap().vpc_router {
        VpcRouter::Here { others } => Some(others.iter().map(|r| format!("{} via {}", r.dest, r.via)).collect()),
        VpcRouter::Elsewhere => None,
        VpcRouter::Local => panic!("{gateway_id}: a gateway on an agent is never told to route its VPC alone"),
    }
}

/// The metrics of the other gateways' routes the router beside `gateway_id` carries.
async fn router_metrics(hub: &AgentHub, gateway_id: &str) -> Vec<u32> {
    match hub.observe(gateway_id).await.unwrap().vpc_router {
        VpcRouter::Here { others } => others.iter().map(|r| r.metric).collect(),
        other => panic!("{gateway_id} does not run its VPC's router: {other:?}"),
    }
}

#[tokio::test]
async fn a_vpc_spread_over_hosts_has_one_router_fed_with_what_every_gateway_publishes_and_it_follows_its_gateway() {
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    let cp = control_plane_with(Tokens::with(&["tok-a", "tok-b", "tok-c"]), ca, Duration::from_millis(500)).await;
    let mut agents = Vec::new();
    for (tok, name) in [("tok-a", "host-a"), ("tok-b", "host-b")] {
        agents.push(start(&cp.ep, host::join(&cp.ep, tok, name).await.unwrap(), reporting()));
    }
    until("two agents attached", || cp.hub.agents().len() == 2).await;
    let v1 = publishing("vpn-1", [10, 0, 0, 2], &["172.16.1.0/24"]);
    let mut v2 = publishing("vpn-2", [10, 0, 0, 3], &["172.16.2.0/24"]);
    for i in [&v1, &v2] {
        cp.hub.apply(i).await.unwrap();
    }
    let of = |g: &str| cp.hub.agent_of(g).unwrap();
    assert_ne!(of("vpn-1"), of("vpn-2"), "one VPC, two hosts: each gateway to the host holding the fewest");
    settle(&cp.hub, &[&v1, &v2]).await;
    // The router runs beside vpn-1 (the smallest id) and routes to vpn-2 on the other host too.
    assert_eq!(router_beside(&cp.hub, "vpn-1").await, Some(vec!["172.16.2.0/24 via 10.0.0.3".into()]));
    assert_eq!(router_beside(&cp.hub, "vpn-2").await, None);

    // vpn-2 publishes one more destination: observing it marks the router's gateway, which then asks to be applied.
    v2 = publishing("vpn-2", [10, 0, 0, 3], &["172.16.2.0/24", "172.16.3.0/24"]);
    v2.generation = 2;
    cp.hub.apply(&v2).await.unwrap();
    assert_eq!(cp.hub.observe("vpn-2").await.unwrap().published.len(), 2);
    assert!(cp.hub.take_changed().unwrap().contains("vpn-1"));
    assert!(cp.hub.observe("vpn-1").await.unwrap().reroute);
    settle(&cp.hub, &[&v1, &v2]).await;
    let both = Some(vec!["172.16.2.0/24 via 10.0.0.3".to_string(), "172.16.3.0/24 via 10.0.0.3".to_string()]);
    assert_eq!(router_beside(&cp.hub, "vpn-1").await, both);

    // vpn-2's host goes away: the router keeps its routes (its agent alone may be restarting, and its gateway still
    // forwarding) below any other gateway's, and raises them again when it is back.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = cp.hub.take_changed();
    let b = agents.remove(agents.iter().position(|a| a.id.agent_id == of("vpn-2")).unwrap());
    b.stop.send(true).unwrap();
    b.task.await.unwrap();
    until("vpn-2's host away", || cp.hub.agents().len() == 1).await;
    assert!(cp.hub.take_changed().unwrap().contains("vpn-1"), "the router's gateway is observed at once");
    settle(&cp.hub, &[&v1]).await;
    assert_eq!(router_beside(&cp.hub, "vpn-1").await, both);
    assert!(router_metrics(&cp.hub, "vpn-1").await.iter().all(|m| *m >= vpc::HOST_AWAY));
    agents.push(start(&cp.ep, b.id, b.driver));
    until("vpn-2's host back", || cp.hub.agents().len() == 2).await;
    settle(&cp.hub, &[&v1, &v2]).await;
    assert!(router_metrics(&cp.hub, "vpn-1").await.iter().all(|m| *m < vpc::HOST_AWAY));

    // vpn-1's host dies; host-c (empty) takes vpn-1, and the router goes with it, with the same routes.
    let c = start(&cp.ep, host::join(&cp.ep, "tok-c", "host-c").await.unwrap(), reporting());
    until("three agents attached", || cp.hub.agents().len() == 3).await;
    let dead = of("vpn-1");
    let gone = agents.remove(agents.iter().position(|a| a.id.agent_id == dead).unwrap());
    gone.stop.send(true).unwrap();
    gone.task.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while of("vpn-1") == dead {
        assert!(Instant::now() < deadline, "vpn-1 not moved");
        cp.hub.sweep().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(of("vpn-1"), c.id.agent_id);
    settle(&cp.hub, &[&v1, &v2]).await;
    assert_eq!(router_beside(&cp.hub, "vpn-1").await, both);
    assert_eq!(router_beside(&cp.hub, "vpn-2").await, None);

    // vpn-1 is removed: the router goes beside vpn-2, with nobody else's routes.
    cp.hub.remove("vpn-1").await.unwrap();
    assert!(cp.hub.take_changed().unwrap().contains("vpn-2"));
    settle(&cp.hub, &[&v2]).await;
    assert_eq!(router_beside(&cp.hub, "vpn-2").await, Some(vec![]));
    for agent in agents.into_iter().chain([c]) {
        agent.stop.send(true).unwrap();
        agent.task.await.unwrap();
    }
}

#[tokio::test]
async fn a_restarted_control_plane_keeps_the_vpc_router_where_it_runs() {
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    let tokens = Tokens::with(&["tok-a"]);
    let first = control_plane_with(tokens.clone(), ca.clone(), Duration::from_secs(3600)).await;
    let id_a = host::join(&first.ep, "tok-a", "host-a").await.unwrap();
    let a = start(&first.ep, id_a.clone(), reporting());
    until("host-a attached", || first.hub.agents().len() == 1).await;
    let v2 = publishing("vpn-2", [10, 0, 0, 3], &["172.16.2.0/24"]);
    first.hub.apply(&v2).await.unwrap();
    settle(&first.hub, &[&v2]).await;
    assert_eq!(router_beside(&first.hub, "vpn-2").await, Some(vec![]));
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
    drop(first);

    // A gateway with a smaller id joins the VPC under a new control plane: the router stays beside vpn-2 (moving it
    // would mean two routers answering for one address while it moves).
    let second = control_plane_with(tokens, ca, Duration::from_secs(3600)).await;
    let a = start(&second.ep, id_a, a.driver);
    until("host-a attached", || second.hub.agents().len() == 1).await;
    let v0 = publishing("vpn-0", [10, 0, 0, 4], &["172.16.0.0/24"]);
    second.hub.apply(&v0).await.unwrap();
    settle(&second.hub, &[&v0, &v2]).await;
    assert_eq!(router_beside(&second.hub, "vpn-0").await, None);
    assert_eq!(router_beside(&second.hub, "vpn-2").await, Some(vec!["172.16.0.0/24 via 10.0.0.4".into()]));
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
}

/// A route-based tunnel of a gateway, on its public address `local_ip`.
fn tunnel_on(id: &str, local_ip: [u8; 4]) -> TunnelIntent {
    use openvgw_core::crypto::{
        AuthMethod, DhGroup, Dpd, EncapsulationMode, Encryption, IdentityType, IkeConfig, IkeVersion, Integrity,
        IpsecConfig, NegotiationMode, TransformProtocol,
    };
    TunnelIntent {
        id: id.into(),
        local_ip: Ipv4Addr::from(local_ip),
        remote_ip: Some(Ipv4Addr::new(192, 0, 2, 99)),
        psk: openvgw_dataplane::Secret::new("psk"),
        ike: IkeConfig {
            version: IkeVersion::V2,
            mode: NegotiationMode::Main,
            encryption: Encryption::Aes128,
            integrity: Integrity::Sha1,
            dh_group: DhGroup::Group2,
            auth_method: AuthMethod::PreSharedKey,
            lifetime_s: 86400,
            local_id_type: IdentityType::Ip,
            local_id: String::new(),
            remote_id_type: IdentityType::Ip,
            remote_id: String::new(),
            dpd: Dpd::default(),
        },
        ipsec: IpsecConfig {
            encryption: Encryption::Aes128,
            integrity: Integrity::Sha1,
            pfs: None,
            lifetime_s: 3600,
            transform: TransformProtocol::Esp,
            encapsulation: EncapsulationMode::Tunnel,
        },
        local_subnets: Vec::new(),
        remote_subnets: Vec::new(),
        selectors: Vec::new(),
        initiate: true,
        dpd: true,
        nat_traversal: true,
        route_based: true,
        health_check: None,
        bgp: None,
    }
}

/// An HA gateway of vpc-1: two public addresses with a tunnel on each (one destination over the first, the second
/// standing by), and a second inside address.
fn ha(gateway_id: &str) -> GatewayIntent {
    let mut i = publishing(gateway_id, [10, 0, 0, 5], &[]);
    i.public_ips = vec![Ipv4Addr::new(192, 0, 2, 20), Ipv4Addr::new(192, 0, 2, 21)];
    i.second_private_ip = Some(Ipv4Addr::new(10, 0, 0, 6));
    i.tunnels = vec![tunnel_on("tun-1", [192, 0, 2, 20]), tunnel_on("tun-2", [192, 0, 2, 21])];
    let route = |tunnel: &str, weight: u32| RouteIntent {
        dest: "172.16.9.0/24".parse().unwrap(),
        tunnel_id: tunnel.into(),
        weight,
        published: true,
    };
    i.routes = vec![route("tun-1", 100), route("tun-2", 0)];
    i
}

#[tokio::test]
async fn an_ha_gateways_halves_run_apart_on_two_hosts_and_answer_as_one_gateway() {
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    let cp = control_plane_with(Tokens::with(&["tok-a", "tok-b"]), ca, Duration::from_millis(500)).await;
    // host-b alone takes two gateways; host-a joins with none.
    let b = start(&cp.ep, host::join(&cp.ep, "tok-b", "host-b").await.unwrap(), reporting());
    until("host-b attached", || cp.hub.agents().len() == 1).await;
    for g in ["vpn-p1", "vpn-p2"] {
        cp.hub.apply(&intent(g)).await.unwrap();
    }
    let a = start(&cp.ep, host::join(&cp.ep, "tok-a", "host-a").await.unwrap(), reporting());
    until("host-a attached", || cp.hub.agents().len() == 2).await;

    // The first half goes to the emptier host-a; the second to host-b, which holds more: the halves stay apart.
    let gw = ha("vpn-ha");
    let second_id = second_half_id("vpn-ha");
    cp.hub.apply(&gw).await.unwrap();
    assert_eq!(cp.hub.agent_of("vpn-ha"), Some(a.id.agent_id.clone()));
    assert_eq!(cp.hub.agent_of(&second_id), Some(b.id.agent_id.clone()), "the halves on two hosts");
    // Each host has its half: one address, its tunnel, its inside address.
    let keys = |o: &GatewayObservation| o.tunnels.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a.driver.inner.observe("vpn-ha").await.unwrap()), ["tun-1"]);
    let second = b.driver.inner.observe(&second_id).await.unwrap();
    assert_eq!(keys(&second), ["tun-2"]);
    assert!(!second.published.is_empty() && second.published.iter().all(|r| r.via == Ipv4Addr::new(10, 0, 0, 6)));

    // To the reconciler it is one gateway: observed as one, listed once, and a tunnel's call reaches its half.
    let obs = cp.hub.observe("vpn-ha").await.unwrap();
    assert!(obs.ready);
    assert_eq!(keys(&obs), ["tun-1", "tun-2"]);
    let realised = cp.hub.realised_gateways().await.unwrap();
    assert!(realised.contains(&"vpn-ha".to_string()) && !realised.contains(&second_id), "{realised:?}");
    let _ = cp.hub.initiate("vpn-ha", "tun-2").await;
    assert_eq!(*b.driver.initiated.lock().unwrap(), [(second_id.clone(), "tun-2".to_string())]);
    assert!(a.driver.initiated.lock().unwrap().is_empty());
    // The VPC's router runs beside the first half and routes to the second half at its own address.
    settle(&cp.hub, &[&gw]).await;
    assert_eq!(router_beside(&cp.hub, "vpn-ha").await, Some(vec!["172.16.9.0/24 via 10.0.0.6".into()]));

    // host-b dies: the second half moves to host-a, the only host left, rather than stay down.
    b.stop.send(true).unwrap();
    b.task.await.unwrap();
    until("host-b away", || cp.hub.agents().len() == 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while cp.hub.agent_of(&second_id) != Some(a.id.agent_id.clone()) {
        assert!(Instant::now() < deadline, "the second half not moved");
        cp.hub.sweep().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settle(&cp.hub, &[&gw]).await;
    assert_eq!(keys(&cp.hub.observe("vpn-ha").await.unwrap()), ["tun-1", "tun-2"]);

    // Removing the gateway removes both halves.
    cp.hub.remove("vpn-ha").await.unwrap();
    assert_eq!((cp.hub.agent_of("vpn-ha"), cp.hub.agent_of(&second_id)), (None, None));
    assert!(a.driver.inner.realised_gateways().await.unwrap().iter().all(|g| !g.starts_with("vpn-ha")));
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
}

#[tokio::test]
async fn a_lease_file_carries_the_last_word_over_to_a_restarted_agent_and_records_the_fence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-lease.json");
    let now = host::BootTime::now();
    // The process before this one last heard from the control plane 3 s ago; its limit is 2 s.
    let before = host::LeaseRecord { pid: 1, last_heard: Some(ago(&now, 3_000)), fence_after_ms: 2_000 };
    std::fs::write(&path, serde_json::to_vec(&before).unwrap()).unwrap();
    let lease = host::Lease::resume(path.clone());
    let taken = host::LeaseRecord::read(&path).unwrap();
    assert_eq!(taken.pid, std::process::id(), "the lease is this process's from the start");
    assert!(taken.expired(&now), "{taken:?}");

    let driver = reporting();
    driver.apply(&intent("vpn-1")).await.unwrap();
    assert_eq!(lease.fence_if_expired(driver.as_ref()).await, Some(1));
    assert!(driver.realised_gateways().await.unwrap().is_empty());
    assert_eq!(host::LeaseRecord::read(&path).unwrap().last_heard, None, "fenced: nothing left to guard");
    assert_eq!(lease.fence_if_expired(driver.as_ref()).await, None, "disarmed until the next session");

    // A lease that has not run out fences nothing.
    let fresh = host::LeaseRecord { pid: 1, last_heard: Some(now.clone()), fence_after_ms: 60_000 };
    std::fs::write(&path, serde_json::to_vec(&fresh).unwrap()).unwrap();
    let lease = host::Lease::resume(path.clone());
    driver.apply(&intent("vpn-2")).await.unwrap();
    assert_eq!(lease.fence_if_expired(driver.as_ref()).await, None);
    assert_eq!(driver.realised_gateways().await.unwrap(), ["vpn-2"]);
    assert!(!fresh.expired(&host::BootTime::now()));

    // The lease counts on the boot clock, not the wall clock (which may be stepped), and a word heard in another
    // boot (its times mean nothing now) has run out: the resumed lease fences at once.
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(file.contains(&format!("\"boot\":\"{}\"", now.boot)) && !now.boot.is_empty(), "{file}");
    let other_boot = host::LeaseRecord {
        pid: 1,
        last_heard: Some(host::BootTime { boot: "another-boot".into(), ms: now.ms + 1_000 }),
        fence_after_ms: 60_000,
    };
    assert!(other_boot.expired(&now));
    std::fs::write(&path, serde_json::to_vec(&other_boot).unwrap()).unwrap();
    let lease = host::Lease::resume(path.clone());
    assert_eq!(lease.fence_if_expired(driver.as_ref()).await, Some(1));
}

fn ago(now: &host::BootTime, ms: u64) -> host::BootTime {
    host::BootTime { boot: now.boot.clone(), ms: now.ms - ms }
}

/// Whether the server closed `s` (end of stream or a reset) within two seconds.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

/// A TCP connection to `addr` from the loopback address `from` (any of 127.0.0.0/8 is this host's).
async fn connect_from(from: Ipv4Addr, addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn the_port_bounds_connections_in_all_and_per_address_and_drops_unfinished_handshakes() {
    let limits = PortLimits { max_connections: 6, per_address: 4, handshake: Duration::from_millis(300) };
    let ca = openvgw_pki::new_ca("openvgw agents").unwrap();
    let cp = control_plane_limited(Tokens::with(&["tok-a"]), ca, Duration::from_secs(3600), limits).await;
    let addr: std::net::SocketAddr = cp.ep.url.trim_start_matches("https://").parse().unwrap();
    let (one, two, three) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));

    // Silent connections (no TLS hello): one address gets four places, the fifth is closed as it arrives.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(connect_from(one, addr).await);
    }
    until("four connections open", || cp.hub.port().open() == 4).await;
    let mut fifth = connect_from(one, addr).await;
    assert!(closed_by_server(&mut fifth).await, "a fifth connection from one address is closed");
    // In all, six: two more from another address fit, a third address finds the port full.
    silent.push(connect_from(two, addr).await);
    silent.push(connect_from(two, addr).await);
    until("six connections open", || cp.hub.port().open() == 6).await;
    let mut seventh = connect_from(three, addr).await;
    assert!(closed_by_server(&mut seventh).await, "a seventh connection is closed");
    assert_eq!(cp.hub.port().refused(), 2);

    // None of them finished a handshake within its limit: each is dropped and its place given back.
    for s in &mut silent {
        assert!(closed_by_server(s).await, "a connection without a TLS handshake is dropped");
    }
    until("every place given back", || cp.hub.port().open() == 0).await;

    // An agent joins and attaches as usual (a handshake on loopback takes milliseconds), and holds one place.
    let id = host::join(&cp.ep, "tok-a", "host-a").await.unwrap();
    let a = start(&cp.ep, id, reporting());
    until("the agent attached", || cp.hub.agents().len() == 1).await;
    // The join's connection closes once the agent has its certificate; the session's stays.
    until("the session's connection alone open", || cp.hub.port().open() == 1).await;
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
}
