//! VPN connections (reference 4.1.3) and the SDK's connection extras: IPsec SAs, peer configuration export and the
//! devices it knows.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_control::connections::{
    BgpPatch, ConnectionChanges, ConnectionFilter, ConnectionView, IkePatch, IpsecPatch, NewConnection, PeerFormat,
    PublicIpRef,
};
use openvgw_core::crypto::{
    AuthMethod, DhGroup, Dpd, DpdMessage, EncapsulationMode, Encryption, IdentityType, IkeConfig, IkeVersion,
    Integrity, IpsecConfig, NegotiationMode, TransformProtocol,
};
use openvgw_core::model::{
    BgpSessionState, ConnectionMode, CryptoSuite, CustomerGateway, Extensions, GatewayRole, GatewayStatus, HealthCheck,
    PolicyRule, TunnelState, VpnConnection, VpnGateway,
};
use openvgw_core::{validate, Field, PageRequest, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ext::ConnectionExt;
use crate::ops::{NoBody, NoContent, RequestIdOnly};
use crate::spelling;
use crate::wire::{self, one_of, word_of, PageInfo, ResourceTag};

/// Peer subnets the reference reserves (carrier-grade NAT and a provider block).
const RESERVED_PEER: &[&str] = &["100.64.0.0/10", "214.0.0.0/8"];

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct PolicyRuleWire {
    pub rule_index: Option<u32>,
    pub source: Option<String>,
    pub destination: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DpdWire {
    pub timeout: Option<i64>,
    pub interval: Option<i64>,
    pub msg: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct IkePolicyWire {
    pub ike_version: Option<String>,
    pub phase1_negotiation_mode: Option<String>,
    pub authentication_algorithm: Option<String>,
    pub encryption_algorithm: Option<String>,
    pub dh_group: Option<String>,
    pub authentication_method: Option<String>,
    pub lifetime_seconds: Option<i64>,
    pub local_id_type: Option<String>,
    pub local_id: Option<String>,
    pub peer_id_type: Option<String>,
    pub peer_id: Option<String>,
    pub dpd: Option<DpdWire>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct IpsecPolicyWire {
    pub authentication_algorithm: Option<String>,
    pub encryption_algorithm: Option<String>,
    pub pfs: Option<String>,
    pub transform_protocol: Option<String>,
    pub lifetime_seconds: Option<i64>,
    pub encapsulation_mode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct CreateConnection {
    pub name: Option<String>,
    pub vgw_id: String,
    pub vgw_ip: String,
    pub style: Option<String>,
    pub cgw_id: String,
    pub peer_subnets: Option<Vec<String>>,
    pub tunnel_local_address: Option<String>,
    pub tunnel_peer_address: Option<String>,
    pub enable_nqa: Option<bool>,
    pub enable_hub: Option<bool>,
    pub enable_health_check: Option<bool>,
    pub psk: Option<String>,
    pub policy_rules: Option<Vec<PolicyRuleWire>>,
    pub ikepolicy: Option<IkePolicyWire>,
    pub ipsecpolicy: Option<IpsecPolicyWire>,
    pub ha_role: Option<String>,
    pub tags: Option<Vec<ResourceTag>>,
    pub peer_subnets_v6: Option<Vec<String>>,
    pub policy_rules_v6: Option<Vec<PolicyRuleWire>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBody {
    pub vpn_connection: CreateConnection,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BatchBody {
    pub vpn_connections: Vec<CreateConnection>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UpdateConnection {
    pub name: Option<String>,
    pub cgw_id: Option<String>,
    pub peer_subnets: Option<Vec<String>>,
    pub tunnel_local_address: Option<String>,
    pub tunnel_peer_address: Option<String>,
    pub enable_hub: Option<bool>,
    pub psk: Option<String>,
    pub policy_rules: Option<Vec<PolicyRuleWire>>,
    pub ikepolicy: Option<IkePolicyWire>,
    pub ipsecpolicy: Option<IpsecPolicyWire>,
    pub peer_subnets_v6: Option<Vec<String>>,
    pub policy_rules_v6: Option<Vec<PolicyRuleWire>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBody {
    pub vpn_connection: UpdateConnection,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyRuleView {
    pub rule_index: u32,
    pub source: String,
    pub destination: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DpdView {
    pub timeout: u32,
    pub interval: u32,
    pub msg: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IkePolicyView {
    pub ike_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase1_negotiation_mode: Option<&'static str>,
    pub authentication_algorithm: &'static str,
    pub encryption_algorithm: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_group: Option<&'static str>,
    pub authentication_method: &'static str,
    pub lifetime_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_id_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    pub dpd: DpdView,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IpsecPolicyView {
    pub authentication_algorithm: &'static str,
    pub encryption_algorithm: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pfs: Option<&'static str>,
    pub transform_protocol: &'static str,
    pub lifetime_seconds: u32,
    pub encapsulation_mode: &'static str,
}

/// The connection object; create, update and read answers carry documented subsets of it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConnectionWire {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    pub vgw_id: String,
    pub vgw_ip: String,
    pub style: &'static str,
    pub cgw_id: String,
    pub peer_subnets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_local_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_peer_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_nqa: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_hub: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_health_check: Option<bool>,
    pub policy_rules: Vec<PolicyRuleView>,
    pub ikepolicy: IkePolicyView,
    pub ipsecpolicy: IpsecPolicyView,
    pub created_at: String,
    pub updated_at: String,
    pub enterprise_project_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_monitor_id: Option<String>,
    pub ha_role: &'static str,
    pub tags: Vec<ResourceTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp_peer: Option<BgpPeer>,
}

/// The BGP neighbour of a BGP connection and its session as the data plane last saw it. The message counters the
/// seed also lists are not shown: the BGP daemon does not count messages, and they are not invented.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BgpPeer {
    pub peer_ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u64>,
    /// `idle`, `connect`, `active`, `opensent`, `openconfirm` or `established`.
    pub state: &'static str,
    /// How long the session has been in `state`, as the seed spells it: `3d01h34m24s`.
    pub state_duration: String,
    pub num_received_routes: u32,
}

fn bgp_state_word(s: Option<BgpSessionState>) -> &'static str {
    match s {
        None | Some(BgpSessionState::Idle) => "idle",
        Some(BgpSessionState::Connect) => "connect",
        Some(BgpSessionState::Active) => "active",
        Some(BgpSessionState::OpenSent) => "opensent",
        Some(BgpSessionState::OpenConfirm) => "openconfirm",
        Some(BgpSessionState::Established) => "established",
    }
}

/// `3d01h34m24s`; days only when there are any.
fn duration_word(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m{s:02}s")
    } else {
        format!("{h:02}h{m:02}m{s:02}s")
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Created {
    pub vpn_connection: ConnectionWire,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchCreated {
    pub vpn_connections: Vec<ConnectionWire>,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Shown {
    pub vpn_connection: ConnectionWire,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Updated {
    pub vpn_connection: ConnectionWire,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    pub vpn_connections: Vec<ConnectionWire>,
    pub page_info: PageInfo,
    pub request_id: String,
    pub total_count: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Created,
    Updated,
    Read,
}

/// The connection's status from its tunnel and its gateway: a change the gateway is still applying shows as
/// pending, a negotiated tunnel as ACTIVE, anything else as DOWN.
fn status(conn: &VpnConnection, gw: Option<&VpnGateway>) -> &'static str {
    match gw.map(VpnGateway::status) {
        Some(GatewayStatus::Deleting) => "PENDING_DELETE",
        Some(GatewayStatus::Init | GatewayStatus::Provisioning) => "PENDING_CREATE",
        Some(GatewayStatus::Updating) if conn.state < TunnelState::IpsecSaEstablished => {
            if conn.created_at == conn.updated_at {
                "PENDING_CREATE"
            } else {
                "PENDING_UPDATE"
            }
        }
        _ if conn.state == TunnelState::IpsecSaEstablished => "ACTIVE",
        _ => "DOWN",
    }
}

fn ike_view(ike: &IkeConfig, gm: bool) -> IkePolicyView {
    IkePolicyView {
        ike_version: word_of(ike.version, spelling::IKE_VERSION),
        phase1_negotiation_mode: (ike.version == IkeVersion::V1).then(|| word_of(ike.mode, spelling::NEGOTIATION_MODE)),
        authentication_algorithm: word_of(ike.integrity, spelling::INTEGRITY),
        encryption_algorithm: word_of(ike.encryption, spelling::ENCRYPTION),
        dh_group: (!gm).then(|| word_of(ike.dh_group, spelling::DH_GROUP)),
        authentication_method: word_of(ike.auth_method, spelling::AUTH_METHOD),
        lifetime_seconds: ike.lifetime_s,
        local_id_type: (!gm).then(|| word_of(ike.local_id_type, spelling::ID_TYPE)),
        local_id: (!gm).then(|| ike.local_id.clone()),
        peer_id_type: (!gm).then(|| word_of(ike.remote_id_type, spelling::ID_TYPE)),
        peer_id: (!gm).then(|| ike.remote_id.clone()),
        dpd: DpdView {
            timeout: ike.dpd.timeout_s,
            interval: ike.dpd.interval_s,
            msg: word_of(ike.dpd.msg, spelling::DPD_MSG),
        },
    }
}

fn ipsec_view(ipsec: &IpsecConfig, gm: bool) -> IpsecPolicyView {
    IpsecPolicyView {
        authentication_algorithm: word_of(ipsec.integrity, spelling::INTEGRITY),
        encryption_algorithm: word_of(ipsec.encryption, spelling::ENCRYPTION),
        pfs: (!gm).then(|| ipsec.pfs.map(|g| word_of(g, spelling::DH_GROUP)).unwrap_or(spelling::DISABLE)),
        transform_protocol: "esp",
        lifetime_seconds: ipsec.lifetime_s,
        encapsulation_mode: "tunnel",
    }
}

fn wire_view(v: &ConnectionView, gw: Option<&VpnGateway>, monitor: Option<String>, shape: Shape) -> ConnectionWire {
    let conn = &v.connection;
    let ext: ConnectionExt = conn.ext.get();
    let gm = gw.is_some_and(|g| g.crypto_suite == CryptoSuite::NationalStandard);
    let vgw_ip =
        gw.and_then(|g| g.public_ips.get(usize::from(conn.public_ip_index))).map(|p| p.id.clone()).unwrap_or_default();
    let inside = conn.inside.as_ref();
    let prefix = inside.map(|i| i.cidr.prefix_len()).unwrap_or(30);
    ConnectionWire {
        id: conn.id.clone(),
        name: conn.name.clone(),
        status: (shape == Shape::Read).then(|| status(conn, gw)),
        vgw_id: conn.gateway_id.clone(),
        vgw_ip,
        style: word_of(conn.mode, spelling::STYLE_OUT),
        cgw_id: conn.customer_gateway_id.clone(),
        peer_subnets: conn.remote_subnets.iter().map(ToString::to_string).collect(),
        tunnel_local_address: inside.and_then(|i| i.local).map(|a| format!("{a}/{prefix}")),
        tunnel_peer_address: inside.and_then(|i| i.peer()).map(|a| format!("{a}/{prefix}")),
        enable_nqa: (conn.mode == ConnectionMode::Static).then_some(ext.enable_nqa),
        enable_hub: (conn.mode == ConnectionMode::Bgp).then_some(ext.enable_hub),
        enable_health_check: (shape == Shape::Created).then_some(ext.enable_health_check),
        policy_rules: if conn.mode == ConnectionMode::Policy {
            conn.policy_rules
                .iter()
                .map(|r| PolicyRuleView {
                    rule_index: r.index,
                    source: r.source.to_string(),
                    destination: r.destinations.iter().map(ToString::to_string).collect(),
                })
                .collect()
        } else {
            vec![]
        },
        ikepolicy: ike_view(&conn.ike, gm),
        ipsecpolicy: ipsec_view(&conn.ipsec, gm),
        created_at: wire::ts(conn.created_at),
        updated_at: wire::ts(conn.updated_at),
        enterprise_project_id: if ext.enterprise_project_id.is_empty() {
            "0".into()
        } else {
            ext.enterprise_project_id.clone()
        },
        connection_monitor_id: if shape == Shape::Created { None } else { monitor },
        ha_role: conn.ha_role.map(|r| word_of(r, spelling::HA_ROLE)).unwrap_or("master"),
        tags: ResourceTag::of(&v.tags),
        bgp_peer: (shape == Shape::Read && conn.mode == ConnectionMode::Bgp)
            .then(|| inside.and_then(|i| i.peer()))
            .flatten()
            .map(|peer| {
                let session = conn.bgp_session.as_ref();
                BgpPeer {
                    peer_ip_address: peer.to_string(),
                    peer_asn: v.customer_gateway.asn,
                    state: bgp_state_word(session.map(|s| s.state)),
                    state_duration: duration_word(session.map_or(0, |s| openvgw_core::now_ms() - s.since_ms)),
                    num_received_routes: session.map_or(0, |s| s.received_routes),
                }
            }),
    }
}

/// An IPv4 CIDR list of at most 50 blocks outside the reserved ranges.
fn peer_subnets(values: &[String]) -> Result<Vec<Ipv4Net>, HwError> {
    if values.len() > 50 {
        return Err(HwError::invalid("peer_subnets: at most 50 CIDR blocks"));
    }
    let nets = validate::cidrs(values, Field::RemoteSubnets)
        .map_err(|e| crate::error::from_core(&e, crate::ops::Family::S2c))?;
    for n in &nets {
        for r in RESERVED_PEER {
            let r: Ipv4Net = r.parse().map_err(|_| HwError::internal())?;
            if validate::overlaps(n, &r) {
                return Err(HwError::invalid(format!("peer_subnets: {n} overlaps the reserved block {r}")));
            }
        }
    }
    Ok(nets)
}

/// Pre-shared keys: 8-128 characters from letters, digits and `~!@#$%^*()-_+={ },./:;`, at least three of the
/// four kinds.
fn psk(v: &str) -> Result<Secret, HwError> {
    const SPECIAL: &str = "~!@#$%^*()-_+={ },./:;";
    let bad = || {
        HwError::invalid("psk must be 8-128 characters with at least three of: upper-case letters, lower-case letters, digits, special characters ~!@#$%^*()-_+={ },./:;")
    };
    if !(8..=128).contains(&v.len()) || !v.chars().all(|c| c.is_ascii_alphanumeric() || SPECIAL.contains(c)) {
        return Err(bad());
    }
    let kinds = [
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_digit()),
        v.chars().any(|c| SPECIAL.contains(c)),
    ];
    if kinds.iter().filter(|k| **k).count() < 3 {
        return Err(bad());
    }
    Ok(Secret::new(v.to_string()))
}

fn policy_rules(rules: &[PolicyRuleWire]) -> Result<Vec<PolicyRule>, HwError> {
    if rules.len() > 5 {
        return Err(HwError::invalid("policy_rules: at most 5 rules"));
    }
    let mut out: Vec<PolicyRule> = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let source = r.source.as_deref().ok_or_else(|| HwError::invalid("policy_rules.source is required"))?;
        let source = validate::cidr(source, Field::PolicyRules)
            .map_err(|_| HwError::invalid(format!("policy_rules.source {source} is not an IPv4 CIDR block")))?;
        if out.iter().any(|o| o.source == source) {
            return Err(HwError::invalid(format!("policy_rules: source {source} appears in two rules")));
        }
        let dests = r.destination.clone().unwrap_or_default();
        if dests.is_empty() || dests.len() > 50 {
            return Err(HwError::invalid("policy_rules.destination: 1-50 CIDR blocks"));
        }
        let destinations = validate::cidrs(&dests, Field::PolicyRules)
            .map_err(|_| HwError::invalid("policy_rules.destination: IPv4 CIDR blocks without duplicates"))?;
        let index = r.rule_index.unwrap_or(i as u32 + 1);
        wire::range("policy_rules.rule_index", i64::from(index), 0, 50)?;
        out.push(PolicyRule { index, source, destinations });
    }
    Ok(out)
}

/// A tunnel end: `169.254.x.y/30`, a host of its /30, outside 169.254.195.0/24.
fn tunnel_address(field: &str, v: &str) -> Result<(Ipv4Addr, Ipv4Net), HwError> {
    let bad = || {
        HwError::invalid(format!(
            "{field} must be a host address of a /30 in 169.254.0.0/16 (not 169.254.195.0/24), like 169.254.76.1/30"
        ))
    };
    let net: Ipv4Net = v.parse().map_err(|_| bad())?;
    let o = net.addr().octets();
    if net.prefix_len() != 30 || o[0] != 169 || o[1] != 254 || o[2] == 195 || !matches!(o[3] % 4, 1 | 2) {
        return Err(bad());
    }
    Ok((net.addr(), net.trunc()))
}

/// Both tunnel ends or neither; the same /30, different hosts.
fn tunnel_pair(local: Option<&str>, peer: Option<&str>) -> Result<Option<(Ipv4Net, Ipv4Addr, Ipv4Addr)>, HwError> {
    match (local, peer) {
        (None, None) => Ok(None),
        (Some(l), Some(p)) => {
            let (la, ln) = tunnel_address("tunnel_local_address", l)?;
            let (pa, pn) = tunnel_address("tunnel_peer_address", p)?;
            if ln != pn || la == pa {
                return Err(HwError::invalid(
                    "tunnel_local_address and tunnel_peer_address must be the two hosts of one /30",
                ));
            }
            Ok(Some((ln, la, pa)))
        }
        _ => Err(HwError::invalid("tunnel_local_address and tunnel_peer_address are given together")),
    }
}

fn dpd(d: &DpdWire, base: &Dpd) -> Result<Dpd, HwError> {
    let mut out = base.clone();
    if let Some(t) = d.timeout {
        wire::range("ikepolicy.dpd.timeout", t, 2, 60)?;
        out.timeout_s = t as u32;
    }
    if let Some(i) = d.interval {
        wire::range("ikepolicy.dpd.interval", i, 10, 3600)?;
        out.interval_s = i as u32;
    }
    if let Some(m) = &d.msg {
        out.msg = one_of("ikepolicy.dpd.msg", m, spelling::DPD_MSG)?;
    }
    Ok(out)
}

/// An identity: an IPv4 address for type `ip`, an FQDN (1-255 characters without `& < > [ ] \ ?` or spaces)
/// otherwise.
fn identity(field: &str, t: IdentityType, v: &str) -> Result<String, HwError> {
    match t {
        IdentityType::Ip => {
            validate::ipv4(v, Field::LocalId)
                .map_err(|_| HwError::invalid(format!("{field} must be an IPv4 address")))?;
        }
        IdentityType::Fqdn => {
            let ok = (1..=255).contains(&v.len()) && v.chars().all(|c| c.is_ascii_graphic() && !"&<>[]\\?".contains(c));
            if !ok {
                return Err(HwError::invalid(format!("{field}: 1-255 characters without & < > [ ] \\ ? or spaces")));
            }
        }
    }
    Ok(v.to_string())
}

/// Phase-1 settings as a patch (values checked against the gateway's suite).
fn ike_patch(w: &IkePolicyWire, gm: bool, base: &IkeConfig) -> Result<IkePatch, HwError> {
    let mut p = IkePatch::default();
    if let Some(v) = &w.ike_version {
        p.version = Some(one_of("ikepolicy.ike_version", v, spelling::IKE_VERSION)?);
        if gm && p.version != Some(IkeVersion::V1) {
            return Err(HwError::invalid("ikepolicy.ike_version must be v1 on GM gateways"));
        }
    }
    if let Some(v) = &w.phase1_negotiation_mode {
        let mode = one_of("ikepolicy.phase1_negotiation_mode", v, spelling::NEGOTIATION_MODE)?;
        if gm && mode != NegotiationMode::Main {
            return Err(HwError::invalid("ikepolicy.phase1_negotiation_mode must be main on GM gateways"));
        }
        p.mode = Some(mode);
    }
    if let Some(v) = &w.authentication_algorithm {
        let i = one_of("ikepolicy.authentication_algorithm", v, spelling::INTEGRITY)?;
        check_suite("ikepolicy.authentication_algorithm", gm, i == Integrity::Sm3)?;
        p.integrity = Some(i);
    }
    if let Some(v) = &w.encryption_algorithm {
        let e = one_of("ikepolicy.encryption_algorithm", v, spelling::ENCRYPTION)?;
        check_suite("ikepolicy.encryption_algorithm", gm, e == Encryption::Sm4)?;
        p.encryption = Some(e);
    }
    if let Some(v) = &w.dh_group {
        if gm {
            return Err(HwError::invalid("ikepolicy.dh_group does not apply to GM gateways"));
        }
        p.dh_group = Some(one_of("ikepolicy.dh_group", v, spelling::DH_GROUP)?);
    }
    if let Some(v) = &w.authentication_method {
        let m = one_of("ikepolicy.authentication_method", v, spelling::AUTH_METHOD)?;
        if (m == AuthMethod::Certificate) != gm {
            return Err(HwError::invalid(if gm {
                "ikepolicy.authentication_method must be digital-envelope-v2 on GM gateways"
            } else {
                "ikepolicy.authentication_method must be pre-share"
            }));
        }
    }
    if let Some(v) = w.lifetime_seconds {
        wire::range("ikepolicy.lifetime_seconds", v, 60, 604_800)?;
        p.lifetime_s = Some(v as u32);
    }
    if gm && (w.local_id_type.is_some() || w.local_id.is_some() || w.peer_id_type.is_some() || w.peer_id.is_some()) {
        return Err(HwError::invalid("ikepolicy.local_id and peer_id do not apply to GM gateways"));
    }
    let id = |t: &Option<String>, v: &Option<String>, field: &str, cur: (IdentityType, &str)| {
        if t.is_none() && v.is_none() {
            return Ok(None);
        }
        let ty = match t {
            Some(t) => one_of(&format!("ikepolicy.{field}_type"), t, spelling::ID_TYPE)?,
            None => cur.0,
        };
        match v {
            Some(v) => Ok(Some((ty, identity(&format!("ikepolicy.{field}"), ty, v)?))),
            // The address default follows the gateway and the peer; a name must be given.
            None if ty == IdentityType::Ip => Ok(Some((ty, String::new()))),
            None => Err(HwError::invalid(format!("ikepolicy.{field} is required when {field}_type is fqdn"))),
        }
    };
    p.local_id = id(&w.local_id_type, &w.local_id, "local_id", (base.local_id_type, &base.local_id))?;
    p.remote_id = id(&w.peer_id_type, &w.peer_id, "peer_id", (base.remote_id_type, &base.remote_id))?;
    if let Some(d) = &w.dpd {
        p.dpd = Some(dpd(d, &base.dpd)?);
    }
    Ok(p)
}

fn check_suite(field: &str, gm: bool, is_gm_algorithm: bool) -> Result<(), HwError> {
    match (gm, is_gm_algorithm) {
        (true, false) => Err(HwError::invalid(format!("{field} must be the GM algorithm (sm3/sm4) on GM gateways"))),
        (false, true) => Err(HwError::invalid(format!("{field}: sm3 and sm4 are for GM gateways only"))),
        _ => Ok(()),
    }
}

fn ipsec_patch(w: &IpsecPolicyWire, gm: bool) -> Result<IpsecPatch, HwError> {
    let mut p = IpsecPatch::default();
    if let Some(v) = &w.authentication_algorithm {
        let i = one_of("ipsecpolicy.authentication_algorithm", v, spelling::INTEGRITY)?;
        check_suite("ipsecpolicy.authentication_algorithm", gm, i == Integrity::Sm3)?;
        p.integrity = Some(i);
    }
    if let Some(v) = &w.encryption_algorithm {
        let e = one_of("ipsecpolicy.encryption_algorithm", v, spelling::ENCRYPTION)?;
        check_suite("ipsecpolicy.encryption_algorithm", gm, e == Encryption::Sm4)?;
        p.encryption = Some(e);
    }
    if let Some(v) = &w.pfs {
        if gm {
            return Err(HwError::invalid("ipsecpolicy.pfs does not apply to GM gateways"));
        }
        p.pfs =
            Some(if v == spelling::DISABLE { None } else { Some(one_of("ipsecpolicy.pfs", v, spelling::DH_GROUP)?) });
    }
    if let Some(v) = &w.transform_protocol {
        if v != "esp" {
            return Err(HwError::invalid("ipsecpolicy.transform_protocol must be esp"));
        }
    }
    if let Some(v) = &w.encapsulation_mode {
        if v != "tunnel" {
            return Err(HwError::invalid("ipsecpolicy.encapsulation_mode must be tunnel"));
        }
    }
    if let Some(v) = w.lifetime_seconds {
        wire::range("ipsecpolicy.lifetime_seconds", v, 30, 604_800)?;
        p.lifetime_s = Some(v as u32);
    }
    Ok(p)
}

/// The reference's defaults: IKEv2, AES-128, SHA2-256, group 15, a day; GM gateways IKEv1 with SM4/SM3 and
/// digital envelopes.
fn default_ike(gm: bool) -> IkeConfig {
    IkeConfig {
        version: if gm { IkeVersion::V1 } else { IkeVersion::V2 },
        mode: NegotiationMode::Main,
        encryption: if gm { Encryption::Sm4 } else { Encryption::Aes128 },
        integrity: if gm { Integrity::Sm3 } else { Integrity::Sha256 },
        dh_group: DhGroup::Group15,
        auth_method: if gm { AuthMethod::Certificate } else { AuthMethod::PreSharedKey },
        lifetime_s: 86_400,
        local_id_type: IdentityType::Ip,
        local_id: String::new(),
        remote_id_type: IdentityType::Ip,
        remote_id: String::new(),
        // Seed table 4-123: idle 30 s, re-sent every 15 s, payloads hash-notify.
        dpd: Dpd { interval_s: 30, timeout_s: 15, msg: DpdMessage::SeqHashNotify },
    }
}

fn default_ipsec(gm: bool) -> IpsecConfig {
    IpsecConfig {
        encryption: if gm { Encryption::Sm4 } else { Encryption::Aes128 },
        integrity: if gm { Integrity::Sm3 } else { Integrity::Sha256 },
        pfs: if gm { None } else { Some(DhGroup::Group15) },
        lifetime_s: 3600,
        transform: TransformProtocol::Esp,
        encapsulation: EncapsulationMode::Tunnel,
    }
}

impl Call<'_> {
    fn connection_gateway(&self, id: &str) -> Result<VpnGateway, HwError> {
        Ok(self.gateway(id, GatewayRole::Site)?.item)
    }

    fn monitor_id(&self, connection_id: &str) -> Result<Option<String>, HwError> {
        Ok(self.svc.monitor_of(self.scope()?, connection_id).map_err(|e| self.core(e))?.map(|m| m.id))
    }
}

/// Checks one connection of a create or batch and makes it a core request.
fn new_connection(c: &Call, w: CreateConnection) -> Result<NewConnection, HwError> {
    if let Some(n) = &w.name {
        wire::name(n)?;
    }
    if w.peer_subnets_v6.is_some() || w.policy_rules_v6.is_some() {
        return Err(HwError::invalid("peer_subnets_v6 and policy_rules_v6 apply only to ipv6 gateways"));
    }
    let gw = c.connection_gateway(&w.vgw_id)?;
    let gm = gw.crypto_suite == CryptoSuite::NationalStandard;
    let cgw: CustomerGateway = c.svc.get_customer_gateway(c.scope()?, &w.cgw_id).map_err(|e| c.core(e))?.item;
    if w.vgw_ip.parse::<Ipv4Addr>().is_ok() {
        return Err(HwError::invalid("vgw_ip: this gateway is public; give the id of one of its EIPs"));
    }
    wire::uuid_like("vgw_ip", &w.vgw_ip)?;
    let mode = one_of("style", w.style.as_deref().unwrap_or("static"), spelling::STYLE)?;
    if mode == ConnectionMode::PolicyTemplate {
        return Err(HwError::invalid("style policy-template applies only to NonFixedIP gateways"));
    }
    let remote = peer_subnets(&w.peer_subnets.clone().ok_or_else(|| HwError::invalid("peer_subnets is required"))?)?;
    let inside = tunnel_pair(w.tunnel_local_address.as_deref(), w.tunnel_peer_address.as_deref())?;
    let enable_nqa = w.enable_nqa.unwrap_or(false);
    if enable_nqa && mode != ConnectionMode::Static {
        return Err(HwError::invalid("enable_nqa applies only to static connections"));
    }
    let enable_hub = w.enable_hub.unwrap_or(false);
    if enable_hub && mode != ConnectionMode::Bgp {
        return Err(HwError::invalid("enable_hub applies only to bgp connections"));
    }
    let psk = match (&w.psk, gm) {
        (Some(p), false) => Some(psk(p)?),
        (None, false) => return Err(HwError::invalid("psk is required")),
        (Some(_), true) => return Err(HwError::invalid("psk does not apply to GM gateways")),
        (None, true) => None,
    };
    let rules = match (&w.policy_rules, mode) {
        (Some(r), ConnectionMode::Policy) => policy_rules(r)?,
        (Some(r), _) if !r.is_empty() => return Err(HwError::invalid("policy_rules apply only to policy connections")),
        _ => vec![],
    };
    let mut ike = default_ike(gm);
    if let Some(p) = &w.ikepolicy {
        ike_patch(p, gm, &ike.clone())?.apply(&mut ike).map_err(|e| c.core(e))?;
    }
    let mut ipsec = default_ipsec(gm);
    if let Some(p) = &w.ipsecpolicy {
        ipsec_patch(p, gm)?.apply(&mut ipsec);
    }
    let ha_role = w.ha_role.as_deref().map(|r| one_of("ha_role", r, spelling::HA_ROLE)).transpose()?;
    let remote_ca = if gm {
        let ca = cgw.ca_certificate.as_ref().ok_or_else(|| {
            HwError::invalid("a GM gateway's connection needs a customer gateway with a CA certificate")
        })?;
        let has_cert = c.svc.gateway_certificate(c.scope()?, &gw.id).map_err(|e| c.core(e))?.is_some();
        if !has_cert {
            return Err(HwError::invalid("upload the GM gateway's certificate before creating connections"));
        }
        ca.pem.clone()
    } else {
        String::new()
    };
    let health_check = HealthCheck {
        enable: enable_nqa,
        dip: inside.map(|(_, _, peer)| peer),
        sip: inside.map(|(_, local, _)| local),
        interval_s: 5,
        retry: 3,
    };
    let ext = ConnectionExt {
        enable_nqa,
        enable_hub,
        enable_health_check: w.enable_health_check.unwrap_or(false),
        enterprise_project_id: gw.ext.get::<crate::ext::GatewayExt>().enterprise_project(),
    };
    if enable_nqa && inside.is_none() {
        return Err(HwError::invalid(
            "enable_nqa probes the peer's tunnel address: give tunnel_local_address and tunnel_peer_address",
        ));
    }
    Ok(NewConnection {
        gateway_id: gw.id.clone(),
        customer_gateway_id: cgw.id.clone(),
        name: Some(w.name.unwrap_or_else(|| wire::default_name("vpn"))),
        description: String::new(),
        public_ip: PublicIpRef::Id(w.vgw_ip),
        mode,
        local_subnets: vec![],
        remote_subnets: remote,
        policy_rules: rules,
        bgp: BgpPatch {
            enable: Some(mode == ConnectionMode::Bgp),
            local_asn: gw.bgp_asn,
            tunnel_cidr: inside.map(|(n, _, _)| n),
            local_ip: inside.map(|(_, l, _)| l),
            peer_ip: inside.map(|(_, _, p)| p),
        },
        allocate_inside: true,
        psk,
        ike,
        ipsec,
        health_check,
        // A peer without a fixed address can only be answered.
        initiate: cgw.address().is_some(),
        dpd: true,
        nat_traversal: true,
        auto_route: mode != ConnectionMode::Policy,
        ha_role,
        remote_ca_certificate: remote_ca,
        second_tunnel: None,
        tags: wire::creation_tags(w.tags)?,
        ext: Extensions::of(&ext),
    })
}

fn created_views(c: &Call, created: Vec<VpnConnection>) -> Result<Vec<ConnectionWire>, HwError> {
    let mut out = Vec::with_capacity(created.len());
    for conn in created {
        let v = c.svc.get_connection(c.scope()?, &conn.id).map_err(|e| c.core(e))?;
        let gw = c.svc.get_gateway(c.scope()?, &conn.gateway_id).map_err(|e| c.core(e))?.item;
        out.push(wire_view(&v, Some(&gw), None, Shape::Created));
    }
    Ok(out)
}

pub fn create(c: &Call, body: CreateBody) -> Result<Created, HwError> {
    let input = new_connection(c, body.vpn_connection)?;
    let conn = c.svc.create_connection(&c.ctx()?, input).map_err(|e| c.core(e))?;
    let mut views = created_views(c, vec![conn])?;
    let view = views.pop().ok_or_else(HwError::internal)?;
    Ok(Created { vpn_connection: view, request_id: c.request_id() })
}

/// One or two connections of one gateway, created together or not at all.
pub fn batch_create(c: &Call, body: BatchBody) -> Result<BatchCreated, HwError> {
    let items = body.vpn_connections;
    if items.is_empty() || items.len() > 2 {
        return Err(HwError::invalid("vpn_connections: 1-2 connections"));
    }
    if items.iter().any(|i| i.vgw_id != items[0].vgw_id) {
        return Err(HwError::invalid("vpn_connections: every connection must use the same vgw_id"));
    }
    let inputs = items.into_iter().map(|w| new_connection(c, w)).collect::<Result<Vec<_>, _>>()?;
    let created = c.svc.create_connections(&c.ctx()?, inputs).map_err(|e| c.core(e))?;
    Ok(BatchCreated { vpn_connections: created_views(c, created)?, request_id: c.request_id() })
}

fn read_view(c: &Call, v: &ConnectionView) -> Result<ConnectionWire, HwError> {
    let gw = c.svc.get_gateway(c.scope()?, &v.connection.gateway_id).map_err(|e| c.core(e))?.item;
    Ok(wire_view(v, Some(&gw), c.monitor_id(&v.connection.id)?, Shape::Read))
}

pub fn show(c: &Call, _: NoBody) -> Result<Shown, HwError> {
    let v = c.svc.get_connection(c.scope()?, c.path("vpn_connection_id")?).map_err(|e| c.core(e))?;
    Ok(Shown { vpn_connection: read_view(c, &v)?, request_id: c.request_id() })
}

pub fn list(c: &Call, _: NoBody) -> Result<Listed, HwError> {
    let scope = c.scope()?;
    let filter = ConnectionFilter {
        gateway_id: c.query("vgw_id").map(str::to_string),
        connection_id: c.query("vpn_id").map(str::to_string),
        ..Default::default()
    };
    let page = c.marker_page(2000, 2000)?;
    let eip = c.query("vgw_ip").or(c.query("eip_id"));
    let projects = c.query_all("enterprise_project_id");
    let gateways = c
        .svc
        .list_gateways(scope, &Default::default(), &PageRequest::ALL)
        .map_err(|e| c.core(e))?
        .items
        .into_iter()
        .map(|g| (g.item.id.clone(), g.item))
        .collect::<std::collections::HashMap<_, _>>();
    // Filters the store does not index run over the whole list, then page.
    let listed = if eip.is_some() || !projects.is_empty() {
        let all = c.svc.list_connections(scope, &filter, &PageRequest::ALL).map_err(|e| c.core(e))?;
        let matching: Vec<ConnectionView> = all
            .items
            .into_iter()
            .filter(|v| {
                let gw = gateways.get(&v.connection.gateway_id);
                let ip_id = gw.and_then(|g| g.public_ips.get(usize::from(v.connection.public_ip_index))).map(|p| &p.id);
                let ext: ConnectionExt = v.connection.ext.get();
                let project =
                    if ext.enterprise_project_id.is_empty() { "0".to_string() } else { ext.enterprise_project_id };
                eip.is_none_or(|e| ip_id.is_some_and(|i| i == e))
                    && (projects.is_empty() || projects.contains(&project.as_str()))
            })
            .collect();
        openvgw_core::Page::of_vec(matching, &page, |v| openvgw_core::Cursor(v.connection.id.clone()))
    } else {
        c.svc.list_connections(scope, &filter, &page).map_err(|e| c.core(e))?
    };
    let monitors: std::collections::HashMap<String, String> =
        c.svc.list_monitors(scope, None).map_err(|e| c.core(e))?.into_iter().map(|m| (m.connection_id, m.id)).collect();
    let out: Vec<ConnectionWire> = listed
        .items
        .iter()
        .map(|v| {
            let gw = gateways.get(&v.connection.gateway_id);
            wire_view(v, gw, monitors.get(&v.connection.id).cloned(), Shape::Read)
        })
        .collect();
    Ok(Listed {
        page_info: PageInfo::of(&listed),
        total_count: listed.total,
        vpn_connections: out,
        request_id: c.request_id(),
    })
}

pub fn update(c: &Call, body: UpdateBody) -> Result<Updated, HwError> {
    let u = body.vpn_connection;
    let id = c.path("vpn_connection_id")?;
    let current = c.svc.get_connection(c.scope()?, id).map_err(|e| c.core(e))?;
    let conn = &current.connection;
    let gw = c.connection_gateway(&conn.gateway_id)?;
    let gm = gw.crypto_suite == CryptoSuite::NationalStandard;
    if let Some(n) = &u.name {
        wire::name(n)?;
    }
    if u.peer_subnets_v6.is_some() || u.policy_rules_v6.is_some() {
        return Err(HwError::invalid("peer_subnets_v6 and policy_rules_v6 apply only to ipv6 gateways"));
    }
    if u.enable_hub == Some(true) && conn.mode != ConnectionMode::Bgp {
        return Err(HwError::invalid("enable_hub applies only to bgp connections"));
    }
    if u.policy_rules.as_ref().is_some_and(|r| !r.is_empty()) && conn.mode != ConnectionMode::Policy {
        return Err(HwError::invalid("policy_rules apply only to policy connections"));
    }
    let psk = match (&u.psk, gm) {
        (Some(_), true) => return Err(HwError::invalid("psk does not apply to GM gateways")),
        (Some(p), false) => Some(psk(p)?),
        (None, _) => None,
    };
    let inside = tunnel_pair(u.tunnel_local_address.as_deref(), u.tunnel_peer_address.as_deref())?;
    let mut ch = ConnectionChanges {
        name: u.name.clone(),
        remote_subnets: u.peer_subnets.as_deref().map(peer_subnets).transpose()?,
        policy_rules: u.policy_rules.as_deref().map(policy_rules).transpose()?,
        psk,
        customer_gateway_id: u.cgw_id.clone(),
        ..Default::default()
    };
    if let Some(p) = &u.ikepolicy {
        ch.ike = ike_patch(p, gm, &conn.ike)?;
    }
    if let Some(p) = &u.ipsecpolicy {
        ch.ipsec = ipsec_patch(p, gm)?;
    }
    if let Some((net, local, peer)) = inside {
        ch.bgp = BgpPatch { tunnel_cidr: Some(net), local_ip: Some(local), peer_ip: Some(peer), ..Default::default() };
        let ext: ConnectionExt = conn.ext.get();
        if ext.enable_nqa {
            ch.health_check.dip = Some(peer);
            ch.health_check.sip = Some(local);
        }
    }
    if let Some(hub) = u.enable_hub {
        ch.ext = Some(std::sync::Arc::new(move |x: &mut Extensions| {
            let mut ext: ConnectionExt = x.get();
            ext.enable_hub = hub;
            x.set(&ext);
            Ok(())
        }));
    }
    let view = c.svc.modify_connection(&c.ctx()?, id, ch).map_err(|e| c.core(e))?;
    Ok(Updated {
        vpn_connection: wire_view(&view, Some(&gw), c.monitor_id(id)?, Shape::Updated),
        request_id: c.request_id(),
    })
}

pub fn delete(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    c.svc.delete_connection(&c.ctx()?, c.path("vpn_connection_id")?).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LogLine {
    pub time: i64,
    pub raw_message: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Logs {
    pub logs: Vec<LogLine>,
    pub request_id: String,
}

/// The unix time a log line starts with (`YYYY-MM-DD HH:MM:SS`, UTC), if it has one.
fn line_time(line: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let stamp = line.get(..19)?.replace('T', " ");
    time::PrimitiveDateTime::parse(&stamp, &format).ok().map(|t| t.assume_utc().unix_timestamp())
}

/// The tunnel's negotiation log of the last day.
pub fn logs(c: &Call, _: NoBody) -> Result<Logs, HwError> {
    let id = c.path("vpn_connection_id")?;
    let now = openvgw_core::now_ms() / 1000;
    let lines = c.block_on(c.svc.connection_logs(c.scope()?, id, now - 86_400, now)).map_err(|e| c.core(e))?;
    let mut last = now - 86_400;
    let logs = lines
        .into_iter()
        .map(|raw_message| {
            // Continuation lines carry the time of the line they continue.
            last = line_time(&raw_message).unwrap_or(last);
            LogLine { time: last, raw_message }
        })
        .collect();
    Ok(Logs { logs, request_id: c.request_id() })
}

pub fn reset(c: &Call, _: NoBody) -> Result<RequestIdOnly, HwError> {
    let id = c.path("vpn_connection_id")?;
    c.block_on(c.svc.reset_connection(c.scope()?, id)).map_err(|e| c.core(e))?;
    Ok(RequestIdOnly { request_id: c.request_id() })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SaInfo {
    pub id: String,
    pub source_ip_cidr: String,
    pub dest_ip_cidr: String,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub traffic_sent: u64,
    pub traffic_recv: u64,
    pub collected_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SaList {
    pub sa_infos: Vec<SaInfo>,
    pub request_id: String,
}

pub fn ipsec_sas(c: &Call, _: NoBody) -> Result<SaList, HwError> {
    let id = c.path("vpn_connection_id")?;
    let sas = c.block_on(c.svc.connection_sas(c.scope()?, id)).map_err(|e| c.core(e))?;
    let now = wire::ts(openvgw_core::now_ms());
    Ok(SaList {
        sa_infos: sas
            .into_iter()
            .map(|s| SaInfo {
                id: s.id,
                source_ip_cidr: s.local_ts,
                dest_ip_cidr: s.remote_ts,
                packets_sent: s.packets_out,
                packets_recv: s.packets_in,
                traffic_sent: s.bytes_out,
                traffic_recv: s.bytes_in,
                collected_at: now.clone(),
            })
            .collect(),
        request_id: c.request_id(),
    })
}

/// The peer devices whose configuration openvgw renders: the two open-source IKE daemons it is tested against.
const DEVICES: &[(&str, &str, &str)] = &[("strongSwan", "swanctl", "5.9"), ("Libreswan", "ipsec.conf", "4.x")];

#[derive(Debug, Serialize, JsonSchema)]
pub struct Device {
    pub vendor: &'static str,
    pub platform: &'static str,
    pub version: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub model: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Devices {
    pub supported_devices: Vec<Device>,
    pub request_id: String,
}

pub fn supported_devices(c: &Call, _: NoBody) -> Result<Devices, HwError> {
    Ok(Devices {
        supported_devices: DEVICES
            .iter()
            .map(|(vendor, platform, version)| Device { vendor, platform, version, kind: "software", model: platform })
            .collect(),
        request_id: c.request_id(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExportBody {
    pub vendor: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PeerConfig {
    pub request_id: String,
    pub peer_config: String,
}

/// The customer side's configuration of the connection, for one of the supported devices.
pub fn export_peer_config(c: &Call, body: ExportBody) -> Result<PeerConfig, HwError> {
    let id = c.path("vpn_connection_id")?;
    let device = DEVICES.iter().find(|(v, ..)| v.eq_ignore_ascii_case(&body.vendor)).ok_or_else(|| {
        HwError::invalid(format!("vendor {} is not a supported device (strongSwan, Libreswan)", body.vendor))
    })?;
    let _ = (&body.kind, &body.model, &body.version);
    let pc = c.svc.peer_config(c.scope()?, id).map_err(|e| c.core(e))?;
    let format = if device.0 == "strongSwan" { PeerFormat::Strongswan } else { PeerFormat::Libreswan };
    let files = pc
        .render(format, false)
        .map_err(|e| HwError::invalid(format!("this connection cannot be expressed for {}: {e}", device.0)))?;
    let text = files.iter().map(|f| format!("# {}\n{}", f.name, f.text)).collect::<Vec<_>>().join("\n");
    Ok(PeerConfig { request_id: c.request_id(), peer_config: text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_rules() {
        assert!(psk("Abcdef12").is_ok());
        assert!(psk("abcdefgh").is_err(), "one kind");
        assert!(psk("abcd1234").is_err(), "two kinds");
        assert!(psk("abc12!@#").is_ok());
        assert!(psk("Ab1").is_err(), "too short");
        assert!(psk("Abcdef12\"").is_err(), "quote is not allowed");
    }

    #[test]
    fn tunnel_addresses() {
        let ok = tunnel_pair(Some("169.254.76.1/30"), Some("169.254.76.2/30")).expect("valid");
        assert_eq!(ok.map(|(n, ..)| n.to_string()), Some("169.254.76.0/30".to_string()));
        assert!(tunnel_pair(Some("169.254.76.1/30"), None).is_err());
        assert!(tunnel_pair(Some("169.254.76.1/30"), Some("169.254.77.2/30")).is_err());
        assert!(tunnel_pair(Some("169.254.195.1/30"), Some("169.254.195.2/30")).is_err());
        assert!(tunnel_pair(Some("169.254.76.0/30"), Some("169.254.76.1/30")).is_err(), "network address");
        assert!(tunnel_pair(Some("169.254.76.1/29"), Some("169.254.76.2/29")).is_err());
        assert!(tunnel_pair(Some("10.0.0.1/30"), Some("10.0.0.2/30")).is_err());
    }

    #[test]
    fn line_times() {
        assert_eq!(line_time("2024-12-24 07:08:32 charon: x"), Some(1_735_024_112));
        assert_eq!(line_time("2024-12-24T07:08:32.730275+00:00 host"), Some(1_735_024_112));
        assert_eq!(line_time("  continuation"), None);
    }
}
