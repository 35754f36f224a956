"""A gateway on a gateway host: `serve --dataplane agents` and one `openvgw agent` running the netns driver (on this
host; hosts of their own, in namespaces, are issue 12's next step). A tunnel created through Alibaba's SDK carries
packets between a real strongSwan customer and the VPC; the agent is killed with SIGKILL and restarted, and the
tunnel carries on (the daemons outlive it, the restarted agent adopts them).

The control plane and the agent have namespaces, a VPC, a bridge and an EIP pool of their own, so nothing here meets
the session's server (which would take another driver's gateways for leftovers)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import List, Union

import pytest

import vgwlib
from conftest import CGW_IP, ONPREM_NET, PUB_BRIDGE, REGION, Server, kill_namespaces
from lab import Lab, sh, wait_until
from test_dataplane import peer_down, peer_up

PREFIX = "ovgwe2a-"

def dataplane(vpc: str, bridge: str, cidr: str) -> str:
    """The regions and the one VPC the control plane and its agents share."""
    return f"""
[regions]
aliyun = ["{REGION}"]

[[vpcs]]
id = "{vpc}"
bridge = "{bridge}"
cidr = "{cidr}"
"""


def agents_vpc(n: int) -> SimpleNamespace:
    """VPC `n` of the agent modules (each has its own, so that none meets another's): its id, bridge, block, the
    VPC host's address and the configuration (`dataplane`)."""
    vpc = SimpleNamespace(id=f"vpc-e2e{n:020d}", bridge=f"ovgwt-vpc{n}", cidr=f"192.168.{n}0.0/24",
                          host=f"192.168.{n}0.50")
    vpc.dataplane = dataplane(vpc.id, vpc.bridge, vpc.cidr)
    return vpc


def api_of(control: Server, tenant: dict) -> vgwlib.Api:
    """Alibaba's SDK (v3 signatures) at `control`, as `tenant`."""
    client = vgwlib.make_tea_client(tenant["access_key_id"], tenant["access_key_secret"], control.port, "v3")
    return vgwlib.Api(client, "v3", tenant, control.port, REGION)


VPC_LAB = agents_vpc(3)
VPC, VPC_BRIDGE, VPC_CIDR, VPC_HOST, DATAPLANE = (VPC_LAB.id, VPC_LAB.bridge, VPC_LAB.cidr, VPC_LAB.host,
                                                  VPC_LAB.dataplane)


def control_config(listen: str, eip_pool: str, extra: str = "", vpc: str = DATAPLANE) -> str:
    """`serve --dataplane agents`: agents attach at `listen`; gateways get public addresses from `eip_pool`."""
    return f"""
[dataplane]
driver = "agents"
public_cidr = "203.0.113.0/24"
eip_pool = "{eip_pool}"

[dataplane.agents]
listen = "{listen}"
keepalive_s = 1
{extra}
""" + vpc


def agent_config(prefix: str = PREFIX, dataplane: str = DATAPLANE) -> str:
    return f"""
[dataplane]
namespace_prefix = "{prefix}"
public_bridge = "{PUB_BRIDGE}"
public_cidr = "203.0.113.0/24"
""" + dataplane


class Agent:
    """`openvgw agent` with the netns driver; `host_ns`: the namespace standing in for its host (it runs there with
    nsenter, which changes only the network namespace, so the gateway namespaces it makes are everyone's to see)."""

    def __init__(self, workdir: Path, control_url: Union[str, List[str]], ca: Path, name: str = "e2e-host",
                 prefix: str = PREFIX, dataplane: str = DATAPLANE, host_ns: str = ""):
        """`control_url`: the control plane, or each of its replicas (the agent attaches to all)."""
        self.name, self.prefix = name, prefix
        self.data = workdir / f"agent-{name}"
        self.config = workdir / f"agent-{name}.toml"
        self.config.write_text(agent_config(prefix, dataplane))
        self.log = workdir / f"agent-{name}.log"
        self.cmd = (["nsenter", f"--net=/run/netns/{host_ns}"] if host_ns else []) + [
            str(Path(os.environ.get("OPENVGW_BIN") or Path(__file__).resolve().parents[2] / "target" / "debug" /
                     "openvgw")),
            "agent", *[a for url in ([control_url] if isinstance(control_url, str) else control_url)
                       for a in ("--control", url)], "--ca", str(ca), "--name", name, "--dataplane", "netns",
            "--log-format", "text", "--data-dir", str(self.data), "--config", str(self.config)]
        self.proc = None

    def start(self, token: str = "") -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd + (["--token", token] if token else []), stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc:
            Lab.stop(self.proc, timeout=15)
        self.stop_guard()

    def guard_pid(self) -> int:
        """The PID of the agent's lease guard (`openvgw agent-guard`, which outlives the agent), 0 when none runs."""
        try:
            pid = int((self.data / "agent-guard.pid").read_text())
            return pid if b"agent-guard" in Path(f"/proc/{pid}/cmdline").read_bytes() else 0
        except (OSError, ValueError):
            return 0

    def stop_guard(self) -> None:
        pid = self.guard_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def attached(control: Server) -> int:
    n = control.metric("openvgw_agents_attached")
    return -1 if n is None else n


def join_token(control: Server, ca: Path) -> str:
    """A one-time join token from `openvgw admin agent token`; the agents' CA is written to `ca`."""
    return json.loads(control.command("admin", "agent", "token", "--ca-out", str(ca), "--json"))["token"]


def daemons(ns: str, name: str) -> list:
    """PIDs in `ns` whose command starts with `name` (processes that end while being listed are left out)."""
    found = []
    for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith(name):
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def plane(lab, site, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("agents")
    lab.bridge(VPC_BRIDGE)
    vpc_host = lab.netns("agentvpc")
    lab.attach(vpc_host, "eth0", VPC_BRIDGE, f"{VPC_HOST}/24")
    agent_port = vgwlib_port()
    (workdir / "control").mkdir()
    control = Server(workdir / "control", config=control_config(f"127.0.0.1:{agent_port}", "203.0.113.128/27"),
                     dataplane="agents")
    control.start()
    agent = None
    try:
        ca = workdir / "agents-ca.pem"
        agent = Agent(workdir, f"https://127.0.0.1:{agent_port}", ca)
        agent.start(join_token(control, ca))
        assert wait_until(lambda: attached(control) == 1, 30), f"{agent.tail()}\n{control.tail()}"
        api = api_of(control, control.tenant("agents"))
        yield {"api": api, "control": control, "agent": agent, "vpc_host": vpc_host}
    finally:
        if agent is not None:
            print(f"--- agent log ---\n{agent.tail()}")
        print(f"--- control plane log ---\n{control.tail()}")
        if agent is not None:
            agent.stop()
        control.stop()
        # The test deletes its gateway through the API; what a failure left goes here, by PID.
        kill_namespaces(PREFIX)


def vgwlib_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tunnel_through_a_gateway_on_an_agent_carries_packets_across_an_agent_restart(plane, site):
    api, agent, control = plane["api"], plane["agent"], plane["control"]
    gw = api.call("CreateVpnGateway", {"VpcId": VPC, "Bandwidth": 10, "Name": "on-agent"})["VpnGatewayId"]
    vco = None
    try:
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        intranet = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "on-agent"})["IntranetIp"]
        # The agent's driver made the gateway's namespace, under the agent's prefix.
        assert sh("ip", "netns", "list").stdout.count(f"{PREFIX}{gw}") == 1
        site.lab.route(plane["vpc_host"], ONPREM_NET, intranet)
        cgw = api.call("CreateCustomerGateway", {"IpAddress": CGW_IP, "Name": "onprem"})["CustomerGatewayId"]
        assert not Lab.ping(site.onprem, VPC_HOST), "reachable before any connection exists"
        vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": VPC_CIDR,
                                                "RemoteSubnet": ONPREM_NET,
                                                "IkeConfig": json.dumps({"IkeVersion": "ikev2"})})["VpnConnectionId"]
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        peer_up(site, api, vco, "agent")
        assert Lab.wait_ping(site.onprem, VPC_HOST, 30), f"{site.charon.log_tail()}\n{agent.tail()}"
        status = lambda: api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["Status"]  # noqa: E731
        assert wait_until(lambda: status() == "ipsec_sa_established", 30), status()

        # SIGKILL the agent: the gateway's daemons outlive it and keep carrying; the control plane sees it gone.
        agent.kill9()
        assert wait_until(lambda: attached(control) == 0, 30)
        assert Lab.ping(site.onprem, VPC_HOST), "the tunnel carries while its agent is away"
        # Back with the identity it kept: it adopts the running daemons (no second charon, the SA survives).
        agent.start()
        assert wait_until(lambda: attached(control) == 1, 30), agent.tail()
        assert Lab.ping(site.onprem, VPC_HOST), agent.tail()
        assert wait_until(lambda: status() == "ipsec_sa_established", 30), status()
        assert len(daemons(f"{PREFIX}{gw}", "charon")) == 1, agent.tail()
    finally:
        if vco:
            api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
            peer_down(site, "agent")
            # Deleting a connection puts the gateway in "updating"; Alibaba refuses to delete it until it is active.
            vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
        vgwlib.wait_gateway_gone(api, gw, timeout=60)
    # Deleting went through the agent: its namespace is gone.
    assert wait_until(lambda: f"{PREFIX}{gw}" not in sh("ip", "netns", "list").stdout, 30)
