//! IPsec connections between a VPN gateway and a customer gateway.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::crypto::{
    DhGroup, Dpd, Encryption, IdentityType, IkeConfig, IkeVersion, Integrity, IpsecConfig, NegotiationMode,
};
use openvgw_core::ids::random_psk;
use openvgw_core::model::{
    BgpConfig, ConnectionMode, CryptoSuite, CustomerGateway, Extensions, HaRole, HealthCheck, Index, PeerIdentity,
    PolicyRule, Scope, Tag, TunnelInside, TunnelState, VpnConnection, VpnGateway,
};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Page, PageRequest, Quota, Result, Rule, Secret};
use openvgw_store::{ListQuery, TagFilter, Tx};

use crate::{bump, changes_more_than, gateway_for_change, quota, Ctx, Service};

/// Log lines and SA traffic of a connection come straight from the data plane.
impl Service {
    fn connection_of(&self, scope: &Scope, id: &str) -> Result<VpnConnection> {
        self.read(|tx| tx.require(scope, id))
    }

    /// The connection's log lines in `[from_s, to_s]` (unix seconds), oldest first.
    pub async fn connection_logs(&self, scope: &Scope, id: &str, from_s: i64, to_s: i64) -> Result<Vec<String>> {
        let c = self.connection_of(scope, id)?;
        self.driver
            .tunnel_logs(&c.gateway_id, &c.id, from_s, to_s)
            .await
            .map_err(|e| Error::internal(format!("data plane: {e}")))
    }

    /// The connection's negotiated SAs with their traffic.
    pub async fn connection_sas(&self, scope: &Scope, id: &str) -> Result<Vec<openvgw_dataplane::SaStats>> {
        let c = self.connection_of(scope, id)?;
        self.driver.tunnel_sas(&c.gateway_id, &c.id).await.map_err(|e| Error::internal(format!("data plane: {e}")))
    }

    /// Tears the connection's SAs down and negotiates afresh.
    pub async fn reset_connection(&self, scope: &Scope, id: &str) -> Result<()> {
        let c = self.connection_of(scope, id)?;
        self.driver.reset(&c.gateway_id, &c.id).await.map_err(|e| Error::internal(format!("data plane: {e}")))
    }
}

/// Phase-1 fields a request may set; unset ones keep their value.
#[derive(Debug, Clone, Default)]
pub struct IkePatch {
    pub version: Option<IkeVersion>,
    pub mode: Option<NegotiationMode>,
    pub encryption: Option<Encryption>,
    pub integrity: Option<Integrity>,
    pub dh_group: Option<DhGroup>,
    pub lifetime_s: Option<u32>,
    pub local_id: Option<(IdentityType, String)>,
    pub remote_id: Option<(IdentityType, String)>,
    pub dpd: Option<Dpd>,
}

impl IkePatch {
    pub fn apply(&self, base: &mut IkeConfig) -> Result<()> {
        if let Some(v) = self.version {
            base.version = v;
        }
        if let Some(v) = self.mode {
            base.mode = v;
        }
        if let Some(v) = self.encryption {
            base.encryption = v;
        }
        if let Some(v) = self.integrity {
            base.integrity = v;
        }
        if let Some(v) = self.dh_group {
            base.dh_group = v;
        }
        if let Some(v) = self.lifetime_s {
            base.lifetime_s = v;
        }
        if let Some((t, v)) = &self.local_id {
            validate::ike_identity(v, Field::LocalId)?;
            (base.local_id_type, base.local_id) = (*t, v.clone());
        }
        if let Some((t, v)) = &self.remote_id {
            validate::ike_identity(v, Field::RemoteId)?;
            (base.remote_id_type, base.remote_id) = (*t, v.clone());
        }
        if let Some(d) = &self.dpd {
            base.dpd = d.clone();
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct IpsecPatch {
    pub encryption: Option<Encryption>,
    pub integrity: Option<Integrity>,
    /// `Some(None)`: turn PFS off.
    pub pfs: Option<Option<DhGroup>>,
    pub lifetime_s: Option<u32>,
}

impl IpsecPatch {
    pub fn apply(&self, base: &mut IpsecConfig) {
        if let Some(v) = self.encryption {
            base.encryption = v;
        }
        if let Some(v) = self.integrity {
            base.integrity = v;
        }
        if let Some(v) = self.pfs {
            base.pfs = v;
        }
        if let Some(v) = self.lifetime_s {
            base.lifetime_s = v;
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct HealthCheckPatch {
    pub enable: Option<bool>,
    pub dip: Option<Ipv4Addr>,
    pub sip: Option<Ipv4Addr>,
    pub interval_s: Option<u32>,
    pub retry: Option<u32>,
}

impl HealthCheckPatch {
    pub fn apply(&self, base: &mut HealthCheck) {
        if let Some(v) = self.enable {
            base.enable = v;
        }
        if let Some(v) = self.dip {
            base.dip = Some(v);
        }
        if let Some(v) = self.sip {
            base.sip = Some(v);
        }
        if let Some(v) = self.interval_s {
            base.interval_s = v;
        }
        if let Some(v) = self.retry {
            base.retry = v;
        }
    }
}

/// BGP and the tunnel's inside addresses.
#[derive(Debug, Clone, Default)]
pub struct BgpPatch {
    pub enable: Option<bool>,
    pub local_asn: Option<u64>,
    pub tunnel_cidr: Option<Ipv4Net>,
    pub local_ip: Option<Ipv4Addr>,
    /// The peer's end, when the API names it (it must be the other host of the /30).
    pub peer_ip: Option<Ipv4Addr>,
}

/// Which of a gateway's public addresses a connection terminates on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicIpRef {
    Index(u8),
    /// The address's own id (an EIP id).
    Id(String),
}

/// A new connection. Algorithms come complete with the dialect's defaults applied; empty IKE identities default to
/// the gateway's and the peer's addresses.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub gateway_id: String,
    pub customer_gateway_id: String,
    pub name: Option<String>,
    pub description: String,
    pub public_ip: PublicIpRef,
    pub mode: ConnectionMode,
    /// Empty: the gateway's local subnets (or its VPC's block).
    pub local_subnets: Vec<Ipv4Net>,
    pub remote_subnets: Vec<Ipv4Net>,
    pub policy_rules: Vec<PolicyRule>,
    pub bgp: BgpPatch,
    /// Number the tunnel's ends from a free /30 of 169.254.0.0/16 when `bgp` names none.
    pub allocate_inside: bool,
    pub psk: Option<Secret>,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub health_check: HealthCheck,
    pub initiate: bool,
    pub dpd: bool,
    pub nat_traversal: bool,
    pub auto_route: bool,
    pub ha_role: Option<HaRole>,
    pub remote_ca_certificate: String,
    pub tags: Vec<Tag>,
    pub ext: Extensions,
}

#[derive(Clone, Default)]
pub struct ConnectionChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub local_subnets: Option<Vec<Ipv4Net>>,
    pub remote_subnets: Option<Vec<Ipv4Net>>,
    pub policy_rules: Option<Vec<PolicyRule>>,
    /// `Some(true)` also re-applies an otherwise unchanged tunnel (renegotiate now).
    pub initiate: Option<bool>,
    pub ike: IkePatch,
    pub psk: Option<Secret>,
    pub ipsec: IpsecPatch,
    pub health_check: HealthCheckPatch,
    pub auto_route: Option<bool>,
    pub dpd: Option<bool>,
    pub nat_traversal: Option<bool>,
    pub bgp: BgpPatch,
    pub remote_ca_certificate: Option<String>,
    /// Moves the connection to another customer gateway.
    pub customer_gateway_id: Option<String>,
    /// The dialect's own attributes (no reconfiguration unless something else changes too).
    pub ext: Option<crate::ExtUpdate>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub gateway_id: Option<String>,
    pub customer_gateway_id: Option<String>,
    pub connection_id: Option<String>,
    pub tags: Vec<TagFilter>,
}

/// A connection as the APIs show it: with its tags and the customer gateway (peer ASN, BGP key).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConnectionView {
    pub connection: VpnConnection,
    pub customer_gateway: CustomerGateway,
    pub tags: Vec<Tag>,
}

fn view(tx: &Tx, connection: VpnConnection) -> Result<ConnectionView> {
    let customer_gateway = tx.require(&connection.scope, &connection.customer_gateway_id)?;
    Ok(ConnectionView { tags: tx.tags_of(&connection.id)?, customer_gateway, connection })
}

/// The gateway's BGP flag follows its connections: on while any of them runs BGP.
fn sync_gateway_bgp(tx: &Tx, gw: &mut VpnGateway) -> Result<()> {
    let conns: Vec<VpnConnection> = tx.children_unscoped(&gw.id)?;
    gw.enable_bgp = conns.iter().any(|c| c.bgp.enable);
    Ok(())
}

/// What the customer side needs to configure its end.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub connection: VpnConnection,
    /// The VPN gateway's address this connection terminates on.
    pub local: Ipv4Addr,
    /// The customer gateway's identity (its address, when it has one).
    pub remote: PeerIdentity,
    pub remote_asn: Option<u64>,
}

/// BGP needs a /30 inside 169.254.0.0/16 and this end's address in it.
fn apply_bgp(bgp: &mut BgpConfig, inside: &mut Option<TunnelInside>, p: &BgpPatch) -> Result<()> {
    if let Some(v) = p.enable {
        bgp.enable = v;
    }
    if let Some(v) = p.local_asn {
        bgp.local_asn = v;
    }
    if let Some(cidr) = p.tunnel_cidr {
        let local = inside.as_ref().and_then(|i| i.local);
        *inside = Some(TunnelInside { cidr, local });
    }
    if let Some(ip) = p.local_ip {
        match inside {
            Some(i) => i.local = Some(ip),
            None => return Err(Error::invalid(Field::TunnelCidr, Rule::Required)),
        }
    }
    if let (Some(peer), Some(i)) = (p.peer_ip, inside.as_ref()) {
        if Some(peer) != i.peer() {
            return Err(Error::invalid(Field::TunnelCidr, Rule::NotInside(i.cidr.to_string())));
        }
    }
    match inside {
        Some(i) => {
            let link_local: Ipv4Net = Ipv4Net::new(Ipv4Addr::new(169, 254, 0, 0), 16).map_err(Error::internal)?;
            if i.cidr.prefix_len() != 30 {
                return Err(Error::invalid(Field::TunnelCidr, Rule::PrefixLength { min: 30, max: 30 }));
            }
            if !link_local.contains(&i.cidr) {
                return Err(Error::invalid(Field::TunnelCidr, Rule::NotInside(link_local.to_string())));
            }
            match i.local {
                Some(ip) if !i.cidr.hosts().any(|h| h == ip) => {
                    Err(Error::invalid(Field::TunnelLocalAddress, Rule::NotInside(i.cidr.to_string())))
                }
                None if bgp.enable => Err(Error::invalid(Field::TunnelLocalAddress, Rule::Required)),
                _ => Ok(()),
            }
        }
        None if bgp.enable => Err(Error::invalid(Field::TunnelCidr, Rule::Required)),
        None => Ok(()),
    }
}

fn check_health(h: &HealthCheck) -> Result<()> {
    if h.enable && (h.dip.is_none() || h.sip.is_none()) {
        return Err(Error::invalid(Field::HealthCheck, Rule::Required));
    }
    Ok(())
}

/// National-standard gateways authenticate peers by certificate: they need the peer's CA, others must not get one.
fn check_remote_ca(gw: &VpnGateway, cert: &str) -> Result<()> {
    match (gw.crypto_suite, cert.is_empty()) {
        (CryptoSuite::NationalStandard, true) => Err(Error::invalid(Field::RemoteCaCertificate, Rule::Required)),
        (CryptoSuite::Standard, false) => Err(Error::invalid(Field::RemoteCaCertificate, Rule::NotApplicable)),
        _ => Ok(()),
    }
}

fn check_psk(psk: &Secret) -> Result<()> {
    validate::psk(psk.expose(), 128)
}

/// A /30 of 169.254.0.0/16 no other connection of the gateway numbers its tunnel from (169.254.195.0/24 is
/// reserved by the vendors).
fn free_inside(siblings: &[VpnConnection]) -> Result<TunnelInside> {
    let used: Vec<Ipv4Net> = siblings.iter().filter_map(|c| c.inside.as_ref().map(|i| i.cidr)).collect();
    let space = Ipv4Net::new(Ipv4Addr::new(169, 254, 0, 0), 16).map_err(Error::internal)?;
    let reserved = Ipv4Net::new(Ipv4Addr::new(169, 254, 195, 0), 24).map_err(Error::internal)?;
    space
        .subnets(30)
        .map_err(Error::internal)?
        // The first /24 is commonly used by hand; start above it.
        .skip(64)
        .find(|n| !used.contains(n) && !reserved.contains(n))
        .map(|cidr| TunnelInside { local: cidr.hosts().next(), cidr })
        .ok_or(Error::PoolExhausted(openvgw_core::Pool::VpcAddresses))
}

/// The role of a connection on an HA gateway follows the address it uses: on active-standby gateways the first
/// address carries the master, the second the slave; on other gateways every connection is a master.
fn check_ha_role(gw: &VpnGateway, index: u8, role: Option<HaRole>) -> Result<HaRole> {
    let expected = match (gw.ha_mode, index) {
        (openvgw_core::model::HaMode::ActiveStandby, 1) => HaRole::Slave,
        _ => HaRole::Master,
    };
    match role {
        Some(r) if gw.ha_mode == openvgw_core::model::HaMode::ActiveStandby && r != expected => {
            Err(Error::invalid(Field::HaMode, Rule::Conflicts("the gateway address the connection uses")))
        }
        _ => Ok(expected),
    }
}

fn resolve_public_ip(gw: &VpnGateway, r: &PublicIpRef) -> Result<u8> {
    let index = match r {
        PublicIpRef::Index(i) => Some(*i),
        PublicIpRef::Id(id) => gw.public_ips.iter().position(|p| p.id == *id).and_then(|i| u8::try_from(i).ok()),
    };
    index
        .filter(|i| usize::from(*i) < gw.public_ips.len())
        .ok_or(Error::invalid(Field::GatewayAddress, Rule::NotApplicable))
}

fn identity_default(id: &PeerIdentity) -> (IdentityType, String) {
    match id {
        PeerIdentity::Ip(a) => (IdentityType::Ip, a.to_string()),
        PeerIdentity::Fqdn(n) => (IdentityType::Fqdn, n.clone()),
    }
}

impl Service {
    pub fn create_connection(&self, ctx: &Ctx, input: NewConnection) -> Result<VpnConnection> {
        let mut created = self.create_connections(ctx, vec![input])?;
        created.pop().ok_or_else(|| Error::internal("no connection created"))
    }

    /// Creates several connections of one gateway in one transaction: all of them, or none.
    pub fn create_connections(&self, ctx: &Ctx, inputs: Vec<NewConnection>) -> Result<Vec<VpnConnection>> {
        let mut checked = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Some(psk) = &input.psk {
                check_psk(psk)?;
            }
            check_health(&input.health_check)?;
            let mut bgp = BgpConfig { enable: false, local_asn: 0 };
            let mut inside = None;
            apply_bgp(&mut bgp, &mut inside, &input.bgp)?;
            checked.push((input, bgp, inside));
        }
        self.mutate(ctx, |tx| {
            let mut out = Vec::with_capacity(checked.len());
            for (input, bgp, inside) in &checked {
                out.push(self.insert_connection(tx, ctx, input, bgp.clone(), inside.clone())?);
            }
            Ok(out)
        })
    }

    fn insert_connection(
        &self,
        tx: &Tx,
        ctx: &Ctx,
        input: &NewConnection,
        bgp: BgpConfig,
        mut inside: Option<TunnelInside>,
    ) -> Result<VpnConnection> {
        let scope = &ctx.scope;
        let gw = gateway_for_change(tx, ctx, &input.gateway_id)?;
        let cgw: CustomerGateway = tx.require(scope, &input.customer_gateway_id)?;
        let index = resolve_public_ip(&gw, &input.public_ip)?;
        let local_ip = Self::check_public_ip_index(&gw, index)?;
        let ha_role = check_ha_role(&gw, index, input.ha_role)?;
        let siblings_q = ListQuery::children_of(scope, &gw.id);
        let siblings: Vec<VpnConnection> = tx.all(&siblings_q)?;
        quota(siblings.len() as u64, self.config.quotas.connections_per_gateway, Quota::Connections)?;
        quota(
            tx.count::<VpnConnection>(&ListQuery::in_scope(scope))?,
            self.config.quotas.connections_per_region,
            Quota::RegionConnections,
        )?;
        // One connection per (gateway address, customer gateway).
        if siblings.iter().any(|c| c.customer_gateway_id == cgw.id && c.public_ip_index == index) {
            return Err(Error::AlreadyExists { kind: Kind::VpnConnection, what: format!("{} to {}", gw.id, cgw.id) });
        }
        check_remote_ca(&gw, &input.remote_ca_certificate)?;
        if inside.is_none() && input.allocate_inside {
            inside = Some(free_inside(&siblings)?);
        }
        let mut ike = input.ike.clone();
        if ike.local_id.is_empty() {
            (ike.local_id_type, ike.local_id) = (IdentityType::Ip, local_ip.to_string());
        }
        if ike.remote_id.is_empty() {
            (ike.remote_id_type, ike.remote_id) = identity_default(&cgw.identity);
        }
        let local_subnets = if input.local_subnets.is_empty() {
            if gw.local_subnets.is_empty() {
                vec![self.vpc_cidr(tx, scope, &gw.vpc_id)?]
            } else {
                gw.local_subnets.clone()
            }
        } else {
            input.local_subnets.clone()
        };
        let id = ctx.new_id(Kind::VpnConnection);
        let now = now_ms();
        let conn = VpnConnection {
            name: input.name.clone().unwrap_or_else(|| id.clone()),
            id,
            scope: scope.clone(),
            gateway_id: gw.id.clone(),
            customer_gateway_id: cgw.id.clone(),
            description: input.description.clone(),
            public_ip_index: index,
            mode: if bgp.enable { ConnectionMode::Bgp } else { input.mode },
            local_subnets,
            remote_subnets: input.remote_subnets.clone(),
            policy_rules: input.policy_rules.clone(),
            inside,
            bgp,
            psk: input.psk.clone().unwrap_or_else(|| Secret::new(random_psk(16))),
            ike,
            ipsec: input.ipsec.clone(),
            health_check: input.health_check.clone(),
            initiate: input.initiate,
            dpd: input.dpd,
            nat_traversal: input.nat_traversal,
            auto_route: input.auto_route,
            ha_role: Some(ha_role),
            remote_ca_certificate: input.remote_ca_certificate.clone(),
            created_at: now,
            updated_at: now,
            state: TunnelState::IkeSaNotEstablished,
            health_ok: None,
            bgp_session: None,
            ext: input.ext.clone(),
        };
        tx.insert(&conn)?;
        self.put_tags(tx, scope, Kind::VpnConnection, &conn.id, &input.tags)?;
        let mut gw = gw;
        sync_gateway_bgp(tx, &mut gw)?;
        bump(tx, gw)?;
        Ok(conn)
    }

    /// Applies the changes and returns the connection as it now reads (from the same transaction). A change of
    /// name or description alone neither waits for the gateway nor reconfigures it.
    pub fn modify_connection(&self, ctx: &Ctx, id: &str, ch: ConnectionChanges) -> Result<ConnectionView> {
        if let Some(psk) = &ch.psk {
            check_psk(psk)?;
        }
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let before: VpnConnection = tx.require(scope, id)?;
            let mut conn = before.clone();
            if let Some(n) = &ch.name {
                conn.name = n.clone();
            }
            if let Some(d) = &ch.description {
                conn.description = d.clone();
            }
            if let Some(l) = &ch.local_subnets {
                conn.local_subnets = l.clone();
            }
            if let Some(r) = &ch.remote_subnets {
                conn.remote_subnets = r.clone();
            }
            if let Some(p) = &ch.policy_rules {
                conn.policy_rules = p.clone();
            }
            if let Some(v) = ch.initiate {
                conn.initiate = v;
            }
            ch.ike.apply(&mut conn.ike)?;
            if let Some(psk) = &ch.psk {
                conn.psk = psk.clone();
            }
            ch.ipsec.apply(&mut conn.ipsec);
            ch.health_check.apply(&mut conn.health_check);
            check_health(&conn.health_check)?;
            apply_bgp(&mut conn.bgp, &mut conn.inside, &ch.bgp)?;
            if conn.bgp.enable {
                conn.mode = ConnectionMode::Bgp;
            } else if before.mode == ConnectionMode::Bgp {
                conn.mode = ConnectionMode::Policy;
            }
            if let Some(v) = ch.auto_route {
                conn.auto_route = v;
            }
            if let Some(v) = ch.dpd {
                conn.dpd = v;
            }
            if let Some(v) = ch.nat_traversal {
                conn.nat_traversal = v;
            }
            if let Some(v) = &ch.remote_ca_certificate {
                conn.remote_ca_certificate = v.clone();
            }
            if let Some(c) = &ch.customer_gateway_id {
                let cgw: CustomerGateway = tx.require(scope, c)?;
                if cgw.id != before.customer_gateway_id {
                    // Identities that defaulted to the old peer's address follow the new peer.
                    if conn.ike.remote_id_type == IdentityType::Ip && before.customer_gateway_id != cgw.id {
                        let old: Option<CustomerGateway> = tx.get(scope, &before.customer_gateway_id)?;
                        if old.is_some_and(|o| identity_default(&o.identity).1 == conn.ike.remote_id) {
                            (conn.ike.remote_id_type, conn.ike.remote_id) = identity_default(&cgw.identity);
                        }
                    }
                    conn.customer_gateway_id = cgw.id;
                }
            }
            if let Some(update) = &ch.ext {
                update(&mut conn.ext)?;
            }
            let tunnel_changed = changes_more_than(&before, &conn, |probe, after| {
                probe.name = after.name.clone();
                probe.description = after.description.clone();
                probe.ext = after.ext.clone();
            })? || ch.initiate == Some(true);
            if tunnel_changed {
                let mut gw = gateway_for_change(tx, ctx, &conn.gateway_id)?;
                check_remote_ca(&gw, &conn.remote_ca_certificate)?;
                conn.updated_at = now_ms();
                tx.update(&conn)?;
                sync_gateway_bgp(tx, &mut gw)?;
                bump(tx, gw)?;
            } else if conn.name != before.name || conn.description != before.description || conn.ext != before.ext {
                conn.updated_at = now_ms();
                tx.update(&conn)?;
            }
            view(tx, conn)
        })
    }

    pub fn get_connection(&self, scope: &Scope, id: &str) -> Result<ConnectionView> {
        self.read(|tx| view(tx, tx.require(scope, id)?))
    }

    pub fn list_connections(
        &self,
        scope: &Scope,
        f: &ConnectionFilter,
        page: &PageRequest,
    ) -> Result<Page<ConnectionView>> {
        self.read(|tx| {
            let mut q = ListQuery {
                scope: Some(scope),
                parent_id: f.gateway_id.as_deref(),
                id: f.connection_id.as_deref(),
                tags: f.tags.clone(),
                ..Default::default()
            };
            if let Some(c) = &f.customer_gateway_id {
                q.keys.push((Index::CustomerGateway, c.clone()));
            }
            tx.list::<VpnConnection>(&q, page)?.try_map(|c| view(tx, c))
        })
    }

    pub fn peer_config(&self, scope: &Scope, id: &str) -> Result<PeerConfig> {
        self.read(|tx| peer_config(tx, scope, id))
    }

    /// Deletes a connection together with the routes that point at it.
    pub fn delete_connection(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let conn: VpnConnection = tx.require(&ctx.scope, id)?;
            let mut gw = gateway_for_change(tx, ctx, &conn.gateway_id)?;
            tx.delete_tree(Kind::VpnConnection, id)?;
            sync_gateway_bgp(tx, &mut gw)?;
            bump(tx, gw)?;
            Ok(())
        })
    }
}

/// The daemon a customer side is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFormat {
    /// One `swanctl.conf`.
    Strongswan,
    /// `ipsec.conf` and `ipsec.secrets`.
    Libreswan,
}

/// One rendered file of a customer side's configuration.
#[derive(Debug, Clone)]
pub struct PeerFile {
    pub name: &'static str,
    pub text: String,
    /// Holds the pre-shared key (to be written readable by its owner only).
    pub secret: bool,
}

impl PeerConfig {
    /// The customer side's configuration files: its addresses and networks are the connection's, mirrored.
    /// `force_udp_encap` wraps ESP in UDP (for gateways running userspace ESP).
    pub fn render(
        &self,
        format: PeerFormat,
        force_udp_encap: bool,
    ) -> std::result::Result<Vec<PeerFile>, openvgw_dataplane::DataplaneError> {
        use openvgw_dataplane::peer;
        let c = &self.connection;
        let own_address = self.remote.address().map(|a| a.to_string()).unwrap_or_else(|| "%any".to_string());
        let gateway_address = self.local.to_string();
        let nets = |n: &[Ipv4Net]| n.iter().map(ToString::to_string).collect::<Vec<_>>();
        let side = peer::PeerSide {
            name: &c.id,
            local_address: &own_address,
            remote_address: &gateway_address,
            local_id: &c.ike.remote_id,
            remote_id: &c.ike.local_id,
            local_subnets: nets(&c.remote_subnets),
            remote_subnets: nets(&c.local_subnets),
            psk: c.psk.expose(),
            ike: &c.ike,
            ipsec: &c.ipsec,
            dpd: c.dpd,
            initiate: true,
            force_udp_encap,
            bgp: c.inside.as_ref().filter(|_| c.bgp.enable).and_then(|i| {
                Some(peer::PeerBgp {
                    tunnel_address: format!("{}/{}", i.peer()?, i.cidr.prefix_len()),
                    neighbor: i.local?.to_string(),
                    neighbor_asn: c.bgp.local_asn,
                    asn: self.remote_asn,
                })
            }),
        };
        Ok(match format {
            PeerFormat::Strongswan => {
                vec![PeerFile { name: "swanctl.conf", text: peer::strongswan(&side)?, secret: true }]
            }
            PeerFormat::Libreswan => {
                let l = peer::libreswan(&side)?;
                vec![
                    PeerFile { name: "ipsec.conf", text: l.ipsec_conf, secret: false },
                    PeerFile { name: "ipsec.secrets", text: l.ipsec_secrets, secret: true },
                ]
            }
        })
    }
}

/// The connection as the customer side sees it (also used by `openvgw peer-config`).
pub fn peer_config(tx: &Tx, scope: &Scope, id: &str) -> Result<PeerConfig> {
    let connection: VpnConnection = tx.require(scope, id)?;
    let gw: VpnGateway = tx.require(scope, &connection.gateway_id)?;
    let cgw: CustomerGateway = tx.require(scope, &connection.customer_gateway_id)?;
    let local = Service::check_public_ip_index(&gw, connection.public_ip_index)?;
    Ok(PeerConfig { local, remote: cgw.identity, remote_asn: cgw.asn, connection })
}

/// The connection with the given id, whatever its tenant (operator commands such as `openvgw peer-config`).
pub fn peer_config_unscoped(tx: &Tx, id: &str) -> Result<PeerConfig> {
    let conn: VpnConnection = tx.get_unscoped(id)?.ok_or_else(|| Error::not_found(Kind::VpnConnection, id))?;
    peer_config(tx, &conn.scope, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("net")
    }

    #[test]
    fn bgp_rules() {
        let (mut b, mut inside) = (BgpConfig::default(), None);
        assert!(apply_bgp(&mut b, &mut inside, &BgpPatch::default()).is_ok(), "disabled and empty is fine");
        let ok = BgpPatch {
            enable: Some(true),
            tunnel_cidr: Some(net("169.254.11.0/30")),
            local_ip: Some(Ipv4Addr::new(169, 254, 11, 1)),
            ..Default::default()
        };
        let (mut b2, mut i2) = (b.clone(), None);
        assert!(apply_bgp(&mut b2, &mut i2, &ok).is_ok());
        assert_eq!(i2.as_ref().and_then(TunnelInside::peer), Some(Ipv4Addr::new(169, 254, 11, 2)));
        let wide = BgpPatch { tunnel_cidr: Some(net("169.254.11.0/29")), ..ok.clone() };
        assert!(apply_bgp(&mut b.clone(), &mut None, &wide).is_err());
        let outside = BgpPatch { local_ip: Some(Ipv4Addr::new(169, 254, 12, 1)), ..ok.clone() };
        assert!(apply_bgp(&mut b.clone(), &mut None, &outside).is_err());
        let no_cidr = BgpPatch { enable: Some(true), ..Default::default() };
        assert!(apply_bgp(&mut b, &mut inside, &no_cidr).is_err());
    }

    #[test]
    fn health_checks_need_both_addresses() {
        let mut h = HealthCheck { enable: true, dip: Some(Ipv4Addr::new(10, 0, 0, 1)), ..Default::default() };
        assert!(check_health(&h).is_err());
        h.sip = Some(Ipv4Addr::new(10, 1, 0, 1));
        assert!(check_health(&h).is_ok());
    }
}
