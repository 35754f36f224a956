//! One handler per action: parse typed inputs from the parameters, call the service, build the response body.

use openvgw_control::connections::{
    BgpPatch, ConnectionChanges, ConnectionFilter, HealthCheckPatch, IkePatch, IpsecPatch, NewConnection,
};
use openvgw_control::customer_gateways::{CustomerGatewayChanges, NewCustomerGateway};
use openvgw_control::gateways::{GatewayChanges, GatewayFilter, NewGateway};
use openvgw_control::ipsec_servers::IpsecServerSpec;
use openvgw_control::routes::{NewRoute, RouteKey};
use openvgw_control::ssl::{ClientCertFilter, SslServerFilter, SslServerSpec};
use openvgw_control::{Ctx, Service, TokenPage};
use openvgw_core::crypto::{AuthAlg, DhGroup, EncAlg, IkeMode, IkeVersion};
use openvgw_core::model::{GatewayStatus, Scope, Tag};
use openvgw_core::{now_ms, Kind};
use openvgw_store::TagFilter;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{from_core, WireError};
use crate::params::{Json, Params};
use crate::render;

/// Every action this dialect serves (the seed's 43, `DeleteVpnGateway`, and the SDK's `DescribeSslVpnClientCert`).
pub const ACTIONS: &[&str] = &[
    "CreateVpnGateway",
    "ModifyVpnGatewayAttribute",
    "DescribeVpnGateways",
    "DescribeVpnGateway",
    "DeleteVpnGateway",
    "TagResources",
    "ListTagResources",
    "UnTagResources",
    "AssociateVpnGatewayWithCertificate",
    "DissociateVpnGatewayWithCertificate",
    "ListVpnCertificateAssociations",
    "CreateCustomerGateway",
    "ModifyCustomerGatewayAttribute",
    "DescribeCustomerGateways",
    "DescribeCustomerGateway",
    "DeleteCustomerGateway",
    "CreateVpnRouteEntry",
    "CreateVpnPbrRouteEntry",
    "PublishVpnRouteEntry",
    "DescribeVpnRouteEntries",
    "DescribeVpnPbrRouteEntries",
    "ModifyVpnRouteEntryWeight",
    "ModifyVpnPbrRouteEntryWeight",
    "DeleteVpnRouteEntry",
    "DeleteVpnPbrRouteEntry",
    "CreateVpnConnection",
    "ModifyVpnConnectionAttribute",
    "DescribeVpnConnections",
    "DescribeVpnConnection",
    "DownloadVpnConnectionConfig",
    "DeleteVpnConnection",
    "CreateSslVpnServer",
    "ModifySslVpnServer",
    "DescribeSslVpnServers",
    "DeleteSslVpnServer",
    "CreateSslVpnClientCert",
    "ModifySslVpnClientCert",
    "DescribeSslVpnClientCerts",
    "DescribeSslVpnClientCert",
    "DescribeVpnSslServerLogs",
    "DeleteSslVpnClientCert",
    "CreateIpsecServer",
    "ListIpsecServers",
    "UpdateIpsecServer",
    "DeleteIpsecServer",
];

/// Parameters that identify or sign a request rather than describe the operation (left out of idempotency hashes).
const NON_BUSINESS: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "ClientToken",
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
];

pub struct Call<'a> {
    pub svc: &'a Service,
    pub action: &'a str,
    pub scope: Scope,
    pub p: &'a Params,
}

type Out = Result<Value, WireError>;

impl Call<'_> {
    fn core(&self, e: openvgw_core::Error) -> WireError {
        from_core(&e, self.action)
    }

    fn ctx(&self) -> Result<Ctx, WireError> {
        let client_token = self.p.string("ClientToken");
        if let Some(t) = &client_token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(WireError::invalid("ClientToken", "at most 64 ASCII characters"));
            }
        }
        let mut pairs: Vec<(&String, &String)> =
            self.p.pairs().filter(|(k, _)| !NON_BUSINESS.contains(&k.as_str())).collect();
        pairs.sort();
        let mut h = Sha256::new();
        for (k, v) in pairs {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        Ok(Ctx {
            scope: self.scope.clone(),
            action: self.action.to_string(),
            client_token,
            params_hash: hex::encode(h.finalize()),
            dry_run: self.p.dry_run()?,
        })
    }
}

fn tags_param(p: &Params, prefix: &str) -> Result<Vec<Tag>, WireError> {
    p.objects(prefix)?
        .into_iter()
        .map(|o| {
            let key =
                o.get("Key").filter(|k| !k.is_empty()).ok_or_else(|| WireError::missing(&format!("{prefix}.N.Key")))?;
            Ok(Tag { key: key.clone(), value: o.get("Value").cloned().unwrap_or_default() })
        })
        .collect()
}

fn tag_filters(p: &Params) -> Result<Vec<TagFilter>, WireError> {
    p.objects("Tag")?
        .into_iter()
        .map(|o| match o.get("Key").filter(|k| !k.is_empty()) {
            Some(key) => Ok(TagFilter { key: key.clone(), value: o.get("Value").filter(|v| !v.is_empty()).cloned() }),
            None => Err(WireError::invalid("Tag.N.Key", "a tag filter needs a key")),
        })
        .collect()
}

fn resource_kind(p: &Params) -> Result<Kind, WireError> {
    let t = p.req("ResourceType")?;
    match t.to_ascii_lowercase().as_str() {
        "vpngateway" => Ok(Kind::VpnGateway),
        "customergateway" => Ok(Kind::CustomerGateway),
        "vpnconnection" => Ok(Kind::VpnConnection),
        _ => Err(WireError::invalid("ResourceType", format!("{t} is not served by this endpoint"))),
    }
}

fn resource_type_name(kind: &str) -> &'static str {
    match kind {
        "customer_gateway" => "CustomerGateway",
        "vpn_connection" => "VpnConnection",
        _ => "VpnGateWay",
    }
}

fn ike_patch(j: Option<Json>) -> Result<IkePatch, WireError> {
    let Some(j) = j else {
        return Ok(IkePatch::default());
    };
    Ok(IkePatch {
        version: j.parsed(&["IkeVersion"], IkeVersion::parse)?,
        mode: j.parsed(&["IkeMode"], IkeMode::parse)?,
        enc: j.parsed(&["IkeEncAlg"], EncAlg::parse)?,
        auth: j.parsed(&["IkeAuthAlg"], |s| {
            if s.eq_ignore_ascii_case("sha") {
                Some(AuthAlg::Sha1)
            } else {
                AuthAlg::parse(s)
            }
        })?,
        pfs: j.parsed(&["IkePfs"], DhGroup::parse)?,
        lifetime: j.u32(&["IkeLifetime"])?,
        // The seed spells the local id `LocalIdIPsec` in one place.
        local_id: j.str(&["LocalId", "LocalIdIPsec"])?,
        remote_id: j.str(&["RemoteId"])?,
        psk: j.str(&["Psk"])?,
    })
}

fn ipsec_patch(j: Option<Json>) -> Result<IpsecPatch, WireError> {
    let Some(j) = j else {
        return Ok(IpsecPatch::default());
    };
    Ok(IpsecPatch {
        enc: j.parsed(&["IpsecEncAlg"], EncAlg::parse)?,
        auth: j.parsed(&["IpsecAuthAlg"], AuthAlg::parse)?,
        pfs: j.parsed(&["IpsecPfs"], DhGroup::parse)?,
        lifetime: j.u32(&["IpsecLifetime"])?,
    })
}

fn health_patch(j: Option<Json>) -> Result<HealthCheckPatch, WireError> {
    let Some(j) = j else {
        return Ok(HealthCheckPatch::default());
    };
    Ok(HealthCheckPatch {
        enable: j.bool(&["enable", "Enable"])?,
        dip: j.str(&["dip", "Dip"])?,
        sip: j.str(&["sip", "Sip"])?,
        interval_s: j.u32(&["interval", "Interval"])?,
        retry: j.u32(&["retry", "Retry"])?,
    })
}

fn bgp_patch(j: Option<Json>) -> Result<BgpPatch, WireError> {
    let Some(j) = j else {
        return Ok(BgpPatch::default());
    };
    Ok(BgpPatch {
        enable: j.bool(&["EnableBgp", "enableBgp"])?,
        local_asn: j.str(&["LocalAsn"])?,
        tunnel_cidr: j.str(&["TunnelCidr"])?,
        local_bgp_ip: j.str(&["LocalBgpIp"])?,
    })
}

fn page_fields(v: &mut Value, page: openvgw_control::Page, total: u64) {
    v["PageNumber"] = json!(page.number);
    v["PageSize"] = json!(page.size);
    v["TotalCount"] = json!(total);
}

fn route_key(p: &Params, policy: bool, weight_required: bool) -> Result<RouteKey, WireError> {
    Ok(RouteKey {
        gateway_id: p.req("VpnGatewayId")?.to_string(),
        route_source: if policy { Some(p.req("RouteSource")?.to_string()) } else { None },
        route_dest: p.req("RouteDest")?.to_string(),
        next_hop: p.req("NextHop")?.to_string(),
        weight: if weight_required { Some(p.req_u32("Weight")?) } else { p.u32("Weight")? },
    })
}

fn overlay_mode(p: &Params) -> Result<(), WireError> {
    match p.get("OverlayMode") {
        Some(m) if !m.eq_ignore_ascii_case("ipsec") => Err(WireError::invalid("OverlayMode", "must be Ipsec")),
        _ => Ok(()),
    }
}

/// Runs one action. Called on a blocking thread (the store is synchronous).
pub fn dispatch(c: &Call) -> Out {
    let p = c.p;
    let svc = c.svc;
    let scope = &c.scope;
    let e = |err| c.core(err);
    match c.action {
        // ---- VPN gateways --------------------------------------------------------------------------------------
        "CreateVpnGateway" => {
            let input = NewGateway {
                name: p.string("Name"),
                vpc_id: p.req("VpcId")?.to_string(),
                vswitch_id: p.string("VSwitchId"),
                bandwidth_mbps: p.req_u32("Bandwidth")?,
                charge_type: p.string("InstanceChargeType"),
                period_months: p.u32("Period")?,
                auto_pay: p.bool("AutoPay")?.unwrap_or(false),
                enable_ipsec: p.bool("EnableIpsec")?.unwrap_or(true),
                enable_ssl: p.bool("EnableSsl")?.unwrap_or(false),
                ssl_connections: p.u32("SslConnections")?,
                vpn_type: p.string("VpnType"),
            };
            let gw = svc.create_gateway(&c.ctx()?, input).map_err(e)?;
            Ok(json!({"VpnGatewayId": gw.id, "Name": gw.name, "OrderId": gw.order_id}))
        }
        "ModifyVpnGatewayAttribute" => {
            let ch = GatewayChanges {
                name: p.string("Name"),
                description: p.string("Description"),
                auto_propagate: p.bool("AutoPropagate")?,
            };
            let gw = svc.modify_gateway(&c.ctx()?, p.req("VpnGatewayId")?, ch).map_err(e)?;
            Ok(json!({
                "VpnGatewayId": gw.id, "VpcId": gw.vpc_id, "VSwitchId": gw.vswitch_id, "Status": gw.status().as_str(),
                "InternetIp": gw.internet_ip, "IntranetIp": gw.intranet_ip, "Spec": format!("{}M", gw.bandwidth_mbps),
                "CreateTime": gw.created_at, "EndTime": gw.end_time, "AutoPropagate": gw.auto_propagate,
                "EnableBgp": gw.enable_bgp, "BusinessStatus": "Normal", "Name": gw.name, "Description": gw.description,
            }))
        }
        "DescribeVpnGateway" => {
            let gw = svc.get_gateway(scope, p.req("VpnGatewayId")?).map_err(e)?;
            Ok(render::gateway(&gw, p.bool("IncludeReservationData")?.unwrap_or(false)))
        }
        "DescribeVpnGateways" => {
            let status = p
                .get("Status")
                .map(|s| {
                    GatewayStatus::parse(s)
                        .ok_or_else(|| WireError::invalid("Status", format!("{s} is not a gateway status")))
                })
                .transpose()?;
            let filter = GatewayFilter {
                vpc_id: p.string("VpcId"),
                gateway_id: p.string("VpnGatewayId"),
                status,
                business_status: p.string("BusinessStatus"),
                tags: tag_filters(p)?,
            };
            let page = p.page()?;
            let reservation = p.bool("IncludeReservationData")?.unwrap_or(false);
            let listed = svc.list_gateways(scope, &filter, page).map_err(e)?;
            let items: Vec<Value> = listed.items.iter().map(|g| render::gateway(g, reservation)).collect();
            let mut v = json!({"VpnGateways": {"VpnGateway": items}});
            page_fields(&mut v, page, listed.total);
            Ok(v)
        }
        "DeleteVpnGateway" => {
            svc.delete_gateway(&c.ctx()?, p.req("VpnGatewayId")?).map_err(e)?;
            Ok(json!({}))
        }
        // ---- tags ----------------------------------------------------------------------------------------------
        "TagResources" => {
            let kind = resource_kind(p)?;
            let ids = p.list("ResourceId")?;
            if ids.is_empty() {
                return Err(WireError::missing("ResourceId.N"));
            }
            let tags = tags_param(p, "Tag")?;
            if tags.is_empty() {
                return Err(WireError::missing("Tag.N.Key"));
            }
            svc.tag_resources(&c.ctx()?, kind, &ids, &tags).map_err(e)?;
            Ok(json!({}))
        }
        "UnTagResources" => {
            let kind = resource_kind(p)?;
            let ids = p.list("ResourceId")?;
            if ids.is_empty() {
                return Err(WireError::missing("ResourceId.N"));
            }
            let keys = p.list("TagKey")?;
            let all = p.bool("All")?.unwrap_or(false);
            if keys.is_empty() && !all {
                return Err(WireError::missing("TagKey.N"));
            }
            svc.untag_resources(&c.ctx()?, kind, &ids, &keys, all).map_err(e)?;
            Ok(json!({}))
        }
        "ListTagResources" => {
            let kind = resource_kind(p)?;
            let ids = p.list("ResourceId")?;
            let objects = p.objects("Tag")?;
            if objects.iter().any(|o| o.get("Key").is_none_or(|k| k.is_empty())) {
                return Err(WireError::invalid("Tag.N.Key", "a tag value needs its key"));
            }
            let filters = tag_filters(p)?;
            if ids.is_empty() && filters.is_empty() {
                return Err(WireError::missing("ResourceId.N"));
            }
            let page = TokenPage::parse(p.get("NextToken"), p.max_results(50, 50)?).map_err(e)?;
            let (rows, next) = svc.list_tag_resources(scope, kind, &ids, &filters, &page).map_err(e)?;
            let items: Vec<Value> = rows
                .iter()
                .map(|r| json!({"ResourceId": r.resource_id, "ResourceType": resource_type_name(&r.resource_kind), "TagKey": r.key, "TagValue": r.value}))
                .collect();
            Ok(json!({"TagResources": {"TagResource": items}, "NextToken": next}))
        }
        // ---- certificates (national-standard gateways) ------------------------------------------------------------
        "AssociateVpnGatewayWithCertificate" | "DissociateVpnGatewayWithCertificate" => {
            let gw = p.req("VpnGatewayId")?;
            let cert = p.req("CertificateId")?;
            let ty = p.req("CertificateType")?;
            let ctx = c.ctx()?;
            if c.action.starts_with("Associate") {
                svc.associate_certificate(&ctx, gw, cert, ty).map_err(e)?;
            } else {
                svc.dissociate_certificate(&ctx, gw, cert, ty).map_err(e)?;
            }
            Ok(json!({}))
        }
        "ListVpnCertificateAssociations" => {
            let page = TokenPage::parse(p.get("NextToken"), p.max_results(10, 20)?).map_err(e)?;
            let (items, total, next) = svc
                .list_certificate_associations(
                    scope,
                    p.get("VpnGatewayId"),
                    p.get("CertificateId"),
                    p.get("CertificateType"),
                    &page,
                )
                .map_err(e)?;
            let rel: Vec<Value> = items
                .iter()
                .map(|a| json!({"VpnGatewayId": a.gateway_id, "CertificateId": a.certificate_id, "CertificateType": a.certificate_type,
                    "AssociationTime": render::iso8601(a.created_at), "RegionId": a.scope.region}))
                .collect();
            Ok(json!({"VpnCertificateRelations": rel, "TotalCount": total, "MaxResults": page.max, "NextToken": next}))
        }
        // ---- customer gateways -----------------------------------------------------------------------------------
        "CreateCustomerGateway" => {
            let mut tags = tags_param(p, "Tags")?;
            tags.extend(tags_param(p, "Tag")?);
            let input = NewCustomerGateway {
                ip_address: p.req("IpAddress")?.to_string(),
                name: p.string("Name"),
                description: p.string("Description"),
                asn: p.string("Asn"),
                auth_key: p.string("AuthKey"),
                tags,
            };
            let cgw = svc.create_customer_gateway(&c.ctx()?, input).map_err(e)?;
            Ok(json!({"CustomerGatewayId": cgw.id, "IpAddress": cgw.ip_address, "Name": cgw.name,
                "Description": cgw.description, "CreateTime": cgw.created_at}))
        }
        "ModifyCustomerGatewayAttribute" => {
            let ch = CustomerGatewayChanges {
                name: p.string("Name"),
                description: p.string("Description"),
                auth_key: p.string("AuthKey"),
            };
            let cgw = svc.modify_customer_gateway(&c.ctx()?, p.req("CustomerGatewayId")?, ch).map_err(e)?;
            Ok(json!({"CustomerGatewayId": cgw.id, "IpAddress": cgw.ip_address, "Name": cgw.name,
                "Description": cgw.description, "CreateTime": cgw.created_at}))
        }
        "DescribeCustomerGateway" => {
            let cgw = svc.get_customer_gateway(scope, p.req("CustomerGatewayId")?).map_err(e)?;
            Ok(render::customer_gateway(&cgw))
        }
        "DescribeCustomerGateways" => {
            let page = p.page()?;
            let listed = svc.list_customer_gateways(scope, p.get("CustomerGatewayId"), page).map_err(e)?;
            let items: Vec<Value> = listed.items.iter().map(render::customer_gateway).collect();
            let mut v = json!({"CustomerGateways": {"CustomerGateway": items}});
            page_fields(&mut v, page, listed.total);
            Ok(v)
        }
        "DeleteCustomerGateway" => {
            svc.delete_customer_gateway(&c.ctx()?, p.req("CustomerGatewayId")?).map_err(e)?;
            Ok(json!({}))
        }
        // ---- routes ----------------------------------------------------------------------------------------------
        "CreateVpnRouteEntry" | "CreateVpnPbrRouteEntry" => {
            let policy = c.action == "CreateVpnPbrRouteEntry";
            let input = NewRoute {
                gateway_id: p.req("VpnGatewayId")?.to_string(),
                route_source: if policy { Some(p.req("RouteSource")?.to_string()) } else { None },
                route_dest: p.req("RouteDest")?.to_string(),
                next_hop: p.req("NextHop")?.to_string(),
                weight: p.req_u32("Weight")?,
                priority: if policy { p.u32("Priority")? } else { None },
                publish_vpc: p.req_bool("PublishVpc")?,
                description: p.string("Description"),
                overlay_mode: p.string("OverlayMode"),
            };
            let r = svc.create_route(&c.ctx()?, input).map_err(e)?;
            Ok(render::route(&r))
        }
        "PublishVpnRouteEntry" => {
            let policy = match p.req("RouteType")?.to_ascii_lowercase().as_str() {
                "pbr" => true,
                "dbr" => false,
                other => return Err(WireError::invalid("RouteType", format!("{other} must be pbr or dbr"))),
            };
            let publish = p.req_bool("PublishVpc")?;
            let key = RouteKey {
                gateway_id: p.req("VpnGatewayId")?.to_string(),
                route_source: None,
                route_dest: p.req("RouteDest")?.to_string(),
                next_hop: p.req("NextHop")?.to_string(),
                weight: None,
            };
            let key = if policy { RouteKey { route_source: p.string("RouteSource"), ..key } } else { key };
            publish_any_source(svc, &c.ctx()?, key, policy, publish).map_err(e)?;
            Ok(json!({}))
        }
        "DescribeVpnRouteEntries" | "DescribeVpnPbrRouteEntries" => {
            let policy = c.action == "DescribeVpnPbrRouteEntries";
            let page = p.page()?;
            let gw = p.req("VpnGatewayId")?;
            let system_only = match p.get("RouteEntryType").map(str::to_ascii_lowercase).as_deref() {
                None | Some("custom") => false,
                Some("system") => true,
                Some(other) => {
                    return Err(WireError::invalid("RouteEntryType", format!("{other} must be Custom or System")))
                }
            };
            let listed = svc.list_routes(scope, gw, policy, page).map_err(e)?;
            // openvgw has no system-generated routes yet: a `System` filter matches none.
            let (items, total) = if system_only { (vec![], 0) } else { (listed.items, listed.total) };
            let items: Vec<Value> = items.iter().map(render::route).collect();
            let mut v = if policy {
                json!({"VpnPbrRouteEntries": {"VpnPbrRouteEntry": items}})
            } else {
                json!({"VpnRouteEntries": {"VpnRouteEntry": items},
                       "VpnRouteCounts": {"VpnRouteCount": [{"RouteEntryType": "custom", "Source": "CUSTOM", "RouteCount": total}]}})
            };
            page_fields(&mut v, page, total);
            Ok(v)
        }
        "ModifyVpnRouteEntryWeight" | "ModifyVpnPbrRouteEntryWeight" => {
            let policy = c.action == "ModifyVpnPbrRouteEntryWeight";
            overlay_mode(p)?;
            let key = route_key(p, policy, true)?;
            let new_weight = p.req_u32("NewWeight")?;
            svc.modify_route_weight(&c.ctx()?, key, policy, new_weight).map_err(e)?;
            Ok(json!({}))
        }
        "DeleteVpnRouteEntry" | "DeleteVpnPbrRouteEntry" => {
            let policy = c.action == "DeleteVpnPbrRouteEntry";
            overlay_mode(p)?;
            let key = route_key(p, policy, true)?;
            svc.delete_route(&c.ctx()?, key, policy).map_err(e)?;
            Ok(json!({}))
        }
        // ---- IPsec connections -----------------------------------------------------------------------------------
        "CreateVpnConnection" => {
            let mut tags = tags_param(p, "Tags")?;
            tags.extend(tags_param(p, "Tag")?);
            let input = NewConnection {
                gateway_id: p.req("VpnGatewayId")?.to_string(),
                customer_gateway_id: p.req("CustomerGatewayId")?.to_string(),
                name: p.string("Name"),
                local_subnet: p.req("LocalSubnet")?.to_string(),
                remote_subnet: p.req("RemoteSubnet")?.to_string(),
                effect_immediately: p.bool("EffectImmediately")?,
                ike: ike_patch(p.json("IkeConfig")?)?,
                ipsec: ipsec_patch(p.json("IpsecConfig")?)?,
                health_check: health_patch(p.json("HealthCheckConfig")?)?,
                auto_config_route: p.bool("AutoConfigRoute")?,
                enable_dpd: p.bool("EnableDpd")?,
                enable_nat_traversal: p.bool("EnableNatTraversal")?,
                bgp: bgp_patch(p.json("BgpConfig")?)?,
                remote_ca_certificate: p.string("RemoteCaCertificate"),
                tags,
            };
            let conn = svc.create_connection(&c.ctx()?, input).map_err(e)?;
            Ok(json!({"VpnConnectionId": conn.id, "Name": conn.name, "CreateTime": conn.created_at}))
        }
        "ModifyVpnConnectionAttribute" => {
            let ch = ConnectionChanges {
                name: p.string("Name"),
                description: None,
                local_subnet: p.string("LocalSubnet"),
                remote_subnet: p.string("RemoteSubnet"),
                effect_immediately: p.bool("EffectImmediately")?,
                ike: ike_patch(p.json("IkeConfig")?)?,
                ipsec: ipsec_patch(p.json("IpsecConfig")?)?,
                health_check: health_patch(p.json("HealthCheckConfig")?)?,
                auto_config_route: p.bool("AutoConfigRoute")?,
                enable_dpd: p.bool("EnableDpd")?,
                enable_nat_traversal: p.bool("EnableNatTraversal")?,
                bgp: bgp_patch(p.json("BgpConfig")?)?,
                remote_ca_certificate: p.string("RemoteCaCertificate"),
            };
            let conn = svc.modify_connection(&c.ctx()?, p.req("VpnConnectionId")?, ch).map_err(e)?;
            let mut v = render::connection(&conn, "Tags");
            v["Description"] = json!("");
            Ok(v)
        }
        "DescribeVpnConnection" => {
            let conn = svc.get_connection(scope, p.req("VpnConnectionId")?).map_err(e)?;
            Ok(render::connection(&conn, "Tags"))
        }
        "DescribeVpnConnections" => {
            let page = p.page()?;
            let f = ConnectionFilter {
                gateway_id: p.string("VpnGatewayId"),
                customer_gateway_id: p.string("CustomerGatewayId"),
                connection_id: p.string("VpnConnectionId"),
                tags: tag_filters(p)?,
            };
            let listed = svc.list_connections(scope, &f, page).map_err(e)?;
            let items: Vec<Value> = listed.items.iter().map(|c| render::connection(c, "Tag")).collect();
            let mut v = json!({"VpnConnections": {"VpnConnection": items}});
            page_fields(&mut v, page, listed.total);
            Ok(v)
        }
        "DownloadVpnConnectionConfig" => {
            let pc = svc.peer_config(scope, p.req("VpnConnectionId")?).map_err(e)?;
            Ok(json!({"VpnConnectionConfig": render::peer_config(&pc)}))
        }
        "DeleteVpnConnection" => {
            svc.delete_connection(&c.ctx()?, p.req("VpnConnectionId")?).map_err(e)?;
            Ok(json!({}))
        }
        // ---- SSL-VPN ---------------------------------------------------------------------------------------------
        "CreateSslVpnServer" | "ModifySslVpnServer" => {
            let create = c.action == "CreateSslVpnServer";
            let spec = SslServerSpec {
                name: p.string("Name"),
                client_ip_pool: if create {
                    Some(p.req("ClientIpPool")?.to_string())
                } else {
                    p.string("ClientIpPool")
                },
                local_subnet: if create { Some(p.req("LocalSubnet")?.to_string()) } else { p.string("LocalSubnet") },
                proto: p.string("Proto"),
                cipher: p.string("Cipher"),
                port: p.int("Port")?,
                compress: p.bool("Compress")?,
                enable_multi_factor_auth: p.bool("EnableMultiFactorAuth")?,
                idaas_instance_id: p.string("IDaaSInstanceId"),
                idaas_region_id: p.string("IDaaSRegionId"),
            };
            if create {
                let s = svc.create_ssl_server(&c.ctx()?, p.req("VpnGatewayId")?, spec).map_err(e)?;
                Ok(json!({"SslVpnServerId": s.id, "Name": s.name}))
            } else {
                let id = p.req("SslVpnServerId")?;
                let (s, gw) = svc.modify_ssl_server(&c.ctx()?, id, spec).map_err(e)?;
                Ok(render::ssl_server(&s, &gw))
            }
        }
        "DescribeSslVpnServers" => {
            let page = p.page()?;
            let f = SslServerFilter {
                server_id: p.string("SslVpnServerId"),
                gateway_id: p.string("VpnGatewayId"),
                name: p.string("Name"),
            };
            let listed = svc.list_ssl_servers(scope, &f, page).map_err(e)?;
            let items: Vec<Value> = listed.items.iter().map(|(s, g)| render::ssl_server(s, g)).collect();
            let mut v = json!({"SslVpnServers": {"SslVpnServer": items}});
            page_fields(&mut v, page, listed.total);
            Ok(v)
        }
        "DeleteSslVpnServer" => {
            svc.delete_ssl_server(&c.ctx()?, p.req("SslVpnServerId")?).map_err(e)?;
            Ok(json!({}))
        }
        "CreateSslVpnClientCert" => {
            let cert = svc.create_client_cert(&c.ctx()?, p.req("SslVpnServerId")?, p.string("Name")).map_err(e)?;
            Ok(json!({"SslVpnClientCertId": cert.id, "Name": cert.name}))
        }
        "ModifySslVpnClientCert" => {
            let cert = svc.rename_client_cert(&c.ctx()?, p.req("SslVpnClientCertId")?, p.string("Name")).map_err(e)?;
            Ok(json!({"SslVpnClientCertId": cert.id, "Name": cert.name}))
        }
        "DescribeSslVpnClientCerts" => {
            let page = p.page()?;
            let f = ClientCertFilter {
                server_id: p.string("SslVpnServerId"),
                cert_id: p.string("SslVpnClientCertId"),
                name: p.string("Name"),
            };
            let listed = svc.list_client_certs(scope, &f, page).map_err(e)?;
            let now = now_ms();
            let items: Vec<Value> = listed.items.iter().map(|c| render::client_cert(c, now)).collect();
            let mut v = json!({"SslVpnClientCertKeys": {"SslVpnClientCertKey": items}});
            page_fields(&mut v, page, listed.total);
            Ok(v)
        }
        "DescribeSslVpnClientCert" => {
            let b = svc.client_bundle(scope, p.req("SslVpnClientCertId")?).map_err(e)?;
            let mut v = render::client_cert(&b.cert, now_ms());
            v["CaCert"] = json!(b.ca_cert_pem);
            v["ClientCert"] = json!(b.cert.cert_pem);
            v["ClientKey"] = json!(b.cert.key_pem);
            v["ClientConfig"] = json!(b.client_config);
            Ok(v)
        }
        "DescribeVpnSslServerLogs" => {
            let server = p.req("VpnSslServerId")?;
            let from = p.int("From")?;
            let to = p.int("To")?;
            let minutes = p.int("MinutePeriod")?;
            let now_s = now_ms() / 1000;
            let (from, to) = match (from, to, minutes) {
                (Some(f), Some(t), _) => (f, t),
                (Some(f), None, Some(m)) => (f, f + m * 60),
                (None, Some(t), Some(m)) => (t - m * 60, t),
                (None, None, Some(m)) => (now_s - m * 60, now_s),
                (Some(_), None, None) => return Err(WireError::missing("To")),
                (None, Some(_), None) => return Err(WireError::missing("From")),
                (None, None, None) => return Err(WireError::missing("MinutePeriod")),
            };
            if from > to || minutes.is_some_and(|m| m <= 0) {
                return Err(WireError::invalid("From", "the time range is empty"));
            }
            let page = p.page()?;
            let fut = svc.ssl_server_logs(scope, server, p.get("SslVpnClientCertId"), from, to, page);
            let listed = tokio::runtime::Handle::current().block_on(fut).map_err(e)?;
            let mut v = json!({"Data": {"Logs": listed.items}, "Count": listed.total, "IsCompleted": true});
            v["PageNumber"] = json!(page.number);
            v["PageSize"] = json!(page.size);
            Ok(v)
        }
        "DeleteSslVpnClientCert" => {
            svc.delete_client_cert(&c.ctx()?, p.req("SslVpnClientCertId")?).map_err(e)?;
            Ok(json!({}))
        }
        // ---- IPsec servers ---------------------------------------------------------------------------------------
        "CreateIpsecServer" | "UpdateIpsecServer" => {
            let create = c.action == "CreateIpsecServer";
            let spec = IpsecServerSpec {
                // CreateIpsecServer spells it `IpSecServerName`; Update uses `IpsecServerName`.
                name: p.string("IpSecServerName").or_else(|| p.string("IpsecServerName")),
                local_subnet: if create { Some(p.req("LocalSubnet")?.to_string()) } else { p.string("LocalSubnet") },
                client_ip_pool: if create {
                    Some(p.req("ClientIpPool")?.to_string())
                } else {
                    p.string("ClientIpPool")
                },
                effect_immediately: p.bool("EffectImmediately")?,
                ike: ike_patch(p.json("IkeConfig")?)?,
                ipsec: ipsec_patch(p.json("IpsecConfig")?)?,
                psk_enabled: p.bool("PskEnabled")?,
                psk: p.string("Psk"),
            };
            if create {
                let s = svc.create_ipsec_server(&c.ctx()?, p.req("VpnGatewayId")?, spec).map_err(e)?;
                Ok(json!({"IpsecServerId": s.id, "IpsecServerName": s.name, "VpnGatewayId": s.gateway_id,
                    "RegionId": s.scope.region, "CreationTime": render::iso8601(s.created_at)}))
            } else {
                svc.update_ipsec_server(&c.ctx()?, p.req("IpsecServerId")?, spec).map_err(e)?;
                Ok(json!({}))
            }
        }
        "ListIpsecServers" => {
            let page = TokenPage::parse(p.get("NextToken"), p.max_results(10, 20)?).map_err(e)?;
            let found =
                svc.list_ipsec_servers(scope, p.get("VpnGatewayId"), p.get("IpsecServerName"), &page).map_err(e)?;
            let list: Vec<Value> = found.items.iter().map(|(s, g)| render::ipsec_server(s, g)).collect();
            Ok(
                json!({"IpsecServers": list, "TotalCount": found.total, "MaxResults": page.max, "NextToken": page.next(found.more)}),
            )
        }
        "DeleteIpsecServer" => {
            svc.delete_ipsec_server(&c.ctx()?, p.req("IpsecServerId")?).map_err(e)?;
            Ok(json!({}))
        }
        other => Err(WireError::unknown_action(other)),
    }
}

/// PublishVpnRouteEntry names a policy route without its source: publish the one route that matches.
fn publish_any_source(
    svc: &Service,
    ctx: &Ctx,
    key: RouteKey,
    policy: bool,
    publish: bool,
) -> openvgw_core::Result<()> {
    if !policy || key.route_source.is_some() {
        return svc.publish_route(ctx, key, policy, publish);
    }
    let routes =
        svc.list_routes(&ctx.scope, &key.gateway_id, true, openvgw_control::Page { number: 1, size: u64::MAX / 2 })?;
    let source = routes
        .items
        .iter()
        .find(|r| r.route_dest == key.route_dest && r.next_hop == key.next_hop)
        .and_then(|r| r.route_source.clone())
        .ok_or_else(|| openvgw_core::Error::not_found(Kind::RouteEntry, &key.route_dest))?;
    svc.publish_route(ctx, RouteKey { route_source: Some(source), ..key }, policy, publish)
}
