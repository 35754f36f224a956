//! Certificates of national-standard gateways (seed 4.8-4.10).

use openvgw_core::model::CertificateUse;
use serde::Serialize;

use super::{iso8601, Empty};
use crate::action::Call;
use crate::error::WireError;
use crate::params::encode_token;

fn usage(s: &str) -> Result<CertificateUse, WireError> {
    match s.to_ascii_lowercase().as_str() {
        "signature" => Ok(CertificateUse::Signature),
        "encryption" => Ok(CertificateUse::Encryption),
        _ => Err(WireError::invalid("CertificateType", "must be Signature or Encryption")),
    }
}

fn usage_name(u: CertificateUse) -> &'static str {
    match u {
        CertificateUse::Signature => "Signature",
        CertificateUse::Encryption => "Encryption",
    }
}

pub fn associate(c: &Call) -> Result<Empty, WireError> {
    let (gw, cert, ty) = (c.p.req("VpnGatewayId")?, c.p.req("CertificateId")?, usage(c.p.req("CertificateType")?)?);
    c.svc.associate_certificate(&c.ctx()?, gw, cert, ty).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

pub fn dissociate(c: &Call) -> Result<Empty, WireError> {
    let (gw, cert, ty) = (c.p.req("VpnGatewayId")?, c.p.req("CertificateId")?, usage(c.p.req("CertificateType")?)?);
    c.svc.dissociate_certificate(&c.ctx()?, gw, cert, ty).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Relation {
    vpn_gateway_id: String,
    certificate_id: String,
    certificate_type: &'static str,
    association_time: String,
    region_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listed {
    vpn_certificate_relations: Vec<Relation>,
    total_count: u64,
    max_results: u64,
    next_token: String,
}

pub fn list(c: &Call) -> Result<Listed, WireError> {
    let page = c.p.token_page(10, 20)?;
    let ty = c.p.get("CertificateType").map(usage).transpose()?;
    let found = c
        .svc
        .list_certificate_associations(c.scope, c.p.get("VpnGatewayId"), c.p.get("CertificateId"), ty, &page)
        .map_err(|e| c.core(e))?;
    let rel = found
        .items
        .into_iter()
        .map(|a| Relation {
            association_time: iso8601(a.created_at),
            certificate_type: usage_name(a.usage),
            region_id: a.scope.region,
            vpn_gateway_id: a.gateway_id,
            certificate_id: a.certificate_id,
        })
        .collect();
    Ok(Listed {
        vpn_certificate_relations: rel,
        total_count: found.total,
        max_results: page.limit(),
        next_token: encode_token(found.next.as_ref()),
    })
}
