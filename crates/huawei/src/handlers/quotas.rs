//! Quotas (reference 4.3.1): the limits this deployment enforces and what the project uses of them.

use schemars::JsonSchema;
use serde::Serialize;

use crate::call::Call;
use crate::error::HwError;
use crate::ops::NoBody;

#[derive(Debug, Serialize, JsonSchema)]
pub struct QuotaInfo {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub quota: u64,
    pub used: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Resources {
    pub resources: Vec<QuotaInfo>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Shown {
    pub quotas: Resources,
    pub request_id: String,
}

pub fn show(c: &Call, _: NoBody) -> Result<Shown, HwError> {
    let q = &c.svc.config().quotas;
    let used = c.svc.usage(c.scope()?).map_err(|e| c.core(e))?;
    Ok(Shown {
        quotas: Resources {
            resources: vec![
                QuotaInfo {
                    kind: "customer_gateway",
                    quota: q.customer_gateways_per_region,
                    used: used.customer_gateways,
                },
                QuotaInfo { kind: "vpn_connection", quota: q.connections_per_region, used: used.connections },
                // Site-to-cloud and client-to-site gateways draw on one limit.
                QuotaInfo {
                    kind: "vpn_gateway",
                    quota: q.vpn_gateways_per_region,
                    used: used.site_gateways + used.client_gateways,
                },
            ],
        },
        request_id: c.request_id(),
    })
}
