//! SSL-VPN servers (a CA and server certificate each), client certificates (issued by that CA, revoked through the
//! CRL when deleted) and server logs.

use ipnet::Ipv4Net;
use openvgw_core::model::{Scope, SslVpnClientCert, SslVpnServer, VpnGateway};
use openvgw_core::{now_ms, validate, Error, Field, Kind, Quota, Result};
use openvgw_store::ListQuery;

use crate::{bump, gateway_for_change, quota, Ctx, Listed, Page, Service};

/// Ports the gateway itself uses (IKE, management, DNS, …), as Alibaba documents them.
const RESERVED_PORTS: &[u16] = &[22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, 4500];
const CIPHERS: &[&str] = &["AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "none"];
/// Client certificates are valid three years.
const CLIENT_CERT_DAYS: u32 = 3 * 365;
const EXPIRING_SOON_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Default)]
pub struct SslServerSpec {
    pub name: Option<String>,
    pub client_ip_pool: Option<String>,
    pub local_subnet: Option<String>,
    pub proto: Option<String>,
    pub cipher: Option<String>,
    pub port: Option<i64>,
    pub compress: Option<bool>,
    pub enable_multi_factor_auth: Option<bool>,
    pub idaas_instance_id: Option<String>,
    pub idaas_region_id: Option<String>,
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

/// A client certificate with everything a client needs (DescribeSslVpnClientCert).
#[derive(Debug, Clone)]
pub struct ClientBundle {
    pub cert: SslVpnClientCert,
    pub ca_cert_pem: String,
    pub client_config: String,
}

/// Validates a client pool against the local subnets: mask /16../29 and no overlap.
pub(crate) fn check_pool(pool: &str, locals: &[Ipv4Net]) -> Result<Ipv4Net> {
    let net = validate::cidr(pool, Field::ClientIpPool)?;
    if !(16..=29).contains(&net.prefix_len()) {
        return Err(Error::invalid(Field::ClientIpPool, format!("({pool}) mask must be between 16 and 29")));
    }
    if let Some(l) = locals.iter().find(|l| validate::overlaps(l, &net)) {
        return Err(Error::invalid(Field::ClientIpPool, format!("({pool}) overlaps the local subnet {l}")));
    }
    Ok(net)
}

/// Updates a server's local subnets and client pool, then checks the pair (client-to-site servers).
pub(crate) fn set_subnets(
    local: &mut String,
    pool: &mut String,
    new_local: Option<&str>,
    new_pool: Option<&str>,
) -> Result<()> {
    if let Some(l) = new_local {
        *local = validate::cidr_list(l, Field::LocalSubnet)?.1;
    }
    if let Some(p) = new_pool {
        *pool = p.trim().to_string();
    }
    let (locals, _) = validate::cidr_list(local, Field::LocalSubnet)?;
    check_pool(pool, &locals)?;
    Ok(())
}

pub fn cert_status(end_time_ms: i64, now: i64) -> &'static str {
    if end_time_ms <= now {
        "expired"
    } else if end_time_ms - now < EXPIRING_SOON_MS {
        "expiring-soon"
    } else {
        "normal"
    }
}

fn pki_err(e: openvgw_pki::PkiError) -> Error {
    Error::internal(format!("pki: {e}"))
}

impl Service {
    pub fn create_ssl_server(&self, ctx: &Ctx, gateway_id: &str, spec: SslServerSpec) -> Result<SslVpnServer> {
        self.check_region(&ctx.scope.region)?;
        let mut server = SslVpnServer {
            id: Kind::SslVpnServer.new_id(),
            scope: ctx.scope.clone(),
            gateway_id: gateway_id.to_string(),
            name: String::new(),
            client_ip_pool: String::new(),
            local_subnet: String::new(),
            proto: "UDP".into(),
            cipher: "AES-128-CBC".into(),
            port: 1194,
            compress: false,
            enable_multi_factor_auth: false,
            idaas_instance_id: String::new(),
            idaas_region_id: String::new(),
            created_at: now_ms(),
            ca_cert_pem: String::new(),
            ca_key_pem: String::new(),
            server_cert_pem: String::new(),
            server_key_pem: String::new(),
            revoked_serials: vec![],
            crl_number: 0,
            connections: 0,
        };
        server.name = server.id.clone();
        apply_spec(&mut server, &spec)?;
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, &ctx.scope, gateway_id)?;
            if !gw.enable_ssl {
                return Err(Error::SslVpnDisabled);
            }
            let siblings = ListQuery { scope: Some(&ctx.scope), parent_id: Some(gateway_id), ..Default::default() };
            quota(tx.count::<SslVpnServer>(&siblings)?, 1, Quota::SslVpnServers)?;
            let ca = openvgw_pki::new_ca(&format!("openvgw {}", server.id)).map_err(pki_err)?;
            let ip = gw.internet_ip.parse().map_err(Error::internal)?;
            let leaf = openvgw_pki::issue_server(&ca, &gw.internet_ip, &[ip]).map_err(pki_err)?;
            let mut server = server.clone();
            server.ca_cert_pem = ca.cert_pem;
            server.ca_key_pem = ca.key_pem;
            server.server_cert_pem = leaf.cert_pem;
            server.server_key_pem = leaf.key_pem;
            tx.insert(&server)?;
            bump(tx, gw)?;
            Ok(server)
        })
    }

    /// Applies the changes; returns the server with its gateway as they now read.
    pub fn modify_ssl_server(&self, ctx: &Ctx, id: &str, spec: SslServerSpec) -> Result<(SslVpnServer, VpnGateway)> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let mut server: SslVpnServer = tx.require(&ctx.scope, id)?;
            let gw = gateway_for_change(tx, &ctx.scope, &server.gateway_id)?;
            let before = serde_json::to_value(&server).map_err(Error::internal)?;
            apply_spec(&mut server, &spec)?;
            if serde_json::to_value(&server).map_err(Error::internal)? != before {
                tx.update(&server)?;
                bump(tx, gw.clone())?;
            }
            Ok((server, gw))
        })
    }

    pub fn list_ssl_servers(
        &self,
        scope: &Scope,
        f: &SslServerFilter,
        page: Page,
    ) -> Result<Listed<(SslVpnServer, VpnGateway)>> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let q = ListQuery {
                scope: Some(scope),
                id: f.server_id.as_deref(),
                parent_id: f.gateway_id.as_deref(),
                name: f.name.as_deref(),
                offset: page.offset(),
                limit: Some(page.size),
                ..Default::default()
            };
            let (servers, total) = tx.list::<SslVpnServer>(&q)?;
            let items = servers
                .into_iter()
                .map(|s| {
                    let gw: VpnGateway = tx.require(scope, &s.gateway_id)?;
                    Ok((s, gw))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Listed { items, total })
        })
    }

    pub fn delete_ssl_server(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let server: SslVpnServer = tx.require(&ctx.scope, id)?;
            let gw = gateway_for_change(tx, &ctx.scope, &server.gateway_id)?;
            for cert in tx.children_unscoped::<SslVpnClientCert>(id)? {
                tx.delete(Kind::SslVpnClientCert, &cert.id)?;
            }
            tx.delete(Kind::SslVpnServer, id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    pub fn create_client_cert(&self, ctx: &Ctx, server_id: &str, name: Option<String>) -> Result<SslVpnClientCert> {
        self.check_region(&ctx.scope.region)?;
        if let Some(n) = &name {
            validate::name(n, 2, 128, true)?;
        }
        self.mutate(ctx, |tx| {
            let server: SslVpnServer = tx.require(&ctx.scope, server_id)?;
            // The gateway's client list changes (sessions per certificate, revocation on delete).
            let gw = gateway_for_change(tx, &ctx.scope, &server.gateway_id)?;
            let siblings = ListQuery { scope: Some(&ctx.scope), parent_id: Some(server_id), ..Default::default() };
            quota(
                tx.count::<SslVpnClientCert>(&siblings)?,
                self.config.quotas.ssl_client_certs_per_server,
                Quota::SslClientCerts,
            )?;
            let id = Kind::SslVpnClientCert.new_id();
            let ca =
                openvgw_pki::CaMaterial { cert_pem: server.ca_cert_pem.clone(), key_pem: server.ca_key_pem.clone() };
            let issued = openvgw_pki::issue_client(&ca, &id, CLIENT_CERT_DAYS).map_err(pki_err)?;
            let cert = SslVpnClientCert {
                name: name.clone().unwrap_or_else(|| id.clone()),
                id,
                scope: ctx.scope.clone(),
                server_id: server.id.clone(),
                gateway_id: server.gateway_id.clone(),
                cert_pem: issued.cert_pem,
                key_pem: issued.key_pem,
                serial_hex: issued.serial_hex,
                end_time: issued.not_after_unix * 1000,
                created_at: now_ms(),
            };
            tx.insert(&cert)?;
            bump(tx, gw)?;
            Ok(cert)
        })
    }

    pub fn rename_client_cert(&self, ctx: &Ctx, id: &str, name: Option<String>) -> Result<SslVpnClientCert> {
        self.check_region(&ctx.scope.region)?;
        if let Some(n) = &name {
            validate::name(n, 2, 128, true)?;
        }
        self.mutate(ctx, |tx| {
            let mut cert: SslVpnClientCert = tx.require(&ctx.scope, id)?;
            gateway_for_change(tx, &ctx.scope, &cert.gateway_id)?;
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
        page: Page,
    ) -> Result<Listed<SslVpnClientCert>> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let q = ListQuery {
                scope: Some(scope),
                id: f.cert_id.as_deref(),
                parent_id: f.server_id.as_deref(),
                name: f.name.as_deref(),
                offset: page.offset(),
                limit: Some(page.size),
                ..Default::default()
            };
            let (items, total) = tx.list::<SslVpnClientCert>(&q)?;
            Ok(Listed { items, total })
        })
    }

    pub fn client_bundle(&self, scope: &Scope, id: &str) -> Result<ClientBundle> {
        self.check_region(&scope.region)?;
        self.read(|tx| {
            let cert: SslVpnClientCert = tx.require(scope, id)?;
            let server: SslVpnServer = tx.require(scope, &cert.server_id)?;
            let gw: VpnGateway = tx.require(scope, &server.gateway_id)?;
            let client_config = openvgw_pki::openvpn_client_config(&openvgw_pki::OpenVpnClientProfile {
                remote_host: &gw.internet_ip,
                port: server.port,
                proto_udp: server.proto == "UDP",
                cipher: &server.cipher,
                compress: server.compress,
                ca_pem: &server.ca_cert_pem,
                cert_pem: &cert.cert_pem,
                key_pem: &cert.key_pem,
            });
            Ok(ClientBundle { ca_cert_pem: server.ca_cert_pem, client_config, cert })
        })
    }

    /// Deletes a client certificate and revokes it: its serial joins the server's CRL.
    pub fn delete_client_cert(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.check_region(&ctx.scope.region)?;
        self.mutate(ctx, |tx| {
            let cert: SslVpnClientCert = tx.require(&ctx.scope, id)?;
            let mut server: SslVpnServer = tx.require(&ctx.scope, &cert.server_id)?;
            let gw = gateway_for_change(tx, &ctx.scope, &server.gateway_id)?;
            server.revoked_serials.push(cert.serial_hex.clone());
            server.crl_number += 1;
            tx.update(&server)?;
            tx.delete(Kind::SslVpnClientCert, id)?;
            bump(tx, gw)?;
            Ok(())
        })
    }

    /// The CRL (PEM) for a server's current revocations.
    pub fn crl_of(server: &SslVpnServer) -> Result<String> {
        let ca = openvgw_pki::CaMaterial { cert_pem: server.ca_cert_pem.clone(), key_pem: server.ca_key_pem.clone() };
        openvgw_pki::crl(&ca, &server.revoked_serials, server.crl_number.max(1)).map_err(pki_err)
    }

    /// Log lines of an SSL-VPN server (optionally only those mentioning one client certificate) in `[from, to]`
    /// (unix seconds); one page and the total.
    pub async fn ssl_server_logs(
        &self,
        scope: &Scope,
        server_id: &str,
        cert_id: Option<&str>,
        from_s: i64,
        to_s: i64,
        page: Page,
    ) -> Result<Listed<String>> {
        self.check_region(&scope.region)?;
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
        let total = lines.len() as u64;
        let items = lines.into_iter().skip(page.offset() as usize).take(page.size as usize).collect();
        Ok(Listed { items, total })
    }
}

fn apply_spec(s: &mut SslVpnServer, spec: &SslServerSpec) -> Result<()> {
    if let Some(n) = &spec.name {
        validate::name(n, 2, 128, true)?;
        s.name = n.clone();
    }
    set_subnets(
        &mut s.local_subnet,
        &mut s.client_ip_pool,
        spec.local_subnet.as_deref(),
        spec.client_ip_pool.as_deref(),
    )?;
    if let Some(p) = &spec.proto {
        s.proto = match p.to_ascii_uppercase().as_str() {
            "UDP" => "UDP".into(),
            "TCP" => "TCP".into(),
            _ => return Err(Error::invalid(Field::Proto, "must be UDP or TCP")),
        };
    }
    if let Some(c) = &spec.cipher {
        s.cipher =
            CIPHERS.iter().find(|k| k.eq_ignore_ascii_case(c)).map(|k| k.to_string()).ok_or_else(|| {
                Error::invalid(Field::Cipher, "must be AES-128-CBC, AES-192-CBC, AES-256-CBC or none")
            })?;
    }
    if let Some(p) = spec.port {
        let port =
            u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| Error::invalid(Field::Port, "must be 1-65535"))?;
        if RESERVED_PORTS.contains(&port) {
            return Err(Error::invalid(Field::Port, format!("port {port} is reserved")));
        }
        s.port = port;
    }
    if let Some(c) = spec.compress {
        s.compress = c;
    }
    if let Some(m) = spec.enable_multi_factor_auth {
        s.enable_multi_factor_auth = m;
    }
    if let Some(v) = &spec.idaas_instance_id {
        s.idaas_instance_id = v.clone();
    }
    if let Some(v) = &spec.idaas_region_id {
        s.idaas_region_id = v.clone();
    }
    if s.enable_multi_factor_auth && s.idaas_instance_id.is_empty() {
        return Err(Error::invalid(
            Field::Name,
            "IDaaSInstanceId is required when multi-factor authentication is enabled",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools() {
        let locals = vec!["10.0.0.0/8".parse().expect("cidr")];
        assert!(check_pool("192.168.1.0/24", &locals).is_ok());
        assert!(check_pool("10.1.0.0/24", &locals).is_err());
        assert!(check_pool("192.168.1.0/30", &locals).is_err());
        assert!(check_pool("192.0.0.0/8", &locals).is_err());
    }

    #[test]
    fn status_by_expiry() {
        assert_eq!(cert_status(10, 20), "expired");
        assert_eq!(cert_status(20 + EXPIRING_SOON_MS - 1, 20), "expiring-soon");
        assert_eq!(cert_status(20 + EXPIRING_SOON_MS + 1, 20), "normal");
    }
}
