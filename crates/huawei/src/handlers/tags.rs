//! Tags (reference 4.3.2): per resource, per project, and resources filtered or counted by tags.

use std::collections::BTreeMap;

use openvgw_control::connections::ConnectionFilter;
use openvgw_control::gateways::GatewayFilter;
use openvgw_core::model::{GatewayRole, Tag};
use openvgw_core::{Kind, PageRequest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ops::{NoBody, NoContent};
use crate::wire::{self, ResourceTag};

/// The `{resource_type}` path segment: which kind, and for gateways which role.
fn resource_type(c: &Call) -> Result<(Kind, Option<GatewayRole>), HwError> {
    match c.path("resource_type")? {
        "vpn-gateway" => Ok((Kind::VpnGateway, Some(GatewayRole::Site))),
        "p2c-vpn-gateways" => Ok((Kind::VpnGateway, Some(GatewayRole::Client))),
        "customer-gateway" => Ok((Kind::CustomerGateway, None)),
        "vpn-connection" => Ok((Kind::VpnConnection, None)),
        other => Err(HwError::invalid(format!(
            "resource_type {other} must be vpn-gateway, customer-gateway, vpn-connection or p2c-vpn-gateways"
        ))),
    }
}

/// A taggable resource with its name and tags.
struct Tagged {
    id: String,
    name: String,
    tags: Vec<Tag>,
}

fn resources(c: &Call, kind: Kind, role: Option<GatewayRole>) -> Result<Vec<Tagged>, HwError> {
    let scope = c.scope()?;
    let all = PageRequest::ALL;
    Ok(match kind {
        Kind::VpnGateway => c
            .svc
            .list_gateways(scope, &GatewayFilter { role, ..Default::default() }, &all)
            .map_err(|e| c.core(e))?
            .items
            .into_iter()
            .map(|t| Tagged { id: t.item.id, name: t.item.name, tags: t.tags })
            .collect(),
        Kind::CustomerGateway => c
            .svc
            .list_customer_gateways(scope, None, &all)
            .map_err(|e| c.core(e))?
            .items
            .into_iter()
            .map(|t| Tagged { id: t.item.id, name: t.item.name, tags: t.tags })
            .collect(),
        _ => c
            .svc
            .list_connections(scope, &ConnectionFilter::default(), &all)
            .map_err(|e| c.core(e))?
            .items
            .into_iter()
            .map(|v| Tagged { id: v.connection.id, name: v.connection.name, tags: v.tags })
            .collect(),
    })
}

/// The resource of the path, which must be of the path's type.
fn resource(c: &Call) -> Result<(Kind, Tagged), HwError> {
    let (kind, role) = resource_type(c)?;
    let id = c.path("resource_id")?;
    let scope = c.scope()?;
    let found = match kind {
        Kind::VpnGateway => {
            let t = c.gateway(id, role.unwrap_or(GatewayRole::Site))?;
            Tagged { id: t.item.id, name: t.item.name, tags: t.tags }
        }
        Kind::CustomerGateway => {
            let t = c.svc.get_customer_gateway(scope, id).map_err(|e| c.core(e))?;
            Tagged { id: t.item.id, name: t.item.name, tags: t.tags }
        }
        _ => {
            let v = c.svc.get_connection(scope, id).map_err(|e| c.core(e))?;
            Tagged { id: v.connection.id, name: v.connection.name, tags: v.tags }
        }
    };
    Ok((kind, found))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TagRequest {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TagsBody {
    pub tags: Vec<TagRequest>,
}

pub fn create(c: &Call, body: TagsBody) -> Result<NoContent, HwError> {
    let pairs: Vec<(String, Option<String>)> = body.tags.into_iter().map(|t| (t.key, t.value)).collect();
    if pairs.is_empty() {
        return Err(HwError::invalid("tags: at least one tag"));
    }
    let tags = wire::checked_tags(&pairs)?;
    let (kind, r) = resource(c)?;
    c.svc.tag_resources(&c.ctx()?, kind, &[r.id], &tags).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

/// Removes the given keys; with a value, only where the tag has that value. Keys the resource lacks are ignored.
pub fn delete(c: &Call, body: TagsBody) -> Result<NoContent, HwError> {
    if body.tags.is_empty() || body.tags.len() > 20 {
        return Err(HwError::invalid("tags: 1-20 tags"));
    }
    let (kind, r) = resource(c)?;
    let keys: Vec<String> = body
        .tags
        .iter()
        .filter(|t| r.tags.iter().any(|have| have.key == t.key && t.value.as_ref().is_none_or(|v| *v == have.value)))
        .map(|t| t.key.clone())
        .collect();
    if !keys.is_empty() {
        c.svc.untag_resources(&c.ctx()?, kind, &[r.id], &keys, false).map_err(|e| c.core(e))?;
    }
    Ok(NoContent)
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ResourceTags {
    pub tags: Vec<ResourceTag>,
}

pub fn show(c: &Call, _: NoBody) -> Result<ResourceTags, HwError> {
    let (_, r) = resource(c)?;
    Ok(ResourceTags { tags: ResourceTag::of(&r.tags) })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KeyValues {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectTags {
    pub tags: Vec<KeyValues>,
}

/// Every key used on the project's resources of the type, with the values it has.
pub fn project(c: &Call, _: NoBody) -> Result<ProjectTags, HwError> {
    let (kind, role) = resource_type(c)?;
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in resources(c, kind, role)? {
        for t in r.tags {
            let values = keys.entry(t.key).or_default();
            if !values.contains(&t.value) {
                values.push(t.value);
            }
        }
    }
    Ok(ProjectTags { tags: keys.into_iter().map(|(key, values)| KeyValues { key, values }).collect() })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TagFilter {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Match {
    pub key: String,
    pub value: String,
}

/// `true`/`false`, as a JSON boolean (the SDK) or a string (the reference's example).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FilterBody {
    pub without_any_tag: Option<Flag>,
    pub tags: Option<Vec<TagFilter>>,
    pub matches: Option<Vec<Match>>,
}

impl FilterBody {
    /// Resources matching the filter: without any tag, or carrying every key with one of its values (any value
    /// when none are listed), and whose name contains each `resource_name` match.
    fn select(&self, all: Vec<Tagged>) -> Result<Vec<Tagged>, HwError> {
        let without = match &self.without_any_tag {
            None => false,
            Some(Flag::Bool(b)) => *b,
            Some(Flag::Text(t)) if t == "true" => true,
            Some(Flag::Text(t)) if t == "false" => false,
            Some(Flag::Text(_)) => return Err(HwError::invalid("without_any_tag must be true or false")),
        };
        let filters = self.tags.as_deref().unwrap_or_default();
        if filters.len() > 20 || filters.iter().any(|f| f.values.len() > 20) {
            return Err(HwError::invalid("tags: at most 20 keys with at most 20 values each"));
        }
        for f in filters {
            if f.key.is_empty() || f.key.chars().count() > 128 {
                return Err(HwError::invalid("tags.key must be 1-128 characters"));
            }
        }
        let matches = self.matches.as_deref().unwrap_or_default();
        if let Some(m) = matches.iter().find(|m| m.key != "resource_name") {
            return Err(HwError::invalid(format!("matches.key {} must be resource_name", m.key)));
        }
        Ok(all
            .into_iter()
            .filter(|r| {
                let by_tags = if without {
                    r.tags.is_empty()
                } else {
                    filters.iter().all(|f| {
                        r.tags.iter().any(|t| t.key == f.key && (f.values.is_empty() || f.values.contains(&t.value)))
                    })
                };
                by_tags && matches.iter().all(|m| r.name.contains(&m.value))
            })
            .collect())
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FilteredResource {
    pub resource_id: String,
    pub resource_name: String,
    pub resource_detail: serde_json::Map<String, serde_json::Value>,
    pub tags: Vec<ResourceTag>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Filtered {
    pub resources: Vec<FilteredResource>,
    pub total_count: u64,
}

pub fn filter(c: &Call, body: FilterBody) -> Result<Filtered, HwError> {
    let (kind, role) = resource_type(c)?;
    let limit = c.query_u64("limit")?.unwrap_or(1000);
    wire::range("limit", limit as i64, 1, 1000)?;
    let offset = c.query_u64("offset")?.unwrap_or(0);
    let selected = body.select(resources(c, kind, role)?)?;
    Ok(Filtered {
        total_count: selected.len() as u64,
        resources: selected
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .map(|r| FilteredResource {
                resource_id: r.id,
                resource_name: r.name,
                resource_detail: serde_json::Map::new(),
                tags: ResourceTag::of(&r.tags),
            })
            .collect(),
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Counted {
    pub total_count: u64,
}

pub fn count(c: &Call, body: FilterBody) -> Result<Counted, HwError> {
    let (kind, role) = resource_type(c)?;
    Ok(Counted { total_count: body.select(resources(c, kind, role)?)?.len() as u64 })
}
