//! Tags (seed 4.5-4.7).

use openvgw_core::Kind;
use serde::Serialize;

use super::{tag_filters, tags_param, Empty};
use crate::action::Call;
use crate::error::WireError;
use crate::params::{encode_token, Params};

/// `ResourceType` (case-insensitive) as the seed spells it.
fn resource_kind(p: &Params) -> Result<Kind, WireError> {
    let t = p.req("ResourceType")?;
    match t.to_ascii_lowercase().as_str() {
        "vpngateway" => Ok(Kind::VpnGateway),
        "customergateway" => Ok(Kind::CustomerGateway),
        "vpnconnection" => Ok(Kind::VpnConnection),
        _ => Err(WireError::invalid("ResourceType", format!("{t} is not served by this endpoint"))),
    }
}

fn resource_type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::CustomerGateway => "CustomerGateway",
        Kind::VpnConnection => "VpnConnection",
        _ => "VpnGateWay",
    }
}

fn resource_ids(p: &Params) -> Result<Vec<String>, WireError> {
    let ids = p.list("ResourceId")?;
    if ids.is_empty() {
        return Err(WireError::missing("ResourceId.N"));
    }
    Ok(ids)
}

pub fn tag(c: &Call) -> Result<Empty, WireError> {
    let kind = resource_kind(c.p)?;
    let ids = resource_ids(c.p)?;
    let tags = tags_param(c, "Tag")?;
    if tags.is_empty() {
        return Err(WireError::missing("Tag.N.Key"));
    }
    c.svc.tag_resources(&c.ctx()?, kind, &ids, &tags).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

pub fn untag(c: &Call) -> Result<Empty, WireError> {
    let kind = resource_kind(c.p)?;
    let ids = resource_ids(c.p)?;
    let keys = c.p.list("TagKey")?;
    let all = c.p.bool("All")?.unwrap_or(false);
    if keys.is_empty() && !all {
        return Err(WireError::missing("TagKey.N"));
    }
    c.svc.untag_resources(&c.ctx()?, kind, &ids, &keys, all).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Binding {
    resource_id: String,
    resource_type: &'static str,
    tag_key: String,
    tag_value: String,
}

#[derive(Serialize)]
pub struct Bindings {
    #[serde(rename = "TagResource")]
    tag_resource: Vec<Binding>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listed {
    tag_resources: Bindings,
    next_token: String,
}

pub fn list(c: &Call) -> Result<Listed, WireError> {
    let p = c.p;
    let kind = resource_kind(p)?;
    let ids = p.list("ResourceId")?;
    if p.objects("Tag")?.iter().any(|o| o.get("Key").is_none_or(|k| k.is_empty())) {
        return Err(WireError::invalid("Tag.N.Key", "a tag value needs its key"));
    }
    let filters = tag_filters(p)?;
    if ids.is_empty() && filters.is_empty() {
        return Err(WireError::missing("ResourceId.N"));
    }
    let page = p.token_page(50, 50)?;
    let openvgw_core::PageRequest::After { cursor, limit } = &page else {
        return Err(WireError::internal());
    };
    let found =
        c.svc.list_tag_resources(c.scope, kind, &ids, &filters, cursor.as_ref(), *limit).map_err(|e| c.core(e))?;
    let tag_resource = found
        .items
        .into_iter()
        .map(|r| Binding {
            resource_id: r.resource_id,
            resource_type: resource_type_name(r.resource_kind),
            tag_key: r.key,
            tag_value: r.value,
        })
        .collect();
    Ok(Listed { tag_resources: Bindings { tag_resource }, next_token: encode_token(found.next.as_ref()) })
}
