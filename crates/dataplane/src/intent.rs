//! The neutral description of one gateway's desired data plane.

use std::collections::BTreeMap;
use std::fmt;

use openvgw_core::crypto::{IkeConfig, IpsecConfig};
use openvgw_core::model::{HealthCheck, TunnelState};
use serde::{Deserialize, Serialize};

/// A secret (PSK, private key) that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayIntent {
    pub gateway_id: String,
    pub tenant_id: String,
    /// The control plane's generation this intent was compiled from.
    pub generation: u64,
    pub public_ip: String,
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub private_ip: String,
    pub bandwidth_mbps: u32,
    pub tunnels: Vec<TunnelIntent>,
    pub ssl_servers: Vec<SslServerIntent>,
    pub ipsec_server: Option<IpsecServerIntent>,
    /// Destination routes (route-based mode): prefix -> tunnel.
    pub routes: Vec<RouteIntent>,
    pub policy_routes: Vec<PolicyRouteIntent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelIntent {
    pub id: String,
    pub local_ip: String,
    pub remote_ip: String,
    pub local_id: String,
    pub remote_id: String,
    pub psk: Secret,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub local_subnets: Vec<String>,
    pub remote_subnets: Vec<String>,
    /// Initiate and keep retrying (`EffectImmediately=true`); otherwise respond and start on traffic.
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
    /// `UDP` or `TCP`.
    pub proto: String,
    pub cipher: String,
    pub compress: bool,
    pub client_ip_pool: String,
    pub local_subnets: Vec<String>,
    pub max_connections: u32,
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: Secret,
    pub crl_pem: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpsecServerIntent {
    pub id: String,
    pub client_ip_pool: String,
    pub local_subnets: Vec<String>,
    pub local_id: String,
    pub remote_id: String,
    pub psk: Secret,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteIntent {
    pub dest: String,
    pub tunnel_id: String,
    pub weight: u32,
    /// Also routed in the VPC (towards the gateway's inside address).
    pub published: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRouteIntent {
    pub source: String,
    pub dest: String,
    pub tunnel_id: String,
    pub weight: u32,
    pub priority: u32,
    pub published: bool,
}

/// What a driver observed of one gateway.
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
