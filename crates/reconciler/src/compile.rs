//! Compiles a gateway and its children into the neutral intent.

use openvgw_control::Service;
use openvgw_core::config::Config;
use openvgw_core::model::{CustomerGateway, IpsecServer, RouteEntry, SslVpnServer, VpnConnection, VpnGateway};
use openvgw_core::{Error, Result};
use openvgw_dataplane::{
    GatewayIntent, IpsecServerIntent, PolicyRouteIntent, RouteIntent, Secret, SslServerIntent, TunnelIntent,
};
use openvgw_store::Tx;

fn split(list: &str) -> Vec<String> {
    list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

pub fn compile(tx: &Tx, config: &Config, gw: &VpnGateway) -> Result<GatewayIntent> {
    let vpc_cidr = match config.vpcs.iter().find(|v| v.id == gw.vpc_id) {
        Some(v) => v.cidr.clone(),
        None => openvgw_control::gateways::find_vpc(tx, &gw.scope, &gw.vpc_id)?.map(|v| v.cidr).unwrap_or_default(),
    };
    let routes: Vec<RouteEntry> = tx.children_unscoped(&gw.id)?;
    let mut tunnels = Vec::new();
    for c in tx.children_unscoped::<VpnConnection>(&gw.id)? {
        let cgw: CustomerGateway = tx
            .get(&c.scope, &c.customer_gateway_id)?
            .ok_or_else(|| Error::internal(format!("connection {} lost its customer gateway", c.id)))?;
        let any = |s: &str| s == "0.0.0.0/0";
        let route_based = (any(&c.local_subnet) && any(&c.remote_subnet))
            || routes.iter().any(|r| !r.is_policy() && r.next_hop == c.id);
        tunnels.push(TunnelIntent {
            id: c.id.clone(),
            local_ip: gw.internet_ip.clone(),
            remote_ip: cgw.ip_address.clone(),
            local_id: c.ike.local_id.clone(),
            remote_id: c.ike.remote_id.clone(),
            psk: Secret(c.psk.clone()),
            ike: c.ike.clone(),
            ipsec: c.ipsec.clone(),
            local_subnets: split(&c.local_subnet),
            remote_subnets: split(&c.remote_subnet),
            initiate: c.effect_immediately,
            dpd: c.enable_dpd,
            nat_traversal: c.enable_nat_traversal,
            route_based,
            health_check: c.health_check.enable.then(|| c.health_check.clone()),
        });
    }
    let mut ssl_servers = Vec::new();
    for s in tx.children_unscoped::<SslVpnServer>(&gw.id)? {
        ssl_servers.push(SslServerIntent {
            crl_pem: Service::crl_of(&s)?,
            id: s.id.clone(),
            port: s.port,
            proto: s.proto.clone(),
            cipher: s.cipher.clone(),
            compress: s.compress,
            client_ip_pool: s.client_ip_pool.clone(),
            local_subnets: split(&s.local_subnet),
            max_connections: gw.ssl_connections,
            ca_cert_pem: s.ca_cert_pem.clone(),
            server_cert_pem: s.server_cert_pem.clone(),
            server_key_pem: Secret(s.server_key_pem.clone()),
        });
    }
    let ipsec_server = tx.children_unscoped::<IpsecServer>(&gw.id)?.into_iter().next().map(|s| IpsecServerIntent {
        id: s.id.clone(),
        client_ip_pool: s.client_ip_pool.clone(),
        local_subnets: split(&s.local_subnet),
        local_id: s.ike.local_id.clone(),
        remote_id: s.ike.remote_id.clone(),
        psk: Secret(s.psk.clone()),
        ike: s.ike.clone(),
        ipsec: s.ipsec.clone(),
    });
    let (policy, dest): (Vec<&RouteEntry>, Vec<&RouteEntry>) = routes.iter().partition(|r| r.is_policy());
    Ok(GatewayIntent {
        gateway_id: gw.id.clone(),
        tenant_id: gw.scope.tenant_id.clone(),
        generation: gw.generation,
        public_ip: gw.internet_ip.clone(),
        vpc_id: gw.vpc_id.clone(),
        vpc_cidr,
        private_ip: gw.intranet_ip.clone(),
        bandwidth_mbps: gw.bandwidth_mbps,
        tunnels,
        ssl_servers,
        ipsec_server,
        routes: dest
            .into_iter()
            .map(|r| RouteIntent {
                dest: r.route_dest.clone(),
                tunnel_id: r.next_hop.clone(),
                weight: r.weight,
                published: r.published,
            })
            .collect(),
        policy_routes: policy
            .into_iter()
            .map(|r| PolicyRouteIntent {
                source: r.route_source.clone().unwrap_or_default(),
                dest: r.route_dest.clone(),
                tunnel_id: r.next_hop.clone(),
                weight: r.weight,
                priority: r.priority.unwrap_or(10),
                published: r.published,
            })
            .collect(),
    })
}
