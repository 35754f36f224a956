//! Compiles a gateway's tree into the neutral intent: a pure function, so what the data plane is told can be tested
//! without a store or a driver.

use ipnet::Ipv4Net;
use openvgw_control::reconcile::{GatewayTree, SslServerTree};
use openvgw_core::model::{
    ClientAuth, ConnectionMode, CustomerGateway, HaRole, RouteEntry, RouteOrigin, Tunnel, VpnConnection,
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
fn bgp(t: &GatewayTree, c: &VpnConnection, tunnel: &Tunnel, cgw: &CustomerGateway) -> Option<BgpIntent> {
    if !tunnel.bgp.enable {
        return None;
    }
    let inside = tunnel.inside.as_ref()?;
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
        local_asn: u32::try_from(tunnel.bgp.local_asn).ok()?,
        peer_asn: u32::try_from(cgw.asn?).ok()?,
        local_ip: inside.local?,
        peer_ip: inside.peer()?,
        prefix_len: inside.cidr.prefix_len(),
        auth_key: cgw.bgp_auth_key.clone(),
        advertise,
        refuse: t.vpc_cidr.into_iter().collect(),
    })
}

/// One tunnel of a connection: a dual-tunnel connection's tunnels share its subnets and health check.
fn tunnel_intent(
    t: &GatewayTree,
    c: &VpnConnection,
    id: String,
    tunnel: &Tunnel,
    cgw: &CustomerGateway,
    route_based: bool,
) -> TunnelIntent {
    let gw = &t.gateway;
    let local_ip = gw
        .public_ips
        .get(usize::from(tunnel.public_ip_index))
        .or(gw.public_ips.first())
        .map(|p| p.address)
        .unwrap_or(gw.private_ip);
    TunnelIntent {
        id,
        local_ip,
        remote_ip: cgw.address(),
        psk: tunnel.psk.clone(),
        ike: tunnel.ike.clone(),
        ipsec: tunnel.ipsec.clone(),
        local_subnets: c.local_subnets.clone(),
        remote_subnets: c.remote_subnets.clone(),
        selectors: c
            .policy_rules
            .iter()
            .map(|r| Selector { local: vec![r.source], remote: r.destinations.clone() })
            .collect(),
        initiate: c.initiate,
        dpd: tunnel.dpd,
        nat_traversal: tunnel.nat_traversal,
        route_based,
        health_check: c.health_check.enable.then(|| c.health_check.clone()),
        bgp: bgp(t, c, tunnel, cgw),
    }
}

/// A route over a dual-tunnel connection as its tunnels take it: the route names the connection, which the data
/// plane knows as its first tunnel; this adds the second, at the route's weight when it is the master and at 0
/// (standby) when it is the slave.
fn second_tunnel_route(c: &VpnConnection, dest: Ipv4Net, weight: u32, published: bool) -> Option<RouteIntent> {
    let second = c.second_tunnel.as_ref()?;
    let weight = if second.role == HaRole::Master { weight } else { 0 };
    Some(RouteIntent { dest, tunnel_id: second.id.clone(), weight, published })
}

/// The weight of a route over a dual-tunnel connection's first tunnel: 0 (standby) when it is the slave.
fn first_tunnel_weight(c: &VpnConnection, weight: u32) -> u32 {
    if c.second_tunnel.is_some() && c.ha_role == Some(HaRole::Slave) {
        0
    } else {
        weight
    }
}

pub fn compile(t: &GatewayTree) -> GatewayIntent {
    let gw = &t.gateway;
    let mut tunnels = Vec::new();
    for (c, first_peer) in &t.connections {
        // A tunnel is route-based when its mode says so, when it selects everything, when destination routes point
        // at it (Alibaba's destination-route mode), or when it is one of two (the routes choose between them).
        let route_based = matches!(c.mode, ConnectionMode::Static | ConnectionMode::Bgp)
            || (any(&c.local_subnets) && any(&c.remote_subnets))
            || t.routes.iter().any(|r| !r.is_policy() && r.next_hop == c.id)
            || c.second_tunnel.is_some();
        for (id, tunnel) in c.tunnels() {
            let cgw = if id == c.id { Some(first_peer) } else { t.second_peers.get(&tunnel.customer_gateway_id) };
            if let Some(cgw) = cgw {
                tunnels.push(tunnel_intent(t, c, id, &tunnel, cgw, route_based));
            }
        }
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
        vpc_router: Default::default(),
        private_ip: gw.private_ip,
        second_private_ip: gw.second_private_ip,
        bandwidth_mbps: gw.bandwidth_mbps,
        tunnels,
        ssl_servers,
        ipsec_server,
        routes: {
            let mut routes: Vec<RouteIntent> = Vec::new();
            for r in dest {
                let dual = t.connections.iter().find(|(c, _)| c.id == r.next_hop).map(|(c, _)| c);
                routes.push(RouteIntent {
                    dest: r.dest,
                    tunnel_id: r.next_hop.clone(),
                    weight: dual.map_or(r.weight, |c| first_tunnel_weight(c, r.weight)),
                    published: r.published,
                });
                routes.extend(dual.and_then(|c| second_tunnel_route(c, r.dest, r.weight, r.published)));
            }
            // Static route-based connections that route their own remote subnets (BGP learns its routes).
            for (c, _) in &t.connections {
                // A dual-tunnel connection routes its remote subnets over its master, the slave standing by.
                if c.second_tunnel.is_some() && c.mode != ConnectionMode::Bgp && c.auto_route {
                    for net in c.remote_subnets.iter().filter(|n| n.prefix_len() > 0) {
                        if !routes.iter().any(|r| r.dest == *net && r.tunnel_id == c.id) {
                            let weight = first_tunnel_weight(c, 100);
                            routes.push(RouteIntent { dest: *net, tunnel_id: c.id.clone(), weight, published: true });
                            routes.extend(second_tunnel_route(c, *net, 100, true));
                        }
                    }
                    continue;
                }
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
