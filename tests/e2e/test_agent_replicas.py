"""Gateway hosts under two `serve` replicas on one PostgreSQL database, with real traffic: two `openvgw agent`s, each in
a namespace standing in for a host (as in test_agent_hosts), attached to both replicas. A tunnel created through
Alibaba's SDK carries a real strongSwan customer's packets to the VPC; then the replica that leads (the one whose
reconciler holds the store's lease and alone places and moves gateways) is killed with SIGKILL. The customer's traffic
carries on (the other replica's heartbeats keep the agents serving; nothing stands down or moves), the other replica
takes the lead, and when the gateway's host is then powered off, the new leader moves the gateway with its address to
the other host and the customer's tunnel comes back. The killed replica restarts as a follower and the agents attach
to it again. Each phase's interruption of the customer's traffic is printed.

Needs a PostgreSQL server: $OPENVGW_TEST_PG_URL (scripts/test starts one). Without it the test is skipped with a
reason, except under CI=true, where it fails."""
from __future__ import annotations

import base64
import os
import time
import uuid
from types import SimpleNamespace

import pytest

import ownserver
import vgwlib
from conftest import FIGURES, REGION, Server
from lab import wait_until
from test_agent_hosts import MGMT_CONTROL, Pinger, a_tunnel, gateway_hosts, holder, moved_and_carrying
from test_agents import Agent, attached, control_config, dataplane, join_token, vgwlib_port

VPC = "vpc-e2e00000000000000000005"
VPC_BRIDGE = "ovgwt-vpc5"
VPC_CIDR = "192.168.50.0/24"
VPC_HOST = "192.168.50.50"
DEAD_AFTER_S = 4

DATAPLANE = dataplane(VPC, VPC_BRIDGE, VPC_CIDR)


def leaders(replicas) -> list:
    """Each replica's openvgw_reconciler_leader (None for one that is down or does not answer)."""
    return [r.metric("openvgw_reconciler_leader") if r.proc else None for r in replicas]


@pytest.fixture(scope="module")
def replicated(lab, site, tmp_path_factory):
    url = ownserver.create_database(ownserver.test_pg_url("replicas with gateway hosts"),
                                    f"ovgw_e2e_replicas_{uuid.uuid4().hex[:12]}")
    # Every replica must hold the same master key: secrets in the shared store are sealed with it.
    env = {"OPENVGW_MASTER_KEY": os.environ.get("OPENVGW_MASTER_KEY") or base64.b64encode(os.urandom(32)).decode()}
    workdir = tmp_path_factory.mktemp("agent-replicas")
    vpc = SimpleNamespace(id=VPC, cidr=VPC_CIDR, host=VPC_HOST, bridge=VPC_BRIDGE)
    with gateway_hosts(lab, vpc, {"c": 3, "d": 4}) as (hosts, vpc_host, running):
        ports = [vgwlib_port() for _ in range(2)]
        replicas = running.servers
        for i, port in enumerate(ports):
            (workdir / f"replica{i}").mkdir()
            replicas.append(Server(workdir / f"replica{i}", dataplane="agents", store=url, env=env,
                                   config=control_config(f"{MGMT_CONTROL}:{port}", "203.0.113.192/27",
                                                         f"dead_after_s = {DEAD_AFTER_S}", DATAPLANE)))
        for r in replicas:
            r.start()
        ca = workdir / "agents-ca.pem"
        controls = [f"https://{MGMT_CONTROL}:{p}" for p in ports]
        agents = running.agents
        for key, h in hosts.items():
            agents[key] = Agent(workdir, controls, ca, name=f"host-{key}", prefix=f"ovgwe2r{key}-",
                                dataplane=DATAPLANE, host_ns=h.ns)
            agents[key].start(join_token(replicas[0], ca))
        for r in replicas:
            assert wait_until(lambda: attached(r) == 2, 30), "\n".join(a.tail() for a in agents.values())
        assert wait_until(lambda: leaders(replicas).count(1) == 1, 30), leaders(replicas)
        tenant = replicas[0].tenant("replicas")
        yield SimpleNamespace(replicas=replicas, agents=agents, hosts=hosts, tenant=tenant, vpc_host=vpc_host,
                              workdir=workdir, vpc=vpc)


def api_of(replica: Server, tenant: dict) -> vgwlib.Api:
    client = vgwlib.make_tea_client(tenant["access_key_id"], tenant["access_key_secret"], replica.port, "v3")
    return vgwlib.Api(client, "v3", tenant, replica.port, REGION)


def test_killing_the_leading_replica_keeps_the_customers_traffic_and_the_new_leader_moves_a_dead_hosts_gateway(
        replicated, site):
    replicas, agents, hosts = replicated.replicas, replicated.agents, replicated.hosts
    leader = replicas[leaders(replicas).index(1)]
    follower = next(r for r in replicas if r is not leader)
    # The tests' calls go to the replica that survives; the gateway is placed by the leader.
    cluster = {"api": api_of(follower, replicated.tenant), "control": follower, "agents": agents,
               "vpc": replicated.vpc, "vpc_host": replicated.vpc_host, "workdir": replicated.workdir}
    logs = lambda: "\n".join([a.tail() for a in agents.values()] + [r.tail() for r in replicas])  # noqa: E731
    with a_tunnel(cluster, site, "replkill") as t:
        leader.kill9()
        assert wait_until(lambda: leaders([follower]) == [1], 30), f"the follower never led\n{logs()}"
        # Past the time in which an agent without heartbeats would stand down (dead_after/2) and the old leader's
        # sessions would count as dead: the gateway stays where it is and no agent fenced.
        time.sleep(DEAD_AFTER_S + 1)
        assert holder(t.gw, agents) == t.key, logs()
        assert not any("fenced" in a.tail(400) for a in agents.values()), logs()
        gap = t.pinger.longest_gap()
        FIGURES.append(f"leading replica killed (SIGKILL), agents on both replicas: the customer's traffic stopped "
                       f"for {gap:.1f} s at most (one ping every 0.1 s)")
        # Standing down takes dead_after/2 = 2 s without a word from any replica; the traffic never stopped that long.
        assert gap < DEAD_AFTER_S / 2, f"the customer's traffic stopped for {gap:.1f} s\n{logs()}"

        # The new leader moves a dead host's gateway.
        t.pinger = Pinger(site.onprem, VPC_HOST, replicated.workdir / "ping-replkill-2.log")
        time.sleep(1)
        hosts[t.key].power_off(agents[t.key])
        moved_and_carrying(cluster, site, t)
        time.sleep(1)
        FIGURES.append(f"host powered off under the new leader: the customer's traffic stopped for "
                       f"{t.pinger.longest_gap():.1f} s (agents.dead_after_s = {DEAD_AFTER_S}, keepalive_s = 1)")

        # The killed replica restarts as a follower; the surviving agent attaches to it again.
        leader.start()
        assert wait_until(lambda: attached(leader) >= 1, 30), logs()
        assert leaders(replicas) == [0 if r is leader else 1 for r in replicas], leaders(replicas)
