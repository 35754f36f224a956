"""Gateways on other hosts: `serve --dataplane agents` with `openvgw agent` processes attached over mutual TLS.

The agents run the simulated driver here (the netns driver behind an agent is the e2e suite's business); what is
proven is the path: join tokens from `openvgw admin agent token`, gateways created through Alibaba's SDK placed on
the agents and brought to `active` by them, an agent killed with SIGKILL leaving its gateways with it until it comes
back with the identity it kept, revocation, and a spent token.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

import ownserver
import vgwlib

AGENT_CONFIG = """
[dataplane.simulated]
provision_delay_ms = 100
apply_delay_ms = 20
"""


def control_config(agent_port: int, dead_after_s: int) -> str:
    return f"""
[dataplane]
driver = "agents"
eip_pool = "198.18.64.0/24"

[dataplane.agents]
listen = "127.0.0.1:{agent_port}"
call_timeout_s = 10
keepalive_s = 1
dead_after_s = {dead_after_s}
"""


def admin(srv: ownserver.OwnServer, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(srv.bin), "admin", "agent", *args, "--data-dir", str(srv.data_dir), "--config", str(srv.config_path),
           *srv.store_args()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def admin_json(srv: ownserver.OwnServer, *args: str):
    r = admin(srv, *args)
    assert r.returncode == 0, f"admin agent {args} exited {r.returncode}: {r.stderr}"
    return json.loads(r.stdout)


class Agent:
    """One `openvgw agent` process with a data directory of its own (its key and certificate live there)."""

    def __init__(self, srv: ownserver.OwnServer, workdir: Path, name: str, ca: Path,
                 controls: Optional[List[str]] = None):
        """`controls`: the agents' ports of every replica (default: `srv`'s)."""
        self.srv, self.name, self.ca = srv, name, ca
        self.controls = controls or [f"https://127.0.0.1:{srv.agent_port}"]
        self.data_dir = workdir / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / f"{name}.toml"
        self.config.write_text(AGENT_CONFIG)
        self.log = workdir / f"{name}.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, token: Optional[str] = None) -> subprocess.Popen:
        cmd = [str(self.srv.bin), "agent", *[x for url in self.controls for x in ("--control", url)], "--ca",
               str(self.ca), "--name", self.name, "--dataplane", "simulated", "--log-format", "text",
               "--data-dir", str(self.data_dir), "--config", str(self.config)]
        if token:
            cmd += ["--token", token]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        return self.proc

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        ownserver.stop_process(self.proc, grace=5)

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def scrape(srv: ownserver.OwnServer) -> Dict[str, int]:
    """The agents' gauges: 'attached' and each agent's gateways."""
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    m = re.search(r"^openvgw_agents_attached (\d+)$", text, re.M)
    assert m, "no openvgw_agents_attached in /metrics"
    out["attached"] = int(m.group(1))
    for agent, n in re.findall(r'^openvgw_agent_gateways\{agent="([^"]+)"\} (\d+)$', text, re.M):
        out[agent] = int(n)
    m = re.search(r"^openvgw_agent_gateways_moved_total (\d+)$", text, re.M)
    assert m, "no openvgw_agent_gateways_moved_total in /metrics"
    out["moved"] = int(m.group(1))
    return out


def port(srv: ownserver.OwnServer) -> Tuple[int, int]:
    """The agents' port: (connections open, connections refused so far)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = [re.search(rf"^{name} (\d+)$", text, re.M) for name in
             ("openvgw_agent_port_connections_open", "openvgw_agent_port_connections_refused_total")]
    assert all(found), f"no agents' port figures in /metrics: {found}"
    return int(found[0].group(1)), int(found[1].group(1))


def health(srv: ownserver.OwnServer) -> Dict[str, int]:
    """openvgw_agent_up per agent: 1 attached, 0 away."""
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {agent: int(n) for agent, n in re.findall(r'^openvgw_agent_up\{agent="([^"]+)"\} (\d+)$', text, re.M)}


def console_dataplane(srv: ownserver.OwnServer) -> str:
    """The console's data-plane page as an operator (created here with `openvgw admin operator create`) sees it."""
    import http.cookiejar
    import urllib.parse

    name = f"ops-{time.monotonic_ns()}"
    r = subprocess.run([str(srv.bin), "admin", "operator", "create", "--name", name, "--data-dir", str(srv.data_dir),
                        "--config", str(srv.config_path), *srv.store_args()], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    password = re.search(r"^password: (\S+)$", r.stdout, re.M).group(1)
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://127.0.0.1:{srv.port}/console"
    page = browser.open(f"{base}/sign-in", timeout=10).read().decode()
    pre = re.search(r'name="pre" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"kind": "operator", "id": name, "secret": password, "pre": pre}).encode()
    landed = browser.open(f"{base}/sign-in", data=form, timeout=10)
    assert landed.geturl().endswith("/console/gateways"), landed.geturl()
    return browser.open(f"{base}/dataplane", timeout=10).read().decode()


def until(what: str, check, timeout: float = 30.0, detail=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{detail()}")
        time.sleep(0.1)


@pytest.fixture
def control_plane(tmp_path_factory):
    """Starts control planes (`dead_after_s` as given) and stops them and their agents after the test, by PID."""
    started = []

    def start(dead_after_s: int) -> ownserver.OwnServer:
        port = ownserver.free_port()
        srv = ownserver.started(tmp_path_factory, "agents-control", control_config(port, dead_after_s))
        srv.agent_port = port
        srv.agents = []
        started.append(srv)
        return srv

    yield start
    for srv in started:
        for a in srv.agents:
            print(f"--- {a.name} log tail ---\n{a.tail()}")
            a.stop()
        ownserver.finish(srv)


def tenant_api(srv: ownserver.OwnServer, t: Dict) -> vgwlib.Api:
    return vgwlib.Api(vgwlib.make_tea_client(t["access_key_id"], t["access_key_secret"], srv.port, "v3"), "v3", t,
                      srv.port)


def two_agents(srv: ownserver.OwnServer, tmp_path: Path):
    """host-a and host-b joined and attached: (a, b, a's id, b's id)."""
    ca = tmp_path / "agents-ca.pem"
    tokens = [admin_json(srv, "token", "--ca-out", str(ca), "--json")["token"] for _ in range(2)]
    a, b = Agent(srv, tmp_path, "host-a", ca), Agent(srv, tmp_path, "host-b", ca)
    srv.agents += [a, b]
    a.start(tokens[0])
    b.start(tokens[1])
    until("both agents attached", lambda: scrape(srv)["attached"] == 2, detail=lambda: f"{a.tail()}\n{b.tail()}")
    # Each holds its session's connection on the agents' port; the joins' connections are closed.
    until("the sessions' connections alone open", lambda: port(srv) == (2, 0))
    joined = {x["name"]: x["id"] for x in admin_json(srv, "list", "--json")}
    return a, b, joined["host-a"], joined["host-b"]


def test_gateways_land_on_agents_and_stay_with_them_across_kills_and_restarts(control_plane, tmp_path):
    srv = control_plane(3600)
    ca = tmp_path / "agents-ca.pem"
    tokens = [admin_json(srv, "token", "--ca-out", str(ca), "--json")["token"] for _ in range(2)]
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    a, b = Agent(srv, tmp_path, "host-a", ca), Agent(srv, tmp_path, "host-b", ca)
    srv.agents += [a, b]
    a.start(tokens[0])
    b.start(tokens[1])
    logs = lambda: f"{a.tail()}\n{b.tail()}\n{srv.tail()}"  # noqa: E731
    until("both agents attached", lambda: scrape(srv)["attached"] == 2, detail=logs)
    joined = {x["name"]: x for x in admin_json(srv, "list", "--json")}
    assert sorted(joined) == ["host-a", "host-b"], joined
    assert all(x["revoked_at"] is None and x["id"].startswith("agt-") for x in joined.values()), joined
    a_id, b_id = joined["host-a"]["id"], joined["host-b"]["id"]

    t = srv.create_tenant("agents")
    api = vgwlib.Api(vgwlib.make_tea_client(t["access_key_id"], t["access_key_secret"], srv.port, "v3"), "v3", t,
                     srv.port)
    gateways = [vgwlib.create_gateway(api, wait=False)[0] for _ in range(4)]
    for gw in gateways:
        vgwlib.wait_gateway_status(api, gw, "active", timeout=30)
    assert scrape(srv) == {"attached": 2, a_id: 2, b_id: 2, "moved": 0}

    # SIGKILL: the session ends with the process; its gateways stay placed on it (their state is not lost with a
    # session), and what is created meanwhile goes to the agent that is there.
    a.kill9()
    until("host-a's session closed", lambda: scrape(srv)["attached"] == 1, detail=logs)
    extra, _ = vgwlib.create_gateway(api, wait=False)
    vgwlib.wait_gateway_status(api, extra, "active", timeout=30)
    # Away, not dead: its gateways stay placed on it, as the metrics and the operators' console show.
    assert scrape(srv) == {"attached": 1, a_id: 2, b_id: 3, "moved": 0}
    assert health(srv) == {a_id: 0, b_id: 1}
    page = console_dataplane(srv)
    hosts = page[page.index('id="hosts"'):page.index('id="dataplane"')]
    for agent, state in ((a_id, "away for"), (b_id, "attached")):
        row = hosts[hosts.index(agent):]
        assert state in row[:row.index("</tr>")], row[:400]
    for gw in gateways:
        row = page[page.index(gw):]
        assert a_id in row[:row.index("</tr>")] or b_id in row[:row.index("</tr>")], row[:400]

    # Back with the identity it kept (no token this time): the same agent, holding its two gateways again.
    a.start()
    until("host-a attached again", lambda: health(srv).get(a_id) == 1, detail=logs)
    assert scrape(srv) == {"attached": 2, a_id: 2, b_id: 3, "moved": 0}

    # Placements are stored: a restarted control plane sends each gateway to the agent that has it, and the agents
    # (which keep retrying) attach again by themselves.
    held = {x["id"]: sorted(x["gateways"]) for x in admin_json(srv, "list", "--json")}
    assert (len(held[a_id]), len(held[b_id])) == (2, 3), held
    assert sorted(held[a_id] + held[b_id]) == sorted(gateways + [extra]), held
    srv.stop()
    srv.start()
    until("both agents attached to the restarted control plane", lambda: scrape(srv).get("attached") == 2,
          detail=logs)
    assert scrape(srv) == {"attached": 2, a_id: 2, b_id: 3, "moved": 0}
    api = vgwlib.Api(vgwlib.make_tea_client(t["access_key_id"], t["access_key_secret"], srv.port, "v3"), "v3", t,
                     srv.port)
    for gw in gateways + [extra]:
        assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active", gw

    # Revoked: from its next attach on it is turned away.
    assert admin_json(srv, "revoke", "--id", a_id) == {"agent_id": a_id, "revoked": True}
    assert next(x for x in admin_json(srv, "list", "--json") if x["id"] == a_id)["revoked_at"] is not None
    a.kill9()
    until("host-a's session closed", lambda: scrape(srv)["attached"] == 1, detail=logs)
    a.start()
    until("host-a refused", lambda: "revoked" in a.log.read_text(errors="replace"), detail=logs)
    assert scrape(srv)["attached"] == 1
    r = admin(srv, "revoke", "--id", a_id)
    assert r.returncode != 0, "revoking twice is refused"

    # A spent token joins nobody: the new host says why and exits.
    c = Agent(srv, tmp_path, "host-c", ca)
    srv.agents.append(c)
    proc = c.start(tokens[0])
    assert proc.wait(timeout=30) != 0
    assert "unknown, used or expired" in c.log.read_text(errors="replace"), c.tail()
    assert not (c.data_dir / "agent-identity.json").exists()



def test_the_gateways_of_a_dead_agent_move_to_another_and_stay_active(control_plane, tmp_path):
    srv = control_plane(2)
    a, b, a_id, b_id = two_agents(srv, tmp_path)
    logs = lambda: f"{a.tail()}\n{b.tail()}\n{srv.tail()}"  # noqa: E731
    t = srv.create_tenant("failover")
    api = tenant_api(srv, t)
    gateways = [vgwlib.create_gateway(api, wait=False)[0] for _ in range(4)]
    for gw in gateways:
        vgwlib.wait_gateway_status(api, gw, "active", timeout=30)
    assert scrape(srv) == {"attached": 2, a_id: 2, b_id: 2, "moved": 0}
    on_a = next(x["gateways"] for x in admin_json(srv, "list", "--json") if x["id"] == a_id)

    # SIGKILL host-a: 2 s later it is dead, its two gateways are placed on host-b, which the reconciler finds
    # without them and applies them to; the API shows them active throughout.
    a.kill9()
    until("host-a's gateways moved", lambda: scrape(srv) == {"attached": 1, b_id: 4, "moved": 2}, detail=logs)
    held = {x["id"]: x["gateways"] for x in admin_json(srv, "list", "--json")}
    assert (held[a_id], sorted(held[b_id])) == ([], sorted(gateways)), held
    for gw in gateways:
        assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active", gw
    # The reconciler found each moved gateway missing where it now is, and applied it there.
    reapplied = lambda: all(  # noqa: E731
        any(gw in line and "re-applying" in line for line in srv.stderr_path.read_text().splitlines()) for gw in on_a)
    until("the moved gateways applied on host-b", reapplied, detail=logs)

    # host-a comes back (its simulated data plane started empty): it holds nothing and new gateways go to it.
    a.start()
    until("host-a attached again", lambda: scrape(srv)["attached"] == 2, detail=logs)
    assert scrape(srv) == {"attached": 2, a_id: 0, b_id: 4, "moved": 2}
    extra, _ = vgwlib.create_gateway(api)
    assert scrape(srv)[a_id] == 1, "the agent holding the fewest gets the next gateway"
    api.call("DeleteVpnGateway", {"VpnGatewayId": extra})
    vgwlib.wait_gateway_gone(api, extra, timeout=30)
    assert scrape(srv)[a_id] == 0
