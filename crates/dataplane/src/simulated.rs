//! The `simulated` driver: reports what the real one would, touches nothing on the system.
//!
//! It takes as long as provisioning would (configurable), keeps the intents it was given, and never claims an SA or a
//! passing health check, because no tunnel exists.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use openvgw_core::model::TunnelState;

use crate::{proposals, DataplaneError, Driver, GatewayIntent, GatewayObservation, TunnelObservation};

struct Realised {
    intent: GatewayIntent,
    log: Vec<(i64, String)>,
}

pub struct SimulatedDriver {
    provision_delay: Duration,
    apply_delay: Duration,
    gateways: Mutex<HashMap<String, Realised>>,
}

impl SimulatedDriver {
    pub fn new(provision_delay: Duration, apply_delay: Duration) -> Self {
        SimulatedDriver { provision_delay, apply_delay, gateways: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Realised>>, DataplaneError> {
        self.gateways.lock().map_err(|_| DataplaneError::Failed("simulated driver state poisoned".into()))
    }
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[async_trait]
impl Driver for SimulatedDriver {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn apply(&self, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let known = self.lock()?.contains_key(&intent.gateway_id);
        tokio::time::sleep(if known { self.apply_delay } else { self.provision_delay }).await;
        let mut gws = self.lock()?;
        let entry = gws
            .entry(intent.gateway_id.clone())
            .or_insert_with(|| Realised { intent: intent.clone(), log: Vec::new() });
        let previous: Vec<String> = entry.intent.ssl_servers.iter().map(|s| s.id.clone()).collect();
        for s in &intent.ssl_servers {
            let verb = if previous.contains(&s.id) && known { "reconfigured" } else { "started" };
            entry.log.push((
                now_s(),
                format!(
                    "{} simulated SSL-VPN server {verb}: {} port {} cipher {}",
                    s.id,
                    proposals::openvpn::transport(s.transport),
                    s.port,
                    proposals::openvpn::cipher(s.cipher)
                ),
            ));
        }
        entry.intent = intent.clone();
        Ok(())
    }

    async fn remove(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        let known = self.lock()?.remove(gateway_id).is_some();
        if known {
            tokio::time::sleep(self.apply_delay).await;
        }
        Ok(())
    }

    async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        let gws = self.lock()?;
        let Some(r) = gws.get(gateway_id) else {
            return Ok(GatewayObservation::default());
        };
        let tunnels = r
            .intent
            .tunnels
            .iter()
            .map(|t| {
                let health_ok = t.health_check.as_ref().filter(|h| h.enable).map(|_| false);
                (t.id.clone(), TunnelObservation { state: TunnelState::IkeSaNotEstablished, health_ok, bgp: None })
            })
            .collect();
        let ssl_sessions = r.intent.ssl_servers.iter().map(|s| (s.id.clone(), 0)).collect();
        // What a VPC's router would carry: the same records as the netns driver's.
        // Nothing negotiates here, so no tunnel carries.
        let published = crate::vpc::routes(&r.intent, &[], &Default::default());
        Ok(GatewayObservation {
            ready: true,
            reroute: false,
            tunnels,
            ssl_sessions,
            ipsec_server_clients: 0,
            published,
            vpc_router: r.intent.vpc_router.clone(),
        })
    }

    /// Nothing to negotiate with: no tunnel exists.
    async fn initiate(&self, _gateway_id: &str, _tunnel_id: &str) -> Result<(), DataplaneError> {
        Ok(())
    }

    async fn ssl_server_logs(
        &self,
        gateway_id: &str,
        server_id: &str,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<String>, DataplaneError> {
        let gws = self.lock()?;
        Ok(gws
            .get(gateway_id)
            .map(|r| {
                r.log
                    .iter()
                    .filter(|(at, line)| (from_s..=to_s).contains(at) && line.starts_with(server_id))
                    .map(|(_, line)| line.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn realised_gateways(&self) -> Result<Vec<String>, DataplaneError> {
        Ok(self.lock()?.keys().cloned().collect())
    }
}
