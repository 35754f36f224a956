//! The neutral description of one gateway's desired data plane.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::crypto::{IkeConfig, IpsecConfig, SslCipher, Transport};
use openvgw_core::model::{HealthCheck, TunnelState};
pub use openvgw_core::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayIntent {
    pub gateway_id: String,
    pub tenant_id: String,
    /// The control plane's generation this intent was compiled from.
    pub generation: u64,
    /// The gateway's public addresses: one, or two for an HA pair. Tunnels name the one they use.
    pub public_ips: Vec<Ipv4Addr>,
    pub vpc_id: String,
    /// The VPC's address block, when openvgw knows it.
    pub vpc_cidr: Option<Ipv4Net>,
    pub private_ip: Ipv4Addr,
    pub bandwidth_mbps: u32,
    pub tunnels: Vec<TunnelIntent>,
    pub ssl_servers: Vec<SslServerIntent>,
    pub ipsec_server: Option<IpsecServerIntent>,
    /// Destination routes (route-based mode): prefix -> tunnel.
    pub routes: Vec<RouteIntent>,
    pub policy_routes: Vec<PolicyRouteIntent>,
}

/// One traffic-selector pair of a policy-based tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub local: Vec<Ipv4Net>,
    pub remote: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelIntent {
    pub id: String,
    /// One of the gateway's `public_ips`.
    pub local_ip: Ipv4Addr,
    /// The peer's address; `None` for a peer known only by name, which must initiate.
    pub remote_ip: Option<Ipv4Addr>,
    pub psk: Secret,
    /// Phase 1, including the IKE identities.
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub local_subnets: Vec<Ipv4Net>,
    pub remote_subnets: Vec<Ipv4Net>,
    /// Explicit selector pairs of a policy-based tunnel; empty: one pair, `local_subnets` × `remote_subnets`.
    pub selectors: Vec<Selector>,
    /// Initiate and keep retrying; otherwise respond and start on traffic.
    pub initiate: bool,
    pub dpd: bool,
    pub nat_traversal: bool,
    /// Traffic selectors 0/0 and routes choose what enters (destination-route mode).
    pub route_based: bool,
    pub health_check: Option<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SslServerIntent {
    pub id: String,
    pub port: u16,
    pub transport: Transport,
    pub cipher: SslCipher,
    pub compress: bool,
    pub client_ip_pool: Ipv4Net,
    pub local_subnets: Vec<Ipv4Net>,
    pub max_connections: u32,
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: Secret,
    pub crl_pem: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpsecServerIntent {
    pub id: String,
    pub client_ip_pool: Ipv4Net,
    pub local_subnets: Vec<Ipv4Net>,
    pub psk: Secret,
    /// Phase 1, including the server's and the clients' identities.
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteIntent {
    pub dest: Ipv4Net,
    pub tunnel_id: String,
    pub weight: u32,
    /// Also routed in the VPC (towards the gateway's inside address).
    pub published: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRouteIntent {
    pub source: Ipv4Net,
    pub dest: Ipv4Net,
    pub tunnel_id: String,
    pub weight: u32,
    pub priority: u32,
    pub published: bool,
}

/// What a driver observed of one gateway. Observing changes nothing: repairs are the reconciler's decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayObservation {
    /// Namespace and daemons are up with the last applied intent.
    pub ready: bool,
    pub tunnels: BTreeMap<String, TunnelObservation>,
    /// Connected clients per SSL-VPN server.
    pub ssl_sessions: BTreeMap<String, u32>,
    pub ipsec_server_clients: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelObservation {
    pub state: TunnelState,
    /// Health-check verdict when a health check is configured.
    pub health_ok: Option<bool>,
}
