//! SSL-VPN through the netns driver: a stock OpenVPN client with the generated client profile reaches the VPC host,
//! and is refused once its certificate is in the CRL.
//! Run as root: `cargo test -p openvgw-dataplane-tests -- --nocapture` (skips with a message otherwise).

use std::time::{Duration, Instant};

use openvgw_core::crypto::{SslCipher, Transport};
use openvgw_dataplane::{ClientAuthIntent, Driver, Secret, SslServerIntent};
use openvgw_dataplane_tests::*;
use openvgw_pki::{crl, issue_client, issue_server, new_ca, openvpn_client_config, OpenVpnClientProfile};

const SETTLE: Duration = Duration::from_secs(30);

#[test]
fn ssl_vpn_client_reaches_vpc_until_revoked() {
    if !can_run("ssl_vpn_client_reaches_vpc_until_revoked") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("sslvpn");
    let (_vpc, client_ns) = lab.ssl_topology();

    let ca = new_ca("lab SSL-VPN CA").expect("ca");
    let server = issue_server(&ca, "vss-lab", &[GW_EIP.parse().expect("ip")]).expect("server cert");
    let client = issue_client(&ca, "alice", 30).expect("client cert");
    let mut intent = intent("vpn-ssl", Vec::new());
    intent.ssl_servers.push(SslServerIntent {
        id: "vss-lab".into(),
        port: 1194,
        transport: Transport::Udp,
        cipher: SslCipher::Aes128Cbc,
        compress: false,
        client_ip_pool: net("10.8.0.0/24"),
        local_subnets: vec![net(VPC_CIDR)],
        max_connections: 5,
        ca_cert_pem: ca.cert_pem.clone(),
        server_cert_pem: server.cert_pem.clone(),
        server_key_pem: Secret::new(server.key_pem.clone()),
        crl_pem: crl(&ca, &[], 1).expect("crl"),
        dns_servers: vec![],
        clients: ClientAuthIntent::Certificate { cas: vec![], revoked: vec![] },
    });
    let profile = openvpn_client_config(&OpenVpnClientProfile {
        remote_host: GW_EIP,
        port: 1194,
        proto_udp: true,
        cipher: "AES-128-CBC",
        compress: false,
        ca_pem: &ca.cert_pem,
        cert_pem: &client.cert_pem,
        key_pem: &client.key_pem,
    });
    let profile_path = lab.dir.join("alice.ovpn");
    std::fs::write(&profile_path, profile).expect("profile");
    let profile_path = profile_path.to_string_lossy().into_owned();

    let driver = lab.driver();
    runtime().block_on(async {
        let started = Instant::now();
        driver.apply(&intent).await.expect("apply");
        let apply = started.elapsed();
        let key = lab.dir.join("dataplane/gateways/vpn-ssl/ssl/vss-lab/server.key");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).expect("key").permissions());
        assert_eq!(mode & 0o777, 0o600, "server key is private");

        // Before the client connects, the VPC is out of reach.
        assert!(!ping(&client_ns, VPC_HOST));
        let client_pid = lab.spawn(&client_ns, &["openvpn", "--config", &profile_path], &[], "alice-1.log");
        let reached = time_to_ping(&client_ns, VPC_HOST, SETTLE).expect("client reaches the VPC host");
        eprintln!(
            "TIMING ssl-vpn: apply {} ms, client start -> first ping {} ms",
            apply.as_millis(),
            reached.as_millis()
        );
        let obs = driver.observe("vpn-ssl").await.expect("observe");
        assert!(obs.ready, "gateway ready with its OpenVPN");
        assert_eq!(obs.ssl_sessions.get("vss-lab"), Some(&1), "one client session");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
        let logs = driver.ssl_server_logs("vpn-ssl", "vss-lab", now - 120, now + 5).await.expect("logs");
        assert!(logs.iter().any(|l| l.contains("Initialization Sequence Completed")), "server log lines: {logs:?}");
        assert!(driver.ssl_server_logs("vpn-ssl", "vss-lab", 0, 1000).await.expect("logs").is_empty());

        // Revoke alice while she is connected: her session ends at once, not at her next handshake; her next
        // connection is refused.
        let server_pid = driver.daemon_pids("vpn-ssl").expect("pids");
        intent.generation += 1;
        intent.ssl_servers[0].crl_pem = crl(&ca, std::slice::from_ref(&client.serial_hex), 2).expect("crl");
        intent.ssl_servers[0].clients = ClientAuthIntent::Certificate { cas: vec![], revoked: vec!["alice".into()] };
        let revoked = Instant::now();
        driver.apply(&intent).await.expect("apply revocation");
        assert!(
            wait_for(Duration::from_secs(10), || lab.has_exited(client_pid)),
            "the revoked client is still connected"
        );
        eprintln!("TIMING revocation applied -> the client's session ended: {} ms", revoked.elapsed().as_millis());
        // The server lets go of the session a moment after the client has gone.
        let mut sessions = None;
        for _ in 0..50 {
            sessions = driver.observe("vpn-ssl").await.expect("observe").ssl_sessions.get("vss-lab").copied();
            if sessions == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(sessions, Some(0), "the server still lists the revoked session");
        assert_eq!(driver.daemon_pids("vpn-ssl").expect("pids"), server_pid, "a revocation needs no restart");
        lab.spawn(&client_ns, &["openvpn", "--config", &profile_path], &[], "alice-2.log");
        assert!(stays_unreachable(&client_ns, VPC_HOST, Duration::from_secs(6)), "revoked client must not get in");
        let server_log = std::fs::read_to_string(lab.dir.join("dataplane/gateways/vpn-ssl/ssl/vss-lab/openvpn.log"))
            .unwrap_or_default();
        assert!(server_log.contains("revoked"), "the server refused the revoked certificate");

        let ns = driver.namespace_of("vpn-ssl").expect("ns");
        driver.remove("vpn-ssl").await.expect("remove");
        assert!(!netns_exists(&ns));
        for pid in server_pid {
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "openvpn {pid} stopped");
        }
    });
}
