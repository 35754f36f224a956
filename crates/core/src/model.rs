//! The resource model: what the store persists and both dialects render.
//!
//! Every resource belongs to one tenant and one region; lookups always filter on both, so another tenant's or
//! region's resource is simply not found.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{IkeConfig, IpsecConfig};
use crate::ids::Kind;

/// Scope every stored resource lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub tenant_id: String,
    pub region: String,
}

/// Implemented by every stored resource type.
pub trait Resource: Serialize + for<'de> Deserialize<'de> + Send + 'static {
    const KIND: Kind;
    fn id(&self) -> &str;
    fn scope(&self) -> &Scope;
    /// The owning resource (gateway of a connection, server of a cert, …); indexed for child lookups.
    fn parent_id(&self) -> Option<&str> {
        None
    }
    fn name(&self) -> &str {
        ""
    }
    /// A secondary key queries look resources up by (indexed), e.g. a customer gateway's IP address.
    fn lookup_key(&self) -> Option<&str> {
        None
    }
    fn created_at(&self) -> i64;
}

/// Implements [`Resource`] for a struct with `id`, `scope` and `created_at` fields.
macro_rules! resource {
    ($t:ty, $kind:expr $(, parent = $parent:ident)? $(, name = $name:ident)? $(, key = $key:ident)?) => {
        impl Resource for $t {
            const KIND: Kind = $kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn scope(&self) -> &Scope {
                &self.scope
            }
            fn created_at(&self) -> i64 {
                self.created_at
            }
            $(fn parent_id(&self) -> Option<&str> {
                Some(&self.$parent)
            })?
            $(fn name(&self) -> &str {
                &self.$name
            })?
            $(fn lookup_key(&self) -> Option<&str> {
                Some(&self.$key)
            })?
        }
    };
}

/// Where a gateway is in its life; the API status is derived from it and the generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GatewayPhase {
    Init,
    Provisioning,
    Ready,
    Deleting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayStatus {
    Init,
    Provisioning,
    Active,
    Updating,
    Deleting,
}

impl GatewayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayStatus::Init => "init",
            GatewayStatus::Provisioning => "provisioning",
            GatewayStatus::Active => "active",
            GatewayStatus::Updating => "updating",
            GatewayStatus::Deleting => "deleting",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Init, Self::Provisioning, Self::Active, Self::Updating, Self::Deleting]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VpnGateway {
    pub id: String,
    pub scope: Scope,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub vswitch_id: String,
    pub bandwidth_mbps: u32,
    /// `PREPAY` or `POSTPAY`, as given at creation.
    pub charge_type: String,
    pub period_months: Option<u32>,
    pub end_time: i64,
    pub auto_pay: bool,
    pub enable_ipsec: bool,
    pub enable_ssl: bool,
    pub ssl_connections: u32,
    /// `Normal` or `NationalStandard`.
    pub vpn_type: String,
    pub internet_ip: String,
    pub intranet_ip: String,
    pub auto_propagate: bool,
    pub enable_bgp: bool,
    pub order_id: i64,
    pub created_at: i64,
    pub phase: GatewayPhase,
    /// Bumped on every change the data plane must apply; `applied_generation` catches up when it has.
    pub generation: u64,
    pub applied_generation: u64,
    /// Tags the system sets (Alibaba's `Tag` field), e.g. `{"VpnVersion":"openvgw"}`.
    pub system_tags: BTreeMap<String, String>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerGateway {
    pub id: String,
    pub scope: Scope,
    pub name: String,
    pub description: String,
    pub ip_address: String,
    pub asn: Option<u64>,
    pub auth_key: Option<String>,
    pub created_at: i64,
}

/// What the data plane last observed of a tunnel (Alibaba's connection `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunnelState {
    IkeSaNotEstablished,
    IkeSaEstablished,
    IpsecSaNotEstablished,
    IpsecSaEstablished,
}

impl TunnelState {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelState::IkeSaNotEstablished => "ike_sa_not_established",
            TunnelState::IkeSaEstablished => "ike_sa_established",
            TunnelState::IpsecSaNotEstablished => "ipsec_sa_not_established",
            TunnelState::IpsecSaEstablished => "ipsec_sa_established",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enable: bool,
    pub dip: String,
    pub sip: String,
    pub interval_s: u32,
    pub retry: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpConfig {
    pub enable: bool,
    pub local_asn: u64,
    pub tunnel_cidr: String,
    pub local_bgp_ip: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VpnConnection {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub customer_gateway_id: String,
    pub name: String,
    /// Normalised comma-separated CIDR lists, as the API returns them.
    pub local_subnet: String,
    pub remote_subnet: String,
    pub effect_immediately: bool,
    pub psk: String,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub health_check: HealthCheck,
    pub auto_config_route: bool,
    pub enable_dpd: bool,
    pub enable_nat_traversal: bool,
    pub bgp: BgpConfig,
    pub remote_ca_certificate: String,
    pub created_at: i64,
    pub state: TunnelState,
    /// Last health-check verdict from the data plane (`None` until probed).
    pub health_ok: Option<bool>,
}

/// A destination route (`policy_source` = None) or a policy route (source + destination).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteEntry {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub route_source: Option<String>,
    pub route_dest: String,
    pub next_hop: String,
    pub weight: u32,
    pub priority: Option<u32>,
    pub published: bool,
    pub description: String,
    pub overlay_mode: String,
    pub created_at: i64,
}

impl RouteEntry {
    pub fn is_policy(&self) -> bool {
        self.route_source.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SslVpnServer {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub name: String,
    pub client_ip_pool: String,
    pub local_subnet: String,
    /// `UDP` or `TCP`.
    pub proto: String,
    pub cipher: String,
    pub port: u16,
    pub compress: bool,
    pub enable_multi_factor_auth: bool,
    pub idaas_instance_id: String,
    pub idaas_region_id: String,
    pub created_at: i64,
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// Serials of deleted client certificates; the CRL is derived from them.
    pub revoked_serials: Vec<String>,
    pub crl_number: u64,
    /// Client sessions the data plane last reported.
    pub connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SslVpnClientCert {
    pub id: String,
    pub scope: Scope,
    pub server_id: String,
    pub gateway_id: String,
    pub name: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub serial_hex: String,
    pub end_time: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpsecServer {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub name: String,
    pub local_subnet: String,
    pub client_ip_pool: String,
    pub effect_immediately: bool,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub psk_enabled: bool,
    pub psk: String,
    pub created_at: i64,
    pub online_clients: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateAssociation {
    pub id: String,
    pub scope: Scope,
    pub gateway_id: String,
    pub certificate_id: String,
    /// `Signature` or `Encryption`.
    pub certificate_type: String,
    pub created_at: i64,
}

/// A VPC as openvgw knows it: declared in the config, or created on first use with an address block of its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vpc {
    /// Internal record id; VPC ids are chosen by users and only unique within a tenant.
    pub id: String,
    pub vpc_id: String,
    pub scope: Scope,
    pub cidr: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// Huawei region -> the tenant's project id there.
    pub projects: BTreeMap<String, String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    /// Needed in clear to verify HMAC signatures; lives only in the store (file mode 0600), never logged.
    pub secret: String,
    pub tenant_id: String,
    pub created_at: i64,
}

/// A tag on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

// A gateway's parent is its VPC.
resource!(VpnGateway, Kind::VpnGateway, parent = vpc_id, name = name);
resource!(CustomerGateway, Kind::CustomerGateway, name = name, key = ip_address);
// Connections are found by their customer gateway (one per gateway pair; in-use checks).
resource!(VpnConnection, Kind::VpnConnection, parent = gateway_id, name = name, key = customer_gateway_id);
resource!(RouteEntry, Kind::RouteEntry, parent = gateway_id);
resource!(SslVpnServer, Kind::SslVpnServer, parent = gateway_id, name = name);
resource!(SslVpnClientCert, Kind::SslVpnClientCert, parent = server_id, name = name);
resource!(IpsecServer, Kind::IpsecServer, parent = gateway_id, name = name);
resource!(CertificateAssociation, Kind::CertificateAssociation, parent = gateway_id);
resource!(Vpc, Kind::Vpc, key = vpc_id);
