//! Service configuration (TOML), with built-in defaults for everything.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub regions: Regions,
    pub quotas: Quotas,
    pub dataplane: DataplaneConfig,
    pub vpcs: Vec<VpcConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Maximum accepted clock skew of signed requests, seconds (Alibaba: 15 minutes).
    pub signature_window_s: u64,
    /// How long a `ClientToken` keeps its first answer, seconds (24 h).
    pub idempotency_ttl_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./openvgw-data"),
            signature_window_s: 15 * 60,
            idempotency_ttl_s: 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Regions {
    pub aliyun: Vec<String>,
    pub huawei: Vec<String>,
    /// Availability zones per region; regions not listed get `<region>a`, `<region>b`.
    pub zones: BTreeMap<String, Vec<String>>,
}

impl Default for Regions {
    fn default() -> Self {
        Regions {
            aliyun: vec!["cn-hangzhou".into(), "cn-shanghai".into(), "cn-beijing".into()],
            huawei: vec!["cn-north-4".into(), "cn-south-1".into()],
            zones: BTreeMap::new(),
        }
    }
}

impl Regions {
    pub fn zones_of(&self, region: &str) -> Vec<String> {
        self.zones.get(region).cloned().unwrap_or_else(|| vec![format!("{region}a"), format!("{region}b")])
    }
}

/// Per-tenant limits, defaults as Alibaba documents them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub vpn_gateways_per_region: u64,
    pub customer_gateways_per_region: u64,
    pub connections_per_gateway: u64,
    pub route_entries_per_gateway: u64,
    pub tags_per_resource: u64,
    pub ssl_client_certs_per_server: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            vpn_gateways_per_region: 30,
            customer_gateways_per_region: 100,
            connections_per_gateway: 10,
            route_entries_per_gateway: 50,
            tags_per_resource: 20,
            ssl_client_certs_per_server: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataplaneConfig {
    /// `simulated` (no system changes) or `netns`.
    pub driver: String,
    pub public_bridge: String,
    pub public_cidr: String,
    /// Comma-separated CIDRs handed to gateways as public IPs.
    pub eip_pool: String,
    /// Address blocks carved into /24s for VPCs that the config does not declare.
    pub vpc_auto_cidr: String,
    /// Next hop on the public segment for peers outside `public_cidr` (netns driver); none: only on-segment peers.
    pub public_gateway: Option<String>,
    /// Gateway namespaces are `<prefix><gateway id>` (netns driver).
    pub namespace_prefix: String,
    /// `auto` (probe the kernel), `kernel` (kernel-netlink, needs ESP) or `libipsec` (userspace ESP).
    pub ipsec_backend: String,
    pub simulated: SimulatedConfig,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            driver: "simulated".into(),
            public_bridge: "ovgw-pub".into(),
            public_cidr: "203.0.113.0/24".into(),
            eip_pool: "203.0.113.0/24".into(),
            vpc_auto_cidr: "10.240.0.0/12".into(),
            public_gateway: None,
            namespace_prefix: "ovgw-".into(),
            ipsec_backend: "auto".into(),
            simulated: SimulatedConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedConfig {
    pub provision_delay_ms: u64,
    pub apply_delay_ms: u64,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        SimulatedConfig { provision_delay_ms: 1000, apply_delay_ms: 200 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcConfig {
    pub id: String,
    #[serde(default)]
    pub bridge: Option<String>,
    pub cidr: String,
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Cross-field checks that serde cannot express.
    pub fn check(&self) -> Result<(), String> {
        for part in self.dataplane.eip_pool.split(',') {
            part.trim().parse::<ipnet::Ipv4Net>().map_err(|e| format!("dataplane.eip_pool: {part}: {e}"))?;
        }
        self.dataplane.vpc_auto_cidr.parse::<ipnet::Ipv4Net>().map_err(|e| format!("dataplane.vpc_auto_cidr: {e}"))?;
        for vpc in &self.vpcs {
            vpc.cidr.parse::<ipnet::Ipv4Net>().map_err(|e| format!("vpcs {}: {e}", vpc.id))?;
        }
        if let Some(gw) = &self.dataplane.public_gateway {
            gw.parse::<std::net::Ipv4Addr>().map_err(|e| format!("dataplane.public_gateway: {e}"))?;
        }
        if !matches!(self.dataplane.ipsec_backend.as_str(), "auto" | "kernel" | "libipsec") {
            return Err(format!(
                "dataplane.ipsec_backend: {:?} is not auto, kernel or libipsec",
                self.dataplane.ipsec_backend
            ));
        }
        let prefix = &self.dataplane.namespace_prefix;
        if prefix.is_empty() || prefix.len() > 16 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("dataplane.namespace_prefix: 1-16 letters, digits or '-'".into());
        }
        if !matches!(self.dataplane.driver.as_str(), "simulated" | "netns") {
            return Err(format!("dataplane.driver: unknown driver {:?}", self.dataplane.driver));
        }
        Ok(())
    }

    pub fn is_aliyun_region(&self, region: &str) -> bool {
        self.regions.aliyun.iter().any(|r| r == region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let cfg = Config::from_toml("[quotas]\nvpn_gateways_per_region = 3\n").expect("parses");
        assert_eq!(cfg.quotas.vpn_gateways_per_region, 3);
        assert_eq!(cfg.quotas.tags_per_resource, 20);
        assert!(cfg.is_aliyun_region("cn-hangzhou"));
        assert!(!cfg.is_aliyun_region("cn-north-4"));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::from_toml("[dataplane]\neip_pool = \"nope\"\n").is_err());
        assert!(Config::from_toml("[dataplane]\ndriver = \"magic\"\n").is_err());
        assert!(Config::from_toml("unknown_key = 1\n").is_err());
    }
}
