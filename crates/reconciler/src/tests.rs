//! Reconciler tests with a scripted driver: compilation, generation handling, deletion, leftovers, failures and
//! repairs, initiate nudges.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use openvgw_control::connections::{BgpPatch, NewConnection, PublicIpRef};
use openvgw_control::customer_gateways::NewCustomerGateway;
use openvgw_control::gateways::NewGateway;
use openvgw_control::routes::NewRoute;
use openvgw_control::{Ctx, Service};
use openvgw_core::config::Config;
use openvgw_core::crypto::*;
use openvgw_core::model::*;
use openvgw_core::IdStyle;
use openvgw_dataplane::{DataplaneError, Driver, GatewayIntent, GatewayObservation, TunnelObservation};
use openvgw_store::Store;

#[derive(Default)]
struct Script {
    applied: Vec<GatewayIntent>,
    removed: Vec<String>,
    initiated: Vec<(String, String)>,
    realised: Vec<String>,
    fail_apply: bool,
    ready: bool,
    tunnel_state: Option<TunnelState>,
    /// What `take_changed` reports (then emptied); `None`: the driver cannot tell.
    changed: Option<std::collections::HashSet<String>>,
    observed: Vec<String>,
    /// The next observation reports that the routes must follow the tunnels (then cleared).
    reroute: bool,
}

#[derive(Default)]
struct FakeDriver(Mutex<Script>);

impl FakeDriver {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }
    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let mut s = self.script();
        if s.fail_apply {
            return Err(DataplaneError::Failed("scripted failure".into()));
        }
        s.applied.push(intent.clone());
        s.ready = true;
        Ok(())
    }
    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        self.script().removed.push(gateway_id.to_string());
        Ok(())
    }
    fn take_changed(&self) -> Option<std::collections::HashSet<String>> {
        self.script().changed.as_mut().map(std::mem::take)
    }
    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        let mut s = self.script();
        s.observed.push(gateway_id.to_string());
        let last = s.applied.iter().rev().find(|i| i.gateway_id == gateway_id);
        let tunnels = last
            .map(|i| {
                i.tunnels
                    .iter()
                    .map(|t| {
                        let state = s.tunnel_state.unwrap_or(TunnelState::IkeSaNotEstablished);
                        (t.id.clone(), TunnelObservation { state, health_ok: None, bgp: None })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let reroute = std::mem::take(&mut s.reroute);
        Ok(GatewayObservation {
            ready: s.ready,
            reroute,
            tunnels,
            ssl_sessions: BTreeMap::new(),
            ipsec_server_clients: 0,
            ..Default::default()
        })
    }
    async fn initiate(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError> {
        self.script().initiated.push((gateway_id.to_string(), tunnel_id.to_string()));
        Ok(())
    }
    async fn ssl_server_logs(&self, _: &str, _: &str, _: i64, _: i64) -> Result<Vec<String>, DataplaneError> {
        Ok(vec![])
    }
    async fn realised_gateways(&self) -> Result<Vec<String>, DataplaneError> {
        Ok(self.script().realised.clone())
    }
}

struct World {
    _dir: tempfile::TempDir,
    svc: Arc<Service>,
    driver: Arc<FakeDriver>,
    rec: Arc<crate::Reconciler>,
    ctx: Ctx,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join("t.db")).expect("store"));
    let driver = Arc::new(FakeDriver::default());
    let svc = Arc::new(Service::new(store, Arc::new(Config::default()), driver.clone()));
    let rec = crate::Reconciler::new(svc.clone(), Duration::from_millis(10));
    let ctx = Ctx {
        scope: Scope::new("tnt-t", "r1"),
        operation: "test".into(),
        client_token: None,
        params_hash: String::new(),
        dry_run: false,
        ids: IdStyle::Prefixed,
        queue_changes: false,
    };
    World { _dir: dir, svc, driver, rec, ctx }
}

fn new_gateway() -> NewGateway {
    NewGateway {
        name: None,
        description: String::new(),
        vpc_id: "vpc-test".into(),
        subnet_id: String::new(),
        local_subnets: vec![],
        bandwidth_mbps: 10,
        role: GatewayRole::Both,
        ipsec_enabled: true,
        ssl_enabled: false,
        ssl_max_connections: 5,
        crypto_suite: CryptoSuite::Standard,
        ha_mode: HaMode::Single,
        bgp_asn: None,
        tags: vec![],
        ext: Extensions::default(),
    }
}

fn ike() -> IkeConfig {
    IkeConfig {
        version: IkeVersion::V2,
        mode: NegotiationMode::Main,
        encryption: Encryption::Aes128,
        integrity: Integrity::Sha256,
        dh_group: DhGroup::Group14,
        auth_method: AuthMethod::PreSharedKey,
        lifetime_s: 3600,
        local_id_type: IdentityType::Ip,
        local_id: String::new(),
        remote_id_type: IdentityType::Ip,
        remote_id: String::new(),
        dpd: Dpd::default(),
    }
}

fn new_connection(gw: &str, cgw: &str, initiate: bool) -> NewConnection {
    NewConnection {
        gateway_id: gw.into(),
        customer_gateway_id: cgw.into(),
        name: None,
        description: String::new(),
        public_ip: PublicIpRef::Index(0),
        mode: ConnectionMode::Policy,
        local_subnets: vec!["10.0.0.0/16".parse().expect("net")],
        remote_subnets: vec!["192.168.0.0/16".parse().expect("net")],
        policy_rules: vec![],
        bgp: BgpPatch::default(),
        allocate_inside: false,
        psk: None,
        ike: ike(),
        ipsec: IpsecConfig {
            encryption: Encryption::Aes128,
            integrity: Integrity::Sha256,
            pfs: None,
            lifetime_s: 3600,
            transform: TransformProtocol::Esp,
            encapsulation: EncapsulationMode::Tunnel,
        },
        health_check: HealthCheck::default(),
        initiate,
        dpd: true,
        nat_traversal: true,
        auto_route: true,
        ha_role: None,
        remote_ca_certificate: String::new(),
        second_tunnel: None,
        tags: vec![],
        ext: Extensions::default(),
    }
}

fn cgw(ip: &str) -> NewCustomerGateway {
    NewCustomerGateway {
        identity: PeerIdentity::Ip(ip.parse().expect("ip")),
        name: None,
        description: String::new(),
        asn: None,
        bgp_auth_key: None,
        ca_certificate: None,
        tags: vec![],
        ext: Extensions::default(),
    }
}

fn status(w: &World, id: &str) -> GatewayStatus {
    w.svc.get_gateway(&w.ctx.scope, id).expect("gateway").item.status()
}

/// Runs passes until the in-flight work settles. The deadline is generous on purpose: convergence runs on
/// blocking threads that a loaded CI machine may schedule late, and the tests assert outcomes, not speed.
async fn settle(w: &World, observe: bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let observe = if observe { crate::Observe::All } else { crate::Observe::Nothing };
        w.rec.clone().pass(observe).await.expect("pass");
        tokio::time::sleep(Duration::from_millis(5)).await;
        if w.rec.state().in_flight.is_empty() {
            return;
        }
    }
    panic!("reconciler did not settle in 30 s");
}

#[tokio::test]
async fn a_new_gateway_goes_from_init_to_active_and_changes_are_applied_once() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, new_gateway()).expect("create");
    assert_eq!(status(&w, &gw.id), GatewayStatus::Init);
    w.rec.converge(&gw.id).await.expect("converge");
    assert_eq!(status(&w, &gw.id), GatewayStatus::Active);
    assert_eq!(w.driver.script().applied.len(), 1);
    // A child change bumps the generation: updating until applied, then active again.
    let c = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.9")).expect("cgw");
    let conn = w.svc.create_connection(&w.ctx, new_connection(&gw.id, &c.id, false)).expect("conn");
    assert_eq!(status(&w, &gw.id), GatewayStatus::Updating);
    settle(&w, false).await;
    assert_eq!(status(&w, &gw.id), GatewayStatus::Active);
    let applied = w.driver.script().applied.clone();
    assert_eq!(applied.len(), 2);
    assert_eq!(applied[1].generation, 2);
    assert_eq!(applied[1].tunnels[0].id, conn.id);
    // Nothing pending: further passes apply nothing.
    settle(&w, false).await;
    assert_eq!(w.driver.script().applied.len(), 2);
}

#[tokio::test]
async fn compile_binds_tunnels_to_their_address_and_detects_route_based_ones() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, NewGateway { ha_mode: HaMode::ActiveActive, ..new_gateway() }).expect("gw");
    assert_eq!(gw.public_ips.len(), 2);
    w.rec.converge(&gw.id).await.expect("converge");
    let c1 = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.1")).expect("cgw");
    let second = NewConnection { public_ip: PublicIpRef::Index(1), ..new_connection(&gw.id, &c1.id, true) };
    let a = w.svc.create_connection(&w.ctx, new_connection(&gw.id, &c1.id, false)).expect("first");
    w.rec.converge(&gw.id).await.expect("converge");
    let b = w.svc.create_connection(&w.ctx, second).expect("second address, same peer");
    w.rec.converge(&gw.id).await.expect("converge");
    w.svc
        .create_route(
            &w.ctx,
            NewRoute {
                gateway_id: gw.id.clone(),
                source: None,
                dest: "172.16.0.0/16".parse().expect("net"),
                next_hop: b.id.clone(),
                weight: 100,
                priority: None,
                published: false,
                description: String::new(),
            },
        )
        .expect("route");
    let tree = w.svc.gateway_tree(&gw.id).expect("tree").expect("exists");
    let intent = crate::compile(&tree);
    assert_eq!(intent.public_ips, gw.public_ips.iter().map(|p| p.address).collect::<Vec<_>>());
    let ta = intent.tunnels.iter().find(|t| t.id == a.id).expect("a");
    let tb = intent.tunnels.iter().find(|t| t.id == b.id).expect("b");
    assert_eq!(ta.local_ip, gw.public_ips[0].address);
    assert_eq!(tb.local_ip, gw.public_ips[1].address);
    assert_eq!(tb.remote_ip, Some(Ipv4Addr::new(198, 51, 100, 1)));
    assert!(!ta.route_based && tb.route_based, "destination routes make a tunnel route-based");
    assert!(tb.initiate && !ta.initiate);
    assert_eq!(ta.ike.local_id, gw.public_ips[0].address.to_string(), "identities default to the addresses");
    assert_eq!(intent.routes.len(), 1);
    assert_eq!(intent.generation, tree.gateway.generation);
    // An HA pair has a second inside address, for its halves on two hosts; a single gateway has none.
    let second = intent.second_private_ip.expect("a second inside address");
    assert_ne!(second, intent.private_ip);
    let (first_half, second_half) = intent.halves().expect("halves");
    assert_eq!((first_half.tunnels.len(), second_half.tunnels.len()), (1, 1));
    assert_eq!(second_half.tunnels[0].id, b.id);
    assert_eq!(second_half.routes.len(), 1, "the route over b goes with b's half");
    let single = w.svc.create_gateway(&w.ctx, new_gateway()).expect("single");
    assert_eq!(single.second_private_ip, None);
}

#[tokio::test]
async fn static_connections_route_their_remote_subnets_policy_ones_do_not() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, NewGateway { ha_mode: HaMode::ActiveActive, ..new_gateway() }).expect("gw");
    w.rec.converge(&gw.id).await.expect("converge");
    let peer = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.2")).expect("cgw");
    let fixed = NewConnection { mode: ConnectionMode::Static, ..new_connection(&gw.id, &peer.id, true) };
    let s = w.svc.create_connection(&w.ctx, fixed).expect("static");
    w.rec.converge(&gw.id).await.expect("converge");
    let policy = NewConnection { public_ip: PublicIpRef::Index(1), ..new_connection(&gw.id, &peer.id, true) };
    let p = w.svc.create_connection(&w.ctx, policy).expect("policy");
    w.rec.converge(&gw.id).await.expect("converge");
    let unrouted = NewConnection {
        mode: ConnectionMode::Static,
        auto_route: false,
        public_ip: PublicIpRef::Index(1),
        ..new_connection(&gw.id, &w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.3")).expect("cgw").id, true)
    };
    let u = w.svc.create_connection(&w.ctx, unrouted).expect("static without routes");
    let intent = crate::compile(&w.svc.gateway_tree(&gw.id).expect("tree").expect("exists"));
    let routed: Vec<(&str, String)> =
        intent.routes.iter().map(|r| (r.tunnel_id.as_str(), r.dest.to_string())).collect();
    assert_eq!(routed, vec![(s.id.as_str(), "192.168.0.0/16".to_string())]);
    assert!(intent.tunnels.iter().find(|t| t.id == s.id).expect("s").route_based);
    assert!(!intent.tunnels.iter().find(|t| t.id == p.id).expect("p").route_based);
    assert!(intent.tunnels.iter().any(|t| t.id == u.id));
}

#[tokio::test]
async fn deleting_removes_the_data_plane_then_the_tree() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, new_gateway()).expect("create");
    w.rec.converge(&gw.id).await.expect("converge");
    let c = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.9")).expect("cgw");
    let conn = w.svc.create_connection(&w.ctx, new_connection(&gw.id, &c.id, false)).expect("conn");
    w.rec.converge(&gw.id).await.expect("converge");
    w.svc.delete_gateway(&w.ctx, &gw.id).expect("delete");
    assert_eq!(status(&w, &gw.id), GatewayStatus::Deleting);
    settle(&w, false).await;
    assert_eq!(w.driver.script().removed, vec![gw.id.clone()]);
    assert!(w.svc.get_gateway(&w.ctx.scope, &gw.id).is_err());
    assert!(w.svc.get_connection(&w.ctx.scope, &conn.id).is_err(), "children go with the gateway");
    // The customer gateway is not a child and stays; its address pool entries are free again.
    assert!(w.svc.get_customer_gateway(&w.ctx.scope, &c.id).is_ok());
    let again = w.svc.create_gateway(&w.ctx, new_gateway()).expect("create");
    assert_eq!(again.public_ips[0].address, gw.public_ips[0].address, "the public address was released");
    assert_eq!(again.private_ip, gw.private_ip, "the inside address was released");
}

#[tokio::test]
async fn leftovers_of_unknown_gateways_are_removed_known_ones_kept() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, new_gateway()).expect("create");
    w.driver.script().realised = vec![gw.id.clone(), "vpn-gone".into()];
    w.rec.remove_leftovers().await.expect("leftovers");
    assert_eq!(w.driver.script().removed, vec!["vpn-gone".to_string()]);
}

#[tokio::test]
async fn a_failing_driver_leaves_the_gateway_pending_records_why_and_retries_with_backoff() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, new_gateway()).expect("create");
    w.driver.script().fail_apply = true;
    settle(&w, false).await;
    assert_eq!(status(&w, &gw.id), GatewayStatus::Provisioning, "not active while the data plane failed");
    assert!(w.rec.backing_off(&gw.id));
    // While backing off, passes do not hammer the driver.
    settle(&w, false).await;
    assert!(w.driver.script().applied.is_empty());
    w.driver.script().fail_apply = false;
    tokio::time::sleep(crate::BACKOFF_START + Duration::from_millis(50)).await;
    settle(&w, false).await;
    assert_eq!(status(&w, &gw.id), GatewayStatus::Active);
    assert!(!w.rec.backing_off(&gw.id));
}

#[tokio::test]
async fn a_data_plane_that_drifted_is_applied_again_and_observations_are_recorded() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, new_gateway()).expect("create");
    let c = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.9")).expect("cgw");
    w.rec.converge(&gw.id).await.expect("converge");
    let conn = w.svc.create_connection(&w.ctx, new_connection(&gw.id, &c.id, false)).expect("conn");
    w.rec.converge(&gw.id).await.expect("converge");
    let before = w.driver.script().applied.len();
    {
        let mut s = w.driver.script();
        s.ready = false;
        s.tunnel_state = Some(TunnelState::IpsecSaEstablished);
    }
    settle(&w, true).await;
    assert_eq!(w.driver.script().applied.len(), before + 1, "re-applied once after drift");
    let seen = w.svc.get_connection(&w.ctx.scope, &conn.id).expect("conn").connection.state;
    assert_eq!(seen, TunnelState::IpsecSaEstablished);
    // Observing the same state again writes nothing.
    assert_eq!(
        w.svc
            .record_observation(
                &gw.id,
                &GatewayObservation {
                    ready: true,
                    tunnels: [(
                        conn.id.clone(),
                        TunnelObservation { state: TunnelState::IpsecSaEstablished, health_ok: None, bgp: None }
                    )]
                    .into(),
                    ..Default::default()
                }
            )
            .expect("observe"),
        0
    );
}

#[tokio::test]
async fn initiating_tunnels_without_an_sa_are_nudged_not_others() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, new_gateway()).expect("create");
    w.rec.converge(&gw.id).await.expect("converge");
    let c1 = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.1")).expect("cgw");
    let c2 = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.2")).expect("cgw");
    let init = w.svc.create_connection(&w.ctx, new_connection(&gw.id, &c1.id, true)).expect("initiating");
    w.rec.converge(&gw.id).await.expect("converge");
    w.svc.create_connection(&w.ctx, new_connection(&gw.id, &c2.id, false)).expect("responding");
    w.rec.converge(&gw.id).await.expect("converge");
    let gw_now = w.svc.all_gateways().expect("all").remove(0);
    // First observation starts the clock; a nudge comes only after the retry period.
    assert_eq!(w.rec.observe(&gw_now).await.expect("observe"), crate::Seen::Ready);
    assert!(w.driver.script().initiated.is_empty());
    if let Some(t) = w.rec.state().initiating.get_mut(&gw.id).and_then(|m| m.get_mut(&init.id)) {
        *t = Some(std::time::Instant::now() - crate::INITIATE_RETRY);
    }
    w.rec.observe(&gw_now).await.expect("observe");
    assert_eq!(w.driver.script().initiated, vec![(gw.id.clone(), init.id.clone())]);
    // Once the SA is up nothing is nudged.
    w.driver.script().tunnel_state = Some(TunnelState::IpsecSaEstablished);
    w.rec.observe(&gw_now).await.expect("observe");
    assert_eq!(w.driver.script().initiated.len(), 1);
    // A tunnel stopped carrying: the gateway is applied again (its routes follow), once.
    let applied = w.driver.script().applied.len();
    w.driver.script().reroute = true;
    settle(&w, true).await;
    assert_eq!(w.driver.script().applied.len(), applied + 1, "re-applied once to re-route");
}

#[tokio::test]
async fn with_a_driver_that_reports_changes_only_changed_gateways_are_observed_except_in_a_sweep() {
    let w = world();
    w.driver.script().changed = Some(Default::default());
    w.driver.script().tunnel_state = Some(TunnelState::IpsecSaEstablished);
    let ids: Vec<String> = (0..3).map(|_| w.svc.create_gateway(&w.ctx, new_gateway()).expect("create").id).collect();
    settle(&w, false).await;
    let observed = |w: &World| {
        let mut s = w.driver.script();
        std::mem::take(&mut s.observed)
    };
    let pass = |o| w.rec.clone().pass(o);
    // Just converged: each is looked at once, then left alone while nothing changes.
    pass(crate::Observe::Changed).await.expect("pass");
    assert_eq!(observed(&w).len(), 3);
    pass(crate::Observe::Changed).await.expect("pass");
    assert_eq!(observed(&w), Vec::<String>::new());
    // An event on one gateway: only that one.
    w.driver.script().changed = Some([ids[1].clone()].into());
    pass(crate::Observe::Changed).await.expect("pass");
    assert_eq!(observed(&w), vec![ids[1].clone()]);
    // A sweep looks at all of them.
    pass(crate::Observe::All).await.expect("pass");
    assert_eq!(observed(&w).len(), 3);
    // A driver that cannot tell: everything at every resync.
    w.driver.script().changed = None;
    pass(crate::Observe::Changed).await.expect("pass");
    assert_eq!(observed(&w).len(), 3);
}

/// A deleted client certificate reaches the data plane as a revoked common name (its id), so the driver can end its
/// live session; certificates still issued are not in it.
#[tokio::test]
async fn revoked_client_certificates_reach_the_intent_by_common_name() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, NewGateway { ssl_enabled: true, ..new_gateway() }).expect("gw");
    w.rec.converge(&gw.id).await.expect("converge");
    let spec = openvgw_control::ssl::NewSslServer {
        name: None,
        client_ip_pool: "10.30.0.0/24".parse().expect("net"),
        local_subnets: vec!["192.168.10.0/24".parse().expect("net")],
        transport: Transport::Udp,
        cipher: SslCipher::Aes128Cbc,
        port: 1194,
        compress: false,
        client_auth: ClientAuth::Certificate,
        dns_servers: vec![],
        ext: Extensions::default(),
        default_group: None,
        client_cas: vec![],
    };
    let server = w.svc.create_ssl_server(&w.ctx, &gw.id, spec).expect("server");
    w.rec.converge(&gw.id).await.expect("converge");
    let kept = w.svc.create_client_cert(&w.ctx, &server.id, None).expect("cert");
    w.rec.converge(&gw.id).await.expect("converge");
    let gone = w.svc.create_client_cert(&w.ctx, &server.id, None).expect("cert");
    w.rec.converge(&gw.id).await.expect("converge");
    w.svc.delete_client_cert(&w.ctx, &gone.id).expect("revoke");
    let intent = crate::compile(&w.svc.gateway_tree(&gw.id).expect("tree").expect("exists"));
    let openvgw_dataplane::ClientAuthIntent::Certificate { cas, revoked } = &intent.ssl_servers[0].clients else {
        panic!("a certificate server: {:?}", intent.ssl_servers[0].clients);
    };
    assert!(cas.is_empty());
    assert_eq!(revoked, &vec![gone.id.clone()]);
    assert!(!revoked.contains(&kept.id));
}

/// A BGP connection reaches the data plane as a session between its inside addresses with the customer's ASN and
/// key; what its session learns comes back as the gateway's system routes (with AS path, published when the gateway
/// propagates automatically), leaves with the session, and is never compiled into the driver's own routes.
#[tokio::test]
async fn bgp_sessions_compile_from_the_connection_and_learned_routes_follow_the_observation() {
    use openvgw_dataplane::{BgpObservation, LearnedRoute};
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, new_gateway()).expect("gw");
    w.rec.converge(&gw.id).await.expect("converge");
    let peer = NewCustomerGateway {
        asn: Some(65010),
        bgp_auth_key: Some(openvgw_core::Secret::new("md5-key")),
        ..cgw("198.51.100.20")
    };
    let c = w.svc.create_customer_gateway(&w.ctx, peer).expect("cgw");
    let spec = NewConnection {
        mode: ConnectionMode::Bgp,
        local_subnets: vec!["0.0.0.0/0".parse().expect("net"), "10.0.0.0/16".parse().expect("net")],
        remote_subnets: vec!["0.0.0.0/0".parse().expect("net")],
        bgp: BgpPatch {
            enable: Some(true),
            local_asn: Some(45104),
            tunnel_cidr: Some("169.254.11.0/30".parse().expect("net")),
            local_ip: Some("169.254.11.1".parse().expect("ip")),
            peer_ip: None,
        },
        ..new_connection(&gw.id, &c.id, false)
    };
    let conn = w.svc.create_connection(&w.ctx, spec).expect("conn");
    let intent = crate::compile(&w.svc.gateway_tree(&gw.id).expect("tree").expect("exists"));
    let t = &intent.tunnels[0];
    assert!(t.route_based);
    let bgp = t.bgp.as_ref().expect("a BGP session");
    assert_eq!((bgp.local_asn, bgp.peer_asn, bgp.prefix_len), (45104, 65010, 30));
    assert_eq!((bgp.local_ip.to_string(), bgp.peer_ip.to_string()), ("169.254.11.1".into(), "169.254.11.2".into()));
    assert_eq!(bgp.auth_key.as_ref().map(|k| k.expose().to_string()), Some("md5-key".into()));
    // The VPC's block and the connection's own local subnets; 0/0 is never announced, the VPC never accepted.
    let vpc = intent.vpc_cidr.expect("the VPC's block");
    let mut want = vec![vpc, "10.0.0.0/16".parse().expect("net")];
    want.sort();
    assert_eq!(bgp.advertise, want);
    assert_eq!(bgp.refuse, vec![vpc]);

    let observe = |state: BgpSessionState, learned: Vec<LearnedRoute>| GatewayObservation {
        ready: true,
        tunnels: [(
            conn.id.clone(),
            TunnelObservation {
                state: TunnelState::IpsecSaEstablished,
                health_ok: None,
                bgp: Some(BgpObservation { state, learned }),
            },
        )]
        .into(),
        ..Default::default()
    };
    let learned = |dest: &str, path: Vec<u32>| LearnedRoute { dest: dest.parse().expect("net"), as_path: path };
    let system = |w: &World| {
        w.svc
            .list_routes(&w.ctx.scope, &gw.id, false, Some(RouteOrigin::System), &openvgw_core::PageRequest::ALL)
            .expect("routes")
            .items
    };
    let obs = observe(
        BgpSessionState::Established,
        vec![learned("172.16.50.0/24", vec![65010]), learned("172.16.60.0/24", vec![65010, 65020])],
    );
    assert_eq!(w.svc.record_observation(&gw.id, &obs).expect("observe"), 3, "the connection and two routes");
    let session = |w: &World| w.svc.get_connection(&w.ctx.scope, &conn.id).expect("conn").connection.bgp_session;
    let up = session(&w).expect("a session");
    assert_eq!((up.state, up.received_routes), (BgpSessionState::Established, 2));
    let routes = system(&w);
    assert_eq!(routes.len(), 2);
    let r = routes.iter().find(|r| r.dest.to_string() == "172.16.60.0/24").expect("learned route");
    assert_eq!((r.next_hop.as_str(), r.as_path.clone(), r.weight), (conn.id.as_str(), vec![65010, 65020], 100));
    assert!(gw.auto_propagate && r.published, "the gateway propagates automatically (the default)");
    assert_eq!(w.svc.record_observation(&gw.id, &obs).expect("observe"), 0, "nothing changed");
    // The driver installs learned routes itself (BIRD); the intent's routes are the API's own.
    let intent = crate::compile(&w.svc.gateway_tree(&gw.id).expect("tree").expect("exists"));
    assert!(intent.routes.is_empty(), "{:?}", intent.routes);
    // One prefix withdrawn, another's path changed.
    let obs = observe(BgpSessionState::Established, vec![learned("172.16.60.0/24", vec![65010])]);
    assert_eq!(w.svc.record_observation(&gw.id, &obs).expect("observe"), 3, "a route, a path, the count");
    assert_eq!(system(&w).iter().map(|r| r.as_path.clone()).collect::<Vec<_>>(), vec![vec![65010]]);
    // The session ends: its routes go, and the status says so.
    assert_eq!(w.svc.record_observation(&gw.id, &observe(BgpSessionState::Active, vec![])).expect("observe"), 2);
    assert!(system(&w).is_empty());
    let down = session(&w).expect("a session");
    assert_eq!((down.state, down.received_routes), (BgpSessionState::Active, 0));
    assert!(down.since_ms >= up.since_ms);
}

fn second_tunnel(cgw: &str, role: HaRole) -> openvgw_control::connections::NewTunnel {
    openvgw_control::connections::NewTunnel {
        customer_gateway_id: cgw.into(),
        public_ip: PublicIpRef::Index(1),
        role,
        psk: None,
        ike: ike(),
        ipsec: new_connection("", "", false).ipsec,
        dpd: true,
        nat_traversal: true,
        bgp: BgpPatch::default(),
        remote_ca_certificate: String::new(),
    }
}

/// A dual-tunnel connection is two tunnels to the data plane, on the gateway's two addresses: the first known by
/// the connection's id, the second by its own. Routes over the connection take the master at their weight and the
/// slave at 0 (standby), whichever tunnel is which; observations of each tunnel land on it; roles can be swapped.
#[tokio::test]
async fn dual_tunnel_connections_are_two_tunnels_the_master_routed_the_slave_standing_by() {
    let w = world();
    let gw = w.svc.create_gateway(&w.ctx, NewGateway { ha_mode: HaMode::ActiveStandby, ..new_gateway() }).expect("gw");
    w.rec.converge(&gw.id).await.expect("converge");
    let p1 = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.21")).expect("cgw");
    let p2 = w.svc.create_customer_gateway(&w.ctx, cgw("198.51.100.22")).expect("cgw");
    let dual = NewConnection {
        ha_role: Some(HaRole::Master),
        second_tunnel: Some(second_tunnel(&p2.id, HaRole::Slave)),
        ..new_connection(&gw.id, &p1.id, true)
    };
    let conn = w.svc.create_connection(&w.ctx, dual.clone()).expect("dual");
    let second = conn.second_tunnel.clone().expect("second tunnel");
    assert!(conn.tunnel_id.as_deref().is_some_and(|t| t.starts_with("tun-")) && second.id.starts_with("tun-"));
    assert_ne!(conn.psk.expose(), second.psk.expose(), "each tunnel gets its own key");
    assert_eq!(second.ike.local_id, gw.public_ips[1].address.to_string(), "identities default to its own ends");
    assert_eq!(second.ike.remote_id, "198.51.100.22");

    let routes = |w: &World| -> Vec<(String, String, u32)> {
        let intent = crate::compile(&w.svc.gateway_tree(&gw.id).expect("tree").expect("exists"));
        let mut r: Vec<_> = intent.routes.iter().map(|r| (r.tunnel_id.clone(), r.dest.to_string(), r.weight)).collect();
        r.sort();
        r
    };
    let intent = crate::compile(&w.svc.gateway_tree(&gw.id).expect("tree").expect("exists"));
    let t1 = intent.tunnels.iter().find(|t| t.id == conn.id).expect("first tunnel");
    let t2 = intent.tunnels.iter().find(|t| t.id == second.id).expect("second tunnel");
    assert_eq!((t1.local_ip, t2.local_ip), (gw.public_ips[0].address, gw.public_ips[1].address));
    assert_eq!((t1.remote_ip, t2.remote_ip), (p1.address(), p2.address()));
    assert!(t1.route_based && t2.route_based, "two tunnels to one network are chosen between by routes");
    assert_eq!(t2.psk.expose(), second.psk.expose());
    let mut expected = vec![
        (conn.id.clone(), "192.168.0.0/16".to_string(), 100),
        (second.id.clone(), "192.168.0.0/16".to_string(), 0),
    ];
    expected.sort();
    assert_eq!(routes(&w), expected, "the remote subnets over the master, the slave standing by");

    // A destination route over the connection takes both tunnels the same way.
    let route = NewRoute {
        gateway_id: gw.id.clone(),
        source: None,
        dest: "172.16.0.0/16".parse().expect("net"),
        next_hop: conn.id.clone(),
        weight: 100,
        priority: None,
        published: false,
        description: String::new(),
    };
    w.rec.converge(&gw.id).await.expect("converge");
    w.svc.create_route(&w.ctx, route).expect("route");
    assert!(routes(&w).contains(&(second.id.clone(), "172.16.0.0/16".to_string(), 0)), "{:?}", routes(&w));

    // Observations of each tunnel land on it; the connection carries while either does.
    let obs = |s1: TunnelState, s2: TunnelState| GatewayObservation {
        ready: true,
        tunnels: [
            (conn.id.clone(), TunnelObservation { state: s1, health_ok: None, bgp: None }),
            (second.id.clone(), TunnelObservation { state: s2, health_ok: None, bgp: None }),
        ]
        .into(),
        ..Default::default()
    };
    w.svc
        .record_observation(&gw.id, &obs(TunnelState::IkeSaNotEstablished, TunnelState::IpsecSaEstablished))
        .expect("obs");
    let seen = w.svc.get_connection(&w.ctx.scope, &conn.id).expect("conn").connection;
    assert_eq!(seen.state, TunnelState::IkeSaNotEstablished);
    assert_eq!(seen.second_tunnel.as_ref().map(|t| t.state), Some(TunnelState::IpsecSaEstablished));
    assert_eq!(seen.best_state(), TunnelState::IpsecSaEstablished);
    assert_eq!(
        w.svc
            .record_observation(&gw.id, &obs(TunnelState::IkeSaNotEstablished, TunnelState::IpsecSaEstablished))
            .expect("obs"),
        0,
        "nothing new"
    );

    // Swapping the roles in one request moves the routes; making both masters is refused.
    w.rec.converge(&gw.id).await.expect("converge");
    let swap = |first: HaRole, second_role: HaRole| openvgw_control::connections::ConnectionChanges {
        tunnels: vec![
            openvgw_control::connections::TunnelChanges {
                id: conn.tunnel_id.clone().expect("id"),
                role: Some(first),
                ..Default::default()
            },
            openvgw_control::connections::TunnelChanges {
                id: second.id.clone(),
                role: Some(second_role),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert!(w.svc.modify_connection(&w.ctx, &conn.id, swap(HaRole::Master, HaRole::Master)).is_err());
    w.svc.modify_connection(&w.ctx, &conn.id, swap(HaRole::Slave, HaRole::Master)).expect("swap");
    let swapped = routes(&w);
    assert!(swapped.contains(&(conn.id.clone(), "192.168.0.0/16".to_string(), 0)), "{swapped:?}");
    assert!(swapped.contains(&(second.id.clone(), "192.168.0.0/16".to_string(), 100)), "{swapped:?}");
    let unknown = openvgw_control::connections::ConnectionChanges {
        tunnels: vec![openvgw_control::connections::TunnelChanges { id: "tun-nope".into(), ..Default::default() }],
        ..Default::default()
    };
    assert!(matches!(
        w.svc.modify_connection(&w.ctx, &conn.id, unknown),
        Err(openvgw_core::Error::NotFound { kind: openvgw_core::Kind::Tunnel, .. })
    ));

    // The second tunnel's address and peer cannot be another connection's tunnel's, and needs a second address.
    w.rec.converge(&gw.id).await.expect("converge");
    assert!(w.svc.create_connection(&w.ctx, dual).is_err(), "the same two tunnels again");
    let single = w.svc.create_gateway(&w.ctx, new_gateway()).expect("gw");
    w.rec.converge(&single.id).await.expect("converge");
    let on_single = NewConnection {
        ha_role: Some(HaRole::Master),
        second_tunnel: Some(second_tunnel(&p2.id, HaRole::Slave)),
        ..new_connection(&single.id, &p1.id, true)
    };
    assert!(w.svc.create_connection(&w.ctx, on_single).is_err(), "a gateway with one address has no second tunnel");
    // A customer gateway a second tunnel uses cannot go.
    assert!(w.svc.delete_customer_gateway(&w.ctx, &p2.id).is_err());
}
