"""Hostile input gets a clear 4xx naming what is wrong — never a 5xx, never a partial action.

Each case was found by trying the service adversarially: parameters given twice, numbers at the edges, control
characters and oversized ids, nonces and filters. Properly signed requests are used, so a refusal proves the check,
not a signature failure.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import List, Tuple

import pytest

import hwlib
import vgwlib
from vgwlib import pct


def v1_signed_pairs(ak: str, sk: str, pairs: List[Tuple[str, str]], method: str = "GET") -> str:
    """A SignatureVersion 1.0 query over `pairs` as given (duplicates included), signed over all of them."""
    base = [("Version", vgwlib.API_VERSION), ("AccessKeyId", ak), ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"), ("SignatureNonce", uuid.uuid4().hex), ("Timestamp", vgwlib.utc_stamp()),
            ("Format", "JSON"), ("RegionId", vgwlib.DEFAULT_REGION)]
    allp = base + pairs
    canon = "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in allp))
    sts = f"{method}&{pct('/')}&{pct(canon)}"
    sig = base64.b64encode(hmac.new((sk + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()
    return "/?" + "&".join(f"{pct(k)}={pct(v)}" for k, v in allp + [("Signature", sig)])


def aliyun_error(r: vgwlib.RawResponse, status: int, code: str) -> str:
    assert r.status == status, f"expected HTTP {status} {code}, got {r!r}"
    body = r.json()
    assert body.get("Code") == code, f"expected {code}, got {body}"
    assert body.get("RequestId"), body
    return body["Message"]


def test_a_parameter_given_twice_is_refused_and_nothing_runs(server, tenant_a, tea_v3):
    gw, _ = vgwlib.create_gateway(tea_v3)
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    target = v1_signed_pairs(ak, sk, [("Action", "DescribeVpnGateway"), ("Action", "DeleteVpnGateway"),
                                      ("VpnGatewayId", gw)])
    r = vgwlib.http_request(server.port, "GET", target)
    msg = aliyun_error(r, 400, "InvalidParameter")
    assert "Action" in msg and "more than once" in msg, msg
    # The gateway is untouched.
    body = tea_v3.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    assert body["Status"] == "active", body


@pytest.mark.parametrize("params,code", [
    ({"PageNumber": "9223372036854775807"}, "InvalidPageNumber"),
    ({"PageNumber": "-9223372036854775808"}, "InvalidPageNumber"),
    ({"PageSize": "18446744073709551616"}, "InvalidPageSize"),
    ({"VpcId": "vpc-\x00"}, "InvalidVpcId"),
    ({"VpcId": "vpc-\x1b[31m"}, "InvalidVpcId"),
    ({"VpcId": "vpc-" + "a" * 200}, "InvalidVpcId"),
    ({"Name": "x" * 2000}, "InvalidName"),
    ({"Name": "a\x01b"}, "InvalidName"),
])
def test_describe_edges_are_4xx(server, tenant_a, params, code):
    r = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                         "DescribeVpnGateways", {"RegionId": vgwlib.DEFAULT_REGION, **params})
    aliyun_error(r, 400, code)


def test_a_thousand_tag_filters_are_4xx(server, tenant_a):
    params = {"RegionId": vgwlib.DEFAULT_REGION, "ResourceType": "VPNGATEWAY"}
    for i in range(1, 1001):
        params[f"Tag.{i}.Key"] = f"k{i}"
    r = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                         "ListTagResources", params)
    assert r.status == 400, r
    twenty_one = {"RegionId": vgwlib.DEFAULT_REGION, "ResourceType": "VPNGATEWAY",
                  **{f"Tag.{i}.Key": f"k{i}" for i in range(1, 22)}}
    r = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                         "ListTagResources", twenty_one)
    aliyun_error(r, 400, "InvalidTagN")


def test_control_characters_are_refused_on_create_and_xml_stays_parseable(server, tenant_a, tea_v3):
    import xml.dom.minidom
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    for bad in ("a\x01b", "a\x1b[2Jb", "a\x00b", "a\ufffeb"):
        r = vgwlib.acs3_call(server.port, ak, sk, "CreateCustomerGateway",
                             {"RegionId": vgwlib.DEFAULT_REGION, "IpAddress": vgwlib.unique_ip(), "Description": bad})
        aliyun_error(r, 400, "InvalidDescription")
    # JSON-string parameters are checked after decoding too (`\u0001` inside IkeConfig).
    gw, _ = vgwlib.create_gateway(tea_v3)
    cgw, _ = vgwlib.create_cgw(tea_v3)
    r = vgwlib.acs3_call(server.port, ak, sk, "CreateVpnConnection", {
        "RegionId": vgwlib.DEFAULT_REGION, "VpnGatewayId": gw, "CustomerGatewayId": cgw,
        "LocalSubnet": "10.1.0.0/16", "RemoteSubnet": "10.2.0.0/16",
        "IkeConfig": json.dumps({"LocalId": "a\u0001b"})})
    aliyun_error(r, 400, "InvalidIkeConfig")
    # Every XML Describe of the tenant parses.
    target = vgwlib.v1_prepare(ak, sk, "DescribeCustomerGateways", {"RegionId": vgwlib.DEFAULT_REGION,
                                                                     "PageSize": 50}, fmt="XML")
    r = vgwlib.http_request(server.port, "GET", target)
    assert r.status == 200, r
    xml.dom.minidom.parseString(r.body)


def test_an_oversized_nonce_is_refused(server, tenant_a):
    r = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                         "DescribeVpnGateways", {"RegionId": vgwlib.DEFAULT_REGION}, nonce="n" * (512 * 1024))
    assert 400 <= r.status < 500, r
    target = vgwlib.v1_prepare(tenant_a["access_key_id"], tenant_a["access_key_secret"], "DescribeVpnGateways",
                               {"RegionId": vgwlib.DEFAULT_REGION}, nonce="n" * 4096)
    r = vgwlib.http_request(server.port, "GET", target)
    assert 400 <= r.status < 500, r


def test_error_messages_do_not_carry_markup_into_xml(server, tenant_a):
    import xml.dom.minidom
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    target = vgwlib.v1_prepare(ak, sk, "DescribeVpnGateways", {"RegionId": vgwlib.DEFAULT_REGION,
                                                                "PageSize": "<x>&</x>"}, fmt="XML")
    r = vgwlib.http_request(server.port, "GET", target)
    assert r.status == 400, r
    doc = xml.dom.minidom.parseString(r.body)
    assert doc.getElementsByTagName("Code")[0].firstChild.data == "InvalidPageSize", r.body


# ---- Huawei ----------------------------------------------------------------------------------------------------
def test_huawei_scalar_query_parameter_twice_is_refused(hw_a):
    r = hw_a.raw("GET", "/v5/{project_id}/customer-gateways", query=[("limit", "1"), ("limit", "2000")])
    hwlib.assert_raw_error(r, 400, "VPN.0001", "more than once")
    # List parameters may repeat.
    r = hw_a.raw("GET", "/v5/{project_id}/vpn-gateways", query=[("vgw_id", str(uuid.uuid4())),
                                                                  ("vgw_id", str(uuid.uuid4()))])
    assert r.status == 200, r.text


def test_huawei_json_member_twice_is_refused_and_nothing_is_created(hw_a):
    name = hwlib.uname("dup")
    ip = hwlib.fresh_peer_ip()
    body = ('{"customer_gateway":{"name":"%s","id_value":"%s","id_type":"ip","id_value":"203.0.113.9"}}'
            % (name, ip)).encode()
    r = hw_a.raw("POST", "/v5/{project_id}/customer-gateways", body=body)
    hwlib.assert_raw_error(r, 400, "VPN.0001", "more than once")
    listed = hw_a.call("list_cgws", limit=200).json["customer_gateways"]
    assert name not in [c["name"] for c in listed], listed


@pytest.mark.parametrize("field,value", [
    ("name", "a\u0001b"),
    ("name", "a\u001b[31m"),
    ("name", "x" * (64 * 1024 + 1)),
])
def test_huawei_bad_characters_and_lengths_are_400(hw_a, field, value):
    body = {"customer_gateway": {**hwlib.cgw_body()["customer_gateway"], field: value}}
    r = hw_a.raw("POST", "/v5/{project_id}/customer-gateways", body=body)
    hwlib.assert_raw_error(r, 400, "VPN.0001")


def test_huawei_ids_are_short_words(hw_a):
    body = hwlib.vgw_body(vpc_id="vpc\u0000" + "a" * 10)
    r = hw_a.raw("POST", "/v5/{project_id}/vpn-gateways", body=body)
    hwlib.assert_raw_error(r, 400, "VPN.0001")
    body = hwlib.vgw_body(vpc_id="a" * 900)
    r = hw_a.raw("POST", "/v5/{project_id}/vpn-gateways", body=body)
    hwlib.assert_raw_error(r, 400, "VPN.0001")


@pytest.mark.parametrize("query", [
    [("offset", "18446744073709551615")],
    [("offset", "9223372036854775808")],
    [("limit", "18446744073709551616")],
    [("marker", "\u00ff" * 100)],
])
def test_huawei_numbers_at_the_edges_are_not_5xx(hw_a, query):
    for path in ("/v5/{project_id}/customer-gateways", "/v5/{project_id}/vpn-gateways",
                 "/v5/{project_id}/vpn-connection"):
        r = hw_a.raw("GET", path, query=query)
        assert r.status < 500, (path, query, r.status, r.text[:300])
