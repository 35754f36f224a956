"""Gateway lifecycle with observable transitional states, and quotas.

Runs against the aux server: provision/apply delays of 800 ms make init/provisioning/updating
observable without racing, and small quotas (conftest.AUX_QUOTAS) keep quota tests cheap and
away from the main server's tenants.
"""
from __future__ import annotations

import time

import pytest

import vgwlib
from vgwlib import (create_cgw, create_connection, create_gateway, unique_name, unique_vpc, wait_gateway_gone,
                    wait_gateway_status)

ORDER = ["init", "provisioning", "active"]


def _assert_in_order(seen, order, what):
    idx = [order.index(s) for s in seen if s in order]
    assert all(s in order for s in seen), f"{what}: unexpected states {seen}"
    assert idx == sorted(idx), f"{what}: states out of order {seen}"


@pytest.mark.parametrize("mode", ["v3", "v2"])
def test_gateway_lifecycle(aux_api, mode):
    api = aux_api(mode)
    cgw, _ = create_cgw(api)
    t0 = time.monotonic()
    gw = api.call("CreateVpnGateway", {"VpcId": unique_vpc(), "Bandwidth": 5, "Name": unique_name("life")})["VpnGatewayId"]
    first = api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"]
    assert first in ("init", "provisioning"), f"right after CreateVpnGateway the gateway is {first!r}"
    seen = [first]
    # renaming is allowed in any state but deleting (behaviour doc)
    m = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": unique_name("renamed")})
    assert m["Status"] in ("init", "provisioning")
    # a child mutation is not
    api.error("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.1.0.0/16",
                                      "RemoteSubnet": "192.168.1.0/24"}, "VpnGateway.Configuring", 400)
    wait_gateway_status(api, gw, "active", seen=seen)
    _assert_in_order(seen, ORDER, "provisioning")
    assert time.monotonic() - t0 >= 0.5, "active long before provision_delay_ms elapsed"

    # child change -> updating -> active
    vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.1.0.0/16",
                                           "RemoteSubnet": "192.168.1.0/24", "AutoConfigRoute": False})["VpnConnectionId"]
    st = api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"]
    assert st == "updating", f"after CreateVpnConnection the gateway is {st!r}, expected updating"
    api.error("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.0.0/24", "NextHop": vco, "Weight": 0,
                                      "PublishVpc": False}, "VpnGateway.Configuring", 400)
    api.error("DeleteVpnConnection", {"VpnConnectionId": vco}, "VpnGateway.Configuring", 400)
    api.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "LocalSubnet": "10.2.0.0/16"},
              "VpnGateway.Configuring", 400)
    wait_gateway_status(api, gw, "active")
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "RemoteSubnet": "192.168.2.0/24"})
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "updating"
    wait_gateway_status(api, gw, "active")

    # delete -> deleting -> gone (with its children)
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    seen = []
    try:
        st = api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"]
    except Exception as e:  # already gone
        assert getattr(e, "code", None) == "InvalidVpnGatewayInstanceId.NotFound", e
        st = None
    if st is not None:
        assert st == "deleting", f"after DeleteVpnGateway the gateway is {st!r}"
        api.error("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.0.0/24", "NextHop": vco,
                                          "Weight": 0, "PublishVpc": False},
                  ("VpnGateway.Configuring", "InvalidVpnGatewayInstanceId.NotFound"))
        api.error("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "too-late"},
                  ("VpnGateway.Configuring", "InvalidVpnGatewayInstanceId.NotFound"), 400)
    wait_gateway_gone(api, gw, seen=seen)
    api.error("DescribeVpnConnection", {"VpnConnectionId": vco}, "InvalidVpnConnectionInstanceId.NotFound", 404)


def test_child_rename_while_updating_neither_waits_nor_reconfigures(aux_api):
    """A change that touches only names (or descriptions, or tags) neither waits for a gateway that is updating nor
    starts a reconfiguration; a change to the tunnel itself still gets VpnGateway.Configuring (seed 7.2)."""
    api = aux_api()
    gw, _ = create_gateway(api)
    cgw, _ = create_cgw(api)
    vco = create_connection(api, gw, cgw, wait=False)
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "updating"
    renamed = unique_name("later")
    m = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": renamed})
    assert m["Name"] == renamed
    api.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "LocalSubnet": "10.9.0.0/16"},
              "VpnGateway.Configuring", 400)
    api.call("TagResources", {"ResourceType": "VpnConnection", "ResourceId": [vco],
                              "Tag": [{"Key": "team", "Value": "net"}]})
    wait_gateway_status(api, gw, "active")
    # On an active gateway a rename applies at once and the gateway stays active.
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": unique_name("again")})
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active"
    assert api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["Name"] != renamed


@pytest.fixture
def ssl_world(aux_api):
    api = aux_api()
    gw, _ = create_gateway(api, ssl=True)
    return api, gw


def test_ssl_server_change_sets_updating(ssl_world):
    api, gw = ssl_world
    sid = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.100.0/24",
                                          "LocalSubnet": "10.3.0.0/16"})["SslVpnServerId"]
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "updating"
    api.error("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "too-early"}, "VpnGateway.Configuring", 400)
    wait_gateway_status(api, gw, "active")
    api.call("ModifySslVpnServer", {"SslVpnServerId": sid, "Port": 1195})
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "updating"
    wait_gateway_status(api, gw, "active")


def test_client_cert_change_sets_updating(ssl_world):
    """Client certs are gateway children (behaviour doc, Lifecycle)."""
    api, gw = ssl_world
    sid = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.100.0/24",
                                          "LocalSubnet": "10.3.0.0/16"})["SslVpnServerId"]
    wait_gateway_status(api, gw, "active")
    api.call("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "cert-ok"})
    st = api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"]
    assert st == "updating", f"after CreateSslVpnClientCert the gateway is {st!r}, expected updating"
    api.error("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "cert-two"}, "VpnGateway.Configuring", 400)


def test_client_cert_rename_neither_waits_nor_reconfigures(ssl_world):
    """ModifySslVpnClientCert lists no VpnGateway.Configuring (seed 8.6): a rename works while the gateway is
    updating, and on an active gateway it leaves the gateway active."""
    api, gw = ssl_world
    sid = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.100.0/24",
                                          "LocalSubnet": "10.3.0.0/16"})["SslVpnServerId"]
    wait_gateway_status(api, gw, "active")
    cid = api.call("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "cert-ok"})["SslVpnClientCertId"]
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "updating"
    m = api.call("ModifySslVpnClientCert", {"SslVpnClientCertId": cid, "Name": "renamed-while-updating"})
    assert m["Name"] == "renamed-while-updating"
    wait_gateway_status(api, gw, "active")
    api.call("ModifySslVpnClientCert", {"SslVpnClientCertId": cid, "Name": "renamed-when-active"})
    api.call("ModifySslVpnServer", {"SslVpnServerId": sid, "Name": "server-renamed"})
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active"
    certs = api.call("DescribeSslVpnClientCerts", {"SslVpnServerId": sid})["SslVpnClientCertKeys"]["SslVpnClientCertKey"]
    assert [c["Name"] for c in certs] == ["renamed-when-active"]


def test_ipsec_server_change_sets_updating(ssl_world):
    api, gw = ssl_world
    iss = api.call("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.4.0.0/16",
                                         "ClientIpPool": "10.44.0.0/24"})["IpsecServerId"]
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "updating"
    api.error("UpdateIpsecServer", {"IpsecServerId": iss, "LocalSubnet": "10.5.0.0/16"}, "VpnGateway.Configuring", 400)
    # A rename touches nothing on the gateway: it neither waits nor reconfigures.
    api.call("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "later"})
    api.error("DeleteIpsecServer", {"IpsecServerId": iss}, "VpnGateway.Configuring", 400)
    wait_gateway_status(api, gw, "active")
    api.call("DeleteIpsecServer", {"IpsecServerId": iss})
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "updating"
    wait_gateway_status(api, gw, "active")


# ------------------------------------------------------------------------------------------------
# quotas (aux: 2 gateways/region, 2 customer gateways/region, 1 connection/gateway,
#         2 routes/gateway, 2 client certs/server)
# ------------------------------------------------------------------------------------------------
def test_gateway_quota_per_region(aux_api):
    api = aux_api()
    g1, _ = create_gateway(api, wait=False)
    create_gateway(api, wait=False)
    api.error("CreateVpnGateway", {"VpcId": unique_vpc(), "Bandwidth": 5}, "Resource.QuotaFull", 400)
    # the quota is per region
    create_gateway(api.in_region(vgwlib.OTHER_REGION), wait=False)
    # deleting frees a slot
    wait_gateway_status(api, g1, "active")
    api.call("DeleteVpnGateway", {"VpnGatewayId": g1})
    wait_gateway_gone(api, g1)
    create_gateway(api, wait=False)


def test_customer_gateway_quota(aux_api):
    api = aux_api()
    c1, _ = create_cgw(api)
    create_cgw(api)
    api.error("CreateCustomerGateway", {"IpAddress": vgwlib.unique_ip()}, "Resource.QuotaFull", 400)
    api.call("DeleteCustomerGateway", {"CustomerGatewayId": c1})
    create_cgw(api)


def test_connection_quota(aux_api):
    api = aux_api()
    gw, _ = create_gateway(api)
    c1, _ = create_cgw(api)
    c2, _ = create_cgw(api)
    create_connection(api, gw, c1)
    api.error("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": c2, "LocalSubnet": "10.2.0.0/16",
                                      "RemoteSubnet": "192.168.2.0/24"}, "Resource.QuotaFull", 400)


def test_route_quota(aux_api):
    api = aux_api()
    gw, _ = create_gateway(api)
    cgw, _ = create_cgw(api)
    vco = create_connection(api, gw, cgw, AutoConfigRoute=False)
    for dest in ("172.16.1.0/24", "172.16.2.0/24"):
        api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": dest, "NextHop": vco, "Weight": 0,
                                         "PublishVpc": False})
        wait_gateway_status(api, gw, "active")
    api.error("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.3.0/24", "NextHop": vco, "Weight": 0,
                                      "PublishVpc": False}, "Resource.QuotaFull", 400)


def test_client_cert_quota(aux_api):
    api = aux_api()
    gw, _ = create_gateway(api, ssl=True)
    sid = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.100.0/24",
                                          "LocalSubnet": "10.3.0.0/16"})["SslVpnServerId"]
    wait_gateway_status(api, gw, "active")
    for i in range(2):
        api.call("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": f"cert-{i}"})
        wait_gateway_status(api, gw, "active")
    api.error("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "cert-x"}, "Resource.QuotaFull", 400)
