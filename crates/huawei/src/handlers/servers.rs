//! VPN servers of client-to-site gateways and their client CA certificates (reference 4.2.2).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_control::ssl::{NewSslServer, SslServerChanges, SslServerFilter};
use openvgw_core::crypto::{SslCipher, Transport};
use openvgw_core::model::{CertificateInfo, ClientAuth, ClientCa, Extensions, GatewayStatus, SslVpnServer, VpnGateway};
use openvgw_core::{Page, PageRequest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ext::ServerExt;
use crate::handlers::customer_gateways::certificate_id;
use crate::ops::{NoBody, NoContent, RequestIdOnly};
use crate::spelling;
use crate::wire::{self, one_of, PageInfo};

/// Blocks neither client pools nor pushed routes may use.
const UNAVAILABLE: &[&str] = &["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"];
const USER_GROUP: (&str, &str) = ("default", "Default user group");

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ServerCertificateRequest {
    pub id: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SslOptionsRequest {
    pub protocol: Option<String>,
    pub port: Option<u32>,
    pub encryption_algorithm: Option<String>,
    pub is_compressed: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientCaRequest {
    pub name: Option<String>,
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateServer {
    pub tunnel_protocol: Option<String>,
    pub client_cidr: String,
    pub local_subnets: Vec<String>,
    pub client_auth_type: Option<String>,
    pub server_certificate: Option<ServerCertificateRequest>,
    pub client_ca_certificates: Option<Vec<ClientCaRequest>>,
    pub ssl_options: Option<SslOptionsRequest>,
    pub dns_servers: Option<Vec<String>>,
    pub idp_name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBody {
    pub vpn_server: CreateServer,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UpdateServer {
    pub client_cidr: Option<String>,
    pub local_subnets: Option<Vec<String>>,
    pub server_certificate: Option<ServerCertificateRequest>,
    pub ssl_options: Option<SslOptionsRequest>,
    pub client_auth_type: Option<String>,
    pub dns_servers: Option<Vec<String>>,
    pub idp_name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBody {
    pub vpn_server: UpdateServer,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Id {
    pub id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IdOnly {
    pub vpn_server: Id,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerCertificateView {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub serial_number: String,
    pub expiration_time: String,
    pub signature_algorithm: String,
    pub source: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ClientCaView {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub serial_number: String,
    pub expiration_time: String,
    pub signature_algorithm: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SslOptionsView {
    pub protocol: &'static str,
    pub port: u16,
    pub encryption_algorithm: &'static str,
    pub authentication_algorithm: &'static str,
    pub is_compressed: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerView {
    pub id: String,
    pub p2c_vgw_id: String,
    pub client_cidr: String,
    pub local_subnets: Vec<String>,
    pub client_auth_type: &'static str,
    pub tunnel_protocol: &'static str,
    pub server_certificate: ServerCertificateView,
    pub client_ca_certificates: Vec<ClientCaView>,
    pub ssl_options: SslOptionsView,
    pub dns_servers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp_name: Option<String>,
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    pub vpn_servers: Vec<ServerView>,
    pub total_count: u64,
    pub page_info: PageInfo,
    pub request_id: String,
}

fn auth_word(a: ClientAuth) -> &'static str {
    match a {
        ClientAuth::Certificate => "CERT",
        ClientAuth::Password => "LOCAL_PASSWORD",
    }
}

/// A server is being created until its gateway has applied the generation that first carries it.
fn server_status(s: &SslVpnServer, gw: &VpnGateway) -> &'static str {
    if gw.applied_generation < s.since_generation {
        "PENDING_CREATE"
    } else if gw.status() == GatewayStatus::Updating {
        "PENDING_UPDATE"
    } else {
        "ACTIVE"
    }
}

pub fn ca_view(ca: &ClientCa) -> ClientCaView {
    ClientCaView {
        id: ca.id.clone(),
        name: ca.name.clone(),
        issuer: ca.certificate.issuer.clone(),
        subject: ca.certificate.subject.clone(),
        serial_number: wire::serial_decimal(&ca.certificate.serial),
        expiration_time: wire::ts_seconds(ca.certificate.not_after),
        signature_algorithm: ca.certificate.signature_algorithm.clone(),
        created_at: wire::ts(ca.created_at),
        updated_at: wire::ts(ca.updated_at),
    }
}

fn view(c: &Call, s: &SslVpnServer, gw: &VpnGateway) -> Result<ServerView, HwError> {
    let cert = wire::inspect("server_certificate", &s.server_cert_pem)?;
    let cas = c.svc.list_client_cas(c.scope()?, &s.id).map_err(|e| c.core(e))?;
    let ext: ServerExt = s.ext.get();
    Ok(ServerView {
        id: s.id.clone(),
        p2c_vgw_id: s.gateway_id.clone(),
        client_cidr: s.client_ip_pool.to_string(),
        local_subnets: s.local_subnets.iter().map(ToString::to_string).collect(),
        client_auth_type: auth_word(s.client_auth),
        tunnel_protocol: "SSL",
        server_certificate: ServerCertificateView {
            id: certificate_id(&cert.pem),
            name: format!("server-cert-{}", &cert.fingerprint[..4]),
            issuer: cert.issuer,
            subject: cert.subject,
            serial_number: cert.serial_decimal,
            expiration_time: wire::ts_seconds(cert.not_after * 1000),
            signature_algorithm: cert.signature_algorithm,
            source: "SERVICE_SIGN",
        },
        client_ca_certificates: cas.iter().map(ca_view).collect(),
        ssl_options: SslOptionsView {
            protocol: "TCP",
            port: s.port,
            encryption_algorithm: wire::word_of(s.cipher, spelling::SSL_CIPHER),
            authentication_algorithm: spelling::ssl_auth(s.cipher),
            is_compressed: s.compress,
        },
        dns_servers: s.dns_servers.iter().map(ToString::to_string).collect(),
        idp_name: Some(ext.idp_name).filter(|n| !n.is_empty()),
        status: server_status(s, gw),
        created_at: wire::ts(s.created_at),
        updated_at: wire::ts(s.updated_at),
    })
}

fn unavailable(net: &Ipv4Net) -> bool {
    UNAVAILABLE.iter().filter_map(|r| r.parse::<Ipv4Net>().ok()).any(|r| openvgw_core::validate::overlaps(net, &r))
}

/// `a.b.c.d/m`; host bits are allowed (the reference's own examples set them) and dropped.
fn cidr(v: &str) -> Option<Ipv4Net> {
    v.trim().parse::<Ipv4Net>().ok().map(|n| n.trunc())
}

fn client_cidr(v: &str, max_clients: u32) -> Result<Ipv4Net, HwError> {
    let net = cidr(v).ok_or_else(|| HwError::new(400, "VPN.1103", format!("CIDR block {v} is invalid.")))?;
    if !(16..=26).contains(&net.prefix_len()) {
        return Err(HwError::new(
            400,
            "VPN.1107",
            "The mask length of the client CIDR block must in the range of 16 to 26.",
        ));
    }
    if unavailable(&net) || net.network().is_link_local() {
        return Err(HwError::new(400, "VPN.1104", format!("CIDR block {v} is unavailable.")));
    }
    // Each client takes a /30; the first is the server's.
    let size = 1u64 << (32 - u32::from(net.prefix_len()));
    if size <= 4 * u64::from(max_clients) {
        return Err(HwError::new(
            400,
            "VPN.1108",
            "The number of IP addresses in the client CIDR block is less than the number of IP addresses required by gateway connections.",
        ));
    }
    Ok(net)
}

fn local_subnets(values: &[String]) -> Result<Vec<Ipv4Net>, HwError> {
    if values.is_empty() {
        return Err(HwError::new(400, "VPN.1118", "The local CIDR block cannot be empty."));
    }
    if values.len() > 20 {
        return Err(HwError::new(400, "VPN.1105", "The number of local subnets exceeds the upper limit."));
    }
    let mut out: Vec<Ipv4Net> = Vec::with_capacity(values.len());
    for v in values {
        let net = cidr(v).ok_or_else(|| HwError::new(400, "VPN.1103", format!("CIDR block {v} is invalid.")))?;
        if unavailable(&net) {
            return Err(HwError::new(400, "VPN.1104", format!("CIDR block {v} is unavailable.")));
        }
        if out.contains(&net) {
            return Err(HwError::new(400, "VPN.1106", format!("Duplicate local subnet: {v}.")));
        }
        out.push(net);
    }
    Ok(out)
}

fn pool_conflicts(pool: &Ipv4Net, locals: &[Ipv4Net]) -> Result<(), HwError> {
    match locals.iter().find(|l| openvgw_core::validate::overlaps(l, pool)) {
        Some(l) => Err(HwError::new(
            400,
            "VPN.1119",
            format!("The client CIDR block conflicts with the local CIDR block {l}."),
        )),
        None => Ok(()),
    }
}

fn dns_servers(values: &[String]) -> Result<Vec<Ipv4Addr>, HwError> {
    if values.len() > 2 {
        return Err(HwError::invalid("dns_servers: at most 2 addresses"));
    }
    values
        .iter()
        .map(|v| {
            v.parse::<Ipv4Addr>().map_err(|_| HwError::invalid(format!("dns_servers: {v} is not an IPv4 address")))
        })
        .collect()
}

/// The server certificate: openvgw signs one itself (`SERVICE_SIGN`); it has no certificate manager to take one
/// from.
fn server_certificate(r: Option<&ServerCertificateRequest>, required: bool) -> Result<(), HwError> {
    match r {
        None if required => Err(HwError::new(400, "VPN.1100", "The server certificate cannot be empty.")),
        None => Ok(()),
        Some(ServerCertificateRequest { source: Some(s), id: None }) if s == "SERVICE_SIGN" => Ok(()),
        Some(ServerCertificateRequest { source: Some(s), .. }) if s != "CCM" && s != "SERVICE_SIGN" => {
            Err(HwError::invalid("server_certificate.source must be CCM or SERVICE_SIGN"))
        }
        Some(ServerCertificateRequest { id: Some(id), .. }) => {
            Err(HwError::new(400, "VPN.1112", format!("Server certificate {id} is not found.")))
        }
        Some(_) => Err(HwError::new(400, "VPN.1100", "The server certificate cannot be empty.")),
    }
}

struct SslOptions {
    port: Option<u16>,
    cipher: Option<SslCipher>,
    compress: Option<bool>,
}

fn ssl_options(o: Option<&SslOptionsRequest>) -> Result<SslOptions, HwError> {
    let Some(o) = o else {
        return Ok(SslOptions { port: None, cipher: None, compress: None });
    };
    if o.protocol.as_deref().is_some_and(|p| p != "TCP") {
        return Err(HwError::invalid("ssl_options.protocol must be TCP"));
    }
    let port = match o.port {
        None => None,
        Some(p @ (443 | 1194)) => Some(p as u16),
        Some(_) => return Err(HwError::invalid("ssl_options.port must be 443 or 1194")),
    };
    let cipher = o
        .encryption_algorithm
        .as_deref()
        .map(|e| one_of("ssl_options.encryption_algorithm", e, spelling::SSL_CIPHER))
        .transpose()?;
    Ok(SslOptions { port, cipher, compress: o.is_compressed })
}

fn auth_type(v: &str) -> Result<ClientAuth, HwError> {
    match v {
        "CERT" => Ok(ClientAuth::Certificate),
        "LOCAL_PASSWORD" => Ok(ClientAuth::Password),
        _ => Err(HwError::invalid("client_auth_type must be CERT or LOCAL_PASSWORD")),
    }
}

fn ca_name(name: Option<&str>) -> Result<String, HwError> {
    match name {
        Some(n) => {
            wire::name_of(n, 1, 64, "_-", openvgw_core::Field::Name)?;
            Ok(n.to_string())
        }
        None => Ok(wire::default_name("ca-cert")),
    }
}

/// A client CA as the reference accepts them: a valid, current CA certificate with an RSA (2048 bits or more) or
/// EC key and a SHA-2 signature.
fn client_ca(name: &str, content: &str) -> Result<(openvgw_pki::Inspected, CertificateInfo), HwError> {
    if content.is_empty() || content.len() > 8192 {
        return Err(HwError::new(400, "VPN.0074", format!("The format of the certificate {name} is invalid.")));
    }
    let i = wire::inspect(name, content)?;
    match &i.key_algorithm {
        openvgw_pki::KeyAlgorithm::Rsa { bits } if *bits >= 2048 => {}
        openvgw_pki::KeyAlgorithm::Ec { .. } => {}
        _ => {
            return Err(HwError::new(
                400,
                "VPN.0070",
                format!("The key algorithm of the certificate {name} is not supported."),
            ))
        }
    }
    if !["SHA256WITHRSA", "SHA384WITHRSA", "SHA512WITHRSA", "SHA256WITHECDSA", "SHA384WITHECDSA", "SHA512WITHECDSA"]
        .contains(&i.signature_algorithm.as_str())
    {
        return Err(HwError::new(
            400,
            "VPN.0071",
            format!("The signature algorithm of the certificate {name} is not supported."),
        ));
    }
    let now = openvgw_core::now_ms() / 1000;
    if i.not_before > now {
        return Err(HwError::new(400, "VPN.0073", format!("Certificate {name} has not taken effect.")));
    }
    if i.not_after < now {
        return Err(HwError::new(400, "VPN.0072", format!("Certificate {name} has expired.")));
    }
    if !i.is_ca {
        return Err(HwError::new(400, "VPN.0076", format!("Certificate {name} is not a CA certificate.")));
    }
    let info = wire::certificate_info(i.clone());
    Ok((i, info))
}

pub fn create(c: &Call, body: CreateBody) -> Result<IdOnly, HwError> {
    let s = body.vpn_server;
    let gw = c.path_gateway()?.item;
    if s.tunnel_protocol.as_deref().is_some_and(|p| p != "SSL") {
        return Err(HwError::invalid("tunnel_protocol must be SSL"));
    }
    let pool = client_cidr(&s.client_cidr, gw.ssl_max_connections)?;
    let locals = local_subnets(&s.local_subnets)?;
    pool_conflicts(&pool, &locals)?;
    let auth = s.client_auth_type.as_deref().map(auth_type).transpose()?.unwrap_or(ClientAuth::Password);
    server_certificate(s.server_certificate.as_ref(), true)?;
    let mut cas = Vec::new();
    match (auth, s.client_ca_certificates.as_deref().unwrap_or_default()) {
        (ClientAuth::Certificate, []) => {
            return Err(HwError::new(400, "VPN.1101", "At least one client CA certificate is required."))
        }
        (ClientAuth::Certificate, list) if list.len() > 10 => {
            return Err(HwError::new(400, "VPN.1111", "The number of client CA certificates exceeds the upper limit."))
        }
        (ClientAuth::Certificate, list) => {
            for r in list {
                let name = ca_name(r.name.as_deref())?;
                let (_, info) = client_ca(&name, &r.content)?;
                if cas.iter().any(|(_, i): &(String, CertificateInfo)| i.pem == info.pem) {
                    return Err(HwError::new(400, "VPN.0077", format!("Duplicate certificate: {name}.")));
                }
                cas.push((name, info));
            }
        }
        (ClientAuth::Password, []) => {}
        (ClientAuth::Password, _) => {
            return Err(HwError::invalid("client_ca_certificates apply only when client_auth_type is CERT"))
        }
    }
    let o = ssl_options(s.ssl_options.as_ref())?;
    let spec = NewSslServer {
        name: None,
        client_ip_pool: pool,
        local_subnets: locals,
        transport: Transport::Tcp,
        cipher: o.cipher.unwrap_or(SslCipher::Aes128Gcm),
        port: o.port.unwrap_or(443),
        compress: o.compress.unwrap_or(false),
        client_auth: auth,
        dns_servers: dns_servers(s.dns_servers.as_deref().unwrap_or_default())?,
        ext: Extensions::of(&ServerExt { idp_name: s.idp_name.unwrap_or_default() }),
        default_group: Some((USER_GROUP.0.to_string(), USER_GROUP.1.to_string())),
        client_cas: cas,
    };
    let server = c.svc.create_ssl_server(&c.ctx()?, &gw.id, spec).map_err(|e| c.core(e))?;
    Ok(IdOnly { vpn_server: Id { id: server.id }, request_id: c.request_id() })
}

fn listed(c: &Call, page: Page<(SslVpnServer, VpnGateway)>) -> Result<Listed, HwError> {
    let mut out = Vec::with_capacity(page.items.len());
    for (s, gw) in &page.items {
        out.push(view(c, s, gw)?);
    }
    Ok(Listed { page_info: PageInfo::of(&page), total_count: page.total, vpn_servers: out, request_id: c.request_id() })
}

pub fn list_by_gateway(c: &Call, _: NoBody) -> Result<Listed, HwError> {
    let gw = c.path_gateway()?.item;
    let f = SslServerFilter { gateway_id: Some(gw.id), ..Default::default() };
    let page = c.svc.list_ssl_servers(c.scope()?, &f, &PageRequest::ALL).map_err(|e| c.core(e))?;
    listed(c, page)
}

pub fn list_by_project(c: &Call, _: NoBody) -> Result<Listed, HwError> {
    let page = c.marker_page(200, 200)?;
    let page = c.svc.list_ssl_servers(c.scope()?, &SslServerFilter::default(), &page).map_err(|e| c.core(e))?;
    listed(c, page)
}

impl Call<'_> {
    /// The server of the path with its gateway.
    fn path_server(&self) -> Result<(SslVpnServer, VpnGateway), HwError> {
        let id = self.path("vpn_server_id")?;
        let f = SslServerFilter { server_id: Some(id.to_string()), ..Default::default() };
        let page = self.svc.list_ssl_servers(self.scope()?, &f, &PageRequest::ALL).map_err(|e| self.core(e))?;
        page.items
            .into_iter()
            .next()
            .ok_or_else(|| self.core(openvgw_core::Error::not_found(openvgw_core::Kind::SslVpnServer, id)))
    }
}

pub fn update(c: &Call, body: UpdateBody) -> Result<RequestIdOnly, HwError> {
    let u = body.vpn_server;
    let (server, gw) = c.path_server()?;
    match server_status(&server, &gw) {
        "PENDING_CREATE" => {
            return Err(HwError::new(400, "VPN.1113", "The server is being created, please try again later."))
        }
        "PENDING_UPDATE" => {
            return Err(HwError::new(400, "VPN.1114", "The server is being updated, please try again later."))
        }
        _ => {}
    }
    let pool = u.client_cidr.as_deref().map(|v| client_cidr(v, gw.ssl_max_connections)).transpose()?;
    let locals = u.local_subnets.as_deref().map(local_subnets).transpose()?;
    pool_conflicts(
        pool.as_ref().unwrap_or(&server.client_ip_pool),
        locals.as_deref().unwrap_or(&server.local_subnets),
    )?;
    if let Some(cert) = &u.server_certificate {
        server_certificate(Some(cert), false)?;
    }
    let o = ssl_options(u.ssl_options.as_ref())?;
    if u.ssl_options.as_ref().is_some_and(|o| o.is_compressed.is_some()) {
        return Err(HwError::invalid("ssl_options.is_compressed cannot be changed"));
    }
    let idp = u.idp_name.clone();
    let changes = SslServerChanges {
        client_ip_pool: pool,
        local_subnets: locals,
        port: o.port,
        cipher: o.cipher,
        client_auth: u.client_auth_type.as_deref().map(auth_type).transpose()?,
        dns_servers: u.dns_servers.as_deref().map(dns_servers).transpose()?,
        ext: idp.map(|name| -> openvgw_control::ssl::ExtUpdate {
            std::sync::Arc::new(move |x: &mut Extensions| {
                x.set(&ServerExt { idp_name: name.clone() });
                Ok(())
            })
        }),
        ..Default::default()
    };
    c.svc.modify_ssl_server(&c.ctx()?, &server.id, changes).map_err(|e| c.core(e))?;
    Ok(RequestIdOnly { request_id: c.request_id() })
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ExportBody {
    pub os_type: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ClientConfig {
    pub client_config: String,
}

/// The OpenVPN profile clients import: the server's address and options, its CA, and — for password servers —
/// the prompt for a user name and password. Certificate clients add their own `<cert>` and `<key>`.
pub fn export_client_config(c: &Call, body: ExportBody) -> Result<ClientConfig, HwError> {
    if let Some(os) = &body.os_type {
        if !["Windows", "Linux", "MacOS", "Android", "iOS"].contains(&os.as_str()) {
            return Err(HwError::invalid("os_type must be Windows, Linux, MacOS, Android or iOS"));
        }
    }
    let (s, gw) = c.path_server()?;
    let address = gw.primary_ip().ok_or_else(|| HwError::new(400, "VPN.1121", "Gateway not bind eip."))?;
    let mut out = String::with_capacity(4096);
    out.push_str("client\ndev tun\nproto tcp\n");
    out.push_str(&format!("remote {address} {}\n", s.port));
    out.push_str("resolv-retry infinite\nnobind\npersist-key\npersist-tun\nremote-cert-tls server\n");
    out.push_str(&format!(
        "data-ciphers {}\nauth {}\nverb 3\n",
        wire::word_of(s.cipher, spelling::SSL_CIPHER),
        spelling::ssl_auth(s.cipher)
    ));
    if s.compress {
        out.push_str("allow-compression yes\ncompress lz4-v2\n");
    }
    if s.client_auth == ClientAuth::Password {
        out.push_str("auth-user-pass\n");
    }
    out.push_str("<ca>\n");
    out.push_str(s.ca_cert_pem.trim());
    out.push_str("\n</ca>\n\n\n");
    out.push_str(
        "reneg-sec 0\n# Add a comment character (#) in front of disable-dco when OpenVPN 2.5 or earlier is used.\n\
         disable-dco\n",
    );
    Ok(ClientConfig { client_config: out })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientCaBody {
    pub client_ca_certificate: ClientCaRequest,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Checked {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub serial_number: String,
    pub expiration_time: String,
    pub signature_algorithm: String,
}

pub fn check_client_ca(_c: &Call, body: ClientCaBody) -> Result<Checked, HwError> {
    let r = body.client_ca_certificate;
    let name = ca_name(r.name.as_deref())?;
    let (i, _) = client_ca(&name, &r.content)?;
    Ok(Checked {
        name,
        issuer: i.issuer,
        subject: i.subject,
        serial_number: i.serial_decimal,
        expiration_time: wire::ts_seconds(i.not_after * 1000),
        signature_algorithm: i.signature_algorithm,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IdOnlyCa {
    pub client_ca_certificate: Id,
    pub request_id: String,
}

pub fn import_client_ca(c: &Call, body: ClientCaBody) -> Result<IdOnlyCa, HwError> {
    let r = body.client_ca_certificate;
    let (server, _) = c.path_server()?;
    let name = ca_name(r.name.as_deref())?;
    let (_, info) = client_ca(&name, &r.content)?;
    let ca = c.svc.import_client_ca(&c.ctx()?, &server.id, &name, info).map_err(|e| c.core(e))?;
    Ok(IdOnlyCa { client_ca_certificate: Id { id: ca.id }, request_id: c.request_id() })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ClientCaShown {
    pub client_ca_certificate: ClientCaView,
    pub request_id: String,
}

pub fn show_client_ca(c: &Call, _: NoBody) -> Result<ClientCaShown, HwError> {
    let (server, _) = c.path_server()?;
    let ca = c.svc.get_client_ca(c.scope()?, &server.id, c.path("client_ca_certificate_id")?).map_err(|e| c.core(e))?;
    Ok(ClientCaShown { client_ca_certificate: ca_view(&ca), request_id: c.request_id() })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientCaRename {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientCaRenameBody {
    pub client_ca_certificate: ClientCaRename,
}

pub fn update_client_ca(c: &Call, body: ClientCaRenameBody) -> Result<RequestIdOnly, HwError> {
    let (server, _) = c.path_server()?;
    let id = c.path("client_ca_certificate_id")?;
    match body.client_ca_certificate.name {
        Some(n) => {
            let name = ca_name(Some(&n))?;
            c.svc.rename_client_ca(&c.ctx()?, &server.id, id, &name).map_err(|e| c.core(e))?;
        }
        // Nothing to change; the certificate must still exist.
        None => {
            c.svc.get_client_ca(c.scope()?, &server.id, id).map_err(|e| c.core(e))?;
        }
    }
    Ok(RequestIdOnly { request_id: c.request_id() })
}

pub fn delete_client_ca(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    let (server, _) = c.path_server()?;
    c.svc.delete_client_ca(&c.ctx()?, &server.id, c.path("client_ca_certificate_id")?).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_pools() {
        assert!(client_cidr("172.16.0.1/24", 10).is_ok(), "host bits are dropped");
        assert_eq!(client_cidr("172.16.0.0/27", 10).map_err(|e| e.code).err().as_deref(), Some("VPN.1107"));
        assert_eq!(client_cidr("172.16.0.0/26", 16).map_err(|e| e.code).err().as_deref(), Some("VPN.1108"));
        assert_eq!(client_cidr("127.0.0.0/24", 10).map_err(|e| e.code).err().as_deref(), Some("VPN.1104"));
        assert_eq!(client_cidr("nope", 10).map_err(|e| e.code).err().as_deref(), Some("VPN.1103"));
    }

    #[test]
    fn local_subnet_codes() {
        assert_eq!(local_subnets(&[]).map_err(|e| e.code).err().as_deref(), Some("VPN.1118"));
        let many: Vec<String> = (0..21).map(|i| format!("10.{i}.0.0/16")).collect();
        assert_eq!(local_subnets(&many).map_err(|e| e.code).err().as_deref(), Some("VPN.1105"));
        let dup = vec!["10.0.0.0/16".to_string(), "10.0.0.0/16".to_string()];
        assert_eq!(local_subnets(&dup).map_err(|e| e.code).err().as_deref(), Some("VPN.1106"));
        let pool = client_cidr("10.0.0.0/24", 10).expect("pool");
        let locals = local_subnets(&["10.0.0.0/16".to_string()]).expect("locals");
        assert_eq!(pool_conflicts(&pool, &locals).map_err(|e| e.code).err().as_deref(), Some("VPN.1119"));
    }
}
