"""Tags: TagResources / ListTagResources / UnTagResources (seed 4.5-4.7, behaviour doc "Tags")."""
from __future__ import annotations

import pytest

import vgwlib
from vgwlib import (check_fields, create_cgw, create_connection, create_gateway, tag_map, uid, wrapped_list)


def list_tags(api, **params):
    body = api.call("ListTagResources", params)
    items = wrapped_list(body, "TagResources", "TagResource", "ListTagResources")
    for i, t in enumerate(items):
        check_fields(t, {"ResourceId": str, "ResourceType": str, "TagKey": str}, {"TagValue": str},
                     f"TagResources.TagResource[{i}]")
    if "NextToken" in body and body["NextToken"] is not None:
        vgwlib.assert_type(body["NextToken"], str, "NextToken")
    return body, items


def as_pairs(items):
    return {(t["ResourceId"], t["TagKey"], t.get("TagValue", "")) for t in items}


def test_tag_gateway_roundtrip(tea):
    gw, _ = create_gateway(tea)
    k1, k2 = f"team{uid()}", f"cost{uid()}"
    tea.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                              "Tag": [{"Key": k1, "Value": "net"}, {"Key": k2, "Value": ""}]})
    d = tea.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    assert tag_map(d, "Tags", "DescribeVpnGateway") == {k1: "net", k2: ""}
    lst = tea.call("DescribeVpnGateways", {"VpnGatewayId": gw})
    item = wrapped_list(lst, "VpnGateways", "VpnGateway")[0]
    assert tag_map(item, "Tags", "VpnGateways.VpnGateway") == {k1: "net", k2: ""}

    body, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[gw])
    assert as_pairs(items) == {(gw, k1, "net"), (gw, k2, "")}
    assert {t["ResourceType"] for t in items} == {"VpnGateWay"}
    assert not body.get("NextToken")

    # ResourceType is case-insensitive; responses spell it VpnGateWay
    _, items = list_tags(tea, ResourceType="vpngateway", ResourceId=[gw])
    assert {t["ResourceType"] for t in items} == {"VpnGateWay"} and len(items) == 2

    tea.call("UnTagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "TagKey": [k1]})
    _, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[gw])
    assert as_pairs(items) == {(gw, k2, "")}
    tea.call("UnTagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "All": True})
    _, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[gw])
    assert items == []
    d = tea.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    if "Tags" in d:
        assert tag_map(d, "Tags") == {}


def test_list_by_tag_and_filter_gateways_by_tag(tea):
    key = f"stage{uid()}"
    g1, _ = create_gateway(tea)
    g2, _ = create_gateway(tea)
    g3, _ = create_gateway(tea)
    tea.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [g1, g2], "Tag": [{"Key": key, "Value": "blue"}]})
    tea.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [g3], "Tag": [{"Key": key, "Value": "green"}]})

    _, items = list_tags(tea, ResourceType="VpnGateWay", Tag=[{"Key": key}])
    assert as_pairs(items) == {(g1, key, "blue"), (g2, key, "blue"), (g3, key, "green")}
    _, items = list_tags(tea, ResourceType="VpnGateWay", Tag=[{"Key": key, "Value": "green"}])
    assert {t["ResourceId"] for t in items} == {g3}
    _, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[g1, g3], Tag=[{"Key": key, "Value": "blue"}])
    assert {t["ResourceId"] for t in items} == {g1}

    lst = tea.call("DescribeVpnGateways", {"Tag": [{"Key": key, "Value": "blue"}]})
    assert {i["VpnGatewayId"] for i in wrapped_list(lst, "VpnGateways", "VpnGateway")} == {g1, g2}
    assert lst["TotalCount"] == 2


def test_tags_on_customer_gateways_and_connections(tea):
    gw, _ = create_gateway(tea)
    cgw, _ = create_cgw(tea, Tags=[{"Key": "born", "Value": "with-tag"}])
    vco = create_connection(tea, gw, cgw, Tags=[{"Key": "born", "Value": "conn"}])
    k = f"k{uid()}"
    tea.call("TagResources", {"ResourceType": "CustomerGateway", "ResourceId": [cgw], "Tag": [{"Key": k, "Value": "1"}]})
    tea.call("TagResources", {"ResourceType": "VpnConnection", "ResourceId": [vco], "Tag": [{"Key": k, "Value": "2"}]})

    _, items = list_tags(tea, ResourceType="CustomerGateway", ResourceId=[cgw])
    assert as_pairs(items) == {(cgw, "born", "with-tag"), (cgw, k, "1")}
    assert {t["ResourceType"] for t in items} == {"CustomerGateway"}
    _, items = list_tags(tea, ResourceType="vpnconnection", ResourceId=[vco])
    assert as_pairs(items) == {(vco, "born", "conn"), (vco, k, "2")}
    assert {t["ResourceType"] for t in items} == {"VpnConnection"}

    d = tea.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
    assert tag_map(d, "Tags", "DescribeCustomerGateway") == {"born": "with-tag", k: "1"}
    c = tea.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    assert tag_map(c, "Tags", "DescribeVpnConnection") == {"born": "conn", k: "2"}
    lst = tea.call("DescribeVpnConnections", {"VpnConnectionId": vco})
    assert tag_map(wrapped_list(lst, "VpnConnections", "VpnConnection")[0], "Tag", "VpnConnections.VpnConnection") == {
        "born": "conn", k: "2"}

    tea.call("UnTagResources", {"ResourceType": "VpnConnection", "ResourceId": [vco], "TagKey": ["born"]})
    _, items = list_tags(tea, ResourceType="VpnConnection", ResourceId=[vco])
    assert as_pairs(items) == {(vco, k, "2")}


def test_twenty_tags_per_resource(tea):
    gw, _ = create_gateway(tea)
    tags = [{"Key": f"k{i:02d}", "Value": f"v{i}"} for i in range(20)]
    tea.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "Tag": tags})
    _, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[gw])
    assert len(items) == 20
    tea.error("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                               "Tag": [{"Key": "one-too-many", "Value": "x"}]}, "Resource.QuotaFull", 400)
    _, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[gw])
    assert len(items) == 20 and "one-too-many" not in {t["TagKey"] for t in items}
    tea.call("UnTagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "TagKey": ["k00"]})
    tea.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                              "Tag": [{"Key": "one-too-many", "Value": "x"}]})


def test_next_token_walk(tea):
    gw, _ = create_gateway(tea)
    tea.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                              "Tag": [{"Key": f"page{i}", "Value": str(i)} for i in range(5)]})
    seen, token, pages = [], None, 0
    while True:
        params = {"ResourceType": "VpnGateWay", "ResourceId": [gw], "MaxResults": 2}
        if token:
            params["NextToken"] = token
        body, items = list_tags(tea, **params)
        pages += 1
        assert len(items) <= 2
        seen += [t["TagKey"] for t in items]
        token = body.get("NextToken")
        if not token:
            break
        assert pages < 10, "NextToken never ends"
    assert pages == 3 and sorted(seen) == [f"page{i}" for i in range(5)]
    tea.error("ListTagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "MaxResults": 51},
              "InvalidMaxResults", 400)


@pytest.mark.parametrize("tag,code", [
    ({"Key": "aliyun-owned", "Value": "x"}, "InvalidTagKey"),
    ({"Key": "acs:thing", "Value": "x"}, "InvalidTagKey"),
    ({"Key": "see-http://x", "Value": "x"}, "InvalidTagKey"),
    ({"Key": "k" * 65, "Value": "x"}, "InvalidTagKey"),
    ({"Key": "fine", "Value": "v" * 129}, "InvalidTagValue"),
], ids=["aliyun-prefix", "acs-prefix", "http", "key-65", "value-129"])
def test_invalid_tags(tea, tag_target, tag, code):
    gw = tag_target
    tea.error("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "Tag": [tag]}, code, 400)
    _, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[gw])
    assert items == []


@pytest.fixture(scope="module")
def tag_target(tea):
    """One untagged gateway per signing mode; only rejected tag requests are sent to it."""
    return create_gateway(tea)[0]


def test_tag_errors(tea, tag_target):
    gw = tag_target
    tea.error("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": ["vpn-doesnotexist000"],
                               "Tag": [{"Key": "a", "Value": "b"}]}, "InvalidResourceId.NotFound", 404)
    tea.error("TagResources", {"ResourceType": "Unicorn", "ResourceId": [gw], "Tag": [{"Key": "a", "Value": "b"}]},
              "InvalidResourceType", 400)
    tea.error("TagResources", {"ResourceId": [gw], "Tag": [{"Key": "a", "Value": "b"}]}, "MissingResourceType", 400)
    # a gateway is not a customer gateway
    tea.error("TagResources", {"ResourceType": "CustomerGateway", "ResourceId": [gw],
                               "Tag": [{"Key": "a", "Value": "b"}]}, "InvalidResourceId.NotFound", 404)
    tea.error("UnTagResources", {"ResourceType": "VpnGateWay", "ResourceId": ["vpn-doesnotexist000"],
                                 "TagKey": ["a"]}, "InvalidResourceId.NotFound", 404)


def test_tag_values_with_reserved_characters_round_trip(tea):
    """Signature canonicalization through the SDK: space, '*', '~', '+', '&', '=', '/', '%' and UTF-8
    (Python sends '+' for space and %2A for '*' in the URL; V3 signs %20/%2A, V2 signs %20/%2A)."""
    gw = create_gateway(tea)[0]
    value = "a b*c~d+e&f=g/h%i 网关"
    key = f"odd{uid()}"
    tea.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "Tag": [{"Key": key, "Value": value}]})
    _, items = list_tags(tea, ResourceType="VpnGateWay", ResourceId=[gw])
    assert as_pairs(items) == {(gw, key, value)}
    _, items = list_tags(tea, ResourceType="VpnGateWay", Tag=[{"Key": key, "Value": value}])
    assert {t["ResourceId"] for t in items} == {gw}
