//! VPN gateways (seed section 4).

use openvgw_control::gateways::{GatewayChanges, GatewayFilter, NewGateway};
use openvgw_control::Tagged;
use openvgw_core::model::{CryptoSuite, Extensions, GatewayRole, HaMode, VpnGateway};
use openvgw_core::{now_ms, Page};
use rand::Rng;
use serde::Serialize;

use super::{description, name, tag_filters, Empty, Paged, TagSet, WireAddr};
use crate::action::Call;
use crate::defaults::{GatewayBilling, SSL_CONNECTIONS};
use crate::error::WireError;
use crate::spelling;

const BANDWIDTHS: &[u32] = &[5, 10, 20, 50, 100, 200, 500, 1000];
const PERIODS: &[u32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 24, 36];
const SSL_CONNECTION_STEPS: &[u32] = &[5, 10, 20, 50, 100, 200, 500, 1000];
/// A gateway without a period does not expire (Alibaba's long-term end time, 2100-01-01).
const NO_EXPIRY: i64 = 4_102_416_000_000;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Created {
    vpn_gateway_id: String,
    name: String,
    order_id: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Modified {
    vpn_gateway_id: String,
    vpc_id: String,
    #[serde(rename = "VSwitchId")]
    vswitch_id: String,
    status: &'static str,
    internet_ip: WireAddr,
    intranet_ip: WireAddr,
    spec: String,
    create_time: i64,
    end_time: i64,
    auto_propagate: bool,
    enable_bgp: bool,
    business_status: &'static str,
    name: String,
    description: String,
}

#[derive(Serialize)]
pub struct EniIds {
    #[serde(rename = "EniInstanceId")]
    eni_instance_id: Vec<String>,
}

/// The full gateway view (DescribeVpnGateway(s)).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct View {
    vpn_gateway_id: String,
    vpc_id: String,
    #[serde(rename = "VSwitchId")]
    vswitch_id: String,
    internet_ip: WireAddr,
    intranet_ip: WireAddr,
    ssl_vpn_internet_ip: WireAddr,
    /// The second address, which dual-tunnel connections' second tunnels use (gateways created with
    /// `DisasterRecoveryVSwitchId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    disaster_recovery_internet_ip: Option<WireAddr>,
    #[serde(rename = "DisasterRecoveryVSwitchId", skip_serializing_if = "Option::is_none")]
    disaster_recovery_vswitch_id: Option<String>,
    create_time: i64,
    end_time: i64,
    spec: String,
    name: String,
    description: String,
    status: &'static str,
    business_status: &'static str,
    charge_type: &'static str,
    ipsec_vpn: &'static str,
    ssl_vpn: &'static str,
    ssl_max_connections: u32,
    /// System tags, as a JSON string.
    tag: &'static str,
    tags: TagSet,
    auto_propagate: bool,
    enable_bgp: bool,
    vpn_type: &'static str,
    network_type: &'static str,
    eni_instance_ids: EniIds,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservation_data: Option<Empty>,
}

#[derive(Serialize)]
pub struct GatewayList {
    #[serde(rename = "VpnGateway")]
    vpn_gateway: Vec<View>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listed {
    vpn_gateways: GatewayList,
}

fn enable(b: bool) -> &'static str {
    if b {
        "enable"
    } else {
        "disable"
    }
}

fn public_ip(gw: &VpnGateway) -> WireAddr {
    WireAddr(gw.primary_ip())
}

fn view(t: &Tagged<VpnGateway>, reservation: bool) -> View {
    let gw = &t.item;
    let billing: GatewayBilling = gw.ext.get();
    View {
        vpn_gateway_id: gw.id.clone(),
        vpc_id: gw.vpc_id.clone(),
        vswitch_id: gw.subnet_id.clone(),
        internet_ip: public_ip(gw),
        intranet_ip: WireAddr(Some(gw.private_ip)),
        ssl_vpn_internet_ip: public_ip(gw),
        disaster_recovery_internet_ip: gw.public_ips.get(1).map(|p| WireAddr(Some(p.address))),
        disaster_recovery_vswitch_id: gw.public_ips.get(1).map(|_| billing.disaster_recovery_vswitch_id.clone()),
        create_time: gw.created_at,
        end_time: billing.end_time,
        spec: format!("{}M", gw.bandwidth_mbps),
        name: gw.name.clone(),
        description: gw.description.clone(),
        status: spelling::gateway_status::render(gw.status()),
        business_status: "Normal",
        charge_type: if billing.charge_type == "POSTPAY" { "Postpay" } else { "Prepay" },
        ipsec_vpn: enable(gw.ipsec_enabled),
        ssl_vpn: enable(gw.ssl_enabled),
        ssl_max_connections: gw.ssl_max_connections,
        tag: concat!("{\"VpnVersion\":\"", env!("CARGO_PKG_VERSION"), "\"}"),
        tags: TagSet::of(&t.tags),
        auto_propagate: gw.auto_propagate,
        enable_bgp: gw.enable_bgp,
        vpn_type: spelling::crypto_suite::render(gw.crypto_suite),
        network_type: "public",
        eni_instance_ids: EniIds { eni_instance_id: vec![] },
        reservation_data: reservation.then_some(Empty {}),
    }
}

fn check_vpc_id(id: &str) -> Result<(), WireError> {
    let ok = id.len() <= 64
        && id
            .strip_prefix("vpc-")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(WireError::invalid("VpcId", "must look like vpc-xxxxxxxx"))
    }
}

/// Adds `months` calendar months to a unix-ms instant (end of a prepaid period).
fn add_months(ms: i64, months: u32) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms / 1000) else {
        return ms;
    };
    let total = t.month() as i32 - 1 + months as i32;
    let year = t.year() + total / 12;
    let Ok(month) = time::Month::try_from((total % 12 + 1) as u8) else {
        return ms;
    };
    let day = t.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day)
        .map(|d| d.with_time(t.time()).assume_utc().unix_timestamp() * 1000)
        .unwrap_or(ms)
}

pub fn create(c: &Call) -> Result<Created, WireError> {
    let p = c.p;
    let vpc_id = p.req("VpcId")?.to_string();
    let bandwidth = p.req_u32("Bandwidth")?;
    check_vpc_id(&vpc_id)?;
    let name = name(c, "Name", 2, 100, false)?;
    if !BANDWIDTHS.contains(&bandwidth) {
        return Err(WireError::invalid("Bandwidth", "must be 5, 10, 20, 50, 100, 200, 500 or 1000"));
    }
    let charge_type = match p.get("InstanceChargeType").map(str::to_ascii_uppercase) {
        None => "PREPAY".to_string(),
        Some(t) if t == "PREPAY" || t == "POSTPAY" => t,
        Some(_) => return Err(WireError::invalid("InstanceChargeType", "must be PREPAY or POSTPAY")),
    };
    let period = p.u32("Period")?;
    if period.is_some_and(|m| !PERIODS.contains(&m)) {
        return Err(WireError::invalid("Period", "must be 1-9, 12, 24 or 36"));
    }
    let ssl_connections = p.u32("SslConnections")?.unwrap_or(SSL_CONNECTIONS);
    if !SSL_CONNECTION_STEPS.contains(&ssl_connections) {
        return Err(WireError::invalid("SslConnections", "must be 5, 10, 20, 50, 100, 200, 500 or 1000"));
    }
    let crypto_suite = match p.get("VpnType") {
        None => CryptoSuite::Standard,
        Some(t) => spelling::crypto_suite::parse(t)
            .ok_or_else(|| WireError::invalid("VpnType", "must be Normal or NationalStandard"))?,
    };
    // A second zone's vSwitch gives the gateway a second address, for dual-tunnel connections.
    let disaster_recovery_vswitch_id = p.string("DisasterRecoveryVSwitchId").unwrap_or_default();
    if !disaster_recovery_vswitch_id.is_empty() {
        match p.get("VSwitchId") {
            None => return Err(WireError::missing("VSwitchId")),
            Some(v) if v == disaster_recovery_vswitch_id => {
                return Err(WireError::invalid("DisasterRecoveryVSwitchId", "must differ from VSwitchId"))
            }
            Some(_) => {}
        }
    }
    let ha_mode = if disaster_recovery_vswitch_id.is_empty() { HaMode::Single } else { HaMode::ActiveStandby };
    let now = now_ms();
    let billing = GatewayBilling {
        charge_type,
        period_months: period,
        end_time: period.map(|m| add_months(now, m)).unwrap_or(NO_EXPIRY),
        auto_pay: p.bool("AutoPay")?.unwrap_or(false),
        order_id: rand::thread_rng().gen_range(100_000_000_000_000..999_999_999_999_999),
        disaster_recovery_vswitch_id,
    };
    let input = NewGateway {
        name,
        description: String::new(),
        vpc_id,
        subnet_id: p.string("VSwitchId").unwrap_or_default(),
        local_subnets: vec![],
        bandwidth_mbps: bandwidth,
        role: GatewayRole::Both,
        ipsec_enabled: p.bool("EnableIpsec")?.unwrap_or(true),
        ssl_enabled: p.bool("EnableSsl")?.unwrap_or(false),
        ssl_max_connections: ssl_connections,
        crypto_suite,
        ha_mode,
        bgp_asn: None,
        tags: vec![],
        ext: Extensions::of(&billing),
    };
    let gw = c.svc.create_gateway(&c.ctx()?, input).map_err(|e| c.core(e))?;
    let order_id = gw.ext.get::<GatewayBilling>().order_id;
    Ok(Created { vpn_gateway_id: gw.id, name: gw.name, order_id })
}

pub fn modify(c: &Call) -> Result<Modified, WireError> {
    let id = c.p.req("VpnGatewayId")?;
    let changes = GatewayChanges {
        name: name(c, "Name", 2, 100, false)?,
        description: description(c)?,
        auto_propagate: c.p.bool("AutoPropagate")?,
        ..Default::default()
    };
    let gw = c.svc.modify_gateway(&c.ctx()?, id, changes).map_err(|e| c.core(e))?;
    Ok(Modified {
        status: spelling::gateway_status::render(gw.status()),
        internet_ip: public_ip(&gw),
        intranet_ip: WireAddr(Some(gw.private_ip)),
        spec: format!("{}M", gw.bandwidth_mbps),
        create_time: gw.created_at,
        end_time: gw.ext.get::<GatewayBilling>().end_time,
        auto_propagate: gw.auto_propagate,
        enable_bgp: gw.enable_bgp,
        business_status: "Normal",
        vpn_gateway_id: gw.id,
        vpc_id: gw.vpc_id,
        vswitch_id: gw.subnet_id,
        name: gw.name,
        description: gw.description,
    })
}

pub fn describe(c: &Call) -> Result<View, WireError> {
    let gw = c.svc.get_gateway(c.scope, c.p.req("VpnGatewayId")?).map_err(|e| c.core(e))?;
    Ok(view(&gw, c.p.bool("IncludeReservationData")?.unwrap_or(false)))
}

pub fn describe_all(c: &Call) -> Result<Paged<Listed>, WireError> {
    let p = c.p;
    let status = p
        .get("Status")
        .map(|s| {
            spelling::gateway_status::parse(s)
                .ok_or_else(|| WireError::invalid("Status", format!("{s} is not a gateway status")))
        })
        .transpose()?;
    let business = p.get("BusinessStatus");
    if business.is_some_and(|b| b != "Normal" && b != "FinancialLocked") {
        return Err(WireError::invalid("BusinessStatus", "must be Normal or FinancialLocked"));
    }
    let filter = GatewayFilter {
        vpc_id: p.string("VpcId"),
        gateway_id: p.string("VpnGatewayId"),
        status,
        role: None,
        tags: tag_filters(p)?,
    };
    let page = p.page()?;
    let reservation = p.bool("IncludeReservationData")?.unwrap_or(false);
    let listed = if business == Some("FinancialLocked") {
        // openvgw does no billing: no gateway is ever locked.
        Page { items: vec![], total: 0, next: None }
    } else {
        c.svc.list_gateways(c.scope, &filter, &page.request()).map_err(|e| c.core(e))?
    };
    let items = listed.items.iter().map(|g| view(g, reservation)).collect();
    Ok(Paged::new(Listed { vpn_gateways: GatewayList { vpn_gateway: items } }, page, listed.total))
}

pub fn delete(c: &Call) -> Result<Empty, WireError> {
    c.svc.delete_gateway(&c.ctx()?, c.p.req("VpnGatewayId")?).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_years_and_clamp_days() {
        // 2021-01-31T00:00:00Z + 1 month -> 2021-02-28
        let jan31 = 1_612_051_200_000;
        assert_eq!(add_months(jan31, 1), 1_614_470_400_000);
        // + 12 months -> 2022-01-31
        assert_eq!(add_months(jan31, 12), 1_643_587_200_000);
    }

    #[test]
    fn vpc_ids() {
        assert!(check_vpc_id("vpc-bp1ub1yt9cvakoelj0001").is_ok());
        assert!(check_vpc_id("vpc-").is_err());
        assert!(check_vpc_id("vsw-abc").is_err());
    }
}
