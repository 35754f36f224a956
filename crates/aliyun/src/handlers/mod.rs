//! One module per resource. Each handler reads its typed inputs from the parameters (Alibaba's names, defaults
//! and ranges), calls one service operation, and returns a `Serialize` response with the SDK's field names and
//! JSON types.

pub mod certificates;
pub mod connections;
pub mod customer_gateways;
pub mod gateways;
pub mod ipsec_servers;
pub mod routes;
pub mod ssl;
pub mod tags;

use openvgw_core::model::Tag;
use openvgw_core::validate;
use openvgw_store::TagFilter;
use serde::Serialize;

use crate::action::Call;
use crate::error::WireError;
use crate::params::{NumberedPage, Params};

/// Tag keys and values may not claim Alibaba's own prefixes.
const RESERVED_TAG_PREFIXES: &[&str] = &["aliyun", "acs:"];

/// An address on the wire: its dotted form, or `""` when there is none. Serialised without `fmt` (serde's
/// formatter for addresses), which was a noticeable part of rendering a page of gateways.
#[derive(Clone, Copy)]
pub struct WireAddr(pub Option<std::net::Ipv4Addr>);

impl Serialize for WireAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => a.serialize(s),
            None => s.serialize_str(""),
        }
    }
}

/// An empty response body (the layer adds `RequestId`).
#[derive(Serialize)]
pub struct Empty {}

/// `{"Tag":[{"Key","Value"}]}`, the wrapped shape the SDK reads.
#[derive(Serialize)]
pub struct TagSet {
    #[serde(rename = "Tag")]
    pub tag: Vec<TagView>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagView {
    pub key: String,
    pub value: String,
}

impl TagSet {
    pub fn of(tags: &[Tag]) -> Self {
        TagSet { tag: tags.iter().map(|t| TagView { key: t.key.clone(), value: t.value.clone() }).collect() }
    }
}

/// `PageNumber`, `PageSize`, `TotalCount` beside a page of items.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Paged<T: Serialize> {
    #[serde(flatten)]
    pub items: T,
    pub page_number: u64,
    pub page_size: u64,
    pub total_count: u64,
}

impl<T: Serialize> Paged<T> {
    pub fn new(items: T, page: NumberedPage, total: u64) -> Self {
        Paged { items, page_number: page.number, page_size: page.size, total_count: total }
    }
}

/// `Tag.N.Key` / `Tag.N.Value` (or `Tags.N.…`) as tags to set, checked against Alibaba's tag rules.
pub fn tags_param(c: &Call, prefix: &str) -> Result<Vec<Tag>, WireError> {
    let tags = c
        .p
        .objects(prefix)?
        .into_iter()
        .map(|o| {
            let key =
                o.get("Key").filter(|k| !k.is_empty()).ok_or_else(|| WireError::missing(&format!("{prefix}.N.Key")))?;
            Ok(Tag { key: key.clone(), value: o.get("Value").cloned().unwrap_or_default() })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    for t in &tags {
        validate::tag_key(&t.key, 64, RESERVED_TAG_PREFIXES).map_err(|e| c.core(e))?;
        validate::tag_value(&t.value, 128, RESERVED_TAG_PREFIXES).map_err(|e| c.core(e))?;
    }
    let limit = c.svc.config().quotas.tags_per_resource;
    if tags.len() as u64 > limit {
        return Err(c.core(openvgw_core::Error::QuotaFull { quota: openvgw_core::Quota::Tags, limit }));
    }
    Ok(tags)
}

/// `Tag.N.Key` / `Tag.N.Value` as filters (a value is optional).
pub fn tag_filters(p: &Params) -> Result<Vec<TagFilter>, WireError> {
    let objects = p.objects("Tag")?;
    // Alibaba documents Tag.N as 1-20.
    if objects.len() > 20 {
        return Err(WireError::invalid("Tag.N", "at most 20 tag filters"));
    }
    objects
        .into_iter()
        .map(|o| match o.get("Key").filter(|k| !k.is_empty()) {
            Some(key) => Ok(TagFilter { key: key.clone(), value: o.get("Value").filter(|v| !v.is_empty()).cloned() }),
            None => Err(WireError::invalid("Tag.N.Key", "a tag filter needs a key")),
        })
        .collect()
}

pub fn iso8601(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A name within `min..=max` characters (periods allowed where `dot`).
pub fn name(c: &Call, param: &str, min: usize, max: usize, dot: bool) -> Result<Option<String>, WireError> {
    match c.p.string(param) {
        None => Ok(None),
        Some(n) => {
            validate::name(&n, min, max, dot).map_err(|e| c.core(e))?;
            Ok(Some(n))
        }
    }
}

pub fn description(c: &Call) -> Result<Option<String>, WireError> {
    match c.p.string("Description") {
        None => Ok(None),
        Some(d) => {
            validate::description(&d, 100).map_err(|e| c.core(e))?;
            Ok(Some(d))
        }
    }
}

/// A comma-separated CIDR list parameter.
pub fn cidrs(c: &Call, param: &str, field: openvgw_core::Field) -> Result<Option<Vec<ipnet::Ipv4Net>>, WireError> {
    c.p.get(param).map(|v| validate::cidr_list(v, field).map_err(|e| c.core(e))).transpose()
}

pub fn req_cidrs(c: &Call, param: &str, field: openvgw_core::Field) -> Result<Vec<ipnet::Ipv4Net>, WireError> {
    cidrs(c, param, field)?.ok_or_else(|| WireError::missing(param))
}
