//! Response bodies: resource views with exactly the JSON types the SDK models declare, and the XML form.

use openvgw_control::connections::{ConnectionView, PeerConfig};
use openvgw_control::ssl::cert_status;
use openvgw_control::Tagged;
use openvgw_core::crypto::{IkeConfig, IpsecConfig};
use openvgw_core::model::{CustomerGateway, IpsecServer, RouteEntry, SslVpnClientCert, SslVpnServer, Tag, VpnGateway};
use serde_json::{json, Map, Value};

/// `{"Tag":[{"Key","Value"}]}`, the wrapped shape the SDK reads.
pub fn tags(tags: &[Tag]) -> Value {
    json!({ "Tag": tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect::<Vec<_>>() })
}

fn charge_type(gw: &VpnGateway) -> &'static str {
    if gw.charge_type == "POSTPAY" {
        "Postpay"
    } else {
        "Prepay"
    }
}

fn enable(b: bool) -> &'static str {
    if b {
        "enable"
    } else {
        "disable"
    }
}

pub fn iso8601(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The full gateway view (DescribeVpnGateway(s)).
pub fn gateway(t: &Tagged<VpnGateway>, reservation: bool) -> Value {
    let gw = &t.item;
    let mut v = json!({
        "VpnGatewayId": gw.id,
        "VpcId": gw.vpc_id,
        "VSwitchId": gw.vswitch_id,
        "InternetIp": gw.internet_ip,
        "IntranetIp": gw.intranet_ip,
        "SslVpnInternetIp": gw.internet_ip,
        "CreateTime": gw.created_at,
        "EndTime": gw.end_time,
        "Spec": format!("{}M", gw.bandwidth_mbps),
        "Name": gw.name,
        "Description": gw.description,
        "Status": gw.status().as_str(),
        "BusinessStatus": "Normal",
        "ChargeType": charge_type(gw),
        "IpsecVpn": enable(gw.enable_ipsec),
        "SslVpn": enable(gw.enable_ssl),
        "SslMaxConnections": gw.ssl_connections,
        "Tag": serde_json::to_string(&gw.system_tags).unwrap_or_default(),
        "Tags": tags(&t.tags),
        "AutoPropagate": gw.auto_propagate,
        "EnableBgp": gw.enable_bgp,
        "VpnType": gw.vpn_type,
        "NetworkType": "public",
        "EniInstanceIds": {"EniInstanceId": []},
    });
    if reservation {
        v["ReservationData"] = json!({});
    }
    v
}

pub fn customer_gateway(t: &Tagged<CustomerGateway>) -> Value {
    let c = &t.item;
    let mut v = json!({
        "CustomerGatewayId": c.id,
        "IpAddress": c.ip_address,
        "Description": c.description,
        "Name": c.name,
        "CreateTime": c.created_at,
        "AuthKey": c.auth_key.clone().unwrap_or_default(),
        "Tags": tags(&t.tags),
    });
    if let Some(asn) = c.asn {
        v["Asn"] = json!(asn);
    }
    v
}

pub fn ike_config(ike: &IkeConfig, psk: Option<&str>) -> Value {
    let mut v = json!({
        "IkeVersion": ike.version.as_str(),
        "IkeMode": ike.mode.as_str(),
        "IkeEncAlg": ike.enc.as_str(),
        "IkeAuthAlg": ike.auth.as_str(),
        "IkePfs": ike.pfs.as_str(),
        "IkeLifetime": ike.lifetime,
        "LocalId": ike.local_id,
        "RemoteId": ike.remote_id,
    });
    if let Some(psk) = psk {
        v["Psk"] = json!(psk);
    }
    v
}

pub fn ipsec_config(ipsec: &IpsecConfig) -> Value {
    json!({
        "IpsecEncAlg": ipsec.enc.as_str(),
        "IpsecAuthAlg": ipsec.auth.as_str(),
        "IpsecPfs": ipsec.pfs.as_str(),
        "IpsecLifetime": ipsec.lifetime,
    })
}

/// The other host of a /30 tunnel network (the peer's BGP address).
fn peer_bgp_ip(tunnel_cidr: &str, local: &str) -> String {
    tunnel_cidr
        .parse::<ipnet::Ipv4Net>()
        .ok()
        .and_then(|n| n.hosts().map(|h| h.to_string()).find(|h| h != local))
        .unwrap_or_default()
}

/// The connection view; `tag_key` is `Tags` (DescribeVpnConnection) or `Tag` (items of DescribeVpnConnections).
pub fn connection(t: &ConnectionView, tag_key: &str) -> Value {
    let c = &t.connection;
    let peer = &t.customer_gateway;
    let mut health = json!({
        "Enable": c.health_check.enable.to_string(),
        "Dip": c.health_check.dip,
        "Sip": c.health_check.sip,
        "Interval": c.health_check.interval_s,
        "Retry": c.health_check.retry,
    });
    if c.health_check.enable {
        health["Status"] = json!(if c.health_ok == Some(true) { "success" } else { "failed" });
    }
    let mut bgp = json!({
        "EnableBgp": c.bgp.enable.to_string(),
        "LocalAsn": c.bgp.local_asn,
        "TunnelCidr": c.bgp.tunnel_cidr,
        "LocalBgpIp": c.bgp.local_bgp_ip,
        "PeerBgpIp": peer_bgp_ip(&c.bgp.tunnel_cidr, &c.bgp.local_bgp_ip),
        "AuthKey": peer.auth_key.clone().unwrap_or_default(),
    });
    if let Some(asn) = peer.asn {
        bgp["PeerAsn"] = json!(asn);
    }
    if c.bgp.enable {
        // No BGP session exists until the data plane reports one.
        bgp["Status"] = json!("false");
    }
    let mut v = json!({
        "VpnConnectionId": c.id,
        "VpnGatewayId": c.gateway_id,
        "CustomerGatewayId": c.customer_gateway_id,
        "Name": c.name,
        "LocalSubnet": c.local_subnet,
        "RemoteSubnet": c.remote_subnet,
        "CreateTime": c.created_at,
        "EffectImmediately": c.effect_immediately,
        "Status": c.state.as_str(),
        "EnableDpd": c.enable_dpd,
        "EnableNatTraversal": c.enable_nat_traversal,
        "AutoConfigRoute": c.auto_config_route,
        "RemoteCaCertificate": c.remote_ca_certificate,
        "IkeConfig": ike_config(&c.ike, Some(&c.psk)),
        "IpsecConfig": ipsec_config(&c.ipsec),
        "VcoHealthCheck": health,
        "VpnBgpConfig": bgp,
    });
    v[tag_key] = tags(&t.tags);
    v
}

pub fn peer_config(p: &PeerConfig) -> Value {
    let c = &p.connection;
    json!({
        "Local": p.local,
        "Remote": p.remote,
        "LocalSubnet": c.local_subnet,
        "RemoteSubnet": c.remote_subnet,
        "IkeConfig": ike_config(&c.ike, Some(&c.psk)),
        "IpsecConfig": ipsec_config(&c.ipsec),
        "BgpConfigs": {"BgpConfig": if c.bgp.enable {
            vec![json!({
                "EnableBgp": "true",
                "LocalAsn": c.bgp.local_asn,
                "LocalBgpIp": c.bgp.local_bgp_ip,
                "TunnelCidr": c.bgp.tunnel_cidr,
                "PeerAsn": p.remote_asn,
                "PeerBgpIp": peer_bgp_ip(&c.bgp.tunnel_cidr, &c.bgp.local_bgp_ip),
            })]
        } else { vec![] }},
    })
}

pub fn route(r: &RouteEntry) -> Value {
    let mut v = json!({
        "VpnInstanceId": r.gateway_id,
        "RouteDest": r.route_dest,
        "NextHop": r.next_hop,
        "Weight": r.weight,
        "State": if r.published { "published" } else { "normal" },
        "CreateTime": r.created_at,
        "Description": r.description,
        "OverlayMode": r.overlay_mode,
    });
    match &r.route_source {
        Some(src) => {
            v["RouteSource"] = json!(src);
            v["Priority"] = json!(r.priority.unwrap_or(10));
        }
        None => {
            v["RouteEntryType"] = json!("custom");
            v["Source"] = json!("");
            v["AsPath"] = json!("");
            v["Community"] = json!("");
        }
    }
    v
}

pub fn ssl_server(s: &SslVpnServer, gw: &VpnGateway) -> Value {
    json!({
        "SslVpnServerId": s.id,
        "VpnGatewayId": s.gateway_id,
        "RegionId": s.scope.region,
        "Name": s.name,
        "ClientIpPool": s.client_ip_pool,
        "LocalSubnet": s.local_subnet,
        "Proto": s.proto,
        "Cipher": s.cipher,
        "Port": s.port,
        "Compress": s.compress,
        "Connections": s.connections,
        "MaxConnections": gw.ssl_connections,
        "InternetIp": gw.internet_ip,
        "CreateTime": s.created_at,
        "EnableMultiFactorAuth": s.enable_multi_factor_auth,
        "IDaaSInstanceId": s.idaas_instance_id,
        "IDaaSRegionId": s.idaas_region_id,
    })
}

pub fn client_cert(c: &SslVpnClientCert, now_ms: i64) -> Value {
    json!({
        "SslVpnClientCertId": c.id,
        "SslVpnServerId": c.server_id,
        "Name": c.name,
        "RegionId": c.scope.region,
        "Status": cert_status(c.end_time, now_ms),
        "CreateTime": c.created_at,
        "EndTime": c.end_time,
    })
}

pub fn ipsec_server(s: &IpsecServer, gw: &VpnGateway) -> Value {
    json!({
        "IpsecServerId": s.id,
        "IpsecServerName": s.name,
        "VpnGatewayId": s.gateway_id,
        "RegionId": s.scope.region,
        "CreationTime": iso8601(s.created_at),
        "InternetIp": gw.internet_ip,
        "LocalSubnet": s.local_subnet,
        "ClientIpPool": s.client_ip_pool,
        "EffectImmediately": s.effect_immediately,
        "PskEnabled": s.psk_enabled,
        "Psk": s.psk,
        "OnlineClientCount": s.online_clients,
        "MaxConnections": gw.ssl_connections,
        "MultiFactorAuthEnabled": false,
        "IDaaSInstanceId": "",
        "IkeConfig": ike_config(&s.ike, None),
        "IpsecConfig": ipsec_config(&s.ipsec),
    })
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_value(out: &mut String, name: &str, v: &Value) {
    match v {
        // An array is a sequence of elements named like its key (the SDK's XML convention).
        Value::Array(items) => {
            for item in items {
                xml_value(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            xml_fields(out, map);
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn xml_fields(out: &mut String, map: &Map<String, Value>) {
    for (k, v) in map {
        xml_value(out, k, v);
    }
}

/// The XML document for a JSON body: `<{root}>…</{root}>`.
pub fn to_xml(root: &str, body: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    match body {
        Value::Object(map) => {
            out.push_str(&format!("<{root}>"));
            xml_fields(&mut out, map);
            out.push_str(&format!("</{root}>"));
        }
        other => xml_value(&mut out, root, other),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_shapes() {
        let body = json!({"RequestId": "R", "VpnGateways": {"VpnGateway": [{"Name": "a&b"}, {"Name": "c"}]}, "N": 3, "B": true});
        let xml = to_xml("DescribeVpnGatewaysResponse", &body);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeVpnGatewaysResponse>"));
        assert!(xml.contains("<RequestId>R</RequestId>"));
        assert!(xml.contains("<VpnGateways><VpnGateway><Name>a&amp;b</Name></VpnGateway><VpnGateway><Name>c</Name></VpnGateway></VpnGateways>"));
        assert!(xml.contains("<N>3</N>") && xml.contains("<B>true</B>"));
    }

    #[test]
    fn peer_bgp_address_is_the_other_host() {
        assert_eq!(peer_bgp_ip("169.254.11.0/30", "169.254.11.1"), "169.254.11.2");
        assert_eq!(peer_bgp_ip("", ""), "");
    }
}
