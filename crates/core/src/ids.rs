//! Resource kinds and their id formats (`vpn-…`, `cgw-…`, as the vendors spell them).

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Tenant,
    VpnGateway,
    CustomerGateway,
    VpnConnection,
    RouteEntry,
    PbrRouteEntry,
    SslVpnServer,
    SslVpnClientCert,
    IpsecServer,
    CertificateAssociation,
    Vpc,
}

impl Kind {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenant => "tenant",
            Kind::VpnGateway => "vpn_gateway",
            Kind::CustomerGateway => "customer_gateway",
            Kind::VpnConnection => "vpn_connection",
            Kind::RouteEntry => "route_entry",
            Kind::PbrRouteEntry => "pbr_route_entry",
            Kind::SslVpnServer => "ssl_vpn_server",
            Kind::SslVpnClientCert => "ssl_vpn_client_cert",
            Kind::IpsecServer => "ipsec_server",
            Kind::CertificateAssociation => "certificate_association",
            Kind::Vpc => "vpc",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Tenant => "tnt",
            Kind::VpnGateway => "vpn",
            Kind::CustomerGateway => "cgw",
            Kind::VpnConnection => "vco",
            Kind::RouteEntry => "vre",
            Kind::PbrRouteEntry => "vpr",
            Kind::SslVpnServer => "vss",
            Kind::SslVpnClientCert => "vsc",
            Kind::IpsecServer => "iss",
            Kind::CertificateAssociation => "vca",
            Kind::Vpc => "vpcrec",
        }
    }

    /// A fresh id: prefix, dash, 24 lower-case base-36 characters (Alibaba ids look like `vpn-bp1q8bgx4xnkm2ogj…`).
    pub fn new_id(self) -> String {
        format!("{}-{}", self.prefix(), random_token(24))
    }
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Random lower-case alphanumeric token (ids, generated PSKs use their own alphabet).
pub fn random_token(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// Random secret drawn from letters and digits (PSKs, access key secrets).
pub fn random_secret(len: usize) -> String {
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| SECRET[rng.gen_range(0..SECRET.len())] as char).collect()
}

/// A request id in Alibaba's upper-case UUID format.
pub fn request_id() -> String {
    let mut rng = rand::thread_rng();
    let b: [u8; 16] = rng.gen();
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
