//! Cross-checks the PKI against the system `openssl` CLI (OpenSSL 3), which is
//! the same library OpenVPN uses to validate these certificates and CRLs.

mod common;

use common::{combined, run, TempDir};
use openvgw_pki::{crl, issue_client, issue_server, new_ca, CertifiedKey};

fn require_openssl() {
    assert!(
        common::available("openssl", "version"),
        "the `openssl` CLI is required for these tests (apt-get install openssl)"
    );
}

fn verify(dir: &TempDir, extra: &[&str], cert: &str) -> (bool, String) {
    let mut args = vec!["verify", "-CAfile", "ca.pem"];
    args.extend_from_slice(extra);
    args.push(cert);
    let out = run(dir.path(), "openssl", &args);
    (out.status.success(), combined(&out))
}

fn write_leaf(dir: &TempDir, name: &str, leaf: &CertifiedKey) {
    dir.write(&format!("{name}.pem"), &leaf.cert_pem);
    dir.write(&format!("{name}.key"), &leaf.key_pem);
}

#[test]
fn chain_verifies_and_revocation_is_enforced() {
    require_openssl();
    let dir = TempDir::new("openssl");
    let ca = new_ca("openvgw test CA").expect("ca");
    let server = issue_server(&ca, "vpn.example.com", &["127.0.0.1".parse().expect("ip")]).expect("server");
    let client = issue_client(&ca, "client-1", 365).expect("client");
    let other = issue_client(&ca, "client-2", 365).expect("other");
    dir.write("ca.pem", &ca.cert_pem);
    write_leaf(&dir, "server", &server);
    write_leaf(&dir, "client", &client);
    write_leaf(&dir, "other", &other);

    // Plain chain validation.
    for cert in ["server.pem", "client.pem", "other.pem"] {
        let (ok, out) = verify(&dir, &[], cert);
        assert!(ok, "{cert} should verify: {out}");
    }
    // EKUs as OpenSSL sees them (OpenVPN's remote-cert-tls uses the same bits).
    assert!(verify(&dir, &["-purpose", "sslserver"], "server.pem").0);
    assert!(verify(&dir, &["-purpose", "sslclient"], "client.pem").0);
    let (ok, out) = verify(&dir, &["-purpose", "sslserver"], "client.pem");
    assert!(!ok, "a client certificate must not pass as a server: {out}");

    // An empty CRL is valid and revokes nothing.
    dir.write("crl_empty.pem", &crl(&ca, &[], 1).expect("empty crl"));
    let (ok, out) = verify(&dir, &["-crl_check", "-CRLfile", "crl_empty.pem"], "client.pem");
    assert!(ok, "client should pass an empty CRL: {out}");

    // Revoking client-1 (hex given in upper case to exercise normalisation).
    let revoked = vec![client.serial_hex.to_uppercase()];
    dir.write("crl.pem", &crl(&ca, &revoked, 2).expect("crl"));
    let (ok, out) = verify(&dir, &["-crl_check", "-CRLfile", "crl.pem"], "client.pem");
    assert!(!ok, "revoked client must fail: {out}");
    assert!(out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify(&dir, &["-crl_check", "-CRLfile", "crl.pem"], "other.pem");
    assert!(ok, "unrevoked client must still pass: {out}");

    // The CRL is signed by the CA and lists the serial and the CRL number.
    let out = run(dir.path(), "openssl", &["crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout", "-text"]);
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("verify OK"), "CRL signature: {text}");
    assert!(text.contains(&format!("Serial Number: {}", client.serial_hex.to_uppercase())), "{text}");
    assert!(!text.contains(&other.serial_hex.to_uppercase()), "{text}");
    let crl_number =
        text.split("X509v3 CRL Number:").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_default();
    assert_eq!(crl_number, "2", "{text}");
    assert!(!text.contains("Next Update: NONE"), "{text}");
}

#[test]
fn certificates_look_right_to_openssl() {
    require_openssl();
    let dir = TempDir::new("openssl-x509");
    let ca = new_ca("CA").expect("ca");
    let server = issue_server(
        &ca,
        "vpn.example.com",
        &["198.51.100.4".parse().expect("ip"), "2001:db8::4".parse().expect("ip")],
    )
    .expect("server");
    let client = issue_client(&ca, "client", 30).expect("client");
    dir.write("ca.pem", &ca.cert_pem);
    write_leaf(&dir, "server", &server);
    write_leaf(&dir, "client", &client);

    let text = |file: &str| {
        let out = run(dir.path(), "openssl", &["x509", "-in", file, "-noout", "-text"]);
        assert!(out.status.success(), "{}", combined(&out));
        combined(&out)
    };
    let ca_text = text("ca.pem");
    assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign, CRL Sign"), "{ca_text}");
    let s = text("server.pem");
    assert!(s.contains("TLS Web Server Authentication"), "{s}");
    assert!(s.contains("IP Address:198.51.100.4"), "{s}");
    assert!(s.contains("IP Address:2001:DB8:0:0:0:0:0:4"), "{s}");
    assert!(s.contains("DNS:vpn.example.com"), "{s}");
    assert!(s.contains("CA:FALSE"), "{s}");
    let c = text("client.pem");
    assert!(c.contains("TLS Web Client Authentication"), "{c}");
    assert!(c.contains("Digital Signature"), "{c}");

    // Serial as OpenSSL reads it.
    let out = run(dir.path(), "openssl", &["x509", "-in", "client.pem", "-noout", "-serial"]);
    assert_eq!(combined(&out).trim(), format!("serial={}", client.serial_hex.to_uppercase()));

    // notAfter: -checkend N succeeds iff the cert is still valid N seconds from now.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let remaining = client.not_after_unix - now;
    assert!((remaining - 30 * 86_400).abs() < 120, "remaining {remaining}s");
    let checkend = |secs: i64| {
        run(dir.path(), "openssl", &["x509", "-in", "client.pem", "-noout", "-checkend", &secs.to_string()])
            .status
            .success()
    };
    assert!(checkend(remaining - 60));
    assert!(!checkend(remaining + 60));

    // Each key belongs to its certificate.
    for name in ["server", "client"] {
        let from_key = run(dir.path(), "openssl", &["pkey", "-in", &format!("{name}.key"), "-pubout"]);
        let from_cert = run(dir.path(), "openssl", &["x509", "-in", &format!("{name}.pem"), "-noout", "-pubkey"]);
        assert!(from_key.status.success(), "{}", combined(&from_key));
        assert_eq!(from_key.stdout, from_cert.stdout, "{name} key/cert mismatch");
    }
}
