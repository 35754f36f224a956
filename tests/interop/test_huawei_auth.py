"""Huawei dialect authentication: SDK-HMAC-SHA256 failures (401 APIGW.0301), replay, and IAM token sign-in used end to
end over raw HTTP (the SDK has no token credential). Digest A 0.3, 0.6, IAM-1, IAM-2.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest

import hwlib
from hwlib import assert_raw_error, uname

APIGW = "Incorrect IAM authentication information: "


@pytest.fixture(scope="module")
def iam(server):
    t = server.create_tenant(uname("hwiam"))
    for user, pw in (("alice", "Alice-Pass1"), ("bob", "Bob-Pass22")):
        subprocess.run([str(server.bin), "user", "create", "--tenant", t["name"], "--name", user, "--password", pw,
                        "--data-dir", str(server.data_dir), "--config", str(server.config_path)],
                       check=True, capture_output=True)
    return t, hwlib.Hw(t, server.port)


def test_bad_signature(hw_a):
    def tamper(h):
        h["Authorization"] = re.sub(r"Signature=[0-9a-f]{4}", "Signature=0000", h["Authorization"])
    r = hw_a.raw("GET", "/v5/{project_id}/vpn-gateways", resign=tamper)
    assert_raw_error(r, 401, "APIGW.0301", APIGW + "verify aksk signature fail")


def test_wrong_secret_through_sdk(server, hw_tenant_a):
    t = dict(hw_tenant_a, access_key_secret="x" * 30)
    e = hwlib.Hw(t, server.port).expect("list_vgws", "APIGW.0301", 401)
    assert e.error_msg.startswith(APIGW)


def test_unknown_access_key(hw_a):
    r = hw_a.raw("GET", "/v5/{project_id}/vpn-gateways", ak="UNKNOWNAK0000000000000", sk="s" * 30)
    assert_raw_error(r, 401, "APIGW.0301", "UNKNOWNAK0000000000000")


def test_no_credentials(hw_a):
    r = hw_a.raw("GET", "/v5/{project_id}/vpn-gateways", sign=False)
    assert_raw_error(r, 401, "APIGW.0301", APIGW)


def test_stale_sdk_date(hw_a):
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ")
    r = hw_a.raw("GET", "/v5/{project_id}/vpn-gateways", date=old)
    assert_raw_error(r, 401, "APIGW.0301", APIGW)


@pytest.mark.parametrize("token", ["garbage", "MIIxyz" + "A" * 200])
def test_garbage_token(hw_a, token):
    r = hwlib.token_call(hw_a.port, token, "GET", f"/v5/{hw_a.project_id}/vpn-gateways")
    assert_raw_error(r, 401, "APIGW.0301", APIGW + "decrypt token fail")


def test_replayed_signed_post_is_refused(hw_fresh):
    hw = hw_fresh()
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    body = hwlib.cgw_body(ip=hwlib.fresh_peer_ip())
    first = hw.raw("POST", "/v5/{project_id}/customer-gateways", body=body, date=date)
    assert first.status == 201, first.text
    again = hw.raw("POST", "/v5/{project_id}/customer-gateways", body=body, date=date)
    assert_raw_error(again, 401, "APIGW.0301", "replayed")
    assert hw.call("list_cgws").json["total_count"] == 1, "the replay created nothing"
    # reads may repeat
    d2 = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for _ in range(2):
        assert hw.raw("GET", "/v5/{project_id}/customer-gateways", date=d2).status == 200


def test_error_request_id_header_matches_body(hw_a):
    r = hw_a.raw("GET", "/v5/{project_id}/vpn-gateways/" + hwlib.uid())
    assert_raw_error(r, 404, "VPN.0004", "resource not found")
    assert r.header("X-Request-Id") == r.json["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", r.json["request_id"])


def test_unknown_path_and_method(hw_a):
    r = hw_a.raw("GET", "/v5/{project_id}/no-such-thing")
    assert r.status == 404 and r.json["error_code"] == "APIGW.0101", r.text
    r = hw_a.raw("PATCH", "/v5/{project_id}/vpn-gateways")
    assert r.status in (404, 405) and r.json["error_code"] == "APIGW.0101", r.text


# ------------------------------------------------------------------------------------------------------------------
# IAM
# ------------------------------------------------------------------------------------------------------------------
def test_token_sign_in_and_use(iam, server):
    t, hw = iam
    r = hwlib.get_token(server.port, "alice", "Alice-Pass1", t["name"], hwlib.REGION)
    assert r.status == 201, r.text
    hwlib.CALLED.add("keystone_create_user_token_by_password")
    token = r.header("X-Subject-Token")
    assert token and len(token) > 20
    tok = r.json["token"]
    assert tok["methods"] == ["password"]
    assert tok["project"]["id"] == t["projects"][hwlib.REGION] and tok["project"]["name"] == hwlib.REGION
    assert tok["project"]["domain"]["name"] == t["name"] and tok["user"]["name"] == "alice"
    exp = dt.datetime.fromisoformat(tok["expires_at"].replace("Z", "+00:00"))
    iss = dt.datetime.fromisoformat(tok["issued_at"].replace("Z", "+00:00"))
    assert dt.timedelta(hours=23) < exp - iss <= dt.timedelta(hours=24, minutes=1)
    project = t["projects"][hwlib.REGION]
    lst = hwlib.token_call(server.port, token, "GET", f"/v5/{project}/vpn-gateways")
    assert lst.status == 200 and lst.json["vpn_gateways"] == []
    made = hwlib.token_call(server.port, token, "POST", f"/v5/{project}/customer-gateways",
                            hwlib.cgw_body(ip="198.51.100.77", name="by-token"))
    assert made.status == 201, made.text
    cid = made.json["customer_gateway"]["id"]
    assert hw.call("show_cgw", customer_gateway_id=cid).json["customer_gateway"]["name"] == "by-token", \
        "what the token created is the tenant's"
    # project-scoped by id works too
    by_id = hwlib.http("POST", server.port, "/v3/auth/tokens", [], {"Content-Type": "application/json"},
                       __import__("json").dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                           "name": "bob", "password": "Bob-Pass22", "domain": {"name": t["name"]}}}},
                           "scope": {"project": {"id": t["projects"][hwlib.OTHER]}}}}).encode())
    assert by_id.status == 201 and by_id.json["token"]["project"]["name"] == hwlib.OTHER


def test_token_failures(iam, server):
    t, _hw = iam
    wrong = hwlib.get_token(server.port, "alice", "Wrong-Pass1", t["name"])
    assert wrong.status == 401 and wrong.json["error_code"] == "IAM.0004" and not wrong.header("X-Subject-Token")
    nouser = hwlib.get_token(server.port, "carol", "Alice-Pass1", t["name"])
    assert nouser.status == 401 and nouser.json["error_code"] == "IAM.0004"
    body = hwlib.token_body("alice", "Alice-Pass1", t["name"], domain_scope=True)
    dom = hwlib.http("POST", server.port, "/v3/auth/tokens", [], {"Content-Type": "application/json"},
                     __import__("json").dumps(body).encode())
    assert dom.status == 400 and dom.json["error_code"] == "IAM.0011" and "project" in dom.json["error_msg"], dom.text
    badproj = hwlib.get_token(server.port, "alice", "Alice-Pass1", t["name"], "cn-hangzhou")
    assert badproj.status in (400, 401) and not badproj.header("X-Subject-Token"), badproj.text


def test_list_projects(iam, server):
    t, hw = iam
    r = hw.raw("GET", "/v3/projects", query=[("name", hwlib.REGION)], project_header=False)
    assert r.status == 200, r.text
    hwlib.CALLED.add("keystone_list_projects")
    assert [(p["id"], p["name"]) for p in r.json["projects"]] == [(t["projects"][hwlib.REGION], hwlib.REGION)]
    p = r.json["projects"][0]
    assert p["enabled"] is True and p["is_domain"] is False and p["domain_id"] == t["tenant_id"]
    every = hw.raw("GET", "/v3/projects", project_header=False).json["projects"]
    assert sorted(x["name"] for x in every) == sorted(hwlib.REGIONS)
    none = hw.raw("GET", "/v3/projects", query=[("name", "cn-hangzhou")], project_header=False).json["projects"]
    assert none == [], "Alibaba regions are not Huawei projects"
    token = hwlib.get_token(server.port, "alice", "Alice-Pass1", t["name"], hwlib.OTHER).header("X-Subject-Token")
    via_token = hwlib.token_call(server.port, token, "GET", "/v3/projects")
    assert via_token.status == 200
    assert [x["name"] for x in via_token.json["projects"]] == [hwlib.OTHER], "a token sees its own project"
