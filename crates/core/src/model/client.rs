//! Client-to-site: SSL-VPN servers with their CA, client certificates, users, user groups, access policies and
//! imported client CAs.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{resource, CertificateInfo, Extensions, Index, Scope};
use crate::crypto::{SslCipher, Transport};
use crate::ids::Kind;
use crate::secret::Secret;

/// How SSL-VPN clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A client certificate issued by the server's CA or an imported client CA.
    Certificate,
    /// A user name and password stored by the service (hashed).
    Password,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SslVpnServer {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub name: String,
    pub client_ip_pool: Ipv4Net,
    pub local_subnets: Vec<Ipv4Net>,
    pub transport: Transport,
    pub cipher: SslCipher,
    pub port: u16,
    pub compress: bool,
    pub client_auth: ClientAuth,
    pub dns_servers: Vec<Ipv4Addr>,
    pub ca_cert_pem: String,
    pub ca_key_pem: Secret,
    pub server_cert_pem: String,
    pub server_key_pem: Secret,
    /// Serials of revoked client certificates; the CRL is derived from them.
    pub revoked_serials: Vec<String>,
    /// Ids (the common names) of the same certificates: the data plane ends their live sessions, which a CRL alone
    /// would only refuse at the next handshake.
    #[serde(default)]
    pub revoked_client_ids: Vec<String>,
    pub crl_number: u64,
    /// Client sessions the data plane last reported.
    pub connections: u32,
    /// The gateway generation that first realises this server (it is being created until then).
    pub since_generation: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub ext: Extensions,
}

impl SslVpnServer {
    fn index_keys(&self) -> Vec<(Index, String)> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SslVpnClientCert {
    pub id: String,
    pub scope: Scope,
    pub server_id: String,
    pub gateway_id: String,
    pub name: String,
    pub cert_pem: String,
    pub key_pem: Secret,
    pub serial_hex: String,
    /// Unix milliseconds.
    pub not_after: i64,
    pub created_at: i64,
}

impl SslVpnClientCert {
    fn index_keys(&self) -> Vec<(Index, String)> {
        Vec::new()
    }
}

/// A user of a password-authenticated client-to-site server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VpnUser {
    pub id: String,
    pub scope: Scope,
    pub server_id: String,
    pub name: String,
    pub description: String,
    /// PHC string (argon2id); the password itself is never stored.
    pub password_hash: Secret,
    /// Hashes of the previous passwords, newest first (a new password may not repeat them).
    pub password_history: Vec<Secret>,
    pub group_id: Option<String>,
    /// The address the user asked for, if any.
    pub static_ip: Option<Ipv4Addr>,
    /// The tunnel address this user always gets: `static_ip`, or one assigned from the client pool.
    pub address: Ipv4Addr,
    pub created_at: i64,
    pub updated_at: i64,
}

impl VpnUser {
    fn index_keys(&self) -> Vec<(Index, String)> {
        self.group_id.iter().map(|g| (Index::UserGroup, g.clone())).collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserGroup {
    pub id: String,
    pub scope: Scope,
    pub server_id: String,
    pub name: String,
    pub description: String,
    /// The group every password server starts with; it cannot be renamed or deleted.
    pub builtin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserGroup {
    fn index_keys(&self) -> Vec<(Index, String)> {
        Vec::new()
    }
}

/// What the users of one group may reach through the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessPolicy {
    pub id: String,
    pub scope: Scope,
    pub server_id: String,
    pub group_id: String,
    pub name: String,
    pub description: String,
    pub dest_cidrs: Vec<Ipv4Net>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AccessPolicy {
    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![(Index::UserGroup, self.group_id.clone())]
    }
}

/// A CA whose client certificates a certificate-authenticated server accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientCa {
    pub id: String,
    pub scope: Scope,
    pub server_id: String,
    pub name: String,
    pub certificate: CertificateInfo,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ClientCa {
    fn index_keys(&self) -> Vec<(Index, String)> {
        Vec::new()
    }
}

resource!(SslVpnServer, Kind::SslVpnServer, parent = gateway_id, name = name);
resource!(SslVpnClientCert, Kind::SslVpnClientCert, parent = server_id, name = name);
resource!(VpnUser, Kind::VpnUser, parent = server_id, name = name);
resource!(UserGroup, Kind::UserGroup, parent = server_id, name = name);
resource!(AccessPolicy, Kind::AccessPolicy, parent = server_id, name = name);
resource!(ClientCa, Kind::ClientCa, parent = server_id, name = name);
