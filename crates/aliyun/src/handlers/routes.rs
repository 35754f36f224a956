//! Destination routes and policy routes (seed section 6).

use openvgw_control::routes::{NewRoute, RouteKey, SourceMatch};
use openvgw_core::model::{RouteEntry, RouteOrigin};
use openvgw_core::{validate, Field};
use serde::Serialize;

use super::{description, Empty, Paged};
use crate::action::Call;
use crate::error::WireError;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct View {
    vpn_instance_id: String,
    route_dest: String,
    next_hop: String,
    weight: u32,
    state: &'static str,
    create_time: i64,
    description: String,
    overlay_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    route_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route_entry_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    community: Option<&'static str>,
}

fn origin_name(o: RouteOrigin) -> &'static str {
    match o {
        RouteOrigin::Custom => "Custom",
        RouteOrigin::System => "System",
    }
}

fn view(r: &RouteEntry) -> View {
    let policy = r.is_policy();
    View {
        vpn_instance_id: r.gateway_id.clone(),
        route_dest: r.dest.to_string(),
        next_hop: r.next_hop.clone(),
        weight: r.weight,
        state: if r.published { "published" } else { "normal" },
        create_time: r.created_at,
        description: r.description.clone(),
        overlay_mode: "Ipsec",
        route_source: r.source.map(|s| s.to_string()),
        priority: policy.then_some(r.priority.unwrap_or(10)),
        route_entry_type: (!policy).then_some(origin_name(r.origin)),
        source: (!policy).then_some(""),
        // Learned routes carry their AS path as the seed spells it: `65501,65001,60011`.
        as_path: (!policy).then(|| r.as_path.iter().map(u32::to_string).collect::<Vec<_>>().join(",")),
        community: (!policy).then_some(""),
    }
}

/// Weights are 100 (active) or 0 (standby).
fn weight(c: &Call, param: &str, required: bool) -> Result<Option<u32>, WireError> {
    let w = if required { Some(c.p.req_u32(param)?) } else { c.p.u32(param)? };
    match w {
        Some(v) if v != 0 && v != 100 => Err(WireError::invalid(param, "must be 0 or 100")),
        other => Ok(other),
    }
}

fn overlay_mode(c: &Call) -> Result<(), WireError> {
    match c.p.get("OverlayMode") {
        Some(m) if !m.eq_ignore_ascii_case("ipsec") => Err(WireError::invalid("OverlayMode", "must be Ipsec")),
        _ => Ok(()),
    }
}

fn cidr(c: &Call, param: &str, field: Field) -> Result<ipnet::Ipv4Net, WireError> {
    validate::cidr(c.p.req(param)?, field).map_err(|e| c.core(e))
}

fn key(c: &Call, policy: bool, weight_required: bool) -> Result<RouteKey, WireError> {
    let gateway_id = c.p.req("VpnGatewayId")?.to_string();
    let source = if policy { Some(c.p.req("RouteSource")?) } else { None };
    let dest = c.p.req("RouteDest")?;
    let next_hop = c.p.req("NextHop")?.to_string();
    let weight = weight(c, "Weight", weight_required)?;
    let source = match source {
        Some(s) => SourceMatch::Policy(validate::cidr(s, Field::RouteSource).map_err(|e| c.core(e))?),
        None => SourceMatch::Destination,
    };
    Ok(RouteKey {
        gateway_id,
        source,
        dest: validate::cidr(dest, Field::RouteDest).map_err(|e| c.core(e))?,
        next_hop,
        weight,
    })
}

fn create(c: &Call, policy: bool) -> Result<View, WireError> {
    let p = c.p;
    let gateway_id = p.req("VpnGatewayId")?.to_string();
    let source = if policy { Some(p.req("RouteSource")?) } else { None };
    let dest = p.req("RouteDest")?;
    let next_hop = p.req("NextHop")?.to_string();
    let w = weight(c, "Weight", true)?.unwrap_or(100);
    let priority = if policy { p.u32("Priority")? } else { None };
    let published = p.req_bool("PublishVpc")?;
    let source = source.map(|s| validate::cidr(s, Field::RouteSource)).transpose().map_err(|e| c.core(e))?;
    let dest = validate::cidr(dest, Field::RouteDest).map_err(|e| c.core(e))?;
    if priority.is_some_and(|v| !(1..=100).contains(&v)) {
        return Err(WireError::invalid("Priority", "must be 1-100"));
    }
    let description = description(c)?.unwrap_or_default();
    overlay_mode(c)?;
    let input = NewRoute { gateway_id, source, dest, next_hop, weight: w, priority, published, description };
    let r = c.svc.create_route(&c.ctx()?, input).map_err(|e| c.core(e))?;
    Ok(view(&r))
}

pub fn create_destination(c: &Call) -> Result<View, WireError> {
    create(c, false)
}

pub fn create_policy(c: &Call) -> Result<View, WireError> {
    create(c, true)
}

pub fn publish(c: &Call) -> Result<Empty, WireError> {
    let policy = match c.p.req("RouteType")?.to_ascii_lowercase().as_str() {
        "pbr" => true,
        "dbr" => false,
        other => return Err(WireError::invalid("RouteType", format!("{other} must be pbr or dbr"))),
    };
    let publish = c.p.req_bool("PublishVpc")?;
    let gateway_id = c.p.req("VpnGatewayId")?.to_string();
    let dest = cidr(c, "RouteDest", Field::RouteDest)?;
    let next_hop = c.p.req("NextHop")?.to_string();
    // PublishVpnRouteEntry names a policy route without its source: it publishes the one that matches.
    let source = match (policy, c.p.get("RouteSource")) {
        (false, _) => SourceMatch::Destination,
        (true, None) => SourceMatch::AnyPolicy,
        (true, Some(s)) => SourceMatch::Policy(validate::cidr(s, Field::RouteSource).map_err(|e| c.core(e))?),
    };
    let key = RouteKey { gateway_id, source, dest, next_hop, weight: None };
    c.svc.publish_route(&c.ctx()?, key, publish).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

#[derive(Serialize)]
pub struct DestinationList {
    #[serde(rename = "VpnRouteEntry")]
    vpn_route_entry: Vec<View>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteCount {
    route_entry_type: &'static str,
    source: &'static str,
    route_count: u64,
}

#[derive(Serialize)]
pub struct RouteCounts {
    #[serde(rename = "VpnRouteCount")]
    vpn_route_count: Vec<RouteCount>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationListed {
    vpn_route_entries: DestinationList,
    vpn_route_counts: RouteCounts,
}

pub fn describe_destination(c: &Call) -> Result<Paged<DestinationListed>, WireError> {
    let page = c.p.page()?;
    let gw = c.p.req("VpnGatewayId")?;
    let origin = match c.p.get("RouteEntryType").map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("custom") => Some(RouteOrigin::Custom),
        Some("system") => Some(RouteOrigin::System),
        Some(other) => return Err(WireError::invalid("RouteEntryType", format!("{other} must be Custom or System"))),
    };
    let listed = c.svc.list_routes(c.scope, gw, false, origin, &page.request()).map_err(|e| c.core(e))?;
    let custom = if origin == Some(RouteOrigin::System) { 0 } else { listed.total };
    let counts = RouteCounts {
        vpn_route_count: vec![RouteCount {
            route_entry_type: origin_name(RouteOrigin::Custom),
            source: "CUSTOM",
            route_count: custom,
        }],
    };
    let body = DestinationListed {
        vpn_route_entries: DestinationList { vpn_route_entry: listed.items.iter().map(view).collect() },
        vpn_route_counts: counts,
    };
    Ok(Paged::new(body, page, listed.total))
}

#[derive(Serialize)]
pub struct PolicyList {
    #[serde(rename = "VpnPbrRouteEntry")]
    vpn_pbr_route_entry: Vec<View>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyListed {
    vpn_pbr_route_entries: PolicyList,
}

pub fn describe_policy(c: &Call) -> Result<Paged<PolicyListed>, WireError> {
    let page = c.p.page()?;
    let gw = c.p.req("VpnGatewayId")?;
    let listed = c.svc.list_routes(c.scope, gw, true, None, &page.request()).map_err(|e| c.core(e))?;
    let body = PolicyListed {
        vpn_pbr_route_entries: PolicyList { vpn_pbr_route_entry: listed.items.iter().map(view).collect() },
    };
    Ok(Paged::new(body, page, listed.total))
}

fn modify_weight(c: &Call, policy: bool) -> Result<Empty, WireError> {
    overlay_mode(c)?;
    let key = key(c, policy, true)?;
    let new_weight = weight(c, "NewWeight", true)?.unwrap_or(100);
    c.svc.modify_route_weight(&c.ctx()?, key, new_weight).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

pub fn modify_destination_weight(c: &Call) -> Result<Empty, WireError> {
    modify_weight(c, false)
}

pub fn modify_policy_weight(c: &Call) -> Result<Empty, WireError> {
    modify_weight(c, true)
}

fn delete(c: &Call, policy: bool) -> Result<Empty, WireError> {
    overlay_mode(c)?;
    let key = key(c, policy, true)?;
    c.svc.delete_route(&c.ctx()?, key).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

pub fn delete_destination(c: &Call) -> Result<Empty, WireError> {
    delete(c, false)
}

pub fn delete_policy(c: &Call) -> Result<Empty, WireError> {
    delete(c, true)
}
