//! SSL-VPN servers, client certificates and server logs (seed section 8).

use std::sync::Arc;

use openvgw_control::ssl::{ClientCertFilter, NewSslServer, SslServerChanges, SslServerFilter};
use openvgw_core::model::{ClientAuth, Extensions, SslVpnClientCert, SslVpnServer, VpnGateway};
use openvgw_core::{now_ms, Error, Field, Rule};
use serde::Serialize;

use super::{cidrs, name, Empty, Paged, WireAddr};
use crate::action::Call;
use crate::defaults::{self, SslServerMfa};
use crate::error::WireError;
use crate::spelling;

/// Ports the gateway itself uses (IKE, management, DNS, …), as Alibaba documents them.
const RESERVED_PORTS: &[u16] = &[22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, 4500];
const EXPIRING_SOON_MS: i64 = 7 * 24 * 3600 * 1000;

fn cert_status(not_after_ms: i64, now: i64) -> &'static str {
    if not_after_ms <= now {
        "expired"
    } else if not_after_ms - now < EXPIRING_SOON_MS {
        "expiring-soon"
    } else {
        "normal"
    }
}

/// Client pools are /16 to /29.
fn pool(c: &Call) -> Result<Option<ipnet::Ipv4Net>, WireError> {
    let Some(v) = c.p.get("ClientIpPool") else {
        return Ok(None);
    };
    let net = openvgw_core::validate::cidr(v, Field::ClientIpPool).map_err(|e| c.core(e))?;
    if !(16..=29).contains(&net.prefix_len()) {
        return Err(c.core(Error::invalid(Field::ClientIpPool, Rule::PrefixLength { min: 16, max: 29 })));
    }
    Ok(Some(net))
}

fn port(c: &Call) -> Result<Option<u16>, WireError> {
    let Some(p) = c.p.int("Port")? else {
        return Ok(None);
    };
    let port = u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| c.core(Error::invalid(Field::Port, Rule::Range { min: 1, max: 65535 })))?;
    if RESERVED_PORTS.contains(&port) {
        return Err(c.core(Error::invalid(Field::Port, Rule::Reserved)));
    }
    Ok(Some(port))
}

/// Proto, Cipher, Port, Compress as given (absent ones unchanged / defaulted by the caller).
struct Options {
    transport: Option<openvgw_core::crypto::Transport>,
    cipher: Option<openvgw_core::crypto::SslCipher>,
    port: Option<u16>,
    compress: Option<bool>,
}

fn options(c: &Call) -> Result<Options, WireError> {
    Ok(Options {
        transport: c
            .p
            .get("Proto")
            .map(|v| spelling::transport::parse(v).ok_or_else(|| WireError::invalid("Proto", "must be UDP or TCP")))
            .transpose()?,
        cipher: c
            .p
            .get("Cipher")
            .map(|v| {
                spelling::cipher::parse(v).ok_or_else(|| {
                    WireError::invalid("Cipher", "must be AES-128-CBC, AES-192-CBC, AES-256-CBC or none")
                })
            })
            .transpose()?,
        port: port(c)?,
        compress: c.p.bool("Compress")?,
    })
}

/// IDaaS multi-factor authentication: an instance id is required while it is on.
fn mfa_update(c: &Call) -> Result<Option<impl Fn(&mut SslServerMfa) + Clone>, WireError> {
    let enable = c.p.bool("EnableMultiFactorAuth")?;
    let instance = c.p.string("IDaaSInstanceId");
    let region = c.p.string("IDaaSRegionId");
    if enable.is_none() && instance.is_none() && region.is_none() {
        return Ok(None);
    }
    Ok(Some(move |m: &mut SslServerMfa| {
        if let Some(e) = enable {
            m.enable_multi_factor_auth = e;
        }
        if let Some(i) = &instance {
            m.idaas_instance_id = i.clone();
        }
        if let Some(r) = &region {
            m.idaas_region_id = r.clone();
        }
    }))
}

fn check_mfa(m: &SslServerMfa) -> openvgw_core::Result<()> {
    if m.enable_multi_factor_auth && m.idaas_instance_id.is_empty() {
        return Err(Error::invalid(Field::MultiFactorAuth, Rule::Required));
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Created {
    ssl_vpn_server_id: String,
    name: String,
}

pub fn create_server(c: &Call) -> Result<Created, WireError> {
    c.p.req("ClientIpPool")?;
    c.p.req("LocalSubnet")?;
    let gateway_id = c.p.req("VpnGatewayId")?;
    let client_ip_pool = pool(c)?.ok_or_else(|| WireError::missing("ClientIpPool"))?;
    let local_subnets =
        cidrs(c, "LocalSubnet", Field::LocalSubnets)?.ok_or_else(|| WireError::missing("LocalSubnet"))?;
    let name = name(c, "Name", 2, 128, true)?;
    let o = options(c)?;
    let mut mfa = SslServerMfa::default();
    if let Some(update) = mfa_update(c)? {
        update(&mut mfa);
    }
    check_mfa(&mfa).map_err(|e| c.core(e))?;
    let spec = NewSslServer {
        name,
        client_ip_pool,
        local_subnets,
        transport: o.transport.unwrap_or(defaults::SSL_TRANSPORT),
        cipher: o.cipher.unwrap_or(defaults::SSL_CIPHER),
        port: o.port.unwrap_or(defaults::SSL_PORT),
        compress: o.compress.unwrap_or(false),
        client_auth: ClientAuth::Certificate,
        dns_servers: vec![],
        ext: Extensions::of(&mfa),
        default_group: None,
        client_cas: vec![],
    };
    let s = c.svc.create_ssl_server(&c.ctx()?, gateway_id, spec).map_err(|e| c.core(e))?;
    Ok(Created { ssl_vpn_server_id: s.id, name: s.name })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerView {
    ssl_vpn_server_id: String,
    vpn_gateway_id: String,
    region_id: String,
    name: String,
    client_ip_pool: String,
    local_subnet: String,
    proto: &'static str,
    cipher: &'static str,
    port: u16,
    compress: bool,
    connections: u32,
    max_connections: u32,
    internet_ip: WireAddr,
    create_time: i64,
    enable_multi_factor_auth: bool,
    #[serde(rename = "IDaaSInstanceId")]
    idaas_instance_id: String,
    #[serde(rename = "IDaaSRegionId")]
    idaas_region_id: String,
}

fn server_view(s: &SslVpnServer, gw: &VpnGateway) -> ServerView {
    let mfa: SslServerMfa = s.ext.get();
    ServerView {
        ssl_vpn_server_id: s.id.clone(),
        vpn_gateway_id: s.gateway_id.clone(),
        region_id: s.scope.region.clone(),
        name: s.name.clone(),
        client_ip_pool: s.client_ip_pool.to_string(),
        local_subnet: openvgw_core::model::join_nets(&s.local_subnets),
        proto: spelling::transport::render(s.transport),
        cipher: spelling::cipher::render(s.cipher),
        port: s.port,
        compress: s.compress,
        connections: s.connections,
        max_connections: gw.ssl_max_connections,
        internet_ip: WireAddr(gw.primary_ip()),
        create_time: s.created_at,
        enable_multi_factor_auth: mfa.enable_multi_factor_auth,
        idaas_instance_id: mfa.idaas_instance_id,
        idaas_region_id: mfa.idaas_region_id,
    }
}

pub fn modify_server(c: &Call) -> Result<ServerView, WireError> {
    let id = c.p.req("SslVpnServerId")?;
    let client_ip_pool = pool(c)?;
    let local_subnets = cidrs(c, "LocalSubnet", Field::LocalSubnets)?;
    let name = name(c, "Name", 2, 128, true)?;
    let o = options(c)?;
    let ext = mfa_update(c)?.map(|update| -> openvgw_control::ssl::ExtUpdate {
        Arc::new(move |ext: &mut Extensions| {
            let mut m: SslServerMfa = ext.get();
            update(&mut m);
            check_mfa(&m)?;
            ext.set(&m);
            Ok(())
        })
    });
    let changes = SslServerChanges {
        name,
        client_ip_pool,
        local_subnets,
        transport: o.transport,
        cipher: o.cipher,
        port: o.port,
        compress: o.compress,
        client_auth: None,
        dns_servers: None,
        ext,
    };
    let (s, gw) = c.svc.modify_ssl_server(&c.ctx()?, id, changes).map_err(|e| c.core(e))?;
    Ok(server_view(&s, &gw))
}

#[derive(Serialize)]
pub struct ServerList {
    #[serde(rename = "SslVpnServer")]
    ssl_vpn_server: Vec<ServerView>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServersListed {
    ssl_vpn_servers: ServerList,
}

pub fn describe_servers(c: &Call) -> Result<Paged<ServersListed>, WireError> {
    let page = c.p.page()?;
    let f = SslServerFilter {
        server_id: c.p.string("SslVpnServerId"),
        gateway_id: c.p.string("VpnGatewayId"),
        name: c.p.string("Name"),
    };
    let listed = c.svc.list_ssl_servers(c.scope, &f, &page.request()).map_err(|e| c.core(e))?;
    let items = listed.items.iter().map(|(s, g)| server_view(s, g)).collect();
    Ok(Paged::new(ServersListed { ssl_vpn_servers: ServerList { ssl_vpn_server: items } }, page, listed.total))
}

pub fn delete_server(c: &Call) -> Result<Empty, WireError> {
    c.svc.delete_ssl_server(&c.ctx()?, c.p.req("SslVpnServerId")?).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertCreated {
    ssl_vpn_client_cert_id: String,
    name: String,
}

pub fn create_cert(c: &Call) -> Result<CertCreated, WireError> {
    let server = c.p.req("SslVpnServerId")?;
    let name = name(c, "Name", 2, 128, true)?;
    let cert = c.svc.create_client_cert(&c.ctx()?, server, name).map_err(|e| c.core(e))?;
    Ok(CertCreated { ssl_vpn_client_cert_id: cert.id, name: cert.name })
}

pub fn rename_cert(c: &Call) -> Result<CertCreated, WireError> {
    let id = c.p.req("SslVpnClientCertId")?;
    let name = name(c, "Name", 2, 128, true)?;
    let cert = c.svc.rename_client_cert(&c.ctx()?, id, name).map_err(|e| c.core(e))?;
    Ok(CertCreated { ssl_vpn_client_cert_id: cert.id, name: cert.name })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertView {
    ssl_vpn_client_cert_id: String,
    ssl_vpn_server_id: String,
    name: String,
    region_id: String,
    status: &'static str,
    create_time: i64,
    end_time: i64,
}

fn cert_view(c: &SslVpnClientCert, now: i64) -> CertView {
    CertView {
        ssl_vpn_client_cert_id: c.id.clone(),
        ssl_vpn_server_id: c.server_id.clone(),
        name: c.name.clone(),
        region_id: c.scope.region.clone(),
        status: cert_status(c.not_after, now),
        create_time: c.created_at,
        end_time: c.not_after,
    }
}

#[derive(Serialize)]
pub struct CertList {
    #[serde(rename = "SslVpnClientCertKey")]
    ssl_vpn_client_cert_key: Vec<CertView>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertsListed {
    ssl_vpn_client_cert_keys: CertList,
}

pub fn describe_certs(c: &Call) -> Result<Paged<CertsListed>, WireError> {
    let page = c.p.page()?;
    let f = ClientCertFilter {
        server_id: c.p.string("SslVpnServerId"),
        cert_id: c.p.string("SslVpnClientCertId"),
        name: c.p.string("Name"),
    };
    let listed = c.svc.list_client_certs(c.scope, &f, &page.request()).map_err(|e| c.core(e))?;
    let now = now_ms();
    let items = listed.items.iter().map(|x| cert_view(x, now)).collect();
    Ok(Paged::new(
        CertsListed { ssl_vpn_client_cert_keys: CertList { ssl_vpn_client_cert_key: items } },
        page,
        listed.total,
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Bundle {
    #[serde(flatten)]
    cert: CertView,
    ca_cert: String,
    client_cert: String,
    client_key: String,
    client_config: String,
}

pub fn describe_cert(c: &Call) -> Result<Bundle, WireError> {
    let b = c.svc.client_bundle(c.scope, c.p.req("SslVpnClientCertId")?).map_err(|e| c.core(e))?;
    Ok(Bundle {
        cert: cert_view(&b.cert, now_ms()),
        ca_cert: b.ca_cert_pem,
        client_cert: b.cert.cert_pem.clone(),
        client_key: b.cert.key_pem.expose().to_string(),
        client_config: b.client_config,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogData {
    logs: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Logs {
    data: LogData,
    count: u64,
    is_completed: bool,
    page_number: u64,
    page_size: u64,
}

pub fn server_logs(c: &Call) -> Result<Logs, WireError> {
    let p = c.p;
    let server = p.req("VpnSslServerId")?;
    let (from, to, minutes) = (p.int("From")?, p.int("To")?, p.int("MinutePeriod")?);
    let now_s = now_ms() / 1000;
    let (from, to) = match (from, to, minutes) {
        (Some(f), Some(t), _) => (f, t),
        (Some(f), None, Some(m)) => (f, f.saturating_add(m.saturating_mul(60))),
        (None, Some(t), Some(m)) => (t.saturating_sub(m.saturating_mul(60)), t),
        (None, None, Some(m)) => (now_s.saturating_sub(m.saturating_mul(60)), now_s),
        (Some(_), None, None) => return Err(WireError::missing("To")),
        (None, Some(_), None) => return Err(WireError::missing("From")),
        (None, None, None) => return Err(WireError::missing("MinutePeriod")),
    };
    if from > to || minutes.is_some_and(|m| m <= 0) {
        return Err(WireError::invalid("From", "the time range is empty"));
    }
    let page = p.page()?;
    let request = page.request();
    let fut = c.svc.ssl_server_logs(c.scope, server, p.get("SslVpnClientCertId"), from, to, &request);
    let listed = tokio::runtime::Handle::current().block_on(fut).map_err(|e| c.core(e))?;
    Ok(Logs {
        data: LogData { logs: listed.items },
        count: listed.total,
        is_completed: true,
        page_number: page.number,
        page_size: page.size,
    })
}

pub fn delete_cert(c: &Call) -> Result<Empty, WireError> {
    c.svc.delete_client_cert(&c.ctx()?, c.p.req("SslVpnClientCertId")?).map_err(|e| c.core(e))?;
    Ok(Empty {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_by_expiry() {
        assert_eq!(cert_status(10, 20), "expired");
        assert_eq!(cert_status(20 + EXPIRING_SOON_MS - 1, 20), "expiring-soon");
        assert_eq!(cert_status(20 + EXPIRING_SOON_MS + 1, 20), "normal");
    }
}
