"""VPN gateways: Create/Modify/Describe(s)/Delete (seed 4.1-4.4, DeleteVpnGateway from the SDK)."""
from __future__ import annotations


import pytest

import vgwlib
from vgwlib import (GATEWAY_OPTIONAL, GATEWAY_REQUIRED, assert_recent_ms, assert_spec, check_fields,
                    check_paging, create_cgw, create_connection, create_gateway, unique_name, unique_vpc,
                    wait_gateway_gone, wait_gateway_status, wrapped_list)

MAIN_POOL = "198.18.0.0/20"


def check_gateway(d, where):
    check_fields(d, GATEWAY_REQUIRED, GATEWAY_OPTIONAL, where)
    assert d["Status"] in vgwlib.GATEWAY_STATES, f"{where}: Status {d['Status']!r}"
    assert d["IpsecVpn"] in ("enable", "disable"), f"{where}: IpsecVpn {d['IpsecVpn']!r}"
    assert d["SslVpn"] in ("enable", "disable"), f"{where}: SslVpn {d['SslVpn']!r}"
    assert d["VpnGatewayId"].startswith("vpn-"), d["VpnGatewayId"]


def test_create_minimal_request_as_in_seed_example(tea):
    vpc = unique_vpc()
    r = tea.call("CreateVpnGateway", {"VpcId": vpc, "Bandwidth": 5})
    check_fields(r, {"VpnGatewayId": str}, {"Name": str, "OrderId": int}, "CreateVpnGateway")
    gw = r["VpnGatewayId"]
    assert gw.startswith("vpn-")
    if "Name" in r:
        assert r["Name"] == gw, "default Name is the gateway ID (seed 4.1)"

    d = tea.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    check_gateway(d, "DescribeVpnGateway")
    assert d["VpnGatewayId"] == gw
    assert d["Name"] == gw, "Name defaults to the gateway ID"
    assert d["VpcId"] == vpc
    assert_spec(d["Spec"], 5)
    assert d["VpnType"] == "Normal", "VpnType default Normal"
    assert d["IpsecVpn"] == "enable", "EnableIpsec defaults to true"
    assert d["SslVpn"] == "disable", "EnableSsl defaults to false"
    assert d["BusinessStatus"] == "Normal"
    assert_recent_ms(d["CreateTime"], "CreateTime")
    assert vgwlib.in_pool(d["InternetIp"], MAIN_POOL), f"InternetIp {d['InternetIp']} not from eip_pool {MAIN_POOL}"

    active = wait_gateway_status(tea, gw, "active")
    assert active["InternetIp"] == d["InternetIp"]


def test_create_with_all_options(tea):
    vpc = unique_vpc()
    name = unique_name("full")
    r = tea.call("CreateVpnGateway", {
        "VpcId": vpc, "Bandwidth": 10, "Name": name, "EnableIpsec": False, "EnableSsl": True,
        "SslConnections": 10, "VSwitchId": "vsw-it0000000001", "VpnType": "Normal", "AutoPay": True,
    })
    assert r.get("Name", name) == name
    d = wait_gateway_status(tea, r["VpnGatewayId"], "active")
    check_gateway(d, "DescribeVpnGateway")
    assert d["Name"] == name
    assert_spec(d["Spec"], 10)
    assert d["IpsecVpn"] == "disable"
    assert d["SslVpn"] == "enable"
    assert d["SslMaxConnections"] == 10
    assert d["VSwitchId"] == "vsw-it0000000001"


def test_unicode_name_and_description(tea):
    name, desc = "网关-测试_" + vgwlib.uid(), "描述-中文_desc"
    gw, d = create_gateway(tea, Name=name)
    assert d["Name"] == name
    r = tea.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": desc})
    assert r["Description"] == desc
    lst = tea.call("DescribeVpnGateways", {"VpnGatewayId": gw})
    item = wrapped_list(lst, "VpnGateways", "VpnGateway")[0]
    assert (item["Name"], item["Description"]) == (name, desc)


def test_internet_ips_are_unique(tea):
    a, da = create_gateway(tea)
    b, db = create_gateway(tea)
    assert da["InternetIp"] != db["InternetIp"]
    for d in (da, db):
        assert vgwlib.in_pool(d["InternetIp"], MAIN_POOL)


def test_describe_gateways_shape_filters_and_defaults(tea):
    vpc = unique_vpc()
    g1, _ = create_gateway(tea, vpc=vpc)
    g2, _ = create_gateway(tea, vpc=vpc, ssl=True)
    body = tea.call("DescribeVpnGateways", {"VpcId": vpc})
    check_paging(body, 1, 10, "DescribeVpnGateways (defaults 1/10)")
    items = wrapped_list(body, "VpnGateways", "VpnGateway", "DescribeVpnGateways")
    assert body["TotalCount"] == 2
    assert {i["VpnGatewayId"] for i in items} == {g1, g2}
    for i, item in enumerate(items):
        check_gateway(item, f"VpnGateways.VpnGateway[{i}]")
        assert item["VpcId"] == vpc

    one = tea.call("DescribeVpnGateways", {"VpcId": vpc, "VpnGatewayId": g2})
    items = wrapped_list(one, "VpnGateways", "VpnGateway", "by id")
    assert [i["VpnGatewayId"] for i in items] == [g2]
    assert items[0]["SslVpn"] == "enable"

    active = tea.call("DescribeVpnGateways", {"VpcId": vpc, "Status": "active"})
    assert active["TotalCount"] == 2
    none = tea.call("DescribeVpnGateways", {"VpcId": vpc, "Status": "updating"})
    assert none["TotalCount"] == 0
    assert wrapped_list(none, "VpnGateways", "VpnGateway", "empty") == []

    normal = tea.call("DescribeVpnGateways", {"VpcId": vpc, "BusinessStatus": "Normal",
                                              "IncludeReservationData": False})
    assert normal["TotalCount"] == 2


def test_describe_gateway_include_reservation_data(tea):
    gw, _ = create_gateway(tea)
    d = tea.call("DescribeVpnGateway", {"VpnGatewayId": gw, "IncludeReservationData": True})
    check_gateway(d, "DescribeVpnGateway")
    if "ReservationData" in d:
        assert isinstance(d["ReservationData"], dict)


def test_paging(tea):
    vpc = unique_vpc()
    ids = {create_gateway(tea, vpc=vpc, wait=False)[0] for _ in range(3)}
    p1 = tea.call("DescribeVpnGateways", {"VpcId": vpc, "PageSize": 2, "PageNumber": 1})
    check_paging(p1, 1, 2, "page 1")
    p2 = tea.call("DescribeVpnGateways", {"VpcId": vpc, "PageSize": 2, "PageNumber": 2})
    check_paging(p2, 2, 2, "page 2")
    p3 = tea.call("DescribeVpnGateways", {"VpcId": vpc, "PageSize": 2, "PageNumber": 3})
    check_paging(p3, 3, 2, "page 3")
    i1 = wrapped_list(p1, "VpnGateways", "VpnGateway")
    i2 = wrapped_list(p2, "VpnGateways", "VpnGateway")
    i3 = wrapped_list(p3, "VpnGateways", "VpnGateway")
    assert (len(i1), len(i2), len(i3)) == (2, 1, 0)
    assert p1["TotalCount"] == p2["TotalCount"] == p3["TotalCount"] == 3
    got = [i["VpnGatewayId"] for i in i1 + i2]
    assert len(set(got)) == 3 and set(got) == ids

    big = tea.call("DescribeVpnGateways", {"VpcId": vpc, "PageSize": 50})
    check_paging(big, 1, 50, "PageSize 50")
    tea.error("DescribeVpnGateways", {"VpcId": vpc, "PageSize": 51}, "InvalidPageSize", 400)
    tea.error("DescribeVpnGateways", {"VpcId": vpc, "PageSize": 0}, "InvalidPageSize", 400)
    tea.error("DescribeVpnGateways", {"VpcId": vpc, "PageNumber": 0}, "InvalidPageNumber", 400)


def test_modify_gateway_attribute(tea):
    gw, before = create_gateway(tea)
    name, desc = unique_name("renamed"), "interop-description"
    r = tea.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": name, "Description": desc,
                                               "AutoPropagate": False, "ClientToken": vgwlib.unique_token()})
    check_fields(r, {"VpnGatewayId": str, "Name": str, "Description": str, "Status": str, "VpcId": str,
                     "InternetIp": str, "Spec": str, "CreateTime": int, "AutoPropagate": bool,
                     "EnableBgp": bool, "BusinessStatus": str},
                 {"IntranetIp": str, "EndTime": int, "VSwitchId": str}, "ModifyVpnGatewayAttribute")
    assert r["VpnGatewayId"] == gw
    assert (r["Name"], r["Description"], r["AutoPropagate"]) == (name, desc, False)
    assert r["InternetIp"] == before["InternetIp"]
    d = tea.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    assert (d["Name"], d["Description"], d["AutoPropagate"]) == (name, desc, False)
    r2 = tea.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "AutoPropagate": True})
    assert r2["AutoPropagate"] is True and r2["Name"] == name


@pytest.mark.parametrize("params,code,status", [
    ({"Name": "1starts-with-digit"}, "InvalidName", 400),
    ({"Name": "a"}, "InvalidName", 400),
    ({"Name": "n" * 101}, "InvalidName", 400),
    ({"Name": "bad name!"}, "InvalidName", 400),
    ({"Bandwidth": 7}, "InvalidBandwidth", 400),
    ({"Bandwidth": "lots"}, "InvalidBandwidth", 400),
    ({"VpcId": None}, "MissingVpcId", 400),
    ({"Bandwidth": None}, "MissingBandwidth", 400),
    ({"RegionId": None}, "MissingRegionId", 400),
    ({"RegionId": vgwlib.UNKNOWN_REGION}, "InvalidRegionId.NotFound", 404),
    ({"EnableSsl": True, "SslConnections": 7}, "InvalidSslConnections", 400),
    ({"VpnType": "Bogus"}, "InvalidVpnType", 400),
    ({"EnableSsl": "maybe"}, "InvalidEnableSsl", 400),
    ({"InstanceChargeType": "PREPAY", "Period": 10}, "InvalidPeriod", 400),
], ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(f"{k}={str(x)[:12]}" for k, x in v.items()))
def test_create_validation(tea, params, code, status):
    base = {"VpcId": unique_vpc(), "Bandwidth": 5, "Name": unique_name("v")}
    base.update(params)
    vpc = base.get("VpcId")
    tea.error("CreateVpnGateway", base, code, status)
    if vpc:
        assert tea.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 0, "a failed create left a gateway"


def test_modify_and_describe_errors(tea):
    gw, _ = create_gateway(tea)
    tea.error("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "9lives"}, "InvalidName", 400)
    tea.error("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": "x"}, "InvalidDescription", 400)
    tea.error("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": "#nope"}, "InvalidDescription", 400)
    # ModifyVpnGatewayAttribute's table lists the not-found code with HTTP 400 (aliyun-wire.md §5.10)
    tea.error("ModifyVpnGatewayAttribute", {"VpnGatewayId": "vpn-doesnotexist000", "Name": "abc"},
              "InvalidVpnGatewayInstanceId.NotFound", 400)
    tea.error("DescribeVpnGateway", {"VpnGatewayId": "vpn-doesnotexist000"}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    tea.error("DescribeVpnGateway", {}, "MissingVpnGatewayId", 400)
    tea.error("DeleteVpnGateway", {"VpnGatewayId": "vpn-doesnotexist000"}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    d = tea.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    assert d["Name"] != "9lives" and d.get("Description") not in ("x", "#nope"), "a rejected modify changed state"


def test_delete_gateway(tea):
    vpc = unique_vpc()
    gw, _ = create_gateway(tea, vpc=vpc)
    tea.call("DeleteVpnGateway", {"VpnGatewayId": gw, "ClientToken": vgwlib.unique_token()})
    seen = []
    wait_gateway_gone(tea, gw, seen=seen)
    assert set(seen) <= {"deleting"}, f"states seen after delete: {seen}"
    assert tea.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 0
    tea.error("DeleteVpnGateway", {"VpnGatewayId": gw}, "InvalidVpnGatewayInstanceId.NotFound", 404)


def test_delete_gateway_removes_its_children(tea):
    gw, _ = create_gateway(tea)
    cgw, _ = create_cgw(tea)
    vco = create_connection(tea, gw, cgw)
    tea.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    wait_gateway_gone(tea, gw)
    tea.error("DescribeVpnConnection", {"VpnConnectionId": vco}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    assert tea.call("DescribeVpnConnections", {"VpnGatewayId": gw})["TotalCount"] == 0
    # the customer gateway is no longer used by a connection
    tea.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})


def test_configuring_when_mutating_child_before_active(tea):
    cgw, _ = create_cgw(tea)
    gw, created = create_gateway(tea, ssl=True, wait=False)
    # provision_delay_ms = 300: the gateway is still init/provisioning here
    tea.error("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.9.0.0/16",
                                      "RemoteSubnet": "192.168.9.0/24"}, "VpnGateway.Configuring", 400)
    tea.error("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.200.0/24",
                                     "LocalSubnet": "10.9.0.0/16"}, "VpnGateway.Configuring", 400)
    wait_gateway_status(tea, gw, "active")
    assert tea.call("DescribeVpnConnections", {"VpnGatewayId": gw})["TotalCount"] == 0
    create_connection(tea, gw, cgw, local="10.9.0.0/16", remote="192.168.9.0/24")


def test_auto_propagate_cannot_be_disabled_with_bgp_connections(tea):
    """Seed 4.2: OperationFailed.VpnConnectionExist when a BGP-enabled connection exists."""
    gw, _ = create_gateway(tea)
    tea.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "AutoPropagate": True})
    cgw, _ = create_cgw(tea, Asn="65030")
    create_connection(tea, gw, cgw, BgpConfig='{"EnableBgp":"true","TunnelCidr":"169.254.14.0/30",'
                                              '"LocalBgpIp":"169.254.14.1"}')
    tea.error("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "AutoPropagate": False},
              "OperationFailed.VpnConnectionExist", 400)
    assert tea.call("DescribeVpnGateway", {"VpnGatewayId": gw})["AutoPropagate"] is True
    # enabling (or renaming) is still fine
    tea.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "AutoPropagate": True, "Name": unique_name("bgp")})
