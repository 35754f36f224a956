"""Isolation, table-driven: every action of the Alibaba dialect, tried by another tenant (and by the same tenant in
another region) on tenant A's resources, answers "not found" (or lists nothing), and A's resources are unchanged.

The list of actions is read from the dialect's own action list (crates/aliyun/src/action.rs), so an action added
there without a row here fails `test_every_action_has_a_row`.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import vgwlib
from vgwlib import create_cgw, create_connection, create_gateway, wait_gateway_status, wrapped_list

ACTION_LIST = Path(__file__).resolve().parents[2] / "crates" / "aliyun" / "src" / "action.rs"


def dialect_actions():
    text = ACTION_LIST.read_text()
    block = text[text.index("actions! {"):]
    block = block[:block.index("\n}")]
    return re.findall(r"^\s*(\w+) => \w+::\w+,", block, re.M)


@pytest.fixture(scope="module")
def world(tea_v3):
    a = tea_v3
    gw, gwd = create_gateway(a, ssl=True)
    gm, _ = create_gateway(a, VpnType="NationalStandard")
    cgw, ip = create_cgw(a)
    vco = create_connection(a, gw, cgw, AutoConfigRoute=False)
    a.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.31.0.0/24", "NextHop": vco,
                                   "Weight": 0, "PublishVpc": False})
    wait_gateway_status(a, gw, "active")
    a.call("CreateVpnPbrRouteEntry", {"VpnGatewayId": gw, "RouteSource": "10.1.0.0/24", "RouteDest": "172.31.1.0/24",
                                      "NextHop": vco, "Weight": 0, "PublishVpc": False})
    wait_gateway_status(a, gw, "active")
    sid = a.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.160.0/24",
                                        "LocalSubnet": "10.16.0.0/16"})["SslVpnServerId"]
    wait_gateway_status(a, gw, "active")
    cid = a.call("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "matrix-cert"})["SslVpnClientCertId"]
    wait_gateway_status(a, gw, "active")
    iss = a.call("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.17.0.0/16",
                                       "ClientIpPool": "10.117.0.0/24"})["IpsecServerId"]
    wait_gateway_status(a, gw, "active")
    a.call("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": gm, "CertificateId": "cert-matrix",
                                                  "CertificateType": "Signature"})
    a.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "Tag": [{"Key": "owner", "Value": "a"}]})
    return {"gw": gw, "gm": gm, "vpc": gwd["VpcId"], "cgw": cgw, "cgw_ip": ip, "vco": vco, "sid": sid, "cid": cid,
            "iss": iss}


GW = ("InvalidVpnGatewayInstanceId.NotFound", 404)
CGW = ("InvalidCustomerGatewayInstanceId.NotFound", 404)
VCO = ("InvalidVpnConnectionInstanceId.NotFound", 404)
SSL = ("InvalidSslVpnServerId.NotFound", 404)
CERT = ("InvalidSslVpnClientCertId.NotFound", 404)
ISS = ("InvalidIpsecServerId.NotFound", 404)
RES = ("InvalidResourceId.NotFound", 404)


def route(w, **extra):
    return {"VpnGatewayId": w["gw"], "RouteDest": "172.31.0.0/24", "NextHop": w["vco"], "Weight": 0, **extra}


def pbr(w, **extra):
    return {"VpnGatewayId": w["gw"], "RouteSource": "10.1.0.0/24", "RouteDest": "172.31.1.0/24", "NextHop": w["vco"],
            "Weight": 0, **extra}


# action -> (params built from A's world, expected (code, status)) for actions that name one of A's resources.
REFUSED = {
    "ModifyVpnGatewayAttribute": (lambda w: {"VpnGatewayId": w["gw"], "Name": "stolen"},
                                  ("InvalidVpnGatewayInstanceId.NotFound", 400)),
    "DescribeVpnGateway": (lambda w: {"VpnGatewayId": w["gw"]}, GW),
    "DeleteVpnGateway": (lambda w: {"VpnGatewayId": w["gw"]}, GW),
    "TagResources": (lambda w: {"ResourceType": "VpnGateWay", "ResourceId": [w["gw"]],
                                "Tag": [{"Key": "owner", "Value": "b"}]}, RES),
    "UnTagResources": (lambda w: {"ResourceType": "VpnGateWay", "ResourceId": [w["gw"]], "TagKey": ["owner"]}, RES),
    "AssociateVpnGatewayWithCertificate": (lambda w: {"VpnGatewayId": w["gm"], "CertificateId": "cert-b",
                                                      "CertificateType": "Signature"}, GW),
    "DissociateVpnGatewayWithCertificate": (lambda w: {"VpnGatewayId": w["gm"], "CertificateId": "cert-matrix",
                                                       "CertificateType": "Signature"}, GW),
    "ModifyCustomerGatewayAttribute": (lambda w: {"CustomerGatewayId": w["cgw"], "Name": "stolen"}, CGW),
    "DescribeCustomerGateway": (lambda w: {"CustomerGatewayId": w["cgw"]}, CGW),
    "DeleteCustomerGateway": (lambda w: {"CustomerGatewayId": w["cgw"]}, CGW),
    "CreateVpnRouteEntry": (lambda w: route(w, RouteDest="172.31.9.0/24", PublishVpc=False), GW),
    "CreateVpnPbrRouteEntry": (lambda w: pbr(w, RouteDest="172.31.9.0/24", PublishVpc=False), GW),
    "PublishVpnRouteEntry": (lambda w: {"VpnGatewayId": w["gw"], "RouteDest": "172.31.0.0/24", "NextHop": w["vco"],
                                        "RouteType": "dbr", "PublishVpc": True}, GW),
    "DescribeVpnRouteEntries": (lambda w: {"VpnGatewayId": w["gw"]}, GW),
    "DescribeVpnPbrRouteEntries": (lambda w: {"VpnGatewayId": w["gw"]}, GW),
    "ModifyVpnRouteEntryWeight": (lambda w: route(w, NewWeight=100), GW),
    "ModifyVpnPbrRouteEntryWeight": (lambda w: pbr(w, NewWeight=100), GW),
    "DeleteVpnRouteEntry": (lambda w: route(w), GW),
    "DeleteVpnPbrRouteEntry": (lambda w: pbr(w), GW),
    "CreateVpnConnection": (lambda w: {"VpnGatewayId": w["gw"], "CustomerGatewayId": w["cgw"],
                                       "LocalSubnet": "10.1.0.0/16", "RemoteSubnet": "192.168.1.0/24"}, GW),
    "ModifyVpnConnectionAttribute": (lambda w: {"VpnConnectionId": w["vco"], "Name": "stolen"}, VCO),
    "DescribeVpnConnection": (lambda w: {"VpnConnectionId": w["vco"]}, VCO),
    "DownloadVpnConnectionConfig": (lambda w: {"VpnConnectionId": w["vco"]}, VCO),
    "DeleteVpnConnection": (lambda w: {"VpnConnectionId": w["vco"]}, VCO),
    "CreateSslVpnServer": (lambda w: {"VpnGatewayId": w["gw"], "ClientIpPool": "192.168.170.0/24",
                                      "LocalSubnet": "10.18.0.0/16"}, GW),
    "ModifySslVpnServer": (lambda w: {"SslVpnServerId": w["sid"], "Port": 1200}, SSL),
    "DeleteSslVpnServer": (lambda w: {"SslVpnServerId": w["sid"]}, SSL),
    "CreateSslVpnClientCert": (lambda w: {"SslVpnServerId": w["sid"], "Name": "stolen"}, SSL),
    "ModifySslVpnClientCert": (lambda w: {"SslVpnClientCertId": w["cid"], "Name": "stolen"}, CERT),
    "DescribeSslVpnClientCert": (lambda w: {"SslVpnClientCertId": w["cid"]}, CERT),
    "DescribeVpnSslServerLogs": (lambda w: {"VpnSslServerId": w["sid"], "MinutePeriod": 5}, SSL),
    "DeleteSslVpnClientCert": (lambda w: {"SslVpnClientCertId": w["cid"]}, CERT),
    "CreateIpsecServer": (lambda w: {"VpnGatewayId": w["gw"], "LocalSubnet": "10.19.0.0/16",
                                     "ClientIpPool": "10.119.0.0/24"}, GW),
    "UpdateIpsecServer": (lambda w: {"IpsecServerId": w["iss"], "IpsecServerName": "stolen"}, ISS),
    "DeleteIpsecServer": (lambda w: {"IpsecServerId": w["iss"]}, ISS),
}


def _empty(items):
    assert items == [], items


# action -> check that a list filtered on A's resources shows the caller nothing.
LISTS_NOTHING = {
    "DescribeVpnGateways": lambda api, w: _empty(wrapped_list(
        api.call("DescribeVpnGateways", {"VpnGatewayId": w["gw"]}), "VpnGateways", "VpnGateway")),
    "ListTagResources": lambda api, w: _empty(wrapped_list(
        api.call("ListTagResources", {"ResourceType": "VpnGateWay", "ResourceId": [w["gw"]]}),
        "TagResources", "TagResource")),
    "ListVpnCertificateAssociations": lambda api, w: _empty(
        api.call("ListVpnCertificateAssociations", {"VpnGatewayId": w["gm"]})["VpnCertificateRelations"]),
    "DescribeCustomerGateways": lambda api, w: _empty(wrapped_list(
        api.call("DescribeCustomerGateways", {"CustomerGatewayId": w["cgw"]}), "CustomerGateways", "CustomerGateway")),
    "DescribeVpnConnections": lambda api, w: _empty(wrapped_list(
        api.call("DescribeVpnConnections", {"VpnConnectionId": w["vco"]}), "VpnConnections", "VpnConnection")),
    "DescribeSslVpnServers": lambda api, w: _empty(wrapped_list(
        api.call("DescribeSslVpnServers", {"SslVpnServerId": w["sid"]}), "SslVpnServers", "SslVpnServer")),
    "DescribeSslVpnClientCerts": lambda api, w: _empty(wrapped_list(
        api.call("DescribeSslVpnClientCerts", {"SslVpnServerId": w["sid"]}),
        "SslVpnClientCertKeys", "SslVpnClientCertKey")),
    "ListIpsecServers": lambda api, w: _empty(api.call("ListIpsecServers", {"VpnGatewayId": w["gw"]})["IpsecServers"]),
}

# Actions that name no existing resource: they create in the caller's own scope, which must not touch A's.
OWN_SCOPE = {"CreateVpnGateway", "CreateCustomerGateway"}


def test_every_action_has_a_row():
    actions = dialect_actions()
    assert len(actions) >= 45, f"could not read the action list from {ACTION_LIST}: {actions}"
    covered = set(REFUSED) | set(LISTS_NOTHING) | OWN_SCOPE
    missing = [a for a in actions if a not in covered]
    assert not missing, f"actions without a row in the isolation matrix: {missing}"
    stale = covered - set(actions)
    assert not stale, f"rows for actions the dialect does not serve: {stale}"


def _outsiders(tea_b, tea_v3):
    return {"other tenant": tea_b, "same tenant, other region": tea_v3.in_region(vgwlib.OTHER_REGION)}


@pytest.mark.parametrize("who", ["other tenant", "same tenant, other region"])
@pytest.mark.parametrize("action", sorted(REFUSED))
def test_refused(tea_v3, tea_b, world, who, action):
    api = _outsiders(tea_b, tea_v3)[who]
    params, (code, status) = REFUSED[action]
    api.error(action, params(world), code, status)


@pytest.mark.parametrize("who", ["other tenant", "same tenant, other region"])
@pytest.mark.parametrize("action", sorted(LISTS_NOTHING))
def test_lists_nothing(tea_v3, tea_b, world, who, action):
    LISTS_NOTHING[action](_outsiders(tea_b, tea_v3)[who], world)


@pytest.mark.parametrize("who", ["other tenant", "same tenant, other region"])
def test_creating_in_another_scope_does_not_touch_a(tea_v3, tea_b, world, who):
    """The OWN_SCOPE rows: creating in another tenant, or in another region of A's, neither collides with A's
    resources nor shows up among them."""
    b = _outsiders(tea_b, tea_v3)[who]
    # Customer gateway addresses are unique per tenant and region: the other scope may use A's address.
    b_cgw, _ = create_cgw(b, ip=world["cgw_ip"])
    # VPC ids belong to their tenant and region: a gateway in a VPC of the same name is that scope's alone.
    b_gw, _ = create_gateway(b, vpc=world["vpc"])
    a_ids = {g["VpnGatewayId"] for g in wrapped_list(
        tea_v3.call("DescribeVpnGateways", {"VpcId": world["vpc"]}), "VpnGateways", "VpnGateway")}
    assert b_gw not in a_ids and world["gw"] in a_ids
    assert wrapped_list(tea_v3.call("DescribeCustomerGateways", {"CustomerGatewayId": b_cgw}), "CustomerGateways",
                        "CustomerGateway") == []
    assert tea_v3.call("DescribeCustomerGateway", {"CustomerGatewayId": world["cgw"]})["IpAddress"] == world["cgw_ip"]
    tea_v3.error("DescribeCustomerGateway", {"CustomerGatewayId": b_cgw}, CGW[0], CGW[1])


def test_a_is_unchanged_after_the_matrix(tea_v3, tea_b, world):
    # Run after the refusals (pytest keeps file order); they must have changed nothing of A's.
    a, w = tea_v3, world
    d = a.call("DescribeVpnGateway", {"VpnGatewayId": w["gw"]})
    assert d["Status"] in ("active", "updating") and d["Name"] != "stolen"
    assert [t["Value"] for t in d["Tags"]["Tag"] if t["Key"] == "owner"] == ["a"]
    assert a.call("DescribeCustomerGateway", {"CustomerGatewayId": w["cgw"]})["Name"] != "stolen"
    assert a.call("DescribeVpnConnection", {"VpnConnectionId": w["vco"]})["Name"] != "stolen"
    assert a.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": w["cid"]})["Name"] != "stolen"
    servers = wrapped_list(a.call("DescribeSslVpnServers", {"VpnGatewayId": w["gw"]}), "SslVpnServers", "SslVpnServer")
    assert [s["Port"] for s in servers] == [1194]
    ipsec = a.call("ListIpsecServers", {"VpnGatewayId": w["gw"]})["IpsecServers"]
    assert [s["IpsecServerName"] for s in ipsec] != ["stolen"] and len(ipsec) == 1
    routes = wrapped_list(a.call("DescribeVpnRouteEntries", {"VpnGatewayId": w["gw"]}), "VpnRouteEntries",
                          "VpnRouteEntry")
    assert [(r["RouteDest"], r["Weight"], r["State"]) for r in routes] == [("172.31.0.0/24", 0, "normal")]
    pbrs = wrapped_list(a.call("DescribeVpnPbrRouteEntries", {"VpnGatewayId": w["gw"]}), "VpnPbrRouteEntries",
                        "VpnPbrRouteEntry")
    assert [(r["RouteDest"], r["Weight"]) for r in pbrs] == [("172.31.1.0/24", 0)]
    rel = a.call("ListVpnCertificateAssociations", {"VpnGatewayId": w["gm"]})["VpnCertificateRelations"]
    assert [r["CertificateId"] for r in rel] == ["cert-matrix"]
