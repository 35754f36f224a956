"""Gateways on two hosts: `serve --dataplane agents` and two `openvgw agent`s, each in a network namespace standing in
for a host, with bridges of its own uplinked to the shared public and VPC bridges and a management link on which it
reaches the control plane. A tunnel created through Alibaba's SDK carries packets between a real strongSwan customer
and the VPC; then the gateway's host dies (power off: its agent, daemons and links gone), and separately its network
is cut (the agent lives on, cut off). Either way the gateway moves, with its addresses, to the other host, and the
customer's tunnel comes back with nothing changed on the customer's side; each test prints how long the customer's
traffic was interrupted. A cut-off host stops serving its gateway on its own (before the move) and gets nothing back
when its network returns.

The control plane, the hosts and the VPC are this module's own (namespaces, bridges, an EIP pool), so nothing here
meets the session's server."""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import vgwlib
from conftest import (CGW_IP, FIGURES, ONPREM_HOST, ONPREM_HOST2, ONPREM_NET, ONPREM_NET2, PUB_BRIDGE, Server,
                      kill_namespaces)
from lab import Charon, Lab, sh, swanctl_from_download, wait_until
from test_agents import Agent, agents_vpc, api_of, attached, control_config, join_token, vgwlib_port
from test_dataplane import peer_down, peer_up

VPC = agents_vpc(4)
# The management network: documentation addresses on a bridge of this module's.
MGMT_BRIDGE = "ovgwt-mgmt"
MGMT_CONTROL = "198.51.100.1"
DEAD_AFTER_S = 4


class Host:
    """A namespace standing in for a gateway host: bridges named as the agent's configuration says, each uplinked to
    the root namespace's bridge of that name, and a management link (`198.51.100.1<n>`) to the control plane."""

    def __init__(self, lab: Lab, key: str, n: int, vpc_bridge: str):
        self.lab, self.key, self.n, self.vpc_bridge = lab, key, n, vpc_bridge
        self.ns = f"{lab.prefix}-host{key}"
        # Root ends: management, public, VPC.
        self.uplinks = [f"ovgwh{key}m", f"ovgwh{key}p", f"ovgwh{key}v"]

    def build(self) -> None:
        assert self.lab.netns(f"host{self.key}") == self.ns
        mgmt, pub, vpc = self.uplinks
        sh("ip", "link", "add", mgmt, "type", "veth", "peer", "name", "mgmt0", "netns", self.ns)
        sh("ip", "link", "set", mgmt, "master", MGMT_BRIDGE, "up")
        sh("ip", "-n", self.ns, "addr", "add", f"198.51.100.1{self.n}/24", "dev", "mgmt0")
        sh("ip", "-n", self.ns, "link", "set", "mgmt0", "up")
        for root_end, bridge, inner in ((pub, PUB_BRIDGE, "up-pub"), (vpc, self.vpc_bridge, "up-vpc")):
            sh("ip", "-n", self.ns, "link", "add", bridge, "type", "bridge")
            sh("ip", "-n", self.ns, "link", "set", bridge, "up")
            sh("ip", "link", "add", root_end, "type", "veth", "peer", "name", inner, "netns", self.ns)
            sh("ip", "link", "set", root_end, "master", bridge, "up")
            sh("ip", "-n", self.ns, "link", "set", inner, "master", bridge, "up")

    def power_off(self, agent: Agent) -> None:
        """The host is gone at once: every process on it (the agent, its lease guard: by PID), every daemon it ran,
        its namespaces and its links."""
        agent.kill9()
        for pid in sh("ip", "netns", "pids", self.ns, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        kill_namespaces(agent.prefix)
        sh("ip", "netns", "del", self.ns)

    def remove(self) -> None:
        sh("ip", "netns", "del", self.ns, check=False)
        for link in self.uplinks:
            sh("ip", "link", "del", link, check=False)

    def cable(self, up: bool) -> None:
        for link in self.uplinks:
            sh("ip", "link", "set", "dev", link, "up" if up else "down")


class Pinger:
    """`ping` every 100 ms from the customer's network to the VPC host, replies time-stamped: the longest silence
    between two replies is how long the customer's traffic was interrupted."""

    def __init__(self, ns: str, dst: str, log: Path):
        self.log = log
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-D", "-i", "0.1", "-W", "1", dst],
                                     stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)

    def longest_gap(self) -> float:
        self.end()
        stamps = [float(line[1:line.index("]")]) for line in self.log.read_text().splitlines()
                  if line.startswith("[") and "bytes from" in line]
        assert len(stamps) >= 2, self.log.read_text()[-2000:]
        return max(b - a for a, b in zip(stamps, stamps[1:]))


def holder(gw: str, agents: dict) -> str:
    """The key of the host whose agent has the gateway's namespace ('' when none has); `gw` may name the second half
    of an HA gateway (`<id>.2`)."""
    listing = {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()}
    found = [k for k, a in agents.items() if f"{a.prefix}{gw}" in listing]
    assert len(found) <= 1, f"{gw} on more than one host: {found}"
    return found[0] if found else ""


@contextlib.contextmanager
def gateway_hosts(lab: Lab, vpc: SimpleNamespace, hosts: dict):
    """The management bridge, the VPC's bridge (`vpc.bridge`) with a VPC host at `vpc.host`, and the hosts (key →
    number) built. Yields (hosts, the VPC host's namespace, `running`): the agents (`running.agents`, by host key)
    and control planes (`running.servers`) put there are stopped on the way out, their logs printed, and what their
    drivers made is removed with the hosts."""
    lab.bridge(vpc.bridge)
    lab.bridge(MGMT_BRIDGE)
    sh("ip", "addr", "replace", f"{MGMT_CONTROL}/24", "dev", MGMT_BRIDGE)
    vpc_host = lab.netns(f"vpc-{vpc.bridge}")
    lab.attach(vpc_host, "eth0", vpc.bridge, f"{vpc.host}/24")
    built = {key: Host(lab, key, n, vpc.bridge) for key, n in hosts.items()}
    for h in built.values():
        h.build()
    running = SimpleNamespace(agents={}, servers=[])
    try:
        yield built, vpc_host, running
    finally:
        for a in running.agents.values():
            print(f"--- agent {a.name} log ---\n{a.tail()}")
            a.stop()
        for srv in running.servers:
            print(f"--- control plane {srv.workdir.name} log ---\n{srv.tail()}")
            srv.stop()
        for a in running.agents.values():
            kill_namespaces(a.prefix)
        for h in built.values():
            h.remove()
        sh("ip", "addr", "del", f"{MGMT_CONTROL}/24", "dev", MGMT_BRIDGE, check=False)


def start_agents(running, hosts: dict, workdir: Path, controls, vpc: SimpleNamespace, prefix: str) -> dict:
    """An agent on each host (its namespaces named `<prefix><key>-`), joined with a token of the first control plane
    in `running.servers` and attached to `controls` (one URL per replica); returns them once every control plane
    counts them all attached."""
    ca = workdir / "agents-ca.pem"
    agents = running.agents
    for key, h in hosts.items():
        agents[key] = Agent(workdir, controls, ca, name=f"host-{key}", prefix=f"{prefix}{key}-",
                            dataplane=vpc.dataplane, host_ns=h.ns)
        agents[key].start(join_token(running.servers[0], ca))
    for srv in running.servers:
        assert wait_until(lambda: attached(srv) == len(hosts), 30), "\n".join(a.tail() for a in agents.values())
    return agents


@pytest.fixture(scope="module")
def cluster(lab, site, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("agent-hosts")
    with gateway_hosts(lab, VPC, {"a": 1, "b": 2}) as (hosts, vpc_host, running):
        agent_port = vgwlib_port()
        (workdir / "control").mkdir()
        config = control_config(f"{MGMT_CONTROL}:{agent_port}", "203.0.113.160/27",
                                f"dead_after_s = {DEAD_AFTER_S}", VPC.dataplane)
        control = Server(workdir / "control", config=config, dataplane="agents")
        running.servers.append(control)
        control.start()
        agents = start_agents(running, hosts, workdir, f"https://{MGMT_CONTROL}:{agent_port}", VPC, "ovgwe2h")
        yield {"api": api_of(control, control.tenant("hosts")), "control": control, "agents": agents, "hosts": hosts,
               "vpc_host": vpc_host, "vpc": VPC, "workdir": workdir}


@contextlib.contextmanager
def a_tunnel(cluster, site, name: str):
    """A gateway (on whichever host it was placed: `t.key`) whose connection carries the customer's traffic, watched
    by a Pinger; deleted afterwards, also when the test fails."""
    t = SimpleNamespace(name=name, gw="", vco="", cgw="", key="", public_ip="", pinger=None)
    try:
        t.gw, t.vco, t.cgw, t.key = tunnel_up(cluster, site, name)
        t.public_ip = cluster["api"].call("DescribeVpnGateway", {"VpnGatewayId": t.gw})["InternetIp"]
        t.pinger = Pinger(site.onprem, cluster["vpc"].host, cluster["workdir"] / f"ping-{name}.log")
        time.sleep(1)
        yield t
    finally:
        if t.pinger:
            t.pinger.end()
        if t.gw:
            tunnel_down(cluster, site, name, t.gw, t.vco, t.cgw)


def record_interruption(t, what: str) -> None:
    time.sleep(1)
    FIGURES.append(f"{what}: the customer's traffic stopped for {t.pinger.longest_gap():.1f} s "
                   f"(agents.dead_after_s = {DEAD_AFTER_S}, keepalive_s = 1)")


def tunnel_up(cluster, site, name: str):
    """A gateway with a connection the gateway initiates (EffectImmediately), the customer configured from the API's
    answer, and traffic flowing: returns (gateway, connection, host key)."""
    api = cluster["api"]
    gw = api.call("CreateVpnGateway", {"VpcId": cluster["vpc"].id, "Bandwidth": 10, "Name": name})["VpnGatewayId"]
    vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    intranet = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": name})["IntranetIp"]
    site.lab.route(cluster["vpc_host"], ONPREM_NET, intranet)
    cgw = api.call("CreateCustomerGateway", {"IpAddress": CGW_IP, "Name": "onprem"})["CustomerGatewayId"]
    vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": cluster["vpc"].cidr,
                                            "RemoteSubnet": ONPREM_NET, "EffectImmediately": True,
                                            "IkeConfig": json.dumps({"IkeVersion": "ikev2"})})["VpnConnectionId"]
    vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    peer_up(site, api, vco, name)
    assert Lab.wait_ping(site.onprem, cluster["vpc"].host, 30), site.charon.log_tail()
    key = holder(gw, cluster["agents"])
    assert key, "the gateway's namespace is on no host"
    return gw, vco, cgw, key


def tunnel_down(cluster, site, name: str, gw: str, vco: str, cgw: str) -> None:
    api = cluster["api"]
    if vco:
        api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
        peer_down(site, name)
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    vgwlib.wait_gateway_gone(api, gw, timeout=60)
    if cgw:
        api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})
    assert wait_until(lambda: holder(gw, cluster["agents"]) == "", 30)


def moved_and_carrying(cluster, site, t) -> str:
    """Waits for the gateway on the other host with the same address, the customer's traffic through it and the
    connection's SA reported; returns the new host's key."""
    api, agents = cluster["api"], cluster["agents"]
    gw, vco, public_ip = t.gw, t.vco, t.public_ip
    other = next(k for k in agents if k != t.key)
    assert wait_until(lambda: holder(gw, agents) == other, 60), f"{agents[other].tail()}\n{cluster['control'].tail()}"
    assert Lab.wait_ping(site.onprem, cluster["vpc"].host, 60), f"{site.charon.log_tail()}\n{agents[other].tail()}"
    described = api.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    assert described["InternetIp"] == public_ip, "the gateway keeps its public address"
    status = lambda: api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["Status"]  # noqa: E731
    assert wait_until(lambda: status() == "ipsec_sa_established", 30), status()
    return other


def test_a_dead_hosts_gateway_moves_with_its_address_and_the_customers_tunnel_comes_back(cluster, site):
    agents, hosts = cluster["agents"], cluster["hosts"]
    with a_tunnel(cluster, site, "hostdeath") as t:
        hosts[t.key].power_off(agents[t.key])
        moved_and_carrying(cluster, site, t)
        record_interruption(t, "host powered off")
        # The host comes back (namespaces gone, as after a reboot) with the agent's identity: it attaches and is
        # given nothing back.
        hosts[t.key].build()
        agents[t.key].start()
        assert wait_until(lambda: attached(cluster["control"]) == 2, 30), agents[t.key].tail()
        assert holder(t.gw, agents) != t.key
        assert Lab.ping(site.onprem, cluster["vpc"].host)


def test_a_cut_off_host_stops_serving_before_its_gateway_moves_and_gets_nothing_back(cluster, site):
    agents, hosts = cluster["agents"], cluster["hosts"]
    with a_tunnel(cluster, site, "hostcut") as t:
        hosts[t.key].cable(False)
        try:
            # The agent, hearing nothing, removes the gateway itself (half of dead_after) before the control plane
            # moves it: once it is on the other host, the cut-off one has nothing left.
            other = moved_and_carrying(cluster, site, t)
            assert f"{agents[t.key].prefix}{t.gw}" not in sh("ip", "netns", "list").stdout
            assert "fenced" in agents[t.key].tail(200), agents[t.key].tail()
            record_interruption(t, "host cut off")
        finally:
            hosts[t.key].cable(True)
        assert wait_until(lambda: attached(cluster["control"]) == 2, 60), agents[t.key].tail()
        assert holder(t.gw, agents) == other, "the gateway stays where it was moved"
        assert Lab.ping(site.onprem, cluster["vpc"].host)


def test_a_killed_agents_gateway_is_removed_by_its_guard_before_it_moves(cluster, site):
    """SIGKILL of the agent alone: the host, its daemons and links stay. The agent's lease guard (another process)
    removes the gateway once the lease runs out, before the control plane moves it, so the address never answers
    from two hosts; the restarted agent attaches and is given nothing back."""
    agents = cluster["agents"]
    with a_tunnel(cluster, site, "agentkill") as t:
        assert agents[t.key].guard_pid(), "the netns agent runs a lease guard"
        agents[t.key].kill9()
        moved_and_carrying(cluster, site, t)
        assert "fencing" in agents[t.key].tail(200), agents[t.key].tail()
        record_interruption(t, "agent killed (SIGKILL, host up)")
        assert not agents[t.key].guard_pid(), "the guard exits once it has fenced"
        agents[t.key].start()
        assert wait_until(lambda: attached(cluster["control"]) == 2, 30), agents[t.key].tail()
        assert holder(t.gw, agents) != t.key
        assert Lab.ping(site.onprem, cluster["vpc"].host)


def behind_the_router(lab: Lab, vpc: SimpleNamespace, name: str, n: int) -> str:
    """A VPC host (the block's `n`th address) whose only route is the VPC's router (its first address)."""
    block = ipaddress.ip_network(vpc.cidr)
    host = lab.netns(name)
    lab.attach(host, "eth0", vpc.bridge, f"{block.network_address + n}/{block.prefixlen}")
    sh("ip", "-n", host, "route", "add", "default", "via", str(block.network_address + 1))
    return host


@contextlib.contextmanager
def second_customer_gateway(lab: Lab, site, vpc: SimpleNamespace, name: str):
    """A second customer gateway at CGW3_IP: a strongSwan on the public segment with a link of its own to the
    customer's network, through which the customer answers the VPC (until the caller deletes that route). Yields
    (namespace, charon); stopped and removed afterwards."""
    ns = lab.netns(name)
    lab.attach(ns, "pub0", PUB_BRIDGE, f"{CGW3_IP}/24")
    lab.wire(ns, "lan0", "172.16.41.1/24", site.onprem, "eth1", "172.16.41.10/24")
    lab.forward(ns)
    lab.route(ns, ONPREM_NET2, "172.16.41.10")
    # charon routes what its tunnel brings from an address of its own inside the local selector.
    sh("ip", "-n", ns, "addr", "add", "172.16.30.2/32", "dev", "lo")
    lab.route(site.onprem, vpc.cidr, "172.16.41.1")
    charon = Charon(lab, ns, f"{name}-charon", site.kernel_esp)
    try:
        yield ns, charon
    finally:
        charon.stop()
        sh("ip", "-n", site.onprem, "route", "del", vpc.cidr, check=False)
        sh("ip", "netns", "del", ns, check=False)


def remove_gateways(api, made: dict, cgws: list) -> None:
    """Deletes what a test made, in order: route entries (`m.route`: `m.dest` at `m.weight`), connections, gateways,
    customer gateways."""
    for m in made.values():
        vgwlib.wait_gateway_status(api, m.gw, "active", timeout=60)
        if m.route:
            api.call("DeleteVpnRouteEntry", {"VpnGatewayId": m.gw, "RouteDest": m.dest, "NextHop": m.vco,
                                             "Weight": m.weight})
            vgwlib.wait_gateway_status(api, m.gw, "active", timeout=60)
        if m.vco:
            api.call("DeleteVpnConnection", {"VpnConnectionId": m.vco})
            vgwlib.wait_gateway_status(api, m.gw, "active", timeout=60)
    for m in made.values():
        api.call("DeleteVpnGateway", {"VpnGatewayId": m.gw})
        vgwlib.wait_gateway_gone(api, m.gw, timeout=60)
    for cgw in cgws:
        api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})


def router_hosts(agents: dict) -> list:
    """The keys of the hosts whose agent runs a VPC router (this module has one VPC)."""
    listing = sh("ip", "netns", "list").stdout
    return [k for k, a in agents.items() if f"{a.prefix.rstrip('-')}r-" in listing]


def test_a_vpc_on_two_hosts_has_one_router_that_reaches_both_and_moves_with_its_gateway(cluster, site, lab):
    """Two gateways of one VPC land on the two hosts (each on the host holding fewer), each with a tunnel carrying
    one of the customer's networks and a route entry published into the VPC. A VPC host whose only route is the
    VPC's router (the block's first address) reaches both networks: one router, on one host, routes to the gateway
    on the other host as well. The router's host is powered off: its gateway moves to the other host, the router
    with it, and both networks are reached again."""
    api, agents, hosts, vpc = cluster["api"], cluster["agents"], cluster["hosts"], cluster["vpc"]
    router_host = behind_the_router(lab, vpc, "spreadhost", 70)
    cgws = [api.call("CreateCustomerGateway", {"IpAddress": CGW_IP, "Name": "spread"})["CustomerGatewayId"]]
    nets = {"spread1": ONPREM_NET, "spread2": ONPREM_NET2}
    made, off = {}, ""
    try:
        for name, net in nets.items():
            gw = api.call("CreateVpnGateway", {"VpcId": vpc.id, "Bandwidth": 10, "Name": name})["VpnGatewayId"]
            made[name] = m = SimpleNamespace(gw=gw, vco="", route=False, dest=net, weight=100)
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
            m.vco = api.call("CreateVpnConnection", {
                "VpnGatewayId": gw, "CustomerGatewayId": cgws[0], "LocalSubnet": "0.0.0.0/0",
                "RemoteSubnet": "0.0.0.0/0",
                "EffectImmediately": True, "IkeConfig": json.dumps({"IkeVersion": "ikev2"})})["VpnConnectionId"]
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
            api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": net, "NextHop": m.vco, "Weight": 100,
                                             "PublishVpc": True})
            m.route = True
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        # The customer: one strongSwan, a connection to each gateway, each for one of its networks.
        confs = []
        for name, net in nets.items():
            cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": made[name].vco})["VpnConnectionConfig"]
            confs.append(swanctl_from_download(dict(cfg, LocalSubnet=vpc.cidr, RemoteSubnet=net), name,
                                               encap=not site.kernel_esp))
        site.charon.load("\n".join(confs))
        for name in nets:
            site.charon.initiate(name)
        where = {name: holder(m.gw, agents) for name, m in made.items()}
        assert sorted(where.values()) == ["a", "b"], f"one VPC's gateways on two hosts: {where}"
        for dst in (ONPREM_HOST, ONPREM_HOST2):
            assert Lab.wait_ping(router_host, dst, 30), f"{dst} unreachable through the VPC's router\n" \
                f"{site.charon.log_tail()}\n{cluster['control'].tail()}"
        routers = router_hosts(agents)
        assert len(routers) == 1, f"one router for the VPC: {routers}"

        off = routers[0]
        other = next(k for k in agents if k != off)
        hosts[off].power_off(agents[off])
        assert wait_until(lambda: all(holder(m.gw, agents) == other for m in made.values()), 60), \
            f"{agents[other].tail()}\n{cluster['control'].tail()}"
        assert wait_until(lambda: router_hosts(agents) == [other], 60), router_hosts(agents)
        for dst in (ONPREM_HOST, ONPREM_HOST2):
            assert Lab.wait_ping(router_host, dst, 60), f"{dst} unreachable after the move\n{agents[other].tail()}"
    finally:
        if off:
            hosts[off].build()
            agents[off].start()
            assert wait_until(lambda: attached(cluster["control"]) == 2, 30), agents[off].tail()
        for name in nets:
            peer_down(site, name)
        remove_gateways(api, made, cgws)
        assert wait_until(lambda: router_hosts(agents) == [], 30), "the VPC's router outlives its gateways"


# A second customer gateway of this module's, in a namespace of its own.
CGW3_IP = "203.0.113.14"


def router_route_via(agents: dict, dest: str) -> str:
    """The next hop of the VPC router's preferred route to `dest`, wherever the router runs ('' without one)."""
    listing = [line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()]
    for a in agents.values():
        for ns in (n for n in listing if n.startswith(f"{a.prefix.rstrip('-')}r-")):
            rows = [r for r in json.loads(sh("ip", "-n", ns, "-j", "route", "show", dest).stdout or "[]")
                    if "gateway" in r]
            return min(rows, key=lambda r: r.get("metric", 0))["gateway"] if rows else ""
    return ""


def test_the_vpc_router_takes_the_standby_gateway_while_the_active_ones_tunnel_carries_nothing(cluster, site, lab):
    """Two gateways of one VPC, on the two hosts, publish one customer network: the first at weight 100 (active),
    the second at 0 (standby), each over a tunnel to a customer gateway of its own (two strongSwans; the customer
    answers through the standby's all along). A VPC host behind the VPC's router reaches the network through the
    active gateway. When the active tunnel stops carrying (its customer tears it down and no longer accepts it), the
    router takes the standby by itself, and the active one again once it carries; the interruption is measured."""
    api, agents, vpc = cluster["api"], cluster["agents"], cluster["vpc"]
    vpc_host = behind_the_router(lab, vpc, "standbyhost", 71)
    made, cgws = {}, []
    with contextlib.ExitStack() as cleanup:
        _, charon3 = cleanup.enter_context(second_customer_gateway(lab, site, vpc, "cgw3"))
        cleanup.callback(remove_gateways, api, made, cgws)
        cleanup.callback(peer_down, site, "sba")
        confs = {}
        for name, cgw_ip, weight in (("sba", CGW_IP, 100), ("sbb", CGW3_IP, 0)):
            cgws.append(api.call("CreateCustomerGateway", {"IpAddress": cgw_ip, "Name": name})["CustomerGatewayId"])
            gw = api.call("CreateVpnGateway", {"VpcId": vpc.id, "Bandwidth": 10, "Name": name})["VpnGatewayId"]
            made[name] = m = SimpleNamespace(gw=gw, vco="", route=False, dest=ONPREM_NET2, weight=weight)
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
            m.intranet = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": name})["IntranetIp"]
            m.vco = api.call("CreateVpnConnection", {
                "VpnGatewayId": gw, "CustomerGatewayId": cgws[-1], "LocalSubnet": "0.0.0.0/0",
                "RemoteSubnet": "0.0.0.0/0", "EffectImmediately": True, "EnableDpd": True,
                "IkeConfig": json.dumps({"IkeVersion": "ikev2"})})["VpnConnectionId"]
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
            api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": ONPREM_NET2, "NextHop": m.vco,
                                             "Weight": weight, "PublishVpc": True})
            m.route = True
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
            cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": m.vco})["VpnConnectionConfig"]
            confs[name] = swanctl_from_download(dict(cfg, LocalSubnet=vpc.cidr, RemoteSubnet=ONPREM_NET2), name,
                                                encap=not site.kernel_esp)
        active, standby = made["sba"], made["sbb"]
        assert holder(active.gw, agents) != holder(standby.gw, agents), "the two gateways share a host"
        site.charon.load(confs["sba"])
        charon3.load(confs["sbb"])
        site.charon.initiate("sba")
        charon3.initiate("sbb")
        logs = lambda: f"{site.charon.log_tail()}\n{charon3.log_tail()}\n{cluster['control'].tail()}"  # noqa: E731
        assert Lab.wait_ping(vpc_host, ONPREM_HOST2, 30), logs()
        assert wait_until(lambda: router_route_via(agents, ONPREM_NET2) == active.intranet, 30), \
            router_route_via(agents, ONPREM_NET2)

        # The active tunnel stops carrying: the router takes the standby gateway.
        pinger = Pinger(vpc_host, ONPREM_HOST2, cluster["workdir"] / "ping-standby.log")
        time.sleep(1)
        peer_down(site, "sba")
        assert wait_until(lambda: router_route_via(agents, ONPREM_NET2) == standby.intranet, 60), logs()
        assert Lab.wait_ping(vpc_host, ONPREM_HOST2, 30), logs()
        time.sleep(1)
        FIGURES.append(f"active gateway's tunnel torn down, the VPC's router takes the standby gateway on the other "
                       f"host: traffic stopped for {pinger.longest_gap():.1f} s")

        # It carries again: the router goes back to it.
        site.charon.load(confs["sba"])
        site.charon.initiate("sba")
        assert wait_until(lambda: router_route_via(agents, ONPREM_NET2) == active.intranet, 60), logs()
        assert Lab.wait_ping(vpc_host, ONPREM_HOST2, 30), logs()


def test_an_ha_gateways_halves_run_on_two_hosts_and_each_carries_while_the_other_cannot(cluster, site, lab):
    """An HA gateway (two public addresses) with a dual-tunnel connection, each tunnel to a customer gateway of its
    own: its halves run on the two hosts, each with one address and one tunnel, each at its own inside address. The
    VPC's router sends the customer's network to the master's half; when the master tunnel is torn down it takes the
    slave's half, and back. Then, with the customer answering through the master, the slave half's host is powered
    off: the traffic does not stop (the other host carries it), and the half moves to the surviving host."""
    api, agents, hosts, vpc = cluster["api"], cluster["agents"], cluster["hosts"], cluster["vpc"]
    vpc_host = behind_the_router(lab, vpc, "hahost", 72)
    gw, vco, off, cgws = "", "", "", []
    # The customer answers through the slave's tunnel until the last step.
    with second_customer_gateway(lab, site, vpc, "cgw3ha") as (_, charon3):
        try:
            for name, ip in (("ha-master", CGW_IP), ("ha-slave", CGW3_IP)):
                cgws.append(api.call("CreateCustomerGateway", {"IpAddress": ip, "Name": name})["CustomerGatewayId"])
            gw = api.call("CreateVpnGateway", {"VpcId": vpc.id, "Bandwidth": 10, "Name": "ha", "VSwitchId": "vsw-a",
                                               "DisasterRecoveryVSwitchId": "vsw-b"})["VpnGatewayId"]
            d = vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
            intranet = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "ha"})["IntranetIp"]
            tunnel = {"TunnelIkeConfig": {"IkeVersion": "ikev2"}}
            vco = api.call("CreateVpnConnection", {
                "VpnGatewayId": gw, "LocalSubnet": vpc.cidr, "RemoteSubnet": ONPREM_NET2, "EffectImmediately": True,
                "TunnelOptionsSpecification": [
                    dict(tunnel, Role="master", CustomerGatewayId=cgws[0]),
                    dict(tunnel, Role="slave", CustomerGatewayId=cgws[1])]})["VpnConnectionId"]
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
            second = f"{gw}.2"
            where = (holder(gw, agents), holder(second, agents))
            assert sorted(where) == ["a", "b"], f"the halves share a host: {where}"
            cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
            tunnels = cfg["TunnelsConfig"]["TunnelConfig"]
            assert [t["Local"] for t in tunnels] == [d["InternetIp"], d["DisasterRecoveryInternetIp"]], tunnels
            confs = [swanctl_from_download(dict(cfg, Local=t["Local"], Remote=t["Remote"], IkeConfig=t["IkeConfig"],
                                                IpsecConfig=t["IpsecConfig"], LocalSubnet=vpc.cidr,
                                                RemoteSubnet=ONPREM_NET2), name, encap=not site.kernel_esp)
                     for t, name in zip(tunnels, ("ham", "has"))]
            site.charon.load(confs[0])
            charon3.load(confs[1])
            options = lambda: api.call("DescribeVpnConnection", {"VpnConnectionId": vco})[  # noqa: E731
                "TunnelOptionsSpecification"]["TunnelOptions"]
            both_up = lambda: [o["Status"] for o in options()] == ["ipsec_sa_established"] * 2  # noqa: E731
            logs = lambda: f"{site.charon.log_tail()}\n{charon3.log_tail()}\n{cluster['control'].tail()}"  # noqa: E731
            assert wait_until(both_up, 60), f"{options()}\n{logs()}"
            assert Lab.wait_ping(vpc_host, ONPREM_HOST2, 30), logs()
            assert wait_until(lambda: router_route_via(agents, ONPREM_NET2) == intranet, 30), \
                router_route_via(agents, ONPREM_NET2)

            # The master tunnel is torn down: the router takes the slave's half, at its own inside address.
            pinger = Pinger(vpc_host, ONPREM_HOST2, cluster["workdir"] / "ping-ha-tunnel.log")
            time.sleep(1)
            peer_down(site, "ham")
            slave_via = lambda: router_route_via(agents, ONPREM_NET2) not in ("", intranet)  # noqa: E731
            assert wait_until(slave_via, 60), logs()
            assert Lab.wait_ping(vpc_host, ONPREM_HOST2, 30), logs()
            time.sleep(1)
            FIGURES.append(f"HA gateway on two hosts, master tunnel torn down: traffic stopped for "
                           f"{pinger.longest_gap():.1f} s")
            site.charon.load(confs[0])
            assert wait_until(lambda: router_route_via(agents, ONPREM_NET2) == intranet, 60), logs()
            assert wait_until(both_up, 60), options()

            # The customer answers through the master now; the slave half's host is powered off. The master's host
            # carries on without a pause, and the slave half moves to it (the only host left).
            sh("ip", "-n", site.onprem, "route", "del", vpc.cidr)
            assert Lab.wait_ping(vpc_host, ONPREM_HOST2, 30), logs()
            pinger = Pinger(vpc_host, ONPREM_HOST2, cluster["workdir"] / "ping-ha-host.log")
            time.sleep(1)
            off = holder(second, agents)
            hosts[off].power_off(agents[off])
            survivor = next(k for k in agents if k != off)
            assert wait_until(lambda: holder(second, agents) == survivor, 60), logs()
            assert wait_until(both_up, 60), f"{options()}\n{logs()}"
            gap = pinger.longest_gap()
            FIGURES.append(f"HA gateway on two hosts, the slave half's host powered off: traffic through the master "
                           f"stopped for {gap:.1f} s at most")
            assert gap < DEAD_AFTER_S / 2, f"the master's host stopped carrying for {gap:.1f} s"
        finally:
            if off:
                hosts[off].build()
                agents[off].start()
                assert wait_until(lambda: attached(cluster["control"]) == 2, 30), agents[off].tail()
            if vco:
                vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
                api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
            peer_down(site, "ham")
            if gw:
                vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
                api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
                vgwlib.wait_gateway_gone(api, gw, timeout=60)
            for cgw in cgws:
                api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})
            assert wait_until(lambda: router_hosts(agents) == [], 30), "the VPC's router outlives its gateways"
