//! Client-to-site (P2C) VPN gateways (reference 4.2.1): gateways, their zones, live client connections and log
//! targets. Upgrades and jobs are shared with site-to-cloud gateways (`gateways.rs`).

use openvgw_control::gateways::{GatewayChanges, GatewayFilter, NewGateway};
use openvgw_control::ssl::SslServerFilter;
use openvgw_control::Tagged;
use openvgw_core::model::{CryptoSuite, Extensions, GatewayRole, HaMode, VpnGateway};
use openvgw_core::{Page, PageRequest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ext::{GatewayExt, LogConfig};
use crate::handlers::gateways::{
    awaiting_upgrade, eip_view, enterprise_project, new_eip, status_word, zones, EipRequest, EipView,
};
use crate::ops::{NoBody, NoContent, RequestIdOnly};
use crate::wire::{self, PageInfo, ResourceTag};

/// Clients a gateway serves when the request does not say (the reference's examples).
const DEFAULT_CONNECTIONS: u32 = 10;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBody {
    pub p2c_vpn_gateway: CreateP2cGateway,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateP2cGateway {
    pub name: Option<String>,
    pub vpc_id: String,
    pub connect_subnet: String,
    pub flavor: Option<String>,
    pub availability_zone_ids: Option<Vec<String>>,
    pub eip: EipRequest,
    pub max_connection_number: Option<u32>,
    pub enterprise_project_id: Option<String>,
    pub tags: Option<Vec<ResourceTag>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBody {
    pub p2c_vpn_gateway: UpdateP2cGateway,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateP2cGateway {
    pub name: Option<String>,
    pub eip_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Id {
    pub id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IdOnly {
    pub p2c_vpn_gateway: Id,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct P2cGatewayView {
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub vpc_id: String,
    pub connect_subnet: String,
    pub flavor: String,
    pub availability_zone_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip: Option<EipView>,
    pub max_connection_number: u32,
    pub current_connection_number: u32,
    pub enterprise_project_id: String,
    pub tags: Vec<ResourceTag>,
    pub order_id: String,
    pub admin_state_up: bool,
    pub frozen_effect: u8,
    pub version: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub applied_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Shown {
    pub p2c_vpn_gateway: P2cGatewayView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    pub p2c_vpn_gateways: Vec<P2cGatewayView>,
    pub total_count: u64,
    pub page_info: PageInfo,
    pub request_id: String,
}

fn view(t: &Tagged<VpnGateway>, sessions: u32, awaiting_upgrade: bool) -> P2cGatewayView {
    let gw = &t.item;
    let ext: GatewayExt = gw.ext.get();
    P2cGatewayView {
        id: gw.id.clone(),
        name: gw.name.clone(),
        status: status_word(gw, awaiting_upgrade),
        vpc_id: gw.vpc_id.clone(),
        connect_subnet: gw.subnet_id.clone(),
        flavor: if ext.flavor.is_empty() { "Professional1".into() } else { ext.flavor.clone() },
        availability_zone_ids: ext.availability_zone_ids.clone(),
        eip: eip_view(gw, &ext, 0),
        max_connection_number: gw.ssl_max_connections,
        current_connection_number: sessions,
        enterprise_project_id: ext.enterprise_project(),
        tags: ResourceTag::of(&t.tags),
        order_id: ext.order_id.clone(),
        admin_state_up: true,
        frozen_effect: 0,
        version: env!("CARGO_PKG_VERSION"),
        created_at: wire::ts(gw.created_at),
        updated_at: wire::ts(gw.updated_at),
        applied_at: wire::ts(gw.created_at),
    }
}

impl Call<'_> {
    /// Client sessions the data plane last reported for the gateway's server.
    fn session_count(&self, gateway_id: &str) -> Result<u32, HwError> {
        let f = SslServerFilter { gateway_id: Some(gateway_id.to_string()), ..Default::default() };
        let servers = self.svc.list_ssl_servers(self.scope()?, &f, &PageRequest::ALL).map_err(|e| self.core(e))?;
        Ok(servers.items.iter().map(|(s, _)| s.connections).sum())
    }

    fn awaiting(&self, gateway_id: &str) -> Result<bool, HwError> {
        let jobs = self.svc.list_jobs(self.scope()?, Some(gateway_id)).map_err(|e| self.core(e))?;
        Ok(jobs.iter().any(awaiting_upgrade))
    }
}

pub fn create(c: &Call, body: CreateBody) -> Result<IdOnly, HwError> {
    let g = body.p2c_vpn_gateway;
    if let Some(n) = &g.name {
        wire::name_of(n, 1, 64, "_-", openvgw_core::Field::Name)?;
    }
    wire::uuid_like("vpc_id", &g.vpc_id)?;
    wire::uuid_like("connect_subnet", &g.connect_subnet)?;
    let flavor = g.flavor.unwrap_or_else(|| "Professional1".into());
    if flavor != "Professional1" {
        return Err(HwError::invalid("flavor must be Professional1"));
    }
    let max = g.max_connection_number.unwrap_or(DEFAULT_CONNECTIONS);
    if !(1..=500).contains(&max) {
        return Err(HwError::new(
            400,
            "VPN.0504",
            "The number of connections exceeds the upper limit defined by the specification.",
        ));
    }
    // The reference caps a client-to-site gateway's EIP at 300 Mbit/s.
    let eip = new_eip(&g.eip, "eip", 300, "p2c-vpngw-bandwidth")?;
    let ext = GatewayExt {
        flavor,
        availability_zone_ids: zones(c, g.availability_zone_ids)?,
        enterprise_project_id: enterprise_project(g.enterprise_project_id)?,
        access_vpc_id: String::new(),
        access_subnet_id: String::new(),
        eips: vec![eip.clone()],
        log_config: None,
        order_id: openvgw_core::ids::uuid_v4(),
    };
    let input = NewGateway {
        name: Some(g.name.unwrap_or_else(|| wire::default_name("p2c-vpngw"))),
        description: String::new(),
        vpc_id: g.vpc_id,
        subnet_id: g.connect_subnet,
        local_subnets: vec![],
        bandwidth_mbps: eip.bandwidth_size,
        role: GatewayRole::Client,
        ipsec_enabled: false,
        ssl_enabled: true,
        ssl_max_connections: max,
        crypto_suite: CryptoSuite::Standard,
        ha_mode: HaMode::Single,
        bgp_asn: None,
        tags: wire::creation_tags(g.tags)?,
        ext: Extensions::of(&ext),
    };
    let gw = c.svc.create_gateway(&c.ctx()?, input).map_err(|e| c.core(e))?;
    Ok(IdOnly { p2c_vpn_gateway: Id { id: gw.id }, request_id: c.request_id() })
}

pub fn show(c: &Call, _: NoBody) -> Result<Shown, HwError> {
    let gw = c.path_gateway()?;
    let sessions = c.session_count(&gw.item.id)?;
    let awaiting = c.awaiting(&gw.item.id)?;
    Ok(Shown { p2c_vpn_gateway: view(&gw, sessions, awaiting), request_id: c.request_id() })
}

pub fn list(c: &Call, _: NoBody) -> Result<Listed, HwError> {
    let page = c.marker_page(200, 200)?;
    let filter = GatewayFilter { role: Some(GatewayRole::Client), ..Default::default() };
    let scope = c.scope()?;
    let listed = c.svc.list_gateways(scope, &filter, &page).map_err(|e| c.core(e))?;
    // Sessions and pending upgrades of the whole page, read once.
    let servers =
        c.svc.list_ssl_servers(scope, &SslServerFilter::default(), &PageRequest::ALL).map_err(|e| c.core(e))?;
    let jobs = c.svc.list_jobs(scope, None).map_err(|e| c.core(e))?;
    let out = listed
        .items
        .iter()
        .map(|t| {
            let id = &t.item.id;
            let sessions = servers.items.iter().filter(|(s, _)| s.gateway_id == *id).map(|(s, _)| s.connections).sum();
            view(t, sessions, jobs.iter().any(|j| j.resource_id == *id && awaiting_upgrade(j)))
        })
        .collect();
    Ok(Listed {
        page_info: PageInfo::of(&listed),
        total_count: listed.total,
        p2c_vpn_gateways: out,
        request_id: c.request_id(),
    })
}

pub fn update(c: &Call, body: UpdateBody) -> Result<IdOnly, HwError> {
    let u = body.p2c_vpn_gateway;
    let gw = c.path_gateway()?;
    crate::handlers::gateways::require_active(c, &gw.item)?;
    if let Some(n) = &u.name {
        wire::name_of(n, 1, 64, "_-", openvgw_core::Field::Name)?;
    }
    if u.eip_id.is_some() {
        // The gateway's EIP stays bound for its life; the reference requires unbinding the old one first.
        return Err(HwError::new(400, "VPN.0512", "The gateway already has an EIP bound."));
    }
    let changes = GatewayChanges { name: u.name, ..Default::default() };
    let gw = c.svc.modify_gateway(&c.ctx()?, &gw.item.id, changes).map_err(|e| c.core(e))?;
    Ok(IdOnly { p2c_vpn_gateway: Id { id: gw.id }, request_id: c.request_id() })
}

pub fn delete(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    let gw = c.path_gateway()?;
    let status = gw.item.status();
    if matches!(status, openvgw_core::model::GatewayStatus::Init | openvgw_core::model::GatewayStatus::Provisioning) {
        return Err(c.core(openvgw_core::Error::GatewayBusy { id: gw.item.id.clone(), status }));
    }
    c.svc.delete_gateway(&c.ctx()?, &gw.item.id).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Zones {
    pub availability_zones: Vec<String>,
    pub request_id: String,
}

pub fn availability_zones(c: &Call, _: NoBody) -> Result<Zones, HwError> {
    if let Some(f) = c.query("flavor") {
        if f != "Professional1" {
            return Err(HwError::invalid("flavor must be Professional1"));
        }
    }
    Ok(Zones { availability_zones: c.svc.config().regions.zones_of(&c.scope()?.region), request_id: c.request_id() })
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConnectionInfo {
    pub connection_id: String,
    pub client_virtual_ip: String,
    pub client_ip: String,
    pub client_user_name: String,
    /// OpenVPN counts bytes, not packets: the packet counters are left out rather than shown as zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_packets: Option<u64>,
    pub inbound_bytes: u64,
    pub outbound_bytes: u64,
    pub connection_established_time: String,
    pub timestamp: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Connections {
    pub connections: Vec<ConnectionInfo>,
    pub total_count: u64,
    pub request_id: String,
}

/// The gateway's live client sessions, as the data plane reports them now.
pub fn connections(c: &Call, _: NoBody) -> Result<Connections, HwError> {
    let gw = c.path_gateway()?;
    let sessions = c.block_on(c.svc.client_sessions(c.scope()?, &gw.item.id)).map_err(|e| c.core(e))?;
    let now = wire::ts_seconds(openvgw_core::now_ms());
    let all: Vec<ConnectionInfo> = sessions
        .into_iter()
        .map(|s| ConnectionInfo {
            connection_id: s.id,
            client_virtual_ip: s.virtual_ip.map(|a| a.to_string()).unwrap_or_default(),
            // The client's address without the port.
            client_ip: s.real_address.rsplit_once(':').map(|(ip, _)| ip.to_string()).unwrap_or(s.real_address),
            client_user_name: s.user,
            inbound_packets: None,
            outbound_packets: None,
            inbound_bytes: s.bytes_in,
            outbound_bytes: s.bytes_out,
            connection_established_time: wire::ts_seconds(s.connected_since * 1000),
            timestamp: now.clone(),
        })
        .collect();
    let offset = c.query_u64("offset")?.unwrap_or(0);
    let limit = c.query_u64("limit")?.filter(|l| *l > 0).unwrap_or(u64::MAX);
    let page =
        Page::of_vec(all, &PageRequest::Offset { offset, limit }, |s| openvgw_core::Cursor(s.connection_id.clone()));
    Ok(Connections { total_count: page.total, connections: page.items, request_id: c.request_id() })
}

pub fn disconnect(c: &Call, _: NoBody) -> Result<RequestIdOnly, HwError> {
    let gw = c.path_gateway()?;
    let session = c.path("connection_id")?;
    c.block_on(c.svc.disconnect_session(c.scope()?, &gw.item.id, session)).map_err(|e| c.core(e))?;
    Ok(RequestIdOnly { request_id: c.request_id() })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogConfigBody {
    pub log_config: LogConfigWire,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct LogConfigWire {
    pub log_group_id: String,
    pub log_stream_id: String,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct LogConfigView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LogConfigShown {
    pub log_config: LogConfigView,
    pub request_id: String,
}

fn set_log_config(c: &Call, gw: &VpnGateway, value: Option<LogConfig>) -> Result<(), HwError> {
    let changes = GatewayChanges {
        ext: Some(std::sync::Arc::new(move |x: &mut Extensions| {
            let mut e: GatewayExt = x.get();
            e.log_config = value.clone();
            x.set(&e);
            Ok(())
        })),
        ..Default::default()
    };
    c.svc.modify_gateway(&c.ctx()?, &gw.id, changes).map_err(|e| c.core(e))?;
    Ok(())
}

/// Records where the gateway's connection logs go (the log service itself is outside openvgw; the target is kept
/// and shown).
pub fn put_log_config(c: &Call, body: LogConfigBody) -> Result<LogConfigShown, HwError> {
    let gw = c.path_gateway()?;
    let l = body.log_config;
    wire::uuid_like("log_config.log_group_id", &l.log_group_id)?;
    wire::uuid_like("log_config.log_stream_id", &l.log_stream_id)?;
    let value = LogConfig { log_group_id: l.log_group_id.clone(), log_stream_id: l.log_stream_id.clone() };
    set_log_config(c, &gw.item, Some(value))?;
    Ok(LogConfigShown {
        log_config: LogConfigView { log_group_id: Some(l.log_group_id), log_stream_id: Some(l.log_stream_id) },
        request_id: c.request_id(),
    })
}

pub fn show_log_config(c: &Call, _: NoBody) -> Result<LogConfigShown, HwError> {
    let gw = c.path_gateway()?;
    let ext: GatewayExt = gw.item.ext.get();
    let log_config = ext
        .log_config
        .map(|l| LogConfigView { log_group_id: Some(l.log_group_id), log_stream_id: Some(l.log_stream_id) })
        .unwrap_or_default();
    Ok(LogConfigShown { log_config, request_id: c.request_id() })
}

pub fn delete_log_config(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    let gw = c.path_gateway()?;
    if gw.item.ext.get::<GatewayExt>().log_config.is_some() {
        set_log_config(c, &gw.item, None)?;
    }
    Ok(NoContent)
}
