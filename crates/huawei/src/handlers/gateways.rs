//! Site-to-cloud VPN gateways (reference 4.1.1): gateways, availability zones, the routing table, national-standard
//! (GM) gateway certificates, upgrades and their jobs (the last two shared with client-to-site gateways).

use std::collections::HashMap;

use openvgw_control::connections::{ConnectionFilter, ConnectionView};
use openvgw_control::gateways::{GatewayChanges, GatewayFilter, NewGateway};
use openvgw_control::monitors::GatewayCertificates;
use openvgw_control::Tagged;
use openvgw_core::model::{
    CertificateInfo, ConnectionMode, CryptoSuite, Extensions, GatewayRole, GatewayStatus, HaMode, Job, JobKind,
    JobStatus, RouteOrigin, VpnGateway,
};
use openvgw_core::{validate, Error, Field, Kind, Page, PageRequest, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ext::{EipExt, GatewayExt};
use crate::ops::{Family, NoBody, NoContent};
use crate::spelling;
use crate::wire::{self, ResourceTag};

/// Flavors a gateway can be created with, and the EIP bandwidth each allows (Mbit/s).
const FLAVORS: &[(&str, u32)] = &[("Basic", 100), ("Professional1", 300), ("Professional2", 1000), ("GM", 500)];
/// Documented, but "not yet supported" by the reference itself.
const UNSUPPORTED_FLAVORS: &[&str] = &["Professional1-NonFixedIP", "Professional2-NonFixedIP"];
const EIP_TYPES: &[&str] = &["5_bgp", "5_sbgp", "5_youxuanbgp"];
const DEFAULT_ASN: u64 = 64512;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBody {
    pub vpn_gateway: CreateGateway,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateGateway {
    pub name: Option<String>,
    pub network_type: Option<String>,
    pub attachment_type: Option<String>,
    pub ip_version: Option<String>,
    pub er_id: Option<String>,
    pub vpc_id: Option<String>,
    pub local_subnets: Option<Vec<String>>,
    pub local_subnets_v6: Option<Vec<String>>,
    pub connect_subnet: Option<String>,
    pub bgp_asn: Option<u64>,
    pub flavor: Option<String>,
    pub availability_zone_ids: Option<Vec<String>>,
    pub enterprise_project_id: Option<String>,
    pub eip1: Option<EipRequest>,
    pub eip2: Option<EipRequest>,
    pub access_vpc_id: Option<String>,
    pub access_subnet_id: Option<String>,
    pub ha_mode: Option<String>,
    pub access_private_ip_1: Option<String>,
    pub access_private_ip_2: Option<String>,
    pub tags: Option<Vec<ResourceTag>>,
}

/// An EIP for a new gateway: an existing one by `id`, or a new one described by the other fields.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct EipRequest {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub eip_type: Option<String>,
    pub charge_mode: Option<String>,
    pub bandwidth_size: Option<u32>,
    pub bandwidth_name: Option<String>,
    pub bandwidth_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBody {
    pub vpn_gateway: UpdateGateway,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UpdateGateway {
    pub name: Option<String>,
    pub local_subnets: Option<Vec<String>>,
    pub local_subnets_v6: Option<Vec<String>>,
    pub eip_id_1: Option<String>,
    pub eip_id_2: Option<String>,
    pub policy_template: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SpecificationBody {
    pub vpn_gateway: Specification,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Specification {
    pub flavor: String,
}

/// An EIP as gateways show it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EipView {
    pub id: String,
    pub ip_version: u8,
    #[serde(rename = "type")]
    pub eip_type: String,
    pub ip_address: String,
    pub charge_mode: String,
    pub bandwidth_id: String,
    pub bandwidth_size: u32,
    pub bandwidth_name: String,
    pub share_type: &'static str,
}

/// The gateway object. Create and update answers carry a documented subset of it (the `Option` fields).
#[derive(Debug, Serialize, JsonSchema)]
pub struct GatewayView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    pub attachment_type: &'static str,
    pub ip_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    pub vpc_id: String,
    pub local_subnets: Vec<String>,
    pub connect_subnet: String,
    pub network_type: &'static str,
    pub access_vpc_id: String,
    pub access_subnet_id: String,
    pub bgp_asn: u64,
    pub flavor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_border_group: Option<&'static str>,
    pub connection_number: u64,
    pub used_connection_number: u64,
    pub used_connection_group: u64,
    pub enterprise_project_id: String,
    pub ha_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip1: Option<EipView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip2: Option<EipView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_flavors: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_features: Option<Vec<&'static str>>,
    pub tags: Vec<ResourceTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_info: Option<&'static str>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Created {
    pub vpn_gateway: GatewayView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Shown {
    pub vpn_gateway: GatewayView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    pub vpn_gateways: Vec<GatewayView>,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Updated {
    pub vpn_gateway: GatewayView,
    pub request_id: String,
}

/// Which parts of the gateway object an answer carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Created,
    Updated,
    Full,
}

/// Connections and distinct customer gateways per gateway.
#[derive(Default, Clone, Copy)]
struct Usage {
    connections: u64,
    groups: u64,
}

fn usage_by_gateway(conns: &[ConnectionView]) -> HashMap<String, Usage> {
    let mut peers: HashMap<&str, Vec<&str>> = HashMap::new();
    for v in conns {
        peers.entry(v.connection.gateway_id.as_str()).or_default().push(v.connection.customer_gateway_id.as_str());
    }
    peers
        .into_iter()
        .map(|(gw, mut cgws)| {
            let connections = cgws.len() as u64;
            cgws.sort_unstable();
            cgws.dedup();
            (gw.to_string(), Usage { connections, groups: cgws.len() as u64 })
        })
        .collect()
}

/// The `i`-th EIP of a gateway with what was recorded of its billing.
pub fn eip_view(gw: &VpnGateway, ext: &GatewayExt, i: usize) -> Option<EipView> {
    let ip = gw.public_ips.get(i)?;
    let e = ext.eips.get(i).cloned().unwrap_or_default();
    Some(EipView {
        id: ip.id.clone(),
        ip_version: 4,
        eip_type: if e.eip_type.is_empty() { "5_bgp".into() } else { e.eip_type },
        ip_address: ip.address.to_string(),
        charge_mode: if e.charge_mode.is_empty() { "bandwidth".into() } else { e.charge_mode },
        bandwidth_id: e.bandwidth_id,
        bandwidth_size: if e.bandwidth_size == 0 { gw.bandwidth_mbps } else { e.bandwidth_size },
        bandwidth_name: e.bandwidth_name,
        share_type: "PER",
    })
}

fn flavor_of(gw: &VpnGateway, ext: &GatewayExt) -> String {
    if !ext.flavor.is_empty() {
        ext.flavor.clone()
    } else if gw.crypto_suite == CryptoSuite::NationalStandard {
        "GM".into()
    } else {
        "Professional1".into()
    }
}

/// Flavors a gateway can change to: the other standard ones (GM gateways keep GM).
fn supported_flavors(flavor: &str) -> Vec<&'static str> {
    if flavor == "GM" {
        return vec![];
    }
    FLAVORS.iter().map(|(f, _)| *f).filter(|f| *f != "GM" && *f != flavor).collect()
}

/// An upgrade that waits for `finish` or `rollback`.
pub fn awaiting_upgrade(j: &Job) -> bool {
    j.kind == JobKind::Upgrade && j.status == JobStatus::AwaitingConfirmation
}

/// The status, with an upgrade waiting for confirmation shown as such.
pub fn status_word(gw: &VpnGateway, awaiting_upgrade: bool) -> &'static str {
    if awaiting_upgrade && gw.status() == GatewayStatus::Active {
        "PENDING_UPGRADE_CONFIRM"
    } else {
        spelling::gateway_status(gw.status())
    }
}

fn view(
    c: &Call,
    t: &Tagged<VpnGateway>,
    usage: Usage,
    certificate_id: Option<String>,
    awaiting_upgrade: bool,
    shape: Shape,
) -> GatewayView {
    let gw = &t.item;
    let ext: GatewayExt = gw.ext.get();
    let flavor = flavor_of(gw, &ext);
    let full = shape == Shape::Full;
    let after_create = shape != Shape::Created;
    GatewayView {
        id: gw.id.clone(),
        name: gw.name.clone(),
        status: full.then(|| status_word(gw, awaiting_upgrade)),
        attachment_type: "vpc",
        ip_version: "ipv4",
        certificate_id,
        vpc_id: gw.vpc_id.clone(),
        local_subnets: gw.local_subnets.iter().map(ToString::to_string).collect(),
        connect_subnet: gw.subnet_id.clone(),
        network_type: "public",
        access_vpc_id: if ext.access_vpc_id.is_empty() { gw.vpc_id.clone() } else { ext.access_vpc_id.clone() },
        access_subnet_id: if ext.access_subnet_id.is_empty() {
            gw.subnet_id.clone()
        } else {
            ext.access_subnet_id.clone()
        },
        bgp_asn: gw.bgp_asn.unwrap_or(DEFAULT_ASN),
        availability_zone_ids: after_create.then(|| ext.availability_zone_ids.clone()),
        public_border_group: full.then_some("center"),
        connection_number: c.svc.config().quotas.connections_per_gateway,
        used_connection_number: usage.connections,
        used_connection_group: usage.groups,
        enterprise_project_id: ext.enterprise_project(),
        ha_mode: match gw.ha_mode {
            HaMode::ActiveStandby => "active-standby",
            _ => "active-active",
        },
        eip1: after_create.then(|| eip_view(gw, &ext, 0)).flatten(),
        eip2: after_create.then(|| eip_view(gw, &ext, 1)).flatten(),
        created_at: after_create.then(|| wire::ts(gw.created_at)),
        applied_at: full.then(|| wire::ts(gw.created_at)),
        updated_at: after_create.then(|| wire::ts(gw.updated_at)),
        supported_flavors: full.then(|| supported_flavors(&flavor)),
        supported_features: full.then(|| vec!["query_connection_log"]),
        tags: ResourceTag::of(&t.tags),
        upgrade_info: full.then_some(if awaiting_upgrade { "unready" } else { "ready" }),
        flavor,
    }
}

impl Call<'_> {
    fn certificate_id(&self, gw: &VpnGateway) -> Result<Option<String>, HwError> {
        if gw.crypto_suite != CryptoSuite::NationalStandard {
            return Ok(None);
        }
        let cert = self.svc.gateway_certificate(self.scope()?, &gw.id).map_err(|e| self.core(e))?;
        Ok(cert.map(|c| c.id))
    }

    fn gateway_view(&self, t: &Tagged<VpnGateway>, shape: Shape) -> Result<GatewayView, HwError> {
        let f = ConnectionFilter { gateway_id: Some(t.item.id.clone()), ..Default::default() };
        let conns = self.svc.list_connections(self.scope()?, &f, &PageRequest::ALL).map_err(|e| self.core(e))?;
        let usage = usage_by_gateway(&conns.items).get(&t.item.id).copied().unwrap_or_default();
        let awaiting = self.pending_upgrade(&t.item.id)?.is_some();
        Ok(view(self, t, usage, self.certificate_id(&t.item)?, awaiting, shape))
    }

    /// The upgrade job of a gateway that waits for `finish` or `rollback`.
    fn pending_upgrade(&self, gateway_id: &str) -> Result<Option<Job>, HwError> {
        let jobs = self.svc.list_jobs(self.scope()?, Some(gateway_id)).map_err(|e| self.core(e))?;
        Ok(jobs.into_iter().find(awaiting_upgrade))
    }
}

fn local_subnets(values: &[String]) -> Result<Vec<ipnet::Ipv4Net>, HwError> {
    if values.len() > 50 {
        return Err(HwError::invalid("local_subnets: at most 50 CIDR blocks"));
    }
    validate::cidrs(values, Field::LocalSubnets).map_err(|e| crate::error::from_core(&e, Family::S2c))
}

/// A new EIP's attributes; an existing EIP cannot be bound (openvgw has no EIP service to own one).
pub fn new_eip(e: &EipRequest, which: &str, flavor_cap: u32, name_prefix: &str) -> Result<EipExt, HwError> {
    let new_fields = e.eip_type.is_some()
        || e.charge_mode.is_some()
        || e.bandwidth_size.is_some()
        || e.bandwidth_name.as_deref().is_some_and(|n| !n.is_empty())
        || e.bandwidth_id.is_some();
    if let Some(id) = &e.id {
        if new_fields {
            return Err(HwError::new(400, "VPN.0559", "EIP parameter conflict."));
        }
        return Err(HwError::new(400, "VPN.0551", format!("EIP {id} is not found.")));
    }
    let eip_type = e.eip_type.clone().ok_or_else(|| HwError::new(400, "VPN.0558", "Incomplete EIP parameters."))?;
    if !EIP_TYPES.contains(&eip_type.as_str()) {
        return Err(HwError::new(400, "VPN.0556", format!("EIP type {eip_type} is invalid.")));
    }
    if let Some(b) = &e.bandwidth_id {
        return Err(HwError::invalid(format!("{which}.bandwidth_id: shared bandwidth {b} does not exist")));
    }
    let charge_mode = e.charge_mode.clone().unwrap_or_else(|| "bandwidth".into());
    if charge_mode != "bandwidth" && charge_mode != "traffic" {
        return Err(HwError::invalid(format!("{which}.charge_mode must be bandwidth or traffic")));
    }
    let size = e.bandwidth_size.ok_or_else(|| HwError::new(400, "VPN.0558", "Incomplete EIP parameters."))?;
    wire::range(&format!("{which}.bandwidth_size"), i64::from(size), 1, 1000)?;
    if size > flavor_cap {
        return Err(HwError::new(
            400,
            "VPN.0550",
            "The EIP bandwidth exceeds the upper limit defined by the specification.",
        ));
    }
    let bandwidth_name = match e.bandwidth_name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => {
            wire::name_of(n, 1, 64, "_-.", Field::Bandwidth)?;
            n.to_string()
        }
        None => wire::default_name(name_prefix),
    };
    Ok(EipExt {
        eip_type,
        charge_mode,
        bandwidth_size: size,
        bandwidth_name,
        bandwidth_id: openvgw_core::ids::uuid_v4(),
    })
}

/// Availability zones: the documented count (two where the region has two or more), known and distinct; the first
/// zones when none are given.
pub fn zones(c: &Call, given: Option<Vec<String>>) -> Result<Vec<String>, HwError> {
    let known = c.svc.config().regions.zones_of(&c.scope()?.region);
    let want = known.len().min(2);
    match given {
        None => Ok(known.into_iter().take(want).collect()),
        Some(z) if z.is_empty() => Ok(known.into_iter().take(want).collect()),
        Some(z) => {
            if z.len() != want {
                return Err(HwError::new(400, "VPN.0514", "Two AZs must be specified."));
            }
            if z.len() == 2 && z[0] == z[1] {
                return Err(HwError::new(400, "VPN.0515", "Duplicate AZs."));
            }
            if let Some(bad) = z.iter().find(|a| !known.contains(a)) {
                return Err(HwError::invalid(format!("availability_zone_ids: {bad} is not a zone of this region")));
            }
            Ok(z)
        }
    }
}

pub fn enterprise_project(v: Option<String>) -> Result<String, HwError> {
    match v {
        None => Ok("0".into()),
        Some(p) if p == "0" => Ok(p),
        Some(p) => {
            wire::uuid_like("enterprise_project_id", &p)?;
            Ok(p)
        }
    }
}

pub fn create(c: &Call, body: CreateBody) -> Result<Created, HwError> {
    let g = body.vpn_gateway;
    if let Some(n) = &g.name {
        wire::name(n)?;
    }
    for (field, value, supported) in [
        ("network_type", &g.network_type, "public"),
        ("attachment_type", &g.attachment_type, "vpc"),
        ("ip_version", &g.ip_version, "ipv4"),
    ] {
        match value.as_deref() {
            None => {}
            Some(v) if v == supported => {}
            Some(v) if ["public", "private", "vpc", "er", "ipv4", "ipv6"].contains(&v) => {
                return Err(HwError::invalid(format!(
                    "{field} {v} is not supported by this service (only {supported})"
                )))
            }
            Some(v) => return Err(HwError::invalid(format!("{field} {v} is not a valid value"))),
        }
    }
    if g.er_id.is_some()
        || g.local_subnets_v6.is_some()
        || g.access_private_ip_1.is_some()
        || g.access_private_ip_2.is_some()
    {
        return Err(HwError::invalid(
            "er_id, local_subnets_v6 and access_private_ip_* apply only to er, ipv6 and private gateways",
        ));
    }
    let vpc_id = g.vpc_id.ok_or_else(|| HwError::invalid("vpc_id is required for a vpc gateway"))?;
    wire::uuid_like("vpc_id", &vpc_id)?;
    let subnet = g.connect_subnet.ok_or_else(|| HwError::invalid("connect_subnet is required for a vpc gateway"))?;
    wire::uuid_like("connect_subnet", &subnet)?;
    for (f, v) in [("access_vpc_id", &g.access_vpc_id), ("access_subnet_id", &g.access_subnet_id)] {
        if let Some(v) = v {
            wire::uuid_like(f, v)?;
        }
    }
    let locals = local_subnets(&g.local_subnets.ok_or_else(|| HwError::invalid("local_subnets is required"))?)?;
    let asn = g.bgp_asn.unwrap_or(DEFAULT_ASN);
    wire::range("bgp_asn", asn as i64, 1, 4_294_967_295)?;
    let flavor = g.flavor.unwrap_or_else(|| "Professional1".into());
    if UNSUPPORTED_FLAVORS.contains(&flavor.as_str()) {
        return Err(HwError::invalid(format!("flavor {flavor} is not supported yet")));
    }
    let cap = FLAVORS
        .iter()
        .find(|(f, _)| *f == flavor)
        .map(|(_, cap)| *cap)
        .ok_or_else(|| HwError::invalid("flavor must be Basic, Professional1, Professional2 or GM"))?;
    let ha_mode = match g.ha_mode.as_deref() {
        None => HaMode::ActiveActive,
        Some(m) => wire::one_of("ha_mode", m, spelling::HA_MODE)?,
    };
    let (Some(e1), Some(e2)) = (&g.eip1, &g.eip2) else {
        return Err(HwError::new(400, "VPN.0558", "Incomplete EIP parameters."));
    };
    let eips = vec![new_eip(e1, "eip1", cap, "vpngw-bandwidth")?, new_eip(e2, "eip2", cap, "vpngw-bandwidth")?];
    let zones = zones(c, g.availability_zone_ids)?;
    let ext = GatewayExt {
        flavor: flavor.clone(),
        availability_zone_ids: zones,
        enterprise_project_id: enterprise_project(g.enterprise_project_id)?,
        access_vpc_id: g.access_vpc_id.unwrap_or_default(),
        access_subnet_id: g.access_subnet_id.unwrap_or_default(),
        eips: eips.clone(),
        log_config: None,
        order_id: String::new(),
    };
    let input = NewGateway {
        name: Some(g.name.unwrap_or_else(|| wire::default_name("vpngw"))),
        description: String::new(),
        vpc_id,
        subnet_id: subnet,
        local_subnets: locals,
        bandwidth_mbps: eips[0].bandwidth_size,
        role: GatewayRole::Site,
        ipsec_enabled: true,
        ssl_enabled: false,
        ssl_max_connections: 0,
        crypto_suite: if flavor == "GM" { CryptoSuite::NationalStandard } else { CryptoSuite::Standard },
        ha_mode,
        bgp_asn: Some(asn),
        tags: wire::creation_tags(g.tags)?,
        ext: Extensions::of(&ext),
    };
    let gw = c.svc.create_gateway(&c.ctx()?, input).map_err(|e| c.core(e))?;
    let tagged = c.svc.get_gateway(c.scope()?, &gw.id).map_err(|e| c.core(e))?;
    Ok(Created {
        vpn_gateway: view(c, &tagged, Usage::default(), None, false, Shape::Created),
        request_id: c.request_id(),
    })
}

pub fn show(c: &Call, _: NoBody) -> Result<Shown, HwError> {
    let gw = c.path_gateway()?;
    Ok(Shown { vpn_gateway: c.gateway_view(&gw, Shape::Full)?, request_id: c.request_id() })
}

pub fn list(c: &Call, _: NoBody) -> Result<Listed, HwError> {
    let scope = c.scope()?;
    let ids = c.query_all("vgw_id");
    let projects = c.query_all("enterprise_project_id");
    let filter = GatewayFilter { role: Some(GatewayRole::Site), ..Default::default() };
    let gateways = c.svc.list_gateways(scope, &filter, &PageRequest::ALL).map_err(|e| c.core(e))?;
    let conns =
        c.svc.list_connections(scope, &ConnectionFilter::default(), &PageRequest::ALL).map_err(|e| c.core(e))?;
    let usage = usage_by_gateway(&conns.items);
    let awaiting: Vec<String> = c
        .svc
        .list_jobs(scope, None)
        .map_err(|e| c.core(e))?
        .into_iter()
        .filter(awaiting_upgrade)
        .map(|j| j.resource_id)
        .collect();
    let mut out = Vec::new();
    for t in &gateways.items {
        let ext: GatewayExt = t.item.ext.get();
        if !ids.is_empty() && !ids.contains(&t.item.id.as_str()) {
            continue;
        }
        if !projects.is_empty() && !projects.contains(&ext.enterprise_project().as_str()) {
            continue;
        }
        let u = usage.get(&t.item.id).copied().unwrap_or_default();
        let cert = c.certificate_id(&t.item)?;
        out.push(view(c, t, u, cert, awaiting.contains(&t.item.id), Shape::Full));
    }
    Ok(Listed { vpn_gateways: out, request_id: c.request_id() })
}

pub fn update(c: &Call, body: UpdateBody) -> Result<Updated, HwError> {
    let u = body.vpn_gateway;
    let current = c.path_gateway()?;
    require_active(c, &current.item)?;
    if let Some(n) = &u.name {
        wire::name(n)?;
    }
    if u.local_subnets_v6.is_some() {
        return Err(HwError::invalid("local_subnets_v6 applies only to ipv6 gateways"));
    }
    if u.eip_id_1.is_some() || u.eip_id_2.is_some() {
        // Both EIPs stay bound for the gateway's life; the reference requires unbinding the old one first.
        return Err(HwError::new(400, "VPN.0512", "The gateway already has an EIP bound."));
    }
    if u.policy_template.is_some() {
        return Err(HwError::invalid(
            "policy_template applies only to Professional1-NonFixedIP and Professional2-NonFixedIP gateways",
        ));
    }
    let changes = GatewayChanges {
        name: u.name,
        local_subnets: u.local_subnets.as_deref().map(local_subnets).transpose()?,
        ..Default::default()
    };
    let gw = c.svc.modify_gateway(&c.ctx()?, &current.item.id, changes).map_err(|e| c.core(e))?;
    let tagged = Tagged { item: gw, tags: current.tags };
    Ok(Updated { vpn_gateway: c.gateway_view(&tagged, Shape::Updated)?, request_id: c.request_id() })
}

/// A gateway takes updates, even a rename, only while `ACTIVE` (the reference's "not ready" answers).
pub fn require_active(c: &Call, gw: &VpnGateway) -> Result<(), HwError> {
    match gw.status() {
        GatewayStatus::Active => Ok(()),
        status => Err(c.core(Error::GatewayBusy { id: gw.id.clone(), status })),
    }
}

pub fn update_specification(c: &Call, body: SpecificationBody) -> Result<Updated, HwError> {
    let current = c.path_gateway()?;
    let ext: GatewayExt = current.item.ext.get();
    let flavor = body.vpn_gateway.flavor;
    let now = flavor_of(&current.item, &ext);
    if flavor == now {
        return Err(HwError::invalid(format!("the gateway already has flavor {flavor}")));
    }
    if !supported_flavors(&now).contains(&flavor.as_str()) {
        return Err(HwError::invalid(format!("flavor {flavor} is not one of the gateway's supported_flavors")));
    }
    if current.item.status() != GatewayStatus::Active {
        return Err(c.core(Error::GatewayBusy { id: current.item.id.clone(), status: current.item.status() }));
    }
    let cap = FLAVORS.iter().find(|(f, _)| *f == flavor).map(|(_, cap)| *cap).unwrap_or(0);
    if ext.eips.iter().any(|e| e.bandwidth_size > cap) {
        return Err(HwError::new(
            400,
            "VPN.0550",
            "The EIP bandwidth exceeds the upper limit defined by the specification.",
        ));
    }
    let new_flavor = flavor.clone();
    let changes = GatewayChanges {
        ext: Some(std::sync::Arc::new(move |x: &mut Extensions| {
            let mut e: GatewayExt = x.get();
            e.flavor = new_flavor.clone();
            x.set(&e);
            Ok(())
        })),
        ..Default::default()
    };
    let gw = c.svc.modify_gateway(&c.ctx()?, &current.item.id, changes).map_err(|e| c.core(e))?;
    let tagged = Tagged { item: gw, tags: current.tags };
    Ok(Updated { vpn_gateway: c.gateway_view(&tagged, Shape::Updated)?, request_id: c.request_id() })
}

pub fn delete(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    let gw = c.path_gateway()?;
    if gw.item.status() == GatewayStatus::Init || gw.item.status() == GatewayStatus::Provisioning {
        return Err(c.core(Error::GatewayBusy { id: gw.item.id.clone(), status: gw.item.status() }));
    }
    c.svc.delete_gateway(&c.ctx()?, &gw.item.id).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ZonesByAttachment {
    pub vpc: Vec<String>,
    pub er: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ZonesByFlavor {
    pub basic: ZonesByAttachment,
    pub professional1: ZonesByAttachment,
    pub professional2: ZonesByAttachment,
    #[serde(rename = "Professional1-NonFixedIP")]
    pub professional1_non_fixed_ip: ZonesByAttachment,
    #[serde(rename = "Professional2-NonFixedIP")]
    pub professional2_non_fixed_ip: ZonesByAttachment,
    pub gm: ZonesByAttachment,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Zones {
    pub availability_zones: ZonesByFlavor,
    pub request_id: String,
}

pub fn availability_zones(c: &Call, _: NoBody) -> Result<Zones, HwError> {
    let zones = c.svc.config().regions.zones_of(&c.scope()?.region);
    let vpc = |z: &Vec<String>| ZonesByAttachment { vpc: z.clone(), er: vec![] };
    let none = || ZonesByAttachment { vpc: vec![], er: vec![] };
    Ok(Zones {
        availability_zones: ZonesByFlavor {
            basic: vpc(&zones),
            professional1: vpc(&zones),
            professional2: vpc(&zones),
            professional1_non_fixed_ip: none(),
            professional2_non_fixed_ip: none(),
            gm: vpc(&zones),
        },
        request_id: c.request_id(),
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AvailableSpec {
    pub flavor: &'static str,
    pub attachment_type: &'static str,
    pub ip_version: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExtendedZone {
    pub name: String,
    pub public_border_group: &'static str,
    pub available_specs: Vec<AvailableSpec>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExtendedZones {
    pub availability_zones: Vec<ExtendedZone>,
    pub request_id: String,
}

pub fn extended_availability_zones(c: &Call, _: NoBody) -> Result<ExtendedZones, HwError> {
    let zones = c.svc.config().regions.zones_of(&c.scope()?.region);
    let specs = || {
        FLAVORS.iter().map(|(f, _)| AvailableSpec { flavor: f, attachment_type: "vpc", ip_version: "ipv4" }).collect()
    };
    Ok(ExtendedZones {
        availability_zones: zones
            .into_iter()
            .map(|name| ExtendedZone { name, public_border_group: "center", available_specs: specs() })
            .collect(),
        request_id: c.request_id(),
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NexthopResource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RouteView {
    pub destination: String,
    pub nexthop: String,
    pub outbound_interface_ip: String,
    pub origin: &'static str,
    pub as_path: String,
    pub med: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nexthop_resource: Option<NexthopResource>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RoutingTable {
    pub routing_table: Vec<RouteView>,
    pub total_count: u64,
    pub page_info: wire::PageInfo,
}

/// The gateway's routes towards its connections: the peer subnets of static and policy connections, and the
/// routes the system added (learned over BGP), each with the tunnel it leaves through.
pub fn routing_table(c: &Call, _: NoBody) -> Result<RoutingTable, HwError> {
    let gw = c.path_gateway()?.item;
    let scope = c.scope()?;
    let with_resource = c.query_bool("is_include_nexthop_resource")?.unwrap_or(false);
    let f = ConnectionFilter { gateway_id: Some(gw.id.clone()), ..Default::default() };
    let conns = c.svc.list_connections(scope, &f, &PageRequest::ALL).map_err(|e| c.core(e))?;
    let mut routes = Vec::new();
    let mut by_id = HashMap::new();
    for v in &conns.items {
        let conn = &v.connection;
        let local = gw.public_ips.get(usize::from(conn.public_ip_index)).map(|p| p.address.to_string());
        let outbound = conn.inside.as_ref().and_then(|i| i.local).map(|a| a.to_string()).or(local).unwrap_or_default();
        let nexthop = conn
            .inside
            .as_ref()
            .and_then(|i| i.peer())
            .map(|a| a.to_string())
            .or_else(|| v.customer_gateway.address().map(|a| a.to_string()))
            .unwrap_or_default();
        by_id.insert(conn.id.clone(), (nexthop.clone(), outbound.clone()));
        if conn.mode == ConnectionMode::Bgp {
            continue;
        }
        for dest in &conn.remote_subnets {
            routes.push(RouteView {
                destination: dest.to_string(),
                nexthop: nexthop.clone(),
                outbound_interface_ip: outbound.clone(),
                origin: "incomplete",
                as_path: String::new(),
                med: 0,
                nexthop_resource: with_resource
                    .then(|| NexthopResource { id: conn.id.clone(), kind: "vpn_connection" }),
            });
        }
    }
    let learned =
        c.svc.list_routes(scope, &gw.id, false, Some(RouteOrigin::System), &PageRequest::ALL).map_err(|e| c.core(e))?;
    for r in learned.items {
        let (nexthop, outbound) = by_id.get(&r.next_hop).cloned().unwrap_or_default();
        let peer_asn = conns
            .items
            .iter()
            .find(|v| v.connection.id == r.next_hop)
            .and_then(|v| v.customer_gateway.asn)
            .map(|a| a.to_string())
            .unwrap_or_default();
        routes.push(RouteView {
            destination: r.dest.to_string(),
            nexthop,
            outbound_interface_ip: outbound,
            origin: "egp",
            // The AS path BGP learned it with, as the seed spells it ("64513 64514"); the peer's ASN for a route
            // recorded without one.
            as_path: if r.as_path.is_empty() {
                peer_asn
            } else {
                r.as_path.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
            },
            med: 0,
            nexthop_resource: with_resource.then(|| NexthopResource { id: r.next_hop.clone(), kind: "vpn_connection" }),
        });
    }
    let limit = match c.query_u64("limit")? {
        None | Some(0) => 2000,
        Some(l) => l.min(2000),
    };
    let start = match (c.query_u64("offset")?, c.query("marker")) {
        (Some(o), _) => o,
        (None, Some(m)) => m.parse::<u64>().map_err(|_| HwError::invalid("marker is not one this service issued"))?,
        (None, None) => 0,
    };
    let total = routes.len() as u64;
    let page: Vec<RouteView> = routes.into_iter().skip(start as usize).take(limit as usize).collect();
    let end = start + page.len() as u64;
    let next = (end < total).then(|| openvgw_core::Cursor(end.to_string()));
    let shaped = Page { items: page, total, next };
    Ok(RoutingTable { page_info: wire::PageInfo::of(&shaped), total_count: total, routing_table: shaped.items })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CertificateBody {
    pub certificate: CertificateUpload,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CertificateUpload {
    pub name: Option<String>,
    pub certificate: String,
    pub private_key: String,
    pub certificate_chain: String,
    pub enc_certificate: String,
    pub enc_private_key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CertificateUpdateBody {
    pub certificate: CertificateUpdate,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CertificateUpdate {
    pub name: Option<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub certificate_chain: Option<String>,
    pub enc_certificate: Option<String>,
    pub enc_private_key: Option<String>,
}

/// A gateway's certificates as uploads answer them.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateConfigView {
    pub id: String,
    pub name: String,
    pub vgw_id: String,
    pub issuer: String,
    pub signature_algorithm: String,
    pub certificate_serial_number: String,
    pub certificate_subject: String,
    pub certificate_expire_time: String,
    pub certificate_chain_serial_number: String,
    pub certificate_chain_subject: String,
    pub certificate_chain_expire_time: String,
    pub enc_certificate_serial_number: String,
    pub enc_certificate_subject: String,
    pub enc_certificate_expire_time: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateConfig {
    pub certificate: CertificateConfigView,
    pub request_id: String,
}

/// A gateway's certificates as reads show them: what uploads answer, with the binding's state.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateView {
    #[serde(flatten)]
    pub config: CertificateConfigView,
    pub project_id: String,
    pub status: &'static str,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateShown {
    pub certificate: CertificateView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateList {
    pub vpn_gateway_certificates: Vec<CertificateView>,
    pub request_id: String,
}

/// Parses one PEM certificate of an upload: a national-standard (SM2 key, SM3-with-SM2 signature) certificate, a CA
/// or not as `want_ca` says.
fn certificate(field: &str, pem: &str, want_ca: bool, max: usize) -> Result<CertificateInfo, HwError> {
    if pem.is_empty() || pem.len() > max {
        return Err(HwError::invalid(format!("certificate.{field} must be 1-{max} characters")));
    }
    let i = wire::inspect(field, pem)?;
    if i.key_algorithm != openvgw_pki::KeyAlgorithm::Sm2 {
        return Err(HwError::new(
            400,
            "VPN.0070",
            format!("The key algorithm of the certificate {field} is not supported."),
        ));
    }
    if i.signature_algorithm != "SM3WITHSM2" {
        return Err(HwError::new(
            400,
            "VPN.0071",
            format!("The signature algorithm of the certificate {field} is not supported."),
        ));
    }
    if i.is_ca != want_ca {
        return Err(if want_ca {
            HwError::new(400, "VPN.0076", format!("Certificate {field} is not a CA certificate."))
        } else {
            HwError::invalid(format!("certificate.{field} must not be a CA certificate"))
        });
    }
    Ok(wire::certificate_info(i))
}

/// The private key must be the certificate's own.
fn key_of(field: &str, cert: &CertificateInfo, key: &Secret) -> Result<(), HwError> {
    match openvgw_pki::sm2_key_matches(&cert.pem, key.expose()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(HwError::invalid(format!("certificate.{field} is not the private key of its certificate"))),
        Err(_) => Err(HwError::invalid(format!("certificate.{field} is not an SM2 private key"))),
    }
}

fn private_key(field: &str, pem: &str) -> Result<Secret, HwError> {
    let t = pem.trim();
    if t.is_empty() || t.len() > 4096 || !t.starts_with("-----BEGIN") || !t.contains("PRIVATE KEY-----") {
        return Err(HwError::invalid(format!(
            "certificate.{field} must be a PEM private key of at most 4096 characters"
        )));
    }
    Ok(Secret::new(t.to_string()))
}

fn certificate_config(cert: &openvgw_core::model::GatewayCertificate) -> CertificateConfigView {
    CertificateConfigView {
        id: cert.id.clone(),
        name: cert.name.clone(),
        vgw_id: cert.gateway_id.clone(),
        issuer: cert.certificate.issuer.clone(),
        signature_algorithm: cert.certificate.signature_algorithm.clone(),
        certificate_serial_number: wire::serial_decimal(&cert.certificate.serial),
        certificate_subject: cert.certificate.subject.clone(),
        certificate_expire_time: wire::ts_seconds(cert.certificate.not_after),
        certificate_chain_serial_number: wire::serial_decimal(&cert.chain.serial),
        certificate_chain_subject: cert.chain.subject.clone(),
        certificate_chain_expire_time: wire::ts_seconds(cert.chain.not_after),
        enc_certificate_serial_number: wire::serial_decimal(&cert.enc_certificate.serial),
        enc_certificate_subject: cert.enc_certificate.subject.clone(),
        enc_certificate_expire_time: wire::ts_seconds(cert.enc_certificate.not_after),
        created_at: wire::ts(cert.created_at),
    }
}

fn certificate_view(c: &Call, cert: &openvgw_core::model::GatewayCertificate) -> CertificateView {
    CertificateView {
        config: certificate_config(cert),
        project_id: c.path("project_id").unwrap_or_default().to_string(),
        status: "BOUND",
        updated_at: wire::ts(cert.updated_at),
    }
}

fn certificate_name(name: Option<String>) -> Result<String, HwError> {
    match name {
        Some(n) => {
            wire::name_of(&n, 3, 63, "_-.", Field::Name)?;
            Ok(n)
        }
        None => Ok(wire::default_name("cert")),
    }
}

pub fn upload_certificate(c: &Call, body: CertificateBody) -> Result<CertificateConfig, HwError> {
    let b = body.certificate;
    let gw = c.path_gateway()?;
    let name = certificate_name(b.name)?;
    let certs = GatewayCertificates {
        certificate: certificate("certificate", &b.certificate, false, 4096)?,
        private_key: private_key("private_key", &b.private_key)?,
        chain: certificate("certificate_chain", &b.certificate_chain, true, 8192)?,
        enc_certificate: certificate("enc_certificate", &b.enc_certificate, false, 4096)?,
        enc_private_key: private_key("enc_private_key", &b.enc_private_key)?,
    };
    key_of("private_key", &certs.certificate, &certs.private_key)?;
    key_of("enc_private_key", &certs.enc_certificate, &certs.enc_private_key)?;
    let cert = c.svc.upload_gateway_certificate(&c.ctx()?, &gw.item.id, &name, certs).map_err(|e| c.core(e))?;
    Ok(CertificateConfig { certificate: certificate_config(&cert), request_id: c.request_id() })
}

pub fn show_certificate(c: &Call, _: NoBody) -> Result<CertificateShown, HwError> {
    let gw = c.path_gateway()?;
    let cert = c
        .svc
        .gateway_certificate(c.scope()?, &gw.item.id)
        .map_err(|e| c.core(e))?
        .ok_or_else(|| c.core(Error::not_found(Kind::GatewayCertificate, &gw.item.id)))?;
    Ok(CertificateShown { certificate: certificate_view(c, &cert), request_id: c.request_id() })
}

pub fn update_certificate(c: &Call, body: CertificateUpdateBody) -> Result<CertificateConfig, HwError> {
    let b = body.certificate;
    let gw = c.path_gateway()?;
    let name = b.name.map(|n| certificate_name(Some(n))).transpose()?;
    // A certificate and its key are replaced together.
    if b.certificate.is_some() != b.private_key.is_some() || b.enc_certificate.is_some() != b.enc_private_key.is_some()
    {
        return Err(HwError::invalid("a certificate and its private key are replaced together"));
    }
    let signing = match (&b.certificate, &b.private_key) {
        (Some(cert), Some(key)) => {
            let (cert, key) = (certificate("certificate", cert, false, 4096)?, private_key("private_key", key)?);
            key_of("private_key", &cert, &key)?;
            Some((cert, key))
        }
        _ => None,
    };
    let enc = match (&b.enc_certificate, &b.enc_private_key) {
        (Some(cert), Some(key)) => {
            let (cert, key) =
                (certificate("enc_certificate", cert, false, 4096)?, private_key("enc_private_key", key)?);
            key_of("enc_private_key", &cert, &key)?;
            Some((cert, key))
        }
        _ => None,
    };
    let chain = b.certificate_chain.as_deref().map(|p| certificate("certificate_chain", p, true, 8192)).transpose()?;
    let cert_id = c.path("certificate_id")?;
    let cert = c
        .svc
        .update_gateway_certificate(&c.ctx()?, &gw.item.id, cert_id, name, move |g| {
            if let Some((cert, key)) = signing {
                g.certificate = cert;
                g.private_key = key;
            }
            if let Some((cert, key)) = enc {
                g.enc_certificate = cert;
                g.enc_private_key = key;
            }
            if let Some(ch) = chain {
                g.chain = ch;
            }
            Ok(())
        })
        .map_err(|e| c.core(e))?;
    Ok(CertificateConfig { certificate: certificate_config(&cert), request_id: c.request_id() })
}

pub fn list_certificates(c: &Call, _: NoBody) -> Result<CertificateList, HwError> {
    let horizon = c
        .query_u64("pre_expire_days")?
        .map(|d| openvgw_core::now_ms() + i64::try_from(d).unwrap_or(i64::MAX / 86_400_000).saturating_mul(86_400_000));
    let certs = c.svc.gateway_certificates(c.scope()?).map_err(|e| c.core(e))?;
    let limit = c.query_u64("limit")?.filter(|l| *l > 0).unwrap_or(u64::MAX) as usize;
    let after = c.query("marker");
    let items = certs
        .iter()
        .filter(|g| horizon.is_none_or(|h| g.certificate.not_after <= h))
        .skip_while(|g| after.is_some_and(|m| m != g.id))
        .skip(usize::from(after.is_some()))
        .take(limit)
        .map(|g| certificate_view(c, g))
        .collect();
    Ok(CertificateList { vpn_gateway_certificates: items, request_id: c.request_id() })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpgradeBody {
    pub action: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Upgraded {
    pub job_id: String,
    pub request_id: String,
}

/// openvgw's gateways always run the service's own version, so an upgrade has nothing to replace: `start` records
/// the job's steps as done and waits for `finish` (the version is confirmed) or `rollback`.
pub fn upgrade(c: &Call, body: UpgradeBody) -> Result<Upgraded, HwError> {
    let gw = c.path_gateway()?.item;
    let ctx = c.ctx()?;
    let awaiting = c.pending_upgrade(&gw.id)?;
    let job = match (body.action.as_str(), awaiting) {
        ("start", None) => {
            if gw.status() != GatewayStatus::Active {
                return Err(c.core(Error::GatewayBusy { id: gw.id.clone(), status: gw.status() }));
            }
            let steps = ["prepare_resource", "upgrade_worker_1", "upgrade_worker_2"];
            c.svc.record_job(&ctx, &gw.id, JobKind::Upgrade, &steps, true).map_err(|e| c.core(e))?
        }
        ("start", Some(_)) => return Err(HwError::new(400, "VPN.0031", "Repeated operation.")),
        ("finish", Some(job)) => c.svc.finish_job(&ctx, &job.id, JobStatus::Succeeded).map_err(|e| c.core(e))?,
        ("rollback", Some(job)) => {
            c.svc.finish_job(&ctx, &job.id, JobStatus::Failed).map_err(|e| c.core(e))?;
            let steps = ["upgrade_worker_1", "upgrade_worker_2"];
            c.svc.record_job(&ctx, &gw.id, JobKind::Rollback, &steps, false).map_err(|e| c.core(e))?
        }
        ("finish" | "rollback", None) => {
            return Err(HwError::invalid("the gateway has no upgrade waiting for confirmation"))
        }
        _ => return Err(HwError::invalid("action must be start, finish or rollback")),
    };
    Ok(Upgraded { job_id: job.id, request_id: c.request_id() })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SubJobView {
    pub id: String,
    pub job_type: String,
    pub status: &'static str,
    pub expected_time_seconds: u32,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub error_message: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JobView {
    pub id: String,
    pub resource_id: String,
    pub job_type: &'static str,
    pub status: &'static str,
    pub created_at: String,
    pub expected_time_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub error_message: String,
    pub sub_jobs: Vec<SubJobView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    pub request_id: String,
}

fn job_view(j: &Job) -> JobView {
    JobView {
        id: j.id.clone(),
        resource_id: j.resource_id.clone(),
        job_type: spelling::job_type(j.kind),
        status: spelling::job_status(j.kind, j.status),
        created_at: wire::ts(j.created_at),
        expected_time_seconds: 0,
        finished_at: j.finished_at.map(wire::ts),
        error_message: if j.status == JobStatus::Failed && j.kind == JobKind::Upgrade {
            "rolled back".into()
        } else {
            j.error.clone()
        },
        sub_jobs: j
            .steps
            .iter()
            .map(|s| SubJobView {
                id: s.id.clone(),
                job_type: s.name.clone(),
                status: spelling::step_status(s.status),
                expected_time_seconds: 0,
                created_at: wire::ts(s.created_at),
                finished_at: s.finished_at.map(wire::ts),
                error_message: String::new(),
            })
            .collect(),
    }
}

/// The role of the gateways this operation's jobs belong to.
fn job_role(c: &Call) -> GatewayRole {
    if c.op.family() == Family::P2c {
        GatewayRole::Client
    } else {
        GatewayRole::Site
    }
}

pub fn list_jobs(c: &Call, _: NoBody) -> Result<JobList, HwError> {
    let scope = c.scope()?;
    let role = job_role(c);
    let gateways = c
        .svc
        .list_gateways(scope, &GatewayFilter { role: Some(role), ..Default::default() }, &PageRequest::ALL)
        .map_err(|e| c.core(e))?;
    let ids: Vec<&str> = gateways.items.iter().map(|g| g.item.id.as_str()).collect();
    let jobs = c.svc.list_jobs(scope, c.query("resource_id")).map_err(|e| c.core(e))?;
    let limit = c.query_u64("limit")?.filter(|l| *l > 0).unwrap_or(u64::MAX) as usize;
    let after = c.query("marker");
    let items = jobs
        .iter()
        .filter(|j| ids.contains(&j.resource_id.as_str()))
        .skip_while(|j| after.is_some_and(|m| m != j.id))
        .skip(usize::from(after.is_some()))
        .take(limit)
        .map(job_view)
        .collect();
    Ok(JobList { jobs: items, request_id: c.request_id() })
}

pub fn delete_job(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    let scope = c.scope()?;
    let id = c.path("job_id")?;
    let job = c
        .svc
        .list_jobs(scope, None)
        .map_err(|e| c.core(e))?
        .into_iter()
        .find(|j| j.id == id)
        .ok_or_else(HwError::not_found)?;
    // A job is listed under its gateway's kind, and only there can it be deleted.
    let gw = c.svc.get_gateway(scope, &job.resource_id).ok();
    if gw.is_some_and(|g| g.item.role != job_role(c)) {
        return Err(HwError::not_found());
    }
    if matches!(job.status, JobStatus::Running | JobStatus::AwaitingConfirmation) {
        return Err(HwError::invalid("the job is still running"));
    }
    c.svc.delete_job(&c.ctx()?, id).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_change_among_standard_ones() {
        assert_eq!(supported_flavors("Professional1"), vec!["Basic", "Professional2"]);
        assert!(supported_flavors("GM").is_empty());
    }
}
