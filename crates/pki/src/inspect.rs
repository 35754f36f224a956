//! Reading certificates that users import (client CAs, customer-gateway CAs, national-standard gateway
//! certificates): what the APIs report about them, and enough to decide whether to accept them.

use x509_parser::oid_registry::Oid;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

/// Why an imported certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Not a PEM `CERTIFICATE` block.
    #[error("not a PEM certificate")]
    Format,
    /// PEM, but the DER inside is not a certificate.
    #[error("the certificate cannot be decoded")]
    Content,
}

/// The public-key algorithm of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa {
        bits: usize,
    },
    Ec {
        curve: String,
    },
    /// SM2 (Chinese national standard).
    Sm2,
    Ed25519,
    Other(String),
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// `C=CN,ST=beijing,…,CN=…`, in certificate order.
    pub issuer: String,
    pub subject: String,
    /// The serial number in decimal (as the Huawei APIs show it) and in lower-case hex.
    pub serial_decimal: String,
    pub serial_hex: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// Java-style names: `SHA256WITHRSA`, `SHA256WITHECDSA`, `SM3WITHSM2`…
    pub signature_algorithm: String,
    pub key_algorithm: KeyAlgorithm,
    pub is_ca: bool,
    /// Hex SHA-256 of the DER (to spot duplicates).
    pub fingerprint: String,
    /// The certificate re-encoded as PEM (normalised).
    pub pem: String,
}

fn attr_name(oid: &Oid) -> String {
    match oid.to_id_string().as_str() {
        "2.5.4.6" => "C".into(),
        "2.5.4.8" => "ST".into(),
        "2.5.4.7" => "L".into(),
        "2.5.4.10" => "O".into(),
        "2.5.4.11" => "OU".into(),
        "2.5.4.3" => "CN".into(),
        "2.5.4.5" => "SERIALNUMBER".into(),
        "2.5.4.9" => "STREET".into(),
        "0.9.2342.19200300.100.1.25" => "DC".into(),
        "1.2.840.113549.1.9.1" => "EMAILADDRESS".into(),
        other => other.to_string(),
    }
}

fn dn(name: &X509Name) -> String {
    name.iter_attributes()
        .map(|a| format!("{}={}", attr_name(a.attr_type()), a.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.4" => "MD5WITHRSA",
        "1.2.840.113549.1.1.5" => "SHA1WITHRSA",
        "1.2.840.113549.1.1.11" => "SHA256WITHRSA",
        "1.2.840.113549.1.1.12" => "SHA384WITHRSA",
        "1.2.840.113549.1.1.13" => "SHA512WITHRSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.1" => "SHA1WITHECDSA",
        "1.2.840.10045.4.3.2" => "SHA256WITHECDSA",
        "1.2.840.10045.4.3.3" => "SHA384WITHECDSA",
        "1.2.840.10045.4.3.4" => "SHA512WITHECDSA",
        "1.2.156.10197.1.501" => "SM3WITHSM2",
        "1.3.101.112" => "ED25519",
        other => return other.to_string(),
    }
    .to_string()
}

fn key_algorithm(cert: &X509Certificate) -> KeyAlgorithm {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let param = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    match (alg.as_str(), param.as_deref()) {
        ("1.2.840.10045.2.1", Some("1.2.156.10197.1.301")) | ("1.2.156.10197.1.301", _) => KeyAlgorithm::Sm2,
        ("1.2.840.10045.2.1", Some(curve)) => KeyAlgorithm::Ec {
            curve: match curve {
                "1.2.840.10045.3.1.7" => "P-256".into(),
                "1.3.132.0.34" => "P-384".into(),
                "1.3.132.0.35" => "P-521".into(),
                other => other.into(),
            },
        },
        ("1.2.840.113549.1.1.1", _) => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyAlgorithm::Rsa { bits: rsa.key_size() },
            _ => KeyAlgorithm::Rsa { bits: 0 },
        },
        ("1.3.101.112", _) => KeyAlgorithm::Ed25519,
        (other, _) => KeyAlgorithm::Other(other.to_string()),
    }
}

/// Reads the first certificate of a PEM text.
pub fn inspect(pem_text: &str) -> Result<Inspected, InspectError> {
    let trimmed = pem_text.trim();
    if !trimmed.starts_with("-----BEGIN CERTIFICATE-----") {
        return Err(InspectError::Format);
    }
    let (_, pem) = parse_x509_pem(trimmed.as_bytes()).map_err(|_| InspectError::Format)?;
    if pem.label != "CERTIFICATE" {
        return Err(InspectError::Format);
    }
    let (_, cert) = X509Certificate::from_der(&pem.contents).map_err(|_| InspectError::Content)?;
    use sha2::Digest;
    let fingerprint = hex::encode(sha2::Sha256::digest(&pem.contents));
    let body = base64_lines(&pem.contents);
    Ok(Inspected {
        issuer: dn(cert.issuer()),
        subject: dn(cert.subject()),
        serial_decimal: cert.tbs_certificate.serial.to_str_radix(10),
        serial_hex: cert.tbs_certificate.serial.to_str_radix(16),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
        key_algorithm: key_algorithm(&cert),
        is_ca: cert.basic_constraints().ok().flatten().is_some_and(|b| b.value.ca),
        fingerprint,
        pem: format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"),
    })
}

/// Whether an SM2 private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY` PEM) belongs to the SM2 certificate:
/// its public point is the certificate's. `Err` when either cannot be read as SM2.
pub fn sm2_key_matches(cert_pem: &str, key_pem: &str) -> Result<bool, InspectError> {
    use sm2::elliptic_curve::sec1::ToEncodedPoint;
    use sm2::pkcs8::DecodePrivateKey;
    let (_, pem) = parse_x509_pem(cert_pem.trim().as_bytes()).map_err(|_| InspectError::Format)?;
    let (_, cert) = X509Certificate::from_der(&pem.contents).map_err(|_| InspectError::Content)?;
    if key_algorithm(&cert) != KeyAlgorithm::Sm2 {
        return Err(InspectError::Content);
    }
    let key = key_pem.trim();
    let secret = if key.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        sm2::SecretKey::from_sec1_pem(key).map_err(|_| InspectError::Content)?
    } else {
        sm2::SecretKey::from_pkcs8_pem(key).map_err(|_| InspectError::Content)?
    };
    let point = secret.public_key().to_encoded_point(false);
    Ok(point.as_bytes() == cert.public_key().subject_public_key.data.as_ref())
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 1);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ca_and_leaf() {
        let ca = crate::new_ca("inspect test CA").expect("ca");
        let i = inspect(&ca.cert_pem).expect("inspect");
        assert!(i.is_ca);
        assert!(i.subject.contains("CN=inspect test CA"), "{}", i.subject);
        assert_eq!(i.signature_algorithm, "SHA256WITHECDSA");
        assert_eq!(i.key_algorithm, KeyAlgorithm::Ec { curve: "P-256".into() });
        assert!(i.not_after > i.not_before);
        assert!(!i.serial_decimal.is_empty() && i.serial_decimal.bytes().all(|b| b.is_ascii_digit()));
        let leaf = crate::issue_client(&ca, "alice", 30).expect("leaf");
        let l = inspect(&leaf.cert_pem).expect("leaf");
        assert!(!l.is_ca);
        assert_eq!(l.issuer, i.subject);
        assert_eq!(l.serial_hex.trim_start_matches('0'), leaf.serial_hex.trim_start_matches('0'));
        assert_eq!(inspect(&l.pem).expect("round trip").fingerprint, l.fingerprint);
    }

    #[test]
    fn refusals() {
        assert_eq!(inspect("hello"), Err(InspectError::Format));
        assert_eq!(
            inspect("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(InspectError::Format)
        );
        assert_eq!(
            inspect("-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n"),
            Err(InspectError::Content)
        );
    }
}
