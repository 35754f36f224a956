//! What Huawei shows of a resource that the neutral model has no field for, kept in the resource's extensions.

use openvgw_core::model::Extension;
use serde::{Deserialize, Serialize};

/// A gateway's flavor, placement, EIP billing attributes and log target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GatewayExt {
    pub flavor: String,
    pub availability_zone_ids: Vec<String>,
    pub enterprise_project_id: String,
    pub access_vpc_id: String,
    pub access_subnet_id: String,
    /// One per public address, in the gateway's order.
    pub eips: Vec<EipExt>,
    /// Where a client-to-site gateway ships its connection logs (LTS group and stream).
    pub log_config: Option<LogConfig>,
    /// Client-to-site gateways: the order the gateway was bought with.
    pub order_id: String,
}

impl Extension for GatewayExt {
    const KEY: &'static str = "huawei";
}

impl GatewayExt {
    pub fn enterprise_project(&self) -> String {
        if self.enterprise_project_id.is_empty() {
            "0".into()
        } else {
            self.enterprise_project_id.clone()
        }
    }
}

/// How an EIP the gateway got is billed (shown, not enforced: openvgw does no billing).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EipExt {
    pub eip_type: String,
    pub charge_mode: String,
    pub bandwidth_size: u32,
    pub bandwidth_name: String,
    pub bandwidth_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    pub log_group_id: String,
    pub log_stream_id: String,
}

/// Connection switches that only Huawei has.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectionExt {
    pub enable_nqa: bool,
    pub enable_hub: bool,
    pub enable_health_check: bool,
    pub enterprise_project_id: String,
}

impl Extension for ConnectionExt {
    const KEY: &'static str = "huawei";
}

/// A VPN server's identity provider name (stored and echoed).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerExt {
    pub idp_name: String,
}

impl Extension for ServerExt {
    const KEY: &'static str = "huawei";
}
