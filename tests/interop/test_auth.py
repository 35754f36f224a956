"""Authentication: signatures, unknown keys, replay and freshness (aliyun-wire.md section 1)."""
from __future__ import annotations

import json
import time
import uuid
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import vgwlib
from vgwlib import Api, make_tea_client

# Captured from the vendors' SDKs; the repository keeps its own copy.
VECTORS = Path(__file__).resolve().parents[2] / "crates" / "auth" / "tests" / "vectors" / "aliyun-signature-vectors.json"


def _vectors():
    if not VECTORS.exists():
        return []
    return json.loads(VECTORS.read_text())["vectors"]


# --------------------------------------------------------------------------------------
# the hand signers used below must reproduce the captured SDK signatures, or the raw
# tests would report server bugs that are really test bugs
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("vec", [v for v in _vectors() if v.get("expect_valid")], ids=lambda v: v["name"])
def test_hand_signer_reproduces_sdk_vectors(vec):
    req = vec["request"]
    query = dict(urllib.parse.parse_qsl(req["raw_query"], keep_blank_values=True))
    headers = {k.lower(): v for k, v in req["headers"]}
    if vec["scheme"].startswith("v3"):
        auth = headers.pop("authorization")
        signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        body = (req.get("body") or "").encode()
        out = vgwlib.acs3_sign(vec["access_key_id"], vec["access_key_secret"], req["method"], query,
                               headers, body, signed=signed)
        assert out["Authorization"].endswith("Signature=" + vec["expected_signature"])
    else:
        params = dict(query)
        if req.get("body"):
            params.update(dict(urllib.parse.parse_qsl(req["body"], keep_blank_values=True)))
        sig = vgwlib.v1_signature(vec["access_key_secret"], req["method"], params)
        assert sig == vec["expected_signature"]


# --------------------------------------------------------------------------------------
# through the SDKs
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["v3", "v2"])
def test_wrong_secret_is_signature_mismatch(server, tenant_a, mode):
    api = Api(make_tea_client(tenant_a["access_key_id"], tenant_a["access_key_secret"] + "x", server.port, mode),
              mode, tenant_a, server.port)
    e = api.error("DescribeVpnGateways", {}, "SignatureDoesNotMatch", 400)
    # the legacy SDK does message.split(':')[1]; a message without ':' crashes it (aliyun-wire.md §3)
    msg = (e.data or {}).get("Message", "")
    assert ":" in msg, f"SignatureDoesNotMatch message must contain ':' (legacy SDK parses it): {msg!r}"


@pytest.mark.parametrize("mode", ["v3", "v2"])
def test_unknown_access_key(server, mode):
    api = Api(make_tea_client("LTAIunknownkey0000", "whatever", server.port, mode), mode, {}, server.port)
    e = api.error("DescribeVpnGateways", {}, "InvalidAccessKeyId.NotFound")
    assert 400 <= vgwlib.tea_status(e) < 500


def test_keys_created_and_deleted_by_another_process_take_effect_within_a_second(server):
    """Access keys are cached for under a second (issue: performance); rotation through `openvgw tenant` in another
    process must still reach the running server within that second."""
    t = server.create_tenant(f"rotate-{uuid.uuid4().hex[:8]}")
    old = server.api(t)
    old.call("DescribeVpnGateways", {})  # the old key is now cached
    new_key = server.cli("tenant", "create-key", "--tenant", t["tenant_id"])
    assert new_key["tenant_id"] == t["tenant_id"] and new_key["access_key_id"] != t["access_key_id"]
    new = server.api({**t, **new_key})
    new.call("DescribeVpnGateways", {})
    assert server.cli("tenant", "delete-key", "--access-key-id", t["access_key_id"]) == {"deleted": t["access_key_id"]}
    time.sleep(1.0)  # the cache's bound; slower machines only wait longer than needed
    old.error("DescribeVpnGateways", {}, "InvalidAccessKeyId.NotFound")
    new.call("DescribeVpnGateways", {})
    # Deleting it again is an operator error, not a silent success.
    r = server.run_cli("tenant", "delete-key", "--access-key-id", t["access_key_id"])
    assert r.returncode != 0 and "no access key" in r.stderr


def test_correct_secret_works_both_modes(tea):
    body = tea.call("DescribeVpnGateways", {})
    vgwlib.wrapped_list(body, "VpnGateways", "VpnGateway", "DescribeVpnGateways")


# --------------------------------------------------------------------------------------
# hand-signed raw requests
# --------------------------------------------------------------------------------------
def test_acs3_hand_signed_request_accepted_and_error_body_shape(server, tenant_a):
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    ok = vgwlib.acs3_call(server.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"})
    assert ok.status == 200, ok
    body = ok.json()  # no Format in a V3 request -> JSON
    vgwlib.wrapped_list(body, "VpnGateways", "VpnGateway", "raw DescribeVpnGateways")
    assert isinstance(body.get("RequestId"), str) and body["RequestId"]

    err = vgwlib.acs3_call(server.port, ak, sk, "DescribeVpnGateway",
                           {"RegionId": "cn-hangzhou", "VpnGatewayId": "vpn-doesnotexist000"})
    assert err.status == 404, err
    e = err.json()
    for key in ("RequestId", "HostId", "Code", "Message", "Recommend"):
        assert key in e and isinstance(e[key], str), f"error body lacks {key}: {e}"
    assert e["Code"] == "InvalidVpnGatewayInstanceId.NotFound"


def test_acs3_replayed_nonce_rejected(server, tenant_a):
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    target, headers = vgwlib.acs3_prepare(server.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"})
    first = vgwlib.http_request(server.port, "POST", target, headers)
    assert first.status == 200, first
    second = vgwlib.http_request(server.port, "POST", target, headers)
    assert 400 <= second.status < 500, second
    assert second.json()["Code"] == "SignatureNonceUsed", second


def test_v1_replayed_nonce_rejected(server, tenant_a):
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    target = vgwlib.v1_prepare(ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, method="GET")
    first = vgwlib.http_request(server.port, "GET", target)
    assert first.status == 200, first
    second = vgwlib.http_request(server.port, "GET", target)
    assert 400 <= second.status < 500, second
    assert second.json()["Code"] == "SignatureNonceUsed", second


@pytest.mark.parametrize("offset", [-20 * 60, 20 * 60], ids=["20min-old", "20min-ahead"])
def test_acs3_stale_timestamp_rejected(server, tenant_a, offset):
    r = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                         "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, date=vgwlib.utc_stamp(offset))
    assert 400 <= r.status < 500, r
    assert r.json()["Code"] == "InvalidTimeStamp.Expired", r


def test_v1_stale_timestamp_rejected(server, tenant_a):
    r = vgwlib.v1_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                       "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, timestamp=vgwlib.utc_stamp(-20 * 60))
    assert 400 <= r.status < 500, r
    assert r.json()["Code"] == "InvalidTimeStamp.Expired", r


def test_timestamp_within_window_accepted(server, tenant_a):
    r = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                         "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, date=vgwlib.utc_stamp(-5 * 60))
    assert r.status == 200, r


def test_acs3_tampered_query_rejected(server, tenant_a):
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    target, headers = vgwlib.acs3_prepare(server.port, ak, sk, "DescribeVpnGateways",
                                          {"RegionId": "cn-hangzhou", "PageSize": "10"})
    tampered = target.replace("PageSize=10", "PageSize=20")
    assert tampered != target
    r = vgwlib.http_request(server.port, "POST", tampered, headers)
    assert r.status == 400, r
    assert r.json()["Code"] == "SignatureDoesNotMatch", r


def test_acs3_payload_hash_mismatch_rejected(server, tenant_a):
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    target, headers = vgwlib.acs3_prepare(server.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"})
    # signed for an empty body, but a body is sent: x-acs-content-sha256 no longer matches
    r = vgwlib.http_request(server.port, "POST", target,
                            {**headers, "content-type": "application/x-www-form-urlencoded"}, body=b"PageSize=20")
    assert 400 <= r.status < 500, r


def test_unknown_action(server, tenant_a):
    r = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], tenant_a["access_key_secret"],
                         "DescribeUnicorns", {"RegionId": "cn-hangzhou"})
    assert r.status == 404, r
    assert r.json()["Code"] == "InvalidAction.NotFound", r


def test_seed_style_get_with_hmac_sha1_json_and_xml(server, tenant_a):
    """The seed documents HTTP GET + HMAC-SHA1 + Format=JSON|XML (JSON default)."""
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    r = vgwlib.v1_call(server.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, fmt=None)
    assert r.status == 200, r
    vgwlib.wrapped_list(r.json(), "VpnGateways", "VpnGateway", "GET DescribeVpnGateways")

    x = vgwlib.v1_call(server.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, fmt="XML")
    assert x.status == 200, x
    root = ET.fromstring(x.body)
    assert root.tag == "DescribeVpnGatewaysResponse", x.body[:200]
    assert root.findtext("RequestId"), x.body[:200]

    bad = vgwlib.v1_call(server.port, ak, sk, "DescribeVpnGateway",
                         {"RegionId": "cn-hangzhou", "VpnGatewayId": "vpn-doesnotexist000"}, fmt="XML")
    assert bad.status == 404, bad
    err = ET.fromstring(bad.body)
    assert err.tag == "Error", bad.body[:200]
    assert err.findtext("Code") == "InvalidVpnGatewayInstanceId.NotFound", bad.body[:300]


def test_acs3_node_style_query_encoding(server, tenant_a):
    """Node's encodeURIComponent leaves * ' ( ) ! literal and writes %20 for space; the server must decode
    the query and re-encode it for the signature instead of signing the raw text (aliyun-wire.md §1)."""
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    # A tag filter carries the characters (ids are short words and refuse them).
    params = {"RegionId": "cn-hangzhou", "Tag.1.Key": "it x*'()!~"}
    query = "&".join(f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe=chr(39) + '-_.!~*()')}"
                     for k, v in params.items())
    assert "%20" in query and "*" in query and "'" in query
    headers = {"host": f"127.0.0.1:{server.port}", "x-acs-action": "DescribeVpnGateways",
               "x-acs-version": vgwlib.API_VERSION, "x-acs-date": vgwlib.utc_stamp(),
               "x-acs-signature-nonce": uuid.uuid4().hex * 2, "accept": "application/json"}
    headers = vgwlib.acs3_sign(ak, sk, "POST", params, headers)
    r = vgwlib.http_request(server.port, "POST", "/?" + query, headers)
    assert r.status == 200, r
    assert r.json()["TotalCount"] == 0


def test_v1_post_with_form_body_params(server, tenant_a):
    """HMAC-SHA1: form-body parameters are API parameters and part of the signed string."""
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    q = {"Action": "DescribeVpnGateways", "Version": vgwlib.API_VERSION, "AccessKeyId": ak, "Format": "JSON",
         "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
         "Timestamp": vgwlib.utc_stamp()}
    body = {"RegionId": "cn-hangzhou", "PageSize": "3"}
    sig = vgwlib.v1_signature(sk, "POST", {**q, **body})
    target = "/?" + urllib.parse.urlencode({**q, "Signature": sig})
    r = vgwlib.http_request(server.port, "POST", target, {"content-type": "application/x-www-form-urlencoded"},
                            body=urllib.parse.urlencode(body).encode())
    assert r.status == 200, r
    assert r.json()["PageSize"] == 3


def test_overlong_nonce_is_an_invalid_parameter(server, tenant_a):
    """Nonces are remembered in the store; one longer than 128 bytes is refused rather than stored."""
    ak, sk = tenant_a["access_key_id"], tenant_a["access_key_secret"]
    ok = vgwlib.acs3_call(server.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, nonce="n" * 128)
    assert ok.status == 200, ok
    long = vgwlib.acs3_call(server.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, nonce="n" * 129)
    assert long.status == 400 and long.json()["Code"] == "InvalidParameter", long
    assert "SignatureNonce" in long.json()["Message"]
    target = vgwlib.v1_prepare(ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"}, nonce="v" * 200)
    v1 = vgwlib.http_request(server.port, "GET", target)
    assert v1.status == 400 and v1.json()["Code"] == "InvalidParameter", v1
