//! What the reconciler and the metrics need from the service: consistent snapshots of a gateway's tree, and the
//! few writes that record the data plane's progress. Only the reconciler moves a gateway out of a pending phase.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use openvgw_core::model::{
    AccessPolicy, BgpSession, ClientCa, CustomerGateway, GatewayPhase, GatewayStatus, IpsecServer, RouteEntry,
    RouteOrigin, SslVpnServer, TunnelState, VpnConnection, VpnGateway, VpnUser,
};
use openvgw_core::{now_ms, Error, IdStyle, Kind, Result};
use openvgw_dataplane::{GatewayObservation, TunnelObservation};
use openvgw_store::Tx;

use crate::gateways::find_vpc;
use crate::ssl::crl_of;
use crate::Service;

/// Everything one gateway's data plane is compiled from, read in one snapshot.
#[derive(Debug, Clone)]
pub struct GatewayTree {
    pub gateway: VpnGateway,
    /// The VPC's address block, when openvgw knows it.
    pub vpc_cidr: Option<Ipv4Net>,
    pub connections: Vec<(VpnConnection, CustomerGateway)>,
    /// The customer gateways of dual-tunnel connections' second tunnels, by id.
    pub second_peers: BTreeMap<String, CustomerGateway>,
    pub routes: Vec<RouteEntry>,
    pub ssl_servers: Vec<SslServerTree>,
    pub ipsec_server: Option<IpsecServer>,
}

#[derive(Debug, Clone)]
pub struct SslServerTree {
    pub server: SslVpnServer,
    pub crl_pem: String,
    pub users: Vec<VpnUser>,
    pub policies: Vec<AccessPolicy>,
    pub client_cas: Vec<ClientCa>,
}

/// Stored resources by kind and state, for metrics.
pub type ResourceCounts = BTreeMap<(Kind, ResourceState), u64>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceState {
    Present,
    Gateway(GatewayStatus),
    Tunnel(TunnelState),
}

fn tree(tx: &Tx, service: &Service, gw: VpnGateway) -> Result<GatewayTree> {
    let vpc_cidr = match service.config.vpcs.iter().find(|v| v.id == gw.vpc_id) {
        Some(v) => Some(v.cidr.parse().map_err(Error::internal)?),
        None => find_vpc(tx, &gw.scope, &gw.vpc_id)?.map(|v| v.cidr),
    };
    let mut connections = Vec::new();
    let mut second_peers = BTreeMap::new();
    let peer = |c: &VpnConnection, id: &str| -> Result<CustomerGateway> {
        tx.get(&c.scope, id)?.ok_or_else(|| Error::internal(format!("connection {} lost its customer gateway", c.id)))
    };
    for c in tx.children_unscoped::<VpnConnection>(&gw.id)? {
        if let Some(t) = &c.second_tunnel {
            second_peers.insert(t.customer_gateway_id.clone(), peer(&c, &t.customer_gateway_id)?);
        }
        let cgw = peer(&c, &c.customer_gateway_id)?;
        connections.push((c, cgw));
    }
    let ssl_servers = tx
        .children_unscoped::<SslVpnServer>(&gw.id)?
        .into_iter()
        .map(|server| {
            Ok(SslServerTree {
                crl_pem: crl_of(&server)?,
                users: tx.children_unscoped(&server.id)?,
                policies: tx.children_unscoped(&server.id)?,
                client_cas: tx.children_unscoped(&server.id)?,
                server,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(GatewayTree {
        routes: tx.children_unscoped(&gw.id)?,
        ipsec_server: tx.children_unscoped::<IpsecServer>(&gw.id)?.into_iter().next(),
        vpc_cidr,
        connections,
        second_peers,
        ssl_servers,
        gateway: gw,
    })
}

impl Service {
    /// Every gateway of every tenant.
    pub fn all_gateways(&self) -> Result<Vec<VpnGateway>> {
        self.store.read(|tx| tx.all(&Default::default()))
    }

    /// Every tunnel of every tenant with its stored state: (gateway, tunnel's own id, connection, state).
    pub fn tunnel_states(&self) -> Result<Vec<(String, String, String, TunnelState)>> {
        let connections: Vec<VpnConnection> = self.store.read(|tx| tx.all(&Default::default()))?;
        // Read field by field: `tunnels()` would copy every tunnel's keys and settings on each sample.
        let mut out = Vec::with_capacity(connections.len());
        for c in connections {
            let first = c.tunnel_id.clone().unwrap_or_else(|| c.id.clone());
            out.push((c.gateway_id.clone(), first, c.id.clone(), c.state));
            if let Some(t) = &c.second_tunnel {
                out.push((c.gateway_id.clone(), t.id.clone(), c.id.clone(), t.state));
            }
        }
        Ok(out)
    }

    /// What the data plane sees of a gateway now (the operator's view of its health).
    pub async fn observe_gateway(&self, id: &str) -> Result<GatewayObservation> {
        self.driver.observe(id).await.map_err(|e| Error::internal(format!("data plane: {e}")))
    }

    pub fn gateway_tree(&self, id: &str) -> Result<Option<GatewayTree>> {
        self.store.read(|tx| tx.get_unscoped::<VpnGateway>(id)?.map(|gw| tree(tx, self, gw)).transpose())
    }

    /// `init` -> `provisioning` once the data plane starts on a new gateway.
    pub fn start_provisioning(&self, id: &str) -> Result<()> {
        self.store.write(|tx| {
            if let Some(mut g) = tx.get_unscoped::<VpnGateway>(id)? {
                if g.phase == GatewayPhase::Init {
                    g.phase = GatewayPhase::Provisioning;
                    tx.update(&g)?;
                }
            }
            Ok(())
        })
    }

    /// The data plane realised `generation`: the gateway is ready (unless it is being deleted meanwhile).
    pub fn record_applied(&self, id: &str, generation: u64) -> Result<()> {
        self.store.write(|tx| {
            let Some(mut g) = tx.get_unscoped::<VpnGateway>(id)? else {
                return Ok(());
            };
            if g.phase == GatewayPhase::Deleting {
                return Ok(());
            }
            g.applied_generation = g.applied_generation.max(generation);
            g.phase = GatewayPhase::Ready;
            tx.update(&g)?;
            tx.append_event(id, now_ms(), &format!("generation {generation} applied"))
        })
    }

    pub fn record_event(&self, id: &str, message: &str) -> Result<()> {
        self.store.write(|tx| tx.append_event(id, now_ms(), message))
    }

    /// Removes a gateway whose data plane is gone, with its whole tree and its addresses.
    pub fn finish_delete(&self, id: &str) -> Result<()> {
        self.store.write(|tx| {
            if tx.get_unscoped::<VpnGateway>(id)?.is_some() {
                tx.delete_tree(Kind::VpnGateway, id)?;
            }
            Ok(())
        })
    }

    /// Feeds what the data plane sees back into the store, writing only what changed; returns how many resources
    /// changed.
    pub fn record_observation(&self, gateway_id: &str, obs: &GatewayObservation) -> Result<usize> {
        if self.store.read(|tx| diff(tx, gateway_id, obs))?.is_empty() {
            return Ok(0);
        }
        self.store.write(|tx| {
            let changed = diff(tx, gateway_id, obs)?;
            for c in &changed {
                match c {
                    Changed::Connection(c) => tx.update(c)?,
                    Changed::SslServer(s) => tx.update(s)?,
                    Changed::IpsecServer(s) => tx.update(s)?,
                    Changed::Learned(r) => tx.insert(r)?,
                    Changed::LearnedPath(r) => tx.update(r)?,
                    Changed::Withdrawn(id) => tx.delete(Kind::RouteEntry, id)?,
                }
            }
            Ok(changed.len())
        })
    }

    pub fn resource_counts(&self) -> Result<ResourceCounts> {
        self.store.read(|tx| {
            let mut counts = ResourceCounts::new();
            for (kind, n) in tx.count_by_kind()? {
                if kind != Kind::VpnGateway && kind != Kind::VpnConnection {
                    counts.insert((kind, ResourceState::Present), n);
                }
            }
            for gw in tx.all::<VpnGateway>(&Default::default())? {
                let state = ResourceState::Gateway(gw.status());
                *counts.entry((Kind::VpnGateway, state)).or_default() += 1;
            }
            for c in tx.all::<VpnConnection>(&Default::default())? {
                *counts.entry((Kind::VpnConnection, ResourceState::Tunnel(c.state))).or_default() += 1;
            }
            Ok(counts)
        })
    }
}

enum Changed {
    Connection(VpnConnection),
    SslServer(SslVpnServer),
    IpsecServer(IpsecServer),
    /// A route the gateway learned over BGP, new, with another AS path, or withdrawn (by id).
    Learned(RouteEntry),
    LearnedPath(RouteEntry),
    Withdrawn(String),
}

/// The gateway's system routes follow what its BGP sessions accepted: one route per (connection, prefix), published
/// into the VPC when the gateway propagates automatically. Connections the observation does not cover keep theirs.
fn learned_routes(
    tx: &Tx,
    gateway_id: &str,
    connections: &[VpnConnection],
    obs: &GatewayObservation,
) -> Result<Vec<Changed>> {
    // A dual-tunnel connection's tunnels learn for the connection: its routes name it as their next hop (so they go
    // with it), whichever tunnel learned them.
    let mut wanted: BTreeMap<(String, Ipv4Net), Vec<u32>> = BTreeMap::new();
    for c in connections {
        for (tunnel, _) in c.tunnels() {
            if let Some(bgp) = obs.tunnels.get(&tunnel).and_then(|t| t.bgp.as_ref()) {
                for r in &bgp.learned {
                    wanted.entry((c.id.clone(), r.dest)).or_insert_with(|| r.as_path.clone());
                }
            }
        }
    }
    let mut out = Vec::new();
    for mut r in tx.children_unscoped::<RouteEntry>(gateway_id)? {
        if r.origin != RouteOrigin::System || !obs.tunnels.contains_key(&r.next_hop) {
            continue;
        }
        match wanted.remove(&(r.next_hop.clone(), r.dest)) {
            None => out.push(Changed::Withdrawn(r.id)),
            Some(path) if path != r.as_path => {
                r.as_path = path;
                out.push(Changed::LearnedPath(r));
            }
            Some(_) => {}
        }
    }
    if wanted.is_empty() {
        return Ok(out);
    }
    let Some(gw) = tx.get_unscoped::<VpnGateway>(gateway_id)? else {
        return Ok(out);
    };
    for ((next_hop, dest), as_path) in wanted {
        let Some(c) = connections.iter().find(|c| c.id == next_hop) else { continue };
        out.push(Changed::Learned(RouteEntry {
            id: Kind::RouteEntry.new_id(IdStyle::of(&gw.id)),
            scope: c.scope.clone(),
            gateway_id: gw.id.clone(),
            source: None,
            dest,
            next_hop,
            weight: 100,
            priority: None,
            published: gw.auto_propagate,
            description: String::new(),
            origin: RouteOrigin::System,
            as_path,
            created_at: now_ms(),
        }));
    }
    Ok(out)
}

/// Takes a tunnel's observed state and BGP session; whether either changed.
fn observe(state: &mut TunnelState, session: &mut Option<BgpSession>, t: &TunnelObservation) -> bool {
    let bgp = t.bgp.as_ref().map(|b| (b.state, b.learned.len() as u32));
    let had = session.as_ref().map(|s| (s.state, s.received_routes));
    if *state == t.state && had == bgp {
        return false;
    }
    *state = t.state;
    *session = bgp.map(|(state, received_routes)| BgpSession {
        state,
        // A new count in the same state is not a new state.
        since_ms: session.as_ref().filter(|s| s.state == state).map_or_else(now_ms, |s| s.since_ms),
        received_routes,
    });
    true
}

fn diff(tx: &Tx, gateway_id: &str, obs: &GatewayObservation) -> Result<Vec<Changed>> {
    let mut out = Vec::new();
    let connections = tx.children_unscoped::<VpnConnection>(gateway_id)?;
    out.extend(learned_routes(tx, gateway_id, &connections, obs)?);
    for mut c in connections {
        let mut changed = false;
        if let Some(t) = obs.tunnels.get(&c.id) {
            changed |= observe(&mut c.state, &mut c.bgp_session, t);
            // A dual-tunnel connection's health check is answered over whichever tunnel carries it.
            let second_ok = c.second_tunnel.as_ref().and_then(|s| obs.tunnels.get(&s.id)).and_then(|o| o.health_ok);
            let health_ok = match (t.health_ok, second_ok) {
                (Some(a), Some(b)) => Some(a || b),
                (a, b) => a.or(b),
            };
            if c.health_ok != health_ok {
                c.health_ok = health_ok;
                changed = true;
            }
        }
        if let Some(s) = c.second_tunnel.as_deref_mut() {
            if let Some(t) = obs.tunnels.get(&s.id) {
                changed |= observe(&mut s.state, &mut s.bgp_session, t);
            }
        }
        if changed {
            out.push(Changed::Connection(c));
        }
    }
    for mut s in tx.children_unscoped::<SslVpnServer>(gateway_id)? {
        let n = obs.ssl_sessions.get(&s.id).copied().unwrap_or(0);
        if s.connections != n {
            s.connections = n;
            out.push(Changed::SslServer(s));
        }
    }
    for mut s in tx.children_unscoped::<IpsecServer>(gateway_id)? {
        if s.online_clients != obs.ipsec_server_clients {
            s.online_clients = obs.ipsec_server_clients;
            out.push(Changed::IpsecServer(s));
        }
    }
    Ok(out)
}
