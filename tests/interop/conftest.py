"""Session fixtures: run `openvgw serve` on loopback, create tenants, hand out SDK clients.

* main server: fast simulated data plane (provision 300 ms, apply 50 ms), roomy quotas;
* aux server (started lazily, only for lifecycle/quota tests): small quotas and slower
  timings so the transitional states (init/provisioning/updating/deleting) are observable
  and quota tests cannot starve the rest of the suite.

Binary: $OPENVGW_BIN or <repo>/target/debug/openvgw.

Store: SQLite in each server's data dir, or, with $OPENVGW_TEST_STORE_URL (a PostgreSQL server URL, e.g.
postgres://postgres@127.0.0.1:5432/postgres), a new database there per server, passed as `--store` to the
server and every admin command (and written into its config for commands the tests run themselves).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import vgwlib  # noqa: E402
import hwlib  # noqa: E402
import ownserver  # noqa: E402
import nodeapi  # noqa: E402

REPO = HERE.parent.parent
MAIN_EIP_POOL = "198.18.0.0/20"
AUX_EIP_POOL = "198.19.0.0/24"
REGIONS = [vgwlib.DEFAULT_REGION, vgwlib.OTHER_REGION, vgwlib.THIRD_REGION]

MAIN_CONFIG = f"""
[regions]
aliyun = {json.dumps(REGIONS)}
huawei = {json.dumps(hwlib.REGIONS)}

[quotas]
vpn_gateways_per_region = 500
customer_gateways_per_region = 500
connections_per_gateway = 10
route_entries_per_gateway = 50
tags_per_resource = 20
ssl_client_certs_per_server = 1000

[dataplane]
driver = "simulated"
eip_pool = "{MAIN_EIP_POOL}"

[dataplane.simulated]
provision_delay_ms = 300
apply_delay_ms = 50
"""

AUX_QUOTAS = dict(vpn_gateways_per_region=2, customer_gateways_per_region=2, connections_per_gateway=1,
                  route_entries_per_gateway=2, tags_per_resource=20, ssl_client_certs_per_server=2)
AUX_PROVISION_MS = 800
AUX_APPLY_MS = 800

AUX_CONFIG = f"""
[regions]
aliyun = {json.dumps(REGIONS)}
huawei = {json.dumps(hwlib.REGIONS)}

[quotas]
{chr(10).join(f"{k} = {v}" for k, v in AUX_QUOTAS.items())}

[dataplane]
driver = "simulated"
eip_pool = "{AUX_EIP_POOL}"

[dataplane.simulated]
provision_delay_ms = {AUX_PROVISION_MS}
apply_delay_ms = {AUX_APPLY_MS}
"""

_SERVERS: List["Server"] = []


STORE_URL_ENV = "OPENVGW_TEST_STORE_URL"


def new_database(prefix: str, base: Optional[str] = None) -> Optional[str]:
    """A new empty PostgreSQL database on `base`'s server (default $OPENVGW_TEST_STORE_URL; its URL), or None
    for SQLite."""
    base = base or os.environ.get(STORE_URL_ENV)
    if not base:
        return None
    name = f"ovgw_{prefix}_{os.getpid()}_{vgwlib.uid()}".lower().replace("-", "_")
    return ownserver.create_database(base, name)


class Server:
    def __init__(self, name: str, workdir: Path, config: str, eip_pool: str, store_url: Optional[str] = None):
        self.name = name
        self.workdir = workdir
        # PostgreSQL when the suite runs on it: a database of this server's own unless one is given (replicas).
        self.store_url = store_url or new_database(name)
        if self.store_url:
            config = f"{config}\n[store]\nurl = {json.dumps(self.store_url)}\n"
        self.data_dir = workdir / "data"
        self.config_path = workdir / "config.toml"
        self.stderr_path = workdir / "server.stderr"
        self.eip_pool = eip_pool
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config)
        self.bin = ownserver.binary()

    # -- process ---------------------------------------------------------------------
    def start(self) -> None:
        if not self.bin.exists():
            pytest.fail(f"openvgw binary not found at {self.bin} (set OPENVGW_BIN or `cargo build -p openvgw`)",
                        pytrace=False)
        last_err = ""
        for _attempt in range(3):
            self.port = ownserver.free_port()
            self.proc = ownserver.launch(self.bin, self.port, self.data_dir, self.config_path, self.store_args(),
                                         self.stderr_path)
            if ownserver.wait_healthy(self.proc, self.port, 30.0):
                return
            last_err = self.tail()
            self.stop()
        pytest.fail(f"{self.name}: openvgw did not serve /healthz within 30 s\n{last_err}", pytrace=False)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        ownserver.stop_process(proc, grace=5)

    def store_args(self) -> List[str]:
        return ["--store", self.store_url] if self.store_url else []

    def kill(self) -> None:
        """SIGKILL: no clean shutdown (no lease released, nothing flushed beyond what was committed)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def tail(self, n: int = 30) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(lines[-n:])

    # -- tenants ---------------------------------------------------------------------
    def run_cli(self, *args: str) -> subprocess.CompletedProcess:
        """Runs an operator command (another process) on this server's store."""
        cmd = [str(self.bin), *args, "--data-dir", str(self.data_dir), "--config", str(self.config_path),
               *self.store_args()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    def cli(self, *args: str) -> Dict[str, Any]:
        """Runs an operator command that must succeed; returns its last JSON line."""
        r = self.run_cli(*args)
        assert r.returncode == 0, f"`{' '.join(args)}` exited {r.returncode}: {r.stderr}\n{r.stdout}"
        lines = [l for l in r.stdout.splitlines() if l.strip().startswith("{")]
        assert lines, f"`{' '.join(args)}` printed no JSON line: {r.stdout!r}"
        return json.loads(lines[-1])

    def create_tenant(self, name: str) -> Dict[str, Any]:
        t = self.cli("tenant", "create", "--name", name)
        for key in ("tenant_id", "access_key_id", "access_key_secret", "projects"):
            assert key in t, f"`tenant create` JSON lacks {key!r}: {t}"
        t["name"] = name
        return t

    def api(self, tenant: Dict[str, Any], mode: str = "v3", region: str = vgwlib.DEFAULT_REGION) -> vgwlib.Api:
        client = vgwlib.make_tea_client(tenant["access_key_id"], tenant["access_key_secret"], self.port, mode)
        return vgwlib.Api(client, mode, tenant, self.port, region)

    def legacy(self, tenant: Dict[str, Any]) -> vgwlib.Legacy:
        return vgwlib.Legacy(tenant["access_key_id"], tenant["access_key_secret"], self.port)


def _start(tmp_path_factory, name: str, config: str, pool: str) -> Server:
    srv = Server(name, tmp_path_factory.mktemp(name), config, pool)
    _SERVERS.append(srv)
    try:
        srv.start()
    except BaseException:
        srv.stop()
        raise
    return srv


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = _start(tmp_path_factory, "openvgw-main", MAIN_CONFIG, MAIN_EIP_POOL)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def aux_server(tmp_path_factory):
    srv = _start(tmp_path_factory, "openvgw-aux", AUX_CONFIG, AUX_EIP_POOL)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tenant_a(server):
    return server.create_tenant("A")


@pytest.fixture(scope="session")
def tenant_b(server):
    return server.create_tenant("B")


@pytest.fixture(scope="session", params=["v3", "v2", "node-v3", "node-pop"])
def tea(request, server, tenant_a) -> vgwlib.Api:
    """Tenant A through Alibaba's SDKs: Python's tea-openapi once with ACS3-HMAC-SHA256 (v3) and once with
    HMAC-SHA1 (v2); Node's @alicloud/vpc20160428 (ACS3, signing only host, content-type and x-acs-* headers, as Java
    and Go do) and @alicloud/pop-core (HMAC-SHA1) through tests/interop/node/bridge.js."""
    if request.param.startswith("node-"):
        why = nodeapi.missing()
        if why and os.environ.get("CI") == "true":
            pytest.fail(f"the Node SDKs are required under CI=true: {why}")
        if why:
            pytest.skip(f"Node SDKs: {why}")
        api = nodeapi.node_api(tenant_a, server.port, request.param)
        yield api
        api.bridge.close()
        return
    yield server.api(tenant_a, request.param)


@pytest.fixture(scope="session")
def tea_v3(server, tenant_a) -> vgwlib.Api:
    return server.api(tenant_a, "v3")


@pytest.fixture(scope="session")
def tea_v2(server, tenant_a) -> vgwlib.Api:
    return server.api(tenant_a, "v2")


@pytest.fixture(scope="session")
def tea_b(server, tenant_b) -> vgwlib.Api:
    return server.api(tenant_b, "v3")


@pytest.fixture(scope="session")
def legacy(server, tenant_a) -> vgwlib.Legacy:
    return server.legacy(tenant_a)


@pytest.fixture
def fresh_api(server):
    """A brand-new tenant (exact list counts), v3."""
    def make(mode: str = "v3") -> vgwlib.Api:
        return server.api(server.create_tenant(vgwlib.unique_name("t")), mode)
    return make


@pytest.fixture
def aux_api(aux_server):
    """A brand-new tenant on the aux server (small quotas, slow data plane)."""
    def make(mode: str = "v3") -> vgwlib.Api:
        return aux_server.api(aux_server.create_tenant(vgwlib.unique_name("q")), mode)
    return make


# ------------------------------------------------------------------------------------------
# Huawei dialect (huaweicloudsdkvpn): tenants in projects cn-north-4 / cn-south-1
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def hw_tenant_a(server):
    return server.create_tenant("HWA")


@pytest.fixture(scope="session")
def hw_tenant_b(server):
    return server.create_tenant("HWB")


@pytest.fixture(scope="session")
def hw_a(server, hw_tenant_a) -> hwlib.Hw:
    """Tenant HWA in its cn-north-4 project."""
    return hwlib.Hw(hw_tenant_a, server.port, hwlib.REGION)


@pytest.fixture(scope="session")
def hw_a2(server, hw_tenant_a) -> hwlib.Hw:
    """Tenant HWA in its cn-south-1 project."""
    return hwlib.Hw(hw_tenant_a, server.port, hwlib.OTHER)


@pytest.fixture(scope="session")
def hw_b(server, hw_tenant_b) -> hwlib.Hw:
    return hwlib.Hw(hw_tenant_b, server.port, hwlib.REGION)


@pytest.fixture
def hw_fresh(server):
    """A brand-new tenant (exact list counts) in cn-north-4."""
    def make(region: str = hwlib.REGION) -> hwlib.Hw:
        return hwlib.Hw(server.create_tenant(vgwlib.unique_name("hw")), server.port, region)
    return make


@pytest.fixture
def hw_aux(aux_server):
    """A brand-new tenant on the aux server (2 gateways per region, slow data plane)."""
    def make(region: str = hwlib.REGION) -> hwlib.Hw:
        return hwlib.Hw(aux_server.create_tenant(vgwlib.unique_name("hq")), aux_server.port, region)
    return make


# ------------------------------------------------------------------------------------------
# show the server's stderr tail with every failure
# ------------------------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in _SERVERS:
            state = "running" if srv.proc is not None and srv.proc.poll() is None else "NOT running"
            rep.sections.append((f"{srv.name} stderr tail ({state}, port {srv.port})", srv.tail(12)))


def pytest_sessionfinish(session, exitstatus):
    for srv in _SERVERS:
        srv.stop()
