//! Tunnel health checks: a real ping through the tunnel from the gateway namespace to `dip`, from `sip` (or the
//! address the kernel picks), every `interval_s`; `retry` consecutive losses turn the verdict to unhealthy, one
//! answer turns it back. A check without a destination has nothing to probe and gives no verdict.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openvgw_core::model::HealthCheck;
use tokio::task::JoinHandle;

use super::{Gateway, Inner};
use crate::GatewayIntent;

pub(crate) struct HealthProbe {
    pub config: HealthCheck,
    verdict: Arc<Mutex<Option<bool>>>,
    task: JoinHandle<()>,
}

impl HealthProbe {
    pub(crate) fn start(namespace: String, config: HealthCheck, dip: Ipv4Addr) -> HealthProbe {
        let verdict = Arc::new(Mutex::new(None));
        let shared = verdict.clone();
        let check = config.clone();
        let task = tokio::spawn(async move {
            let interval = Duration::from_secs(u64::from(check.interval_s.max(1)));
            // A reply slower than the interval (or 3 s) counts as lost.
            let wait_s = check.interval_s.clamp(1, 3).to_string();
            let allowed_losses = check.retry.max(1);
            let mut losses = 0u32;
            let (sip, dip) = (check.sip.map(|ip| ip.to_string()), dip.to_string());
            let mut args = vec!["netns", "exec", &namespace, "ping", "-n", "-q", "-c", "1", "-W", &wait_s];
            if let Some(sip) = &sip {
                args.extend(["-I", sip.as_str()]);
            }
            args.push(&dip);
            loop {
                let ok = crate::netns::sys::run("ip", &args).await.is_ok();
                let next = if ok {
                    losses = 0;
                    Some(true)
                } else {
                    losses = losses.saturating_add(1);
                    (losses >= allowed_losses).then_some(false)
                };
                if let Some(v) = next {
                    if let Ok(mut slot) = shared.lock() {
                        *slot = Some(v);
                    }
                }
                tokio::time::sleep(interval).await;
            }
        });
        HealthProbe { config, verdict, task }
    }

    /// `None` until the first verdict.
    pub(crate) fn verdict(&self) -> Option<bool> {
        self.verdict.lock().ok().and_then(|v| *v)
    }
}

impl Inner {
    /// One probe per tunnel with an enabled health check; a changed check restarts its probe.
    pub(super) fn sync_health(&self, gw: &Gateway, ns: &str, intent: &GatewayIntent) {
        let wanted: BTreeMap<&str, (&HealthCheck, Ipv4Addr)> = intent
            .tunnels
            .iter()
            .filter_map(|t| {
                let h = t.health_check.as_ref().filter(|h| h.enable)?;
                Some((t.id.as_str(), (h, h.dip?)))
            })
            .collect();
        let mut st = gw.state();
        st.health.retain(|id, probe| wanted.get(id.as_str()).is_some_and(|(h, _)| **h == probe.config));
        for (id, (h, dip)) in wanted {
            st.health.entry(id.to_string()).or_insert_with(|| HealthProbe::start(ns.to_string(), h.clone(), dip));
        }
    }
}

impl Drop for HealthProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}
