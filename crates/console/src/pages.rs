//! The console's pages, rendered on the server (maud: every value is escaped unless marked otherwise). Regions that
//! refresh live carry `data-refresh`: the page's one script fetches them again and swaps them in.

use maud::{html, Markup, DOCTYPE};
use openvgw_control::reconcile::GatewayTree;
use openvgw_core::model::{ConsolePrincipal, GatewayRole, GatewayStatus, SslVpnClientCert, VpnGateway};
use openvgw_dataplane::{ClientSession, HostView, SaStats};

use crate::create::Api;
use crate::svg;

pub const COOKIE: &str = "ovgw_session";
pub const SIGN_IN_COOKIE: &str = "ovgw_sign_in";

/// Whose page it is and the token its forms carry.
pub struct Chrome<'a> {
    pub principal: &'a ConsolePrincipal,
    pub csrf: &'a str,
}

fn who(p: &ConsolePrincipal) -> String {
    match p {
        ConsolePrincipal::Tenant { tenant_id, access_key_id } => format!("tenant {tenant_id} (key {access_key_id})"),
        ConsolePrincipal::Operator { name } => format!("operator {name}"),
    }
}

pub fn layout(title: &str, chrome: Option<&Chrome>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · openvgw" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console/gateways" { "openvgw" }
                    @if let Some(c) = chrome {
                        nav aria-label="Main" {
                            a href="/console/gateways" { "Gateways" }
                            @if matches!(c.principal, ConsolePrincipal::Operator { .. }) {
                                a href="/console/dataplane" { "Data plane" }
                            }
                        }
                        span.who { (who(c.principal)) }
                        form.inline method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(c.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

pub fn sign_in(pre: &str, failed: bool) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if failed {
                p.error role="alert" { "Sign-in failed: the credentials are wrong, or the tenant is disabled." }
            }
            form.card method="post" action="/console/sign-in" {
                input type="hidden" name="pre" value=(pre);
                fieldset {
                    legend { "Sign in as" }
                    label { input type="radio" name="kind" value="key" checked; " a tenant, with an access key pair" }
                    label { input type="radio" name="kind" value="operator"; " an operator" }
                }
                label for="id" { "Access key ID or operator name" }
                input #id type="text" name="id" required autocomplete="username" maxlength="128";
                label for="secret" { "Access key secret or password" }
                input #secret type="password" name="secret" required autocomplete="current-password" maxlength="256";
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn message(title: &str, chrome: Option<&Chrome>, text: &str) -> Markup {
    layout(
        title,
        chrome,
        html! { h1 { (title) } p.error role="alert" { (text) } p { a href="/console/gateways" { "Back to the gateways" } } },
    )
}

/// Which API a resource belongs to, as people name it.
pub fn dialect(id: &str) -> &'static str {
    Api::of(id).title()
}

fn status(s: GatewayStatus) -> Markup {
    let (class, word) = match s {
        GatewayStatus::Init => ("status pending", "init"),
        GatewayStatus::Provisioning => ("status pending", "creating"),
        GatewayStatus::Active => ("status ok", "active"),
        GatewayStatus::Updating => ("status pending", "updating"),
        GatewayStatus::Deleting => ("status gone", "deleting"),
    };
    html! { span class=(class) data-status=(word) { (word) } }
}

pub fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn addresses(gw: &VpnGateway) -> String {
    gw.public_ips.iter().map(|p| p.address.to_string()).collect::<Vec<_>>().join(", ")
}

/// The gateways table (refreshed live).
pub fn gateway_rows(gateways: &[VpnGateway], operator: bool) -> Markup {
    html! {
        table.list #gateways {
            caption { (gateways.len()) " gateway(s)" }
            thead { tr {
                th scope="col" { "Gateway" } th scope="col" { "API" }
                @if operator { th scope="col" { "Tenant" } }
                th scope="col" { "Region" } th scope="col" { "VPC" } th scope="col" { "Public addresses" }
                th scope="col" { "Status" } th scope="col" { "Created" }
            } }
            tbody {
                @for gw in gateways {
                    tr data-gateway=(gw.id) {
                        td { a href={"/console/gateways/" (gw.id)} { (gw.name) } br; span.small { (gw.id) } }
                        td { (dialect(&gw.id)) }
                        @if operator { td { (gw.scope.tenant_id) } }
                        td { (gw.scope.region) } td { (gw.vpc_id) } td { (addresses(gw)) }
                        td { (status(gw.status())) } td { (when(gw.created_at)) }
                    }
                }
            }
        }
    }
}

pub fn gateways(chrome: &Chrome, gateways: &[VpnGateway]) -> Markup {
    let operator = matches!(chrome.principal, ConsolePrincipal::Operator { .. });
    layout(
        "Gateways",
        Some(chrome),
        html! {
            h1 { "VPN gateways" }
            @if !operator {
                p.actions {
                    a.button href="/console/create/gateway/aliyun" { "New Alibaba gateway" }
                    a.button href="/console/create/gateway/huawei" { "New Huawei gateway" }
                }
            }
            div data-refresh="/console/gateways?fragment=1" data-every="2000" aria-live="polite" {
                (gateway_rows(gateways, operator))
            }
        },
    )
}

/// What the detail page shows of one connection's tunnels, read from the data plane.
pub struct TunnelLive {
    pub tunnel_id: String,
    pub sas: Vec<SaStats>,
}

pub struct ConnectionLive {
    pub connection_id: String,
    pub tunnels: Vec<TunnelLive>,
    pub log: Vec<String>,
}

/// Everything the gateway page shows.
pub struct GatewayPage<'a> {
    pub tree: &'a GatewayTree,
    pub live: &'a [ConnectionLive],
    pub sessions: &'a [ClientSession],
    pub certs: &'a [SslVpnClientCert],
    pub chart: Markup,
    pub now_ms: i64,
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// The part of the gateway page that refreshes live.
pub fn gateway_live(p: &GatewayPage) -> Markup {
    let gw = &p.tree.gateway;
    let address = |index: u8| gw.public_ips.get(usize::from(index)).map(|a| a.address.to_string()).unwrap_or_default();
    let peer = |id: &str| {
        p.tree
            .connections
            .iter()
            .map(|(_, c)| c)
            .chain(p.tree.second_peers.values())
            .find(|c| c.id == id)
            .map(|c| c.address().map(|a| a.to_string()).unwrap_or_else(|| "(no fixed address)".into()))
            .unwrap_or_default()
    };
    let topology: Vec<svg::TopologyTunnel> = p
        .tree
        .connections
        .iter()
        .flat_map(|(c, _)| c.tunnels().into_iter().map(move |(_, t)| (c, t)))
        .map(|(c, t)| svg::TopologyTunnel {
            label: c.name.clone(),
            gateway_address: address(t.public_ip_index),
            peer_address: peer(&t.customer_gateway_id),
            peer_networks: c.remote_subnets.iter().map(ToString::to_string).collect(),
            up: t.state == openvgw_core::model::TunnelState::IpsecSaEstablished,
            state: svg::state_word(t.state),
        })
        .collect();
    html! {
        section aria-labelledby="summary-h" {
            h2 #summary-h { "Summary" }
            dl.summary {
                dt { "Status" } dd { (status(gw.status())) }
                dt { "API" } dd { (dialect(&gw.id)) }
                dt { "Region" } dd { (gw.scope.region) }
                dt { "VPC" } dd { (gw.vpc_id) @if let Some(c) = p.tree.vpc_cidr { " (" (c) ")" } }
                dt { "Public addresses" } dd { (addresses(gw)) }
                dt { "Inside address" } dd { (gw.private_ip) }
                dt { "Configuration" } dd { "generation " (gw.generation) ", applied " (gw.applied_generation) }
            }
        }
        section aria-labelledby="topology-h" {
            h2 #topology-h { "Topology" }
            (svg::topology(&gw.vpc_id, &gw.name, &gw.private_ip.to_string(), &topology))
        }
        section aria-labelledby="connections-h" {
            h2 #connections-h { "IPsec connections" }
            table.list #connections {
                thead { tr {
                    th scope="col" { "Connection" } th scope="col" { "Tunnel" } th scope="col" { "Peer" }
                    th scope="col" { "State" } th scope="col" { "BGP" } th scope="col" { "Health check" }
                    th scope="col" { "Traffic in / out" } th scope="col" { "Customer side" }
                } }
                tbody {
                    @for (c, _) in &p.tree.connections {
                        @let live = p.live.iter().find(|l| l.connection_id == c.id);
                        @for (i, (_, t)) in c.tunnels().into_iter().enumerate() {
                            @let sas = live.and_then(|l| l.tunnels.iter().find(|x| x.tunnel_id == t.id)).map(|x| x.sas.as_slice()).unwrap_or_default();
                            tr data-connection=(c.id) data-tunnel-state=(svg::state_word(t.state)) {
                                td { @if i == 0 { (c.name) br; span.small { (c.id) } } }
                                td { (address(t.public_ip_index)) @if c.second_tunnel.is_some() { br; span.small { (t.id) " (" (format!("{:?}", t.role).to_lowercase()) ")" } } }
                                td { (peer(&t.customer_gateway_id)) }
                                td { span class=(if t.state == openvgw_core::model::TunnelState::IpsecSaEstablished { "status ok" } else { "status pending" }) { (svg::state_word(t.state)) } }
                                td { @match &t.bgp_session { Some(s) => { (format!("{:?}", s.state).to_lowercase()) " (" (s.received_routes) " routes)" }, None => { @if t.bgp.enable { "not seen" } @else { "—" } } } }
                                td { @if i == 0 { @match (c.health_check.enable, c.health_ok) { (false, _) => { "off" }, (true, Some(true)) => { "passing" }, (true, Some(false)) => { "failing" }, (true, None) => { "not probed yet" } } } }
                                td { (bytes(sas.iter().map(|s| s.bytes_in).sum())) " / " (bytes(sas.iter().map(|s| s.bytes_out).sum())) }
                                td { @if i == 0 {
                                    a href={"/console/connections/" (c.id) "/config/strongswan"} download { "strongSwan" } " · "
                                    a href={"/console/connections/" (c.id) "/config/libreswan"} download { "libreswan" } " · "
                                    a href={"/console/connections/" (c.id) "/config/vendor"} download { (dialect(&c.id)) " JSON" }
                                } }
                            }
                        }
                    }
                }
            }
            @for l in p.live {
                @if !l.log.is_empty() {
                    details.log {
                        summary { "Last lines of the tunnel log of " (l.connection_id) }
                        pre { @for line in &l.log { (line) "\n" } }
                    }
                }
            }
        }
        section aria-labelledby="chart-h" {
            h2 #chart-h { "Tunnel state over time" }
            (p.chart)
        }
        @if !p.tree.ssl_servers.is_empty() {
            section aria-labelledby="ssl-h" {
                h2 #ssl-h { "SSL-VPN servers" }
                @for s in &p.tree.ssl_servers {
                    h3 { (s.server.name) " " span.small { (s.server.id) } }
                    p { "Port " (s.server.port) ", client pool " (s.server.client_ip_pool) ", " (s.server.connections) " client(s) connected" }
                    table.list {
                        thead { tr { th scope="col" { "Client" } th scope="col" { "Address" } th scope="col" { "From" } th scope="col" { "Since" } th scope="col" { "In / out" } } }
                        tbody {
                            @for c in p.sessions.iter().filter(|c| c.server_id == s.server.id) {
                                tr { td { (c.user) } td { @if let Some(a) = c.virtual_ip { (a) } } td { (c.real_address) } td { (when(c.connected_since * 1000)) } td { (bytes(c.bytes_in)) " / " (bytes(c.bytes_out)) } }
                            }
                        }
                    }
                }
                h3 { "Client certificates" }
                table.list #client-certs {
                    thead { tr { th scope="col" { "Certificate" } th scope="col" { "Expires" } th scope="col" { "Profile" } } }
                    tbody {
                        @for c in p.certs {
                            @let days = (c.not_after - p.now_ms) / 86_400_000;
                            tr {
                                td { (c.name) br; span.small { (c.id) } }
                                td { (when(c.not_after)) " " span class=(if days < 7 { "status pending" } else { "status ok" }) { @if c.not_after <= p.now_ms { "expired" } @else { "in " (days) " day(s)" } } }
                                td { a href={"/console/client-certs/" (c.id) "/profile"} download { "OpenVPN profile" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn gateway(chrome: &Chrome, page: &GatewayPage) -> Markup {
    let gw = &page.tree.gateway;
    layout(
        &gw.name,
        Some(chrome),
        html! {
            p { a href="/console/gateways" { "← Gateways" } }
            h1 { (gw.name) " " span.small { (gw.id) } }
            @if !matches!(chrome.principal, ConsolePrincipal::Operator { .. }) {
                p.actions {
                    // The forms `create::What::offered` offers on this gateway.
                    @if gw.role != GatewayRole::Client {
                        a.button href={"/console/create/connection/" (gw.id)} { "New connection" }
                    }
                    @if Api::of(&gw.id) == Api::Aliyun && gw.ssl_enabled {
                        a.button href={"/console/create/ssl-server/" (gw.id)} { "New SSL-VPN server" }
                        @if !page.tree.ssl_servers.is_empty() {
                            a.button href={"/console/create/client-cert/" (gw.id)} { "New client certificate" }
                        }
                    }
                }
            }
            div data-refresh={"/console/gateways/" (gw.id) "?fragment=1"} data-every="3000" aria-live="polite" {
                (gateway_live(page))
            }
            section.danger aria-labelledby="delete-h" {
                h2 #delete-h { "Delete" }
                form method="post" action={"/console/gateways/" (gw.id) "/delete"} {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label { input type="checkbox" name="confirm" value="yes" required; " Delete this gateway and everything on it" }
                    button type="submit" { "Delete gateway" }
                }
            }
        },
    )
}

/// The operator's view: every gateway's configuration against what the data plane reports.
pub struct DataplaneRow {
    pub gateway: VpnGateway,
    pub ready: Result<bool, String>,
    pub tunnels_up: usize,
    pub tunnels: usize,
    /// The gateway host holding it, when the data plane spreads gateways over hosts.
    pub host: Option<String>,
}

pub fn dataplane(chrome: &Chrome, rows: &[DataplaneRow], hosts: &[HostView]) -> Markup {
    let spread = !hosts.is_empty();
    layout(
        "Data plane",
        Some(chrome),
        html! {
            h1 { "Data plane" }
            @if spread {
                h2 { "Gateway hosts" }
                table.list #hosts {
                    thead { tr {
                        th scope="col" { "Host" } th scope="col" { "State" } th scope="col" { "Gateways" }
                        th scope="col" { "Capacity" } th scope="col" { "Driver" } th scope="col" { "Session" }
                    } }
                    tbody {
                        @for h in hosts {
                            tr {
                                td { (h.id) }
                                td { @match h.away_s { None => { span.status.ok { "attached" } }, Some(s) => { span.status.gone { "away for " (s) " s" } } } }
                                td { (h.gateways) }
                                td { @if h.capacity == 0 { "no limit" } @else { (h.capacity) } }
                                td { (h.driver) }
                                td { @if h.attached { "epoch " (h.epoch) } @else { "none" } }
                            }
                        }
                    }
                }
                h2 { "Gateways" }
            }
            table.list #dataplane {
                thead { tr {
                    th scope="col" { "Gateway" } th scope="col" { "Tenant" } @if spread { th scope="col" { "Host" } }
                    th scope="col" { "Status" }
                    th scope="col" { "Generation (applied)" } th scope="col" { "Daemons" } th scope="col" { "Tunnels up" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { a href={"/console/gateways/" (r.gateway.id)} { (r.gateway.name) } }
                            td { (r.gateway.scope.tenant_id) }
                            @if spread { td { (r.host.as_deref().unwrap_or("not placed")) } }
                            td { (status(r.gateway.status())) }
                            td { (r.gateway.generation) " (" (r.gateway.applied_generation) ")" }
                            td { @match &r.ready { Ok(true) => { span.status.ok { "ready" } }, Ok(false) => { span.status.pending { "not ready" } }, Err(e) => { span.status.gone { "error: " (e) } } } }
                            td { (r.tunnels_up) " of " (r.tunnels) }
                        }
                    }
                }
            }
        },
    )
}
