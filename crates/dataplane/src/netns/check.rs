//! What the netns driver refuses before touching anything: names it cannot use, addresses outside the public
//! segment or the VPC, and what the IPsec backend or strongSwan cannot do.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::backend::IpsecBackend;
use super::sys::failed;
use super::{firewall, names, strongswan, Inner};
use crate::{ClientAuthIntent, DataplaneError, GatewayIntent, SslServerIntent};

/// A gateway has one public address, or two for an HA pair.
const MAX_PUBLIC_IPS: usize = 2;

impl Inner {
    /// Refuses what this host cannot realise, before touching anything.
    pub(super) fn check(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        names::check_id("gateway", &intent.gateway_id)?;
        if intent.public_ips.is_empty() || intent.public_ips.len() > MAX_PUBLIC_IPS {
            return Err(failed(format!("a gateway has 1 or 2 public IPs, not {}", intent.public_ips.len())));
        }
        let mut public = BTreeSet::new();
        for ip in &intent.public_ips {
            if !self.public_net.contains(ip) {
                return Err(failed(format!("public IP {ip} is outside dataplane.public_cidr {}", self.public_net)));
            }
            if !public.insert(*ip) {
                return Err(failed(format!("public IP {ip} is listed twice")));
            }
        }
        let vpc = self.vpc_net(intent)?;
        if !vpc.contains(&intent.private_ip) {
            return Err(failed(format!("private IP {} is outside the VPC CIDR {vpc}", intent.private_ip)));
        }
        let mut tunnel_ids = BTreeSet::new();
        for t in &intent.tunnels {
            names::check_id("connection", &t.id)?;
            if !tunnel_ids.insert(t.id.as_str()) {
                return Err(failed(format!("connection {} is listed twice", t.id)));
            }
            if !public.contains(&t.local_ip) {
                return Err(failed(format!("connection {} uses {}, not a public IP of the gateway", t.id, t.local_ip)));
            }
            if !t.route_based {
                let empty_pair = if t.selectors.is_empty() {
                    t.local_subnets.is_empty() || t.remote_subnets.is_empty()
                } else {
                    t.selectors.iter().any(|s| s.local.is_empty() || s.remote.is_empty())
                };
                if empty_pair {
                    return Err(failed(format!("connection {} has no local or remote subnet", t.id)));
                }
            }
        }
        let route_based = intent.tunnels.iter().filter(|t| t.route_based).count();
        match self.backend {
            IpsecBackend::KernelLibipsec if route_based > 1 => {
                return Err(DataplaneError::Unsupported {
                    backend: "kernel-libipsec",
                    what: format!(
                        "{route_based} route-based connections on one gateway (libipsec has a single tunnel device \
                         per charon, so only one route-based connection per gateway)"
                    ),
                })
            }
            IpsecBackend::KernelNetlink { xfrm_interfaces: false } if route_based > 0 => {
                return Err(DataplaneError::Unsupported {
                    backend: "kernel-netlink",
                    what: "route-based connections on a kernel without XFRM interfaces".into(),
                })
            }
            _ => {}
        }
        if self.backend.is_libipsec() {
            check_libipsec_local_nets(intent)?;
        }
        for r in &intent.routes {
            if !tunnel_ids.contains(r.tunnel_id.as_str()) {
                return Err(failed(format!("route {} points at unknown connection {}", r.dest, r.tunnel_id)));
            }
        }
        for r in &intent.policy_routes {
            if !tunnel_ids.contains(r.tunnel_id.as_str()) {
                return Err(failed(format!("policy route {} points at unknown connection {}", r.dest, r.tunnel_id)));
            }
        }
        let mut server_ids = BTreeSet::new();
        for s in &intent.ssl_servers {
            names::check_id("SSL-VPN server", &s.id)?;
            if !server_ids.insert(s.id.as_str()) {
                return Err(failed(format!("SSL-VPN server {} is listed twice", s.id)));
            }
            check_ssl_clients(s)?;
        }
        if let Some((a, b)) = firewall::overlapping_pools(intent) {
            return Err(failed(format!("SSL-VPN servers {a} and {b} have overlapping client pools")));
        }
        if let Some(s) = &intent.ipsec_server {
            names::check_id("IPsec server", &s.id)?;
            // Both are connection names in the one charon.
            if tunnel_ids.contains(s.id.as_str()) {
                return Err(failed(format!("IPsec server {} has the id of a connection", s.id)));
            }
        }
        // Proposals and settings strongSwan cannot do surface here, not half-way through a convergence.
        self.desired_connections(intent)?;
        Ok(())
    }
}

/// Imported CAs must be certificates; users need distinct names and distinct addresses inside the pool that are
/// neither its network, its broadcast nor the server's own address (the pool's first host).
fn check_ssl_clients(s: &SslServerIntent) -> Result<(), DataplaneError> {
    match &s.clients {
        ClientAuthIntent::Certificate { cas, .. } => {
            if let Some(i) = cas.iter().position(|pem| !pem.contains("-----BEGIN CERTIFICATE-----")) {
                return Err(failed(format!(
                    "SSL-VPN server {}: imported CA #{} is not a PEM certificate",
                    s.id,
                    i + 1
                )));
            }
        }
        ClientAuthIntent::Password { users } => {
            let pool = s.client_ip_pool.trunc();
            let server_ip = pool.hosts().next();
            let (mut names_seen, mut addresses) = (BTreeSet::new(), BTreeSet::new());
            for u in users {
                if u.name.is_empty() || u.name.len() > 128 || u.name.chars().any(char::is_control) {
                    return Err(failed(format!("SSL-VPN server {}: user name {:?} is not usable", s.id, u.name)));
                }
                if !names_seen.insert(u.name.as_str()) {
                    return Err(failed(format!("SSL-VPN server {}: user {} is listed twice", s.id, u.name)));
                }
                let usable = pool.contains(&u.address)
                    && u.address != pool.network()
                    && u.address != pool.broadcast()
                    && Some(u.address) != server_ip;
                if !usable {
                    return Err(failed(format!(
                        "SSL-VPN server {}: address {} of user {} is not a client address of the pool {pool}",
                        s.id, u.address, u.name
                    )));
                }
                if !addresses.insert(u.address) {
                    return Err(failed(format!(
                        "SSL-VPN server {}: address {} is given to more than one user",
                        s.id, u.address
                    )));
                }
            }
        }
    }
    Ok(())
}

/// kernel-libipsec installs a route for every CHILD_SA sourced from a local address inside its local selector, and
/// fails the CHILD_SA when the gateway has none there (`install_routes = no` does not stop it in 5.9.8). Refused up
/// front rather than left to fail at negotiation.
fn check_libipsec_local_nets(intent: &GatewayIntent) -> Result<(), DataplaneError> {
    let mut own: Vec<Ipv4Addr> = intent.public_ips.clone();
    own.push(intent.private_ip);
    own.extend(intent.tunnels.iter().filter_map(|t| t.health_check.as_ref().filter(|h| h.enable).and_then(|h| h.sip)));
    let tunnels = intent.tunnels.iter().filter(|t| !t.route_based).map(|t| {
        let local: BTreeSet<Ipv4Net> = strongswan::selector_pairs(t).into_iter().flat_map(|(l, _)| l).collect();
        (t.id.as_str(), local)
    });
    let server = intent.ipsec_server.iter().map(|s| (s.id.as_str(), s.local_subnets.iter().copied().collect()));
    for (id, local) in tunnels.chain(server) {
        if let Some(net) = local.iter().find(|n| !own.iter().any(|a| n.contains(a))) {
            return Err(DataplaneError::Unsupported {
                backend: "kernel-libipsec",
                what: format!(
                    "connection {id}: local network {net} holds no address of the gateway (userspace IPsec needs one \
                     as the source of each CHILD_SA's route)"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::strongswan::tests::net;
    use super::super::testing::{intent, tunnel};
    use super::*;
    use crate::Selector;
    use openvgw_core::crypto::{Encryption, IkeVersion};

    fn libipsec() -> Inner {
        Inner::for_tests(IpsecBackend::KernelLibipsec)
    }

    #[test]
    fn ha_gateway_with_a_tunnel_per_public_ip_passes() {
        let mut b = tunnel("vco-b", IkeVersion::V2);
        b.local_ip = "203.0.113.66".parse().expect("ip");
        b.remote_ip = None;
        libipsec().check(&intent(vec![tunnel("vco-a", IkeVersion::V2), b])).expect("valid");
    }

    #[test]
    fn refuses_addresses_the_gateway_does_not_have() {
        let mut t = tunnel("vco-a", IkeVersion::V2);
        t.local_ip = "203.0.113.67".parse().expect("ip");
        let err = libipsec().check(&intent(vec![t])).expect_err("not a public IP of the gateway");
        assert!(err.to_string().contains("203.0.113.67"), "{err}");
        let mut three = intent(Vec::new());
        three.public_ips.push("203.0.113.67".parse().expect("ip"));
        assert!(libipsec().check(&three).is_err());
        let mut outside = intent(Vec::new());
        outside.public_ips = vec!["198.51.100.1".parse().expect("ip")];
        assert!(libipsec().check(&outside).is_err());
        let mut unknown_vpc = intent(Vec::new());
        unknown_vpc.vpc_cidr = None;
        assert!(libipsec().check(&unknown_vpc).is_err(), "no VPC block from the intent or the configuration");
    }

    #[test]
    fn refuses_empty_selectors_and_what_strongswan_cannot_do() {
        let mut t = tunnel("vco-a", IkeVersion::V2);
        t.selectors =
            vec![Selector { local: Vec::new(), remote: vec![super::super::strongswan::tests::net("10.0.0.0/8")] }];
        assert!(libipsec().check(&intent(vec![t])).is_err());
        let mut t = tunnel("vco-a", IkeVersion::V2);
        t.ike.encryption = Encryption::Sm4;
        assert!(matches!(libipsec().check(&intent(vec![t])), Err(DataplaneError::Unsupported { .. })));
    }

    #[test]
    fn libipsec_needs_a_gateway_address_in_every_local_network() {
        let mut t = tunnel("vco-a", IkeVersion::V1);
        t.local_subnets = vec![net("192.168.10.0/24"), net("192.168.20.0/24")];
        let gw = intent(vec![t]);
        let err = libipsec().check(&gw).expect_err("no gateway address in 192.168.20.0/24");
        assert!(err.to_string().contains("192.168.20.0/24"), "{err}");
        Inner::for_tests(IpsecBackend::KernelNetlink { xfrm_interfaces: true }).check(&gw).expect("kernel IPsec can");
        // A health-check source on the gateway inside the network is an address of the gateway too.
        let mut gw = gw;
        gw.tunnels[0].health_check = Some(openvgw_core::model::HealthCheck {
            enable: true,
            dip: None,
            sip: Some("192.168.20.250".parse().expect("ip")),
            interval_s: 5,
            retry: 3,
        });
        libipsec().check(&gw).expect("sip inside the network");
    }

    #[test]
    fn one_route_based_tunnel_under_libipsec() {
        let mut a = tunnel("vco-a", IkeVersion::V2);
        a.route_based = true;
        let mut b = tunnel("vco-b", IkeVersion::V2);
        b.route_based = true;
        let two = intent(vec![a, b]);
        assert!(matches!(libipsec().check(&two), Err(DataplaneError::Unsupported { .. })));
        Inner::for_tests(IpsecBackend::KernelNetlink { xfrm_interfaces: true }).check(&two).expect("kernel can");
    }

    #[test]
    fn password_users_need_their_own_client_address() {
        let user = |name: &str, address: &str| crate::UserIntent {
            name: name.into(),
            password_hash: crate::Secret::new("$argon2id$x"),
            address: address.parse().expect("ip"),
            allowed: vec![net("192.168.10.0/24")],
        };
        let with_users = |users| {
            let mut gw = intent(Vec::new());
            let mut s = crate::netns::openvpn::tests::server();
            s.clients = ClientAuthIntent::Password { users };
            gw.ssl_servers.push(s);
            libipsec().check(&gw)
        };
        with_users(vec![user("alice", "10.8.0.10"), user("bob", "10.8.0.20")]).expect("valid");
        for (users, why) in [
            (vec![user("alice", "10.8.0.1")], "the server's address"),
            (vec![user("alice", "10.8.0.0")], "the pool's network"),
            (vec![user("alice", "10.8.0.255")], "the pool's broadcast"),
            (vec![user("alice", "10.9.0.10")], "outside the pool"),
            (vec![user("alice", "10.8.0.10"), user("bob", "10.8.0.10")], "one address twice"),
            (vec![user("alice", "10.8.0.10"), user("alice", "10.8.0.11")], "one name twice"),
            (vec![user("a\nb", "10.8.0.10")], "a control character"),
        ] {
            assert!(with_users(users).is_err(), "{why}");
        }
        let mut gw = intent(Vec::new());
        let mut s = crate::netns::openvpn::tests::server();
        s.clients = ClientAuthIntent::Certificate { cas: vec!["not a certificate".into()], revoked: vec![] };
        gw.ssl_servers.push(s);
        assert!(libipsec().check(&gw).is_err(), "an imported CA must be a certificate");
    }
}
