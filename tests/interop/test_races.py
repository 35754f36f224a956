"""Concurrency on shared limits: requests released together (a barrier, one client per thread) racing for the last
quota slots, for one unique name or address, for one ClientToken, and for the last public addresses of a small
`eip_pool`. Whatever order the server takes them in, the outcome is fixed: exactly the quota succeeds and the rest get
the documented quota code; exactly one of a unique field succeeds and the rest get the documented duplicate code;
every request of one token gets the same answer and one resource exists; no address is handed out twice and a full
pool answers the documented exhaustion code. (test_lifecycle_quota.py and test_idempotency_dryrun.py prove the same
rules one request at a time.)

Servers of this module's own: `limits` (small quotas, roomy pool; a fresh tenant per test) and, for the address race
alone, `pool` (6 public addresses, roomy quotas); the store follows $OPENVGW_TEST_STORE_URL like every OwnServer.
"""
from __future__ import annotations

import ipaddress
import json
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from Tea.exceptions import TeaException

import hwlib
import ownserver
import vgwlib
from vgwlib import unique_ip, unique_name, unique_token, unique_vpc, wrapped_list

RACERS = 10
GW_QUOTA, CGW_QUOTA = 3, 5
POOL = "198.20.0.0/29"
POOL_HOSTS = [str(h) for h in ipaddress.ip_network(POOL).hosts()]


def config(quotas: Dict[str, int], pool: str) -> str:
    return f"""
[regions]
aliyun = ["cn-hangzhou", "cn-shanghai"]
huawei = {json.dumps(hwlib.REGIONS)}

[quotas]
{chr(10).join(f"{k} = {v}" for k, v in quotas.items())}

[rate_limit]                      # bursts are the point here; throttling has its own tests
enabled = false

[dataplane]
driver = "simulated"
eip_pool = "{pool}"

[dataplane.simulated]
provision_delay_ms = 200
apply_delay_ms = 50
"""


@pytest.fixture(scope="module")
def limits(tmp_path_factory):
    srv = ownserver.started(tmp_path_factory, "openvgw-limits", config(
        {"vpn_gateways_per_region": GW_QUOTA, "customer_gateways_per_region": CGW_QUOTA}, "198.20.1.0/24"))
    yield srv
    ownserver.finish(srv)


@pytest.fixture
def pool(tmp_path_factory):
    srv = ownserver.started(tmp_path_factory, "openvgw-pool", config(
        {"vpn_gateways_per_region": 50, "customer_gateways_per_region": 50}, POOL))
    yield srv
    ownserver.finish(srv)


# --------------------------------------------------------------------------------------------------------------------
# racing
# --------------------------------------------------------------------------------------------------------------------
Outcome = Tuple[str, Any, Optional[int]]   # ("ok", body, status) | ("err", code, status)


def race(n: int, setup: Callable[[int], Any], fire: Callable[[Any, int], Outcome]) -> List[Outcome]:
    """`setup(i)` builds thread i's client before the start; all `fire(client, i)` are released together."""
    clients = [setup(i) for i in range(n)]
    barrier = threading.Barrier(n)
    out: List[Optional[Outcome]] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fire(clients[i], i)
        except BaseException as e:  # a transport error or a bug in the test: reported below, never swallowed
            out[i] = ("exception", repr(e), None)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(o is not None for o in out), f"racers that never finished: {out}"
    broken = [o for o in out if o[0] == "exception"]
    assert not broken, f"racers without an answer: {broken}"
    return out


def ali_client(srv, tenant, region: str = vgwlib.DEFAULT_REGION):
    def setup(_i: int) -> vgwlib.Api:
        return vgwlib.Api(vgwlib.make_tea_client(tenant["access_key_id"], tenant["access_key_secret"], srv.port,
                                                 "v3"), "v3", tenant, srv.port, region)
    return setup


def ali_fire(action: str, params: Callable[[int], Dict[str, Any]]):
    def fire(api: vgwlib.Api, i: int) -> Outcome:
        try:
            return ("ok", api.call(action, params(i)), 200)
        except TeaException as e:
            if e.code is None:
                raise
            return ("err", e.code, vgwlib.tea_status(e))
    return fire


def hw_client(srv, tenant):
    hwlib.openapi(srv.port)

    def setup(_i: int) -> hwlib.Hw:
        return hwlib.Hw(tenant, srv.port)
    return setup


def hw_fire_sdk(op: Callable[[int], str], body: Callable[[int], Any], **params):
    """Through the SDK client; the answer's JSON or the error's code."""
    def fire(hw: hwlib.Hw, i: int) -> Outcome:
        name = op(i)
        try:
            resp = getattr(hw.client, name)(hw.request(name, body(i), **params))
        except sdk_exc.ServiceResponseException as e:
            return ("err", e.error_code, e.status_code)
        data = json.loads(resp.raw_content)
        hwlib.check_against_openapi(hw.port, name, resp.status_code, data)
        return ("ok", data, resp.status_code)
    return fire


def split(out: List[Outcome]) -> Tuple[List[Any], List[Tuple[str, int]]]:
    oks = [o[1] for o in out if o[0] == "ok"]
    errs = [(o[1], o[2]) for o in out if o[0] == "err"]
    return oks, errs


def ali_ids(api: vgwlib.Api, action: str, outer: str, inner: str, key: str, **params) -> List[str]:
    body = api.call(action, {"PageSize": 50, **params})
    items = wrapped_list(body, outer, inner, action)
    assert body["TotalCount"] == len(items), body
    return sorted(i[key] for i in items)


# --------------------------------------------------------------------------------------------------------------------
# the last quota slots
# --------------------------------------------------------------------------------------------------------------------
def test_last_customer_gateway_slots_alibaba(limits):
    tenant = limits.create_tenant(unique_name("rq"))
    setup = ali_client(limits, tenant)
    api = setup(0)
    vgwlib.create_cgw(api)        # the race is for the remaining CGW_QUOTA - 1 slots
    out = race(RACERS, setup, ali_fire("CreateCustomerGateway", lambda i: {"IpAddress": unique_ip(),
                                                                           "Name": f"racer-{i}"}))
    oks, errs = split(out)
    assert len(oks) == CGW_QUOTA - 1, f"{len(oks)} creates succeeded for {CGW_QUOTA - 1} free slots: {out}"
    assert errs == [("Resource.QuotaFull", 400)] * (RACERS - CGW_QUOTA + 1), errs
    stored = ali_ids(api, "DescribeCustomerGateways", "CustomerGateways", "CustomerGateway", "CustomerGatewayId")
    assert len(stored) == CGW_QUOTA and {o["CustomerGatewayId"] for o in oks} <= set(stored), stored


def test_last_gateway_slots_alibaba(limits):
    tenant = limits.create_tenant(unique_name("rq"))
    setup = ali_client(limits, tenant)
    out = race(RACERS, setup, ali_fire("CreateVpnGateway", lambda i: {"VpcId": unique_vpc(), "Bandwidth": 5,
                                                                      "Name": f"racer-{i}"}))
    oks, errs = split(out)
    assert len(oks) == GW_QUOTA, f"{len(oks)} creates succeeded for a quota of {GW_QUOTA}: {out}"
    assert errs == [("Resource.QuotaFull", 400)] * (RACERS - GW_QUOTA), errs
    stored = ali_ids(setup(0), "DescribeVpnGateways", "VpnGateways", "VpnGateway", "VpnGatewayId")
    assert stored == sorted(o["VpnGatewayId"] for o in oks)


def test_last_gateway_slots_huawei(limits):
    """Site-to-cloud and client-to-site gateways share the vpn_gateway quota (behaviour doc, Quotas)."""
    tenant = limits.create_tenant(unique_name("rq"))
    setup = hw_client(limits, tenant)
    ops = ["create_vgw", "create_p2c_vgw"]
    out = race(RACERS, setup, hw_fire_sdk(lambda i: ops[i % 2],
                                          lambda i: hwlib.vgw_body() if i % 2 == 0 else hwlib.p2c_body()))
    oks, errs = split(out)
    assert len(oks) == GW_QUOTA, f"{len(oks)} creates succeeded for a quota of {GW_QUOTA}: {out}"
    assert errs == [("VPN.0513", 400)] * (RACERS - GW_QUOTA), errs
    hw = setup(0)
    stored = sorted([g["id"] for g in hw.call("list_vgws").json["vpn_gateways"]]
                    + [g["id"] for g in hw.call("list_p2c_vgws").json["p2c_vpn_gateways"]])
    made = sorted((o.get("vpn_gateway") or o.get("p2c_vpn_gateway"))["id"] for o in oks)
    assert stored == made


# --------------------------------------------------------------------------------------------------------------------
# one unique field
# --------------------------------------------------------------------------------------------------------------------
def test_one_customer_gateway_address_alibaba(limits):
    """A customer gateway's IpAddress is unique in its tenant and region (InvalidIpAddress.AlreadyExist)."""
    tenant = limits.create_tenant(unique_name("ru"))
    setup = ali_client(limits, tenant)
    ip = unique_ip()
    out = race(RACERS, setup, ali_fire("CreateCustomerGateway", lambda i: {"IpAddress": ip, "Name": f"racer-{i}"}))
    oks, errs = split(out)
    assert len(oks) == 1, f"{len(oks)} customer gateways created with one address: {out}"
    assert errs == [("InvalidIpAddress.AlreadyExist", 400)] * (RACERS - 1), errs
    stored = ali_ids(setup(0), "DescribeCustomerGateways", "CustomerGateways", "CustomerGateway", "CustomerGatewayId")
    assert stored == [oks[0]["CustomerGatewayId"]]


@pytest.fixture(scope="module")
def password_server(limits):
    hw = hwlib.Hw(limits.create_tenant(unique_name("ru")), limits.port)
    gw = hwlib.create_p2c(hw)
    return hw, hwlib.create_server(hw, gw["id"])["id"]


@pytest.mark.parametrize("op, wrapper, listing, code", [
    ("create_vpn_user", "user", ("list_vpn_users", "users"), "VPN.1302"),
    ("create_vpn_user_group", "user_group", ("list_vpn_user_groups", "user_groups"), "VPN.1300"),
])
def test_one_name_huawei(limits, password_server, op, wrapper, listing, code):
    """User names and user group names are unique on their server (VPN.1302, VPN.1300)."""
    hw, sid = password_server
    name = f"racer{uuid.uuid4().hex[:8]}"

    def body(i: int) -> Dict[str, Any]:
        if op == "create_vpn_user":
            return {"user": {"name": name, "password": hwlib.USER_PW, "description": f"racer {i}"}}
        return {"user_group": {"name": name, "description": f"racer {i}"}}

    out = race(RACERS, hw_client(limits, hw.tenant), hw_fire_sdk(lambda i: op, body, vpn_server_id=sid))
    oks, errs = split(out)
    assert len(oks) == 1, f"{len(oks)} {wrapper}s created with one name: {out}"
    assert errs == [(code, 400)] * (RACERS - 1), errs
    listed = [x for x in hw.call(listing[0], vpn_server_id=sid).json[listing[1]] if x["name"] == name]
    assert [x["id"] for x in listed] == [oks[0][wrapper]["id"]]


# --------------------------------------------------------------------------------------------------------------------
# one ClientToken
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action, key, params", [
    ("CreateVpnGateway", "VpnGatewayId", lambda: {"VpcId": unique_vpc(), "Bandwidth": 5, "Name": unique_name("tok")}),
    ("CreateCustomerGateway", "CustomerGatewayId", lambda: {"IpAddress": unique_ip(), "Name": unique_name("tok")}),
])
def test_one_client_token_alibaba(limits, action, key, params):
    tenant = limits.create_tenant(unique_name("rt"))
    setup = ali_client(limits, tenant)
    p = {**params(), "ClientToken": unique_token()}
    out = race(RACERS, setup, ali_fire(action, lambda i: p))
    oks, errs = split(out)
    assert not errs and len(oks) == RACERS, out
    answers = [{k: v for k, v in o.items() if k != "RequestId"} for o in oks]
    assert all(a == answers[0] for a in answers), f"answers to one token differ: {answers}"
    if action == "CreateVpnGateway":
        stored = ali_ids(setup(0), "DescribeVpnGateways", "VpnGateways", "VpnGateway", key)
    else:
        stored = ali_ids(setup(0), "DescribeCustomerGateways", "CustomerGateways", "CustomerGateway", key)
    assert stored == [answers[0][key]]


def test_one_client_token_huawei(limits):
    """X-Client-Token on a client-to-site create. The SDK's signature has second resolution and a repeated signed
    change is refused as a replay (behaviour doc), so each racer's request carries one more signed header of its own:
    the same token and body, ten different signatures."""
    hw = hwlib.Hw(limits.create_tenant(unique_name("rt")), limits.port)
    token, body = unique_token(), hwlib.p2c_body()

    def fire(_hw, i: int) -> Outcome:
        r = hw.raw("POST", "/v5/{project_id}/p2c-vpn-gateways", body,
                   headers={"X-Client-Token": token, "X-Racer": str(i)})
        if r.status == 201:
            return ("ok", r.json, r.status)
        return ("err", (r.json or {}).get("error_code", r.text[:200]), r.status)

    out = race(RACERS, lambda i: None, fire)
    oks, errs = split(out)
    assert not errs and len(oks) == RACERS, out
    answers = [{k: v for k, v in o.items() if k != "request_id"} for o in oks]
    assert all(a == answers[0] for a in answers), f"answers to one token differ: {answers}"
    stored = [g["id"] for g in hw.call("list_p2c_vgws").json["p2c_vpn_gateways"]]
    assert stored == [answers[0]["p2c_vpn_gateway"]["id"]]


# --------------------------------------------------------------------------------------------------------------------
# the last public addresses
# --------------------------------------------------------------------------------------------------------------------
def test_last_public_addresses(pool):
    """Alibaba gateways (one address), Huawei site-to-cloud (two) and client-to-site gateways (one) racing for a pool
    of six: no address twice, every refusal the documented exhaustion code, and the pool ends full (some racer
    needing one address was refused, which only happens when none was left). A deleted gateway's address is
    handed out again."""
    ali_t, hw_t = pool.create_tenant(unique_name("rp")), pool.create_tenant(unique_name("rp"))
    ali_setup, hw_setup = ali_client(pool, ali_t), hw_client(pool, hw_t)
    kinds = ["ali"] * 8 + ["s2c", "s2c", "p2c", "p2c"]
    ali = ali_fire("CreateVpnGateway", lambda i: {"VpcId": unique_vpc(), "Bandwidth": 5, "Name": f"racer-{i}"})
    hwf = hw_fire_sdk(lambda i: "create_vgw" if kinds[i] == "s2c" else "create_p2c_vgw",
                      lambda i: hwlib.vgw_body() if kinds[i] == "s2c" else hwlib.p2c_body())
    out = race(len(kinds), lambda i: ali_setup(i) if kinds[i] == "ali" else hw_setup(i),
               lambda c, i: ali(c, i) if kinds[i] == "ali" else hwf(c, i))
    refused = {"ali": ("OperationFailed.NoAvailablePublicIp", 400), "s2c": ("VPN.0560", 400),
               "p2c": ("VPN.0560", 400)}
    wrong = [(kinds[i], o) for i, o in enumerate(out) if o[0] == "err" and (o[1], o[2]) != refused[kinds[i]]]
    assert not wrong, f"refusals other than pool exhaustion: {wrong}"

    ali_api, hw = ali_setup(0), hw_setup(0)
    held: Dict[str, List[str]] = {}   # gateway id -> its addresses, read back from the store
    for i, o in enumerate(out):
        if o[0] != "ok":
            continue
        if kinds[i] == "ali":
            gid = o[1]["VpnGatewayId"]
            held[gid] = [ali_api.call("DescribeVpnGateway", {"VpnGatewayId": gid})["InternetIp"]]
        elif kinds[i] == "s2c":
            gid = o[1]["vpn_gateway"]["id"]
            g = hw.call("show_vgw", vgw_id=gid).json["vpn_gateway"]
            held[gid] = [g["eip1"]["ip_address"], g["eip2"]["ip_address"]]
        else:
            gid = o[1]["p2c_vpn_gateway"]["id"]
            held[gid] = [hw.call("show_p2c_vgw", p2c_vgw_id=gid).json["p2c_vpn_gateway"]["eip"]["ip_address"]]
    addresses = [a for v in held.values() for a in v]
    assert len(addresses) == len(set(addresses)), f"an address handed out twice: {held}"
    assert set(addresses) <= set(POOL_HOSTS), f"addresses outside {POOL}: {held}"
    assert sorted(addresses) == sorted(POOL_HOSTS), \
        f"a one-address create was refused while addresses were free: {held}, outcomes {out}"

    # Deleting a gateway returns its addresses to the pool; the next create gets one of them.
    kind_of = {o[1].get("VpnGatewayId") or (o[1].get("vpn_gateway") or o[1].get("p2c_vpn_gateway"))["id"]: kinds[i]
               for i, o in enumerate(out) if o[0] == "ok"}
    victim = sorted(held, key=lambda g: kind_of[g] != "ali")[0]
    if kind_of[victim] == "ali":
        vgwlib.wait_gateway_status(ali_api, victim, "active")
        ali_api.call("DeleteVpnGateway", {"VpnGatewayId": victim})
        vgwlib.wait_gateway_gone(ali_api, victim, timeout=30)
    elif kind_of[victim] == "s2c":
        hwlib.wait_vgw(hw, victim)
        hw.call("delete_vgw", vgw_id=victim)
        hwlib.wait_gone(lambda: hw.call("show_vgw", vgw_id=victim), f"gateway {victim} deleted")
    else:
        hwlib.wait_p2c(hw, victim)
        hw.call("delete_p2c_vgw", p2c_vgw_id=victim)
        hwlib.wait_gone(lambda: hw.call("show_p2c_vgw", p2c_vgw_id=victim), f"gateway {victim} deleted")
    again, _ = vgwlib.create_gateway(ali_api, wait=False)
    ip = ali_api.call("DescribeVpnGateway", {"VpnGatewayId": again})["InternetIp"]
    assert ip in held[victim], f"the new gateway got {ip}, the deleted one held {held[victim]}"
    if len(held[victim]) == 1:
        ali_api.error("CreateVpnGateway", {"VpcId": unique_vpc(), "Bandwidth": 5},
                      "OperationFailed.NoAvailablePublicIp", 400)
