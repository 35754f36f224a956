//! Reading a gateway back: is it still what was applied, what state are its tunnels in, how many clients are
//! connected. Nothing here changes anything; whether to apply again or to nudge a tunnel is the reconciler's call.
//! (It does (re)open the driver's management connections to OpenVPN: after a restart of openvgw they are how the
//! driver sees, and password servers admit, clients at all.)

use std::collections::BTreeMap;

use openvgw_core::model::TunnelState;
use openvgw_vici::Message;

use super::charon::{list_sas, loaded_conns, vici};
use super::names::{self, LIBIPSEC_TUN, NS_PUBLIC_IF};
use super::{firewall, net, strongswan, sys, Gateway, Inner};
use crate::{DataplaneError, GatewayIntent, GatewayObservation, TunnelObservation, VpcRouter};

impl Inner {
    /// Cheap checks that the gateway is what the last apply made it.
    async fn is_ready(&self, gw: &Gateway, intent: &GatewayIntent) -> bool {
        let Ok(names) = self.names(&intent.gateway_id) else {
            return false;
        };
        let paths = self.paths(&names);
        if !sys::netns_exists(&names.namespace) {
            return false;
        }
        let Some(pid) = self.charon_id(&paths, |id| id.running()) else {
            return false;
        };
        // After a restart of openvgw the running charon is adopted here: its events tell when to look again. (A
        // gateway not idle or not at its applied generation is being applied, which subscribes.)
        self.listen(gw, &intent.gateway_id, &paths, pid);
        let Ok(mut c) = vici(&paths.vici).await else {
            return false;
        };
        let Ok(loaded) = loaded_conns(&mut c).await else {
            return false;
        };
        let Ok(desired) = self.desired_connections(intent) else {
            return false;
        };
        let record = self.read_loaded(&paths, pid);
        for (name, d) in desired {
            if !loaded.contains(&name) || record.conns.get(&name) != Some(&strongswan::fingerprint(&d.conn)) {
                return false;
            }
        }
        // A tunnel device that is down or gone takes its routes with it (traffic then hits the blackholes).
        if self.backend.is_libipsec() {
            if !net::link_is_up(&names.namespace, LIBIPSEC_TUN).await {
                return false;
            }
        } else if intent.tunnels.iter().any(|t| t.route_based) {
            let Ok(links) = net::xfrm_interfaces(&names.namespace).await else {
                return false;
            };
            let healthy = intent.tunnels.iter().filter(|t| t.route_based).all(|t| {
                let (name, if_id) = (names::xfrm_if(&t.id), names::xfrm_if_id(&t.id));
                links.iter().any(|l| l.name == name && l.up && l.matches(if_id, NS_PUBLIC_IF))
            });
            if !healthy {
                return false;
            }
        }
        if !intent.ssl_servers.iter().all(|s| self.ssl_server_running(&names, &paths, &s.id)) {
            return false;
        }
        if intent.vpc_router != VpcRouter::Elsewhere && !self.vpc_router_exists(&intent.vpc_id) {
            return false;
        }
        if !self.bird_ready(&names.namespace, &paths, intent).await {
            return false;
        }
        if !firewall::in_place(&names.namespace, &firewall::ruleset(intent, self.backend).1).await {
            return false;
        }
        // A server nobody is attached to admits no password client and reports no sessions. A connection opened
        // just now (first look after a restart) gets a moment to be greeted.
        for s in &intent.ssl_servers {
            let manager = self.manager(gw, &intent.gateway_id, &names, &paths, s);
            if !manager.wait_attached(std::time::Duration::from_secs(2)).await {
                return false;
            }
        }
        true
    }

    /// The tunnels of a gateway that carry traffic now (see [`carrying`]); none when charon does not answer.
    pub(super) async fn carrying_now(&self, paths: &super::GatewayPaths) -> std::collections::BTreeSet<String> {
        carrying(&sa_states(paths).await)
    }

    /// `Driver::observe`.
    pub(super) async fn observe(&self, gateway_id: &str) -> Result<GatewayObservation, DataplaneError> {
        let names = self.names(gateway_id)?;
        let paths = self.paths(&names);
        let gw = self.entry(gateway_id);
        let (intent, applied) = {
            let st = gw.state();
            (st.intent.clone(), st.applied)
        };
        let Some(intent) = intent else {
            return Ok(GatewayObservation::default());
        };
        // An apply in progress means "not ready yet"; never wait for it here.
        let idle = gw.work.try_lock().is_ok();
        let ready = idle && applied == Some(intent.generation) && self.is_ready(&gw, &intent).await;

        let states = sa_states(&paths).await;
        let health: BTreeMap<String, Option<bool>> =
            gw.state().health.iter().map(|(id, probe)| (id.clone(), probe.verdict())).collect();
        let mut bgp = self.bgp_observations(&paths, &intent).await;
        let learned = super::bird::learned_of(&bgp);
        let carrying_now = carrying(&states);
        // What the gateway publishes into its VPC changes without an apply (learned routes, tunnels that stop or
        // start carrying): the router's copy must follow.
        let record_moved = ready
            && self.vpc_net(&intent).is_ok_and(|cidr| !self.router_record_is(&intent, cidr, &learned, &carrying_now));
        let published = crate::vpc::routes(&intent, &learned, &carrying_now);
        let vpc_router = intent.vpc_router.clone();
        let tunnels = intent
            .tunnels
            .iter()
            .map(|t| {
                let state = states.get(&t.id).map(|s| s.0).unwrap_or(TunnelState::IkeSaNotEstablished);
                let health_ok = if t.health_check.as_ref().is_some_and(|h| h.enable) {
                    health.get(&t.id).copied().flatten()
                } else {
                    None
                };
                (t.id.clone(), TunnelObservation { state, health_ok, bgp: bgp.remove(&t.id) })
            })
            .collect();
        let mut ssl_sessions = BTreeMap::new();
        for s in &intent.ssl_servers {
            let manager = self.manager(&gw, &intent.gateway_id, &names, &paths, s);
            let count =
                if manager.is_attached() { manager.sessions().await.map(|l| l.len() as u32).unwrap_or(0) } else { 0 };
            ssl_sessions.insert(s.id.clone(), count);
        }
        let ipsec_server_clients =
            intent.ipsec_server.as_ref().and_then(|s| states.get(&s.id)).map(|s| s.1).unwrap_or(0);
        // Destination routes follow which tunnels carry (kernel IPsec; libipsec has one route-based tunnel).
        let reroute = record_moved
            || (ready && !self.backend.is_libipsec() && !intent.routes.is_empty() && {
                let desired = self.desired_routes(&intent, &carrying_now);
                net::owned_routes(&names.namespace)
                    .await
                    .is_ok_and(|actual| actual.into_iter().collect::<std::collections::BTreeSet<_>>() != desired)
            });
        Ok(GatewayObservation { ready, reroute, tunnels, ssl_sessions, ipsec_server_clients, published, vpc_router })
    }
}

/// Each connection's best SA state (and established IKE SAs) as charon reports them; nothing when it does not answer.
async fn sa_states(paths: &super::GatewayPaths) -> BTreeMap<String, (TunnelState, u32)> {
    let Ok(mut c) = vici(&paths.vici).await else {
        return BTreeMap::new();
    };
    list_sas(&mut c).await.map(|events| tunnel_states(&events)).unwrap_or_default()
}

/// The tunnels that carry traffic: those with an installed CHILD_SA. (Not the health checks' verdicts: a probe
/// follows the routes, so once they moved to the standby it would pass through the standby and bring the failed
/// tunnel back, again and again.)
pub(super) fn carrying(states: &BTreeMap<String, (TunnelState, u32)>) -> std::collections::BTreeSet<String> {
    states
        .iter()
        .filter(|(_, (state, _))| *state == TunnelState::IpsecSaEstablished)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Best state per connection name from the `list-sa` events of a `list-sas` stream.
pub(super) fn tunnel_states(list_sa_events: &[Message]) -> BTreeMap<String, (TunnelState, u32)> {
    let mut out: BTreeMap<String, (TunnelState, u32)> = BTreeMap::new();
    for ev in list_sa_events {
        for (conn, ike) in ev.sections() {
            let state = ike_sa_state(ike);
            let entry = out.entry(conn.to_string()).or_insert((TunnelState::IkeSaNotEstablished, 0));
            if rank(state) > rank(entry.0) {
                entry.0 = state;
            }
            if rank(state) >= rank(TunnelState::IkeSaEstablished) {
                entry.1 += 1;
            }
        }
    }
    out
}

fn rank(s: TunnelState) -> u8 {
    match s {
        TunnelState::IkeSaNotEstablished => 0,
        TunnelState::IpsecSaNotEstablished => 1,
        TunnelState::IkeSaEstablished => 2,
        TunnelState::IpsecSaEstablished => 3,
    }
}

/// Phase 1 done and a CHILD_SA installed: `ipsec_sa_established`; phase 1 done, CHILD_SA in negotiation:
/// `ike_sa_established`; phase 1 done and no CHILD_SA at all (phase 2 failed or was deleted):
/// `ipsec_sa_not_established`; anything short of phase 1: `ike_sa_not_established`.
fn ike_sa_state(ike: &Message) -> TunnelState {
    let established = matches!(ike.get_str("state"), Some("ESTABLISHED" | "REKEYING" | "REKEYED"));
    if !established {
        return TunnelState::IkeSaNotEstablished;
    }
    let children: Vec<&Message> =
        ike.get_section("child-sas").map(|c| c.sections().map(|(_, m)| m).collect()).unwrap_or_default();
    if children.iter().any(|c| matches!(c.get_str("state"), Some("INSTALLED" | "REKEYING" | "REKEYED"))) {
        TunnelState::IpsecSaEstablished
    } else if children.is_empty() {
        TunnelState::IpsecSaNotEstablished
    } else {
        TunnelState::IkeSaEstablished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvgw_vici::Message;

    #[test]
    fn maps_sa_states() {
        let sa = |state: &str, children: Message| {
            Message::new()
                .with_section("vco-test", Message::new().with("state", state).with_section("child-sas", children))
        };
        let installed = Message::new().with_section("vco-test-0-1", Message::new().with("state", "INSTALLED"));
        let installing = Message::new().with_section("vco-test-0-1", Message::new().with("state", "INSTALLING"));
        let cases = [
            (sa("CONNECTING", Message::new()), TunnelState::IkeSaNotEstablished),
            (sa("ESTABLISHED", Message::new()), TunnelState::IpsecSaNotEstablished),
            (sa("ESTABLISHED", installing), TunnelState::IkeSaEstablished),
            (sa("ESTABLISHED", installed.clone()), TunnelState::IpsecSaEstablished),
        ];
        for (ev, want) in cases {
            assert_eq!(tunnel_states(&[ev]).get("vco-test").map(|s| s.0), Some(want));
        }
        // The best of several IKE_SAs for one connection wins.
        let both = [sa("CONNECTING", Message::new()), sa("ESTABLISHED", installed)];
        assert_eq!(tunnel_states(&both).get("vco-test"), Some(&(TunnelState::IpsecSaEstablished, 1)));
    }
}
