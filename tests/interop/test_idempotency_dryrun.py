"""ClientToken idempotency and DryRun (behaviour doc "Errors")."""
from __future__ import annotations

import pytest

from vgwlib import (DRY_RUN_MESSAGE, create_cgw, create_connection, create_gateway, unique_ip, unique_name,
                    unique_token, unique_vpc, wait_gateway_status, wrapped_list)


def test_create_gateway_same_token_same_params(tea):
    vpc, token, name = unique_vpc(), unique_token(), unique_name("idem")
    params = {"VpcId": vpc, "Bandwidth": 5, "Name": name, "ClientToken": token}
    first = tea.call("CreateVpnGateway", params)["VpnGatewayId"]
    second = tea.call("CreateVpnGateway", params)["VpnGatewayId"]
    assert first == second
    wait_gateway_status(tea, first, "active")
    third = tea.call("CreateVpnGateway", params)["VpnGatewayId"]
    assert third == first
    assert tea.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 1


def test_create_gateway_same_token_different_params(tea):
    vpc, token = unique_vpc(), unique_token()
    tea.call("CreateVpnGateway", {"VpcId": vpc, "Bandwidth": 5, "ClientToken": token})
    tea.error("CreateVpnGateway", {"VpcId": vpc, "Bandwidth": 10, "ClientToken": token},
              "IdempotentParameterMismatch", 400)
    assert tea.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 1


def test_client_token_is_per_tenant(tea_v3, tea_b):
    vpc, token = unique_vpc(), unique_token()
    params = {"VpcId": vpc, "Bandwidth": 5, "ClientToken": token}
    a = tea_v3.call("CreateVpnGateway", params)["VpnGatewayId"]
    b = tea_b.call("CreateVpnGateway", params)["VpnGatewayId"]
    assert a != b
    assert tea_b.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 1


def test_customer_gateway_idempotency(tea):
    ip, token = unique_ip(), unique_token()
    params = {"IpAddress": ip, "Name": unique_name("cgw"), "ClientToken": token}
    first = tea.call("CreateCustomerGateway", params)["CustomerGatewayId"]
    # without the token this would be InvalidIpAddress.AlreadyExist
    assert tea.call("CreateCustomerGateway", params)["CustomerGatewayId"] == first
    tea.error("CreateCustomerGateway", {**params, "Name": unique_name("other")}, "IdempotentParameterMismatch", 400)
    body = tea.call("DescribeCustomerGateway", {"CustomerGatewayId": first})
    assert body["Name"] == params["Name"]


def test_connection_idempotency(tea):
    gw, _ = create_gateway(tea)
    cgw, _ = create_cgw(tea)
    token = unique_token()
    params = {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.1.0.0/16",
              "RemoteSubnet": "192.168.10.0/24", "ClientToken": token}
    first = tea.call("CreateVpnConnection", params)["VpnConnectionId"]
    wait_gateway_status(tea, gw, "active")
    assert tea.call("CreateVpnConnection", params)["VpnConnectionId"] == first
    tea.error("CreateVpnConnection", {**params, "RemoteSubnet": "192.168.11.0/24"}, "IdempotentParameterMismatch", 400)
    assert tea.call("DescribeVpnConnections", {"VpnGatewayId": gw})["TotalCount"] == 1


# ---------------------------------------------------------------------------------------------
# DryRun=true: DryRunOperation (400) with the fixed message, and nothing changes
# ---------------------------------------------------------------------------------------------
def _dry(api, action, params):
    e = api.error(action, {**params, "DryRun": True}, "DryRunOperation", 400)
    assert (e.data or {}).get("Message") == DRY_RUN_MESSAGE, e.data


@pytest.fixture
def world(tea):
    gw, _ = create_gateway(tea, ssl=True)
    cgw, _ = create_cgw(tea)
    cgw2, _ = create_cgw(tea)
    vco = create_connection(tea, gw, cgw, AutoConfigRoute=False)
    return {"gw": gw, "cgw": cgw, "cgw2": cgw2, "vco": vco}


def test_dry_run_create_connection(tea, world):
    params = {"VpnGatewayId": world["gw"], "CustomerGatewayId": world["cgw2"], "LocalSubnet": "10.11.0.0/16",
              "RemoteSubnet": "192.168.111.0/24"}
    _dry(tea, "CreateVpnConnection", params)
    assert tea.call("DescribeVpnConnections", {"VpnGatewayId": world["gw"]})["TotalCount"] == 1
    assert tea.call("DescribeVpnGateway", {"VpnGatewayId": world["gw"]})["Status"] == "active", \
        "a dry run must not start a data-plane change"
    # validation still runs under DryRun
    tea.error("CreateVpnConnection", {**params, "LocalSubnet": "10.0.0.0/99", "DryRun": True},
              "IllegalParam.LocalSubnet", 400)
    # and the real request works afterwards
    create_connection(tea, world["gw"], world["cgw2"], local="10.11.0.0/16", remote="192.168.111.0/24",
                      DryRun=False)


def test_dry_run_routes(tea, world):
    base = {"VpnGatewayId": world["gw"], "RouteDest": "172.24.0.0/24", "NextHop": world["vco"], "Weight": 0,
            "PublishVpc": False}
    _dry(tea, "CreateVpnRouteEntry", base)
    _dry(tea, "CreateVpnPbrRouteEntry", {**base, "RouteSource": "10.1.1.0/24"})
    dbr = tea.call("DescribeVpnRouteEntries", {"VpnGatewayId": world["gw"]})
    pbr = tea.call("DescribeVpnPbrRouteEntries", {"VpnGatewayId": world["gw"]})
    assert wrapped_list(dbr, "VpnRouteEntries", "VpnRouteEntry") == []
    assert wrapped_list(pbr, "VpnPbrRouteEntries", "VpnPbrRouteEntry") == []
    tea.error("CreateVpnRouteEntry", {**base, "Weight": 7, "DryRun": True}, "InvalidWeight", 400)


def test_dry_run_ssl_server(tea, world):
    base = {"VpnGatewayId": world["gw"], "ClientIpPool": "192.168.160.0/24", "LocalSubnet": "10.17.0.0/16"}
    _dry(tea, "CreateSslVpnServer", base)
    assert tea.call("DescribeSslVpnServers", {"VpnGatewayId": world["gw"]})["TotalCount"] == 0
    sid = tea.call("CreateSslVpnServer", base)["SslVpnServerId"]
    wait_gateway_status(tea, world["gw"], "active")
    _dry(tea, "ModifySslVpnServer", {"SslVpnServerId": sid, "Port": 1300})
    s = wrapped_list(tea.call("DescribeSslVpnServers", {"VpnGatewayId": world["gw"]}), "SslVpnServers", "SslVpnServer")
    assert s[0]["Port"] == 1194


def test_dry_run_ipsec_server_string_flag(tea, world):
    e = tea.error("CreateIpsecServer", {"VpnGatewayId": world["gw"], "LocalSubnet": "10.18.0.0/16",
                                        "ClientIpPool": "10.68.0.0/24", "DryRun": "true"}, "DryRunOperation", 400)
    assert (e.data or {}).get("Message") == DRY_RUN_MESSAGE
    assert tea.call("ListIpsecServers", {"VpnGatewayId": world["gw"]})["TotalCount"] == 0
