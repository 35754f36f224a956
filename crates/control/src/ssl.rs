//! SSL-VPN (client-to-site) servers with a CA and server certificate each, client certificates (issued by that CA,
//! revoked through the CRL when deleted) and server logs.

use ipnet::Ipv4Net;
use openvgw_core::crypto::{SslCipher, Transport};
use openvgw_core::model::{ClientAuth, Extensions, Scope, SslVpnClientCert, SslVpnServer, VpnGateway};
use openvgw_core::{
    now_ms, validate, Error, Field, Kind, Page, PageRequest, Precondition, Quota, Result, Rule, Secret,
};
use openvgw_store::ListQuery;
use std::net::Ipv4Addr;

use crate::{bump, changes_more_than, gateway_for_change, quota, Ctx, Service};

/// Client certificates are valid three years.
const CLIENT_CERT_DAYS: u32 = 3 * 365;

pub use crate::ExtUpdate;

/// A new server, complete with the dialect's defaults.
#[derive(Debug, Clone)]
pub struct NewSslServer {
    pub name: Option<String>,
    pub client_ip_pool: Ipv4Net,
    pub local_subnets: Vec<Ipv4Net>,
    pub transport: Transport,
    pub cipher: SslCipher,
    pub port: u16,
    pub compress: bool,
    pub client_auth: ClientAuth,
    pub dns_servers: Vec<Ipv4Addr>,
    pub ext: Extensions,
    /// A built-in user group (name, description) every password server starts with, where the dialect has one.
    pub default_group: Option<(String, String)>,
    /// Client CAs (name, checked certificate) a certificate server trusts from the start.
    pub client_cas: Vec<(String, openvgw_core::model::CertificateInfo)>,
}

#[derive(Clone, Default)]
pub struct SslServerChanges {
    pub name: Option<String>,
    pub client_ip_pool: Option<Ipv4Net>,
    pub local_subnets: Option<Vec<Ipv4Net>>,
    pub transport: Option<Transport>,
    pub cipher: Option<SslCipher>,
    pub port: Option<u16>,
    pub compress: Option<bool>,
    pub client_auth: Option<ClientAuth>,
    pub dns_servers: Option<Vec<Ipv4Addr>>,
    pub ext: Option<ExtUpdate>,
}

#[derive(Debug, Clone, Default)]
pub struct SslServerFilter {
    pub server_id: Option<String>,
    pub gateway_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ClientCertFilter {
    pub server_id: Option<String>,
    pub cert_id: Option<String>,
    pub name: Option<String>,
}

/// A client certificate with everything a client needs.
#[derive(Debug, Clone)]
pub struct ClientBundle {
    pub cert: SslVpnClientCert,
    pub ca_cert_pem: String,
    /// An OpenVPN 2.6 client profile with the certificate and key inline.
    pub client_config: String,
}

/// The client pool must not overlap the networks the server routes to.
pub(crate) fn check_pool(pool: &Ipv4Net, locals: &[Ipv4Net]) -> Result<()> {
    match locals.iter().find(|l| validate::overlaps(l, pool)) {
        Some(l) => Err(Error::invalid(Field::ClientIpPool, Rule::Overlaps(l.to_string()))),
        None => Ok(()),
    }
}

fn pki_err(e: openvgw_pki::PkiError) -> Error {
    Error::internal(format!("pki: {e}"))
}

fn ca_of(server: &SslVpnServer) -> openvgw_pki::CaMaterial {
    openvgw_pki::CaMaterial { cert_pem: server.ca_cert_pem.clone(), key_pem: server.ca_key_pem.expose().to_string() }
}

/// The CRL (PEM) for a server's current revocations.
pub fn crl_of(server: &SslVpnServer) -> Result<String> {
    openvgw_pki::crl(&ca_of(server), &server.revoked_serials, server.crl_number.max(1)).map_err(pki_err)
}

impl SslServerChanges {
    fn apply(&self, s: &mut SslVpnServer) -> Result<()> {
        if let Some(n) = &self.name {
            s.name = n.clone();
        }
        if let Some(p) = self.client_ip_pool {
            s.client_ip_pool = p;
        }
        if let Some(l) = &self.local_subnets {
            s.local_subnets = l.clone();
        }
        if let Some(v) = self.transport {
            s.transport = v;
        }
        if let Some(v) = self.cipher {
            s.cipher = v;
        }
        if let Some(v) = self.port {
            s.port = v;
        }
        if let Some(v) = self.compress {
            s.compress = v;
        }
        if let Some(v) = self.client_auth {
            s.client_auth = v;
        }
        if let Some(v) = &self.dns_servers {
            s.dns_servers = v.clone();
        }
        if let Some(update) = &self.ext {
            update(&mut s.ext)?;
        }
        check_pool(&s.client_ip_pool, &s.local_subnets)
    }
}

impl Service {
    pub fn create_ssl_server(&self, ctx: &Ctx, gateway_id: &str, spec: NewSslServer) -> Result<SslVpnServer> {
        check_pool(&spec.client_ip_pool, &spec.local_subnets)?;
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, ctx, gateway_id)?;
            if !gw.ssl_enabled {
                return Err(Error::Precondition(Precondition::ServiceDisabled));
            }
            let siblings = ListQuery::children_of(&ctx.scope, gateway_id);
            quota(tx.count::<SslVpnServer>(&siblings)?, 1, Quota::SslVpnServers)?;
            let id = ctx.new_id(Kind::SslVpnServer);
            let public = gw.primary_ip().ok_or_else(|| Error::internal("gateway without a public address"))?;
            let ca = openvgw_pki::new_ca(&format!("openvgw {id}")).map_err(pki_err)?;
            let leaf = openvgw_pki::issue_server(&ca, &public.to_string(), &[public.into()]).map_err(pki_err)?;
            let now = now_ms();
            let server = SslVpnServer {
                name: spec.name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: ctx.scope.clone(),
                gateway_id: gw.id.clone(),
                client_ip_pool: spec.client_ip_pool,
                local_subnets: spec.local_subnets.clone(),
                transport: spec.transport,
                cipher: spec.cipher,
                port: spec.port,
                compress: spec.compress,
                client_auth: spec.client_auth,
                dns_servers: spec.dns_servers.clone(),
                ca_cert_pem: ca.cert_pem,
                ca_key_pem: Secret::new(ca.key_pem),
                server_cert_pem: leaf.cert_pem,
                server_key_pem: Secret::new(leaf.key_pem),
                revoked_serials: vec![],
                revoked_client_ids: vec![],
                crl_number: 0,
                connections: 0,
                since_generation: gw.generation + 1,
                created_at: now,
                updated_at: now,
                ext: spec.ext.clone(),
            };
            tx.insert(&server)?;
            crate::clients::insert_client_cas(
                tx,
                ctx,
                &server.id,
                &spec.client_cas,
                self.config.quotas.client_cas_per_server,
            )?;
            if let (ClientAuth::Password, Some((name, description))) = (spec.client_auth, &spec.default_group) {
                tx.insert(&openvgw_core::model::UserGroup {
                    id: ctx.new_id(Kind::UserGroup),
                    scope: ctx.scope.clone(),
                    server_id: server.id.clone(),
                    name: name.clone(),
                    description: description.clone(),
                    builtin: true,
                    created_at: now,
                    updated_at: now,
                })?;
            }
            bump(tx, gw)?;
            Ok(server)
        })
    }

    /// Applies the changes; returns the server with its gateway as they now read. A rename alone neither waits for
    /// the gateway nor reconfigures it.
    pub fn modify_ssl_server(
        &self,
        ctx: &Ctx,
        id: &str,
        changes: SslServerChanges,
    ) -> Result<(SslVpnServer, VpnGateway)> {
        self.mutate(ctx, |tx| {
            let before: SslVpnServer = tx.require(&ctx.scope, id)?;
            let mut server = before.clone();
            changes.apply(&mut server)?;
            if server.client_auth != before.client_auth {
                crate::clients::check_auth_switch(tx, &ctx.scope, &server)?;
            }
            if server.client_ip_pool != before.client_ip_pool {
                crate::clients::readdress_users(tx, &ctx.scope, &server)?;
            }
            let gw: VpnGateway = tx.require(&ctx.scope, &server.gateway_id)?;
            if changes_more_than(&before, &server, |probe, after| probe.name = after.name.clone())? {
                let gw = gateway_for_change(tx, ctx, &server.gateway_id)?;
                server.updated_at = now_ms();
                tx.update(&server)?;
                let gw = bump(tx, gw)?;
                return Ok((server, gw));
            }
            if server.name != before.name {
                server.updated_at = now_ms();
                tx.update(&server)?;
            }
            Ok((server, gw))
        })
    }

    pub fn list_ssl_servers(
        &self,
        scope: &Scope,
        f: &SslServerFilter,
        page: &PageRequest,
    ) -> Result<Page<(SslVpnServer, VpnGateway)>> {
        self.read(|tx| {
            let q = ListQuery {
                scope: Some(scope),
                id: f.server_id.as_deref(),
                parent_id: f.gateway_id.as_deref(),
                name: f.name.as_deref(),
                ..Default::default()
            };
            tx.list::<SslVpnServer>(&q, page)?.try_map(|s| {
                let gw: VpnGateway = tx.require(scope, &s.gateway_id)?;
                Ok((s, gw))
            })
        })
    }

    pub fn delete_ssl_server(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let server: SslVpnServer = tx.require(&ctx.scope, id)?;
            let gw = gateway_for_change(tx, ctx, &server.gateway_id)?;
            tx.delete_tree(Kind::SslVpnServer, id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    pub fn create_client_cert(&self, ctx: &Ctx, server_id: &str, name: Option<String>) -> Result<SslVpnClientCert> {
        self.mutate(ctx, |tx| {
            let server: SslVpnServer = tx.require(&ctx.scope, server_id)?;
            // The gateway's client list changes (sessions per certificate, revocation on delete).
            let gw = gateway_for_change(tx, ctx, &server.gateway_id)?;
            quota(
                tx.count::<SslVpnClientCert>(&ListQuery::children_of(&ctx.scope, server_id))?,
                self.config.quotas.ssl_client_certs_per_server,
                Quota::SslClientCerts,
            )?;
            let id = ctx.new_id(Kind::SslVpnClientCert);
            let issued = openvgw_pki::issue_client(&ca_of(&server), &id, CLIENT_CERT_DAYS).map_err(pki_err)?;
            let cert = SslVpnClientCert {
                name: name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: ctx.scope.clone(),
                server_id: server.id.clone(),
                gateway_id: server.gateway_id.clone(),
                cert_pem: issued.cert_pem,
                key_pem: Secret::new(issued.key_pem),
                serial_hex: issued.serial_hex,
                not_after: issued.not_after_unix * 1000,
                created_at: now_ms(),
            };
            tx.insert(&cert)?;
            bump(tx, gw)?;
            Ok(cert)
        })
    }

    /// Renames a client certificate: nothing on the gateway changes, so it neither waits nor reconfigures.
    pub fn rename_client_cert(&self, ctx: &Ctx, id: &str, name: Option<String>) -> Result<SslVpnClientCert> {
        self.mutate(ctx, |tx| {
            let mut cert: SslVpnClientCert = tx.require(&ctx.scope, id)?;
            if let Some(n) = name {
                cert.name = n;
                tx.update(&cert)?;
            }
            Ok(cert)
        })
    }

    pub fn list_client_certs(
        &self,
        scope: &Scope,
        f: &ClientCertFilter,
        page: &PageRequest,
    ) -> Result<Page<SslVpnClientCert>> {
        self.read(|tx| {
            let q = ListQuery {
                scope: Some(scope),
                id: f.cert_id.as_deref(),
                parent_id: f.server_id.as_deref(),
                name: f.name.as_deref(),
                ..Default::default()
            };
            tx.list(&q, page)
        })
    }

    pub fn client_bundle(&self, scope: &Scope, id: &str) -> Result<ClientBundle> {
        self.read(|tx| {
            let cert: SslVpnClientCert = tx.require(scope, id)?;
            let server: SslVpnServer = tx.require(scope, &cert.server_id)?;
            let gw: VpnGateway = tx.require(scope, &server.gateway_id)?;
            let host = gw.primary_ip().map(|a| a.to_string()).unwrap_or_default();
            let client_config = openvgw_pki::openvpn_client_config(&openvgw_pki::OpenVpnClientProfile {
                remote_host: &host,
                port: server.port,
                proto_udp: server.transport == Transport::Udp,
                cipher: openvgw_pki::cipher_name(server.cipher),
                compress: server.compress,
                ca_pem: &server.ca_cert_pem,
                cert_pem: &cert.cert_pem,
                key_pem: cert.key_pem.expose(),
            });
            Ok(ClientBundle { ca_cert_pem: server.ca_cert_pem, client_config, cert })
        })
    }

    /// Deletes a client certificate and revokes it: its serial joins the server's CRL.
    pub fn delete_client_cert(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let cert: SslVpnClientCert = tx.require(&ctx.scope, id)?;
            let mut server: SslVpnServer = tx.require(&ctx.scope, &cert.server_id)?;
            let gw = gateway_for_change(tx, ctx, &server.gateway_id)?;
            server.revoked_serials.push(cert.serial_hex.clone());
            server.revoked_client_ids.push(cert.id.clone());
            server.crl_number += 1;
            tx.update(&server)?;
            tx.delete_tree(Kind::SslVpnClientCert, id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    /// The live client sessions of a gateway's SSL-VPN servers.
    pub async fn client_sessions(
        &self,
        scope: &Scope,
        gateway_id: &str,
    ) -> Result<Vec<openvgw_dataplane::ClientSession>> {
        let gw: VpnGateway = self.read(|tx| tx.require(scope, gateway_id))?;
        self.driver.sessions(&gw.id).await.map_err(|e| Error::internal(format!("data plane: {e}")))
    }

    /// Ends one client session of a gateway.
    pub async fn disconnect_session(&self, scope: &Scope, gateway_id: &str, session_id: &str) -> Result<()> {
        let gw: VpnGateway = self.read(|tx| tx.require(scope, gateway_id))?;
        match self.driver.disconnect(&gw.id, session_id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::not_found(Kind::ClientSession, session_id)),
            Err(e) => Err(Error::internal(format!("data plane: {e}"))),
        }
    }

    /// Log lines of an SSL-VPN server (optionally only those mentioning one client certificate) in `[from, to]`
    /// (unix seconds).
    pub async fn ssl_server_logs(
        &self,
        scope: &Scope,
        server_id: &str,
        cert_id: Option<&str>,
        from_s: i64,
        to_s: i64,
        page: &PageRequest,
    ) -> Result<Page<String>> {
        let server: SslVpnServer = self.read(|tx| tx.require(scope, server_id))?;
        if let Some(c) = cert_id {
            let _: SslVpnClientCert = self.read(|tx| tx.require(scope, c))?;
        }
        let lines = self
            .driver
            .ssl_server_logs(&server.gateway_id, server_id, from_s, to_s)
            .await
            .map_err(|e| Error::internal(format!("data plane: {e}")))?;
        let lines: Vec<String> = lines.into_iter().filter(|l| cert_id.is_none_or(|c| l.contains(c))).collect();
        Ok(Page::of_vec(lines, page, |l| openvgw_core::Cursor(l.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_must_not_overlap_local_subnets() {
        let locals: Vec<Ipv4Net> = vec!["10.0.0.0/8".parse().expect("cidr")];
        assert!(check_pool(&"192.168.1.0/24".parse().expect("cidr"), &locals).is_ok());
        assert!(check_pool(&"10.1.0.0/24".parse().expect("cidr"), &locals).is_err());
        assert!(check_pool(&"0.0.0.0/0".parse().expect("cidr"), &locals).is_err());
    }
}
