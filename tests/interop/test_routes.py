"""Destination (dbr) and policy (pbr) routes (seed 6.1-6.9)."""
from __future__ import annotations

import pytest

import vgwlib
from vgwlib import (assert_recent_ms, check_fields, check_paging, create_cgw, create_connection, create_gateway,
                    wait_gateway_status, wrapped_list)

ROUTE_TYPES = {"RouteDest": str, "NextHop": str, "Weight": int, "State": str, "CreateTime": int,
               "VpnInstanceId": str}
ROUTE_OPTIONAL = {"Description": str, "OverlayMode": str, "RouteEntryType": str, "AsPath": str,
                  "Community": str, "Source": str, "RouteSource": str}


@pytest.fixture
def env(tea):
    gw, _ = create_gateway(tea)
    cgw, _ = create_cgw(tea)
    vco = create_connection(tea, gw, cgw, local="10.2.0.0/16", remote="192.168.20.0/24", AutoConfigRoute=False)
    return {"gw": gw, "vco": vco}


def dbr_entries(api, gw, **extra):
    body = api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw, **extra})
    return body, wrapped_list(body, "VpnRouteEntries", "VpnRouteEntry", "DescribeVpnRouteEntries")


def pbr_entries(api, gw, **extra):
    body = api.call("DescribeVpnPbrRouteEntries", {"VpnGatewayId": gw, **extra})
    return body, wrapped_list(body, "VpnPbrRouteEntries", "VpnPbrRouteEntry", "DescribeVpnPbrRouteEntries")


def find(items, **match):
    hits = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    return hits


def test_route_entry_type_is_spelled_as_the_reference_does(tea, env):
    """RouteEntryType reads `Custom` / `System` (seed 6.4), in the entries and in VpnRouteCounts."""
    gw, vco = env["gw"], env["vco"]
    tea.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.9.0/24", "NextHop": vco,
                                     "Weight": 100, "PublishVpc": False})
    wait_gateway_status(tea, gw, "active")
    body, items = dbr_entries(tea, gw)
    mine = find(items, RouteDest="172.16.9.0/24", NextHop=vco)
    assert [r["RouteEntryType"] for r in mine] == ["Custom"], mine
    counts = wrapped_list(body, "VpnRouteCounts", "VpnRouteCount", "DescribeVpnRouteEntries")
    assert {c["RouteEntryType"] for c in counts} == {"Custom"}, counts
    assert {c["RouteEntryType"] for c in counts}.isdisjoint({"custom", "system"})
    # The filter takes either spelling and `System` matches none (openvgw has no system routes yet).
    for spelling in ("Custom", "custom"):
        _, custom = dbr_entries(tea, gw, RouteEntryType=spelling)
        assert find(custom, RouteDest="172.16.9.0/24"), spelling
    _, system = dbr_entries(tea, gw, RouteEntryType="System")
    assert system == []
    tea.call("DeleteVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.9.0/24", "NextHop": vco,
                                     "Weight": 100})
    wait_gateway_status(tea, gw, "active")


def test_destination_route_lifecycle(tea, env):
    gw, vco = env["gw"], env["vco"]
    r = tea.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24", "NextHop": vco,
                                         "Weight": 0, "PublishVpc": False, "Description": "dest-route",
                                         "OverlayMode": "Ipsec", "ClientToken": vgwlib.unique_token()})
    check_fields(r, ROUTE_TYPES, ROUTE_OPTIONAL, "CreateVpnRouteEntry")
    assert (r["RouteDest"], r["NextHop"], r["Weight"], r["VpnInstanceId"]) == ("172.16.1.0/24", vco, 0, gw)
    assert r["State"] == "normal", "PublishVpc=false -> normal (not published)"
    assert r.get("Description", "dest-route") == "dest-route"
    assert r.get("OverlayMode", "Ipsec") == "Ipsec"
    assert_recent_ms(r["CreateTime"], "CreateTime")
    wait_gateway_status(tea, gw, "active")

    body, items = dbr_entries(tea, gw)
    check_paging(body, 1, 10, "DescribeVpnRouteEntries")
    mine = find(items, RouteDest="172.16.1.0/24", NextHop=vco)
    assert len(mine) == 1, items
    check_fields(mine[0], ROUTE_TYPES, ROUTE_OPTIONAL, "VpnRouteEntries.VpnRouteEntry")
    assert (mine[0]["Weight"], mine[0]["State"], mine[0]["VpnInstanceId"]) == (0, "normal", gw)
    wrapped_list(body, "VpnRouteCounts", "VpnRouteCount", "DescribeVpnRouteEntries")

    tea.call("PublishVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24", "NextHop": vco,
                                      "RouteType": "dbr", "PublishVpc": True})
    wait_gateway_status(tea, gw, "active")
    _, items = dbr_entries(tea, gw)
    assert find(items, RouteDest="172.16.1.0/24")[0]["State"] == "published"

    tea.call("ModifyVpnRouteEntryWeight", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24", "NextHop": vco,
                                           "Weight": 0, "NewWeight": 100, "OverlayMode": "Ipsec"})
    wait_gateway_status(tea, gw, "active")
    _, items = dbr_entries(tea, gw)
    assert find(items, RouteDest="172.16.1.0/24")[0]["Weight"] == 100

    # Weight must match the stored value (behaviour doc)
    tea.error("ModifyVpnRouteEntryWeight", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24", "NextHop": vco,
                                            "Weight": 0, "NewWeight": 100}, "InvalidVpnRouteEntry.NotFound", 404)
    tea.error("DeleteVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24", "NextHop": vco,
                                      "Weight": 0}, "InvalidVpnRouteEntry.NotFound", 404)
    tea.call("DeleteVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24", "NextHop": vco,
                                     "Weight": 100, "ClientToken": vgwlib.unique_token()})
    wait_gateway_status(tea, gw, "active")
    body, items = dbr_entries(tea, gw)
    assert find(items, RouteDest="172.16.1.0/24") == []
    tea.error("PublishVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24", "NextHop": vco,
                                       "RouteType": "dbr", "PublishVpc": True}, "InvalidVpnRouteEntry.NotFound", 404)


def test_policy_route_lifecycle(tea, env):
    gw, vco = env["gw"], env["vco"]
    r = tea.call("CreateVpnPbrRouteEntry", {"VpnGatewayId": gw, "RouteSource": "10.2.1.0/24",
                                            "RouteDest": "172.17.0.0/16", "NextHop": vco, "Weight": 100,
                                            "PublishVpc": True, "Description": "policy-route",
                                            "OverlayMode": "Ipsec"})
    check_fields(r, {**ROUTE_TYPES, "RouteSource": str}, ROUTE_OPTIONAL, "CreateVpnPbrRouteEntry")
    assert (r["RouteSource"], r["RouteDest"], r["NextHop"], r["Weight"]) == ("10.2.1.0/24", "172.17.0.0/16", vco, 100)
    assert r["State"] == "published"
    wait_gateway_status(tea, gw, "active")

    body, items = pbr_entries(tea, gw)
    check_paging(body, 1, 10, "DescribeVpnPbrRouteEntries")
    mine = find(items, RouteSource="10.2.1.0/24", RouteDest="172.17.0.0/16")
    assert len(mine) == 1, items
    check_fields(mine[0], {**ROUTE_TYPES, "RouteSource": str}, None, "VpnPbrRouteEntries.VpnPbrRouteEntry")
    assert (mine[0]["NextHop"], mine[0]["Weight"], mine[0]["State"]) == (vco, 100, "published")

    tea.call("PublishVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.17.0.0/16", "NextHop": vco,
                                      "RouteType": "pbr", "PublishVpc": False})
    wait_gateway_status(tea, gw, "active")
    _, items = pbr_entries(tea, gw)
    assert find(items, RouteDest="172.17.0.0/16")[0]["State"] == "normal"

    tea.call("ModifyVpnPbrRouteEntryWeight", {"VpnGatewayId": gw, "RouteSource": "10.2.1.0/24",
                                              "RouteDest": "172.17.0.0/16", "NextHop": vco, "Weight": 100,
                                              "NewWeight": 0})
    wait_gateway_status(tea, gw, "active")
    _, items = pbr_entries(tea, gw)
    assert find(items, RouteDest="172.17.0.0/16")[0]["Weight"] == 0
    tea.error("ModifyVpnPbrRouteEntryWeight", {"VpnGatewayId": gw, "RouteSource": "10.2.1.0/24",
                                               "RouteDest": "172.17.0.0/16", "NextHop": vco, "Weight": 100,
                                               "NewWeight": 0}, "InvalidVpnRouteEntry.NotFound", 404)

    tea.call("DeleteVpnPbrRouteEntry", {"VpnGatewayId": gw, "RouteSource": "10.2.1.0/24",
                                        "RouteDest": "172.17.0.0/16", "NextHop": vco, "Weight": 0,
                                        "OverlayMode": "Ipsec", "ClientToken": vgwlib.unique_token()})
    wait_gateway_status(tea, gw, "active")
    body, items = pbr_entries(tea, gw)
    assert find(items, RouteDest="172.17.0.0/16") == []
    tea.error("DeleteVpnPbrRouteEntry", {"VpnGatewayId": gw, "RouteSource": "10.2.1.0/24",
                                         "RouteDest": "172.17.0.0/16", "NextHop": vco, "Weight": 0},
              "InvalidVpnRouteEntry.NotFound", 404)


def test_route_conflicts(tea, env):
    gw, vco = env["gw"], env["vco"]
    dbr = {"VpnGatewayId": gw, "RouteDest": "172.18.0.0/24", "NextHop": vco, "Weight": 0, "PublishVpc": False}
    tea.call("CreateVpnRouteEntry", dbr)
    wait_gateway_status(tea, gw, "active")
    tea.error("CreateVpnRouteEntry", dbr, "VpnRouteEntry.Conflict", 400)
    tea.error("CreateVpnRouteEntry", {**dbr, "Weight": 100}, "VpnRouteEntry.Conflict", 400)

    pbr = {"VpnGatewayId": gw, "RouteSource": "10.2.9.0/24", "RouteDest": "172.19.0.0/24", "NextHop": vco,
           "Weight": 0, "PublishVpc": False}
    tea.call("CreateVpnPbrRouteEntry", pbr)
    wait_gateway_status(tea, gw, "active")
    tea.error("CreateVpnPbrRouteEntry", pbr, "VpnRouteEntry.Conflict", 400)
    # a different source is a different policy route
    tea.call("CreateVpnPbrRouteEntry", {**pbr, "RouteSource": "10.2.10.0/24"})
    wait_gateway_status(tea, gw, "active")
    _, items = pbr_entries(tea, gw)
    assert len(find(items, RouteDest="172.19.0.0/24")) == 2


def test_next_hop_must_be_a_connection_of_the_same_gateway(tea, env):
    other_gw, _ = create_gateway(tea)
    other_cgw, _ = create_cgw(tea)
    foreign = create_connection(tea, other_gw, other_cgw)
    base = {"VpnGatewayId": env["gw"], "RouteDest": "172.20.0.0/24", "Weight": 0, "PublishVpc": False}
    tea.error("CreateVpnRouteEntry", {**base, "NextHop": foreign}, "InvalidNextHop.NotFound", 404)
    tea.error("CreateVpnRouteEntry", {**base, "NextHop": "vco-doesnotexist000"}, "InvalidNextHop.NotFound", 404)
    tea.error("CreateVpnPbrRouteEntry", {**base, "RouteSource": "10.2.0.0/24", "NextHop": foreign},
              "InvalidNextHop.NotFound", 404)


@pytest.mark.parametrize("params,code,status", [
    ({"Weight": 50}, "InvalidWeight", 400),
    ({"RouteDest": "bogus"}, "InvalidRouteDest", 400),
    ({"PublishVpc": None}, "MissingPublishVpc", 400),
    ({"RouteDest": None}, "MissingRouteDest", 400),
    ({"NextHop": None}, "MissingNextHop", 400),
    ({"Weight": None}, "MissingWeight", 400),
    ({"VpnGatewayId": "vpn-doesnotexist000"}, "InvalidVpnGatewayInstanceId.NotFound", 404),
], ids=lambda v: v if isinstance(v, (str, int)) else ",".join(f"{k}={x}" for k, x in v.items()))
def test_create_route_validation(tea, env, params, code, status):
    base = {"VpnGatewayId": env["gw"], "RouteDest": "172.21.0.0/24", "NextHop": env["vco"], "Weight": 0,
            "PublishVpc": False}
    base.update(params)
    tea.error("CreateVpnRouteEntry", base, code, status)
    _, items = dbr_entries(tea, env["gw"])
    assert items == [], "a rejected create left a route"


def test_publish_validation(tea, env):
    tea.call("CreateVpnRouteEntry", {"VpnGatewayId": env["gw"], "RouteDest": "172.22.0.0/24",
                                     "NextHop": env["vco"], "Weight": 0, "PublishVpc": False})
    wait_gateway_status(tea, env["gw"], "active")
    tea.error("PublishVpnRouteEntry", {"VpnGatewayId": env["gw"], "RouteDest": "172.22.0.0/24",
                                       "NextHop": env["vco"], "RouteType": "xbr", "PublishVpc": True},
              "InvalidRouteType", 400)
    tea.error("PublishVpnRouteEntry", {"VpnGatewayId": env["gw"], "RouteDest": "172.22.0.0/24",
                                       "NextHop": env["vco"], "PublishVpc": True}, "MissingRouteType", 400)


def test_route_paging(tea, env):
    gw, vco = env["gw"], env["vco"]
    dests = ["172.23.1.0/24", "172.23.2.0/24", "172.23.3.0/24"]
    for d in dests:
        tea.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": d, "NextHop": vco, "Weight": 0,
                                         "PublishVpc": False})
        wait_gateway_status(tea, gw, "active")
    p1, i1 = dbr_entries(tea, gw, PageSize=2, PageNumber=1)
    p2, i2 = dbr_entries(tea, gw, PageSize=2, PageNumber=2)
    check_paging(p1, 1, 2, "page 1")
    check_paging(p2, 2, 2, "page 2")
    assert p1["TotalCount"] == p2["TotalCount"] == 3
    assert sorted(i["RouteDest"] for i in i1 + i2) == dests
    tea.error("DescribeVpnRouteEntries", {"VpnGatewayId": gw, "PageSize": 51}, "InvalidPageSize", 400)
    tea.error("DescribeVpnPbrRouteEntries", {"VpnGatewayId": gw, "PageSize": 51}, "InvalidPageSize", 400)
    tea.error("DescribeVpnRouteEntries", {"VpnGatewayId": "vpn-doesnotexist000"},
              "InvalidVpnGatewayInstanceId.NotFound", 404)
