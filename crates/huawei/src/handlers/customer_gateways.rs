//! Customer gateways (reference 4.1.2).

use openvgw_control::customer_gateways::{CustomerGatewayChanges, NewCustomerGateway};
use openvgw_control::Tagged;
use openvgw_core::model::{CertificateInfo, CustomerGateway, Extensions, PeerIdentity};
use openvgw_core::{validate, Field};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::call::Call;
use crate::error::HwError;
use crate::ops::{NoBody, NoContent};
use crate::wire::{self, PageInfo, ResourceTag};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBody {
    pub customer_gateway: CreateCgw,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateCgw {
    pub name: Option<String>,
    pub id_type: Option<String>,
    pub id_value: String,
    pub bgp_asn: Option<u64>,
    pub ca_certificate: Option<CaCertificateRequest>,
    pub tags: Option<Vec<ResourceTag>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CaCertificateRequest {
    pub id: Option<String>,
    pub content: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBody {
    pub customer_gateway: UpdateCgw,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateCgw {
    pub name: Option<String>,
    pub ca_certificate: Option<CaCertificateRequest>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CaCertificateView {
    pub id: String,
    pub serial_number: String,
    pub signature_algorithm: String,
    pub issuer: String,
    pub subject: String,
    pub expire_time: String,
    pub is_updatable: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CgwView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp_asn: Option<u64>,
    pub id_type: &'static str,
    pub id_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<CaCertificateView>,
    pub created_at: String,
    pub updated_at: String,
    pub tags: Vec<ResourceTag>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct One {
    pub customer_gateway: CgwView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    pub customer_gateways: Vec<CgwView>,
    pub total_count: u64,
    pub page_info: PageInfo,
    pub request_id: String,
}

/// A stable id for a certificate the customer gateway carries (derived from its content).
pub fn certificate_id(pem: &str) -> String {
    let h = hex::encode(Sha256::digest(pem.trim().as_bytes()));
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn view(t: &Tagged<CustomerGateway>) -> CgwView {
    let g = &t.item;
    let (id_type, id_value) = match &g.identity {
        PeerIdentity::Ip(a) => ("ip", a.to_string()),
        PeerIdentity::Fqdn(n) => ("fqdn", n.clone()),
    };
    CgwView {
        id: g.id.clone(),
        name: g.name.clone(),
        bgp_asn: if id_type == "ip" { g.asn } else { None },
        id_type,
        id_value,
        ca_certificate: g.ca_certificate.as_ref().map(|c| CaCertificateView {
            id: certificate_id(&c.pem),
            serial_number: wire::serial_decimal(&c.serial),
            signature_algorithm: c.signature_algorithm.clone(),
            issuer: c.issuer.clone(),
            subject: c.subject.clone(),
            expire_time: wire::ts_seconds(c.not_after),
            is_updatable: true,
        }),
        created_at: wire::ts(g.created_at),
        updated_at: wire::ts(g.updated_at),
        tags: ResourceTag::of(&t.tags),
    }
}

fn ca_certificate(r: CaCertificateRequest) -> Result<CertificateInfo, HwError> {
    let Some(content) = r.content else {
        return Err(match r.id {
            Some(id) => HwError::invalid(format!("ca_certificate.id {id}: no such certificate; give its content")),
            None => HwError::invalid("ca_certificate.content is required"),
        });
    };
    if content.is_empty() || content.len() > 8192 {
        return Err(HwError::invalid("ca_certificate.content must be 1-8192 characters"));
    }
    let i = wire::inspect("ca_certificate", &content)?;
    if !i.is_ca {
        return Err(HwError::new(400, "VPN.0076", "Certificate ca_certificate is not a CA certificate."));
    }
    Ok(wire::certificate_info(i))
}

/// An FQDN identity: 1-128 characters, none of `& < > [ ] \ ?` or space.
fn fqdn(v: &str) -> Result<(), HwError> {
    let ok = (1..=128).contains(&v.len()) && v.chars().all(|c| c.is_ascii_graphic() && !"&<>[]\\?".contains(c));
    if ok {
        Ok(())
    } else {
        Err(HwError::invalid("id_value: an FQDN of 1-128 characters without & < > [ ] \\ ? or spaces"))
    }
}

pub fn create(c: &Call, body: CreateBody) -> Result<One, HwError> {
    let g = body.customer_gateway;
    if let Some(n) = &g.name {
        wire::name(n)?;
    }
    let identity = match g.id_type.as_deref().unwrap_or("ip") {
        "ip" => PeerIdentity::Ip(validate::ipv4(&g.id_value, Field::PeerAddress).map_err(|e| c.core(e))?),
        "fqdn" => {
            fqdn(&g.id_value)?;
            if g.bgp_asn.is_some() {
                return Err(HwError::invalid("bgp_asn applies only when id_type is ip"));
            }
            PeerIdentity::Fqdn(g.id_value.clone())
        }
        _ => return Err(HwError::invalid("id_type must be ip or fqdn")),
    };
    if let Some(a) = g.bgp_asn {
        wire::range("bgp_asn", a as i64, 1, 4_294_967_295)?;
    }
    let input = NewCustomerGateway {
        identity,
        name: Some(g.name.unwrap_or_else(|| wire::default_name("cgw"))),
        description: String::new(),
        asn: g.bgp_asn,
        bgp_auth_key: None,
        ca_certificate: g.ca_certificate.map(ca_certificate).transpose()?,
        tags: wire::creation_tags(g.tags)?,
        ext: Extensions::default(),
    };
    let cgw = c.svc.create_customer_gateway(&c.ctx()?, input).map_err(|e| c.core(e))?;
    let t = c.svc.get_customer_gateway(c.scope()?, &cgw.id).map_err(|e| c.core(e))?;
    Ok(One { customer_gateway: view(&t), request_id: c.request_id() })
}

pub fn show(c: &Call, _: NoBody) -> Result<One, HwError> {
    let t = c.svc.get_customer_gateway(c.scope()?, c.path("customer_gateway_id")?).map_err(|e| c.core(e))?;
    Ok(One { customer_gateway: view(&t), request_id: c.request_id() })
}

pub fn list(c: &Call, _: NoBody) -> Result<Listed, HwError> {
    let ids = c.query_all("cgw_id");
    let page = c.marker_page(200, 200)?;
    let listed = match ids.as_slice() {
        [] => c.svc.list_customer_gateways(c.scope()?, None, &page).map_err(|e| c.core(e))?,
        [one] => c.svc.list_customer_gateways(c.scope()?, Some(one), &page).map_err(|e| c.core(e))?,
        many => {
            let all = c
                .svc
                .list_customer_gateways(c.scope()?, None, &openvgw_core::PageRequest::ALL)
                .map_err(|e| c.core(e))?;
            let matching = all.items.into_iter().filter(|t| many.contains(&t.item.id.as_str())).collect();
            openvgw_core::Page::of_vec(matching, &page, |t| openvgw_core::Cursor(t.item.id.clone()))
        }
    };
    Ok(Listed {
        page_info: PageInfo::of(&listed),
        total_count: listed.total,
        customer_gateways: listed.items.iter().map(view).collect(),
        request_id: c.request_id(),
    })
}

pub fn update(c: &Call, body: UpdateBody) -> Result<One, HwError> {
    let u = body.customer_gateway;
    if let Some(n) = &u.name {
        wire::name(n)?;
    }
    let changes = CustomerGatewayChanges {
        name: u.name,
        ca_certificate: u.ca_certificate.map(ca_certificate).transpose()?,
        ..Default::default()
    };
    let id = c.path("customer_gateway_id")?;
    c.svc.modify_customer_gateway(&c.ctx()?, id, changes).map_err(|e| c.core(e))?;
    let t = c.svc.get_customer_gateway(c.scope()?, id).map_err(|e| c.core(e))?;
    Ok(One { customer_gateway: view(&t), request_id: c.request_id() })
}

pub fn delete(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    c.svc.delete_customer_gateway(&c.ctx()?, c.path("customer_gateway_id")?).map_err(|e| c.core(e))?;
    Ok(NoContent)
}
