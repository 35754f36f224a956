//! What tells the reconciler which gateways to look at: charon's VICI events.
//!
//! Observing a gateway costs VICI round trips, `ip`/`nft` runs and a store write; doing it for every gateway every
//! second made the cost of watching grow with everything that exists. Each charon has one listener subscribed to
//! `ike-updown` and `child-updown`; an event, the listener's start, and the end of its connection (charon died)
//! mark the gateway changed. [`Changes::take`] hands the reconciler those gateways, plus the ones whose state no
//! event reports (SSL-VPN sessions, health-check verdicts, BGP sessions) and the ones without a live listener. Anything else that
//! can break without an event (a deleted namespace, a flushed ruleset) is found by the reconciler's slower sweep
//! over all gateways.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use openvgw_vici::Client;

use super::charon::vici;
use crate::DataplaneError;

/// The events that change what `observe` reports about tunnels.
const EVENTS: [&str; 2] = ["ike-updown", "child-updown"];

/// Gateways marked changed since the reconciler last asked.
#[derive(Default)]
pub(super) struct Changes(Mutex<HashSet<String>>);

impl Changes {
    pub(super) fn mark(&self, gateway_id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(gateway_id.to_string());
    }

    pub(super) fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The event listener of one charon process; stopped when dropped.
pub(super) struct Listener {
    pid: i32,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Subscribes to the charon answering on `socket` (process `pid`) in the background.
    pub(super) fn start(changes: Arc<Changes>, gateway_id: String, socket: PathBuf, pid: i32) -> Listener {
        let task = tokio::spawn(async move {
            match subscribe(&socket).await {
                Ok(mut c) => {
                    // Whatever happened before the subscription is seen by the first look.
                    changes.mark(&gateway_id);
                    while c.next_event().await.is_ok() {
                        changes.mark(&gateway_id);
                    }
                }
                Err(e) => tracing::debug!(gateway = %gateway_id, error = %e, "no VICI event subscription"),
            }
            // charon is gone or unreachable: look at the gateway (and subscribe again once it runs).
            changes.mark(&gateway_id);
        });
        Listener { pid, task }
    }

    /// Whether this listener is subscribed to (or still subscribing to) charon process `pid`.
    pub(super) fn serves(&self, pid: i32) -> bool {
        self.pid == pid && self.is_live()
    }

    pub(super) fn is_live(&self) -> bool {
        !self.task.is_finished()
    }
}

async fn subscribe(socket: &std::path::Path) -> Result<Client, DataplaneError> {
    let mut c = vici(socket).await?;
    for event in EVENTS {
        c.register(event).await.map_err(|e| super::sys::failed(format!("registering for {event}: {e}")))?;
    }
    Ok(c)
}
