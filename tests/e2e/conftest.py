"""End-to-end data-plane tests: `openvgw serve --dataplane netns` driven through Alibaba's SDK, with real
strongSwan / libreswan / OpenVPN peers in namespaces this suite creates. Needs root and the strongSwan/OpenVPN packages
(`scripts/test` installs them in CI); skipped otherwise. libreswan's tunnels need kernel ESP: they run in tests/vm
(tests/vm/dataplane-suite.sh). A failed test's report carries the namespaces' routes/XFRM state and the logs."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "interop"))

import vgwlib  # noqa: E402
from lab import Charon, Lab, kernel_has_esp, packet_trail, sh  # noqa: E402

REGION = "cn-hangzhou"
VPC = "vpc-e2e00000000000000000001"
VPC_CIDR = "192.168.10.0/24"
VPC_HOST = "192.168.10.50"
PUB_BRIDGE = "ovgwt-pub"
# Gateways of this suite live in namespaces with their own prefix, so teardown can find every one of them.
NS_PREFIX = "ovgwe2e-"
VPC_BRIDGE = "ovgwt-vpc1"
CGW_IP = "203.0.113.10"
ONPREM_NET, ONPREM_HOST, ONPREM_GW = "172.16.20.0/24", "172.16.20.10", "172.16.20.1"
ONPREM_NET2, ONPREM_HOST2 = "172.16.30.0/24", "172.16.30.10"
# The VPC the Huawei tests use: Huawei's ids are UUIDs, and a bridge of its own keeps its gateways apart.
HW_VPC = "4b8a2c1e-0d3f-4a6b-9c7e-5f1a2b3c4d5e"
HW_VPC_BRIDGE = "ovgwt-vpc2"
HW_VPC_CIDR = "192.168.20.0/24"

CONFIG = f"""
[regions]
aliyun = ["{REGION}"]

[dataplane]
driver = "netns"
namespace_prefix = "{NS_PREFIX}"
public_bridge = "{PUB_BRIDGE}"
public_cidr = "203.0.113.0/24"
eip_pool = "203.0.113.64/26"

[[vpcs]]
id = "{VPC}"
bridge = "{VPC_BRIDGE}"
cidr = "{VPC_CIDR}"

[[vpcs]]
id = "{HW_VPC}"
bridge = "{HW_VPC_BRIDGE}"
cidr = "{HW_VPC_CIDR}"
"""


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("/usr/sbin/charon-systemd", "swanctl", "openvpn", "ping", "nft"):
        if not (Path(tool).exists() or shutil.which(tool)):
            return f"needs {tool}"
    return ""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "kernel_ipsec: its outcome depends on the kernel's IPsec (policies, ESP, XFRM interfaces, trap "
        "acquires): the VM step runs it again on Debian's stock kernel (tests/vm/dataplane-suite.sh, -m kernel_ipsec); "
        "what only OpenVPN or the API decides runs on the host alone")


def pytest_collection_modifyitems(config, items):
    why = _missing()
    if why and os.environ.get("CI"):
        # scripts/test runs this suite as root after installing every tool: a gap there is a failure.
        raise pytest.UsageError(f"data-plane tests {why} (CI: the test command provides it)")
    if why:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"data-plane tests {why}"))


class Server:
    def __init__(self, workdir: Path, extra_config: str = "", config: str = CONFIG, dataplane: str = "netns",
                 store: str = "", env: Optional[Dict[str, str]] = None):
        """`store`: a PostgreSQL URL (`--store`, for replicas) instead of the data dir's SQLite; `env`: added to the
        environment of the server and of its commands (a replica's `OPENVGW_MASTER_KEY`)."""
        self.workdir = workdir
        self.store_args = ["--store", store] if store else []
        self.env = {**os.environ, **(env or {})}
        self.data = workdir / "data"
        self.config = workdir / "config.toml"
        self.config.write_text(config + extra_config)
        self.dataplane = dataplane
        self.log = workdir / "server.log"
        self.bin = Path(os.environ.get("OPENVGW_BIN") or REPO / "target" / "debug" / "openvgw")
        self.port = 0
        self.proc = None

    def start(self) -> None:
        # A restart keeps the port: clients hold the endpoint.
        self.port = self.port or vgwlib_free_port()
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [str(self.bin), "serve", "--dataplane", self.dataplane, "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data), "--config", str(self.config), *self.store_args],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True, env=self.env)
        out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"openvgw exited: {self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"openvgw did not come up: {self.tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def command(self, *args: str) -> str:
        """An `openvgw` command on this server's data dir, config and store; its output."""
        return subprocess.run([str(self.bin), *args, "--data-dir", str(self.data), "--config", str(self.config),
                               *self.store_args], capture_output=True, text=True, check=True, env=self.env).stdout

    def tenant(self, name: str) -> dict:
        return json.loads(self.command("tenant", "create", "--name", name).strip().splitlines()[-1])

    def metric(self, name: str) -> Optional[int]:
        """An unlabelled gauge from /metrics (None when the server does not answer or has no such line)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                m = re.search(rf"^{name} (\d+)$", r.read().decode(), re.M)
        except OSError:
            return None
        return int(m.group(1)) if m else None
        return json.loads(r.stdout.strip().splitlines()[-1])

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def vgwlib_free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Site:
    """The shared topology: a VPC host on the VPC bridge, an on-prem site behind a customer gateway."""

    def __init__(self, lab: Lab, kernel_esp: bool):
        self.lab = lab
        self.kernel_esp = kernel_esp
        lab.bridge(PUB_BRIDGE)
        lab.bridge(VPC_BRIDGE)
        self.vpc_host = lab.netns("vpchost")
        lab.attach(self.vpc_host, "eth0", VPC_BRIDGE, f"{VPC_HOST}/24")
        self.cgw = lab.netns("cgw")
        lab.attach(self.cgw, "pub0", PUB_BRIDGE, f"{CGW_IP}/24")
        self.onprem = lab.netns("onprem")
        lab.wire(self.cgw, "lan0", f"{ONPREM_GW}/24", self.onprem, "eth0", f"{ONPREM_HOST}/24")
        sh("ip", "-n", self.cgw, "addr", "add", "172.16.30.1/24", "dev", "lan0")
        sh("ip", "-n", self.onprem, "addr", "add", f"{ONPREM_HOST2}/24", "dev", "eth0")
        sh("ip", "-n", self.onprem, "route", "add", "default", "via", ONPREM_GW)
        lab.forward(self.cgw)
        self.charon = Charon(lab, self.cgw, "cgw-charon", kernel_esp)

    def route_vpc_to_gateway(self, intranet_ip: str, *nets: str) -> None:
        """The VPC's route table: remote networks via the gateway's inside address."""
        for n in nets:
            self.lab.route(self.vpc_host, n, intranet_ip)


def become_subreaper() -> None:
    """Daemons outlive a restarted openvgw; make them our orphans (not init's) so we can reap them."""
    import ctypes
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


_WORKDIR: list = []


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("e2e")
    _WORKDIR.append(d)
    return d


def dump_dataplane() -> str:
    """Namespaces (links, routes, rules, XFRM state/policies without keys) and the tails of openvgw's, the
    gateways' and the peers' logs: what a failed test looked like, also where nothing survives the run (the VM)."""
    out = []
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        if not ns.startswith(("ovgwt", NS_PREFIX, NS_PREFIX.rstrip("-") + "r-")):
            continue
        out.append(f"======== namespace {ns}")
        for args in (["-br", "addr"], ["route", "show", "table", "all"], ["rule"], ["-s", "xfrm", "state"],
                     ["-s", "xfrm", "policy"]):
            r = sh("ip", "-n", ns, *args, check=False)
            out.append(f"--- ip {' '.join(args)}")
            out += [l for l in (r.stdout + r.stderr).splitlines()
                    if not l.lstrip().startswith(("auth", "enc ", "aead", "comp "))
                    and not l.lstrip().startswith(("lifetime", "limit:", "expire"))]
    if _WORKDIR:
        logs = sorted(p for p in _WORKDIR[0].rglob("*") if p.is_file() and p.suffix in (".log", ".out"))
        for log in logs:
            lines = log.read_text(errors="replace").splitlines()
            out.append(f"======== {log} (last 40 of {len(lines)} lines)")
            out += lines[-40:]
    return "\n".join(out)


def unreachable(src_ns: str, dst: str, timeout: float, path: List[str]) -> str:
    """"" once `src_ns` pings `dst` within `timeout` s; else where the packets stop: the counters that moved in the
    namespaces along `path` during a burst of pings (the report adds the whole data plane after it)."""
    if Lab.wait_ping(src_ns, dst, timeout):
        return ""
    present = set(sh("ip", "netns", "list", check=False).stdout.split())
    trail = packet_trail([ns for ns in path if ns in present], lambda: [Lab.ping(src_ns, dst) for _ in range(5)])
    # Whether it is a delay or a path that stays broken (the test fails either way).
    t0 = time.monotonic()
    later = (f"reachable {time.monotonic() - t0:.0f} s later" if Lab.wait_ping(src_ns, dst, 60)
             else "still unreachable 60 s later")
    return f"unreachable within {timeout:.0f} s, {later}; {trail}"


def assert_reachable(src_ns: str, dst: str, timeout: float, path: List[str], log=lambda: "") -> None:
    """Fails with where the packets stop ([`unreachable`]) and `log()` (a peer's log tail) unless `src_ns` pings
    `dst` within `timeout` s."""
    why = unreachable(src_ns, dst, timeout, path)
    assert not why, f"{why}\n{log()}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call") and os.geteuid() == 0:
        try:
            report.sections.append(("data plane at failure", dump_dataplane()))
        except Exception as e:  # diagnostics must not mask the failure
            report.sections.append(("data plane at failure", f"(dump failed: {e})"))


@pytest.fixture(scope="session")
def kernel_esp() -> bool:
    return kernel_has_esp()


@pytest.fixture(scope="session")
def lab(workdir):
    lab = Lab(workdir)
    yield lab
    lab.close()


@pytest.fixture(scope="session")
def server(workdir, lab):
    # The lab creates (and later removes) the bridges; the driver only joins them.
    lab.bridge(PUB_BRIDGE)
    lab.bridge(VPC_BRIDGE)
    lab.bridge(HW_VPC_BRIDGE)
    become_subreaper()
    srv = Server(workdir)
    srv.start()
    yield srv
    srv.stop()
    remove_gateway_namespaces()
    reap_orphans()


def xfrm_if(tunnel_id: str) -> str:
    """A gateway's XFRM interface of a route-based tunnel, named as the driver names it."""
    import hashlib
    return "xfrm" + hashlib.sha256(tunnel_id.encode()).hexdigest()[:8]


def preferred_device(gateway_id: str, dest: str) -> str:
    """The device of the gateway's best (lowest-metric) route to `dest`."""
    rows = json.loads(sh("ip", "-n", f"{NS_PREFIX}{gateway_id}", "-j", "route", "show", dest).stdout or "[]")
    rows = [r for r in rows if r.get("type", "unicast") == "unicast" and "dev" in r]
    return min(rows, key=lambda r: r.get("metric", 0))["dev"] if rows else ""


def vpc_router_ns(vpc_id: str) -> str:
    """The namespace of a VPC's router, named as the driver names it (outside the gateway prefix)."""
    import hashlib
    token = hashlib.sha256(f"{NS_PREFIX}/{vpc_id}".encode()).hexdigest()[:8]
    return f"{NS_PREFIX.rstrip('-')}r-{token}"


def kill_namespaces(prefix: str) -> None:
    """What a netns driver made under `prefix` (gateways and VPC routers): their daemons by PID, then the
    namespaces."""
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        if ns.startswith((prefix, prefix.rstrip("-") + "r-")):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)


def remove_gateway_namespaces() -> None:
    """Last resort after a failed run: gateways the API could not delete."""
    kill_namespaces(NS_PREFIX)


@pytest.fixture(scope="session")
def api(server):
    t = server.tenant("e2e")
    api = vgwlib.Api(vgwlib.make_tea_client(t["access_key_id"], t["access_key_secret"], server.port, "v3"),
                     "v3", t, server.port, REGION)
    yield api
    # Delete whatever a failed test left, through the API, so the driver tears it down properly.
    for g in api.call("DescribeVpnGateways", {"PageSize": 50})["VpnGateways"]["VpnGateway"]:
        try:
            api.call("DeleteVpnGateway", {"VpnGatewayId": g["VpnGatewayId"]})
            vgwlib.wait_gateway_gone(api, g["VpnGatewayId"], timeout=60)
        except Exception as e:  # keep cleaning the rest
            print(f"cleanup of {g['VpnGatewayId']} failed: {e}", file=sys.stderr)


@pytest.fixture(scope="session")
def site(lab, kernel_esp, server):
    return Site(lab, kernel_esp)


@pytest.fixture(scope="session")
def customer_gateway(api, site):
    return api.call("CreateCustomerGateway", {"IpAddress": CGW_IP, "Name": "onprem"})["CustomerGatewayId"]


# What tests measured (how long traffic stopped, ...): printed at the end of the run, never asserted.
FIGURES: List[str] = []


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures measured")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    if os.geteuid() != 0 or _missing():
        return
    left = [l for l in sh("ip", "netns", "list", check=False).stdout.splitlines() if l.startswith(("ovgwt", NS_PREFIX))]
    if left:
        print(f"\nleft-over namespaces after the e2e suite: {left}", file=sys.stderr)
        session.exitstatus = 1
