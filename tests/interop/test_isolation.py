"""Tenant and region isolation: another tenant's or region's resources are "not found"."""
from __future__ import annotations

import pytest

import vgwlib
from vgwlib import (create_cgw, create_connection, create_gateway, unique_vpc, wait_gateway_status, wrapped_list)


@pytest.fixture(scope="module")
def a_world(tea_v3):
    a = tea_v3
    vpc = unique_vpc()
    gw, gwd = create_gateway(a, vpc=vpc, ssl=True)
    cgw, ip = create_cgw(a)
    vco = create_connection(a, gw, cgw, AutoConfigRoute=False)
    a.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.30.0.0/24", "NextHop": vco,
                                   "Weight": 0, "PublishVpc": False})
    wait_gateway_status(a, gw, "active")
    sid = a.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.150.0/24",
                                        "LocalSubnet": "10.15.0.0/16"})["SslVpnServerId"]
    wait_gateway_status(a, gw, "active")
    cid = a.call("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "iso-cert"})["SslVpnClientCertId"]
    wait_gateway_status(a, gw, "active")
    return {"vpc": vpc, "gw": gw, "ip": gwd["InternetIp"], "cgw": cgw, "cgw_ip": ip, "vco": vco, "sid": sid,
            "cid": cid}


def test_other_tenant_cannot_see_or_touch(tea_v3, tea_b, a_world):
    a, b, w = tea_v3, tea_b, a_world
    b.error("DescribeVpnGateway", {"VpnGatewayId": w["gw"]}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    b.error("ModifyVpnGatewayAttribute", {"VpnGatewayId": w["gw"], "Name": "stolen"},
            "InvalidVpnGatewayInstanceId.NotFound", 400)
    b.error("DeleteVpnGateway", {"VpnGatewayId": w["gw"]}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    assert b.call("DescribeVpnGateways", {"VpcId": w["vpc"]})["TotalCount"] == 0
    assert w["gw"] not in {g["VpnGatewayId"] for g in wrapped_list(
        b.call("DescribeVpnGateways", {"PageSize": 50}), "VpnGateways", "VpnGateway")}

    b.error("DescribeCustomerGateway", {"CustomerGatewayId": w["cgw"]}, "InvalidCustomerGatewayInstanceId.NotFound", 404)
    b.error("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": w["cgw"], "Name": "stolen"},
            "InvalidCustomerGatewayInstanceId.NotFound", 404)
    b.error("DeleteCustomerGateway", {"CustomerGatewayId": w["cgw"]}, "InvalidCustomerGatewayInstanceId.NotFound", 404)
    assert b.call("DescribeCustomerGateways", {"CustomerGatewayId": w["cgw"]})["TotalCount"] == 0

    b.error("DescribeVpnConnection", {"VpnConnectionId": w["vco"]}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    b.error("DownloadVpnConnectionConfig", {"VpnConnectionId": w["vco"]}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    b.error("DeleteVpnConnection", {"VpnConnectionId": w["vco"]}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    assert b.call("DescribeVpnConnections", {"VpnGatewayId": w["gw"]})["TotalCount"] == 0

    b.error("DescribeVpnRouteEntries", {"VpnGatewayId": w["gw"]}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    b.error("DeleteVpnRouteEntry", {"VpnGatewayId": w["gw"], "RouteDest": "172.30.0.0/24", "NextHop": w["vco"],
                                    "Weight": 0}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    b.error("ModifySslVpnServer", {"SslVpnServerId": w["sid"], "Port": 1200}, "InvalidSslVpnServerId.NotFound", 404)
    b.error("DescribeSslVpnClientCert", {"SslVpnClientCertId": w["cid"]}, "InvalidSslVpnClientCertId.NotFound", 404)
    b.error("DeleteSslVpnClientCert", {"SslVpnClientCertId": w["cid"]}, "InvalidSslVpnClientCertId.NotFound", 404)
    assert b.call("DescribeSslVpnServers", {"VpnGatewayId": w["gw"]})["TotalCount"] == 0
    assert b.call("DescribeSslVpnClientCerts", {"SslVpnServerId": w["sid"]})["TotalCount"] == 0
    b.error("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [w["gw"]], "Tag": [{"Key": "x", "Value": "y"}]},
            "InvalidResourceId.NotFound", 404)

    # B cannot build on A's resources either
    b_cgw, _ = create_cgw(b)
    b.error("CreateVpnConnection", {"VpnGatewayId": w["gw"], "CustomerGatewayId": b_cgw, "LocalSubnet": "10.1.0.0/16",
                                    "RemoteSubnet": "192.168.1.0/24"}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    b_gw, _ = create_gateway(b)
    b.error("CreateVpnConnection", {"VpnGatewayId": b_gw, "CustomerGatewayId": w["cgw"], "LocalSubnet": "10.1.0.0/16",
                                    "RemoteSubnet": "192.168.1.0/24"}, "InvalidCustomerGatewayInstanceId.NotFound", 404)
    b.error("CreateSslVpnClientCert", {"SslVpnServerId": w["sid"], "Name": "stolen"}, "InvalidSslVpnServerId.NotFound", 404)
    # IP uniqueness of customer gateways is per user: B may use A's address
    create_cgw(b, ip=w["cgw_ip"])

    # A's world is untouched
    d = a.call("DescribeVpnGateway", {"VpnGatewayId": w["gw"]})
    assert d["Status"] == "active" and d["Name"] != "stolen"
    assert a.call("DescribeCustomerGateway", {"CustomerGatewayId": w["cgw"]})["Name"] != "stolen"
    a.call("DescribeVpnConnection", {"VpnConnectionId": w["vco"]})
    a.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": w["cid"]})
    s = wrapped_list(a.call("DescribeSslVpnServers", {"VpnGatewayId": w["gw"]}), "SslVpnServers", "SslVpnServer")
    assert s[0]["Port"] == 1194


def test_ipsec_servers_are_per_tenant(tea_v3, tea_b):
    gw, _ = create_gateway(tea_v3, ssl=True)
    iss = tea_v3.call("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.16.0.0/16",
                                            "ClientIpPool": "10.66.0.0/24"})["IpsecServerId"]
    wait_gateway_status(tea_v3, gw, "active")
    body = tea_b.call("ListIpsecServers", {"VpnGatewayId": gw})
    assert body["TotalCount"] == 0 and vgwlib.plain_list(body, "IpsecServers") == []
    tea_b.error("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "stolen"},
                "InvalidIpsecServerId.NotFound", 404)
    tea_b.error("DeleteIpsecServer", {"IpsecServerId": iss}, "InvalidIpsecServerId.NotFound", 404)
    assert tea_v3.call("ListIpsecServers", {"VpnGatewayId": gw})["TotalCount"] == 1


def test_regions_are_separate(tea_v3, a_world):
    a, w = tea_v3, a_world
    sh = a.in_region(vgwlib.OTHER_REGION)
    bj = a.in_region(vgwlib.THIRD_REGION)
    sh.error("DescribeVpnGateway", {"VpnGatewayId": w["gw"]}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    sh.error("DescribeCustomerGateway", {"CustomerGatewayId": w["cgw"]}, "InvalidCustomerGatewayInstanceId.NotFound", 404)
    sh.error("DescribeVpnConnection", {"VpnConnectionId": w["vco"]}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    sh.error("DescribeSslVpnClientCert", {"SslVpnClientCertId": w["cid"]}, "InvalidSslVpnClientCertId.NotFound", 404)
    assert sh.call("DescribeVpnGateways", {"VpcId": w["vpc"]})["TotalCount"] == 0

    vpc = unique_vpc()
    sh_gw, d = create_gateway(sh, vpc=vpc)
    assert d["VpcId"] == vpc
    assert a.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 0
    assert bj.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 0
    assert sh.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 1
    a.error("DescribeVpnGateway", {"VpnGatewayId": sh_gw}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    # a connection cannot join resources of two regions
    sh.error("CreateVpnConnection", {"VpnGatewayId": sh_gw, "CustomerGatewayId": w["cgw"], "LocalSubnet": "10.1.0.0/16",
                                     "RemoteSubnet": "192.168.1.0/24"}, "InvalidCustomerGatewayInstanceId.NotFound", 404)
    # tags are regional too
    a.error("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [sh_gw], "Tag": [{"Key": "x", "Value": "y"}]},
            "InvalidResourceId.NotFound", 404)
    sh.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [sh_gw], "Tag": [{"Key": "x", "Value": "y"}]})
