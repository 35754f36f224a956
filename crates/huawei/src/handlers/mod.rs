//! One module per resource family; each handler takes the typed body and answers with a typed response.

pub mod connections;
pub mod customer_gateways;
pub mod gateways;
pub mod monitors;
pub mod p2c;
pub mod quotas;
pub mod servers;
pub mod tags;
pub mod users;

use openvgw_control::Tagged;
use openvgw_core::model::{GatewayRole, VpnGateway};
use openvgw_core::{Error, Kind};

use crate::call::Call;
use crate::error::HwError;

impl Call<'_> {
    /// A gateway of the given kind: a client-to-site gateway is not found among site-to-cloud ones and vice versa.
    pub fn gateway(&self, id: &str, role: GatewayRole) -> Result<Tagged<VpnGateway>, HwError> {
        let gw = self.svc.get_gateway(self.scope()?, id).map_err(|e| self.core(e))?;
        if gw.item.role != role {
            return Err(self.core(Error::not_found(Kind::VpnGateway, id)));
        }
        Ok(gw)
    }

    /// The gateway of the path's `{vgw_id}` or `{p2c_vgw_id}`.
    pub fn path_gateway(&self) -> Result<Tagged<VpnGateway>, HwError> {
        match self.op.family() {
            crate::ops::Family::P2c => self.gateway(self.path("p2c_vgw_id")?, GatewayRole::Client),
            _ => self.gateway(self.path("vgw_id")?, GatewayRole::Site),
        }
    }
}
