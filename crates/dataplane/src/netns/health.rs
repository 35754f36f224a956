//! Tunnel health checks: a real ping through the tunnel from the gateway namespace, source `sip`, every
//! `interval_s`; `retry` consecutive losses turn the verdict to unhealthy, one answer turns it back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openvgw_core::model::HealthCheck;
use tokio::task::JoinHandle;

pub(crate) struct HealthProbe {
    pub config: HealthCheck,
    verdict: Arc<Mutex<Option<bool>>>,
    task: JoinHandle<()>,
}

impl HealthProbe {
    pub(crate) fn start(namespace: String, config: HealthCheck) -> HealthProbe {
        let verdict = Arc::new(Mutex::new(None));
        let shared = verdict.clone();
        let check = config.clone();
        let task = tokio::spawn(async move {
            let interval = Duration::from_secs(u64::from(check.interval_s.max(1)));
            // A reply slower than the interval (or 3 s) counts as lost.
            let wait_s = check.interval_s.clamp(1, 3).to_string();
            let allowed_losses = check.retry.max(1);
            let mut losses = 0u32;
            loop {
                let ok = crate::netns::sys::run(
                    "ip",
                    &[
                        "netns", "exec", &namespace, "ping", "-n", "-q", "-c", "1", "-W", &wait_s, "-I", &check.sip,
                        &check.dip,
                    ],
                )
                .await
                .is_ok();
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

impl Drop for HealthProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}
