//! IPsec connections between a VPN gateway and a customer gateway.

use ipnet::Ipv4Net;
use openvgw_core::crypto::{AuthAlg, DhGroup, EncAlg, IkeConfig, IkeMode, IkeVersion, IpsecConfig};
use openvgw_core::ids::random_secret;
use openvgw_core::model::{
    BgpConfig, CustomerGateway, HealthCheck, RouteEntry, Scope, Tag, TunnelState, VpnConnection, VpnGateway,
};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Quota, Result};
use openvgw_store::{ListQuery, TagFilter, Tx};

use crate::{bump, gateway_for_change, quota, Ctx, Listed, Page, Service};

/// Phase-1 fields a request may set; unset ones take the defaults (create) or keep their value (modify).
#[derive(Debug, Clone, Default)]
pub struct IkePatch {
    pub version: Option<IkeVersion>,
    pub mode: Option<IkeMode>,
    pub enc: Option<EncAlg>,
    pub auth: Option<AuthAlg>,
    pub pfs: Option<DhGroup>,
    pub lifetime: Option<u32>,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    pub psk: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct IpsecPatch {
    pub enc: Option<EncAlg>,
    pub auth: Option<AuthAlg>,
    pub pfs: Option<DhGroup>,
    pub lifetime: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct HealthCheckPatch {
    pub enable: Option<bool>,
    pub dip: Option<String>,
    pub sip: Option<String>,
    pub interval_s: Option<u32>,
    pub retry: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct BgpPatch {
    pub enable: Option<bool>,
    pub local_asn: Option<String>,
    pub tunnel_cidr: Option<String>,
    pub local_bgp_ip: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewConnection {
    pub gateway_id: String,
    pub customer_gateway_id: String,
    pub name: Option<String>,
    pub local_subnet: String,
    pub remote_subnet: String,
    pub effect_immediately: Option<bool>,
    pub ike: IkePatch,
    pub ipsec: IpsecPatch,
    pub health_check: HealthCheckPatch,
    pub auto_config_route: Option<bool>,
    pub enable_dpd: Option<bool>,
    pub enable_nat_traversal: Option<bool>,
    pub bgp: BgpPatch,
    pub remote_ca_certificate: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub local_subnet: Option<String>,
    pub remote_subnet: Option<String>,
    pub effect_immediately: Option<bool>,
    pub ike: IkePatch,
    pub ipsec: IpsecPatch,
    pub health_check: HealthCheckPatch,
    pub auto_config_route: Option<bool>,
    pub enable_dpd: Option<bool>,
    pub enable_nat_traversal: Option<bool>,
    pub bgp: BgpPatch,
    pub remote_ca_certificate: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub gateway_id: Option<String>,
    pub customer_gateway_id: Option<String>,
    pub connection_id: Option<String>,
    pub tags: Vec<TagFilter>,
}

/// A connection as the API shows it: with its tags and the customer gateway (peer ASN, BGP key).
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

/// What the customer side needs to configure its end (DownloadVpnConnectionConfig).
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub connection: VpnConnection,
    /// The VPN gateway's public IP.
    pub local: String,
    /// The customer gateway's public IP.
    pub remote: String,
    pub remote_asn: Option<u64>,
}

fn lifetime(v: u32, field: Field) -> Result<u32> {
    if v <= 86_400 {
        Ok(v)
    } else {
        Err(Error::invalid(field, "lifetimes are 0-86400 seconds"))
    }
}

pub(crate) fn apply_ike(base: &mut IkeConfig, p: &IkePatch) -> Result<()> {
    if let Some(v) = p.version {
        base.version = v;
    }
    if let Some(v) = p.mode {
        base.mode = v;
    }
    if let Some(v) = p.enc {
        base.enc = v;
    }
    if let Some(v) = p.auth {
        base.auth = v;
    }
    if let Some(v) = p.pfs {
        if v == DhGroup::Disabled {
            return Err(Error::invalid(Field::IkeConfig, "IkePfs cannot be disabled"));
        }
        base.pfs = v;
    }
    if let Some(v) = p.lifetime {
        base.lifetime = lifetime(v, Field::IkeConfig)?;
    }
    if let Some(v) = &p.local_id {
        validate::ike_identity(v)?;
        base.local_id = v.clone();
    }
    if let Some(v) = &p.remote_id {
        validate::ike_identity(v)?;
        base.remote_id = v.clone();
    }
    Ok(())
}

pub(crate) fn apply_ipsec(base: &mut IpsecConfig, p: &IpsecPatch) -> Result<()> {
    if let Some(v) = p.enc {
        base.enc = v;
    }
    if let Some(v) = p.auth {
        base.auth = v;
    }
    if let Some(v) = p.pfs {
        base.pfs = v;
    }
    if let Some(v) = p.lifetime {
        base.lifetime = lifetime(v, Field::IpsecConfig)?;
    }
    Ok(())
}

fn apply_health(base: &mut HealthCheck, p: &HealthCheckPatch) -> Result<()> {
    if let Some(v) = p.enable {
        base.enable = v;
    }
    if let Some(v) = &p.dip {
        base.dip = v.clone();
    }
    if let Some(v) = &p.sip {
        base.sip = v.clone();
    }
    if let Some(v) = p.interval_s {
        base.interval_s = v;
    }
    if let Some(v) = p.retry {
        base.retry = v;
    }
    if base.enable {
        validate::ipv4(&base.dip, Field::HealthCheckConfig)?;
        validate::ipv4(&base.sip, Field::HealthCheckConfig)?;
        if !(1..=3600).contains(&base.interval_s) || !(1..=100).contains(&base.retry) {
            return Err(Error::invalid(Field::HealthCheckConfig, "interval must be 1-3600 s and retry 1-100"));
        }
    }
    Ok(())
}

fn apply_bgp(base: &mut BgpConfig, p: &BgpPatch) -> Result<()> {
    if let Some(v) = p.enable {
        base.enable = v;
    }
    if let Some(v) = &p.local_asn {
        base.local_asn =
            validate::asn(v).map_err(|_| Error::invalid(Field::BgpConfig, "LocalAsn must be 1-4294967295"))?;
    }
    if let Some(v) = &p.tunnel_cidr {
        base.tunnel_cidr = v.clone();
    }
    if let Some(v) = &p.local_bgp_ip {
        base.local_bgp_ip = v.clone();
    }
    if base.enable || !base.tunnel_cidr.is_empty() {
        let link_local: Ipv4Net = "169.254.0.0/16".parse().map_err(Error::internal)?;
        let cidr = validate::cidr(&base.tunnel_cidr, Field::BgpConfig)?;
        if cidr.prefix_len() != 30 || !link_local.contains(&cidr) {
            return Err(Error::invalid(Field::BgpConfig, "TunnelCidr must be a /30 inside 169.254.0.0/16"));
        }
        if !base.local_bgp_ip.is_empty() || base.enable {
            let ip = validate::ipv4(&base.local_bgp_ip, Field::BgpConfig)?;
            if !cidr.hosts().any(|h| h == ip) {
                return Err(Error::invalid(Field::BgpConfig, "LocalBgpIp must be a host address of TunnelCidr"));
            }
        }
    }
    Ok(())
}

fn check_remote_ca(gw: &VpnGateway, cert: &str) -> Result<()> {
    match (gw.vpn_type.as_str(), cert.is_empty()) {
        ("NationalStandard", true) => {
            Err(Error::invalid(Field::RemoteCaCertificate, "required for a NationalStandard gateway"))
        }
        ("Normal", false) => Err(Error::invalid(Field::RemoteCaCertificate, "must be empty for a Normal gateway")),
        _ => Ok(()),
    }
}

impl Service {
    pub fn create_connection(&self, ctx: &Ctx, input: NewConnection) -> Result<VpnConnection> {
        self.check_region(&ctx.scope.region)?;
        if let Some(n) = &input.name {
            validate::name(n, 2, 128, true)?;
        }
        let (_, local_subnet) = validate::cidr_list(&input.local_subnet, Field::LocalSubnet)?;
        let (_, remote_subnet) = validate::cidr_list(&input.remote_subnet, Field::RemoteSubnet)?;
        if let Some(psk) = &input.ike.psk {
            validate::psk(psk)?;
        }
        self.validate_tags(&input.tags)?;
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let gw = gateway_for_change(tx, scope, &input.gateway_id)?;
            let cgw: CustomerGateway = tx.require(scope, &input.customer_gateway_id)?;
            let siblings = ListQuery { scope: Some(scope), parent_id: Some(&gw.id), ..Default::default() };
            quota(
                tx.count::<VpnConnection>(&siblings)?,
                self.config.quotas.connections_per_gateway,
                Quota::Connections,
            )?;
            let pair = ListQuery { lookup_key: Some(&cgw.id), ..siblings };
            if tx.count::<VpnConnection>(&pair)? > 0 {
                return Err(Error::AlreadyExists {
                    kind: Kind::VpnConnection,
                    what: format!("{} to {}", gw.id, cgw.id),
                });
            }
            let mut ike = IkeConfig {
                version: IkeVersion::V1,
                mode: IkeMode::Main,
                enc: EncAlg::Aes,
                auth: AuthAlg::Md5,
                pfs: DhGroup::Group2,
                lifetime: 86_400,
                local_id: gw.internet_ip.clone(),
                remote_id: cgw.ip_address.clone(),
            };
            apply_ike(&mut ike, &input.ike)?;
            let mut ipsec =
                IpsecConfig { enc: EncAlg::Aes, auth: AuthAlg::Md5, pfs: DhGroup::Group2, lifetime: 86_400 };
            apply_ipsec(&mut ipsec, &input.ipsec)?;
            let mut health_check = HealthCheck { interval_s: 3, retry: 3, ..Default::default() };
            apply_health(&mut health_check, &input.health_check)?;
            let mut bgp = BgpConfig { local_asn: 45104, ..Default::default() };
            apply_bgp(&mut bgp, &input.bgp)?;
            let remote_ca_certificate = input.remote_ca_certificate.clone().unwrap_or_default();
            check_remote_ca(&gw, &remote_ca_certificate)?;
            let id = Kind::VpnConnection.new_id();
            let conn = VpnConnection {
                name: input.name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: scope.clone(),
                gateway_id: gw.id.clone(),
                customer_gateway_id: cgw.id.clone(),
                local_subnet: local_subnet.clone(),
                remote_subnet: remote_subnet.clone(),
                effect_immediately: input.effect_immediately.unwrap_or(false),
                psk: input.ike.psk.clone().unwrap_or_else(|| random_secret(16)),
                ike,
                ipsec,
                health_check,
                auto_config_route: input.auto_config_route.unwrap_or(true),
                enable_dpd: input.enable_dpd.unwrap_or(true),
                enable_nat_traversal: input.enable_nat_traversal.unwrap_or(true),
                bgp,
                remote_ca_certificate,
                created_at: now_ms(),
                state: TunnelState::IkeSaNotEstablished,
                health_ok: None,
            };
            tx.insert(&conn)?;
            for t in &input.tags {
                tx.put_tag(scope, Kind::VpnConnection, &conn.id, t)?;
            }
            let mut gw = gw;
            sync_gateway_bgp(tx, &mut gw)?;
            bump(tx, gw)?;
            Ok(conn)
        })
    }

    /// Applies the changes and returns the connection as it now reads (from the same transaction).
    pub fn modify_connection(&self, ctx: &Ctx, id: &str, ch: ConnectionChanges) -> Result<ConnectionView> {
        self.check_region(&ctx.scope.region)?;
        if let Some(n) = &ch.name {
            validate::name(n, 2, 128, true)?;
        }
        let local = ch.local_subnet.as_deref().map(|s| validate::cidr_list(s, Field::LocalSubnet)).transpose()?;
        let remote = ch.remote_subnet.as_deref().map(|s| validate::cidr_list(s, Field::RemoteSubnet)).transpose()?;
        if let Some(psk) = &ch.ike.psk {
            validate::psk(psk)?;
        }
        self.mutate(ctx, |tx| {
            let scope = &ctx.scope;
            let mut conn: VpnConnection = tx.require(scope, id)?;
            // Any change to a child waits for the gateway to be idle, as on the real service.
            let mut gw = gateway_for_change(tx, scope, &conn.gateway_id)?;
            let before = serde_json::to_value(&conn).map_err(Error::internal)?;
            if let Some(n) = &ch.name {
                conn.name = n.clone();
            }
            let name_only = serde_json::to_value(&conn).map_err(Error::internal)?;
            if let Some((_, l)) = &local {
                conn.local_subnet = l.clone();
            }
            if let Some((_, r)) = &remote {
                conn.remote_subnet = r.clone();
            }
            if let Some(v) = ch.effect_immediately {
                conn.effect_immediately = v;
            }
            apply_ike(&mut conn.ike, &ch.ike)?;
            if let Some(psk) = &ch.ike.psk {
                conn.psk = psk.clone();
            }
            apply_ipsec(&mut conn.ipsec, &ch.ipsec)?;
            apply_health(&mut conn.health_check, &ch.health_check)?;
            apply_bgp(&mut conn.bgp, &ch.bgp)?;
            if let Some(v) = ch.auto_config_route {
                conn.auto_config_route = v;
            }
            if let Some(v) = ch.enable_dpd {
                conn.enable_dpd = v;
            }
            if let Some(v) = ch.enable_nat_traversal {
                conn.enable_nat_traversal = v;
            }
            if let Some(v) = &ch.remote_ca_certificate {
                conn.remote_ca_certificate = v.clone();
            }
            let after = serde_json::to_value(&conn).map_err(Error::internal)?;
            if after != before {
                tx.update(&conn)?;
            }
            if after != name_only || ch.effect_immediately == Some(true) {
                // The tunnel itself changes: the data plane re-applies.
                check_remote_ca(&gw, &conn.remote_ca_certificate)?;
                sync_gateway_bgp(tx, &mut gw)?;
                bump(tx, gw)?;
            }
            view(tx, conn)
        })
    }

    pub fn get_connection(&self, scope: &Scope, id: &str) -> Result<ConnectionView> {
        self.check_region(&scope.region)?;
        self.read(|tx| view(tx, tx.require(scope, id)?))
    }

    pub fn list_connections(&self, scope: &Scope, f: &ConnectionFilter, page: Page) -> Result<Listed<ConnectionView>> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let mut q = ListQuery {
                scope: Some(scope),
                parent_id: f.gateway_id.as_deref(),
                id: f.connection_id.as_deref(),
                tags: f.tags.clone(),
                offset: page.offset(),
                limit: Some(page.size),
                ..Default::default()
            };
            if let Some(c) = &f.customer_gateway_id {
                q.lookup_key = Some(c);
            }
            let (items, total) = tx.list::<VpnConnection>(&q)?;
            let items = items.into_iter().map(|c| view(tx, c)).collect::<Result<Vec<_>>>()?;
            Ok(Listed { items, total })
        })
    }

    pub fn peer_config(&self, scope: &Scope, id: &str) -> Result<PeerConfig> {
        self.check_region(&scope.region)?;
        self.read(|tx| peer_config(tx, scope, id))
    }

    pub fn delete_connection(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let conn: VpnConnection = tx.require(&ctx.scope, id)?;
            let gw = gateway_for_change(tx, &ctx.scope, &conn.gateway_id)?;
            // Routes whose next hop is this connection go with it.
            let routes: Vec<RouteEntry> = tx.all(&ListQuery {
                parent_id: Some(&gw.id),
                json_eq: vec![("next_hop", conn.id.clone())],
                ..Default::default()
            })?;
            for r in routes {
                tx.delete(Kind::RouteEntry, &r.id)?;
            }
            tx.delete(Kind::VpnConnection, id)?;
            let mut gw = gw;
            sync_gateway_bgp(tx, &mut gw)?;
            bump(tx, gw)?;
            Ok(())
        })
    }
}

/// The connection as the customer side sees it (also used by `openvgw peer-config`).
pub fn peer_config(tx: &Tx, scope: &Scope, id: &str) -> Result<PeerConfig> {
    let connection: VpnConnection = tx.require(scope, id)?;
    let gw: VpnGateway = tx.require(scope, &connection.gateway_id)?;
    let cgw: CustomerGateway = tx.require(scope, &connection.customer_gateway_id)?;
    Ok(PeerConfig { local: gw.internet_ip, remote: cgw.ip_address, remote_asn: cgw.asn, connection })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgp_rules() {
        let mut b = BgpConfig { local_asn: 45104, ..Default::default() };
        assert!(apply_bgp(&mut b, &BgpPatch::default()).is_ok(), "disabled and empty is fine");
        let ok = BgpPatch {
            enable: Some(true),
            tunnel_cidr: Some("169.254.11.0/30".into()),
            local_bgp_ip: Some("169.254.11.1".into()),
            ..Default::default()
        };
        assert!(apply_bgp(&mut b.clone(), &ok).is_ok());
        let wide = BgpPatch { tunnel_cidr: Some("169.254.11.0/29".into()), ..ok.clone() };
        assert!(apply_bgp(&mut b.clone(), &wide).is_err());
        let outside = BgpPatch { local_bgp_ip: Some("169.254.12.1".into()), ..ok };
        assert!(apply_bgp(&mut b, &outside).is_err());
    }

    #[test]
    fn lifetimes_are_bounded() {
        let mut ipsec = IpsecConfig { enc: EncAlg::Aes, auth: AuthAlg::Md5, pfs: DhGroup::Group2, lifetime: 86_400 };
        assert!(apply_ipsec(&mut ipsec, &IpsecPatch { lifetime: Some(86_401), ..Default::default() }).is_err());
        assert!(apply_ipsec(&mut ipsec, &IpsecPatch { lifetime: Some(0), ..Default::default() }).is_ok());
    }
}
