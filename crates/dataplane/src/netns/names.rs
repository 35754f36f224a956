//! Names of everything the driver creates. Interface names are limited to 15 bytes (IFNAMSIZ - 1), so anything
//! derived from an unbounded id goes through a short hash.

use sha2::{Digest, Sha256};

use crate::DataplaneError;

/// The gateway's public interface inside its namespace.
pub(crate) const NS_PUBLIC_IF: &str = "pub0";
/// The gateway's VPC-side interface inside its namespace.
pub(crate) const NS_VPC_IF: &str = "vpc0";
/// The TUN device `kernel-libipsec` creates (one per charon).
pub(crate) const LIBIPSEC_TUN: &str = "ipsec0";
/// Bridges the driver creates for VPCs that the configuration does not declare.
pub(crate) const AUTO_VPC_BRIDGE_PREFIX: &str = "ovgw-v";

pub(crate) fn short_hash(input: &str, hex_chars: usize) -> String {
    let digest = hex::encode(Sha256::digest(input.as_bytes()));
    digest[..hex_chars.min(digest.len())].to_string()
}

/// Per-gateway names; everything that lives outside the namespace is derived from the namespace name, so two
/// drivers with different prefixes never collide.
#[derive(Debug, Clone)]
pub(crate) struct GatewayNames {
    pub namespace: String,
    /// Root-namespace end of the public veth (on the public bridge).
    pub public_veth: String,
    /// Root-namespace end of the VPC veth (on the VPC bridge).
    pub vpc_veth: String,
    /// Short token for socket names (unix socket paths are limited to 107 bytes).
    pub token: String,
}

impl GatewayNames {
    pub(crate) fn new(prefix: &str, gateway_id: &str) -> Result<Self, DataplaneError> {
        check_id("gateway", gateway_id)?;
        let namespace = format!("{prefix}{gateway_id}");
        let h = short_hash(&namespace, 8);
        Ok(GatewayNames { public_veth: format!("ovgw{h}p"), vpc_veth: format!("ovgw{h}v"), token: h, namespace })
    }
}

/// A stable, locally administered MAC for an interface of `owner` (a gateway's id, a router's namespace): a rebuilt
/// gateway keeps its MACs, so the neighbours' ARP caches (VPC hosts, the peer's router) stay valid and traffic
/// resumes without waiting for them to expire.
pub(crate) fn stable_mac(owner: &str, ifname: &str) -> String {
    let h = short_hash(&format!("{owner}/{ifname}"), 10);
    format!("02:{}:{}:{}:{}:{}", &h[0..2], &h[2..4], &h[4..6], &h[6..8], &h[8..10])
}

/// Bridge for an undeclared VPC.
pub(crate) fn auto_vpc_bridge(vpc_id: &str) -> String {
    format!("{AUTO_VPC_BRIDGE_PREFIX}{}", short_hash(vpc_id, 8))
}

/// TUN device of one SSL-VPN server inside the gateway namespace.
pub(crate) fn ssl_tun(server_id: &str) -> String {
    format!("ssl{}", short_hash(server_id, 8))
}

/// XFRM interface of one route-based tunnel (kernel backend).
pub(crate) fn xfrm_if(tunnel_id: &str) -> String {
    format!("xfrm{}", short_hash(tunnel_id, 8))
}

/// XFRM interface id of a route-based tunnel: stable for the tunnel's lifetime, never 0 (0 means "no if_id").
pub(crate) fn xfrm_if_id(tunnel_id: &str) -> u32 {
    let h = u32::from_str_radix(&short_hash(tunnel_id, 7), 16).unwrap_or(1);
    h.max(1)
}

/// Ids become file and namespace names: keep them to a safe alphabet.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), DataplaneError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DataplaneError::Failed(format!("{what} id {id:?} is not usable as a name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_ifnamsiz() {
        let n = GatewayNames::new("ovgw-", "vpn-bp1q8bgx4xnkm2ogj0000000").expect("names");
        assert_eq!(n.namespace, "ovgw-vpn-bp1q8bgx4xnkm2ogj0000000");
        for name in [&n.public_veth, &n.vpc_veth, &auto_vpc_bridge("vpc-x"), &ssl_tun("vss-x"), &xfrm_if("vco-x")] {
            assert!(name.len() <= 15, "{name} is too long");
        }
        assert_ne!(n.public_veth, GatewayNames::new("other-", "vpn-bp1q8bgx4xnkm2ogj0000000").expect("n").public_veth);
    }

    #[test]
    fn macs_are_stable_unicast_and_local() {
        let mac = stable_mac("ovgw-vpn-1", "pub0");
        assert_eq!(mac, stable_mac("ovgw-vpn-1", "pub0"));
        assert_ne!(mac, stable_mac("ovgw-vpn-1", "vpc0"));
        assert!(mac.starts_with("02:") && mac.len() == 17);
    }

    #[test]
    fn rejects_unsafe_ids() {
        for bad in ["", "../etc", "a b", "x/y", ".hidden", "a;b"] {
            assert!(GatewayNames::new("ovgw-", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn if_ids_are_stable_and_nonzero() {
        assert_eq!(xfrm_if_id("vco-1"), xfrm_if_id("vco-1"));
        assert!(xfrm_if_id("vco-1") > 0);
    }
}
