//! VPN gateways and the VPC records openvgw keeps.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{resource, Extensions, Index, Scope};
use crate::ids::Kind;

/// Where a gateway is in its life; the API status is derived from it and the generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GatewayPhase {
    Init,
    Provisioning,
    Ready,
    Deleting,
}

/// The status every dialect renders in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GatewayStatus {
    Init,
    Provisioning,
    Active,
    Updating,
    Deleting,
}

/// How the public addresses of a gateway share the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaMode {
    /// One public address.
    Single,
    /// Two addresses, both carrying traffic.
    ActiveActive,
    /// Two addresses, the second used when the first fails.
    ActiveStandby,
}

/// Standard or national-standard (GM: SM2/SM3/SM4) cryptography.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CryptoSuite {
    Standard,
    NationalStandard,
}

/// What a gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayRole {
    /// IPsec site-to-site only.
    Site,
    /// Client-to-site only (SSL-VPN / P2C).
    Client,
    /// Both (Alibaba's gateways can enable IPsec and SSL-VPN together).
    Both,
}

impl GatewayRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayRole::Site => "site",
            GatewayRole::Client => "client",
            GatewayRole::Both => "both",
        }
    }
}

/// One public address of a gateway; `id` is the address's own id where a dialect shows one (an EIP id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIp {
    pub id: String,
    pub address: Ipv4Addr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VpnGateway {
    pub id: String,
    pub scope: Scope,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub subnet_id: String,
    /// Networks behind the gateway that its tunnels may reach; empty: the VPC's block.
    pub local_subnets: Vec<Ipv4Net>,
    pub bandwidth_mbps: u32,
    pub role: GatewayRole,
    /// Whether IPsec (site-to-site, IPsec server) is enabled.
    pub ipsec_enabled: bool,
    /// Whether SSL-VPN is enabled, and for how many concurrent clients.
    pub ssl_enabled: bool,
    pub ssl_max_connections: u32,
    pub crypto_suite: CryptoSuite,
    pub ha_mode: HaMode,
    /// One address, or two for an HA pair; connections bind to one of them by index.
    pub public_ips: Vec<PublicIp>,
    /// The gateway's address inside its VPC.
    pub private_ip: Ipv4Addr,
    /// An HA pair's second address inside its VPC, for the half on its second public address when the data plane
    /// runs the halves on two hosts. Gateways created before it was given have none, and stay whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_private_ip: Option<Ipv4Addr>,
    /// The gateway's own BGP ASN, where the gateway (not each connection) has one.
    pub bgp_asn: Option<u64>,
    pub auto_propagate: bool,
    /// True while any of its connections runs BGP.
    pub enable_bgp: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub phase: GatewayPhase,
    /// Bumped on every change the data plane must apply; `applied_generation` catches up when it has.
    pub generation: u64,
    pub applied_generation: u64,
    pub ext: Extensions,
}

impl VpnGateway {
    pub fn status(&self) -> GatewayStatus {
        match self.phase {
            GatewayPhase::Init => GatewayStatus::Init,
            GatewayPhase::Provisioning => GatewayStatus::Provisioning,
            GatewayPhase::Deleting => GatewayStatus::Deleting,
            GatewayPhase::Ready if self.generation > self.applied_generation => GatewayStatus::Updating,
            GatewayPhase::Ready => GatewayStatus::Active,
        }
    }

    /// The first public address (the only one of a single-address gateway).
    pub fn primary_ip(&self) -> Option<Ipv4Addr> {
        self.public_ips.first().map(|p| p.address)
    }

    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![(Index::VpcId, self.vpc_id.clone()), (Index::GatewayRole, self.role.as_str().to_string())]
    }
}

/// A VPC as openvgw knows it: declared in the config, or given an address block of its own on first use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vpc {
    /// Internal record id; VPC ids are chosen by users and only unique within a tenant.
    pub id: String,
    pub vpc_id: String,
    pub scope: Scope,
    pub cidr: Ipv4Net,
    pub created_at: i64,
}

impl Vpc {
    fn index_keys(&self) -> Vec<(Index, String)> {
        vec![(Index::VpcId, self.vpc_id.clone())]
    }
}

resource!(VpnGateway, Kind::VpnGateway, name = name);
resource!(Vpc, Kind::Vpc);
