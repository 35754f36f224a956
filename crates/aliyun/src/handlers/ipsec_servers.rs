//! IPsec servers (seed section 9).

use openvgw_control::ipsec_servers::{IpsecServerChanges, NewIpsecServer};
use openvgw_core::model::{IpsecServer, VpnGateway};
use openvgw_core::{validate, Error, Field, Rule, Secret};
use serde::Serialize;

use super::connections::{ike_patch, ike_view, ipsec_patch, ipsec_view, IkeView, IpsecView};
use super::WireAddr;
use super::{cidrs, iso8601, Empty};
use crate::action::Call;
use crate::defaults;
use crate::error::WireError;
use crate::params::encode_token;

fn pool(c: &Call) -> Result<Option<ipnet::Ipv4Net>, WireError> {
    let Some(v) = c.p.get("ClientIpPool") else {
        return Ok(None);
    };
    let net = validate::cidr(v, Field::ClientIpPool).map_err(|e| c.core(e))?;
    if !(16..=29).contains(&net.prefix_len()) {
        return Err(c.core(Error::invalid(Field::ClientIpPool, Rule::PrefixLength { min: 16, max: 29 })));
    }
    Ok(Some(net))
}

/// CreateIpsecServer spells the name `IpSecServerName`; Update uses `IpsecServerName`.
fn server_name(c: &Call) -> Result<Option<String>, WireError> {
    match c.p.string("IpSecServerName").or_else(|| c.p.string("IpsecServerName")) {
        None => Ok(None),
        Some(n) => {
            validate::name(&n, 2, 128, false).map_err(|e| c.core(e))?;
            Ok(Some(n))
        }
    }
}

fn psk(c: &Call) -> Result<Option<Secret>, WireError> {
    if c.p.bool("PskEnabled")? == Some(false) {
        return Err(WireError::invalid("PskEnabled", "can only be true"));
    }
    match c.p.get("Psk") {
        None => Ok(None),
        Some(p) => {
            validate::psk(p, 100).map_err(|e| c.core(e))?;
            Ok(Some(Secret::new(p)))
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Created {
    ipsec_server_id: String,
    ipsec_server_name: String,
    vpn_gateway_id: String,
    region_id: String,
    creation_time: String,
}

pub fn create(c: &Call) -> Result<Created, WireError> {
    let p = c.p;
    p.req("LocalSubnet")?;
    p.req("ClientIpPool")?;
    let gateway_id = p.req("VpnGatewayId")?;
    let local_subnets =
        cidrs(c, "LocalSubnet", Field::LocalSubnets)?.ok_or_else(|| WireError::missing("LocalSubnet"))?;
    let client_ip_pool = pool(c)?.ok_or_else(|| WireError::missing("ClientIpPool"))?;
    let mut ike = defaults::ipsec_server_ike();
    ike_patch(p.json("IkeConfig")?)?.apply(&mut ike).map_err(|e| c.core(e))?;
    let mut ipsec = defaults::ipsec_server_ipsec();
    ipsec_patch(p.json("IpsecConfig")?)?.apply(&mut ipsec);
    let spec = NewIpsecServer {
        name: server_name(c)?,
        local_subnets,
        client_ip_pool,
        initiate: p.bool("EffectImmediately")?.unwrap_or(false),
        ike,
        ipsec,
        psk: psk(c)?,
    };
    let s = c.svc.create_ipsec_server(&c.ctx()?, gateway_id, spec).map_err(|e| c.core(e))?;
    Ok(Created {
        creation_time: iso8601(s.created_at),
        ipsec_server_id: s.id,
        ipsec_server_name: s.name,
        vpn_gateway_id: s.gateway_id,
        region_id: s.scope.region,
    })
}

pub fn update(c: &Call) -> Result<Empty, WireError> {
    let p = c.p;
    let id = p.req("IpsecServerId")?;
    let changes = IpsecServerChanges {
        name: server_name(c)?,
        local_subnets: cidrs(c, "LocalSubnet", Field::LocalSubnets)?,
        client_ip_pool: pool(c)?,
        initiate: p.bool("EffectImmediately")?,
        ike: ike_patch(p.json("IkeConfig")?)?,
        ipsec: ipsec_patch(p.json("IpsecConfig")?)?,
        psk_enabled: None,
        psk: psk(c)?,
    };
    c.svc.update_ipsec_server(&c.ctx()?, id, changes).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

pub fn delete(c: &Call) -> Result<Empty, WireError> {
    c.svc.delete_ipsec_server(&c.ctx()?, c.p.req("IpsecServerId")?).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct View {
    ipsec_server_id: String,
    ipsec_server_name: String,
    vpn_gateway_id: String,
    region_id: String,
    creation_time: String,
    internet_ip: WireAddr,
    local_subnet: String,
    client_ip_pool: String,
    effect_immediately: bool,
    psk_enabled: bool,
    psk: String,
    online_client_count: u32,
    max_connections: u32,
    multi_factor_auth_enabled: bool,
    #[serde(rename = "IDaaSInstanceId")]
    idaas_instance_id: String,
    ike_config: IkeView,
    ipsec_config: IpsecView,
}

fn view(s: &IpsecServer, gw: &VpnGateway) -> View {
    View {
        ipsec_server_id: s.id.clone(),
        ipsec_server_name: s.name.clone(),
        vpn_gateway_id: s.gateway_id.clone(),
        region_id: s.scope.region.clone(),
        creation_time: iso8601(s.created_at),
        internet_ip: WireAddr(gw.primary_ip()),
        local_subnet: openvgw_core::model::join_nets(&s.local_subnets),
        client_ip_pool: s.client_ip_pool.to_string(),
        effect_immediately: s.initiate,
        psk_enabled: s.psk_enabled,
        psk: s.psk.expose().to_string(),
        online_client_count: s.online_clients,
        max_connections: gw.ssl_max_connections,
        multi_factor_auth_enabled: false,
        idaas_instance_id: String::new(),
        ike_config: ike_view(&s.ike, None),
        ipsec_config: ipsec_view(&s.ipsec),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listed {
    ipsec_servers: Vec<View>,
    total_count: u64,
    max_results: u64,
    next_token: String,
}

pub fn list(c: &Call) -> Result<Listed, WireError> {
    let page = c.p.token_page(10, 20)?;
    let found = c
        .svc
        .list_ipsec_servers(c.scope, c.p.get("VpnGatewayId"), c.p.get("IpsecServerName"), &page)
        .map_err(|e| c.core(e))?;
    Ok(Listed {
        ipsec_servers: found.items.iter().map(|(s, g)| view(s, g)).collect(),
        total_count: found.total,
        max_results: page.limit(),
        next_token: encode_token(found.next.as_ref()),
    })
}
