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
    pub store: StoreConfig,
    pub rate_limit: RateLimit,
    pub secrets: Secrets,
}

/// Where the state lives: SQLite in the data directory (the default), or a PostgreSQL database that several
/// replicas may share (`url = "postgres://user:password@host:5432/openvgw"`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub url: Option<String>,
}

/// Where the master key that seals secrets at rest comes from (`OPENVGW_MASTER_KEY` takes precedence over the
/// file). Every replica of a deployment needs the same key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Secrets {
    /// A file holding the base64 of 32 random bytes.
    pub master_key_file: Option<PathBuf>,
    /// Keys of earlier rotations (same format), to open values sealed before `openvgw admin reseal` rewrote them
    /// (`OPENVGW_PREVIOUS_MASTER_KEYS`: comma-separated base64, adds to these).
    pub previous_key_files: Vec<PathBuf>,
}

/// Request rate limits (token buckets): per tenant and operation (Alibaba `Throttling.User`, Huawei 429), and per
/// operation for all tenants together (Alibaba `Throttling`). Rates are requests per second; a bucket holds
/// `burst` requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    pub enabled: bool,
    pub tenant_per_second: f64,
    pub tenant_burst: f64,
    pub operation_per_second: f64,
    pub operation_burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            enabled: true,
            tenant_per_second: 100.0,
            tenant_burst: 200.0,
            operation_per_second: 2000.0,
            operation_burst: 4000.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Accepted clock skew of signed requests either way, seconds (both vendors: 15 minutes). Used nonces are
    /// remembered for twice this long.
    pub signature_window_s: u64,
    /// How long a `ClientToken` keeps its first answer, seconds (24 h).
    pub idempotency_ttl_s: u64,
    /// How many used nonces are remembered per access key (for twice the signature window). Past it, new signed
    /// requests of that key are refused as throttled until old nonces expire, so the table cannot grow unbounded.
    pub max_nonces_per_key: u64,
    /// Open client connections at most; at the cap the longest-idle connection is closed to admit a new one, and
    /// a new connection is refused only when every open one has a request in flight. Also kept below the process's
    /// file limit.
    pub max_connections: usize,
    /// A client must send a request's complete headers within this many seconds of connecting (slowloris).
    pub header_read_timeout_s: u64,
    /// A keep-alive connection with no request in flight is closed after this many seconds.
    pub idle_timeout_s: u64,
    /// A request body must arrive within this many seconds of its headers.
    pub body_read_timeout_s: u64,
    /// Keep the answers of pure reads (lists) in memory while the store is unchanged (SQLite only: PostgreSQL's
    /// replicas have no cheap shared change counter). Off, every read goes to the store (benchmarks of the store).
    pub read_cache: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./openvgw-data"),
            signature_window_s: 15 * 60,
            idempotency_ttl_s: 24 * 3600,
            max_nonces_per_key: 100_000,
            max_connections: 1024,
            header_read_timeout_s: 10,
            idle_timeout_s: 60,
            body_read_timeout_s: 30,
            read_cache: true,
        }
    }
}

/// The regions each dialect serves. A region belongs to one dialect only, so the resources seen through one vendor's
/// API never show up in the other's.
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

/// Per-tenant limits, defaults as the vendors document them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub vpn_gateways_per_region: u64,
    pub customer_gateways_per_region: u64,
    pub connections_per_gateway: u64,
    pub route_entries_per_gateway: u64,
    pub tags_per_resource: u64,
    pub ssl_client_certs_per_server: u64,
    pub connections_per_region: u64,
    pub user_groups_per_server: u64,
    pub access_policies_per_server: u64,
    pub client_cas_per_server: u64,
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
            connections_per_region: 5000,
            user_groups_per_server: 50,
            access_policies_per_server: 100,
            client_cas_per_server: 10,
        }
    }
}

/// Which data-plane driver realises gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// No system changes: reports what the real driver would.
    Simulated,
    /// strongSwan and OpenVPN in one network namespace per gateway (root).
    Netns,
    /// Gateways on other hosts: each `openvgw agent` runs the netns driver there and attaches to `[dataplane.agents]`.
    Agents,
}

/// Which IPsec backend the netns driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpsecBackendChoice {
    /// Probe the kernel: kernel ESP where it has it, else userspace ESP.
    Auto,
    /// kernel-netlink (needs ESP and XFRM interfaces).
    Kernel,
    /// strongSwan's userspace ESP (kernel-libipsec).
    Libipsec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataplaneConfig {
    pub driver: DriverKind,
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
    pub ipsec_backend: IpsecBackendChoice,
    pub simulated: SimulatedConfig,
    pub agents: AgentsConfig,
}

/// The port gateway hosts (`openvgw agent`) attach to, with mutual TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    pub listen: String,
    /// A call on an agent's driver (applying a gateway starts its daemons) fails after this long without an answer.
    pub call_timeout_s: u64,
    /// HTTP/2 pings every this many seconds; a peer silent for as long again is cut off (its session ends).
    pub keepalive_s: u64,
    /// An agent without a session for this long is dead: its gateways are placed on the other agents.
    pub dead_after_s: u64,
    /// Connections open at once on the port (an agent holds one per replica); more are closed as they arrive.
    pub max_connections: usize,
    /// Connections open at once from one address (agents behind one NAT share it).
    pub max_connections_per_address: usize,
    /// A TLS handshake not finished within this long is dropped.
    pub handshake_timeout_s: u64,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            listen: "127.0.0.1:7443".into(),
            call_timeout_s: 60,
            keepalive_s: 5,
            dead_after_s: 30,
            max_connections: 1024,
            max_connections_per_address: 64,
            handshake_timeout_s: 10,
        }
    }
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            driver: DriverKind::Simulated,
            public_bridge: "ovgw-pub".into(),
            public_cidr: "203.0.113.0/24".into(),
            eip_pool: "203.0.113.0/24".into(),
            vpc_auto_cidr: "10.240.0.0/12".into(),
            public_gateway: None,
            namespace_prefix: "ovgw-".into(),
            ipsec_backend: IpsecBackendChoice::Auto,
            simulated: SimulatedConfig::default(),
            agents: AgentsConfig::default(),
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
        let prefix = &self.dataplane.namespace_prefix;
        if prefix.is_empty() || prefix.len() > 16 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("dataplane.namespace_prefix: 1-16 letters, digits or '-'".into());
        }
        if let Some(r) = self.regions.aliyun.iter().find(|r| self.regions.huawei.contains(r)) {
            return Err(format!("regions: {r} is listed for both aliyun and huawei"));
        }
        if self.server.signature_window_s == 0 || self.server.signature_window_s > 24 * 3600 {
            return Err("server.signature_window_s: 1-86400 seconds".into());
        }
        let r = &self.rate_limit;
        for (name, v, min) in [
            ("tenant_per_second", r.tenant_per_second, 0.001),
            ("tenant_burst", r.tenant_burst, 1.0),
            ("operation_per_second", r.operation_per_second, 0.001),
            ("operation_burst", r.operation_burst, 1.0),
        ] {
            if !(v.is_finite() && v >= min) {
                return Err(format!("rate_limit.{name}: a number of at least {min}"));
            }
        }
        let s = &self.server;
        if s.max_connections < 8 {
            return Err("server.max_connections: at least 8".into());
        }
        for (name, v) in [
            ("header_read_timeout_s", s.header_read_timeout_s),
            ("idle_timeout_s", s.idle_timeout_s),
            ("body_read_timeout_s", s.body_read_timeout_s),
        ] {
            if v == 0 || v > 3600 {
                return Err(format!("server.{name}: 1-3600 seconds"));
            }
        }
        Ok(())
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
        assert_eq!(cfg.dataplane.driver, DriverKind::Simulated);
        let cfg = Config::from_toml("[dataplane]\ndriver = \"netns\"\nipsec_backend = \"libipsec\"\n").expect("parses");
        assert_eq!(cfg.dataplane.ipsec_backend, IpsecBackendChoice::Libipsec);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::from_toml("[dataplane]\neip_pool = \"nope\"\n").is_err());
        assert!(Config::from_toml("[dataplane]\ndriver = \"magic\"\n").is_err());
        assert!(Config::from_toml("unknown_key = 1\n").is_err());
        assert!(Config::from_toml("[regions]\naliyun = [\"r1\"]\nhuawei = [\"r1\"]\n").is_err());
        assert!(Config::from_toml("[server]\nsignature_window_s = 0\n").is_err());
    }
}
