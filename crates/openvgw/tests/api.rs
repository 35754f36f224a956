//! In-process API tests of the Alibaba dialect: lifecycle, validation, idempotency, DryRun, auth and replay,
//! isolation, XML, atomicity, durability, metrics.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;

fn id(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_else(|| panic!("no {field} in {v}")).to_string()
}

#[tokio::test]
async fn gateway_lifecycle_and_configuring() {
    let h = harness();
    let created = h.ok("CreateVpnGateway", &[("VpcId", "vpc-test0001"), ("Bandwidth", "10"), ("Name", "gw-1")]).await;
    let gw = id(&created, "VpnGatewayId");
    assert_eq!(created["Name"], "gw-1");
    assert!(created["OrderId"].is_i64());
    let first = h.ok("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await;
    assert!(["init", "provisioning"].contains(&first["Status"].as_str().unwrap()), "{first}");
    // A child change before the gateway is active is refused.
    let cgw = id(&h.ok("CreateCustomerGateway", &[("IpAddress", "198.51.100.10")]).await, "CustomerGatewayId");
    let early = h
        .call(
            "CreateVpnConnection",
            &[
                ("VpnGatewayId", &gw),
                ("CustomerGatewayId", &cgw),
                ("LocalSubnet", "10.0.0.0/8"),
                ("RemoteSubnet", "192.168.0.0/16"),
            ],
        )
        .await;
    assert_eq!((early.status, early.code()), (400, "VpnGateway.Configuring"));
    h.wait_status(&gw, "active").await;
    let d = h.ok("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await;
    assert_eq!(d["Spec"], "10M");
    assert!(d["CreateTime"].is_i64() && d["SslMaxConnections"].is_u64() && d["AutoPropagate"].is_boolean());
    assert_eq!(d["IpsecVpn"], "enable");
    assert_eq!(d["SslVpn"], "disable");
    assert!(d["InternetIp"].as_str().unwrap().starts_with("203.0.113."));

    let conn_params = [
        ("VpnGatewayId", gw.as_str()),
        ("CustomerGatewayId", cgw.as_str()),
        ("LocalSubnet", "10.0.0.0/8"),
        ("RemoteSubnet", "192.168.0.0/16"),
    ];
    let conn = id(&h.ok("CreateVpnConnection", &conn_params).await, "VpnConnectionId");
    assert_eq!(h.ok("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await["Status"], "updating");
    h.wait_status(&gw, "active").await;
    let c = h.ok("DescribeVpnConnection", &[("VpnConnectionId", &conn)]).await;
    // The simulated data plane never claims an SA that does not exist.
    assert_eq!(c["Status"], "ike_sa_not_established");
    assert_eq!(c["IkeConfig"]["IkeAuthAlg"], "md5");
    assert_eq!(c["IkeConfig"]["LocalId"], d["InternetIp"]);
    assert_eq!(c["IkeConfig"]["RemoteId"], "198.51.100.10");
    assert_eq!(c["IkeConfig"]["Psk"].as_str().unwrap().len(), 16);

    // Delete shows deleting, then everything is gone.
    h.ok("DeleteVpnGateway", &[("VpnGatewayId", &gw)]).await;
    let during = h.call("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await;
    assert!(during.status == 404 || during.body["Status"] == "deleting", "{}", during.text);
    h.wait_gone(&gw).await;
    let gone = h.call("DescribeVpnConnection", &[("VpnConnectionId", &conn)]).await;
    assert_eq!((gone.status, gone.code()), (404, "InvalidVpnConnectionInstanceId.NotFound"));
    // The customer gateway is free again.
    h.ok("DeleteCustomerGateway", &[("CustomerGatewayId", &cgw)]).await;
}

#[tokio::test]
async fn validation_codes() {
    let h = harness();
    let missing = h.call("CreateVpnGateway", &[("Bandwidth", "5")]).await;
    assert_eq!((missing.status, missing.code()), (400, "MissingVpcId"));
    let bad_bw = h.call("CreateVpnGateway", &[("VpcId", "vpc-x1"), ("Bandwidth", "7")]).await;
    assert_eq!(bad_bw.code(), "InvalidBandwidth");
    let bad_bool = h.call("CreateVpnGateway", &[("VpcId", "vpc-x1"), ("Bandwidth", "5"), ("EnableSsl", "yes")]).await;
    assert_eq!(bad_bool.code(), "InvalidEnableSsl");
    let bad_name = h.call("CreateVpnGateway", &[("VpcId", "vpc-x1"), ("Bandwidth", "5"), ("Name", "1bad")]).await;
    assert_eq!(bad_name.code(), "InvalidName");
    let region = h.call("DescribeVpnGateways", &[("RegionId", "mars-1")]).await;
    assert_eq!((region.status, region.code()), (404, "InvalidRegionId.NotFound"));
    let action = h.call("FlyToTheMoon", &[]).await;
    assert_eq!((action.status, action.code()), (404, "InvalidAction.NotFound"));
    let ip = h.call("CreateCustomerGateway", &[("IpAddress", "300.1.1.1")]).await;
    assert_eq!(ip.code(), "InvalidIpAddress.WrongFormat");
    let asn = h.call("CreateCustomerGateway", &[("IpAddress", "198.51.100.1"), ("AuthKey", "k1")]).await;
    assert_eq!(asn.code(), "OperationDenied.MissingAsn");
    h.ok("CreateCustomerGateway", &[("IpAddress", "198.51.100.1"), ("Asn", "1.10")]).await;
    let dup = h.call("CreateCustomerGateway", &[("IpAddress", "198.51.100.1")]).await;
    assert_eq!(dup.code(), "InvalidIpAddress.AlreadyExist");
    let page = h.call("DescribeCustomerGateways", &[("PageSize", "51")]).await;
    assert_eq!(page.code(), "InvalidPageSize");

    let gw = h.active_gateway().await;
    let cgw =
        id(&h.ok("DescribeCustomerGateways", &[]).await["CustomerGateways"]["CustomerGateway"][0], "CustomerGatewayId");
    assert_eq!(h.ok("DescribeCustomerGateways", &[]).await["CustomerGateways"]["CustomerGateway"][0]["Asn"], 65546);
    let subnet = h
        .call(
            "CreateVpnConnection",
            &[
                ("VpnGatewayId", &gw),
                ("CustomerGatewayId", &cgw),
                ("LocalSubnet", "10.0.0.1/8"),
                ("RemoteSubnet", "192.168.0.0/16"),
            ],
        )
        .await;
    assert_eq!(subnet.code(), "IllegalParam.LocalSubnet");
    let ike = h
        .call(
            "CreateVpnConnection",
            &[
                ("VpnGatewayId", &gw),
                ("CustomerGatewayId", &cgw),
                ("LocalSubnet", "10.0.0.0/8"),
                ("RemoteSubnet", "192.168.0.0/16"),
                ("IkeConfig", r#"{"IkeEncAlg":"rot13"}"#),
            ],
        )
        .await;
    assert_eq!(ike.code(), "InvalidIkeConfig");
    // Dual-tunnel settings that cannot make a dual-tunnel connection are refused, not quietly made single-tunnel.
    let base = [
        ("VpnGatewayId", gw.as_str()),
        ("CustomerGatewayId", &cgw),
        ("LocalSubnet", "10.0.0.0/8"),
        ("RemoteSubnet", "192.168.0.0/16"),
    ];
    for (extra, code) in [
        (("EnableTunnelsBgp", "true"), "InvalidEnableTunnelsBgp"),
        (("TunnelOptionsSpecification.1.CustomerGatewayId", cgw.as_str()), "InvalidTunnelOptionsSpecification"),
        // An object sent as one value (as pop-core sends a nested object) names a setting nobody would read.
        (("TunnelOptionsSpecification.1.TunnelIkeConfig", "[object Object]"), "InvalidTunnelOptionsSpecification"),
    ] {
        let dual = h.call("CreateVpnConnection", &[&base[..], &[extra]].concat()).await;
        assert_eq!(dual.code(), code, "{extra:?}");
    }
    let ssl = h
        .call(
            "CreateIpsecServer",
            &[("VpnGatewayId", &gw), ("LocalSubnet", "10.0.0.0/8"), ("ClientIpPool", "10.1.0.0/24")],
        )
        .await;
    assert_eq!(ssl.code(), "IllegalParam.ClientIpPool");
}

/// `TunnelIndex` (sent by callers that number a dual-tunnel connection's tunnels; Python's and Node's models have no
/// such field) decides which tunnel takes which address, whatever the order of the list.
#[tokio::test]
async fn tunnel_index_numbers_the_tunnels() {
    let h = harness();
    let gw = h
        .ok(
            "CreateVpnGateway",
            &[
                ("VpcId", "vpc-dual01"),
                ("Bandwidth", "5"),
                ("VSwitchId", "vsw-a"),
                ("DisasterRecoveryVSwitchId", "vsw-b"),
            ],
        )
        .await;
    let gw = gw["VpnGatewayId"].as_str().expect("id").to_string();
    h.wait_status(&gw, "active").await;
    let addresses = h.ok("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await;
    let mut cgws = Vec::new();
    for ip in ["198.51.100.31", "198.51.100.32"] {
        cgws.push(h.ok("CreateCustomerGateway", &[("IpAddress", ip)]).await["CustomerGatewayId"].clone());
    }
    let (first, second) = (cgws[0].as_str().expect("id"), cgws[1].as_str().expect("id"));
    let base = [("VpnGatewayId", gw.as_str()), ("LocalSubnet", "10.0.0.0/8"), ("RemoteSubnet", "192.168.0.0/16")];
    let numbered = [
        ("TunnelOptionsSpecification.1.CustomerGatewayId", second),
        ("TunnelOptionsSpecification.1.TunnelIndex", "2"),
        ("TunnelOptionsSpecification.2.CustomerGatewayId", first),
        ("TunnelOptionsSpecification.2.TunnelIndex", "1"),
    ];
    let twice = [&numbered[..2], &[numbered[2], ("TunnelOptionsSpecification.2.TunnelIndex", "2")]].concat();
    let refused = h.call("CreateVpnConnection", &[&base[..], &twice].concat()).await;
    assert_eq!(refused.code(), "InvalidTunnelOptionsSpecification");
    let vco = h.ok("CreateVpnConnection", &[&base[..], &numbered[..]].concat()).await;
    let d = h.ok("DescribeVpnConnection", &[("VpnConnectionId", vco["VpnConnectionId"].as_str().expect("id"))]).await;
    let tunnels = d["TunnelOptionsSpecification"]["TunnelOptions"].as_array().expect("tunnels").clone();
    let seen: Vec<(&Value, &Value, &Value)> =
        tunnels.iter().map(|t| (&t["TunnelIndex"], &t["CustomerGatewayId"], &t["InternetIp"])).collect();
    assert_eq!(
        seen,
        vec![
            (&Value::from(1), &cgws[0], &addresses["InternetIp"]),
            (&Value::from(2), &cgws[1], &addresses["DisasterRecoveryInternetIp"])
        ]
    );
}

#[tokio::test]
async fn idempotency_and_dry_run() {
    let h = harness();
    let params = [("VpcId", "vpc-idem01"), ("Bandwidth", "5"), ("ClientToken", "tok-1")];
    let first = h.ok("CreateVpnGateway", &params).await;
    let again = h.ok("CreateVpnGateway", &params).await;
    assert_eq!(first["VpnGatewayId"], again["VpnGatewayId"]);
    assert_ne!(first["RequestId"], again["RequestId"]);
    let mismatch =
        h.call("CreateVpnGateway", &[("VpcId", "vpc-idem01"), ("Bandwidth", "10"), ("ClientToken", "tok-1")]).await;
    assert_eq!((mismatch.status, mismatch.code()), (400, "IdempotentParameterMismatch"));
    assert_eq!(h.ok("DescribeVpnGateways", &[]).await["TotalCount"], 1);

    let dry = h.call("CreateVpnGateway", &[("VpcId", "vpc-idem01"), ("Bandwidth", "5"), ("DryRun", "true")]).await;
    assert_eq!((dry.status, dry.code()), (400, "DryRunOperation"));
    let dry_bad = h.call("CreateVpnGateway", &[("VpcId", "vpc-idem01"), ("Bandwidth", "6"), ("DryRun", "true")]).await;
    assert_eq!(dry_bad.code(), "InvalidBandwidth");
    assert_eq!(h.ok("DescribeVpnGateways", &[]).await["TotalCount"], 1);
}

#[tokio::test]
async fn signatures_replay_and_clock() {
    let h = harness();
    let params = [("Action", "DescribeVpnGateways"), ("RegionId", "cn-hangzhou")];
    let wrong = Key { id: h.a.id.clone(), secret: "not-the-secret".into() };
    let r = h.call_as(&wrong, &params).await;
    assert_eq!((r.status, r.code()), (400, "SignatureDoesNotMatch"));
    assert!(r.body["Message"].as_str().unwrap().contains("server string to sign is:POST&%2F&"));
    let unknown = Key { id: "LTAInobody".into(), secret: "x".into() };
    let r = h.call_as(&unknown, &params).await;
    assert_eq!((r.status, r.code()), (404, "InvalidAccessKeyId.NotFound"));

    let q = signed_query(&h.a, &params, "nonce-fixed-1", &timestamp(0));
    assert_eq!(h.raw("POST", &format!("/?{q}")).await.status, 200);
    let replay = h.raw("POST", &format!("/?{q}")).await;
    assert_eq!((replay.status, replay.code()), (400, "SignatureNonceUsed"));

    let old = signed_query(&h.a, &params, "nonce-old", &timestamp(-20 * 60));
    let r = h.raw("POST", &format!("/?{old}")).await;
    assert_eq!(r.code(), "InvalidTimeStamp.Expired");
    let skewed_ok = signed_query(&h.a, &params, "nonce-skew", &timestamp(-10 * 60));
    assert_eq!(h.raw("POST", &format!("/?{skewed_ok}")).await.status, 200);

    // A tampered parameter breaks the signature.
    let q = signed_query(&h.a, &params, "nonce-2", &timestamp(0)).replace("cn-hangzhou", "cn-shanghai");
    assert_eq!(h.raw("POST", &format!("/?{q}")).await.code(), "SignatureDoesNotMatch");
}

#[tokio::test]
async fn tenants_and_regions_are_isolated() {
    let h = harness();
    let gw = h.active_gateway().await;
    let other =
        h.call_as(&h.b, &[("Action", "DescribeVpnGateway"), ("RegionId", "cn-hangzhou"), ("VpnGatewayId", &gw)]).await;
    assert_eq!((other.status, other.code()), (404, "InvalidVpnGatewayInstanceId.NotFound"));
    let del =
        h.call_as(&h.b, &[("Action", "DeleteVpnGateway"), ("RegionId", "cn-hangzhou"), ("VpnGatewayId", &gw)]).await;
    assert_eq!(del.status, 404);
    let list_b = h.call_as(&h.b, &[("Action", "DescribeVpnGateways"), ("RegionId", "cn-hangzhou")]).await;
    assert_eq!(list_b.body["TotalCount"], 0);
    let other_region = h.call("DescribeVpnGateway", &[("RegionId", "cn-shanghai"), ("VpnGatewayId", &gw)]).await;
    assert_eq!(other_region.status, 404);
    assert_eq!(h.ok("DescribeVpnGateways", &[]).await["TotalCount"], 1);
}

#[tokio::test]
async fn xml_format_and_shapes() {
    let h = harness();
    h.active_gateway().await;
    let r = h.call("DescribeVpnGateways", &[("Format", "XML")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/xml;charset=utf-8");
    assert!(r.text.contains("<DescribeVpnGatewaysResponse>"), "{}", r.text);
    assert!(r.text.contains("<VpnGateways><VpnGateway>"));
    let e = h.call("DescribeVpnGateway", &[("Format", "xml"), ("VpnGatewayId", "vpn-none")]).await;
    assert!(e.text.contains("<Error>") && e.text.contains("<Code>InvalidVpnGatewayInstanceId.NotFound</Code>"));
    let j = h.ok("DescribeVpnGateways", &[("Format", "JSON")]).await;
    assert!(j["VpnGateways"]["VpnGateway"].is_array());
    assert!(j["VpnGateways"]["VpnGateway"][0]["Tags"]["Tag"].is_array());
    assert_eq!(j["PageNumber"], 1);
    assert_eq!(j["PageSize"], 10);
}

#[tokio::test]
async fn failed_requests_leave_nothing_behind() {
    let h = harness();
    let a = id(&h.ok("CreateCustomerGateway", &[("IpAddress", "198.51.100.21")]).await, "CustomerGatewayId");
    let b = id(&h.ok("CreateCustomerGateway", &[("IpAddress", "198.51.100.22")]).await, "CustomerGatewayId");
    // Give B 20 tags, then tag A and B together with one more: B overflows, so A must not be tagged either.
    let mut many: Vec<(String, String)> = Vec::new();
    for i in 1..=20 {
        many.push((format!("Tag.{i}.Key"), format!("k{i}")));
        many.push((format!("Tag.{i}.Value"), "v".into()));
    }
    let mut params: Vec<(&str, &str)> = vec![("ResourceType", "CustomerGateway"), ("ResourceId.1", &b)];
    params.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    h.ok("TagResources", &params).await;
    let r = h
        .call(
            "TagResources",
            &[("ResourceType", "CustomerGateway"), ("ResourceId.1", &a), ("ResourceId.2", &b), ("Tag.1.Key", "extra")],
        )
        .await;
    assert_eq!(r.code(), "Resource.QuotaFull");
    let tags_a = h.ok("DescribeCustomerGateway", &[("CustomerGatewayId", &a)]).await;
    assert_eq!(tags_a["Tags"]["Tag"].as_array().unwrap().len(), 0, "{tags_a}");
    // A bad tag on create: no customer gateway appears.
    let bad =
        h.call("CreateCustomerGateway", &[("IpAddress", "198.51.100.23"), ("Tags.1.Key", "aliyun-reserved")]).await;
    assert_eq!(bad.code(), "InvalidTagKey");
    assert_eq!(h.ok("DescribeCustomerGateways", &[]).await["TotalCount"], 2);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, key_id) = {
        let h = harness_at(test_config(|_| {}), dir.path());
        (h.active_gateway().await, h.a.id.clone())
    };
    let h = harness_at(test_config(|_| {}), dir.path());
    assert_eq!(h.a.id, key_id);
    let d = h.ok("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await;
    assert_eq!(d["Status"], "active");
}

#[tokio::test]
async fn ssl_vpn_artefacts_and_revocation() {
    let h = harness();
    let gw = h.active_gateway().await;
    let s = h
        .ok(
            "CreateSslVpnServer",
            &[("VpnGatewayId", &gw), ("ClientIpPool", "192.168.100.0/24"), ("LocalSubnet", "10.0.0.0/8")],
        )
        .await;
    let server = id(&s, "SslVpnServerId");
    h.wait_status(&gw, "active").await;
    let cert = id(
        &h.ok("CreateSslVpnClientCert", &[("SslVpnServerId", &server), ("Name", "alice")]).await,
        "SslVpnClientCertId",
    );
    // Issuing a certificate is a gateway change: a second one right away waits for it.
    let busy = h.call("CreateSslVpnClientCert", &[("SslVpnServerId", &server)]).await;
    assert_eq!(busy.code(), "VpnGateway.Configuring");
    h.wait_status(&gw, "active").await;
    let b = h.ok("DescribeSslVpnClientCert", &[("SslVpnClientCertId", &cert)]).await;
    for f in ["CaCert", "ClientCert"] {
        assert!(b[f].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"), "{f}");
    }
    assert!(b["ClientKey"].as_str().unwrap().contains("PRIVATE KEY"));
    let cfg = b["ClientConfig"].as_str().unwrap();
    let ip = h.ok("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await["InternetIp"].as_str().unwrap().to_string();
    assert!(cfg.contains(&format!("remote {ip} 1194")), "{cfg}");
    assert!(cfg.contains("<ca>") && cfg.contains("<cert>") && cfg.contains("<key>"));
    let list = h.ok("DescribeSslVpnClientCerts", &[("SslVpnServerId", &server)]).await;
    assert_eq!(list["SslVpnClientCertKeys"]["SslVpnClientCertKey"][0]["Status"], "normal");
    let serial = {
        let st = h.store.read(|tx| tx.get_unscoped::<openvgw_core::model::SslVpnClientCert>(&cert)).unwrap().unwrap();
        st.serial_hex
    };
    h.ok("DeleteSslVpnClientCert", &[("SslVpnClientCertId", &cert)]).await;
    let srv = h.store.read(|tx| tx.get_unscoped::<openvgw_core::model::SslVpnServer>(&server)).unwrap().unwrap();
    assert_eq!(srv.revoked_serials, vec![serial]);
    // The certificate's id is its common name: the data plane ends that client's live session.
    assert_eq!(srv.revoked_client_ids, vec![cert.clone()]);
    let crl = openvgw_control::ssl::crl_of(&srv).unwrap();
    assert!(crl.starts_with("-----BEGIN X509 CRL-----"));
}

#[tokio::test]
async fn routes_and_paging() {
    let h = harness();
    let gw = h.active_gateway().await;
    let cgw = id(&h.ok("CreateCustomerGateway", &[("IpAddress", "198.51.100.30")]).await, "CustomerGatewayId");
    let conn = id(
        &h.ok(
            "CreateVpnConnection",
            &[
                ("VpnGatewayId", &gw),
                ("CustomerGatewayId", &cgw),
                ("LocalSubnet", "0.0.0.0/0"),
                ("RemoteSubnet", "0.0.0.0/0"),
            ],
        )
        .await,
        "VpnConnectionId",
    );
    h.wait_status(&gw, "active").await;
    let route = [
        ("VpnGatewayId", gw.as_str()),
        ("RouteDest", "172.16.0.0/16"),
        ("NextHop", conn.as_str()),
        ("Weight", "0"),
        ("PublishVpc", "false"),
    ];
    let r = h.ok("CreateVpnRouteEntry", &route).await;
    assert_eq!(r["State"], "normal");
    h.wait_status(&gw, "active").await;
    assert_eq!(h.call("CreateVpnRouteEntry", &route).await.code(), "VpnRouteEntry.Conflict");
    h.wait_status(&gw, "active").await;
    let hop = h
        .call(
            "CreateVpnRouteEntry",
            &[
                ("VpnGatewayId", gw.as_str()),
                ("RouteDest", "172.17.0.0/16"),
                ("NextHop", "vco-nope"),
                ("Weight", "0"),
                ("PublishVpc", "true"),
            ],
        )
        .await;
    assert_eq!((hop.status, hop.code()), (404, "InvalidNextHop.NotFound"));
    h.ok(
        "PublishVpnRouteEntry",
        &[
            ("VpnGatewayId", &gw),
            ("RouteDest", "172.16.0.0/16"),
            ("NextHop", &conn),
            ("RouteType", "dbr"),
            ("PublishVpc", "true"),
        ],
    )
    .await;
    h.wait_status(&gw, "active").await;
    let listed = h.ok("DescribeVpnRouteEntries", &[("VpnGatewayId", &gw)]).await;
    assert_eq!(listed["VpnRouteEntries"]["VpnRouteEntry"][0]["State"], "published");
    let wrong_weight = h
        .call(
            "DeleteVpnRouteEntry",
            &[("VpnGatewayId", &gw), ("RouteDest", "172.16.0.0/16"), ("NextHop", &conn), ("Weight", "100")],
        )
        .await;
    assert_eq!(wrong_weight.code(), "InvalidVpnRouteEntry.NotFound");
    h.ok(
        "ModifyVpnRouteEntryWeight",
        &[
            ("VpnGatewayId", &gw),
            ("RouteDest", "172.16.0.0/16"),
            ("NextHop", &conn),
            ("Weight", "0"),
            ("NewWeight", "100"),
        ],
    )
    .await;
    h.wait_status(&gw, "active").await;
    h.ok(
        "DeleteVpnRouteEntry",
        &[("VpnGatewayId", &gw), ("RouteDest", "172.16.0.0/16"), ("NextHop", &conn), ("Weight", "100")],
    )
    .await;

    for i in 0..12 {
        h.ok("CreateCustomerGateway", &[("IpAddress", &format!("192.0.2.{}", i + 1))]).await;
    }
    let p1 = h.ok("DescribeCustomerGateways", &[("PageSize", "5"), ("PageNumber", "3")]).await;
    assert_eq!(p1["TotalCount"], 13);
    assert_eq!(p1["CustomerGateways"]["CustomerGateway"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn health_and_metrics() {
    let h = harness();
    assert_eq!(h.raw("GET", "/healthz").await.status, 200);
    h.call("DescribeVpnGateways", &[]).await;
    h.call("DescribeVpnGateway", &[("VpnGatewayId", "vpn-x")]).await;
    h.active_gateway().await;
    let m = h.raw("GET", "/metrics").await.text;
    assert!(m.contains(r#"openvgw_requests_total{dialect="aliyun",action="DescribeVpnGateways",code="200"} 1"#), "{m}");
    assert!(m.contains(r#"action="DescribeVpnGateway",code="InvalidVpnGatewayInstanceId.NotFound"}"#));
    assert!(m.contains("openvgw_request_duration_seconds_bucket"));
    assert!(m.contains(r#"openvgw_resources{kind="vpn_gateway",state="active"} 1"#), "{m}");
}

/// Lists are answered from memory while the store is unchanged (`server.read_cache`): every change — through the
/// API, by the reconciler, or written to the database by another process — is seen by the next list, in both
/// formats; a kept answer never reaches another tenant; and a repeated list is served from memory.
#[tokio::test]
async fn kept_list_answers_follow_every_change() {
    let h = harness();
    let names = |v: &Value| -> Vec<String> {
        v["CustomerGateways"]["CustomerGateway"]
            .as_array()
            .unwrap_or_else(|| panic!("no list in {v}"))
            .iter()
            .map(|c| c["Name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let hits = || async {
        let m = h.raw("GET", "/metrics").await.text;
        let line = m.lines().find(|l| l.starts_with(r#"openvgw_read_cache_total{result="hit"}"#)).map(str::to_string);
        line.and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).unwrap_or_else(|| panic!("no hit count in {m}"))
    };
    assert!(names(&h.ok("DescribeCustomerGateways", &[]).await).is_empty());
    let created = h.ok("CreateCustomerGateway", &[("IpAddress", "192.0.2.10"), ("Name", "one")]).await;
    let cgw = id(&created, "CustomerGatewayId");
    assert_eq!(names(&h.ok("DescribeCustomerGateways", &[]).await), ["one"], "a create is seen at once");
    let before = hits().await;
    assert_eq!(names(&h.ok("DescribeCustomerGateways", &[]).await), ["one"]);
    assert_eq!(hits().await, before + 1, "an unchanged store answers from memory");

    // Another tenant asking the same question gets its own answer.
    let other = h.call_as(&h.b, &[("Action", "DescribeCustomerGateways"), ("RegionId", "cn-hangzhou")]).await;
    assert_eq!(other.body["TotalCount"], 0, "{}", other.text);

    // Another process renames it in the database.
    let store = openvgw_store::Store::open(&h.dir.join("openvgw.db")).unwrap();
    let tenant = store.read(|tx| tx.tenants()).unwrap().into_iter().find(|t| t.name == "a").unwrap();
    let scope = openvgw_core::model::Scope::new(tenant.id, "cn-hangzhou");
    store
        .write(|tx| {
            let mut c: openvgw_core::model::CustomerGateway = tx.require(&scope, &cgw)?;
            c.name = "two".into();
            tx.update(&c)
        })
        .unwrap();
    assert_eq!(names(&h.ok("DescribeCustomerGateways", &[]).await), ["two"], "another process's write is seen");
    let xml = h.call("DescribeCustomerGateways", &[("Format", "XML")]).await;
    assert!(xml.text.contains("<Name>two</Name>") && xml.text.contains("<RequestId>"), "{}", xml.text);
    let one = h.ok("DescribeCustomerGateway", &[("CustomerGatewayId", &cgw)]).await;
    assert_eq!(one["Name"], "two");

    // The API's own changes, and the reconciler's (a gateway going from Provisioning to Active).
    h.ok("ModifyCustomerGatewayAttribute", &[("CustomerGatewayId", &cgw), ("Name", "three")]).await;
    assert_eq!(names(&h.ok("DescribeCustomerGateways", &[]).await), ["three"]);
    let listed = h.ok("DescribeVpnGateways", &[]).await;
    assert_eq!(listed["TotalCount"], 0);
    let gw = h.active_gateway().await;
    let listed = h.ok("DescribeVpnGateways", &[]).await;
    assert_eq!(listed["VpnGateways"]["VpnGateway"][0]["Status"], "active", "{listed}");
    h.ok(
        "TagResources",
        &[("ResourceType", "VPNGATEWAY"), ("ResourceId.1", &gw), ("Tag.1.Key", "k"), ("Tag.1.Value", "v")],
    )
    .await;
    let tagged = h.ok("DescribeVpnGateways", &[]).await;
    assert_eq!(tagged["VpnGateways"]["VpnGateway"][0]["Tags"]["Tag"][0]["Key"], "k", "{tagged}");
    h.ok("DeleteCustomerGateway", &[("CustomerGatewayId", &cgw)]).await;
    assert!(names(&h.ok("DescribeCustomerGateways", &[]).await).is_empty(), "a delete is seen at once");
}

/// With `server.read_cache = false` every list reads the store: nothing is served from memory.
#[tokio::test]
async fn without_the_read_cache_nothing_is_kept() {
    let h = harness_with(test_config(|c| c.server.read_cache = false));
    for _ in 0..3 {
        assert_eq!(h.ok("DescribeCustomerGateways", &[]).await["TotalCount"], 0);
    }
    let m = h.raw("GET", "/metrics").await.text;
    assert!(m.contains("openvgw_read_cache_total{result=\"hit\"} 0"), "{m}");
    assert!(m.contains("openvgw_read_cache_total{result=\"miss\"} 0"), "{m}");
}
