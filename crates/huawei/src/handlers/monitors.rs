//! Connection monitors (reference 4.1.4): ICMP probes from the gateway address a connection uses to its peer.

use openvgw_core::model::ConnectionMonitor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ops::{NoBody, NoContent};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBody {
    pub connection_monitor: CreateMonitor,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateMonitor {
    pub vpn_connection_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MonitorView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    pub vpn_connection_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub source_ip: String,
    pub destination_ip: String,
    pub proto_type: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Created {
    pub connection_monitor: MonitorView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Shown {
    pub connection_monitor: MonitorView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    pub connection_monitors: Vec<MonitorView>,
    pub request_id: String,
}

fn view(m: &ConnectionMonitor, with_status: bool) -> MonitorView {
    MonitorView {
        id: m.id.clone(),
        status: with_status.then_some("ACTIVE"),
        vpn_connection_id: m.connection_id.clone(),
        kind: "gateway",
        source_ip: m.source_ip.to_string(),
        destination_ip: m.destination_ip.map(|a| a.to_string()).unwrap_or_default(),
        proto_type: "icmp",
    }
}

pub fn create(c: &Call, body: CreateBody) -> Result<Created, HwError> {
    let m = c.svc.create_monitor(&c.ctx()?, &body.connection_monitor.vpn_connection_id).map_err(|e| c.core(e))?;
    Ok(Created { connection_monitor: view(&m, false), request_id: c.request_id() })
}

pub fn show(c: &Call, _: NoBody) -> Result<Shown, HwError> {
    let m = c.svc.get_monitor(c.scope()?, c.path("connection_monitor_id")?).map_err(|e| c.core(e))?;
    Ok(Shown { connection_monitor: view(&m, true), request_id: c.request_id() })
}

pub fn list(c: &Call, _: NoBody) -> Result<Listed, HwError> {
    let monitors = c.svc.list_monitors(c.scope()?, c.query("vpn_connection_id")).map_err(|e| c.core(e))?;
    Ok(Listed { connection_monitors: monitors.iter().map(|m| view(m, true)).collect(), request_id: c.request_id() })
}

pub fn delete(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    c.svc.delete_monitor(&c.ctx()?, c.path("connection_monitor_id")?).map_err(|e| c.core(e))?;
    Ok(NoContent)
}
