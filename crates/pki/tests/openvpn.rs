//! Runs the generated profiles through a real OpenVPN 2.6 when one is
//! installed; skipped (with a message) otherwise.
//!
//! * Every profile must get past OpenVPN's option checks (which is where 2.6
//!   rejects bad cipher/compression combinations).
//! * Where a TUN device can be created (root + /dev/net/tun), a loopback
//!   server built from `openvpn_server_cipher_directives` must negotiate the
//!   configured cipher/compression with the client profile, and must refuse a
//!   client whose serial is in the CRL. All traffic stays on 127.0.0.1.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use openvgw_pki::{
    crl, issue_client, issue_server, new_ca, openvpn_client_config, openvpn_server_cipher_directives, CaMaterial,
    CertifiedKey, OpenVpnClientProfile, SUPPORTED_CIPHERS,
};

const WAIT: Duration = Duration::from_secs(20);

fn openvpn_installed() -> bool {
    if common::available("openvpn", "--version") {
        return true;
    }
    eprintln!("SKIP: `openvpn` is not installed; OpenVPN profile checks not run");
    false
}

/// Kills the child on drop so a failing assertion never leaks an openvpn.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, args: &[&str], log: &str) -> Proc {
    let log = std::fs::File::create(dir.join(log)).expect("log file");
    let err = log.try_clone().expect("log clone");
    Proc(
        Command::new("openvpn")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn openvpn"),
    )
}

/// Polls `log` until one of `patterns` shows up (returns its index), the
/// process exits, or WAIT elapses (None).
fn wait_for(dir: &Path, log: &str, proc_: &mut Proc, patterns: &[&str]) -> Option<usize> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
        if let Some(i) = patterns.iter().position(|p| text.contains(p)) {
            return Some(i);
        }
        if start.elapsed() > WAIT || matches!(proc_.0.try_wait(), Ok(Some(_))) {
            // One last look: the process may have written and exited.
            let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
            return patterns.iter().position(|p| text.contains(p));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read(dir: &Path, log: &str) -> String {
    std::fs::read_to_string(dir.join(log)).unwrap_or_default()
}

fn free_port(udp: bool) -> u16 {
    if udp {
        UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("udp port").port()
    } else {
        TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("tcp port").port()
    }
}

struct Pki {
    ca: CaMaterial,
    server: CertifiedKey,
    client: CertifiedKey,
}

fn pki() -> Pki {
    let ca = new_ca("openvpn test CA").expect("ca");
    let server = issue_server(&ca, "server", &["127.0.0.1".parse().expect("ip")]).expect("srv");
    let client = issue_client(&ca, "client", 30).expect("client");
    Pki { ca, server, client }
}

fn client_profile(pki: &Pki, port: u16, udp: bool, cipher: &str, compress: bool) -> String {
    openvpn_client_config(&OpenVpnClientProfile {
        remote_host: "127.0.0.1",
        port,
        proto_udp: udp,
        cipher,
        compress,
        ca_pem: &pki.ca.cert_pem,
        cert_pem: &pki.client.cert_pem,
        key_pem: &pki.client.key_pem,
    })
}

/// `dev null` + no ifconfig lets the client run without a TUN device; all
/// other directives come from the profile unchanged.
const CLIENT_ARGS: [&str; 6] = ["--dev", "null", "--ifconfig-noexec", "--route-noexec", "--verb", "3"];

#[test]
fn client_profiles_pass_openvpn_option_checks() {
    if !openvpn_installed() {
        return;
    }
    let pki = pki();
    for cipher in SUPPORTED_CIPHERS {
        for (udp, compress) in [(true, false), (false, true)] {
            let dir = TempDir::new("ovpn-parse");
            // Nothing listens there: we only need OpenVPN to accept the
            // options and start connecting.
            let port = free_port(udp);
            dir.write("client.ovpn", &client_profile(&pki, port, udp, cipher, compress));
            let mut args = vec!["--config", "client.ovpn"];
            args.extend_from_slice(&CLIENT_ARGS);
            let mut client = spawn(dir.path(), &args, "client.log");
            let hit = wait_for(
                dir.path(),
                "client.log",
                &mut client,
                &[
                    "link remote:",
                    "Attempting to establish TCP connection",
                    "Options error",
                    "Exiting due to fatal error",
                ],
            );
            let log = read(dir.path(), "client.log");
            assert!(
                matches!(hit, Some(0 | 1)),
                "cipher={cipher} udp={udp} compress={compress}: OpenVPN rejected the profile:\n{log}"
            );
            assert!(!log.contains("DEPRECATED OPTION"), "{log}");
        }
    }
}

fn server_conf(pki: &Pki, dir: &TempDir, port: u16, udp: bool, cipher: &str, compress: bool, net: u8) -> String {
    dir.write("ca.pem", &pki.ca.cert_pem);
    dir.write("server.pem", &pki.server.cert_pem);
    dir.write("server.key", &pki.server.key_pem);
    // Unique per run: several test processes may share the machine.
    let dev = format!("ovpki{}n{net}", std::process::id() % 100_000);
    format!(
        "proto {proto}\nlocal 127.0.0.1\nport {port}\ndev-type tun\ndev {dev}\n\
         server 10.231.{net}.0 255.255.255.0\ntopology subnet\n\
         ca ca.pem\ncert server.pem\nkey server.key\ndh none\n\
         crl-verify crl.pem\nremote-cert-tls client\nverb 3\n{directives}",
        proto = if udp { "udp" } else { "tcp-server" },
        directives = openvpn_server_cipher_directives(cipher, compress),
    )
}

/// Outcome of one loopback connection attempt.
enum Handshake {
    /// TUN unavailable here: nothing was tested.
    NoTun,
    Connected {
        client_log: String,
    },
    Refused {
        server_log: String,
    },
}

fn handshake(pki: &Pki, udp: bool, cipher: &str, compress: bool, revoked: &[String], net: u8) -> Handshake {
    let dir = TempDir::new("ovpn-loop");
    let port = free_port(udp);
    dir.write("server.conf", &server_conf(pki, &dir, port, udp, cipher, compress, net));
    dir.write("crl.pem", &crl(&pki.ca, revoked, 1).expect("crl"));
    let mut server = spawn(dir.path(), &["--config", "server.conf"], "server.log");
    let ready = wait_for(
        dir.path(),
        "server.log",
        &mut server,
        &["Initialization Sequence Completed", "Exiting due to fatal error", "Options error"],
    );
    let server_log = read(dir.path(), "server.log");
    if ready != Some(0) {
        if server_log.contains("TUN") || server_log.contains("tun") {
            eprintln!("SKIP loopback: cannot create a TUN device here:\n{server_log}");
            return Handshake::NoTun;
        }
        panic!("OpenVPN server did not start with our directives:\n{server_log}");
    }

    dir.write("client.ovpn", &client_profile(pki, port, udp, cipher, compress));
    let mut args = vec!["--config", "client.ovpn"];
    args.extend_from_slice(&CLIENT_ARGS);
    let mut client = spawn(dir.path(), &args, "client.log");
    // Watch both sides: a refused client just keeps retrying, so only the
    // server log tells us about a rejected certificate.
    let start = Instant::now();
    loop {
        let client_log = read(dir.path(), "client.log");
        let server_log = read(dir.path(), "server.log");
        if client_log.contains("Initialization Sequence Completed") {
            return Handshake::Connected { client_log };
        }
        if server_log.contains("VERIFY ERROR") {
            return Handshake::Refused { server_log };
        }
        let client_exited = matches!(client.0.try_wait(), Ok(Some(_)));
        if client_exited || start.elapsed() > WAIT {
            panic!("handshake neither completed nor was refused:\n--- client\n{client_log}\n--- server\n{server_log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn loopback_negotiates_configured_cipher_and_honours_crl() {
    if !openvpn_installed() {
        return;
    }
    let pki = pki();
    // (udp, cipher, compress): every cipher once, compression over both transports.
    let cases = [
        (true, "AES-128-CBC", false),
        (true, "AES-192-CBC", false),
        (false, "AES-256-CBC", true),
        (true, "none", true),
    ];
    for (i, (udp, cipher, compress)) in cases.into_iter().enumerate() {
        let net = u8::try_from(i).expect("few cases");
        let client_log = match handshake(&pki, udp, cipher, compress, &[], net) {
            Handshake::NoTun => return,
            Handshake::Connected { client_log } => client_log,
            Handshake::Refused { server_log } => {
                panic!("{cipher}: valid client refused:\n{server_log}")
            }
        };
        // "none" is reported as OpenSSL's null cipher.
        let shown = if cipher == "none" { "[null-cipher]" } else { cipher };
        assert!(
            client_log.contains(&format!("Data Channel: cipher '{shown}'")),
            "{cipher}: wrong data channel cipher:\n{client_log}"
        );
        assert_eq!(
            client_log.contains("compression: 'lz4v2'"),
            compress,
            "{cipher}: compression mismatch:\n{client_log}"
        );
        // Without `allow-compression yes` 2.6 silently degrades to "asym"
        // (decompress only) and says so with this warning.
        assert!(
            !client_log.contains("Sent packets are not compressed"),
            "{cipher}: client compresses only one way:\n{client_log}"
        );
    }

    // Same client, now revoked: the server must reject it via crl-verify.
    match handshake(&pki, true, "AES-128-CBC", false, std::slice::from_ref(&pki.client.serial_hex), 9) {
        Handshake::NoTun => {}
        Handshake::Connected { client_log } => {
            panic!("revoked client connected:\n{client_log}")
        }
        Handshake::Refused { server_log } => {
            assert!(server_log.contains("certificate revoked"), "{server_log}");
        }
    }
}
