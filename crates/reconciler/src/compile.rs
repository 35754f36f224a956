//! Compiles a gateway's tree into the neutral intent: a pure function, so what the data plane is told can be tested
//! without a store or a driver.

use ipnet::Ipv4Net;
use openvgw_control::reconcile::{GatewayTree, SslServerTree};
use openvgw_core::model::{
    ClientAuth, ConnectionMode, CustomerGateway, HaRole, RouteEntry, RouteOrigin, VpnConnection,
};
use openvgw_dataplane::{
    BgpIntent, ClientAuthIntent, GatewayIntent, IpsecServerIntent, PolicyRouteIntent, RouteIntent, Selector,
    SslServerIntent, TunnelIntent, UserIntent,
};

fn any(nets: &[Ipv4Net]) -> bool {
    nets.len() == 1 && nets[0].prefix_len() == 0
}

/// Password servers let each user reach what its group's policies allow; certificate servers trust their own CA,
/// or the imported client CAs when there are any.
fn client_auth(s: &SslServerTree) -> ClientAuthIntent {
    match s.server.client_auth {
        ClientAuth::Certificate => {
            let cas: Vec<String> = s.client_cas.iter().map(|c| c.certificate.pem.clone()).collect();
            // Revocations are of the own CA's certificates: under imported CAs they name nobody.
            let revoked = if cas.is_empty() { s.server.revoked_client_ids.clone() } else { Vec::new() };
            ClientAuthIntent::Certificate { cas, revoked }
        }
        ClientAuth::Password => ClientAuthIntent::Password {
            users: s
                .users
                .iter()
                .map(|u| {
                    let mut allowed: Vec<Ipv4Net> = s
                        .policies
                        .iter()
                        .filter(|p| u.group_id.as_deref() == Some(p.group_id.as_str()))
                        .flat_map(|p| p.dest_cidrs.iter().copied())
                        .collect();
                    allowed.sort();
                    allowed.dedup();
                    UserIntent {
                        name: u.name.clone(),
                        password_hash: u.password_hash.clone(),
                        address: u.address,
                        allowed,
                    }
                })
                .collect(),
        },
    }
}

/// The BGP session of a BGP connection, once everything it needs is known: both inside addresses and the peer's
/// ASN (ASNs beyond 32 bits cannot be spoken; validation keeps them out). It announces the gateway's local subnets
/// (the VPC's block when there are none) and the connection's own local subnets, and refuses the VPC's block.
fn bgp(t: &GatewayTree, c: &VpnConnection, cgw: &CustomerGateway) -> Option<BgpIntent> {
    if !c.bgp.enable {
        return None;
    }
    let inside = c.inside.as_ref()?;
    let mut advertise: Vec<Ipv4Net> = if t.gateway.local_subnets.is_empty() {
        t.vpc_cidr.into_iter().collect()
    } else {
        t.gateway.local_subnets.clone()
    };
    advertise.extend(c.local_subnets.iter().filter(|n| n.prefix_len() > 0));
    let mut advertise: Vec<Ipv4Net> = advertise.into_iter().map(|n| n.trunc()).collect();
    advertise.sort();
    advertise.dedup();
    Some(BgpIntent {
        local_asn: u32::try_from(c.bgp.local_asn).ok()?,
        peer_asn: u32::try_from(cgw.asn?).ok()?,
        local_ip: inside.local?,
        peer_ip: inside.peer()?,
        prefix_len: inside.cidr.prefix_len(),
        auth_key: cgw.bgp_auth_key.clone(),
        advertise,
        refuse: t.vpc_cidr.into_iter().collect(),
    })
}

pub fn compile(t: &GatewayTree) -> GatewayIntent {
    let gw = &t.gateway;
    let mut tunnels = Vec::new();
    for (c, cgw) in &t.connections {
        let local_ip = gw
            .public_ips
            .get(usize::from(c.public_ip_index))
            .or(gw.public_ips.first())
            .map(|p| p.address)
            .unwrap_or(gw.private_ip);
        // A tunnel is route-based when its mode says so, when it selects everything, or when destination routes
        // point at it (Alibaba's destination-route mode).
        let route_based = matches!(c.mode, ConnectionMode::Static | ConnectionMode::Bgp)
            || (any(&c.local_subnets) && any(&c.remote_subnets))
            || t.routes.iter().any(|r| !r.is_policy() && r.next_hop == c.id);
        tunnels.push(TunnelIntent {
            id: c.id.clone(),
            local_ip,
            remote_ip: cgw.address(),
            psk: c.psk.clone(),
            ike: c.ike.clone(),
            ipsec: c.ipsec.clone(),
            local_subnets: c.local_subnets.clone(),
            remote_subnets: c.remote_subnets.clone(),
            selectors: c
                .policy_rules
                .iter()
                .map(|r| Selector { local: vec![r.source], remote: r.destinations.clone() })
                .collect(),
            initiate: c.initiate,
            dpd: c.dpd,
            nat_traversal: c.nat_traversal,
            route_based,
            health_check: c.health_check.enable.then(|| c.health_check.clone()),
            bgp: bgp(t, c, cgw),
        });
    }
    let ssl_servers = t
        .ssl_servers
        .iter()
        .map(|s| SslServerIntent {
            id: s.server.id.clone(),
            port: s.server.port,
            transport: s.server.transport,
            cipher: s.server.cipher,
            compress: s.server.compress,
            client_ip_pool: s.server.client_ip_pool,
            local_subnets: s.server.local_subnets.clone(),
            max_connections: gw.ssl_max_connections,
            ca_cert_pem: s.server.ca_cert_pem.clone(),
            server_cert_pem: s.server.server_cert_pem.clone(),
            server_key_pem: s.server.server_key_pem.clone(),
            crl_pem: s.crl_pem.clone(),
            dns_servers: s.server.dns_servers.clone(),
            clients: client_auth(s),
        })
        .collect();
    let ipsec_server = t.ipsec_server.as_ref().map(|s| IpsecServerIntent {
        id: s.id.clone(),
        client_ip_pool: s.client_ip_pool,
        local_subnets: s.local_subnets.clone(),
        psk: s.psk.clone(),
        ike: s.ike.clone(),
        ipsec: s.ipsec.clone(),
    });
    // Routes learned over BGP are the BGP daemon's to install and withdraw; the store only shows them.
    let (policy, dest): (Vec<&RouteEntry>, Vec<&RouteEntry>) =
        t.routes.iter().filter(|r| r.origin == RouteOrigin::Custom).partition(|r| r.is_policy());
    GatewayIntent {
        gateway_id: gw.id.clone(),
        tenant_id: gw.scope.tenant_id.clone(),
        generation: gw.generation,
        public_ips: gw.public_ips.iter().map(|p| p.address).collect(),
        vpc_id: gw.vpc_id.clone(),
        vpc_cidr: t.vpc_cidr,
        propagate_learned: gw.auto_propagate,
        private_ip: gw.private_ip,
        bandwidth_mbps: gw.bandwidth_mbps,
        tunnels,
        ssl_servers,
        ipsec_server,
        routes: {
            let mut routes: Vec<RouteIntent> = dest
                .into_iter()
                .map(|r| RouteIntent {
                    dest: r.dest,
                    tunnel_id: r.next_hop.clone(),
                    weight: r.weight,
                    published: r.published,
                })
                .collect();
            // Static route-based connections that route their own remote subnets (BGP learns its routes).
            for (c, _) in &t.connections {
                if c.mode != ConnectionMode::Static || !c.auto_route {
                    continue;
                }
                // An active-standby pair's standby connection is the standby path.
                let weight = if c.ha_role == Some(HaRole::Slave) { 0 } else { 100 };
                for net in &c.remote_subnets {
                    if !routes.iter().any(|r| r.dest == *net && r.tunnel_id == c.id) {
                        routes.push(RouteIntent { dest: *net, tunnel_id: c.id.clone(), weight, published: true });
                    }
                }
            }
            routes
        },
        policy_routes: policy
            .into_iter()
            .filter_map(|r| {
                Some(PolicyRouteIntent {
                    source: r.source?,
                    dest: r.dest,
                    tunnel_id: r.next_hop.clone(),
                    weight: r.weight,
                    priority: r.priority.unwrap_or(10),
                    published: r.published,
                })
            })
            .collect(),
    }
}
