"""Customer gateways (seed 5.1-5.5)."""
from __future__ import annotations

import pytest

import vgwlib
from vgwlib import (assert_recent_ms, check_fields, check_paging, create_cgw, create_connection,
                    create_gateway, tag_map, unique_ip, unique_name, wrapped_list)

CGW_FIELDS = {"CustomerGatewayId": str, "IpAddress": str, "CreateTime": int}
CGW_OPTIONAL = {"Name": str, "Description": str, "Asn": int, "AuthKey": str, "Tags": dict}


def test_create_describe_modify_delete(tea):
    ip = unique_ip()
    name = unique_name("cgw")
    r = tea.call("CreateCustomerGateway", {"IpAddress": ip, "Name": name, "Description": "dc-one",
                                           "Asn": "65530", "AuthKey": "Auth-Key_1",
                                           "ClientToken": vgwlib.unique_token()})
    check_fields(r, CGW_FIELDS, {"Name": str, "Description": str}, "CreateCustomerGateway")
    cgw = r["CustomerGatewayId"]
    assert cgw.startswith("cgw-")
    assert (r["IpAddress"], r.get("Name", name), r.get("Description", "dc-one")) == (ip, name, "dc-one")
    assert_recent_ms(r["CreateTime"], "CreateTime")

    d = tea.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
    check_fields(d, {**CGW_FIELDS, "Name": str, "Description": str, "Asn": int, "AuthKey": str}, CGW_OPTIONAL,
                 "DescribeCustomerGateway")
    assert (d["CustomerGatewayId"], d["IpAddress"], d["Name"], d["Description"]) == (cgw, ip, name, "dc-one")
    assert d["Asn"] == 65530
    assert d["AuthKey"] == "Auth-Key_1"
    assert d["CreateTime"] == r["CreateTime"]

    new_name = unique_name("cgw-renamed")
    m = tea.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": new_name,
                                                    "Description": "dc-two", "AuthKey": "Other.Key-2"})
    check_fields(m, {**CGW_FIELDS, "Name": str, "Description": str}, None, "ModifyCustomerGatewayAttribute")
    assert (m["CustomerGatewayId"], m["IpAddress"], m["Name"], m["Description"]) == (cgw, ip, new_name, "dc-two")
    d = tea.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
    assert (d["Name"], d["Description"], d["AuthKey"]) == (new_name, "dc-two", "Other.Key-2")

    tea.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw, "ClientToken": vgwlib.unique_token()})
    tea.error("DescribeCustomerGateway", {"CustomerGatewayId": cgw}, "InvalidCustomerGatewayInstanceId.NotFound", 404)
    tea.error("DeleteCustomerGateway", {"CustomerGatewayId": cgw}, "InvalidCustomerGatewayInstanceId.NotFound", 404)
    tea.error("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": "abc"},
              "InvalidCustomerGatewayInstanceId.NotFound", 404)
    # the IP address is free again once the customer gateway is gone
    again, _ = create_cgw(tea, ip=ip)
    assert again != cgw


def test_dotted_asn_is_two_16_bit_halves(tea):
    cgw, _ = create_cgw(tea, Asn="123.456")
    d = tea.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
    assert d["Asn"] == 123 * 65536 + 456 == 8061384


def test_describe_customer_gateways_list(tea):
    cgw, ip = create_cgw(tea, Asn="65001", Tags=[{"Key": "site", "Value": "hq"}, {"Key": "tier", "Value": ""}])
    body = tea.call("DescribeCustomerGateways", {"CustomerGatewayId": cgw})
    check_paging(body, 1, 10, "DescribeCustomerGateways")
    items = wrapped_list(body, "CustomerGateways", "CustomerGateway", "DescribeCustomerGateways")
    assert body["TotalCount"] == 1 and len(items) == 1
    item = items[0]
    check_fields(item, CGW_FIELDS, CGW_OPTIONAL, "CustomerGateways.CustomerGateway[0]")
    assert (item["CustomerGatewayId"], item["IpAddress"], item["Asn"]) == (cgw, ip, 65001)
    assert tag_map(item, "Tags", "CustomerGateway") == {"site": "hq", "tier": ""}
    single = tea.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
    assert tag_map(single, "Tags", "DescribeCustomerGateway") == {"site": "hq", "tier": ""}


def test_paging_in_fresh_tenant(fresh_api):
    api = fresh_api()
    ids = {create_cgw(api)[0] for _ in range(3)}
    seen = []
    for page in (1, 2):
        body = api.call("DescribeCustomerGateways", {"PageSize": 2, "PageNumber": page})
        check_paging(body, page, 2, f"page {page}")
        assert body["TotalCount"] == 3
        seen += [c["CustomerGatewayId"] for c in wrapped_list(body, "CustomerGateways", "CustomerGateway")]
    assert len(seen) == 3 and set(seen) == ids
    api.error("DescribeCustomerGateways", {"PageSize": 51}, "InvalidPageSize", 400)


def test_duplicate_ip_rules(tea):
    cgw, ip = create_cgw(tea)
    tea.error("CreateCustomerGateway", {"IpAddress": ip}, "InvalidIpAddress.AlreadyExist", 400)
    # uniqueness is per user and region: the same address is fine in another region
    other = tea.in_region(vgwlib.OTHER_REGION)
    other_id, _ = create_cgw(other, ip=ip)
    assert other_id != cgw


@pytest.mark.parametrize("params,code", [
    ({"IpAddress": "300.1.2.3"}, "InvalidIpAddress.WrongFormat"),
    ({"IpAddress": "not-an-ip"}, "InvalidIpAddress.WrongFormat"),
    ({"IpAddress": None}, "MissingIpAddress"),
    ({"AuthKey": "Key-without-asn"}, "OperationDenied.MissingAsn"),
    ({"Asn": "65000", "AuthKey": "has space"}, "InvalidAuthkey.Malformed"),
    ({"Asn": "65000", "AuthKey": "question?"}, "InvalidAuthkey.Malformed"),
    ({"Asn": "65000", "AuthKey": "k" * 65}, "InvalidAuthkey.Malformed"),
    ({"Name": "1cgw"}, "InvalidName"),
    ({"Name": "c" * 129}, "InvalidName"),
    ({"Description": "d"}, "InvalidDescription"),
    ({"Asn": "not-a-number"}, "InvalidAsn"),
    ({"RegionId": vgwlib.UNKNOWN_REGION}, "InvalidRegionId.NotFound"),
], ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={str(x)[:10]}" for k, x in v.items()))
def test_create_validation(tea, params, code):
    base = {"IpAddress": unique_ip(), "Name": unique_name("cgw")}
    base.update(params)
    status = 404 if code.endswith(".NotFound") else 400
    tea.error("CreateCustomerGateway", base, code, status)


def test_modify_validation(tea):
    plain, _ = create_cgw(tea)
    tea.error("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": plain, "AuthKey": "NeedsAsn"},
              "OperationDenied.MissingAsn", 400)
    bgp, _ = create_cgw(tea, Asn="65002")
    tea.error("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": bgp, "AuthKey": "bad key"},
              "InvalidAuthkey.Malformed", 400)
    tea.error("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": bgp, "Name": "_x"}, "InvalidName", 400)
    tea.error("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": bgp, "Description": "1"},
              "InvalidDescription", 400)


def test_delete_in_use_is_dependency_violation(tea):
    gw, _ = create_gateway(tea)
    cgw, _ = create_cgw(tea)
    vco = create_connection(tea, gw, cgw)
    tea.error("DeleteCustomerGateway", {"CustomerGatewayId": cgw}, "DependencyViolation.VpnConnection", 400)
    tea.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    vgwlib.wait_gateway_status(tea, gw, "active")
    tea.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})
