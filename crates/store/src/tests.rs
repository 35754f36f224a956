//! Store unit tests: transactions, typed keys, paging, cascades, address pools, tags.

use std::net::Ipv4Addr;

use openvgw_core::crypto::*;
use openvgw_core::model::*;
use openvgw_core::{Error, Field, Kind, PageRequest, Rule, Secret};

use crate::{ListQuery, Store, TagFilter};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("t.db")).expect("open");
    (dir, store)
}

fn scope() -> Scope {
    Scope::new("tnt-a", "r1")
}

fn cgw(id: &str, scope: &Scope, ip: &str) -> CustomerGateway {
    CustomerGateway {
        id: id.into(),
        scope: scope.clone(),
        name: id.into(),
        description: String::new(),
        identity: PeerIdentity::Ip(ip.parse().expect("ip")),
        asn: None,
        bgp_auth_key: None,
        ca_certificate: None,
        created_at: 1,
        updated_at: 1,
        ext: Extensions::default(),
    }
}

fn gateway(id: &str, scope: &Scope) -> VpnGateway {
    VpnGateway {
        id: id.into(),
        scope: scope.clone(),
        name: id.into(),
        description: String::new(),
        vpc_id: "vpc-1".into(),
        subnet_id: String::new(),
        local_subnets: vec![],
        bandwidth_mbps: 5,
        role: GatewayRole::Both,
        ipsec_enabled: true,
        ssl_enabled: true,
        ssl_max_connections: 5,
        crypto_suite: CryptoSuite::Standard,
        ha_mode: HaMode::Single,
        public_ips: vec![PublicIp { id: "eip-1".into(), address: Ipv4Addr::new(203, 0, 113, 5) }],
        private_ip: Ipv4Addr::new(10, 0, 0, 2),
        bgp_asn: None,
        auto_propagate: true,
        enable_bgp: false,
        created_at: 1,
        updated_at: 1,
        phase: GatewayPhase::Init,
        generation: 1,
        applied_generation: 0,
        ext: Extensions::default(),
    }
}

fn connection(id: &str, gw: &str, cgw: &str, scope: &Scope) -> VpnConnection {
    VpnConnection {
        id: id.into(),
        scope: scope.clone(),
        gateway_id: gw.into(),
        customer_gateway_id: cgw.into(),
        name: id.into(),
        description: String::new(),
        public_ip_index: 0,
        mode: ConnectionMode::Policy,
        local_subnets: vec!["10.0.0.0/16".parse().expect("net")],
        remote_subnets: vec!["192.168.0.0/16".parse().expect("net")],
        policy_rules: vec![],
        inside: None,
        bgp: BgpConfig::default(),
        psk: Secret::new("k"),
        ike: IkeConfig {
            version: IkeVersion::V2,
            mode: NegotiationMode::Main,
            encryption: Encryption::Aes128,
            integrity: Integrity::Sha256,
            dh_group: DhGroup::Group14,
            auth_method: AuthMethod::PreSharedKey,
            lifetime_s: 3600,
            local_id_type: IdentityType::Ip,
            local_id: "203.0.113.5".into(),
            remote_id_type: IdentityType::Ip,
            remote_id: "198.51.100.1".into(),
            dpd: Dpd::default(),
        },
        ipsec: IpsecConfig {
            encryption: Encryption::Aes128,
            integrity: Integrity::Sha256,
            pfs: None,
            lifetime_s: 3600,
            transform: TransformProtocol::Esp,
            encapsulation: EncapsulationMode::Tunnel,
        },
        health_check: HealthCheck::default(),
        initiate: false,
        dpd: true,
        nat_traversal: true,
        auto_route: true,
        ha_role: None,
        remote_ca_certificate: String::new(),
        created_at: 1,
        updated_at: 1,
        state: TunnelState::IkeSaNotEstablished,
        health_ok: None,
        ext: Extensions::default(),
    }
}

fn route(id: &str, gw: &str, hop: &str, scope: &Scope) -> RouteEntry {
    RouteEntry {
        id: id.into(),
        scope: scope.clone(),
        gateway_id: gw.into(),
        source: None,
        dest: "172.16.0.0/16".parse().expect("net"),
        next_hop: hop.into(),
        weight: 100,
        priority: None,
        published: false,
        description: String::new(),
        origin: RouteOrigin::Custom,
        created_at: 1,
    }
}

fn group(id: &str, server: &str, scope: &Scope) -> UserGroup {
    UserGroup {
        id: id.into(),
        scope: scope.clone(),
        server_id: server.into(),
        name: id.into(),
        description: String::new(),
        builtin: false,
        created_at: 1,
        updated_at: 1,
    }
}

fn policy(id: &str, server: &str, group: &str, scope: &Scope) -> AccessPolicy {
    AccessPolicy {
        id: id.into(),
        scope: scope.clone(),
        server_id: server.into(),
        group_id: group.into(),
        name: id.into(),
        description: String::new(),
        dest_cidrs: vec!["10.1.0.0/24".parse().expect("net")],
        created_at: 1,
        updated_at: 1,
    }
}

fn ssl_server(id: &str, gw: &str, scope: &Scope) -> SslVpnServer {
    SslVpnServer {
        id: id.into(),
        scope: scope.clone(),
        gateway_id: gw.into(),
        name: id.into(),
        client_ip_pool: "192.168.100.0/24".parse().expect("net"),
        local_subnets: vec!["10.0.0.0/16".parse().expect("net")],
        transport: Transport::Udp,
        cipher: SslCipher::Aes128Cbc,
        port: 1194,
        compress: false,
        client_auth: ClientAuth::Password,
        dns_servers: vec![],
        ca_cert_pem: String::new(),
        ca_key_pem: Secret::default(),
        server_cert_pem: String::new(),
        server_key_pem: Secret::default(),
        revoked_serials: vec![],
        crl_number: 0,
        connections: 0,
        since_generation: 1,
        created_at: 1,
        updated_at: 1,
        ext: Extensions::default(),
    }
}

#[test]
fn a_failing_transaction_leaves_nothing() {
    let (_d, st) = store();
    let s = scope();
    let r: openvgw_core::Result<()> = st.write(|tx| {
        tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))?;
        Err(Error::internal("boom"))
    });
    assert!(r.is_err());
    assert!(st.read(|tx| tx.get::<CustomerGateway>(&s, "cgw-1")).expect("read").is_none());
    // DryRun: the closure's writes are rolled back even when it succeeds.
    st.write_rollback(|tx| tx.insert(&cgw("cgw-2", &s, "198.51.100.2"))).expect("dry run");
    assert_eq!(st.read(|tx| tx.count::<CustomerGateway>(&ListQuery::in_scope(&s))).expect("count"), 0);
    st.write(|tx| tx.insert(&cgw("cgw-3", &s, "198.51.100.3"))).expect("commit");
    assert_eq!(st.read(|tx| tx.count::<CustomerGateway>(&ListQuery::in_scope(&s))).expect("count"), 1);
}

#[test]
fn reads_refuse_to_write() {
    let (_d, st) = store();
    let s = scope();
    assert!(st.read(|tx| tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))).is_err());
}

#[test]
fn scope_isolates_tenants_and_regions() {
    let (_d, st) = store();
    let a = scope();
    let b = Scope::new("tnt-b", "r1");
    let other_region = Scope::new("tnt-a", "r2");
    st.write(|tx| tx.insert(&cgw("cgw-1", &a, "198.51.100.1"))).expect("insert");
    st.read(|tx| {
        assert!(tx.get::<CustomerGateway>(&a, "cgw-1")?.is_some());
        assert!(tx.get::<CustomerGateway>(&b, "cgw-1")?.is_none());
        assert!(tx.get::<CustomerGateway>(&other_region, "cgw-1")?.is_none());
        assert!(matches!(tx.require::<CustomerGateway>(&b, "cgw-1"), Err(Error::NotFound { .. })));
        assert!(tx.get_unscoped::<CustomerGateway>("cgw-1")?.is_some());
        Ok(())
    })
    .expect("read");
}

#[test]
fn typed_keys_follow_updates() {
    let (_d, st) = store();
    let s = scope();
    st.write(|tx| {
        tx.insert(&gateway("vpn-1", &s))?;
        tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))?;
        tx.insert(&cgw("cgw-2", &s, "198.51.100.2"))?;
        tx.insert(&connection("vco-1", "vpn-1", "cgw-1", &s))
    })
    .expect("insert");
    let by_cgw = |id: &str| {
        st.read(|tx| tx.count::<VpnConnection>(&ListQuery::in_scope(&s).key(Index::CustomerGateway, id)))
            .expect("count")
    };
    assert_eq!((by_cgw("cgw-1"), by_cgw("cgw-2")), (1, 0));
    st.write(|tx| {
        let mut c: VpnConnection = tx.require(&s, "vco-1")?;
        c.customer_gateway_id = "cgw-2".into();
        tx.update(&c)
    })
    .expect("update");
    assert_eq!((by_cgw("cgw-1"), by_cgw("cgw-2")), (0, 1));
    let by_ip = st
        .read(|tx| tx.first::<CustomerGateway>(&ListQuery::in_scope(&s).key(Index::PeerIdentity, "ip:198.51.100.2")))
        .expect("first");
    assert_eq!(by_ip.map(|c| c.id), Some("cgw-2".to_string()));
}

#[test]
fn keyset_pages_neither_skip_nor_repeat_across_changes() {
    let (_d, st) = store();
    let s = scope();
    st.write(|tx| {
        for i in 0..10 {
            tx.insert(&cgw(&format!("cgw-{i:02}"), &s, &format!("198.51.100.{}", i + 1)))?;
        }
        Ok(())
    })
    .expect("insert");
    let q = ListQuery::in_scope(&s);
    let first = st.read(|tx| tx.list::<CustomerGateway>(&q, &PageRequest::first(4))).expect("page 1");
    assert_eq!(first.total, 10);
    assert_eq!(first.items.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["cgw-00", "cgw-01", "cgw-02", "cgw-03"]);
    // Between pages: one row already seen and one not yet seen are deleted, and a new row is added.
    st.write(|tx| {
        tx.delete(Kind::CustomerGateway, "cgw-01")?;
        tx.delete(Kind::CustomerGateway, "cgw-05")?;
        tx.insert(&cgw("cgw-new", &s, "198.51.100.200"))
    })
    .expect("change");
    let mut seen: Vec<String> = first.items.iter().map(|c| c.id.clone()).collect();
    let mut next = first.next;
    while let Some(cursor) = next {
        let page = st
            .read(|tx| tx.list::<CustomerGateway>(&q, &PageRequest::After { cursor: Some(cursor), limit: 4 }))
            .expect("page");
        seen.extend(page.items.iter().map(|c| c.id.clone()));
        next = page.next;
    }
    assert_eq!(
        seen,
        ["cgw-00", "cgw-01", "cgw-02", "cgw-03", "cgw-04", "cgw-06", "cgw-07", "cgw-08", "cgw-09", "cgw-new"]
    );
}

#[test]
fn offset_pages_and_bad_cursors() {
    let (_d, st) = store();
    let s = scope();
    st.write(|tx| {
        for i in 0..5 {
            tx.insert(&cgw(&format!("cgw-{i}"), &s, &format!("198.51.100.{}", i + 1)))?;
        }
        Ok(())
    })
    .expect("insert");
    let q = ListQuery::in_scope(&s);
    let p2 = st.read(|tx| tx.list::<CustomerGateway>(&q, &PageRequest::numbered(2, 2))).expect("page");
    assert_eq!(p2.items.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["cgw-2", "cgw-3"]);
    assert!(p2.next.is_some());
    let last = st.read(|tx| tx.list::<CustomerGateway>(&q, &PageRequest::numbered(3, 2))).expect("page");
    assert_eq!(last.items.len(), 1);
    assert!(last.next.is_none());
    let beyond = st.read(|tx| tx.list::<CustomerGateway>(&q, &PageRequest::numbered(u64::MAX, 50))).expect("page");
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 5);
    let bad = PageRequest::After { cursor: Some(openvgw_core::Cursor("nope".into())), limit: 2 };
    assert!(matches!(
        st.read(|tx| tx.list::<CustomerGateway>(&q, &bad)),
        Err(Error::Invalid { field: Field::PageToken, rule: Rule::UnknownToken })
    ));
}

#[test]
fn deleting_a_tree_removes_children_dependents_tags_keys_and_addresses() {
    let (_d, st) = store();
    let s = scope();
    st.write(|tx| {
        tx.insert(&gateway("vpn-1", &s))?;
        tx.insert(&gateway("vpn-2", &s))?;
        tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))?;
        tx.insert(&connection("vco-1", "vpn-1", "cgw-1", &s))?;
        tx.insert(&connection("vco-2", "vpn-2", "cgw-1", &s))?;
        tx.insert(&route("vre-1", "vpn-1", "vco-1", &s))?;
        tx.insert(&route("vre-2", "vpn-2", "vco-2", &s))?;
        tx.insert(&ssl_server("vss-1", "vpn-1", &s))?;
        tx.insert(&group("vug-1", "vss-1", &s))?;
        tx.insert(&policy("vap-1", "vss-1", "vug-1", &s))?;
        tx.put_tag(&s, Kind::VpnConnection, "vco-1", &Tag { key: "k".into(), value: "v".into() })?;
        tx.claim_address("eip", ["203.0.113.5".to_string()].into_iter(), "vpn-1")?;
        Ok(())
    })
    .expect("insert");
    st.write(|tx| tx.delete_tree(Kind::VpnGateway, "vpn-1")).expect("delete");
    st.read(|tx| {
        assert!(tx.get::<VpnGateway>(&s, "vpn-1")?.is_none());
        assert!(tx.get::<VpnConnection>(&s, "vco-1")?.is_none());
        assert!(tx.get::<RouteEntry>(&s, "vre-1")?.is_none());
        assert!(tx.get::<SslVpnServer>(&s, "vss-1")?.is_none());
        assert!(tx.get::<UserGroup>(&s, "vug-1")?.is_none());
        assert!(tx.get::<AccessPolicy>(&s, "vap-1")?.is_none());
        assert!(tx.tags_of("vco-1")?.is_empty());
        assert_eq!(tx.count::<VpnConnection>(&ListQuery::in_scope(&s).key(Index::CustomerGateway, "cgw-1"))?, 1);
        // The other gateway's tree and the shared customer gateway stay.
        assert!(tx.get::<VpnGateway>(&s, "vpn-2")?.is_some());
        assert!(tx.get::<RouteEntry>(&s, "vre-2")?.is_some());
        assert!(tx.get::<CustomerGateway>(&s, "cgw-1")?.is_some());
        Ok(())
    })
    .expect("read");
    // The address went with its owner and can be claimed again.
    let again = st.write(|tx| tx.claim_address("eip", ["203.0.113.5".to_string()].into_iter(), "vpn-3")).expect("c");
    assert_eq!(again.as_deref(), Some("203.0.113.5"));
    // A connection's routes depend on it.
    st.write(|tx| tx.delete_tree(Kind::VpnConnection, "vco-2")).expect("delete");
    assert!(st.read(|tx| tx.get::<RouteEntry>(&s, "vre-2")).expect("read").is_none());
}

#[test]
fn address_pools_never_hand_out_an_address_twice() {
    let (_d, st) = store();
    let pool = || ["10.0.0.2", "10.0.0.3"].iter().map(|s| s.to_string());
    let a = st.write(|tx| tx.claim_address("p", pool(), "a")).expect("claim");
    let b = st.write(|tx| tx.claim_address("p", pool(), "b")).expect("claim");
    let c = st.write(|tx| tx.claim_address("p", pool(), "c")).expect("claim");
    assert_eq!((a.as_deref(), b.as_deref(), c), (Some("10.0.0.2"), Some("10.0.0.3"), None));
    // Pools are independent.
    assert!(st.write(|tx| tx.claim_address("q", pool(), "d")).expect("claim").is_some());
    st.write(|tx| tx.release_addresses("a")).expect("release");
    assert_eq!(st.write(|tx| tx.claim_address("p", pool(), "e")).expect("claim").as_deref(), Some("10.0.0.2"));
}

#[test]
fn tag_bindings_filter_and_page() {
    let (_d, st) = store();
    let s = scope();
    st.write(|tx| {
        for i in 0..3 {
            let id = format!("cgw-{i}");
            tx.insert(&cgw(&id, &s, &format!("198.51.100.{}", i + 1)))?;
            tx.put_tag(&s, Kind::CustomerGateway, &id, &Tag { key: "env".into(), value: format!("e{i}") })?;
            tx.put_tag(&s, Kind::CustomerGateway, &id, &Tag { key: "team".into(), value: "net".into() })?;
        }
        Ok(())
    })
    .expect("insert");
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = st.read(|tx| tx.tag_bindings(&s, Kind::CustomerGateway, &[], &[], after.as_ref(), 4)).expect("page");
        assert_eq!(page.total, 6);
        keys.extend(page.items.iter().map(|t| format!("{}/{}", t.resource_id, t.key)));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(keys, ["cgw-0/env", "cgw-0/team", "cgw-1/env", "cgw-1/team", "cgw-2/env", "cgw-2/team"]);
    let f = [TagFilter { key: "env".into(), value: Some("e1".into()) }];
    let only = st.read(|tx| tx.tag_bindings(&s, Kind::CustomerGateway, &[], &f, None, 50)).expect("filter");
    assert_eq!(only.items.len(), 1);
    assert_eq!((only.items[0].resource_id.as_str(), only.items[0].key.as_str()), ("cgw-1", "env"));
    let q = ListQuery { tags: f.to_vec(), ..ListQuery::in_scope(&s) };
    assert_eq!(st.read(|tx| tx.count::<CustomerGateway>(&q)).expect("count"), 1);
}

#[test]
fn a_v1_database_with_resources_is_refused_not_misread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
             CREATE TABLE resources (seq INTEGER PRIMARY KEY, kind TEXT, id TEXT, tenant_id TEXT, region TEXT,
               parent_id TEXT, name TEXT, lookup_key TEXT, created_at INTEGER, doc TEXT);
             INSERT INTO resources (kind, id, doc) VALUES ('vpn_gateway', 'vpn-old', '{}');",
        )
        .expect("old schema");
    }
    let err = Store::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("openvgw 0.1"), "{err}");
}
