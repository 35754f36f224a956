//! IPsec connections (seed section 7).

use std::net::Ipv4Addr;

use openvgw_control::connections::{
    BgpPatch, ConnectionChanges, ConnectionFilter, ConnectionView, HealthCheckPatch, IkePatch, IpsecPatch,
    NewConnection, PeerConfig, PublicIpRef,
};
use openvgw_core::crypto::{IdentityType, IkeConfig, IpsecConfig};
use openvgw_core::model::{BgpSessionState, ConnectionMode, Extensions, HealthCheck};
use openvgw_core::{validate, Field, Secret};
use serde::Serialize;

use super::{cidrs, name, req_cidrs, tag_filters, tags_param, Empty, Paged, TagSet};
use crate::action::Call;
use crate::defaults;
use crate::error::WireError;
use crate::params::Json;
use crate::spelling;

/// Alibaba's lifetimes are 0-86400 seconds.
fn lifetime(param: &str, v: Option<u32>) -> Result<Option<u32>, WireError> {
    match v {
        Some(v) if v > 86_400 => Err(WireError::invalid(param, "lifetimes are 0-86400 seconds")),
        other => Ok(other),
    }
}

fn identity(v: String) -> (IdentityType, String) {
    let t = if v.parse::<Ipv4Addr>().is_ok() { IdentityType::Ip } else { IdentityType::Fqdn };
    (t, v)
}

pub(crate) fn ike_patch(j: Option<Json>) -> Result<IkePatch, WireError> {
    let Some(j) = j else {
        return Ok(IkePatch::default());
    };
    let dh_group = match j.str(&["IkePfs"])? {
        None => None,
        Some(s) if s.eq_ignore_ascii_case("disabled") => {
            return Err(WireError::invalid("IkeConfig", "IkePfs cannot be disabled"))
        }
        Some(s) => Some(
            spelling::dh_group::parse(&s)
                .ok_or_else(|| WireError::invalid("IkeConfig", format!("IkePfs {s} is not supported")))?,
        ),
    };
    Ok(IkePatch {
        version: j.parsed(&["IkeVersion"], spelling::ike_version::parse)?,
        mode: j.parsed(&["IkeMode"], spelling::ike_mode::parse)?,
        encryption: j.parsed(&["IkeEncAlg"], spelling::encryption::parse)?,
        integrity: j.parsed(&["IkeAuthAlg"], spelling::integrity::parse)?,
        dh_group,
        lifetime_s: lifetime("IkeConfig", j.u32(&["IkeLifetime"])?)?,
        // The seed spells the local id `LocalIdIPsec` in one place.
        local_id: j.str(&["LocalId", "LocalIdIPsec"])?.map(identity),
        remote_id: j.str(&["RemoteId"])?.map(identity),
        dpd: None,
    })
}

pub(crate) fn ipsec_patch(j: Option<Json>) -> Result<IpsecPatch, WireError> {
    let Some(j) = j else {
        return Ok(IpsecPatch::default());
    };
    Ok(IpsecPatch {
        encryption: j.parsed(&["IpsecEncAlg"], spelling::encryption::parse)?,
        integrity: j.parsed(&["IpsecAuthAlg"], spelling::integrity::parse)?,
        pfs: j.parsed(&["IpsecPfs"], spelling::parse_pfs)?,
        lifetime_s: lifetime("IpsecConfig", j.u32(&["IpsecLifetime"])?)?,
    })
}

fn health_patch(j: Option<Json>) -> Result<HealthCheckPatch, WireError> {
    let Some(j) = j else {
        return Ok(HealthCheckPatch::default());
    };
    let ip = |keys: &[&str]| -> Result<Option<Ipv4Addr>, WireError> {
        j.str(keys)?
            .map(|v| {
                validate::ipv4(&v, Field::HealthCheck)
                    .map_err(|_| WireError::invalid("HealthCheckConfig", format!("{} is not an IPv4 address", keys[1])))
            })
            .transpose()
    };
    let interval_s = j.u32(&["interval", "Interval"])?;
    let retry = j.u32(&["retry", "Retry"])?;
    if interval_s.is_some_and(|v| !(1..=3600).contains(&v)) || retry.is_some_and(|v| !(1..=100).contains(&v)) {
        return Err(WireError::invalid("HealthCheckConfig", "interval must be 1-3600 s and retry 1-100"));
    }
    Ok(HealthCheckPatch {
        enable: j.bool(&["enable", "Enable"])?,
        dip: ip(&["dip", "Dip"])?,
        sip: ip(&["sip", "Sip"])?,
        interval_s,
        retry,
    })
}

fn bgp_patch(c: &Call, j: Option<Json>) -> Result<BgpPatch, WireError> {
    let Some(j) = j else {
        return Ok(BgpPatch::default());
    };
    let local_asn = j
        .str(&["LocalAsn"])?
        .map(|v| validate::asn(&v).map_err(|_| WireError::invalid("BgpConfig", "LocalAsn must be 1-4294967295")))
        .transpose()?;
    Ok(BgpPatch {
        enable: j.bool(&["EnableBgp", "enableBgp"])?,
        local_asn,
        tunnel_cidr: j
            .str(&["TunnelCidr"])?
            .map(|v| validate::cidr(&v, Field::TunnelCidr))
            .transpose()
            .map_err(|e| c.core(e))?,
        local_ip: j
            .str(&["LocalBgpIp"])?
            .map(|v| validate::ipv4(&v, Field::TunnelLocalAddress))
            .transpose()
            .map_err(|e| c.core(e))?,
        peer_ip: None,
    })
}

fn psk(c: &Call) -> Result<Option<Secret>, WireError> {
    let Some(j) = c.p.json("IkeConfig")? else {
        return Ok(None);
    };
    match j.str(&["Psk"])? {
        None => Ok(None),
        Some(p) => {
            validate::psk(&p, 100).map_err(|e| c.core(e))?;
            Ok(Some(Secret::new(p)))
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Created {
    vpn_connection_id: String,
    name: String,
    create_time: i64,
}

/// Dual-tunnel connections (`EnableTunnelsBgp`, `TunnelOptionsSpecification.N.*`; in the SDK, not in the seed) are
/// refused: ignoring them would make a single-tunnel connection the caller did not ask for.
fn refuse_dual_tunnel(p: &crate::params::Params) -> Result<(), WireError> {
    let dual = p.pairs().any(|(k, _)| k.starts_with("TunnelOptionsSpecification"))
        || p.bool("EnableTunnelsBgp")? == Some(true);
    if dual {
        return Err(WireError::new(
            400,
            "OperationUnsupported",
            "Dual-tunnel connections (TunnelOptionsSpecification, EnableTunnelsBgp) are not supported; create one connection per tunnel.",
        ));
    }
    Ok(())
}

pub fn create(c: &Call) -> Result<Created, WireError> {
    let p = c.p;
    refuse_dual_tunnel(p)?;
    let gateway_id = p.req("VpnGatewayId")?.to_string();
    let customer_gateway_id = p.req("CustomerGatewayId")?.to_string();
    let local_subnets = req_cidrs(c, "LocalSubnet", Field::LocalSubnets)?;
    let remote_subnets = req_cidrs(c, "RemoteSubnet", Field::RemoteSubnets)?;
    let name = name(c, "Name", 2, 128, true)?;
    let mut ike: IkeConfig = defaults::connection_ike();
    ike_patch(p.json("IkeConfig")?)?.apply(&mut ike).map_err(|e| c.core(e))?;
    let mut ipsec: IpsecConfig = defaults::connection_ipsec();
    ipsec_patch(p.json("IpsecConfig")?)?.apply(&mut ipsec);
    let mut health_check: HealthCheck = defaults::health_check();
    health_patch(p.json("HealthCheckConfig")?)?.apply(&mut health_check);
    let mut bgp = bgp_patch(c, p.json("BgpConfig")?)?;
    bgp.local_asn = bgp.local_asn.or(Some(defaults::LOCAL_ASN));
    let mut tags = tags_param(c, "Tags")?;
    tags.extend(tags_param(c, "Tag")?);
    let input = NewConnection {
        gateway_id,
        customer_gateway_id,
        name,
        description: String::new(),
        public_ip: PublicIpRef::Index(0),
        mode: ConnectionMode::Policy,
        local_subnets,
        remote_subnets,
        policy_rules: vec![],
        bgp,
        allocate_inside: false,
        psk: psk(c)?,
        ike,
        ipsec,
        health_check,
        initiate: p.bool("EffectImmediately")?.unwrap_or(false),
        dpd: p.bool("EnableDpd")?.unwrap_or(true),
        nat_traversal: p.bool("EnableNatTraversal")?.unwrap_or(true),
        auto_route: p.bool("AutoConfigRoute")?.unwrap_or(true),
        ha_role: None,
        remote_ca_certificate: p.string("RemoteCaCertificate").unwrap_or_default(),
        tags,
        ext: Extensions::default(),
    };
    let conn = c.svc.create_connection(&c.ctx()?, input).map_err(|e| c.core(e))?;
    Ok(Created { vpn_connection_id: conn.id, name: conn.name, create_time: conn.created_at })
}

pub fn modify(c: &Call) -> Result<View, WireError> {
    refuse_dual_tunnel(c.p)?;
    let p = c.p;
    let id = p.req("VpnConnectionId")?;
    let changes = ConnectionChanges {
        name: name(c, "Name", 2, 128, true)?,
        description: None,
        local_subnets: cidrs(c, "LocalSubnet", Field::LocalSubnets)?,
        remote_subnets: cidrs(c, "RemoteSubnet", Field::RemoteSubnets)?,
        policy_rules: None,
        initiate: p.bool("EffectImmediately")?,
        ike: ike_patch(p.json("IkeConfig")?)?,
        psk: psk(c)?,
        ipsec: ipsec_patch(p.json("IpsecConfig")?)?,
        health_check: health_patch(p.json("HealthCheckConfig")?)?,
        auto_route: p.bool("AutoConfigRoute")?,
        dpd: p.bool("EnableDpd")?,
        nat_traversal: p.bool("EnableNatTraversal")?,
        bgp: bgp_patch(c, p.json("BgpConfig")?)?,
        remote_ca_certificate: p.string("RemoteCaCertificate"),
        customer_gateway_id: None,
        ext: None,
    };
    let conn = c.svc.modify_connection(&c.ctx()?, id, changes).map_err(|e| c.core(e))?;
    let mut v = view(&conn, false);
    v.description = Some(String::new());
    Ok(v)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IkeView {
    ike_version: &'static str,
    ike_mode: &'static str,
    ike_enc_alg: &'static str,
    ike_auth_alg: &'static str,
    ike_pfs: &'static str,
    ike_lifetime: u32,
    local_id: String,
    remote_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    psk: Option<String>,
}

pub(crate) fn ike_view(ike: &IkeConfig, psk: Option<&Secret>) -> IkeView {
    IkeView {
        ike_version: spelling::ike_version::render(ike.version),
        ike_mode: spelling::ike_mode::render(ike.mode),
        ike_enc_alg: spelling::encryption::render(ike.encryption),
        ike_auth_alg: spelling::integrity::render(ike.integrity),
        ike_pfs: spelling::dh_group::render(ike.dh_group),
        ike_lifetime: ike.lifetime_s,
        local_id: ike.local_id.clone(),
        remote_id: ike.remote_id.clone(),
        psk: psk.map(|p| p.expose().to_string()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpsecView {
    ipsec_enc_alg: &'static str,
    ipsec_auth_alg: &'static str,
    ipsec_pfs: &'static str,
    ipsec_lifetime: u32,
}

pub(crate) fn ipsec_view(ipsec: &IpsecConfig) -> IpsecView {
    IpsecView {
        ipsec_enc_alg: spelling::encryption::render(ipsec.encryption),
        ipsec_auth_alg: spelling::integrity::render(ipsec.integrity),
        ipsec_pfs: spelling::pfs(ipsec.pfs),
        ipsec_lifetime: ipsec.lifetime_s,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthView {
    /// `"true"` / `"false"`: the SDK declares these strings.
    enable: String,
    dip: String,
    sip: String,
    interval: u32,
    retry: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BgpView {
    enable_bgp: String,
    local_asn: u64,
    tunnel_cidr: String,
    local_bgp_ip: String,
    peer_bgp_ip: String,
    auth_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_asn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct View {
    vpn_connection_id: String,
    vpn_gateway_id: String,
    customer_gateway_id: String,
    name: String,
    local_subnet: String,
    remote_subnet: String,
    create_time: i64,
    effect_immediately: bool,
    status: &'static str,
    enable_dpd: bool,
    enable_nat_traversal: bool,
    auto_config_route: bool,
    remote_ca_certificate: String,
    ike_config: IkeView,
    ipsec_config: IpsecView,
    vco_health_check: HealthView,
    vpn_bgp_config: BgpView,
    /// DescribeVpnConnection calls the tag list `Tags`; the items of DescribeVpnConnections call it `Tag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<TagSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<TagSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

fn opt_ip(ip: Option<Ipv4Addr>) -> String {
    ip.map(|a| a.to_string()).unwrap_or_default()
}

fn view(t: &ConnectionView, list_item: bool) -> View {
    let c = &t.connection;
    let peer = &t.customer_gateway;
    let h = &c.health_check;
    let inside = c.inside.as_ref();
    let tags = TagSet::of(&t.tags);
    View {
        vpn_connection_id: c.id.clone(),
        vpn_gateway_id: c.gateway_id.clone(),
        customer_gateway_id: c.customer_gateway_id.clone(),
        name: c.name.clone(),
        local_subnet: openvgw_core::model::join_nets(&c.local_subnets),
        remote_subnet: openvgw_core::model::join_nets(&c.remote_subnets),
        create_time: c.created_at,
        effect_immediately: c.initiate,
        status: spelling::tunnel_state::render(c.state),
        enable_dpd: c.dpd,
        enable_nat_traversal: c.nat_traversal,
        auto_config_route: c.auto_route,
        remote_ca_certificate: c.remote_ca_certificate.clone(),
        ike_config: ike_view(&c.ike, Some(&c.psk)),
        ipsec_config: ipsec_view(&c.ipsec),
        vco_health_check: HealthView {
            enable: h.enable.to_string(),
            dip: opt_ip(h.dip),
            sip: opt_ip(h.sip),
            interval: h.interval_s,
            retry: h.retry,
            status: h.enable.then_some(if c.health_ok == Some(true) { "success" } else { "failed" }),
        },
        vpn_bgp_config: BgpView {
            enable_bgp: c.bgp.enable.to_string(),
            local_asn: c.bgp.local_asn,
            tunnel_cidr: inside.map(|i| i.cidr.to_string()).unwrap_or_default(),
            local_bgp_ip: opt_ip(inside.and_then(|i| i.local)),
            peer_bgp_ip: opt_ip(inside.and_then(|i| i.peer())),
            auth_key: peer.bgp_auth_key.as_ref().map(|k| k.expose().to_string()).unwrap_or_default(),
            peer_asn: peer.asn,
            // The session as the data plane last saw it.
            status: c.bgp.enable.then_some(
                if c.bgp_session.as_ref().is_some_and(|s| s.state == BgpSessionState::Established) {
                    "success"
                } else {
                    "false"
                },
            ),
        },
        tags: (!list_item).then(|| TagSet::of(&t.tags)),
        tag: list_item.then_some(tags),
        description: None,
    }
}

pub fn describe(c: &Call) -> Result<View, WireError> {
    let conn = c.svc.get_connection(c.scope, c.p.req("VpnConnectionId")?).map_err(|e| c.core(e))?;
    Ok(view(&conn, false))
}

#[derive(Serialize)]
pub struct ConnectionList {
    #[serde(rename = "VpnConnection")]
    vpn_connection: Vec<View>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listed {
    vpn_connections: ConnectionList,
}

pub fn describe_all(c: &Call) -> Result<Paged<Listed>, WireError> {
    let page = c.p.page()?;
    let f = ConnectionFilter {
        gateway_id: c.p.string("VpnGatewayId"),
        customer_gateway_id: c.p.string("CustomerGatewayId"),
        connection_id: c.p.string("VpnConnectionId"),
        tags: tag_filters(c.p)?,
    };
    let listed = c.svc.list_connections(c.scope, &f, &page.request()).map_err(|e| c.core(e))?;
    let items = listed.items.iter().map(|v| view(v, true)).collect();
    Ok(Paged::new(Listed { vpn_connections: ConnectionList { vpn_connection: items } }, page, listed.total))
}

/// The ASNs are strings here, unlike `VpnBgpConfig`'s numbers: the SDKs' model of this answer declares them so, and
/// a typed decoder (Go's, Java's; the Node SDK's audit in the interop suite) refuses a number.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerBgp {
    enable_bgp: &'static str,
    local_asn: String,
    local_bgp_ip: String,
    tunnel_cidr: String,
    peer_asn: Option<String>,
    peer_bgp_ip: String,
}

#[derive(Serialize)]
pub struct PeerBgpList {
    #[serde(rename = "BgpConfig")]
    bgp_config: Vec<PeerBgp>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerView {
    local: String,
    remote: String,
    local_subnet: String,
    remote_subnet: String,
    ike_config: IkeView,
    ipsec_config: IpsecView,
    bgp_configs: PeerBgpList,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Downloaded {
    vpn_connection_config: PeerView,
}

fn peer_view(p: &PeerConfig) -> PeerView {
    let c = &p.connection;
    let inside = c.inside.as_ref();
    let bgp = c.bgp.enable.then(|| PeerBgp {
        enable_bgp: "true",
        local_asn: c.bgp.local_asn.to_string(),
        local_bgp_ip: opt_ip(inside.and_then(|i| i.local)),
        tunnel_cidr: inside.map(|i| i.cidr.to_string()).unwrap_or_default(),
        peer_asn: p.remote_asn.map(|a| a.to_string()),
        peer_bgp_ip: opt_ip(inside.and_then(|i| i.peer())),
    });
    PeerView {
        local: p.local.to_string(),
        remote: p.remote.address().map(|a| a.to_string()).unwrap_or_default(),
        local_subnet: openvgw_core::model::join_nets(&c.local_subnets),
        remote_subnet: openvgw_core::model::join_nets(&c.remote_subnets),
        ike_config: ike_view(&c.ike, Some(&c.psk)),
        ipsec_config: ipsec_view(&c.ipsec),
        bgp_configs: PeerBgpList { bgp_config: bgp.into_iter().collect() },
    }
}

pub fn download_config(c: &Call) -> Result<Downloaded, WireError> {
    let pc = c.svc.peer_config(c.scope, c.p.req("VpnConnectionId")?).map_err(|e| c.core(e))?;
    Ok(Downloaded { vpn_connection_config: peer_view(&pc) })
}

pub fn delete(c: &Call) -> Result<Empty, WireError> {
    c.svc.delete_connection(&c.ctx()?, c.p.req("VpnConnectionId")?).map_err(|e| c.core(e))?;
    Ok(Empty {})
}
