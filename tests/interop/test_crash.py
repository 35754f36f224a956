"""Crash safety: concurrent signed writes through the real SDKs while `openvgw serve` is killed with SIGKILL, several
rounds on one store, then what the clients saw is compared with what the store kept.

Each round restarts the server on the same data dir (and store), re-sends every write of the previous round whose
answer was lost (those carrying a ClientToken / X-Client-Token), deletes two gateways of the previous round, then
runs 8 Alibaba SDK threads (customer gateways with tags, VPN gateways; every create with its own ClientToken) and 2
Huawei SDK threads (customer gateways with tags and no token, each followed by a connection to it on one site-to-cloud
gateway; client-to-site gateways with X-Client-Token) until a random number of writes was acknowledged, and kills the
server with SIGKILL mid-load. Beside them, 2 threads send hand-signed reads (a signed read's nonce is committed while
its work runs, and the answer waits for that commit).

The assertions hold for any kill moment: every acknowledged write is there exactly once (by its unique name) with
the id the client was given; a write whose answer was lost is there once or not at all; a lost write re-sent with its
token after the restart exists exactly once; nothing else exists; every stored resource is fully describable with the
attributes and tags it was created with (no tag rows without their resource; every connection on its gateway and
customer gateway, the gateway's count equal to its connections); no public address is held twice;
every gateway reaches its active state and every deleted one disappears after the restarts (the reconciler
converges); the SQLite file passes `integrity_check`; every signed read that was answered is refused as a replay
when sent again after the restarts (its nonce was on disk before its answer).

The kill moment comes from a seed printed with the test (CRASH_SEED=<n> repeats a run). The server binary is
$OPENVGW_BIN; the store is SQLite in the data dir, or a fresh PostgreSQL database when $OPENVGW_TEST_STORE_URL is set
(see ownserver.py).
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import re
import sqlite3
import threading
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import pytest
import requests
from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from Tea.exceptions import TeaException

import hwlib
import ownserver
import vgwlib

ROUNDS = 4                      # kills; the server starts ROUNDS + 1 times
ALI_CGW_THREADS = 6
ALI_GW_THREADS = 2
MAX_PER_THREAD = 150            # bound on one thread's writes in one round (the kill normally comes far earlier)
READ_THREADS = 2
MAX_READS_PER_THREAD = 400      # bound on one thread's signed reads in one round
EIP_POOL = "198.18.64.0/20"
PROVISION_MS = 400

CONFIG = f"""
[regions]
aliyun = ["cn-hangzhou", "cn-shanghai"]
huawei = {json.dumps(hwlib.REGIONS)}

[quotas]
vpn_gateways_per_region = 1000
customer_gateways_per_region = 5000
connections_per_gateway = 5000

[rate_limit]                      # bursts are the point here; throttling has its own tests
enabled = false

[dataplane]
driver = "simulated"
eip_pool = "{EIP_POOL}"

[dataplane.simulated]
provision_delay_ms = {PROVISION_MS}
apply_delay_ms = 50
"""


# --------------------------------------------------------------------------------------------------------------------
# what the clients did
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class Attempt:
    kind: str                       # ali-cgw | ali-gw | hw-cgw | hw-p2c
    name: str
    round: int
    params: Dict[str, Any]          # Alibaba parameters or the Huawei body
    token: Optional[str]
    acked_id: Optional[str] = None  # the id in the answer the client received
    resent: bool = False


@dataclass
class Ledger:
    attempts: List[Attempt] = field(default_factory=list)
    refused: List[str] = field(default_factory=list)     # server answers that were errors (none are expected)
    broken: List[str] = field(default_factory=list)      # client-side surprises (unparseable answers, ...)
    acks: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)
    # Set when a round's kill has happened: load on the replicas that live on stops too.
    stop: threading.Event = field(default_factory=threading.Event)
    # Per round, how the store committed the load (printed with the round).
    batching: List[str] = field(default_factory=list)
    # Signed reads that were answered 200, exactly as sent: (target, headers).
    reads: List[Any] = field(default_factory=list)

    def attempt(self, a: Attempt) -> Attempt:
        with self.cond:
            self.attempts.append(a)
        return a

    def ack(self, a: Attempt, rid: str) -> None:
        with self.cond:
            a.acked_id = rid
            self.acks += 1
            self.cond.notify_all()

    def refuse(self, a: Attempt, what: str) -> None:
        with self.cond:
            self.refused.append(f"{a.kind} {a.name} (round {a.round}): {what}")
            self.cond.notify_all()

    def of(self, kind: str) -> List[Attempt]:
        return [a for a in self.attempts if a.kind == kind]


_ips = itertools.count(1)


def next_ip() -> str:
    """Unique public addresses for peers (Alibaba's and Huawei's customer gateways are in different tenants)."""
    n = next(_ips)
    return f"47.{110 + n // 65000}.{(n // 250) % 250 + 1}.{n % 250 + 1}"


def ali_tags(name: str, rnd: int) -> List[Dict[str, str]]:
    return [{"Key": "crash", "Value": "yes"}, {"Key": "name", "Value": name}, {"Key": "round", "Value": str(rnd)}]


def hw_tags(name: str, rnd: int) -> List[Dict[str, str]]:
    return [{"key": "crash", "value": "yes"}, {"key": "name", "value": name}, {"key": "round", "value": str(rnd)}]


def ali_api(srv: ownserver.OwnServer, tenant: Dict[str, Any]) -> vgwlib.Api:
    return vgwlib.Api(vgwlib.make_tea_client(tenant["access_key_id"], tenant["access_key_secret"], srv.port, "v3"),
                      "v3", tenant, srv.port)


ALI_ACTION = {"ali-cgw": ("CreateCustomerGateway", "CustomerGatewayId"),
              "ali-gw": ("CreateVpnGateway", "VpnGatewayId")}
HW_OP = {"hw-cgw": ("create_cgw", "customer_gateway"), "hw-p2c": ("create_p2c_vgw", "p2c_vpn_gateway"),
         "hw-conn": ("create_vpn_connection", "vpn_connection")}
_subnets = itertools.count(0)


def send_ali(api: vgwlib.Api, ledger: Ledger, a: Attempt) -> bool:
    """One Alibaba create; False when the server did not answer (it is gone)."""
    action, key = ALI_ACTION[a.kind]
    try:
        body = api.call(action, a.params)
    except TeaException as e:
        status = vgwlib.tea_status(e)
        if e.code is None or status is None:
            return False                       # no answer: connection refused / reset by the kill
        ledger.refuse(a, f"HTTP {status} {e.code}: {e.message}")
        return False
    except requests.exceptions.RequestException:
        return False
    except AssertionError as e:
        ledger.broken.append(f"{a.kind} {a.name}: {e}")
        return False
    except Exception as e:  # e.g. a body cut short by the kill: no answer either, but say what it was
        print(f"{a.kind} {a.name}: no complete answer: {e!r:.200}")
        return False
    ledger.ack(a, body[key])
    return True


def send_hw(hw: hwlib.Hw, ledger: Ledger, a: Attempt) -> bool:
    op, key = HW_OP[a.kind]
    kw = {"x_client_token": a.token} if a.token else {}
    try:
        resp = getattr(hw.client, op)(hw.request(op, a.params, **kw))
    except sdk_exc.ServiceResponseException as e:
        ledger.refuse(a, f"HTTP {e.status_code} {e.error_code}: {e.error_msg}")
        return False
    except (sdk_exc.SdkException, requests.exceptions.RequestException):
        return False
    except Exception as e:  # e.g. a body cut short by the kill
        print(f"{a.kind} {a.name}: no complete answer: {e!r:.200}")
        return False
    try:
        rid = json.loads(resp.raw_content)[key]["id"]
    except (ValueError, KeyError, TypeError) as e:
        ledger.broken.append(f"{a.kind} {a.name}: unreadable answer {resp.status_code} {resp.raw_content!r:.300} ({e})")
        return False
    ledger.ack(a, rid)
    return True


def read_worker(srv, tenant, ledger: Ledger) -> None:
    """Hand-signed DescribeVpnGateways until the kill; keeps every answered request to replay it after the restarts."""
    ak, sk = tenant["access_key_id"], tenant["access_key_secret"]
    for _ in range(MAX_READS_PER_THREAD):
        if ledger.stop.is_set():
            return
        target, headers = vgwlib.acs3_prepare(srv.port, ak, sk, "DescribeVpnGateways", {"RegionId": "cn-hangzhou"})
        try:
            r = vgwlib.http_request(srv.port, "POST", target, headers)
        except (OSError, http.client.HTTPException):
            return                              # the server is gone
        with ledger.cond:
            if r.status == 200:
                ledger.reads.append((target, headers))
            else:
                ledger.refused.append(f"signed read: HTTP {r.status} {r.body[:200]!r}")


def ali_worker(srv, tenant, ledger: Ledger, kind: str, tid: int, rnd: int) -> None:
    api = ali_api(srv, tenant)
    for i in range(MAX_PER_THREAD):
        if ledger.stop.is_set():
            return
        name = f"{kind}-r{rnd}-t{tid}-{i}"
        token = f"crash-{uuid.uuid4().hex}"
        if kind == "ali-cgw":
            params = {"IpAddress": next_ip(), "Name": name, "ClientToken": token, "Tags": ali_tags(name, rnd)}
        else:
            params = {"VpcId": f"vpc-crash{tid}", "Bandwidth": 5, "Name": name, "ClientToken": token}
        if not send_ali(api, ledger, ledger.attempt(Attempt(kind, name, rnd, params, token))):
            return


def hw_worker(srv, tenant, ledger: Ledger, kind: str, tid: int, rnd: int, vgw: Dict[str, Any]) -> None:
    """hw-p2c: client-to-site gateways with X-Client-Token. hw-cgw: a customer gateway (no token), then, once it is
    acknowledged, a connection to it on `vgw` (a child of the gateway: kind hw-conn)."""
    hw = hwlib.Hw(tenant, srv.port)
    for i in range(MAX_PER_THREAD):
        if ledger.stop.is_set():
            return
        name = f"{kind}-r{rnd}-t{tid}-{i}"
        if kind == "hw-p2c":
            a = Attempt(kind, name, rnd, hwlib.p2c_body(name=name), f"crash-{uuid.uuid4().hex}")
            if not send_hw(hw, ledger, ledger.attempt(a)):
                return
            continue
        cgw = Attempt(kind, name, rnd, hwlib.cgw_body(ip=next_ip(), name=name, tags=hw_tags(name, rnd)), None)
        if not send_hw(hw, ledger, ledger.attempt(cgw)):
            return
        n = next(_subnets)
        conn = {"vpn_connection": hwlib.conn_body(vgw, {"id": cgw.acked_id}, name=f"hw-conn-r{rnd}-t{tid}-{i}",
                                                  peer_subnets=[f"172.{16 + n // 256}.{n % 256}.0/24"])}
        if not send_hw(hw, ledger, ledger.attempt(Attempt("hw-conn", conn["vpn_connection"]["name"], rnd, conn,
                                                          None))):
            return


# --------------------------------------------------------------------------------------------------------------------
# what the store kept
# --------------------------------------------------------------------------------------------------------------------
def ali_all(api: vgwlib.Api, action: str, outer: str, inner: str) -> List[Dict[str, Any]]:
    items, page = [], 1
    while True:
        body = api.call(action, {"PageNumber": page, "PageSize": 50})
        got = vgwlib.wrapped_list(body, outer, inner, action)
        items += got
        if not got or len(items) >= body["TotalCount"]:
            assert len(items) == body["TotalCount"], f"{action}: {len(items)} items, TotalCount {body['TotalCount']}"
            return items
        page += 1


def ali_tagged(api: vgwlib.Api, rtype: str) -> set:
    ids, token = set(), None
    while True:
        params = {"ResourceType": rtype, "Tag": [{"Key": "crash", "Value": "yes"}]}
        if token:
            params["NextToken"] = token
        body = api.call("ListTagResources", params)
        ids |= {t["ResourceId"] for t in vgwlib.wrapped_list(body, "TagResources", "TagResource")}
        token = body.get("NextToken")
        if not token:
            return ids


def hw_all(hw: hwlib.Hw, op: str, key: str) -> List[Dict[str, Any]]:
    items, marker = [], None
    while True:
        kw = {"limit": 50, **({"marker": marker} if marker else {})}
        j = hw.call(op, **kw).json
        items += j[key]
        marker = (j.get("page_info") or {}).get("next_marker")
        if not marker or not j[key]:
            return items


def by_name(items: List[Dict[str, Any]], name_key: str) -> Dict[str, List[Dict[str, Any]]]:
    out: Dict[str, List[Dict[str, Any]]] = {}
    for it in items:
        out.setdefault(it[name_key], []).append(it)
    return out


def check_kind(ledger: Ledger, kind: str, listed: Dict[str, List[Dict[str, Any]]], id_key: str,
               problems: List[str], deleted: Optional[Dict[str, str]] = None) -> None:
    """`listed`: name -> what the store lists under it. Gateways deleted on purpose (`deleted`: id -> name) are
    checked by the caller."""
    attempts = {a.name: a for a in ledger.of(kind) if a.acked_id not in (deleted or {})}
    for name, found in listed.items():
        if name not in attempts:
            problems.append(f"{kind}: {name} exists but was never sent ({[f[id_key] for f in found]})")
        elif len(found) > 1:
            problems.append(f"{kind}: {name} exists {len(found)} times: {[f[id_key] for f in found]}")
    for name, a in attempts.items():
        found = listed.get(name, [])
        if a.acked_id is not None:
            if len(found) != 1:
                problems.append(f"{kind}: {name} was acknowledged (id {a.acked_id}, round {a.round}"
                                f"{', re-sent' if a.resent else ''}) but exists {len(found)} times")
            elif found[0][id_key] != a.acked_id:
                problems.append(f"{kind}: {name} was acknowledged as {a.acked_id} but exists as {found[0][id_key]}")


# --------------------------------------------------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------------------------------------------------
# One server, and — when the store is PostgreSQL — two replicas on one database, the load spread over both and the
# reconciler's leader killed each round (SQLite is one process: no replica variant there).
CLUSTER_SIZES = [1, 2] if os.environ.get(ownserver.STORE_ENV) else [1]


@pytest.fixture(params=CLUSTER_SIZES, ids=lambda n: "single" if n == 1 else f"{n}-replicas")
def crash_cluster(request, tmp_path_factory):
    first = ownserver.started(tmp_path_factory, "openvgw-crash", CONFIG)
    cluster = [first]
    try:
        for i in range(1, request.param):
            cluster.append(ownserver.started(tmp_path_factory, f"openvgw-crash-{i}", CONFIG, first.store))
        yield cluster
    finally:
        for s in reversed(cluster):
            ownserver.finish(s)


def leader(cluster: List[ownserver.OwnServer]) -> ownserver.OwnServer:
    """The replica holding the reconciler lease (the only one for a single server)."""
    if len(cluster) == 1:
        return cluster[0]
    for s in cluster:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{s.port}/metrics", timeout=5) as r:
                if re.search(r"^openvgw_reconciler_leader 1$", r.read().decode(), re.M):
                    return s
        except OSError:
            continue
    return cluster[0]


def commit_stats(s: ownserver.OwnServer) -> str:
    """How the SQLite store group-committed the writes so far (the kill lands on that batched path)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{s.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError as e:
        return f"no metrics ({e})"
    got = dict(re.findall(r"^(openvgw_store_(?:commits|writes)_total) (\d+)$", text, re.M))
    if not got:
        return "no group commit (PostgreSQL)"
    return f"{got['openvgw_store_writes_total']} writes in {got['openvgw_store_commits_total']} commits before the kill"


def run_round(cluster, ali_t, hw_t, vgw, ledger: Ledger, rnd: int, kill_after: int):
    """Starts the load spread over the cluster, kills the leader once `kill_after` more writes were acknowledged;
    returns the acks seen and the killed server."""
    for s in cluster:
        hwlib.openapi(s.port)  # Huawei answers are checked against the served document: fetch it while it is up
    with ledger.cond:
        base = ledger.acks
    ledger.stop.clear()
    n = len(cluster)
    threads = [threading.Thread(target=ali_worker, args=(cluster[t % n], ali_t, ledger, "ali-cgw", t, rnd),
                                daemon=True) for t in range(ALI_CGW_THREADS)]
    threads += [threading.Thread(target=ali_worker, args=(cluster[t % n], ali_t, ledger, "ali-gw", t, rnd),
                                 daemon=True) for t in range(ALI_GW_THREADS)]
    threads += [threading.Thread(target=hw_worker, args=(cluster[t % n], hw_t, ledger, kind, t, rnd, vgw),
                                 daemon=True) for t, kind in enumerate(["hw-cgw", "hw-p2c"])]
    threads += [threading.Thread(target=read_worker, args=(cluster[t % n], ali_t, ledger), daemon=True)
                for t in range(READ_THREADS)]
    victim = leader(cluster)
    for t in threads:
        t.start()
    with ledger.cond:
        while ledger.acks - base < kill_after and any(t.is_alive() for t in threads) and not ledger.refused:
            ledger.cond.wait(0.05)
        seen = ledger.acks - base
    ledger.batching.append(commit_stats(victim))
    victim.kill9()
    ledger.stop.set()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a load thread still runs a minute after the kill"
    return seen, victim


def resend_lost(srv, ali_t, hw_t, ledger: Ledger) -> int:
    """Re-sends every token-carrying write whose answer was lost; each must now be answered."""
    ali, hw = ali_api(srv, ali_t), hwlib.Hw(hw_t, srv.port)
    lost = [a for a in ledger.attempts if a.acked_id is None and a.token is not None]
    stored = {a.name for a in lost} & stored_names(ali, hw)
    for a in lost:
        a.resent = True
        ok = send_hw(hw, ledger, a) if a.kind.startswith("hw-") else send_ali(ali, ledger, a)
        assert ok, f"re-sending {a.kind} {a.name} with its token after the restart got no success: {ledger.refused}"
    return f"re-sent {len(lost)} writes whose answer was lost ({len(stored)} of them had been stored)"


def stored_names(ali: vgwlib.Api, hw: hwlib.Hw) -> set:
    return ({c["Name"] for c in ali_all(ali, "DescribeCustomerGateways", "CustomerGateways", "CustomerGateway")}
            | {g["Name"] for g in ali_all(ali, "DescribeVpnGateways", "VpnGateways", "VpnGateway")}
            | {g["name"] for g in hw_all(hw, "list_p2c_vgws", "p2c_vpn_gateways")})


def test_kill9_under_concurrent_writes(crash_cluster, tmp_path):
    cluster = crash_cluster
    srv = cluster[0]
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"CRASH_SEED={seed} replicas={len(cluster)}")
    ali_t = srv.create_tenant("crash-ali")
    hw_t = srv.create_tenant("crash-hw")
    vgw = hwlib.create_vgw(hwlib.Hw(hw_t, srv.port))   # ACTIVE; the hw-conn writes are its children
    ledger = Ledger()
    deleted: Dict[str, str] = {}
    log = []
    victim = None
    for rnd in range(ROUNDS):
        if rnd:
            victim.start()
            srv = victim
            resent = resend_lost(srv, ali_t, hw_t, ledger)
            # A gateway acknowledged before the kill converges to active after the restart; then delete two.
            ali = ali_api(srv, ali_t)
            for a in [a for a in ledger.of("ali-gw") if a.round == rnd - 1 and a.acked_id][:2]:
                vgwlib.wait_gateway_status(ali, a.acked_id, "active", timeout=60)
                ali.call("DeleteVpnGateway", {"VpnGatewayId": a.acked_id})
                deleted[a.acked_id] = a.name
        else:
            resent = "nothing to re-send"
        kill_after = rng.randint(5, 60)
        seen, victim = run_round(cluster, ali_t, hw_t, vgw, ledger, rnd, kill_after)
        log.append(f"round {rnd}: {resent}; killed {victim.name} after {seen} acknowledged writes "
                   f"({ledger.batching[-1]})")
        assert not ledger.refused, f"seed {seed}: the server refused writes during the load: {ledger.refused[:10]}"
        assert not ledger.broken, f"seed {seed}: unreadable answers: {ledger.broken[:10]}"
        assert seen > 0, f"seed {seed}: no write was acknowledged in round {rnd}:\n{victim.tail()}"

    srv = victim
    srv.start()
    resent = resend_lost(srv, ali_t, hw_t, ledger)
    log.append(f"final start: {resent}")
    print("\n".join(log))
    for s in cluster:
        assert not s.crashed(), f"seed {seed}: {s.name} panicked:\n{s.tail(60)}"

    ali, hw = ali_api(srv, ali_t), hwlib.Hw(hw_t, srv.port)
    problems: List[str] = []

    # Alibaba customer gateways: exactly the acknowledged ones (once each), with their address and all their tags.
    cgws = ali_all(ali, "DescribeCustomerGateways", "CustomerGateways", "CustomerGateway")
    check_kind(ledger, "ali-cgw", by_name(cgws, "Name"), "CustomerGatewayId", problems)
    sent = {a.name: a for a in ledger.of("ali-cgw")}
    for c in cgws:
        a = sent.get(c["Name"])
        if a is None:
            continue
        d = ali.call("DescribeCustomerGateway", {"CustomerGatewayId": c["CustomerGatewayId"]})
        want = {t["Key"]: t["Value"] for t in a.params["Tags"]}
        if d["IpAddress"] != a.params["IpAddress"] or vgwlib.tag_map(d, "Tags") != want \
                or vgwlib.tag_map(c, "Tags") != want:
            problems.append(f"ali-cgw {a.name}: stored {d['IpAddress']} {vgwlib.tag_map(d, 'Tags')}, "
                            f"sent {a.params['IpAddress']} {want}")
    tagged = ali_tagged(ali, "CustomerGateway")
    if tagged != {c["CustomerGatewayId"] for c in cgws}:
        problems.append(f"ali-cgw: tag rows without their customer gateway or the reverse: "
                        f"{sorted(tagged ^ {c['CustomerGatewayId'] for c in cgws})[:10]}")

    # Alibaba VPN gateways: the acknowledged ones once, minus the deleted; all converge to active.
    gws = ali_all(ali, "DescribeVpnGateways", "VpnGateways", "VpnGateway")
    live = [g for g in gws if g["VpnGatewayId"] not in deleted]
    check_kind(ledger, "ali-gw", by_name(live, "Name"), "VpnGatewayId", problems, deleted)
    for gid, name in deleted.items():
        vgwlib.wait_gateway_gone(ali, gid, timeout=60)
    addresses = []
    for g in live:
        d = vgwlib.wait_gateway_status(ali, g["VpnGatewayId"], "active", timeout=60)
        addresses.append(d["InternetIp"])

    # Huawei customer gateways (no token: a lost answer leaves it there once or not at all) and P2C gateways.
    hcgws = hw_all(hw, "list_cgws", "customer_gateways")
    check_kind(ledger, "hw-cgw", by_name(hcgws, "name"), "id", problems)
    hsent = {a.name: a for a in ledger.of("hw-cgw")}
    for c in hcgws:
        a = hsent.get(c["name"])
        if a is None:
            continue
        shown = hw.call("show_cgw", customer_gateway_id=c["id"]).json["customer_gateway"]
        want = a.params["customer_gateway"]
        if shown["id_value"] != want["id_value"] or sorted(shown["tags"], key=str) != sorted(want["tags"], key=str):
            problems.append(f"hw-cgw {a.name}: stored {shown['id_value']} {shown['tags']}, "
                            f"sent {want['id_value']} {want['tags']}")
    # Connections: the acknowledged ones once, each describable, bound to the gateway and to a stored customer
    # gateway, with what was sent; the gateway counts exactly them and converges to ACTIVE.
    conns = hw_all(hw, "list_vpn_connections", "vpn_connections")
    check_kind(ledger, "hw-conn", by_name(conns, "name"), "id", problems)
    csent = {a.name: a for a in ledger.of("hw-conn")}
    hcgw_ids = {c["id"] for c in hcgws}
    for c in conns:
        shown = hw.call("show_vpn_connection", vpn_connection_id=c["id"]).json["vpn_connection"]
        want = csent[c["name"]].params["vpn_connection"] if c["name"] in csent else {}
        got = (shown["vgw_id"], shown["cgw_id"], shown["peer_subnets"])
        if got != (vgw["id"], want.get("cgw_id"), want.get("peer_subnets")) or shown["cgw_id"] not in hcgw_ids:
            problems.append(f"hw-conn {c['name']}: stored {got}, sent {want}")
    g = hwlib.wait_vgw(hw, vgw["id"], timeout=60)
    if g["used_connection_number"] != len(conns):
        problems.append(f"the gateway counts {g['used_connection_number']} connections, {len(conns)} are listed")
    addresses += [g["eip1"]["ip_address"], g["eip2"]["ip_address"]]
    p2cs = hw_all(hw, "list_p2c_vgws", "p2c_vpn_gateways")
    check_kind(ledger, "hw-p2c", by_name(p2cs, "name"), "id", problems)
    for g in p2cs:
        addresses.append(hwlib.wait_p2c(hw, g["id"], timeout=60)["eip"]["ip_address"])

    # Addresses: one per gateway, from the pool, never twice.
    dupes = sorted({ip for ip in addresses if addresses.count(ip) > 1})
    if dupes:
        problems.append(f"public addresses held by more than one gateway: {dupes}")
    outside = [ip for ip in addresses if not vgwlib.in_pool(ip, EIP_POOL)]
    if outside:
        problems.append(f"public addresses outside eip_pool: {outside}")

    # Signed reads answered before a kill: their nonces survived it.
    replayed = [vgwlib.http_request(srv.port, "POST", target, headers) for target, headers in ledger.reads]
    accepted = [r for r in replayed if r.status == 200]
    wrong = [r for r in replayed if r.status != 200 and r.json().get("Code") != "SignatureNonceUsed"]
    if accepted or wrong:
        problems.append(f"of {len(replayed)} answered signed reads sent again after the restarts, {len(accepted)} were "
                        f"accepted and {len(wrong)} refused otherwise than as replays: {wrong[:3]}")
    assert ledger.reads, f"seed {seed}: no signed read was answered"
    print(f"{len(ledger.reads)} answered signed reads, all refused as replays after the restarts")

    acked = {k: sum(1 for a in ledger.of(k) if a.acked_id)
             for k in ("ali-cgw", "ali-gw", "hw-cgw", "hw-conn", "hw-p2c")}
    print(f"attempted {len(ledger.attempts)}, acknowledged {acked}; stored: {len(cgws)} ali-cgw, {len(gws)} ali-gw "
          f"({len(deleted)} deleted), {len(hcgws)} hw-cgw, {len(conns)} hw-conn, {len(p2cs)} hw-p2c")
    assert not problems, f"seed {seed}:\n" + "\n".join(problems[:40])

    # The file itself: after a clean stop SQLite finds nothing wrong with it.
    for s in cluster:
        s.stop()
    if srv.sqlite_file is not None:
        db = sqlite3.connect(f"file:{srv.sqlite_file}?mode=ro", uri=True)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            db.close()
