//! SSL-VPN client authentication through the netns driver, with stock OpenVPN clients:
//! - password users (TCP 443, AES-128-GCM, as Huawei offers it): the driver checks the password over the management
//!   interface, gives each user its own address, lets it reach only its networks (nftables), lists, disconnects and,
//!   on an apply that drops a user, ends that user's session while the others stay up;
//! - certificate clients of an imported CA: accepted, while clients of the server's own CA are then refused.
//!
//! Run as root: `cargo test -p openvgw-dataplane-tests -- --nocapture` (skips with a message otherwise).

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use openvgw_core::crypto::{SslCipher, Transport};
use openvgw_dataplane::netns::NetnsDriver;
use openvgw_dataplane::{ClientAuthIntent, ClientSession, Driver, GatewayIntent, Secret, SslServerIntent, UserIntent};
use openvgw_dataplane_tests::*;
use openvgw_pki::{crl, issue_client, issue_server, new_ca, openvpn_client_config, CaMaterial, OpenVpnClientProfile};

const SETTLE: Duration = Duration::from_secs(40);
const GW: &str = "vpn-users";
const SERVER: &str = "vss-users";
/// The VPC spans two subnets with a host each; the client pool lies outside it.
const VPC_NET: &str = "10.0.0.0/14";
const GW_VPC_IP: &str = "10.0.0.1";
const HOST_A: &str = "10.1.0.10";
const HOST_B: &str = "10.2.0.10";
const ALICE_IP: &str = "10.9.0.10";
const BOB_IP: &str = "10.9.0.20";
const ALICE_PW: &str = "Alice-Wonder-7731";
const BOB_PW: &str = "Bob-Builder-4410";

fn ssl_server(ca: &CaMaterial, clients: ClientAuthIntent) -> SslServerIntent {
    let server = issue_server(ca, SERVER, &[ip(GW_EIP).into()]).expect("server cert");
    SslServerIntent {
        id: SERVER.into(),
        port: 1194,
        transport: Transport::Udp,
        cipher: SslCipher::Aes128Cbc,
        compress: false,
        client_ip_pool: net("10.9.0.0/24"),
        local_subnets: vec![net(VPC_CIDR)],
        max_connections: 10,
        ca_cert_pem: ca.cert_pem.clone(),
        server_cert_pem: server.cert_pem,
        server_key_pem: Secret::new(server.key_pem),
        crl_pem: crl(ca, &[], 1).expect("crl"),
        dns_servers: vec![],
        clients,
    }
}

fn user(name: &str, password: &str, address: &str, allowed: &[&str]) -> UserIntent {
    UserIntent {
        name: name.into(),
        password_hash: openvgw_core::password::hash(password).expect("hash"),
        address: ip(address),
        allowed: allowed.iter().map(|n| net(n)).collect(),
    }
}

/// A client profile for user name + password: the server's CA, no client certificate.
fn password_profile(lab: &Lab, name: &str, ca_pem: &str, credentials: &str) -> String {
    let profile = format!(
        "client\ndev tun\nproto tcp-client\nremote {GW_EIP} 443\nnobind\nremote-cert-tls server\n\
         data-ciphers AES-128-GCM\ndata-ciphers-fallback AES-128-GCM\nauth-user-pass {credentials}\n\
         auth-retry none\nverb 3\n<ca>\n{}\n</ca>\n",
        ca_pem.trim()
    );
    let path = lab.dir.join(format!("{name}.ovpn"));
    std::fs::write(&path, profile).expect("profile");
    path.to_string_lossy().into_owned()
}

/// Credential files (mode 0600), deleted when dropped, even when the test fails.
struct Credentials(Vec<PathBuf>);

impl Credentials {
    fn write(&mut self, lab: &Lab, file: &str, user: &str, password: &str) -> String {
        let path = lab.dir.join(file);
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).expect("credentials file");
        std::io::Write::write_all(&mut f, format!("{user}\n{password}\n").as_bytes()).expect("credentials");
        self.0.push(path.clone());
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The address of the client's tunnel device, if it has one.
fn tunnel_address(ns: &str) -> Option<String> {
    let out = in_ns(ns, &["ip", "-4", "-o", "addr", "show", "dev", "tun0"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().skip_while(|w| *w != "inet").nth(1).map(|a| a.split('/').next().unwrap_or(a).to_string())
}

async fn sessions_of(driver: &NetnsDriver, user: &str) -> Vec<ClientSession> {
    driver.sessions(GW).await.expect("sessions").into_iter().filter(|s| s.user == user).collect()
}

/// Polls the driver's sessions until `check` holds (or `within` passes).
async fn wait_sessions(
    driver: &NetnsDriver,
    within: Duration,
    mut check: impl FnMut(&[ClientSession]) -> bool,
) -> Vec<ClientSession> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let sessions = driver.sessions(GW).await.expect("sessions");
        if check(&sessions) || std::time::Instant::now() >= deadline {
            return sessions;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts a client and waits for it to give up after the server's refusal.
fn refused(lab: &mut Lab, ns: &str, profile: &str, log: &str) {
    let pid = lab.spawn(ns, &["openvpn", "--config", profile], &[], log);
    assert!(wait_for(SETTLE, || lab.has_exited(pid)), "the refused client gave up ({log})");
    assert!(lab.log(log).contains("AUTH_FAILED"), "refused by authentication:\n{}", lab.log(log));
    assert!(tunnel_address(ns).is_none(), "no tunnel for a refused client");
}

fn users_topology(lab: &mut Lab) -> (String, String) {
    let vpc_bridge = lab.vpc_bridge.clone();
    let public_bridge = lab.public_bridge.clone();
    for (role, host) in [("hosta", HOST_A), ("hostb", HOST_B)] {
        let ns = lab.namespace(role);
        lab.plug(&ns, "eth0", &vpc_bridge, &format!("{host}/14"));
        must("ip", &["-n", &ns, "route", "add", "default", "via", GW_VPC_IP]);
    }
    let alice = lab.namespace("alice");
    lab.plug(&alice, "eth0", &public_bridge, &format!("{CLIENT_IP}/24"));
    let bob = lab.namespace("bob");
    lab.plug(&bob, "eth0", &public_bridge, "203.0.113.11/24");
    (alice, bob)
}

fn users_intent(ca: &CaMaterial, users: Vec<UserIntent>) -> GatewayIntent {
    let mut gw = intent(GW, Vec::new());
    gw.vpc_cidr = Some(net(VPC_NET));
    gw.private_ip = ip(GW_VPC_IP);
    let mut s = ssl_server(ca, ClientAuthIntent::Password { users });
    s.port = 443;
    s.transport = Transport::Tcp;
    s.cipher = SslCipher::Aes128Gcm;
    s.local_subnets = vec![net("10.1.0.0/24"), net("10.2.0.0/24")];
    s.dns_servers = vec![ip("10.1.0.53")];
    gw.ssl_servers.push(s);
    gw
}

#[test]
fn password_users_get_their_address_and_only_their_networks() {
    if !can_run_with("password_users_get_their_address_and_only_their_networks", &["nft"]) {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("sslusers");
    let (alice_ns, bob_ns) = users_topology(&mut lab);
    let ca = new_ca("lab SSL-VPN CA").expect("ca");
    let alice = user("alice", ALICE_PW, ALICE_IP, &["10.1.0.0/24"]);
    let bob = user("bob", BOB_PW, BOB_IP, &["10.2.0.0/24"]);
    let mut gw = users_intent(&ca, vec![alice.clone(), bob.clone()]);
    let mut creds = Credentials(Vec::new());
    let alice_good = creds.write(&lab, "alice.cred", "alice", ALICE_PW);
    let alice_bad = creds.write(&lab, "alice-bad.cred", "alice", "not-her-password");
    let bob_good = creds.write(&lab, "bob.cred", "bob", BOB_PW);
    let alice_profile = password_profile(&lab, "alice", &ca.cert_pem, &alice_good);
    let alice_bad_profile = password_profile(&lab, "alice-bad", &ca.cert_pem, &alice_bad);
    let bob_profile = password_profile(&lab, "bob", &ca.cert_pem, &bob_good);
    let mut driver = lab.driver();
    runtime().block_on(async {
        driver.apply(&gw).await.expect("apply");
        let conf = lab.log(&format!("dataplane/gateways/{GW}/ssl/{SERVER}/server.conf"));
        assert!(conf.contains("management-client-auth") && conf.contains("verify-client-cert none"), "{conf}");

        // A wrong password is refused; nobody is connected.
        refused(&mut lab, &alice_ns, &alice_bad_profile, "alice-bad.log");
        assert!(driver.sessions(GW).await.expect("sessions").is_empty());

        // alice gets exactly her address and the pushed DNS server, reaches her network and nothing else.
        let pid = lab.spawn(&alice_ns, &["openvpn", "--config", &alice_profile], &[], "alice-1.log");
        assert!(time_to_ping(&alice_ns, HOST_A, SETTLE).is_some(), "alice reaches 10.1.0.0/24");
        assert_eq!(tunnel_address(&alice_ns).as_deref(), Some(ALICE_IP), "alice's own address");
        assert!(lab.log("alice-1.log").contains("dhcp-option DNS 10.1.0.53"), "DNS server pushed");
        assert!(stays_unreachable(&alice_ns, HOST_B, Duration::from_secs(3)), "10.2.0.0/24 is not alice's");
        let listed = sessions_of(&driver, "alice").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].virtual_ip, Some(ip(ALICE_IP)));
        assert_eq!(listed[0].server_id, SERVER);
        assert!(listed[0].real_address.starts_with(&format!("{CLIENT_IP}:")), "{:?}", listed[0]);
        assert!(listed[0].bytes_in > 0 && listed[0].bytes_out > 0, "{:?}", listed[0]);
        assert!(listed[0].connected_since > now_s() - 120 && listed[0].connected_since <= now_s());
        let obs = driver.observe(GW).await.expect("observe");
        assert!(obs.ready, "ready with the management connection attached and the access rules loaded");
        assert_eq!(obs.ssl_sessions.get(SERVER), Some(&1));

        // disconnect ends her session: the client is told to stop and goes.
        assert!(!driver.disconnect(GW, &format!("{SERVER}:999999")).await.expect("disconnect unknown"));
        assert!(!driver.disconnect(GW, "vss-other:0").await.expect("disconnect unknown server"));
        assert!(driver.disconnect(GW, &listed[0].id).await.expect("disconnect"));
        assert!(wait_for(SETTLE, || lab.has_exited(pid)), "alice's client saw its session end");
        let left = wait_sessions(&driver, SETTLE, |s| s.iter().all(|s| s.user != "alice")).await;
        assert!(left.iter().all(|s| s.user != "alice"), "{left:?}");
        assert!(!driver.disconnect(GW, &listed[0].id).await.expect("disconnect again"), "already gone");

        // bob (another client) reaches only his network; alice is back.
        lab.spawn(&bob_ns, &["openvpn", "--config", &bob_profile], &[], "bob.log");
        assert!(time_to_ping(&bob_ns, HOST_B, SETTLE).is_some(), "bob reaches 10.2.0.0/24");
        assert_eq!(tunnel_address(&bob_ns).as_deref(), Some(BOB_IP));
        assert!(stays_unreachable(&bob_ns, HOST_A, Duration::from_secs(2)), "10.1.0.0/24 is not bob's");
        let alice_pid = lab.spawn(&alice_ns, &["openvpn", "--config", &alice_profile], &[], "alice-2.log");
        assert!(time_to_ping(&alice_ns, HOST_A, SETTLE).is_some(), "alice is back");
        let bob_before = sessions_of(&driver, "bob").await;
        assert_eq!(bob_before.len(), 1);

        // An apply without alice ends her live session within seconds; bob's session is untouched.
        gw.generation += 1;
        gw.ssl_servers[0].clients = ClientAuthIntent::Password { users: vec![bob.clone()] };
        let pids = driver.daemon_pids(GW).expect("pids");
        driver.apply(&gw).await.expect("apply without alice");
        assert_eq!(driver.daemon_pids(GW).expect("pids"), pids, "a user change restarts no daemon");
        assert!(wait_for(Duration::from_secs(10), || lab.has_exited(alice_pid)), "alice's session ended");
        assert!(sessions_of(&driver, "alice").await.is_empty());
        assert_eq!(sessions_of(&driver, "bob").await.first().map(|s| &s.id), Some(&bob_before[0].id), "bob stays");
        assert!(ping(&bob_ns, HOST_B), "bob's traffic still flows");
        assert!(!ping(&alice_ns, HOST_A), "alice's tunnel is gone");
        refused(&mut lab, &alice_ns, &alice_profile, "alice-3.log");

        // openvgw restarts: a new driver adopts the running OpenVPN, takes its management interface over, still
        // sees bob, and answers sign-ins (alice is listed again by an apply that restarts nothing).
        driver = lab.driver();
        let obs = driver.observe(GW).await.expect("observe after restart");
        assert!(obs.ready, "the adopted server is attached again");
        assert_eq!(obs.ssl_sessions.get(SERVER), Some(&1), "bob's session is seen by the new driver");
        gw.generation += 1;
        gw.ssl_servers[0].clients = ClientAuthIntent::Password { users: vec![alice, bob] };
        driver.apply(&gw).await.expect("apply with alice again");
        assert_eq!(driver.daemon_pids(GW).expect("pids"), pids, "the restarted driver restarted no daemon");
        let pid = lab.spawn(&alice_ns, &["openvpn", "--config", &alice_profile], &[], "alice-4.log");
        assert!(time_to_ping(&alice_ns, HOST_A, SETTLE).is_some(), "alice signs in through the new driver");
        assert_eq!(sessions_of(&driver, "bob").await.first().map(|s| &s.id), Some(&bob_before[0].id), "bob stays");
        lab.kill(pid);

        // While openvgw is down (no management client attached) nobody gets in, whatever the password.
        drop(driver);
        let pid = lab.spawn(&alice_ns, &["openvpn", "--config", &alice_profile], &[], "alice-5.log");
        assert!(stays_unreachable(&alice_ns, HOST_A, Duration::from_secs(8)), "no answer, no entry");
        assert!(tunnel_address(&alice_ns).is_none(), "no tunnel without the driver");
        lab.kill(pid);
        driver = lab.driver();
        assert!(driver.observe(GW).await.expect("observe").ready, "attached again");
        let names: Vec<String> = driver.sessions(GW).await.expect("sessions").into_iter().map(|s| s.user).collect();
        assert_eq!(names, ["bob"]);

        // The clear passwords were never written anywhere by the driver or OpenVPN.
        drop(creds);
        let mut files = Vec::new();
        collect_files(&lab.dir, &mut files);
        assert!(files.len() > 5, "{files:?}");
        for f in files {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
            assert!(!text.contains(ALICE_PW) && !text.contains(BOB_PW), "a password leaked into {}", f.display());
        }

        let ns = driver.namespace_of(GW).expect("ns");
        driver.remove(GW).await.expect("remove");
        assert!(!netns_exists(&ns));
    });
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

#[test]
fn imported_ca_clients_get_in_and_own_ca_clients_do_not() {
    if !can_run("imported_ca_clients_get_in_and_own_ca_clients_do_not") {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new("sslca");
    let (_vpc, client_ns) = lab.ssl_topology();

    let own = new_ca("lab SSL-VPN CA").expect("own ca");
    let imported = new_ca("customer CA").expect("imported ca");
    let carol = issue_client(&imported, "carol", 30).expect("client of the imported CA");
    let dave = issue_client(&own, "dave", 30).expect("client of the own CA");
    let mut gw = intent("vpn-sslca", Vec::new());
    gw.ssl_servers.push(ssl_server(
        &own,
        ClientAuthIntent::Certificate { cas: vec![imported.cert_pem.clone()], revoked: vec![] },
    ));
    let profile = |name: &str, cert: &openvgw_pki::CertifiedKey| {
        let text = openvpn_client_config(&OpenVpnClientProfile {
            remote_host: GW_EIP,
            port: 1194,
            proto_udp: true,
            cipher: "AES-128-CBC",
            compress: false,
            // The client checks the server against the server's own CA either way.
            ca_pem: &own.cert_pem,
            cert_pem: &cert.cert_pem,
            key_pem: &cert.key_pem,
        });
        let path = lab.dir.join(format!("{name}.ovpn"));
        std::fs::write(&path, text).expect("profile");
        path.to_string_lossy().into_owned()
    };
    let (carol_profile, dave_profile) = (profile("carol", &carol), profile("dave", &dave));
    let driver = lab.driver();
    runtime().block_on(async {
        driver.apply(&gw).await.expect("apply");
        let conf = lab.log("dataplane/gateways/vpn-sslca/ssl/vss-users/server.conf");
        assert!(!conf.contains("crl-verify"), "the own CRL does not apply to imported CAs:\n{conf}");

        let pid = lab.spawn(&client_ns, &["openvpn", "--config", &carol_profile], &[], "carol.log");
        assert!(time_to_ping(&client_ns, VPC_HOST, SETTLE).is_some(), "the imported CA's client reaches the VPC");
        let sessions = driver.sessions("vpn-sslca").await.expect("sessions");
        assert_eq!(sessions.iter().map(|s| s.user.as_str()).collect::<Vec<_>>(), ["carol"], "{sessions:?}");
        lab.kill(pid);

        // With imported CAs, the server trusts only them.
        let pid = lab.spawn(&client_ns, &["openvpn", "--config", &dave_profile], &[], "dave-1.log");
        assert!(stays_unreachable(&client_ns, VPC_HOST, Duration::from_secs(6)), "own CA's client refused");
        let server_log = lab.log("dataplane/gateways/vpn-sslca/ssl/vss-users/openvpn.log");
        assert!(server_log.contains("VERIFY ERROR"), "the server refused dave's certificate:\n{server_log}");
        lab.kill(pid);

        // Without imported CAs, the same client is welcome: the refusal was the CA, nothing else.
        gw.generation += 1;
        gw.ssl_servers[0].clients = ClientAuthIntent::Certificate { cas: vec![], revoked: vec![] };
        driver.apply(&gw).await.expect("apply with the own CA");
        lab.spawn(&client_ns, &["openvpn", "--config", &dave_profile], &[], "dave-2.log");
        assert!(time_to_ping(&client_ns, VPC_HOST, SETTLE).is_some(), "own CA's client reaches the VPC");
        driver.remove("vpn-sslca").await.expect("remove");
    });
}
