//! Fixtures for the driver's unit tests.

use super::*;
use crate::TunnelIntent;
use openvgw_core::crypto::IkeVersion;

impl Inner {
    /// A driver core that touches nothing: for the pure parts (checks, desired routes and connections).
    pub(super) fn for_tests(backend: IpsecBackend) -> Inner {
        Inner {
            opts: NetnsOptions::default(),
            backend,
            public_bridge: "ovgw-pub".into(),
            public_net: strongswan::tests::net("203.0.113.0/24"),
            vpcs: HashMap::new(),
            gateways_dir: PathBuf::from("/nonexistent/gateways"),
            run_dir: PathBuf::from("/nonexistent/run"),
            gateways: Mutex::new(HashMap::new()),
            router_locks: Default::default(),
            changes: Default::default(),
        }
    }
}

pub(super) fn tunnel(id: &str, version: IkeVersion) -> TunnelIntent {
    let vpc = strongswan::tests::net("192.168.10.0/24");
    TunnelIntent { id: id.into(), local_subnets: vec![vpc], ..strongswan::tests::tunnel(version) }
}

/// An HA gateway (two public IPs) with the given tunnels, VPC 192.168.10.0/24.
pub(super) fn intent(tunnels: Vec<TunnelIntent>) -> GatewayIntent {
    GatewayIntent {
        gateway_id: "vpn-test".into(),
        tenant_id: "tenant".into(),
        generation: 1,
        public_ips: vec!["203.0.113.65".parse().expect("ip"), "203.0.113.66".parse().expect("ip")],
        vpc_id: "vpc-test".into(),
        vpc_cidr: Some(strongswan::tests::net("192.168.10.0/24")),
        private_ip: "192.168.10.1".parse().expect("ip"),
        second_private_ip: None,
        bandwidth_mbps: 10,
        tunnels,
        ssl_servers: Vec::new(),
        ipsec_server: None,
        routes: Vec::new(),
        policy_routes: Vec::new(),
        propagate_learned: false,
        vpc_router: Default::default(),
    }
}
