//! IPsec connections (seed section 7).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use openvgw_control::connections::{
    BgpPatch, ConnectionChanges, ConnectionFilter, ConnectionView, HealthCheckPatch, IkePatch, IpsecPatch,
    NewConnection, NewTunnel, PeerConfig, PublicIpRef, TunnelChanges,
};
use openvgw_core::crypto::{IdentityType, IkeConfig, IpsecConfig};
use openvgw_core::model::{
    BgpSession, BgpSessionState, ConnectionMode, CustomerGateway, Extensions, HaRole, HealthCheck, Tunnel,
    VpnConnection,
};
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
    psk_of(c, c.p.json("IkeConfig")?.as_ref())
}

fn psk_of(c: &Call, ike: Option<&Json>) -> Result<Option<Secret>, WireError> {
    let Some(j) = ike else {
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

const TUNNELS: &str = "TunnelOptionsSpecification";

/// One `TunnelOptionsSpecification.N` of a dual-tunnel request (in the SDK, not in the seed), flattened by the SDKs
/// into `TunnelOptionsSpecification.N.TunnelIkeConfig.IkeVersion=…`.
struct TunnelSpec(BTreeMap<String, String>);

/// A tunnel's own fields, and the objects whose fields it carries (`TunnelIkeConfig.IkeVersion`).
const TUNNEL_FIELDS: &[&str] =
    &["CustomerGatewayId", "EnableDpd", "EnableNatTraversal", "RemoteCaCertificate", "Role", "TunnelIndex", "TunnelId"];
const TUNNEL_OBJECTS: &[&str] = &["TunnelIkeConfig", "TunnelIpsecConfig", "TunnelBgpConfig"];

impl TunnelSpec {
    fn all(p: &crate::params::Params) -> Result<Vec<TunnelSpec>, WireError> {
        let specs: Vec<TunnelSpec> = p.objects(TUNNELS)?.into_iter().map(TunnelSpec).collect();
        // A field nobody reads would be a setting silently dropped (an SDK that sent an object as one value).
        for field in specs.iter().flat_map(|s| s.0.keys()) {
            let known = TUNNEL_FIELDS.contains(&field.as_str())
                || field.split_once('.').is_some_and(|(object, _)| TUNNEL_OBJECTS.contains(&object));
            if !known {
                return Err(WireError::invalid(
                    TUNNELS,
                    format!("{field} is not a tunnel setting (an object's fields are sent as {field}.Field)"),
                ));
            }
        }
        Ok(specs)
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn bool(&self, field: &str) -> Result<Option<bool>, WireError> {
        self.get(field)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(WireError::invalid(TUNNELS, format!("{field} must be true or false"))),
            })
            .transpose()
    }

    /// A nested object (`TunnelIkeConfig.*`), read like the single-tunnel JSON parameters.
    fn object(&self, name: &str) -> Option<Json> {
        let dotted = format!("{name}.");
        let fields: Vec<(String, String)> =
            self.0.iter().filter_map(|(k, v)| k.strip_prefix(&dotted).map(|f| (f.to_string(), v.clone()))).collect();
        (!fields.is_empty()).then(|| Json::of_fields(TUNNELS, fields))
    }

    fn role(&self, default: HaRole) -> Result<HaRole, WireError> {
        match self.get("Role") {
            None => Ok(default),
            Some(r) if r.eq_ignore_ascii_case("master") => Ok(HaRole::Master),
            Some(r) if r.eq_ignore_ascii_case("slave") => Ok(HaRole::Slave),
            Some(_) => Err(WireError::invalid(TUNNELS, "Role must be master or slave")),
        }
    }

    fn ike(&self, c: &Call) -> Result<(IkeConfig, Option<Secret>), WireError> {
        let j = self.object("TunnelIkeConfig");
        let psk = psk_of(c, j.as_ref())?;
        let mut ike = defaults::connection_ike();
        ike_patch(j)?.apply(&mut ike).map_err(|e| c.core(e))?;
        Ok((ike, psk))
    }

    /// `TunnelIndex` (1 or 2), where the caller numbers the tunnels rather than listing them in order.
    fn index(&self) -> Result<Option<u8>, WireError> {
        self.get("TunnelIndex")
            .map(|v| match v {
                "1" => Ok(1),
                "2" => Ok(2),
                _ => Err(WireError::invalid(TUNNELS, "TunnelIndex must be 1 or 2")),
            })
            .transpose()
    }

    fn ipsec(&self) -> Result<IpsecConfig, WireError> {
        let mut ipsec = defaults::connection_ipsec();
        ipsec_patch(self.object("TunnelIpsecConfig"))?.apply(&mut ipsec);
        Ok(ipsec)
    }

    /// The tunnel's BGP: on with `EnableTunnelsBgp`, which needs its tunnel CIDR and local address.
    fn bgp(&self, c: &Call, enable: Option<bool>) -> Result<BgpPatch, WireError> {
        let mut bgp = bgp_patch(c, self.object("TunnelBgpConfig"))?;
        bgp.enable = enable;
        Ok(bgp)
    }
}

/// A core error about one tunnel's settings, named after the dual-tunnel parameter that carries them rather than
/// the single-tunnel one (`IkeConfig`, `BgpConfig`…).
fn tunnel_error(c: &Call, e: openvgw_core::Error) -> WireError {
    use openvgw_core::{Error, Rule};
    let Error::Invalid { field, rule } = &e else {
        return c.core(e);
    };
    match field {
        Field::GatewayAddress if *rule == Rule::NotApplicable => WireError::invalid(
            "VpnGatewayId",
            "the gateway has no second address for a second tunnel (create it with DisasterRecoveryVSwitchId)",
        ),
        Field::GatewayAddress => WireError::invalid(TUNNELS, format!("a tunnel's address and peer: {rule}")),
        // The settings a tunnel carries in its own objects: the message names the object.
        _ => match crate::error::param_name(*field) {
            "IkeConfig" | "Psk" => WireError::invalid(TUNNELS, format!("TunnelIkeConfig: {rule}")),
            "IpsecConfig" => WireError::invalid(TUNNELS, format!("TunnelIpsecConfig: {rule}")),
            "BgpConfig" => WireError::invalid(TUNNELS, format!("TunnelBgpConfig: {rule}")),
            "RemoteCaCertificate" => WireError::invalid(TUNNELS, format!("RemoteCaCertificate: {rule}")),
            _ => c.core(e),
        },
    }
}

/// Parameters that belong to each tunnel of a dual-tunnel connection: given beside `TunnelOptionsSpecification`
/// they would be ambiguous, so they are refused rather than applied to one tunnel or ignored.
const PER_TUNNEL: &[&str] =
    &["IkeConfig", "IpsecConfig", "BgpConfig", "EnableDpd", "EnableNatTraversal", "RemoteCaCertificate"];

fn refuse_per_tunnel(p: &crate::params::Params) -> Result<(), WireError> {
    match PER_TUNNEL.iter().find(|name| p.get(name).is_some()) {
        Some(name) => {
            Err(WireError::invalid(name, "a dual-tunnel connection sets it per tunnel, in TunnelOptionsSpecification"))
        }
        None => Ok(()),
    }
}

/// A dual-tunnel connection's two tunnels: the first on the gateway's first address, the second on its disaster
/// recovery address; the first is the master unless the request says otherwise.
fn dual_tunnels(c: &Call, specs: &[TunnelSpec]) -> Result<(NewTunnel, NewTunnel), WireError> {
    let [mut first, mut second] = match specs {
        [a, b] => [a, b],
        _ => return Err(WireError::invalid(TUNNELS, "a dual-tunnel connection has exactly two tunnels")),
    };
    match (first.index()?, second.index()?) {
        (None, None) | (Some(1), Some(2)) => {}
        (Some(2), Some(1)) => std::mem::swap(&mut first, &mut second),
        _ => return Err(WireError::invalid(TUNNELS, "TunnelIndex numbers the two tunnels 1 and 2")),
    }
    let enable_bgp = c.p.bool("EnableTunnelsBgp")?;
    let tunnel = |spec: &TunnelSpec, index: u8, role: HaRole| -> Result<NewTunnel, WireError> {
        let (ike, psk) = spec.ike(c)?;
        let mut bgp = spec.bgp(c, enable_bgp)?;
        bgp.local_asn = bgp.local_asn.or(Some(defaults::LOCAL_ASN));
        Ok(NewTunnel {
            customer_gateway_id: spec
                .get("CustomerGatewayId")
                .ok_or_else(|| WireError::missing("TunnelOptionsSpecification.N.CustomerGatewayId"))?
                .to_string(),
            public_ip: PublicIpRef::Index(index),
            role,
            psk,
            ike,
            ipsec: spec.ipsec()?,
            dpd: spec.bool("EnableDpd")?.unwrap_or(true),
            nat_traversal: spec.bool("EnableNatTraversal")?.unwrap_or(true),
            bgp,
            remote_ca_certificate: spec.get("RemoteCaCertificate").unwrap_or_default().to_string(),
        })
    };
    let first_role = first.role(HaRole::Master)?;
    let other = if first_role == HaRole::Master { HaRole::Slave } else { HaRole::Master };
    Ok((tunnel(first, 0, first_role)?, tunnel(second, 1, second.role(other)?)?))
}

pub fn create(c: &Call) -> Result<Created, WireError> {
    let p = c.p;
    let specs = TunnelSpec::all(p)?;
    let dual = if specs.is_empty() {
        if p.bool("EnableTunnelsBgp")? == Some(true) {
            return Err(WireError::invalid(
                "EnableTunnelsBgp",
                "applies to dual-tunnel connections (TunnelOptionsSpecification)",
            ));
        }
        None
    } else {
        refuse_per_tunnel(p)?;
        Some(dual_tunnels(c, &specs)?)
    };
    let gateway_id = p.req("VpnGatewayId")?.to_string();
    let customer_gateway_id = match &dual {
        Some((first, _)) => {
            // The connection-level customer gateway, when given, must be its first tunnel's.
            if p.get("CustomerGatewayId").is_some_and(|id| id != first.customer_gateway_id) {
                return Err(WireError::invalid("CustomerGatewayId", "differs from the first tunnel's"));
            }
            first.customer_gateway_id.clone()
        }
        None => p.req("CustomerGatewayId")?.to_string(),
    };
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
    let mut input = NewConnection {
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
        second_tunnel: None,
        tags,
        ext: Extensions::default(),
    };
    if let Some((first, second)) = dual {
        input = input.with_tunnels(first, second);
    }
    let dual = input.second_tunnel.is_some();
    let conn =
        c.svc.create_connection(&c.ctx()?, input).map_err(|e| if dual { tunnel_error(c, e) } else { c.core(e) })?;
    Ok(Created { vpn_connection_id: conn.id, name: conn.name, create_time: conn.created_at })
}

/// Changes to the tunnels of a dual-tunnel connection, each named by its `TunnelId`.
fn tunnel_changes(c: &Call, specs: &[TunnelSpec]) -> Result<Vec<TunnelChanges>, WireError> {
    let enable_bgp = c.p.bool("EnableTunnelsBgp")?;
    specs
        .iter()
        .map(|spec| {
            let ike = spec.object("TunnelIkeConfig");
            let role = match spec.get("Role") {
                None => None,
                Some(_) => Some(spec.role(HaRole::Master)?),
            };
            Ok(TunnelChanges {
                id: spec
                    .get("TunnelId")
                    .ok_or_else(|| WireError::missing("TunnelOptionsSpecification.N.TunnelId"))?
                    .to_string(),
                customer_gateway_id: spec.get("CustomerGatewayId").map(str::to_string),
                role,
                psk: psk_of(c, ike.as_ref())?,
                ike: ike_patch(ike)?,
                ipsec: ipsec_patch(spec.object("TunnelIpsecConfig"))?,
                dpd: spec.bool("EnableDpd")?,
                nat_traversal: spec.bool("EnableNatTraversal")?,
                bgp: spec.bgp(c, enable_bgp)?,
                remote_ca_certificate: spec.get("RemoteCaCertificate").map(str::to_string),
            })
        })
        .collect()
}

pub fn modify(c: &Call) -> Result<View, WireError> {
    let p = c.p;
    let specs = TunnelSpec::all(p)?;
    if !specs.is_empty() {
        refuse_per_tunnel(p)?;
    }
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
        tunnels: tunnel_changes(c, &specs)?,
    };
    let dual = !specs.is_empty();
    let conn =
        c.svc
            .modify_connection(&c.ctx()?, id, changes)
            .map_err(|e| if dual { tunnel_error(c, e) } else { c.core(e) })?;
    let mut v = view(&conn, false, Typing::Native);
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
    enable_tunnels_bgp: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel_options_specification: Option<TunnelOptionsList>,
    /// DescribeVpnConnection calls the tag list `Tags`; the items of DescribeVpnConnections call it `Tag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<TagSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<TagSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Serialize)]
pub struct TunnelOptionsList {
    #[serde(rename = "TunnelOptions")]
    tunnel_options: Vec<TunnelView>,
}

/// How the SDKs' models type a tunnel's flags, lifetimes and ASNs: strings in the Describe answers, booleans and
/// numbers in ModifyVpnConnectionAttribute's (which also has no status, index or BGP status). Typed decoders (Go's,
/// Java's) refuse the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typing {
    Strings,
    Native,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Flag(bool),
    Number(u64),
}

impl Typing {
    fn flag(self, v: bool) -> Scalar {
        match self {
            Typing::Strings => Scalar::Text(v.to_string()),
            Typing::Native => Scalar::Flag(v),
        }
    }

    fn number(self, v: u64) -> Scalar {
        match self {
            Typing::Strings => Scalar::Text(v.to_string()),
            Typing::Native => Scalar::Number(v),
        }
    }

    /// What only the Describe answers carry.
    fn described<T>(self, v: T) -> Option<T> {
        (self == Typing::Strings).then_some(v)
    }
}

/// One tunnel of a dual-tunnel connection.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TunnelView {
    tunnel_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel_index: Option<u32>,
    customer_gateway_id: String,
    internet_ip: String,
    role: &'static str,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    enable_dpd: Scalar,
    enable_nat_traversal: Scalar,
    remote_ca_certificate: String,
    zone_no: String,
    tunnel_ike_config: TunnelIkeView,
    tunnel_ipsec_config: TunnelIpsecView,
    tunnel_bgp_config: TunnelBgpView,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TunnelIkeView {
    ike_version: &'static str,
    ike_mode: &'static str,
    ike_enc_alg: &'static str,
    ike_auth_alg: &'static str,
    ike_pfs: &'static str,
    ike_lifetime: Scalar,
    local_id: String,
    remote_id: String,
    psk: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TunnelIpsecView {
    ipsec_enc_alg: &'static str,
    ipsec_auth_alg: &'static str,
    ipsec_pfs: &'static str,
    ipsec_lifetime: Scalar,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TunnelBgpView {
    #[serde(skip_serializing_if = "Option::is_none")]
    bgp_status: Option<&'static str>,
    local_asn: Scalar,
    local_bgp_ip: String,
    tunnel_cidr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_asn: Option<Scalar>,
    peer_bgp_ip: String,
}

/// `success` while the BGP session is established.
fn bgp_status(session: Option<&BgpSession>) -> &'static str {
    if session.is_some_and(|s| s.state == BgpSessionState::Established) {
        "success"
    } else {
        "false"
    }
}

fn role(r: HaRole) -> &'static str {
    match r {
        HaRole::Master => "master",
        HaRole::Slave => "slave",
    }
}

fn tunnel_view(
    t: &Tunnel,
    index: u32,
    address: Option<Ipv4Addr>,
    peer: Option<&CustomerGateway>,
    typing: Typing,
) -> TunnelView {
    let ike = &t.ike;
    let inside = t.inside.as_ref();
    let peer_asn = peer.and_then(|p| p.asn);
    TunnelView {
        tunnel_id: t.id.clone(),
        tunnel_index: typing.described(index),
        customer_gateway_id: t.customer_gateway_id.clone(),
        internet_ip: opt_ip(address),
        role: role(t.role),
        state: "active",
        status: typing.described(spelling::tunnel_state::render(t.state)),
        enable_dpd: typing.flag(t.dpd),
        enable_nat_traversal: typing.flag(t.nat_traversal),
        remote_ca_certificate: t.remote_ca_certificate.clone(),
        zone_no: String::new(),
        tunnel_ike_config: TunnelIkeView {
            ike_version: spelling::ike_version::render(ike.version),
            ike_mode: spelling::ike_mode::render(ike.mode),
            ike_enc_alg: spelling::encryption::render(ike.encryption),
            ike_auth_alg: spelling::integrity::render(ike.integrity),
            ike_pfs: spelling::dh_group::render(ike.dh_group),
            ike_lifetime: typing.number(u64::from(ike.lifetime_s)),
            local_id: ike.local_id.clone(),
            remote_id: ike.remote_id.clone(),
            psk: t.psk.expose().to_string(),
        },
        tunnel_ipsec_config: TunnelIpsecView {
            ipsec_enc_alg: spelling::encryption::render(t.ipsec.encryption),
            ipsec_auth_alg: spelling::integrity::render(t.ipsec.integrity),
            ipsec_pfs: spelling::pfs(t.ipsec.pfs),
            ipsec_lifetime: typing.number(u64::from(t.ipsec.lifetime_s)),
        },
        tunnel_bgp_config: TunnelBgpView {
            bgp_status: typing.described(if t.bgp.enable { bgp_status(t.bgp_session.as_ref()) } else { "false" }),
            local_asn: typing.number(t.bgp.local_asn),
            local_bgp_ip: opt_ip(inside.and_then(|i| i.local)),
            tunnel_cidr: inside.map(|i| i.cidr.to_string()).unwrap_or_default(),
            peer_asn: match typing {
                Typing::Strings => Some(Scalar::Text(peer_asn.map(|a| a.to_string()).unwrap_or_default())),
                Typing::Native => peer_asn.map(Scalar::Number),
            },
            peer_bgp_ip: opt_ip(inside.and_then(|i| i.peer())),
        },
    }
}

/// A dual-tunnel connection's tunnels, in order.
fn tunnels_view(t: &ConnectionView, typing: Typing) -> Option<TunnelOptionsList> {
    let c = &t.connection;
    c.second_tunnel.as_ref()?;
    let peers = [Some(&t.customer_gateway), t.second_customer_gateway.as_ref()];
    let tunnel_options = c
        .tunnels()
        .iter()
        .enumerate()
        .map(|(i, (_, tunnel))| {
            let peer = peers.get(i).copied().flatten();
            tunnel_view(tunnel, i as u32 + 1, t.tunnel_addresses.get(i).copied(), peer, typing)
        })
        .collect();
    Some(TunnelOptionsList { tunnel_options })
}

fn opt_ip(ip: Option<Ipv4Addr>) -> String {
    ip.map(|a| a.to_string()).unwrap_or_default()
}

fn view(t: &ConnectionView, list_item: bool, typing: Typing) -> View {
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
        status: spelling::tunnel_state::render(c.best_state()),
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
            status: c.bgp.enable.then_some(bgp_status(c.bgp_session.as_ref())),
        },
        enable_tunnels_bgp: c.second_tunnel.is_some() && c.runs_bgp(),
        tunnel_options_specification: tunnels_view(t, typing),
        tags: (!list_item).then(|| TagSet::of(&t.tags)),
        tag: list_item.then_some(tags),
        description: None,
    }
}

pub fn describe(c: &Call) -> Result<View, WireError> {
    let conn = c.svc.get_connection(c.scope, c.p.req("VpnConnectionId")?).map_err(|e| c.core(e))?;
    Ok(view(&conn, false, Typing::Strings))
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
    let items = listed.items.iter().map(|v| view(v, true, Typing::Strings)).collect();
    Ok(Paged::new(Listed { vpn_connections: ConnectionList { vpn_connection: items } }, page, listed.total))
}

/// The ASNs are strings here, unlike `VpnBgpConfig`'s numbers: the SDKs' model of this answer declares them so, and
/// a typed decoder (Go's, Java's; the Node SDK's audit in the interop suite) refuses a number.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerBgp {
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel_id: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnels_config: Option<PeerTunnels>,
}

#[derive(Serialize)]
pub struct PeerTunnels {
    #[serde(rename = "TunnelConfig")]
    tunnel_config: Vec<PeerTunnel>,
}

/// A dual-tunnel connection's tunnel as the customer configures it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerTunnel {
    tunnel_id: String,
    local: String,
    remote: String,
    ike_config: IkeView,
    ipsec_config: IpsecView,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Downloaded {
    vpn_connection_config: PeerView,
}

fn peer_bgp(t: &Tunnel, tunnel_id: Option<String>, peer_asn: Option<u64>) -> Option<PeerBgp> {
    let inside = t.inside.as_ref();
    t.bgp.enable.then(|| PeerBgp {
        tunnel_id,
        enable_bgp: "true",
        local_asn: t.bgp.local_asn.to_string(),
        local_bgp_ip: opt_ip(inside.and_then(|i| i.local)),
        tunnel_cidr: inside.map(|i| i.cidr.to_string()).unwrap_or_default(),
        peer_asn: peer_asn.map(|a| a.to_string()),
        peer_bgp_ip: opt_ip(inside.and_then(|i| i.peer())),
    })
}

fn peer_view(p: &PeerConfig) -> PeerView {
    let c: &VpnConnection = &p.connection;
    let tunnels = c.tunnels();
    let remote = |r: &openvgw_core::model::PeerIdentity| r.address().map(|a| a.to_string()).unwrap_or_default();
    let (bgp_configs, tunnels_config) = match &p.second {
        None => (tunnels.first().and_then(|(_, t)| peer_bgp(t, None, p.remote_asn)).into_iter().collect(), None),
        Some(second) => {
            let ends = [(p.local, &p.remote, p.remote_asn), (second.local, &second.remote, second.remote_asn)];
            let bgp = tunnels.iter().zip(ends).filter_map(|((_, t), (_, _, asn))| peer_bgp(t, Some(t.id.clone()), asn));
            let config = tunnels
                .iter()
                .zip(ends)
                .map(|((_, t), (local, peer, _))| PeerTunnel {
                    tunnel_id: t.id.clone(),
                    local: local.to_string(),
                    remote: remote(peer),
                    ike_config: ike_view(&t.ike, Some(&t.psk)),
                    ipsec_config: ipsec_view(&t.ipsec),
                })
                .collect();
            (bgp.collect(), Some(PeerTunnels { tunnel_config: config }))
        }
    };
    PeerView {
        local: p.local.to_string(),
        remote: remote(&p.remote),
        local_subnet: openvgw_core::model::join_nets(&c.local_subnets),
        remote_subnet: openvgw_core::model::join_nets(&c.remote_subnets),
        ike_config: ike_view(&c.ike, Some(&c.psk)),
        ipsec_config: ipsec_view(&c.ipsec),
        bgp_configs: PeerBgpList { bgp_config: bgp_configs },
        tunnels_config,
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
