"""The legacy aliyun-python-sdk-core + aliyun-python-sdk-vpc (HMAC-SHA1, Format=JSON, SignatureType=)."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET


import vgwlib
from vgwlib import (assert_spec, check_connection, check_fields, legacy_common, legacy_request,
                    unique_ip, unique_name, unique_vpc)


def legacy_wait(legacy, gw, status="active", timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        d = legacy.do(legacy_request("DescribeVpnGateway", VpnGatewayId=gw))
        if d.get("Status") == status:
            return d
        assert time.monotonic() < deadline, f"{gw} still {d.get('Status')!r}"
        time.sleep(0.05)


def test_legacy_gateway_customer_gateway_connection_flow(legacy):
    vpc, name = unique_vpc(), unique_name("legacy")
    r = legacy.do(legacy_request("CreateVpnGateway", VpcId=vpc, Bandwidth=5, Name=name, EnableSsl=True,
                                 SslConnections=5))
    check_fields(r, {"VpnGatewayId": str}, {"Name": str, "OrderId": int}, "legacy CreateVpnGateway")
    gw = r["VpnGatewayId"]
    d = legacy_wait(legacy, gw)
    check_fields(d, vgwlib.GATEWAY_REQUIRED, vgwlib.GATEWAY_OPTIONAL, "legacy DescribeVpnGateway")
    assert (d["VpnGatewayId"], d["VpcId"], d["Name"], d["SslVpn"]) == (gw, vpc, name, "enable")
    assert_spec(d["Spec"], 5)

    lst = legacy.do(legacy_request("DescribeVpnGateways", VpcId=vpc))
    assert lst["TotalCount"] == 1
    assert [g["VpnGatewayId"] for g in vgwlib.wrapped_list(lst, "VpnGateways", "VpnGateway")] == [gw]

    ip = unique_ip()
    c = legacy.do(legacy_request("CreateCustomerGateway", IpAddress=ip, Name=unique_name("lcgw"), Asn="65100"))
    cgw = c["CustomerGatewayId"]
    cl = legacy.do(legacy_request("DescribeCustomerGateways", CustomerGatewayId=cgw))
    items = vgwlib.wrapped_list(cl, "CustomerGateways", "CustomerGateway")
    assert [(i["CustomerGatewayId"], i["IpAddress"], i["Asn"]) for i in items] == [(cgw, ip, 65100)]
    one = legacy.do(legacy_request("DescribeCustomerGateway", CustomerGatewayId=cgw))
    assert one["Asn"] == 65100

    v = legacy.do(legacy_request(
        "CreateVpnConnection", VpnGatewayId=gw, CustomerGatewayId=cgw, LocalSubnet="10.1.0.0/16",
        RemoteSubnet="192.168.1.0/24", Name=unique_name("lvco"), EnableDpd=False,
        IkeConfig=json.dumps({"IkeVersion": "ikev2", "IkeEncAlg": "aes256", "Psk": "legacy-psk"})))
    vco = v["VpnConnectionId"]
    legacy_wait(legacy, gw)
    dv = legacy.do(legacy_request("DescribeVpnConnection", VpnConnectionId=vco))
    check_connection(dv, "legacy DescribeVpnConnection")
    assert (dv["IkeConfig"]["IkeVersion"], dv["IkeConfig"]["IkeEncAlg"], dv["IkeConfig"]["Psk"]) == (
        "ikev2", "aes256", "legacy-psk")
    assert dv["IkeConfig"]["IkeAuthAlg"] == "md5" and dv["EnableDpd"] is False
    assert dv["IkeConfig"]["RemoteId"] == ip and dv["IkeConfig"]["LocalId"] == d["InternetIp"]

    legacy.do(legacy_request("DeleteVpnConnection", VpnConnectionId=vco))
    legacy_wait(legacy, gw)
    legacy.error(legacy_request("DescribeVpnConnection", VpnConnectionId=vco),
                 "InvalidVpnConnectionInstanceId.NotFound", 404)
    legacy.do(legacy_request("DeleteCustomerGateway", CustomerGatewayId=cgw))
    legacy.do(legacy_request("DeleteVpnGateway", VpnGatewayId=gw))
    deadline = time.monotonic() + 10
    while True:
        try:
            st = legacy.do(legacy_request("DescribeVpnGateway", VpnGatewayId=gw))["Status"]
        except Exception as e:
            assert e.get_error_code() == "InvalidVpnGatewayInstanceId.NotFound" and e.get_http_status() == 404, e
            break
        assert st == "deleting", st
        assert time.monotonic() < deadline, "gateway never went away"
        time.sleep(0.05)


def test_legacy_error_codes(legacy):
    e = legacy.error(legacy_request("DescribeVpnGateway", VpnGatewayId="vpn-doesnotexist000"),
                     "InvalidVpnGatewayInstanceId.NotFound", 404)
    assert e.get_request_id(), "error without RequestId"
    legacy.error(legacy_request("ModifyVpnGatewayAttribute", VpnGatewayId="vpn-doesnotexist000", Name="abc"),
                 "InvalidVpnGatewayInstanceId.NotFound", 400)
    legacy.error(legacy_request("CreateVpnGateway", VpcId=unique_vpc(), Bandwidth=7), "InvalidBandwidth", 400)
    legacy.error(legacy_request("CreateVpnGateway", Bandwidth=5), "MissingVpcId", 400)
    ip = unique_ip()
    legacy.do(legacy_request("CreateCustomerGateway", IpAddress=ip))
    legacy.error(legacy_request("CreateCustomerGateway", IpAddress=ip), "InvalidIpAddress.AlreadyExist", 400)
    legacy.error(legacy_request("CreateCustomerGateway", IpAddress=unique_ip(), AuthKey="needs-asn"),
                 "OperationDenied.MissingAsn", 400)


def test_legacy_wrong_secret(server, tenant_a):
    """aliyunsdkcore/client.py::_get_server_exception: for 400 SignatureDoesNotMatch it compares
    message.split(':')[1] with its own string-to-sign and, when equal (the server computed the same
    string, so only the secret differs), reports InvalidAccessKeySecret."""
    bad = vgwlib.Legacy(tenant_a["access_key_id"], tenant_a["access_key_secret"] + "x", server.port)
    bad.error(legacy_request("DescribeVpnGateways"), "InvalidAccessKeySecret", 400)


def test_legacy_unknown_access_key(server):
    bad = vgwlib.Legacy("LTAIunknownkey0000", "whatever", server.port)
    e = bad.error(legacy_request("DescribeVpnGateways"), "InvalidAccessKeyId.NotFound")
    assert 400 <= e.get_http_status() < 500


def test_legacy_common_request_get_and_unknown_action(legacy, server):
    # CommonRequest defaults to GET (the seed's method)
    body = legacy.do(legacy_common(server.port, "DescribeVpnGateways", {"PageSize": 5}), method=None)
    vgwlib.check_paging(body, 1, 5, "legacy GET DescribeVpnGateways")
    vgwlib.wrapped_list(body, "VpnGateways", "VpnGateway")
    legacy.error(legacy_common(server.port, "DescribeUnicorns"), "InvalidAction.NotFound", 404, method=None)


def test_legacy_format_xml(legacy, server):
    gw = legacy.do(legacy_request("CreateVpnGateway", VpcId=unique_vpc(), Bandwidth=5))["VpnGatewayId"]
    raw = legacy.raw(legacy_common(server.port, "DescribeVpnGateway", {"VpnGatewayId": gw}, fmt="XML"))
    assert isinstance(raw, bytes) and raw.lstrip()[:1] == b"<", f"not XML: {raw[:200]!r}"
    root = ET.fromstring(raw)
    assert root.tag == "DescribeVpnGatewayResponse", raw[:200]
    assert root.findtext("VpnGatewayId") == gw
    assert root.findtext("RequestId")
    assert root.findtext("Status") in vgwlib.GATEWAY_STATES

    raw = legacy.raw(legacy_common(server.port, "DescribeVpnGateway", {"VpnGatewayId": "vpn-doesnotexist000"},
                                   fmt="XML"))
    err = ET.fromstring(raw)
    assert err.tag == "Error", raw[:200]
    assert err.findtext("Code") == "InvalidVpnGatewayInstanceId.NotFound"
    assert err.findtext("RequestId")

    # a list through XML: the wrapped shape, one element per gateway
    raw = legacy.raw(legacy_common(server.port, "DescribeVpnGateways", {"VpnGatewayId": gw}, fmt="XML"))
    root = ET.fromstring(raw)
    assert root.tag == "DescribeVpnGatewaysResponse"
    ids = [e.text for e in root.iter("VpnGatewayId")]
    assert ids == [gw], raw[:400]
    assert root.findtext("TotalCount") == "1"
