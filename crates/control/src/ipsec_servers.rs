//! IPsec servers: client-to-site IKEv2 (or IKEv1) with a PSK, one per gateway.

use openvgw_core::crypto::{AuthAlg, DhGroup, EncAlg, IkeConfig, IkeMode, IkeVersion, IpsecConfig};
use openvgw_core::ids::random_secret;
use openvgw_core::model::{IpsecServer, Scope, VpnGateway};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Result};
use openvgw_store::ListQuery;

use crate::connections::{apply_ike, apply_ipsec, IkePatch, IpsecPatch};
use crate::ssl::set_subnets;
use crate::{bump, gateway_for_change, Ctx, Service, TokenPage};

#[derive(Debug, Clone, Default)]
pub struct IpsecServerSpec {
    pub name: Option<String>,
    pub local_subnet: Option<String>,
    pub client_ip_pool: Option<String>,
    pub effect_immediately: Option<bool>,
    pub ike: IkePatch,
    pub ipsec: IpsecPatch,
    pub psk_enabled: Option<bool>,
    pub psk: Option<String>,
}

fn apply(s: &mut IpsecServer, spec: &IpsecServerSpec) -> Result<()> {
    if let Some(n) = &spec.name {
        validate::name(n, 2, 128, false)?;
        s.name = n.clone();
    }
    set_subnets(
        &mut s.local_subnet,
        &mut s.client_ip_pool,
        spec.local_subnet.as_deref(),
        spec.client_ip_pool.as_deref(),
    )?;
    if let Some(v) = spec.effect_immediately {
        s.effect_immediately = v;
    }
    apply_ike(&mut s.ike, &spec.ike)?;
    apply_ipsec(&mut s.ipsec, &spec.ipsec)?;
    if let Some(false) = spec.psk_enabled {
        return Err(Error::invalid(Field::Psk, "PskEnabled can only be true"));
    }
    if let Some(p) = &spec.psk {
        validate::psk(p)?;
        s.psk = p.clone();
    }
    Ok(())
}

/// One token page of IPsec servers with their gateways.
pub struct IpsecServerPage {
    pub items: Vec<(IpsecServer, VpnGateway)>,
    pub total: u64,
    pub more: bool,
}

impl Service {
    pub fn create_ipsec_server(&self, ctx: &Ctx, gateway_id: &str, spec: IpsecServerSpec) -> Result<IpsecServer> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, &ctx.scope, gateway_id)?;
            if !gw.enable_ssl {
                return Err(Error::SslVpnDisabled);
            }
            let siblings = ListQuery { scope: Some(&ctx.scope), parent_id: Some(gateway_id), ..Default::default() };
            if tx.count::<IpsecServer>(&siblings)? > 0 {
                return Err(Error::IpsecServerExists);
            }
            let id = Kind::IpsecServer.new_id();
            let mut server = IpsecServer {
                name: id.clone(),
                id,
                scope: ctx.scope.clone(),
                gateway_id: gw.id.clone(),
                local_subnet: String::new(),
                client_ip_pool: String::new(),
                effect_immediately: false,
                ike: IkeConfig {
                    version: IkeVersion::V2,
                    mode: IkeMode::Main,
                    enc: EncAlg::Aes,
                    auth: AuthAlg::Sha1,
                    pfs: DhGroup::Group2,
                    lifetime: 86_400,
                    local_id: gw.internet_ip.clone(),
                    remote_id: String::new(),
                },
                ipsec: IpsecConfig { enc: EncAlg::Aes, auth: AuthAlg::Sha1, pfs: DhGroup::Group2, lifetime: 86_400 },
                psk_enabled: true,
                psk: random_secret(16),
                created_at: now_ms(),
                online_clients: 0,
            };
            apply(&mut server, &spec)?;
            tx.insert(&server)?;
            bump(tx, gw)?;
            Ok(server)
        })
    }

    pub fn update_ipsec_server(&self, ctx: &Ctx, id: &str, spec: IpsecServerSpec) -> Result<IpsecServer> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let mut server: IpsecServer = tx.require(&ctx.scope, id)?;
            let gw = gateway_for_change(tx, &ctx.scope, &server.gateway_id)?;
            let before = serde_json::to_value(&server).map_err(Error::internal)?;
            apply(&mut server, &spec)?;
            if serde_json::to_value(&server).map_err(Error::internal)? != before
                || spec.effect_immediately == Some(true)
            {
                tx.update(&server)?;
                bump(tx, gw)?;
            }
            Ok(server)
        })
    }

    pub fn delete_ipsec_server(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let server: IpsecServer = tx.require(&ctx.scope, id)?;
            let gw = gateway_for_change(tx, &ctx.scope, &server.gateway_id)?;
            tx.delete(Kind::IpsecServer, id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    /// IPsec servers with their gateways, token-paged; returns the items, the total and whether more follow.
    pub fn list_ipsec_servers(
        &self,
        scope: &Scope,
        gateway_id: Option<&str>,
        name: Option<&str>,
        page: &TokenPage,
    ) -> Result<IpsecServerPage> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let q = ListQuery {
                scope: Some(scope),
                parent_id: gateway_id,
                name,
                offset: page.offset,
                limit: Some(page.max),
                ..Default::default()
            };
            let (items, total) = tx.list::<IpsecServer>(&q)?;
            let more = page.offset + (items.len() as u64) < total;
            let items = items
                .into_iter()
                .map(|s| {
                    let gw: VpnGateway = tx.require(scope, &s.gateway_id)?;
                    Ok((s, gw))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(IpsecServerPage { items, total, more })
        })
    }
}
