//! openvgw-dataplane: the neutral intent a gateway compiles to, and the drivers that realise it.
//!
//! The control plane never tells a driver *how* (strongSwan, OpenVPN, namespaces); it hands over the complete
//! desired state of one gateway ([`GatewayIntent`]) and reads back what the driver observes
//! ([`GatewayObservation`]). Applying the same intent twice is a no-op, so restarts and retries converge. Because
//! the interface is "desired state in, status out", running a driver on another host (`openvgw agent`) is a
//! transport change only.

pub mod intent;
pub mod netns;
pub mod peer;
pub mod proposals;
pub mod simulated;
pub mod vpc;

use async_trait::async_trait;

pub use intent::*;

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The intent asks for something this backend cannot realise (e.g. a second route-based tunnel under libipsec).
    #[error("unsupported by the {backend} data plane: {what}")]
    Unsupported { backend: &'static str, what: String },
    #[error("data plane failure: {0}")]
    Failed(String),
}

#[async_trait]
pub trait Driver: Send + Sync {
    /// Short name for logs and metrics (`simulated`, `netns`).
    fn name(&self) -> &'static str;
    /// Converge the gateway to `intent` (create, update or leave alone).
    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError>;
    /// Remove everything the driver created for the gateway; removing an unknown gateway succeeds.
    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError>;
    /// Gateways to observe now because something may have changed since the last call (events of their daemons,
    /// or state no event reports); `None` when the driver cannot tell, and every gateway is observed each time.
    /// Changes no event reports (a deleted namespace) are left to the reconciler's slower sweep over all of them.
    fn take_changed(&self) -> Option<std::collections::HashSet<String>> {
        None
    }
    /// What is really there now. Only looks: a broken gateway is reported (`ready: false`), never repaired here.
    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError>;
    /// Starts negotiating one tunnel of an applied gateway now (tunnels that initiate and have no IKE SA yet are
    /// nudged by the reconciler until the peer answers). An unknown gateway or tunnel is not an error.
    async fn initiate(&self, gateway_id: &str, tunnel_id: &str) -> Result<(), DataplaneError>;
    /// Log lines of an SSL-VPN server between two unix times (seconds), oldest first.
    async fn ssl_server_logs(
        &self,
        gateway_id: &str,
        server_id: &str,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<String>, DataplaneError>;
    /// Gateways the driver currently has realised (to find leftovers after a restart).
    async fn realised_gateways(&self) -> Result<Vec<String>, DataplaneError>;

    /// Log lines of one tunnel between two unix times (seconds), oldest first.
    async fn tunnel_logs(
        &self,
        _gateway_id: &str,
        _tunnel_id: &str,
        _from_s: i64,
        _to_s: i64,
    ) -> Result<Vec<String>, DataplaneError> {
        Ok(Vec::new())
    }
    /// The CHILD SAs a tunnel has negotiated, with their traffic.
    async fn tunnel_sas(&self, _gateway_id: &str, _tunnel_id: &str) -> Result<Vec<SaStats>, DataplaneError> {
        Ok(Vec::new())
    }
    /// Tears a tunnel's SAs down and negotiates afresh (a tunnel that only responds waits for its peer).
    async fn reset(&self, _gateway_id: &str, _tunnel_id: &str) -> Result<(), DataplaneError> {
        Ok(())
    }
    /// Live client sessions of the gateway's SSL-VPN servers.
    async fn sessions(&self, _gateway_id: &str) -> Result<Vec<ClientSession>, DataplaneError> {
        Ok(Vec::new())
    }
    /// Ends one client session; `false` when no such session exists.
    async fn disconnect(&self, _gateway_id: &str, _session_id: &str) -> Result<bool, DataplaneError> {
        Ok(false)
    }
    /// The hosts a driver spreads gateways over, as operators see them; empty for a driver that runs here.
    fn hosts(&self) -> Vec<HostView> {
        Vec::new()
    }
    /// The host holding a gateway, for a driver that spreads them.
    fn host_of(&self, _gateway_id: &str) -> Option<String> {
        None
    }
}

/// One host of a driver that spreads gateways over several (`openvgw agent`s).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostView {
    pub id: String,
    /// The driver the host runs (`netns`, `simulated`).
    pub driver: String,
    /// How many gateways it takes (0: no limit).
    pub capacity: u32,
    /// Attached now; otherwise away (for `away_s` seconds), and dead once that reaches the driver's limit.
    pub attached: bool,
    pub away_s: Option<u64>,
    /// Gateways placed on it.
    pub gateways: usize,
    /// Its session's number (grows with each reconnect); 0 while away.
    pub epoch: u64,
}
