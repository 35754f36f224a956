//! Site-to-site: customer gateways, IPsec connections, routes, certificate bindings, IPsec servers.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{resource, Extensions, Index, Scope};
use crate::crypto::{IkeConfig, IpsecConfig};
use crate::ids::Kind;
use crate::secret::Secret;

/// How a customer gateway identifies itself in IKE (and, for an address, where tunnels go).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum PeerIdentity {
    Ip(Ipv4Addr),
    /// A peer without a fixed address; it must initiate.
    Fqdn(String),
}

impl PeerIdentity {
    pub fn address(&self) -> Option<Ipv4Addr> {
        match self {
            PeerIdentity::Ip(a) => Some(*a),
            PeerIdentity::Fqdn(_) => None,
        }
    }

    /// The unique key of this identity within a scope.
    pub fn key(&self) -> String {
        match self {
            PeerIdentity::Ip(a) => format!("ip:{a}"),
            PeerIdentity::Fqdn(n) => format!("fqdn:{}", n.to_ascii_lowercase()),
        }
    }
}

/// An X.509 certificate as imported, with what the APIs show of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub pem: String,
    pub issuer: String,
    pub subject: String,
    /// Lower-case hex.
    pub serial: String,
    /// Unix milliseconds.
    pub not_after: i64,
    pub signature_algorithm: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerGateway {
    pub id: String,
    pub scope: Scope,
    pub name: String,
    pub description: String,
    pub identity: PeerIdentity,
    pub asn: Option<u64>,
    pub bgp_auth_key: Option<Secret>,
    pub ca_certificate: Option<CertificateInfo>,
    pub created_at: i64,
    pub updated_at: i64,
    pub ext: Extensions,
}

impl CustomerGateway {
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.identity.address()
    }

    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![(Index::PeerIdentity, self.identity.key())]
    }
}

/// What the data plane last observed of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TunnelState {
    IkeSaNotEstablished,
    IkeSaEstablished,
    IpsecSaNotEstablished,
    IpsecSaEstablished,
}

/// How a connection decides what enters the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMode {
    /// Traffic selectors from local/remote subnets (or policy rules).
    Policy,
    /// Route-based with static routes to the remote subnets.
    Static,
    /// Route-based, routes learned over BGP.
    Bgp,
    /// Policy-based with the gateway's policy template.
    PolicyTemplate,
}

/// One selector pair of a policy-mode connection: traffic from `source` to any of `destinations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    pub index: u32,
    pub source: Ipv4Net,
    pub destinations: Vec<Ipv4Net>,
}

/// The role of a connection in an active-standby pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaRole {
    Master,
    Slave,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enable: bool,
    pub dip: Option<Ipv4Addr>,
    pub sip: Option<Ipv4Addr>,
    pub interval_s: u32,
    pub retry: u32,
}

/// The /30 a route-based or BGP tunnel numbers its two ends from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelInside {
    pub cidr: Ipv4Net,
    /// This gateway's end; the peer has the other host of the /30.
    pub local: Option<Ipv4Addr>,
}

impl TunnelInside {
    pub fn peer(&self) -> Option<Ipv4Addr> {
        let local = self.local?;
        self.cidr.hosts().find(|h| *h != local)
    }
}

/// A BGP session's state: RFC 4271's finite-state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BgpSessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSession {
    pub state: BgpSessionState,
    /// When the session entered `state` (as first observed), unix ms.
    pub since_ms: i64,
    /// Routes accepted from the peer.
    pub received_routes: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpConfig {
    pub enable: bool,
    pub local_asn: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VpnConnection {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub customer_gateway_id: String,
    pub name: String,
    pub description: String,
    /// Which of the gateway's public addresses the tunnel terminates on.
    pub public_ip_index: u8,
    pub mode: ConnectionMode,
    pub local_subnets: Vec<Ipv4Net>,
    pub remote_subnets: Vec<Ipv4Net>,
    /// Policy mode with explicit selector pairs (empty: local × remote subnets).
    pub policy_rules: Vec<PolicyRule>,
    pub inside: Option<TunnelInside>,
    pub bgp: BgpConfig,
    pub psk: Secret,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub health_check: HealthCheck,
    /// Negotiate at once and keep trying, rather than wait for traffic or the peer.
    pub initiate: bool,
    pub dpd: bool,
    pub nat_traversal: bool,
    /// Routes to the remote subnets are set up without a separate route entry.
    pub auto_route: bool,
    pub ha_role: Option<HaRole>,
    /// The peer's CA (national-standard gateways).
    pub remote_ca_certificate: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub state: TunnelState,
    /// Last health-check verdict from the data plane (`None` until probed).
    pub health_ok: Option<bool>,
    /// The tunnel's BGP session as the data plane last saw it (`None`: not a BGP tunnel, or not seen yet).
    #[serde(default)]
    pub bgp_session: Option<BgpSession>,
    /// A dual-tunnel connection's first tunnel's own id (`None`: a single-tunnel connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_id: Option<String>,
    /// A dual-tunnel connection's second tunnel (Alibaba's `TunnelOptionsSpecification`). The fields above describe
    /// the first: peer, address, keys, algorithms, BGP, role and state are per tunnel; subnets, routes, health check
    /// and initiation belong to the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_tunnel: Option<Box<Tunnel>>,
    pub ext: Extensions,
}

/// One tunnel of a dual-tunnel connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tunnel {
    pub id: String,
    pub customer_gateway_id: String,
    /// Which of the gateway's public addresses the tunnel terminates on.
    pub public_ip_index: u8,
    pub role: HaRole,
    pub psk: Secret,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub dpd: bool,
    pub nat_traversal: bool,
    pub bgp: BgpConfig,
    pub inside: Option<TunnelInside>,
    pub remote_ca_certificate: String,
    pub state: TunnelState,
    pub bgp_session: Option<BgpSession>,
}

impl VpnConnection {
    fn index_keys(&self) -> Vec<(Index, String)> {
        let mut keys = vec![(Index::CustomerGateway, self.customer_gateway_id.clone())];
        if let Some(t) = self.second_tunnel.as_ref().filter(|t| t.customer_gateway_id != self.customer_gateway_id) {
            keys.push((Index::CustomerGateway, t.customer_gateway_id.clone()));
        }
        keys
    }

    /// The connection's tunnels, each with the id the data plane knows it by: the connection's own id for the first
    /// (routes, observations and learned routes name it), the tunnel's id for a second.
    pub fn tunnels(&self) -> Vec<(String, Tunnel)> {
        let first = Tunnel {
            id: self.tunnel_id.clone().unwrap_or_else(|| self.id.clone()),
            customer_gateway_id: self.customer_gateway_id.clone(),
            public_ip_index: self.public_ip_index,
            role: self.ha_role.unwrap_or(HaRole::Master),
            psk: self.psk.clone(),
            ike: self.ike.clone(),
            ipsec: self.ipsec.clone(),
            dpd: self.dpd,
            nat_traversal: self.nat_traversal,
            bgp: self.bgp.clone(),
            inside: self.inside.clone(),
            remote_ca_certificate: self.remote_ca_certificate.clone(),
            state: self.state,
            bgp_session: self.bgp_session.clone(),
        };
        let mut out = vec![(self.id.clone(), first)];
        if let Some(t) = &self.second_tunnel {
            out.push((t.id.clone(), (**t).clone()));
        }
        out
    }

    /// Takes `t` as the first tunnel (the connection's own fields; the inverse of [`VpnConnection::tunnels`]'s first).
    pub fn set_first_tunnel(&mut self, t: Tunnel) {
        self.customer_gateway_id = t.customer_gateway_id;
        self.public_ip_index = t.public_ip_index;
        self.ha_role = Some(t.role);
        self.psk = t.psk;
        self.ike = t.ike;
        self.ipsec = t.ipsec;
        self.dpd = t.dpd;
        self.nat_traversal = t.nat_traversal;
        self.bgp = t.bgp;
        self.inside = t.inside;
        self.remote_ca_certificate = t.remote_ca_certificate;
        self.state = t.state;
        self.bgp_session = t.bgp_session;
    }

    /// Whether any of its tunnels runs BGP.
    pub fn runs_bgp(&self) -> bool {
        self.bgp.enable || self.second_tunnel.as_ref().is_some_and(|t| t.bgp.enable)
    }

    /// The best state of any of its tunnels: a dual-tunnel connection carries traffic while either does.
    pub fn best_state(&self) -> TunnelState {
        self.second_tunnel.as_ref().map_or(self.state, |t| self.state.max(t.state))
    }
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteOrigin {
    /// Created through the API.
    Custom,
    /// Added by the system (learned over BGP, derived from a connection).
    System,
}

/// A destination route (`source` = None) or a policy route (source + destination) towards a connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteEntry {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub source: Option<Ipv4Net>,
    pub dest: Ipv4Net,
    /// The connection the route points at.
    pub next_hop: String,
    /// 100: active, 0: standby.
    pub weight: u32,
    pub priority: Option<u32>,
    pub published: bool,
    pub description: String,
    pub origin: RouteOrigin,
    /// The AS path of a route learned over BGP, nearest AS first (empty for others).
    #[serde(default)]
    pub as_path: Vec<u32>,
    pub created_at: i64,
}

impl RouteEntry {
    pub fn is_policy(&self) -> bool {
        self.source.is_some()
    }

    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![(Index::NextHop, self.next_hop.clone()), (Index::RouteDest, self.dest.to_string())]
    }
}

/// Signature or encryption certificate of a national-standard gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateUse {
    Signature,
    Encryption,
}

impl CertificateUse {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateUse::Signature => "signature",
            CertificateUse::Encryption => "encryption",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateAssociation {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub certificate_id: String,
    pub usage: CertificateUse,
    pub created_at: i64,
}

impl CertificateAssociation {
    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![
            (Index::CertificateId, self.certificate_id.clone()),
            (Index::CertificateType, self.usage.as_str().to_string()),
        ]
    }
}

/// A client-to-site IPsec (IKEv2/IKEv1, PSK) server on a gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpsecServer {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub name: String,
    pub local_subnets: Vec<Ipv4Net>,
    pub client_ip_pool: Ipv4Net,
    pub initiate: bool,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub psk_enabled: bool,
    pub psk: Secret,
    pub created_at: i64,
    pub updated_at: i64,
    pub online_clients: u32,
}

impl IpsecServer {
    fn index_keys(&self) -> Vec<(Index, String)> {
        Vec::new()
    }
}

/// A probe of a connection's path to the peer gateway (gateway address to peer address, ICMP).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionMonitor {
    pub id: String,
    pub scope: Scope,
    pub connection_id: String,
    pub gateway_id: String,
    pub source_ip: Ipv4Addr,
    pub destination_ip: Option<Ipv4Addr>,
    pub created_at: i64,
}

impl ConnectionMonitor {
    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![(Index::GatewayId, self.gateway_id.clone())]
    }
}

/// A national-standard gateway's own certificates: signing and encryption certificate with their keys, and the CA
/// chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayCertificate {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub name: String,
    pub certificate: CertificateInfo,
    pub private_key: Secret,
    pub chain: CertificateInfo,
    pub enc_certificate: CertificateInfo,
    pub enc_private_key: Secret,
    pub created_at: i64,
    pub updated_at: i64,
}

impl GatewayCertificate {
    fn index_keys(&self) -> Vec<(Index, String)> {
        Vec::new()
    }
}

/// What a long-running operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Upgrade,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    /// Done, waiting for the user to confirm (an upgrade).
    AwaitingConfirmation,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStep {
    pub id: String,
    pub name: String,
    pub status: JobStatus,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// The record of a long-running operation on a resource (a gateway upgrade).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub scope: Scope,
    pub resource_id: String,
    pub kind: JobKind,
    pub status: JobStatus,
    pub steps: Vec<JobStep>,
    pub error: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl Job {
    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![(Index::GatewayId, self.resource_id.clone())]
    }
}

resource!(CustomerGateway, Kind::CustomerGateway, name = name);
resource!(ConnectionMonitor, Kind::ConnectionMonitor, parent = connection_id);
resource!(GatewayCertificate, Kind::GatewayCertificate, parent = gateway_id, name = name);
resource!(Job, Kind::Job);
resource!(VpnConnection, Kind::VpnConnection, parent = gateway_id, name = name);
resource!(RouteEntry, Kind::RouteEntry, parent = gateway_id);
resource!(CertificateAssociation, Kind::CertificateAssociation, parent = gateway_id);
resource!(IpsecServer, Kind::IpsecServer, parent = gateway_id, name = name);
