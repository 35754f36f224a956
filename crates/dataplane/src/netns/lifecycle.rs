//! Building a gateway up to its intent (every step checks what is there first) and tearing it down.

use std::collections::BTreeSet;

use super::names::{self, GatewayNames, LIBIPSEC_TUN, NS_PUBLIC_IF, NS_VPC_IF};
use super::sys::{self, failed, DaemonId};
use super::{net, strongswan, Gateway, GatewayPaths, Inner, DAEMON_START_TIMEOUT};
use crate::{DataplaneError, GatewayIntent};

impl Inner {
    /// Brings one gateway to `intent`. Idempotent; every step checks what is there first.
    pub(super) async fn converge(&self, gw: &Gateway, intent: &GatewayIntent) -> Result<(), DataplaneError> {
        let names = self.names(&intent.gateway_id)?;
        let paths = self.paths(&names);
        let ns = names.namespace.as_str();
        sys::create_private_dir(&paths.dir)?;
        sys::create_private_dir(&paths.charon_dir)?;
        sys::create_private_dir(&paths.ssl_dir)?;
        let json = serde_json::to_vec_pretty(intent).map_err(|e| failed(format!("serialising intent: {e}")))?;
        sys::write_if_changed(&paths.intent, &json, 0o600)?;

        // Layer 2: bridges, namespace, veths, addresses.
        net::ensure_bridge(&self.public_bridge).await?;
        let vpc_bridge = self.vpc_bridge(&intent.vpc_id);
        if net::ensure_bridge(&vpc_bridge).await? {
            tracing::info!(bridge = %vpc_bridge, vpc = %intent.vpc_id, "created VPC bridge");
        }
        if !sys::netns_exists(ns) {
            // Daemons we knew of (if any) live on in a namespace nobody can reach: stop them first.
            self.stop_daemons(&names, &paths).await;
        }
        if net::ensure_namespace(ns).await? {
            tracing::info!(gateway = %intent.gateway_id, namespace = ns, "created gateway namespace");
        }
        // The packet filter before any interface: nothing crosses the gateway unfiltered, not even while it is built.
        self.sync_firewall(ns, &paths, intent).await?;
        // Named after the gateway, not the namespace: the same on any host, so when the gateway moves to another
        // host its addresses move with their MAC (as a floating IP does) and nobody's ARP cache goes stale.
        let gw_id = intent.gateway_id.as_str();
        let (public_mac, vpc_mac) = (names::stable_mac(gw_id, NS_PUBLIC_IF), names::stable_mac(gw_id, NS_VPC_IF));
        net::ensure_veth(ns, &names.public_veth, NS_PUBLIC_IF, &self.public_bridge, &public_mac).await?;
        net::ensure_veth(ns, &names.vpc_veth, NS_VPC_IF, &vpc_bridge, &vpc_mac).await?;
        // Every public address (two for an HA pair) on pub0; each tunnel binds to its own.
        let public: BTreeSet<String> =
            intent.public_ips.iter().map(|ip| format!("{ip}/{}", self.public_net.prefix_len())).collect();
        net::ensure_addresses(ns, NS_PUBLIC_IF, &public).await?;
        let vpc_net = self.vpc_net(intent)?;
        net::ensure_addresses(ns, NS_VPC_IF, &[format!("{}/{}", intent.private_ip, vpc_net.prefix_len())].into())
            .await?;
        // Health-check sources are idle VPC addresses: the gateway owns them on lo so that probe replies come back
        // to it.
        let probe_sources: BTreeSet<String> = intent
            .tunnels
            .iter()
            .filter_map(|t| t.health_check.as_ref().filter(|h| h.enable).and_then(|h| h.sip))
            .filter(|sip| *sip != intent.private_ip && !intent.public_ips.contains(sip))
            .map(|sip| format!("{sip}/32"))
            .collect();
        net::ensure_addresses(ns, "lo", &probe_sources).await?;

        // charon and its tunnel devices.
        let charon_pid = self.ensure_charon(ns, &paths).await?;
        self.listen(gw, &intent.gateway_id, &paths, charon_pid);
        if self.backend.is_libipsec() {
            let tun_up = sys::wait_until(DAEMON_START_TIMEOUT, || sys::link_exists(Some(ns), LIBIPSEC_TUN)).await;
            if !tun_up {
                return Err(failed(format!("charon in {ns} did not create {LIBIPSEC_TUN}")));
            }
            // charon brings it up once; it may have been set down since (its routes went with it).
            sys::ip_ns(ns, &["link", "set", "dev", LIBIPSEC_TUN, "up"]).await?;
            net::delete_rules_at(ns, strongswan::LIBIPSEC_UNUSED_TABLE).await?;
        } else {
            self.sync_xfrm_interfaces(ns, intent).await?;
        }
        self.sync_connections(&paths, charon_pid, intent).await?;

        // Routing into the tunnels.
        let carrying = self.carrying_now(&paths).await;
        net::sync_routes(ns, &self.desired_routes(intent, &carrying)).await?;
        net::sync_rules(ns, &self.desired_rules(intent)).await?;
        // BGP over the tunnels, once their devices exist.
        self.sync_bird(ns, &paths, intent).await?;
        // The VPC's router learns what this gateway publishes (with what BGP learned, when it propagates that), and
        // which of its tunnels carry now.
        let learned = self.learned_prefixes(&paths, intent).await;
        let carrying = self.carrying_now(&paths).await;
        self.sync_vpc_router(intent, vpc_net, &learned, &carrying).await?;

        // SSL-VPN servers (their access rules are in place already, so no client of a new or changed server is ever
        // unfiltered) and health checks.
        self.sync_openvpn(gw, ns, &names, &paths, intent).await?;
        self.sync_health(gw, ns, intent);
        Ok(())
    }

    /// Stops every daemon recorded for the gateway, and anything else still running in its namespace.
    async fn stop_daemons(&self, names: &GatewayNames, paths: &GatewayPaths) {
        self.stop_openvpn_servers(names, paths).await;
        self.stop_bird(paths).await;
        let marker = paths.charon_conf.to_string_lossy().into_owned();
        DaemonId { pid_file: &paths.charon_pid, marker: &marker }.stop().await;
        let _ = std::fs::remove_file(&paths.vici);
        let _ = std::fs::remove_file(&paths.loaded);
        if sys::netns_exists(&names.namespace) {
            for pid in sys::netns_pids(&names.namespace).await {
                sys::stop_pid(pid).await;
            }
        }
    }

    /// `Driver::remove`: daemons, namespace, veths, an auto-created VPC bridge nobody uses any more, files.
    pub(super) async fn remove_gateway(&self, gateway_id: &str) -> Result<(), DataplaneError> {
        let Ok(names) = self.names(gateway_id) else {
            // Not a name this driver could have created anything under.
            return Ok(());
        };
        let paths = self.paths(&names);
        let gw = self.entry(gateway_id);
        let _work = gw.work.lock().await;
        {
            let mut st = gw.state();
            st.intent = None;
            st.applied = None;
            st.health.clear();
            st.managers.clear();
        }
        self.stop_daemons(&names, &paths).await;
        self.leave_vpc_router(gateway_id).await?;
        let vpc_bridge = net::master_of(&names.vpc_veth).await;
        if sys::netns_exists(&names.namespace) {
            sys::ip(&["netns", "del", &names.namespace]).await?;
        }
        // Deleting the namespace deletes the veth pairs; a root end left from an interrupted apply goes here.
        // The kernel tears the pairs down asynchronously after the namespace goes, so a failed delete only counts
        // if the link is still there afterwards.
        for veth in [&names.public_veth, &names.vpc_veth] {
            if sys::link_exists(None, veth).await {
                if let Err(e) = sys::ip(&["link", "del", "dev", veth]).await {
                    if sys::link_exists(None, veth).await {
                        return Err(e);
                    }
                }
            }
        }
        if let Some(bridge) = vpc_bridge.filter(|b| b.starts_with(names::AUTO_VPC_BRIDGE_PREFIX)) {
            net::delete_bridge_if_unused(&bridge).await?;
        }
        if paths.dir.exists() {
            std::fs::remove_dir_all(&paths.dir)
                .map_err(|e| failed(format!("removing {}: {e}", paths.dir.display())))?;
        }
        for entry in std::fs::read_dir(&self.run_dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&names.token) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        self.gateways.lock().unwrap_or_else(|p| p.into_inner()).remove(gateway_id);
        tracing::info!(gateway = gateway_id, namespace = %names.namespace, "removed gateway data plane");
        Ok(())
    }
}
