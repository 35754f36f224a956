//! IPsec servers: client-to-site IKEv2 (or IKEv1) with a pre-shared key, one per gateway.

use ipnet::Ipv4Net;
use openvgw_core::crypto::{IdentityType, IkeConfig, IpsecConfig};
use openvgw_core::ids::random_psk;
use openvgw_core::model::{IpsecServer, Scope, VpnGateway};
use openvgw_core::{now_ms, Error, Field, Kind, Page, PageRequest, Precondition, Result, Rule, Secret};
use openvgw_store::ListQuery;

use crate::connections::{IkePatch, IpsecPatch};
use crate::ssl::check_pool;
use crate::{bump, changes_more_than, gateway_for_change, Ctx, Service};

/// A new IPsec server; algorithms come with the dialect's defaults applied, an empty local id is the gateway's
/// address.
#[derive(Debug, Clone)]
pub struct NewIpsecServer {
    pub name: Option<String>,
    pub local_subnets: Vec<Ipv4Net>,
    pub client_ip_pool: Ipv4Net,
    pub initiate: bool,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub psk: Option<Secret>,
}

#[derive(Debug, Clone, Default)]
pub struct IpsecServerChanges {
    pub name: Option<String>,
    pub local_subnets: Option<Vec<Ipv4Net>>,
    pub client_ip_pool: Option<Ipv4Net>,
    /// `Some(true)` also re-applies an otherwise unchanged server.
    pub initiate: Option<bool>,
    pub ike: IkePatch,
    pub ipsec: IpsecPatch,
    pub psk_enabled: Option<bool>,
    pub psk: Option<Secret>,
}

impl IpsecServerChanges {
    fn apply(&self, s: &mut IpsecServer) -> Result<()> {
        if let Some(n) = &self.name {
            s.name = n.clone();
        }
        if let Some(l) = &self.local_subnets {
            s.local_subnets = l.clone();
        }
        if let Some(p) = self.client_ip_pool {
            s.client_ip_pool = p;
        }
        if let Some(v) = self.initiate {
            s.initiate = v;
        }
        self.ike.apply(&mut s.ike)?;
        self.ipsec.apply(&mut s.ipsec);
        // Only pre-shared keys are supported: the flag cannot be turned off.
        if let Some(false) = self.psk_enabled {
            return Err(Error::invalid(Field::Psk, Rule::Required));
        }
        if let Some(p) = &self.psk {
            openvgw_core::validate::psk(p.expose(), 128)?;
            s.psk = p.clone();
        }
        check_pool(&s.client_ip_pool, &s.local_subnets)
    }
}

impl Service {
    pub fn create_ipsec_server(&self, ctx: &Ctx, gateway_id: &str, spec: NewIpsecServer) -> Result<IpsecServer> {
        check_pool(&spec.client_ip_pool, &spec.local_subnets)?;
        if let Some(p) = &spec.psk {
            openvgw_core::validate::psk(p.expose(), 128)?;
        }
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, ctx, gateway_id)?;
            if !gw.ssl_enabled {
                return Err(Error::Precondition(Precondition::ServiceDisabled));
            }
            if tx.count::<IpsecServer>(&ListQuery::children_of(&ctx.scope, gateway_id))? > 0 {
                return Err(Error::AlreadyExists { kind: Kind::IpsecServer, what: gateway_id.to_string() });
            }
            let id = ctx.new_id(Kind::IpsecServer);
            let mut ike = spec.ike.clone();
            if ike.local_id.is_empty() {
                let public = gw.primary_ip().ok_or_else(|| Error::internal("gateway without a public address"))?;
                (ike.local_id_type, ike.local_id) = (IdentityType::Ip, public.to_string());
            }
            let now = now_ms();
            let server = IpsecServer {
                name: spec.name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: ctx.scope.clone(),
                gateway_id: gw.id.clone(),
                local_subnets: spec.local_subnets.clone(),
                client_ip_pool: spec.client_ip_pool,
                initiate: spec.initiate,
                ike,
                ipsec: spec.ipsec.clone(),
                psk_enabled: true,
                psk: spec.psk.clone().unwrap_or_else(|| Secret::new(random_psk(16))),
                created_at: now,
                updated_at: now,
                online_clients: 0,
            };
            tx.insert(&server)?;
            bump(tx, gw)?;
            Ok(server)
        })
    }

    /// A rename alone neither waits for the gateway nor reconfigures it.
    pub fn update_ipsec_server(&self, ctx: &Ctx, id: &str, changes: IpsecServerChanges) -> Result<IpsecServer> {
        self.mutate(ctx, |tx| {
            let before: IpsecServer = tx.require(&ctx.scope, id)?;
            let mut server = before.clone();
            changes.apply(&mut server)?;
            let changed = changes_more_than(&before, &server, |probe, after| probe.name = after.name.clone())?
                || changes.initiate == Some(true);
            if changed {
                let gw = gateway_for_change(tx, ctx, &server.gateway_id)?;
                server.updated_at = now_ms();
                tx.update(&server)?;
                bump(tx, gw)?;
            } else if server.name != before.name {
                server.updated_at = now_ms();
                tx.update(&server)?;
            }
            Ok(server)
        })
    }

    pub fn delete_ipsec_server(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let server: IpsecServer = tx.require(&ctx.scope, id)?;
            let gw = gateway_for_change(tx, ctx, &server.gateway_id)?;
            tx.delete_tree(Kind::IpsecServer, id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    /// IPsec servers with their gateways.
    pub fn list_ipsec_servers(
        &self,
        scope: &Scope,
        gateway_id: Option<&str>,
        name: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<(IpsecServer, VpnGateway)>> {
        self.read(|tx| {
            let q = ListQuery { scope: Some(scope), parent_id: gateway_id, name, ..Default::default() };
            tx.list::<IpsecServer>(&q, page)?.try_map(|s| {
                let gw: VpnGateway = tx.require(scope, &s.gateway_id)?;
                Ok((s, gw))
            })
        })
    }
}
