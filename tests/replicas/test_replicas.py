"""Several `openvgw serve` replicas on one PostgreSQL database (each with its own data dir, the same config): what
one replica writes another reads at once, a tenant created with `openvgw tenant create --store` works everywhere,
a signed request is accepted once across replicas, and exactly one reconciler acts — when it is killed, another
takes over within seconds; gateway hosts (`openvgw agent`) attach to every replica and the one that leads drives
them.

Needs a PostgreSQL server: $OPENVGW_TEST_PG_URL (scripts/test starts one). Without it the tests are skipped with a
reason, except under CI=true, where they fail.
"""
from __future__ import annotations

import re
import sys
import time
import urllib.request
from pathlib import Path

import pytest

INTEROP = Path(__file__).resolve().parent.parent / "interop"
sys.path.insert(0, str(INTEROP))

import ownserver  # noqa: E402
import vgwlib  # noqa: E402
from conftest import MAIN_CONFIG, Server  # noqa: E402
from conftest import new_database as conftest_new_database  # noqa: E402

REPLICAS = 3


def new_database(prefix: str) -> str:
    """A new, empty database on the test server; its URL."""
    return conftest_new_database(prefix, ownserver.test_pg_url("the replica tests"))


def start_replicas(tmp_path_factory, prefix: str, config: str, pool: str, url: str, n: int):
    servers = [Server(f"{prefix}-{i}", tmp_path_factory.mktemp(f"{prefix}{i}"), config, pool, store_url=url)
               for i in range(n)]
    try:
        for s in servers:
            s.start()
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers


@pytest.fixture(scope="module")
def db_url():
    return new_database("replicas")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, db_url):
    servers = start_replicas(tmp_path_factory, "replica", MAIN_CONFIG, "198.18.0.0/20", db_url, REPLICAS)
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def tenant(replicas, db_url):
    # Created by the admin command straight in the database, not through any replica.
    return replicas[0].create_tenant("shared-" + vgwlib.uid())


def leader_flags(servers):
    """Each running replica's openvgw_reconciler_leader (None for one that does not answer)."""
    flags = []
    for s in servers:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{s.port}/metrics", timeout=2) as r:
                m = re.search(r"^openvgw_reconciler_leader (\d)$", r.read().decode(), re.M)
                flags.append(int(m.group(1)) if m else None)
        except OSError:
            flags.append(None)
    return flags


def test_a_tenant_created_by_the_admin_command_works_on_every_replica(replicas, tenant):
    for s in replicas:
        assert s.api(tenant).call("DescribeVpnGateways", {})["TotalCount"] == 0, s.name


def test_a_write_through_one_replica_is_read_through_the_others_at_once(replicas, tenant):
    a, b, c = (s.api(tenant) for s in replicas)
    cgw, _ = vgwlib.create_cgw(a)
    for api in (b, c):
        got = api.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
        assert got["CustomerGatewayId"] == cgw
    # And the other way round, with a uniqueness rule checked against what another replica wrote.
    name = "shared-name-" + vgwlib.uid()
    b.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": name})
    assert a.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})["Name"] == name
    listed = c.call("DescribeCustomerGateways", {})
    assert cgw in [g["CustomerGatewayId"] for g in listed["CustomerGateways"]["CustomerGateway"]]


def test_a_signed_request_is_accepted_by_one_replica_only(replicas, tenant):
    ak, sk = tenant["access_key_id"], tenant["access_key_secret"]
    target, headers = vgwlib.acs3_prepare(replicas[0].port, ak, sk, "DescribeVpnGateways",
                                          {"RegionId": vgwlib.DEFAULT_REGION})
    first = vgwlib.http_request(replicas[0].port, "POST", target, headers)
    assert first.status == 200, first
    for s in replicas[1:]:
        again = vgwlib.http_request(s.port, "POST", target, headers)
        assert again.status == 400 and again.json()["Code"] == "SignatureNonceUsed", (s.name, again)


def test_one_reconciler_leads_and_another_takes_over_when_it_is_killed(replicas, tenant):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and leader_flags(replicas).count(1) != 1:
        time.sleep(0.2)
    flags = leader_flags(replicas)
    assert flags.count(1) == 1 and flags.count(0) == REPLICAS - 1, flags
    leader = replicas[flags.index(1)]
    survivors = [s for s in replicas if s is not leader]
    # A gateway made while the leader lives is realised by it.
    api = survivors[0].api(tenant)
    before, _ = vgwlib.create_gateway(api, wait=False)
    vgwlib.wait_gateway_status(api, before, "active", timeout=20)

    leader.kill()
    killed = time.monotonic()
    took_over = None
    while time.monotonic() - killed < 20:
        if leader_flags(survivors).count(1) == 1:
            took_over = time.monotonic() - killed
            break
        time.sleep(0.1)
    assert took_over is not None, f"no replica took the reconciler over: {leader_flags(survivors)}"
    print(f"\nreconciler take-over after kill -9 of the leader: {took_over:.1f} s")
    assert took_over < 10, took_over
    assert leader_flags(survivors).count(1) == 1
    # The new leader realises what is created after the take-over, and still serves what existed before.
    after, _ = vgwlib.create_gateway(api, wait=False)
    vgwlib.wait_gateway_status(survivors[1].api(tenant), after, "active", timeout=20)
    vgwlib.wait_gateway_status(api, before, "active", timeout=20)
    logs = "".join(s.stderr_path.read_text(errors="replace") for s in survivors)
    assert "reconciler lease acquired" in logs


THROTTLED_CONFIG = MAIN_CONFIG.replace(
    "[regions]", "[rate_limit]\ntenant_per_second = 0.01\ntenant_burst = 4\n\n[regions]", 1)


@pytest.fixture(scope="module")
def throttled_pair(tmp_path_factory):
    servers = start_replicas(tmp_path_factory, "rate", THROTTLED_CONFIG, "198.18.16.0/24", new_database("rate"), 2)
    yield servers
    for s in servers:
        s.stop()


def test_rate_limits_are_shared_by_the_replicas(throttled_pair):
    """A tenant's budget (4 requests, refilled at one per 100 s) is one budget across replicas: spent half on each,
    the next request is throttled on both. Buckets kept per process would still have 2 left on each."""
    a, b = throttled_pair
    t = a.create_tenant("rate-" + vgwlib.uid())
    for srv in (a, b, a, b):
        srv.api(t).call("DescribeVpnGateways")
    for srv in (a, b):
        r = vgwlib.acs3_call(srv.port, t["access_key_id"], t["access_key_secret"], "DescribeVpnGateways",
                             {"RegionId": vgwlib.DEFAULT_REGION})
        assert r.status == 400 and r.json()["Code"] == "Throttling.User", r
        assert int(r.headers["x-acs-retry-after"]) > 0, r.headers
    # Another operation has its own budget.
    a.api(t).call("DescribeCustomerGateways")


def test_agents_attach_to_every_replica_and_the_new_leader_moves_a_dead_agents_gateways(tmp_path_factory, tmp_path):
    """Two replicas with `--dataplane agents`, two agents (simulated driver) attached to both. The replica that
    reconciles places the gateways; the other follows its placements. Killing the leader changes nothing for the
    agents (the other replica's heartbeats keep them serving); the new leader places new gateways and, when an agent
    is killed and stays away, moves its gateways to the other."""
    from test_agents import Agent, admin_json, control_config, scrape, until

    url = new_database("agents")
    ports = [ownserver.free_port() for _ in range(2)]
    servers = [Server(f"agents-{i}", tmp_path_factory.mktemp(f"agents{i}"), control_config(port, 3),
                      "198.18.64.0/24", store_url=url) for i, port in enumerate(ports)]
    agents = []
    try:
        for srv, port in zip(servers, ports):
            srv.agent_port = port
            srv.start()
        ca = tmp_path / "agents-ca.pem"
        controls = [f"https://127.0.0.1:{p}" for p in ports]
        for name in ("host-a", "host-b"):
            agent = Agent(servers[0], tmp_path, name, ca, controls=controls)
            agent.start(admin_json(servers[0], "token", "--ca-out", str(ca), "--json")["token"])
            agents.append(agent)
        logs = lambda: "\n".join([a.tail() for a in agents] + [s.tail() for s in servers])  # noqa: E731
        for srv in servers:
            until(f"both agents attached to {srv.name}", lambda: scrape(srv)["attached"] == 2, detail=logs)
        ids = {x["name"]: x["id"] for x in admin_json(servers[0], "list", "--json")}
        a_id, b_id = ids["host-a"], ids["host-b"]

        until("one replica leads", lambda: leader_flags(servers).count(1) == 1, detail=logs)
        leader = servers[leader_flags(servers).index(1)]
        follower = next(s for s in servers if s is not leader)
        tenant = follower.create_tenant("agents-" + vgwlib.uid())
        api = follower.api(tenant)
        before = [vgwlib.create_gateway(api, wait=False)[0] for _ in range(2)]
        for gw in before:
            vgwlib.wait_gateway_status(api, gw, "active", timeout=30)
        # The follower sees the leader's placements (it reads them from the store every second).
        until("the follower knows the placements", lambda: scrape(follower).get(a_id, 0) +
              scrape(follower).get(b_id, 0) == 2, detail=logs)

        leader.kill()
        until("the follower leads", lambda: leader_flags([follower]) == [1], timeout=20, detail=logs)
        after, _ = vgwlib.create_gateway(api, wait=False)
        for gw in before + [after]:
            vgwlib.wait_gateway_status(api, gw, "active", timeout=30)
        # Neither agent stood down: the surviving replica's heartbeats kept them.
        assert not any("fenced" in a.log.read_text(errors="replace") for a in agents), logs()

        held_by_a = scrape(follower).get(a_id, 0)
        agents[0].kill9()
        until("host-a's gateways moved to host-b", lambda: scrape(follower).get(b_id) == 3, timeout=30, detail=logs)
        assert scrape(follower)["moved"] == held_by_a
        for gw in before + [after]:
            vgwlib.wait_gateway_status(api, gw, "active", timeout=30)
        listed = {x["name"]: sorted(x["gateways"]) for x in admin_json(follower, "list", "--json")}
        assert listed["host-b"] == sorted(before + [after]) and listed["host-a"] == [], listed
    finally:
        for a in agents:
            print(f"--- {a.name} log tail ---\n{a.tail()}")
            a.stop()
        for s in servers:
            s.stop()
