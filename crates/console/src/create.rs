//! Creating through the console. Each form is a call of the resource's own API — Alibaba's RPC actions, Huawei's
//! REST operations — made on the signed-in tenant's behalf through the server the SDKs reach
//! ([`OnBehalf`]): the same defaults, checks, quotas and idempotency as a signed request, and a refusal shows
//! that API's own status, code and message. The console only lays the form's values out as that API's SDKs would.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use maud::{html, Markup};
use openvgw_api::{ApiRequest, Credential, OnBehalf, Principal};
use openvgw_core::model::{GatewayRole, VpnGateway};
use openvgw_core::IdStyle;
use serde_json::{json, Value};

use crate::pages::{layout, Chrome};

/// The APIs the console's forms call.
pub struct Apis {
    pub aliyun: Arc<dyn OnBehalf>,
    pub huawei: Arc<dyn OnBehalf>,
}

/// Which API a resource belongs to, from its id's style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Aliyun,
    Huawei,
}

impl Api {
    pub fn of(id: &str) -> Api {
        match IdStyle::of(id) {
            IdStyle::Prefixed => Api::Aliyun,
            IdStyle::Uuid => Api::Huawei,
        }
    }

    pub fn parse(s: &str) -> Option<Api> {
        match s {
            "aliyun" => Some(Api::Aliyun),
            "huawei" => Some(Api::Huawei),
            _ => None,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Api::Aliyun => "aliyun",
            Api::Huawei => "huawei",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Api::Aliyun => "Alibaba",
            Api::Huawei => "Huawei",
        }
    }
}

/// A call as that API's SDKs send it, less the signature.
pub enum Call {
    Aliyun { action: &'static str, region: String, params: Vec<(&'static str, String)> },
    Huawei { method: &'static str, path: String, body: Option<Value> },
}

/// What an API answered.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self, pointer: &str) -> Option<&str> {
        self.body.pointer(pointer).and_then(Value::as_str)
    }

    /// A refusal in the API's words: `Code: message`.
    pub fn refusal(&self) -> String {
        let code = self.text("/Code").or(self.text("/error_code")).unwrap_or("");
        let message = self.text("/Message").or(self.text("/error_msg")).unwrap_or("");
        match (code, message) {
            ("", "") => format!("HTTP {}", self.status),
            (code, message) => format!("{code}: {message}"),
        }
    }
}

/// The largest answer read back (a connection's configuration is a few kB).
const MAX_ANSWER: usize = 1 << 20;

impl Apis {
    /// Makes `call` for `principal`, on a blocking thread (the store is synchronous). `Err` only when the call
    /// could not be made at all (a failed thread, an answer that is not JSON).
    pub async fn call(&self, principal: &Principal, call: Call) -> Result<Answer, String> {
        let (server, req) = match call {
            Call::Aliyun { action, region, params } => {
                let server = self.aliyun.clone();
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("Action", action).append_pair("RegionId", &region);
                q.append_pair("Version", "2016-04-28").append_pair("Format", "JSON");
                for (k, v) in &params {
                    q.append_pair(k, v);
                }
                let req = request(server.new_request_id(), "POST", "/".into(), q.finish(), None);
                (server, req)
            }
            Call::Huawei { method, path, body } => {
                let server = self.huawei.clone();
                let body = body.map(|b| Bytes::from(b.to_string()));
                (server.clone(), request(server.new_request_id(), method, path, String::new(), body))
            }
        };
        let principal = principal.clone();
        let resp = tokio::task::spawn_blocking(move || server.serve_as(&req, &principal, "console"))
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER).await.map_err(|e| e.to_string())?;
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).map_err(|e| e.to_string())? };
        Ok(Answer { status, body })
    }
}

fn request(request_id: String, method: &str, path: String, raw_query: String, body: Option<Bytes>) -> ApiRequest {
    let headers = match &body {
        Some(_) => vec![("content-type".to_string(), "application/json;charset=UTF-8".to_string())],
        None => vec![],
    };
    ApiRequest { request_id, method: method.into(), path, raw_query, headers, body: body.unwrap_or_default() }
}

/// The principal a tenant's session acts as: its access key.
pub fn principal(tenant_id: &str, access_key_id: &str) -> Principal {
    Principal { tenant_id: tenant_id.to_string(), via: Credential::AccessKey(access_key_id.to_string()) }
}

/// A form's values as sent (or its defaults, before it is sent).
#[derive(Default)]
pub struct Values(HashMap<String, String>);

/// The longest value a form field takes (a list of subnets, a key); longer ones are refused before any call.
pub const MAX_VALUE: usize = 2048;

impl Values {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Option<Values> {
        if pairs.iter().any(|(k, v)| k.len() > 64 || v.len() > MAX_VALUE) {
            return None;
        }
        Some(Values(pairs.into_iter().collect()))
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(|v| v.trim()).unwrap_or("")
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), value.into());
    }

    fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// `name`'s value unless it is empty.
    fn given(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// A list typed as `a, b` or one per line.
    fn list(&self, name: &str) -> Vec<String> {
        self.get(name).split([',', '\n', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    /// A number as a JSON number when it is one; as typed otherwise, so that the API refuses it in its own words.
    fn number(&self, name: &str) -> Value {
        let v = self.get(name);
        v.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::from(v))
    }
}

/// One input of a form.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
    pub required: bool,
    pub hint: &'static str,
}

pub enum Input {
    Text,
    Number,
    Secret,
    Select(Vec<(String, String)>),
    Check,
}

impl Field {
    fn new(name: &'static str, label: &'static str, input: Input) -> Field {
        Field { name, label, input, required: false, hint: "" }
    }
    fn required(mut self) -> Field {
        self.required = true;
        self
    }
    fn hint(mut self, hint: &'static str) -> Field {
        self.hint = hint;
        self
    }
}

/// A form of the console: where it posts, what it asks.
pub struct Form {
    pub title: String,
    pub action: String,
    pub fields: Vec<Field>,
    pub submit: &'static str,
    pub back: (String, &'static str),
}

/// A form page; `refusal` is the API's answer to the last attempt, shown above the form with the values kept.
pub fn page(chrome: &Chrome, form: &Form, values: &Values, refusal: Option<&str>) -> Markup {
    layout(
        &form.title,
        Some(chrome),
        html! {
            p { a href=(form.back.0) { "← " (form.back.1) } }
            h1 { (form.title) }
            @if let Some(r) = refusal {
                p.error #refusal role="alert" { "Refused by the API: " (r) }
            }
            form.card.wide.create method="post" action=(form.action) {
                input type="hidden" name="csrf" value=(chrome.csrf);
                input type="hidden" name="token" value=(values.get("token"));
                @for f in &form.fields {
                    @let id = format!("f-{}", f.name);
                    @match &f.input {
                        Input::Check => {
                            label { input id=(id) type="checkbox" name=(f.name) value="on" checked[values.checked(f.name)]; " " (f.label) }
                        },
                        Input::Select(options) => {
                            label for=(id) { (f.label) }
                            select id=(id) name=(f.name) required[f.required] {
                                @for (value, text) in options {
                                    option value=(value) selected[values.get(f.name) == value.as_str()] { (text) }
                                }
                            }
                        },
                        other => {
                            @let kind = match other { Input::Number => "number", Input::Secret => "password", _ => "text" };
                            label for=(id) { (f.label) @if f.required { " (required)" } }
                            input id=(id) type=(kind) name=(f.name) value=(values.get(f.name)) required[f.required]
                                maxlength=(MAX_VALUE) autocomplete="off";
                        }
                    }
                    @if !f.hint.is_empty() { span.small { (f.hint) } }
                }
                button type="submit" { (form.submit) }
            }
        },
    )
}

/// A fresh idempotency token for a form: a form sent twice (a double click, a reload) creates once.
pub fn fresh_token(values: &mut Values) {
    values.set("token", openvgw_core::ids::random_hex(32));
}

const BANDWIDTHS: &[u32] = &[5, 10, 20, 50, 100, 200, 500, 1000];
const HUAWEI_FLAVORS: &[&str] = &["Basic", "Professional1", "Professional2"];

/// The form of a new gateway of `api`; `places` are the regions (Alibaba) or `(project id, region)` (Huawei).
pub fn gateway_form(api: Api, places: &[(String, String)]) -> Form {
    let place = Field::new(
        "place",
        if api == Api::Aliyun { "Region" } else { "Region (project)" },
        Input::Select(places.to_vec()),
    )
    .required();
    let mut fields = vec![place, Field::new("name", "Name", Input::Text)];
    match api {
        Api::Aliyun => {
            fields.push(Field::new("vpc", "VPC ID", Input::Text).required());
            fields.push(Field::new("vswitch", "vSwitch ID", Input::Text));
            let bw = BANDWIDTHS.iter().map(|b| (b.to_string(), format!("{b} Mbit/s"))).collect();
            fields.push(Field::new("bandwidth", "Bandwidth", Input::Select(bw)));
            fields.push(Field::new("ipsec", "IPsec-VPN", Input::Check));
            fields.push(Field::new("ssl", "SSL-VPN", Input::Check));
        }
        Api::Huawei => {
            fields.push(Field::new("vpc", "VPC ID", Input::Text).required());
            fields.push(Field::new("subnet", "Interconnection subnet ID", Input::Text).required());
            fields.push(
                Field::new("local", "Local subnets", Input::Text).required().hint("CIDR blocks, comma-separated"),
            );
            let flavors = HUAWEI_FLAVORS.iter().map(|f| (f.to_string(), f.to_string())).collect();
            fields.push(Field::new("flavor", "Specification", Input::Select(flavors)));
            fields.push(Field::new("bandwidth", "EIP bandwidth (Mbit/s)", Input::Number));
            fields.push(Field::new("asn", "BGP ASN", Input::Number).hint("empty: the API's default"));
        }
    }
    Form {
        title: format!("New {} VPN gateway", api.title()),
        action: format!("/console/create/gateway/{}", api.slug()),
        fields,
        submit: "Create gateway",
        back: ("/console/gateways".into(), "Gateways"),
    }
}

pub fn gateway_defaults(api: Api) -> Values {
    let mut v = Values::default();
    match api {
        Api::Aliyun => {
            v.set("bandwidth", "10");
            v.set("ipsec", "on");
        }
        Api::Huawei => {
            v.set("flavor", "Professional1");
            v.set("bandwidth", "100");
        }
    }
    fresh_token(&mut v);
    v
}

/// The call that creates a gateway, and where its id is in the answer.
pub fn create_gateway(api: Api, v: &Values) -> (Call, &'static str) {
    match api {
        Api::Aliyun => {
            let mut params = vec![
                ("VpcId", v.get("vpc").to_string()),
                ("Bandwidth", v.get("bandwidth").to_string()),
                ("EnableIpsec", v.checked("ipsec").to_string()),
                ("EnableSsl", v.checked("ssl").to_string()),
                ("ClientToken", v.get("token").to_string()),
            ];
            params.extend(v.given("vswitch").map(|s| ("VSwitchId", s)));
            params.extend(v.given("name").map(|s| ("Name", s)));
            let call = Call::Aliyun { action: "CreateVpnGateway", region: v.get("place").to_string(), params };
            (call, "/VpnGatewayId")
        }
        Api::Huawei => {
            let eip = json!({"type": "5_bgp", "charge_mode": "bandwidth", "bandwidth_size": v.number("bandwidth")});
            let mut gw = json!({
                "vpc_id": v.get("vpc"), "connect_subnet": v.get("subnet"), "local_subnets": v.list("local"),
                "flavor": v.get("flavor"), "eip1": eip, "eip2": eip,
            });
            if let Some(name) = v.given("name") {
                gw["name"] = json!(name);
            }
            if v.given("asn").is_some() {
                gw["bgp_asn"] = v.number("asn");
            }
            let path = format!("/v5/{}/vpn-gateways", v.get("place"));
            (Call::Huawei { method: "POST", path, body: Some(json!({"vpn_gateway": gw})) }, "/vpn_gateway/id")
        }
    }
}

/// What a form on a gateway's page needs to know of the gateway.
pub struct Target {
    pub api: Api,
    pub gateway_id: String,
    pub gateway_name: String,
    pub region: String,
    /// Huawei's project id of the region.
    pub project: String,
    /// The gateway's public addresses: (id, address).
    pub addresses: Vec<(String, String)>,
    /// The tenant's customer gateways of this API in the region: (id, "name (address)").
    pub peers: Vec<(String, String)>,
    /// The gateway's SSL-VPN servers: (id, name).
    pub servers: Vec<(String, String)>,
    /// Whether the gateway serves SSL-VPN.
    pub ssl: bool,
    /// Whether it takes IPsec connections (a client-to-site gateway does not).
    pub site: bool,
    /// What a new connection's local subnets default to.
    pub local_subnets: String,
}

/// What a form on a gateway's page creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Connection,
    SslServer,
    ClientCert,
}

impl What {
    pub fn parse(s: &str) -> Option<What> {
        match s {
            "connection" => Some(What::Connection),
            "ssl-server" => Some(What::SslServer),
            "client-cert" => Some(What::ClientCert),
            _ => None,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            What::Connection => "connection",
            What::SslServer => "ssl-server",
            What::ClientCert => "client-cert",
        }
    }

    /// Whether the console offers it on `t`: SSL-VPN servers and their certificates are Alibaba's, on a gateway
    /// with SSL-VPN (Huawei's client-to-site servers and users are created through its API).
    pub fn offered(self, t: &Target) -> bool {
        match self {
            What::Connection => t.site,
            What::SslServer => t.api == Api::Aliyun && t.ssl,
            What::ClientCert => t.api == Api::Aliyun && !t.servers.is_empty(),
        }
    }
}

/// The form of `what` on the gateway `t`, with its first values.
pub fn form_on(what: What, t: &Target) -> (Form, Values) {
    let mut v = Values::default();
    let (title, fields, submit) = match what {
        What::Connection => {
            v.set("local", t.local_subnets.clone());
            v.set("ike", "ikev2");
            if let Some((id, _)) = t.addresses.first() {
                v.set("address", id.clone());
            }
            ("connection", connection_fields(t), "Create connection")
        }
        What::SslServer => {
            v.set("proto", "UDP");
            v.set("port", "1194");
            v.set("cipher", "AES-128-CBC");
            v.set("local", t.local_subnets.clone());
            ("SSL-VPN server", ssl_server_fields(), "Create server")
        }
        What::ClientCert => {
            if let Some((id, _)) = t.servers.first() {
                v.set("server", id.clone());
            }
            let fields = vec![
                Field::new("server", "SSL-VPN server", Input::Select(t.servers.clone())).required(),
                Field::new("name", "Name", Input::Text),
            ];
            ("client certificate", fields, "Create certificate")
        }
    };
    fresh_token(&mut v);
    let form = Form {
        title: format!("New {title} on {}", t.gateway_name),
        action: format!("/console/create/{}/{}", what.slug(), t.gateway_id),
        fields,
        submit,
        back: (format!("/console/gateways/{}", t.gateway_id), "Gateway"),
    };
    (form, v)
}

fn ssl_server_fields() -> Vec<Field> {
    let options = |list: &[&str]| list.iter().map(|o| (o.to_string(), o.to_string())).collect();
    vec![
        Field::new("name", "Name", Input::Text),
        Field::new("pool", "Client address pool", Input::Text)
            .required()
            .hint("a CIDR block clients get addresses from"),
        Field::new("local", "Local subnets", Input::Text).required().hint("CIDR blocks, comma-separated"),
        Field::new("proto", "Protocol", Input::Select(options(&["UDP", "TCP"]))),
        Field::new("port", "Port", Input::Number),
        Field::new("cipher", "Cipher", Input::Select(options(&["AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "none"]))),
    ]
}

/// The call that creates an SSL-VPN server (`What::SslServer`) or a client certificate (`What::ClientCert`) on
/// `t`, and where its id is in the answer.
pub fn create_ssl(what: What, t: &Target, v: &Values) -> (Call, &'static str) {
    let mut params = vec![("ClientToken", v.get("token").to_string())];
    params.extend(v.given("name").map(|n| ("Name", n)));
    let (action, id_at) = if what == What::ClientCert {
        params.push(("SslVpnServerId", v.get("server").to_string()));
        ("CreateSslVpnClientCert", "/SslVpnClientCertId")
    } else {
        params.extend([
            ("VpnGatewayId", t.gateway_id.clone()),
            ("ClientIpPool", v.get("pool").to_string()),
            ("LocalSubnet", v.list("local").join(",")),
            ("Proto", v.get("proto").to_string()),
            ("Port", v.get("port").to_string()),
            ("Cipher", v.get("cipher").to_string()),
        ]);
        ("CreateSslVpnServer", "/SslVpnServerId")
    };
    (Call::Aliyun { action, region: t.region.clone(), params }, id_at)
}

fn connection_fields(t: &Target) -> Vec<Field> {
    let mut peers = vec![(String::new(), "— a new one, at the address below —".to_string())];
    peers.extend(t.peers.iter().cloned());
    let mut fields = vec![
        Field::new("name", "Name", Input::Text),
        Field::new("peer", "Customer gateway", Input::Select(peers)),
        Field::new("peer_ip", "New customer gateway's public address", Input::Text)
            .hint("used when no existing customer gateway is chosen; it is created first"),
    ];
    match t.api {
        Api::Aliyun => {
            fields.push(
                Field::new("local", "Local subnets", Input::Text).required().hint("CIDR blocks, comma-separated"),
            );
            fields.push(
                Field::new("remote", "Customer subnets", Input::Text).required().hint("CIDR blocks, comma-separated"),
            );
            let versions = vec![("ikev1".to_string(), "IKEv1".to_string()), ("ikev2".to_string(), "IKEv2".to_string())];
            fields.push(Field::new("ike", "IKE version", Input::Select(versions)));
            fields.push(Field::new("psk", "Pre-shared key", Input::Secret).hint("empty: one is generated"));
        }
        Api::Huawei => {
            fields.push(Field::new("peer_asn", "New customer gateway's BGP ASN", Input::Number));
            fields.push(Field::new("address", "Gateway address", Input::Select(t.addresses.clone())));
            fields.push(
                Field::new("remote", "Customer subnets", Input::Text).required().hint("CIDR blocks, comma-separated"),
            );
            fields.push(Field::new("psk", "Pre-shared key", Input::Secret).required());
        }
    }
    fields
}

/// The call that creates the customer gateway the form names by address, and where its id is in the answer.
pub fn create_peer(t: &Target, v: &Values) -> (Call, &'static str) {
    let name = v.given("name").map(|n| format!("{n}-peer"));
    match t.api {
        Api::Aliyun => {
            let mut params =
                vec![("IpAddress", v.get("peer_ip").to_string()), ("ClientToken", v.get("token").to_string())];
            params.extend(name.map(|n| ("Name", n)));
            (Call::Aliyun { action: "CreateCustomerGateway", region: t.region.clone(), params }, "/CustomerGatewayId")
        }
        Api::Huawei => {
            let mut c = json!({"id_type": "ip", "id_value": v.get("peer_ip")});
            if let Some(n) = name {
                c["name"] = json!(n);
            }
            if v.given("peer_asn").is_some() {
                c["bgp_asn"] = v.number("peer_asn");
            }
            let path = format!("/v5/{}/customer-gateways", t.project);
            (Call::Huawei { method: "POST", path, body: Some(json!({"customer_gateway": c})) }, "/customer_gateway/id")
        }
    }
}

/// Takes back a customer gateway created for a connection the API then refused.
pub fn delete_peer(t: &Target, id: &str) -> Call {
    match t.api {
        Api::Aliyun => Call::Aliyun {
            action: "DeleteCustomerGateway",
            region: t.region.clone(),
            params: vec![("CustomerGatewayId", id.to_string())],
        },
        Api::Huawei => {
            Call::Huawei { method: "DELETE", path: format!("/v5/{}/customer-gateways/{id}", t.project), body: None }
        }
    }
}

/// The call that creates the connection to customer gateway `peer`, and where its id is in the answer.
pub fn create_connection(t: &Target, v: &Values, peer: &str) -> (Call, &'static str) {
    match t.api {
        Api::Aliyun => {
            let mut params = vec![
                ("VpnGatewayId", t.gateway_id.clone()),
                ("CustomerGatewayId", peer.to_string()),
                ("LocalSubnet", v.list("local").join(",")),
                ("RemoteSubnet", v.list("remote").join(",")),
                ("IkeConfig", json!({"IkeVersion": v.get("ike")}).to_string()),
                ("ClientToken", v.get("token").to_string()),
            ];
            params.extend(v.given("name").map(|n| ("Name", n)));
            params.extend(v.given("psk").map(|k| ("IpsecPsk", k)));
            (Call::Aliyun { action: "CreateVpnConnection", region: t.region.clone(), params }, "/VpnConnectionId")
        }
        Api::Huawei => {
            let mut c = json!({
                "vgw_id": t.gateway_id, "vgw_ip": v.get("address"), "style": "static", "cgw_id": peer,
                "peer_subnets": v.list("remote"), "psk": v.get("psk"),
            });
            if let Some(n) = v.given("name") {
                c["name"] = json!(n);
            }
            let path = format!("/v5/{}/vpn-connection", t.project);
            (Call::Huawei { method: "POST", path, body: Some(json!({"vpn_connection": c})) }, "/vpn_connection/id")
        }
    }
}

/// The call that deletes a gateway: Alibaba's `DeleteVpnGateway`, Huawei's delete of a site-to-cloud or a P2C
/// gateway.
pub fn delete_gateway(gw: &VpnGateway, project: &str) -> Call {
    match Api::of(&gw.id) {
        Api::Aliyun => Call::Aliyun {
            action: "DeleteVpnGateway",
            region: gw.scope.region.clone(),
            params: vec![("VpnGatewayId", gw.id.clone())],
        },
        Api::Huawei => {
            let kind = if gw.role == GatewayRole::Client { "p2c-vpn-gateways" } else { "vpn-gateways" };
            Call::Huawei { method: "DELETE", path: format!("/v5/{project}/{kind}/{}", gw.id), body: None }
        }
    }
}

/// The call whose answer is a connection's configuration as its API gives it: Alibaba's
/// `DownloadVpnConnectionConfig`, Huawei's connection as `ShowVpnConnection` answers.
pub fn vendor_config(api: Api, region: &str, project: &str, id: &str) -> Call {
    match api {
        Api::Aliyun => Call::Aliyun {
            action: "DownloadVpnConnectionConfig",
            region: region.to_string(),
            params: vec![("VpnConnectionId", id.to_string())],
        },
        Api::Huawei => Call::Huawei { method: "GET", path: format!("/v5/{project}/vpn-connection/{id}"), body: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(api: Api, ssl: bool, site: bool, servers: usize) -> Target {
        Target {
            api,
            gateway_id: String::new(),
            gateway_name: String::new(),
            region: String::new(),
            project: String::new(),
            addresses: Vec::new(),
            peers: Vec::new(),
            servers: (0..servers).map(|i| (format!("vss-{i}"), String::new())).collect(),
            ssl,
            site,
            local_subnets: String::new(),
        }
    }

    /// Every form against every kind of gateway: a new `What` without a row here fails to compile the match below.
    #[test]
    fn forms_are_offered_only_where_they_apply() {
        let kinds = [
            ("alibaba site", target(Api::Aliyun, false, true, 0)),
            ("alibaba ssl, no server", target(Api::Aliyun, true, true, 0)),
            ("alibaba ssl, a server", target(Api::Aliyun, true, true, 1)),
            ("huawei site", target(Api::Huawei, false, true, 0)),
            ("huawei client-to-site", target(Api::Huawei, true, false, 1)),
        ];
        for what in [What::Connection, What::SslServer, What::ClientCert] {
            let want: [bool; 5] = match what {
                What::Connection => [true, true, true, true, false],
                What::SslServer => [false, true, true, false, false],
                What::ClientCert => [false, false, true, false, false],
            };
            for ((name, t), want) in kinds.iter().zip(want) {
                assert_eq!(what.offered(t), want, "{what:?} on {name}");
            }
        }
    }
}
