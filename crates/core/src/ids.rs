//! Resource kinds, the resource tree, and id generation in the style each dialect issues.

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Tenant,
    VpnGateway,
    CustomerGateway,
    VpnConnection,
    RouteEntry,
    SslVpnServer,
    SslVpnClientCert,
    IpsecServer,
    CertificateAssociation,
    Vpc,
    VpnUser,
    UserGroup,
    AccessPolicy,
    ClientCa,
    ConnectionMonitor,
    GatewayCertificate,
    Job,
    /// A live client session of an SSL-VPN server (never stored).
    ClientSession,
    /// A tunnel of a dual-tunnel connection (stored inside its connection).
    Tunnel,
}

/// Every kind stored as a resource (all but [`Kind::Tenant`]).
pub const RESOURCE_KINDS: &[Kind] = &[
    Kind::VpnGateway,
    Kind::CustomerGateway,
    Kind::VpnConnection,
    Kind::RouteEntry,
    Kind::SslVpnServer,
    Kind::SslVpnClientCert,
    Kind::IpsecServer,
    Kind::CertificateAssociation,
    Kind::Vpc,
    Kind::VpnUser,
    Kind::UserGroup,
    Kind::AccessPolicy,
    Kind::ClientCa,
    Kind::ConnectionMonitor,
    Kind::GatewayCertificate,
    Kind::Job,
];

/// How a dialect's resource ids look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdStyle {
    /// `vpn-` + 24 lower-case base-36 characters (Alibaba: `vpn-bp1q8bgx4xnkm2ogj…`).
    Prefixed,
    /// A random (v4) UUID in lower case (Huawei).
    Uuid,
}

impl IdStyle {
    /// The style an existing id was made in: resources the system adds to a parent get ids like their parent's.
    pub fn of(id: &str) -> IdStyle {
        let uuid = id.len() == 36
            && id
                .char_indices()
                .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
        if uuid {
            IdStyle::Uuid
        } else {
            IdStyle::Prefixed
        }
    }
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
            Kind::SslVpnServer => "ssl_vpn_server",
            Kind::SslVpnClientCert => "ssl_vpn_client_cert",
            Kind::IpsecServer => "ipsec_server",
            Kind::CertificateAssociation => "certificate_association",
            Kind::Vpc => "vpc",
            Kind::VpnUser => "vpn_user",
            Kind::UserGroup => "user_group",
            Kind::AccessPolicy => "access_policy",
            Kind::ClientCa => "client_ca",
            Kind::ConnectionMonitor => "connection_monitor",
            Kind::GatewayCertificate => "gateway_certificate",
            Kind::Job => "job",
            Kind::ClientSession => "client_session",
            Kind::Tunnel => "tunnel",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        RESOURCE_KINDS.iter().copied().chain([Kind::Tenant]).find(|k| k.as_str() == s)
    }

    /// Kinds whose resources name a resource of this kind as their parent and go when it goes. The one definition of
    /// the resource tree: cascading deletes, the reconciler and metrics all walk it.
    pub fn children(self) -> &'static [Kind] {
        match self {
            Kind::VpnGateway => &[
                Kind::VpnConnection,
                Kind::RouteEntry,
                Kind::SslVpnServer,
                Kind::IpsecServer,
                Kind::CertificateAssociation,
                Kind::GatewayCertificate,
            ],
            Kind::VpnConnection => &[Kind::ConnectionMonitor],
            Kind::SslVpnServer => {
                &[Kind::SslVpnClientCert, Kind::VpnUser, Kind::UserGroup, Kind::AccessPolicy, Kind::ClientCa]
            }
            _ => &[],
        }
    }

    /// Resources of another kind that refer to one of this kind by a secondary key and go with it (routes whose
    /// next hop is a deleted connection, policies of a deleted user group).
    pub fn dependents(self) -> &'static [(Kind, crate::model::Index)] {
        use crate::model::Index;
        match self {
            Kind::VpnConnection => &[(Kind::RouteEntry, Index::NextHop)],
            Kind::UserGroup => &[(Kind::AccessPolicy, Index::UserGroup)],
            _ => &[],
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Tenant => "tnt",
            Kind::VpnGateway => "vpn",
            Kind::CustomerGateway => "cgw",
            Kind::VpnConnection => "vco",
            Kind::RouteEntry => "vre",
            Kind::SslVpnServer => "vss",
            Kind::SslVpnClientCert => "vsc",
            Kind::IpsecServer => "iss",
            Kind::CertificateAssociation => "vca",
            Kind::Vpc => "vpcrec",
            Kind::VpnUser => "vpu",
            Kind::UserGroup => "vug",
            Kind::AccessPolicy => "vap",
            Kind::ClientCa => "vcc",
            Kind::ConnectionMonitor => "vcm",
            Kind::GatewayCertificate => "vgc",
            Kind::Job => "job",
            Kind::ClientSession => "session",
            Kind::Tunnel => "tun",
        }
    }

    /// A fresh id in `style`.
    pub fn new_id(self, style: IdStyle) -> String {
        match style {
            IdStyle::Prefixed => format!("{}-{}", self.prefix(), random_token(24)),
            IdStyle::Uuid => uuid_v4(),
        }
    }
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Random lower-case alphanumeric token.
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

/// A generated pre-shared key: [`random_secret`] that never starts with `0x` or `0s` in any case. strongSwan
/// (swanctl.conf, ipsec.secrets) and libreswan read a secret with such a prefix as hex or base64 even when quoted, so
/// a customer who copies such a key into their configuration would hold a different key (about one generated key in
/// a thousand would).
pub fn random_psk(len: usize) -> String {
    loop {
        let psk = random_secret(len);
        if !is_encoded_secret(&psk) {
            return psk;
        }
    }
}

/// Whether strongSwan/libreswan would decode `secret` (`0x…` hex, `0s…` base64) rather than take it as written.
pub fn is_encoded_secret(secret: &str) -> bool {
    let b = secret.as_bytes();
    b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'x' | b's')
}

/// 32 random lower-case hex digits.
pub fn random_hex(len: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| HEX[rng.gen_range(0..16)] as char).collect()
}

/// A random version-4 UUID, lower case with dashes.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::thread_rng().gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_psks_are_never_read_as_hex_or_base64_by_ipsec_daemons() {
        for encoded in ["0x1234", "0Xab", "0sQUJD", "0S"] {
            assert!(is_encoded_secret(encoded), "{encoded}");
        }
        for plain in ["", "0", "x0", "00x", "0a", "s3cret"] {
            assert!(!is_encoded_secret(plain), "{plain}");
        }
        // A prefix the generator would otherwise produce about once in a thousand keys; 2-character keys hit it
        // about once in 240, so this many would all but surely include one.
        for _ in 0..20_000 {
            let psk = random_psk(2);
            assert_eq!(psk.len(), 2);
            assert!(!is_encoded_secret(&psk), "{psk}");
        }
        assert_eq!(random_psk(16).len(), 16);
    }

    #[test]
    fn id_styles() {
        let p = Kind::VpnGateway.new_id(IdStyle::Prefixed);
        assert!(p.starts_with("vpn-") && p.len() == 28);
        let u = Kind::VpnGateway.new_id(IdStyle::Uuid);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn kinds_round_trip_and_the_tree_only_holds_resources() {
        for k in RESOURCE_KINDS {
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
            for c in k.children() {
                assert!(RESOURCE_KINDS.contains(c) && c != k);
            }
        }
    }
}
