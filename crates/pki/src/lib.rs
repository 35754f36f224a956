//! openvgw-pki: per-server certificate authorities for the SSL-VPN data plane.
//!
//! Every SSL-VPN server owns a CA (ECDSA P-256). The CA signs one server
//! certificate and any number of client certificates; deleting a client
//! certificate revokes it through a CRL that OpenVPN reads with `crl-verify`.
//! This crate also renders the OpenVPN 2.6 directives that both sides need so
//! that the client profile handed out by `DescribeSslVpnClientCert` matches
//! the server it connects to.
//!
//! Private keys only ever leave this crate inside the returned structs; their
//! `Debug` output is redacted so they cannot end up in logs by accident.

mod inspect;
mod ovpn;

use std::fmt;
use std::net::IpAddr;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub use inspect::{inspect, sm2_key_matches, InspectError, Inspected, KeyAlgorithm};
pub use ovpn::{
    cipher_name, openvpn_client_config, openvpn_server_cipher_directives, OpenVpnClientProfile, SUPPORTED_CIPHERS,
};

/// CA and server certificates live about ten years: the SSL-VPN server has no
/// renewal workflow in the Alibaba/Huawei APIs.
const LONG_VALIDITY: Duration = Duration::days(3650);
/// Backdating `notBefore`/`thisUpdate` tolerates small clock differences
/// between this host and whoever validates the certificate.
const CLOCK_SKEW: Duration = Duration::minutes(5);
/// RFC 5280 caps serial numbers at 20 octets.
const MAX_SERIAL_LEN: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    #[error("CA private key does not match the CA certificate")]
    KeyMismatch,
    #[error("invalid serial number {0:?}: expected 1-20 bytes of hex")]
    InvalidSerial(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// A certificate with its private key (both PEM). The key is PKCS#8.
#[derive(Clone, PartialEq, Eq)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
    /// Lowercase hex, no separators, exactly as the certificate encodes it.
    pub serial_hex: String,
    pub not_after_unix: i64,
}

impl fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("serial_hex", &self.serial_hex)
            .field("not_after_unix", &self.not_after_unix)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A CA certificate and its private key (both PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct CaMaterial {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for CaMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaMaterial").field("key_pem", &"<redacted>").finish_non_exhaustive()
    }
}

/// New self-signed CA: ECDSA P-256, ~10 years, `basicConstraints CA:TRUE,
/// pathlen:0`, keyUsage keyCertSign + cRLSign (+ digitalSignature).
pub fn new_ca(common_name: &str) -> Result<CaMaterial, PkiError> {
    let now = now_utc();
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name)?;
    params.serial_number = Some(random_serial().0);
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + LONG_VALIDITY;
    // The CA only ever signs leaf certificates.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key)?;
    Ok(CaMaterial { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Server certificate signed by `ca`: EKU serverAuth (what OpenVPN's
/// `remote-cert-tls server` checks), SAN = `ip_sans` plus the CN when it is a
/// DNS name. Valid ~10 years.
pub fn issue_server(ca: &CaMaterial, common_name: &str, ip_sans: &[IpAddr]) -> Result<CertifiedKey, PkiError> {
    let mut sans: Vec<SanType> = ip_sans.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    if looks_like_dns_name(common_name) {
        if let Ok(name) = common_name.to_string().try_into() {
            sans.push(SanType::DnsName(name));
        }
    }
    let now = now_utc();
    issue_leaf(ca, common_name, ExtendedKeyUsagePurpose::ServerAuth, sans, now + LONG_VALIDITY)
}

/// Client certificate signed by `ca`: EKU clientAuth (checked by the server's
/// `remote-cert-tls client`), random positive 16-byte serial, `valid_days`
/// of validity.
pub fn issue_client(ca: &CaMaterial, common_name: &str, valid_days: u32) -> Result<CertifiedKey, PkiError> {
    if valid_days == 0 {
        return Err(PkiError::InvalidArgument("valid_days must be at least 1".into()));
    }
    let not_after = now_utc()
        .checked_add(Duration::days(i64::from(valid_days)))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| PkiError::InvalidArgument(format!("valid_days {valid_days} too large")))?;
    issue_leaf(ca, common_name, ExtendedKeyUsagePurpose::ClientAuth, Vec::new(), not_after)
}

/// CRL (PEM) signed by `ca` listing `revoked_serials_hex` (as returned in
/// [`CertifiedKey::serial_hex`]; case and `:` separators are ignored).
/// `nextUpdate` is ~10 years ahead because OpenVPN rejects every client once
/// its `crl-verify` file has expired, and we regenerate the CRL on every
/// change anyway. An empty list yields a valid, empty CRL.
pub fn crl(ca: &CaMaterial, revoked_serials_hex: &[String], crl_number: u64) -> Result<String, PkiError> {
    let issuer = LoadedCa::load(ca)?;
    let now = now_utc();
    let revoked_certs = revoked_serials_hex
        .iter()
        .map(|hex| {
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&parse_serial_hex(hex)?),
                // The API has no revocation timestamp to carry over; "now"
                // only matters for auditing, never for the revocation itself.
                revocation_time: now - CLOCK_SKEW,
                reason_code: None,
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    let params = CertificateRevocationListParams {
        this_update: now - CLOCK_SKEW,
        next_update: now + LONG_VALIDITY,
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        // Must equal the CA's subjectKeyIdentifier so the CRL's
        // authorityKeyIdentifier points at this CA.
        key_identifier_method: issuer.cert.params().key_identifier_method.clone(),
    };
    Ok(params.signed_by(&issuer.cert, &issuer.key)?.pem()?)
}

/// `notAfter` of a PEM certificate, in unix seconds.
pub fn not_after(cert_pem: &str) -> Result<i64, PkiError> {
    Ok(parse_cert(cert_pem)?.not_after.unix_timestamp())
}

/// Parsed CA, ready to sign. rcgen needs an issuer `Certificate`, which it
/// can only build by signing; re-self-signing yields the same subject and key
/// identifier as the stored PEM, and only those end up in what we issue.
struct LoadedCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl LoadedCa {
    fn load(ca: &CaMaterial) -> Result<Self, PkiError> {
        let params = parse_cert(&ca.cert_pem)?;
        if !matches!(params.is_ca, IsCa::Ca(_)) {
            return Err(PkiError::InvalidCertificate("issuer certificate is not a CA".into()));
        }
        // Don't echo rcgen's error: it cannot leak key bytes today, but the
        // input here is a private key and this error may be logged.
        let key = KeyPair::from_pem(&ca.key_pem)
            .map_err(|_| PkiError::InvalidArgument("CA private key is not a valid PEM key".into()))?;
        // A mismatched pair would silently produce certificates that never
        // verify; CAs from `new_ca` carry a SHA-256 based key identifier that
        // lets us detect it.
        if let KeyIdMethod::PreSpecified(ski) = &params.key_identifier_method {
            let probe = CertificateParams::default().self_signed(&key)?;
            if probe.key_identifier() != *ski {
                return Err(PkiError::KeyMismatch);
            }
        }
        let cert = params.self_signed(&key)?;
        Ok(Self { cert, key })
    }
}

fn issue_leaf(
    ca: &CaMaterial,
    common_name: &str,
    eku: ExtendedKeyUsagePurpose,
    sans: Vec<SanType>,
    not_after: OffsetDateTime,
) -> Result<CertifiedKey, PkiError> {
    let key = KeyPair::generate()?;
    let (cert_pem, serial_hex) = sign_leaf(ca, &key, common_name, eku, sans, not_after)?;
    Ok(CertifiedKey { cert_pem, key_pem: key.serialize_pem(), serial_hex, not_after_unix: not_after.unix_timestamp() })
}

/// A new key (ECDSA P-256, PKCS#8 PEM) and a certificate signing request for it (PEM): what a host that must keep
/// its key to itself (an `openvgw agent`) sends to be certified.
pub fn new_key_and_request(common_name: &str) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name)?;
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// A client certificate for the key of `csr_pem`, signed by `ca`. Only the request's public key is taken: the
/// subject (`common_name`), usages and validity are the signer's, whatever the request asks for.
pub fn sign_client_request(
    ca: &CaMaterial,
    csr_pem: &str,
    common_name: &str,
    valid_days: u32,
) -> Result<(String, String, i64), PkiError> {
    let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| PkiError::InvalidArgument(format!("not a certificate signing request: {e}")))?;
    let not_after = now_utc()
        .checked_add(Duration::days(i64::from(valid_days.max(1))))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| PkiError::InvalidArgument(format!("valid_days {valid_days} too large")))?;
    let (cert_pem, serial_hex) =
        sign_leaf(ca, &csr.public_key, common_name, ExtendedKeyUsagePurpose::ClientAuth, Vec::new(), not_after)?;
    Ok((cert_pem, serial_hex, not_after.unix_timestamp()))
}

/// The subject's common name and the serial (lowercase hex) of a DER certificate: how a TLS peer is named.
pub fn subject_of_der(der: &[u8]) -> Result<(String, String), PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or_else(|| PkiError::InvalidCertificate("no common name".into()))?;
    Ok((cn.to_string(), to_hex(cert.raw_serial())))
}

fn sign_leaf(
    ca: &CaMaterial,
    key: &impl rcgen::PublicKeyData,
    common_name: &str,
    eku: ExtendedKeyUsagePurpose,
    sans: Vec<SanType>,
    not_after: OffsetDateTime,
) -> Result<(String, String), PkiError> {
    let issuer = LoadedCa::load(ca)?;
    let (serial, serial_hex) = random_serial();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name)?;
    params.serial_number = Some(serial);
    params.subject_alt_names = sans;
    params.not_before = now_utc() - CLOCK_SKEW;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    // OpenVPN's remote-cert-tls requires a keyUsage extension to be present;
    // keyAgreement is the ECDSA counterpart of RSA's keyEncipherment.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyAgreement];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(key, &issuer.cert, &issuer.key)?;
    Ok((cert.pem(), serial_hex))
}

fn parse_cert(cert_pem: &str) -> Result<CertificateParams, PkiError> {
    // rcgen's x509-parser bridge is named for CA certificates but parses any
    // certificate whose extensions it understands (all of ours).
    CertificateParams::from_ca_cert_pem(cert_pem).map_err(|e| PkiError::InvalidCertificate(e.to_string()))
}

fn dn(common_name: &str) -> Result<DistinguishedName, PkiError> {
    if common_name.trim().is_empty() || common_name.chars().any(char::is_control) {
        return Err(PkiError::InvalidArgument(format!("invalid common name {common_name:?}")));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    Ok(dn)
}

/// Certificates carry whole seconds; truncating here keeps `not_after_unix`
/// identical to what is encoded.
fn now_utc() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// 16 random bytes, top bit clear (positive INTEGER) and first byte non-zero
/// (so DER keeps all 16 bytes and the hex round-trips unchanged).
fn random_serial() -> (SerialNumber, String) {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f).max(1);
    (SerialNumber::from_slice(&bytes), to_hex(&bytes))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_serial_hex(input: &str) -> Result<Vec<u8>, PkiError> {
    let invalid = || PkiError::InvalidSerial(input.to_string());
    let mut digits: Vec<u8> = input
        .trim()
        .bytes()
        .filter(|b| *b != b':')
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;
    if digits.is_empty() {
        return Err(invalid());
    }
    // Left-pad odd-length input ("abc" == 0x0abc).
    if digits.len() % 2 == 1 {
        digits.insert(0, 0);
    }
    let bytes: Vec<u8> = digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect();
    // INTEGER encoding drops leading zeros; compare lengths on the real value.
    let significant = bytes.iter().skip_while(|b| **b == 0).count();
    if significant > MAX_SERIAL_LEN {
        return Err(invalid());
    }
    Ok(bytes)
}

fn looks_like_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests;
