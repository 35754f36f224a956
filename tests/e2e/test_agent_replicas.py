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
from conftest import FIGURES, Server
from lab import wait_until
from test_agent_hosts import (DEAD_AFTER_S, MGMT_CONTROL, Pinger, a_tunnel, gateway_hosts, holder, moved_and_carrying,
                              record_interruption, start_agents)
from test_agents import agents_vpc, api_of, attached, control_config, vgwlib_port

VPC = agents_vpc(5)


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
    with gateway_hosts(lab, VPC, {"c": 3, "d": 4}) as (hosts, vpc_host, running):
        ports = [vgwlib_port() for _ in range(2)]
        replicas = running.servers
        for i, port in enumerate(ports):
            (workdir / f"replica{i}").mkdir()
            replicas.append(Server(workdir / f"replica{i}", dataplane="agents", store=url, env=env,
                                   config=control_config(f"{MGMT_CONTROL}:{port}", "203.0.113.192/27",
                                                         f"dead_after_s = {DEAD_AFTER_S}", VPC.dataplane)))
        for r in replicas:
            r.start()
        agents = start_agents(running, hosts, workdir, [f"https://{MGMT_CONTROL}:{p}" for p in ports], VPC, "ovgwe2r")
        assert wait_until(lambda: leaders(replicas).count(1) == 1, 30), leaders(replicas)
        tenant = replicas[0].tenant("replicas")
        yield SimpleNamespace(replicas=replicas, agents=agents, hosts=hosts, tenant=tenant, vpc_host=vpc_host,
                              workdir=workdir, vpc=VPC)


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
        t.pinger = Pinger(site.onprem, VPC.host, replicated.workdir / "ping-replkill-2.log")
        time.sleep(1)
        hosts[t.key].power_off(agents[t.key])
        moved_and_carrying(cluster, site, t)
        record_interruption(t, "host powered off under the new leader")

        # The killed replica restarts as a follower; the surviving agent attaches to it again.
        leader.start()
        assert wait_until(lambda: attached(leader) >= 1, 30), logs()
        assert leaders(replicas) == [0 if r is leader else 1 for r in replicas], leaders(replicas)
