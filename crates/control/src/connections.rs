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

    /// Each tunnel's negotiated SAs with their traffic (a dual-tunnel connection has two), by the tunnel's id.
    pub async fn tunnel_traffic(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Vec<(String, Vec<openvgw_dataplane::SaStats>)>> {
        let c = self.connection_of(scope, id)?;
        let mut out = Vec::new();
        for (tunnel, t) in c.tunnels() {
            let sas = self
                .driver
                .tunnel_sas(&c.gateway_id, &tunnel)
                .await
                .map_err(|e| Error::internal(format!("data plane: {e}")))?;
            out.push((t.id, sas));
        }
        Ok(out)
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
    /// A dual-tunnel connection's second tunnel; the fields above then describe its first (with `ha_role`).
    pub second_tunnel: Option<NewTunnel>,
    pub tags: Vec<Tag>,
    pub ext: Extensions,
}

impl NewConnection {
    /// A dual-tunnel connection: its own tunnel fields become `first`'s.
    pub fn with_tunnels(mut self, first: NewTunnel, second: NewTunnel) -> Self {
        self.public_ip = first.public_ip;
        self.ha_role = Some(first.role);
        self.psk = first.psk;
        self.ike = first.ike;
        self.ipsec = first.ipsec;
        self.dpd = first.dpd;
        self.nat_traversal = first.nat_traversal;
        self.bgp = first.bgp;
        self.remote_ca_certificate = first.remote_ca_certificate;
        self.second_tunnel = Some(second);
        self
    }
}

/// One tunnel of a new dual-tunnel connection.
#[derive(Debug, Clone)]
pub struct NewTunnel {
    pub customer_gateway_id: String,
    pub public_ip: PublicIpRef,
    pub role: HaRole,
    pub psk: Option<Secret>,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub dpd: bool,
    pub nat_traversal: bool,
    pub bgp: BgpPatch,
    pub remote_ca_certificate: String,
}

/// Changes to one tunnel of a dual-tunnel connection, named by its id.
#[derive(Debug, Clone, Default)]
pub struct TunnelChanges {
    pub id: String,
    pub customer_gateway_id: Option<String>,
    pub role: Option<HaRole>,
    pub psk: Option<Secret>,
    pub ike: IkePatch,
    pub ipsec: IpsecPatch,
    pub dpd: Option<bool>,
    pub nat_traversal: Option<bool>,
    pub bgp: BgpPatch,
    pub remote_ca_certificate: Option<String>,
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
    /// Per-tunnel changes of a dual-tunnel connection.
    pub tunnels: Vec<TunnelChanges>,
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
    /// A dual-tunnel connection's second tunnel's customer gateway.
    #[serde(default)]
    pub second_customer_gateway: Option<CustomerGateway>,
    /// A dual-tunnel connection's tunnels' addresses on the gateway, in tunnel order (empty for others).
    #[serde(default)]
    pub tunnel_addresses: Vec<Ipv4Addr>,
    pub tags: Vec<Tag>,
}

fn view(tx: &Tx, connection: VpnConnection) -> Result<ConnectionView> {
    let customer_gateway = tx.require(&connection.scope, &connection.customer_gateway_id)?;
    let (mut second_customer_gateway, mut tunnel_addresses) = (None, Vec::new());
    if let Some(t) = &connection.second_tunnel {
        second_customer_gateway = Some(tx.require(&connection.scope, &t.customer_gateway_id)?);
        let gw: VpnGateway = tx.require(&connection.scope, &connection.gateway_id)?;
        for (_, t) in connection.tunnels() {
            tunnel_addresses.push(Service::check_public_ip_index(&gw, t.public_ip_index)?);
        }
    }
    Ok(ConnectionView {
        tags: tx.tags_of(&connection.id)?,
        customer_gateway,
        second_customer_gateway,
        tunnel_addresses,
        connection,
    })
}

/// The gateway's BGP flag follows its connections: on while any of them runs BGP.
fn sync_gateway_bgp(tx: &Tx, gw: &mut VpnGateway) -> Result<()> {
    let conns: Vec<VpnConnection> = tx.children_unscoped(&gw.id)?;
    gw.enable_bgp = conns.iter().any(VpnConnection::runs_bgp);
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
    /// A dual-tunnel connection's second tunnel, as the customer side sees it.
    pub second: Option<PeerEnds>,
}

/// Both ends of a tunnel as the customer side sees them.
#[derive(Debug, Clone)]
pub struct PeerEnds {
    pub local: Ipv4Addr,
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
    let used: Vec<Ipv4Net> =
        siblings.iter().flat_map(|c| c.tunnels()).filter_map(|(_, t)| t.inside.map(|i| i.cidr)).collect();
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
            if let Some(t) = &input.second_tunnel {
                if let Some(psk) = &t.psk {
                    check_psk(psk)?;
                }
                if t.role == input.ha_role.unwrap_or(HaRole::Master) {
                    return Err(Error::invalid(Field::HaMode, Rule::Conflicts("the other tunnel's role")));
                }
            }
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
        // A dual-tunnel connection names its tunnels' roles itself.
        let ha_role = match (&input.second_tunnel, input.ha_role) {
            (Some(_), Some(role)) => role,
            _ => check_ha_role(&gw, index, input.ha_role)?,
        };
        let siblings_q = ListQuery::children_of(scope, &gw.id);
        let siblings: Vec<VpnConnection> = tx.all(&siblings_q)?;
        quota(siblings.len() as u64, self.config.quotas.connections_per_gateway, Quota::Connections)?;
        quota(
            tx.count::<VpnConnection>(&ListQuery::in_scope(scope))?,
            self.config.quotas.connections_per_region,
            Quota::RegionConnections,
        )?;
        // One tunnel per (gateway address, customer gateway).
        let used: Vec<(String, u8)> = siblings
            .iter()
            .flat_map(|c| c.tunnels())
            .map(|(_, t)| (t.customer_gateway_id, t.public_ip_index))
            .collect();
        let taken = |cgw_id: &str, index: u8| used.iter().any(|(c, i)| c == cgw_id && *i == index);
        if taken(&cgw.id, index) {
            return Err(Error::AlreadyExists { kind: Kind::VpnConnection, what: format!("{} to {}", gw.id, cgw.id) });
        }
        check_remote_ca(&gw, &input.remote_ca_certificate)?;
        if inside.is_none() && input.allocate_inside {
            inside = Some(free_inside(&siblings)?);
        }
        let second_tunnel = match &input.second_tunnel {
            None => None,
            Some(t) => {
                let second = self.new_tunnel(tx, ctx, &gw, t, &siblings)?;
                if second.public_ip_index == index || taken(&second.customer_gateway_id, second.public_ip_index) {
                    return Err(Error::invalid(Field::GatewayAddress, Rule::Conflicts("another tunnel's")));
                }
                if let (Some(a), Some(b)) = (&inside, &second.inside) {
                    if a.cidr == b.cidr {
                        return Err(Error::invalid(Field::TunnelCidr, Rule::Conflicts("the other tunnel's")));
                    }
                }
                Some(Box::new(second))
            }
        };
        let tunnel_id = second_tunnel.as_ref().map(|_| ctx.new_id(Kind::Tunnel));
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
            mode: if bgp.enable || second_tunnel.as_ref().is_some_and(|t| t.bgp.enable) {
                ConnectionMode::Bgp
            } else {
                input.mode
            },
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
            tunnel_id,
            second_tunnel,
            ext: input.ext.clone(),
        };
        tx.insert(&conn)?;
        self.put_tags(tx, scope, Kind::VpnConnection, &conn.id, &input.tags)?;
        let mut gw = gw;
        sync_gateway_bgp(tx, &mut gw)?;
        bump(tx, gw)?;
        Ok(conn)
    }

    /// A dual-tunnel connection's second tunnel, checked against the gateway (its address must exist).
    fn new_tunnel(
        &self,
        tx: &Tx,
        ctx: &Ctx,
        gw: &VpnGateway,
        t: &NewTunnel,
        siblings: &[VpnConnection],
    ) -> Result<openvgw_core::model::Tunnel> {
        let cgw: CustomerGateway = tx.require(&ctx.scope, &t.customer_gateway_id)?;
        let index = resolve_public_ip(gw, &t.public_ip)?;
        let local_ip = Self::check_public_ip_index(gw, index)?;
        check_remote_ca(gw, &t.remote_ca_certificate)?;
        let mut bgp = BgpConfig { enable: false, local_asn: 0 };
        let mut inside = None;
        apply_bgp(&mut bgp, &mut inside, &t.bgp)?;
        if inside.is_none() && bgp.enable {
            inside = Some(free_inside(siblings)?);
        }
        let mut ike = t.ike.clone();
        if ike.local_id.is_empty() {
            (ike.local_id_type, ike.local_id) = (IdentityType::Ip, local_ip.to_string());
        }
        if ike.remote_id.is_empty() {
            (ike.remote_id_type, ike.remote_id) = identity_default(&cgw.identity);
        }
        Ok(openvgw_core::model::Tunnel {
            id: ctx.new_id(Kind::Tunnel),
            customer_gateway_id: cgw.id,
            public_ip_index: index,
            role: t.role,
            psk: t.psk.clone().unwrap_or_else(|| Secret::new(random_psk(16))),
            ike,
            ipsec: t.ipsec.clone(),
            dpd: t.dpd,
            nat_traversal: t.nat_traversal,
            bgp,
            inside,
            remote_ca_certificate: t.remote_ca_certificate.clone(),
            state: TunnelState::IkeSaNotEstablished,
            bgp_session: None,
        })
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
            for t in &ch.tunnels {
                apply_tunnel_changes(tx, scope, &mut conn, t)?;
            }
            // Roles may be swapped in one request; what must hold is the result: one master, one slave.
            if conn.second_tunnel.as_ref().is_some_and(|s| Some(s.role) == conn.ha_role) {
                return Err(Error::invalid(Field::HaMode, Rule::Conflicts("the other tunnel's role")));
            }
            if conn.runs_bgp() {
                conn.mode = ConnectionMode::Bgp;
            } else if before.mode == ConnectionMode::Bgp {
                conn.mode = ConnectionMode::Policy;
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

/// Applies one tunnel's changes to a dual-tunnel connection (its first tunnel lives in the connection's own fields).
fn apply_tunnel_changes(tx: &Tx, scope: &Scope, conn: &mut VpnConnection, ch: &TunnelChanges) -> Result<()> {
    if let Some(psk) = &ch.psk {
        check_psk(psk)?;
    }
    let cgw: Option<CustomerGateway> = ch.customer_gateway_id.as_deref().map(|id| tx.require(scope, id)).transpose()?;
    let first = conn.tunnel_id.as_deref() == Some(ch.id.as_str());
    if conn.second_tunnel.as_ref().filter(|s| first || s.id == ch.id).is_none() {
        return Err(Error::not_found(Kind::Tunnel, &ch.id));
    }
    // The first tunnel's fields are the connection's own; edit a copy of it the same way as the second.
    let mut t = conn.tunnels().swap_remove(if first { 0 } else { 1 }).1;
    if let Some(c) = cgw {
        if c.id != t.customer_gateway_id {
            if t.ike.remote_id_type == IdentityType::Ip {
                let old: Option<CustomerGateway> = tx.get(scope, &t.customer_gateway_id)?;
                if old.is_some_and(|o| identity_default(&o.identity).1 == t.ike.remote_id) {
                    (t.ike.remote_id_type, t.ike.remote_id) = identity_default(&c.identity);
                }
            }
            t.customer_gateway_id = c.id;
        }
    }
    if let Some(r) = ch.role {
        t.role = r;
    }
    if let Some(p) = &ch.psk {
        t.psk = p.clone();
    }
    ch.ike.apply(&mut t.ike)?;
    ch.ipsec.apply(&mut t.ipsec);
    if let Some(v) = ch.dpd {
        t.dpd = v;
    }
    if let Some(v) = ch.nat_traversal {
        t.nat_traversal = v;
    }
    apply_bgp(&mut t.bgp, &mut t.inside, &ch.bgp)?;
    if let Some(v) = &ch.remote_ca_certificate {
        t.remote_ca_certificate = v.clone();
    }
    if first {
        conn.set_first_tunnel(t);
    } else if let Some(second) = conn.second_tunnel.as_deref_mut() {
        *second = t;
    }
    Ok(())
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
        let nets = |n: &[Ipv4Net]| n.iter().map(ToString::to_string).collect::<Vec<_>>();
        let first = PeerEnds { local: self.local, remote: self.remote.clone(), remote_asn: self.remote_asn };
        let ends: Vec<&PeerEnds> = std::iter::once(&first).chain(self.second.as_ref()).collect();
        let tunnels = c.tunnels();
        // Owned first: the rendered sides borrow them.
        let texts: Vec<(String, String, String)> = tunnels
            .iter()
            .zip(&ends)
            .map(|((id, t), ends)| {
                // A dual-tunnel connection's tunnels are two connections of the customer's daemon, named by their ids.
                let name = if c.second_tunnel.is_some() { t.id.clone() } else { id.clone() };
                let own = ends.remote.address().map(|a| a.to_string()).unwrap_or_else(|| "%any".to_string());
                (name, own, ends.local.to_string())
            })
            .collect();
        let sides: Vec<peer::PeerSide> = tunnels
            .iter()
            .zip(&ends)
            .zip(&texts)
            .map(|(((_, t), ends), (name, own, gateway))| peer::PeerSide {
                name,
                local_address: own,
                remote_address: gateway,
                local_id: &t.ike.remote_id,
                remote_id: &t.ike.local_id,
                local_subnets: nets(&c.remote_subnets),
                remote_subnets: nets(&c.local_subnets),
                psk: t.psk.expose(),
                ike: &t.ike,
                ipsec: &t.ipsec,
                dpd: t.dpd,
                initiate: true,
                force_udp_encap,
                bgp: t.inside.as_ref().filter(|_| t.bgp.enable).and_then(|i| {
                    Some(peer::PeerBgp {
                        tunnel_address: format!("{}/{}", i.peer()?, i.cidr.prefix_len()),
                        neighbor: i.local?.to_string(),
                        neighbor_asn: t.bgp.local_asn,
                        asn: ends.remote_asn,
                    })
                }),
            })
            .collect();
        Ok(match format {
            PeerFormat::Strongswan => {
                vec![PeerFile { name: "swanctl.conf", text: peer::strongswan_all(&sides)?, secret: true }]
            }
            PeerFormat::Libreswan => {
                let l = peer::libreswan_all(&sides)?;
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
    let second = match connection.second_tunnel.as_deref() {
        None => None,
        Some(t) => {
            let cgw: CustomerGateway = tx.require(scope, &t.customer_gateway_id)?;
            let local = Service::check_public_ip_index(&gw, t.public_ip_index)?;
            Some(PeerEnds { local, remote: cgw.identity, remote_asn: cgw.asn })
        }
    };
    Ok(PeerConfig { local, remote: cgw.identity, remote_asn: cgw.asn, second, connection })
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
