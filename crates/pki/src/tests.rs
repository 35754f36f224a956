use super::*;

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn parsed(pem: &str) -> CertificateParams {
    parse_cert(pem).expect("certificate parses")
}

fn common_name(p: &CertificateParams) -> String {
    match p.distinguished_name.get(&DnType::CommonName) {
        Some(rcgen::DnValue::Utf8String(s)) => s.clone(),
        Some(rcgen::DnValue::PrintableString(s)) => s.as_str().to_string(),
        other => panic!("unexpected CN {other:?}"),
    }
}

fn serial_hex_of(p: &CertificateParams) -> String {
    to_hex(&p.serial_number.as_ref().expect("serial").to_bytes())
}

#[test]
fn ca_is_a_constrained_ca() {
    let ca = new_ca("vss-test CA").expect("ca");
    assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(ca.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let p = parsed(&ca.cert_pem);
    assert_eq!(common_name(&p), "vss-test CA");
    assert_eq!(p.is_ca, IsCa::Ca(BasicConstraints::Constrained(0)));
    assert!(p.key_usages.contains(&KeyUsagePurpose::KeyCertSign));
    assert!(p.key_usages.contains(&KeyUsagePurpose::CrlSign));
    let years = (p.not_after.unix_timestamp() - now_unix()) / 86_400 / 365;
    assert!((9..=10).contains(&years), "CA validity {years} years");
    assert!(p.not_before.unix_timestamp() <= now_unix());
}

#[test]
fn chain_server_and_client() {
    let ca = new_ca("chain CA").expect("ca");
    let ips: Vec<IpAddr> = vec!["203.0.113.7".parse().expect("ip"), "2001:db8::1".parse().expect("ip")];
    let server = issue_server(&ca, "vpn.example.com", &ips).expect("server");
    let sp = parsed(&server.cert_pem);
    assert_eq!(common_name(&sp), "vpn.example.com");
    assert_eq!(sp.extended_key_usages, vec![ExtendedKeyUsagePurpose::ServerAuth]);
    assert!(sp.key_usages.contains(&KeyUsagePurpose::DigitalSignature));
    assert_eq!(sp.is_ca, IsCa::ExplicitNoCa);
    for ip in &ips {
        assert!(sp.subject_alt_names.contains(&SanType::IpAddress(*ip)), "SAN {ip}");
    }
    assert!(sp.subject_alt_names.iter().any(|s| matches!(s, SanType::DnsName(n) if n.as_str() == "vpn.example.com")));
    assert_eq!(serial_hex_of(&sp), server.serial_hex);
    assert_eq!(not_after(&server.cert_pem).expect("not_after"), server.not_after_unix);

    let client = issue_client(&ca, "vsc-123", 365 * 3).expect("client");
    let cp = parsed(&client.cert_pem);
    assert_eq!(common_name(&cp), "vsc-123");
    assert_eq!(cp.extended_key_usages, vec![ExtendedKeyUsagePurpose::ClientAuth]);
    assert!(cp.key_usages.contains(&KeyUsagePurpose::DigitalSignature));
    assert!(cp.subject_alt_names.is_empty());
    assert_eq!(serial_hex_of(&cp), client.serial_hex);
    assert_eq!(client.serial_hex.len(), 32, "16-byte serial");
    assert!(u8::from_str_radix(&client.serial_hex[..2], 16).expect("hex") < 0x80, "positive");
    assert_ne!(client.serial_hex, server.serial_hex);

    let expected = now_unix() + 3 * 365 * 86_400;
    assert!((client.not_after_unix - expected).abs() < 120, "not_after {}", client.not_after_unix);
    assert_eq!(not_after(&client.cert_pem).expect("not_after"), client.not_after_unix);
    assert!(cp.not_before.unix_timestamp() <= now_unix());
}

#[test]
fn server_cn_that_is_not_a_hostname_gets_no_dns_san() {
    let ca = new_ca("CA").expect("ca");
    let server = issue_server(&ca, "vss server #1", &[]).expect("server");
    assert!(parsed(&server.cert_pem).subject_alt_names.is_empty());
}

#[test]
fn client_serials_are_random() {
    let ca = new_ca("CA").expect("ca");
    let a = issue_client(&ca, "a", 1).expect("a");
    let b = issue_client(&ca, "a", 1).expect("b");
    assert_ne!(a.serial_hex, b.serial_hex);
    assert_ne!(a.key_pem, b.key_pem);
}

#[test]
fn rejects_bad_input() {
    let ca = new_ca("CA").expect("ca");
    assert!(matches!(issue_client(&ca, "c", 0), Err(PkiError::InvalidArgument(_))));
    assert!(matches!(issue_client(&ca, "c", u32::MAX), Err(PkiError::InvalidArgument(_))));
    assert!(matches!(issue_client(&ca, "", 1), Err(PkiError::InvalidArgument(_))));
    assert!(matches!(new_ca("a\nb"), Err(PkiError::InvalidArgument(_))));
    assert!(matches!(not_after("garbage"), Err(PkiError::InvalidCertificate(_))));
    assert!(matches!(crl(&ca, &["xyz".to_string()], 1), Err(PkiError::InvalidSerial(_))));
    assert!(matches!(crl(&ca, &[String::new()], 1), Err(PkiError::InvalidSerial(_))));
    assert!(matches!(crl(&ca, &["ab".repeat(21)], 1), Err(PkiError::InvalidSerial(_))));
}

#[test]
fn leaf_cannot_act_as_ca() {
    let ca = new_ca("CA").expect("ca");
    let leaf = issue_client(&ca, "c", 1).expect("leaf");
    let fake = CaMaterial { cert_pem: leaf.cert_pem, key_pem: leaf.key_pem };
    assert!(matches!(issue_client(&fake, "x", 1), Err(PkiError::InvalidCertificate(_))));
}

#[test]
fn mismatched_ca_key_is_detected() {
    let a = new_ca("A").expect("a");
    let b = new_ca("B").expect("b");
    let mixed = CaMaterial { cert_pem: a.cert_pem, key_pem: b.key_pem };
    assert!(matches!(issue_client(&mixed, "x", 1), Err(PkiError::KeyMismatch)));
    assert!(matches!(crl(&mixed, &[], 1), Err(PkiError::KeyMismatch)));
}

#[test]
fn debug_output_redacts_private_keys() {
    let ca = new_ca("CA").expect("ca");
    let client = issue_client(&ca, "c", 1).expect("client");
    let body = |pem: &str| pem.lines().nth(1).expect("body line").to_string();
    let dbg = format!("{ca:?} {client:?}");
    assert!(!dbg.contains(&body(&ca.key_pem)), "{dbg}");
    assert!(!dbg.contains(&body(&client.key_pem)), "{dbg}");
    assert!(dbg.contains(&client.serial_hex));
}

#[test]
fn serial_hex_parsing() {
    assert_eq!(parse_serial_hex("0A:bc").expect("hex"), vec![0x0a, 0xbc]);
    assert_eq!(parse_serial_hex("abc").expect("hex"), vec![0x0a, 0xbc]);
    assert_eq!(parse_serial_hex(" 01 ").expect("hex"), vec![0x01]);
    // Leading zeros don't count towards the 20-octet limit.
    assert!(parse_serial_hex(&format!("00{}", "7f".repeat(20))).is_ok());
    assert!(parse_serial_hex("0x12").is_err());
}

#[test]
fn crl_is_pem_and_grows_with_revocations() {
    let ca = new_ca("CA").expect("ca");
    let empty = crl(&ca, &[], 1).expect("empty crl");
    assert!(empty.starts_with("-----BEGIN X509 CRL-----"), "{empty}");
    let c1 = issue_client(&ca, "c1", 30).expect("c1");
    let c2 = issue_client(&ca, "c2", 30).expect("c2");
    let two = crl(&ca, &[c1.serial_hex, c2.serial_hex.to_uppercase()], 2).expect("crl");
    assert!(two.len() > empty.len());
}

#[test]
fn sm2_keys_are_matched_to_their_certificate() {
    let cert = include_str!("../tests/fixtures/sm2-cert.pem");
    let key = include_str!("../tests/fixtures/sm2-key.pem");
    let other = include_str!("../tests/fixtures/sm2-other-key.pem");
    let i = inspect(cert).expect("an SM2 certificate parses");
    assert_eq!(i.key_algorithm, KeyAlgorithm::Sm2);
    assert_eq!(i.signature_algorithm, "SM3WITHSM2");
    assert_eq!(sm2_key_matches(cert, key), Ok(true));
    assert_eq!(sm2_key_matches(cert, other), Ok(false));
    assert!(sm2_key_matches(cert, "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----").is_err());
    let rsa = new_ca("rsa").expect("ca");
    assert!(sm2_key_matches(&rsa.cert_pem, key).is_err(), "not an SM2 certificate");
}
