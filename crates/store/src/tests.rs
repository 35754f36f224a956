//! Store unit tests: transactions, typed keys, paging, cascades, address pools, tags.

use std::net::Ipv4Addr;

use openvgw_core::crypto::*;
use openvgw_core::model::*;
use openvgw_core::{Error, Field, Kind, PageRequest, Rule, Secret};

use crate::{ListQuery, Store, TagFilter};

/// Every test below runs on SQLite and, when `OPENVGW_TEST_PG_URL` names a PostgreSQL server, on a fresh database
/// there (under `CI=true` a missing server fails the PostgreSQL variants rather than skipping them).
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                let (_d, st) = super::sqlite_store();
                super::$name(&st);
            }
            #[test]
            fn postgres() {
                let Some(db) = crate::test_pg::TestDb::create() else { return };
                let st = db.store();
                super::$name(&st);
            }
        }
    )*};
}

fn sqlite_store() -> (tempfile::TempDir, Store) {
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
        second_private_ip: None,
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
        bgp_session: None,
        tunnel_id: None,
        second_tunnel: None,
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
        as_path: Vec::new(),
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
        revoked_client_ids: vec![],
        crl_number: 0,
        connections: 0,
        since_generation: 1,
        created_at: 1,
        updated_at: 1,
        ext: Extensions::default(),
    }
}

fn a_failing_transaction_leaves_nothing(st: &Store) {
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

fn reads_refuse_to_write(st: &Store) {
    let s = scope();
    assert!(st.read(|tx| tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))).is_err());
}

fn scope_isolates_tenants_and_regions(st: &Store) {
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

fn typed_keys_follow_updates(st: &Store) {
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

fn keyset_pages_neither_skip_nor_repeat_across_changes(st: &Store) {
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

fn offset_pages_and_bad_cursors(st: &Store) {
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

fn deleting_a_tree_removes_children_dependents_tags_keys_and_addresses(st: &Store) {
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

fn address_pools_never_hand_out_an_address_twice(st: &Store) {
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

fn tag_bindings_filter_and_page(st: &Store) {
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

fn tenant(id: &str, name: &str) -> Tenant {
    Tenant { id: id.into(), name: name.into(), projects: Default::default(), created_at: 7, disabled: false }
}

fn nul_in_keys_is_not_found_not_an_error(st: &Store) {
    let s = scope();
    st.write(|tx| tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))).expect("insert");
    assert!(st.read(|tx| tx.get::<CustomerGateway>(&s, "cgw-1\0")).expect("lookup").is_none());
    st.write(|tx| tx.insert(&cgw("cgw-\0x", &s, "198.51.100.2"))).expect("insert with NUL");
    assert_eq!(st.read(|tx| tx.count::<CustomerGateway>(&ListQuery::in_scope(&s))).expect("count"), 2);
}

fn tenants_are_unique_by_name(st: &Store) {
    st.write(|tx| tx.insert_tenant(&tenant("tnt-1", "team"))).expect("first");
    let again = st.write(|tx| tx.insert_tenant(&tenant("tnt-2", "team")));
    assert!(matches!(again, Err(Error::AlreadyExists { .. })), "{again:?}");
    assert_eq!(st.read(|tx| tx.tenants()).expect("tenants").len(), 1);
}

fn nonces_are_used_once_and_capped_per_key(st: &Store) {
    use crate::NonceCheck::*;
    assert_eq!(st.use_nonce("AK1", "n1", 1_000, 10_000, 3).expect("n1"), New);
    assert_eq!(st.use_nonce("AK1", "n1", 2_000, 11_000, 3).expect("n1 again"), Used);
    // Another key's nonce is another nonce.
    assert_eq!(st.use_nonce("AK2", "n1", 2_000, 11_000, 3).expect("AK2"), New);
    assert_eq!(st.use_nonce("AK1", "n2", 2_000, 11_000, 3).expect("n2"), New);
    assert_eq!(st.use_nonce("AK1", "n3", 2_000, 11_000, 3).expect("n3"), New);
    // The cap: a fourth live nonce of AK1 is refused and not recorded; a replay is still a replay.
    assert_eq!(st.use_nonce("AK1", "n4", 3_000, 12_000, 3).expect("n4"), Full);
    assert_eq!(st.use_nonce("AK1", "n2", 3_000, 12_000, 3).expect("n2 again"), Used);
    assert_eq!(st.use_nonce("AK2", "n2", 3_000, 12_000, 3).expect("AK2 n2"), New);
    // Once expired and purged, the key has room again; an expired nonce may be used again.
    assert_eq!(st.purge_nonces(10_500).expect("purge"), 1);
    assert_eq!(st.use_nonce("AK1", "n4", 10_600, 20_000, 3).expect("n4 after purge"), New);
    assert_eq!(st.use_nonce("AK1", "n1", 10_700, 20_000, 3).expect("n1 expired"), Full);
    assert_eq!(st.purge_nonces(30_000).expect("purge all"), 5);
    assert_eq!(st.use_nonce("AK1", "n1", 30_001, 40_000, 3).expect("n1 after expiry"), New);
    // A deleted key's nonces are forgotten (and the deletion works on a store that keeps them in another file).
    assert_eq!(st.use_nonce("AK2", "n9", 30_001, 40_000, 3).expect("AK2 n9"), New);
    assert!(!st.write(|tx| tx.delete_access_key("AK1")).expect("delete a key that is not stored"));
    st.forget_nonces("AK1").expect("forget");
    let held = st
        .read(|tx| tx.rows("SELECT COUNT(*) FROM nonces WHERE access_key_id = 'AK1'", &[]))
        .expect("count")
        .first()
        .map(|r| r.int(0))
        .transpose()
        .expect("int");
    assert_eq!(held, Some(0));
    assert_eq!(st.use_nonce("AK2", "n9", 30_002, 40_000, 3).expect("AK2 kept"), Used);
}

fn leases_have_one_holder(st: &Store) {
    assert!(st.acquire_lease("reconciler", "a", 1_000, 5_000).expect("a takes"));
    assert!(st.acquire_lease("reconciler", "a", 2_000, 5_000).expect("a renews"));
    assert_eq!(st.lease_holder("reconciler", 2_500).expect("holder").as_deref(), Some("a"));
    st.release_lease("reconciler", "a").expect("release");
    assert_eq!(st.lease_holder("reconciler", 2_500).expect("holder"), None);
}

fn writes_are_serialised(st: &Store) {
    // Read-then-insert in every transaction: without serialisation two writers pick the same id.
    let s = scope();
    std::thread::scope(|t| {
        for _ in 0..3 {
            t.spawn(|| {
                for _ in 0..15 {
                    st.write(|tx| {
                        let n = tx.count::<CustomerGateway>(&ListQuery::in_scope(&s))?;
                        tx.insert(&cgw(&format!("cgw-{n}"), &s, "198.51.100.1"))
                    })
                    .expect("serialised write");
                }
            });
        }
    });
    assert_eq!(st.read(|tx| tx.count::<CustomerGateway>(&ListQuery::in_scope(&s))).expect("count"), 45);
}

/// Group commit (SQLite): many writers at once, some failing, some DryRun, one panicking, each seeing the others'
/// committed writes as if they ran one after another; every write that returned Ok is readable at once.
#[test]
fn concurrent_writes_share_commits_and_keep_their_own_outcome() {
    let (_d, st) = sqlite_store();
    let s = scope();
    let kept = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|t| {
        for w in 0..16 {
            let (st, s, kept) = (&st, &s, &kept);
            t.spawn(move || {
                for i in 0..40 {
                    let id = format!("cgw-{w}-{i}");
                    let write = |tx: &crate::Tx| {
                        // Read-then-insert: a member must see every earlier member's kept writes.
                        let n = tx.count::<CustomerGateway>(&ListQuery::in_scope(s))?;
                        tx.insert(&cgw(&format!("{id}-{n}"), s, "198.51.100.1"))?;
                        if i % 5 == 4 {
                            return Err(Error::internal("refused"));
                        }
                        Ok(n)
                    };
                    let out =
                        if i % 7 == 6 { st.write_rollback(write).map(|_| None) } else { st.write(write).map(Some) };
                    match (i % 5 == 4, out) {
                        (true, r) => assert!(r.is_err(), "a failing member fails"),
                        (false, Ok(Some(n))) => {
                            kept.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let mine = format!("{id}-{n}");
                            assert!(st.read(|tx| tx.get::<CustomerGateway>(s, &mine)).expect("read").is_some());
                        }
                        (false, Ok(None)) => {}
                        (false, Err(e)) => panic!("write failed: {e}"),
                    }
                }
            });
        }
        let (st, s) = (&st, &s);
        t.spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                st.write(|tx| -> openvgw_core::Result<()> {
                    tx.insert(&cgw("cgw-panic", s, "198.51.100.1"))?;
                    panic!("a bug in a handler")
                })
            }));
            assert!(r.is_err(), "the panic reaches its caller");
        });
    });
    let kept = kept.load(std::sync::atomic::Ordering::SeqCst);
    // Every kept write is there exactly once; the counts each member read were all different (serial order).
    let all = st.read(|tx| tx.all::<CustomerGateway>(&ListQuery::in_scope(&s))).expect("all");
    assert_eq!(all.len() as u64, kept);
    let mut seen: Vec<u64> =
        all.iter().map(|c| c.id.rsplit('-').next().and_then(|n| n.parse().ok()).expect("n")).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..kept).collect::<Vec<_>>());
    assert!(st.read(|tx| tx.get::<CustomerGateway>(&s, "cgw-panic")).expect("read").is_none());
    assert_counts_agree(&st);
    // The store still works after all that.
    st.write(|tx| tx.insert(&cgw("cgw-after", &s, "198.51.100.1"))).expect("write after");
}

/// Some of everything: tenants, keys, resources with keys and tags, events, addresses, idempotency, nonces.
fn populate(st: &Store) {
    let s = scope();
    st.write(|tx| {
        tx.insert_tenant(&tenant("tnt-a", "a"))?;
        tx.insert_access_key(&AccessKey {
            id: "AK1".into(),
            secret: Secret::new("s3cret".to_string()),
            tenant_id: "tnt-a".into(),
            created_at: 9,
        })?;
        tx.insert(&gateway("vpn-1", &s))?;
        tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))?;
        tx.insert(&connection("vco-1", "vpn-1", "cgw-1", &s))?;
        tx.put_tag(&s, Kind::VpnGateway, "vpn-1", &Tag { key: "env".into(), value: "prod \u{1f600}".into() })?;
        tx.append_event("vpn-1", 5, "created")?;
        tx.append_event("vpn-1", 6, "it's \"quoted\"")?;
        tx.claim_address("eip", ["203.0.113.5".to_string()].into_iter(), "vpn-1")?;
        tx.put_idempotency(
            "tnt-a",
            "CreateVpnGateway",
            "tok",
            &crate::IdempotencyRecord { params_hash: "h".into(), result: "{}".into(), created_at: 3 },
        )?;
        Ok(())
    })
    .expect("populate");
    st.use_nonce("AK1", "n1", 1, i64::MAX / 2, 10).expect("nonce");
}

/// A dump without its header (which names the backend and the time).
fn dump(st: &Store) -> Vec<String> {
    let mut out = Vec::new();
    st.backup(&mut out).expect("backup");
    String::from_utf8(out).expect("utf-8").lines().skip(1).map(str::to_string).collect()
}

fn round_trip(from: &Store, to: &Store) {
    populate(from);
    let mut bytes = Vec::new();
    let written = from.backup(&mut bytes).expect("backup");
    assert!(written.rows() >= 12, "{written:?}");
    let read = to.restore(&mut bytes.as_slice()).expect("restore");
    assert_eq!(written, read);
    assert_eq!(dump(from), dump(to), "every table is copied as is");
    // The restored store answers as the original and keeps counting after the restored rows.
    let s = scope();
    let page = |st: &Store| {
        st.read(|tx| tx.list::<VpnConnection>(&ListQuery::in_scope(&s), &PageRequest::ALL)).expect("list").items
    };
    assert_eq!(serde_json::to_value(page(from)).ok(), serde_json::to_value(page(to)).ok());
    to.write(|tx| tx.insert(&cgw("cgw-2", &s, "198.51.100.2"))).expect("insert after restore");
    let after =
        to.read(|tx| tx.list::<CustomerGateway>(&ListQuery::in_scope(&s), &PageRequest::ALL)).expect("list").items;
    assert_eq!(after.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["cgw-1", "cgw-2"]);
    assert_eq!(to.use_nonce("AK1", "n1", 2, 100, 10).expect("nonce"), crate::NonceCheck::Used);
    // Restoring again is refused: the store is not empty.
    let again = to.restore(&mut bytes.as_slice()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(again.contains("not empty"), "{again}");
}

fn backup_round_trip_sqlite_to_same(st: &Store) {
    let (_d, target) = sqlite_store();
    round_trip(st, &target);
}

fn backup_round_trip_to_postgres(st: &Store) {
    let Some(db) = crate::test_pg::TestDb::create() else { return };
    round_trip(st, &db.store());
}

fn truncated_backups_are_refused(st: &Store) {
    let (_d, from) = sqlite_store();
    populate(&from);
    let mut bytes = Vec::new();
    from.backup(&mut bytes).expect("backup");
    let text = String::from_utf8(bytes).expect("utf-8");
    let cut: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    let err = st.restore(&mut cut.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("end marker"), "{err}");
    // Nothing of the cut dump was kept.
    assert!(st.read(|tx| tx.tenants()).expect("tenants").is_empty());
}

#[test]
fn nonces_and_leases_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    {
        let st = Store::open(&path).expect("open");
        assert_eq!(st.use_nonce("AK1", "n1", 1, 1_000_000, 10).expect("n1"), crate::NonceCheck::New);
    }
    let st = Store::open(&path).expect("reopen");
    assert_eq!(st.use_nonce("AK1", "n1", 2, 1_000_000, 10).expect("n1"), crate::NonceCheck::Used);
}

#[test]
fn postgres_nonces_are_shared_and_leases_exclusive() {
    let Some(db) = crate::test_pg::TestDb::create() else { return };
    let (a, b) = (db.store(), db.store());
    assert_eq!(a.use_nonce("AK1", "n1", 1, 1_000_000, 10).expect("a"), crate::NonceCheck::New);
    assert_eq!(b.use_nonce("AK1", "n1", 2, 1_000_000, 10).expect("b"), crate::NonceCheck::Used);
    drop(a);
    let a = db.store();
    assert_eq!(a.use_nonce("AK1", "n1", 3, 1_000_000, 10).expect("a again"), crate::NonceCheck::Used);
    // One holder at a time; the other takes over once the lease expires.
    assert!(a.acquire_lease("reconciler", "a", 1_000, 5_000).expect("a takes"));
    assert!(!b.acquire_lease("reconciler", "b", 2_000, 5_000).expect("b waits"));
    assert_eq!(b.lease_holder("reconciler", 2_000).expect("holder").as_deref(), Some("a"));
    assert!(b.acquire_lease("reconciler", "b", 6_000, 5_000).expect("b takes over"));
    assert!(!a.acquire_lease("reconciler", "a", 6_500, 5_000).expect("a lost it"));
    // Writes through two stores are serialised as through one.
    writes_are_serialised(&a);
    let s = scope();
    assert_eq!(b.read(|tx| tx.count::<CustomerGateway>(&ListQuery::in_scope(&s))).expect("count"), 45);
}

#[test]
fn postgres_backup_round_trip_to_sqlite() {
    let Some(db) = crate::test_pg::TestDb::create() else { return };
    let (_d, target) = sqlite_store();
    round_trip(&db.store(), &target);
}

both!(
    nul_in_keys_is_not_found_not_an_error,
    tenants_are_unique_by_name,
    nonces_are_used_once_and_capped_per_key,
    leases_have_one_holder,
    writes_are_serialised,
    backup_round_trip_sqlite_to_same,
    backup_round_trip_to_postgres,
    truncated_backups_are_refused,
    a_failing_transaction_leaves_nothing,
    reads_refuse_to_write,
    scope_isolates_tenants_and_regions,
    typed_keys_follow_updates,
    keyset_pages_neither_skip_nor_repeat_across_changes,
    offset_pages_and_bad_cursors,
    deleting_a_tree_removes_children_dependents_tags_keys_and_addresses,
    address_pools_never_hand_out_an_address_twice,
    tag_bindings_filter_and_page,
    rate_buckets_are_all_or_nothing,
    counts_follow_every_change,
    tags_of_many_matches_tags_of,
    agent_tokens_are_spent_once_agents_revoked_once_and_placements_kept,
);

fn agent_tokens_are_spent_once_agents_revoked_once_and_placements_kept(st: &Store) {
    let agent = |id: &str| AgentRecord {
        id: id.into(),
        name: format!("host {id}"),
        serial: "0abc".into(),
        joined_at: 1_000,
        revoked_at: None,
    };
    assert_eq!(st.read(|tx| tx.agent_ca()).expect("ca"), None);
    assert!(st.write(|tx| tx.insert_agent_ca("CERT-1", &Secret::new("KEY-1"))).expect("ca"));
    assert!(!st.write(|tx| tx.insert_agent_ca("CERT-2", &Secret::new("KEY-2"))).expect("ca"), "the first CA stays");
    let (cert, key) = st.read(|tx| tx.agent_ca()).expect("ca").expect("stored");
    assert_eq!((cert.as_str(), key.expose()), ("CERT-1", "KEY-1"));

    st.write(|tx| tx.insert_agent_token("d-live", 1_000, 5_000)).expect("token");
    st.write(|tx| tx.insert_agent_token("d-old", 1_000, 2_000)).expect("token");
    assert_eq!(st.read(|tx| tx.agent_tokens(3_000)).expect("tokens"), vec![(1_000, 5_000)]);
    assert!(!st.write(|tx| tx.redeem_agent_token("d-old", 3_000, &agent("agt-0"))).expect("expired"));
    assert!(!st.write(|tx| tx.redeem_agent_token("d-none", 3_000, &agent("agt-0"))).expect("unknown"));
    assert!(st.write(|tx| tx.redeem_agent_token("d-live", 3_000, &agent("agt-1"))).expect("redeem"));
    assert!(!st.write(|tx| tx.redeem_agent_token("d-live", 3_000, &agent("agt-2"))).expect("spent"));
    assert_eq!(st.read(|tx| tx.agents()).expect("agents"), vec![agent("agt-1")]);

    assert!(st.write(|tx| tx.revoke_agent("agt-1", 4_000)).expect("revoke"));
    assert!(!st.write(|tx| tx.revoke_agent("agt-1", 4_500)).expect("revoke twice"));
    assert!(!st.write(|tx| tx.revoke_agent("agt-none", 4_500)).expect("revoke unknown"));
    assert_eq!(st.read(|tx| tx.agent("agt-1")).expect("agent").and_then(|a| a.revoked_at), Some(4_000));

    let at = |g: &str, a: &str, v: &str| AgentPlacement { gateway_id: g.into(), agent_id: a.into(), vpc_id: v.into() };
    st.write(|tx| tx.place_gateway(&at("vpn-b", "agt-1", "vpc-1"), 5_000)).expect("place");
    st.write(|tx| tx.place_gateway(&at("vpn-a", "agt-1", "vpc-1"), 5_000)).expect("place");
    st.write(|tx| tx.place_gateway(&at("vpn-a", "agt-2", "vpc-2"), 6_000)).expect("move");
    let placed = |st: &Store| st.read(|tx| tx.agent_placements()).expect("placements");
    assert_eq!(placed(st), [at("vpn-a", "agt-2", "vpc-2"), at("vpn-b", "agt-1", "vpc-1")]);
    st.write(|tx| tx.unplace_gateway("vpn-b")).expect("unplace");
    st.write(|tx| tx.unplace_gateway("vpn-none")).expect("unplace nothing");
    assert_eq!(placed(st), [at("vpn-a", "agt-2", "vpc-2")]);
}

fn tags_of_many_matches_tags_of(st: &Store) {
    let s = scope();
    st.write(|tx| {
        for i in 0..3 {
            tx.insert(&cgw(&format!("cgw-{i}"), &s, "198.51.100.1"))?;
        }
        for (id, k, v) in [("cgw-0", "b", "2"), ("cgw-0", "a", "1"), ("cgw-2", "k", "v")] {
            tx.put_tag(&s, Kind::CustomerGateway, id, &Tag { key: k.into(), value: v.into() })?;
        }
        Ok(())
    })
    .expect("write");
    st.read(|tx| {
        let many = tx.tags_of_many(&["cgw-0", "cgw-1", "cgw-2", "cgw-none"])?;
        for id in ["cgw-0", "cgw-1", "cgw-2", "cgw-none"] {
            assert_eq!(many.get(id).cloned().unwrap_or_default(), tx.tags_of(id)?, "{id}");
        }
        assert_eq!(many.len(), 2, "only tagged resources have entries");
        assert!(tx.tags_of_many(&[])?.is_empty());
        Ok(())
    })
    .expect("read");
}

/// `resource_counts` (kept by triggers) against counting the rows, for every scope, kind and parent.
fn assert_counts_agree(st: &Store) {
    let (kept, counted) = st
        .read(|tx| {
            let texts = |sql: &str| -> openvgw_core::Result<Vec<String>> {
                tx.rows(sql, &[])?
                    .iter()
                    .map(|r| Ok(format!("{}/{}/{}/{}={}", r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?, r.int(4)?)))
                    .collect()
            };
            Ok((
                texts(
                    "SELECT tenant_id, region, kind, parent_id, n FROM resource_counts WHERE n <> 0 \
                     ORDER BY 1, 2, 3, 4",
                )?,
                texts(
                    "SELECT tenant_id, region, kind, '', COUNT(*) FROM resources GROUP BY 1, 2, 3 \
                     UNION ALL SELECT tenant_id, region, kind, parent_id, COUNT(*) FROM resources \
                     WHERE parent_id IS NOT NULL AND parent_id <> '' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
                )?,
            ))
        })
        .expect("read");
    assert_eq!(kept, counted);
}

fn counts_follow_every_change(st: &Store) {
    let (a, b) = (scope(), Scope::new("tnt-b", "r1"));
    st.write(|tx| {
        tx.insert(&gateway("vpn-1", &a))?;
        tx.insert(&gateway("vpn-2", &a))?;
        tx.insert(&gateway("vpn-3", &b))?;
        tx.insert(&cgw("cgw-1", &a, "198.51.100.1"))?;
        tx.insert(&connection("vco-1", "vpn-1", "cgw-1", &a))?;
        tx.insert(&connection("vco-2", "vpn-1", "cgw-1", &a))?;
        tx.insert(&route("vre-1", "vpn-1", "vco-1", &a))
    })
    .expect("insert");
    assert_counts_agree(st);
    let count = |q: &ListQuery| st.read(|tx| tx.count::<VpnConnection>(q)).expect("count");
    assert_eq!(count(&ListQuery::in_scope(&a)), 2);
    assert_eq!(count(&ListQuery::children_of(&a, "vpn-1")), 2);
    assert_eq!(count(&ListQuery::in_scope(&b)), 0);
    // A rolled-back transaction and a DryRun change no count.
    let _ = st.write(|tx| -> openvgw_core::Result<()> {
        tx.insert(&connection("vco-3", "vpn-2", "cgw-1", &a))?;
        Err(Error::internal("boom"))
    });
    st.write_rollback(|tx| tx.insert(&connection("vco-4", "vpn-2", "cgw-1", &a))).expect("dry run");
    assert_counts_agree(st);
    // Moving a child to another parent, deleting one, deleting a tree.
    st.write(|tx| tx.update(&connection("vco-2", "vpn-2", "cgw-1", &a))).expect("reparent");
    assert_eq!(count(&ListQuery::children_of(&a, "vpn-1")), 1);
    assert_eq!(count(&ListQuery::children_of(&a, "vpn-2")), 1);
    assert_counts_agree(st);
    st.write(|tx| tx.delete(Kind::VpnConnection, "vco-2")).expect("delete");
    st.write(|tx| tx.delete_tree(Kind::VpnGateway, "vpn-1")).expect("delete tree");
    assert_eq!(count(&ListQuery::in_scope(&a)), 0);
    assert_eq!(st.read(|tx| tx.count::<VpnGateway>(&ListQuery::in_scope(&a))).expect("count"), 1);
    assert_counts_agree(st);
    // A restored store counts what it restored.
    let mut bytes = Vec::new();
    st.backup(&mut bytes).expect("backup");
    let (_d, restored) = sqlite_store();
    restored.restore(&mut bytes.as_slice()).expect("restore");
    assert_counts_agree(&restored);
    assert_eq!(restored.read(|tx| tx.count::<VpnGateway>(&ListQuery::in_scope(&a))).expect("count"), 1);
}

// ---- secrets at rest ------------------------------------------------------------------------------------------

fn ring(primary: u8, previous: &[u8]) -> std::sync::Arc<openvgw_core::secret::Keyring> {
    use openvgw_core::secret::{Keyring, MasterKey};
    std::sync::Arc::new(Keyring::new(
        MasterKey::from_bytes(&[primary; 32]),
        previous.iter().map(|b| MasterKey::from_bytes(&[*b; 32])).collect(),
    ))
}

fn dump_text(st: &Store) -> String {
    let mut out = Vec::new();
    st.backup(&mut out).expect("backup");
    String::from_utf8(out).expect("utf-8 dump")
}

/// Pre-shared keys in documents and access-key secrets in their column are stored sealed: the dump (every stored
/// value as it is) holds neither; they read back in clear; a rotation opens old values with the previous key and
/// a reseal leaves nothing the old key is needed for; a wrong key is an error naming the key, never garbage.
fn secrets_are_sealed_at_rest(open: &dyn Fn() -> Store) {
    const PSK: &str = "psk-do-not-store-in-clear";
    const AK_SECRET: &str = "ak-secret-do-not-store-in-clear";
    let s = scope();
    let st = open().with_keyring(ring(1, &[]));
    st.write(|tx| {
        tx.insert_tenant(&tenant("tnt-a", "a"))?;
        tx.insert_access_key(&AccessKey {
            id: "AK1".into(),
            secret: Secret::new(AK_SECRET),
            tenant_id: "tnt-a".into(),
            created_at: 1,
        })?;
        tx.insert(&gateway("vpn-1", &s))?;
        tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))?;
        let mut c = connection("vco-1", "vpn-1", "cgw-1", &s);
        c.psk = Secret::new(PSK);
        tx.insert(&c)
    })
    .expect("insert");
    let dump = dump_text(&st);
    assert!(!dump.contains(PSK) && !dump.contains(AK_SECRET), "a secret is stored in clear");
    assert!(dump.contains("ovs1:"), "no sealed value in the dump");
    let psk = |st: &Store| st.read(|tx| tx.require::<VpnConnection>(&s, "vco-1")).map(|c| c.psk.expose().to_string());
    let ak = |st: &Store| st.read(|tx| tx.access_key("AK1")).map(|k| k.map(|k| k.secret.expose().to_string()));
    assert_eq!(psk(&st).expect("psk"), PSK);
    assert_eq!(ak(&st).expect("ak"), Some(AK_SECRET.to_string()));
    drop(st);

    // Without the key a sealed value is refused, naming the key it needs.
    let wrong = open().with_keyring(ring(9, &[]));
    let e = psk(&wrong).expect_err("opened with the wrong key");
    assert!(e.to_string().contains(ring(1, &[]).primary_id()), "{e}");
    drop(wrong);

    // Rotation: the new key seals, the previous one still opens; reseal, then the old key is not needed.
    let rotated = open().with_keyring(ring(2, &[1]));
    assert_eq!(psk(&rotated).expect("psk via the previous key"), PSK);
    rotated
        .write(|tx| {
            let c: VpnConnection = tx.require(&s, "vco-1")?;
            tx.update(&c)?;
            assert_eq!(tx.reseal_access_keys()?, 1);
            assert_eq!(tx.reseal_access_keys()?, 0);
            Ok(())
        })
        .expect("reseal");
    drop(rotated);
    let new_only = open().with_keyring(ring(2, &[]));
    assert_eq!(psk(&new_only).expect("psk"), PSK);
    assert_eq!(ak(&new_only).expect("ak"), Some(AK_SECRET.to_string()));
    assert!(!dump_text(&new_only).contains(PSK));
}

mod secrets_at_rest {
    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        super::secrets_are_sealed_at_rest(&|| crate::Store::open(&path).expect("open"));
    }

    #[test]
    fn postgres() {
        let Some(db) = crate::test_pg::TestDb::create() else { return };
        super::secrets_are_sealed_at_rest(&|| db.store());
    }
}

fn rate_buckets_are_all_or_nothing(st: &Store) {
    // Bucket a: 2 tokens, one per second; bucket b: 1 token.
    let both = [("a", 1.0, 2.0), ("b", 1.0, 1.0)];
    assert_eq!(st.take_tokens(&both, 10_000).expect("first"), None);
    // b is empty now: refused, naming b, and a keeps its remaining token (all or nothing).
    let (i, wait) = st.take_tokens(&both, 10_000).expect("second").expect("throttled");
    assert_eq!(i, 1);
    assert!((1..=1000).contains(&wait), "{wait}");
    assert_eq!(st.take_tokens(&[("a", 1.0, 2.0)], 10_000).expect("a alone"), None);
    assert!(st.take_tokens(&[("a", 1.0, 2.0)], 10_000).expect("a empty").is_some());
    // A second later each has a token again.
    assert_eq!(st.take_tokens(&both, 11_000).expect("refilled"), None);
    assert_eq!(st.purge_rate_buckets(20_000).expect("purge"), 2);
}

/// Every shape of list query the APIs make is served by the index made for it, on an empty store as on a large one
/// (SQLite plans with the statistics the store writes, not measured ones). A new filter needs a row here.
#[test]
fn every_list_filter_is_served_by_an_index() {
    use openvgw_core::model::Index;
    let (_d, st) = sqlite_store();
    let s = scope();
    let tag = vec![TagFilter { key: "env".into(), value: Some("prod".into()) }];
    let cases: Vec<(&str, ListQuery, &[&str])> = vec![
        ("scope", ListQuery::in_scope(&s), &["resources_scope"]),
        ("parent", ListQuery::children_of(&s, "vpn-1"), &["resources_parent"]),
        ("parent, unscoped", ListQuery { parent_id: Some("vpn-1"), ..Default::default() }, &["resources_parent"]),
        ("name", ListQuery { name: Some("n"), ..ListQuery::in_scope(&s) }, &["resources_name"]),
        ("id", ListQuery { id: Some("cgw-1"), ..ListQuery::in_scope(&s) }, &["sqlite_autoindex_resources_1"]),
        (
            "key",
            ListQuery::in_scope(&s).key(Index::PeerIdentity, "ip:198.51.100.1"),
            &["sqlite_autoindex_resources_1", "sqlite_autoindex_resource_keys_1"],
        ),
        (
            "key and parent",
            ListQuery::children_of(&s, "vpn-1").key(Index::UserGroup, "vug-1"),
            &["sqlite_autoindex_resource_keys_1"],
        ),
        ("tag", ListQuery { tags: tag, ..ListQuery::in_scope(&s) }, &["resources_scope", "sqlite_autoindex_tags_1"]),
    ];
    let pages = [PageRequest::Offset { offset: 40, limit: 20 }, PageRequest::After { cursor: None, limit: 20 }];
    for (name, q, want) in &cases {
        for page in &pages {
            let plans = st.read(|tx| tx.plans(Kind::CustomerGateway, q, page)).expect("plan");
            for plan in &plans {
                assert!(!plan.split("; ").any(|step| step.starts_with("SCAN")), "{name}: a full scan: {plan}");
            }
            for index in *want {
                assert!(plans[0].contains(index), "{name}: the page does not use {index}: {}", plans[0]);
            }
            // Pages of a scope or a parent come in the index's order, without sorting.
            if ["scope", "parent", "parent, unscoped", "tag"].contains(name) {
                assert!(!plans[0].contains("TEMP B-TREE"), "{name}: the page is sorted: {}", plans[0]);
            }
        }
    }
}

#[test]
fn the_wal_is_copied_into_the_database_beside_the_writer() {
    let (dir, st) = sqlite_store();
    let db = dir.path().join("t.db");
    let size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let s = scope();
    for i in 0..400u32 {
        let ip = format!("198.51.{}.{}", 100 + i / 250, i % 250 + 1);
        st.write(|tx| tx.insert(&cgw(&format!("cgw-{i}"), &s, &ip))).expect("insert");
    }
    // The writer never checkpoints (its automatic checkpoints are off); only the checkpoint thread grows the file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while size() <= before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(size() > before, "the database file stayed at {before} bytes");
    // The replay file is checkpointed by the same thread.
    let replay = crate::replay_path(&db);
    let replay_size = || std::fs::metadata(&replay).map(|m| m.len()).unwrap_or(0);
    let before = replay_size();
    for i in 0..2_000u32 {
        st.use_nonce("AK1", &format!("nonce-{i:0>100}"), 1, 1_000_000, 1_000_000).expect("nonce");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while replay_size() <= before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(replay_size() > before, "the replay file stayed at {before} bytes");
}

#[test]
fn a_document_changed_by_another_process_is_read_changed() {
    let (dir, st) = sqlite_store();
    let other = Store::open(&dir.path().join("t.db")).expect("second open");
    let s = scope();
    st.write(|tx| tx.insert(&cgw("cgw-1", &s, "198.51.100.1"))).expect("insert");
    let name = |st: &Store| {
        let page = st.read(|tx| tx.list::<CustomerGateway>(&ListQuery::in_scope(&s), &PageRequest::ALL)).expect("list");
        let got = st.read(|tx| tx.require::<CustomerGateway>(&s, "cgw-1")).expect("get");
        assert_eq!(page.items.first().map(|c| c.name.clone()), Some(got.name.clone()));
        got.name
    };
    assert_eq!(name(&st), "cgw-1");
    let mut changed = cgw("cgw-1", &s, "198.51.100.1");
    changed.name = "renamed".into();
    other.write(|tx| tx.update(&changed)).expect("update");
    assert_eq!(name(&st), "renamed");
}

/// A signed request records its nonce; on SQLite that must not change the database the readers cache (a change
/// makes every reader drop its page cache and memory map at its next transaction). `data_version` on another
/// connection changes exactly when some other connection committed to that file; `Store::data_version` (what kept
/// list answers are validated by) follows every commit but no nonce.
#[test]
fn recording_a_nonce_leaves_the_database_unchanged() {
    let (dir, st) = sqlite_store();
    let db = dir.path().join("t.db");
    let watcher = rusqlite::Connection::open(&db).expect("watcher");
    let version = || -> i64 { watcher.query_row("PRAGMA data_version", [], |r| r.get(0)).expect("data_version") };
    let before = version();
    let own = st.data_version().expect("the store's data version");
    for i in 0..5 {
        assert_eq!(st.use_nonce("AK1", &format!("n{i}"), 1_000, 10_000, 100).expect("nonce"), crate::NonceCheck::New);
    }
    st.purge_nonces(20_000).expect("purge");
    assert_eq!(version(), before, "recording or purging nonces committed to the database");
    assert_eq!(st.data_version(), Some(own), "kept answers would be dropped by every signed request");
    st.write(|tx| tx.insert(&cgw("cgw-1", &scope(), "198.51.100.1"))).expect("insert");
    assert_ne!(version(), before, "the watcher does not see commits at all");
    let after_own = st.data_version().expect("version");
    assert!(after_own > own, "the store's own commit left its data version at {own}");
    // A commit by another process (here: another connection) moves it too.
    watcher.execute("UPDATE resources SET name = 'elsewhere'", []).expect("foreign write");
    assert!(st.data_version().expect("version") > after_own, "another process's commit was not noticed");
    assert!(crate::replay_path(&db).exists(), "no replay file beside the database");
}

/// The replay tables as migration 4 made them (keyed by key and nonce, with counts), in the database and later in
/// the replay file, before the log.
const KEYED_NONCE_TABLES: &str = "
    CREATE TABLE nonces (access_key_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL,
      PRIMARY KEY (access_key_id, nonce));
    CREATE INDEX nonces_expiry ON nonces (expires_at);
    CREATE TABLE nonce_counts (access_key_id TEXT PRIMARY KEY, n INTEGER NOT NULL);";

/// A database from before the replay file (migration 4 kept the nonces in it) has them moved, still refusing a
/// replay, and its own tables dropped.
#[test]
fn nonces_kept_in_the_database_move_to_the_replay_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    drop(Store::open(&db).expect("open"));
    // The layout before: the tables in the database, no replay file.
    std::fs::remove_file(crate::replay_path(&db)).expect("remove replay file");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(&format!(
        "{KEYED_NONCE_TABLES}
         INSERT INTO nonces VALUES ('AK1', 'old', 50000), ('AK1', 'old2', 50000);
         INSERT INTO nonce_counts VALUES ('AK1', 2);"
    ))
    .expect("old layout");
    drop(conn);
    let st = Store::open(&db).expect("reopen");
    assert_eq!(st.use_nonce("AK1", "old", 1_000, 60_000, 3).expect("old"), crate::NonceCheck::Used);
    // The count moved too: two held, one more fits, then the cap.
    assert_eq!(st.use_nonce("AK1", "new", 1_000, 60_000, 3).expect("new"), crate::NonceCheck::New);
    assert_eq!(st.use_nonce("AK1", "new2", 1_000, 60_000, 3).expect("new2"), crate::NonceCheck::Full);
    let conn = rusqlite::Connection::open(&db).expect("open");
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('nonces', 'nonce_counts')", [], |r| r.get(0))
        .expect("schema");
    assert_eq!(left, 0, "the database still has its replay tables");
    drop(st);
    // Opening again moves nothing twice.
    let st = Store::open(&db).expect("third open");
    assert_eq!(st.use_nonce("AK1", "old2", 1_000, 60_000, 3).expect("old2"), crate::NonceCheck::Used);
}

/// A replay file of the keyed layout (a table by key and nonce, and counts) becomes the log: its records still
/// refuse replays and count against the cap, the tables are gone, and the log has no index to keep up.
#[test]
fn a_replay_file_of_keyed_tables_becomes_a_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    drop(Store::open(&db).expect("open"));
    let replay = crate::replay_path(&db);
    std::fs::remove_file(&replay).expect("remove replay file");
    let conn = rusqlite::Connection::open(&replay).expect("open");
    conn.execute_batch(&format!(
        "{KEYED_NONCE_TABLES}
         INSERT INTO nonces VALUES ('AK1', 'old', 50000), ('AK1', 'old2', 40000), ('AK1', 'gone', 500);
         INSERT INTO nonce_counts VALUES ('AK1', 3);"
    ))
    .expect("old layout");
    drop(conn);
    let st = Store::open(&db).expect("reopen");
    assert_eq!(st.use_nonce("AK1", "old", 1_000, 60_000, 3).expect("old"), crate::NonceCheck::Used);
    assert_eq!(st.use_nonce("AK1", "gone", 1_000, 60_000, 3).expect("expired"), crate::NonceCheck::New);
    assert_eq!(st.use_nonce("AK1", "new", 1_000, 60_000, 3).expect("new"), crate::NonceCheck::Full);
    let conn = rusqlite::Connection::open(&replay).expect("open");
    let layout: Vec<(String, String)> = conn
        .prepare("SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'index') ORDER BY name")
        .expect("schema")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<rusqlite::Result<_>>()
        .expect("layout");
    assert_eq!(layout, vec![("table".to_string(), "nonce_log".to_string())]);
    // Purging removes the expired front of the log; 'gone' was logged again after it expired.
    assert_eq!(st.purge_nonces(45_000).expect("purge"), 2);
    assert_eq!(st.use_nonce("AK1", "old2", 45_001, 60_000, 3).expect("old2 expired"), crate::NonceCheck::New);
    drop(st);
    let st = Store::open(&db).expect("third open");
    assert_eq!(st.use_nonce("AK1", "old2", 45_002, 60_000, 3).expect("old2"), crate::NonceCheck::Used);
    assert_eq!(st.use_nonce("AK1", "gone", 45_002, 60_000, 3).expect("gone"), crate::NonceCheck::Used);
}

/// A nonce is refused as a replay from the moment it is checked, before its record is committed; the record is
/// on disk once its `Durable` returns, and many checks in flight share a few commits.
#[test]
fn nonces_in_flight_are_replays_and_durable_when_waited_for() {
    let (dir, st) = sqlite_store();
    let (first, durable) = st.use_nonce_deferred("AK1", "n1", 1_000, 100_000, 1_000).expect("n1");
    assert_eq!(first, crate::NonceCheck::New);
    let (again, _) = st.use_nonce_deferred("AK1", "n1", 1_000, 100_000, 1_000).expect("n1 again");
    assert_eq!(again, crate::NonceCheck::Used, "a nonce being committed is already used");
    durable.wait().expect("committed");
    let file = rusqlite::Connection::open(crate::replay_path(&dir.path().join("t.db"))).expect("replay file");
    let on_disk: i64 =
        file.query_row("SELECT COUNT(*) FROM nonces WHERE nonce = 'n1'", [], |r| r.get(0)).expect("count");
    assert_eq!(on_disk, 1);
    // Concurrent checks: each nonce once, every one durable, fewer commits than records.
    let (commits_before, _) = st.commit_stats().expect("stats");
    std::thread::scope(|t| {
        for th in 0..8 {
            let st = &st;
            t.spawn(move || {
                for i in 0..200 {
                    let (c, d) = st.use_nonce_deferred("AK2", &format!("{th}-{i}"), 1_000, 100_000, 10_000).expect("n");
                    assert_eq!(c, crate::NonceCheck::New);
                    d.wait().expect("durable");
                }
            });
        }
    });
    let n: i64 = file.query_row("SELECT n FROM nonce_counts WHERE access_key_id = 'AK2'", [], |r| r.get(0)).expect("n");
    assert_eq!(n, 1_600);
    assert_eq!(st.remembered_nonces(), Some(1_601), "the index in memory holds every live record");
    let (commits_after, _) = st.commit_stats().expect("stats");
    assert!(commits_after - commits_before < 1_600, "{} commits for 1,600 records", commits_after - commits_before);
    // Expired records leave memory with the purge, and the log's front with them.
    assert_eq!(st.purge_nonces(100_000).expect("purge"), 1_601);
    assert_eq!(st.remembered_nonces(), Some(0));
}

/// PostgreSQL plans from its statistics: the store analyses its tables when it opens them and after growth, and
/// the lookup of a customer gateway by address then starts from the key's index, not from the scope.
#[test]
fn postgres_statistics_follow_growth_and_key_lookups_start_from_the_key() {
    let Some(db) = crate::test_pg::TestDb::create() else { return };
    let st = db.store();
    let analyses = |st: &Store| match &st.backend {
        crate::Backend::Pg(p) => p.analyses(),
        crate::Backend::Sqlite(_) => unreachable!("a PostgreSQL store"),
    };
    assert_eq!(analyses(&st), 1, "analysed once at open");
    let s = scope();
    for i in 0..1_200u32 {
        let ip = format!("198.51.{}.{}", 100 + i / 250, i % 250 + 1);
        st.write(|tx| tx.insert(&cgw(&format!("cgw-{i}"), &s, &ip))).expect("insert");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while analyses(&st) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(analyses(&st) >= 2, "no analysis after 1,200 writes");
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT COUNT(*) FROM resources r WHERE r.kind = 'customer_gateway' AND r.tenant_id = 'tnt-a' \
             AND r.region = 'r1' AND r.id IN (SELECT k.id FROM resource_keys k WHERE k.kind = 'customer_gateway' \
             AND k.key = 'peer_identity' AND k.value = 'ip:198.51.101.7')",
            &[],
        )
        .expect("explain")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let keys_first = plan.iter().position(|l| l.contains("resource_keys"));
    let scope = plan.iter().position(|l| l.contains("on resources"));
    assert!(
        keys_first.is_some() && scope.is_some() && keys_first < scope,
        "the lookup does not start from the key:\n{}",
        plan.join("\n")
    );
}

/// PostgreSQL plans every statement of the store for its call's values (`sql::PG_SESSION` says why): reads,
/// writes and the small transactions alike.
#[test]
fn postgres_sessions_plan_for_each_call() {
    let Some(db) = crate::test_pg::TestDb::create() else { return };
    let st = db.store();
    let mode = |rows: Vec<crate::sql::Row>| rows.first().map(|r| r.text(0)).transpose().expect("text");
    let want = Some("force_custom_plan".to_string());
    assert_eq!(st.read(|tx| tx.rows("SHOW plan_cache_mode", &[])).map(mode).expect("read"), want);
    assert_eq!(st.write(|tx| tx.rows("SHOW plan_cache_mode", &[])).map(mode).expect("write"), want);
    let small = st.small(|c| Ok(c.query("SHOW plan_cache_mode", &[])?)).map(mode).expect("small");
    assert_eq!(small, want);
}
