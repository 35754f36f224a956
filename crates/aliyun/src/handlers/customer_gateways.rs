//! Customer gateways (seed section 5).

use openvgw_control::customer_gateways::{CustomerGatewayChanges, NewCustomerGateway};
use openvgw_control::Tagged;
use openvgw_core::model::{CustomerGateway, Extensions, PeerIdentity};
use openvgw_core::{validate, Field, Secret};
use serde::Serialize;

use super::{description, name, tags_param, Empty, Paged, TagSet};
use crate::action::Call;
use crate::error::WireError;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    customer_gateway_id: String,
    ip_address: String,
    name: String,
    description: String,
    create_time: i64,
}

fn address(c: &CustomerGateway) -> String {
    c.address().map(|a| a.to_string()).unwrap_or_default()
}

fn summary(c: CustomerGateway) -> Summary {
    Summary {
        ip_address: address(&c),
        customer_gateway_id: c.id,
        name: c.name,
        description: c.description,
        create_time: c.created_at,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct View {
    customer_gateway_id: String,
    ip_address: String,
    description: String,
    name: String,
    create_time: i64,
    auth_key: String,
    tags: TagSet,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u64>,
}

fn view(t: &Tagged<CustomerGateway>) -> View {
    let c = &t.item;
    View {
        customer_gateway_id: c.id.clone(),
        ip_address: address(c),
        description: c.description.clone(),
        name: c.name.clone(),
        create_time: c.created_at,
        auth_key: c.bgp_auth_key.as_ref().map(|k| k.expose().to_string()).unwrap_or_default(),
        tags: TagSet::of(&t.tags),
        asn: c.asn,
    }
}

fn auth_key(c: &Call) -> Result<Option<Secret>, WireError> {
    match c.p.get("AuthKey") {
        None => Ok(None),
        Some(k) => {
            validate::bgp_auth_key(k).map_err(|e| c.core(e))?;
            Ok(Some(Secret::new(k)))
        }
    }
}

pub fn create(c: &Call) -> Result<Summary, WireError> {
    let ip = c.p.req("IpAddress")?;
    let ip = validate::ipv4(ip, Field::PeerAddress).map_err(|e| c.core(e))?;
    let name = name(c, "Name", 2, 128, true)?;
    let description = description(c)?.unwrap_or_default();
    let asn = c.p.get("Asn").map(validate::asn).transpose().map_err(|e| c.core(e))?;
    let bgp_auth_key = auth_key(c)?;
    let mut tags = tags_param(c, "Tags")?;
    tags.extend(tags_param(c, "Tag")?);
    let input = NewCustomerGateway {
        identity: PeerIdentity::Ip(ip),
        name,
        description,
        asn,
        bgp_auth_key,
        ca_certificate: None,
        tags,
        ext: Extensions::default(),
    };
    let cgw = c.svc.create_customer_gateway(&c.ctx()?, input).map_err(|e| c.core(e))?;
    Ok(summary(cgw))
}

pub fn modify(c: &Call) -> Result<Summary, WireError> {
    let id = c.p.req("CustomerGatewayId")?;
    let changes = CustomerGatewayChanges {
        name: name(c, "Name", 2, 128, true)?,
        description: description(c)?,
        bgp_auth_key: auth_key(c)?,
        ca_certificate: None,
    };
    let cgw = c.svc.modify_customer_gateway(&c.ctx()?, id, changes).map_err(|e| c.core(e))?;
    Ok(summary(cgw))
}

pub fn describe(c: &Call) -> Result<View, WireError> {
    let cgw = c.svc.get_customer_gateway(c.scope, c.p.req("CustomerGatewayId")?).map_err(|e| c.core(e))?;
    Ok(view(&cgw))
}

#[derive(Serialize)]
pub struct GatewayList {
    #[serde(rename = "CustomerGateway")]
    customer_gateway: Vec<View>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listed {
    customer_gateways: GatewayList,
}

pub fn describe_all(c: &Call) -> Result<Paged<Listed>, WireError> {
    let page = c.p.page()?;
    let listed =
        c.svc.list_customer_gateways(c.scope, c.p.get("CustomerGatewayId"), &page.request()).map_err(|e| c.core(e))?;
    let items = listed.items.iter().map(view).collect();
    Ok(Paged::new(Listed { customer_gateways: GatewayList { customer_gateway: items } }, page, listed.total))
}

pub fn delete(c: &Call) -> Result<Empty, WireError> {
    c.svc.delete_customer_gateway(&c.ctx()?, c.p.req("CustomerGatewayId")?).map_err(|e| c.core(e))?;
    Ok(Empty {})
}
